import { ApiError, type StatusClient } from "./client";
import type { DeepHealth, Health, Session } from "./types";

/** Every interval of the polling design; all configurable. */
export interface PollIntervals {
  /** Light poll of `/health` (default 30 s). */
  lightMs: number;
  /** Deep poll of `/health/deep` (default 5 min). */
  deepMs: number;
  /** Retries while the server is unreachable: after the 1st, 2nd, ... failure; the last one repeats (5 s, 10 s, 30 s). */
  retryMs: number[];
  /** Poll interval while the server has just (re)started (default 5 s). */
  restartMs: number;
  /** Uptime (seconds) under which the server counts as just (re)started (default 60). */
  stableUptimeSec: number;
}

export const DEFAULT_INTERVALS: PollIntervals = {
  lightMs: 30_000,
  deepMs: 300_000,
  retryMs: [5_000, 10_000, 30_000],
  restartMs: 5_000,
  stableUptimeSec: 60,
};

export type PollPhase =
  | "stopped" // not started
  | "normal" // light every lightMs, deep every deepMs
  | "restarting" // uptime < stableUptimeSec: light every restartMs
  | "retrying" // unreachable: light on the retry schedule, deep paused
  | "hidden" // the tab is hidden: nothing runs
  | "paused"; // the event stream is up: nothing runs

/** Everything known about the server; fed by the poller and by the event stream. */
export interface StatusSnapshot {
  health: Health | null;
  /** When `health` arrived (ms since epoch). */
  healthAt: number | null;
  /** Sessions as last seen (from `/health/deep` or `session` events), oldest first. */
  sessions: Session[];
  deep: DeepHealth | null;
  deepAt: number | null;
  /** null until the first answer or failure. */
  reachable: boolean | null;
  /** The last failure (unreachable, or an API error), cleared by the next success. */
  error: string | null;
  /** The last failure was a 401: the credentials are missing or wrong. */
  unauthorized: boolean;
  /** When the last check finished, successfully or not (ms since epoch). */
  lastChecked: number | null;
  isChecking: boolean;
  phase: PollPhase;
  /** Consecutive failures. */
  failures: number;
  /** When the next light poll is due (ms since epoch), or null. */
  nextPollAt: number | null;
  /** Where the latest data came from. */
  source: "poll" | "stream";
}

export interface VisibilitySource {
  readonly hidden: boolean;
  addEventListener(type: "visibilitychange", fn: () => void): void;
  removeEventListener(type: "visibilitychange", fn: () => void): void;
}

export interface StatusPollerOptions {
  client: StatusClient;
  intervals?: Partial<PollIntervals>;
  /** Run a deep poll at once when the light poll's counts change or the server restarted (default true). */
  refreshDeepOnChange?: boolean;
  /** Page visibility (default: `document` when there is one; `null` for none). */
  visibility?: VisibilitySource | null;
  now?: () => number;
}

type Listener = (s: StatusSnapshot) => void;

function sortSessions(list: Session[]): Session[] {
  return [...list].sort((a, b) => (a.createdAt ?? "").localeCompare(b.createdAt ?? ""));
}

function countsKey(h: Health | null): string {
  if (!h) return "";
  const s = h.sessions;
  return `${h.status}/${s.total}/${s.connected}/${s.connecting}/${s.disconnected}`;
}

/**
 * The scheduler of the status polls (no framework). Follows the design:
 * light poll every 30 s, deep poll every 5 min; nothing while the tab is hidden, both at once when it shows
 * again; when unreachable, retries after 5 s, 10 s, 30 s, then every 30 s (deep paused, run at once when the
 * server is back); while the server's uptime is under 60 s, polls every 5 s until it is stable.
 */
export class StatusPoller {
  readonly intervals: PollIntervals;
  private readonly client: StatusClient;
  private readonly refreshDeepOnChange: boolean;
  private readonly visibility: VisibilitySource | null;
  private readonly now: () => number;
  private listeners = new Set<Listener>();
  private snap: StatusSnapshot;
  private lightTimer: ReturnType<typeof setTimeout> | null = null;
  private deepTimer: ReturnType<typeof setTimeout> | null = null;
  private lightInFlight = false;
  private deepInFlight = false;
  private started = false;
  private paused = false;
  /** Bumped on stop/pause so that answers of older polls do not schedule anything. */
  private generation = 0;

