/*
 * The recovery monitor (Rule 5), every recovery_interval_ms, run in slices so
 * that no loop turn holds more than monitor_slice sessions. When someone else
 * may have changed the table since the rows in memory were read (the store's
 * data version moved, or the backend cannot tell), each slice reads one page
 * of rows by id (keyset: ids after the last one read), brings the user's
 * columns into memory (is_active, auto_connect, session_name, credentials set
 * or removed, rows the web app inserted), and applies the rules to those
 * sessions; a session whose row did not appear in such a whole pass was
 * deleted by someone else: it is closed and forgotten. Otherwise the pass
 * applies the rules from memory alone, with no read at all.
 *
 * The recovery limit counts the "monitor:" recoveries that failed, per session
 * in memory (a recovery that works costs nothing; the staleness probe is no
 * recovery): the first time a session needs the count, the failed recoveries
 * of the window that an earlier process recorded are read once from the store.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "sup/sup_int.h"

static unsigned
count_since(const struct sess *x, int64_t since)
{
	unsigned k = 0;
	for (unsigned i = 0; i < x->nrecov; i++)
		k += x->recov[i] >= since;
	return k;
}

/* What memory knows, without reading the store (for views). */
unsigned
sup__recoveries_known(struct sess *x)
{
	return count_since(x, (int64_t)wg_wall_ms() - (int64_t)x->sup->cfg.recovery_window_ms);
}

/*
 * Memory takes the failed monitor recoveries an earlier process (or another
 * node) recorded in the window, newest first from the store, beside those it
 * counted itself: the newest `cap`, oldest first, each once (a recovery
 * written already is in both, at the same instant).
 */
static void
recov_merge(struct sess *x, const struct store_attempt *a, size_t n)
{
	unsigned cap = x->sup->cfg.recovery_max ? x->sup->cfg.recovery_max : 1;
	int64_t *all = wg_calloc((size_t)cap + x->nrecov, sizeof(*all));
	size_t k = 0;
	for (unsigned i = 0; i < x->nrecov; i++)
		all[k++] = x->recov[i];
	unsigned taken = 0;
	for (size_t i = 0; i < n && taken < cap; i++)
		if (strncmp(a[i].trigger, "monitor:", 8) == 0 && strcmp(a[i].result, "failed") == 0) {
			all[k++] = a[i].at;
			taken++;
		}
	/* A few values: insertion sort, then the duplicates out. */
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0 && all[j - 1] > all[j]; j--) {
			int64_t t = all[j];
			all[j] = all[j - 1];
			all[j - 1] = t;
		}
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 || all[u - 1] != all[i])
			all[u++] = all[i];
	size_t from = u > cap ? u - cap : 0;
	x->nrecov = (unsigned)(u - from);
	memcpy(x->recov, all + from, x->nrecov * sizeof(*all));
	free(all);
	x->recov_loaded = 1;
}

static void recov_load(struct sess *x);

unsigned
sup__recoveries_in_window(struct sess *x)
{
	struct sup *s = x->sup;
	int64_t since = (int64_t)wg_wall_ms() - (int64_t)s->cfg.recovery_window_ms;
	if (!x->recov_loaded && s->reader != NULL) {
		/* Read off the loop; meanwhile memory's own count is all there is. */
		recov_load(x);
	} else if (!x->recov_loaded) {
		x->recov_loaded = 1;
		struct store_attempt *a = NULL;
		size_t n = 0;
		if (store_attempts(s->st, x->id, since, 0, &a, &n) != 0) {
			/* Counted from now on, in memory: the limit still holds within this process. */
			log_warn(x->id, "cannot read earlier recoveries: %s", store_errmsg(s->st));
		} else {
			recov_merge(x, a, n);
			store_attempts_free(a, n);
		}
	}
	return count_since(x, since);
}

