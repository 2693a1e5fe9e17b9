/*
 * WebSocket layer: real sockets on 127.0.0.1 (port 0), one event loop, no
 * sleeps. Every wait is event_base_loop() until a condition holds, with a
 * timer as a safety net so a broken build fails instead of hanging.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
#include "net/ws.h"
#include "net/ws_frame.h"
#include "core/enc.h"

static struct event_base *base;
static struct evdns_base *dns;
static bool timed_out;

static void
on_safety(evutil_socket_t fd, short what, void *arg)
{
	timed_out = true;
}

static struct event *
arm_safety(int ms)
{
	struct event *t = evtimer_new(base, on_safety, NULL);
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	timed_out = false;
	evtimer_add(t, &tv);
	return t;
}

/* Runs the loop until expr holds or ms pass. */
#define RUN_UNTIL(expr, ms)                                                                        \
	do {                                                                                       \
		struct event *safety_ = arm_safety(ms);                                            \
		while (!(expr) && !timed_out)                                                      \
			event_base_loop(base, EVLOOP_ONCE);                                        \
		event_free(safety_);                                                               \
	} while (0)

/* Runs the loop for ms; used only to show that something does NOT happen. */
#define RUN_FOR(ms) RUN_UNTIL(false, ms)

/* ---- a test endpoint: records what its connection reports ---- */

enum act { ACT_NONE, ACT_ECHO, ACT_CLOSE_IN_MSG, ACT_ABORT_IN_MSG };

struct peer {
	struct ws_conn *c;
	enum act act;
	bool opened, closed;
	int err, code;
	char reason[128];
	size_t nmsg, bytes;
	struct wg_buf last;
	uint32_t next_seq;
	bool seq_ok;
	const char *send_on_open;
	int send_rc_in_close; /* ws_send() result inside on_message after ws_close() */
	char remote[64];
};

static void
p_on_open(struct ws_conn *c, void *arg)
{
	struct peer *p = arg;
	p->opened = true;
	if (p->send_on_open)
		assert_int_equal(
		    ws_send(c, (const uint8_t *)p->send_on_open, strlen(p->send_on_open)), 0);
}

static void
p_on_message(struct ws_conn *c, const uint8_t *data, size_t len, void *arg)
{
	struct peer *p = arg;
	p->nmsg++;
	p->bytes += len;
	wg_buf_reset(&p->last);
	wg_buf_append(&p->last, data, len);
	if (len == 4) {
		uint32_t seq = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
		               (uint32_t)data[2] << 8 | data[3];
		if (seq != p->next_seq)
			p->seq_ok = false;
		p->next_seq = seq + 1;
	}
	switch (p->act) {
	case ACT_ECHO:
		assert_int_equal(ws_send(c, data, len), 0);
		break;
	case ACT_CLOSE_IN_MSG:
		ws_close(c, 4002, "closing from on_message");
		p->send_rc_in_close = ws_send(c, data, len);
		ws_close(c, 1000, "twice is harmless");
		ws_pause_reading(c, true);
		break;
	case ACT_ABORT_IN_MSG:
		ws_abort(c, false);
		ws_abort(c, true);
		ws_close(c, 1000, NULL);
		break;
	case ACT_NONE:
		break;
	}
}

static void
p_on_close(struct ws_conn *c, int err, int code, const char *reason, void *arg)
{
	struct peer *p = arg;
	assert_false(p->closed); /* exactly once */
	p->closed = true;
	p->err = err;
	p->code = code;
	snprintf(p->reason, sizeof(p->reason), "%s", reason);
	/* Calls on a closing connection are refused but safe. */
	assert_int_equal(ws_send(c, (const uint8_t *)"x", 1), WG_ESTATE);
	ws_close(c, 1000, NULL);
	ws_abort(c, true);
	p->c = NULL;
}

static const struct ws_callbacks peer_cbs = {
    .on_open = p_on_open,
    .on_message = p_on_message,
    .on_close = p_on_close,
};

static void
peer_init(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	p->seq_ok = true;
}

static void
peer_done(struct peer *p)
{
	wg_buf_free(&p->last);
}

/* ---- server fixture ---- */

struct srv {
	struct ws_server *s;
	int port;
	enum act act;
	const char *send_on_open;
	int n;
	struct peer peers[4];
};

static void
srv_on_accept(struct ws_conn *c, const char *remote, void *arg)
{
	struct srv *sv = arg;
	struct peer *p;
	assert_true(sv->n < 4);
	p = &sv->peers[sv->n++];
	p->c = c;
	p->act = sv->act;
	p->send_on_open = sv->send_on_open;
	snprintf(p->remote, sizeof(p->remote), "%s", remote);
	ws_conn_set_callbacks(c, &peer_cbs, p);
}

static void
srv_start(struct srv *sv)
{
	memset(sv, 0, sizeof(*sv));
	for (int i = 0; i < 4; i++)
		peer_init(&sv->peers[i]);
	sv->s = ws_server_new(base, "127.0.0.1:0", "/ws/chat", srv_on_accept, sv);
	assert_non_null(sv->s);
	sv->port = ws_server_port(sv->s);
	assert_true(sv->port > 0);
}

static void
srv_stop(struct srv *sv)
{
	for (int i = 0; i < sv->n; i++) {
		if (sv->peers[i].c)
			ws_abort(sv->peers[i].c, false);
		RUN_UNTIL(sv->peers[i].closed, 2000);
		assert_true(sv->peers[i].closed);
		peer_done(&sv->peers[i]);
	}
	ws_server_free(sv->s);
}

static int
client_start(struct peer *p, const char *scheme, int port, const char *path,
             const struct ws_limits *lim, SSL_CTX *ctx)
{
	char url[256];
	const char *hdrs[] = {"Cache-Control: no-cache", "Pragma: no-cache", NULL};
	struct ws_client_opts o = {.url = url,
	                           .origin = "https://web.whatsapp.com",
	                           .headers = hdrs,
	                           .dns = dns,
	                           .ssl_ctx = ctx};
	if (lim)
		o.limits = *lim;
	snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s", scheme, port, path);
	peer_init(p);
	return ws_client_connect(base, &o, &peer_cbs, p, &p->c);
}

