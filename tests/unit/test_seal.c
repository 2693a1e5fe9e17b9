/*
 * Credentials sealed at rest: the sealed format (round trip, bound to its
 * row, tamper-evident, the key named), and the store sealing on its way in,
 * opening on its way out, sealing plain rows, with the file holding no plain
 * credentials afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "store/seal.h"
#include "store/store.h"

static const uint8_t key_a[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t key_b[32] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                                  9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
#define ID1 "11111111-1111-4111-8111-111111111111"
#define ID2 "22222222-2222-4222-8222-222222222222"
#define CREDS "{\"noiseKey\":{\"private\":\"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"}}"

static int
teardown(void **state)
{
	(void)state;
	seal_set_keys(NULL, NULL);
	return 0;
}

static void
test_format(void **state)
{
	(void)state;
	seal_set_keys(key_a, NULL);
	assert_true(seal_enabled());
	char *s = seal_text(ID1, CREDS);
	assert_non_null(s);
	assert_true(seal_is_sealed(s));
	assert_null(strstr(s, "noiseKey"));
	char kid[SEAL_KID_LEN + 1], why[256], *plain;
	seal_id_of(s, kid);
	assert_string_equal(kid, seal_current_id());
	assert_int_equal(seal_open(NULL, ID1, s, &plain, why, sizeof(why)), 0);
	assert_string_equal(plain, CREDS);
	free(plain);
	/* Two seals of the same text differ (a fresh IV each time). */
	char *s2 = seal_text(ID1, CREDS);
	assert_string_not_equal(s, s2);
	free(s2);
	/* Moved to another row: it does not open. */
	assert_int_equal(seal_open(NULL, ID2, s, &plain, why, sizeof(why)), WG_EINVAL);
	assert_null(plain);
	/* One character changed anywhere in the ciphertext: it does not open. */
	size_t n = strlen(s);
	for (size_t i = strlen(SEAL_PREFIX) + SEAL_KID_LEN + 1; i < n; i += 7) {
		char *t = strdup(s);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		assert_true(seal_open(NULL, ID1, t, &plain, why, sizeof(why)) < 0);
		free(t);
	}
	/* Under another key: the error names the key it needs. */
	seal_set_keys(key_b, NULL);
	assert_int_equal(seal_open(NULL, ID1, s, &plain, why, sizeof(why)), WG_ENOTFOUND);
	assert_non_null(strstr(why, kid));
	/* A second key opens what the first sealed (an interrupted rekey). */
	seal_set_keys(key_b, key_a);
	assert_int_equal(seal_open(NULL, ID1, s, &plain, why, sizeof(why)), 0);
	free(plain);
	/* Garbage with the prefix. */
	assert_int_equal(seal_open(NULL, ID1, "wgs1:zz", &plain, why, sizeof(why)), WG_EINVAL);
	assert_int_equal(seal_open(NULL, ID1, "wgs1:0123abcd:!!", &plain, why, sizeof(why)) < 0, 1);
	free(s);
}

static void
put_plain(struct store *st, const char *id)
{
	struct store_session s;
	store_session_init(&s);
	snprintf(s.id, sizeof(s.id), "%s", id);
	s.auth_state = strdup(CREDS);
	assert_int_equal(store_insert(st, &s), 0);
	store_session_free(&s);
}

/* The auth_state as stored, with no key to open it. */
static char *
raw_auth(struct store *st, const char *id)
{
	seal_set_keys(NULL, NULL);
	struct store_session s;
	assert_int_equal(store_get(st, id, &s), 0);
	char *a = s.auth_state ? strdup(s.auth_state) : NULL;
	store_session_free(&s);
	return a;
}

