/*
 * The API's HTTP/1.1 server (see httpd.h for what it promises). Each
 * connection is a small state machine, moved by conn_enter() only:
 *
 *   NEW --> FRESH/IDLE --first byte--> HEAD --headers--> BODY or CHUNK_* --whole--> HANDLING
 *   HANDLING --httpd_reply--> IDLE (keep-alive) or CLOSING
 *   HANDLING --httpd_reply_start--> STREAMING --httpd_reply_end--> IDLE or CLOSING
 *   any --refusal--> CLOSING (the error answer goes out, then the close)
 *   CLOSING --output written--> LINGER --client's EOF or LINGER_MS--> closed
 *
 * The lingering close: closing a socket with unread input makes the kernel
 * send a reset, which can destroy the answer before the client reads it (a
 * 413 sent while the client still writes its body). So our side is shut
 * first (the client reads the answer, then the end) and what still comes is
 * read and dropped, for a while.
 *
 * One timer per connection; what it means follows the state: IDLE closes a
 * connection that stays quiet, FRESH/HEAD/BODY/CHUNK_* is the whole
 * request's deadline (for a first request, from the accept: a flood of
 * connections that send nothing holds no slot longer than a slow request). A write that makes no progress is the bufferevent's write timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/httpd.h"

#define DEFAULT_MAX_HEADERS (8 * 1024)
#define DEFAULT_MAX_BODY (64 * 1024)
#define DEFAULT_MAX_CONNS 256
#define DEFAULT_REQUEST_MS 10000
#define DEFAULT_IDLE_MS 30000
/* A chunk-size line (hex digits and extensions): anything longer is not a client of ours. */
#define CHUNK_LINE_MAX 256
/*
 * A body over the limit but below this is read and dropped before the 413:
 * many clients (libevent's, Python's) read no answer before they have sent
 * their whole body, and would see a reset instead of our answer.
 */
#define DISCARD_MAX (1024 * 1024)
/* Out of descriptors: accepting pauses this long; either pause is said at most once a minute. */
#define ACCEPT_PAUSE_MS 1000
/*
 * Connections the kernel completes while accepting pauses (at the cap): a
 * short queue would drop clients' SYNs, which retry only after 1, 3, 7 s...
 */
#define HTTPD_BACKLOG 1024
/* How long a closing connection's input is still read and dropped, at most. */
#define LINGER_MS 2000
#define LOG_EVERY_MS 60000

enum conn_state {
	C_NEW,         /* accepted, not set up yet */
	C_FRESH,       /* waiting for its first request: the request deadline runs from the accept */
	C_IDLE,        /* between requests (keep-alive): closed first at the cap */
	C_HEAD,        /* reading the request line and headers */
	C_BODY,        /* reading a body of known length */
	C_DISCARD,     /* dropping a body too large, to answer 413 after it (see headers_done) */
	C_CHUNK_SIZE,  /* chunked body: the size line */
	C_CHUNK_DATA,  /* chunked body: the chunk's bytes */
	C_CHUNK_CRLF,  /* chunked body: the CRLF after them */
	C_TRAILER,     /* chunked body: trailer lines up to the empty one */
	C_HANDLING,    /* the request is whole; on_request has it */
	C_STREAMING,   /* the answer's head is out; chunks follow */
	C_CLOSING,     /* the last bytes are going out; then the lingering close */
	C_LINGER,      /* our side is shut; the client's bytes are read and dropped until it closes */
};

struct httpd_req {
	struct httpd_conn *conn;
	enum httpd_method method;
	int minor; /* HTTP/1.minor */
	char *target;
	struct evhttp_uri *uri;
	struct evkeyvalq in, out;
	struct evbuffer *body;
	int tag;
};

struct httpd_conn {
	struct httpd *h;
	struct bufferevent *bev;
	TAILQ_ENTRY(httpd_conn) link;      /* h->conns */
	TAILQ_ENTRY(httpd_conn) idle_link; /* h->idle, while IDLE */
	enum conn_state st;
	struct httpd_req *req;             /* from HEAD to the end of its answer */
	struct event *timer;
	size_t head_bytes;                 /* of the request line, headers and trailers so far */
	uint64_t body_left;                /* of the body, or of the chunk */
	bool keep_alive;                   /* the client allows another request after this one */
	bool eof;                          /* the client shut its side: no more requests */
	bool chunked_out;                  /* the streamed answer is chunked */
	bool head_only;                    /* a HEAD: no body goes out */
	bool kicked;                       /* a deferred look at buffered input is pending */
	int busy;                          /* inside one of our callbacks on it: free later */
	bool doomed;                       /* closed while busy */
	void (*closecb)(struct httpd_conn *, void *);
	void *closearg;
	void (*sentcb)(struct httpd_conn *, void *);
	void *sentarg;
	uint16_t peer_port;
	char peer[INET6_ADDRSTRLEN];
};

