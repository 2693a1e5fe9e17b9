/*
 * The Noise server certificate chain (docs/wa-protocol.md §2): a CertChain of
 * an intermediate certificate signed by a root key and a leaf certificate,
 * signed by the intermediate, that names the server's Noise static key.
 * Signatures are XEdDSA over the encoded Details bytes.
 */
#ifndef WA_CERT_H
#define WA_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct wa_cert_policy {
	uint8_t root_pub[32]; /* the key that must have signed the intermediate */
	int64_t now;          /* Unix seconds, compared with notBefore..notAfter */
};

/*
 * Full verification, as whatsmeow does it: both certificates with details and
 * 64-byte signatures; the intermediate signed by the root, with issuerSerial 0
 * and a 32-byte key; the leaf signed by the intermediate key, with
 * issuerSerial equal to the intermediate's serial and key equal to
 * server_static; now within both validity windows (bounds inclusive).
 * Returns 0 or WG_ECERT; *why (if why is not NULL) then names the failed
 * check with a static string.
 */
int wa_cert_verify(const uint8_t *chain, size_t len, const struct wa_cert_policy *policy,
                   const uint8_t server_static[32], const char **why);

/* WhatsApp's root public key. */
const uint8_t *wa_cert_whatsapp_root(void);

/*
 * The root key to trust: WAGATE_WA_ROOT_PUBKEY (exactly 64 hex digits) if it
 * is set, so a client can be pointed at the mock server, else WhatsApp's.
 * Returns 0, or WG_EINVAL when the variable is malformed (out is untouched).
 */
int wa_cert_root_from_env(uint8_t out[32]);

/*
 * Issues a chain for a test server whose Noise static key is
 * server_static_pub, rooted in root_priv. A fresh intermediate key pair is
 * made for every chain and forgotten afterwards. Serials are random, non-zero
 * 31-bit values (clients must not assume fixed ones); the intermediate's
 * issuerSerial is 0, the root's. Validity: intermediate now-1 day .. now+365
 * days, leaf now-1 hour .. now+30 days; back-dating absorbs clock skew between
 * a client and the server, so issue a new chain per connection or at least
 * daily. Appends the encoded CertChain to chain_out; returns 0 or WG_ECRYPTO.
 */
int wa_cert_issue(const uint8_t root_priv[32], const uint8_t server_static_pub[32], int64_t now,
                  struct wg_buf *chain_out);

#endif
