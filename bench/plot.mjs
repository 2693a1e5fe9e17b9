#!/usr/bin/env node
// Redraws the plots of a benchmark run from its CSV: node bench/plot.mjs [DIR] (default bench/results).
import fs from 'node:fs';
import path from 'node:path';
import { plotsFromCsv } from './lib/report.mjs';

const dir = path.resolve(process.argv[2] ?? path.join(path.dirname(new URL(import.meta.url).pathname), 'results'));
for (const [file, svg] of Object.entries(plotsFromCsv(fs.readFileSync(path.join(dir, 'latest.csv'), 'utf8')))) {
  fs.writeFileSync(path.join(dir, file), svg);
  console.log(path.join(dir, file));
}
