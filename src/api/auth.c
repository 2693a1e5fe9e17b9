/*
 * Credentials: the x-api-key header and the dashboard's session cookie.
 *
 * POST /auth/login trades the API key for a signed token in an HttpOnly,
 * SameSite=Strict cookie, so the dashboard never keeps the key in script
 * reach. A token carries its expiry and an HMAC under a key the server is
 * given (derived from the key that seals the credentials, which the database
 * never holds): it stays good across a restart, and nothing in the database
 * can be used to make one. The table remembers the tokens seen (their
 * SHA-256, compared in constant time, like the key) and those signed out,
 * which are refused until they expire. Failed logins are limited per source address (AUTH_FAIL_MAX
 * a minute), a brake on guessing through the one page anyone can reach that
 * locks out the guesser, not everyone; the key itself must still be long,
 * since x-api-key requests are not limited. Behind a reverse proxy the proxy
 * is the source (a forwarded-for header is the client's to forge).
 *
 * CSRF: a cookie rides along with cross-site requests, a header does not.
 * State-changing requests signed in by cookie must carry X-Wagate-Csrf: 1 (a
 * custom header forces a CORS preflight, which wagate never answers) and, if
 * the browser says where the request comes from (Origin), come from the
 * Host they are sent to. SameSite=Strict is the first line; this the second.
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "api/api_int.h"
#include "wa/crypto.h"
#include "core/clock.h"
#include "core/enc.h"
#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"

#define AUTH_COOKIE "wagate_session"
#define AUTH_TOKEN_BYTES 32
#define AUTH_TTL_S 43200 /* 12 h: the cookie's Max-Age and the token's life */
/* Tokens remembered at once (seen, or signed out); past this the one closest to expiry is forgotten. */
#define AUTH_MAX_TOKENS 1024
/* Failed logins per source address: at most AUTH_FAIL_MAX in any AUTH_FAIL_WINDOW_MS. */
#define AUTH_FAIL_MAX 10
#define AUTH_FAIL_WINDOW_MS 60000
/* Sources remembered; past this the oldest remembered is forgotten. */
#define AUTH_SOURCES 1024
#define AUTH_KEY_MAX 1024 /* longest apiKey a login may carry */

struct auth_token {
	uint8_t digest[32]; /* SHA-256 of the token */
	uint64_t expires;   /* monotonic ms; 0: free slot */
	bool revoked;       /* signed out: refused until it expires, though its signature is good */
};

/*
 * A token is 32 bytes: its expiry (Unix seconds, 6 bytes big-endian), 10
 * random bytes, and the first 16 bytes of an HMAC-SHA256 of those 16 under
 * the sign-in key. The key comes from the server (derived from the key that
 * seals the credentials, which the database never holds), so a token stays
 * good across a restart: the table below only remembers the tokens seen and
 * those signed out in this process.
 */
#define TOKEN_EXP_BYTES 6
#define TOKEN_NONCE_BYTES 10
#define TOKEN_MAC_BYTES 16
_Static_assert(TOKEN_EXP_BYTES + TOKEN_NONCE_BYTES + TOKEN_MAC_BYTES == AUTH_TOKEN_BYTES,
               "token layout");

/* A source address's failed logins. */
struct fail_source {
	char addr[64];
	uint64_t fails[AUTH_FAIL_MAX]; /* when the last failed logins were, a ring */
	size_t fail_next;              /* the oldest of them, overwritten next */
	bool used;
};

struct api_auth {
	uint8_t key[32]; /* signs the tokens */
	struct auth_token tokens[AUTH_MAX_TOKENS];
	struct fail_source src[AUTH_SOURCES]; /* reused in turn, the oldest first */
	size_t src_next;
	struct wg_map by_addr; /* addr -> its fail_source */
};

static bool
sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned len = 0;
	return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32;
}

void
api__auth_init(struct api *a, const uint8_t *key)
{
	a->auth = wg_calloc(1, sizeof(*a->auth));
	wg_map_init(&a->auth->by_addr);
	/* Without a key from the server (tests), one for this process: sign-ins end with it. */
	if (key != NULL)
		memcpy(a->auth->key, key, sizeof(a->auth->key));
	else if (RAND_bytes(a->auth->key, sizeof(a->auth->key)) != 1)
		abort(); /* randomness is always there: out of memory */
}

