#include "serve/serve.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "net/looplag.h"
#include "core/clock.h"
#include "core/enc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/ws.h"
#include "store/store.h"
#include "sup/sup.h"
#include "wa/crypto.h"

/* Shutdown must finish within 10 s; the supervisor's grace is shorter, this is the backstop. */
#define SHUTDOWN_HARD_MS 9000

struct server {
	struct event_base *base;
	struct store *st;
	struct sup *sup;
	struct api *api;
	struct event *hard;
	struct event *log_out; /* stderr is writable: the log's waiting lines go out */
	int stopping;
};

/*
 * The log never blocks the loop: when stderr is a pipe or a socket whose
 * reader falls behind, lines wait in memory and leave when it is writable.
 */
static void
on_log_writable(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	(void)fd;
	(void)what;
	if (wg_log_flush())
		event_add(s->log_out, NULL);
}

/* Back to a blocking stderr, with everything that waited written out. */
static void
log_release(struct server *s)
{
	wg_log_blocking();
	if (s->log_out != NULL)
		event_free(s->log_out);
	s->log_out = NULL;
}

static void
on_log_pending(void *arg)
{
	struct server *s = arg;
	if (s->log_out != NULL && !event_pending(s->log_out, EV_WRITE, NULL))
		event_add(s->log_out, NULL);
}

static int
open_store(const struct serve_config *c, struct store **st)
{
	char err[512];
	if (store_open(c->database, st, err, sizeof(err)) != 0) {
		log_error("serve", "cannot open the database: %s", err);
		return 1;
	}
	int applied = 0;
	if (store_migrate(*st, &applied) != 0) {
		log_error("serve", "database migration failed: %s", store_errmsg(*st));
		store_close(*st);
		return 1;
	}
	if (applied)
		log_info("serve", "applied %d database migration(s)", applied);
	return 0;
}

/*
 * The API key: WAGATE_API_KEY when set; otherwise one generated on the first
 * start, whose SHA-256 is stored and whose text is printed once on stdout
 * (never through the log). Later starts find the hash and print nothing.
 */
static int
api_key_hash(const struct serve_config *c, struct store *st, uint8_t hash[32])
{
	if (c->api_key[0] != '\0') {
		wa_crypto_sha256(hash, c->api_key, strlen(c->api_key));
		return 0;
	}
	char *stored = NULL;
	int r = store_get_setting(st, "api_key_sha256", &stored);
	if (r == 0) {
		size_t bad;
		uint8_t tmp[64];
		long n = wg_hex_decode(tmp, stored, strlen(stored), &bad);
		free(stored);
		if (n != 32) {
			log_error("serve", "the stored API key hash is corrupt; set WAGATE_API_KEY");
			return WG_EINVAL;
		}
		memcpy(hash, tmp, 32);
		return 0;
	}
	if (r != WG_ENOTFOUND) {
		log_error("serve", "cannot read settings: %s", store_errmsg(st));
		return r;
	}
	uint8_t raw[24];
	wa_random(raw, sizeof(raw));
	char key[64] = "wg_";
	wg_hex_encode(key + 3, raw, sizeof(raw));
	wa_crypto_sha256(hash, key, strlen(key));
	char hex[65];
	wg_hex_encode(hex, hash, 32);
	if (store_set_setting(st, "api_key_sha256", hex) != 0) {
		log_error("serve", "cannot store the API key: %s", store_errmsg(st));
		return WG_EIO;
	}
	printf("api-key %s\n", key);
	printf("(generated on first start and shown only this once: keep it; set WAGATE_API_KEY to choose your own)\n");
	fflush(stdout);
	wg_wipe(key, sizeof(key));
	return 0;
}

static void
on_stopped(void *arg)
{
	struct server *s = arg;
	/* Every row is written; the leases go back now, so the other nodes take over at once. */
	sup_leave(s->sup);
	log_info("serve", "stopped");
	event_base_loopbreak(s->base);
}

