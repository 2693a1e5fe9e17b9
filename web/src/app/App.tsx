import { useCallback, useEffect, useMemo, useState } from "react";
import { WhatsAppStatusBadge, WhatsAppStatusDot, WhatsAppStatusProvider, useWhatsAppStatus } from "../react";
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
          <p>No session yet.</p>
          <Link to="/new-session">Add session</Link>
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

function Authed({ api, config, onSignedOut }: { api: DashboardApi; config: DashboardConfig; onSignedOut(): void }) {
  const { navigate } = useRouter();
  const signOut = useCallback(() => {
    api.logout().finally(onSignedOut);
  }, [api, onSignedOut]);
  const dash = useMemo(() => ({ api, config, signOut }), [api, config, signOut]);
  return (
    <DashboardCtx.Provider value={dash}>
      <WhatsAppStatusProvider
        client={api.status}
        eventsUrl={config.events ? api.url("/events") : undefined}
        intervals={config.intervals}
        settingsHref="/settings"
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
          <p role="alert">The server cannot be reached: {auth.error}</p>
          <button type="button" className="wa-button" onClick={check}>
            Try again
          </button>
        </main>
      )}
    </Router>
  );
}