struct httpd {
	struct event_base *base;
	struct httpd_opts o;
	struct evconnlistener *lis;
	struct event *resume; /* accepting again after running out of descriptors */
	TAILQ_HEAD(, httpd_conn) conns;
	TAILQ_HEAD(, httpd_conn) idle; /* oldest first: closed first at the cap */
	bool paused_fd, paused_cap;
	uint64_t fd_logged_at, cap_logged_at;
	unsigned long long fd_missed, cap_missed;
	struct httpd_stats stats;
	int port;
};

static void conn_enter(struct httpd_conn *c, enum conn_state st);
static void conn_process(struct httpd_conn *c);
static void conn_destroy(struct httpd_conn *c);
static void cap_check(struct httpd *h);
static void conn_release(struct httpd_conn *c);

/* ---- methods ---- */

static const struct {
	const char *name;
	enum httpd_method m;
} methods[] = {
    {"GET", HTTPD_GET},         {"HEAD", HTTPD_HEAD},       {"POST", HTTPD_POST},
    {"PUT", HTTPD_PUT},         {"DELETE", HTTPD_DELETE},   {"OPTIONS", HTTPD_OPTIONS},
    {"TRACE", HTTPD_TRACE},     {"CONNECT", HTTPD_CONNECT}, {"PATCH", HTTPD_PATCH},
};

const char *
httpd_method_name(enum httpd_method m)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].m == m)
			return methods[i].name;
	return "?";
}

static bool
is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* ---- requests ---- */

static void
req_free(struct httpd_req *r)
{
	if (r == NULL)
		return;
	free(r->target);
	if (r->uri)
		evhttp_uri_free(r->uri);
	evhttp_clear_headers(&r->in);
	evhttp_clear_headers(&r->out);
	if (r->body)
		evbuffer_free(r->body);
	free(r);
}

enum httpd_method
httpd_method(const struct httpd_req *req)
{
	return req->method;
}

const char *
httpd_target(const struct httpd_req *req)
{
	return req->target;
}

const struct evhttp_uri *
httpd_uri(const struct httpd_req *req)
{
	return req->uri;
}

struct evkeyvalq *
httpd_in_headers(struct httpd_req *req)
{
	return &req->in;
}

struct evkeyvalq *
httpd_out_headers(struct httpd_req *req)
{
	return &req->out;
}

struct evbuffer *
httpd_body(struct httpd_req *req)
{
	return req->body;
}

struct httpd_conn *
httpd_conn_of(struct httpd_req *req)
{
	return req->conn;
}

void
httpd_req_set_tag(struct httpd_req *req, int tag)
{
	req->tag = tag;
}

int
httpd_req_tag(const struct httpd_req *req)
{
	return req->tag;
}

void *
httpd_req_arg(const struct httpd_req *req)
{
	return req->conn->h->o.arg;
}

/* ---- answers ---- */

/* The Date header's value; computed once a second. */
static const char *
http_date(void)
{
	static time_t last;
	static char text[40];
	time_t now = time(NULL);
	if (now != last) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	return text;
}

/* Whether a header's comma-separated value holds token (Connection: keep-alive, close). */
static bool
has_token(const char *value, const char *token)
{
	size_t n = strlen(token);
	const char *p = value;
	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *end = p;
		while (*end && *end != ',')
			end++;
		const char *t = end;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == n && strncasecmp(p, token, n) == 0)
			return true;
		p = end;
	}
	return false;
}

/* Writes the status line and the headers; length < 0 for a streamed answer. */
static void
write_head(struct httpd_conn *c, int status, const char *reason, long long length)
{
	struct httpd_req *r = c->req;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const char *conn_hdr = evhttp_find_header(&r->out, "Connection");
	if (c->eof || c->st == C_CLOSING || (conn_hdr && has_token(conn_hdr, "close")))
		c->keep_alive = false;
	/* A streamed answer to HTTP/1.0 can only end with the connection. */
	c->chunked_out = length < 0 && r->minor >= 1;
	if (length < 0 && !c->chunked_out)
		c->keep_alive = false;
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, reason ? reason : "",
	                    http_date());
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, &r->out, next)
	{
		if (strcasecmp(kv->key, "Connection") == 0 ||
		    strcasecmp(kv->key, "Content-Length") == 0 ||
		    strcasecmp(kv->key, "Transfer-Encoding") == 0)
			continue; /* ours to say */
		evbuffer_add_printf(out, "%s: %s\r\n", kv->key, kv->value);
	}
	bool bodiless = status == 204 || status == 304 || (status >= 100 && status < 200);
	if (length >= 0 && !bodiless)
		evbuffer_add_printf(out, "Content-Length: %lld\r\n", length);
	if (c->chunked_out)
		evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
	if (!c->keep_alive)
		evbuffer_add(out, "Connection: close\r\n", 19);
	else if (r->minor == 0)
		evbuffer_add(out, "Connection: keep-alive\r\n", 24);
	evbuffer_add(out, "\r\n", 2);
}

