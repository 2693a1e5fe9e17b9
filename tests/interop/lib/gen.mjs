// Seeded random generator of binary nodes in our JSON form ({tag, attrs, content}).
//
// Every value it produces is stable under the reference client's own encode/decode round trip (apart from
// string content that is written raw, which Baileys decodes as bytes; see expectedAfterWire()). Excluded on
// purpose, because Baileys itself does not round-trip them (they are covered by targeted tests instead):
//  - empty strings: baileys6 writes 00 (token 0), baileys7 writes fc 00; as *content* 00 decodes as an empty
//    list. Tested separately.
//  - JIDs with device 0 (`u:0@s.whatsapp.net`): Baileys writes an AD_JID with device 0, which decodes without
//    `:0`. Tested separately against Baileys' own decode.
//  - '_' in the user part of a JID (`user_agent@...`): Baileys' jidDecode drops or reinterprets the agent.
//  - ':' in the user part of a JID whose server is not an AD_JID server (`u:3@g.us` -> AD_JID -> `u:3@s.whatsapp.net`),
//    and devices > 255 in AD_JIDs (written as one byte).
//  - '@' in text that is not meant as a JID: the encoders turn any string with '@' into a JID.
//  - hosted / hosted.lid JIDs with dictionary 2: baileys6 maps every non-zero AD_JID domain to `lid`.
//  - `@msgr` (FB_JID) and `@interop` (INTEROP_JID) JIDs are only produced with {fbInterop: true} (dictionary 3,
//    our encoder -> baileys7 decoder), because Baileys' *encoder* does not write those tags.
//  - attribute keys that are canonical array indexes ("0", "12"): JS objects reorder such keys, so attribute
//    order could not be compared; and "__proto__" (Baileys' decoder assigns attrs[key]).
//  - NUL characters in text.

export function mulberry32(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng = {
    next,
    int: (n) => Math.floor(next() * n), // [0, n)
    range: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // [lo, hi]
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p,
    bytes: (n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    },
    weighted: (table) => {
      let total = 0;
      for (const [, w] of table) total += w;
      let x = next() * total;
      for (const [v, w] of table) {
        if ((x -= w) < 0) return v;
      }
      return table[table.length - 1][0];
    },
  };
  return rng;
}

export function pickSeed() {
  const env = process.env.WAGATE_INTEROP_SEED;
  if (env !== undefined && env !== '' && env !== 'random') return Number(env) >>> 0;
  // A fixed default keeps CI deterministic; WAGATE_INTEROP_SEED=random explores new inputs.
  if (env === 'random') return (Date.now() ^ (process.pid << 16)) >>> 0;
  return 20261124;
}

const NIBBLE_CHARS = '0123456789-.';
const HEX_CHARS = '0123456789ABCDEF';
const WORD_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.:/!?#$%&()*+,;<=>[]^{|}~\'"\\`';

const isArrayIndexKey = (k) => /^(0|[1-9][0-9]*)$/.test(k) && Number(k) < 4294967295;
export const isNibble = (s) => s.length > 0 && s.length <= 127 && /^[0-9.-]+$/.test(s);
export const isHex = (s) => s.length > 0 && s.length <= 127 && /^[0-9A-F]+$/.test(s);

export class NodeGen {
  /**
   * @param rng mulberry32 instance
   * @param constants the Baileys constants module of this dictionary (SINGLE_BYTE_TOKENS, DOUBLE_BYTE_TOKENS, TOKEN_MAP)
   * @param opts {dict: 2|3, fbInterop: bool, maxDepth}
   */
  constructor(rng, constants, opts) {
    this.rng = rng;
    this.c = constants;
    this.dict = opts.dict;
    this.fbInterop = !!opts.fbInterop;
    this.maxDepth = opts.maxDepth ?? 5;
    this.single = constants.SINGLE_BYTE_TOKENS.slice(1).filter((t) => t !== '');
    this.double = constants.DOUBLE_BYTE_TOKENS.flat().filter((t) => t !== '');
    this.coverage = new Map(); // kind -> count
  }

  cover(kind) {
    this.coverage.set(kind, (this.coverage.get(kind) || 0) + 1);
  }

