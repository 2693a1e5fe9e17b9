/*
 * libFuzzer target: the binary node decoder on hostile bytes, with both
 * dictionaries (the first input byte picks one). Successful decodes are
 * re-encoded and decoded again, which must succeed: anything we accept we
 * must be able to write back.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/buf.h"
#include "wa/node.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const struct wa_dict *d = wa_dict_get(data[0] & 1 ? 3 : 2);
	struct wa_arena a = {0};
	struct wa_node *n;
	if (wa_frame_decode_node(d, data + 1, size - 1, NULL, &a, &n, NULL) == 0) {
		struct wg_buf out = {0};
		if (wa_node_encode(d, n, &out) == 0) {
			struct wa_arena b = {0};
			struct wa_node *back;
			if (wa_node_decode(d, out.data, out.len, NULL, &b, &back, NULL) != 0)
				abort();
			wa_arena_free(&b);
		}
		wg_buf_free(&out);
	}
	wa_arena_free(&a);
	return 0;
}
