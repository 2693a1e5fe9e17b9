/*
 * The session store: where the gateway keeps its WhatsApp sessions, their
 * recovery attempts and a few server settings (docs/store.md).
 *
 * Callers hold an opaque struct store and call the store_* wrappers, which
 * check their arguments and dispatch to a backend: a struct store_backend of
 * function pointers (SQLite today, PostgreSQL next, fakes in tests). Every
 * call runs one short statement or transaction and returns 0 (or a count) or a
 * negative WG_E* code; store_errmsg() then says why, for the caller's log.
 * A store is used from one thread (the event loop's).
 *
 * Timestamps are Unix milliseconds in C, 0 meaning NULL; each backend stores
 * them in its own timestamp representation. auth_state holds credentials: the
 * store never puts its value in an error message, and wipes it when freeing.
 */
#ifndef WG_STORE_STORE_H
#define WG_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ID_LEN 36 /* uuid text, without the NUL */
/* Limits on what a row may hold; the web app shares the table, so rows are input. */
#define STORE_AUTH_MAX (4u << 20) /* auth_state bytes */
#define STORE_TEXT_MAX 4096u      /* any other text column */
#define STORE_LIST_MAX 100000u    /* rows store_list returns */
#define STORE_ATTEMPTS_MAX 1000u  /* rows store_attempts returns */
#define STORE_HISTORY_KEEP 500u   /* status changes kept per session; older ones are deleted */

struct store;

struct store_session {
	char id[STORE_ID_LEN + 1];  /* filled by store_insert when empty (uuid, or the table's own id) */
	char *user_id;              /* nullable */
	char *session_name;         /* NULL on insert means "primary" */
	char *phone_number;         /* nullable */
	char *auth_state;           /* nullable; credentials (JSON), never logged */
	int is_active;              /* 0 or 1 */
	int auto_connect;           /* 0 or 1 */
	char connection_status[16]; /* one of store_status_valid(), "" = NULL */
	char *last_error;           /* nullable */
	int64_t last_connected_at;  /* Unix ms, 0 = NULL */
	int64_t last_message_at;
	int64_t created_at; /* set by store_insert when 0 */
	int64_t updated_at;
};

/* Field mask for store_update. */
enum {
	STORE_F_USER_ID = 1,
	STORE_F_SESSION_NAME = 2,
	STORE_F_PHONE = 4,
	STORE_F_AUTH = 8,
	STORE_F_ACTIVE = 16,
	STORE_F_AUTO = 32,
	STORE_F_STATUS = 64,
	STORE_F_ERROR = 128,
	STORE_F_CONNECTED_AT = 256,
	STORE_F_MESSAGE_AT = 512,
	STORE_F_ALL = 1023,
};

struct store_filter {
	/*
	 * Only the sessions the server connects at startup: session_name 'primary',
	 * auth_state not NULL, is_active and auto_connect.
	 */
	bool autoconnect;
	/*
	 * Leave auth_state out: it reads as "" (credentials exist) or NULL, not the
	 * blob. Listings that only need to know whether a session is paired (the
	 * monitor, health, the API's lists) read kilobytes less per row, which
	 * keeps them short on the event loop at 10,000 sessions.
	 */
	bool without_auth;
	/*
	 * Paging (with without_auth, not autoconnect): rows ordered by id, only
	 * those whose id sorts after after_id ("" or NULL: from the first), at
	 * most limit of them (0: no limit). Keyset paging: one index range scan
	 * per page, however far into the table.
	 */
	const char *after_id;
	size_t limit;
	/*
	 * Paging in creation order instead (oldest first, as the API lists):
	 * rows after (after_created, after_id); after_created 0 starts at the
	 * first row.
	 */
	bool by_created;
	const char *after_created; /* created_at as stored (the cursor's text), NULL: from the first */
	/*
	 * Or in the order of updated_at (the rows changed since a mark, oldest
	 * change first): rows after (after_updated, after_id), updated_at as stored.
	 */
	bool by_updated;
	const char *after_updated;
};

/*
 * One flush of the supervisor's write-behind: the changes of many sessions
 * in one transaction (one commit, so one fsync, for all of them). For each
 * entry, its row's fields as store_update writes them (none when fields is
 * 0), then its status changes and its recovery attempts, in order. An entry
 * whose row is gone is skipped, children too, and counted in *gone; any
 * other failure rolls the whole batch back.
 */
