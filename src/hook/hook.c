/*
 * Webhooks (see hook.h). The queue of each URL lives in memory, which owns
 * it; the database mirrors it (a row added when an event is queued, deleted
 * when its receiver accepted it), through the supervisor's reader thread so
 * the loop never waits on a write. Deliveries are one at a time per URL, on a
 * new connection each (http, or https with the system's CA store and the
 * name checked), with a deadline.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/clock.h"
#include "core/enc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"
#include "core/version.h"
#include "hook/hook.h"
#include "store/store.h"
#include "sup/sup.h"
#include "wa/crypto.h"

#define HOOK_MAX_URLS 8
#define HOOK_DEFAULT_MAX 10000
#define HOOK_DEFAULT_TIMEOUT_MS 10000
#define HOOK_DEFAULT_BACKOFF_MS 1000
#define HOOK_DEFAULT_CAP_MS 300000
#define HOOK_LOG_EVERY_MS 60000

struct hook_item {
	TAILQ_ENTRY(hook_item) link;
	struct store_hook row; /* id, seq, url (the dest's), session_id, kind, body, created_at */
};
TAILQ_HEAD(hook_queue, hook_item);

struct hook_dest {
	struct hook *h;
	char *url;
	char host[256], path[1024];
	int port;
	bool tls;
	struct hook_queue q;
	size_t n;
	struct hook_item *inflight;
	struct evhttp_connection *conn;
	struct event *next; /* the next delivery: now, or after the backoff */
	unsigned failures;  /* in a row */
	uint64_t failing_logged_at;
};

/* What was last queued about a session: a change is judged against it. */
struct tracked {
	char id[STORE_ID_LEN + 1];
	char status[16];
	bool manual;
};

struct hook {
	struct event_base *base;
	struct sup *sup;
	struct evdns_base *dns;
	char *secret;
	struct hook_opts o;
	struct hook_dest dests[HOOK_MAX_URLS];
	size_t ndest;
	SSL_CTX *tls;
	struct wg_map tracked;
	char health[16];
	int64_t seq;
	struct hook_stats stats;
	uint64_t dropped_logged_at;
};

/* ---- the database mirror: calls on the supervisor's reader thread ---- */

struct mirror_call {
	struct sup_call call; /* first */
	bool add;
	struct store_hook row; /* add: a copy; delete: the id */
};

static void
mirror_run(struct store *st, struct sup_call *sc)
{
	struct mirror_call *m = (struct mirror_call *)sc;
	int rc = m->add ? store_hook_add(st, &m->row) : store_hook_delete(st, m->row.id);
	if (rc < 0)
		log_warn("webhook", "cannot %s a queued delivery in the database: %s (it is kept in "
		                    "memory; a restart would lose it)", m->add ? "keep" : "drop",
		         store_errmsg(st));
}

static void
mirror_done(struct sup_call *sc)
{
	struct mirror_call *m = (struct mirror_call *)sc;
	free(m->row.url);
	free(m->row.session_id);
	free(m->row.body);
	free(m);
}

static void
mirror(struct hook *h, bool add, const struct store_hook *row)
{
	if (h->sup == NULL)
		return;
	struct mirror_call *m = wg_calloc(1, sizeof(*m));
	m->call.run = mirror_run;
	m->call.done = mirror_done;
	m->add = add;
	memcpy(m->row.id, row->id, sizeof(m->row.id));
	if (add) {
		m->row.seq = row->seq;
		m->row.url = wg_strdup(row->url);
		m->row.session_id = row->session_id ? wg_strdup(row->session_id) : NULL;
		snprintf(m->row.kind, sizeof(m->row.kind), "%s", row->kind);
		m->row.body = wg_strdup(row->body);
		m->row.created_at = row->created_at;
	}
	sup_call(h->sup, &m->call);
}

/* ---- queues ---- */

static void
item_free(struct hook_item *it)
{
	free(it->row.url);
	free(it->row.session_id);
	free(it->row.body);
	free(it);
}

static void
dest_remove(struct hook_dest *d, struct hook_item *it, bool from_db)
{
	TAILQ_REMOVE(&d->q, it, link);
	d->n--;
	if (from_db)
		mirror(d->h, false, &it->row);
	item_free(it);
}

static void
schedule(struct hook_dest *d, uint32_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	event_add(d->next, &tv);
}

