/*
 * The HTTP API of `wagate serve`: JSON over HTTP (libevent's evhttp) for the
 * health checks, the session list and the per-session actions (pair, QR,
 * reconnect, logout, delete). It reads the store and asks the supervisor to
 * act; it never touches a WhatsApp connection itself. Endpoints, limits and
 * status codes are in docs/api.md.
 *
 * Every endpoint but GET /health and the /auth endpoints needs the x-api-key header or
 * the dashboard's session cookie (POST /auth/login). GET /events pushes
 * session, health and QR changes as Server-Sent Events. Paths outside the
 * API serve the dashboard's files from the web root. Request bodies, the key
 * and session tokens are never logged.
 */
#ifndef WG_API_H
#define WG_API_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct store;
struct sup;
struct api;
struct looplag;

struct evdns_base;

struct api_opts {
	const char *listen;         /* "127.0.0.1:8080"; port 0 picks a free port (api_port) */
	const char *api_key;        /* the key; only its SHA-256 is kept */
	uint8_t api_key_sha256[32]; /* when api_key is NULL: the key's SHA-256 (a stored key) */
	size_t max_body;            /* request body limit, 0: 64 KiB */
	size_t max_headers;         /* request line and headers limit, 0: 8 KiB */
	unsigned max_conns;         /* open HTTP connections, 0: 256 */
	const char *metrics_listen; /* "host:port": GET /metrics there without a key; NULL: none */
	const uint8_t *signin_key;  /* 32 bytes that sign the dashboard's sign-in tokens, the same
	                               across restarts; NULL: a key for this process only */
	uint32_t request_ms;        /* deadline of a whole request (head and body), 0: 10 s */
	uint64_t started_mono_ms;   /* wg_now_ms() when the server started, for uptime; 0: now */
	const char *web_root;       /* the dashboard's files; NULL: "web" beside the executable */
	int cookie_secure;          /* add Secure to the session cookie (TLS in front) */
	size_t max_streams;         /* concurrent GET /events streams, 0: 256 */
	size_t event_ring;          /* events kept for Last-Event-ID replay, 0: 1024 */
	uint32_t ping_ms;           /* keep-alive comment on every stream, 0: 15 s */
	const struct looplag *lag;  /* the loop-lag timer, for GET /health/loop; NULL: not measured */
	struct evdns_base *dns;     /* resolves other nodes' addresses (several nodes); NULL: none */
};

/*
 * Binds the listener on base and starts answering. st and sup must outlive
 * the API. One of api_key and api_key_sha256 (not all zero) is required.
 * Returns 0 and *out, or WG_EINVAL (bad listen address, no key) or
 * WG_EIO (cannot bind) with err saying why.
 */
int api_start(struct event_base *base, const struct api_opts *o, struct store *st, struct sup *sup,
              struct api **out, char *err, size_t errlen);

/* The bound TCP port. */
int api_port(const struct api *a);

/* The webhooks whose counters GET /metrics shows (started after the API); NULL: none. */
struct hook;
void api_set_hook(struct api *a, const struct hook *h);

/* The HTTP server's counters (tests, metrics). */
struct httpd_stats;
void api_http_stats(const struct api *a, struct httpd_stats *out);

/* How many GET /events streams are open (tests, metrics). */
size_t api_event_streams(const struct api *a);

/*
 * Closes the listener and every connection; requests still waiting for a
 * reconnect outcome are dropped without an answer. Safe before or after
 * sup_free(): a later outcome from the supervisor finds the request gone.
 * NULL-safe.
 */
void api_free(struct api *a);

#endif
