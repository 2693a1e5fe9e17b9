/*
 * Webhooks (docs/webhooks.md): session status changes, a session reaching
 * its recovery limit and /health changes, POSTed as JSON to each of
 * WAGATE_WEBHOOK_URL, signed the way payment providers sign:
 *
 *   X-Wagate-Timestamp: <Unix seconds>
 *   X-Wagate-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret>
 *
 * One queue per URL, delivered one at a time in order (so in order per
 * session), retried with exponential backoff until the receiver answers 2xx.
 * The queue is kept in the database (wagate_webhook_outbox, written through
 * the supervisor's reader thread): a restart loses nothing. It is bounded
 * (the oldest undelivered event goes, counted and logged), and a session's
 * status changes coalesce while they wait: a flapping session sends its
 * latest status, not every change. Nothing here blocks the event loop.
 */
#ifndef WG_HOOK_HOOK_H
#define WG_HOOK_HOOK_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct store;
struct sup;
struct hook;

struct hook_opts {
	const char *urls;         /* one or more http(s) URLs, comma-separated */
	const char *secret;       /* the HMAC key, at least 16 characters */
	struct evdns_base *dns;   /* resolves the receivers' names */
	size_t max_queued;        /* undelivered events per URL, 0: 10,000 */
	uint32_t timeout_ms;      /* one delivery, 0: 10 s */
	uint32_t backoff_base_ms; /* the first retry, 0: 1 s; doubling ... */
	uint32_t backoff_cap_ms;  /* ... up to this, 0: 5 min */
};

/*
 * Checks the URLs and the secret, reads the undelivered events of an earlier
 * run from st (on the calling thread: at start, before serving), and starts
 * observing sup. WG_EINVAL with err saying why.
 */
int hook_start(struct event_base *base, struct store *st, struct sup *sup,
               const struct hook_opts *o, struct hook **out, char *err, size_t errlen);
/* Stops delivering; what is undelivered stays in the database for the next start. NULL-safe. */
void hook_free(struct hook *h);

struct hook_stats {
	uint64_t delivered;  /* events the receivers accepted */
	uint64_t failures;   /* attempts that failed (each is retried) */
	uint64_t dropped;    /* events dropped at the queue's bound */
	uint64_t coalesced;  /* status changes replaced by a later one before delivery */
	size_t queued;       /* undelivered now, every URL */
};
void hook_stats(const struct hook *h, struct hook_stats *out);

/* The signature header's value for body at Unix time ts: "sha256=<64 hex>". */
void hook_sign(const char *secret, int64_t ts, const char *body, size_t len, char out[72]);

#endif