struct store_write {
	const char *id;
	/*
	 * Fencing (several nodes, docs/cluster.md): with a token, the entry is
	 * written only while owner holds the session's lease with that token;
	 * otherwise it is skipped and fenced is set. 0: no condition.
	 */
	int64_t token;
	const char *owner;
	bool fenced;     /* out */
	unsigned fields; /* STORE_F_* of vals */
	const struct store_session *vals;
	struct store_status_change *history;
	size_t nhistory;
	struct store_attempt *attempts;
	size_t nattempts;
};

struct store_attempt {
	int64_t id; /* filled by store_add_attempt */
	char session_id[STORE_ID_LEN + 1];
	int64_t at;       /* Unix ms, not 0 */
	char trigger[32]; /* what started it, e.g. "auto:keepalive", "api" */
	char action[32];  /* e.g. "reconnect" */
	char result[32];  /* e.g. "ok", "failed" */
	char *detail;     /* nullable */
};

/* One change of a session's connection_status (whatsapp_session_status_history). */
struct store_status_change {
	int64_t id; /* filled by store_add_status_change */
	char session_id[STORE_ID_LEN + 1];
	int64_t at;        /* Unix ms, not 0 */
	char status[16];   /* one of the five statuses, not "" */
	char *reason;      /* nullable: why, e.g. "connection lost: ... (transient 428)" */
};

/* Sets the defaults of a new row: all empty, is_active and auto_connect 1. */
void store_session_init(struct store_session *s);
/* Frees the strings (wiping auth_state) and zeroes *s; NULL-safe. */
void store_session_free(struct store_session *s);
void store_list_free(struct store_session *arr, size_t n);
void store_attempts_free(struct store_attempt *arr, size_t n);
void store_status_history_free(struct store_status_change *arr, size_t n);

/*
 * Opens a store by URL:
 *   sqlite:PATH or sqlite:///ABSOLUTE/PATH  the file is created mode 0600, its directory
 *                                           (mode 0700) when missing; sqlite::memory: for tests
 *   postgres://... or postgresql://...      a libpq connection URL, any of its options;
 *                                           the first connection is made (and must
 *                                           succeed) before store_open returns
 * Anything else is WG_EINVAL. On failure *out is NULL and err says why.
 * Opening does not migrate; call store_migrate() next.
 */
int store_open(const char *url, struct store **out, char *err, size_t errlen);
void store_close(struct store *st);

/*
 * Applies the migrations the database lacks, each in its own transaction, and
 * sets *applied to how many ran (0 when up to date). WG_ESTATE when the
 * database was migrated by a newer wagate, or its tables are not the ones we use.
 */
int store_migrate(struct store *st, int *applied);
/*
 * How long a statement waits for another connection's write lock before it
 * fails (WG_ETIMEDOUT): 10 ms by default, since a store is used on the event
 * loop; a store on a thread of its own may wait longer. Ignored by backends
 * without such a wait.
 */
void store_set_wait(struct store *st, int ms);
/*
 * The SQL store_migrate() would run now, as text (malloc'd; "" when the
 * database is up to date): the columns added to a sessions table the web app
 * created first, then each pending migration. Runs nothing.
 */
int store_migrate_plan(struct store *st, char **sql);
/* Runs a trivial query; *latency_us (may be NULL) is how long it took. */
int store_ping(struct store *st, uint32_t *latency_us);
/*
 * At startup: rows still 'connecting', 'qr_pending' or 'connected' were left by
 * a process that died; they become 'disconnected' with updated_at = now.
 */
int store_reconcile(struct store *st, int64_t now, int *changed);

/* Sessions ordered by created_at, id; f NULL means all. Free with store_list_free. */
int store_list(struct store *st, const struct store_filter *f, struct store_session **out,
               size_t *n);
/* WG_ENOTFOUND when no such id; WG_EINVAL when the row holds bad data. */
int store_get(struct store *st, const char *id, struct store_session *out);
/*
 * Inserts s, first filling in s: id (a new uuid when empty), session_name
 * ("primary" when NULL), created_at and updated_at (wall clock when 0).
 */
int store_insert(struct store *st, struct store_session *s);
/* Writes only the columns in fields, plus updated_at = now. WG_ENOTFOUND. */
int store_update(struct store *st, const char *id, const struct store_session *s, unsigned fields,
                 int64_t now);
/*
 * The oldest session named name whose user_id is user_id (NULL: the sessions
 * without one): its id into id. WG_ENOTFOUND when there is none. The API keeps
 * names unique per user with it (one index lookup).
 */
int store_find_name(struct store *st, const char *user_id, const char *name,
                    char id[STORE_ID_LEN + 1]);
/* Deletes a session and its recovery attempts. WG_ENOTFOUND. */
int store_delete(struct store *st, const char *id);

