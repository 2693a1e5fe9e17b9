/*
 * A small HTTP/1.1 server on libevent bufferevents: the API's. It owns each
 * connection from accept() to close, which libevent 2.1's evhttp does not let
 * its user do, so that it can
 *   - cap the connections (at the cap, idle keep-alive connections are closed
 *     first, then accepting pauses until one closes; said once a minute);
 *   - put a deadline on a whole request (request line, headers and body), not
 *     only on idle time: a client trickling a header line every few seconds
 *     is cut off at the deadline with a 408;
 *   - answer every refusal itself, as {"error": "..."} JSON with a status the
 *     client can act on: 400 malformed, 408 too slow, 413 body too large
 *     (said from Content-Length, before the body is read), 417, 431 headers
 *     too large, 501 an unknown transfer coding, 505 a version other than 1.x;
 *   - pause accepting on EMFILE/ENFILE instead of spinning.
 *
 * One request at a time per connection; a pipelined request waits in the
 * input buffer (bounded: reading stops beyond the limits) until the answer
 * before it has gone out, so a client that never reads cannot make answers
 * pile up. Request bodies may come
 * with Content-Length or chunked. Answers carry Content-Length, or are
 * streamed (chunked for HTTP/1.1, until close for HTTP/1.0). HEAD answers
 * carry the headers of the GET only.
 *
 * Life cycle. A request is handed to on_request once whole; it stays valid
 * until its answer is complete (httpd_reply, or httpd_reply_end) or its
 * connection closes. A connection's close callback (httpd_set_closecb) runs
 * once when the connection closes for any reason: the client went away (a
 * reset, or an end of input while no request is being answered: an end after
 * a whole request is a client that shut only its sending side, and still gets
 * its answer), a write failed or timed out, httpd_conn_close, httpd_free. The
 * request (if any) goes with it; answering it from the close callback does
 * nothing. Connections are never freed from inside a callback of this module
 * that is still running on them.
 */
#ifndef WG_NET_HTTPD_H
#define WG_NET_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct evkeyvalq;
struct evhttp_uri;
struct httpd;
struct httpd_conn;
struct httpd_req;

/* Methods as bits, so a route can hold the set it allows. */
enum httpd_method {
	HTTPD_GET = 1 << 0,
	HTTPD_HEAD = 1 << 1,
	HTTPD_POST = 1 << 2,
	HTTPD_PUT = 1 << 3,
	HTTPD_DELETE = 1 << 4,
	HTTPD_OPTIONS = 1 << 5,
	HTTPD_TRACE = 1 << 6,
	HTTPD_CONNECT = 1 << 7,
	HTTPD_PATCH = 1 << 8,
	HTTPD_OTHER = 1 << 9, /* a token we do not know: answered 405 by the router */
};

/* Limits; a zero field takes the default shown. */
struct httpd_opts {
	size_t max_headers;    /* request line and headers, 8 KiB */
	size_t max_body;       /* request body, 64 KiB */
	unsigned max_conns;    /* open connections, 256 */
	uint32_t request_ms;   /* a whole request, first byte to last, 10000 */
	uint32_t idle_ms;      /* between requests (from when the last answer has gone out), 30000 */
	uint32_t write_ms;     /* a write that makes no progress, 30000 */
	void (*on_request)(struct httpd_req *req, void *arg);
	void *arg;
};

/* Counters since start, for /metrics and the tests. */
struct httpd_stats {
	unsigned conns;                    /* open now */
	unsigned long long accepted;       /* connections accepted */
	unsigned long long requests;       /* requests handed to on_request */
	unsigned long long refused;        /* refusals answered here (4xx/5xx above) */
	unsigned long long timed_out;      /* request deadlines and idle timeouts */
	unsigned long long evicted;        /* idle connections closed to make room at the cap */
	unsigned long long cap_pauses;     /* times accepting paused at the cap */
	unsigned long long accept_errors;  /* EMFILE and the like */
};

/*
 * Listens on host:port (port 0: any; see httpd_port). Returns NULL with err
 * filled when the address cannot be bound.
 */
struct httpd *httpd_new(struct event_base *base, const struct httpd_opts *o, const char *host,
                        uint16_t port, char *err, size_t errlen);
int httpd_port(const struct httpd *h);
void httpd_stats(const struct httpd *h, struct httpd_stats *out);
/* Closes every connection (their close callbacks run) and the listener. NULL is a no-op. */
void httpd_free(struct httpd *h);

/* ---- requests ---- */

enum httpd_method httpd_method(const struct httpd_req *req);
const char *httpd_method_name(enum httpd_method m);
/* The request target as sent ("/sessions?limit=5"). */
const char *httpd_target(const struct httpd_req *req);
/* The target parsed (never NULL: a target that does not parse is refused with 400). */
const struct evhttp_uri *httpd_uri(const struct httpd_req *req);
struct evkeyvalq *httpd_in_headers(struct httpd_req *req);
struct evkeyvalq *httpd_out_headers(struct httpd_req *req);
/* The whole body, at most max_body bytes. */
struct evbuffer *httpd_body(struct httpd_req *req);
struct httpd_conn *httpd_conn_of(struct httpd_req *req);
/* A number the handler keeps with the request (the API's route, for its counters); 0 at first. */
void httpd_req_set_tag(struct httpd_req *req, int tag);
int httpd_req_tag(const struct httpd_req *req);
/* The arg of the server's httpd_opts. */
void *httpd_req_arg(const struct httpd_req *req);

/*
 * The whole answer: status line, the output headers, Content-Length and the
 * body (NULL: none; drained). The request is freed.
 */
void httpd_reply(struct httpd_req *req, int status, const char *reason, struct evbuffer *body);
/* A streamed answer: the head now, then chunks, then the end (which frees the request). */
void httpd_reply_start(struct httpd_req *req, int status, const char *reason);
/* Sends the contents of b (drained). sent, if not NULL, runs once the socket has taken all output. */
void httpd_reply_chunk(struct httpd_req *req, struct evbuffer *b,
                       void (*sent)(struct httpd_conn *c, void *arg), void *arg);
void httpd_reply_end(struct httpd_req *req);

/* ---- connections ---- */

/* Runs once when the connection closes; NULL removes it. One per connection. */
void httpd_set_closecb(struct httpd_conn *c, void (*cb)(struct httpd_conn *c, void *arg),
                       void *arg);
/* Closes now, the output unsent; the close callback runs (from this call). */
void httpd_conn_close(struct httpd_conn *c);
/* The client's address as text and its port. */
const char *httpd_peer(const struct httpd_conn *c, uint16_t *port);
/* Bytes written but not yet taken by the socket. */
size_t httpd_pending_output(const struct httpd_conn *c);

#endif
