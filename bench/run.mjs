#!/usr/bin/env node
// wagate's benchmark, side by side with Baileys 6.17.16 and 7.0.0-rc14 against the same `wagate mock`, on
// loopback, in one run. See bench/README.md and docs/performance.md.
//
//   node bench/run.mjs            the full run (`make bench`, about 45 minutes): writes bench/results/
//   node bench/run.mjs --smoke    one minute at small N (`make bench-smoke`, part of `make test`): writes
//                                 build/bench-smoke/ and fails when a measurement could not be made
//
// Every figure is read from outside the processes (/proc, their logs, the mock's counters, HTTP), as an
// operator would. These machines are noisy: ratios taken in the same run hold better than absolute figures.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuMs, memKiB, sleep, until, loopProbe, request, PIN, stealMs } from './lib/proc.mjs';
import { csvLine, table, fmt, slope, plotsFromCsv } from './lib/report.mjs';
import { ROOT, BUILD, WAGATE, SERVE_BIN, SEED, API_KEY, NOFILE, nextEvent, startMock, makeCert, seedDb, sessionNames, startWagate, startBaileys } from './lib/systems.mjs';

const SMOKE = process.argv.includes('--smoke');
const list = (name, dflt) => (process.env[name] ? process.env[name].split(',').filter((v) => /^\d+$/.test(v)).map(Number) : dflt);
// BENCH_ONLY=messages,storm runs only those sections (names as in the log).
const ONLY = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : null;
// BENCH_SYSTEMS=wagate (or wagate,baileys6) leaves the others out.
const SYSTEMS = (process.env.BENCH_SYSTEMS ?? 'wagate,baileys6,baileys7').split(',');
const num = (name, dflt) => (process.env[name] ? Number(process.env[name]) : dflt);

const C = SMOKE
  ? {
      wagateNs: list('BENCH_WAGATE_NS', [20, 60]),
      wssNs: list('BENCH_WSS_NS', [20]),
      b6Ns: list('BENCH_BAILEYS6_NS', [10]),
      b7Ns: list('BENCH_BAILEYS7_NS', [5]),
      apiNs: list('BENCH_API_NS', [60]),
      idleS: num('BENCH_IDLE_S', 3),
      settleS: 1,
      wrkS: num('BENCH_WRK_S', 2),
      stormN: num('BENCH_STORM_N', 50),
      stormSampleS: num('BENCH_STORM_SAMPLE_S', 3),
      stormBigN: num('BENCH_STORM_BIG_N', 300),
      messages: num('BENCH_MESSAGES', 200),
      detTrials: 3,
      // Baileys 7 reports a dead socket only after its close handshake times out (about 30 s): full run only.
      detectBaileys: ['baileys6'],
      // Short keepalives so a blackhole is noticed within the minute; the full run uses the defaults.
      wagateKeepalive: { WAGATE_KEEPALIVE_INTERVAL: '1s', WAGATE_KEEPALIVE_TIMEOUT: '1s' },
      baileysKeepaliveMs: 2000,
      bringupCapS: 60,
    }
  : {
      wagateNs: list('BENCH_WAGATE_NS', [100, 1000, 10000, 20000]),
      wssNs: list('BENCH_WSS_NS', [1000, 10000]),
      b6Ns: list('BENCH_BAILEYS6_NS', [100, 1000, 10000]),
      b7Ns: list('BENCH_BAILEYS7_NS', [100, 1000]),
      apiNs: list('BENCH_API_NS', [1000, 10000]),
      idleS: num('BENCH_IDLE_S', 120),
      settleS: 5,
      wrkS: num('BENCH_WRK_S', 10),
      stormN: num('BENCH_STORM_N', 1000),
      stormSampleS: num('BENCH_STORM_SAMPLE_S', 60),
      stormBigN: num('BENCH_STORM_BIG_N', 10000),
      messages: num('BENCH_MESSAGES', 1000),
      detTrials: 10,
      detectBaileys: ['baileys6', 'baileys7'],
      wagateKeepalive: {},
      baileysKeepaliveMs: null,
      bringupCapS: num('BENCH_BRINGUP_CAP_S', 600),
    };
// The start stagger of the scale runs: the shortest the landed supervisor honours without stalling.
const STAGGER = process.env.BENCH_STAGGER ?? '10ms';
const OUT = process.env.BENCH_OUT ? path.resolve(process.env.BENCH_OUT) : SMOKE ? path.join(BUILD, 'bench-smoke') : path.join(ROOT, 'bench', 'results');
const WORK = path.join(BUILD, 'bench-work');
fs.mkdirSync(OUT, { recursive: true });
fs.mkdirSync(WORK, { recursive: true });

const R = { scale: [], api: [], detection: [], events: [], storm: [], notes: [], failures: [] };
const t0All = Date.now();
const log = (...a) => console.log(`[bench ${((Date.now() - t0All) / 1000).toFixed(0).padStart(4)} s]`, ...a);
const fail = (what) => {
  R.failures.push(what);
  log(`FAILED: ${what}`);
};
let phoneSeq = 4470000000;
const phones = (n) => {
  const base = phoneSeq;
  phoneSeq += n + 1000;
  return base;
};

for (const f of [WAGATE, SERVE_BIN, SEED]) {
  if (!fs.existsSync(f)) {
    console.error(`bench: ${f} is missing: run make first`);
    process.exit(2);
  }
}
const nofile = NOFILE;
if (nofile < 65536) R.notes.push(`the descriptor limit here is ${nofile} (the hard limit, which this process cannot raise); a run of N sessions needs N + about 100 descriptors in wagate and in the mock, so larger N are skipped`);

// ---------------------------------------------------------------------------------------------------------
// 1, 2. Sessions at scale (ws:// and wss://), and 5. the API at some of those N.

async function idleWindow(pids, n) {
  const c0 = pids.map(cpuMs);
  const t0 = performance.now();
  await sleep(C.idleS * 1000);
  const mins = (performance.now() - t0) / 60000;
  return pids.map((p, i) => (cpuMs(p) - c0[i]) / mins / n);
}

function parseWrk(text) {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const toMs = (v, u) => Number(v) * (u === 'us' ? 0.001 : u === 's' ? 1000 : u === 'm' ? 60000 : 1);
  const pct = {};
  for (const m of text.matchAll(/^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$/gm)) pct[m[1]] = toMs(m[2], m[3]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = sock ? sock.slice(1).reduce((s, v) => s + Number(v), 0) : 0;
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? 0);
  return { rps, pct, non2xx, errors, requests };
}