static void
on_hard(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	log_warn("serve", "shutdown took too long; exiting with connections still closing");
	event_base_loopbreak(s->base);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;
	if (s->stopping)
		return;
	s->stopping = 1;
	log_info("serve", "signal %d: closing every session", (int)sig);
	struct timeval tv = {SHUTDOWN_HARD_MS / 1000, 0};
	evtimer_add(s->hard, &tv);
	api_free(s->api);
	s->api = NULL;
	sup_shutdown(s->sup, on_stopped, s);
}

/*
 * Each WhatsApp session is a socket, and Debian's default soft limit is 1,024
 * descriptors: raised to the hard limit at start, and said, with how many
 * sessions that leaves room for: the rest goes to the API's clients (an
 * eighth of the descriptors, 16 to 1024, unless WAGATE_HTTP_MAX_CONNECTIONS
 * says), the database, the log. Returns the API's connection cap.
 */
#define FD_HEADROOM 128
#define HTTP_CONNS_MIN 16
#define HTTP_CONNS_MAX 1024

static unsigned
raise_fd_limit(unsigned http_conns)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return http_conns ? http_conns : HTTP_CONNS_MAX;
	rlim_t was = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = was;
	}
	unsigned long long n = (unsigned long long)rl.rlim_cur;
	if (rl.rlim_cur == RLIM_INFINITY)
		n = 1ULL << 20;
	if (http_conns == 0) {
		unsigned long long eighth = n / 8;
		http_conns = (unsigned)(eighth < HTTP_CONNS_MIN   ? HTTP_CONNS_MIN
		                        : eighth > HTTP_CONNS_MAX ? HTTP_CONNS_MAX
		                                                  : eighth);
	}
	unsigned long long keep = FD_HEADROOM + http_conns;
	unsigned long long fit = n > keep ? n - keep : 0;
	if (rl.rlim_cur == RLIM_INFINITY)
		log_info("serve", "descriptors: no limit; HTTP connections: at most %u", http_conns);
	else if (rl.rlim_cur != was)
		log_info("serve", "descriptors: %llu (raised from %llu): room for about %llu sessions "
		                  "beside at most %u HTTP connections", n, (unsigned long long)was, fit,
		         http_conns);
	else
		log_info("serve", "descriptors: %llu: room for about %llu sessions beside at most %u "
		                  "HTTP connections (raise the hard limit, e.g. LimitNOFILE= under "
		                  "systemd, for more)", n, fit, http_conns);
	return http_conns;
}

