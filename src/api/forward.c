/*
 * Several nodes (docs/cluster.md): any node's API accepts actions on every
 * session. An action on a session another node holds (reconnect, pair,
 * logout, its QR code) is forwarded to that node's API, and its answer
 * passed back as it came.
 *
 * The nodes trust each other through the API key they share (WAGATE_API_KEY,
 * the same on every node): a forwarded request carries X-Wagate-Forwarded:
 * NODE UNIX_MS HMAC, the HMAC-SHA256, keyed with a key derived from the API
 * key (never from its hash, which the database holds), of
 * "NODE\nUNIX_MS\nMETHOD\nURI\nSHA256(BODY)". The owner accepts it for
 * FORWARD_SKEW_MS either way of its clock, for the four actions only, in place
 * of the key or the dashboard's cookie (which lives in one node's memory), and
 * never forwards it again: a request hops once at most. A signature is
 * accepted once: those seen within the window are kept (the newest
 * FORWARD_SEEN_MAX of them), so a request seen on the wire cannot be played
 * again.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/api_int.h"
#include "core/clock.h"
#include "core/enc.h"
#include "core/log.h"
#include "core/mem.h"
#include "wa/crypto.h"

#define FORWARD_HEADER "X-Wagate-Forwarded"
#define FORWARD_SKEW_MS 60000
/* Longer than a reconnect's wait (20 s), so the owner's answer comes back rather than a timeout. */
#define FORWARD_TIMEOUT_S 30
#define FORWARD_BODY_MAX (128u << 10)
/* Signatures remembered: far more forwards than a window of two minutes sees. */
#define FORWARD_SEEN_MAX 4096

struct fwd_seen {
	char mac[65];
	uint64_t until; /* monotonic ms: past it, the timestamp it signed is refused anyway */
};

struct api_forward {
	struct api *api;
	struct httpd_req *req;          /* the client's, NULL once its connection closed */
	struct httpd_conn *in;          /* the client's connection */
	struct evhttp_connection *out;  /* to the owner */
	char owner[STORE_NODE_MAX + 1];
	struct api_forward *prev, *next;
};

#define FORWARD_URI_MAX 900

/* The signature of a forwarded request; false when it cannot be signed (a URI too long). */
static bool
mac(struct api *a, const char *node, const char *ms, const char *method, const char *uri,
    struct evbuffer *body, char hex[65])
{
	char msg[1200], bh[65];
	uint8_t d[32];
	size_t blen = evbuffer_get_length(body);
	wa_crypto_sha256(d, blen ? evbuffer_pullup(body, (ev_ssize_t)blen) : (const uint8_t *)"", blen);
	wg_hex_encode(bh, d, sizeof(d));
	if (uri == NULL || strlen(uri) > FORWARD_URI_MAX)
		return false;
	int n = snprintf(msg, sizeof(msg), "%s\n%s\n%s\n%s\n%s", node, ms, method, uri, bh);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return false;
	wa_crypto_hmac_sha256(d, a->fwd_key, sizeof(a->fwd_key), (const uint8_t *)msg, (size_t)n);
	wg_hex_encode(hex, d, sizeof(d));
	wg_wipe(d, sizeof(d));
	return true;
}

/* The client's method for the request passed on (the actions forwarded are GETs and POSTs). */
static enum evhttp_cmd_type
evhttp_method(enum httpd_method m)
{
	switch (m) {
	case HTTPD_GET: return EVHTTP_REQ_GET;
	case HTTPD_PATCH: return EVHTTP_REQ_PATCH;
	case HTTPD_DELETE: return EVHTTP_REQ_DELETE;
	case HTTPD_PUT: return EVHTTP_REQ_PUT;
	case HTTPD_HEAD: return EVHTTP_REQ_HEAD;
	default: return EVHTTP_REQ_POST;
	}
}

bool
api__forwarded(struct httpd_req *req)
{
	return evhttp_find_header(httpd_in_headers(req), FORWARD_HEADER) != NULL;
}

