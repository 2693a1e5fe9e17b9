/*
 * The supervisor's insides, shared by its files:
 *   sup.c          the state machine, the rules, the public calls
 *   sup_wb.c       the write-behind: the database as a converging mirror of memory
 *   sup_monitor.c  the recovery monitor, and the pass that reads the user's changes
 *   sup_list.c     the user's columns kept for the listings, and the creation order
 *   sup_lease.c    leases: several nodes sharing one database's sessions
 *   sup_read.c     the credentials a connect needs, read on a thread of their own
 */
#ifndef WG_SUP_INT_H
#define WG_SUP_INT_H

#include <stdbool.h>
#include <sys/queue.h>

#include "core/heap.h"
#include "core/map.h"
#include "sup/sup.h"

/*
 * A session's life in this process; ss_enter() is the only place that changes
 * it, and it keeps the status in memory in step (the row follows, sup_wb.c):
 *   idle        nothing scheduled (not auto-connected, or waiting for a person)  disconnected
 *   waiting     a connect is due at `due`                                         disconnected
 *   connecting  a client is logging in                                            connecting
 *   pairing     a client shows QR codes                                           qr_pending
 *   connected   open                                                              connected
 *   stopped     logged out, replaced, breaker or recovery limit: a person decides disconnected | logged_out
 *   reading     its credentials are being read off the loop (sup_read.c)          connecting
 */
enum ss_state { SS_IDLE, SS_WAITING, SS_CONNECTING, SS_PAIRING, SS_CONNECTED, SS_STOPPED, SS_READING };

/* /health counts active primary sessions with credentials, by status. */
enum { B_CONNECTED, B_CONNECTING, B_DISCONNECTED, B_N };

struct waiter {
	void (*done)(void *arg, int ok, const char *msg);
	void *arg;
	uint64_t deadline;
	struct waiter *next;
};

/* A status change or a recovery attempt the database has not got yet. */
struct pend {
	struct pend *next;
	int is_attempt;
	struct store_status_change h; /* is_attempt == 0; reason malloc'd */
	struct store_attempt a;       /* is_attempt == 1; detail malloc'd */
};

struct sess {
	char id[STORE_ID_LEN + 1];
	enum ss_state state;
	struct sup_client *client;
	struct wg_heap_node due;      /* in sup.due while waiting: when to connect */
	struct wg_heap_node deadline; /* in sup.deadlines while it has waiters: the earliest */
	size_t idx;                   /* position in sup.v */
	struct sup *sup;

	/* The user's columns the rules read, as last read from the row. */
	bool is_active, auto_connect, has_auth, primary;
	/* The others, for the listings (sup_list.c): name, user id, phone in one allocation. */
	char *ucols;
	uint32_t uoff[3];  /* offsets into ucols, UINT32_MAX for NULL; index UC_* */
	int64_t created_at, updated_at; /* wall ms; updated_at as the row has it after our writes */
	bool in_order;     /* in sup.order */
	int bucket;       /* the /health count it is in, or -1 */
	unsigned seen;    /* monitor pass that last saw its row */

	/* The rules' memory. */
	bool ever_open;   /* opened once in this process: running rules, not startup rules */
	size_t start_try; /* startup retries used */
	unsigned failures;
	bool manual_needed, reopen, logout, deleted, probing;
	char trigger[48]; /* what started the attempt in flight, for the recovery table */
	uint64_t connected_mono; /* when the connect in flight began; once open, when it opened */
	int64_t last_activity; /* wall ms: the last message, or when it connected */
	char *qr;
	int64_t qr_expires;
	int64_t next_retry_wall;
	/* Wall times of the recent automatic recoveries, newest last (at most recovery_max). */
	int64_t *recov;
	unsigned nrecov;
	bool recov_loaded;
	bool recov_loading; /* the earlier ones are being read (sup_monitor.c) */
	struct waiter *waiters;

	/*
	 * The supervisor's columns. Memory is the truth; the row is written
	 * behind (sup_wb.c): `dirty` says which of them the row lacks.
	 */
	char status[16]; /* connection_status ("" = NULL) */
	char *last_error;
	int64_t last_connected_at, last_message_at;
	unsigned dirty;     /* STORE_F_* the next write takes */
	/*
	 * Credentials newer than the row's (NULL: dropped), kept until a write of
	 * this generation is confirmed: a write in flight may still fail, and a
	 * connect meanwhile must use these, not the row's.
	 */
	bool auth_newer;
	unsigned auth_gen;
	char *auth_pending;
	char *phone_pending; /* learnt with the credentials; shown before the row has it */
	struct pend *pend, **pend_tail;
	unsigned npend;
	bool in_dirty;    /* on sup.dirty */
	bool writing;     /* in the writer's batch: the row's updated_at may be ours, not yet known */
	bool msg_pending; /* last_message_at waits for the next coalesced write */

