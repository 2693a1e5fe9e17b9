/*
 * Internals shared by the mock's files:
 *   mock.c     connections, the Noise handshake, the state machine (mc_enter)
 *   stanza.c   the stanzas the mock answers once the handshake is done
 *   pair.c     the phone: pair-device refs, /scan, pair-success, the reply check
 *   store.c    phones and paired devices, and the --state file
 *   control.c  the JSON control API
 */
#ifndef WG_MOCK_INT_H
#define WG_MOCK_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "core/buf.h"
#include "core/map.h"
#include "mock/mock.h"
#include "wa/frame.h"
#include "wa/node.h"

struct ws_conn;
struct ws_server;
struct evhttp;
struct evhttp_request;
struct event;
struct wa_noise;
struct json_t;

/*
 * A connection's life (docs/mock.md):
 *   handshake  Noise, until the client's payload is decrypted
 *   register   a new device: pair-device refs sent, waiting for a phone to scan
 *   pairing    pair-success sent, waiting for the client's pair-device-sign
 *   paired     the reply verified: 515 sent, the connection is closing
 *   login      a paired device (or any with --accept-any-login): success or failure
 *              follows after a short pause, then stanzas are answered
 *   blackhole  the control API stopped reading and answering; the socket stays open
 *   closing    the mock started closing (stream error, failure, control API, bad input)
 *   closed     terminal; the struct lingers only until the WebSocket layer's on_close
 * mc_enter() is the only place that changes state.
 */
enum mc_state {
	MC_HANDSHAKE,
	MC_REGISTER,
	MC_PAIRING,
	MC_PAIRED,
	MC_LOGIN,
	MC_BLACKHOLE,
	MC_CLOSING,
	MC_CLOSED,
};

#define MOCK_NREFS 6
#define MOCK_REF_MAX 64
#define MOCK_JID_MAX 64
#define MOCK_PHONE_MAX 20 /* digits of a phone number */
#define MOCK_LID_MAX 24
/* Each connection remembers this many acked stanza ids and receipt ids (the newest). */
#define MOCK_MAX_IDS 256

/* A login failure to play (reason, and for 402 the code and expire attributes). */
struct mock_failure {
	char reason[4];
	char code[16];
	char expire[24];
};

struct mock_phone {
	char phone[MOCK_PHONE_MAX + 1];
	char lid[MOCK_LID_MAX];            /* the account's LID user part */
	uint8_t account_priv[32], account_pub[32];
	uint32_t key_index;                /* last ADV key index handed out */
};

struct mock_device {
	char jid[MOCK_JID_MAX];            /* PHONE:DEV@s.whatsapp.net */
	char lid[MOCK_JID_MAX];            /* LID:DEV@lid */
	struct mock_phone *phone;
	unsigned dev;
	uint8_t noise_pub[32], identity_pub[32];
	uint32_t key_index;
	uint32_t prekeys;                  /* pre-keys uploaded so far */
	uint64_t paired_at;                /* wall-clock ms */
	bool pending;                      /* reserved by a scan, not yet verified */
};

/* Phones and devices; pointers stay valid until the entry is removed or the store freed. */
struct mock_store {
	char *path;                        /* the --state file, or NULL: memory only */
	struct mock_phone **phones;
	size_t nphones;
	struct mock_device **devices;
	size_t ndevices;
};

struct mock_scan;

struct mock_conn {
	struct mock *m;
	uint64_t id;
	struct ws_conn *ws;
	enum mc_state state;
	int dict;                          /* 2 or 3, from the intro; 0 before it */
	char remote[64];
	uint64_t connected_at;             /* wall-clock ms */
	uint64_t last_frame_at;            /* wall-clock ms of the last frame received */
	uint32_t frames_in, pings, presences;
	uint32_t prekeys;                  /* keys uploaded on this connection */
	char *jid;                         /* the device, once known */
	char *lid;
	uint8_t noise_pub[32];             /* the client's static key, after the handshake */
	uint8_t identity_pub[32];          /* from a registration payload */
	/* register: the refs sent in pair-device and that iq's id */
	char refs[MOCK_NREFS][MOCK_REF_MAX];
	char pair_iq_id[24];
	bool pair_device_acked;
	/* login: what to send after the pause; failure.reason empty means success */
	struct mock_failure failure;
	bool logged_in;                    /* <success> sent */
	bool in_flight;                    /* counted in mock.in_flight */
	struct mock_device *dev;           /* the paired device logging in, if known */
	struct mock_scan *scan;            /* a pairing in progress on this connection */
	struct json_t *acked, *receipts;   /* arrays of stanza ids */
	struct wa_frame_reader rd;
	struct wa_noise *noise;
	struct event *handshake_timer;     /* drops clients that never finish the handshake */
	struct event *start_timer;         /* the pause before the first stanza */
	TAILQ_ENTRY(mock_conn) link;
};

TAILQ_HEAD(mock_conn_list, mock_conn);

/* A next-login failure queued for a device jid by the control API. */
struct mock_fault {
	char jid[MOCK_JID_MAX];
	struct mock_failure failure;
};
#define MOCK_MAX_FAULTS 1024

#define MOCK_ANON_DEVICES_MAX 100000

