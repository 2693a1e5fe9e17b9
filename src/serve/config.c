#include "serve/config.h"
#include "serve/paths.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/duration.h"
#include "core/enc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

enum kind { K_HOOKURL, K_HOOKSECRET, K_LOGLEVEL, K_STR, K_ADDR, K_DUR, K_DURLIST, K_BACKOFF, K_UINT, K_HEX32, K_URL, K_DB, K_PATH, K_BOOL,
	    K_NODE, K_HTTP, K_COUNT };

struct setting {
	const char *env;
	const char *flag;
	enum kind kind;
	const char *dflt; /* for --help */
	const char *help;
};

static const struct setting settings[] = {
	{"WAGATE_DATABASE", "--database", K_DB, "sqlite:STATE/wagate.db", "sqlite:PATH, or postgres://... (libpq's URL, any of its options)"},
	{"WAGATE_LISTEN", "--listen", K_ADDR, "127.0.0.1:8080", "HTTP API address"},
	{"WAGATE_METRICS_LISTEN", "--metrics-listen", K_ADDR, "none", "also serve GET /metrics here, without a key (for a Prometheus on a private network); otherwise /metrics is on the API, behind the key"},
	{"WAGATE_API_KEY", "--api-key", K_STR, "generated", "API key (x-api-key); generated and printed once when unset"},
	{"WAGATE_WEBHOOK_URL", "--webhook-url", K_HOOKURL, "none", "http(s) URLs, comma-separated, that receive session status changes, recovery-limit and health events as signed JSON (docs/webhooks.md)"},
	{"WAGATE_WEBHOOK_SECRET", "--webhook-secret", K_HOOKSECRET, "none", "the key of the webhooks' HMAC-SHA256 signature (16 characters or more); required with WAGATE_WEBHOOK_URL"},
	{"WAGATE_WEBHOOK_BACKOFF", "--webhook-backoff", K_BACKOFF, "1s,5m", "base and cap of the backoff between attempts to deliver to a failing receiver"},
	{"WAGATE_LOG_LEVEL", "--log-level", K_LOGLEVEL, "info", "debug, info, warn or error; logs go to stderr and never hold keys or credentials"},
	{"WAGATE_SECRET_KEY", "--secret-key", K_HEX32, "the key file's", "the key (64 hex digits) that seals the stored credentials; never stored in the database"},
	{"WAGATE_SECRET_KEY_FILE", "--secret-key-file", K_PATH, "DB.key or var/wagate.key", "where the sealing key is kept when WAGATE_SECRET_KEY is unset (made, mode 0600, on the first start): beside a SQLite file, else var/wagate.key"},
	{"WAGATE_WEB_ROOT", "--web-root", K_PATH, "<exe dir>/web", "the dashboard's files (the build puts them beside wagate; installed: PREFIX/share/wagate/web)"},
	{"WAGATE_HTTP_MAX_CONNECTIONS", "--http-max-connections", K_UINT, "from the descriptor limit", "open HTTP connections at most (an eighth of the descriptors, 16 to 1024, by default); at the cap idle ones are closed first, then accepting waits"},
	{"WAGATE_HTTP_REQUEST_TIMEOUT", "--http-request-timeout", K_DUR, "10s", "a whole HTTP request (its head and body) must arrive within this; then 408"},
	{"WAGATE_COOKIE_SECURE", "--cookie-secure", K_BOOL, "false", "mark the dashboard's session cookie Secure (set when TLS is in front)"},
	{"WAGATE_START_STAGGER", "--start-stagger", K_DUR, "2s", "time between auto-connects at start"},
	{"WAGATE_START_RETRIES", "--start-retries", K_DURLIST, "5s,15s,45s", "delays of the retries of a first connection"},
	{"WAGATE_RECONNECT_BACKOFF", "--reconnect-backoff", K_BACKOFF, "1s,5m", "backoff base and cap while running"},
	{"WAGATE_STABLE_AFTER", "--stable-after", K_DUR, "60s", "a connection up this long counts as working; one that drops sooner is a failure (flapping)"},
	{"WAGATE_RECOVERY_INTERVAL", "--recovery-interval", K_DUR, "60s", "how often the recovery monitor runs"},
	{"WAGATE_STALE_AFTER", "--stale-after", K_DUR, "30m", "silence after which a session is probed"},
	{"WAGATE_RECOVERY_MAX", "--recovery-max", K_UINT, "3", "failed automatic recoveries per session per window"},
	{"WAGATE_RECOVERY_WINDOW", "--recovery-window", K_DUR, "1h", "the window of that limit"},
	{"WAGATE_START_BURST", "--start-burst", K_UINT, "4", "connects started per event-loop turn"},
	{"WAGATE_MAX_HANDSHAKES", "--max-handshakes", K_UINT, "16", "logins in flight at once"},
	{"WAGATE_MESSAGE_AT_INTERVAL", "--message-at-interval", K_DUR, "5s", "last_message_at written at most this often per session"},
	{"WAGATE_WATCH_INTERVAL", "--watch-interval", K_DUR, "1s", "how often the rows the web app changed (updated_at) are read; 0 or off: only at the recovery interval"},
	{"WAGATE_RETENTION", "--retention", K_DUR, "30d", "recovery attempts and status history older than this are deleted (hourly); 0 or off: kept forever"},
	{"WAGATE_LOOP_LAG_INTERVAL", "--loop-lag-interval", K_DUR, "100ms", "how often a timer samples the event loop's lateness (GET /health/loop; its turns are measured without one); 0 or off: neither"},
	{"WAGATE_NODE_ID", "--node-id", K_NODE, "the hostname", "this node's name among several on one PostgreSQL (leases); off: one node, no leases"},
	{"WAGATE_NODE_URL", "--node-url", K_HTTP, "http://LISTEN", "where the other nodes reach this node's API (actions on its sessions are forwarded there)"},
	{"WAGATE_LEASE_TTL", "--lease-ttl", K_DUR, "30s", "a lease's time: a node that stops renewing loses its sessions to the others after it"},
	{"WAGATE_MAX_SESSIONS", "--max-sessions", K_COUNT, "0", "most sessions this node holds (0: no limit)"},
	{"WAGATE_WA_URL", "--wa-url", K_URL, "wss://web.whatsapp.com/ws/chat", "WhatsApp's WebSocket URL"},
	{"WAGATE_WA_ROOT_PUBKEY", "--wa-root-pubkey", K_HEX32, "WhatsApp's", "certificate root key, 64 hex digits"},
	{"WAGATE_KEEPALIVE_INTERVAL", "--keepalive-interval", K_DUR, "20-30s", "ping interval (fixed when set)"},
	{"WAGATE_KEEPALIVE_TIMEOUT", "--keepalive-timeout", K_DUR, "10s", "ping answer deadline"},
};

