// Loads the binary-node codecs of the two reference clients from node_modules (never copied into the repo):
//   dictionary 2 -> baileys6 (@whiskeysockets/baileys 6.17.16, CommonJS)
//   dictionary 3 -> baileys7 (baileys 7.0.0-rc14, ESM)
// and converts between Baileys' in-memory nodes and the JSON form that `wagate wire` prints and reads.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const b6enc = require('baileys6/lib/WABinary/encode.js');
const b6dec = require('baileys6/lib/WABinary/decode.js');
const b6const = require('baileys6/lib/WABinary/constants.js');
const b7enc = await import('baileys7/lib/WABinary/encode.js');
const b7dec = await import('baileys7/lib/WABinary/decode.js');
const b7const = await import('baileys7/lib/WABinary/constants.js');

function makeCodec(dict, name, enc, dec, constants) {
  return {
    dict,
    name,
    constants,
    // Whole frame plaintext: flag byte 00 + node (Baileys' encoder starts its buffer with the flag byte).
    encodeFrame: (node) => enc.encodeBinaryNode(node, constants),
    // Node bytes only (no flag byte).
    decodeNode: (buf) => dec.decodeDecompressedBinaryNode(buf, constants, { index: 0 }),
    // Same, with a caller-supplied {index} so that the caller can see how many bytes the node used.
    decodeNodeWithRef: (buf, ref) => dec.decodeDecompressedBinaryNode(buf, constants, ref),
    // Whole frame (flag byte, zlib if flag & 2).
    decodeFrame: async (buf) => dec.decodeDecompressedBinaryNode(await dec.decompressingIfRequired(buf), constants),
  };
}

export const codecs = {
  2: makeCodec(2, 'baileys6', b6enc, b6dec, b6const),
  3: makeCodec(3, 'baileys7', b7enc, b7dec, b7const),
};

/** Baileys node -> our JSON form (fresh object, fixed key order tag/attrs/content, attribute order kept). */
export function toJson(node) {
  const out = { tag: node.tag, attrs: {} };
  for (const k of Object.keys(node.attrs || {})) out.attrs[k] = node.attrs[k];
  const c = node.content;
  if (c === undefined) return out;
  if (typeof c === 'string') out.content = c;
  else if (Buffer.isBuffer(c) || c instanceof Uint8Array) out.content = { bytes: Buffer.from(c).toString('base64') };
  else if (Array.isArray(c)) out.content = c.map(toJson);
  else throw new Error(`unexpected content type ${typeof c}`);
  return out;
}

/** Our JSON form -> Baileys node. */
export function fromJson(json) {
  const node = { tag: json.tag, attrs: { ...json.attrs } };
  const c = json.content;
  if (c === undefined) return node;
  if (typeof c === 'string') node.content = c;
  else if (Array.isArray(c)) node.content = c.map(fromJson);
  else if (c && typeof c.bytes === 'string') node.content = Buffer.from(c.bytes, 'base64');
  else throw new Error(`unexpected JSON content ${JSON.stringify(c).slice(0, 80)}`);
  return node;
}

/**
 * Canonical text of a JSON node: fixed key order for tag/attrs/content, attributes in wire order. Two nodes
 * are equal (including attribute order) iff their canonical texts are equal. Anything unexpected in the
 * object (extra keys, wrong types) is kept so that it shows up as a difference.
 */
export function canon(json) {
  return JSON.stringify(canonObj(json));
}

function canonObj(n) {
  if (n === null || typeof n !== 'object' || Array.isArray(n)) return n;
  const out = { tag: n.tag, attrs: n.attrs };
  if ('content' in n) {
    out.content = Array.isArray(n.content) ? n.content.map(canonObj) : n.content;
  }
  for (const k of Object.keys(n)) if (!(k in out)) out[k] = n[k];
  return out;
}

/** Path and values of the first difference between two JSON nodes, for failure messages. */
export function firstDiff(a, b, path = '$') {
  if (a === b) return null;
  const ta = Array.isArray(a) ? 'array' : a === null ? 'null' : typeof a;
  const tb = Array.isArray(b) ? 'array' : b === null ? 'null' : typeof b;
  if (ta !== tb || ta !== 'object' && ta !== 'array') {
    return `${path}: ${short(a)} != ${short(b)}`;
  }
  if (ta === 'array') {
    if (a.length !== b.length) return `${path}.length: ${a.length} != ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDiff(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.join('\u0000') !== kb.join('\u0000')) {
    return `${path} keys: ${short(ka)} != ${short(kb)}`;
  }
  for (const k of ka) {
    const d = firstDiff(a[k], b[k], `${path}.${k}`);
    if (d) return d;
  }
  return null;
}

export function short(v, max = 300) {
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
}
