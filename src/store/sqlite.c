/*
 * The SQLite backend of the session store (docs/store.md).
 *
 * One connection per store, in WAL mode so the web app sharing the file can
 * read while we write, with a short busy timeout so a writer elsewhere costs
 * the event loop at most SQ_BUSY_MS. Statements are prepared once per store
 * and always bind their values; the only SQL built at run time is the column
 * list of an UPDATE, from the fixed names in update_cols[].
 *
 * The web app writes the same table, so every row read is validated like
 * network input: types, lengths, statuses and timestamps are checked, and a bad
 * row is an error that names the row and column, never a crash. Messages never
 * carry column values (auth_state is credentials); SQLite's own messages name
 * constraints and columns, not values.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/schema.h"
#include "store/store.h"

/*
 * How long a statement waits for another process's write lock. Web-app
 * writes last milliseconds; waiting longer would stall every session on the
 * loop (the design allows no turn over 10 ms), so past this the call fails
 * with WG_ETIMEDOUT and the caller retries: the supervisor writes behind and
 * retries with backoff, the API answers 503. Migrating and reconciling run
 * before anything is served and wait longer.
 */
#define SQ_BUSY_MS 10
#define SQ_BUSY_START_MS 5000
#define SQ_UPDATE_CACHE 16

/*
 * Not "schema_migrations": Rails, Ecto and golang-migrate use that name, and
 * the web app's framework may keep its own in the same database.
 */
#define SQ_MIGRATIONS "wagate_schema_migrations"

#define SQ_NMIGRATIONS store_nmigrations /* the one schema: schema.c */

#define SESSION_COLS                                                                               \
	"id, user_id, session_name, phone_number, auth_state, is_active, auto_connect, "           \
	"connection_status, last_error, last_connected_at, last_message_at, created_at, "          \
	"updated_at"
/* The same columns with auth_state reduced to a marker: 'wgs1:' sealed, '' plain, NULL none. */
#define SESSION_COLS_LIGHT                                                                         \
	"id, user_id, session_name, phone_number, "                                                \
	"CASE WHEN auth_state IS NULL THEN NULL WHEN auth_state LIKE 'wgs1:%' THEN 'wgs1:' ELSE '' END, "  \
	"is_active, auto_connect, "            \
	"connection_status, last_error, last_connected_at, last_message_at, created_at, "          \
	"updated_at"
#define LIST_AUTO_WHERE                                                                            \
	" WHERE session_name = 'primary' AND auth_state IS NOT NULL"                               \
	" AND is_active AND auto_connect ORDER BY created_at, id"

enum sq_stmt {
	SQ_PING,
	SQ_DATA_VERSION,
	SQ_LIST_ALL,
	SQ_LIST_AUTO,
	SQ_LIST_ALL_LIGHT,
	SQ_LIST_AUTO_LIGHT,
	SQ_LIST_PAGE_LIGHT,
	SQ_LIST_PAGE_CREATED,
	SQ_LIST_PAGE_UPDATED,
	SQ_RECENT_ATTEMPTS,
	SQ_GET,
	SQ_FIND_NAME,
	SQ_INSERT,
	SQ_INSERT_AUTO,
	SQ_DELETE,
	SQ_RECONCILE,
	SQ_ADD_ATTEMPT,
	SQ_ATTEMPTS,
	SQ_COUNT_ATTEMPTS,
	SQ_GET_SETTING,
	SQ_SET_SETTING,
	SQ_RECONCILE_HISTORY,
	SQ_ADD_STATUS,
	SQ_TRIM_STATUS,
	SQ_PRUNE_ATTEMPTS,
	SQ_PRUNE_STATUS,
	SQ_STATUS_HISTORY,
	SQ_BEGIN,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_MIG_HAS,
	SQ_MIG_ADD,
	SQ_MIG_MAX,
	SQ_HOOK_ADD,
	SQ_HOOK_DELETE,
	SQ_HOOK_LIST,
	SQ_NSTMT
};

static const char *const stmt_sql[SQ_NSTMT] = {
    [SQ_PING] = "SELECT 1",
    [SQ_DATA_VERSION] = "PRAGMA data_version",
    [SQ_LIST_ALL] = "SELECT " SESSION_COLS " FROM whatsapp_sessions ORDER BY created_at, id",
    [SQ_LIST_AUTO] = "SELECT " SESSION_COLS " FROM whatsapp_sessions" LIST_AUTO_WHERE,
    [SQ_LIST_ALL_LIGHT] = "SELECT " SESSION_COLS_LIGHT " FROM whatsapp_sessions ORDER BY created_at, id",
    [SQ_LIST_AUTO_LIGHT] = "SELECT " SESSION_COLS_LIGHT " FROM whatsapp_sessions" LIST_AUTO_WHERE,
    /* Keyset paging: the primary key's index gives each page as one range scan. */
    [SQ_LIST_PAGE_LIGHT] = "SELECT " SESSION_COLS_LIGHT " FROM whatsapp_sessions WHERE id > ?1"
                           " ORDER BY id LIMIT ?2",
    [SQ_LIST_PAGE_CREATED] = "SELECT " SESSION_COLS_LIGHT " FROM whatsapp_sessions"
                             " WHERE (created_at, id) > (?1, ?3) ORDER BY created_at, id LIMIT ?2",
    [SQ_LIST_PAGE_UPDATED] = "SELECT " SESSION_COLS_LIGHT " FROM whatsapp_sessions"
                             " WHERE (updated_at, id) > (?1, ?3) ORDER BY updated_at, id LIMIT ?2",
    /* The newest ?2 attempts of each session named in the JSON array ?1, in one statement. */
    /*
     * Each session's newest ?2 through the index, not every attempt of the
     * page's sessions numbered and filtered (3.5 times faster with ten
     * attempts a session); a session without any costs one probe (EXISTS),
     * not a list built and cleared (twice as fast for a page of 500).
     */
    [SQ_RECENT_ATTEMPTS] = "SELECT a.id, a.session_id, a.attempted_at, a.trigger_type, a.action,"
                           " a.result, a.detail FROM json_each(?1) j"
                           " JOIN whatsapp_session_recovery_attempts a ON a.id IN"
                           " (SELECT b.id FROM whatsapp_session_recovery_attempts b"
                           " WHERE b.session_id = j.value"
                           " ORDER BY b.attempted_at DESC, b.id DESC LIMIT ?2)"
                           " WHERE EXISTS (SELECT 1 FROM whatsapp_session_recovery_attempts e"
                           " WHERE e.session_id = j.value)"
                           " ORDER BY a.session_id, a.attempted_at DESC, a.id DESC",
    [SQ_GET] = "SELECT " SESSION_COLS " FROM whatsapp_sessions WHERE id = ?1",
    [SQ_FIND_NAME] = "SELECT id FROM whatsapp_sessions WHERE session_name = ?1 AND user_id IS ?2"
                     " ORDER BY created_at, id LIMIT 1",
    [SQ_INSERT] = "INSERT INTO whatsapp_sessions (" SESSION_COLS ")"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    /* An integer id the table numbers itself (INTEGER PRIMARY KEY): given back. */
    [SQ_INSERT_AUTO] = "INSERT INTO whatsapp_sessions (user_id, session_name, phone_number,"
                       " auth_state, is_active, auto_connect, connection_status, last_error,"
                       " last_connected_at, last_message_at, created_at, updated_at)"
                       " VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING id",
    [SQ_DELETE] = "DELETE FROM whatsapp_sessions WHERE id = ?1",
    [SQ_RECONCILE] = "UPDATE whatsapp_sessions SET connection_status = 'disconnected',"
                     " updated_at = ?1"
                     " WHERE connection_status IN ('connecting', 'qr_pending', 'connected')",
    [SQ_ADD_ATTEMPT] = "INSERT INTO whatsapp_session_recovery_attempts"
                       " (session_id, attempted_at, trigger_type, action, result, detail)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
    [SQ_ATTEMPTS] = "SELECT id, session_id, attempted_at, trigger_type, action, result, detail"
                    " FROM whatsapp_session_recovery_attempts"
                    " WHERE session_id = ?1 AND attempted_at >= ?2"
                    " ORDER BY attempted_at DESC, id DESC LIMIT ?3",
    /* substr rather than LIKE: exact, case-sensitive, and no wildcards to escape. */
    [SQ_COUNT_ATTEMPTS] = "SELECT count(*) FROM whatsapp_session_recovery_attempts"
                          " WHERE session_id = ?1 AND attempted_at >= ?2"
                          " AND (?3 IS NULL OR substr(trigger_type, 1, length(?3)) = ?3)",
    [SQ_GET_SETTING] = "SELECT value FROM wagate_settings WHERE name = ?1",
    [SQ_SET_SETTING] = "INSERT INTO wagate_settings (name, value, updated_at) VALUES (?1, ?2, ?3)"
                       " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
                       " updated_at = excluded.updated_at",
    /* Before SQ_RECONCILE, in its transaction: the timeline shows where a process died. */
    [SQ_RECONCILE_HISTORY] =
        "INSERT INTO whatsapp_session_status_history (session_id, changed_at, status, reason)"
        " SELECT id, ?1, 'disconnected', 'reconciled at startup: the previous wagate process"
        " stopped while the session was ' || connection_status FROM whatsapp_sessions"
        " WHERE connection_status IN ('connecting', 'qr_pending', 'connected')",
    [SQ_ADD_STATUS] = "INSERT INTO whatsapp_session_status_history"
                      " (session_id, changed_at, status, reason) VALUES (?1, ?2, ?3, ?4)"
                      " RETURNING id",
    /*
     * Retention: everything older than the session's ?2-th newest row. The
     * subquery walks at most ?2 entries of the (session_id, changed_at) index.
     */
    [SQ_PRUNE_ATTEMPTS] = "DELETE FROM whatsapp_session_recovery_attempts WHERE id IN"
                          " (SELECT id FROM whatsapp_session_recovery_attempts"
                          " WHERE attempted_at < ?1 ORDER BY attempted_at LIMIT ?2)",
    [SQ_PRUNE_STATUS] = "DELETE FROM whatsapp_session_status_history WHERE id IN"
                        " (SELECT id FROM whatsapp_session_status_history"
                        " WHERE changed_at < ?1 ORDER BY changed_at LIMIT ?2)",
    [SQ_TRIM_STATUS] = "DELETE FROM whatsapp_session_status_history WHERE session_id = ?1"
                       " AND id IN (SELECT id FROM whatsapp_session_status_history"
                       " WHERE session_id = ?1 ORDER BY changed_at DESC, id DESC"
                       " LIMIT -1 OFFSET ?2)",
    [SQ_STATUS_HISTORY] = "SELECT id, session_id, changed_at, status, reason FROM"
                          " (SELECT id, session_id, changed_at, status, reason"
                          " FROM whatsapp_session_status_history"
                          " WHERE session_id = ?1 AND changed_at >= ?2"
                          " ORDER BY changed_at DESC, id DESC LIMIT ?3)"
                          " ORDER BY changed_at, id",
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_MIG_HAS] = "SELECT 1 FROM " SQ_MIGRATIONS " WHERE version = ?1",
    [SQ_MIG_ADD] = "INSERT INTO " SQ_MIGRATIONS " (version, name, applied_at) VALUES (?1, ?2, ?3)",
    [SQ_MIG_MAX] = "SELECT max(version) FROM " SQ_MIGRATIONS,
    [SQ_HOOK_ADD] = "INSERT INTO wagate_webhook_outbox (id, seq, url, session_id, kind, body,"
                    " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQ_HOOK_DELETE] = "DELETE FROM wagate_webhook_outbox WHERE id = ?1",
    [SQ_HOOK_LIST] = "SELECT id, seq, url, session_id, kind, body, created_at"
                     " FROM wagate_webhook_outbox ORDER BY seq LIMIT ?1",
};

