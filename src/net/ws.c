/*
 * WebSocket client and server on libevent bufferevents; frames by ws_frame.c.
 *
 * Every connection is a small state machine (enum ws_state) changed only by
 * ws_set_state(), which also arms or disarms the one timer the state needs.
 * All ways out go through ws_teardown(), which records why, stops the
 * bufferevent and hands the rest (on_close, then freeing) to a deferred event,
 * so no object is ever freed from inside one of its own callbacks and user
 * code may call any ws_* function from any callback.
 *
 * Memory: an idle open connection is this struct, a bufferevent with two empty
 * evbuffers and two events, about 1 KiB. Frames are read in place from the
 * bufferevent's input and written into its output (or straight to the
 * socket), so a connection keeps no frame buffer of its own; only a message
 * that arrives in fragments is put together in one, freed when it is whole.
 * The HTTP upgrade is parsed straight out of the input buffer too, so nothing
 * of it survives the upgrade.
 */
#include "net/ws.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/ws_frame.h"

#include "core/buf.h"
#include "core/enc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#define WS_DEFAULT_MAX_MESSAGE (4u << 20)
#define WS_DEFAULT_MAX_QUEUED (8u << 20)
#define WS_DEFAULT_HANDSHAKE_MS 20000u
#define WS_DEFAULT_CLOSE_MS 2000u
#define WS_DEFAULT_CONNECT_MS 20000u
/* Largest HTTP request or response head we read during the upgrade. */
#define WS_MAX_HEAD 8192u
#define WS_MAX_URL 2048u
#define WS_MAX_HOST 255u
#define WS_MAX_EXTRA_HEADERS 32
#define WS_MAX_HEADER_BYTES 4096u
/* Upgrades in progress per server: each costs a socket and a timer until
 * handshake_timeout_ms, so a flood of idle TCP connections must stop somewhere. */
#define WS_MAX_PENDING 16384
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum ws_state {
	WS_CONNECTING, /* client: DNS, TCP connect, TLS handshake */
	WS_HANDSHAKE,  /* HTTP upgrade request and answer */
	WS_OPEN,
	WS_CLOSING, /* our close frame is queued or sent; waiting for the peer's */
	WS_LINGER,  /* nothing more to say; discarding input until EOF or timeout */
	WS_CLOSED,  /* torn down; on_close and free pending on the defer event */
};

static const char *const ws_state_names[] = {"connecting", "handshake", "open",
                                             "closing",    "linger",    "closed"};

struct ws_conn {
	enum ws_state state;
	bool is_server;
	bool is_tls;
	bool paused;
	bool background;      /* its events at the lowest priority (ws_set_background) */
	bool prio_applied;    /* the bufferevent's priority matches `background` */
	bool in_pump;
	bool shut_wr;
	uint16_t close_code; /* what ws_close() asked for */
	int err, code;       /* outcome, reported by on_close */

	struct event_base *base;
	struct bufferevent *bev;
	/* Receiving, once open: a fragmented message being put together (NULL
	 * between messages), the closing handshake, and a protocol failure. */
	uint8_t *msg;
	size_t msg_len, msg_cap;
	uint8_t msg_op;       /* text or binary while msg is being filled, else 0 */
	bool close_sent, close_received;
	uint16_t code_received;
	uint16_t fail_code;   /* the close code we failed the connection with (1002, 1007, 1009) */
	struct event *timer; /* the deadline of the current state */
	struct event *defer; /* on_close + free, or resuming after a pause */
	struct ws_callbacks cb;
	void *arg;
	void *user;
	struct ws_limits lim;

	/* Client, until the upgrade completes. */
	uint32_t connect_timeout_ms;
	char *host;
	uint16_t port;
	char *req;
	size_t req_len;
	SSL_CTX *ssl_ctx; /* our reference until the SSL object exists */
	struct evdns_base *dns;
	bool own_dns;
	struct evdns_getaddrinfo_request *dns_req;
	struct ws_dns_ticket *dns_ticket;
	char accept[32]; /* expected Sec-WebSocket-Accept */

	/* Server, until handed to the accept callback. */
	struct ws_server *srv;
	struct ws_conn *prev, *next;

	char remote[64];
	char reason[124]; /* close reason: pending ws_close(), then the outcome */
};

/*
 * What a DNS request points at. evdns reports a cancelled request later, from
 * its own callback, so the request can outlive a connection dropped
 * mid-lookup; then c is NULL and the ticket also carries the connection's own
 * resolver, which may only be freed once the request is finished.
 */
struct ws_dns_ticket {
	struct ws_conn *c;
	struct event_base *base;
	struct evdns_base *own_dns;
};

struct ws_server {
	struct event_base *base;
	struct evconnlistener *lis;
	struct event *resume; /* re-enables accepting after EMFILE */
	char *path;
	ws_accept_cb cb;
	void *arg;
	bool refuse;
	SSL_CTX *ssl_ctx;
	struct ws_limits lim;
	int port;
	int npending;
	struct ws_conn *pending; /* upgrades in progress */
};

static void ws_on_read(struct bufferevent *bev, void *arg);
static void ws_on_write(struct bufferevent *bev, void *arg);
static void ws_on_event(struct bufferevent *bev, short what, void *arg);
static void ws_pump(struct ws_conn *c);
static void ws_on_timer(evutil_socket_t fd, short what, void *arg);

/* ---- small helpers ---- */

static void
ws_limits_fill(struct ws_limits *out, const struct ws_limits *in)
{
	struct ws_limits d = {0};
	if (in)
		d = *in;
	if (d.max_message == 0)
		d.max_message = WS_DEFAULT_MAX_MESSAGE;
	if (d.max_queued == 0)
		d.max_queued = WS_DEFAULT_MAX_QUEUED;
	if (d.handshake_timeout_ms == 0)
		d.handshake_timeout_ms = WS_DEFAULT_HANDSHAKE_MS;
	if (d.close_timeout_ms == 0)
		d.close_timeout_ms = WS_DEFAULT_CLOSE_MS;
	*out = d;
}

