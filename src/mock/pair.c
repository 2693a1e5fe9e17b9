/*
 * The mock as the phone (docs/wa-protocol.md §5): it hands a registering
 * connection six refs for its QR code; POST /scan then plays the phone that
 * scanned one: it vouches for the companion's identity key with the phone's
 * account key (wa_adv_phone_sign), sends pair-success, checks the companion's
 * countersignature in pair-device-sign, records the device, and sends the 515
 * that makes the client log in again. The HTTP answer waits for the client's
 * reply, at most SCAN_TIMEOUT_MS.
 */
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/enc.h"
#include "core/log.h"
#include "core/mem.h"
#include "mock/mock_int.h"
#include "wa/adv.h"
#include "wa/crypto.h"
#include "wa/qr.h"

#define SERVER_JID "@s.whatsapp.net"
/* Clients answer pair-success at once; this only bounds a client that never does. */
#define SCAN_TIMEOUT_MS 10000

struct mock_scan {
	struct mock_conn *c;
	struct evhttp_request *req;        /* NULL once the HTTP client went away */
	struct event *timer;
	struct mock_device *dev;           /* reserved; pending until the reply verifies */
	char iq_id[24];
	uint32_t key_index;
	uint8_t identity_pub[32];          /* the companion's, from the QR */
	struct wg_buf issued;              /* the device-identity the phone sent, to check the reply */
};

void
mock__pair_start(struct mock_conn *c)
{
	char who[32];
	struct wa_arena a = {0};
	struct wa_node *iq = wa_node_new(&a, "iq");
	mock__iq_id(c->m, c->pair_iq_id);
	wa_node_set_attr(&a, iq, "from", SERVER_JID);
	wa_node_set_attr(&a, iq, "type", "set");
	wa_node_set_attr(&a, iq, "id", c->pair_iq_id);
	wa_node_set_attr(&a, iq, "xmlns", "md");
	struct wa_node *pd = wa_node_add_child(&a, iq, "pair-device");
	for (int i = 0; i < MOCK_NREFS; i++) {
		/* Opaque to clients; the "2@" prefix only mimics WhatsApp's refs. */
		uint8_t rnd[33];
		wa_random(rnd, sizeof(rnd));
		char *b64 = wg_b64_encode(rnd, sizeof(rnd));
		snprintf(c->refs[i], sizeof(c->refs[i]), "2@%s", b64);
		free(b64);
		struct wa_node *ref = wa_node_add_child(&a, pd, "ref");
		wa_node_set_bytes(&a, ref, c->refs[i], strlen(c->refs[i]));
	}
	if (mc_send_node(c, iq) == 0)
		log_info(mc_who(c, who), "pair-device sent (%d refs)", MOCK_NREFS);
	wa_arena_free(&a);
}

/* Answers the scan's HTTP request (if its client is still there) and forgets the scan. */
static void
scan_finish(struct mock_scan *s, int status, json_t *body)
{
	struct mock_conn *c = s->c;
	if (s->req != NULL) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(s->req);
		if (evcon != NULL)
			evhttp_connection_set_closecb(evcon, NULL, NULL);
		mock__reply_json(s->req, status, body);
	} else {
		json_decref(body);
	}
	if (s->dev != NULL && s->dev->pending)
		mock__store_remove(&c->m->store, s->dev);
	event_free(s->timer);
	c->scan = NULL;
	wg_buf_free(&s->issued);
	free(s);
}

static void
scan_fail(struct mock_scan *s, int status, const char *msg)
{
	char who[32];
	log_warn(mc_who(s->c, who), "pairing failed: %s", msg);
	scan_finish(s, status, json_pack("{s:s}", "error", msg));
}

void
mock__pair_conn_gone(struct mock_conn *c, const char *why)
{
	if (c->scan == NULL)
		return;
	char msg[128];
	snprintf(msg, sizeof(msg), "no answer to pair-success: %s", why);
	scan_fail(c->scan, 502, msg);
}

