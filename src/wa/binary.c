/*
 * The binary node codec (see docs/wire.md). The decoder is written for hostile
 * input: every read is bounds-checked against the buffer, list sizes are checked
 * against the bytes left before anything is allocated, and depth, node count,
 * attribute count and memory are limited. Errors carry the byte offset.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/err.h"
#include "core/mem.h"
#include "wa/node.h"

const struct wa_limits wa_limits_default = {
	.max_depth = 64,
	.max_nodes = 100000,
	.max_attrs = 1024,
	.max_inflated = 8u << 20,
	.max_arena = 64u << 20,
};

int
wa_dict_find(const struct wa_dict *d, const char *s, size_t len)
{
	unsigned lo = 0, hi = d->index_len;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const char *t = d->index[mid].str;
		size_t tlen = strlen(t);
		int c = memcmp(s, t, len < tlen ? len : tlen);
		if (c == 0)
			c = len < tlen ? -1 : len > tlen ? 1 : 0;
		if (c == 0)
			return d->index[mid].code;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* ---- decoding ---- */

struct dec {
	const struct wa_dict *d;
	const uint8_t *buf;
	size_t len, pos;
	const struct wa_limits *lim;
	struct wa_arena *a;
	uint32_t nodes;
	struct wa_decode_err *err;
};

static int
fail(struct dec *s, int code, size_t at, const char *fmt, ...)
{
	if (s->err != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->err->msg, sizeof(s->err->msg), fmt, ap);
		va_end(ap);
		s->err->offset = at;
	}
	return code;
}

static int
need(struct dec *s, size_t n)
{
	if (s->len - s->pos < n)
		return fail(s, WG_ETRUNC, s->len, "input ends early: %zu more byte(s) needed", n);
	return 0;
}

static int
read_u8(struct dec *s, uint8_t *v)
{
	int r = need(s, 1);
	if (r)
		return r;
	*v = s->buf[s->pos++];
	return 0;
}

static int
read_be(struct dec *s, int n, uint32_t *v)
{
	int r = need(s, (size_t)n);
	if (r)
		return r;
	uint32_t x = 0;
	for (int i = 0; i < n; i++)
		x = x << 8 | s->buf[s->pos++];
	*v = x;
	return 0;
}

static void *
dalloc(struct dec *s, size_t n)
{
	if (s->a->used + n > s->lim->max_arena)
		return NULL;
	return wa_arena_alloc(s->a, n);
}

/* Length of raw data after a BINARY_* tag. */
static int
read_binary_len(struct dec *s, uint8_t tag, uint32_t *n)
{
	int r;
	switch (tag) {
	case WA_TAG_BINARY_8: {
		uint8_t v = 0;
		r = read_u8(s, &v);
		*n = v;
		break;
	}
	case WA_TAG_BINARY_20:
		r = read_be(s, 3, n);
		*n &= 0x0FFFFF;
		break;
	default:
		r = read_be(s, 4, n);
		break;
	}
	if (r)
		return r;
	if (*n > s->len - s->pos)
		return fail(s, WG_ETRUNC, s->pos, "length %u exceeds the %zu byte(s) left", *n,
			    s->len - s->pos);
	return 0;
}

static int
copy_str(struct dec *s, const char *p, size_t n, struct wa_str *out)
{
	char *q = dalloc(s, n + 1);
	if (q == NULL)
		return fail(s, WG_ELIMIT, s->pos, "decoded size exceeds the memory limit");
	if (n)
		memcpy(q, p, n);
	q[n] = '\0';
	out->p = q;
	out->len = (uint32_t)n;
	return 0;
}

static int
read_packed(struct dec *s, uint8_t tag, struct wa_str *out)
{
	size_t start = s->pos - 1;
	uint8_t hdr;
	int r = read_u8(s, &hdr);
	if (r)
		return r;
	size_t pairs = hdr & 0x7F, odd = hdr >> 7;
	if ((r = need(s, pairs)))
		return r;
	if (odd && pairs == 0)
		return fail(s, WG_EINVAL, start, "packed string of odd length has no bytes");
	char tmp[2 * WA_PACKED_MAX + 2];
	size_t n = 0;
	for (size_t i = 0; i < pairs; i++) {
		uint8_t b = s->buf[s->pos + i];
		for (int h = 0; h < 2; h++) {
			uint8_t v = h ? (b & 15) : (b >> 4);
			int last = i == pairs - 1 && h == 1;
			if (odd && last)
				continue; /* the pad nibble; its value is not checked */
			char c;
			if (tag == WA_TAG_HEX_8)
				c = (char)(v < 10 ? '0' + v : 'A' + v - 10);
			else if (v < 10)
				c = (char)('0' + v);
			else if (v == 10)
				c = '-';
			else if (v == 11)
				c = '.';
			else
				return fail(s, WG_EINVAL, s->pos + i, "invalid nibble %u in packed string", v);
			tmp[n++] = c;
		}
	}
	s->pos += pairs;
	return copy_str(s, tmp, n, out);
}

