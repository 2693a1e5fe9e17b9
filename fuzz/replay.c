/*
 * Runs a libFuzzer target over files, without libFuzzer: each argument is a
 * file or a directory of files (a corpus), each file one input. `make test`
 * replays every corpus this way, so a finding committed to a corpus stays
 * fixed. Exits 1 when an argument cannot be read; a failing input aborts.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs larger than this are not corpus entries (libFuzzer's default -max_len is far below). */
#define REPLAY_MAX (1 << 20)

static int
replay_file(const char *path, unsigned long *n)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return 1;
	}
	uint8_t *buf = malloc(REPLAY_MAX);
	size_t len = buf ? fread(buf, 1, REPLAY_MAX, f) : 0;
	int bad = buf == NULL || ferror(f) || !feof(f);
	fclose(f);
	if (bad) {
		fprintf(stderr, "%s: cannot read it whole (at most %d bytes)\n", path, REPLAY_MAX);
		free(buf);
		return 1;
	}
	/* A copy of exactly len bytes, so that ASan sees a read past the input. */
	uint8_t *in = malloc(len ? len : 1);
	memcpy(in, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(in, len);
	free(in);
	(*n)++;
	return 0;
}

static int
replay(const char *path, unsigned long *n)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, n);
	DIR *dir = opendir(path);
	if (dir == NULL) {
		perror(path);
		return 1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char sub[4096];
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		rc |= replay(sub, n);
	}
	closedir(dir);
	return rc;
}

int
main(int argc, char **argv)
{
	unsigned long n = 0;
	int rc = 0;
	for (int i = 1; i < argc; i++)
		rc |= replay(argv[i], &n);
	printf("%lu input(s) replayed\n", n);
	return rc || n == 0;
}
