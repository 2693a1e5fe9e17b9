/*
 * The mock's control API: JSON over HTTP (libevent's evhttp) on its own port,
 * for tests and demos to inspect connections, play the phone and inject
 * faults. Every request body is a small JSON object checked field by field;
 * every answer is JSON, errors as {"error": "..."} with a 4xx/5xx status.
 * Documented in docs/mock.md.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/addr.h"
#include "core/clock.h"
#include "core/enc.h"
#include "core/err.h"
#include "core/log.h"
#include "mock/mock_int.h"
#include "net/ws.h"
#include "wa/crypto.h"

/* Control requests are small JSON documents. */
#define CONTROL_MAX_BODY (64 * 1024)
#define CONTROL_MAX_HEADERS (8 * 1024)
/* Bounds on values the control API puts into stanzas. */
#define MAX_STANZA_ID 64
#define MAX_NAME 64
#define MAX_QR 1024
/* 2^40 seconds: far beyond any real timestamp, still exact in JSON and JavaScript. */
#define MAX_T (1ull << 40)

void
mock__reply_json(struct evhttp_request *req, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\n", 1);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evhttp_send_reply(req, status, NULL, out);
	evbuffer_free(out);
	free(text);
	json_decref(body);
}

void
mock__reply_error(struct evhttp_request *req, int status, const char *msg)
{
	mock__reply_json(req, status, json_pack("{s:s}", "error", msg));
}

static json_t *
conn_json(const struct mock_conn *c)
{
	char at[32], last[32];
	wg_iso8601(at, c->connected_at);
	json_t *o = json_pack("{s:I, s:i, s:s, s:s, s:s}", "id", (json_int_t)c->id, "dict",
			      c->dict, "state", mock__state_name(c->state), "remote", c->remote,
			      "connectedAt", at);
	json_object_set_new(o, "jid", c->jid ? json_string(c->jid) : json_null());
	json_object_set_new(o, "lid", c->lid ? json_string(c->lid) : json_null());
	json_object_set_new(o, "loggedIn", json_boolean(c->logged_in));
	if (c->last_frame_at) {
		wg_iso8601(last, c->last_frame_at);
		json_object_set_new(o, "lastFrameAt", json_string(last));
	} else {
		json_object_set_new(o, "lastFrameAt", json_null());
	}
	json_object_set_new(o, "frames", json_integer(c->frames_in));
	json_object_set_new(o, "pings", json_integer(c->pings));
	json_object_set_new(o, "presences", json_integer(c->presences));
	json_object_set_new(o, "prekeysUploaded",
			    json_integer(c->dev ? c->dev->prekeys : c->prekeys));
	json_object_set_new(o, "acked", json_copy(c->acked));
	json_object_set_new(o, "receipts", json_copy(c->receipts));
	return o;
}

json_t *
mock_connections(const struct mock *m)
{
	json_t *arr = json_array();
	struct mock_conn *c;
	TAILQ_FOREACH(c, &m->conns, link)
		json_array_append_new(arr, conn_json(c));
	return arr;
}

/*
 * The request body as a JSON object. An empty body is {} when optional.
 * On failure the error has been answered and NULL is returned.
 */
static json_t *
read_body(struct evhttp_request *req, bool required)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len == 0 && !required)
		return json_object();
	if (len == 0 || len > CONTROL_MAX_BODY) {
		mock__reply_error(req, 400, "a JSON object body is required");
		return NULL;
	}
	const char *text = (const char *)evbuffer_pullup(in, (ssize_t)len);
	json_error_t je;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL || !json_is_object(doc)) {
		char msg[200];
		snprintf(msg, sizeof(msg), "body is not a JSON object%s%s", doc ? "" : ": ",
			 doc ? "" : je.text);
		json_decref(doc);
		mock__reply_error(req, 400, msg);
		return NULL;
	}
	return doc;
}

