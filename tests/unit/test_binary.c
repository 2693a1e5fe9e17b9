/* Unit tests of the binary node codec: every encoding, round trips, malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/enc.h"
#include "core/err.h"
#include "wa/node.h"
#include "wa/node_json.h"

static const struct wa_dict *v2, *v3;

static int
setup(void **state)
{
	v2 = wa_dict_get(2);
	v3 = wa_dict_get(3);
	return v2 && v3 ? 0 : -1;
}

static size_t
unhex(uint8_t *out, const char *hex)
{
	long n = wg_hex_decode(out, hex, strlen(hex), NULL);
	assert_true(n >= 0);
	return (size_t)n;
}

/* Encodes the node and compares with the expected hex (no flag byte). */
static void
expect_encoding(const struct wa_dict *d, const struct wa_node *n, const char *hex)
{
	struct wg_buf b = {0};
	assert_int_equal(wa_node_encode(d, n, &b), 0);
	char *got = malloc(b.len * 2 + 1);
	wg_hex_encode(got, b.data, b.len);
	assert_string_equal(got, hex);
	free(got);
	wg_buf_free(&b);
}

/* Encodes, decodes, and checks the JSON forms are equal. */
static void
round_trip(const struct wa_dict *d, const struct wa_node *n)
{
	struct wg_buf b = {0};
	struct wa_arena a = {0};
	struct wa_node *back;
	struct wa_decode_err err;
	assert_int_equal(wa_node_encode(d, n, &b), 0);
	int r = wa_node_decode(d, b.data, b.len, NULL, &a, &back, &err);
	if (r)
		fail_msg("decode failed: %s at %zu", err.msg, err.offset);
	json_t *j1 = wa_node_to_json(n), *j2 = wa_node_to_json(back);
	if (!json_equal(j1, j2)) {
		char *s1 = json_dumps(j1, JSON_COMPACT), *s2 = json_dumps(j2, JSON_COMPACT);
		fail_msg("round trip differs:\n  %s\n  %s", s1, s2);
	}
	json_decref(j1);
	json_decref(j2);
	wa_arena_free(&a);
	wg_buf_free(&b);
}

static int
decode_hex(const struct wa_dict *d, const char *hex, struct wa_arena *a, struct wa_node **out,
	   struct wa_decode_err *err)
{
	uint8_t buf[4096];
	size_t n = unhex(buf, hex);
	return wa_node_decode(d, buf, n, NULL, a, out, err);
}

static void
test_worked_example(void **state)
{
	const char *frame = "00f80a1e08ff861234b5678a1f0efa00030431195ff801f80150";
	uint8_t buf[64];
	size_t n = unhex(buf, frame);
	struct wa_arena a = {0};
	struct wa_node *node;
	assert_int_equal(wa_frame_decode_node(v2, buf, n, NULL, &a, &node, NULL), 0);
	assert_string_equal(node->tag.p, "iq");
	assert_string_equal(wa_node_attr(node, "id"), "1234.5678-1");
	assert_string_equal(wa_node_attr(node, "to"), "@s.whatsapp.net");
	assert_string_equal(wa_node_attr(node, "type"), "get");
	assert_string_equal(wa_node_attr(node, "xmlns"), "w:p");
	assert_non_null(wa_node_child(node, "ping"));
	expect_encoding(v2, node, frame + 2);
	wa_arena_free(&a);
}

