// wagate serve on PostgreSQL, in the web app's own table: a throwaway cluster (tests/pg/cluster.sh),
// a whatsapp_sessions table made first by the app as a Prisma migration makes it, the app's own
// inserts and switches, and the database restarted under wagate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { startMock, waitFor, sleep } from '../interop/lib/mock.mjs';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';
import { startServe, waitSession } from './serve.mjs';
import { startCluster, seededCreds } from './pg.mjs';

let mock;
let pg;
let serve;

// The app's schema, as `prisma migrate` writes it: cuid text ids, timestamp(3) without a zone,
// an enum for the status, a column of the app's own, no auto_connect and none of wagate's tables.
const APP_SCHEMA = `
CREATE TYPE "SessionStatus" AS ENUM ('connecting', 'qr_pending', 'connected', 'disconnected', 'logged_out');
CREATE TABLE whatsapp_sessions (
  id TEXT PRIMARY KEY NOT NULL,
  user_id TEXT,
  session_name TEXT NOT NULL DEFAULT 'primary',
  phone_number TEXT,
  auth_state TEXT,
  is_active BOOLEAN NOT NULL DEFAULT true,
  connection_status "SessionStatus",
  last_error TEXT,
  tier TEXT,
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP(3) NOT NULL
);`;

/** The app inserts a session with credentials, as its own code would. */
function appInsert(id, user, phone) {
  pg.psql(`INSERT INTO whatsapp_sessions (id, user_id, session_name, phone_number, auth_state, tier, updated_at)
    VALUES (:'id', :'user', 'primary', :'phone', :'auth', 'gold', now());`,
  { id, user, phone, auth: seededCreds(phone) });
}

async function mockConn(jid) {
  const all = await mock.connections();
  return all.find((c) => c.jid === jid && c.state === 'login' && c.loggedIn !== false) || null;
}

before(async () => {
  mock = await startMock({ acceptAnyLogin: true });
  pg = startCluster('pg-e2e');
  pg.psql(APP_SCHEMA);
});

after(async () => {
  await serve?.stop().catch(() => {});
  try {
    pg?.stop();
  } catch {
    // already stopped
  }
  await mock?.stop();
});

test('the app\'s PostgreSQL table (cuid ids, timestamp(3), an enum, no auto_connect) is adopted and served', async () => {
  const cuid = 'ckx9pgapptable0001abcdefg';
  appInsert(cuid, 'u-app-1', '15550007001');
  const plan = spawnSync(WAGATE_BIN, ['migrate', '--dry-run'], { env: { ...process.env, WAGATE_DATABASE: pg.url }, encoding: 'utf8' });
  assert.equal(plan.status, 0, plan.stderr);
  assert.match(plan.stdout, /ALTER TABLE whatsapp_sessions ADD COLUMN auto_connect BOOLEAN NOT NULL DEFAULT true;/);
  assert.match(plan.stdout, /session_id text NOT NULL REFERENCES whatsapp_sessions \(id\)/);
  assert.equal(pg.psql(`SELECT count(*) FROM information_schema.columns WHERE table_name = 'whatsapp_sessions'
    AND column_name = 'auto_connect'`)[0][0], '0', 'the dry run ran nothing');

  serve = await startServe({ database: pg.url, mock });
  const s = await waitSession(serve, cuid, 'the adopted session to connect', (b) => b.connectionStatus === 'connected');
  assert.equal(s.sessionId, cuid);
  assert.equal(s.autoConnect, true);
  assert.ok(await mockConn('15550007001:1@s.whatsapp.net'));
  const r = await serve.api('POST', `/sessions/${encodeURIComponent(cuid)}/reconnect`);
  assert.equal(r.body.success, true, r.text);
  const h = await serve.api('GET', '/health', { key: null });
  assert.equal(h.body.status, 'ok', h.text);
  assert.deepEqual(h.body.sessions, { total: 1, connected: 1, connecting: 0, disconnected: 0 });
  const deep = await serve.api('GET', '/health/deep');
  assert.equal(deep.status, 200, deep.text);
  assert.equal(deep.body.sessions.find((x) => x.sessionId === cuid)?.connectionStatus, 'connected');
  // The mirror converges into the app's own types; the app's column is untouched.
  await waitFor('the row to say connected', () => {
    const [row] = pg.psql(`SELECT connection_status, tier, last_connected_at IS NOT NULL FROM whatsapp_sessions WHERE id = '${cuid}'`);
    return row[0] === 'connected' && row[1] === 'gold' && row[2] === 't';
  });
  assert.ok(Number(pg.psql(`SELECT count(*) FROM whatsapp_session_status_history WHERE session_id = '${cuid}'`)[0][0]) >= 1);
  // A session made through the API lands in the app's table with a new uuid.
  const created = await serve.api('POST', '/sessions', { body: { sessionName: 'primary', userId: 'u-api' } });
  assert.equal(created.status, 201, created.text);
  assert.equal(pg.psql(`SELECT session_name FROM whatsapp_sessions WHERE id = '${created.body.sessionId}'`)[0][0], 'primary');
  assert.equal((await serve.api('DELETE', `/sessions/${created.body.sessionId}`)).status, 204);
});

