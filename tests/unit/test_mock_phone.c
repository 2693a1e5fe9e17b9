/*
 * The mock as WhatsApp and the phone, in-process over loopback: our own
 * client pieces (WebSocket, Noise client with the mock's root key, payloads,
 * the companion side of ADV and the QR text) pair a device through POST /scan,
 * log it in, count and upload pre-keys, survive a restart with --state; the
 * control API's faults reach the client; bad input to the control API and
 * corrupt state files are refused. No sleeps: every wait drives the event loop
 * until a condition holds, under a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "core/clock.h"
#include "core/err.h"
#include "mock/mock.h"
#include "net/ws.h"
#include "wa/adv.h"
#include "wa/cert.h"
#include "wa/crypto.h"
#include "wa/frame.h"
#include "wa/node.h"
#include "wa/noise.h"
#include "wa/payload.h"
#include "wa/qr.h"

#define PHONE "15551234567"
#define WAIT_MS 5000

/* --- the loop driver ------------------------------------------------------------------------ */

struct env {
	struct event_base *base;
	struct mock *mock;
	struct mock_opts opts;
	char dir[64], state[128];
};

typedef bool (*pred_fn)(void *arg);

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Runs the loop until pred(arg) holds; fails the test after WAIT_MS. */
static void
run_until(struct env *e, pred_fn pred, void *arg, const char *what)
{
	bool late = false;
	struct event *t = evtimer_new(e->base, on_deadline, &late);
	struct timeval tv = {WAIT_MS / 1000, 0};
	evtimer_add(t, &tv);
	while (!pred(arg) && !late)
		event_base_loop(e->base, EVLOOP_ONCE);
	event_free(t);
	if (late)
		fail_msg("timed out waiting for %s", what);
}

static void
env_start(struct env *e)
{
	char err[256] = "";
	if (mock_new(e->base, &e->opts, &e->mock, err, sizeof(err)) != 0)
		fail_msg("mock_new: %s", err);
}

