import { useState, type FormEvent } from "react";
import { ApiError } from "../../core/client";
import type { DashboardApi } from "../api";

/** The sign-in page: the key goes to `POST /auth/login` and is never stored in the browser. */
export function Login({ api, onSignedIn }: { api: DashboardApi; onSignedIn(): void }) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!key.trim()) {
      setError("Enter the API key.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.login(key.trim());
      setKey("");
      onSignedIn();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? "That API key is not valid." : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="login">
      <form className="card login__form" onSubmit={submit} data-testid="login-form" aria-labelledby="login-title">
        <h1 id="login-title">wagate</h1>
        <p className="muted">Sign in with the server's API key.</p>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          name="apiKey"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={key}
          onChange={(e) => setKey(e.target.value)}
          data-testid="login-key"
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? "login-error" : undefined}
          autoFocus
        />
        <button type="submit" className="wa-button primary" disabled={busy} data-testid="login-submit">
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <p id="login-error" role="alert" className="error">
          {error ?? ""}
        </p>
      </form>
    </main>
  );
}
