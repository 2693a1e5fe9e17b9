/*
 * libFuzzer target: the text of a QR code (what `wagate mock`'s /scan and the
 * phone side read): what parses must format back to text that parses the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/qr.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	struct wa_qr q, again;
	char back[1024];
	if (wa_qr_parse(s, &q) == 0 &&
	    wa_qr_format(q.ref, q.noise_pub, q.identity_pub, q.adv_secret,
			 q.client_type[0] ? q.client_type : NULL, back, sizeof(back)) >= 0) {
		if (wa_qr_parse(back, &again) != 0 || strcmp(q.ref, again.ref) != 0 ||
		    memcmp(q.noise_pub, again.noise_pub, 32) != 0 ||
		    memcmp(q.identity_pub, again.identity_pub, 32) != 0 ||
		    memcmp(q.adv_secret, again.adv_secret, 32) != 0 ||
		    strcmp(q.client_type, again.client_type) != 0)
			abort();
	}
	free(s);
	return 0;
}
