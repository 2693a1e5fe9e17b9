/* Base64 and hex: against OpenSSL's encoder, both alphabets, and the inputs a decoder must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/enc.h"
#include "core/err.h"

/* Every length up to 80, random bytes: our encoder matches OpenSSL's, and decodes back. */
static void
test_b64_roundtrip_against_openssl(void **state)
{
	(void)state;
	uint8_t in[80], out[80 + 3];
	unsigned char ref[4 * 80 / 3 + 8];
	for (size_t n = 0; n <= sizeof(in); n++) {
		if (n > 0)
			assert_int_equal(RAND_bytes(in, (int)n), 1);
		int rn = EVP_EncodeBlock(ref, in, (int)n);
		char *enc = wg_b64_encode(in, n);
		assert_string_equal(enc, (char *)ref);
		assert_int_equal(wg_b64_decode(out, enc, strlen(enc)), (long)n);
		assert_memory_equal(out, in, n);
		/* Unpadded decodes the same. */
		size_t len = (size_t)rn;
		while (len > 0 && enc[len - 1] == '=')
			len--;
		assert_int_equal(wg_b64_decode(out, enc, len), (long)n);
		assert_memory_equal(out, in, n);
		free(enc);
	}
}

static void
test_b64_alphabets(void **state)
{
	(void)state;
	uint8_t out[8];
	/* 0xfb 0xff 0xbf is "+/+/" in the standard alphabet and "-_-_" in the URL-safe one. */
	assert_int_equal(wg_b64_decode(out, "+/+/", 4), 3);
	assert_memory_equal(out, "\xfb\xff\xbf", 3);
	assert_int_equal(wg_b64_decode(out, "-_-_", 4), 3);
	assert_memory_equal(out, "\xfb\xff\xbf", 3);
	assert_int_equal(wg_b64_decode(out, "AZaz09", 6), 4);
	assert_memory_equal(out, "\x01\x96\xb3\xd3", 4);
}

static void
test_b64_refuses(void **state)
{
	(void)state;
	uint8_t out[16];
	static const char *bad[] = {
	    "QUJD RA==",  /* a space */
	    "QUJD\nRA==", /* a newline */
	    "QUJ*",       /* outside both alphabets */
	    "QQ==QQ==",   /* data after padding */
	    "Q===",       /* too much padding */
	    "Q",          /* six bits are not a byte */
	    "QUJDR",      /* nor are 30 */
	    "\xc3\xa9QQ", /* not ASCII */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(wg_b64_decode(out, bad[i], strlen(bad[i])), WG_EINVAL);
	/* A NUL inside the length is a character like any other, and not base64. */
	assert_int_equal(wg_b64_decode(out, "QU\0D", 4), WG_EINVAL);
	assert_int_equal(wg_b64_decode(out, "", 0), 0);
}

static void
test_hex(void **state)
{
	(void)state;
	uint8_t out[4];
	char text[9];
	size_t bad = 0;
	wg_hex_encode(text, (const uint8_t *)"\x00\xab\xcd\xff", 4);
	assert_string_equal(text, "00abcdff");
	assert_int_equal(wg_hex_decode(out, "00 AB cd\tff", 11, &bad), 4);
	assert_memory_equal(out, "\x00\xab\xcd\xff", 4);
	assert_int_equal(wg_hex_decode(out, "0g", 2, &bad), WG_EINVAL);
	assert_int_equal(bad, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64_roundtrip_against_openssl),
	    cmocka_unit_test(test_b64_alphabets),
	    cmocka_unit_test(test_b64_refuses),
	    cmocka_unit_test(test_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