  constructor(opts: StatusPollerOptions) {
    this.client = opts.client;
    this.intervals = { ...DEFAULT_INTERVALS, ...stripUndefined(opts.intervals ?? {}) };
    if (this.intervals.retryMs.length === 0) this.intervals.retryMs = DEFAULT_INTERVALS.retryMs;
    this.refreshDeepOnChange = opts.refreshDeepOnChange ?? true;
    this.visibility =
      opts.visibility !== undefined ? opts.visibility : typeof document !== "undefined" ? document : null;
    this.now = opts.now ?? (() => Date.now());
    this.snap = {
      health: null,
      healthAt: null,
      sessions: [],
      deep: null,
      deepAt: null,
      reachable: null,
      error: null,
      unauthorized: false,
      lastChecked: null,
      isChecking: false,
      phase: "stopped",
      failures: 0,
      nextPollAt: null,
      source: "poll",
    };
  }

  getSnapshot(): StatusSnapshot {
    return this.snap;
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private set(patch: Partial<StatusSnapshot>): void {
    this.snap = { ...this.snap, ...patch };
    for (const fn of [...this.listeners]) fn(this.snap);
  }

  private hidden(): boolean {
    return !!this.visibility?.hidden;
  }

  private readonly onVisibility = () => {
    if (!this.started || this.paused) return;
    if (this.hidden()) {
      this.halt();
      this.set({ phase: "hidden", nextPollAt: null, isChecking: false });
    } else {
      this.runAll();
    }
  };

  /** Starts polling (both polls at once, unless the tab is hidden). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.visibility?.addEventListener("visibilitychange", this.onVisibility);
    if (this.paused) this.set({ phase: "paused" });
    else if (this.hidden()) this.set({ phase: "hidden" });
    else this.runAll();
  }

  /** Stops everything. */
  stop(): void {
    if (!this.started) return;
    this.started = false;
    this.visibility?.removeEventListener("visibilitychange", this.onVisibility);
    this.halt();
    this.set({ phase: "stopped", nextPollAt: null, isChecking: false });
  }

  /** Suspends the polls (the event stream carries the news). */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.halt();
    this.set({ phase: this.started ? "paused" : this.snap.phase, nextPollAt: null, isChecking: false });
  }

