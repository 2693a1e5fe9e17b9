// The systems under test, each started against the same `wagate mock`: wagate serve with N saved sessions
// in SQLite, and one Node process holding N Baileys sockets (bench/baileys-host.mjs). Each handle follows
// its system's own output to know, per session, when it started, opened and closed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { start, freePort, request, until, cpuMs, fdLimit, PIN } from './proc.mjs';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const BUILD = process.env.BENCH_BUILD ? path.resolve(process.env.BENCH_BUILD) : path.join(ROOT, 'build');
export const WAGATE = path.join(BUILD, 'wagate');
// The wagate under test (`serve`, and `migrate` for its schema); the mock and the seeder always come from
// BUILD. BENCH_SERVE_BIN measures another build (an older commit, for before/after) against the same mock.
export const SERVE_BIN = process.env.BENCH_SERVE_BIN ? path.resolve(process.env.BENCH_SERVE_BIN) : WAGATE;
export const SEED = path.join(BUILD, 'bench', 'wagate-bench-seed');
export const API_KEY = 'bench-api-key-0123456789abcdef';
// Descriptors for each process: as many as the hard limit allows a root process to take (65,536 at most).
export const NOFILE = fdLimit(65536);
// Saved sessions have uploaded pre-keys before: the mock counts 30 for each (wagate's batch, and as
// many as the seeded credentials hold), so neither system pays a first-login upload.
export const PREKEYS_KNOWN = 30;

/** The first event a set of listeners hears that matches pred, or null after ms. */
export function nextEvent(listeners, pred, ms) {
  return new Promise((resolve) => {
    const l = (ev) => {
      if (pred(ev)) {
        listeners.delete(l);
        clearTimeout(t);
        resolve(ev);
      }
    };
    const t = setTimeout(() => {
      listeners.delete(l);
      resolve(null);
    }, ms);
    listeners.add(l);
  });
}

/** A fresh `wagate mock --accept-any-login` on free loopback ports (wss:// with tls = {cert, key}). */
export async function startMock({ tls, nofile = NOFILE } = {}) {
  const lines = [];
  const args = ['mock', '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--accept-any-login', '--prekeys-known', String(PREKEYS_KNOWN)];
  if (tls) args.push('--tls-cert', tls.cert, '--tls-key', tls.key);
  // warn: the mock's per-connection info lines would cost it more than the sessions do.
  const h = start(WAGATE, args, { env: { WAGATE_LOG_LEVEL: 'warn' }, nofile, cpus: PIN.other, onLine: (s, l) => s === 'stdout' && lines.push(l) });
  const ok = await until(() => lines.length >= 3 || h.exited(), { timeoutMs: 10000, intervalMs: 20 });
  if (!ok || h.exited()) throw new Error(`wagate mock did not start: ${h.stderrTail()}`);
  const get = (k) => lines.find((l) => l.startsWith(`${k} `))?.split(' ')[1];
  const listen = get('listen');
  const control = get('control');
  const controlPort = Number(control.split(':')[1]);
  return {
    ...h,
    rootPubKey: get('root-pubkey'),
    url: `${tls ? 'wss' : 'ws'}://${listen}/ws/chat`,
    controlPort,
    stats: async () => (await request(controlPort, 'GET', '/stats')).body,
    resetStats: async () => (await request(controlPort, 'POST', '/stats/reset')).body,
    /** POST /connections/{jid}/{action}: kill, close, blackhole. */
    async act(jid, action) {
      const r = await request(controlPort, 'POST', `/connections/${encodeURIComponent(jid)}/${action}`, { body: {} });
      if (r.status !== 200) throw new Error(`mock ${action} ${jid}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
  };
}

/** A throwaway certificate for 127.0.0.1 (its own trust anchor). */
export function makeCert(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  if (!fs.existsSync(cert)) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { stdio: 'ignore' });
  }
  return { cert, key };
}

/** Seeds a SQLite database with n logged-in sessions (phones base..base+n-1); returns their ids and jids. */
/*
 * The key the seeded credentials are sealed under, given to wagate serve too: its first start then finds them
 * sealed, as a running deployment has them, instead of sealing them all (a one-time migration) inside the
 * figures.
 */
export const SECRET_KEY = 'b3'.repeat(32);

export function seedDb(file, n, phoneBase) {
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}.key`]) fs.rmSync(f, { force: true });
  execFileSync(SERVE_BIN, ['migrate'], { env: { ...process.env, WAGATE_DATABASE: `sqlite:${file}`, WAGATE_LOG_LEVEL: 'error' } });
  execFileSync('bash', ['-c', `"${SEED}" --count ${n} --phone-base ${phoneBase} | sqlite3 "${file}"`], { env: { ...process.env, WAGATE_SECRET_KEY: SECRET_KEY } });
  return sessionNames(n, phoneBase);
}

export function sessionNames(n, phoneBase) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, jid: `${phoneBase + i}:1@s.whatsapp.net` });
  }
  return out;
}

// A supervisor transition in wagate's log: "<time> info [<session id>] <from> -> <to> (<why>)".
const SUP_STATES = new Set(['idle', 'waiting', 'reading', 'connecting', 'pairing', 'connected', 'stopped']);
const LINE = /^(\S+) \w+ \[([^\]]+)\] (\w+) -> (\w+) \((.*)\)$/;

/**
 * `wagate serve` on the seeded database. Follows its log: starts (→ reading, or → connecting from elsewhere), opens (→ connected), drops
 * (connected → anything but a shutdown). Resolves once its API answers.
 */
