#include "wa/adv.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "proto/wa.pb-c.h"
#include "wa/crypto.h"

enum { PFX_ACCOUNT = 0x00, PFX_DEVICE = 0x01, PFX_HOSTED_ACCOUNT = 0x05, PFX_HOSTED_DEVICE = 0x06 };

/* prefix(2) || a || b || c, signed or verified as one message. */
static uint8_t *
concat(uint8_t pfx, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
       const uint8_t *c, size_t clen, size_t *len)
{
	*len = 2 + alen + blen + clen;
	uint8_t *m = wg_malloc(*len);
	m[0] = 0x06;
	m[1] = pfx;
	/* An empty protobuf field has no data pointer: memcpy must not see it (found by fuzz_adv). */
	if (alen)
		memcpy(m + 2, a, alen);
	if (blen)
		memcpy(m + 2 + alen, b, blen);
	if (clen)
		memcpy(m + 2 + alen + blen, c, clen);
	return m;
}

int
wa_adv_phone_sign(const uint8_t account_priv[32], const uint8_t account_pub[32],
		  const uint8_t companion_identity_pub[32], const uint8_t adv_secret[32],
		  uint32_t key_index, uint64_t timestamp, struct wg_buf *out)
{
	Wa__ADVDeviceIdentity id = WA__ADVDEVICE_IDENTITY__INIT;
	uint32_t raw_id;
	wa_random((uint8_t *)&raw_id, sizeof(raw_id));
	id.has_raw_id = id.has_timestamp = id.has_key_index = 1;
	id.raw_id = raw_id;
	id.timestamp = timestamp;
	id.key_index = key_index;
	size_t dlen = wa__advdevice_identity__get_packed_size(&id);
	uint8_t *details = wg_malloc(dlen);
	wa__advdevice_identity__pack(&id, details);

	size_t mlen;
	uint8_t *msg = concat(PFX_ACCOUNT, details, dlen, companion_identity_pub, 32, NULL, 0, &mlen);
	uint8_t sig[64];
	int r = wa_crypto_sign(sig, account_priv, msg, mlen);
	free(msg);
	if (r) {
		free(details);
		return r;
	}
	Wa__ADVSignedDeviceIdentity sd = WA__ADVSIGNED_DEVICE_IDENTITY__INIT;
	sd.has_details = sd.has_account_signature_key = sd.has_account_signature = 1;
	sd.details = (ProtobufCBinaryData){dlen, details};
	sd.account_signature_key = (ProtobufCBinaryData){32, (uint8_t *)account_pub};
	sd.account_signature = (ProtobufCBinaryData){64, sig};
	size_t slen = wa__advsigned_device_identity__get_packed_size(&sd);
	uint8_t *signed_ = wg_malloc(slen);
	wa__advsigned_device_identity__pack(&sd, signed_);

	uint8_t mac[32];
	wa_crypto_hmac_sha256(mac, adv_secret, 32, signed_, slen);
	Wa__ADVSignedDeviceIdentityHMAC h = WA__ADVSIGNED_DEVICE_IDENTITY_HMAC__INIT;
	h.has_details = h.has_hmac = 1;
	h.details = (ProtobufCBinaryData){slen, signed_};
	h.hmac = (ProtobufCBinaryData){32, mac};
	size_t hlen = wa__advsigned_device_identity_hmac__get_packed_size(&h);
	wg_buf_reserve(out, hlen);
	wa__advsigned_device_identity_hmac__pack(&h, out->data + out->len);
	out->len += hlen;
	free(signed_);
	free(details);
	return 0;
}

/* Reads keyIndex and whether the device is hosted from encoded ADVDeviceIdentity details. */
static int
inner_details(const ProtobufCBinaryData *d, uint32_t *key_index, int *hosted)
{
	Wa__ADVDeviceIdentity *id = wa__advdevice_identity__unpack(NULL, d->len, d->data);
	if (id == NULL)
		return WG_EINVAL;
	*key_index = id->key_index;
	*hosted = id->has_device_type && id->device_type == WA__ADVENCRYPTION_TYPE__HOSTED;
	wa__advdevice_identity__free_unpacked(id, NULL);
	return 0;
}

/* The inner details the phone signed, from its own ADVSignedDeviceIdentityHMAC. */
static Wa__ADVSignedDeviceIdentity *
issued_identity(const uint8_t *issued, size_t len)
{
	Wa__ADVSignedDeviceIdentityHMAC *h = wa__advsigned_device_identity_hmac__unpack(NULL, len, issued);
	if (h == NULL)
		return NULL;
	Wa__ADVSignedDeviceIdentity *sd = h->has_details ? wa__advsigned_device_identity__unpack(
								   NULL, h->details.len, h->details.data)
							 : NULL;
	wa__advsigned_device_identity_hmac__free_unpacked(h, NULL);
	return sd;
}

