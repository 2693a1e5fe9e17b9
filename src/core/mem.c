#include "core/mem.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
oom(size_t n)
{
	fprintf(stderr, "wagate: out of memory allocating %zu bytes\n", n);
	abort();
}

void *
wg_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom(n);
	return p;
}

void *
wg_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom(n * size);
	return p;
}

void *
wg_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom(n);
	return q;
}

char *
wg_strdup(const char *s)
{
	return wg_memdup(s, strlen(s) + 1);
}

char *
wg_strndup(const char *s, size_t n)
{
	char *p = wg_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void *
wg_memdup(const void *p, size_t n)
{
	void *q = wg_malloc(n);
	if (n)
		memcpy(q, p, n);
	return q;
}

void
wg_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}