static void
client_finish(struct peer *p)
{
	if (p->c)
		ws_abort(p->c, false);
	RUN_UNTIL(p->closed, 2000);
	assert_true(p->closed);
	peer_done(p);
}

static int
setup(void **state)
{
	base = event_base_new();
	dns = evdns_base_new(base, 0);
	return base && dns ? 0 : -1;
}

static int
teardown(void **state)
{
	/* No loop turn here: after a failed assertion, callbacks could still
	 * point at the finished test's stack. */
	evdns_base_free(dns, 0);
	event_base_free(base);
	return 0;
}

static int
listen_port(evutil_socket_t fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

/* ---- tests ---- */

static void
test_bad_arguments(void **state)
{
	static const char *bad[] = {
	    "http://127.0.0.1/ws", "ws://",
	    "ws:///path",          "ws://host:0/",
	    "ws://host:65536/",    "ws://host:123456/",
	    "ws://ho st/",         "ws://user@host/",
	    "ws://host/p#frag",    "ws://host:80x/",
	    "ws://[::1/",          "wss//host/",
	    "ws://host\r\nX: y/",
	};
	struct peer p;
	struct ws_conn *c = NULL;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ws_client_opts o = {.url = bad[i], .dns = dns};
		peer_init(&p);
		assert_int_equal(ws_client_connect(base, &o, &peer_cbs, &p, &c), WG_EINVAL);
		assert_null(c);
	}
	{
		const char *hdrs[] = {"X-Evil: a\r\nInjected: b", NULL};
		struct ws_client_opts o = {.url = "ws://127.0.0.1:1/", .headers = hdrs, .dns = dns};
		assert_int_equal(ws_client_connect(base, &o, &peer_cbs, &p, &c), WG_EINVAL);
		o.headers = NULL;
		o.origin = "https://x\r\nEvil: 1";
		assert_int_equal(ws_client_connect(base, &o, &peer_cbs, &p, &c), WG_EINVAL);
	}
	/* A failed call never fires a callback. */
	RUN_FOR(20);
	assert_false(p.closed);
	assert_null(ws_server_new(base, "not an address", "/ws", srv_on_accept, NULL));
	assert_null(ws_server_new(base, "127.0.0.1:0", "no-slash", srv_on_accept, NULL));
}

static void
test_echo_and_close(void **state)
{
	struct srv sv;
	struct peer cl;
	srv_start(&sv);
	sv.act = ACT_ECHO;
	sv.send_on_open = "hello from server";
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat?ED=abc", NULL, NULL), 0);
	{
		char want[32];
		snprintf(want, sizeof(want), "127.0.0.1:%d", sv.port);
		assert_string_equal(ws_remote(cl.c), want);
	}
	RUN_UNTIL(cl.opened && cl.nmsg == 1, 2000);
	assert_true(cl.opened);
	assert_int_equal(sv.n, 1);
	assert_true(sv.peers[0].opened);
	assert_true(ws_is_open(cl.c));
	assert_int_equal(strncmp(sv.peers[0].remote, "127.0.0.1:", 10), 0);
	assert_int_equal(cl.last.len, 17);
	assert_memory_equal(cl.last.data, "hello from server", 17);

	ws_conn_set_user(cl.c, &cl);
	assert_ptr_equal(ws_conn_user(cl.c), &cl);
	assert_int_equal(ws_send(cl.c, (const uint8_t *)"\x00\x01\x02ping", 7), 0);
	RUN_UNTIL(cl.nmsg == 2, 2000);
	assert_int_equal(sv.peers[0].nmsg, 1);
	assert_int_equal(cl.last.len, 7);
	assert_memory_equal(cl.last.data, "\x00\x01\x02ping", 7);

	/* Graceful close from the client: both sides see code and reason. */
	ws_close(cl.c, 4000, "bye now");
	assert_false(ws_is_open(cl.c));
	assert_int_equal(ws_send(cl.c, (const uint8_t *)"late", 4), WG_ESTATE);
	RUN_UNTIL(cl.closed && sv.peers[0].closed, 2000);
	assert_true(cl.closed);
	assert_int_equal(cl.err, 0);
	assert_int_equal(cl.code, 4000);
	assert_string_equal(cl.reason, "bye now");
	assert_true(sv.peers[0].closed);
	assert_int_equal(sv.peers[0].err, 0);
	assert_int_equal(sv.peers[0].code, 4000);
	assert_string_equal(sv.peers[0].reason, "bye now");
	client_finish(&cl);
	srv_stop(&sv);
}

static void
test_default_resolver(void **state)
{
	/* opts.dns NULL: the connection makes its own evdns base; numeric hosts
	 * never touch the network. */
	struct srv sv;
	struct peer cl;
	char url[64];
	struct ws_client_opts o = {.url = url};
	srv_start(&sv);
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws/chat", sv.port);
	peer_init(&cl);
	assert_int_equal(ws_client_connect(base, &o, &peer_cbs, &cl, &cl.c), 0);
	RUN_UNTIL(cl.opened, 2000);
	assert_true(cl.opened);
	ws_close(cl.c, 0, NULL);
	RUN_UNTIL(cl.closed && sv.peers[0].closed, 2000);
	assert_int_equal(cl.err, 0);
	assert_int_equal(cl.code, 1000);
	client_finish(&cl);

	/* Dropped while its own resolver is still looking up a name: the
	 * resolver is freed once evdns has reported the cancellation. */
	o.url = "ws://no-such-host.invalid/ws/chat";
	peer_init(&cl);
	assert_int_equal(ws_client_connect(base, &o, &peer_cbs, &cl, &cl.c), 0);
	ws_abort(cl.c, false);
	RUN_UNTIL(cl.closed, 2000);
	assert_int_equal(cl.err, 0);
	client_finish(&cl);
	RUN_FOR(50);
	srv_stop(&sv);
}

