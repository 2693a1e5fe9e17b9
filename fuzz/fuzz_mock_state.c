/*
 * libFuzzer target: `wagate mock --state FILE`, a file someone may have
 * edited. What loads must save and load again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mock/mock_int.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/wagate-fuzz-state-%d.json", (int)getpid());
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	struct mock_store s;
	char err[512];
	if (mock__store_load(&s, path, err, sizeof(err)) == 0) {
		if (mock__store_save(&s, err, sizeof(err)) != 0)
			abort(); /* loaded what it cannot write */
		struct mock_store t;
		if (mock__store_load(&t, path, err, sizeof(err)) != 0)
			abort(); /* wrote what it cannot load */
		mock__store_free(&t);
	}
	mock__store_free(&s);
	unlink(path);
	return 0;
}
