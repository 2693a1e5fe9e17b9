/*
 * GET /events: session, health and QR changes pushed as Server-Sent Events
 * (docs/api.md has the exact format).
 *
 * The supervisor calls on_sup() synchronously from sup__enter() after each
 * change is in its memory; the event is formatted once, kept in a ring for
 * Last-Event-ID replay, and written to every open stream at once, so it is on
 * the wire within the same loop turn as the change. /health is recomputed
 * after session events, at most every EV_HEALTH_MIN_MS and only while someone
 * listens: a burst of changes costs one event, not one per change.
 *
 * Ids: one counter per process, starting at the process's start time in
 * microseconds rather than at 1, so an id from an earlier process is always
 * below this one's first and can be told apart without the client's help
 * (EventSource sends back only the id). The epoch in "hello" says the same to
 * clients that look.
 *
 * A stream is a request whose chunked answer never ends. The HTTP server
 * keeps reading its connection, so a hang-up closes it at once (the close
 * callback forgets the stream). A client that stops reading is dropped when
 * more than EV_MAX_QUEUED bytes wait for it; it reconnects and catches up
 * from the ring. Streams are closed from a deferred event, never from inside
 * the server's or the supervisor's callbacks.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api/api_int.h"
#include "core/clock.h"
#include "core/enc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "sup/sup.h"



#define EV_DEFAULT_STREAMS 256
#define EV_DEFAULT_RING 1024
#define EV_DEFAULT_PING_MS 15000
/* How long a browser waits before reconnecting (the SSE retry field). */
#define EV_RETRY_MS 3000
/* /health is recomputed at most this often while events arrive. */
#define EV_HEALTH_MIN_MS 250
/* Bytes that may wait for a stream beyond its first answer before it is dropped. */
#define EV_MAX_QUEUED (1024 * 1024)
/* Sessions per page of a snapshot: bounds one loop turn at any number of sessions. */
#define EV_SNAPSHOT_PAGE 500

struct ev_rec {
	uint64_t id;
	char *text; /* the whole frame: "id: ...\nevent: ...\ndata: ...\n\n" */
	size_t len;
};

struct ev_stream {
	struct api_events *ev;
	struct httpd_req *req;
	struct httpd_conn *evcon;
	size_t allowance;    /* bytes that may be queued: the first answer + EV_MAX_QUEUED */
	bool dead;           /* to be closed by reap() */
	/*
	 * The snapshot is sent a page per loop turn (EV_SNAPSHOT_PAGE sessions),
	 * each once the one before has gone out; live events meanwhile wait in
	 * `held` and follow it, in order.
	 */
	bool snapshotting;
	struct evbuffer *held;
	struct event *snap_next;
	struct sup_cursor snap; /* the last session the snapshot visited */
	struct ev_stream *prev, *next;
};

struct api_events {
	struct api *a;
	struct ev_rec *ring;
	size_t cap, start, count;
	uint64_t base;    /* ids of this process are above this */
	uint64_t last_id; /* the newest id given out */
	uint64_t floor;   /* every id above floor, up to last_id, is in the ring */
	char epoch[33];
	struct ev_stream *streams;
	size_t n, max;
	uint32_t ping_ms;
	struct event *ping, *health_timer, *reaper;
	bool health_armed, health_dirty;
	uint64_t health_at;  /* when /health was last computed (monotonic ms) */
	char health_key[96]; /* status and counts of the last health event */
	char *health_data;   /* the last computed /health body, for snapshots */
	struct evbuffer *tmp;
};

/* ---- the ring and the streams ---- */

static void
ring_push(struct api_events *ev, char *text, size_t len, uint64_t id)
{
	if (ev->count == ev->cap) {
		struct ev_rec *old = &ev->ring[ev->start];
		ev->floor = old->id;
		free(old->text);
		ev->start = (ev->start + 1) % ev->cap;
		ev->count--;
	}
	struct ev_rec *r = &ev->ring[(ev->start + ev->count) % ev->cap];
	r->id = id;
	r->text = text;
	r->len = len;
	ev->count++;
}

