/*
 * The reader: a thread with a store connection of its own (a store_writer),
 * for what the loop would otherwise wait for the database to read or write.
 *
 * The credentials a connect needs: a connect that must read the row (memory
 * has no newer credentials) enters `reading` and joins a queue; one job reads
 * up to READ_BATCH of them, and the connects go on when it is back. So the one
 * read by key on an event's path no longer waits on the loop for a disk, a
 * lock or a network database (docs/supervisor.md). Without a reader (tests,
 * sqlite::memory:) connect_as reads inline, as before.
 *
 * A session that leaves `reading` meanwhile (deleted, logged out, its lease
 * lost, the server stopping) is dropped from the queue; a job already running
 * for it is ignored when it comes back (each read carries a sequence number
 * the session must still have).
 *
 * A batch that comes back connects at most start_burst of its sessions per
 * loop turn, like the starts themselves: each connect parses and checks the
 * credentials and opens a socket (up to a millisecond), and sixteen of them
 * in one turn held the loop for 16 ms. The rest go on in the next turns (a
 * zero timer, so the I/O that is ready runs in between), and the reader takes
 * no other read batch meanwhile.
 *
 * Other calls (sup_call: the API's reads and writes) wait in a queue of their
 * own; the thread takes one job at a time, turn about from each queue, so
 * neither a burst of connects nor of API requests starves the other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/writer.h"
#include "sup/sup_int.h"

/* Reads per job: a burst of connects costs one wakeup of the thread, not one each. */
#define READ_BATCH 16

struct read_entry {
	char id[STORE_ID_LEN + 1];
	uint64_t seq;
	int rc;
	char *auth; /* the row's credentials (NULL: none), wiped when done */
	char err[200];
};

struct read_job {
	struct sup_call call; /* first: the reader's jobs are calls */
	struct sup *s;
	size_t n;
	size_t next; /* the first entry not yet handled */
	struct read_entry e[READ_BATCH];
};

/* On the reader's thread: touches the job and st only. */
static void
run_reads(struct store *st, struct sup_call *c)
{
	struct read_job *j = (struct read_job *)c;
	for (size_t i = 0; i < j->n; i++) {
		struct read_entry *e = &j->e[i];
		struct store_session row;
		e->rc = store_get(st, e->id, &row);
		if (e->rc != 0) {
			snprintf(e->err, sizeof(e->err), "%s",
				 e->rc == WG_ENOTFOUND ? "not found" : store_errmsg(st));
			continue;
		}
		e->auth = row.auth_state; /* taken: store_session_free below must not wipe it */
		row.auth_state = NULL;
		store_session_free(&row);
	}
}

static void
job_free(struct read_job *j)
{
	for (size_t i = 0; i < j->n; i++)
		if (j->e[i].auth) {
			wg_wipe(j->e[i].auth, strlen(j->e[i].auth));
			free(j->e[i].auth);
		}
	free(j);
}

/* Connects up to start_burst of the batch's sessions; true once the batch is done. */
static bool
reads_step(struct read_job *j)
{
	struct sup *s = j->s;
	unsigned budget = s->cfg.start_burst;
	while (j->next < j->n && budget > 0 && !j->call.cancelled) {
		struct read_entry *e = &j->e[j->next++];
		struct sess *x = sup__find(s, e->id);
		if (x == NULL || x->state != SS_READING || x->read_seq != e->seq || x->in_reads)
			continue; /* it moved on meanwhile: this read is nobody's */
		if (e->rc != 0)
			log_error(x->id, "cannot read the session: %s", e->err);
		sup__connect_with(x, e->rc, e->auth);
		budget--;
	}
	return j->next >= j->n || j->call.cancelled;
}

/*
 * A turn of the batch being connected (s->read_rest), then one schedule for
 * all its connects. True once the batch is done and freed; otherwise its next
 * turn is due.
 */
static bool
reads_continue(struct sup *s)
{
	struct read_job *j = s->read_rest;
	bool done = reads_step(j);
	if (done) {
		s->read_rest = NULL;
		job_free(j);
	} else {
		static const struct timeval now = {0, 0};
		evtimer_add(s->read_resume, &now);
	}
	sup__kick(s);
	return done;
}

static void
reads_done(struct sup_call *c)
{
	struct read_job *j = (struct read_job *)c;
	/*
	 * The batch is the one being connected before its first connect: the
	 * schedule after its connects runs the due starts, whose reads must wait
	 * for it (next_job). Set after, a batch read meanwhile could come back
	 * first and take its place, and the rest of this one would never connect.
	 */
	j->s->read_rest = j;
	(void)reads_continue(j->s);
}