static void
test_large_and_many(void **state)
{
	struct srv sv;
	struct peer cl;
	size_t big = 1u << 20;
	uint8_t *msg = wg_malloc(big);
	srv_start(&sv);
	sv.act = ACT_ECHO;
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.opened, 2000);
	for (size_t i = 0; i < big; i++)
		msg[i] = (uint8_t)(i * 7 + (i >> 11));
	assert_int_equal(ws_send(cl.c, msg, big), 0);
	RUN_UNTIL(cl.nmsg == 1, 5000);
	assert_int_equal(cl.nmsg, 1);
	assert_int_equal(cl.last.len, big);
	assert_memory_equal(cl.last.data, msg, big);

	/* Many small messages, queued without running the loop in between. */
	cl.next_seq = 0;
	for (uint32_t i = 0; i < 2000; i++) {
		uint8_t b[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8),
		                (uint8_t)i};
		assert_int_equal(ws_send(cl.c, b, 4), 0);
	}
	RUN_UNTIL(cl.nmsg == 2001, 5000);
	assert_int_equal(cl.nmsg, 2001);
	assert_true(cl.seq_ok);
	assert_int_equal(sv.peers[0].nmsg, 2001);
	assert_true(sv.peers[0].seq_ok);
	free(msg);
	client_finish(&cl);
	srv_stop(&sv);
}

/* ---- a raw TCP endpoint for hand-made bytes ---- */

struct raw {
	struct bufferevent *bev;
	struct wg_buf in;
	bool connected, eof;
	/* fake-server mode */
	int mode;
	bool answered;
};

enum { FAKE_SILENT, FAKE_BAD_ACCEPT, FAKE_GOOD_WITH_FRAME };

static void
raw_read(struct bufferevent *b, void *arg)
{
	struct raw *r = arg;
	struct evbuffer *in = bufferevent_get_input(b);
	size_t n = evbuffer_get_length(in);
	wg_buf_reserve(&r->in, n);
	evbuffer_remove(in, r->in.data + r->in.len, n);
	r->in.len += n;
}

static void
raw_event(struct bufferevent *b, short what, void *arg)
{
	struct raw *r = arg;
	if (what & BEV_EVENT_CONNECTED)
		r->connected = true;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		r->eof = true;
}

static void
raw_connect(struct raw *r, int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	memset(r, 0, sizeof(*r));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(r->bev, raw_read, NULL, raw_event, r);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
	assert_int_equal(bufferevent_socket_connect(r->bev, (struct sockaddr *)&sin, sizeof(sin)),
	                 0);
	RUN_UNTIL(r->connected, 2000);
	assert_true(r->connected);
}

/* Writes bytes and lets the loop deliver them to the peer's socket and run
 * its read callback, so that each call is a separate read on the other end. */
static void
raw_write(struct raw *r, const void *data, size_t n)
{
	bufferevent_write(r->bev, data, n);
	RUN_UNTIL(evbuffer_get_length(bufferevent_get_output(r->bev)) == 0, 2000);
	for (int i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static bool
raw_has(struct raw *r, const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i + n <= r->in.len; i++)
		if (memcmp(r->in.data + i, s, n) == 0)
			return true;
	return false;
}

static void
raw_free(struct raw *r)
{
	if (r->bev)
		bufferevent_free(r->bev);
	wg_buf_free(&r->in);
}

/* A masked client frame. */
static size_t
mk_frame(uint8_t *out, uint8_t b0, const void *payload, size_t n)
{
	static const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
	const uint8_t *pl = payload;
	size_t i = 0;
	out[i++] = b0;
	if (n < 126) {
		out[i++] = (uint8_t)(0x80 | n);
	} else {
		out[i++] = 0x80 | 126;
		out[i++] = (uint8_t)(n >> 8);
		out[i++] = (uint8_t)n;
	}
	memcpy(out + i, mask, 4);
	i += 4;
	for (size_t j = 0; j < n; j++)
		out[i++] = pl[j] ^ mask[j % 4];
	return i;
}

static void
test_fragmented(void **state)
{
	static const char req1[] = "GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: web";
	static const char req2[] = "socket\r\nConnection: keep-alive, Upgrade\r\n"
	                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	                           "Sec-WebSocket-Version: 13\r\n\r\n";
	struct srv sv;
	struct raw r;
	uint8_t f[256];
	size_t n;
	srv_start(&sv);
	raw_connect(&r, sv.port);
	/* The upgrade request itself split across reads. */
	raw_write(&r, req1, sizeof(req1) - 1);
	assert_int_equal(sv.n, 0);
	raw_write(&r, req2, sizeof(req2) - 1);
	RUN_UNTIL(raw_has(&r, "\r\n\r\n"), 2000);
	assert_true(raw_has(&r, "HTTP/1.1 101 "));
	/* RFC 6455's own example key and answer. */
	assert_true(raw_has(&r, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	assert_int_equal(sv.n, 1);
	r.in.len = 0;

	/* One frame, one byte per TCP read. */
	n = mk_frame(f, 0x82, "hello world", 11);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(sv.peers[0].nmsg, 0);
		raw_write(&r, f + i, 1);
	}
	RUN_UNTIL(sv.peers[0].nmsg == 1, 2000);
	assert_int_equal(sv.peers[0].last.len, 11);
	assert_memory_equal(sv.peers[0].last.data, "hello world", 11);

	/* A WebSocket-fragmented message with a ping between the fragments. */
	n = mk_frame(f, 0x02, "abc", 3);
	raw_write(&r, f, n);
	n = mk_frame(f, 0x00, "def", 3);
	raw_write(&r, f, n);
	n = mk_frame(f, 0x89, "p", 1);
	raw_write(&r, f, n);
	assert_int_equal(sv.peers[0].nmsg, 1);
	n = mk_frame(f, 0x80, "ghi", 3);
	raw_write(&r, f, n);
	RUN_UNTIL(sv.peers[0].nmsg == 2 && r.in.len >= 3, 2000);
	assert_int_equal(sv.peers[0].last.len, 9);
	assert_memory_equal(sv.peers[0].last.data, "abcdefghi", 9);
	/* The ping was answered by the library itself. */
	assert_int_equal(r.in.len, 3);
	assert_memory_equal(r.in.data, "\x8a\x01p", 3);
	r.in.len = 0;

	/* Two messages in one read. */
	n = mk_frame(f, 0x82, "one", 3);
	n += mk_frame(f + n, 0x82, "two", 3);
	raw_write(&r, f, n);
	RUN_UNTIL(sv.peers[0].nmsg == 4, 2000);
	assert_memory_equal(sv.peers[0].last.data, "two", 3);

	/* The peer's close: answered, then the server closes TCP. */
	n = mk_frame(f, 0x88,
	             "\x03\xe9"
	             "done",
	             6);
	raw_write(&r, f, n);
	RUN_UNTIL(r.eof && sv.peers[0].closed, 2000);
	assert_true(r.eof);
	assert_int_equal(sv.peers[0].err, 0);
	assert_int_equal(sv.peers[0].code, 1001);
	assert_string_equal(sv.peers[0].reason, "done");
	assert_true(r.in.len >= 4);
	assert_memory_equal(r.in.data, "\x88\x06\x03\xe9", 4);
	raw_free(&r);
	srv_stop(&sv);
}

static void
test_server_rejects(void **state)
{
	/* Bad requests get an HTTP error and never reach the accept callback. */
	static const struct {
		const char *req;
		const char *status;
	} cases[] = {
	    {"POST /ws/chat HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "},
	    {"GET /ws/chat HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 "},
	    {"GET /other HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", "HTTP/1.1 404 "},
	    {"GET /ws/chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
	     "HTTP/1.1 426 "},
	};
	struct srv sv;
	srv_start(&sv);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct raw r;
		raw_connect(&r, sv.port);
		raw_write(&r, cases[i].req, strlen(cases[i].req));
		RUN_UNTIL(r.eof, 2000);
		assert_true(r.eof);
		assert_true(r.in.len > 13);
		assert_memory_equal(r.in.data, cases[i].status, 13);
		raw_free(&r);
	}
	/* A head that never ends is cut off at the limit. */
	{
		struct raw r;
		char junk[1024];
		memset(junk, 'a', sizeof(junk));
		raw_connect(&r, sv.port);
		raw_write(&r, "GET /ws/chat HTTP/1.1\r\nX: ", 26);
		for (int i = 0; i < 10 && !r.eof; i++)
			raw_write(&r, junk, sizeof(junk));
		RUN_UNTIL(r.eof, 2000);
		assert_true(r.eof);
		assert_true(raw_has(&r, "HTTP/1.1 431 "));
		raw_free(&r);
	}
	assert_int_equal(sv.n, 0);
	srv_stop(&sv);
}

static void
test_path_mismatch(void **state)
{
	struct srv sv;
	struct peer cl;
	srv_start(&sv);
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/other", NULL, NULL), 0);
	RUN_UNTIL(cl.closed, 2000);
	assert_true(cl.closed);
	assert_false(cl.opened);
	assert_int_equal(cl.err, WG_EPROTO);
	assert_int_equal(cl.code, 404);
	assert_non_null(strstr(cl.reason, "404"));
	assert_int_equal(sv.n, 0);
	client_finish(&cl);
	srv_stop(&sv);
}

static void
test_refuse(void **state)
{
	struct srv sv;
	struct peer cl;
	uint64_t t0;
	srv_start(&sv);
	ws_server_set_refuse(sv.s, true);
	t0 = wg_now_ms();
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.closed, 5000);
	assert_true(cl.closed);
	assert_true(wg_now_ms() - t0 < 1000);
	assert_false(cl.opened);
	assert_int_equal(cl.err, WG_EPROTO);
	assert_int_equal(cl.code, 503);
	assert_string_equal(cl.reason, "HTTP/1.1 503 Service Unavailable");
	client_finish(&cl);

	ws_server_set_refuse(sv.s, false);
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.opened, 2000);
	assert_true(cl.opened);
	client_finish(&cl);
	srv_stop(&sv);
}

