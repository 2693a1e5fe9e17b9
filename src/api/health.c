/*
 * GET /health (public: counts only, for load balancers and uptime checks),
 * GET /health/deep (authenticated: every session, its supervisor state and
 * its recent recovery attempts, for people diagnosing a problem; listing.c)
 * and GET /health/loop (authenticated: how late the event loop ran).
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "api/api_int.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/looplag.h"
#include "sup/sup.h"


/* The supervisor does not say why its breaker opened; today only one close reason opens it. */
const char api__breaker_reason[] = "WhatsApp reported this client version as outdated (405); "
                                     "automatic reconnects are stopped until wagate is updated";

static json_t *
health_head(struct api *a, const struct sup_health *h)
{
	char now[32];
	wg_iso8601(now, wg_wall_ms());
	return json_pack("{s:s, s:s, s:I}", "status", h->status, "timestamp", now, "uptime",
	                 (json_int_t)api__uptime(a));
}

json_t *
api__health_json(struct api *a, int *status, char *key, size_t keylen)
{
	struct sup_health h;
	sup_health(a->sup, &h);
	json_t *o = health_head(a, &h);
	json_object_set_new(o, "sessions",
	                    json_pack("{s:I, s:I, s:I, s:I}", "total", (json_int_t)h.total,
	                              "connected", (json_int_t)h.connected, "connecting",
	                              (json_int_t)h.connecting, "disconnected",
	                              (json_int_t)h.disconnected));
	*status = strcmp(h.status, "error") == 0 ? 503 : 200;
	/* What a change is judged by (GET /events): status and counts, not the clock. */
	if (key)
		snprintf(key, keylen, "%s %u %u %u %u", h.status, h.total, h.connected,
		         h.connecting, h.disconnected);
	return o;
}

/*
 * GET /livez: the process and its event loop answer (this answer comes from
 * the loop). It asks nothing of the database or WhatsApp, so a database blip
 * never gets the process restarted.
 */
void
api__livez(struct api *a, struct httpd_req *req)
{
	api__reply(req, 200, json_pack("{s:s, s:I}", "status", "alive", "uptime",
	                               (json_int_t)api__uptime(a)));
}

/*
 * GET /readyz: this node can do its work: it has started (its sessions are
 * read), it is not stopping, the database takes its writes and, with several
 * nodes, its last lease round succeeded (it holds what it serves). 503 with
 * the reasons otherwise. From counters only: no I/O.
 */
void
api__readyz(struct api *a, struct httpd_req *req)
{
	struct sup_health h;
	sup_health(a->sup, &h);
	struct sup_cluster_info ci;
	sup_cluster_info(a->sup, &ci);
	json_t *why = json_array();
	if (!h.started)
		json_array_append_new(why, json_string("starting: the sessions are not read yet"));
	if (h.stopping)
		json_array_append_new(why, json_string("stopping"));
	if (!h.db_ok) {
		char msg[300];
		snprintf(msg, sizeof(msg), "database: %s", h.db_error ? h.db_error : "unavailable");
		json_array_append_new(why, json_string(msg));
	}
	if (ci.enabled && !ci.rounds_ok)
		json_array_append_new(why, json_string("leases: the last round failed"));
	bool ready = json_array_size(why) == 0;
	json_t *o = json_pack("{s:s}", "status", ready ? "ready" : "not_ready");
	if (ready)
		json_decref(why);
	else
		json_object_set_new(o, "reasons", why);
	api__reply(req, ready ? 200 : 503, o);
}

void
api__health(struct api *a, struct httpd_req *req)
{
	int status;
	json_t *o = api__health_json(a, &status, NULL, 0);
	api__reply(req, status, o);
}

void
api__health_loop(struct api *a, struct httpd_req *req)
{
	/* ?since=<Unix ms>: the window's start (default: the last minute). */
	int64_t since = (int64_t)wg_wall_ms() - 60000;
	const char *q = evhttp_uri_get_query(httpd_uri(req));
	if (q != NULL) {
		struct evkeyvalq params;
		TAILQ_INIT(&params);
		int bad = evhttp_parse_query_str(q, &params) != 0;
		struct evkeyval *kv;
		TAILQ_FOREACH(kv, &params, next)
		{
			char *end;
			long long v = strtoll(kv->value, &end, 10);
			if (strcmp(kv->key, "since") != 0 || kv->value[0] < '0' || kv->value[0] > '9' ||
			    *end || strlen(kv->value) > 15) {
				bad = 1;
				break;
			}
			since = v;
		}
		evhttp_clear_headers(&params);
		if (bad) {
			api__error(req, 400, "the only parameter is since=<Unix time in ms>");
			return;
		}
	}
	if (a->lag == NULL) {
		api__error(req, 404, "the event loop is not measured (WAGATE_LOOP_LAG_INTERVAL=0)");
		return;
	}
	struct looplag_stat st;
	looplag_since(a->lag, since, &st);
	json_t *o = json_object();
	json_object_set_new(o, "intervalMs", json_integer((json_int_t)st.interval_ms));
	json_object_set_new(o, "since", api__time(st.oldest_ms));
	json_object_set_new(o, "samples", json_integer((json_int_t)st.samples));
	json_object_set_new(o, "maxLagMs", json_real((double)st.max_lag_us / 1000.0));
	json_object_set_new(o, "over10ms", json_integer(st.over_10ms));
	/* Its turns, and what its own work took of them (net/looplag.h). */
	json_object_set_new(o, "maxTurnMs", json_real((double)st.max_turn_us / 1000.0));
	json_object_set_new(o, "turnsOver10ms", json_integer(st.turns_over_10ms));
	json_object_set_new(o, "maxOwnMs", json_real((double)st.max_own_us / 1000.0));
	json_object_set_new(o, "ownOver10ms", json_integer(st.own_over_10ms));
	api__reply(req, 200, o);
}

