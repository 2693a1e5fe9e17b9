/*
 * The session client. See session.h for the contract and docs/session.md for
 * the protocol steps and the table of close reasons.
 */
#include "client/session.h"

#include <event2/event.h>
#include <signal_protocol.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/duration.h"
#include "core/enc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/mem.h"
#include "net/ws.h"
#include "wa/adv.h"
#include "wa/cert.h"
#include "wa/frame.h"
#include "wa/node.h"
#include "wa/noise.h"
#include "wa/payload.h"
#include "wa/qr.h"

#define WA_DEFAULT_URL "wss://web.whatsapp.com/ws/chat"

/*
 * What a server may send before the handshake is done: its ServerHello (a few
 * hundred bytes with the certificate chain). A hostile server could otherwise
 * make each session buffer 16 MiB before proving anything.
 */
#define WA_HANDSHAKE_MAX (64 * 1024)

/* Pre-keys: upload a batch when the server holds fewer than the minimum. */
#define PREKEY_MIN 5
#define PREKEY_BATCH 30
#define MAX_REFS 16
#define MAX_PENDING 8

/*
 * One state per session; sess_enter() is the only place that changes it.
 *   connecting → handshake → pairing | login → setup → open → closing → closed
 * pairing ends with the server's 515: the session reconnects by itself
 * (restart) and logs in; that restart is part of pairing, not a failure.
 */
enum sess_state {
	SS_CONNECTING,
	SS_HANDSHAKE,
	SS_PAIRING,
	SS_LOGIN,
	SS_SETUP,
	SS_OPEN,
	SS_CLOSING,
	SS_CLOSED,
};

static const char *state_names[] = {"connecting", "handshake", "pairing", "login",
				    "setup",      "open",      "closing", "closed"};

enum iq_kind { IQ_NONE, IQ_PING, IQ_PROBE, IQ_COUNT, IQ_UPLOAD, IQ_PASSIVE };

struct pending_iq {
	enum iq_kind kind;
	char id[24];
	uint64_t sent_at;
};

struct wa_session {
	struct event_base *base;
	struct wa_session_opts o;
	char *url, *id;
	struct wa_creds creds;
	struct wa_session_events ev;
	void *arg;
	enum sess_state state;
	struct ws_conn *ws;
	struct wa_noise *noise;
	struct wa_frame_reader rd;
	int restart_pending; /* pair-success seen: the 515 that follows reconnects */
	/* why it closed: the first decided reason wins */
	int have_reason;
	struct wa_session_close why;
	char why_text[160];
	/* pairing */
	char *refs[MAX_REFS];
	size_t nrefs, ref_idx;
	/* timers, each with one callback */
	struct event *t_keepalive, *t_deadline, *t_qr, *t_step, *t_probe, *t_finish;
	/* iq bookkeeping */
	char iq_prefix[9];
	uint32_t iq_seq;
	struct pending_iq pend[MAX_PENDING];
	int sent_available;
	int creds_dirty;
	struct wa_prekey *upload; /* keys of the batch being uploaded */
	size_t nupload;
};

static void sess_connect(struct wa_session *s);