function runWrk(args, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', () => resolve(null));
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve(code === 0 ? out : null);
    });
  });
}

async function apiBench(w, n) {
  // One client: how long one listing takes; eight: how many the server answers per second when they share it.
  const runs = [['/health', 8], ['/health/deep', 1], ['/sessions', 1], ['/health/deep', 8], ['/sessions', 8]];
  // The issue's case: 50 clients asking for everything at once must not make a keepalive miss.
  if (n === Math.max(...C.apiNs)) runs.push(['/health/deep', 50]);
  for (const [p, conns] of runs) {
    const drops0 = w.st.drops.length;
    const probe = loopProbe(w.port, '/auth/session', 5, API_KEY);
    // wrk runs beside the probe (spawned, not waited for synchronously, so the probe keeps polling).
    const out = await runWrk([`-t${Math.min(2, conns)}`, `-c${conns}`, `-d${C.wrkS}s`, '--timeout', '30s', '--latency', '-H', `x-api-key: ${API_KEY}`, `http://127.0.0.1:${w.port}${p}`], (C.wrkS + 60) * 1000);
    if (out === null) {
      fail(`wrk ${p} at ${n}: wrk failed or did not finish`);
      await probe.end();
      continue;
    }
    const stall = await probe.end();
    await sleep(1000);
    const r = parseWrk(out);
    if (!(r.requests > 0)) fail(`wrk ${p} at ${n}: no request completed`);
    R.api.push({ n, path: p, conns, ...r, stallMs: stall.maxMs, ownMs: stall.ownMaxMs, drops: w.st.drops.length - drops0 });
    log(`api ${p} ×${conns} N=${n}: ${fmt(r.rps)} req/s, p50 ${fmt(r.pct['50'])} ms, p99 ${fmt(r.pct['99'])} ms, stall ${fmt(stall.maxMs)} ms (own ${fmt(stall.ownMaxMs)} ms), drops ${w.st.drops.length - drops0}`);
  }
}

async function scaleWagate(n, { tls } = {}) {
  const transport = tls ? 'wss' : 'ws';
  if (n + 200 > nofile) {
    const fits = Math.floor((nofile - 200) / 1000) * 1000;
    R.notes.push(`wagate ${transport} N=${n}: not possible here (descriptor limit ${nofile}); measured N=${fits} instead`);
    if (fits <= 0 || R.scale.some((r) => r.system === 'wagate' && r.transport === transport && r.n === fits)) return;
    n = fits;
  }
  const mock = await startMock({ tls, nofile });
  const db = path.join(WORK, `wagate-${transport}-${n}.db`);
  const ids = seedDb(db, n, phones(n));
  const env = { WAGATE_START_STAGGER: n === 0 ? '1s' : STAGGER };
  if (tls) env.SSL_CERT_FILE = tls.cert;
  const w = await startWagate({ db, mock, env, nofile });
  const row = { system: 'wagate', transport, n, stagger: STAGGER };
  try {
    const cpu0 = w.cpu();
    const tStart = Date.now();
    const steal0 = stealMs();
    // One trivial request every 100 ms from outside, as a client sees the loop; more often, its wakeups would be
    // a measurable part of the CPU per login.
    const probe = loopProbe(w.port, '/auth/session', 100, API_KEY);
    const capMs = Math.max(C.bringupCapS * 1000, n * 30);
    await until(() => w.st.opened.size >= n || w.exited(), { timeoutMs: capMs, intervalMs: 50 });
    const pb = await probe.end();
    row.bringupStallMs = pb.maxMs;
    row.bringupOwnMs = pb.ownMaxMs;
    row.bringupProbeMs = pb.externalMaxMs;
    if (steal0 !== null) row.bringupStealPct = (100 * (stealMs() - steal0)) / Math.max(1, (Date.now() - tStart) * os.cpus().length);
    row.up = w.st.opened.size;
    const tUp = Math.max(...w.st.opened.values(), tStart);
    row.bringupS = (tUp - (w.st.starts[0]?.t ?? tStart)) / 1000;
    row.cpuPerLoginMs = n ? (w.cpu() - cpu0) / Math.max(1, row.up) : null;
    if (row.up < n) {
      fail(`wagate ${transport} N=${n}: ${row.up} of ${n} connected within ${capMs / 1000} s`);
      row.note = `stopped at ${row.up} of ${n}: bring-up cap`;
    }
    await sleep(C.settleS * 1000);
    const drops0 = w.st.drops.length;
    const probe2 = loopProbe(w.port, '/auth/session', 100, API_KEY);
    const steal1 = stealMs();
    const tIdle = Date.now();
    const [idle, mockIdle] = await idleWindow([w.pid, mock.pid], Math.max(1, n));
    const pi = await probe2.end();
    row.idleStallMs = pi.maxMs;
    row.idleOwnMs = pi.ownMaxMs;
    row.idleProbeMs = pi.externalMaxMs;
    if (steal1 !== null) row.idleStealPct = (100 * (stealMs() - steal1)) / Math.max(1, (Date.now() - tIdle) * os.cpus().length);
    if (row.bringupStealPct !== undefined)
      R.notes.push(`wagate ${transport} N=${n}: the hypervisor took ${fmt(row.bringupStealPct)} % of the machine's CPU time during bring-up and ${fmt(row.idleStealPct)} % while idle (steal in /proc/stat, all CPUs); time stolen while wagate was runnable counts in its loop-stall figures`);
    row.idleCpuMsPerSessionMin = n ? idle : null;
    row.mockIdleCpuMsPerSessionMin = n ? mockIdle : null;
    row.idleDrops = w.st.drops.length - drops0;
    Object.assign(row, memKiB(w.pid));
    row.connectedAfterIdle = w.st.connected.size;
    log(`wagate ${transport} N=${n}: up ${row.up} in ${fmt(row.bringupS)} s, ${fmt(row.cpuPerLoginMs)} ms CPU/login, idle ${fmt(row.idleCpuMsPerSessionMin)} ms/session/min, RSS ${fmt(row.rss / 1024)} MiB, stalls ${fmt(row.bringupStallMs)}/${fmt(row.idleStallMs)} ms (own ${fmt(row.bringupOwnMs)}/${fmt(row.idleOwnMs)} ms; as a client saw them: ${fmt(row.bringupProbeMs)}/${fmt(row.idleProbeMs)} ms)`);
    if (!tls && C.apiNs.includes(n)) await apiBench(w, n);
  } finally {
    const e = await w.stop();
    if (e?.code !== 0) fail(`wagate serve N=${n} exited ${JSON.stringify(e)}`);
    await mock.stop();
  }
  R.scale.push(row);
  void ids;
}

