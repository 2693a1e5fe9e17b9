/*
 * The HTTP server of `wagate serve`: listener, limits, authentication, routing
 * and the answer helpers. The endpoints live in health.c and sessions.c; the
 * SVG QR writer in qr_svg.c. See docs/api.md.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api/api_int.h"
#include "wa/crypto.h"
#include "core/addr.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "sup/sup.h"

#define API_DEFAULT_MAX_BODY (64 * 1024)
#define API_DEFAULT_MAX_HEADERS (8 * 1024)
/* Idle connections and writes that make no progress are dropped after this. */
#define API_TIMEOUT_S 30
/* Longest path we route: "/sessions/" + a 36-character id, each character percent-encoded, + "/reconnect". */
#define API_MAX_PATH 160

/* ---- answers ---- */

const char *
api__reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return NULL;
	}
}

const int api__codes[API_CODES] = {200, 201, 204, 400, 401, 403, 404, 405, 408, 409,
                                   413, 414, 429, 431, 500, 502, 503, 504, 0, 0};

/* One line per answer: method, path and status only (never bodies, queries or headers). */
void
api__log_answer(struct httpd_req *req, int status)
{
	struct api *a = httpd_req_arg(req);
	if (a != NULL) {
		int r = httpd_req_tag(req), k = 0;
		while (k < API_CODES - 1 && api__codes[k] != status && api__codes[k] != 0)
			k++;
		if (api__codes[k] != status)
			k = API_CODES - 1;
		a->answers[r >= 0 && r < API_ROUTES ? r : 0][k]++;
	}
	const struct evhttp_uri *u = httpd_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	if (status >= 500)
		log_warn("api", "%s %.64s -> %d", httpd_method_name(httpd_method(req)),
		         path ? path : "?", status);
	else
		log_debug("api", "%s %.64s -> %d", httpd_method_name(httpd_method(req)),
		          path ? path : "?", status);
}

void
api__reply_raw(struct httpd_req *req, int status, const char *content_type, const void *data,
               size_t len)
{
	struct evkeyvalq *h = httpd_out_headers(req);
	/* Answers hold QR codes and session state: nothing here may be cached by a proxy. */
	evhttp_add_header(h, "Cache-Control", "no-store");
	api__log_answer(req, status);
	if (content_type == NULL) {
		httpd_reply(req, status, api__reason(status), NULL);
		return;
	}
	evhttp_add_header(h, "Content-Type", content_type);
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, data, len);
	httpd_reply(req, status, api__reason(status), out);
	evbuffer_free(out);
}

void
api__reply(struct httpd_req *req, int status, json_t *body)
{
	if (body == NULL) {
		api__reply_raw(req, status, NULL, NULL, 0);
		return;
	}
	char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	json_decref(body);
	if (text == NULL) /* jansson fails only on allocation */
		abort();
	size_t n = strlen(text);
	text = wg_realloc(text, n + 2);
	text[n++] = '\n';
	api__reply_raw(req, status, "application/json", text, n);
	free(text);
}

void
api__error(struct httpd_req *req, int status, const char *msg)
{
	api__reply(req, status, json_pack("{s:s}", "error", msg));
}

void
api__errorf(struct httpd_req *req, int status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api__error(req, status, msg);
}

/* ---- request bodies ---- */

json_t *
api__read_body(struct httpd_req *req)
{
	struct evbuffer *in = httpd_body(req);
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return json_object();
	/* The router has bounded len by max_body already. */
	const char *text = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	json_error_t je;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL) {
		api__errorf(req, 400, "malformed JSON at line %d column %d: %s", je.line, je.column,
		            je.text);
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		api__error(req, 400, "the body must be a JSON object");
		return NULL;
	}
	return doc;
}

bool
api__known_fields(struct httpd_req *req, json_t *body, const char *const *names)
{
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v)
	{
		bool known = false;
		for (size_t i = 0; names[i] && !known; i++)
			known = strcmp(key, names[i]) == 0;
		if (!known) {
			/* The name is the client's own text: bounded, and JSON-escaped on the way
			 * out. */
			api__errorf(req, 400, "unknown field \"%.64s\"", key);
			return false;
		}
	}
	return true;
}

json_t *
api__time(int64_t ms)
{
	if (ms <= 0)
		return json_null();
	char t[32];
	wg_iso8601(t, (uint64_t)ms);
	return json_string(t);
}