/* The MAC of a token's first 16 bytes. */
static void
token_mac(const struct api_auth *t, const uint8_t head[TOKEN_EXP_BYTES + TOKEN_NONCE_BYTES],
          uint8_t out[32])
{
	wa_crypto_hmac_sha256(out, t->key, sizeof(t->key), head, TOKEN_EXP_BYTES + TOKEN_NONCE_BYTES);
}

/* Whether raw is a token this server signed that has not expired (wall clock: it outlives restarts). */
static bool
token_signed(const struct api_auth *t, const uint8_t raw[AUTH_TOKEN_BYTES], uint64_t *left_ms)
{
	uint8_t mac[32];
	token_mac(t, raw, mac);
	bool ok = CRYPTO_memcmp(mac, raw + TOKEN_EXP_BYTES + TOKEN_NONCE_BYTES, TOKEN_MAC_BYTES) == 0;
	wg_wipe(mac, sizeof(mac));
	uint64_t exp = 0;
	for (int i = 0; i < TOKEN_EXP_BYTES; i++)
		exp = exp << 8 | raw[i];
	uint64_t now = wg_wall_ms() / 1000;
	if (!ok || exp <= now || exp - now > AUTH_TTL_S)
		return false;
	*left_ms = (exp - now) * 1000;
	return true;
}

void
api__auth_free(struct api *a)
{
	if (a->auth == NULL)
		return;
	wg_map_free(&a->auth->by_addr);
	wg_wipe(a->auth, sizeof(*a->auth));
	free(a->auth);
	a->auth = NULL;
}

/* The key is compared as SHA-256 digests, so the time does not depend on its length or content. */
static bool
key_ok(struct api *a, const char *key, size_t len)
{
	uint8_t d[32];
	if (!sha256(key, len, d))
		return false;
	bool ok = CRYPTO_memcmp(d, a->key_digest, sizeof(d)) == 0;
	wg_wipe(d, sizeof(d));
	return ok;
}

/*
 * The slot holding the token whose digest is d, or NULL. Every live slot is
 * compared in constant time; expired ones are freed on the way.
 */
static struct auth_token *token_slot(struct api_auth *t);

static struct auth_token *
token_find(struct api_auth *t, const uint8_t d[32])
{
	uint64_t now = wg_now_ms();
	struct auth_token *hit = NULL;
	for (size_t i = 0; i < AUTH_MAX_TOKENS; i++) {
		struct auth_token *k = &t->tokens[i];
		if (k->expires == 0)
			continue;
		if (k->expires <= now) {
			memset(k, 0, sizeof(*k));
			continue;
		}
		if (CRYPTO_memcmp(k->digest, d, 32) == 0)
			hit = k;
	}
	return hit;
}

/*
 * The session token of the request's cookie, as its digest. Looks at every
 * Cookie header and every wagate_session in them (a browser may send more
 * than one for different paths) and returns the first that is in the table.
 */
static struct auth_token *
cookie_token(struct api *a, struct httpd_req *req)
{
	struct evkeyval *h;
	TAILQ_FOREACH(h, httpd_in_headers(req), next)
	{
		if (strcasecmp(h->key, "Cookie") != 0)
			continue;
		const char *p = h->value;
		while (*p) {
			while (*p == ' ' || *p == ';')
				p++;
			const char *end = strchr(p, ';');
			size_t len = end ? (size_t)(end - p) : strlen(p);
			static const char name[] = AUTH_COOKIE "=";
			if (len == sizeof(name) - 1 + 2 * AUTH_TOKEN_BYTES &&
			    strncmp(p, name, sizeof(name) - 1) == 0) {
				uint8_t raw[AUTH_TOKEN_BYTES], d[32];
				size_t bad;
				long n = wg_hex_decode(raw, p + sizeof(name) - 1,
				                       2 * AUTH_TOKEN_BYTES, &bad);
				uint64_t left = 0;
				bool ok = n == AUTH_TOKEN_BYTES && sha256(raw, sizeof(raw), d) &&
				          token_signed(a->auth, raw, &left);
				wg_wipe(raw, sizeof(raw));
				struct auth_token *k = ok ? token_find(a->auth, d) : NULL;
				if (ok && k == NULL) {
					/* Signed by this server before a restart: remembered from now on. */
					k = token_slot(a->auth);
					memcpy(k->digest, d, sizeof(d));
					k->expires = wg_now_ms() + left;
					k->revoked = false;
				}
				if (k && !k->revoked)
					return k;
			}
			p += len;
		}
	}
	return NULL;
}