/* Columns store_update may set, in STORE_F_* bit order. */
static const char *const update_cols[] = {
    "user_id",      "session_name",      "phone_number", "auth_state",        "is_active",
    "auto_connect", "connection_status", "last_error",   "last_connected_at", "last_message_at",
};

struct sq {
	sqlite3 *db;
	sqlite3_stmt *stmt[SQ_NSTMT];
	struct {
		unsigned mask;
		sqlite3_stmt *q;
	} upd[SQ_UPDATE_CACHE];
	/* The file, to notice it deleted or replaced under us (NULL for :memory:). */
	char *path;
	dev_t dev;
	ino_t ino;
	int file_seen; /* 1: deleted, 2: replaced, reported once; the next check repairs */
	uint32_t generation; /* connections dropped so far: data_version restarts with each */
	int busy_ms;         /* SQ_BUSY_MS, or what store_set_wait() asked for */
	/* whatsapp_sessions.id has INTEGER affinity (a table the app made): 1 yes, 0 no, -1 not known yet. */
	int id_int;
};

/* Maps an SQLite result to our codes and records the message. */
static int
sq_fail(struct store *st, int rc, const char *op)
{
	struct sq *sq = store__state(st);
	int code;
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		code = WG_ETIMEDOUT;
		break;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
		code = WG_EINVAL;
		break;
	case SQLITE_TOOBIG:
		code = WG_ELIMIT;
		break;
	default:
		code = WG_EIO;
		break;
	}
	return store__fail(st, code, "sqlite: %s: %s", op,
	                   sq != NULL && sq->db != NULL ? sqlite3_errmsg(sq->db)
	                                                : sqlite3_errstr(rc));
}

static int
sq_stmt(struct store *st, enum sq_stmt which, sqlite3_stmt **out)
{
	struct sq *sq = store__state(st);
	if (sq->db == NULL)
		return store__fail(st, WG_EIO, "the database file could not be reopened yet; retrying");
	if (sq->stmt[which] == NULL) {
		int rc = sqlite3_prepare_v3(sq->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
		                            &sq->stmt[which], NULL);
		if (rc != SQLITE_OK) {
			sq->stmt[which] = NULL;
			return sq_fail(st, rc, "prepare");
		}
	}
	*out = sq->stmt[which];
	return 0;
}

/* Makes a cached statement ready for its next use and drops pointers to our buffers. */
static void
sq_done(sqlite3_stmt *q)
{
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
}

/*
 * Binds text without copying: the caller's string outlives the step, and
 * sq_done() clears the binding. Not copying also keeps auth_state out of
 * SQLite's heap beyond what the write itself needs.
 */
static int
bind_text(sqlite3_stmt *q, int i, const char *s)
{
	return s == NULL ? sqlite3_bind_null(q, i) : sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC);
}

static int
bind_ts(sqlite3_stmt *q, int i, int64_t ms)
{
	char buf[32];
	if (ms == 0)
		return sqlite3_bind_null(q, i);
	if (store__ts_format(buf, ms) < 0)
		return SQLITE_RANGE;
	return sqlite3_bind_text(q, i, buf, -1, SQLITE_TRANSIENT);
}

static int
exec(struct store *st, const char *sql, const char *op)
{
	struct sq *sq = store__state(st);
	if (sq->db == NULL)
		return store__fail(st, WG_EIO, "the database file could not be reopened yet; retrying");
	int rc = sqlite3_exec(sq->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sq_fail(st, rc, op);
}

/* Creates the parent directories of path, mode 0700 (the database holds credentials). */
static int
make_parents(const char *path, char *err, size_t errlen)
{
	char dir[4096];
	size_t len = strnlen(path, sizeof(dir));
	if (len >= sizeof(dir)) {
		snprintf(err, errlen, "database path too long");
		return WG_ELIMIT;
	}
	memcpy(dir, path, len + 1);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create directory %s: %s", dir,
			         strerror(errno));
			return WG_EIO;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	struct stat sb;
	if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", dir);
		return WG_EIO;
	}
	return 0;
}

static void sq_close(struct store *st);

/*
 * journal_mode reads the file header, so a file that is not a database fails
 * here, at open, rather than on the first query. synchronous=FULL: a commit
 * survives a power loss too, because a credential written just after pairing
 * cannot be re-derived; it costs ~150 us per write (docs/store.md).
 */
/*
 * The WAL is copied back into the database (a checkpoint, with an fsync) by
 * the commit that makes it longer than this many pages. SQLite's default of
 * 1,000 pages made every such commit copy about 4 MiB on the event loop: a
 * 20–40 ms turn every few seconds while 10,000 sessions started. 100 pages
 * copy about 400 KiB each time, ten times as often.
 */
#define SQ_WAL_CHECKPOINT_PAGES_STR "100"

static int
sq_connect(const char *path, sqlite3 **out, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		         db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close_v2(db);
		return WG_EIO;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, SQ_BUSY_MS);
	static const char setup[] = "PRAGMA journal_mode = WAL;"
	                            "PRAGMA synchronous = FULL;"
	                            "PRAGMA wal_autocheckpoint = " SQ_WAL_CHECKPOINT_PAGES_STR ";"
	                            "PRAGMA foreign_keys = ON;"
	                            "SELECT count(*) FROM sqlite_schema;";
	rc = sqlite3_exec(db, setup, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot use %s: %s", path, sqlite3_errmsg(db));
		sqlite3_close_v2(db);
		return (rc & 0xff) == SQLITE_BUSY ? WG_ETIMEDOUT : WG_EIO;
	}
	*out = db;
	return 0;
}

/*
 * The database holds credentials: an existing file (and its -wal and -shm)
 * that others may read is made 0600, with a warning; one we cannot change
 * stops the start. By path (chmod), never by a descriptor: see below.
 */
static int
sq_private(const char *path, char *err, size_t errlen)
{
	static const char *const suffix[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		char p[4096];
		struct stat sb;
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		if (stat(p, &sb) != 0 || !S_ISREG(sb.st_mode) || (sb.st_mode & 0077) == 0)
			continue;
		if (chmod(p, 0600) != 0) {
			snprintf(err, errlen, "%s can be read by others (mode %03o) and cannot be made private: %s",
				 p, (unsigned)(sb.st_mode & 0777), strerror(errno));
			return WG_EIO;
		}
		log_warn("store", "%s could be read by others (mode %03o): it holds credentials, made 0600", p,
			 (unsigned)(sb.st_mode & 0777));
	}
	return 0;
}

