// Operations, end to end: the probes, GET /metrics checked by promtool with real sessions behind it (logins,
// a close, keepalive round trips, database writes), the metrics listener without a key, the version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { waitFor, freePort } from '../interop/lib/mock.mjs';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';
import { scratchWithMock, startServe, request, waitSession, seedSessions } from './serve.mjs';

let mock;
const dir = scratchWithMock('ops', (m) => (mock = m));

/** The value of one sample line ("name{labels} value"), or undefined. */
function sample(text, line) {
  const m = text.split('\n').find((l) => l.startsWith(`${line} `));
  return m === undefined ? undefined : Number(m.slice(line.length + 1));
}

test('probes and metrics: promtool accepts them; they count logins, closes, pings, writes and answers', async () => {
  const dbFile = path.join(dir, 'm.db');
  const ids = seedSessions(dbFile, 2, 4476000000).map((x) => x.id);
  const mport = await freePort();
  const serve = await startServe({
    dbFile, mock,
    env: { WAGATE_START_STAGGER: '10ms', WAGATE_KEEPALIVE_INTERVAL: '200ms', WAGATE_METRICS_LISTEN: `127.0.0.1:${mport}` },
  });
  try {
    for (const id of ids) await waitSession(serve, id, 'connected', (b) => b.connectionStatus === 'connected');
    // Probes: no key needed.
    const live = await serve.api('GET', '/livez', { key: null });
    assert.equal(live.status, 200);
    assert.equal(live.body.status, 'alive');
    const ready = await waitFor('ready', async () => {
      const r = await serve.api('GET', '/readyz', { key: null });
      return r.status === 200 ? r : null;
    });
    assert.equal(ready.body.status, 'ready');
    // One connection dropped by the mock: a close and a recovery follow.
    const r = await mock.post(`/connections/${encodeURIComponent('4476000000:1@s.whatsapp.net')}/kill`, {});
    assert.equal(r.status, 200);
    await waitFor('the reconnect', async () => {
      const m = (await serve.api('GET', '/metrics')).text;
      return (sample(m, 'wagate_session_opens_total') ?? 0) >= 3 && (sample(m, 'wagate_keepalive_rtt_seconds_count') ?? 0) >= 2;
    }, { timeoutMs: 15000 });
    assert.equal((await serve.api('GET', '/metrics', { key: null })).status, 401, '/metrics on the API needs the key');
    const m = await serve.api('GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    const text = m.text;
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
    const version = spawnSync(WAGATE_BIN, ['--version'], { encoding: 'utf8' }).stdout.trim();
    assert.match(version, /^wagate \d+\.\d+\.\d+$/);
    assert.equal(sample(text, `wagate_build_info{version="${version.split(' ')[1]}"}`), 1);
    assert.equal(sample(text, 'wagate_sessions{status="connected"}'), 2);
    assert.ok(sample(text, 'wagate_session_opens_total') >= 3);
    assert.ok(sample(text, 'wagate_session_connects_total') >= sample(text, 'wagate_session_opens_total'));
    assert.ok(sample(text, 'wagate_session_closes_total{reason="transient"}') >= 1);
    assert.ok(sample(text, 'wagate_login_duration_seconds_count') >= 3);
    assert.ok(sample(text, 'wagate_keepalive_rtt_seconds_count') >= 2);
    assert.ok(sample(text, 'wagate_store_write_duration_seconds_count') >= 1);
    assert.equal(sample(text, 'wagate_store_write_failures_total'), 0);
    assert.equal(sample(text, 'wagate_ready'), 1);
    assert.ok(sample(text, 'wagate_http_requests_total{route="/livez",code="200"}') >= 1);
    assert.ok(sample(text, 'wagate_http_requests_total{route="/sessions/{id}",code="200"}') >= 2);
    assert.match(text, /wagate_recoveries_total\{trigger="[^"]+",action="reconnect",result="connected"\} \d+/);
    assert.doesNotMatch(text, /4476000000|00000000-0000-4000/, 'a phone number or session id in a label');
    // The metrics listener: no key, /metrics only.
    const own = await request(mport, 'GET', '/metrics', { key: null });
    assert.equal(own.status, 200);
    assert.match(own.text, /^# HELP wagate_build_info/m);
    assert.equal((await request(mport, 'GET', '/sessions', { key: null })).status, 404);
  } finally {
    await serve.stop();
  }
});

test('the command line: --version, help, each command\'s help, bad values name their variable', () => {
  const v = spawnSync(WAGATE_BIN, ['--version'], { encoding: 'utf8' });
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^wagate \d+\.\d+\.\d+\n$/);
  assert.equal(spawnSync(WAGATE_BIN, ['version'], { encoding: 'utf8' }).stdout, v.stdout);
  const h = spawnSync(WAGATE_BIN, ['help'], { encoding: 'utf8' });
  assert.equal(h.status, 0);
  for (const c of ['serve', 'migrate', 'rekey', 'mock', 'wire', 'pair', 'connect']) assert.match(h.stdout, new RegExp(`\\b${c}\\b`));
  const hm = spawnSync(WAGATE_BIN, ['help', 'migrate'], { encoding: 'utf8' });
  assert.equal(hm.status, 0);
  assert.match(hm.stdout, /^usage: wagate migrate/);
  assert.match(hm.stdout, /WAGATE_DATABASE/);
  const hs = spawnSync(WAGATE_BIN, ['serve', '--help'], { encoding: 'utf8' });
  for (const v2 of ['WAGATE_LOG_LEVEL', 'WAGATE_SECRET_KEY', 'WAGATE_HTTP_MAX_CONNECTIONS', 'WAGATE_METRICS_LISTEN']) assert.match(hs.stdout, new RegExp(v2));
  assert.match(spawnSync(WAGATE_BIN, ['rekey', '--help'], { encoding: 'utf8' }).stdout, /^usage: wagate rekey/);
  const bad = spawnSync(WAGATE_BIN, ['serve'], { env: { ...process.env, WAGATE_LOG_LEVEL: 'loud' }, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /WAGATE_LOG_LEVEL/);
  assert.equal(spawnSync(WAGATE_BIN, ['help', 'nope'], { encoding: 'utf8' }).status, 2);
});

test('a busy port names the setting that changes it', async () => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  const { port } = blocker.address();
  try {
    const r = spawnSync(WAGATE_BIN, ['serve'], {
      env: { ...process.env, WAGATE_DATABASE: `sqlite:${path.join(dir, 'busy.db')}`, WAGATE_LISTEN: `127.0.0.1:${port}`, WAGATE_API_KEY: 'busy-port-key-0123456789' },
      encoding: 'utf8', timeout: 10000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Address already in use.*WAGATE_LISTEN or --listen/);
  } finally {
    blocker.close();
  }
});

test('a dashboard sign-in outlives a restart of the server', async () => {
  const dbFile = path.join(dir, 'signin.db');
  let s = await startServe({ dbFile, mock });
  let cookie;
  try {
    const r = await s.api('POST', '/auth/login', { key: null, body: { apiKey: (await import('./serve.mjs')).API_KEY } });
    assert.equal(r.status, 204);
    cookie = r.headers['set-cookie'][0].split(';')[0];
  } finally {
    await s.stop();
  }
  s = await startServe({ dbFile, mock });
  try {
    const r = await s.api('GET', '/auth/session', { key: null, headers: { cookie } });
    assert.equal(r.body.authenticated, true);
    assert.equal((await s.api('GET', '/sessions', { key: null, headers: { cookie } })).status, 200);
  } finally {
    await s.stop();
  }
});