static void
stream_kill(struct ev_stream *s, const char *why)
{
	if (s->dead)
		return;
	s->dead = true;
	log_debug("api", "event stream closed: %s", why);
	event_active(s->ev->reaper, EV_TIMEOUT, 0);
}

static void
stream_write(struct ev_stream *s, const char *text, size_t len)
{
	struct api_events *ev = s->ev;
	if (s->dead)
		return;
	if (s->snapshotting) {
		/* After the snapshot, in order; a client this far behind starts over later. */
		if (evbuffer_get_length(s->held) + len > EV_MAX_QUEUED) {
			stream_kill(s, "too many events while its snapshot was being sent");
			return;
		}
		evbuffer_add(s->held, text, len);
		return;
	}
	if (httpd_pending_output(s->evcon) > s->allowance) {
		stream_kill(s, "the client does not read");
		return;
	}
	evbuffer_add(ev->tmp, text, len);
	httpd_reply_chunk(s->req, ev->tmp, NULL, NULL);
	evbuffer_drain(ev->tmp, evbuffer_get_length(ev->tmp));
}

static void
stream_free(struct ev_stream *s)
{
	if (s->snap_next)
		event_free(s->snap_next);
	if (s->held)
		evbuffer_free(s->held);
	free(s);
}

static void
unlink_stream(struct ev_stream *s)
{
	struct api_events *ev = s->ev;
	if (s->prev)
		s->prev->next = s->next;
	else
		ev->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	ev->n--;
	stream_free(s);
	if (ev->n == 0)
		event_del(ev->ping);
}

/* The connection closes (the client hung up, a write failed or timed out, the API stops): the request goes with it. */
static void
stream_conn_closed(struct httpd_conn *evcon, void *arg)
{
	struct ev_stream *s = arg;
	(void)evcon;
	unlink_stream(s);
}

/* Closes the streams marked dead, outside every other callback. */
static void
reap(evutil_socket_t fd, short what, void *arg)
{
	struct api_events *ev = arg;
	struct ev_stream *s = ev->streams;
	while (s) {
		struct ev_stream *next = s->next;
		if (s->dead) {
			struct httpd_conn *evcon = s->evcon;
			httpd_set_closecb(evcon, NULL, NULL);
			unlink_stream(s);
			httpd_conn_close(evcon); /* frees the request with it */
		}
		s = next;
	}
}

static void
broadcast(struct api_events *ev, const char *text, size_t len)
{
	for (struct ev_stream *s = ev->streams; s; s = s->next)
		stream_write(s, text, len);
}

/* Gives data (consumed) the next id, keeps it for replay and sends it to every stream. */
/* An event with its next id: kept in the ring for replays, sent to every stream. */
static void
emit_text(struct api_events *ev, const char *name, const char *js, size_t jslen)
{
	uint64_t id = ++ev->last_id;
	size_t cap = jslen + strlen(name) + 64;
	char *text = wg_malloc(cap);
	int len = snprintf(text, cap, "id: %" PRIu64 "\nevent: %s\ndata: %.*s\n\n", id, name,
	                   (int)jslen, js);
	ring_push(ev, text, (size_t)len, id);
	broadcast(ev, text, (size_t)len);
}

static void
emit(struct api_events *ev, const char *name, json_t *data)
{
	char *js = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	json_decref(data);
	if (js == NULL) /* jansson fails only on allocation */
		abort();
	emit_text(ev, name, js, strlen(js));
	free(js);
}

/* ---- health ---- */

