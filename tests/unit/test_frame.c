/* Unit tests for wa/frame: re-assembly across WebSocket messages, the intro, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "wa/frame.h"

#define MAX_FRAMES 16

struct got {
	struct wg_buf frame[MAX_FRAMES];
	int n;
};

static void
got_free(struct got *g)
{
	for (int i = 0; i < MAX_FRAMES; i++)
		wg_buf_free(&g->frame[i]);
	g->n = 0;
}

/* Feeds stream in pieces of step bytes, draining after each; returns the first error or 0. */
static int
feed_stepwise(struct wa_frame_reader *r, const uint8_t *stream, size_t len, size_t step,
              struct got *g)
{
	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;
		/* A private copy that dies after draining proves that frames
		 * handed out do not point into input the caller released. */
		uint8_t *copy = malloc(n);
		memcpy(copy, stream + off, n);
		int rc = wa_frame_feed(r, copy, n);
		const uint8_t *p;
		size_t plen;
		while (rc == 0 && (rc = wa_frame_next(r, &p, &plen)) == 1) {
			assert_true(g->n < MAX_FRAMES);
			wg_buf_append(&g->frame[g->n++], p, plen);
			rc = 0;
		}
		free(copy);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Three frames of 0, 5 and 300 bytes, each byte of a payload distinct per frame. */
static void
make_stream(struct wg_buf *s)
{
	static const size_t lens[] = {0, 5, 300};
	for (size_t f = 0; f < 3; f++) {
		uint8_t p[300];
		for (size_t i = 0; i < lens[f]; i++)
			p[i] = (uint8_t)(f * 37 + i);
		assert_int_equal(wa_frame_write(s, p, lens[f]), 0);
	}
}

static void
check_stream_frames(const struct got *g)
{
	assert_int_equal(g->n, 3);
	assert_int_equal(g->frame[0].len, 0);
	assert_int_equal(g->frame[1].len, 5);
	assert_int_equal(g->frame[2].len, 300);
	for (size_t i = 0; i < 300; i++)
		assert_int_equal(g->frame[2].data[i], (uint8_t)(2 * 37 + i));
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(g->frame[1].data[i], (uint8_t)(37 + i));
}

static void
test_write_header(void **state)
{
	(void)state;
	struct wg_buf b = {0};
	uint8_t p[2] = {0xaa, 0xbb};
	assert_int_equal(wa_frame_write(&b, p, 2), 0);
	uint8_t want[] = {0, 0, 2, 0xaa, 0xbb};
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	/* The length is checked before the payload is touched. */
	assert_int_equal(wa_frame_write(&b, NULL, WA_FRAME_HARD_MAX + 1), WG_ELIMIT);
	assert_int_equal(b.len, sizeof(want));
	wg_buf_free(&b);
}

static void
test_split_byte_by_byte(void **state)
{
	(void)state;
	struct wg_buf s = {0};
	struct got g = {0};
	struct wa_frame_reader r;
	make_stream(&s);
	wa_frame_reader_init(&r, WA_FRAME_CLIENT, 0);
	assert_int_equal(feed_stepwise(&r, s.data, s.len, 1, &g), 0);
	check_stream_frames(&g);
	/* Odd piece sizes too, so headers and payloads split at every offset. */
	for (size_t step = 2; step < 12; step++) {
		got_free(&g);
		assert_int_equal(feed_stepwise(&r, s.data, s.len, step, &g), 0);
		check_stream_frames(&g);
	}
	wa_frame_reader_free(&r);
	got_free(&g);
	wg_buf_free(&s);
}

static void
test_several_frames_one_message(void **state)
{
	(void)state;
	struct wg_buf s = {0};
	struct wa_frame_reader r;
	const uint8_t *p;
	size_t len;
	make_stream(&s);
	wa_frame_reader_init(&r, WA_FRAME_CLIENT, 0);
	assert_int_equal(wa_frame_feed(&r, s.data, s.len), 0);
	assert_int_equal(wa_frame_next(&r, &p, &len), 1);
	assert_int_equal(len, 0);
	assert_int_equal(wa_frame_next(&r, &p, &len), 1);
	assert_int_equal(len, 5);
	/* Whole frames are handed out in place, without a copy. */
	assert_ptr_equal(p, s.data + 3 + 3);
	/* Feeding before the input is drained is refused. */
	assert_int_equal(wa_frame_feed(&r, s.data, 1), WG_ESTATE);
	assert_int_equal(wa_frame_next(&r, &p, &len), 1);
	assert_int_equal(len, 300);
	assert_int_equal(p[299], (uint8_t)(2 * 37 + 299));
	assert_int_equal(wa_frame_next(&r, &p, &len), 0);
	assert_int_equal(wa_frame_next(&r, &p, &len), 0);
	/* A message ending halfway through a frame; the rest comes next. */
	assert_int_equal(wa_frame_feed(&r, s.data, 10), 0);
	assert_int_equal(wa_frame_next(&r, &p, &len), 1);
	assert_int_equal(len, 0);
	assert_int_equal(wa_frame_next(&r, &p, &len), 0);
	assert_int_equal(wa_frame_feed(&r, s.data + 10, s.len - 10), 0);
	assert_int_equal(wa_frame_next(&r, &p, &len), 1);
	assert_int_equal(len, 5);
	assert_int_equal(p[4], 37 + 4);
	assert_int_equal(wa_frame_next(&r, &p, &len), 1);
	assert_int_equal(len, 300);
	assert_int_equal(wa_frame_next(&r, &p, &len), 0);
	wa_frame_reader_free(&r);
	wg_buf_free(&s);
}

static void
run_server_stream(const uint8_t *prefix, size_t prefix_len, int want_dv, size_t step)
{
	struct wg_buf s = {0};
	struct got g = {0};
	struct wa_frame_reader r;
	wg_buf_append(&s, prefix, prefix_len);
	make_stream(&s);
	wa_frame_reader_init(&r, WA_FRAME_SERVER, 0);
	assert_int_equal(wa_frame_dict_version(&r), 0);
	assert_int_equal(feed_stepwise(&r, s.data, s.len, step, &g), 0);
	assert_int_equal(wa_frame_dict_version(&r), want_dv);
	check_stream_frames(&g);
	wa_frame_reader_free(&r);
	got_free(&g);
	wg_buf_free(&s);
}

static void
test_server_intro(void **state)
{
	(void)state;
	uint8_t v2[] = {0x57, 0x41, 0x06, 0x02};
	uint8_t v3[] = {0x57, 0x41, 0x06, 0x03};
	for (size_t step = 1; step < 8; step++) {
		run_server_stream(v2, sizeof(v2), 2, step);
		run_server_stream(v3, sizeof(v3), 3, step);
	}
	run_server_stream(v3, sizeof(v3), 3, 4096);

	struct wg_buf w = {0};
	wa_frame_write_intro(&w, 3);
	assert_memory_equal(w.data, v3, 4);
	wg_buf_free(&w);
}

static void
test_server_routing_prefix(void **state)
{
	(void)state;
	struct wg_buf pre = {0};
	const uint8_t info[] = {0x08, 0x08, 0x08, 0x02, 0x08, 0x05};
	assert_int_equal(wa_frame_write_routing(&pre, info, sizeof(info)), 0);
	const uint8_t want_hdr[] = {'E', 'D', 0, 1, 0, 0, 6};
	assert_memory_equal(pre.data, want_hdr, sizeof(want_hdr));
	wa_frame_write_intro(&pre, 2);
	for (size_t step = 1; step < 12; step++)
		run_server_stream(pre.data, pre.len, 2, step);
	run_server_stream(pre.data, pre.len, 2, 4096);

	/* An empty routing block is legal too. */
	wg_buf_reset(&pre);
	assert_int_equal(wa_frame_write_routing(&pre, NULL, 0), 0);
	wa_frame_write_intro(&pre, 3);
	run_server_stream(pre.data, pre.len, 3, 1);

	/* A routing block longer than 64 KiB uses the high length byte. */
	wg_buf_reset(&pre);
	uint8_t *big = calloc(1, 70000);
	assert_int_equal(wa_frame_write_routing(&pre, big, 70000), 0);
	assert_int_equal(pre.data[4], 70000 >> 16);
	wa_frame_write_intro(&pre, 3);
	run_server_stream(pre.data, pre.len, 3, 999);
	free(big);
	wg_buf_free(&pre);
}

/* A client's reader takes a handshake's worth until it is told the peer is known, then full frames. */
static void
test_reader_max_raised(void **state)
{
	(void)state;
	struct wa_frame_reader r;
	const uint8_t *p;
	size_t plen;
	const uint8_t big[] = {0x01, 0x00, 0x00}; /* announces 65,536 bytes */
	wa_frame_reader_init(&r, WA_FRAME_CLIENT, 65535);
	int rc = wa_frame_feed(&r, big, sizeof(big));
	if (rc == 0)
		rc = wa_frame_next(&r, &p, &plen);
	assert_int_equal(rc, WG_ELIMIT);
	wa_frame_reader_free(&r);
	wa_frame_reader_init(&r, WA_FRAME_CLIENT, 65535);
	wa_frame_reader_set_max(&r, WA_FRAME_HARD_MAX);
	assert_int_equal(wa_frame_feed(&r, big, sizeof(big)), 0);
	assert_int_equal(wa_frame_next(&r, &p, &plen), 0); /* waiting for the payload */
	wa_frame_reader_free(&r);
}

static int
server_feed_all(const uint8_t *data, size_t len, size_t max)
{
	struct wa_frame_reader r;
	const uint8_t *p;
	size_t plen;
	int rc;
	wa_frame_reader_init(&r, WA_FRAME_SERVER, max);
	rc = wa_frame_feed(&r, data, len);
	while (rc == 0 && (rc = wa_frame_next(&r, &p, &plen)) == 1)
		rc = 0;
	/* Errors are sticky. */
	if (rc < 0) {
		assert_int_equal(wa_frame_next(&r, &p, &plen), rc);
		assert_int_equal(wa_frame_feed(&r, data, len), rc);
	}
	wa_frame_reader_free(&r);
	return rc;
}

static void
test_server_bad_intro(void **state)
{
	(void)state;
	const uint8_t dv4[] = {0x57, 0x41, 0x06, 0x04, 0, 0, 0};
	const uint8_t dv1[] = {0x57, 0x41, 0x06, 0x01};
	const uint8_t magic[] = {0x57, 0x41, 0x05, 0x03};
	const uint8_t junk[] = {'G', 'E', 'T', ' '};
	const uint8_t bad_ed[] = {'E', 'D', 0, 2, 0, 0, 0, 0x57, 0x41, 0x06, 0x03};
	const uint8_t two_ed[] = {'E', 'D', 0, 1, 0, 0, 0, 'E', 'D', 0, 1, 0, 0, 0};
	const uint8_t good[] = {0x57, 0x41, 0x06, 0x03, 0, 0, 1, 0xff};
	assert_int_equal(server_feed_all(dv4, sizeof(dv4), 0), WG_EPROTO);
	assert_int_equal(server_feed_all(dv1, sizeof(dv1), 0), WG_EPROTO);
	assert_int_equal(server_feed_all(magic, sizeof(magic), 0), WG_EPROTO);
	assert_int_equal(server_feed_all(junk, sizeof(junk), 0), WG_EPROTO);
	assert_int_equal(server_feed_all(bad_ed, sizeof(bad_ed), 0), WG_EPROTO);
	assert_int_equal(server_feed_all(two_ed, sizeof(two_ed), 0), WG_EPROTO);
	assert_int_equal(server_feed_all(good, sizeof(good), 0), 0);
	/* The client role expects no intro: the same bytes are an oversized frame header. */
	struct wa_frame_reader r;
	const uint8_t *p;
	size_t plen;
	wa_frame_reader_init(&r, WA_FRAME_CLIENT, 1024);
	assert_int_equal(wa_frame_feed(&r, good, sizeof(good)), 0);
	assert_int_equal(wa_frame_next(&r, &p, &plen), WG_ELIMIT);
	wa_frame_reader_free(&r);
}

static void
test_oversize(void **state)
{
	(void)state;
	uint8_t at_limit[3 + 100] = {0, 0, 100};
	uint8_t over[3 + 101] = {0, 0, 101};
	struct wa_frame_reader r;
	struct got g = {0};
	const uint8_t *p;
	size_t plen;

	wa_frame_reader_init(&r, WA_FRAME_CLIENT, 100);
	assert_int_equal(wa_frame_feed(&r, at_limit, sizeof(at_limit)), 0);
	assert_int_equal(wa_frame_next(&r, &p, &plen), 1);
	assert_int_equal(plen, 100);
	assert_int_equal(wa_frame_next(&r, &p, &plen), 0);
	/* Rejected from the header alone, before any payload is buffered. */
	assert_int_equal(wa_frame_feed(&r, over, 3), 0);
	assert_int_equal(wa_frame_next(&r, &p, &plen), WG_ELIMIT);
	wa_frame_reader_free(&r);

	/* The same when the header itself arrives in pieces. */
	wa_frame_reader_init(&r, WA_FRAME_CLIENT, 100);
	assert_int_equal(feed_stepwise(&r, over, sizeof(over), 1, &g), WG_ELIMIT);
	assert_int_equal(g.n, 0);
	wa_frame_reader_free(&r);

	/* The hard maximum: 0xFFFFFF is the largest, and a bigger limit is clamped. */
	wa_frame_reader_init(&r, WA_FRAME_CLIENT, 0);
	assert_int_equal(r.max, WA_FRAME_DEFAULT_MAX);
	wa_frame_reader_init(&r, WA_FRAME_CLIENT, (size_t)1 << 30);
	assert_int_equal(r.max, WA_FRAME_HARD_MAX);
	uint8_t huge_hdr[] = {0xff, 0xff, 0xff, 1, 2, 3};
	assert_int_equal(wa_frame_feed(&r, huge_hdr, sizeof(huge_hdr)), 0);
	assert_int_equal(wa_frame_next(&r, &p, &plen), 0);
	/* Only the bytes that arrived are buffered. */
	assert_true(r.partial.len == 3);
	wa_frame_reader_free(&r);

	/* A server with a small limit rejects an oversize first frame after the intro. */
	uint8_t intro_over[4 + 3] = {0x57, 0x41, 0x06, 0x02, 0, 0x10, 0};
	assert_int_equal(server_feed_all(intro_over, sizeof(intro_over), 0x0fff), WG_ELIMIT);
	got_free(&g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write_header),
	    cmocka_unit_test(test_reader_max_raised),
	    cmocka_unit_test(test_split_byte_by_byte),
	    cmocka_unit_test(test_several_frames_one_message),
	    cmocka_unit_test(test_server_intro),
	    cmocka_unit_test(test_server_routing_prefix),
	    cmocka_unit_test(test_server_bad_intro),
	    cmocka_unit_test(test_oversize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
