/*
 * The write-behind: memory is the truth about the supervisor's columns, and
 * the database is its converging mirror. A change marks its session dirty
 * (which fields, plus the status changes and recovery attempts not yet
 * written); a flush writes the dirty sessions in batches, one transaction
 * each (one fsync for many changes), flush_delay_ms after the first change,
 * so a burst of changes costs one write. A failed write keeps everything and
 * is retried with backoff until it succeeds; meanwhile /health says "error"
 * with the store's reason. last_message_at is coalesced: at most one write
 * per session per message_at_interval_ms, so a message costs no fsync of its
 * own. Shutdown writes everything that is pending.
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

/*
 * Sessions per transaction: bounds the time one write holds the loop. The
 * batch adapts to what a write costs here: one that took longer than
 * WB_TURN_MS halves the next (down to WB_BATCH_MIN), one that took less than
 * half of it doubles the next (up to WB_BATCH). Under load a batch of 64 took
 * up to 15 ms of CPU; a slow disk makes each transaction's fsync longer too.
 */
#define WB_BATCH 64
#define WB_BATCH_MIN 8
#define WB_TURN_MS 4
/* Status changes and attempts kept per session while the database refuses them. */
#define WB_PEND_MAX 256
/* Retry delays after a failed write: 100 ms doubling up to 10 s. */
#define WB_RETRY_MIN_MS 100
#define WB_RETRY_MAX_MS 10000
/* A failure that goes on is logged again at most this often. */
#define WB_LOG_EVERY_MS 60000
/*
 * Retention runs this long after the start, then hourly while quiet; each
 * call deletes at most WB_PRUNE_MAX rows per table (a few ms), and the next
 * batch follows in the next loop turn while there are more.
 */
#define WB_PRUNE_FIRST_MS 60000
#define WB_PRUNE_EVERY_MS 3600000
#define WB_PRUNE_MAX 500

void
sup__wb_init(struct sup *s)
{
	TAILQ_INIT(&s->dirty);
	TAILQ_INIT(&s->msgs);
	s->flush_at = UINT64_MAX;
	s->msg_at = UINT64_MAX;
	s->wb_batch = WB_BATCH;
	s->ping_at = 0;
	s->prune_at = wg_now_ms() + WB_PRUNE_FIRST_MS;
	s->db_ok = 1;
}

/* Deletes a batch of attempts and history older than the retention; when there were more, again soon. */
static void
prune(struct sup *s, uint64_t now)
{
	s->prune_at = now + WB_PRUNE_EVERY_MS;
	if (s->cfg.retention_ms == 0)
		return;
	int64_t before = (int64_t)wg_wall_ms() - (int64_t)s->cfg.retention_ms;
	size_t deleted = 0;
	int r = store_prune(s->st, before, WB_PRUNE_MAX, &deleted);
	if (r == WG_ENOTSUP)
		return;
	if (r != 0) {
		log_warn("supervisor", "retention: cannot delete old recovery attempts and history: %s",
			 store_errmsg(s->st));
		return;
	}
	if (deleted > 0)
		log_debug("supervisor", "retention: deleted %zu old recovery attempts and status changes",
			  deleted);
	if (deleted >= WB_PRUNE_MAX)
		s->prune_at = now; /* more: the next batch in the next loop turn */
}

static void
pend_free(struct pend *p)
{
	free(p->h.reason);
	free(p->a.detail);
	free(p);
}

static void
undirty(struct sess *x)
{
	if (x->in_dirty) {
		TAILQ_REMOVE(&x->sup->dirty, x, dirty_link);
		x->in_dirty = 0;
		x->sup->ndirty--;
	}
}

/* Nothing is pending for the row any more (written, or the row is gone); credentials are wiped. */
static void
clear_pending(struct sess *x)
{
	undirty(x);
	while (x->pend) {
		struct pend *p = x->pend;
		x->pend = p->next;
		pend_free(p);
	}
	x->pend_tail = &x->pend;
	x->npend = 0;
	if (x->auth_pending) {
		wg_wipe(x->auth_pending, strlen(x->auth_pending));
		free(x->auth_pending);
		x->auth_pending = NULL;
	}
	free(x->phone_pending);
	x->phone_pending = NULL;
	x->dirty = 0;
}

void
sup__wb_forget(struct sess *x)
{
	if (x->msg_pending) {
		TAILQ_REMOVE(&x->sup->msgs, x, msg_link);
		x->msg_pending = 0;
	}
	clear_pending(x);
}

static void
enqueue(struct sess *x)
{
	struct sup *s = x->sup;
	if (x->deleted)
		return;
	if (!x->in_dirty) {
		TAILQ_INSERT_TAIL(&s->dirty, x, dirty_link);
		x->in_dirty = 1;
		s->ndirty++;
	}
	/* While writes fail, the retry's time stands: a new change does not hurry it. */
	uint64_t at = wg_now_ms() + s->cfg.flush_delay_ms;
	if (s->flush_failures == 0 && at < s->flush_at)
		s->flush_at = at;
}