static void
test_closed_port(void **state)
{
	struct peer cl;
	int port;
	evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	port = listen_port(fd);
	close(fd); /* bound, never listened, now free: connecting is refused */
	assert_int_equal(client_start(&cl, "ws", port, "/ws/chat", NULL, NULL), 0);
	assert_false(cl.closed); /* reported later, never from inside the call */
	RUN_UNTIL(cl.closed, 2000);
	assert_true(cl.closed);
	assert_false(cl.opened);
	assert_int_equal(cl.err, WG_EIO);
	assert_int_equal(cl.code, 0);
	client_finish(&cl);
}

static void
test_handshake_timeout(void **state)
{
	/* Listens but never accepts: TCP completes through the backlog, no
	 * HTTP answer ever comes. */
	struct peer cl;
	struct ws_limits lim = {.handshake_timeout_ms = 200};
	uint64_t t0, dt;
	evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	t0 = wg_now_ms();
	assert_int_equal(client_start(&cl, "ws", listen_port(fd), "/ws/chat", &lim, NULL), 0);
	RUN_UNTIL(cl.closed, 3000);
	dt = wg_now_ms() - t0;
	assert_true(cl.closed);
	assert_int_equal(cl.err, WG_ETIMEDOUT);
	assert_true(dt >= 150 && dt < 1500);
	client_finish(&cl);
	close(fd);
}

static void
test_server_close(void **state)
{
	struct srv sv;
	struct peer cl;
	srv_start(&sv);
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.opened && sv.n == 1, 2000);
	ws_close(sv.peers[0].c, 4001, "server says bye");
	RUN_UNTIL(cl.closed && sv.peers[0].closed, 2000);
	assert_int_equal(cl.err, 0);
	assert_int_equal(cl.code, 4001);
	assert_string_equal(cl.reason, "server says bye");
	assert_int_equal(sv.peers[0].err, 0);
	assert_int_equal(sv.peers[0].code, 4001);
	client_finish(&cl);
	srv_stop(&sv);
}

static void
test_abort(void **state)
{
	struct srv sv;
	struct peer cl;
	srv_start(&sv);
	/* With reset the peer sees an RST: a socket error, not an EOF. */
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.opened && sv.n == 1, 2000);
	ws_abort(sv.peers[0].c, true);
	assert_false(sv.peers[0].closed); /* deferred */
	RUN_UNTIL(cl.closed && sv.peers[0].closed, 2000);
	assert_int_equal(sv.peers[0].err, 0);
	assert_int_equal(sv.peers[0].code, 1006);
	assert_int_equal(cl.err, WG_EIO);
	assert_int_equal(cl.code, 1006);
	client_finish(&cl);

	/* Without reset: a plain FIN, so the peer sees EOF without a close frame. */
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.opened && sv.n == 2, 2000);
	ws_abort(sv.peers[1].c, false);
	RUN_UNTIL(cl.closed && sv.peers[1].closed, 2000);
	assert_int_equal(cl.err, WG_ECLOSED);
	assert_int_equal(cl.code, 1006);
	client_finish(&cl);

	/* Abort while still connecting. */
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	ws_abort(cl.c, false);
	RUN_UNTIL(cl.closed, 2000);
	assert_false(cl.opened);
	assert_int_equal(cl.err, 0);
	client_finish(&cl);
	srv_stop(&sv);
}

