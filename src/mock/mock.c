/*
 * The mock's connections: WebSocket accept, the server side of the Noise
 * handshake, and the stanzas it answers. See docs/mock.md.
 */
#include "mock/mock.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/enc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "mock/mock_int.h"
#include "net/ws.h"
#include "proto/wa.pb-c.h"
#include "wa/cert.h"
#include "wa/crypto.h"
#include "wa/noise.h"

/* A client must finish the Noise handshake within this time (WhatsApp's clients wait 20 s). */
#define HANDSHAKE_TIMEOUT_MS 20000
/*
 * The pause between the client's ClientFinish and the mock's first stanza.
 * Baileys 6 handles incoming data before it has derived its transport keys, so
 * a stanza that arrives within a few milliseconds of the handshake is lost
 * (docs/wa-protocol.md §11); WhatsApp's servers are never that fast either.
 */
#define START_DELAY_MS 50
/* Frames from clients are small stanzas; pre-key uploads are the largest (~40 KiB). */
#define MOCK_MAX_FRAME (1u << 20)
/* How long a shutdown waits for clients to answer the WebSocket close. */
#define SHUTDOWN_GRACE_MS 2500

static const char *state_names[] = {"handshake", "register", "pairing", "paired",
				    "login",     "blackhole", "closing", "closed"};

const char *
mock__state_name(enum mc_state s)
{
	return state_names[s];
}

const char *
mc_who(const struct mock_conn *c, char buf[32])
{
	snprintf(buf, 32, "mock#%llu", (unsigned long long)c->id);
	return buf;
}

void
mock__iq_id(struct mock *m, char out[24])
{
	snprintf(out, 24, "mock.%llu", (unsigned long long)++m->next_iq);
}

static void mc_free(struct mock_conn *c);
static void maybe_shutdown_done(struct mock *m);

static void
disarm(struct event *ev)
{
	if (ev != NULL)
		evtimer_del(ev);
}

/* Which transitions exist: closed is terminal, closing and paired only end, blackhole only closes. */
static bool
allowed(enum mc_state from, enum mc_state to)
{
	switch (from) {
	case MC_CLOSED:
		return false;
	case MC_CLOSING:
	case MC_PAIRED:
		return to == MC_CLOSED;
	case MC_BLACKHOLE:
		return to == MC_CLOSING || to == MC_CLOSED;
	default:
		return true;
	}
}

static int send_stream_error(struct mock_conn *c, int code);

/*
 * The certificate chain, issued once and again each day, as WhatsApp serves
 * one chain to every connection for days (its leaf is back-dated an hour, so
 * a day-old chain is still valid everywhere).
 */
static int
mock_chain(struct mock *m)
{
	int64_t now = (int64_t)(wg_wall_ms() / 1000);
	if (m->chain.len > 0 && now - m->chain_issued < 86400 && now >= m->chain_issued)
		return 0;
	wg_buf_reset(&m->chain);
	int r = wa_cert_issue(m->root_priv, m->static_pub, now, &m->chain);
	if (r == 0)
		m->chain_issued = now;
	return r;
}

/* The connection's handshake is over, one way or another (GET /stats). */
static void
mc_settle(struct mock_conn *c)
{
	if (c->in_flight) {
		c->in_flight = false;
		c->m->in_flight--;
	}
}

void
mc_logged_in(struct mock_conn *c)
{
	struct mock *m = c->m;
	if (c->jid != NULL) {
		struct mock_conn *other = wg_map_get(&m->by_jid, c->jid);
		if (other != NULL && other != c) {
			m->overlaps++;
			log_warn("mock", "connection %llu logs in as a device whose connection %llu is "
					 "still open: two connections for one device",
				 (unsigned long long)c->id, (unsigned long long)other->id);
			wg_map_del(&m->by_jid, other->jid);
		}
		wg_map_put(&m->by_jid, c->jid, c);
	}
	c->logged_in = true;
	c->m->logged_in++;
	c->m->logins++;
	mc_settle(c);
}