const char *
wa_close_reason_name(enum wa_close_reason r)
{
	static const char *names[] = {"transient",        "restart_required", "logged_out",
				      "replaced",         "temp_banned",      "client_outdated",
				      "protocol_error",   "qr_timeout",       "keepalive_timeout",
				      "closed_by_us"};
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

void
wa_session_defaults(struct wa_session_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->url = WA_DEFAULT_URL;
	memcpy(o->root_pub, wa_cert_whatsapp_root(), 32);
	o->dict = 3;
	o->keepalive_min_ms = 20000;
	o->keepalive_max_ms = 30000;
	o->keepalive_timeout_ms = 10000;
	o->qr_first_ms = 60000;
	o->qr_next_ms = 20000;
	o->connect_timeout_ms = 20000;
	o->login_timeout_ms = 60000;
}

int
wa_session_opts_from_env(struct wa_session_opts *o, char *why, size_t whylen)
{
	const char *url = getenv("WAGATE_WA_URL");
	if (url != NULL && url[0] != '\0') {
		if (strncmp(url, "ws://", 5) != 0 && strncmp(url, "wss://", 6) != 0) {
			snprintf(why, whylen, "WAGATE_WA_URL must start with ws:// or wss://");
			return WG_EINVAL;
		}
		o->url = url;
	}
	if (wa_cert_root_from_env(o->root_pub) != 0) {
		snprintf(why, whylen, "WAGATE_WA_ROOT_PUBKEY must be 64 hex digits");
		return WG_EINVAL;
	}
	uint64_t ms;
	int r = wg_duration_env("WAGATE_KEEPALIVE_INTERVAL", &ms);
	if (r == 0 && ms >= 100 && ms <= 3600000) {
		o->keepalive_min_ms = o->keepalive_max_ms = (uint32_t)ms;
	} else if (r != 1) {
		snprintf(why, whylen,
			 "WAGATE_KEEPALIVE_INTERVAL must be a duration from 100ms to 1h (e.g. 25s)");
		return WG_EINVAL;
	}
	static const struct {
		const char *name;
		size_t off;
	} qr[] = {{"WAGATE_QR_FIRST", offsetof(struct wa_session_opts, qr_first_ms)},
		  {"WAGATE_QR_NEXT", offsetof(struct wa_session_opts, qr_next_ms)}};
	for (size_t i = 0; i < sizeof(qr) / sizeof(qr[0]); i++) {
		r = wg_duration_env(qr[i].name, &ms);
		if (r == 0 && ms >= 100 && ms <= 600000) {
			*(uint32_t *)((char *)o + qr[i].off) = (uint32_t)ms;
		} else if (r != 1) {
			snprintf(why, whylen, "%s must be a duration from 100ms to 10m (e.g. 20s)",
				 qr[i].name);
			return WG_EINVAL;
		}
	}
	r = wg_duration_env("WAGATE_KEEPALIVE_TIMEOUT", &ms);
	if (r == 0 && ms >= 100 && ms <= 600000) {
		o->keepalive_timeout_ms = (uint32_t)ms;
	} else if (r != 1) {
		snprintf(why, whylen,
			 "WAGATE_KEEPALIVE_TIMEOUT must be a duration from 100ms to 10m (e.g. 10s)");
		return WG_EINVAL;
	}
	return 0;
}

/* Every session's keepalive round trips, for GET /metrics (wa_session_keepalive_rtt). */
static struct wg_hist keepalive_rtt = {.bounds = wg_hist_latency, .n = WG_HIST_LATENCY_N};

const struct wg_hist *
wa_session_keepalive_rtt(void)
{
	return &keepalive_rtt;
}

/* ---- timers ---- */

static void
arm(struct event *ev, uint32_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(ev, &tv);
}

static void
disarm_all(struct wa_session *s)
{
	struct event *t[] = {s->t_keepalive, s->t_deadline, s->t_qr, s->t_step, s->t_probe};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		evtimer_del(t[i]);
}

/* ---- state ---- */

static void
sess_enter(struct wa_session *s, enum sess_state st, const char *why)
{
	if (s->state == st)
		return;
	/*
	 * The steps of a login are debug lines: at 10,000 sessions, five lines per
	 * login cost more than the login's crypto. The supervisor logs the outcome
	 * at info; pairing and every close stay at info.
	 */
	if (st == SS_OPEN || st == SS_PAIRING)
		ws_set_background(s->ws, false); /* logged in (or showing QR codes): prompt again */
	if (st == SS_PAIRING || st == SS_CLOSING || st == SS_CLOSED)
		log_info(s->id, "%s -> %s (%s)", state_names[s->state], state_names[st], why);
	else
		log_debug(s->id, "%s -> %s (%s)", state_names[s->state], state_names[st], why);
	s->state = st;
	switch (st) {
	case SS_CONNECTING:
		arm(s->t_step, s->o.login_timeout_ms);
		break;
	case SS_PAIRING:
		/* The QR refs set the pace from here. */
		evtimer_del(s->t_step);
		break;
	case SS_OPEN:
		evtimer_del(s->t_step);
		break;
	case SS_CLOSING:
	case SS_CLOSED:
		disarm_all(s);
		break;
	default:
		break;
	}
}

/*
 * Decides why the session ends and starts closing. The first reason wins: a
 * stream error followed by the server dropping the socket is one close.
 * hard drops the socket at once (the peer is gone or misbehaving); otherwise a
 * WebSocket close is sent.
 */
static void
sess_fail(struct wa_session *s, enum wa_close_reason r, int code, const char *text, int hard)
{
	if (s->state == SS_CLOSING || s->state == SS_CLOSED)
		return;
	if (!s->have_reason) {
		s->have_reason = 1;
		s->why.reason = r;
		s->why.code = code;
		snprintf(s->why_text, sizeof(s->why_text), "%s", text);
		s->why.text = s->why_text;
	}
	sess_enter(s, SS_CLOSING, text);
	if (s->ws == NULL)
		return;
	if (hard)
		ws_abort(s->ws, false);
	else
		ws_close(s->ws, 1000, text);
}

/* ---- sending ---- */

static int
send_node(struct wa_session *s, const struct wa_node *n)
{
	if (s->ws == NULL || s->noise == NULL || !wa_noise_is_transport(s->noise))
		return WG_ESTATE;
	struct wg_buf plain = {0}, out = {0};
	wg_buf_push(&plain, 0x00);
	int r = wa_node_encode(wa_dict_get(s->o.dict), n, &plain);
	if (r == 0)
		r = wa_noise_encrypt_frame(s->noise, plain.data, plain.len, &out);
	if (r == 0)
		r = ws_send(s->ws, out.data, out.len);
	wg_buf_free(&plain);
	wg_buf_free(&out);
	if (r)
		log_warn(s->id, "cannot send <%s>: %s", n->tag.p, wg_strerror(r));
	return r;
}

/* A new iq addressed to the server, registered as pending under kind. */
static struct wa_node *
new_iq(struct wa_session *s, struct wa_arena *a, enum iq_kind kind, const char *type,
       const char *xmlns)
{
	char id[24];
	snprintf(id, sizeof(id), "%s.%u", s->iq_prefix, ++s->iq_seq);
	struct wa_node *iq = wa_node_new(a, "iq");
	wa_node_set_attr(a, iq, "id", id);
	wa_node_set_attr(a, iq, "to", "@s.whatsapp.net");
	wa_node_set_attr(a, iq, "type", type);
	wa_node_set_attr(a, iq, "xmlns", xmlns);
	struct pending_iq *slot = &s->pend[0];
	for (size_t i = 0; i < MAX_PENDING; i++) {
		if (s->pend[i].kind == IQ_NONE) {
			slot = &s->pend[i];
			break;
		}
		if (s->pend[i].sent_at < slot->sent_at)
			slot = &s->pend[i];
	}
	slot->kind = kind;
	snprintf(slot->id, sizeof(slot->id), "%s", id);
	slot->sent_at = wg_now_ms();
	return iq;
}

static struct pending_iq *
take_pending(struct wa_session *s, const char *id)
{
	for (size_t i = 0; i < MAX_PENDING; i++)
		if (s->pend[i].kind != IQ_NONE && strcmp(s->pend[i].id, id) == 0)
			return &s->pend[i];
	return NULL;
}

static void
send_ping(struct wa_session *s, enum iq_kind kind)
{
	struct wa_arena a = {0};
	struct wa_node *iq = new_iq(s, &a, kind, "get", "w:p");
	send_node(s, iq);
	wa_arena_free(&a);
}

static void
send_presence(struct wa_session *s)
{
	if (s->creds.push_name == NULL)
		return; /* WhatsApp refuses presence without a name, as both reference clients know */
	struct wa_arena a = {0};
	struct wa_node *p = wa_node_new(&a, "presence");
	wa_node_set_attr(&a, p, "type", "available");
	wa_node_set_attr(&a, p, "name", s->creds.push_name);
	if (send_node(s, p) == 0)
		s->sent_available = 1;
	wa_arena_free(&a);
}

/* ---- keepalive ---- */

static uint32_t
keepalive_interval(const struct wa_session *s)
{
	uint32_t lo = s->o.keepalive_min_ms, hi = s->o.keepalive_max_ms;
	if (hi <= lo)
		return lo;
	uint32_t r;
	wa_random((uint8_t *)&r, sizeof(r));
	return lo + r % (hi - lo + 1);
}

/*
 * The next ping, on a grid of the monotonic clock: the pings of the sessions
 * due in the same tenth of a second go out in one loop turn, so the process
 * wakes once for all of them (an idle gateway's CPU is mostly wakeups). The
 * interval stays random per ping; it only ends on the grid.
 */
#define KEEPALIVE_GRID_MS 100

static void
arm_keepalive(struct wa_session *s)
{
	uint32_t d = keepalive_interval(s);
	if (d >= 10 * KEEPALIVE_GRID_MS) {
		uint64_t now = wg_now_ms(), at = now + d;
		at += (KEEPALIVE_GRID_MS - at % KEEPALIVE_GRID_MS) % KEEPALIVE_GRID_MS;
		d = (uint32_t)(at - now);
	}
	arm(s->t_keepalive, d);
}

static void
on_keepalive(evutil_socket_t fd, short what, void *arg)
{
	struct wa_session *s = arg;
	send_ping(s, IQ_PING);
	arm(s->t_deadline, s->o.keepalive_timeout_ms);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct wa_session *s = arg;
	/* The peer is gone or deaf: do not wait for a close handshake it will not answer. */
	if (s->rd.in_frame)
		sess_fail(s, WA_CLOSE_KEEPALIVE_TIMEOUT, 408,
		          "a frame stopped half-way: nothing more of it came in time", 1);
	else
		sess_fail(s, WA_CLOSE_KEEPALIVE_TIMEOUT, 408, "keepalive ping not answered in time", 1);
}

static void
on_probe_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct wa_session *s = arg;
	for (size_t i = 0; i < MAX_PENDING; i++)
		if (s->pend[i].kind == IQ_PROBE)
			s->pend[i].kind = IQ_NONE;
	if (s->ev.on_probe)
		s->ev.on_probe(s, 0, 0, s->arg);
}

