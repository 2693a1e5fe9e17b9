/*
 * GET /sessions and GET /health/deep at any number of sessions. Without
 * ?limit the answer is every session, oldest first, sent as a chunked JSON
 * array one page at a time: each loop turn takes one page of sessions from
 * the supervisor's memory in creation order (sup_list: no query per row),
 * adds the page's recent recovery attempts (/health/deep only: one batched
 * query on the supervisor's reader thread, sup_call, while the listing waits
 * out of the pump's queue), writes the page's text and sends the chunk. A
 * /health/deep listing asks for its next page's attempts as soon as a page
 * is written, so the read overlaps the chunk's way out; the page is written
 * when both are through (the chunk gone, the attempts back). One pump serves every
 * listing in turn, one page per loop turn (round robin), so however many
 * clients ask at once, no loop turn does more than one page of this work
 * (for /health/deep, with the next page's ids: a tenth of it); a
 * listing rejoins the pump only once its last chunk has gone out to the
 * socket (httpd_reply_chunk with a sent callback), so a slow client holds one page
 * at most (and /health/deep the next page's ids and attempts), and memory is
 * bounded by that per listing whatever N is. With
 * ?limit=N (1..1000) one page is answered at once and a
 * `Link: <…&after_created=…&after_id=…>; rel="next"` header points at the next
 * (the key of the last session visited: its creation time in Unix ms and its
 * id). ?status=S keeps only sessions whose connection status is S.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "api/api_int.h"
#include "core/version.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "sup/sup.h"

/* Sessions written per loop turn (about 1 ms of work). */
#define PAGE 500
/* Sessions looked at per loop turn when a filter leaves most out. */
#define VISIT_MAX 5000
#define LIMIT_MAX 1000
/* How many recovery attempts /health/deep shows per session. */
#define DEEP_ATTEMPTS 5

struct api_listing {
	struct api *a;
	struct httpd_req *req;
	struct httpd_conn *evcon;
	int deep;
	size_t limit;    /* ?limit: one page of this size, answered whole; 0: everything, streamed */
	int started;     /* the status line and the first chunk are out */
	char status[16]; /* filter, "" for none */
	struct sup_cursor cur; /* the last session visited */
	size_t sent;
	int queued;      /* in the pump's queue */
	int chunk_out;   /* a chunk is on its way to the socket (chunk_sent clears it) */
	struct deep_call *call; /* /health/deep: its next page, its attempts being read or back */
	struct api_listing *prev, *nextl;     /* every listing (api.listings) */
	TAILQ_ENTRY(api_listing) qlink;       /* the pump's queue */
};

static void detach_call(struct api_listing *l);

/* Listings being answered at once; beyond, 503 (each holds a page of memory). */
#define LISTINGS_MAX 256

static void
unlink_listing(struct api_listing *l)
{
	if (l->prev)
		l->prev->nextl = l->nextl;
	else
		l->a->listings = l->nextl;
	if (l->nextl)
		l->nextl->prev = l->prev;
}

static void
listing_free(struct api_listing *l)
{
	if (l->evcon)
		httpd_set_closecb(l->evcon, NULL, NULL);
	unlink_listing(l);
	if (l->queued)
		TAILQ_REMOVE(&l->a->listing_queue, l, qlink);
	if (l->call)
		detach_call(l);
	l->a->nlistings--;
	free(l);
}

/* The client went away mid-answer (or the API stops): the request went with its connection. */
static void
listing_conn_closed(struct httpd_conn *evcon, void *arg)
{
	struct api_listing *l = arg;
	(void)evcon;
	l->evcon = NULL;
	listing_free(l);
}

void
api__listings_free(struct api *a)
{
	while (a->listings)
		listing_free(a->listings);
	if (a->listing_pump)
		event_free(a->listing_pump);
	a->listing_pump = NULL;
}

