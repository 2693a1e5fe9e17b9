// Webhooks, end to end: a receiver that fails, then accepts; every delivery signed (HMAC-SHA256 of
// "<timestamp>.<body>"), in order per session; undelivered events kept in the database across a restart;
// a flapping session's status changes coalesced while its receiver is down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { waitFor } from '../interop/lib/mock.mjs';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';
import { scratchWithMock, startServe, sql, waitSession, seedSessions } from './serve.mjs';

const SECRET = 'webhook-secret-0123456789';
let mock;
const dir = scratchWithMock('hooks', (m) => (mock = m));

/** A receiver: answers `status()` to each POST; keeps the accepted deliveries (signature checked). */
async function receiver(status) {
  const accepted = [];
  let attempts = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      attempts++;
      const body = Buffer.concat(chunks).toString('utf8');
      const ts = req.headers['x-wagate-timestamp'];
      const want = `sha256=${crypto.createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`;
      const code = status();
      if (code === 200) {
        accepted.push({ headers: req.headers, body: JSON.parse(body), raw: body, signatureOk: req.headers['x-wagate-signature'] === want });
      }
      res.writeHead(code, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/hook?src=wagate`, accepted, attempts: () => attempts, close: () => new Promise((r) => server.close(r)) };
}

const env = (url) => ({ WAGATE_WEBHOOK_URL: url, WAGATE_WEBHOOK_SECRET: SECRET, WAGATE_WEBHOOK_BACKOFF: '100ms,400ms', WAGATE_START_STAGGER: '10ms' });

test('a receiver that fails, then accepts: every event arrives signed, in order per session, once accepted', async () => {
  const dbFile = path.join(dir, 'a.db');
  const sessions = seedSessions(dbFile, 2, 4474000000);
  let failFirst = 4;
  const rx = await receiver(() => (failFirst-- > 0 ? 500 : 200));
  const serve = await startServe({ dbFile, mock, env: env(rx.url) });
  try {
    for (const s of sessions) await waitSession(serve, s.id, 'connected', (b) => b.connectionStatus === 'connected');
    await waitFor('both sessions\' connected status delivered', () => sessions.every((s) =>
      rx.accepted.some((d) => d.body.type === 'session.status' && d.body.session.sessionId === s.id && d.body.session.status === 'connected')), { timeoutMs: 15000 });
    assert.ok(rx.attempts() >= 5, 'the failures were not retried');
    // A dropped connection: its status changes, then /health's.
    const r = await mock.post(`/connections/${encodeURIComponent(sessions[0].jid)}/kill`, {});
    assert.equal(r.status, 200);
    const before = rx.accepted.length;
    await waitFor('the drop and the reconnect delivered', () => {
      const st = rx.accepted.slice(before).filter((d) => d.body.type === 'session.status' && d.body.session.sessionId === sessions[0].id).map((d) => d.body.session.status);
      // Dropped (disconnected, or straight to connecting again), then connected.
      return st.length >= 2 && st[0] !== 'connected' && st[st.length - 1] === 'connected';
    }, { timeoutMs: 15000 });
    await waitFor('health.changed delivered', () => rx.accepted.some((d) => d.body.type === 'health.changed'), { timeoutMs: 10000 });
    for (const d of rx.accepted) {
      assert.ok(d.signatureOk, `bad signature on ${d.raw}`);
      assert.equal(d.headers['x-wagate-event'], d.body.type);
      assert.equal(d.headers['x-wagate-delivery'], d.body.id);
      assert.ok(Math.abs(Number(d.headers['x-wagate-timestamp']) - Date.now() / 1000) < 300);
      assert.match(d.headers['content-type'], /^application\/json/);
    }
    assert.equal(new Set(rx.accepted.map((d) => d.body.id)).size, rx.accepted.length, 'an accepted event came twice');
    // In order per session: the statuses of session 0 as they happened.
    const s0 = rx.accepted.filter((d) => d.body.session?.sessionId === sessions[0].id).map((d) => d.body);
    for (let i = 1; i < s0.length; i++) assert.ok(Date.parse(s0[i].at) >= Date.parse(s0[i - 1].at), 'out of order');
    for (let i = 1; i < s0.length; i++) assert.equal(s0[i].session.previousStatus, s0[i - 1].session.status);
    await waitFor('the outbox emptied', () => sql(dbFile, 'SELECT count(*) FROM wagate_webhook_outbox')[0][0] === '0');
    const m = (await serve.api('GET', '/metrics')).text;
    assert.match(m, new RegExp(`^wagate_webhook_delivered_total ${rx.accepted.length}$`, 'm'));
    assert.match(m, /^wagate_webhook_failures_total [4-9]\d*$/m);
    assert.match(m, /^wagate_webhook_queued 0$/m);
  } finally {
    await serve.stop();
    await rx.close();
  }
});

test('undelivered events survive a restart; a flapping session\'s changes are coalesced', async () => {
  const dbFile = path.join(dir, 'b.db');
  const [s0] = seedSessions(dbFile, 1, 4473000000);
  let accept = false;
  const rx = await receiver(() => (accept ? 200 : 503));
  let serve = await startServe({ dbFile, mock, env: env(rx.url) });
  try {
    await waitSession(serve, s0.id, 'connected', (b) => b.connectionStatus === 'connected');
    // Five drops while the receiver refuses: each makes status changes.
    for (let i = 0; i < 5; i++) {
      await waitSession(serve, s0.id, 'connected again', (b) => b.connectionStatus === 'connected');
      await mock.post(`/connections/${encodeURIComponent(s0.jid)}/kill`, {});
      await waitSession(serve, s0.id, 'dropped', (b) => b.connectionStatus !== 'connected');
    }
    await waitSession(serve, s0.id, 'connected at last', (b) => b.connectionStatus === 'connected');
    await waitFor('attempts made', () => rx.attempts() >= 2);
    assert.equal((await serve.stop()).code, 0);
    const kept = Number(sql(dbFile, 'SELECT count(*) FROM wagate_webhook_outbox')[0][0]);
    assert.ok(kept >= 1, 'nothing was kept in the database');
    // Coalesced: about ten status changes, at most the one in flight and the latest kept for the session.
    const statusRows = Number(sql(dbFile, "SELECT count(*) FROM wagate_webhook_outbox WHERE kind = 'session.status'")[0][0]);
    assert.ok(statusRows <= 2, `${statusRows} status events kept for one session`);
    accept = true;
    serve = await startServe({ dbFile, mock, env: env(rx.url) });
    await waitSession(serve, s0.id, 'connected after the restart', (b) => b.connectionStatus === 'connected');
    await waitFor('the kept events delivered after the restart', () => rx.accepted.length >= kept, { timeoutMs: 10000 });
    assert.match(serve.stderr(), /event\(s\) left undelivered by the last run go first/);
    const statuses = rx.accepted.filter((d) => d.body.type === 'session.status');
    assert.ok(statuses.length <= 4, `${statuses.length} status deliveries for a session that changed ten times`);
    await waitFor('the outbox emptied', () => sql(dbFile, 'SELECT count(*) FROM wagate_webhook_outbox')[0][0] === '0');
  } finally {
    await serve.stop();
    await rx.close();
  }
});

test('WAGATE_WEBHOOK_URL without a secret, or not http(s), stops the start', () => {
  for (const e of ['WAGATE_WEBHOOK_URL=http://127.0.0.1:1/x', 'WAGATE_WEBHOOK_URL=ftp://x WAGATE_WEBHOOK_SECRET=0123456789abcdefgh']) {
    const out = execFileSync('bash', ['-c', `${e} "${WAGATE_BIN}" serve 2>&1; echo "exit=$?"`], { encoding: 'utf8' });
    assert.match(out, /exit=2/);
    assert.match(out, /WAGATE_WEBHOOK_(URL|SECRET)/);
  }
});
