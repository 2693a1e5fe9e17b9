#!/usr/bin/env node
// Before and after: joins two benchmark CSVs (bench/run.mjs's latest.csv) on section, system, transport, N and
// metric, and prints a Markdown table of the figures both have, with the change.
//
//   node bench/compare.mjs BEFORE.csv AFTER.csv [REGEX]     REGEX filters "section system transport n metric"
import fs from 'node:fs';

function read(file) {
  const rows = new Map();
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').slice(1);
  for (const line of lines) {
    // Values hold no commas except in quoted fields, which the metrics do not use.
    const [section, system, transport, n, metric, value, unit] = line.split(',');
    rows.set([section, system, transport, n, metric].join(' '), { section, system, transport, n, metric, value: Number(value), unit });
  }
  return rows;
}

const [beforeFile, afterFile, pattern] = process.argv.slice(2);
if (!beforeFile || !afterFile) {
  console.error('usage: node bench/compare.mjs BEFORE.csv AFTER.csv [REGEX]');
  process.exit(2);
}
const before = read(beforeFile);
const after = read(afterFile);
const re = pattern ? new RegExp(pattern) : null;
const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
const out = ['| what | N | before | after | change |', '|---|---|---|---|---|'];
for (const [key, a] of after) {
  const b = before.get(key);
  if (!b || (re && !re.test(key)) || !Number.isFinite(a.value) || !Number.isFinite(b.value)) continue;
  const change = b.value === 0 ? '—' : `${a.value / b.value >= 1 ? '' : '−'}${fmt(Math.abs(1 - a.value / b.value) * 100)} % (${fmt(a.value / b.value)}×)`;
  out.push(`| ${a.section} ${a.system === 'wagate' ? '' : `${a.system} `}${a.transport} ${a.metric.replace(/_/g, ' ')} (${a.unit}) | ${a.n || '—'} | ${fmt(b.value)} | ${fmt(a.value)} | ${change} |`);
}
console.log(out.join('\n'));