static void
add_attempt(json_t *by_id, const struct store_attempt *at)
{
	json_t *arr = json_object_get(by_id, at->session_id);
	if (arr == NULL) {
		arr = json_array();
		json_object_set_new(by_id, at->session_id, arr);
	}
	json_t *o = json_pack("{s:o, s:s, s:s, s:s}", "at", api__time(at->at), "trigger", at->trigger,
	                      "action", at->action, "result", at->result);
	json_object_set_new(o, "detail", at->detail ? json_string(at->detail) : json_null());
	json_array_append_new(arr, o);
}

/* Whether arr (a session's attempts so far) holds this one already. */
static bool
shown(json_t *arr, const struct store_attempt *at)
{
	char when[32];
	wg_iso8601(when, (uint64_t)at->at);
	size_t i;
	json_t *o;
	json_array_foreach(arr, i, o) {
		if (strcmp(json_string_value(json_object_get(o, "at")), when) == 0 &&
		    strcmp(json_string_value(json_object_get(o, "trigger")), at->trigger) == 0 &&
		    strcmp(json_string_value(json_object_get(o, "result")), at->result) == 0)
			return true;
	}
	return false;
}

/*
 * A /health/deep page waiting for its sessions' recent attempts: the ids are
 * copied when the page is taken from memory, with the attempts memory holds
 * that the table may not have yet (written behind); the table's are read on
 * the reader's thread; then the page is written from memory again, by id (a
 * session deleted meanwhile is left out). l is NULL once the listing is gone.
 */
struct deep_call {
	struct sup_call call; /* first */
	struct api_listing *l;
	char (*ids)[STORE_ID_LEN + 1];
	size_t n;
	int done;             /* no session follows this page */
	int back;             /* the attempts are read: the page waits for the chunk before it */
	json_t *by_id;        /* memory's attempts at the page's taking, then the table's */
	int rc;
	char err[256];
	struct store_attempt *at;
	size_t k;
};

static void
deep_call_free(struct deep_call *c)
{
	store_attempts_free(c->at, c->k);
	json_decref(c->by_id);
	free(c->ids);
	free(c);
}

/* The listing goes: a call being read is freed when it is back (deep_done), one back now. */
static void
detach_call(struct api_listing *l)
{
	if (l->call->back)
		deep_call_free(l->call);
	else
		l->call->l = NULL;
	l->call = NULL;
}

/* On the reader's thread. */
static void
deep_run(struct store *st, struct sup_call *sc)
{
	struct deep_call *c = (struct deep_call *)sc;
	const char **ids = wg_calloc(c->n ? c->n : 1, sizeof(*ids));
	for (size_t i = 0; i < c->n; i++)
		ids[i] = c->ids[i];
	if (c->n && (c->rc = store_recent_attempts(st, ids, c->n, DEEP_ATTEMPTS, &c->at, &c->k)) != 0)
		snprintf(c->err, sizeof(c->err), "%s", store_errmsg(st));
	free(ids);
}

/* The table's attempts after memory's, newest first, each once, at most DEEP_ATTEMPTS a session. */
static void
add_table_attempts(struct deep_call *c)
{
	if (c->rc != 0)
		log_warn("api", "cannot read recovery attempts: %s", c->err);
	for (size_t i = 0; i < c->k; i++) {
		json_t *arr = json_object_get(c->by_id, c->at[i].session_id);
		if (arr != NULL && json_array_size(arr) >= DEEP_ATTEMPTS)
			continue;
		/* Written since memory's were copied: in both, shown once. */
		if (arr != NULL && shown(arr, &c->at[i]))
			continue;
		add_attempt(c->by_id, &c->at[i]);
	}
}

/* A whole answer at once (one page, or an error of the first page). */
static void
send_whole(struct httpd_req *req, int status, struct evbuffer *b)
{
	struct evkeyvalq *h = httpd_out_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	api__log_answer(req, status);
	httpd_reply(req, status, api__reason(status), b);
}

/* One page being gathered: the views of the sessions the filter keeps. */
struct page {
	const char *status; /* filter, "" for none */
	struct sup_session_view *v;
	size_t n, want;
};

