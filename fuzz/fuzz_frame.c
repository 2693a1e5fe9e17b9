/*
 * libFuzzer target: what a server reads from a client socket. The input is
 * cut into WebSocket messages at points taken from its first bytes, fed to the
 * transport frame reader (server role: routing block, intro, 3-byte lengths),
 * and every frame that comes out is decoded as a frame plaintext (flag byte,
 * optional zlib, node) with the dictionary the intro chose.
 */
#include <stdint.h>
#include <string.h>

#include "wa/frame.h"
#include "wa/node.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	/* A small frame limit keeps the fuzzer exploring structure, not allocations. */
	struct wa_frame_reader r;
	wa_frame_reader_init(&r, WA_FRAME_SERVER, 1 << 16);
	size_t step = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	for (size_t off = 0; off < size;) {
		size_t n = size - off < step ? size - off : step;
		if (wa_frame_feed(&r, data + off, n) < 0)
			break;
		off += n;
		const uint8_t *p;
		size_t len;
		int got;
		while ((got = wa_frame_next(&r, &p, &len)) == 1) {
			int dv = wa_frame_dict_version(&r);
			struct wa_arena a = {0};
			struct wa_node *node;
			(void)wa_frame_decode_node(wa_dict_get(dv ? dv : 3), p, len, NULL, &a, &node,
						   NULL);
			wa_arena_free(&a);
		}
		if (got < 0)
			break;
	}
	wa_frame_reader_free(&r);
	return 0;
}