/* Copies at most n bytes of a reason, cutting at a UTF-8 character boundary. */
static void
ws_set_reason(char *dst, size_t dstsz, const char *src, size_t n)
{
	if (n >= dstsz) {
		n = dstsz - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
ws_timer_arm(struct ws_conn *c, uint32_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	evtimer_add(c->timer, &tv);
}

static void
ws_timer_disarm(struct ws_conn *c)
{
	evtimer_del(c->timer);
}

int
ws_accept_value(const char *key, size_t keylen, char out[32])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *md_ctx = EVP_MD_CTX_new();
	int ok = md_ctx && EVP_DigestInit_ex(md_ctx, EVP_sha1(), NULL) &&
	         EVP_DigestUpdate(md_ctx, key, keylen) &&
	         EVP_DigestUpdate(md_ctx, WS_GUID, sizeof(WS_GUID) - 1) &&
	         EVP_DigestFinal_ex(md_ctx, md, &mdlen) && mdlen == 20;
	EVP_MD_CTX_free(md_ctx);
	if (!ok)
		return WG_EIO;
	EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters and a NUL */
	return 0;
}

/* ---- life cycle ---- */

static void
ws_set_state(struct ws_conn *c, enum ws_state st, const char *why)
{
	enum ws_state old = c->state;
	log_debug("ws", "%s %s -> %s (%s)", c->remote, ws_state_names[old], ws_state_names[st],
	          why);
	c->state = st;
	switch (st) {
	case WS_CONNECTING:
		ws_timer_arm(c, c->connect_timeout_ms);
		break;
	case WS_HANDSHAKE:
		ws_timer_arm(c, c->lim.handshake_timeout_ms);
		break;
	case WS_OPEN:
		ws_timer_disarm(c);
		break;
	case WS_CLOSING:
		ws_timer_arm(c, c->lim.close_timeout_ms);
		break;
	case WS_LINGER:
		/* Coming from CLOSING the close deadline keeps running. */
		if (old != WS_CLOSING)
			ws_timer_arm(c, c->lim.close_timeout_ms);
		break;
	case WS_CLOSED:
		ws_timer_disarm(c);
		event_active(c->defer, EV_TIMEOUT, 0);
		break;
	}
}

static void
ws_server_unlink(struct ws_conn *c)
{
	struct ws_server *s = c->srv;
	if (!s)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->pending = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->srv = NULL;
	s->npending--;
}

/* The writes being gathered while a connection's input is read (ws_cork, below). */
static struct evbuffer *cork_buf;
static struct ws_conn *cork_owner;

/* Frees everything; copes with half-built connections. Never called from a
 * callback of c's own bufferevent. */
static void
ws_conn_destroy(struct ws_conn *c)
{
	if (!c)
		return;
	ws_server_unlink(c);
	if (cork_owner == c) {
		/* Freed while its writes were being gathered (an owner tearing everything down). */
		cork_owner = NULL;
		evbuffer_drain(cork_buf, evbuffer_get_length(cork_buf));
	}
	if (c->dns_ticket) {
		struct ws_dns_ticket *t = c->dns_ticket;
		t->c = NULL;
		if (c->own_dns) {
			t->own_dns = c->dns;
			c->own_dns = false;
		}
		c->dns_ticket = NULL;
		/* ws_on_dns runs later with EVUTIL_EAI_CANCEL and frees the ticket. */
		if (c->dns_req)
			evdns_getaddrinfo_cancel(c->dns_req);
		c->dns_req = NULL;
	}
	if (c->bev)
		bufferevent_free(c->bev); /* closes the socket and frees the SSL object */
	free(c->msg);
	if (c->timer)
		event_free(c->timer);
	if (c->defer)
		event_free(c->defer);
	if (c->own_dns && c->dns)
		evdns_base_free(c->dns, 0);
	if (c->ssl_ctx)
		SSL_CTX_free(c->ssl_ctx);
	free(c->host);
	free(c->req);
	free(c);
}

/* The one way out. Records the outcome, stops all I/O and schedules on_close. */
static void
ws_teardown(struct ws_conn *c, int err, int code, const char *why)
{
	if (c->state == WS_CLOSED)
		return;
	c->err = err;
	c->code = code;
	if (why != c->reason)
		ws_set_reason(c->reason, sizeof(c->reason), why, strlen(why));
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	ws_set_state(c, WS_CLOSED, c->reason);
}

static void
ws_on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct ws_conn *c = arg;
	if (c->state != WS_CLOSED) {
		/* Resuming after ws_pause_reading(false): input may already be buffered. */
		if (c->state == WS_HANDSHAKE)
			ws_on_read(c->bev, c);
		else
			ws_pump(c);
		return;
	}
	if (c->cb.on_close)
		c->cb.on_close(c, c->err, c->code, c->reason, c->arg);
	ws_conn_destroy(c);
}

static void
ws_shutdown_write(struct ws_conn *c)
{
	evutil_socket_t fd;
	if (c->shut_wr || !c->bev)
		return;
	c->shut_wr = true;
	fd = bufferevent_getfd(c->bev);
	if (fd >= 0)
		shutdown(fd, SHUT_WR);
}

/*
 * Ends a connection whose input we no longer want but whose last words (a
 * close frame or an HTTP error) must reach the peer: closing a socket with
 * unread input makes the kernel send a RST, which can destroy those words in
 * flight. So flush, send FIN, and discard input until EOF or the close timeout.
 */
static void
ws_linger(struct ws_conn *c, int err, int code, const char *why)
{
	if (c->state == WS_CLOSED || c->state == WS_LINGER)
		return;
	c->err = err;
	c->code = code;
	if (why != c->reason)
		ws_set_reason(c->reason, sizeof(c->reason), why, strlen(why));
	ws_set_state(c, WS_LINGER, c->reason);
	c->paused = false;
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	evbuffer_drain(bufferevent_get_input(c->bev),
	               evbuffer_get_length(bufferevent_get_input(c->bev)));
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		ws_shutdown_write(c);
}

static struct ws_conn *
ws_conn_new(struct event_base *base, const struct ws_limits *lim)
{
	struct ws_conn *c = wg_calloc(1, sizeof(*c));
	c->base = base;
	c->state = WS_CONNECTING;
	ws_limits_fill(&c->lim, lim);
	c->timer = evtimer_new(base, ws_on_timer, c);
	c->defer = event_new(base, -1, 0, ws_on_defer, c);
	if (!c->timer || !c->defer) {
		ws_conn_destroy(c);
		return NULL;
	}
	return c;
}

/* ---- frames ---- */

/*
 * Masking keys (RFC 6455 5.3: unpredictable to the page's scripts) come from
 * OpenSSL's CSPRNG a few hundred at a time: one RAND_bytes call per frame
 * was about 7 % of an idle session's CPU. One event loop per process, so the
 * pool needs no lock.
 */
static int
ws_mask_key(uint8_t key[4])
{
	static uint8_t pool[1024];
	static size_t left;
	if (left < 4) {
		if (RAND_bytes(pool, (int)sizeof(pool)) != 1)
			return WG_EIO;
		left = sizeof(pool);
	}
	memcpy(key, pool + sizeof(pool) - left, 4);
	/* Handed out once: wiped from the pool. */
	memset(pool + sizeof(pool) - left, 0, 4);
	left -= 4;
	return 0;
}

/*
 * Frames written while one connection's input is being read (the answers to
 * what came in: acks, pongs, the next step of a login) are gathered here and
 * leave together when the read is done: one system call and one TCP segment
 * for the lot instead of one each (on loopback each send also runs the
 * receiver's TCP input). One loop per process, so one gathering at a time;
 * frames for another connection meanwhile go out as usual.
 */

static void
ws_cork(struct ws_conn *c)
{
	if (cork_owner != NULL || c->is_tls)
		return;
	if (cork_buf == NULL && (cork_buf = evbuffer_new()) == NULL)
		return;
	cork_owner = c;
}

/* Sends what was gathered for c: straight to the socket when nothing waits before it. */
static void
ws_uncork(struct ws_conn *c)
{
	if (cork_owner != c)
		return;
	cork_owner = NULL;
	size_t n = evbuffer_get_length(cork_buf);
	if (n == 0)
		return;
	if (c->state == WS_CLOSED || c->bev == NULL) {
		evbuffer_drain(cork_buf, n);
		return;
	}
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) == 0)
		(void)evbuffer_write(cork_buf, bufferevent_getfd(c->bev));
	if (evbuffer_get_length(cork_buf) > 0 && evbuffer_add_buffer(out, cork_buf) != 0)
		evbuffer_drain(cork_buf, evbuffer_get_length(cork_buf));
}