static int
collect(void *arg, const struct sup_session_view *v)
{
	struct page *p = arg;
	if (p->status[0] && strcmp(v->status, p->status) != 0)
		return 0;
	p->v[p->n++] = *v;
	return p->n == p->want;
}

/* Appends a page's elements to b, comma-separated (*sent counts those already written). */
static void
page_json(struct evbuffer *b, const struct page *p, int deep, json_t *attempts, size_t *sent)
{
	for (size_t i = 0; i < p->n; i++) {
		if (*sent > 0)
			evbuffer_add(b, ",", 1);
		if (deep) {
			api__session_text(b, &p->v[i], API_SJ_HEALTH, 1);
			json_t *arr = json_object_get(attempts, p->v[i].id);
			char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
			evbuffer_add_printf(b, ",\"recentRecoveryAttempts\":%s}", text ? text : "[]");
			free(text);
		} else {
			api__session_text(b, &p->v[i], API_SJ_FULL, 0);
		}
		(*sent)++;
	}
}

/* /health/deep's object without its sessions, as text ending where the array starts. */
static char *
deep_head(struct api *a, int *http_status)
{
	struct sup_health h;
	sup_health(a->sup, &h);
	json_t *o = json_object();
	char now[32];
	wg_iso8601(now, wg_wall_ms());
	json_object_set_new(o, "status", json_string(h.status));
	json_object_set_new(o, "timestamp", json_string(now));
	json_object_set_new(o, "uptime", json_integer(api__uptime(a)));
	json_object_set_new(o, "version", json_string(WAGATE_VERSION));
	json_t *db = json_pack("{s:b, s:f, s:I}", "connected", h.db_ok, "latencyMs",
	                       (double)h.db_latency_us / 1000.0, "pendingWrites",
	                       (json_int_t)h.db_pending);
	json_object_set_new(db, "error", h.db_error ? json_string(h.db_error) : json_null());
	json_object_set_new(o, "database", db);
	if (h.breaker_open)
		json_object_set_new(o, "breaker", json_pack("{s:b, s:s}", "open", 1, "reason",
		                                            api__breaker_reason));
	json_object_set_new(o, "sessions", json_array());
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	/* ... "sessions":[] }  ->  ... "sessions":[  (the elements and "]}" follow) */
	size_t len = strlen(text);
	if (len >= 3 && strcmp(text + len - 3, "[]}") == 0)
		text[len - 2] = '\0';
	*http_status = h.db_ok ? 200 : 503;
	return text;
}

/* ?limit, ?after_created and ?after_id, ?status: 0, or an answer was sent. */
static int
parse_query(struct httpd_req *req, size_t *limit, struct sup_cursor *cur, char *status)
{
	*limit = 0;
	memset(cur, 0, sizeof(*cur));
	status[0] = '\0';
	int have_created = 0, have_id = 0;
	const char *q = evhttp_uri_get_query(httpd_uri(req));
	if (q == NULL)
		return 0;
	struct evkeyvalq params;
	TAILQ_INIT(&params);
	if (evhttp_parse_query_str(q, &params) != 0) {
		api__error(req, 400, "malformed query string");
		return -1;
	}
	int r = 0;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, &params, next)
	{
		if (strcmp(kv->key, "limit") == 0) {
			char *end;
			unsigned long v = strtoul(kv->value, &end, 10);
			if (kv->value[0] < '0' || kv->value[0] > '9' || *end || v == 0 || v > LIMIT_MAX) {
				api__errorf(req, 400, "limit must be 1 to %d", LIMIT_MAX);
				r = -1;
				break;
			}
			*limit = v;
		} else if (strcmp(kv->key, "after_id") == 0) {
			/* The key of a session, from a Link header. */
			if (have_id || kv->value[0] == '\0' || strlen(kv->value) > STORE_ID_LEN) {
				api__error(req, 400, "after_id must be given once, as a Link header gives it");
				r = -1;
				break;
			}
			snprintf(cur->id, sizeof(cur->id), "%s", kv->value);
			have_id = 1;
		} else if (strcmp(kv->key, "after_created") == 0) {
			char *end;
			long long v = strtoll(kv->value, &end, 10);
			if (have_created || kv->value[0] < '0' || kv->value[0] > '9' || *end ||
			    strlen(kv->value) > 18) {
				api__error(req, 400, "after_created must be given once, as a Link header "
				                     "gives it");
				r = -1;
				break;
			}
			cur->created_at = v;
			have_created = 1;
		} else if (strcmp(kv->key, "status") == 0) {
			if (!store_status_valid(kv->value) || kv->value[0] == '\0') {
				api__error(req, 400, "status must be connecting, qr_pending, connected, "
				                     "disconnected or logged_out");
				r = -1;
				break;
			}
			snprintf(status, 16, "%s", kv->value);
		} else {
			api__errorf(req, 400, "unknown query parameter \"%.32s\"", kv->key);
			r = -1;
			break;
		}
	}
	evhttp_clear_headers(&params);
	if (r == 0 && have_id != have_created) {
		api__error(req, 400, "after_id and after_created go together (a cursor from a Link header)");
		r = -1;
	}
	return r;
}

