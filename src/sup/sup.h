/*
 * The supervisor: keeps every saved WhatsApp session connected, within safe
 * limits, and the database truthful. Its rules are in docs/supervisor.md:
 * reconcile and staggered auto-connect at start, startup retries, one table
 * of close reasons while running, a truthful shutdown, and a recovery
 * monitor with a per-session rate limit.
 *
 * Time: every deadline is a monotonic instant from wg_now_ms(). sup_run()
 * does whatever is due and returns the next due instant; the server arms one
 * timer for it (sup_attach()), and the unit tests move a virtual clock and
 * call sup_run() themselves. Nothing here blocks or sleeps.
 */
#ifndef WG_SUP_H
#define WG_SUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "store/store.h"
#include "sup/client.h"

#define SUP_MAX_START_RETRIES 8
/*
 * last_error of a session another client took over (close 440). It is how a
 * restart knows not to take the session back: only a person does that.
 */
#define SUP_REPLACED_ERR "replaced (440): another client took over this session"
/* What every session kept from reconnecting by the breaker says in last_error. */
#define SUP_BREAKER_ERR                                                                            \
	"automatic reconnects are stopped: WhatsApp said this client is outdated (405); update "   \
	"wagate and restart it"
/* last_error of a paired session that is not a primary, after a start: it waits for a person. */
#define SUP_NOT_PRIMARY_ERR                                                                        \
	"not connected at start: only a session named \"primary\" connects by itself; "           \
	"reconnect this one by hand"

struct sup_config {
	uint64_t start_stagger_ms;                   /* WAGATE_START_STAGGER, 2s */
	uint64_t start_retries_ms[SUP_MAX_START_RETRIES]; /* WAGATE_START_RETRIES, 5s,15s,45s */
	size_t n_start_retries;
	uint64_t backoff_base_ms, backoff_cap_ms;    /* WAGATE_RECONNECT_BACKOFF, 1s,5m */
	uint64_t stable_after_ms;                    /* WAGATE_STABLE_AFTER, 60s: shorter connections are failures */
	uint64_t recovery_interval_ms;               /* WAGATE_RECOVERY_INTERVAL, 60s */
	uint64_t stale_after_ms;                     /* WAGATE_STALE_AFTER, 30m */
	unsigned recovery_max;                       /* WAGATE_RECOVERY_MAX, 3 */
	uint64_t recovery_window_ms;                 /* WAGATE_RECOVERY_WINDOW, 1h */
	uint64_t reconnect_wait_ms;                  /* manual reconnect answer bound, 20s */
	uint64_t shutdown_grace_ms;                  /* closes still open after this are dropped, 5s */
	unsigned start_burst;                        /* WAGATE_START_BURST: connects started per loop turn, 4 */
	unsigned max_handshakes;                     /* WAGATE_MAX_HANDSHAKES: logins in flight, 16 */
	uint64_t flush_delay_ms;                     /* changes gathered into one database write, 50ms */
	uint64_t message_at_interval_ms;             /* WAGATE_MESSAGE_AT_INTERVAL: last_message_at writes, 5s */
	uint64_t db_check_interval_ms;               /* database checked when nothing was written, 5s */
	unsigned monitor_slice;                      /* sessions the monitor looks at per loop turn, 200 */
	uint64_t retention_ms;                       /* WAGATE_RETENTION: attempts and history kept, 30d; 0 forever */
	uint64_t watch_interval_ms;                  /* WAGATE_WATCH_INTERVAL: rows changed by the app read this often, 1s; 0 off */
	/* Several nodes on one database (docs/cluster.md); node_id "" means one node, no leases. */
	char node_id[STORE_NODE_MAX + 1];            /* WAGATE_NODE_ID, the hostname (PostgreSQL only) */
	char node_url[STORE_URL_MAX + 1];            /* WAGATE_NODE_URL: where the other nodes reach this API */
	uint64_t lease_ttl_ms;                       /* WAGATE_LEASE_TTL, 30s */
	unsigned max_sessions;                       /* WAGATE_MAX_SESSIONS: most sessions this node holds, 0 no limit */
};