/* Counts this session's automatic recoveries in the window; past the limit a person decides. */
int
sup__recovery_allowed(struct sess *x, const char *trigger)
{
	struct sup *s = x->sup;
	if (x->manual_needed)
		return 0;
	if (!x->recov_loaded && s->reader != NULL) {
		/* Decided once the earlier recoveries are read: then the rules run again for it. */
		recov_load(x);
		return 0;
	}
	if (sup__recoveries_in_window(x) < s->cfg.recovery_max)
		return 1;
	char err[200];
	snprintf(err, sizeof(err),
		 "automatic recovery limit reached (%u in %" PRIu64 " min): waiting for a manual reconnect",
		 s->cfg.recovery_max, s->cfg.recovery_window_ms / 60000);
	x->manual_needed = 1;
	/* Under its own prefix: notes about the limit are not recoveries and must not count. */
	char note[48];
	snprintf(note, sizeof(note), "limit:%s", trigger + (strncmp(trigger, "monitor:", 8) == 0 ? 8 : 0));
	sup__record(x, note, "none", "rate_limited", err);
	if (x->state == SS_CONNECTED || x->state == SS_CONNECTING || x->state == SS_READING) {
		/* No state change, but lastError and manualInterventionNeeded did change. */
		sup__wb_set_error(x, err);
		sup__wb_mark(x, STORE_F_ERROR);
		sup__notify(x, SUP_EV_SESSION);
	} else {
		sup__enter(x, SS_STOPPED, "recovery limit", err, 0);
	}
	return 0;
}

uint64_t
sup__recovery_delay(struct sup *s)
{
	/*
	 * A pass that finds many sessions down must not reconnect them all in one
	 * burst (the storm the design exists to prevent): each waits its slot.
	 */
	uint64_t now = wg_now_ms();
	uint64_t at = s->recover_next > now ? s->recover_next : now;
	s->recover_next = at + s->cfg.start_stagger_ms;
	return at - now;
}

static void
recover(struct sess *x, const char *trigger, const char *detail)
{
	struct sup *s = x->sup;
	if (!sup__recovery_allowed(x, trigger))
		return;
	log_warn(x->id, "recovering: %s", detail);
	snprintf(x->trigger, sizeof(x->trigger), "%s", trigger);
	if (x->client) {
		x->reopen = 1;
		s->ops->close(x->client);
	} else {
		/* Paced like every automatic connect: its slot, then start_burst and max_handshakes. */
		sup__wait_then_connect(x, sup__recovery_delay(s), "recovering", NULL);
	}
}

/* The rules for one session, from memory. */
static void
check(struct sup *s, struct sess *x, int64_t now_wall)
{
	if (x->deleted)
		return;
	if (!x->is_active && x->client != NULL && !x->logout) {
		/* Switched off by the user: closed, and left alone. */
		log_info(x->id, "the session was switched off: closing it");
		s->ops->close(x->client);
		return;
	}
	if ((!x->is_active || !x->auto_connect) && x->state == SS_WAITING) {
		/* A retry was scheduled: it is not made. */
		sup__enter(x, SS_IDLE, "switched off",
			   x->is_active ? "auto-connect is off" : "switched off (is_active is false)", 0);
		return;
	}
	int should_run = sup__should_run(x);
	if (!should_run || s->breaker)
		return;
	if (x->state == SS_STOPPED || x->state == SS_PAIRING || x->state == SS_WAITING ||
	    x->state == SS_CONNECTING || x->state == SS_READING || x->probing || x->reopen)
		return;
	int alive = x->client != NULL && s->ops->alive(x->client);
	if (x->state == SS_CONNECTED && !alive) {
		recover(x, "monitor:dead_socket", "connected in memory but the socket is not alive");
	} else if (x->state == SS_IDLE && x->client == NULL) {
		recover(x, "monitor:down", "the session should be connected but is not");
	} else if (x->state == SS_CONNECTED && alive) {
		if (now_wall - x->last_activity > (int64_t)s->cfg.stale_after_ms) {
			/* A probe is no recovery: never limited. If it fails, the recovery is. */
			x->probing = 1;
			if (s->ops->probe(x->client) != 0) {
				x->probing = 0;
				recover(x, "monitor:stale", "probe could not be sent");
			}
		}
	}
}