int
serve_run(const struct serve_config *c)
{
	struct server s = {0};
	/*
	 * A SIGINT or SIGTERM before the loop's handlers exist would end the
	 * process with nothing closed: they wait, blocked, until the handlers
	 * are there (and the threads started meanwhile keep them blocked, so
	 * they reach the loop's thread); then the shutdown is the usual one.
	 */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	unsigned http_conns = raise_fd_limit(c->http_max_conns);
	if (open_store(c, &s.st) != 0)
		return 1;
	uint8_t hash[32];
	if (api_key_hash(c, s.st, hash) != 0) {
		store_close(s.st);
		return 1;
	}
	/* With priorities, so logins in progress run after keepalives and requests (ws_set_background). */
	s.base = ws_base_new();
	if (s.base == NULL)
		s.base = event_base_new();
	s.log_out = event_new(s.base, STDERR_FILENO, EV_WRITE, on_log_writable, &s);
	if (s.log_out != NULL)
		wg_log_nonblocking(on_log_pending, &s);
	/* Resolver and TLS context are shared by every session and made once, here:
	 * reading resolv.conf and the CA bundle is the only file I/O they need. */
	struct evdns_base *dns = evdns_base_new(s.base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (dns == NULL)
		dns = evdns_base_new(s.base, 0);
	struct sup_wa_ctx wctx = {.base = s.base, .opts = c->wa};
	wctx.opts.dns = dns;
	if (strncmp(c->wa.url, "wss://", 6) == 0)
		wctx.opts.ssl_ctx = ws_tls_default_ctx();

	sup_new(s.st, &c->sup, &sup_client_wa, &wctx, &s.sup);
	sup_attach(s.sup, s.base);
	char err[256] = "";
	/* The database writes on a thread of their own: the loop never waits for the disk. */
	int wr = sup_use_writer(s.sup, c->database, err, sizeof(err));
	if (wr == 0)
		/*
		 * The loop's connection now writes only for the API, and may meet the
		 * writer's lock: a short wait beats a refused request.
		 */
		store_set_wait(s.st, 50);
	else if (wr == WG_ENOTSUP)
		log_info("serve", "database writes run on the event loop: %s", err);
	else
		log_warn("serve", "database writes run on the event loop (no writer thread: %s)", err);
	err[0] = '\0';
	if (c->sup.node_id[0])
		log_info("serve", "several nodes: this is node \"%s\" (API for the others at %s), "
				  "leases of %" PRIu64 " ms%s", c->sup.node_id, c->sup.node_url,
			 c->sup.lease_ttl_ms, c->sup.max_sessions ? ", a capacity" : "");
	struct looplag *lag = looplag_new(s.base, c->loop_lag_ms);
	struct api_opts ao = {.listen = c->listen,
	                      .lag = lag,
	                      .started_mono_ms = wg_now_ms(),
	                      .web_root = c->web_root[0] ? c->web_root : NULL,
	                      .cookie_secure = c->cookie_secure,
	                      .max_conns = http_conns,
	                      .request_ms = (uint32_t)c->http_request_ms,
	                      .dns = dns};
	memcpy(ao.api_key_sha256, hash, 32);
	/* The key itself, when set: several nodes derive the key that signs forwarded requests from it. */
	ao.api_key = c->api_key[0] ? c->api_key : NULL;
	if (api_start(s.base, &ao, s.st, s.sup, &s.api, err, sizeof(err)) != 0) {
		log_error("serve", "cannot start the HTTP API: %s", err);
		looplag_free(lag);
		sup_free(s.sup);
		evdns_base_free(dns, 0);
		log_release(&s);
		event_base_free(s.base);
		store_close(s.st);
		return 1;
	}
	log_info("serve", "listening on http://%s", c->listen);
	if (sup_start(s.sup) != 0) {
		api_free(s.api);
		looplag_free(lag);
		sup_free(s.sup);
		evdns_base_free(dns, 0);
		log_release(&s);
		event_base_free(s.base);
		store_close(s.st);
		return 1;
	}
	s.hard = evtimer_new(s.base, on_hard, &s);
	struct event *sint = evsignal_new(s.base, SIGINT, on_signal, &s);
	struct event *sterm = evsignal_new(s.base, SIGTERM, on_signal, &s);
	evsignal_add(sint, NULL);
	evsignal_add(sterm, NULL);
	pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL); /* one sent meanwhile arrives now */
	event_base_dispatch(s.base);
	event_free(sint);
	event_free(sterm);
	event_free(s.hard);
	api_free(s.api);
	looplag_free(lag);
	sup_free(s.sup);
	evdns_base_free(dns, 0);
	log_release(&s);
	event_base_free(s.base);
	store_close(s.st);
	return 0;
}

int
serve_migrate(const struct serve_config *c, int dry_run)
{
	struct store *st;
	if (!dry_run) {
		if (open_store(c, &st) != 0)
			return 1;
		printf("database is up to date\n");
		store_close(st);
		return 0;
	}
	char err[512];
	if (store_open(c->database, &st, err, sizeof(err)) != 0) {
		log_error("serve", "cannot open the database: %s", err);
		return 1;
	}
	char *sql = NULL;
	int r = store_migrate_plan(st, &sql);
	if (r != 0) {
		log_error("serve", "cannot plan the migrations: %s", store_errmsg(st));
		store_close(st);
		return 1;
	}
	if (sql[0] == '\0')
		printf("-- the database is up to date: nothing to run\n");
	else
		fputs(sql, stdout);
	free(sql);
	store_close(st);
	return 0;
}
