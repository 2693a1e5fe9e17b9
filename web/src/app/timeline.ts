import type { HistoryEntry } from "../core/types";

export type Band = "ok" | "pending" | "down" | "unknown" | "none";

export interface Segment {
  start: number;
  end: number;
  status: string;
  band: Band;
  reason: string | null;
}

export function band(status: string | null | undefined): Band {
  switch (status) {
    case BEFORE_CREATED:
      return "none";
    case "connected":
      return "ok";
    case "connecting":
    case "qr_pending":
      return "pending";
    case "disconnected":
    case "logged_out":
      return "down";
    default:
      return "unknown";
  }
}

export const BAND_LABEL: Record<Band, string> = {
  ok: "Connected",
  pending: "Connecting / pairing",
  down: "Disconnected",
  unknown: "No data",
  none: "Before the session existed",
};

/** The status "none": the time before the session was created (drawn empty, not counted). */
export const BEFORE_CREATED = "none";

/**
 * The periods between `from` and `to`: each entry's status lasts until the next entry. Before the first entry
 * the status is unknown (unless an entry before `from` says otherwise); before `createdAt` (when given and
 * inside the window) there was no session at all: a period of its own, so that a young session's 24 h and
 * 7 day pictures show its true age instead of the same picture stretched.
 */
export function buildSegments(entries: HistoryEntry[], from: number, to: number, createdAt?: number | null): Segment[] {
  const born = createdAt != null && Number.isFinite(createdAt) && createdAt > from ? Math.min(createdAt, to) : null;
  if (born !== null) {
    const before: Segment = { start: from, end: born, status: BEFORE_CREATED, band: "none", reason: null };
    // History written before the row's creation time (clocks of two nodes) counts from the creation.
    const after = born < to ? buildSegments(entries, born, to) : [];
    return [before, ...after];
  }
  const sorted = entries
    .map((e) => ({ ...e, t: new Date(e.at).getTime() }))
    .filter((e) => !Number.isNaN(e.t))
    .sort((a, b) => a.t - b.t);
  const out: Segment[] = [];
  let cur: { status: string; reason: string | null; start: number } = { status: "unknown", reason: null, start: from };
  for (const e of sorted) {
    if (e.t <= from) {
      cur = { status: e.status, reason: e.reason, start: from };
      continue;
    }
    if (e.t >= to) break;
    if (e.t > cur.start) out.push({ start: cur.start, end: e.t, status: cur.status, band: band(cur.status), reason: cur.reason });
    cur = { status: e.status, reason: e.reason, start: e.t };
  }
  if (to > cur.start) out.push({ start: cur.start, end: to, status: cur.status, band: band(cur.status), reason: cur.reason });
  // Merge neighbours of the same status.
  const merged: Segment[] = [];
  for (const s of out) {
    const last = merged[merged.length - 1];
    if (last && last.status === s.status && last.end === s.start) last.end = s.end;
    else merged.push({ ...s });
  }
  return merged;
}

/** Share of the session's lifetime in the window (the time before it existed does not count) and its drops. */
export function summarize(segs: Segment[]): { connectedPct: number; disconnections: number } {
  segs = segs.filter((s) => s.band !== "none");
  const total = segs.reduce((a, s) => a + (s.end - s.start), 0) || 1;
  const ok = segs.filter((s) => s.band === "ok").reduce((a, s) => a + (s.end - s.start), 0);
  let disconnections = 0;
  for (let i = 1; i < segs.length; i++) if (segs[i - 1].band === "ok" && segs[i].band !== "ok") disconnections++;
  return { connectedPct: Math.round((ok / total) * 1000) / 10, disconnections };
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} days ${h % 24} h`;
}