/* The answer is complete: the request goes; the connection waits for the next or closes. */
static void
answer_done(struct httpd_conn *c)
{
	req_free(c->req);
	c->req = NULL;
	c->busy++; /* entering the next state may close it */
	conn_enter(c, c->keep_alive ? C_IDLE : C_CLOSING);
	conn_release(c);
}

void
httpd_reply(struct httpd_req *req, int status, const char *reason, struct evbuffer *body)
{
	struct httpd_conn *c = req->conn;
	if (c->doomed)
		return; /* closed (a close callback answering): the request goes with it */
	size_t len = body ? evbuffer_get_length(body) : 0;
	write_head(c, status, reason, (long long)len);
	if (body) {
		if (c->head_only || status == 204 || status == 304)
			evbuffer_drain(body, len);
		else
			evbuffer_add_buffer(bufferevent_get_output(c->bev), body);
	}
	answer_done(c);
}

void
httpd_reply_start(struct httpd_req *req, int status, const char *reason)
{
	struct httpd_conn *c = req->conn;
	if (c->doomed)
		return; /* closed (a close callback answering): the request goes with it */
	write_head(c, status, reason, -1);
	conn_enter(c, C_STREAMING);
}

void
httpd_reply_chunk(struct httpd_req *req, struct evbuffer *b,
                  void (*sent)(struct httpd_conn *c, void *arg), void *arg)
{
	struct httpd_conn *c = req->conn;
	if (c->doomed) {
		evbuffer_drain(b, evbuffer_get_length(b));
		return;
	}
	size_t len = evbuffer_get_length(b);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (len > 0 && !c->head_only) {
		if (c->chunked_out)
			evbuffer_add_printf(out, "%zx\r\n", len);
		evbuffer_add_buffer(out, b);
		if (c->chunked_out)
			evbuffer_add(out, "\r\n", 2);
	} else {
		evbuffer_drain(b, len);
	}
	c->sentcb = sent;
	c->sentarg = arg;
	/* Nothing to write: the write callback would never come. */
	if (sent && evbuffer_get_length(out) == 0)
		bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

void
httpd_reply_end(struct httpd_req *req)
{
	struct httpd_conn *c = req->conn;
	if (c->doomed)
		return; /* closed (a close callback answering): the request goes with it */
	if (c->chunked_out && !c->head_only)
		evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
	c->sentcb = NULL;
	answer_done(c);
}

/*
 * A refusal of ours: {"error": msg} and the close (after a refusal the rest
 * of the input cannot be trusted to be where a next request would start).
 */
static void
refuse(struct httpd_conn *c, int status, const char *reason, const char *msg)
{
	c->h->stats.refused++;
	if (c->req == NULL) {
		c->req = wg_calloc(1, sizeof(*c->req));
		c->req->conn = c;
		c->req->minor = 1;
		TAILQ_INIT(&c->req->in);
		TAILQ_INIT(&c->req->out);
	}
	evhttp_clear_headers(&c->req->out);
	c->keep_alive = false;
	c->head_only = false;
	bufferevent_disable(c->bev, EV_READ);
	char body[256];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", msg);
	evhttp_add_header(&c->req->out, "Content-Type", "application/json");
	evhttp_add_header(&c->req->out, "Cache-Control", "no-store");
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, body, (size_t)n);
	log_debug("api", "refused a request: %d %s", status, msg);
	httpd_reply(c->req, status, reason, b);
	evbuffer_free(b);
}

/* The 413 of a body over the limit, however it was found out. */
static void
refuse_too_large(struct httpd_conn *c)
{
	char msg[96];
	snprintf(msg, sizeof(msg), "request body larger than %zu bytes", c->h->o.max_body);
	refuse(c, 413, "Content Too Large", msg);
}

/* ---- connections: life cycle ---- */

static void
timer_arm(struct httpd_conn *c, uint32_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	evtimer_add(c->timer, &tv);
}