/*
 * Writes one whole frame (a client's masked). Straight to the socket when
 * nothing is waiting in the output, as most frames are small and the socket
 * has room: through the bufferevent each frame cost an epoll_ctl to watch for
 * writability, the write, and another epoll_ctl to stop watching, most of an
 * idle session's system calls. What does not fit goes to the bufferevent's
 * output, which keeps the order of everything sent; an error is left for the
 * bufferevent to meet.
 */
static int
ws_write_frame(struct ws_conn *c, uint8_t opcode, const uint8_t *data, size_t len)
{
	uint8_t hdr[WS_FRAME_HEADER_MAX], key[4], small[512];
	uint8_t *masked = NULL;
	const uint8_t *payload = data;
	if (c->state == WS_LINGER || c->state == WS_CLOSED || c->bev == NULL)
		return WG_ESTATE;
	if (!c->is_server) {
		if (ws_mask_key(key) != 0)
			return WG_EIO;
		masked = len <= sizeof(small) ? small : wg_malloc(len);
		if (len > 0)
			memcpy(masked, data, len);
		ws_frame_mask(masked, len, key, 0);
		payload = masked;
	}
	size_t hl = ws_frame_header_write(hdr, opcode, true, len, c->is_server ? NULL : key);
	bool corked = cork_owner == c;
	struct evbuffer *out = corked ? cork_buf : bufferevent_get_output(c->bev);
	size_t sent = 0;
	if (!corked && evbuffer_get_length(out) == 0 && !c->is_tls) {
		struct iovec iov[2] = {{hdr, hl}, {(void *)payload, len}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1};
		ssize_t n = sendmsg(bufferevent_getfd(c->bev), &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			sent = (size_t)n;
	}
	int rc = 0;
	if (sent < hl && evbuffer_add(out, hdr + sent, hl - sent) != 0)
		rc = WG_EIO;
	size_t done = sent > hl ? sent - hl : 0;
	if (rc == 0 && done < len && evbuffer_add(out, payload + done, len - done) != 0)
		rc = WG_EIO;
	if (masked != NULL && masked != small)
		free(masked);
	return rc;
}

static void
ws_send_close(struct ws_conn *c, int code, const char *reason)
{
	uint8_t p[2 + 123];
	size_t rl = reason ? strnlen(reason, 123) : 0;
	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)code;
	if (rl > 0)
		memcpy(p + 2, reason, rl);
	c->close_sent = true;
	(void)ws_write_frame(c, WS_OP_CLOSE, p, 2 + rl);
}

static void
ws_msg_drop(struct ws_conn *c)
{
	free(c->msg);
	c->msg = NULL;
	c->msg_len = c->msg_cap = 0;
	c->msg_op = 0;
}

/* The peer broke the protocol: say so with code, then stop reading (ws_check_close ends it). */
static void
ws_fail(struct ws_conn *c, int code)
{
	c->fail_code = (uint16_t)code;
	ws_msg_drop(c);
	if (!c->close_sent)
		ws_send_close(c, code, NULL);
}

static void
ws_deliver(struct ws_conn *c, uint8_t op, const uint8_t *data, size_t len)
{
	if (op == WS_OP_TEXT && !wg_utf8_valid(data, len)) {
		ws_fail(c, WS_CODE_INVALID_DATA);
		return;
	}
	if (c->cb.on_message)
		c->cb.on_message(c, data, len, c->arg);
}

/* One whole frame, its payload unmasked. May call on_message. */
static void
ws_on_frame(struct ws_conn *c, const struct ws_frame_header *h, const uint8_t *p)
{
	size_t len = (size_t)h->len;
	switch (h->opcode) {
	case WS_OP_TEXT:
	case WS_OP_BINARY:
	case WS_OP_CONT:
		if (h->fin && c->msg_op == 0) {
			ws_deliver(c, h->opcode, p, len); /* the usual case: no copy */
			return;
		}
		if (h->opcode != WS_OP_CONT)
			c->msg_op = h->opcode;
		if (c->msg_len + len > c->msg_cap) {
			size_t cap = c->msg_cap ? c->msg_cap : 256;
			while (cap < c->msg_len + len)
				cap *= 2;
			if (cap > c->lim.max_message)
				cap = c->lim.max_message;
			c->msg = wg_realloc(c->msg, cap);
			c->msg_cap = cap;
		}
		if (len > 0)
			memcpy(c->msg + c->msg_len, p, len);
		c->msg_len += len;
		if (h->fin) {
			uint8_t *m = c->msg, op = c->msg_op;
			size_t n = c->msg_len;
			c->msg = NULL; /* handed over: delivered, then freed here */
			ws_msg_drop(c);
			ws_deliver(c, op, m, n);
			free(m);
		}
		return;
	case WS_OP_PING:
		if (!c->close_sent)
			(void)ws_write_frame(c, WS_OP_PONG, p, len);
		return;
	case WS_OP_PONG:
		return;
	case WS_OP_CLOSE: {
		int code = len >= 2 ? (p[0] << 8 | p[1]) : WS_CODE_NO_STATUS;
		if (len == 1 || (len >= 2 && !ws_close_code_valid(code))) {
			ws_fail(c, WS_CODE_PROTOCOL);
			return;
		}
		if (len > 2 && !wg_utf8_valid(p + 2, len - 2)) {
			ws_fail(c, WS_CODE_INVALID_DATA);
			return;
		}
		c->close_received = true;
		c->code_received = (uint16_t)code;
		ws_msg_drop(c);
		if (len > 2)
			ws_set_reason(c->reason, sizeof(c->reason), (const char *)p + 2, len - 2);
		else
			c->reason[0] = '\0';
		/* The answer echoes the peer's code and reason, as is usual. */
		if (!c->close_sent) {
			c->close_sent = true;
			(void)ws_write_frame(c, WS_OP_CLOSE, p, len);
		}
		return;
	}
	default:
		return; /* ws_frame_parse lets no other opcode through */
	}
}

/*
 * Reads every whole frame waiting in the input, in place: the header is
 * copied out (14 bytes at most), the payload pulled up contiguous in the
 * evbuffer and unmasked there, then drained. A frame waits in the input until
 * all of it has arrived; its length is checked against max_message first.
 */
