// A typed client for wagate's API, used on the server only: the key never reaches the browser.
import "server-only";
import type { DeepHealth, Health, ReconnectResult } from "@wagate/web/server";

function base(): string {
  const u = process.env.WAGATE_URL;
  if (!u) throw new Error("WAGATE_URL is not set (e.g. http://127.0.0.1:8080)");
  return u.replace(/\/$/, "");
}

function key(): string {
  const k = process.env.WAGATE_API_KEY;
  if (!k) throw new Error("WAGATE_API_KEY is not set");
  return k;
}

async function json<T>(path: string, init: RequestInit = {}, withKey = true): Promise<{ status: number; body: T }> {
  const headers = new Headers(init.headers);
  if (withKey) headers.set("x-api-key", key());
  const r = await fetch(`${base()}${path}`, { ...init, headers, cache: "no-store" });
  return { status: r.status, body: (await r.json()) as T };
}

/** GET /health: 200, or 503 with status "error" (the body says which). */
export async function getHealth(): Promise<Health> {
  return (await json<Health>("/health", {}, false)).body;
}

export async function getDeepHealth(): Promise<DeepHealth> {
  const r = await json<DeepHealth & { error?: string }>("/health/deep");
  if (r.status !== 200 && r.status !== 503) throw new Error(r.body.error ?? `HTTP ${r.status}`);
  return r.body;
}

/** Reconnects the session named "primary" (the one the dot follows). */
export async function reconnectPrimary(): Promise<ReconnectResult> {
  const deep = await getDeepHealth();
  const s = deep.sessions.find((x) => x.sessionName === "primary") ?? deep.sessions[0];
  if (!s) return { success: false, message: "there is no session to reconnect: add one in wagate's dashboard" };
  const r = await json<ReconnectResult>(`/sessions/${encodeURIComponent(s.sessionId)}/reconnect`, { method: "POST" });
  return r.body;
}

/** GET /events, for the proxy route: the stream itself. */
export async function openEvents(lastEventId: string | null, signal: AbortSignal): Promise<Response> {
  const headers = new Headers({ "x-api-key": key(), accept: "text/event-stream" });
  if (lastEventId) headers.set("last-event-id", lastEventId);
  return fetch(`${base()}/events`, { headers, cache: "no-store", signal });
}
