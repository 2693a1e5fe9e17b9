import type { PollIntervals } from "../core/poller";

/** The dashboard's settings, read once from the URL's query parameters (test hooks; see README). */
export interface DashboardConfig {
  /** The API's base URL (`?api=`; default `""`, the origin that served the dashboard). */
  apiBase: string;
  /** Use the event stream (`?events=0` turns it off; default on). */
  events: boolean;
  intervals: Partial<PollIntervals>;
  /** How often the pairing view reloads the QR code without a `qr` event (`?qrMs=`, default 5000). */
  qrRefreshMs: number;
}

function num(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v.trim() === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export function readConfig(search: string): DashboardConfig {
  const q = new URLSearchParams(search);
  const retry = q.get("retryMs");
  let retryMs: number[] | undefined;
  if (retry) {
    const list = retry
      .split(",")
      .map((x) => Number(x))
      .filter((x) => Number.isFinite(x) && x >= 0);
    if (list.length) retryMs = list;
  }
  const intervals: Partial<PollIntervals> = {
    lightMs: num(q, "pollMs"),
    deepMs: num(q, "deepPollMs"),
    retryMs,
    restartMs: num(q, "restartMs"),
    stableUptimeSec: num(q, "stableSec"),
  };
  for (const k of Object.keys(intervals) as (keyof PollIntervals)[]) if (intervals[k] === undefined) delete intervals[k];
  const ev = q.get("events");
  return {
    apiBase: (q.get("api") ?? "").replace(/\/+$/, ""),
    events: !(ev === "0" || ev === "false" || ev === "off"),
    intervals,
    qrRefreshMs: num(q, "qrMs") ?? 5000,
  };
}