static void
on_scan_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mock_scan *s = arg;
	struct mock_conn *c = s->c;
	scan_fail(s, 504, "the client did not answer pair-success in time");
	mc_close(c, 1000, "pairing timed out");
}

static void
on_http_close(struct evhttp_connection *evcon, void *arg)
{
	struct mock_scan *s = arg;
	s->req = NULL;
}

void
mock__pair_reply(struct mock_conn *c, const struct wa_node *n)
{
	struct mock_scan *s = c->scan;
	const char *id = wa_node_attr(n, "id"), *type = wa_node_attr(n, "type");
	if (s == NULL || id == NULL || strcmp(id, s->iq_id) != 0)
		return;
	char msg[160], who[32];
	if (type != NULL && strcmp(type, "error") == 0) {
		const struct wa_node *e = wa_node_child(n, "error");
		const char *code = e ? wa_node_attr(e, "code") : NULL;
		const char *text = e ? wa_node_attr(e, "text") : NULL;
		snprintf(msg, sizeof(msg), "the client rejected pair-success: error %.16s %.64s",
			 code ? code : "?", text ? text : "");
		scan_fail(s, 502, msg);
		mc_close(c, 1000, "pairing rejected by the client");
		return;
	}
	const struct wa_node *sign = wa_node_child(n, "pair-device-sign");
	const struct wa_node *di = sign ? wa_node_child(sign, "device-identity") : NULL;
	const char *ki = di ? wa_node_attr(di, "key-index") : NULL;
	char want[16];
	snprintf(want, sizeof(want), "%u", s->key_index);
	uint32_t got_index = 0;
	const char *why = NULL;
	if (di == NULL || di->kind != WA_CONTENT_BYTES)
		why = "no pair-device-sign/device-identity bytes in the reply";
	else if (ki == NULL || strcmp(ki, want) != 0)
		why = "device-identity key-index is not the one the phone sent";
	else if (wa_adv_phone_check_reply(di->c.bytes, di->len, s->issued.data, s->issued.len,
					  s->identity_pub, s->dev->phone->account_pub, &got_index,
					  &why) != 0)
		; /* why is set */
	else if (got_index != s->key_index)
		why = "the signed details carry another key index";
	if (why != NULL) {
		snprintf(msg, sizeof(msg), "bad pair-device-sign: %s", why);
		scan_fail(s, 502, msg);
		mc_close(c, 1000, "pairing reply rejected");
		return;
	}
	struct mock_device *d = s->dev;
	d->pending = false;
	memcpy(d->noise_pub, c->noise_pub, 32);
	memcpy(d->identity_pub, s->identity_pub, 32);
	d->key_index = s->key_index;
	d->paired_at = wg_wall_ms();
	d->prekeys = 0;
	char err[256] = "";
	if (mock__store_save(&c->m->store, err, sizeof(err)))
		log_error(mc_who(c, who), "saving state: %s", err);
	free(c->jid);
	free(c->lid);
	c->jid = wg_strdup(d->jid);
	c->lid = wg_strdup(d->lid);
	log_info(mc_who(c, who), "paired %s", d->jid);
	scan_finish(s, 200,
		    json_pack("{s:b, s:s, s:s, s:I}", "ok", 1, "jid", d->jid, "lid", d->lid,
			      "connection", (json_int_t)c->id));
	mc_enter(c, MC_PAIRED, "pair-device-sign verified");
}

static struct mock_conn *
find_ref(struct mock *m, const struct wa_qr *qr, bool *other_key)
{
	struct mock_conn *c;
	*other_key = false;
	TAILQ_FOREACH(c, &m->conns, link)
		for (int i = 0; i < MOCK_NREFS; i++)
			if (c->refs[i][0] && strcmp(c->refs[i], qr->ref) == 0) {
				if (memcmp(c->noise_pub, qr->noise_pub, 32) == 0)
					return c;
				*other_key = true;
			}
	return NULL;
}

