/*
 * The mock's connections: WebSocket accept, the server side of the Noise
 * handshake, and the stanzas it answers. See docs/mock.md.
 */
#include "mock/mock.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
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
/* Frames from clients are small stanzas; pre-key uploads are the largest (~40 KiB). */
#define MOCK_MAX_FRAME (1u << 20)
/* How long a shutdown waits for clients to answer the WebSocket close. */
#define SHUTDOWN_GRACE_MS 2500

static const char *state_names[] = {"handshake", "register", "login", "closed"};

const char *
mock__state_name(enum mc_state s)
{
	return state_names[s];
}

static void mc_free(struct mock_conn *c);
static void maybe_shutdown_done(struct mock *m);

/* The only place a connection's state changes. */
static void
mc_enter(struct mock_conn *c, enum mc_state s, const char *why)
{
	if (c->state == s)
		return;
	char who[32];
	snprintf(who, sizeof(who), "mock#%llu", (unsigned long long)c->id);
	log_info(who, "%s -> %s (%s)", state_names[c->state], state_names[s], why);
	c->state = s;
	switch (s) {
	case MC_REGISTER:
	case MC_LOGIN:
		if (c->handshake_timer)
			evtimer_del(c->handshake_timer);
		break;
	case MC_CLOSED:
		TAILQ_REMOVE(&c->m->conns, c, link);
		c->m->nconns--;
		break;
	case MC_HANDSHAKE:
		break;
	}
}

/* Ends a connection because of its input; the WebSocket close follows through on_close. */
static void
mc_drop(struct mock_conn *c, int code, const char *why)
{
	char who[32];
	snprintf(who, sizeof(who), "mock#%llu", (unsigned long long)c->id);
	log_warn(who, "closing: %s", why);
	ws_close(c->ws, code, why);
}

static int
mc_send_node(struct mock_conn *c, const struct wa_node *n)
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

static void
handle_node(struct mock_conn *c, const struct wa_node *n)
{
	const char *xmlns = wa_node_attr(n, "xmlns"), *type = wa_node_attr(n, "type");
	const char *id = wa_node_attr(n, "id");
	if (strcmp(n->tag.p, "iq") == 0 && xmlns && strcmp(xmlns, "w:p") == 0 && type &&
	    strcmp(type, "get") == 0 && id) {
		struct wa_arena a = {0};
		struct wa_node *res = wa_node_new(&a, "iq");
		wa_node_set_attr(&a, res, "from", "@s.whatsapp.net");
		wa_node_set_attr(&a, res, "type", "result");
		wa_node_set_attr(&a, res, "id", id);
		c->pings++;
		mc_send_node(c, res);
		wa_arena_free(&a);
		return;
	}
	log_debug("mock", "connection %llu: unhandled <%s>", (unsigned long long)c->id, n->tag.p);
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
		mc_enter(c, MC_REGISTER, "registration payload");
	} else if (cp->has_username) {
		char jid[64];
		if (cp->has_device && cp->device)
			snprintf(jid, sizeof(jid), "%llu:%u@s.whatsapp.net",
				 (unsigned long long)cp->username, cp->device);
		else
			snprintf(jid, sizeof(jid), "%llu@s.whatsapp.net",
				 (unsigned long long)cp->username);
		free(c->jid);
		c->jid = wg_strdup(jid);
		mc_enter(c, MC_LOGIN, "login payload");
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
		struct wg_buf chain = {0};
		r = wa_cert_issue(c->m->root_priv, c->m->static_pub, (int64_t)(wg_wall_ms() / 1000),
				  &chain);
		if (r == 0)
			r = wa_noise_server_hello(c->noise, p, len, c->m->static_priv,
						  c->m->static_pub, chain.data, chain.len, &out);
		wg_buf_free(&chain);
		if (r == 0)
			r = ws_send(c->ws, out.data, out.len);
		if (r)
			mc_drop(c, 1002, "bad client hello");
	} else if (c->state == MC_HANDSHAKE) {
		uint8_t client_static[32];
		r = wa_noise_server_finish(c->noise, p, len, client_static, &out);
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
				handle_node(c, n);
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
	if (c->state == MC_CLOSED || !ws_is_open(ws))
		return;
	c->last_frame_at = wg_wall_ms();
	int r = wa_frame_feed(&c->rd, data, len);
	const uint8_t *p;
	size_t plen;
	while (r >= 0 && (r = wa_frame_next(&c->rd, &p, &plen)) == 1) {
		c->frames_in++;
		handle_frame(c, p, plen);
		if (!ws_is_open(ws))
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
	TAILQ_INSERT_TAIL(&m->conns, c, link);
	m->nconns++;
	ws_conn_set_callbacks(ws, &cbs, c);
	log_info("mock", "connection %llu from %s", (unsigned long long)c->id, remote);
}

static void
mc_free(struct mock_conn *c)
{
	if (c == NULL)
		return;
	if (c->handshake_timer)
		event_free(c->handshake_timer);
	wa_noise_free(c->noise);
	wa_frame_reader_free(&c->rd);
	free(c->jid);
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

int
mock_new(struct event_base *base, const struct mock_opts *opts, struct mock **out, char *err,
	 size_t errlen)
{
	struct mock *m = wg_calloc(1, sizeof(*m));
	m->base = base;
	TAILQ_INIT(&m->conns);
	int r = 0;
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

void
mock_free(struct mock *m)
{
	if (m == NULL)
		return;
	struct mock_conn *c;
	while ((c = TAILQ_FIRST(&m->conns)) != NULL) {
		/* Detach first: the WebSocket layer reports the abort later, to nobody. */
		static const struct ws_callbacks none = {0};
		ws_conn_set_callbacks(c->ws, &none, NULL);
		ws_abort(c->ws, false);
		TAILQ_REMOVE(&m->conns, c, link);
		mc_free(c);
	}
	ws_server_free(m->ws);
	mock__control_stop(m);
	if (m->shutdown_timer)
		event_free(m->shutdown_timer);
	wg_wipe(m->root_priv, sizeof(m->root_priv));
	wg_wipe(m->static_priv, sizeof(m->static_priv));
	free(m);
}
