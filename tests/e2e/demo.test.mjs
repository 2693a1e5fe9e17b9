// make demo, as a newcomer runs it: scripts/demo.sh starts the mock and wagate serve, pairs a session, and
// prints the dashboard's address and the key to sign in with. Its ports are taken from WAGATE_LISTEN, or
// free ones are picked when the defaults are busy; a busy port the user chose is a clear error.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '../interop/lib/mock.mjs';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';
import { request } from './serve.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-demo-'));
const running = new Set();

after(() => {
  for (const p of running) p.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

function runDemo(env) {
  const child = spawn('bash', ['scripts/demo.sh'], {
    cwd: root,
    env: { ...process.env, WAGATE_BIN, DEMO_DIR: path.join(dir, 'demo'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: a Ctrl-C reaches the script and the servers it started
  });
  running.add(child);
  const out = { stdout: '', stderr: '', exit: null };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
    running.delete(child);
    out.exit = { code, signal };
    resolve(out.exit);
  }));
  return { child, out, exited };
}

/** Holds a port on 127.0.0.1 until closed. */
async function occupy(port) {
  const srv = net.createServer();
  await new Promise((resolve, reject) => srv.once('error', reject).listen(port, '127.0.0.1', resolve));
  return srv;
}

test('it prints the dashboard address and the key; the key signs in; Ctrl-C stops everything', async () => {
  const port = await freePort();
  const d = runDemo({ WAGATE_LISTEN: `127.0.0.1:${port}`, DEMO_MOCK_LISTEN: '127.0.0.1:0', DEMO_MOCK_CONTROL: '127.0.0.1:0' });
  await waitFor('the banner', async () => /Ctrl-C stops both/.test(d.out.stdout) || d.out.exit, { timeoutMs: 40000 });
  assert.equal(d.out.exit, null, `the demo ended: ${d.out.stderr}`);
  const url = /dashboard:\s+(\S+)/.exec(d.out.stdout)?.[1];
  const key = /demo key:\s+(\S+)/.exec(d.out.stdout)?.[1];
  assert.equal(url, `http://127.0.0.1:${port}/`);
  assert.ok(key && key.length >= 16, d.out.stdout);
  const page = await request(port, 'GET', '/', { key: null });
  assert.equal(page.status, 200);
  assert.match(page.headers['content-type'], /text\/html/);
  const list = await request(port, 'GET', '/sessions', { key });
  assert.equal(list.status, 200, list.text);
  assert.ok(list.body.some((s) => s.connectionStatus === 'connected'), list.text);
  // The key is kept for the next run, readable by its owner only.
  const keyFile = path.join(dir, 'demo', 'api-key');
  assert.equal(fs.readFileSync(keyFile, 'utf8').trim(), key);
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  process.kill(-d.child.pid, 'SIGINT');
  await d.exited;
  await assert.rejects(request(port, 'GET', '/health', { key: null, timeoutMs: 1000 }), 'nothing listens any more');
});

test('a busy default port: another one is picked, and said so', async () => {
  // The default 127.0.0.1:8080 may be free or not on this machine: occupy it for the test.
  let held = null;
  try {
    held = await occupy(8080);
  } catch {
    /* busy already: the case under test */
  }
  try {
    const d = runDemo({ WAGATE_LISTEN: '', DEMO_MOCK_LISTEN: '127.0.0.1:0', DEMO_MOCK_CONTROL: '127.0.0.1:0' });
    await waitFor('the banner', async () => /Ctrl-C stops both/.test(d.out.stdout) || d.out.exit, { timeoutMs: 40000 });
    assert.equal(d.out.exit, null, `the demo ended: ${d.out.stderr}`);
    assert.match(d.out.stderr, /8080/, 'it says the default port was busy');
    const url = /dashboard:\s+http:\/\/127\.0\.0\.1:(\d+)\//.exec(d.out.stdout);
    assert.ok(url && url[1] !== '8080', d.out.stdout);
    assert.equal((await request(Number(url[1]), 'GET', '/health', { key: null })).status, 200);
    process.kill(-d.child.pid, 'SIGINT');
    await d.exited;
  } finally {
    held?.close();
  }
});

test('a busy port the user chose: a clear error naming WAGATE_LISTEN, before anything starts', async () => {
  const port = await freePort();
  const held = await occupy(port);
  try {
    const d = runDemo({ WAGATE_LISTEN: `127.0.0.1:${port}`, DEMO_MOCK_LISTEN: '127.0.0.1:0', DEMO_MOCK_CONTROL: '127.0.0.1:0' });
    const exit = await d.exited;
    assert.notEqual(exit.code, 0);
    assert.match(d.out.stderr, /WAGATE_LISTEN/);
    assert.match(d.out.stderr, new RegExp(String(port)));
    assert.doesNotMatch(d.out.stdout, /Ctrl-C stops both/);
  } finally {
    held.close();
  }
});
