import { useState, type FormEvent } from "react";
import { useDashboard } from "../context";
import { useRouter } from "../router";
import { useWhatsAppStatus } from "../../react/context";
import { ErrorText } from "../../react/parts";

/** "Add session": `POST /sessions`, then the pairing view. */
export function AddSessionPage() {
  const { api } = useDashboard();
  const { navigate } = useRouter();
  const { snapshot } = useWhatsAppStatus();
  const hasPrimary = snapshot.sessions.some((s) => s.sessionName === "primary");
  const [name, setName] = useState(hasPrimary ? "" : "primary");
  const [autoConnect, setAutoConnect] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const s = await api.createSession({ sessionName: name.trim() || undefined, autoConnect });
      navigate(`/session/${s.sessionId}/pair`);
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="add-title">
      <h1 id="add-title">Add session</h1>
      <form className="card form" onSubmit={submit} data-testid="add-session-form">
        <label htmlFor="session-name">Session name</label>
        <input id="session-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={128} placeholder="primary" />
        {(name.trim() || "primary") === "primary" ? (
          <label className="check">
            <input type="checkbox" checked={autoConnect} onChange={(e) => setAutoConnect(e.target.checked)} /> Connect
            automatically
          </label>
        ) : (
          <p className="muted" data-testid="add-session-note">
            Only the session named “primary” connects by itself (at start, and when it drops). This one connects when
            you pair or reconnect it.
          </p>
        )}
        <button type="submit" className="wa-button primary" disabled={busy} data-testid="add-session-submit">
          {busy ? "Creating…" : "Create and pair"}
        </button>
        <div role="alert" className="error">
          <ErrorText error={error} rawIfUnknown />
        </div>
      </form>
    </section>
  );
}