void
sup__wb_mark(struct sess *x, unsigned fields)
{
	x->dirty |= fields;
	enqueue(x);
}

static void
pend_add(struct sess *x, struct pend *p)
{
	if (x->npend == WB_PEND_MAX) {
		/* The database has refused this session's rows for long: the oldest goes, loudly. */
		struct pend *old = x->pend;
		x->pend = old->next;
		if (x->pend == NULL)
			x->pend_tail = &x->pend;
		x->npend--;
		log_warn(x->id, "the database has not taken %u status changes and recovery "
				"attempts: dropping the oldest", WB_PEND_MAX);
		pend_free(old);
	}
	*x->pend_tail = p;
	x->pend_tail = &p->next;
	x->npend++;
	enqueue(x);
}

void
sup__wb_history(struct sess *x, const char *status, const char *reason)
{
	struct pend *p = wg_calloc(1, sizeof(*p));
	snprintf(p->h.session_id, sizeof(p->h.session_id), "%s", x->id);
	p->h.at = (int64_t)wg_wall_ms();
	snprintf(p->h.status, sizeof(p->h.status), "%s", status);
	p->h.reason = reason ? wg_strdup(reason) : NULL;
	pend_add(x, p);
}

void
sup__wb_attempt(struct sess *x, const struct store_attempt *a)
{
	struct pend *p = wg_calloc(1, sizeof(*p));
	p->is_attempt = 1;
	p->a = *a;
	p->a.detail = a->detail ? wg_strdup(a->detail) : NULL;
	pend_add(x, p);
}

void
sup__wb_set_error(struct sess *x, const char *err)
{
	free(x->last_error);
	x->last_error = err && err[0] ? wg_strdup(err) : NULL;
}

void
sup__wb_message(struct sess *x)
{
	struct sup *s = x->sup;
	if (x->msg_pending || x->deleted)
		return;
	x->msg_pending = 1;
	TAILQ_INSERT_TAIL(&s->msgs, x, msg_link);
	if (s->msg_at == UINT64_MAX)
		s->msg_at = wg_now_ms() + s->cfg.message_at_interval_ms;
}

/* The waiting last_message_at values join the next write. */
static void
msgs_to_dirty(struct sup *s)
{
	struct sess *x;
	while ((x = TAILQ_FIRST(&s->msgs)) != NULL) {
		TAILQ_REMOVE(&s->msgs, x, msg_link);
		x->msg_pending = 0;
		sup__wb_mark(x, STORE_F_MESSAGE_AT);
	}
	s->msg_at = UINT64_MAX;
}

static void
db_failed(struct sup *s, uint64_t now, const char *what)
{
	int first = s->db_ok;
	s->db_ok = 0;
	snprintf(s->db_error, sizeof(s->db_error), "%s", store_errmsg(s->st));
	if (first || now - s->db_error_logged >= WB_LOG_EVERY_MS) {
		log_error("supervisor", "%s failed (%u session(s) waiting to be written; retrying): %s",
			  what, s->ndirty, s->db_error);
		s->db_error_logged = now;
	}
}

static void
db_ok(struct sup *s, uint64_t now, uint32_t us)
{
	if (!s->db_ok)
		log_info("supervisor", "the database answers again");
	s->db_ok = 1;
	s->db_error[0] = '\0';
	s->db_latency_us = us;
	s->last_write_ok = now;
}

/*
 * One transaction for up to WB_BATCH dirty sessions (or only `only`). 0, or
 * the store's error (nothing is lost: it all stays pending).
 */
static int
flush_batch(struct sup *s, uint64_t now, struct sess *only)
{
	struct store_write w[WB_BATCH];
	struct store_session vals[WB_BATCH];
	struct sess *xs[WB_BATCH];
	size_t k = 0, nh = 0, na = 0;
	size_t most = s->wb_batch ? s->wb_batch : WB_BATCH;
	for (struct sess *x = only ? only : TAILQ_FIRST(&s->dirty); x && k < most;
	     x = only ? NULL : TAILQ_NEXT(x, dirty_link)) {
		xs[k++] = x;
		for (struct pend *p = x->pend; p; p = p->next)
			p->is_attempt ? na++ : nh++;
	}
	struct store_status_change *hist = wg_calloc(nh ? nh : 1, sizeof(*hist));
	struct store_attempt *att = wg_calloc(na ? na : 1, sizeof(*att));
	size_t ih = 0, ia = 0;
	for (size_t i = 0; i < k; i++) {
		struct sess *x = xs[i];
		struct store_session *v = &vals[i];
		memset(v, 0, sizeof(*v));
		snprintf(v->connection_status, sizeof(v->connection_status), "%s", x->status);
		v->last_error = x->last_error;
		v->last_connected_at = x->last_connected_at;
		v->last_message_at = x->last_message_at;
		v->auth_state = x->auth_pending;
		v->phone_number = x->phone_pending;
		w[i] = (struct store_write){.id = x->id, .fields = x->dirty, .vals = v};
		w[i].history = hist + ih;
		w[i].attempts = att + ia;
		for (struct pend *p = x->pend; p; p = p->next) {
			if (p->is_attempt)
				att[ia++] = p->a;
			else
				hist[ih++] = p->h;
		}
		w[i].nhistory = (size_t)(hist + ih - w[i].history);
		w[i].nattempts = (size_t)(att + ia - w[i].attempts);
	}
	uint64_t t0 = wg_now_ms();
	size_t gone = 0;
	int64_t wall = (int64_t)wg_wall_ms();
	int r = store_write_batch(s->st, w, k, wall, &gone);
	free(hist);
	free(att);
	if (r != 0) {
		db_failed(s, now, "database write");
		return r;
	}
	uint64_t took = wg_now_ms() - t0;
	db_ok(s, now, (uint32_t)(took * 1000));
	if (only == NULL) {
		if (took > WB_TURN_MS && s->wb_batch > WB_BATCH_MIN)
			s->wb_batch /= 2;
		else if (took * 2 < WB_TURN_MS && s->wb_batch < WB_BATCH && k == s->wb_batch)
			s->wb_batch *= 2;
	}
	/* The rows have it all now (credentials too: connects read them from there). */
	for (size_t i = 0; i < k; i++) {
		/* The rows' updated_at is the write's time (only rows with columns to write change). */
		if (xs[i]->dirty)
			xs[i]->updated_at = wall;
		clear_pending(xs[i]);
	}
	return 0;
}