/* it replaces old: its previousStatus becomes old's, which is what the receiver knows. */
static void
carry_previous(const struct hook_item *old, struct hook_item *it)
{
	json_t *o = json_loads(old->row.body, 0, NULL), *n = json_loads(it->row.body, 0, NULL);
	json_t *prev = json_object_get(json_object_get(o, "session"), "previousStatus");
	json_t *ns = json_object_get(n, "session");
	if (ns != NULL && prev != NULL) {
		json_object_set(ns, "previousStatus", prev);
		char *body = json_dumps(n, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (body != NULL) {
			free(it->row.body);
			it->row.body = body;
		}
	}
	json_decref(o);
	json_decref(n);
}

static void
dest_push(struct hook_dest *d, struct hook_item *it)
{
	struct hook *h = d->h;
	/* A session's status that has not gone out yet is replaced by the newer one (flapping). */
	if (it->row.session_id != NULL && strcmp(it->row.kind, "session.status") == 0) {
		struct hook_item *old = TAILQ_FIRST(&d->q), *tmp;
		for (; old != NULL; old = tmp) {
			tmp = TAILQ_NEXT(old, link);
			if (old != d->inflight && old->row.session_id != NULL &&
			    strcmp(old->row.kind, "session.status") == 0 &&
			    strcmp(old->row.session_id, it->row.session_id) == 0) {
				/* The receiver last heard the status before the one replaced. */
				carry_previous(old, it);
				dest_remove(d, old, true);
				h->stats.coalesced++;
			}
		}
	}
	size_t max = h->o.max_queued ? h->o.max_queued : HOOK_DEFAULT_MAX;
	while (d->n >= max) {
		struct hook_item *oldest = TAILQ_FIRST(&d->q);
		if (oldest == d->inflight)
			oldest = TAILQ_NEXT(oldest, link);
		if (oldest == NULL)
			break;
		dest_remove(d, oldest, true);
		h->stats.dropped++;
		uint64_t now = wg_now_ms();
		if (h->dropped_logged_at == 0 || now - h->dropped_logged_at >= HOOK_LOG_EVERY_MS) {
			log_warn("webhook", "%s: %zu events wait, the most kept: the oldest are dropped "
			                    "(%llu so far)", d->url, max, (unsigned long long)h->stats.dropped);
			h->dropped_logged_at = now;
		}
	}
	mirror(h, true, &it->row);
	TAILQ_INSERT_TAIL(&d->q, it, link);
	d->n++;
	if (d->inflight == NULL && !evtimer_pending(d->next, NULL))
		schedule(d, 0);
}

/* An event for every URL: its body is made once, each URL gets its own row. */
static void
enqueue(struct hook *h, const char *kind, const char *session_id, json_t *payload)
{
	int64_t now = (int64_t)wg_wall_ms();
	char at[32];
	wg_iso8601(at, (uint64_t)now);
	for (size_t i = 0; i < h->ndest; i++) {
		struct hook_item *it = wg_calloc(1, sizeof(*it));
		uint8_t rnd[16];
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			abort(); /* randomness is always there: out of memory */
		wg_hex_encode(it->row.id, rnd, sizeof(rnd));
		/* Unique and rising within a run and across runs (the clock, then a counter). */
		int64_t seq = now * 1000;
		h->seq = seq > h->seq ? seq : h->seq + 1;
		it->row.seq = h->seq;
		it->row.url = wg_strdup(h->dests[i].url);
		it->row.session_id = session_id ? wg_strdup(session_id) : NULL;
		snprintf(it->row.kind, sizeof(it->row.kind), "%s", kind);
		it->row.created_at = now;
		json_t *o = json_pack("{s:s, s:s, s:s, s:O}", "id", it->row.id, "type", kind, "at", at,
		                      session_id ? "session" : "health", payload);
		it->row.body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
		if (it->row.body == NULL)
			abort();
		dest_push(&h->dests[i], it);
	}
	json_decref(payload);
}

/* ---- delivery ---- */

void
hook_sign(const char *secret, int64_t ts, const char *body, size_t len, char out[72])
{
	/* HMAC-SHA256 of "<ts>.<body>": the message made whole, then wa/crypto's HMAC. */
	char prefix[24];
	int n = snprintf(prefix, sizeof(prefix), "%lld.", (long long)ts);
	uint8_t *msg = wg_malloc((size_t)n + len);
	memcpy(msg, prefix, (size_t)n);
	memcpy(msg + n, body, len);
	uint8_t mac[32];
	wa_crypto_hmac_sha256(mac, (const uint8_t *)secret, strlen(secret), msg, (size_t)n + len);
	free(msg);
	memcpy(out, "sha256=", 7);
	wg_hex_encode(out + 7, mac, sizeof(mac));
}

static void deliver(evutil_socket_t fd, short what, void *arg);

/* The connection of a finished delivery goes in the next loop turn, not inside its own callback. */
static void
free_conn(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

static void
answered(struct evhttp_request *resp, void *arg)
{
	struct hook_dest *d = arg;
	struct hook *h = d->h;
	struct hook_item *it = d->inflight;
	d->inflight = NULL;
	struct timeval now = {0, 0};
	if (d->conn != NULL)
		event_base_once(h->base, -1, EV_TIMEOUT, free_conn, d->conn, &now);
	d->conn = NULL;
	int code = resp ? evhttp_request_get_response_code(resp) : 0;
	if (it == NULL)
		return;
	if (code >= 200 && code < 300) {
		h->stats.delivered++;
		if (d->failures > 0)
			log_info("webhook", "%s accepts deliveries again (after %u failed attempt(s))",
			         d->url, d->failures);
		d->failures = 0;
		dest_remove(d, it, true);
		schedule(d, 0);
		return;
	}
	/* Kept, and tried again later: the receiver is down, slow or refusing. */
	h->stats.failures++;
	d->failures++;
	uint32_t base = h->o.backoff_base_ms ? h->o.backoff_base_ms : HOOK_DEFAULT_BACKOFF_MS;
	uint32_t cap = h->o.backoff_cap_ms ? h->o.backoff_cap_ms : HOOK_DEFAULT_CAP_MS;
	uint64_t delay = base;
	for (unsigned i = 1; i < d->failures && delay < cap; i++)
		delay *= 2;
	if (delay > cap)
		delay = cap;
	/* Up to a quarter less, so receivers that come back are not hit by every sender at once. */
	uint32_t r = 0;
	(void)RAND_bytes((unsigned char *)&r, sizeof(r));
	delay -= delay / 4 * (r % 1000) / 1000;
	uint64_t t = wg_now_ms();
	if (d->failures == 1 || t - d->failing_logged_at >= HOOK_LOG_EVERY_MS) {
		char why[64];
		if (code)
			snprintf(why, sizeof(why), "answered %d", code);
		else
			snprintf(why, sizeof(why), "did not answer");
		log_warn("webhook", "%s %s: %zu event(s) wait; retrying in %llu ms", d->url, why, d->n,
		         (unsigned long long)delay);
		d->failing_logged_at = t;
	}
	schedule(d, (uint32_t)delay);
}

static struct evhttp_connection *
connect_dest(struct hook_dest *d)
{
	struct hook *h = d->h;
	if (!d->tls)
		return evhttp_connection_base_new(h->base, h->dns, d->host, (unsigned short)d->port);
	SSL *ssl = SSL_new(h->tls);
	if (ssl == NULL)
		return NULL;
	SSL_set_tlsext_host_name(ssl, d->host);
	SSL_set1_host(ssl, d->host);
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    h->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	return evhttp_connection_base_bufferevent_new(h->base, h->dns, bev, d->host,
	                                              (unsigned short)d->port);
}

static void
deliver(evutil_socket_t fd, short what, void *arg)
{
	struct hook_dest *d = arg;
	struct hook *h = d->h;
	(void)fd;
	(void)what;
	if (d->inflight != NULL || TAILQ_EMPTY(&d->q))
		return;
	struct hook_item *it = TAILQ_FIRST(&d->q);
	d->conn = connect_dest(d);
	if (d->conn == NULL) {
		answered(NULL, d); /* counts as a failure: retried */
		return;
	}
	uint32_t tmo = h->o.timeout_ms ? h->o.timeout_ms : HOOK_DEFAULT_TIMEOUT_MS;
	evhttp_connection_set_timeout(d->conn, (int)((tmo + 999) / 1000));
	struct evhttp_request *req = evhttp_request_new(answered, d);
	struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
	int64_t ts = (int64_t)(wg_wall_ms() / 1000);
	char tstext[24], sig[72];
	snprintf(tstext, sizeof(tstext), "%lld", (long long)ts);
	size_t len = strlen(it->row.body);
	hook_sign(h->secret, ts, it->row.body, len, sig);
	evhttp_add_header(hd, "Host", d->host);
	evhttp_add_header(hd, "Content-Type", "application/json");
	evhttp_add_header(hd, "User-Agent", "wagate/" WAGATE_VERSION);
	evhttp_add_header(hd, "X-Wagate-Event", it->row.kind);
	evhttp_add_header(hd, "X-Wagate-Delivery", it->row.id);
	evhttp_add_header(hd, "X-Wagate-Timestamp", tstext);
	evhttp_add_header(hd, "X-Wagate-Signature", sig);
	evhttp_add_header(hd, "Connection", "close");
	evbuffer_add(evhttp_request_get_output_buffer(req), it->row.body, len);
	d->inflight = it;
	if (evhttp_make_request(d->conn, req, EVHTTP_REQ_POST, d->path) != 0) {
		/* libevent freed req */
		answered(NULL, d);
	}
}

/* ---- what happens ---- */

static json_t *
session_json(const struct sup_session_view *v, const char *previous)
{
	return json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:s?, s:b}", "sessionId", v->id,
	                 "sessionName", v->session_name, "userId", v->user_id, "status",
	                 v->status[0] ? v->status : NULL, "previousStatus",
	                 previous && previous[0] ? previous : NULL, "supervisorState", v->state,
	                 "lastError", v->last_error, "manualInterventionNeeded", v->manual_needed);
}