static void
test_tokens_per_dictionary(void **state)
{
	struct wa_arena a = {0};
	struct wa_node *n = wa_node_new(&a, "iq");
	/* "iq" is single-byte token 30 in v2 and 25 in v3. */
	expect_encoding(v2, n, "f8011e");
	expect_encoding(v3, n, "f80119");
	assert_int_equal(wa_dict_find(v3, "lid", 3), 118);
	assert_int_equal(wa_dict_find(v2, "lid", 3), -1);
	/* Every token of both dictionaries, single and double, round-trips as a tag
	 * and is written in one or two bytes. */
	const struct wa_dict *ds[] = {v2, v3};
	for (int k = 0; k < 2; k++) {
		const struct wa_dict *d = ds[k];
		for (unsigned i = 0; i < d->index_len; i++) {
			struct wa_arena b = {0};
			struct wa_node *t = wa_node_new(&b, d->index[i].str);
			wa_node_set_string(&b, t, d->index[i].str);
			struct wg_buf out = {0};
			assert_int_equal(wa_node_encode(d, t, &out), 0);
			size_t tok = d->index[i].code >= 0x100 ? 2 : 1;
			assert_int_equal(out.len, 2 + 2 * tok);
			wg_buf_free(&out);
			round_trip(d, t);
			wa_arena_free(&b);
		}
	}
	/* A double-byte token is written as dictionary byte + index. */
	const char *dbl = v2->double_[2][7];
	struct wa_node *m = wa_node_new(&a, "iq");
	wa_node_set_attr(&a, m, "type", dbl);
	struct wg_buf out = {0};
	assert_int_equal(wa_node_encode(v2, m, &out), 0);
	assert_int_equal(out.data[out.len - 2], 238);
	assert_int_equal(out.data[out.len - 1], 7);
	wg_buf_free(&out);
	wa_arena_free(&a);
}

static void
check_string_encoding(const struct wa_dict *d, const char *s, const char *content_hex)
{
	struct wa_arena a = {0};
	struct wa_node *n = wa_node_new(&a, "iq");
	wa_node_set_string(&a, n, s);
	struct wg_buf out = {0};
	assert_int_equal(wa_node_encode(d, n, &out), 0);
	char *got = malloc(out.len * 2 + 1);
	wg_hex_encode(got, out.data, out.len);
	/* skip the list header f802 and the tag byte */
	assert_string_equal(got + 6, content_hex);
	free(got);
	wg_buf_free(&out);
	/* Raw content decodes as bytes by the format's rules, so the text round trip is
	 * checked in an attribute value, where every encoding decodes as a string. */
	struct wa_node *m = wa_node_new(&a, "iq");
	wa_node_set_attr(&a, m, "v", s);
	round_trip(d, m);
	wa_arena_free(&a);
}

static void
test_string_encodings(void **state)
{
	check_string_encoding(v2, "12-.", "ff0212ab");
	check_string_encoding(v2, "123", "ff82123f");
	check_string_encoding(v2, "0A9F", "fb020a9f");
	check_string_encoding(v2, "ABC", "fb82abcf");
	/* Lower-case hex is not packed: raw. */
	check_string_encoding(v2, "abc", "fc03616263");
	/* 127 digits pack, 128 do not. */
	char digits[130];
	memset(digits, '7', sizeof(digits));
	digits[127] = '\0';
	struct wa_arena a = {0};
	struct wa_node *n = wa_node_new(&a, "iq");
	wa_node_set_string(&a, n, digits);
	struct wg_buf out = {0};
	assert_int_equal(wa_node_encode(v3, n, &out), 0);
	assert_int_equal(out.data[3], WA_TAG_NIBBLE_8);
	assert_int_equal(out.data[4], 0x80 | 64);
	round_trip(v3, n);
	digits[128] = '\0';
	digits[127] = '7';
	wa_node_set_string(&a, n, digits);
	wg_buf_reset(&out);
	assert_int_equal(wa_node_encode(v3, n, &out), 0);
	assert_int_equal(out.data[3], WA_TAG_BINARY_8);
	wg_buf_free(&out);
	/* The empty string is a zero-length raw string. */
	check_string_encoding(v3, "", "fc00");
	/* UTF-8 text stays raw. */
	check_string_encoding(v3, "h\xc3\xa9llo", "fc0668c3a96c6c6f");
	wa_arena_free(&a);
}