struct mock {
	struct event_base *base;
	struct ws_server *ws;
	struct ssl_ctx_st *tls; /* wss:// when set (SSL_CTX) */
	struct evhttp *http;
	int control_port;
	bool accept_any_login;
	bool refusing;
	uint8_t root_priv[32], root_pub[32];
	uint8_t static_priv[32], static_pub[32];
	struct wg_buf chain;    /* the certificate chain served to every client (mock_chain) */
	int64_t chain_issued;   /* Unix seconds */
	uint64_t next_id;
	uint64_t next_iq;
	struct mock_conn_list conns;
	unsigned nconns;
	/* GET /stats: connections accepted, not yet logged in, not ended; and its high-water mark. */
	unsigned in_flight, in_flight_max;
	unsigned logged_in;
	uint64_t accepted, logins;
	/*
	 * Two connections of one device: jid -> its logged-in connection; a
	 * login while another connection of the same device is still open
	 * counts as an overlap (GET /stats), which a gateway must never cause.
	 */
	struct wg_map by_jid;
	uint64_t overlaps;
	/* --idle-timeout: a logged-in connection silent this long is dropped, as a server drops a client that stopped pinging. */
	uint64_t idle_timeout_ms;
	struct event *idle_timer;
	/* jid -> pre-keys uploaded, for devices logged in without a record
	 * (--accept-any-login), at most MOCK_ANON_DEVICES_MAX of them. */
	struct json_t *anon_prekeys;
	uint32_t prekeys_known;
	struct mock_store store;
	struct mock_fault *faults;
	size_t nfaults;
	/* shutdown */
	void (*done)(void *);
	void *done_arg;
	struct event *shutdown_timer;
};

/* mock.c */
const char *mock__state_name(enum mc_state s);
void mc_enter(struct mock_conn *c, enum mc_state s, const char *why);
/* Encodes, encrypts and sends a stanza; refused (WG_ESTATE) when blackholed or not in transport. */
int mc_send_node(struct mock_conn *c, const struct wa_node *n);
/* Starts a clean WebSocket close, entering closing. */
void mc_close(struct mock_conn *c, int code, const char *why);
/* Sends a <stream:error> for code (401 and 440 in their conflict forms), then closes. */
int mc_stream_error(struct mock_conn *c, int code);
/* A fresh stanza id for iqs the mock sends. */
void mock__iq_id(struct mock *m, char out[24]);
/* The connection is logged in: it leaves the handshakes in flight. */
void mc_logged_in(struct mock_conn *c);
/* "mock#ID", for log lines. */
const char *mc_who(const struct mock_conn *c, char buf[32]);

/* stanza.c */
void mock__handle_node(struct mock_conn *c, const struct wa_node *n);
/* The first stanza of a login: <success> or <failure>. */
void mock__login_start(struct mock_conn *c);
/* Sends <message> with an undecryptable enc payload; from/id/t as given. */
int mock__send_message(struct mock_conn *c, const char *from, const char *id, uint64_t t);
/* Checks a failure reason (and 402's code/expire) the control API was given. */
bool mock__failure_valid(const char *reason);
/* Takes (and forgets) the next-login failure queued for jid. */
bool mock__take_fault(struct mock *m, const char *jid, struct mock_failure *out);
/* Queues (or with failure NULL, clears) a next-login failure for jid; false when the table is full. */
bool mock__set_fault(struct mock *m, const char *jid, const struct mock_failure *f);

/* pair.c */
void mock__pair_start(struct mock_conn *c);
/* An iq result/error whose id matches the pending pair-success. */
void mock__pair_reply(struct mock_conn *c, const struct wa_node *n);
/* The connection cannot answer any more (why says how): a pending scan fails with 502. */
void mock__pair_conn_gone(struct mock_conn *c, const char *why);
/* POST /scan; answers req now or when the client replied. */
void mock__scan(struct mock *m, struct evhttp_request *req, const char *qr, const char *phone,
		const char *name);

/* store.c */
bool mock__phone_valid(const char *phone);
/* Loads path (a missing file is an empty store). Returns 0 or WG_EINVAL/WG_EIO with err set. */
int mock__store_load(struct mock_store *s, const char *path, char *err, size_t errlen);
/* Writes the store atomically (temp file, fsync, rename); a no-op without a path. */
int mock__store_save(const struct mock_store *s, char *err, size_t errlen);
void mock__store_free(struct mock_store *s);
struct mock_phone *mock__store_phone(struct mock_store *s, const char *phone, bool create);
/* A device that finished pairing (pending ones are not found). */
struct mock_device *mock__store_device(const struct mock_store *s, const char *jid);
/* Reserves the next free device number (1..MOCK_MAX_DEV) of a phone; NULL when all are taken. */
struct mock_device *mock__store_reserve(struct mock_store *s, struct mock_phone *p);
void mock__store_remove(struct mock_store *s, struct mock_device *d);
/* The LID user part used for a phone the store does not know (accept-any logins). */
void mock__lid_for(const struct mock_store *s, const char *phone, char out[MOCK_LID_MAX]);
struct json_t *mock__store_devices_json(const struct mock_store *s);
#define MOCK_MAX_DEV 99
#define MOCK_MAX_DEVICES 10000

/* control.c */
int mock__control_start(struct mock *m, const char *host_port, char *err, size_t errlen);
void mock__control_stop(struct mock *m);
void mock__reply_json(struct evhttp_request *req, int status, struct json_t *body);
void mock__reply_error(struct evhttp_request *req, int status, const char *msg);

#endif
