/** Types of the wagate HTTP API (docs/api.md) and of its event stream. */

export type ConnectionStatus = "connecting" | "qr_pending" | "connected" | "disconnected" | "logged_out";

export type SupervisorState = "idle" | "waiting" | "connecting" | "pairing" | "connected" | "stopped";

/** `GET /health` (also the data of the `health` event). */
export interface Health {
  status: "ok" | "degraded" | "error";
  timestamp: string;
  /** Whole seconds since the server started. */
  uptime: number;
  sessions: { total: number; connected: number; connecting: number; disconnected: number };
}

/** The session object of `GET /sessions/{id}` (also the data of the `session` event). */
export interface Session {
  sessionId: string;
  sessionName: string;
  userId?: string | null;
  phoneNumber: string | null;
  connectionStatus: ConnectionStatus | null;
  isActive: boolean;
  autoConnect: boolean;
  lastError: string | null;
  lastConnectedAt: string | null;
  lastMessageAt: string | null;
  createdAt?: string;
  updatedAt?: string;
  /** The session holds credentials (a paired device). */
  paired?: boolean;
  socketAlive: boolean;
  supervisorState: SupervisorState | string;
  manualInterventionNeeded: boolean;
  nextRetryAt: string | null;
}

export interface RecoveryAttempt {
  at: string;
  trigger: string;
  action: string;
  result: string;
  detail: string | null;
}

export interface DeepSession extends Session {
  recentRecoveryAttempts?: RecoveryAttempt[];
}

/** `GET /health/deep`. */
export interface DeepHealth {
  status: "ok" | "degraded" | "error";
  timestamp: string;
  uptime: number;
  database: { connected: boolean; latencyMs?: number };
  breaker?: { open: boolean; reason?: string };
  sessions: DeepSession[];
}

/** `POST /sessions/{id}/reconnect`. */
export interface ReconnectResult {
  success: boolean;
  message: string;
}

/** Data of the `qr` event, and of `GET /sessions/{id}/qr` (without sessionId). */
export interface QrCode {
  sessionId?: string;
  qr: string;
  expiresAt: string | null;
}

/** An entry of `GET /sessions/{id}/history`. */
export interface HistoryEntry {
  at: string;
  status: ConnectionStatus | string;
  reason: string | null;
}

/** Data of the `hello` event. */
export interface Hello {
  epoch: string;
  lastId: number;
}
