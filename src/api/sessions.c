/*
 * The session endpoints: list, create (and start pairing), read, change
 * flags, QR code, reconnect, logout and delete. Rows come from the store; what
 * only the running process knows (socket, supervisor state, retry time, QR)
 * from sup_view(). Changes go to the store first, then to the supervisor.
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
db_failed(struct api *a, struct evhttp_request *req, const char *id, const char *what)
{
	log_error(id ? id : "api", "%s: %s", what, store_errmsg(a->st));
	api__error(req, 503, "database unavailable");
}

/* Reads the row; answers 404 or 503 and returns false when it cannot. */
static bool
get_row(struct api *a, struct evhttp_request *req, const char *id, struct store_session *row)
{
	int r = store_get(a->st, id, row);
	if (r == 0)
		return true;
	if (r == WG_ENOTFOUND)
		api__error(req, 404, "no such session");
	else
		db_failed(a, req, id, "cannot read the session");
	return false;
}

/* Answers status with the session object as it is now in the store. */
static void
reply_session(struct api *a, struct evhttp_request *req, const char *id, int status)
{
	struct store_session row;
	if (!get_row(a, req, id, &row))
		return;
	api__reply(req, status, api__session_json(a, &row, API_SJ_FULL));
	store_session_free(&row);
}

/* A body that must be empty or {}: POST actions take no parameters. */
static bool
empty_body(struct evhttp_request *req)
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

void
api__sessions_create(struct api *a, struct evhttp_request *req)
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
	/*
	 * Names are unique per user: two sessions named "primary" would leave
	 * the dashboard following one of them, maybe the dead one.
	 */
	char other[STORE_ID_LEN + 1];
	const char *want = s.session_name ? s.session_name : "primary";
	int r = store_find_name(a->st, s.user_id, want, other);
	if (r == 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "a session named \"%s\" already exists for this user (%s): pick "
		                           "another name, or pair that one again", want, other);
		api__error(req, 409, msg);
		store_session_free(&s);
		goto out;
	}
	if (r != WG_ENOTFOUND && r != WG_ENOTSUP) {
		db_failed(a, req, NULL, "cannot create a session");
		store_session_free(&s);
		goto out;
	}
	r = store_insert(a->st, &s);
	if (r) {
		db_failed(a, req, NULL, "cannot create a session");
		store_session_free(&s);
		goto out;
	}
	char id[STORE_ID_LEN + 1];
	snprintf(id, sizeof(id), "%s", s.id);
	store_session_free(&s);
	log_info(id, "created through the API; pairing");
	/*
	 * A failed start is recorded by the supervisor in the row (last_error), so
	 * the session is still created: the answer shows its state.
	 */
	if ((r = sup_pair(a->sup, id, NULL)) != 0)
		log_warn(id, "pairing did not start: %s", wg_strerror(r));
	char loc[64];
	snprintf(loc, sizeof(loc), "/sessions/%s", id);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Location", loc);
	reply_session(a, req, id, 201);
out:
	json_decref(body);
}

/* ---- /sessions/{id} ---- */

void
api__session_get(struct api *a, struct evhttp_request *req, const char *id)
{
	reply_session(a, req, id, 200);
}

void
api__session_patch(struct api *a, struct evhttp_request *req, const char *id)
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
	struct store_session v;
	memset(&v, 0, sizeof(v));
	unsigned mask = 0;
	if (autoc) {
		v.auto_connect = json_is_true(autoc);
		mask |= STORE_F_AUTO;
	}
	if (active) {
		v.is_active = json_is_true(active);
		mask |= STORE_F_ACTIVE;
	}
	int r = store_update(a->st, id, &v, mask, (int64_t)wg_wall_ms());
	if (r == WG_ENOTFOUND) {
		api__error(req, 404, "no such session");
		goto out;
	}
	if (r) {
		db_failed(a, req, id, "cannot update the session");
		goto out;
	}
	log_info(id, "flags changed through the API");
	if ((r = sup_session_changed(a->sup, id)) != 0)
		log_warn(id, "the supervisor could not apply the change: %s", wg_strerror(r));
	/* The flags are no state change of the supervisor's; other dashboards still want them. */
	api__events_session(a, id);
	reply_session(a, req, id, 200);
