/*
 * The session store on real SQLite files in a temporary directory: opening,
 * migrations, every column, the autoconnect filter, reconciliation, attempts,
 * settings, and bad input from the database (corrupt files, rows written by
 * other programs, locks). Prints the cost of common calls.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "core/err.h"
#include "store/store.h"

#define SECRET "SECRET-CREDENTIALS-7f3a"

struct fx {
	char dir[256];
	char path[512];
	char url[1024];
	struct store *st;
	/* PostgreSQL: the cluster's URL, and a schema of this test's own (search_path). */
	bool pg;
	char base[512];
	char schema[48];
};

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/wagate-store-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	/* Two missing levels, so open has to create them. */
	snprintf(fx->path, sizeof(fx->path), "%s/var/lib/wagate.db", fx->dir);
	snprintf(fx->url, sizeof(fx->url), "sqlite:%s", fx->path);
	*state = fx;
	return 0;
}

/*
 * The same tests on PostgreSQL: WAGATE_TEST_PG names a throwaway cluster
 * (tests/pg/cluster.sh, started by CTest). Each test gets an empty schema of
 * its own and its store sees only that schema.
 */
static PGconn *
pg_admin(const struct fx *fx)
{
	PGconn *c = PQconnectdb(fx->base);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot connect to the test cluster: %s", PQerrorMessage(c));
	PQsetNoticeProcessor(c, NULL, NULL);
	PGresult *r = PQexec(c, "SET client_min_messages TO warning");
	PQclear(r);
	return c;
}