/* True the first time a valid signature is seen within its window; a replay is refused. */
static bool
first_use(struct api *a, const char *sig)
{
	uint64_t now = wg_now_ms();
	if (a->seen == NULL) {
		a->seen = wg_calloc(FORWARD_SEEN_MAX, sizeof(*a->seen));
		wg_map_init(&a->seen_map);
	}
	/* The oldest first: they expire in the order they came. */
	while (a->seen_n > 0 && a->seen[a->seen_head].until <= now) {
		wg_map_del(&a->seen_map, a->seen[a->seen_head].mac);
		a->seen_head = (a->seen_head + 1) % FORWARD_SEEN_MAX;
		a->seen_n--;
	}
	if (wg_map_get(&a->seen_map, sig) != NULL) {
		log_warn("api", "a forwarded request was played again: refused");
		return false;
	}
	if (a->seen_n == FORWARD_SEEN_MAX) {
		/* Full of live ones (a flood): the oldest goes. */
		wg_map_del(&a->seen_map, a->seen[a->seen_head].mac);
		a->seen_head = (a->seen_head + 1) % FORWARD_SEEN_MAX;
		a->seen_n--;
	}
	struct fwd_seen *e = &a->seen[(a->seen_head + a->seen_n) % FORWARD_SEEN_MAX];
	memcpy(e->mac, sig, 65);
	e->until = now + 2 * FORWARD_SKEW_MS;
	wg_map_put(&a->seen_map, e->mac, e);
	a->seen_n++;
	return true;
}

bool
api__forward_ok(struct api *a, struct httpd_req *req)
{
	const char *h = evhttp_find_header(httpd_in_headers(req), FORWARD_HEADER);
	if (h == NULL || strlen(h) > 200)
		return false;
	char node[STORE_NODE_MAX + 1], ms[24], got[65];
	if (sscanf(h, "%63s %23s %64s", node, ms, got) != 3 || strlen(got) != 64)
		return false;
	char *end;
	long long t = strtoll(ms, &end, 10);
	long long now = (long long)wg_wall_ms();
	if (*end != '\0' || t < now - FORWARD_SKEW_MS || t > now + FORWARD_SKEW_MS)
		return false;
	char want[65];
	if (!mac(a, node, ms, httpd_method_name(httpd_method(req)), httpd_target(req),
	         httpd_body(req), want))
		return false;
	if (CRYPTO_memcmp(want, got, 64) != 0)
		return false;
	return first_use(a, want);
}

static void
unlink_fwd(struct api_forward *f)
{
	struct api *a = f->api;
	if (f->prev)
		f->prev->next = f->next;
	else if (a->forwards == f)
		a->forwards = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
}

/* The client went away, its request with it: the owner's answer will go nowhere. */
static void
client_closed(struct httpd_conn *evcon, void *arg)
{
	struct api_forward *f = arg;
	(void)evcon;
	f->req = NULL;
	f->in = NULL;
}

