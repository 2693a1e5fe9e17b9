/*
 * The JSON form of a node, as `wagate wire` prints and reads it:
 *   {"tag": "iq", "attrs": {"id": "1"}, "content": ...}
 * content is absent (no content), an array of nodes, a string (string-encoded
 * content: token, packed or JID), or {"bytes": "<base64>"} (raw bytes).
 */
#ifndef WA_NODE_JSON_H
#define WA_NODE_JSON_H

#include <jansson.h>

#include "wa/node.h"

/* A new JSON object for n. Strings that are not valid UTF-8 get U+FFFD for each bad byte. */
json_t *wa_node_to_json(const struct wa_node *n);

/*
 * Builds a node in the arena from its JSON form. Returns 0, or WG_EINVAL with a
 * message in why (what is wrong, and where, as a JSON path like $.content[2].tag).
 */
int wa_node_from_json(const json_t *j, struct wa_arena *a, struct wa_node **out, char *why,
		      size_t whylen);

#endif