static void
health_check(struct hook *h)
{
	struct sup_health hs;
	sup_health(h->sup, &hs);
	if (strcmp(hs.status, h->health) == 0)
		return;
	json_t *p = json_pack("{s:s, s:s?, s:{s:I, s:I, s:I, s:I}}", "status", hs.status,
	                      "previousStatus", h->health[0] ? h->health : NULL, "sessions", "total",
	                      (json_int_t)hs.total, "connected", (json_int_t)hs.connected,
	                      "connecting", (json_int_t)hs.connecting, "disconnected",
	                      (json_int_t)hs.disconnected);
	bool first = h->health[0] == '\0';
	snprintf(h->health, sizeof(h->health), "%s", hs.status);
	if (first) {
		json_decref(p); /* the state at start is not a change */
		return;
	}
	enqueue(h, "health.changed", NULL, p);
}

static void
on_sup(void *arg, enum sup_event ev, const char *id)
{
	struct hook *h = arg;
	if (ev == SUP_EV_GONE) {
		h->sup = NULL;
		return;
	}
	if (ev != SUP_EV_SESSION)
		return;
	struct sup_session_view v;
	struct tracked *t = wg_map_get(&h->tracked, id);
	if (sup_view(h->sup, id, &v) != 0) {
		if (t != NULL) {
			wg_map_del(&h->tracked, t->id);
			free(t);
		}
		return;
	}
	if (t == NULL) {
		t = wg_calloc(1, sizeof(*t));
		snprintf(t->id, sizeof(t->id), "%s", id);
		wg_map_put(&h->tracked, t->id, t);
	}
	if (strcmp(t->status, v.status) != 0) {
		enqueue(h, "session.status", id, session_json(&v, t->status));
		snprintf(t->status, sizeof(t->status), "%s", v.status);
	}
	if (v.manual_needed && !t->manual)
		enqueue(h, "session.recovery_limited", id, session_json(&v, NULL));
	t->manual = v.manual_needed;
	health_check(h);
}

