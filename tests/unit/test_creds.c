/* Credentials: generation, the versioned blob, corrupt blobs, files; and durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/duration.h"
#include "core/err.h"
#include "wa/creds.h"

static void
paired(struct wa_creds *c)
{
	wa_creds_generate(c);
	c->me_jid = strdup("15551234567:7@s.whatsapp.net");
	c->me_lid = strdup("99887766:7@lid");
	c->push_name = strdup("Shop");
	c->platform = strdup("android");
	c->account_len = 80;
	c->account = malloc(80);
	memset(c->account, 0xAB, 80);
	c->nprekeys = 3;
	c->prekeys = calloc(3, sizeof(*c->prekeys));
	for (int i = 0; i < 3; i++) {
		c->prekeys[i].id = (uint32_t)(i + 1);
		wa_crypto_keypair(&c->prekeys[i].kp);
	}
	c->next_prekey_id = 4;
}

static void
test_round_trip(void **state)
{
	struct wa_creds c, back;
	paired(&c);
	char *blob = wa_creds_to_blob(&c);
	char why[256];
	assert_int_equal(wa_creds_from_blob(blob, strlen(blob), &back, why, sizeof(why)), 0);
	assert_memory_equal(&back.noise, &c.noise, sizeof(c.noise));
	assert_memory_equal(&back.identity, &c.identity, sizeof(c.identity));
	assert_memory_equal(&back.signed_prekey, &c.signed_prekey, sizeof(c.signed_prekey));
	assert_memory_equal(back.signed_prekey_sig, c.signed_prekey_sig, 64);
	assert_int_equal(back.registration_id, c.registration_id);
	assert_memory_equal(back.adv_secret, c.adv_secret, 32);
	assert_string_equal(back.me_jid, c.me_jid);
	assert_string_equal(back.me_lid, c.me_lid);
	assert_string_equal(back.push_name, c.push_name);
	assert_string_equal(back.platform, "android");
	assert_int_equal(back.account_len, 80);
	assert_memory_equal(back.account, c.account, 80);
	assert_int_equal(back.nprekeys, 3);
	assert_memory_equal(&back.prekeys[2], &c.prekeys[2], sizeof(c.prekeys[2]));
	assert_int_equal(back.next_prekey_id, 4);
	uint64_t u;
	uint32_t d;
	assert_int_equal(wa_creds_me(&back, &u, &d), 0);
	assert_true(u == 15551234567ull);
	assert_int_equal(d, 7);
	assert_true(wa_creds_paired(&back));
	free(blob);
	wa_creds_free(&back);

	/* A fresh device is not paired and round-trips too. */
	struct wa_creds fresh;
	wa_creds_generate(&fresh);
	assert_false(wa_creds_paired(&fresh));
	assert_true(fresh.registration_id <= 0x3FFF);
	blob = wa_creds_to_blob(&fresh);
	assert_int_equal(wa_creds_from_blob(blob, strlen(blob), &back, why, sizeof(why)), 0);
	assert_false(wa_creds_paired(&back));
	free(blob);
	wa_creds_free(&back);
	wa_creds_free(&fresh);
	wa_creds_free(&c);
}

/* Applies an edit to a valid blob's JSON and expects the loader to refuse it. */
static void
expect_refused(const char *path_key, json_t *value, const char *expect_in_why)
{
	struct wa_creds c, out;
	paired(&c);
	char *blob = wa_creds_to_blob(&c);
	json_t *o = json_loads(blob, 0, NULL);
	free(blob);
	/* path_key: "key" or "obj.key" */
	const char *dot = strchr(path_key, '.');
	if (dot) {
		char obj[64];
		snprintf(obj, sizeof(obj), "%.*s", (int)(dot - path_key), path_key);
		json_object_set_new(json_object_get(o, obj), dot + 1, value);
	} else if (value == NULL) {
		json_object_del(o, path_key);
	} else {
		json_object_set_new(o, path_key, value);
	}
	char *text = json_dumps(o, 0);
	char why[256] = "";
	memset(&out, 0x5A, sizeof(out));
	int r = wa_creds_from_blob(text, strlen(text), &out, why, sizeof(why));
	if (r != WG_EINVAL)
		fail_msg("%s: accepted", path_key);
	if (strstr(why, expect_in_why) == NULL)
		fail_msg("%s: reason \"%s\" lacks \"%s\"", path_key, why, expect_in_why);
	free(text);
	json_decref(o);
	wa_creds_free(&c);
}