static void
on_step_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct wa_session *s = arg;
	sess_fail(s, WA_CLOSE_TRANSIENT, 408, "login did not complete in time", 1);
}

/* ---- pairing ---- */

static void
show_qr(struct wa_session *s, uint32_t valid_ms)
{
	char qr[512];
	if (wa_qr_format(s->refs[s->ref_idx], s->creds.noise.pub, s->creds.identity.pub,
			 s->creds.adv_secret, "1", qr, sizeof(qr)) < 0) {
		sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 400, "server sent an unusable pairing ref", 0);
		return;
	}
	arm(s->t_qr, valid_ms);
	if (s->ev.on_qr)
		s->ev.on_qr(s, qr, valid_ms, s->arg);
	wg_wipe(qr, sizeof(qr));
}

static void
on_qr_timer(evutil_socket_t fd, short what, void *arg)
{
	struct wa_session *s = arg;
	if (++s->ref_idx >= s->nrefs) {
		sess_fail(s, WA_CLOSE_QR_TIMEOUT, 408, "QR codes expired without a scan", 0);
		return;
	}
	show_qr(s, s->o.qr_next_ms);
}

static void
reply_result(struct wa_session *s, const struct wa_node *iq)
{
	struct wa_arena a = {0};
	struct wa_node *r = wa_node_new(&a, "iq");
	wa_node_set_attr(&a, r, "to", "@s.whatsapp.net");
	wa_node_set_attr(&a, r, "type", "result");
	wa_node_set_attr(&a, r, "id", wa_node_attr(iq, "id"));
	send_node(s, r);
	wa_arena_free(&a);
}

static void
handle_pair_device(struct wa_session *s, const struct wa_node *iq, const struct wa_node *pd)
{
	reply_result(s, iq);
	if (s->state != SS_PAIRING || s->nrefs > 0)
		return; /* a second batch on the same connection is ignored */
	for (uint32_t i = 0; pd->kind == WA_CONTENT_LIST && i < pd->len && s->nrefs < MAX_REFS; i++) {
		const struct wa_node *ref = pd->c.children[i];
		if (strcmp(ref->tag.p, "ref") != 0 || ref->kind == WA_CONTENT_NONE ||
		    ref->kind == WA_CONTENT_LIST || ref->len == 0 || ref->len > 200)
			continue;
		s->refs[s->nrefs++] = wg_strndup((const char *)ref->c.bytes, ref->len);
	}
	if (s->nrefs == 0) {
		sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 400, "pair-device without refs", 0);
		return;
	}
	s->ref_idx = 0;
	show_qr(s, s->o.qr_first_ms);
}

static void
set_str(char **dst, const char *v)
{
	if (v == NULL)
		return;
	free(*dst);
	*dst = wg_strdup(v);
}

