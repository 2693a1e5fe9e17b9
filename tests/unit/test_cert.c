/*
 * Unit tests for wa/cert: a good chain passes, and every field that full
 * verification looks at is broken one at a time and must be rejected for
 * exactly that reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "proto/wa.pb-c.h"
#include "wa/cert.h"
#include "wa/crypto.h"

#define NOW 1750000000

static struct wa_keypair root, other, inter_kp, server;

/* Everything a test may break; good_spec() fills in a valid chain. */
struct spec {
	int no_leaf, no_inter;
	int no_inter_sig, no_leaf_details;
	size_t inter_sig_len, leaf_sig_len;
	const uint8_t *inter_signer; /* private key that signs the intermediate */
	const uint8_t *leaf_signer;  /* private key that signs the leaf */
	uint32_t i_serial, i_issuer, l_serial, l_issuer;
	const uint8_t *i_key;
	size_t i_key_len;
	const uint8_t *l_key;
	uint64_t i_nb, i_na, l_nb, l_na;
	int garbage_inter_details;
};

static struct spec
good_spec(void)
{
	struct spec s = {
	    .inter_sig_len = 64,
	    .leaf_sig_len = 64,
	    .inter_signer = root.priv,
	    .leaf_signer = inter_kp.priv,
	    .i_serial = 7,
	    .i_issuer = 0,
	    .l_serial = 99,
	    .l_issuer = 7,
	    .i_key = inter_kp.pub,
	    .i_key_len = 32,
	    .l_key = server.pub,
	    .i_nb = NOW - 1000,
	    .i_na = NOW + 1000,
	    .l_nb = NOW - 100,
	    .l_na = NOW + 100,
	};
	return s;
}

static void
pack_details(struct wg_buf *out, uint32_t serial, uint32_t issuer, const uint8_t *key,
             size_t key_len, uint64_t nb, uint64_t na)
{
	Wa__CertChain__NoiseCertificate__Details d =
	    WA__CERT_CHAIN__NOISE_CERTIFICATE__DETAILS__INIT;
	d.has_serial = d.has_issuer_serial = d.has_key = d.has_not_before = d.has_not_after = 1;
	d.serial = serial;
	d.issuer_serial = issuer;
	d.key.data = (uint8_t *)key;
	d.key.len = key_len;
	d.not_before = nb;
	d.not_after = na;
	size_t len = protobuf_c_message_get_packed_size(&d.base);
	wg_buf_reserve(out, len);
	protobuf_c_message_pack(&d.base, out->data);
	out->len = len;
}

static void
build(const struct spec *s, struct wg_buf *chain)
{
	struct wg_buf idet = {0}, ldet = {0};
	uint8_t isig[64], lsig[64];
	uint8_t key33[33];
	const uint8_t *ikey = s->i_key;
	if (s->i_key_len > 32) {
		memcpy(key33, s->i_key, 32);
		key33[32] = 0;
		ikey = key33;
	}
	pack_details(&idet, s->i_serial, s->i_issuer, ikey, s->i_key_len, s->i_nb, s->i_na);
	pack_details(&ldet, s->l_serial, s->l_issuer, s->l_key, 32, s->l_nb, s->l_na);
	if (s->garbage_inter_details) {
		/* Signed correctly, but not a Details message: a truncated field. */
		wg_buf_reset(&idet);
		wg_buf_push(&idet, 0x1a);
		wg_buf_push(&idet, 0x40);
	}
	assert_int_equal(wa_crypto_sign(isig, s->inter_signer, idet.data, idet.len), 0);
	assert_int_equal(wa_crypto_sign(lsig, s->leaf_signer, ldet.data, ldet.len), 0);

	Wa__CertChain__NoiseCertificate ic = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;
	Wa__CertChain__NoiseCertificate lc = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;
	Wa__CertChain cc = WA__CERT_CHAIN__INIT;
	ic.has_details = 1;
	ic.details.data = idet.data;
	ic.details.len = idet.len;
	ic.has_signature = !s->no_inter_sig;
	ic.signature.data = isig;
	ic.signature.len = s->inter_sig_len;
	lc.has_details = !s->no_leaf_details;
	lc.details.data = ldet.data;
	lc.details.len = ldet.len;
	lc.has_signature = 1;
	lc.signature.data = lsig;
	lc.signature.len = s->leaf_sig_len;
	cc.intermediate = s->no_inter ? NULL : &ic;
	cc.leaf = s->no_leaf ? NULL : &lc;
	size_t len = wa__cert_chain__get_packed_size(&cc);
	wg_buf_reset(chain);
	wg_buf_reserve(chain, len + 1);
	wa__cert_chain__pack(&cc, chain->data);
	chain->len = len;
	wg_buf_free(&idet);
	wg_buf_free(&ldet);
}

static struct wa_cert_policy
policy(void)
{
	struct wa_cert_policy p;
	memcpy(p.root_pub, root.pub, 32);
	p.now = NOW;
	return p;
}