  /** Resumes the polls after `pause()`: both run at once (unless hidden). */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.started) return;
    if (this.hidden()) this.set({ phase: "hidden" });
    else this.runAll();
  }

  /** Runs the light and the deep poll now and restarts their schedules. */
  runAll(): void {
    if (!this.started || this.paused) return;
    void this.pollLight();
    void this.pollDeep();
  }

  /** Runs the light poll now. */
  refresh(): Promise<void> {
    return this.pollLight();
  }

  /** Runs the deep poll now. */
  refreshDeep(): Promise<void> {
    return this.pollDeep();
  }

  /** Cancels the timers and makes the answers of polls under way count for data only. */
  private halt(): void {
    this.clearTimers();
    this.generation++;
    this.lightInFlight = this.deepInFlight = false;
  }

  private clearTimers(): void {
    if (this.lightTimer) clearTimeout(this.lightTimer);
    if (this.deepTimer) clearTimeout(this.deepTimer);
    this.lightTimer = this.deepTimer = null;
  }

  private active(gen: number): boolean {
    return this.started && !this.paused && gen === this.generation && !this.hidden();
  }

  private scheduleLight(delay: number, phase: PollPhase): void {
    if (this.lightTimer) clearTimeout(this.lightTimer);
    this.lightTimer = setTimeout(() => {
      this.lightTimer = null;
      void this.pollLight();
    }, delay);
    this.set({ phase, nextPollAt: this.now() + delay });
  }

  private scheduleDeep(delay: number): void {
    if (this.deepTimer) clearTimeout(this.deepTimer);
    this.deepTimer = setTimeout(() => {
      this.deepTimer = null;
      void this.pollDeep();
    }, delay);
  }

  /** The uptime now, from the last health answer. */
  private restarting(h: Health): boolean {
    return h.uptime < this.intervals.stableUptimeSec;
  }

  private async pollLight(): Promise<void> {
    if (this.lightInFlight) return;
    this.lightInFlight = true;
    const gen = this.generation;
    if (this.lightTimer) clearTimeout(this.lightTimer);
    this.lightTimer = null;
    this.set({ isChecking: true });
    try {
      const h = await this.client.getHealth();
      if (gen !== this.generation) return;
      const prev = this.snap.health;
      const wasDown = this.snap.reachable === false;
      const wasRestarting = prev ? this.restarting(prev) : false;
      this.ingestHealth(h, "poll");
      this.set({ isChecking: this.deepInFlight });
      if (!this.active(gen)) return;
      const restarting = this.restarting(h);
      this.scheduleLight(restarting ? this.intervals.restartMs : this.intervals.lightMs, restarting ? "restarting" : "normal");
      const changed = prev !== null && (countsKey(prev) !== countsKey(h) || h.uptime < prev.uptime);
      if (wasDown || (wasRestarting && !restarting) || (this.refreshDeepOnChange && changed)) void this.pollDeep();
    } catch (e) {
      if (gen !== this.generation) return;
      this.fail(e);
      if (!this.active(gen)) return;
      this.enterRetry();
    } finally {
      if (gen === this.generation) this.lightInFlight = false;
    }
  }

  private async pollDeep(): Promise<void> {
    if (this.deepInFlight) return;
    this.deepInFlight = true;
    const gen = this.generation;
    if (this.deepTimer) clearTimeout(this.deepTimer);
    this.deepTimer = null;
    this.set({ isChecking: true });
    try {
      const d = await this.client.getDeepHealth();
      if (gen !== this.generation) return;
      this.ingestDeep(d, "poll");
      this.set({ isChecking: this.lightInFlight });
      if (this.active(gen)) this.scheduleDeep(this.intervals.deepMs);
    } catch (e) {
      if (gen !== this.generation) return;
      const unreachable = !(e instanceof ApiError);
      // While the light poll is under way or already retrying, it alone counts the failures.
      const lightHandles = this.lightInFlight || this.snap.phase === "retrying";
      this.fail(e, !(unreachable && lightHandles));
      if (!this.active(gen)) return;
      if (unreachable) {
        // The light poll's retry schedule takes over; deep runs again once the server answers.
        if (!lightHandles) this.enterRetry();
      } else {
        this.scheduleDeep(this.intervals.deepMs);
      }
    } finally {
      if (gen === this.generation) this.deepInFlight = false;
    }
  }

  private fail(e: unknown, count = true): void {
    const api = e instanceof ApiError;
    this.set({
      reachable: api ? true : false,
      error: (e as Error)?.message ?? String(e),
      unauthorized: api && (e as ApiError).status === 401,
      failures: this.snap.failures + (count ? 1 : 0),
      lastChecked: this.now(),
      isChecking: false,
    });
  }

  private enterRetry(): void {
    if (this.deepTimer) clearTimeout(this.deepTimer);
    this.deepTimer = null;
    const r = this.intervals.retryMs;
    const delay = r[Math.min(this.snap.failures - 1, r.length - 1)] ?? r[r.length - 1];
    this.scheduleLight(delay, "retrying");
  }

  /** Takes a health answer (from a poll or a `health` event). */
  ingestHealth(h: Health, source: "poll" | "stream"): void {
    this.set({
      health: h,
      healthAt: this.now(),
      reachable: true,
      error: null,
      unauthorized: false,
      failures: 0,
      lastChecked: this.now(),
      source,
    });
  }

  /** Takes a deep health answer: its sessions replace the known ones. */
  ingestDeep(d: DeepHealth, source: "poll" | "stream"): void {
    this.set({
      deep: d,
      deepAt: this.now(),
      sessions: sortSessions(d.sessions),
      reachable: true,
      error: null,
      unauthorized: false,
      failures: 0,
      lastChecked: this.now(),
      source,
    });
  }

  /** Takes one session (a `session` event): replaces the one with its id, or adds it. */
  ingestSession(s: Session, source: "poll" | "stream" = "stream"): void {
    const list = this.snap.sessions.filter((x) => x.sessionId !== s.sessionId);
    list.push(s);
    this.set({ sessions: sortSessions(list), reachable: true, error: null, lastChecked: this.now(), source });
  }

  /** Forgets every session (a `reset` event, or a new server process). */
  clearSessions(): void {
    this.set({ sessions: [] });
  }

  /** Records that the event stream failed (the poller takes over after `resume()`). */
  markStreamDown(message: string): void {
    this.set({ error: message, lastChecked: this.now() });
  }

  /** Records a sign of life without data (the stream opened). */
  touch(): void {
    this.set({ reachable: true, lastChecked: this.now() });
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
