/*
 * Shared by the files of the HTTP API (api__ prefix): the server object, the
 * answer helpers and the request-body reader. Not for use outside src/api.
 */
#ifndef WG_API_INT_H
#define WG_API_INT_H

#include "core/map.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <jansson.h>

#include "api/api.h"
#include "net/httpd.h"
#include "store/store.h"

struct sup;
struct api_pending;
struct api_events;
struct api_auth;

/* Answers counted by route and status, for GET /metrics (api.c counts, metrics.c writes). */
#define API_ROUTES 24
#define API_CODES 20
extern const int api__codes[API_CODES]; /* the statuses counted one by one; the last slot: any other */
const char *api__route_name(int route);

struct api {
	uint64_t answers[API_ROUTES][API_CODES];
	struct event_base *base;
	struct httpd *http;
	struct httpd *metrics_http; /* WAGATE_METRICS_LISTEN: /metrics only, without a key */
	const struct hook *hook;    /* webhooks, for /metrics; NULL: none */
	struct store *st;
	struct sup *sup;
	uint8_t key_digest[32]; /* SHA-256 of the API key; the key itself is not kept */
	size_t max_body, max_headers;
	uint64_t started_mono_ms;
	int port;
	struct api_pending *pending; /* reconnect requests waiting for the supervisor */
	struct api_listing *listings; /* GET /sessions, /health/deep answers being sent (listing.c) */
	TAILQ_HEAD(, api_listing) listing_queue; /* waiting for their next page */
	struct event *listing_pump;   /* serves one page per loop turn */
	size_t nlistings;
	struct api_events *ev;       /* GET /events: streams, the replay ring (events.c) */
	struct api_auth *auth;       /* dashboard sign-in: tokens, failed-login limit (auth.c) */
	char *web_root;              /* the dashboard's files, as configured (static.c) */
	int cookie_secure;
	const struct looplag *lag;   /* GET /health/loop (health.c) */
	char node[STORE_NODE_MAX + 1]; /* this node's id with several nodes, else "" (forward.c) */
	/*
	 * The key that signs requests between nodes: derived from the API key
	 * itself (WAGATE_API_KEY, the same on every node), never from its stored
	 * hash, which whoever reads the database has. Without it nothing is
	 * forwarded or accepted as forwarded.
	 */
	uint8_t fwd_key[32];
	bool have_fwd_key;
	/* Signatures accepted within the window, so none is accepted twice (forward.c). */
	struct fwd_seen *seen; /* a ring of FORWARD_SEEN_MAX, oldest at seen_head */
	size_t seen_head, seen_n;
	struct wg_map seen_map;
	struct evdns_base *dns;
	struct api_forward *forwards; /* actions passed on to the node holding the session */
};