static void
test_jids(void **state)
{
	/* JID_PAIR with a nibble-packed user and a token server. */
	check_string_encoding(v2, "123@s.whatsapp.net", "faff82123f03");
	/* Server only: user is LIST_EMPTY. */
	check_string_encoding(v2, "@s.whatsapp.net", "fa0003");
	/* AD_JID: device > 0, for each domain. */
	check_string_encoding(v3, "15551234567:7@s.whatsapp.net", "f70007ff8615551234567f");
	check_string_encoding(v3, "999:2@lid", "f70102ff82999f");
	check_string_encoding(v3, "5551234:1@hosted", "f78001ff845551234f");
	check_string_encoding(v3, "5551234:1@hosted.lid", "f78101ff845551234f");
	/* Device 0 (the primary device) is an AD_JID too, and decodes without ":0". */
	struct wa_arena z = {0};
	struct wa_node *zero = wa_node_new(&z, "iq");
	wa_node_set_string(&z, zero, "1555:0@s.whatsapp.net");
	expect_encoding(v3, zero, "f80219f70000ff021555");
	struct wa_node *zd;
	assert_int_equal(decode_hex(v3, "f80219f70000ff021555", &z, &zd, NULL), 0);
	assert_string_equal(zd->c.str, "1555@s.whatsapp.net");
	wa_arena_free(&z);
	/* FB and interop JIDs (dictionary 3). */
	struct wa_arena a = {0};
	struct wa_node *n;
	n = wa_node_new(&a, "iq");
	wa_node_set_string(&a, n, "123:5@msgr");
	round_trip(v3, n);
	struct wg_buf out = {0};
	assert_int_equal(wa_node_encode(v3, n, &out), 0);
	assert_int_equal(out.data[3], WA_TAG_FB_JID);
	wg_buf_free(&out);
	wa_node_set_string(&a, n, "7-123:5@interop");
	round_trip(v3, n);
	assert_int_equal(wa_node_encode(v3, n, &out), 0);
	assert_int_equal(out.data[3], WA_TAG_INTEROP_JID);
	wg_buf_free(&out);
	/* With dictionary 2 (whose clients cannot read FB JIDs) they are pairs. */
	wa_node_set_string(&a, n, "123:5@msgr");
	round_trip(v2, n);
	assert_int_equal(wa_node_encode(v2, n, &out), 0);
	assert_int_equal(out.data[3], WA_TAG_JID_PAIR);
	wg_buf_free(&out);
	/* Group and other servers. */
	wa_node_set_string(&a, n, "120363025555555555@g.us");
	round_trip(v3, n);
	wa_node_set_string(&a, n, "status@broadcast");
	round_trip(v3, n);
	wa_arena_free(&a);

	/* Decoding: an unknown AD domain lives on s.whatsapp.net; device 0 is omitted. */
	struct wa_node *d;
	assert_int_equal(decode_hex(v3, "f8021ef70503ff0112", &a, &d, NULL), 0);
	assert_string_equal(d->c.str, "12:3@s.whatsapp.net");
	assert_int_equal(decode_hex(v3, "f8021ef70100ff0112", &a, &d, NULL), 0);
	assert_string_equal(d->c.str, "12@lid");
	wa_arena_free(&a);
}

static void
test_binary_sizes(void **state)
{
	static const size_t sizes[] = {0, 1, 255, 256, (1u << 20) - 1, 1u << 20};
	static const uint8_t tags[] = {WA_TAG_BINARY_8,  WA_TAG_BINARY_8,  WA_TAG_BINARY_8,
				       WA_TAG_BINARY_20, WA_TAG_BINARY_20, WA_TAG_BINARY_32};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct wa_arena a = {0};
		uint8_t *data = malloc(sizes[i] + 1);
		for (size_t k = 0; k < sizes[i]; k++)
			data[k] = (uint8_t)(k * 31 + 7);
		struct wa_node *n = wa_node_new(&a, "enc");
		wa_node_set_bytes(&a, n, data, sizes[i]);
		struct wg_buf out = {0};
		assert_int_equal(wa_node_encode(v3, n, &out), 0);
		assert_int_equal(out.data[3], tags[i]);
		struct wa_node *back;
		struct wa_arena b = {0};
		assert_int_equal(wa_node_decode(v3, out.data, out.len, NULL, &b, &back, NULL), 0);
		assert_int_equal(back->kind, WA_CONTENT_BYTES);
		assert_int_equal(back->len, sizes[i]);
		assert_memory_equal(back->c.bytes, data, sizes[i]);
		wg_buf_free(&out);
		wa_arena_free(&a);
		wa_arena_free(&b);
		free(data);
	}
}

