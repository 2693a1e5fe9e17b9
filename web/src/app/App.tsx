import { useCallback, useEffect, useMemo, useState } from "react";
import { WhatsAppStatusBadge, WhatsAppStatusDot, WhatsAppStatusProvider, useWhatsAppStatus } from "../react";
import { ErrorText } from "../react/parts";
import { DashboardApi } from "./api";
import { readConfig, type DashboardConfig } from "./config";
import { DashboardCtx, useDashboard } from "./context";
import { AddSessionPage } from "./pages/AddSession";
import { Login } from "./pages/Login";
import { PairingPage } from "./pages/Pairing";
import { SessionPage } from "./pages/SessionPage";
import { SessionsPage } from "./pages/Sessions";
import { Link, match, Router, useRouter } from "./router";

function Routes() {
  const { path, navigate } = useRouter();
  const { sessionId, snapshot } = useWhatsAppStatus();
  let m: Record<string, string> | null;
  if (path === "/" || path === "/login") return <SessionsPage />;
  if (path === "/new-session") return <AddSessionPage />;
  if ((m = match("/session/:id/pair", path))) return <PairingPage id={m.id} />;
  if ((m = match("/session/:id", path))) return <SessionPage id={m.id} />;
  if (path === "/settings") {
    // The settings of WhatsApp: the primary session's page.
    if (sessionId) return <SessionPage id={sessionId} />;
    if (snapshot.lastChecked !== null)
      return (
        <section>
          <h1>WhatsApp settings</h1>
          <div className="card empty" data-testid="settings-empty">
            <p>No WhatsApp session yet.</p>
            <Link to="/new-session" className="wa-button primary">
              Add session
            </Link>
          </div>
        </section>
      );
    return <p role="status">Loading…</p>;
  }
  return (
    <section>
      <h1>Not found</h1>
      <button type="button" className="wa-button" onClick={() => navigate("/")}>
        Go to sessions
      </button>
    </section>
  );
}

function Shell() {
  const { signOut } = useDashboard();
  const { path } = useRouter();
  const { unauthorized } = useWhatsAppStatus();
  // A 401 on the status polls (the sign-in expired, was revoked, or the server's key changed) ends the
  // signed-in view at once: the header must not keep showing a status the user may no longer see.
  useEffect(() => {
    if (unauthorized) signOut();
  }, [unauthorized, signOut]);
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="header">
        <Link to="/" className="brand">
          wagate
        </Link>
        <div className="header__right">
          <WhatsAppStatusDot />
          <button type="button" className="wa-button" onClick={signOut} data-testid="sign-out">
            Sign out
          </button>
        </div>
      </header>
      <nav className="sidebar" aria-label="Main">
        <ul>
          <li>
            <Link to="/" current={path === "/"}>
              Sessions
            </Link>
          </li>
          <li>
            <Link to="/new-session" current={path === "/new-session"}>
              Add session
            </Link>
          </li>
          <li>
            <Link to="/settings" current={path === "/settings"}>
              Settings
            </Link>
          </li>
        </ul>
        <div className="sidebar__footer">
          <WhatsAppStatusBadge />
        </div>
      </nav>
      <main id="main" className="main" tabIndex={-1}>
        <Routes />
      </main>
    </div>
  );
}

const FOLLOW_KEY = "wagate.follow";

/** The followed session id, kept in this browser (it is a view setting, not a secret). */
function useFollowId(): [string | null, (id: string | null) => void] {
  const [id, setId] = useState<string | null>(() => {
    try {
      return window.localStorage.getItem(FOLLOW_KEY);
    } catch {
      return null;
    }
  });
  const set = useCallback((v: string | null) => {
    try {
      if (v) window.localStorage.setItem(FOLLOW_KEY, v);
      else window.localStorage.removeItem(FOLLOW_KEY);
    } catch {
      /* storage refused (private mode): the choice lasts for this page only */
    }
    setId(v);
  }, []);
  return [id, set];
}

function Authed({ api, config, onSignedOut }: { api: DashboardApi; config: DashboardConfig; onSignedOut(): void }) {
  const { navigate } = useRouter();
  const [followId, setFollowId] = useFollowId();
  const signOut = useCallback(() => {
    // Signed out either way: a logout the server refuses (already signed out) must not stop it.
    api.logout().then(onSignedOut, onSignedOut);
  }, [api, onSignedOut]);
  const dash = useMemo(() => ({ api, config, signOut, followId, setFollowId }), [api, config, signOut, followId, setFollowId]);
  return (
    <DashboardCtx.Provider value={dash}>
      <WhatsAppStatusProvider
        client={api.status}
        eventsUrl={config.events ? api.url("/events") : undefined}
        intervals={config.intervals}
        settingsHref="/settings"
        addSessionHref="/new-session"
        primarySessionId={followId}
        onNavigate={navigate}
      >
        <Shell />
      </WhatsAppStatusProvider>
    </DashboardCtx.Provider>
  );
}

export function App({ search = window.location.search, api: givenApi }: { search?: string; api?: DashboardApi }) {
  const config = useMemo(() => readConfig(search), [search]);
  const api = useMemo(() => givenApi ?? new DashboardApi(config.apiBase), [givenApi, config]);
  const [auth, setAuth] = useState<"checking" | "in" | "out" | { error: string }>("checking");
  const check = useCallback(() => {
    setAuth("checking");
    api.authenticated().then(
      (ok) => setAuth(ok ? "in" : "out"),
      (e: Error) => setAuth({ error: e.message }),
    );
  }, [api]);
  useEffect(() => {
    check();
    api.onUnauthorized = () => setAuth("out");
    return () => {
      api.onUnauthorized = null;
    };
  }, [api, check]);

  return (
    <Router>
      {auth === "checking" ? (
        <p role="status" className="center">
          Loading…
        </p>
      ) : auth === "out" ? (
        <Login api={api} onSignedIn={() => setAuth("in")} />
      ) : auth === "in" ? (
        <Authed api={api} config={config} onSignedOut={() => setAuth("out")} />
      ) : (
        <main className="center">
          <div role="alert">
            <ErrorText error={auth.error} />
          </div>
          <button type="button" className="wa-button" onClick={check}>
            Try again
          </button>
        </main>
      )}
    </Router>
  );
}
