import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from "react";
import { HttpStatusClient, type StatusClient } from "../core/client";
import { openStatusStream, type EventSourceFactory, type StatusStream } from "../core/events";
import { StatusPoller, type PollIntervals, type StatusSnapshot, type VisibilitySource } from "../core/poller";
import { deriveStatus, type WhatsAppStatusState } from "../core/status";
import type { QrCode, ReconnectResult } from "../core/types";

export interface WhatsAppStatusContextValue extends WhatsAppStatusState {
  /** Asks the server to reconnect the primary session; concurrent calls share one attempt. */
  reconnect(): Promise<ReconnectResult>;
  /** A reconnect is under way. */
  isReconnecting: boolean;
  /** The outcome of the last reconnect, if any. */
  lastReconnect: ReconnectResult | null;
  /** Polls now (light and deep). */
  refresh(): void;
  /** Runs the deep poll now (the one deep poll: pages that need fresher details ask it, rather than poll). */
  refreshDeep(): void;
  /** Where the "Settings" links point. */
  settingsHref: string;
  /** Where "Add session" points when there is no session. */
  addSessionHref: string;
  /** Called by the links instead of a page load, when given. */
  onNavigate?: (href: string) => void;
  /** The event stream is up. */
  streaming: boolean;
  /** Everything known (every session, the deep health): for dashboards. */
  snapshot: StatusSnapshot;
  /** Subscribes to `qr` events of the stream. */
  subscribeQr(fn: (qr: QrCode) => void): () => void;
}

const Ctx = createContext<WhatsAppStatusContextValue | null>(null);

export interface WhatsAppStatusProviderProps {
  children?: ReactNode;
  /** How to reach the server; default: `new HttpStatusClient({baseUrl, fetchOptions})`. */
  client?: StatusClient;
  /** The API's base URL for the default client (default `""`, same origin). */
  baseUrl?: string;
  /** fetch options for the default client (e.g. `{credentials: "include"}`). */
  fetchOptions?: RequestInit;
  /** The server's `/events` URL: when given, the stream carries the news and polling is the fallback. */
  eventsUrl?: string;
  /** Poll intervals (defaults: 30 s, 5 min, retries 5/10/30 s, 5 s after a restart, stable after 60 s). */
  intervals?: Partial<PollIntervals>;
  /** The session name that counts as primary (default `"primary"`). */
  primarySessionName?: string;
  /** Follow this session (by id) instead; while it exists it wins over the name. */
  primarySessionId?: string | null;
  /** Target of the "Settings" links (default `"/settings"`). */
  settingsHref?: string;
  /** Target of "Add session" when the server has none (default: `settingsHref`). */
  addSessionHref?: string;
  /** Client-side navigation for the links (e.g. Next.js `router.push`). */
  onNavigate?: (href: string) => void;
  /** For tests: the EventSource to use. */
  eventSourceFactory?: EventSourceFactory;
  /** For tests: the page visibility source (default `document`). */
  visibility?: VisibilitySource | null;
}

const STREAM_REOPEN_MIN_MS = 30_000;
const STREAM_REOPEN_MAX_MS = 300_000;