void sup_config_defaults(struct sup_config *c);

struct sup;

/* The in-memory view of one session, for the health and session APIs. */
struct sup_session_view {
	const char *id;
	const char *state;       /* supervisor state: idle, waiting, connecting, pairing, connected, stopped */
	int socket_alive;
	int paired;              /* the session has credentials (memory's, or the row's) */
	int manual_needed;       /* the automatic recovery limit was reached */
	int64_t next_retry_at;   /* wall-clock ms of the next automatic attempt, 0 if none */
	const char *qr;          /* the current QR code while pairing, else NULL */
	int64_t qr_expires_at;   /* wall-clock ms */
	unsigned recoveries_in_window;
	/* The supervisor's columns as they are now (the row may lag: it is written behind). */
	const char *status;      /* connection_status, "" when the row has none */
	const char *last_error;  /* NULL when none */
	int64_t last_connected_at, last_message_at; /* wall-clock ms, 0 if never */
	/* The user's columns as last read from the row (within the recovery interval). */
	const char *session_name, *user_id, *phone_number; /* NULL when NULL */
	int is_active, auto_connect;
	int64_t created_at, updated_at;                     /* wall-clock ms */
	const char *node;        /* the node that holds it (several nodes), NULL when none or one node */
};

/* This node in a cluster (GET /cluster). */
struct sup_cluster_info {
	int enabled;          /* leases are on */
	const char *node, *url;
	uint64_t lease_ttl_ms;
	unsigned held, share, capacity;
	int rounds_ok;        /* the last lease round succeeded */
	uint64_t sure_for_ms; /* how long this node's leases are sure without a new round */
};
void sup_cluster_info(struct sup *s, struct sup_cluster_info *out);

/*
 * Before acting on a session a person asked about (reconnect, pair, logout,
 * its QR): done(arg, rc, owner, url, why) with rc 0 when this node holds its
 * lease, or took it now (take, and no node did; without take nothing is
 * taken); WG_ESTATE when another node holds it: owner names it and url, when
 * known, is where its API answers (both valid during done only);
 * WG_ENOTFOUND; WG_ECLOSED when the server is stopping; another failure of
 * the store with why. At once (inside this call) with one node, or when this
 * node holds the lease; else the claim runs on the reader's thread.
 */
typedef void (*sup_claim_fn)(void *arg, int rc, const char *owner, const char *url,
			     const char *why);
void sup_claim(struct sup *s, const char *id, bool take, sup_claim_fn done, void *arg);
/* A graceful stop's end: this node's leases expire now, so the others take them at once. */
int sup_leave(struct sup *s);

/*
 * What GET /metrics says about sessions (sup_metrics): opens and closes by
 * reason, recoveries by trigger and result, how long logins take. Kept on
 * every transition, read without I/O.
 */
#include "core/metrics.h"
#define SUP_CLOSE_REASONS 16
#define SUP_RECOVERY_KINDS 48
struct sup_metrics {
	uint64_t connects;                     /* connects started (logins and pairings) */
	uint64_t opens;                        /* connections that logged in */
	uint64_t closes[SUP_CLOSE_REASONS];    /* by enum wa_close_reason */
	struct {
		char trigger[48], action[16], result[24];
		uint64_t n;
	} recov[SUP_RECOVERY_KINDS];           /* the recovery table's rows, counted by kind */
	size_t nrecov;
	uint64_t recov_other;                  /* kinds beyond the table (none expected) */
	struct wg_hist connect;                /* from the start of a connect to its login */
};
void sup_metrics(struct sup *s, const struct sup_metrics **out);

struct sup_health {
	int db_ok;
	uint32_t db_latency_us;
	unsigned total, connected, connecting, disconnected; /* active primary sessions with credentials */
	int breaker_open;       /* client_outdated: every reconnect is stopped */
	const char *status;     /* "ok", "degraded", "error" */
	const char *db_error;   /* why the database is not ok, else NULL */
	unsigned db_pending;    /* sessions whose row has not caught up with memory */
	unsigned handshakes;    /* logins in flight */
	int started;            /* sup_start has run: the sessions are known and being connected */
	int stopping;           /* the graceful stop has begun */
};

