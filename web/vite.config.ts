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
          entry: "src/lib.ts",
          formats: ["es"],
          fileName: () => "wagate-status.js",
          cssFileName: "style",
        },
        rollupOptions: {
          external: ["react", "react-dom", "react/jsx-runtime", "react-dom/client"],
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