static void pump(evutil_socket_t fd, short what, void *arg);

/* Puts l at the end of the pump's queue and makes sure the pump runs. */
static void
enqueue(struct api_listing *l)
{
	struct api *a = l->a;
	l->queued = 1;
	TAILQ_INSERT_TAIL(&a->listing_queue, l, qlink);
	if (a->listing_pump == NULL)
		a->listing_pump = evtimer_new(a->base, pump, a);
	if (!evtimer_pending(a->listing_pump, NULL)) {
		static const struct timeval now = {0, 0};
		evtimer_add(a->listing_pump, &now);
	}
}

static void deep_done(struct sup_call *sc);
static void write_deep(struct api_listing *l);

/*
 * The chunk has gone out to the socket: the listing's next page waits its
 * turn (for /health/deep, when its attempts are back; if not, deep_done
 * writes it). Many chunks can go out in one loop turn: the pump, not this,
 * writes pages, one per turn.
 */
static void
chunk_sent(struct httpd_conn *evcon, void *arg)
{
	struct api_listing *l = arg;
	(void)evcon;
	l->chunk_out = 0;
	if (l->call == NULL || l->call->back)
		enqueue(l);
}

/*
 * One page from memory: as text into b at once, or for /health/deep its ids
 * (and memory's attempts) into *call, to be written when the table's attempts
 * are back. *done when no session follows.
 */
static void
next_page(struct api_listing *l, struct evbuffer *b, int *done, struct deep_call **call)
{
	struct api *a = l->a;
	size_t want = l->limit ? l->limit : PAGE;
	/* ?limit answers at once, looking as far as its page needs; a stream takes turns. */
	size_t visit = l->limit ? SIZE_MAX : VISIT_MAX;
	if (!l->deep) {
		struct page p = {.status = l->status, .want = want};
		p.v = wg_calloc(p.want, sizeof(*p.v));
		*done = !sup_list(a->sup, &l->cur, visit, collect, &p);
		page_json(b, &p, 0, NULL, &l->sent);
		free(p.v);
		return;
	}
	/* Its ids only: the page is written by id once its attempts are back. */
	struct deep_call *c = wg_calloc(1, sizeof(*c));
	c->ids = wg_calloc(want, sizeof(*c->ids));
	*done = !sup_list_ids(a->sup, &l->cur, visit, l->status, c->ids, want, &c->n);
	c->done = *done;
	c->by_id = json_object();
	for (size_t i = 0; i < c->n; i++) {
		/* Newest first: those still in memory only (written behind), then the table's. */
		const struct store_attempt *pend[DEEP_ATTEMPTS];
		size_t np = sup_pending_attempts(a->sup, c->ids[i], pend, DEEP_ATTEMPTS);
		for (size_t j = 0; j < np; j++)
			add_attempt(c->by_id, pend[j]);
	}
	c->call.run = deep_run;
	c->call.done = deep_done;
	*call = c;
}