/* Creates the file with mode 0600 first: SQLite would make it 0644, and its -wal and -shm copy the mode. */
static int
sq_create_file(const char *path, char *err, size_t errlen)
{
	int rc = make_parents(path, err, errlen);
	if (rc < 0)
		return rc;
	/*
	 * Only a missing file is created. An existing one is never opened here:
	 * closing any descriptor of a file drops every POSIX lock this process
	 * holds on it, so another connection of ours (the writer thread's) would
	 * lose its locks, and a third process could take the database for unused
	 * and remove the WAL that holds our newest commits.
	 */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return sq_private(path, err, errlen);
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return WG_EIO;
	}
	close(fd);
	return 0;
}

static void
sq_note_file(struct sq *sq)
{
	struct stat sb;
	if (sq->path != NULL && stat(sq->path, &sb) == 0) {
		sq->dev = sb.st_dev;
		sq->ino = sb.st_ino;
	}
	sq->file_seen = 0;
}

static int
sq_open(struct store *st, const char *path, char *err, size_t errlen)
{
	bool memory = strcmp(path, ":memory:") == 0;
	int rc;
	if (!memory && (rc = sq_create_file(path, err, errlen)) < 0)
		return rc;
	struct sq *sq = wg_calloc(1, sizeof(*sq));
	sq->busy_ms = SQ_BUSY_MS;
	sq->id_int = -1;
	store__set_state(st, sq);
	if ((rc = sq_connect(path, &sq->db, err, errlen)) < 0) {
		sq_close(st);
		return rc;
	}
	if (!memory) {
		sq->path = wg_strdup(path);
		sq_note_file(sq);
	}
	return 0;
}

/* Every prepared statement goes (the connection they belong to is being replaced). */
static void
sq_forget_stmts(struct sq *sq)
{
	for (int i = 0; i < SQ_NSTMT; i++) {
		sqlite3_finalize(sq->stmt[i]);
		sq->stmt[i] = NULL;
	}
	for (int i = 0; i < SQ_UPDATE_CACHE; i++) {
		sqlite3_finalize(sq->upd[i].q);
		sq->upd[i].q = NULL;
		sq->upd[i].mask = 0;
	}
}

static int sq_migrate(struct store *st, int *applied);

/*
 * Closes our connection to a file that was deleted or replaced, and removes
 * the -wal and -shm at the path: they are that file's (SQLite does not
 * checkpoint into a file that moved, so it leaves them), and any connection
 * to the file now at the path would otherwise read the old file's pages
 * through them.
 */