/* Schedules a look at input already buffered (pipelined requests), from its own loop turn. */
static void
kick(struct httpd_conn *c)
{
	if (c->kicked || evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		return;
	c->kicked = true;
	bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
}

static void
idle_remove(struct httpd_conn *c)
{
	if (c->st == C_IDLE)
		TAILQ_REMOVE(&c->h->idle, c, idle_link);
}

/* The one place a connection's state changes; the entry action of each state follows. */
static void
conn_enter(struct httpd_conn *c, enum conn_state st)
{
	struct httpd *h = c->h;
	enum conn_state was = c->st;
	if (was == C_IDLE && st != C_IDLE)
		idle_remove(c);
	c->st = st;
	switch (st) {
	case C_FRESH:
		timer_arm(c, h->o.request_ms);
		bufferevent_enable(c->bev, EV_READ);
		break;
	case C_IDLE:
		TAILQ_INSERT_TAIL(&h->idle, c, idle_link);
		c->head_only = false;
		c->sentcb = NULL;
		cap_check(h); /* at the cap, this one (or an older idle one) makes room */
		if (c->st != C_IDLE)
			return; /* it did: closing */
		/*
		 * Idle from when the answer has gone out (on_write): while it goes,
		 * the write timeout watches it, so a slow reader is not cut off.
		 */
		evtimer_del(c->timer);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			timer_arm(c, h->o.idle_ms);
		bufferevent_enable(c->bev, EV_READ);
		kick(c);
		break;
	case C_HEAD:
		c->head_bytes = 0;
		c->keep_alive = false;
		if (was == C_IDLE)
			timer_arm(c, h->o.request_ms); /* the whole request, from its first byte */
		break;
	case C_NEW:
	case C_BODY:
	case C_DISCARD:
	case C_CHUNK_SIZE:
	case C_CHUNK_DATA:
	case C_CHUNK_CRLF:
	case C_TRAILER:
		break;
	case C_HANDLING:
		/* The request is whole: its handler may answer now or later. */
		evtimer_del(c->timer);
		h->stats.requests++;
		h->o.on_request(c->req, h->o.arg);
		break;
	case C_STREAMING:
		break;
	case C_CLOSING:
		evtimer_del(c->timer);
		bufferevent_disable(c->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			conn_enter(c, C_LINGER);
		break;
	case C_LINGER:
		if (c->eof) {
			conn_destroy(c);
			return;
		}
		(void)shutdown(bufferevent_getfd(c->bev), SHUT_WR);
		evbuffer_drain(bufferevent_get_input(c->bev),
		               evbuffer_get_length(bufferevent_get_input(c->bev)));
		timer_arm(c, LINGER_MS);
		bufferevent_enable(c->bev, EV_READ);
		break;
	}
}

static void
resume_accepting(struct httpd *h)
{
	if (!h->paused_fd && !h->paused_cap && h->lis != NULL)
		evconnlistener_enable(h->lis);
}

/* Closes and frees (later, if one of our callbacks is running on it); the close callback runs now. */
static void
conn_destroy(struct httpd_conn *c)
{
	if (c->doomed)
		return;
	c->doomed = true;
	struct httpd *h = c->h;
	void (*cb)(struct httpd_conn *, void *) = c->closecb;
	c->closecb = NULL;
	c->sentcb = NULL;
	if (cb)
		cb(c, c->closearg);
	idle_remove(c);
	c->st = C_CLOSING;
	TAILQ_REMOVE(&h->conns, c, link);
	h->stats.conns--;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	evtimer_del(c->timer);
	cap_check(h);
	if (c->busy > 0)
		return; /* the callback running on it frees it when it returns */
	req_free(c->req);
	event_free(c->timer);
	bufferevent_free(c->bev);
	free(c);
}

/* Ends a callback of ours on c: frees it if it was closed meanwhile. */
static void
conn_release(struct httpd_conn *c)
{
	if (--c->busy > 0 || !c->doomed)
		return;
	req_free(c->req);
	event_free(c->timer);
	bufferevent_free(c->bev);
	free(c);
}

void
httpd_set_closecb(struct httpd_conn *c, void (*cb)(struct httpd_conn *c, void *arg), void *arg)
{
	c->closecb = cb;
	c->closearg = arg;
}

void
httpd_conn_close(struct httpd_conn *c)
{
	conn_destroy(c);
}

const char *
httpd_peer(const struct httpd_conn *c, uint16_t *port)
{
	if (port)
		*port = c->peer_port;
	return c->peer;
}

size_t
httpd_pending_output(const struct httpd_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* ---- connections: reading ---- */

/* Takes one line (CRLF or LF) counted against the header budget; 0: none yet, <0: refused. */
static int
take_line(struct httpd_conn *c, char **line, size_t *len)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	*line = evbuffer_readln(in, len, EVBUFFER_EOL_CRLF);
	if (*line == NULL) {
		if (c->head_bytes + evbuffer_get_length(in) > c->h->o.max_headers) {
			refuse(c, 431, "Request Header Fields Too Large",
			       "request line and headers too large");
			return -1;
		}
		return 0;
	}
	c->head_bytes += *len + 2;
	if (c->head_bytes > c->h->o.max_headers) {
		free(*line);
		refuse(c, 431, "Request Header Fields Too Large", "request line and headers too large");
		return -1;
	}
	if (strlen(*line) != *len) {
		free(*line);
		refuse(c, 400, "Bad Request", "a NUL byte in the request head");
		return -1;
	}
	return 1;
}

/* "METHOD target HTTP/1.x" */
static bool
parse_request_line(struct httpd_conn *c, char *line)
{
	struct httpd_req *r = c->req;
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL || sp1 == line ||
	    sp2 == sp1 + 1) {
		refuse(c, 400, "Bad Request", "malformed request line");
		return false;
	}
	*sp1 = *sp2 = '\0';
	const char *version = sp2 + 1;
	if (strncmp(version, "HTTP/", 5) != 0) {
		refuse(c, 400, "Bad Request", "malformed request line");
		return false;
	}
	if (strcmp(version, "HTTP/1.1") == 0) {
		r->minor = 1;
	} else if (strcmp(version, "HTTP/1.0") == 0) {
		r->minor = 0;
	} else {
		refuse(c, 505, "HTTP Version Not Supported", "only HTTP/1.0 and HTTP/1.1 are spoken here");
		return false;
	}
	r->method = HTTPD_OTHER;
	for (const char *p = line; *p; p++)
		if (!is_tchar((unsigned char)*p)) {
			refuse(c, 400, "Bad Request", "malformed method");
			return false;
		}
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(line, methods[i].name) == 0)
			r->method = methods[i].m;
	const char *target = sp1 + 1;
	for (const char *p = target; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f) {
			refuse(c, 400, "Bad Request", "malformed request target");
			return false;
		}
	r->target = wg_strdup(target);
	r->uri = evhttp_uri_parse_with_flags(target, EVHTTP_URI_NONCONFORMANT);
	if (r->uri == NULL || evhttp_uri_get_path(r->uri) == NULL) {
		refuse(c, 400, "Bad Request", "malformed request target");
		return false;
	}
	c->head_only = r->method == HTTPD_HEAD;
	return true;
}

