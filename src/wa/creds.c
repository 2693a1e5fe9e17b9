#include "wa/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/enc.h"
#include "core/err.h"
#include "core/mem.h"

/* Largest blob we read: 812 pre-keys at ~100 bytes each, plus the rest. */
#define CREDS_MAX_BLOB (256 * 1024)

void
wa_creds_generate(struct wa_creds *c)
{
	memset(c, 0, sizeof(*c));
	wa_crypto_keypair(&c->noise);
	wa_crypto_keypair(&c->identity);
	wa_crypto_keypair(&c->signed_prekey);
	c->signed_prekey_id = 1;
	uint8_t msg[33] = {0x05};
	memcpy(msg + 1, c->signed_prekey.pub, 32);
	/* Signing with a fresh valid key cannot fail short of a broken RNG. */
	if (wa_crypto_sign(c->signed_prekey_sig, c->identity.priv, msg, sizeof(msg)) != 0)
		abort();
	uint16_t reg;
	wa_random((uint8_t *)&reg, sizeof(reg));
	c->registration_id = reg & 0x3FFF;
	wa_random(c->adv_secret, sizeof(c->adv_secret));
	c->next_prekey_id = 1;
}

int
wa_creds_paired(const struct wa_creds *c)
{
	return c->me_jid != NULL && c->account != NULL;
}

int
wa_creds_me(const struct wa_creds *c, uint64_t *user, uint32_t *device)
{
	if (c->me_jid == NULL)
		return WG_EINVAL;
	uint64_t u = 0;
	uint32_t d = 0;
	const char *p = c->me_jid;
	int digits = 0;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		if (digits >= 19)
			return WG_EINVAL;
		u = u * 10 + (uint64_t)(*p - '0');
	}
	if (digits == 0)
		return WG_EINVAL;
	if (*p == ':') {
		p++;
		digits = 0;
		for (; *p >= '0' && *p <= '9'; p++, digits++) {
			if (digits >= 5)
				return WG_EINVAL;
			d = d * 10 + (uint32_t)(*p - '0');
		}
		if (digits == 0)
			return WG_EINVAL;
	}
	if (strcmp(p, "@s.whatsapp.net") != 0)
		return WG_EINVAL;
	*user = u;
	*device = d;
	return 0;
}

static char *
dup_or_null(const char *s)
{
	return s ? wg_strdup(s) : NULL;
}

void
wa_creds_copy(struct wa_creds *dst, const struct wa_creds *src)
{
	*dst = *src;
	dst->me_jid = dup_or_null(src->me_jid);
	dst->me_lid = dup_or_null(src->me_lid);
	dst->push_name = dup_or_null(src->push_name);
	dst->platform = dup_or_null(src->platform);
	dst->account = src->account ? wg_memdup(src->account, src->account_len) : NULL;
	dst->prekeys = src->nprekeys ? wg_memdup(src->prekeys, src->nprekeys * sizeof(struct wa_prekey))
				     : NULL;
}

void
wa_creds_free(struct wa_creds *c)
{
	if (c == NULL)
		return;
	free(c->me_jid);
	free(c->me_lid);
	free(c->push_name);
	free(c->platform);
	if (c->account) {
		wg_wipe(c->account, c->account_len);
		free(c->account);
	}
	if (c->prekeys) {
		wg_wipe(c->prekeys, c->nprekeys * sizeof(*c->prekeys));
		free(c->prekeys);
	}
	wg_wipe(c, sizeof(*c));
}

static json_t *
b64(const uint8_t *p, size_t n)
{
	char *s = wg_b64_encode(p, n);
	json_t *j = json_string(s);
	wg_wipe(s, strlen(s));
	free(s);
	return j;
}

static json_t *
keypair_json(const struct wa_keypair *kp)
{
	json_t *o = json_object();
	json_object_set_new(o, "private", b64(kp->priv, 32));
	json_object_set_new(o, "public", b64(kp->pub, 32));
	return o;
}

