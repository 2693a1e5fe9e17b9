/*
 * The store's front: backend selection by URL, argument checks shared by every
 * backend, and the helpers they share (timestamps, uuids, freeing, errors).
 * Checking arguments here keeps each backend to its queries, and means a bad
 * argument gets the same answer whichever database is behind the store.
 */
#include "store/seal.h"
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/metrics.h"

/* 9999-12-31T23:59:59.999Z: the last instant the four-digit text form can hold. */
#define TS_MAX 253402300799999LL

struct store {
	const struct store_backend *be;
	void *state;
	char errmsg[256];
	size_t skipped; /* rows with bad data the last store_list passed over */
	/* The keys of the last row a paged store_list scanned, good or bad, as stored (malloc'd). */
	char *cursor_id, *cursor_created;
};

static const char *const statuses[] = {"connecting", "qr_pending", "connected", "disconnected",
                                       "logged_out"};

bool
store_status_valid(const char *status)
{
	if (status[0] == '\0')
		return true;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (strcmp(status, statuses[i]) == 0)
			return true;
	return false;
}

void *
store__state(struct store *st)
{
	return st->state;
}

void
store__set_state(struct store *st, void *state)
{
	st->state = state;
}

int
store__fail(struct store *st, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

void
store__set_cursor(struct store *st, const char *id, const char *created)
{
	free(st->cursor_id);
	free(st->cursor_created);
	st->cursor_id = id ? wg_strdup(id) : NULL;
	st->cursor_created = created ? wg_strdup(created) : NULL;
}

int
store_list_cursor(const struct store *st, const char **id, const char **created)
{
	*id = st->cursor_id;
	*created = st->cursor_created;
	return st->cursor_id != NULL ? 0 : WG_ENOTFOUND;
}

size_t
store_list_skipped(const struct store *st)
{
	return st != NULL ? st->skipped : 0;
}

void
store__set_skipped(struct store *st, size_t n)
{
	st->skipped = n;
}

const char *
store_errmsg(const struct store *st)
{
	return st != NULL ? st->errmsg : "no store";
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
store__ts_format(char out[32], int64_t ms)
{
	if (ms < 0 || ms > TS_MAX) {
		out[0] = '\0';
		return WG_EINVAL;
	}
	wg_iso8601(out, (uint64_t)ms);
	return 0;
}

/* Reads exactly n digits at *p, advancing it. */
static bool
digits(const char **p, const char *end, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (*p >= end || (*p)[0] < '0' || (*p)[0] > '9')
			return false;
		v = v * 10 + ((*p)[0] - '0');
		(*p)++;
	}
	*out = v;
	return true;
}

static bool
expect(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

int
store__ts_parse(const char *s, size_t len, int64_t *ms)
{
	const char *p = s, *end = s + len;
	int y, mo, d, h, mi, sec;
	if (!digits(&p, end, 4, &y) || !expect(&p, end, '-') || !digits(&p, end, 2, &mo) ||
	    !expect(&p, end, '-') || !digits(&p, end, 2, &d))
		return WG_EINVAL;
	if (p >= end || (*p != 'T' && *p != ' '))
		return WG_EINVAL;
	p++;
	if (!digits(&p, end, 2, &h) || !expect(&p, end, ':') || !digits(&p, end, 2, &mi) ||
	    !expect(&p, end, ':') || !digits(&p, end, 2, &sec))
		return WG_EINVAL;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 59)
		return WG_EINVAL;
	int frac = 0;
	if (p < end && *p == '.') {
		p++;
		int nd = 0;
		for (; p < end && *p >= '0' && *p <= '9'; p++, nd++)
			if (nd < 3)
				frac = frac * 10 + (*p - '0');
		if (nd == 0 || nd > 9)
			return WG_EINVAL;
		for (; nd < 3; nd++)
			frac *= 10;
	}
	int64_t off = 0; /* seconds east of UTC */
	if (p < end && *p == 'Z') {
		p++;
	} else if (p < end && (*p == '+' || *p == '-')) {
		int sign = *p == '-' ? -1 : 1, oh, om = 0;
		p++;
		if (!digits(&p, end, 2, &oh))
			return WG_EINVAL;
		if (p < end && *p == ':')
			p++;
		if (p < end && !digits(&p, end, 2, &om))
			return WG_EINVAL;
		if (oh > 23 || om > 59)
			return WG_EINVAL;
		off = sign * (oh * 3600 + om * 60);
	}
	if (p != end)
		return WG_EINVAL;
	int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	t = t * 1000 + frac;
	if (t < 0 || t > TS_MAX)
		return WG_EINVAL;
	*ms = t;
	return 0;
}

void
store_uuid(char out[STORE_ID_LEN + 1])
{
	uint8_t b[16];
	/*
	 * Ids must not collide across processes and restarts; without a working
	 * CSPRNG neither ids nor the session keys can be trusted, so stop.
	 */
	if (RAND_bytes(b, sizeof(b)) != 1) {
		fprintf(stderr, "wagate: fatal: RAND_bytes failed\n");
		abort();
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

void
store_session_init(struct store_session *s)
{
	memset(s, 0, sizeof(*s));
	s->is_active = 1;
	s->auto_connect = 1;
}

void
store_session_free(struct store_session *s)
{
	if (s == NULL)
		return;
	free(s->user_id);
	free(s->session_name);
	free(s->phone_number);
	if (s->auth_state != NULL) {
		wg_wipe(s->auth_state, strlen(s->auth_state));
		free(s->auth_state);
	}
	free(s->last_error);
	memset(s, 0, sizeof(*s));
}

void
store_list_free(struct store_session *arr, size_t n)
{
	if (arr == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_session_free(&arr[i]);
	free(arr);
}

void
store_attempts_free(struct store_attempt *arr, size_t n)
{
	if (arr == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(arr[i].detail);
	free(arr);
}

void
store_status_history_free(struct store_status_change *arr, size_t n)
{
	if (arr == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(arr[i].reason);
	free(arr);
}

int
store_time_parse(const char *s, size_t len, int64_t *ms)
{
	return store__ts_parse(s, len, ms);
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int
store_open_backend(const struct store_backend *be, const char *target, struct store **out,
                   char *err, size_t errlen)
{
	*out = NULL;
	struct store *st = wg_calloc(1, sizeof(*st));
	st->be = be;
	int rc = be->open(st, target, err, errlen);
	if (rc < 0) {
		free(st);
		return rc;
	}
	*out = st;
	return 0;
}

int
store_open(const char *url, struct store **out, char *err, size_t errlen)
{
	*out = NULL;
	if (url == NULL || url[0] == '\0') {
		snprintf(err, errlen, "no database URL given (expected sqlite:PATH)");
		return WG_EINVAL;
	}
	if (starts_with(url, "sqlite:")) {
		const char *path = url + strlen("sqlite:");
		/* sqlite:///abs/path, the form other tools write, names /abs/path. */
		if (starts_with(path, "//")) {
			if (path[2] != '/') {
				snprintf(err, errlen,
				         "sqlite:// URLs need an absolute path (sqlite:///path); "
				         "use sqlite:PATH for a relative one");
				return WG_EINVAL;
			}
			path += 2;
		}
		if (path[0] == '\0') {
			snprintf(err, errlen, "sqlite: URL without a file path");
			return WG_EINVAL;
		}
		return store_open_backend(&store_sqlite_backend, path, out, err, errlen);
	}
	if (starts_with(url, "postgres://") || starts_with(url, "postgresql://")) {
		/* libpq reads the whole URL: host, port, database, user, password, options. */
		return store_open_backend(&store_pg_backend, url, out, err, errlen);
	}
	/* The URL may carry a password, so name only its scheme. */
	const char *colon = strchr(url, ':');
	int slen = colon != NULL && colon - url < 32 ? (int)(colon - url) : 0;
	snprintf(err, errlen,
	         "unsupported database URL scheme '%.*s' (expected sqlite:PATH or postgres://...)",
	         slen, url);
	return WG_EINVAL;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	st->be->close(st);
	free(st->cursor_id);
	free(st->cursor_created);
	free(st);
}

bool
store__id_valid(const char *s, size_t len)
{
	if (len == 0 || len > STORE_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/* Checks an id argument; every backend may then assume it fits the columns. */
static int
check_id(struct store *st, const char *id)
{
	if (id == NULL || !store__id_valid(id, strnlen(id, STORE_ID_LEN + 1)))
		return store__fail(st, WG_EINVAL,
		                   "session id missing, longer than %d characters or not printable",
		                   STORE_ID_LEN);
	return 0;
}

static int
check_ts(struct store *st, const char *what, int64_t ms)
{
	if (ms < 0 || ms > TS_MAX)
		return store__fail(st, WG_EINVAL, "%s: timestamp out of range", what);
	return 0;
}

static int
check_text(struct store *st, const char *what, const char *s, size_t max)
{
	if (s != NULL && strnlen(s, max + 1) > max)
		return store__fail(st, WG_ELIMIT, "%s longer than %zu bytes", what, max);
	return 0;
}

/* Checks the fields of s named by mask (all for an insert). */
static int
check_session(struct store *st, const struct store_session *s, unsigned mask)
{
	int rc = 0;
	if ((mask & STORE_F_USER_ID) &&
	    (rc = check_text(st, "user_id", s->user_id, STORE_TEXT_MAX)))
		return rc;
	if (mask & STORE_F_SESSION_NAME) {
		if (s->session_name == NULL || s->session_name[0] == '\0')
			return store__fail(st, WG_EINVAL, "session_name may not be empty");
		if ((rc = check_text(st, "session_name", s->session_name, STORE_TEXT_MAX)))
			return rc;
	}
	if ((mask & STORE_F_PHONE) &&
	    (rc = check_text(st, "phone_number", s->phone_number, STORE_TEXT_MAX)))
		return rc;
	if ((mask & STORE_F_AUTH) &&
	    (rc = check_text(st, "auth_state", s->auth_state, STORE_AUTH_MAX)))
		return rc;
	if ((mask & STORE_F_ACTIVE) && s->is_active != 0 && s->is_active != 1)
		return store__fail(st, WG_EINVAL, "is_active must be 0 or 1");
	if ((mask & STORE_F_AUTO) && s->auto_connect != 0 && s->auto_connect != 1)
		return store__fail(st, WG_EINVAL, "auto_connect must be 0 or 1");
	if (mask & STORE_F_STATUS) {
		if (memchr(s->connection_status, '\0', sizeof(s->connection_status)) == NULL ||
		    !store_status_valid(s->connection_status))
			return store__fail(st, WG_EINVAL, "unknown connection_status");
	}
	if ((mask & STORE_F_ERROR) &&
	    (rc = check_text(st, "last_error", s->last_error, STORE_TEXT_MAX)))
		return rc;
	if ((mask & STORE_F_CONNECTED_AT) &&
	    (rc = check_ts(st, "last_connected_at", s->last_connected_at)))
		return rc;
	if ((mask & STORE_F_MESSAGE_AT) &&
	    (rc = check_ts(st, "last_message_at", s->last_message_at)))
		return rc;
	return 0;
}

int
store_migrate(struct store *st, int *applied)
{
	int n = 0;
	int rc = st->be->migrate(st, &n);
	if (applied != NULL)
		*applied = n;
	return rc;
}

int
store_ping(struct store *st, uint32_t *latency_us)
{
	/*
	 * Latency, not a timing rule, so this reads the real monotonic clock in
	 * microseconds rather than wg_now_ms(), which tests may freeze.
	 */
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int rc = st->be->ping(st);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (latency_us != NULL) {
		int64_t us =
		    (int64_t)(b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
		*latency_us = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	}
	return rc;
}

int
store_reconcile(struct store *st, int64_t now, int *changed)
{
	int n = 0, rc;
	if ((rc = check_ts(st, "now", now)) == 0)
		rc = st->be->reconcile(st, now, &n);
	if (changed != NULL)
		*changed = n;
	return rc;
}

/*
 * Credentials are sealed on their way in and opened on their way out
 * (store/seal.h): backends and callers see plain text only on this side.
 * A value that does not open stays sealed: the credentials parser refuses
 * it, and the session says why (client_wa.c).
 */
static void
open_row(struct store_session *s)
{
	if (!seal_is_sealed(s->auth_state) || !seal_enabled())
		return;
	char *plain, why[256];
	if (seal_open(NULL, s->id, s->auth_state, &plain, why, sizeof(why)) != 0)
		return;
	wg_wipe(s->auth_state, strlen(s->auth_state));
	free(s->auth_state);
	s->auth_state = plain;
}

/* The sealed form of a row's new credentials, or NULL when they go as they are. */
static char *
sealed_auth(const char *id, const struct store_session *s, unsigned fields)
{
	if (!(fields & STORE_F_AUTH) || s->auth_state == NULL || !seal_enabled() ||
	    seal_is_sealed(s->auth_state))
		return NULL;
	return seal_text(id, s->auth_state);
}

int
store_list(struct store *st, const struct store_filter *f, struct store_session **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	static const struct store_filter all;
	if (f == NULL)
		f = &all;
	if (f->after_id || f->limit || f->by_created) {
		if (f->autoconnect || !f->without_auth)
			return store__fail(st, WG_EINVAL, "paging lists only without credentials");
		if (f->after_id && strnlen(f->after_id, STORE_TEXT_MAX + 1) > STORE_TEXT_MAX)
			return store__fail(st, WG_EINVAL, "paging cursor too long");
		if (f->after_created && strnlen(f->after_created, 64) >= 64)
			return store__fail(st, WG_EINVAL, "paging cursor too long");
		if (f->limit > STORE_LIST_MAX)
			return store__fail(st, WG_ELIMIT, "page of more than %u rows", STORE_LIST_MAX);
	}
	if (st->be->list == NULL)
		return store__fail(st, WG_EIO, "the %s store cannot list sessions", st->be->name);
	int rc = st->be->list(st, f, out, n);
	if (rc >= 0 && !f->without_auth)
		for (size_t i = 0; i < *n; i++)
			open_row(&(*out)[i]);
	return rc;
}

int
store_get(struct store *st, const char *id, struct store_session *out)
{
	memset(out, 0, sizeof(*out));
	int rc = check_id(st, id);
	if (rc < 0 || (rc = st->be->get(st, id, out)) < 0)
		return rc;
	open_row(out);
	return rc;
}

int
store_insert(struct store *st, struct store_session *s)
{
	int rc;
	if (memchr(s->id, '\0', sizeof(s->id)) == NULL)
		return store__fail(st, WG_EINVAL, "session id not terminated");
	if (s->id[0] != '\0' && (rc = check_id(st, s->id)) < 0)
		return rc;
	if ((rc = check_session(st, s, STORE_F_ALL & ~STORE_F_SESSION_NAME)) < 0)
		return rc;
	if (s->session_name != NULL && (rc = check_session(st, s, STORE_F_SESSION_NAME)) < 0)
		return rc;
	if ((rc = check_ts(st, "created_at", s->created_at)) < 0 ||
	    (rc = check_ts(st, "updated_at", s->updated_at)) < 0)
		return rc;
	if (s->session_name == NULL)
		s->session_name = wg_strdup("primary");
	int64_t now = (int64_t)wg_wall_ms();
	if (s->created_at == 0)
		s->created_at = now;
	if (s->updated_at == 0)
		s->updated_at = s->created_at;
	if (s->auth_state == NULL || !seal_enabled() || seal_is_sealed(s->auth_state))
		return st->be->insert(st, s);
	char *plain = s->auth_state;
	if (s->id[0] == '\0') {
		/* The table may choose the id: the credentials follow, sealed for it. */
		s->auth_state = NULL;
		rc = st->be->insert(st, s);
		s->auth_state = plain;
		return rc < 0 ? rc : store_update(st, s->id, s, STORE_F_AUTH, s->updated_at);
	}
	s->auth_state = seal_text(s->id, plain);
	rc = st->be->insert(st, s);
	wg_wipe(s->auth_state, strlen(s->auth_state));
	free(s->auth_state);
	s->auth_state = plain;
	return rc;
}

int
store_update(struct store *st, const char *id, const struct store_session *s, unsigned fields,
             int64_t now)
{
	int rc;
	if ((rc = check_id(st, id)) < 0)
		return rc;
	if (fields & ~(unsigned)STORE_F_ALL)
		return store__fail(st, WG_EINVAL, "unknown field bits 0x%x", fields);
	if ((rc = check_session(st, s, fields)) < 0 || (rc = check_ts(st, "now", now)) < 0)
		return rc;
	char *sealed = sealed_auth(id, s, fields);
	if (sealed == NULL)
		return st->be->update(st, id, s, fields, now);
	struct store_session copy = *s;
	copy.auth_state = sealed;
	rc = st->be->update(st, id, &copy, fields, now);
	free(sealed);
	return rc;
}

int
store_migrate_plan(struct store *st, char **sql)
{
	*sql = NULL;
	if (st->be->migrate_plan == NULL)
		return store__fail(st, WG_ENOTSUP, "the %s backend cannot show its migrations",
		                   st->be->name);
	return st->be->migrate_plan(st, sql);
}

void
store_set_wait(struct store *st, int ms)
{
	if (st->be->set_wait != NULL && ms >= 0)
		st->be->set_wait(st, ms);
}

int
store_prune(struct store *st, int64_t before, size_t max, size_t *deleted)
{
	*deleted = 0;
	if (before <= 0 || max == 0 || max > 100000)
		return store__fail(st, WG_EINVAL, "prune: bad bounds");
	if (st->be->prune == NULL)
		return store__fail(st, WG_ENOTSUP, "the %s backend keeps every row", st->be->name);
	return st->be->prune(st, before, max, deleted);
}

int
store_find_name(struct store *st, const char *user_id, const char *name, char id[STORE_ID_LEN + 1])
{
	id[0] = '\0';
	if (name == NULL || name[0] == '\0' || strlen(name) > STORE_TEXT_MAX ||
	    (user_id != NULL && strlen(user_id) > STORE_TEXT_MAX))
		return store__fail(st, WG_EINVAL, "session name or user id out of bounds");
	if (st->be->find_name == NULL)
		return store__fail(st, WG_ENOTSUP, "the %s backend cannot look sessions up by name",
		                   st->be->name);
	return st->be->find_name(st, user_id, name, id);
}

int
store_delete(struct store *st, const char *id)
{
	int rc = check_id(st, id);
	return rc < 0 ? rc : st->be->del(st, id);
}

static int
check_word(struct store *st, const char *what, const char *s, size_t size, bool required)
{
	if (memchr(s, '\0', size) == NULL)
		return store__fail(st, WG_EINVAL, "%s not terminated", what);
	if (required && s[0] == '\0')
		return store__fail(st, WG_EINVAL, "%s may not be empty", what);
	return 0;
}

static int check_attempt(struct store *st, const struct store_attempt *a);
static int check_status_change(struct store *st, const struct store_status_change *c);

/* A node id: 1 to STORE_NODE_MAX printable characters without spaces (it is logged and shown). */
static int
check_node(struct store *st, const char *node)
{
	if (node == NULL || !store__id_valid(node, strnlen(node, STORE_NODE_MAX + 1)) ||
	    strlen(node) > STORE_NODE_MAX)
		return store__fail(st, WG_EINVAL, "node id missing, longer than %d characters or "
		                                  "not printable", STORE_NODE_MAX);
	return 0;
}

static int
no_leases(struct store *st)
{
	return store__fail(st, WG_ENOTSUP, "the %s backend has no leases: one node only",
	                   st->be->name);
}

/* Every store's batch writes (any thread), for GET /metrics (store_write_metrics). */
static struct store_write_metrics write_metrics = {
    .latency = {.bounds = wg_hist_latency, .n = WG_HIST_LATENCY_N}};

const struct store_write_metrics *
store_write_metrics(void)
{
	return &write_metrics;
}

int
store_write_batch(struct store *st, struct store_write *w, size_t n, int64_t now, size_t *gone)
{
	int rc;
	*gone = 0;
	if ((rc = check_ts(st, "now", now)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = check_id(st, w[i].id)) < 0)
			return rc;
		w[i].fenced = false;
		if (w[i].token != 0 && (rc = check_node(st, w[i].owner)) < 0)
			return rc;
		if (w[i].token != 0 && st->be->lease_round == NULL)
			return no_leases(st);
		if (w[i].fields & ~(unsigned)STORE_F_ALL)
			return store__fail(st, WG_EINVAL, "unknown field bits 0x%x", w[i].fields);
		if (w[i].fields && (rc = check_session(st, w[i].vals, w[i].fields)) < 0)
			return rc;
		for (size_t k = 0; k < w[i].nhistory; k++)
			if ((rc = check_status_change(st, &w[i].history[k])) < 0)
				return rc;
		for (size_t k = 0; k < w[i].nattempts; k++)
			if ((rc = check_attempt(st, &w[i].attempts[k])) < 0)
				return rc;
	}
	if (n == 0)
		return 0;
	if (st->be->write_batch == NULL)
		return store__fail(st, WG_EINVAL, "the %s store cannot write", st->be->name);
	/* Entries with new credentials write a sealed copy of their values. */
	struct store_session *copies = NULL;
	const struct store_session **orig = NULL;
	for (size_t i = 0; i < n; i++) {
		char *sealed = w[i].fields ? sealed_auth(w[i].id, w[i].vals, w[i].fields) : NULL;
		if (sealed == NULL)
			continue;
		if (copies == NULL) {
			copies = wg_calloc(n, sizeof(*copies));
			orig = wg_calloc(n, sizeof(*orig));
		}
		copies[i] = *w[i].vals;
		copies[i].auth_state = sealed;
		orig[i] = w[i].vals;
		w[i].vals = &copies[i];
	}
	uint64_t t0 = wg_mono_ns();
	rc = st->be->write_batch(st, w, n, now, gone);
	wg_hist_observe_ns(&write_metrics.latency, wg_mono_ns() - t0);
	if (rc < 0)
		wg_count(&write_metrics.failures, 1);
	if (copies != NULL) {
		for (size_t i = 0; i < n; i++)
			if (orig[i] != NULL) {
				free(copies[i].auth_state);
				w[i].vals = orig[i];
			}
		free(copies);
		free(orig);
	}
	return rc;
}

int
store_lease_round(struct store *st, struct store_lease_round *r)
{
	int rc;
	r->held = r->others = NULL;
	r->nodes = NULL;
	r->nheld = r->nothers = r->nnodes = 0;
	r->runnable = r->share = 0;
	if ((rc = check_node(st, r->node)) < 0)
		return rc;
	if (r->ttl_ms < 1000 || r->ttl_ms > 3600000)
		return store__fail(st, WG_EINVAL, "lease time out of bounds (1 s to 1 h)");
	if (r->url != NULL && strlen(r->url) > STORE_URL_MAX)
		return store__fail(st, WG_ELIMIT, "node URL longer than %d bytes", STORE_URL_MAX);
	for (size_t i = 0; i < r->nrelease; i++)
		if ((rc = check_id(st, r->release[i])) < 0)
			return rc;
	if (st->be->lease_round == NULL)
		return no_leases(st);
	rc = st->be->lease_round(st, r);
	if (rc < 0)
		store_lease_round_free(r);
	return rc;
}

void
store_lease_round_free(struct store_lease_round *r)
{
	free(r->held);
	free(r->others);
	free(r->nodes);
	r->held = r->others = NULL;
	r->nodes = NULL;
	r->nheld = r->nothers = r->nnodes = 0;
}

int
store_lease_claim(struct store *st, const char *node, const char *id, bool take, uint64_t ttl_ms,
                  struct store_lease *out)
{
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = check_node(st, node)) < 0 || (rc = check_id(st, id)) < 0)
		return rc;
	if (ttl_ms < 1000 || ttl_ms > 3600000)
		return store__fail(st, WG_EINVAL, "lease time out of bounds (1 s to 1 h)");
	if (st->be->lease_claim == NULL)
		return no_leases(st);
	return st->be->lease_claim(st, node, id, take, ttl_ms, out);
}

int
store_lease_leave(struct store *st, const char *node)
{
	int rc = check_node(st, node);
	if (rc < 0)
		return rc;
	if (st->be->lease_leave == NULL)
		return no_leases(st);
	return st->be->lease_leave(st, node);
}

int
store_nodes(struct store *st, uint64_t ttl_ms, struct store_node **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (st->be->nodes == NULL)
		return no_leases(st);
	return st->be->nodes(st, ttl_ms, out, n);
}

int
store__batch_body(struct store *st, const struct store_batch_ops *ops, struct store_write *w,
                  size_t n, int64_t now, size_t *gone)
{
	int rc;
	for (size_t i = 0; i < n; i++) {
		if (w[i].token != 0 && ops->still_holds != NULL) {
			/* Fencing: a node that lost the session writes nothing about it. */
			bool holds = false;
			if ((rc = ops->still_holds(st, &w[i], &holds)) < 0)
				return rc;
			if (!holds) {
				w[i].fenced = true;
				continue;
			}
		}
		if (w[i].fields) {
			rc = ops->update(st, w[i].id, w[i].vals, w[i].fields, now);
			if (rc == WG_ENOTFOUND) {
				(*gone)++;
				continue;
			}
			if (rc < 0)
				return rc;
		}
		rc = 0;
		for (size_t k = 0; k < w[i].nhistory && rc == 0; k++)
			rc = ops->add_status(st, &w[i].history[k]);
		for (size_t k = 0; k < w[i].nattempts && rc == 0; k++)
			rc = ops->add_attempt(st, &w[i].attempts[k]);
		if (rc < 0 && rc != WG_ENOTFOUND)
			return rc;
	}
	return 0;
}

int
store_data_version(struct store *st, uint64_t *version)
{
	if (st->be->data_version == NULL)
		return store__fail(st, WG_ENOTSUP, "this database cannot tell whether others changed it");
	return st->be->data_version(st, version);
}

int
store_recent_attempts(struct store *st, const char *const *ids, size_t nids, size_t per_session,
                      struct store_attempt **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	int rc;
	if (nids > 1000 || per_session == 0 || per_session > 100)
		return store__fail(st, WG_EINVAL, "recent attempts: 1-100 per session of at most 1,000");
	for (size_t i = 0; i < nids; i++)
		if ((rc = check_id(st, ids[i])) < 0)
			return rc;
	if (nids == 0)
		return 0;
	if (st->be->recent_attempts == NULL)
		return store__fail(st, WG_EINVAL, "the %s store cannot list recent attempts", st->be->name);
	return st->be->recent_attempts(st, ids, nids, per_session, out, n);
}

int
store_add_attempt(struct store *st, struct store_attempt *a)
{
	int rc = check_attempt(st, a);
	return rc < 0 ? rc : st->be->add_attempt(st, a);
}

static int
check_attempt(struct store *st, const struct store_attempt *a)
{
	int rc;
	if ((rc = check_word(st, "session_id", a->session_id, sizeof(a->session_id), true)) < 0 ||
	    (rc = check_word(st, "trigger", a->trigger, sizeof(a->trigger), true)) < 0 ||
	    (rc = check_word(st, "action", a->action, sizeof(a->action), true)) < 0 ||
	    (rc = check_word(st, "result", a->result, sizeof(a->result), true)) < 0 ||
	    (rc = check_text(st, "detail", a->detail, STORE_TEXT_MAX)) < 0 ||
	    (rc = check_ts(st, "at", a->at)) < 0)
		return rc;
	if (a->at == 0)
		return store__fail(st, WG_EINVAL, "attempt without a time");
	return 0;
}

int
store_attempts(struct store *st, const char *session_id, int64_t since, size_t limit,
               struct store_attempt **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	int rc;
	if ((rc = check_id(st, session_id)) < 0 || (rc = check_ts(st, "since", since)) < 0)
		return rc;
	if (limit == 0 || limit > STORE_ATTEMPTS_MAX)
		limit = STORE_ATTEMPTS_MAX;
	return st->be->attempts(st, session_id, since, limit, out, n);
}

int
store_count_attempts(struct store *st, const char *session_id, const char *trigger_prefix,
                     int64_t since, int *count)
{
	*count = 0;
	int rc;
	if ((rc = check_id(st, session_id)) < 0 || (rc = check_ts(st, "since", since)) < 0 ||
	    (rc = check_text(st, "trigger prefix", trigger_prefix, 31)) < 0)
		return rc;
	return st->be->count_attempts(st, session_id, trigger_prefix, since, count);
}

int
store_add_status_change(struct store *st, struct store_status_change *c)
{
	int rc = check_status_change(st, c);
	return rc < 0 ? rc : st->be->add_status_change(st, c);
}

static int
check_status_change(struct store *st, const struct store_status_change *c)
{
	int rc;
	if ((rc = check_word(st, "session_id", c->session_id, sizeof(c->session_id), true)) < 0 ||
	    (rc = check_word(st, "status", c->status, sizeof(c->status), true)) < 0 ||
	    (rc = check_text(st, "reason", c->reason, STORE_TEXT_MAX)) < 0 ||
	    (rc = check_ts(st, "at", c->at)) < 0)
		return rc;
	if (!store_status_valid(c->status))
		return store__fail(st, WG_EINVAL, "unknown connection_status");
	if (c->at == 0)
		return store__fail(st, WG_EINVAL, "status change without a time");
	return 0;
}

int
store_status_history(struct store *st, const char *session_id, int64_t since, size_t limit,
                     struct store_status_change **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	int rc;
	if ((rc = check_id(st, session_id)) < 0 || (rc = check_ts(st, "since", since)) < 0)
		return rc;
	if (limit == 0 || limit > STORE_HISTORY_KEEP)
		limit = STORE_HISTORY_KEEP;
	return st->be->status_history(st, session_id, since, limit, out, n);
}

int
store_get_setting(struct store *st, const char *key, char **value)
{
	*value = NULL;
	if (key == NULL || key[0] == '\0' || strnlen(key, 129) > 128)
		return store__fail(st, WG_EINVAL, "setting name missing or longer than 128 bytes");
	return st->be->get_setting(st, key, value);
}

int
store_set_setting(struct store *st, const char *key, const char *value)
{
	int rc;
	if (key == NULL || key[0] == '\0' || strnlen(key, 129) > 128)
		return store__fail(st, WG_EINVAL, "setting name missing or longer than 128 bytes");
	if (value == NULL)
		return store__fail(st, WG_EINVAL, "setting without a value");
	if ((rc = check_text(st, "setting value", value, STORE_TEXT_MAX)) < 0)
		return rc;
	return st->be->set_setting(st, key, value);
}

/*
 * Seals the credentials still stored as plain text (rows from before
 * sealing, or written by a tool without a key), a page at a time, each page
 * in one transaction; then, when any were, rewrites the storage (SQLite's
 * VACUUM), whose freed pages still held them. Run at start, before the
 * supervisor.
 */
#define SEAL_PAGE 200

int
store_seal_plain(struct store *st, size_t *sealed)
{
	*sealed = 0;
	if (!seal_enabled())
		return 0;
	char after[STORE_TEXT_MAX + 1] = "";
	for (;;) {
		struct store_filter f = {.without_auth = true, .after_id = after, .limit = SEAL_PAGE};
		struct store_session *rows;
		size_t n;
		int rc = store_list(st, &f, &rows, &n);
		if (rc < 0)
			return rc;
		if (n == 0) {
			store_list_free(rows, n);
			/* The plain text stays in freed pages until the file is rewritten. */
			if (*sealed > 0 && st->be->compact != NULL)
				return st->be->compact(st);
			return 0;
		}
		snprintf(after, sizeof(after), "%s", rows[n - 1].id);
		struct store_session *full = wg_calloc(n, sizeof(*full));
		struct store_write *w = wg_calloc(n, sizeof(*w));
		size_t k = 0;
		for (size_t i = 0; i < n && rc >= 0; i++) {
			/* The listing marks sealed ones "wgs1:" and plain ones "". */
			if (rows[i].auth_state == NULL || rows[i].auth_state[0] != '\0')
				continue;
			rc = store_get(st, rows[i].id, &full[k]);
			if (rc == WG_ENOTFOUND) {
				rc = 0;
				continue;
			}
			if (rc >= 0 && full[k].auth_state != NULL && !seal_is_sealed(full[k].auth_state)) {
				w[k] = (struct store_write){.id = full[k].id, .fields = STORE_F_AUTH, .vals = &full[k]};
				k++;
			} else {
				store_session_free(&full[k]);
			}
		}
		size_t gone = 0;
		if (rc >= 0 && k > 0)
			rc = store_write_batch(st, w, k, (int64_t)wg_wall_ms(), &gone);
		if (rc >= 0)
			*sealed += k - gone;
		for (size_t i = 0; i < k; i++)
			store_session_free(&full[i]);
		free(full);
		free(w);
		store_list_free(rows, n);
		if (rc < 0)
			return rc;
	}
}

/* ---- the webhook outbox ---- */

int
store_hook_add(struct store *st, const struct store_hook *h)
{
	int rc;
	if (memchr(h->id, '\0', sizeof(h->id)) == NULL || h->id[0] == '\0')
		return store__fail(st, WG_EINVAL, "webhook delivery id missing");
	if ((rc = check_text(st, "url", h->url, STORE_TEXT_MAX)) < 0 ||
	    (rc = check_text(st, "body", h->body, STORE_HOOK_BODY_MAX)) < 0 ||
	    (h->session_id && (rc = check_text(st, "session_id", h->session_id, STORE_TEXT_MAX)) < 0) ||
	    (rc = check_ts(st, "created_at", h->created_at)) < 0)
		return rc;
	if (h->url == NULL || h->body == NULL || h->kind[0] == '\0')
		return store__fail(st, WG_EINVAL, "webhook delivery without url, body or kind");
	if (st->be->hook_add == NULL)
		return store__fail(st, WG_ENOTSUP, "the %s store keeps no webhooks", st->be->name);
	return st->be->hook_add(st, h);
}

int
store_hook_delete(struct store *st, const char *id)
{
	if (id == NULL || strnlen(id, 33) > 32)
		return store__fail(st, WG_EINVAL, "bad webhook delivery id");
	if (st->be->hook_delete == NULL)
		return store__fail(st, WG_ENOTSUP, "the %s store keeps no webhooks", st->be->name);
	return st->be->hook_delete(st, id);
}

int
store_hook_list(struct store *st, size_t max, struct store_hook **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (max == 0 || max > STORE_LIST_MAX)
		return store__fail(st, WG_ELIMIT, "webhook list of %zu rows", max);
	if (st->be->hook_list == NULL)
		return store__fail(st, WG_ENOTSUP, "the %s store keeps no webhooks", st->be->name);
	return st->be->hook_list(st, max, out, n);
}

void
store_hooks_free(struct store_hook *arr, size_t n)
{
	for (size_t i = 0; arr && i < n; i++) {
		free(arr[i].url);
		free(arr[i].session_id);
		free(arr[i].body);
	}
	free(arr);
}
