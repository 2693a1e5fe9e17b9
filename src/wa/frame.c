#include "wa/frame.h"

#include <string.h>

#include "core/err.h"

enum {
	PH_INTRO,  /* expecting `57 41 06 DV`, or the start of an ED block */
	PH_ROUTE,  /* collecting `'E' 'D' 00 01 L L L` */
	PH_SKIP,   /* skipping routing-info bytes */
	PH_FRAMES, /* intro done (always the case for the client role) */
};

#define ROUTE_HDR_LEN 7

void
wa_frame_reader_init(struct wa_frame_reader *r, enum wa_frame_role role, size_t max_frame)
{
	memset(r, 0, sizeof(*r));
	r->role = role;
	if (max_frame == 0)
		max_frame = WA_FRAME_DEFAULT_MAX;
	r->max = max_frame > WA_FRAME_HARD_MAX ? WA_FRAME_HARD_MAX : max_frame;
	r->phase = role == WA_FRAME_SERVER ? PH_INTRO : PH_FRAMES;
}

void
wa_frame_reader_set_max(struct wa_frame_reader *r, size_t max_frame)
{
	if (max_frame == 0)
		max_frame = WA_FRAME_DEFAULT_MAX;
	r->max = max_frame > WA_FRAME_HARD_MAX ? WA_FRAME_HARD_MAX : max_frame;
}

void
wa_frame_reader_free(struct wa_frame_reader *r)
{
	wg_buf_free(&r->partial);
	r->in = NULL;
	r->in_len = 0;
}

int
wa_frame_feed(struct wa_frame_reader *r, const uint8_t *data, size_t len)
{
	if (r->err)
		return r->err;
	if (r->in_len > 0)
		return WG_ESTATE;
	r->in = data;
	r->in_len = len;
	return 0;
}

int
wa_frame_dict_version(const struct wa_frame_reader *r)
{
	return r->dv;
}

static int
fail(struct wa_frame_reader *r, int err)
{
	r->err = err;
	r->in = NULL;
	r->in_len = 0;
	return err;
}

static void
advance(struct wa_frame_reader *r, size_t n)
{
	r->in += n;
	r->in_len -= n;
}

/* Consumes the intro. Returns 1 when done, 0 when more input is needed, or an error. */
static int
read_intro(struct wa_frame_reader *r)
{
	while (r->phase != PH_FRAMES) {
		if (r->in_len == 0)
			return 0;
		if (r->phase == PH_SKIP) {
			size_t n = r->skip < r->in_len ? r->skip : r->in_len;
			advance(r, n);
			r->skip -= n;
			if (r->skip == 0)
				r->phase = PH_INTRO;
			continue;
		}
		uint8_t c = r->in[0];
		advance(r, 1);
		r->intro[r->intro_len++] = c;
		if (r->phase == PH_INTRO) {
			/* Only one routing block, and only before the intro. */
			if (r->intro_len == 1 && c == 'E' && !r->routed) {
				r->phase = PH_ROUTE;
				continue;
			}
			if (r->intro_len < WA_FRAME_INTRO_LEN)
				continue;
			if (r->intro[0] != 0x57 || r->intro[1] != 0x41 || r->intro[2] != 0x06)
				return WG_EPROTO;
			if (r->intro[3] != 2 && r->intro[3] != 3)
				return WG_EPROTO;
			r->dv = r->intro[3];
			r->phase = PH_FRAMES;
		} else if (r->phase == PH_ROUTE) {
			if (r->intro_len < ROUTE_HDR_LEN)
				continue;
			if (r->intro[1] != 'D' || r->intro[2] != 0 || r->intro[3] != 1)
				return WG_EPROTO;
			r->skip =
			    (size_t)r->intro[4] << 16 | (size_t)r->intro[5] << 8 | r->intro[6];
			r->intro_len = 0;
			r->routed = 1;
			r->phase = r->skip ? PH_SKIP : PH_INTRO;
		}
	}
	return 1;
}

static int
start_frame(struct wa_frame_reader *r, const uint8_t *hdr)
{
	size_t len = (size_t)hdr[0] << 16 | (size_t)hdr[1] << 8 | hdr[2];
	if (len > r->max)
		return WG_ELIMIT;
	r->need = len;
	r->in_frame = 1;
	wg_buf_reset(&r->partial);
	return 0;
}

int
wa_frame_next(struct wa_frame_reader *r, const uint8_t **payload, size_t *len)
{
	static const uint8_t empty[1];
	int rc;

	if (r->err)
		return r->err;
	if (r->partial_done) {
		wg_buf_reset(&r->partial);
		r->partial_done = 0;
	}
	if (r->phase != PH_FRAMES) {
		rc = read_intro(r);
		if (rc < 0)
			return fail(r, rc);
		if (rc == 0)
			goto need_more;
	}
	for (;;) {
		if (!r->in_frame) {
			if (r->lenb_len == 0 && r->in_len >= 3) {
				size_t n =
				    (size_t)r->in[0] << 16 | (size_t)r->in[1] << 8 | r->in[2];
				if (n > r->max)
					return fail(r, WG_ELIMIT);
				if (r->in_len - 3 >= n) {
					/* The whole frame is in the input: no copy. */
					*payload = n ? r->in + 3 : empty;
					*len = n;
					advance(r, 3 + n);
					return 1;
				}
				if ((rc = start_frame(r, r->in)) < 0)
					return fail(r, rc);
				advance(r, 3);
			} else {
				if (r->in_len == 0)
					goto need_more;
				r->lenb[r->lenb_len++] = r->in[0];
				advance(r, 1);
				if (r->lenb_len < 3)
					continue;
				r->lenb_len = 0;
				if ((rc = start_frame(r, r->lenb)) < 0)
					return fail(r, rc);
			}
		}
		size_t want = r->need - r->partial.len;
		size_t take = want < r->in_len ? want : r->in_len;
		wg_buf_append(&r->partial, r->in, take);
		advance(r, take);
		if (r->partial.len < r->need)
			goto need_more;
		r->in_frame = 0;
		r->partial_done = 1;
		*payload = r->partial.len ? r->partial.data : empty;
		*len = r->partial.len;
		return 1;
	}
need_more:
	r->in = NULL;
	r->in_len = 0;
	return 0;
}

int
wa_frame_write(struct wg_buf *out, const uint8_t *payload, size_t len)
{
	if (len > WA_FRAME_HARD_MAX)
		return WG_ELIMIT;
	uint8_t hdr[3] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
	wg_buf_reserve(out, 3 + len);
	wg_buf_append(out, hdr, sizeof(hdr));
	wg_buf_append(out, payload, len);
	return 0;
}

void
wa_frame_write_intro(struct wg_buf *out, int dict_version)
{
	uint8_t intro[WA_FRAME_INTRO_LEN] = {0x57, 0x41, 0x06, (uint8_t)dict_version};
	wg_buf_append(out, intro, sizeof(intro));
}

int
wa_frame_write_routing(struct wg_buf *out, const uint8_t *info, size_t len)
{
	if (len > WA_FRAME_HARD_MAX)
		return WG_ELIMIT;
	uint8_t hdr[ROUTE_HDR_LEN] = {
	    'E', 'D', 0, 1, (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
	wg_buf_append(out, hdr, sizeof(hdr));
	wg_buf_append(out, info, len);
	return 0;
}