static bool
parse_header(struct httpd_conn *c, char *line)
{
	char *colon = strchr(line, ':');
	if (line[0] == ' ' || line[0] == '\t') {
		refuse(c, 400, "Bad Request", "folded header lines are not accepted");
		return false;
	}
	if (colon == NULL || colon == line) {
		refuse(c, 400, "Bad Request", "malformed header line");
		return false;
	}
	for (const char *p = line; p < colon; p++)
		if (!is_tchar((unsigned char)*p)) {
			refuse(c, 400, "Bad Request", "malformed header name");
			return false;
		}
	*colon = '\0';
	char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	size_t n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		v[--n] = '\0';
	for (const char *p = v; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || (unsigned char)*p == 0x7f) {
			refuse(c, 400, "Bad Request", "a control character in a header value");
			return false;
		}
	if (evhttp_add_header(&c->req->in, line, v) != 0) {
		refuse(c, 400, "Bad Request", "malformed header line");
		return false;
	}
	return true;
}

/* Strict decimal, at most 18 digits. */
static bool
parse_length(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t n = 0;
	for (; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 18)
			return false;
		v = v * 10 + (uint64_t)(s[n] - '0');
	}
	*out = v;
	return n > 0;
}

/* The headers are in: how the body comes, whether the connection stays, Expect. */
static void
headers_done(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	struct httpd_req *r = c->req;
	const char *conn = evhttp_find_header(&r->in, "Connection");
	c->keep_alive = r->minor >= 1 ? !(conn && has_token(conn, "close"))
	                              : (conn && has_token(conn, "keep-alive"));
	const char *te = NULL, *cl = NULL;
	uint64_t length = 0;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, &r->in, next)
	{
		if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
			if (te != NULL) {
				refuse(c, 501, "Not Implemented", "only one transfer coding, chunked, is accepted");
				return;
			}
			te = kv->value;
		} else if (strcasecmp(kv->key, "Content-Length") == 0) {
			uint64_t v;
			if (!parse_length(kv->value, &v) || (cl != NULL && v != length)) {
				refuse(c, 400, "Bad Request", "malformed Content-Length");
				return;
			}
			cl = kv->value;
			length = v;
		}
	}
	if (te != NULL && cl != NULL) {
		refuse(c, 400, "Bad Request", "both Content-Length and Transfer-Encoding");
		return;
	}
	if (te != NULL && (strcasecmp(te, "chunked") != 0 || r->minor == 0)) {
		refuse(c, 501, "Not Implemented", "only one transfer coding, chunked, is accepted");
		return;
	}
	const char *expect = evhttp_find_header(&r->in, "Expect");
	if (length > h->o.max_body) {
		if (length <= DISCARD_MAX && expect == NULL) {
			c->body_left = length;
			conn_enter(c, C_DISCARD);
			return;
		}
		refuse_too_large(c);
		return;
	}
	bool body = te != NULL || length > 0;
	if (expect != NULL) {
		if (strcasecmp(expect, "100-continue") != 0) {
			refuse(c, 417, "Expectation Failed", "only Expect: 100-continue is understood");
			return;
		}
		/* The client waits for this before it sends the body. */
		if (body && r->minor >= 1)
			evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
	}
	r->body = evbuffer_new();
	if (te != NULL) {
		conn_enter(c, C_CHUNK_SIZE);
	} else if (length > 0) {
		c->body_left = length;
		conn_enter(c, C_BODY);
	} else {
		conn_enter(c, C_HANDLING);
	}
}