/* The outgoing connection goes in the next loop turn, not inside its own request's callback. */
static void
free_out(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

static void
answered(struct evhttp_request *resp, void *arg)
{
	struct api_forward *f = arg;
	struct httpd_req *req = f->req;
	if (f->in != NULL)
		httpd_set_closecb(f->in, NULL, NULL);
	unlink_fwd(f);
	if (req != NULL) {
		int code = resp ? evhttp_request_get_response_code(resp) : 0;
		if (code == 0) {
			log_warn("api", "node %s did not answer a forwarded request", f->owner);
			api__errorf(req, 502, "the node that holds this session (%s) did not answer",
			            f->owner);
		} else {
			struct evkeyvalq *oh = httpd_out_headers(req);
			const char *ct = evhttp_find_header(evhttp_request_get_input_headers(resp),
			                                    "Content-Type");
			if (ct != NULL)
				evhttp_add_header(oh, "Content-Type", ct);
			evhttp_add_header(oh, "Cache-Control", "no-store");
			evhttp_add_header(oh, "X-Wagate-Node", f->owner);
			struct evbuffer *body = evbuffer_new();
			evbuffer_add_buffer(body, evhttp_request_get_input_buffer(resp));
			api__log_answer(req, code);
			httpd_reply(req, code, api__reason(code), body);
			evbuffer_free(body);
		}
	}
	/*
	 * Freed here rather than with free_on_completion, which in libevent 2.1
	 * keeps a connection whose connect failed (a dead owner, common just
	 * after one crashed).
	 */
	struct timeval now = {0, 0};
	event_base_once(f->api->base, -1, EV_TIMEOUT, free_out, f->out, &now);
	free(f);
}

void
api__forward(struct api *a, struct httpd_req *req, const char *owner, const char *url)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *host = u ? evhttp_uri_get_host(u) : NULL;
	int port = u ? evhttp_uri_get_port(u) : -1;
	if (host == NULL || (u && evhttp_uri_get_scheme(u) && strcmp(evhttp_uri_get_scheme(u), "http") != 0)) {
		if (u)
			evhttp_uri_free(u);
		api__errorf(req, 502, "node %s holds this session; its address (%s) cannot be used",
		            owner, url);
		return;
	}
	struct evbuffer *in = httpd_body(req);
	if (evbuffer_get_length(in) > FORWARD_BODY_MAX) {
		evhttp_uri_free(u);
		api__error(req, 413, "request body too large to forward");
		return;
	}
	struct api_forward *f = wg_calloc(1, sizeof(*f));
	f->api = a;
	f->req = req;
	snprintf(f->owner, sizeof(f->owner), "%s", owner);
	/* Names are resolved with the server's resolver, never by a blocking lookup on the loop. */
	f->out = evhttp_connection_base_new(a->base, a->dns, host, (unsigned short)(port > 0 ? port : 80));
	evhttp_uri_free(u);
	if (f->out == NULL) {
		free(f);
		api__error(req, 502, "cannot reach the node that holds this session");
		return;
	}
	evhttp_connection_set_timeout(f->out, FORWARD_TIMEOUT_S);
	struct evhttp_request *o = evhttp_request_new(answered, f);
	struct evkeyvalq *ih = httpd_in_headers(req);
	struct evkeyvalq *oh = evhttp_request_get_output_headers(o);
	static const char *const keep[] = {"Content-Type", "Accept", "User-Agent", NULL};
	for (size_t i = 0; keep[i]; i++) {
		const char *v = evhttp_find_header(ih, keep[i]);
		if (v != NULL)
			evhttp_add_header(oh, keep[i], v);
	}
	const char *hv = evhttp_find_header(ih, "Host");
	evhttp_add_header(oh, "Host", hv ? hv : "wagate");
	char ms[24], hex[65], val[200];
	const char *method = httpd_method_name(httpd_method(req));
	const char *uri = httpd_target(req);
	snprintf(ms, sizeof(ms), "%" PRIu64, wg_wall_ms());
	if (!mac(a, a->node, ms, method, uri, in, hex)) {
		evhttp_request_free(o);
		evhttp_connection_free(f->out);
		free(f);
		api__error(req, 414, "request URI too long to forward");
		return;
	}
	snprintf(val, sizeof(val), "%s %s %s", a->node, ms, hex);
	evhttp_add_header(oh, FORWARD_HEADER, val);
	evbuffer_add_buffer(evhttp_request_get_output_buffer(o), in);
	f->in = httpd_conn_of(req);
	httpd_set_closecb(f->in, client_closed, f);
	f->next = a->forwards;
	if (a->forwards)
		a->forwards->prev = f;
	a->forwards = f;
	log_info("api", "forwarding %s %s to node %s, which holds the session", method, uri, owner);
	if (evhttp_make_request(f->out, o, evhttp_method(httpd_method(req)), uri) != 0) {
		/* libevent freed o (evhttp_make_request frees the request it refuses). */
		httpd_set_closecb(f->in, NULL, NULL);
		unlink_fwd(f);
		evhttp_connection_free(f->out);
		free(f);
		api__error(req, 502, "cannot reach the node that holds this session");
	}
}

void
api__forwards_free(struct api *a)
{
	if (a->seen != NULL) {
		wg_map_free(&a->seen_map);
		free(a->seen);
		a->seen = NULL;
	}
	while (a->forwards) {
		struct api_forward *f = a->forwards;
		unlink_fwd(f);
		if (f->in != NULL)
			httpd_set_closecb(f->in, NULL, NULL);
		/* Frees its pending request without calling answered(). */
		evhttp_connection_free(f->out);
		free(f);
	}
}
