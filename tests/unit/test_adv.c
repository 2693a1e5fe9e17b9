/* Pairing crypto: the phone's vouching, the companion's checks and countersignature; QR text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "proto/wa.pb-c.h"
#include "wa/adv.h"
#include "wa/crypto.h"
#include "wa/qr.h"

struct pair {
	struct wa_keypair account, identity;
	uint8_t adv[32];
	struct wg_buf msg;
};

static void
make(struct pair *p)
{
	memset(p, 0, sizeof(*p));
	wa_crypto_keypair(&p->account);
	wa_crypto_keypair(&p->identity);
	wa_random(p->adv, 32);
	assert_int_equal(wa_adv_phone_sign(p->account.priv, p->account.pub, p->identity.pub, p->adv,
					   3, 1700000000, &p->msg),
			 0);
}

static int
accept(struct pair *p, const uint8_t *msg, size_t len, struct wg_buf *account, struct wg_buf *reply,
       const char **why)
{
	uint32_t ki = 0;
	return wa_adv_companion_accept(msg, len, p->adv, p->identity.priv, p->identity.pub, account,
				       reply, &ki, why);
}

static void
test_round_trip(void **state)
{
	struct pair p;
	make(&p);
	struct wg_buf account = {0}, reply = {0};
	uint32_t ki = 0;
	const char *why = NULL;
	assert_int_equal(wa_adv_companion_accept(p.msg.data, p.msg.len, p.adv, p.identity.priv,
						 p.identity.pub, &account, &reply, &ki, &why),
			 0);
	assert_int_equal(ki, 3);
	/* The stored account keeps the phone's key; the reply does not. */
	Wa__ADVSignedDeviceIdentity *a =
		wa__advsigned_device_identity__unpack(NULL, account.len, account.data);
	Wa__ADVSignedDeviceIdentity *r =
		wa__advsigned_device_identity__unpack(NULL, reply.len, reply.data);
	assert_non_null(a);
	assert_non_null(r);
	assert_int_equal(a->account_signature_key.len, 32);
	assert_memory_equal(a->account_signature_key.data, p.account.pub, 32);
	assert_int_equal(r->has_account_signature_key, 0);
	assert_int_equal(r->device_signature.len, 64);
	wa__advsigned_device_identity__free_unpacked(a, NULL);
	wa__advsigned_device_identity__free_unpacked(r, NULL);
	/* The phone accepts the countersignature... */
	uint32_t ki2 = 0;
	assert_int_equal(wa_adv_phone_check_reply(reply.data, reply.len, p.msg.data, p.msg.len, p.identity.pub,
						  p.account.pub, &ki2, &why),
			 0);
	assert_int_equal(ki2, 3);
	/* ...but not for another identity or account, nor a tampered reply. */
	struct wa_keypair other;
	wa_crypto_keypair(&other);
	assert_int_equal(wa_adv_phone_check_reply(reply.data, reply.len, p.msg.data, p.msg.len, other.pub, p.account.pub,
						  &ki2, &why),
			 WG_ECRYPTO);
	assert_int_equal(wa_adv_phone_check_reply(reply.data, reply.len, p.msg.data, p.msg.len, p.identity.pub, other.pub,
						  &ki2, &why),
			 WG_ECRYPTO);
	reply.data[reply.len - 1] ^= 1;
	assert_true(wa_adv_phone_check_reply(reply.data, reply.len, p.msg.data, p.msg.len, p.identity.pub, p.account.pub,
					     &ki2, &why) < 0);
	assert_true(wa_adv_phone_check_reply((const uint8_t *)"\xff\xff", 2, p.msg.data, p.msg.len, p.identity.pub,
					     p.account.pub, &ki2, &why) < 0);
	/* A reply countersigning details the phone never issued is refused. */
	struct pair q;
	make(&q);
	struct wg_buf acc2 = {0}, rep2 = {0};
	assert_int_equal(wa_adv_companion_accept(q.msg.data, q.msg.len, q.adv, q.identity.priv,
						 q.identity.pub, &acc2, &rep2, &ki, &why),
			 0);
	assert_int_equal(wa_adv_phone_check_reply(rep2.data, rep2.len, p.msg.data, p.msg.len,
						  q.identity.pub, q.account.pub, &ki2, &why),
			 WG_ECRYPTO);
	assert_non_null(strstr(why, "not the ones the phone signed"));
	wg_buf_free(&acc2);
	wg_buf_free(&rep2);
	wg_buf_free(&q.msg);
	wg_buf_free(&account);
	wg_buf_free(&reply);
	wg_buf_free(&p.msg);
}

