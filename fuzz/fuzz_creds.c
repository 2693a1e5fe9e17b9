/*
 * libFuzzer target: the credentials blob, as a row's auth_state written by
 * someone else. What parses must write back and parse again to the same blob.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/creds.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wa_creds c, d;
	char why[256];
	memset(&c, 0, sizeof(c));
	if (wa_creds_from_blob((const char *)data, size, &c, why, sizeof(why)) != 0)
		return 0;
	char *b1 = wa_creds_to_blob(&c);
	memset(&d, 0, sizeof(d));
	if (wa_creds_from_blob(b1, strlen(b1), &d, why, sizeof(why)) != 0)
		abort(); /* we wrote a blob we refuse */
	char *b2 = wa_creds_to_blob(&d);
	if (strcmp(b1, b2) != 0)
		abort(); /* not stable */
	free(b1);
	free(b2);
	wa_creds_free(&c);
	wa_creds_free(&d);
	return 0;
}
