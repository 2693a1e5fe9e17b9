/*
 * libFuzzer target: the credentials blob, as a row's auth_state written by
 * someone else, plain or sealed (store/seal.h). What parses must write back
 * and parse again to the same blob, and seal and open back to itself; a
 * sealed value that opens goes through the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/seal.h"
#include "wa/creds.h"

#define ROW "00000000-0000-4000-8000-000000000001"

static void plain(const uint8_t *data, size_t size);

/* A sealed value (the key is fixed, so the seeds' ids match): it must never crash the opener. */
static void
sealed(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	char *p = NULL, why[256];
	if (seal_open(NULL, ROW, text, &p, why, sizeof(why)) == 0) {
		plain((const uint8_t *)p, strlen(p));
		free(p);
	}
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[SEAL_KEY_LEN] = {42};
	if (!seal_enabled())
		seal_set_keys(key, NULL);
	if (size >= 5 && memcmp(data, SEAL_PREFIX, 5) == 0)
		sealed(data, size);
	else
		plain(data, size);
	return 0;
}

static void
plain(const uint8_t *data, size_t size)
{
	struct wa_creds c, d;
	char why[256];
	memset(&c, 0, sizeof(c));
	if (wa_creds_from_blob((const char *)data, size, &c, why, sizeof(why)) != 0)
		return;
	char *b1 = wa_creds_to_blob(&c);
	/* Sealed and opened, it is the same blob. */
	char *s = seal_text(ROW, b1), *o = NULL;
	if (s == NULL || seal_open(NULL, ROW, s, &o, why, sizeof(why)) != 0 || strcmp(o, b1) != 0)
		abort();
	free(s);
	free(o);
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
}
