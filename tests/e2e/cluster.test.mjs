// Several wagate nodes on one PostgreSQL (docs/cluster.md): three nodes share 60 sessions against the
// mock; kill -9 of one, SIGSTOP of another past its lease, a graceful stop. At no moment may the mock
// see two connections for one device (its /stats counts them), and a node that lost a session writes
// nothing about it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { startMock, waitFor, sleep } from '../interop/lib/mock.mjs';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';
import { createHash, createHmac } from 'node:crypto';
import { startServe, API_KEY } from './serve.mjs';
import { startCluster, startProxy } from './pg.mjs';

const N = 60;
const PHONE_BASE = 15550200000;
const LEASE = '5s';
let mock;
let pg;
let proxy; // n2 reaches the database through it, so that it can be cut off
const nodes = {};

const jids = Array.from({ length: N }, (_, i) => `${PHONE_BASE + i}:1@s.whatsapp.net`);

async function loggedIn() {
  const all = await mock.connections();
  const mine = all.filter((c) => c.state === 'login' && c.loggedIn !== false && jids.includes(c.jid));
  return new Set(mine.map((c) => c.jid)).size;
}

async function overlaps() {
  const r = await fetch(`http://127.0.0.1:${mock.controlPort}/stats`);
  return (await r.json()).overlaps;
}

async function cluster(name) {
  const r = await nodes[name].api('GET', '/cluster');
  assert.equal(r.status, 200, r.text);
  return r.body;
}

function startNode(name, database = pg.url) {
  return startServe({
    database,
    mock,
    env: {
      WAGATE_NODE_ID: name,
      WAGATE_LEASE_TTL: LEASE,
      WAGATE_START_STAGGER: '20ms',
      WAGATE_START_RETRIES: '200ms,400ms,800ms',
      WAGATE_KEEPALIVE_INTERVAL: '300ms',
      WAGATE_KEEPALIVE_TIMEOUT: '1s',
    },
  });
}

