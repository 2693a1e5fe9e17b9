/*
 * The loop-lag timer (looplag.h). Only runs that were at least 1 ms late are
 * kept, with their wall time, in a ring of LAG_RING; a window's answer is a
 * pass over that ring. The timer uses the real monotonic clock (tests may
 * freeze wg_now_ms()), and runs at the loop's default priority, like a
 * keepalive: its lateness is what a keepalive would see.
 *
 * The loop's own share of a lateness leaves out two kinds of waiting that are
 * not its work: time in epoll_wait after the due instant (the loop had nothing
 * to do and was woken late: the kernel, or the hypervisor that had stopped the
 * virtual CPU), and time on a run queue (runnable, no CPU free: schedstat).
 * For the first, this file defines epoll_wait itself: libevent calls it
 * through the dynamic linker, which binds the executable's definition first,
 * and it notes when each wait began and ended (per thread) before and after
 * making the system call as libc's does.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "net/looplag.h"

#define LAG_RING 4096
#define LAG_KEEP_US 1000

static uint64_t mono_us(void);

/* The last waits of this thread in epoll_wait, newest at waits_head - 1. */
#define WAITS 8
static __thread struct {
	uint64_t start_us, end_us;
} waits[WAITS];
static __thread unsigned waits_head;
static __thread uint64_t wait_started_us; /* nonzero while inside epoll_wait */

int
epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	uint64_t t0 = mono_us();
	wait_started_us = t0;
	long r = syscall(SYS_epoll_pwait, epfd, events, maxevents, timeout, NULL, (size_t)8);
	int saved = errno;
	uint64_t t1 = mono_us();
	wait_started_us = 0;
	waits[waits_head % WAITS].start_us = t0;
	waits[waits_head % WAITS].end_us = t1;
	waits_head++;
	errno = saved;
	return (int)r;
}

/* How much of [from, to] this thread spent in epoll_wait (of its last WAITS waits). */
static uint64_t
idle_between(uint64_t from, uint64_t to)
{
	uint64_t sum = 0;
	for (unsigned k = 0; k < WAITS && k < waits_head; k++) {
		unsigned i = (waits_head - 1 - k) % WAITS;
		uint64_t a = waits[i].start_us > from ? waits[i].start_us : from;
		uint64_t b = waits[i].end_us < to ? waits[i].end_us : to;
		if (b > a)
			sum += b - a;
		if (waits[i].end_us <= from)
			break;
	}
	return sum;
}

struct looplag {
	struct event *timer;
	uint64_t interval_ms;
	uint64_t due_us; /* monotonic µs the timer is due at */
	int schedstat_fd;
	uint64_t wait_us; /* the loop thread's run-queue wait at the last run */
	uint64_t runs;
	int64_t started_wall_ms;
	struct {
		int64_t wall_ms;
		uint32_t lag_us;
		uint32_t own_us;
	} ring[LAG_RING];
	size_t head, count;
};

static uint64_t
mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * How long the loop's thread has waited on a run queue, runnable but without a
 * CPU, in µs: the second field of /proc/thread-self/schedstat (ns). A thread
 * blocked in a system call (an fsync, a read) is not on a run queue, so that
 * time stays the loop's own. Opened on the loop's thread; -1 if the kernel
 * has no such file: then nothing is subtracted.
 */
static int
schedstat_open(void)
{
	return open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
}

static uint64_t
runq_wait_us(int fd)
{
	char buf[96];
	if (fd < 0)
		return 0;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strchr(buf, ' ');
	return p ? strtoull(p + 1, NULL, 10) / 1000u : 0;
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
	uint64_t wait = runq_wait_us(l->schedstat_fd);
	uint64_t waited = wait > l->wait_us ? wait - l->wait_us : 0;
	l->wait_us = wait;
	l->runs++;
	if (lag >= LAG_KEEP_US) {
		size_t i = (l->head + l->count) % LAG_RING;
		if (l->count == LAG_RING)
			l->head = (l->head + 1) % LAG_RING;
		else
			l->count++;
		l->ring[i].wall_ms = (int64_t)wg_wall_ms();
		l->ring[i].lag_us = lag > UINT32_MAX ? UINT32_MAX : (uint32_t)lag;
		/* Neither the loop's idle wait past the due instant nor the run queue is its own. */
		uint64_t idle = idle_between(l->due_us, now);
		uint64_t other = idle + waited;
		uint64_t own = lag > other ? lag - other : 0;
		l->ring[i].own_us = own > UINT32_MAX ? UINT32_MAX : (uint32_t)own;
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
	l->schedstat_fd = schedstat_open();
	l->wait_us = runq_wait_us(l->schedstat_fd);
	arm(l, mono_us());
	return l;
}

void
looplag_free(struct looplag *l)
{
	if (l == NULL)
		return;
	event_free(l->timer);
	if (l->schedstat_fd >= 0)
		close(l->schedstat_fd);
	free(l);
}

void
looplag_since(const struct looplag *l, int64_t since_wall_ms, struct looplag_stat *out)
{
	memset(out, 0, sizeof(*out));
	if (l == NULL)
		return;
	out->interval_ms = l->interval_ms;
	int64_t from = since_wall_ms > l->started_wall_ms ? since_wall_ms : l->started_wall_ms;
	/* Once the ring has wrapped, what is older than its oldest entry is unknown. */
	if (l->count == LAG_RING && l->ring[l->head].wall_ms > from)
		from = l->ring[l->head].wall_ms;
	out->oldest_ms = from;
	int64_t now = (int64_t)wg_wall_ms();
	out->samples = now > from ? (uint64_t)(now - from) / l->interval_ms : 0;
	for (size_t k = 0; k < l->count; k++) {
		size_t i = (l->head + k) % LAG_RING;
		if (l->ring[i].wall_ms < from)
			continue;
		if (l->ring[i].lag_us > out->max_lag_us)
			out->max_lag_us = l->ring[i].lag_us;
		if (l->ring[i].lag_us > 10000)
			out->over_10ms++;
		if (l->ring[i].own_us > out->max_own_us)
			out->max_own_us = l->ring[i].own_us;
		if (l->ring[i].own_us > 10000)
			out->own_over_10ms++;
	}
}
