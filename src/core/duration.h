/* Durations in configuration: a whole number with a unit, "500ms", "25s", "30m", "1h", "30d". */
#ifndef WG_CORE_DURATION_H
#define WG_CORE_DURATION_H

#include <stdint.h>

/* The largest accepted duration: 366 days (a year of retention), far beyond any timer we run. */
#define WG_DURATION_MAX_MS (366ull * 24 * 3600 * 1000)

/* Parses s into milliseconds. Returns 0, or WG_EINVAL (no unit, unknown unit, not a number, too large). */
int wg_duration_parse(const char *s, uint64_t *ms);

/*
 * Reads a duration from the environment variable name. Returns 0 and sets *ms
 * when it is set and valid, 1 when unset (leaving *ms alone), WG_EINVAL when invalid.
 */
int wg_duration_env(const char *name, uint64_t *ms);

#endif
