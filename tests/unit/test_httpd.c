/*
 * The API's HTTP server on its own, against raw client sockets: requests
 * (lengths, chunked bodies, pipelining, HTTP/1.0, HEAD, streamed answers),
 * every refusal it answers itself, the whole-request deadline, the idle
 * timeout, the connection cap, and close callbacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/log.h"
#include "net/httpd.h"

struct fx {
	struct event_base *base;
	struct httpd *h;
	struct httpd_opts o;
	struct httpd_req *held;  /* a request answered later (target "/wait") */
	int closed;              /* close callbacks seen */
	int timed_out;
	size_t most_pending;     /* output waiting when a request started, at most */
};

static void
on_close(struct httpd_conn *c, void *arg)
{
	struct fx *f = arg;
	(void)c;
	f->closed++;
	f->held = NULL;
}

/* Answers "<method> <target> <body length> <body>", or streams, or waits. */
static void
on_request(struct httpd_req *req, void *arg)
{
	struct fx *f = arg;
	const char *t = httpd_target(req);
	struct evbuffer *b = evbuffer_new();
	if (strcmp(t, "/wait") == 0) {
		f->held = req;
		httpd_set_closecb(httpd_conn_of(req), on_close, f);
		evbuffer_free(b);
		return;
	}
	if (strcmp(t, "/stream") == 0) {
		httpd_reply_start(req, 200, "OK");
		evbuffer_add_printf(b, "one;");
		httpd_reply_chunk(req, b, NULL, NULL);
		evbuffer_add_printf(b, "two;");
		httpd_reply_chunk(req, b, NULL, NULL);
		httpd_reply_end(req);
		evbuffer_free(b);
		return;
	}
	size_t pending = httpd_pending_output(httpd_conn_of(req));
	if (pending > f->most_pending)
		f->most_pending = pending;
	if (strncmp(t, "/big", 4) == 0) {
		/* /big?N: N KiB of 'x'. */
		size_t kib = strlen(t) > 5 ? strtoul(t + 5, NULL, 10) : 256;
		char chunk[1024];
		memset(chunk, 'x', sizeof(chunk));
		for (size_t i = 0; i < kib; i++)
			evbuffer_add(b, chunk, sizeof(chunk));
		httpd_reply(req, 200, "OK", b);
		evbuffer_free(b);
		return;
	}
	struct evbuffer *in = httpd_body(req);
	size_t n = evbuffer_get_length(in);
	evbuffer_add_printf(b, "%s %s %zu ", httpd_method_name(httpd_method(req)), t, n);
	evbuffer_add_buffer(b, in);
	evhttp_add_header(httpd_out_headers(req), "Content-Type", "text/plain");
	httpd_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void
start(struct fx *f)
{
	char err[256];
	f->o.on_request = on_request;
	f->o.arg = f;
	f->h = httpd_new(f->base, &f->o, "127.0.0.1", 0, err, sizeof(err));
	assert_non_null(f->h);
}

static int
setup(void **state)
{
	wg_log_set_level(WG_LOG_ERROR);
	struct fx *f = calloc(1, sizeof(*f));
	f->base = event_base_new();
	f->o.max_body = 1024;
	f->o.max_headers = 512;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	httpd_free(f->h);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* ---- a raw client ---- */

static int
cli(struct fx *f)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)httpd_port(f->h))};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static void
put(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void
pump(struct fx *f, int turns)
{
	for (int i = 0; i < turns; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/*
 * Reads what the server sent into buf until `want` appears in it, or the
 * server closes (*eof), pumping the loop; gives up after about 3 s.
 */
static size_t
read_until(struct fx *f, int fd, char *buf, size_t cap, const char *want, int *eof)
{
	size_t got = 0;
	*eof = 0;
	buf[0] = '\0';
	for (int i = 0; i < 3000; i++) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		ssize_t n = read(fd, buf + got, cap - 1 - got);
		if (n > 0) {
			got += (size_t)n;
			buf[got] = '\0';
			if (want && strstr(buf, want))
				return got;
			continue;
		}
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			*eof = 1;
			return got;
		}
		usleep(1000);
	}
	return got;
}

/* Sends req on a new connection; returns the whole answer (up to the server's close). */
static void
exchange(struct fx *f, const char *req, char *buf, size_t cap)
{
	int fd = cli(f), eof;
	put(fd, req);
	read_until(f, fd, buf, cap, NULL, &eof);
	assert_true(eof);
	close(fd);
}

static void
assert_refused(struct fx *f, const char *req, const char *status, const char *fragment)
{
	char buf[4096];
	exchange(f, req, buf, sizeof(buf));
	if (strncmp(buf, status, strlen(status)) != 0 || strstr(buf, fragment) == NULL ||
	    strstr(buf, "Connection: close\r\n") == NULL ||
	    strstr(buf, "Content-Type: application/json") == NULL)
		fail_msg("for %s: want %s with \"%s\", got:\n%s", req, status, fragment, buf);
}

/* ---- tests ---- */

static void
test_requests(void **state)
{
	struct fx *f = *state;
	start(f);
	char buf[4096];
	int fd = cli(f), eof;
	/* Three pipelined requests in one write: a length, a chunked body, none. */
	put(fd, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	        "PUT /b?q=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	        "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n"
	        "GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), "GET /c 0 ", &eof);
	assert_false(eof);
	char *a = strstr(buf, "POST /a 5 hello"), *b = strstr(buf, "PUT /b?q=1 5 abcde"),
	     *c = strstr(buf, "GET /c 0 ");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_true(a < b && b < c); /* in order */
	assert_null(strstr(buf, "Connection: close"));
	/* Connection: close is honoured. */
	put(fd, "GET /d HTTP/1.1\r\nConnection: close\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), NULL, &eof);
	assert_true(eof);
	assert_non_null(strstr(buf, "Connection: close\r\n"));
	close(fd);

	/* HTTP/1.0 closes after the answer unless it asks to keep the connection. */
	exchange(f, "GET /e HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "GET /e 0"));
	fd = cli(f);
	put(fd, "GET /f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), "GET /f 0", &eof);
	assert_false(eof);
	assert_non_null(strstr(buf, "Connection: keep-alive\r\n"));
	close(fd);

	/* HEAD: the headers of the GET, with its length, and no body. */
	exchange(f, "HEAD /g HTTP/1.1\r\nConnection: close\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "Content-Length: 10\r\n"));
	assert_null(strstr(buf, "HEAD /g"));

	/* A streamed answer: chunked for HTTP/1.1, until the close for HTTP/1.0. */
	exchange(f, "GET /stream HTTP/1.1\r\nConnection: close\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "Transfer-Encoding: chunked\r\n"));
	assert_non_null(strstr(buf, "\r\n\r\n4\r\none;\r\n4\r\ntwo;\r\n0\r\n\r\n"));
	exchange(f, "GET /stream HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	assert_null(strstr(buf, "Transfer-Encoding"));
	assert_non_null(strstr(buf, "\r\n\r\none;two;"));

	/* Expect: 100-continue gets its interim answer, then the answer. */
	fd = cli(f);
	put(fd, "POST /h HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), "100 Continue\r\n\r\n", &eof);
	assert_int_equal(strncmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25), 0);
	put(fd, "ok");
	read_until(f, fd, buf, sizeof(buf), "POST /h 2 ok", &eof);
	assert_non_null(strstr(buf, "POST /h 2 ok"));
	close(fd);

	struct httpd_stats st;
	httpd_stats(f->h, &st);
	assert_int_equal(st.requests, 10);
	assert_int_equal(st.refused, 0);
}

static void
test_refusals(void **state)
{
	struct fx *f = *state;
	start(f);
	assert_refused(f, "GET /\r\n\r\n", "HTTP/1.1 400", "malformed request line");
	assert_refused(f, "GET  / HTTP/1.1\r\n\r\n", "HTTP/1.1 400", "malformed request line");
	assert_refused(f, "G(T / HTTP/1.1\r\n\r\n", "HTTP/1.1 400", "malformed method");
	assert_refused(f, "GET / HTTP/2.0\r\n\r\n", "HTTP/1.1 505", "HTTP/1.0 and HTTP/1.1");
	assert_refused(f, "GET / HTTP/1.1\r\nNo colon\r\n\r\n", "HTTP/1.1 400", "header line");
	assert_refused(f, "GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", "HTTP/1.1 400", "folded");
	assert_refused(f, "GET / HTTP/1.1\r\nA: x\x01y\r\n\r\n", "HTTP/1.1 400", "control");
	assert_refused(f, "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "HTTP/1.1 400",
	               "Content-Length");
	assert_refused(f, "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	               "HTTP/1.1 400", "Content-Length");
	assert_refused(f,
	               "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	               "HTTP/1.1 400", "both");
	assert_refused(f, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501",
	               "chunked");
	assert_refused(f, "POST / HTTP/1.1\r\nContent-Length: 1\r\nExpect: fly\r\n\r\n",
	               "HTTP/1.1 417", "100-continue");
	assert_refused(f, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	               "HTTP/1.1 400", "chunked");
	assert_refused(f, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 junk\r\n",
	               "HTTP/1.1 400", "chunked");
	assert_refused(f, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n",
	               "HTTP/1.1 400", "chunked"); /* a bare LF ends no chunk line */
	/* Headers over the limit, whole lines or one endless line. */
	char big[1024];
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX: %0600d\r\n\r\n", 0);
	assert_refused(f, big, "HTTP/1.1 431", "too large");
	memset(big, 'a', 700);
	memcpy(big, "GET /", 5);
	big[700] = '\0';
	assert_refused(f, big, "HTTP/1.1 431", "too large");
	/* A body over the limit: said from its length, before it is sent (10 MiB here)... */
	assert_refused(f, "POST / HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n", "HTTP/1.1 413",
	               "larger than 1024");
	/* ...or after it, when it is small enough to read and drop (clients that read late). */
	char body[2100];
	int n = snprintf(body, sizeof(body), "POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n");
	memset(body + n, 'b', 2000);
	body[n + 2000] = '\0';
	assert_refused(f, body, "HTTP/1.1 413", "larger than 1024");
	/* A chunked body over the limit. */
	assert_refused(f, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n",
	               "HTTP/1.1 413", "larger than 1024");

	struct httpd_stats st;
	httpd_stats(f->h, &st);
	assert_int_equal(st.requests, 0);
	assert_int_equal(st.refused, 20);
	/* Still serving. */
	char buf[512];
	exchange(f, "GET /ok HTTP/1.1\r\nConnection: close\r\n\r\n", buf, sizeof(buf));
	assert_non_null(strstr(buf, "GET /ok 0"));
}

/* Sends one more header line each time it fires, as a slow-headers attacker does. */
struct trickle {
	int fd;
	int lines;
	struct event *ev;
};

static void
on_trickle(evutil_socket_t fd, short what, void *arg)
{
	struct trickle *t = arg;
	(void)fd;
	(void)what;
	if (write(t->fd, "X-Slow: 1\r\n", 11) == 11)
		t->lines++;
}

static void
test_request_deadline(void **state)
{
	struct fx *f = *state;
	f->o.request_ms = 300;
	f->o.idle_ms = 60000;
	start(f);
	struct trickle t = {.fd = cli(f)};
	put(t.fd, "GET / HTTP/1.1\r\n");
	t.ev = event_new(f->base, -1, EV_PERSIST, on_trickle, &t);
	struct timeval tv = {0, 50000};
	event_add(t.ev, &tv);
	/* Every line resets no timer: the whole request has 300 ms, then 408 and the close. */
	char buf[1024];
	int eof;
	read_until(f, t.fd, buf, sizeof(buf), NULL, &eof);
	event_free(t.ev);
	assert_true(eof);
	assert_int_equal(strncmp(buf, "HTTP/1.1 408", 12), 0);
	assert_non_null(strstr(buf, "within 300 ms"));
	/* A few lines at most: the idle timeout (60 s) would have let it go on forever. */
	assert_true(t.lines >= 1 && t.lines <= 12);
	close(t.fd);
	struct httpd_stats st;
	for (int i = 0; i < 2000; i++) {
		httpd_stats(f->h, &st);
		if (st.conns == 0)
			break;
		pump(f, 1);
		usleep(1000);
	}
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(st.conns, 0);
}

static void
test_idle_timeout(void **state)
{
	struct fx *f = *state;
	f->o.idle_ms = 100;
	start(f);
	int fd = cli(f), eof;
	char buf[256];
	/* One answer, then nothing: the connection is closed, with no answer of ours. */
	put(fd, "GET /x HTTP/1.1\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), NULL, &eof);
	assert_true(eof);
	assert_non_null(strstr(buf, "GET /x 0"));
	assert_null(strstr(buf, "408"));
	close(fd);
	struct httpd_stats st;
	httpd_stats(f->h, &st);
	assert_int_equal(st.timed_out, 1);
}

static void
test_cap(void **state)
{
	struct fx *f = *state;
	f->o.max_conns = 3;
	start(f);
	struct httpd_stats st;
	char buf[512];
	int eof;
	/* Three connections, none with a request yet: the cap is reached, accepting pauses. */
	int a = cli(f), b = cli(f), c = cli(f);
	pump(f, 20);
	httpd_stats(f->h, &st);
	assert_int_equal(st.conns, 3);
	assert_int_equal(st.cap_pauses, 1);
	int d = cli(f); /* the kernel completes the handshake; the server does not take it */
	put(d, "GET /d HTTP/1.1\r\nConnection: close\r\n\r\n");
	pump(f, 50);
	httpd_stats(f->h, &st);
	assert_int_equal(st.accepted, 3);
	/* One is served and stays open (keep-alive): at the cap it is closed to make room for d. */
	put(a, "GET /a HTTP/1.1\r\n\r\n");
	read_until(f, a, buf, sizeof(buf), NULL, &eof);
	assert_true(eof);
	assert_non_null(strstr(buf, "GET /a 0"));
	close(a);
	read_until(f, d, buf, sizeof(buf), NULL, &eof);
	assert_true(eof);
	assert_non_null(strstr(buf, "GET /d 0"));
	httpd_stats(f->h, &st);
	assert_int_equal(st.accepted, 4);
	assert_int_equal(st.evicted, 1);
	assert_true(st.conns <= 3);
	/* Below the cap, a served connection stays open for its next request. */
	close(d);
	for (int i = 0; i < 2000 && st.conns > 2; i++) {
		pump(f, 1);
		usleep(1000);
		httpd_stats(f->h, &st);
	}
	assert_int_equal(st.conns, 2);
	put(b, "GET /b1 HTTP/1.1\r\n\r\n");
	read_until(f, b, buf, sizeof(buf), "GET /b1 0", &eof);
	put(b, "GET /b2 HTTP/1.1\r\n\r\n");
	read_until(f, b, buf, sizeof(buf), "GET /b2 0", &eof);
	assert_false(eof);
	httpd_stats(f->h, &st);
	assert_int_equal(st.evicted, 1);
	close(b);
	close(c);
}

static void
test_close_callback(void **state)
{
	struct fx *f = *state;
	start(f);
	int fd = cli(f);
	put(fd, "GET /wait HTTP/1.1\r\n\r\n");
	for (int i = 0; i < 200 && f->held == NULL; i++)
		pump(f, 1);
	assert_non_null(f->held);
	/*
	 * The client goes away while its answer waits: the close callback says
	 * so. (A plain close is a FIN, which reads like a client that only shut
	 * its side and still waits for the answer; a reset is unambiguous.)
	 */
	struct linger lg = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	for (int i = 0; i < 2000 && f->closed == 0; i++) {
		pump(f, 1);
		usleep(1000);
	}
	assert_int_equal(f->closed, 1);
	assert_null(f->held);
	/* A half-closed client (shut its side after the request) still gets its answer. */
	fd = cli(f);
	put(fd, "GET /wait HTTP/1.1\r\n\r\n");
	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 200 && f->held == NULL; i++)
		pump(f, 1);
	assert_non_null(f->held);
	pump(f, 20);
	struct httpd_req *req = f->held;
	httpd_set_closecb(httpd_conn_of(req), NULL, NULL);
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, "late", 4);
	httpd_reply(req, 200, "OK", b);
	evbuffer_free(b);
	char buf[512];
	int eof;
	read_until(f, fd, buf, sizeof(buf), NULL, &eof);
	assert_true(eof);
	assert_non_null(strstr(buf, "Connection: close\r\n"));
	assert_non_null(strstr(buf, "\r\n\r\nlate"));
	close(fd);
}

/* A client that pipelines many requests and never reads: the next waits for the last answer to go out. */
static void
test_pipelining_never_reading(void **state)
{
	struct fx *f = *state;
	start(f);
	int fd = cli(f);
	char req[64 * 40];
	size_t n = 0;
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n, "GET /big?256 HTTP/1.1\r\n\r\n");
	assert_int_equal(write(fd, req, n), (ssize_t)n);
	pump(f, 300);
	struct httpd_stats st;
	httpd_stats(f->h, &st);
	/* 40 answers of 256 KiB would be 10 MiB queued; a few fit the socket, the rest wait their turn. */
	assert_true(st.requests >= 1 && st.requests < 40);
	assert_int_equal(f->most_pending, 0);
	close(fd);
}

/*
 * A reader that pauses in the middle of a long answer is not cut off by the
 * idle timeout: that starts once the answer is out, not when it is queued.
 */
static void
test_slow_reader_keeps_its_answer(void **state)
{
	struct fx *f = *state;
	f->o.idle_ms = 200;
	start(f);
	int fd = cli(f);
	put(fd, "GET /big?24576 HTTP/1.1\r\n\r\n"); /* 24 MiB: more than the kernel's buffers hold */
	/* Half a second without reading: the answer waits in the server's memory, far past 200 ms. */
	for (int i = 0; i < 50; i++) {
		pump(f, 2);
		usleep(10000);
	}
	size_t got = 0;
	static char buf[1 << 16];
	/* The whole answer: its head (over 40 bytes) and the 24 MiB body. */
	for (int i = 0; i < 200000 && got < (size_t)24576 * 1024 + 40; i++) {
		pump(f, 1);
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r > 0)
			got += (size_t)r;
		else if (r == 0)
			break;
		else
			usleep(200);
	}
	struct httpd_stats st;
	httpd_stats(f->h, &st);
	if (got <= (size_t)24576 * 1024)
		fail_msg("got %zu bytes; timeouts %llu", got, (unsigned long long)st.timed_out);
	assert_int_equal(st.timed_out, 0);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_close_callback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelining_never_reading, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_reader_keeps_its_answer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