static json_t *
str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/*
 * The mark of checked keys (creds.h): an HMAC, under a key derived from the
 * server's secret, over the key material the checks cover. Whoever can write
 * a row but not read the secret (the web app, a tool, an older wagate that
 * seals plain rows as they are) cannot make one, so a blob that carries a
 * valid mark was written by this code from keys that were checked or made
 * here.
 */
#define MARK_LEN 16
static uint8_t mark_key[WA_SHA256_LEN];
static int have_mark_key;

void
wa_creds_set_secret(const uint8_t *secret, size_t len)
{
	static const char label[] = "wagate-creds: keys checked";
	if (secret == NULL || len == 0) {
		wg_wipe(mark_key, sizeof(mark_key));
		have_mark_key = 0;
		return;
	}
	wa_crypto_hmac_sha256(mark_key, secret, len, label, sizeof(label) - 1);
	have_mark_key = 1;
}

static void
keys_mark(const struct wa_creds *c, uint8_t out[MARK_LEN])
{
	uint8_t m[3 * 64 + 4 + 64], d[WA_SHA256_LEN];
	size_t n = 0;
	const struct wa_keypair *kps[] = {&c->noise, &c->identity, &c->signed_prekey};
	for (size_t i = 0; i < 3; i++) {
		memcpy(m + n, kps[i]->priv, 32);
		memcpy(m + n + 32, kps[i]->pub, 32);
		n += 64;
	}
	for (int i = 0; i < 4; i++)
		m[n++] = (uint8_t)(c->signed_prekey_id >> (24 - 8 * i));
	memcpy(m + n, c->signed_prekey_sig, 64);
	n += 64;
	wa_crypto_hmac_sha256(d, mark_key, sizeof(mark_key), m, n);
	memcpy(out, d, MARK_LEN);
	wg_wipe(m, sizeof(m));
	wg_wipe(d, sizeof(d));
}