static void
env_init(struct env *e, bool with_state, bool accept_any)
{
	memset(e, 0, sizeof(*e));
	e->base = event_base_new();
	snprintf(e->dir, sizeof(e->dir), "/tmp/wagate-mock-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->state, sizeof(e->state), "%s/state.json", e->dir);
	e->opts = (struct mock_opts){.listen = "127.0.0.1:0", .control = "127.0.0.1:0",
				     .state_file = with_state ? e->state : NULL,
				     .accept_any_login = accept_any};
	env_start(e);
}

static void
env_free(struct env *e)
{
	mock_free(e->mock);
	event_base_free(e->base);
	unlink(e->state);
	rmdir(e->dir);
}

/* --- HTTP to the control API ---------------------------------------------------------------- */

struct http_call {
	struct evhttp_connection *conn;
	bool done;
	int status;
	json_t *json;
};

static void
on_http_done(struct evhttp_request *req, void *arg)
{
	struct http_call *h = arg;
	h->done = true;
	if (req == NULL)
		return;
	h->status = evhttp_request_get_response_code(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	h->json = json_loadb((const char *)evbuffer_pullup(in, (ssize_t)len), len, 0, NULL);
}

static void
http_start(struct env *e, struct http_call *h, enum evhttp_cmd_type method, const char *path,
	   const char *body)
{
	memset(h, 0, sizeof(*h));
	h->conn = evhttp_connection_base_new(e->base, NULL, "127.0.0.1",
					     (uint16_t)mock_control_port(e->mock));
	struct evhttp_request *req = evhttp_request_new(on_http_done, h);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
	if (body)
		evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	assert_int_equal(evhttp_make_request(h->conn, req, method, path), 0);
}

static bool
http_done(void *arg)
{
	return ((struct http_call *)arg)->done;
}

/* Waits for the answer; returns the status, the JSON in h->json (caller decrefs via http_end). */
static int
http_wait(struct env *e, struct http_call *h)
{
	run_until(e, http_done, h, "an HTTP answer");
	return h->status;
}

static void
http_end(struct http_call *h)
{
	json_decref(h->json);
	evhttp_connection_free(h->conn);
}

/* One control call; returns the status and, if out is not NULL, the JSON answer (owned). */
static int
http(struct env *e, enum evhttp_cmd_type method, const char *path, const char *body, json_t **out)
{
	struct http_call h;
	http_start(e, &h, method, path, body);
	int status = http_wait(e, &h);
	if (out) {
		*out = h.json;
		h.json = NULL;
	}
	http_end(&h);
	return status;
}

/* --- a client of our own -------------------------------------------------------------------- */

#define MAX_NODES 32

struct client {
	struct env *e;
	struct ws_conn *ws;
	struct wa_noise *noise;
	struct wa_frame_reader rd;
	int dict;
	bool login;
	uint64_t user;
	uint32_t device;
	struct wa_keypair noise_key, ident;
	bool finished, closed;
	int close_err, close_code;
	struct wa_arena a;                 /* received nodes live here */
	struct wa_node *nodes[MAX_NODES];
	int nnodes;
	/* waiting for a tag */
	const char *want;
};

static void
client_send(struct client *c, const struct wa_node *n)
{
	struct wg_buf plain = {0}, out = {0};
	wg_buf_push(&plain, 0);
	assert_int_equal(wa_node_encode(wa_dict_get(c->dict), n, &plain), 0);
	assert_int_equal(wa_noise_encrypt_frame(c->noise, plain.data, plain.len, &out), 0);
	assert_int_equal(ws_send(c->ws, out.data, out.len), 0);
	wg_buf_free(&plain);
	wg_buf_free(&out);
}

static void
build_payload(struct client *c, struct wg_buf *out)
{
	if (c->login) {
		struct wa_login_opts o = {WA_LOGIN_DEFAULTS, .user = c->user, .device = c->device};
		assert_int_equal(wa_payload_login(&o, out), 0);
		return;
	}
	struct wa_register_opts o = {.registration_id = 77, .signed_prekey_id = 1, .os = "Linux",
				     .platform_type = 1};
	struct wa_keypair spk;
	wa_crypto_keypair(&spk);
	memcpy(o.identity_pub, c->ident.pub, 32);
	memcpy(o.signed_prekey_pub, spk.pub, 32);
	uint8_t msg[33] = {5};
	memcpy(msg + 1, spk.pub, 32);
	assert_int_equal(wa_crypto_sign(o.signed_prekey_sig, c->ident.priv, msg, 33), 0);
	assert_int_equal(wa_payload_register(&o, out), 0);
}

static void
c_open(struct ws_conn *ws, void *arg)
{
	struct client *c = arg;
	struct wg_buf out = {0};
	assert_int_equal(wa_noise_client_hello(c->noise, &out), 0);
	assert_int_equal(ws_send(ws, out.data, out.len), 0);
	wg_buf_free(&out);
}

static void
c_message(struct ws_conn *ws, const uint8_t *data, size_t len, void *arg)
{
	struct client *c = arg;
	assert_int_equal(wa_frame_feed(&c->rd, data, len), 0);
	const uint8_t *p;
	size_t plen;
	int r;
	while ((r = wa_frame_next(&c->rd, &p, &plen)) == 1) {
		if (!c->finished) {
			struct wa_cert_policy pol = {.now = (int64_t)(wg_wall_ms() / 1000)};
			memcpy(pol.root_pub, mock_root_pub(c->e->mock), 32);
			struct wg_buf payload = {0}, out = {0};
			build_payload(c, &payload);
			assert_int_equal(wa_noise_client_finish(c->noise, p, plen, c->noise_key.priv,
								c->noise_key.pub, &pol, payload.data,
								payload.len, &out),
					 0);
			assert_int_equal(ws_send(ws, out.data, out.len), 0);
			wg_buf_free(&payload);
			wg_buf_free(&out);
			c->finished = true;
			continue;
		}
		struct wg_buf plain = {0};
		assert_int_equal(wa_noise_decrypt(c->noise, p, plen, &plain), 0);
		struct wa_node *n;
		assert_int_equal(wa_frame_decode_node(wa_dict_get(c->dict), plain.data, plain.len,
						      NULL, &c->a, &n, NULL),
				 0);
		wg_buf_free(&plain);
		assert_true(c->nnodes < MAX_NODES);
		c->nodes[c->nnodes++] = n;
	}
	assert_true(r >= 0);
}

static void
c_close(struct ws_conn *ws, int err, int code, const char *reason, void *arg)
{
	struct client *c = arg;
	c->closed = true;
	c->close_err = err;
	c->close_code = code;
	c->ws = NULL;
}

static void
client_connect(struct env *e, struct client *c)
{
	c->e = e;
	if (c->dict == 0)
		c->dict = 3;
	c->noise = wa_noise_new(WA_NOISE_CLIENT, c->dict);
	wa_frame_reader_init(&c->rd, WA_FRAME_CLIENT, 0);
	c->finished = c->closed = false;
	c->nnodes = 0;
	char url[64];
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws/chat", mock_listen_port(e->mock));
	static const struct ws_callbacks cbs = {c_open, c_message, c_close};
	struct ws_client_opts wo = {.url = url, .origin = "https://web.whatsapp.com"};
	assert_int_equal(ws_client_connect(e->base, &wo, &cbs, c, &c->ws), 0);
}

/* A fresh client with new keys: login as user:device, or (login false) a registration. */
static void
client_new(struct client *c, bool login, uint64_t user, uint32_t device)
{
	memset(c, 0, sizeof(*c));
	c->login = login;
	c->user = user;
	c->device = device;
	wa_crypto_keypair(&c->noise_key);
	wa_crypto_keypair(&c->ident);
}

static void
client_drop(struct client *c)
{
	if (c->ws) {
		/* Called from test bodies, never from a callback: free it now. */
		ws_destroy(c->ws);
		c->ws = NULL;
	}
	wa_noise_free(c->noise);
	c->noise = NULL;
	wa_frame_reader_free(&c->rd);
	wa_arena_free(&c->a);
}

static bool
has_node_or_closed(void *arg)
{
	struct client *c = arg;
	if (c->closed)
		return true;
	for (int i = 0; i < c->nnodes; i++)
		if (strcmp(c->nodes[i]->tag.p, c->want) == 0)
			return true;
	return false;
}

/* The next received node with tag (removed from the queue), or NULL if the connection closed first. */
static struct wa_node *
wait_node(struct client *c, const char *tag)
{
	c->want = tag;
	char what[64];
	snprintf(what, sizeof(what), "a <%s> from the mock", tag);
	run_until(c->e, has_node_or_closed, c, what);
	for (int i = 0; i < c->nnodes; i++)
		if (strcmp(c->nodes[i]->tag.p, tag) == 0) {
			struct wa_node *n = c->nodes[i];
			memmove(&c->nodes[i], &c->nodes[i + 1],
				(size_t)(c->nnodes - i - 1) * sizeof(c->nodes[0]));
			c->nnodes--;
			return n;
		}
	return NULL;
}

static bool
is_closed(void *arg)
{
	return ((struct client *)arg)->closed;
}

static void
wait_closed(struct client *c)
{
	run_until(c->e, is_closed, c, "the connection to close");
}

static void
send_iq(struct client *c, const char *id, const char *type, const char *xmlns, const char *child)
{
	struct wa_arena a = {0};
	struct wa_node *iq = wa_node_new(&a, "iq");
	wa_node_set_attr(&a, iq, "id", id);
	wa_node_set_attr(&a, iq, "to", "@s.whatsapp.net");
	wa_node_set_attr(&a, iq, "type", type);
	if (xmlns)
		wa_node_set_attr(&a, iq, "xmlns", xmlns);
	if (child)
		wa_node_add_child(&a, iq, child);
	client_send(c, iq);
	wa_arena_free(&a);
}

/* Asks <count/> and returns the value the mock answers. */
static int
prekey_count(struct client *c)
{
	send_iq(c, "cnt", "get", "encrypt", "count");
	struct wa_node *res = wait_node(c, "iq");
	assert_non_null(res);
	assert_string_equal(wa_node_attr(res, "id"), "cnt");
	assert_string_equal(wa_node_attr(res, "type"), "result");
	const struct wa_node *cnt = wa_node_child(res, "count");
	assert_non_null(cnt);
	const char *v = wa_node_attr(cnt, "value");
	assert_non_null(v);
	char *end;
	long n = strtol(v, &end, 10);
	assert_true(*v != '\0' && *end == '\0');
	return (int)n;
}

static void
upload_prekeys(struct client *c, int n)
{
	struct wa_arena a = {0};
	struct wa_node *iq = wa_node_new(&a, "iq");
	wa_node_set_attr(&a, iq, "id", "up");
	wa_node_set_attr(&a, iq, "to", "@s.whatsapp.net");
	wa_node_set_attr(&a, iq, "type", "set");
	wa_node_set_attr(&a, iq, "xmlns", "encrypt");
	struct wa_node *list = wa_node_add_child(&a, iq, "list");
	for (int i = 0; i < n; i++) {
		struct wa_node *k = wa_node_add_child(&a, list, "key");
		uint8_t id[3] = {0, 0, (uint8_t)(i + 1)}, v[32] = {(uint8_t)i};
		wa_node_set_bytes(&a, wa_node_add_child(&a, k, "id"), id, 3);
		wa_node_set_bytes(&a, wa_node_add_child(&a, k, "value"), v, 32);
	}
	client_send(c, iq);
	wa_arena_free(&a);
	struct wa_node *res = wait_node(c, "iq");
	assert_non_null(res);
	assert_string_equal(wa_node_attr(res, "id"), "up");
	assert_string_equal(wa_node_attr(res, "type"), "result");
}

/* The mock's entry for connection id, from GET /connections (owned). */
static json_t *
conn_entry(struct env *e, json_int_t id)
{
	json_t *arr;
	assert_int_equal(http(e, EVHTTP_REQ_GET, "/connections", NULL, &arr), 200);
	json_t *found = NULL, *o;
	size_t i;
	json_array_foreach(arr, i, o)
		if (json_integer_value(json_object_get(o, "id")) == id)
			found = json_incref(o);
	json_decref(arr);
	return found;
}

/* The id of the newest connection the mock shows. */
static json_int_t
last_conn_id(struct env *e)
{
	json_t *arr;
	assert_int_equal(http(e, EVHTTP_REQ_GET, "/connections", NULL, &arr), 200);
	assert_true(json_array_size(arr) > 0);
	json_int_t id = json_integer_value(json_object_get(json_array_get(arr, json_array_size(arr) - 1), "id"));
	json_decref(arr);
	return id;
}

/* --- pairing -------------------------------------------------------------------------------- */

enum reply_kind { REPLY_GOOD, REPLY_BAD_SIGNATURE, REPLY_ERROR };

/*
 * Registers c, answers pair-device, has the phone scan the first ref through
 * POST /scan and answers pair-success as told. Returns the HTTP status; jid_out
 * gets the paired jid on 200.
 */
static int
pair(struct env *e, struct client *c, enum reply_kind kind, char *jid_out, size_t jid_len)
{
	client_connect(e, c);
	struct wa_node *pd = wait_node(c, "iq");
	assert_non_null(pd);
	assert_string_equal(wa_node_attr(pd, "from"), "@s.whatsapp.net");
	assert_string_equal(wa_node_attr(pd, "type"), "set");
	assert_string_equal(wa_node_attr(pd, "xmlns"), "md");
	const struct wa_node *refs = wa_node_first_child(pd);
	assert_string_equal(refs->tag.p, "pair-device");
	assert_int_equal(refs->len, 6);
	const struct wa_node *ref = refs->c.children[0];
	assert_int_equal(ref->kind, WA_CONTENT_BYTES);
	char refstr[256];
	snprintf(refstr, sizeof(refstr), "%.*s", (int)ref->len, (const char *)ref->c.bytes);
	assert_true(strncmp(refstr, "2@", 2) == 0);

	struct wa_arena a = {0};
	struct wa_node *ack = wa_node_new(&a, "iq");
	wa_node_set_attr(&a, ack, "to", "@s.whatsapp.net");
	wa_node_set_attr(&a, ack, "type", "result");
	wa_node_set_attr(&a, ack, "id", wa_node_attr(pd, "id"));
	client_send(c, ack);

	uint8_t adv[32];
	wa_random(adv, sizeof(adv));
	char qr[512], body[700];
	assert_true(wa_qr_format(refstr, c->noise_key.pub, c->ident.pub, adv, "1", qr,
				 sizeof(qr)) > 0);
	snprintf(body, sizeof(body), "{\"qr\": \"%s\", \"phone\": \"" PHONE "\", \"name\": \"Shop\"}",
		 qr);
	struct http_call h;
	http_start(e, &h, EVHTTP_REQ_POST, "/scan", body);

	struct wa_node *ps = wait_node(c, "iq");
	assert_non_null(ps);
	const struct wa_node *succ = wa_node_first_child(ps);
	assert_string_equal(succ->tag.p, "pair-success");
	assert_string_equal(wa_node_attr(ps, "from"), "@s.whatsapp.net");
	const struct wa_node *di = wa_node_child(succ, "device-identity");
	const struct wa_node *dev = wa_node_child(succ, "device");
	assert_non_null(di);
	assert_non_null(dev);
	assert_string_equal(wa_node_attr(wa_node_child(succ, "platform"), "name"), "android");
	assert_string_equal(wa_node_attr(wa_node_child(succ, "biz"), "name"), "Shop");
	assert_int_equal(di->kind, WA_CONTENT_BYTES);

	struct wg_buf account = {0}, reply = {0};
	uint32_t key_index = 0;
	const char *why = NULL;
	int r = wa_adv_companion_accept(di->c.bytes, di->len, adv, c->ident.priv, c->ident.pub,
					&account, &reply, &key_index, &why);
	if (r)
		fail_msg("the companion rejects the mock's pair-success: %s", why);
	char ki[16];
	snprintf(ki, sizeof(ki), "%u", key_index);
	assert_string_equal(wa_node_attr(di, "key-index"), ki);
	if (kind == REPLY_BAD_SIGNATURE)
		reply.data[reply.len - 5] ^= 0x40; /* inside the device signature, the last field */

	struct wa_node *res = wa_node_new(&a, "iq");
	wa_node_set_attr(&a, res, "to", "@s.whatsapp.net");
	wa_node_set_attr(&a, res, "id", wa_node_attr(ps, "id"));
	if (kind == REPLY_ERROR) {
		wa_node_set_attr(&a, res, "type", "error");
		struct wa_node *er = wa_node_add_child(&a, res, "error");
		wa_node_set_attr(&a, er, "code", "401");
		wa_node_set_attr(&a, er, "text", "hmac-mismatch");
	} else {
		wa_node_set_attr(&a, res, "type", "result");
		struct wa_node *sign = wa_node_add_child(&a, res, "pair-device-sign");
		struct wa_node *rdi = wa_node_add_child(&a, sign, "device-identity");
		wa_node_set_attr(&a, rdi, "key-index", ki);
		wa_node_set_bytes(&a, rdi, reply.data, reply.len);
	}
	client_send(c, res);
	wa_arena_free(&a);
	wg_buf_free(&account);
	wg_buf_free(&reply);

	int status = http_wait(e, &h);
	if (status == 200) {
		assert_true(json_is_true(json_object_get(h.json, "ok")));
		const char *jid = json_string_value(json_object_get(h.json, "jid"));
		assert_string_equal(jid, wa_node_attr(dev, "jid"));
		assert_string_equal(json_string_value(json_object_get(h.json, "lid")),
				    wa_node_attr(dev, "lid"));
		snprintf(jid_out, jid_len, "%s", jid);
	} else {
		assert_non_null(json_string_value(json_object_get(h.json, "error")));
	}
	http_end(&h);
	return status;
}

static void
test_pair_login_restart(void **state)
{
	struct env e;
	env_init(&e, true, false);
	struct client reg;
	client_new(&reg, false, 0, 0);
	char jid[64];
	assert_int_equal(pair(&e, &reg, REPLY_GOOD, jid, sizeof(jid)), 200);
	assert_string_equal(jid, PHONE ":1@s.whatsapp.net");
	/* then the restart: 515 and a close */
	struct wa_node *se = wait_node(&reg, "stream:error");
	assert_non_null(se);
	assert_string_equal(wa_node_attr(se, "code"), "515");
	wait_closed(&reg);

	json_t *devs;
	assert_int_equal(http(&e, EVHTTP_REQ_GET, "/devices", NULL, &devs), 200);
	assert_int_equal(json_array_size(devs), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(devs, 0), "jid")), jid);
	json_decref(devs);

	/* login with the noise key used at pairing */
	struct client li = reg;
	li.login = true;
	li.user = 15551234567ull;
	li.device = 1;
	li.a = (struct wa_arena){0};
	client_connect(&e, &li);
	struct wa_node *ok = wait_node(&li, "success");
	assert_non_null(ok);
	assert_non_null(wa_node_attr(ok, "t"));
	const char *lid = wa_node_attr(ok, "lid");
	assert_non_null(lid);
	assert_non_null(strstr(lid, ":1@lid"));
	assert_int_equal(prekey_count(&li), 0);
	upload_prekeys(&li, 3);
	assert_int_equal(prekey_count(&li), 3);
	json_t *conn = conn_entry(&e, last_conn_id(&e));
	assert_string_equal(json_string_value(json_object_get(conn, "state")), "login");
	assert_string_equal(json_string_value(json_object_get(conn, "jid")), jid);
	assert_int_equal(json_integer_value(json_object_get(conn, "prekeysUploaded")), 3);
	json_decref(conn);
	client_drop(&li);

	/* the same device with another noise key is refused */
	struct client other;
	client_new(&other, true, 15551234567ull, 1);
	client_connect(&e, &other);
	struct wa_node *f = wait_node(&other, "failure");
	assert_non_null(f);
	assert_string_equal(wa_node_attr(f, "reason"), "401");
	wait_closed(&other);
	client_drop(&other);

	/* the mock restarts with the same state file: the device logs in, its pre-keys counted */
	mock_free(e.mock);
	env_start(&e);
	li.a = (struct wa_arena){0};
	client_connect(&e, &li);
	assert_non_null(wait_node(&li, "success"));
	assert_int_equal(prekey_count(&li), 3);
	client_drop(&li);

	/* a second device of the same phone gets the next number */
	struct client reg2;
	client_new(&reg2, false, 0, 0);
	assert_int_equal(pair(&e, &reg2, REPLY_GOOD, jid, sizeof(jid)), 200);
	assert_string_equal(jid, PHONE ":2@s.whatsapp.net");
	client_drop(&reg2);
	client_drop(&reg);
	env_free(&e);
}

