#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static enum wg_log_level min_level = WG_LOG_INFO;

/* The non-blocking mode's state: lines waiting for the pipe, in order. */
static struct {
	int on;
	char *buf;
	size_t len, cap;
	unsigned long dropped;
	void (*pending)(void *arg);
	void *arg;
} out;

static void emit(const char *p, size_t n);
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
	if (!out.on) {
		fprintf(stderr, "%s.%03ldZ %s [%s] %s\n", stamp, ts.tv_nsec / 1000000L, names[lvl],
			who ? who : "-", line);
		return;
	}
	char full[1200];
	int n = snprintf(full, sizeof(full), "%s.%03ldZ %s [%s] %s\n", stamp, ts.tv_nsec / 1000000L,
			 names[lvl], who ? who : "-", line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(full)) {
		n = (int)sizeof(full) - 1;
		full[n - 1] = '\n';
	}
	emit(full, (size_t)n);
}

/* ---- non-blocking stderr (wg_log_nonblocking) ---- */

/* Appends to the waiting lines, or counts the line as dropped when they are full. */
static void
queue(const char *p, size_t n)
{
	if (out.len + n > WG_LOG_BUFFER) {
		out.dropped++;
		return;
	}
	if (out.len + n > out.cap) {
		size_t cap = out.cap ? out.cap : 16384;
		while (cap < out.len + n)
			cap *= 2;
		char *b = realloc(out.buf, cap);
		if (b == NULL) {
			out.dropped++;
			return;
		}
		out.buf = b;
		out.cap = cap;
	}
	memcpy(out.buf + out.len, p, n);
	out.len += n;
}

/* Writes as much of p as the pipe takes now; returns how much. */
static size_t
try_write(const char *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(STDERR_FILENO, p + done, n - done);
		if (w > 0) {
			done += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		break; /* EAGAIN: the reader is behind; anything else: nothing more to do now */
	}
	return done;
}

/* Behind lines already waiting, a line only queues: the writable event flushes them all. */
static void
emit(const char *p, size_t n)
{
	if (out.len > 0) {
		queue(p, n);
		return;
	}
	size_t w = try_write(p, n);
	if (w == n)
		return;
	queue(p + w, n - w);
	if (out.len > 0 && out.pending)
		out.pending(out.arg);
}

int
wg_log_flush(void)
{
	for (;;) {
		if (out.len == 0 && out.dropped == 0)
			return 0;
		if (out.len == 0) {
			/* Caught up: say what was lost, then go on. */
			char note[200], stamp[32];
			struct timespec ts;
			struct tm tm;
			clock_gettime(CLOCK_REALTIME, &ts);
			gmtime_r(&ts.tv_sec, &tm);
			strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
			int k = snprintf(note, sizeof(note),
					 "%s.%03ldZ warn [log] %lu log line(s) dropped: the log's reader was "
					 "too slow\n",
					 stamp, ts.tv_nsec / 1000000L, out.dropped);
			out.dropped = 0;
			queue(note, (size_t)k);
			continue;
		}
		size_t w = try_write(out.buf, out.len);
		memmove(out.buf, out.buf + w, out.len - w);
		out.len -= w;
		if (out.len > 0)
			return 1;
	}
}

void
wg_log_nonblocking(void (*pending)(void *arg), void *arg)
{
	struct stat st;
	if (fstat(STDERR_FILENO, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		return;
	int fl = fcntl(STDERR_FILENO, F_GETFL);
	if (fl < 0 || fcntl(STDERR_FILENO, F_SETFL, fl | O_NONBLOCK) != 0)
		return;
	fflush(stderr);
	out.on = 1;
	out.pending = pending;
	out.arg = arg;
}

void
wg_log_blocking(void)
{
	if (!out.on)
		return;
	int fl = fcntl(STDERR_FILENO, F_GETFL);
	if (fl >= 0)
		fcntl(STDERR_FILENO, F_SETFL, fl & ~O_NONBLOCK);
	out.on = 0;
	/* Blocking now: each round writes something, unless the reader is gone. */
	for (;;) {
		size_t was = out.len;
		if (wg_log_flush() == 0 || out.len >= was)
			break;
	}
	free(out.buf);
	out.buf = NULL;
	out.len = out.cap = 0;
	out.pending = NULL;
}

/* ITU-T E.164 country codes of two digits; 1 and 7 have one; the rest have three (as web/src/core/format.ts). */
static size_t
country_code_len(const char *d)
{
	static const char two[][3] = {"20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41",
				      "43", "44", "45", "46", "47", "48", "49", "51", "52", "53", "54",
				      "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66",
				      "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98"};
	if (d[0] == '1' || d[0] == '7')
		return 1;
	for (size_t i = 0; i < sizeof(two) / sizeof(two[0]); i++)
		if (d[0] == two[i][0] && d[1] == two[i][1])
			return 2;
	return 3;
}

const char *
wg_mask_phone(char buf[WG_MASKED_MAX], const char *s)
{
	/* The user part of a JID ("user:device@server"), digits only. */
	char d[24];
	size_t n = 0;
	for (; s != NULL && *s && *s != ':' && *s != '@'; s++) {
		if (*s >= '0' && *s <= '9') {
			if (n == sizeof(d) - 1) {
				n = 0; /* no phone number is this long */
				break;
			}
			d[n++] = *s;
		}
	}
	d[n] = '\0';
	if (n < 7) {
		snprintf(buf, WG_MASKED_MAX, "****");
		return buf;
	}
	size_t cc = country_code_len(d);
	snprintf(buf, WG_MASKED_MAX, "+%.*s **** %s", (int)cc, d, d + n - 4);
	return buf;
}