void
serve_config_usage(FILE *f, const char *usage_line)
{
	fprintf(f, "%s\n\n%-28s %-22s %-22s %s\n", usage_line, "variable", "flag", "default",
		"meaning");
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		fprintf(f, "%-28s %-22s %-22s %s\n", settings[i].env, settings[i].flag,
			settings[i].dflt, settings[i].help);
	char state[1000];
	serve_state_dir(state, sizeof(state));
	fprintf(f, "\nSTATE is %s here: ./var from the build tree; installed, /var/lib/wagate or systemd's "
		   "$STATE_DIRECTORY.\n", state);
}

static int
bad(char *err, size_t errlen, const struct setting *s, const char *v, const char *why)
{
	/* The API key is never echoed. */
	if (strcmp(s->env, "WAGATE_API_KEY") == 0 || strcmp(s->env, "WAGATE_SECRET_KEY") == 0 ||
	    strcmp(s->env, "WAGATE_WEBHOOK_SECRET") == 0)
		v = "(hidden)";
	snprintf(err, errlen, "%s (%s) = \"%.200s\": %s", s->env, s->flag, v, why);
	return WG_EINVAL;
}

static int
dur(const char *v, uint64_t *out)
{
	return wg_duration_parse(v, out);
}

static int
apply(struct serve_config *c, const struct setting *s, const char *v, char *err, size_t errlen)
{
	uint64_t ms, ms2;
	const char *name = s->env;
	switch (s->kind) {
	case K_DB:
		if (strncmp(v, "sqlite:", 7) != 0 && strncmp(v, "postgres://", 11) != 0 &&
		    strncmp(v, "postgresql://", 13) != 0)
			return bad(err, errlen, s, v, "expected sqlite:PATH or postgres://...");
		if (strlen(v) >= sizeof(c->database))
			return bad(err, errlen, s, v, "too long");
		snprintf(c->database, sizeof(c->database), "%s", v);
		return 0;
	case K_ADDR: {
		char host[256];
		uint16_t port;
		if (wg_addr_split(v, host, sizeof(host), &port) != 0 || strlen(v) >= sizeof(c->listen))
			return bad(err, errlen, s, v, "expected HOST:PORT");
		if (strcmp(name, "WAGATE_METRICS_LISTEN") == 0)
			snprintf(c->metrics_listen, sizeof(c->metrics_listen), "%s", v);
		else
			snprintf(c->listen, sizeof(c->listen), "%s", v);
		return 0;
	}
	case K_HOOKURL:
		if (strlen(v) >= sizeof(c->webhook_urls))
			return bad(err, errlen, s, v, "too long");
		if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
			return bad(err, errlen, s, v, "expected http:// or https:// URLs, comma-separated");
		snprintf(c->webhook_urls, sizeof(c->webhook_urls), "%s", v);
		return 0;
	case K_HOOKSECRET:
		if (strlen(v) < 16 || strlen(v) >= sizeof(c->webhook_secret))
			return bad(err, errlen, s, v, "must be 16 to 255 characters");
		snprintf(c->webhook_secret, sizeof(c->webhook_secret), "%s", v);
		return 0;
	case K_LOGLEVEL:
		if (strcmp(v, "debug") == 0)
			wg_log_set_level(WG_LOG_DEBUG);
		else if (strcmp(v, "info") == 0)
			wg_log_set_level(WG_LOG_INFO);
		else if (strcmp(v, "warn") == 0)
			wg_log_set_level(WG_LOG_WARN);
		else if (strcmp(v, "error") == 0)
			wg_log_set_level(WG_LOG_ERROR);
		else
			return bad(err, errlen, s, v, "expected debug, info, warn or error");
		return 0;
	case K_STR:
		if (strlen(v) < 16 || strlen(v) >= sizeof(c->api_key))
			return bad(err, errlen, s, v, "must be 16 to 255 characters");
		snprintf(c->api_key, sizeof(c->api_key), "%s", v);
		return 0;
	case K_DUR:
		if (strcmp(name, "WAGATE_WATCH_INTERVAL") == 0 && (strcmp(v, "0") == 0 || strcmp(v, "off") == 0)) {
			c->sup.watch_interval_ms = 0;
			return 0;
		}
		if (strcmp(name, "WAGATE_RETENTION") == 0 && (strcmp(v, "0") == 0 || strcmp(v, "off") == 0)) {
			c->sup.retention_ms = 0;
			return 0;
		}
		if (strcmp(name, "WAGATE_LOOP_LAG_INTERVAL") == 0 && (strcmp(v, "0") == 0 || strcmp(v, "off") == 0)) {
			c->loop_lag_ms = 0;
			return 0;
		}
		if (dur(v, &ms) != 0)
			return bad(err, errlen, s, v, "expected a duration like 500ms, 25s, 30m or 1h");
		if (strcmp(name, "WAGATE_START_STAGGER") == 0)
			c->sup.start_stagger_ms = ms;
		else if (strcmp(name, "WAGATE_HTTP_REQUEST_TIMEOUT") == 0) {
			if (ms < 100 || ms > 600000)
				return bad(err, errlen, s, v, "must be from 100ms to 10m");
			c->http_request_ms = ms;
		}
		else if (strcmp(name, "WAGATE_LOOP_LAG_INTERVAL") == 0) {
			if (ms != 0 && (ms < 1 || ms > 60000))
				return bad(err, errlen, s, v, "must be 0 (off) or from 1ms to 1m");
			c->loop_lag_ms = ms;
		}
		else if (strcmp(name, "WAGATE_LEASE_TTL") == 0) {
			if (ms < 3000 || ms > 3600000)
				return bad(err, errlen, s, v, "must be from 3s to 1h");
			c->sup.lease_ttl_ms = ms;
		}
		else if (strcmp(name, "WAGATE_WATCH_INTERVAL") == 0) {
			if (ms < 100 || ms > 3600000)
				return bad(err, errlen, s, v, "must be 0 (off) or from 100ms to 1h");
			c->sup.watch_interval_ms = ms;
		}
		else if (strcmp(name, "WAGATE_RETENTION") == 0) {
			if (ms < 3600000)
				return bad(err, errlen, s, v, "must be 0 (off) or at least 1h (the recovery limit reads an hour back)");
			c->sup.retention_ms = ms;
		}
		else if (strcmp(name, "WAGATE_MESSAGE_AT_INTERVAL") == 0) {
			if (ms > 3600000)
				return bad(err, errlen, s, v, "must be at most 1h");
			c->sup.message_at_interval_ms = ms;
		}
		else if (strcmp(name, "WAGATE_RECOVERY_INTERVAL") == 0) {
			if (ms < 100)
				return bad(err, errlen, s, v, "must be at least 100ms");
			c->sup.recovery_interval_ms = ms;
		} else if (strcmp(name, "WAGATE_STABLE_AFTER") == 0) {
			if (ms > 3600000)
				return bad(err, errlen, s, v, "must be at most 1h");
			c->sup.stable_after_ms = ms;
		} else if (strcmp(name, "WAGATE_STALE_AFTER") == 0) {
			if (ms < 1000)
				return bad(err, errlen, s, v, "must be at least 1s");
			c->sup.stale_after_ms = ms;
		} else if (strcmp(name, "WAGATE_RECOVERY_WINDOW") == 0) {
			if (ms < 1000)
				return bad(err, errlen, s, v, "must be at least 1s");
			c->sup.recovery_window_ms = ms;
		} else if (strcmp(name, "WAGATE_KEEPALIVE_INTERVAL") == 0) {
			if (ms < 100 || ms > 3600000)
				return bad(err, errlen, s, v, "must be from 100ms to 1h");
			c->wa.keepalive_min_ms = c->wa.keepalive_max_ms = (uint32_t)ms;
		} else if (strcmp(name, "WAGATE_KEEPALIVE_TIMEOUT") == 0) {
			if (ms < 100 || ms > 600000)
				return bad(err, errlen, s, v, "must be from 100ms to 10m");
			c->wa.keepalive_timeout_ms = (uint32_t)ms;
		}
		return 0;
	case K_DURLIST: {
		size_t n = 0;
		const char *p = v;
		char item[32];
		while (*p) {
			const char *comma = strchr(p, ',');
			size_t len = comma ? (size_t)(comma - p) : strlen(p);
			if (len == 0 || len >= sizeof(item) || n >= SUP_MAX_START_RETRIES)
				return bad(err, errlen, s, v, "expected up to 8 durations separated by commas");
			memcpy(item, p, len);
			item[len] = '\0';
			if (dur(item, &ms) != 0)
				return bad(err, errlen, s, v, "expected durations like 5s,15s,45s");
			c->sup.start_retries_ms[n++] = ms;
			p += len + (comma ? 1 : 0);
			if (comma && *p == '\0')
				return bad(err, errlen, s, v, "ends with a comma");
		}
		c->sup.n_start_retries = n;
		return 0;
	}
	case K_BACKOFF: {
		const char *comma = strchr(v, ',');
		char a[32];
		if (comma == NULL || (size_t)(comma - v) >= sizeof(a))
			return bad(err, errlen, s, v, "expected BASE,CAP like 1s,5m");
		memcpy(a, v, (size_t)(comma - v));
		a[comma - v] = '\0';
		bool parsed = dur(a, &ms) == 0 && dur(comma + 1, &ms2) == 0;
		if (strcmp(name, "WAGATE_WEBHOOK_BACKOFF") == 0) {
			if (!parsed || ms < 10 || ms2 < ms || ms2 > 86400000)
				return bad(err, errlen, s, v, "expected BASE,CAP with 10ms <= BASE <= CAP <= 24h");
			c->webhook_backoff_ms[0] = (uint32_t)ms;
			c->webhook_backoff_ms[1] = (uint32_t)ms2;
			return 0;
		}
		if (!parsed || ms == 0 || ms2 < ms)
			return bad(err, errlen, s, v, "expected BASE,CAP with 0 < BASE <= CAP, like 1s,5m");
		c->sup.backoff_base_ms = ms;
		c->sup.backoff_cap_ms = ms2;
		return 0;
	}
	case K_UINT: {
		char *end;
		if (v[0] < '0' || v[0] > '9')
			return bad(err, errlen, s, v, "expected a whole number");
		unsigned long n = strtoul(v, &end, 10);
		unsigned long max = strcmp(name, "WAGATE_MAX_HANDSHAKES") == 0 ||
		                            strcmp(name, "WAGATE_HTTP_MAX_CONNECTIONS") == 0
		                        ? 100000
		                        : 1000;
		if (*end != '\0' || n == 0 || n > max) {
			char why[64];
			snprintf(why, sizeof(why), "expected a whole number from 1 to %lu", max);
			return bad(err, errlen, s, v, why);
		}
		if (strcmp(name, "WAGATE_START_BURST") == 0)
			c->sup.start_burst = (unsigned)n;
		else if (strcmp(name, "WAGATE_MAX_HANDSHAKES") == 0)
			c->sup.max_handshakes = (unsigned)n;
		else if (strcmp(name, "WAGATE_HTTP_MAX_CONNECTIONS") == 0)
			c->http_max_conns = (unsigned)n;
		else
			c->sup.recovery_max = (unsigned)n;
		return 0;
	}
	case K_HEX32: {
		uint8_t key[64];
		size_t badat;
		if (strlen(v) != 64 || wg_hex_decode(key, v, 64, &badat) != 32)
			return bad(err, errlen, s, v, "expected exactly 64 hex digits");
		if (strcmp(name, "WAGATE_SECRET_KEY") == 0) {
			memcpy(c->secret_key, key, 32);
			c->have_secret_key = 1;
		} else {
			memcpy(c->wa.root_pub, key, 32);
		}
		wg_wipe(key, sizeof(key));
		return 0;
	}
	case K_PATH: {
		char *dst = strcmp(name, "WAGATE_SECRET_KEY_FILE") == 0 ? c->secret_key_file : c->web_root;
		if (strlen(v) >= sizeof(c->web_root))
			return bad(err, errlen, s, v, "too long");
		snprintf(dst, sizeof(c->web_root), "%s", v);
		return 0;
	}
	case K_BOOL:
		if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			c->cookie_secure = 1;
		else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			c->cookie_secure = 0;
		else
			return bad(err, errlen, s, v, "expected true or false");
		return 0;
	case K_NODE:
		if (strcmp(v, "off") == 0) {
			c->node_off = 1;
			c->sup.node_id[0] = '\0';
			return 0;
		}
		if (strlen(v) > STORE_NODE_MAX)
			return bad(err, errlen, s, v, "at most 63 characters");
		for (const char *p = v; *p; p++)
			if (*p <= ' ' || *p > '~')
				return bad(err, errlen, s, v, "printable characters without spaces");
		c->node_off = 0;
		snprintf(c->sup.node_id, sizeof(c->sup.node_id), "%s", v);
		return 0;
	case K_HTTP:
		if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
		    strlen(v) > STORE_URL_MAX)
			return bad(err, errlen, s, v, "expected an http:// URL of at most 159 bytes");
		snprintf(c->sup.node_url, sizeof(c->sup.node_url), "%s", v);
		return 0;
	case K_COUNT: {
		char *end;
		unsigned long n = strtoul(v, &end, 10);
		if (v[0] < '0' || v[0] > '9' || *end != '\0' || n > 1000000)
			return bad(err, errlen, s, v, "expected a whole number from 0 (no limit) to 1000000");
		c->sup.max_sessions = (unsigned)n;
		return 0;
	}
	case K_URL:
		if ((strncmp(v, "ws://", 5) != 0 && strncmp(v, "wss://", 6) != 0) ||
		    strlen(v) >= sizeof(c->wa_url))
			return bad(err, errlen, s, v, "expected a ws:// or wss:// URL");
		snprintf(c->wa_url, sizeof(c->wa_url), "%s", v);
		c->wa.url = c->wa_url;
		return 0;
	}
	return WG_EINVAL;
}

