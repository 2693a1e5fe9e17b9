/*
 * wagate serve's configuration: environment variables WAGATE_*, each with a
 * matching flag (WAGATE_START_STAGGER ↔ --start-stagger). Flags win. Every
 * value is validated at start; an invalid one stops the start with a clear
 * message (exit status 2). The README's configuration table lists them.
 */
#ifndef WG_SERVE_CONFIG_H
#define WG_SERVE_CONFIG_H

#include <stdio.h>

#include "client/session.h"
#include "sup/sup.h"

struct serve_config {
	char database[1024]; /* WAGATE_DATABASE */
	char listen[256];    /* WAGATE_LISTEN */
	char metrics_listen[256]; /* WAGATE_METRICS_LISTEN; "" = /metrics on the API, behind the key */
	char api_key[256];   /* WAGATE_API_KEY; "" = generated on first start and stored */
	char web_root[4096]; /* WAGATE_WEB_ROOT; "" = "web" beside the executable */
	int cookie_secure;   /* WAGATE_COOKIE_SECURE */
	uint64_t loop_lag_ms; /* WAGATE_LOOP_LAG_INTERVAL; 0 = off */
	unsigned http_max_conns;  /* WAGATE_HTTP_MAX_CONNECTIONS; 0 = from the descriptor limit */
	uint64_t http_request_ms; /* WAGATE_HTTP_REQUEST_TIMEOUT */
	uint8_t secret_key[32];      /* WAGATE_SECRET_KEY: seals credentials at rest */
	int have_secret_key;
	char secret_key_file[4096];  /* WAGATE_SECRET_KEY_FILE; "" = beside the SQLite file, or var/wagate.key */
	char webhook_urls[2048];  /* WAGATE_WEBHOOK_URL: comma-separated; "" = none */
	char webhook_secret[256]; /* WAGATE_WEBHOOK_SECRET */
	uint32_t webhook_backoff_ms[2]; /* WAGATE_WEBHOOK_BACKOFF: base, cap */
	int node_off;         /* WAGATE_NODE_ID=off: one node on PostgreSQL, no leases */
	struct sup_config sup;
	struct wa_session_opts wa;
	char wa_url[1024];
};

/* Defaults, then the environment, then argv (argv[0] is the command name). */
int serve_config_load(struct serve_config *c, int argc, char **argv, char *err, size_t errlen);

/* The settings table under a command's usage line, for --help. */
void serve_config_usage(FILE *f, const char *usage_line);

#endif