static void
test_companion_rejects(void **state)
{
	struct pair p;
	struct wg_buf account = {0}, reply = {0};
	const char *why = NULL;

	/* Another advSecret: the HMAC fails (someone else's QR). */
	make(&p);
	p.adv[0] ^= 1;
	assert_int_equal(accept(&p, p.msg.data, p.msg.len, &account, &reply, &why), WG_ECRYPTO);
	assert_non_null(strstr(why, "HMAC"));
	wg_buf_free(&p.msg);

	/* The phone vouched for another identity key: the account signature fails. */
	make(&p);
	struct wa_keypair other;
	wa_crypto_keypair(&other);
	wg_buf_reset(&p.msg);
	assert_int_equal(wa_adv_phone_sign(p.account.priv, p.account.pub, other.pub, p.adv, 1, 1,
					   &p.msg),
			 0);
	assert_int_equal(accept(&p, p.msg.data, p.msg.len, &account, &reply, &why), WG_ECRYPTO);
	assert_non_null(strstr(why, "account signature"));
	wg_buf_free(&p.msg);

	/* Any flipped byte is refused, and nothing is written out. */
	make(&p);
	for (size_t i = 0; i < p.msg.len; i++) {
		p.msg.data[i] ^= 0x40;
		assert_true(accept(&p, p.msg.data, p.msg.len, &account, &reply, &why) < 0);
		assert_int_equal(account.len, 0);
		assert_int_equal(reply.len, 0);
		p.msg.data[i] ^= 0x40;
	}
	/* Truncations too. */
	for (size_t n = 0; n < p.msg.len; n++)
		assert_true(accept(&p, p.msg.data, n, &account, &reply, &why) < 0);
	assert_int_equal(accept(&p, p.msg.data, p.msg.len, &account, &reply, &why), 0);
	wg_buf_free(&p.msg);
	wg_buf_free(&account);
	wg_buf_free(&reply);
}

static void
test_qr(void **state)
{
	uint8_t n[32], i[32], a[32];
	for (int k = 0; k < 32; k++) {
		n[k] = (uint8_t)k;
		i[k] = (uint8_t)(k * 3);
		a[k] = (uint8_t)(255 - k);
	}
	char text[512];
	int len = wa_qr_format("2@abc==", n, i, a, "1", text, sizeof(text));
	assert_true(len > 0);
	assert_int_equal(strncmp(text, WA_QR_PREFIX "2@abc==,", strlen(WA_QR_PREFIX) + 8), 0);
	struct wa_qr q;
	assert_int_equal(wa_qr_parse(text, &q), 0);
	assert_string_equal(q.ref, "2@abc==");
	assert_memory_equal(q.noise_pub, n, 32);
	assert_memory_equal(q.identity_pub, i, 32);
	assert_memory_equal(q.adv_secret, a, 32);
	assert_string_equal(q.client_type, "1");
	/* The old form (Baileys 6): no prefix, four fields. */
	assert_true(wa_qr_format("2@x", n, i, a, NULL, text, sizeof(text)) > 0);
	assert_int_equal(strncmp(text, "2@x,", 4), 0);
	assert_int_equal(wa_qr_parse(text, &q), 0);
	assert_string_equal(q.client_type, "");
	/* Refused: too small a buffer, commas in a ref, bad field counts and keys. */
	assert_int_equal(wa_qr_format("2@x", n, i, a, "1", text, 20), WG_ELIMIT);
	assert_int_equal(wa_qr_format("a,b", n, i, a, "1", text, sizeof(text)), WG_EINVAL);
	static const char *bad[] = {
		"", "ref", "ref,a,b", "ref,AAAA,AAAA,AAAA",
		"ref,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		",AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"r,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,1,extra",
		"r,!!!,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_int_equal(wa_qr_parse(bad[k], &q), WG_EINVAL);
	const char *good = "r,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
	assert_int_equal(wa_qr_parse(good, &q), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_companion_rejects),
		cmocka_unit_test(test_qr),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
