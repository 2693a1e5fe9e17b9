import { render, screen, waitFor, within } from "@testing-library/react";
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
  it("draws an SVG picture with labels and a legend", () => {
    const t0 = Date.now() - 3600_000;
    render(<HistoryTimeline entries={[{ at: new Date(t0 + 60_000).toISOString(), status: "connected", reason: null }]} from={t0} to={t0 + 3600_000} />);
    const fig = screen.getByTestId("history-timeline");
    // The picture starts at the first record: the session did not exist before it.
    expect(within(fig).getByRole("img").getAttribute("aria-label")).toMatch(/^Connected 100% of the time/);
    expect(fig.querySelectorAll('[data-testid="timeline-segment"]')).toHaveLength(1);
    expect(fig.textContent).toContain("Disconnected"); // the legend
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
function fakeServer() {
  let signedIn = false;
  const calls: { method: string; url: string; csrf: string | null }[] = [];
  const j = (status: number, body?: unknown) => new Response(body === undefined ? null : JSON.stringify(body), { status });
  const f = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const method = init?.method ?? "GET";
    const csrf = new Headers(init?.headers).get("X-Wagate-Csrf");
    calls.push({ method, url, csrf });
    if (method !== "GET" && csrf !== "1") return j(403, { error: "csrf" });
    if (url === "/health") return j(200, health());
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
  return { f, calls };
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
});