/* A read that fails goes on failing while the database is away: said at once, then every 30 s. */
static void
read_failed(struct sup *s, uint64_t now, const char *what, const char *why)
{
	if (!s->read_failing || now - s->read_err_logged >= 30000) {
		log_error("supervisor", "%s: %s", what, why);
		s->read_err_logged = now;
	}
	s->read_failing = 1;
}

static void
read_ok(struct sup *s)
{
	if (s->read_failing)
		log_info("supervisor", "the sessions can be read again");
	s->read_failing = 0;
}

/*
 * A row read from the table: memory takes the user's columns. Returns the
 * session; *fresh when memory did not know it, *foreign when someone else
 * wrote the row last, *flags when the columns the rules read changed.
 */
static struct sess *
learn_row(struct sup *s, const struct store_session *row, bool *fresh, bool *foreign, bool *flags)
{
	struct sess *x = sup__find(s, row->id);
	*fresh = x == NULL;
	*foreign = x != NULL && sup__row_foreign(x, row);
	bool before[4] = {x && x->is_active, x && x->auto_connect, x && x->has_auth, x && x->primary};
	/* A row the web app inserted is known from now on, under the same rules. */
	x = sup__take_row(s, row);
	*flags = before[0] != x->is_active || before[1] != x->auto_connect ||
		 before[2] != x->has_auth || before[3] != x->primary;
	if (sup__cluster(s) && !x->leased && x->primary && x->is_active && x->auto_connect &&
	    x->has_auth && (*fresh || *flags))
		sup__lease_hurry(s); /* the app wants it up: some node should take it now */
	return x;
}

/* A monitor page's row: learnt, then the monitor's rules. */
static void
monitor_row(struct sup *s, const struct store_session *row, int64_t now_wall)
{
	bool fresh, foreign, flags;
	struct sess *x = learn_row(s, row, &fresh, &foreign, &flags);
	if (foreign)
		sup__row_written(x);
	check(s, x, now_wall);
}

/*
 * The watch's row: only what the user's write means (a new row, a flag
 * flipped, new credentials perhaps); the monitor's recoveries stay at their
 * interval. Our own writes read back change nothing.
 */
static void
watch_row(struct sup *s, const struct store_session *row, bool notified)
{
	struct sess *x = sup__find(s, row->id);
	/* Our own writes come back to the watch; a notification is only sent for the app's columns. */
	if (x != NULL && !notified && !sup__row_foreign(x, row))
		return;
	bool fresh, foreign, flags;
	x = learn_row(s, row, &fresh, &foreign, &flags);
	if (foreign)
		sup__row_written(x);
	if (fresh && sup__should_run(x) && x->state == SS_IDLE && x->client == NULL && !s->breaker) {
		/* A row the app inserted: connected under the start's rules, in its slot. */
		snprintf(x->trigger, sizeof(x->trigger), "start:row");
		sup__wait_then_connect(x, sup__recovery_delay(s), "a new row", NULL);
	} else if (fresh || flags) {
		sup__user_changed(x);
	}
}

/*
 * A read for the monitor, the watch or a notification: on the reader's thread
 * when there is one (sup_call), so a slow or distant database holds the read,
 * not the loop. Its results are copied in the call: the store's cursor and
 * messages belong to the reader's connection.
 */
enum page_kind { PAGE_MONITOR, PAGE_WATCH, PAGE_ROW, PAGE_RECOV };

struct page_call {
	struct sup_call call; /* first */
	struct sup *s;
	enum page_kind kind;
	struct store_filter f;
	char after_id[STORE_ID_LEN + 1];
	char after_updated[40];
	char id[STORE_ID_LEN + 1]; /* PAGE_ROW */
	int rc;
	char err[256];
	struct store_session *rows;
	size_t n, skipped;
	bool have_cursor;
	char cur_id[STORE_ID_LEN + 1];
	char cur_ts[40];
	struct store_session row; /* PAGE_ROW, when rc is 0 */
	bool starting; /* inside page_start: done runs there when there is no reader */
	int64_t since;               /* PAGE_RECOV: the window's start */
	struct store_attempt *att;   /* PAGE_RECOV: the session's attempts since then */
	size_t natt;
};

