/*
 * GET /sessions and GET /health/deep at any number of sessions. Without
 * ?limit the answer is every session, oldest first, sent as a chunked JSON
 * array one page at a time: each loop turn reads one page of rows (keyset on
 * created_at, id), overlays the supervisor's memory, adds the page's recent
 * recovery attempts (one batched query, /health/deep only), and sends the
 * chunk. One pump serves every listing in turn, one page per loop turn
 * (round robin), so however many clients ask at once, no loop turn does more
 * than one page of this work; a listing rejoins the pump only once its last
 * chunk has gone out to the socket (evhttp_send_reply_chunk_with_cb), so a
 * slow client holds one page at most. So no turn holds the loop longer than a
 * page, and memory is bounded by a page per listing, whatever N is. With ?limit=N (1..1000) one page is answered at once
 * and a `Link: <…&after_created=…&after_id=…>; rel="next"` header points at
 * the next (the keys of the last row read, as stored). ?status=S keeps only
 * sessions whose connection status is S.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "api/api_int.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "sup/sup.h"

/* Rows per loop turn (a few ms of work). */
#define PAGE 250
#define LIMIT_MAX 1000
/* How many recovery attempts /health/deep shows per session. */
#define DEEP_ATTEMPTS 5

struct api_listing {
	struct api *a;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	int deep;
	size_t limit;    /* ?limit: one page of this size, answered whole; 0: everything, streamed */
	int started;     /* the status line and the first chunk are out */
	char status[16]; /* filter, "" for none */
	char *after_created, *after_id; /* the cursor: the last row read (malloc'd) */
	size_t sent;
	int queued;      /* in the pump's queue */
	struct api_listing *prev, *nextl;     /* every listing (api.listings) */
	TAILQ_ENTRY(api_listing) qlink;       /* the pump's queue */
};

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
		evhttp_connection_set_closecb(l->evcon, NULL, NULL);
	unlink_listing(l);
	if (l->queued)
		TAILQ_REMOVE(&l->a->listing_queue, l, qlink);
	l->a->nlistings--;
	free(l->after_created);
	free(l->after_id);
	free(l);
}

/*
 * The client went away mid-answer (or evhttp is freeing everything). If
 * evhttp detached our unfinished request from the connection first, the
 * request is ours to free.
 */
static void
listing_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct api_listing *l = arg;
	if (evhttp_request_get_connection(l->req) != evcon)
		evhttp_request_free(l->req);
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

/* The recent attempts of a page's sessions, as id -> JSON array (one query). */
static json_t *
page_attempts(struct api *a, const struct store_session *rows, size_t n)
{
	json_t *by_id = json_object();
	const char **ids = wg_calloc(n ? n : 1, sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = rows[i].id;
	struct store_attempt *at = NULL;
	size_t k = 0;
	if (store_recent_attempts(a->st, ids, n, DEEP_ATTEMPTS, &at, &k) != 0)
		log_warn("api", "cannot read recovery attempts: %s", store_errmsg(a->st));
	free(ids);
	/* Newest first: those still in memory only (written behind), then the table's. */
	for (size_t i = 0; i < n; i++) {
		const struct store_attempt *pend[DEEP_ATTEMPTS];
		size_t np = sup_pending_attempts(a->sup, rows[i].id, pend, DEEP_ATTEMPTS);
		for (size_t j = 0; j < np; j++)
			add_attempt(by_id, pend[j]);
	}
	for (size_t i = 0; i < k; i++) {
		json_t *arr = json_object_get(by_id, at[i].session_id);
		if (arr == NULL || json_array_size(arr) < DEEP_ATTEMPTS)
			add_attempt(by_id, &at[i]);
	}
	store_attempts_free(at, k);
	return by_id;
}

/* One session's element of the answer, or NULL when the status filter leaves it out. */
static json_t *
element(struct api *a, const struct store_session *row, int deep, const char *status,
        json_t *attempts)
{
	json_t *s = api__session_json(a, row, deep ? API_SJ_HEALTH : API_SJ_FULL);
	if (status[0]) {
		const char *st = json_string_value(json_object_get(s, "connectionStatus"));
		if (st == NULL || strcmp(st, status) != 0) {
			json_decref(s);
			return NULL;
		}
	}
	if (deep) {
		json_t *arr = json_object_get(attempts, row->id);
		json_object_set_new(s, "recentRecoveryAttempts", arr ? json_incref(arr) : json_array());
	}
	return s;
}

/* A whole answer at once (one page, or an error of the first page). */
static void
send_whole(struct evhttp_request *req, int status, struct evbuffer *b)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	api__log_answer(req, status);
	evhttp_send_reply(req, status, api__reason(status), b);
}

