#include "serve/serve.h"

#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>
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
#include "hook/hook.h"
#include "net/ws.h"
#include "serve/secret.h"
#include "store/seal.h"
#include "store/store.h"
#include "sup/sup.h"
#include "wa/creds.h"
#include "wa/crypto.h"

/* Shutdown must finish within 10 s; the supervisor's grace is shorter, this is the backstop. */
#define SHUTDOWN_HARD_MS 9000

struct server {
	struct event_base *base;
	struct store *st;
	struct sup *sup;
	struct api *api;
	struct hook *hook;
	struct event *hard;
	struct event *log_out; /* stderr is writable: the log's waiting lines go out */
	struct event *watchdog; /* systemd's watchdog, fed from the loop (WatchdogSec=) */
	int stopping;
};

/*
 * systemd (Type=notify): READY=1 once the API listens and the sessions are
 * read, STOPPING=1 when the graceful stop begins, and WATCHDOG=1 at half the
 * watchdog's period from a timer on the event loop, so a loop that stalls is
 * restarted. Without systemd ($NOTIFY_SOCKET unset) these do nothing.
 */
static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}

static void
notify_ready(struct server *s, const char *listen)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		s->watchdog = event_new(s->base, -1, EV_PERSIST, on_watchdog, s);
		struct timeval tv = {(time_t)(usec / 2 / 1000000), (suseconds_t)(usec / 2 % 1000000)};
		event_add(s->watchdog, &tv);
	}
	sd_notifyf(0, "READY=1\nSTATUS=serving the API on %s", listen);
}

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
 * Credentials are sealed at rest (store/seal.h): the key is loaded (or made,
 * on the first start), and rows still holding plain credentials are sealed
 * before the supervisor reads any.
 */
