/*
 * WhatsApp binary nodes: the XML-like stanzas of the protocol, and their codec.
 *
 * A node is a tag, attributes (string → string) and optional content: a list of
 * child nodes, a string, or raw bytes. Decoded trees live in an arena and are
 * freed all at once; strings that are tokens point into the static dictionaries.
 * Every string carries its length (raw strings from the wire may hold NUL) and
 * is also NUL-terminated for convenience.
 */
#ifndef WA_NODE_H
#define WA_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "wa/tokens.h"

/* The tag bytes of the format (first byte of a list header or string). */
enum {
	WA_TAG_LIST_EMPTY = 0,
	WA_TAG_DICT_0 = 236, /* ..239: double-byte token tables */
	WA_TAG_INTEROP_JID = 245,
	WA_TAG_FB_JID = 246,
	WA_TAG_AD_JID = 247,
	WA_TAG_LIST_8 = 248,
	WA_TAG_LIST_16 = 249,
	WA_TAG_JID_PAIR = 250,
	WA_TAG_HEX_8 = 251,
	WA_TAG_BINARY_8 = 252,
	WA_TAG_BINARY_20 = 253,
	WA_TAG_BINARY_32 = 254,
	WA_TAG_NIBBLE_8 = 255,
};
#define WA_PACKED_MAX 127

/* Frame plaintext flag: the node that follows is zlib-compressed. */
#define WA_FLAG_COMPRESSED 0x02

enum wa_content { WA_CONTENT_NONE, WA_CONTENT_LIST, WA_CONTENT_STRING, WA_CONTENT_BYTES };

struct wa_str {
	const char *p; /* NUL-terminated */
	uint32_t len;
};

struct wa_attr {
	struct wa_str key, value;
};

struct wa_node {
	struct wa_str tag;
	struct wa_attr *attrs;
	uint32_t nattrs;
	enum wa_content kind;
	uint32_t len; /* children, string bytes or raw bytes */
	union {
		struct wa_node **children;
		const char *str;
		const uint8_t *bytes;
	} c;
};

/*
 * A bump allocator. Nodes decoded from one frame, or built for one stanza, share
 * an arena; wa_arena_free releases everything at once.
 */
struct wa_arena_chunk;
struct wa_arena {
	struct wa_arena_chunk *head;
	size_t used; /* bytes handed out, for limits and measurements */
};

void *wa_arena_alloc(struct wa_arena *a, size_t n);
/* Copies n bytes and appends a NUL. */
char *wa_arena_strndup(struct wa_arena *a, const char *s, size_t n);
void wa_arena_free(struct wa_arena *a);

/*
 * Limits on decoded input. Each node costs a few bytes on the wire but tens of
 * bytes in memory, so counts are bounded as well as sizes.
 */
struct wa_limits {
	uint32_t max_depth;    /* nesting of lists */
	uint32_t max_nodes;    /* nodes in one frame */
	uint32_t max_attrs;    /* attributes on one node */
	size_t max_inflated;   /* size of a decompressed node */
	size_t max_arena;      /* memory one decoded frame may take */
};

extern const struct wa_limits wa_limits_default;

/* Where and why decoding failed. offset counts bytes of the input given to the decoder. */
struct wa_decode_err {
	size_t offset;
	int inflated; /* offset counts bytes of the inflated node, not the frame */
	char msg[96];
};

/*
 * Decodes one node occupying exactly buf[0..len). Trailing bytes are an error.
 * Returns 0 and *out, or a negative WG_E* code with err filled in.
 */
int wa_node_decode(const struct wa_dict *d, const uint8_t *buf, size_t len,
		   const struct wa_limits *lim, struct wa_arena *a, struct wa_node **out,
		   struct wa_decode_err *err);

/*
 * Decodes a frame plaintext: flag byte, then a node, zlib-compressed when the
 * flag has bit 2. Error offsets count bytes of the frame (flag included), or of
 * the inflated node when err->inflated is set.
 */
int wa_frame_decode_node(const struct wa_dict *d, const uint8_t *buf, size_t len,
			 const struct wa_limits *lim, struct wa_arena *a, struct wa_node **out,
			 struct wa_decode_err *err);

/*
 * Appends the encoding of n (no flag byte) to out. Strings are written in the
 * order the reference clients use: token, double-byte token, nibble-packed,
 * hex-packed, JID, raw. Returns 0, or WG_EINVAL / WG_ELIMIT for a node that
 * cannot be encoded (empty tag, a list over 65535 entries, too deep).
 */
int wa_node_encode(const struct wa_dict *d, const struct wa_node *n, struct wg_buf *out);

/* Builders, for code that composes stanzas. Strings are copied into the arena. */
struct wa_node *wa_node_new(struct wa_arena *a, const char *tag);
void wa_node_set_attr(struct wa_arena *a, struct wa_node *n, const char *key, const char *value);
void wa_node_set_bytes(struct wa_arena *a, struct wa_node *n, const void *p, size_t len);
void wa_node_set_string(struct wa_arena *a, struct wa_node *n, const char *s);
/* Appends a child (making content a list) and returns it. */
struct wa_node *wa_node_add_child(struct wa_arena *a, struct wa_node *n, const char *tag);

/* Lookups. NULL when absent. */
const char *wa_node_attr(const struct wa_node *n, const char *key);
const struct wa_node *wa_node_child(const struct wa_node *n, const char *tag);
const struct wa_node *wa_node_first_child(const struct wa_node *n);

#endif
