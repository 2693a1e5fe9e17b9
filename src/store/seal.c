/* Credentials sealed at rest: AES-256-GCM through OpenSSL's EVP (see seal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/enc.h"
#include "core/err.h"
#include "core/mem.h"
#include "store/seal.h"

#define IV_LEN 12
#define TAG_LEN 16
#define PREFIX_LEN (sizeof(SEAL_PREFIX) - 1)

static struct {
	bool have_cur, have_other;
	uint8_t cur[SEAL_KEY_LEN], other[SEAL_KEY_LEN];
	char cur_id[SEAL_KID_LEN + 1], other_id[SEAL_KID_LEN + 1];
} keys;

void
seal_key_id(const uint8_t key[SEAL_KEY_LEN], char out[SEAL_KID_LEN + 1])
{
	static const char label[] = "wagate: the id of a credentials key";
	uint8_t d[32];
	unsigned len = 0;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	if (m == NULL || EVP_DigestInit_ex(m, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(m, label, sizeof(label) - 1) != 1 ||
	    EVP_DigestUpdate(m, key, SEAL_KEY_LEN) != 1 || EVP_DigestFinal_ex(m, d, &len) != 1)
		abort(); /* SHA-256 is always there; failing here is running out of memory */
	EVP_MD_CTX_free(m);
	wg_hex_encode(out, d, SEAL_KID_LEN / 2);
}

void
seal_set_keys(const uint8_t *cur, const uint8_t *other)
{
	wg_wipe(&keys, sizeof(keys));
	if (cur != NULL) {
		memcpy(keys.cur, cur, SEAL_KEY_LEN);
		seal_key_id(cur, keys.cur_id);
		keys.have_cur = true;
	}
	if (other != NULL) {
		memcpy(keys.other, other, SEAL_KEY_LEN);
		seal_key_id(other, keys.other_id);
		keys.have_other = true;
	}
}

bool
seal_enabled(void)
{
	return keys.have_cur;
}

const char *
seal_current_id(void)
{
	return keys.cur_id;
}

bool
seal_is_sealed(const char *text)
{
	return text != NULL && strncmp(text, SEAL_PREFIX, PREFIX_LEN) == 0;
}

void
seal_id_of(const char *text, char out[SEAL_KID_LEN + 1])
{
	out[0] = '\0';
	if (!seal_is_sealed(text))
		return;
	const char *k = text + PREFIX_LEN;
	for (size_t i = 0; i < SEAL_KID_LEN; i++) {
		char c = k[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return;
	}
	if (k[SEAL_KID_LEN] != ':')
		return;
	memcpy(out, k, SEAL_KID_LEN);
	out[SEAL_KID_LEN] = '\0';
}

/* "wgs1:<kid>:<row id>": what the tag also covers. */
static int
aad(char *out, size_t cap, const char *kid, const char *id)
{
	int n = snprintf(out, cap, "%s%s:%s", SEAL_PREFIX, kid, id);
	return n > 0 && (size_t)n < cap ? n : -1;
}

char *
seal_text_with(const uint8_t key[SEAL_KEY_LEN], const char *id, const char *plain)
{
	char kid[SEAL_KID_LEN + 1], ad[128];
	seal_key_id(key, kid);
	int adn = aad(ad, sizeof(ad), kid, id);
	size_t n = strlen(plain);
	uint8_t *blob = wg_malloc(IV_LEN + n + TAG_LEN);
	int len = 0, fin = 0;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	bool ok = adn > 0 && c != NULL && n <= (size_t)INT32_MAX && RAND_bytes(blob, IV_LEN) == 1 &&
	          EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, blob) == 1 &&
	          EVP_EncryptUpdate(c, NULL, &len, (const uint8_t *)ad, adn) == 1 &&
	          EVP_EncryptUpdate(c, blob + IV_LEN, &len, (const uint8_t *)plain, (int)n) == 1 &&
	          EVP_EncryptFinal_ex(c, blob + IV_LEN + len, &fin) == 1 &&
	          EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, blob + IV_LEN + n) == 1;
	EVP_CIPHER_CTX_free(c);
	if (!ok)
		abort(); /* AES-GCM and randomness are always there: out of memory */
	char *b64 = wg_b64_encode(blob, IV_LEN + n + TAG_LEN);
	wg_wipe(blob, IV_LEN + n + TAG_LEN);
	free(blob);
	size_t outlen = PREFIX_LEN + SEAL_KID_LEN + 1 + strlen(b64) + 1;
	char *out = wg_malloc(outlen);
	snprintf(out, outlen, "%s%s:%s", SEAL_PREFIX, kid, b64);
	free(b64);
	return out;
}

char *
seal_text(const char *id, const char *plain)
{
	return keys.have_cur ? seal_text_with(keys.cur, id, plain) : NULL;
}

int
seal_open(const uint8_t *key, const char *id, const char *sealed, char **plain, char *why,
          size_t whylen)
{
	*plain = NULL;
	char kid[SEAL_KID_LEN + 1];
	seal_id_of(sealed, kid);
	if (kid[0] == '\0') {
		snprintf(why, whylen, "the sealed credentials are damaged (no key id)");
		return WG_EINVAL;
	}
	const uint8_t *k = NULL;
	char want[SEAL_KID_LEN + 1];
	if (key != NULL) {
		seal_key_id(key, want);
		if (strcmp(want, kid) == 0)
			k = key;
	} else if (keys.have_cur && strcmp(keys.cur_id, kid) == 0) {
		k = keys.cur;
	} else if (keys.have_other && strcmp(keys.other_id, kid) == 0) {
		k = keys.other;
	}
	if (k == NULL) {
		snprintf(why, whylen,
		         "the credentials are sealed under key %s, and this server has %s: set "
		         "WAGATE_SECRET_KEY (or its key file) to the key that sealed them",
		         kid, key ? want : keys.have_cur ? keys.cur_id : "no key");
		return WG_ENOTFOUND;
	}
	const char *b64 = sealed + PREFIX_LEN + SEAL_KID_LEN + 1;
	size_t blen = strlen(b64);
	uint8_t *blob = wg_malloc(blen / 4 * 3 + 4);
	long n = wg_b64_decode(blob, b64, blen);
	char ad[128];
	int adn = aad(ad, sizeof(ad), kid, id);
	if (n < IV_LEN + TAG_LEN || adn < 0) {
		free(blob);
		snprintf(why, whylen, "the sealed credentials are damaged (not base64, or too short)");
		return WG_EINVAL;
	}
	size_t ctlen = (size_t)n - IV_LEN - TAG_LEN;
	char *out = wg_malloc(ctlen + 1);
	int len = 0, fin = 0;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	bool ok = c != NULL && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k, blob) == 1 &&
	          EVP_DecryptUpdate(c, NULL, &len, (const uint8_t *)ad, adn) == 1 &&
	          EVP_DecryptUpdate(c, (uint8_t *)out, &len, blob + IV_LEN, (int)ctlen) == 1 &&
	          EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, blob + IV_LEN + ctlen) == 1 &&
	          EVP_DecryptFinal_ex(c, (uint8_t *)out + len, &fin) == 1;
	EVP_CIPHER_CTX_free(c);
	wg_wipe(blob, (size_t)n);
	free(blob);
	if (!ok || memchr(out, '\0', ctlen) != NULL) {
		wg_wipe(out, ctlen);
		free(out);
		snprintf(why, whylen,
		         "the sealed credentials do not open: damaged, or sealed for another row");
		return WG_EINVAL;
	}
	out[ctlen] = '\0';
	*plain = out;
	return 0;
}
