/*
 * The session endpoints: list, create (and start pairing), read, change
 * flags, QR code, reconnect, logout and delete. Rows come from the store; what
 * only the running process knows (socket, supervisor state, retry time, QR)
 * from sup_view(). Changes go to the store first, then to the supervisor.
 * Every read and write of the store runs off the loop (an api_call, through
 * sup_call()): the request waits for it, the loop does not.
 */
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "sup/sup.h"

/* Bounds on text a client may set; far below the store's own, and enough for names and ids. */
#define API_NAME_MAX 128
#define API_USER_ID_MAX 128

static json_t *
nullable(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

/* ---- helpers ---- */

/* A store failure the client cannot fix: logged here, answered 503. */
static void
db_failed(struct httpd_req *req, const char *id, const char *what, const char *why)
{
	log_error(id ? id : "api", "%s: %s", what, why);
	api__error(req, 503, "database unavailable");
}

/*
 * A request waiting for the supervisor (a reconnect's outcome) or for the
 * store (an api_call). Whoever it waits for holds a pointer to it until its
 * done runs, which can be after the client went away (req NULL) or after the
 * API was freed (api NULL); so it is its own allocation, freed only by that
 * done (or at once when sup_reconnect fails).
 */

static void
pending_unlink(struct api_pending *p)
{
	if (p->api == NULL)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		p->api->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
	p->api = NULL;
}

/* The client's connection closes (it went away, or the API stops): its request goes with it. */
static void
pending_conn_closed(struct httpd_conn *evcon, void *arg)
{
	struct api_pending *p = arg;
	(void)evcon;
	p->req = NULL;
	p->evcon = NULL;
}

static void
pending_forget_conn(struct api_pending *p)
{
	if (p->evcon)
		httpd_set_closecb(p->evcon, NULL, NULL);
	p->evcon = NULL;
}

struct api_pending *
api__pending_new(struct api *a, struct httpd_req *req)
{
	struct api_pending *p = wg_calloc(1, sizeof(*p));
	p->api = a;
	p->req = req;
	p->evcon = httpd_conn_of(req);
	p->next = a->pending;
	if (a->pending)
		a->pending->prev = p;
	a->pending = p;
	if (p->evcon)
		httpd_set_closecb(p->evcon, pending_conn_closed, p);
	return p;
}

/* Done with it: the request (if any) is the caller's to answer now. */
void
api__pending_release(struct api_pending *p)
{
	pending_forget_conn(p);
	pending_unlink(p);
	free(p);
}

/*
 * A request whose answer waits for the store. work runs off the loop with the
 * reader's store (sup_call); then continues on the loop, with the request,
 * only if the client is still there and the API still runs (the request is
 * in api->pending meanwhile, like a reconnect's). The call owns what work
 * fills in and frees it.
 */
struct api_call;
typedef void (*api_work_fn)(struct store *st, struct api_call *k);
typedef void (*api_then_fn)(struct api *a, struct httpd_req *req, struct api_call *k);

struct api_call {
	struct sup_call call; /* first: the supervisor's call is the whole of it */
	struct api_pending *p;
	api_work_fn work;
	api_then_fn then;
	char id[STORE_ID_LEN + 1];
	int status;                /* the answer's status, for those that choose it before */
	int rc;                    /* the store's result */
	char err[256];             /* its message, taken on the reader's thread */
	struct store_session row;  /* read: valid when rc is 0 */
	bool have_row;
	struct store_session in;   /* POST: the row to insert; PATCH: the new values (mask) */
	unsigned mask;
	char other[STORE_ID_LEN + 1]; /* POST: the session that already has the name */
	int64_t since;             /* history */
	struct store_status_change *hist;
	size_t nhist;
	struct store_status_change *pend; /* history: memory's changes, copied at the request */
	size_t npend;
};

static void
call_free(struct api_call *k)
{
	if (k->have_row)
		store_session_free(&k->row);
	store_session_free(&k->in);
	store_status_history_free(k->hist, k->nhist);
	for (size_t j = 0; j < k->npend; j++)
		free(k->pend[j].reason);
	free(k->pend);
	free(k);
}

/* On the reader's thread. */
static void
call_run(struct store *st, struct sup_call *c)
{
	struct api_call *k = (struct api_call *)c;
	k->work(st, k);
}

static void
call_done(struct sup_call *c)
{
	struct api_call *k = (struct api_call *)c;
	struct api *a = k->p->api;
	struct httpd_req *req = k->p->req;
	api__pending_release(k->p);
	if (a != NULL && req != NULL) {
		if (c->cancelled)
			api__error(req, 503, "the server is stopping");
		else
			k->then(a, req, k);
	}
	call_free(k);
}

static struct api_call *
call_new(const char *id, api_work_fn work, api_then_fn then)
{
	struct api_call *k = wg_calloc(1, sizeof(*k));
	store_session_init(&k->in);
	k->call.run = call_run;
	k->call.done = call_done;
	k->work = work;
	k->then = then;
	if (id)
		snprintf(k->id, sizeof(k->id), "%s", id);
	return k;
}

static void
call_start(struct api *a, struct httpd_req *req, struct api_call *k)
{
	k->p = api__pending_new(a, req);
	sup_call(a->sup, &k->call);
}

/* The store's outcome, kept for the loop: its message belongs to the reader's connection. */
static int
took(struct store *st, struct api_call *k, int rc)
{
	k->rc = rc;
	if (rc != 0 && rc != WG_ENOTFOUND)
		snprintf(k->err, sizeof(k->err), "%s", store_errmsg(st));
	return rc;
}

static void
work_get(struct store *st, struct api_call *k)
{
	k->have_row = took(st, k, store_get(st, k->id, &k->row)) == 0;
}

/* Answers 404 or 503 unless the call read its row. */
static bool
row_read(struct httpd_req *req, struct api_call *k)
{
	if (k->rc == 0 && k->have_row)
		return true;
	if (k->rc == WG_ENOTFOUND)
		api__error(req, 404, "no such session");
	else
		db_failed(req, k->id, "cannot read the session", k->err);
	return false;
}

static void
then_reply_row(struct api *a, struct httpd_req *req, struct api_call *k)
{
	if (row_read(req, k))
		api__reply(req, k->status, api__session_json(a, &k->row, API_SJ_FULL));
}

/* Answers status with the session object as it is now: the row, read off the loop, and memory. */
static void
reply_session(struct api *a, struct httpd_req *req, const char *id, int status)
{
	struct api_call *k = call_new(id, work_get, then_reply_row);
	k->status = status;
	call_start(a, req, k);
}

/* A body that must be empty or {}: POST actions take no parameters. */
static bool
empty_body(struct httpd_req *req)
{
	static const char *const none[] = {NULL};
	json_t *body = api__read_body(req);
	if (body == NULL)
		return false;
	bool ok = api__known_fields(req, body, none);
	json_decref(body);
	return ok;
}

/* A text field: a string of 1..max bytes without control characters or NULs. */
static bool
text_ok(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0 || n > max || strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* ---- GET and POST /sessions ---- */

/*
 * Names are unique per user: two sessions named "primary" would leave the
 * dashboard following one of them, maybe the dead one. The check, the insert
 * and the read of the new row run together, off the loop.
 */
static void
work_create(struct store *st, struct api_call *k)
{
	const char *want = k->in.session_name ? k->in.session_name : "primary";
	int r = store_find_name(st, k->in.user_id, want, k->other);
	if (r == 0) {
		k->status = 409; /* taken: k->other has it */
		return;
	}
	if (r != WG_ENOTFOUND && r != WG_ENOTSUP) {
		took(st, k, r);
		return;
	}
	if (took(st, k, store_insert(st, &k->in)) != 0)
		return;
	snprintf(k->id, sizeof(k->id), "%s", k->in.id);
	k->have_row = took(st, k, store_get(st, k->id, &k->row)) == 0;
}

static void
then_create(struct api *a, struct httpd_req *req, struct api_call *k)
{
	if (k->status == 409) {
		char msg[512];
		snprintf(msg, sizeof(msg), "a session named \"%s\" already exists for this user (%s): pick "
		                           "another name, or pair that one again",
		         k->in.session_name ? k->in.session_name : "primary", k->other);
		api__error(req, 409, msg);
		return;
	}
	if (k->id[0] == '\0') {
		db_failed(req, NULL, "cannot create a session", k->err);
		return;
	}
	if (!row_read(req, k))
		return;
	log_info(k->id, "created through the API; pairing");
	sup_learn_row(a->sup, &k->row);
	/*
	 * A failed start is recorded by the supervisor in the row (last_error), so
	 * the session is still created: the answer shows its state.
	 */
	int r = sup_pair(a->sup, k->id, NULL);
	if (r != 0)
		log_warn(k->id, "pairing did not start: %s", wg_strerror(r));
	char loc[64];
	snprintf(loc, sizeof(loc), "/sessions/%s", k->id);
	evhttp_add_header(httpd_out_headers(req), "Location", loc);
	api__reply(req, 201, api__session_json(a, &k->row, API_SJ_FULL));
}

void
api__sessions_create(struct api *a, struct httpd_req *req)
{
	static const char *const fields[] = {"sessionName", "userId", "autoConnect", NULL};
	json_t *body = api__read_body(req);
	if (body == NULL)
		return;
	if (!api__known_fields(req, body, fields))
		goto out;
	json_t *name = json_object_get(body, "sessionName");
	json_t *user = json_object_get(body, "userId");
	json_t *autoc = json_object_get(body, "autoConnect");
	if (name && !json_is_string(name)) {
		api__error(req, 400, "sessionName must be a string");
		goto out;
	}
	if (name && !text_ok(name, API_NAME_MAX)) {
		api__error(req, 400, "sessionName must be 1-128 bytes without control characters");
		goto out;
	}
	if (user && !json_is_string(user) && !json_is_null(user)) {
		api__error(req, 400, "userId must be a string or null");
		goto out;
	}
	if (user && json_is_string(user) && !text_ok(user, API_USER_ID_MAX)) {
		api__error(req, 400, "userId must be 1-128 bytes without control characters");
		goto out;
	}
	if (autoc && !json_is_boolean(autoc)) {
		api__error(req, 400, "autoConnect must be a boolean");
		goto out;
	}
	struct store_session s;
	store_session_init(&s);
	if (name)
		s.session_name = wg_strdup(json_string_value(name));
	if (user && json_is_string(user))
		s.user_id = wg_strdup(json_string_value(user));
	if (autoc)
		s.auto_connect = json_is_true(autoc);
	struct api_call *k = call_new(NULL, work_create, then_create);
	k->in = s;
	call_start(a, req, k);
out:
	json_decref(body);
}

/* ---- /sessions/{id} ---- */

void
api__session_get(struct api *a, struct httpd_req *req, const char *id)
{
	reply_session(a, req, id, 200);
}

static void
work_patch(struct store *st, struct api_call *k)
{
	if (took(st, k, store_update(st, k->id, &k->in, k->mask, (int64_t)wg_wall_ms())) != 0)
		return;
	k->have_row = took(st, k, store_get(st, k->id, &k->row)) == 0;
}

static void
then_patch(struct api *a, struct httpd_req *req, struct api_call *k)
{
	if (k->rc == WG_ENOTFOUND) {
		api__error(req, 404, "no such session");
		return;
	}
	if (!k->have_row) {
		db_failed(req, k->id, "cannot update the session", k->err);
		return;
	}
	log_info(k->id, "flags changed through the API");
	sup_session_changed(a->sup, &k->row);
	/* The flags are no state change of the supervisor's; other dashboards still want them. */
	api__events_session(a, k->id);
	api__reply(req, 200, api__session_json(a, &k->row, API_SJ_FULL));
}

void
api__session_patch(struct api *a, struct httpd_req *req, const char *id)
{
	static const char *const fields[] = {"autoConnect", "isActive", NULL};
	json_t *body = api__read_body(req);
	if (body == NULL)
		return;
	if (!api__known_fields(req, body, fields))
		goto out;
	json_t *autoc = json_object_get(body, "autoConnect");
	json_t *active = json_object_get(body, "isActive");
	if (autoc && !json_is_boolean(autoc)) {
		api__error(req, 400, "autoConnect must be a boolean");
		goto out;
	}
	if (active && !json_is_boolean(active)) {
		api__error(req, 400, "isActive must be a boolean");
		goto out;
	}
	if (!autoc && !active) {
		api__error(req, 400, "nothing to change: set autoConnect and/or isActive");
		goto out;
	}
	struct api_call *k = call_new(id, work_patch, then_patch);
	if (autoc) {
		k->in.auto_connect = json_is_true(autoc);
		k->mask |= STORE_F_AUTO;
	}
	if (active) {
		k->in.is_active = json_is_true(active);
		k->mask |= STORE_F_ACTIVE;
	}
	call_start(a, req, k);
out:
	json_decref(body);
}

/* The supervisor lets go first, so it never writes to a row that is gone: read, let go, delete. */
static void
work_delete(struct store *st, struct api_call *k)
{
	took(st, k, store_delete(st, k->id));
}

static void
then_delete(struct api *a, struct httpd_req *req, struct api_call *k)
{
	if (k->rc == WG_ENOTFOUND) {
		api__error(req, 404, "no such session");
		return;
	}
	if (k->rc) {
		db_failed(req, k->id, "cannot delete the session", k->err);
		return;
	}
	log_info(k->id, "deleted through the API");
	api__events_deleted(a, k->id);
	api__reply(req, 204, NULL);
}

static void
then_delete_read(struct api *a, struct httpd_req *req, struct api_call *k)
{
	if (!row_read(req, k))
		return;
	sup_session_deleted(a->sup, k->id);
	call_start(a, req, call_new(k->id, work_delete, then_delete));
}

void
api__session_delete(struct api *a, struct httpd_req *req, const char *id)
{
	call_start(a, req, call_new(id, work_get, then_delete_read));
}

/* ---- /sessions/{id}/qr ---- */

/* The format query parameter: 0 JSON, 1 SVG, -1 anything else (answered 400). */
static int
qr_format(struct httpd_req *req)
{
	const char *q = evhttp_uri_get_query(httpd_uri(req));
	if (q == NULL || q[0] == '\0')
		return 0;
	struct evkeyvalq kv;
	TAILQ_INIT(&kv);
	int fmt = -1;
	if (evhttp_parse_query_str(q, &kv) == 0) {
		const char *f = evhttp_find_header(&kv, "format");
		if (f == NULL || strcmp(f, "json") == 0)
			fmt = 0;
		else if (strcmp(f, "svg") == 0)
			fmt = 1;
	}
	evhttp_clear_headers(&kv);
	if (fmt < 0)
		api__error(req, 400, "format must be json or svg");
	return fmt;
}

static void
then_qr_unknown(struct api *a, struct httpd_req *req, struct api_call *k)
{
	(void)a;
	if (row_read(req, k))
		api__error(req, 404, "the session is not pairing");
}

void
api__session_qr(struct api *a, struct httpd_req *req, const char *id)
{
	int fmt = qr_format(req);
	if (fmt < 0)
		return;
	struct sup_session_view v;
	if (sup_view(a->sup, id, &v) != 0) {
		/* Not in memory: is there such a row at all? Either way no QR code. */
		call_start(a, req, call_new(id, work_get, then_qr_unknown));
		return;
	}
	if (strcmp(v.state, "pairing") != 0) {
		api__error(req, 404, "the session is not pairing");
		return;
	}
	if (v.qr == NULL) {
		api__error(req, 404, "no QR code yet: pairing is starting, ask again shortly");
		return;
	}
	if (fmt == 0) {
		api__reply(
		    req, 200,
		    json_pack("{s:s, s:o}", "qr", v.qr, "expiresAt", api__time(v.qr_expires_at)));
		return;
	}
	size_t len = 0;
	char *svg = api__qr_svg(v.qr, &len);
	if (svg == NULL) {
		log_error(id, "the QR text does not fit a QR code");
		api__error(req, 500, "cannot draw the QR code");
		return;
	}
	api__reply_raw(req, 200, "image/svg+xml", svg, len);
	free(svg);
}

/* ---- /sessions/{id}/history ---- */

/* How far back GET .../history looks without ?since. */
#define HISTORY_DEFAULT_MS (7 * 24 * 3600 * 1000LL)

/* The since query parameter: 1 with *since, 0 absent, -1 bad (answered 400). */
static int
history_since(struct httpd_req *req, int64_t *since)
{
	const char *q = evhttp_uri_get_query(httpd_uri(req));
	if (q == NULL || q[0] == '\0')
		return 0;
	struct evkeyvalq kv;
	TAILQ_INIT(&kv);
	int rc = -1;
	if (evhttp_parse_query_str(q, &kv) == 0) {
		const char *v = evhttp_find_header(&kv, "since");
		if (v == NULL)
			rc = 0;
		else if (store_time_parse(v, strlen(v), since) == 0)
			rc = 1;
	}
	evhttp_clear_headers(&kv);
	if (rc < 0)
		api__error(req, 400,
		           "since must be an ISO 8601 timestamp, e.g. 2026-11-24T13:27:04.123Z");
	return rc;
}

static void
work_history(struct store *st, struct api_call *k)
{
	if (took(st, k, store_get(st, k->id, &k->row)) != 0)
		return;
	k->have_row = true;
	took(st, k, store_status_history(st, k->id, k->since, STORE_HISTORY_KEEP, &k->hist, &k->nhist));
}

static json_t *
change_json(const struct store_status_change *c)
{
	return json_pack("{s:o, s:s, s:o}", "at", api__time(c->at), "status", c->status, "reason",
	                 nullable(c->reason));
}

static void
then_history(struct api *a, struct httpd_req *req, struct api_call *k)
{
	(void)a;
	if (!k->have_row) {
		row_read(req, k);
		return;
	}
	if (k->rc != 0) {
		db_failed(req, k->id, "cannot read the status history", k->err);
		return;
	}
	const struct store_status_change *c = k->hist;
	size_t n = k->nhist, total = 0, from = 0;
	/* The copy's changes the table does not have yet, oldest first: all newer than the table's. */
	bool *show = wg_calloc(k->npend ? k->npend : 1, sizeof(*show));
	for (size_t j = 0; j < k->npend; j++) {
		const struct store_status_change *p = &k->pend[j];
		bool dup = p->at < k->since;
		for (size_t i = 0; i < n && !dup; i++)
			dup = c[i].at == p->at && strcmp(c[i].status, p->status) == 0;
		show[j] = !dup;
		total += show[j];
	}
	/* At most the newest STORE_HISTORY_KEEP in all: the table's oldest give way. */
	if (n + total > STORE_HISTORY_KEEP)
		from = n + total - STORE_HISTORY_KEEP < n ? n + total - STORE_HISTORY_KEEP : n;
	json_t *arr = json_array();
	for (size_t i = from; i < n; i++)
		json_array_append_new(arr, change_json(&c[i]));
	for (size_t j = 0; j < k->npend; j++)
		if (show[j])
			json_array_append_new(arr, change_json(&k->pend[j]));
	free(show);
	api__reply(req, 200, arr);
}

void
api__history(struct api *a, struct httpd_req *req, const char *id)
{
	int64_t since = 0;
	int have = history_since(req, &since);
	if (have < 0)
		return;
	if (have == 0) {
		int64_t now = (int64_t)wg_wall_ms();
		since = now > HISTORY_DEFAULT_MS ? now - HISTORY_DEFAULT_MS : 0;
	}
	struct api_call *k = call_new(id, work_history, then_history);
	k->since = since;
	/*
	 * The newest changes may be in memory only (written behind, or in the
	 * writer's hands): copied now, before the table is read, so a change is
	 * in the copy, in the table, or in both (shown once), never in neither.
	 */
	const struct store_status_change *pend[STORE_HISTORY_KEEP];
	size_t np = sup_pending_history(a->sup, id, pend, STORE_HISTORY_KEEP);
	k->pend = wg_calloc(np ? np : 1, sizeof(*k->pend));
	for (size_t j = 0; j < np; j++) {
		k->pend[j] = *pend[j];
		k->pend[j].reason = pend[j]->reason ? wg_strdup(pend[j]->reason) : NULL;
	}
	k->npend = np;
	call_start(a, req, k);
}

/*
 * An action's request: no body (or {}), and a session with that row, read off
 * the loop and handed to the supervisor (it may be one the web app wrote since
 * the last pass); then the action runs on the loop.
 */
static void
action_on_row(struct api *a, struct httpd_req *req, const char *id, api_then_fn then)
{
	if (!empty_body(req))
		return;
	call_start(a, req, call_new(id, work_get, then));
}

/* ---- /sessions/{id}/logout ---- */

static void
then_logout(struct api *a, struct httpd_req *req, struct api_call *k)
{
	if (!row_read(req, k))
		return;
	sup_learn_row(a->sup, &k->row);
	int r = sup_logout(a->sup, k->id);
	if (r) {
		log_error(k->id, "logout failed: %s", wg_strerror(r));
		api__error(req, 500, "logout failed");
		return;
	}
	log_info(k->id, "logged out through the API");
	api__reply(req, 200,
	           json_pack("{s:b, s:s}", "success", 1, "message",
	                     "logged out: the credentials are dropped; pair again to use "
	                     "this session"));
}

void
api__session_logout(struct api *a, struct httpd_req *req, const char *id)
{
	action_on_row(a, req, id, then_logout);
}

/* ---- /sessions/{id}/pair ---- */

static void
then_pair(struct api *a, struct httpd_req *req, struct api_call *k)
{
	if (!row_read(req, k))
		return;
	sup_learn_row(a->sup, &k->row);
	const char *why = NULL;
	int r = sup_pair(a->sup, k->id, &why);
	if (r == WG_ESTATE) {
		api__error(req, 409, why ? why : "the session cannot pair now");
		return;
	}
	if (r == WG_ENOTFOUND) {
		api__error(req, 404, "no such session");
		return;
	}
	/* A pairing that could not start is in the session's lastError: the answer shows it. */
	if (r)
		log_warn(k->id, "pairing did not start: %s", wg_strerror(r));
	else
		log_info(k->id, "pairing a new device through the API");
	api__reply(req, 200, api__session_json(a, &k->row, API_SJ_FULL));
}

/*
 * Pairs a new device for an existing session (after QR codes expired, a
 * logout, or credentials that cannot be used), keeping its id: the web app's
 * references stay valid. The answer is the session, now pairing; its QR
 * codes come from /sessions/{id}/qr and the event stream.
 */
void
api__session_pair(struct api *a, struct httpd_req *req, const char *id)
{
	action_on_row(a, req, id, then_pair);
}

/* ---- /sessions/{id}/reconnect ---- */

static void
reconnect_done(void *arg, int ok, const char *msg)
{
	struct api_pending *p = arg;
	if (p->req) {
		pending_forget_conn(p);
		api__reply(p->req, 200,
		           json_pack("{s:b, s:s}", "success", ok, "message",
		                     msg ? msg : (ok ? "connected" : "failed")));
		p->req = NULL;
	}
	pending_unlink(p);
	p->finished = true;
	if (!p->in_call)
		free(p);
}

/*
 * A reconnect that is refused answers like one that failed, {success,
 * message}, so a caller reads one shape; "error" is there too, as in every
 * other refusal of the API.
 */
static void
reconnect_refused(struct httpd_req *req, int status, const char *msg)
{
	api__reply(req, status,
	           json_pack("{s:b, s:s, s:s}", "success", 0, "message", msg, "error", msg));
}

static void
reconnect_start(struct api *a, struct httpd_req *req, const char *id)
{
	struct api_pending *p = api__pending_new(a, req);
	p->in_call = true;
	int r = sup_reconnect(a->sup, id, reconnect_done, p);
	p->in_call = false;
	if (r == 0) {
		log_info(id, "reconnect requested through the API");
		if (p->finished)
			free(p);
		return;
	}
	/* On failure done never runs: answer here, in the endpoint's own shape. */
	api__pending_release(p);
	if (r == WG_ENOTFOUND) {
		reconnect_refused(req, 404, "no such session");
	} else {
		log_error(id, "cannot start a reconnect: %s", wg_strerror(r));
		reconnect_refused(req, 503, "cannot start a reconnect: the database is not available");
	}
}

static void
then_reconnect(struct api *a, struct httpd_req *req, struct api_call *k)
{
	if (k->rc == WG_ENOTFOUND || (k->rc == 0 && !k->have_row)) {
		reconnect_refused(req, 404, "no such session");
		return;
	}
	if (k->rc != 0) {
		log_error(k->id, "cannot start a reconnect: %s", k->err);
		reconnect_refused(req, 503, "cannot start a reconnect: the database is not available");
		return;
	}
	sup_learn_row(a->sup, &k->row);
	reconnect_start(a, req, k->id);
}

void
api__session_reconnect(struct api *a, struct httpd_req *req, const char *id)
{
	/* No body, or {} (the router bounded its size). */
	struct evbuffer *in = httpd_body(req);
	size_t len = evbuffer_get_length(in);
	if (len > 0) {
		json_t *body = json_loadb((const char *)evbuffer_pullup(in, (ev_ssize_t)len), len, 0, NULL);
		bool empty = json_is_object(body) && json_object_size(body) == 0;
		json_decref(body);
		if (!empty) {
			reconnect_refused(req, 400, "a reconnect takes no body: send none, or {}");
			return;
		}
	}
	struct sup_session_view v;
	if (sup_view(a->sup, id, &v) == 0) {
		reconnect_start(a, req, id);
		return;
	}
	/* Not in memory: a row the web app wrote since the last pass, read off the loop first. */
	call_start(a, req, call_new(id, work_get, then_reconnect));
}

void
api__pending_detach_all(struct api *a)
{
	/* Their requests went with their connections (httpd_free ran first). */
	while (a->pending) {
		struct api_pending *p = a->pending;
		p->req = NULL;
		p->evcon = NULL;
		pending_unlink(p);
	}
}