static void
ws_read_frames(struct ws_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	while (!c->paused && (c->state == WS_OPEN || c->state == WS_CLOSING)) {
		size_t have = evbuffer_get_length(in);
		if (c->close_received || c->fail_code) {
			/* After a close was received or the peer broke the protocol, input is
			 * ignored, but it must not pile up. */
			evbuffer_drain(in, have);
			return;
		}
		uint8_t hb[WS_FRAME_HEADER_MAX];
		size_t hn = have < sizeof(hb) ? have : sizeof(hb);
		if (hn < 2)
			return;
		if (evbuffer_copyout(in, hb, hn) != (ev_ssize_t)hn) {
			ws_teardown(c, WG_EIO, WS_CODE_ABNORMAL, "websocket receive failed");
			return;
		}
		struct ws_frame_header h;
		int code = 0;
		int r = ws_frame_parse(hb, hn, c->is_server, &h, &code);
		if (r == 0)
			return;
		if (r < 0) {
			ws_fail(c, code);
			continue;
		}
		if (h.opcode < WS_OP_CLOSE) {
			/* A continuation needs a message begun; a new message needs none. */
			if ((h.opcode == WS_OP_CONT) != (c->msg_op != 0)) {
				ws_fail(c, WS_CODE_PROTOCOL);
				continue;
			}
			if (c->msg_len > c->lim.max_message || h.len > c->lim.max_message - c->msg_len) {
				ws_fail(c, WS_CODE_TOO_BIG);
				continue;
			}
		}
		if (have - h.hdr_len < h.len)
			return;
		evbuffer_drain(in, h.hdr_len);
		uint8_t *p = NULL;
		if (h.len > 0) {
			p = evbuffer_pullup(in, (ev_ssize_t)h.len);
			if (p == NULL) {
				ws_teardown(c, WG_EIO, WS_CODE_ABNORMAL, "websocket receive failed");
				return;
			}
			if (h.masked)
				ws_frame_mask(p, (size_t)h.len, h.mask, 0);
		}
		ws_on_frame(c, &h, p);
		evbuffer_drain(in, (size_t)h.len);
	}
}

/* ---- open connections ---- */

/* Decides, after reading or writing, whether the connection is finished. */
static void
ws_check_close(struct ws_conn *c)
{
	bool drained = evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
	if (c->close_received) {
		/* Our answer is queued; done once it is on the wire. */
		if (c->close_sent && drained)
			ws_teardown(c, 0, c->code_received, c->reason);
		return;
	}
	if (c->fail_code) {
		/* The peer sent an oversized message or broke the protocol; our close
		 * frame says so (1009, 1002 or 1007); we cannot read its answer. */
		if (c->close_sent && drained) {
			bool big = c->fail_code == WS_CODE_TOO_BIG;
			ws_linger(c, big ? WG_ELIMIT : WG_EPROTO, c->fail_code,
			          big ? "message too big" : "protocol error from peer");
		}
		return;
	}
	if (c->close_sent && c->state == WS_OPEN)
		ws_set_state(c, WS_CLOSING, "close frame sent");
}

/* Moves bytes: whole frames from the input to the callbacks; then sees whether it is over. */
static void
ws_pump(struct ws_conn *c)
{
	if (c->state != WS_OPEN && c->state != WS_CLOSING)
		return;
	/* Re-entered from a user callback: the outer call finishes the job. */
	if (c->in_pump)
		return;
	c->in_pump = true;
	/* What the frames make us write leaves in one send (ws_cork). */
	ws_cork(c);
	ws_read_frames(c);
	ws_uncork(c);
	if (c->state == WS_OPEN || c->state == WS_CLOSING)
		ws_check_close(c);
	c->in_pump = false;
}

/* Called once the upgrade is complete on either side. */
static void
ws_open(struct ws_conn *c)
{
	free(c->host);
	free(c->req);
	c->host = c->req = NULL;
	ws_set_state(c, WS_OPEN, "upgrade complete");
	if (c->srv) {
		struct ws_server *s = c->srv;
		ws_server_unlink(c);
		/* The server may be freed inside the callback; s is not used after it. */
		s->cb(c, c->remote, s->arg);
	}
	if (c->state == WS_OPEN && c->cb.on_open)
		c->cb.on_open(c, c->arg);
	/* Bytes that followed the HTTP head in the same read. */
	ws_pump(c);
}

/* ---- HTTP upgrade ---- */

/* Returns 1 with the head (ending in CRLFCRLF) pulled up, 0 if incomplete,
 * WG_ELIMIT if it exceeds WS_MAX_HEAD. */
static int
ws_http_head(struct ws_conn *c, const char **head, size_t *len)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (p.pos < 0)
		return evbuffer_get_length(in) > WS_MAX_HEAD ? WG_ELIMIT : 0;
	if ((size_t)p.pos + 4 > WS_MAX_HEAD)
		return WG_ELIMIT;
	*len = (size_t)p.pos + 4;
	*head = (const char *)evbuffer_pullup(in, (ev_ssize_t)*len);
	return *head ? 1 : WG_EIO;
}

static bool
ws_is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Finds a header by name (case-insensitive) after the first line; the value
 * is returned trimmed, not NUL-terminated. */
static bool
ws_http_header(const char *head, size_t len, const char *name, const char **val, size_t *vlen)
{
	size_t nlen = strlen(name);
	const char *end = head + len;
	const char *p = memchr(head, '\n', len);
	while (p && p + 1 < end) {
		const char *line = p + 1;
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		size_t ll;
		if (!eol)
			break;
		ll = (size_t)(eol - line);
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
			const char *v = line + nlen + 1, *ve = line + ll;
			while (v < ve && ws_is_space(*v))
				v++;
			while (ve > v && ws_is_space(ve[-1]))
				ve--;
			*val = v;
			*vlen = (size_t)(ve - v);
			return true;
		}
		p = eol;
	}
	return false;
}

/* True if the comma-separated header value contains token (case-insensitive). */
static bool
ws_http_has_token(const char *head, size_t len, const char *name, const char *token)
{
	const char *v, *end;
	size_t vlen, tlen = strlen(token);
	if (!ws_http_header(head, len, name, &v, &vlen))
		return false;
	end = v + vlen;
	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *te = comma ? comma : end;
		const char *ts = v;
		while (ts < te && ws_is_space(*ts))
			ts++;
		while (te > ts && ws_is_space(te[-1]))
			te--;
		if ((size_t)(te - ts) == tlen && strncasecmp(ts, token, tlen) == 0)
			return true;
		if (!comma)
			break;
		v = comma + 1;
	}
	return false;
}

static void
ws_client_on_head(struct ws_conn *c)
{
	const char *head, *v;
	size_t len, vlen;
	int status = 0;
	int r = ws_http_head(c, &head, &len);
	if (r == 0)
		return;
	if (r < 0) {
		ws_teardown(c, WG_EPROTO, 0, "upgrade answer too long");
		return;
	}
	if (len < 13 || (memcmp(head, "HTTP/1.1 ", 9) != 0 && memcmp(head, "HTTP/1.0 ", 9) != 0)) {
		ws_teardown(c, WG_EPROTO, 0, "upgrade answer is not HTTP");
		return;
	}
	for (int i = 9; i < 12; i++) {
		if (head[i] < '0' || head[i] > '9') {
			ws_teardown(c, WG_EPROTO, 0, "upgrade answer has a bad status");
			return;
		}
		status = status * 10 + (head[i] - '0');
	}
	if (status != 101) {
		/* Keep the status line as the reason: "HTTP/1.1 503 Service Unavailable". */
		const char *eol = memchr(head, '\r', len);
		size_t n = eol ? (size_t)(eol - head) : 12;
		char why[96];
		ws_set_reason(why, sizeof(why), head, n);
		ws_teardown(c, WG_EPROTO, status, why);
		return;
	}
	if (!ws_http_has_token(head, len, "Upgrade", "websocket") ||
	    !ws_http_has_token(head, len, "Connection", "upgrade")) {
		ws_teardown(c, WG_EPROTO, 0, "101 answer without Upgrade: websocket");
		return;
	}
	if (!ws_http_header(head, len, "Sec-WebSocket-Accept", &v, &vlen) ||
	    vlen != strlen(c->accept) || memcmp(v, c->accept, vlen) != 0) {
		ws_teardown(c, WG_EPROTO, 0, "bad Sec-WebSocket-Accept");
		return;
	}
	evbuffer_drain(bufferevent_get_input(c->bev), len);
	ws_open(c);
}

