/* Hex and base64 text encodings and the UTF-8 check, bounded and allocation-free where possible. */
#ifndef WG_CORE_ENC_H
#define WG_CORE_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes 2n lowercase hex digits and a NUL into out (size >= 2n+1). */
void wg_hex_encode(char *out, const uint8_t *in, size_t n);
/*
 * Decodes hex text, skipping ASCII white space. Returns the byte count, or
 * WG_EINVAL with *bad set to the offset of the offending character.
 * out must hold at least len/2 bytes.
 */
long wg_hex_decode(uint8_t *out, const char *in, size_t len, size_t *bad);

/* Standard base64 with padding; returns a malloc'd NUL-terminated string. */
char *wg_b64_encode(const uint8_t *in, size_t n);
/* Accepts standard or URL-safe base64, padded or not. Returns the byte count or WG_EINVAL.
 * out must hold at least 3*len/4+3 bytes. */
long wg_b64_decode(uint8_t *out, const char *in, size_t len);

/*
 * The length of the well-formed UTF-8 sequence at p (at most n bytes): 1 for
 * ASCII, 2 to 4 otherwise; 0 if it is not one (an overlong form, a surrogate,
 * above U+10FFFF, cut short). n must be at least 1.
 */
size_t wg_utf8_seq(const uint8_t *p, size_t n);
/* All n bytes are well-formed UTF-8. */
bool wg_utf8_valid(const uint8_t *p, size_t n);

#endif