/* A chunk-size line: hex digits, then extensions we ignore. */
static bool
parse_chunk_size(const char *line, uint64_t *out)
{
	uint64_t v = 0;
	size_t n = 0;
	for (; line[n]; n++) {
		char ch = line[n];
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
		        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
		        : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
		                                 : -1;
		if (d < 0)
			break;
		if (n >= 15)
			return false;
		v = v * 16 + (uint64_t)d;
	}
	/* Extensions follow a ';' (RFC 9112 7.1.1); nothing else may. */
	if (n == 0 || (line[n] != '\0' && line[n] != ';'))
		return false;
	*out = v;
	return true;
}

/*
 * Moves up to body_left buffered bytes into the request's body (keep) or
 * drops them; false when none are buffered.
 */
static bool
take_body(struct httpd_conn *c, bool keep)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t have = evbuffer_get_length(in);
	if (have == 0)
		return false;
	size_t take = have < c->body_left ? have : (size_t)c->body_left;
	if (keep)
		evbuffer_remove_buffer(in, c->req->body, take);
	else
		evbuffer_drain(in, take);
	c->body_left -= take;
	return true;
}

/*
 * Moves the connection through the request as far as its buffered input
 * goes (a whole request goes to on_request, from conn_enter). Stops while a
 * request is being answered: what follows waits in the input.
 */