/* Recomputes /health; a change of status or counts is an event. */
static void
health_refresh(struct api_events *ev)
{
	struct api *a = ev->a;
	if (a->sup == NULL)
		return;
	char key[sizeof(ev->health_key)];
	int status;
	json_t *h = api__health_json(a, &status, key, sizeof(key));
	ev->health_at = wg_now_ms();
	ev->health_dirty = false;
	free(ev->health_data);
	ev->health_data = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (ev->health_data == NULL)
		abort();
	if (strcmp(key, ev->health_key) == 0) {
		json_decref(h);
		return;
	}
	snprintf(ev->health_key, sizeof(ev->health_key), "%s", key);
	emit(ev, "health", h);
}

static void
on_health_timer(evutil_socket_t fd, short what, void *arg)
{
	struct api_events *ev = arg;
	ev->health_armed = false;
	health_refresh(ev);
}

/* Something a count may depend on changed: recompute soon, if anyone listens. */
static void
health_changed(struct api_events *ev)
{
	ev->health_dirty = true;
	if (ev->n == 0 || ev->health_armed)
		return; /* the next stream recomputes it when it connects */
	uint64_t now = wg_now_ms(), due = ev->health_at + EV_HEALTH_MIN_MS;
	uint64_t d = due > now ? due - now : 0;
	struct timeval tv = {(time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000)};
	evtimer_add(ev->health_timer, &tv);
	ev->health_armed = true;
}

static void
on_ping(evutil_socket_t fd, short what, void *arg)
{
	struct api_events *ev = arg;
	static const char ping[] = ": ping\n\n";
	broadcast(ev, ping, sizeof(ping) - 1);
	/* Also catches what no session event announces: the database going away or coming back. */
	health_refresh(ev);
}

/* ---- events from the supervisor ---- */

/* A session's change, from the supervisor's memory (no I/O per event). */
void
api__events_session(struct api *a, const char *id)
{
	struct sup_session_view v;
	if (a->sup != NULL && sup_view(a->sup, id, &v) == 0) {
		struct evbuffer *b = evbuffer_new();
		api__session_text(b, &v, API_SJ_FULL, 0);
		size_t len = evbuffer_get_length(b);
		emit_text(a->ev, "session", (const char *)evbuffer_pullup(b, -1), len);
		evbuffer_free(b);
	}
	health_changed(a->ev);
}

void
api__events_deleted(struct api *a, const char *id)
{
	emit(a->ev, "deleted", json_pack("{s:s}", "sessionId", id));
	health_changed(a->ev);
}

static void
on_sup(void *arg, enum sup_event what, const char *id)
{
	struct api *a = arg;
	struct sup_session_view v;
	switch (what) {
	case SUP_EV_GONE:
		a->sup = NULL;
		return;
	case SUP_EV_SESSION:
		api__events_session(a, id);
		return;
	case SUP_EV_QR:
		if (sup_view(a->sup, id, &v) != 0 || v.qr == NULL)
			return;
		emit(a->ev, "qr",
		     json_pack("{s:s, s:s, s:o}", "sessionId", id, "qr", v.qr, "expiresAt",
		               api__time(v.qr_expires_at)));
		return;
	}
}

/* ---- GET /events ---- */

static void
frame(struct evbuffer *b, const char *name, const char *data)
{
	evbuffer_add_printf(b, "event: %s\ndata: %s\n\n", name, data);
}

static void
frame_json(struct evbuffer *b, const char *name, json_t *data)
{
	char *js = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	json_decref(data);
	if (js == NULL)
		abort();
	frame(b, name, js);
	free(js);
}

/*
 * The Last-Event-ID header: -1 when absent, 0 when present but not an id we
 * could have given (it then reads as too old), else 1 with *id.
 */
static int
last_event_id(struct httpd_req *req, uint64_t *id)
{
	const char *v = evhttp_find_header(httpd_in_headers(req), "Last-Event-ID");
	if (v == NULL)
		return -1;
	uint64_t n = 0;
	size_t len = strlen(v);
	if (len == 0 || len > 19)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*id = n;
	return 1;
}