static void
test_pair_bad_reply(void **state)
{
	struct env e;
	env_init(&e, false, false);
	char jid[64];
	struct client c;
	client_new(&c, false, 0, 0);
	assert_int_equal(pair(&e, &c, REPLY_BAD_SIGNATURE, jid, sizeof(jid)), 502);
	wait_closed(&c);
	client_drop(&c);
	client_new(&c, false, 0, 0);
	assert_int_equal(pair(&e, &c, REPLY_ERROR, jid, sizeof(jid)), 502);
	wait_closed(&c);
	client_drop(&c);
	json_t *devs;
	assert_int_equal(http(&e, EVHTTP_REQ_GET, "/devices", NULL, &devs), 200);
	assert_int_equal(json_array_size(devs), 0);
	json_decref(devs);
	env_free(&e);
}

/* --- faults --------------------------------------------------------------------------------- */

static void
test_login_faults(void **state)
{
	struct env e;
	env_init(&e, false, false);
	/* unknown device without --accept-any-login */
	struct client c;
	client_new(&c, true, 15550001111ull, 4);
	client_connect(&e, &c);
	struct wa_node *f = wait_node(&c, "failure");
	assert_non_null(f);
	assert_string_equal(wa_node_attr(f, "reason"), "401");
	wait_closed(&c);
	client_drop(&c);
	mock_free(e.mock);

	/* with it, a queued 402 comes once, with its code and expiry */
	e.opts.accept_any_login = true;
	env_start(&e);
	assert_int_equal(http(&e, EVHTTP_REQ_POST, "/devices/15550001111%3A4%40s.whatsapp.net/next-login",
			      "{\"failure\": \"402\", \"code\": 105, \"expire\": 60}", NULL),
			 200);
	c.a = (struct wa_arena){0};
	client_connect(&e, &c);
	f = wait_node(&c, "failure");
	assert_non_null(f);
	assert_string_equal(wa_node_attr(f, "reason"), "402");
	assert_string_equal(wa_node_attr(f, "code"), "105");
	assert_string_equal(wa_node_attr(f, "expire"), "60");
	wait_closed(&c);
	client_drop(&c);
	c.a = (struct wa_arena){0};
	client_connect(&e, &c);
	assert_non_null(wait_node(&c, "success"));
	client_drop(&c);
	env_free(&e);
}