static void
handle_pair_success(struct wa_session *s, const struct wa_node *iq, const struct wa_node *ps)
{
	const struct wa_node *di = wa_node_child(ps, "device-identity");
	const struct wa_node *dev = wa_node_child(ps, "device");
	const struct wa_node *plat = wa_node_child(ps, "platform");
	const struct wa_node *biz = wa_node_child(ps, "biz");
	const char *jid = dev ? wa_node_attr(dev, "jid") : NULL;
	if (s->state != SS_PAIRING || di == NULL || di->kind != WA_CONTENT_BYTES || jid == NULL) {
		sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 400, "malformed pair-success", 0);
		return;
	}
	struct wg_buf account = {0}, reply = {0};
	uint32_t key_index = 0;
	const char *why = NULL;
	int r = wa_adv_companion_accept(di->c.bytes, di->len, s->creds.adv_secret,
					s->creds.identity.priv, s->creds.identity.pub, &account,
					&reply, &key_index, &why);
	struct wa_arena a = {0};
	struct wa_node *res = wa_node_new(&a, "iq");
	wa_node_set_attr(&a, res, "to", "@s.whatsapp.net");
	wa_node_set_attr(&a, res, "id", wa_node_attr(iq, "id"));
	if (r) {
		/* Tell the phone why, as the reference clients do, then give up on this pairing. */
		wa_node_set_attr(&a, res, "type", "error");
		struct wa_node *e = wa_node_add_child(&a, res, "error");
		wa_node_set_attr(&a, e, "code", r == WG_ECRYPTO ? "401" : "500");
		wa_node_set_attr(&a, e, "text", r == WG_ECRYPTO ? "hmac-mismatch" : "internal-error");
		send_node(s, res);
		wa_arena_free(&a);
		wg_buf_free(&account);
		wg_buf_free(&reply);
		char text[160];
		snprintf(text, sizeof(text), "pairing rejected: %s", why ? why : "bad identity");
		sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 401, text, 0);
		return;
	}
	wa_node_set_attr(&a, res, "type", "result");
	struct wa_node *sign = wa_node_add_child(&a, res, "pair-device-sign");
	struct wa_node *id = wa_node_add_child(&a, sign, "device-identity");
	char ki[16];
	snprintf(ki, sizeof(ki), "%u", key_index);
	wa_node_set_attr(&a, id, "key-index", ki);
	wa_node_set_bytes(&a, id, reply.data, reply.len);
	send_node(s, res);
	wa_arena_free(&a);

	set_str(&s->creds.me_jid, jid);
	set_str(&s->creds.me_lid, wa_node_attr(dev, "lid"));
	if (plat)
		set_str(&s->creds.platform, wa_node_attr(plat, "name"));
	if (biz)
		set_str(&s->creds.push_name, wa_node_attr(biz, "name"));
	free(s->creds.account);
	s->creds.account = wg_memdup(account.data, account.len);
	s->creds.account_len = account.len;
	wg_buf_free(&account);
	wg_buf_free(&reply);
	evtimer_del(s->t_qr);
	arm(s->t_step, s->o.login_timeout_ms);
	s->restart_pending = 1;
	char masked[WG_MASKED_MAX];
	log_info(s->id, "paired as %s", wg_mask_phone(masked, jid));
	if (s->ev.on_creds)
		s->ev.on_creds(s, &s->creds, s->arg);
	if (s->ev.on_paired)
		s->ev.on_paired(s, jid, &s->creds, s->arg);
}

/* ---- login ---- */

static void
send_passive(struct wa_session *s)
{
	struct wa_arena a = {0};
	struct wa_node *iq = new_iq(s, &a, IQ_PASSIVE, "set", "passive");
	wa_node_add_child(&a, iq, "active");
	send_node(s, iq);
	wa_arena_free(&a);
}

static void
put_be(uint8_t *p, uint32_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Generates a batch of one-time pre-keys with libsignal and uploads their public halves. */
static void
upload_prekeys(struct wa_session *s)
{
	signal_context *ctx = wa_crypto_signal_context();
	free(s->upload);
	s->upload = wg_calloc(PREKEY_BATCH, sizeof(*s->upload));
	s->nupload = 0;
	for (int i = 0; i < PREKEY_BATCH; i++) {
		ec_key_pair *pair = NULL;
		signal_buffer *pub = NULL, *priv = NULL;
		if (curve_generate_key_pair(ctx, &pair) == 0 &&
		    ec_public_key_serialize(&pub, ec_key_pair_get_public(pair)) == 0 &&
		    ec_private_key_serialize(&priv, ec_key_pair_get_private(pair)) == 0 &&
		    signal_buffer_len(pub) == 33 && signal_buffer_len(priv) == 32) {
			struct wa_prekey *k = &s->upload[s->nupload++];
			k->id = (s->creds.next_prekey_id + (uint32_t)i) & 0xFFFFFF;
			memcpy(k->kp.pub, signal_buffer_data(pub) + 1, 32);
			memcpy(k->kp.priv, signal_buffer_data(priv), 32);
		}
		if (priv)
			signal_buffer_bzero_free(priv);
		signal_buffer_free(pub);
		SIGNAL_UNREF(pair);
	}
	if (s->nupload == 0) {
		log_warn(s->id, "cannot generate pre-keys; continuing without an upload");
		send_passive(s);
		return;
	}
	struct wa_arena a = {0};
	struct wa_node *iq = new_iq(s, &a, IQ_UPLOAD, "set", "encrypt");
	uint8_t reg[4], id3[3];
	put_be(reg, s->creds.registration_id, 4);
	wa_node_set_bytes(&a, wa_node_add_child(&a, iq, "registration"), reg, 4);
	wa_node_set_bytes(&a, wa_node_add_child(&a, iq, "type"), "\x05", 1);
	wa_node_set_bytes(&a, wa_node_add_child(&a, iq, "identity"), s->creds.identity.pub, 32);
	struct wa_node *list = wa_node_add_child(&a, iq, "list");
	for (size_t i = 0; i < s->nupload; i++) {
		struct wa_node *key = wa_node_add_child(&a, list, "key");
		put_be(id3, s->upload[i].id, 3);
		wa_node_set_bytes(&a, wa_node_add_child(&a, key, "id"), id3, 3);
		wa_node_set_bytes(&a, wa_node_add_child(&a, key, "value"), s->upload[i].kp.pub, 32);
	}
	struct wa_node *skey = wa_node_add_child(&a, iq, "skey");
	put_be(id3, s->creds.signed_prekey_id, 3);
	wa_node_set_bytes(&a, wa_node_add_child(&a, skey, "id"), id3, 3);
	wa_node_set_bytes(&a, wa_node_add_child(&a, skey, "value"), s->creds.signed_prekey.pub, 32);
	wa_node_set_bytes(&a, wa_node_add_child(&a, skey, "signature"), s->creds.signed_prekey_sig,
			  64);
	send_node(s, iq);
	wa_arena_free(&a);
}

static void
prekeys_uploaded(struct wa_session *s)
{
	size_t keep = s->creds.nprekeys + s->nupload;
	if (keep > WA_CREDS_MAX_PREKEYS)
		keep = WA_CREDS_MAX_PREKEYS;
	struct wa_prekey *all = wg_calloc(keep, sizeof(*all));
	/* The newest keys are kept when the store is full; old ones were used up first. */
	size_t from_old = keep - s->nupload;
	if (from_old)
		memcpy(all, s->creds.prekeys + (s->creds.nprekeys - from_old), from_old * sizeof(*all));
	memcpy(all + from_old, s->upload, s->nupload * sizeof(*all));
	if (s->creds.prekeys) {
		wg_wipe(s->creds.prekeys, s->creds.nprekeys * sizeof(*all));
		free(s->creds.prekeys);
	}
	s->creds.prekeys = all;
	s->creds.nprekeys = keep;
	s->creds.next_prekey_id = (s->creds.next_prekey_id + (uint32_t)s->nupload) & 0xFFFFFF;
	wg_wipe(s->upload, s->nupload * sizeof(*s->upload));
	free(s->upload);
	s->upload = NULL;
	s->nupload = 0;
	s->creds_dirty = 1;
}

static void
handle_success(struct wa_session *s, const struct wa_node *n)
{
	if (s->state != SS_LOGIN) {
		sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 400, "unexpected success stanza", 0);
		return;
	}
	const char *lid = wa_node_attr(n, "lid");
	if (lid != NULL && (s->creds.me_lid == NULL || strcmp(lid, s->creds.me_lid) != 0)) {
		set_str(&s->creds.me_lid, lid);
		s->creds_dirty = 1;
	}
	sess_enter(s, SS_SETUP, "login accepted");
	struct wa_arena a = {0};
	struct wa_node *iq = new_iq(s, &a, IQ_COUNT, "get", "encrypt");
	wa_node_add_child(&a, iq, "count");
	send_node(s, iq);
	wa_arena_free(&a);
}