/* Records an attempt and fills a->id. WG_ENOTFOUND when the session does not exist. */
int store_write_batch(struct store *st, struct store_write *w, size_t n, int64_t now, size_t *gone);
/*
 * A value that changes whenever another process (the web app) changed the
 * database since; our own writes leave it alone. WG_ENOTSUP when the backend
 * cannot tell (the caller then reads the rows to find out).
 */
int store_data_version(struct store *st, uint64_t *version);
/*
 * The newest per_session (1..100) attempts of each of nids (at most 1,000)
 * distinct sessions, in one query, by session and newest first (an id given
 * twice may give its rows twice).
 */
int store_recent_attempts(struct store *st, const char *const *ids, size_t nids, size_t per_session,
                          struct store_attempt **out, size_t *n);
int store_add_attempt(struct store *st, struct store_attempt *a);
/*
 * A session's attempts at or after since (0: all), newest first, at most limit
 * (0 or more than STORE_ATTEMPTS_MAX means STORE_ATTEMPTS_MAX).
 */
int store_attempts(struct store *st, const char *session_id, int64_t since, size_t limit,
                   struct store_attempt **out, size_t *n);
/* Counts a session's attempts at or after since whose trigger starts with prefix (NULL: all). */
int store_count_attempts(struct store *st, const char *session_id, const char *trigger_prefix,
                         int64_t since, int *count);

/*
 * Records a status change and fills c->id; in the same transaction deletes
 * the session's rows beyond the newest STORE_HISTORY_KEEP. WG_ENOTFOUND when
 * the session does not exist.
 */
int store_add_status_change(struct store *st, struct store_status_change *c);
/*
 * A session's status changes at or after since (0: all): the newest limit of
 * them (0 or more than STORE_HISTORY_KEEP means STORE_HISTORY_KEEP), oldest first.
 */
int store_status_history(struct store *st, const char *session_id, int64_t since, size_t limit,
                         struct store_status_change **out, size_t *n);

/*
 * Retention: deletes recovery attempts and status changes older than before
 * (Unix ms), at most max rows of each table per call (so one call holds the
 * database briefly), and adds how many went to *deleted. Call again while it
 * deletes max. WG_ENOTSUP when the backend keeps everything.
 */
int store_prune(struct store *st, int64_t before, size_t max, size_t *deleted);

/*
 * Leases: several wagate nodes share one database's sessions (PostgreSQL;
 * docs/cluster.md). A lease names the node that may connect a session, until
 * when (the database's clock), and a fencing token that grows with every
 * takeover. WG_ENOTSUP on backends without them (SQLite: one node).
 */
#define STORE_NODE_MAX 63 /* node id bytes */
#define STORE_URL_MAX 159 /* a node's API URL bytes */

struct store_lease {
	char session_id[STORE_ID_LEN + 1];
	int64_t token;
	char owner[STORE_NODE_MAX + 1];
};

struct store_node {
	char id[STORE_NODE_MAX + 1];
	char url[STORE_URL_MAX + 1]; /* "" when it gave none */
	int64_t started_at, heartbeat_at; /* Unix ms */
	unsigned capacity;                /* 0: no limit */
	unsigned leases;                  /* live leases it holds */
	bool live;                        /* heartbeat within the lease time */
};

/*
 * One heartbeat of a node, in one transaction: its row in wagate_nodes is
 * refreshed; the leases in release[] are given back (they expire now, so
 * another node may take them at once); every other lease the node holds is
 * renewed for ttl_ms; then, up to claim_max sessions that should run (a
 * primary, active, auto-connect, with credentials) and that no live lease
 * holds are taken, as many as bring the node to its fair share: the
 * runnable sessions over the live nodes, rounded up, at most capacity.
 */
struct store_lease_round {
	/* In. */
	const char *node;
	const char *url; /* where this node's API answers the others, NULL: none */
	uint64_t ttl_ms;
	unsigned capacity;  /* 0: no limit */
	unsigned claim_max; /* 0: renew only */
	const char *const *release;
	size_t nrelease;
	/* Out: free with store_lease_round_free. */
	struct store_lease *held; /* this node's leases after the round (id, token) */
	size_t nheld;
	struct store_lease *others; /* live leases of other nodes (id, owner) */
	size_t nothers;
	struct store_node *nodes; /* live nodes, this one included */
	size_t nnodes;
	unsigned runnable; /* sessions that should run, in the whole table */
	unsigned share;    /* the fair share: runnable over live nodes, rounded up, capped */
};
int store_lease_round(struct store *st, struct store_lease_round *r);
void store_lease_round_free(struct store_lease_round *r);
/*
 * Takes one session's lease at once (take), for an action a person asked for
 * on a session no node holds (pairing a new one); or only looks (!take):
 * then 0 with out->owner "" when no node holds it. WG_ESTATE with out->owner
 * set when another node holds a live lease; WG_ENOTFOUND when there is no row.
 */
