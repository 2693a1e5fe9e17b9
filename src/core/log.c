#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum wg_log_level min_level = WG_LOG_INFO;
static int level_from_env = -1;

void
wg_log_set_level(enum wg_log_level lvl)
{
	min_level = lvl;
	level_from_env = 0;
}

static void
init_from_env(void)
{
	const char *v = getenv("WAGATE_LOG_LEVEL");
	level_from_env = 0;
	if (v == NULL)
		return;
	if (strcmp(v, "debug") == 0)
		min_level = WG_LOG_DEBUG;
	else if (strcmp(v, "warn") == 0)
		min_level = WG_LOG_WARN;
	else if (strcmp(v, "error") == 0)
		min_level = WG_LOG_ERROR;
}

void
wg_log(enum wg_log_level lvl, const char *who, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char line[1024], stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level_from_env < 0)
		init_from_env();
	if (lvl < min_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03ldZ %s [%s] %s\n", stamp, ts.tv_nsec / 1000000L, names[lvl],
		who ? who : "-", line);
}
