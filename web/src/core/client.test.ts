import { attemptOutcome, explainError } from "./format";
import { describe, expect, it, vi } from "vitest";
import { ApiError, HttpStatusClient, pickPrimary, ServerUnreachableError } from "./client";
import { deriveStatus } from "./status";
import { StatusPoller } from "./poller";
import { deep, health, session } from "../test/fakes";

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

describe("HttpStatusClient", () => {
  it("calls /health and /health/deep under the base URL with the fetch options", async () => {
    const f = vi.fn(async (url: RequestInfo | URL, _init?: RequestInit) => (String(url).endsWith("/deep") ? json(200, deep()) : json(200, health())));
    const c = new HttpStatusClient({ baseUrl: "http://h:8080/", fetchOptions: { credentials: "include", headers: { "x-api-key": "k" } }, fetch: f as typeof fetch });
    expect((await c.getHealth()).status).toBe("ok");
    expect((await c.getDeepHealth()).sessions).toHaveLength(1);
    expect(f.mock.calls[0][0]).toBe("http://h:8080/health");
    expect(f.mock.calls[1][0]).toBe("http://h:8080/health/deep");
    const init = f.mock.calls[0][1] as RequestInit;
    expect(init.credentials).toBe("include");
    expect(new Headers(init.headers).get("x-api-key")).toBe("k");
  });

  it("reads the 503 of a database outage as a health answer", async () => {
    const c = new HttpStatusClient({ fetch: (async () => json(503, health({ status: "error" }))) as typeof fetch });
    expect((await c.getHealth()).status).toBe("error");
  });

  it("maps network errors and non-wagate answers to ServerUnreachableError, API errors to ApiError", async () => {
    const down = new HttpStatusClient({ fetch: (async () => { throw new TypeError("Failed to fetch"); }) as typeof fetch });
    await expect(down.getHealth()).rejects.toBeInstanceOf(ServerUnreachableError);
    const proxy = new HttpStatusClient({ fetch: (async () => new Response("<html>Bad gateway</html>", { status: 502 })) as typeof fetch });
    await expect(proxy.getHealth()).rejects.toBeInstanceOf(ServerUnreachableError);
    const denied = new HttpStatusClient({ fetch: (async () => json(401, { error: "missing or invalid API key" })) as typeof fetch });
    const err = await denied.getDeepHealth().catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(401);
    expect(err.message).toBe("missing or invalid API key");
  });

  it("POSTs reconnect with the mutation headers, finding the primary session when no id is given", async () => {
    const f = vi.fn(async (url: RequestInfo | URL, _init?: RequestInit) =>
      String(url).endsWith("/health/deep")
        ? json(200, deep([session({ sessionId: "x", sessionName: "other" }), session({ sessionId: "p", sessionName: "primary" })]))
        : json(200, { success: true, message: "connected" }),
    );
    const c = new HttpStatusClient({ baseUrl: "/api", mutationHeaders: { "X-Wagate-Csrf": "1" }, fetch: f as typeof fetch });
    expect(await c.reconnect()).toEqual({ success: true, message: "connected" });
    const [url, init] = f.mock.calls[1] as [string, RequestInit];
    expect(url).toBe("/api/sessions/p/reconnect");
    expect(init.method).toBe("POST");
    expect(new Headers(init.headers).get("X-Wagate-Csrf")).toBe("1");
    expect(new Headers(f.mock.calls[0][1]!.headers).get("X-Wagate-Csrf")).toBeNull();
  });
});

describe("deriveStatus", () => {
  const snap = (p = {}) => ({ ...new StatusPoller({ client: {} as never, visibility: null }).getSnapshot(), ...p });
  it("is Checking… before anything is known", () => {
    const s = deriveStatus(snap());
    expect(s).toMatchObject({ status: "disconnected", unknown: true, statusText: "Checking…", serverReachable: false });
  });
  it("uses /health's counts without details", () => {
    expect(deriveStatus(snap({ reachable: true, health: health(), healthAt: Date.now() })).status).toBe("connected");
    expect(deriveStatus(snap({ reachable: true, health: health({ connected: 0 }), healthAt: Date.now() })).status).toBe("disconnected");
  });
  it("lets a newer /health answer overrule stale details", () => {
    const t = Date.now();
    const s = deriveStatus(snap({ reachable: true, sessions: [session()], deepAt: t - 1000, health: health({ connected: 0 }), healthAt: t }));
    expect(s.status).toBe("disconnected");
    expect(s.phoneNumber).toBe("27821231234");
  });
  it("explains a breaker and a missing server", () => {
    const s = deriveStatus(snap({ reachable: true, sessions: [session({ connectionStatus: "disconnected" })], deep: deep([], { breaker: { open: true, reason: "outdated" } }) }));
    expect(s.lastError).toBe("outdated");
    expect(deriveStatus(snap({ reachable: false, error: "server unreachable: x" })).lastError).toBe("server unreachable: x");
  });
});

