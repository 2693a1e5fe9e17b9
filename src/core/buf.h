/* A growable byte buffer. Appends never fail (see core/mem.h). */
#ifndef WG_CORE_BUF_H
#define WG_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct wg_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void wg_buf_reserve(struct wg_buf *b, size_t extra);
void wg_buf_append(struct wg_buf *b, const void *p, size_t n);
void wg_buf_push(struct wg_buf *b, uint8_t byte);
/* Drops the first n bytes. */
void wg_buf_consume(struct wg_buf *b, size_t n);
void wg_buf_reset(struct wg_buf *b);
/* Frees the storage, wiping it first (buffers may hold key material). */
void wg_buf_free(struct wg_buf *b);

#endif
