/* Internals shared by the mock's files (mock.c: connections; control.c: control API). */
#ifndef WG_MOCK_INT_H
#define WG_MOCK_INT_H

#include <stdint.h>
#include <sys/queue.h>

#include "core/buf.h"
#include "mock/mock.h"
#include "wa/frame.h"
#include "wa/node.h"

struct ws_conn;
struct ws_server;
struct evhttp;
struct event;
struct wa_noise;

/*
 * A connection's life: handshake (Noise, until the client's payload is
 * decrypted), then register (a new device: pairing) or login (a paired device).
 * closed is terminal; the struct lingers only until the WebSocket layer's
 * on_close has run. mc_enter() is the only place that changes state.
 */
enum mc_state { MC_HANDSHAKE, MC_REGISTER, MC_LOGIN, MC_CLOSED };

struct mock_conn {
	struct mock *m;
	uint64_t id;
	struct ws_conn *ws;
	enum mc_state state;
	int dict;                     /* 2 or 3, from the intro; 0 before it */
	char remote[64];
	uint64_t connected_at;        /* wall-clock ms */
	uint64_t last_frame_at;       /* wall-clock ms of the last frame received */
	uint32_t frames_in, pings;
	char *jid;                    /* the device, once known from the login payload */
	struct wa_frame_reader rd;
	struct wa_noise *noise;
	struct event *handshake_timer; /* drops clients that never finish the handshake */
	TAILQ_ENTRY(mock_conn) link;
};

TAILQ_HEAD(mock_conn_list, mock_conn);

struct mock {
	struct event_base *base;
	struct ws_server *ws;
	struct evhttp *http;
	int control_port;
	uint8_t root_priv[32], root_pub[32];
	uint8_t static_priv[32], static_pub[32];
	uint64_t next_id;
	struct mock_conn_list conns;
	unsigned nconns;
	/* shutdown */
	void (*done)(void *);
	void *done_arg;
	struct event *shutdown_timer;
};

const char *mock__state_name(enum mc_state s);
int mock__control_start(struct mock *m, const char *host_port, char *err, size_t errlen);
void mock__control_stop(struct mock *m);

#endif
