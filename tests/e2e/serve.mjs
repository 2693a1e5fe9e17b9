import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { before, after } from 'node:test';
// Starts `wagate serve` for the end-to-end tests, on loopback with short timings, and
// talks to its HTTP API. The database is read with the sqlite3 command-line tool.
import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';
import { track } from '../interop/lib/children.mjs';
import { freePort, startMock, waitFor } from '../interop/lib/mock.mjs';

export const API_KEY = 'e2e-test-api-key-0123456789';

/** One HTTP request; resolves {status, body (parsed JSON when possible), headers, text}. */
export function request(port, method, path, { body, key = API_KEY, headers = {}, raw, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined;
    const h = { ...headers };
    if (key) h['x-api-key'] = key;
    if (data !== undefined) {
      h['content-type'] = 'application/json';
      h['content-length'] = Buffer.byteLength(data);
    }
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: h, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode, body: parsed, headers: res.headers, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** Starts wagate serve (on sqlite:dbFile, or the database URL given); resolves once /health answers. */
export async function startServe({ dbFile, database, mock, env = {}, apiKey = API_KEY, wrap = null, bin = WAGATE_BIN, port: givenPort } = {}) {
  // port: a restart on the same address (a browser page keeps its origin and its cookie).
  const port = givenPort ?? (await freePort());
  const fullEnv = {
    ...process.env,
    WAGATE_DATABASE: database ?? `sqlite:${dbFile}`,
    WAGATE_LISTEN: `127.0.0.1:${port}`,
    WAGATE_WA_URL: mock.url,
    WAGATE_WA_ROOT_PUBKEY: mock.rootPubKey,
    WAGATE_START_STAGGER: '100ms',
    WAGATE_START_RETRIES: '200ms,400ms',
    WAGATE_RECONNECT_BACKOFF: '100ms,1s',
    WAGATE_RECOVERY_INTERVAL: '300ms',
    WAGATE_KEEPALIVE_INTERVAL: '300ms',
    WAGATE_KEEPALIVE_TIMEOUT: '300ms',
    ...env,
  };
  if (apiKey) fullEnv.WAGATE_API_KEY = apiKey;
  else delete fullEnv.WAGATE_API_KEY;
  // dbFile and database both null: the default database (the state directory's).
  if (dbFile === null && database == null) delete fullEnv.WAGATE_DATABASE;
  // wrap: a command that runs serve in its own process (e.g. prlimit, which execs it: same pid).
  const child = wrap
    ? spawn(wrap[0], [...wrap.slice(1), bin, 'serve'], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(bin, ['serve'], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let stdout = '';
  let stderr = '';
  let exited = null;
  const exitWaiters = [];
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-200000)));
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    for (const w of exitWaiters.splice(0)) w(exited);
  });
  const s = {
    port,
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    api: (method, path, opts) => request(port, method, path, opts),
    exit(ms = 15000) {
      if (exited) return Promise.resolve(exited);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`wagate serve did not exit within ${ms} ms`)), ms);
        exitWaiters.push((e) => {
          clearTimeout(t);
          resolve(e);
        });
      });
    },
    async stop(sig = 'SIGTERM') {
      if (!exited) child.kill(sig);
      return s.exit();
    },
  };
  await waitFor('wagate serve to answer /health', async () => {
    if (exited) throw new Error(`wagate serve exited ${JSON.stringify(exited)}: ${stderr.slice(-3000)}`);
    try {
      const r = await request(port, 'GET', '/health', { key: null, timeoutMs: 1000 });
      return r.status === 200 || r.status === 503;
    } catch {
      return false;
    }
  }, { timeoutMs: 15000 });
  return s;
}

/** Runs SQL against the database with the sqlite3 tool; returns rows as arrays of strings. */
export function sql(dbFile, query) {
  const out = execFileSync('sqlite3', ['-separator', '\t', dbFile, query], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.length).map((l) => l.split('\t'));
}

/** Waits until GET /sessions/{id} satisfies pred; returns that session object. */
export function waitSession(s, id, what, pred, timeoutMs = 15000) {
  return waitFor(what, async () => {
    const r = await s.api('GET', `/sessions/${id}`);
    return r.status === 200 && pred(r.body) ? r.body : null;
  }, { timeoutMs });
}

/**
 * Opens a sealed auth_state ("wgs1:<kid>:<base64 of IV | ciphertext | tag>", AES-256-GCM, associated data
 * "wgs1:<kid>:<id>") with the key as hex, as docs/store.md describes it: the tests read credentials this way,
 * independently of wagate's own code.
 */
export function openSealed(keyHex, id, text) {
  const m = /^wgs1:([0-9a-f]{8}):(.*)$/.exec(text);
  if (!m) throw new Error('not a sealed value');
  const blob = Buffer.from(m[2], 'base64');
  const d = crypto.createDecipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), blob.subarray(0, 12));
  d.setAAD(Buffer.from(`wgs1:${m[1]}:${id}`));
  d.setAuthTag(blob.subarray(blob.length - 16));
  return Buffer.concat([d.update(blob.subarray(12, blob.length - 16)), d.final()]).toString('utf8');
}

/**
 * A database with n logged-in sessions: `wagate migrate`, then the benchmark's seed tool (the mock run with
 * --accept-any-login logs them in; their credentials are plain, as an older wagate wrote them). Returns each
 * session's id and the JID it logs in as.
 */
export function seedSessions(dbFile, n, phoneBase) {
  const seed = path.join(path.dirname(WAGATE_BIN), 'bench', 'wagate-bench-seed');
  execFileSync(WAGATE_BIN, ['migrate'], { env: { ...process.env, WAGATE_DATABASE: `sqlite:${dbFile}`, WAGATE_LOG_LEVEL: 'error' } });
  execFileSync('bash', ['-c', `"${seed}" --count ${n} --phone-base ${phoneBase} | sqlite3 "${dbFile}"`]);
  return Array.from({ length: n }, (_, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    jid: `${phoneBase + i}:1@s.whatsapp.net`,
  }));
}

/**
 * For a test file: a scratch directory (returned) and a mock that lets any saved device in, started before
 * the tests (handed to onMock) and stopped after them with the directory removed.
 */
export function scratchWithMock(name, onMock) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `wagate-${name}-`));
  let mock;
  before(async () => {
    mock = await startMock({ acceptAnyLogin: true, extraArgs: ['--prekeys-known', '30'] });
    onMock(mock);
  });
  after(async () => {
    await mock?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
