/*
 * The PostgreSQL backend of the session store (docs/store.md).
 *
 * One libpq connection per store, driven through libpq's non-blocking API and
 * poll(2) with a deadline, so no call waits longer than the store allows:
 * a lock held elsewhere fails after the store's wait (lock_timeout, as
 * SQLite's busy wait), an answer that does not come within PG_ANSWER_MS (or
 * the wait, when longer) drops the connection. A lost connection is made
 * again in the background of later calls, with backoff; until then calls
 * fail at once with WG_EIO and say why. The event loop's store and the
 * writer thread's store are two stores, two connections.
 *
 * The web app owns whatsapp_sessions, so its columns may be of the app's
 * types: ids text, uuid or integer; timestamps timestamptz, timestamp or
 * text; booleans boolean or integer; statuses text or an enum. Every query
 * therefore reads columns in their text form (the session runs with
 * TimeZone UTC and DateStyle ISO) and sends every value as untyped text,
 * which PostgreSQL converts to the column's own type. Rows are validated
 * like network input, as in the SQLite backend; messages never carry values.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/pg_listen.h"
#include "store/schema.h"
#include "store/store.h"

#define PG_WAIT_MS 10          /* lock waits on the event loop (store_set_wait changes it) */
#define PG_ANSWER_MS 250       /* the least time an answer may take before the connection is dropped */
#define PG_START_MS 10000      /* migrating and reconciling, before anything is served */
#define PG_BACKOFF_MIN_MS 250  /* first wait before connecting again */
#define PG_BACKOFF_MAX_MS 5000
#define PG_IDLE_TX_MS_STR "2000" /* the server ends a transaction of ours idle this long */
#define PG_MIGRATIONS "wagate_schema_migrations"
/* Serialises migrations of several wagate processes on one database (any fixed number). */
#define PG_MIGRATE_LOCK "7366172651214733"

#define PG_NMIGRATIONS store_nmigrations
#define PG_NMIGRATIONS_MAX 64 /* room for the list (checked at migrate) */

/*
 * The columns an adopted table gets when it lacks them: the design's
 * definitions. PostgreSQL fills existing rows with the default, so a table
 * full of the app's sessions reads as active, auto-connect, primary.
 */
static const struct {
	const char *name, *def;
} adopt_cols[] = {
    {"user_id", "TEXT"},
    {"session_name", "TEXT NOT NULL DEFAULT 'primary'"},
    {"phone_number", "TEXT"},
    {"auth_state", "TEXT"},
    {"is_active", "BOOLEAN NOT NULL DEFAULT true"},
    {"auto_connect", "BOOLEAN NOT NULL DEFAULT true"},
    {"connection_status", "TEXT"},
    {"last_error", "TEXT"},
    {"last_connected_at", "TIMESTAMPTZ"},
    {"last_message_at", "TIMESTAMPTZ"},
    {"created_at", "TIMESTAMPTZ NOT NULL DEFAULT now()"},
    {"updated_at", "TIMESTAMPTZ NOT NULL DEFAULT now()"},
};
#define PG_NADOPT (sizeof(adopt_cols) / sizeof(adopt_cols[0]))

/* The sessions' columns in their text form; auth_state alone, or reduced to a marker. */
#define COLS_HEAD "id::text, user_id::text, session_name::text, phone_number::text, "
#define COLS_TAIL                                                                                  \
	", is_active::text, auto_connect::text, connection_status::text, last_error::text, "       \
	"last_connected_at::text, last_message_at::text, created_at::text, updated_at::text"
#define SESSION_COLS COLS_HEAD "auth_state::text" COLS_TAIL
#define SESSION_COLS_LIGHT                                                                         \
	COLS_HEAD "CASE WHEN auth_state IS NULL THEN NULL WHEN auth_state LIKE 'wgs1:%' THEN 'wgs1:' ELSE '' END" COLS_TAIL
/* ::int: the app's flags may be integers 0/1 instead of booleans. */
#define AUTO_WHERE                                                                                 \
	" WHERE session_name = 'primary' AND auth_state IS NOT NULL AND is_active::int <> 0"       \
	" AND auto_connect::int <> 0"

/* Columns store_update may set, in STORE_F_* bit order. */
static const char *const update_cols[] = {
    "user_id",      "session_name",      "phone_number", "auth_state",        "is_active",
    "auto_connect", "connection_status", "last_error",   "last_connected_at", "last_message_at",
};

struct pg {
	PGconn *conn;     /* NULL while disconnected */
	bool connecting;  /* conn is being made (PQconnectPoll) */
	bool ready;       /* conn is made and set up */
	char *conninfo;   /* the URL: may hold a password, wiped on close */
	int wait_ms;      /* lock waits (lock_timeout) and the least answer deadline */
	int set_wait;     /* the lock_timeout the connection has, -1 unknown */
	uint64_t retry_at; /* monotonic ms before which no new connection is tried */
	int backoff_ms;
	char why[200];    /* why the last connection failed, for the calls refused meanwhile */
	bool id_int;      /* whatsapp_sessions.id is an integer type: new ids come from the app's default */
	bool id_known;
	PostgresPollingStatusType poll_want; /* while connecting: what the last PQconnectPoll asked for */
};

static void
pg_drop(struct pg *pg, const char *why)
{
	if (pg->conn != NULL)
		PQfinish(pg->conn);
	pg->conn = NULL;
	pg->connecting = pg->ready = false;
	pg->set_wait = -1;
	if (why != NULL)
		snprintf(pg->why, sizeof(pg->why), "%s", why);
	pg->backoff_ms = pg->backoff_ms == 0 ? PG_BACKOFF_MIN_MS
	                 : pg->backoff_ms * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS
	                                                         : pg->backoff_ms * 2;
	pg->retry_at = wg_now_ms() + (uint64_t)pg->backoff_ms;
}

/* libpq's message, on one line, without the "ERROR:  " prefix. */
static void
one_line(char *out, size_t size, const char *msg)
{
	if (msg == NULL)
		msg = "";
	if (strncmp(msg, "ERROR:  ", 8) == 0)
		msg += 8;
	size_t n = 0;
	for (; *msg != '\0' && n + 1 < size; msg++)
		out[n++] = *msg == '\n' || *msg == '\r' || *msg == '\t' ? ' ' : *msg;
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

/*
 * Waits until the connection's socket is ready for events (POLLIN, POLLOUT or
 * both, as libpq wants), or the deadline. Returns 1 ready, 0 deadline, WG_EIO
 * on a poll error.
 */
static int
pg_wait(PGconn *c, short events, uint64_t deadline)
{
	uint64_t now = wg_now_ms();
	if (now >= deadline)
		return 0;
	struct pollfd p = {.fd = PQsocket(c), .events = events};
	if (p.fd < 0)
		return WG_EIO;
	int n;
	do
		n = poll(&p, 1, (int)(deadline - now));
	while (n < 0 && errno == EINTR);
	return n < 0 ? WG_EIO : n;
}

static void
ignore_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static int pg_exec(struct store *st, const char *op, const char *sql, int n,
                   const char *const *vals, PGresult **out, uint64_t deadline);

/*
 * Makes the connection ready, or carries on making it, until the deadline.
 * A connection still being made when the deadline passes is kept, and the
 * next call carries on. Returns 0 when ready.
 */
static int
pg_ready(struct store *st, uint64_t deadline)
{
	struct pg *pg = store__state(st);
	if (pg->ready)
		return 0;
	if (pg->conn == NULL) {
		if (wg_now_ms() < pg->retry_at)
			return store__fail(st, WG_EIO, "postgres: not connected (%s); retrying",
			                   pg->why);
		const char *const keys[] = {"dbname", "fallback_application_name", NULL};
		const char *const vals[] = {pg->conninfo, "wagate", NULL};
		pg->conn = PQconnectStartParams(keys, vals, 1);
		if (pg->conn == NULL) {
			pg_drop(pg, "out of memory");
			return store__fail(st, WG_EIO, "postgres: cannot allocate a connection");
		}
		if (PQstatus(pg->conn) == CONNECTION_BAD) {
			char msg[200];
			one_line(msg, sizeof(msg), PQerrorMessage(pg->conn));
			pg_drop(pg, msg);
			return store__fail(st, WG_EIO, "postgres: cannot connect: %s", msg);
		}
		pg->connecting = true;
		pg->poll_want = PGRES_POLLING_WRITING;
	}
	if (pg->connecting) {
		/*
		 * As libpq asks: wait for the socket in the direction the last
		 * PQconnectPoll wanted (writing, before the first), then poll. A
		 * connection still being made at the deadline is carried on by the
		 * next call from the same point: polling before the socket is ready
		 * would make libpq write on a socket that is not connected yet.
		 */
		PostgresPollingStatusType ps = pg->poll_want;
		for (;;) {
			int r = pg_wait(pg->conn, ps == PGRES_POLLING_WRITING ? POLLOUT : POLLIN, deadline);
			if (r == 0) {
				pg->poll_want = ps;
				return store__fail(st, WG_ETIMEDOUT,
				                   "postgres: still connecting; retrying");
			}
			if (r < 0) {
				ps = PGRES_POLLING_FAILED;
				break;
			}
			ps = PQconnectPoll(pg->conn);
			if (ps == PGRES_POLLING_OK || ps == PGRES_POLLING_FAILED)
				break;
		}
		if (ps != PGRES_POLLING_OK) {
			char msg[200];
			one_line(msg, sizeof(msg), PQerrorMessage(pg->conn));
			pg_drop(pg, msg);
			return store__fail(st, WG_EIO, "postgres: cannot connect: %s", msg);
		}
		pg->connecting = false;
		/* NOTICEs ("relation already exists, skipping") would go to stderr. */
		PQsetNoticeProcessor(pg->conn, ignore_notice, NULL);
		if (PQsetnonblocking(pg->conn, 1) != 0) {
			pg_drop(pg, "cannot make the connection non-blocking");
			return store__fail(st, WG_EIO, "postgres: %s", pg->why);
		}
		/*
		 * Timestamps come back as ISO text in UTC whatever the server's
		 * settings, so one parser reads them. A transaction of ours never
		 * waits between its statements, so one left open longer is a
		 * client that was cut off: the server ends it, and the locks it
		 * held (another node's leases among them) go with it.
		 */
		pg->ready = true;
		int rc = pg_exec(st, "set up the connection",
		                 "SET TimeZone TO 'UTC'; SET DateStyle TO 'ISO, YMD';"
		                 " SET idle_in_transaction_session_timeout TO " PG_IDLE_TX_MS_STR,
		                 0, NULL, NULL,
		                 deadline > wg_now_ms() + PG_ANSWER_MS ? deadline
		                                                       : wg_now_ms() + PG_ANSWER_MS);
		if (rc < 0) {
			pg_drop(pg, "the connection could not be set up");
			return rc;
		}
		pg->backoff_ms = 0;
	}
	return 0;
}

/* Maps a failed result to our codes, keeping PostgreSQL's message (it names no values). */
static int
pg_result_fail(struct store *st, PGresult *r, const char *op)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	int code = WG_EIO;
	if (state != NULL) {
		if (strcmp(state, "55P03") == 0 || strcmp(state, "40001") == 0 ||
		    strcmp(state, "40P01") == 0 || strcmp(state, "57014") == 0)
			code = WG_ETIMEDOUT; /* lock_timeout, serialization, deadlock, cancelled */
		else if (strcmp(state, "23503") == 0)
			code = WG_ENOTFOUND; /* a child row for a session that is gone */
		else if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
			code = WG_EINVAL; /* constraints, values the column's type refuses */
		else if (strncmp(state, "42", 2) == 0)
			code = WG_ESTATE; /* tables or columns not as wagate expects */
	}
	char msg[200];
	one_line(msg, sizeof(msg), PQresultErrorMessage(r));
	return store__fail(st, code, "postgres: %s: %s", op, msg);
}

