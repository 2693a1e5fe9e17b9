// The dashboard in a real browser: Debian's Chromium, driven headless by playwright-core, against
// `wagate serve` (serving the built dashboard) and `wagate mock`. Sign in; pair a session through the
// QR page and the mock's /scan → the dot turns green; the mock kills the socket → red in under 2 s and
// the popover shows the error; "Try Reconnect" → green; the tab hidden → no polls while hidden; the
// whole flow by keyboard. Screenshots of each state go to build/browser-artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startMock, waitFor } from '../interop/lib/mock.mjs';
import { startServe, API_KEY } from '../e2e/serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.resolve(here, '..', '..', 'build', 'browser-artifacts');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-browser-'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Poll fast so the polling rules are observable in seconds; the stream is on unless events=0.
const QUERY = '?pollMs=400&deepPollMs=2000&retryMs=200&qrMs=500';
let mock;
let serve;
let browser;
let page;
let base;
let sessionId;
let jid;

async function shot(name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

const dot = () => page.getByTestId('wa-status-dot');
async function dotLabel() {
  return (await dot().getAttribute('aria-label')) || '';
}

before(async () => {
  fs.mkdirSync(artifacts, { recursive: true });
  mock = await startMock({ stateFile: path.join(dir, 'mock-state.json') });
  // Slow automatic recovery: after the outage only "Try Reconnect" may bring the session back, so the
  // button cannot be raced (and removed from the popover) by the supervisor's own retry.
  serve = await startServe({
    dbFile: path.join(dir, 'wagate.db'),
    mock,
    env: { WAGATE_RECONNECT_BACKOFF: '60s,5m', WAGATE_RECOVERY_INTERVAL: '10m' },
  });
  base = `http://127.0.0.1:${serve.port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  page = await ctx.newPage();
});

after(async () => {
  await browser?.close();
  await serve?.stop().catch(() => {});
  await mock?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('sign in with the API key; it is never kept in browser storage', async () => {
  await page.goto(`${base}/${QUERY}`);
  await page.getByTestId('login-form').waitFor();
  await page.getByTestId('login-key').fill('wrong-key-wrong-key');
  await page.getByTestId('login-submit').click();
  await page.getByRole('alert').first().waitFor();
  await page.getByTestId('login-key').fill(API_KEY);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('add-session').waitFor();
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert.ok(!stored.includes(API_KEY), 'the key is not in localStorage, sessionStorage or a script-readable cookie');
  const cookies = await page.context().cookies();
  const c = cookies.find((x) => x.name === 'wagate_session');
  assert.ok(c, 'a session cookie is set');
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, 'Strict');
  await shot('01-signed-in');
});

test('with no session: an empty state that leads to "Add session", never "Reconnecting…"', async () => {
  const empty = page.getByTestId('sessions-empty');
  await empty.waitFor();
  await waitFor('the badge to say there is no session', async () =>
    /No WhatsApp session/.test(await page.getByTestId('wa-status-badge').innerText()));
  await dot().click();
  await page.getByTestId('wa-status-empty').waitFor();
  assert.equal(await page.getByTestId('wa-popover-reconnect').count(), 0, 'no "Try Reconnect" without a session');
  assert.equal(await page.getByTestId('wa-popover-add-session').getAttribute('href'), '/new-session');
  assert.ok(!/Reconnecting/.test(await page.locator('body').innerText()), 'not "Reconnecting…"');
  await shot('01b-empty-state');
  await page.getByTestId('wa-popover-add-session').click();
  await page.getByTestId('add-session-form').waitFor();
  await page.goto(`${base}/${QUERY}`);
  await page.getByTestId('add-session').waitFor();
});

test('pair a session through the QR page and the mock\'s /scan: the dot turns green', async () => {
  await page.getByTestId('add-session').click();
  await page.getByTestId('add-session-submit').click();
  await page.getByTestId('qr-image').waitFor({ timeout: 15000 });
  await shot('02-pairing-qr');
  // The phone reads the QR code on the screen; here the test reads the same text through the API.
  const list = await serve.api('GET', '/sessions');
  const pairing = list.body.find((s) => s.connectionStatus === 'qr_pending');
  assert.ok(pairing, JSON.stringify(list.body));
  sessionId = pairing.sessionId;
  const qr = await waitFor('the QR text', async () => {
    const r = await serve.api('GET', `/sessions/${sessionId}/qr`);
    return r.status === 200 ? r.body.qr : null;
  });
  const scan = await mock.post('/scan', { qr, phone: '27821231234' });
  assert.equal(scan.status, 200, JSON.stringify(scan.body));
  jid = scan.body.jid;
  await waitFor('the dot to turn green', async () => (await dotLabel()) === 'WhatsApp: Connected', { timeoutMs: 15000 });
  assert.equal(await dot().getAttribute('data-status'), 'connected');
  await page.getByTestId('wa-status-badge').waitFor();
  assert.match(await page.getByTestId('wa-status-badge').innerText(), /WhatsApp Connected/);
  await shot('03-connected');
});

test('the mock kills the socket: red in under 2 s, and the popover shows the error', async () => {
  // Refuse new connections first, so the supervisor's immediate reconnect cannot hide the outage.
  assert.equal((await mock.post('/refuse', { on: true })).status, 200);
  const conns = await mock.connections();
  const live = conns.find((c) => c.jid === jid && c.state === 'login');
  assert.ok(live);
  const t0 = Date.now();
  assert.equal((await mock.post(`/connections/${live.id}/kill`)).status, 200);
  await waitFor('the dot to turn red', async () => (await dotLabel()) === 'WhatsApp: Disconnected - Click for details', { timeoutMs: 5000, intervalMs: 20 });
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 2000, `red after ${elapsed} ms`);
  assert.match(await page.getByTestId('wa-status-badge').innerText(), /WhatsApp Offline/);
  await shot('04-disconnected');
  await dot().click();
  const pop = page.getByTestId('wa-status-popover');
  await pop.waitFor();
  await page.getByTestId('wa-status-error').waitFor();
  assert.ok((await page.getByTestId('wa-status-error').innerText()).length > 0);
  // It says which session it follows.
  assert.match(await page.getByTestId('wa-status-session').innerText(), /Session:\s*primary/);
  assert.equal(await dot().getAttribute('data-session-id'), sessionId);
  await shot('05-popover-error');
});

test('"Try Reconnect" turns it green again', async () => {
  assert.equal((await mock.post('/refuse', { on: false })).status, 200);
  await page.getByTestId('wa-popover-reconnect').click();
  await waitFor('the dot to turn green', async () => (await dotLabel()) === 'WhatsApp: Connected', { timeoutMs: 20000 });
  await shot('06-reconnected');
  await page.keyboard.press('Escape');
});

test('the tab hidden: no polls while hidden, one at once when visible again', async () => {
  // Polling only (events=0), every 300 ms (also while the server is young: restartMs).
  await page.goto(`${base}/?pollMs=300&restartMs=300&deepPollMs=60000&events=0`);
  await page.getByTestId('add-session').waitFor();
  const polls = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/health') polls.push(Date.now());
  });
  await waitFor('polling', async () => polls.length >= 2, { timeoutMs: 5000 });
  const setHidden = (hidden) => page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
  await setHidden(true);
  await new Promise((r) => setTimeout(r, 300)); // a poll already in flight may land
  const hiddenFrom = polls.length;
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(polls.length, hiddenFrom, 'no polls while hidden');
  const t = Date.now();
  await setHidden(false);
  await waitFor('a poll at once', async () => polls.length > hiddenFrom, { timeoutMs: 2000, intervalMs: 20 });
  assert.ok(polls[hiddenFrom] - t < 250, `first poll ${polls[hiddenFrom] - t} ms after showing`);
  await shot('07-visible-again');
});

test('usable by keyboard alone: open the session, open the popover, close it', async () => {
  await page.goto(`${base}/${QUERY}`);
  await page.getByTestId('add-session').waitFor();
  // Tab through until the dot has focus, open it with Enter, close with Escape.
  let focused = '';
  for (let i = 0; i < 40 && focused !== 'wa-status-dot'; i++) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement?.getAttribute('data-testid') || '');
  }
  assert.equal(focused, 'wa-status-dot', 'the dot is reachable with Tab');
  await page.keyboard.press('Enter');
  await page.getByTestId('wa-status-popover').waitFor();
  await page.keyboard.press('Escape');
  await page.getByTestId('wa-status-popover').waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'wa-status-dot', 'focus returns to the dot');
  // A session row is reachable and opens with Enter; its page has the timeline.
  for (let i = 0; i < 40 && focused !== 'session-link'; i++) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement?.closest('[data-testid="session-row"]') ? 'session-link' : '');
  }
  assert.equal(focused, 'session-link', 'a session row is reachable with Tab');
  await page.keyboard.press('Enter');
  await page.getByTestId('history-timeline').waitFor();
  await page.getByTestId('session-reconnect-button').focus();
  await shot('08-session-page');
  void sessionId;
});

test('"Pair again" after a logout pairs a new device under the same session id', async () => {
  await page.goto(`${base}/session/${sessionId}${QUERY}`);
  await page.getByTestId('session-logout-button').waitFor();
  assert.equal(await page.getByTestId('session-pair-button').count(), 0, 'no "Pair again" while paired');
  page.once('dialog', (d) => d.accept());
  await page.getByTestId('session-logout-button').click();
  await page.getByTestId('session-pair-button').waitFor({ timeout: 10000 });
  await shot('09-logged-out');
  await page.getByTestId('session-pair-button').click();
  await page.getByTestId('qr-image').waitFor({ timeout: 15000 });
  const qr = await waitFor('the new QR text', async () => {
    const r = await serve.api('GET', `/sessions/${sessionId}/qr`);
    return r.status === 200 ? r.body.qr : null;
  });
  const scan = await mock.post('/scan', { qr, phone: '27821231234' });
  assert.equal(scan.status, 200, JSON.stringify(scan.body));
  await waitFor('the session connected again', async () => {
    const r = await serve.api('GET', `/sessions/${sessionId}`);
    return r.body.connectionStatus === 'connected' && r.body.paired === true;
  }, { timeoutMs: 15000 });
  const list = await serve.api('GET', '/sessions');
  assert.equal(list.body.filter((s) => s.sessionId === sessionId).length, 1, 'the same id, no new session');
  await shot('10-paired-again');
});

/** The page is no wider than the window: nothing to scroll sideways. */
async function overflowX() {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

test('a phone-width layout (390 px): no sideways scrolling, the sessions as cards, the badge on one line', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    await page.goto(`${base}/${QUERY}`);
    const row = page.getByTestId('session-row').first();
    await row.waitFor();
    await waitFor('the session connected', async () => (await row.getAttribute('data-status')) === 'connected', { timeoutMs: 15000 });
    assert.ok((await overflowX()) <= 0, `the page scrolls sideways by ${await overflowX()} px`);
    // A card: the row as wide as the content, each fact with its label.
    const box = await row.boundingBox();
    assert.ok(box.width <= 390 && box.width > 300, `row width ${box.width}`);
    const labels = await row.locator('td').evaluateAll((tds) => tds.map((td) => getComputedStyle(td, '::before').content));
    assert.ok(labels.includes('"Last connected"'), `labels: ${labels}`);
    assert.equal(await row.evaluate((tr) => getComputedStyle(tr).display), 'block');
    // The badge's label stays on one line.
    const label = page.locator('.wa-badge__label');
    const lh = await label.evaluate((el) => [el.getBoundingClientRect().height, parseFloat(getComputedStyle(el).lineHeight)]);
    assert.ok(lh[0] <= lh[1] * 1.2, `badge label height ${lh[0]} for a line of ${lh[1]}`);
    await shot('11-phone-390-sessions');
    await page.goto(`${base}/session/${sessionId}${QUERY}`);
    await page.getByTestId('history-timeline').waitFor();
    assert.ok((await overflowX()) <= 0, 'the session page fits');
    // The phone masked here too, until asked for.
    assert.ok(!(await page.locator('body').innerText()).includes('27821231234'), 'the phone is masked');
    assert.match(await page.getByTestId('session-phone').innerText(), /\+27 \*\*\*\* 1234/);
    await page.getByTestId('session-phone-toggle').click();
    assert.match(await page.getByTestId('session-phone').innerText(), /\+27821231234/);
    await shot('12-phone-390-session');
    await page.setViewportSize({ width: 360, height: 740 });
    await page.goto(`${base}/${QUERY}`);
    await page.getByTestId('session-row').first().waitFor();
    assert.ok((await overflowX()) <= 0, 'fits at 360 px too');
  } finally {
    await page.setViewportSize({ width: 1200, height: 800 });
  }
});

test('a dark theme when the system asks for one', async () => {
  await page.emulateMedia({ colorScheme: 'dark' });
  try {
    await page.goto(`${base}/${QUERY}`);
    await page.getByTestId('session-row').first().waitFor();
    const luminance = (css) => {
      const [r, g, b] = css.match(/\d+/g).map(Number);
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const fg = await page.evaluate(() => getComputedStyle(document.body).color);
    assert.ok(luminance(bg) < 60, `dark background: ${bg}`);
    assert.ok(luminance(fg) > 180, `light text: ${fg}`);
    await page.getByTestId('wa-status-badge').locator('button').first().click();
    await shot('13-dark-theme');
    await page.emulateMedia({ colorScheme: 'light' });
    assert.ok(luminance(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)) > 200, 'light again');
  } finally {
    await page.emulateMedia({ colorScheme: null });
  }
});

test('follow one session: the dot and the badge say which, and the choice holds', async () => {
  // A second session (not paired): following it turns the dot red; following "primary" again turns it green.
  const other = await serve.api('POST', '/sessions', { body: { sessionName: 'shop', autoConnect: false } });
  assert.equal(other.status, 201, JSON.stringify(other.body));
  const otherId = other.body.sessionId;
  await page.goto(`${base}/session/${otherId}${QUERY}`);
  await page.getByTestId('session-follow').click();
  await waitFor('the dot to follow "shop"', async () => (await dot().getAttribute('data-session-id')) === otherId);
  assert.equal(await dot().getAttribute('data-status'), 'disconnected');
  await page.goto(`${base}/${QUERY}`);
  await page.getByTestId('session-followed').waitFor();
  assert.equal(await page.locator(`[data-session-id="${otherId}"] [data-testid="session-followed"]`).count(), 1);
  await page.getByTestId('wa-status-badge').locator('button').first().click();
  assert.equal(await page.getByTestId('wa-badge-session').innerText(), 'shop');
  await page.goto(`${base}/session/${otherId}${QUERY}`);
  await page.getByTestId('session-unfollow').click();
  await waitFor('the dot back on primary', async () => (await dot().getAttribute('data-session-id')) === sessionId);
  await waitFor('green again', async () => (await dot().getAttribute('data-status')) === 'connected', { timeoutMs: 10000 });
  assert.equal((await serve.api('DELETE', `/sessions/${otherId}`)).status, 204);
});

test('the sign-in survives a server restart; one the server no longer accepts returns to the sign-in page', async () => {
  await page.goto(`${base}/${QUERY}`);
  await waitFor('green', async () => (await dotLabel()) === 'WhatsApp: Connected', { timeoutMs: 15000 });
  const port = serve.port;
  const restart = async () => {
    await serve.stop();
    serve = await startServe({
      dbFile: path.join(dir, 'wagate.db'),
      mock,
      port,
      env: { WAGATE_RECONNECT_BACKOFF: '60s,5m', WAGATE_RECOVERY_INTERVAL: '10m' },
    });
  };
  await restart();
  // The same page, no reload: the stream comes back and the session reconnects; still signed in.
  await waitFor('green after the restart', async () => (await dotLabel()) === 'WhatsApp: Connected', { timeoutMs: 20000 });
  assert.equal(await page.getByTestId('login-form').count(), 0, 'still signed in');
  await shot('14-after-restart');
  // Now a sign-in the server does not accept (expired or revoked: here the cookie is gone), and a restart.
  await page.context().clearCookies();
  await restart();
  await page.getByTestId('login-form').waitFor({ timeout: 10000 });
  assert.equal(await dot().count(), 0, 'no status shown while signed out');
  await shot('15-signed-out-after-restart');
});
