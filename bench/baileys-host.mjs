#!/usr/bin/env node
// One Node process holding N Baileys sockets logged in to `wagate mock`, as a Baileys-based gateway server does,
// so that a benchmark can measure its memory and CPU from /proc and time its logins, detection of dead sockets and
// reconnects, side by side with wagate.
//
//   node bench/baileys-host.mjs --client baileys6|baileys7 --url ws://HOST:PORT/ws/chat --root-pubkey HEX64
//        --count N --phone-base DIGITS [--concurrency K] [--keepalive-ms MS] [--connect-timeout-ms MS]
//        [--deadline-ms MS]
//
// Session i logs in as `${phoneBase + i}:1@s.whatsapp.net` with fresh in-memory credentials (the mock must run
// with --accept-any-login). At most K sessions are logging in for the first time at once (a session holds its slot
// from its first socket until it opens, or until it is counted failed). A first attempt that closes before 'open'
// is retried at once, up to 3 times, then the session is counted failed. Once a session has opened, every close
// except 401 (loggedOut) creates a new socket with the same auth state at once, as Baileys' README does.
// --keepalive-ms and --connect-timeout-ms are passed to makeWASocket only when given (Baileys' defaults: 30000
// and 20000). --deadline-ms: no session is started after that long; 'ready' is printed then if not before.
//
// stdout, one JSON object per line, `t` = Date.now():
//   {"ev":"start","i":I,"t":T}                      a socket for session I was created (+ "reconnect":true after
//                                                   the first; + "retry":true when the session never opened yet)
//   {"ev":"open","i":I,"t":T,"ms":M}                it reached 'open', M ms after its creation
//   {"ev":"close","i":I,"t":T,"code":C,"msg":S}     it closed; C = Baileys' status code or null
//   {"ev":"ready","n":OPENED,"of":N,"ms":MS,"failed":F,"started":S}   every session opened once or failed, or the
//                                                   deadline passed (MS since the first socket was started)
//   {"ev":"stats","open":K,"heapUsed":B,"rss":B,"t":T,"reconnects":R} on {"cmd":"stats"}
//   {"ev":"gc","t":T}                               on {"cmd":"gc"} (only with node --expose-gc)
//   {"ev":"stopped"}                                after {"cmd":"stop"}, stdin's end, SIGTERM or SIGINT
//   {"ev":"error","msg":S}                          an unexpected exception (never fatal) or a bad command
// stdin, one JSON object per line: {"cmd":"stats"} | {"cmd":"gc"} | {"cmd":"stop"}. Stop ends every socket
// (sock.end), waits at most 3 s for their close events, prints "stopped" and exits 0 (forced: Baileys leaves
// timers behind). Bad arguments: a message on stderr, exit 2.
//
// Per-session state is a handful of fields; no update events are kept. Note that lib/clients.mjs loads both
// Baileys versions whichever is used: measure a --count 0 run for the baseline.
import readline from 'node:readline';
import { clients, memoryAuthState, silentLogger } from '../tests/interop/lib/clients.mjs';
import { trustMockRoot, verifyCalls } from '../tests/interop/lib/b7trust.mjs';

const LOGGED_OUT = 401; // DisconnectReason.loggedOut in both versions
const FIRST_ATTEMPT_RETRIES = 3;
const STOP_WAIT_MS = 3000;