int store_lease_claim(struct store *st, const char *node, const char *id, bool take,
                      uint64_t ttl_ms, struct store_lease *out);
/* A graceful stop: the node's leases expire now (the others take them at once) and its row goes. */
int store_lease_leave(struct store *st, const char *node);
/* Every node with a row, live ones first; free with free(). */
int store_nodes(struct store *st, uint64_t ttl_ms, struct store_node **out, size_t *n);

/* Server settings, a key/value table. get: WG_ENOTFOUND; *value is malloc'd. */
int store_get_setting(struct store *st, const char *key, char **value);
int store_set_setting(struct store *st, const char *key, const char *value);

/* A random (version 4) uuid in lower-case text. Aborts if the system has no randomness. */
void store_uuid(char out[STORE_ID_LEN + 1]);
/*
 * Parses a timestamp as the store reads them (store__ts_parse below), for
 * callers that take timestamps from people, e.g. the API's ?since=.
 */
int store_time_parse(const char *s, size_t len, int64_t *ms);
/* True for the five connection_status values and "" (NULL). */
bool store_status_valid(const char *status);
/*
 * Seals every auth_state still stored as plain text under the current key
 * (store/seal.h; nothing without one). *sealed counts the rows sealed.
 */
int store_seal_plain(struct store *st, size_t *sealed);

/*
 * The webhook outbox (src/hook/): deliveries not yet accepted, oldest first
 * by seq. The caller makes id and seq, so nothing waits for the database to
 * name a row.
 */
#define STORE_HOOK_BODY_MAX (64u << 10)
struct store_hook {
	char id[33];           /* 32 hex digits */
	int64_t seq;           /* the order of the events */
	char *url;
	char *session_id;      /* NULL: not about one session (health) */
	char kind[40];
	char *body;
	int64_t created_at;    /* Unix ms */
};
int store_hook_add(struct store *st, const struct store_hook *h);
int store_hook_delete(struct store *st, const char *id);
/* At most max rows, by seq. */
int store_hook_list(struct store *st, size_t max, struct store_hook **out, size_t *n);
void store_hooks_free(struct store_hook *arr, size_t n);

/* The batch writes of every store in the process (the supervisor's flushes), for GET /metrics. */
#include "core/metrics.h"
struct store_write_metrics {
	struct wg_hist latency; /* each store_write_batch, failed ones too */
	uint64_t failures;      /* batches that failed (rolled back) */
};
const struct store_write_metrics *store_write_metrics(void);

/* The last error's text, for logs ("" when none). Never holds auth_state values. */
const char *store_errmsg(const struct store *st);
/*
 * store_list passes over rows holding bad data (written by hand or by another
 * program), so one bad row cannot stop every session: this is how many the
 * last call skipped; store_errmsg() then names the first one.
 */
size_t store_list_skipped(const struct store *st);
/*
 * After a paged store_list: the id and the ordering timestamp (created_at,
 * or updated_at with by_updated; as stored, not normalised) of the last row
 * it scanned, including a row it skipped for
 * bad data, so the next page starts after it. Valid until the next call;
 * WG_ENOTFOUND when the page was empty.
 */
int store_list_cursor(const struct store *st, const char **id, const char **created);
void store__set_cursor(struct store *st, const char *id, const char *created);
void store__set_skipped(struct store *st, size_t n);

/*
 * Backend interface. The wrappers above have checked the arguments (ids are
 * non-empty and fit, statuses are valid, timestamps are not negative, masks are
 * known, insert defaults are filled) before calling a backend. Backends record
 * failures with store__fail() and validate every row they read.
 */