/* ?limit: the Link to the next page (the cursor, URL-encoded) when the page was full. */
static void
add_link(struct api_listing *l)
{
	char *eid = evhttp_encode_uri(l->cur.id);
	char *est = evhttp_encode_uri(l->status);
	struct evbuffer *link = evbuffer_new();
	evbuffer_add_printf(link, "<%s?limit=%zu&after_created=%" PRId64 "&after_id=%s%s%s>; rel=\"next\"",
	                    l->deep ? "/health/deep" : "/sessions", l->limit, l->cur.created_at, eid,
	                    l->status[0] ? "&status=" : "", est);
	evbuffer_add(link, "", 1);
	evhttp_add_header(httpd_out_headers(l->req), "Link",
	                  (const char *)evbuffer_pullup(link, -1));
	evbuffer_free(link);
	free(eid);
	free(est);
}

/* The supervisor is gone: the server is stopping. */
static void
stopping(struct api_listing *l)
{
	if (l->started) {
		/* The status line is out: the only honest end is to cut the answer short. */
		struct httpd_conn *evcon = l->evcon;
		listing_free(l);
		if (evcon)
			httpd_conn_close(evcon);
		return;
	}
	struct httpd_req *req = l->req;
	listing_free(l);
	api__error(req, 503, "the server is stopping");
}

/* The page's text is in b (after the head, when first): it goes out, whole or as the next chunk. */
static void
send_page(struct api_listing *l, struct evbuffer *b, int http_status, int done)
{
	if (l->limit || done) {
		evbuffer_add_printf(b, "]%s\n", l->deep ? "}" : "");
		struct httpd_req *req = l->req;
		if (!l->started) {
			/* It fits one answer: a plain one with a length. */
			if (l->limit && !done)
				add_link(l);
			listing_free(l);
			send_whole(req, http_status, b);
		} else {
			listing_free(l);
			httpd_reply_chunk(req, b, NULL, NULL);
			httpd_reply_end(req);
		}
		return;
	}
	if (!l->started) {
		struct evkeyvalq *h = httpd_out_headers(l->req);
		evhttp_add_header(h, "Content-Type", "application/json");
		evhttp_add_header(h, "Cache-Control", "no-store");
		api__log_answer(l->req, http_status);
		httpd_reply_start(l->req, http_status, api__reason(http_status));
		l->started = 1;
	}
	l->chunk_out = 1;
	httpd_reply_chunk(l->req, b, chunk_sent, l);
}

/* Starts b with the answer's head when nothing went out yet. */
static void
add_head(struct api_listing *l, struct evbuffer *b, int *http_status)
{
	if (l->started)
		return;
	if (l->deep) {
		char *head = deep_head(l->a, http_status);
		evbuffer_add(b, head, strlen(head));
		free(head);
	} else {
		evbuffer_add(b, "[", 1);
	}
}

/* One page of one listing. */
static void
serve_page(struct api_listing *l)
{
	struct api *a = l->a;
	int http_status = 200, done = 0;
	if (a->sup == NULL) {
		stopping(l);
		return;
	}
	if (l->call != NULL) {
		write_deep(l); /* its attempts are back (chunk_sent) */
		return;
	}
	struct deep_call *c = NULL;
	struct evbuffer *b = evbuffer_new();
	next_page(l, b, &done, &c);
	if (c != NULL) {
		/* Out of the pump's queue until its attempts are read (deep_done). */
		evbuffer_free(b);
		c->l = l;
		l->call = c;
		sup_call(a->sup, &c->call); /* may answer at once, and free l */
		return;
	}
	/* The head first, when nothing went out yet, then the page's text. */
	struct evbuffer *out = evbuffer_new();
	add_head(l, out, &http_status);
	evbuffer_add_buffer(out, b);
	evbuffer_free(b);
	send_page(l, out, http_status, done);
	evbuffer_free(out);
}