static void
test_control_actions(void **state)
{
	struct env e;
	env_init(&e, false, true);
	struct client c;
	client_new(&c, true, 15551112222ull, 3);
	client_connect(&e, &c);
	assert_non_null(wait_node(&c, "success"));

	/* a message, acked by the client */
	json_t *ans;
	assert_int_equal(http(&e, EVHTTP_REQ_POST, "/connections/15551112222:3@s.whatsapp.net/message",
			      "{\"from\": \"15559990000@s.whatsapp.net\", \"id\": \"ABC1\", \"t\": 1700000000}",
			      &ans),
			 200);
	assert_int_equal(json_integer_value(json_object_get(ans, "affected")), 1);
	json_decref(ans);
	struct wa_node *m = wait_node(&c, "message");
	assert_non_null(m);
	assert_string_equal(wa_node_attr(m, "id"), "ABC1");
	assert_string_equal(wa_node_attr(m, "t"), "1700000000");
	assert_string_equal(wa_node_attr(m, "type"), "text");
	assert_string_equal(wa_node_attr(m, "from"), "15559990000@s.whatsapp.net");
	const struct wa_node *enc = wa_node_child(m, "enc");
	assert_non_null(enc);
	assert_string_equal(wa_node_attr(enc, "v"), "2");
	assert_string_equal(wa_node_attr(enc, "type"), "msg");
	assert_int_equal(enc->kind, WA_CONTENT_BYTES);
	struct wa_arena a = {0};
	struct wa_node *ack = wa_node_new(&a, "ack");
	wa_node_set_attr(&a, ack, "id", "ABC1");
	wa_node_set_attr(&a, ack, "to", "15559990000@s.whatsapp.net");
	wa_node_set_attr(&a, ack, "class", "message");
	client_send(&c, ack);
	wa_arena_free(&a);
	/* the ack is read before the ping's answer is written: wait for that answer */
	send_iq(&c, "p1", "get", "w:p", NULL);
	assert_non_null(wait_node(&c, "iq"));
	json_int_t id = last_conn_id(&e);
	json_t *conn = conn_entry(&e, id);
	json_t *acked = json_object_get(conn, "acked");
	assert_int_equal(json_array_size(acked), 1);
	assert_string_equal(json_string_value(json_array_get(acked, 0)), "ABC1");
	assert_int_equal(json_integer_value(json_object_get(conn, "pings")), 1);
	json_decref(conn);

	/* blackhole: no answer to a ping, the state shows it; kill ends it */
	char path[64];
	snprintf(path, sizeof(path), "/connections/%lld/blackhole", (long long)id);
	assert_int_equal(http(&e, EVHTTP_REQ_POST, path, NULL, NULL), 200);
	assert_int_equal(http(&e, EVHTTP_REQ_POST, path, NULL, NULL), 409);
	send_iq(&c, "p2", "get", "w:p", NULL);
	conn = conn_entry(&e, id);
	assert_string_equal(json_string_value(json_object_get(conn, "state")), "blackhole");
	json_decref(conn);
	assert_int_equal(c.nnodes, 0);
	snprintf(path, sizeof(path), "/connections/%lld/kill", (long long)id);
	assert_int_equal(http(&e, EVHTTP_REQ_POST, path, "{}", NULL), 200);
	wait_closed(&c);
	assert_int_equal(c.nnodes, 0);
	assert_int_equal(c.close_code, 1006);
	client_drop(&c);

	/* stream errors in their three forms */
	static const struct {
		const char *body, *code, *conflict;
	} forms[] = {{"{\"code\": \"440\"}", NULL, "replaced"},
		     {"{\"code\": 401}", "401", "device_removed"},
		     {"{\"code\": \"503\"}", "503", NULL}};
	for (size_t i = 0; i < 3; i++) {
		c.a = (struct wa_arena){0};
		client_connect(&e, &c);
		assert_non_null(wait_node(&c, "success"));
		assert_int_equal(http(&e, EVHTTP_REQ_POST, "/connections/all/stream-error",
				      forms[i].body, NULL),
				 200);
		struct wa_node *se = wait_node(&c, "stream:error");
		assert_non_null(se);
		const char *code = wa_node_attr(se, "code");
		if (forms[i].code)
			assert_string_equal(code, forms[i].code);
		else
			assert_null(code);
		const struct wa_node *cf = wa_node_child(se, "conflict");
		if (forms[i].conflict)
			assert_string_equal(wa_node_attr(cf, "type"), forms[i].conflict);
		else
			assert_null(cf);
		wait_closed(&c);
		assert_int_equal(c.close_code, 1000);
		client_drop(&c);
	}

	/* a clean close */
	c.a = (struct wa_arena){0};
	client_connect(&e, &c);
	assert_non_null(wait_node(&c, "success"));
	assert_int_equal(http(&e, EVHTTP_REQ_POST, "/connections/all/close", NULL, NULL), 200);
	wait_closed(&c);
	assert_int_equal(c.close_code, 1000);
	client_drop(&c);

	/* refusing: the upgrade is answered 503 */
	assert_int_equal(http(&e, EVHTTP_REQ_POST, "/refuse", "{\"on\": true}", NULL), 200);
	c.a = (struct wa_arena){0};
	client_connect(&e, &c);
	wait_closed(&c);
	assert_int_equal(c.close_err, WG_EPROTO);
	assert_int_equal(c.close_code, 503);
	client_drop(&c);
	assert_int_equal(http(&e, EVHTTP_REQ_POST, "/refuse", "{\"on\": false}", NULL), 200);
	c.a = (struct wa_arena){0};
	client_connect(&e, &c);
	assert_non_null(wait_node(&c, "success"));
	client_drop(&c);
	env_free(&e);
}

