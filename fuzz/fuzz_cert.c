/*
 * libFuzzer target: the server's certificate chain (a protobuf CertChain with
 * two signed certificates). The key pairs are fixed so a seed made with them
 * (fuzz/corpus/cert) verifies, and mutations explore every check after it.
 */
#include <stdint.h>
#include <string.h>

#include "wa/cert.h"
#include "wa/crypto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t root_pub[32], server_pub[32];
	static int have;
	if (!have) {
		uint8_t root_priv[32], server_priv[32];
		memset(root_priv, 1, 32);
		memset(server_priv, 2, 32);
		wa_crypto_clamp(root_priv);
		wa_crypto_clamp(server_priv);
		wa_crypto_pub_from_priv(root_pub, root_priv);
		wa_crypto_pub_from_priv(server_pub, server_priv);
		have = 1;
	}
	struct wa_cert_policy policy;
	memcpy(policy.root_pub, root_pub, 32);
	policy.now = 1764460800; /* 2025-11-30: inside the seed's validity */
	const char *why = NULL;
	(void)wa_cert_verify(data, size, &policy, server_pub, &why);
	return 0;
}