int sup_new(struct store *st, const struct sup_config *cfg, const struct sup_client_ops *ops,
	    void *client_ctx, struct sup **out);
void sup_free(struct sup *s);

/* Rule 1: reconcile the database, then schedule the staggered auto-connects. */
int sup_start(struct sup *s);

/* Does what is due now; returns the next due monotonic instant, or UINT64_MAX. */
uint64_t sup_run(struct sup *s);

/*
 * Production glue: arms a libevent timer for the next due instant after every
 * sup_run() and every client event. Without it (tests), call sup_run() by hand.
 */
struct event_base;
void sup_attach(struct sup *s, struct event_base *base);

/*
 * Production glue, after sup_attach(): the database writes (the write-behind,
 * the quiet-time check, retention) run on a thread with a connection of its
 * own to url (the same database), so the loop never waits for the disk or a
 * lock (docs/store.md). WG_ENOTSUP for a store that cannot be opened twice
 * (sqlite::memory:); then, and without this call (tests), they run inline.
 */
int sup_use_writer(struct sup *s, const char *url, char *err, size_t errlen);

/*
 * Rule 4: closes every session with a WebSocket close and marks the database
 * disconnected; done(arg) runs once all are closed or the grace period ended.
 */
void sup_shutdown(struct sup *s, void (*done)(void *arg), void *arg);

/*
 * A person asks for a reconnect (clears the recovery limit). done(arg, ok,
 * message) runs once the outcome is known, or after reconnect_wait_ms;
 * concurrent requests for one session share one attempt. WG_ENOTFOUND for an
 * unknown id. done may run before this returns only if ok is already known
 * to be impossible (e.g. no credentials): then it returns 0 as well.
 */
int sup_reconnect(struct sup *s, const char *id, void (*done)(void *arg, int ok, const char *msg),
		  void *arg);

/*
 * Reads a session's row into memory without acting on it, as a monitor pass
 * does for a row it has not seen: for a row written outside the API when the
 * caller does not want to wait for the next pass. WG_ENOTFOUND if no row.
 * It reads on the loop: tests and tools; the API reads through sup_call()
 * and hands the row to sup_learn_row().
 */
int sup_learn(struct sup *s, const char *id);
/* The same with a row the caller read (through sup_call): memory takes it. */
void sup_learn_row(struct sup *s, const struct store_session *row);

/*
 * A call to the store off the loop. run runs on the reader's thread with the
 * reader's store (a connection of its own), then done on the loop; calls are
 * served in the order they were made, taking turns with the credentials
 * reads of connects. So a slow, locked or distant database holds the call,
 * never the loop (the API's reads and writes go this way). Without a reader
 * (tests, an in-memory store) both run at once inside sup_call(), with the
 * supervisor's store. When the supervisor goes first, a call not yet run is
 * done with cancelled set, never run. done runs exactly once and owns c.
 */
struct sup_call;
typedef void (*sup_call_run_fn)(struct store *st, struct sup_call *c);
typedef void (*sup_call_done_fn)(struct sup_call *c);
struct sup_call {
	TAILQ_ENTRY(sup_call) link;
	sup_call_run_fn run;
	sup_call_done_fn done;
	bool cancelled;
};
void sup_call(struct sup *s, struct sup_call *c);

/*
 * Starts pairing a new device for a session: one created without
 * credentials, or whose pairing ended (QR codes expired, logged out,
 * credentials that cannot be used). 0 also when it is already pairing;
 * WG_ESTATE, with the reason in *why (why may be NULL), when the session is
 * connected, logging in, or holds credentials that may still work (those are
 * never replaced here: log it out first); WG_ENOTFOUND.
 */
int sup_pair(struct sup *s, const char *id, const char **why);
/*
 * A session was created or changed (auto_connect/is_active) through the API:
 * its row as read after the write (sup_call), which memory takes and acts on.
 */
