/*
 * WebSocket connections (RFC 6455), client and server, on libevent bufferevents:
 * framing (ws_frame.c), fragmentation, ping/pong and the close handshake.
 *
 * Life cycle. A connection reports exactly one on_close, also when it never
 * opened (DNS failure, refused TCP connect, TLS failure, non-101 answer,
 * timeout). on_close is always delivered from its own event-loop turn, never
 * from inside another callback or from inside a ws_* call, and the library
 * frees the connection as soon as on_close returns: the pointer must not be
 * used afterwards. Every ws_* function may be called from inside any callback
 * of the same connection (including ws_close and ws_abort in on_message).
 *
 * Errors passed to on_close (err):
 *   0             the close handshake completed, or ws_abort() was called
 *   WG_ECLOSED    the peer closed TCP without a close handshake (or mid-upgrade)
 *   WG_ETIMEDOUT  connect, upgrade or closing handshake deadline passed
 *   WG_ELIMIT     the peer sent a message above max_message (1009 was sent)
 *   WG_EPROTO     bad frames (1002/1007 sent) or a bad HTTP upgrade answer
 *   WG_ENOTFOUND  the host name did not resolve
 *   WG_ECERT      the TLS certificate was rejected
 *   WG_EIO        any other socket or TLS error
 * code is the close code the peer sent, else the one we sent, else 1006. When
 * the upgrade was answered with another HTTP status (404, 503, ...) err is
 * WG_EPROTO and code is that HTTP status; other failed connects give 0.
 *
 * Messages. Binary and text messages are both delivered to on_message as
 * bytes (text is UTF-8 checked); the data pointer is valid only for
 * the duration of the callback. ws_send() always sends binary messages.
 */
#ifndef WG_NET_WS_H
#define WG_NET_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
typedef struct ssl_ctx_st SSL_CTX;

struct ws_conn;
struct ws_server;

struct ws_callbacks {
	/* The upgrade completed; messages may be sent. Not called for failed connects. */
	void (*on_open)(struct ws_conn *c, void *arg);
	void (*on_message)(struct ws_conn *c, const uint8_t *data, size_t len, void *arg);
	/* Exactly once per connection; the connection is freed when this returns. */
	void (*on_close)(struct ws_conn *c, int err, int code, const char *reason, void *arg);
};

/* Per-connection limits; a zero field takes the default shown. */
struct ws_limits {
	size_t max_message;            /* largest incoming message, 4 MiB */
	size_t max_queued;             /* outgoing bytes not yet written to the socket, 8 MiB */
	uint32_t handshake_timeout_ms; /* HTTP upgrade exchange, 20000 */
	uint32_t close_timeout_ms;     /* wait for the peer's close frame / EOF, 2000 */
};

struct ws_client_opts {
	const char *url;    /* ws://host[:port]/path or wss://host[:port]/path */
	const char *origin; /* Origin header value, or NULL to omit it */
	/* Extra request headers, complete "Name: value" lines without CRLF,
	 * NULL-terminated; NULL for none. */
	const char *const *headers;
	/* TLS context for wss://, shared by many connections; NULL uses a
	 * process-wide default with the system CA store. Not owned. */
	SSL_CTX *ssl_ctx;
	/* Resolver; NULL creates one per connection from /etc/resolv.conf,
	 * which is fine for a few connections but wasteful for thousands. Not owned. */
	struct evdns_base *dns;
	uint32_t connect_timeout_ms; /* DNS + TCP + TLS, 20000 */
	struct ws_limits limits;
};

/*
 * The process-wide client TLS context used when opts->ssl_ctx is NULL: TLS 1.2+,
 * peer verification against the system CA store, SSL_MODE_RELEASE_BUFFERS.
 * Created on first use, which reads and parses the CA bundle from disk (tens
 * of ms): call it once at start-up so no connect pays that on the loop.
 * Returns NULL if the store cannot be loaded. Owned by the library.
 */
SSL_CTX *ws_tls_default_ctx(void);

/*
 * Starts an asynchronous connect. On success returns 0 and stores the new
 * connection in *out; the outcome arrives through cb (on_open or on_close).
 * On failure (WG_EINVAL for a bad URL or header, WG_EIO if a resource could not
 * be set up) no callback ever fires and *out is untouched.
 */
int ws_client_connect(struct event_base *base, const struct ws_client_opts *opts,
                      const struct ws_callbacks *cb, void *arg, struct ws_conn **out);

/*
 * Queues one binary message. Returns 0, WG_ELIMIT if the bytes already
 * pending plus len would exceed max_queued, or WG_ESTATE if the connection is
 * not open (not yet upgraded, or closing).
 */
