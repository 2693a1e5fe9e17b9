/*
 * A hash table from NUL-terminated string keys to pointers, for lookups by
 * key instead of scans (sessions by id). Open addressing with linear probing
 * and backward-shift deletion, power-of-two capacity kept under 3/4 full.
 * The table does not copy keys: a key must live as long as its entry (the
 * usual case: the key is a field of the value). The hash is seeded at random
 * per table, so keys chosen from outside (ids in a user's database) cannot be
 * picked to collide.
 */
#ifndef WG_CORE_MAP_H
#define WG_CORE_MAP_H

#include <stddef.h>
#include <stdint.h>

struct wg_map_slot {
	const char *key; /* NULL: empty */
	void *val;
	uint64_t hash;
};

struct wg_map {
	struct wg_map_slot *slots;
	size_t cap; /* 0 or a power of two */
	size_t len;
	uint64_t seed;
};

void wg_map_init(struct wg_map *m);
/* Frees the table (not the keys or values). */
void wg_map_free(struct wg_map *m);
void *wg_map_get(const struct wg_map *m, const char *key);
/* Inserts or replaces; returns the value it replaced, or NULL. */
void *wg_map_put(struct wg_map *m, const char *key, void *val);
/* Removes key; returns its value, or NULL if absent. */
void *wg_map_del(struct wg_map *m, const char *key);

#endif