static int read_string(struct dec *s, uint8_t tag, struct wa_str *out, int depth);

/*
 * Reads a string that is a part of a JID (user or server). A part is plain text:
 * no JID inside a JID, no '@' and no NUL, which no real stanza has. Allowing them would
 * print text like "a@b@c" that reads back differently when written again.
 */
static int
read_part(struct dec *s, struct wa_str *out, int depth)
{
	uint8_t t;
	int r = read_u8(s, &t);
	if (r)
		return r;
	if (t == WA_TAG_JID_PAIR || t == WA_TAG_AD_JID || t == WA_TAG_FB_JID ||
	    t == WA_TAG_INTEROP_JID)
		return fail(s, WG_EINVAL, s->pos - 1, "JID inside a JID");
	size_t at = s->pos - 1;
	if ((r = read_string(s, t, out, depth + 1)))
		return r;
	if (memchr(out->p, '@', out->len) != NULL)
		return fail(s, WG_EINVAL, at, "'@' inside a part of a JID");
	/* The JID is printed as text: a NUL would cut it short silently. */
	if (memchr(out->p, '\0', out->len) != NULL)
		return fail(s, WG_EINVAL, at, "a NUL byte inside a part of a JID");
	return 0;
}

/* The longest JID text read (and so written as a JID: longer text stays a string). */
#define JID_TEXT_MAX 1023

