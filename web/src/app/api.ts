import { ApiError, HttpStatusClient, ServerUnreachableError } from "../core/client";
import type { DeepHealth, HistoryEntry, QrCode, ReconnectResult, Session } from "../core/types";

export const CSRF_HEADER = "X-Wagate-Csrf";

/** The dashboard's calls: the session cookie for auth, the CSRF header on state-changing requests. */
export class DashboardApi {
  readonly status: HttpStatusClient;
  /** Called on any 401 (the cookie expired or was never set). */
  onUnauthorized: (() => void) | null = null;

  constructor(
    readonly base: string,
    private readonly fetchImpl: typeof fetch = (...a) => globalThis.fetch(...a),
  ) {
    this.status = new HttpStatusClient({
      baseUrl: base,
      fetchOptions: { credentials: "include" },
      mutationHeaders: { [CSRF_HEADER]: "1" },
      fetch: (...a) => this.fetchImpl(...a),
    });
  }

  url(path: string): string {
    return this.base + path;
  }

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (method !== "GET") {
      headers[CSRF_HEADER] = "1";
      headers["Content-Type"] = "application/json";
    }
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(path), {
        method,
        headers,
        credentials: "include",
        body: method === "GET" ? undefined : JSON.stringify(body ?? {}),
      });
    } catch (e) {
      throw new ServerUnreachableError(`server unreachable: ${(e as Error).message}`);
    }
    if (res.status === 401 && !path.startsWith("/auth/")) this.onUnauthorized?.();
    if (!res.ok) {
      let msg = `HTTP ${res.status}`;
      try {
        const j = (await res.json()) as { error?: string };
        if (j && typeof j.error === "string") msg = j.error;
      } catch {
        /* not JSON */
      }
      throw new ApiError(res.status, msg);
    }
    return res;
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.call(method, path, body)).json()) as T;
  }

  async authenticated(): Promise<boolean> {
    try {
      const r = await this.json<{ authenticated: boolean }>("GET", "/auth/session");
      return !!r.authenticated;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 404)) return false;
      throw e;
    }
  }

  async login(apiKey: string): Promise<void> {
    await this.call("POST", "/auth/login", { apiKey });
  }

  async logout(): Promise<void> {
    await this.call("POST", "/auth/logout");
  }

  sessions(): Promise<Session[]> {
    return this.json("GET", "/sessions");
  }
  session(id: string): Promise<Session> {
    return this.json("GET", `/sessions/${encodeURIComponent(id)}`);
  }
  deepHealth(): Promise<DeepHealth> {
    return this.status.getDeepHealth();
  }
  createSession(body: { sessionName?: string; autoConnect?: boolean }): Promise<Session> {
    return this.json("POST", "/sessions", body);
  }
  patchSession(id: string, body: { autoConnect?: boolean; isActive?: boolean }): Promise<Session> {
    return this.json("PATCH", `/sessions/${encodeURIComponent(id)}`, body);
  }
  reconnect(id: string): Promise<ReconnectResult> {
    return this.json("POST", `/sessions/${encodeURIComponent(id)}/reconnect`);
  }
  /** Pairs a new device for the session (keeps its id); the QR codes follow. */
  pairSession(id: string): Promise<Session> {
    return this.json("POST", `/sessions/${encodeURIComponent(id)}/pair`);
  }
  logoutSession(id: string): Promise<ReconnectResult> {
    return this.json("POST", `/sessions/${encodeURIComponent(id)}/logout`);
  }
  async deleteSession(id: string): Promise<void> {
    await this.call("DELETE", `/sessions/${encodeURIComponent(id)}`);
  }
  history(id: string, since: Date): Promise<HistoryEntry[]> {
    return this.json("GET", `/sessions/${encodeURIComponent(id)}/history?since=${encodeURIComponent(since.toISOString())}`);
  }
  qr(id: string): Promise<QrCode> {
    return this.json("GET", `/sessions/${encodeURIComponent(id)}/qr`);
  }
  /** The QR code as SVG text. */
  async qrSvg(id: string): Promise<string> {
    return (await this.call("GET", `/sessions/${encodeURIComponent(id)}/qr?format=svg`)).text();
  }
}