async function scaleBaileys(client, n) {
  if (n + 100 > nofile) return R.notes.push(`${client} N=${n}: skipped (descriptor limit ${nofile})`);
  const mock = await startMock({ nofile });
  const capMs = C.bringupCapS * 1000;
  const b = await startBaileys({ client, n, mock, phoneBase: phones(n), deadlineMs: capMs, nofile });
  const row = { system: client, transport: 'ws', n, stagger: 'concurrency 16' };
  try {
    const ok = await until(() => b.st.ready || b.exited(), { timeoutMs: capMs + 60000, intervalMs: 100 });
    if (!ok || b.exited()) {
      fail(`${client} N=${n}: no ready line (${b.exited() ? `exited ${JSON.stringify(b.exited())}` : 'timeout'}) ${b.stderrTail().slice(-500)}`);
      return;
    }
    const cpuUp = b.cpu();
    row.up = b.st.opened.size;
    row.bringupS = (Math.max(...b.st.opened.values(), b.st.firstStartT) - b.st.firstStartT) / 1000;
    row.cpuPerLoginMs = n ? (cpuUp - (b.st.cpuAtFirstStart ?? 0)) / Math.max(1, row.up) : null;
    if (row.up < n) {
      row.note = `stopped at ${row.up} of ${n} (${b.st.ready.failed ?? 0} failed; bring-up cap ${C.bringupCapS} s)`;
      if (SMOKE) fail(`${client} N=${n}: ${row.up} of ${n} opened`);
    }
    await sleep(C.settleS * 1000);
    const closes0 = b.st.closes.length;
    const [idle, mockIdle] = await idleWindow([b.pid, mock.pid], Math.max(1, row.up));
    row.idleCpuMsPerSessionMin = idle;
    row.mockIdleCpuMsPerSessionMin = mockIdle;
    row.idleDrops = b.st.closes.length - closes0;
    Object.assign(row, memKiB(b.pid));
    row.connectedAfterIdle = b.st.open.size;
    log(`${client} N=${n}: up ${row.up} in ${fmt(row.bringupS)} s, ${fmt(row.cpuPerLoginMs)} ms CPU/login, idle ${fmt(row.idleCpuMsPerSessionMin)} ms/session/min, RSS ${fmt(row.rss / 1024)} MiB`);
  } finally {
    await b.stop();
    await mock.stop();
  }
  R.scale.push(row);
}

/** The fixed cost of each system with no session, to turn RSS into RSS per session at each N. */
async function baselines() {
  const mock = await startMock({ nofile });
  const db = path.join(WORK, 'wagate-empty.db');
  seedDb(db, 1, phones(1));
  execFileSync('sqlite3', [db, 'DELETE FROM whatsapp_sessions']);
  const w = await startWagate({ db, mock });
  await sleep(C.settleS * 1000);
  R.baseline = { wagate: memKiB(w.pid) };
  await w.stop();
  for (const client of ['baileys6', 'baileys7'].filter((c) => SYSTEMS.includes(c))) {
    const b = await startBaileys({ client, n: 0, mock, phoneBase: phones(0), nofile });
    await until(() => b.st.ready || b.exited(), { timeoutMs: 30000 });
    await sleep(C.settleS * 1000);
    R.baseline[client] = b.exited() ? null : memKiB(b.pid);
    await b.stop();
  }
  await mock.stop();
  log(`baselines (KiB RSS): wagate ${R.baseline.wagate.rss}, baileys6 ${R.baseline.baileys6?.rss}, baileys7 ${R.baseline.baileys7?.rss}`);
}

// ---------------------------------------------------------------------------------------------------------
// 3. Detection and recovery: a blackholed connection (the socket stays open, nothing comes back), with each
// system's default keepalive; and the time from a socket dying (a TCP reset) to the change on /events.

async function detectWagate() {
  const n = 5;
  const mock = await startMock({ nofile });
  const db = path.join(WORK, 'wagate-detect.db');
  const ids = seedDb(db, n, phones(n));
  const w = await startWagate({ db, mock, env: { WAGATE_START_STAGGER: '10ms', ...C.wagateKeepalive } });
  try {
    if (!(await until(() => w.st.connected.size >= n, { timeoutMs: 30000 }))) return fail('detection: wagate sessions did not connect');
    for (let trial = 0; trial < Math.min(2, C.detTrials); trial++) {
      const s = ids[trial];
      const evs = [];
      w.st.watch.set(s.id, evs);
      const tDead = Date.now();
      await mock.act(s.jid, 'blackhole');
      await until(() => evs.some((e, i) => e.to === 'connected' && evs.slice(0, i).some((x) => x.from === 'connected')), { timeoutMs: 150000, intervalMs: 50 });
      const lost = evs.find((e) => e.from === 'connected');
      const back = lost && evs.find((e, i) => e.to === 'connected' && i > evs.indexOf(lost));
      if (!lost || !back) fail(`detection: wagate did not ${lost ? 'reconnect' : 'notice'} a blackholed session`);
      R.detection.push({ system: 'wagate', trial, detectS: lost ? (lost.t - tDead) / 1000 : null, recoverS: back ? (back.t - tDead) / 1000 : null, why: lost?.why });
      log(`detection wagate: lost after ${fmt(lost ? (lost.t - tDead) / 1000 : NaN)} s (${lost?.why}), connected again after ${fmt(back ? (back.t - tDead) / 1000 : NaN)} s`);
    }
    // Socket dies -> /events. A stream is opened first; its snapshot is read and ignored.
    const sse = await openEvents(w.port);
    try {
      for (let trial = 0; trial < C.detTrials; trial++) {
        const s = ids[2 + (trial % (n - 2))];
        await until(() => w.st.connected.has(s.id), { timeoutMs: 60000 });
        await sleep(200);
        const seen = sse.next((ev) => ev.event === 'session' && ev.data.sessionId === s.id && ev.data.connectionStatus !== 'connected', 10000);
        const tDead = performance.now();
        await mock.act(s.jid, 'kill');
        const ev = await seen;
        if (!ev) fail('/events: no session event after a socket died');
        R.events.push({ trial, ms: ev ? ev.at - tDead : null, status: ev?.data.connectionStatus });
      }
      const ms = R.events.map((e) => e.ms).filter((v) => v !== null);
      log(`/events after a TCP reset: median ${fmt(median(ms))} ms, max ${fmt(Math.max(...ms))} ms (${ms.length} trials)`);
    } finally {
      sse.close();
    }
  } finally {
    await w.stop();
    await mock.stop();
  }
}