static int
seal_start(const struct serve_config *c, struct store *st, uint8_t signin_key[32])
{
	struct serve_secret sec;
	char err[512];
	if (secret_load(c, true, &sec, err, sizeof(err)) != 0) {
		log_error("serve", "no key to seal the credentials: %s", err);
		return 1;
	}
	seal_set_keys(sec.key, sec.have_pending ? sec.pending : NULL);
	/* Credentials written from now on carry the mark of checked keys (wa/creds.h). */
	wa_creds_set_secret(sec.key, sizeof(sec.key));
	/* The dashboard's sign-ins are signed with a key derived from it: they outlive a restart. */
	static const char label[] = "wagate: dashboard sign-in tokens";
	wa_crypto_hmac_sha256(signin_key, sec.key, sizeof(sec.key), (const uint8_t *)label,
	                      sizeof(label) - 1);
	if (sec.made)
		log_warn("serve", "made the key that seals the stored credentials: %s (mode 0600). Back it "
		                  "up apart from the database: without it the sessions must be paired again",
		         sec.path);
	else
		log_info("serve", "credentials sealed under key %s (%s)", seal_current_id(),
		         sec.from_env ? "WAGATE_SECRET_KEY" : sec.path[0] ? sec.path : "in memory");
	if (c->sup.node_id[0] && !sec.from_env)
		log_warn("serve", "several nodes share this database: each needs the same sealing key. "
		                  "Set WAGATE_SECRET_KEY on every node (this one uses %s)",
		         sec.path[0] ? sec.path : "a key of its own");
	if (sec.have_pending)
		log_warn("serve", "%s.new is left from an interrupted rekey: credentials open with either "
		                  "key; run wagate rekey again to finish", sec.path);
	secret_wipe(&sec);
	size_t n = 0;
	if (store_seal_plain(st, &n) != 0) {
		log_error("serve", "cannot seal the stored credentials: %s", store_errmsg(st));
		return 1;
	}
	if (n > 0)
		log_info("serve", "sealed the credentials of %zu session(s) stored as plain text", n);
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
	/*
	 * The key goes to a file only its owner reads, never to stdout (the
	 * journal, under systemd, keeps stdout): its path is said instead.
	 */
	char path[4200], err[600];
	secret_path(c, path, sizeof(path) - 16);
	if (path[0] == '\0')
		snprintf(path, sizeof(path), "var/wagate.key");
	size_t n = strlen(path);
	if (n > 4 && strcmp(path + n - 4, ".key") == 0)
		path[n - 4] = '\0';
	strncat(path, ".api-key", sizeof(path) - strlen(path) - 1);
	strncat(key, "\n", sizeof(key) - strlen(key) - 1);
	r = secret_write_text(path, key, err, sizeof(err));
	wg_wipe(key, sizeof(key));
	if (r != 0) {
		log_error("serve", "cannot keep the generated API key: %s; set WAGATE_API_KEY", err);
		return r;
	}
	printf("api-key-file %s\n", path);
	fflush(stdout);
	log_warn("serve", "generated an API key, stored as a hash; the key itself is in %s (mode 0600): "
	                  "read it, keep it, delete the file. WAGATE_API_KEY chooses your own", path);
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
	sd_notify(0, "STOPPING=1\nSTATUS=closing every session");
	log_info("serve", "signal %d: closing every session", (int)sig);
	struct timeval tv = {SHUTDOWN_HARD_MS / 1000, 0};
	evtimer_add(s->hard, &tv);
	api_free(s->api); /* first: /metrics reads the webhooks' counters */
	s->api = NULL;
	hook_free(s->hook); /* what it has not delivered stays in the database */
	s->hook = NULL;
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

/*
 * The kernel grows a process's descriptor table by doubling it, and in a
 * process with more than one thread each growth waits out an RCU grace period
 * (expand_fdtable), several milliseconds on a virtual machine: eight or nine
 * times while thousands of sessions connect, each one a loop stall inside
 * socket(). Grown once here, before any thread exists, to the limit (at most
 * 65,536 slots: 512 KiB of kernel memory), it never grows under load.
 */
static void
presize_fd_table(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rlim_t n = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536 ? 65536 : rl.rlim_cur;
	if (n < 64)
		return;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	int high = dup2(fd, (int)n - 1);
	if (high >= 0)
		close(high);
	close(fd);
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
	presize_fd_table();
	if (open_store(c, &s.st) != 0)
		return 1;
	static uint8_t signin_key[32];
	if (seal_start(c, s.st, signin_key) != 0) {
		store_close(s.st);
		return 1;
	}
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
	                      .metrics_listen = c->metrics_listen[0] ? c->metrics_listen : NULL,
	                      .signin_key = signin_key,
	                      .request_ms = (uint32_t)c->http_request_ms,
	                      .dns = dns};
	memcpy(ao.api_key_sha256, hash, 32);
	/* The key itself, when set: several nodes derive the key that signs forwarded requests from it. */
	ao.api_key = c->api_key[0] ? c->api_key : NULL;
	/* One way out, whatever failed: everything below is NULL-safe. */
	int rc = 0;
	if (api_start(s.base, &ao, s.st, s.sup, &s.api, err, sizeof(err)) != 0) {
		log_error("serve", "cannot start the HTTP API: %s", err);
		rc = 1;
		goto out;
	}
	log_info("serve", "listening on http://%s", c->listen);
	if (c->webhook_urls[0] != '\0') {
		struct hook_opts ho = {.urls = c->webhook_urls,
		                       .secret = c->webhook_secret,
		                       .dns = dns,
		                       .backoff_base_ms = c->webhook_backoff_ms[0],
		                       .backoff_cap_ms = c->webhook_backoff_ms[1]};
		if (hook_start(s.base, s.st, s.sup, &ho, &s.hook, err, sizeof(err)) != 0) {
			log_error("serve", "cannot start the webhooks: %s", err);
			rc = 2;
			goto out;
		}
		api_set_hook(s.api, s.hook);
	}
	if (sup_start(s.sup) != 0) {
		rc = 1;
		goto out;
	}
	s.hard = evtimer_new(s.base, on_hard, &s);
	struct event *sint = evsignal_new(s.base, SIGINT, on_signal, &s);
	struct event *sterm = evsignal_new(s.base, SIGTERM, on_signal, &s);
	evsignal_add(sint, NULL);
	evsignal_add(sterm, NULL);
	pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL); /* one sent meanwhile arrives now */
	notify_ready(&s, c->listen);
	event_base_dispatch(s.base);
	if (s.watchdog)
		event_free(s.watchdog);
	event_free(sint);
	event_free(sterm);
	event_free(s.hard);
out:
	api_free(s.api); /* first: /metrics reads the webhooks' counters */
	hook_free(s.hook);
	looplag_free(lag);
	sup_free(s.sup);
	if (dns)
		evdns_base_free(dns, 0);
	log_release(&s);
	event_base_free(s.base);
	store_close(s.st);
	return rc;
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

/* Re-seals one page of rows under key; *done counts them. */
static int
reseal_page(struct store *st, const uint8_t key[32], struct store_session *rows, size_t n,
            size_t *done, char *err, size_t errlen)
{
	struct store_session *full = wg_calloc(n, sizeof(*full));
	struct store_write *w = wg_calloc(n, sizeof(*w));
	size_t k = 0;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (rows[i].auth_state == NULL)
			continue;
		struct store_session *f = &full[k];
		int r = store_get(st, rows[i].id, f);
		if (r == WG_ENOTFOUND)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "cannot read a session: %s", store_errmsg(st));
			rc = 1;
			break;
		}
		if (f->auth_state == NULL) {
			store_session_free(f);
			continue;
		}
		if (seal_is_sealed(f->auth_state)) {
			/* Neither key opens it: nothing is switched until every row opens. */
			char kid[SEAL_KID_LEN + 1];
			seal_id_of(f->auth_state, kid);
			snprintf(err, errlen, "session %s is sealed under key %s, which is neither the "
			                      "current key nor the new one: nothing was changed",
			         f->id, kid[0] ? kid : "?");
			store_session_free(f);
			rc = 1;
			break;
		}
		char *sealed = seal_text_with(key, f->id, f->auth_state);
		wg_wipe(f->auth_state, strlen(f->auth_state));
		free(f->auth_state);
		f->auth_state = sealed;
		w[k] = (struct store_write){.id = f->id, .fields = STORE_F_AUTH, .vals = f};
		k++;
	}
	size_t gone = 0;
	if (rc == 0 && k > 0 && store_write_batch(st, w, k, (int64_t)wg_wall_ms(), &gone) < 0) {
		snprintf(err, errlen, "cannot write: %s", store_errmsg(st));
		rc = 1;
	}
	if (rc == 0)
		*done += k - gone;
	for (size_t i = 0; i < k; i++)
		store_session_free(&full[i]);
	free(full);
	free(w);
	return rc;
}