/* Reads one page after the cursor; 0, or the store's error. */
static int
read_page(struct api *a, const char *after_created, const char *after_id, size_t limit,
          struct store_session **rows, size_t *n)
{
	struct store_filter f = {.without_auth = true,
	                         .by_created = true,
	                         .after_created = after_created,
	                         .after_id = after_id,
	                         .limit = limit};
	return store_list(a->st, &f, rows, n);
}

/* Appends a page's elements to b (comma-separated, `first` tells whether one was written). */
static void
page_json(struct api *a, struct evbuffer *b, const struct store_session *rows, size_t n, int deep,
          const char *status, size_t *sent)
{
	json_t *attempts = deep ? page_attempts(a, rows, n) : NULL;
	for (size_t i = 0; i < n; i++) {
		json_t *e = element(a, &rows[i], deep, status, attempts);
		if (e == NULL)
			continue;
		char *text = json_dumps(e, JSON_COMPACT);
		json_decref(e);
		if (*sent > 0)
			evbuffer_add(b, ",", 1);
		evbuffer_add(b, text, strlen(text));
		free(text);
		(*sent)++;
	}
	json_decref(attempts);
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
parse_query(struct evhttp_request *req, size_t *limit, char **after_created, char **after_id,
            char *status)
{
	*limit = 0;
	*after_created = *after_id = NULL;
	status[0] = '\0';
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
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
		} else if (strcmp(kv->key, "after_id") == 0 || strcmp(kv->key, "after_created") == 0) {
			/* The keys of a row as stored, from a Link header: bounded, otherwise opaque. */
			char **dst = kv->key[6] == 'i' ? after_id : after_created;
			if (*dst != NULL || strlen(kv->value) > 1024) {
				api__errorf(req, 400, "%s must be given once, as a Link header gives it",
				            kv->key);
				r = -1;
				break;
			}
			*dst = wg_strdup(kv->value);
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
	if (r == 0 && (*after_id == NULL) != (*after_created == NULL)) {
		api__error(req, 400, "after_id and after_created go together (a cursor from a Link header)");
		r = -1;
	}
	if (r != 0) {
		free(*after_id);
		free(*after_created);
		*after_id = *after_created = NULL;
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

/* The chunk has gone out to the socket: the listing's next page waits its turn. */
static void
chunk_sent(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	enqueue(arg);
}

/* The rows of one page are read: their JSON; 0, or -1 when the store failed. */
static int
next_page(struct api_listing *l, struct evbuffer *b, int *done)
{
	struct store_session *rows = NULL;
	size_t n = 0, page = l->limit ? l->limit : PAGE;
	if (read_page(l->a, l->after_created, l->after_id, page, &rows, &n) != 0) {
		log_error("api", "listing: cannot read sessions: %s", store_errmsg(l->a->st));
		return -1;
	}
	page_json(l->a, b, rows, n, l->deep, l->status, &l->sent);
	size_t skipped = store_list_skipped(l->a->st);
	store_list_free(rows, n);
	*done = n + skipped < page;
	const char *id, *created;
	if (store_list_cursor(l->a->st, &id, &created) == 0) {
		free(l->after_id);
		free(l->after_created);
		l->after_id = wg_strdup(id);
		l->after_created = wg_strdup(created);
	}
	return 0;
}

/* ?limit: the Link to the next page (the cursor, URL-encoded) when the page was full. */
static void
add_link(struct api_listing *l)
{
	char *eid = evhttp_encode_uri(l->after_id), *ecr = evhttp_encode_uri(l->after_created);
	char *est = evhttp_encode_uri(l->status);
	struct evbuffer *link = evbuffer_new();
	evbuffer_add_printf(link, "<%s?limit=%zu&after_created=%s&after_id=%s%s%s>; rel=\"next\"",
	                    l->deep ? "/health/deep" : "/sessions", l->limit, ecr, eid,
	                    l->status[0] ? "&status=" : "", est);
	evbuffer_add(link, "", 1);
	evhttp_add_header(evhttp_request_get_output_headers(l->req), "Link",
	                  (const char *)evbuffer_pullup(link, -1));
	evbuffer_free(link);
	free(eid);
	free(ecr);
	free(est);
}

/* One page of one listing. */
static void
serve_page(struct api_listing *l)
{
	struct api *a = l->a;
	struct evbuffer *b = evbuffer_new();
	int http_status = 200, done = 0;
	if (!l->started) {
		if (l->deep) {
			char *head = deep_head(a, &http_status);
			evbuffer_add(b, head, strlen(head));
			free(head);
		} else {
			evbuffer_add(b, "[", 1);
		}
	}
	if (next_page(l, b, &done) != 0) {
		if (!l->started && l->deep) {
			/* /health/deep still says what it knows: the head, no sessions, 503. */
			evbuffer_add_printf(b, "]}\n");
			struct evhttp_request *req = l->req;
			listing_free(l);
			send_whole(req, 503, b);
			evbuffer_free(b);
			return;
		}
		evbuffer_free(b);
		if (l->started) {
			/* The status line is out: the only honest end is to cut the answer short. */
			struct evhttp_connection *evcon = l->evcon;
			listing_free(l);
			if (evcon)
				evhttp_connection_free(evcon);
			return;
		}
		struct evhttp_request *req = l->req;
		listing_free(l);
		api__error(req, 503, "database unavailable");
		return;
	}
	if (l->limit || done) {
		evbuffer_add_printf(b, "]%s\n", l->deep ? "}" : "");
		struct evhttp_request *req = l->req;
		if (!l->started) {
			/* It fits one answer: a plain one with a length. */
			if (l->limit && !done)
				add_link(l);
			listing_free(l);
			send_whole(req, http_status, b);
		} else {
			listing_free(l);
			evhttp_send_reply_chunk(req, b);
			evhttp_send_reply_end(req);
		}
		evbuffer_free(b);
		return;
	}
	if (!l->started) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(l->req);
		evhttp_add_header(h, "Content-Type", "application/json");
		evhttp_add_header(h, "Cache-Control", "no-store");
		api__log_answer(l->req, http_status);
		evhttp_send_reply_start(l->req, http_status, api__reason(http_status));
		l->started = 1;
	}
	evhttp_send_reply_chunk_with_cb(l->req, b, chunk_sent, l);
	evbuffer_free(b);
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
api__list(struct api *a, struct evhttp_request *req, int deep)
{
	size_t limit;
	char *after_created, *after_id, status[16];
	if (parse_query(req, &limit, &after_created, &after_id, status) != 0)
		return;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon == NULL || a->nlistings >= LISTINGS_MAX) {
		free(after_created);
		free(after_id);
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
	l->after_created = after_created;
	l->after_id = after_id;
	snprintf(l->status, sizeof(l->status), "%s", status);
	l->nextl = a->listings;
	if (a->listings)
		a->listings->prev = l;
	a->listings = l;
	a->nlistings++;
	evhttp_connection_set_closecb(evcon, listing_conn_closed, l);
	/* Even the first page waits its turn: fifty clients at once cost fifty turns, not one long one. */
	enqueue(l);
}