/* Answers an upgrade we will not do and lets the connection go quietly. */
static void
ws_server_reject(struct ws_conn *c, const char *status, const char *extra)
{
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	                    "HTTP/1.1 %s\r\nConnection: close\r\nContent-Length: 0\r\n%s\r\n",
	                    status, extra ? extra : "");
	ws_linger(c, WG_EPROTO, 0, status);
}

static void
ws_server_on_head(struct ws_conn *c)
{
	struct ws_server *s = c->srv;
	const char *head, *key, *ver, *path, *pe, *sp;
	size_t len, keylen, verlen, plen;
	int r = ws_http_head(c, &head, &len);
	if (r == 0)
		return;
	if (r < 0) {
		ws_server_reject(c, "431 Request Header Fields Too Large", NULL);
		return;
	}
	/* Request line: GET SP path SP HTTP/1.1 */
	if (len < 14 || memcmp(head, "GET ", 4) != 0) {
		ws_server_reject(c, "400 Bad Request", NULL);
		return;
	}
	path = head + 4;
	sp = memchr(path, ' ', len - 4);
	if (!sp || (size_t)(head + len - sp) < 9 || memcmp(sp, " HTTP/1.1\r\n", 11) != 0) {
		ws_server_reject(c, "400 Bad Request", NULL);
		return;
	}
	pe = memchr(path, '?', (size_t)(sp - path));
	plen = (size_t)((pe ? pe : sp) - path);
	if (s->refuse) {
		ws_server_reject(c, "503 Service Unavailable", NULL);
		return;
	}
	if (plen != strlen(s->path) || memcmp(path, s->path, plen) != 0) {
		ws_server_reject(c, "404 Not Found", NULL);
		return;
	}
	if (!ws_http_has_token(head, len, "Upgrade", "websocket") ||
	    !ws_http_has_token(head, len, "Connection", "upgrade") ||
	    !ws_http_header(head, len, "Sec-WebSocket-Key", &key, &keylen) || keylen != 24) {
		ws_server_reject(c, "400 Bad Request", NULL);
		return;
	}
	if (!ws_http_header(head, len, "Sec-WebSocket-Version", &ver, &verlen) || verlen != 2 ||
	    memcmp(ver, "13", 2) != 0) {
		ws_server_reject(c, "426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n");
		return;
	}
	if (ws_accept_value(key, keylen, c->accept) != 0) {
		ws_server_reject(c, "500 Internal Server Error", NULL);
		return;
	}
	evbuffer_drain(bufferevent_get_input(c->bev), len);
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	                    c->accept);
	ws_open(c);
}

/* ---- bufferevent callbacks ---- */

static void ws_apply_priority(struct ws_conn *c);

static void
ws_on_read(struct bufferevent *bev, void *arg)
{
	struct ws_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	ws_apply_priority(c);
	switch (c->state) {
	case WS_HANDSHAKE:
		if (c->paused)
			break;
		if (c->is_server)
			ws_server_on_head(c);
		else
			ws_client_on_head(c);
		break;
	case WS_OPEN:
	case WS_CLOSING:
		ws_pump(c);
		break;
	case WS_LINGER:
	case WS_CONNECTING:
	case WS_CLOSED:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	}
}

static void
ws_on_write(struct bufferevent *bev, void *arg)
{
	struct ws_conn *c = arg;
	switch (c->state) {
	case WS_OPEN:
	case WS_CLOSING:
		/* Input is read as it comes (ws_on_read); drained output can only finish a close. */
		ws_check_close(c);
		break;
	case WS_LINGER:
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			ws_shutdown_write(c);
		break;
	default:
		break;
	}
}

static void
ws_set_nodelay(struct bufferevent *bev)
{
	int one = 1;
	evutil_socket_t fd = bufferevent_getfd(bev);
	/* Messages are small and latency matters more than segment count. */
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Classifies a socket or TLS failure. */
static int
ws_io_error(struct ws_conn *c, char *why, size_t whysz)
{
	int sock_err = EVUTIL_SOCKET_ERROR();
	if (c->is_tls) {
		unsigned long e, first = 0;
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
			if (!first)
				first = e;
		if (ssl && SSL_get_verify_result(ssl) != X509_V_OK) {
			snprintf(why, whysz, "certificate rejected: %s",
			         X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
			return WG_ECERT;
		}
		if (first) {
			char buf[120];
			ERR_error_string_n(first, buf, sizeof(buf));
			snprintf(why, whysz, "TLS: %s", buf);
			return WG_EIO;
		}
	}
	snprintf(why, whysz, "%s",
	         sock_err ? evutil_socket_error_to_string(sock_err) : "I/O error");
	return WG_EIO;
}

static void
ws_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct ws_conn *c = arg;
	char why[160];
	int err;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state != WS_CONNECTING)
			return;
		ws_set_nodelay(bev);
		bufferevent_write(bev, c->req, c->req_len);
		free(c->req);
		c->req = NULL;
		ws_set_state(c, WS_HANDSHAKE, "connected");
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (what & BEV_EVENT_ERROR)
		err = ws_io_error(c, why, sizeof(why));
	else {
		err = WG_ECLOSED;
		snprintf(why, sizeof(why), "connection closed by peer");
	}
	switch (c->state) {
	case WS_CONNECTING:
		ws_teardown(c, err, 0, why);
		break;
	case WS_HANDSHAKE:
		ws_teardown(c, err, 0,
		            err == WG_ECLOSED ? "connection closed during the upgrade" : why);
		break;
	case WS_OPEN:
	case WS_CLOSING:
		if (c->close_received)
			ws_teardown(c, 0, c->code_received, c->reason);
		else
			ws_teardown(c, err, WS_CODE_ABNORMAL, why);
		break;
	case WS_LINGER:
		ws_teardown(c, c->err, c->code, c->reason);
		break;
	case WS_CLOSED:
		break;
	}
}

static void
ws_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ws_conn *c = arg;
	switch (c->state) {
	case WS_CONNECTING:
		ws_teardown(c, WG_ETIMEDOUT, 0, "connect timed out");
		break;
	case WS_HANDSHAKE:
		ws_teardown(c, WG_ETIMEDOUT, 0, "upgrade timed out");
		break;
	case WS_CLOSING:
		ws_teardown(c, WG_ETIMEDOUT,
		            c->close_code ? c->close_code : WS_CODE_ABNORMAL,
		            "peer did not finish the closing handshake");
		break;
	case WS_LINGER:
		ws_teardown(c, c->err, c->code, c->reason);
		break;
	default:
		break;
	}
}

/* ---- public connection API ---- */

int
ws_send(struct ws_conn *c, const uint8_t *data, size_t len)
{
	if (!c || c->state != WS_OPEN || c->close_sent)
		return WG_ESTATE;
	size_t pending = evbuffer_get_length(bufferevent_get_output(c->bev)) +
	                 (cork_owner == c ? evbuffer_get_length(cork_buf) : 0);
	if (len > c->lim.max_queued || pending > c->lim.max_queued - len)
		return WG_ELIMIT;
	return ws_write_frame(c, WS_OP_BINARY, data, len);
}