/*
 * Runs one command (or, without parameters, several) and waits for its
 * results until the deadline: *out gets the last one when out is not NULL.
 * Values are text or NULL. A deadline passing drops the connection: the
 * server then rolls back whatever the command had begun.
 */
static int
pg_exec(struct store *st, const char *op, const char *sql, int n, const char *const *vals,
        PGresult **out, uint64_t deadline)
{
	struct pg *pg = store__state(st);
	if (out != NULL)
		*out = NULL;
	int rc = pg_ready(st, deadline);
	if (rc < 0)
		return rc;
	int sent = n > 0 || vals != NULL ? PQsendQueryParams(pg->conn, sql, n, NULL, vals, NULL,
	                                                     NULL, 0)
	                                 : PQsendQuery(pg->conn, sql);
	if (!sent)
		goto broken;
	for (;;) {
		int f = PQflush(pg->conn);
		if (f == 0)
			break;
		if (f < 0)
			goto broken;
		int r = pg_wait(pg->conn, POLLIN | POLLOUT, deadline); /* PQflush: either */
		if (r == 0)
			goto late;
		if (r < 0 || !PQconsumeInput(pg->conn))
			goto broken;
	}
	PGresult *last = NULL;
	rc = 0;
	for (;;) {
		while (PQisBusy(pg->conn)) {
			int r = pg_wait(pg->conn, POLLIN, deadline);
			if (r == 0) {
				PQclear(last);
				goto late;
			}
			if (r < 0 || !PQconsumeInput(pg->conn)) {
				PQclear(last);
				goto broken;
			}
		}
		PGresult *res = PQgetResult(pg->conn);
		if (res == NULL)
			break;
		ExecStatusType s = PQresultStatus(res);
		if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_EMPTY_QUERY) {
			if (rc == 0)
				rc = pg_result_fail(st, res, op);
			PQclear(res);
			continue;
		}
		PQclear(last);
		last = res;
	}
	if (PQstatus(pg->conn) == CONNECTION_BAD) {
		PQclear(last);
		goto broken;
	}
	if (rc == 0 && out != NULL)
		*out = last;
	else
		PQclear(last);
	return rc;
late:
	pg_drop(pg, "the server did not answer in time");
	return store__fail(st, WG_ETIMEDOUT, "postgres: %s: no answer in time; reconnecting", op);
broken: {
	char msg[200];
	one_line(msg, sizeof(msg), PQerrorMessage(pg->conn));
	pg_drop(pg, msg);
	return store__fail(st, WG_EIO, "postgres: %s: connection lost: %s", op, msg);
}
}

/*
 * The deadline of an ordinary call's answer: the lock wait plus the answer's
 * own time, so a lock held elsewhere ends with the server's clean lock_timeout
 * error rather than with this client giving up on the connection.
 */
static uint64_t
deadline_of(struct pg *pg)
{
	return wg_now_ms() + (uint64_t)pg->wait_ms + PG_ANSWER_MS;
}

/* An ordinary call: makes sure the connection's lock_timeout is the store's wait, then runs. */
static int
run(struct store *st, const char *op, const char *sql, int n, const char *const *vals,
    PGresult **out)
{
	struct pg *pg = store__state(st);
	int rc = pg_ready(st, deadline_of(pg));
	if (rc < 0)
		return rc;
	/* Counted from now: making the connection may have used the first deadline up. */
	uint64_t deadline = deadline_of(pg);
	if (pg->set_wait != pg->wait_ms) {
		char sql_wait[64];
		snprintf(sql_wait, sizeof(sql_wait), "SET lock_timeout TO %d", pg->wait_ms);
		if ((rc = pg_exec(st, op, sql_wait, 0, NULL, NULL, deadline)) < 0)
			return rc;
		pg->set_wait = pg->wait_ms;
	}
	return pg_exec(st, op, sql, n, vals, out, deadline);
}

/* Runs a command that returns no rows; *changed (may be NULL) gets the rows it touched. */
static int
run_cmd(struct store *st, const char *op, const char *sql, int n, const char *const *vals,
        int *changed)
{
	PGresult *r;
	int rc = run(st, op, sql, n, vals, &r);
	if (rc < 0)
		return rc;
	if (changed != NULL)
		*changed = atoi(PQcmdTuples(r));
	PQclear(r);
	return 0;
}

/* Ends a transaction: COMMIT when rc is 0, else ROLLBACK (keeping rc and its message). */
static int
end_tx(struct store *st, int rc, const char *op)
{
	struct pg *pg = store__state(st);
	if (rc == 0 && pg->ready && PQtransactionStatus(pg->conn) == PQTRANS_INERROR)
		/* A statement failed and was taken for "not found": COMMIT would roll back in silence. */
		rc = store__fail(st, WG_EINVAL, "postgres: %s: a statement failed inside the transaction",
		                 op);
	if (rc == 0)
		return run_cmd(st, op, "COMMIT", 0, NULL, NULL);
	if (pg->ready && PQtransactionStatus(pg->conn) != PQTRANS_IDLE) {
		char keep[256];
		snprintf(keep, sizeof(keep), "%s", store_errmsg(st));
		if (pg_exec(st, op, "ROLLBACK", 0, NULL, NULL, deadline_of(pg)) < 0)
			pg_drop(pg, "a rollback failed");
		store__fail(st, rc, "%s", keep);
	}
	return rc;
}

/* ---- values ---- */

static const char *
ts_text(char buf[32], int64_t ms)
{
	if (ms == 0)
		return NULL;
	return store__ts_format(buf, ms) == 0 ? buf : NULL;
}

/* A lower bound in time: 0 is the epoch, not NULL. */
static const char *
since_text(char buf[32], int64_t ms)
{
	store__ts_format(buf, ms);
	return buf;
}

static const char *
int_text(char buf[24], long long v)
{
	snprintf(buf, 24, "%lld", v);
	return buf;
}

/* ---- rows ---- */

struct row {
	struct store *st;
	PGresult *r;
	int i;
	const char *table;
	char id[STORE_ID_LEN + 1];
};

static int
row_bad(struct row *r, int code, const char *col, const char *problem)
{
	return store__fail(r->st, code, "%s row '%s': %s %s", r->table, r->id, col, problem);
}

static bool
is_null(struct row *r, int c)
{
	return PQgetisnull(r->r, r->i, c);
}

static int
col_text(struct row *r, int c, const char *col, size_t max, bool nullable, char **out)
{
	*out = NULL;
	if (is_null(r, c))
		return nullable ? 0 : row_bad(r, WG_EINVAL, col, "is NULL");
	size_t n = (size_t)PQgetlength(r->r, r->i, c);
	if (n > max)
		return row_bad(r, WG_ELIMIT, col, "is too long");
	*out = wg_memdup(PQgetvalue(r->r, r->i, c), n + 1);
	return 0;
}

static int
col_word(struct row *r, int c, const char *col, char *out, size_t size, bool nullable)
{
	out[0] = '\0';
	if (is_null(r, c))
		return nullable ? 0 : row_bad(r, WG_EINVAL, col, "is NULL");
	size_t n = (size_t)PQgetlength(r->r, r->i, c);
	if (n == 0 || n >= size)
		return row_bad(r, WG_EINVAL, col, "is empty or too long");
	memcpy(out, PQgetvalue(r->r, r->i, c), n + 1);
	return 0;
}