out:
	json_decref(body);
}

void
api__session_delete(struct api *a, struct evhttp_request *req, const char *id)
{
	struct store_session row;
	if (!get_row(a, req, id, &row))
		return;
	store_session_free(&row);
	/* The supervisor lets go first, so it never writes to a row that is gone. */
	sup_session_deleted(a->sup, id);
	int r = store_delete(a->st, id);
	if (r == WG_ENOTFOUND) {
		api__error(req, 404, "no such session");
		return;
	}
	if (r) {
		db_failed(a, req, id, "cannot delete the session");
		return;
	}
	log_info(id, "deleted through the API");
	api__events_deleted(a, id);
	api__reply(req, 204, NULL);
}

/* ---- /sessions/{id}/qr ---- */

/* The format query parameter: 0 JSON, 1 SVG, -1 anything else (answered 400). */
static int
qr_format(struct evhttp_request *req)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
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

void
api__session_qr(struct api *a, struct evhttp_request *req, const char *id)
{
	int fmt = qr_format(req);
	if (fmt < 0)
		return;
	struct store_session row;
	if (!get_row(a, req, id, &row))
		return;
	store_session_free(&row);
	struct sup_session_view v;
	if (sup_view(a->sup, id, &v) != 0 || strcmp(v.state, "pairing") != 0) {
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
history_since(struct evhttp_request *req, int64_t *since)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
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

void
api__history(struct api *a, struct evhttp_request *req, const char *id)
{
	int64_t since = 0;
	int have = history_since(req, &since);
	if (have < 0)
		return;
	if (have == 0) {
		int64_t now = (int64_t)wg_wall_ms();
		since = now > HISTORY_DEFAULT_MS ? now - HISTORY_DEFAULT_MS : 0;
	}
	struct store_session row;
	if (!get_row(a, req, id, &row))
		return;
	store_session_free(&row);
	struct store_status_change *c = NULL;
	size_t n = 0;
	if (store_status_history(a->st, id, since, STORE_HISTORY_KEEP, &c, &n) != 0) {
		db_failed(a, req, id, "cannot read the status history");
		return;
	}
	/*
	 * The newest changes may be in memory only (written behind, or in the
	 * writer's hands): they follow the table's, all of them newer. Nothing
	 * waits for a write here; a change the writer committed a moment ago is
	 * in both and shown once.
	 */
	const struct store_status_change *pend[STORE_HISTORY_KEEP];
	size_t np = sup_pending_history(a->sup, id, pend, STORE_HISTORY_KEEP);
	bool writing = sup_writing(a->sup);
	json_t *arr = json_array();
	size_t total = 0, from = 0;
	for (size_t j = 0; j < np; j++)
		total += pend[j]->at >= since;
	/* At most the newest STORE_HISTORY_KEEP in all: the table's oldest give way. */
	if (n + total > STORE_HISTORY_KEEP)
		from = n + total - STORE_HISTORY_KEEP < n ? n + total - STORE_HISTORY_KEEP : n;
	for (size_t i = from; i < n; i++)
		json_array_append_new(arr, json_pack("{s:o, s:s, s:o}", "at", api__time(c[i].at),
		                                     "status", c[i].status, "reason",
		                                     nullable(c[i].reason)));
	for (size_t j = 0; j < np; j++) {
		if (pend[j]->at < since)
			continue;
		bool dup = false;
		for (size_t i = 0; writing && i < n && !dup; i++)
			dup = c[i].at == pend[j]->at && strcmp(c[i].status, pend[j]->status) == 0;
		if (!dup)
			json_array_append_new(arr, json_pack("{s:o, s:s, s:o}", "at",
			                                     api__time(pend[j]->at), "status",
			                                     pend[j]->status, "reason",
			                                     nullable(pend[j]->reason)));
	}
	store_status_history_free(c, n);
	api__reply(req, 200, arr);
}

/* An action's request: no body (or {}), and a session with that row; otherwise answered. */
static bool
action_on_row(struct api *a, struct evhttp_request *req, const char *id)
{
	if (!empty_body(req))
		return false;
	struct store_session row;
	if (!get_row(a, req, id, &row))
		return false;
	store_session_free(&row);
	return true;
}

/* ---- /sessions/{id}/logout ---- */

void
api__session_logout(struct api *a, struct evhttp_request *req, const char *id)
{
	if (!action_on_row(a, req, id))
		return;
	int r = sup_logout(a->sup, id);
	if (r) {
		log_error(id, "logout failed: %s", wg_strerror(r));
		api__error(req, 500, "logout failed");
		return;
	}
	log_info(id, "logged out through the API");
	api__reply(req, 200,
	           json_pack("{s:b, s:s}", "success", 1, "message",
	                     "logged out: the credentials are dropped; pair again to use "
	                     "this session"));
}

/* ---- /sessions/{id}/pair ---- */

/*
 * Pairs a new device for an existing session (after QR codes expired, a
 * logout, or credentials that cannot be used), keeping its id: the web app's
 * references stay valid. The answer is the session, now pairing; its QR
 * codes come from /sessions/{id}/qr and the event stream.
 */
void
api__session_pair(struct api *a, struct evhttp_request *req, const char *id)
{
	if (!action_on_row(a, req, id))
		return;
	const char *why = NULL;
	int r = sup_pair(a->sup, id, &why);
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
		log_warn(id, "pairing did not start: %s", wg_strerror(r));
	else
		log_info(id, "pairing a new device through the API");
	reply_session(a, req, id, 200);
}

/* ---- /sessions/{id}/reconnect ---- */

/*
 * A reconnect request waiting for the supervisor's outcome. The supervisor
 * holds a pointer to it until done runs, which can be after the client went
 * away (req NULL) or after the API was freed (api NULL); so it is its own
 * allocation, freed only by done (or at once when sup_reconnect fails).
 */
struct api_pending {
	struct api *api;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	struct api_pending *prev, *next;
	bool in_call;  /* inside sup_reconnect: done may run before it returns */
	bool finished; /* done ran */
};

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

/*
 * The client's connection is being freed (it closed, or evhttp_free). If the
 * request is still queued on it, evhttp frees it too and we must forget it.
 * If evhttp detached it first (a read error: request->evcon is NULL), the
 * request is ours and answering it later frees it.
 */
static void
pending_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct api_pending *p = arg;
	if (p->req && evhttp_request_get_connection(p->req) == evcon)
		p->req = NULL;
	p->evcon = NULL;
}

static void
pending_forget_conn(struct api_pending *p)
{
	if (p->evcon)
		evhttp_connection_set_closecb(p->evcon, NULL, NULL);
	p->evcon = NULL;
}

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
reconnect_refused(struct evhttp_request *req, int status, const char *msg)
{
	api__reply(req, status,
	           json_pack("{s:b, s:s, s:s}", "success", 0, "message", msg, "error", msg));
}

void
api__session_reconnect(struct api *a, struct evhttp_request *req, const char *id)
{
	/* No body, or {} (the router bounded its size). */
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
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
	struct api_pending *p = wg_calloc(1, sizeof(*p));
	p->api = a;
	p->req = req;
	p->evcon = evhttp_request_get_connection(req);
	p->next = a->pending;
	if (a->pending)
		a->pending->prev = p;
	a->pending = p;
	if (p->evcon)
		evhttp_connection_set_closecb(p->evcon, pending_conn_closed, p);
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
	pending_forget_conn(p);
	pending_unlink(p);
	free(p);
	if (r == WG_ENOTFOUND) {
		reconnect_refused(req, 404, "no such session");
	} else {
		log_error(id, "cannot start a reconnect: %s", store_errmsg(a->st));
		reconnect_refused(req, 503, "cannot start a reconnect: the database is not available");
	}
}

void
api__pending_detach_all(struct api *a)
{
	while (a->pending) {
		struct api_pending *p = a->pending;
		/*
		 * A request evhttp had already detached from its connection is
		 * ours to free; the others went with their connections.
		 */
		if (p->req)
			evhttp_request_free(p->req);
		p->req = NULL;
		p->evcon = NULL;
		pending_unlink(p);
	}
}
