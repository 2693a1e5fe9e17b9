/* Unit tests for wa/crypto: known-answer vectors and XEdDSA round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <signal/curve.h>
#include <signal/hkdf.h>
#include <signal/signal_protocol.h>

#include "core/enc.h"
#include "core/err.h"
#include "wa/crypto.h"

/* Decodes a hex literal into out; returns the byte count. */
static size_t
hex(uint8_t *out, const char *s)
{
	size_t bad = 0;
	long n = wg_hex_decode(out, s, strlen(s), &bad);
	assert_true(n >= 0);
	return (size_t)n;
}

static void
assert_hex(const uint8_t *got, size_t len, const char *want)
{
	uint8_t w[512];
	assert_int_equal(hex(w, want), len);
	assert_memory_equal(got, w, len);
}

/* RFC 5869 appendix A.1 (test case 1). */
static void
test_hkdf_rfc5869_case1(void **state)
{
	(void)state;
	uint8_t ikm[22], salt[13], info[10], okm[42];
	memset(ikm, 0x0b, sizeof(ikm));
	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(info); i++)
		info[i] = (uint8_t)(0xf0 + i);
	assert_int_equal(wa_crypto_hkdf(okm, sizeof(okm), salt, sizeof(salt), ikm, sizeof(ikm),
	                                info, sizeof(info)),
	                 0);
	assert_hex(okm, sizeof(okm),
	           "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	           "34007208d5b887185865");
}