int
wa_adv_phone_check_reply(const uint8_t *reply, size_t len, const uint8_t *issued,
			 size_t issued_len, const uint8_t companion_identity_pub[32],
			 const uint8_t account_pub[32], uint32_t *key_index, const char **why)
{
	const char *dummy;
	if (why == NULL)
		why = &dummy;
	Wa__ADVSignedDeviceIdentity *mine = issued_identity(issued, issued_len);
	if (mine == NULL) {
		*why = "the issued identity does not parse";
		return WG_EINVAL;
	}
	Wa__ADVSignedDeviceIdentity *sd = wa__advsigned_device_identity__unpack(NULL, len, reply);
	if (sd == NULL) {
		wa__advsigned_device_identity__free_unpacked(mine, NULL);
		*why = "reply is not an ADVSignedDeviceIdentity";
		return WG_EINVAL;
	}
	int r = WG_EINVAL, hosted = 0;
	if (!sd->has_details || !sd->has_device_signature || sd->device_signature.len != 64) {
		*why = "reply lacks details or a 64-byte device signature";
	} else if (sd->details.len != mine->details.len ||
		   memcmp(sd->details.data, mine->details.data, mine->details.len) != 0) {
		*why = "reply details are not the ones the phone signed";
		r = WG_ECRYPTO;
	} else if (inner_details(&sd->details, key_index, &hosted)) {
		*why = "reply details do not parse";
	} else {
		size_t mlen;
		uint8_t *msg = concat(hosted ? PFX_HOSTED_DEVICE : PFX_DEVICE, sd->details.data,
				      sd->details.len, companion_identity_pub, 32, account_pub, 32,
				      &mlen);
		r = wa_crypto_verify(companion_identity_pub, msg, mlen, sd->device_signature.data,
				     sd->device_signature.len);
		free(msg);
		if (r)
			*why = "device signature does not verify";
	}
	wa__advsigned_device_identity__free_unpacked(sd, NULL);
	wa__advsigned_device_identity__free_unpacked(mine, NULL);
	return r;
}

static void
pack_signed(const Wa__ADVSignedDeviceIdentity *sd, struct wg_buf *out)
{
	size_t n = wa__advsigned_device_identity__get_packed_size(sd);
	wg_buf_reserve(out, n);
	wa__advsigned_device_identity__pack(sd, out->data + out->len);
	out->len += n;
}

int
wa_adv_companion_accept(const uint8_t *msg, size_t len, const uint8_t adv_secret[32],
			const uint8_t identity_priv[32], const uint8_t identity_pub[32],
			struct wg_buf *account_out, struct wg_buf *reply_out, uint32_t *key_index,
			const char **why)
{
	const char *dummy;
	if (why == NULL)
		why = &dummy;
	Wa__ADVSignedDeviceIdentityHMAC *h =
		wa__advsigned_device_identity_hmac__unpack(NULL, len, msg);
	if (h == NULL || !h->has_details || !h->has_hmac || h->hmac.len != 32) {
		*why = "device-identity is not an ADVSignedDeviceIdentityHMAC";
		if (h)
			wa__advsigned_device_identity_hmac__free_unpacked(h, NULL);
		return WG_EINVAL;
	}
	int hosted_account = h->has_account_type && h->account_type == WA__ADVENCRYPTION_TYPE__HOSTED;
	uint8_t mac[32];
	if (hosted_account) {
		size_t mlen;
		uint8_t *m = concat(PFX_HOSTED_ACCOUNT, h->details.data, h->details.len, NULL, 0,
				    NULL, 0, &mlen);
		wa_crypto_hmac_sha256(mac, adv_secret, 32, m, mlen);
		free(m);
	} else {
		wa_crypto_hmac_sha256(mac, adv_secret, 32, h->details.data, h->details.len);
	}
	if (CRYPTO_memcmp(mac, h->hmac.data, 32) != 0) {
		*why = "HMAC mismatch: the pairing was not made with our QR code";
		wa__advsigned_device_identity_hmac__free_unpacked(h, NULL);
		return WG_ECRYPTO;
	}
	Wa__ADVSignedDeviceIdentity *sd =
		wa__advsigned_device_identity__unpack(NULL, h->details.len, h->details.data);
	wa__advsigned_device_identity_hmac__free_unpacked(h, NULL);
	if (sd == NULL || !sd->has_details || sd->account_signature_key.len != 32 ||
	    sd->account_signature.len != 64) {
		*why = "signed device identity lacks details, a 32-byte key or a 64-byte signature";
		if (sd)
			wa__advsigned_device_identity__free_unpacked(sd, NULL);
		return WG_EINVAL;
	}
	int hosted = 0, r;
	if (inner_details(&sd->details, key_index, &hosted)) {
		*why = "device identity details do not parse";
		wa__advsigned_device_identity__free_unpacked(sd, NULL);
		return WG_EINVAL;
	}
	size_t mlen;
	uint8_t *m = concat(hosted ? PFX_HOSTED_ACCOUNT : PFX_ACCOUNT, sd->details.data,
			    sd->details.len, identity_pub, 32, NULL, 0, &mlen);
	r = wa_crypto_verify(sd->account_signature_key.data, m, mlen, sd->account_signature.data,
			     64);
	free(m);
	if (r) {
		*why = "account signature does not verify";
		wa__advsigned_device_identity__free_unpacked(sd, NULL);
		return WG_ECRYPTO;
	}
	m = concat(hosted ? PFX_HOSTED_DEVICE : PFX_DEVICE, sd->details.data, sd->details.len,
		   identity_pub, 32, sd->account_signature_key.data, 32, &mlen);
	uint8_t devsig[64];
	r = wa_crypto_sign(devsig, identity_priv, m, mlen);
	free(m);
	if (r) {
		*why = "cannot sign the device identity";
		wa__advsigned_device_identity__free_unpacked(sd, NULL);
		return r;
	}
	/* The stored account keeps the phone's key; the reply leaves it out. */
	Wa__ADVSignedDeviceIdentity full = *sd;
	full.has_device_signature = 1;
	full.device_signature = (ProtobufCBinaryData){64, devsig};
	pack_signed(&full, account_out);
	full.has_account_signature_key = 0;
	full.account_signature_key = (ProtobufCBinaryData){0, NULL};
	pack_signed(&full, reply_out);
	wa__advsigned_device_identity__free_unpacked(sd, NULL);
	return 0;
}