/* Builds the chain for s and checks the verdict and, on rejection, the reason. */
static void
expect(const struct spec *s, const char *why_expected)
{
	struct wg_buf chain = {0};
	struct wa_cert_policy p = policy();
	const char *why = NULL;
	build(s, &chain);
	int rc = wa_cert_verify(chain.data, chain.len, &p, server.pub, &why);
	if (why_expected == NULL) {
		assert_int_equal(rc, 0);
	} else {
		assert_int_equal(rc, WG_ECERT);
		assert_non_null(why);
		assert_string_equal(why, why_expected);
	}
	wg_buf_free(&chain);
}

static int
setup(void **state)
{
	(void)state;
	wa_crypto_keypair(&root);
	wa_crypto_keypair(&other);
	wa_crypto_keypair(&inter_kp);
	wa_crypto_keypair(&server);
	return 0;
}

static void
test_good_chain(void **state)
{
	(void)state;
	struct spec s = good_spec();
	expect(&s, NULL);
	/* Validity bounds are inclusive. */
	s.i_nb = s.l_nb = NOW;
	expect(&s, NULL);
	s = good_spec();
	s.i_na = s.l_na = NOW;
	expect(&s, NULL);
}

static void
test_missing_parts(void **state)
{
	(void)state;
	struct spec s = good_spec();
	s.no_leaf = 1;
	expect(&s, "no leaf certificate");
	s = good_spec();
	s.no_inter = 1;
	expect(&s, "no intermediate certificate");
	s = good_spec();
	s.no_inter_sig = 1;
	expect(&s, "intermediate certificate lacks details or signature");
	s = good_spec();
	s.no_leaf_details = 1;
	expect(&s, "leaf certificate lacks details or signature");
}

static void
test_short_signatures(void **state)
{
	(void)state;
	struct spec s = good_spec();
	s.inter_sig_len = 63;
	expect(&s, "intermediate signature is not 64 bytes");
	s = good_spec();
	s.leaf_sig_len = 32;
	expect(&s, "leaf signature is not 64 bytes");
}

static void
test_wrong_root(void **state)
{
	(void)state;
	struct spec s = good_spec();
	struct wg_buf chain = {0};
	struct wa_cert_policy p = policy();
	const char *why = NULL;
	build(&s, &chain);
	/* A good chain, but the client trusts another root. */
	memcpy(p.root_pub, other.pub, 32);
	assert_int_equal(wa_cert_verify(chain.data, chain.len, &p, server.pub, &why), WG_ECERT);
	assert_string_equal(why, "intermediate certificate not signed by the root key");
	/* The real WhatsApp root does not vouch for a chain we made. */
	memcpy(p.root_pub, wa_cert_whatsapp_root(), 32);
	assert_int_equal(wa_cert_verify(chain.data, chain.len, &p, server.pub, NULL), WG_ECERT);
	wg_buf_free(&chain);
}

static void
test_intermediate_fields(void **state)
{
	(void)state;
	struct spec s = good_spec();
	s.inter_signer = other.priv;
	expect(&s, "intermediate certificate not signed by the root key");
	s = good_spec();
	s.i_issuer = 1;
	expect(&s, "intermediate issuerSerial is not 0");
	s = good_spec();
	s.i_key_len = 33;
	expect(&s, "intermediate key is not 32 bytes");
	s = good_spec();
	s.i_key_len = 31;
	expect(&s, "intermediate key is not 32 bytes");
	s = good_spec();
	s.garbage_inter_details = 1;
	expect(&s, "intermediate details do not parse");
}

static void
test_leaf_fields(void **state)
{
	(void)state;
	struct spec s = good_spec();
	s.leaf_signer = other.priv;
	expect(&s, "leaf certificate not signed by the intermediate key");
	/* Signed by the root directly, skipping the intermediate: still wrong. */
	s.leaf_signer = root.priv;
	expect(&s, "leaf certificate not signed by the intermediate key");
	s = good_spec();
	s.l_issuer = 8;
	expect(&s, "leaf issuerSerial does not match the intermediate serial");
	s = good_spec();
	s.l_key = other.pub;
	expect(&s, "leaf key is not the server's static key");
}

static void
test_validity(void **state)
{
	(void)state;
	struct spec s = good_spec();
	s.l_nb = NOW + 1;
	expect(&s, "leaf certificate not yet valid");
	s = good_spec();
	s.l_na = NOW - 1;
	expect(&s, "leaf certificate expired");
	s = good_spec();
	s.i_nb = NOW + 1;
	expect(&s, "intermediate certificate not yet valid");
	s = good_spec();
	s.i_na = NOW - 1;
	expect(&s, "intermediate certificate expired");
}

static void
test_garbage(void **state)
{
	(void)state;
	struct wa_cert_policy p = policy();
	const char *why = NULL;
	const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	assert_int_equal(wa_cert_verify(junk, sizeof(junk), &p, server.pub, &why), WG_ECERT);
	assert_string_equal(why, "certificate chain does not parse");
	/* BL's minimal accepted chain `12 00` (an empty intermediate) is not enough here. */
	const uint8_t minimal[] = {0x12, 0x00};
	assert_int_equal(wa_cert_verify(minimal, sizeof(minimal), &p, server.pub, &why), WG_ECERT);
	assert_string_equal(why, "no leaf certificate");
	assert_int_equal(wa_cert_verify(NULL, 0, &p, server.pub, &why), WG_ECERT);
	assert_string_equal(why, "no intermediate certificate");
}