static void
page_run(struct store *st, struct sup_call *c)
{
	struct page_call *p = (struct page_call *)c;
	if (p->kind == PAGE_ROW) {
		p->rc = store_get(st, p->id, &p->row);
	} else if (p->kind == PAGE_RECOV) {
		p->rc = store_attempts(st, p->id, p->since, 0, &p->att, &p->natt);
	} else {
		p->rc = store_list(st, &p->f, &p->rows, &p->n);
		if (p->rc == 0) {
			p->skipped = store_list_skipped(st);
			const char *cid, *cts;
			if (store_list_cursor(st, &cid, &cts) == 0) {
				p->have_cursor = true;
				snprintf(p->cur_id, sizeof(p->cur_id), "%s", cid);
				snprintf(p->cur_ts, sizeof(p->cur_ts), "%s", cts ? cts : "");
			}
		}
	}
	/* A skipped row's reason is the store's message too. */
	if ((p->rc != 0 && p->rc != WG_ENOTFOUND) || p->skipped)
		snprintf(p->err, sizeof(p->err), "%s", store_errmsg(st));
}

static void page_done(struct sup_call *c);

static void
page_start(struct sup *s, struct page_call *p)
{
	p->s = s;
	p->call.run = page_run;
	p->call.done = page_done;
	if (p->f.after_id != NULL) {
		snprintf(p->after_id, sizeof(p->after_id), "%s", p->f.after_id);
		p->f.after_id = p->after_id;
	}
	if (p->f.after_updated != NULL) {
		snprintf(p->after_updated, sizeof(p->after_updated), "%s", p->f.after_updated);
		p->f.after_updated = p->after_updated;
	}
	if (p->kind == PAGE_MONITOR)
		s->monitor_call = p;
	else if (p->kind == PAGE_WATCH)
		s->watch_call = p;
	p->starting = s->reader == NULL; /* then done runs inside sup_call */
	sup_call(s, &p->call); /* may free p */
}

static void monitor_page_done(struct sup *s, struct page_call *p);
static void recov_done(struct sup *s, struct page_call *p);
static void watch_page_done(struct sup *s, struct page_call *p);
static void row_done(struct sup *s, struct page_call *p);

static void
page_done(struct sup_call *c)
{
	struct page_call *p = (struct page_call *)c;
	struct sup *s = p->s;
	if (p->kind == PAGE_MONITOR)
		s->monitor_call = NULL;
	else if (p->kind == PAGE_WATCH)
		s->watch_call = NULL;
	if (!c->cancelled && s->started && !s->shutting_down) {
		if (p->kind == PAGE_MONITOR)
			monitor_page_done(s, p);
		else if (p->kind == PAGE_WATCH)
			watch_page_done(s, p);
		else if (p->kind == PAGE_RECOV)
			recov_done(s, p);
		else
			row_done(s, p);
	} else if (p->kind == PAGE_RECOV) {
		struct sess *x = sup__find(s, p->id);
		if (x != NULL)
			x->recov_loading = 0;
	}
	bool later = !p->starting;
	if (p->rows)
		store_list_free(p->rows, p->n);
	if (p->kind == PAGE_ROW && p->rc == 0)
		store_session_free(&p->row);
	if (p->att)
		store_attempts_free(p->att, p->natt);
	free(p);
	/* Read on the reader's thread: what was due meanwhile is due now. Inline, the caller goes on. */
	if (later)
		sup__kick(s);
}

/* The session's earlier recoveries in the window, read off the loop (once per session and process). */
static void
recov_load(struct sess *x)
{
	if (x->recov_loading || x->recov_loaded)
		return;
	x->recov_loading = 1;
	struct page_call *p = wg_calloc(1, sizeof(*p));
	p->kind = PAGE_RECOV;
	snprintf(p->id, sizeof(p->id), "%s", x->id);
	p->since = (int64_t)wg_wall_ms() - (int64_t)x->sup->cfg.recovery_window_ms;
	page_start(x->sup, p);
}

