#include "wa/node_json.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/enc.h"
#include "core/err.h"
#include "core/mem.h"

/* A JSON string from bytes that should be UTF-8; bad bytes become U+FFFD, as Node does. */
static json_t *
json_text(const char *p, size_t n)
{
	const uint8_t *s = (const uint8_t *)p;
	if (wg_utf8_valid(s, n))
		return json_stringn(p, n);
	struct wg_buf b = {0};
	for (size_t i = 0; i < n;) {
		size_t l = wg_utf8_seq(s + i, n - i);
		if (l == 0) {
			wg_buf_append(&b, "\xEF\xBF\xBD", 3);
			i++;
		} else {
			wg_buf_append(&b, s + i, l);
			i += l;
		}
	}
	json_t *j = json_stringn((const char *)b.data, b.len);
	wg_buf_free(&b);
	return j;
}

json_t *
wa_node_to_json(const struct wa_node *n)
{
	json_t *o = json_object();
	json_object_set_new(o, "tag", json_text(n->tag.p, n->tag.len));
	json_t *attrs = json_object();
	for (uint32_t i = 0; i < n->nattrs; i++) {
		/* Keys are compared as C strings by jansson; a key with NUL is cut there. */
		json_t *key = json_text(n->attrs[i].key.p, n->attrs[i].key.len);
		json_object_set_new(attrs, json_string_value(key),
				    json_text(n->attrs[i].value.p, n->attrs[i].value.len));
		json_decref(key);
	}
	json_object_set_new(o, "attrs", attrs);
	switch (n->kind) {
	case WA_CONTENT_NONE:
		break;
	case WA_CONTENT_STRING:
		json_object_set_new(o, "content", json_text(n->c.str, n->len));
		break;
	case WA_CONTENT_BYTES: {
		char *b64 = wg_b64_encode(n->c.bytes, n->len);
		json_object_set_new(o, "content", json_pack("{s:s}", "bytes", b64));
		free(b64);
		break;
	}
	case WA_CONTENT_LIST: {
		json_t *arr = json_array();
		for (uint32_t i = 0; i < n->len; i++)
			json_array_append_new(arr, wa_node_to_json(n->c.children[i]));
		json_object_set_new(o, "content", arr);
		break;
	}
	}
	return o;
}

static struct wa_str
jstr(struct wa_arena *a, const json_t *s)
{
	size_t n = json_string_length(s);
	return (struct wa_str){wa_arena_strndup(a, json_string_value(s), n), (uint32_t)n};
}

static int
from_json(const json_t *j, struct wa_arena *a, struct wa_node *n, char *path, size_t plen,
	  char *why, size_t whylen, int depth)
{
	size_t base = strlen(path);
	if (depth > (int)wa_limits_default.max_depth) {
		snprintf(why, whylen, "%s: nodes nested too deeply", path);
		return WG_ELIMIT;
	}
	if (!json_is_object(j)) {
		snprintf(why, whylen, "%s: a node must be an object", path);
		return WG_EINVAL;
	}
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)j, key, v)
	{
		if (strcmp(key, "tag") && strcmp(key, "attrs") && strcmp(key, "content")) {
			snprintf(why, whylen, "%s: unknown field \"%s\"", path, key);
			return WG_EINVAL;
		}
	}
	json_t *tag = json_object_get(j, "tag");
	if (!json_is_string(tag) || json_string_length(tag) == 0) {
		snprintf(why, whylen, "%s.tag: must be a non-empty string", path);
		return WG_EINVAL;
	}
	memset(n, 0, sizeof(*n));
	n->tag = jstr(a, tag);

	json_t *attrs = json_object_get(j, "attrs");
	if (attrs != NULL && !json_is_null(attrs)) {
		if (!json_is_object(attrs)) {
			snprintf(why, whylen, "%s.attrs: must be an object", path);
			return WG_EINVAL;
		}
		n->nattrs = (uint32_t)json_object_size(attrs);
		n->attrs = wa_arena_alloc(a, sizeof(*n->attrs) * (n->nattrs ? n->nattrs : 1));
		uint32_t i = 0;
		json_object_foreach(attrs, key, v)
		{
			if (!json_is_string(v)) {
				snprintf(why, whylen, "%s.attrs.%s: values must be strings", path,
					 key);
				return WG_EINVAL;
			}
			n->attrs[i].key = (struct wa_str){wa_arena_strndup(a, key, strlen(key)),
							  (uint32_t)strlen(key)};
			n->attrs[i].value = jstr(a, v);
			i++;
		}
	}

	json_t *c = json_object_get(j, "content");
	if (c == NULL || json_is_null(c)) {
		n->kind = WA_CONTENT_NONE;
	} else if (json_is_string(c)) {
		struct wa_str s = jstr(a, c);
		n->kind = WA_CONTENT_STRING;
		n->c.str = s.p;
		n->len = s.len;
	} else if (json_is_array(c)) {
		size_t count = json_array_size(c);
		if (count > 65535) {
			snprintf(why, whylen, "%s.content: more than 65535 children", path);
			return WG_ELIMIT;
		}
		n->kind = WA_CONTENT_LIST;
		n->len = (uint32_t)count;
		n->c.children = wa_arena_alloc(a, sizeof(struct wa_node *) * (count ? count : 1));
		for (size_t i = 0; i < count; i++) {
			n->c.children[i] = wa_arena_alloc(a, sizeof(struct wa_node));
			snprintf(path + base, plen - base, ".content[%zu]", i);
			int r = from_json(json_array_get(c, i), a, n->c.children[i], path, plen, why,
					  whylen, depth + 1);
			path[base] = '\0';
			if (r)
				return r;
		}
	} else if (json_is_object(c) && json_object_size(c) == 1 &&
		   json_is_string(json_object_get(c, "bytes"))) {
		json_t *b = json_object_get(c, "bytes");
		size_t len = json_string_length(b);
		uint8_t *raw = wa_arena_alloc(a, len / 4 * 3 + 4);
		long got = wg_b64_decode(raw, json_string_value(b), len);
		if (got < 0) {
			snprintf(why, whylen, "%s.content.bytes: not valid base64", path);
			return WG_EINVAL;
		}
		n->kind = WA_CONTENT_BYTES;
		n->c.bytes = raw;
		n->len = (uint32_t)got;
	} else {
		snprintf(why, whylen,
			 "%s.content: must be an array of nodes, a string or {\"bytes\": base64}",
			 path);
		return WG_EINVAL;
	}
	return 0;
}

int
wa_node_from_json(const json_t *j, struct wa_arena *a, struct wa_node **out, char *why,
		  size_t whylen)
{
	char path[512] = "$";
	struct wa_node *n = wa_arena_alloc(a, sizeof(*n));
	int r = from_json(j, a, n, path, sizeof(path), why, whylen, 0);
	if (r == 0)
		*out = n;
	return r;
}