void
ws_close(struct ws_conn *c, int code, const char *reason)
{
	if (!c)
		return;
	switch (c->state) {
	case WS_CONNECTING:
	case WS_HANDSHAKE:
		ws_teardown(c, 0, WS_CODE_ABNORMAL, "closed before the upgrade completed");
		return;
	case WS_OPEN:
		break;
	default:
		return; /* already closing */
	}
	if (code == 0 || !ws_close_code_valid(code))
		code = WS_CODE_NORMAL;
	c->close_code = (uint16_t)code;
	reason = reason ? reason : "";
	/* 123 bytes is the most a control frame leaves for the reason. */
	ws_set_reason(c->reason, 124, reason, strnlen(reason, 124));
	/* After every message already sent: the output keeps their order. */
	ws_send_close(c, code, c->reason);
	ws_set_state(c, WS_CLOSING, "local close");
	ws_pump(c);
}

void
ws_destroy(struct ws_conn *c)
{
	ws_conn_destroy(c);
}

void
ws_abort(struct ws_conn *c, bool reset)
{
	if (!c || c->state == WS_CLOSED)
		return;
	if (reset && c->bev) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		evutil_socket_t fd = bufferevent_getfd(c->bev);
		if (fd >= 0)
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	ws_teardown(c, 0, WS_CODE_ABNORMAL, reset ? "aborted with reset" : "aborted");
}

/* Three priorities: 0 unused, 1 every event by default (libevent gives new events n/2), 2 background. */
#define WS_PRIORITIES 3
#define WS_PRIO_DEFAULT 1
#define WS_PRIO_BACKGROUND 2

struct event_base *
ws_base_new(void)
{
	struct event_config *cfg = event_config_new();
	if (cfg == NULL)
		return NULL;
	/* After a few background callbacks, look for other events before going on. */
	event_config_set_max_dispatch_interval(cfg, NULL, WS_BACKGROUND_BURST, WS_PRIO_BACKGROUND);
	struct event_base *base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (base != NULL && event_base_priority_init(base, WS_PRIORITIES) != 0) {
		event_base_free(base);
		return NULL;
	}
	return base;
}

void
ws_set_background(struct ws_conn *c, bool background)
{
	if (c == NULL || c->background == background)
		return;
	c->background = background;
	c->prio_applied = false;
	ws_apply_priority(c);
}

void
ws_set_max_message(struct ws_conn *c, size_t max_message)
{
	if (c == NULL || max_message == 0)
		return;
	c->lim.max_message = max_message;
}

void
ws_pause_reading(struct ws_conn *c, bool paused)
{
	if (!c || c->state == WS_CLOSED || c->state == WS_LINGER || c->paused == paused)
		return;
	c->paused = paused;
	if (!c->bev)
		return; /* still resolving; applied when the bufferevent is made */
	if (paused) {
		bufferevent_disable(c->bev, EV_READ);
	} else {
		bufferevent_enable(c->bev, EV_READ);
		/* Input already buffered raises no new read event. */
		event_active(c->defer, EV_TIMEOUT, 0);
	}
}

const char *
ws_remote(const struct ws_conn *c)
{
	return c ? c->remote : "";
}

void
ws_conn_set_callbacks(struct ws_conn *c, const struct ws_callbacks *cb, void *arg)
{
	if (!c)
		return;
	if (cb)
		c->cb = *cb;
	else
		memset(&c->cb, 0, sizeof(c->cb));
	c->arg = arg;
}

void
ws_conn_set_user(struct ws_conn *c, void *user)
{
	if (c)
		c->user = user;
}

void *
ws_conn_user(const struct ws_conn *c)
{
	return c ? c->user : NULL;
}

bool
ws_is_open(const struct ws_conn *c)
{
	return c && c->state == WS_OPEN && !c->close_sent;
}

/* ---- client ---- */

struct ws_url {
	bool tls;
	bool ipv6;
	char host[WS_MAX_HOST + 1];
	uint16_t port;
	const char *path; /* into the URL; "" means "/" */
};

static bool
ws_host_char(char ch, bool bracketed)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	if (ch == '-' || ch == '.' || ch == '_')
		return true;
	return bracketed && (ch == ':' || ch == '%');
}

/* ws://host[:port][/path] or wss://...; anything else (user info, fragments,
 * control characters, spaces) is WG_EINVAL. */
static int
ws_parse_url(const char *url, struct ws_url *u)
{
	const char *p, *hs, *he, *end;
	size_t ulen = strnlen(url, WS_MAX_URL + 1);
	memset(u, 0, sizeof(*u));
	if (ulen > WS_MAX_URL)
		return WG_EINVAL;
	if (strncasecmp(url, "ws://", 5) == 0) {
		p = url + 5;
	} else if (strncasecmp(url, "wss://", 6) == 0) {
		p = url + 6;
		u->tls = true;
	} else {
		return WG_EINVAL;
	}
	end = url + ulen;
	for (const char *q = url; q < end; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f || *q == '#')
			return WG_EINVAL;
	if (*p == '[') {
		hs = p + 1;
		he = memchr(hs, ']', (size_t)(end - hs));
		if (!he)
			return WG_EINVAL;
		p = he + 1;
		u->ipv6 = true;
	} else {
		hs = p;
		while (p < end && *p != ':' && *p != '/' && *p != '?')
			p++;
		he = p;
	}
	if (he == hs || (size_t)(he - hs) > WS_MAX_HOST)
		return WG_EINVAL;
	for (const char *q = hs; q < he; q++)
		if (!ws_host_char(*q, u->ipv6))
			return WG_EINVAL;
	memcpy(u->host, hs, (size_t)(he - hs));
	u->host[he - hs] = '\0';
	u->port = u->tls ? 443 : 80;
	if (p < end && *p == ':') {
		unsigned long port = 0;
		int digits = 0;
		for (p++; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
			port = port * 10 + (unsigned long)(*p - '0');
			if (digits >= 5)
				return WG_EINVAL;
		}
		if (digits == 0 || port == 0 || port > 65535)
			return WG_EINVAL;
		u->port = (uint16_t)port;
	}
	if (p < end && *p != '/' && *p != '?')
		return WG_EINVAL;
	u->path = p;
	return 0;
}

/* Header text must not smuggle in line breaks. */
static bool
ws_header_text_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
			return false;
	return true;
}

static void
ws_buf_str(struct wg_buf *b, const char *s)
{
	wg_buf_append(b, s, strlen(s));
}

