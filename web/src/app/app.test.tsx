import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { DashboardApi } from "./api";
import { App } from "./App";
import { readConfig } from "./config";
import { buildSegments, summarize } from "./timeline";
import { HistoryTimeline } from "./pages/HistoryTimeline";
import { deep, health, session } from "../test/fakes";

describe("readConfig", () => {
  it("reads the test hooks from the query string", () => {
    const c = readConfig("?pollMs=500&deepPollMs=2000&retryMs=200&restartMs=100&stableSec=5&qrMs=1000&events=0&api=http://x:1/");
    expect(c.intervals).toEqual({ lightMs: 500, deepMs: 2000, retryMs: [200], restartMs: 100, stableUptimeSec: 5 });
    expect(c).toMatchObject({ apiBase: "http://x:1", events: false, qrRefreshMs: 1000 });
    expect(readConfig("?retryMs=100,200,300").intervals.retryMs).toEqual([100, 200, 300]);
    expect(readConfig("").intervals).toEqual({});
    expect(readConfig("").events).toBe(true);
  });
});

describe("timeline", () => {
  it("turns history entries into periods", () => {
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    const h = (m: number, status: string) => ({ at: new Date(t0 + m * 60_000).toISOString(), status, reason: null });
    const segs = buildSegments([h(-5, "connected"), h(10, "disconnected"), h(15, "connecting"), h(16, "connected")], t0, t0 + 60 * 60_000);
    expect(segs.map((s) => [s.band, (s.end - s.start) / 60_000])).toEqual([["ok", 10], ["down", 5], ["pending", 1], ["ok", 44]]);
    expect(summarize(segs)).toEqual({ connectedPct: 90, disconnections: 1 });
  });
  it("draws the whole window: a young session starts part-way, after a period before it existed", () => {
    const now = Date.now();
    const created = new Date(now - 2 * 3600_000).toISOString();
    const entries = [{ at: new Date(now - 2 * 3600_000 + 1000).toISOString(), status: "connected", reason: null }];
    const day = render(<HistoryTimeline entries={entries} from={now - 86400_000} to={now} createdAt={created} />);
    const week = render(<HistoryTimeline entries={entries} from={now - 7 * 86400_000} to={now} createdAt={created} />);
    const width = (r: typeof day, band: string) =>
      Number(r.container.querySelector(`[data-band="${band}"] rect`)!.getAttribute("width"));
    // 2 h of 24 h and of 7 days: the connected part is 7 times narrower in the week's picture.
    expect(width(day, "ok")).toBeGreaterThan(80);
    expect(width(week, "ok")).toBeLessThan(width(day, "ok") / 6);
    expect(width(day, "none")).toBeGreaterThan(800);
    // Only the session's lifetime counts: connected all of it, but for the first second.
    const label = within(day.container).getByRole("img").getAttribute("aria-label")!;
    expect(label).toMatch(/^Connected 100% of the time since the session was created/);
    expect(day.container.textContent).toContain("Before the session existed"); // the legend
    expect(day.container.textContent).toContain("Disconnected");
    day.unmount();
    week.unmount();
  });
  it("an older session fills the window", () => {
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    const h = (m: number, status: string) => ({ at: new Date(t0 + m * 60_000).toISOString(), status, reason: null });
    const segs = buildSegments([h(-5, "connected"), h(30, "disconnected")], t0, t0 + 60 * 60_000, t0 - 86400_000);
    expect(segs.map((s) => s.band)).toEqual(["ok", "down"]);
    const young = buildSegments([h(20, "connected")], t0, t0 + 60 * 60_000, t0 + 10 * 60_000);
    expect(young.map((s) => [s.band, (s.end - s.start) / 60_000])).toEqual([["none", 10], ["unknown", 10], ["ok", 40]]);
    expect(summarize(young)).toEqual({ connectedPct: 80, disconnections: 0 });
  });
  it("says there is no data when there is no history", () => {
    const t0 = Date.now() - 3600_000;
    render(<HistoryTimeline entries={[]} from={t0} to={t0 + 3600_000} />);
    const fig = screen.getAllByTestId("history-timeline").at(-1)!;
    const segs = fig.querySelectorAll('[data-testid="timeline-segment"]');
    expect(segs).toHaveLength(1);
    expect(segs[0].getAttribute("data-band")).toBe("unknown");
    expect(within(fig).getByRole("img").getAttribute("aria-label")).toMatch(/^Connected 0% of the time/);
  });
});

/** A fake wagate behind fetch: cookie sign-in, CSRF header checks. */
function fakeServer(opts: { signedIn?: boolean } = {}) {
  let signedIn = opts.signedIn ?? false;
  let uptime = 3600;
  const calls: { method: string; url: string; csrf: string | null }[] = [];
  const j = (status: number, body?: unknown) => new Response(body === undefined ? null : JSON.stringify(body), { status });
  const f = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const method = init?.method ?? "GET";
    const csrf = new Headers(init?.headers).get("X-Wagate-Csrf");
    calls.push({ method, url, csrf });
    if (method !== "GET" && csrf !== "1") return j(403, { error: "csrf" });
    if (url === "/health") return j(200, health({ uptime }));
    if (url === "/auth/session") return j(200, { authenticated: signedIn });
    if (url === "/auth/login") {
      const body = JSON.parse(String(init?.body));
      if (body.apiKey !== "wg_secret_key_123") return j(401, { error: "missing or invalid API key" });
      signedIn = true;
      return j(204);
    }
    if (!signedIn) return j(401, { error: "missing or invalid API key" });
    if (url === "/auth/logout") return (signedIn = false), j(204);
    if (url === "/health/deep")
      return j(200, deep([session({ recentRecoveryAttempts: [{ at: new Date().toISOString(), trigger: "monitor", action: "reconnect", result: "failed", detail: "x" }] } as never)]));
    return j(404, { error: "no such endpoint" });
  });
  return {
    f,
    calls,
    /** The server restarts and no longer accepts the browser's sign-in (a new key, or it was revoked). */
    restartSignedOut() {
      signedIn = false;
      uptime = 1;
    },
  };
}