void sup_session_changed(struct sup *s, const struct store_session *row);
/* A session is being deleted through the API: the supervisor lets go of it first. */
int sup_session_deleted(struct sup *s, const char *id);
/* Logs the device out and stops the session. */
int sup_logout(struct sup *s, const char *id);

/*
 * The observer: one function told about every change a dashboard shows, so
 * the API can push events (GET /events). It runs synchronously, inside the
 * supervisor, after the change is in the database, so it may read the store
 * and call sup_view() and sup_health(); it must not call anything else of
 * the supervisor (no sup_reconnect, sup_pair, ... from inside it).
 *   SUP_EV_SESSION  a session's state changed (every ss_enter, whether or not
 *                   the state differs: last_error may have), or what its view
 *                   shows did (the recovery limit); id names it
 *   SUP_EV_QR       a new QR code arrived for a pairing session
 *   SUP_EV_GONE     sup_free() is running: forget this supervisor (id NULL)
 */
enum sup_event { SUP_EV_SESSION, SUP_EV_QR, SUP_EV_GONE };
typedef void (*sup_observer_fn)(void *arg, enum sup_event ev, const char *id);

/*
 * Sets the observer for arg (replacing the one set before with the same arg);
 * fn NULL removes it. Up to SUP_OBSERVERS_MAX args at once (the API's events,
 * the webhooks); each is told in the order they were set.
 */
#define SUP_OBSERVERS_MAX 4
void sup_set_observer(struct sup *s, sup_observer_fn fn, void *arg);
/* Removes the observer set with arg, if any. */
void sup_remove_observer(struct sup *s, void *arg);

/*
 * Writes every change the database has not got yet, now (the supervisor
 * otherwise writes behind, gathering changes for flush_delay_ms). 0, or the
 * store's error (the changes stay pending and are written later).
 */
int sup_flush(struct sup *s);
/*
 * The status changes of a session that may not be in the table yet (written
 * behind, or in the writer's hands), oldest first, at most the newest max:
 * pointers valid until the next sup_* call. Returns how many. While
 * sup_writing(), some of them may be in the table already.
 */
size_t sup_pending_history(struct sup *s, const char *id, const struct store_status_change **out,
			   size_t max);

/*
 * The recovery attempts of a session that are not in the database yet (it is
 * written behind), newest first, at most max: pointers valid until the next
 * sup_* call. Returns how many.
 */
size_t sup_pending_attempts(struct sup *s, const char *id, const struct store_attempt **out,
			    size_t max);

/* Whether the writer thread has a batch in hand (whose attempts sup_pending_attempts also gives). */
int sup_writing(const struct sup *s);

/* Views; valid until the next sup_* call. WG_ENOTFOUND for an unknown id. */
int sup_view(struct sup *s, const char *id, struct sup_session_view *out);

/*
 * Every session in creation order (created_at, then id), from memory, in
 * slices: a place in that order is a key, so a listing resumes correctly
 * whatever was added or removed between its slices.
 */
struct sup_cursor {
	int64_t created_at;
	char id[STORE_ID_LEN + 1]; /* "" : before the first */
};
/*
 * Called once per session, with a view valid until the caller returns to the
 * loop; returns nonzero to stop after this one. Must not call into the
 * supervisor except sup_view/sup_health/sup_pending_attempts.
 */
typedef int (*sup_list_fn)(void *arg, const struct sup_session_view *v);
/*
 * Visits up to max sessions after *at, calling fn for each; *at becomes the
 * last one visited. Returns 1 when more follow, 0 at the end.
 */
int sup_list(struct sup *s, struct sup_cursor *at, size_t max, sup_list_fn fn, void *arg);
/*
 * Like sup_list, for a listing that renders its page later by id
 * (sup_view): the ids of up to want sessions whose connection status is
 * status ("" for any) into ids, their number in *n, without a view each.
 */
int sup_list_ids(struct sup *s, struct sup_cursor *at, size_t max, const char *status,
                 char (*ids)[STORE_ID_LEN + 1], size_t want, size_t *n);
/* Sessions in that order (every session whose row has been read). */
size_t sup_count(const struct sup *s);
void sup_health(struct sup *s, struct sup_health *out);

#endif