static int
jid_text(struct dec *s, struct wa_str *out, const char *fmt, ...)
{
	char tmp[JID_TEXT_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return fail(s, WG_ELIMIT, s->pos, "JID longer than %zu bytes", sizeof(tmp) - 1);
	return copy_str(s, tmp, (size_t)n, out);
}

static const char *
ad_domain_server(uint8_t domain)
{
	switch (domain) {
	case 1:
		return "lid";
	case 128:
		return "hosted";
	case 129:
		return "hosted.lid";
	}
	/* 0, and agents WhatsApp may add later, live on the phone-number server. */
	return "s.whatsapp.net";
}

static int
read_string(struct dec *s, uint8_t tag, struct wa_str *out, int depth)
{
	size_t at = s->pos - 1;
	int r;
	if (tag >= 1 && tag < 236) {
		const char *t = s->d->single[tag];
		*out = (struct wa_str){t, (uint32_t)strlen(t)};
		return 0;
	}
	switch (tag) {
	case WA_TAG_LIST_EMPTY:
		*out = (struct wa_str){"", 0};
		return 0;
	case WA_TAG_DICT_0:
	case WA_TAG_DICT_0 + 1:
	case WA_TAG_DICT_0 + 2:
	case WA_TAG_DICT_0 + 3: {
		uint8_t idx;
		if ((r = read_u8(s, &idx)))
			return r;
		int dict = tag - WA_TAG_DICT_0;
		if (idx >= s->d->double_len[dict])
			return fail(s, WG_EINVAL, at, "double-byte token %d/%u does not exist", dict,
				    idx);
		const char *t = s->d->double_[dict][idx];
		*out = (struct wa_str){t, (uint32_t)strlen(t)};
		return 0;
	}
	case WA_TAG_BINARY_8:
	case WA_TAG_BINARY_20:
	case WA_TAG_BINARY_32: {
		uint32_t n;
		if ((r = read_binary_len(s, tag, &n)))
			return r;
		r = copy_str(s, (const char *)s->buf + s->pos, n, out);
		s->pos += n;
		return r;
	}
	case WA_TAG_NIBBLE_8:
	case WA_TAG_HEX_8:
		return read_packed(s, tag, out);
	case WA_TAG_JID_PAIR: {
		struct wa_str user, server;
		if ((r = read_part(s, &user, depth)) || (r = read_part(s, &server, depth)))
			return r;
		if (server.len == 0)
			return fail(s, WG_EINVAL, at, "JID pair without a server");
		return jid_text(s, out, "%s@%s", user.p, server.p);
	}
	case WA_TAG_AD_JID: {
		uint8_t domain, device;
		struct wa_str user;
		if ((r = read_u8(s, &domain)) || (r = read_u8(s, &device)) ||
		    (r = read_part(s, &user, depth)))
			return r;
		if (device)
			return jid_text(s, out, "%s:%u@%s", user.p, device,
					ad_domain_server(domain));
		return jid_text(s, out, "%s@%s", user.p, ad_domain_server(domain));
	}
	case WA_TAG_FB_JID: {
		struct wa_str user, server;
		uint32_t device;
		if ((r = read_part(s, &user, depth)) || (r = read_be(s, 2, &device)) ||
		    (r = read_part(s, &server, depth)))
			return r;
		return jid_text(s, out, "%s:%u@%s", user.p, device, server.p);
	}
	case WA_TAG_INTEROP_JID: {
		struct wa_str user, server;
		uint32_t device, integrator;
		if ((r = read_part(s, &user, depth)) || (r = read_be(s, 2, &device)) ||
		    (r = read_be(s, 2, &integrator)) || (r = read_part(s, &server, depth)))
			return r;
		return jid_text(s, out, "%u-%s:%u@%s", integrator, user.p, device, server.p);
	}
	}
	return fail(s, WG_EINVAL, at, "byte 0x%02x does not start a string", tag);
}

static int
read_list_size(struct dec *s, uint8_t tag, uint32_t *n)
{
	switch (tag) {
	case WA_TAG_LIST_EMPTY:
		*n = 0;
		return 0;
	case WA_TAG_LIST_8: {
		uint8_t v = 0;
		int r = read_u8(s, &v);
		*n = v;
		return r;
	}
	case WA_TAG_LIST_16:
		return read_be(s, 2, n);
	}
	return fail(s, WG_EINVAL, s->pos - 1, "byte 0x%02x is not a list header", tag);
}

static int
is_list_tag(uint8_t t)
{
	return t == WA_TAG_LIST_EMPTY || t == WA_TAG_LIST_8 || t == WA_TAG_LIST_16;
}

static int
read_node(struct dec *s, struct wa_node *n, uint32_t depth)
{
	size_t at = s->pos;
	uint8_t t;
	uint32_t size;
	int r;

	if (depth > s->lim->max_depth)
		return fail(s, WG_ELIMIT, at, "nodes nested deeper than %u", s->lim->max_depth);
	if (++s->nodes > s->lim->max_nodes)
		return fail(s, WG_ELIMIT, at, "more than %u nodes", s->lim->max_nodes);
	if ((r = read_u8(s, &t)) || (r = read_list_size(s, t, &size)))
		return r;
	if (size == 0)
		return fail(s, WG_EINVAL, at, "node with an empty list header");
	if ((r = read_u8(s, &t)) || (r = read_string(s, t, &n->tag, 0)))
		return r;
	if (n->tag.len == 0)
		return fail(s, WG_EINVAL, at, "node with an empty tag");

	n->nattrs = (size - 1) >> 1;
	if (n->nattrs > s->lim->max_attrs)
		return fail(s, WG_ELIMIT, at, "node with %u attributes (limit %u)", n->nattrs,
			    s->lim->max_attrs);
	/* Each attribute takes at least two bytes: refuse sizes the input cannot hold. */
	if ((size_t)n->nattrs * 2 > s->len - s->pos)
		return fail(s, WG_ETRUNC, at, "node declares %u attributes but %zu byte(s) are left",
			    n->nattrs, s->len - s->pos);
	n->attrs = NULL;
	if (n->nattrs) {
		n->attrs = dalloc(s, sizeof(*n->attrs) * n->nattrs);
		if (n->attrs == NULL)
			return fail(s, WG_ELIMIT, at, "decoded size exceeds the memory limit");
	}
	for (uint32_t i = 0; i < n->nattrs; i++) {
		if ((r = read_u8(s, &t)) || (r = read_string(s, t, &n->attrs[i].key, 0)))
			return r;
		if ((r = read_u8(s, &t)) || (r = read_string(s, t, &n->attrs[i].value, 0)))
			return r;
	}

	n->kind = WA_CONTENT_NONE;
	n->len = 0;
	if (size % 2 == 1)
		return 0;

	size_t cat = s->pos;
	if ((r = read_u8(s, &t)))
		return r;
	if (is_list_tag(t)) {
		uint32_t count;
		if ((r = read_list_size(s, t, &count)))
			return r;
		/* A child node takes at least three bytes (header, size, tag). */
		if ((size_t)count * 3 > s->len - s->pos)
			return fail(s, WG_ETRUNC, cat, "list of %u nodes but %zu byte(s) are left",
				    count, s->len - s->pos);
		n->kind = WA_CONTENT_LIST;
		n->len = count;
		n->c.children = NULL;
		if (count == 0)
			return 0;
		struct wa_node **kids = dalloc(s, sizeof(*kids) * count);
		struct wa_node *nodes = dalloc(s, sizeof(*nodes) * count);
		if (kids == NULL || nodes == NULL)
			return fail(s, WG_ELIMIT, cat, "decoded size exceeds the memory limit");
		for (uint32_t i = 0; i < count; i++) {
			kids[i] = &nodes[i];
			if ((r = read_node(s, &nodes[i], depth + 1)))
				return r;
		}
		n->c.children = kids;
		return 0;
	}
	if (t == WA_TAG_BINARY_8 || t == WA_TAG_BINARY_20 || t == WA_TAG_BINARY_32) {
		uint32_t len;
		struct wa_str raw;
		if ((r = read_binary_len(s, t, &len)) ||
		    (r = copy_str(s, (const char *)s->buf + s->pos, len, &raw)))
			return r;
		s->pos += len;
		n->kind = WA_CONTENT_BYTES;
		n->len = len;
		n->c.bytes = (const uint8_t *)raw.p;
		return 0;
	}
	struct wa_str str;
	if ((r = read_string(s, t, &str, 0)))
		return r;
	n->kind = WA_CONTENT_STRING;
	n->len = str.len;
	n->c.str = str.p;
	return 0;
}

int
wa_node_decode(const struct wa_dict *d, const uint8_t *buf, size_t len,
	       const struct wa_limits *lim, struct wa_arena *a, struct wa_node **out,
	       struct wa_decode_err *err)
{
	struct dec s = {.d = d, .buf = buf, .len = len, .lim = lim ? lim : &wa_limits_default,
			.a = a, .err = err};
	if (err)
		memset(err, 0, sizeof(*err));
	struct wa_node *n = dalloc(&s, sizeof(*n));
	if (n == NULL)
		return fail(&s, WG_ELIMIT, 0, "decoded size exceeds the memory limit");
	int r = read_node(&s, n, 0);
	if (r)
		return r;
	if (s.pos != len)
		return fail(&s, WG_EINVAL, s.pos, "%zu byte(s) left after the node", len - s.pos);
	*out = n;
	return 0;
}

/* Inflates a zlib stream, refusing output beyond max (a small frame can expand hugely). */
static int
inflate_bounded(const uint8_t *in, size_t len, size_t max, struct wg_buf *out, size_t *bad)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		return WG_EZLIB;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	int zr;
	do {
		wg_buf_reserve(out, 16384);
		size_t room = out->cap - out->len;
		if (out->len + room > max + 1)
			room = max + 1 - out->len;
		z.next_out = out->data + out->len;
		z.avail_out = (uInt)room;
		zr = inflate(&z, Z_NO_FLUSH);
		out->len = room - z.avail_out + out->len;
		if (out->len > max) {
			inflateEnd(&z);
			return WG_ELIMIT;
		}
	} while (zr == Z_OK && (z.avail_in > 0 || z.avail_out == 0));
	*bad = len - z.avail_in;
	inflateEnd(&z);
	return zr == Z_STREAM_END ? 0 : WG_EZLIB;
}

