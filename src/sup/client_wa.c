/* The supervisor's real client: a wa_session, with credentials as auth_state blobs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "sup/client.h"
#include "wa/creds.h"

struct sup_client {
	struct wa_session *s;
	const struct sup_client_cb *cb;
	void *arg;
};

static void
ev_qr(struct wa_session *s, const char *qr, uint32_t valid_ms, void *arg)
{
	struct sup_client *c = arg;
	c->cb->qr(c->arg, qr, valid_ms);
}

static void
ev_paired(struct wa_session *s, const char *jid, const struct wa_creds *cr, void *arg)
{
	struct sup_client *c = arg;
	c->cb->paired(c->arg, jid);
}

static void
ev_open(struct wa_session *s, const char *jid, const char *lid, const char *name, void *arg)
{
	struct sup_client *c = arg;
	c->cb->open(c->arg, jid, name);
}

static void
ev_closed(struct wa_session *s, const struct wa_session_close *why, void *arg)
{
	struct sup_client *c = arg;
	const struct sup_client_cb *cb = c->cb;
	void *a = c->arg;
	free(c);
	cb->closed(a, why);
}

static void
ev_message(struct wa_session *s, int64_t t, void *arg)
{
	struct sup_client *c = arg;
	c->cb->message(c->arg, t);
}

static void
ev_creds(struct wa_session *s, const struct wa_creds *cr, void *arg)
{
	struct sup_client *c = arg;
	char *blob = wa_creds_to_blob(cr);
	char phone[24] = "";
	uint64_t user;
	uint32_t dev;
	if (wa_creds_me(cr, &user, &dev) == 0)
		snprintf(phone, sizeof(phone), "%llu", (unsigned long long)user);
	c->cb->creds(c->arg, blob, phone[0] ? phone : NULL);
	wg_wipe(blob, strlen(blob));
	free(blob);
}

static void
ev_probe(struct wa_session *s, int ok, uint32_t rtt, void *arg)
{
	struct sup_client *c = arg;
	c->cb->probe(c->arg, ok, rtt);
}

static int
wa_open(void *ctx, const char *id, const char *auth_state, const struct sup_client_cb *cb, void *arg,
	struct sup_client **out)
{
	static const struct wa_session_events ev = {
		.on_qr = ev_qr,
		.on_paired = ev_paired,
		.on_open = ev_open,
		.on_closed = ev_closed,
		.on_message = ev_message,
		.on_creds = ev_creds,
		.on_probe = ev_probe,
	};
	struct sup_wa_ctx *w = ctx;
	struct wa_creds creds;
	if (auth_state != NULL) {
		char why[200];
		int r = wa_creds_from_blob(auth_state, strlen(auth_state), &creds, why, sizeof(why));
		if (r) {
			/* The reason names a field, never a value. */
			log_error(id, "stored credentials are unusable: %s", why);
			return r;
		}
	} else {
		wa_creds_generate(&creds);
	}
	struct sup_client *c = wg_calloc(1, sizeof(*c));
	c->cb = cb;
	c->arg = arg;
	struct wa_session_opts o = w->opts;
	o.id = id;
	/*
	 * A new device's keys stay in memory until the phone accepts them (then
	 * on_creds stores them): auth_state means "paired", which the start-up
	 * query relies on, and QR codes do not outlive this attempt anyway.
	 */
	int r = wa_session_open(w->base, &o, &creds, &ev, c, &c->s);
	wa_creds_free(&creds);
	if (r) {
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

static void
wa_close(struct sup_client *c)
{
	wa_session_close(c->s);
}

static int
wa_probe(struct sup_client *c)
{
	return wa_session_probe(c->s);
}

static int
wa_alive(const struct sup_client *c)
{
	return wa_session_alive(c->s);
}

const struct sup_client_ops sup_client_wa = {
	.open = wa_open,
	.close = wa_close,
	.probe = wa_probe,
	.alive = wa_alive,
};