/* boolean reads as t/f; an integer column the app chose as 0/1. */
static int
col_bool(struct row *r, int c, const char *col, int *out)
{
	const char *v = is_null(r, c) ? "" : PQgetvalue(r->r, r->i, c);
	if (strcmp(v, "t") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*out = 1;
	else if (strcmp(v, "f") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*out = 0;
	else
		return row_bad(r, WG_EINVAL, col, "is not a boolean");
	return 0;
}

static int
col_ts(struct row *r, int c, const char *col, bool nullable, int64_t *out)
{
	*out = 0;
	if (is_null(r, c))
		return nullable ? 0 : row_bad(r, WG_EINVAL, col, "is NULL");
	size_t n = (size_t)PQgetlength(r->r, r->i, c);
	if (n > 64 || store__ts_parse(PQgetvalue(r->r, r->i, c), n, out) < 0)
		return row_bad(r, WG_EINVAL, col, "is not an ISO 8601 timestamp");
	return 0;
}

static int
col_id(struct row *r, int c, char *out)
{
	const char *p = PQgetvalue(r->r, r->i, c);
	size_t n = (size_t)PQgetlength(r->r, r->i, c);
	if (is_null(r, c) || !store__id_valid(p, n))
		return store__fail(r->st, WG_EINVAL,
		                   "%s: a row's id is not text of 1 to %d printable characters",
		                   r->table, STORE_ID_LEN);
	memcpy(out, p, n + 1);
	memcpy(r->id, p, n + 1);
	return 0;
}

static int
read_session(struct store *st, PGresult *res, int i, struct store_session *s)
{
	struct row r = {.st = st, .r = res, .i = i, .table = "whatsapp_sessions", .id = "?"};
	memset(s, 0, sizeof(*s));
	int rc;
	if ((rc = col_id(&r, 0, s->id)) < 0 ||
	    (rc = col_text(&r, 1, "user_id", STORE_TEXT_MAX, true, &s->user_id)) < 0 ||
	    (rc = col_text(&r, 2, "session_name", STORE_TEXT_MAX, false, &s->session_name)) < 0 ||
	    (rc = col_text(&r, 3, "phone_number", STORE_TEXT_MAX, true, &s->phone_number)) < 0 ||
	    (rc = col_text(&r, 4, "auth_state", STORE_AUTH_MAX, true, &s->auth_state)) < 0 ||
	    (rc = col_bool(&r, 5, "is_active", &s->is_active)) < 0 ||
	    (rc = col_bool(&r, 6, "auto_connect", &s->auto_connect)) < 0)
		goto bad;
	if (col_word(&r, 7, "connection_status", s->connection_status,
	             sizeof(s->connection_status), true) < 0 ||
	    !store_status_valid(s->connection_status)) {
		rc = row_bad(&r, WG_EINVAL, "connection_status", "is not a known status");
		goto bad;
	}
	if ((rc = col_text(&r, 8, "last_error", STORE_TEXT_MAX, true, &s->last_error)) < 0 ||
	    (rc = col_ts(&r, 9, "last_connected_at", true, &s->last_connected_at)) < 0 ||
	    (rc = col_ts(&r, 10, "last_message_at", true, &s->last_message_at)) < 0 ||
	    (rc = col_ts(&r, 11, "created_at", false, &s->created_at)) < 0 ||
	    (rc = col_ts(&r, 12, "updated_at", false, &s->updated_at)) < 0)
		goto bad;
	return 0;
bad:
	store_session_free(s);
	return rc;
}

static int
read_attempt(struct store *st, PGresult *res, int i, struct store_attempt *a)
{
	struct row r = {.st = st, .r = res, .i = i, .table = "whatsapp_session_recovery_attempts"};
	memset(a, 0, sizeof(*a));
	snprintf(r.id, sizeof(r.id), "%s", PQgetvalue(res, i, 0));
	a->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	int rc;
	if ((rc = col_word(&r, 1, "session_id", a->session_id, sizeof(a->session_id), false)) < 0 ||
	    (rc = col_ts(&r, 2, "attempted_at", false, &a->at)) < 0 ||
	    (rc = col_word(&r, 3, "trigger_type", a->trigger, sizeof(a->trigger), false)) < 0 ||
	    (rc = col_word(&r, 4, "action", a->action, sizeof(a->action), false)) < 0 ||
	    (rc = col_word(&r, 5, "result", a->result, sizeof(a->result), false)) < 0 ||
	    (rc = col_text(&r, 6, "detail", STORE_TEXT_MAX, true, &a->detail)) < 0) {
		free(a->detail);
		a->detail = NULL;
		return rc;
	}
	return 0;
}

static int
read_status_change(struct store *st, PGresult *res, int i, struct store_status_change *c)
{
	struct row r = {.st = st, .r = res, .i = i, .table = "whatsapp_session_status_history"};
	memset(c, 0, sizeof(*c));
	snprintf(r.id, sizeof(r.id), "%s", PQgetvalue(res, i, 0));
	c->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	int rc;
	if ((rc = col_word(&r, 1, "session_id", c->session_id, sizeof(c->session_id), false)) <
	        0 ||
	    (rc = col_ts(&r, 2, "changed_at", false, &c->at)) < 0 ||
	    (rc = col_word(&r, 3, "status", c->status, sizeof(c->status), false)) < 0 ||
	    (rc = col_text(&r, 4, "reason", STORE_TEXT_MAX, true, &c->reason)) < 0)
		goto bad;
	if (!store_status_valid(c->status)) {
		rc = row_bad(&r, WG_EINVAL, "status", "is not a known status");
		goto bad;
	}
	return 0;
bad:
	free(c->reason);
	c->reason = NULL;
	return rc;
}

/* ---- open, close, migrate ---- */

static void pg_close(struct store *st);

/* Opens by the whole URL: libpq reads postgres:// and postgresql:// URLs and their options. */
static int
pg_open_url(struct store *st, const char *url, char *err, size_t errlen)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &msg);
	if (opts == NULL) {
		char line[200];
		one_line(line, sizeof(line), msg ? msg : "out of memory");
		snprintf(err, errlen, "invalid PostgreSQL URL: %s", line);
		PQfreemem(msg);
		return WG_EINVAL;
	}
	PQconninfoFree(opts);
	struct pg *pg = wg_calloc(1, sizeof(*pg));
	pg->conninfo = wg_strdup(url);
	pg->wait_ms = PG_WAIT_MS;
	pg->set_wait = -1;
	store__set_state(st, pg);
	/*
	 * The first connection is made now and waited for, so a wrong URL,
	 * password or host stops the start with libpq's reason.
	 */
	if (pg_ready(st, wg_now_ms() + PG_START_MS) < 0) {
		snprintf(err, errlen, "%s", store_errmsg(st));
		pg_close(st); /* the caller frees the store, not its state */
		return WG_EIO;
	}
	return 0;
}

static void
pg_close(struct store *st)
{
	struct pg *pg = store__state(st);
	if (pg == NULL)
		return;
	if (pg->conn != NULL)
		PQfinish(pg->conn);
	wg_wipe(pg->conninfo, strlen(pg->conninfo));
	free(pg->conninfo);
	free(pg);
	store__set_state(st, NULL);
}

static void
pg_set_wait(struct store *st, int ms)
{
	struct pg *pg = store__state(st);
	pg->wait_ms = ms;
}

