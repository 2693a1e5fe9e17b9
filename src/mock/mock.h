/*
 * wagate mock: a WhatsApp-compatible server of our own, for tests, demos and
 * benchmarks. It speaks the real protocol (WebSocket, Noise with a certificate
 * chain rooted in its own key, binary nodes with the dictionary each client
 * asks for), pairs new devices by playing the phone that scans their QR code,
 * logs paired devices in and answers what they ask after login, and exposes a
 * JSON control API to inspect connections, play the phone and inject faults.
 * See docs/mock.md.
 */
#ifndef WG_MOCK_H
#define WG_MOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mock;

struct mock_opts {
	const char *listen;        /* host:port of ws://.../ws/chat; port 0 picks one */
	const char *control;       /* host:port of the control API; port 0 picks one */
	const char *root_key_file; /* keeps the root private key across runs; NULL: fresh */
	const char *state_file;    /* keeps phones and paired devices across runs; NULL: memory */
	bool accept_any_login;     /* log in any device, paired here or not */
	/* With accept_any_login: pre-keys a device without a record is taken to
	 * have uploaded already (a saved session logging in again). */
	uint32_t prekeys_known;
	uint64_t idle_timeout_ms;  /* drop logged-in connections silent this long; 0: never */
	const char *tls_cert;      /* PEM certificate chain: serve wss:// (with tls_key) */
	const char *tls_key;       /* PEM private key of tls_cert */
};

/*
 * Loads or creates the root key, loads the state file (a missing file is an
 * empty state; a malformed one an error), binds both listeners and starts
 * serving. Returns 0, or a negative WG_E* code with a message for a person in err.
 */
int mock_new(struct event_base *base, const struct mock_opts *opts, struct mock **out, char *err,
	     size_t errlen);

/* The public root key clients must trust (WAGATE_WA_ROOT_PUBKEY). */
const uint8_t *mock_root_pub(const struct mock *m);
/* The bound ports. */
int mock_listen_port(const struct mock *m);
int mock_control_port(const struct mock *m);

/*
 * The connections as the control API shows them (GET /connections, fields in
 * docs/mock.md): a new JSON array. The caller owns the reference.
 */
struct json_t;
struct json_t *mock_connections(const struct mock *m);

/*
 * Stops accepting, closes every connection with a WebSocket close, and calls
 * done (from the loop) once all are gone or a short deadline passed.
 */
void mock_shutdown(struct mock *m, void (*done)(void *arg), void *arg);

/* Frees everything; connections still open are dropped. NULL-safe. */
void mock_free(struct mock *m);

#endif
