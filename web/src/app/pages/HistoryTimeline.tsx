import { useId } from "react";
import type { HistoryEntry } from "../../core/types";
import { BAND_LABEL, buildSegments, formatDuration, summarize, type Band } from "../timeline";

const W = 1000;
const BAR_Y = 8;
const BAR_H = 32;

function fmtTick(t: number, span: number): string {
  const d = new Date(t);
  if (span <= 2 * 3600_000) return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (span <= 36 * 3600_000) return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

function Patterns({ id }: { id: string }) {
  return (
    <defs>
      <pattern id={`${id}-down`} width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
        <rect width="8" height="8" className="tl-down" />
        <line x1="0" y1="0" x2="0" y2="8" className="tl-hatch" />
      </pattern>
      <pattern id={`${id}-pending`} width="8" height="8" patternUnits="userSpaceOnUse">
        <rect width="8" height="8" className="tl-pending" />
        <circle cx="4" cy="4" r="1.5" className="tl-dots" />
      </pattern>
      <pattern id={`${id}-unknown`} width="6" height="6" patternUnits="userSpaceOnUse">
        <rect width="6" height="6" className="tl-unknown" />
      </pattern>
      <pattern id={`${id}-ok`} width="8" height="8" patternUnits="userSpaceOnUse">
        <rect width="8" height="8" className="tl-ok" />
      </pattern>
      <pattern id={`${id}-none`} width="8" height="8" patternUnits="userSpaceOnUse">
        <rect width="8" height="8" className="tl-none" />
      </pattern>
    </defs>
  );
}

/**
 * The status history as a picture: a bar of periods over the whole window, colour plus pattern, labels and a
 * legend. The window is always the one asked for; a session younger than it starts part-way along, after a
 * period marked as before its creation, so "24 hours" and "7 days" differ as they should.
 */
export function HistoryTimeline({
  entries,
  from,
  to,
  createdAt,
}: {
  entries: HistoryEntry[];
  from: number;
  to: number;
  /** When the session was created (ISO text), if known. */
  createdAt?: string | null;
}) {
  const id = useId().replace(/:/g, "");
  const born = createdAt ? Date.parse(createdAt) : NaN;
  const segs = buildSegments(entries, from, to, Number.isFinite(born) ? born : null);
  const span = Math.max(1, to - from);
  const x = (t: number) => ((t - from) / span) * W;
  const { connectedPct, disconnections } = summarize(segs);
  const young = Number.isFinite(born) && born > from;
  const since = young
    ? `since the session was created (${new Date(born).toLocaleString()})`
    : `from ${new Date(from).toLocaleString()}`;
  const summary = `Connected ${connectedPct}% of the time ${since} to ${new Date(to).toLocaleString()}; ${disconnections} disconnection${disconnections === 1 ? "" : "s"}.`;
  const ticks = Array.from({ length: 5 }, (_, i) => from + (span * i) / 4);
  const bands: Band[] = ["ok", "pending", "down", "unknown", ...(young ? (["none"] as Band[]) : [])];
  return (
    <figure className="timeline" data-testid="history-timeline">
      <svg viewBox={`0 0 ${W} 70`} width="100%" role="img" aria-label={summary} preserveAspectRatio="none">
        <Patterns id={id} />
        {segs.map((s, i) => {
          const x0 = x(s.start);
          const w = Math.max(1, x(s.end) - x0);
          return (
            <g key={i} data-band={s.band} data-testid="timeline-segment">
              <rect x={x0} y={BAR_Y} width={w} height={BAR_H} fill={`url(#${id}-${s.band})`} className="tl-seg">
                <title>
                  {`${BAND_LABEL[s.band]} (${s.status}) for ${formatDuration(s.end - s.start)}, from ${new Date(s.start).toLocaleString()}${s.reason ? ` — ${s.reason}` : ""}`}
                </title>
              </rect>
              {w > 90 ? (
                <text x={x0 + 6} y={BAR_Y + 21} className="tl-label">
                  {BAND_LABEL[s.band]}
                </text>
              ) : null}
            </g>
          );
        })}
        <rect x="0" y={BAR_Y} width={W} height={BAR_H} className="tl-frame" />
        {ticks.map((t, i) => (
          <g key={i}>
            <line x1={x(t)} x2={x(t)} y1={BAR_Y + BAR_H} y2={BAR_H + 14} className="tl-tick" />
            <text
              x={x(t)}
              y={66}
              className="tl-tick-label"
              textAnchor={i === 0 ? "start" : i === ticks.length - 1 ? "end" : "middle"}
            >
              {fmtTick(t, span)}
            </text>
          </g>
        ))}
      </svg>
      <figcaption>
        <ul className="timeline__legend">
          {bands.map((b) => (
            <li key={b}>
              <svg width="18" height="12" aria-hidden="true">
                <Patterns id={`${id}-l${b}`} />
                <rect width="18" height="12" fill={`url(#${id}-l${b}-${b})`} className="tl-swatch" />
              </svg>
              {BAND_LABEL[b]}
            </li>
          ))}
        </ul>
        <p className="timeline__summary">{summary}</p>
      </figcaption>
    </figure>
  );
}
