/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// No @vitejs/plugin-react: Vite's own transformer compiles JSX with the automatic runtime.
const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const wagateUrl = env.WAGATE_URL ?? "http://127.0.0.1:8080";

export default defineConfig(({ mode }) => {
  const jsx = { oxc: { jsx: { runtime: "automatic" as const, importSource: "react" } } };
  if (mode === "lib") {
    return {
      ...jsx,
      publicDir: false,
      build: {
        outDir: "dist-lib",
        emptyOutDir: true,
        sourcemap: true,
        cssCodeSplit: false,
        lib: {
          // Two entries: the components (a client boundary for React Server Components) and the
          // server-safe core (types, the HTTP client, formatting), which imports no React.
          entry: { "wagate-status": "src/lib.ts", server: "src/server.ts" },
          formats: ["es"],
          fileName: (_format: string, name: string) => `${name}.js`,
          cssFileName: "style",
        },
        rollupOptions: {
          external: ["react", "react-dom", "react/jsx-runtime", "react-dom/client"],
          output: {
            // Next.js (app router) needs the directive first in the file that holds the components;
            // Rollup drops directives found in the sources, so it is added to the built entry.
            banner: (chunk: { name: string; isEntry: boolean }) =>
              chunk.isEntry && chunk.name === "wagate-status" ? '"use client";' : "",
          },
        },
      },
    };
  }
  return {
    ...jsx,
    base: "/",
    build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
    server: {
      // `npm run dev` against a local wagate serve: same-origin API through the proxy.
      proxy: Object.fromEntries(
        ["/health", "/sessions", "/events", "/auth"].map((p) => [
          p,
          { target: wagateUrl, changeOrigin: false },
        ]),
      ),
    },
    test: {
      environment: "jsdom",
      setupFiles: ["src/test/setup.ts"],
      include: ["src/**/*.test.{ts,tsx}"],
      css: false,
    },
  };
});