static void
test_store(void **state)
{
	(void)state;
	char dir[] = "/tmp/wagate-seal-XXXXXX", url[128], path[96], err[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	struct store *st;
	int applied;
	assert_int_equal(store_open(url, &st, err, sizeof(err)), 0);
	assert_int_equal(store_migrate(st, &applied), 0);
	/* Rows from before sealing: plain. */
	put_plain(st, ID1);
	put_plain(st, ID2);
	char *a = raw_auth(st, ID1);
	assert_string_equal(a, CREDS);
	free(a);
	/* Sealed at start; read back plain; stored sealed. */
	seal_set_keys(key_a, NULL);
	size_t n;
	assert_int_equal(store_seal_plain(st, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_seal_plain(st, &n), 0);
	assert_int_equal(n, 0); /* nothing left to seal */
	struct store_session s;
	assert_int_equal(store_get(st, ID1, &s), 0);
	assert_string_equal(s.auth_state, CREDS);
	store_session_free(&s);
	a = raw_auth(st, ID2);
	assert_true(seal_is_sealed(a));
	free(a);
	/* New credentials written by update and by a batch are sealed too. */
	seal_set_keys(key_a, NULL);
	struct store_session v;
	store_session_init(&v);
	v.auth_state = strdup("{\"new\":1}");
	assert_int_equal(store_update(st, ID1, &v, STORE_F_AUTH, 1700000000000), 0);
	struct store_write w = {.id = ID2, .fields = STORE_F_AUTH, .vals = &v};
	size_t gone;
	assert_int_equal(store_write_batch(st, &w, 1, 1700000000000, &gone), 0);
	assert_string_equal(v.auth_state, "{\"new\":1}"); /* the caller's values are untouched */
	store_session_free(&v);
	for (int i = 0; i < 2; i++) {
		const char *id = i ? ID2 : ID1;
		a = raw_auth(st, id);
		assert_true(seal_is_sealed(a));
		free(a);
		seal_set_keys(key_a, NULL);
		assert_int_equal(store_get(st, id, &s), 0);
		assert_string_equal(s.auth_state, "{\"new\":1}");
		store_session_free(&s);
	}
	/* A listing with credentials opens them as well. */
	struct store_session *rows;
	assert_int_equal(store_list(st, NULL, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].auth_state, "{\"new\":1}");
	store_list_free(rows, n);
	/* Under another key they stay sealed: the parser refuses them, the session says why. */
	seal_set_keys(key_b, NULL);
	assert_int_equal(store_get(st, ID1, &s), 0);
	assert_true(seal_is_sealed(s.auth_state));
	store_session_free(&s);
	store_close(st);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Real credentials are kilobytes (overflow pages): once sealed, none of their text is left in the files. */
static void
test_no_plain_left(void **state)
{
	(void)state;
	char dir[] = "/tmp/wagate-seal-XXXXXX", url[128], path[96], err[256], cmd[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	struct store *st;
	int applied;
	assert_int_equal(store_open(url, &st, err, sizeof(err)), 0);
	assert_int_equal(store_migrate(st, &applied), 0);
	char *big = malloc(8192);
	int n = snprintf(big, 8192, "{\"noiseKey\":\"");
	for (int i = 0; i < 6000; i++)
		big[n++] = (char)('a' + i % 26);
	snprintf(big + n, 8192 - (size_t)n, "\"}");
	for (int i = 0; i < 20; i++) {
		struct store_session s;
		store_session_init(&s);
		snprintf(s.id, sizeof(s.id), "%08d-1111-4111-8111-111111111111", i);
		s.auth_state = strdup(big);
		assert_int_equal(store_insert(st, &s), 0);
		store_session_free(&s);
	}
	free(big);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "cat %s* | grep -c noiseKey > /dev/null", path);
	assert_int_equal(system(cmd), 0); /* plain: there */
	assert_int_equal(store_open(url, &st, err, sizeof(err)), 0);
	seal_set_keys(key_a, NULL);
	size_t sealed;
	assert_int_equal(store_seal_plain(st, &sealed), 0);
	assert_int_equal(sealed, 20);
	assert_int_not_equal(system(cmd), 0); /* sealed and rewritten: gone, WAL included */
	store_close(st);
	assert_int_not_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	wg_log_set_level(WG_LOG_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_format, teardown),
	    cmocka_unit_test_teardown(test_store, teardown),
	    cmocka_unit_test_teardown(test_no_plain_left, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
