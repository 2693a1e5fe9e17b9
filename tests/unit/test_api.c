/*
 * The HTTP API, in process: the server on 127.0.0.1:0 with a real SQLite store
 * in a temporary directory and a real supervisor over a fake session client
 * that the tests drive by hand. Requests go through libevent's own HTTP client
 * on the same event loop (or a raw socket, to hang up mid-request), and each
 * helper runs the loop until its answer arrived: no threads, no sleeps. The
 * supervisor's timer is not attached, so nothing happens that a test did not
 * cause.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "api/api.h"
#include "core/version.h"
#include "api/api_int.h"
#include "net/looplag.h"
#include "core/clock.h"
#include "core/err.h"
#include "store/store.h"
#include "sup/sup.h"

#define KEY "test-api-key-0123456789"
#define AUTH_VALUE "{\"format\":\"test\",\"secret\":\"s3cr3t-auth-value\"}"

/* ---- the fake client ---- */

struct sup_client {
	char id[40];
	int has_auth;
	int alive;
	int close_requested;
	int gone;
	const struct sup_client_cb *cb;
	void *arg;
};

#define MAX_CLIENTS 64
static struct {
	struct sup_client *c[MAX_CLIENTS];
	int n;
} fake;

static int
f_open(void *ctx, const char *id, const char *auth, const struct sup_client_cb *cb, void *arg,
       struct sup_client **out)
{
	assert_true(fake.n < MAX_CLIENTS);
	struct sup_client *c = calloc(1, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->has_auth = auth != NULL;
	c->cb = cb;
	c->arg = arg;
	fake.c[fake.n++] = c;
	*out = c;
	return 0;
}

static void
f_close(struct sup_client *c)
{
	c->close_requested = 1;
}

static int
f_probe(struct sup_client *c)
{
	return 0;
}

static int
f_alive(const struct sup_client *c)
{
	return c->alive;
}

static const struct sup_client_ops fake_ops = {
    .open = f_open, .close = f_close, .probe = f_probe, .alive = f_alive};

static struct sup_client *
client_of(const char *id)
{
	for (int i = fake.n - 1; i >= 0; i--)
		if (strcmp(fake.c[i]->id, id) == 0 && !fake.c[i]->gone)
			return fake.c[i];
	return NULL;
}

static void
c_open(struct sup_client *c)
{
	c->alive = 1;
	c->cb->open(c->arg, "15551234567:1@s.whatsapp.net", "Shop");
}

static void
c_close(struct sup_client *c, enum wa_close_reason r, int code)
{
	struct wa_session_close w = {.reason = r, .code = code, .text = "test close"};
	c->alive = 0;
	c->gone = 1;
	c->cb->closed(c->arg, &w);
}

/* ---- fixture ---- */

struct fx {
	char dir[64];
	struct event_base *base;
	struct store *st;
	struct sup *sup;
	struct api *api;
	int port;
	struct api_opts opts; /* what start_api uses; tests change it and restart */
};

static void
start_api(struct fx *f)
{
	char err[256];
	f->opts.listen = "127.0.0.1:0";
	f->opts.api_key = KEY;
	assert_int_equal(api_start(f->base, &f->opts, f->st, f->sup, &f->api, err, sizeof(err)), 0);
	f->port = api_port(f->api);
	assert_true(f->port > 0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/wagate-api-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char url[128], err[256];
	snprintf(url, sizeof(url), "sqlite:%s/db", f->dir);
	assert_int_equal(store_open(url, &f->st, err, sizeof(err)), 0);
	int applied;
	assert_int_equal(store_migrate(f->st, &applied), 0);
	memset(&fake, 0, sizeof(fake));
	struct sup_config cfg;
	sup_config_defaults(&cfg);
	cfg.stable_after_ms = 0; /* connections here drop the instant they open: no flapping rule */
	assert_int_equal(sup_new(f->st, &cfg, &fake_ops, NULL, &f->sup), 0);
	f->base = event_base_new();
	start_api(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	api_free(f->api);
	sup_free(f->sup);
	store_close(f->st);
	event_base_free(f->base);
	wg_clock_set(NULL, NULL);
	wg_wall_clock_set(NULL, NULL);
	for (int i = 0; i < fake.n; i++)
		free(fake.c[i]);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Inserts a session straight into the store; returns its id in a ring of buffers. */
static const char *
add_session(struct fx *f, int auth, const char *status)
{
	static char ids[8][40];
	static int k;
	struct store_session s;
	store_session_init(&s);
	s.auth_state = auth ? (char *)AUTH_VALUE : NULL;
	s.phone_number = auth ? (char *)"15551234567" : NULL;
	snprintf(s.connection_status, sizeof(s.connection_status), "%s", status);
	assert_int_equal(store_insert(f->st, &s), 0);
	char *out = ids[k++ % 8];
	snprintf(out, 40, "%s", s.id);
	free(s.session_name); /* store_insert filled it in */
	/* Known to the supervisor, as after its start or a monitor pass. */
	assert_int_equal(sup_learn(f->sup, out), 0);
	return out;
}

/* ---- the HTTP client ---- */

struct resp {
	int done;
	int status;
	char *body;
	size_t len;
	json_t *json;
	char ctype[64], allow[64], location[80], cookie[256], cache[64], retry[16], link[256];
	struct evhttp_connection *conn;
};

static void
copy_header(struct evhttp_request *req, const char *name, char *out, size_t n)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
	snprintf(out, n, "%s", v ? v : "");
}

static void
on_resp(struct evhttp_request *req, void *arg)
{
	struct resp *r = arg;
	r->done = 1;
	if (req == NULL || evhttp_request_get_response_code(req) == 0) {
		r->status = -1;
		return;
	}
	r->status = evhttp_request_get_response_code(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	r->body = calloc(1, len + 1);
	r->len = len;
	evbuffer_remove(in, r->body, len);
	r->json = json_loadb(r->body, len, 0, NULL);
	copy_header(req, "Content-Type", r->ctype, sizeof(r->ctype));
	copy_header(req, "Allow", r->allow, sizeof(r->allow));
	copy_header(req, "Location", r->location, sizeof(r->location));
	copy_header(req, "Set-Cookie", r->cookie, sizeof(r->cookie));
	copy_header(req, "Cache-Control", r->cache, sizeof(r->cache));
	copy_header(req, "Retry-After", r->retry, sizeof(r->retry));
	copy_header(req, "Link", r->link, sizeof(r->link));
}

/* Starts a request with more headers: a NULL-terminated list of name, value pairs (or NULL). */
static struct resp *
start_h(struct fx *f, enum evhttp_cmd_type m, const char *path, const char *key, const char *body,
        const char *const *hdrs)
{
	struct resp *r = calloc(1, sizeof(*r));
	r->conn = evhttp_connection_base_new(f->base, NULL, "127.0.0.1", (uint16_t)f->port);
	struct evhttp_request *req = evhttp_request_new(on_resp, r);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", "127.0.0.1");
	if (key)
		evhttp_add_header(h, "x-api-key", key);
	for (size_t i = 0; hdrs && hdrs[i]; i += 2)
		evhttp_add_header(h, hdrs[i], hdrs[i + 1]);
	if (body) {
		char n[32];
		snprintf(n, sizeof(n), "%zu", strlen(body));
		evhttp_add_header(h, "Content-Length", n);
		evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	}
	assert_int_equal(evhttp_make_request(r->conn, req, m, path), 0);
	return r;
}

/* Starts a request; extra is one more header as "Name", "value" (or NULLs). */
static struct resp *
start(struct fx *f, enum evhttp_cmd_type m, const char *path, const char *key, const char *body,
      const char *xname, const char *xvalue)
{
	const char *h[] = {xname, xvalue, NULL};
	return start_h(f, m, path, key, body, xname ? h : NULL);
}

static void
wait_for(struct fx *f, struct resp *r)
{
	while (!r->done)
		event_base_loop(f->base, EVLOOP_ONCE);
}

static struct resp *
call(struct fx *f, enum evhttp_cmd_type m, const char *path, const char *key, const char *body)
{
	struct resp *r = start(f, m, path, key, body, NULL, NULL);
	wait_for(f, r);
	return r;
}

static void
resp_free(struct resp *r)
{
	if (r == NULL)
		return;
	evhttp_connection_free(r->conn);
	json_decref(r->json);
	free(r->body);
	free(r);
}

/* Runs the loop until the fake has seen `n` opens (the server handled a request). */
static void
wait_opens(struct fx *f, int n)
{
	while (fake.n < n)
		event_base_loop(f->base, EVLOOP_ONCE);
}

static void
assert_keys(json_t *o, const char *const *keys)
{
	assert_true(json_is_object(o));
	size_t n = 0;
	for (; keys[n]; n++)
		if (json_object_get(o, keys[n]) == NULL) {
			print_error("missing key %s\n", keys[n]);
			fail();
		}
	assert_int_equal(json_object_size(o), n);
}

static void
assert_error(struct resp *r, int status, const char *fragment)
{
	if (r->status != status)
		print_error("status %d, body %s\n", r->status, r->body ? r->body : "");
	assert_int_equal(r->status, status);
	assert_non_null(r->json);
	static const char *const k[] = {"error", NULL};
	assert_keys(r->json, k);
	const char *msg = json_string_value(json_object_get(r->json, "error"));
	assert_non_null(msg);
	if (fragment && strstr(msg, fragment) == NULL) {
		print_error("error \"%s\" lacks \"%s\"\n", msg, fragment);
		fail();
	}
}

static const char *
str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static const char *const session_keys[] = {
    "sessionId",   "sessionName", "userId",      "phoneNumber",     "connectionStatus",
    "isActive",    "autoConnect", "lastError",   "lastConnectedAt", "lastMessageAt",
    "createdAt",   "updatedAt",   "paired",      "socketAlive",     "supervisorState",
    "manualInterventionNeeded",   "nextRetryAt", NULL};

/* ---- /health ---- */

static void
test_health_shape(void **state)
{
	struct fx *f = *state;
	struct resp *r = call(f, EVHTTP_REQ_GET, "/health", NULL, NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->ctype, "application/json");
	static const char *const top[] = {"status", "timestamp", "uptime", "sessions", NULL};
	static const char *const counts[] = {"total", "connected", "connecting", "disconnected",
	                                     NULL};
	assert_keys(r->json, top);
	assert_keys(json_object_get(r->json, "sessions"), counts);
	assert_string_equal(str(r->json, "status"), "ok");
	const char *ts = str(r->json, "timestamp");
	assert_int_equal(strlen(ts), 24);
	assert_true(ts[10] == 'T' && ts[23] == 'Z');
	assert_true(json_is_integer(json_object_get(r->json, "uptime")));
	resp_free(r);

	/* A saved session that is not connected: degraded, still 200, and nothing identifying. */
	const char *id = add_session(f, 1, "disconnected");
	r = call(f, EVHTTP_REQ_GET, "/health", NULL, NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(str(r->json, "status"), "degraded");
	json_t *s = json_object_get(r->json, "sessions");
	assert_int_equal(json_integer_value(json_object_get(s, "total")), 1);
	assert_int_equal(json_integer_value(json_object_get(s, "disconnected")), 1);
	assert_null(strstr(r->body, id));
	assert_null(strstr(r->body, "15551234567"));
	resp_free(r);

	r = call(f, EVHTTP_REQ_POST, "/health", NULL, "{}");
	assert_error(r, 405, "POST");
	assert_string_equal(r->allow, "GET");
	resp_free(r);
}

/* A store whose database is unreachable: every ping fails. */
static int
down_open(struct store *st, const char *target, char *err, size_t errlen)
{
	return 0;
}

static void
down_close(struct store *st)
{
}

static int
down_ping(struct store *st)
{
	return store__fail(st, WG_EIO, "database is down");
}

static const struct store_backend down_backend = {
    .name = "down", .open = down_open, .close = down_close, .ping = down_ping};

static void
test_health_db_down(void **state)
{
	struct fx *f = *state;
	/* Swap in the unreachable store and a supervisor over it. */
	api_free(f->api);
	sup_free(f->sup);
	store_close(f->st);
	char err[256];
	assert_int_equal(store_open_backend(&down_backend, "", &f->st, err, sizeof(err)), 0);
	struct sup_config cfg;
	sup_config_defaults(&cfg);
	cfg.stable_after_ms = 0; /* connections here drop the instant they open: no flapping rule */
	assert_int_equal(sup_new(f->st, &cfg, &fake_ops, NULL, &f->sup), 0);
	start_api(f);

	struct resp *r = call(f, EVHTTP_REQ_GET, "/health", NULL, NULL);
	assert_int_equal(r->status, 503);
	assert_string_equal(str(r->json, "status"), "error");
	resp_free(r);

	r = call(f, EVHTTP_REQ_GET, "/health/deep", KEY, NULL);
	assert_int_equal(r->status, 503);
	assert_string_equal(str(r->json, "status"), "error");
	json_t *db = json_object_get(r->json, "database");
	assert_true(json_is_false(json_object_get(db, "connected")));
	assert_true(json_is_number(json_object_get(db, "latencyMs")));
	assert_int_equal(json_array_size(json_object_get(r->json, "sessions")), 0);
	resp_free(r);

	/* The probes: alive all the same (no restart for a database blip), not ready, saying why. */
	r = call(f, EVHTTP_REQ_GET, "/livez", NULL, NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(str(r->json, "status"), "alive");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/readyz", NULL, NULL);
	assert_int_equal(r->status, 503);
	assert_string_equal(str(r->json, "status"), "not_ready");
	json_t *why = json_object_get(r->json, "reasons");
	assert_true(json_array_size(why) >= 1);
	bool db_named = false;
	for (size_t i = 0; i < json_array_size(why); i++)
		db_named |= strncmp(json_string_value(json_array_get(why, i)), "database: ", 10) == 0;
	assert_true(db_named);
	resp_free(r);
}

/* The probes on a working server: live, and ready once the supervisor has started. */
static void
test_probes(void **state)
{
	struct fx *f = *state;
	struct resp *r = call(f, EVHTTP_REQ_GET, "/readyz", NULL, NULL);
	/* This fixture's supervisor is not started: its sessions are not read yet. */
	assert_int_equal(r->status, 503);
	assert_non_null(strstr(json_string_value(json_array_get(json_object_get(r->json, "reasons"), 0)),
	                       "starting"));
	resp_free(r);
	assert_int_equal(sup_start(f->sup), 0);
	r = call(f, EVHTTP_REQ_GET, "/readyz", NULL, NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(str(r->json, "status"), "ready");
	assert_null(json_object_get(r->json, "reasons"));
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/livez", NULL, NULL);
	assert_int_equal(r->status, 200);
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/livez", NULL, "{}");
	assert_int_equal(r->status, 405);
	resp_free(r);
	/* /metrics is behind the key. */
	r = call(f, EVHTTP_REQ_GET, "/metrics", NULL, NULL);
	assert_int_equal(r->status, 401);
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/metrics", KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_non_null(strstr(r->body, "wagate_build_info{version=\""));
	/* The answers so far, counted by route and code. */
	assert_non_null(strstr(r->body, "wagate_http_requests_total{route=\"/readyz\",code=\"503\"} 1\n"));
	assert_non_null(strstr(r->body, "wagate_http_requests_total{route=\"/readyz\",code=\"200\"} 1\n"));
	assert_non_null(strstr(r->body, "wagate_http_requests_total{route=\"/metrics\",code=\"401\"} 1\n"));
	resp_free(r);
}

static void
test_health_deep(void **state)
{
	struct fx *f = *state;
	struct resp *r = call(f, EVHTTP_REQ_GET, "/health/deep", NULL, NULL);
	assert_error(r, 401, "missing or invalid API key");
	resp_free(r);

	const char *id = add_session(f, 1, "disconnected");
	for (int i = 0; i < 7; i++) {
		struct store_attempt a;
		memset(&a, 0, sizeof(a));
		snprintf(a.session_id, sizeof(a.session_id), "%s", id);
		a.at = 1800000000000ll + i * 1000;
		snprintf(a.trigger, sizeof(a.trigger), "monitor:down");
		snprintf(a.action, sizeof(a.action), "reconnect");
		snprintf(a.result, sizeof(a.result), "%s", i == 6 ? "connected" : "failed");
		a.detail = i == 6 ? NULL : (char *)"test";
		assert_int_equal(store_add_attempt(f->st, &a), 0);
	}
	r = call(f, EVHTTP_REQ_GET, "/health/deep", KEY, NULL);
	assert_int_equal(r->status, 200);
	static const char *const top[] = {"status",   "timestamp", "uptime", "version",
	                                  "database", "sessions",  NULL};
	assert_keys(r->json, top);
	assert_string_equal(str(r->json, "version"), WAGATE_VERSION);
	static const char *const db[] = {"connected", "latencyMs", "pendingWrites", "error", NULL};
	assert_keys(json_object_get(r->json, "database"), db);
	assert_true(
	    json_is_true(json_object_get(json_object_get(r->json, "database"), "connected")));
	json_t *arr = json_object_get(r->json, "sessions");
	assert_int_equal(json_array_size(arr), 1);
	json_t *s = json_array_get(arr, 0);
	static const char *const sk[] = {"sessionId",
	                                 "phoneNumber",
	                                 "connectionStatus",
	                                 "lastConnectedAt",
	                                 "lastMessageAt",
	                                 "paired",
	                                 "socketAlive",
	                                 "sessionName",
	                                 "isActive",
	                                 "autoConnect",
	                                 "lastError",
	                                 "nextRetryAt",
	                                 "manualInterventionNeeded",
	                                 "recentRecoveryAttempts",
	                                 "supervisorState",
	                                 NULL};
	assert_keys(s, sk);
	assert_string_equal(str(s, "sessionId"), id);
	assert_string_equal(str(s, "phoneNumber"), "15551234567");
	assert_string_equal(str(s, "connectionStatus"), "disconnected");
	assert_true(json_is_null(json_object_get(s, "lastMessageAt")));
	assert_true(json_is_false(json_object_get(s, "socketAlive")));
	json_t *at = json_object_get(s, "recentRecoveryAttempts");
	assert_int_equal(json_array_size(at), 5);
	static const char *const ak[] = {"at", "trigger", "action", "result", "detail", NULL};
	assert_keys(json_array_get(at, 0), ak);
	/* Newest first. */
	assert_string_equal(str(json_array_get(at, 0), "result"), "connected");
	assert_true(json_is_null(json_object_get(json_array_get(at, 0), "detail")));
	assert_string_equal(str(json_array_get(at, 0), "at"), "2027-01-15T08:00:06.000Z");
	/* Credentials never leave the server. */
	assert_null(strstr(r->body, "s3cr3t"));
	assert_null(strstr(r->body, "uth"));
	resp_free(r);
}

/* ---- authentication ---- */

static void
test_auth(void **state)
{
	struct fx *f = *state;
	struct resp *r = call(f, EVHTTP_REQ_GET, "/sessions", NULL, NULL);
	assert_error(r, 401, "missing or invalid API key");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions", "test-api-key-0123456788", NULL);
	assert_error(r, 401, "missing or invalid API key");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions", KEY "x", NULL);
	assert_error(r, 401, NULL);
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions", "", NULL);
	assert_error(r, 401, NULL);
	resp_free(r);
	/* Even a wrong method on a protected path learns nothing without the key. */
	r = call(f, EVHTTP_REQ_PUT, "/sessions", NULL, "{}");
	assert_error(r, 401, NULL);
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions", KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_true(json_is_array(r->json));
	resp_free(r);

	/* A server given only the key's digest (a stored, generated key) accepts the key. */
	struct api *b;
	char err[256];
	struct api_opts o = {.listen = "127.0.0.1:0"};
	assert_int_equal(api_start(f->base, &o, f->st, f->sup, &b, err, sizeof(err)), WG_EINVAL);
	unsigned len = 0;
	assert_int_equal(EVP_Digest(KEY, strlen(KEY), o.api_key_sha256, &len, EVP_sha256(), NULL),
	                 1);
	assert_int_equal(api_start(f->base, &o, f->st, f->sup, &b, err, sizeof(err)), 0);
	int port = f->port;
	f->port = api_port(b);
	r = call(f, EVHTTP_REQ_GET, "/sessions", KEY, NULL);
	assert_int_equal(r->status, 200);
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions", "wrong", NULL);
	assert_error(r, 401, NULL);
	resp_free(r);
	f->port = port;
	api_free(b);
}

/* ---- sessions ---- */

static void
test_create_get_list(void **state)
{
	struct fx *f = *state;
	struct resp *r =
	    call(f, EVHTTP_REQ_POST, "/sessions", KEY,
	         "{\"sessionName\":\"shop\",\"userId\":\"u-1\",\"autoConnect\":false}");
	assert_int_equal(r->status, 201);
	assert_keys(r->json, session_keys);
	char id[40];
	snprintf(id, sizeof(id), "%s", str(r->json, "sessionId"));
	assert_int_equal(strlen(id), 36);
	assert_string_equal(str(r->json, "sessionName"), "shop");
	assert_string_equal(str(r->json, "userId"), "u-1");
	assert_true(json_is_false(json_object_get(r->json, "autoConnect")));
	assert_true(json_is_true(json_object_get(r->json, "isActive")));
	assert_string_equal(str(r->json, "supervisorState"), "pairing");
	assert_string_equal(str(r->json, "connectionStatus"), "qr_pending");
	assert_true(json_is_null(json_object_get(r->json, "phoneNumber")));
	assert_non_null(strstr(r->location, id));
	assert_null(strstr(r->body, "uth"));
	resp_free(r);
	/* Pairing started: one client, without credentials. */
	assert_int_equal(fake.n, 1);
	assert_string_equal(fake.c[0]->id, id);
	assert_false(fake.c[0]->has_auth);

	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, NULL);
	assert_int_equal(r->status, 201);
	assert_string_equal(str(r->json, "sessionName"), "primary");
	assert_true(json_is_null(json_object_get(r->json, "userId")));
	assert_true(json_is_true(json_object_get(r->json, "autoConnect")));
	resp_free(r);
	/* Names are unique per user: a second "primary" (or "shop" for u-1) is refused, with whose it is. */
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{}");
	assert_error(r, 409, "a session named \"primary\" already exists for this user");
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"sessionName\":\"shop\",\"userId\":\"u-1\"}");
	assert_error(r, 409, id);
	resp_free(r);
	/* The same name for another user is another session. */
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"sessionName\":\"shop\",\"userId\":\"u-2\"}");
	assert_int_equal(r->status, 201);
	resp_free(r);

	char path[80];
	snprintf(path, sizeof(path), "/sessions/%s", id);
	r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_keys(r->json, session_keys);
	assert_string_equal(str(r->json, "sessionId"), id);
	resp_free(r);

	add_session(f, 1, "disconnected");
	r = call(f, EVHTTP_REQ_GET, "/sessions", KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_int_equal(json_array_size(r->json), 4);
	int found = 0;
	for (size_t i = 0; i < 4; i++) {
		assert_keys(json_array_get(r->json, i), session_keys);
		found += strcmp(str(json_array_get(r->json, i), "sessionId"), id) == 0;
	}
	assert_int_equal(found, 1);
	assert_null(strstr(r->body, "s3cr3t"));
	assert_null(strstr(r->body, "uth"));
	resp_free(r);

	/* Bad bodies name what is wrong. */
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"sessionName\":5}");
	assert_error(r, 400, "sessionName");
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"userId\":true}");
	assert_error(r, 400, "userId");
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"autoConnect\":\"yes\"}");
	assert_error(r, 400, "autoConnect");
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"authState\":\"x\"}");
	assert_error(r, 400, "unknown field \"authState\"");
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"sessionName\":\"\"}");
	assert_error(r, 400, "sessionName");
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"sessionName\":\"a\\u0001b\"}");
	assert_error(r, 400, "sessionName");
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"sessionName\":\"a\\u0000b\"}");
	assert_error(r, 400, NULL); /* jansson refuses NUL in strings */
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"sessionName\": ");
	assert_error(r, 400, "malformed JSON");
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "[1,2]");
	assert_error(r, 400, "JSON object");
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"userId\":\"a\",\"userId\":\"b\"}");
	assert_error(r, 400, "malformed JSON");
	resp_free(r);
	assert_int_equal(fake.n, 3); /* none of those created anything (the third is u-2's "shop") */
}

