#include "wa/cert.h"

#include <stdlib.h>
#include <openssl/evp.h>
#include <string.h>

#include "core/enc.h"
#include "core/err.h"
#include "core/mem.h"
#include "proto/wa.pb-c.h"
#include "wa/crypto.h"

typedef Wa__CertChain__NoiseCertificate__Details Details;
typedef Wa__CertChain__NoiseCertificate NoiseCert;

static const uint8_t whatsapp_root[32] = {
    0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51, 0x64, 0x37,
    0xc4, 0xa2, 0x8b, 0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b,
};

const uint8_t *
wa_cert_whatsapp_root(void)
{
	return whatsapp_root;
}

int
wa_cert_root_from_env(uint8_t out[32])
{
	const char *v = getenv("WAGATE_WA_ROOT_PUBKEY");
	uint8_t key[32];
	size_t bad = 0;

	if (v == NULL) {
		memcpy(out, whatsapp_root, sizeof(whatsapp_root));
		return 0;
	}
	/* wg_hex_decode skips white space, so count the digits ourselves. */
	size_t n = strnlen(v, 65);
	if (n != 64)
		return WG_EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return WG_EINVAL;
	}
	if (wg_hex_decode(key, v, n, &bad) != 32)
		return WG_EINVAL;
	memcpy(out, key, sizeof(key));
	return 0;
}

/* protoc-c emits pack/unpack only for top-level messages; Details is nested. */
static Details *
details_unpack(const ProtobufCBinaryData *b)
{
	return (Details *)protobuf_c_message_unpack(
	    &wa__cert_chain__noise_certificate__details__descriptor, NULL, b->len, b->data);
}

static void
details_free(Details *d)
{
	if (d != NULL)
		protobuf_c_message_free_unpacked(&d->base, NULL);
}

static int
reject(const char **why, const char *reason)
{
	if (why != NULL)
		*why = reason;
	return WG_ECERT;
}

/* 0 inside notBefore..notAfter (inclusive), -1 before it, 1 after it. */
static int
window(const Details *d, int64_t now)
{
	if (now < 0 || (uint64_t)now < d->not_before)
		return -1;
	return (uint64_t)now > d->not_after ? 1 : 0;
}

/*
 * Signatures already verified, by the SHA-256 of (key, signature, message).
 * WhatsApp serves the same chain to every connection for days, and each
 * XEdDSA verification costs about a third of a millisecond: without this, two
 * of them were the largest part of a login's CPU. A hit means these exact
 * bytes verified before, so the answer is the same; the validity windows and
 * the leaf key are still checked every time. One event loop per process: no
 * lock.
 */
#define VERIFIED_SLOTS 16
static uint8_t verified[VERIFIED_SLOTS][32];
static unsigned verified_next, verified_used;

static int
verify_cached(const uint8_t pub[32], const uint8_t *msg, size_t len, const uint8_t *sig,
              size_t sig_len)
{
	uint8_t digest[32];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, pub, 32) != 1 || EVP_DigestUpdate(md, sig, sig_len) != 1 ||
	    EVP_DigestUpdate(md, msg, len) != 1 || EVP_DigestFinal_ex(md, digest, NULL) != 1) {
		EVP_MD_CTX_free(md);
		return wa_crypto_verify(pub, msg, len, sig, sig_len);
	}
	EVP_MD_CTX_free(md);
	for (unsigned i = 0; i < verified_used; i++)
		if (memcmp(verified[i], digest, 32) == 0)
			return 0;
	int rc = wa_crypto_verify(pub, msg, len, sig, sig_len);
	if (rc == 0) {
		memcpy(verified[verified_next], digest, 32);
		verified_next = (verified_next + 1) % VERIFIED_SLOTS;
		if (verified_used < VERIFIED_SLOTS)
			verified_used++;
	}
	return rc;
}

