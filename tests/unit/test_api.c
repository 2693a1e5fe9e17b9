/*
 * The HTTP API, in process: the server on 127.0.0.1:0 with a real SQLite store
 * in a temporary directory and a real supervisor over a fake session client
 * that the tests drive by hand. Requests go through libevent's own HTTP client
 * on the same event loop (or a raw socket, to hang up mid-request), and each
 * helper runs the loop until its answer arrived: no threads, no sleeps. The
 * supervisor's timer is not attached, so nothing happens that a test did not
 * cause.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "api/api.h"
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
};

static void
start_api(struct fx *f)
{
	char err[256];
	struct api_opts o = {.listen = "127.0.0.1:0", .api_key = KEY};
	assert_int_equal(api_start(f->base, &o, f->st, f->sup, &f->api, err, sizeof(err)), 0);
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
	return out;
}

/* ---- the HTTP client ---- */

struct resp {
	int done;
	int status;
	char *body;
	json_t *json;
	char ctype[64], allow[64], location[80];
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
	evbuffer_remove(in, r->body, len);
	r->json = json_loadb(r->body, len, 0, NULL);
	copy_header(req, "Content-Type", r->ctype, sizeof(r->ctype));
	copy_header(req, "Allow", r->allow, sizeof(r->allow));
	copy_header(req, "Location", r->location, sizeof(r->location));
}

/* Starts a request; extra is one more header as "Name", "value" (or NULLs). */
static struct resp *
start(struct fx *f, enum evhttp_cmd_type m, const char *path, const char *key, const char *body,
      const char *xname, const char *xvalue)
{
	struct resp *r = calloc(1, sizeof(*r));
	r->conn = evhttp_connection_base_new(f->base, NULL, "127.0.0.1", (uint16_t)f->port);
	struct evhttp_request *req = evhttp_request_new(on_resp, r);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", "127.0.0.1");
	if (key)
		evhttp_add_header(h, "x-api-key", key);
	if (xname)
		evhttp_add_header(h, xname, xvalue);
	if (body) {
		char n[32];
		snprintf(n, sizeof(n), "%zu", strlen(body));
		evhttp_add_header(h, "Content-Length", n);
		evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	}
	assert_int_equal(evhttp_make_request(r->conn, req, m, path), 0);
	return r;
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
    "createdAt",   "updatedAt",   "socketAlive", "supervisorState", "manualInterventionNeeded",
    "nextRetryAt", NULL};

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
	static const char *const top[] = {"status",   "timestamp", "uptime",
	                                  "database", "sessions",  NULL};
	assert_keys(r->json, top);
	static const char *const db[] = {"connected", "latencyMs", NULL};
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
	assert_int_equal(json_array_size(r->json), 3);
	int found = 0;
	for (size_t i = 0; i < 3; i++) {
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
	assert_int_equal(fake.n, 2); /* none of those created anything */
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

	r = call(f, EVHTTP_REQ_POST, "/sessions", KEY, "{}");
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

	a = call(f, EVHTTP_REQ_POST, "/sessions/00000000-0000-4000-8000-000000000000/reconnect",
	         KEY, NULL);
	assert_error(a, 404, "no such session");
	resp_free(a);
	a = call(f, EVHTTP_REQ_POST, "/sessions/not-a-uuid/reconnect", KEY, NULL);
	assert_error(a, 404, "no such session");
	resp_free(a);
	a = call(f, EVHTTP_REQ_POST, path, KEY, "{\"force\":true}");
	assert_error(a, 400, "unknown field \"force\"");
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
	struct resp *r = call(f, EVHTTP_REQ_GET, "/nope", KEY, NULL);
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

int
main(void)
{
	/* Answers to clients that hung up must not kill the test (the server ignores SIGPIPE too).
	 */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_health_shape, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_health_db_down, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_health_deep, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_get_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_patch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_qr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reconnect_client_gone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_logout_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
