/*
 * LISTEN on the event loop (docs/store.md): a connection of its own that does
 * nothing but wait for NOTIFYs from the trigger wagate installs on the web
 * app's whatsapp_sessions, so a row the app inserts or switches is acted on at
 * once instead of at the watch's next poll. Everything is libpq's
 * non-blocking API on libevent events: connecting (PQconnectPoll), LISTEN,
 * then PQconsumeInput and PQnotifies whenever the socket is readable. A lost
 * connection is made again after a backoff (1 s doubling to 30 s); once
 * listening again, the callback is told (payload NULL) that notifications may
 * have been missed meanwhile, so the caller catches up by polling once.
 */
#include "store/pg_listen.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#define LISTEN_RETRY_MIN_MS 1000
#define LISTEN_RETRY_MAX_MS 30000
/* Connecting and LISTEN must be done by then (libpq's connect_timeout does not apply here). */
#define LISTEN_SETUP_S 10

enum ls_state { LS_WAIT, LS_CONNECTING, LS_LISTENING, LS_READY };

struct store_listener {
	struct event_base *base;
	char *conninfo; /* may hold a password: wiped */
	char channel[64];
	store_notify_fn cb;
	void *arg;
	PGconn *conn;
	enum ls_state state;
	struct event *io;    /* the connection's socket */
	struct event *timer; /* the retry */
	unsigned retry_ms;
	int logged_down;
};

static void ls_connect(struct store_listener *l);

static void
ignore_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static void
drop(struct store_listener *l, const char *why)
{
	if (l->io != NULL) {
		event_free(l->io);
		l->io = NULL;
	}
	if (l->conn != NULL) {
		char msg[200] = "";
		if (why == NULL)
			snprintf(msg, sizeof(msg), "%s", PQerrorMessage(l->conn));
		for (char *p = msg; *p; p++)
			if (*p == '\n')
				*p = ' ';
		if (!l->logged_down)
			log_warn("store", "notifications from the database stopped (%s); the watch polls "
					  "meanwhile, and listening is tried again",
				  why ? why : msg);
		l->logged_down = 1;
		PQfinish(l->conn);
		l->conn = NULL;
	}
	l->state = LS_WAIT;
	struct timeval tv = {(time_t)(l->retry_ms / 1000), (suseconds_t)((l->retry_ms % 1000) * 1000)};
	evtimer_add(l->timer, &tv);
	l->retry_ms = l->retry_ms * 2 > LISTEN_RETRY_MAX_MS ? LISTEN_RETRY_MAX_MS : l->retry_ms * 2;
}

static void on_io(evutil_socket_t fd, short what, void *arg);

/* Waits on the socket for what libpq wants next (its socket may change while connecting). */
static void
watch(struct store_listener *l, short what)
{
	if (l->io != NULL)
		event_free(l->io);
	l->io = event_new(l->base, PQsocket(l->conn), what, on_io, l);
	event_add(l->io, NULL);
}

static void
drain(struct store_listener *l)
{
	PGnotify *n;
	while ((n = PQnotifies(l->conn)) != NULL) {
		if (strcmp(n->relname, l->channel) == 0)
			l->cb(l->arg, n->extra ? n->extra : "");
		PQfreemem(n);
	}
}

static void
on_io(evutil_socket_t fd, short what, void *arg)
{
	struct store_listener *l = arg;
	(void)fd;
	(void)what;
	if (l->state == LS_CONNECTING) {
		PostgresPollingStatusType ps = PQconnectPoll(l->conn);
		if (ps == PGRES_POLLING_FAILED) {
			drop(l, NULL);
			return;
		}
		if (ps != PGRES_POLLING_OK) {
			watch(l, ps == PGRES_POLLING_WRITING ? EV_WRITE : EV_READ);
			return;
		}
		PQsetNoticeProcessor(l->conn, ignore_notice, NULL);
		char sql[96];
		snprintf(sql, sizeof(sql), "LISTEN %s", l->channel);
		if (PQsetnonblocking(l->conn, 1) != 0 || !PQsendQuery(l->conn, sql)) {
			drop(l, NULL);
			return;
		}
		l->state = LS_LISTENING;
		watch(l, EV_READ | EV_PERSIST);
		return;
	}
	if (!PQconsumeInput(l->conn)) {
		drop(l, NULL);
		return;
	}
	if (l->state == LS_LISTENING) {
		while (!PQisBusy(l->conn)) {
			PGresult *r = PQgetResult(l->conn);
			if (r == NULL) {
				l->state = LS_READY;
				evtimer_del(l->timer); /* set up: no deadline while it waits */
				l->retry_ms = LISTEN_RETRY_MIN_MS;
				if (l->logged_down)
					log_info("store", "notifications from the database work again");
				l->logged_down = 0;
				l->cb(l->arg, NULL); /* some may have been missed: catch up */
				break;
			}
			int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
			PQclear(r);
			if (!ok) {
				drop(l, NULL);
				return;
			}
		}
	}
	if (PQstatus(l->conn) == CONNECTION_BAD) {
		drop(l, NULL);
		return;
	}
	drain(l);
}

/* The one timer: the retry while waiting, the setup's deadline while connecting and listening. */
static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct store_listener *l = arg;
	(void)fd;
	(void)what;
	if (l->state == LS_WAIT)
		ls_connect(l);
	else if (l->state != LS_READY)
		drop(l, "no answer while connecting");
}

static void
ls_connect(struct store_listener *l)
{
	/*
	 * TCP keepalives: a listening connection only reads, so one a NAT or a
	 * firewall dropped in silence is noticed within a minute, not two hours.
	 */
	const char *const keys[] = {"dbname", "fallback_application_name", "keepalives",
				    "keepalives_idle", "keepalives_interval", "keepalives_count", NULL};
	const char *const vals[] = {l->conninfo, "wagate-listen", "1", "30", "10", "3", NULL};
	l->conn = PQconnectStartParams(keys, vals, 1);
	if (l->conn == NULL || PQstatus(l->conn) == CONNECTION_BAD) {
		drop(l, l->conn ? NULL : "out of memory");
		return;
	}
	l->state = LS_CONNECTING;
	struct timeval tv = {LISTEN_SETUP_S, 0};
	evtimer_add(l->timer, &tv);
	watch(l, EV_WRITE);
}

int
store_listener_new(struct event_base *base, const char *url, const char *channel,
		   store_notify_fn cb, void *arg, struct store_listener **out, char *err,
		   size_t errlen)
{
	*out = NULL;
	if (strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0) {
		snprintf(err, errlen, "notifications need PostgreSQL");
		return WG_ENOTSUP;
	}
	if (strlen(channel) >= 64 || strspn(channel, "abcdefghijklmnopqrstuvwxyz_") != strlen(channel)) {
		snprintf(err, errlen, "bad channel name");
		return WG_EINVAL;
	}
	struct store_listener *l = wg_calloc(1, sizeof(*l));
	l->base = base;
	l->conninfo = wg_strdup(url);
	snprintf(l->channel, sizeof(l->channel), "%s", channel);
	l->cb = cb;
	l->arg = arg;
	l->retry_ms = LISTEN_RETRY_MIN_MS;
	l->timer = evtimer_new(base, on_retry, l);
	ls_connect(l);
	*out = l;
	return 0;
}

void
store_listener_free(struct store_listener *l)
{
	if (l == NULL)
		return;
	if (l->io)
		event_free(l->io);
	event_free(l->timer);
	if (l->conn)
		PQfinish(l->conn);
	wg_wipe(l->conninfo, strlen(l->conninfo));
	free(l->conninfo);
	free(l);
}