static void
test_lists(void **state)
{
	struct wa_arena a = {0};
	struct wa_node *root = wa_node_new(&a, "iq");
	wa_node_set_attr(&a, root, "id", "abc");
	/* 300 children need LIST_16; nesting three levels deep. */
	for (int i = 0; i < 300; i++) {
		struct wa_node *c = wa_node_add_child(&a, root, "item");
		char id[16];
		snprintf(id, sizeof(id), "%d", i);
		wa_node_set_attr(&a, c, "id", id);
		if (i % 50 == 0) {
			struct wa_node *g = wa_node_add_child(&a, c, "list");
			wa_node_add_child(&a, g, "leaf");
		}
	}
	struct wg_buf out = {0};
	assert_int_equal(wa_node_encode(v3, root, &out), 0);
	assert_int_equal(out.data[0], WA_TAG_LIST_8);
	assert_int_equal(out.data[9], WA_TAG_LIST_16);
	wg_buf_free(&out);
	round_trip(v3, root);
	/* An empty list. */
	struct wa_node *e = wa_node_new(&a, "iq");
	e->kind = WA_CONTENT_LIST;
	expect_encoding(v3, e, "f8021900");
	wa_arena_free(&a);
}

static void
test_compressed_frame(void **state)
{
	const char *node = "f80a1e08ff861234b5678a1f0efa00030431195ff801f80150";
	uint8_t plain[64], frame[128];
	size_t n = unhex(plain, node);
	uLongf clen = sizeof(frame) - 1;
	assert_int_equal(compress(frame + 1, &clen, plain, n), Z_OK);
	frame[0] = WA_FLAG_COMPRESSED;
	struct wa_arena a = {0};
	struct wa_node *out;
	assert_int_equal(wa_frame_decode_node(v2, frame, clen + 1, NULL, &a, &out, NULL), 0);
	assert_string_equal(wa_node_attr(out, "id"), "1234.5678-1");
	/* Corrupt the stream. */
	frame[5] ^= 0xFF;
	struct wa_decode_err err;
	assert_true(wa_frame_decode_node(v2, frame, clen + 1, NULL, &a, &out, &err) < 0);
	/* A bomb: 1 MiB of zeros inflates past a 64 KiB limit. */
	size_t big = 1u << 20;
	uint8_t *zeros = calloc(1, big);
	uLongf blen = compressBound(big);
	uint8_t *bomb = malloc(blen + 1);
	assert_int_equal(compress(bomb + 1, &blen, zeros, big), Z_OK);
	bomb[0] = WA_FLAG_COMPRESSED;
	struct wa_limits lim = wa_limits_default;
	lim.max_inflated = 64 * 1024;
	assert_int_equal(wa_frame_decode_node(v2, bomb, blen + 1, &lim, &a, &out, &err),
			 WG_ELIMIT);
	free(zeros);
	free(bomb);
	wa_arena_free(&a);
}

struct bad_case {
	const char *hex;
	int code;
	size_t offset;
};