json_int_t
api__uptime(const struct api *a)
{
	uint64_t now = wg_now_ms();
	return now > a->started_mono_ms ? (json_int_t)((now - a->started_mono_ms) / 1000) : 0;
}

static bool
digest(const void *p, size_t n, uint8_t out[32])
{
	unsigned len = 0;
	return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32;
}

/* ---- routing ---- */

enum route {
	RT_NONE,
	RT_HEALTH,
	RT_LIVEZ,
	RT_READYZ,
	RT_METRICS,
	RT_OPENAPI,
	RT_HEALTH_DEEP,
	RT_HEALTH_LOOP,
	RT_CLUSTER,
	RT_SESSIONS,
	RT_SESSION,
	RT_QR,
	RT_RECONNECT,
	RT_LOGOUT,
	RT_PAIR,
	RT_HISTORY,
	RT_EVENTS,
	RT_AUTH_LOGIN,
	RT_AUTH_LOGOUT,
	RT_AUTH_SESSION,
	RT_STATIC,
	RT_COUNT
};

/* Route names for the metrics' label: the path pattern, never a session id. */
static const char *const route_names[] = {
    [RT_NONE] = "other",
    [RT_HEALTH] = "/health",
    [RT_LIVEZ] = "/livez",
    [RT_READYZ] = "/readyz",
    [RT_METRICS] = "/metrics",
    [RT_OPENAPI] = "/openapi.json",
    [RT_HEALTH_DEEP] = "/health/deep",
    [RT_HEALTH_LOOP] = "/health/loop",
    [RT_CLUSTER] = "/cluster",
    [RT_SESSIONS] = "/sessions",
    [RT_SESSION] = "/sessions/{id}",
    [RT_QR] = "/sessions/{id}/qr",
    [RT_RECONNECT] = "/sessions/{id}/reconnect",
    [RT_LOGOUT] = "/sessions/{id}/logout",
    [RT_PAIR] = "/sessions/{id}/pair",
    [RT_HISTORY] = "/sessions/{id}/history",
    [RT_EVENTS] = "/events",
    [RT_AUTH_LOGIN] = "/auth/login",
    [RT_AUTH_LOGOUT] = "/auth/logout",
    [RT_AUTH_SESSION] = "/auth/session",
    [RT_STATIC] = "dashboard",
};
_Static_assert(RT_COUNT <= API_ROUTES, "API_ROUTES too small");

const char *
api__route_name(int route)
{
	return route > 0 && route < RT_COUNT ? route_names[route] : "other";
}

struct route_info {
	bool auth;
	int methods; /* enum httpd_method bits */
	const char *allow;
};

static const struct route_info routes[] = {
    [RT_HEALTH] = {false, HTTPD_GET, "GET"},
    /* The probes: without a key, like /health (a kubelet or load balancer has none). */
    [RT_LIVEZ] = {false, HTTPD_GET | HTTPD_HEAD, "GET, HEAD"},
    [RT_READYZ] = {false, HTTPD_GET | HTTPD_HEAD, "GET, HEAD"},
    /* Behind the key by default; WAGATE_METRICS_LISTEN serves it without one on its own address. */
    [RT_METRICS] = {true, HTTPD_GET, "GET"},
    /* The API's description holds no data: public, like the dashboard's files. */
    [RT_OPENAPI] = {false, HTTPD_GET, "GET"},
    [RT_HEALTH_DEEP] = {true, HTTPD_GET, "GET"},
    [RT_HEALTH_LOOP] = {true, HTTPD_GET, "GET"},
    [RT_CLUSTER] = {true, HTTPD_GET, "GET"},
    [RT_SESSIONS] = {true, HTTPD_GET | HTTPD_POST, "GET, POST"},
    [RT_SESSION] = {true, HTTPD_GET | HTTPD_PATCH | HTTPD_DELETE,
                    "GET, PATCH, DELETE"},
    [RT_QR] = {true, HTTPD_GET, "GET"},
    [RT_RECONNECT] = {true, HTTPD_POST, "POST"},
    [RT_LOGOUT] = {true, HTTPD_POST, "POST"},
    [RT_PAIR] = {true, HTTPD_POST, "POST"},
    [RT_HISTORY] = {true, HTTPD_GET, "GET"},
    [RT_EVENTS] = {true, HTTPD_GET, "GET"},
    /* The sign-in endpoints check what they need themselves. */
    [RT_AUTH_LOGIN] = {false, HTTPD_POST, "POST"},
    [RT_AUTH_LOGOUT] = {false, HTTPD_POST, "POST"},
    [RT_AUTH_SESSION] = {false, HTTPD_GET, "GET"},
    /* The dashboard's files hold no data: public, like a login page must be. */
    [RT_STATIC] = {false, HTTPD_GET | HTTPD_HEAD, "GET, HEAD"},
};