/* Unpacks body with fmt (strict: unknown fields are errors); answers 400 on failure. */
static bool
unpack(struct evhttp_request *req, json_t *body, const char *fmt, ...)
{
	json_error_t je;
	va_list ap;
	va_start(ap, fmt);
	int r = json_vunpack_ex(body, &je, JSON_STRICT, fmt, ap);
	va_end(ap);
	if (r) {
		char msg[220];
		snprintf(msg, sizeof(msg), "bad body: %s", je.text);
		mock__reply_error(req, 400, msg);
		return false;
	}
	return true;
}

/* A code given as a JSON string of digits or an integer; -1 if neither. */
static int
code_value(const json_t *v)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		return i >= 100 && i <= 999 ? (int)i : -1;
	}
	if (!json_is_string(v))
		return -1;
	const char *s = json_string_value(v);
	if (strlen(s) != 3)
		return -1;
	int n = 0;
	for (int i = 0; i < 3; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (s[i] - '0');
	}
	return n >= 100 ? n : -1;
}

/* Text the mock writes into an attribute: printable ASCII, no spaces, bounded. */
static bool
token_ok(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
			  (ch >= 'A' && ch <= 'Z') || strchr(extra, ch) != NULL;
		if (!ok)
			return false;
	}
	return true;
}

/* PHONE@s.whatsapp.net or PHONE:DEV@s.whatsapp.net with DEV 0..99. */
static bool
device_jid_ok(const char *jid)
{
	static const char server[] = "@s.whatsapp.net";
	const char *at = strchr(jid, '@');
	if (at == NULL || strcmp(at, server) != 0 || at - jid > MOCK_PHONE_MAX + 3)
		return false;
	char user[MOCK_PHONE_MAX + 4];
	snprintf(user, sizeof(user), "%.*s", (int)(at - jid), jid);
	char *colon = strchr(user, ':');
	if (colon != NULL) {
		*colon = '\0';
		const char *dev = colon + 1;
		size_t n = strlen(dev);
		if (n < 1 || n > 2 || (n == 2 && dev[0] == '0'))
			return false;
		for (size_t i = 0; i < n; i++)
			if (dev[i] < '0' || dev[i] > '9')
				return false;
	}
	return mock__phone_valid(user);
}

/* --- selecting connections ------------------------------------------------------------------ */

struct selector {
	enum { SEL_ALL, SEL_ID, SEL_JID } kind;
	uint64_t id;
	char jid[MOCK_JID_MAX];
};

/* Parses a URL path segment: "all", a connection id, or a (percent-encoded) device jid. */
static bool
parse_selector(const char *seg, size_t len, struct selector *sel)
{
	char raw[3 * MOCK_JID_MAX];
	if (len == 0 || len >= sizeof(raw))
		return false;
	memcpy(raw, seg, len);
	raw[len] = '\0';
	if (strcmp(raw, "all") == 0) {
		sel->kind = SEL_ALL;
		return true;
	}
	if (len <= 19 && strspn(raw, "0123456789") == len) {
		sel->kind = SEL_ID;
		sel->id = strtoull(raw, NULL, 10);
		return true;
	}
	size_t dlen = 0;
	char *dec = evhttp_uridecode(raw, 0, &dlen);
	bool ok = dec != NULL && dlen == strlen(dec) && dlen < sizeof(sel->jid);
	if (ok) {
		sel->kind = SEL_JID;
		snprintf(sel->jid, sizeof(sel->jid), "%s", dec);
	}
	free(dec);
	return ok;
}

static bool
sel_matches(const struct selector *sel, const struct mock_conn *c)
{
	switch (sel->kind) {
	case SEL_ALL:
		return true;
	case SEL_ID:
		return c->id == sel->id;
	case SEL_JID:
		return c->jid != NULL && strcmp(c->jid, sel->jid) == 0;
	}
	return false;
}

/* --- connection actions --------------------------------------------------------------------- */