static void
test_pause_reading(void **state)
{
	struct srv sv;
	struct peer cl;
	srv_start(&sv);
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.opened && sv.n == 1, 2000);
	ws_pause_reading(sv.peers[0].c, true);
	assert_int_equal(ws_send(cl.c, (const uint8_t *)"one", 3), 0);
	assert_int_equal(ws_send(cl.c, (const uint8_t *)"two", 3), 0);
	RUN_FOR(100);
	assert_int_equal(sv.peers[0].nmsg, 0);
	assert_false(sv.peers[0].closed);
	ws_pause_reading(sv.peers[0].c, false);
	RUN_UNTIL(sv.peers[0].nmsg == 2, 2000);
	assert_int_equal(sv.peers[0].nmsg, 2);
	assert_memory_equal(sv.peers[0].last.data, "two", 3);
	client_finish(&cl);
	srv_stop(&sv);
}

static void
test_oversized(void **state)
{
	struct srv sv;
	struct peer cl;
	struct ws_limits lim = {.max_message = 1024};
	uint8_t msg[2048];
	srv_start(&sv);
	ws_server_set_limits(sv.s, &lim);
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.opened && sv.n == 1, 2000);
	memset(msg, 'z', sizeof(msg));
	assert_int_equal(ws_send(cl.c, msg, 1024), 0); /* exactly at the limit */
	RUN_UNTIL(sv.peers[0].nmsg == 1, 2000);
	assert_int_equal(ws_send(cl.c, msg, sizeof(msg)), 0);
	RUN_UNTIL(cl.closed && sv.peers[0].closed, 3000);
	assert_int_equal(sv.peers[0].nmsg, 1);
	assert_int_equal(sv.peers[0].err, WG_ELIMIT);
	assert_int_equal(sv.peers[0].code, 1009);
	assert_true(cl.closed);
	assert_int_equal(cl.err, 0);
	assert_int_equal(cl.code, 1009);
	client_finish(&cl);
	srv_stop(&sv);
}

/* The limit changed on an open connection holds from then on (a client raises it after the handshake). */
static void
test_max_message_raised(void **state)
{
	struct srv sv;
	struct peer cl;
	struct ws_limits lim = {.max_message = 1024};
	uint8_t msg[2048];
	srv_start(&sv);
	ws_server_set_limits(sv.s, &lim);
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.opened && sv.n == 1, 2000);
	ws_set_max_message(sv.peers[0].c, sizeof(msg));
	memset(msg, 'z', sizeof(msg));
	assert_int_equal(ws_send(cl.c, msg, sizeof(msg)), 0);
	RUN_UNTIL(sv.peers[0].nmsg == 1, 2000);
	assert_false(sv.peers[0].closed);
	client_finish(&cl);
	srv_stop(&sv);
}

static void
test_close_inside_callbacks(void **state)
{
	struct srv sv;
	struct peer cl;
	srv_start(&sv);
	sv.act = ACT_CLOSE_IN_MSG;
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.opened && sv.n == 1, 2000);
	assert_int_equal(ws_send(cl.c, (const uint8_t *)"a", 1), 0);
	assert_int_equal(ws_send(cl.c, (const uint8_t *)"b", 1), 0);
	RUN_UNTIL(cl.closed && sv.peers[0].closed, 3000);
	assert_int_equal(sv.peers[0].send_rc_in_close, WG_ESTATE);
	assert_int_equal(cl.code, 4002);
	assert_int_equal(cl.err, 0);
	assert_string_equal(cl.reason, "closing from on_message");
	client_finish(&cl);

	/* ws_abort from on_message: later messages of the same read are dropped. */
	sv.act = ACT_ABORT_IN_MSG;
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.opened && sv.n == 2, 2000);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ws_send(cl.c, (const uint8_t *)"m", 1), 0);
	RUN_UNTIL(cl.closed && sv.peers[1].closed, 3000);
	assert_int_equal(sv.peers[1].nmsg, 1);
	assert_int_equal(sv.peers[1].err, 0);
	client_finish(&cl);
	srv_stop(&sv);
}

static void
test_close_timeout(void **state)
{
	/* The server stops reading, so it never answers our close frame; we must
	 * give up after close_timeout_ms instead of waiting as long as the peer likes. */
	struct srv sv;
	struct peer cl;
	struct ws_limits lim = {.close_timeout_ms = 200};
	uint64_t t0, dt;
	srv_start(&sv);
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", &lim, NULL), 0);
	RUN_UNTIL(cl.opened && sv.n == 1, 2000);
	ws_pause_reading(sv.peers[0].c, true);
	t0 = wg_now_ms();
	ws_close(cl.c, 1000, "going");
	RUN_UNTIL(cl.closed, 3000);
	dt = wg_now_ms() - t0;
	assert_true(cl.closed);
	assert_int_equal(cl.err, WG_ETIMEDOUT);
	assert_int_equal(cl.code, 1000);
	assert_true(dt >= 150 && dt < 1500);
	client_finish(&cl);
	srv_stop(&sv);
}

static void
test_send_limit(void **state)
{
	struct srv sv;
	struct peer cl;
	struct ws_limits lim = {.max_queued = 100 * 1024};
	uint8_t msg[10 * 1024];
	int sent = 0, rc = 0;
	srv_start(&sv);
	assert_int_equal(client_start(&cl, "ws", sv.port, "/ws/chat", &lim, NULL), 0);
	RUN_UNTIL(cl.opened && sv.n == 1, 2000);
	memset(msg, 1, sizeof(msg));
	/*
	 * The server stops reading: frames go straight into the socket until the
	 * kernel's buffers are full, then into the process's queue, which is
	 * bounded. Without running the loop nothing else drains it.
	 */
	ws_pause_reading(sv.peers[0].c, true);
	RUN_FOR(50);
	while (sent < 100000 && (rc = ws_send(cl.c, msg, sizeof(msg))) == 0)
		sent++;
	assert_int_equal(rc, WG_ELIMIT);
	assert_true(sent >= 10);
	assert_int_equal(ws_send(cl.c, msg, 200 * 1024), WG_ELIMIT);
	/* Once the socket drained, sending works again. */
	ws_pause_reading(sv.peers[0].c, false);
	RUN_UNTIL(sv.peers[0].nmsg == (size_t)sent, 10000);
	assert_int_equal(sv.peers[0].nmsg, sent);
	assert_int_equal(ws_send(cl.c, msg, sizeof(msg)), 0);
	client_finish(&cl);
	srv_stop(&sv);
}

