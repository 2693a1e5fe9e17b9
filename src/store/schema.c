/*
 * The schema, one list for both backends (docs/store.md). Append-only: a
 * released migration is never edited, a change is a new one. The SQL is what
 * both SQLite and PostgreSQL accept (TEXT, BOOLEAN, BIGINT, CHECK, REFERENCES,
 * partial indexes), with placeholders where they differ: the time type
 * ({TS}, {TS_NOW}), the numbered primary key ({SERIAL}) and the session id's
 * type ({ID}: on PostgreSQL, the type of the web app's id column, so the
 * foreign keys hold). whatsapp_sessions may exist already, made by the web
 * app, hence IF NOT EXISTS there; the backends then add the columns it lacks.
 */
#include "store/schema.h"

#include <string.h>

#include "core/mem.h"

const struct store_migration store_migrations[] = {
    {1, "whatsapp_sessions",
     "CREATE TABLE IF NOT EXISTS whatsapp_sessions (\n"
     "	id TEXT PRIMARY KEY,\n"
     "	user_id TEXT,\n"
     "	session_name TEXT NOT NULL DEFAULT 'primary',\n"
     "	phone_number TEXT,\n"
     "	auth_state TEXT,\n"
     "	is_active BOOLEAN NOT NULL DEFAULT true,\n"
     "	auto_connect BOOLEAN NOT NULL DEFAULT true,\n"
     "	connection_status TEXT CHECK (connection_status IN\n"
     "		('connecting', 'qr_pending', 'connected', 'disconnected', 'logged_out')),\n"
     "	last_error TEXT,\n"
     "	last_connected_at {TS},\n"
     "	last_message_at {TS},\n"
     "	created_at {TS_NOW},\n"
     "	updated_at {TS_NOW}\n"
     ");\n"
     "CREATE INDEX IF NOT EXISTS whatsapp_sessions_autoconnect_idx\n"
     "	ON whatsapp_sessions (session_name, is_active, auto_connect)\n"
     "	WHERE auth_state IS NOT NULL;\n"
     "CREATE INDEX IF NOT EXISTS whatsapp_sessions_status_idx\n"
     "	ON whatsapp_sessions (connection_status);\n"},
    {2, "whatsapp_session_recovery_attempts",
     "CREATE TABLE whatsapp_session_recovery_attempts (\n"
     "	id {SERIAL},\n"
     "	session_id {ID} NOT NULL REFERENCES whatsapp_sessions (id) ON DELETE CASCADE,\n"
     "	attempted_at {TS} NOT NULL,\n"
     "	trigger_type TEXT NOT NULL,\n"
     "	action TEXT NOT NULL,\n"
     "	result TEXT NOT NULL,\n"
     "	detail TEXT\n"
     ");\n"
     "CREATE INDEX whatsapp_session_recovery_attempts_session_idx\n"
     "	ON whatsapp_session_recovery_attempts (session_id, attempted_at);\n"},
    {3, "wagate_settings",
     "CREATE TABLE wagate_settings (\n"
     "	name TEXT PRIMARY KEY,\n"
     "	value TEXT NOT NULL,\n"
     "	updated_at {TS} NOT NULL\n"
     ");\n"},
    {4, "whatsapp_session_status_history",
     "CREATE TABLE whatsapp_session_status_history (\n"
     "	id {SERIAL},\n"
     "	session_id {ID} NOT NULL REFERENCES whatsapp_sessions (id) ON DELETE CASCADE,\n"
     "	changed_at {TS} NOT NULL,\n"
     "	status TEXT NOT NULL CHECK (status IN\n"
     "		('connecting', 'qr_pending', 'connected', 'disconnected', 'logged_out')),\n"
     "	reason TEXT\n"
     ");\n"
     "CREATE INDEX whatsapp_session_status_history_session_idx\n"
     "	ON whatsapp_session_status_history (session_id, changed_at);\n"},
    /* The API lists sessions oldest first, a page at a time (keyset on this index). */
    {5, "whatsapp_sessions_created_idx",
     "CREATE INDEX IF NOT EXISTS whatsapp_sessions_created_idx\n"
     "	ON whatsapp_sessions (created_at, id);\n"},
    /* Names are unique per user for sessions made through the API: one lookup per create. */
    {6, "whatsapp_sessions_name_idx",
     "CREATE INDEX IF NOT EXISTS whatsapp_sessions_name_idx\n"
     "	ON whatsapp_sessions (session_name, user_id);\n"},
    /* Retention deletes the oldest rows first, whichever session they belong to. */
    {7, "retention_idx",
     "CREATE INDEX IF NOT EXISTS whatsapp_session_recovery_attempts_at_idx\n"
     "	ON whatsapp_session_recovery_attempts (attempted_at);\n"
     "CREATE INDEX IF NOT EXISTS whatsapp_session_status_history_at_idx\n"
     "	ON whatsapp_session_status_history (changed_at);\n"},
    /* The rows changed since a mark, for the watch that notices the app's writes within a second. */
    {8, "whatsapp_sessions_updated_idx",
     "CREATE INDEX IF NOT EXISTS whatsapp_sessions_updated_idx\n"
     "	ON whatsapp_sessions (updated_at, id);\n"},
    /*
     * Several nodes share the sessions through leases (PostgreSQL, docs/cluster.md);
     * SQLite has the tables too, unused, so both keep one list of versions.
     */
    {9, "wagate_leases",
     "CREATE TABLE wagate_nodes (\n"
     "	node_id TEXT PRIMARY KEY,\n"
     "	api_url TEXT,\n"
     "	started_at {TS} NOT NULL,\n"
     "	heartbeat_at {TS} NOT NULL,\n"
     "	capacity INTEGER NOT NULL DEFAULT 0\n"
     ");\n"
     "CREATE TABLE wagate_leases (\n"
     "	session_id {ID} PRIMARY KEY REFERENCES whatsapp_sessions (id) ON DELETE CASCADE,\n"
     "	owner TEXT NOT NULL,\n"
     "	token BIGINT NOT NULL,\n"
     "	acquired_at {TS} NOT NULL,\n"
     "	expires_at {TS} NOT NULL\n"
     ");\n"
     "CREATE INDEX wagate_leases_owner_idx ON wagate_leases (owner);\n"},
    /*
     * Webhook deliveries not yet accepted by their receiver (src/hook/): kept
     * so that a restart loses none. No reference to the session: an event about
     * a deleted session is still delivered.
     */
    {10, "wagate_webhook_outbox",
     "CREATE TABLE wagate_webhook_outbox (\n"
     "	id TEXT PRIMARY KEY,\n"
     "	seq BIGINT NOT NULL,\n"
     "	url TEXT NOT NULL,\n"
     "	session_id TEXT,\n"
     "	kind TEXT NOT NULL,\n"
     "	body TEXT NOT NULL,\n"
     "	created_at {TS} NOT NULL\n"
     ");\n"
     "CREATE INDEX wagate_webhook_outbox_seq_idx ON wagate_webhook_outbox (seq);\n"},
};

