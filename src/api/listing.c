/*
 * GET /sessions and GET /health/deep at any number of sessions. Without
 * ?limit the answer is every session, oldest first, sent as a chunked JSON
 * array one page at a time: each loop turn reads one page of rows (keyset on
 * created_at, id), overlays the supervisor's memory, adds the page's recent
 * recovery attempts (one batched query, /health/deep only), and sends the
 * chunk; the next page is read only once that chunk has gone out to the
 * socket (evhttp_send_reply_chunk_with_cb), and then from a zero timer, so
 * other events run between pages and a slow client holds one page at most.
 * So no turn holds the loop longer than a page, and memory is bounded by a
 * page, whatever N is. With ?limit=N (1..1000) one page is answered at once
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

/* Rows per loop turn. */
#define PAGE 500
#define LIMIT_MAX 1000
/* How many recovery attempts /health/deep shows per session. */
#define DEEP_ATTEMPTS 5

struct api_listing {
	struct api *a;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct event *next;
	int deep;
	char status[16]; /* filter, "" for none */
	char *after_created, *after_id; /* the cursor: the last row read (malloc'd) */
	size_t sent;
	struct api_listing *prev, *nextl;
};

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
	event_free(l->next);
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

/* Moves the cursor past the last row the store scanned (good or skipped). */
static void
advance_cursor(struct api_listing *l)
{
	const char *id, *created;
	if (store_list_cursor(l->a->st, &id, &created) != 0)
		return;
	free(l->after_id);
	free(l->after_created);
	l->after_id = wg_strdup(id);
	l->after_created = wg_strdup(created);
}

