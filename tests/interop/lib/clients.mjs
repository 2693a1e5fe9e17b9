// Baileys 6 and 7 sockets for the interop tests, with in-memory credentials and a silent logger.
import { createRequire } from 'node:module';
import pino from 'pino';

const require = createRequire(import.meta.url);

const b6 = require('baileys6');
const b7 = await import('baileys7');

export const clients = {
  baileys6: { name: 'baileys6', dict: 2, makeWASocket: b6.default ?? b6.makeWASocket, initAuthCreds: b6.initAuthCreds },
  baileys7: { name: 'baileys7', dict: 3, makeWASocket: b7.default ?? b7.makeWASocket, initAuthCreds: b7.initAuthCreds },
};

/** The live objects baileys7's noise handler reads (WA_CERT_DETAILS.PUBLIC_KEY, Curve.verify); see handshake.test.mjs. */
export const b7Defaults = await import('baileys7/lib/Defaults/index.js');
export const b7Crypto = await import('baileys7/lib/Utils/crypto.js');
export const b7Index = b7;

/** Credentials from the client's own initAuthCreds(), optionally logged in as `me`, and a Map-backed key store. */
export function memoryAuthState(client, me) {
  const creds = client.initAuthCreds();
  if (me) {
    creds.me = me;
    creds.registered = true;
  }
  const store = new Map();
  const keys = {
    async get(type, ids) {
      const out = {};
      for (const id of ids) {
        const v = store.get(`${type}/${id}`);
        if (v !== undefined) out[id] = v;
      }
      return out;
    },
    async set(data) {
      for (const type of Object.keys(data)) {
        for (const id of Object.keys(data[type] || {})) {
          const v = data[type][id];
          if (v) store.set(`${type}/${id}`, v);
          else store.delete(`${type}/${id}`);
        }
      }
    },
  };
  return { creds, keys, store };
}

export function silentLogger() {
  return pino({ level: 'silent' });
}

/**
 * Creates a Baileys socket to `url`. Returns {sock, auth, updates, closed, opened, qr, end()}. `updates` collects
 * every connection.update event; `closed` resolves with the first update that has connection === 'close',
 * `opened` with the first that has connection === 'open', `qr` with the first QR string.
 * Options: `me` (fresh credentials logged in as `me`), `auth` (credentials and keys to reuse, e.g. after pairing,
 * as Baileys' README does for the 515 restart), `keepAliveIntervalMs`, `connectTimeoutMs`, `config` (more
 * makeWASocket options).
 */
export function connectClient(client, url, { me, auth, connectTimeoutMs = 15000, keepAliveIntervalMs = 30000, config = {} } = {}) {
  auth = auth ?? memoryAuthState(client, me);
  const sock = client.makeWASocket({
    waWebSocketUrl: url,
    auth: { creds: auth.creds, keys: auth.keys },
    printQRInTerminal: false,
    logger: silentLogger(),
    connectTimeoutMs,
    keepAliveIntervalMs,
    defaultQueryTimeoutMs: 15000,
    qrTimeout: 60000,
    markOnlineOnConnect: false,
    syncFullHistory: false,
    fireInitQueries: false,
    shouldSyncHistoryMessage: () => false,
    ...config,
  });
  const updates = [];
  let closedResolve;
  let openedResolve;
  let qrResolve;
  const closed = new Promise((resolve) => {
    closedResolve = resolve;
  });
  const opened = new Promise((resolve) => {
    openedResolve = resolve;
  });
  const qr = new Promise((resolve) => {
    qrResolve = resolve;
  });
  sock.ev.on('connection.update', (u) => {
    updates.push(u);
    if (u.qr) qrResolve(u.qr);
    if (u.connection === 'open') openedResolve(u);
    if (u.connection === 'close') closedResolve(u);
  });
  // Baileys updates auth.creds in place; keys go through auth.keys.set().
  sock.ev.on('creds.update', () => {});
  let ended = false;
  return {
    sock,
    auth,
    updates,
    closed,
    opened,
    qr,
    /** Ends the socket (idempotent); resolves once Baileys reported the close, or after 3 s. */
    async end() {
      if (!ended) {
        ended = true;
        try {
          sock.end(undefined);
        } catch {
          // already closed
        }
        try {
          sock.ws?.close?.();
        } catch {
          // already closed
        }
      }
      await Promise.race([closed, new Promise((r) => setTimeout(r, 3000).unref())]);
    },
  };
}

/** A short description of a connection.update close event, for messages. */
export function describeClose(u) {
  if (!u) return 'no close event';
  const e = u.lastDisconnect?.error;
  if (!e) return 'closed without error';
  return `${e.message}${e.output?.statusCode ? ` (status ${e.output.statusCode})` : ''}`;
}