/* The only place a connection's state changes; runs the new state's entry action. */
void
mc_enter(struct mock_conn *c, enum mc_state s, const char *why)
{
	char who[32];
	if (c->state == s || !allowed(c->state, s))
		return;
	log_info(mc_who(c, who), "%s -> %s (%s)", state_names[c->state], state_names[s], why);
	c->state = s;
	struct timeval start = {0, START_DELAY_MS * 1000};
	if (s != MC_LOGIN && s != MC_HANDSHAKE)
		mc_settle(c);
	switch (s) {
	case MC_REGISTER:
	case MC_LOGIN:
		disarm(c->handshake_timer);
		evtimer_add(c->start_timer, &start);
		break;
	case MC_PAIRED:
		/* Pairing is done; the client must come back with a login (§5.7). */
		send_stream_error(c, 515);
		ws_close(c->ws, 1000, "restart required");
		break;
	case MC_BLACKHOLE:
		disarm(c->handshake_timer);
		disarm(c->start_timer);
		ws_pause_reading(c->ws, true);
		mock__pair_conn_gone(c, "the connection was blackholed");
		break;
	case MC_CLOSING:
		disarm(c->start_timer);
		mock__pair_conn_gone(c, why);
		break;
	case MC_CLOSED:
		disarm(c->handshake_timer);
		disarm(c->start_timer);
		mock__pair_conn_gone(c, why);
		TAILQ_REMOVE(&c->m->conns, c, link);
		c->m->nconns--;
		if (c->logged_in)
			c->m->logged_in--;
		break;
	case MC_HANDSHAKE:
	case MC_PAIRING:
		break;
	}
}

void
mc_close(struct mock_conn *c, int code, const char *why)
{
	mc_enter(c, MC_CLOSING, why);
	ws_close(c->ws, code, why);
}

/* Ends a connection because of its input. */
static void
mc_drop(struct mock_conn *c, int code, const char *why)
{
	char who[32];
	log_warn(mc_who(c, who), "closing: %s", why);
	mc_close(c, code, why);
}

static int
encode_send(struct mock_conn *c, const struct wa_node *n)
{
	struct wg_buf plain = {0}, out = {0};
	wg_buf_push(&plain, 0x00);
	int r = wa_node_encode(wa_dict_get(c->dict), n, &plain);
	if (r == 0)
		r = wa_noise_encrypt_frame(c->noise, plain.data, plain.len, &out);
	if (r == 0)
		r = ws_send(c->ws, out.data, out.len);
	wg_buf_free(&plain);
	wg_buf_free(&out);
	return r;
}

int
mc_send_node(struct mock_conn *c, const struct wa_node *n)
{
	/* A blackholed connection sends nothing more, whatever asks. */
	if (c->state == MC_BLACKHOLE || c->state == MC_CLOSED || c->noise == NULL ||
	    !wa_noise_is_transport(c->noise))
		return WG_ESTATE;
	return encode_send(c, n);
}

/* The forms the clients map to codes (docs/wa-protocol.md §7). */
static int
send_stream_error(struct mock_conn *c, int code)
{
	struct wa_arena a = {0};
	struct wa_node *n = wa_node_new(&a, "stream:error");
	char num[16];
	snprintf(num, sizeof(num), "%d", code);
	if (code == 440) {
		wa_node_set_attr(&a, wa_node_add_child(&a, n, "conflict"), "type", "replaced");
	} else {
		wa_node_set_attr(&a, n, "code", num);
		if (code == 401)
			wa_node_set_attr(&a, wa_node_add_child(&a, n, "conflict"), "type",
					 "device_removed");
	}
	int r = mc_send_node(c, n);
	wa_arena_free(&a);
	return r;
}

int
mc_stream_error(struct mock_conn *c, int code)
{
	int r = send_stream_error(c, code);
	if (r == 0) {
		char why[48];
		snprintf(why, sizeof(why), "stream error %d", code);
		mc_close(c, 1000, why);
	}
	return r;
}

/* Decides what a login gets: a queued fault, success for a known device with its noise key
 * (or any device with --accept-any-login), else failure 401. */
