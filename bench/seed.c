/*
 * wagate-bench-seed: N logged-in sessions for the benchmark, as SQL for the
 * sqlite3 tool, without pairing N devices one by one.
 *
 *   wagate-bench-seed --count N --phone-base DIGITS [--first I]
 *
 * Prints one transaction of INSERTs into whatsapp_sessions (the schema of
 * `wagate migrate`). Session i gets fresh device keys (wa_creds_generate) and
 * an account signed by a bench "phone" exactly as the phone signs at pairing
 * (wa_adv_phone_sign), countersigned by the device (wa_adv_companion_accept),
 * so the credentials are complete and wagate treats them as paired. It logs
 * in as PHONE:1@s.whatsapp.net with PHONE = phone-base + i, which a mock run
 * with --accept-any-login accepts. Each session is the "primary" of its own
 * user, so all of them auto-connect at start.
 *
 * With WAGATE_SECRET_KEY (64 hex digits) in the environment the credentials
 * are sealed under it, as wagate serve writes them (store/seal.h); without it
 * they are plain, as an older wagate wrote them, and serve seals them at its
 * first start (a one-time cost the benchmark keeps out of its figures).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/enc.h"
#include "core/mem.h"
#include "store/seal.h"
#include "wa/adv.h"
#include "wa/creds.h"
#include "wa/crypto.h"

/* As many as wagate uploads in one batch. */
#define SEED_PREKEYS 30

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* SQL string literal: the blob is JSON with base64, so only quotes need doubling. */
static void
put_sql_text(const char *s)
{
	putchar('\'');
	for (; *s; s++) {
		if (*s == '\'')
			putchar('\'');
		putchar(*s);
	}
	putchar('\'');
}

static int
seed_one(uint64_t i, uint64_t phone, const struct wa_keypair *account, const char *now)
{
	struct wa_creds c;
	struct wg_buf sig = {0}, acct = {0}, reply = {0};
	const char *why = NULL;
	uint32_t key_index = 0;
	char jid[64], lid[64], id[48];

	wa_creds_generate(&c);
	if (wa_adv_phone_sign(account->priv, account->pub, c.identity.pub, c.adv_secret, 1,
			      (uint64_t)(wg_wall_ms() / 1000), &sig) != 0 ||
	    wa_adv_companion_accept(sig.data, sig.len, c.adv_secret, c.identity.priv,
				    c.identity.pub, &acct, &reply, &key_index, &why) != 0) {
		fprintf(stderr, "wagate-bench-seed: signing failed: %s\n", why ? why : "?");
		wa_creds_free(&c);
		return -1;
	}
	snprintf(jid, sizeof(jid), "%" PRIu64 ":1@s.whatsapp.net", phone);
	/*
	 * The LID the mock gives a phone it has no record of (a hash of the
	 * number): a saved session knows its LID, so a login changes nothing in
	 * its credentials, as after a restart.
	 */
	char digits[24];
	uint8_t h[32];
	uint64_t r = 0;
	snprintf(digits, sizeof(digits), "%" PRIu64, phone);
	wa_crypto_sha256(h, digits, strlen(digits));
	for (int k = 0; k < 8; k++)
		r = r << 8 | h[k];
	snprintf(lid, sizeof(lid), "%" PRIu64 ":1@lid",
		 (uint64_t)(100000000000000ull + r % 900000000000000ull));
	/* A saved session has uploaded a batch of pre-keys before (the mock is
	 * told so with --prekeys-known), and keeps them in its credentials. */
	c.prekeys = wg_calloc(SEED_PREKEYS, sizeof(*c.prekeys));
	for (uint32_t k = 0; k < SEED_PREKEYS; k++) {
		c.prekeys[k].id = k + 1;
		wa_crypto_keypair(&c.prekeys[k].kp);
	}
	c.nprekeys = SEED_PREKEYS;
	c.next_prekey_id = SEED_PREKEYS + 1;
	c.me_jid = wg_strdup(jid);
	c.me_lid = wg_strdup(lid);
	c.push_name = wg_strdup("bench");
	c.platform = wg_strdup("android");
	c.account = wg_malloc(acct.len);
	memcpy(c.account, acct.data, acct.len);
	c.account_len = acct.len;
	char *blob = wa_creds_to_blob(&c);

	/* A fixed-form uuid per index, so runs are comparable and ids readable. */
	snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012" PRIu64, (uint64_t)(i % 1000000000000ull));
	if (seal_enabled()) {
		char *sealed = seal_text(id, blob);
		wg_wipe(blob, strlen(blob));
		free(blob);
		blob = sealed;
	}
	printf("INSERT INTO whatsapp_sessions (id, user_id, session_name, phone_number, "
	       "auth_state, is_active, auto_connect, created_at, updated_at) VALUES ('%s', "
	       "'bench-%" PRIu64 "', 'primary', '%" PRIu64 "', ",
	       id, i, phone);
	put_sql_text(blob);
	printf(", true, true, '%s', '%s');\n", now, now);

	wg_wipe(blob, strlen(blob));
	free(blob);
	wg_buf_free(&sig);
	wg_buf_free(&acct);
	wg_buf_free(&reply);
	wa_creds_free(&c);
	return 0;
}

int
main(int argc, char **argv)
{
	uint64_t count = 0, base = 0, first = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		uint64_t *dst = NULL;
		if (strcmp(argv[i], "--count") == 0)
			dst = &count;
		else if (strcmp(argv[i], "--phone-base") == 0)
			dst = &base;
		else if (strcmp(argv[i], "--first") == 0)
			dst = &first;
		if (dst == NULL || parse_u64(argv[i + 1], dst) != 0) {
			fprintf(stderr, "wagate-bench-seed: bad option %s\n", argv[i]);
			return 2;
		}
	}
	if (count == 0 || count > 100000 || base < 10000 || base > 999999999999999ull - count) {
		fprintf(stderr, "usage: wagate-bench-seed --count N (1-100000) --phone-base DIGITS "
				"[--first I]\n");
		return 2;
	}

	const char *hex = getenv("WAGATE_SECRET_KEY");
	if (hex != NULL && hex[0] != '\0') {
		uint8_t key[32];
		size_t bad;
		if (strlen(hex) != 64 || wg_hex_decode(key, hex, 64, &bad) != 32) {
			fprintf(stderr, "wagate-bench-seed: WAGATE_SECRET_KEY must be 64 hex digits\n");
			return 2;
		}
		seal_set_keys(key, NULL);
		wa_creds_set_secret(key, sizeof(key)); /* and marked as checked, as serve writes them */
		wg_wipe(key, sizeof(key));
	}
	struct wa_keypair account;
	wa_crypto_keypair(&account);
	char now[32];
	wg_iso8601(now, wg_wall_ms());
	printf("BEGIN;\n");
	for (uint64_t i = first; i < first + count; i++)
		if (seed_one(i, base + i, &account, now) != 0)
			return 1;
	printf("COMMIT;\n");
	wg_wipe(&account, sizeof(account));
	return fflush(stdout) == 0 ? 0 : 1;
}
