import { pickPrimary } from "./client";
import type { StatusSnapshot } from "./poller";
import type { ConnectionStatus, Session } from "./types";

/** The status the components show. */
export interface WhatsAppStatusState {
  status: "connected" | "disconnected";
  serverReachable: boolean;
  connectionStatus: ConnectionStatus | null;
  phoneNumber: string | null;
  lastChecked: Date | null;
  lastError: string | null;
  isChecking: boolean;
  /** The server started less than a minute ago: "Reconnecting…". */
  reconnecting: boolean;
  /** Nothing is known yet (before the first answer). */
  unknown: boolean;
  /** One short text for the state: "Connected", "Disconnected", "Reconnecting…", "Server unreachable", "Checking…". */
  statusText: string;
  lastConnectedAt: Date | null;
  sessionId: string | null;
  sessionName: string | null;
  manualInterventionNeeded: boolean;
  /** 401 from the server: signed out or a wrong key. */
  unauthorized: boolean;
  /** The server answers and has no session at all: the way forward is to add one, not to reconnect. */
  noSession: boolean;
}

export const STATUS_TEXT = {
  connected: "Connected",
  disconnected: "Disconnected",
  reconnecting: "Reconnecting…",
  unreachable: "Server unreachable",
  checking: "Checking…",
  noSession: "No session",
} as const;

function date(s: string | null | undefined): Date | null {
  if (!s) return null;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}

export interface DeriveOptions {
  primarySessionName?: string;
  /** Follow this session (by id) while it exists; wins over the name. */
  primarySessionId?: string | null;
  stableUptimeSec?: number;
  now?: number;
}

/**
 * Derives the status from what is known. The primary session (named "primary", else the first) drives it when
 * its details are known; a newer `/health` answer whose counts contradict them wins (the details are refreshed
 * right after). Without details, `/health`'s counts decide.
 */
export function deriveStatus(snap: StatusSnapshot, opts: DeriveOptions = {}): WhatsAppStatusState {
  const now = opts.now ?? Date.now();
  const stable = opts.stableUptimeSec ?? 60;
  const primary: Session | null = pickPrimary(snap.sessions, opts.primarySessionName ?? "primary", opts.primarySessionId);
  const h = snap.health;
  const reachable = snap.reachable === true;
  const unknown = snap.reachable === null && !h && snap.sessions.length === 0;

  let connected = false;
  if (reachable && h?.status !== "error") {
    const sessionSaysConnected = primary
      ? primary.connectionStatus === "connected" && primary.socketAlive !== false && primary.isActive !== false
      : null;
    const c = h?.sessions;
    const healthSays =
      h && c ? (c.connected === 0 ? false : h.status === "ok" && c.total > 0 ? true : null) : null;
    const sessionsAt = snap.source === "stream" ? Infinity : (snap.deepAt ?? 0);
    if (sessionSaysConnected === null) connected = healthSays === true || (healthSays === null && !!c && c.connected > 0);
    else if (healthSays !== null && healthSays !== sessionSaysConnected && (snap.healthAt ?? 0) > sessionsAt)
      connected = healthSays;
    else connected = sessionSaysConnected;
  }

  // No session anywhere (the counts say none, and no detail or event names one): nothing to reconnect.
  const noSession = reachable && !snap.unauthorized && !!h && h.sessions.total === 0 && snap.sessions.length === 0;
  const uptimeNow = h && snap.healthAt !== null ? h.uptime + Math.max(0, now - snap.healthAt) / 1000 : null;
  const reconnecting = reachable && !noSession && uptimeNow !== null && uptimeNow < stable;

  let lastError: string | null = null;
  if (snap.reachable === false) lastError = snap.error ?? "server unreachable";
  else if (snap.unauthorized) lastError = snap.error ?? "missing or invalid API key";
  else if (h?.status === "error") lastError = "database unavailable";
  else if (!connected) {
    lastError =
      primary?.lastError ??
      (snap.deep?.breaker?.open ? (snap.deep.breaker.reason ?? "automatic reconnects are stopped") : null) ??
      (primary && primary.connectionStatus !== "connected"
        ? `session is ${String(primary.connectionStatus ?? "unknown").replace("_", " ")}`
        : null) ??
      (noSession ? "no WhatsApp session has been added yet" : null) ??
      snap.error;
  }

  let statusText: string;
  if (unknown) statusText = STATUS_TEXT.checking;
  else if (snap.reachable === false) statusText = STATUS_TEXT.unreachable;
  else if (connected) statusText = STATUS_TEXT.connected;
  else if (noSession) statusText = STATUS_TEXT.noSession;
  else if (reconnecting) statusText = STATUS_TEXT.reconnecting;
  else statusText = STATUS_TEXT.disconnected;

  return {
    status: connected ? "connected" : "disconnected",
    serverReachable: reachable,
    connectionStatus: primary?.connectionStatus ?? (connected ? "connected" : null),
    phoneNumber: primary?.phoneNumber ?? null,
    lastChecked: snap.lastChecked !== null ? new Date(snap.lastChecked) : null,
    lastError,
    isChecking: snap.isChecking,
    reconnecting,
    unknown,
    statusText,
    lastConnectedAt: date(primary?.lastConnectedAt),
    sessionId: primary?.sessionId ?? null,
    sessionName: primary?.sessionName ?? null,
    manualInterventionNeeded: !!primary?.manualInterventionNeeded,
    unauthorized: snap.unauthorized,
    noSession,
  };
}
