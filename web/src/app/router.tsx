import { createContext, useCallback, useContext, useEffect, useState, type MouseEvent, type ReactNode } from "react";

interface RouterValue {
  path: string;
  navigate(to: string, opts?: { replace?: boolean }): void;
}

const RouterCtx = createContext<RouterValue>({ path: "/", navigate: () => {} });

/** A tiny History API router; the query string (test hooks) is kept across navigation. */
export function Router({ children }: { children: ReactNode }) {
  const [path, setPath] = useState(() => window.location.pathname);
  useEffect(() => {
    const pop = () => setPath(window.location.pathname);
    window.addEventListener("popstate", pop);
    return () => window.removeEventListener("popstate", pop);
  }, []);
  const navigate = useCallback((to: string, opts?: { replace?: boolean }) => {
    const url = to + window.location.search;
    if (opts?.replace) window.history.replaceState(null, "", url);
    else window.history.pushState(null, "", url);
    setPath(to);
    window.scrollTo?.(0, 0);
  }, []);
  return <RouterCtx.Provider value={{ path, navigate }}>{children}</RouterCtx.Provider>;
}

export function useRouter(): RouterValue {
  return useContext(RouterCtx);
}

export function Link(props: { to: string; children: ReactNode; className?: string; testId?: string; current?: boolean }) {
  const { navigate } = useRouter();
  const click = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a
      href={props.to}
      onClick={click}
      className={props.className}
      data-testid={props.testId}
      aria-current={props.current ? "page" : undefined}
    >
      {props.children}
    </a>
  );
}

/** Matches `/sessions/:id/pair` style patterns; returns the parameters or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split("/").filter(Boolean);
  const a = path.split("/").filter(Boolean);
  if (p.length !== a.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(":")) out[p[i].slice(1)] = decodeURIComponent(a[i]);
    else if (p[i] !== a[i]) return null;
  }
  return out;
}
