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
 *
 * Each write is a job (copies of what it writes) that runs on the store's
 * writer thread when serve attached one (sup_use_writer), one at a time, so
 * the loop never waits for the disk; else inline on the loop's connection.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/writer.h"
#include "sup/sup_int.h"

/*
 * Sessions per transaction: bounds the time one write holds the database's
 * lock (and the loop, when it writes inline). The
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


static void
pend_free(struct pend *p)
{
	free(p->h.reason);
	free(p->a.detail);
	free(p);
}

/* Memory's credentials are no newer than the row's any more (written, or nothing to write): wiped. */
static void
auth_settled(struct sess *x)
{
	x->auth_newer = 0;
	if (x->auth_pending) {
		wg_wipe(x->auth_pending, strlen(x->auth_pending));
		free(x->auth_pending);
		x->auth_pending = NULL;
	}
	free(x->phone_pending);
	x->phone_pending = NULL;
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
	auth_settled(x);
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
	if (sup__cluster(s) && !x->leased) {
		/* Another node's session (or no one's): nothing of this node's goes into its row. */
		sup__wb_forget(x);
		return;
	}
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

void
sup__wb_auth(struct sess *x, const char *auth, const char *phone)
{
	if (x->auth_pending) {
		wg_wipe(x->auth_pending, strlen(x->auth_pending));
		free(x->auth_pending);
	}
	x->auth_pending = auth ? wg_strdup(auth) : NULL;
	x->auth_newer = 1;
	x->auth_gen++;
	unsigned f = STORE_F_AUTH;
	if (phone) {
		free(x->phone_pending);
		x->phone_pending = wg_strdup(phone);
		f |= STORE_F_PHONE;
	}
	sup__wb_mark(x, f);
}

static void
pend_add(struct sess *x, struct pend *p)
{
	if (sup__cluster(x->sup) && !x->leased) {
		pend_free(p);
		return;
	}
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
db_failed(struct sup *s, uint64_t now, const char *what, const char *why)
{
	int first = s->db_ok;
	s->db_ok = 0;
	snprintf(s->db_error, sizeof(s->db_error), "%s", why);
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
 * A write, as a job: copies of everything it writes, so that it can run on
 * the writer's thread while the loop goes on changing memory, or inline on
 * the loop's own connection (no writer, shutdown, tests). The sessions'
 * status changes and attempts move into it (they are written once); their
 * columns are copied; credentials stay in memory until the write of their
 * generation is confirmed. On failure everything goes back.
 */
enum job_kind { J_BATCH, J_CHECK, J_PRUNE };

struct wb_entry {
	char id[STORE_ID_LEN + 1];
	int64_t token; /* the lease's, with several nodes: the write is fenced by it */
	bool fenced;   /* out: another node holds the lease now; nothing was written */
	unsigned fields;
	struct store_session vals; /* last_error, auth_state, phone_number are the job's copies */
	unsigned auth_gen;
	struct pend *pend; /* moved out of the session, oldest first */
	unsigned npend;
};

struct wb_job {
	enum job_kind kind;
	struct sup *s;
	int single;               /* one session, after a batch was refused */
	struct wb_entry *e;
	size_t n;
	int64_t wall;             /* updated_at written; the heartbeat's time */
	int64_t prune_before;
	/* Results, filled by run_job. */
	int rc;
	size_t gone, deleted;
	uint64_t took_ms; /* on the process's clock (virtual in tests) */
	char err[256];
	uint64_t version;
	int version_ok;
};

/* Runs on the writer's thread (or inline): touches the job and st only. */
static void
run_job(struct store *st, void *arg)
{
	struct wb_job *j = arg;
	uint64_t t0 = wg_now_ms();
	if (j->kind == J_BATCH) {
		size_t nh = 0, na = 0;
		for (size_t i = 0; i < j->n; i++)
			for (struct pend *p = j->e[i].pend; p; p = p->next)
				p->is_attempt ? na++ : nh++;
		struct store_write *w = wg_calloc(j->n ? j->n : 1, sizeof(*w));
		struct store_status_change *hist = wg_calloc(nh ? nh : 1, sizeof(*hist));
		struct store_attempt *att = wg_calloc(na ? na : 1, sizeof(*att));
		size_t ih = 0, ia = 0;
		for (size_t i = 0; i < j->n; i++) {
			struct wb_entry *e = &j->e[i];
			w[i] = (struct store_write){.id = e->id, .fields = e->fields, .vals = &e->vals,
						    .token = e->token, .owner = j->s->cfg.node_id};
			w[i].history = hist + ih;
			w[i].attempts = att + ia;
			for (struct pend *p = e->pend; p; p = p->next) {
				if (p->is_attempt)
					att[ia++] = p->a;
				else
					hist[ih++] = p->h;
			}
			w[i].nhistory = (size_t)(hist + ih - w[i].history);
			w[i].nattempts = (size_t)(att + ia - w[i].attempts);
		}
		j->rc = store_write_batch(st, w, j->n, j->wall, &j->gone);
		for (size_t i = 0; i < j->n; i++)
			j->e[i].fenced = j->rc == 0 && w[i].fenced;
		free(w);
		free(hist);
		free(att);
	} else if (j->kind == J_CHECK) {
		/*
		 * Nothing to write: something small, so that a database that cannot
		 * take writes (disk full, read-only, locked, the file gone) is noticed
		 * while all is quiet too.
		 */
		char t[32];
		wg_iso8601(t, (uint64_t)j->wall);
		j->rc = store_set_setting(st, "heartbeat", t);
	} else {
		j->rc = store_prune(st, j->prune_before, WB_PRUNE_MAX, &j->deleted);
	}
	j->took_ms = wg_now_ms() - t0;
	if (j->rc != 0)
		snprintf(j->err, sizeof(j->err), "%s", store_errmsg(st));
	/* Whether anyone else wrote: what this connection sees (our own commits never show). */
	j->version_ok = store_data_version(st, &j->version) == 0;
}

static void
entry_free(struct wb_entry *e)
{
	free(e->vals.last_error);
	if (e->vals.auth_state) {
		wg_wipe(e->vals.auth_state, strlen(e->vals.auth_state));
		free(e->vals.auth_state);
	}
	free(e->vals.phone_number);
	while (e->pend) {
		struct pend *p = e->pend;
		e->pend = p->next;
		pend_free(p);
	}
}

static void
job_free(struct wb_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		entry_free(&j->e[i]);
	free(j->e);
	free(j);
}

/* Up to the batch's size of dirty sessions (or only `only`) into a job; they are not dirty meanwhile. */
static struct wb_job *
build_batch(struct sup *s, struct sess *only)
{
	size_t most = s->wb_singles ? 1 : (s->wb_batch ? s->wb_batch : WB_BATCH);
	struct wb_job *j = wg_calloc(1, sizeof(*j));
	j->kind = J_BATCH;
	j->s = s;
	j->single = s->wb_singles > 0 || only != NULL;
	j->e = wg_calloc(most, sizeof(*j->e));
	j->wall = (int64_t)wg_wall_ms();
	while (j->n < most) {
		struct sess *x = only ? only : TAILQ_FIRST(&s->dirty);
		if (x == NULL || !x->in_dirty)
			break;
		struct wb_entry *e = &j->e[j->n++];
		snprintf(e->id, sizeof(e->id), "%s", x->id);
		e->token = sup__cluster(s) ? x->lease_token : 0;
		e->fields = x->dirty;
		struct store_session *v = &e->vals;
		snprintf(v->connection_status, sizeof(v->connection_status), "%s", x->status);
		v->last_error = x->last_error ? wg_strdup(x->last_error) : NULL;
		v->last_connected_at = x->last_connected_at;
		v->last_message_at = x->last_message_at;
		v->auth_state = (e->fields & STORE_F_AUTH) && x->auth_pending ? wg_strdup(x->auth_pending) : NULL;
		v->phone_number = (e->fields & STORE_F_PHONE) && x->phone_pending ? wg_strdup(x->phone_pending) : NULL;
		e->auth_gen = x->auth_gen;
		x->writing = 1;
		e->pend = x->pend;
		e->npend = x->npend;
		x->pend = NULL;
		x->pend_tail = &x->pend;
		x->npend = 0;
		x->dirty = 0;
		undirty(x);
		if (only)
			break;
	}
	return j;
}

/* The write is in the row: what memory still holds only for it can go. */
static void
batch_done(struct sup *s, struct wb_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		struct wb_entry *e = &j->e[i];
		struct sess *x = sup__find(s, e->id);
		if (x == NULL || x->deleted)
			continue;
		if (e->fenced) {
			/* Fenced: another node took the lease (this one was paused, or cut off). */
			if (x->leased && x->lease_token == e->token)
				sup__lease_lost(x, "its write was refused: another node holds the lease");
			continue;
		}
		/* The row's updated_at is the write's time (only rows with columns to write change). */
		if (e->fields)
			x->updated_at = j->wall;
		/* The row has the newest credentials now (connects read them from there). */
		if ((e->fields & STORE_F_AUTH) && x->auth_gen == e->auth_gen && !(x->dirty & STORE_F_AUTH))
			auth_settled(x);
	}
}

/* The write failed: everything goes back to its session, older than what came since. */
static void
batch_undo(struct sup *s, struct wb_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		struct wb_entry *e = &j->e[i];
		struct sess *x = sup__find(s, e->id);
		if (x == NULL || x->deleted)
			continue; /* the row is going: nothing to write to it (entry_free drops the rest) */
		x->dirty |= e->fields;
		if (e->pend) {
			struct pend *last = e->pend;
			while (last->next)
				last = last->next;
			last->next = x->pend;
			if (x->pend == NULL)
				x->pend_tail = &last->next;
			x->pend = e->pend;
			x->npend += e->npend;
			e->pend = NULL;
		}
		enqueue(x);
	}
}

/* Whoever waits for the writer learns of a reopened file: the loop's connection follows it. */
static void
note_writer_version(struct sup *s, const struct wb_job *j)
{
	if (s->writer == NULL || !j->version_ok)
		return;
	uint32_t gen = (uint32_t)(j->version >> 32);
	if (s->writer_version_ok && gen != s->writer_generation) {
		uint32_t us;
		if (store_ping(s->st, &us) != 0)
			log_warn("supervisor", "the database file changed; reading from it: %s",
				 store_errmsg(s->st));
	}
	s->writer_generation = gen;
	s->writer_version = j->version;
	s->writer_version_ok = 1;
}

/* The outcome of a job, on the loop. Returns its rc. */
static int
job_complete(struct sup *s, struct wb_job *j)
{
	uint64_t now = wg_now_ms();
	if (s->inflight == j)
		s->inflight = NULL;
	for (size_t i = 0; i < j->n; i++) {
		struct sess *x = sup__find(s, j->e[i].id);
		if (x != NULL)
			x->writing = 0;
	}
	int rc = j->rc;
	note_writer_version(s, j);
	if (j->kind == J_CHECK) {
		if (rc == 0)
			db_ok(s, now, (uint32_t)(j->took_ms * 1000));
		else
			db_failed(s, now, "database check", j->err);
	} else if (j->kind == J_PRUNE) {
		if (rc != 0 && rc != WG_ENOTSUP)
			log_warn("supervisor", "retention: cannot delete old recovery attempts and "
					       "history: %s", j->err);
		else if (j->deleted > 0)
			log_debug("supervisor", "retention: deleted %zu old recovery attempts and "
						"status changes", j->deleted);
		if (rc == 0 && j->deleted >= WB_PRUNE_MAX)
			s->prune_at = now; /* more: the next batch in the next loop turn */
	} else if (rc == 0) {
		batch_done(s, j);
		db_ok(s, now, (uint32_t)(j->took_ms * 1000));
		s->flush_failures = 0;
		if (s->wb_singles)
			s->wb_singles--;
		else if (j->took_ms > WB_TURN_MS && s->wb_batch > WB_BATCH_MIN)
			s->wb_batch /= 2;
		else if (j->took_ms * 2 < WB_TURN_MS && s->wb_batch < WB_BATCH &&
			 j->n == s->wb_batch)
			s->wb_batch *= 2;
		/* The rest in the next loop turn, so other events run between batches. */
		s->flush_at = TAILQ_EMPTY(&s->dirty) ? UINT64_MAX : now;
	} else if ((rc == WG_EINVAL || rc == WG_ELIMIT) && j->single) {
		/* The database refuses this session's changes alone: dropped, loudly. */
		for (size_t i = 0; i < j->n; i++) {
			struct sess *x = sup__find(s, j->e[i].id);
			log_error(j->e[i].id, "the database refuses this session's changes; dropping them: %s",
				  j->err);
			if (x && !x->deleted && (j->e[i].fields & STORE_F_AUTH) && x->auth_gen == j->e[i].auth_gen)
				x->auth_newer = 0;
		}
		if (s->wb_singles)
			s->wb_singles--;
		s->flush_at = TAILQ_EMPTY(&s->dirty) ? UINT64_MAX : now;
		rc = 0;
	} else if (rc == WG_EINVAL || rc == WG_ELIMIT) {
		/*
		 * The database refused the batch's content (a constraint of the web
		 * app's, a value over a limit): one session's changes must not hold
		 * back everyone's, so each is written alone next.
		 */
		batch_undo(s, j);
		s->wb_singles = (unsigned)j->n;
		s->flush_at = now;
	} else {
		batch_undo(s, j);
		db_failed(s, now, "database write", j->err);
		uint64_t d = WB_RETRY_MIN_MS;
		for (unsigned i = 0; i < s->flush_failures && d < WB_RETRY_MAX_MS; i++)
			d *= 2;
		s->flush_failures++;
		s->flush_at = now + (d < WB_RETRY_MAX_MS ? d : WB_RETRY_MAX_MS);
	}
	job_free(j);
	return rc;
}

/* Adds p to out, keeping the newest max (oldest first). */
static void
keep_newest(const struct pend **out, size_t *n, size_t max, const struct pend *p)
{
	if (*n == max) {
		memmove(out, out + 1, (max - 1) * sizeof(*out));
		(*n)--;
	}
	out[(*n)++] = p;
}

size_t
sup__wb_pending(struct sess *x, bool attempts, const struct pend **out, size_t max)
{
	struct wb_job *j = x->sup->inflight;
	size_t n = 0;
	if (max == 0)
		return 0;
	/* The writer's first (older); read-only, as the thread reads them: nothing changes until it is back. */
	for (size_t i = 0; j != NULL && j->kind == J_BATCH && i < j->n; i++)
		if (strcmp(j->e[i].id, x->id) == 0)
			for (struct pend *p = j->e[i].pend; p; p = p->next)
				if ((bool)p->is_attempt == attempts)
					keep_newest(out, &n, max, p);
	for (struct pend *p = x->pend; p; p = p->next)
		if ((bool)p->is_attempt == attempts)
			keep_newest(out, &n, max, p);
	return n;
}

/* Runs a job: on the writer when there is one (its outcome comes later), else now. */
static int
job_start(struct sup *s, struct wb_job *j)
{
	if (s->writer != NULL && store_writer_submit(s->writer, run_job, j) == 0) {
		s->inflight = j;
		return 0;
	}
	run_job(s->st, j);
	return job_complete(s, j);
}

static void
writer_done(void *job, void *arg)
{
	struct sup *s = arg;
	job_complete(s, job);
	sup__kick(s);
}

int
sup__wb_attach_writer(struct sup *s, struct event_base *base, const char *url, char *err,
		      size_t errlen)
{
	if (s->writer != NULL)
		return 0;
	return store_writer_new(base, url, writer_done, s, &s->writer, err, errlen);
}

/* The writer has nothing in hand (waiting for it if it has): the loop may write inline. */
static void
writer_idle(struct sup *s)
{
	if (s->writer == NULL)
		return;
	struct wb_job *j = store_writer_wait(s->writer);
	if (j != NULL)
		job_complete(s, j); /* not writer_done: the caller is inside the supervisor already */
}

void
sup__wb_detach_writer(struct sup *s)
{
	/* The job in hand completes first (its outcome goes back to the sessions). */
	writer_idle(s);
	struct store_writer *w = s->writer;
	s->writer = NULL;
	store_writer_free(w);
}

bool
sup__row_foreign(const struct sess *x, const struct store_session *row)
{
	/* While our own write is unconfirmed, the row's updated_at may be it: nothing can be told. */
	return !x->writing && !x->in_dirty && row->updated_at != x->updated_at;
}

int
sup__wb_data_version(struct sup *s, uint64_t *v)
{
	if (s->writer == NULL)
		return store_data_version(s->st, v);
	if (!s->writer_version_ok)
		return WG_ENOTSUP;
	*v = s->writer_version;
	return 0;
}

uint64_t
sup__wb_run(struct sup *s, uint64_t now)
{
	if (now >= s->msg_at)
		msgs_to_dirty(s);
	int busy = s->writer != NULL && store_writer_busy(s->writer);
	if (!busy && !TAILQ_EMPTY(&s->dirty) && now >= s->flush_at) {
		job_start(s, build_batch(s, NULL));
		busy = s->writer != NULL && store_writer_busy(s->writer);
	}
	if (!busy && TAILQ_EMPTY(&s->dirty) && now >= s->ping_at) {
		struct wb_job *j = wg_calloc(1, sizeof(*j));
		j->kind = J_CHECK;
		j->s = s;
		j->wall = (int64_t)wg_wall_ms();
		s->ping_at = now + s->cfg.db_check_interval_ms;
		job_start(s, j);
		busy = s->writer != NULL && store_writer_busy(s->writer);
	}
	if (!busy && TAILQ_EMPTY(&s->dirty) && now >= s->prune_at && s->db_ok) {
		s->prune_at = now + WB_PRUNE_EVERY_MS;
		if (s->cfg.retention_ms != 0) {
			struct wb_job *j = wg_calloc(1, sizeof(*j));
			j->kind = J_PRUNE;
			j->s = s;
			j->prune_before = (int64_t)wg_wall_ms() - (int64_t)s->cfg.retention_ms;
			job_start(s, j);
			busy = s->writer != NULL && store_writer_busy(s->writer);
		}
	}
	/* While the writer has a job, its outcome wakes the supervisor (sup__kick). */
	uint64_t next = s->msg_at;
	if (busy)
		return next;
	if (!TAILQ_EMPTY(&s->dirty) && s->flush_at < next)
		next = s->flush_at;
	/* The check is for quiet times only: while writes are pending, they tell. */
	if (TAILQ_EMPTY(&s->dirty) && s->ping_at < next)
		next = s->ping_at;
	if (TAILQ_EMPTY(&s->dirty) && s->prune_at < next)
		next = s->prune_at;
	return next;
}

int
sup__wb_flush_all(struct sup *s)
{
	writer_idle(s);
	msgs_to_dirty(s);
	while (!TAILQ_EMPTY(&s->dirty)) {
		struct wb_job *j = build_batch(s, NULL);
		run_job(s->st, j);
		int r = job_complete(s, j);
		if (r)
			return r;
	}
	s->flush_failures = 0;
	s->flush_at = UINT64_MAX;
	return 0;
}

