import { useEffect, useState } from "react";
import { formatDateTime, formatRelative, attemptOutcome, maskPhone } from "../../core/format";
import type { DeepHealth, DeepSession } from "../../core/types";
import { useWhatsAppStatus } from "../../react/context";
import { useDashboard } from "../context";
import { Link } from "../router";
import { StatusLabel } from "./StatusLabel";

/** `/health/deep` for the page: at once, after every change the stream reports, and every `pollMs`. */
export function useDeepHealth(): { deep: DeepHealth | null; error: string | null } {
  const { api, config } = useDashboard();
  const { snapshot, streaming } = useWhatsAppStatus();
  const [deep, setDeep] = useState<DeepHealth | null>(null);
  const [error, setError] = useState<string | null>(null);
  const sessionsKey = streaming ? snapshot.sessions : null;
  useEffect(() => {
    let live = true;
    const load = () =>
      api.deepHealth().then(
        (d) => live && (setDeep(d), setError(null)),
        (e: Error) => live && setError(e.message),
      );
    const t0 = setTimeout(load, sessionsKey ? 250 : 0);
    const t = setInterval(load, config.intervals.lightMs ?? 30_000);
    return () => {
      live = false;
      clearTimeout(t0);
      clearInterval(t);
    };
  }, [api, config, sessionsKey]);
  return { deep, error };
}

export function SessionsPage() {
  const { snapshot, streaming } = useWhatsAppStatus();
  const { deep, error } = useDeepHealth();
  // Live rows from the stream when it is up; the details (recovery attempts) from /health/deep.
  const byId = new Map<string, DeepSession>((deep?.sessions ?? []).map((s) => [s.sessionId, s]));
  const rows: DeepSession[] = streaming
    ? snapshot.sessions.map((s) => ({ ...byId.get(s.sessionId), ...s }))
    : deep
      ? deep.sessions
      : snapshot.sessions;
  return (
    <section aria-labelledby="sessions-title">
      <div className="page-head">
        <h1 id="sessions-title">Sessions</h1>
        <Link to="/new-session" className="wa-button primary" testId="add-session">
          Add session
        </Link>
      </div>
      {error ? (
        <p role="alert" className="error">
          {error}
        </p>
      ) : null}
      {deep?.breaker?.open ? (
        <p role="alert" className="banner">
          Automatic reconnects are stopped: {deep.breaker.reason}
        </p>
      ) : null}
      {rows.length === 0 ? (
        <p className="muted">No sessions yet. Add one and scan its QR code with WhatsApp.</p>
      ) : (
        <div className="table-wrap">
          <table className="sessions">
            <thead>
              <tr>
                <th scope="col">Session</th>
                <th scope="col">Status</th>
                <th scope="col">Phone</th>
                <th scope="col">Last connected</th>
                <th scope="col">Last message</th>
                <th scope="col">Last error</th>
                <th scope="col">Recent recovery attempts</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((s) => (
                <tr key={s.sessionId} data-testid="session-row" data-session-id={s.sessionId} data-status={s.connectionStatus ?? ""}>
                  <th scope="row">
                    <Link to={`/session/${s.sessionId}`}>{s.sessionName}</Link>
                  </th>
                  <td>
                    <StatusLabel session={s} />
                  </td>
                  <td>{maskPhone(s.phoneNumber) ?? "—"}</td>
                  <td title={formatDateTime(s.lastConnectedAt)}>{formatRelative(s.lastConnectedAt)}</td>
                  <td title={formatDateTime(s.lastMessageAt)}>{formatRelative(s.lastMessageAt)}</td>
                  <td className="wrap">{s.lastError ?? "—"}</td>
                  <td>
                    {s.recentRecoveryAttempts?.length ? (
                      <ul className="attempts">
                        {s.recentRecoveryAttempts.map((a, i) => (
                          <li key={i} title={a.detail ?? undefined}>
                            <span aria-hidden="true" data-outcome={attemptOutcome(a.result)}>
                              {{ good: "✓ ", bad: "✕ ", neutral: "… " }[attemptOutcome(a.result)]}
                            </span>
                            {formatRelative(a.at)}: {a.action} ({a.trigger}) — {a.result}
                          </li>
                        ))}
                      </ul>
                    ) : (
                      "none"
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className="muted small">
        {streaming ? "Live updates on." : "Live updates off: refreshed by polling."}
      </p>
    </section>
  );
}
