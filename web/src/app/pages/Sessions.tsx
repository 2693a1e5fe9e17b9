import { useEffect } from "react";
import { attemptOutcome, formatDateTime, formatRelative, maskPhone } from "../../core/format";
import type { DeepSession } from "../../core/types";
import { useWhatsAppStatus } from "../../react/context";
import { ErrorText } from "../../react/parts";
import { Link } from "../router";
import { StatusLabel } from "./StatusLabel";

const ATTEMPT_MARK = { good: "✓ ", bad: "✕ ", neutral: "… " } as const;

/**
 * The provider's one deep poll feeds the page; with the stream up, its session events say when the details
 * (recovery attempts) changed, and the page asks for one deep poll a moment later. No poll of its own.
 */
function useFreshDetails(): void {
  const { snapshot, streaming, refreshDeep } = useWhatsAppStatus();
  const sessionsKey = streaming ? snapshot.sessions : null;
  useEffect(() => {
    const t = setTimeout(refreshDeep, sessionsKey ? 250 : 0);
    return () => clearTimeout(t);
  }, [refreshDeep, sessionsKey]);
}

export function SessionsPage() {
  const { snapshot, streaming, sessionId: followed, noSession, addSessionHref } = useWhatsAppStatus();
  useFreshDetails();
  const deep = snapshot.deep;
  // Live rows from the stream when it is up; the details (recovery attempts) from /health/deep.
  const byId = new Map<string, DeepSession>((deep?.sessions ?? []).map((s) => [s.sessionId, s]));
  const rows: DeepSession[] = streaming
    ? snapshot.sessions.map((s) => ({ ...byId.get(s.sessionId), ...s }))
    : deep
      ? deep.sessions
      : snapshot.sessions;
  const known = deep !== null || streaming || noSession;
  return (
    <section aria-labelledby="sessions-title">
      <div className="page-head">
        <h1 id="sessions-title">Sessions</h1>
        <Link to={addSessionHref} className="wa-button primary" testId="add-session">
          Add session
        </Link>
      </div>
      {snapshot.error && !snapshot.unauthorized ? (
        <div role="alert" className="error">
          <ErrorText error={snapshot.error} />
        </div>
      ) : null}
      {deep?.breaker?.open ? (
        <div role="alert" className="banner">
          Automatic reconnects are stopped. <ErrorText error={deep.breaker.reason} />
        </div>
      ) : null}
      {rows.length === 0 ? (
        known ? (
          <div className="card empty" data-testid="sessions-empty">
            <p>
              <strong>No WhatsApp session yet.</strong>
            </p>
            <p className="muted">Add one, then scan its QR code with WhatsApp on the phone (Linked devices).</p>
            <Link to={addSessionHref} className="wa-button primary" testId="sessions-empty-add">
              Add session
            </Link>
          </div>
        ) : (
          <p role="status">Loading…</p>
        )
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
                    {s.sessionId === followed ? (
                      <span className="follow-mark" data-testid="session-followed" title="The status dot and badge follow this session">
                        (in the header)
                      </span>
                    ) : null}
                  </th>
                  <td data-label="Status">
                    <StatusLabel session={s} />
                  </td>
                  <td data-label="Phone">{maskPhone(s.phoneNumber) ?? "—"}</td>
                  <td data-label="Last connected" title={formatDateTime(s.lastConnectedAt)}>
                    {formatRelative(s.lastConnectedAt)}
                  </td>
                  <td data-label="Last message" title={formatDateTime(s.lastMessageAt)}>
                    {formatRelative(s.lastMessageAt)}
                  </td>
                  <td data-label="Last error" className="wrap">
                    {s.lastError ? <ErrorText error={s.lastError} /> : "—"}
                  </td>
                  <td data-label="Recovery attempts">
                    {s.recentRecoveryAttempts?.length ? (
                      <ul className="attempts">
                        {s.recentRecoveryAttempts.map((a, i) => (
                          <li key={i} title={a.detail ?? undefined}>
                            <span aria-hidden="true" data-outcome={attemptOutcome(a.result)}>
                              {ATTEMPT_MARK[attemptOutcome(a.result)]}
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
      <p className="muted small">{streaming ? "Live updates on." : "Live updates off: refreshed by polling."}</p>
    </section>
  );
}