static void
become_open(struct wa_session *s)
{
	sess_enter(s, SS_OPEN, "pre-keys and passive done");
	if (s->creds_dirty) {
		s->creds_dirty = 0;
		if (s->ev.on_creds)
			s->ev.on_creds(s, &s->creds, s->arg);
	}
	send_presence(s);
	if (s->ev.on_open)
		s->ev.on_open(s, s->creds.me_jid, s->creds.me_lid, s->creds.push_name, s->arg);
}

static void
handle_iq_reply(struct wa_session *s, struct pending_iq *p, const struct wa_node *n)
{
	enum iq_kind kind = p->kind;
	uint64_t sent = p->sent_at;
	int ok = strcmp(wa_node_attr(n, "type"), "result") == 0;
	p->kind = IQ_NONE;
	switch (kind) {
	case IQ_PING:
		evtimer_del(s->t_deadline);
		wg_hist_observe_ns(&keepalive_rtt, (wg_now_ms() - sent) * 1000000u);
		arm_keepalive(s);
		break;
	case IQ_PROBE:
		evtimer_del(s->t_probe);
		if (s->ev.on_probe)
			s->ev.on_probe(s, ok, (uint32_t)(wg_now_ms() - sent), s->arg);
		break;
	case IQ_COUNT: {
		const struct wa_node *c = wa_node_child(n, "count");
		const char *v = c ? wa_node_attr(c, "value") : NULL;
		long count = v ? strtol(v, NULL, 10) : -1;
		if (!ok || v == NULL) {
			sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 400, "pre-key count query failed", 0);
			return;
		}
		if (count < PREKEY_MIN)
			upload_prekeys(s);
		else
			send_passive(s);
		break;
	}
	case IQ_UPLOAD:
		if (ok)
			prekeys_uploaded(s);
		else
			log_warn(s->id, "pre-key upload refused by the server");
		send_passive(s);
		break;
	case IQ_PASSIVE:
		if (!ok) {
			sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 400, "server refused <active/>", 0);
			return;
		}
		become_open(s);
		break;
	case IQ_NONE:
		break;
	}
}

/* ---- closes from the server ---- */

static void
fail_with_code(struct wa_session *s, int code, const char *what, int64_t ban_expires)
{
	enum wa_close_reason r;
	switch (code) {
	case 401:
	case 403:
	case 406:
		r = WA_CLOSE_LOGGED_OUT;
		break;
	case 402:
		r = WA_CLOSE_TEMP_BANNED;
		break;
	case 405:
		r = WA_CLOSE_CLIENT_OUTDATED;
		break;
	case 440:
		r = WA_CLOSE_REPLACED;
		break;
	case 515:
		r = WA_CLOSE_RESTART_REQUIRED;
		break;
	default:
		r = WA_CLOSE_TRANSIENT;
		break;
	}
	char text[160];
	snprintf(text, sizeof(text), "%s %d", what, code);
	if (r == WA_CLOSE_TEMP_BANNED)
		s->why.ban_expires = ban_expires;
	sess_fail(s, r, code, text, 0);
}

static int
code_attr(const struct wa_node *n, const char *key, int dflt)
{
	const char *v = wa_node_attr(n, key);
	if (v == NULL)
		return dflt;
	char *end;
	long c = strtol(v, &end, 10);
	return (*end == '\0' && c > 0 && c < 10000) ? (int)c : dflt;
}

static void
handle_stream_error(struct wa_session *s, const struct wa_node *n)
{
	int code = code_attr(n, "code", 0);
	const struct wa_node *first = wa_node_first_child(n);
	if (code == 0) {
		/* No code: a conflict means another client took over; anything else is a bad session. */
		code = first && strcmp(first->tag.p, "conflict") == 0 ? 440 : 500;
	}
	if (code == 515 && s->restart_pending) {
		/* The restart that completes pairing: reconnect and log in, reporting nothing. */
		log_info(s->id, "restart after pairing");
		sess_enter(s, SS_CLOSING, "restart after pairing");
		ws_close(s->ws, 1000, "restart");
		return;
	}
	fail_with_code(s, code, "stream error", 0);
}