/* ---- lifetime ---- */

static int
parse_url(struct hook_dest *d, const char *url, char *err, size_t errlen)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
	const char *host = u ? evhttp_uri_get_host(u) : NULL;
	if (u == NULL || scheme == NULL || host == NULL || host[0] == '\0' ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
	    strlen(host) >= sizeof(d->host)) {
		if (u)
			evhttp_uri_free(u);
		snprintf(err, errlen, "WAGATE_WEBHOOK_URL: \"%.200s\" is not an http:// or https:// URL",
		         url);
		return WG_EINVAL;
	}
	d->tls = strcmp(scheme, "https") == 0;
	snprintf(d->host, sizeof(d->host), "%s", host);
	d->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : d->tls ? 443 : 80;
	const char *path = evhttp_uri_get_path(u);
	const char *query = evhttp_uri_get_query(u);
	snprintf(d->path, sizeof(d->path), "%s%s%s", path && path[0] ? path : "/", query ? "?" : "",
	         query ? query : "");
	evhttp_uri_free(u);
	return 0;
}

int
hook_start(struct event_base *base, struct store *st, struct sup *sup, const struct hook_opts *o,
           struct hook **out, char *err, size_t errlen)
{
	*out = NULL;
	if (o->secret == NULL || strlen(o->secret) < 16) {
		snprintf(err, errlen, "WAGATE_WEBHOOK_SECRET must be set (16 characters or more) "
		                      "with WAGATE_WEBHOOK_URL: receivers check the signature with it");
		return WG_EINVAL;
	}
	struct hook *h = wg_calloc(1, sizeof(*h));
	h->base = base;
	h->sup = sup;
	h->dns = o->dns;
	h->o = *o;
	h->secret = wg_strdup(o->secret);
	wg_map_init(&h->tracked);
	char *list = wg_strdup(o->urls ? o->urls : "");
	char *save = NULL;
	int rc = 0;
	for (char *tok = strtok_r(list, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		if (h->ndest == HOOK_MAX_URLS) {
			snprintf(err, errlen, "WAGATE_WEBHOOK_URL: at most %d URLs", HOOK_MAX_URLS);
			rc = WG_EINVAL;
			break;
		}
		struct hook_dest *d = &h->dests[h->ndest];
		d->h = h;
		TAILQ_INIT(&d->q);
		if ((rc = parse_url(d, tok, err, errlen)) != 0)
			break;
		d->url = wg_strdup(tok);
		d->next = evtimer_new(base, deliver, d);
		h->ndest++;
		if (d->tls && h->tls == NULL) {
			h->tls = SSL_CTX_new(TLS_client_method());
			SSL_CTX_set_default_verify_paths(h->tls);
			SSL_CTX_set_verify(h->tls, SSL_VERIFY_PEER, NULL);
			SSL_CTX_set_min_proto_version(h->tls, TLS1_2_VERSION);
		}
	}
	free(list);
	if (rc == 0 && h->ndest == 0) {
		snprintf(err, errlen, "WAGATE_WEBHOOK_URL names no URL");
		rc = WG_EINVAL;
	}
	if (rc != 0) {
		hook_free(h);
		return rc;
	}
	/* What an earlier run left undelivered goes first, in its order. */
	struct store_hook *rows = NULL;
	size_t n = 0;
	if (store_hook_list(st, STORE_LIST_MAX, &rows, &n) < 0) {
		log_warn("webhook", "cannot read the undelivered events: %s", store_errmsg(st));
		n = 0;
	}
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		struct hook_dest *d = NULL;
		for (size_t k = 0; k < h->ndest && d == NULL; k++)
			if (strcmp(h->dests[k].url, rows[i].url) == 0)
				d = &h->dests[k];
		if (d == NULL) {
			/* A URL no longer configured: its events go. */
			if (store_hook_delete(st, rows[i].id) < 0)
				log_warn("webhook", "cannot drop an event for a URL no longer set: %s",
				         store_errmsg(st));
			continue;
		}
		struct hook_item *it = wg_calloc(1, sizeof(*it));
		it->row = rows[i];
		memset(&rows[i], 0, sizeof(rows[i])); /* taken */
		if (it->row.seq > h->seq)
			h->seq = it->row.seq;
		TAILQ_INSERT_TAIL(&d->q, it, link);
		d->n++;
		kept++;
	}
	store_hooks_free(rows, n);
	if (kept > 0)
		log_info("webhook", "%zu event(s) left undelivered by the last run go first", kept);
	for (size_t k = 0; k < h->ndest; k++)
		if (h->dests[k].n > 0)
			schedule(&h->dests[k], 0);
	sup_set_observer(sup, on_sup, h);
	for (size_t k = 0; k < h->ndest; k++)
		log_info("webhook", "delivering to %s", h->dests[k].url);
	*out = h;
	return 0;
}

