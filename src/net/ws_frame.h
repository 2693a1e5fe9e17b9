/*
 * WebSocket frames (RFC 6455 section 5): the header's bytes both ways, the
 * mask, and the close codes (text messages and close reasons are checked
 * with wg_utf8_valid, core/enc.h). No state and no I/O: ws.c keeps a
 * connection's receiving state and moves the bytes.
 *
 * Why our own and not wslay: wslay keeps two fixed 4 KiB arrays in every
 * connection's context (its frame input buffer and its output buffer), about
 * 8.5 KiB per connection, more than half of an idle session's memory. Parsed
 * straight out of the bufferevent's input, a frame needs no buffer of its own
 * (docs/architecture.md, "Why our own WebSocket framing").
 */
#ifndef WG_NET_WS_FRAME_H
#define WG_NET_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Close codes (section 7.4.1) this code sends or reports. */
#define WS_CODE_NORMAL 1000
#define WS_CODE_PROTOCOL 1002
#define WS_CODE_NO_STATUS 1005 /* reported, never sent: a close frame without a code */
#define WS_CODE_ABNORMAL 1006  /* reported, never sent: no close frame at all */
#define WS_CODE_INVALID_DATA 1007
#define WS_CODE_TOO_BIG 1009

/* The longest header: 2 bytes, 8 of extended length, 4 of mask. */
#define WS_FRAME_HEADER_MAX 14
/* Control frames carry at most this much (section 5.5). */
#define WS_CONTROL_MAX 125

struct ws_frame_header {
	bool fin;
	uint8_t opcode;
	bool masked;
	uint8_t mask[4];
	uint64_t len;    /* payload bytes */
	size_t hdr_len;  /* bytes of header */
};

/*
 * Reads a header from the first n bytes of p. Returns 1 with *h filled, 0 if
 * more bytes are needed, or -1 with *code set to the close code to answer:
 * reserved bits or opcodes, a fragmented or oversized control frame, a 64-bit
 * length with its top bit set, or a mask where the role forbids one (server:
 * every frame a server reads must be masked; every frame a client reads, not).
 */
int ws_frame_parse(const uint8_t *p, size_t n, bool server, struct ws_frame_header *h, int *code);

/* Writes a header (masked with mask when it is not NULL) into out; returns its length. */
size_t ws_frame_header_write(uint8_t out[WS_FRAME_HEADER_MAX], uint8_t opcode, bool fin,
                             uint64_t len, const uint8_t *mask);

/* XORs n bytes with the mask, starting at offset bytes into the payload. */
void ws_frame_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* A close code a peer may send (section 7.4: 1000-1003, 1007-1011, 3000-4999). */
bool ws_close_code_valid(int code);

#endif