int
wa_frame_decode_node(const struct wa_dict *d, const uint8_t *buf, size_t len,
		     const struct wa_limits *lim, struct wa_arena *a, struct wa_node **out,
		     struct wa_decode_err *err)
{
	if (lim == NULL)
		lim = &wa_limits_default;
	if (len < 1) {
		if (err) {
			memset(err, 0, sizeof(*err));
			snprintf(err->msg, sizeof(err->msg), "empty frame: no flag byte");
		}
		return WG_ETRUNC;
	}
	if (!(buf[0] & WA_FLAG_COMPRESSED)) {
		int r = wa_node_decode(d, buf + 1, len - 1, lim, a, out, err);
		if (r && err)
			err->offset += 1;
		return r;
	}
	struct wg_buf plain = {0};
	size_t bad = 0;
	int r = inflate_bounded(buf + 1, len - 1, lim->max_inflated, &plain, &bad);
	if (r) {
		if (err) {
			memset(err, 0, sizeof(*err));
			err->offset = 1 + bad;
			snprintf(err->msg, sizeof(err->msg), "%s",
				 r == WG_ELIMIT ? "compressed node inflates beyond the size limit"
						: "compressed node is not a valid zlib stream");
		}
		wg_buf_free(&plain);
		return r;
	}
	r = wa_node_decode(d, plain.data, plain.len, lim, a, out, err);
	if (r && err)
		err->inflated = 1;
	wg_buf_free(&plain);
	return r;
}

