/*
 * The loop's lateness and its turns (looplag.h).
 *
 * Turns are measured where they begin and end: in epoll_wait, which this file
 * defines itself. libevent calls it through the dynamic linker, which binds
 * the executable's definition first; it makes the system call as libc's does.
 * On the thread that made the looplag (the loop's), a return from epoll_wait
 * starts a turn, noting the monotonic clock, the thread's CPU clock and its
 * voluntary context switches and its time on a run queue (schedstat); the
 * next call ends it. Turns of at least TURN_KEEP_US are kept. Their own share:
 * when the thread made no voluntary switch during the turn (it slept nowhere:
 * no blocking call, lock or page read from disk), the CPU time it used, which
 * leaves out its waits for a CPU and the time a hypervisor stopped the virtual
 * CPU (steal-time accounting); when it did, the turn less its waits on a run
 * queue, since sleeping in a callback is the loop's own doing (and stolen time
 * cannot be told from sleep then). About 2 µs of system calls per turn.
 *
 * Both measures are kept per wall-clock second, for the last LAG_SECONDS: a
 * window's answer is a pass over at most that many buckets, and no load can
 * push a stall out of the record early.
 */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "net/looplag.h"

#define LAG_SECONDS 3600
#define LAG_KEEP_US 1000
#define TURN_KEEP_US 1000
#define OVER_US 10000

struct lag_bucket {
	int64_t sec; /* Unix second this bucket holds; another second's values are stale */
	uint32_t max_lag_us, lag_over;
	uint32_t max_turn_us, turn_over;
	uint32_t max_own_us, own_over;
};

struct looplag {
	struct event *timer;
	uint64_t interval_ms;
	uint64_t due_us; /* monotonic µs the timer is due at */
	int64_t started_wall_ms;
	struct lag_bucket b[LAG_SECONDS];
};

/* The looplag whose thread this is, and the turn under way on it (start 0: none yet). */
static __thread struct looplag *turn_owner;
static __thread int turn_schedstat = -1;
static __thread uint64_t turn_start_us, turn_cpu_us, turn_switches, turn_runq_us;

static uint64_t
clock_us(clockid_t id)
{
	struct timespec ts;
	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t
mono_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

/* The calling thread's CPU time, up to date (the kernel settles the running slice first). */
static uint64_t
thread_cpu_us(void)
{
	return clock_us(CLOCK_THREAD_CPUTIME_ID);
}

static uint64_t
voluntary_switches(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) != 0)
		return 0;
	return (uint64_t)ru.ru_nvcsw;
}

/*
 * How long the calling thread has waited on a run queue (runnable, no CPU),
 * in µs: the second field of /proc/thread-self/schedstat (ns), settled each
 * time the thread gets a CPU, so exact while it runs. 0 without the file.
 */
static uint64_t
runq_us(void)
{
	char buf[96];
	if (turn_schedstat < 0)
		return 0;
	ssize_t n = pread(turn_schedstat, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strchr(buf, ' ');
	return p ? strtoull(p + 1, NULL, 10) / 1000u : 0;
}

static struct lag_bucket *
bucket(struct looplag *l)
{
	int64_t sec = (int64_t)(wg_wall_ms() / 1000u);
	struct lag_bucket *b = &l->b[sec % LAG_SECONDS];
	if (b->sec != sec) {
		memset(b, 0, sizeof(*b));
		b->sec = sec;
	}
	return b;
}

static uint32_t
clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void
turn_end(struct looplag *l, uint64_t now)
{
	uint64_t len = now - turn_start_us;
	if (len < TURN_KEEP_US)
		return;
	uint64_t own;
	if (voluntary_switches() == turn_switches) {
		own = thread_cpu_us() - turn_cpu_us;
	} else {
		uint64_t runq = runq_us();
		uint64_t waited = runq > turn_runq_us ? runq - turn_runq_us : 0;
		own = len > waited ? len - waited : 0;
	}
	if (own > len)
		own = len;
	struct lag_bucket *b = bucket(l);
	if (len > b->max_turn_us)
		b->max_turn_us = clamp32(len);
	if (own > b->max_own_us)
		b->max_own_us = clamp32(own);
	b->turn_over += len > OVER_US;
	b->own_over += own > OVER_US;
}

int
epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	struct looplag *l = turn_owner;
	if (l != NULL && turn_start_us != 0)
		turn_end(l, mono_us());
	long r = syscall(SYS_epoll_pwait, epfd, events, maxevents, timeout, NULL, (size_t)8);
	int saved = errno;
	if (l != NULL) {
		turn_start_us = mono_us();
		turn_cpu_us = thread_cpu_us();
		turn_switches = voluntary_switches();
		turn_runq_us = runq_us();
	}
	errno = saved;
	return (int)r;
}