void
hook_stats(const struct hook *h, struct hook_stats *out)
{
	*out = h->stats;
	out->queued = 0;
	for (size_t k = 0; k < h->ndest; k++)
		out->queued += h->dests[k].n;
}

void
hook_free(struct hook *h)
{
	if (h == NULL)
		return;
	if (h->sup != NULL)
		sup_remove_observer(h->sup, h);
	for (size_t k = 0; k < h->ndest; k++) {
		struct hook_dest *d = &h->dests[k];
		if (d->conn != NULL)
			evhttp_connection_free(d->conn); /* frees the request in flight, without answered() */
		d->inflight = NULL;
		struct hook_item *it;
		while ((it = TAILQ_FIRST(&d->q)) != NULL) {
			TAILQ_REMOVE(&d->q, it, link);
			item_free(it); /* still in the database: delivered by the next start */
		}
		if (d->next)
			event_free(d->next);
		free(d->url);
	}
	for (size_t i = 0; i < h->tracked.cap; i++)
		if (h->tracked.slots[i].key != NULL)
			free(h->tracked.slots[i].val);
	wg_map_free(&h->tracked);
	if (h->tls)
		SSL_CTX_free(h->tls);
	wg_wipe(h->secret, strlen(h->secret));
	free(h->secret);
	free(h);
}