static void
sq_drop_connection(struct sq *sq)
{
	if (sq->db == NULL)
		return;
	sq_forget_stmts(sq);
	sqlite3_close_v2(sq->db);
	sq->db = NULL;
	sq->generation++;
	sq->id_int = -1;
	char side[4200];
	snprintf(side, sizeof(side), "%s-wal", sq->path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", sq->path);
	unlink(side);
}

/*
 * The file was deleted while we held it open: everything is still readable
 * through our connection, so it is copied into a fresh file at the path
 * (SQLite's backup API), our connection is closed (which checkpoints into the
 * old inode and removes its -wal and -shm), and the fresh file is opened.
 */
static int
sq_restore(struct store *st)
{
	struct sq *sq = store__state(st);
	char tmp[4200], err[256];
	snprintf(tmp, sizeof(tmp), "%s.restore", sq->path);
	unlink(tmp);
	if (sq_create_file(tmp, err, sizeof(err)) < 0)
		return store__fail(st, WG_EIO, "the database file %s was deleted; %s", sq->path, err);
	sqlite3 *copy = NULL;
	int rc = sqlite3_open_v2(tmp, &copy, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	/* The copy's last step commits with synchronous=FULL (SQLite's default): it is on disk. */
	sqlite3_backup *b = rc == SQLITE_OK ? sqlite3_backup_init(copy, "main", sq->db, "main") : NULL;
	if (b != NULL) {
		rc = sqlite3_backup_step(b, -1);
		rc = sqlite3_backup_finish(b) == SQLITE_OK && rc == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	} else {
		rc = SQLITE_ERROR;
	}
	const char *why = copy ? sqlite3_errmsg(copy) : "cannot open a new file";
	if (rc != SQLITE_OK) {
		int code = store__fail(st, WG_EIO,
		                       "the database file %s was deleted and cannot be recreated yet: %s",
		                       sq->path, why);
		sqlite3_close_v2(copy);
		unlink(tmp);
		return code;
	}
	sqlite3_close_v2(copy);
	sq_drop_connection(sq);
	if (rename(tmp, sq->path) != 0)
		return store__fail(st, WG_EIO, "the database file %s was deleted; cannot put the copy "
		                               "back: %s", sq->path, strerror(errno));
	if ((rc = sq_connect(sq->path, &sq->db, err, sizeof(err))) < 0) {
		sq->db = NULL;
		return store__fail(st, rc, "%s", err);
	}
	sqlite3_busy_timeout(sq->db, sq->busy_ms);
	sq_note_file(sq);
	return 0;
}

/*
 * Another file is at the path now (a restored backup, say): it is the
 * database from now on. Our connection is closed first: its checkpoint goes
 * to the old inode through its own descriptor and its -wal and -shm are
 * removed, so the new file is never read through the old one's WAL.
 */
static int
sq_reopen(struct store *st)
{
	struct sq *sq = store__state(st);
	char err[256];
	sq_drop_connection(sq);
	int rc = sq_connect(sq->path, &sq->db, err, sizeof(err));
	if (rc < 0) {
		sq->db = NULL;
		return store__fail(st, rc, "the database file %s was replaced: %s", sq->path, err);
	}
	sqlite3_busy_timeout(sq->db, sq->busy_ms);
	sq_note_file(sq);
	int applied;
	return sq_migrate(st, &applied);
}

/*
 * Is the file at the path still the one we write? A deleted file takes every
 * write with it when the process ends; a replaced one is no longer what the
 * web app reads. Reported once as an error; the next check repairs it.
 */
static int
sq_check_file(struct store *st)
{
	struct sq *sq = store__state(st);
	if (sq == NULL || sq->path == NULL)
		return 0;
	if (sq->db == NULL)
		return sq_reopen(st); /* an earlier repair could not open the file: again */
	struct stat sb;
	int gone = 0, replaced = 0;
	if (stat(sq->path, &sb) != 0) {
		if (errno != ENOENT)
			return store__fail(st, WG_EIO, "cannot check the database file %s: %s", sq->path,
			                   strerror(errno));
		gone = 1;
	} else {
		replaced = sb.st_dev != sq->dev || sb.st_ino != sq->ino;
	}
	if (!gone && !replaced) {
		sq->file_seen = 0;
		return 0;
	}
	if (sq->file_seen == 0) {
		sq->file_seen = gone ? 1 : 2;
		return store__fail(st, WG_EIO,
		                   gone ? "the database file %s was deleted: writes would be lost "
		                          "(recreating it from the open copy)"
		                        : "the database file %s was replaced by another file (switching "
		                          "to it)",
		                   sq->path);
	}
	return gone ? sq_restore(st) : sq_reopen(st);
}

static void
sq_close(struct store *st)
{
	struct sq *sq = store__state(st);
	if (sq == NULL)
		return;
	for (int i = 0; i < SQ_NSTMT; i++)
		sqlite3_finalize(sq->stmt[i]);
	for (int i = 0; i < SQ_UPDATE_CACHE; i++)
		sqlite3_finalize(sq->upd[i].q);
	sqlite3_close_v2(sq->db);
	free(sq->path);
	free(sq);
	store__set_state(st, NULL);
}

static int
sq_step_done(struct store *st, sqlite3_stmt *q, const char *op)
{
	int rc = sqlite3_step(q);
	sq_done(q);
	return rc == SQLITE_DONE ? 0 : sq_fail(st, rc, op);
}

/* The body of migrate_one, inside its transaction. */
static int
migrate_body(struct store *st, const struct store_migration *m, bool *ran)
{
	struct sq *sq = store__state(st);
	sqlite3_stmt *q;
	int rc;
	if ((rc = sq_stmt(st, SQ_MIG_HAS, &q)) < 0)
		return rc;
	sqlite3_bind_int(q, 1, m->version);
	int step = sqlite3_step(q);
	sq_done(q);
	if (step == SQLITE_ROW)
		return 0;
	if (step != SQLITE_DONE)
		return sq_fail(st, step, "migrate");
	char *msg = NULL;
	char *text = store_schema_sql(m, &store_sqlite_dialect);
	rc = sqlite3_exec(sq->db, text, NULL, NULL, &msg);
	free(text);
	if (rc != SQLITE_OK) {
		/* Failing DDL means the tables are not what this migration expects. */
		int code = (rc & 0xff) == SQLITE_BUSY ? WG_ETIMEDOUT : WG_ESTATE;
		store__fail(st, code, "sqlite: migration %d (%s): %s", m->version, m->name,
		            msg != NULL ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return code;
	}
	char now[32];
	store__ts_format(now, (int64_t)wg_wall_ms());
	if ((rc = sq_stmt(st, SQ_MIG_ADD, &q)) < 0)
		return rc;
	sqlite3_bind_int(q, 1, m->version);
	sqlite3_bind_text(q, 2, m->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, now, -1, SQLITE_STATIC);
	if ((rc = sq_step_done(st, q, "migrate")) < 0)
		return rc;
	*ran = true;
	return 0;
}

/* Applies one migration in its own transaction, unless it is already recorded. */
static int
migrate_one(struct store *st, const struct store_migration *m, bool *ran)
{
	struct sq *sq = store__state(st);
	int rc;
	*ran = false;
	/* IMMEDIATE takes the write lock first, so two servers starting at once cannot both apply
	 * it. */
	if ((rc = exec(st, "BEGIN IMMEDIATE", "migrate")) < 0)
		return rc;
	rc = migrate_body(st, m, ran);
	if (rc == 0)
		rc = exec(st, "COMMIT", "migrate");
	if (rc < 0) {
		sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL);
		*ran = false;
	}
	return rc;
}

/*
 * Adopting a whatsapp_sessions the web app created first: the columns wagate
 * needs and the table lacks are added, with the design's definitions and
 * defaults, so existing rows read as active, auto-connect, primary. The app's
 * columns are never dropped, renamed or retyped. SQLite cannot add a column
 * with a non-constant default, so a missing created_at/updated_at defaults to
 * the time of the adoption.
 */
static const struct {
	const char *name, *def;
	bool now_default; /* DEFAULT the adoption's time */
} adopt_cols[] = {
    {"user_id", "TEXT", false},
    {"session_name", "TEXT NOT NULL DEFAULT 'primary'", false},
    {"phone_number", "TEXT", false},
    {"auth_state", "TEXT", false},
    {"is_active", "BOOLEAN NOT NULL DEFAULT true", false},
    {"auto_connect", "BOOLEAN NOT NULL DEFAULT true", false},
    {"connection_status", "TEXT", false},
    {"last_error", "TEXT", false},
    {"last_connected_at", "TEXT", false},
    {"last_message_at", "TEXT", false},
    {"created_at", "TEXT NOT NULL", true},
    {"updated_at", "TEXT NOT NULL", true},
};

/* The ALTER TABLE statements adoption needs, appended to *sql (malloc'd); 0 or WG_ESTATE. */
static int
adopt_sql(struct store *st, char **sql)
{
	struct sq *sq = store__state(st);
	sqlite3_stmt *q;
	if (sq->db == NULL)
		return store__fail(st, WG_EIO, "the database file could not be reopened yet; retrying");
	int rc = sqlite3_prepare_v2(sq->db, "SELECT name FROM pragma_table_info('whatsapp_sessions')", -1,
	                            &q, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(st, rc, "read the sessions table");
	bool have[sizeof(adopt_cols) / sizeof(adopt_cols[0])] = {false};
	bool any = false, id = false;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(q, 0);
		any = true;
		if (name == NULL)
			continue;
		id |= strcmp(name, "id") == 0;
		for (size_t i = 0; i < sizeof(adopt_cols) / sizeof(adopt_cols[0]); i++)
			have[i] |= strcmp(name, adopt_cols[i].name) == 0;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return sq_fail(st, rc, "read the sessions table");
	if (!any)
		return 0; /* no table yet: migration 1 creates it */
	if (!id)
		return store__fail(st, WG_ESTATE, "whatsapp_sessions has no id column: wagate cannot "
		                                  "address its rows");
	char now[32];
	store__ts_format(now, (int64_t)wg_wall_ms());
	for (size_t i = 0; i < sizeof(adopt_cols) / sizeof(adopt_cols[0]); i++) {
		if (have[i])
			continue;
		char line[192];
		snprintf(line, sizeof(line), "ALTER TABLE whatsapp_sessions ADD COLUMN %s %s%s%s%s;\n",
		         adopt_cols[i].name, adopt_cols[i].def,
		         adopt_cols[i].now_default ? " DEFAULT '" : "",
		         adopt_cols[i].now_default ? now : "", adopt_cols[i].now_default ? "'" : "");
		size_t old = *sql ? strlen(*sql) : 0;
		*sql = wg_realloc(*sql, old + strlen(line) + 1);
		memcpy(*sql + old, line, strlen(line) + 1);
	}
	return 0;
}

/* Adds the missing columns, in one transaction; *added: whether anything was added. */
static int
adopt(struct store *st, bool *added)
{
	struct sq *sq = store__state(st);
	*added = false;
	int rc = exec(st, "BEGIN IMMEDIATE", "adopt");
	if (rc < 0)
		return rc;
	char *sql = NULL;
	rc = adopt_sql(st, &sql);
	if (rc == 0 && sql != NULL) {
		char *msg = NULL;
		int erc = sqlite3_exec(sq->db, sql, NULL, NULL, &msg);
		if (erc != SQLITE_OK) {
			rc = store__fail(st, (erc & 0xff) == SQLITE_BUSY ? WG_ETIMEDOUT : WG_ESTATE,
			                 "sqlite: adopting whatsapp_sessions: %s",
			                 msg ? msg : sqlite3_errstr(erc));
			sqlite3_free(msg);
		} else {
			*added = true;
		}
	}
	free(sql);
	if (rc == 0)
		rc = exec(st, "COMMIT", "adopt");
	if (rc < 0) {
		sqlite3_exec(sq->db, "ROLLBACK", NULL, NULL, NULL);
		*added = false;
	}
	return rc;
}

/* What migrate would run, as SQL text: the adoption, then each migration not applied yet. */
static int
sq_migrate_plan(struct store *st, char **out)
{
	struct sq *sq = store__state(st);
	*out = NULL;
	char *sql = NULL;
	int rc = adopt_sql(st, &sql);
	if (rc < 0) {
		free(sql);
		return rc;
	}
	/* The migrations table may not exist yet: then every migration is pending. */
	sqlite3_stmt *q = NULL;
	bool table = sqlite3_prepare_v2(sq->db, "SELECT 1 FROM " SQ_MIGRATIONS " WHERE version = ?1",
	                                -1, &q, NULL) == SQLITE_OK;
	for (int i = 0; i < SQ_NMIGRATIONS; i++) {
		if (table) {
			sqlite3_reset(q);
			sqlite3_bind_int(q, 1, store_migrations[i].version);
			if (sqlite3_step(q) == SQLITE_ROW)
				continue;
		}
		char head[96];
		snprintf(head, sizeof(head), "-- migration %d: %s\n", store_migrations[i].version,
		         store_migrations[i].name);
		char *text = store_schema_sql(&store_migrations[i], &store_sqlite_dialect);
		size_t old = sql ? strlen(sql) : 0;
		size_t add = strlen(head) + strlen(text);
		sql = wg_realloc(sql, old + add + 1);
		memcpy(sql + old, head, strlen(head));
		memcpy(sql + old + strlen(head), text, strlen(text) + 1);
		free(text);
	}
	sqlite3_finalize(q);
	*out = sql ? sql : wg_strdup("");
	return 0;
}

static int
sq_migrate_body(struct store *st, int *applied)
{
	struct sq *sq = store__state(st);
	sqlite3_stmt *q;
	int rc;
	*applied = 0;
	if ((rc = exec(st,
	               "CREATE TABLE IF NOT EXISTS " SQ_MIGRATIONS " (version BIGINT PRIMARY KEY,"
	               " name TEXT NOT NULL, applied_at TEXT NOT NULL)",
	               "migrate")) < 0)
		return rc;
	if ((rc = sq_stmt(st, SQ_MIG_MAX, &q)) < 0)
		return rc;
	int step = sqlite3_step(q);
	sqlite3_int64 max = step == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
	sq_done(q);
	if (step != SQLITE_ROW)
		return sq_fail(st, step, "migrate");
	/* A newer wagate's schema may mean things this one would get wrong; refuse to guess. */
	if (max > store_migrations[SQ_NMIGRATIONS - 1].version)
		return store__fail(st, WG_ESTATE,
		                   "database schema is at version %lld, newer than this wagate "
		                   "knows (%d); upgrade wagate",
		                   (long long)max, store_migrations[SQ_NMIGRATIONS - 1].version);
	/* A table the web app made first gets the columns wagate needs before anything uses them. */
	bool added;
	if ((rc = adopt(st, &added)) < 0)
		return rc;
	*applied += added;
	for (int i = 0; i < SQ_NMIGRATIONS; i++) {
		bool ran;
		if ((rc = migrate_one(st, &store_migrations[i], &ran)) < 0)
			return rc;
		*applied += ran;
	}
	/*
	 * A whatsapp_sessions created by someone else survives IF NOT EXISTS;
	 * preparing every statement now turns a missing column into one clear
	 * error at startup instead of failures later.
	 */
	for (int i = 0; i < SQ_NSTMT; i++) {
		if (sq->stmt[i] != NULL)
			continue;
		int prc = sqlite3_prepare_v3(sq->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                             &sq->stmt[i], NULL);
		if (prc != SQLITE_OK) {
			sq->stmt[i] = NULL;
			return store__fail(st, WG_ESTATE,
			                   "sqlite: tables do not match what wagate expects: %s",
			                   sqlite3_errmsg(sq->db));
		}
	}
	return 0;
}

static void
sq_set_wait(struct store *st, int ms)
{
	struct sq *sq = store__state(st);
	sq->busy_ms = ms;
	if (sq->db != NULL)
		sqlite3_busy_timeout(sq->db, ms);
}

static int
sq_ping(struct store *st)
{
	sqlite3_stmt *q;
	int rc = sq_check_file(st);
	if (rc < 0)
		return rc;
	rc = sq_stmt(st, SQ_PING, &q);
	if (rc < 0)
		return rc;
	rc = sqlite3_step(q);
	sq_done(q);
	return rc == SQLITE_ROW ? 0 : sq_fail(st, rc, "ping");
}

/*
 * SQLite's data_version changes when another connection (the web app, the
 * sqlite3 shell) commits to the file, never for our own commits; with the
 * connection's generation it tells the monitor whether anyone else wrote.
 */
static int
sq_data_version(struct store *st, uint64_t *version)
{
	struct sq *sq = store__state(st);
	sqlite3_stmt *q;
	int rc = sq_check_file(st);
	if (rc < 0)
		return rc;
	rc = sq_stmt(st, SQ_DATA_VERSION, &q);
	if (rc < 0)
		return rc;
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		sq_done(q);
		return sq_fail(st, rc, "data_version");
	}
	*version = ((uint64_t)sq->generation << 32) | (uint32_t)sqlite3_column_int64(q, 0);
	sq_done(q);
	return 0;
}

/*
 * Rewrites the file: the pages that held credentials before they were
 * sealed (free pages keep their old bytes) are gone, and so is the WAL.
 */
static int
sq_compact(struct store *st)
{
	int rc = exec(st, "PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint");
	if (rc == 0)
		rc = exec(st, "VACUUM", "vacuum");
	if (rc == 0)
		rc = exec(st, "PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint");
	return rc;
}

/* Runs a statement that takes no parameters (BEGIN, COMMIT, ROLLBACK). */
static int
sq_simple(struct store *st, enum sq_stmt which, const char *op)
{
	sqlite3_stmt *q;
	int rc = sq_stmt(st, which, &q);
	return rc < 0 ? rc : sq_step_done(st, q, op);
}

/* Ends a transaction: COMMIT when rc is 0, else ROLLBACK (keeping rc and its message). */
static int
sq_end(struct store *st, int rc, const char *op)
{
	if (rc == 0)
		rc = sq_simple(st, SQ_COMMIT, op);
	if (rc < 0) {
		struct sq *sq = store__state(st);
		if (!sqlite3_get_autocommit(sq->db)) {
			sqlite3_stmt *q;
			if (sq_stmt(st, SQ_ROLLBACK, &q) == 0) {
				sqlite3_step(q);
				sq_done(q);
			}
		}
	}
	return rc;
}

/* Before anything is served (or right after a replaced file was opened): it may wait for locks. */
static int
sq_migrate(struct store *st, int *applied)
{
	struct sq *sq = store__state(st);
	if (sq->db == NULL)
		return store__fail(st, WG_EIO, "the database file could not be reopened yet; retrying");
	sqlite3_busy_timeout(sq->db, SQ_BUSY_START_MS);
	int rc = sq_migrate_body(st, applied);
	sqlite3_busy_timeout(sq->db, sq->busy_ms);
	return rc;
}

static int
sq_reconcile_body(struct store *st, int64_t now, int *changed)
{
	struct sq *sq = store__state(st);
	sqlite3_stmt *q;
	int rc;
	if ((rc = sq_stmt(st, SQ_RECONCILE_HISTORY, &q)) < 0)
		return rc;
	bind_ts(q, 1, now);
	if ((rc = sq_step_done(st, q, "reconcile")) < 0)
		return rc;
	if ((rc = sq_stmt(st, SQ_RECONCILE, &q)) < 0)
		return rc;
	bind_ts(q, 1, now);
	if ((rc = sq_step_done(st, q, "reconcile")) < 0)
		return rc;
	*changed = sqlite3_changes(sq->db);
	return 0;
}

static int
sq_reconcile(struct store *st, int64_t now, int *changed)
{
	struct sq *sq = store__state(st);
	int rc = sq_simple(st, SQ_BEGIN, "reconcile");
	if (rc < 0)
		return rc;
	sqlite3_busy_timeout(sq->db, SQ_BUSY_START_MS); /* before serving: may wait */
	rc = sq_end(st, sq_reconcile_body(st, now, changed), "reconcile");
	sqlite3_busy_timeout(sq->db, sq->busy_ms);
	if (rc < 0)
		*changed = 0;
	return rc;
}

/*
 * Row validation. The helpers name the row by its id (validated first, so it
 * is safe to print) and the column, and never print a value.
 */
struct row {
	struct store *st;
	sqlite3_stmt *q;
	const char *table;
	char id[STORE_ID_LEN + 1];
};

static int
row_bad(struct row *r, int code, const char *col, const char *problem)
{
	return store__fail(r->st, code, "%s row '%s': %s %s", r->table, r->id, col, problem);
}

/* Reads a text column into a malloc'd string; NULL allowed when nullable. */
static int
col_text(struct row *r, int i, const char *col, size_t max, bool nullable, char **out)
{
	*out = NULL;
	switch (sqlite3_column_type(r->q, i)) {
	case SQLITE_NULL:
		return nullable ? 0 : row_bad(r, WG_EINVAL, col, "is NULL");
	case SQLITE_TEXT:
		break;
	default:
		return row_bad(r, WG_EINVAL, col, "is not text");
	}
	const char *p = (const char *)sqlite3_column_text(r->q, i);
	int n = sqlite3_column_bytes(r->q, i);
	if (p == NULL)
		return row_bad(r, WG_EIO, col, "could not be read");
	if ((size_t)n > max)
		return row_bad(r, WG_ELIMIT, col, "is too long");
	if (strlen(p) != (size_t)n)
		return row_bad(r, WG_EINVAL, col, "contains a NUL byte");
	*out = wg_memdup(p, (size_t)n + 1);
	return 0;
}

/* Reads a short text column into a fixed buffer; "" for NULL when nullable. */
static int
col_word(struct row *r, int i, const char *col, char *out, size_t size, bool nullable)
{
	out[0] = '\0';
	int t = sqlite3_column_type(r->q, i);
	if (t == SQLITE_NULL)
		return nullable ? 0 : row_bad(r, WG_EINVAL, col, "is NULL");
	if (t != SQLITE_TEXT)
		return row_bad(r, WG_EINVAL, col, "is not text");
	const char *p = (const char *)sqlite3_column_text(r->q, i);
	int n = sqlite3_column_bytes(r->q, i);
	if (p == NULL || n <= 0 || (size_t)n >= size || strlen(p) != (size_t)n)
		return row_bad(r, WG_EINVAL, col, "is empty, too long or contains a NUL byte");
	memcpy(out, p, (size_t)n + 1);
	return 0;
}

/* Booleans are stored as 0 and 1 (SQLite's true and false); anything else is bad data. */
static int
col_bool(struct row *r, int i, const char *col, int *out)
{
	if (sqlite3_column_type(r->q, i) != SQLITE_INTEGER)
		return row_bad(r, WG_EINVAL, col, "is not a boolean (0 or 1)");
	sqlite3_int64 v = sqlite3_column_int64(r->q, i);
	if (v != 0 && v != 1)
		return row_bad(r, WG_EINVAL, col, "is not a boolean (0 or 1)");
	*out = (int)v;
	return 0;
}

static int
col_ts(struct row *r, int i, const char *col, bool nullable, int64_t *out)
{
	*out = 0;
	int t = sqlite3_column_type(r->q, i);
	if (t == SQLITE_NULL)
		return nullable ? 0 : row_bad(r, WG_EINVAL, col, "is NULL");
	if (t != SQLITE_TEXT)
		return row_bad(r, WG_EINVAL, col, "is not an ISO 8601 timestamp");
	const char *p = (const char *)sqlite3_column_text(r->q, i);
	int n = sqlite3_column_bytes(r->q, i);
	if (p == NULL || n > 64 || store__ts_parse(p, (size_t)n, out) < 0)
		return row_bad(r, WG_EINVAL, col, "is not an ISO 8601 timestamp");
	return 0;
}

/* Reads the id column first, so later messages can name the row. */
static int
col_id(struct row *r, int i, char *out)
{
	/* The type first: reading an integer as text converts it (a table whose ids are integers). */
	int t = sqlite3_column_type(r->q, i);
	const char *p = (const char *)sqlite3_column_text(r->q, i);
	int n = sqlite3_column_bytes(r->q, i);
	if ((t != SQLITE_TEXT && t != SQLITE_INTEGER) || p == NULL ||
	    !store__id_valid(p, (size_t)n) || strlen(p) != (size_t)n)
		return store__fail(r->st, WG_EINVAL,
		                   "%s: a row's id is not text of 1 to %d printable characters, "
		                   "or an integer", r->table, STORE_ID_LEN);
	memcpy(out, p, (size_t)n + 1);
	memcpy(r->id, p, (size_t)n + 1);
	return 0;
}

static int
read_session_cols(struct row *r, struct store_session *s)
{
	int rc;
	if ((rc = col_id(r, 0, s->id)) < 0 ||
	    (rc = col_text(r, 1, "user_id", STORE_TEXT_MAX, true, &s->user_id)) < 0 ||
	    (rc = col_text(r, 2, "session_name", STORE_TEXT_MAX, false, &s->session_name)) < 0 ||
	    (rc = col_text(r, 3, "phone_number", STORE_TEXT_MAX, true, &s->phone_number)) < 0 ||
	    (rc = col_text(r, 4, "auth_state", STORE_AUTH_MAX, true, &s->auth_state)) < 0 ||
	    (rc = col_bool(r, 5, "is_active", &s->is_active)) < 0 ||
	    (rc = col_bool(r, 6, "auto_connect", &s->auto_connect)) < 0)
		return rc;
	if ((rc = col_word(r, 7, "connection_status", s->connection_status,
	                   sizeof(s->connection_status), true)) < 0)
		return row_bad(r, WG_EINVAL, "connection_status", "is not a known status");
	if (!store_status_valid(s->connection_status))
		return row_bad(r, WG_EINVAL, "connection_status", "is not a known status");
	if ((rc = col_text(r, 8, "last_error", STORE_TEXT_MAX, true, &s->last_error)) < 0 ||
	    (rc = col_ts(r, 9, "last_connected_at", true, &s->last_connected_at)) < 0 ||
	    (rc = col_ts(r, 10, "last_message_at", true, &s->last_message_at)) < 0 ||
	    (rc = col_ts(r, 11, "created_at", false, &s->created_at)) < 0 ||
	    (rc = col_ts(r, 12, "updated_at", false, &s->updated_at)) < 0)
		return rc;
	return 0;
}

static int
read_session(struct store *st, sqlite3_stmt *q, struct store_session *s)
{
	struct row r = {.st = st, .q = q, .table = "whatsapp_sessions", .id = "?"};
	memset(s, 0, sizeof(*s));
	int rc = read_session_cols(&r, s);
	if (rc < 0)
		store_session_free(s);
	return rc;
}

/*
 * Whether whatsapp_sessions.id has INTEGER affinity: a table the app made
 * with integer ids (SQLite's rule: a declared type containing "INT"). Asked
 * once per connection.
 */
static int
id_is_int(struct store *st)
{
	struct sq *sq = store__state(st);
	if (sq->id_int >= 0 || sq->db == NULL)
		return sq->id_int > 0;
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(sq->db, "SELECT upper(type) FROM pragma_table_info('whatsapp_sessions')"
	                                " WHERE name = 'id'", -1, &q, NULL) != SQLITE_OK)
		return 0;
	sq->id_int = 0;
	if (sqlite3_step(q) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(q, 0);
		sq->id_int = t != NULL && strstr(t, "INT") != NULL;
	}
	sqlite3_finalize(q);
	return sq->id_int;
}

/* Binds a keyset cursor's id: an integer for a table with integer ids (so it compares as one). */
static void
bind_id_key(struct store *st, sqlite3_stmt *q, int i, const char *id)
{
	if (id_is_int(st)) {
		char *end;
		long long v = id && id[0] ? strtoll(id, &end, 10) : 0;
		if (id == NULL || id[0] == '\0')
			sqlite3_bind_int64(q, i, INT64_MIN);
		else if (*end == '\0')
			sqlite3_bind_int64(q, i, v);
		else
			bind_text(q, i, id);
		return;
	}
	bind_text(q, i, id ? id : "");
}

static int
sq_list(struct store *st, const struct store_filter *f, struct store_session **out, size_t *n)
{
	sqlite3_stmt *q;
	int paged = f->after_id != NULL || f->limit != 0 || f->by_created || f->by_updated;
	int which = paged ? (f->by_updated   ? SQ_LIST_PAGE_UPDATED
	                     : f->by_created ? SQ_LIST_PAGE_CREATED
	                                     : SQ_LIST_PAGE_LIGHT)
	            : f->autoconnect ? (f->without_auth ? SQ_LIST_AUTO_LIGHT : SQ_LIST_AUTO)
	                             : (f->without_auth ? SQ_LIST_ALL_LIGHT : SQ_LIST_ALL);
	int rc = sq_stmt(st, which, &q);
	if (rc < 0)
		return rc;
	if (paged)
		store__set_cursor(st, NULL, NULL);
	if (paged && (f->by_created || f->by_updated)) {
		/* The cursor is the text as stored (formats differ between writers); "" sorts first. */
		const char *after = f->by_updated ? f->after_updated : f->after_created;
		bind_text(q, 1, after ? after : "");
		bind_id_key(st, q, 3, f->after_id);
		sqlite3_bind_int64(q, 2, f->limit ? (sqlite3_int64)f->limit : -1);
	} else if (paged) {
		bind_id_key(st, q, 1, f->after_id);
		sqlite3_bind_int64(q, 2, f->limit ? (sqlite3_int64)f->limit : -1);
	}
	struct store_session *arr = NULL;
	size_t len = 0, cap = 0, skipped = 0;
	char first[256] = "";
	int step;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		if (len == STORE_LIST_MAX) {
			rc = store__fail(st, WG_ELIMIT, "more than %u sessions", STORE_LIST_MAX);
			break;
		}
		if (len == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			arr = wg_realloc(arr, cap * sizeof(*arr));
		}
		if (paged) {
			/* The raw keys, good row or bad, so the next page starts after this one. */
			const char *rid = (const char *)sqlite3_column_text(q, 0);
			const char *rcr = (const char *)sqlite3_column_text(q, f->by_updated ? 12 : 11);
			if (rid)
				store__set_cursor(st, rid, rcr ? rcr : "");
		}
		rc = read_session(st, q, &arr[len]);
		if (rc == WG_EINVAL || rc == WG_ELIMIT) {
			/* Bad data in one row: keep its reason, skip it, list the others. */
			if (skipped++ == 0)
				snprintf(first, sizeof(first), "%s", store_errmsg(st));
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		len++;
	}
	store__set_skipped(st, skipped);
	if (skipped)
		store__fail(st, 0, "skipped %zu session row(s) with bad data; first: %s", skipped, first);
	if (rc == 0 && step != SQLITE_DONE)
		rc = sq_fail(st, step, "list");
	sq_done(q);
	if (rc < 0) {
		store_list_free(arr, len);
		return rc;
	}
	*out = arr;
	*n = len;
	return 0;
}

static int
sq_get(struct store *st, const char *id, struct store_session *out)
{
	sqlite3_stmt *q;
	int rc = sq_stmt(st, SQ_GET, &q);
	if (rc < 0)
		return rc;
	bind_text(q, 1, id);
	int step = sqlite3_step(q);
	if (step == SQLITE_ROW)
		rc = read_session(st, q, out);
	else if (step == SQLITE_DONE)
		rc = store__fail(st, WG_ENOTFOUND, "no session '%s'", id);
	else
		rc = sq_fail(st, step, "get");
	sq_done(q);
	return rc;
}

static int
sq_find_name(struct store *st, const char *user_id, const char *name, char id[STORE_ID_LEN + 1])
{
	sqlite3_stmt *q;
	int rc = sq_stmt(st, SQ_FIND_NAME, &q);
	if (rc < 0)
		return rc;
	bind_text(q, 1, name);
	bind_text(q, 2, user_id);
	int step = sqlite3_step(q);
	if (step == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(q, 0);
		int len = sqlite3_column_bytes(q, 0);
		if (v != NULL && store__id_valid((const char *)v, (size_t)len)) {
			memcpy(id, v, (size_t)len);
			id[len] = '\0';
			rc = 0;
		} else {
			rc = store__fail(st, WG_EINVAL, "a session named like this has a bad id");
		}
	} else if (step == SQLITE_DONE) {
		rc = store__fail(st, WG_ENOTFOUND, "no session of that name");
	} else {
		rc = sq_fail(st, step, "find by name");
	}
	sq_done(q);
	return rc;
}

static int
sq_insert(struct store *st, struct store_session *s)
{
	sqlite3_stmt *q;
	/* An integer id comes from the table itself (its rowid); any other kind is a new uuid. */
	bool numbered = s->id[0] == '\0' && id_is_int(st);
	if (s->id[0] == '\0' && !numbered)
		store_uuid(s->id);
	int rc = sq_stmt(st, numbered ? SQ_INSERT_AUTO : SQ_INSERT, &q);
	if (rc < 0)
		return rc;
	bind_text(q, 1, s->id);
	bind_text(q, 2, s->user_id);
	bind_text(q, 3, s->session_name);
	bind_text(q, 4, s->phone_number);
	bind_text(q, 5, s->auth_state);
	sqlite3_bind_int(q, 6, s->is_active);
	sqlite3_bind_int(q, 7, s->auto_connect);
	bind_text(q, 8, s->connection_status[0] != '\0' ? s->connection_status : NULL);
	bind_text(q, 9, s->last_error);
	bind_ts(q, 10, s->last_connected_at);
	bind_ts(q, 11, s->last_message_at);
	bind_ts(q, 12, s->created_at);
	bind_ts(q, 13, s->updated_at);
	if (!numbered)
		return sq_step_done(st, q, "insert");
	int step = sqlite3_step(q);
	if (step == SQLITE_ROW) {
		snprintf(s->id, sizeof(s->id), "%lld", (long long)sqlite3_column_int64(q, 0));
		step = sqlite3_step(q);
	}
	sq_done(q);
	return step == SQLITE_DONE ? 0 : sq_fail(st, step, "insert");
}

/* Finds or prepares the UPDATE for a field mask; *cached says whether the cache owns it. */
static int
update_stmt(struct store *st, unsigned fields, sqlite3_stmt **out, bool *cached)
{
	struct sq *sq = store__state(st);
	int slot = -1;
	for (int i = 0; i < SQ_UPDATE_CACHE; i++) {
		if (sq->upd[i].q != NULL && sq->upd[i].mask == fields) {
			*out = sq->upd[i].q;
			*cached = true;
			return 0;
		}
		if (sq->upd[i].q == NULL && slot < 0)
			slot = i;
	}
	/* Column names come from update_cols[], never from callers; values are bound. */
	char sql[512];
	size_t len = (size_t)snprintf(sql, sizeof(sql), "UPDATE whatsapp_sessions SET ");
	int param = 1;
	for (size_t b = 0; b < sizeof(update_cols) / sizeof(update_cols[0]); b++) {
		if (!(fields & (1u << b)))
			continue;
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s = ?%d, ", update_cols[b],
		                        param++);
	}
	len += (size_t)snprintf(sql + len, sizeof(sql) - len, "updated_at = ?%d WHERE id = ?%d",
	                        param, param + 1);
	if (len >= sizeof(sql))
		return store__fail(st, WG_ELIMIT, "update statement too long");
	if (sq->db == NULL)
		return store__fail(st, WG_EIO, "the database file could not be reopened yet; retrying");
	int rc = sqlite3_prepare_v3(sq->db, sql, -1, slot >= 0 ? SQLITE_PREPARE_PERSISTENT : 0, out,
	                            NULL);
	if (rc != SQLITE_OK) {
		*out = NULL;
		return sq_fail(st, rc, "prepare update");
	}
	*cached = slot >= 0;
	if (slot >= 0) {
		sq->upd[slot].mask = fields;
		sq->upd[slot].q = *out;
	}
	return 0;
}

