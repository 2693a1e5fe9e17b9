/*
 * libFuzzer target: the pairing's device identities (protobufs with an HMAC
 * and two signatures). The first byte picks the side: the companion (wagate)
 * reading a phone's pair-success content, or the phone (the mock) reading the
 * companion's reply. The keys are fixed, so the seeds (fuzz/corpus/adv, made
 * by the phone side with them) pass every check and mutations explore each.
 */
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "wa/adv.h"
#include "wa/crypto.h"

static uint8_t account_priv[32], account_pub[32], identity_priv[32], identity_pub[32], secret[32];
static struct wg_buf issued;

static void
setup(void)
{
	memset(account_priv, 3, 32);
	memset(identity_priv, 4, 32);
	memset(secret, 5, 32);
	wa_crypto_clamp(account_priv);
	wa_crypto_clamp(identity_priv);
	wa_crypto_pub_from_priv(account_pub, account_priv);
	wa_crypto_pub_from_priv(identity_pub, identity_priv);
	wa_adv_phone_sign(account_priv, account_pub, identity_pub, secret, 7, 1764460800, &issued);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (issued.len == 0)
		setup();
	if (size < 1)
		return 0;
	const char *why = NULL;
	uint32_t key_index = 0;
	if ((data[0] & 1) == 0) {
		struct wg_buf account = {0}, reply = {0};
		(void)wa_adv_companion_accept(data + 1, size - 1, secret, identity_priv, identity_pub,
					      &account, &reply, &key_index, &why);
		wg_buf_free(&account);
		wg_buf_free(&reply);
	} else {
		(void)wa_adv_phone_check_reply(data + 1, size - 1, issued.data, issued.len, identity_pub,
					       account_pub, &key_index, &why);
	}
	return 0;
}