/*
 * Several nodes need PostgreSQL: there, leases are on unless WAGATE_NODE_ID
 * is off, under the hostname by default; the others reach this node's API at
 * its listen address (the hostname when it listens on every address).
 */
static int
cluster_defaults(struct serve_config *c, char *err, size_t errlen)
{
	bool pg = strncmp(c->database, "postgres", 8) == 0;
	if (!pg) {
		if (c->sup.node_id[0] != '\0') {
			snprintf(err, errlen, "WAGATE_NODE_ID: several nodes need a postgres:// database "
			                      "(SQLite serves one node)");
			return WG_EINVAL;
		}
		return 0;
	}
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	if (c->sup.node_id[0] == '\0' && !c->node_off) {
		snprintf(c->sup.node_id, sizeof(c->sup.node_id), "%.63s", host);
		for (char *p = c->sup.node_id; *p; p++)
			if (*p <= ' ' || *p > '~')
				*p = '-';
	}
	if (c->sup.node_url[0] == '\0') {
		char lhost[256];
		uint16_t port;
		if (wg_addr_split(c->listen, lhost, sizeof(lhost), &port) == 0) {
			const char *h = strcmp(lhost, "0.0.0.0") == 0 || strcmp(lhost, "::") == 0 ? host : lhost;
			bool v6 = strchr(h, ':') != NULL;
			snprintf(c->sup.node_url, sizeof(c->sup.node_url), "http://%s%.100s%s:%u",
			         v6 ? "[" : "", h, v6 ? "]" : "", (unsigned)port);
		}
	}
	return 0;
}