struct action_args {
	int code;                      /* stream-error */
	const char *from, *id;         /* message */
	uint64_t t;
};

/* Each returns true if it applied to c, false if c's state does not allow it. */
typedef bool (*conn_action)(struct mock_conn *c, const struct action_args *a);

static bool
act_kill(struct mock_conn *c, const struct action_args *a)
{
	mc_enter(c, MC_CLOSING, "killed by the control API");
	ws_abort(c->ws, true);
	return true;
}

static bool
act_close(struct mock_conn *c, const struct action_args *a)
{
	if (c->state == MC_CLOSING || c->state == MC_PAIRED)
		return false;
	mc_close(c, 1000, "closed by the control API");
	return true;
}

static bool
act_blackhole(struct mock_conn *c, const struct action_args *a)
{
	if (c->state == MC_CLOSING || c->state == MC_PAIRED || c->state == MC_BLACKHOLE)
		return false;
	mc_enter(c, MC_BLACKHOLE, "blackholed by the control API");
	return true;
}

/*
 * A transport frame whose header announces 1 MiB, 16 bytes of it, then
 * nothing more (the connection is blackholed): the client must give up on
 * it rather than wait for the rest forever.
 */
static bool
act_partial_frame(struct mock_conn *c, const struct action_args *a)
{
	(void)a;
	if (c->state == MC_CLOSING || c->state == MC_PAIRED || c->state == MC_BLACKHOLE ||
	    c->ws == NULL)
		return false;
	uint8_t part[3 + 16] = {0x10, 0x00, 0x00};
	if (ws_send(c->ws, part, sizeof(part)) != 0)
		return false;
	mc_enter(c, MC_BLACKHOLE, "a partial frame sent by the control API");
	return true;
}

static bool
stanza_state(const struct mock_conn *c)
{
	return c->state == MC_REGISTER || c->state == MC_PAIRING || c->state == MC_LOGIN;
}

static bool
act_stream_error(struct mock_conn *c, const struct action_args *a)
{
	return stanza_state(c) && mc_stream_error(c, a->code) == 0;
}

static bool
act_message(struct mock_conn *c, const struct action_args *a)
{
	return c->state == MC_LOGIN && c->logged_in &&
	       mock__send_message(c, a->from, a->id, a->t) == 0;
}

static void
run_action(struct mock *m, struct evhttp_request *req, const struct selector *sel,
	   conn_action fn, const struct action_args *a, json_t *extra)
{
	unsigned matched = 0, affected = 0;
	const char *state = NULL;
	struct mock_conn *c;
	TAILQ_FOREACH(c, &m->conns, link) {
		if (!sel_matches(sel, c))
			continue;
		matched++;
		state = mock__state_name(c->state);
		if (fn(c, a))
			affected++;
	}
	if (matched == 0 && sel->kind != SEL_ALL) {
		json_decref(extra);
		mock__reply_error(req, 404, "no such connection");
		return;
	}
	if (matched > 0 && affected == 0 && sel->kind != SEL_ALL) {
		char msg[96];
		snprintf(msg, sizeof(msg), "not possible for a connection in state %s", state);
		json_decref(extra);
		mock__reply_error(req, 409, msg);
		return;
	}
	json_t *o = json_pack("{s:b, s:i}", "ok", 1, "affected", (int)affected);
	if (extra)
		json_object_update(o, extra);
	json_decref(extra);
	mock__reply_json(req, 200, o);
}