static void
test_malformed(void **state)
{
	static const struct bad_case cases[] = {
		{"", WG_ETRUNC, 0},               /* nothing */
		{"f8", WG_ETRUNC, 1},             /* list size missing */
		{"05", WG_EINVAL, 0},             /* not a list header */
		{"00", WG_EINVAL, 0},             /* empty list header */
		{"f80100", WG_EINVAL, 0},         /* empty tag */
		{"f8021e", WG_ETRUNC, 3},         /* content missing */
		{"f8031e08", WG_ETRUNC, 0},       /* one attribute, value missing */
		{"f8031e08fc05", WG_ETRUNC, 6},   /* a value longer than the input */
		{"f8021ef0", WG_EINVAL, 3},       /* 0xf0 starts no string */
		{"f8021eff01cd", WG_EINVAL, 5},   /* nibble 12 is invalid */
		{"f8021eff80", WG_EINVAL, 3},     /* odd packed string of no bytes */
		{"f8021efa0000", WG_EINVAL, 3},   /* JID pair without a server */
		{"f8021efc05616263", WG_ETRUNC, 5}, /* raw length beyond the input */
		{"f8021efd0fffff", WG_ETRUNC, 7},  /* BINARY_20 beyond the input */
		{"f8021efeffffffff", WG_ETRUNC, 8}, /* BINARY_32 beyond the input */
		{"f8011e00", WG_EINVAL, 3},       /* trailing byte */
		{"f8021ef8ff", WG_ETRUNC, 3},     /* 255 children, no bytes */
		{"f9ffff1e", WG_ELIMIT, 0},       /* 32767 attributes: over the limit */
		{"f903ff1e", WG_ETRUNC, 0},       /* 511 attributes, no bytes */
		{"f8021ef70000", WG_ETRUNC, 6},   /* AD JID without user */
		{"f8021ef6ff8112", WG_ETRUNC, 7}, /* FB JID without device */
		{"f8021efafa000303", WG_EINVAL, 4}, /* a JID inside a JID */
		{"f8021efafc03614062fc0161", WG_EINVAL, 4}, /* '@' in a JID part */
		{"f8021efafc03610062fc0161", WG_EINVAL, 4}, /* a NUL in a JID part: its text would stop there */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wa_arena a = {0};
		struct wa_node *n;
		struct wa_decode_err err;
		int r = decode_hex(v3, cases[i].hex, &a, &n, &err);
		if (r != cases[i].code || err.offset != cases[i].offset)
			fail_msg("case %zu (%s): got %d at %zu (%s), want %d at %zu", i,
				 cases[i].hex, r, err.offset, err.msg, cases[i].code,
				 cases[i].offset);
		assert_true(err.msg[0] != '\0');
		wa_arena_free(&a);
	}
}

static void
test_every_prefix_fails(void **state)
{
	/* Every truncation of a valid node is an error, never a crash or a read past the end. */
	struct wa_arena a = {0};
	struct wa_node *root = wa_node_new(&a, "message");
	wa_node_set_attr(&a, root, "from", "15551234567:3@s.whatsapp.net");
	wa_node_set_attr(&a, root, "id", "3EB0ABCDEF");
	wa_node_set_attr(&a, root, "t", "1700000000");
	struct wa_node *enc = wa_node_add_child(&a, root, "enc");
	wa_node_set_bytes(&a, enc, "\x01\x02\x03\x04\x05", 5);
	wa_node_set_string(&a, wa_node_add_child(&a, root, "body"), "hello world");
	struct wg_buf out = {0};
	assert_int_equal(wa_node_encode(v3, root, &out), 0);
	for (size_t len = 0; len < out.len; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		memcpy(copy, out.data, len);
		struct wa_arena b = {0};
		struct wa_node *n;
		struct wa_decode_err err;
		assert_true(wa_node_decode(v3, copy, len, NULL, &b, &n, &err) < 0);
		assert_true(err.offset <= len);
		wa_arena_free(&b);
		free(copy);
	}
	/* Every single-byte corruption decodes or fails cleanly (ASan checks the reads). */
	for (size_t i = 0; i < out.len; i++) {
		for (int v = 0; v < 256; v += 17) {
			uint8_t *copy = malloc(out.len);
			memcpy(copy, out.data, out.len);
			copy[i] = (uint8_t)v;
			struct wa_arena b = {0};
			struct wa_node *n;
			(void)wa_node_decode(v3, copy, out.len, NULL, &b, &n, NULL);
			wa_arena_free(&b);
			free(copy);
		}
	}
	wg_buf_free(&out);
	wa_arena_free(&a);
}

