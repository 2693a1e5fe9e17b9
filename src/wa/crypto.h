/*
 * Cryptographic primitives for the WhatsApp layer: SHA-256, HMAC, HKDF and
 * AES-256-GCM (OpenSSL EVP); X25519 and the check of XEdDSA signatures
 * (libsodium: a login makes seven X25519 operations and a signature check,
 * which OpenSSL's per-call key objects made a third of its CPU); XEdDSA
 * signing (libsignal-protocol-c, whose signal_context is created here once
 * and shared with the Signal code).
 *
 * Keys are raw 32-byte Curve25519 values with no 0x05 type prefix; private keys
 * are clamped scalars, the form the reference clients store. Functions that
 * can fail return 0 or a negative WG_E* code (core/err.h).
 */
#ifndef WA_CRYPTO_H
#define WA_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <signal/signal_protocol_types.h>

#define WA_KEY_LEN 32
#define WA_SIG_LEN 64
#define WA_SHA256_LEN 32
#define WA_GCM_IV_LEN 12
#define WA_GCM_TAG_LEN 16

struct wa_keypair {
	uint8_t priv[WA_KEY_LEN];
	uint8_t pub[WA_KEY_LEN];
};

/*
 * Fills out with n bytes from OpenSSL's CSPRNG. Aborts the process if the
 * generator fails: without randomness no key or signature can be trusted, the
 * same reasoning as the out-of-memory policy in core/mem.h.
 */
void wa_random(uint8_t *out, size_t n);

/* Generates a fresh Curve25519 key pair; the private key is clamped. */
void wa_crypto_keypair(struct wa_keypair *kp);

/* Clamps a 32-byte Curve25519 scalar in place (RFC 7748 §5). */
void wa_crypto_clamp(uint8_t priv[WA_KEY_LEN]);

/* Derives the public key of a private key. Returns 0 or WG_ECRYPTO. */
int wa_crypto_pub_from_priv(uint8_t pub[WA_KEY_LEN], const uint8_t priv[WA_KEY_LEN]);

/*
 * X25519 Diffie-Hellman of our key pair (ours->pub must be the public key of
 * ours->priv) with a peer's public key. Returns 0, or WG_ECRYPTO when the
 * peer key is a low-order point (the shared secret would be all zeros).
 */
int wa_crypto_dh(uint8_t out[WA_KEY_LEN], const struct wa_keypair *ours,
                 const uint8_t pub[WA_KEY_LEN]);

void wa_crypto_sha256(uint8_t out[WA_SHA256_LEN], const void *data, size_t len);

void wa_crypto_hmac_sha256(uint8_t out[WA_SHA256_LEN], const uint8_t *key, size_t key_len,
                           const void *data, size_t len);

/*
 * HKDF-SHA256 (RFC 5869): extract with salt (an empty salt means 32 zero
 * bytes), then expand with info into out_len bytes. Returns 0, or WG_EINVAL
 * when out_len exceeds 255 * 32.
 */
int wa_crypto_hkdf(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                   const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len);

/*
 * AES-256-GCM with a 12-byte IV. Encrypt writes len + 16 bytes to out
 * (ciphertext, then the tag). Decrypt takes ciphertext||tag and writes
 * ct_len - 16 bytes; it returns WG_ETRUNC if ct_len < 16 and WG_ECRYPTO if the
 * tag does not authenticate (out then holds nothing usable and is wiped).
 * out may not overlap the input.
 */
int wa_crypto_gcm_encrypt(const uint8_t key[32], const uint8_t iv[WA_GCM_IV_LEN],
                          const uint8_t *aad, size_t aad_len, const uint8_t *plain, size_t len,
                          uint8_t *out);
int wa_crypto_gcm_decrypt(const uint8_t key[32], const uint8_t iv[WA_GCM_IV_LEN],
                          const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                          uint8_t *out);

/* XEdDSA signature (64 bytes) by a Curve25519 private key. Returns 0 or WG_ECRYPTO. */
int wa_crypto_sign(uint8_t sig[WA_SIG_LEN], const uint8_t priv[WA_KEY_LEN], const void *msg,
                   size_t len);

/*
 * Verifies an XEdDSA signature. Returns 0 if valid, WG_ECRYPTO if not (a
 * signature of the wrong length counts as invalid).
 */
int wa_crypto_verify(const uint8_t pub[WA_KEY_LEN], const void *msg, size_t len, const uint8_t *sig,
                     size_t sig_len);

/*
 * The process-wide libsignal context, with an OpenSSL crypto provider,
 * created on first use. Never NULL (creation failure aborts). It has no
 * locking functions: use it from one thread, like the rest of the daemon.
 */
signal_context *wa_crypto_signal_context(void);

#endif
