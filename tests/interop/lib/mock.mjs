// Starts and stops `wagate mock` for the interop tests.
//
//   const mock = await startMock();          // picks free loopback ports, waits for the root-pubkey line
//   mock.url                                 // ws://127.0.0.1:PORT/ws/chat
//   await mock.connections()                 // GET http://CONTROL/connections (parsed JSON array)
//   await mock.post('/scan', {qr, phone})    // POST a control call: {status, body}
//   await mock.stop()                        // SIGTERM, then SIGKILL after a bound
import { spawn } from 'node:child_process';
import net from 'node:net';
import http from 'node:http';
import { WAGATE_BIN, assertBinary } from './wagate.mjs';
import { track } from './children.mjs';

/** A free TCP port on 127.0.0.1 (bind to port 0, read the port, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with `promise`'s value, or with `onTimeout` after `ms` (the timer does not outlive the race). */
export function within(promise, ms, onTimeout = null) {
  let timer;
  return Promise.race([
    promise,
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(onTimeout), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** GET a JSON document, with a timeout. */
export function getJson(url, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${url}: HTTP ${res.statusCode}: ${body.slice(0, 300)}`));
          return;
        }
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(new Error(`GET ${url}: not JSON (${e.message}): ${body.slice(0, 300)}`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Sends `body` (an object, or a raw string) with `method` to `url`; resolves {status, body} (body parsed if JSON). */
export function requestJson(url, { method = 'POST', body, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request(url, {
      method,
      timeout: timeoutMs,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
        resolve({ status: res.statusCode, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

/**
 * Polls `fn` until it returns a truthy value (which is returned) or `timeoutMs` passes (then throws,
 * including the last value/error seen, described by `what`). `cancelled()` returning true stops it early.
 */
export async function waitFor(what, fn, { timeoutMs = 15000, intervalMs = 100, cancelled = () => false } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    if (cancelled()) throw new Error(`stopped waiting for ${what}`);
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${detail}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Starts `wagate mock`. Options: rootKeyFile, stateFile, acceptAnyLogin, startTimeoutMs (default 10 s), extraArgs.
 * Resolves once the first stdout line `root-pubkey <64 hex>` has been read.
 */
export async function startMock({ rootKeyFile, stateFile, acceptAnyLogin = false, startTimeoutMs = 10000, extraArgs = [] } = {}) {
  assertBinary();
  const port = await freePort();
  let controlPort = await freePort();
  while (controlPort === port) controlPort = await freePort();
  const args = ['mock', '--listen', `127.0.0.1:${port}`, '--control', `127.0.0.1:${controlPort}`];
  if (rootKeyFile) args.push('--root-key-file', rootKeyFile);
  if (stateFile) args.push('--state', stateFile);
  if (acceptAnyLogin) args.push('--accept-any-login');
  args.push(...extraArgs);

  const child = spawn(WAGATE_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  const stdoutLines = [];
  const stderrChunks = [];
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  child.stderr.on('data', (d) => {
    stderrChunks.push(d);
    // keep the last 64 KiB only
    while (stderrChunks.length > 1 && stderrChunks.reduce((s, c) => s + c.length, 0) > 65536) stderrChunks.shift();
  });

  let buf = '';
  let firstLineResolve;
  const firstLine = new Promise((resolve) => {
    firstLineResolve = resolve;
  });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      stdoutLines.push(line);
      if (stdoutLines.length === 1) firstLineResolve(line);
    }
  });

  const stderrText = () => Buffer.concat(stderrChunks).toString('utf8');
  const mock = {
    process: child,
    pid: child.pid,
    port,
    controlPort,
    url: `ws://127.0.0.1:${port}/ws/chat`,
    controlUrl: `http://127.0.0.1:${controlPort}`,
    rootPubKey: null,
    stdoutLines,
    stderr: stderrText,
    exited: () => exited,
    connections: () => getJson(`http://127.0.0.1:${controlPort}/connections`),
    devices: () => getJson(`http://127.0.0.1:${controlPort}/devices`),
    /** POST a control call (path like '/scan'); resolves {status, body}. */
    post: (p, body, opts) => requestJson(`http://127.0.0.1:${controlPort}${p}`, { method: 'POST', body, ...opts }),
    async stop({ termTimeoutMs = 3000 } = {}) {
      if (exited) return exited;
      child.kill('SIGTERM');
      const res = await within(exitPromise, termTimeoutMs);
      if (res) return res;
      child.kill('SIGKILL');
      return within(exitPromise, 2000, { code: null, signal: 'SIGKILL (no exit seen)' });
    },
  };

  let timer;
  const outcome = await Promise.race([
    firstLine.then((line) => ({ line })),
    exitPromise.then((e) => ({ exit: e })),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve({ timeout: true }), startTimeoutMs);
    }),
  ]);
  clearTimeout(timer);
  const fail = async (why) => {
    await mock.stop();
    throw new Error(`wagate mock ${args.join(' ')}: ${why}; stderr: ${stderrText().slice(-2000)}`);
  };
  if (outcome.timeout) await fail(`no root-pubkey line within ${startTimeoutMs} ms`);
  if (outcome.exit) await fail(`exited early (${JSON.stringify(outcome.exit)})`);
  const m = /^root-pubkey ([0-9a-fA-F]{64})$/.exec(outcome.line);
  if (!m) await fail(`first stdout line is not "root-pubkey <64 hex>": ${JSON.stringify(outcome.line)}`);
  mock.rootPubKey = m[1].toLowerCase();

  // The control API may come up a moment after the first line: wait (bounded) until it answers.
  try {
    await waitFor('the control API', async () => Array.isArray(await mock.connections()), { timeoutMs: startTimeoutMs, intervalMs: 50 });
  } catch (e) {
    await fail(e.message);
  }
  return mock;
}
