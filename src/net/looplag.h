/*
 * How long the event loop keeps events waiting. Two measures:
 *
 * - Its turns: the time from one return from epoll_wait to the next call, in
 *   which the loop runs callbacks and nothing else is served. The longest
 *   turn in a window is the longest stall a keepalive or a request could
 *   meet. Its own share is what wagate's work took of it: the CPU time the
 *   loop's thread used in the turn, which leaves out its waits for a CPU
 *   (other processes on the same cores) and time a hypervisor stopped the
 *   virtual CPU; or, when the thread slept in it (a blocking call, which
 *   counts in full), the turn less its waits for a CPU. Measured without any
 *   timer, so it costs no wakeups.
 * - The lateness of a timer due every interval_ms: what a keepalive due then
 *   saw, turns, waits for a CPU and late wakes from epoll_wait included.
 *   Each run is a wakeup, which costs CPU: a fine interval is for a
 *   benchmark or a diagnosis, not for a gateway's everyday.
 */
#ifndef WG_NET_LOOPLAG_H
#define WG_NET_LOOPLAG_H

#include <stdint.h>

struct event_base;
struct looplag;

struct looplag_stat {
	uint64_t interval_ms;
	uint64_t samples;        /* timer runs in the window (estimated from the interval) */
	uint32_t max_lag_us;     /* the timer's longest lateness in the window */
	uint32_t over_10ms;      /* runs that were more than 10 ms late */
	uint32_t max_turn_us;    /* the longest loop turn */
	uint32_t turns_over_10ms;
	uint32_t max_own_us;     /* the longest own share of a turn (above) */
	uint32_t own_over_10ms;
	int64_t oldest_ms;       /* the window actually covered starts here (older seconds are gone) */
};

/*
 * NULL when interval_ms is 0 (off) or on allocation failure. Turns are those
 * of the calling thread's loop (one looplag per thread measures them).
 */
struct looplag *looplag_new(struct event_base *base, uint64_t interval_ms);
void looplag_free(struct looplag *l);
/* What happened at or after since_wall_ms (Unix ms), to the second; the last hour at most. */
void looplag_since(const struct looplag *l, int64_t since_wall_ms, struct looplag_stat *out);

#endif