const int store_nmigrations = (int)(sizeof(store_migrations) / sizeof(store_migrations[0]));

const struct store_dialect store_sqlite_dialect = {
    .id = "TEXT",
    .ts = "TEXT",
    .ts_now = "TEXT NOT NULL", /* SQLite cannot default a column to now in this form */
    .serial = "INTEGER PRIMARY KEY",
};

const struct store_dialect store_pg_dialect = {
    .id = "TEXT",
    .ts = "TIMESTAMPTZ",
    .ts_now = "TIMESTAMPTZ NOT NULL DEFAULT now()",
    .serial = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
};

char *
store_schema_sql(const struct store_migration *m, const struct store_dialect *d)
{
	static const char *const names[] = {"{ID}", "{TS_NOW}", "{TS}", "{SERIAL}"};
	const char *vals[] = {d->id, d->ts_now, d->ts, d->serial};
	size_t cap = strlen(m->sql) + 1, len = 0;
	for (size_t k = 0; k < 4; k++)
		for (const char *p = strstr(m->sql, names[k]); p; p = strstr(p + 1, names[k]))
			cap += strlen(vals[k]);
	char *out = wg_malloc(cap);
	for (const char *p = m->sql; *p != '\0';) {
		size_t k = 0;
		while (k < 4 && strncmp(p, names[k], strlen(names[k])) != 0)
			k++;
		if (k < 4) {
			memcpy(out + len, vals[k], strlen(vals[k]));
			len += strlen(vals[k]);
			p += strlen(names[k]);
		} else {
			out[len++] = *p++;
		}
	}
	out[len] = '\0';
	return out;
}