/* Finds whatsapp_sessions.id's type; *type "" when there is no table yet. */
static int
id_type(struct store *st, char *type, size_t size)
{
	struct pg *pg = store__state(st);
	PGresult *r;
	type[0] = '\0';
	int rc = run(st, "read the sessions table",
	             "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
	             " WHERE attrelid = to_regclass('whatsapp_sessions') AND attname = 'id'"
	             " AND NOT attisdropped",
	             0, NULL, &r);
	if (rc < 0)
		return rc;
	if (PQntuples(r) == 1)
		snprintf(type, size, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	if (type[0] == '\0')
		return 0;
	pg->id_int = strcmp(type, "integer") == 0 || strcmp(type, "bigint") == 0 ||
	             strcmp(type, "smallint") == 0;
	pg->id_known = true;
	if (pg->id_int || strcmp(type, "text") == 0 || strcmp(type, "uuid") == 0 ||
	    strncmp(type, "character varying", 17) == 0 || strncmp(type, "character(", 10) == 0)
		return 0;
	return store__fail(st, WG_ESTATE,
	                   "whatsapp_sessions.id is of type %s; wagate addresses rows by a text, "
	                   "uuid or integer id",
	                   type);
}

/* The ALTER TABLE statements adoption needs, appended to *sql (malloc'd). */
static int
adopt_sql(struct store *st, char **sql)
{
	PGresult *r;
	int rc = run(st, "read the sessions table",
	             "SELECT attname::text FROM pg_attribute WHERE attrelid ="
	             " to_regclass('whatsapp_sessions') AND attnum > 0 AND NOT attisdropped",
	             0, NULL, &r);
	if (rc < 0)
		return rc;
	int n = PQntuples(r);
	bool have[PG_NADOPT] = {false};
	bool id = false;
	for (int i = 0; i < n; i++) {
		const char *name = PQgetvalue(r, i, 0);
		id |= strcmp(name, "id") == 0;
		for (size_t k = 0; k < PG_NADOPT; k++)
			have[k] |= strcmp(name, adopt_cols[k].name) == 0;
	}
	PQclear(r);
	if (n == 0)
		return 0; /* no table yet: migration 1 creates it */
	if (!id)
		return store__fail(st, WG_ESTATE, "whatsapp_sessions has no id column: wagate cannot "
		                                  "address its rows");
	for (size_t k = 0; k < PG_NADOPT; k++) {
		if (have[k])
			continue;
		char line[160];
		snprintf(line, sizeof(line), "ALTER TABLE whatsapp_sessions ADD COLUMN %s %s;\n",
		         adopt_cols[k].name, adopt_cols[k].def);
		size_t old = *sql ? strlen(*sql) : 0;
		*sql = wg_realloc(*sql, old + strlen(line) + 1);
		memcpy(*sql + old, line, strlen(line) + 1);
	}
	return 0;
}

/* A migration's SQL in PostgreSQL's types, session ids in the app's id type (malloc'd). */
static char *
migration_sql(const struct store_migration *m, const char *idtype)
{
	struct store_dialect d = store_pg_dialect;
	if (idtype[0] != '\0')
		d.id = idtype;
	return store_schema_sql(m, &d);
}

/*
 * The trigger that tells wagate at once when the web app inserts, deletes or
 * changes one of its own columns of a session (not when only wagate's columns
 * change: those are wagate's own writes). The payload is the row's id.
 */
static const char notify_sql[] =
    "CREATE OR REPLACE FUNCTION wagate_sessions_notify() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "	IF TG_OP = 'UPDATE' AND NEW.is_active IS NOT DISTINCT FROM OLD.is_active\n"
    "	   AND NEW.auto_connect IS NOT DISTINCT FROM OLD.auto_connect\n"
    "	   AND NEW.session_name IS NOT DISTINCT FROM OLD.session_name\n"
    "	   AND NEW.user_id IS NOT DISTINCT FROM OLD.user_id\n"
    "	   AND NEW.auth_state IS NOT DISTINCT FROM OLD.auth_state THEN\n"
    "		RETURN NULL;\n"
    "	END IF;\n"
    "	PERFORM pg_notify('" STORE_NOTIFY_CHANNEL "', CASE WHEN TG_OP = 'DELETE' THEN OLD.id::text"
    " ELSE NEW.id::text END);\n"
    "	RETURN NULL;\n"
    "END $$;\n"
    "DROP TRIGGER IF EXISTS wagate_sessions_notify ON whatsapp_sessions;\n"
    "CREATE TRIGGER wagate_sessions_notify AFTER INSERT OR UPDATE OR DELETE ON whatsapp_sessions\n"
    "	FOR EACH ROW EXECUTE FUNCTION wagate_sessions_notify();\n";

static void
append(char **sql, const char *a, const char *b)
{
	size_t old = *sql ? strlen(*sql) : 0, la = strlen(a), lb = strlen(b);
	*sql = wg_realloc(*sql, old + la + lb + 1);
	memcpy(*sql + old, a, la);
	memcpy(*sql + old + la, b, lb + 1);
}

/* Which migrations are recorded: has[i] for store_migrations[i]; none when the table is missing. */
static int
applied_versions(struct store *st, bool has[PG_NMIGRATIONS_MAX], long long *max)
{
	PGresult *r;
	if (PG_NMIGRATIONS > PG_NMIGRATIONS_MAX)
		return store__fail(st, WG_ESTATE, "more migrations than this build has room for");
	memset(has, 0, sizeof(bool) * PG_NMIGRATIONS);
	*max = 0;
	int rc = run(st, "migrate", "SELECT version FROM " PG_MIGRATIONS, 0, NULL, &r);
	if (rc == WG_ESTATE) /* the table does not exist yet */
		return 0;
	if (rc < 0)
		return rc;
	for (int i = 0; i < PQntuples(r); i++) {
		long long v = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		if (v > *max)
			*max = v;
		for (int k = 0; k < PG_NMIGRATIONS; k++)
			if (store_migrations[k].version == v)
				has[k] = true;
	}
	PQclear(r);
	return 0;
}

static int
pg_migrate_plan(struct store *st, char **out)
{
	*out = NULL;
	char *sql = NULL, idtype[64];
	bool has[PG_NMIGRATIONS_MAX];
	long long max;
	int rc;
	if ((rc = id_type(st, idtype, sizeof(idtype))) < 0 || (rc = adopt_sql(st, &sql)) < 0 ||
	    (rc = applied_versions(st, has, &max)) < 0) {
		free(sql);
		return rc;
	}
	for (int i = 0; i < PG_NMIGRATIONS; i++) {
		if (has[i])
			continue;
		char head[96];
		snprintf(head, sizeof(head), "-- migration %d: %s\n", store_migrations[i].version,
		         store_migrations[i].name);
		char *body = migration_sql(&store_migrations[i], idtype);
		append(&sql, head, body);
		free(body);
	}
	/* The trigger is made anew on every migrate (idempotent), so the plan always shows it. */
	append(&sql, "-- the trigger that notifies wagate of the app's writes (made again each migrate)\n",
	       notify_sql);
	*out = sql;
	return 0;
}

/* One migration (or the adoption, m NULL) in its own transaction, under the migration lock. */
static int
migrate_step(struct store *st, const struct store_migration *m, bool *ran)
{
	*ran = false;
	int rc = run_cmd(st, "migrate", "BEGIN", 0, NULL, NULL);
	if (rc < 0)
		return rc;
	/* Several nodes start together: one migrates, the others wait and then find it done. */
	rc = run_cmd(st, "migrate", "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ")", 0, NULL,
	             NULL);
	char idtype[64] = "";
	if (rc == 0)
		rc = id_type(st, idtype, sizeof(idtype));
	if (rc == 0 && m == NULL) {
		char *sql = NULL;
		rc = adopt_sql(st, &sql);
		if (rc == 0 && sql != NULL) {
			rc = run_cmd(st, "adopting whatsapp_sessions", sql, 0, NULL, NULL);
			*ran = rc == 0;
		}
		free(sql);
	} else if (rc == 0) {
		char v[24];
		const char *p[] = {int_text(v, m->version)};
		PGresult *r;
		rc = run(st, "migrate", "SELECT 1 FROM " PG_MIGRATIONS " WHERE version = $1", 1, p, &r);
		if (rc == 0) {
			bool done = PQntuples(r) > 0;
			PQclear(r);
			if (!done) {
				char *sql = migration_sql(m, idtype);
				char op[96];
				snprintf(op, sizeof(op), "migration %d (%s)", m->version, m->name);
				rc = run_cmd(st, op, sql, 0, NULL, NULL);
				free(sql);
				char now[32];
				const char *q[] = {v, m->name, ts_text(now, (int64_t)wg_wall_ms())};
				if (rc == 0)
					rc = run_cmd(st, "migrate",
					             "INSERT INTO " PG_MIGRATIONS
					             " (version, name, applied_at) VALUES ($1, $2, $3)",
					             3, q, NULL);
				*ran = rc == 0;
			}
		}
	}
	rc = end_tx(st, rc, "migrate");
	if (rc < 0)
		*ran = false;
	return rc;
}

static int
pg_migrate_body(struct store *st, int *applied)
{
	int rc;
	*applied = 0;
	if ((rc = run_cmd(st, "migrate",
	                  "CREATE TABLE IF NOT EXISTS " PG_MIGRATIONS " (version BIGINT PRIMARY KEY,"
	                  " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)",
	                  0, NULL, NULL)) < 0)
		return rc;
	bool has[PG_NMIGRATIONS_MAX];
	long long max;
	if ((rc = applied_versions(st, has, &max)) < 0)
		return rc;
	if (max > store_migrations[PG_NMIGRATIONS - 1].version)
		return store__fail(st, WG_ESTATE,
		                   "database schema is at version %lld, newer than this wagate "
		                   "knows (%d); upgrade wagate",
		                   max, store_migrations[PG_NMIGRATIONS - 1].version);
	bool ran;
	if ((rc = migrate_step(st, NULL, &ran)) < 0)
		return rc;
	*applied += ran;
	for (int i = 0; i < PG_NMIGRATIONS; i++) {
		if ((rc = migrate_step(st, &store_migrations[i], &ran)) < 0)
			return rc;
		*applied += ran;
	}
	/*
	 * The trigger, in its own transaction under the migration lock: a database
	 * user without the right to make it loses nothing but the speed (the watch
	 * polls); said once, here.
	 */
	rc = run_cmd(st, "notify trigger", "BEGIN", 0, NULL, NULL);
	if (rc == 0)
		rc = run_cmd(st, "notify trigger", "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ")", 0,
		             NULL, NULL);
	if (rc == 0)
		rc = run_cmd(st, "notify trigger", notify_sql, 0, NULL, NULL);
	if ((rc = end_tx(st, rc, "notify trigger")) != 0)
		log_warn("store", "cannot make the trigger that notifies wagate of the app's writes "
		                  "(the watch polls instead): %s", store_errmsg(st));
	/* Every column wagate reads must be there: one clear error now, not failures later. */
	PGresult *r;
	if ((rc = run(st, "check the tables", "SELECT " SESSION_COLS " FROM whatsapp_sessions LIMIT 0",
	              0, NULL, &r)) < 0)
		return store__fail(st, WG_ESTATE, "tables do not match what wagate expects: %s",
		                   store_errmsg(st));
	PQclear(r);
	return 0;
}

/* Before anything is served: waits longer for locks (another node's migration). */
static int
pg_migrate(struct store *st, int *applied)
{
	struct pg *pg = store__state(st);
	int keep = pg->wait_ms;
	pg->wait_ms = PG_START_MS;
	int rc = pg_migrate_body(st, applied);
	pg->wait_ms = keep;
	return rc;
}

static int
pg_ping(struct store *st)
{
	return run_cmd(st, "ping", "SELECT 1", 0, NULL, NULL);
}

/* A row no node holds a live lease on: another node's connected sessions are left alone. */
#define NOT_LEASED                                                                                 \
	"NOT EXISTS (SELECT 1 FROM wagate_leases l WHERE l.session_id = whatsapp_sessions.id"      \
	" AND l.expires_at > now())"

static int
pg_reconcile(struct store *st, int64_t now, int *changed)
{
	struct pg *pg = store__state(st);
	int keep = pg->wait_ms;
	pg->wait_ms = PG_START_MS;
	char ts[32];
	const char *p[] = {ts_text(ts, now)};
	int rc = run_cmd(st, "reconcile", "BEGIN", 0, NULL, NULL);
	if (rc == 0)
		rc = run_cmd(st, "reconcile",
		             "INSERT INTO whatsapp_session_status_history"
		             " (session_id, changed_at, status, reason)"
		             " SELECT id, $1::timestamptz, 'disconnected', 'reconciled at startup: the"
		             " previous wagate process stopped while the session was ' ||"
		             " connection_status::text FROM whatsapp_sessions"
		             " WHERE connection_status IN ('connecting', 'qr_pending', 'connected')"
		             " AND " NOT_LEASED,
		             1, p, NULL);
	if (rc == 0)
		rc = run_cmd(st, "reconcile",
		             "UPDATE whatsapp_sessions SET connection_status = 'disconnected',"
		             " updated_at = $1"
		             " WHERE connection_status IN ('connecting', 'qr_pending', 'connected')"
		             " AND " NOT_LEASED,
		             1, p, changed);
	rc = end_tx(st, rc, "reconcile");
	if (rc < 0)
		*changed = 0;
	pg->wait_ms = keep;
	return rc;
}

