// Credentials sealed at rest, end to end: a database of plain credentials (as an older wagate wrote them)
// is sealed at start under a key file made with mode 0600; the sessions log in; nothing of the credentials
// is readable in the files; a wrong key is named in lastError; `wagate rekey` re-seals under a new key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { WAGATE_BIN } from '../interop/lib/wagate.mjs';
import { scratchWithMock, startServe, sql, waitSession, seedSessions } from './serve.mjs';

let mock;
const dir = scratchWithMock('seal', (m) => (mock = m));

const N = 3;
const ids = Array.from({ length: N }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
const fileText = (dbFile) => ['', '-wal', '-shm']
  .map((x) => (fs.existsSync(dbFile + x) ? fs.readFileSync(dbFile + x).toString('latin1') : ''))
  .join('');

async function serveOn(dbFile, env = {}) {
  const s = await startServe({ dbFile, mock, env: { WAGATE_START_STAGGER: '10ms', ...env } });
  return s;
}

test('plain credentials are sealed at start, under a key file made 0600; rekey re-seals them', async () => {
  const dbFile = path.join(dir, 'a', 'wagate.db');
  fs.mkdirSync(path.dirname(dbFile), { recursive: true });
  seedSessions(dbFile, N, 4478000000);
  assert.match(fileText(dbFile), /noiseKey/, 'the seeded rows are plain');
  const keyFile = `${dbFile}.key`;

  let s = await serveOn(dbFile);
  try {
    for (const id of ids) await waitSession(s, id, 'connected with sealed credentials', (b) => b.connectionStatus === 'connected');
    assert.match(s.stderr(), new RegExp(`made the key that seals the stored credentials: ${keyFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    assert.match(s.stderr(), /sealed the credentials of 3 session\(s\) stored as plain text/);
  } finally {
    await s.stop();
  }
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  const rows = sql(dbFile, 'SELECT auth_state FROM whatsapp_sessions ORDER BY id');
  assert.equal(rows.length, N);
  for (const [a] of rows) assert.match(a, /^wgs1:[0-9a-f]{8}:/);
  assert.doesNotMatch(fileText(dbFile), /noiseKey|signedIdentityKey|advSecretKey/, 'plain credentials left in the files');
  const dump = execFileSync('sqlite3', [dbFile, '.dump'], { encoding: 'utf8' });
  assert.doesNotMatch(dump, /noiseKey/);
  assert.ok(!dump.includes(fs.readFileSync(keyFile, 'utf8').trim()), 'the key is in the dump');
  const kidBefore = rows[0][0].slice(5, 13);

  // Started under another key: the sessions say which key their credentials need, and are not re-paired.
  const wrong = 'ab'.repeat(32);
  s = await serveOn(dbFile, { WAGATE_SECRET_KEY: wrong });
  try {
    const b = await waitSession(s, ids[0], 'the missing key named', (x) => /sealed under key/.test(x.lastError ?? ''));
    assert.match(b.lastError, new RegExp(kidBefore));
    assert.ok(!s.stderr().includes(wrong), 'the key reached the log');
  } finally {
    await s.stop();
  }
  assert.equal(sql(dbFile, 'SELECT count(*) FROM whatsapp_sessions WHERE auth_state LIKE \'wgs1:%\'')[0][0], String(N));

  // Rekey: a new key in the key file, every row re-sealed under it; the sessions log in again.
  const oldKey = fs.readFileSync(keyFile, 'utf8');
  const r = spawnSync(WAGATE_BIN, ['rekey'], { env: { ...process.env, WAGATE_DATABASE: `sqlite:${dbFile}` }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /re-sealed the credentials of 3 session\(s\) under key [0-9a-f]{8} \(was [0-9a-f]{8}\)/);
  assert.notEqual(fs.readFileSync(keyFile, 'utf8'), oldKey);
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  assert.ok(!fs.existsSync(`${keyFile}.new`));
  const after = sql(dbFile, 'SELECT auth_state FROM whatsapp_sessions ORDER BY id');
  for (const [a] of after) assert.notEqual(a.slice(5, 13), kidBefore);
  s = await serveOn(dbFile);
  try {
    for (const id of ids) await waitSession(s, id, 'connected after rekey', (b) => b.connectionStatus === 'connected');
    assert.doesNotMatch(s.stderr(), /made the key/);
  } finally {
    await s.stop();
  }
  // With the old key back in place, nothing opens: the rows really moved to the new key.
  fs.writeFileSync(`${dbFile}.old.key`, oldKey, { mode: 0o600 });
  s = await serveOn(dbFile, { WAGATE_SECRET_KEY_FILE: `${dbFile}.old.key` });
  try {
    await waitSession(s, ids[0], 'the new key named', (x) => /sealed under key/.test(x.lastError ?? ''));
  } finally {
    await s.stop();
  }
});

test('a key file others may read is made 0600 with a warning; WAGATE_SECRET_KEY seals without a file', async () => {
  const dbFile = path.join(dir, 'b', 'wagate.db');
  fs.mkdirSync(path.dirname(dbFile), { recursive: true });
  fs.writeFileSync(`${dbFile}.key`, `${'cd'.repeat(32)}\n`, { mode: 0o644 });
  fs.chmodSync(`${dbFile}.key`, 0o644);
  let s = await serveOn(dbFile);
  try {
    assert.match(s.stderr(), /could be read by others \(mode 644\): made 0600/);
  } finally {
    await s.stop();
  }
  assert.equal(fs.statSync(`${dbFile}.key`).mode & 0o777, 0o600);
  const envDb = path.join(dir, 'c', 'wagate.db');
  s = await serveOn(envDb, { WAGATE_SECRET_KEY: 'ef'.repeat(32) });
  try {
    assert.match(s.stderr(), /credentials sealed under key [0-9a-f]{8} \(WAGATE_SECRET_KEY\)/);
  } finally {
    await s.stop();
  }
  assert.ok(!fs.existsSync(`${envDb}.key`), 'a key file was made although the key was given');
});
