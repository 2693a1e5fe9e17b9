/*
 * The log with stderr non-blocking (wg_log_nonblocking): a reader that stops
 * reading never holds the caller; lines wait in order, the excess is dropped
 * and said once the reader catches up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"

static int pending_calls;

static void
on_pending(void *arg)
{
	(void)arg;
	pending_calls++;
}

static void
test_slow_reader_never_blocks(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	close(p[1]);
	wg_log_set_level(WG_LOG_INFO);
	wg_log_nonblocking(on_pending, NULL);
	/* 2 MiB of lines with nobody reading: the pipe takes 64 KiB, memory 1 MiB, the rest is dropped. */
	char pad[200];
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	enum { LINES = 8000 };
	for (int i = 0; i < LINES; i++)
		log_info("test", "line %06d %s", i, pad);
	assert_int_equal(pending_calls, 1);
	assert_int_equal(wg_log_flush(), 1);
	/* The reader catches up: every line that was kept arrives in order, then the note. */
	int fl = fcntl(p[0], F_GETFL);
	fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
	size_t cap = 4u << 20, len = 0;
	char *got = malloc(cap);
	int rounds = 0;
	for (;;) {
		ssize_t r = read(p[0], got + len, cap - len - 1);
		if (r > 0) {
			len += (size_t)r;
			continue;
		}
		if (wg_log_flush() == 0) {
			/* Whatever the last flush wrote. */
			while ((r = read(p[0], got + len, cap - len - 1)) > 0)
				len += (size_t)r;
			break;
		}
		assert_true(++rounds < 100000);
	}
	got[len] = '\0';
	int next = 0, lines = 0;
	const char *note = NULL;
	for (char *l = got, *nl; *l; l = nl + 1) {
		nl = strchr(l, '\n');
		assert_non_null(nl); /* whole lines only */
		*nl = '\0';
		const char *m = strstr(l, "line ");
		if (m == NULL) {
			note = strstr(l, "log line(s) dropped");
			continue;
		}
		assert_null(note); /* the note comes after the kept lines */
		assert_int_equal(strtol(m + 5, NULL, 10), next);
		next++;
		lines++;
	}
	assert_non_null(note);
	assert_true(lines > 4000 && lines < LINES);
	/* Caught up: a new line goes straight out. */
	log_info("test", "after");
	char tail[256];
	ssize_t r = read(p[0], tail, sizeof(tail) - 1);
	assert_true(r > 0);
	tail[r] = '\0';
	assert_non_null(strstr(tail, "after"));
	wg_log_blocking();
	free(got);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[0]);
}

/* A terminal or a file is left alone (blocking, written at once). */
static void
test_file_left_alone(void **state)
{
	(void)state;
	char path[] = "/tmp/wagate-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	pending_calls = 0;
	wg_log_nonblocking(on_pending, NULL);
	assert_int_equal(fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK, 0);
	log_info("test", "to a file");
	assert_int_equal(wg_log_flush(), 0);
	wg_log_blocking();
	dup2(saved, STDERR_FILENO);
	close(saved);
	char buf[128] = "";
	assert_true(pread(fd, buf, sizeof(buf) - 1, 0) > 0);
	assert_non_null(strstr(buf, "to a file"));
	close(fd);
	unlink(path);
}

/* Phone numbers and JIDs in the log, masked as the dashboard masks them (web/src/core/format.ts). */
static void
test_mask_phone(void **state)
{
	(void)state;
	char b[WG_MASKED_MAX];
	assert_string_equal(wg_mask_phone(b, "27821231234"), "+27 **** 1234");
	assert_string_equal(wg_mask_phone(b, "15551234567"), "+1 **** 4567");
	assert_string_equal(wg_mask_phone(b, "353871234567"), "+353 **** 4567");
	assert_string_equal(wg_mask_phone(b, "5511900001455:1@s.whatsapp.net"), "+55 **** 1455");
	assert_string_equal(wg_mask_phone(b, "79161234567@s.whatsapp.net"), "+7 **** 4567");
	assert_string_equal(wg_mask_phone(b, "123456"), "****");
	assert_string_equal(wg_mask_phone(b, ""), "****");
	assert_string_equal(wg_mask_phone(b, NULL), "****");
	assert_string_equal(wg_mask_phone(b, "12345678901234567890123456789"), "****");
	/* Whatever it is given, the whole number never comes out. */
	assert_null(strstr(wg_mask_phone(b, "5511900001455@lid"), "5511900001455"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slow_reader_never_blocks),
	    cmocka_unit_test(test_file_left_alone),
	    cmocka_unit_test(test_mask_phone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
