/*
 * The pairing QR code as an SVG image, drawn from libqrencode's module matrix.
 * One path holds a unit square per dark module ("M x y h1v1h-1z"), so the
 * image is small, scales without blur and needs no raster library.
 */
#include <qrencode.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/buf.h"

/* The quiet zone the QR standard asks for, in modules, on every side. */
#define QR_QUIET 4
/* WhatsApp pairing strings are a few hundred bytes; anything near the QR maximum is not one. */
#define QR_TEXT_MAX 1024

static void put(struct wg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends one formatted piece; every piece is far shorter than tmp. */
static void
put(struct wg_buf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(tmp))
		wg_buf_append(b, tmp, (size_t)n);
}

char *
api__qr_svg(const char *text, size_t *len)
{
	if (strnlen(text, QR_TEXT_MAX + 1) > QR_TEXT_MAX)
		return NULL;
	/* Level L, as WhatsApp's own pairing codes use: the densest, still easily scanned on a
	 * screen. */
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
	if (qr == NULL)
		return NULL;
	int w = qr->width, size = w + 2 * QR_QUIET;
	struct wg_buf b = {0};
	put(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" ", size, size);
	put(&b, "width=\"%d\" height=\"%d\" shape-rendering=\"crispEdges\">", size * 8, size * 8);
	put(&b, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"", size,
	    size);
	for (int y = 0; y < w; y++)
		for (int x = 0; x < w; x++)
			if (qr->data[y * w + x] & 1) /* bit 0: dark module */
				put(&b, "M%d %dh1v1h-1z", x + QR_QUIET, y + QR_QUIET);
	static const char tail[] = "\"/></svg>\n";
	wg_buf_append(&b, tail, sizeof(tail)); /* with the NUL */
	QRcode_free(qr);
	*len = b.len - 1;
	return (char *)b.data;
}