static void
test_corrupt_blobs(void **state)
{
	char why[256];
	struct wa_creds out;
	assert_int_equal(wa_creds_from_blob("not json", 8, &out, why, sizeof(why)), WG_EINVAL);
	assert_int_equal(wa_creds_from_blob("[]", 2, &out, why, sizeof(why)), WG_EINVAL);
	expect_refused("format", json_string("baileys"), "format");
	expect_refused("version", json_integer(2), "version 2");
	expect_refused("version", NULL, "version");
	expect_refused("noiseKey", NULL, "noiseKey");
	expect_refused("noiseKey.private", json_string("AAAA"), "noiseKey");
	expect_refused("noiseKey.public",
		       json_string("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="), "does not match");
	expect_refused("signedPreKey.signature",
		       json_string("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHw=="),
		       "signature");
	expect_refused("registrationId", json_integer(70000), "registrationId");
	expect_refused("advSecret", json_string("!!"), "advSecret");
	expect_refused("account", json_null(), "account");
	expect_refused("me.jid", json_string("nobody"), "me.jid");
	expect_refused("preKeys", json_string("x"), "preKeys");
}

static void
test_files(void **state)
{
	char path[] = "/tmp/wagate-creds-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct wa_creds c, back;
	paired(&c);
	assert_int_equal(wa_creds_save(&c, path), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char why[256];
	assert_int_equal(wa_creds_load(path, &back, why, sizeof(why)), 0);
	assert_string_equal(back.me_jid, c.me_jid);
	wa_creds_free(&back);
	FILE *f = fopen(path, "w");
	fputs("{\"format\":\"wagate-creds\",\"version\":1}", f);
	fclose(f);
	assert_int_equal(wa_creds_load(path, &back, why, sizeof(why)), WG_EINVAL);
	unlink(path);
	assert_int_equal(wa_creds_load(path, &back, why, sizeof(why)), WG_ENOTFOUND);
	wa_creds_free(&c);
}

static void
test_durations(void **state)
{
	uint64_t ms = 0;
	assert_int_equal(wg_duration_parse("500ms", &ms), 0);
	assert_true(ms == 500);
	assert_int_equal(wg_duration_parse("25s", &ms), 0);
	assert_true(ms == 25000);
	assert_int_equal(wg_duration_parse("30m", &ms), 0);
	assert_true(ms == 1800000);
	assert_int_equal(wg_duration_parse("1h", &ms), 0);
	assert_true(ms == 3600000);
	assert_int_equal(wg_duration_parse("0s", &ms), 0);
	assert_true(ms == 0);
	assert_int_equal(wg_duration_parse("30d", &ms), 0);
	assert_true(ms == 30ull * 86400000);
	static const char *bad[] = {"", "5", "s", "-1s", "1.5s", "5 s", "5sec", "367d", "8785h",
				    "99999999999999999999ms", "5S"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (wg_duration_parse(bad[i], &ms) != WG_EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
	setenv("WAGATE_TEST_DUR", "2s", 1);
	assert_int_equal(wg_duration_env("WAGATE_TEST_DUR", &ms), 0);
	assert_true(ms == 2000);
	setenv("WAGATE_TEST_DUR", "2", 1);
	assert_int_equal(wg_duration_env("WAGATE_TEST_DUR", &ms), WG_EINVAL);
	unsetenv("WAGATE_TEST_DUR");
	assert_int_equal(wg_duration_env("WAGATE_TEST_DUR", &ms), 1);
}

/* Pre-keys carry their public half; blobs written before that still parse (it is derived). */
static void
test_prekey_publics(void **state)
{
	(void)state;
	struct wa_creds c, back;
	paired(&c);
	char *blob = wa_creds_to_blob(&c);
	json_t *o = json_loads(blob, 0, NULL);
	assert_non_null(o);
	json_t *pks = json_object_get(o, "preKeys");
	assert_int_equal(json_array_size(pks), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *k = json_array_get(pks, i);
		assert_non_null(json_object_get(k, "public"));
		json_object_del(k, "public");
	}
	char *old = json_dumps(o, 0);
	char why[256];
	assert_int_equal(wa_creds_from_blob(old, strlen(old), &back, why, sizeof(why)), 0);
	for (size_t i = 0; i < 3; i++)
		assert_memory_equal(&back.prekeys[i], &c.prekeys[i], sizeof(c.prekeys[i]));
	wa_creds_free(&back);
	/* A stored public key that is not 32 bytes of base64 is refused, as every key is. */
	json_object_set_new(json_array_get(pks, 1), "public", json_string("AAAA"));
	free(old);
	old = json_dumps(o, 0);
	assert_int_equal(wa_creds_from_blob(old, strlen(old), &back, why, sizeof(why)), WG_EINVAL);
	assert_non_null(strstr(why, "preKeys"));
	free(old);
	json_decref(o);
	free(blob);
	wa_creds_free(&c);
}


/* The key checks run once per distinct blob; a blob that failed them is checked (and refused) every time. */
static void
test_checks_once_per_blob(void **state)
{
	(void)state;
	struct wa_creds c, out;
	char why[256];
	wa_creds_generate(&c);
	char *blob = wa_creds_to_blob(&c);
	unsigned long n0 = wa_creds_full_checks();
	assert_int_equal(wa_creds_from_blob(blob, strlen(blob), &out, why, sizeof(why)), 0);
	wa_creds_free(&out);
	assert_int_equal(wa_creds_full_checks(), n0 + 1);
	assert_int_equal(wa_creds_from_blob(blob, strlen(blob), &out, why, sizeof(why)), 0);
	assert_memory_equal(out.noise.pub, c.noise.pub, 32);
	wa_creds_free(&out);
	assert_int_equal(wa_creds_full_checks(), n0 + 1);
	/* The same keys with a public key that does not match: refused, every time. */
	json_error_t je;
	json_t *o = json_loads(blob, 0, &je);
	json_object_set_new(json_object_get(o, "noiseKey"), "public",
			    json_string("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="));
	char *bad = json_dumps(o, JSON_INDENT(1));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(wa_creds_from_blob(bad, strlen(bad), &out, why, sizeof(why)), WG_EINVAL);
		assert_non_null(strstr(why, "does not match"));
	}
	assert_int_equal(wa_creds_full_checks(), n0 + 1);
	free(bad);
	json_decref(o);
	free(blob);
	wa_creds_free(&c);
}

/*
 * The mark of checked keys: a blob written with the secret set skips the checks;
 * a mark over other keys, under another secret, malformed, or read without the
 * secret does not, so bad keys are still refused.
 */
static void
test_checked_mark(void **state)
{
	(void)state;
	static const uint8_t secret_a[32] = {1, 2, 3}, secret_b[32] = {4, 5, 6};
	struct wa_creds c, out;
	char why[256];
	wa_creds_generate(&c);
	char *plain = wa_creds_to_blob(&c);
	assert_null(strstr(plain, "keysChecked"));
	wa_creds_set_secret(secret_a, sizeof(secret_a));
	char *blob = wa_creds_to_blob(&c);
	assert_non_null(strstr(blob, "\"keysChecked\""));
	unsigned long n0 = wa_creds_full_checks();
	assert_int_equal(wa_creds_from_blob(blob, strlen(blob), &out, why, sizeof(why)), 0);
	assert_memory_equal(out.identity.priv, c.identity.priv, 32);
	assert_int_equal(wa_creds_full_checks(), n0);
	/* Written again from what was read: still marked, still not checked. */
	char *again = wa_creds_to_blob(&out);
	wa_creds_free(&out);
	assert_string_equal(again, blob);
	free(again);

	/* The mark kept while a key is changed (by hand, by the web app): checked, refused. */
	json_error_t je;
	json_t *o = json_loads(blob, 0, &je);
	json_object_set_new(json_object_get(o, "noiseKey"), "public",
			    json_string("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="));
	char *bad = json_dumps(o, JSON_COMPACT);
	assert_int_equal(wa_creds_from_blob(bad, strlen(bad), &out, why, sizeof(why)), WG_EINVAL);
	assert_non_null(strstr(why, "noiseKey has a public key that does not match"));
	free(bad);
	json_decref(o);

	/* Keys that do not match, marked under another secret: not trusted here. */
	struct wa_creds w;
	wa_creds_copy(&w, &c);
	w.identity.pub[0] ^= 1;
	wa_creds_set_secret(secret_b, sizeof(secret_b));
	bad = wa_creds_to_blob(&w);
	wa_creds_set_secret(secret_a, sizeof(secret_a));
	assert_int_equal(wa_creds_from_blob(bad, strlen(bad), &out, why, sizeof(why)), WG_EINVAL);
	assert_non_null(strstr(why, "identityKey has a public key that does not match"));
	free(bad);
	/* A mark that is not one (too short, not a string): the checks run, and pass. */
	const char *fakes[] = {"\"AAAA\"", "17", "null"};
	for (size_t i = 0; i < 3; i++) {
		o = json_loads(blob, 0, &je);
		json_object_set_new(o, "keysChecked", json_loads(fakes[i], JSON_DECODE_ANY, &je));
		char *t = json_dumps(o, JSON_COMPACT);
		unsigned long n1 = wa_creds_full_checks();
		assert_int_equal(wa_creds_from_blob(t, strlen(t), &out, why, sizeof(why)), 0);
		assert_int_equal(wa_creds_full_checks(), n1 + 1);
		wa_creds_free(&out);
		free(t);
		json_decref(o);
	}
	/* Without the secret, the marked blob is checked like any other. */
	wa_creds_set_secret(NULL, 0);
	unsigned long n2 = wa_creds_full_checks();
	assert_int_equal(wa_creds_from_blob(blob, strlen(blob), &out, why, sizeof(why)), 0);
	assert_int_equal(wa_creds_full_checks(), n2 + 1);
	wa_creds_free(&out);
	wa_creds_free(&w);
	free(blob);
	free(plain);
	wa_creds_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_prekey_publics),
		cmocka_unit_test(test_corrupt_blobs),
		cmocka_unit_test(test_checks_once_per_blob),
		cmocka_unit_test(test_checked_mark),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_durations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
