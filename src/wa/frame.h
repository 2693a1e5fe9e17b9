/*
 * WhatsApp transport framing (docs/wa-protocol.md §1): every frame is a 3-byte
 * big-endian length and that many payload bytes, in both directions, and
 * WebSocket message boundaries mean nothing: one message may carry several
 * frames or a piece of one. The client's first message starts with the intro
 * `57 41 06 DV`, optionally preceded by a routing block
 * `'E' 'D' 00 01 | L (3 bytes BE) | L bytes`.
 *
 * The reader is zero-copy for frames that arrive whole: wa_frame_next() hands
 * out pointers into the caller's input. Only a frame split across messages is
 * copied, so buffered bytes never exceed the configured maximum frame size.
 */
#ifndef WA_FRAME_H
#define WA_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* The largest length the 3-byte header can express; WM rejects anything larger. */
#define WA_FRAME_HARD_MAX 0xFFFFFFu

/*
 * Default limit on a frame's payload: the protocol's own maximum. A client
 * talking to WhatsApp cannot refuse a legitimate frame without breaking the
 * session, and memory is still bounded because the reader only buffers bytes
 * that have actually arrived (at most this much per connection). Servers
 * facing untrusted clients (the mock) can lower it with wa_frame_reader_init().
 */
#define WA_FRAME_DEFAULT_MAX WA_FRAME_HARD_MAX

/* Length of the intro `57 41 06 DV`. */
#define WA_FRAME_INTRO_LEN 4

enum wa_frame_role {
	WA_FRAME_CLIENT, /* reads what a server sends: frames only */
	WA_FRAME_SERVER, /* reads what a client sends: [ED block] intro, then frames */
};

/* The fields are private; the struct is public only so it can be embedded. */
struct wa_frame_reader {
	enum wa_frame_role role;
	size_t max;       /* largest accepted payload */
	int dv;           /* dictionary version from the intro, 0 until seen */
	int err;          /* sticky error, 0 while healthy */
	int phase;        /* intro parsing progress (server role) */
	uint8_t intro[8]; /* intro or routing header bytes collected so far */
	size_t intro_len;
	size_t skip;     /* routing-info bytes still to skip */
	int routed;      /* a routing block was seen (only one is allowed) */
	uint8_t lenb[3]; /* a length header split across inputs */
	size_t lenb_len;
	int in_frame;          /* header read, payload incomplete */
	size_t need;           /* payload length of that frame */
	struct wg_buf partial; /* payload bytes of a frame split across inputs */
	int partial_done;      /* partial was handed out; reset on the next call */
	const uint8_t *in;     /* current caller input (not owned) */
	size_t in_len;
};

/*
 * Prepares a reader. max_frame 0 means WA_FRAME_DEFAULT_MAX; larger than
 * WA_FRAME_HARD_MAX is clamped to it.
 */
void wa_frame_reader_init(struct wa_frame_reader *r, enum wa_frame_role role, size_t max_frame);
/* Changes the largest accepted payload for the frames still to come (0: the default). */
void wa_frame_reader_set_max(struct wa_frame_reader *r, size_t max_frame);

/* Frees buffered bytes (wiped: they may be plaintext handshake data). */
void wa_frame_reader_free(struct wa_frame_reader *r);

/*
 * Hands the reader the next WebSocket message. The reader keeps a pointer to
 * data until wa_frame_next() has returned 0 or an error, so the caller must
 * drain it before releasing data. Feeding before draining returns WG_ESTATE.
 */
int wa_frame_feed(struct wa_frame_reader *r, const uint8_t *data, size_t len);

/*
 * Yields the next complete frame payload: returns 1 and sets *payload and *len
 * (valid until the next call on this reader, or until the fed data is
 * released), 0 when more input is needed, or a negative error:
 * WG_EPROTO for a bad intro, a bad routing block or a dictionary version other
 * than 2 or 3, WG_ELIMIT for a frame longer than the maximum. Errors are sticky.
 */
int wa_frame_next(struct wa_frame_reader *r, const uint8_t **payload, size_t *len);

/* The dictionary version from the client's intro (2 or 3), or 0 before it arrived. */
int wa_frame_dict_version(const struct wa_frame_reader *r);

/* Appends `len(3 bytes BE) || payload`. WG_ELIMIT if len > WA_FRAME_HARD_MAX. */
int wa_frame_write(struct wg_buf *out, const uint8_t *payload, size_t len);

/* Appends the 4-byte intro `57 41 06 DV`. */
void wa_frame_write_intro(struct wg_buf *out, int dict_version);

/*
 * Appends the routing block `'E' 'D' 00 01 | L | info` that must precede the
 * intro when the client has routing info (BL's creds.routingInfo).
 * WG_ELIMIT if len > WA_FRAME_HARD_MAX.
 */
int wa_frame_write_routing(struct wg_buf *out, const uint8_t *info, size_t len);

#endif