static void
decide_login(struct mock_conn *c, uint64_t user, uint32_t device)
{
	struct mock *m = c->m;
	char jid[MOCK_JID_MAX], phone[24], lid[MOCK_LID_MAX], lidjid[MOCK_JID_MAX];
	snprintf(phone, sizeof(phone), "%llu", (unsigned long long)user);
	if (device)
		snprintf(jid, sizeof(jid), "%s:%u@s.whatsapp.net", phone, device);
	else
		snprintf(jid, sizeof(jid), "%s@s.whatsapp.net", phone);
	free(c->jid);
	c->jid = wg_strdup(jid);
	const char *why = "login payload";
	struct mock_device *d = mock__store_device(&m->store, jid);
	if (mock__take_fault(m, jid, &c->failure)) {
		why = "login payload; a failure was queued for it";
	} else if (d != NULL && memcmp(d->noise_pub, c->noise_pub, 32) == 0) {
		c->dev = d;
		why = "login payload of a paired device";
	} else if (m->accept_any_login) {
		why = d ? "login payload with another noise key (--accept-any-login)"
			: "login payload of an unknown device (--accept-any-login)";
	} else {
		snprintf(c->failure.reason, sizeof(c->failure.reason), "401");
		why = d ? "login payload with the wrong noise key: failure 401"
			: "login payload of an unknown device: failure 401";
	}
	if (c->dev) {
		snprintf(lidjid, sizeof(lidjid), "%s", c->dev->lid);
	} else {
		mock__lid_for(&m->store, phone, lid);
		if (device)
			snprintf(lidjid, sizeof(lidjid), "%s:%u@lid", lid, device);
		else
			snprintf(lidjid, sizeof(lidjid), "%s@lid", lid);
	}
	free(c->lid);
	c->lid = wg_strdup(lidjid);
	mc_enter(c, MC_LOGIN, why);
}

static void
handle_client_payload(struct mock_conn *c, const uint8_t *p, size_t len)
{
	Wa__ClientPayload *cp = wa__client_payload__unpack(NULL, len, p);
	if (cp == NULL) {
		mc_drop(c, 1002, "client payload is not a ClientPayload");
		return;
	}
	if (cp->device_pairing_data != NULL) {
		Wa__ClientPayload__DevicePairingRegistrationData *dp = cp->device_pairing_data;
		if (!dp->has_e_ident || dp->e_ident.len != 32) {
			mc_drop(c, 1002, "registration payload without a 32-byte identity key");
		} else {
			memcpy(c->identity_pub, dp->e_ident.data, 32);
			mc_enter(c, MC_REGISTER, "registration payload");
		}
	} else if (cp->has_username) {
		decide_login(c, cp->username, cp->has_device ? cp->device : 0);
	} else {
		mc_drop(c, 1002, "client payload is neither a login nor a registration");
	}
	wa__client_payload__free_unpacked(cp, NULL);
}

static void
handle_frame(struct mock_conn *c, const uint8_t *p, size_t len)
{
	struct wg_buf out = {0};
	int r;
	if (c->noise == NULL) {
		/* The first frame is the ClientHello; its intro chose the dictionary. */
		c->dict = wa_frame_dict_version(&c->rd);
		c->noise = wa_noise_new(WA_NOISE_SERVER, c->dict);
		r = mock_chain(c->m);
		if (r == 0)
			r = wa_noise_server_hello(c->noise, p, len, c->m->static_priv,
						  c->m->static_pub, c->m->chain.data, c->m->chain.len,
						  &out);
		if (r == 0)
			r = ws_send(c->ws, out.data, out.len);
		if (r)
			mc_drop(c, 1002, "bad client hello");
	} else if (c->state == MC_HANDSHAKE) {
		r = wa_noise_server_finish(c->noise, p, len, c->noise_pub, &out);
		if (r)
			mc_drop(c, 1002, "bad client finish");
		else
			handle_client_payload(c, out.data, out.len);
	} else {
		r = wa_noise_decrypt(c->noise, p, len, &out);
		if (r) {
			mc_drop(c, 1002, "frame failed to decrypt");
		} else {
			struct wa_arena a = {0};
			struct wa_node *n;
			struct wa_decode_err err;
			r = wa_frame_decode_node(wa_dict_get(c->dict), out.data, out.len, NULL, &a,
						 &n, &err);
			if (r) {
				char why[160];
				snprintf(why, sizeof(why), "bad node: %.96s at byte %zu", err.msg,
					 err.offset);
				mc_drop(c, 1002, why);
			} else {
				mock__handle_node(c, n);
			}
			wa_arena_free(&a);
		}
	}
	wg_buf_free(&out);
}