static int
snapshot_one(void *arg, const struct sup_session_view *v)
{
	struct evbuffer *b = arg;
	evbuffer_add(b, "event: session\ndata: ", 21);
	api__session_text(b, v, API_SJ_FULL, 0);
	evbuffer_add(b, "\n\n", 2);
	return 0;
}

/*
 * One page of the snapshot from memory: session events without ids, oldest
 * first, after the cursor. Returns 1 when more pages follow, 0 at the end,
 * -1 when the supervisor is gone (the server is stopping).
 */
static int
snapshot_page(struct api *a, struct evbuffer *b, struct sup_cursor *cur)
{
	if (a->sup == NULL)
		return -1;
	return sup_list(a->sup, cur, EV_SNAPSHOT_PAGE, snapshot_one, b);
}

static void snapshot_sent(struct httpd_conn *evcon, void *arg);

/* The next page of a stream's snapshot, once the one before has gone out. */
static void
snapshot_next(evutil_socket_t fd, short what, void *arg)
{
	struct ev_stream *s = arg;
	(void)fd;
	(void)what;
	if (s->dead)
		return;
	struct evbuffer *b = evbuffer_new();
	int more = snapshot_page(s->ev->a, b, &s->snap);
	if (more < 0) {
		evbuffer_free(b);
		stream_kill(s, "the sessions could not be read for its snapshot");
		return;
	}
	if (more == 0) {
		/* The snapshot is complete: what happened meanwhile follows, and the stream is live. */
		evbuffer_add_buffer(b, s->held);
		s->snapshotting = false;
		httpd_reply_chunk(s->req, b, NULL, NULL);
		evbuffer_free(b);
		return;
	}
	httpd_reply_chunk(s->req, b, snapshot_sent, s);
	evbuffer_free(b);
}

static void
snapshot_sent(struct httpd_conn *evcon, void *arg)
{
	struct ev_stream *s = arg;
	(void)evcon;
	static const struct timeval now = {0, 0};
	evtimer_add(s->snap_next, &now);
}

void
api__events(struct api *a, struct httpd_req *req)
{
	struct api_events *ev = a->ev;
	if (ev->n >= ev->max) {
		api__errorf(req, 503, "too many event streams (%zu); try again later", ev->max);
		return;
	}
	struct httpd_conn *evcon = httpd_conn_of(req);
	if (evcon == NULL) {
		api__error(req, 500, "no connection");
		return;
	}
	/* Before anything is written, so a change it finds is in the ring (replay) or the snapshot.
	 */
	if (ev->health_dirty || ev->health_data == NULL || ev->n == 0)
		health_refresh(ev);

	uint64_t want = 0;
	int have = last_event_id(req, &want);
	bool replay = have == 1 && want >= ev->floor && want <= ev->last_id;
	struct evbuffer *b = evbuffer_new();
	json_t *hello = json_pack("{s:s, s:I, s:b}", "epoch", ev->epoch, "lastId",
	                          (json_int_t)ev->last_id, "replay", replay);
	evbuffer_add_printf(b, "retry: %d\n", EV_RETRY_MS);
	frame_json(b, "hello", hello);
	bool ok = true;
	int more = 0;
	struct sup_cursor snap = {0};
	if (replay) {
		for (size_t i = 0; i < ev->count; i++) {
			const struct ev_rec *r = &ev->ring[(ev->start + i) % ev->cap];
			if (r->id > want)
				evbuffer_add(b, r->text, r->len);
		}
	} else {
		if (have >= 0) {
			const char *why = "the events after that id are no longer kept";
			if (have == 0 || want < ev->base || want > ev->last_id)
				why = "the id is not from this wagate process";
			frame_json(b, "reset",
			           json_pack("{s:I, s:s}", "lastId", (json_int_t)ev->last_id,
			                     "reason", why));
		}
		/* Every session as one session event each, without ids: the state as of the newest id. */
		frame(b, "health", ev->health_data ? ev->health_data : "null");
		more = snapshot_page(a, b, &snap);
		ok = more >= 0;
	}

	struct evkeyvalq *h = httpd_out_headers(req);
	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	/* nginx buffers answers by default, which would hold events back. */
	evhttp_add_header(h, "X-Accel-Buffering", "no");
	api__log_answer(req, 200);
	httpd_reply_start(req, 200, "OK");
	size_t first = evbuffer_get_length(b);
	struct ev_stream *s = wg_calloc(1, sizeof(*s));
	if (more > 0)
		httpd_reply_chunk(req, b, snapshot_sent, s);
	else
		httpd_reply_chunk(req, b, NULL, NULL);
	evbuffer_free(b);
	if (!ok) {
		free(s);
		/*
		 * Without the sessions the snapshot would lie (an empty list). End
		 * the stream instead: the browser comes back after the retry time.
		 */
		httpd_reply_end(req);
		return;
	}

	s->ev = ev;
	s->req = req;
	s->evcon = evcon;
	s->allowance = first + EV_MAX_QUEUED;
	if (more > 0) {
		s->snapshotting = true;
		s->held = evbuffer_new();
		s->snap_next = evtimer_new(a->base, snapshot_next, s);
		s->snap = snap;
	}
	httpd_set_closecb(evcon, stream_conn_closed, s);
	s->next = ev->streams;
	if (ev->streams)
		ev->streams->prev = s;
	ev->streams = s;
	if (ev->n++ == 0) {
		struct timeval tv = {(time_t)(ev->ping_ms / 1000),
		                     (suseconds_t)((ev->ping_ms % 1000) * 1000)};
		event_add(ev->ping, &tv);
	}
}

