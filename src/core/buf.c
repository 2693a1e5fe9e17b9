#include "core/buf.h"

#include <string.h>

#include <stdlib.h>

#include "core/mem.h"

void
wg_buf_reserve(struct wg_buf *b, size_t extra)
{
	size_t need = b->len + extra;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = wg_realloc(b->data, cap);
	b->cap = cap;
}

void
wg_buf_append(struct wg_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	wg_buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void
wg_buf_push(struct wg_buf *b, uint8_t byte)
{
	wg_buf_reserve(b, 1);
	b->data[b->len++] = byte;
}

void
wg_buf_consume(struct wg_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void
wg_buf_reset(struct wg_buf *b)
{
	b->len = 0;
}

void
wg_buf_free(struct wg_buf *b)
{
	wg_wipe(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