static void
on_message(struct ws_conn *ws, const uint8_t *data, size_t len, void *arg)
{
	struct mock_conn *c = arg;
	/* A blackholed connection may still see the rest of the read that paused it: ignore it. */
	if (c->state == MC_CLOSED || c->state == MC_BLACKHOLE || !ws_is_open(ws))
		return;
	c->last_frame_at = wg_wall_ms();
	int r = wa_frame_feed(&c->rd, data, len);
	const uint8_t *p;
	size_t plen;
	while (r >= 0 && (r = wa_frame_next(&c->rd, &p, &plen)) == 1) {
		c->frames_in++;
		handle_frame(c, p, plen);
		if (!ws_is_open(ws) || c->state == MC_BLACKHOLE)
			return;
	}
	if (r < 0)
		mc_drop(c, r == WG_ELIMIT ? 1009 : 1002,
			r == WG_ELIMIT ? "frame too large" : "bad framing or intro");
}

static void
on_close(struct ws_conn *ws, int err, int code, const char *reason, void *arg)
{
	struct mock_conn *c = arg;
	char why[160];
	snprintf(why, sizeof(why), "websocket closed: code %d%s%s", code, err ? ", " : "",
		 err ? wg_strerror(err) : "");
	mc_enter(c, MC_CLOSED, why);
	struct mock *m = c->m;
	mc_free(c);
	maybe_shutdown_done(m);
}

static void
on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mock_conn *c = arg;
	mc_drop(c, 1008, "handshake not completed in time");
}

static void
on_start(evutil_socket_t fd, short what, void *arg)
{
	struct mock_conn *c = arg;
	if (c->state == MC_REGISTER)
		mock__pair_start(c);
	else if (c->state == MC_LOGIN)
		mock__login_start(c);
}

static void
on_accept(struct ws_conn *ws, const char *remote, void *arg)
{
	static const struct ws_callbacks cbs = {.on_message = on_message, .on_close = on_close};
	struct mock *m = arg;
	struct mock_conn *c = wg_calloc(1, sizeof(*c));
	c->m = m;
	c->id = ++m->next_id;
	c->ws = ws;
	c->state = MC_HANDSHAKE;
	snprintf(c->remote, sizeof(c->remote), "%s", remote);
	c->connected_at = wg_wall_ms();
	wa_frame_reader_init(&c->rd, WA_FRAME_SERVER, MOCK_MAX_FRAME);
	c->handshake_timer = evtimer_new(m->base, on_handshake_timeout, c);
	struct timeval tv = {HANDSHAKE_TIMEOUT_MS / 1000, 0};
	evtimer_add(c->handshake_timer, &tv);
	c->start_timer = evtimer_new(m->base, on_start, c);
	c->acked = json_array();
	c->receipts = json_array();
	TAILQ_INSERT_TAIL(&m->conns, c, link);
	m->nconns++;
	m->accepted++;
	c->in_flight = true;
	if (++m->in_flight > m->in_flight_max)
		m->in_flight_max = m->in_flight;
	ws_conn_set_callbacks(ws, &cbs, c);
	log_info("mock", "connection %llu from %s", (unsigned long long)c->id, remote);
}

static void
mc_free(struct mock_conn *c)
{
	if (c == NULL)
		return;
	if (c->jid != NULL && wg_map_get(&c->m->by_jid, c->jid) == c)
		wg_map_del(&c->m->by_jid, c->jid);
	mock__pair_conn_gone(c, "the mock is stopping");
	if (c->handshake_timer)
		event_free(c->handshake_timer);
	if (c->start_timer)
		event_free(c->start_timer);
	wa_noise_free(c->noise);
	wa_frame_reader_free(&c->rd);
	json_decref(c->acked);
	json_decref(c->receipts);
	free(c->jid);
	free(c->lid);
	free(c);
}