static int
setup_pg(void **state)
{
	static int seq;
	const char *base = getenv("WAGATE_TEST_PG");
	if (base == NULL || base[0] == '\0') {
		fprintf(stderr, "WAGATE_TEST_PG is not set: ctest starts a cluster for it "
		                "(tests/pg/cluster.sh start DIR prints its URL)\n");
		return -1;
	}
	if (setup(state) != 0)
		return -1;
	struct fx *fx = *state;
	fx->pg = true;
	snprintf(fx->base, sizeof(fx->base), "%s", base);
	snprintf(fx->schema, sizeof(fx->schema), "t_%d_%d", (int)getpid(), ++seq);
	snprintf(fx->url, sizeof(fx->url), "%s%soptions=-csearch_path%%3D%s", base,
	         strchr(base, '?') ? "&" : "?", fx->schema);
	PGconn *c = pg_admin(fx);
	char sql[128];
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", fx->schema);
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	PQfinish(c);
	return ok ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	store_close(fx->st);
	if (fx->pg) {
		PGconn *c = pg_admin(fx);
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", fx->schema);
		PQclear(PQexec(c, sql));
		PQfinish(c);
	}
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* Opens and migrates the fixture's store. */
static struct store *
open_store(struct fx *fx)
{
	char err[256];
	int applied = -1;
	assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	return fx->st;
}

/* Runs SQL on a connection of its own, as the web app would. Returns the SQLite result. */
static int
raw(const char *path, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_extended_result_codes(db, 1);
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static int64_t
raw_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/*
 * SQL run by someone else (the web app) on the fixture's database, either
 * backend: SQLITE_OK or, on PostgreSQL, SQLITE_ERROR when it failed.
 */
static int
db_exec(struct fx *fx, const char *sql)
{
	if (!fx->pg)
		return raw(fx->path, sql);
	PGconn *c = PQconnectdb(fx->url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQsetNoticeProcessor(c, NULL, NULL);
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	PQfinish(c);
	return ok ? SQLITE_OK : SQLITE_ERROR;
}

static int64_t
db_int(struct fx *fx, const char *sql)
{
	if (!fx->pg)
		return raw_int(fx->path, sql);
	PGconn *c = PQconnectdb(fx->url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, sql);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(r), 1);
	int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return v;
}

static double
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Inserts a session with the given autoconnect-relevant values; returns its id in id. */
static void
add_session(struct store *st, const char *name, const char *auth, int active, int autoc,
            int64_t created, char id[STORE_ID_LEN + 1])
{
	struct store_session s;
	store_session_init(&s);
	s.session_name = name != NULL ? strdup(name) : NULL;
	s.auth_state = auth != NULL ? strdup(auth) : NULL;
	s.is_active = active;
	s.auto_connect = autoc;
	s.created_at = created;
	assert_int_equal(store_insert(st, &s), 0);
	memcpy(id, s.id, sizeof(s.id));
	store_session_free(&s);
}

static void
test_open_and_migrate(void **state)
{
	struct fx *fx = *state;
	char err[256];
	int applied = -1;
	struct stat sb;
	assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
	char dir[600];
	snprintf(dir, sizeof(dir), "%s/var/lib", fx->dir);
	assert_int_equal(stat(dir, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(fx->path, &sb), 0);
	assert_int_equal(sb.st_mode & 077, 0); /* holds credentials */

	uint32_t us = 0;
	assert_int_equal(store_ping(fx->st, &us), 0);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	assert_int_equal(applied, 10);
	char wal[600];
	snprintf(wal, sizeof(wal), "%s-wal", fx->path);
	assert_int_equal(stat(wal, &sb), 0);
	assert_int_equal(sb.st_mode & 077, 0);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	assert_int_equal(applied, 0);
	store_close(fx->st);
	fx->st = NULL;

	assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	assert_int_equal(applied, 0);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM wagate_schema_migrations"), 10);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM wagate_schema_migrations"
	                                   " WHERE applied_at LIKE '____-__-__T__:__:__.___Z'"),
	                 10);
	assert_int_equal(raw_int(fx->path, "PRAGMA journal_mode"), 0); /* text "wal" reads as 0 */
	assert_int_equal(raw(fx->path, "SELECT 1 FROM whatsapp_sessions LIMIT 0"), SQLITE_OK);

	/* A file someone made readable by others (and its WAL) is made private again at the next open. */
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(chmod(fx->path, 0644), 0);
	if (stat(wal, &sb) == 0)
		assert_int_equal(chmod(wal, 0644), 0);
	assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(stat(fx->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	if (stat(wal, &sb) == 0)
		assert_int_equal(sb.st_mode & 077, 0);
}

static void
test_newer_schema_refused(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	assert_int_equal(db_exec(fx, "INSERT INTO wagate_schema_migrations VALUES"
	                               " (99, 'future', '2030-01-01T00:00:00.000Z')"),
	                 SQLITE_OK);
	int applied = -1;
	assert_int_equal(store_migrate(st, &applied), WG_ESTATE);
	assert_non_null(strstr(store_errmsg(st), "newer"));
}

static void
test_existing_tables(void **state)
{
	struct fx *fx = *state;
	char err[256];
	int applied;
	/* The web app created a compatible table first, with a row in it. */
	assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(raw(fx->path,
	                     "CREATE TABLE whatsapp_sessions (id TEXT PRIMARY KEY,"
	                     " user_id TEXT, session_name TEXT NOT NULL DEFAULT 'primary',"
	                     " phone_number TEXT, auth_state TEXT,"
	                     " is_active BOOLEAN NOT NULL DEFAULT true,"
	                     " auto_connect BOOLEAN NOT NULL DEFAULT true,"
	                     " connection_status TEXT, last_error TEXT,"
	                     " last_connected_at TEXT, last_message_at TEXT,"
	                     " created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
	                     "INSERT INTO whatsapp_sessions (id, created_at, updated_at)"
	                     " VALUES ('web-1', '2026-11-24 13:45:01',"
	                     " '2026-11-24T15:45:01.5+02:00')"),
	                 SQLITE_OK);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	assert_int_equal(applied, 10);
	struct store_session s;
	assert_int_equal(store_get(fx->st, "web-1", &s), 0);
	assert_string_equal(s.session_name, "primary");
	assert_int_equal(s.is_active, 1);
	assert_int_equal(s.auto_connect, 1);
	assert_int_equal(s.created_at, 1795527901000LL);
	assert_int_equal(s.updated_at, 1795527901500LL);
	store_session_free(&s);
	store_close(fx->st);
	fx->st = NULL;

	/*
	 * A table the app made its own way (as a Prisma migration would: cuid ids,
	 * no auto_connect, no wagate columns, a column of its own) is adopted: the
	 * missing columns are added with the design's defaults, the app's stay.
	 */
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	assert_int_equal(mkdir(fx->dir, 0700), 0);
	assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(raw(fx->path, "CREATE TABLE whatsapp_sessions (id TEXT PRIMARY KEY,"
	                               " user_id TEXT, session_name TEXT NOT NULL, auth_state TEXT,"
	                               " is_active BOOLEAN NOT NULL DEFAULT 1, plan TEXT,"
	                               " created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
	                               "INSERT INTO whatsapp_sessions (id, session_name, auth_state,"
	                               " plan, created_at, updated_at) VALUES"
	                               " ('ckx1q2w3e0000abcd1234efgh', 'primary', '{}', 'gold',"
	                               " '2026-11-24T13:45:01.000Z', '2026-11-24T13:45:01.000Z')"),
	                 SQLITE_OK);
	char *plan = NULL;
	assert_int_equal(store_migrate_plan(fx->st, &plan), 0);
	assert_non_null(strstr(plan, "ALTER TABLE whatsapp_sessions ADD COLUMN auto_connect BOOLEAN "
	                             "NOT NULL DEFAULT true;"));
	assert_non_null(strstr(plan, "ADD COLUMN connection_status TEXT;"));
	assert_null(strstr(plan, "ADD COLUMN session_name")); /* the app's stays as it is */
	assert_non_null(strstr(plan, "-- migration 1: whatsapp_sessions"));
	free(plan);
	/* Planning ran nothing. */
	assert_int_equal(raw(fx->path, "SELECT auto_connect FROM whatsapp_sessions"), SQLITE_ERROR);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	assert_int_equal(applied, 11); /* the adoption, then every migration */
	assert_int_equal(store_get(fx->st, "ckx1q2w3e0000abcd1234efgh", &s), 0);
	assert_int_equal(s.auto_connect, 1);
	assert_int_equal(s.is_active, 1);
	assert_string_equal(s.connection_status, "");
	store_session_free(&s);
	assert_int_equal(raw(fx->path, "SELECT plan FROM whatsapp_sessions WHERE plan = 'gold'"),
	                 SQLITE_OK);
	assert_int_equal(store_migrate_plan(fx->st, &plan), 0);
	assert_string_equal(plan, "");
	free(plan);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	assert_int_equal(applied, 0);
	store_close(fx->st);
	fx->st = NULL;

	/* A table without an id cannot be used: refused, saying why. */
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	assert_int_equal(mkdir(fx->dir, 0700), 0);
	assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(raw(fx->path, "CREATE TABLE whatsapp_sessions (name TEXT)"), SQLITE_OK);
	assert_int_equal(store_migrate(fx->st, &applied), WG_ESTATE);
	assert_non_null(strstr(store_errmsg(fx->st), "no id column"));
}

static void
test_insert_get_defaults(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	struct store_session s, g;
	store_session_init(&s);
	assert_int_equal(store_insert(st, &s), 0);
	assert_int_equal(strlen(s.id), 36);
	assert_int_equal(s.id[14], '4');
	for (size_t i = 0; i < 36; i++)
		assert_true(s.id[i] == '-' || (s.id[i] >= '0' && s.id[i] <= '9') ||
		            (s.id[i] >= 'a' && s.id[i] <= 'f'));
	assert_string_equal(s.session_name, "primary");
	assert_true(s.created_at > 1700000000000LL);
	assert_int_equal(s.updated_at, s.created_at);

	assert_int_equal(store_get(st, s.id, &g), 0);
	assert_string_equal(g.id, s.id);
	assert_null(g.user_id);
	assert_string_equal(g.session_name, "primary");
	assert_null(g.phone_number);
	assert_null(g.auth_state);
	assert_int_equal(g.is_active, 1);
	assert_int_equal(g.auto_connect, 1);
	assert_string_equal(g.connection_status, "");
	assert_null(g.last_error);
	assert_int_equal(g.last_connected_at, 0);
	assert_int_equal(g.last_message_at, 0);
	assert_int_equal(g.created_at, s.created_at);
	assert_int_equal(g.updated_at, s.created_at);
	store_session_free(&g);

	/* Every field set on insert comes back. */
	struct store_session f;
	store_session_init(&f);
	memcpy(f.id, "caller-chosen-id", 17);
	f.user_id = strdup("user-9");
	f.session_name = strdup("backup");
	f.phone_number = strdup("15551234567");
	f.auth_state = strdup("{\"k\":\"" SECRET "\"}");
	f.is_active = 0;
	f.auto_connect = 0;
	snprintf(f.connection_status, sizeof(f.connection_status), "qr_pending");
	f.last_error = strdup("stream error 515");
	f.last_connected_at = 1795527901123LL;
	f.last_message_at = 1795527902456LL;
	f.created_at = 1795527900000LL;
	assert_int_equal(store_insert(st, &f), 0);
	assert_int_equal(store_get(st, "caller-chosen-id", &g), 0);
	assert_string_equal(g.user_id, "user-9");
	assert_string_equal(g.session_name, "backup");
	assert_string_equal(g.phone_number, "15551234567");
	assert_string_equal(g.auth_state, f.auth_state);
	assert_int_equal(g.is_active, 0);
	assert_int_equal(g.auto_connect, 0);
	assert_string_equal(g.connection_status, "qr_pending");
	assert_string_equal(g.last_error, "stream error 515");
	assert_int_equal(g.last_connected_at, 1795527901123LL);
	assert_int_equal(g.last_message_at, 1795527902456LL);
	assert_int_equal(g.created_at, 1795527900000LL);
	assert_int_equal(g.updated_at, 1795527900000LL);
	store_session_free(&g);
	/* The same id twice is a constraint error, reported without values. */
	assert_int_equal(store_insert(st, &f), WG_EINVAL);
	assert_null(strstr(store_errmsg(st), SECRET));
	store_session_free(&f);

	/* The database's defaults, for rows the web app inserts with only the required columns. */
	assert_int_equal(db_exec(fx, "INSERT INTO whatsapp_sessions (id, created_at, updated_at)"
	                               " VALUES ('raw-1', '2026-01-01T00:00:00.000Z',"
	                               " '2026-01-01T00:00:00.000Z')"),
	                 SQLITE_OK);
	assert_int_equal(store_get(st, "raw-1", &g), 0);
	assert_string_equal(g.session_name, "primary");
	assert_int_equal(g.is_active, 1);
	assert_int_equal(g.auto_connect, 1);
	assert_string_equal(g.connection_status, "");
	store_session_free(&g);
	store_session_free(&s);
}

static void
test_update_each_field(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	char id[STORE_ID_LEN + 1];
	add_session(st, NULL, "{}", 1, 1, 1795527900000LL, id);

	struct store_session want, v, g;
	assert_int_equal(store_get(st, id, &want), 0);
	store_session_init(&v);
	v.user_id = "u-42";
	v.session_name = "secondary";
	v.phone_number = "4915112345678";
	v.auth_state = "{\"creds\":\"" SECRET "\"}";
	v.is_active = 0;
	v.auto_connect = 0;
	snprintf(v.connection_status, sizeof(v.connection_status), "connected");
	v.last_error = "timed out";
	v.last_connected_at = 1795527911111LL;
	v.last_message_at = 1795527922222LL;

	int64_t now = 1795528000000LL;
	for (unsigned bit = 1; bit <= STORE_F_MESSAGE_AT; bit <<= 1) {
		now += 1000;
		assert_int_equal(store_update(st, id, &v, bit, now), 0);
		/* Apply the same change to the expected row by hand. */
		switch (bit) {
		case STORE_F_USER_ID:
			want.user_id = strdup(v.user_id);
			break;
		case STORE_F_SESSION_NAME:
			free(want.session_name);
			want.session_name = strdup(v.session_name);
			break;
		case STORE_F_PHONE:
			want.phone_number = strdup(v.phone_number);
			break;
		case STORE_F_AUTH:
			free(want.auth_state);
			want.auth_state = strdup(v.auth_state);
			break;
		case STORE_F_ACTIVE:
			want.is_active = 0;
			break;
		case STORE_F_AUTO:
			want.auto_connect = 0;
			break;
		case STORE_F_STATUS:
			memcpy(want.connection_status, "connected", 10);
			break;
		case STORE_F_ERROR:
			want.last_error = strdup(v.last_error);
			break;
		case STORE_F_CONNECTED_AT:
			want.last_connected_at = v.last_connected_at;
			break;
		case STORE_F_MESSAGE_AT:
			want.last_message_at = v.last_message_at;
			break;
		}
		want.updated_at = now;
		assert_int_equal(store_get(st, id, &g), 0);
#define SAME_STR(f)                                                                                \
	do {                                                                                       \
		if (want.f == NULL)                                                                \
			assert_null(g.f);                                                          \
		else                                                                               \
			assert_string_equal(g.f, want.f);                                          \
	} while (0)
		SAME_STR(user_id);
		SAME_STR(session_name);
		SAME_STR(phone_number);
		SAME_STR(auth_state);
		SAME_STR(last_error);
		assert_int_equal(g.is_active, want.is_active);
		assert_int_equal(g.auto_connect, want.auto_connect);
		assert_string_equal(g.connection_status, want.connection_status);
		assert_int_equal(g.last_connected_at, want.last_connected_at);
		assert_int_equal(g.last_message_at, want.last_message_at);
		assert_int_equal(g.created_at, want.created_at);
		assert_int_equal(g.updated_at, want.updated_at);
		store_session_free(&g);
	}

	/* Clearing nullable columns back to NULL. */
	struct store_session clr;
	store_session_init(&clr);
	unsigned nullable = STORE_F_USER_ID | STORE_F_PHONE | STORE_F_AUTH | STORE_F_STATUS |
	                    STORE_F_ERROR | STORE_F_CONNECTED_AT | STORE_F_MESSAGE_AT;
	assert_int_equal(store_update(st, id, &clr, nullable, now + 1), 0);
	assert_int_equal(store_get(st, id, &g), 0);
	assert_null(g.user_id);
	assert_null(g.phone_number);
	assert_null(g.auth_state);
	assert_null(g.last_error);
	assert_string_equal(g.connection_status, "");
	assert_int_equal(g.last_connected_at, 0);
	assert_int_equal(g.last_message_at, 0);
	assert_string_equal(g.session_name, "secondary");
	store_session_free(&g);
	store_session_free(&want);

	/* Bad arguments are refused before the database sees them. */
	snprintf(v.connection_status, sizeof(v.connection_status), "zombie");
	assert_int_equal(store_update(st, id, &v, STORE_F_STATUS, now), WG_EINVAL);
	v.session_name = NULL;
	assert_int_equal(store_update(st, id, &v, STORE_F_SESSION_NAME, now), WG_EINVAL);
	assert_int_equal(store_update(st, id, &v, 1024, now), WG_EINVAL);
	v.is_active = 2;
	assert_int_equal(store_update(st, id, &v, STORE_F_ACTIVE, now), WG_EINVAL);
}

/* Retention: rows older than a bound go, the oldest first, a bounded batch per call. */
static void
test_prune(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	struct store_session s;
	store_session_init(&s);
	assert_int_equal(store_insert(st, &s), 0);
	free(s.session_name);
	const int64_t t0 = 1795528000000LL;
	for (int i = 0; i < 10; i++) {
		struct store_attempt a;
		memset(&a, 0, sizeof(a));
		snprintf(a.session_id, sizeof(a.session_id), "%s", s.id);
		a.at = t0 + i * 1000;
		snprintf(a.trigger, sizeof(a.trigger), "manual");
		snprintf(a.action, sizeof(a.action), "reconnect");
		snprintf(a.result, sizeof(a.result), "failed");
		assert_int_equal(store_add_attempt(st, &a), 0);
		struct store_status_change c;
		memset(&c, 0, sizeof(c));
		snprintf(c.session_id, sizeof(c.session_id), "%s", s.id);
		c.at = t0 + i * 1000;
		snprintf(c.status, sizeof(c.status), "%s", i % 2 ? "connected" : "disconnected");
		assert_int_equal(store_add_status_change(st, &c), 0);
	}
	size_t deleted = 0;
	/* Older than t0 + 6 s: six of each; at most four per table per call. */
	assert_int_equal(store_prune(st, t0 + 6000, 4, &deleted), 0);
	assert_int_equal(deleted, 8);
	assert_int_equal(store_prune(st, t0 + 6000, 4, &deleted), 0);
	assert_int_equal(deleted, 4);
	assert_int_equal(store_prune(st, t0 + 6000, 4, &deleted), 0);
	assert_int_equal(deleted, 0);
	struct store_attempt *at;
	size_t n;
	assert_int_equal(store_attempts(st, s.id, 0, 0, &at, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(at[n - 1].at, t0 + 6000); /* the oldest left: exactly at the bound */
	store_attempts_free(at, n);
	struct store_status_change *h;
	assert_int_equal(store_status_history(st, s.id, 0, 0, &h, &n), 0);
	assert_int_equal(n, 4);
	store_status_history_free(h, n);
	assert_int_equal(store_prune(st, 0, 4, &deleted), WG_EINVAL);
}

/* Names per user: the oldest session of a (user, name), NULL user apart. */
static void
test_find_name(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	char id[STORE_ID_LEN + 1];
	assert_int_equal(store_find_name(st, NULL, "primary", id), WG_ENOTFOUND);
	const char *users[] = {NULL, "u-1", NULL};
	char ids[3][STORE_ID_LEN + 1];
	for (int i = 0; i < 3; i++) {
		struct store_session s;
		store_session_init(&s);
		s.user_id = (char *)users[i];
		s.created_at = 1795528000000LL + i;
		s.updated_at = s.created_at;
		assert_int_equal(store_insert(st, &s), 0);
		snprintf(ids[i], sizeof(ids[i]), "%s", s.id);
		free(s.session_name);
	}
	assert_int_equal(store_find_name(st, NULL, "primary", id), 0);
	assert_string_equal(id, ids[0]); /* the oldest of the two */
	assert_int_equal(store_find_name(st, "u-1", "primary", id), 0);
	assert_string_equal(id, ids[1]);
	assert_int_equal(store_find_name(st, "u-2", "primary", id), WG_ENOTFOUND);
	assert_int_equal(store_find_name(st, NULL, "shop", id), WG_ENOTFOUND);
	assert_int_equal(store_find_name(st, NULL, "", id), WG_EINVAL);
}

static void
test_not_found(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	struct store_session s;
	store_session_init(&s);
	const char *nobody = "00000000-0000-4000-8000-000000000000";
	assert_int_equal(store_get(st, nobody, &s), WG_ENOTFOUND);
	assert_int_equal(store_update(st, nobody, &s, STORE_F_ACTIVE, 1795528000000LL),
	                 WG_ENOTFOUND);
	assert_int_equal(store_delete(st, nobody), WG_ENOTFOUND);
	assert_int_equal(store_get(st, "", &s), WG_EINVAL);
	assert_int_equal(store_get(st, "has space", &s), WG_EINVAL);
	assert_int_equal(store_get(st, "0123456789012345678901234567890123456789", &s), WG_EINVAL);

	char id[STORE_ID_LEN + 1];
	add_session(st, NULL, NULL, 1, 1, 0, id);
	assert_int_equal(store_delete(st, id), 0);
	assert_int_equal(store_get(st, id, &s), WG_ENOTFOUND);
	assert_int_equal(store_delete(st, id), WG_ENOTFOUND);
}

static void
test_autoconnect_filter(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1], x[STORE_ID_LEN + 1];
	int64_t t = 1795527900000LL;
	/* b is inserted first but created later: the list follows created_at. */
	add_session(st, "primary", "{}", 1, 1, t + 5, b);
	add_session(st, NULL, "{}", 1, 1, t + 1, a);
	add_session(st, "secondary", "{}", 1, 1, t + 2, x);
	add_session(st, "primary", NULL, 1, 1, t + 3, x);
	add_session(st, "primary", "{}", 0, 1, t + 4, x);
	add_session(st, "primary", "{}", 1, 0, t + 6, x);
	add_session(st, "Primary", "{}", 1, 1, t + 7, x);

	struct store_filter f = {.autoconnect = true};
	struct store_session *arr;
	size_t n;
	assert_int_equal(store_list(st, &f, &arr, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(arr[0].id, a);
	assert_string_equal(arr[1].id, b);
	store_list_free(arr, n);

	assert_int_equal(store_list(st, NULL, &arr, &n), 0);
	assert_int_equal(n, 7);
	for (size_t i = 1; i < n; i++)
		assert_true(arr[i - 1].created_at <= arr[i].created_at);
	/* Without auth: the same rows in the same order, auth_state a marker, never the blob. */
	struct store_filter light = {.without_auth = true};
	struct store_session *l;
	size_t ln;
	assert_int_equal(store_list(st, &light, &l, &ln), 0);
	assert_int_equal(ln, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(l[i].id, arr[i].id);
		if (arr[i].auth_state == NULL)
			assert_null(l[i].auth_state);
		else
			assert_string_equal(l[i].auth_state, "");
		assert_string_equal(l[i].connection_status, arr[i].connection_status);
	}
	store_list_free(l, ln);
	struct store_filter auto_light = {.autoconnect = true, .without_auth = true};
	assert_int_equal(store_list(st, &auto_light, &l, &ln), 0);
	assert_int_equal(ln, 2);
	assert_string_equal(l[0].id, a);
	assert_string_equal(l[0].auth_state, "");
	store_list_free(l, ln);
	store_list_free(arr, n);

	/* Turning one condition off drops a row from the set. */
	struct store_session v;
	store_session_init(&v);
	v.auto_connect = 0;
	assert_int_equal(store_update(st, a, &v, STORE_F_AUTO, t + 100), 0);
	assert_int_equal(store_list(st, &f, &arr, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(arr[0].id, b);
	store_list_free(arr, n);
	assert_int_equal(store_update(st, b, &v, STORE_F_AUTH, t + 100), 0);
	assert_int_equal(store_list(st, &f, &arr, &n), 0);
	assert_int_equal(n, 0);
	assert_null(arr);
}

static void
test_reconcile(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	static const char *const statuses[] = {"connecting",   "qr_pending", "connected",
	                                       "disconnected", "logged_out", ""};
	char ids[6][STORE_ID_LEN + 1];
	int64_t t = 1795527900000LL;
	for (int i = 0; i < 6; i++) {
		struct store_session s;
		store_session_init(&s);
		snprintf(s.connection_status, sizeof(s.connection_status), "%s", statuses[i]);
		s.created_at = t;
		assert_int_equal(store_insert(st, &s), 0);
		memcpy(ids[i], s.id, sizeof(s.id));
		store_session_free(&s);
	}
	int changed = -1;
	assert_int_equal(store_reconcile(st, t + 5000, &changed), 0);
	assert_int_equal(changed, 3);
	static const char *const after[] = {"disconnected", "disconnected", "disconnected",
	                                    "disconnected", "logged_out",   ""};
	for (int i = 0; i < 6; i++) {
		struct store_session g;
		assert_int_equal(store_get(st, ids[i], &g), 0);
		assert_string_equal(g.connection_status, after[i]);
		assert_int_equal(g.updated_at, i < 3 ? t + 5000 : t);
		store_session_free(&g);
	}
	assert_int_equal(store_reconcile(st, t + 6000, &changed), 0);
	assert_int_equal(changed, 0);
}

static void
add_attempt(struct store *st, const char *sid, int64_t at, const char *trigger, const char *result,
            int64_t *id)
{
	struct store_attempt a = {.at = at, .detail = "why"};
	snprintf(a.session_id, sizeof(a.session_id), "%s", sid);
	snprintf(a.trigger, sizeof(a.trigger), "%s", trigger);
	snprintf(a.action, sizeof(a.action), "reconnect");
	snprintf(a.result, sizeof(a.result), "%s", result);
	assert_int_equal(store_add_attempt(st, &a), 0);
	assert_true(a.id > 0);
	if (id != NULL)
		*id = a.id;
}

static void
test_attempts(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
	add_session(st, NULL, "{}", 1, 1, 0, a);
	add_session(st, NULL, "{}", 1, 1, 0, b);
	int64_t t = 1795527900000LL, ida, idb;
	add_attempt(st, a, t + 1000, "auto:ws_close", "failed", &ida);
	add_attempt(st, a, t + 3000, "api", "ok", NULL);
	add_attempt(st, a, t + 2000, "auto:keepalive", "failed", &idb);
	add_attempt(st, a, t + 4000, "automatic", "ok", NULL);
	add_attempt(st, b, t + 2500, "auto:ws_close", "ok", NULL);
	assert_true(idb > ida);

	struct store_attempt *arr;
	size_t n;
	assert_int_equal(store_attempts(st, a, 0, 0, &arr, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(arr[0].at, t + 4000);
	assert_int_equal(arr[1].at, t + 3000);
	assert_int_equal(arr[2].at, t + 2000);
	assert_int_equal(arr[3].at, t + 1000);
	assert_string_equal(arr[2].trigger, "auto:keepalive");
	assert_string_equal(arr[2].action, "reconnect");
	assert_string_equal(arr[2].result, "failed");
	assert_string_equal(arr[2].detail, "why");
	assert_string_equal(arr[2].session_id, a);
	assert_int_equal(arr[2].id, idb);
	store_attempts_free(arr, n);

	assert_int_equal(store_attempts(st, a, t + 2000, 0, &arr, &n), 0);
	assert_int_equal(n, 3);
	store_attempts_free(arr, n);
	assert_int_equal(store_attempts(st, a, 0, 2, &arr, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(arr[0].at, t + 4000);
	store_attempts_free(arr, n);

	int count = -1;
	assert_int_equal(store_count_attempts(st, a, NULL, 0, &count), 0);
	assert_int_equal(count, 4);
	assert_int_equal(store_count_attempts(st, a, "auto:", 0, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(store_count_attempts(st, a, "auto", 0, &count), 0);
	assert_int_equal(count, 3);
	assert_int_equal(store_count_attempts(st, a, "auto:", t + 1500, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(store_count_attempts(st, a, "AUTO:", 0, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_count_attempts(st, a, "auto%", 0, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(store_count_attempts(st, b, "auto:", 0, &count), 0);
	assert_int_equal(count, 1);

	/*
	 * The newest few of several sessions in one query (/health/deep's page):
	 * each session's rows together, newest first, a tie by the later id; a
	 * session without any gives none.
	 */
	char c[STORE_ID_LEN + 1];
	add_session(st, NULL, "{}", 1, 1, 0, c);
	add_attempt(st, a, t + 4000, "tie", "ok", NULL); /* the instant of "automatic", a later id */
	const char *ids[] = {b, c, a};
	for (size_t per = 1; per <= 3; per += 2) {
		assert_int_equal(store_recent_attempts(st, ids, 3, per, &arr, &n), 0);
		assert_int_equal(n, per + 1);
		static const char *const newest_a[] = {"tie", "automatic", "api"};
		size_t ka = 0, kb = 0, first_a = n;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(arr[i].session_id, a) == 0) {
				if (first_a == n)
					first_a = i;
				assert_int_equal(i, first_a + ka); /* together */
				assert_string_equal(arr[i].trigger, newest_a[ka]);
				ka++;
			} else {
				assert_string_equal(arr[i].session_id, b);
				assert_string_equal(arr[i].trigger, "auto:ws_close");
				kb++;
			}
		}
		assert_int_equal(ka, per);
		assert_int_equal(kb, 1);
		store_attempts_free(arr, n);
	}

	/* An attempt for a session that does not exist. */
	struct store_attempt bad = {.at = t};
	snprintf(bad.session_id, sizeof(bad.session_id), "nobody");
	snprintf(bad.trigger, sizeof(bad.trigger), "api");
	snprintf(bad.action, sizeof(bad.action), "reconnect");
	snprintf(bad.result, sizeof(bad.result), "ok");
	assert_int_equal(store_add_attempt(st, &bad), WG_ENOTFOUND);
	bad.at = 0;
	assert_int_equal(store_add_attempt(st, &bad), WG_EINVAL);

	/* Deleting a session deletes its attempts, not the others'. */
	assert_int_equal(store_delete(st, a), 0);
	assert_int_equal(store_count_attempts(st, a, NULL, 0, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(
	    db_int(fx, "SELECT count(*) FROM whatsapp_session_recovery_attempts"), 1);
	assert_int_equal(store_count_attempts(st, b, NULL, 0, &count), 0);
	assert_int_equal(count, 1);
}

static void
add_change(struct store *st, const char *sid, int64_t at, const char *status, const char *reason)
{
	struct store_status_change c = {.at = at, .reason = (char *)reason};
	snprintf(c.session_id, sizeof(c.session_id), "%s", sid);
	snprintf(c.status, sizeof(c.status), "%s", status);
	assert_int_equal(store_add_status_change(st, &c), 0);
	assert_true(c.id > 0);
}

static void
test_status_history(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
	int64_t t = 1795527900000LL;
	add_session(st, NULL, NULL, 1, 1, t, a);
	add_session(st, NULL, NULL, 1, 1, t + 1, b);
	/* More than the retention, in one session: only the newest STORE_HISTORY_KEEP stay. */
	size_t total = STORE_HISTORY_KEEP + 20;
	for (size_t i = 0; i < total; i++)
		add_change(st, a, t + (int64_t)i * 1000, i % 2 ? "connected" : "connecting",
		           i % 3 ? "why" : NULL);
	add_change(st, b, t, "qr_pending", "pair");
	assert_int_equal(db_int(fx, "SELECT count(*) FROM whatsapp_session_status_history"),
	                 STORE_HISTORY_KEEP + 1);
	struct store_status_change *h = NULL;
	size_t n = 0;
	assert_int_equal(store_status_history(st, a, 0, 0, &h, &n), 0);
	assert_int_equal(n, STORE_HISTORY_KEEP);
	/* Oldest first; the 20 oldest were deleted. */
	assert_int_equal(h[0].at, t + 20 * 1000);
	assert_int_equal(h[n - 1].at, t + (int64_t)(total - 1) * 1000);
	for (size_t i = 1; i < n; i++)
		assert_true(h[i].at > h[i - 1].at);
	assert_string_equal(h[0].status, "connecting");
	assert_null(h[1].reason); /* i = 21 */
	assert_string_equal(h[0].reason, "why");
	store_status_history_free(h, n);
	/* since and limit: the newest `limit` at or after since, still oldest first. */
	assert_int_equal(store_status_history(st, a, t + (int64_t)(total - 5) * 1000, 0, &h, &n),
	                 0);
	assert_int_equal(n, 5);
	store_status_history_free(h, n);
	assert_int_equal(store_status_history(st, a, 0, 3, &h, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(h[2].at, t + (int64_t)(total - 1) * 1000);
	assert_int_equal(h[0].at, t + (int64_t)(total - 3) * 1000);
	store_status_history_free(h, n);
	/* Bad input. */
	struct store_status_change bad = {.at = t};
	snprintf(bad.session_id, sizeof(bad.session_id), "%s", a);
	snprintf(bad.status, sizeof(bad.status), "exploded");
	assert_int_equal(store_add_status_change(st, &bad), WG_EINVAL);
	snprintf(bad.status, sizeof(bad.status), "connected");
	bad.at = 0;
	assert_int_equal(store_add_status_change(st, &bad), WG_EINVAL);
	bad.at = t;
	snprintf(bad.session_id, sizeof(bad.session_id), "no-such-session");
	assert_int_equal(store_add_status_change(st, &bad), WG_ENOTFOUND);
	/* Deleting the session deletes its history. */
	assert_int_equal(store_delete(st, a), 0);
	assert_int_equal(db_int(fx, "SELECT count(*) FROM whatsapp_session_status_history"),
	                 1);
	/* Reconciling records where the previous process died. */
	struct store_session s;
	store_session_init(&s);
	snprintf(s.connection_status, sizeof(s.connection_status), "connected");
	assert_int_equal(store_insert(st, &s), 0);
	int changed = 0;
	assert_int_equal(store_reconcile(st, t + 9000, &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(store_status_history(st, s.id, 0, 0, &h, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(h[0].status, "disconnected");
	assert_int_equal(h[0].at, t + 9000);
	assert_non_null(strstr(h[0].reason, "while the session was connected"));
	store_status_history_free(h, n);
	store_session_free(&s);
	/*
	 * A row someone else wrote badly is an error naming it, not a crash.
	 * PostgreSQL's column types refuse a bad time, so there the bad value
	 * is a reason longer than wagate reads.
	 */
	char sql[256];
	snprintf(sql, sizeof(sql),
	         fx->pg ? "INSERT INTO whatsapp_session_status_history (session_id, changed_at,"
	                  " status, reason) VALUES ('%s', now(), 'connected', repeat('x', 5000))"
	                : "INSERT INTO whatsapp_session_status_history (session_id, changed_at, status)"
	                  " VALUES ('%s', 'yesterday', 'connected')",
	         b);
	assert_int_equal(db_exec(fx, sql), SQLITE_OK);
	assert_int_equal(store_status_history(st, b, 0, 0, &h, &n), fx->pg ? WG_ELIMIT : WG_EINVAL);
	assert_non_null(strstr(store_errmsg(st), fx->pg ? "reason" : "changed_at"));
}

static void
test_settings(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	char *v = (char *)"untouched";
	assert_int_equal(store_get_setting(st, "api_key_hash", &v), WG_ENOTFOUND);
	assert_null(v);
	assert_int_equal(store_set_setting(st, "api_key_hash", "sha256:aa"), 0);
	assert_int_equal(store_set_setting(st, "other", "x"), 0);
	assert_int_equal(store_get_setting(st, "api_key_hash", &v), 0);
	assert_string_equal(v, "sha256:aa");
	free(v);
	assert_int_equal(store_set_setting(st, "api_key_hash", "sha256:bb"), 0);
	assert_int_equal(store_get_setting(st, "api_key_hash", &v), 0);
	assert_string_equal(v, "sha256:bb");
	free(v);
	assert_int_equal(store_get_setting(st, "other", &v), 0);
	assert_string_equal(v, "x");
	free(v);
	assert_int_equal(store_set_setting(st, "", "x"), WG_EINVAL);
	assert_int_equal(store_set_setting(st, "k", NULL), WG_EINVAL);
}

/* The webhook outbox: rows in seq order (not insertion order), deleted by id, checked on the way in. */
static void
test_webhook_outbox(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	int64_t seqs[] = {3000, 1000, 2000};
	for (int i = 0; i < 3; i++) {
		struct store_hook h = {.seq = seqs[i], .created_at = 1700000000000 + i};
		snprintf(h.id, sizeof(h.id), "%032d", i);
		h.url = (char *)"https://example.com/hook";
		h.session_id = i == 1 ? NULL : (char *)"00000000-0000-4000-8000-000000000001";
		snprintf(h.kind, sizeof(h.kind), "%s", i == 1 ? "health.changed" : "session.status");
		h.body = (char *)"{\"type\":\"x\"}";
		assert_int_equal(store_hook_add(st, &h), 0);
	}
	struct store_hook *rows;
	size_t n;
	assert_int_equal(store_hook_list(st, 10, &rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].seq, 1000);
	assert_null(rows[0].session_id);
	assert_string_equal(rows[0].kind, "health.changed");
	assert_int_equal(rows[1].seq, 2000);
	assert_int_equal(rows[2].seq, 3000);
	assert_string_equal(rows[2].session_id, "00000000-0000-4000-8000-000000000001");
	assert_string_equal(rows[2].url, "https://example.com/hook");
	assert_int_equal(rows[2].created_at, 1700000000000);
	char first[33];
	snprintf(first, sizeof(first), "%s", rows[0].id);
	store_hooks_free(rows, n);
	assert_int_equal(store_hook_delete(st, first), 0);
	assert_int_equal(store_hook_list(st, 1, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].seq, 2000);
	store_hooks_free(rows, n);
	struct store_hook bad = {.seq = 1, .created_at = 1};
	snprintf(bad.id, sizeof(bad.id), "x");
	assert_int_equal(store_hook_add(st, &bad), WG_EINVAL); /* no url, no body */
}

static void
test_open_errors(void **state)
{
	struct fx *fx = *state;
	struct store *st = (struct store *)1;
	char err[256];
	assert_int_equal(store_open("mysql://root:pw@db/x", &st, err, sizeof(err)), WG_EINVAL);
	assert_null(st);
	assert_non_null(strstr(err, "'mysql'"));
	assert_null(strstr(err, "pw"));
	assert_int_equal(store_open("", &st, err, sizeof(err)), WG_EINVAL);
	assert_int_equal(store_open("/var/lib/wagate.db", &st, err, sizeof(err)), WG_EINVAL);
	assert_int_equal(store_open("sqlite:", &st, err, sizeof(err)), WG_EINVAL);
	assert_int_equal(store_open("sqlite://relative.db", &st, err, sizeof(err)), WG_EINVAL);
	/* PostgreSQL URLs go to libpq (the postgres group tests them); the password never shows. */
	assert_int_equal(store_open("postgres://u:hunter2@%2Fnonexistent/db", &st, err, sizeof(err)),
	                 WG_EIO);
	assert_null(strstr(err, "hunter2"));
	assert_null(st);

	/* A path whose parent is a regular file cannot be created, even by root. */
	char file[600], url[700];
	snprintf(file, sizeof(file), "%s/plain", fx->dir);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(url, sizeof(url), "sqlite:%s/sub/wagate.db", file);
	assert_int_equal(store_open(url, &st, err, sizeof(err)), WG_EIO);
	assert_null(st);
	assert_non_null(strstr(err, "cannot create directory"));
	/* A directory where the file should be. */
	snprintf(url, sizeof(url), "sqlite:%s", fx->dir);
	assert_int_equal(store_open(url, &st, err, sizeof(err)), WG_EIO);

	/* sqlite:///absolute and the in-memory database work. */
	snprintf(url, sizeof(url), "sqlite://%s/abs.db", fx->dir);
	assert_int_equal(store_open(url, &st, err, sizeof(err)), 0);
	store_close(st);
	assert_int_equal(store_open("sqlite::memory:", &st, err, sizeof(err)), 0);
	int applied;
	assert_int_equal(store_migrate(st, &applied), 0);
	assert_int_equal(applied, 10);
	store_close(st);
	store_close(NULL);
}

static void
test_corrupt_file(void **state)
{
	struct fx *fx = *state;
	char err[256];
	struct store *st;
	/* Not a database at all. */
	char dir[600];
	snprintf(dir, sizeof(dir), "%s/var", fx->dir);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/var/lib", fx->dir);
	mkdir(dir, 0700);
	FILE *f = fopen(fx->path, "w");
	assert_non_null(f);
	for (int i = 0; i < 512; i++)
		fputs("this is not a database, ", f);
	fclose(f);
	assert_int_equal(store_open(fx->url, &st, err, sizeof(err)), WG_EIO);
	assert_null(st);
	assert_non_null(strstr(err, "not a database"));

	/* A real database whose table pages were overwritten. */
	unlink(fx->path);
	st = open_store(fx);
	char id[STORE_ID_LEN + 1];
	for (int i = 0; i < 200; i++)
		add_session(st, NULL, "{\"padding\":\"........................................\"}",
		            1, 1, 0, id);
	store_close(st);
	fx->st = NULL;
	int fd = open(fx->path, O_WRONLY);
	assert_true(fd >= 0);
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	assert_true(sb.st_size > 8192);
	char junk[1024];
	memset(junk, 0xA5, sizeof(junk));
	for (off_t o = 4096; o < sb.st_size; o += (off_t)sizeof(junk))
		assert_true(pwrite(fd, junk, sizeof(junk), o) > 0);
	close(fd);
	int rc = store_open(fx->url, &fx->st, err, sizeof(err));
	if (rc == 0) {
		struct store_session *arr;
		size_t n;
		int applied;
		rc = store_migrate(fx->st, &applied);
		if (rc == 0)
			rc = store_list(fx->st, NULL, &arr, &n);
		assert_int_equal(rc, WG_EIO);
		printf("corrupt pages: %s\n", store_errmsg(fx->st));
	} else {
		printf("corrupt pages at open: %s\n", err);
	}
	assert_true(rc < 0);
}

static void
test_check_constraint(void **state)
{
	struct fx *fx = *state;
	open_store(fx);
	assert_int_equal(raw(fx->path, "INSERT INTO whatsapp_sessions (id, connection_status,"
	                               " created_at, updated_at) VALUES ('r1', 'zombie',"
	                               " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')"),
	                 SQLITE_CONSTRAINT_CHECK);
	assert_int_equal(raw(fx->path, "INSERT INTO whatsapp_sessions (id, connection_status,"
	                               " created_at, updated_at) VALUES ('r1', 'logged_out',"
	                               " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')"),
	                 SQLITE_OK);
	assert_int_equal(
	    raw(fx->path, "UPDATE whatsapp_sessions SET connection_status = 'Connected'"),
	    SQLITE_CONSTRAINT_CHECK);
	assert_int_equal(raw(fx->path, "INSERT INTO whatsapp_sessions (id, session_name,"
	                               " created_at, updated_at) VALUES ('r2', NULL,"
	                               " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')"),
	                 SQLITE_CONSTRAINT_NOTNULL);
}

/* Edits the row by raw SQL, then expects store_get to name column in a clear error. */
static void
expect_bad(struct fx *fx, const char *id, const char *sql, int code, const char *column)
{
	assert_int_equal(raw(fx->path, sql), SQLITE_OK);
	struct store_session g;
	int rc = store_get(fx->st, id, &g);
	assert_int_equal(rc, code);
	assert_non_null(strstr(store_errmsg(fx->st), column));
	assert_non_null(strstr(store_errmsg(fx->st), id));
	assert_null(strstr(store_errmsg(fx->st), SECRET));
	assert_null(g.auth_state);
	assert_null(g.session_name);
	/* The list passes over the row, so one bad row cannot stop the others, and says why. */
	struct store_session *arr;
	size_t n;
	assert_int_equal(store_list(fx->st, NULL, &arr, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_list_skipped(fx->st), 1);
	assert_non_null(strstr(store_errmsg(fx->st), column));
	assert_null(strstr(store_errmsg(fx->st), SECRET));
	store_list_free(arr, n);
}

static void
test_bad_rows(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	struct store_session s;
	store_session_init(&s);
	memcpy(s.id, "bad-row", 8);
	s.auth_state = strdup("{\"k\":\"" SECRET "\"}");
	assert_int_equal(store_insert(st, &s), 0);
	store_session_free(&s);
	const char *restore =
	    "UPDATE whatsapp_sessions SET created_at = '2026-01-01T00:00:00.000Z',"
	    " updated_at = '2026-01-01T00:00:00.000Z', is_active = 1,"
	    " auto_connect = 1, connection_status = NULL, session_name = 'primary',"
	    " last_connected_at = NULL, auth_state = '{\"k\":\"" SECRET "\"}'";

	expect_bad(fx, "bad-row", "UPDATE whatsapp_sessions SET created_at = 'yesterday'",
	           WG_EINVAL, "created_at");
	expect_bad(fx, "bad-row",
	           "UPDATE whatsapp_sessions SET created_at = '2026-02-30T00:00:00Z'", WG_EINVAL,
	           "created_at");
	expect_bad(fx, "bad-row", "UPDATE whatsapp_sessions SET created_at = 1795527900000",
	           WG_EINVAL, "created_at");
	assert_int_equal(raw(fx->path, restore), SQLITE_OK);
	expect_bad(fx, "bad-row",
	           "UPDATE whatsapp_sessions SET last_connected_at = '2026-01-01T25:00:00.000Z'",
	           WG_EINVAL, "last_connected_at");
	assert_int_equal(raw(fx->path, restore), SQLITE_OK);
	expect_bad(fx, "bad-row", "UPDATE whatsapp_sessions SET is_active = 'maybe'", WG_EINVAL,
	           "is_active");
	assert_int_equal(raw(fx->path, restore), SQLITE_OK);
	expect_bad(fx, "bad-row", "UPDATE whatsapp_sessions SET auto_connect = 7", WG_EINVAL,
	           "auto_connect");
	assert_int_equal(raw(fx->path, restore), SQLITE_OK);
	/* A status outside the CHECK list, written by a program that turned the check off. */
	expect_bad(fx, "bad-row",
	           "PRAGMA ignore_check_constraints = ON;"
	           "UPDATE whatsapp_sessions SET connection_status = 'zombie'",
	           WG_EINVAL, "connection_status");
	assert_int_equal(raw(fx->path, restore), SQLITE_OK);
	expect_bad(
	    fx, "bad-row",
	    "PRAGMA ignore_check_constraints = ON;"
	    "UPDATE whatsapp_sessions SET connection_status = 'a-status-far-too-long-to-fit'",
	    WG_EINVAL, "connection_status");
	assert_int_equal(raw(fx->path, restore), SQLITE_OK);
	expect_bad(fx, "bad-row",
	           "UPDATE whatsapp_sessions SET auth_state = X'00"
	           "41"
	           "42'",
	           WG_EINVAL, "auth_state");
	assert_int_equal(raw(fx->path, restore), SQLITE_OK);
	expect_bad(fx, "bad-row",
	           "UPDATE whatsapp_sessions SET auth_state = 'ab' || char(0) || 'cd'", WG_EINVAL,
	           "auth_state");
	assert_int_equal(raw(fx->path, restore), SQLITE_OK);
	expect_bad(fx, "bad-row", "UPDATE whatsapp_sessions SET session_name = X'41'", WG_EINVAL,
	           "session_name");
	assert_int_equal(raw(fx->path, restore), SQLITE_OK);
	expect_bad(fx, "bad-row", "UPDATE whatsapp_sessions SET auth_state = zeroblob(5000000)",
	           WG_EINVAL, "auth_state");
	expect_bad(fx, "bad-row",
	           "UPDATE whatsapp_sessions SET auth_state = CAST(zeroblob(5000000) AS TEXT)",
	           WG_ELIMIT, "auth_state");
	assert_int_equal(raw(fx->path, restore), SQLITE_OK);
	expect_bad(
	    fx, "bad-row",
	    "UPDATE whatsapp_sessions SET auth_state = replace(hex(zeroblob(2500000)), '0', 'x')",
	    WG_ELIMIT, "auth_state");
	assert_int_equal(raw(fx->path, restore), SQLITE_OK);

	/* Restored, the row reads again; timestamps from other writers parse. */
	assert_int_equal(raw(fx->path, "UPDATE whatsapp_sessions SET"
	                               " created_at = '2026-11-24 13:45:01',"
	                               " last_connected_at = '2026-11-24T14:45:01.123456789+01:00',"
	                               " last_message_at = '2026-11-24T13:45:01.1Z'"),
	                 SQLITE_OK);
	struct store_session g;
	assert_int_equal(store_get(st, "bad-row", &g), 0);
	assert_int_equal(g.created_at, 1795527901000LL);
	assert_int_equal(g.last_connected_at, 1795527901123LL);
	assert_int_equal(g.last_message_at, 1795527901100LL);
	store_session_free(&g);

	/* A bad id is reported without printing it. */
	assert_int_equal(raw(fx->path, "UPDATE whatsapp_sessions SET id = 'has a space'"),
	                 SQLITE_OK);
	struct store_session *arr;
	size_t n;
	assert_int_equal(store_list(st, NULL, &arr, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_list_skipped(st), 1);
	assert_non_null(strstr(store_errmsg(st), "id"));
	assert_null(strstr(store_errmsg(st), "has a space"));
	store_list_free(arr, n);
}

static void
test_locked(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	char id[STORE_ID_LEN + 1];
	add_session(st, NULL, "{}", 1, 1, 0, id);
	sqlite3 *other;
	assert_int_equal(sqlite3_open(fx->path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

	struct store_session v;
	store_session_init(&v);
	snprintf(v.connection_status, sizeof(v.connection_status), "connected");
	double t0 = now_us();
	assert_int_equal(store_update(st, id, &v, STORE_F_STATUS, 1795528000000LL), WG_ETIMEDOUT);
	printf("write under another writer's lock failed after %.0f ms: %s\n",
	       (now_us() - t0) / 1000, store_errmsg(st));
	assert_non_null(strstr(store_errmsg(st), "locked"));
	/* WAL: reads go on while the other process writes. */
	struct store_session g;
	assert_int_equal(store_get(st, id, &g), 0);
	assert_string_equal(g.connection_status, "");
	store_session_free(&g);

	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(store_update(st, id, &v, STORE_F_STATUS, 1795528000000LL), 0);
}

static void
test_timestamps(void **state)
{
	char buf[32];
	int64_t ms;
	assert_int_equal(store__ts_format(buf, 1795527901123LL), 0);
	assert_string_equal(buf, "2026-11-24T13:45:01.123Z");
	assert_int_equal(store__ts_parse(buf, strlen(buf), &ms), 0);
	assert_int_equal(ms, 1795527901123LL);
	assert_int_equal(store__ts_format(buf, 951782400000LL), 0); /* 2000-02-29, a leap day */
	assert_string_equal(buf, "2000-02-29T00:00:00.000Z");
	assert_int_equal(store__ts_parse(buf, strlen(buf), &ms), 0);
	assert_int_equal(ms, 951782400000LL);
	assert_int_equal(store__ts_format(buf, -1), WG_EINVAL);

	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
	    {"1970-01-01T00:00:00Z", 0},
	    {"2026-11-24 13:45:01", 1795527901000LL},
	    {"2026-11-24T13:45:01.5Z", 1795527901500LL},
	    {"2026-11-24T15:45:01.123+02:00", 1795527901123LL},
	    {"2026-11-24T08:15:01.123-0530", 1795527901123LL},
	    {"2026-11-24T14:45:01+01", 1795527901000LL},
	    {"2026-11-24 13:45:01.123+00", 1795527901123LL}, /* PostgreSQL's output */
	    {"9999-12-31T23:59:59.999Z", 253402300799999LL},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(store__ts_parse(good[i].s, strlen(good[i].s), &ms), 0);
		assert_int_equal(ms, good[i].ms);
	}
	static const char *const bad[] = {
	    "",
	    "yesterday",
	    "2026-11-24",
	    "2026-11-24T13:45",
	    "2026-13-01T00:00:00Z",
	    "2026-02-29T00:00:00Z",
	    "1900-02-29T00:00:00Z",
	    "2026-11-24T24:00:00Z",
	    "2026-11-24T13:60:00Z",
	    "2026-11-24T13:45:01.Z",
	    "2026-11-24T13:45:01.1234567890Z",
	    "2026-11-24T13:45:01Zjunk",
	    "2026-11-24T13:45:01+2",
	    "2026-11-24T13:45:01+25:00",
	    "1969-12-31T23:59:59Z",
	    "+2026-11-24T13:45:01Z",
	    "2026/11/24T13:45:01Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(store__ts_parse(bad[i], strlen(bad[i]), &ms), WG_EINVAL);
	/* Length-bounded: bytes after len are not read. */
	assert_int_equal(store__ts_parse("2026-11-24T13:45:01Zxyz", 20, &ms), 0);
}

static void
test_uuid(void **state)
{
	char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
	store_uuid(a);
	store_uuid(b);
	assert_int_equal(strlen(a), 36);
	assert_string_not_equal(a, b);
	assert_true(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
	assert_int_equal(a[14], '4');
	assert_non_null(strchr("89ab", a[19]));
	assert_true(store_status_valid(""));
	assert_true(store_status_valid("logged_out"));
	assert_false(store_status_valid("Connected"));
}

static void
test_timings(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	enum { N = 1000 };
	static char ids[N][STORE_ID_LEN + 1];
	/* A credentials blob of a paired session is a few KiB; use 8 KiB. */
	char *auth = malloc(8193);
	memset(auth, 'a', 8192);
	auth[8192] = '\0';

	double t0 = now_us();
	for (int i = 0; i < N; i++)
		add_session(st, NULL, auth, 1, 1, 0, ids[i]);
	double t_ins = now_us() - t0;

	struct store_session v;
	store_session_init(&v);
	t0 = now_us();
	for (int i = 0; i < N; i++) {
		snprintf(v.connection_status, sizeof(v.connection_status), "%s",
		         i % 2 ? "connected" : "connecting");
		assert_int_equal(store_update(st, ids[i], &v, STORE_F_STATUS, 1795528000000LL + i),
		                 0);
	}
	double t_upd = now_us() - t0;

	v.auth_state = auth;
	t0 = now_us();
	for (int i = 0; i < N; i++)
		assert_int_equal(store_update(st, ids[i], &v, STORE_F_AUTH, 1795528000000LL), 0);
	double t_auth = now_us() - t0;

	t0 = now_us();
	for (int i = 0; i < N; i++) {
		struct store_session g;
		assert_int_equal(store_get(st, ids[i], &g), 0);
		store_session_free(&g);
	}
	double t_get = now_us() - t0;

	struct store_filter f = {.autoconnect = true};
	struct store_session *arr;
	size_t n;
	t0 = now_us();
	assert_int_equal(store_list(st, &f, &arr, &n), 0);
	double t_list = now_us() - t0;
	assert_int_equal(n, N);
	store_list_free(arr, n);

	t0 = now_us();
	for (int i = 0; i < N; i++)
		add_attempt(st, ids[i % 10], 1795528000000LL + i, "auto:ws_close", "ok", NULL);
	double t_att = now_us() - t0;
	int count;
	t0 = now_us();
	for (int i = 0; i < N; i++)
		assert_int_equal(
		    store_count_attempts(st, ids[i % 10], "auto:", 1795528000500LL, &count), 0);
	double t_cnt = now_us() - t0;

	int changed;
	t0 = now_us();
	assert_int_equal(store_reconcile(st, 1795528100000LL, &changed), 0);
	double t_rec = now_us() - t0;
	assert_int_equal(changed, N);

	uint32_t ping = 0;
	assert_int_equal(store_ping(st, &ping), 0);

	if (fx->pg)
		printf("store timings (PostgreSQL %d over a Unix socket, fsync off, %d rows, 8 KiB "
		       "auth_state):\n",
		       PQlibVersion(), N);
	else
		printf("store timings (SQLite %s, WAL, synchronous=NORMAL, %d rows, 8 KiB auth_state):\n",
		       sqlite3_libversion(), N);
	printf("  insert            %7.1f us/call\n", t_ins / N);
	printf("  update status     %7.1f us/call\n", t_upd / N);
	printf("  update auth_state %7.1f us/call\n", t_auth / N);
	printf("  get               %7.1f us/call\n", t_get / N);
	printf("  list autoconnect  %7.1f ms for %d rows\n", t_list / 1000, N);
	printf("  add attempt       %7.1f us/call\n", t_att / N);
	printf("  count attempts    %7.1f us/call\n", t_cnt / N);
	printf("  reconcile         %7.1f ms for %d rows\n", t_rec / 1000, N);
	printf("  ping              %7u us\n", ping);
	free(auth);
}


/* The file deleted under the open store: reported once, then recreated from the open copy. */
static void
test_file_deleted_then_restored(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	struct store_session s;
	store_session_init(&s);
	s.auth_state = (char *)"{\"k\":1}";
	assert_int_equal(store_insert(st, &s), 0);
	char id[40];
	snprintf(id, sizeof(id), "%s", s.id);
	free(s.session_name);
	uint32_t us;
	assert_int_equal(store_ping(st, &us), 0);

	assert_int_equal(unlink(fx->path), 0);
	assert_int_equal(store_ping(st, &us), WG_EIO);
	assert_non_null(strstr(store_errmsg(st), "was deleted"));
	/* The next check repairs: the file is back, with everything, credentials included. */
	struct store_session v;
	memset(&v, 0, sizeof(v));
	snprintf(v.connection_status, sizeof(v.connection_status), "connected");
	struct store_write w = {.id = id, .fields = STORE_F_STATUS, .vals = &v};
	size_t gone;
	assert_int_equal(store_write_batch(st, &w, 1, 1800000000000ll, &gone), 0);
	struct stat sb;
	assert_int_equal(stat(fx->path, &sb), 0);
	assert_int_equal(sb.st_mode & 077, 0);
	assert_int_equal(store_ping(st, &us), 0);
	struct store_session back;
	assert_int_equal(store_get(st, id, &back), 0);
	assert_string_equal(back.auth_state, "{\"k\":1}");
	assert_string_equal(back.connection_status, "connected");
	store_session_free(&back);
	/* And another process sees it in the file at the path. */
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM whatsapp_sessions WHERE "
	                                   "connection_status = 'connected'"),
	                 1);
}

/* Another file put at the path (a restored backup): reported once, then it is the database. */
static void
test_file_replaced(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	struct store_session s;
	store_session_init(&s);
	assert_int_equal(store_insert(st, &s), 0);
	char id[40];
	snprintf(id, sizeof(id), "%s", s.id);
	free(s.session_name);
	char other[600];
	snprintf(other, sizeof(other), "%s.other", fx->path);
	assert_int_equal(raw(other, "CREATE TABLE unrelated (x INTEGER)"), SQLITE_OK);
	assert_int_equal(rename(other, fx->path), 0);
	uint32_t us;
	assert_int_equal(store_ping(st, &us), WG_EIO);
	assert_non_null(strstr(store_errmsg(st), "was replaced"));
	assert_int_equal(store_ping(st, &us), 0);
	/* The new file got our tables (migrated), and the old rows are not in it. */
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM wagate_schema_migrations"), 10);
	struct store_session back;
	assert_int_equal(store_get(st, id, &back), WG_ENOTFOUND);
	assert_int_equal(raw(fx->path, "SELECT x FROM unrelated"), SQLITE_OK);
}


/* Paging moves past rows with bad data, even a whole page of them, and in either order. */
static void
test_paging_past_bad_rows(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	/*
	 * 30 good rows, then 25 a web app wrote with a time we cannot read (on
	 * PostgreSQL, whose types refuse that: a user_id longer than we read),
	 * then 10 good ones.
	 */
	char sql[256];
	for (int i = 0; i < 65; i++) {
		int bad = i >= 30 && i < 55;
		if (fx->pg)
			snprintf(sql, sizeof(sql),
			         "INSERT INTO whatsapp_sessions (id, user_id, created_at, updated_at)"
			         " VALUES ('row-%03d', %s, '2026-11-24T10:00:00.000Z',"
			         " '2026-11-24T10:00:00.000Z')",
			         i, bad ? "repeat('x', 5000)" : "NULL");
		else
			snprintf(sql, sizeof(sql),
			         "INSERT INTO whatsapp_sessions (id, created_at, updated_at) VALUES "
			         "('row-%03d', '%s', '2026-11-24T10:00:00.000Z')",
			         i, bad ? "yesterday" : "2026-11-24T10:00:00.000Z");
		assert_int_equal(db_exec(fx, sql), SQLITE_OK);
	}
	for (int by_created = 0; by_created < 2; by_created++) {
		char *after_id = NULL, *after_created = NULL;
		int good = 0, pages = 0;
		for (;;) {
			struct store_filter f = {.without_auth = true, .limit = 20, .after_id = after_id,
			                         .by_created = by_created, .after_created = after_created};
			struct store_session *rows;
			size_t n;
			assert_int_equal(store_list(st, &f, &rows, &n), 0);
			size_t skipped = store_list_skipped(st);
			good += (int)n;
			pages++;
			assert_true(pages < 10);
			store_list_free(rows, n);
			const char *cid, *ccr;
			if (n + skipped < 20)
				break;
			assert_int_equal(store_list_cursor(st, &cid, &ccr), 0);
			free(after_id);
			free(after_created);
			after_id = strdup(cid);
			after_created = strdup(ccr);
		}
		assert_int_equal(good, 40);
		free(after_id);
		free(after_created);
	}
}


/* The data version moves when another connection commits (or the file is replaced), never for our writes. */
static void
test_data_version(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	uint64_t v0, v;
	assert_int_equal(store_data_version(st, &v0), 0);
	struct store_session s;
	store_session_init(&s);
	assert_int_equal(store_insert(st, &s), 0);
	free(s.session_name);
	struct store_session u;
	memset(&u, 0, sizeof(u));
	u.is_active = 0;
	assert_int_equal(store_update(st, s.id, &u, STORE_F_ACTIVE, 1800000000000ll), 0);
	assert_int_equal(store_data_version(st, &v), 0);
	assert_true(v == v0);
	/* The web app's connection writes. */
	assert_int_equal(raw(fx->path, "UPDATE whatsapp_sessions SET is_active = 1"), SQLITE_OK);
	assert_int_equal(store_data_version(st, &v), 0);
	assert_true(v != v0);
	uint64_t v1 = v;
	assert_int_equal(store_data_version(st, &v), 0);
	assert_true(v == v1);
	/* Another file at the path: reported once, then a new connection, and a new version. */
	char other[600];
	snprintf(other, sizeof(other), "%s.other", fx->path);
	assert_int_equal(raw(other, "CREATE TABLE unrelated (x INTEGER)"), SQLITE_OK);
	assert_int_equal(rename(other, fx->path), 0);
	assert_int_equal(store_data_version(st, &v), WG_EIO);
	assert_int_equal(store_data_version(st, &v), 0);
	assert_true(v != v1);
}

/* ---- PostgreSQL only ---- */

/* Drops everything the fixture's schema holds, as if the database were new. */
static void
pg_empty(struct fx *fx)
{
	store_close(fx->st);
	fx->st = NULL;
	assert_int_equal(db_exec(fx, "SET client_min_messages TO warning; DROP TABLE IF EXISTS whatsapp_session_recovery_attempts,"
	                             " whatsapp_session_status_history, wagate_settings, wagate_leases, wagate_nodes, wagate_webhook_outbox,"
	                             " wagate_schema_migrations, whatsapp_sessions CASCADE"),
	                 SQLITE_OK);
}

static void
test_open_and_migrate_pg(void **state)
{
	struct fx *fx = *state;
	char err[256];
	int applied = -1;
	assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
	char *plan = NULL;
	assert_int_equal(store_migrate_plan(fx->st, &plan), 0);
	assert_non_null(strstr(plan, "-- migration 9: wagate_leases"));
	assert_non_null(strstr(plan, "session_id TEXT NOT NULL REFERENCES"));
	free(plan);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	assert_int_equal(applied, 10);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	assert_int_equal(applied, 0);
	assert_int_equal(store_migrate_plan(fx->st, &plan), 0);
	/* Up to date: only the trigger, which every migrate makes again. */
	assert_null(strstr(plan, "-- migration"));
	assert_non_null(strstr(plan, "CREATE TRIGGER wagate_sessions_notify"));
	free(plan);
	assert_int_equal(db_int(fx, "SELECT count(*) FROM wagate_schema_migrations"), 10);
	assert_int_equal(db_int(fx, "SELECT count(*) FROM pg_trigger WHERE tgname ="
	                            " 'wagate_sessions_notify'"),
	                 1);
	/* The design's column, as the design writes it. */
	assert_int_equal(db_int(fx, "SELECT count(*) FROM information_schema.columns WHERE"
	                            " table_schema = current_schema() AND table_name ="
	                            " 'whatsapp_sessions' AND column_name = 'auto_connect' AND"
	                            " data_type = 'boolean' AND is_nullable = 'NO' AND"
	                            " column_default = 'true'"),
	                 1);
	uint32_t us;
	assert_int_equal(store_ping(fx->st, &us), 0);
	/* No data_version on PostgreSQL: the caller reads the rows instead. */
	uint64_t v;
	assert_int_equal(store_data_version(fx->st, &v), WG_ENOTSUP);
}

/*
 * A table the app created first, as a Prisma migration makes it: cuid text
 * ids, timestamp(3) without a zone, a column of its own, no auto_connect and
 * none of wagate's status columns.
 */
static void
test_adopt_app_table_pg(void **state)
{
	struct fx *fx = *state;
	char err[256];
	int applied;
	assert_int_equal(db_exec(fx, "CREATE TABLE whatsapp_sessions (id TEXT PRIMARY KEY,"
	                             " user_id TEXT, session_name TEXT NOT NULL DEFAULT 'primary',"
	                             " auth_state TEXT, is_active BOOLEAN NOT NULL DEFAULT true,"
	                             " plan TEXT, created_at TIMESTAMP(3) NOT NULL DEFAULT"
	                             " CURRENT_TIMESTAMP, updated_at TIMESTAMP(3) NOT NULL);"
	                             "INSERT INTO whatsapp_sessions (id, auth_state, plan,"
	                             " created_at, updated_at) VALUES ('ckx1q2w3e0000abcd1234efgh',"
	                             " '{}', 'gold', '2026-11-24 13:45:01.250',"
	                             " '2026-11-24 13:45:01.250')"),
	                 SQLITE_OK);
	assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
	char *plan = NULL;
	assert_int_equal(store_migrate_plan(fx->st, &plan), 0);
	assert_non_null(strstr(plan, "ALTER TABLE whatsapp_sessions ADD COLUMN auto_connect BOOLEAN "
	                             "NOT NULL DEFAULT true;"));
	assert_non_null(strstr(plan, "ADD COLUMN last_connected_at TIMESTAMPTZ;"));
	assert_null(strstr(plan, "ADD COLUMN session_name"));
	assert_null(strstr(plan, "ADD COLUMN created_at"));
	free(plan);
	/* Planning ran nothing. */
	assert_int_equal(db_exec(fx, "SELECT auto_connect FROM whatsapp_sessions"), SQLITE_ERROR);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	assert_int_equal(applied, 11); /* the adoption, then every migration */
	struct store_session s;
	assert_int_equal(store_get(fx->st, "ckx1q2w3e0000abcd1234efgh", &s), 0);
	assert_int_equal(s.auto_connect, 1);
	assert_int_equal(s.is_active, 1);
	assert_int_equal(s.created_at, 1795527901250LL); /* no zone: UTC */
	assert_string_equal(s.connection_status, "");
	store_session_free(&s);
	/* It auto-connects, and wagate's writes land in the app's own column types. */
	struct store_filter auto_f = {.autoconnect = true};
	struct store_session *rows;
	size_t n;
	assert_int_equal(store_list(fx->st, &auto_f, &rows, &n), 0);
	assert_int_equal(n, 1);
	store_list_free(rows, n);
	store_session_init(&s);
	snprintf(s.connection_status, sizeof(s.connection_status), "connected");
	s.last_connected_at = 1795600000123LL;
	assert_int_equal(store_update(fx->st, "ckx1q2w3e0000abcd1234efgh", &s,
	                              STORE_F_STATUS | STORE_F_CONNECTED_AT, 1795600000456LL),
	                 0);
	store_session_free(&s);
	assert_int_equal(db_int(fx, "SELECT count(*) FROM whatsapp_sessions WHERE updated_at ="
	                            " '2026-11-25 09:46:40.456' AND plan = 'gold'"),
	                 1);
	struct store_attempt a = {.at = 1795600000123LL};
	snprintf(a.session_id, sizeof(a.session_id), "ckx1q2w3e0000abcd1234efgh");
	snprintf(a.trigger, sizeof(a.trigger), "api");
	snprintf(a.action, sizeof(a.action), "reconnect");
	snprintf(a.result, sizeof(a.result), "ok");
	assert_int_equal(store_add_attempt(fx->st, &a), 0);
	/* The app's row inserted with only its own columns reads with the defaults. */
	assert_int_equal(db_exec(fx, "INSERT INTO whatsapp_sessions (id, updated_at) VALUES"
	                             " ('ckx2', now())"),
	                 SQLITE_OK);
	assert_int_equal(store_get(fx->st, "ckx2", &s), 0);
	assert_string_equal(s.session_name, "primary");
	assert_int_equal(s.auto_connect, 1);
	store_session_free(&s);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	assert_int_equal(applied, 0);

	/* A table without an id cannot be used: refused, saying why. */
	pg_empty(fx);
	assert_int_equal(db_exec(fx, "CREATE TABLE whatsapp_sessions (name TEXT)"), SQLITE_OK);
	assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(store_migrate(fx->st, &applied), WG_ESTATE);
	assert_non_null(strstr(store_errmsg(fx->st), "no id column"));
}

static void
add_attempt_now(struct store *st, const char *id)
{
	struct store_attempt a = {.at = 1795600000000LL};
	snprintf(a.session_id, sizeof(a.session_id), "%s", id);
	snprintf(a.trigger, sizeof(a.trigger), "api");
	snprintf(a.action, sizeof(a.action), "reconnect");
	snprintf(a.result, sizeof(a.result), "ok");
	assert_int_equal(store_add_attempt(st, &a), 0);
}

/* uuid and integer ids: the API addresses a row by whatever id it has. */
static void
test_ids_of_every_kind_pg(void **state)
{
	struct fx *fx = *state;
	char err[256];
	int applied;
	static const char *const tables[] = {
	    "CREATE TABLE whatsapp_sessions (id UUID PRIMARY KEY DEFAULT gen_random_uuid(),"
	    " created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL)",
	    /* An app that keeps its flags as integers 0/1. */
	    "CREATE TABLE whatsapp_sessions (id BIGSERIAL PRIMARY KEY,"
	    " is_active SMALLINT NOT NULL DEFAULT 1, auto_connect INTEGER NOT NULL DEFAULT 1,"
	    " created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL)",
	};
	for (int k = 0; k < 2; k++) {
		pg_empty(fx);
		assert_int_equal(db_exec(fx, tables[k]), SQLITE_OK);
		assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
		assert_int_equal(store_migrate(fx->st, &applied), 0);
		char id[2][STORE_ID_LEN + 1];
		for (int i = 0; i < 2; i++) {
			struct store_session s;
			store_session_init(&s);
			s.auth_state = strdup("{}");
			assert_int_equal(store_insert(fx->st, &s), 0);
			memcpy(id[i], s.id, sizeof(s.id));
			store_session_free(&s);
		}
		if (k == 0)
			assert_int_equal(strlen(id[0]), 36);
		else
			assert_string_equal(id[0], "1");
		/* Both run by themselves, whatever type the flags have; the watch's first page works too. */
		struct store_filter af = {.autoconnect = true, .without_auth = true};
		struct store_session *ar;
		size_t an;
		assert_int_equal(store_list(fx->st, &af, &ar, &an), 0);
		assert_int_equal(an, 2);
		store_list_free(ar, an);
		struct store_filter wf = {.without_auth = true, .by_updated = true, .limit = 10,
		                          .after_updated = "2000-01-01T00:00:00.000Z", .after_id = ""};
		assert_int_equal(store_list(fx->st, &wf, &ar, &an), 0);
		assert_int_equal(an, 2);
		store_list_free(ar, an);
		struct store_session g;
		assert_int_equal(store_get(fx->st, id[1], &g), 0);
		assert_string_equal(g.id, id[1]);
		store_session_free(&g);
		/* An id the column's type cannot hold names no row. */
		assert_int_equal(store_get(fx->st, "not-this-kind", &g), WG_ENOTFOUND);
		store_session_init(&g);
		assert_int_equal(store_update(fx->st, "not-this-kind", &g, STORE_F_ERROR, 1), WG_ENOTFOUND);
		assert_int_equal(store_delete(fx->st, "not-this-kind"), WG_ENOTFOUND);
		struct store_status_change *h;
		size_t n;
		assert_int_equal(store_status_history(fx->st, "not-this-kind", 0, 0, &h, &n), 0);
		assert_int_equal(n, 0);
		/* Child rows take the id's type; a batch names sessions by their text. */
		add_attempt_now(fx->st, id[0]);
		add_attempt_now(fx->st, id[1]);
		const char *ids[] = {id[0], id[1]};
		struct store_attempt *at;
		assert_int_equal(store_recent_attempts(fx->st, ids, 2, 5, &at, &n), 0);
		assert_int_equal(n, 2);
		store_attempts_free(at, n);
		struct store_status_change c = {.at = 1795600000000LL};
		snprintf(c.session_id, sizeof(c.session_id), "%s", id[1]);
		snprintf(c.status, sizeof(c.status), "connected");
		snprintf(g.connection_status, sizeof(g.connection_status), "connected");
		struct store_write w = {.id = id[1], .fields = STORE_F_STATUS, .vals = &g,
		                        .history = &c, .nhistory = 1};
		size_t gone = 9;
		assert_int_equal(store_write_batch(fx->st, &w, 1, 1795600000001LL, &gone), 0);
		assert_int_equal(gone, 0);
		store_session_free(&g);
		assert_int_equal(store_get(fx->st, id[1], &g), 0);
		assert_string_equal(g.connection_status, "connected");
		store_session_free(&g);
		/* Paging by id walks every row once, in the column's own order. */
		struct store_filter f = {.without_auth = true, .limit = 1};
		struct store_session *rows;
		assert_int_equal(store_list(fx->st, &f, &rows, &n), 0);
		assert_int_equal(n, 1);
		char first[STORE_ID_LEN + 1];
		memcpy(first, rows[0].id, sizeof(first));
		store_list_free(rows, n);
		f.after_id = first;
		assert_int_equal(store_list(fx->st, &f, &rows, &n), 0);
		assert_int_equal(n, 1);
		assert_string_not_equal(rows[0].id, first);
		store_list_free(rows, n);
		assert_int_equal(store_delete(fx->st, id[0]), 0);
	}
}

/* The database going away: clear errors at once, and the store reconnects by itself. */
static void
test_unreachable_pg(void **state)
{
	struct fx *fx = *state;
	char err[256];
	struct store *st;
	/* Nothing listens there: open fails with libpq's reason, never the password. */
	assert_int_equal(store_open("postgresql://wagate:SECRET-PW-1@%2Fnonexistent%2Fdir/x", &st,
	                            err, sizeof(err)),
	                 WG_EIO);
	assert_non_null(strstr(err, "cannot connect"));
	assert_null(strstr(err, "SECRET-PW-1"));
	assert_int_equal(store_open("postgresql://[::1", &st, err, sizeof(err)), WG_EINVAL);
	assert_null(st);

	/* A connection the server ends (a restart, an administrator) is made again. */
	char url[1200];
	snprintf(url, sizeof(url), "%s&application_name=%s", fx->url, fx->schema);
	assert_int_equal(store_open(url, &fx->st, err, sizeof(err)), 0);
	int applied;
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	         " WHERE application_name = '%s'",
	         fx->schema);
	assert_int_equal(db_int(fx, sql), 1);
	uint32_t us;
	int rc = store_ping(fx->st, &us);
	assert_int_equal(rc, WG_EIO);
	assert_non_null(strstr(store_errmsg(fx->st), "postgres"));
	/* Calls meanwhile fail at once (no new connection per call), then it is back. */
	int tries = 0;
	while ((rc = store_ping(fx->st, &us)) != 0 && tries++ < 100)
		usleep(20000);
	assert_int_equal(rc, 0);
	assert_true(tries >= 1);
	struct store_session s;
	store_session_init(&s);
	assert_int_equal(store_insert(fx->st, &s), 0);
	store_session_free(&s);
}

/* The app holding a lock: a call waits the store's wait, then fails with WG_ETIMEDOUT. */
static void
test_locked_pg(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	char id[STORE_ID_LEN + 1];
	add_session(st, "primary", "{}", 1, 1, 0, id);
	PGconn *c = PQconnectdb(fx->url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, "BEGIN; LOCK TABLE whatsapp_sessions IN ACCESS EXCLUSIVE MODE");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	struct store_session s;
	store_session_init(&s);
	s.last_error = strdup("x");
	double t0 = now_us();
	assert_int_equal(store_update(st, id, &s, STORE_F_ERROR, 1795600000000LL), WG_ETIMEDOUT);
	double took = now_us() - t0;
	assert_non_null(strstr(store_errmsg(st), "lock"));
	assert_true(took < 200000); /* the 10 ms wait, not the answer deadline */
	r = PQexec(c, "COMMIT");
	PQclear(r);
	PQfinish(c);
	assert_int_equal(store_update(st, id, &s, STORE_F_ERROR, 1795600000000LL), 0);
	store_session_free(&s);
}

/* Leases: a fair share each, takeovers raise the token, and a node that lost a lease writes nothing. */
static void
test_leases_pg(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	char id[7][STORE_ID_LEN + 1];
	for (int i = 0; i < 6; i++)
		add_session(st, "primary", "{}", 1, 1, 0, id[i]);
	add_session(st, "other", NULL, 1, 1, 0, id[6]); /* never runs by itself */
	struct store_lease_round r1 = {.node = "n1", .url = "http://127.0.0.1:1", .ttl_ms = 60000,
	                               .claim_max = 100};
	assert_int_equal(store_lease_round(st, &r1), 0);
	assert_int_equal(r1.runnable, 6);
	assert_int_equal(r1.share, 6); /* alone: everything */
	assert_int_equal(r1.nheld, 6);
	assert_int_equal(r1.held[0].token, 1);
	assert_int_equal(r1.nnodes, 1);
	store_lease_round_free(&r1);
	/* A second node: its share is half, but nothing is free. */
	struct store_lease_round r2 = {.node = "n2", .ttl_ms = 60000, .claim_max = 100};
	assert_int_equal(store_lease_round(st, &r2), 0);
	assert_int_equal(r2.share, 3);
	assert_int_equal(r2.nheld, 0);
	assert_int_equal(r2.nothers, 6);
	assert_string_equal(r2.others[0].owner, "n1");
	store_lease_round_free(&r2);
	/* n1 gives three back; n2 takes them, each a takeover: token 2. */
	const char *give[] = {id[0], id[1], id[2]};
	r1 = (struct store_lease_round){.node = "n1", .ttl_ms = 60000, .claim_max = 100,
	                                .release = give, .nrelease = 3};
	assert_int_equal(store_lease_round(st, &r1), 0);
	assert_int_equal(r1.nheld, 3);
	store_lease_round_free(&r1);
	r2 = (struct store_lease_round){.node = "n2", .ttl_ms = 60000, .claim_max = 100};
	assert_int_equal(store_lease_round(st, &r2), 0);
	assert_int_equal(r2.nheld, 3);
	for (size_t i = 0; i < r2.nheld; i++)
		assert_int_equal(r2.held[i].token, 2);
	store_lease_round_free(&r2);
	/* Fencing: n1's write about id[0] (its token was 1) is refused; n2's goes through. */
	struct store_session v;
	store_session_init(&v);
	snprintf(v.connection_status, sizeof(v.connection_status), "connected");
	struct store_write w = {.id = id[0], .token = 1, .owner = "n1", .fields = STORE_F_STATUS,
	                        .vals = &v};
	size_t gone;
	assert_int_equal(store_write_batch(st, &w, 1, 1795600000000LL, &gone), 0);
	assert_true(w.fenced);
	struct store_session g;
	assert_int_equal(store_get(st, id[0], &g), 0);
	assert_string_equal(g.connection_status, "");
	store_session_free(&g);
	w.token = 2;
	w.owner = "n2";
	assert_int_equal(store_write_batch(st, &w, 1, 1795600000000LL, &gone), 0);
	assert_false(w.fenced);
	assert_int_equal(store_get(st, id[0], &g), 0);
	assert_string_equal(g.connection_status, "connected");
	store_session_free(&g);
	/* On demand: another node's session is refused naming it; a free one is taken, and kept. */
	struct store_lease l;
	assert_int_equal(store_lease_claim(st, "n1", id[0], true, 60000, &l), WG_ESTATE);
	assert_string_equal(l.owner, "n2");
	assert_int_equal(store_lease_claim(st, "n1", id[6], true, 60000, &l), 0);
	assert_int_equal(l.token, 1);
	assert_int_equal(store_lease_claim(st, "n1", id[6], true, 60000, &l), 0);
	assert_int_equal(l.token, 1);
	assert_int_equal(store_lease_claim(st, "n1", "no-such-row", true, 60000, &l), WG_ENOTFOUND);
	/* Looking takes nothing: another's is named, a free one has no owner. */
	assert_int_equal(store_lease_claim(st, "n1", id[0], false, 60000, &l), WG_ESTATE);
	assert_string_equal(l.owner, "n2");
	char free_id[STORE_ID_LEN + 1];
	add_session(st, "spare", NULL, 1, 1, 0, free_id);
	assert_int_equal(store_lease_claim(st, "n1", free_id, false, 60000, &l), 0);
	assert_string_equal(l.owner, "");
	/* n2 leaves: its leases are free at once and n1 takes them, the token one up again. */
	assert_int_equal(store_lease_leave(st, "n2"), 0);
	r1 = (struct store_lease_round){.node = "n1", .ttl_ms = 60000, .claim_max = 100};
	assert_int_equal(store_lease_round(st, &r1), 0);
	assert_int_equal(r1.nheld, 7); /* six to run, and the one taken on demand */
	for (size_t i = 0; i < r1.nheld; i++)
		if (strcmp(r1.held[i].session_id, id[0]) == 0)
			assert_int_equal(r1.held[i].token, 3);
	store_lease_round_free(&r1);
	struct store_node *nodes;
	size_t nn;
	assert_int_equal(store_nodes(st, 60000, &nodes, &nn), 0);
	assert_int_equal(nn, 1);
	assert_string_equal(nodes[0].id, "n1");
	assert_string_equal(nodes[0].url, "http://127.0.0.1:1");
	assert_int_equal(nodes[0].leases, 7);
	assert_true(nodes[0].live);
	free(nodes);
	/* Capacity: a node never holds more than it may. */
	assert_int_equal(store_lease_leave(st, "n1"), 0);
	struct store_lease_round r3 = {.node = "n3", .ttl_ms = 60000, .claim_max = 100, .capacity = 2};
	assert_int_equal(store_lease_round(st, &r3), 0);
	assert_int_equal(r3.nheld, 2);
	store_lease_round_free(&r3);
	/* Bad input: an unknown node name is refused before any SQL. */
	struct store_lease_round bad = {.node = "has space", .ttl_ms = 60000};
	assert_int_equal(store_lease_round(st, &bad), WG_EINVAL);
}

/* SQLite keeps one node: no leases, said plainly. */
static void
test_no_leases(void **state)
{
	struct fx *fx = *state;
	struct store *st = open_store(fx);
	struct store_lease_round r = {.node = "n1", .ttl_ms = 60000, .claim_max = 10};
	assert_int_equal(store_lease_round(st, &r), WG_ENOTSUP);
	assert_non_null(strstr(store_errmsg(st), "one node"));
}

/* A table the app made with integer ids (INTEGER PRIMARY KEY): addressed, numbered and paged as integers. */
static void
test_integer_ids(void **state)
{
	struct fx *fx = *state;
	char err[256];
	int applied;
	assert_int_equal(store_open(fx->url, &fx->st, err, sizeof(err)), 0);
	assert_int_equal(raw(fx->path, "CREATE TABLE whatsapp_sessions (id INTEGER PRIMARY KEY,"
	                               " user_id TEXT, session_name TEXT NOT NULL DEFAULT 'primary',"
	                               " auth_state TEXT, created_at TEXT NOT NULL,"
	                               " updated_at TEXT NOT NULL);"
	                               "INSERT INTO whatsapp_sessions (id, auth_state, created_at,"
	                               " updated_at) VALUES (41, '{}', '2026-11-24T10:00:00.000Z',"
	                               " '2026-11-24T10:00:00.000Z'), (100, '{}',"
	                               " '2026-11-24T10:00:01.000Z', '2026-11-24T10:00:01.000Z')"),
	                 SQLITE_OK);
	assert_int_equal(store_migrate(fx->st, &applied), 0);
	struct store *st = fx->st;
	struct store_session s;
	store_session_init(&s);
	s.auth_state = strdup("{}");
	assert_int_equal(store_insert(st, &s), 0);
	assert_string_equal(s.id, "101"); /* the table numbered it */
	store_session_free(&s);
	struct store_session g;
	assert_int_equal(store_get(st, "41", &g), 0);
	assert_string_equal(g.id, "41");
	assert_int_equal(g.auto_connect, 1);
	store_session_free(&g);
	assert_int_equal(store_get(st, "abc", &g), WG_ENOTFOUND);
	/* Child rows and their foreign keys. */
	struct store_attempt a = {.at = 1795600000000LL};
	snprintf(a.session_id, sizeof(a.session_id), "41");
	snprintf(a.trigger, sizeof(a.trigger), "api");
	snprintf(a.action, sizeof(a.action), "reconnect");
	snprintf(a.result, sizeof(a.result), "ok");
	assert_int_equal(store_add_attempt(st, &a), 0);
	int count;
	assert_int_equal(store_count_attempts(st, "41", NULL, 0, &count), 0);
	assert_int_equal(count, 1);
	snprintf(a.session_id, sizeof(a.session_id), "7");
	assert_int_equal(store_add_attempt(st, &a), WG_ENOTFOUND);
	/* Pages in the ids' numeric order (41, 100, 101), not their text's. */
	const char *want[] = {"41", "100", "101"};
	char after[STORE_ID_LEN + 1] = "";
	for (int i = 0; i < 3; i++) {
		struct store_filter f = {.without_auth = true, .limit = 1, .after_id = after};
		struct store_session *rows;
		size_t n;
		assert_int_equal(store_list(st, &f, &rows, &n), 0);
		assert_int_equal(n, 1);
		assert_string_equal(rows[0].id, want[i]);
		snprintf(after, sizeof(after), "%s", rows[0].id);
		store_list_free(rows, n);
	}
	struct store_filter f = {.without_auth = true, .limit = 1, .after_id = after};
	struct store_session *rows;
	size_t n;
	assert_int_equal(store_list(st, &f, &rows, &n), 0);
	assert_int_equal(n, 0);
	store_list_free(rows, n);
	/* Deleting the row deletes its attempts. */
	assert_int_equal(store_delete(st, "41"), 0);
	assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM whatsapp_session_recovery_attempts"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_open_and_migrate),
	    T(test_file_deleted_then_restored),
	    T(test_file_replaced),
	    T(test_data_version),
	    T(test_paging_past_bad_rows),
	    T(test_newer_schema_refused),
	    T(test_existing_tables),
	    T(test_insert_get_defaults),
	    T(test_update_each_field),
	    T(test_not_found),
	    T(test_find_name),
	    T(test_prune),
	    T(test_autoconnect_filter),
	    T(test_reconcile),
	    T(test_attempts),
	    T(test_status_history),
	    T(test_settings),
	    T(test_webhook_outbox),
	    T(test_open_errors),
	    T(test_corrupt_file),
	    T(test_check_constraint),
	    T(test_bad_rows),
	    T(test_locked),
	    cmocka_unit_test(test_timestamps),
	    cmocka_unit_test(test_uuid),
	    T(test_timings),
	    T(test_no_leases),
	    T(test_integer_ids),
	};
	/* One suite, two backends: the tests that mean the same on both, on PostgreSQL. */
	const struct CMUnitTest pg_tests[] = {
#define P(fn) cmocka_unit_test_setup_teardown(fn, setup_pg, teardown)
	    P(test_open_and_migrate_pg),
	    P(test_newer_schema_refused),
	    P(test_insert_get_defaults),
	    P(test_update_each_field),
	    P(test_not_found),
	    P(test_find_name),
	    P(test_prune),
	    P(test_autoconnect_filter),
	    P(test_reconcile),
	    P(test_attempts),
	    P(test_status_history),
	    P(test_settings),
	    P(test_webhook_outbox),
	    P(test_paging_past_bad_rows),
	    P(test_adopt_app_table_pg),
	    P(test_ids_of_every_kind_pg),
	    P(test_unreachable_pg),
	    P(test_locked_pg),
	    P(test_leases_pg),
	    P(test_timings),
	};
	int failed = cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("postgres", pg_tests, NULL, NULL);
	return failed;
}
