/* WebSocket frame headers, masks and UTF-8 checks (ws_frame.h). */
#include "net/ws_frame.h"

#include <string.h>

int
ws_frame_parse(const uint8_t *p, size_t n, bool server, struct ws_frame_header *h, int *code)
{
	if (n < 2)
		return 0;
	*code = WS_CODE_PROTOCOL;
	h->fin = (p[0] & 0x80) != 0;
	h->opcode = p[0] & 0x0f;
	h->masked = (p[1] & 0x80) != 0;
	if (p[0] & 0x70)
		return -1; /* no extension was negotiated: reserved bits stay 0 */
	switch (h->opcode) {
	case WS_OP_CONT:
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		break;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		if (!h->fin || (p[1] & 0x7f) > WS_CONTROL_MAX)
			return -1;
		break;
	default:
		return -1;
	}
	/* Clients mask everything they send, servers nothing (section 5.1). */
	if (h->masked != server)
		return -1;
	size_t need = 2;
	uint64_t len = p[1] & 0x7f;
	if (len == 126)
		need += 2;
	else if (len == 127)
		need += 8;
	if (h->masked)
		need += 4;
	if (n < need)
		return 0;
	size_t at = 2;
	if (len == 126) {
		len = (uint64_t)p[2] << 8 | p[3];
		at = 4;
	} else if (len == 127) {
		if (p[2] & 0x80)
			return -1; /* the most significant bit must be 0 */
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		at = 10;
	}
	if (h->masked)
		memcpy(h->mask, p + at, 4);
	h->len = len;
	h->hdr_len = need;
	return 1;
}

size_t
ws_frame_header_write(uint8_t out[WS_FRAME_HEADER_MAX], uint8_t opcode, bool fin, uint64_t len,
                      const uint8_t *mask)
{
	size_t n = 2;
	out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	uint8_t m = mask ? 0x80 : 0;
	if (len < 126) {
		out[1] = (uint8_t)(m | len);
	} else if (len <= 0xffff) {
		out[1] = m | 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		n = 4;
	} else {
		out[1] = m | 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

void
ws_frame_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
	size_t i = 0;
	/* Word at a time once aligned to the mask's phase: payloads are most of the bytes. */
	uint8_t rot[4];
	for (int k = 0; k < 4; k++)
		rot[k] = mask[(offset + (uint64_t)k) & 3];
	uint32_t w;
	memcpy(&w, rot, 4);
	for (; i + 4 <= n; i += 4) {
		uint32_t v;
		memcpy(&v, p + i, 4);
		v ^= w;
		memcpy(p + i, &v, 4);
	}
	for (; i < n; i++)
		p[i] ^= rot[i & 3];
}

bool
ws_close_code_valid(int code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
	       (code >= 3000 && code <= 4999);
}