/* Whether path is prefix itself or below it ("/sessions", "/sessions/..."). */
static bool
under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/*
 * Maps a path to a route and, for /sessions/{id}..., copies the id segment,
 * percent-decoded: a session is addressed by whatever id its row has (a uuid,
 * a cuid, an integer), URL-encoded. *bad_id when it cannot be an id (empty
 * after decoding, longer than STORE_ID_LEN, spaces or control characters):
 * answered 404 like an unknown one. Paths outside /health, /sessions, /events
 * and /auth belong to the dashboard.
 */
static enum route
parse_path(const char *path, char id[STORE_ID_LEN + 1], bool *bad_id)
{
	*bad_id = false;
	static const char pre[] = "/sessions/";
	id[0] = '\0';
	if (strcmp(path, "/livez") == 0)
		return RT_LIVEZ;
	if (strcmp(path, "/readyz") == 0)
		return RT_READYZ;
	if (strcmp(path, "/metrics") == 0)
		return RT_METRICS;
	if (strcmp(path, "/openapi.json") == 0)
		return RT_OPENAPI;
	if (!under(path, "/health") && !under(path, "/sessions") && !under(path, "/events") &&
	    !under(path, "/auth") && !under(path, "/cluster"))
		return RT_STATIC;
	if (strnlen(path, API_MAX_PATH + 1) > API_MAX_PATH)
		return RT_NONE;
	if (strcmp(path, "/health") == 0)
		return RT_HEALTH;
	if (strcmp(path, "/health/deep") == 0)
		return RT_HEALTH_DEEP;
	if (strcmp(path, "/health/loop") == 0)
		return RT_HEALTH_LOOP;
	if (strcmp(path, "/cluster") == 0)
		return RT_CLUSTER;
	if (strcmp(path, "/sessions") == 0)
		return RT_SESSIONS;
	if (strcmp(path, "/events") == 0)
		return RT_EVENTS;
	if (strcmp(path, "/auth/login") == 0)
		return RT_AUTH_LOGIN;
	if (strcmp(path, "/auth/logout") == 0)
		return RT_AUTH_LOGOUT;
	if (strcmp(path, "/auth/session") == 0)
		return RT_AUTH_SESSION;
	if (strncmp(path, pre, sizeof(pre) - 1) != 0)
		return RT_NONE;
	const char *seg = path + sizeof(pre) - 1;
	const char *slash = strchr(seg, '/');
	size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
	if (n == 0 || n > 3 * STORE_ID_LEN) /* each character percent-encoded at most */
		return RT_NONE;
	char enc[3 * STORE_ID_LEN + 1];
	memcpy(enc, seg, n);
	enc[n] = '\0';
	size_t dn = 0;
	char *dec = evhttp_uridecode(enc, 0, &dn);
	if (dec == NULL || dn == 0 || dn > STORE_ID_LEN || !store__id_valid(dec, dn)) {
		*bad_id = true;
		snprintf(id, STORE_ID_LEN + 1, "-");
	} else {
		memcpy(id, dec, dn);
		id[dn] = '\0';
	}
	free(dec);
	if (slash == NULL)
		return RT_SESSION;
	if (strcmp(slash, "/qr") == 0)
		return RT_QR;
	if (strcmp(slash, "/reconnect") == 0)
		return RT_RECONNECT;
	if (strcmp(slash, "/logout") == 0)
		return RT_LOGOUT;
	if (strcmp(slash, "/pair") == 0)
		return RT_PAIR;
	if (strcmp(slash, "/history") == 0)
		return RT_HISTORY;
	return RT_NONE;
}


/* One of the actions on a session this node holds (or a single node): on to its endpoint. */
static void
action(struct api *a, struct httpd_req *req, enum route r, const char *id)
{
	switch (r) {
	case RT_QR:
		api__session_qr(a, req, id);
		break;
	case RT_RECONNECT:
		api__session_reconnect(a, req, id);
		break;
	case RT_LOGOUT:
		api__session_logout(a, req, id);
		break;
	case RT_PAIR:
		api__session_pair(a, req, id);
		break;
	default:
		api__error(req, 500, "not an action");
		break;
	}
}