/* ---- sessions ---- */

static int
pg_list(struct store *st, const struct store_filter *f, struct store_session **out, size_t *n)
{
	bool paged = f->after_id != NULL || f->limit != 0 || f->by_created || f->by_updated;
	const char *cols = f->without_auth || paged ? SESSION_COLS_LIGHT : SESSION_COLS;
	char sql[1024], lim[24];
	const char *p[3];
	int np = 0;
	if (!paged) {
		snprintf(sql, sizeof(sql), "SELECT %s FROM whatsapp_sessions%s ORDER BY created_at, id",
		         cols, f->autoconnect ? AUTO_WHERE : "");
	} else {
		/* Keyset paging; the first page has no key to start after. */
		const char *key = f->by_updated ? "updated_at, id" : f->by_created ? "created_at, id" : "id";
		const char *after_ts = f->by_updated ? f->after_updated : f->after_created;
		bool first = f->by_updated || f->by_created ? after_ts == NULL || after_ts[0] == '\0'
		                                            : f->after_id == NULL || f->after_id[0] == '\0';
		const char *where = "";
		if (!first && (f->by_updated || f->by_created) && (f->after_id == NULL || !f->after_id[0])) {
			/* A mark without an id (the watch's first): from that time on ('' is no uuid or integer). */
			p[np++] = after_ts;
			where = f->by_updated ? " WHERE updated_at >= $1" : " WHERE created_at >= $1";
		} else if (!first && (f->by_updated || f->by_created)) {
			p[np++] = after_ts;
			p[np++] = f->after_id;
			where = f->by_updated ? " WHERE (updated_at, id) > ($1, $2)"
			                      : " WHERE (created_at, id) > ($1, $2)";
		} else if (!first) {
			p[np++] = f->after_id;
			where = " WHERE id > $1";
		}
		char limit[48] = "";
		if (f->limit) {
			p[np] = int_text(lim, (long long)f->limit);
			np++;
			snprintf(limit, sizeof(limit), " LIMIT $%d", np);
		}
		snprintf(sql, sizeof(sql), "SELECT %s FROM whatsapp_sessions%s ORDER BY %s%s", cols,
		         where, key, limit);
		store__set_cursor(st, NULL, NULL);
	}
	PGresult *r;
	int rc = run(st, "list", sql, np, np ? p : NULL, &r);
	if (rc < 0)
		return rc;
	int rows = PQntuples(r);
	if ((size_t)rows > STORE_LIST_MAX) {
		PQclear(r);
		return store__fail(st, WG_ELIMIT, "more than %u sessions", STORE_LIST_MAX);
	}
	struct store_session *arr = rows ? wg_calloc((size_t)rows, sizeof(*arr)) : NULL;
	size_t len = 0, skipped = 0;
	char first[256] = "";
	for (int i = 0; i < rows; i++) {
		if (paged)
			store__set_cursor(st, PQgetvalue(r, i, 0),
			                  PQgetvalue(r, i, f->by_updated ? 12 : 11));
		rc = read_session(st, r, i, &arr[len]);
		if (rc < 0) {
			/* Bad data in one row: keep its reason, skip it, list the others. */
			if (skipped++ == 0)
				snprintf(first, sizeof(first), "%s", store_errmsg(st));
			continue;
		}
		len++;
	}
	PQclear(r);
	store__set_skipped(st, skipped);
	if (skipped)
		store__fail(st, 0, "skipped %zu session row(s) with bad data; first: %s", skipped, first);
	*out = arr;
	*n = len;
	return 0;
}

/*
 * An id the column's type cannot hold (not a uuid for a uuid column, not a
 * number for an integer one) names no row: not found, not an error.
 */
static int
by_id(struct store *st, int rc, const char *id)
{
	return rc == WG_EINVAL ? store__fail(st, WG_ENOTFOUND, "no session '%s'", id) : rc;
}

static int
pg_get(struct store *st, const char *id, struct store_session *out)
{
	PGresult *r;
	const char *p[] = {id};
	int rc = run(st, "get", "SELECT " SESSION_COLS " FROM whatsapp_sessions WHERE id = $1", 1, p,
	             &r);
	if (rc < 0)
		return by_id(st, rc, id);
	if (PQntuples(r) == 0)
		rc = store__fail(st, WG_ENOTFOUND, "no session '%s'", id);
	else
		rc = read_session(st, r, 0, out);
	PQclear(r);
	return rc;
}

static int
pg_find_name(struct store *st, const char *user_id, const char *name, char id[STORE_ID_LEN + 1])
{
	PGresult *r;
	const char *p[] = {name, user_id};
	int rc = user_id != NULL
	             ? run(st, "find by name",
	                   "SELECT id::text FROM whatsapp_sessions WHERE session_name = $1 AND"
	                   " user_id = $2 ORDER BY created_at, id LIMIT 1",
	                   2, p, &r)
	             : run(st, "find by name",
	                   "SELECT id::text FROM whatsapp_sessions WHERE session_name = $1 AND"
	                   " user_id IS NULL ORDER BY created_at, id LIMIT 1",
	                   1, p, &r);
	if (rc < 0)
		return rc;
	if (PQntuples(r) == 0) {
		rc = store__fail(st, WG_ENOTFOUND, "no session of that name");
	} else {
		const char *v = PQgetvalue(r, 0, 0);
		size_t len = (size_t)PQgetlength(r, 0, 0);
		if (store__id_valid(v, len)) {
			memcpy(id, v, len + 1);
			rc = 0;
		} else {
			rc = store__fail(st, WG_EINVAL, "a session named like this has a bad id");
		}
	}
	PQclear(r);
	return rc;
}

static int
pg_insert(struct store *st, struct store_session *s)
{
	struct pg *pg = store__state(st);
	char ts[4][32];
	const char *p[13] = {
	    s->id,
	    s->user_id,
	    s->session_name,
	    s->phone_number,
	    s->auth_state,
	    s->is_active ? "1" : "0", /* what a boolean and an integer column both take */
	    s->auto_connect ? "1" : "0",
	    s->connection_status[0] != '\0' ? s->connection_status : NULL,
	    s->last_error,
	    ts_text(ts[0], s->last_connected_at),
	    ts_text(ts[1], s->last_message_at),
	    ts_text(ts[2], s->created_at),
	    ts_text(ts[3], s->updated_at),
	};
	if (!pg->id_known) {
		char type[64];
		int rc = id_type(st, type, sizeof(type));
		if (rc < 0)
			return rc;
	}
	/* An integer id comes from the app's sequence; any other kind is a new uuid. */
	bool generated = s->id[0] == '\0' && pg->id_int;
	if (s->id[0] == '\0' && !pg->id_int)
		store_uuid(s->id);
	PGresult *r;
	int rc = generated
	             ? run(st, "insert",
	                   "INSERT INTO whatsapp_sessions (user_id, session_name, phone_number,"
	                   " auth_state, is_active, auto_connect, connection_status, last_error,"
	                   " last_connected_at, last_message_at, created_at, updated_at) VALUES"
	                   " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id::text",
	                   12, p + 1, &r)
	             : run(st, "insert",
	                   "INSERT INTO whatsapp_sessions (id, user_id, session_name, phone_number,"
	                   " auth_state, is_active, auto_connect, connection_status, last_error,"
	                   " last_connected_at, last_message_at, created_at, updated_at) VALUES"
	                   " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
	                   " RETURNING id::text",
	                   13, p, &r);
	if (rc < 0)
		return rc;
	if (generated) {
		const char *v = PQgetvalue(r, 0, 0);
		size_t len = (size_t)PQgetlength(r, 0, 0);
		if (PQntuples(r) != 1 || !store__id_valid(v, len))
			rc = store__fail(st, WG_EINVAL, "insert: the table gave the row a bad id");
		else
			memcpy(s->id, v, len + 1);
	}
	PQclear(r);
	return rc;
}

/*
 * The row's columns in fields, and updated_at. A value the column refuses is
 * WG_EINVAL (and, inside a transaction, the transaction is lost: end_tx says so).
 */
static int
update_row(struct store *st, const char *id, const struct store_session *s, unsigned fields,
           int64_t now)
{
	char sql[640], ts[3][32];
	const char *p[12];
	int np = 0;
	size_t len = (size_t)snprintf(sql, sizeof(sql), "UPDATE whatsapp_sessions SET ");
	for (size_t b = 0; b < sizeof(update_cols) / sizeof(update_cols[0]); b++) {
		if (!(fields & (1u << b)))
			continue;
		const char *v = NULL;
		switch (1u << b) {
		case STORE_F_USER_ID: v = s->user_id; break;
		case STORE_F_SESSION_NAME: v = s->session_name; break;
		case STORE_F_PHONE: v = s->phone_number; break;
		case STORE_F_AUTH: v = s->auth_state; break;
		case STORE_F_ACTIVE: v = s->is_active ? "1" : "0"; break;
		case STORE_F_AUTO: v = s->auto_connect ? "1" : "0"; break;
		case STORE_F_STATUS:
			v = s->connection_status[0] != '\0' ? s->connection_status : NULL;
			break;
		case STORE_F_ERROR: v = s->last_error; break;
		case STORE_F_CONNECTED_AT: v = ts_text(ts[0], s->last_connected_at); break;
		case STORE_F_MESSAGE_AT: v = ts_text(ts[1], s->last_message_at); break;
		}
		p[np++] = v;
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s = $%d, ", update_cols[b], np);
	}
	p[np++] = ts_text(ts[2], now);
	p[np++] = id;
	snprintf(sql + len, sizeof(sql) - len, "updated_at = $%d WHERE id = $%d", np - 1, np);
	int changed = 0;
	int rc = run_cmd(st, "update", sql, np, p, &changed);
	if (rc < 0)
		return rc;
	return changed == 0 ? store__fail(st, WG_ENOTFOUND, "no session '%s'", id) : 0;
}