/* ---- lifetime ---- */

int
api__events_init(struct api *a, const struct api_opts *o)
{
	struct api_events *ev = wg_calloc(1, sizeof(*ev));
	ev->a = a;
	ev->cap = o->event_ring ? o->event_ring : EV_DEFAULT_RING;
	ev->ring = wg_calloc(ev->cap, sizeof(*ev->ring));
	ev->max = o->max_streams ? o->max_streams : EV_DEFAULT_STREAMS;
	ev->ping_ms = o->ping_ms ? o->ping_ms : EV_DEFAULT_PING_MS;
	/* Microseconds since 1970: above every id an earlier process gave out (module comment). */
	ev->base = ev->last_id = ev->floor = wg_wall_ms() * 1000;
	uint8_t r[16];
	if (RAND_bytes(r, sizeof(r)) != 1) {
		free(ev->ring);
		free(ev);
		return WG_EINVAL;
	}
	wg_hex_encode(ev->epoch, r, sizeof(r));
	ev->tmp = evbuffer_new();
	ev->ping = event_new(a->base, -1, EV_PERSIST, on_ping, ev);
	ev->health_timer = evtimer_new(a->base, on_health_timer, ev);
	ev->reaper = event_new(a->base, -1, 0, reap, ev);
	a->ev = ev;
	if (a->sup)
		sup_set_observer(a->sup, on_sup, a);
	return 0;
}

void
api__events_free(struct api *a)
{
	struct api_events *ev = a->ev;
	if (ev == NULL)
		return;
	if (a->sup)
		sup_remove_observer(a->sup, a);
	/* httpd_free has closed every connection, and their close callbacks freed the streams. */
	while (ev->streams) {
		struct ev_stream *s = ev->streams;
		ev->streams = s->next;
		stream_free(s);
	}
	for (size_t i = 0; i < ev->count; i++)
		free(ev->ring[(ev->start + i) % ev->cap].text);
	free(ev->ring);
	free(ev->health_data);
	event_free(ev->ping);
	event_free(ev->health_timer);
	event_free(ev->reaper);
	evbuffer_free(ev->tmp);
	free(ev);
	a->ev = NULL;
}

size_t
api_event_streams(const struct api *a)
{
	return a->ev ? a->ev->n : 0;
}