void
api__listings_free(struct api *a)
{
	while (a->listings)
		listing_free(a->listings);
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

static void chunk_sent(struct evhttp_connection *evcon, void *arg);

/* Sends b as the next chunk; the page after it is read once it has gone out. */
static void
send_chunk(struct api_listing *l, struct evbuffer *b)
{
	evhttp_send_reply_chunk_with_cb(l->req, b, chunk_sent, l);
}

/* The chunk is on its way: the next page from a zero timer, after other events. */
static void
chunk_sent(struct evhttp_connection *evcon, void *arg)
{
	struct api_listing *l = arg;
	(void)evcon;
	static const struct timeval now = {0, 0};
	evtimer_add(l->next, &now);
}

static void
send_next(evutil_socket_t fd, short what, void *arg)
{
	struct api_listing *l = arg;
	(void)fd;
	(void)what;
	struct store_session *rows = NULL;
	size_t n = 0;
	if (read_page(l->a, l->after_created, l->after_id, PAGE, &rows, &n) != 0) {
		/* The status line is out: the only honest end is to cut the answer short. */
		log_error("api", "listing: cannot read sessions: %s", store_errmsg(l->a->st));
		struct evhttp_connection *evcon = l->evcon;
		listing_free(l);
		if (evcon)
			evhttp_connection_free(evcon);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	page_json(l->a, b, rows, n, l->deep, l->status, &l->sent);
	size_t skipped = store_list_skipped(l->a->st);
	advance_cursor(l);
	store_list_free(rows, n);
	if (n + skipped < PAGE) {
		evbuffer_add_printf(b, "]%s\n", l->deep ? "}" : "");
		evhttp_send_reply_chunk(l->req, b);
		evbuffer_free(b);
		struct evhttp_request *req = l->req;
		listing_free(l);
		evhttp_send_reply_end(req);
		return;
	}
	send_chunk(l, b);
	evbuffer_free(b);
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

/*
 * ?limit=N: one page, answered at once. A full page may have a next one: the
 * Link header gives its cursor (the last row scanned, as stored); following it
 * past the end gives an empty page without a Link.
 */
static void
answer_page(struct api *a, struct evhttp_request *req, int deep, size_t limit,
            const char *after_created, const char *after_id, const char *status)
{
	struct store_session *rows = NULL;
	size_t n = 0;
	if (read_page(a, after_created, after_id, limit, &rows, &n) != 0) {
		log_error("api", "listing: cannot read sessions: %s", store_errmsg(a->st));
		api__error(req, 503, "database unavailable");
		return;
	}
	size_t skipped = store_list_skipped(a->st);
	struct evbuffer *b = evbuffer_new();
	int http_status = 200;
	if (deep) {
		char *head = deep_head(a, &http_status);
		evbuffer_add(b, head, strlen(head));
		free(head);
	} else {
		evbuffer_add(b, "[", 1);
	}
	size_t sent = 0;
	page_json(a, b, rows, n, deep, status, &sent);
	store_list_free(rows, n);
	evbuffer_add_printf(b, "]%s\n", deep ? "}" : "");
	const char *cid, *ccreated;
	if (n + skipped == limit && store_list_cursor(a->st, &cid, &ccreated) == 0) {
		char *eid = evhttp_encode_uri(cid), *ecr = evhttp_encode_uri(ccreated);
		char *est = evhttp_encode_uri(status);
		struct evbuffer *link = evbuffer_new();
		evbuffer_add_printf(link, "<%s?limit=%zu&after_created=%s&after_id=%s%s%s>; rel=\"next\"",
		                    deep ? "/health/deep" : "/sessions", limit, ecr, eid,
		                    status[0] ? "&status=" : "", est);
		evbuffer_add(link, "", 1);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Link",
		                  (const char *)evbuffer_pullup(link, -1));
		evbuffer_free(link);
		free(eid);
		free(ecr);
		free(est);
	}
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	api__log_answer(req, http_status);
	evhttp_send_reply(req, http_status, api__reason(http_status), b);
	evbuffer_free(b);
}

void
api__list(struct api *a, struct evhttp_request *req, int deep)
{
	size_t limit;
	char *after_created, *after_id, status[16];
	if (parse_query(req, &limit, &after_created, &after_id, status) != 0)
		return;
	if (limit) {
		answer_page(a, req, deep, limit, after_created, after_id, status);
		free(after_created);
		free(after_id);
		return;
	}
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon == NULL) {
		free(after_created);
		free(after_id);
		api__error(req, 500, "no connection");
		return;
	}
	/* The first page before the status line, so a database that cannot be read gets a 503. */
	struct store_session *rows = NULL;
	size_t n = 0;
	int rr = read_page(a, after_created, after_id, PAGE, &rows, &n);
	free(after_created);
	free(after_id);
	if (rr != 0) {
		log_error("api", "listing: cannot read sessions: %s", store_errmsg(a->st));
		if (deep) {
			int st;
			char *head = deep_head(a, &st);
			struct evbuffer *b = evbuffer_new();
			evbuffer_add_printf(b, "%s]}\n", head);
			free(head);
			struct evkeyvalq *h = evhttp_request_get_output_headers(req);
			evhttp_add_header(h, "Content-Type", "application/json");
			evhttp_add_header(h, "Cache-Control", "no-store");
			api__log_answer(req, 503);
			evhttp_send_reply(req, 503, api__reason(503), b);
			evbuffer_free(b);
		} else {
			api__error(req, 503, "database unavailable");
		}
		return;
	}
	struct api_listing *l = wg_calloc(1, sizeof(*l));
	l->a = a;
	l->req = req;
	l->evcon = evcon;
	l->deep = deep;
	snprintf(l->status, sizeof(l->status), "%s", status);
	l->next = evtimer_new(a->base, send_next, l);
	l->nextl = a->listings;
	if (a->listings)
		a->listings->prev = l;
	a->listings = l;
	evhttp_connection_set_closecb(evcon, listing_conn_closed, l);

	struct evbuffer *b = evbuffer_new();
	int http_status = 200;
	if (deep) {
		char *head = deep_head(a, &http_status);
		evbuffer_add(b, head, strlen(head));
		free(head);
	} else {
		evbuffer_add(b, "[", 1);
	}
	page_json(a, b, rows, n, deep, status, &l->sent);
	size_t skipped = store_list_skipped(a->st);
	advance_cursor(l);
	store_list_free(rows, n);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	api__log_answer(req, http_status);
	int done = n + skipped < PAGE;
	if (done) {
		/* It fits one page: a plain answer with a length. */
		evbuffer_add_printf(b, "]%s\n", deep ? "}" : "");
		listing_free(l);
		evhttp_send_reply(req, http_status, api__reason(http_status), b);
		evbuffer_free(b);
		return;
	}
	evhttp_send_reply_start(req, http_status, api__reason(http_status));
	send_chunk(l, b);
	evbuffer_free(b);
}