int
serve_config_load(struct serve_config *c, int argc, char **argv, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	/* From the tree: ./var; installed: /var/lib/wagate or $STATE_DIRECTORY (serve/paths.h). */
	char state[1000], share[4000];
	serve_state_dir(state, sizeof(state));
	snprintf(c->database, sizeof(c->database), "sqlite:%s/wagate.db", state);
	if (serve_installed(share, sizeof(share)))
		snprintf(c->web_root, sizeof(c->web_root), "%s/web", share);
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8080");
	c->loop_lag_ms = 100;
	c->http_request_ms = 10000;
	sup_config_defaults(&c->sup);
	wa_session_defaults(&c->wa);
	snprintf(c->wa_url, sizeof(c->wa_url), "%s", c->wa.url);
	c->wa.url = c->wa_url;
	const size_t n = sizeof(settings) / sizeof(settings[0]);
	for (size_t i = 0; i < n; i++) {
		const char *v = getenv(settings[i].env);
		if (v != NULL && v[0] != '\0') {
			int r = apply(c, &settings[i], v, err, errlen);
			if (r)
				return r;
		}
	}
	for (int a = 1; a < argc; a++) {
		const struct setting *s = NULL;
		for (size_t i = 0; i < n; i++)
			if (strcmp(argv[a], settings[i].flag) == 0)
				s = &settings[i];
		if (s == NULL) {
			snprintf(err, errlen, "unknown option \"%.100s\" (see wagate serve --help)", argv[a]);
			return WG_EINVAL;
		}
		if (a + 1 >= argc) {
			snprintf(err, errlen, "%s needs a value", s->flag);
			return WG_EINVAL;
		}
		int r = apply(c, s, argv[++a], err, errlen);
		if (r)
			return r;
	}
	if (c->webhook_urls[0] != '\0' && c->webhook_secret[0] == '\0') {
		snprintf(err, errlen, "WAGATE_WEBHOOK_URL needs WAGATE_WEBHOOK_SECRET (16 characters or "
		                      "more): receivers check the signature with it");
		return WG_EINVAL;
	}
	return cluster_defaults(c, err, errlen);
}