/* An update by an id from a person: one the column's type cannot hold names no row. */
static int
pg_update(struct store *st, const char *id, const struct store_session *s, unsigned fields,
          int64_t now)
{
	return by_id(st, update_row(st, id, s, fields, now), id);
}

static int
pg_delete(struct store *st, const char *id)
{
	const char *p[] = {id};
	int changed = 0;
	int rc = run_cmd(st, "delete", "DELETE FROM whatsapp_sessions WHERE id = $1", 1, p, &changed);
	if (rc < 0)
		return by_id(st, rc, id);
	return changed == 0 ? store__fail(st, WG_ENOTFOUND, "no session '%s'", id) : 0;
}

/* ---- attempts, status history, settings ---- */

/*
 * Child rows are only inserted while their session exists (a missing one
 * inserts nothing, WG_ENOTFOUND): inside a batch a foreign-key error would
 * abort the whole transaction, where a gone session should only skip itself.
 */
static int
insert_child(struct store *st, const char *op, const char *sql, int n, const char *const *p,
             const char *session_id, int64_t *id)
{
	PGresult *r;
	int rc = run(st, op, sql, n, p, &r);
	if (rc < 0)
		return rc == WG_ENOTFOUND ? store__fail(st, rc, "no session '%s' for the %s",
		                                        session_id, op)
		                          : rc;
	if (PQntuples(r) == 0)
		rc = store__fail(st, WG_ENOTFOUND, "no session '%s' for the %s", session_id, op);
	else
		*id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return rc;
}

static int
pg_add_attempt(struct store *st, struct store_attempt *a)
{
	char ts[32];
	const char *p[] = {a->session_id, ts_text(ts, a->at), a->trigger, a->action, a->result,
	                   a->detail};
	return insert_child(st, "attempt",
	                    "INSERT INTO whatsapp_session_recovery_attempts"
	                    " (session_id, attempted_at, trigger_type, action, result, detail)"
	                    " SELECT id, $2::timestamptz, $3, $4, $5, $6 FROM whatsapp_sessions"
	                    " WHERE id = $1 RETURNING id",
	                    6, p, a->session_id, &a->id);
}

static int
add_status_body(struct store *st, struct store_status_change *c)
{
	char ts[32], keep[24];
	const char *p[] = {c->session_id, ts_text(ts, c->at), c->status, c->reason};
	int rc = insert_child(st, "status change",
	                      "INSERT INTO whatsapp_session_status_history"
	                      " (session_id, changed_at, status, reason)"
	                      " SELECT id, $2::timestamptz, $3, $4 FROM whatsapp_sessions"
	                      " WHERE id = $1 RETURNING id",
	                      4, p, c->session_id, &c->id);
	if (rc < 0)
		return rc;
	const char *q[] = {c->session_id, int_text(keep, STORE_HISTORY_KEEP)};
	return run_cmd(st, "trim status history",
	               "DELETE FROM whatsapp_session_status_history WHERE id IN"
	               " (SELECT id FROM whatsapp_session_status_history WHERE session_id = $1"
	               " ORDER BY changed_at DESC, id DESC OFFSET $2)",
	               2, q, NULL);
}

static int
pg_add_status_change(struct store *st, struct store_status_change *c)
{
	int rc = run_cmd(st, "add status change", "BEGIN", 0, NULL, NULL);
	if (rc < 0)
		return rc;
	return end_tx(st, add_status_body(st, c), "add status change");
}

typedef int (*pg_row_reader)(struct store *st, PGresult *r, int i, void *item);

/* Reads every row of r with read() into a new array of elem-sized items. */
static int
read_rows(struct store *st, PGresult *r, size_t elem, pg_row_reader read,
          void (*free_arr)(void *arr, size_t n), void **out, size_t *n)
{
	int rows = PQntuples(r);
	char *arr = rows ? wg_calloc((size_t)rows, elem) : NULL;
	size_t len = 0;
	int rc = 0;
	for (int i = 0; i < rows; i++) {
		if ((rc = read(st, r, i, arr + len * elem)) < 0)
			break;
		len++;
	}
	PQclear(r);
	if (rc < 0) {
		free_arr(arr, len);
		return rc;
	}
	*out = arr;
	*n = len;
	return 0;
}

static int
read_attempt_any(struct store *st, PGresult *r, int i, void *item)
{
	return read_attempt(st, r, i, item);
}

static void
free_attempts_any(void *arr, size_t n)
{
	store_attempts_free(arr, n);
}

static int
read_status_any(struct store *st, PGresult *r, int i, void *item)
{
	return read_status_change(st, r, i, item);
}

static void
free_history_any(void *arr, size_t n)
{
	store_status_history_free(arr, n);
}

#define ATTEMPT_COLS                                                                               \
	"id::text, session_id::text, attempted_at::text, trigger_type, action, result, detail"

static int
pg_attempts(struct store *st, const char *session_id, int64_t since, size_t limit,
            struct store_attempt **out, size_t *n)
{
	char ts[32], lim[24];
	const char *p[] = {session_id, since_text(ts, since), int_text(lim, (long long)limit)};
	PGresult *r;
	int rc = run(st, "attempts",
	             "SELECT " ATTEMPT_COLS " FROM whatsapp_session_recovery_attempts"
	             " WHERE session_id = $1 AND attempted_at >= $2::timestamptz"
	             " ORDER BY attempted_at DESC, id DESC LIMIT $3",
	             3, p, &r);
	if (rc < 0) {
		if (rc == WG_EINVAL) { /* an id the column's type cannot hold has no attempts */
			*out = NULL;
			*n = 0;
			return 0;
		}
		return rc;
	}
	return read_rows(st, r, sizeof(**out), read_attempt_any, free_attempts_any, (void **)out, n);
}