function usage(msg) {
  process.stderr.write(`baileys-host: ${msg}\n` +
    'usage: baileys-host.mjs --client baileys6|baileys7 --url ws://HOST:PORT/ws/chat --root-pubkey HEX64 ' +
    '--count N --phone-base DIGITS [--concurrency K] [--keepalive-ms MS] [--connect-timeout-ms MS] ' +
    '[--deadline-ms MS]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const known = new Set(['client', 'url', 'root-pubkey', 'count', 'phone-base', 'concurrency', 'keepalive-ms',
    'connect-timeout-ms', 'deadline-ms']);
  const o = {};
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    let name;
    let value;
    if (a.startsWith('--') && a.includes('=')) {
      name = a.slice(2, a.indexOf('='));
      value = a.slice(a.indexOf('=') + 1);
    } else if (a.startsWith('--')) {
      name = a.slice(2);
      if (k + 1 >= argv.length) usage(`${a} needs a value`);
      value = argv[++k];
    } else {
      usage(`unexpected argument ${a}`);
    }
    if (!known.has(name)) usage(`unknown option --${name}`);
    o[name] = value;
  }
  const int = (name, min, dflt) => {
    if (o[name] === undefined) return dflt;
    if (!/^[0-9]+$/.test(o[name]) || Number(o[name]) < min) usage(`--${name} must be an integer >= ${min}`);
    return Number(o[name]);
  };
  if (!clients[o.client]) usage('--client must be baileys6 or baileys7');
  if (!o.url || !/^wss?:\/\//.test(o.url)) usage('--url must be ws://HOST:PORT/ws/chat');
  if (o['root-pubkey'] !== undefined && !/^[0-9a-fA-F]{64}$/.test(o['root-pubkey'])) usage('--root-pubkey must be 64 hex digits');
  if (o.client === 'baileys7' && !o['root-pubkey']) usage('--root-pubkey is required with baileys7');
  if (!o['phone-base'] || !/^[1-9][0-9]{4,19}$/.test(o['phone-base'])) usage('--phone-base must be 5-20 digits, not starting with 0');
  if (o.count === undefined) usage('--count is required');
  return {
    client: clients[o.client],
    url: o.url,
    rootPubKey: o['root-pubkey'],
    count: int('count', 0),
    phoneBase: BigInt(o['phone-base']),
    concurrency: int('concurrency', 1, 16),
    keepAliveMs: int('keepalive-ms', 1, undefined),
    connectTimeoutMs: int('connect-timeout-ms', 1, undefined),
    deadlineMs: int('deadline-ms', 1, undefined),
  };
}

const opts = parseArgs(process.argv.slice(2));

function out(obj) {
  try {
    process.stdout.write(`${JSON.stringify(obj)}\n`);
  } catch {
    // stdout gone: nothing to report to
  }
}
process.stdout.on('error', () => {}); // EPIPE when the reader went away; stdin's end stops us

