import type { DeepHealth, Health, ReconnectResult } from "./types";

/**
 * What the status components need from a wagate server. `HttpStatusClient` talks to the API directly; a
 * Next.js app implements it with server actions so that the API key never reaches the browser.
 */
export interface StatusClient {
  /** `GET /health`. Resolves for 200 and for the 503 that carries `status: "error"` (database down). */
  getHealth(signal?: AbortSignal): Promise<Health>;
  /** `GET /health/deep`. */
  getDeepHealth(signal?: AbortSignal): Promise<DeepHealth>;
  /**
   * `POST /sessions/{id}/reconnect`. Without an id the implementation picks the primary session itself
   * (a server action that knows only "the primary session" may ignore the id).
   */
  reconnect(sessionId?: string): Promise<ReconnectResult>;
}

/** The server could not be reached (network error, or an answer that is not wagate's). */
export class ServerUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ServerUnreachableError";
  }
}

/** The server answered with an error (`{"error": "..."}`). */
export class ApiError extends Error {
  constructor(
    public readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface HttpStatusClientOptions {
  /** The API's base URL, e.g. `""` (same origin), `"/api"` or `"http://127.0.0.1:8080"`. */
  baseUrl?: string;
  /** Merged into every request (e.g. `{credentials: "include"}` or `{headers: {"x-api-key": key}}`). */
  fetchOptions?: RequestInit;
  /** Extra headers for state-changing requests (the dashboard sends `{"X-Wagate-Csrf": "1"}`). */
  mutationHeaders?: Record<string, string>;
  /** Session name that counts as primary (default `"primary"`). */
  primarySessionName?: string;
  /** The session id that counts as primary; wins over the name while that session exists. */
  primarySessionId?: string | null;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, "") + path;
}

function mergeHeaders(...sets: (HeadersInit | undefined)[]): Headers {
  const h = new Headers();
  for (const s of sets) if (s) new Headers(s).forEach((v, k) => h.set(k, v));
  return h;
}

/** Picks the session that drives the status: the one named `primary`, else the first. */
/**
 * The session the status follows: the one with `id` when given and present, else the one named `name`, else
 * the oldest. A followed id that is gone (deleted) falls back to the name, so the dot never goes grey for good.
 */
export function pickPrimary<T extends { sessionName: string; sessionId: string }>(
  sessions: readonly T[],
  name = "primary",
  id?: string | null,
): T | null {
  return (
    (id ? sessions.find((s) => s.sessionId === id) : undefined) ??
    sessions.find((s) => s.sessionName === name) ??
    sessions[0] ??
    null
  );
}

export class HttpStatusClient implements StatusClient {
  private readonly baseUrl: string;
  private readonly opts: HttpStatusClientOptions;

  constructor(opts: HttpStatusClientOptions | string = {}) {
    this.opts = typeof opts === "string" ? { baseUrl: opts } : opts;
    this.baseUrl = this.opts.baseUrl ?? "";
  }

  private async request<T>(method: string, path: string, signal?: AbortSignal, acceptStatus: number[] = []): Promise<T> {
    const f = this.opts.fetch ?? globalThis.fetch;
    const base = this.opts.fetchOptions ?? {};
    const mutation = method !== "GET" && method !== "HEAD";
    const headers = mergeHeaders(
      { Accept: "application/json" },
      base.headers,
      mutation ? this.opts.mutationHeaders : undefined,
      mutation ? { "Content-Type": "application/json" } : undefined,
    );
    let res: Response;
    try {
      res = await f(joinUrl(this.baseUrl, path), {
        ...base,
        method,
        headers,
        body: mutation ? "{}" : undefined,
        signal: signal ?? base.signal,
      });
    } catch (e) {
      if ((e as Error)?.name === "AbortError") throw e;
      throw new ServerUnreachableError(`server unreachable: ${(e as Error)?.message ?? String(e)}`);
    }
    let body: unknown = undefined;
    const text = await res.text().catch(() => "");
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    if (res.ok || acceptStatus.includes(res.status)) {
      if (body === undefined || body === null || typeof body !== "object") {
        // A proxy page or something else that is not wagate's answer.
        throw new ServerUnreachableError(`server unreachable: unexpected answer (HTTP ${res.status})`);
      }
      return body as T;
    }
    const msg =
      body && typeof body === "object" && typeof (body as { error?: unknown }).error === "string"
        ? (body as { error: string }).error
        : undefined;
    if (!msg && res.status >= 500) throw new ServerUnreachableError(`server unreachable: HTTP ${res.status}`);
    throw new ApiError(res.status, msg ?? `HTTP ${res.status}`);
  }

  getHealth(signal?: AbortSignal): Promise<Health> {
    return this.request<Health>("GET", "/health", signal, [503]);
  }

  getDeepHealth(signal?: AbortSignal): Promise<DeepHealth> {
    return this.request<DeepHealth>("GET", "/health/deep", signal, [503]);
  }

  async reconnect(sessionId?: string): Promise<ReconnectResult> {
    let id = sessionId;
    if (!id) {
      const deep = await this.getDeepHealth();
      id = pickPrimary(deep.sessions, this.opts.primarySessionName, this.opts.primarySessionId)?.sessionId;
      if (!id) return { success: false, message: "there is no session to reconnect" };
    }
    return this.request<ReconnectResult>("POST", `/sessions/${encodeURIComponent(id)}/reconnect`);
  }
}