	/*
	 * Several nodes (sup_lease.c): this node connects the session only while
	 * leased; releasing: being handed over (its socket closes, then the lease
	 * goes back). owner: the node that holds it as last heard, or NULL.
	 */
	bool leased, releasing;
	/* sup_read.c: on sup.reads while its credentials wait to be read; the read's number. */
	bool in_reads;
	uint64_t read_seq;
	TAILQ_ENTRY(sess) read_link;
	int64_t lease_token;
	unsigned lease_seen; /* the lease round that last confirmed it */
	uint64_t claim_until; /* taken on demand: sure until then, before any round renewed it */
	uint64_t claim_at;    /* when it was taken on demand (a round sent before it does not know it) */
	const char *owner;
	TAILQ_ENTRY(sess) msg_link;
	TAILQ_ENTRY(sess) dirty_link;
};
TAILQ_HEAD(sess_list, sess);
TAILQ_HEAD(msg_list, sess);

struct sup {
	struct sup_metrics metrics; /* counters for GET /metrics, kept on every transition */
	struct store *st;
	struct sup_config cfg;
	const struct sup_client_ops *ops;
	void *ctx;
	struct wg_map by_id; /* id -> sess */
	struct sess **v;     /* every session, for passes over all */
	size_t n, cap;
	struct sess **order; /* every session with a row read, by (created_at, id): sup_list.c */
	size_t norder, order_cap;
	struct wg_heap due;       /* waiting sessions by due instant */
	struct wg_heap deadlines; /* sessions with waiters by earliest deadline */
	unsigned cnt[B_N];        /* /health counts */
	unsigned connecting;      /* handshakes in flight */
	unsigned nconnected;      /* sessions connected now, any name: WhatsApp is reachable from here */
	uint64_t recover_next;    /* the earliest instant the next monitor recovery may connect */
	int breaker;              /* client_outdated seen: no automatic reconnects */
	int shutting_down;
	void (*shutdown_done)(void *);
	void *shutdown_arg;
	uint64_t shutdown_deadline;
	int started;
	size_t skipped_rows;
	unsigned start_pending;
	unsigned start_ok, start_retry, start_reauth;
	struct event_base *base;
	struct event *timer;
	struct {
		sup_observer_fn fn;
		void *arg;
	} observers[SUP_OBSERVERS_MAX]; /* the API's event stream, the webhooks */

	/* The monitor (sup_monitor.c): a pass runs in slices, one per loop turn. */
	uint64_t next_monitor;
	unsigned pass;          /* number of the pass running or last run */
	int pass_running;
	int pass_skipped;       /* a page of this pass skipped rows with bad data */
	char *pass_after;       /* keyset cursor: the id of the last row read, good or bad (malloc'd) */
	int pass_rows;          /* this pass reads the rows (someone else may have changed them) */
	struct sup_cursor pass_cur; /* a pass over memory only: the last session checked */
	uint64_t pass_version;  /* the store's data version when this pass began */
	int pass_version_ok;
	uint64_t rows_version;  /* the data version the rows in memory are as of */
	int have_rows_version;
	/* The watch (sup_monitor.c): rows changed since the mark, every watch_interval_ms. */
	uint64_t watch_at;
	char watch_updated[40];   /* updated_at of the newest row seen, as stored */
	char watch_id[STORE_ID_LEN + 1];
	int read_failing;          /* the monitor's or the watch's last read failed */
	uint64_t read_err_logged;  /* when that was last logged (a failure that goes on is not logged every turn) */