static void
handle_failure(struct wa_session *s, const struct wa_node *n)
{
	int code = code_attr(n, "reason", 500);
	int64_t expires = 0;
	if (code == 402) {
		int secs = code_attr(n, "expire", 0);
		if (secs > 0)
			expires = (int64_t)(wg_wall_ms() / 1000) + secs;
	}
	fail_with_code(s, code, "login failure", expires);
}

/* ---- stanzas ---- */

static void
ack(struct wa_session *s, const struct wa_node *n, const char *klass, int copy_type)
{
	const char *id = wa_node_attr(n, "id"), *from = wa_node_attr(n, "from");
	if (id == NULL || from == NULL)
		return;
	struct wa_arena a = {0};
	struct wa_node *ackn = wa_node_new(&a, "ack");
	wa_node_set_attr(&a, ackn, "id", id);
	wa_node_set_attr(&a, ackn, "to", from);
	wa_node_set_attr(&a, ackn, "class", klass);
	const char *v;
	if ((v = wa_node_attr(n, "participant")) != NULL)
		wa_node_set_attr(&a, ackn, "participant", v);
	if (copy_type && (v = wa_node_attr(n, "type")) != NULL)
		wa_node_set_attr(&a, ackn, "type", v);
	send_node(s, ackn);
	wa_arena_free(&a);
}

static void
handle_message(struct wa_session *s, const struct wa_node *n)
{
	const char *id = wa_node_attr(n, "id"), *from = wa_node_attr(n, "from");
	if (id == NULL || from == NULL)
		return;
	/* Delivery receipt, "inactive" until we said we are available; then the ack. */
	struct wa_arena a = {0};
	struct wa_node *rc = wa_node_new(&a, "receipt");
	wa_node_set_attr(&a, rc, "id", id);
	wa_node_set_attr(&a, rc, "to", from);
	const char *p = wa_node_attr(n, "participant");
	if (p)
		wa_node_set_attr(&a, rc, "participant", p);
	if (!s->sent_available)
		wa_node_set_attr(&a, rc, "type", "inactive");
	send_node(s, rc);
	wa_arena_free(&a);
	ack(s, n, "message", 0);
	const char *t = wa_node_attr(n, "t");
	if (s->ev.on_message)
		s->ev.on_message(s, t ? strtoll(t, NULL, 10) : 0, s->arg);
}

static void
handle_ib(struct wa_session *s, const struct wa_node *n)
{
	const struct wa_node *c = wa_node_first_child(n);
	if (c == NULL)
		return;
	if (strcmp(c->tag.p, "offline_preview") == 0) {
		struct wa_arena a = {0};
		struct wa_node *ib = wa_node_new(&a, "ib");
		wa_node_set_attr(&a, wa_node_add_child(&a, ib, "offline_batch"), "count", "100");
		send_node(s, ib);
		wa_arena_free(&a);
	} else if (strcmp(c->tag.p, "downgrade_webclient") == 0) {
		sess_fail(s, WA_CLOSE_TRANSIENT, 411, "server asked for a multi-device downgrade", 0);
	}
}

static void
handle_node(struct wa_session *s, const struct wa_node *n)
{
	const char *tag = n->tag.p;
	if (strcmp(tag, "iq") == 0) {
		const char *type = wa_node_attr(n, "type"), *id = wa_node_attr(n, "id");
		if (type == NULL || id == NULL)
			return;
		if (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) {
			struct pending_iq *p = take_pending(s, id);
			if (p)
				handle_iq_reply(s, p, n);
			return;
		}
		const struct wa_node *first = wa_node_first_child(n);
		const char *xmlns = wa_node_attr(n, "xmlns");
		if (first && strcmp(type, "set") == 0 && strcmp(first->tag.p, "pair-device") == 0)
			handle_pair_device(s, n, first);
		else if (first && strcmp(type, "set") == 0 &&
			 strcmp(first->tag.p, "pair-success") == 0)
			handle_pair_success(s, n, first);
		else if (xmlns && (strcmp(xmlns, "w:p") == 0 || strcmp(xmlns, "urn:xmpp:ping") == 0))
			reply_result(s, n);
	} else if (strcmp(tag, "success") == 0) {
		handle_success(s, n);
	} else if (strcmp(tag, "failure") == 0) {
		handle_failure(s, n);
	} else if (strcmp(tag, "stream:error") == 0) {
		handle_stream_error(s, n);
	} else if (strcmp(tag, "xmlstreamend") == 0) {
		sess_fail(s, WA_CLOSE_TRANSIENT, 428, "server ended the stream", 0);
	} else if (strcmp(tag, "message") == 0) {
		handle_message(s, n);
	} else if (strcmp(tag, "receipt") == 0 || strcmp(tag, "notification") == 0 ||
		   strcmp(tag, "call") == 0) {
		ack(s, n, tag, 1);
	} else if (strcmp(tag, "ib") == 0) {
		handle_ib(s, n);
	}
}

/* ---- the connection ---- */

