/*
 * The pairing QR code's text: a ref from the server's pair-device stanza and the
 * companion's public keys, which the phone needs to vouch for it. The advSecret
 * travels only here, so only the phone that scanned the code can pair.
 */
#ifndef WA_QR_H
#define WA_QR_H

#include <stddef.h>
#include <stdint.h>

#define WA_QR_PREFIX "https://wa.me/settings/linked_devices#"

struct wa_qr {
	char ref[256];
	uint8_t noise_pub[32];
	uint8_t identity_pub[32];
	uint8_t adv_secret[32];
	char client_type[8]; /* "" in the old form */
};

/*
 * Writes "PREFIX ref,noise,identity,adv,clientType" (standard base64), the form
 * current clients show; with client_type NULL, the old "ref,noise,identity,adv".
 * Returns the length, or WG_ELIMIT if out is too small, WG_EINVAL for a bad ref.
 */
int wa_qr_format(const char *ref, const uint8_t noise_pub[32], const uint8_t identity_pub[32],
		 const uint8_t adv_secret[32], const char *client_type, char *out, size_t outlen);

/* Parses either form. Returns 0 or WG_EINVAL (wrong field count, bad base64, wrong key sizes). */
int wa_qr_parse(const char *s, struct wa_qr *out);

#endif