before(async () => {
  // The mock drops a logged-in connection silent for 1.5 s, as WhatsApp drops a client that stopped pinging.
  mock = await startMock({ acceptAnyLogin: true, extraArgs: ['--idle-timeout', '1500ms'] });
  pg = startCluster('pg-nodes');
  const m = spawnSync(WAGATE_BIN, ['migrate'], { env: { ...process.env, WAGATE_DATABASE: pg.url }, encoding: 'utf8' });
  assert.equal(m.status, 0, m.stderr);
  const seed = path.join(path.dirname(WAGATE_BIN), 'bench', 'wagate-bench-seed');
  const sql = execFileSync(seed, ['--count', String(N), '--phone-base', String(PHONE_BASE)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', pg.url], { input: sql });
  proxy = await startProxy(pg.dir);
  nodes.n1 = await startNode('n1');
  nodes.n2 = await startNode('n2', proxy.url());
  nodes.n3 = await startNode('n3');
});

after(async () => {
  if (process.env.CLUSTER_DEBUG) {
    const fs = await import('node:fs');
    for (const [name, s] of Object.entries(nodes)) fs.writeFileSync(`${process.env.CLUSTER_DEBUG}/${name}.log`, s.stderr());
  }
  for (const s of Object.values(nodes)) {
    try {
      s.child.kill('SIGCONT');
    } catch {
      // gone
    }
    await s.stop('SIGKILL').catch(() => {});
  }
  proxy?.close();
  try {
    pg?.stop();
  } catch {
    // already stopped
  }
  await mock?.stop();
});

test('three nodes share 60 sessions fairly, with one connection per device', async () => {
  await waitFor('all 60 logged in', async () => (await loggedIn()) === N, { timeoutMs: 30000 });
  const held = await waitFor('a fair spread', async () => {
    const h = await Promise.all(['n1', 'n2', 'n3'].map(async (n) => (await cluster(n)).held));
    const sum = h.reduce((a, b) => a + b, 0);
    return sum === N && Math.max(...h) - Math.min(...h) <= 2 ? h : null;
  }, { timeoutMs: 30000 });
  assert.deepEqual(held.map((h) => h >= 19 && h <= 21), [true, true, true], JSON.stringify(held));
  const c = await cluster('n1');
  assert.equal(c.nodes.filter((n) => n.live).length, 3);
  assert.equal(c.nodes.find((n) => n.self).node, 'n1');
  // /health answers for the node; /health/deep shows each session's node.
  const h1 = await nodes.n1.api('GET', '/health', { key: null });
  assert.equal(h1.body.sessions.total, held[0]);
  // Every node learns who holds what at its next round.
  const byNode = await waitFor('/health/deep to name every holder', async () => {
    const deep = await nodes.n1.api('GET', '/health/deep');
    assert.equal(deep.status, 200);
    assert.equal(deep.body.sessions.length, N);
    const count = {};
    for (const s of deep.body.sessions) count[s.node] = (count[s.node] || 0) + 1;
    return Object.keys(count).sort().join() === 'n1,n2,n3' ? count : null;
  }, { timeoutMs: 10000 });
  assert.deepEqual(Object.values(byNode).sort(), held.slice().sort(), JSON.stringify(byNode));
  assert.equal(await overlaps(), 0);
});

test('an action on another node\'s session is forwarded to it', async () => {
  const deep = await nodes.n1.api('GET', '/health/deep');
  const other = deep.body.sessions.find((s) => s.node === 'n2');
  assert.ok(other, 'n2 holds a session');
  const r = await nodes.n1.api('POST', `/sessions/${other.sessionId}/reconnect`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.success, true, r.text);
  assert.equal(r.headers['x-wagate-node'], 'n2');
  // A forged hop is refused: the header must be signed with the shared key.
  const forged = await nodes.n1.api('POST', `/sessions/${other.sessionId}/reconnect`, {
    key: null,
    headers: { 'X-Wagate-Forwarded': `n9 ${Date.now()} ${'0'.repeat(64)}` },
  });
  assert.equal(forged.status, 401);
  // Signed as the nodes sign (a key derived from the shared API key, over the body too): accepted once,
  // refused when played again, and good for the four actions only.
  const fwdKey = createHmac('sha256', API_KEY).update('wagate: requests forwarded between nodes').digest();
  const sign = (method, uri) => {
    const ms = String(Date.now());
    const body = createHash('sha256').update('').digest('hex');
    const mac = createHmac('sha256', fwdKey).update(`n9\n${ms}\n${method}\n${uri}\n${body}`).digest('hex');
    return `n9 ${ms} ${mac}`;
  };
  const uri = `/sessions/${other.sessionId}/reconnect`;
  const header = sign('POST', uri);
  const once = await nodes.n2.api('POST', uri, { key: null, headers: { 'X-Wagate-Forwarded': header } });
  assert.equal(once.status, 200, once.text);
  const again = await nodes.n2.api('POST', uri, { key: null, headers: { 'X-Wagate-Forwarded': header } });
  assert.equal(again.status, 401, 'a replayed forward is refused');
  const list = await nodes.n2.api('GET', '/sessions', { key: null, headers: { 'X-Wagate-Forwarded': sign('GET', '/sessions') } });
  assert.equal(list.status, 401, 'a forward is good for the actions only');
  // Pairing a new session: the node asked takes its lease; its QR code is shown through any node.
  const created = await nodes.n3.api('POST', '/sessions', { body: { sessionName: 'primary', userId: 'u-cluster-pair' } });
  assert.equal(created.status, 201, created.text);
  const id = created.body.sessionId;
  const pair = await nodes.n2.api('POST', `/sessions/${id}/pair`);
  assert.ok(pair.status === 200 || pair.status === 202, pair.text);
  const qr = await waitFor('the QR code through n3', async () => {
    const r = await nodes.n3.api('GET', `/sessions/${id}/qr`);
    return r.status === 200 ? r : null;
  });
  assert.equal(qr.headers['x-wagate-node'], 'n2');
  assert.match(qr.body.qr, /^https:\/\/wa\.me\/settings\/linked_devices#/);
  assert.equal((await nodes.n1.api('DELETE', `/sessions/${id}`)).status, 204);
  assert.equal(await overlaps(), 0);
});

test('kill -9 of a node: the others connect its sessions once its leases expire', async (t) => {
  const before = (await cluster('n1')).held;
  assert.ok(before > 0);
  const t0 = Date.now();
  nodes.n1.child.kill('SIGKILL');
  await nodes.n1.exit();
  delete nodes.n1;
  await waitFor('n2 and n3 to hold all 60', async () => {
    const h = (await cluster('n2')).held + (await cluster('n3')).held;
    return h === N;
  }, { timeoutMs: 20000 });
  await waitFor('all 60 logged in again', async () => (await loggedIn()) === N, { timeoutMs: 20000 });
  const took = Date.now() - t0;
  t.diagnostic(`all 60 connected again ${took} ms after the kill`);
  // The lease (5 s) plus the stagger and the rounds' pace, not minutes.
  assert.ok(took < 15000, `took ${took} ms`);
  assert.equal(await overlaps(), 0);
});

test('a node cut off from the database closes its sessions before another may take them, and writes nothing after', async () => {
  const held = (await cluster('n2')).held;
  assert.ok(held > 0, 'n2 holds sessions');
  const t0 = Date.now();
  proxy.blackhole();
  try {
    // n2 cannot renew: it closes its sockets itself before its leases expire; n3 then takes them.
    await waitFor('n3 to hold all 60', async () => (await cluster('n3')).held === N, { timeoutMs: 25000 });
    await waitFor('all 60 logged in through n3', async () => (await loggedIn()) === N, { timeoutMs: 20000 });
    assert.equal(await overlaps(), 0, 'n3 logged in while n2 still had the connection');
    const h = await nodes.n2.api('GET', '/health', { key: null });
    assert.equal(h.body.status, 'error');
    assert.equal(h.body.sessions.total, 0);
  } finally {
    proxy.heal();
  }
  // Back in touch: n2 takes its share again, handed over by n3 socket by socket, never two at once.
  await waitFor('n2 to answer its rounds again', async () => (await cluster('n2')).leaseRoundsOk, { timeoutMs: 15000 });
  await waitFor('n2 to take its share back', async () => (await cluster('n2')).held >= 25, { timeoutMs: 30000 });
  await waitFor('all 60 logged in', async () => (await loggedIn()) === N, { timeoutMs: 20000 });
  assert.equal(await overlaps(), 0);
  assert.ok(Date.now() - t0 < 90000);
});

test('a node paused past its lease writes nothing and closes what it lost when it resumes', async () => {
  const paused = nodes.n2;
  const heldBefore = (await cluster('n2')).held;
  assert.ok(heldBefore > 0);
  const t0 = Date.now();
  paused.child.kill('SIGSTOP');
  try {
    // Its sockets go silent (the mock drops them), its leases expire, n3 takes everything.
    await waitFor('n3 to hold all 60', async () => (await cluster('n3')).held === N, { timeoutMs: 25000 });
    await waitFor('all 60 logged in through n3', async () => (await loggedIn()) === N, { timeoutMs: 20000 });
  } finally {
    paused.child.kill('SIGCONT');
  }
  // Resumed: it gives everything up at once, and connects nothing of what it lost.
  await waitFor('the resumed node to give up', async () => (await cluster('n2')).held === 0, { timeoutMs: 10000 });
  assert.equal(await overlaps(), 0);
  assert.equal(await loggedIn(), N);
  // It wrote nothing about them: no "connection lost" for its dropped sockets, the rows say connected.
  const lost = pg.psql(`SELECT count(*) FROM whatsapp_session_status_history WHERE changed_at >
    to_timestamp(${t0} / 1000.0) AND reason LIKE '%connection lost%'`);
  assert.equal(lost[0][0], '0');
  const rows = pg.psql("SELECT count(*) FROM whatsapp_sessions WHERE connection_status = 'connected'");
  assert.equal(rows[0][0], String(N));
});

test('a graceful stop hands the sessions over at once', async (t) => {
  // n2 is back in the game: it takes its share from n3 (n3 hands over), then n3 stops.
  await waitFor('n2 to take a share again', async () => (await cluster('n2')).held >= 25, { timeoutMs: 30000 });
  await waitFor('all 60 logged in', async () => (await loggedIn()) === N, { timeoutMs: 20000 });
  const t0 = Date.now();
  const e = await nodes.n3.stop();
  assert.equal(e.code, 0);
  delete nodes.n3;
  await waitFor('n2 to hold all 60', async () => (await cluster('n2')).held === N, { timeoutMs: 20000 });
  const took = Date.now() - t0;
  t.diagnostic(`n2 held all 60 ${took} ms after the stop began`);
  // Handed over, not expired: well within one lease time (5 s).
  assert.ok(took < 4000, `took ${took} ms`);
  await waitFor('all 60 logged in through n2', async () => (await loggedIn()) === N, { timeoutMs: 20000 });
  assert.equal(await overlaps(), 0);
  const c = await cluster('n2');
  assert.equal(c.nodes.filter((n) => n.live).length, 1);
});