/*
 * A /health/deep page's attempts are back: written now, or once the chunk
 * before it is out. The reader answers one call at a time, so this writes
 * one page per round trip at most.
 */
static void
deep_done(struct sup_call *sc)
{
	struct deep_call *c = (struct deep_call *)sc;
	struct api_listing *l = c->l;
	if (l == NULL) {
		deep_call_free(c); /* the client or the API went meanwhile */
		return;
	}
	if (sc->cancelled || l->a->sup == NULL) {
		l->call = NULL;
		deep_call_free(c);
		stopping(l);
		return;
	}
	add_table_attempts(c);
	c->back = 1;
	if (!l->chunk_out)
		write_deep(l);
}

/*
 * The page in l->call, its attempts back and the chunk before it out: written
 * from memory and sent, and the next page's attempts asked for at once.
 */
static void
write_deep(struct api_listing *l)
{
	struct deep_call *c = l->call;
	struct api *a = l->a;
	l->call = NULL;
	if (a->sup == NULL) {
		deep_call_free(c);
		stopping(l);
		return;
	}
	int http_status = 200;
	struct evbuffer *b = evbuffer_new();
	add_head(l, b, &http_status);
	struct page p = {.status = "", .want = c->n};
	p.v = wg_calloc(c->n ? c->n : 1, sizeof(*p.v));
	/* As it is now: a session deleted meanwhile, or no longer of ?status, is left out. */
	for (size_t i = 0; i < c->n; i++)
		if (sup_view(a->sup, c->ids[i], &p.v[p.n]) == 0 &&
		    (!l->status[0] || strcmp(p.v[p.n].status, l->status) == 0))
			p.n++;
	page_json(b, &p, 1, c->by_id, &l->sent);
	free(p.v);
	int done = c->done, last = done || l->limit;
	deep_call_free(c);
	send_page(l, b, http_status, done); /* frees l when last */
	evbuffer_free(b);
	if (last)
		return;
	/* The chunk is out (chunk_out): an answer at once is held until it has gone. */
	int more_done;
	struct deep_call *next = NULL;
	next_page(l, NULL, &more_done, &next);
	next->l = l;
	l->call = next;
	sup_call(a->sup, &next->call);
}

/* One page of the first listing in the queue per loop turn, round robin. */
static void
pump(evutil_socket_t fd, short what, void *arg)
{
	struct api *a = arg;
	(void)fd;
	(void)what;
	struct api_listing *l = TAILQ_FIRST(&a->listing_queue);
	if (l == NULL)
		return;
	TAILQ_REMOVE(&a->listing_queue, l, qlink);
	l->queued = 0;
	if (!TAILQ_EMPTY(&a->listing_queue)) {
		static const struct timeval now = {0, 0};
		evtimer_add(a->listing_pump, &now);
	}
	serve_page(l);
}

void
api__list(struct api *a, struct httpd_req *req, int deep)
{
	size_t limit;
	struct sup_cursor cur;
	char status[16];
	if (parse_query(req, &limit, &cur, status) != 0)
		return;
	struct httpd_conn *evcon = httpd_conn_of(req);
	if (evcon == NULL || a->nlistings >= LISTINGS_MAX) {
		if (evcon == NULL)
			api__error(req, 500, "no connection");
		else
			api__errorf(req, 503, "%d listings are being answered; try again shortly",
			            LISTINGS_MAX);
		return;
	}
	struct api_listing *l = wg_calloc(1, sizeof(*l));
	l->a = a;
	l->req = req;
	l->evcon = evcon;
	l->deep = deep;
	l->limit = limit;
	l->cur = cur;
	snprintf(l->status, sizeof(l->status), "%s", status);
	l->nextl = a->listings;
	if (a->listings)
		a->listings->prev = l;
	a->listings = l;
	a->nlistings++;
	httpd_set_closecb(evcon, listing_conn_closed, l);
	/* Even the first page waits its turn: fifty clients at once cost fifty turns, not one long one. */
	enqueue(l);
}
