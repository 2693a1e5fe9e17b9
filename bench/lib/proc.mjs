// Processes under measurement: spawning them with a raised descriptor limit, reading their CPU and memory
// from /proc, following their output line by line, and stopping them. Everything the benchmark measures is
// read from outside the process, as an operator would.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';

import { track } from '../../tests/interop/lib/children.mjs';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const PAGE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** User + system CPU time of a process in ms (10 ms resolution on most kernels). */
export function cpuMs(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** RSS and PSS in KiB (smaps_rollup; PSS splits shared pages between the processes that map them). */
export function memKiB(pid) {
  const out = { rss: 0, pss: 0 };
  try {
    const t = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    out.rss = Number(/^Rss:\s+(\d+)/m.exec(t)?.[1] ?? 0);
    out.pss = Number(/^Pss:\s+(\d+)/m.exec(t)?.[1] ?? 0);
  } catch {
    const f = fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    out.rss = (Number(f[1]) * PAGE) / 1024;
    out.pss = out.rss;
  }
  return out;
}

/** The limit on open descriptors this benchmark can give its children (root may raise the hard limit). */
export function fdLimit(want) {
  try {
    execFileSync('prlimit', [`--nofile=${want}:${want}`, 'true'], { stdio: 'ignore' });
    return want;
  } catch {
    const hard = Number(execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
    return Number.isFinite(hard) ? hard : 1024;
  }
}

/**
 * Starts cmd with args under `prlimit --nofile`, following stdout and stderr line by line.
 * onLine(stream, line) is called for each line. Returns a handle with pid, exited(), wait(ms), stop().
 */
export function start(cmd, args, { env = {}, nofile, cpus, onLine = () => {}, keepStderr = 20000 } = {}) {
  let argv = cpus ? ['taskset', '-c', cpus, cmd, ...args] : [cmd, ...args];
  if (nofile) argv = ['prlimit', `--nofile=${nofile}:${nofile}`, '--', ...argv];
  const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  track(child); /* killed if the benchmark exits without stopping it */
  let exited = null;
  const waiters = [];
  let tail = '';
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    for (const w of waiters.splice(0)) w(exited);
  });
  for (const [name, stream] of [['stdout', child.stdout], ['stderr', child.stderr]]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d) => {
      buf += d;
      if (name === 'stderr') tail = (tail + d).slice(-keepStderr);
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        onLine(name, line);
      }
    });
  }
  child.stdin.on('error', () => {});
  const h = {
    child,
    // prlimit and taskset exec the command, so the pid is the command's own.
    pid: child.pid,
    exited: () => exited,
    stderrTail: () => tail,
    send: (obj) => child.stdin.write(`${JSON.stringify(obj)}\n`),
    wait(ms) {
      if (exited) return Promise.resolve(exited);
      return new Promise((resolve) => {
        const t = setTimeout(() => resolve(null), ms);
        waiters.push((e) => {
          clearTimeout(t);
          resolve(e);
        });
      });
    },
    async stop(sig = 'SIGTERM', ms = 15000) {
      if (exited) return exited;
      child.kill(sig);
      const e = await h.wait(ms);
      if (e) return e;
      child.kill('SIGKILL');
      return (await h.wait(3000)) ?? { code: null, signal: 'SIGKILL' };
    },
  };
  return h;
}

/**
 * Which CPUs each side runs on, with BENCH_PIN=1 (and two or more CPUs): the system under test gets CPU 0 to
 * itself and everything else (the mock, the probes, wrk, this process) shares CPU 1. Off by default: on two
 * cores it halves what wrk and the mock can do, and the stall figures come from wagate's own loop-lag timer,
 * which a busy client cannot inflate.
 */
export const PIN = (() => {
  if (process.env.BENCH_PIN !== '1' || os.cpus().length < 2) return { sut: undefined, other: undefined };
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  } catch {
    return { sut: undefined, other: undefined };
  }
  return { sut: '0', other: '1' };
})();

/**
 * CPU time the hypervisor took from this virtual machine so far (the "steal" column of /proc/stat, all CPUs),
 * in ms: while it grows, runnable processes wait for a CPU they were given, and the loop-lag timer counts that
 * wait as loop time. null when the kernel does not say.
 */
export function stealMs() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    return f.length > 8 ? (Number(f[8]) * 1000) / CLK_TCK : null;
  } catch {
    return null;
  }
}

/** A free TCP port on loopback. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** One HTTP request on loopback; resolves {status, body, ms}. */
export function request(port, method, path, { key, body, timeoutMs = 60000, agent: a = agent } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const headers = {};
    if (key) headers['x-api-key'] = key;
    const data = body === undefined ? undefined : JSON.stringify(body);
    if (data !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(data);
    }
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: a, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
        resolve({ status: res.statusCode, body: parsed, ms: performance.now() - t0 });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** Polls fn every intervalMs until it returns a truthy value or timeoutMs passes (then returns null). */
export async function until(fn, { timeoutMs, intervalMs = 100 }) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= end) return null;
    await sleep(intervalMs);
  }
}

/**
 * The loop probe: one keep-alive connection asking a path that costs the server nothing (no database, no
 * listing) every intervalMs. The longest answer while it runs is the longest time the server's one event
 * loop was busy with something else, as a client sees it: a lower bound of the longest stall, exact within
 * intervalMs, but it also counts the time this client itself waited for a CPU. With the API key, end() also
 * asks wagate's own measure for the same window (GET /health/loop: how late a timer due every 5 ms ran), which
 * counts only the server's loop; maxMs is then that figure and externalMaxMs the client's.
 */
export function loopProbe(port, path = '/auth/session', intervalMs = 5, key = null) {
  const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const since = Date.now();
  let stop = false;
  let max = 0;
  let n = 0;
  const over10 = { count: 0 };
  const done = (async () => {
    while (!stop) {
      try {
        const r = await request(port, 'GET', path, { agent: a, timeoutMs: 120000 });
        n++;
        if (r.ms > max) max = r.ms;
        if (r.ms > 10) over10.count++;
      } catch {
        // a refused probe is not a stall measurement
      }
      await sleep(intervalMs);
    }
  })();
  return {
    async end() {
      stop = true;
      await done;
      a.destroy();
      const out = { maxMs: max, externalMaxMs: max, samples: n, over10ms: over10.count };
      if (key) {
        try {
          const r = await request(port, 'GET', `/health/loop?since=${since}`, { key, timeoutMs: 10000 });
          if (r.status === 200 && typeof r.body.maxLagMs === 'number') {
            // The longest loop turn (measured at every turn, no timer needed); an older wagate: its timer's lateness.
            out.maxMs = typeof r.body.maxTurnMs === 'number' ? r.body.maxTurnMs : r.body.maxLagMs;
            out.lagMs = r.body.maxLagMs;
            out.over10ms = typeof r.body.turnsOver10ms === 'number' ? r.body.turnsOver10ms : r.body.over10ms;
            // Its own work: less its waits for a CPU and the time the hypervisor stopped the CPU.
            if (typeof r.body.maxOwnMs === 'number') out.ownMaxMs = r.body.maxOwnMs;
          }
        } catch {
          // an older wagate without the measure: the client's figure stands
        }
      }
      return out;
    },
  };
}
