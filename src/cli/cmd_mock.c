/*
 * wagate mock --listen HOST:PORT --control HOST:PORT [--root-key-file FILE]
 *             [--state FILE] [--accept-any-login [--prekeys-known N]]
 *             [--tls-cert FILE --tls-key FILE]
 *
 * Prints "root-pubkey <hex>" as its first line on stdout (what clients must
 * trust, e.g. WAGATE_WA_ROOT_PUBKEY), then "listen HOST:PORT" and
 * "control HOST:PORT" with the bound ports (useful with port 0).
 * Runs until SIGINT or SIGTERM, then closes every connection and exits 0.
 * Exits 2 for bad options, an unusable address, or a malformed key or state file.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/addr.h"
#include "core/duration.h"
#include "core/enc.h"
#include "core/log.h"
#include "mock/mock.h"

static void
mock_usage(FILE *f)
{
	fprintf(f, "usage: wagate mock --listen HOST:PORT --control HOST:PORT "
		   "[--root-key-file FILE] [--state FILE]\n"
		   "       [--accept-any-login [--prekeys-known N]] [--idle-timeout DURATION]\n"
		   "       [--tls-cert FILE --tls-key FILE]\n");
}

static void
on_done(void *arg)
{
	event_base_loopbreak(arg);
}

struct sigctx {
	struct mock *m;
	struct event_base *base;
};

static void
on_signal_ctx(evutil_socket_t sig, short what, void *arg)
{
	struct sigctx *s = arg;
	log_info("mock", "signal %d: shutting down", (int)sig);
	mock_shutdown(s->m, on_done, s->base);
}

int
cmd_mock(int argc, char **argv)
{
	struct mock_opts opts = {.listen = "127.0.0.1:8081", .control = "127.0.0.1:8082"};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			mock_usage(stdout);
			return 0;
		}
		if (strcmp(a, "--accept-any-login") == 0) {
			opts.accept_any_login = true;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "wagate mock: %s needs a value\n", a);
			mock_usage(stderr);
			return 2;
		}
		if (strcmp(a, "--listen") == 0)
			opts.listen = argv[++i];
		else if (strcmp(a, "--control") == 0)
			opts.control = argv[++i];
		else if (strcmp(a, "--root-key-file") == 0)
			opts.root_key_file = argv[++i];
		else if (strcmp(a, "--state") == 0)
			opts.state_file = argv[++i];
		else if (strcmp(a, "--prekeys-known") == 0) {
			char *end;
			unsigned long v = strtoul(argv[++i], &end, 10);
			if (*argv[i] < '0' || *argv[i] > '9' || *end || v > 100000) {
				fprintf(stderr, "wagate mock: --prekeys-known takes 0-100000\n");
				return 2;
			}
			opts.prekeys_known = (uint32_t)v;
		} else if (strcmp(a, "--idle-timeout") == 0) {
			uint64_t ms;
			if (wg_duration_parse(argv[++i], &ms) != 0 || ms < 100) {
				fprintf(stderr, "wagate mock: --idle-timeout takes a duration of at least 100ms\n");
				return 2;
			}
			opts.idle_timeout_ms = ms;
		} else if (strcmp(a, "--tls-cert") == 0)
			opts.tls_cert = argv[++i];
		else if (strcmp(a, "--tls-key") == 0)
			opts.tls_key = argv[++i];
		else {
			fprintf(stderr, "wagate mock: unknown option \"%s\"\n", a);
			mock_usage(stderr);
			return 2;
		}
	}
	char host[256];
	uint16_t port;
	if (wg_addr_split(opts.listen, host, sizeof(host), &port)) {
		fprintf(stderr, "wagate mock: --listen \"%s\" is not HOST:PORT\n", opts.listen);
		return 2;
	}

	struct event_base *base = event_base_new();
	struct mock *m;
	char err[256] = "";
	if (mock_new(base, &opts, &m, err, sizeof(err)) != 0) {
		fprintf(stderr, "wagate mock: %s\n", err);
		event_base_free(base);
		return 2;
	}
	char hex[65], chost[256];
	uint16_t cport;
	wg_hex_encode(hex, mock_root_pub(m), 32);
	wg_addr_split(opts.control, chost, sizeof(chost), &cport);
	printf("root-pubkey %s\n", hex);
	printf("listen %s:%d\n", host, mock_listen_port(m));
	printf("control %s:%d\n", chost, mock_control_port(m));
	fflush(stdout);

	struct sigctx sc = {m, base};
	struct event *sint = evsignal_new(base, SIGINT, on_signal_ctx, &sc);
	struct event *sterm = evsignal_new(base, SIGTERM, on_signal_ctx, &sc);
	evsignal_add(sint, NULL);
	evsignal_add(sterm, NULL);
	event_base_dispatch(base);
	event_free(sint);
	event_free(sterm);
	mock_free(m);
	event_base_free(base);
	return 0;
}
