import { vi } from "vitest";
import { ServerUnreachableError, type StatusClient } from "../core/client";
import type { EventSourceLike } from "../core/events";
import type { VisibilitySource } from "../core/poller";
import type { DeepHealth, Health, ReconnectResult, Session } from "../core/types";

export function health(p: Partial<Health> & { connected?: number; total?: number } = {}): Health {
  const total = p.total ?? 1;
  const connected = p.connected ?? total;
  return {
    status: p.status ?? (connected === total ? "ok" : "degraded"),
    timestamp: "2026-11-24T13:27:04.123Z",
    uptime: p.uptime ?? 3600,
    sessions: p.sessions ?? { total, connected, connecting: 0, disconnected: total - connected },
  };
}

export function session(p: Partial<Session> = {}): Session {
  return {
    sessionId: "6f1c2b0e-3f0b-4e55-9d5a-0c3f1f6d2a11",
    sessionName: "primary",
    userId: null,
    phoneNumber: "27821231234",
    connectionStatus: "connected",
    isActive: true,
    autoConnect: true,
    lastError: null,
    lastConnectedAt: "2026-11-24T13:27:04.123Z",
    lastMessageAt: null,
    createdAt: "2026-11-20T09:00:00.000Z",
    updatedAt: "2026-11-24T13:27:04.123Z",
    socketAlive: true,
    supervisorState: "connected",
    manualInterventionNeeded: false,
    nextRetryAt: null,
    ...p,
  };
}

export function deep(sessions: Session[] = [session()], p: Partial<DeepHealth> = {}): DeepHealth {
  return {
    status: "ok",
    timestamp: "2026-11-24T13:27:04.123Z",
    uptime: 3600,
    database: { connected: true, latencyMs: 0.1 },
    sessions,
    ...p,
  };
}

/** A StatusClient whose answers the test sets; counts calls. */
export class FakeClient implements StatusClient {
  healthAnswer: Health | Error = health();
  deepAnswer: DeepHealth | Error = deep();
  reconnectAnswer: ReconnectResult | Error = { success: true, message: "connected" };
  reconnectDelayMs = 0;
  getHealth = vi.fn(async () => {
    const a = this.healthAnswer;
    if (a instanceof Error) throw a;
    return a;
  });
  getDeepHealth = vi.fn(async () => {
    const a = this.deepAnswer;
    if (a instanceof Error) throw a;
    return a;
  });
  reconnect = vi.fn(async (_id?: string) => {
    if (this.reconnectDelayMs) await new Promise((r) => setTimeout(r, this.reconnectDelayMs));
    const a = this.reconnectAnswer;
    if (a instanceof Error) throw a;
    return a;
  });
  down(): void {
    this.healthAnswer = new ServerUnreachableError("server unreachable: connection refused");
    this.deepAnswer = new ServerUnreachableError("server unreachable: connection refused");
  }
}

export class FakeVisibility implements VisibilitySource {
  hidden = false;
  private fns = new Set<() => void>();
  addEventListener(_t: "visibilitychange", fn: () => void) {
    this.fns.add(fn);
  }
  removeEventListener(_t: "visibilitychange", fn: () => void) {
    this.fns.delete(fn);
  }
  set(hidden: boolean) {
    this.hidden = hidden;
    this.fns.forEach((f) => f());
  }
}

/** An EventSource the test drives. */
export class FakeEventSource implements EventSourceLike {
  static instances: FakeEventSource[] = [];
  readyState = 0;
  onopen: ((ev: Event) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  closed = false;
  private fns = new Map<string, Set<(ev: MessageEvent) => void>>();
  constructor(
    public url: string,
    public init: { withCredentials: boolean },
  ) {
    FakeEventSource.instances.push(this);
  }
  addEventListener(type: string, fn: (ev: MessageEvent) => void) {
    if (!this.fns.has(type)) this.fns.set(type, new Set());
    this.fns.get(type)!.add(fn);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  emit(type: string, data: unknown, id?: number) {
    this.readyState = 1;
    const ev = new MessageEvent(type, { data: JSON.stringify(data), lastEventId: id !== undefined ? String(id) : "" });
    this.fns.get(type)?.forEach((f) => f(ev));
  }
  fail(closed = false) {
    this.readyState = closed ? 2 : 0;
    this.onerror?.(new Event("error"));
  }
  static factory = (url: string, init: { withCredentials: boolean }) => new FakeEventSource(url, init);
}
