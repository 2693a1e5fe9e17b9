// wagate's own session client (wagate pair / wagate connect) against wagate mock on loopback:
// pairing through /scan with the 515 restart, login, keepalive, presence, message acks, and
// every fault of the mock's control API producing the documented close reason and code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMock, sleep, waitFor } from '../interop/lib/mock.mjs';
import { start } from './lib.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-e2e-'));
const credsFile = path.join(dir, 'creds.json');
const PHONE = '15551234567';
// Short keepalive so that keepalive and blackhole detection take about a second.
const KEEPALIVE_MS = 400;
const DEADLINE_MS = 400;
let mock;
let env;
let jid;

before(async () => {
  mock = await startMock({ stateFile: path.join(dir, 'mock-state.json') });
  env = {
    WAGATE_WA_URL: mock.url,
    WAGATE_WA_ROOT_PUBKEY: mock.rootPubKey,
    WAGATE_KEEPALIVE_INTERVAL: `${KEEPALIVE_MS}ms`,
    WAGATE_KEEPALIVE_TIMEOUT: `${DEADLINE_MS}ms`,
  };
});

after(async () => {
  await mock?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Starts `wagate connect --raw` and waits for its open line. */
async function connect() {
  const p = start(['connect', '--raw', '--creds', credsFile], env);
  const open = await p.next('open ');
  assert.equal(open, `open ${jid}`);
  const conn = await waitFor('the mock to see the login', async () => {
    const all = await mock.connections();
    return all.find((c) => c.jid === jid && c.state !== 'handshake');
  });
  return { p, conn };
}

test('pair: QR to /scan, the 515 restart, login, then "paired <jid>"', async () => {
  const p = start(['pair', '--raw', '--creds', credsFile, '--push-name', 'Shop'], env);
  const qrLine = await p.next('qr ');
  const qr = qrLine.slice(3);
  assert.match(qr, /^https:\/\/wa\.me\/settings\/linked_devices#[^,]+,[^,]+,[^,]+,[^,]+,1$/);
  const scan = await mock.post('/scan', { qr, phone: PHONE });
  assert.equal(scan.status, 200, JSON.stringify(scan.body));
  assert.equal(scan.body.ok, true);
  jid = scan.body.jid;
  assert.match(jid, new RegExp(`^${PHONE}:\\d+@s\\.whatsapp\\.net$`));
  assert.equal(await p.next('paired '), `paired ${jid}`);
  assert.deepEqual(await p.exit(), { code: 0, signal: null });
  const creds = JSON.parse(fs.readFileSync(credsFile, 'utf8'));
  assert.equal(creds.format, 'wagate-creds');
  assert.equal(creds.me.jid, jid);
  assert.equal(creds.me.name, 'Shop');
  assert.ok(creds.account.length > 100, 'the signed device identity is saved');
  assert.equal(fs.statSync(credsFile).mode & 0o777, 0o600);
  // The restart is part of pairing: the mock saw a registration, then a login of that device.
  const devices = await mock.devices();
  assert.ok(JSON.stringify(devices).includes(jid));
});

test('pair refuses a file that already holds a paired device', async () => {
  const p = start(['pair', '--raw', '--creds', credsFile], env);
  const e = await p.exit();
  assert.equal(e.code, 2);
  assert.match(p.stderr(), /already holds a paired device/);
});

test('connect: open, pre-keys, presence, keepalive pings, a message acknowledged', async () => {
  const { p } = await connect();
  const conn = await waitFor('two keepalive pings', async () => {
    const c = (await mock.connections()).find((x) => x.jid === jid);
    return c && c.pings >= 2 ? c : null;
  }, { timeoutMs: 5000 });
  assert.ok(conn.presences >= 1, 'presence available was sent');
  assert.ok(conn.prekeysUploaded >= 5, 'pre-keys were uploaded');
  const msg = await mock.post(`/connections/${conn.id}/message`, { from: '15550001111@s.whatsapp.net', id: 'E2EMSG1', t: 1700000000 });
  assert.equal(msg.status, 200);
  await waitFor('the ack', async () => {
    const c = (await mock.connections()).find((x) => x.id === conn.id);
    return c && c.acked.includes('E2EMSG1') && c.receipts.includes('E2EMSG1');
  }, { timeoutMs: 5000 });
  p.kill('SIGTERM');
  assert.equal(await p.next('closed '), 'closed closed_by_us 0');
  assert.deepEqual(await p.exit(), { code: 0, signal: null });
});

const faults = [
  { name: 'kill (TCP reset)', call: (id) => mock.post(`/connections/${id}/kill`), expect: 'closed transient 428' },
  { name: 'clean WebSocket close', call: (id) => mock.post(`/connections/${id}/close`), expect: 'closed transient 428' },
  { name: 'stream error 401 (device removed)', call: (id) => mock.post(`/connections/${id}/stream-error`, { code: '401' }), expect: 'closed logged_out 401' },
  { name: 'stream error 440 (replaced)', call: (id) => mock.post(`/connections/${id}/stream-error`, { code: '440' }), expect: 'closed replaced 440' },
  { name: 'stream error 515 (restart required)', call: (id) => mock.post(`/connections/${id}/stream-error`, { code: '515' }), expect: 'closed restart_required 515' },
  { name: 'stream error 503', call: (id) => mock.post(`/connections/${id}/stream-error`, { code: '503' }), expect: 'closed transient 503' },
];

for (const f of faults) {
  test(`fault: ${f.name} gives "${f.expect}"`, async () => {
    const { p, conn } = await connect();
    const r = await f.call(conn.id);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(await p.next('closed '), f.expect);
    assert.equal((await p.exit()).code, 1, 'a lost connection exits non-zero');
  });
}

test('fault: blackhole is detected as keepalive_timeout within one interval plus the deadline', async () => {
  const { p, conn } = await connect();
  const t0 = Date.now();
  const r = await mock.post(`/connections/${conn.id}/blackhole`);
  assert.equal(r.status, 200);
  assert.equal(await p.next('closed ', 5000), 'closed keepalive_timeout 408');
  const elapsed = Date.now() - t0;
  // One interval plus the deadline, with room for process scheduling on a busy machine.
  assert.ok(elapsed <= KEEPALIVE_MS + DEADLINE_MS + 600, `closed after ${elapsed} ms`);
  assert.equal((await p.exit()).code, 1);
});

const loginFailures = [
  ['401', 'closed logged_out 401'],
  ['402', 'closed temp_banned 402'],
  ['403', 'closed logged_out 403'],
  ['405', 'closed client_outdated 405'],
  ['406', 'closed logged_out 406'],
  ['500', 'closed transient 500'],
];
for (const [code, expect] of loginFailures) {
  test(`login failure ${code} gives "${expect}"`, async () => {
    const r = await mock.post(`/devices/${encodeURIComponent(jid)}/next-login`, { failure: code });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const p = start(['connect', '--raw', '--creds', credsFile], env);
    assert.equal(await p.next('closed '), expect);
    assert.equal((await p.exit()).code, 1);
  });
}

test('refused connections are transient (the upgrade answered 503)', async () => {
  assert.equal((await mock.post('/refuse', { on: true })).status, 200);
  try {
    const p = start(['connect', '--raw', '--creds', credsFile], env);
    assert.equal(await p.next('closed '), 'closed transient 503');
    assert.equal((await p.exit()).code, 1);
  } finally {
    await mock.post('/refuse', { on: false });
  }
});

test('a wrong root key is a protocol error (certificate chain rejected)', async () => {
  const env2 = { ...env, WAGATE_WA_ROOT_PUBKEY: '11'.repeat(32) };
  const p = start(['connect', '--raw', '--creds', credsFile], env2);
  assert.equal(await p.next('closed '), 'closed protocol_error 400');
  // Without --raw the line tells a person which check failed.
  const h = start(['connect', '--creds', credsFile], env2);
  assert.match(await h.next('closed: '), /^closed: handshake failed: .*(certificate|intermediate|signature).*\(protocol_error, code 400\)$/i);
});

test('QR codes rotate through the refs, then close as qr_timeout', async () => {
  const fresh = path.join(dir, 'fresh.json');
  const p = start(['pair', '--raw', '--creds', fresh], { ...env, WAGATE_QR_FIRST: '300ms', WAGATE_QR_NEXT: '150ms' });
  const seen = new Set();
  for (;;) {
    const l = await p.next('', 5000);
    if (l.startsWith('closed ')) {
      assert.equal(l, 'closed qr_timeout 408');
      break;
    }
    assert.ok(l.startsWith('qr '), l);
    seen.add(l.split('#')[1].split(',')[0]);
  }
  assert.ok(seen.size >= 2, `refs rotated: ${seen.size}`);
  assert.equal((await p.exit()).code, 1);
});

test('bad input: missing or corrupt credentials and bad settings exit 2 with a message', async () => {
  let p = start(['connect', '--raw', '--creds', path.join(dir, 'nope.json')], env);
  assert.equal((await p.exit()).code, 2);
  assert.match(p.stderr(), /nope\.json/);
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, '{"format":"wagate-creds","version":99}');
  p = start(['connect', '--raw', '--creds', bad], env);
  assert.equal((await p.exit()).code, 2);
  assert.match(p.stderr(), /version 99 is not supported/);
  p = start(['connect', '--raw', '--creds', credsFile], { ...env, WAGATE_KEEPALIVE_INTERVAL: '25' });
  assert.equal((await p.exit()).code, 2);
  assert.match(p.stderr(), /WAGATE_KEEPALIVE_INTERVAL/);
  p = start(['connect', '--raw', '--creds', credsFile], { ...env, WAGATE_WA_ROOT_PUBKEY: 'xyz' });
  assert.equal((await p.exit()).code, 2);
  // Keys never reach the output.
  const creds = JSON.parse(fs.readFileSync(credsFile, 'utf8'));
  assert.ok(!p.stderr().includes(creds.noiseKey.private));
});