static int
sq_update(struct store *st, const char *id, const struct store_session *s, unsigned fields,
          int64_t now)
{
	struct sq *sq = store__state(st);
	sqlite3_stmt *q;
	bool cached;
	int rc = update_stmt(st, fields, &q, &cached);
	if (rc < 0)
		return rc;
	int p = 1;
	if (fields & STORE_F_USER_ID)
		bind_text(q, p++, s->user_id);
	if (fields & STORE_F_SESSION_NAME)
		bind_text(q, p++, s->session_name);
	if (fields & STORE_F_PHONE)
		bind_text(q, p++, s->phone_number);
	if (fields & STORE_F_AUTH)
		bind_text(q, p++, s->auth_state);
	if (fields & STORE_F_ACTIVE)
		sqlite3_bind_int(q, p++, s->is_active);
	if (fields & STORE_F_AUTO)
		sqlite3_bind_int(q, p++, s->auto_connect);
	if (fields & STORE_F_STATUS)
		bind_text(q, p++, s->connection_status[0] != '\0' ? s->connection_status : NULL);
	if (fields & STORE_F_ERROR)
		bind_text(q, p++, s->last_error);
	if (fields & STORE_F_CONNECTED_AT)
		bind_ts(q, p++, s->last_connected_at);
	if (fields & STORE_F_MESSAGE_AT)
		bind_ts(q, p++, s->last_message_at);
	bind_ts(q, p++, now);
	bind_text(q, p, id);
	rc = sq_step_done(st, q, "update");
	if (!cached)
		sqlite3_finalize(q);
	if (rc < 0)
		return rc;
	if (sqlite3_changes(sq->db) == 0)
		return store__fail(st, WG_ENOTFOUND, "no session '%s'", id);
	return 0;
}

