/*
 * libFuzzer target: the HTTP API, whole, on raw bytes from a client: the
 * request line, headers (cookies, Last-Event-ID, the key), query strings and
 * JSON bodies of every route, several requests on one connection. One server
 * (an in-memory store, a supervisor whose connects all fail) is started once;
 * each input is written on a new loopback connection, which is read until
 * the server closes it or the exchange goes quiet. The property: no crash and
 * no leak (ASan), and the server still answers GET /health afterwards.
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

#include "api/api.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store.h"
#include "sup/sup.h"

#define FUZZ_KEY "fuzz-api-key-0123456789abcdef"

static int
no_open(void *ctx, const char *id, const char *auth, const struct sup_client_cb *cb, void *arg,
	struct sup_client **out)
{
	return WG_EIO; /* nothing reaches WhatsApp here */
}
static void no_close(struct sup_client *c) {}
static int no_probe(struct sup_client *c) { return WG_EIO; }
static int no_alive(const struct sup_client *c) { return 0; }
static const struct sup_client_ops ops = {no_open, no_close, no_probe, no_alive};

static struct event_base *base;
static int port;

static void
setup(void)
{
	char err[256];
	struct store *st;
	struct sup *sup;
	struct api *api;
	wg_log_set_level(WG_LOG_ERROR);
	base = event_base_new();
	int applied;
	if (store_open("sqlite::memory:", &st, err, sizeof(err)) != 0 || store_migrate(st, &applied) != 0)
		abort();
	struct sup_config cfg;
	sup_config_defaults(&cfg);
	if (sup_new(st, &cfg, &ops, NULL, &sup) != 0)
		abort();
	sup_attach(sup, base);
	sup_start(sup);
	struct api_opts o = {.listen = "127.0.0.1:0", .api_key = FUZZ_KEY, .web_root = "/nonexistent"};
	if (api_start(base, &o, st, sup, &api, err, sizeof(err)) != 0)
		abort();
	port = api_port(api);
}

/*
 * Writes data on a new connection and runs the loop until the server closes
 * it or it goes quiet; the first bytes of the answer are left in first.
 */
static void
exchange(const uint8_t *data, size_t size, char first[16])
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		abort();
	fcntl(fd, F_SETFL, O_NONBLOCK);
	size_t off = 0, got = 0;
	int quiet = 0;
	char buf[65536];
	memset(first, 0, 16);
	while (quiet < 20) {
		if (off < size) {
			ssize_t n = write(fd, data + off, size - off);
			if (n > 0)
				off += (size_t)n;
			if (off == size)
				shutdown(fd, SHUT_WR);
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			break; /* the server closed it */
		if (n > 0 && got < 15) {
			size_t k = (size_t)n < 15 - got ? (size_t)n : 15 - got;
			memcpy(first + got, buf, k);
			got += k;
		}
		quiet = n > 0 ? 0 : quiet + 1;
	}
	close(fd);
	/* Let the server see the close. */
	for (int i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (base == NULL)
		setup();
	char first[16];
	exchange(data, size, first);
	if (getenv("FUZZ_API_SHOW"))
		fprintf(stderr, "answer: %.15s\n", first);
	static const char health[] = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	exchange((const uint8_t *)health, sizeof(health) - 1, first);
	if (strncmp(first, "HTTP/1.1 200", 12) != 0)
		abort(); /* the input left the server unable to answer */
	return 0;
}
