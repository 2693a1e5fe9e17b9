/*
 * A WhatsApp session, client side: the only door through which wagate's
 * supervisor talks to WhatsApp. One session is one WebSocket connection's
 * life: connect, Noise handshake, then pairing (no credentials yet: QR codes,
 * pair-success, the 515 restart, login) or login (saved credentials), then
 * keepalive, presence and stanza acknowledgements until it closes.
 *
 * A session never reconnects by itself except for the restart that is part of
 * pairing; every other close is reported through on_closed with one reason
 * (docs/session.md), and the supervisor decides. on_closed fires exactly once,
 * from its own loop turn, and the session frees itself when it returns; the
 * pointer must not be used afterwards. Any wa_session_* call may be made from
 * inside any event callback.
 */
#ifndef WG_CLIENT_SESSION_H
#define WG_CLIENT_SESSION_H

#include <stdint.h>

#include "wa/creds.h"

struct event_base;
struct evdns_base;
typedef struct ssl_ctx_st SSL_CTX;
struct wa_session;

enum wa_close_reason {
	WA_CLOSE_TRANSIENT,         /* network errors, 408, 428, 500, 503, unknown stream errors */
	WA_CLOSE_RESTART_REQUIRED,  /* 515 */
	WA_CLOSE_LOGGED_OUT,        /* 401, 403, 406 */
	WA_CLOSE_REPLACED,          /* 440: another client took over */
	WA_CLOSE_TEMP_BANNED,       /* 402, with an expiry */
	WA_CLOSE_CLIENT_OUTDATED,   /* 405 */
	WA_CLOSE_PROTOCOL_ERROR,    /* bad frames, certificate failure */
	WA_CLOSE_QR_TIMEOUT,        /* every QR ref expired unscanned */
	WA_CLOSE_KEEPALIVE_TIMEOUT, /* a ping went unanswered */
	WA_CLOSE_CLOSED_BY_US,      /* wa_session_close() */
};

/* Every session's keepalive round trips (ms resolution), for GET /metrics. */
struct wg_hist;
const struct wg_hist *wa_session_keepalive_rtt(void);

/* "transient", "restart_required", ... as documented. */
const char *wa_close_reason_name(enum wa_close_reason r);

struct wa_session_close {
	enum wa_close_reason reason;
	int code;             /* the WhatsApp/HTTP-style code: 401, 408, 428, 440, 515, ... */
	const char *text;     /* for people */
	int64_t ban_expires;  /* temp_banned: Unix seconds when the ban ends, 0 if unknown */
	/*
	 * The server answered (an HTTP status to the upgrade, or the WebSocket
	 * opened): the failure is WhatsApp's answer, not the network's. 0 when
	 * the attempt never got that far (DNS, TCP, TLS, or a connect timeout).
	 */
	int reached;
};

struct wa_session_events {
	/* A QR code to show, valid for valid_ms (pairing only). */
	void (*on_qr)(struct wa_session *s, const char *qr, uint32_t valid_ms, void *arg);
	/* The phone accepted us; creds now hold the account and must be persisted. */
	void (*on_paired)(struct wa_session *s, const char *jid, const struct wa_creds *c, void *arg);
	/* Logged in and ready (after pre-keys and passive/active). */
	void (*on_open)(struct wa_session *s, const char *jid, const char *lid,
			const char *push_name, void *arg);
	void (*on_closed)(struct wa_session *s, const struct wa_session_close *why, void *arg);
	/* Any frame arrived; at is wall-clock ms. */
	void (*on_frame)(struct wa_session *s, uint64_t at, void *arg);
	/* A message stanza arrived (and was acknowledged); t is its Unix time. */
	void (*on_message)(struct wa_session *s, int64_t t, void *arg);
	/* The credentials changed (pairing, pre-key upload, LID); persist them. */
	void (*on_creds)(struct wa_session *s, const struct wa_creds *c, void *arg);
	/* Outcome of wa_session_probe(). */
	void (*on_probe)(struct wa_session *s, int ok, uint32_t rtt_ms, void *arg);
};

struct wa_session_opts {
	const char *url;            /* wss://web.whatsapp.com/ws/chat or a mock's ws:// URL */
	uint8_t root_pub[32];       /* the certificate root to trust */
	struct evdns_base *dns;     /* shared resolver (not owned); NULL: one per connection */
	SSL_CTX *ssl_ctx;           /* shared TLS context (not owned); NULL: the default */
	int dict;                   /* token dictionary to announce; 0 means 3 */
	const char *id;             /* for log lines, e.g. the session's database id */
	/* Keepalive: a ping every [min, max] ms (random per ping), answered within timeout. */
	uint32_t keepalive_min_ms, keepalive_max_ms, keepalive_timeout_ms;
	/* Pairing: how long the first QR ref is shown, and each later one. */
	uint32_t qr_first_ms, qr_next_ms;
	/* Connect (DNS+TCP+TLS+upgrade) and login (handshake to open) deadlines. */
	uint32_t connect_timeout_ms, login_timeout_ms;
};

/*
 * Fills opts with the defaults: WhatsApp's URL and root key, keepalive 20–30 s
 * with a 10 s deadline, QR refs 60 s then 20 s, 20 s connect, 60 s login.
 */
void wa_session_defaults(struct wa_session_opts *o);

/*
 * Applies WAGATE_WA_URL, WAGATE_WA_ROOT_PUBKEY, WAGATE_KEEPALIVE_INTERVAL (a
 * fixed interval), WAGATE_KEEPALIVE_TIMEOUT, WAGATE_QR_FIRST and WAGATE_QR_NEXT. Returns 0, or WG_EINVAL with
 * the offending variable named in why.
 */
int wa_session_opts_from_env(struct wa_session_opts *o, char *why, size_t whylen);

/*
 * Starts a session with a copy of creds: login if they are paired, pairing
 * otherwise. Returns 0 and *out; on failure no event ever fires.
 */
int wa_session_open(struct event_base *base, const struct wa_session_opts *o,
		    const struct wa_creds *creds, const struct wa_session_events *ev, void *arg,
		    struct wa_session **out);

/* Closes with a WebSocket close; on_closed follows with closed_by_us. Idempotent. */
void wa_session_close(struct wa_session *s);

/*
 * Checks that the connection still carries traffic: sends presence (when a
 * push name is known) and a ping; on_probe reports the round trip, or failure
 * after the keepalive timeout. WG_ESTATE unless the session is open.
 */
int wa_session_probe(struct wa_session *s);

/* True while the session is open; a ping left unanswered past its deadline closes it. */
int wa_session_alive(const struct wa_session *s);

/* The current credentials (valid until the next event). */
const struct wa_creds *wa_session_creds(const struct wa_session *s);

#endif
