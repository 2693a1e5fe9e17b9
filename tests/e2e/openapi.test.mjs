// The API's description (docs/openapi.json, served at /openapi.json) against the server itself: every route the
// router answers is in it, every operation in it is answered, and every JSON answer of a walk through the whole
// API (happy paths and refusals) validates against the schema the document gives for its path, method and status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { waitFor } from '../interop/lib/mock.mjs';
import { scratchWithMock, startServe, request, waitSession, seedSessions, API_KEY } from './serve.mjs';

const require = createRequire(new URL('../interop/package.json', import.meta.url));
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const SPEC = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs', 'openapi.json'), 'utf8'));
let mock;
const dir = scratchWithMock('openapi', (m) => (mock = m));

const METHODS = ['get', 'post', 'patch', 'delete', 'put', 'head'];

/** The spec's path template that a concrete path matches ("/sessions/abc/qr" -> "/sessions/{id}/qr"). */
function templateOf(p) {
  for (const t of Object.keys(SPEC.paths)) {
    const re = new RegExp(`^${t.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (re.test(p)) return t;
  }
  return null;
}

test('every route the router answers is described, and nothing else', () => {
  const src = fs.readFileSync(path.join(ROOT, 'src', 'api', 'api.c'), 'utf8');
  const table = src.slice(src.indexOf('route_names[] = {'), src.indexOf('};', src.indexOf('route_names[] = {')));
  const routes = [...table.matchAll(/= "(\/[^"]*)"/g)].map((m) => m[1]);
  assert.ok(routes.length >= 19, `only ${routes.length} routes found in api.c`);
  assert.deepEqual([...routes].sort(), Object.keys(SPEC.paths).sort());
  assert.equal(SPEC.openapi, '3.1.0');
});

test('a walk through the whole API: every answer validates against the document', async () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(SPEC, 'openapi');
  const seen = new Set();
  const problems = [];

  const dbFile = path.join(dir, 'w.db');
  seedSessions(dbFile, 1, 4472000000);
  const paired = '00000000-0000-4000-8000-000000000000';
  const serve = await startServe({ dbFile, mock, env: { WAGATE_START_STAGGER: '10ms' } });

  /** One call, checked against the document; returns the answer. */
  async function call(method, p, opts = {}) {
    const r = await request(serve.port, method, p, opts);
    const t = templateOf(p.split('?')[0]);
    if (t === null) {
      problems.push(`${method} ${p}: no path in the document`);
      return r;
    }
    const op = SPEC.paths[t][method.toLowerCase()];
    if (op === undefined) {
      if (r.status !== 405) problems.push(`${method} ${t}: answered ${r.status}, not in the document`);
      return r;
    }
    seen.add(`${method.toLowerCase()} ${t}`);
    const resp = op.responses[String(r.status)] ?? op.responses.default;
    if (resp === undefined) {
      problems.push(`${method} ${t}: status ${r.status} is not in the document (${r.text.slice(0, 120)})`);
      return r;
    }
    const ct = (r.headers['content-type'] ?? '').split(';')[0];
    if (!resp.content) {
      if (r.text.length) problems.push(`${method} ${t} ${r.status}: a body the document does not have`);
      return r;
    }
    if (!resp.content[ct]) {
      problems.push(`${method} ${t} ${r.status}: content type ${ct} is not in the document`);
      return r;
    }
    if (ct === 'application/json') {
      const ptr = `openapi#/paths/${t.replace(/~/g, '~0').replace(/\//g, '~1')}/${method.toLowerCase()}/responses/${op.responses[String(r.status)] ? r.status : 'default'}/content/application~1json/schema`;
      const v = ajv.getSchema(ptr);
      if (!v) problems.push(`${method} ${t} ${r.status}: no schema`);
      else if (!v(r.body)) problems.push(`${method} ${t} ${r.status}: ${ajv.errorsText(v.errors)} in ${r.text.slice(0, 300)}`);
    }
    return r;
  }

  try {
    await waitSession(serve, paired, 'connected', (b) => b.connectionStatus === 'connected');
    await call('GET', '/health', { key: null });
    await call('GET', '/livez', { key: null });
    await call('GET', '/readyz', { key: null });
    await call('GET', '/metrics');
    await call('GET', '/metrics', { key: null });
    const doc = await call('GET', '/openapi.json', { key: null });
    assert.equal(doc.text, fs.readFileSync(path.join(ROOT, 'docs', 'openapi.json'), 'utf8'), 'the served document is not docs/openapi.json');
    await call('GET', '/health/deep');
    await call('GET', '/health/deep', { key: null });
    await call('GET', '/health/loop');
    await call('GET', '/health/loop?since=nope');
    await call('GET', '/cluster');
    await call('GET', '/sessions');
    await call('GET', '/sessions?limit=1');
    await call('GET', '/sessions?limit=0');
    await call('GET', `/sessions/${paired}`);
    await call('GET', '/sessions/00000000-0000-4000-8000-00000000ffff');
    await call('PATCH', `/sessions/${paired}`, { body: { autoConnect: true } });
    await call('PATCH', `/sessions/${paired}`, { body: { autoConnect: 'yes' } });
    await call('GET', `/sessions/${paired}/history`);
    await call('POST', `/sessions/${paired}/reconnect`);
    await waitSession(serve, paired, 'connected again', (b) => b.connectionStatus === 'connected');
    await call('POST', '/sessions/00000000-0000-4000-8000-00000000ffff/reconnect');
    await call('POST', `/sessions/${paired}/pair`);
    await call('GET', `/sessions/${paired}/qr`);
    // A new session: pairing, its QR code (JSON and SVG), then logged out, paired again, deleted.
    const created = await call('POST', '/sessions', { body: { sessionName: 'second', userId: 'u-openapi' } });
    assert.equal(created.status, 201, created.text);
    await call('POST', '/sessions', { body: { sessionName: 'second', userId: 'u-openapi' } });
    await call('POST', '/sessions', { body: { nope: 1 } });
    await call('POST', '/sessions', { raw: '{not json' });
    const id = created.body.sessionId;
    await waitFor('a QR code', async () => (await request(serve.port, 'GET', `/sessions/${id}/qr`)).status === 200);
    await call('GET', `/sessions/${id}/qr`);
    await call('GET', `/sessions/${id}/qr?format=svg`);
    await call('POST', `/sessions/${id}/logout`);
    await call('POST', `/sessions/${id}/pair`);
    await call('DELETE', `/sessions/${id}`);
    await call('DELETE', `/sessions/${id}`);
    await call('PUT', '/sessions', { body: {} });
    // Sign-in.
    await call('GET', '/auth/session', { key: null });
    await call('POST', '/auth/login', { key: null, body: { apiKey: 'wrong-wrong-wrong-wrong' } });
    const login = await call('POST', '/auth/login', { key: null, body: { apiKey: API_KEY } });
    const cookie = (login.headers['set-cookie'] ?? [''])[0].split(';')[0];
    await call('GET', '/auth/session', { key: null, headers: { cookie } });
    await call('POST', '/auth/logout', { key: null, headers: { cookie, 'x-wagate-csrf': '1' } });
    // The event stream: its head only.
    const ev = await new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: serve.port, path: '/events', headers: { 'x-api-key': API_KEY } }, (res) => {
        resolve({ status: res.statusCode, type: res.headers['content-type'] });
        req.destroy();
      });
      req.on('error', reject);
    });
    assert.equal(ev.status, 200);
    assert.match(ev.type, /^text\/event-stream/);
    assert.ok(SPEC.paths['/events'].get.responses['200'].content['text/event-stream']);
    seen.add('get /events');
  } finally {
    await serve.stop();
  }
  assert.deepEqual(problems, []);
  const all = [];
  for (const [t, item] of Object.entries(SPEC.paths)) for (const m of METHODS) if (item[m]) all.push(`${m} ${t}`);
  const missed = all.filter((k) => !seen.has(k));
  assert.deepEqual(missed, [], 'operations the walk did not reach');
});
