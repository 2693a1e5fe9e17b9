// A whole session of each reference client against `wagate mock` playing WhatsApp and the phone:
//   pairing    the client shows a QR (connection.update `qr`); the test POSTs it to /scan, the mock sends
//              pair-success signed with the phone's account key, checks the client's pair-device-sign and
//              answers with the paired jid; the client then closes with 515 (restart required)
//   login      a new socket with the saved credentials, as Baileys' README does after 515: connection 'open';
//              pre-keys uploaded (30 by baileys6, 812 by baileys7); the mock shows the device logged in
//   keepalive  keepAliveIntervalMs 1000: `pings` grows in GET /connections
//   acks       POST /connections/{jid}/message: the client acks the message id (`acked`)
//   closes     stream errors 401, 440, 515 and a queued login failure 403 reach Baileys with that status code;
//              an unknown device gets failure 401; kill and blackhole (baileys6: 408 from its keepalive)
//   restart    the paired devices log in again after the mock restarts with the same --state file
// For baileys7 the mock's root key replaces WhatsApp's and the signature check is made strict (lib/b7trust.mjs),
// so the certificate chain and, at pairing, the phone's account signature are really verified.
// Every wait is bounded; every socket is ended and the mocks are stopped in `after`.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { startMock, waitFor, within } from './lib/mock.mjs';
import { clients, connectClient, describeClose } from './lib/clients.mjs';
import { trustMockRoot, restoreB7, verifyCalls } from './lib/b7trust.mjs';

const WAIT_MS = 15000;
const KEEPALIVE_MS = 1000;
const PHONE = '15551234567';

let dir;
let mock;
let mockOpts;
const sockets = new Set();
const paired = {}; // client name -> {auth, jid}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'wagate-session-'));
  mockOpts = { stateFile: path.join(dir, 'state.json'), rootKeyFile: path.join(dir, 'root.key') };
  mock = await startMock(mockOpts);
});