static void
recov_done(struct sup *s, struct page_call *p)
{
	struct sess *x = sup__find(s, p->id);
	if (x == NULL || x->deleted)
		return;
	x->recov_loading = 0;
	if (x->recov_loaded)
		return; /* a person started a fresh window meanwhile (a manual reconnect, a new pairing) */
	if (p->rc != 0) {
		/* Counted from now on, in memory: the limit still holds within this process. */
		log_warn(x->id, "cannot read earlier recoveries: %s", p->err);
		x->recov_loaded = 1;
	} else {
		recov_merge(x, p->att, p->natt);
	}
	/* A recovery may have waited for this count: the rules again, now. */
	check(s, x, (int64_t)wg_wall_ms());
}

/*
 * The watch: every watch_interval_ms, the rows whose updated_at is past the
 * mark (the newest seen), one page per loop turn, keyset on (updated_at, id)
 * over an index: when nobody wrote, one index probe that finds nothing. So a
 * row the app inserts or changes (it sets updated_at) is acted on within the
 * interval instead of the monitor's. Our own writes come back too and change
 * nothing. Deletions are left to the monitor's whole passes.
 */
uint64_t
sup__watch_step(struct sup *s, uint64_t now)
{
	if (s->cfg.watch_interval_ms == 0)
		return UINT64_MAX;
	if (s->watch_call != NULL)
		return UINT64_MAX; /* its page is being read: its end wakes the supervisor */
	if (now < s->watch_at)
		return s->watch_at;
	struct page_call *p = wg_calloc(1, sizeof(*p));
	p->kind = PAGE_WATCH;
	p->f = (struct store_filter){.without_auth = true,
				     .by_updated = true,
				     .after_updated = s->watch_updated,
				     .after_id = s->watch_id,
				     .limit = s->cfg.monitor_slice};
	page_start(s, p);
	return s->watch_call != NULL ? UINT64_MAX : s->watch_at;
}

static void
watch_page_done(struct sup *s, struct page_call *p)
{
	uint64_t now = wg_now_ms();
	if (p->rc != 0) {
		read_failed(s, now, "watch: cannot read changed sessions", p->err);
		s->watch_at = now + s->cfg.watch_interval_ms;
		return;
	}
	read_ok(s);
	for (size_t i = 0; i < p->n; i++)
		watch_row(s, &p->rows[i], false);
	if (p->have_cursor) {
		snprintf(s->watch_updated, sizeof(s->watch_updated), "%s", p->cur_ts);
		snprintf(s->watch_id, sizeof(s->watch_id), "%s", p->cur_id);
	}
	/* A full page: more changed rows wait, read next. */
	s->watch_at = p->have_cursor && p->n + p->skipped >= s->cfg.monitor_slice
			  ? now
			  : now + s->cfg.watch_interval_ms;
}

/*
 * A notification from the database (PostgreSQL's trigger, store/pg_listen.c):
 * the app inserted, deleted or changed one of its columns of session id (NULL:
 * listening again after a gap, so the watch catches up now). The row is read
 * and acted on as the watch would, at once, whatever its updated_at says.
 */
void
sup__notified(struct sup *s, const char *id)
{
	if (!s->started || s->shutting_down)
		return;
	if (id == NULL || !store__id_valid(id, strlen(id))) {
		uint64_t now = wg_now_ms();
		if (s->cfg.watch_interval_ms)
			s->watch_at = now;
		sup__kick(s);
		return;
	}
	struct page_call *p = wg_calloc(1, sizeof(*p));
	p->kind = PAGE_ROW;
	snprintf(p->id, sizeof(p->id), "%s", id);
	page_start(s, p);
}

static void
row_done(struct sup *s, struct page_call *p)
{
	if (p->rc == WG_ENOTFOUND) {
		sup_session_deleted(s, p->id);
	} else if (p->rc != 0) {
		/* Unreadable now: the watch's next poll reads it. */
		if (s->cfg.watch_interval_ms)
			s->watch_at = wg_now_ms();
	} else {
		watch_row(s, &p->row, true);
	}
}

void
sup__watch_init(struct sup *s, int64_t newest_updated)
{
	s->watch_updated[0] = '\0';
	s->watch_id[0] = '\0';
	if (newest_updated > 0)
		store__ts_format(s->watch_updated, newest_updated);
	s->watch_at = wg_now_ms() + s->cfg.watch_interval_ms;
}