/* --- input validation ----------------------------------------------------------------------- */

static void
test_control_validation(void **state)
{
	struct env e;
	env_init(&e, false, false);
	uint8_t k[32] = {1};
	char qr[512], scan[700];
	assert_true(wa_qr_format("2@nosuchref", k, k, k, NULL, qr, sizeof(qr)) > 0);
	snprintf(scan, sizeof(scan), "{\"qr\": \"%s\", \"phone\": \"15551234567\"}", qr);
	char badphone[700];
	snprintf(badphone, sizeof(badphone), "{\"qr\": \"%s\", \"phone\": \"0123x\"}", qr);
	static const char next[] = "/devices/15551234567:1@s.whatsapp.net/next-login";
	const struct {
		enum evhttp_cmd_type method;
		const char *path, *body;
		int status;
	} cases[] = {
		{EVHTTP_REQ_GET, "/nope", NULL, 404},
		{EVHTTP_REQ_POST, "/connections", NULL, 405},
		{EVHTTP_REQ_DELETE, "/devices", NULL, 405},
		{EVHTTP_REQ_GET, "/scan", NULL, 405},
		{EVHTTP_REQ_GET, "/connections/all/kill", NULL, 405},
		{EVHTTP_REQ_POST, "/scan", NULL, 400},
		{EVHTTP_REQ_POST, "/scan", "not json", 400},
		{EVHTTP_REQ_POST, "/scan", "[1]", 400},
		{EVHTTP_REQ_POST, "/scan", "{\"qr\": 1, \"phone\": \"15551234567\"}", 400},
		{EVHTTP_REQ_POST, "/scan", "{\"qr\": \"a,b,c,d\", \"phone\": \"15551234567\"}", 400},
		{EVHTTP_REQ_POST, "/scan", badphone, 400},
		{EVHTTP_REQ_POST, "/scan", scan, 404},
		{EVHTTP_REQ_POST, "/connections/99/kill", NULL, 404},
		{EVHTTP_REQ_POST, "/connections/15551234567:1@s.whatsapp.net/close", NULL, 404},
		{EVHTTP_REQ_POST, "/connections/all/kill", NULL, 200},
		{EVHTTP_REQ_POST, "/connections/all/kill", "{\"extra\": 1}", 400},
		{EVHTTP_REQ_POST, "/connections/all/explode", NULL, 404},
		{EVHTTP_REQ_POST, "/connections/all/stream-error", NULL, 400},
		{EVHTTP_REQ_POST, "/connections/all/stream-error", "{\"code\": \"999\"}", 400},
		{EVHTTP_REQ_POST, "/connections/all/stream-error", "{\"code\": \"51x\"}", 400},
		{EVHTTP_REQ_POST, "/connections/all/stream-error", "{\"code\": true}", 400},
		{EVHTTP_REQ_POST, "/connections/all/stream-error", "{\"code\": 515}", 200},
		{EVHTTP_REQ_POST, "/connections/all/message", "{\"t\": -1}", 400},
		{EVHTTP_REQ_POST, "/connections/all/message", "{\"t\": \"now\"}", 400},
		{EVHTTP_REQ_POST, "/connections/all/message", "{\"id\": \"a b\"}", 400},
		{EVHTTP_REQ_POST, "/connections/all/message", "{\"from\": \"nojid\"}", 400},
		{EVHTTP_REQ_POST, "/connections/all/message", "{}", 200},
		{EVHTTP_REQ_POST, next, "{\"failure\": \"404\"}", 400},
		{EVHTTP_REQ_POST, next, "{\"failure\": \"401\", \"code\": 1}", 400},
		{EVHTTP_REQ_POST, next, "{\"failure\": \"402\", \"code\": \"x\"}", 400},
		{EVHTTP_REQ_POST, next, "{\"failure\": \"402\", \"expire\": -5}", 400},
		{EVHTTP_REQ_POST, next, "{}", 400},
		{EVHTTP_REQ_POST, next, "{\"failure\": \"402\"}", 200},
		{EVHTTP_REQ_POST, next, "{\"failure\": null}", 200},
		{EVHTTP_REQ_POST, "/devices/notajid/next-login", "{\"failure\": \"401\"}", 400},
		{EVHTTP_REQ_POST, "/devices/1555%00/next-login", "{\"failure\": \"401\"}", 400},
		{EVHTTP_REQ_POST, "/refuse", "{\"on\": \"yes\"}", 400},
		{EVHTTP_REQ_POST, "/refuse", "{\"on\": false}", 200},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *ans = NULL;
		int status = http(&e, cases[i].method, cases[i].path, cases[i].body, &ans);
		if (status != cases[i].status)
			fail_msg("%s %s: %d, expected %d", cases[i].path,
				 cases[i].body ? cases[i].body : "", status, cases[i].status);
		/* every answer is JSON: an error text, or ok */
		assert_true(json_is_object(ans));
		if (status >= 400)
			assert_non_null(json_string_value(json_object_get(ans, "error")));
		else
			assert_true(json_is_true(json_object_get(ans, "ok")));
		json_decref(ans);
	}
	env_free(&e);
}