enum api_cred
api__credential(struct api *a, struct httpd_req *req)
{
	/* Another node passing a person's request on (forward.c): signed with the shared key. */
	if (a->node[0] != '\0' && api__forwarded(req))
		return a->have_fwd_key && api__forward_ok(a, req) ? API_CRED_KEY : API_CRED_NONE;
	const char *key = evhttp_find_header(httpd_in_headers(req), "x-api-key");
	/* A wrong key is a wrong credential, whatever else the request carries. */
	if (key != NULL)
		return key_ok(a, key, strlen(key)) ? API_CRED_KEY : API_CRED_NONE;
	return cookie_token(a, req) ? API_CRED_COOKIE : API_CRED_NONE;
}

bool
api__csrf_ok(struct httpd_req *req)
{
	struct evkeyvalq *in = httpd_in_headers(req);
	const char *mark = evhttp_find_header(in, "X-Wagate-Csrf");
	if (mark == NULL || strcmp(mark, "1") != 0) {
		api__error(req, 403,
		           "signed in by cookie: this request needs the header X-Wagate-Csrf: 1");
		return false;
	}
	const char *origin = evhttp_find_header(in, "Origin");
	if (origin == NULL)
		return true;
	const char *host = evhttp_find_header(in, "Host");
	const char *sep = strstr(origin, "://");
	/* Origin is scheme://host[:port] with nothing after; "null" and the rest never match. */
	if (host == NULL || sep == NULL || strchr(sep + 3, '/') != NULL ||
	    strcasecmp(sep + 3, host) != 0) {
		api__error(req, 403, "cross-origin request refused: Origin does not match Host");
		return false;
	}
	return true;
}

static void
set_cookie(struct api *a, struct httpd_req *req, const char *value, int max_age)
{
	char c[256];
	snprintf(c, sizeof(c), AUTH_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d%s",
	         value, max_age, a->cookie_secure ? "; Secure" : "");
	evhttp_add_header(httpd_out_headers(req), "Set-Cookie", c);
}

/* The request's source address, as the socket says ("" when unknown). */
static const char *
source_addr(struct httpd_req *req)
{
	return httpd_peer(httpd_conn_of(req), NULL);
}

/* What is remembered of addr's failures: NULL when nothing (and create is false). */
static struct fail_source *
source_of(struct api_auth *t, const char *addr, bool create)
{
	struct fail_source *f = wg_map_get(&t->by_addr, addr);
	if (f != NULL || !create)
		return f;
	f = &t->src[t->src_next];
	t->src_next = (t->src_next + 1) % AUTH_SOURCES;
	if (f->used)
		wg_map_del(&t->by_addr, f->addr);
	memset(f, 0, sizeof(*f));
	snprintf(f->addr, sizeof(f->addr), "%s", addr);
	f->used = true;
	wg_map_put(&t->by_addr, f->addr, f);
	return f;
}

/* Seconds until a failed login from f is allowed again, 0 when it is now. */
static unsigned
fail_wait_s(const struct fail_source *f)
{
	if (f == NULL)
		return 0;
	uint64_t oldest = f->fails[f->fail_next], now = wg_now_ms();
	if (oldest == 0 || now - oldest >= AUTH_FAIL_WINDOW_MS)
		return 0;
	return (unsigned)((oldest + AUTH_FAIL_WINDOW_MS - now + 999) / 1000);
}

static void
fail_note(struct fail_source *f)
{
	uint64_t now = wg_now_ms();
	f->fails[f->fail_next] = now ? now : 1;
	f->fail_next = (f->fail_next + 1) % AUTH_FAIL_MAX;
}

