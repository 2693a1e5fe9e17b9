import { useCallback, useEffect, useState } from "react";
import { describeConnectionStatus, formatDateTime, formatPhone, formatRelative, maskPhone } from "../../core/format";
import type { HistoryEntry, ReconnectResult, Session } from "../../core/types";
import { useWhatsAppStatus } from "../../react/context";
import { ErrorText } from "../../react/parts";
import { useDashboard } from "../context";
import { Link, useRouter } from "../router";
import { HistoryTimeline } from "./HistoryTimeline";
import { StatusLabel } from "./StatusLabel";

const RANGES = [
  { label: "1 hour", ms: 3600_000 },
  { label: "24 hours", ms: 86400_000 },
  { label: "7 days", ms: 7 * 86400_000 },
];

/** One session: details, Reconnect, Logout, auto-connect, and its status history. */
export function SessionPage({ id }: { id: string }) {
  const { api, config, followId, setFollowId } = useDashboard();
  const { navigate } = useRouter();
  const { snapshot, refresh, sessionId: followed } = useWhatsAppStatus();
  const [polled, setPolled] = useState<Session | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<"reconnect" | "logout" | "toggle" | "delete" | "pair" | null>(null);
  const [outcome, setOutcome] = useState<ReconnectResult | null>(null);
  const [range, setRange] = useState(RANGES[1].ms);
  const [history, setHistory] = useState<HistoryEntry[] | null>(null);
  const [historyError, setHistoryError] = useState<string | null>(null);
  const [now, setNow] = useState(() => Date.now());
  // Masked unless asked for: a screen shared or looked over should not give the number away.
  const [showPhone, setShowPhone] = useState(false);
  const live = snapshot.sessions.find((s) => s.sessionId === id) ?? null;
  const session = live && (!polled || (live.updatedAt ?? "") >= (polled.updatedAt ?? "")) ? live : polled;

  const load = useCallback(() => {
    api.session(id).then(
      (s) => (setPolled(s), setError(null)),
      (e: Error) => setError(e.message),
    );
  }, [api, id]);
  useEffect(() => {
    load();
    const t = setInterval(load, config.intervals.lightMs ?? 30_000);
    return () => clearInterval(t);
  }, [load, config]);

  const statusKey = `${session?.connectionStatus}/${session?.updatedAt}`;
  useEffect(() => {
    let alive = true;
    const t = Date.now();
    setNow(t);
    api.history(id, new Date(t - range)).then(
      (h) => alive && (setHistory(h), setHistoryError(null)),
      (e: Error) => alive && setHistoryError(e.message),
    );
    return () => {
      alive = false;
    };
  }, [api, id, range, statusKey]);

  if (!session)
    return (
      <section>
        <h1>Session</h1>
        {error ? (
          <div role="alert">
            <ErrorText error={error} />
          </div>
        ) : (
          <p role="status">Loading…</p>
        )}
      </section>
    );

  const act = async (kind: "reconnect" | "logout", fn: () => Promise<ReconnectResult>) => {
    setBusy(kind);
    setOutcome(null);
    try {
      setOutcome(await fn());
    } catch (e) {
      setOutcome({ success: false, message: (e as Error).message });
    }
    setBusy(null);
    load();
    refresh();
  };
  const toggle = async () => {
    setBusy("toggle");
    try {
      setPolled(await api.patchSession(id, { autoConnect: !session.autoConnect }));
    } catch (e) {
      setError((e as Error).message);
    }
    setBusy(null);
  };
  const remove = async () => {
    if (!window.confirm(`Delete the session "${session.sessionName}"? Its credentials are dropped.`)) return;
    setBusy("delete");
    try {
      await api.deleteSession(id);
      navigate("/");
    } catch (e) {
      setError((e as Error).message);
      setBusy(null);
    }
  };
  const pairing = session.connectionStatus === "qr_pending" || session.supervisorState === "pairing";
  /* Not paired, or its credentials no longer work: only a new device brings it back. */
  const needsPairing = !pairing && (session.paired === false || session.connectionStatus === "logged_out");
  const pairAgain = async () => {
    setBusy("pair");
    setOutcome(null);
    try {
      await api.pairSession(id);
      navigate(`/session/${id}/pair`);
    } catch (e) {
      setOutcome({ success: false, message: (e as Error).message });
      setBusy(null);
    }
  };

  return (
    <section aria-labelledby="session-title">
      <div className="page-head">
        <h1 id="session-title">{session.sessionName}</h1>
        <StatusLabel session={session} />
      </div>
      {error ? (
        <div role="alert" className="error">
          <ErrorText error={error} />
        </div>
      ) : null}
      <dl className="facts card" data-testid="session-details">
        <dt>Status</dt>
        <dd>
          {describeConnectionStatus(session.connectionStatus)} (supervisor: {session.supervisorState}
          {session.socketAlive ? ", socket up" : ", socket down"})
        </dd>
        <dt>Phone</dt>
        <dd data-testid="session-phone">
          {session.phoneNumber ? (
            <>
              {showPhone ? formatPhone(session.phoneNumber) : maskPhone(session.phoneNumber)}{" "}
              <button
                type="button"
                className="wa-button small"
                aria-pressed={showPhone}
                onClick={() => setShowPhone((v) => !v)}
                data-testid="session-phone-toggle"
              >
                {showPhone ? "Hide" : "Show"}
              </button>
            </>
          ) : (
            "—"
          )}
        </dd>
        <dt>Last connected</dt>
        <dd title={formatDateTime(session.lastConnectedAt)}>{formatRelative(session.lastConnectedAt)}</dd>
        <dt>Last message</dt>
        <dd title={formatDateTime(session.lastMessageAt)}>{formatRelative(session.lastMessageAt)}</dd>
        <dt>Last error</dt>
        <dd data-testid="session-last-error">{session.lastError ? <ErrorText error={session.lastError} /> : "—"}</dd>
        {session.nextRetryAt ? (
          <>
            <dt>Next retry</dt>
            <dd>{formatRelative(session.nextRetryAt)}</dd>
          </>
        ) : null}
        <dt>In the header</dt>
        <dd>
          {followed === id ? (
            <span data-testid="session-follow-state">
              The status dot and badge follow this session
              {followId === id ? " (your choice)" : ""}.{" "}
            </span>
          ) : (
            <span data-testid="session-follow-state">The status dot and badge follow another session. </span>
          )}
          {followId === id ? (
            <button type="button" className="wa-button small" onClick={() => setFollowId(null)} data-testid="session-unfollow">
              Follow “primary” again
            </button>
          ) : followed !== id ? (
            <button type="button" className="wa-button small" onClick={() => setFollowId(id)} data-testid="session-follow">
              Show this session in the header
            </button>
          ) : null}
        </dd>
        <dt>Session id</dt>
        <dd>
          <code>{session.sessionId}</code>
        </dd>
      </dl>
      {pairing ? (
        <p>
          <Link to={`/session/${id}/pair`} testId="open-pairing">
            Show the QR code
          </Link>
        </p>
      ) : null}
      <div className="actions">
        {needsPairing ? (
          <button
            type="button"
            className="wa-button primary"
            data-testid="session-pair-button"
            disabled={busy !== null}
            aria-busy={busy === "pair"}
            onClick={pairAgain}
          >
            {busy === "pair" ? "Starting…" : "Pair again"}
          </button>
        ) : null}
        <button
          type="button"
          className={needsPairing ? "wa-button" : "wa-button primary"}
          data-testid="session-reconnect-button"
          disabled={busy !== null}
          aria-busy={busy === "reconnect"}
          onClick={() => act("reconnect", () => api.reconnect(id))}
        >
          {busy === "reconnect" ? <span className="wa-spinner" aria-hidden="true" /> : null}
          {busy === "reconnect" ? "Reconnecting…" : "Reconnect"}
        </button>
        <button
          type="button"
          className="wa-button"
          data-testid="session-logout-button"
          disabled={busy !== null}
          onClick={() => {
            if (window.confirm("Log this device out of WhatsApp? You will have to pair it again."))
              void act("logout", () => api.logoutSession(id));
          }}
        >
          {busy === "logout" ? "Logging out…" : "Logout"}
        </button>
        {session.sessionName === "primary" ? (
          <label className="switch">
            <input
              type="checkbox"
              role="switch"
              checked={session.autoConnect}
              aria-checked={session.autoConnect}
              disabled={busy !== null}
              onChange={toggle}
              data-testid="session-autoconnect"
            />{" "}
            Auto-connect {session.autoConnect ? "on" : "off"}
          </label>
        ) : (
          <span className="muted" data-testid="session-autoconnect-note">
            Connects when you ask: only “primary” connects by itself
          </span>
        )}
        <button type="button" className="wa-button danger" disabled={busy !== null} onClick={remove} data-testid="session-delete-button">
          Delete
        </button>
      </div>
      <div role="status" aria-live="polite" data-testid="session-action-outcome" className={outcome && !outcome.success ? "error" : ""}>
        {outcome ? (
          outcome.success ? (
            `Done: ${outcome.message}`
          ) : (
            <>
              Failed. <ErrorText error={outcome.message} />
            </>
          )
        ) : (
          ""
        )}
      </div>
      <h2 id="history-title">Status history</h2>
      <div className="range" role="group" aria-labelledby="history-title">
        {RANGES.map((r) => (
          <button
            key={r.ms}
            type="button"
            className="wa-button small"
            aria-pressed={range === r.ms}
            onClick={() => setRange(r.ms)}
          >
            {r.label}
          </button>
        ))}
      </div>
      {historyError ? (
        <div className="error">
          <ErrorText error={historyError} />
        </div>
      ) : null}
      {history ? (
        <HistoryTimeline entries={history} from={now - range} to={now} createdAt={session.createdAt} />
      ) : historyError ? null : (
        <p>Loading…</p>
      )}
    </section>
  );
}