static void
finish_handshake(struct wa_session *s, const uint8_t *p, size_t len)
{
	struct wg_buf payload = {0}, out = {0};
	int paired = wa_creds_paired(&s->creds), r;
	if (paired) {
		uint64_t user;
		uint32_t device;
		if (wa_creds_me(&s->creds, &user, &device) != 0) {
			sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 400, "credentials hold no valid jid", 1);
			return;
		}
		struct wa_login_opts lo = {WA_LOGIN_DEFAULTS, .user = user, .device = device};
		r = wa_payload_login(&lo, &payload);
	} else {
		struct wa_register_opts ro = {.registration_id = s->creds.registration_id,
					      .signed_prekey_id = s->creds.signed_prekey_id,
					      .os = "wagate", .platform_type = 1};
		memcpy(ro.identity_pub, s->creds.identity.pub, 32);
		memcpy(ro.signed_prekey_pub, s->creds.signed_prekey.pub, 32);
		memcpy(ro.signed_prekey_sig, s->creds.signed_prekey_sig, 64);
		r = wa_payload_register(&ro, &payload);
	}
	struct wa_cert_policy pol = {.now = (int64_t)(wg_wall_ms() / 1000)};
	memcpy(pol.root_pub, s->o.root_pub, 32);
	if (r == 0)
		r = wa_noise_client_finish(s->noise, p, len, s->creds.noise.priv, s->creds.noise.pub,
					   &pol, payload.data, payload.len, &out);
	if (r == 0)
		r = ws_send(s->ws, out.data, out.len);
	wg_buf_free(&payload);
	wg_buf_free(&out);
	if (r) {
		char text[160];
		snprintf(text, sizeof(text), "handshake failed: %s",
			 r == WG_ECERT || r == WG_ECRYPTO || r == WG_EPROTO ? wa_noise_why(s->noise)
									    : wg_strerror(r));
		sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 400, text, 1);
		return;
	}
	/* The server proved who it is: frames from WhatsApp may be as large as the 3-byte length allows. */
	wa_frame_reader_set_max(&s->rd, WA_FRAME_HARD_MAX);
	ws_set_max_message(s->ws, WA_FRAME_HARD_MAX + 3);
	sess_enter(s, paired ? SS_LOGIN : SS_PAIRING, paired ? "login sent" : "registration sent");
	arm_keepalive(s);
}

static void
on_ws_open(struct ws_conn *ws, void *arg)
{
	struct wa_session *s = arg;
	s->why.reached = 1;
	struct wg_buf out = {0};
	int r = wa_noise_client_hello(s->noise, &out);
	if (r == 0)
		r = ws_send(ws, out.data, out.len);
	wg_buf_free(&out);
	if (r) {
		sess_fail(s, WA_CLOSE_TRANSIENT, 428, "cannot send the client hello", 1);
		return;
	}
	sess_enter(s, SS_HANDSHAKE, "websocket open");
}

static bool
ping_pending(const struct wa_session *s)
{
	for (size_t i = 0; i < MAX_PENDING; i++)
		if (s->pend[i].kind == IQ_PING)
			return true;
	return false;
}

/*
 * A frame that has begun must keep coming: while one is incomplete nothing
 * else can be read (a ping's answer included), so a peer that stops sending
 * mid-frame is as deaf as one that ignores a ping. The keepalive deadline
 * runs from the last bytes of it; a ping's own deadline is left alone.
 */
static void
watch_partial_frame(struct wa_session *s)
{
	if (s->state == SS_CLOSING || s->state == SS_CLOSED)
		return;
	if (s->rd.in_frame)
		arm(s->t_deadline, s->o.keepalive_timeout_ms);
	else if (evtimer_pending(s->t_deadline, NULL) && !ping_pending(s))
		evtimer_del(s->t_deadline);
}

static void
on_ws_message(struct ws_conn *ws, const uint8_t *data, size_t len, void *arg)
{
	struct wa_session *s = arg;
	if (s->state == SS_CLOSING || s->state == SS_CLOSED)
		return;
	if (s->ev.on_frame)
		s->ev.on_frame(s, wg_wall_ms(), s->arg);
	int r = wa_frame_feed(&s->rd, data, len);
	const uint8_t *p;
	size_t plen;
	while (r >= 0 && (r = wa_frame_next(&s->rd, &p, &plen)) == 1) {
		if (s->state == SS_CLOSING || s->state == SS_CLOSED)
			continue; /* drain the reader; nothing more is handled */
		if (s->state == SS_HANDSHAKE) {
			finish_handshake(s, p, plen);
			continue;
		}
		struct wg_buf plain = {0};
		if (wa_noise_decrypt(s->noise, p, plen, &plain) != 0) {
			wg_buf_free(&plain);
			sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 400, "frame failed to decrypt", 1);
			continue;
		}
		struct wa_arena a = {0};
		struct wa_node *n;
		struct wa_decode_err err;
		if (wa_frame_decode_node(wa_dict_get(s->o.dict), plain.data, plain.len, NULL, &a, &n,
					 &err) == 0) {
			handle_node(s, n);
		} else {
			char text[160];
			snprintf(text, sizeof(text), "bad stanza: %.100s at byte %zu", err.msg,
				 err.offset);
			sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 400, text, 1);
		}
		wa_arena_free(&a);
		wg_buf_free(&plain);
	}
	if (r < 0) {
		sess_fail(s, WA_CLOSE_PROTOCOL_ERROR, 400, "bad transport framing", 1);
		return;
	}
	watch_partial_frame(s);
}

/* Drops what belongs to one connection, keeping the session. */
static void
reset_conn(struct wa_session *s)
{
	s->ws = NULL;
	wa_noise_free(s->noise);
	s->noise = NULL;
	wa_frame_reader_free(&s->rd);
	for (size_t i = 0; i < s->nrefs; i++)
		free(s->refs[i]);
	s->nrefs = s->ref_idx = 0;
	memset(s->pend, 0, sizeof(s->pend));
	s->sent_available = 0;
	disarm_all(s);
}

static void
sess_free(struct wa_session *s)
{
	reset_conn(s);
	struct event *t[] = {s->t_keepalive, s->t_deadline, s->t_qr,
			     s->t_step,      s->t_probe,    s->t_finish};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i])
			event_free(t[i]);
	if (s->upload) {
		wg_wipe(s->upload, s->nupload * sizeof(*s->upload));
		free(s->upload);
	}
	wa_creds_free(&s->creds);
	free(s->url);
	free(s->id);
	free(s);
}

/* Reports the close and frees the session. Runs in its own loop turn. */
static void
sess_finish(struct wa_session *s)
{
	sess_enter(s, SS_CLOSED, wa_close_reason_name(s->why.reason));
	log_info(s->id, "closed: %s %d (%s)", wa_close_reason_name(s->why.reason), s->why.code,
		 s->why.text);
	if (s->ev.on_closed)
		s->ev.on_closed(s, &s->why, s->arg);
	sess_free(s);
}