/* ---- encoding ---- */

struct enc {
	const struct wa_dict *d;
	struct wg_buf *out;
};

static void
put_be(struct enc *e, uint32_t v, int n)
{
	for (int i = n - 1; i >= 0; i--)
		wg_buf_push(e->out, (uint8_t)(v >> (8 * i)));
}

static void
write_byte_length(struct enc *e, size_t n)
{
	if (n >= 1u << 20) {
		wg_buf_push(e->out, WA_TAG_BINARY_32);
		put_be(e, (uint32_t)n, 4);
	} else if (n >= 256) {
		wg_buf_push(e->out, WA_TAG_BINARY_20);
		put_be(e, (uint32_t)n, 3);
	} else {
		wg_buf_push(e->out, WA_TAG_BINARY_8);
		wg_buf_push(e->out, (uint8_t)n);
	}
}

static int
nibble_of(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c == '-')
		return 10;
	if (c == '.')
		return 11;
	return -1;
}

static int
hex_of(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
packable(const char *s, size_t n, int (*val)(char))
{
	if (n == 0 || n > WA_PACKED_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (val(s[i]) < 0)
			return 0;
	return 1;
}

static void
write_packed(struct enc *e, uint8_t tag, const char *s, size_t n, int (*val)(char))
{
	wg_buf_push(e->out, tag);
	wg_buf_push(e->out, (uint8_t)((n + 1) / 2 | (n % 2 ? 0x80 : 0)));
	for (size_t i = 0; i < n; i += 2) {
		int hi = val(s[i]), lo = i + 1 < n ? val(s[i + 1]) : 15;
		wg_buf_push(e->out, (uint8_t)(hi << 4 | lo));
	}
}

static void write_string(struct enc *e, const char *s, size_t n);

/* Parses decimal digits without leading zeros into *v (≤ max). */
static int
parse_uint(const char *s, size_t n, uint32_t max, uint32_t *v)
{
	if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
		return 0;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (x > max)
		return 0;
	*v = (uint32_t)x;
	return 1;
}

static int
ad_domain_of(const char *server, size_t n)
{
	static const struct {
		const char *name;
		int domain;
	} map[] = {{"s.whatsapp.net", 0}, {"lid", 1}, {"hosted", 128}, {"hosted.lid", 129}};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strlen(map[i].name) == n && memcmp(map[i].name, server, n) == 0)
			return map[i].domain;
	return -1;
}

/*
 * Writes s as a JID when it has an '@' and a server; returns 0 when s must be
 * written some other way. A device on a phone-number, LID or hosted server is
 * an AD_JID, as the reference clients write it; device 0 is the primary device
 * and decodes without the ":0", which names the same device. Everything else
 * is a JID_PAIR, whose user part keeps any text exactly.
 */
static int
write_jid(struct enc *e, const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (at == NULL)
		return 0;
	const char *server = at + 1;
	size_t ulen = (size_t)(at - s), slen = n - ulen - 1;
	/*
	 * A second '@' or a NUL makes no JID the decoder reads back (it refuses
	 * a JID inside a JID's part, and a NUL in one): such text stays a string.
	 */
	if (slen == 0 || memchr(server, '@', slen) != NULL || n > JID_TEXT_MAX ||
	    memchr(s, '\0', n) != NULL)
		return 0;
	const char *colon = memchr(s, ':', ulen);
	uint32_t device = 0;
	int domain = ad_domain_of(server, slen);
	int fb = slen == 4 && memcmp(server, "msgr", 4) == 0;
	int interop = slen == 7 && memcmp(server, "interop", 7) == 0;

	if (colon != NULL && e->d->version >= 3 && (fb || interop) &&
	    parse_uint(colon + 1, (size_t)(at - colon - 1), 65535, &device)) {
		if (fb) {
			wg_buf_push(e->out, WA_TAG_FB_JID);
			write_string(e, s, (size_t)(colon - s));
			put_be(e, device, 2);
			write_string(e, server, slen);
			return 1;
		}
		const char *dash = memchr(s, '-', (size_t)(colon - s));
		uint32_t integrator;
		if (dash != NULL && parse_uint(s, (size_t)(dash - s), 65535, &integrator)) {
			wg_buf_push(e->out, WA_TAG_INTEROP_JID);
			write_string(e, dash + 1, (size_t)(colon - dash - 1));
			put_be(e, device, 2);
			put_be(e, integrator, 2);
			write_string(e, server, slen);
			return 1;
		}
	}
	if (colon != NULL && domain >= 0 &&
	    parse_uint(colon + 1, (size_t)(at - colon - 1), 255, &device)) {
		wg_buf_push(e->out, WA_TAG_AD_JID);
		wg_buf_push(e->out, (uint8_t)domain);
		wg_buf_push(e->out, (uint8_t)device);
		write_string(e, s, (size_t)(colon - s));
		return 1;
	}
	wg_buf_push(e->out, WA_TAG_JID_PAIR);
	if (ulen == 0)
		wg_buf_push(e->out, WA_TAG_LIST_EMPTY);
	else
		write_string(e, s, ulen);
	write_string(e, server, slen);
	return 1;
}

static void
write_string(struct enc *e, const char *s, size_t n)
{
	if (n == 0) {
		/* A zero-length raw string: unlike tag 0 it stays a string (not an empty list)
		 * in every position, as current clients write it. */
		write_byte_length(e, 0);
		return;
	}
	int code = wa_dict_find(e->d, s, n);
	if (code >= 0) {
		if (code >= 0x100)
			wg_buf_push(e->out, (uint8_t)(WA_TAG_DICT_0 + (code >> 8) - 1));
		wg_buf_push(e->out, (uint8_t)code);
		return;
	}
	if (packable(s, n, nibble_of)) {
		write_packed(e, WA_TAG_NIBBLE_8, s, n, nibble_of);
		return;
	}
	if (packable(s, n, hex_of)) {
		write_packed(e, WA_TAG_HEX_8, s, n, hex_of);
		return;
	}
	if (write_jid(e, s, n))
		return;
	write_byte_length(e, n);
	wg_buf_append(e->out, s, n);
}

static void
write_list_start(struct enc *e, uint32_t n)
{
	if (n == 0) {
		wg_buf_push(e->out, WA_TAG_LIST_EMPTY);
	} else if (n < 256) {
		wg_buf_push(e->out, WA_TAG_LIST_8);
		wg_buf_push(e->out, (uint8_t)n);
	} else {
		wg_buf_push(e->out, WA_TAG_LIST_16);
		put_be(e, n, 2);
	}
}

static int
encode_node(struct enc *e, const struct wa_node *n, uint32_t depth)
{
	if (depth > wa_limits_default.max_depth)
		return WG_ELIMIT;
	if (n->tag.len == 0)
		return WG_EINVAL;
	uint64_t size = 1 + 2 * (uint64_t)n->nattrs + (n->kind != WA_CONTENT_NONE);
	if (size > 65535 || (n->kind == WA_CONTENT_LIST && n->len > 65535))
		return WG_ELIMIT;
	write_list_start(e, (uint32_t)size);
	write_string(e, n->tag.p, n->tag.len);
	for (uint32_t i = 0; i < n->nattrs; i++) {
		write_string(e, n->attrs[i].key.p, n->attrs[i].key.len);
		write_string(e, n->attrs[i].value.p, n->attrs[i].value.len);
	}
	switch (n->kind) {
	case WA_CONTENT_NONE:
		break;
	case WA_CONTENT_STRING:
		write_string(e, n->c.str, n->len);
		break;
	case WA_CONTENT_BYTES:
		write_byte_length(e, n->len);
		wg_buf_append(e->out, n->c.bytes, n->len);
		break;
	case WA_CONTENT_LIST:
		write_list_start(e, n->len);
		for (uint32_t i = 0; i < n->len; i++) {
			int r = encode_node(e, n->c.children[i], depth + 1);
			if (r)
				return r;
		}
		break;
	}
	return 0;
}

int
wa_node_encode(const struct wa_dict *d, const struct wa_node *n, struct wg_buf *out)
{
	struct enc e = {.d = d, .out = out};
	size_t start = out->len;
	int r = encode_node(&e, n, 0);
	if (r)
		out->len = start;
	return r;
}
