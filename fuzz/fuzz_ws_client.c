/*
 * libFuzzer target: what a WebSocket client reads from a hostile server: the
 * HTTP answer to its upgrade request, then frames. A listener in the process
 * plays the server: it reads the client's request and writes the input back
 * as its answer, with "@ACCEPT@" replaced by the right Sec-WebSocket-Accept
 * for the client's key (so inputs reach the frames after a good upgrade).
 * The property: the client ends every connection exactly once, crash- and
 * leak-free, whatever it read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "net/ws.h"

static struct event_base *base;
static int lfd = -1, port;

struct outcome {
	int closed;
	int opened;
};

static void
on_open(struct ws_conn *c, void *arg)
{
	((struct outcome *)arg)->opened = 1;
}
static void
on_message(struct ws_conn *c, const uint8_t *d, size_t n, void *arg)
{
}
static void
on_close(struct ws_conn *c, int err, int code, const char *reason, void *arg)
{
	struct outcome *o = arg;
	if (o->closed++)
		abort(); /* ended twice */
}
static const struct ws_callbacks cbs = {on_open, on_message, on_close};

static void
setup(void)
{
	wg_log_set_level(WG_LOG_ERROR);
	base = event_base_new();
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0)
		abort();
	port = ntohs(sa.sin_port);
	fcntl(lfd, F_SETFL, O_NONBLOCK);
}

/* The first "@ACCEPT@" in p..end, or NULL. */
static const uint8_t *
placeholder(const uint8_t *p, const uint8_t *end)
{
	for (; end - p >= 8; p++)
		if (memcmp(p, "@ACCEPT@", 8) == 0)
			return p;
	return NULL;
}

/* The Sec-WebSocket-Accept for the key in the client's request (ws_accept_value), or "". */
static void
accept_for(const char *req, char out[32])
{
	out[0] = '\0';
	const char *k = strstr(req, "Sec-WebSocket-Key: ");
	const char *e = k ? strstr(k + 19, "\r\n") : NULL;
	if (e == NULL || ws_accept_value(k + 19, (size_t)(e - k - 19), out) != 0)
		out[0] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (base == NULL)
		setup();
	char url[64];
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws/chat", port);
	struct ws_client_opts o = {.url = url, .limits = {.max_message = 1 << 16,
							  .handshake_timeout_ms = 2000,
							  .close_timeout_ms = 50}};
	struct outcome out = {0};
	struct ws_conn *c;
	if (ws_client_connect(base, &o, &cbs, &out, &c) != 0)
		abort();
	int sfd = -1, answered = 0;
	char req[4096];
	size_t rlen = 0;
	for (int i = 0; i < 2000 && !out.closed; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (sfd < 0) {
			sfd = accept(lfd, NULL, NULL);
			if (sfd >= 0)
				fcntl(sfd, F_SETFL, O_NONBLOCK);
			continue;
		}
		if (!answered) {
			ssize_t n = read(sfd, req + rlen, sizeof(req) - 1 - rlen);
			if (n > 0)
				rlen += (size_t)n;
			req[rlen] = '\0';
			if (strstr(req, "\r\n\r\n") == NULL && rlen < sizeof(req) - 1)
				continue;
			char acc[32];
			accept_for(req, acc);
			/* The answer: the input, with each "@ACCEPT@" made the right value. */
			const uint8_t *p = data, *end = data + size;
			while (p < end) {
				const uint8_t *m = placeholder(p, end);
				size_t chunk = m ? (size_t)(m - p) : (size_t)(end - p);
				if (chunk && write(sfd, p, chunk) < 0)
					break;
				if (m == NULL)
					break;
				if (write(sfd, acc, strlen(acc)) < 0)
					break;
				p = m + 8;
			}
			shutdown(sfd, SHUT_WR);
			answered = 1;
			continue;
		}
		char sink[4096];
		if (read(sfd, sink, sizeof(sink)) == 0) {
			close(sfd);
			sfd = -2; /* the client closed; wait for its report */
		}
	}
	if (!out.closed) {
		ws_close(c, 1000, NULL);
		for (int i = 0; i < 1000 && !out.closed; i++)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	if (sfd >= 0)
		close(sfd);
	if (!out.closed)
		abort(); /* never ended */
	if (getenv("FUZZ_WS_SHOW"))
		fprintf(stderr, "opened %d\n", out.opened);
	return 0;
}