static void
on_finish_timer(evutil_socket_t fd, short what, void *arg)
{
	sess_finish(arg);
}

static void
on_ws_close(struct ws_conn *ws, int err, int code, const char *reason, void *arg)
{
	struct wa_session *s = arg;
	if (s->restart_pending && s->state == SS_CLOSING && !s->have_reason) {
		s->restart_pending = 0;
		reset_conn(s);
		sess_connect(s);
		return;
	}
	if (!s->have_reason) {
		/* The socket ended before any stanza said why. */
		s->have_reason = 1;
		s->why.reason = WA_CLOSE_TRANSIENT;
		if (err == WG_ECERT) {
			s->why.reason = WA_CLOSE_PROTOCOL_ERROR;
			s->why.code = 400;
		} else if (err == WG_ETIMEDOUT) {
			s->why.code = 408;
		} else if (err == WG_EPROTO && code >= 300 && code < 600) {
			s->why.code = code; /* the upgrade was answered with this HTTP status */
			s->why.reached = 1;
		} else {
			s->why.code = 428;
		}
		snprintf(s->why_text, sizeof(s->why_text), "connection closed: %s%s%s",
			 err ? wg_strerror(err) : "by the server", reason && reason[0] ? ": " : "",
			 reason ? reason : "");
		s->why.text = s->why_text;
	}
	reset_conn(s);
	sess_finish(s);
}

/* Starts one connection attempt. On failure nothing fires and the caller cleans up. */
static int
conn_start(struct wa_session *s)
{
	static const struct ws_callbacks cbs = {on_ws_open, on_ws_message, on_ws_close};
	/* Until the server has shown its certificate, it may send only what a handshake needs. */
	wa_frame_reader_init(&s->rd, WA_FRAME_CLIENT, WA_HANDSHAKE_MAX);
	s->noise = wa_noise_new(WA_NOISE_CLIENT, s->o.dict);
	struct ws_client_opts wo = {
		.url = s->url,
		.origin = "https://web.whatsapp.com",
		.ssl_ctx = s->o.ssl_ctx,
		.dns = s->o.dns,
		.connect_timeout_ms = s->o.connect_timeout_ms,
		/* A handshake's worth first; as large as the 3-byte length allows once it is done. */
		.limits = {.max_message = WA_HANDSHAKE_MAX + 64},
	};
	int r = s->noise ? ws_client_connect(s->base, &wo, &cbs, s, &s->ws) : WG_EINVAL;
	/* A login's steps are bulk cryptography: they wait for a turn with nothing else to do. */
	if (r == 0)
		ws_set_background(s->ws, true);
	if (r)
		return r;
	sess_enter(s, SS_CONNECTING, "reconnecting after pairing");
	arm(s->t_step, s->o.login_timeout_ms);
	log_debug(s->id, "connecting to %s (%s)", s->url,
		 wa_creds_paired(&s->creds) ? "login" : "pairing");
	return 0;
}

/* The reconnect that completes pairing. */
static void
sess_connect(struct wa_session *s)
{
	int r = conn_start(s);
	if (r) {
		/* open checked the URL, so this is rare: report it from the loop, as always. */
		s->have_reason = 1;
		s->why.reason = WA_CLOSE_TRANSIENT;
		s->why.code = 428;
		snprintf(s->why_text, sizeof(s->why_text), "cannot reconnect: %s", wg_strerror(r));
		s->why.text = s->why_text;
		reset_conn(s);
		struct timeval zero = {0, 0};
		evtimer_add(s->t_finish, &zero);
	}
}

int
wa_session_open(struct event_base *base, const struct wa_session_opts *o,
		const struct wa_creds *creds, const struct wa_session_events *ev, void *arg,
		struct wa_session **out)
{
	if (o->url == NULL || (strncmp(o->url, "ws://", 5) != 0 && strncmp(o->url, "wss://", 6) != 0))
		return WG_EINVAL;
	struct wa_session *s = wg_calloc(1, sizeof(*s));
	s->base = base;
	s->o = *o;
	if (s->o.dict == 0)
		s->o.dict = 3;
	s->url = wg_strdup(o->url);
	s->id = wg_strdup(o->id ? o->id : "session");
	s->o.url = s->url;
	s->o.id = s->id;
	wa_creds_copy(&s->creds, creds);
	s->ev = *ev;
	s->arg = arg;
	uint8_t rnd[4];
	wa_random(rnd, sizeof(rnd));
	wg_hex_encode(s->iq_prefix, rnd, sizeof(rnd));
	s->t_keepalive = evtimer_new(base, on_keepalive, s);
	s->t_deadline = evtimer_new(base, on_deadline, s);
	s->t_qr = evtimer_new(base, on_qr_timer, s);
	s->t_step = evtimer_new(base, on_step_timeout, s);
	s->t_probe = evtimer_new(base, on_probe_timeout, s);
	s->t_finish = evtimer_new(base, on_finish_timer, s);
	int r = conn_start(s);
	if (r) {
		sess_free(s);
		return r;
	}
	*out = s;
	return 0;
}

void
wa_session_close(struct wa_session *s)
{
	sess_fail(s, WA_CLOSE_CLOSED_BY_US, 0, "closed by us", 0);
}

int
wa_session_probe(struct wa_session *s)
{
	if (s->state != SS_OPEN)
		return WG_ESTATE;
	for (size_t i = 0; i < MAX_PENDING; i++)
		if (s->pend[i].kind == IQ_PROBE)
			return 0; /* one probe at a time; its answer serves both callers */
	send_presence(s);
	send_ping(s, IQ_PROBE);
	arm(s->t_probe, s->o.keepalive_timeout_ms);
	return 0;
}

int
wa_session_alive(const struct wa_session *s)
{
	/* An unanswered ping closes the session, so open means answering. */
	return s->state == SS_OPEN && s->ws != NULL && ws_is_open(s->ws);
}

const struct wa_creds *
wa_session_creds(const struct wa_session *s)
{
	return &s->creds;
}