/* Answers with body (consumed; NULL for no body) and status; adds the JSON headers. */
void api__reply(struct httpd_req *req, int status, json_t *body);
/* Answers {"error": msg}. */
void api__error(struct httpd_req *req, int status, const char *msg);
/* Answers {"error": ...} built from a format. */
void api__errorf(struct httpd_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The reason phrase of a status we answer with. */
const char *api__reason(int status);
/* The one log line per answer (method, path, status). */
void api__log_answer(struct httpd_req *req, int status);
/* Answers a non-JSON body (the SVG QR code). */
void api__reply_raw(struct httpd_req *req, int status, const char *content_type,
                    const void *data, size_t len);

/*
 * The request body as a JSON object; an empty body reads as {}. On failure the
 * error (400) has been answered and NULL is returned.
 */
json_t *api__read_body(struct httpd_req *req);
/*
 * Checks that every member of body is one of the NULL-terminated names;
 * answers 400 naming the first unknown field and returns false otherwise.
 */
bool api__known_fields(struct httpd_req *req, json_t *body, const char *const *names);

/* Which fields a session object carries: GET /sessions or GET /health/deep. */
enum api_sj { API_SJ_FULL, API_SJ_HEALTH };
/* A session as JSON: the row and the supervisor's view of it; never auth_state. */
json_t *api__session_json(struct api *a, const struct store_session *row, enum api_sj shape);

/* ---- session_text.c: the session object as text, written into a buffer ---- */
struct evbuffer;
struct sup_session_view;
/* The object; open: without its closing brace (the caller adds members). */
void api__session_text(struct evbuffer *b, const struct sup_session_view *v, enum api_sj shape,
                       int open);
/* The same as a tree (parsed from that text). */
json_t *api__view_json(const struct sup_session_view *v, enum api_sj shape);
/* A JSON string (null for NULL or ""), escaped; bytes that are not UTF-8 become U+FFFD. */
void api__json_str(struct evbuffer *b, const char *s);

/* ISO 8601 text of a Unix ms timestamp, or JSON null for 0. */
json_t *api__time(int64_t ms);
/* Whole seconds since the server started. */
json_int_t api__uptime(const struct api *a);

/* Endpoint handlers; the router has checked the method, the key and the id shape. */
void api__health(struct api *a, struct httpd_req *req);
/* docs/openapi.json, embedded at build time (cmake/embed.cmake), served at GET /openapi.json. */
extern const char api__openapi[];
extern const size_t api__openapi_len;

/* GET /metrics: the Prometheus text format (metrics.c). */
void api__metrics(struct api *a, struct httpd_req *req);
/* GET /livez and GET /readyz: the probes (health.c). */
void api__livez(struct api *a, struct httpd_req *req);
void api__readyz(struct api *a, struct httpd_req *req);
/* GET /health/loop?since=<Unix ms>: the event loop's longest lateness in the window. */
void api__health_loop(struct api *a, struct httpd_req *req);
/* GET /cluster: the nodes, their heartbeats and leases (health.c). */
void api__cluster(struct api *a, struct httpd_req *req);

/* forward.c: several nodes. */
struct api_forward;
/* Passes req on to the node owner, at url, and its answer back. */
void api__forward(struct api *a, struct httpd_req *req, const char *owner, const char *url);
/* The request came from another node (valid or not: it is never forwarded again). */
bool api__forwarded(struct httpd_req *req);
/* It came from another node that knows the API key: as good as the key. */
bool api__forward_ok(struct api *a, struct httpd_req *req);
void api__forwards_free(struct api *a);
/* GET /sessions (deep 0) and GET /health/deep (deep 1): paged, streamed (listing.c). */
void api__list(struct api *a, struct httpd_req *req, int deep);
void api__listings_free(struct api *a);
extern const char api__breaker_reason[];
void api__sessions_create(struct api *a, struct httpd_req *req);
void api__session_get(struct api *a, struct httpd_req *req, const char *id);
void api__session_patch(struct api *a, struct httpd_req *req, const char *id);
void api__session_delete(struct api *a, struct httpd_req *req, const char *id);
void api__session_qr(struct api *a, struct httpd_req *req, const char *id);
void api__session_logout(struct api *a, struct httpd_req *req, const char *id);
void api__session_pair(struct api *a, struct httpd_req *req, const char *id);
void api__session_reconnect(struct api *a, struct httpd_req *req, const char *id);

void api__history(struct api *a, struct httpd_req *req, const char *id);

/* The /health body; *status is its HTTP status. key (if not NULL) gets what a change is judged by. */
json_t *api__health_json(struct api *a, int *status, char *key, size_t keylen);

/* ---- auth.c ---- */

/* Which credential a request carries. */
enum api_cred { API_CRED_NONE, API_CRED_KEY, API_CRED_COOKIE };
/* key: signs the sign-in tokens (32 bytes; NULL: one for this process only). */
void api__auth_init(struct api *a, const uint8_t *key);
void api__auth_free(struct api *a);
/* The credential the request carries, checked in constant time. */
enum api_cred api__credential(struct api *a, struct httpd_req *req);
/*
 * The CSRF rule for a cookie-authenticated request that changes state: it
 * carries X-Wagate-Csrf: 1 and, when it has an Origin, the Origin's host is
 * the Host. Answers 403 and returns false otherwise.
 */
bool api__csrf_ok(struct httpd_req *req);
void api__auth_login(struct api *a, struct httpd_req *req);
void api__auth_logout(struct api *a, struct httpd_req *req);
void api__auth_session(struct api *a, struct httpd_req *req);

/* ---- events.c ---- */

int api__events_init(struct api *a, const struct api_opts *o);
/* After httpd_free: the streams are gone with their connections. */
void api__events_free(struct api *a);
void api__events(struct api *a, struct httpd_req *req);
/* A session row changed outside the supervisor (PATCH): push it like a state change. */
void api__events_session(struct api *a, const char *id);
/* A session was deleted. */
void api__events_deleted(struct api *a, const char *id);

/* ---- static.c ---- */

/* Resolves the web root (NULL: beside the executable); warns if it is missing. */
void api__static_init(struct api *a, const char *web_root);
/* GET or HEAD of a path outside the API. */
void api__static(struct api *a, struct httpd_req *req, const char *path);

/* Reconnect requests still waiting when the API stops: detached, answered never. */
void api__pending_detach_all(struct api *a);
/*
 * A request whose answer waits (for the supervisor, or a call on its reader):
 * linked in api->pending, so that a client that goes away or an API that
 * stops leaves it with no request (p->req, p->api NULL). Release it, then
 * answer p->req if both are still there.
 */
struct api_pending {
	struct api *api;
	struct httpd_req *req;
	struct httpd_conn *evcon;
	struct api_pending *prev, *next;
	bool in_call;  /* inside sup_reconnect: done may run before it returns */
	bool finished; /* done ran */
};
struct api_pending *api__pending_new(struct api *a, struct httpd_req *req);
void api__pending_release(struct api_pending *p);

/*
 * The QR code text as an SVG image: one path, a unit square per dark module,
 * with the 4-module quiet zone. Returns a malloc'd string, or NULL if the
 * text does not fit a QR code.
 */
char *api__qr_svg(const char *text, size_t *len);

#endif