  chars(alphabet, n) {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.rng.int(alphabet.length)];
    return s;
  }

  digits(lo, hi) {
    // no leading zero, like real phone numbers / lids
    return String(this.rng.range(1, 9)) + this.chars('0123456789', this.rng.range(lo, hi) - 1);
  }

  packedLength() {
    const r = this.rng;
    return r.weighted([
      [() => r.range(1, 12), 6],
      [() => r.range(13, 127), 3],
      [() => r.pick([1, 2, 126, 127]), 1],
    ])();
  }

  nibble() {
    this.cover('nibble');
    return this.chars(NIBBLE_CHARS, this.packedLength());
  }

  hex() {
    this.cover('hex');
    const n = this.packedLength();
    let s = this.chars(HEX_CHARS, n);
    if (!/[A-F]/.test(s)) {
      const i = this.rng.int(n);
      s = s.slice(0, i) + this.rng.pick('ABCDEF') + s.slice(i + 1);
    }
    return s;
  }

  word(lo = 1, hi = 20) {
    return this.chars(WORD_CHARS, this.rng.range(lo, hi));
  }

  text() {
    // Raw ASCII text (no '@').
    this.cover('ascii');
    return this.word(1, 40);
  }

  utf8(lo = 1, hi = 40) {
    this.cover('utf8');
    const r = this.rng;
    const n = r.range(lo, hi);
    let s = '';
    for (let i = 0; i < n; i++) {
      const cp = r.weighted([
        [() => r.range(0x20, 0x7e), 3],
        [() => r.range(0x01, 0x1f), 1], // control characters (JSON escapes), no NUL
        [() => r.range(0xa0, 0x7ff), 3], // Latin-1 supplement .. 2-byte UTF-8
        [() => r.range(0x800, 0xd7ff), 3], // 3-byte UTF-8 (CJK etc.), below the surrogates
        [() => r.range(0xe000, 0xfffd), 1],
        [() => r.range(0x10000, 0x10ffff), 2], // 4-byte UTF-8 (emoji and beyond)
      ])();
      if (cp === 0x40) continue; // '@'
      s += String.fromCodePoint(cp);
    }
    return s || 'é';
  }

  longString() {
    // > 255 bytes raw (BINARY_20), not packable
    this.cover('long-string');
    const r = this.rng;
    return r.chance(0.5) ? this.word(256, 3000) : this.utf8(100, 1200) + 'x'.repeat(256);
  }

  longDigits() {
    // > 127 characters of digits: too long to pack, so written raw
    this.cover('long-digits');
    return this.chars('0123456789', this.rng.range(128, 400));
  }

  longHex() {
    this.cover('long-hex');
    return this.chars(HEX_CHARS, this.rng.range(128, 300));
  }

  token1() {
    this.cover('token1');
    return this.rng.pick(this.single);
  }

  token2() {
    this.cover('token2');
    return this.rng.pick(this.double);
  }

  jid() {
    const r = this.rng;
    const dev = () => r.range(1, 99);
    const kinds = [
      ['jid-pn', () => `${this.digits(6, 15)}@s.whatsapp.net`, 4],
      ['jid-pn-dev', () => `${this.digits(6, 15)}:${dev()}@s.whatsapp.net`, 4],
      ['jid-lid', () => `${this.digits(10, 16)}@lid`, 3],
      ['jid-lid-dev', () => `${this.digits(10, 16)}:${dev()}@lid`, 3],
      ['jid-server', () => r.pick(['@s.whatsapp.net', '@g.us', '@broadcast', '@lid', '@c.us', '@newsletter']), 2],
      ['jid-group', () => (r.chance(0.5) ? `${this.digits(10, 12)}-${this.digits(10, 10)}@g.us` : `${this.digits(18, 18)}@g.us`), 2],
      ['jid-broadcast', () => (r.chance(0.5) ? 'status@broadcast' : `${this.digits(10, 13)}@broadcast`), 1],
      ['jid-newsletter', () => `${this.digits(18, 18)}@newsletter`, 1],
      ['jid-cus', () => r.pick(['server@c.us', '0@c.us', `${this.digits(8, 12)}@c.us`]), 1],
      ['jid-hexuser', () => `${this.chars(HEX_CHARS, r.range(4, 20))}A@${r.pick(['s.whatsapp.net', 'lid', 'g.us'])}`, 1],
      ['jid-rawuser', () => `${this.chars('abcdefghijklmnopqrstuvwxyz', r.range(1, 12))}@${r.pick(['s.whatsapp.net', 'bot', 'call', 'g.us'])}`, 1],
    ];
    if (this.dict === 3) {
      kinds.push(
        ['jid-hosted-dev', () => `${this.digits(6, 15)}:${dev()}@hosted`, 2],
        ['jid-hosted-lid-dev', () => `${this.digits(10, 16)}:${dev()}@hosted.lid`, 2],
        ['jid-hosted', () => `${this.digits(6, 15)}@${r.pick(['hosted', 'hosted.lid'])}`, 1],
      );
    }
    if (this.fbInterop) {
      kinds.push(
        ['jid-msgr', () => `${this.digits(5, 17)}:${r.chance(0.2) ? 0 : r.range(1, 65535)}@msgr`, 2],
        ['jid-msgr-nodev', () => `${this.digits(5, 17)}@msgr`, 1],
        ['jid-interop', () => `${r.range(1, 65535)}-${this.digits(5, 17)}:${r.range(0, 65535)}@interop`, 2],
      );
    }
    const [kind, f] = r.weighted(kinds.map(([k, f, w]) => [[k, f], w]));
    this.cover(kind);
    return f();
  }

  /** Any non-empty string. */
  string() {
    const r = this.rng;
    return r.weighted([
      [() => this.token1(), 6],
      [() => this.token2(), 4],
      [() => this.nibble(), 4],
      [() => this.hex(), 3],
      [() => this.jid(), 6],
      [() => this.text(), 4],
      [() => this.utf8(), 3],
      [() => this.longString(), 0.4],
      [() => this.longDigits(), 0.4],
      [() => this.longHex(), 0.3],
    ])();
  }

  tag() {
    const r = this.rng;
    return r.weighted([
      [() => this.token1(), 6],
      [() => this.token2(), 3],
      [() => this.text(), 1],
      [() => this.utf8(1, 8), 0.3],
      [() => this.nibble(), 0.3],
    ])();
  }

  key() {
    const r = this.rng;
    for (;;) {
      const k = r.weighted([
        [() => this.token1(), 6],
        [() => this.token2(), 3],
        [() => this.text(), 2],
        [() => this.utf8(1, 8), 0.5],
        [() => this.nibble(), 0.3],
        [() => this.hex(), 0.3],
      ])();
      if (!isArrayIndexKey(k) && k !== '__proto__') return k;
    }
  }

  attrs() {
    const r = this.rng;
    const n = r.weighted([
      [() => 0, 3],
      [() => r.range(1, 3), 6],
      [() => r.range(4, 10), 2],
      [() => r.range(128, 140), 0.05], // list size >= 256: LIST_16 node header
    ])();
    if (n >= 128) this.cover('many-attrs');
    const attrs = {};
    let guard = 0;
    while (Object.keys(attrs).length < n && guard++ < n * 20) {
      const k = this.key();
      if (k in attrs) continue;
      attrs[k] = this.string();
    }
    return attrs;
  }

  bytes() {
    const r = this.rng;
    const n = r.weighted([
      [() => r.range(0, 32), 5],
      [() => r.range(33, 255), 3],
      [() => r.pick([0, 1, 255]), 0.5],
      [() => r.range(256, 4000), 1.5], // BINARY_20
      [() => r.pick([256, 65535, 65536]), 0.1],
      [() => r.range(65537, 80000), 0.05], // BINARY_20 with a non-zero high nibble
    ])();
    this.cover(n >= 256 ? 'bytes-20' : 'bytes-8');
    return { bytes: r.bytes(n).toString('base64') };
  }

  node(depth = 0) {
    const r = this.rng;
    const node = { tag: this.tag(), attrs: this.attrs() };
    const kind = r.weighted([
      ['none', 3],
      ['string', 2],
      ['bytes', 2],
      ['list', depth < this.maxDepth ? (depth === 0 ? 5 : 3) : 0],
    ]);
    if (kind === 'string') {
      this.cover('content-string');
      node.content = this.string();
    } else if (kind === 'bytes') {
      node.content = this.bytes();
    } else if (kind === 'list') {
      const n = r.weighted([
        [() => 0, 1],
        [() => r.range(1, 4), 8],
        [() => r.range(5, 12), 1],
        [() => 300, depth === 0 ? 0.03 : 0], // LIST_16 child list
      ])();
      if (n === 300) {
        this.cover('list-16');
        node.content = Array.from({ length: n }, () => ({ tag: this.token1(), attrs: {} }));
      } else {
        node.content = Array.from({ length: n }, () => this.node(depth + 1));
      }
      if (depth + 1 >= 3 && n > 0) this.cover('deep-list');
    }
    return node;
  }

  /**
   * `count` top-level nodes: a few fixed-shape ones first (so that rare shapes are always present), then
   * random ones.
   */
  nodes(count) {
    const special = [
      // LIST_16 child list (300 children)
      () => {
        this.cover('list-16');
        return { tag: this.tag(), attrs: this.attrs(), content: Array.from({ length: 300 }, () => this.node(this.maxDepth)) };
      },
      // LIST_16 node header (130 attributes: list size 262)
      () => {
        this.cover('many-attrs');
        const attrs = {};
        while (Object.keys(attrs).length < 130) attrs[this.key()] = this.string();
        return { tag: this.tag(), attrs, content: this.bytes() };
      },
      // a chain nested maxDepth+1 levels deep
      () => {
        let n = this.node(this.maxDepth);
        for (let d = 0; d < this.maxDepth; d++) n = { tag: this.tag(), attrs: this.attrs(), content: [n, this.node(this.maxDepth)] };
        this.cover('deep-list');
        return n;
      },
    ];
    const out = special.slice(0, count).map((f) => f());
    while (out.length < count) out.push(this.node(0));
    return out;
  }
}