static void
test_limits(void **state)
{
	struct wa_limits lim = wa_limits_default;
	struct wa_arena a = {0};
	struct wa_node *root = wa_node_new(&a, "a"), *cur = root;
	for (int i = 0; i < 10; i++)
		cur = wa_node_add_child(&a, cur, "a");
	struct wg_buf out = {0};
	assert_int_equal(wa_node_encode(v3, root, &out), 0);
	struct wa_node *n;
	struct wa_decode_err err;
	struct wa_arena b = {0};
	lim.max_depth = 5;
	assert_int_equal(wa_node_decode(v3, out.data, out.len, &lim, &b, &n, &err), WG_ELIMIT);
	lim = wa_limits_default;
	lim.max_nodes = 5;
	assert_int_equal(wa_node_decode(v3, out.data, out.len, &lim, &b, &n, &err), WG_ELIMIT);
	lim = wa_limits_default;
	assert_int_equal(wa_node_decode(v3, out.data, out.len, &lim, &b, &n, &err), 0);
	wg_buf_reset(&out);
	struct wa_node *many = wa_node_new(&a, "x");
	for (int i = 0; i < 20; i++) {
		char k[8];
		snprintf(k, sizeof(k), "k%d", i);
		wa_node_set_attr(&a, many, k, "v");
	}
	assert_int_equal(wa_node_encode(v3, many, &out), 0);
	lim.max_attrs = 10;
	assert_int_equal(wa_node_decode(v3, out.data, out.len, &lim, &b, &n, &err), WG_ELIMIT);
	lim = wa_limits_default;
	lim.max_arena = 64;
	assert_int_equal(wa_node_decode(v3, out.data, out.len, &lim, &b, &n, &err), WG_ELIMIT);
	/* The encoder refuses an empty tag. */
	struct wa_node *bad = wa_node_new(&a, "");
	assert_int_equal(wa_node_encode(v3, bad, &out), WG_EINVAL);
	wg_buf_free(&out);
	wa_arena_free(&a);
	wa_arena_free(&b);
}

static void
test_json(void **state)
{
	struct wa_arena a = {0};
	struct wa_node *n;
	char why[256];
	json_error_t je;
	json_t *j = json_loads("{\"tag\":\"iq\",\"attrs\":{\"id\":\"1\"},\"content\":[{\"tag\":\"x\","
			       "\"attrs\":{},\"content\":{\"bytes\":\"AQID\"}},{\"tag\":\"y\","
			       "\"content\":\"hello\"}]}",
			       0, &je);
	assert_non_null(j);
	assert_int_equal(wa_node_from_json(j, &a, &n, why, sizeof(why)), 0);
	assert_int_equal(n->len, 2);
	assert_int_equal(n->c.children[0]->kind, WA_CONTENT_BYTES);
	assert_memory_equal(n->c.children[0]->c.bytes, "\x01\x02\x03", 3);
	json_t *back = wa_node_to_json(n);
	json_object_set_new(json_array_get(json_object_get(j, "content"), 1), "attrs",
			    json_object());
	assert_true(json_equal(j, back));
	json_decref(back);
	json_decref(j);

	static const char *bad[] = {
		"[]",
		"{\"attrs\":{}}",
		"{\"tag\":\"\"}",
		"{\"tag\":\"x\",\"attrs\":{\"a\":1}}",
		"{\"tag\":\"x\",\"content\":5}",
		"{\"tag\":\"x\",\"content\":{\"bytes\":\"!!\"}}",
		"{\"tag\":\"x\",\"content\":[1]}",
		"{\"tag\":\"x\",\"extra\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *b = json_loads(bad[i], 0, &je);
		assert_non_null(b);
		why[0] = '\0';
		assert_int_equal(wa_node_from_json(b, &a, &n, why, sizeof(why)), WG_EINVAL);
		assert_true(why[0] == '$');
		json_decref(b);
	}
	/* Invalid UTF-8 from the wire becomes U+FFFD in JSON. */
	struct wa_node *raw;
	assert_int_equal(decode_hex(v3, "f8031e08fc0261ff", &a, &raw, NULL), 0);
	json_t *o = wa_node_to_json(raw);
	const char *k;
	json_t *val;
	json_object_foreach(json_object_get(o, "attrs"), k, val)
		assert_string_equal(json_string_value(val), "a\xef\xbf\xbd");
	assert_int_equal(json_object_size(json_object_get(o, "attrs")), 1);
	json_decref(o);
	wa_arena_free(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worked_example),
		cmocka_unit_test(test_tokens_per_dictionary),
		cmocka_unit_test(test_string_encodings),
		cmocka_unit_test(test_jids),
		cmocka_unit_test(test_binary_sizes),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_compressed_frame),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_every_prefix_fails),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