static void
post_connection(struct mock *m, struct evhttp_request *req, const struct selector *sel,
		const char *action)
{
	struct action_args a = {0};
	json_t *body = read_body(req, false);
	if (body == NULL)
		return;
	json_t *extra = NULL;
	conn_action fn = NULL;
	if (strcmp(action, "kill") == 0 || strcmp(action, "close") == 0 ||
	    strcmp(action, "blackhole") == 0 || strcmp(action, "partial-frame") == 0) {
		if (!unpack(req, body, "{}"))
			goto out;
		fn = action[0] == 'k'   ? act_kill
		     : action[0] == 'c' ? act_close
		     : action[0] == 'p' ? act_partial_frame
		                        : act_blackhole;
	} else if (strcmp(action, "stream-error") == 0) {
		json_t *code;
		if (!unpack(req, body, "{s:o}", "code", &code))
			goto out;
		a.code = code_value(code);
		static const int allowed[] = {401, 403, 406, 409, 440, 500, 503, 515};
		bool ok = false;
		for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
			ok |= a.code == allowed[i];
		if (!ok) {
			mock__reply_error(req, 400, "code must be one of 401 403 406 409 440 500 "
						    "503 515");
			goto out;
		}
		fn = act_stream_error;
	} else if (strcmp(action, "message") == 0) {
		const char *from = "15550000001@s.whatsapp.net", *id = NULL;
		json_int_t t = (json_int_t)(wg_wall_ms() / 1000);
		if (!unpack(req, body, "{s?s, s?s, s?I}", "from", &from, "id", &id, "t", &t))
			goto out;
		char gen[24];
		if (id == NULL) {
			/* WhatsApp-like message ids: 3EB0 and upper-case hex. */
			uint8_t rnd[8];
			wa_random(rnd, sizeof(rnd));
			char hex[17];
			wg_hex_encode(hex, rnd, sizeof(rnd));
			for (char *p = hex; *p; p++)
				if (*p >= 'a' && *p <= 'f')
					*p = (char)(*p - 'a' + 'A');
			snprintf(gen, sizeof(gen), "3EB0%s", hex);
			id = gen;
		}
		if (!token_ok(id, MAX_STANZA_ID, "._-")) {
			mock__reply_error(req, 400, "id must be 1-64 characters of A-Z a-z 0-9 . _ -");
			goto out;
		}
		if (!token_ok(from, MOCK_JID_MAX - 1, "@.:_-") || strchr(from, '@') == NULL) {
			mock__reply_error(req, 400, "from must be a JID (user@server)");
			goto out;
		}
		if (t < 0 || (uint64_t)t > MAX_T) {
			mock__reply_error(req, 400, "t must be unix seconds");
			goto out;
		}
		a.from = from;
		a.id = id;
		a.t = (uint64_t)t;
		fn = act_message;
		extra = json_pack("{s:s}", "id", id);
	} else {
		mock__reply_error(req, 404, "no such action (kill, close, blackhole, partial-frame, "
					    "stream-error, message)");
		goto out;
	}
	run_action(m, req, sel, fn, &a, extra);
out:
	json_decref(body);
}

/* --- devices, scan, refuse ------------------------------------------------------------------ */

