/*
 * Monotonic time, read through one replaceable function. Every timing rule
 * (timeouts, keepalive, backoff, staleness) asks wg_now_ms(); tests install a
 * virtual clock with wg_clock_set() and advance it by hand. Wall-clock time is
 * only for timestamps shown to people or stored (wg_wall_ms()).
 */
#ifndef WG_CORE_CLOCK_H
#define WG_CORE_CLOCK_H

#include <stdint.h>

typedef uint64_t (*wg_clock_fn)(void *arg);

/* Milliseconds on a monotonic clock with an arbitrary origin. */
uint64_t wg_now_ms(void);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t wg_wall_ms(void);

/* Formats wall-clock ms as ISO 8601 UTC with milliseconds ("2026-11-24T13:27:04.123Z"). */
void wg_iso8601(char out[32], uint64_t wall_ms);

/* Replace the monotonic clock; NULL restores the system clock. */
void wg_clock_set(wg_clock_fn fn, void *arg);

/*
 * Replace the wall clock, for tests of rules whose windows are counted in
 * stored timestamps (recovery limits); NULL restores CLOCK_REALTIME.
 */
void wg_wall_clock_set(wg_clock_fn fn, void *arg);

#endif