	/* The write-behind (sup_wb.c). */
	struct sess_list dirty;
	unsigned ndirty;
	struct msg_list msgs;  /* sessions whose last_message_at waits */
	uint64_t flush_at;     /* when to write next (UINT64_MAX: nothing to write) */
	uint64_t msg_at;       /* when the waiting last_message_at values are written */
	uint64_t ping_at;      /* when to check the database next when nothing is written */
	uint64_t prune_at;     /* when retention deletes old attempts and history next */
	unsigned flush_failures;
	int db_ok;
	uint32_t db_latency_us;
	char db_error[256];
	uint64_t db_error_logged; /* when the current failure was last logged */
	uint64_t last_write_ok;   /* monotonic ms of the last good write or ping */
	unsigned wb_batch;        /* sessions in the next transaction (adapts: sup_wb.c) */
	unsigned wb_singles;      /* the next writes take one session each (a batch was refused) */
	struct store_writer *writer; /* the writer thread, when attached (sup_wb.c); NULL: writes inline */
	struct wb_job *inflight;  /* the batch the writer has: its attempts still count as pending */
	uint64_t writer_version;  /* the writer's data version after its last job */
	int writer_version_ok;
	uint32_t writer_generation; /* its connection's generation: a change means the file was reopened */

	/* PostgreSQL's notifications of the app's writes (store/pg_listen.c), when listening. */
	struct store_listener *listener;

	/* Credentials read off the loop (sup_read.c). */
	struct store_writer *reader;
	struct sup_call *call_inflight;  /* the call the reader has, read batch or other */
	struct page_call *monitor_call;  /* the monitor's page being read (sup_monitor.c) */
	struct page_call *watch_call;    /* the watch's */
	TAILQ_HEAD(, sup_call) calls;    /* sup_call()s waiting for the reader */
	bool calls_turn;                 /* the next free turn goes to calls, then to reads */
	struct sess_list reads; /* sessions in `reading`, not yet handed to the reader */
	uint64_t read_seq;
	struct read_job *read_rest;  /* the read batch back whose connects go on in the next turns */
	struct event *read_resume;   /* its next turn */

	/* Leases (sup_lease.c), when cfg.node_id is set. */
	struct store_writer *leaser; /* the rounds' thread and connection */
	struct lease_job *lease_inflight;
	uint64_t lease_at;     /* the next round */
	uint64_t lease_until;  /* this node's leases are sure until then (monotonic) */
	uint64_t lease_error_logged;
	unsigned nleased, lease_share, live_nodes, lease_rounds, lease_gen;
	int lease_ok;          /* the last round succeeded */
	char **owners;         /* node ids seen, interned */
	size_t nowners;
	struct store_node *nodes; /* live nodes, as of the last round */
	size_t nnodes;
};

/* sup.c */
extern const char *const sup__state_names[];
struct sess *sup__find(struct sup *s, const char *id);
struct sess *sup__add(struct sup *s, const char *id);
void sup__remove(struct sup *s, struct sess *x);
void sup__record(struct sess *x, const char *trigger, const char *action, const char *result,
		 const char *detail);
void sup__enter(struct sess *x, enum ss_state st, const char *why, const char *err,
		int logged_out);
int sup__connect_now(struct sess *x, const char *trigger);
/* Someone else wrote the session's row (its updated_at is not the one our writes left). */
void sup__row_written(struct sess *x);
/* The user's columns changed (the API, or the app's write): switched off, or auto-connect turned on. */
void sup__user_changed(struct sess *x);
/* Whether row was last written by someone else: our writes leave updated_at as memory has it. */
bool sup__row_foreign(const struct sess *x, const struct store_session *row);
void sup__wait_then_connect(struct sess *x, uint64_t delay_ms, const char *why, const char *err);
void sup__recount(struct sess *x);
void sup__notify(struct sess *x, enum sup_event ev);
/* Something changed outside sup_run (a write's outcome): the timer is armed again. */
void sup__kick(struct sup *s);
void sup__apply_row(struct sess *x, const struct store_session *row);
/* The user wants it up by itself: a primary, active, auto-connect, with credentials (Rule 1). */
bool sup__should_run(const struct sess *x);

void sup__fill_view(struct sess *x, struct sup_session_view *out);

/* Answers whoever waits for x's attempt (a manual reconnect). */
void sup__finish_waiters(struct sess *x, int ok, const char *msg);

/*
 * Opens x's client with auth (the row's credentials, or NULL), after its read
 * came back (rc); the caller schedules once for all its connects.
 */
void sup__connect_with(struct sess *x, int rc, const char *auth);

/* sup_read.c */
struct read_job;
/* Queues x's credentials for the reader and enters `reading`; false when there is no reader. */
bool sup__read_start(struct sess *x);
void sup__read_pump(struct sup *s);
/* x left `reading`: it leaves the queue. */
void sup__read_forget(struct sess *x);
int sup__read_attach(struct sup *s, struct event_base *base, const char *url, char *err,
		     size_t errlen);
