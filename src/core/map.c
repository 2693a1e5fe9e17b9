#include "core/map.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/mem.h"

void
wg_map_init(struct wg_map *m)
{
	memset(m, 0, sizeof(*m));
	/* A fixed seed only if the kernel has no randomness to give: still correct, just guessable. */
	if (getrandom(&m->seed, sizeof(m->seed), 0) != (ssize_t)sizeof(m->seed))
		m->seed = 0x9e3779b97f4a7c15ull;
}

void
wg_map_free(struct wg_map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->len = 0;
}

/* FNV-1a over the key, started from the table's seed, then mixed (splitmix64's finalizer). */
static uint64_t
hash(const struct wg_map *m, const char *key)
{
	uint64_t h = 0xcbf29ce484222325ull ^ m->seed;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

static struct wg_map_slot *
find(const struct wg_map *m, const char *key, uint64_t h)
{
	if (m->cap == 0)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct wg_map_slot *s = &m->slots[i];
		if (s->key == NULL)
			return s;
		if (s->hash == h && strcmp(s->key, key) == 0)
			return s;
	}
}

static void
grow(struct wg_map *m)
{
	size_t old_cap = m->cap;
	struct wg_map_slot *old = m->slots;
	m->cap = old_cap ? old_cap * 2 : 16;
	m->slots = wg_calloc(m->cap, sizeof(*m->slots));
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].key == NULL)
			continue;
		*find(m, old[i].key, old[i].hash) = old[i];
	}
	free(old);
}

void *
wg_map_get(const struct wg_map *m, const char *key)
{
	struct wg_map_slot *s = find(m, key, hash(m, key));
	return s && s->key ? s->val : NULL;
}

void *
wg_map_put(struct wg_map *m, const char *key, void *val)
{
	if ((m->len + 1) * 4 > m->cap * 3)
		grow(m);
	uint64_t h = hash(m, key);
	struct wg_map_slot *s = find(m, key, h);
	void *old = s->key ? s->val : NULL;
	if (s->key == NULL)
		m->len++;
	s->key = key;
	s->val = val;
	s->hash = h;
	return old;
}

void *
wg_map_del(struct wg_map *m, const char *key)
{
	struct wg_map_slot *s = find(m, key, hash(m, key));
	if (s == NULL || s->key == NULL)
		return NULL;
	void *val = s->val;
	size_t mask = m->cap - 1, i = (size_t)(s - m->slots);
	/* Backward shift: move later entries of the probe run into the hole, so no tombstones. */
	for (size_t j = (i + 1) & mask; m->slots[j].key != NULL; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;
		/* j's entry may move to i only if i lies on its probe path (between home and j, cyclically). */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].key = NULL;
	m->slots[i].val = NULL;
	m->len--;
	return val;
}