int
wa_cert_verify(const uint8_t *chain, size_t len, const struct wa_cert_policy *policy,
               const uint8_t server_static[32], const char **why)
{
	Wa__CertChain *cc = NULL;
	Details *inter = NULL, *leaf = NULL;
	int rc;

	cc = wa__cert_chain__unpack(NULL, len, chain);
	if (cc == NULL) {
		rc = reject(why, "certificate chain does not parse");
		goto out;
	}
	const NoiseCert *ic = cc->intermediate, *lc = cc->leaf;
	if (ic == NULL) {
		rc = reject(why, "no intermediate certificate");
		goto out;
	}
	if (lc == NULL) {
		rc = reject(why, "no leaf certificate");
		goto out;
	}
	if (!ic->has_details || !ic->has_signature) {
		rc = reject(why, "intermediate certificate lacks details or signature");
		goto out;
	}
	if (!lc->has_details || !lc->has_signature) {
		rc = reject(why, "leaf certificate lacks details or signature");
		goto out;
	}
	if (ic->signature.len != WA_SIG_LEN) {
		rc = reject(why, "intermediate signature is not 64 bytes");
		goto out;
	}
	if (lc->signature.len != WA_SIG_LEN) {
		rc = reject(why, "leaf signature is not 64 bytes");
		goto out;
	}
	if (verify_cached(policy->root_pub, ic->details.data, ic->details.len, ic->signature.data,
	                  ic->signature.len) != 0) {
		rc = reject(why, "intermediate certificate not signed by the root key");
		goto out;
	}
	inter = details_unpack(&ic->details);
	if (inter == NULL) {
		rc = reject(why, "intermediate details do not parse");
		goto out;
	}
	if (inter->issuer_serial != 0) {
		rc = reject(why, "intermediate issuerSerial is not 0");
		goto out;
	}
	if (!inter->has_key || inter->key.len != WA_KEY_LEN) {
		rc = reject(why, "intermediate key is not 32 bytes");
		goto out;
	}
	if (verify_cached(inter->key.data, lc->details.data, lc->details.len, lc->signature.data,
	                  lc->signature.len) != 0) {
		rc = reject(why, "leaf certificate not signed by the intermediate key");
		goto out;
	}
	leaf = details_unpack(&lc->details);
	if (leaf == NULL) {
		rc = reject(why, "leaf details do not parse");
		goto out;
	}
	int w = window(inter, policy->now);
	if (w != 0) {
		rc = reject(why, w < 0 ? "intermediate certificate not yet valid"
		                       : "intermediate certificate expired");
		goto out;
	}
	w = window(leaf, policy->now);
	if (w != 0) {
		rc = reject(why,
		            w < 0 ? "leaf certificate not yet valid" : "leaf certificate expired");
		goto out;
	}
	if (leaf->issuer_serial != inter->serial) {
		rc = reject(why, "leaf issuerSerial does not match the intermediate serial");
		goto out;
	}
	if (!leaf->has_key || leaf->key.len != WA_KEY_LEN ||
	    memcmp(leaf->key.data, server_static, WA_KEY_LEN) != 0) {
		rc = reject(why, "leaf key is not the server's static key");
		goto out;
	}
	rc = 0;
out:
	details_free(leaf);
	details_free(inter);
	if (cc != NULL)
		wa__cert_chain__free_unpacked(cc, NULL);
	return rc;
}

static uint32_t
random_serial(void)
{
	uint32_t s;
	do {
		wa_random((uint8_t *)&s, sizeof(s));
		s &= 0x7fffffff;
	} while (s == 0);
	return s;
}

/* Encodes details and signs them; fills cert with pointers into *details_out and sig. */
static int
make_cert(NoiseCert *cert, uint8_t **details_out, uint8_t sig[WA_SIG_LEN], uint32_t serial,
          uint32_t issuer_serial, const uint8_t key[32], uint64_t not_before, uint64_t not_after,
          const uint8_t signer_priv[32])
{
	Details d = WA__CERT_CHAIN__NOISE_CERTIFICATE__DETAILS__INIT;
	d.has_serial = 1;
	d.serial = serial;
	d.has_issuer_serial = 1;
	d.issuer_serial = issuer_serial;
	d.has_key = 1;
	d.key.data = (uint8_t *)key;
	d.key.len = 32;
	d.has_not_before = 1;
	d.not_before = not_before;
	d.has_not_after = 1;
	d.not_after = not_after;

	size_t len = protobuf_c_message_get_packed_size(&d.base);
	uint8_t *buf = wg_malloc(len);
	protobuf_c_message_pack(&d.base, buf);
	*details_out = buf;
	if (wa_crypto_sign(sig, signer_priv, buf, len) != 0)
		return WG_ECRYPTO;
	cert->has_details = 1;
	cert->details.data = buf;
	cert->details.len = len;
	cert->has_signature = 1;
	cert->signature.data = sig;
	cert->signature.len = WA_SIG_LEN;
	return 0;
}

static uint64_t
clamp_time(int64_t t)
{
	return t < 0 ? 0 : (uint64_t)t;
}

int
wa_cert_issue(const uint8_t root_priv[32], const uint8_t server_static_pub[32], int64_t now,
              struct wg_buf *chain_out)
{
	struct wa_keypair ik;
	NoiseCert inter = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;
	NoiseCert leaf = WA__CERT_CHAIN__NOISE_CERTIFICATE__INIT;
	Wa__CertChain cc = WA__CERT_CHAIN__INIT;
	uint8_t isig[WA_SIG_LEN], lsig[WA_SIG_LEN];
	uint8_t *idet = NULL, *ldet = NULL;
	uint32_t iserial = random_serial();
	int rc;

	wa_crypto_keypair(&ik);
	rc = make_cert(&inter, &idet, isig, iserial, 0, ik.pub, clamp_time(now - 86400),
	               clamp_time(now + 365 * 86400), root_priv);
	if (rc == 0)
		rc = make_cert(&leaf, &ldet, lsig, random_serial(), iserial, server_static_pub,
		               clamp_time(now - 3600), clamp_time(now + 30 * 86400), ik.priv);
	if (rc == 0) {
		cc.intermediate = &inter;
		cc.leaf = &leaf;
		size_t len = wa__cert_chain__get_packed_size(&cc);
		wg_buf_reserve(chain_out, len);
		wa__cert_chain__pack(&cc, chain_out->data + chain_out->len);
		chain_out->len += len;
	}
	wg_wipe(&ik, sizeof(ik));
	free(idet);
	free(ldet);
	return rc;
}