/*
 * With several nodes, an action is for the node that holds the session:
 * sup_claim finds it (its lease is claimed on the supervisor's reader thread
 * when this node does not hold it), then the action runs here, is forwarded
 * there, or is answered.
 */
struct holder_wait {
	struct api_pending *p;
	enum route r;
	char id[STORE_ID_LEN + 1];
};

static void
holder_known(void *arg, int rc, const char *owner, const char *url, const char *why)
{
	struct holder_wait *w = arg;
	struct api *a = w->p->api;
	struct httpd_req *req = w->p->req;
	enum route r = w->r;
	char id[STORE_ID_LEN + 1];
	snprintf(id, sizeof(id), "%s", w->id);
	api__pending_release(w->p);
	free(w);
	if (a == NULL || req == NULL)
		return; /* the client or the API went meanwhile */
	if (rc == 0) {
		action(a, req, r, id);
		return;
	}
	char msg[160];
	int status;
	if (rc == WG_ESTATE && api__forwarded(req)) {
		/* One hop at most: the node it came from thought this one held it. */
		snprintf(msg, sizeof(msg), "node %s holds this session now; ask again", owner);
		status = 409;
	} else if (rc == WG_ESTATE && url != NULL && a->have_fwd_key) {
		api__forward(a, req, owner, url);
		return;
	} else if (rc == WG_ESTATE && url != NULL) {
		snprintf(msg, sizeof(msg), "node %s holds this session; forwarding needs WAGATE_API_KEY set "
		                           "(the same on every node)", owner ? owner : "?");
		status = 503;
	} else if (rc == WG_ESTATE) {
		snprintf(msg, sizeof(msg), "node %s holds this session and gave no address "
		                           "(WAGATE_NODE_URL) to reach it", owner ? owner : "?");
		status = 503;
	} else if (rc == WG_ENOTFOUND) {
		snprintf(msg, sizeof(msg), "no such session");
		status = 404;
	} else if (rc == WG_ECLOSED) {
		snprintf(msg, sizeof(msg), "the server is stopping");
		status = 503;
	} else {
		log_error(id, "cannot find the session's node: %s", why);
		snprintf(msg, sizeof(msg), "database unavailable");
		status = 503;
	}
	if (r == RT_RECONNECT) /* that endpoint answers {success, message} throughout */
		api__reply(req, status, json_pack("{s:b, s:s, s:s}", "success", 0, "message", msg,
		                                  "error", msg));
	else
		api__error(req, status, msg);
}

static void
at_holder(struct api *a, struct httpd_req *req, enum route r, const char *id)
{
	struct holder_wait *w = wg_calloc(1, sizeof(*w));
	w->p = api__pending_new(a, req);
	w->r = r;
	snprintf(w->id, sizeof(w->id), "%s", id);
	/* Showing a QR code takes nothing: it only looks for where pairing runs. */
	sup_claim(a->sup, id, r != RT_QR, holder_known, w);
}

