/*
 * wagate pair --creds FILE [--raw] [--push-name NAME]
 * wagate connect --creds FILE [--raw]
 *
 * For a person at a terminal: pair shows each QR code, saves the credentials
 * as soon as the phone accepts, and prints "paired <jid>" once logged in;
 * connect logs in with saved credentials and prints one line per event.
 * --raw prints machine-readable lines only: "qr <string>", "paired <jid>",
 * "open <jid>", "closed <reason> <code>".
 * Both read WAGATE_WA_URL and WAGATE_WA_ROOT_PUBKEY (and the keepalive
 * variables). connect exits 0 when closed by a signal, 1 when the connection
 * was lost; pair exits 0 once paired and logged in, 1 otherwise; 2 for usage
 * or configuration errors.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/qrterm.h"
#include "client/session.h"
#include "core/err.h"
#include "wa/creds.h"

struct run {
	struct event_base *base;
	struct wa_session *s;
	const char *creds_path;
	int raw, pairing;
	int paired, signalled, exit_code;
	int save_failed;
};

/* One output line, flushed at once: another program may be reading it. */
__attribute__((format(printf, 1, 2))) static void
line(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void
on_qr(struct wa_session *s, const char *qr, uint32_t valid_ms, void *arg)
{
	struct run *r = arg;
	if (r->raw) {
		line("qr %s\n", qr);
		return;
	}
	printf("\nScan this code with WhatsApp (Settings > Linked devices > Link a device).\n"
	       "It is valid for %u seconds.\n\n", valid_ms / 1000);
	if (qrterm_print(stdout, qr) != 0)
		printf("(cannot draw the code; its text is: %s)\n", qr);
	fflush(stdout);
}

static void
on_creds(struct wa_session *s, const struct wa_creds *c, void *arg)
{
	struct run *r = arg;
	if (wa_creds_save(c, r->creds_path) != 0) {
		fprintf(stderr, "wagate: cannot save the credentials to %s\n", r->creds_path);
		r->save_failed = 1;
	}
}

static void
on_paired(struct wa_session *s, const char *jid, const struct wa_creds *c, void *arg)
{
	struct run *r = arg;
	r->paired = 1;
	if (!r->raw)
		printf("The phone accepted this device as %s; logging in...\n", jid);
}

static void
on_open(struct wa_session *s, const char *jid, const char *lid, const char *name, void *arg)
{
	struct run *r = arg;
	if (r->pairing) {
		line("paired %s\n", jid);
		r->exit_code = r->save_failed ? 1 : 0;
		wa_session_close(s);
		return;
	}
	if (r->raw)
		line("open %s\n", jid);
	else
		printf("open: logged in as %s%s%s\n", jid, lid ? ", lid " : "", lid ? lid : "");
	fflush(stdout);
}

static void
on_message(struct wa_session *s, int64_t t, void *arg)
{
	struct run *r = arg;
	if (!r->raw) {
		printf("message: a stanza sent at %lld, acknowledged\n", (long long)t);
		fflush(stdout);
	}
}

static void
on_closed(struct wa_session *s, const struct wa_session_close *why, void *arg)
{
	struct run *r = arg;
	r->s = NULL;
	char code[16];
	snprintf(code, sizeof(code), "%d", why->code);
	if (!(r->pairing && r->exit_code == 0 && why->reason == WA_CLOSE_CLOSED_BY_US)) {
		if (r->raw)
			line("closed %s %s\n", wa_close_reason_name(why->reason), code);
		else
			printf("closed: %s (%s, code %s)\n", why->text,
			       wa_close_reason_name(why->reason), code);
	}
	fflush(stdout);
	if (!r->pairing)
		r->exit_code = why->reason == WA_CLOSE_CLOSED_BY_US && r->signalled ? 0 : 1;
	event_base_loopbreak(r->base);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct run *r = arg;
	r->signalled = 1;
	if (r->s != NULL)
		wa_session_close(r->s);
	else
		event_base_loopbreak(r->base);
}

static int
usage(const char *cmd, FILE *f)
{
	if (strcmp(cmd, "pair") == 0)
		fprintf(f, "usage: wagate pair --creds FILE [--raw] [--push-name NAME]\n");
	else
		fprintf(f, "usage: wagate connect --creds FILE [--raw]\n");
	return f == stdout ? 0 : 2;
}

static int
run_session(int argc, char **argv, int pairing)
{
	const char *cmd = argv[0], *path = NULL, *push_name = NULL;
	struct run r = {.pairing = pairing, .exit_code = 1};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--raw") == 0)
			r.raw = 1;
		else if (strcmp(argv[i], "--creds") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (pairing && strcmp(argv[i], "--push-name") == 0 && i + 1 < argc)
			push_name = argv[++i];
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return usage(cmd, stdout);
		else {
			fprintf(stderr, "wagate %s: unexpected argument \"%s\"\n", cmd, argv[i]);
			return usage(cmd, stderr);
		}
	}
	if (path == NULL)
		return usage(cmd, stderr);
	r.creds_path = path;

	struct wa_session_opts o;
	char why[256];
	wa_session_defaults(&o);
	if (wa_session_opts_from_env(&o, why, sizeof(why)) != 0) {
		fprintf(stderr, "wagate %s: %s\n", cmd, why);
		return 2;
	}
	struct wa_creds creds;
	int lr = wa_creds_load(path, &creds, why, sizeof(why));
	if (pairing) {
		if (lr == 0 && wa_creds_paired(&creds)) {
			fprintf(stderr, "wagate pair: %s already holds a paired device (%s); "
					"use wagate connect, or another file\n",
				path, creds.me_jid);
			wa_creds_free(&creds);
			return 2;
		}
		if (lr == WG_ENOTFOUND) {
			wa_creds_generate(&creds);
		} else if (lr != 0) {
			fprintf(stderr, "wagate pair: %s\n", why);
			return 2;
		}
		if (push_name != NULL) {
			free(creds.push_name);
			creds.push_name = strdup(push_name);
		}
		/* Saved before connecting: the QR codes name these keys, so they must survive. */
		if (wa_creds_save(&creds, path) != 0) {
			fprintf(stderr, "wagate pair: cannot write %s\n", path);
			wa_creds_free(&creds);
			return 2;
		}
	} else {
		if (lr != 0) {
			fprintf(stderr, "wagate connect: %s\n", why);
			return 2;
		}
		if (!wa_creds_paired(&creds)) {
			fprintf(stderr, "wagate connect: %s holds no paired device; run wagate pair\n",
				path);
			wa_creds_free(&creds);
			return 2;
		}
	}

	r.base = event_base_new();
	static const struct wa_session_events ev = {
		.on_qr = on_qr,
		.on_paired = on_paired,
		.on_open = on_open,
		.on_closed = on_closed,
		.on_message = on_message,
		.on_creds = on_creds,
	};
	o.id = cmd;
	int rc = wa_session_open(r.base, &o, &creds, &ev, &r, &r.s);
	wa_creds_free(&creds);
	if (rc != 0) {
		fprintf(stderr, "wagate %s: cannot start: %s\n", cmd, wg_strerror(rc));
		event_base_free(r.base);
		return 2;
	}
	struct event *sint = evsignal_new(r.base, SIGINT, on_signal, &r);
	struct event *sterm = evsignal_new(r.base, SIGTERM, on_signal, &r);
	evsignal_add(sint, NULL);
	evsignal_add(sterm, NULL);
	event_base_dispatch(r.base);
	event_free(sint);
	event_free(sterm);
	event_base_free(r.base);
	return r.exit_code;
}

int
cmd_pair(int argc, char **argv)
{
	return run_session(argc, argv, 1);
}

int
cmd_connect(int argc, char **argv)
{
	return run_session(argc, argv, 0);
}
