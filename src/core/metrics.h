/*
 * Histograms for GET /metrics (Prometheus' cumulative buckets), fixed at
 * compile time. Observations use relaxed atomic adds, so any thread may
 * record (the store's writer and reader threads do); a reader sees each
 * count whole, not all counts at one instant, which Prometheus tolerates.
 */
#ifndef WG_CORE_METRICS_H
#define WG_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define WG_HIST_MAX 16

struct wg_hist {
	const double *bounds; /* upper bounds in seconds, ascending; +Inf is implied */
	size_t n;
	uint64_t counts[WG_HIST_MAX + 1]; /* per bucket (not cumulative); the last is +Inf */
	uint64_t sum_ns;
	uint64_t total;
};

/* Latencies of a network round trip or a database write: 1 ms to 10 s. */
extern const double wg_hist_latency[];
#define WG_HIST_LATENCY_N 12
/* Durations of a login: 50 ms to 2 min. */
extern const double wg_hist_connect[];
#define WG_HIST_CONNECT_N 11

void wg_hist_observe_ns(struct wg_hist *h, uint64_t ns);

/* A relaxed atomic counter. */
static inline void
wg_count(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static inline uint64_t
wg_count_read(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Monotonic nanoseconds, for measuring (not the virtual clock: metrics are about real time). */
uint64_t wg_mono_ns(void);

struct evbuffer;
/*
 * Writes h in the text format as name_bucket/_sum/_count lines (labels:
 * extra label pairs like `reason="x"`, or NULL). The # HELP/# TYPE lines are
 * the caller's.
 */
void wg_hist_write(struct evbuffer *b, const char *name, const char *labels,
                   const struct wg_hist *h);

#endif