/* A free slot, or the one closest to expiry when all are taken (that browser signs in again). */
static struct auth_token *
token_slot(struct api_auth *t)
{
	uint64_t now = wg_now_ms();
	struct auth_token *best = &t->tokens[0];
	for (size_t i = 0; i < AUTH_MAX_TOKENS; i++) {
		struct auth_token *k = &t->tokens[i];
		if (k->expires == 0 || k->expires <= now)
			return k;
		if (k->expires < best->expires)
			best = k;
	}
	return best;
}

void
api__auth_login(struct api *a, struct httpd_req *req)
{
	static const char *const fields[] = {"apiKey", NULL};
	struct api_auth *t = a->auth;
	/*
	 * Checked before the key: once a source reached the limit, it gets no
	 * answer about a key, not even the right one, until the window has
	 * passed. Other sources sign in as usual.
	 */
	const char *addr = source_addr(req);
	unsigned wait = fail_wait_s(source_of(t, addr, false));
	if (wait > 0) {
		char s[16];
		snprintf(s, sizeof(s), "%u", wait);
		evhttp_add_header(httpd_out_headers(req), "Retry-After", s);
		api__errorf(req, 429, "too many failed sign-ins; try again in %u s", wait);
		return;
	}
	json_t *body = api__read_body(req);
	if (body == NULL)
		return;
	if (!api__known_fields(req, body, fields))
		goto out;
	json_t *k = json_object_get(body, "apiKey");
	size_t klen = json_string_length(k);
	if (!json_is_string(k) || klen == 0 || klen > AUTH_KEY_MAX) {
		api__error(req, 400, "apiKey must be a string of 1-1024 bytes");
		goto out;
	}
	if (!key_ok(a, json_string_value(k), klen)) {
		fail_note(source_of(t, addr, true));
		log_warn("api", "sign-in with a wrong API key from %s", addr[0] ? addr : "an unknown address");
		api__error(req, 401, "invalid API key");
		goto out;
	}
	uint8_t raw[AUTH_TOKEN_BYTES];
	char hex[2 * AUTH_TOKEN_BYTES + 1];
	uint64_t exp = wg_wall_ms() / 1000 + AUTH_TTL_S;
	for (int i = TOKEN_EXP_BYTES - 1; i >= 0; i--, exp >>= 8)
		raw[i] = (uint8_t)exp;
	if (RAND_bytes(raw + TOKEN_EXP_BYTES, TOKEN_NONCE_BYTES) != 1) {
		log_error("api", "sign-in: no randomness for a token");
		api__error(req, 500, "cannot create a session");
		goto out;
	}
	uint8_t mac[32];
	token_mac(t, raw, mac);
	memcpy(raw + TOKEN_EXP_BYTES + TOKEN_NONCE_BYTES, mac, TOKEN_MAC_BYTES);
	wg_wipe(mac, sizeof(mac));
	struct auth_token *slot = token_slot(t);
	slot->revoked = false;
	if (!sha256(raw, sizeof(raw), slot->digest)) {
		memset(slot, 0, sizeof(*slot));
		wg_wipe(raw, sizeof(raw));
		api__error(req, 500, "cannot create a session");
		goto out;
	}
	slot->expires = wg_now_ms() + (uint64_t)AUTH_TTL_S * 1000;
	wg_hex_encode(hex, raw, sizeof(raw));
	set_cookie(a, req, hex, AUTH_TTL_S);
	wg_wipe(raw, sizeof(raw));
	wg_wipe(hex, sizeof(hex));
	log_info("api", "signed in to the dashboard");
	api__reply(req, 204, NULL);
out:
	json_decref(body);
}

void
api__auth_logout(struct api *a, struct httpd_req *req)
{
	struct auth_token *k = cookie_token(a, req);
	/* Signing out is a change too: a valid cookie must pass the CSRF rule. */
	if (k != NULL && !api__csrf_ok(req))
		return;
	/* Kept, revoked, until it expires: its signature alone would let it back in. */
	if (k != NULL)
		k->revoked = true;
	set_cookie(a, req, "", 0);
	api__reply(req, 204, NULL);
}

void
api__auth_session(struct api *a, struct httpd_req *req)
{
	api__reply(req, 200,
	           json_pack("{s:b}", "authenticated", api__credential(a, req) != API_CRED_NONE));
}