/* Builds the upgrade request and remembers the Sec-WebSocket-Accept to expect. */
static int
ws_build_request(struct ws_conn *c, const struct ws_url *u, const struct ws_client_opts *o)
{
	struct wg_buf b = {0};
	uint8_t nonce[16];
	char key[32], port[8];
	size_t extra = 0;
	if (o->origin && !ws_header_text_ok(o->origin, 1024))
		return WG_EINVAL;
	for (int i = 0; o->headers && o->headers[i]; i++) {
		const char *h = o->headers[i];
		if (i >= WS_MAX_EXTRA_HEADERS || !ws_header_text_ok(h, WS_MAX_HEADER_BYTES) ||
		    !strchr(h, ':') || h[0] == ':')
			return WG_EINVAL;
		extra += strlen(h);
		if (extra > WS_MAX_HEADER_BYTES)
			return WG_EINVAL;
	}
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return WG_EIO;
	EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
	if (ws_accept_value(key, strlen(key), c->accept) != 0)
		return WG_EIO;

	ws_buf_str(&b, "GET ");
	if (u->path[0] != '/')
		ws_buf_str(&b, "/");
	ws_buf_str(&b, u->path);
	ws_buf_str(&b, " HTTP/1.1\r\nHost: ");
	if (u->ipv6)
		ws_buf_str(&b, "[");
	ws_buf_str(&b, u->host);
	if (u->ipv6)
		ws_buf_str(&b, "]");
	if (u->port != (u->tls ? 443 : 80)) {
		snprintf(port, sizeof(port), ":%u", (unsigned)u->port);
		ws_buf_str(&b, port);
	}
	ws_buf_str(&b, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
	ws_buf_str(&b, key);
	ws_buf_str(&b, "\r\nSec-WebSocket-Version: 13\r\n");
	if (o->origin) {
		ws_buf_str(&b, "Origin: ");
		ws_buf_str(&b, o->origin);
		ws_buf_str(&b, "\r\n");
	}
	for (int i = 0; o->headers && o->headers[i]; i++) {
		ws_buf_str(&b, o->headers[i]);
		ws_buf_str(&b, "\r\n");
	}
	ws_buf_str(&b, "\r\n");
	c->req = (char *)b.data;
	c->req_len = b.len;
	return 0;
}

static SSL_CTX *ws_default_ctx;

SSL_CTX *
ws_tls_default_ctx(void)
{
	SSL_CTX *ctx;
	if (ws_default_ctx)
		return ws_default_ctx;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	ws_default_ctx = ctx;
	return ctx;
}

static SSL *
ws_tls_new(struct ws_conn *c)
{
	SSL *ssl = SSL_new(c->ssl_ctx);
	struct in6_addr a6;
	bool is_ip;
	if (!ssl)
		return NULL;
	/* Idle connections then hold no TLS record buffers (about 34 KiB each). */
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	is_ip = evutil_inet_pton(AF_INET, c->host, &a6) == 1 ||
	        evutil_inet_pton(AF_INET6, c->host, &a6) == 1;
	if (is_ip) {
		/* SNI carries names only; an address is checked against IP SANs. */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->host) != 1)
			goto fail;
	} else {
		if (SSL_set_tlsext_host_name(ssl, c->host) != 1 || SSL_set1_host(ssl, c->host) != 1)
			goto fail;
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

/*
 * Puts the bufferevent at the priority `background` asks for. libevent
 * refuses while one of its events is active (and on a base with one
 * priority); the read and write callbacks try again until it takes.
 */
static void
ws_apply_priority(struct ws_conn *c)
{
	if (c->prio_applied || c->bev == NULL)
		return;
	if (c->is_tls) {
		/*
		 * Not for TLS yet: an OpenSSL bufferevent at the lowest priority was seen
		 * to stall its handshakes (6 of 20 logins done after a minute, the loop
		 * busy). Left at the default until that is understood.
		 */
		c->prio_applied = true;
		return;
	}
	int prio = c->background ? 2 : 1; /* WS_PRIO_BACKGROUND : WS_PRIO_DEFAULT, below */
	if (bufferevent_priority_set(c->bev, prio) == 0 ||
	    event_base_get_npriorities(c->base) < 3)
		c->prio_applied = true;
}

static void
ws_start_tcp(struct ws_conn *c, const struct sockaddr *sa, socklen_t salen)
{
	if (c->is_tls) {
		SSL *ssl = ws_tls_new(c);
		if (!ssl) {
			ws_teardown(c, WG_EIO, 0, "cannot set up TLS");
			return;
		}
		c->bev = bufferevent_openssl_socket_new(
		    c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (!c->bev) {
			SSL_free(ssl);
			ws_teardown(c, WG_EIO, 0, "cannot set up TLS");
			return;
		}
		/* A peer that closes TCP without close_notify is an EOF, not an error. */
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
		SSL_CTX_free(c->ssl_ctx); /* the SSL object holds its own reference */
		c->ssl_ctx = NULL;
	} else {
		c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (!c->bev) {
			ws_teardown(c, WG_EIO, 0, "cannot create a socket");
			return;
		}
	}
	bufferevent_setcb(c->bev, ws_on_read, ws_on_write, ws_on_event, c);
	ws_apply_priority(c);
	bufferevent_enable(c->bev, c->paused ? EV_WRITE : EV_READ | EV_WRITE);
	/* Non-blocking; even a refusal on loopback is reported through the event callback. */
	if (bufferevent_socket_connect(c->bev, sa, (int)salen) != 0) {
		char why[160];
		int err = ws_io_error(c, why, sizeof(why));
		ws_teardown(c, err, 0, why);
	}
}

static void
ws_free_dns(evutil_socket_t fd, short what, void *arg)
{
	evdns_base_free(arg, 0);
}

static void
ws_on_dns(int result, struct evutil_addrinfo *res, void *arg)
{
	struct ws_dns_ticket *t = arg;
	struct ws_conn *c = t->c;
	if (!c) {
		/* The connection is gone. Its resolver is freed on the next loop
		 * turn, not from inside one of the resolver's own callbacks. */
		if (res)
			evutil_freeaddrinfo(res);
		if (t->own_dns &&
		    event_base_once(t->base, -1, EV_TIMEOUT, ws_free_dns, t->own_dns, NULL) != 0)
			log_warn("ws", "cannot schedule freeing a resolver; leaking it");
		free(t);
		return;
	}
	free(t);
	c->dns_ticket = NULL;
	c->dns_req = NULL;
	if (result == EVUTIL_EAI_CANCEL || c->state != WS_CONNECTING) {
		if (res)
			evutil_freeaddrinfo(res);
		return;
	}
	if (result != 0 || !res) {
		char why[160];
		snprintf(why, sizeof(why), "cannot resolve %s: %s", c->host,
		         result ? evutil_gai_strerror(result) : "no address");
		if (res)
			evutil_freeaddrinfo(res);
		ws_teardown(c, WG_ENOTFOUND, 0, why);
		return;
	}
	/* The first address only; a connection that fails is retried by the
	 * caller's reconnect policy, which also spaces the attempts. */
	ws_start_tcp(c, res->ai_addr, (socklen_t)res->ai_addrlen);
	evutil_freeaddrinfo(res);
}

int
ws_client_connect(struct event_base *base, const struct ws_client_opts *opts,
                  const struct ws_callbacks *cb, void *arg, struct ws_conn **out)
{
	struct ws_url u;
	struct ws_conn *c;
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	char port[8];
	int r;
	if (!base || !opts || !opts->url || !out)
		return WG_EINVAL;
	r = ws_parse_url(opts->url, &u);
	if (r != 0)
		return r;
	c = ws_conn_new(base, &opts->limits);
	if (!c)
		return WG_EIO;
	c->is_tls = u.tls;
	c->host = wg_strdup(u.host);
	c->port = u.port;
	c->connect_timeout_ms =
	    opts->connect_timeout_ms ? opts->connect_timeout_ms : WS_DEFAULT_CONNECT_MS;
	snprintf(c->remote, sizeof(c->remote), u.ipv6 ? "[%.46s]:%u" : "%.50s:%u", u.host,
	         (unsigned)u.port);
	ws_conn_set_callbacks(c, cb, arg);
	r = ws_build_request(c, &u, opts);
	if (r != 0)
		goto fail;
	if (u.tls) {
		SSL_CTX *ctx = opts->ssl_ctx ? opts->ssl_ctx : ws_tls_default_ctx();
		if (!ctx || SSL_CTX_up_ref(ctx) != 1) {
			r = WG_EIO;
			goto fail;
		}
		c->ssl_ctx = ctx;
	}
	c->dns = opts->dns;
	if (!c->dns) {
		/* Without an evdns base libevent would fall back to a blocking getaddrinfo(). */
		c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
		                                  EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (!c->dns) {
			r = WG_EIO;
			goto fail;
		}
		c->own_dns = true;
	}
	*out = c;
	ws_set_state(c, WS_CONNECTING, "connect");
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf(port, sizeof(port), "%u", (unsigned)u.port);
	/* Numeric hosts are answered at once, running ws_on_dns before this returns;
	 * any failure from there is still reported later, through the defer event. */
	c->dns_ticket = wg_calloc(1, sizeof(*c->dns_ticket));
	c->dns_ticket->c = c;
	c->dns_ticket->base = base;
	req = evdns_getaddrinfo(c->dns, u.host, port, &hints, ws_on_dns, c->dns_ticket);
	if (req)
		c->dns_req = req;
	return 0;
fail:
	ws_conn_destroy(c);
	return r;
}

/* ---- server ---- */

static void
ws_server_on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen,
                    void *arg)
{
	struct ws_server *s = arg;
	struct ws_conn *c;
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (s->npending >= WS_MAX_PENDING || !(c = ws_conn_new(s->base, &s->lim))) {
		evutil_closesocket(fd);
		return;
	}
	c->is_server = true;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
		evutil_inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip));
		port = ntohs(in4->sin_port);
		snprintf(c->remote, sizeof(c->remote), "%s:%u", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		evutil_inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
		snprintf(c->remote, sizeof(c->remote), "[%s]:%u", ip, port);
	}
	if (s->ssl_ctx) {
		SSL *ssl = SSL_new(s->ssl_ctx);
		if (ssl) {
			SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
			c->bev = bufferevent_openssl_socket_new(
			    s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
			if (!c->bev)
				SSL_free(ssl);
			else
				bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
		}
		c->is_tls = true;
	} else {
		c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!c->bev) {
		evutil_closesocket(fd);
		ws_conn_destroy(c);
		return;
	}
	c->srv = s;
	c->next = s->pending;
	if (s->pending)
		s->pending->prev = c;
	s->pending = c;
	s->npending++;
	ws_set_nodelay(c->bev);
	bufferevent_setcb(c->bev, ws_on_read, ws_on_write, ws_on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	ws_set_state(c, WS_HANDSHAKE, "accepted");
}

static void
ws_server_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct ws_server *s = arg;
	evconnlistener_enable(s->lis);
}