/** Kinds every generated batch must contain (checked by the tests, so coverage claims stay true). */
export function requiredKinds(dict, fbInterop) {
  const kinds = [
    'nibble', 'hex', 'ascii', 'utf8', 'long-string', 'long-digits', 'long-hex', 'token1', 'token2',
    'jid-pn', 'jid-pn-dev', 'jid-lid', 'jid-lid-dev', 'jid-server', 'jid-group', 'jid-broadcast', 'jid-newsletter',
    'jid-cus', 'jid-hexuser', 'jid-rawuser', 'many-attrs', 'bytes-8', 'bytes-20', 'content-string', 'list-16',
    'deep-list',
  ];
  if (dict === 3) kinds.push('jid-hosted-dev', 'jid-hosted-lid-dev', 'jid-hosted');
  if (fbInterop) kinds.push('jid-msgr', 'jid-msgr-nodev', 'jid-interop');
  return kinds;
}

/**
 * What Baileys' decoder gives back for a node that was encoded from `json` (by Baileys or by us): the same
 * node, except string *content* that the encoder has to write raw (not a token, not packable, no '@') comes
 * back as bytes, because a BINARY_8/20/32 content tag always decodes to bytes.
 */
export function expectedAfterWire(json, tokenMap) {
  const out = { tag: json.tag, attrs: { ...json.attrs } };
  const c = json.content;
  if (c === undefined) return out;
  if (typeof c === 'string') {
    const raw = !tokenMap[c] && !isNibble(c) && !isHex(c) && !c.includes('@');
    out.content = raw ? { bytes: Buffer.from(c, 'utf8').toString('base64') } : c;
  } else if (Array.isArray(c)) {
    out.content = c.map((n) => expectedAfterWire(n, tokenMap));
  } else {
    out.content = { bytes: c.bytes };
  }
  return out;
}

export function countNodes(json) {
  let n = 1;
  if (Array.isArray(json.content)) for (const c of json.content) n += countNodes(c);
  return n;
}

export function hasFbInterop(json) {
  const isFb = (s) => typeof s === 'string' && /@(msgr|interop)$/.test(s);
  if (isFb(json.tag)) return true;
  for (const [k, v] of Object.entries(json.attrs)) if (isFb(k) || isFb(v)) return true;
  if (isFb(json.content)) return true;
  if (Array.isArray(json.content)) return json.content.some(hasFbInterop);
  return false;
}
