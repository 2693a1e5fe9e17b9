/*
 * wagate wire decode|encode [--dict 2|3] [--lines]
 *
 * decode: a frame plaintext (flag byte + node) as hex on stdin → the node as JSON.
 * encode: a node as JSON on stdin → hex of flag byte 00 + node.
 * --lines: one input per line, one output line each; a bad line prints
 * "error: ..." in its place and the run goes on (for bulk tests).
 * Malformed input in single-shot mode: exit status 1, one line on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/enc.h"
#include "core/err.h"
#include "core/mem.h"
#include "wa/node.h"
#include "wa/node_json.h"

/* Input bound: a frame is at most 16 MiB, twice that as hex, plus white space. */
#define WIRE_MAX_INPUT (40u << 20)

static void
wire_usage(FILE *f)
{
	fprintf(f, "usage: wagate wire decode|encode [--dict 2|3] [--lines]\n"
		   "  decode  reads a frame (flag byte + node) as hex on stdin, prints JSON\n"
		   "  encode  reads a node as JSON on stdin, prints the frame as hex\n");
}

/* Decodes one hex frame into a JSON line in out, or an error message. */
static int
decode_one(const struct wa_dict *d, const char *text, size_t len, char **out, char *err,
	   size_t errlen)
{
	uint8_t *bin = wg_malloc(len / 2 + 1);
	size_t bad = 0;
	long n = wg_hex_decode(bin, text, len, &bad);
	if (n < 0) {
		snprintf(err, errlen, "input is not hex: bad character at offset %zu", bad);
		free(bin);
		return 1;
	}
	struct wa_arena a = {0};
	struct wa_node *node;
	struct wa_decode_err de;
	int r = wa_frame_decode_node(d, bin, (size_t)n, NULL, &a, &node, &de);
	if (r) {
		if (de.inflated)
			snprintf(err, errlen, "%s at byte %zu of the inflated node", de.msg,
				 de.offset);
		else
			snprintf(err, errlen, "%s at byte %zu", de.msg, de.offset);
	} else {
		json_t *j = wa_node_to_json(node);
		*out = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
		json_decref(j);
	}
	wa_arena_free(&a);
	free(bin);
	return r ? 1 : 0;
}

static int
encode_one(const struct wa_dict *d, const char *text, size_t len, char **out, char *err,
	   size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (j == NULL) {
		snprintf(err, errlen, "invalid JSON at line %d column %d: %s", je.line, je.column,
			 je.text);
		return 1;
	}
	struct wa_arena a = {0};
	struct wa_node *node;
	char why[256];
	int r = wa_node_from_json(j, &a, &node, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "%s", why);
	} else {
		struct wg_buf b = {0};
		wg_buf_push(&b, 0x00);
		r = wa_node_encode(d, node, &b);
		if (r) {
			snprintf(err, errlen, "node cannot be encoded: %s", wg_strerror(r));
		} else {
			*out = wg_malloc(b.len * 2 + 1);
			wg_hex_encode(*out, b.data, b.len);
		}
		wg_buf_free(&b);
	}
	wa_arena_free(&a);
	json_decref(j);
	return r ? 1 : 0;
}

static int
read_all(FILE *f, struct wg_buf *b)
{
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b->len + n > WIRE_MAX_INPUT)
			return WG_ELIMIT;
		wg_buf_append(b, chunk, n);
	}
	return ferror(f) ? WG_EIO : 0;
}

int
cmd_wire(int argc, char **argv)
{
	int dict = 3, lines = 0;
	const char *mode = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dict") == 0 && i + 1 < argc) {
			const char *v = argv[++i];
			if (strcmp(v, "2") == 0)
				dict = 2;
			else if (strcmp(v, "3") == 0)
				dict = 3;
			else {
				fprintf(stderr, "wagate wire: --dict takes 2 or 3, not \"%s\"\n", v);
				return 2;
			}
		} else if (strcmp(argv[i], "--lines") == 0) {
			lines = 1;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			wire_usage(stdout);
			return 0;
		} else if (mode == NULL && (strcmp(argv[i], "decode") == 0 ||
					    strcmp(argv[i], "encode") == 0)) {
			mode = argv[i];
		} else {
			fprintf(stderr, "wagate wire: unexpected argument \"%s\"\n", argv[i]);
			wire_usage(stderr);
			return 2;
		}
	}
	if (mode == NULL) {
		wire_usage(stderr);
		return 2;
	}
	const struct wa_dict *d = wa_dict_get(dict);
	int (*one)(const struct wa_dict *, const char *, size_t, char **, char *, size_t) =
		strcmp(mode, "decode") == 0 ? decode_one : encode_one;
	char err[256];

	if (!lines) {
		struct wg_buf in = {0};
		int r = read_all(stdin, &in);
		if (r) {
			fprintf(stderr, "wagate wire: cannot read input: %s\n", wg_strerror(r));
			wg_buf_free(&in);
			return 1;
		}
		char *out = NULL;
		r = one(d, (const char *)in.data, in.len, &out, err, sizeof(err));
		wg_buf_free(&in);
		if (r) {
			fprintf(stderr, "wagate wire %s: %s\n", mode, err);
			return 1;
		}
		printf("%s\n", out);
		free(out);
		return 0;
	}

	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int status = 0;
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		char *out = NULL;
		if ((size_t)n > WIRE_MAX_INPUT) {
			printf("error: line longer than %u bytes\n", WIRE_MAX_INPUT);
			status = 1;
		} else if (one(d, line, (size_t)n, &out, err, sizeof(err))) {
			printf("error: %s\n", err);
			status = 1;
		} else {
			printf("%s\n", out);
		}
		free(out);
	}
	free(line);
	return status;
}