after(async () => {
  for (const c of sockets) await c.end();
  sockets.clear();
  restoreB7();
  if (mock) await mock.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function connect(name, opts = {}) {
  if (name === 'baileys7') trustMockRoot(mock.rootPubKey);
  // The mock answers queries in milliseconds. Baileys does not clear a query's timeout timer when its socket
  // closes, and such timers keep this process alive after the last test: keep them short.
  const config = { defaultQueryTimeoutMs: 5000, ...opts.config };
  const c = connectClient(clients[name], mock.url, { keepAliveIntervalMs: KEEPALIVE_MS, connectTimeoutMs: WAIT_MS, ...opts, config });
  sockets.add(c);
  return c;
}

async function end(c) {
  await c.end();
  sockets.delete(c);
}

/** Resolves `c.closed`, or fails after WAIT_MS. */
async function closedWithin(c, what, ms = WAIT_MS) {
  const u = await within(c.closed, ms);
  assert.ok(u, `${what}: the client did not close within ${ms} ms`);
  return u;
}

function statusOf(u) {
  return u?.lastDisconnect?.error?.output?.statusCode;
}

/** The mock's entry for the newest logged-in connection of `jid`. */
async function loggedInConn(jid) {
  return waitFor(`a logged-in connection of ${jid}`, async () => {
    const list = (await mock.connections()).filter((x) => x.jid === jid && x.state === 'login' && x.loggedIn);
    return list.at(-1);
  }, { timeoutMs: WAIT_MS });
}

/** Opens a session with the paired credentials of `name`; returns {c, conn}. */
async function login(name, config = {}) {
  const p = paired[name];
  assert.ok(p, `${name} was not paired (see the pairing test)`);
  const c = connect(name, { auth: p.auth, config });
  const u = await within(Promise.race([c.opened, c.closed]), WAIT_MS);
  assert.ok(u, `${name} did not open within ${WAIT_MS} ms`);
  assert.equal(u.connection, 'open', `${name} closed instead of opening: ${describeClose(u)}`);
  return { c, conn: await loggedInConn(p.jid) };
}

// baileys7 first: its pre-key upload leaves a 30 s timer it never clears (lib/Socket/socket.js, uploadPreKeys),
// which keeps the process alive; started early, it runs out while the baileys6 tests run.
for (const name of ['baileys7', 'baileys6']) {
  describe(`${name} against the mock`, () => {
    after(() => restoreB7());

    test('pairing: QR to /scan, pair-success verified, then 515 restart', async () => {
      const c = connect(name);
      try {
        const qr = await within(c.qr, WAIT_MS);
        assert.ok(qr, `no QR within ${WAIT_MS} ms; updates: ${JSON.stringify(c.updates)}`);
        if (name === 'baileys7') assert.match(qr, /^https:\/\/wa\.me\/settings\/linked_devices#/);
        const before = (await mock.connections()).find((x) => x.state === 'register');
        assert.ok(before, 'the mock shows the connection in state register');

        const res = await mock.post('/scan', { qr, phone: PHONE });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.ok, true);
        assert.match(res.body.jid, new RegExp(`^${PHONE}:[0-9]{1,2}@s\\.whatsapp\\.net$`));
        assert.match(res.body.lid, /^[0-9]+:[0-9]{1,2}@lid$/);

        const u = await closedWithin(c, 'after pairing');
        assert.equal(statusOf(u), 515, `expected 515 restart, got ${describeClose(u)}`);
        assert.equal(c.auth.creds.me?.id, res.body.jid, 'Baileys stored the jid from pair-success');
        assert.equal(c.auth.creds.platform, 'android');
        if (name === 'baileys7') {
          // strict verify: the phone's account signature over our identity key really checked out
          assert.ok(verifyCalls.length >= 3 && verifyCalls.every((v) => v.valid), JSON.stringify(verifyCalls));
        }
        const dev = (await mock.devices()).find((d) => d.jid === res.body.jid);
        assert.ok(dev, 'GET /devices lists the paired device');
        assert.equal(dev.noisePub, Buffer.from(c.auth.creds.noiseKey.public).toString('hex'));
        assert.equal(dev.identityPub, Buffer.from(c.auth.creds.signedIdentityKey.public).toString('hex'));
        paired[name] = { auth: c.auth, jid: res.body.jid };
      } finally {
        await end(c);
      }
    });

    test('login after the restart opens the connection, uploads pre-keys, keeps alive, acks a message', async () => {
      // The mock's message cannot be decrypted (it has no Signal session with the client). baileys6 then asks the
      // phone for a resend 5 s later, fails to encrypt that request ("No sessions", in a promise nobody awaits)
      // and keeps a 15 s timer; maxMsgRetryCount 0 skips that retry path. Its ack is sent either way.
      const { c, conn } = await login(name, name === 'baileys6' ? { maxMsgRetryCount: 0 } : {});
      try {
        assert.equal(conn.dict, clients[name].dict);
        assert.equal(conn.prekeysUploaded, name === 'baileys6' ? 30 : 812);
        const start = conn.pings;
        const later = await waitFor('pings to grow by 2', async () => {
          const x = (await mock.connections()).find((y) => y.id === conn.id);
          return x && x.pings >= start + 2 ? x : null;
        }, { timeoutMs: 4 * KEEPALIVE_MS + 5000 });
        assert.ok(later.lastFrameAt >= conn.lastFrameAt);

        const id = `3EB0${Date.now().toString(16).toUpperCase()}`;
        const res = await mock.post(`/connections/${encodeURIComponent(paired[name].jid)}/message`,
          { from: '15559876543@s.whatsapp.net', id, t: Math.floor(Date.now() / 1000) });
        assert.deepEqual(res.body, { ok: true, affected: 1, id });
        await waitFor(`an ack of message ${id}`, async () => {
          const x = (await mock.connections()).find((y) => y.id === conn.id);
          return x?.acked.includes(id);
        }, { timeoutMs: WAIT_MS });
      } finally {
        await end(c);
      }
    });

    test('a second login asks for the pre-key count again and does not re-upload', async () => {
      const { c, conn } = await login(name);
      try {
        assert.equal(conn.prekeysUploaded, name === 'baileys6' ? 30 : 812);
      } finally {
        await end(c);
      }
    });

    for (const [code, selector] of [[401, 'jid'], [440, 'id'], [515, 'all']]) {
      test(`stream error ${code} closes Baileys with status ${code}`, async () => {
        const { c, conn } = await login(name);
        try {
          const sel = selector === 'jid' ? encodeURIComponent(paired[name].jid) : selector === 'id' ? conn.id : 'all';
          const res = await mock.post(`/connections/${sel}/stream-error`, { code: String(code) });
          assert.equal(res.status, 200, JSON.stringify(res.body));
          assert.ok(res.body.affected >= 1);
          const u = await closedWithin(c, `stream error ${code}`);
          assert.equal(statusOf(u), code, describeClose(u));
        } finally {
          await end(c);
        }
      });
    }

    test('a login failure queued with /devices/{jid}/next-login reaches Baileys (403), once', async () => {
      const res = await mock.post(`/devices/${encodeURIComponent(paired[name].jid)}/next-login`, { failure: '403' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const c = connect(name, { auth: paired[name].auth });
      try {
        const u = await closedWithin(c, 'failure 403');
        assert.equal(statusOf(u), 403, describeClose(u));
      } finally {
        await end(c);
      }
      const again = await login(name);
      await end(again.c);
    });

    test('an unknown device gets failure 401', async () => {
      const c = connect(name, { me: { id: `${PHONE}:77@s.whatsapp.net`, name: 'x' } });
      try {
        const u = await closedWithin(c, 'unknown device');
        assert.equal(statusOf(u), 401, describeClose(u));
      } finally {
        await end(c);
      }
    });

    test('kill (TCP reset) is reported by Baileys as a closed connection', async () => {
      const { c, conn } = await login(name);
      try {
        const res = await mock.post(`/connections/${conn.id}/kill`, {});
        assert.deepEqual(res.body, { ok: true, affected: 1 });
        const u = await closedWithin(c, 'kill');
        assert.ok(statusOf(u) !== undefined, describeClose(u));
        assert.notEqual(statusOf(u), 515);
      } finally {
        await end(c);
      }
    });

    if (name === 'baileys6') {
      // baileys7 waits ~30 s more for the WebSocket close handshake before it reports (protocol notes §11).
      test('blackhole: the mock goes silent and Baileys gives up with 408', async () => {
        const { c, conn } = await login(name);
        try {
          const res = await mock.post(`/connections/${conn.id}/blackhole`);
          assert.deepEqual(res.body, { ok: true, affected: 1 });
          const x = (await mock.connections()).find((y) => y.id === conn.id);
          assert.equal(x.state, 'blackhole');
          const u = await closedWithin(c, 'blackhole', KEEPALIVE_MS * 2 + 5000 + WAIT_MS);
          assert.equal(statusOf(u), 408, describeClose(u));
          // the socket stays open on the mock's side until killed
          const k = await mock.post(`/connections/${conn.id}/kill`);
          assert.equal(k.status, 200, JSON.stringify(k.body));
        } finally {
          await end(c);
        }
      });
    }
  });
}

test('paired devices log in again after the mock restarts with the same --state', async () => {
  const names = Object.keys(paired);
  assert.ok(names.length === 2, `both clients paired: ${names}`);
  const state = JSON.parse(readFileSync(mockOpts.stateFile, 'utf8'));
  assert.equal(state.version, 1);
  assert.deepEqual(state.devices.map((d) => d.jid).sort(), names.map((n) => paired[n].jid).sort());
  await mock.stop();
  mock = await startMock(mockOpts);
  assert.equal((await mock.devices()).length, 2);
  for (const name of names) {
    const { c, conn } = await login(name);
    try {
      assert.equal(conn.prekeysUploaded, name === 'baileys6' ? 30 : 812, 'the pre-key count survived');
    } finally {
      await end(c);
      restoreB7();
    }
  }
});
