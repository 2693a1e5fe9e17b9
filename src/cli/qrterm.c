#include "cli/qrterm.h"

#include <qrencode.h>

int
qrterm_print(FILE *f, const char *text)
{
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
	if (qr == NULL)
		return -1;
	/* Dark modules on a light background, with the 2-module quiet zone scanners need. */
	const int quiet = 2, w = qr->width, total = w + 2 * quiet;
	for (int y = 0; y < total; y += 2) {
		for (int x = 0; x < total; x++) {
			int top = 0, bottom = 0, mx = x - quiet, my = y - quiet;
			if (mx >= 0 && mx < w && my >= 0 && my < w)
				top = qr->data[my * w + mx] & 1;
			if (mx >= 0 && mx < w && my + 1 >= 0 && my + 1 < w)
				bottom = qr->data[(my + 1) * w + mx] & 1;
			/* The terminal draws the block in the foreground: light where modules are not dark. */
			if (!top && !bottom)
				fputs("\xe2\x96\x88", f); /* full block */
			else if (!top)
				fputs("\xe2\x96\x80", f); /* upper half */
			else if (!bottom)
				fputs("\xe2\x96\x84", f); /* lower half */
			else
				fputc(' ', f);
		}
		fputc('\n', f);
	}
	QRcode_free(qr);
	return 0;
}