/* Reads the root private key (64 hex digits) from path, or creates the file with a new key. */
static int
load_root_key(const char *path, uint8_t priv[32], char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		char text[200];
		size_t n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
		size_t bad;
		uint8_t key[100];
		long got = wg_hex_decode(key, text, n, &bad);
		if (got != 32) {
			snprintf(err, errlen, "%s: expected 64 hex digits (a root private key)", path);
			wg_wipe(key, sizeof(key));
			return WG_EINVAL;
		}
		memcpy(priv, key, 32);
		wg_wipe(key, sizeof(key));
		wa_crypto_clamp(priv);
		return 0;
	}
	if (errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return WG_EIO;
	}
	struct wa_keypair kp;
	wa_crypto_keypair(&kp);
	memcpy(priv, kp.priv, 32);
	wg_wipe(&kp, sizeof(kp));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		return WG_EIO;
	}
	char hex[65];
	wg_hex_encode(hex, priv, 32);
	hex[64] = '\n';
	ssize_t w = write(fd, hex, 65);
	wg_wipe(hex, sizeof(hex));
	close(fd);
	if (w != 65) {
		snprintf(err, errlen, "%s: write failed", path);
		return WG_EIO;
	}
	return 0;
}

static int mock_tls_start(struct mock *m, const struct mock_opts *opts, char *err, size_t errlen);

/* --idle-timeout: logged-in connections that sent nothing for that long are dropped. */
static void
on_idle_check(evutil_socket_t fd, short what, void *arg)
{
	struct mock *m = arg;
	(void)fd;
	(void)what;
	uint64_t now = wg_wall_ms();
	struct mock_conn *c, *next;
	for (c = TAILQ_FIRST(&m->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->logged_in && c->state < MC_CLOSING && now - c->last_frame_at > m->idle_timeout_ms)
			mc_close(c, 1000, "idle: no frame within the idle timeout");
	}
}

int
mock_new(struct event_base *base, const struct mock_opts *opts, struct mock **out, char *err,
	 size_t errlen)
{
	struct mock *m = wg_calloc(1, sizeof(*m));
	m->base = base;
	m->accept_any_login = opts->accept_any_login;
	if (m->accept_any_login)
		m->anon_prekeys = json_object();
	m->prekeys_known = opts->prekeys_known;
	TAILQ_INIT(&m->conns);
	wg_map_init(&m->by_jid);
	m->idle_timeout_ms = opts->idle_timeout_ms;
	if (m->idle_timeout_ms) {
		m->idle_timer = event_new(base, -1, EV_PERSIST, on_idle_check, m);
		uint64_t every = m->idle_timeout_ms / 4 ? m->idle_timeout_ms / 4 : 1;
		struct timeval tv = {(time_t)(every / 1000), (suseconds_t)((every % 1000) * 1000)};
		evtimer_add(m->idle_timer, &tv);
	}
	int r = 0;
	if (opts->state_file != NULL) {
		r = mock__store_load(&m->store, opts->state_file, err, errlen);
		if (r) {
			mock_free(m);
			return r;
		}
		log_info("mock", "state %s: %zu phones, %zu devices", opts->state_file,
			 m->store.nphones, m->store.ndevices);
	}
	if (opts->root_key_file != NULL) {
		r = load_root_key(opts->root_key_file, m->root_priv, err, errlen);
	} else {
		struct wa_keypair kp;
		wa_crypto_keypair(&kp);
		memcpy(m->root_priv, kp.priv, 32);
		wg_wipe(&kp, sizeof(kp));
	}
	if (r == 0)
		r = wa_crypto_pub_from_priv(m->root_pub, m->root_priv);
	if (r) {
		if (!err[0])
			snprintf(err, errlen, "cannot derive the root public key");
		mock_free(m);
		return r;
	}
	struct wa_keypair st;
	wa_crypto_keypair(&st);
	memcpy(m->static_priv, st.priv, 32);
	memcpy(m->static_pub, st.pub, 32);
	wg_wipe(&st, sizeof(st));

	m->ws = ws_server_new(base, opts->listen, "/ws/chat", on_accept, m);
	if (m->ws == NULL) {
		snprintf(err, errlen, "cannot listen on %s", opts->listen);
		mock_free(m);
		return WG_EIO;
	}
	struct ws_limits lim = {.max_message = MOCK_MAX_FRAME + 16};
	ws_server_set_limits(m->ws, &lim);
	if (opts->tls_cert || opts->tls_key) {
		r = mock_tls_start(m, opts, err, errlen);
		if (r) {
			mock_free(m);
			return r;
		}
	}
	r = mock__control_start(m, opts->control, err, errlen);
	if (r) {
		mock_free(m);
		return r;
	}
	*out = m;
	return 0;
}