static void
conn_process(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	for (;;) {
		if (c->doomed)
			return;
		char *line;
		size_t len;
		int got;
		switch (c->st) {
		case C_FRESH:
		case C_IDLE:
			if (evbuffer_get_length(in) == 0)
				return;
			/*
			 * The next request waits until the last answer has gone out: a
			 * client that pipelines and never reads must not make us queue
			 * answers without end (on_write looks again once it has drained).
			 */
			if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
				return;
			c->req = wg_calloc(1, sizeof(*c->req));
			c->req->conn = c;
			TAILQ_INIT(&c->req->in);
			TAILQ_INIT(&c->req->out);
			conn_enter(c, C_HEAD);
			break;
		case C_HEAD:
			if ((got = take_line(c, &line, &len)) <= 0)
				return;
			if (c->req->target == NULL) { /* the request line */
				if (len == 0) {
					/* Empty lines before a request are tolerated (RFC 9112 2.2); they count toward the head's limit. */
					free(line);
					break;
				}
				bool ok = parse_request_line(c, line);
				free(line);
				if (!ok)
					return;
			} else if (len == 0) {
				free(line);
				headers_done(c);
			} else {
				bool ok = parse_header(c, line);
				free(line);
				if (!ok)
					return;
			}
			break;
		case C_BODY:
			if (!take_body(c, true))
				return;
			if (c->body_left == 0)
				conn_enter(c, C_HANDLING);
			break;
		case C_DISCARD:
			if (!take_body(c, false))
				return;
			if (c->body_left == 0) {
				refuse_too_large(c);
				return;
			}
			break;
		case C_CHUNK_SIZE: {
			line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
			if (line == NULL) {
				if (evbuffer_get_length(in) > CHUNK_LINE_MAX)
					refuse(c, 400, "Bad Request", "malformed chunked body");
				return;
			}
			uint64_t size;
			bool ok = len <= CHUNK_LINE_MAX && strlen(line) == len && parse_chunk_size(line, &size);
			free(line);
			if (!ok) {
				refuse(c, 400, "Bad Request", "malformed chunked body");
				return;
			}
			if (size > h->o.max_body - evbuffer_get_length(c->req->body)) {
				refuse_too_large(c);
				return;
			}
			c->body_left = size;
			conn_enter(c, size == 0 ? C_TRAILER : C_CHUNK_DATA);
			break;
		}
		case C_CHUNK_DATA:
			if (!take_body(c, true))
				return;
			if (c->body_left == 0)
				conn_enter(c, C_CHUNK_CRLF);
			break;
		case C_CHUNK_CRLF:
			line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
			if (line == NULL) {
				if (evbuffer_get_length(in) >= 2)
					refuse(c, 400, "Bad Request", "malformed chunked body");
				return;
			}
			free(line);
			if (len != 0) {
				refuse(c, 400, "Bad Request", "malformed chunked body");
				return;
			}
			conn_enter(c, C_CHUNK_SIZE);
			break;
		case C_TRAILER:
			if ((got = take_line(c, &line, &len)) <= 0)
				return;
			free(line); /* trailers carry nothing we use */
			if (len == 0)
				conn_enter(c, C_HANDLING);
			break;
		case C_LINGER:
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		case C_NEW:
		case C_HANDLING:
		case C_STREAMING:
		case C_CLOSING:
			return;
		}
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct httpd_conn *c = arg;
	(void)bev;
	c->kicked = false;
	c->busy++;
	conn_process(c);
	conn_release(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct httpd_conn *c = arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	c->busy++;
	if (c->st == C_CLOSING) {
		conn_enter(c, C_LINGER);
	} else if (c->st == C_IDLE) {
		/* The last answer is out: idle from now, and a pipelined request may start. */
		timer_arm(c, c->h->o.idle_ms);
		kick(c);
	} else if (c->sentcb) {
		void (*cb)(struct httpd_conn *, void *) = c->sentcb;
		c->sentcb = NULL;
		cb(c, c->sentarg);
	}
	conn_release(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct httpd_conn *c = arg;
	(void)bev;
	c->busy++;
	bool eof = (what & BEV_EVENT_EOF) && !(what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT));
	if (eof && (c->st == C_HANDLING || c->st == C_CLOSING)) {
		/* The client shut its side only: the answer still goes out, then the close. */
		c->eof = true;
		c->keep_alive = false;
	} else if (eof && (c->st == C_IDLE || c->st == C_FRESH)) {
		c->eof = true;
		conn_enter(c, C_CLOSING); /* after what was answered has gone out */
	} else {
		if (what & BEV_EVENT_TIMEOUT)
			c->h->stats.timed_out++;
		conn_destroy(c);
	}
	conn_release(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct httpd_conn *c = arg;
	(void)fd;
	(void)what;
	c->busy++;
	if (c->st == C_LINGER) {
		conn_destroy(c);
	} else if (c->st == C_IDLE) {
		c->h->stats.timed_out++;
		conn_destroy(c);
	} else {
		c->h->stats.timed_out++;
		char msg[96];
		snprintf(msg, sizeof(msg), "the request did not arrive whole within %u ms",
		         c->h->o.request_ms);
		refuse(c, 408, "Request Timeout", msg);
	}
	conn_release(c);
}

/* ---- accepting ---- */

static void
log_pause(struct httpd *h, uint64_t *logged_at, unsigned long long *missed, const char *why)
{
	uint64_t now = wg_now_ms();
	(*missed)++;
	if (*logged_at != 0 && now - *logged_at < LOG_EVERY_MS)
		return;
	log_warn("api", "%s (%llu time(s) since the last line)", why, *missed);
	*logged_at = now;
	*missed = 0;
	(void)h;
}

/*
 * The cap. At it, an idle keep-alive connection is closed, the one idle
 * longest (it was served, and reconnects cheaply), and accepting pauses
 * until a connection is gone (further connections wait in the kernel's
 * queue). The pause is said once a minute.
 */
static void
cap_check(struct httpd *h)
{
	if (h->stats.conns >= h->o.max_conns && !TAILQ_EMPTY(&h->idle)) {
		/* Closed like any other: what was answered goes out first. It frees its slot when gone. */
		struct httpd_conn *c = TAILQ_FIRST(&h->idle);
		h->stats.evicted++;
		c->keep_alive = false;
		conn_enter(c, C_CLOSING);
	}
	bool full = h->stats.conns >= h->o.max_conns;
	if (!full) {
		if (h->paused_cap) {
			h->paused_cap = false;
			resume_accepting(h);
		}
		return;
	}
	if (h->paused_cap || h->lis == NULL)
		return;
	h->paused_cap = true;
	h->stats.cap_pauses++;
	evconnlistener_disable(h->lis);
	char why[160];
	snprintf(why, sizeof(why),
	         "%u HTTP connections are open, the most allowed (WAGATE_HTTP_MAX_CONNECTIONS): "
	         "accepting waits for one to close",
	         h->o.max_conns);
	log_pause(h, &h->cap_logged_at, &h->cap_missed, why);
}

static void
on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen,
          void *arg)
{
	struct httpd *h = arg;
	(void)lis;
	(void)salen;
	struct bufferevent *bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		evutil_closesocket(fd);
		return;
	}
	/*
	 * Answers go out as soon as they are written: without TCP_NODELAY, the
	 * last segment of an answer larger than one segment waits for the
	 * client's delayed ACK (40 ms on Linux).
	 */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct httpd_conn *c = wg_calloc(1, sizeof(*c));
	c->h = h;
	c->bev = bev;
	c->timer = evtimer_new(h->base, on_timer, c);
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, c->peer, sizeof(c->peer));
		c->peer_port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, c->peer, sizeof(c->peer));
		c->peer_port = ntohs(in6->sin6_port);
	}
	TAILQ_INSERT_TAIL(&h->conns, c, link);
	h->stats.conns++;
	h->stats.accepted++;
	c->st = C_NEW;
	bufferevent_setcb(bev, on_read, on_write, on_event, c);
	/* Reading stops when this much waits unread (pipelined requests behind one being answered). */
	bufferevent_setwatermark(bev, EV_READ, 0, h->o.max_headers + h->o.max_body + 4096);
	struct timeval wt = {(time_t)(h->o.write_ms / 1000), (suseconds_t)((h->o.write_ms % 1000) * 1000)};
	bufferevent_set_timeouts(bev, NULL, &wt);
	conn_enter(c, C_FRESH);
	cap_check(h);
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct httpd *h = arg;
	(void)fd;
	(void)what;
	h->paused_fd = false;
	resume_accepting(h);
}

