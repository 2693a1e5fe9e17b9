// Packaging, end to end: cmake --install into a DESTDIR, the installed binary run against the mock with the
// installed layout's defaults (state in $STATE_DIRECTORY, the dashboard from share/wagate/web), the systemd
// unit verified by systemd-analyze, the man page rendered and covering every variable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMock } from '../interop/lib/mock.mjs';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';
import { startServe, waitSession } from './serve.mjs';

const BUILD = path.dirname(WAGATE_BIN);
const SEED = path.join(BUILD, 'bench', 'wagate-bench-seed');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-install-'));
const dest = path.join(dir, 'dest');
let mock;
let prefix;

before(async () => {
  mock = await startMock({ acceptAnyLogin: true, extraArgs: ['--prekeys-known', '30'] });
  execFileSync('cmake', ['--install', BUILD], { env: { ...process.env, DESTDIR: dest }, stdio: 'ignore' });
  prefix = JSON.parse(execFileSync('cmake', ['-L', '-N', BUILD], { encoding: 'utf8' })
    .split('\n').filter((l) => l.startsWith('CMAKE_INSTALL_PREFIX:'))
    .map((l) => JSON.stringify(l.split('=')[1]))[0]);
});

after(async () => {
  await mock?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('cmake --install lays out the binary, the dashboard, the man page, the unit and the example environment', () => {
  const root = path.join(dest, prefix);
  for (const f of ['bin/wagate', 'share/wagate/web/index.html', 'share/man/man8/wagate.8', 'lib/systemd/system/wagate.service',
    'share/doc/wagate/wagate.env.example', 'share/doc/wagate/LICENSE']) {
    assert.ok(fs.existsSync(path.join(root, f)), `${f} is not installed`);
  }
  const v = spawnSync(path.join(root, 'bin/wagate'), ['--version'], { encoding: 'utf8' });
  assert.match(v.stdout, /^wagate \d+\.\d+\.\d+$/m);
});

test('the installed binary: state in $STATE_DIRECTORY, the dashboard from share/wagate/web, a session against the mock', async () => {
  const bin = path.join(dest, prefix, 'bin/wagate');
  const state = path.join(dir, 'state');
  fs.mkdirSync(state, { mode: 0o700 });
  // A paired session in the default database of that state directory.
  execFileSync(bin, ['migrate'], { env: { ...process.env, STATE_DIRECTORY: state, WAGATE_LOG_LEVEL: 'error' } });
  assert.ok(fs.existsSync(path.join(state, 'wagate.db')), 'the default database is not in $STATE_DIRECTORY');
  execFileSync('bash', ['-c', `"${SEED}" --count 1 --phone-base 4475000000 | sqlite3 "${path.join(state, 'wagate.db')}"`]);
  const s = await startServe({ dbFile: null, mock, bin, env: { STATE_DIRECTORY: state, WAGATE_START_STAGGER: '10ms' } });
  try {
    await waitSession(s, '00000000-0000-4000-8000-000000000000', 'connected', (b) => b.connectionStatus === 'connected');
    assert.ok(fs.existsSync(path.join(state, 'wagate.db.key')), 'the sealing key is not beside the database');
    const page = await s.api('GET', '/', { key: null });
    assert.equal(page.status, 200);
    assert.match(page.text, /<html/i);
    const icon = await s.api('GET', '/favicon.ico', { key: null });
    assert.equal(icon.status, 200);
    assert.equal(icon.headers['content-type'], 'image/x-icon');
    assert.equal((await s.api('GET', '/readyz', { key: null })).status, 200);
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
});

test('the systemd unit passes systemd-analyze verify', () => {
  const unit = fs.readFileSync(path.join(dest, prefix, 'lib/systemd/system/wagate.service'), 'utf8');
  assert.match(unit, /^Type=notify$/m);
  assert.match(unit, /^DynamicUser=yes$/m);
  assert.match(unit, /^StateDirectory=wagate$/m);
  assert.match(unit, /^ProtectSystem=strict$/m);
  assert.match(unit, /^WatchdogSec=/m);
  // verify wants ExecStart to exist: point it at the installed copy.
  const copy = path.join(dir, 'wagate.service');
  fs.writeFileSync(copy, unit.replace(/^ExecStart=\S+/m, `ExecStart=${path.join(dest, prefix, 'bin/wagate')}`));
  // It also looks the Documentation= page up: the installed one.
  const r = spawnSync('systemd-analyze', ['verify', copy], { env: { ...process.env, MANPATH: path.join(dest, prefix, 'share/man') }, encoding: 'utf8' });
  const complaints = `${r.stdout}${r.stderr}`.split('\n')
    .filter((l) => l.trim() && !/Failed to (connect to|look up) bus|not running|No such file or directory.*man:/i.test(l));
  assert.equal(r.status === 0 || complaints.length === 0, true, `systemd-analyze: ${r.stdout}${r.stderr}`);
  assert.deepEqual(complaints, []);
});

test('the man page renders without warnings and names every variable and command', () => {
  const page = path.join(dest, prefix, 'share/man/man8/wagate.8');
  const r = spawnSync('man', ['--warnings', '-l', page], { env: { ...process.env, MANWIDTH: '100' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', r.stderr);
  const text = r.stdout.replace(/.\x08/g, '');
  const help = spawnSync(WAGATE_BIN, ['serve', '--help'], { encoding: 'utf8' }).stdout;
  const vars = [...help.matchAll(/^(WAGATE_[A-Z_]+)/gm)].map((m) => m[1]);
  assert.ok(vars.length > 30);
  for (const v of vars) assert.ok(text.includes(v), `${v} is not in the man page`);
  for (const c of ['serve', 'migrate', 'rekey', 'pair', 'connect', 'mock', 'wire', 'help']) assert.match(text, new RegExp(`wagate ${c}`));
  const v = spawnSync(WAGATE_BIN, ['--version'], { encoding: 'utf8' }).stdout.trim();
  assert.ok(text.includes(v), 'the man page does not carry the version');
});

test('under systemd: READY=1 once serving, the watchdog fed from the loop, STOPPING=1 on SIGTERM', async () => {
  const sock = path.join(dir, 'notify.sock');
  // A notify socket like systemd's: every datagram printed on a line of its own.
  const listener = (await import('node:child_process')).spawn('python3', ['-c', `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    print(s.recv(4096).decode().replace("\\n", " "), flush=True)
`, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  let got = '';
  listener.stdout.on('data', (d) => (got += d));
  try {
    const { waitFor } = await import('../interop/lib/mock.mjs');
    await waitFor('the notify socket', () => got.includes('bound'));
    const s = await startServe({ dbFile: path.join(dir, 'notify.db'), mock, env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000' } });
    await waitFor('READY=1', () => /READY=1/.test(got));
    await waitFor('three watchdog pings', () => (got.match(/WATCHDOG=1/g) ?? []).length >= 3, { timeoutMs: 5000 });
    assert.equal((await s.stop()).code, 0);
    assert.match(got, /STOPPING=1/);
    assert.ok(got.indexOf('READY=1') < got.indexOf('STOPPING=1'));
  } finally {
    listener.kill();
  }
});
