#include "core/heap.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

void
wg_heap_init(struct wg_heap *h)
{
	memset(h, 0, sizeof(*h));
}

void
wg_heap_free(struct wg_heap *h)
{
	for (size_t i = 0; i < h->len; i++)
		h->v[i]->pos = 0;
	free(h->v);
	memset(h, 0, sizeof(*h));
}

static bool
less(const struct wg_heap_node *a, const struct wg_heap_node *b)
{
	return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

static void
put(struct wg_heap *h, size_t i, struct wg_heap_node *n)
{
	h->v[i] = n;
	n->pos = i + 1;
}

static void
up(struct wg_heap *h, size_t i)
{
	struct wg_heap_node *n = h->v[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!less(n, h->v[p]))
			break;
		put(h, i, h->v[p]);
		i = p;
	}
	put(h, i, n);
}

static void
down(struct wg_heap *h, size_t i)
{
	struct wg_heap_node *n = h->v[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->len)
			break;
		if (c + 1 < h->len && less(h->v[c + 1], h->v[c]))
			c++;
		if (!less(h->v[c], n))
			break;
		put(h, i, h->v[c]);
		i = c;
	}
	put(h, i, n);
}

void
wg_heap_set(struct wg_heap *h, struct wg_heap_node *n, uint64_t key)
{
	if (n->pos) {
		uint64_t old = n->key;
		n->key = key;
		if (key < old)
			up(h, n->pos - 1);
		else if (key > old)
			down(h, n->pos - 1);
		return;
	}
	if (h->len == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 16;
		h->v = wg_realloc(h->v, h->cap * sizeof(*h->v));
	}
	n->key = key;
	n->seq = h->seq++;
	put(h, h->len++, n);
	up(h, h->len - 1);
}

void
wg_heap_del(struct wg_heap *h, struct wg_heap_node *n)
{
	if (!n->pos)
		return;
	size_t i = n->pos - 1;
	n->pos = 0;
	struct wg_heap_node *last = h->v[--h->len];
	if (i == h->len)
		return;
	put(h, i, last);
	if (i > 0 && less(last, h->v[(i - 1) / 2]))
		up(h, i);
	else
		down(h, i);
}

struct wg_heap_node *
wg_heap_min(const struct wg_heap *h)
{
	return h->len ? h->v[0] : NULL;
}