/* Rows the web app made with ids of its own (a cuid, an integer): addressed by them, URL-encoded. */
static void
test_foreign_ids(void **state)
{
	struct fx *f = *state;
	const char *ids[] = {"ckx1q2w3e0000abcd1234efgh", "42", "a.b_c~d:e@f"};
	for (size_t i = 0; i < 3; i++) {
		struct store_session s;
		store_session_init(&s);
		snprintf(s.id, sizeof(s.id), "%s", ids[i]);
		s.session_name = (char *)"shop";
		s.user_id = (char *)ids[i];
		assert_int_equal(store_insert(f->st, &s), 0);
	}
	struct resp *r = call(f, EVHTTP_REQ_GET, "/sessions/ckx1q2w3e0000abcd1234efgh", KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(str(r->json, "sessionId"), "ckx1q2w3e0000abcd1234efgh");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions/42", KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(str(r->json, "sessionId"), "42");
	resp_free(r);
	/* Percent-encoded as encodeURIComponent does; the action routes take it too. */
	r = call(f, EVHTTP_REQ_GET, "/sessions/a.b_c~d%3Ae%40f", KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(str(r->json, "sessionId"), "a.b_c~d:e@f");
	resp_free(r);
	r = call(f, EVHTTP_REQ_PATCH, "/sessions/%34%32", KEY, "{\"isActive\":false}");
	assert_int_equal(r->status, 200);
	assert_true(json_is_false(json_object_get(r->json, "isActive")));
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions/42/history", KEY, NULL);
	assert_int_equal(r->status, 200);
	resp_free(r);
	/* What cannot be an id: 404 like an unknown one. */
	const char *bad[] = {"/sessions/a%20b", "/sessions/%00x", "/sessions/%0A",
			     "/sessions/0123456789012345678901234567890123456789"};
	for (size_t i = 0; i < 4; i++) {
		r = call(f, EVHTTP_REQ_GET, bad[i], KEY, NULL);
		if (r->status != 404)
			fail_msg("%s answered %d", bad[i], r->status);
		resp_free(r);
	}
}

static void
test_patch(void **state)
{
	struct fx *f = *state;
	const char *id = add_session(f, 1, "disconnected");
	char path[80];
	snprintf(path, sizeof(path), "/sessions/%s", id);
	struct resp *r = call(f, EVHTTP_REQ_PATCH, path, KEY, "{\"isActive\":false}");
	assert_int_equal(r->status, 200);
	assert_keys(r->json, session_keys);
	assert_true(json_is_false(json_object_get(r->json, "isActive")));
	assert_true(json_is_true(json_object_get(r->json, "autoConnect")));
	resp_free(r);
	r = call(f, EVHTTP_REQ_PATCH, path, KEY, "{\"autoConnect\":false,\"isActive\":true}");
	assert_int_equal(r->status, 200);
	assert_true(json_is_true(json_object_get(r->json, "isActive")));
	assert_true(json_is_false(json_object_get(r->json, "autoConnect")));
	resp_free(r);
	struct store_session row;
	assert_int_equal(store_get(f->st, id, &row), 0);
	assert_int_equal(row.auto_connect, 0);
	assert_int_equal(row.is_active, 1);
	assert_non_null(row.auth_state); /* untouched */
	store_session_free(&row);

	r = call(f, EVHTTP_REQ_PATCH, path, KEY, "{\"autoConnect\":1}");
	assert_error(r, 400, "autoConnect must be a boolean");
	resp_free(r);
	r = call(f, EVHTTP_REQ_PATCH, path, KEY, "{\"isActive\":null}");
	assert_error(r, 400, "isActive");
	resp_free(r);
	r = call(f, EVHTTP_REQ_PATCH, path, KEY, "{\"sessionName\":\"x\"}");
	assert_error(r, 400, "unknown field \"sessionName\"");
	resp_free(r);
	r = call(f, EVHTTP_REQ_PATCH, path, KEY, "{}");
	assert_error(r, 400, "nothing to change");
	resp_free(r);
	r = call(f, EVHTTP_REQ_PATCH, "/sessions/00000000-0000-4000-8000-000000000000", KEY,
	         "{\"isActive\":true}");
	assert_error(r, 404, "no such session");
	resp_free(r);
}

/*
 * With the supervisor's reader attached (as serve runs), the API's reads and
 * writes of the store run on that thread: a request waits for a database
 * whose write lock another program holds, the loop does not (/health answers
 * meanwhile), and every endpoint that touches the store still answers.
 */
static void
test_store_off_the_loop(void **state)
{
	struct fx *f = *state;
	const char *id = add_session(f, 1, "disconnected");
	char url[128], err[256], path[96], db[96];
	snprintf(url, sizeof(url), "sqlite:%s/db", f->dir);
	sup_attach(f->sup, f->base);
	assert_int_equal(sup_use_writer(f->sup, url, err, sizeof(err)), 0);

	/* Another program takes the write lock. */
	sqlite3 *other = NULL;
	snprintf(db, sizeof(db), "%s/db", f->dir);
	assert_int_equal(sqlite3_open(db, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	snprintf(path, sizeof(path), "/sessions/%s", id);
	struct resp *patch = start(f, EVHTTP_REQ_PATCH, path, KEY, "{\"autoConnect\":false}", NULL, NULL);
	struct resp *get = start(f, EVHTTP_REQ_GET, path, KEY, NULL, NULL, NULL);
	struct resp *health = start(f, EVHTTP_REQ_GET, "/health", NULL, NULL, NULL, NULL);
	wait_for(f, health);
	assert_int_equal(health->status, 200);
	/* The loop answered; the change still waits for the lock, and the read behind it. */
	assert_int_equal(patch->done, 0);
	assert_int_equal(get->done, 0);
	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	wait_for(f, patch);
	wait_for(f, get);
	assert_int_equal(patch->status, 200);
	assert_true(json_is_false(json_object_get(patch->json, "autoConnect")));
	assert_int_equal(get->status, 200);
	assert_true(json_is_false(json_object_get(get->json, "autoConnect")));
	resp_free(patch);
	resp_free(get);
	resp_free(health);

	/* A lock held past the reader's wait: 503, and the next request works again. */
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	struct resp *r = call(f, EVHTTP_REQ_PATCH, path, KEY, "{\"autoConnect\":true}");
	assert_error(r, 503, "database unavailable");
	resp_free(r);
	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);

	/* /health/deep's attempts are read on the reader too; the page is written when they are back. */
	struct store_attempt at;
	memset(&at, 0, sizeof(at));
	snprintf(at.session_id, sizeof(at.session_id), "%s", id);
	at.at = (int64_t)wg_wall_ms() - 1000;
	snprintf(at.trigger, sizeof(at.trigger), "monitor:down");
	snprintf(at.action, sizeof(at.action), "reconnect");
	snprintf(at.result, sizeof(at.result), "failed");
	assert_int_equal(store_add_attempt(f->st, &at), 0);
	r = call(f, EVHTTP_REQ_GET, "/health/deep", KEY, NULL);
	assert_int_equal(r->status, 200);
	json_t *ss = json_object_get(r->json, "sessions");
	assert_int_equal(json_array_size(ss), 1);
	json_t *att = json_object_get(json_array_get(ss, 0), "recentRecoveryAttempts");
	assert_int_equal(json_array_size(att), 1);
	assert_string_equal(str(json_array_get(att, 0), "trigger"), "monitor:down");
	resp_free(r);

	/* Every endpoint that reads or writes the store, through the reader. */
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"sessionName\":\"second\"}");
	assert_int_equal(r->status, 201);
	char id2[64];
	snprintf(id2, sizeof(id2), "%s", str(r->json, "sessionId"));
	assert_string_equal(str(r->json, "supervisorState"), "pairing");
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"sessionName\":\"second\"}");
	assert_error(r, 409, "already exists");
	resp_free(r);
	snprintf(path, sizeof(path), "/sessions/%s/history", id2);
	r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_true(json_array_size(r->json) >= 1);
	resp_free(r);
	snprintf(path, sizeof(path), "/sessions/%s/logout", id2);
	r = call(f, EVHTTP_REQ_POST, path, KEY, NULL);
	assert_int_equal(r->status, 200);
	resp_free(r);
	snprintf(path, sizeof(path), "/sessions/%s/pair", id2);
	r = call(f, EVHTTP_REQ_POST, path, KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(str(r->json, "supervisorState"), "pairing");
	resp_free(r);
	snprintf(path, sizeof(path), "/sessions/%s", id2);
	r = call(f, EVHTTP_REQ_DELETE, path, KEY, NULL);
	assert_int_equal(r->status, 204);
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_error(r, 404, "no such session");
	resp_free(r);
	snprintf(path, sizeof(path), "/sessions/%s/reconnect", id2);
	r = call(f, EVHTTP_REQ_POST, path, KEY, NULL);
	assert_int_equal(r->status, 404);
	resp_free(r);
	snprintf(path, sizeof(path), "/sessions/%s/qr", id2);
	r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_error(r, 404, "no such session");
	resp_free(r);
}

static void
test_qr(void **state)
{
	struct fx *f = *state;
	/* A saved session that is not pairing has no QR code. */
	const char *saved = add_session(f, 1, "disconnected");
	char path[96];
	snprintf(path, sizeof(path), "/sessions/%s/qr", saved);
	struct resp *r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_error(r, 404, "not pairing");
	resp_free(r);

	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"sessionName\":\"qr\"}");
	assert_int_equal(r->status, 201);
	char id[40];
	snprintf(id, sizeof(id), "%s", str(r->json, "sessionId"));
	resp_free(r);
	snprintf(path, sizeof(path), "/sessions/%s/qr", id);
	r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_error(r, 404, "no QR code yet");
	resp_free(r);

	struct sup_client *c = client_of(id);
	assert_non_null(c);
	const char *code = "2@Z3JlYXQtcXItdGV4dA==,YWJjZGVmZ2hpams=,bG1ub3BxcnN0dXY=,d3h5ejAxMjM=";
	uint64_t before = wg_wall_ms();
	c->cb->qr(c->arg, code, 60000);
	r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_int_equal(r->status, 200);
	static const char *const qk[] = {"qr", "expiresAt", NULL};
	assert_keys(r->json, qk);
	assert_string_equal(str(r->json, "qr"), code);
	char exp[32];
	wg_iso8601(exp, before + 60000);
	assert_memory_equal(str(r->json, "expiresAt"), exp, 16); /* to the minute */
	resp_free(r);

	char svgpath[120];
	snprintf(svgpath, sizeof(svgpath), "%s?format=svg", path);
	r = call(f, EVHTTP_REQ_GET, svgpath, KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->ctype, "image/svg+xml");
	assert_true(strncmp(r->body, "<svg ", 5) == 0);
	assert_non_null(strstr(r->body, "<path"));
	assert_non_null(strstr(r->body, "h1v1h-1z"));
	assert_non_null(strstr(r->body, "</svg>"));
	resp_free(r);

	snprintf(svgpath, sizeof(svgpath), "%s?format=png", path);
	r = call(f, EVHTTP_REQ_GET, svgpath, KEY, NULL);
	assert_error(r, 400, "format");
	resp_free(r);

	r = call(f, EVHTTP_REQ_POST, path, KEY, NULL);
	assert_error(r, 405, NULL);
	assert_string_equal(r->allow, "GET");
	resp_free(r);
}

static void
test_reconnect(void **state)
{
	struct fx *f = *state;
	const char *id = add_session(f, 1, "disconnected");
	char path[96];
	snprintf(path, sizeof(path), "/sessions/%s/reconnect", id);

	/* Two requests while one attempt runs: one client, both answered. */
	struct resp *a = start(f, EVHTTP_REQ_POST, path, KEY, NULL, NULL, NULL);
	wait_opens(f, 1);
	struct resp *b = start(f, EVHTTP_REQ_POST, path, KEY, "{}", NULL, NULL);
	/* The second has reached the server once a loop turn finds nothing more to read. */
	for (int i = 0; i < 50; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_false(a->done);
	assert_false(b->done);
	assert_int_equal(fake.n, 1);
	c_open(fake.c[0]);
	wait_for(f, a);
	wait_for(f, b);
	for (int i = 0; i < 2; i++) {
		struct resp *r = i ? b : a;
		assert_int_equal(r->status, 200);
		static const char *const k[] = {"success", "message", NULL};
		assert_keys(r->json, k);
		assert_true(json_is_true(json_object_get(r->json, "success")));
	}
	resp_free(a);
	resp_free(b);

	/* A failed attempt: false, with the reason. */
	const char *id2 = add_session(f, 1, "disconnected");
	snprintf(path, sizeof(path), "/sessions/%s/reconnect", id2);
	a = start(f, EVHTTP_REQ_POST, path, KEY, NULL, NULL, NULL);
	wait_opens(f, 2);
	c_close(fake.c[1], WA_CLOSE_LOGGED_OUT, 401);
	wait_for(f, a);
	assert_int_equal(a->status, 200);
	assert_true(json_is_false(json_object_get(a->json, "success")));
	assert_non_null(strstr(str(a->json, "message"), "logged out"));
	resp_free(a);

	/* Without credentials the supervisor answers at once. */
	const char *bare = add_session(f, 0, "");
	snprintf(path, sizeof(path), "/sessions/%s/reconnect", bare);
	a = call(f, EVHTTP_REQ_POST, path, KEY, NULL);
	assert_int_equal(a->status, 200);
	assert_true(json_is_false(json_object_get(a->json, "success")));
	assert_non_null(strstr(str(a->json, "message"), "credentials"));
	resp_free(a);

	/* Refusals answer in the endpoint's own shape, with "error" as everywhere else. */
	static const char *const refused[] = {"success", "message", "error", NULL};
	const char *const bad[][2] = {
	    {"/sessions/00000000-0000-4000-8000-000000000000/reconnect", NULL},
	    {"/sessions/not-a-uuid/reconnect", NULL},
	    {path, "{\"force\":true}"},
	    {path, "[1]"},
	    {path, "{not json"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = call(f, EVHTTP_REQ_POST, bad[i][0], KEY, bad[i][1]);
		assert_int_equal(a->status, i < 2 ? 404 : 400);
		assert_keys(a->json, refused);
		assert_true(json_is_false(json_object_get(a->json, "success")));
		assert_non_null(strstr(str(a->json, "message"), i < 2 ? "no such session" : "no body"));
		resp_free(a);
	}
	a = call(f, EVHTTP_REQ_POST, path, KEY, "{}");
	assert_int_equal(a->status, 200);
	resp_free(a);
	a = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_error(a, 405, NULL);
	assert_string_equal(a->allow, "POST");
	resp_free(a);
}

/* Opens a raw TCP connection to the API and sends text. */
static int
raw_send(struct fx *f, const char *text)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

static void
test_reconnect_client_gone(void **state)
{
	struct fx *f = *state;
	const char *id = add_session(f, 1, "disconnected");
	char req[256];
	snprintf(req, sizeof(req),
	         "POST /sessions/%s/reconnect HTTP/1.1\r\nHost: x\r\nx-api-key: " KEY
	         "\r\nContent-Length: 0\r\n\r\n",
	         id);
	int fd = raw_send(f, req);
	wait_opens(f, 1);
	close(fd); /* the client gives up while the attempt runs */
	for (int i = 0; i < 20; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	c_open(fake.c[0]); /* the outcome arrives for a request nobody waits for */
	for (int i = 0; i < 20; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);

	/* The server still answers. */
	struct resp *r = call(f, EVHTTP_REQ_GET, "/health", NULL, NULL);
	assert_int_equal(r->status, 200);
	resp_free(r);

	/* The API stops while a reconnect waits; the outcome comes afterwards. */
	const char *id2 = add_session(f, 1, "disconnected");
	char path[96];
	snprintf(path, sizeof(path), "/sessions/%s/reconnect", id2);
	r = start(f, EVHTTP_REQ_POST, path, KEY, NULL, NULL, NULL);
	wait_opens(f, 2);
	api_free(f->api);
	f->api = NULL;
	c_open(fake.c[1]);
	wait_for(f, r); /* the client sees the connection close */
	assert_int_equal(r->status, -1);
	resp_free(r);

	/* And a waiter still held by the supervisor when it is freed (teardown) is harmless too. */
	start_api(f);
	const char *id3 = add_session(f, 1, "disconnected");
	snprintf(req, sizeof(req),
	         "POST /sessions/%s/reconnect HTTP/1.1\r\nHost: x\r\nx-api-key: " KEY
	         "\r\nContent-Length: 0\r\n\r\n",
	         id3);
	fd = raw_send(f, req);
	wait_opens(f, 3);
	api_free(f->api);
	f->api = NULL;
	close(fd);
}

static void
test_logout_delete(void **state)
{
	struct fx *f = *state;
	const char *id = add_session(f, 1, "disconnected");
	char path[96];
	snprintf(path, sizeof(path), "/sessions/%s/logout", id);
	struct resp *r = call(f, EVHTTP_REQ_POST, path, KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_true(json_is_true(json_object_get(r->json, "success")));
	resp_free(r);
	struct store_session row;
	assert_int_equal(sup_flush(f->sup), 0); /* the row follows memory (written behind) */
	assert_int_equal(store_get(f->st, id, &row), 0);
	assert_null(row.auth_state);
	assert_string_equal(row.connection_status, "logged_out");
	store_session_free(&row);

	snprintf(path, sizeof(path), "/sessions/%s", id);
	r = call(f, EVHTTP_REQ_DELETE, path, KEY, NULL);
	assert_int_equal(r->status, 204);
	assert_true(r->body == NULL || r->body[0] == '\0');
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_error(r, 404, "no such session");
	resp_free(r);
	r = call(f, EVHTTP_REQ_DELETE, path, KEY, NULL);
	assert_error(r, 404, "no such session");
	resp_free(r);
	assert_int_equal(store_get(f->st, id, &row), WG_ENOTFOUND);

	/* Deleting a session that is pairing closes its client. */
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, NULL);
	char pid[40];
	snprintf(pid, sizeof(pid), "%s", str(r->json, "sessionId"));
	resp_free(r);
	snprintf(path, sizeof(path), "/sessions/%s", pid);
	r = call(f, EVHTTP_REQ_DELETE, path, KEY, NULL);
	assert_int_equal(r->status, 204);
	resp_free(r);
	struct sup_client *c = client_of(pid);
	assert_non_null(c);
	assert_true(c->close_requested);
	c_close(c, WA_CLOSE_CLOSED_BY_US, 0);
}

static void
test_bad_requests(void **state)
{
	struct fx *f = *state;
	/* Outside the API a path is the dashboard's; this fixture has none built. */
	struct resp *r = call(f, EVHTTP_REQ_GET, "/nope", KEY, NULL);
	assert_error(r, 404, "dashboard not built");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/auth/nope", KEY, NULL);
	assert_error(r, 404, "no such endpoint");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions/", KEY, NULL);
	assert_error(r, 404, NULL);
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions/00000000-0000-4000-8000-000000000000/extra", KEY,
	         NULL);
	assert_error(r, 404, "no such endpoint");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions/00000000-0000-4000-8000-0000000000000", KEY, NULL);
	assert_error(r, 404, NULL); /* 37 characters */
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions/abc", KEY, NULL);
	assert_error(r, 404, "no such session");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions/00000000-0000-4000-8000-000000000000", KEY, NULL);
	assert_error(r, 404, "no such session");
	resp_free(r);
	r = call(f, EVHTTP_REQ_PUT, "/sessions", KEY, "{}");
	assert_error(r, 405, "PUT");
	assert_string_equal(r->allow, "GET, POST");
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/sessions/00000000-0000-4000-8000-000000000000", KEY, "{}");
	assert_error(r, 405, NULL);
	assert_string_equal(r->allow, "GET, PATCH, DELETE");
	resp_free(r);

	/* A body over 64 KiB: 413, in JSON. */
	size_t big = 100 * 1024;
	char *body = malloc(big + 1);
	memset(body, ' ', big);
	body[0] = '{';
	body[big - 1] = '}';
	body[big] = '\0';
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, body);
	assert_error(r, 413, "larger than 65536");
	resp_free(r);
	free(body);

	/* Headers over 8 KiB: 431, in JSON. */
	char *hv = malloc(10 * 1024 + 1);
	memset(hv, 'a', 10 * 1024);
	hv[10 * 1024] = '\0';
	r = start(f, EVHTTP_REQ_GET, "/health", NULL, NULL, "X-Filler", hv);
	wait_for(f, r);
	assert_error(r, 431, NULL);
	resp_free(r);
	free(hv);
	assert_int_equal(fake.n, 0);
}

/* ---- GET /events ---- */

/* A loop guard: tests wait for what the server sends, but never forever. */
static int timed_out;

static void
on_guard(evutil_socket_t fd, short what, void *arg)
{
	timed_out = 1;
}

/* Runs the loop until *flag is set (or, with n, until *count >= n); fails after 5 s. */
static void
loop_until(struct fx *f, const int *flag, const size_t *count, size_t n)
{
	timed_out = 0;
	struct event *guard = evtimer_new(f->base, on_guard, NULL);
	struct timeval tv = {5, 0};
	evtimer_add(guard, &tv);
	while (!timed_out && !(flag ? *flag : *count >= n))
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(guard);
	assert_false(timed_out);
}

/* Turns the loop a few times without blocking: whatever is ready is delivered. */
static void
spin(struct fx *f)
{
	for (int i = 0; i < 50; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

struct sse_ev {
	char id[24];   /* "" when the frame has no id */
	char name[24]; /* "" for a comment */
	json_t *data;
};

#define SSE_MAX 2048
struct sse {
	struct evhttp_connection *conn;
	int status, done;
	char ctype[64], cache[64];
	char buf[1 << 20];
	size_t len;
	struct sse_ev ev[SSE_MAX];
	size_t n; /* frames parsed */
};

/* Splits what arrived into frames ("\n\n"-terminated blocks). */
static void
sse_parse(struct sse *s)
{
	char *end;
	while ((end = strstr(s->buf, "\n\n")) != NULL) {
		*end = '\0';
		assert_true(s->n < SSE_MAX);
		struct sse_ev *e = &s->ev[s->n++];
		memset(e, 0, sizeof(*e));
		for (char *line = s->buf; line && *line;) {
			char *nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			if (strncmp(line, "id: ", 4) == 0)
				snprintf(e->id, sizeof(e->id), "%s", line + 4);
			else if (strncmp(line, "event: ", 7) == 0)
				snprintf(e->name, sizeof(e->name), "%s", line + 7);
			else if (strncmp(line, "data: ", 6) == 0)
				e->data = json_loads(line + 6, 0, NULL);
			line = nl ? nl + 1 : NULL;
		}
		size_t used = (size_t)(end + 2 - s->buf);
		memmove(s->buf, end + 2, s->len - used + 1);
		s->len -= used;
	}
}

static void
sse_chunk(struct evhttp_request *req, void *arg)
{
	struct sse *s = arg;
	s->status = evhttp_request_get_response_code(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	assert_true(s->len + n < sizeof(s->buf));
	evbuffer_remove(in, s->buf + s->len, n);
	s->len += n;
	s->buf[s->len] = '\0';
	sse_parse(s);
}

static void
sse_done(struct evhttp_request *req, void *arg)
{
	struct sse *s = arg;
	s->done = 1;
	if (req == NULL)
		return;
	s->status = evhttp_request_get_response_code(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	if (n && s->len + n < sizeof(s->buf)) {
		evbuffer_remove(in, s->buf + s->len, n);
		s->len += n;
		s->buf[s->len] = '\0';
	}
}

/* Opens GET /events with the key (or NULL) and more headers (pairs, NULL-terminated). */
static struct sse *
sse_open(struct fx *f, const char *key, const char *const *hdrs)
{
	struct sse *s = calloc(1, sizeof(*s));
	s->conn = evhttp_connection_base_new(f->base, NULL, "127.0.0.1", (uint16_t)f->port);
	struct evhttp_request *req = evhttp_request_new(sse_done, s);
	evhttp_request_set_chunked_cb(req, sse_chunk);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", "127.0.0.1");
	if (key)
		evhttp_add_header(h, "x-api-key", key);
	for (size_t i = 0; hdrs && hdrs[i]; i += 2)
		evhttp_add_header(h, hdrs[i], hdrs[i + 1]);
	assert_int_equal(evhttp_make_request(s->conn, req, EVHTTP_REQ_GET, "/events"), 0);
	return s;
}

static void
sse_wait(struct fx *f, struct sse *s, size_t n)
{
	loop_until(f, NULL, &s->n, n);
}

/* Hangs up (the server notices at once: it keeps reading) and frees the client's side. */
static void
sse_close(struct sse *s)
{
	if (s == NULL)
		return;
	evhttp_connection_free(s->conn);
	for (size_t i = 0; i < s->n; i++)
		json_decref(s->ev[i].data);
	free(s);
}

static void
wait_streams(struct fx *f, size_t n)
{
	timed_out = 0;
	struct event *guard = evtimer_new(f->base, on_guard, NULL);
	struct timeval tv = {5, 0};
	evtimer_add(guard, &tv);
	while (!timed_out && api_event_streams(f->api) != n)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(guard);
	assert_int_equal(api_event_streams(f->api), n);
}

static uint64_t
ev_id(const struct sse_ev *e)
{
	assert_true(e->id[0] != '\0');
	return strtoull(e->id, NULL, 10);
}

/*
 * Toggles autoConnect through the API: for a session without credentials
 * (nothing for the supervisor to do) that is one session event, nothing else.
 */
static void
toggle(struct fx *f, const char *id, int on)
{
	char path[80];
	snprintf(path, sizeof(path), "/sessions/%s", id);
	struct resp *r = call(f, EVHTTP_REQ_PATCH, path, KEY,
	                      on ? "{\"autoConnect\":true}" : "{\"autoConnect\":false}");
	assert_int_equal(r->status, 200);
	resp_free(r);
}

static void
test_events_snapshot_and_live(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, 1, "disconnected");
	const char *b = add_session(f, 0, "");
	struct resp *r = call(f, EVHTTP_REQ_GET, "/events", NULL, NULL);
	assert_error(r, 401, "missing or invalid API key");
	resp_free(r);

	struct sse *s = sse_open(f, KEY, NULL);
	sse_wait(f, s, 4);
	assert_int_equal(s->status, 200);
	wait_streams(f, 1);
	/* hello, then the snapshot without ids: health and one session each. */
	assert_string_equal(s->ev[0].name, "hello");
	assert_string_equal(s->ev[0].id, "");
	static const char *const hk[] = {"epoch", "lastId", "replay", NULL};
	assert_keys(s->ev[0].data, hk);
	assert_int_equal(strlen(str(s->ev[0].data, "epoch")), 32);
	assert_true(json_is_false(json_object_get(s->ev[0].data, "replay")));
	uint64_t last = (uint64_t)json_integer_value(json_object_get(s->ev[0].data, "lastId"));
	assert_true(last > 1000000000000000ull); /* starts at the process's start in µs */
	assert_string_equal(s->ev[1].name, "health");
	static const char *const top[] = {"status", "timestamp", "uptime", "sessions", NULL};
	assert_keys(s->ev[1].data, top);
	assert_string_equal(str(s->ev[1].data, "status"), "degraded");
	for (int i = 2; i < 4; i++) {
		assert_string_equal(s->ev[i].name, "session");
		assert_string_equal(s->ev[i].id, "");
		assert_keys(s->ev[i].data, session_keys);
	}
	/* Created in the same millisecond: either order. */
	assert_true((strcmp(str(s->ev[2].data, "sessionId"), a) == 0 &&
	             strcmp(str(s->ev[3].data, "sessionId"), b) == 0) ||
	            (strcmp(str(s->ev[2].data, "sessionId"), b) == 0 &&
	             strcmp(str(s->ev[3].data, "sessionId"), a) == 0));
	assert_null(strstr(s->buf, "s3cr3t"));

	/* A state change reaches the stream as an event with the next id, in the same loop turn. */
	char path[96];
	snprintf(path, sizeof(path), "/sessions/%s/reconnect", a);
	r = start(f, EVHTTP_REQ_POST, path, KEY, NULL, NULL, NULL);
	sse_wait(f, s, 5);
	assert_string_equal(s->ev[4].name, "session");
	assert_int_equal(ev_id(&s->ev[4]), last + 1);
	assert_string_equal(str(s->ev[4].data, "sessionId"), a);
	assert_string_equal(str(s->ev[4].data, "supervisorState"), "connecting");
	assert_string_equal(str(s->ev[4].data, "connectionStatus"), "connecting");
	assert_keys(s->ev[4].data, session_keys);
	c_open(fake.c[0]);
	wait_for(f, r);
	resp_free(r);
	sse_wait(f, s, 6);
	assert_int_equal(ev_id(&s->ev[5]), last + 2);
	assert_string_equal(str(s->ev[5].data, "connectionStatus"), "connected");
	assert_true(json_is_true(json_object_get(s->ev[5].data, "socketAlive")));
	assert_true(json_is_string(json_object_get(s->ev[5].data, "lastConnectedAt")));
	/* Then /health changed (every counted session connected): one health event. */
	sse_wait(f, s, 7);
	assert_string_equal(s->ev[6].name, "health");
	assert_int_equal(ev_id(&s->ev[6]), last + 3);
	assert_string_equal(str(s->ev[6].data, "status"), "ok");
	assert_keys(s->ev[6].data, top);

	/* A change of flags and a deletion are pushed too. */
	toggle(f, b, 0);
	sse_wait(f, s, 8);
	assert_string_equal(s->ev[7].name, "session");
	assert_true(json_is_false(json_object_get(s->ev[7].data, "autoConnect")));
	snprintf(path, sizeof(path), "/sessions/%s", b);
	r = call(f, EVHTTP_REQ_DELETE, path, KEY, NULL);
	assert_int_equal(r->status, 204);
	resp_free(r);
	sse_wait(f, s, 9);
	assert_string_equal(s->ev[8].name, "deleted");
	assert_string_equal(str(s->ev[8].data, "sessionId"), b);
	assert_int_equal(ev_id(&s->ev[8]), ev_id(&s->ev[7]) + 1);
	sse_close(s);
	wait_streams(f, 0);
}

static void
test_events_qr_and_ping(void **state)
{
	struct fx *f = *state;
	api_free(f->api);
	f->opts.ping_ms = 20;
	start_api(f);
	struct sse *s = sse_open(f, KEY, NULL);
	sse_wait(f, s, 2); /* hello, health; no sessions */
	struct resp *r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, NULL);
	assert_int_equal(r->status, 201);
	char id[40];
	snprintf(id, sizeof(id), "%s", str(r->json, "sessionId"));
	resp_free(r);
	sse_wait(f, s, 3);
	assert_string_equal(s->ev[2].name, "session");
	assert_string_equal(str(s->ev[2].data, "supervisorState"), "pairing");
	struct sup_client *c = client_of(id);
	c->cb->qr(c->arg, "2@abc,def,ghi,jkl", 60000);
	sse_wait(f, s, 4);
	assert_string_equal(s->ev[3].name, "qr");
	static const char *const qk[] = {"sessionId", "qr", "expiresAt", NULL};
	assert_keys(s->ev[3].data, qk);
	assert_string_equal(str(s->ev[3].data, "qr"), "2@abc,def,ghi,jkl");
	assert_string_equal(str(s->ev[3].data, "sessionId"), id);
	assert_int_equal(ev_id(&s->ev[3]), ev_id(&s->ev[2]) + 1);
	/* The keep-alive comment: a frame with neither event nor data. */
	size_t n = s->n;
	sse_wait(f, s, n + 1);
	assert_string_equal(s->ev[n].name, "");
	assert_null(s->ev[n].data);
	sse_close(s);
	wait_streams(f, 0);
}

static void
test_events_replay_and_reset(void **state)
{
	struct fx *f = *state;
	api_free(f->api);
	f->opts.event_ring = 4;
	start_api(f);
	const char *a = add_session(f, 0, "");
	struct sse *s = sse_open(f, KEY, NULL);
	sse_wait(f, s, 3);
	toggle(f, a, 0);
	sse_wait(f, s, 4);
	char seen[24];
	snprintf(seen, sizeof(seen), "%s", s->ev[3].id);
	sse_close(s);
	wait_streams(f, 0);

	/* Missed while away: exactly those, in order, after a hello that says so. */
	toggle(f, a, 1);
	toggle(f, a, 0);
	const char *const h1[] = {"Last-Event-ID", seen, NULL};
	s = sse_open(f, KEY, h1);
	sse_wait(f, s, 3);
	assert_string_equal(s->ev[0].name, "hello");
	assert_true(json_is_true(json_object_get(s->ev[0].data, "replay")));
	uint64_t first = strtoull(seen, NULL, 10);
	assert_int_equal(ev_id(&s->ev[1]), first + 1);
	assert_int_equal(ev_id(&s->ev[2]), first + 2);
	assert_true(json_is_true(json_object_get(s->ev[1].data, "autoConnect")));
	assert_true(json_is_false(json_object_get(s->ev[2].data, "autoConnect")));
	spin(f);
	assert_int_equal(s->n, 3); /* nothing else: no snapshot */
	/* Up to date: nothing to replay. */
	const char *const h2[] = {"Last-Event-ID", s->ev[2].id, NULL};
	struct sse *t = sse_open(f, KEY, h2);
	sse_wait(f, t, 1);
	spin(f);
	assert_int_equal(t->n, 1);
	assert_true(json_is_true(json_object_get(t->ev[0].data, "replay")));
	sse_close(t);
	sse_close(s);
	wait_streams(f, 0);

	/* Older than the ring (4 events), from an earlier process, or not a number: reset,
	 * snapshot. */
	for (int i = 0; i < 5; i++)
		toggle(f, a, i % 2);
	const char *old[] = {seen, "12345", "x"};
	const char *why[] = {"no longer kept", "not from this", "not from this"};
	for (int k = 0; k < 3; k++) {
		const char *const h3[] = {"Last-Event-ID", old[k], NULL};
		s = sse_open(f, KEY, h3);
		sse_wait(f, s, 4);
		assert_string_equal(s->ev[0].name, "hello");
		assert_true(json_is_false(json_object_get(s->ev[0].data, "replay")));
		assert_string_equal(s->ev[1].name, "reset");
		assert_non_null(strstr(str(s->ev[1].data, "reason"), why[k]));
		assert_string_equal(s->ev[2].name, "health");
		assert_string_equal(s->ev[3].name, "session");
		assert_string_equal(str(s->ev[3].data, "sessionId"), a);
		sse_close(s);
		wait_streams(f, 0);
	}
}

static void
test_events_limit_and_cleanup(void **state)
{
	struct fx *f = *state;
	api_free(f->api);
	f->opts.max_streams = 2;
	start_api(f);
	struct sse *s1 = sse_open(f, KEY, NULL), *s2 = sse_open(f, KEY, NULL);
	sse_wait(f, s1, 2);
	sse_wait(f, s2, 2);
	wait_streams(f, 2);
	struct resp *r = call(f, EVHTTP_REQ_GET, "/events", KEY, NULL);
	assert_error(r, 503, "too many event streams");
	resp_free(r);
	/* A hang-up is noticed at once, not at the next write. */
	sse_close(s1);
	wait_streams(f, 1);
	s1 = sse_open(f, KEY, NULL);
	sse_wait(f, s1, 2);
	wait_streams(f, 2);
	/* Bytes a client sends on its stream wait unread (bounded): the stream goes on. */
	evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(s2->conn));
	assert_int_equal(write(fd, "x", 1), 1);
	size_t before = s2->n;
	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, NULL); /* an event for every stream */
	assert_int_equal(r->status, 201);
	resp_free(r);
	sse_wait(f, s2, before + 1);
	assert_int_equal(api_event_streams(f->api), 2);
	sse_close(s2);
	wait_streams(f, 1);
	/* Streams still open when the API stops are freed with it (ASan checks). */
	api_free(f->api);
	f->api = NULL;
	sse_close(s1);
}

/* ---- sign-in, cookie, CSRF ---- */

static uint64_t vnow;

static uint64_t
vmono(void *arg)
{
	return vnow;
}

/* The wall clock moving with the virtual one (sign-in tokens carry their expiry as Unix time). */
static uint64_t
vwall(void *arg)
{
	return 1796000000000ull + vnow;
}

/* "wagate_session=<64 hex>; ..." -> "wagate_session=<64 hex>" as a Cookie header value. */
static void
cookie_of(const struct resp *r, char out[128])
{
	assert_int_equal(strncmp(r->cookie, "wagate_session=", 15), 0);
	const char *semi = strchr(r->cookie, ';');
	assert_non_null(semi);
	assert_int_equal(semi - r->cookie, 15 + 64);
	snprintf(out, 128, "%.*s", (int)(semi - r->cookie), r->cookie);
}

static void
test_login_cookie_csrf(void **state)
{
	struct fx *f = *state;
	vnow = 5000000;
	wg_clock_set(vmono, NULL);
	wg_wall_clock_set(vwall, NULL);
	struct resp *r = call(f, EVHTTP_REQ_GET, "/auth/session", NULL, NULL);
	assert_int_equal(r->status, 200);
	assert_true(json_is_false(json_object_get(r->json, "authenticated")));
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, "/auth/login", NULL, "{\"apiKey\":\"wrong-wrong-wrong\"}");
	assert_error(r, 401, "invalid API key");
	assert_string_equal(r->cookie, "");
	resp_free(r);
	const char *bad[] = {"{\"apiKey\":5}", "{\"apiKey\":\"\"}", "{\"key\":\"x\"}", "{", "[]"};
	for (size_t i = 0; i < 5; i++) {
		r = call(f, EVHTTP_REQ_POST, "/auth/login", NULL, bad[i]);
		assert_error(r, 400, NULL);
		resp_free(r);
	}
	r = call(f, EVHTTP_REQ_POST, "/auth/login", NULL, "{\"apiKey\":\"" KEY "\"}");
	assert_int_equal(r->status, 204);
	char cookie[128];
	cookie_of(r, cookie);
	assert_non_null(strstr(r->cookie, "; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"));
	assert_null(strstr(r->cookie, "Secure"));
	resp_free(r);

	/* The cookie is a credential wherever x-api-key is. */
	const char *const ck[] = {"Cookie", cookie, NULL};
	r = start_h(f, EVHTTP_REQ_GET, "/sessions", NULL, NULL, ck);
	wait_for(f, r);
	assert_int_equal(r->status, 200);
	resp_free(r);
	r = start_h(f, EVHTTP_REQ_GET, "/auth/session", NULL, NULL, ck);
	wait_for(f, r);
	assert_true(json_is_true(json_object_get(r->json, "authenticated")));
	resp_free(r);
	const char *const other[] = {"Cookie", "a=b; wagate_session=00; c=d", NULL};
	r = start_h(f, EVHTTP_REQ_GET, "/sessions", NULL, NULL, other);
	wait_for(f, r);
	assert_error(r, 401, NULL);
	resp_free(r);
	struct sse *s = sse_open(f, NULL, ck);
	sse_wait(f, s, 2);
	assert_int_equal(s->status, 200);
	sse_close(s);

	/* Changes by cookie need the CSRF header, and a matching Origin when there is one. */
	r = start_h(f, EVHTTP_REQ_POST, "/sessions", NULL, "{}", ck);
	wait_for(f, r);
	assert_error(r, 403, "X-Wagate-Csrf");
	resp_free(r);
	const char *const wrong_mark[] = {"Cookie", cookie, "X-Wagate-Csrf", "yes", NULL};
	r = start_h(f, EVHTTP_REQ_POST, "/sessions", NULL, "{}", wrong_mark);
	wait_for(f, r);
	assert_error(r, 403, "X-Wagate-Csrf");
	resp_free(r);
	const char *const evil[] = {
	    "Cookie", cookie, "X-Wagate-Csrf", "1", "Origin", "http://evil.example", NULL};
	r = start_h(f, EVHTTP_REQ_POST, "/sessions", NULL, "{}", evil);
	wait_for(f, r);
	assert_error(r, 403, "Origin");
	resp_free(r);
	const char *const nul[] = {"Cookie", cookie, "X-Wagate-Csrf", "1", "Origin", "null", NULL};
	r = start_h(f, EVHTTP_REQ_DELETE, "/sessions/00000000-0000-4000-8000-000000000000", NULL,
	            NULL, nul);
	wait_for(f, r);
	assert_error(r, 403, "Origin");
	resp_free(r);
	assert_int_equal(fake.n, 0); /* nothing was created */
	const char *const same[] = {"Cookie",           cookie, "X-Wagate-Csrf", "1", "Origin",
	                            "http://127.0.0.1", NULL};
	r = start_h(f, EVHTTP_REQ_POST, "/sessions", NULL, "{}", same);
	wait_for(f, r);
	assert_int_equal(r->status, 201);
	resp_free(r);
	const char *const no_origin[] = {"Cookie", cookie, "X-Wagate-Csrf", "1", NULL};
	r = start_h(f, EVHTTP_REQ_POST, "/sessions", NULL, "{\"sessionName\":\"second\"}", no_origin);
	wait_for(f, r);
	assert_int_equal(r->status, 201);
	resp_free(r);
	/* x-api-key is not affected. */
	r = start_h(f, EVHTTP_REQ_POST, "/sessions", KEY, "{\"sessionName\":\"third\"}", evil + 2);
	wait_for(f, r);
	assert_int_equal(r->status, 201);
	resp_free(r);

	/* Logging out by cookie needs the header too; then the cookie is dead. */
	r = start_h(f, EVHTTP_REQ_POST, "/auth/logout", NULL, NULL, ck);
	wait_for(f, r);
	assert_error(r, 403, NULL);
	resp_free(r);
	r = start_h(f, EVHTTP_REQ_POST, "/auth/logout", NULL, NULL, no_origin);
	wait_for(f, r);
	assert_int_equal(r->status, 204);
	assert_non_null(strstr(r->cookie, "wagate_session=;"));
	assert_non_null(strstr(r->cookie, "Max-Age=0"));
	resp_free(r);
	r = start_h(f, EVHTTP_REQ_GET, "/sessions", NULL, NULL, ck);
	wait_for(f, r);
	assert_error(r, 401, NULL);
	resp_free(r);

	/* Tokens expire after 12 h; with Secure when TLS is in front. */
	api_free(f->api);
	f->opts.cookie_secure = 1;
	start_api(f);
	r = call(f, EVHTTP_REQ_POST, "/auth/login", NULL, "{\"apiKey\":\"" KEY "\"}");
	assert_int_equal(r->status, 204);
	assert_non_null(strstr(r->cookie, "; Secure"));
	cookie_of(r, cookie);
	resp_free(r);
	r = start_h(f, EVHTTP_REQ_GET, "/sessions", NULL, NULL, ck);
	wait_for(f, r);
	assert_int_equal(r->status, 200);
	resp_free(r);
	vnow += 43200 * 1000ull;
	r = start_h(f, EVHTTP_REQ_GET, "/sessions", NULL, NULL, ck);
	wait_for(f, r);
	assert_error(r, 401, NULL);
	resp_free(r);
	for (int i = 0; i < fake.n; i++)
		c_close(fake.c[i], WA_CLOSE_CLOSED_BY_US, 0);
}

/*
 * A sign-in outlives a restart of the server (its token is signed with the
 * key the server is given), not a change of that key; a token altered in
 * any byte, or expired, is refused.
 */
static void
test_login_survives_restart(void **state)
{
	struct fx *f = *state;
	vnow = 5000000;
	wg_clock_set(vmono, NULL);
	wg_wall_clock_set(vwall, NULL);
	static const uint8_t key1[32] = {1, 2, 3}, key2[32] = {4, 5, 6};
	api_free(f->api);
	f->opts.signin_key = key1;
	start_api(f);
	struct resp *r = call(f, EVHTTP_REQ_POST, "/auth/login", NULL, "{\"apiKey\":\"" KEY "\"}");
	assert_int_equal(r->status, 204);
	char cookie[128];
	cookie_of(r, cookie);
	resp_free(r);
	const char *ck[] = {"Cookie", cookie, NULL};
	/* Another process, the same key: still signed in. */
	api_free(f->api);
	start_api(f);
	r = start_h(f, EVHTTP_REQ_GET, "/auth/session", NULL, NULL, ck);
	wait_for(f, r);
	assert_true(json_is_true(json_object_get(r->json, "authenticated")));
	resp_free(r);
	/* Any byte of it changed: refused. */
	for (size_t i = 15; i < strlen(cookie); i += 9) {
		char bad[128];
		snprintf(bad, sizeof(bad), "%s", cookie);
		bad[i] = bad[i] == 'a' ? 'b' : 'a';
		const char *bk[] = {"Cookie", bad, NULL};
		r = start_h(f, EVHTTP_REQ_GET, "/auth/session", NULL, NULL, bk);
		wait_for(f, r);
		assert_true(json_is_false(json_object_get(r->json, "authenticated")));
		resp_free(r);
	}
	/* Another key (a new sealing key): refused. */
	api_free(f->api);
	f->opts.signin_key = key2;
	start_api(f);
	r = start_h(f, EVHTTP_REQ_GET, "/auth/session", NULL, NULL, ck);
	wait_for(f, r);
	assert_true(json_is_false(json_object_get(r->json, "authenticated")));
	resp_free(r);
	/* The first key again, 12 hours later: expired. */
	api_free(f->api);
	f->opts.signin_key = key1;
	start_api(f);
	vnow += 43200 * 1000ull;
	r = start_h(f, EVHTTP_REQ_GET, "/auth/session", NULL, NULL, ck);
	wait_for(f, r);
	assert_true(json_is_false(json_object_get(r->json, "authenticated")));
	resp_free(r);
	f->opts.signin_key = NULL;
}

static void
test_login_rate_limit(void **state)
{
	struct fx *f = *state;
	vnow = 5000000;
	wg_clock_set(vmono, NULL);
	struct resp *r;
	for (int i = 0; i < 10; i++) {
		r = call(f, EVHTTP_REQ_POST, "/auth/login", NULL,
		         "{\"apiKey\":\"guess-guess-guess\"}");
		assert_error(r, 401, NULL);
		resp_free(r);
		vnow += 1000;
	}
	/* The 11th within a minute, even with the right key. */
	r = call(f, EVHTTP_REQ_POST, "/auth/login", NULL, "{\"apiKey\":\"" KEY "\"}");
	assert_error(r, 429, "too many failed sign-ins");
	assert_string_equal(r->retry, "50");
	resp_free(r);
	/* Another address is not locked out: the guesser is, not everyone. */
	r = calloc(1, sizeof(*r));
	r->conn = evhttp_connection_base_new(f->base, NULL, "127.0.0.1", (uint16_t)f->port);
	evhttp_connection_set_local_address(r->conn, "127.0.0.2");
	struct evhttp_request *req = evhttp_request_new(on_resp, r);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evbuffer_add_printf(evhttp_request_get_output_buffer(req), "{\"apiKey\":\"%s\"}", KEY);
	assert_int_equal(evhttp_make_request(r->conn, req, EVHTTP_REQ_POST, "/auth/login"), 0);
	wait_for(f, r);
	assert_int_equal(r->status, 204);
	resp_free(r);
	/* x-api-key is not limited. */
	r = call(f, EVHTTP_REQ_GET, "/sessions", KEY, NULL);
	assert_int_equal(r->status, 200);
	resp_free(r);
	vnow += 51000;
	r = call(f, EVHTTP_REQ_POST, "/auth/login", NULL, "{\"apiKey\":\"" KEY "\"}");
	assert_int_equal(r->status, 204);
	resp_free(r);
}

/* ---- status history ---- */

static void
test_history(void **state)
{
	struct fx *f = *state;
	const char *id = add_session(f, 1, "disconnected");
	char path[96];
	snprintf(path, sizeof(path), "/sessions/%s/reconnect", id);
	struct resp *r = start(f, EVHTTP_REQ_POST, path, KEY, NULL, NULL, NULL);
	wait_opens(f, 1);
	c_open(fake.c[0]);
	wait_for(f, r);
	resp_free(r);
	c_close(fake.c[0], WA_CLOSE_TRANSIENT, 428);
	sup_run(f->sup); /* the reconnect after a drop is due at once */
	assert_int_equal(fake.n, 2);

	/* The newest changes are in memory only (written behind): the history has them anyway, without a write. */
	struct sup_health sh;
	sup_health(f->sup, &sh);
	assert_true(sh.db_pending > 0);
	snprintf(path, sizeof(path), "/sessions/%s/history", id);
	r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_true(json_is_array(r->json));
	const char *want[] = {"connecting", "connected", "disconnected", "connecting"};
	assert_int_equal(json_array_size(r->json), 4);
	static const char *const hk[] = {"at", "status", "reason", NULL};
	for (size_t i = 0; i < 4; i++) {
		json_t *e = json_array_get(r->json, i);
		assert_keys(e, hk);
		assert_string_equal(str(e, "status"), want[i]);
		assert_int_equal(strlen(str(e, "at")), 24);
	}
	assert_string_equal(str(json_array_get(r->json, 0), "reason"), "manual");
	assert_string_equal(str(json_array_get(r->json, 1), "reason"), "open");
	assert_string_equal(str(json_array_get(r->json, 2), "reason"),
	                    "connection lost: test close (transient 428); reconnecting now");
	resp_free(r);

	char q[160];
	snprintf(q, sizeof(q), "%s?since=2099-01-01T00:00:00.000Z", path);
	r = call(f, EVHTTP_REQ_GET, q, KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_int_equal(json_array_size(r->json), 0);
	resp_free(r);
	snprintf(q, sizeof(q), "%s?since=2000-01-01", path);
	r = call(f, EVHTTP_REQ_GET, q, KEY, NULL);
	assert_error(r, 400, "ISO 8601");
	resp_free(r);
	snprintf(q, sizeof(q), "%s?since=2000-01-01T00:00:00Z", path);
	r = call(f, EVHTTP_REQ_GET, q, KEY, NULL);
	assert_int_equal(json_array_size(r->json), 4);
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/sessions/00000000-0000-4000-8000-000000000000/history", KEY,
	         NULL);
	assert_error(r, 404, "no such session");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, path, NULL, NULL);
	assert_error(r, 401, NULL);
	resp_free(r);
	r = call(f, EVHTTP_REQ_POST, path, KEY, NULL);
	assert_error(r, 405, NULL);
	resp_free(r);
	c_close(fake.c[1], WA_CLOSE_CLOSED_BY_US, 0);
}

