// The database as a converging mirror, end to end: wagate serve against the mock with a real SQLite file,
// and the file made unwritable in the ways it happens — another process holding the write lock, the file
// deleted, the disk full, the file system read-only. Each time: /health says error while it lasts, the
// sessions stay connected, and once the cause goes away the rows catch up with no restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMock, waitFor, sleep } from '../interop/lib/mock.mjs';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';
import { startServe, sql, waitSession } from './serve.mjs';

const SEED = path.join(path.dirname(WAGATE_BIN), 'bench', 'wagate-bench-seed');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-db-'));
let mock;
let phoneBase = 4479000000;

before(async () => {
  mock = await startMock({ acceptAnyLogin: true, extraArgs: ['--prekeys-known', '30'] });
});

after(async () => {
  await mock?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A database file with n logged-in sessions (the mock logs any device in); returns their ids and jids. */
function seed(dbFile, n) {
  fs.mkdirSync(path.dirname(dbFile), { recursive: true });
  execFileSync(WAGATE_BIN, ['migrate'], { env: { ...process.env, WAGATE_DATABASE: `sqlite:${dbFile}`, WAGATE_LOG_LEVEL: 'error' } });
  execFileSync('bash', ['-c', `"${SEED}" --count ${n} --phone-base ${phoneBase} | sqlite3 "${dbFile}"`]);
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, jid: `${phoneBase + i}:1@s.whatsapp.net` });
  }
  phoneBase += 1000;
  return out;
}

const health = async (s) => (await s.api('GET', '/health', { key: null })).body;
const deep = async (s) => (await s.api('GET', '/health/deep')).body;
const rowStatus = (dbFile, id) => sql(dbFile, `SELECT connection_status FROM whatsapp_sessions WHERE id='${id}'`)[0]?.[0];

async function killConnection(jid) {
  const r = await mock.post(`/connections/${encodeURIComponent(jid)}/kill`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

async function serveOn(dbFile, sessions) {
  const s = await startServe({ dbFile, mock, env: { WAGATE_START_STAGGER: '10ms', WAGATE_RECOVERY_INTERVAL: '60s' } });
  for (const x of sessions) await waitSession(s, x.id, 'connected at start', (b) => b.connectionStatus === 'connected');
  await waitFor('/health ok', async () => (await health(s)).status === 'ok', { timeoutMs: 10000 });
  return s;
}

test('another process holds the write lock for 7 s during a reconnect: the row catches up after it', async () => {
  const dbFile = path.join(dir, 'lock', 'wagate.db');
  const [a] = seed(dbFile, 1);
  const s = await serveOn(dbFile, [a]);
  try {
    // The web app (here the sqlite3 tool) takes the write lock and keeps it for 7 s.
    const holder = spawn('sqlite3', [dbFile], { stdio: ['pipe', 'ignore', 'pipe'] });
    // It waits for wagate's own short writes rather than failing at once.
    holder.stdin.write('.timeout 5000\nBEGIN IMMEDIATE;\nUPDATE wagate_settings SET value = value;\n.shell sleep 7\nCOMMIT;\n');
    holder.stdin.end();
    // The lock is held once another writer is refused.
    await waitFor('the lock to be taken', () => {
      try {
        execFileSync('sqlite3', [dbFile, 'BEGIN IMMEDIATE; ROLLBACK;'], { stdio: 'pipe' });
        return false;
      } catch {
        return true;
      }
    }, { timeoutMs: 5000, intervalMs: 20 });
    const lockedAt = Date.now();
    await killConnection(a.jid);
    // Reconnected in memory at once, while the row cannot be written: /health says so, with the reason.
    await waitSession(s, a.id, 'connected again', (b) => b.connectionStatus === 'connected' && b.supervisorState === 'connected');
    // Connected again (in memory) while the row cannot be written: error, and the session counted connected.
    const h = await waitFor('/health error while locked, with the session connected again', async () => {
      const x = await health(s);
      return x.status === 'error' && x.sessions.connected === 1 ? x : null;
    }, { timeoutMs: 5000, intervalMs: 20 });
    assert.equal(h.sessions.total, 1);
    const d = await deep(s);
    assert.equal(d.database.connected, false);
    assert.match(d.database.error, /locked/);
    assert.ok(d.database.pendingWrites >= 1);
    await new Promise((resolve) => holder.on('exit', resolve));
    const releasedAt = Date.now();
    assert.ok(releasedAt - lockedAt > 5000, 'the lock was held');
    // Within a few seconds of the release: the row says connected and /health is ok.
    await waitFor('the row to catch up', async () => rowStatus(dbFile, a.id) === 'connected' && (await health(s)).status === 'ok', { timeoutMs: 15000, intervalMs: 50 });
    assert.ok(Date.now() - releasedAt < 12000);
    const hist = sql(dbFile, `SELECT status FROM whatsapp_session_status_history WHERE session_id='${a.id}' ORDER BY id`).map((r) => r[0]);
    assert.deepEqual(hist.slice(-3), ['disconnected', 'connecting', 'connected'], 'the history has the reconnect, once');
  } finally {
    await s.stop();
  }
});

test('the database file is deleted: error, then recreated from the open copy with nothing lost', async () => {
  const dbFile = path.join(dir, 'deleted', 'wagate.db');
  const [a, b] = seed(dbFile, 2);
  const s = await serveOn(dbFile, [a, b]);
  try {
    fs.unlinkSync(dbFile);
    await killConnection(a.jid); // a change to write
    await waitFor('the file to be back', async () => fs.existsSync(dbFile) && (await health(s)).status === 'ok', { timeoutMs: 15000, intervalMs: 20 });
    assert.match(s.stderr(), /the database file .* was deleted/);
    await waitSession(s, a.id, 'connected again', (x) => x.connectionStatus === 'connected');
    await waitFor('the row to catch up', async () => rowStatus(dbFile, a.id) === 'connected', { timeoutMs: 10000, intervalMs: 50 });
    // Everything is in the new file, credentials included: both sessions log in again after a restart.
    assert.equal(Number(sql(dbFile, 'SELECT count(*) FROM whatsapp_sessions WHERE auth_state IS NOT NULL')[0][0]), 2);
    assert.equal(fs.statSync(dbFile).mode & 0o077, 0);
  } finally {
    const e = await s.stop();
    assert.equal(e.code, 0);
  }
  const s2 = await serveOn(dbFile, [a, b]);
  await s2.stop();
});

/** A small tmpfs for the disk-full and read-only cases; null when this machine does not allow mounting. */
function tmpfs(size) {
  const mnt = fs.mkdtempSync(path.join(dir, 'mnt-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', mnt], { stdio: 'pipe' });
  } catch (e) {
    return { skip: `cannot mount a tmpfs here (${String(e.stderr || e.message).trim()}); the injected-error unit test covers the case` };
  }
  return { mnt, umount: () => execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }) };
}