export function WhatsAppStatusProvider(props: WhatsAppStatusProviderProps) {
  const {
    children,
    client: givenClient,
    baseUrl,
    fetchOptions,
    eventsUrl,
    intervals,
    primarySessionName = "primary",
    primarySessionId = null,
    settingsHref = "/settings",
    addSessionHref = settingsHref,
    onNavigate,
    eventSourceFactory,
    visibility,
  } = props;

  const client = useMemo(
    () => givenClient ?? new HttpStatusClient({ baseUrl, fetchOptions, primarySessionName, primarySessionId }),
    // fetchOptions is usually an inline object: compare by content.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [givenClient, baseUrl, JSON.stringify(fetchOptions ?? null), primarySessionName, primarySessionId],
  );
  const intervalsKey = JSON.stringify(intervals ?? {});
  const poller = useMemo(
    () => new StatusPoller({ client, intervals, visibility }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [client, intervalsKey, visibility],
  );
  const snapshot = useSyncExternalStore(
    useCallback((fn: () => void) => poller.subscribe(fn), [poller]),
    () => poller.getSnapshot(),
    () => poller.getSnapshot(),
  );

  const [streaming, setStreaming] = useState(false);
  const qrListeners = useRef(new Set<(qr: QrCode) => void>());

  useEffect(() => {
    poller.start();
    let stream: StatusStream | null = null;
    let reopenTimer: ReturnType<typeof setTimeout> | null = null;
    let reopenDelay = STREAM_REOPEN_MIN_MS;
    let disposed = false;
    const open = () => {
      if (!eventsUrl || disposed) return;
      stream = openStatusStream(
        eventsUrl,
        {
          onHello(_hello, restarted) {
            if (restarted) poller.clearSessions();
            reopenDelay = STREAM_REOPEN_MIN_MS;
            poller.pause();
            poller.touch();
            setStreaming(true);
          },
          onHealth: (h) => poller.ingestHealth(h, "stream"),
          onSession: (s) => poller.ingestSession(s, "stream"),
          onQr: (q) => qrListeners.current.forEach((fn) => fn(q)),
          onReset: () => poller.clearSessions(),
          onDown(closed) {
            setStreaming(false);
            // The polling rules take over until the stream is back.
            poller.resume();
            if (closed) {
              stream?.close();
              stream = null;
              reopenTimer = setTimeout(open, reopenDelay);
              reopenDelay = Math.min(reopenDelay * 2, STREAM_REOPEN_MAX_MS);
            }
          },
        },
        eventSourceFactory,
      );
    };
    open();
    return () => {
      disposed = true;
      if (reopenTimer) clearTimeout(reopenTimer);
      stream?.close();
      poller.stop();
      poller.resume();
      setStreaming(false);
    };
  }, [poller, eventsUrl, eventSourceFactory]);

  // "Reconnecting…" ends when the uptime passes the threshold, even without a new answer (stream mode).
  const [tick, setTick] = useState(0);
  const state = useMemo(
    () =>
      deriveStatus(snapshot, { primarySessionName, primarySessionId, stableUptimeSec: poller.intervals.stableUptimeSec }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [snapshot, primarySessionName, primarySessionId, poller, tick],
  );
  useEffect(() => {
    if (!state.reconnecting) return;
    const t = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [state.reconnecting]);

  const [isReconnecting, setIsReconnecting] = useState(false);
  const [lastReconnect, setLastReconnect] = useState<ReconnectResult | null>(null);
  const inflight = useRef<Promise<ReconnectResult> | null>(null);
  const sessionId = state.sessionId;
  const reconnect = useCallback((): Promise<ReconnectResult> => {
    if (inflight.current) return inflight.current;
    setIsReconnecting(true);
    const p = (async () => {
      let r: ReconnectResult;
      try {
        r = await client.reconnect(sessionId ?? undefined);
      } catch (e) {
        r = { success: false, message: (e as Error)?.message ?? String(e) };
      }
      setLastReconnect(r);
      setIsReconnecting(false);
      inflight.current = null;
      void poller.refresh();
      void poller.refreshDeep();
      return r;
    })();
    inflight.current = p;
    return p;
  }, [client, sessionId, poller]);

  const refresh = useCallback(() => {
    void poller.refresh();
    void poller.refreshDeep();
  }, [poller]);

  const refreshDeep = useCallback(() => {
    void poller.refreshDeep();
  }, [poller]);

  const subscribeQr = useCallback((fn: (qr: QrCode) => void) => {
    qrListeners.current.add(fn);
    return () => {
      qrListeners.current.delete(fn);
    };
  }, []);

  const value = useMemo<WhatsAppStatusContextValue>(
    () => ({
      ...state,
      reconnect,
      isReconnecting,
      lastReconnect,
      refresh,
      refreshDeep,
      settingsHref,
      addSessionHref,
      onNavigate,
      streaming,
      snapshot,
      subscribeQr,
    }),
    [
      state,
      reconnect,
      isReconnecting,
      lastReconnect,
      refresh,
      refreshDeep,
      settingsHref,
      addSessionHref,
      onNavigate,
      streaming,
      snapshot,
      subscribeQr,
    ],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

/** The WhatsApp status and its actions; must be used inside `WhatsAppStatusProvider`. */
export function useWhatsAppStatus(): WhatsAppStatusContextValue {
  const v = useContext(Ctx);
  if (!v) throw new Error("useWhatsAppStatus must be used inside <WhatsAppStatusProvider>");
  return v;
}
