#include "core/duration.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"

int
wg_duration_parse(const char *s, uint64_t *ms)
{
	uint64_t n = 0;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return WG_EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > WG_DURATION_MAX_MS)
			return WG_EINVAL;
	}
	uint64_t mult;
	if (strcmp(p, "ms") == 0)
		mult = 1;
	else if (strcmp(p, "s") == 0)
		mult = 1000;
	else if (strcmp(p, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		mult = 3600 * 1000;
	else if (strcmp(p, "d") == 0)
		mult = 24 * 3600 * 1000;
	else
		return WG_EINVAL;
	if (n > WG_DURATION_MAX_MS / mult)
		return WG_EINVAL;
	*ms = n * mult;
	return 0;
}

int
wg_duration_env(const char *name, uint64_t *ms)
{
	const char *v = getenv(name);
	if (v == NULL || v[0] == '\0')
		return 1;
	return wg_duration_parse(v, ms);
}