char *
wa_creds_to_blob(const struct wa_creds *c)
{
	json_t *o = json_object();
	json_object_set_new(o, "format", json_string(WA_CREDS_FORMAT));
	json_object_set_new(o, "version", json_integer(WA_CREDS_VERSION));
	json_object_set_new(o, "noiseKey", keypair_json(&c->noise));
	json_object_set_new(o, "identityKey", keypair_json(&c->identity));
	json_t *spk = keypair_json(&c->signed_prekey);
	json_object_set_new(spk, "id", json_integer(c->signed_prekey_id));
	json_object_set_new(spk, "signature", b64(c->signed_prekey_sig, 64));
	json_object_set_new(o, "signedPreKey", spk);
	json_object_set_new(o, "registrationId", json_integer(c->registration_id));
	json_object_set_new(o, "advSecret", b64(c->adv_secret, 32));
	json_t *me = json_null();
	if (c->me_jid) {
		me = json_object();
		json_object_set_new(me, "jid", json_string(c->me_jid));
		json_object_set_new(me, "lid", str_or_null(c->me_lid));
		json_object_set_new(me, "name", str_or_null(c->push_name));
	} else if (c->push_name) {
		me = json_pack("{s:n, s:n, s:s}", "jid", "lid", "name", c->push_name);
	}
	json_object_set_new(o, "me", me);
	json_object_set_new(o, "account", c->account ? b64(c->account, c->account_len) : json_null());
	json_object_set_new(o, "platform", str_or_null(c->platform));
	json_object_set_new(o, "nextPreKeyId", json_integer(c->next_prekey_id));
	json_t *pks = json_array();
	for (size_t i = 0; i < c->nprekeys; i++) {
		json_t *k = json_object();
		json_object_set_new(k, "id", json_integer(c->prekeys[i].id));
		json_object_set_new(k, "private", b64(c->prekeys[i].kp.priv, 32));
		json_object_set_new(k, "public", b64(c->prekeys[i].kp.pub, 32));
		json_array_append_new(pks, k);
	}
	json_object_set_new(o, "preKeys", pks);
	/* Every caller holds keys that were checked (parsed) or made here. */
	if (have_mark_key) {
		uint8_t mark[MARK_LEN];
		keys_mark(c, mark);
		json_object_set_new(o, "keysChecked", b64(mark, MARK_LEN));
	}
	/*
	 * Compact: the blob is sealed, stored, read and parsed on every connect,
	 * and SQLite rewrites all of a row's bytes on any update of it; the
	 * indentation was a tenth of its size for no reader.
	 */
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

/* Parsing helpers: each sets why and returns WG_EINVAL on a bad field. */
struct parse {
	char *why;
	size_t whylen;
};

static int
bad(struct parse *p, const char *field, const char *what)
{
	snprintf(p->why, p->whylen, "credentials: %s %s", field, what);
	return WG_EINVAL;
}

static int
get_key(struct parse *p, json_t *o, const char *field, uint8_t *out, size_t n)
{
	json_t *v = json_object_get(o, field);
	if (!json_is_string(v))
		return bad(p, field, "is missing or not a string");
	uint8_t tmp[128];
	if (json_string_length(v) > 160)
		return bad(p, field, "is too long");
	long got = wg_b64_decode(tmp, json_string_value(v), json_string_length(v));
	if (got != (long)n) {
		wg_wipe(tmp, sizeof(tmp));
		return bad(p, field, "is not base64 of the right length");
	}
	memcpy(out, tmp, n);
	wg_wipe(tmp, sizeof(tmp));
	return 0;
}

/*
 * Blobs whose keys were checked in this process, by SHA-256: the checks (three
 * X25519 multiplications and an XEdDSA verification, about 330 µs) are most
 * of a parse, and a session's blob does not change between its reconnects.
 * Direct-mapped, so a collision only costs one more full check; a digest is
 * kept only after every check passed.
 */
#define CHECKED_SLOTS 16384
static uint8_t checked[CHECKED_SLOTS][WA_SHA256_LEN];
static unsigned long full_checks;

static size_t
checked_slot(const uint8_t d[WA_SHA256_LEN])
{
	return ((size_t)d[0] | (size_t)d[1] << 8 | (size_t)d[2] << 16) % CHECKED_SLOTS;
}

unsigned long
wa_creds_full_checks(void)
{
	return full_checks;
}

static int
get_keypair(struct parse *p, json_t *o, const char *field, struct wa_keypair *kp)
{
	json_t *v = json_object_get(o, field);
	if (!json_is_object(v))
		return bad(p, field, "is missing");
	int r = get_key(p, v, "private", kp->priv, 32);
	if (r == 0)
		r = get_key(p, v, "public", kp->pub, 32);
	if (r)
		return bad(p, field, "has a malformed key");
	return 0;
}

static int
check_keypair(struct parse *p, const char *field, const struct wa_keypair *kp)
{
	uint8_t derived[32];
	if (wa_crypto_pub_from_priv(derived, kp->priv) != 0 || memcmp(derived, kp->pub, 32) != 0)
		return bad(p, field, "has a public key that does not match its private key");
	return 0;
}

/* Each public key against its private key, and the signed pre-key's signature. */
static int
check_keys(struct parse *p, const struct wa_creds *c)
{
	int r;
	if ((r = check_keypair(p, "noiseKey", &c->noise)) ||
	    (r = check_keypair(p, "identityKey", &c->identity)) ||
	    (r = check_keypair(p, "signedPreKey", &c->signed_prekey)))
		return r;
	uint8_t msg[33] = {0x05};
	memcpy(msg + 1, c->signed_prekey.pub, 32);
	if (wa_crypto_verify(c->identity.pub, msg, 33, c->signed_prekey_sig, 64) != 0)
		return bad(p, "signedPreKey", "signature does not verify");
	return 0;
}

/* Whether o carries a valid mark (above) for c's keys. */
static int
marked(json_t *o, const struct wa_creds *c)
{
	json_t *v = json_object_get(o, "keysChecked");
	/* 16 bytes are 24 characters of base64; wg_b64_decode wants room for 3/4 of them and 3. */
	uint8_t got[3 * 24 / 4 + 3], want[MARK_LEN];
	if (!have_mark_key || !json_is_string(v) || json_string_length(v) > 24 ||
	    wg_b64_decode(got, json_string_value(v), json_string_length(v)) != MARK_LEN)
		return 0;
	keys_mark(c, want);
	return CRYPTO_memcmp(got, want, MARK_LEN) == 0;
}

static int
get_uint(struct parse *p, json_t *o, const char *field, uint32_t max, uint32_t *out)
{
	json_t *v = json_object_get(o, field);
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return bad(p, field, "is missing or out of range");
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int
get_opt_str(struct parse *p, json_t *o, const char *field, size_t max, char **out)
{
	json_t *v = json_object_get(o, field);
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return bad(p, field, "is not a string of a sensible length");
	*out = wg_strdup(json_string_value(v));
	return 0;
}

int
wa_creds_from_blob(const char *blob, size_t len, struct wa_creds *out, char *why, size_t whylen)
{
	struct parse p = {why, whylen};
	struct wa_creds c;
	uint8_t digest[WA_SHA256_LEN];
	size_t slot = 0;
	int check = 0;
	memset(&c, 0, sizeof(c));
	if (len > CREDS_MAX_BLOB)
		return bad(&p, "blob", "is too large");
	json_error_t je;
	json_t *o = json_loadb(blob, len, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL)
		return bad(&p, "blob", "is not valid JSON");
	int r = 0;
	json_t *fmt = json_object_get(o, "format"), *ver = json_object_get(o, "version");
	if (!json_is_object(o) || !json_is_string(fmt) ||
	    strcmp(json_string_value(fmt), WA_CREDS_FORMAT) != 0) {
		r = bad(&p, "format", "is not \"" WA_CREDS_FORMAT "\"");
		goto out;
	}
	if (!json_is_integer(ver) || json_integer_value(ver) != WA_CREDS_VERSION) {
		snprintf(why, whylen, "credentials: version %lld is not supported (this build reads %d)",
			 json_is_integer(ver) ? (long long)json_integer_value(ver) : -1LL,
			 WA_CREDS_VERSION);
		r = WG_EINVAL;
		goto out;
	}
	json_t *spk = json_object_get(o, "signedPreKey");
	if ((r = get_keypair(&p, o, "noiseKey", &c.noise)) ||
	    (r = get_keypair(&p, o, "identityKey", &c.identity)) ||
	    (r = get_keypair(&p, o, "signedPreKey", &c.signed_prekey)) ||
	    (r = get_uint(&p, spk, "id", 0xFFFFFF, &c.signed_prekey_id)) ||
	    (r = get_key(&p, spk, "signature", c.signed_prekey_sig, 64)) ||
	    (r = get_uint(&p, o, "registrationId", 0x3FFF, &c.registration_id)) ||
	    (r = get_key(&p, o, "advSecret", c.adv_secret, 32)) ||
	    (r = get_uint(&p, o, "nextPreKeyId", 0xFFFFFF, &c.next_prekey_id)))
		goto out;
	/* Checked before: in this process (by the blob's digest), or where the mark was made. */
	if (!marked(o, &c)) {
		wa_crypto_sha256(digest, blob, len);
		slot = checked_slot(digest);
		check = memcmp(checked[slot], digest, sizeof(digest)) != 0;
	}
	if (check && (r = check_keys(&p, &c)) != 0)
		goto out;
	json_t *me = json_object_get(o, "me");
	if (me != NULL && !json_is_null(me)) {
		if (!json_is_object(me)) {
			r = bad(&p, "me", "is not an object");
			goto out;
		}
		if ((r = get_opt_str(&p, me, "jid", 128, &c.me_jid)) ||
		    (r = get_opt_str(&p, me, "lid", 128, &c.me_lid)) ||
		    (r = get_opt_str(&p, me, "name", 256, &c.push_name)))
			goto out;
	}
	if ((r = get_opt_str(&p, o, "platform", 64, &c.platform)))
		goto out;
	json_t *acc = json_object_get(o, "account");
	if (acc != NULL && !json_is_null(acc)) {
		if (!json_is_string(acc) || json_string_length(acc) > 4096) {
			r = bad(&p, "account", "is not a base64 string");
			goto out;
		}
		c.account = wg_malloc(json_string_length(acc));
		long n = wg_b64_decode(c.account, json_string_value(acc), json_string_length(acc));
		if (n <= 0) {
			r = bad(&p, "account", "is not valid base64");
			goto out;
		}
		c.account_len = (size_t)n;
	}
	if (c.me_jid != NULL) {
		uint64_t u;
		uint32_t d;
		if (wa_creds_me(&c, &u, &d) != 0) {
			r = bad(&p, "me.jid", "is not PHONE[:DEVICE]@s.whatsapp.net");
			goto out;
		}
		if (c.account == NULL) {
			r = bad(&p, "account", "is missing for a paired device");
			goto out;
		}
	}
	json_t *pks = json_object_get(o, "preKeys");
	if (pks != NULL && !json_is_null(pks)) {
		if (!json_is_array(pks) || json_array_size(pks) > WA_CREDS_MAX_PREKEYS) {
			r = bad(&p, "preKeys", "is not an array of at most 812 keys");
			goto out;
		}
		c.nprekeys = json_array_size(pks);
		c.prekeys = wg_calloc(c.nprekeys ? c.nprekeys : 1, sizeof(*c.prekeys));
		for (size_t i = 0; i < c.nprekeys; i++) {
			json_t *k = json_array_get(pks, i);
			if (!json_is_object(k) ||
			    (r = get_uint(&p, k, "id", 0xFFFFFF, &c.prekeys[i].id)) ||
			    (r = get_key(&p, k, "private", c.prekeys[i].kp.priv, 32))) {
				r = bad(&p, "preKeys", "has a malformed key");
				goto out;
			}
			/*
			 * The public half is stored since it costs an X25519 scalar
			 * multiplication to derive (30 of them were 40 % of a login's
			 * CPU); blobs written before that still get it derived.
			 */
			json_t *pub = json_object_get(k, "public");
			if (pub != NULL ? get_key(&p, k, "public", c.prekeys[i].kp.pub, 32) != 0
					: wa_crypto_pub_from_priv(c.prekeys[i].kp.pub,
								  c.prekeys[i].kp.priv) != 0) {
				r = bad(&p, "preKeys", "has a malformed key");
				goto out;
			}
		}
	}
out:
	json_decref(o);
	if (r) {
		wa_creds_free(&c);
		return r;
	}
	if (check) {
		memcpy(checked[slot], digest, sizeof(digest));
		full_checks++;
	}
	*out = c;
	return 0;
}

int
wa_creds_save(const struct wa_creds *c, const char *path)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return WG_EINVAL;
	char *text = wa_creds_to_blob(c);
	size_t len = strlen(text);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int r = 0;
	if (fd < 0) {
		r = WG_EIO;
	} else {
		ssize_t w = write(fd, text, len);
		if (w != (ssize_t)len || fsync(fd) != 0)
			r = WG_EIO;
		close(fd);
		if (r == 0 && rename(tmp, path) != 0)
			r = WG_EIO;
		if (r)
			unlink(tmp);
	}
	wg_wipe(text, len);
	free(text);
	return r;
}

int
wa_creds_load(const char *path, struct wa_creds *out, char *why, size_t whylen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? WG_ENOTFOUND : WG_EIO;
	}
	char *buf = wg_malloc(CREDS_MAX_BLOB + 1);
	size_t n = fread(buf, 1, CREDS_MAX_BLOB + 1, f);
	fclose(f);
	int r;
	if (n > CREDS_MAX_BLOB) {
		snprintf(why, whylen, "%s: larger than %d bytes", path, CREDS_MAX_BLOB);
		r = WG_EINVAL;
	} else {
		r = wa_creds_from_blob(buf, n, out, why, whylen);
	}
	wg_wipe(buf, n > CREDS_MAX_BLOB ? CREDS_MAX_BLOB : n);
	free(buf);
	return r;
}
