/*
 * The store's writer thread (writer.h). One job at a time, in one of four
 * states, changed under the mutex:
 *   IDLE      nothing handed over
 *   QUEUED    the loop handed a job over; the thread has not taken it yet
 *   RUNNING   the thread runs it
 *   FINISHED  it ran; the loop has not called its done yet
 * The thread wakes the loop by writing a byte to a pipe; the loop's read
 * event takes the finished job back and calls done. Nothing else is shared.
 */
#define _GNU_SOURCE /* pipe2 */
#include "store/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

enum wstate { W_IDLE, W_QUEUED, W_RUNNING, W_FINISHED };

struct store_writer {
	struct store *st; /* the thread's own connection */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum wstate state;
	bool stop;
	store_job_run_fn run;
	void *job;
	store_job_done_fn done;
	void *done_arg;
	int pipe[2];
	struct event *ev;
};

static void *
thread_main(void *arg)
{
	struct store_writer *w = arg;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (w->state != W_QUEUED && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->state != W_QUEUED) {
			pthread_mutex_unlock(&w->mu);
			break; /* stopping, nothing handed over */
		}
		w->state = W_RUNNING;
		store_job_run_fn run = w->run;
		void *job = w->job;
		pthread_mutex_unlock(&w->mu);
		run(w->st, job);
		pthread_mutex_lock(&w->mu);
		w->state = W_FINISHED;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		/*
		 * The wake-up goes after the lock is let go: the loop it wakes takes
		 * the lock at once, and would otherwise sleep on it (profiled: most
		 * of the loop's sleeps outside epoll_wait). A full pipe already holds
		 * a wake-up: the loop will look.
		 */
		ssize_t k = write(w->pipe[1], "j", 1);
		(void)k;
	}
	return NULL;
}

/* On the loop: hands a finished job back to its owner. */
static void
take_finished(struct store_writer *w)
{
	pthread_mutex_lock(&w->mu);
	if (w->state != W_FINISHED) {
		pthread_mutex_unlock(&w->mu);
		return;
	}
	void *job = w->job;
	w->job = NULL;
	w->state = W_IDLE;
	pthread_mutex_unlock(&w->mu);
	w->done(job, w->done_arg);
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct store_writer *w = arg;
	char buf[64];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	take_finished(w);
}

/* Everything but the thread (not started, or joined). */
static void
release(struct store_writer *w)
{
	if (w->ev)
		event_free(w->ev);
	close(w->pipe[0]);
	close(w->pipe[1]);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	store_close(w->st);
	free(w);
}

int
store_writer_new(struct event_base *base, const char *url, store_job_done_fn done, void *arg,
		 struct store_writer **out, char *err, size_t errlen)
{
	*out = NULL;
	/* A second connection to a memory database would be another, empty, database. */
	if (strstr(url, ":memory:") != NULL) {
		snprintf(err, errlen, "an in-memory database has one connection only");
		return WG_ENOTSUP;
	}
	struct store_writer *w = wg_calloc(1, sizeof(*w));
	w->done = done;
	w->done_arg = arg;
	w->pipe[0] = w->pipe[1] = -1;
	int r = store_open(url, &w->st, err, errlen);
	if (r != 0) {
		free(w);
		return r;
	}
	/*
	 * On its own thread a write may wait for a lock (the web app's, or the
	 * loop's own connection's) without stalling anyone; past this it fails
	 * and /health says so while the write-behind retries.
	 */
	store_set_wait(w->st, STORE_WRITER_WAIT_MS);
	if (pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		store_close(w->st);
		free(w);
		return WG_EIO;
	}
	w->ev = event_new(base, w->pipe[0], EV_READ | EV_PERSIST, on_wake, w);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (w->ev == NULL || event_add(w->ev, NULL) != 0 ||
	    pthread_create(&w->thread, NULL, thread_main, w) != 0) {
		snprintf(err, errlen, "cannot start the writer thread");
		release(w);
		return WG_EIO;
	}
	*out = w;
	return 0;
}

bool
store_writer_busy(struct store_writer *w)
{
	pthread_mutex_lock(&w->mu);
	bool busy = w->state != W_IDLE;
	pthread_mutex_unlock(&w->mu);
	return busy;
}

int
store_writer_submit(struct store_writer *w, store_job_run_fn run, void *job)
{
	pthread_mutex_lock(&w->mu);
	if (w->state != W_IDLE) {
		pthread_mutex_unlock(&w->mu);
		return WG_ESTATE;
	}
	w->run = run;
	w->job = job;
	w->state = W_QUEUED;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void *
store_writer_wait(struct store_writer *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->state == W_QUEUED || w->state == W_RUNNING)
		pthread_cond_wait(&w->cv, &w->mu);
	void *job = NULL;
	if (w->state == W_FINISHED) {
		job = w->job;
		w->job = NULL;
		w->state = W_IDLE;
	}
	pthread_mutex_unlock(&w->mu);
	return job;
}

void
store_writer_free(struct store_writer *w)
{
	if (w == NULL)
		return;
	void *job = store_writer_wait(w);
	if (job != NULL)
		w->done(job, w->done_arg);
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	release(w);
}
