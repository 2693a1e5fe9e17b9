import type { Health, Hello, QrCode, Session } from "./types";

/** The part of EventSource used here (the DOM's, or a fake in tests). */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((ev: Event) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
  addEventListener(type: string, fn: (ev: MessageEvent) => void): void;
  close(): void;
}

export type EventSourceFactory = (url: string, init: { withCredentials: boolean }) => EventSourceLike;

export interface StatusStreamHandlers {
  /** The stream is up and the server said hello. `restarted`: a different server process than before. */
  onHello?(hello: Hello, restarted: boolean): void;
  onHealth?(h: Health): void;
  onSession?(s: Session): void;
  onQr?(qr: QrCode): void;
  /** The server could not replay the missed events: forget what is known, a fresh snapshot follows. */
  onReset?(): void;
  /** The stream failed. `closed`: the browser gave up on it (it will not reconnect by itself). */
  onDown?(closed: boolean): void;
}

export interface StatusStream {
  close(): void;
  readonly epoch: string | null;
}

const CLOSED = 2;

function parse<T>(ev: MessageEvent): T | null {
  try {
    return JSON.parse(String(ev.data)) as T;
  } catch {
    return null;
  }
}

/**
 * Opens the server's event stream (`GET /events`). The browser's EventSource reconnects by itself and sends
 * `Last-Event-ID`; the server then replays or sends `reset` and a new snapshot.
 */
export function openStatusStream(
  url: string,
  handlers: StatusStreamHandlers,
  factory: EventSourceFactory = (u, init) => new EventSource(u, init) as unknown as EventSourceLike,
): StatusStream {
  let epoch: string | null = null;
  let closed = false;
  const es = factory(url, { withCredentials: true });
  es.addEventListener("hello", (ev) => {
    const h = parse<Hello>(ev);
    if (!h) return;
    const restarted = epoch !== null && epoch !== h.epoch;
    epoch = h.epoch;
    handlers.onHello?.(h, restarted);
  });
  es.addEventListener("health", (ev) => {
    const h = parse<Health>(ev);
    if (h) handlers.onHealth?.(h);
  });
  es.addEventListener("session", (ev) => {
    const s = parse<Session>(ev);
    if (s && typeof s.sessionId === "string") handlers.onSession?.(s);
  });
  es.addEventListener("qr", (ev) => {
    const q = parse<QrCode>(ev);
    if (q) handlers.onQr?.(q);
  });
  es.addEventListener("reset", () => handlers.onReset?.());
  es.onerror = () => {
    if (closed) return;
    handlers.onDown?.(es.readyState === CLOSED);
  };
  return {
    close() {
      closed = true;
      es.close();
    },
    get epoch() {
      return epoch;
    },
  };
}
