// Hardening: serve out of descriptors pauses accepting instead of spinning; a stop signal sent while it
// starts is a graceful stop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startMock, waitFor, sleep } from '../interop/lib/mock.mjs';
import { spawn } from 'node:child_process';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';
import { startServe, waitSession, seedSessions } from './serve.mjs';

let mock;
let dir;

before(async () => {
  mock = await startMock({ acceptAnyLogin: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-flood-'));
});

after(async () => {
  await mock?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** utime + stime of a process, in ms (10 ms ticks). */
function cpuMs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * 10;
}

test('out of descriptors, the API pauses accepting and says so once, instead of spinning', async () => {
  // 64 descriptors in all, hard and soft: serve cannot raise them, and 80 clients take what is left
  // (the connection cap, 16 by default here, is set above the descriptors for this test).
  const serve = await startServe({
    dbFile: path.join(dir, 'db'), mock, wrap: ['prlimit', '--nofile=64:64', '--'],
    env: { WAGATE_HTTP_MAX_CONNECTIONS: '1000' },
  });
  try {
    assert.match(serve.stderr(), /descriptors: 64/);
    const socks = [];
    for (let i = 0; i < 80; i++) {
      const s = net.connect(serve.port, '127.0.0.1');
      s.on('error', () => {});
      socks.push(s);
    }
    await waitFor('serve to run out of descriptors', () => /cannot accept connections/.test(serve.stderr()), { timeoutMs: 10000 });
    const cpu0 = cpuMs(serve.child.pid);
    await sleep(3000);
    const cpu = cpuMs(serve.child.pid) - cpu0;
    // A busy loop would take about the whole 3 s of a core; paused, it waits.
    assert.ok(cpu < 600, `serve used ${cpu} ms of CPU in 3 s while out of descriptors`);
    const lines = serve.stderr().split('\n');
    assert.ok(lines.filter((l) => /cannot accept connections/.test(l)).length <= 2, 'said more than once');
    assert.equal(lines.filter((l) => /Error from accept/.test(l)).length, 0);
    // The clients go: the API answers again.
    for (const s of socks) s.destroy();
    const h = await waitFor('/health to answer again', async () => {
      try {
        const r = await serve.api('GET', '/health', { key: null, timeoutMs: 2000 });
        return r.status === 200 ? r : null;
      } catch {
        return null;
      }
    }, { timeoutMs: 10000 });
    assert.equal(h.body.status, 'ok');
  } finally {
    await serve.stop();
  }
});

/** Descriptors serve has open (sockets, files). */
function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

test('a slow-headers flood is cut at the request deadline and held to the cap; /health still answers', async () => {
  // The attack: many connections, each sending one header line now and then, never ending its request.
  const serve = await startServe({
    dbFile: path.join(dir, 'slow'), mock,
    env: { WAGATE_HTTP_MAX_CONNECTIONS: '40', WAGATE_HTTP_REQUEST_TIMEOUT: '1s' },
  });
  const socks = [];
  let closedByServer = 0;
  let answered408 = 0;
  let most = 0;
  const trickle = setInterval(() => {
    for (const s of socks) if (!s.destroyed) s.write('X-Slow: 1\r\n');
  }, 200);
  const fd0 = fdCount(serve.child.pid);
  const sample = setInterval(() => { most = Math.max(most, fdCount(serve.child.pid) - fd0); }, 50);
  const open = (n) => {
    for (let i = 0; i < n; i++) {
      const s = net.connect(serve.port, '127.0.0.1');
      s.on('error', () => {});
      s.on('data', (d) => { if (/^HTTP\/1\.1 408 /.test(d.toString())) answered408++; });
      s.on('end', () => { closedByServer++; });
      s.write('GET /health HTTP/1.1\r\nHost: x\r\n');
      socks.push(s);
    }
  };
  try {
    open(40); // the cap, all busy in their requests
    await sleep(300);
    open(160); // wait in the kernel's queue while the cap holds
    await waitFor('the cap to be reached and said', () => /HTTP connections are open, the most allowed/.test(serve.stderr()), { timeoutMs: 5000 });
    // A probe waits its turn behind the flood, but is answered: each second the deadline frees the cap.
    const r = await serve.api('GET', '/health', { key: null, timeoutMs: 15000 });
    assert.equal(r.status, 200);
    await waitFor('every slow connection to be closed by serve', () => closedByServer === 200, { timeoutMs: 40000 });
    assert.ok(answered408 >= 40, `only ${answered408} answers 408`);
    assert.ok(most <= 40 + 3, `serve held ${most} more descriptors than before the flood (cap 40)`);
    const again = await serve.api('GET', '/health', { key: null, timeoutMs: 2000 });
    assert.equal(again.status, 200);
  } finally {
    clearInterval(trickle);
    clearInterval(sample);
    for (const s of socks) s.destroy();
    await serve.stop();
  }
});

test('a frame that stops half-way ends the connection at the keepalive timeout, not the next ping', async () => {
  const dbFile = path.join(dir, 'partial.db');
  seedSessions(dbFile, 1, 4477000000);
  const id = '00000000-0000-4000-8000-000000000000';
  // Pings a minute apart: only the frame's own deadline (1 s) can end it within the test.
  const serve = await startServe({
    dbFile, mock,
    env: { WAGATE_KEEPALIVE_INTERVAL: '60s', WAGATE_KEEPALIVE_TIMEOUT: '1s', WAGATE_START_STAGGER: '10ms', WAGATE_RECONNECT_BACKOFF: '30s,5m' },
  });
  try {
    await waitSession(serve, id, 'connected', (b) => b.connectionStatus === 'connected');
    const r = await mock.post(`/connections/${encodeURIComponent('4477000000:1@s.whatsapp.net')}/partial-frame`, {});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const b = await waitSession(serve, id, 'the half frame noticed', (x) => /a frame stopped half-way/.test(x.lastError ?? ''), 10000);
    assert.notEqual(b.supervisorState, 'connected');
  } finally {
    await serve.stop();
  }
});

test('SIGTERM in the first moments of start stops serve gracefully, not by the signal', async () => {
  for (let i = 0; i < 3; i++) {
    const db = path.join(dir, `sig-${i}.db`);
    const child = spawn(WAGATE_BIN, ['serve'], {
      env: { ...process.env, WAGATE_DATABASE: `sqlite:${db}`, WAGATE_LISTEN: '127.0.0.1:0', WAGATE_API_KEY: 'e2e-signal-key-0123456789' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    let sent = false;
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    child.stderr.on('data', (d) => {
      err += d;
      // Its first line: the database and the API are not even open yet.
      if (!sent && /descriptors/.test(err)) {
        sent = true;
        child.kill('SIGTERM');
      }
    });
    const e = await exited;
    assert.ok(sent, err);
    assert.deepEqual(e, { code: 0, signal: null }, err);
    assert.match(err, /stopped/);
  }
});
