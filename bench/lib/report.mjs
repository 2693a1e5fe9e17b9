// The benchmark's outputs: a Markdown report, a CSV of every figure, and SVG line plots (value against N,
// one line per system, log-scaled N). No plotting library: the plots are a few dozen SVG elements.

export function csvLine(fields) {
  return fields
    .map((f) => {
      const s = f === null || f === undefined ? '' : String(f);
      return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    })
    .join(',');
}

/** Markdown table from a header array and row arrays. */
export function table(header, rows) {
  const out = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) out.push(`| ${r.map((c) => (c === null || c === undefined ? '—' : String(c))).join(' | ')} |`);
  return out.join('\n');
}

/** A number with a sensible precision for a report. */
export function fmt(v, digits = null) {
  if (v === null || v === undefined || Number.isNaN(v)) return null;
  if (digits !== null) return v.toFixed(digits);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** Least-squares slope and intercept of y over x (at least two points). */
export function slope(points) {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) * (x - mx);
  }
  if (sxx === 0) return null;
  const k = sxy / sxx;
  return { slope: k, intercept: my - k * mx };
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Line plot: series = [{name, points: [[n, value], ...]}]; x is log10-scaled, y is log-scaled when
 * the values span more than two decades (Baileys 7 against wagate does).
 */
export function svgPlot({ title, yLabel, series }) {
  const W = 640;
  const H = 400;
  const L = 80;
  const R = 170;
  const T = 40;
  const B = 50;
  const all = series.flatMap((s) => s.points).filter((p) => p[1] > 0);
  if (all.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><text x="20" y="40">${esc(title)}: no data</text></svg>\n`;
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const x0 = Math.log10(Math.min(...xs)) - 0.1;
  const x1 = Math.log10(Math.max(...xs)) + 0.1;
  const logY = Math.max(...ys) / Math.min(...ys) > 10;
  const y0 = logY ? Math.floor(Math.log10(Math.min(...ys))) : 0;
  const y1 = logY ? Math.ceil(Math.log10(Math.max(...ys))) : Math.max(...ys) * 1.15;
  const px = (n) => L + ((Math.log10(n) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (v) => {
    const t = logY ? (Math.log10(v) - y0) / (y1 - y0 || 1) : (v - y0) / (y1 - y0 || 1);
    return H - B - t * (H - T - B);
  };
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`);
  parts.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`);
  parts.push(`<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`);
  const nTicks = [...new Set(xs)].sort((a, b) => a - b);
  for (const n of nTicks) {
    parts.push(`<line x1="${px(n)}" y1="${H - B}" x2="${px(n)}" y2="${H - B + 5}" stroke="black"/>`);
    parts.push(`<text x="${px(n)}" y="${H - B + 18}" text-anchor="middle">${n.toLocaleString('en-US')}</text>`);
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">sessions (N, log scale)</text>`);
  const yTicks = [];
  if (logY) for (let e = y0; e <= y1; e++) yTicks.push(10 ** e);
  else for (let i = 0; i <= 5; i++) yTicks.push((y1 * i) / 5);
  for (const v of yTicks) {
    const y = py(v > 0 ? v : 1e-9);
    parts.push(`<line x1="${L - 5}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 8}" y="${y + 4}" text-anchor="end">${fmt(v)}</text>`);
  }
  parts.push(`<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}${logY ? ' (log scale)' : ''}</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = s.points.filter((p) => p[1] > 0).sort((a, b) => a[0] - b[0]);
    if (pts.length > 1) parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) parts.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3.5" fill="${c}"/>`);
    const ly = T + 10 + i * 20;
    parts.push(`<line x1="${W - R + 15}" y1="${ly}" x2="${W - R + 35}" y2="${ly}" stroke="${c}" stroke-width="2"/>`);
    parts.push(`<text x="${W - R + 40}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/*
 * The three plots from a benchmark CSV (bench/run.mjs writes it): RSS per session, CPU per login and idle CPU
 * per session against N, one line per system and transport.
 */
export function plotsFromCsv(csvText) {
  const rows = csvText.trim().split('\n').slice(1).map((l) => l.split(','));
  const scale = rows.filter((r) => r[0] === 'scale');
  const systems = [...new Set(scale.map((r) => `${r[1]} ${r[2]}`))];
  const name = (s) => (s.endsWith(' wss') ? s.replace(/ wss$/, ' (wss)') : s.replace(/ ws$/, ''));
  const series = (metric) => systems.map((s) => ({
    name: name(s),
    points: scale.filter((r) => `${r[1]} ${r[2]}` === s && r[4] === metric).map((r) => [Number(r[3]), Number(r[5])]),
  }));
  return {
    'memory.svg': svgPlot({ title: 'RSS per session against N', yLabel: 'KiB per session', series: series('rss_per_session') }),
    'cpu-login.svg': svgPlot({ title: 'CPU per login against N', yLabel: 'ms of CPU per login', series: series('cpu_per_login') }),
    'cpu-idle.svg': svgPlot({ title: 'Idle CPU per session against N', yLabel: 'ms of CPU per session per minute', series: series('idle_cpu_per_session_min') }),
  };
}