static int
sq_delete(struct store *st, const char *id)
{
	struct sq *sq = store__state(st);
	sqlite3_stmt *q;
	int rc = sq_stmt(st, SQ_DELETE, &q);
	if (rc < 0)
		return rc;
	bind_text(q, 1, id);
	if ((rc = sq_step_done(st, q, "delete")) < 0)
		return rc;
	if (sqlite3_changes(sq->db) == 0)
		return store__fail(st, WG_ENOTFOUND, "no session '%s'", id);
	return 0;
}

/*
 * Runs a prepared INSERT ... RETURNING id of a row that belongs to a session
 * (a recovery attempt, a status change): stores the new id, and reports a
 * session that does not exist (the foreign key) as WG_ENOTFOUND.
 */
static int
sq_insert_child(struct store *st, sqlite3_stmt *q, const char *session_id, const char *what,
                int64_t *id)
{
	int step = sqlite3_step(q);
	if (step == SQLITE_ROW) {
		*id = sqlite3_column_int64(q, 0);
		step = sqlite3_step(q);
	}
	sq_done(q);
	if (step == SQLITE_DONE)
		return 0;
	if (step == SQLITE_CONSTRAINT_FOREIGNKEY)
		return store__fail(st, WG_ENOTFOUND, "no session '%s' for the %s", session_id, what);
	char op[48];
	snprintf(op, sizeof(op), "add %s", what);
	return sq_fail(st, step, op);
}