describe("the dashboard", () => {
  it("signs in with the API key, shows the sessions, and signs out", async () => {
    const user = userEvent.setup();
    const { f, calls } = fakeServer();
    const api = new DashboardApi("", f as typeof fetch);
    render(<App search="?events=0" api={api} />);
    const form = await screen.findByTestId("login-form");
    await user.type(within(form).getByLabelText("API key"), "wrong");
    await user.click(screen.getByTestId("login-submit"));
    await screen.findByText("That API key is not valid.");
    await user.clear(within(form).getByLabelText("API key"));
    await user.type(within(form).getByLabelText("API key"), "wg_secret_key_123");
    await user.click(screen.getByTestId("login-submit"));
    const row = await screen.findByTestId("session-row");
    expect(row.getAttribute("data-session-id")).toBe("6f1c2b0e-3f0b-4e55-9d5a-0c3f1f6d2a11");
    expect(row.textContent).toContain("primary");
    expect(row.textContent).toContain("+27 **** 1234"); // masked in the table
    expect(row.textContent).not.toContain("27821231234");
    expect(row.textContent).toMatch(/reconnect \(monitor\) — failed/);
    await waitFor(() => expect(screen.getByTestId("wa-status-dot").getAttribute("aria-label")).toBe("WhatsApp: Connected"));
    expect(screen.getByTestId("wa-status-badge").textContent).toContain("WhatsApp Connected");
    // the key is not kept anywhere in the browser
    expect(JSON.stringify({ ...localStorage })).not.toContain("wg_secret");
    expect(JSON.stringify({ ...sessionStorage })).not.toContain("wg_secret");
    expect(document.cookie).not.toContain("wg_secret");
    expect(calls.filter((c) => c.method === "POST").every((c) => c.csrf === "1")).toBe(true);
    await user.click(screen.getByTestId("sign-out"));
    await screen.findByTestId("login-form");
    expect(calls.some((c) => c.url === "/auth/logout" && c.method === "POST")).toBe(true);
  });

  it("the sessions page adds no deep poll of its own: one on opening, then only the provider's schedule", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const { f, calls } = fakeServer({ signedIn: true });
      render(<App search="?events=0" api={new DashboardApi("", f as typeof fetch)} />);
      await screen.findByTestId("session-row");
      const deepCalls = () => calls.filter((c) => c.url === "/health/deep").length;
      const before = deepCalls();
      expect(before).toBeLessThanOrEqual(2); // the provider's first deep poll, and the page's one on opening
      // Four minutes of light polls (every 30 s) with nothing changing: no deep poll at all.
      await act(() => vi.advanceTimersByTimeAsync(4 * 60_000));
      expect(calls.filter((c) => c.url === "/health").length).toBeGreaterThanOrEqual(8);
      expect(deepCalls()).toBe(before);
      // The provider's own deep poll comes at 5 min.
      await act(() => vi.advanceTimersByTimeAsync(90_000));
      expect(deepCalls()).toBe(before + 1);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a 401 on a status poll (the server restarted without the sign-in) returns to the sign-in page", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const srv = fakeServer({ signedIn: true });
      render(<App search="?events=0" api={new DashboardApi("", srv.f as typeof fetch)} />);
      await waitFor(() => expect(screen.getByTestId("wa-status-dot").getAttribute("aria-label")).toBe("WhatsApp: Connected"));
      srv.restartSignedOut();
      // The next light poll sees the restart (uptime went down) and asks for the details: 401.
      await act(() => vi.advanceTimersByTimeAsync(31_000));
      await screen.findByTestId("login-form");
      expect(screen.queryByTestId("wa-status-dot")).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it("an empty server leads to Add session everywhere, and never says Reconnecting…", async () => {
    const srv = fakeServer({ signedIn: true });
    const f = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = String(input);
      if (url === "/health") return new Response(JSON.stringify(health({ total: 0, connected: 0, uptime: 2 })), { status: 200 });
      if (url === "/health/deep") return new Response(JSON.stringify(deep([])), { status: 200 });
      return srv.f(input, init);
    });
    render(<App search="?events=0" api={new DashboardApi("", f as typeof fetch)} />);
    const empty = await screen.findByTestId("sessions-empty");
    expect(within(empty).getByRole("link", { name: "Add session" }).getAttribute("href")).toBe("/new-session");
    await waitFor(() => expect(screen.getByTestId("wa-status-badge").textContent).toContain("No WhatsApp session"));
    expect(document.body.textContent).not.toContain("Reconnecting");
  });
});