static void
post_next_login(struct mock *m, struct evhttp_request *req, const char *jid)
{
	json_t *body = read_body(req, true), *fv, *code = NULL, *expire = NULL;
	if (body == NULL)
		return;
	if (!device_jid_ok(jid)) {
		mock__reply_error(req, 400, "not a device jid (PHONE:DEV@s.whatsapp.net)");
		goto out;
	}
	if (!unpack(req, body, "{s:o, s?o, s?o}", "failure", &fv, "code", &code, "expire",
		    &expire))
		goto out;
	if (json_is_null(fv)) {
		mock__set_fault(m, jid, NULL);
		mock__reply_json(req, 200, json_pack("{s:b, s:s, s:n}", "ok", 1, "jid", jid,
						     "failure"));
		goto out;
	}
	int reason = code_value(fv);
	struct mock_failure f = {0};
	snprintf(f.reason, sizeof(f.reason), "%d", reason);
	if (reason < 0 || !mock__failure_valid(f.reason)) {
		mock__reply_error(req, 400,
				  "failure must be one of 401 402 403 405 406 500 503, or null");
		goto out;
	}
	if ((code || expire) && reason != 402) {
		mock__reply_error(req, 400, "code and expire go only with failure 402");
		goto out;
	}
	if (reason == 402) {
		/* A temporary ban: code is the ban reason, expire the seconds it lasts. */
		json_int_t cv = 101, ev = 3600;
		if ((code && !json_is_integer(code)) || (expire && !json_is_integer(expire))) {
			mock__reply_error(req, 400, "code and expire must be integers");
			goto out;
		}
		if (code)
			cv = json_integer_value(code);
		if (expire)
			ev = json_integer_value(expire);
		if (cv < 0 || cv > 99999 || ev < 0 || (uint64_t)ev > MAX_T) {
			mock__reply_error(req, 400, "code must be 0-99999, expire seconds >= 0");
			goto out;
		}
		snprintf(f.code, sizeof(f.code), "%lld", (long long)cv);
		snprintf(f.expire, sizeof(f.expire), "%lld", (long long)ev);
	}
	if (!mock__set_fault(m, jid, &f)) {
		mock__reply_error(req, 409, "too many queued login failures");
		goto out;
	}
	mock__reply_json(req, 200,
			 json_pack("{s:b, s:s, s:s}", "ok", 1, "jid", jid, "failure", f.reason));
out:
	json_decref(body);
}

static void
post_scan(struct mock *m, struct evhttp_request *req)
{
	json_t *body = read_body(req, true);
	const char *qr, *phone, *name = NULL;
	if (body == NULL)
		return;
	if (!unpack(req, body, "{s:s, s:s, s?s}", "qr", &qr, "phone", &phone, "name", &name))
		goto out;
	if (strlen(qr) > MAX_QR) {
		mock__reply_error(req, 400, "qr too long");
		goto out;
	}
	if (name != NULL && (strlen(name) == 0 || strlen(name) > MAX_NAME)) {
		mock__reply_error(req, 400, "name must be 1-64 bytes");
		goto out;
	}
	mock__scan(m, req, qr, phone, name);
out:
	json_decref(body);
}

static void
post_refuse(struct mock *m, struct evhttp_request *req)
{
	json_t *body = read_body(req, true);
	int on;
	if (body == NULL)
		return;
	if (unpack(req, body, "{s:b}", "on", &on)) {
		m->refusing = on;
		if (m->ws)
			ws_server_set_refuse(m->ws, on);
		log_info("mock", "%s new connections", on ? "refusing" : "accepting");
		mock__reply_json(req, 200, json_pack("{s:b, s:b}", "ok", 1, "refusing", on));
	}
	json_decref(body);
}

/* --- routing -------------------------------------------------------------------------------- */

static bool
method_is(struct evhttp_request *req, enum evhttp_cmd_type want)
{
	if (evhttp_request_get_command(req) == want)
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
			  want == EVHTTP_REQ_GET ? "GET" : "POST");
	mock__reply_error(req, 405, want == EVHTTP_REQ_GET ? "use GET" : "use POST");
	return false;
}

/* Splits "SEL/ACTION" (after a prefix) into its two segments; false if the shape differs. */
static bool
split2(const char *rest, const char **sel, size_t *sel_len, const char **action)
{
	const char *slash = strchr(rest, '/');
	if (slash == NULL || slash == rest || strchr(slash + 1, '/') != NULL || !slash[1])
		return false;
	*sel = rest;
	*sel_len = (size_t)(slash - rest);
	*action = slash + 1;
	return true;
}

/*
 * Counters for benchmarks, kept on every transition: O(1) to answer, so a
 * benchmark can poll it at 20,000 connections without loading the mock.
 */