test('the disk is full: error with the reason, then the rows catch up once there is room', async (t) => {
  const fsx = tmpfs('4m');
  if (fsx.skip) return t.skip(fsx.skip);
  const dbFile = path.join(fsx.mnt, 'wagate.db');
  const s0 = seed(dbFile, 1);
  const [a] = s0;
  const s = await serveOn(dbFile, [a]);
  const filler = path.join(fsx.mnt, 'filler');
  try {
    // Fill every block that is left.
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // dd stops with "No space left on device": that is the point
    }
    await killConnection(a.jid);
    await waitSession(s, a.id, 'connected again', (x) => x.connectionStatus === 'connected');
    const d = await waitFor('/health/deep to report the full disk', async () => {
      const x = await deep(s);
      return x.status === 'error' ? x : null;
    }, { timeoutMs: 15000 });
    assert.match(d.database.error, /full|disk I\/O/i);
    fs.unlinkSync(filler);
    await waitFor('the row to catch up', async () => rowStatus(dbFile, a.id) === 'connected' && (await health(s)).status === 'ok', { timeoutMs: 20000, intervalMs: 100 });
  } finally {
    await s.stop();
    fsx.umount();
  }
});

/** Makes files immutable (writes through open descriptors fail, even for root); null when unsupported. */
function immutable(files, on) {
  try {
    execFileSync('chattr', [on ? '+i' : '-i', ...files.filter((f) => fs.existsSync(f))], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return `chattr is not supported here (${String(e.stderr || e.message).trim()}); the injected-error unit test covers the case`;
  }
}

test('the database file turns read-only: error, then the rows catch up once it is writable', async (t) => {
  const dbFile = path.join(dir, 'readonly', 'wagate.db');
  const [a] = seed(dbFile, 1);
  const s = await serveOn(dbFile, [a]);
  const files = [dbFile, `${dbFile}-wal`];
  try {
    const skip = immutable(files, true);
    if (skip) return t.skip(skip);
    await killConnection(a.jid);
    await waitSession(s, a.id, 'connected again', (x) => x.connectionStatus === 'connected');
    const d = await waitFor('/health/deep to report the read-only file', async () => {
      const x = await deep(s);
      return x.status === 'error' ? x : null;
    }, { timeoutMs: 15000 });
    assert.match(d.database.error, /readonly|read-only|I\/O|not permitted/i);
    immutable(files, false);
    await waitFor('the row to catch up', async () => rowStatus(dbFile, a.id) === 'connected' && (await health(s)).status === 'ok', { timeoutMs: 20000, intervalMs: 100 });
  } finally {
    immutable(files, false);
    await s.stop();
  }
});
