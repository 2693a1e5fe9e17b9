/*
 * libFuzzer target: the Noise handshake messages from a hostile peer. The
 * first byte picks the side: a client reading a ServerHello (the protobuf,
 * the DH steps, the encrypted static key and certificate chain), or a server
 * (the mock) reading a ClientHello and then a ClientFinish.
 */
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "wa/cert.h"
#include "wa/crypto.h"
#include "wa/noise.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static struct wa_keypair k;
	static int have;
	if (!have) {
		wa_crypto_keypair(&k);
		have = 1;
	}
	struct wa_cert_policy policy;
	memset(&policy, 0, sizeof(policy));
	memcpy(policy.root_pub, k.pub, 32);
	policy.now = 1700000000;
	struct wg_buf out = {0};
	if ((data[0] & 1) == 0) {
		struct wa_noise *ns = wa_noise_new(WA_NOISE_CLIENT, 3);
		if (wa_noise_client_hello(ns, &out) == 0) {
			out.len = 0;
			(void)wa_noise_client_finish(ns, data + 1, size - 1, k.priv, k.pub, &policy,
						     (const uint8_t *)"x", 1, &out);
		}
		wa_noise_free(ns);
	} else {
		/* The second byte cuts the rest in two: a ClientHello, then a ClientFinish. */
		if (size < 2)
			return 0;
		size_t rest = size - 2, hl = data[1] % (rest + 1);
		struct wa_noise *ns = wa_noise_new(WA_NOISE_SERVER, 3);
		if (wa_noise_server_hello(ns, data + 2, hl, k.priv, k.pub, (const uint8_t *)"chain", 5,
					  &out) == 0) {
			uint8_t client_static[32];
			struct wg_buf payload = {0};
			(void)wa_noise_server_finish(ns, data + 2 + hl, rest - hl, client_static, &payload);
			wg_buf_free(&payload);
		}
		wa_noise_free(ns);
	}
	wg_buf_free(&out);
	return 0;
}