void sup__read_detach(struct sup *s);

/* sup_lease.c */
struct lease_job;
/* Leases are on: several nodes may share the database. */
bool sup__cluster(const struct sup *s);
void sup__lease_lost(struct sess *x, const char *why);
/* This node holds x's lease and it is sure now (renewed within the lease time). */
bool sup__lease_sure(const struct sess *x);
/* A row that should run and no node holds: the next round comes now, not at its time. */
void sup__lease_hurry(struct sup *s);
/* The rounds and the node's own fence; returns the next instant it needs. */
uint64_t sup__lease_step(struct sup *s, uint64_t now);
int sup__lease_attach(struct sup *s, struct event_base *base, const char *url, char *err,
		      size_t errlen);
void sup__lease_detach(struct sup *s);
void sup__lease_free(struct sup *s);

/* sup_list.c */
enum { UC_NAME, UC_USER, UC_PHONE, UC_N };
const char *sup__ucol(const struct sess *x, int col);
/* The row's name, user id, phone, created_at and updated_at into memory. */
void sup__ucols_apply(struct sess *x, const struct store_session *row);
void sup__ucols_set_phone(struct sess *x, const char *phone);
void sup__order_del(struct sess *x);
void sup__ucols_free(struct sess *x);
/* Up to max sessions after *at in creation order into out, advancing *at; *more when others follow. */
size_t sup__order_slice(struct sup *s, struct sup_cursor *at, struct sess **out, size_t max,
			int *more);

/* sup.c: memory takes a row read from the store (a session it did not know is added). */
struct sess *sup__take_row(struct sup *s, const struct store_session *row);

/* sup_monitor.c */
/* Each returns when it is next due (UINT64_MAX while its read is out: its end wakes the supervisor). */
uint64_t sup__monitor_step(struct sup *s, uint64_t now);
/* The watch: reads the rows changed since the last it saw; starts after newest_updated (wall ms). */
uint64_t sup__watch_step(struct sup *s, uint64_t now);
void sup__watch_init(struct sup *s, int64_t newest_updated);
/* The database says the app wrote session id (NULL: notifications may have been missed). */
void sup__notified(struct sup *s, const char *id);
/* Memory has every row as of now (after the start's listing): later passes read only after others write. */
void sup__note_rows_version(struct sup *s);
int sup__recovery_allowed(struct sess *x, const char *trigger);
/* How long the next monitor recovery waits: they are spaced start_stagger_ms apart, as starts are. */
uint64_t sup__recovery_delay(struct sup *s);
unsigned sup__recoveries_in_window(struct sess *x);
unsigned sup__recoveries_known(struct sess *x);

/* sup_wb.c */
struct wb_job;
void sup__wb_init(struct sup *s);
/*
 * A session's status changes (attempts false) or recovery attempts not known
 * to be in the table: those the writer has in hand, then those waiting;
 * oldest first, the newest max of them.
 */
size_t sup__wb_pending(struct sess *x, bool attempts, const struct pend **out, size_t max);
void sup__wb_forget(struct sess *x);
/* New credentials (NULL: dropped) and phone (NULL: unchanged) to write. */
void sup__wb_auth(struct sess *x, const char *auth, const char *phone);
/* The store's data version as the writer last saw it, or the store's own (see sup_monitor.c). */
int sup__wb_data_version(struct sup *s, uint64_t *v);
/* Marks fields dirty; the row gets them at the next flush. */
void sup__wb_mark(struct sess *x, unsigned fields);
void sup__wb_history(struct sess *x, const char *status, const char *reason);
void sup__wb_attempt(struct sess *x, const struct store_attempt *a);
void sup__wb_message(struct sess *x);
void sup__wb_set_error(struct sess *x, const char *err);
/* Writes what is due; returns the next instant it needs, or UINT64_MAX. */
uint64_t sup__wb_run(struct sup *s, uint64_t now);
/* The writer thread (sup_use_writer), and its end (sup_free). */
struct event_base;
int sup__wb_attach_writer(struct sup *s, struct event_base *base, const char *url, char *err,
			  size_t errlen);
void sup__wb_detach_writer(struct sup *s);
/* Writes everything now (shutdown, tests): 0, or the store's error. */
int sup__wb_flush_all(struct sup *s);

#endif