static void
on_read_resume(evutil_socket_t fd, short what, void *arg)
{
	struct sup *s = arg;
	(void)fd;
	(void)what;
	if (reads_continue(s))
		sup__read_pump(s);
}

/* The next job for the reader, or NULL: calls and credentials reads take turns. */
static struct sup_call *
next_job(struct sup *s)
{
	struct sup_call *c = TAILQ_FIRST(&s->calls);
	if (c != NULL && (s->calls_turn || TAILQ_EMPTY(&s->reads))) {
		TAILQ_REMOVE(&s->calls, c, link);
		s->calls_turn = false;
		return c;
	}
	/* A batch still connecting its sessions comes first (reads_done). */
	if (TAILQ_EMPTY(&s->reads) || s->read_rest != NULL)
		return NULL;
	struct read_job *j = wg_calloc(1, sizeof(*j));
	j->call.run = run_reads;
	j->call.done = reads_done;
	j->s = s;
	struct sess *x;
	while (j->n < READ_BATCH && (x = TAILQ_FIRST(&s->reads)) != NULL) {
		TAILQ_REMOVE(&s->reads, x, read_link);
		x->in_reads = 0;
		struct read_entry *e = &j->e[j->n++];
		snprintf(e->id, sizeof(e->id), "%s", x->id);
		e->seq = x->read_seq;
	}
	s->calls_turn = true;
	return &j->call;
}

static void
run_job(struct store *st, void *job)
{
	struct sup_call *c = job;
	c->run(st, c);
}

static void
reader_done(void *job, void *arg)
{
	struct sup *s = arg;
	struct sup_call *c = job;
	s->call_inflight = NULL;
	c->done(c);
	sup__read_pump(s);
	sup__kick(s);
}

void
sup__read_pump(struct sup *s)
{
	struct sup_call *c;
	if (s->reader == NULL || s->call_inflight != NULL || (c = next_job(s)) == NULL)
		return;
	if (store_writer_submit(s->reader, run_job, c) == 0) {
		s->call_inflight = c;
		return;
	}
	/* The thread cannot take it (it never refuses while idle): run it here rather than lose it. */
	c->run(s->st, c);
	c->done(c);
}

void
sup_call(struct sup *s, struct sup_call *c)
{
	c->cancelled = false;
	if (s->reader == NULL) {
		c->run(s->st, c);
		c->done(c);
		return;
	}
	TAILQ_INSERT_TAIL(&s->calls, c, link);
	sup__read_pump(s);
}

bool
sup__read_start(struct sess *x)
{
	struct sup *s = x->sup;
	if (s->reader == NULL)
		return false;
	x->read_seq = ++s->read_seq;
	TAILQ_INSERT_TAIL(&s->reads, x, read_link);
	x->in_reads = 1;
	sup__enter(x, SS_READING, x->trigger, NULL, 0);
	sup__read_pump(s);
	return true;
}

void
sup__read_forget(struct sess *x)
{
	if (!x->in_reads)
		return;
	TAILQ_REMOVE(&x->sup->reads, x, read_link);
	x->in_reads = 0;
}

int
sup__read_attach(struct sup *s, struct event_base *base, const char *url, char *err,
		 size_t errlen)
{
	if (s->reader != NULL)
		return 0;
	int r = store_writer_new(base, url, reader_done, s, &s->reader, err, errlen);
	if (r != 0)
		return r;
	/* Made with the reader, freed with it (sup__read_detach). */
	if ((s->read_resume = evtimer_new(base, on_read_resume, s)) == NULL) {
		store_writer_free(s->reader);
		s->reader = NULL;
		snprintf(err, errlen, "out of memory");
		return WG_EIO;
	}
	return 0;
}

void
sup__read_detach(struct sup *s)
{
	struct store_writer *w = s->reader;
	if (w == NULL)
		return;
	/* A job in hand is waited for, then done (a read batch connects nothing: the supervisor goes). */
	struct sup_call *c = store_writer_wait(w);
	s->call_inflight = NULL;
	s->reader = NULL;
	store_writer_free(w);
	if (s->read_rest != NULL) {
		/* A batch part connected: the rest connects nothing, the supervisor goes. */
		job_free(s->read_rest);
		s->read_rest = NULL;
	}
	if (s->read_resume != NULL) {
		event_free(s->read_resume);
		s->read_resume = NULL;
	}
	if (c != NULL) {
		c->cancelled = c->run == run_reads;
		c->done(c);
	}
	/* Calls never run are done as cancelled: their owners answer or free them. */
	while ((c = TAILQ_FIRST(&s->calls)) != NULL) {
		TAILQ_REMOVE(&s->calls, c, link);
		c->cancelled = true;
		c->done(c);
	}
}
