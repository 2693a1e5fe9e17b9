/*
 * LISTEN on the event loop: a PostgreSQL connection of its own, waiting for
 * the notifications of one channel (docs/store.md, "Noticing the app's
 * writes"). Non-blocking throughout; reconnects by itself.
 */
#ifndef WG_STORE_PG_LISTEN_H
#define WG_STORE_PG_LISTEN_H

#include <stddef.h>

struct event_base;
struct store_listener;

/* A notification's payload; NULL when (again) listening: some may have been missed. */
typedef void (*store_notify_fn)(void *arg, const char *payload);

/* Starts listening on channel (lower-case letters and _); WG_ENOTSUP for a URL that is not PostgreSQL's. */
int store_listener_new(struct event_base *base, const char *url, const char *channel,
		       store_notify_fn cb, void *arg, struct store_listener **out, char *err,
		       size_t errlen);
void store_listener_free(struct store_listener *l);

/* The channel the trigger on whatsapp_sessions notifies, with the row's id as the payload. */
#define STORE_NOTIFY_CHANNEL "wagate_sessions"

#endif