export async function startWagate({ db, mock, env = {}, nofile = NOFILE }) {
  const port = await freePort();
  // watch: session id -> every transition of that session, for the sessions a test follows closely.
  const st = { starts: [], opened: new Map(), connected: new Set(), drops: [], watch: new Map(), listeners: new Set() };
  const onLine = (stream, line) => {
    if (stream !== 'stderr') return;
    const m = LINE.exec(line);
    if (!m) return;
    const [, ts, id, from, to, why] = m;
    // The session client shares the tag; its states differ except "connecting", which only the supervisor
    // leaves for "connected" or enters from "waiting"/"idle".
    if (!SUP_STATES.has(to) || !SUP_STATES.has(from)) return;
    if (to === 'connecting' && (from === 'handshake' || from === 'login')) return;
    const t = Date.parse(ts);
    const ev = { t, id, from, to, why };
    if (st.watch.has(id)) st.watch.get(id).push(ev);
    // A start: into `reading` (its credentials read on the reader's thread, then `connecting`), or straight
    // into `connecting` when memory has them.
    if (to === 'reading' || (to === 'connecting' && from !== 'reading')) st.starts.push(ev);
    if (to === 'connected') {
      st.connected.add(id);
      if (!st.opened.has(id)) st.opened.set(id, t);
    }
    if (from === 'connected') {
      st.connected.delete(id);
      if (!/shutdown/.test(why)) st.drops.push(ev);
    }
    for (const l of st.listeners) l(ev);
  };
  const h = start(SERVE_BIN, ['serve'], {
    nofile,
    cpus: PIN.sut,
    onLine,
    env: {
      WAGATE_DATABASE: `sqlite:${db}`,
      WAGATE_LISTEN: `127.0.0.1:${port}`,
      WAGATE_API_KEY: API_KEY,
      WAGATE_SECRET_KEY: SECRET_KEY,
      WAGATE_WA_URL: mock.url,
      WAGATE_WA_ROOT_PUBKEY: mock.rootPubKey,
      WAGATE_LOG_LEVEL: 'info',
      // The stall figures are the loop's turns (GET /health/loop), measured without a timer: the lateness timer
      // stays at its default 100 ms, since each of its runs is a wakeup whose CPU would count in the figures.
      ...env,
    },
  });
  const up = await until(async () => {
    if (h.exited()) return 'exited';
    try {
      await request(port, 'GET', '/auth/session', { timeoutMs: 2000 });
      return 'up';
    } catch {
      return null;
    }
  }, { timeoutMs: 20000, intervalMs: 20 });
  if (up !== 'up') throw new Error(`wagate serve did not start: ${h.stderrTail()}`);
  return {
    ...h,
    port,
    st,
    cpu: () => cpuMs(h.pid),
    api: (method, p, opts = {}) => request(port, method, p, { key: API_KEY, ...opts }),
    /** Resolves with the first log event matching pred, or null after ms. */
    next: (pred, ms) => nextEvent(st.listeners, pred, ms),
  };
}

/**
 * One Node process holding n Baileys sockets (client: baileys6 | baileys7), logging in with bounded
 * concurrency and reconnecting each socket at once when it closes, as a Baileys-based server does.
 */
export async function startBaileys({ client, n, mock, phoneBase, keepaliveMs, deadlineMs, concurrency = 16, env = {}, nofile = NOFILE }) {
  const st = { starts: 0, firstStartT: null, opened: new Map(), open: new Set(), closes: [], ready: null, stats: null, listeners: new Set(), errors: [] };
  const onLine = (stream, line) => {
    if (stream !== 'stdout' || !line.startsWith('{')) return;
    let ev;
    try {
      ev = JSON.parse(line);
    } catch {
      return;
    }
    if (ev.ev === 'start') {
      st.starts++;
      if (st.firstStartT === null) {
        st.firstStartT = ev.t;
        st.cpuAtFirstStart = cpuMs(h.pid);
      }
    } else if (ev.ev === 'open') {
      st.open.add(ev.i);
      if (!st.opened.has(ev.i)) st.opened.set(ev.i, ev.t);
    } else if (ev.ev === 'close') {
      st.open.delete(ev.i);
      st.closes.push(ev);
    } else if (ev.ev === 'ready') {
      st.ready = ev;
    } else if (ev.ev === 'stats') {
      st.stats = ev;
    } else if (ev.ev === 'error') {
      if (st.errors.length < 20) st.errors.push(ev.msg);
    }
    for (const l of st.listeners) l(ev);
  };
  const args = ['--max-old-space-size=20000', path.join(ROOT, 'bench', 'baileys-host.mjs'), '--client', client,
    '--url', mock.url, '--root-pubkey', mock.rootPubKey, '--count', String(n), '--phone-base', String(phoneBase),
    '--concurrency', String(concurrency)];
  if (keepaliveMs) args.push('--keepalive-ms', String(keepaliveMs));
  if (deadlineMs) args.push('--deadline-ms', String(deadlineMs));
  const h = start(process.execPath, args, { nofile, cpus: PIN.sut, onLine, env });
  return {
    ...h,
    st,
    cpu: () => cpuMs(h.pid),
    next: (pred, ms) => nextEvent(st.listeners, pred, ms),
    async stop() {
      h.send({ cmd: 'stop' });
      const e = await h.wait(10000);
      return e ?? h.stop('SIGKILL');
    },
  };
}