/* ---- a fake server that answers the upgrade by hand ---- */

static void
fake_read(struct bufferevent *b, void *arg)
{
	struct raw *r = arg;
	char key[64] = "", accept[64];
	const char *k;
	raw_read(b, r);
	if (r->answered || !raw_has(r, "\r\n\r\n"))
		return;
	r->answered = true;
	wg_buf_push(&r->in, 0);
	k = strstr((const char *)r->in.data, "Sec-WebSocket-Key: ");
	assert_non_null(k);
	assert_non_null(
	    strstr((const char *)r->in.data, "\r\nOrigin: https://web.whatsapp.com\r\n"));
	assert_non_null(strstr((const char *)r->in.data, "\r\nPragma: no-cache\r\n"));
	memcpy(key, k + 19, 24);
	switch (r->mode) {
	case FAKE_BAD_ACCEPT:
		evbuffer_add_printf(bufferevent_get_output(b),
		                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		                    "Connection: Upgrade\r\n"
		                    "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n");
		break;
	case FAKE_GOOD_WITH_FRAME: {
		uint8_t md[20];
		unsigned mdlen = 0;
		char in[128];
		snprintf(in, sizeof(in), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
		EVP_Digest(in, strlen(in), md, &mdlen, EVP_sha1(), NULL);
		EVP_EncodeBlock((unsigned char *)accept, md, 20);
		/* The first frame in the same segment as the 101. */
		evbuffer_add_printf(bufferevent_get_output(b),
		                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
		                    "Connection: upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
		                    "\x82\x05"
		                    "early",
		                    accept);
		break;
	}
	default:
		break;
	}
}

static void
fake_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	struct raw *r = arg;
	r->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(r->bev, fake_read, NULL, raw_event, r);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
}

static struct evconnlistener *
fake_listen(struct raw *r, int mode, int *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct evconnlistener *lis;
	memset(r, 0, sizeof(*r));
	r->mode = mode;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lis =
	    evconnlistener_new_bind(base, fake_accept, r, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	                            8, (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(lis);
	*port = listen_port(evconnlistener_get_fd(lis));
	return lis;
}

static void
test_bad_accept(void **state)
{
	struct raw r;
	struct peer cl;
	int port;
	struct evconnlistener *lis = fake_listen(&r, FAKE_BAD_ACCEPT, &port);
	assert_int_equal(client_start(&cl, "ws", port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.closed, 2000);
	assert_true(cl.closed);
	assert_false(cl.opened);
	assert_int_equal(cl.err, WG_EPROTO);
	assert_non_null(strstr(cl.reason, "Sec-WebSocket-Accept"));
	client_finish(&cl);
	raw_free(&r);
	evconnlistener_free(lis);

	/* A correct answer with a frame right behind it in the same read. */
	lis = fake_listen(&r, FAKE_GOOD_WITH_FRAME, &port);
	assert_int_equal(client_start(&cl, "ws", port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.nmsg == 1, 2000);
	assert_true(cl.opened);
	assert_int_equal(cl.last.len, 5);
	assert_memory_equal(cl.last.data, "early", 5);
	client_finish(&cl);
	raw_free(&r);
	evconnlistener_free(lis);
}

/* ---- DNS: a resolver on loopback that says NXDOMAIN to everything ---- */

static void
nxdomain_read(evutil_socket_t fd, short what, void *arg)
{
	uint8_t pkt[512];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	ssize_t n = recvfrom(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&from, &flen);
	int *queries = arg;
	if (n < 12)
		return;
	(*queries)++;
	pkt[2] = (uint8_t)(0x80 | (pkt[2] & 0x79)); /* QR, same opcode and RD */
	pkt[3] = 0x83;                              /* RA, RCODE 3 = NXDOMAIN */
	sendto(fd, pkt, (size_t)n, 0, (struct sockaddr *)&from, flen);
}

static void
test_dns_failure_async(void **state)
{
	struct peer cl;
	struct evdns_base *d;
	struct event *ev;
	char ns[64];
	int queries = 0;
	uint64_t t0;
	evutil_socket_t fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct ws_client_opts o = {.url = "wss://no-such-host.invalid/ws/chat",
	                           .origin = "https://web.whatsapp.com"};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	evutil_make_socket_nonblocking(fd);
	ev = event_new(base, fd, EV_READ | EV_PERSIST, nxdomain_read, &queries);
	event_add(ev, NULL);
	d = evdns_base_new(base, 0);
	snprintf(ns, sizeof(ns), "127.0.0.1:%d", listen_port(fd));
	assert_int_equal(evdns_base_nameserver_ip_add(d, ns), 0);
	o.dns = d;

	/* Loading the CA store is a one-time start-up cost, not part of a connect. */
	assert_non_null(ws_tls_default_ctx());
	peer_init(&cl);
	t0 = wg_now_ms();
	assert_int_equal(ws_client_connect(base, &o, &peer_cbs, &cl, &cl.c), 0);
	assert_true(wg_now_ms() - t0 < 100);
	assert_false(cl.closed);
	assert_int_equal(queries, 0); /* nothing was asked synchronously */
	RUN_UNTIL(cl.closed, 5000);
	assert_true(cl.closed);
	assert_true(queries >= 1);
	assert_false(cl.opened);
	assert_int_equal(cl.err, WG_ENOTFOUND);
	assert_non_null(strstr(cl.reason, "no-such-host.invalid"));
	client_finish(&cl);

	/* A connection dropped while its lookup is in flight cancels it. */
	peer_init(&cl);
	assert_int_equal(ws_client_connect(base, &o, &peer_cbs, &cl, &cl.c), 0);
	ws_close(cl.c, 1000, NULL);
	RUN_UNTIL(cl.closed, 2000);
	assert_int_equal(cl.err, 0);
	client_finish(&cl);
	evdns_base_free(d, 0);
	event_free(ev);
	close(fd);

	/* A resolver that never answers: the connect deadline covers DNS too,
	 * and the lookup still in flight is cancelled. */
	{
		uint64_t dt;
		evutil_socket_t mute = socket(AF_INET, SOCK_DGRAM, 0);
		assert_int_equal(bind(mute, (struct sockaddr *)&sin, sizeof(sin)), 0);
		d = evdns_base_new(base, 0);
		snprintf(ns, sizeof(ns), "127.0.0.1:%d", listen_port(mute));
		assert_int_equal(evdns_base_nameserver_ip_add(d, ns), 0);
		o.dns = d;
		o.connect_timeout_ms = 200;
		peer_init(&cl);
		t0 = wg_now_ms();
		assert_int_equal(ws_client_connect(base, &o, &peer_cbs, &cl, &cl.c), 0);
		RUN_UNTIL(cl.closed, 3000);
		dt = wg_now_ms() - t0;
		assert_true(cl.closed);
		assert_int_equal(cl.err, WG_ETIMEDOUT);
		assert_true(dt >= 150 && dt < 1500);
		client_finish(&cl);
		/* Let evdns deliver the cancellation before its base goes. */
		RUN_FOR(50);
		evdns_base_free(d, 0);
		close(mute);
	}
}

/* ---- TLS on loopback with a certificate made here ---- */

static void
make_cert(EVP_PKEY **key, X509 **crt)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	X509_NAME *name;
	X509 *x = X509_new();
	*key = EVP_EC_gen("P-256");
	assert_non_null(*key);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, *key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"wagate test",
	                           -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, *key, EVP_sha256()) > 0);
	*crt = x;
}

static void
test_tls_loopback(void **state)
{
	struct srv sv;
	struct peer cl;
	EVP_PKEY *key;
	X509 *crt;
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	make_cert(&key, &crt);
	assert_int_equal(SSL_CTX_use_certificate(sctx, crt), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(sctx, key), 1);
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), crt), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);

	srv_start(&sv);
	sv.act = ACT_ECHO;
	ws_server_set_tls(sv.s, sctx);
	assert_int_equal(client_start(&cl, "wss", sv.port, "/ws/chat", NULL, cctx), 0);
	RUN_UNTIL(cl.opened, 3000);
	assert_true(cl.opened);
	assert_int_equal(ws_send(cl.c, (const uint8_t *)"over tls", 8), 0);
	RUN_UNTIL(cl.nmsg == 1, 2000);
	assert_memory_equal(cl.last.data, "over tls", 8);
	ws_close(cl.c, 1000, "tls bye");
	RUN_UNTIL(cl.closed && sv.peers[0].closed, 2000);
	assert_int_equal(cl.err, 0);
	assert_int_equal(cl.code, 1000);
	assert_int_equal(sv.peers[0].code, 1000);
	client_finish(&cl);

	/* The system CA store does not know our certificate. */
	assert_int_equal(client_start(&cl, "wss", sv.port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl.closed, 3000);
	assert_true(cl.closed);
	assert_false(cl.opened);
	assert_int_equal(cl.err, WG_ECERT);
	client_finish(&cl);
	srv_stop(&sv);

	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	X509_free(crt);
	EVP_PKEY_free(key);
}

