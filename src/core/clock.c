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
	uint64_t sec = wall_ms / 1000;
	/* Listings write thousands of these: the civil date by arithmetic, not gmtime/strftime. */
	uint64_t days = sec / 86400, rem = sec % 86400;
	/* Days since 0000-03-01 in 400-year eras of 146,097 days (March first: leap days come last). */
	uint64_t z = days + 719468, era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
	uint64_t y = era * 400 + yoe + (m <= 2);
	if (y > 9999) {
		snprintf(out, 32, "9999-12-31T23:59:59.999Z");
		return;
	}
	unsigned v[] = {(unsigned)y, m, d, (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60),
	                (unsigned)(rem % 60), (unsigned)(wall_ms % 1000)};
	static const unsigned char width[] = {4, 2, 2, 2, 2, 2, 3};
	static const char after[] = "--T::.Z";
	char *p = out;
	for (int i = 0; i < 7; i++) {
		for (int k = width[i] - 1; k >= 0; k--) {
			p[k] = (char)('0' + v[i] % 10);
			v[i] /= 10;
		}
		p += width[i];
		*p++ = after[i];
	}
	*p = '\0';
}