int
serve_rekey(const struct serve_config *c)
{
	struct store *st;
	if (open_store(c, &st) != 0)
		return 1;
	struct serve_secret sec;
	char err[600];
	if (secret_load(c, false, &sec, err, sizeof(err)) != 0) {
		fprintf(stderr, "wagate rekey: no current key (%s); wagate serve makes one on its first start\n", err);
		store_close(st);
		return 1;
	}
	uint8_t next[32];
	const char *given = getenv("WAGATE_NEW_SECRET_KEY");
	size_t bad;
	char pend[4200];
	snprintf(pend, sizeof(pend), "%s.new", sec.path);
	int rc = 0;
	if (given != NULL && given[0] != '\0') {
		if (strlen(given) != 64 || wg_hex_decode(next, given, 64, &bad) != 32) {
			fprintf(stderr, "wagate rekey: WAGATE_NEW_SECRET_KEY must be 64 hex digits\n");
			rc = 1;
		}
	} else if (sec.from_env) {
		fprintf(stderr, "wagate rekey: with WAGATE_SECRET_KEY set, give the new key in "
		                "WAGATE_NEW_SECRET_KEY (64 hex digits, e.g. from openssl rand -hex 32)\n");
		rc = 1;
	} else if (sec.have_pending) {
		memcpy(next, sec.pending, 32); /* an interrupted rekey: finish it with its key */
	} else if (RAND_bytes(next, 32) != 1) {
		fprintf(stderr, "wagate rekey: no randomness for a key\n");
		rc = 1;
	}
	/* The new key is on disk before any row needs it. */
	if (rc == 0 && !sec.from_env && !sec.have_pending &&
	    secret_write(pend, next, err, sizeof(err)) != 0) {
		fprintf(stderr, "wagate rekey: %s\n", err);
		rc = 1;
	}
	size_t done = 0;
	if (rc == 0) {
		seal_set_keys(sec.key, next); /* both open: rows may be under either */
		char after[STORE_TEXT_MAX + 1] = "";
		for (;;) {
			struct store_filter f = {.without_auth = true, .after_id = after, .limit = 200};
			struct store_session *rows;
			size_t n;
			if (store_list(st, &f, &rows, &n) < 0) {
				snprintf(err, sizeof(err), "cannot list the sessions: %s", store_errmsg(st));
				rc = 1;
				break;
			}
			if (n > 0)
				snprintf(after, sizeof(after), "%s", rows[n - 1].id);
			if (n > 0)
				rc = reseal_page(st, next, rows, n, &done, err, sizeof(err));
			store_list_free(rows, n);
			if (n == 0 || rc != 0)
				break;
		}
		if (rc != 0)
			fprintf(stderr, "wagate rekey: %s\n", err);
	}
	char old_id[SEAL_KID_LEN + 1], new_id[SEAL_KID_LEN + 1];
	seal_key_id(sec.key, old_id);
	seal_key_id(next, new_id);
	if (rc == 0 && !sec.from_env) {
		if (rename(pend, sec.path) != 0) {
			fprintf(stderr, "wagate rekey: cannot put the new key in place (%s -> %s): %s\n",
			        pend, sec.path, strerror(errno));
			rc = 1;
		} else {
			char dir[4096];
			snprintf(dir, sizeof(dir), "%s", sec.path);
			int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0) {
				(void)fsync(dfd);
				close(dfd);
			}
		}
	}
	if (rc == 0) {
		printf("re-sealed the credentials of %zu session(s) under key %s (was %s)\n", done, new_id,
		       old_id);
		if (sec.from_env)
			printf("start the servers with WAGATE_SECRET_KEY set to the new key "
			       "(WAGATE_NEW_SECRET_KEY) from now on\n");
		else
			printf("the key file %s holds the new key: back it up\n", sec.path);
	}
	wg_wipe(next, sizeof(next));
	secret_wipe(&sec);
	seal_set_keys(NULL, NULL);
	store_close(st);
	return rc;
}