int ws_send(struct ws_conn *c, const uint8_t *data, size_t len);

/*
 * Starts the closing handshake: messages already queued go out first, then a
 * close frame with code (1000 if 0) and reason (truncated to 123 bytes). If the
 * peer does not answer within close_timeout_ms the socket is closed anyway
 * and on_close reports WG_ETIMEDOUT. Before the upgrade completed it ends the
 * attempt at once. Idempotent.
 */
void ws_close(struct ws_conn *c, int code, const char *reason);

/*
 * Drops the connection now, without a close frame; on_close follows with err 0
 * and code 1006. With reset the socket is closed with SO_LINGER 0, so the peer
 * sees a TCP RST rather than a FIN.
 */
void ws_abort(struct ws_conn *c, bool reset);

/*
 * Frees the connection now, closing its socket without a close frame and
 * without calling on_close: for an owner tearing everything down (a server
 * freeing itself before its loop ends). Never call it from inside one of this
 * connection's callbacks; there, use ws_abort(). NULL-safe.
 */
void ws_destroy(struct ws_conn *c);

/*
 * Stops (or resumes) reading from the socket, keeping it open; the peer's
 * data piles up in the kernel buffers until TCP flow control stops it. When
 * called from inside on_message, messages already decoded from the same read
 * (at most a few KiB) may still be delivered.
 */
void ws_pause_reading(struct ws_conn *c, bool paused);

/*
 * Background: the connection's events run only in loop turns where nothing
 * else is ready, a few at a time (on a base made by ws_base_new()). For
 * connections doing bulk work that can wait a turn (logins: a millisecond of
 * cryptography per step), so keepalives and API requests stay prompt while
 * many log in. Ignored on a base without the priorities.
 */
void ws_set_background(struct ws_conn *c, bool background);
/*
 * Changes the largest incoming message from now on (a client lets a server
 * send large messages only once it has shown who it is). 0 keeps it.
 */
void ws_set_max_message(struct ws_conn *c, size_t max_message);

/* The Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key || GUID)), RFC 6455 §4.2.2. 0 or WG_EIO. */
int ws_accept_value(const char *key, size_t keylen, char out[32]);

/*
 * An event base with three priorities (ws_set_background uses the lowest)
 * and a check for other events after every WS_BACKGROUND_BURST background
 * callbacks. NULL when libevent cannot make one.
 */
#define WS_BACKGROUND_BURST 2
struct event_base *ws_base_new(void);

/* "ip:port" of the peer for server connections, "host:port" from the URL for clients. */
const char *ws_remote(const struct ws_conn *c);

/* Replaces the callbacks; used by ws_accept_cb, allowed at any time. */
void ws_conn_set_callbacks(struct ws_conn *c, const struct ws_callbacks *cb, void *arg);

/* A pointer for the owner, untouched by the library. */
void ws_conn_set_user(struct ws_conn *c, void *user);
void *ws_conn_user(const struct ws_conn *c);

/* True once the upgrade completed and until a close starts. */
bool ws_is_open(const struct ws_conn *c);

/*
 * Server. The accept callback runs once the upgrade has been answered with
 * 101; it must set the connection's callbacks (or close it). on_open then
 * follows if the callbacks have one. Failed upgrades never reach the user.
 */
typedef void (*ws_accept_cb)(struct ws_conn *c, const char *remote, void *arg);

/*
 * Listens on host_port ("127.0.0.1:0" picks a free port, "[::1]:8080" for
 * IPv6) and accepts upgrades for path (exact match, query string ignored).
 * Returns NULL if the address cannot be parsed or bound.
 */
struct ws_server *ws_server_new(struct event_base *base, const char *host_port, const char *path,
                                ws_accept_cb cb, void *arg);
/* The bound port. */
int ws_server_port(const struct ws_server *s);
/* Limits for connections accepted from now on. */
void ws_server_set_limits(struct ws_server *s, const struct ws_limits *lim);
/* While set, new upgrades are answered "503 Service Unavailable" (fault injection). */
void ws_server_set_refuse(struct ws_server *s, bool refuse);
/* Serve wss: each accepted socket does a TLS handshake first; ctx is not owned
 * and must outlive the server. NULL turns TLS off again. */
void ws_server_set_tls(struct ws_server *s, SSL_CTX *ctx);
/* Stops listening and drops upgrades in progress. Connections already handed
 * to the accept callback are not affected; the user closes them. NULL-safe. */
void ws_server_free(struct ws_server *s);

#endif
