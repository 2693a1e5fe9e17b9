/*
 * The hash table and the heap against naive models, with many random
 * operations (a fixed seed, so a failure repeats).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/heap.h"
#include "core/map.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

#define NKEYS 3000
static char keys[NKEYS][24];
static int present[NKEYS];
static intptr_t vals[NKEYS];

static void
test_map_model(void **state)
{
	(void)state;
	struct wg_map m;
	wg_map_init(&m);
	for (int i = 0; i < NKEYS; i++)
		snprintf(keys[i], sizeof(keys[i]), "k%d-%d", i, i * 7919);
	size_t live = 0;
	for (int op = 0; op < 200000; op++) {
		int k = (int)(next() % NKEYS);
		switch (next() % 3) {
		case 0: {
			intptr_t v = (intptr_t)(next() % 1000000) + 1;
			void *old = wg_map_put(&m, keys[k], (void *)v);
			assert_ptr_equal(old, present[k] ? (void *)vals[k] : NULL);
			live += !present[k];
			present[k] = 1;
			vals[k] = v;
			break;
		}
		case 1: {
			void *old = wg_map_del(&m, keys[k]);
			assert_ptr_equal(old, present[k] ? (void *)vals[k] : NULL);
			live -= present[k];
			present[k] = 0;
			break;
		}
		default:
			assert_ptr_equal(wg_map_get(&m, keys[k]), present[k] ? (void *)vals[k] : NULL);
		}
		assert_int_equal(m.len, live);
	}
	/* Every key answers as the model says after all that shifting. */
	for (int k = 0; k < NKEYS; k++)
		assert_ptr_equal(wg_map_get(&m, keys[k]), present[k] ? (void *)vals[k] : NULL);
	/* A key equal in content but at another address is found. */
	char copy[24];
	for (int k = 0; k < NKEYS; k++) {
		if (!present[k])
			continue;
		snprintf(copy, sizeof(copy), "%s", keys[k]);
		assert_ptr_equal(wg_map_get(&m, copy), (void *)vals[k]);
		break;
	}
	assert_null(wg_map_get(&m, "absent"));
	wg_map_free(&m);
	struct wg_map empty;
	wg_map_init(&empty);
	assert_null(wg_map_get(&empty, "x"));
	assert_null(wg_map_del(&empty, "x"));
	wg_map_free(&empty);
}

#define NNODES 500
static void
test_heap_model(void **state)
{
	(void)state;
	struct wg_heap h;
	struct wg_heap_node n[NNODES];
	memset(n, 0, sizeof(n));
	wg_heap_init(&h);
	int in[NNODES] = {0};
	for (int op = 0; op < 100000; op++) {
		int i = (int)(next() % NNODES);
		switch (next() % 4) {
		case 0:
		case 1:
			wg_heap_set(&h, &n[i], next() % 1000);
			in[i] = 1;
			break;
		case 2:
			wg_heap_del(&h, &n[i]);
			in[i] = 0;
			break;
		default: {
			/* The minimum is the smallest key among the nodes in. */
			struct wg_heap_node *min = wg_heap_min(&h);
			uint64_t best = UINT64_MAX;
			size_t count = 0;
			for (int j = 0; j < NNODES; j++) {
				if (!in[j])
					continue;
				count++;
				if (n[j].key < best)
					best = n[j].key;
			}
			assert_int_equal(h.len, count);
			if (count == 0)
				assert_null(min);
			else
				assert_int_equal(min->key, best);
		}
		}
		assert_int_equal(wg_heap_has(&n[i]), in[i]);
	}
	/* Draining gives non-decreasing keys, equal keys first in, first out. */
	uint64_t last = 0, last_seq = 0;
	int first = 1;
	while (wg_heap_min(&h)) {
		struct wg_heap_node *m = wg_heap_min(&h);
		assert_true(first || m->key > last || (m->key == last && m->seq > last_seq));
		first = 0;
		last = m->key;
		last_seq = m->seq;
		wg_heap_del(&h, m);
		assert_false(wg_heap_has(m));
	}
	wg_heap_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_model),
		cmocka_unit_test(test_heap_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