test('a row the app inserts with credentials connects; is_active switched off closes it', async () => {
  const id = 'ckx9pgappinsert0002abcdef';
  const jid = '15550007002:1@s.whatsapp.net';
  const t0 = Date.now();
  appInsert(id, 'u-app-2', '15550007002');
  await waitSession(serve, id, 'the inserted session to connect', (b) => b.connectionStatus === 'connected');
  const took = Date.now() - t0;
  assert.ok(await mockConn(jid));
  pg.psql(`UPDATE whatsapp_sessions SET is_active = false, updated_at = now() WHERE id = '${id}'`);
  await waitFor('its connection to close', async () => (await mockConn(jid)) === null);
  const s = await waitSession(serve, id, 'the session to show disconnected', (b) => b.connectionStatus === 'disconnected');
  assert.equal(s.isActive, false);
  // Noticed by the watch (WAGATE_WATCH_INTERVAL, 1 s), not at a later pass of the monitor.
  assert.ok(took < 8000, `connected ${took} ms after the insert`);
});

test('a row the app holds locked delays the API\'s change to it, never the server', async () => {
  const cuid = 'ckx9pgapptable0001abcdefg';
  // The app changes the row in a transaction of its own that takes 0.8 s (a row lock, as any UPDATE takes).
  const locker = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', pg.url], {
    stdio: ['pipe', 'ignore', 'inherit'],
    env: { ...process.env, PGAPPNAME: 'app-locker' },
  });
  const exited = new Promise((resolve) => locker.on('exit', resolve));
  locker.stdin.end(`BEGIN; SELECT 1 FROM whatsapp_sessions WHERE id = '${cuid}' FOR UPDATE; SELECT pg_sleep(0.8); COMMIT;`);
  await waitFor('the app to hold the lock', () => pg.psql(
    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'app-locker' AND query LIKE '%pg_sleep%' AND state = 'active'").length > 0);
  const t0 = Date.now();
  let patchMs = null;
  const patch = serve.api('PATCH', `/sessions/${cuid}`, { body: { autoConnect: true } }).then((r) => {
    patchMs = Date.now() - t0;
    return r;
  });
  // The change waits for the lock on the reader's thread; the loop answers meanwhile.
  const h = await serve.api('GET', '/health', { key: null });
  const healthMs = Date.now() - t0;
  assert.equal(h.status, 200);
  assert.equal(patchMs, null, `the change answered before /health (${patchMs} ms)`);
  const p = await patch;
  assert.equal(p.status, 200, JSON.stringify(p.body));
  assert.equal(p.body.autoConnect, true);
  assert.ok(healthMs < patchMs, `/health after ${healthMs} ms, the change after ${patchMs} ms`);
  assert.equal(await exited, 0);
});