static void
test_issue(void **state)
{
	(void)state;
	struct wg_buf chain = {0};
	struct wa_cert_policy p = policy();
	const char *why = NULL;
	assert_int_equal(wa_cert_issue(root.priv, server.pub, NOW, &chain), 0);
	assert_int_equal(wa_cert_verify(chain.data, chain.len, &p, server.pub, &why), 0);
	/* Back-dated by an hour, valid for 30 days. */
	p.now = NOW - 3600;
	assert_int_equal(wa_cert_verify(chain.data, chain.len, &p, server.pub, NULL), 0);
	p.now = NOW - 3601;
	assert_int_equal(wa_cert_verify(chain.data, chain.len, &p, server.pub, &why), WG_ECERT);
	assert_string_equal(why, "leaf certificate not yet valid");
	p.now = NOW + 30 * 86400 + 1;
	assert_int_equal(wa_cert_verify(chain.data, chain.len, &p, server.pub, &why), WG_ECERT);
	assert_string_equal(why, "leaf certificate expired");
	/* Another server key, another root. */
	p = policy();
	assert_int_equal(wa_cert_verify(chain.data, chain.len, &p, other.pub, &why), WG_ECERT);
	assert_string_equal(why, "leaf key is not the server's static key");
	memcpy(p.root_pub, other.pub, 32);
	assert_int_equal(wa_cert_verify(chain.data, chain.len, &p, server.pub, NULL), WG_ECERT);

	/* Appends, and every chain has its own intermediate key and serials. */
	struct wg_buf two = {0};
	wg_buf_push(&two, 0xee);
	assert_int_equal(wa_cert_issue(root.priv, server.pub, NOW, &two), 0);
	assert_int_equal(two.data[0], 0xee);
	assert_false(two.len - 1 == chain.len && memcmp(two.data + 1, chain.data, chain.len) == 0);
	p = policy();
	assert_int_equal(wa_cert_verify(two.data + 1, two.len - 1, &p, server.pub, NULL), 0);

	/* The intermediate's issuerSerial is 0, which is all BL checks. */
	Wa__CertChain *cc = wa__cert_chain__unpack(NULL, chain.len, chain.data);
	assert_non_null(cc);
	Wa__CertChain__NoiseCertificate__Details *d =
	    (Wa__CertChain__NoiseCertificate__Details *)protobuf_c_message_unpack(
	        &wa__cert_chain__noise_certificate__details__descriptor, NULL,
	        cc->intermediate->details.len, cc->intermediate->details.data);
	assert_non_null(d);
	assert_int_equal(d->issuer_serial, 0);
	assert_int_not_equal(d->serial, 0);
	protobuf_c_message_free_unpacked(&d->base, NULL);
	wa__cert_chain__free_unpacked(cc, NULL);
	wg_buf_free(&two);
	wg_buf_free(&chain);
}

static void
test_roots(void **state)
{
	(void)state;
	static const uint8_t wa_root[32] = {
	    0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7,
	    0x1e, 0xbe, 0x51, 0x64, 0x37, 0xc4, 0xa2, 0x8b, 0x73, 0xe3, 0x69,
	    0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b,
	};
	uint8_t out[32];
	assert_memory_equal(wa_cert_whatsapp_root(), wa_root, 32);

	unsetenv("WAGATE_WA_ROOT_PUBKEY");
	memset(out, 0, sizeof(out));
	assert_int_equal(wa_cert_root_from_env(out), 0);
	assert_memory_equal(out, wa_root, 32);

	setenv("WAGATE_WA_ROOT_PUBKEY",
	       "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff", 1);
	assert_int_equal(wa_cert_root_from_env(out), 0);
	assert_int_equal(out[0], 0x00);
	assert_int_equal(out[10], 0xaa);
	assert_int_equal(out[31], 0xff);

	static const char *const bad[] = {
	    "",
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0",
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg",
	    "00112233445566778899aabbccddeeff 0112233445566778899aabbccddeeff",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 0x5a, sizeof(out));
		setenv("WAGATE_WA_ROOT_PUBKEY", bad[i], 1);
		assert_int_equal(wa_cert_root_from_env(out), WG_EINVAL);
		assert_int_equal(out[0], 0x5a); /* untouched */
	}
	unsetenv("WAGATE_WA_ROOT_PUBKEY");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_chain),
	    cmocka_unit_test(test_missing_parts),
	    cmocka_unit_test(test_short_signatures),
	    cmocka_unit_test(test_wrong_root),
	    cmocka_unit_test(test_intermediate_fields),
	    cmocka_unit_test(test_leaf_fields),
	    cmocka_unit_test(test_validity),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_issue),
	    cmocka_unit_test(test_roots),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