static int
sq_add_attempt(struct store *st, struct store_attempt *a)
{
	sqlite3_stmt *q;
	int rc = sq_stmt(st, SQ_ADD_ATTEMPT, &q);
	if (rc < 0)
		return rc;
	bind_text(q, 1, a->session_id);
	bind_ts(q, 2, a->at);
	bind_text(q, 3, a->trigger);
	bind_text(q, 4, a->action);
	bind_text(q, 5, a->result);
	bind_text(q, 6, a->detail);
	return sq_insert_child(st, q, a->session_id, "attempt", &a->id);
}

static int
read_attempt(struct store *st, sqlite3_stmt *q, struct store_attempt *a)
{
	struct row r = {.st = st, .q = q, .table = "whatsapp_session_recovery_attempts"};
	memset(a, 0, sizeof(*a));
	snprintf(r.id, sizeof(r.id), "%lld", (long long)sqlite3_column_int64(q, 0));
	if (sqlite3_column_type(q, 0) != SQLITE_INTEGER)
		return store__fail(st, WG_EINVAL, "%s: a row's id is not an integer", r.table);
	a->id = sqlite3_column_int64(q, 0);
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
sq_count_attempts(struct store *st, const char *session_id, const char *prefix, int64_t since,
                  int *count)
{
	sqlite3_stmt *q;
	int rc = sq_stmt(st, SQ_COUNT_ATTEMPTS, &q);
	if (rc < 0)
		return rc;
	char ts[32];
	store__ts_format(ts, since);
	bind_text(q, 1, session_id);
	sqlite3_bind_text(q, 2, ts, -1, SQLITE_TRANSIENT);
	bind_text(q, 3, prefix);
	int step = sqlite3_step(q);
	if (step == SQLITE_ROW) {
		sqlite3_int64 v = sqlite3_column_int64(q, 0);
		*count = v > 0x7fffffff ? 0x7fffffff : (int)v;
		rc = 0;
	} else {
		rc = sq_fail(st, step, "count attempts");
	}
	sq_done(q);
	return rc;
}

static int
sq_get_setting(struct store *st, const char *key, char **value)
{
	sqlite3_stmt *q;
	int rc = sq_stmt(st, SQ_GET_SETTING, &q);
	if (rc < 0)
		return rc;
	bind_text(q, 1, key);
	int step = sqlite3_step(q);
	if (step == SQLITE_ROW) {
		struct row r = {.st = st, .q = q, .table = "wagate_settings"};
		snprintf(r.id, sizeof(r.id), "%s", key);
		rc = col_text(&r, 0, "value", STORE_TEXT_MAX, false, value);
	} else if (step == SQLITE_DONE) {
		rc = store__fail(st, WG_ENOTFOUND, "no setting '%s'", key);
	} else {
		rc = sq_fail(st, step, "get setting");
	}
	sq_done(q);
	return rc;
}

static int
sq_set_setting(struct store *st, const char *key, const char *value)
{
	sqlite3_stmt *q;
	int rc = sq_check_file(st);
	if (rc < 0)
		return rc;
	rc = sq_stmt(st, SQ_SET_SETTING, &q);
	if (rc < 0)
		return rc;
	bind_text(q, 1, key);
	bind_text(q, 2, value);
	bind_ts(q, 3, (int64_t)wg_wall_ms());
	return sq_step_done(st, q, "set setting");
}

static int
sq_prune_one(struct store *st, enum sq_stmt which, int64_t before, size_t max, size_t *deleted)
{
	sqlite3_stmt *q;
	int rc = sq_stmt(st, which, &q);
	if (rc < 0)
		return rc;
	bind_ts(q, 1, before);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)max);
	rc = sq_step_done(st, q, "prune");
	if (rc == 0)
		*deleted += (size_t)sqlite3_changes(sqlite3_db_handle(q));
	return rc;
}

static int
sq_prune(struct store *st, int64_t before, size_t max, size_t *deleted)
{
	int rc = sq_check_file(st);
	if (rc < 0)
		return rc;
	*deleted = 0;
	/* Two short statements, each its own transaction: the lock is held for one batch at a time. */
	if ((rc = sq_prune_one(st, SQ_PRUNE_ATTEMPTS, before, max, deleted)) < 0)
		return rc;
	return sq_prune_one(st, SQ_PRUNE_STATUS, before, max, deleted);
}

static int
sq_add_status_body(struct store *st, struct store_status_change *c)
{
	sqlite3_stmt *q;
	int rc = sq_stmt(st, SQ_ADD_STATUS, &q);
	if (rc < 0)
		return rc;
	bind_text(q, 1, c->session_id);
	bind_ts(q, 2, c->at);
	bind_text(q, 3, c->status);
	bind_text(q, 4, c->reason);
	if ((rc = sq_insert_child(st, q, c->session_id, "status change", &c->id)) < 0)
		return rc;
	if ((rc = sq_stmt(st, SQ_TRIM_STATUS, &q)) < 0)
		return rc;
	bind_text(q, 1, c->session_id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)STORE_HISTORY_KEEP);
	return sq_step_done(st, q, "trim status history");
}