/* --- state files ---------------------------------------------------------------------------- */

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_state_file_rejected(void **state)
{
	char dir[] = "/tmp/wagate-state-XXXXXX", path[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.json", dir);
	/* a valid phone: its public key derives from its private key */
	struct wa_keypair kp;
	wa_crypto_keypair(&kp);
	char priv[65], pub[65];
	for (int i = 0; i < 32; i++) {
		snprintf(priv + 2 * i, 3, "%02x", kp.priv[i]);
		snprintf(pub + 2 * i, 3, "%02x", kp.pub[i]);
	}
	char good_phone[400], wrong_pub[400], device[1200], bad_dev[1200];
	snprintf(good_phone, sizeof(good_phone),
		 "{\"phone\": \"15551234567\", \"lid\": \"123456789012345\", \"keyIndex\": 1, "
		 "\"accountPriv\": \"%s\", \"accountPub\": \"%s\"}",
		 priv, pub);
	snprintf(wrong_pub, sizeof(wrong_pub),
		 "{\"phone\": \"15551234567\", \"lid\": \"1\", \"keyIndex\": 1, "
		 "\"accountPriv\": \"%s\", \"accountPub\": \"%s\"}",
		 priv, priv);
	static const char keys[] = "\"noisePub\": \"0101010101010101010101010101010101010101010101"
				   "010101010101010101\", \"identityPub\": \"020202020202020202020"
				   "2020202020202020202020202020202020202020202\"";
	snprintf(device, sizeof(device),
		 "{\"version\": 1, \"phones\": [%s], \"devices\": [{\"jid\": "
		 "\"15551234567:2@s.whatsapp.net\", \"lid\": \"123456789012345:2@lid\", \"phone\": "
		 "\"15551234567\", \"device\": 2, \"keyIndex\": 1, \"prekeys\": 30, \"pairedAt\": "
		 "\"2026-01-01T00:00:00.000Z\", %s}]}",
		 good_phone, keys);
	snprintf(bad_dev, sizeof(bad_dev),
		 "{\"version\": 1, \"phones\": [%s], \"devices\": [{\"jid\": "
		 "\"15551234567:3@s.whatsapp.net\", \"lid\": \"123456789012345:2@lid\", \"phone\": "
		 "\"15551234567\", \"device\": 2, \"keyIndex\": 1, \"prekeys\": 30, \"pairedAt\": "
		 "\"x\", %s}]}",
		 good_phone, keys);
	char wrong_pub_doc[600], extra_field[600];
	snprintf(wrong_pub_doc, sizeof(wrong_pub_doc),
		 "{\"version\": 1, \"phones\": [%s], \"devices\": []}", wrong_pub);
	snprintf(extra_field, sizeof(extra_field),
		 "{\"version\": 1, \"phones\": [%s], \"devices\": [], \"more\": 1}", good_phone);
	const struct {
		const char *text;
		int ok;
	} cases[] = {
		{"", 0},
		{"{not json", 0},
		{"[]", 0},
		{"{\"version\": 2, \"phones\": [], \"devices\": []}", 0},
		{"{\"version\": 1, \"phones\": {}, \"devices\": []}", 0},
		{"{\"version\": 1, \"phones\": [{\"phone\": \"1\"}], \"devices\": []}", 0},
		{wrong_pub_doc, 0},
		{extra_field, 0},
		{bad_dev, 0},
		{"{\"version\": 1, \"phones\": [], \"devices\": []}", 1},
		{device, 1},
	};
	struct event_base *base = event_base_new();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_file(path, cases[i].text);
		struct mock_opts o = {.listen = "127.0.0.1:0", .control = "127.0.0.1:0",
				      .state_file = path};
		struct mock *m = NULL;
		char err[256] = "";
		int r = mock_new(base, &o, &m, err, sizeof(err));
		if (cases[i].ok) {
			if (r)
				fail_msg("case %zu refused: %s", i, err);
			mock_free(m);
		} else {
			if (r == 0)
				fail_msg("case %zu accepted: %s", i, cases[i].text);
			/* the message names the file */
			assert_non_null(strstr(err, path));
		}
	}
	/* a missing file is an empty state */
	unlink(path);
	struct mock_opts o = {.listen = "127.0.0.1:0", .control = "127.0.0.1:0", .state_file = path};
	struct mock *m = NULL;
	char err[256] = "";
	assert_int_equal(mock_new(base, &o, &m, err, sizeof(err)), 0);
	mock_free(m);
	event_base_free(base);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pair_login_restart),
		cmocka_unit_test(test_pair_bad_reply),
		cmocka_unit_test(test_login_faults),
		cmocka_unit_test(test_control_actions),
		cmocka_unit_test(test_control_validation),
		cmocka_unit_test(test_state_file_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
