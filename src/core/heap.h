/*
 * A binary min-heap of due instants, for "what is due next" without scanning
 * everything (sessions waiting to connect, deadlines). Nodes are embedded in
 * their owners; each node knows its position, so it can be moved or removed
 * in O(log n) when its owner's due instant changes.
 */
#ifndef WG_CORE_HEAP_H
#define WG_CORE_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wg_heap_node {
	uint64_t key; /* the due instant */
	uint64_t seq; /* insertion order: equal keys come out first in, first out */
	size_t pos;   /* index + 1 in the heap; 0: not in it */
};

struct wg_heap {
	struct wg_heap_node **v;
	size_t len, cap;
	uint64_t seq;
};

void wg_heap_init(struct wg_heap *h);
void wg_heap_free(struct wg_heap *h);
static inline bool
wg_heap_has(const struct wg_heap_node *n)
{
	return n->pos != 0;
}
/* Inserts n with key, or moves it there if it is already in. */
void wg_heap_set(struct wg_heap *h, struct wg_heap_node *n, uint64_t key);
/* Removes n if it is in. */
void wg_heap_del(struct wg_heap *h, struct wg_heap_node *n);
/* The node with the smallest key, or NULL. */
struct wg_heap_node *wg_heap_min(const struct wg_heap *h);

#endif
