/* The node model: arena, builders and lookups. The codec is in binary.c. */
#include "wa/node.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

struct wa_arena_chunk {
	struct wa_arena_chunk *next;
	size_t size, used;
	max_align_t data[];
};

/* Small first chunk: most stanzas are a few hundred bytes once decoded. */
#define CHUNK_MIN 1024

void *
wa_arena_alloc(struct wa_arena *a, size_t n)
{
	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	struct wa_arena_chunk *c = a->head;
	if (c == NULL || c->size - c->used < n) {
		size_t size = c ? c->size * 2 : CHUNK_MIN;
		if (size > 64 * 1024)
			size = 64 * 1024;
		if (size < n)
			size = n;
		c = wg_malloc(sizeof(*c) + size);
		c->size = size;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	a->used += n;
	return p;
}

char *
wa_arena_strndup(struct wa_arena *a, const char *s, size_t n)
{
	char *p = wa_arena_alloc(a, n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
wa_arena_free(struct wa_arena *a)
{
	struct wa_arena_chunk *c = a->head, *next;
	for (; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
	a->used = 0;
}

static struct wa_str
arena_str(struct wa_arena *a, const char *s)
{
	size_t n = strlen(s);
	return (struct wa_str){wa_arena_strndup(a, s, n), (uint32_t)n};
}

struct wa_node *
wa_node_new(struct wa_arena *a, const char *tag)
{
	struct wa_node *n = wa_arena_alloc(a, sizeof(*n));
	memset(n, 0, sizeof(*n));
	n->tag = arena_str(a, tag);
	return n;
}

void
wa_node_set_attr(struct wa_arena *a, struct wa_node *n, const char *key, const char *value)
{
	for (uint32_t i = 0; i < n->nattrs; i++) {
		if (strcmp(n->attrs[i].key.p, key) == 0) {
			n->attrs[i].value = arena_str(a, value);
			return;
		}
	}
	struct wa_attr *attrs = wa_arena_alloc(a, sizeof(*attrs) * (n->nattrs + 1));
	if (n->nattrs)
		memcpy(attrs, n->attrs, sizeof(*attrs) * n->nattrs);
	attrs[n->nattrs].key = arena_str(a, key);
	attrs[n->nattrs].value = arena_str(a, value);
	n->attrs = attrs;
	n->nattrs++;
}

void
wa_node_set_bytes(struct wa_arena *a, struct wa_node *n, const void *p, size_t len)
{
	n->kind = WA_CONTENT_BYTES;
	n->len = (uint32_t)len;
	n->c.bytes = (const uint8_t *)wa_arena_strndup(a, p, len);
}

void
wa_node_set_string(struct wa_arena *a, struct wa_node *n, const char *s)
{
	struct wa_str str = arena_str(a, s);
	n->kind = WA_CONTENT_STRING;
	n->len = str.len;
	n->c.str = str.p;
}

struct wa_node *
wa_node_add_child(struct wa_arena *a, struct wa_node *n, const char *tag)
{
	uint32_t count = n->kind == WA_CONTENT_LIST ? n->len : 0;
	struct wa_node **children = wa_arena_alloc(a, sizeof(*children) * (count + 1));
	if (count)
		memcpy(children, n->c.children, sizeof(*children) * count);
	children[count] = wa_node_new(a, tag);
	n->kind = WA_CONTENT_LIST;
	n->c.children = children;
	n->len = count + 1;
	return children[count];
}

const char *
wa_node_attr(const struct wa_node *n, const char *key)
{
	for (uint32_t i = 0; i < n->nattrs; i++)
		if (strcmp(n->attrs[i].key.p, key) == 0)
			return n->attrs[i].value.p;
	return NULL;
}

const struct wa_node *
wa_node_child(const struct wa_node *n, const char *tag)
{
	if (n->kind != WA_CONTENT_LIST)
		return NULL;
	for (uint32_t i = 0; i < n->len; i++)
		if (strcmp(n->c.children[i]->tag.p, tag) == 0)
			return n->c.children[i];
	return NULL;
}

const struct wa_node *
wa_node_first_child(const struct wa_node *n)
{
	if (n->kind != WA_CONTENT_LIST || n->len == 0)
		return NULL;
	return n->c.children[0];
}