/*
 * GET /cluster: this node, and every node with a row (live ones first): its
 * address, heartbeat, capacity and how many leases it holds. One node
 * (SQLite, or WAGATE_NODE_ID=off) says so. The nodes are read on the
 * supervisor's reader thread (sup_call); the request waits, the loop does not.
 */
struct cluster_call {
	struct sup_call call; /* first */
	struct api_pending *p;
	uint64_t ttl_ms;
	int rc;
	char err[256];
	struct store_node *nodes;
	size_t n;
};

static void
cluster_run(struct store *st, struct sup_call *sc)
{
	struct cluster_call *c = (struct cluster_call *)sc;
	if ((c->rc = store_nodes(st, c->ttl_ms, &c->nodes, &c->n)) != 0)
		snprintf(c->err, sizeof(c->err), "%s", store_errmsg(st));
}

static void
cluster_done(struct sup_call *sc)
{
	struct cluster_call *c = (struct cluster_call *)sc;
	struct api *a = c->p->api;
	struct httpd_req *req = c->p->req;
	api__pending_release(c->p);
	if (a == NULL || req == NULL) {
		/* the client or the API went meanwhile */
	} else if (sc->cancelled || a->sup == NULL) {
		api__error(req, 503, "the server is stopping");
	} else if (c->rc != 0) {
		log_error("api", "cannot list the nodes: %s", c->err);
		api__error(req, 503, "database unavailable");
	} else {
		struct sup_cluster_info ci;
		sup_cluster_info(a->sup, &ci);
		json_t *o = json_object();
		json_object_set_new(o, "enabled", json_boolean(ci.enabled));
		json_object_set_new(o, "node", json_string(ci.node));
		json_object_set_new(o, "leaseTtlMs", json_integer((json_int_t)ci.lease_ttl_ms));
		json_object_set_new(o, "held", json_integer(ci.held));
		json_object_set_new(o, "share", json_integer(ci.share));
		json_object_set_new(o, "capacity", ci.capacity ? json_integer(ci.capacity) : json_null());
		json_object_set_new(o, "leasesSureForMs", json_integer((json_int_t)ci.sure_for_ms));
		json_object_set_new(o, "leaseRoundsOk", json_boolean(ci.rounds_ok));
		json_t *arr = json_array();
		for (size_t i = 0; i < c->n; i++) {
			const struct store_node *nd = &c->nodes[i];
			json_array_append_new(
			    arr,
			    json_pack("{s:s, s:o, s:b, s:o, s:o, s:I, s:o, s:b}", "node", nd->id, "url",
			              nd->url[0] ? json_string(nd->url) : json_null(), "live", nd->live,
			              "startedAt", api__time(nd->started_at), "heartbeatAt",
			              api__time(nd->heartbeat_at), "leases", (json_int_t)nd->leases,
			              "capacity", nd->capacity ? json_integer(nd->capacity) : json_null(),
			              "self", strcmp(nd->id, ci.node) == 0));
		}
		json_object_set_new(o, "nodes", arr);
		api__reply(req, 200, o);
	}
	free(c->nodes);
	free(c);
}

void
api__cluster(struct api *a, struct httpd_req *req)
{
	struct sup_cluster_info ci;
	sup_cluster_info(a->sup, &ci);
	if (!ci.enabled) {
		json_t *o = json_object();
		json_object_set_new(o, "enabled", json_false());
		json_object_set_new(o, "node", json_null());
		json_object_set_new(o, "nodes", json_array());
		api__reply(req, 200, o);
		return;
	}
	struct cluster_call *c = wg_calloc(1, sizeof(*c));
	c->call.run = cluster_run;
	c->call.done = cluster_done;
	c->ttl_ms = ci.lease_ttl_ms;
	c->p = api__pending_new(a, req);
	sup_call(a->sup, &c->call);
}