void
mock__scan(struct mock *m, struct evhttp_request *req, const char *qrtext, const char *phone,
	   const char *name)
{
	struct wa_qr qr;
	if (wa_qr_parse(qrtext, &qr) != 0) {
		mock__reply_error(req, 400, "qr is not a pairing QR code (ref,noise,identity,adv[,type])");
		return;
	}
	if (!mock__phone_valid(phone)) {
		mock__reply_error(req, 400, "phone must be 5 to 20 digits, not starting with 0");
		return;
	}
	bool other_key;
	struct mock_conn *c = find_ref(m, &qr, &other_key);
	if (c == NULL) {
		mock__reply_error(req, 404,
				  other_key ? "the connection sent that ref has another noise key"
					    : "no live connection was sent that ref");
		return;
	}
	if (c->state != MC_REGISTER || c->scan != NULL) {
		char msg[96];
		snprintf(msg, sizeof(msg), "connection %llu is %s, not waiting for a scan",
			 (unsigned long long)c->id, mock__state_name(c->state));
		mock__reply_error(req, 409, msg);
		return;
	}
	struct mock_phone *p = mock__store_phone(&m->store, phone, true);
	struct mock_device *d = p ? mock__store_reserve(&m->store, p) : NULL;
	if (d == NULL) {
		mock__reply_error(req, 409, "no free device number for that phone");
		return;
	}
	uint32_t key_index = p->key_index + 1;
	struct wg_buf ident = {0};
	if (wa_adv_phone_sign(p->account_priv, p->account_pub, qr.identity_pub, qr.adv_secret,
			      key_index, wg_wall_ms() / 1000, &ident) != 0) {
		wg_buf_free(&ident);
		mock__store_remove(&m->store, d);
		mock__reply_error(req, 500, "signing the device identity failed");
		return;
	}
	p->key_index = key_index;

	struct mock_scan *s = wg_calloc(1, sizeof(*s));
	s->c = c;
	s->req = req;
	s->dev = d;
	s->key_index = key_index;
	memcpy(s->identity_pub, qr.identity_pub, 32);
	mock__iq_id(m, s->iq_id);

	char t[24], kis[16];
	snprintf(t, sizeof(t), "%llu", (unsigned long long)(wg_wall_ms() / 1000));
	snprintf(kis, sizeof(kis), "%u", key_index);
	struct wa_arena a = {0};
	struct wa_node *iq = wa_node_new(&a, "iq");
	wa_node_set_attr(&a, iq, "from", SERVER_JID);
	wa_node_set_attr(&a, iq, "type", "set");
	wa_node_set_attr(&a, iq, "id", s->iq_id);
	wa_node_set_attr(&a, iq, "xmlns", "md");
	wa_node_set_attr(&a, iq, "t", t);
	struct wa_node *ps = wa_node_add_child(&a, iq, "pair-success");
	struct wa_node *di = wa_node_add_child(&a, ps, "device-identity");
	wa_node_set_attr(&a, di, "key-index", kis);
	wa_node_set_bytes(&a, di, ident.data, ident.len);
	wa_node_set_attr(&a, wa_node_add_child(&a, ps, "platform"), "name", "android");
	struct wa_node *dev = wa_node_add_child(&a, ps, "device");
	wa_node_set_attr(&a, dev, "jid", d->jid);
	wa_node_set_attr(&a, dev, "lid", d->lid);
	if (name != NULL)
		wa_node_set_attr(&a, wa_node_add_child(&a, ps, "biz"), "name", name);
	int r = mc_send_node(c, iq);
	wa_arena_free(&a);
	s->issued = ident; /* kept until the reply is checked */

	c->scan = s;
	s->timer = evtimer_new(m->base, on_scan_timeout, s);
	if (r != 0) {
		scan_fail(s, 502, "could not send pair-success to the connection");
		return;
	}
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon != NULL)
		evhttp_connection_set_closecb(evcon, on_http_close, s);
	struct timeval tv = {SCAN_TIMEOUT_MS / 1000, (SCAN_TIMEOUT_MS % 1000) * 1000};
	evtimer_add(s->timer, &tv);
	char why[96];
	snprintf(why, sizeof(why), "pair-success sent for %s", d->jid);
	mc_enter(c, MC_PAIRING, why);
}
