#include "wa/qr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/enc.h"
#include "core/err.h"

int
wa_qr_format(const char *ref, const uint8_t noise_pub[32], const uint8_t identity_pub[32],
	     const uint8_t adv_secret[32], const char *client_type, char *out, size_t outlen)
{
	/*
	 * A ref is opaque server text; a comma would break the format, and one
	 * that starts like the prefix would read back without it.
	 */
	if (ref[0] == '\0' || strchr(ref, ',') != NULL || strlen(ref) >= sizeof(((struct wa_qr *)0)->ref) ||
	    strncmp(ref, WA_QR_PREFIX, strlen(WA_QR_PREFIX)) == 0)
		return WG_EINVAL;
	char *n = wg_b64_encode(noise_pub, 32), *i = wg_b64_encode(identity_pub, 32),
	     *a = wg_b64_encode(adv_secret, 32);
	int len;
	if (client_type != NULL)
		len = snprintf(out, outlen, "%s%s,%s,%s,%s,%s", WA_QR_PREFIX, ref, n, i, a,
			       client_type);
	else
		len = snprintf(out, outlen, "%s,%s,%s,%s", ref, n, i, a);
	free(n);
	free(i);
	free(a);
	if (len < 0 || (size_t)len >= outlen)
		return WG_ELIMIT;
	return len;
}

static int
key_field(const char *s, size_t len, uint8_t out[32])
{
	uint8_t tmp[64];
	if (len > 60)
		return WG_EINVAL;
	long n = wg_b64_decode(tmp, s, len);
	if (n != 32)
		return WG_EINVAL;
	memcpy(out, tmp, 32);
	return 0;
}

int
wa_qr_parse(const char *s, struct wa_qr *out)
{
	size_t plen = strlen(WA_QR_PREFIX);
	if (strncmp(s, WA_QR_PREFIX, plen) == 0)
		s += plen;
	const char *f[6];
	size_t flen[6];
	int nf = 0;
	const char *p = s;
	for (;;) {
		const char *c = strchr(p, ',');
		if (nf == 6)
			return WG_EINVAL;
		f[nf] = p;
		flen[nf] = c ? (size_t)(c - p) : strlen(p);
		nf++;
		if (c == NULL)
			break;
		p = c + 1;
	}
	if (nf != 4 && nf != 5)
		return WG_EINVAL;
	memset(out, 0, sizeof(*out));
	/* The prefix once, not twice: a ref is a server's token, never the link itself. */
	if (flen[0] == 0 || flen[0] >= sizeof(out->ref) ||
	    strncmp(f[0], WA_QR_PREFIX, plen) == 0)
		return WG_EINVAL;
	memcpy(out->ref, f[0], flen[0]);
	if (key_field(f[1], flen[1], out->noise_pub) || key_field(f[2], flen[2], out->identity_pub) ||
	    key_field(f[3], flen[3], out->adv_secret))
		return WG_EINVAL;
	if (nf == 5) {
		if (flen[4] == 0 || flen[4] >= sizeof(out->client_type))
			return WG_EINVAL;
		memcpy(out->client_type, f[4], flen[4]);
	}
	return 0;
}