describe("deriveStatus: no session, and a followed session", () => {
  const snap = (p = {}) => ({ ...new StatusPoller({ client: {} as never, visibility: null }).getSnapshot(), ...p });
  it("says No session (not Reconnecting…) when the server has none, even just after a start", () => {
    const s = deriveStatus(snap({ reachable: true, health: health({ total: 0, connected: 0, uptime: 2 }), healthAt: Date.now() }));
    expect(s).toMatchObject({ noSession: true, reconnecting: false, statusText: "No session", status: "disconnected" });
    expect(s.lastError).toBe("no WhatsApp session has been added yet");
  });
  it("is not 'no session' while one is known from the details or the server is not reachable", () => {
    expect(deriveStatus(snap({ reachable: true, sessions: [session()], health: health({ total: 0, connected: 0 }), healthAt: 1 })).noSession).toBe(false);
    expect(deriveStatus(snap({ reachable: false })).noSession).toBe(false);
  });
  it("follows the chosen session by id, and falls back to the name when it is gone", () => {
    const a = session({ sessionId: "a", sessionName: "primary", connectionStatus: "connected" });
    const b = session({ sessionId: "b", sessionName: "shop", connectionStatus: "disconnected", socketAlive: false });
    const base = { reachable: true, sessions: [a, b], source: "stream" as const };
    const s = deriveStatus(snap(base), { primarySessionId: "b" });
    expect(s).toMatchObject({ sessionId: "b", sessionName: "shop", status: "disconnected" });
    expect(deriveStatus(snap(base), { primarySessionId: "gone" })).toMatchObject({ sessionId: "a", status: "connected" });
    expect(pickPrimary([a, b], "shop")?.sessionId).toBe("b");
  });
});

describe("explainError", () => {
  it("turns the server's texts into sentences and keeps the text as the detail", () => {
    const e = explainError("protocol violation: HTTP/1.1 503 Service Unavailable (transient 503)")!;
    expect(e.summary).toBe("WhatsApp's servers had a temporary problem. wagate tries again by itself.");
    expect(e.detail).toBe("protocol violation: HTTP/1.1 503 Service Unavailable (transient 503)");
    const cases: [string, RegExp][] = [
      ["logged out (401): re-authentication needed, pair the device again", /logged this device out/],
      ["replaced (440): another client took over this session", /Another WhatsApp Web client/],
      ["keepalive ping not answered in time", /stopped answering/],
      ["automatic recovery limit reached (5 in 1h)", /paused after too many failures/],
      ["session 1 is sealed under key ab12, which is neither the current key", /saved login .* cannot be read/],
      ["connect: Connection refused", /connection to WhatsApp was lost/],
      ["server unreachable: Failed to fetch", /wagate server cannot be reached/],
      ["missing or invalid API key", /signed out/],
      ["there is no session to reconnect", /No WhatsApp session/],
    ];
    for (const [raw, re] of cases) expect(explainError(raw)!.summary, raw).toMatch(re);
    expect(explainError("zz top")).toEqual({ summary: "Something went wrong.", detail: "zz top" });
    expect(explainError(null)).toBeNull();
    expect(explainError("")).toBeNull();
  });
});

describe("attemptOutcome", () => {
  it("marks what worked as good, what failed as bad, and what was begun or unreachable as neither", () => {
    expect(["connected", "ok"].map(attemptOutcome)).toEqual(["good", "good"]);
    expect(["failed", "rate_limited", "needs_reauth"].map(attemptOutcome)).toEqual(["bad", "bad", "bad"]);
    expect(["started", "unreachable"].map(attemptOutcome)).toEqual(["neutral", "neutral"]);
  });
});
