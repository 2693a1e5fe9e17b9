// The status components' package as a Next.js app gets it: the built entries (the components behind a
// "use client" boundary, a server-safe entry without React), the exports map, and what makes it publishable.
// Builds the library into a scratch directory with the package's own Vite.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const WEB = path.join(ROOT, 'web');
let out;

before(() => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate-web-lib-'));
  execFileSync(path.join(WEB, 'node_modules', '.bin', 'vite'), ['build', '--mode', 'lib', '--outDir', out, '--logLevel', 'silent'], { cwd: WEB });
});

after(() => fs.rmSync(out, { recursive: true, force: true }));

test('the components\' entry is marked "use client", first thing in the file', () => {
  const js = fs.readFileSync(path.join(out, 'wagate-status.js'), 'utf8');
  assert.ok(js.startsWith('"use client";'), js.slice(0, 80));
  assert.match(js, /from "react"/);
});

test('the server entry, and everything it loads, imports no React and is not marked for the client', () => {
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    const js = fs.readFileSync(path.join(out, file), 'utf8');
    assert.doesNotMatch(js, /from "react|require\("react/, file);
    assert.ok(!js.startsWith('"use client"'), file);
    for (const m of js.matchAll(/from "\.\/([^"]+)"/g)) visit(m[1]);
  };
  visit('server.js');
  assert.ok(seen.size >= 1);
});

test('both entries are exported with their types, and the package can be published', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(WEB, 'package.json'), 'utf8'));
  assert.equal(pkg.private, undefined);
  assert.equal(pkg.license, 'MIT');
  assert.deepEqual(pkg.exports['.'], { types: './dist-lib/types/lib.d.ts', import: './dist-lib/wagate-status.js' });
  assert.deepEqual(pkg.exports['./server'], { types: './dist-lib/types/server.d.ts', import: './dist-lib/server.js' });
  assert.ok(pkg.peerDependencies.react);
  for (const f of ['dist-lib', 'LICENSE']) assert.ok(pkg.files.includes(f));
  assert.ok(fs.existsSync(path.join(WEB, 'LICENSE')));
  // One version for the server and the package: CMakeLists.txt's.
  assert.ok(fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8').includes(`project(wagate VERSION ${pkg.version} `));
});