/*
 * Out of descriptors (EMFILE, ENFILE, ENOBUFS): the listening socket stays
 * readable, and accept() would fail again at once, in a busy loop. Accepting
 * pauses instead, for a second.
 */
static void
on_accept_error(struct evconnlistener *lis, void *arg)
{
	struct httpd *h = arg;
	int e = EVUTIL_SOCKET_ERROR();
	evconnlistener_disable(lis);
	h->paused_fd = true;
	h->stats.accept_errors++;
	struct timeval tv = {ACCEPT_PAUSE_MS / 1000, (ACCEPT_PAUSE_MS % 1000) * 1000};
	evtimer_add(h->resume, &tv);
	char why[200];
	snprintf(why, sizeof(why),
	         "cannot accept connections: %s; pausing %d ms each time: too many open "
	         "descriptors (see the descriptor limit at start)",
	         evutil_socket_error_to_string(e), ACCEPT_PAUSE_MS);
	log_pause(h, &h->fd_logged_at, &h->fd_missed, why);
}

/* ---- the server ---- */

struct httpd *
httpd_new(struct event_base *base, const struct httpd_opts *o, const char *host, uint16_t port,
          char *err, size_t errlen)
{
	struct httpd *h = wg_calloc(1, sizeof(*h));
	h->base = base;
	h->o = *o;
	if (h->o.max_headers == 0)
		h->o.max_headers = DEFAULT_MAX_HEADERS;
	if (h->o.max_body == 0)
		h->o.max_body = DEFAULT_MAX_BODY;
	if (h->o.max_conns == 0)
		h->o.max_conns = DEFAULT_MAX_CONNS;
	if (h->o.request_ms == 0)
		h->o.request_ms = DEFAULT_REQUEST_MS;
	if (h->o.idle_ms == 0)
		h->o.idle_ms = DEFAULT_IDLE_MS;
	if (h->o.write_ms == 0)
		h->o.write_ms = DEFAULT_IDLE_MS;
	TAILQ_INIT(&h->conns);
	TAILQ_INIT(&h->idle);
	struct evutil_addrinfo hints = {0}, *ai = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV;
	char service[8];
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	if (evutil_getaddrinfo(host, service, &hints, &ai) != 0 || ai == NULL) {
		snprintf(err, errlen, "cannot resolve %.200s", host);
		free(h);
		return NULL;
	}
	h->lis = evconnlistener_new_bind(base, on_accept, h,
	                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                     LEV_OPT_CLOSE_ON_EXEC,
	                                 HTTPD_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (h->lis == NULL) {
		snprintf(err, errlen, "cannot listen on %.200s:%u: %s", host, (unsigned)port,
		         strerror(errno));
		free(h);
		return NULL;
	}
	evconnlistener_set_error_cb(h->lis, on_accept_error);
	h->resume = evtimer_new(base, on_resume, h);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(evconnlistener_get_fd(h->lis), (struct sockaddr *)&ss, &sl) == 0)
		h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                         : ((struct sockaddr_in *)&ss)->sin_port);
	return h;
}

int
httpd_port(const struct httpd *h)
{
	return h->port;
}

void
httpd_stats(const struct httpd *h, struct httpd_stats *out)
{
	*out = h->stats;
}

void
httpd_free(struct httpd *h)
{
	if (h == NULL)
		return;
	evconnlistener_free(h->lis);
	h->lis = NULL;
	while (!TAILQ_EMPTY(&h->conns))
		conn_destroy(TAILQ_FIRST(&h->conns));
	event_free(h->resume);
	free(h);
}
