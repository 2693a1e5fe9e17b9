// The example Next.js app (examples/nextjs) built with `next build` against the package as the build made it,
// then run against wagate serve and the mock, in Chromium: the sign-in guards the dashboard; the dot in the
// header and the badge in the sidebar turn green, red when the mock kills the socket (pushed through the app's
// own event proxy), and green again after "Try Reconnect" (a server action). The key never reaches the browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startMock, waitFor, freePort } from '../interop/lib/mock.mjs';
import { startServe, seedSessions, API_KEY } from '../e2e/serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..', '..');
const EX = path.join(ROOT, 'examples', 'nextjs');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PASSWORD = 'example-password-0123';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-nextjs-'));
let mock;
let serve;
let app;
let browser;
let page;
let base;
let appLog = '';
let jid;
// Everything the browser received (but the event stream, which does not end): none may hold the key.
const received = [];
const artifacts = path.join(ROOT, 'build', 'browser-artifacts');

before(async () => {
  // The package as `make` built it, copied in as npm would from a registry (examples/nextjs/.npmrc).
  const pkg = path.join(EX, 'node_modules', '@wagate', 'web');
  fs.rmSync(pkg, { recursive: true, force: true });
  fs.mkdirSync(pkg, { recursive: true });
  for (const f of ['package.json', 'README.md', 'LICENSE', 'dist-lib']) fs.cpSync(path.join(ROOT, 'web', f), path.join(pkg, f), { recursive: true });
  execFileSync(path.join(EX, 'node_modules', '.bin', 'next'), ['build'], { cwd: EX, env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' }, stdio: 'ignore' });

  mock = await startMock({ acceptAnyLogin: true, extraArgs: ['--prekeys-known', '30'] });
  const dbFile = path.join(dir, 'wagate.db');
  [{ jid }] = seedSessions(dbFile, 1, 4469000000);
  // Slow automatic recovery, so only "Try Reconnect" brings the session back after the kill.
  serve = await startServe({ dbFile, mock, env: { WAGATE_START_STAGGER: '10ms', WAGATE_RECONNECT_BACKOFF: '60s,5m', WAGATE_RECOVERY_INTERVAL: '10m' } });

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  app = spawn(path.join(EX, 'node_modules', '.bin', 'next'), ['start', '-p', String(port), '-H', '127.0.0.1'], {
    cwd: EX,
    env: {
      ...process.env,
      NEXT_TELEMETRY_DISABLED: '1',
      WAGATE_URL: `http://127.0.0.1:${serve.port}`,
      WAGATE_API_KEY: API_KEY,
      EXAMPLE_PASSWORD: PASSWORD,
      EXAMPLE_INSECURE_COOKIE: '1', // plain http on loopback here
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  app.stdout.on('data', (d) => (appLog += d));
  app.stderr.on('data', (d) => (appLog += d));
  await waitFor('next start', async () => {
    try {
      return (await fetch(`${base}/sign-in`)).status === 200;
    } catch {
      return false;
    }
  }, { timeoutMs: 30000 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  page = await browser.newPage();
  page.on('response', (r) => {
    if (/text\/event-stream/.test(r.headers()['content-type'] || '')) return;
    received.push(r.body().then((b) => ({ url: r.url(), body: b.toString('latin1') }), () => null));
  });
  fs.mkdirSync(artifacts, { recursive: true });
});

after(async () => {
  await browser?.close();
  app?.kill('SIGTERM');
  await serve?.stop();
  await mock?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const dot = () => page.getByTestId('wa-status-dot');

test('the dashboard needs a sign-in; the event proxy refuses a stranger; a wrong password is said', async () => {
  await page.goto(`${base}/dashboard`);
  await page.waitForURL(/\/sign-in$/);
  const r = await fetch(`${base}/api/whatsapp/events`);
  assert.equal(r.status, 401);
  await page.fill('#password', 'wrong');
  await page.click('button[type=submit]');
  // (Next's route announcer is an empty role="alert" of its own: the form's is p.error.)
  await page.locator('p.error').waitFor();
  assert.match(await page.locator('p.error').innerText(), /not right/);
});

test('signed in: the dot and the badge turn green, red after a kill, green after "Try Reconnect"', async () => {
  await page.fill('#password', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/dashboard$/);
  await waitFor('the dot to turn green', async () => (await dot().getAttribute('data-status')) === 'connected', { timeoutMs: 20000 });
  assert.match(await page.getByTestId('wa-status-badge').innerText(), /WhatsApp Connected/);
  const html = await page.content();
  assert.ok(!html.includes(API_KEY), 'the API key reached the browser');
  await page.screenshot({ path: path.join(artifacts, 'nextjs-01-green.png'), fullPage: true });

  assert.equal((await mock.post('/refuse', { on: true })).status, 200);
  const live = (await mock.connections()).find((c) => c.jid === jid && c.state === 'login');
  assert.ok(live);
  const t0 = Date.now();
  assert.equal((await mock.post(`/connections/${live.id}/kill`)).status, 200);
  await waitFor('the dot to turn red', async () => (await dot().getAttribute('data-status')) !== 'connected', { timeoutMs: 10000, intervalMs: 20 });
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 2000, `red after ${elapsed} ms (pushed through the example's event proxy)`);
  assert.match(await page.getByTestId('wa-status-badge').innerText(), /WhatsApp Offline/);
  await page.screenshot({ path: path.join(artifacts, 'nextjs-02-red.png'), fullPage: true });

  assert.equal((await mock.post('/refuse', { on: false })).status, 200);
  await dot().click();
  await page.getByTestId('wa-popover-reconnect').click();
  await waitFor('the dot to turn green again', async () => (await dot().getAttribute('data-status')) === 'connected', { timeoutMs: 20000 });
  await page.screenshot({ path: path.join(artifacts, 'nextjs-03-green-again.png'), fullPage: true });
  assert.ok(!/Error:|Unhandled/.test(appLog), appLog.slice(-2000));
});

test('no file the browser received holds the API key', async () => {
  const bodies = (await Promise.all(received)).filter(Boolean);
  assert.ok(bodies.length >= 5, `only ${bodies.length} responses seen`);
  assert.ok(bodies.some((b) => /\.js(\?|$)/.test(b.url)), 'the scripts were seen');
  for (const b of bodies) assert.ok(!b.body.includes(API_KEY), `the API key is in ${b.url}`);
});