struct store_backend {
	const char *name;
	/* target: the URL without its scheme. Sets its state with store__set_state(). */
	int (*open)(struct store *st, const char *target, char *err, size_t errlen);
	void (*close)(struct store *st);
	int (*hook_add)(struct store *st, const struct store_hook *h);
	int (*hook_delete)(struct store *st, const char *id);
	int (*hook_list)(struct store *st, size_t max, struct store_hook **out, size_t *n);
	/* Optional: rewrites the storage so that deleted bytes are gone (store_seal_plain). */
	int (*compact)(struct store *st);
	int (*migrate)(struct store *st, int *applied);
	int (*ping)(struct store *st);
	int (*reconcile)(struct store *st, int64_t now, int *changed);
	int (*list)(struct store *st, const struct store_filter *f, struct store_session **out, size_t *n);
	int (*get)(struct store *st, const char *id, struct store_session *out);
	/* Fills s->id when empty: a new uuid, or the id the table's own default gives. */
	int (*insert)(struct store *st, struct store_session *s);
	int (*update)(struct store *st, const char *id, const struct store_session *s,
	              unsigned fields, int64_t now);
	int (*del)(struct store *st, const char *id);
	int (*add_attempt)(struct store *st, struct store_attempt *a);
	int (*attempts)(struct store *st, const char *session_id, int64_t since, size_t limit,
	                struct store_attempt **out, size_t *n);
	int (*count_attempts)(struct store *st, const char *session_id, const char *prefix,
	                      int64_t since, int *count);
	int (*get_setting)(struct store *st, const char *key, char **value);
	int (*set_setting)(struct store *st, const char *key, const char *value);
	int (*add_status_change)(struct store *st, struct store_status_change *c);
	int (*status_history)(struct store *st, const char *session_id, int64_t since,
	                      size_t limit, struct store_status_change **out, size_t *n);
	int (*write_batch)(struct store *st, struct store_write *w, size_t n, int64_t now,
	                   size_t *gone);
	int (*recent_attempts)(struct store *st, const char *const *ids, size_t nids,
	                       size_t per_session, struct store_attempt **out, size_t *n);
	/* Optional: store_migrate_plan (WG_ENOTSUP without). */
	int (*migrate_plan)(struct store *st, char **sql);
	/* Optional: store_set_wait. */
	void (*set_wait)(struct store *st, int ms);
	/* Optional (WG_ENOTSUP without): store_prune, store_find_name. */
	int (*prune)(struct store *st, int64_t before, size_t max, size_t *deleted);
	int (*find_name)(struct store *st, const char *user_id, const char *name,
	                 char id[STORE_ID_LEN + 1]);
	/* Optional: a value that changes whenever someone else changed the data. */
	int (*data_version)(struct store *st, uint64_t *version);
	/* Optional (WG_ENOTSUP without): leases. */
	int (*lease_round)(struct store *st, struct store_lease_round *r);
	int (*lease_claim)(struct store *st, const char *node, const char *id, bool take,
	                   uint64_t ttl_ms, struct store_lease *out);
	int (*lease_leave)(struct store *st, const char *node);
	int (*nodes)(struct store *st, uint64_t ttl_ms, struct store_node **out, size_t *n);
};

extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_pg_backend;

/* Opens a store on a given backend (fakes in tests); target is passed to its open. */
int store_open_backend(const struct store_backend *be, const char *target, struct store **out,
                       char *err, size_t errlen);

/*
 * For backends: the body of a batch (inside the backend's transaction), one
 * walk for all of them: for each entry, the fence (when it has a token and
 * the backend fences), its row, its status changes, its attempts. A row that
 * is gone skips its entry (counted in *gone); a child whose session is gone
 * ends that entry's children; any other failure ends the walk.
 */
struct store_batch_ops {
	/* NULL: no fences. Sets *holds: owner still holds the lease with that token. */
	int (*still_holds)(struct store *st, const struct store_write *w, bool *holds);
	int (*update)(struct store *st, const char *id, const struct store_session *s,
	              unsigned fields, int64_t now);
	int (*add_status)(struct store *st, struct store_status_change *c);
	int (*add_attempt)(struct store *st, struct store_attempt *a);
};
int store__batch_body(struct store *st, const struct store_batch_ops *ops, struct store_write *w,
                      size_t n, int64_t now, size_t *gone);

/* For backends: their private state, and error recording (returns code). */
void *store__state(struct store *st);
void store__set_state(struct store *st, void *state);
int store__fail(struct store *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ids are 1 to STORE_ID_LEN printable ASCII characters without spaces, so they are safe to log. */
bool store__id_valid(const char *s, size_t len);

/*
 * Timestamps as text, shared by backends that store text: ISO 8601 UTC with
 * milliseconds, "2026-11-24T13:45:01.123Z". Parsing also accepts a space for
 * the T, 0 to 9 fraction digits, and Z, +HH:MM, +HHMM, +HH or no zone (UTC),
 * which is what other writers of the table produce. Returns 0 or WG_EINVAL.
 */
int store__ts_format(char out[32], int64_t ms);
int store__ts_parse(const char *s, size_t len, int64_t *ms);

#endif