static void
on_request(struct httpd_req *req, void *arg)
{
	struct api *a = arg;
	const struct evhttp_uri *u = httpd_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	char id[STORE_ID_LEN + 1];
	bool bad_id = false;
	enum route r = path ? parse_path(path, id, &bad_id) : RT_NONE;
	httpd_req_set_tag(req, (int)r);
	if (r == RT_NONE) {
		api__error(req, 404, "no such endpoint");
		return;
	}
	const struct route_info *ri = &routes[r];
	enum httpd_method m = httpd_method(req);
	/* A request from another node is good for the actions it forwards, and nothing else. */
	if (a->node[0] != '\0' && api__forwarded(req) && r != RT_QR && r != RT_RECONNECT &&
	    r != RT_LOGOUT && r != RT_PAIR) {
		api__error(req, 401, "forwarded requests are only for actions on a session");
		return;
	}
	if (ri->auth) {
		enum api_cred cred = api__credential(a, req);
		if (cred == API_CRED_NONE) {
			api__error(req, 401, "missing or invalid API key");
			return;
		}
		/* A cookie rides along with cross-site requests; a change needs more (auth.c). */
		bool changes =
		    m != HTTPD_GET && m != HTTPD_HEAD && m != HTTPD_OPTIONS;
		if (cred == API_CRED_COOKIE && changes && !api__csrf_ok(req))
			return;
	}
	if ((ri->methods & (int)m) == 0) {
		evhttp_add_header(httpd_out_headers(req), "Allow", ri->allow);
		api__errorf(req, 405, "method %s not allowed here (allowed: %s)", httpd_method_name(m),
		            ri->allow);
		return;
	}
	if (bad_id) {
		if (r == RT_RECONNECT) /* that endpoint answers {success, message} throughout */
			api__reply(req, 404,
			           json_pack("{s:b, s:s, s:s}", "success", 0, "message", "no such session",
			                     "error", "no such session"));
		else
			api__error(req, 404, "no such session");
		return;
	}
	if (r == RT_QR || r == RT_RECONNECT || r == RT_LOGOUT || r == RT_PAIR) {
		at_holder(a, req, r, id);
		return;
	}
	switch (r) {
	case RT_HEALTH:
		api__health(a, req);
		break;
	case RT_LIVEZ:
		api__livez(a, req);
		break;
	case RT_READYZ:
		api__readyz(a, req);
		break;
	case RT_METRICS:
		api__metrics(a, req);
		break;
	case RT_OPENAPI:
		api__reply_raw(req, 200, "application/json", api__openapi, api__openapi_len);
		break;
	case RT_CLUSTER:
		api__cluster(a, req);
		break;
	case RT_HEALTH_DEEP:
		api__list(a, req, 1);
		break;
	case RT_HEALTH_LOOP:
		api__health_loop(a, req);
		break;
	case RT_SESSIONS:
		if (m == HTTPD_GET)
			api__list(a, req, 0);
		else
			api__sessions_create(a, req);
		break;
	case RT_SESSION:
		if (m == HTTPD_GET)
			api__session_get(a, req, id);
		else if (m == HTTPD_PATCH)
			api__session_patch(a, req, id);
		else
			api__session_delete(a, req, id);
		break;
	case RT_QR:
	case RT_RECONNECT:
	case RT_LOGOUT:
	case RT_PAIR:
		break; /* at_holder, above */
	case RT_HISTORY:
		api__history(a, req, id);
		break;
	case RT_EVENTS:
		api__events(a, req);
		break;
	case RT_AUTH_LOGIN:
		api__auth_login(a, req);
		break;
	case RT_AUTH_LOGOUT:
		api__auth_logout(a, req);
		break;
	case RT_AUTH_SESSION:
		api__auth_session(a, req);
		break;
	case RT_STATIC:
		api__static(a, req, path);
		break;
	case RT_NONE:
	case RT_COUNT:
		break;
	}
}

/* WAGATE_METRICS_LISTEN's server: GET /metrics, nothing else, no key (for a scraper on a private network). */
static void
on_metrics_request(struct httpd_req *req, void *arg)
{
	struct api *a = arg;
	const struct evhttp_uri *u = httpd_uri(req);
	const char *path = evhttp_uri_get_path(u);
	httpd_req_set_tag(req, RT_METRICS);
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		httpd_req_set_tag(req, RT_NONE);
		api__error(req, 404, "only /metrics is served here");
	} else if (httpd_method(req) != HTTPD_GET) {
		evhttp_add_header(httpd_out_headers(req), "Allow", "GET");
		api__error(req, 405, "method not allowed here (allowed: GET)");
	} else {
		api__metrics(a, req);
	}
}

/* ---- lifetime ---- */

