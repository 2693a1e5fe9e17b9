/*
 * The schema, one list for both backends: the migrations in order, as SQL
 * with placeholders for the few types the two databases spell differently.
 * Each backend expands them (store_schema_sql) and runs the result.
 */
#ifndef WG_STORE_SCHEMA_H
#define WG_STORE_SCHEMA_H

struct store_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct store_migration store_migrations[];
extern const int store_nmigrations;

/* How a backend spells the placeholders. */
struct store_dialect {
	const char *id;     /* {ID}: the type of a session id (the app's id column's, when it has one) */
	const char *ts;     /* {TS}: a point in time */
	const char *ts_now; /* {TS_NOW}: a point in time, NOT NULL, defaulting to now when the backend can */
	const char *serial; /* {SERIAL}: an integer primary key the database numbers */
};

extern const struct store_dialect store_sqlite_dialect;
extern const struct store_dialect store_pg_dialect;

/* m's SQL with the placeholders of d (malloc'd). */
char *store_schema_sql(const struct store_migration *m, const struct store_dialect *d);

#endif
