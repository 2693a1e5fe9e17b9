// kill -9 of wagate serve at random moments, 30 times against the mock: while it starts, while its sessions
// are up, while one reconnects, while one pairs. After each kill the database opens whole and every
// credential is there; after each restart no row says connected without a socket behind it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMock, waitFor, sleep } from '../interop/lib/mock.mjs';
import { startServe, sql, waitSession, openSealed } from './serve.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-crash-'));
const dbFile = path.join(dir, 'db', 'wagate.db');
let mock;

before(async () => {
  mock = await startMock({ stateFile: path.join(dir, 'mock-state.json') });
});

after(async () => {
  await mock?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A small fixed-seed generator: the moments differ from kill to kill, and from run to run stay the same. */
function rng(seed) {
  let x = seed >>> 0;
  return (lo, hi) => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return lo + (x % (hi - lo + 1));
  };
}

async function pairNew(serve, n) {
  const phone = `1555900${String(n).padStart(4, '0')}`;
  const created = await serve.api('POST', '/sessions', { body: { sessionName: 'primary', userId: `crash-${n}` } });
  assert.equal(created.status, 201, created.text);
  const id = created.body.sessionId;
  const qr = await waitFor('a QR code', async () => {
    const r = await serve.api('GET', `/sessions/${id}/qr`);
    return r.status === 200 ? r.body : null;
  });
  const scan = await mock.post('/scan', { qr: qr.qr, phone });
  assert.equal(scan.status, 200, JSON.stringify(scan.body));
  await waitSession(serve, id, 'the paired session to connect', (b) => b.connectionStatus === 'connected');
  return { id, jid: scan.body.jid };
}

/**
 * Each session's device key as the row holds it (sealed: opened with the key file beside the database): a
 * credential lost or cut would lose it, and a damaged seal would not open.
 */
function deviceKeys() {
  const out = new Map();
  const key = fs.readFileSync(`${dbFile}.key`, 'utf8').trim();
  const rows = sql(dbFile, 'SELECT id, auth_state FROM whatsapp_sessions WHERE auth_state IS NOT NULL');
  for (const [id, sealed] of rows) out.set(id, JSON.parse(openSealed(key, id, sealed)).noiseKey.public);
  return out;
}

test('30 kills at random moments: the database opens whole, no credential is lost, no row says connected without a socket', async () => {
  let serve = await startServe({ dbFile, mock });
  try {
    await kills(serve, (s) => {
      serve = s;
    });
  } finally {
    await serve.stop('SIGKILL').catch(() => {});
  }
});

async function kills(first, setServe) {
  let serve = first;
  const paired = [];
  for (let i = 0; i < 3; i++) paired.push(await pairNew(serve, i));
  const jidOf = new Map(paired.map((p) => [p.id, p.jid]));
  const keys0 = deviceKeys();
  assert.equal(keys0.size, 3);
  const r = rng(20261130);
  const moments = ['starting', 'steady', 'reconnecting', 'pairing'];
  for (let i = 0; i < 30; i++) {
    if (i > 0) {
      serve = await startServe({ dbFile, mock });
      setServe(serve);
    }
    // After the restart: a row that says connected has a logged-in connection behind it.
    const rows = sql(dbFile, "SELECT id FROM whatsapp_sessions WHERE connection_status = 'connected'");
    const conns = await mock.connections();
    for (const [id] of rows) {
      const jid = jidOf.get(id);
      assert.ok(jid && conns.some((c) => c.jid === jid && c.state === 'login' && c.loggedIn !== false),
        `kill ${i}: ${id} says connected with no socket`);
    }
    const moment = moments[i % moments.length];
    if (moment === 'starting') {
      await sleep(r(0, 250));
    } else if (moment === 'steady') {
      await sleep(r(300, 1500));
    } else if (moment === 'reconnecting') {
      const p = paired[r(0, paired.length - 1)];
      const c = (await mock.connections()).find((x) => x.jid === p.jid);
      if (c) await mock.post(`/connections/${c.id}/kill`, {});
      await sleep(r(0, 150));
    } else {
      const created = await serve.api('POST', '/sessions', { body: { sessionName: 'primary', userId: `crash-pairing-${i}` } });
      assert.equal(created.status, 201, created.text);
      await sleep(r(0, 200));
    }
    serve.child.kill('SIGKILL');
    const e = await serve.exit();
    assert.equal(e.signal, 'SIGKILL');
    // The database opens whole, and every device's credentials are still there.
    assert.deepEqual(sql(dbFile, 'PRAGMA integrity_check'), [['ok']], `kill ${i} (${moment})`);
    const keys = deviceKeys();
    for (const [id, key] of keys0) assert.equal(keys.get(id), key, `kill ${i} (${moment}): ${id}'s credentials`);
  }
  // A clean start after all that brings every paired session back.
  serve = await startServe({ dbFile, mock });
  setServe(serve);
  for (const p of paired) await waitSession(serve, p.id, 'a paired session to connect', (b) => b.connectionStatus === 'connected');
  const e = await serve.stop();
  assert.equal(e.code, 0);
}