/* Quotes ids as a PostgreSQL array literal: {"a","b"}; ids are printable ASCII. */
static char *
array_literal(const char *const *ids, size_t nids)
{
	size_t cap = 3;
	for (size_t i = 0; i < nids; i++)
		cap += 2 * strlen(ids[i]) + 3;
	char *out = wg_malloc(cap), *o = out;
	*o++ = '{';
	for (size_t i = 0; i < nids; i++) {
		if (i)
			*o++ = ',';
		*o++ = '"';
		for (const char *c = ids[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				*o++ = '\\';
			*o++ = *c;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

static int
pg_recent_attempts(struct store *st, const char *const *ids, size_t nids, size_t per_session,
                   struct store_attempt **out, size_t *n)
{
	char lim[24];
	char *arr = array_literal(ids, nids);
	const char *p[] = {arr, int_text(lim, (long long)per_session)};
	PGresult *r;
	/*
	 * Each session's newest $2 through the index (LATERAL ... LIMIT), not
	 * every attempt of the page's sessions numbered and filtered. The ids go
	 * through the sessions' own table so $1 takes its id's type (uuid, text
	 * or an integer) as the attempts' session_id has it.
	 */
	int rc = run(st, "recent attempts",
	             "SELECT a.id::text, a.session_id::text, a.attempted_at::text, a.trigger_type,"
	             " a.action, a.result, a.detail FROM whatsapp_sessions w"
	             " CROSS JOIN LATERAL (SELECT x.* FROM whatsapp_session_recovery_attempts x"
	             " WHERE x.session_id = w.id ORDER BY x.attempted_at DESC, x.id DESC LIMIT $2) a"
	             " WHERE w.id = ANY ($1) ORDER BY a.session_id, a.attempted_at DESC, a.id DESC",
	             2, p, &r);
	free(arr);
	if (rc < 0)
		return rc;
	return read_rows(st, r, sizeof(**out), read_attempt_any, free_attempts_any, (void **)out, n);
}

static int
pg_count_attempts(struct store *st, const char *session_id, const char *prefix, int64_t since,
                  int *count)
{
	char ts[32];
	const char *p[] = {session_id, since_text(ts, since), prefix};
	PGresult *r;
	int rc = prefix != NULL
	             ? run(st, "count attempts",
	                   "SELECT count(*) FROM whatsapp_session_recovery_attempts"
	                   " WHERE session_id = $1 AND attempted_at >= $2::timestamptz"
	                   " AND starts_with(trigger_type, $3::text)",
	                   3, p, &r)
	             : run(st, "count attempts",
	                   "SELECT count(*) FROM whatsapp_session_recovery_attempts"
	                   " WHERE session_id = $1 AND attempted_at >= $2::timestamptz",
	                   2, p, &r);
	if (rc < 0) {
		if (rc == WG_EINVAL) {
			*count = 0;
			return 0;
		}
		return rc;
	}
	long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	*count = v > 0x7fffffff ? 0x7fffffff : (int)v;
	PQclear(r);
	return 0;
}

static int
pg_status_history(struct store *st, const char *session_id, int64_t since, size_t limit,
                  struct store_status_change **out, size_t *n)
{
	char ts[32], lim[24];
	const char *p[] = {session_id, since_text(ts, since), int_text(lim, (long long)limit)};
	PGresult *r;
	int rc = run(st, "status history",
	             "SELECT id::text, session_id::text, changed_at::text, status, reason FROM"
	             " (SELECT * FROM whatsapp_session_status_history"
	             " WHERE session_id = $1 AND changed_at >= $2::timestamptz"
	             " ORDER BY changed_at DESC, id DESC LIMIT $3) h ORDER BY changed_at, id",
	             3, p, &r);
	if (rc < 0) {
		if (rc == WG_EINVAL) {
			*out = NULL;
			*n = 0;
			return 0;
		}
		return rc;
	}
	return read_rows(st, r, sizeof(**out), read_status_any, free_history_any, (void **)out, n);
}

static int
pg_get_setting(struct store *st, const char *key, char **value)
{
	const char *p[] = {key};
	PGresult *r;
	int rc = run(st, "get setting", "SELECT value FROM wagate_settings WHERE name = $1", 1, p, &r);
	if (rc < 0)
		return rc;
	if (PQntuples(r) == 0) {
		rc = store__fail(st, WG_ENOTFOUND, "no setting '%s'", key);
	} else {
		struct row row = {.st = st, .r = r, .i = 0, .table = "wagate_settings"};
		snprintf(row.id, sizeof(row.id), "%s", key);
		rc = col_text(&row, 0, "value", STORE_TEXT_MAX, false, value);
	}
	PQclear(r);
	return rc;
}

static int
pg_set_setting(struct store *st, const char *key, const char *value)
{
	char ts[32];
	const char *p[] = {key, value, ts_text(ts, (int64_t)wg_wall_ms())};
	return run_cmd(st, "set setting",
	               "INSERT INTO wagate_settings (name, value, updated_at) VALUES ($1, $2,"
	               " $3::timestamptz) ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
	               " updated_at = excluded.updated_at",
	               3, p, NULL);
}

static int
pg_prune(struct store *st, int64_t before, size_t max, size_t *deleted)
{
	char ts[32], lim[24];
	const char *p[] = {ts_text(ts, before), int_text(lim, (long long)max)};
	*deleted = 0;
	int a = 0, b = 0;
	/* Two short statements, each its own transaction. */
	int rc = run_cmd(st, "prune",
	                 "DELETE FROM whatsapp_session_recovery_attempts WHERE id IN (SELECT id FROM"
	                 " whatsapp_session_recovery_attempts WHERE attempted_at < $1::timestamptz"
	                 " ORDER BY attempted_at LIMIT $2)",
	                 2, p, &a);
	if (rc < 0)
		return rc;
	rc = run_cmd(st, "prune",
	             "DELETE FROM whatsapp_session_status_history WHERE id IN (SELECT id FROM"
	             " whatsapp_session_status_history WHERE changed_at < $1::timestamptz"
	             " ORDER BY changed_at LIMIT $2)",
	             2, p, &b);
	*deleted = (size_t)a + (size_t)b;
	return rc;
}

/*
 * Whether owner still holds the session's lease with this token, locking the
 * lease row until the transaction ends: a takeover (which updates that row)
 * waits for this batch, and this batch sees a takeover that committed first.
 */
static int
still_holds(struct store *st, const struct store_write *w, bool *holds)
{
	char tok[24];
	const char *p[] = {w->id, w->owner, int_text(tok, (long long)w->token)};
	PGresult *r;
	int rc = run(st, "check the lease",
	             "SELECT 1 FROM wagate_leases WHERE session_id = $1 AND owner = $2 AND token = $3"
	             " FOR SHARE",
	             3, p, &r);
	if (rc < 0)
		return rc;
	*holds = PQntuples(r) == 1;
	PQclear(r);
	return 0;
}

static const struct store_batch_ops pg_batch_ops = {
    .still_holds = still_holds,
    .update = update_row,
    .add_status = add_status_body,
    .add_attempt = pg_add_attempt,
};

static int
pg_write_batch(struct store *st, struct store_write *w, size_t n, int64_t now, size_t *gone)
{
	int rc = run_cmd(st, "write", "BEGIN", 0, NULL, NULL);
	if (rc < 0)
		return rc;
	/* One transaction for the supervisor's batch; a row that is gone skips its entry. */
	rc = end_tx(st, store__batch_body(st, &pg_batch_ops, w, n, now, gone), "write");
	if (rc < 0)
		*gone = 0;
	return rc;
}

/* ---- leases (docs/cluster.md) ---- */

/* A session that should run by itself, as the supervisor's predicate says (Rule 1). */
#define RUNNABLE                                                                                   \
	"w.session_name = 'primary' AND w.auth_state IS NOT NULL AND w.is_active::int <> 0"       \
	" AND w.auto_connect::int <> 0"
#define TTL "$2 * interval '1 millisecond'"

/* Rows of (session_id, token, owner) into leases; rows with an id wagate cannot address are left out. */
static void
read_leases(PGresult *r, struct store_lease **out, size_t *n)
{
	int rows = PQntuples(r);
	*out = rows ? wg_calloc((size_t)rows, sizeof(**out)) : NULL;
	*n = 0;
	for (int i = 0; i < rows; i++) {
		struct store_lease *l = &(*out)[*n];
		const char *id = PQgetvalue(r, i, 0);
		if (!store__id_valid(id, (size_t)PQgetlength(r, i, 0)))
			continue;
		snprintf(l->session_id, sizeof(l->session_id), "%s", id);
		l->token = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		snprintf(l->owner, sizeof(l->owner), "%s", PQgetvalue(r, i, 2));
		(*n)++;
	}
	PQclear(r);
}

static void
read_nodes(PGresult *r, struct store_node **out, size_t *n)
{
	int rows = PQntuples(r);
	*out = rows ? wg_calloc((size_t)rows, sizeof(**out)) : NULL;
	*n = 0;
	for (int i = 0; i < rows; i++) {
		struct store_node *nd = &(*out)[*n];
		snprintf(nd->id, sizeof(nd->id), "%s", PQgetvalue(r, i, 0));
		snprintf(nd->url, sizeof(nd->url), "%s", PQgetvalue(r, i, 1));
		if (store__ts_parse(PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2),
		                    &nd->started_at) < 0 ||
		    store__ts_parse(PQgetvalue(r, i, 3), (size_t)PQgetlength(r, i, 3),
		                    &nd->heartbeat_at) < 0)
			continue;
		nd->capacity = (unsigned)strtoul(PQgetvalue(r, i, 4), NULL, 10);
		nd->leases = (unsigned)strtoul(PQgetvalue(r, i, 5), NULL, 10);
		nd->live = strcmp(PQgetvalue(r, i, 6), "t") == 0;
		(*n)++;
	}
	PQclear(r);
}

/* $1: the lease time in ms. */
#define NODES_SQL                                                                                  \
	"SELECT n.node_id, coalesce(n.api_url, ''), n.started_at::text, n.heartbeat_at::text,"    \
	" n.capacity::text, (SELECT count(*) FROM wagate_leases l WHERE l.owner = n.node_id"       \
	" AND l.expires_at > now())::text, n.heartbeat_at > now() - $1 * interval '1 millisecond'"\
	" FROM wagate_nodes n"

static int
lease_round_body(struct store *st, struct store_lease_round *r)
{
	char ttl[24], cap[24], lim[24];
	int rc;
	PGresult *res;
	int_text(ttl, (long long)r->ttl_ms);
	const char *hb[] = {r->node, r->url, int_text(cap, (long long)r->capacity)};
	if ((rc = run_cmd(st, "lease round",
	                  "INSERT INTO wagate_nodes (node_id, api_url, started_at, heartbeat_at,"
	                  " capacity) VALUES ($1, $2, now(), now(), $3) ON CONFLICT (node_id) DO"
	                  " UPDATE SET api_url = coalesce(excluded.api_url, wagate_nodes.api_url), heartbeat_at = now(),"
	                  " capacity = excluded.capacity",
	                  3, hb, NULL)) < 0)
		return rc;
	/* Given back: they expire now, so another node may take them in its next round. */
	if (r->nrelease > 0) {
		char *arr = array_literal(r->release, r->nrelease);
		const char *p[] = {r->node, arr};
		rc = run_cmd(st, "lease round",
		             "UPDATE wagate_leases SET expires_at = now() - interval '1 millisecond'"
		             " WHERE owner = $1 AND session_id::text = ANY ($2::text[])",
		             2, p, NULL);
		free(arr);
		if (rc < 0)
			return rc;
	}
	/* Renewed: the live ones. One that expired is anyone's again (taken with a new token). */
	const char *rn[] = {r->node, ttl};
	if ((rc = run_cmd(st, "lease round",
	                  "UPDATE wagate_leases SET expires_at = now() + " TTL
	                  " WHERE owner = $1 AND expires_at > now()",
	                  2, rn, NULL)) < 0)
		return rc;
	/* The share counts sessions that should run: one held for a person's action is extra. */
	int held = 0;
	const char *c1[] = {r->node, ttl};
	if ((rc = run(st, "lease round",
	              "SELECT (SELECT count(*) FROM wagate_leases l JOIN whatsapp_sessions w ON"
	              " w.id = l.session_id WHERE l.owner = $1 AND l.expires_at > now() AND "
	              RUNNABLE "), (SELECT count(*) FROM wagate_nodes WHERE node_id = $1"
	              " OR heartbeat_at > now() - " TTL "), (SELECT count(*) FROM"
	              " whatsapp_sessions w WHERE " RUNNABLE ")",
	              2, c1, &res)) < 0)
		return rc;
	held = atoi(PQgetvalue(res, 0, 0));
	unsigned live = (unsigned)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
	r->runnable = (unsigned)strtoul(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	r->share = live ? (r->runnable + live - 1) / live : r->runnable;
	if (r->capacity && r->share > r->capacity)
		r->share = r->capacity;
	unsigned want = r->share > (unsigned)held ? r->share - (unsigned)held : 0;
	if (want > r->claim_max)
		want = r->claim_max;
	if (want > 0) {
		/*
		 * Free or expired leases of sessions that should run. Each node
		 * walks them in an order of its own (a hash of id and node), so
		 * nodes claiming at once rarely reach for the same rows; when they
		 * do, the conflict clause lets only one have it. A takeover adds
		 * one to the token.
		 */
		const char *p[] = {r->node, ttl, int_text(lim, (long long)want)};
		if ((rc = run_cmd(st, "lease round",
		                  "INSERT INTO wagate_leases (session_id, owner, token, acquired_at,"
		                  " expires_at) SELECT w.id, $1, 1, now(), now() + " TTL
		                  " FROM whatsapp_sessions w LEFT JOIN wagate_leases l ON"
		                  " l.session_id = w.id WHERE " RUNNABLE " AND (l.session_id IS NULL"
		                  " OR l.expires_at <= now()) ORDER BY md5(w.id::text || $1) LIMIT $3"
		                  " ON CONFLICT (session_id) DO UPDATE SET owner = excluded.owner,"
		                  " token = wagate_leases.token + 1, acquired_at = now(),"
		                  " expires_at = excluded.expires_at"
		                  " WHERE wagate_leases.expires_at <= now()",
		                  3, p, NULL)) < 0)
			return rc;
	}
	const char *me[] = {r->node};
	if ((rc = run(st, "lease round",
	              "SELECT session_id::text, token::text, owner FROM wagate_leases"
	              " WHERE owner = $1 AND expires_at > now()",
	              1, me, &res)) < 0)
		return rc;
	read_leases(res, &r->held, &r->nheld);
	if ((rc = run(st, "lease round",
	              "SELECT session_id::text, token::text, owner FROM wagate_leases"
	              " WHERE owner <> $1 AND expires_at > now()",
	              1, me, &res)) < 0)
		return rc;
	read_leases(res, &r->others, &r->nothers);
	const char *nt[] = {ttl};
	if ((rc = run(st, "lease round",
	              NODES_SQL " WHERE n.heartbeat_at > now() - $1 * interval '1 millisecond'"
	              " ORDER BY n.node_id",
	              1, nt, &res)) < 0)
		return rc;
	read_nodes(res, &r->nodes, &r->nnodes);
	return 0;
}

static int
pg_lease_round(struct store *st, struct store_lease_round *r)
{
	int rc = run_cmd(st, "lease round", "BEGIN", 0, NULL, NULL);
	if (rc < 0)
		return rc;
	return end_tx(st, lease_round_body(st, r), "lease round");
}

/* Who holds a session's live lease: 0 with owner "" when no one; WG_ESTATE when another node. */
static int
lease_holder(struct store *st, const char *node, const char *id, struct store_lease *out)
{
	const char *q[] = {id};
	PGresult *r;
	int rc = run(st, "look up a lease",
	             "SELECT w.id::text, coalesce(l.token, 0)::text, CASE WHEN l.expires_at > now()"
	             " THEN l.owner ELSE '' END FROM whatsapp_sessions w LEFT JOIN wagate_leases l"
	             " ON l.session_id = w.id WHERE w.id = $1",
	             1, q, &r);
	if (rc < 0)
		return by_id(st, rc, id);
	if (PQntuples(r) == 0) {
		PQclear(r);
		return store__fail(st, WG_ENOTFOUND, "no session '%s'", id);
	}
	snprintf(out->session_id, sizeof(out->session_id), "%s", id);
	out->token = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	snprintf(out->owner, sizeof(out->owner), "%s", PQgetvalue(r, 0, 2));
	PQclear(r);
	if (out->owner[0] != '\0' && strcmp(out->owner, node) != 0)
		return store__fail(st, WG_ESTATE, "node %s holds session '%s'", out->owner, id);
	return 0;
}

static int
pg_lease_claim(struct store *st, const char *node, const char *id, bool take, uint64_t ttl_ms,
               struct store_lease *out)
{
	if (!take)
		return lease_holder(st, node, id, out);
	char ttl[24];
	const char *p[] = {node, int_text(ttl, (long long)ttl_ms), id};
	PGresult *r;
	/* Ours already: kept with its token. Free or expired: taken, the token one up. */
	int rc = run(st, "claim a lease",
	             "INSERT INTO wagate_leases (session_id, owner, token, acquired_at, expires_at)"
	             " SELECT w.id, $1, 1, now(), now() + " TTL " FROM whatsapp_sessions w"
	             " WHERE w.id = $3 ON CONFLICT (session_id) DO UPDATE SET owner = excluded.owner,"
	             " token = CASE WHEN wagate_leases.owner = excluded.owner AND"
	             " wagate_leases.expires_at > now() THEN wagate_leases.token ELSE"
	             " wagate_leases.token + 1 END, acquired_at = now(), expires_at ="
	             " excluded.expires_at WHERE wagate_leases.expires_at <= now() OR"
	             " wagate_leases.owner = excluded.owner"
	             " RETURNING session_id::text, token::text, owner",
	             3, p, &r);
	if (rc < 0)
		return by_id(st, rc, id);
	if (PQntuples(r) == 1) {
		struct store_lease *l;
		size_t n;
		read_leases(r, &l, &n);
		if (n == 1)
			*out = l[0];
		free(l);
		return n == 1 ? 0 : store__fail(st, WG_EINVAL, "the session's id cannot be addressed");
	}
	PQclear(r);
	/* No row, or another node's live lease: which, and whose. */
	rc = lease_holder(st, node, id, out);
	return rc == 0 ? store__fail(st, WG_ESTATE, "the lease could not be taken; try again") : rc;
}

static int
pg_lease_leave(struct store *st, const char *node)
{
	const char *p[] = {node};
	int rc = run_cmd(st, "leave", "BEGIN", 0, NULL, NULL);
	if (rc < 0)
		return rc;
	rc = run_cmd(st, "leave",
	             "UPDATE wagate_leases SET expires_at = now() - interval '1 millisecond'"
	             " WHERE owner = $1 AND expires_at > now()",
	             1, p, NULL);
	if (rc == 0)
		rc = run_cmd(st, "leave", "DELETE FROM wagate_nodes WHERE node_id = $1", 1, p, NULL);
	return end_tx(st, rc, "leave");
}

static int
pg_nodes(struct store *st, uint64_t ttl_ms, struct store_node **out, size_t *n)
{
	char ttl[24];
	const char *p[] = {int_text(ttl, (long long)ttl_ms)};
	PGresult *r;
	int rc = run(st, "nodes", NODES_SQL " ORDER BY 7 DESC, n.node_id LIMIT 1000", 1, p, &r);
	if (rc < 0)
		return rc;
	read_nodes(r, out, n);
	return 0;
}

/* ---- the webhook outbox ---- */

static int
pg_hook_add(struct store *st, const struct store_hook *h)
{
	char seq[24], ts[32];
	const char *p[] = {h->id, int_text(seq, (long long)h->seq), h->url, h->session_id, h->kind,
	                   h->body, ts_text(ts, h->created_at)};
	return run_cmd(st, "add webhook delivery",
	               "INSERT INTO wagate_webhook_outbox (id, seq, url, session_id, kind, body,"
	               " created_at) VALUES ($1, $2::bigint, $3, $4, $5, $6, $7::timestamptz)",
	               7, p, NULL);
}

static int
pg_hook_delete(struct store *st, const char *id)
{
	const char *p[] = {id};
	return run_cmd(st, "delete webhook delivery",
	               "DELETE FROM wagate_webhook_outbox WHERE id = $1", 1, p, NULL);
}

static int
pg_hook_list(struct store *st, size_t max, struct store_hook **out, size_t *n)
{
	char lim[24];
	const char *p[] = {int_text(lim, (long long)max)};
	PGresult *r;
	int rc = run(st, "list webhook deliveries",
	             "SELECT id, seq::text, url, session_id, kind, body, created_at::text"
	             " FROM wagate_webhook_outbox ORDER BY seq LIMIT $1::bigint",
	             1, p, &r);
	if (rc < 0)
		return rc;
	size_t rows = (size_t)PQntuples(r);
	struct store_hook *v = wg_calloc(rows ? rows : 1, sizeof(*v));
	size_t len = 0;
	for (size_t i = 0; i < rows && rc == 0; i++) {
		struct row row = {.st = st, .r = r, .i = (int)i, .table = "wagate_webhook_outbox"};
		struct store_hook *h = &v[len++];
		char *id = NULL, *seq = NULL;
		if ((rc = col_text(&row, 0, "id", 32, false, &id)) < 0)
			break;
		snprintf(h->id, sizeof(h->id), "%s", id);
		snprintf(row.id, sizeof(row.id), "%s", id);
		free(id);
		if ((rc = col_text(&row, 1, "seq", 20, false, &seq)) < 0)
			break;
		h->seq = strtoll(seq, NULL, 10);
		free(seq);
		if ((rc = col_text(&row, 2, "url", STORE_TEXT_MAX, false, &h->url)) < 0 ||
		    (rc = col_text(&row, 3, "session_id", STORE_TEXT_MAX, true, &h->session_id)) < 0 ||
		    (rc = col_word(&row, 4, "kind", h->kind, sizeof(h->kind), false)) < 0 ||
		    (rc = col_text(&row, 5, "body", STORE_HOOK_BODY_MAX, false, &h->body)) < 0 ||
		    (rc = col_ts(&row, 6, "created_at", false, &h->created_at)) < 0)
			break;
	}
	PQclear(r);
	if (rc < 0) {
		store_hooks_free(v, len);
		return rc;
	}
	*out = v;
	*n = len;
	return 0;
}

const struct store_backend store_pg_backend = {
    .name = "postgres",
    .open = pg_open_url,
    .close = pg_close,
    .migrate = pg_migrate,
    .ping = pg_ping,
    .reconcile = pg_reconcile,
    .list = pg_list,
    .get = pg_get,
    .find_name = pg_find_name,
    .insert = pg_insert,
    .update = pg_update,
    .del = pg_delete,
    .add_attempt = pg_add_attempt,
    .attempts = pg_attempts,
    .count_attempts = pg_count_attempts,
    .get_setting = pg_get_setting,
    .set_setting = pg_set_setting,
    .hook_add = pg_hook_add,
    .hook_delete = pg_hook_delete,
    .hook_list = pg_hook_list,
    .set_wait = pg_set_wait,
    .migrate_plan = pg_migrate_plan,
    .prune = pg_prune,
    .add_status_change = pg_add_status_change,
    .status_history = pg_status_history,
    .write_batch = pg_write_batch,
    .recent_attempts = pg_recent_attempts,
    .lease_round = pg_lease_round,
    .lease_claim = pg_lease_claim,
    .lease_leave = pg_lease_leave,
    .nodes = pg_nodes,
};