static json_t *
stats_json(const struct mock *m)
{
	return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "ok", 1, "connections",
			 (json_int_t)m->nconns, "loggedIn", (json_int_t)m->logged_in, "inFlight",
			 (json_int_t)m->in_flight, "inFlightMax", (json_int_t)m->in_flight_max,
			 "accepted", (json_int_t)m->accepted, "logins", (json_int_t)m->logins,
			 "overlaps", (json_int_t)m->overlaps);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct mock *m = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	const char *sel, *action;
	size_t sel_len;
	if (path == NULL) {
		mock__reply_error(req, 400, "bad request URI");
		return;
	}
	if (strcmp(path, "/connections") == 0) {
		if (method_is(req, EVHTTP_REQ_GET))
			mock__reply_json(req, 200, mock_connections(m));
	} else if (strcmp(path, "/stats") == 0) {
		if (method_is(req, EVHTTP_REQ_GET))
			mock__reply_json(req, 200, stats_json(m));
	} else if (strcmp(path, "/stats/reset") == 0) {
		if (method_is(req, EVHTTP_REQ_POST)) {
			m->in_flight_max = m->in_flight;
			m->accepted = m->logins = 0;
			mock__reply_json(req, 200, stats_json(m));
		}
	} else if (strcmp(path, "/devices") == 0) {
		if (method_is(req, EVHTTP_REQ_GET))
			mock__reply_json(req, 200, mock__store_devices_json(&m->store));
	} else if (strcmp(path, "/scan") == 0) {
		if (method_is(req, EVHTTP_REQ_POST))
			post_scan(m, req);
	} else if (strcmp(path, "/refuse") == 0) {
		if (method_is(req, EVHTTP_REQ_POST))
			post_refuse(m, req);
	} else if (strncmp(path, "/connections/", 13) == 0 &&
		   split2(path + 13, &sel, &sel_len, &action)) {
		struct selector s;
		if (!method_is(req, EVHTTP_REQ_POST))
			return;
		if (!parse_selector(sel, sel_len, &s))
			mock__reply_error(req, 400, "bad connection selector (id, jid or all)");
		else
			post_connection(m, req, &s, action);
	} else if (strncmp(path, "/devices/", 9) == 0 && split2(path + 9, &sel, &sel_len, &action) &&
		   strcmp(action, "next-login") == 0) {
		struct selector s;
		if (!method_is(req, EVHTTP_REQ_POST))
			return;
		if (!parse_selector(sel, sel_len, &s) || s.kind != SEL_JID)
			mock__reply_error(req, 400, "not a device jid (PHONE:DEV@s.whatsapp.net)");
		else
			post_next_login(m, req, s.jid);
	} else {
		mock__reply_error(req, 404, "no such endpoint");
	}
}

int
mock__control_start(struct mock *m, const char *host_port, char *err, size_t errlen)
{
	char host[256];
	uint16_t port;
	if (wg_addr_split(host_port, host, sizeof(host), &port)) {
		snprintf(err, errlen, "control address \"%s\" is not host:port", host_port);
		return WG_EINVAL;
	}
	m->http = evhttp_new(m->base);
	evhttp_set_max_body_size(m->http, CONTROL_MAX_BODY);
	evhttp_set_max_headers_size(m->http, CONTROL_MAX_HEADERS);
	/* Let every method through, so a wrong one gets our JSON 405 rather than evhttp's 501. */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						    EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
						    EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(m->http, on_request, m);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(m->http, host, port);
	if (bs == NULL) {
		snprintf(err, errlen, "cannot listen on %s for the control API", host_port);
		return WG_EIO;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
		m->control_port = ntohs(ss.ss_family == AF_INET6
						? ((struct sockaddr_in6 *)&ss)->sin6_port
						: ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

void
mock__control_stop(struct mock *m)
{
	if (m->http == NULL)
		return;
	/* Pending scans hold requests that evhttp_free is about to free: answer them first. */
	struct mock_conn *c;
	TAILQ_FOREACH(c, &m->conns, link)
		mock__pair_conn_gone(c, "the mock is stopping");
	evhttp_free(m->http);
	m->http = NULL;
}
