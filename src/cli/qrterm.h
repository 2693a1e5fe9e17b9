/* Draws a QR code in a terminal with UTF-8 half blocks (two modules per character cell). */
#ifndef WG_CLI_QRTERM_H
#define WG_CLI_QRTERM_H

#include <stdio.h>

/* Returns 0, or -1 if the text cannot be encoded. */
int qrterm_print(FILE *f, const char *text);

#endif