int
api_start(struct event_base *base, const struct api_opts *o, struct store *st, struct sup *sup,
          struct api **out, char *err, size_t errlen)
{
	char host[256];
	uint16_t port;
	*out = NULL;
	static const uint8_t zero[32];
	bool have_key = o->api_key != NULL && o->api_key[0] != '\0';
	if (!have_key && memcmp(o->api_key_sha256, zero, sizeof(zero)) == 0) {
		snprintf(err, errlen, "an API key is required");
		return WG_EINVAL;
	}
	if (o->listen == NULL || wg_addr_split(o->listen, host, sizeof(host), &port)) {
		snprintf(err, errlen, "API address \"%.200s\" is not host:port",
		         o->listen ? o->listen : "");
		return WG_EINVAL;
	}
	struct api *a = wg_calloc(1, sizeof(*a));
	TAILQ_INIT(&a->listing_queue);
	a->base = base;
	a->st = st;
	a->sup = sup;
	a->max_body = o->max_body ? o->max_body : API_DEFAULT_MAX_BODY;
	a->max_headers = o->max_headers ? o->max_headers : API_DEFAULT_MAX_HEADERS;
	a->started_mono_ms = o->started_mono_ms ? o->started_mono_ms : wg_now_ms();
	if (!have_key) {
		memcpy(a->key_digest, o->api_key_sha256, sizeof(a->key_digest));
	} else if (!digest(o->api_key, strlen(o->api_key), a->key_digest)) {
		snprintf(err, errlen, "SHA-256 is not available");
		free(a);
		return WG_EINVAL;
	}
	a->cookie_secure = o->cookie_secure;
	a->lag = o->lag;
	a->dns = o->dns;
	if (have_key) {
		static const char label[] = "wagate: requests forwarded between nodes";
		wa_crypto_hmac_sha256(a->fwd_key, (const uint8_t *)o->api_key, strlen(o->api_key),
		                      (const uint8_t *)label, sizeof(label) - 1);
		a->have_fwd_key = true;
	}
	if (sup != NULL) {
		struct sup_cluster_info ci;
		sup_cluster_info(sup, &ci);
		if (ci.enabled)
			snprintf(a->node, sizeof(a->node), "%s", ci.node);
	}
	api__auth_init(a, o->signin_key);
	api__static_init(a, o->web_root);
	if (api__events_init(a, o) != 0) {
		snprintf(err, errlen, "no randomness for the event stream's epoch");
		api__auth_free(a);
		free(a->web_root);
		free(a);
		return WG_EINVAL;
	}
	struct httpd_opts ho = {
	    .max_headers = a->max_headers,
	    .max_body = a->max_body,
	    .max_conns = o->max_conns,
	    .request_ms = o->request_ms,
	    .idle_ms = API_TIMEOUT_S * 1000,
	    .on_request = on_request,
	    .arg = a,
	};
	a->http = httpd_new(base, &ho, host, port, err, errlen);
	if (a->http == NULL) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, " (another address: WAGATE_LISTEN or --listen)");
		api_free(a);
		return WG_EIO;
	}
	a->port = httpd_port(a->http);
	if (o->metrics_listen != NULL && o->metrics_listen[0] != '\0') {
		char mhost[256];
		uint16_t mport;
		if (wg_addr_split(o->metrics_listen, mhost, sizeof(mhost), &mport)) {
			snprintf(err, errlen, "metrics address \"%.200s\" is not host:port",
			         o->metrics_listen);
			api_free(a);
			return WG_EINVAL;
		}
		struct httpd_opts mo = {.max_conns = 16, .on_request = on_metrics_request, .arg = a};
		a->metrics_http = httpd_new(base, &mo, mhost, mport, err, errlen);
		if (a->metrics_http == NULL) {
			size_t n = strlen(err);
			snprintf(err + n, errlen - n, " (WAGATE_METRICS_LISTEN)");
			api_free(a);
			return WG_EIO;
		}
		log_info("api", "metrics on http://%s:%d/metrics (no key)", mhost,
		         httpd_port(a->metrics_http));
	}
	log_info("api", "listening on %s:%d", host, a->port);
	*out = a;
	return 0;
}

int
api_port(const struct api *a)
{
	return a->port;
}

void
api_set_hook(struct api *a, const struct hook *h)
{
	a->hook = h;
}

void
api_http_stats(const struct api *a, struct httpd_stats *out)
{
	httpd_stats(a->http, out);
}

void
api_free(struct api *a)
{
	if (a == NULL)
		return;
	/*
	 * Freeing the server closes its connections with their requests; the
	 * close callbacks of waiting requests run first and forget them. What is
	 * still waiting on the supervisor is then detached from us.
	 */
	/* No more events from the supervisor: what they would go to is going away. */
	if (a->sup && a->ev)
		sup_remove_observer(a->sup, a);
	api__listings_free(a); /* before httpd_free: they point at its connections */
	api__forwards_free(a);
	httpd_free(a->metrics_http);
	httpd_free(a->http);
	api__pending_detach_all(a);
	api__events_free(a);
	api__auth_free(a);
	free(a->web_root);
	wg_wipe(a->key_digest, sizeof(a->key_digest));
	wg_wipe(a->fwd_key, sizeof(a->fwd_key));
	free(a);
}