/* ---- the dashboard's files ---- */

static void
write_file(const char *dir, const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void
test_static(void **state)
{
	struct fx *f = *state;
	char web[128], sub[160], link[160];
	snprintf(web, sizeof(web), "%s/web", f->dir);
	snprintf(sub, sizeof(sub), "%s/assets", web);
	assert_int_equal(mkdir(web, 0700), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(web, "index.html", "<!doctype html><title>wagate</title>");
	write_file(web, "robots.txt", "User-agent: *\n");
	write_file(sub, "app-1234.js", "console.log(1)");
	write_file(sub, "app.css", "body{}");
	write_file(f->dir, "secret.js", "outside");
	/* A link inside the root that leads out of it. */
	snprintf(link, sizeof(link), "%s/leak.js", web);
	char target[160];
	snprintf(target, sizeof(target), "%s/secret.js", f->dir);
	assert_int_equal(symlink(target, link), 0);
	api_free(f->api);
	f->opts.web_root = web;
	start_api(f);

	struct resp *r = call(f, EVHTTP_REQ_GET, "/", NULL, NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->ctype, "text/html; charset=utf-8");
	assert_string_equal(r->cache, "no-cache");
	assert_string_equal(r->body, "<!doctype html><title>wagate</title>");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/assets/app-1234.js", NULL, NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->ctype, "text/javascript; charset=utf-8");
	assert_string_equal(r->cache, "public, max-age=31536000, immutable");
	assert_string_equal(r->body, "console.log(1)");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/assets/app.css", NULL, NULL);
	assert_string_equal(r->ctype, "text/css; charset=utf-8");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/robots.txt", NULL, NULL);
	assert_string_equal(r->ctype, "text/plain; charset=utf-8");
	assert_string_equal(r->cache, "no-cache");
	resp_free(r);
	/* Pages of the single-page app: index.html, never cached. */
	const char *pages[] = {"/sessions-page", "/session/6f1c2b0e", "/login",
	                       "/assets/deep/page"};
	for (size_t i = 0; i < 4; i++) {
		r = call(f, EVHTTP_REQ_GET, pages[i], NULL, NULL);
		assert_int_equal(r->status, 200);
		assert_string_equal(r->ctype, "text/html; charset=utf-8");
		assert_string_equal(r->cache, "no-cache");
		resp_free(r);
	}
	r = call(f, EVHTTP_REQ_HEAD, "/", NULL, NULL);
	assert_int_equal(r->status, 200);
	assert_int_equal(r->len, 0);
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/missing.js", NULL, NULL);
	assert_error(r, 404, "no such file");
	resp_free(r);
	const char *evil[] = {"/../etc/passwd",
	                      "/%2e%2e/%2e%2e/etc/passwd",
	                      "/assets/../../x.js",
	                      "/assets/%2e%2e/%2e%2e/secret.js",
	                      "/%2e%2e%2fsecret.js",
	                      "/leak.js",
	                      "/index.html%00.js",
	                      "/.hidden.js",
	                      "/assets/..%2f..%2fsecret.js",
	                      target};
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		char absolute[200];
		/* An absolute path after the first slash ("//tmp/.../secret.js") stays inside. */
		snprintf(absolute, sizeof(absolute), "%s%s", evil[i] == target ? "/" : "", evil[i]);
		r = call(f, EVHTTP_REQ_GET, absolute, NULL, NULL);
		if (r->status != 404)
			print_error("%s -> %d\n", absolute, r->status);
		assert_error(r, 404, NULL);
		assert_null(strstr(r->body, "outside"));
		resp_free(r);
	}
	r = call(f, EVHTTP_REQ_POST, "/index.html", NULL, "{}");
	assert_error(r, 405, NULL);
	assert_string_equal(r->allow, "GET, HEAD");
	resp_free(r);
	/* The API keeps its paths. */
	r = call(f, EVHTTP_REQ_GET, "/sessions", NULL, NULL);
	assert_error(r, 401, NULL);
	resp_free(r);

	/* No web root: the dashboard says how to build it, the API works. */
	api_free(f->api);
	f->opts.web_root = "/nonexistent/wagate-web";
	start_api(f);
	r = call(f, EVHTTP_REQ_GET, "/", NULL, NULL);
	assert_error(r, 404, "dashboard not built: run make");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/health", NULL, NULL);
	assert_int_equal(r->status, 200);
	resp_free(r);
}


/* ---- listings at scale: streamed pages, ?limit with Link, ?status ---- */

/*
 * /health/deep lists every session in order, each with its own newest five
 * attempts newest first (session i has 1 + i % 7 of them when it has any,
 * triggers t0, t1, ... oldest first), whichever page it falls in.
 */
static void
check_deep_pages(struct fx *f, char (*ids)[40], int n)
{
	struct resp *r = call(f, EVHTTP_REQ_GET, "/health/deep", KEY, NULL);
	assert_int_equal(r->status, 200);
	json_t *ss = json_object_get(r->json, "sessions");
	assert_int_equal(json_array_size(ss), n);
	int with = 0;
	for (int i = 0; i < n; i++) {
		json_t *s = json_array_get(ss, i);
		assert_string_equal(str(s, "sessionId"), ids[i]);
		json_t *at = json_object_get(s, "recentRecoveryAttempts");
		size_t k = json_array_size(at);
		if (k == 0)
			continue;
		with++;
		int all = 1 + i % 7;
		assert_int_equal(k, all < 5 ? all : 5);
		for (size_t j = 0; j < k; j++) {
			char want[16];
			snprintf(want, sizeof(want), "t%d", all - 1 - (int)j);
			assert_string_equal(str(json_array_get(at, j), "trigger"), want);
		}
	}
	assert_int_equal(with, 7);
	resp_free(r);
}

static void
test_list_pages(void **state)
{
	struct fx *f = *state;
	enum { N = 1203 };
	static char ids[N][40];
	/* Created in one transaction's worth of time: distinct creation times keep the order defined. */
	for (int i = 0; i < N; i++) {
		struct store_session s;
		store_session_init(&s);
		s.auth_state = (char *)AUTH_VALUE;
		s.created_at = 1800000000000ll + i;
		s.updated_at = s.created_at;
		snprintf(s.connection_status, sizeof(s.connection_status), "%s",
		         i % 3 == 0 ? "connected" : "disconnected");
		assert_int_equal(store_insert(f->st, &s), 0);
		snprintf(ids[i], sizeof(ids[i]), "%s", s.id);
		free(s.session_name);
		assert_int_equal(sup_learn(f->sup, ids[i]), 0); /* as a monitor pass would */
	}
	/* Recovery attempts on both sides of each page's edge (pages of 500). */
	static const int with_attempts[] = {0, 499, 500, 501, 999, 1000, 1202};
	for (size_t k = 0; k < sizeof(with_attempts) / sizeof(with_attempts[0]); k++)
		for (int j = 0; j < 1 + with_attempts[k] % 7; j++) {
			struct store_attempt a;
			memset(&a, 0, sizeof(a));
			snprintf(a.session_id, sizeof(a.session_id), "%s", ids[with_attempts[k]]);
			a.at = 1800000000000ll + j * 1000;
			snprintf(a.trigger, sizeof(a.trigger), "t%d", j);
			snprintf(a.action, sizeof(a.action), "reconnect");
			snprintf(a.result, sizeof(a.result), "failed");
			assert_int_equal(store_add_attempt(f->st, &a), 0);
		}
	/* Everything, oldest first, in several chunks: the same array a single answer would be. */
	struct resp *r = call(f, EVHTTP_REQ_GET, "/sessions", KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_true(json_is_array(r->json));
	assert_int_equal(json_array_size(r->json), N);
	for (int i = 0; i < N; i++)
		assert_string_equal(str(json_array_get(r->json, i), "sessionId"), ids[i]);
	resp_free(r);
	/* /health/deep, its attempts read inline, then on the reader (a page's read overlaps the chunk before). */
	check_deep_pages(f, ids, N);
	char url[128], err[256];
	snprintf(url, sizeof(url), "sqlite:%s/db", f->dir);
	sup_attach(f->sup, f->base);
	assert_int_equal(sup_use_writer(f->sup, url, err, sizeof(err)), 0);
	check_deep_pages(f, ids, N);

	/* ?limit: one page and a Link to the next, until the end. */
	char path[256];
	snprintf(path, sizeof(path), "/sessions?limit=500");
	int seen = 0, pages = 0;
	for (;;) {
		r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
		assert_int_equal(r->status, 200);
		size_t k = json_array_size(r->json);
		for (size_t i = 0; i < k; i++)
			assert_string_equal(str(json_array_get(r->json, i), "sessionId"), ids[seen + i]);
		seen += (int)k;
		pages++;
		if (r->link[0] == '\0') {
			resp_free(r);
			break;
		}
		assert_true(r->link[0] == '<');
		char *end = strchr(r->link, '>');
		assert_non_null(end);
		assert_non_null(strstr(end, "rel=\"next\""));
		*end = '\0';
		snprintf(path, sizeof(path), "%s", r->link + 1);
		resp_free(r);
	}
	assert_int_equal(seen, N);
	assert_int_equal(pages, 3);

	/* ?status keeps only that status. */
	r = call(f, EVHTTP_REQ_GET, "/sessions?status=connected", KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_int_equal(json_array_size(r->json), (N + 2) / 3);
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/health/deep?status=connected&limit=10", KEY, NULL);
	assert_int_equal(r->status, 200);
	json_t *arr = json_object_get(r->json, "sessions");
	assert_true(json_array_size(arr) <= 10);
	for (size_t i = 0; i < json_array_size(arr); i++)
		assert_string_equal(str(json_array_get(arr, i), "connectionStatus"), "connected");
	resp_free(r);

	/* Bad parameters are refused with a reason. */
	static const char *const bad[][2] = {{"/sessions?limit=0", "limit"},
	                                     {"/sessions?limit=1001", "limit"},
	                                     {"/sessions?after_id=nonsense", "go together"},
	                                     {"/sessions?status=sleeping", "status"},
	                                     {"/sessions?color=red", "color"}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = call(f, EVHTTP_REQ_GET, bad[i][0], KEY, NULL);
		assert_error(r, 400, bad[i][1]);
		resp_free(r);
	}
}

/* n sessions without credentials, one millisecond apart in creation, known to the supervisor. */
static void
add_plain_sessions(struct fx *f, int n)
{
	for (int i = 0; i < n; i++) {
		struct store_session s;
		store_session_init(&s);
		s.created_at = 1800000000000ll + i;
		s.updated_at = s.created_at;
		assert_int_equal(store_insert(f->st, &s), 0);
		free(s.session_name);
		assert_int_equal(sup_learn(f->sup, s.id), 0);
	}
}

/*
 * A /health/deep client that leaves mid-answer: once a page is written the
 * listing holds the next page with its attempts read (here at once, without
 * a reader) until the chunk is out; it goes with the connection, that page
 * freed (ASan's leak check), and the next client is answered in full.
 */
static void
test_deep_client_gone(void **state)
{
	struct fx *f = *state;
	add_plain_sessions(f, 1100);
	int fd = raw_send(f, "GET /health/deep HTTP/1.1\r\nHost: x\r\nx-api-key: " KEY "\r\n\r\n");
	/* Until the first page arrives: three pages, so the answer is not through. */
	char peek;
	while (recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
		event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(f->api->nlistings, 1);
	close(fd);
	while (f->api->nlistings > 0)
		event_base_loop(f->base, EVLOOP_ONCE);
	struct resp *r = call(f, EVHTTP_REQ_GET, "/health/deep", KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_int_equal(json_array_size(json_object_get(r->json, "sessions")), 1100);
	resp_free(r);
}

/* A client that goes away in the middle of a streamed answer costs nothing afterwards. */
static void
test_list_client_gone(void **state)
{
	struct fx *f = *state;
	add_plain_sessions(f, 1100);
	struct resp *r = start(f, EVHTTP_REQ_GET, "/sessions", KEY, NULL, NULL, NULL);
	/* A few loop turns: the answer has started, then the client leaves. */
	for (int i = 0; i < 3; i++)
		event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	evhttp_connection_free(r->conn);
	free(r->body);
	free(r);
	for (int i = 0; i < 20; i++)
		event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	/* The server still answers. */
	r = call(f, EVHTTP_REQ_GET, "/health", NULL, NULL);
	assert_int_equal(r->status, 200);
	resp_free(r);
}


/* A snapshot of many sessions goes out a page per loop turn; a change meanwhile follows it, in order. */
static void
test_events_snapshot_paged(void **state)
{
	struct fx *f = *state;
	enum { N = 1100 };
	const char *a = add_session(f, 1, "disconnected");
	for (int i = 1; i < N; i++) {
		struct store_session x;
		store_session_init(&x);
		x.created_at = 1900000000000ll + i; /* after a */
		x.updated_at = x.created_at;
		assert_int_equal(store_insert(f->st, &x), 0);
		free(x.session_name);
		assert_int_equal(sup_learn(f->sup, x.id), 0);
	}
	struct sse *s = sse_open(f, KEY, NULL);
	sse_wait(f, s, 3); /* hello, health, the first page has started */
	/* A change while the snapshot is still being sent. */
	char path[96];
	snprintf(path, sizeof(path), "/sessions/%s/reconnect", a);
	struct resp *r = start(f, EVHTTP_REQ_POST, path, KEY, NULL, NULL, NULL);
	sse_wait(f, s, 2 + N + 1);
	assert_string_equal(s->ev[0].name, "hello");
	assert_string_equal(s->ev[1].name, "health");
	size_t sessions = 0;
	for (size_t i = 2; i < 2 + N; i++) {
		assert_string_equal(s->ev[i].name, "session");
		assert_string_equal(s->ev[i].id, ""); /* the snapshot: no ids, all before any live event */
		sessions++;
	}
	assert_int_equal(sessions, N);
	assert_string_equal(str(s->ev[2].data, "sessionId"), a); /* oldest first */
	assert_true(s->ev[2 + N].id[0] != '\0');
	assert_string_equal(s->ev[2 + N].name, "session");
	assert_string_equal(str(s->ev[2 + N].data, "sessionId"), a);
	assert_string_equal(str(s->ev[2 + N].data, "supervisorState"), "connecting");
	c_open(fake.c[0]);
	wait_for(f, r);
	resp_free(r);
	sse_close(s);
}


/* The session writer's strings: JSON escapes, UTF-8 kept, bytes that are not UTF-8 replaced. */
static void
test_session_text_strings(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {NULL, "null"},
	    {"", "null"},
	    {"plain", "\"plain\""},
	    {"q\"b\\", "\"q\\\"b\\\\\""},
	    {"tab\tnl\n\x01", "\"tab\\u0009nl\\u000a\\u0001\""},
	    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
	    {"bad\xff end", "\"bad\\ufffd end\""},
	    {"cut\xe2\x82", "\"cut\\ufffd\\ufffd\""},
	    {"overlong\xc0\xaf", "\"overlong\\ufffd\\ufffd\""},
	    {"surrogate\xed\xa0\x80", "\"surrogate\\ufffd\\ufffd\\ufffd\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct evbuffer *b = evbuffer_new();
		api__json_str(b, cases[i].in);
		evbuffer_add(b, "", 1);
		const char *got = (const char *)evbuffer_pullup(b, -1);
		assert_string_equal(got, cases[i].out);
		/* And it is JSON that a parser takes. */
		json_error_t err;
		json_t *j = json_loads(got, JSON_DECODE_ANY, &err);
		assert_non_null(j);
		json_decref(j);
		evbuffer_free(b);
	}
	/* A long string grows the builder past its stack buffer. */
	char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct sup_session_view v = {.id = "id", .state = "idle", .status = "", .session_name = big};
	json_t *o = api__view_json(&v, API_SJ_FULL);
	assert_int_equal(strlen(json_string_value(json_object_get(o, "sessionName"))), sizeof(big) - 1);
	assert_true(json_is_null(json_object_get(o, "connectionStatus")));
	json_decref(o);
}


/* A callback that holds the loop, as a slow piece of work would. */
static void
on_block(evutil_socket_t fd, short what, void *arg)
{
	struct timespec ts = {0, 40 * 1000 * 1000};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Windows count whole seconds: a window of its own starts with a second of its own. */
static void
sleep_until_next_second(void)
{
	/* Just past the next second: up to 1,005 ms, so whole seconds go in tv_sec (tv_nsec stays under 10^9). */
	uint64_t wait_ms = 1000 - wg_wall_ms() % 1000 + 5;
	struct timespec ts = {(time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000 * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A callback that computes for 40 ms without sleeping. */
static void
on_spin(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 40 * 1000 * 1000L);
}

/* GET /health/loop: a 40 ms block shows as a lag of at least 30 ms, all of it the loop's own; a window after it shows none. */
static void
test_health_loop(void **state)
{
	struct fx *f = *state;
	struct resp *r = call(f, EVHTTP_REQ_GET, "/health/loop", KEY, NULL);
	assert_error(r, 404, "not measured");
	resp_free(r);
	api_free(f->api);
	struct looplag *lag = looplag_new(f->base, 5);
	assert_non_null(lag);
	f->opts.lag = lag;
	start_api(f);
	r = call(f, EVHTTP_REQ_GET, "/health/loop", NULL, NULL);
	assert_int_equal(r->status, 401);
	resp_free(r);
	/* The timer runs for a while, then one callback holds the loop for 40 ms. */
	struct event *block = evtimer_new(f->base, on_block, NULL);
	struct timeval tv = {0, 30 * 1000};
	evtimer_add(block, &tv);
	struct timeval stop = {0, 120 * 1000};
	event_base_loopexit(f->base, &stop);
	event_base_dispatch(f->base);
	event_free(block);
	r = call(f, EVHTTP_REQ_GET, "/health/loop?since=0", KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_int_equal(json_integer_value(json_object_get(r->json, "intervalMs")), 5);
	assert_true(json_real_value(json_object_get(r->json, "maxLagMs")) >= 30.0);
	assert_true(json_integer_value(json_object_get(r->json, "over10ms")) >= 1);
	/* The block is one turn of 40 ms, asleep in a system call: all of it is the loop's own. */
	assert_true(json_real_value(json_object_get(r->json, "maxTurnMs")) >= 39.0);
	assert_true(json_integer_value(json_object_get(r->json, "turnsOver10ms")) >= 1);
	assert_true(json_real_value(json_object_get(r->json, "maxOwnMs")) >= 39.0);
	assert_true(json_integer_value(json_object_get(r->json, "ownOver10ms")) >= 1);
	assert_true(json_integer_value(json_object_get(r->json, "samples")) >= 10);
	resp_free(r);
	/* A callback that computes for 40 ms, never sleeping: its CPU time, which is all of it. */
	sleep_until_next_second();
	int64_t spun_from = (int64_t)wg_wall_ms();
	struct event *spin = evtimer_new(f->base, on_spin, NULL);
	evtimer_add(spin, &tv);
	event_base_loopexit(f->base, &stop);
	event_base_dispatch(f->base);
	event_free(spin);
	char path[96];
	snprintf(path, sizeof(path), "/health/loop?since=%lld", (long long)spun_from);
	r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_true(json_real_value(json_object_get(r->json, "maxLagMs")) >= 30.0);
	assert_true(json_real_value(json_object_get(r->json, "maxTurnMs")) >= 39.0);
	/* Less than the whole turn at most by what the kernel or the hypervisor took from it. */
	assert_true(json_real_value(json_object_get(r->json, "maxOwnMs")) >= 30.0);
	resp_free(r);
	/* A window that starts after the block: nothing of it. */
	snprintf(path, sizeof(path), "/health/loop?since=%lld", (long long)wg_wall_ms() + 1000);
	r = call(f, EVHTTP_REQ_GET, path, KEY, NULL);
	assert_int_equal(r->status, 200);
	assert_int_equal(json_integer_value(json_object_get(r->json, "over10ms")), 0);
	assert_int_equal(json_integer_value(json_object_get(r->json, "turnsOver10ms")), 0);
	assert_int_equal(json_integer_value(json_object_get(r->json, "ownOver10ms")), 0);
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/health/loop?since=yesterday", KEY, NULL);
	assert_error(r, 400, "since=");
	resp_free(r);
	r = call(f, EVHTTP_REQ_GET, "/health/loop?until=1", KEY, NULL);
	assert_error(r, 400, "since=");
	resp_free(r);
	api_free(f->api);
	f->api = NULL;
	looplag_free(lag);
	f->opts.lag = NULL;
	start_api(f);
}

int
main(void)
{
	/* Answers to clients that hung up must not kill the test (the server ignores SIGPIPE too).
	 */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_session_text_strings),
	    cmocka_unit_test_setup_teardown(test_health_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_health_shape, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_health_db_down, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_health_deep, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deep_client_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_snapshot_paged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_client_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_get_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_patch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_off_the_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_ids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_qr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reconnect_client_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_logout_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_probes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_snapshot_and_live, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_qr_and_ping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_replay_and_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_limit_and_cleanup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_login_cookie_csrf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_login_rate_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_login_survives_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_history, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_static, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
