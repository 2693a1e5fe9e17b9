// wagate serve end to end, against wagate mock on loopback with short timings: pairing through the API
// and the mock's /scan, restart and auto-connect, faults and recovery, the recovery limit and the manual
// reconnect, truthful shutdown, reconciliation after kill -9, and the API's authentication and bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { startMock, waitFor, sleep } from '../interop/lib/mock.mjs';
import { startServe, sql, waitSession, API_KEY, request, openSealed } from './serve.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-serve-'));
const dbFile = path.join(dir, 'db', 'wagate.db'); // the directory is created by wagate
let mock;
let serve;
let phoneSeq = 0;

before(async () => {
  mock = await startMock({ stateFile: path.join(dir, 'mock-state.json') });
});

after(async () => {
  await serve?.stop().catch(() => {});
  await mock?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function restart(env = {}) {
  if (serve) {
    const e = await serve.stop();
    assert.equal(e.code, 0, `serve exited ${JSON.stringify(e)}`);
  }
  serve = await startServe({ dbFile, mock, env });
  return serve;
}

/** Creates a session through the API and pairs it with the mock's phone; returns {id, jid, phone}. */
async function pairNew() {
  const phone = `1555000${String(++phoneSeq).padStart(4, '0')}`;
  // Each its own user's primary: names are unique per user.
  const created = await serve.api('POST', '/sessions', { body: { sessionName: 'primary', userId: `user-${phoneSeq}` } });
  assert.equal(created.status, 201, created.text);
  const id = created.body.sessionId;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal(created.body.authState, undefined);
  const qr = await waitFor('a QR code', async () => {
    const r = await serve.api('GET', `/sessions/${id}/qr`);
    return r.status === 200 ? r.body : null;
  });
  assert.match(qr.qr, /^https:\/\/wa\.me\/settings\/linked_devices#/);
  assert.ok(Date.parse(qr.expiresAt) > Date.now());
  const scan = await mock.post('/scan', { qr: qr.qr, phone });
  assert.equal(scan.status, 200, JSON.stringify(scan.body));
  const jid = scan.body.jid;
  const sess = await waitSession(serve, id, 'the paired session to connect', (b) => b.connectionStatus === 'connected');
  assert.equal(sess.phoneNumber, phone);
  return { id, jid, phone };
}

/** The mock's live logged-in connection of a device, or null. */
async function mockConn(jid) {
  const all = await mock.connections();
  return all.find((c) => c.jid === jid && c.state === 'login' && c.loggedIn !== false) || null;
}

test('pairing through the API and the mock\'s /scan; /health counts it', async () => {
  await restart();
  const { id, jid } = await pairNew();
  assert.ok(await waitFor('the mock login', () => mockConn(jid)));
  const h = await serve.api('GET', '/health', { key: null });
  assert.equal(h.status, 200);
  assert.deepEqual(Object.keys(h.body).sort(), ['sessions', 'status', 'timestamp', 'uptime']);
  assert.deepEqual(Object.keys(h.body.sessions).sort(), ['connected', 'connecting', 'disconnected', 'total']);
  assert.equal(h.body.status, 'ok');
  assert.deepEqual(h.body.sessions, { total: 1, connected: 1, connecting: 0, disconnected: 0 });
  assert.ok(Number.isInteger(h.body.uptime));
  assert.ok(!JSON.stringify(h.body).includes(id), 'no ids in /health');
  // The row follows memory within the write-behind delay.
  const rows = await waitFor('the row to say connected', () => {
    const r = sql(dbFile, `SELECT connection_status, phone_number, auth_state IS NOT NULL FROM whatsapp_sessions WHERE id='${id}'`);
    return r[0]?.[0] === 'connected' ? r : null;
  });
  assert.equal(rows[0][0], 'connected');
  assert.equal(rows[0][2], '1');
});

test('SIGTERM leaves the database truthful; a restart auto-connects', async () => {
  const id = (await serve.api('GET', '/sessions')).body[0].sessionId;
  const t0 = Date.now();
  const e = await serve.stop('SIGTERM');
  assert.equal(e.code, 0);
  assert.ok(Date.now() - t0 < 10000, 'exits within 10 s');
  assert.deepEqual(sql(dbFile, `SELECT connection_status FROM whatsapp_sessions WHERE id='${id}'`), [['disconnected']]);
  serve = null;
  await restart();
  await waitSession(serve, id, 'auto-connect after restart', (b) => b.connectionStatus === 'connected');
  assert.match(serve.stderr(), /start: 1 session\(s\) to connect/);
  assert.match(serve.stderr(), /start: 1 connected, 0 failed/);
});

test('kill -9 leaves "connected" behind; the next start reconciles it', async () => {
  const id = (await serve.api('GET', '/sessions')).body[0].sessionId;
  // The row follows memory within the write-behind delay (docs/supervisor.md).
  await waitFor('the row to say connected', () => sql(dbFile, `SELECT connection_status FROM whatsapp_sessions WHERE id='${id}'`)[0]?.[0] === 'connected');
  serve.child.kill('SIGKILL');
  await serve.exit();
  serve = null;
  assert.deepEqual(sql(dbFile, `SELECT connection_status FROM whatsapp_sessions WHERE id='${id}'`), [['connected']]);
  await restart();
  assert.match(serve.stderr(), /reconciled 1 session\(s\)/);
  await waitSession(serve, id, 'reconnect after reconciling', (b) => b.connectionStatus === 'connected');
});

test('the mock kills the socket: the session reconnects at once', async () => {
  const { id, jid } = await pairNew();
  const before = await waitFor('the mock login', () => mockConn(jid));
  const r = await mock.post(`/connections/${before.id}/kill`);
  assert.equal(r.status, 200);
  const after = await waitFor('a new connection', async () => {
    const c = await mockConn(jid);
    return c && c.id !== before.id ? c : null;
  });
  assert.ok(after);
  const s = await waitSession(serve, id, 'connected again', (b) => b.connectionStatus === 'connected');
  assert.equal(s.lastError, null);
  const deep = await serve.api('GET', '/health/deep');
  const mine = deep.body.sessions.find((x) => x.sessionId === id);
  // Recorded as the close's reconnect; or, when the monitor's pass (300 ms here) looked between the socket's
  // death and the close's report, as the monitor's dead-socket recovery: one attempt either way, and it worked.
  const ok = mine.recentRecoveryAttempts.filter((a) => a.result === 'connected' &&
    (a.trigger === 'close:transient' || a.trigger === 'monitor:dead_socket'));
  assert.equal(ok.length, 1, JSON.stringify(mine.recentRecoveryAttempts));
});

test('a blackholed connection is detected by the keepalive and recovered', async () => {
  const { id, jid } = await pairNew();
  const before = await waitFor('the mock login', () => mockConn(jid));
  assert.equal((await mock.post(`/connections/${before.id}/blackhole`)).status, 200);
  await waitFor('a new connection', async () => {
    const c = await mockConn(jid);
    return c && c.id !== before.id ? c : null;
  });
  await waitSession(serve, id, 'connected again', (b) => b.connectionStatus === 'connected');
  const deep = await serve.api('GET', '/health/deep');
  const mine = deep.body.sessions.find((x) => x.sessionId === id);
  // The keepalive's deadline noticed it: either the client closed on it, or the monitor's pass found the
  // socket past that deadline first (the two race within one monitor interval).
  assert.ok(mine.recentRecoveryAttempts.some((a) => a.trigger === 'close:keepalive_timeout'
    || (a.trigger === 'monitor:dead_socket' && /keepalive/.test(a.detail || ''))),
    JSON.stringify(mine.recentRecoveryAttempts));
});

test('401 from WhatsApp: logged_out, re-authentication needed, no retries', async () => {
  const { id, jid } = await pairNew();
  const c = await waitFor('the mock login', () => mockConn(jid));
  assert.equal((await mock.post(`/connections/${c.id}/stream-error`, { code: '401' })).status, 200);
  const s = await waitSession(serve, id, 'logged out', (b) => b.connectionStatus === 'logged_out');
  assert.match(s.lastError, /re-authentication/);
  await sleep(1500);
  assert.equal(await mockConn(jid), null, 'no new connection after a logout');
  assert.equal((await serve.api('GET', `/sessions/${id}`)).body.connectionStatus, 'logged_out');
  // Pair again: a new device under the same id.
  const p = await serve.api('POST', `/sessions/${id}/pair`);
  assert.equal(p.status, 200, p.text);
  assert.equal(p.body.supervisorState, 'pairing');
  const qr = await waitFor('a QR code', async () => {
    const r = await serve.api('GET', `/sessions/${id}/qr`);
    return r.status === 200 ? r.body : null;
  });
  const scan = await mock.post('/scan', { qr: qr.qr, phone: '15559990001' });
  assert.equal(scan.status, 200, JSON.stringify(scan.body));
  const back = await waitSession(serve, id, 'paired again', (b) => b.connectionStatus === 'connected');
  assert.equal(back.phoneNumber, '15559990001');
  // A connected session is not paired over: its credentials work.
  const refused = await serve.api('POST', `/sessions/${id}/pair`);
  assert.equal(refused.status, 409, refused.text);
  assert.match(refused.body.error, /log it out first/);
  assert.equal((await serve.api('POST', '/sessions/00000000-0000-4000-8000-000000000000/pair')).status, 404);
});

test('credentials wagate cannot read: re-authentication needed, not retried, in the start summary', async () => {
  const { id, jid } = await pairNew();
  await restart();
  const c0 = await waitFor('the mock login', () => mockConn(jid));
  // Another library's credentials in the row (written by the web app while wagate is stopped).
  await serve.stop();
  sql(dbFile, `UPDATE whatsapp_sessions SET auth_state = '{"creds":{"noiseKey":{"private":"x"}},"keys":{}}' WHERE id = '${id}'`);
  serve = await startServe({ dbFile, mock, env: { WAGATE_RECOVERY_INTERVAL: '1s' } });
  const s = await waitSession(serve, id, 'needs re-authentication', (b) => b.connectionStatus === 'logged_out');
  assert.match(s.lastError, /credentials cannot be used.*re-authentication needed/);
  assert.equal(s.paired, true);
  await waitFor('the start summary', async () => /start: \d+ connected, \d+ failed \(retrying\), [1-9]\d* need re-authentication/.test(serve.stderr()));
  // Several monitor passes: no connection, one record.
  await sleep(3500);
  assert.equal((await mock.connections()).filter((x) => x.jid === jid && x.id > c0.id).length, 0);
  const n = sql(dbFile, `SELECT count(*) FROM whatsapp_session_recovery_attempts WHERE session_id = '${id}' AND result = 'needs_reauth'`);
  assert.equal(n[0][0], '1');
  assert.equal((await serve.api('POST', `/sessions/${id}/pair`)).status, 200);
  await restart();
});

test('440 from WhatsApp: stopped, never taken back by itself', async () => {
  const { id, jid } = await pairNew();
  const c = await waitFor('the mock login', () => mockConn(jid));
  assert.equal((await mock.post(`/connections/${c.id}/stream-error`, { code: '440' })).status, 200);
  const s = await waitSession(serve, id, 'stopped', (b) => b.connectionStatus === 'disconnected' && /replaced/.test(b.lastError || ''));
  assert.ok(s);
  await sleep(1500);
  assert.equal(await mockConn(jid), null, 'no new connection after being replaced');
  // Nor after a restart: another client holds it until a person takes it back.
  await restart();
  await sleep(1500);
  assert.equal(await mockConn(jid), null, 'no connection after a restart either');
  const r = await serve.api('POST', `/sessions/${id}/reconnect`);
  assert.equal(r.body.success, true, r.text);
});

test('a sessions table the web app made first (cuid ids, no auto_connect) is adopted and served', async () => {
  const { id } = await pairNew();
  await serve.stop();
  // The app's own migration: text ids from cuid(), no auto_connect or wagate columns, a column of its own.
  const appDb = path.join(dir, 'app.db');
  sql(appDb, `CREATE TABLE whatsapp_sessions (id TEXT PRIMARY KEY NOT NULL, user_id TEXT, session_name TEXT NOT NULL,
    phone_number TEXT, auth_state TEXT, is_active BOOLEAN NOT NULL DEFAULT 1, tier TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`);
  const cuid = 'ckx9apptable00001abcdefgh';
  // The paired device's credentials, copied as the app would hold them: plain (wagate seals them at start).
  const sealed = sql(dbFile, `SELECT auth_state FROM whatsapp_sessions WHERE id = '${id}'`)[0][0];
  const plain = openSealed(fs.readFileSync(`${dbFile}.key`, 'utf8').trim(), id, sealed);
  sql(appDb, `INSERT INTO whatsapp_sessions (id, user_id, session_name, auth_state, tier, created_at, updated_at)
    VALUES ('${cuid}', 'u-app', 'primary', '${plain.replace(/'/g, "''")}', 'gold', '2026-11-01T00:00:00.000Z',
    '2026-11-01T00:00:00.000Z')`);
  const { spawnSync } = await import('node:child_process');
  const { WAGATE_BIN } = await import('../interop/lib/wagate.mjs');
  const plan = spawnSync(WAGATE_BIN, ['migrate', '--dry-run'], { env: { ...process.env, WAGATE_DATABASE: `sqlite:${appDb}` }, encoding: 'utf8' });
  assert.equal(plan.status, 0, plan.stderr);
  assert.match(plan.stdout, /ALTER TABLE whatsapp_sessions ADD COLUMN auto_connect BOOLEAN NOT NULL DEFAULT true;/);
  assert.throws(() => sql(appDb, 'SELECT auto_connect FROM whatsapp_sessions')); // the dry run ran nothing
  const other = await startServe({ dbFile: appDb, mock });
  try {
    const s = await waitSession(other, cuid, 'the adopted session to connect', (b) => b.connectionStatus === 'connected');
    assert.equal(s.sessionId, cuid);
    assert.equal(s.autoConnect, true);
    const r = await other.api('POST', `/sessions/${encodeURIComponent(cuid)}/reconnect`);
    assert.equal(r.body.success, true, r.text);
    const h = await other.api('GET', '/health', { key: null });
    assert.deepEqual(h.body.sessions, { total: 1, connected: 1, connecting: 0, disconnected: 0 });
    assert.equal(sql(appDb, `SELECT tier FROM whatsapp_sessions WHERE id = '${cuid}'`)[0][0], 'gold');
  } finally {
    await other.stop();
    await restart();
  }
});

test('manual reconnect: success, and concurrent requests share one attempt', async () => {
  const { id, jid } = await pairNew();
  const c0 = await waitFor('the mock login', () => mockConn(jid));
  const [a, b] = await Promise.all([
    serve.api('POST', `/sessions/${id}/reconnect`),
    serve.api('POST', `/sessions/${id}/reconnect`),
  ]);
  assert.equal(a.status, 200);
  assert.deepEqual([a.body.success, b.body.success], [true, true], JSON.stringify([a.body, b.body]));
  const conns = (await mock.connections()).filter((x) => x.jid === jid && x.id > c0.id);
  assert.equal(conns.length, 1, `one new connection, not ${conns.length}`);
  const unknown = await serve.api('POST', '/sessions/00000000-0000-4000-8000-000000000000/reconnect');
  assert.equal(unknown.status, 404);
});

test('the recovery limit counts failed recoveries: three fail, then a person must reconnect', async () => {
  // Keepalive off (1 h) so only the monitor's probe notices a blackhole; quiet for 1 s = stale.
  await restart({ WAGATE_KEEPALIVE_INTERVAL: '1h', WAGATE_STALE_AFTER: '1s', WAGATE_RECOVERY_MAX: '3' });
  const { id, jid } = await pairNew();
  const stale = (result) => Number(sql(dbFile, `SELECT count(*) FROM whatsapp_session_recovery_attempts WHERE session_id='${id}' AND trigger_type = 'monitor:stale' AND result = '${result}'`)[0][0]);
  const deaf = async () => {
    const c = await waitFor('the mock login', () => mockConn(jid));
    assert.equal((await mock.post(`/connections/${c.id}/blackhole`)).status, 200);
    return c;
  };
  const replaced = (c) => waitFor('a new login', async () => {
    const n = await mockConn(jid);
    return n && n.id !== c.id ? n : null;
  }, { timeoutMs: 15000 });
  // Recoveries that work cost nothing: four of them, and the session is still recovered by itself.
  for (let i = 0; i < 4; i++) await replaced(await deaf());
  // Three that fail (the mock refuses the reconnect; the backoff's retry then gets in) count.
  for (let i = 0; i < 3; i++) {
    assert.equal((await mock.post('/refuse', { on: true })).status, 200);
    const c = await deaf();
    await waitFor(`failed recovery ${i + 1}`, () => stale('failed') >= i + 1, { timeoutMs: 15000 });
    assert.equal((await mock.post('/refuse', { on: false })).status, 200);
    await replaced(c);
  }
  // The fourth deaf connection is left to a person.
  await deaf();
  const limited = await waitFor('the limit', async () => {
    const deep = await serve.api('GET', '/health/deep');
    const m = deep.body.sessions.find((x) => x.sessionId === id);
    return m && m.manualInterventionNeeded ? m : null;
  }, { timeoutMs: 15000 });
  assert.match(limited.lastError, /automatic recovery limit reached/);
  assert.equal(stale('failed'), 3);
  const r = await serve.api('POST', `/sessions/${id}/reconnect`);
  assert.equal(r.status, 200);
  assert.equal(r.body.success, true, JSON.stringify(r.body));
  const deep = await serve.api('GET', '/health/deep');
  const m = deep.body.sessions.find((x) => x.sessionId === id);
  assert.equal(m.manualInterventionNeeded, false);
  assert.equal(m.connectionStatus, 'connected');
});

test('authentication and bad input get clear errors', async () => {
  const p = serve.port;
  for (const [m, u] of [['GET', '/health/deep'], ['GET', '/sessions'], ['POST', '/sessions']]) {
    const none = await request(p, m, u, { key: null, body: m === 'POST' ? {} : undefined });
    assert.equal(none.status, 401, `${m} ${u} without a key`);
    assert.ok(none.body.error);
    const wrong = await request(p, m, u, { key: 'wrong-key-wrong-key-wrong', body: m === 'POST' ? {} : undefined });
    assert.equal(wrong.status, 401);
  }
  const cases = [
    ['POST', '/sessions', { raw: '{not json' }, 400],
    ['POST', '/sessions', { body: { sessionName: 5 } }, 400],
    ['POST', '/sessions', { body: { nonsense: true } }, 400],
    ['POST', '/sessions', { raw: JSON.stringify({ sessionName: 'x'.repeat(100000) }) }, 413],
    ['GET', '/sessions/00000000-0000-4000-8000-000000000000', {}, 404],
    ['GET', '/sessions/not-a-uuid', {}, 404],
    ['PATCH', '/sessions/00000000-0000-4000-8000-000000000000', { body: { autoConnect: false } }, 404],
    ['DELETE', '/health', {}, 405],
    ['GET', '/sessions/00000000-0000-4000-8000-000000000000/no/such/path', {}, 404],
    ['GET', '/auth/nothing', {}, 404],
  ];
  for (const [m, u, opts, status] of cases) {
    const r = await request(p, m, u, opts);
    assert.equal(r.status, status, `${m} ${u} -> ${r.status} ${r.text.slice(0, 200)}`);
    assert.equal(typeof r.body?.error, 'string', `${m} ${u}: a JSON error`);
  }
  // Far past the limit (300 KB, 3 MB): refused from its length, in JSON all the same, and the answer
  // reaches a client still writing its body.
  for (const n of [300000, 3000000]) {
    const big = await request(p, 'POST', '/sessions', { raw: 'x'.repeat(n) });
    assert.equal(big.status, 413, `${n} bytes`);
    assert.match(big.body?.error ?? '', /larger than 65536 bytes/);
  }
  const s = (await serve.api('GET', '/sessions')).body[0];
  const badPatch = await serve.api('PATCH', `/sessions/${s.sessionId}`, { body: { autoConnect: 'yes' } });
  assert.equal(badPatch.status, 400);
  assert.match(badPatch.body.error, /autoConnect/);
  // Still alive after all that.
  assert.equal((await request(p, 'GET', '/health', { key: null })).status, 200);
  assert.ok(!serve.stderr().includes(API_KEY), 'the API key never reaches the log');
});

test('PATCH and DELETE; a deactivated session is closed and left alone', async () => {
  const { id, jid } = await pairNew();
  const r = await serve.api('PATCH', `/sessions/${id}`, { body: { isActive: false } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.isActive, false);
  await waitFor('the close', async () => (await mockConn(jid)) === null);
  await sleep(1000);
  assert.equal(await mockConn(jid), null);
  const d = await serve.api('DELETE', `/sessions/${id}`);
  assert.equal(d.status, 204);
  assert.equal((await serve.api('GET', `/sessions/${id}`)).status, 404);
});

test('invalid configuration stops the start with exit status 2', async () => {
  const { spawnSync } = await import('node:child_process');
  const { WAGATE_BIN } = await import('../interop/lib/wagate.mjs');
  for (const [k, v, msg] of [
    ['WAGATE_START_STAGGER', '2', /WAGATE_START_STAGGER/],
    ['WAGATE_START_RETRIES', '5s,,1m', /WAGATE_START_RETRIES/],
    ['WAGATE_RECONNECT_BACKOFF', '5m,1s', /WAGATE_RECONNECT_BACKOFF/],
    ['WAGATE_RECOVERY_MAX', 'many', /WAGATE_RECOVERY_MAX/],
    ['WAGATE_LISTEN', 'nowhere', /WAGATE_LISTEN/],
    ['WAGATE_DATABASE', 'mysql://x', /WAGATE_DATABASE/],
    ['WAGATE_RETENTION', '10m', /WAGATE_RETENTION.*at least 1h/],
    ['WAGATE_RETENTION', '400d', /WAGATE_RETENTION/],
  ]) {
    const r = spawnSync(WAGATE_BIN, ['serve'], { env: { ...process.env, [k]: v }, encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2, `${k}=${v}`);
    assert.match(r.stderr, msg);
  }
  const f = spawnSync(WAGATE_BIN, ['serve', '--stale-after', 'soon'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(f.status, 2);
  assert.match(f.stderr, /--stale-after/);
});

test('without WAGATE_API_KEY a key is generated into a 0600 file whose path is printed, and kept', async () => {
  const { startServe: start2 } = await import('./serve.mjs');
  const db2 = path.join(dir, 'keygen.db');
  let s = await start2({ dbFile: db2, mock, apiKey: null });
  const m = s.stdout().match(/^api-key-file (\S+)$/m);
  assert.ok(m, `printed: ${s.stdout()}`);
  assert.equal(m[1], `${db2}.api-key`);
  assert.equal(fs.statSync(m[1]).mode & 0o777, 0o600);
  const key = fs.readFileSync(m[1], 'utf8').trim();
  assert.match(key, /^wg_[0-9a-f]{48}$/);
  assert.ok(!s.stdout().includes(key), 'the key itself was printed');
  assert.equal((await s.api('GET', '/sessions', { key })).status, 200);
  assert.equal((await s.api('GET', '/sessions', { key: key + 'x' })).status, 401);
  assert.ok(!s.stderr().includes(key), 'not in the log');
  assert.equal((await s.stop()).code, 0);
  s = await start2({ dbFile: db2, mock, apiKey: null });
  assert.ok(!/api-key/.test(s.stdout()), 'said only once');
  assert.equal((await s.api('GET', '/sessions', { key })).status, 200);
  assert.equal((await s.stop()).code, 0);
});

/** Opens GET /events; resolves {status, headers, frames, next(pred, ms), close()} once the headers arrive. */
function openEvents(port, headers) {
  return new Promise((resolve, reject) => {
    const frames = [];
    const waiters = [];
    let buf = '';
    const req = http.get({ host: '127.0.0.1', port, path: '/events', headers }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const f = { id: null, event: null, data: null, at: Date.now() };
          for (const line of buf.slice(0, i).split('\n')) {
            if (line.startsWith('id: ')) f.id = line.slice(4);
            else if (line.startsWith('event: ')) f.event = line.slice(7);
            else if (line.startsWith('data: ')) f.data = JSON.parse(line.slice(6));
          }
          buf = buf.slice(i + 2);
          frames.push(f);
          for (const w of [...waiters]) w();
        }
      });
      let read = 0;
      resolve({
        status: res.statusCode,
        headers: res.headers,
        frames,
        next(pred, ms = 10000) {
          return new Promise((ok, fail) => {
            const check = () => {
              while (read < frames.length) {
                const f = frames[read++];
                if (pred(f)) {
                  clearTimeout(t);
                  waiters.splice(waiters.indexOf(check), 1);
                  ok(f);
                  return;
                }
              }
            };
            const t = setTimeout(() => {
              waiters.splice(waiters.indexOf(check), 1);
              fail(new Error(`no such event within ${ms} ms; got ${JSON.stringify(frames.map((x) => x.event))}`));
            }, ms);
            waiters.push(check);
            check();
          });
        },
        close() {
          req.destroy();
        },
      });
    });
    req.on('error', reject);
  });
}

test('the dashboard: files, sign-in by cookie with CSRF, live events, status history', async () => {
  const web = path.join(dir, 'web');
  fs.mkdirSync(path.join(web, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>wagate</title>');
  fs.writeFileSync(path.join(web, 'assets', 'app-1.js'), 'export {}');
  await restart({ WAGATE_WEB_ROOT: web });
  const p = serve.port;
  const index = await request(p, 'GET', '/', { key: null });
  assert.equal(index.status, 200);
  assert.match(index.headers['content-type'], /^text\/html/);
  assert.equal(index.headers['cache-control'], 'no-cache');
  assert.equal((await request(p, 'GET', '/sessions-page/abc', { key: null })).text, index.text);
  const js = await request(p, 'GET', '/assets/app-1.js', { key: null });
  assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal((await request(p, 'GET', '/%2e%2e/%2e%2e/etc/passwd', { key: null })).status, 404);

  const login = await request(p, 'POST', '/auth/login', { key: null, body: { apiKey: API_KEY } });
  assert.equal(login.status, 204);
  const cookie = login.headers['set-cookie'][0].split(';')[0];
  assert.match(cookie, /^wagate_session=[0-9a-f]{64}$/);
  const byCookie = { key: null, headers: { cookie } };
  assert.equal((await request(p, 'GET', '/sessions', byCookie)).status, 200);
  assert.equal((await request(p, 'POST', '/sessions', { ...byCookie, body: {} })).status, 403);

  const ev = await openEvents(p, { cookie });
  assert.equal(ev.status, 200);
  assert.equal(ev.headers['content-type'], 'text/event-stream');
  const hello = await ev.next((f) => f.event === 'hello');
  assert.equal(hello.data.replay, false);
  await ev.next((f) => f.event === 'health');
  const t0 = Date.now();
  const created = await request(p, 'POST', '/sessions', {
    key: null, body: {}, headers: { cookie, 'x-wagate-csrf': '1', origin: `http://127.0.0.1:${p}` },
  });
  assert.equal(created.status, 201, created.text);
  // A second "primary" for the same user (none) is refused, and says whose the name is.
  const twice = await request(p, 'POST', '/sessions', {
    key: null, body: {}, headers: { cookie, 'x-wagate-csrf': '1', origin: `http://127.0.0.1:${p}` },
  });
  assert.equal(twice.status, 409, twice.text);
  assert.ok(twice.body.error.includes(created.body.sessionId), twice.text);
  const id = created.body.sessionId;
  const pairing = await ev.next((f) => f.event === 'session' && f.data.sessionId === id);
  assert.ok(pairing.at - t0 < 1000, `pushed within ${pairing.at - t0} ms`);
  assert.equal(pairing.data.supervisorState, 'pairing');
  assert.ok(Number(pairing.id) > Number(hello.data.lastId));
  const qr = await ev.next((f) => f.event === 'qr' && f.data.sessionId === id);
  const scan = await mock.post('/scan', { qr: qr.data.qr, phone: `1555000${String(++phoneSeq).padStart(4, '0')}` });
  assert.equal(scan.status, 200);
  const up = await ev.next((f) => f.event === 'session' && f.data.sessionId === id && f.data.connectionStatus === 'connected');
  assert.equal(up.data.socketAlive, true);
  assert.equal(up.data.authState, undefined);
  ev.close();

  const hist = await request(p, 'GET', `/sessions/${id}/history`, byCookie);
  assert.equal(hist.status, 200);
  const statuses = hist.body.map((h) => h.status);
  assert.equal(statuses[0], 'qr_pending');
  assert.equal(statuses.at(-1), 'connected');
  assert.deepEqual(Object.keys(hist.body[0]).sort(), ['at', 'reason', 'status']);

  // Missed events are replayed from Last-Event-ID.
  const again = await openEvents(p, { cookie, 'last-event-id': up.id });
  const h2 = await again.next((f) => f.event === 'hello');
  assert.equal(h2.data.replay, true);
  again.close();
  const out = await request(p, 'POST', '/auth/logout', { key: null, headers: { cookie, 'x-wagate-csrf': '1' } });
  assert.equal(out.status, 204);
  assert.equal((await request(p, 'GET', '/sessions', byCookie)).status, 401);
});