const uint8_t *
mock_root_pub(const struct mock *m)
{
	return m->root_pub;
}

int
mock_listen_port(const struct mock *m)
{
	return ws_server_port(m->ws);
}

int
mock_control_port(const struct mock *m)
{
	return m->control_port;
}

static void
shutdown_finish(struct mock *m)
{
	void (*done)(void *) = m->done;
	m->done = NULL;
	if (m->shutdown_timer)
		evtimer_del(m->shutdown_timer);
	if (done)
		done(m->done_arg);
}

static void
maybe_shutdown_done(struct mock *m)
{
	if (m->done != NULL && m->nconns == 0)
		shutdown_finish(m);
}

static void
on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
	shutdown_finish(arg);
}

void
mock_shutdown(struct mock *m, void (*done)(void *arg), void *arg)
{
	m->done = done;
	m->done_arg = arg;
	ws_server_free(m->ws);
	m->ws = NULL;
	mock__control_stop(m);
	struct mock_conn *c;
	TAILQ_FOREACH(c, &m->conns, link)
		ws_close(c->ws, 1001, "server shutting down");
	m->shutdown_timer = evtimer_new(m->base, on_shutdown_timeout, m);
	struct timeval tv = {SHUTDOWN_GRACE_MS / 1000, (SHUTDOWN_GRACE_MS % 1000) * 1000};
	evtimer_add(m->shutdown_timer, &tv);
	maybe_shutdown_done(m);
}

/*
 * wss:// with a certificate of the caller's (benchmarks and tests make a
 * throwaway one), so clients pay what they pay against WhatsApp: a TLS
 * handshake and TLS records around every frame.
 */
static int
mock_tls_start(struct mock *m, const struct mock_opts *opts, char *err, size_t errlen)
{
	if (!opts->tls_cert || !opts->tls_key) {
		snprintf(err, errlen, "--tls-cert and --tls-key go together");
		return WG_EINVAL;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		snprintf(err, errlen, "cannot make a TLS context");
		return WG_EIO;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Idle connections keep no TLS buffers (the client does the same). */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, opts->tls_cert) != 1) {
		snprintf(err, errlen, "--tls-cert %s: not a readable PEM certificate", opts->tls_cert);
		SSL_CTX_free(ctx);
		ERR_clear_error();
		return WG_EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, opts->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "--tls-key %s: not the PEM private key of --tls-cert",
			 opts->tls_key);
		SSL_CTX_free(ctx);
		ERR_clear_error();
		return WG_EINVAL;
	}
	m->tls = ctx;
	ws_server_set_tls(m->ws, ctx);
	return 0;
}

void
mock_free(struct mock *m)
{
	if (m == NULL)
		return;
	struct mock_conn *c;
	while ((c = TAILQ_FIRST(&m->conns)) != NULL) {
		/* Freed now, without callbacks: no loop turn will come to report a close. */
		ws_destroy(c->ws);
		TAILQ_REMOVE(&m->conns, c, link);
		mc_free(c);
	}
	ws_server_free(m->ws);
	wg_buf_free(&m->chain);
	json_decref(m->anon_prekeys);
	if (m->tls)
		SSL_CTX_free(m->tls);
	mock__control_stop(m);
	if (m->shutdown_timer)
		event_free(m->shutdown_timer);
	mock__store_free(&m->store);
	wg_map_free(&m->by_jid);
	if (m->idle_timer)
		event_free(m->idle_timer);
	free(m->faults);
	wg_wipe(m->root_priv, sizeof(m->root_priv));
	wg_wipe(m->static_priv, sizeof(m->static_priv));
	free(m);
}
