/* wg_iso8601 against the C library's gmtime and strftime, over the range wagate's timestamps live in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"

static void
reference(char out[32], uint64_t ms)
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char base[24];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03uZ", base, (unsigned)(ms % 1000));
}

static void
test_iso8601_matches_gmtime(void **state)
{
	(void)state;
	/* Edges: the epoch, leap days, century rules (2000 is a leap year, 2100 is not), year ends. */
	static const uint64_t edges[] = {0, 1, 999, 1000, 86399999, 86400000, 951782400000ull,
	                                 951868799999ull, 4107542400000ull, 4107455999999ull,
	                                 1798761599999ull, 1798761600000ull, 253402300799999ull};
	char got[32], want[32];
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		wg_iso8601(got, edges[i]);
		reference(want, edges[i]);
		assert_string_equal(got, want);
	}
	/* Every day from 1970 to 2200 at a varying time of day. */
	for (uint64_t day = 0; day < 84000; day++) {
		uint64_t ms = day * 86400000ull + (day * 7919ull % 86400000ull);
		wg_iso8601(got, ms);
		reference(want, ms);
		assert_string_equal(got, want);
	}
	/* Past year 9999 the text would not fit the format: it saturates. */
	wg_iso8601(got, 253402300800000ull);
	assert_string_equal(got, "9999-12-31T23:59:59.999Z");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_iso8601_matches_gmtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
