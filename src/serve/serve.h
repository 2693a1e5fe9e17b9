/* wagate serve: the store, the supervisor and the HTTP API on one event loop. */
#ifndef WG_SERVE_H
#define WG_SERVE_H

#include "serve/config.h"

/* Runs until SIGTERM or SIGINT; returns the process exit status. */
int serve_run(const struct serve_config *c);

/* wagate migrate: applies the migrations and exits. */
/* Applies the migrations (dry_run: prints the SQL they would run, and runs nothing). */
int serve_migrate(const struct serve_config *c, int dry_run);

/*
 * wagate rekey: re-seals every stored credential under a new key
 * (WAGATE_NEW_SECRET_KEY, or a new random one in the key file). Run with
 * the servers stopped. Returns the process exit status.
 */
int serve_rekey(const struct serve_config *c);

#endif