test('PostgreSQL restarted under load: sessions stay connected, /health says error meanwhile, nothing is lost', async () => {
  const cuid = 'ckx9pgapptable0001abcdefg';
  const jid = '15550007001:1@s.whatsapp.net';
  const other = 'ckx9pgappother0003abcdefg';
  const otherJid = '15550007003:1@s.whatsapp.net';
  appInsert(other, 'u-app-3', '15550007003');
  // Forty more sessions of the app's, all connected, with messages flowing through the outage.
  const many = [];
  for (let i = 0; i < 40; i++) {
    const id = `ckx9pgappload${String(i).padStart(4, '0')}abcdefgh`;
    appInsert(id, `u-load-${i}`, String(15550008000 + i));
    many.push(id);
  }
  const total = 2 + many.length;
  await waitFor('every session to connect', async () => {
    const h = await serve.api('GET', '/health', { key: null });
    return h.body.sessions?.connected === total ? h.body : null;
  }, { timeoutMs: 60000 });
  await waitSession(serve, other, 'the third session to connect', (b) => b.connectionStatus === 'connected');
  const kept = await waitFor('the mock login', () => mockConn(jid));
  const dropped = await waitFor('the mock login', () => mockConn(otherJid));
  const outageFrom = Date.now();
  pg.stop();
  const down = await waitFor('/health to say error', async () => {
    const h = await serve.api('GET', '/health', { key: null });
    return h.body.status === 'error' ? h.body : null;
  }, { timeoutMs: 20000 });
  // The database is what is wrong: WhatsApp still counts every session connected.
  assert.equal(down.sessions.connected, total, JSON.stringify(down));
  // Messages arrive meanwhile (their last_message_at waits in memory for the database).
  for (let i = 0; i < 3; i++) assert.equal((await mock.post('/connections/all/message', {})).status, 200);
  // WhatsApp does not notice: the same connection, still logged in.
  await sleep(1500);
  assert.equal((await mockConn(jid))?.id, kept.id);
  // A socket that drops meanwhile cannot read its credentials yet: it keeps trying, within the limits.
  assert.equal((await mock.post(`/connections/${dropped.id}/kill`, {})).status, 200);
  await waitFor('the dropped session to notice', async () => (await mockConn(otherJid)) === null);
  await sleep(1500);
  pg.resume();
  await waitFor('/health to say ok again', async () => {
    const h = await serve.api('GET', '/health', { key: null });
    return h.body.status === 'ok' ? h.body : null;
  }, { timeoutMs: 30000 });
  // Nothing lost: the dropped session is back, the kept one never left, and the rows say so.
  await waitSession(serve, other, 'the dropped session to reconnect', (b) => b.connectionStatus === 'connected', 30000);
  assert.equal((await mockConn(jid))?.id, kept.id);
  await waitFor('the rows to converge', () => {
    const rows = pg.psql(`SELECT id, connection_status FROM whatsapp_sessions WHERE id IN ('${cuid}', '${other}') ORDER BY id`);
    return rows.length === 2 && rows.every((r) => r[1] === 'connected');
  }, { timeoutMs: 15000 });
  const hist = pg.psql(`SELECT status FROM whatsapp_session_status_history WHERE session_id = '${other}' ORDER BY changed_at, id`);
  assert.ok(hist.map((r) => r[0]).includes('disconnected'), JSON.stringify(hist));
  // Every other session stayed connected throughout, and the messages of the outage reached the rows.
  await waitFor('the load\'s rows to converge', () => {
    const rows = pg.psql(`SELECT count(*) FROM whatsapp_sessions WHERE id LIKE 'ckx9pgappload%'
      AND connection_status = 'connected' AND last_message_at IS NOT NULL`);
    return Number(rows[0][0]) === many.length;
  }, { timeoutMs: 20000 });
  const flaps = pg.psql(`SELECT count(*) FROM whatsapp_session_status_history
    WHERE session_id LIKE 'ckx9pgappload%' AND changed_at::timestamptz >= to_timestamp(${outageFrom / 1000})`);
  assert.equal(Number(flaps[0][0]), 0, 'a loaded session changed its status after the outage began');
});

test('the trigger tells wagate at once: a row inserted, and a flag flipped without updated_at, with no polling', async () => {
  // Neither the watch nor the monitor reads the table within this test: only the notifications can.
  await serve.stop();
  serve = await startServe({ database: pg.url, mock, env: { WAGATE_WATCH_INTERVAL: '1h', WAGATE_RECOVERY_INTERVAL: '1h' } });
  assert.equal(pg.psql("SELECT count(*) FROM pg_trigger WHERE tgname = 'wagate_sessions_notify'")[0][0], '1');
  const id = 'ckx9pgnotify00004abcdefgh';
  const jid = '15550007004:1@s.whatsapp.net';
  const t0 = Date.now();
  appInsert(id, 'u-app-4', '15550007004');
  await waitSession(serve, id, 'the inserted session to connect', (b) => b.connectionStatus === 'connected', 10000);
  assert.ok(await mockConn(jid));
  const took = Date.now() - t0;
  // A raw UPDATE that leaves updated_at alone, as a hand-written statement would.
  pg.psql(`UPDATE whatsapp_sessions SET is_active = false WHERE id = '${id}'`);
  await waitFor('its connection to close', async () => (await mockConn(jid)) === null, { timeoutMs: 10000 });
  assert.ok(took < 5000, `connected ${took} ms after the insert`);
});