static void
ws_server_on_error(struct evconnlistener *lis, void *arg)
{
	struct ws_server *s = arg;
	struct timeval tv = {.tv_sec = 1};
	int e = EVUTIL_SOCKET_ERROR();
	/* Out of descriptors: the listening socket stays readable, and libevent
	 * would call us in a busy loop. Pause accepting for a second instead. */
	log_warn("ws", "accept on port %d failed: %s; pausing for 1 s", s->port,
	         evutil_socket_error_to_string(e));
	evconnlistener_disable(lis);
	evtimer_add(s->resume, &tv);
}

/* "ip:port" or "[ip6]:port"; port 0 allowed (evutil_parse_sockaddr_port() refuses it). */
static int
ws_parse_listen_addr(const char *hp, struct sockaddr_storage *ss, int *len)
{
	char host[64];
	const char *hs = hp, *he, *colon;
	unsigned long port = 0;
	bool v6 = false;
	memset(ss, 0, sizeof(*ss));
	if (*hp == '[') {
		hs = hp + 1;
		he = strchr(hs, ']');
		if (!he || he[1] != ':')
			return WG_EINVAL;
		colon = he + 1;
		v6 = true;
	} else {
		colon = strrchr(hp, ':');
		if (!colon)
			return WG_EINVAL;
		he = colon;
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(host) || colon[1] == '\0')
		return WG_EINVAL;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	for (const char *q = colon + 1; *q; q++) {
		if (*q < '0' || *q > '9' || q - colon > 5)
			return WG_EINVAL;
		port = port * 10 + (unsigned long)(*q - '0');
	}
	if (port > 65535)
		return WG_EINVAL;
	if (v6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		if (evutil_inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return WG_EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = (int)sizeof(*in6);
	} else {
		struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
		if (evutil_inet_pton(AF_INET, host, &in4->sin_addr) != 1)
			return WG_EINVAL;
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = (int)sizeof(*in4);
	}
	return 0;
}

struct ws_server *
ws_server_new(struct event_base *base, const char *host_port, const char *path, ws_accept_cb cb,
              void *arg)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int len = (int)sizeof(ss);
	struct ws_server *s;
	if (!base || !host_port || !path || path[0] != '/' || !cb ||
	    strnlen(host_port, 128) >= 128 || strnlen(path, 1024) >= 1024)
		return NULL;
	if (ws_parse_listen_addr(host_port, &ss, &len) != 0)
		return NULL;
	s = wg_calloc(1, sizeof(*s));
	s->base = base;
	s->path = wg_strdup(path);
	s->cb = cb;
	s->arg = arg;
	ws_limits_fill(&s->lim, NULL);
	s->resume = evtimer_new(base, ws_server_on_resume, s);
	s->lis = evconnlistener_new_bind(base, ws_server_on_accept, s,
	                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                     LEV_OPT_CLOSE_ON_EXEC,
	                                 1024, (struct sockaddr *)&ss, len);
	if (!s->lis || !s->resume) {
		ws_server_free(s);
		return NULL;
	}
	evconnlistener_set_error_cb(s->lis, ws_server_on_error);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&ss, &sslen) == 0) {
		if (ss.ss_family == AF_INET)
			s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return s;
}

int
ws_server_port(const struct ws_server *s)
{
	return s ? s->port : 0;
}

void
ws_server_set_limits(struct ws_server *s, const struct ws_limits *lim)
{
	if (s)
		ws_limits_fill(&s->lim, lim);
}

void
ws_server_set_refuse(struct ws_server *s, bool refuse)
{
	if (s)
		s->refuse = refuse;
}

void
ws_server_set_tls(struct ws_server *s, SSL_CTX *ctx)
{
	if (s)
		s->ssl_ctx = ctx;
}

void
ws_server_free(struct ws_server *s)
{
	if (!s)
		return;
	if (s->lis)
		evconnlistener_free(s->lis);
	/* Upgrades in progress were never shown to the user: drop them silently. */
	while (s->pending)
		ws_conn_destroy(s->pending);
	if (s->resume)
		event_free(s->resume);
	free(s->path);
	free(s);
}