/* RFC 5869 A.3: empty salt and info, which is how Noise's Split uses HKDF (empty ikm). */
static void
test_hkdf_rfc5869_case3(void **state)
{
	(void)state;
	uint8_t ikm[22], okm[42];
	memset(ikm, 0x0b, sizeof(ikm));
	assert_int_equal(wa_crypto_hkdf(okm, sizeof(okm), NULL, 0, ikm, sizeof(ikm), NULL, 0), 0);
	assert_hex(okm, sizeof(okm),
	           "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	           "9d201395faa4b61a96c8");
	assert_int_equal(wa_crypto_hkdf(okm, 255 * 32 + 1, NULL, 0, ikm, 1, NULL, 0), WG_EINVAL);
}

static void
test_sha256_hmac(void **state)
{
	(void)state;
	uint8_t md[32];
	wa_crypto_sha256(md, "abc", 3);
	assert_hex(md, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* RFC 4231 test case 2. */
	wa_crypto_hmac_sha256(md, (const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28);
	assert_hex(md, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* The AES-256 vector of the GCM specification (McGrew & Viega, test case 16). */
static void
test_gcm_known_vector(void **state)
{
	(void)state;
	uint8_t key[32], iv[12], aad[20], pt[60], ct[76], back[60];
	hex(key, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
	hex(iv, "cafebabefacedbaddecaf888");
	hex(aad, "feedfacedeadbeeffeedfacedeadbeefabaddad2");
	hex(pt, "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
	assert_int_equal(wa_crypto_gcm_encrypt(key, iv, aad, sizeof(aad), pt, sizeof(pt), ct), 0);
	assert_hex(ct, sizeof(ct),
	           "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	           "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
	           "76fc6ece0f4e1768cddf8853bb2d551b");
	assert_int_equal(wa_crypto_gcm_decrypt(key, iv, aad, sizeof(aad), ct, sizeof(ct), back), 0);
	assert_memory_equal(back, pt, sizeof(pt));

	/* Any change to ciphertext, tag or AAD fails authentication. */
	ct[3] ^= 1;
	assert_int_equal(wa_crypto_gcm_decrypt(key, iv, aad, sizeof(aad), ct, sizeof(ct), back),
	                 WG_ECRYPTO);
	ct[3] ^= 1;
	ct[sizeof(ct) - 1] ^= 0x80;
	assert_int_equal(wa_crypto_gcm_decrypt(key, iv, aad, sizeof(aad), ct, sizeof(ct), back),
	                 WG_ECRYPTO);
	ct[sizeof(ct) - 1] ^= 0x80;
	aad[0] ^= 1;
	assert_int_equal(wa_crypto_gcm_decrypt(key, iv, aad, sizeof(aad), ct, sizeof(ct), back),
	                 WG_ECRYPTO);
	assert_int_equal(wa_crypto_gcm_decrypt(key, iv, NULL, 0, ct, 15, back), WG_ETRUNC);
}

/* GCM test case 13: empty plaintext, the tag alone. */
static void
test_gcm_empty(void **state)
{
	(void)state;
	uint8_t key[32] = {0}, iv[12] = {0}, ct[16], out[1];
	assert_int_equal(wa_crypto_gcm_encrypt(key, iv, NULL, 0, NULL, 0, ct), 0);
	assert_hex(ct, 16, "530f8afbc74536b9a963b4f1c4cb738b");
	assert_int_equal(wa_crypto_gcm_decrypt(key, iv, NULL, 0, ct, 16, out), 0);
}

/* RFC 7748 §6.1. */
static void
test_x25519_rfc7748(void **state)
{
	(void)state;
	uint8_t a[32], b[32], pub[32], s1[32], s2[32];
	hex(a, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	hex(b, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
	assert_int_equal(wa_crypto_pub_from_priv(pub, a), 0);
	assert_hex(pub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	uint8_t bpub[32];
	assert_int_equal(wa_crypto_pub_from_priv(bpub, b), 0);
	assert_hex(bpub, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	struct wa_keypair ka, kb;
	memcpy(ka.priv, a, 32);
	memcpy(ka.pub, pub, 32);
	memcpy(kb.priv, b, 32);
	memcpy(kb.pub, bpub, 32);
	assert_int_equal(wa_crypto_dh(s1, &ka, bpub), 0);
	assert_int_equal(wa_crypto_dh(s2, &kb, pub), 0);
	assert_hex(s1, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	assert_memory_equal(s1, s2, 32);

	/* A low-order point (here the all-zero key) yields no usable secret. */
	uint8_t zero[32] = {0};
	assert_int_equal(wa_crypto_dh(s1, &ka, zero), WG_ECRYPTO);
}

static void
test_keypair(void **state)
{
	(void)state;
	struct wa_keypair k1, k2;
	uint8_t pub[32], s1[32], s2[32];
	wa_crypto_keypair(&k1);
	wa_crypto_keypair(&k2);
	assert_memory_not_equal(k1.priv, k2.priv, 32);
	/* Clamped as the reference clients store them. */
	assert_int_equal(k1.priv[0] & 7, 0);
	assert_int_equal(k1.priv[31] & 0xc0, 0x40);
	assert_int_equal(wa_crypto_pub_from_priv(pub, k1.priv), 0);
	assert_memory_equal(pub, k1.pub, 32);
	assert_int_equal(wa_crypto_dh(s1, &k1, k2.pub), 0);
	assert_int_equal(wa_crypto_dh(s2, &k2, k1.pub), 0);
	assert_memory_equal(s1, s2, 32);
}

static void
test_xeddsa_roundtrip(void **state)
{
	(void)state;
	struct wa_keypair k, other;
	uint8_t sig[64];
	const char msg[] = "\x05 a signed pre-key";
	wa_crypto_keypair(&k);
	wa_crypto_keypair(&other);
	assert_int_equal(wa_crypto_sign(sig, k.priv, msg, sizeof(msg)), 0);
	assert_int_equal(wa_crypto_verify(k.pub, msg, sizeof(msg), sig, 64), 0);

	/* A modified message, a modified signature, another key, a short signature. */
	char bad[sizeof(msg)];
	memcpy(bad, msg, sizeof(msg));
	bad[3] ^= 1;
	assert_int_equal(wa_crypto_verify(k.pub, bad, sizeof(bad), sig, 64), WG_ECRYPTO);
	assert_int_equal(wa_crypto_verify(k.pub, msg, sizeof(msg) - 1, sig, 64), WG_ECRYPTO);
	for (int i = 0; i < 64; i += 9) {
		sig[i] ^= 0x10;
		assert_int_equal(wa_crypto_verify(k.pub, msg, sizeof(msg), sig, 64), WG_ECRYPTO);
		sig[i] ^= 0x10;
	}
	assert_int_equal(wa_crypto_verify(other.pub, msg, sizeof(msg), sig, 64), WG_ECRYPTO);
	assert_int_equal(wa_crypto_verify(k.pub, msg, sizeof(msg), sig, 63), WG_ECRYPTO);
	assert_int_equal(wa_crypto_verify(k.pub, msg, sizeof(msg), sig, 64), 0);

	/* Empty messages work too. */
	assert_int_equal(wa_crypto_sign(sig, k.priv, NULL, 0), 0);
	assert_int_equal(wa_crypto_verify(k.pub, NULL, 0, sig, 64), 0);

	/* Half of all keys have an Edwards form with the sign bit set, carried in
	 * the signature: 64 keys make it all but certain both kinds were seen. */
	int signs[2] = {0, 0};
	for (int i = 0; i < 64; i++) {
		wa_crypto_keypair(&k);
		assert_int_equal(wa_crypto_sign(sig, k.priv, msg, sizeof(msg)), 0);
		signs[sig[63] >> 7]++;
		assert_int_equal(wa_crypto_verify(k.pub, msg, sizeof(msg), sig, 64), 0);
		sig[63] ^= 0x80; /* the other sign is another key */
		assert_int_equal(wa_crypto_verify(k.pub, msg, sizeof(msg), sig, 64), WG_ECRYPTO);
	}
	assert_true(signs[0] > 0 && signs[1] > 0);

	/* u = p - 1 has no Edwards form (u + 1 = 0), and u = 0 is of low order. */
	uint8_t bad_key[32];
	memset(bad_key, 0xff, sizeof(bad_key));
	bad_key[0] = 0xec;
	bad_key[31] = 0x7f;
	assert_int_equal(wa_crypto_verify(bad_key, msg, sizeof(msg), sig, 64), WG_ECRYPTO);
	memset(bad_key, 0, sizeof(bad_key));
	assert_int_equal(wa_crypto_verify(bad_key, msg, sizeof(msg), sig, 64), WG_ECRYPTO);
}

/*
 * A signature made by curve25519-js (the library libsignal-node, and so
 * Baileys, signs with), for private key 00 02 03 .. 1f 60 (1..32, clamped):
 * proves our XEdDSA is the one the reference clients speak.
 */
static void
test_xeddsa_interop_vector(void **state)
{
	(void)state;
	uint8_t priv[32], pub[32], sig[64];
	const char msg[] = "wagate xeddsa interop vector";
	hex(priv, "0002030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f60");
	hex(sig, "81bfa295b0ff05a8dae24216046f7be48855aaa3ca9ca556f1901eda6f660a47"
	         "ff8fad7728ef7f5423bfbe5876179aedb15c835c03f53719cfe9f5f991541084");
	assert_int_equal(wa_crypto_pub_from_priv(pub, priv), 0);
	assert_hex(pub, 32, "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c");
	assert_int_equal(wa_crypto_verify(pub, msg, strlen(msg), sig, 64), 0);
	sig[10] ^= 4;
	assert_int_equal(wa_crypto_verify(pub, msg, strlen(msg), sig, 64), WG_ECRYPTO);
}

/* The provider's HMAC and AES callbacks, exercised through libsignal itself. */
static void
test_signal_context(void **state)
{
	(void)state;
	signal_context *ctx = wa_crypto_signal_context();
	assert_non_null(ctx);
	assert_ptr_equal(ctx, wa_crypto_signal_context());

	/* libsignal's own key pair generation and agreement use the random callback. */
	ec_key_pair *kp = NULL;
	assert_int_equal(curve_generate_key_pair(ctx, &kp), 0);
	signal_buffer *pub = NULL;
	assert_int_equal(ec_public_key_serialize(&pub, ec_key_pair_get_public(kp)), 0);
	assert_int_equal(signal_buffer_len(pub), 33);
	assert_int_equal(signal_buffer_data(pub)[0], 0x05);
	signal_buffer_free(pub);
	SIGNAL_UNREF(kp);

	/* libsignal's HKDF (message version 3 is RFC 5869) runs on our HMAC
	 * callbacks: it must agree with RFC 5869 test case 1. */
	uint8_t ikm[22], salt[13], info[10], *okm = NULL;
	memset(ikm, 0x0b, sizeof(ikm));
	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(info); i++)
		info[i] = (uint8_t)(0xf0 + i);
	hkdf_context *hk = NULL;
	assert_int_equal(hkdf_create(&hk, 3, ctx), 0);
	assert_int_equal(hkdf_derive_secrets(hk, &okm, ikm, sizeof(ikm), salt, sizeof(salt), info,
	                                     sizeof(info), 42),
	                 42);
	assert_hex(okm, 42,
	           "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	           "34007208d5b887185865");
	free(okm);
	SIGNAL_UNREF(hk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hkdf_rfc5869_case1),
	    cmocka_unit_test(test_hkdf_rfc5869_case3),
	    cmocka_unit_test(test_sha256_hmac),
	    cmocka_unit_test(test_gcm_known_vector),
	    cmocka_unit_test(test_gcm_empty),
	    cmocka_unit_test(test_x25519_rfc7748),
	    cmocka_unit_test(test_keypair),
	    cmocka_unit_test(test_xeddsa_roundtrip),
	    cmocka_unit_test(test_xeddsa_interop_vector),
	    cmocka_unit_test(test_signal_context),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