/* ---- memory per idle connection ---- */

#define MEM_N 200

struct mem_srv {
	int n;
	struct ws_conn *conns[MEM_N + 1];
	int closed;
};

static void
mem_on_close(struct ws_conn *c, int err, int code, const char *reason, void *arg)
{
	(*(int *)arg)++;
}

static const struct ws_callbacks mem_cbs = {.on_close = mem_on_close};

static void
mem_accept(struct ws_conn *c, const char *remote, void *arg)
{
	struct mem_srv *m = arg;
	m->conns[m->n++] = c;
	ws_conn_set_callbacks(c, &mem_cbs, &m->closed);
}

static int
count_opened(const struct peer *p, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += p[i].opened;
	return k;
}


/* ---- the frame codec (ws_frame.c), without sockets ---- */

static void
test_frame_codec(void **state)
{
	uint8_t hdr[WS_FRAME_HEADER_MAX];
	struct ws_frame_header h;
	int code;
	static const uint64_t lens[] = {0, 1, 125, 126, 65535, 65536, 4u << 20};
	static const uint8_t key[4] = {1, 2, 3, 4};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (int masked = 0; masked < 2; masked++) {
			size_t n = ws_frame_header_write(hdr, WS_OP_BINARY, true, lens[i], masked ? key : NULL);
			assert_int_equal(n, (lens[i] < 126 ? 2 : lens[i] <= 0xffff ? 4 : 10) + (masked ? 4 : 0));
			/* Every prefix is "need more", the whole header parses back. */
			for (size_t k = 0; k < n; k++)
				assert_int_equal(ws_frame_parse(hdr, k, masked, &h, &code), 0);
			assert_int_equal(ws_frame_parse(hdr, n, masked, &h, &code), 1);
			assert_true(h.fin);
			assert_int_equal(h.opcode, WS_OP_BINARY);
			assert_int_equal(h.len, lens[i]);
			assert_int_equal(h.hdr_len, n);
			assert_int_equal(h.masked, masked);
			if (masked)
				assert_memory_equal(h.mask, key, 4);
			/* The wrong role: a client must not see a mask, a server must. */
			assert_int_equal(ws_frame_parse(hdr, n, !masked, &h, &code), -1);
			assert_int_equal(code, WS_CODE_PROTOCOL);
		}
	}
	/* Refused headers. */
	static const struct {
		uint8_t b[10];
		size_t n;
	} bad[] = {
	    {{0xc2, 0x00}, 2},                       /* RSV1 */
	    {{0x83, 0x00}, 2},                       /* reserved data opcode */
	    {{0x8b, 0x00}, 2},                       /* reserved control opcode */
	    {{0x09, 0x00}, 2},                       /* a fragmented ping */
	    {{0x88, 0x7e, 0x00, 0x7e}, 4},           /* a close of 126 bytes */
	    {{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10}, /* 64-bit length with its top bit */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		code = 0;
		assert_int_equal(ws_frame_parse(bad[i].b, bad[i].n, false, &h, &code), -1);
		assert_int_equal(code, WS_CODE_PROTOCOL);
	}
	/* Masking is its own inverse, at any offset and length. */
	uint8_t data[37], copy[37];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = copy[i] = (uint8_t)(i * 7);
	ws_frame_mask(data, sizeof(data), key, 0);
	assert_int_equal(data[0], copy[0] ^ 1);
	assert_int_equal(data[5], copy[5] ^ 2);
	ws_frame_mask(data, 3, key, 0);
	ws_frame_mask(data + 3, sizeof(data) - 3, key, 3);
	assert_memory_equal(data, copy, sizeof(data));
	/* UTF-8. */
	assert_true(wg_utf8_valid((const uint8_t *)"", 0));
	assert_true(wg_utf8_valid((const uint8_t *)"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 16));
	assert_false(wg_utf8_valid((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
	assert_false(wg_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
	assert_false(wg_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
	assert_false(wg_utf8_valid((const uint8_t *)"\xe2\x82", 2));         /* cut short */
	assert_false(wg_utf8_valid((const uint8_t *)"\x80", 1));
	assert_true(ws_close_code_valid(1000) && ws_close_code_valid(4999));
	assert_false(ws_close_code_valid(1005) || ws_close_code_valid(1006) || ws_close_code_valid(999));
}

/* What a server answers to a frame that breaks the protocol: a close frame with the code, then TCP closed. */
static void
expect_failure(const uint8_t *frames, size_t n, int want_code, int want_err)
{
	struct srv sv;
	struct raw r;
	static const char req[] = "GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	                          "Sec-WebSocket-Version: 13\r\n\r\n";
	srv_start(&sv);
	raw_connect(&r, sv.port);
	raw_write(&r, req, sizeof(req) - 1);
	RUN_UNTIL(raw_has(&r, "\r\n\r\n"), 2000);
	r.in.len = 0;
	raw_write(&r, frames, n);
	RUN_UNTIL(r.eof && sv.peers[0].closed, 3000);
	assert_true(sv.peers[0].closed);
	assert_int_equal(sv.peers[0].err, want_err);
	assert_int_equal(sv.peers[0].code, want_code);
	assert_int_equal(sv.peers[0].nmsg, 0);
	assert_true(r.in.len >= 4);
	assert_int_equal(r.in.data[0], 0x88);
	assert_int_equal(r.in.data[2] << 8 | r.in.data[3], want_code);
	raw_free(&r);
	srv_stop(&sv);
}

static void
test_protocol_errors(void **state)
{
	uint8_t f[512];
	size_t n;
	/* A continuation with no message begun. */
	n = mk_frame(f, 0x80, "x", 1);
	expect_failure(f, n, WS_CODE_PROTOCOL, WG_EPROTO);
	/* A new message while one is in fragments. */
	n = mk_frame(f, 0x02, "a", 1);
	n += mk_frame(f + n, 0x82, "b", 1);
	expect_failure(f, n, WS_CODE_PROTOCOL, WG_EPROTO);
	/* Text that is not UTF-8, whole and put together from fragments. */
	n = mk_frame(f, 0x81, "\xc0\xaf", 2);
	expect_failure(f, n, WS_CODE_INVALID_DATA, WG_EPROTO);
	n = mk_frame(f, 0x01, "\xe2\x82", 2);
	n += mk_frame(f + n, 0x80, "\xff", 1);
	expect_failure(f, n, WS_CODE_INVALID_DATA, WG_EPROTO);
	/* A close with one byte, with a code no one may send, with a reason that is not UTF-8. */
	n = mk_frame(f, 0x88, "\x03", 1);
	expect_failure(f, n, WS_CODE_PROTOCOL, WG_EPROTO);
	n = mk_frame(f, 0x88, "\x03\xed", 2); /* 1005 */
	expect_failure(f, n, WS_CODE_PROTOCOL, WG_EPROTO);
	n = mk_frame(f, 0x88, "\x03\xe8\xff", 3);
	expect_failure(f, n, WS_CODE_INVALID_DATA, WG_EPROTO);
	/* An unmasked frame from a client. */
	static const uint8_t plain[] = {0x82, 0x01, 'x'};
	expect_failure(plain, sizeof(plain), WS_CODE_PROTOCOL, WG_EPROTO);
}

static void
test_memory_per_connection(void **state)
{
	struct mem_srv m = {0};
	struct peer *cl = wg_calloc(MEM_N + 1, sizeof(*cl));
	struct ws_server *s = ws_server_new(base, "127.0.0.1:0", "/ws/chat", mem_accept, &m);
	int port = ws_server_port(s), opened = 0;
	size_t before, after;
	/* One connection first, so one-time allocations (RNG state, ...) are out of the way. */
	assert_int_equal(client_start(&cl[MEM_N], "ws", port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL(cl[MEM_N].opened, 2000);
	before = mallinfo2().uordblks;
	for (int i = 0; i < MEM_N; i++)
		assert_int_equal(client_start(&cl[i], "ws", port, "/ws/chat", NULL, NULL), 0);
	RUN_UNTIL((opened = count_opened(cl, MEM_N)) == MEM_N && m.n == MEM_N + 1, 5000);
	assert_int_equal(opened, MEM_N);
	after = mallinfo2().uordblks;
	if (after > before) {
		size_t per = (after - before) / (2 * MEM_N);
		print_message(
		    "memory per idle connection (client and server averaged): %zu bytes\n", per);
		/* Was about 10 KiB with wslay's two fixed 4 KiB buffers per connection. */
		assert_true(per < 3 * 1024);
	}
	for (int i = 0; i <= MEM_N; i++)
		client_finish(&cl[i]);
	RUN_UNTIL(m.closed == MEM_N + 1, 3000);
	assert_int_equal(m.closed, MEM_N + 1);
	ws_server_free(s);
	free(cl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_echo_and_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_resolver, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_large_and_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fragmented, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_rejects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_path_mismatch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refuse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closed_port, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_handshake_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pause_reading, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_message_raised, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_inside_callbacks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_accept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dns_failure_async, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_loopback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_frame_codec, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_protocol_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memory_per_connection, setup, teardown),
	};
	/* WS_TEST_FILTER=test_name runs one test (for debugging). */
	if (getenv("WS_TEST_FILTER"))
		cmocka_set_test_filter(getenv("WS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
