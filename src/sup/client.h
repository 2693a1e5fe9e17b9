/*
 * What the supervisor needs from a WhatsApp session, as a struct of function
 * pointers: the real one wraps the session client (client_wa.c); the unit
 * tests use a fake that they drive by hand. Credentials travel as the
 * auth_state blob, so the supervisor never touches keys.
 */
#ifndef WG_SUP_CLIENT_H
#define WG_SUP_CLIENT_H

#include <stdint.h>

#include "client/session.h"

struct sup_client;

/* Events a client reports; arg is the supervisor's per-session pointer. */
struct sup_client_cb {
	void (*qr)(void *arg, const char *qr, uint32_t valid_ms);
	void (*paired)(void *arg, const char *jid);
	void (*open)(void *arg, const char *jid, const char *push_name);
	/* Exactly once; the client is gone when this returns. */
	void (*closed)(void *arg, const struct wa_session_close *why);
	void (*message)(void *arg, int64_t t);
	/* New credentials to persist (auth_state) and the phone number, when known. */
	void (*creds)(void *arg, const char *auth_state, const char *phone);
	void (*probe)(void *arg, int ok, uint32_t rtt_ms);
};

struct sup_client_ops {
	/*
	 * Starts a connection for session id with auth_state (NULL: pair a new
	 * device). Returns 0 and *out; on failure no callback fires.
	 */
	int (*open)(void *ctx, const char *id, const char *auth_state, const struct sup_client_cb *cb,
		    void *arg, struct sup_client **out);
	void (*close)(struct sup_client *c);
	int (*probe)(struct sup_client *c);
	int (*alive)(const struct sup_client *c);
};

/* The real client: wa_session over WebSocket. ctx is a struct sup_wa_ctx. */
struct event_base;
struct sup_wa_ctx {
	struct event_base *base;
	struct wa_session_opts opts; /* shared settings: URL, root key, keepalive, resolver */
};
extern const struct sup_client_ops sup_client_wa;

#endif
