/*
 * The store's writer: a thread with a connection of its own, so that the
 * event loop never waits for the disk (a transaction's fsync, a lock held by
 * the web app, a slow volume). The loop hands it one job at a time; the job
 * runs on the thread against the writer's store; its done callback then runs
 * on the loop (a pipe wakes it). The job is the caller's: it must hold
 * copies of everything it needs, since the loop goes on changing its own
 * memory meanwhile (docs/store.md, "The writer thread").
 */
#ifndef WG_STORE_WRITER_H
#define WG_STORE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long the writer's statements wait for another connection's write lock. */
#define STORE_WRITER_WAIT_MS 1000

struct store;
struct event_base;
struct store_writer;

/* Runs on the writer's thread, with the writer's store. */
typedef void (*store_job_run_fn)(struct store *st, void *job);
/* Runs on the loop once run returned. */
typedef void (*store_job_done_fn)(void *job, void *arg);

/*
 * Opens a second store on url and starts the thread. WG_ENOTSUP for a store
 * that cannot be opened twice (sqlite::memory:, a fake); other failures as
 * store_open. done(job, arg) is called on base's loop for every job.
 */
int store_writer_new(struct event_base *base, const char *url, store_job_done_fn done, void *arg,
		     struct store_writer **out, char *err, size_t errlen);
/* True while a job is with the thread (submitted, done not yet called). */
bool store_writer_busy(struct store_writer *w);
/* Hands a job over; WG_ESTATE when one is already with the thread. */
int store_writer_submit(struct store_writer *w, store_job_run_fn run, void *job);
/*
 * Blocks until the thread has finished the job it has and returns it (NULL
 * when it had none): its done is not called, the caller finishes it (shutdown,
 * and the rare request that needs everything written first).
 */
void *store_writer_wait(struct store_writer *w);
/* Stops the thread and closes its store; a job still in hand is waited for and its done called. NULL-safe. */
void store_writer_free(struct store_writer *w);

#endif