function short(s, n = 120) {
  s = String(s ?? '');
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

process.on('unhandledRejection', (e) => out({ ev: 'error', msg: short(`unhandledRejection: ${e?.stack ?? e}`, 400) }));
process.on('uncaughtException', (e) => out({ ev: 'error', msg: short(`uncaughtException: ${e?.stack ?? e}`, 400) }));

if (opts.client.name === 'baileys7') trustMockRoot(opts.rootPubKey);

const logger = silentLogger(); // one logger for every socket, as one server process has
const socketConfig = {
  waWebSocketUrl: opts.url,
  printQRInTerminal: false,
  logger,
  markOnlineOnConnect: false,
  syncFullHistory: false,
  fireInitQueries: false,
  shouldSyncHistoryMessage: () => false,
};
if (opts.keepAliveMs !== undefined) socketConfig.keepAliveIntervalMs = opts.keepAliveMs;
if (opts.connectTimeoutMs !== undefined) socketConfig.connectTimeoutMs = opts.connectTimeoutMs;

const sessions = new Array(opts.count); // {auth, sock, createdAt, isOpen, everOpened, tries, settled}
let nextToStart = 0;
let inFlight = 0;
let opened = 0; // sessions that opened at least once
let failed = 0;
let openNow = 0;
let reconnects = 0;
let startedAt = 0;
let deadlinePassed = false;
let readyPrinted = false;
let stopping = false;

function printReady() {
  if (readyPrinted) return;
  readyPrinted = true;
  out({ ev: 'ready', n: opened, of: opts.count, ms: Date.now() - (startedAt || Date.now()), failed, started: nextToStart });
}

/** The session's first login ended (opened or failed): free its slot, start the next ones. */
function settle(s) {
  if (s.settled) return;
  s.settled = true;
  inFlight--;
  if (opened + failed === opts.count) printReady();
  pump();
}

function pump() {
  while (!stopping && !deadlinePassed && inFlight < opts.concurrency && nextToStart < opts.count) {
    const i = nextToStart++;
    const jid = `${opts.phoneBase + BigInt(i)}:1@s.whatsapp.net`;
    const s = { auth: memoryAuthState(opts.client, { id: jid }), sock: null, createdAt: 0, isOpen: false,
      everOpened: false, tries: 0, settled: false };
    sessions[i] = s;
    inFlight++;
    startSocket(i, s, false);
  }
}

function startSocket(i, s, reconnect) {
  s.createdAt = Date.now();
  s.isOpen = false;
  const ev = { ev: 'start', i, t: s.createdAt };
  if (reconnect) {
    ev.reconnect = true;
    if (!s.everOpened) ev.retry = true;
  }
  out(ev);
  let sock;
  try {
    sock = opts.client.makeWASocket({ ...socketConfig, auth: { creds: s.auth.creds, keys: s.auth.keys } });
  } catch (e) {
    out({ ev: 'error', msg: short(`makeWASocket for session ${i}: ${e?.message ?? e}`) });
    s.sock = null;
    setImmediate(() => onClose(i, s, null, { lastDisconnect: { error: e } })); // no synchronous retry loop
    return;
  }
  s.sock = sock;
  sock.ev.on('connection.update', (u) => {
    if (s.sock !== sock) return;
    if (u.connection === 'open') onOpen(i, s);
    else if (u.connection === 'close') onClose(i, s, sock, u);
  });
  // Baileys assigns creds updates itself (its own creds.update listener); keys go through auth.keys.set().
}

function onOpen(i, s) {
  if (s.isOpen) return;
  const now = Date.now();
  s.isOpen = true;
  openNow++;
  verifyCalls.length = 0; // b7trust records every certificate check; keep that from growing
  out({ ev: 'open', i, t: now, ms: now - s.createdAt });
  if (!s.everOpened) {
    s.everOpened = true;
    opened++;
    settle(s);
  }
}

function onClose(i, s, sock, u) {
  if (sock && s.sock !== sock) return;
  s.sock = null;
  if (s.isOpen) {
    s.isOpen = false;
    openNow--;
  }
  const err = u?.lastDisconnect?.error;
  const code = err?.output?.statusCode ?? null;
  out({ ev: 'close', i, t: Date.now(), code, msg: short(err ? err.message : 'closed without error', 80) });
  if (stopping) return;
  if (code === LOGGED_OUT) {
    if (!s.everOpened) {
      failed++;
      settle(s);
    }
    return;
  }
  if (!s.everOpened) {
    if (deadlinePassed || ++s.tries > FIRST_ATTEMPT_RETRIES) {
      failed++;
      settle(s);
      return;
    }
  } else {
    reconnects++;
  }
  startSocket(i, s, true);
}

function stats() {
  const m = process.memoryUsage();
  out({ ev: 'stats', open: openNow, heapUsed: m.heapUsed, rss: m.rss, t: Date.now(), reconnects });
}

async function stop() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => {
    out({ ev: 'stopped' });
    process.exit(0);
  }, STOP_WAIT_MS + 1500).unref();
  const waits = [];
  for (let i = 0; i < sessions.length; i++) {
    const s = sessions[i];
    const sock = s?.sock;
    if (!sock) continue;
    waits.push(new Promise((resolve) => {
      sock.ev.on('connection.update', (u) => {
        if (u.connection === 'close') resolve();
      });
    }));
    try {
      const r = sock.end(undefined); // a Promise in baileys7
      if (r && typeof r.catch === 'function') r.catch(() => {});
    } catch {
      // already closed
    }
  }
  let timer;
  await Promise.race([Promise.all(waits), new Promise((r) => { timer = setTimeout(r, STOP_WAIT_MS); })]);
  clearTimeout(timer);
  out({ ev: 'stopped' });
  process.exit(0);
}

function command(line) {
  line = line.trim();
  if (!line) return;
  let c;
  try {
    c = JSON.parse(line);
  } catch {
    out({ ev: 'error', msg: short(`not JSON: ${line}`) });
    return;
  }
  switch (c?.cmd) {
    case 'stats':
      stats();
      break;
    case 'gc':
      if (typeof globalThis.gc === 'function') {
        globalThis.gc();
        out({ ev: 'gc', t: Date.now() });
      } else {
        out({ ev: 'error', msg: 'gc needs node --expose-gc' });
      }
      break;
    case 'stop':
      void stop();
      break;
    default:
      out({ ev: 'error', msg: short(`unknown command: ${line}`) });
  }
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', command);
rl.on('close', () => void stop());
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

startedAt = Date.now();
if (opts.deadlineMs !== undefined) {
  setTimeout(() => {
    deadlinePassed = true;
    printReady();
  }, opts.deadlineMs);
}
if (opts.count === 0) printReady();
pump();