static void
arm(struct looplag *l, uint64_t now)
{
	l->due_us = now + l->interval_ms * 1000u;
	struct timeval tv = {(time_t)(l->interval_ms / 1000), (suseconds_t)((l->interval_ms % 1000) * 1000)};
	evtimer_add(l->timer, &tv);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct looplag *l = arg;
	(void)fd;
	(void)what;
	uint64_t now = mono_us();
	uint64_t lag = now > l->due_us ? now - l->due_us : 0;
	if (lag >= LAG_KEEP_US) {
		struct lag_bucket *b = bucket(l);
		if (lag > b->max_lag_us)
			b->max_lag_us = clamp32(lag);
		b->lag_over += lag > OVER_US;
	}
	arm(l, now);
}

struct looplag *
looplag_new(struct event_base *base, uint64_t interval_ms)
{
	if (interval_ms == 0)
		return NULL;
	struct looplag *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->interval_ms = interval_ms;
	l->started_wall_ms = (int64_t)wg_wall_ms();
	l->timer = evtimer_new(base, on_tick, l);
	if (l->timer == NULL) {
		free(l);
		return NULL;
	}
	/* Turns are measured from the next return from epoll_wait on. */
	turn_owner = l;
	turn_start_us = 0;
	if (turn_schedstat < 0)
		turn_schedstat = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	arm(l, mono_us());
	return l;
}

void
looplag_free(struct looplag *l)
{
	if (l == NULL)
		return;
	if (turn_owner == l)
		turn_owner = NULL;
	event_free(l->timer);
	free(l);
}

void
looplag_since(const struct looplag *l, int64_t since_wall_ms, struct looplag_stat *out)
{
	memset(out, 0, sizeof(*out));
	if (l == NULL)
		return;
	out->interval_ms = l->interval_ms;
	int64_t now = (int64_t)wg_wall_ms();
	int64_t from = since_wall_ms > l->started_wall_ms ? since_wall_ms : l->started_wall_ms;
	/* Older seconds than the buckets hold are unknown. */
	int64_t first_sec = now / 1000 - (LAG_SECONDS - 1);
	if (from < first_sec * 1000)
		from = first_sec * 1000;
	out->oldest_ms = from;
	out->samples = now > from ? (uint64_t)(now - from) / l->interval_ms : 0;
	for (size_t i = 0; i < LAG_SECONDS; i++) {
		const struct lag_bucket *b = &l->b[i];
		/* A second counts whole once any of it is in the window. */
		if (b->sec < from / 1000 || b->sec > now / 1000)
			continue;
		if (b->max_lag_us > out->max_lag_us)
			out->max_lag_us = b->max_lag_us;
		if (b->max_turn_us > out->max_turn_us)
			out->max_turn_us = b->max_turn_us;
		if (b->max_own_us > out->max_own_us)
			out->max_own_us = b->max_own_us;
		out->over_10ms += b->lag_over;
		out->turns_over_10ms += b->turn_over;
		out->own_over_10ms += b->own_over;
	}
}
