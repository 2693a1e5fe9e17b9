#include "core/clock.h"

#include <stdio.h>
#include <time.h>

static wg_clock_fn clock_fn, wall_fn;
static void *clock_arg, *wall_arg;

static uint64_t
ts_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
wg_now_ms(void)
{
	if (clock_fn != NULL)
		return clock_fn(clock_arg);
	return ts_ms(CLOCK_MONOTONIC);
}

uint64_t
wg_wall_ms(void)
{
	if (wall_fn != NULL)
		return wall_fn(wall_arg);
	return ts_ms(CLOCK_REALTIME);
}

void
wg_wall_clock_set(wg_clock_fn fn, void *arg)
{
	wall_fn = fn;
	wall_arg = arg;
}

void
wg_clock_set(wg_clock_fn fn, void *arg)
{
	clock_fn = fn;
	clock_arg = arg;
}

void
wg_iso8601(char out[32], uint64_t wall_ms)
{
	time_t sec = (time_t)(wall_ms / 1000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char base[24];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03uZ", base, (unsigned)(wall_ms % 1000));
}
