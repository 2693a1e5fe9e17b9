/*
 * Device identity vouching ("ADV"): at pairing the phone signs the companion's
 * identity key with its account key and MACs the result with the advSecret from
 * the QR code; the companion checks both, countersigns, and sends that back.
 * Both sides live here: the companion side for wagate's sessions, the phone side
 * for the mock. Signatures are XEdDSA with the prefixes 06 00 (account) and
 * 06 01 (device), or 06 05 / 06 06 for hosted accounts.
 */
#ifndef WA_ADV_H
#define WA_ADV_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/*
 * Phone side: appends the pair-success device-identity content (an encoded
 * ADVSignedDeviceIdentityHMAC) vouching for companion_identity_pub.
 */
int wa_adv_phone_sign(const uint8_t account_priv[32], const uint8_t account_pub[32],
		      const uint8_t companion_identity_pub[32], const uint8_t adv_secret[32],
		      uint32_t key_index, uint64_t timestamp, struct wg_buf *out);

/*
 * Phone side: checks the companion's pair-device-sign device-identity content
 * (an ADVSignedDeviceIdentity without the account key) against what the phone
 * issued (the wa_adv_phone_sign output): the details must be exactly the ones
 * the phone signed, and the device signature must verify with
 * companion_identity_pub over them. Returns 0 and *key_index, or WG_EINVAL /
 * WG_ECRYPTO with *why set.
 */
int wa_adv_phone_check_reply(const uint8_t *reply, size_t len, const uint8_t *issued,
			     size_t issued_len, const uint8_t companion_identity_pub[32],
			     const uint8_t account_pub[32], uint32_t *key_index, const char **why);

/*
 * Companion side: verifies the pair-success device-identity (HMAC with the
 * advSecret, then the account signature over our identity key), signs it with
 * our identity key, and appends to account_out the full ADVSignedDeviceIdentity
 * (to persist as the credentials' account) and to reply_out the same without
 * the account key (the pair-device-sign content). Returns 0, or WG_EINVAL /
 * WG_ECRYPTO with *why naming the failed check.
 */
int wa_adv_companion_accept(const uint8_t *msg, size_t len, const uint8_t adv_secret[32],
			    const uint8_t identity_priv[32], const uint8_t identity_pub[32],
			    struct wg_buf *account_out, struct wg_buf *reply_out,
			    uint32_t *key_index, const char **why);

#endif