/* The row and the trim in one transaction: one commit (one fsync) for both. */
static int
sq_add_status_change(struct store *st, struct store_status_change *c)
{
	int rc = sq_simple(st, SQ_BEGIN, "add status change");
	if (rc < 0)
		return rc;
	return sq_end(st, sq_add_status_body(st, c), "add status change");
}

static int
read_status_change(struct store *st, sqlite3_stmt *q, struct store_status_change *c)
{
	struct row r = {.st = st, .q = q, .table = "whatsapp_session_status_history"};
	memset(c, 0, sizeof(*c));
	snprintf(r.id, sizeof(r.id), "%lld", (long long)sqlite3_column_int64(q, 0));
	if (sqlite3_column_type(q, 0) != SQLITE_INTEGER)
		return store__fail(st, WG_EINVAL, "%s: a row's id is not an integer", r.table);
	c->id = sqlite3_column_int64(q, 0);
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

/*
 * The per-session listings (recovery attempts, status history) share one
 * shape: bind (session_id, since, limit), read each row with read() into an
 * array of elem-sized items, and free the partial array on any error.
 */
typedef int (*sq_row_reader)(struct store *st, sqlite3_stmt *q, void *item);

static int
sq_session_rows(struct store *st, int stmt, const char *what, const char *session_id,
                int64_t since, size_t limit, size_t elem, sq_row_reader read,
                void (*free_arr)(void *arr, size_t n), void **out, size_t *n)
{
	sqlite3_stmt *q;
	int rc = sq_stmt(st, stmt, &q);
	if (rc < 0)
		return rc;
	char ts[32];
	store__ts_format(ts, since);
	bind_text(q, 1, session_id);
	sqlite3_bind_text(q, 2, ts, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)limit);
	char *arr = NULL;
	size_t len = 0, cap = 0;
	int step;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			arr = wg_realloc(arr, cap * elem);
		}
		if ((rc = read(st, q, arr + len * elem)) < 0)
			break;
		len++;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = sq_fail(st, step, what);
	sq_done(q);
	if (rc < 0) {
		free_arr(arr, len);
		return rc;
	}
	*out = arr;
	*n = len;
	return 0;
}

static int
read_attempt_any(struct store *st, sqlite3_stmt *q, void *item)
{
	return read_attempt(st, q, item);
}

static void
free_attempts_any(void *arr, size_t n)
{
	store_attempts_free(arr, n);
}

static int
sq_attempts(struct store *st, const char *session_id, int64_t since, size_t limit,
            struct store_attempt **out, size_t *n)
{
	return sq_session_rows(st, SQ_ATTEMPTS, "attempts", session_id, since, limit, sizeof(**out),
	                       read_attempt_any, free_attempts_any, (void **)out, n);
}

static int
sq_recent_attempts(struct store *st, const char *const *ids, size_t nids, size_t per_session,
                   struct store_attempt **out, size_t *n)
{
	sqlite3_stmt *q;
	int rc = sq_stmt(st, SQ_RECENT_ATTEMPTS, &q);
	if (rc < 0)
		return rc;
	/*
	 * The ids as a JSON array, written here (a JSON library's tree of 500
	 * strings cost more than the query): checked ids are printable ASCII,
	 * so only quotes and backslashes need escaping.
	 */
	char *text = wg_malloc(nids * (2 * STORE_ID_LEN + 3) + 3), *o = text;
	*o++ = '[';
	for (size_t i = 0; i < nids; i++) {
		if (i > 0)
			*o++ = ',';
		*o++ = '"';
		for (const char *c = ids[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				*o++ = '\\';
			*o++ = *c;
		}
		*o++ = '"';
	}
	*o++ = ']';
	sqlite3_bind_text(q, 1, text, (int)(o - text), free);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)per_session);
	struct store_attempt *v = NULL;
	size_t len = 0, cap = 0;
	int step;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			v = wg_realloc(v, cap * sizeof(*v));
		}
		if ((rc = read_attempt(st, q, &v[len])) < 0)
			break;
		len++;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = sq_fail(st, step, "recent attempts");
	sq_done(q);
	if (rc < 0) {
		store_attempts_free(v, len);
		return rc;
	}
	*out = v;
	*n = len;
	return 0;
}

static int
read_status_change_any(struct store *st, sqlite3_stmt *q, void *item)
{
	return read_status_change(st, q, item);
}

static void
free_history_any(void *arr, size_t n)
{
	store_status_history_free(arr, n);
}

static int
sq_status_history(struct store *st, const char *session_id, int64_t since, size_t limit,
                  struct store_status_change **out, size_t *n)
{
	return sq_session_rows(st, SQ_STATUS_HISTORY, "status history", session_id, since, limit,
	                       sizeof(**out), read_status_change_any, free_history_any, (void **)out, n);
}

static const struct store_batch_ops sq_batch_ops = {
    .update = sq_update,
    .add_status = sq_add_status_body,
    .add_attempt = sq_add_attempt,
};

static int
sq_write_batch(struct store *st, struct store_write *w, size_t n, int64_t now, size_t *gone)
{
	int rc = sq_check_file(st);
	if (rc < 0)
		return rc;
	rc = sq_simple(st, SQ_BEGIN, "write");
	if (rc < 0)
		return rc;
	/* One transaction for the supervisor's batch; a row that is gone skips its entry. */
	rc = sq_end(st, store__batch_body(st, &sq_batch_ops, w, n, now, gone), "write");
	if (rc < 0)
		*gone = 0;
	return rc;
}

/* ---- the webhook outbox ---- */

static int
sq_hook_add(struct store *st, const struct store_hook *h)
{
	sqlite3_stmt *q;
	int rc = sq_check_file(st);
	if (rc < 0 || (rc = sq_stmt(st, SQ_HOOK_ADD, &q)) < 0)
		return rc;
	bind_text(q, 1, h->id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)h->seq);
	bind_text(q, 3, h->url);
	bind_text(q, 4, h->session_id);
	bind_text(q, 5, h->kind);
	bind_text(q, 6, h->body);
	bind_ts(q, 7, h->created_at);
	return sq_step_done(st, q, "add webhook delivery");
}

static int
sq_hook_delete(struct store *st, const char *id)
{
	sqlite3_stmt *q;
	int rc = sq_check_file(st);
	if (rc < 0 || (rc = sq_stmt(st, SQ_HOOK_DELETE, &q)) < 0)
		return rc;
	bind_text(q, 1, id);
	return sq_step_done(st, q, "delete webhook delivery");
}

static int
sq_hook_list(struct store *st, size_t max, struct store_hook **out, size_t *n)
{
	sqlite3_stmt *q;
	int rc = sq_stmt(st, SQ_HOOK_LIST, &q);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)max);
	struct store_hook *v = NULL;
	size_t len = 0, cap = 0;
	int step;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			v = wg_realloc(v, cap * sizeof(*v));
		}
		struct store_hook *h = &v[len];
		memset(h, 0, sizeof(*h));
		struct row r = {.st = st, .q = q, .table = "wagate_webhook_outbox"};
		char *id = NULL;
		if ((rc = col_text(&r, 0, "id", 32, false, &id)) < 0)
			break;
		snprintf(h->id, sizeof(h->id), "%s", id);
		snprintf(r.id, sizeof(r.id), "%s", id);
		free(id);
		h->seq = (int64_t)sqlite3_column_int64(q, 1);
		len++;
		if ((rc = col_text(&r, 2, "url", STORE_TEXT_MAX, false, &h->url)) < 0 ||
		    (rc = col_text(&r, 3, "session_id", STORE_TEXT_MAX, true, &h->session_id)) < 0 ||
		    (rc = col_word(&r, 4, "kind", h->kind, sizeof(h->kind), false)) < 0 ||
		    (rc = col_text(&r, 5, "body", STORE_HOOK_BODY_MAX, false, &h->body)) < 0 ||
		    (rc = col_ts(&r, 6, "created_at", false, &h->created_at)) < 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = sq_fail(st, step, "list webhook deliveries");
	sq_done(q);
	if (rc < 0) {
		store_hooks_free(v, len);
		return rc;
	}
	*out = v;
	*n = len;
	return 0;
}

const struct store_backend store_sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .migrate = sq_migrate,
    .ping = sq_ping,
    .reconcile = sq_reconcile,
    .list = sq_list,
    .get = sq_get,
    .find_name = sq_find_name,
    .insert = sq_insert,
    .update = sq_update,
    .del = sq_delete,
    .add_attempt = sq_add_attempt,
    .attempts = sq_attempts,
    .count_attempts = sq_count_attempts,
    .get_setting = sq_get_setting,
    .set_setting = sq_set_setting,
    .set_wait = sq_set_wait,
    .migrate_plan = sq_migrate_plan,
    .prune = sq_prune,
    .add_status_change = sq_add_status_change,
    .status_history = sq_status_history,
    .write_batch = sq_write_batch,
    .recent_attempts = sq_recent_attempts,
    .data_version = sq_data_version,
    .compact = sq_compact,
    .hook_add = sq_hook_add,
    .hook_delete = sq_hook_delete,
    .hook_list = sq_hook_list,
};