/** A GET /events stream; next(pred, ms) resolves with the first event matching pred ({event, data, at}). */
async function openEvents(port) {
  const http = await import('node:http');
  const listeners = new Set();
  let req;
  await new Promise((resolve, reject) => {
    req = http.request({ host: '127.0.0.1', port, path: '/events', headers: { 'x-api-key': API_KEY, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`/events: ${res.statusCode}`));
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (d) => {
        const at = performance.now();
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!event || !data) continue;
          let parsed;
          try {
            parsed = JSON.parse(data);
          } catch {
            continue;
          }
          for (const l of listeners) l({ event, data: parsed, at });
        }
      });
      resolve();
    });
    req.on('error', reject);
    req.end();
  });
  return {
    next: (pred, ms) => nextEvent(listeners, pred, ms),
    close: () => req.destroy(),
  };
}

async function detectBaileys(client) {
  const n = 3;
  const mock = await startMock({ nofile });
  const base = phones(n);
  const names = sessionNames(n, base);
  const b = await startBaileys({ client, n, mock, phoneBase: base, keepaliveMs: C.baileysKeepaliveMs, nofile });
  try {
    if (!(await until(() => b.st.ready || b.exited(), { timeoutMs: 60000 })) || b.st.opened.size < n) return fail(`detection: ${client} sessions did not open`);
    await sleep(500);
    const tDead = Date.now();
    await mock.act(names[0].jid, 'blackhole');
    const lost = await b.next((e) => e.ev === 'close' && e.i === 0, 150000);
    const back = lost && (await b.next((e) => e.ev === 'open' && e.i === 0, 60000));
    if (!lost || !back) fail(`detection: ${client} did not ${lost ? 'reconnect' : 'notice'} a blackholed socket`);
    R.detection.push({ system: client, trial: 0, detectS: lost ? (lost.t - tDead) / 1000 : null, recoverS: back ? (back.t - tDead) / 1000 : null, why: lost ? `close ${lost.code}` : null });
    log(`detection ${client}: lost after ${fmt(lost ? (lost.t - tDead) / 1000 : NaN)} s (${lost?.code}), open again after ${fmt(back ? (back.t - tDead) / 1000 : NaN)} s`);
  } finally {
    await b.stop();
    await mock.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------
// 4. Restart storm: stormN saved sessions, wagate serve restarted with no stagger, with the scale runs'
// stagger, and with the default (2 s, sampled for a bounded time: the whole would take N x 2 s).

async function storm() {
  const n = C.stormN;
  const mock = await startMock({ nofile });
  const db = path.join(WORK, 'wagate-storm.db');
  seedDb(db, n, phones(n));
  try {
    for (const [label, stagger, sampleS] of [['none', '0ms', null], [STAGGER, STAGGER, null], ['default (2s)', null, C.stormSampleS]]) {
      await mock.resetStats();
      const env = stagger ? { WAGATE_START_STAGGER: stagger } : {};
      const w = await startWagate({ db, mock, env, nofile });
      const probe = loopProbe(w.port, '/auth/session', 5, API_KEY);
      const row = { n, stagger: label };
      try {
        const capMs = sampleS ? sampleS * 1000 : Math.max(C.bringupCapS * 1000, 120000);
        const tStart = Date.now();
        await until(() => w.st.opened.size >= n || w.exited(), { timeoutMs: capMs, intervalMs: 50 });
        { const pe = await probe.end(); row.stallMs = pe.maxMs; row.ownMs = pe.ownMaxMs; }
        row.up = w.st.opened.size;
        row.inFlightMax = (await mock.stats()).inFlightMax;
        const starts = w.st.starts.filter((e) => e.why === 'start');
        row.starts = starts.length;
        const staggerMs = stagger === null ? 2000 : parseInt(stagger, 10);
        if (starts.length > 1) {
          const devs = starts.map((e, i) => e.t - (starts[0].t + i * staggerMs));
          row.scheduleLagMedianMs = median(devs);
          row.scheduleLagMaxMs = Math.max(...devs);
        }
        const opens = [...w.st.opened.values()];
        if (sampleS) {
          row.projectedAllUpS = ((n - 1) * staggerMs) / 1000 + median(opens.map((t, i) => t - (starts[i]?.t ?? t))) / 1000;
          row.note = `sampled ${sampleS} s; all-up time projected from the schedule`;
        } else {
          row.allUpS = row.up >= n ? (Math.max(...opens) - tStart) / 1000 : null;
          if (row.up < n) {
            row.note = `${row.up} of ${n} connected after ${capMs / 1000} s`;
            if (SMOKE) fail(`storm ${label}: ${row.note}`);
          }
        }
        row.retries = w.st.starts.filter((e) => e.why !== 'start').length;
        log(`storm N=${n} stagger ${label}: up ${row.up}${row.allUpS ? ` in ${fmt(row.allUpS)} s` : ''}, in flight max ${row.inFlightMax}, schedule lag median ${fmt(row.scheduleLagMedianMs)} ms max ${fmt(row.scheduleLagMaxMs)} ms, loop stall ${fmt(row.stallMs)} ms (own ${fmt(row.ownMs)} ms)`);
      } finally {
        await w.stop();
      }
      R.storm.push(row);
    }
  } finally {
    await mock.stop();
  }
}

/*
 * Incoming messages: 10 sessions, C.messages messages from the mock, the fsyncs wagate makes meanwhile counted
 * by strace. A message updates last_message_at; it must not cost a disk write of its own.
 */
async function messages() {
  const n = 10;
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
  } catch {
    R.notes.push('messages: strace is not installed; fsyncs not counted');
    return;
  }
  const mock = await startMock({ nofile });
  const db = path.join(WORK, 'wagate-messages.db');
  seedDb(db, n, phones(n));
  const w = await startWagate({ db, mock, env: { WAGATE_START_STAGGER: '10ms' } });
  try {
    if (!(await until(() => w.st.connected.size >= n, { timeoutMs: 30000 }))) return fail('messages: sessions did not connect');
    await sleep(6000); // past the writes of the bring-up and the first coalesced interval
    const tr = spawn('strace', ['-f', '-c', '-e', 'trace=fsync,fdatasync', '-p', String(w.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let out = '';
    tr.stderr.on('data', (d) => (out += d));
    await sleep(500);
    const t0 = Date.now();
    for (let i = 0; i < C.messages / n; i++) {
      const r = await request(mock.controlPort, 'POST', '/connections/all/message', { body: {} });
      if (r.status !== 200) return fail(`messages: the mock answered ${r.status}`);
    }
    await sleep(6000); // one coalescing interval and a flush after the last message
    const seconds = Math.round((Date.now() - t0) / 1000);
    tr.kill('SIGINT');
    await new Promise((r) => tr.on('exit', r));
    let fsyncs = 0;
    for (const m of out.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)\s*$/gm)) fsyncs += Number(m[1]);
    R.messages = { messages: C.messages, sessions: n, fsyncs, seconds };
    log(`messages: ${C.messages} to ${n} sessions in ${seconds} s: ${fsyncs} fsync/fdatasync calls`);
  } finally {
    await w.stop();
    await mock.stop();
  }
}

/* The acceptance case: stormBigN saved sessions started 1 ms apart. */
async function stormBig() {
  const n = C.stormBigN;
  if (n + 200 > nofile) return R.notes.push(`storm of ${n}: skipped (descriptor limit ${nofile})`);
  const mock = await startMock({ nofile });
  const db = path.join(WORK, 'wagate-storm-big.db');
  seedDb(db, n, phones(n));
  const w = await startWagate({ db, mock, env: { WAGATE_START_STAGGER: '1ms' }, nofile });
  const probe = loopProbe(w.port, '/auth/session', 5, API_KEY);
  const row = { n, stagger: '1ms' };
  try {
    const tStart = Date.now();
    await until(() => w.st.opened.size >= n || w.exited(), { timeoutMs: Math.max(C.bringupCapS * 1000, 180000), intervalMs: 50 });
    { const pe = await probe.end(); row.stallMs = pe.maxMs; row.ownMs = pe.ownMaxMs; }
    row.up = w.st.opened.size;
    row.allUpS = row.up >= n ? (Math.max(...w.st.opened.values()) - tStart) / 1000 : null;
    row.inFlightMax = (await mock.stats()).inFlightMax;
    row.retries = w.st.starts.filter((e) => e.why !== 'start').length;
    log(`storm N=${n} stagger 1ms: up ${row.up}${row.allUpS ? ` in ${fmt(row.allUpS)} s` : ''}, in flight max ${row.inFlightMax}, retries ${row.retries}, loop stall ${fmt(row.stallMs)} ms (own ${fmt(row.ownMs)} ms)`);
    if (SMOKE && row.up < n) fail(`storm of ${n} at 1 ms: ${row.up} up`);
  } finally {
    await w.stop();
    await mock.stop();
  }
  R.stormBig = row;
  R.storm.push(row);
}

function median(a) {
  if (!a.length) return null;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor((s.length - 1) / 2)];
}

// ---------------------------------------------------------------------------------------------------------
// The report.

function perSession(row) {
  const base = R.baseline?.[row.system];
  if (!base || !row.n || !row.rss) return { rss: null, pss: null };
  return { rss: (row.rss - base.rss) / row.n, pss: (row.pss - base.pss) / row.n };
}

// The commit the run started at (the binaries under test were built from it, with `make bench`).
const COMMIT = (() => {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
})();

function writeReport() {
  const meta = {
    date: new Date().toISOString(),
    commit: COMMIT,
    cpu: os.cpus()[0]?.model ?? '?',
    cores: os.cpus().length,
    memGiB: (os.totalmem() / 2 ** 30).toFixed(0),
    kernel: os.release(),
    node: process.version,
    durationS: ((Date.now() - t0All) / 1000).toFixed(0),
  };
  const csv = [csvLine(['section', 'system', 'transport', 'n', 'metric', 'value', 'unit'])];
  const add = (sec, sys, tr, n, metric, v, unit) => v !== null && v !== undefined && csv.push(csvLine([sec, sys, tr, n, metric, typeof v === 'number' ? +v.toFixed(4) : v, unit]));

  const scaleRows = R.scale.map((r) => {
    const ps = perSession(r);
    for (const [k, v, u] of [['up', r.up, 'sessions'], ['bringup', r.bringupS, 's'], ['cpu_per_login', r.cpuPerLoginMs, 'ms'], ['idle_cpu_per_session_min', r.idleCpuMsPerSessionMin, 'ms'],
      ['rss', r.rss, 'KiB'], ['pss', r.pss, 'KiB'], ['rss_per_session', ps.rss, 'KiB'], ['pss_per_session', ps.pss, 'KiB'], ['mock_idle_cpu_per_session_min', r.mockIdleCpuMsPerSessionMin, 'ms'],
      ['bringup_loop_stall', r.bringupStallMs, 'ms'], ['idle_loop_stall', r.idleStallMs, 'ms'], ['bringup_loop_own', r.bringupOwnMs, 'ms'], ['idle_loop_own', r.idleOwnMs, 'ms'], ['idle_drops', r.idleDrops, 'sessions']]) add('scale', r.system, r.transport, r.n, k, v, u);
    return [r.system, r.transport, r.n.toLocaleString('en-US'), `${r.up}`, fmt(r.bringupS), fmt(r.cpuPerLoginMs), fmt(r.idleCpuMsPerSessionMin), fmt(r.rss / 1024), fmt(ps.rss), fmt(ps.pss), fmt(r.mockIdleCpuMsPerSessionMin), r.idleDrops, r.system === 'wagate' ? `${fmt(r.bringupStallMs)} / ${fmt(r.idleStallMs)}${r.bringupOwnMs !== undefined ? ` (own ${fmt(r.bringupOwnMs)} / ${fmt(r.idleOwnMs)})` : ''}` : null, r.note ?? ''];
  });

  // Ratios against wagate over ws:// at the same N.
  const ratioRows = [];
  for (const r of R.scale.filter((x) => x.system !== 'wagate' || x.transport === 'wss')) {
    const w = R.scale.find((x) => x.system === 'wagate' && x.transport === 'ws' && x.n === r.n);
    if (!w) continue;
    const a = perSession(r);
    const b = perSession(w);
    const q = (x, y) => (x && y ? `${fmt(x / y)}×` : null);
    ratioRows.push([`${r.system} ${r.transport}`, r.n.toLocaleString('en-US'), q(a.rss, b.rss), q(r.cpuPerLoginMs, w.cpuPerLoginMs), q(r.idleCpuMsPerSessionMin, w.idleCpuMsPerSessionMin)]);
    add('ratio', r.system, r.transport, r.n, 'rss_per_session_vs_wagate', a.rss && b.rss ? a.rss / b.rss : null, 'x');
    add('ratio', r.system, r.transport, r.n, 'cpu_per_login_vs_wagate', r.cpuPerLoginMs && w.cpuPerLoginMs ? r.cpuPerLoginMs / w.cpuPerLoginMs : null, 'x');
  }

  // Slopes: RSS and PSS against N (KiB per session), by system.
  const systems = [...new Set(R.scale.map((r) => `${r.system} ${r.transport}`))];
  const slopeRows = systems.map((s) => {
    const rows = R.scale.filter((r) => `${r.system} ${r.transport}` === s && r.rss && r.up);
    const rs = slope(rows.map((r) => [r.up, r.rss]));
    const pss = slope(rows.map((r) => [r.up, r.pss]));
    add('slope', s.split(' ')[0], s.split(' ')[1], null, 'rss_per_session_slope', rs?.slope, 'KiB');
    add('slope', s.split(' ')[0], s.split(' ')[1], null, 'pss_per_session_slope', pss?.slope, 'KiB');
    return [s, rows.map((r) => r.n.toLocaleString('en-US')).join(', '), fmt(rs?.slope), fmt(pss?.slope)];
  });

  for (const a of R.api) {
    const k = `${a.path} x${a.conns}`;
    add('api', 'wagate', 'ws', a.n, `${k} requests_per_s`, a.rps, '1/s');
    for (const p of ['50', '99']) add('api', 'wagate', 'ws', a.n, `${k} latency_p${p}`, a.pct[p], 'ms');
    add('api', 'wagate', 'ws', a.n, `${k} loop_stall`, a.stallMs, 'ms');
    add('api', 'wagate', 'ws', a.n, `${k} loop_own`, a.ownMs, 'ms');
    add('api', 'wagate', 'ws', a.n, `${k} session_drops`, a.drops, 'sessions');
  }
  for (const d of R.detection) {
    add('detection', d.system, 'ws', null, `trial${d.trial} detect`, d.detectS, 's');
    add('detection', d.system, 'ws', null, `trial${d.trial} recover`, d.recoverS, 's');
  }
  const evMs = R.events.map((e) => e.ms).filter((v) => v !== null);
  add('events', 'wagate', 'ws', null, 'socket_death_to_event_median', median(evMs), 'ms');
  add('events', 'wagate', 'ws', null, 'socket_death_to_event_max', evMs.length ? Math.max(...evMs) : null, 'ms');
  for (const s of R.storm) {
    for (const [k, v, u] of [['all_up', s.allUpS, 's'], ['projected_all_up', s.projectedAllUpS, 's'], ['in_flight_max', s.inFlightMax, 'handshakes'], ['schedule_lag_median', s.scheduleLagMedianMs, 'ms'], ['schedule_lag_max', s.scheduleLagMaxMs, 'ms'], ['loop_stall', s.stallMs, 'ms'], ['loop_own', s.ownMs, 'ms']]) add('storm', 'wagate', 'ws', s.n, `${s.stagger} ${k}`, v, u);
  }

  // Goals (issue text; reported, not asserted).
  const w = (n, tr = 'ws') => R.scale.find((r) => r.system === 'wagate' && r.transport === tr && r.n === n);
  const big = [...R.scale].filter((r) => r.system === 'wagate' && r.transport === 'ws').sort((a, b) => b.n - a.n)[0];
  const bigWss = [...R.scale].filter((r) => r.system === 'wagate' && r.transport === 'wss').sort((a, b) => b.n - a.n)[0];
  const logins = R.scale.filter((r) => r.system === 'wagate' && r.transport === 'ws' && r.cpuPerLoginMs);
  const health = R.api.filter((a) => a.path === '/health').sort((a, b) => b.n - a.n)[0];
  const deep50 = R.api.find((a) => a.path === '/health/deep' && a.conns === 50);
  const list10k = R.api.filter((a) => a.n >= 10000 && a.conns === 1 && a.path !== '/health');
  const storm1ms = R.stormBig;
  const maxStall = Math.max(...R.scale.filter((r) => r.system === 'wagate').flatMap((r) => [r.bringupStallMs ?? 0, r.idleStallMs ?? 0]), ...R.api.map((a) => a.stallMs ?? 0), ...R.storm.map((s) => s.stallMs ?? 0));
  // The own share of each longest turn (less its waits for a CPU and stolen time: GET /health/loop's maxOwnMs), where measured.
  const own = (wall, o) => (typeof o === 'number' ? o : wall ?? 0);
  const maxOwn = Math.max(...R.scale.filter((r) => r.system === 'wagate').flatMap((r) => [own(r.bringupStallMs, r.bringupOwnMs), own(r.idleStallMs, r.idleOwnMs)]), ...R.api.map((a) => own(a.stallMs, a.ownMs)), ...R.storm.map((s) => own(s.stallMs, s.ownMs)));
  const det = R.detection.filter((d) => d.system === 'wagate' && d.detectS !== null);
  const goal = (name, target, value, ok) => [name, target, value ?? 'not measured', value === null || value === undefined ? '—' : ok ? 'met' : '**missed**'];
  const goals = [
    goal('RSS per idle session, ws://', '≤ 16 KiB', big && `${fmt(perSession(big).rss)} KiB at ${big.n}`, big && perSession(big).rss <= 16),
    goal('RSS per idle session, wss://', '≤ 48 KiB', bigWss && `${fmt(perSession(bigWss).rss)} KiB at ${bigWss.n}`, bigWss && perSession(bigWss).rss <= 48),
    goal('CPU per login, flat in N', '≤ 2 ms', logins.length ? logins.map((r) => `${fmt(r.cpuPerLoginMs)} (${r.n})`).join(', ') + ' ms' : null, logins.every((r) => r.cpuPerLoginMs <= 2)),
    goal('idle CPU per session per minute', '≤ 0.2 ms', big && `${fmt(big.idleCpuMsPerSessionMin)} ms at ${big.n}`, big && big.idleCpuMsPerSessionMin <= 0.2),
    goal('10,000 idle sessions', '< 5 % of one core', w(10000) && `${fmt((w(10000).idleCpuMsPerSessionMin * 10000) / 600)} %`, w(10000) && (w(10000).idleCpuMsPerSessionMin * 10000) / 600 < 5),
    goal('silent death detected', 'within one keepalive interval + deadline (≤ 40 s by default)', det.length ? det.map((d) => `${fmt(d.detectS)} s`).join(', ') : null, det.every((d) => d.detectS <= (SMOKE ? 2.5 : 40))),
    goal('socket death to /events', '≤ 100 ms', evMs.length ? `median ${fmt(median(evMs))} ms, max ${fmt(Math.max(...evMs))} ms` : null, evMs.length && Math.max(...evMs) <= 100),
    goal('/health throughput', '≥ 50,000 req/s', health && `${fmt(health.rps)} req/s at ${health.n}`, health && health.rps >= 50000),
    goal('longest event-loop stall (its own work)', '≤ 10 ms', Number.isFinite(maxOwn) && maxStall > 0 ? `${fmt(maxOwn)} ms (${fmt(maxStall)} ms with its waits for a CPU and stolen time)` : null, maxOwn <= 10),
    goal('`/sessions`, `/health/deep` at 10,000', '< 50 ms (p50, one client)', list10k.length ? list10k.map((a) => `${a.path} ${fmt(a.pct['50'])} ms`).join(', ') : null, list10k.every((a) => a.pct['50'] < 50)),
    goal('50 concurrent `/health/deep`', 'no session dropped', deep50 && `${deep50.drops} dropped at ${deep50.n}`, deep50 && deep50.drops === 0),
    goal(`${storm1ms ? storm1ms.n.toLocaleString('en-US') : '10,000'} sessions started 1 ms apart`, 'all connect, no stall over 10 ms', storm1ms && `${storm1ms.up} up in ${fmt(storm1ms.allUpS)} s, stall ${fmt(own(storm1ms.stallMs, storm1ms.ownMs))} ms (${fmt(storm1ms.stallMs)} ms with its waits for a CPU)`, storm1ms && storm1ms.up === storm1ms.n && own(storm1ms.stallMs, storm1ms.ownMs) <= 10),
    goal('fsyncs per 1,000 incoming messages', 'none of their own', R.messages && `${R.messages.fsyncs} (${R.messages.seconds} s)`, R.messages && R.messages.fsyncs <= Math.ceil(R.messages.seconds / 5) + 2),
  ];

  const md = [];
  md.push(`# wagate benchmark${SMOKE ? ' (smoke run: small N, short windows; the figures mean little)' : ''}`);
  md.push('');
  md.push(`Run ${meta.date}, commit ${meta.commit}${SERVE_BIN !== WAGATE ? ` (wagate serve under test: ${process.env.BENCH_SERVE_LABEL ?? SERVE_BIN})` : ''}, ${meta.durationS} s. Machine: ${meta.cpu}, ${meta.cores} cores, ${meta.memGiB} GiB, Linux ${meta.kernel}, Node ${meta.node}. Everything on loopback against \`wagate mock --accept-any-login\`; one mock per run. ${PIN.sut ? 'The system under test runs on CPU 0 alone; the mock, the probes, wrk and the bench share CPU 1.' : 'Processes are not pinned to CPUs.'} Reproduce with \`make bench\` (method: docs/performance.md).`);
  md.push('');
  md.push(`Settings: wagate start stagger ${STAGGER} in the scale runs, default keepalive (20–30 s, 10 s deadline) unless noted; Baileys sockets opened 16 at a time with Baileys' defaults; idle window ${C.idleS} s; wrk \`-t2 -c8 -d${C.wrkS}s\`.`);
  md.push('');
  md.push('## Goals');
  md.push('');
  md.push(table(['goal', 'target', 'measured', ''], goals));
  md.push('');
  md.push('## Sessions at scale');
  md.push('');
  md.push(`Per-session figures subtract each system's own RSS/PSS with no session (wagate ${R.baseline?.wagate?.rss ?? '?'} KiB, Baileys 6 host ${R.baseline?.baileys6?.rss ?? '?'} KiB, Baileys 7 host ${R.baseline?.baileys7?.rss ?? '?'} KiB). CPU per login is the process's CPU from the first start until all N are open, divided by N. Idle CPU is measured over the idle window after bring-up (wagate's includes the probe, one trivial request every 100 ms, and its loop-lag timer at the default 100 ms). The mock's idle CPU is the server side's own cost, not counted in the system's. Loop stall: wagate's longest event-loop turn in the window (GET /health/loop's maxTurnMs: from one return of epoll_wait to the next call, measured at every turn without a timer), and in brackets its own share (maxOwnMs): the CPU time the loop's thread used in that turn, which leaves out its waits for a CPU on these two cores shared with the mock and the load generator and the time the hypervisor stopped the virtual CPU, or, when the thread slept in it, the turn less its waits for a CPU; in the log, also the longest answer to a trivial request polled every 100 ms (bring-up, idle) or 5 ms (API, storms) from outside, which also counts the time the client waited for a CPU.`);
  md.push('');
  md.push(table(['system', 'transport', 'N', 'up', 'bring-up s', 'CPU/login ms', 'idle CPU ms/session/min', 'RSS MiB', 'RSS/session KiB', 'PSS/session KiB', 'mock idle ms/session/min', 'drops while idle', 'loop stall ms (bring-up / idle)', 'note'], scaleRows));
  md.push('');
  md.push('Slopes of memory against N (least squares over the Ns measured; the fixed costs drop out):');
  md.push('');
  md.push(table(['system', 'N', 'RSS KiB/session', 'PSS KiB/session'], slopeRows));
  md.push('');
  md.push('Ratios against wagate over ws:// at the same N (per-session RSS, CPU per login, idle CPU):');
  md.push('');
  md.push(table(['system', 'N', 'RSS/session', 'CPU/login', 'idle CPU'], ratioRows));
  md.push('');
  md.push('![memory](memory.svg) ![cpu per login](cpu-login.svg) ![idle cpu](cpu-idle.svg)');
  md.push('');
  md.push('## Detection and recovery');
  md.push('');
  md.push(`One connection blackholed by the mock (the socket stays open, nothing comes back): time until the system notices (wagate: the session leaves \`connected\`; Baileys: \`connection.update\` close) and until it is open again. ${SMOKE ? 'Smoke: keepalive shortened (wagate 1 s + 1 s, Baileys 2 s).' : 'Each system with its default keepalive.'}`);
  md.push('');
  md.push(table(['system', 'trial', 'noticed after s', 'open again after s', 'how'], R.detection.map((d) => [d.system, d.trial, fmt(d.detectS), fmt(d.recoverS), d.why])));
  md.push('');
  md.push(`A connection reset by the mock (TCP RST) to the session's change on \`GET /events\`: ${evMs.length ? `median ${fmt(median(evMs))} ms, max ${fmt(Math.max(...evMs))} ms over ${evMs.length} trials` : 'not measured'}.`);
  md.push('');
  md.push('## Restart storm');
  md.push('');
  md.push(`${C.stormN.toLocaleString('en-US')} saved sessions, \`wagate serve\` started on them (after a clean stop) with each stagger. In flight: the mock's high-water mark of connections accepted and not yet logged in. Schedule lag: each start's time minus (first start + i × stagger).`);
  md.push('');
  md.push(table(['stagger', 'up', 'all up s', 'projected all up s', 'handshakes in flight (max)', 'schedule lag median / max ms', 'retries', 'loop stall ms', 'note'],
    R.storm.map((s) => [s.stagger, s.up, fmt(s.allUpS), fmt(s.projectedAllUpS), s.inFlightMax, `${fmt(s.scheduleLagMedianMs)} / ${fmt(s.scheduleLagMaxMs)}`, s.retries, `${fmt(s.stallMs)}${s.ownMs !== undefined ? ` (own ${fmt(s.ownMs)})` : ''}`, s.note ?? ''])));
  md.push('');
  if (R.messages) {
    md.push('## Incoming messages');
    md.push('');
    md.push(`${R.messages.messages} messages from the mock to ${R.messages.sessions} sessions: wagate made ${R.messages.fsyncs} fsync/fdatasync calls in the ${R.messages.seconds} s that followed (counted by \`strace -c\`). \`last_message_at\` is written at most once per session per 5 s, in one transaction with everything else pending.`);
    md.push('');
  }
  md.push('## The API');
  md.push('');
  md.push('wrk with the API key, while N sessions are held; the loop stall is wagate\'s longest event-loop turn during the run (GET /health/loop\'s maxTurnMs), in brackets its own share (its CPU time, less its waits for a CPU and stolen time); drops are sessions that left `connected` during the run.');
  md.push('');
  md.push(table(['N', 'path', 'clients', 'req/s', 'p50 ms', 'p75 ms', 'p90 ms', 'p99 ms', 'errors', 'loop stall ms', 'sessions dropped'],
    R.api.map((a) => [a.n.toLocaleString('en-US'), `\`${a.path}\``, a.conns, fmt(a.rps), fmt(a.pct['50']), fmt(a.pct['75']), fmt(a.pct['90']), fmt(a.pct['99']), a.errors + a.non2xx, `${fmt(a.stallMs)}${a.ownMs !== undefined ? ` (own ${fmt(a.ownMs)})` : ''}`, a.drops])));
  md.push('');
  if (R.notes.length || R.failures.length) {
    md.push('## Notes');
    md.push('');
    for (const n of R.notes) md.push(`- ${n}`);
    for (const f of R.failures) md.push(`- failed: ${f}`);
    md.push('');
  }
  fs.writeFileSync(path.join(OUT, 'latest.md'), `${md.join('\n')}\n`);
  fs.writeFileSync(path.join(OUT, 'latest.csv'), `${csv.join('\n')}\n`);

  for (const [file, svg] of Object.entries(plotsFromCsv(csv.join('\n')))) fs.writeFileSync(path.join(OUT, file), svg);
}

// ---------------------------------------------------------------------------------------------------------

let sections = 0;
let sectionsFailed = 0;
async function section(name, fn) {
  if (ONLY && !ONLY.some((o) => name.startsWith(o))) return;
  const before = R.failures.length;
  sections++;
  try {
    await fn();
  } catch (e) {
    fail(`${name}: ${e.stack?.split('\n').slice(0, 3).join(' ') ?? e}`);
  }
  if (R.failures.length > before) sectionsFailed++;
  writeReport();
}

log(`${SMOKE ? 'smoke' : 'full'} run; results in ${path.relative(ROOT, OUT)}/`);
await section('baselines', baselines);
for (const n of C.wagateNs) await section(`wagate ws ${n}`, () => scaleWagate(n));
const tls = makeCert(WORK);
for (const n of C.wssNs) await section(`wagate wss ${n}`, () => scaleWagate(n, { tls }));
for (const client of ['baileys6', 'baileys7'].filter((c) => SYSTEMS.includes(c))) {
  for (const n of client === 'baileys6' ? C.b6Ns : C.b7Ns) await section(`${client} ${n}`, () => scaleBaileys(client, n));
}
await section('detection wagate', detectWagate);
for (const client of C.detectBaileys.filter((c) => SYSTEMS.includes(c))) await section(`detection ${client}`, () => detectBaileys(client));
await section('storm', storm);
await section('storm-big', stormBig);
await section('messages', messages);
log(`done in ${((Date.now() - t0All) / 1000).toFixed(0)} s: ${path.relative(ROOT, OUT)}/latest.md`);
console.log(`bench${SMOKE ? '-smoke' : ''}: ${sections - sectionsFailed} passed, ${sectionsFailed} failed`);
if (R.failures.length) {
  console.log(`bench: ${R.failures.length} measurement(s) failed:\n  ${R.failures.join('\n  ')}`);
  process.exit(1);
}
void request;