/* A whole pass read every row: sessions whose row was not among them were deleted by someone else. */
static void
sweep(struct sup *s)
{
	for (size_t i = 0; i < s->n;) {
		struct sess *x = s->v[i];
		if (x->seen == s->pass || x->deleted) {
			i++;
			continue;
		}
		log_info(x->id, "the session's row is gone: closing and forgetting it");
		x->deleted = 1;
		sup__recount(x);
		sup__wb_forget(x);
		if (x->client) {
			s->ops->close(x->client); /* removed when its close is reported */
			i++;
		} else {
			sup__remove(s, x); /* moves the last one into slot i */
		}
	}
}

void
sup__note_rows_version(struct sup *s)
{
	uint64_t v;
	if (sup__wb_data_version(s, &v) == 0) {
		s->rows_version = v;
		s->have_rows_version = 1;
	}
}

/* One slice of a pass over memory: the rules, no read. */
static void
memory_slice(struct sup *s)
{
	struct sess *xs[256];
	size_t max = s->cfg.monitor_slice < 256 ? s->cfg.monitor_slice : 256;
	int more;
	size_t n = sup__order_slice(s, &s->pass_cur, xs, max, &more);
	int64_t now_wall = (int64_t)wg_wall_ms();
	/* check() never frees a session: closes are reported from a later loop turn. */
	for (size_t i = 0; i < n; i++)
		check(s, xs[i], now_wall);
	if (!more)
		s->pass_running = 0;
}

uint64_t
sup__monitor_step(struct sup *s, uint64_t now)
{
	if (s->monitor_call != NULL)
		return UINT64_MAX; /* its page is being read: its end wakes the supervisor */
	if (!s->pass_running) {
		if (now < s->next_monitor)
			return s->next_monitor;
		s->pass_running = 1;
		s->pass++;
		free(s->pass_after);
		s->pass_after = NULL;
		s->pass_skipped = 0;
		memset(&s->pass_cur, 0, sizeof(s->pass_cur));
		s->next_monitor = now + s->cfg.recovery_interval_ms;
		uint64_t v = 0;
		s->pass_version_ok = sup__wb_data_version(s, &v) == 0;
		s->pass_version = v;
		s->pass_rows = !s->pass_version_ok || !s->have_rows_version || v != s->rows_version;
	}
	if (!s->pass_rows) {
		memory_slice(s);
		return s->pass_running ? now : s->next_monitor;
	}
	struct page_call *p = wg_calloc(1, sizeof(*p));
	p->kind = PAGE_MONITOR;
	p->f = (struct store_filter){.without_auth = true,
				     .after_id = s->pass_after,
				     .limit = s->cfg.monitor_slice};
	page_start(s, p);
	if (s->monitor_call != NULL)
		return UINT64_MAX;
	return s->pass_running ? now : s->next_monitor;
}

static void
monitor_page_done(struct sup *s, struct page_call *p)
{
	if (p->rc != 0) {
		read_failed(s, wg_now_ms(), "monitor: cannot read sessions", p->err);
		s->pass_running = 0; /* the rows not read are not taken for deleted */
		return;
	}
	read_ok(s);
	if (p->skipped) {
		/* A row with bad data must not stop the others; said once per pass. */
		log_error("supervisor", "monitor: %s", p->err);
		s->pass_skipped = 1;
	}
	int64_t now_wall = (int64_t)wg_wall_ms();
	for (size_t i = 0; i < p->n; i++)
		monitor_row(s, &p->rows[i], now_wall);
	if (p->have_cursor) {
		/* Past the last row scanned, a skipped one included: a page of bad rows cannot stall it. */
		free(s->pass_after);
		s->pass_after = wg_strdup(p->cur_id);
	}
	if (p->n + p->skipped < s->cfg.monitor_slice) {
		s->pass_running = 0;
		/* Rows skipped for bad data were not seen either: no sweep on such a pass. */
		if (!s->pass_skipped) {
			sweep(s);
			/* Memory has every row as of the pass's start: until someone writes, no reads. */
			s->rows_version = s->pass_version;
			s->have_rows_version = s->pass_version_ok;
		}
	}
}