/*
 * The database refused the batch's content (a constraint of the web app's, a
 * value over a limit): one session's changes must not hold back everyone's.
 * Each is written alone; one that is refused alone is dropped, loudly.
 */
static int
flush_one_by_one(struct sup *s, uint64_t now)
{
	struct sess *batch[WB_BATCH];
	size_t k = 0;
	for (struct sess *x = TAILQ_FIRST(&s->dirty); x && k < WB_BATCH; x = TAILQ_NEXT(x, dirty_link))
		batch[k++] = x;
	for (size_t i = 0; i < k; i++) {
		int r = flush_batch(s, now, batch[i]);
		if (r == WG_EINVAL || r == WG_ELIMIT) {
			log_error(batch[i]->id, "the database refuses this session's changes; dropping "
						"them: %s", store_errmsg(s->st));
			sup__wb_forget(batch[i]);
		} else if (r != 0) {
			return r;
		}
	}
	return 0;
}

uint64_t
sup__wb_run(struct sup *s, uint64_t now)
{
	if (now >= s->msg_at)
		msgs_to_dirty(s);
	if (!TAILQ_EMPTY(&s->dirty) && now >= s->flush_at) {
		int r = flush_batch(s, now, NULL);
		if (r == WG_EINVAL || r == WG_ELIMIT)
			r = flush_one_by_one(s, now);
		if (r == 0) {
			s->flush_failures = 0;
			/* The rest in the next loop turn, so other events run between batches. */
			s->flush_at = TAILQ_EMPTY(&s->dirty) ? UINT64_MAX : now;
		} else {
			uint64_t d = WB_RETRY_MIN_MS;
			for (unsigned i = 0; i < s->flush_failures && d < WB_RETRY_MAX_MS; i++)
				d *= 2;
			s->flush_failures++;
			s->flush_at = now + (d < WB_RETRY_MAX_MS ? d : WB_RETRY_MAX_MS);
		}
	}
	if (TAILQ_EMPTY(&s->dirty) && now >= s->ping_at) {
		/*
		 * Nothing to write: write something small, the heartbeat setting, so
		 * that a database that cannot take writes (disk full, read-only,
		 * locked, the file gone) is noticed while all is quiet too.
		 */
		char t[32];
		uint64_t t0 = wg_now_ms();
		wg_iso8601(t, wg_wall_ms());
		if (store_set_setting(s->st, "heartbeat", t) == 0)
			db_ok(s, now, (uint32_t)((wg_now_ms() - t0) * 1000));
		else
			db_failed(s, now, "database check");
		s->ping_at = now + s->cfg.db_check_interval_ms;
	}
	if (TAILQ_EMPTY(&s->dirty) && now >= s->prune_at && s->db_ok)
		prune(s, now);
	uint64_t next = s->msg_at;
	if (TAILQ_EMPTY(&s->dirty) && s->prune_at < next)
		next = s->prune_at;
	if (!TAILQ_EMPTY(&s->dirty) && s->flush_at < next)
		next = s->flush_at;
	/* The check is for quiet times only: while writes are pending, they tell. */
	if (TAILQ_EMPTY(&s->dirty) && s->ping_at < next)
		next = s->ping_at;
	return next;
}

int
sup__wb_flush_all(struct sup *s)
{
	msgs_to_dirty(s);
	uint64_t now = wg_now_ms();
	while (!TAILQ_EMPTY(&s->dirty)) {
		int r = flush_batch(s, now, NULL);
		if (r)
			return r;
	}
	s->flush_failures = 0;
	s->flush_at = UINT64_MAX;
	return 0;
}

int
sup__wb_flush_one(struct sess *x)
{
	if (!x->in_dirty)
		return 0;
	return flush_batch(x->sup, wg_now_ms(), x);
}
