/*
 * libFuzzer target: the binary node codec, both ways, with both dictionaries.
 * The first input byte picks the dictionary (bit 0) and what the rest is
 * (bit 1): binary frame bytes from a hostile server, or a node as JSON, as a
 * caller of `wagate wire encode` or the code itself builds one.
 *
 * The property: what the decoder accepts, the encoder writes; what the encoder
 * writes, the decoder accepts; and after one round trip (which may normalise a
 * JID, e.g. device 0 written without ":0") another changes nothing.
 */
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "core/buf.h"
#include "wa/node.h"
#include "wa/node_json.h"

/* decode(encode(n)) must succeed, and a second round trip must give the same node again. */
static void
round_trip(const struct wa_dict *d, const struct wa_node *n)
{
	struct wg_buf e1 = {0}, e2 = {0};
	struct wa_arena b = {0}, c = {0};
	struct wa_node *n2, *n3;
	if (wa_node_encode(d, n, &e1) != 0)
		goto out; /* refused whole (a limit), not written wrong */
	if (wa_node_decode(d, e1.data, e1.len, NULL, &b, &n2, NULL) != 0)
		abort(); /* the encoder wrote what the decoder refuses */
	if (wa_node_encode(d, n2, &e2) != 0)
		abort(); /* the decoder read what the encoder refuses */
	if (wa_node_decode(d, e2.data, e2.len, NULL, &c, &n3, NULL) != 0)
		abort();
	json_t *j2 = wa_node_to_json(n2), *j3 = wa_node_to_json(n3);
	if (!json_equal(j2, j3))
		abort(); /* not stable after one round trip */
	json_decref(j2);
	json_decref(j3);
out:
	wa_arena_free(&b);
	wa_arena_free(&c);
	wg_buf_free(&e1);
	wg_buf_free(&e2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const struct wa_dict *d = wa_dict_get(data[0] & 1 ? 3 : 2);
	struct wa_arena a = {0};
	struct wa_node *n = NULL;
	if (data[0] & 2) {
		json_t *j = json_loadb((const char *)data + 1, size - 1, 0, NULL);
		char why[200];
		if (j != NULL && wa_node_from_json(j, &a, &n, why, sizeof(why)) == 0)
			round_trip(d, n);
		json_decref(j);
	} else if (wa_frame_decode_node(d, data + 1, size - 1, NULL, &a, &n, NULL) == 0) {
		struct wg_buf out = {0};
		if (wa_node_encode(d, n, &out) != 0)
			abort(); /* the decoder read what the encoder refuses */
		wg_buf_free(&out);
		round_trip(d, n);
	}
	wa_arena_free(&a);
	return 0;
}
