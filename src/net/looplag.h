/*
 * How late the event loop serves a timer: a timer due every interval_ms
 * records how long after its due instant it ran. That lateness is the time
 * the loop spent on something else, so its maximum over a window is the
 * longest loop turn in that window (within one interval). Measured inside
 * the process, so a busy client does not count as a stall of ours, as it
 * would for a probe from outside.
 *
 * The lateness still counts time that is not the loop's work: a late wake
 * from epoll_wait (the kernel, or a hypervisor that stopped the virtual CPU
 * while the loop had nothing to do) and time waiting for a CPU (other busy
 * processes on the same cores). On a machine whose cores are shared with the
 * load, most of a large lateness can be that. So each late run also records
 * the loop's own share: the lateness less the time its thread spent in
 * epoll_wait after the due instant and on a run queue (the kernel's
 * schedstat). A turn that computes, or blocks in any other system call, for
 * 12 ms shows as 12 ms in both; a turn that waited 40 ms for a core, or a
 * wake 40 ms late, shows 40 ms late and none of its own.
 */
#ifndef WG_NET_LOOPLAG_H
#define WG_NET_LOOPLAG_H

#include <stdint.h>

struct event_base;
struct looplag;

struct looplag_stat {
	uint64_t interval_ms;
	uint64_t samples;     /* timer runs in the window (estimated from the interval) */
	uint32_t max_lag_us;  /* the longest lateness in the window */
	uint32_t over_10ms;   /* runs that were more than 10 ms late */
	uint32_t max_own_us;  /* the longest lateness of the loop's own making (above) */
	uint32_t own_over_10ms;
	int64_t oldest_ms;    /* the window actually covered starts here (older samples are gone) */
};

/* NULL when interval_ms is 0 (off) or on allocation failure. */
struct looplag *looplag_new(struct event_base *base, uint64_t interval_ms);
void looplag_free(struct looplag *l);
/* What happened at or after since_wall_ms (Unix ms). */
void looplag_since(const struct looplag *l, int64_t since_wall_ms, struct looplag_stat *out);

#endif
