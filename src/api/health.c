/*
 * GET /health (public: counts only, for load balancers and uptime checks) and
 * GET /health/deep (authenticated: every session, its supervisor state and
 * its recent recovery attempts, for people diagnosing a problem).
 */
#include <event2/http.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "core/clock.h"
#include "core/log.h"
#include "sup/sup.h"


/* Lists here never need the credentials themselves, only whether they exist. */
static const struct store_filter light = {.without_auth = true};

/* How many recovery attempts /health/deep shows per session. */
#define HEALTH_ATTEMPTS 5

/* The supervisor does not say why its breaker opened; today only one close reason opens it. */
static const char breaker_reason[] = "WhatsApp reported this client version as outdated (405); "
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

void
api__health(struct api *a, struct evhttp_request *req)
{
	int status;
	json_t *o = api__health_json(a, &status, NULL, 0);
	api__reply(req, status, o);
}

static json_t *
attempts_json(struct api *a, const char *id)
{
	struct store_attempt *at = NULL;
	size_t n = 0;
	json_t *arr = json_array();
	if (store_attempts(a->st, id, 0, HEALTH_ATTEMPTS, &at, &n) != 0) {
		log_warn(id, "cannot read recovery attempts: %s", store_errmsg(a->st));
		return arr;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o =
		    json_pack("{s:o, s:s, s:s, s:s}", "at", api__time(at[i].at), "trigger",
		              at[i].trigger, "action", at[i].action, "result", at[i].result);
		json_object_set_new(o, "detail",
		                    at[i].detail ? json_string(at[i].detail) : json_null());
		json_array_append_new(arr, o);
	}
	store_attempts_free(at, n);
	return arr;
}

void
api__health_deep(struct api *a, struct evhttp_request *req)
{
	struct sup_health h;
	sup_health(a->sup, &h);
	struct store_session *rows = NULL;
	size_t n = 0;
	int db_ok = h.db_ok;
	if (db_ok && store_list(a->st, &light, &rows, &n) != 0) {
		log_error("api", "health: cannot list sessions: %s", store_errmsg(a->st));
		db_ok = 0;
	}
	json_t *o = health_head(a, &h);
	if (!db_ok)
		json_object_set_new(o, "status", json_string("error"));
	json_t *db = json_pack("{s:b, s:f, s:I}", "connected", db_ok, "latencyMs",
	                       (double)h.db_latency_us / 1000.0, "pendingWrites",
	                       (json_int_t)h.db_pending);
	json_object_set_new(db, "error", h.db_error ? json_string(h.db_error)
	                                 : !db_ok   ? json_string(store_errmsg(a->st))
	                                            : json_null());
	json_object_set_new(o, "database", db);
	if (h.breaker_open)
		json_object_set_new(o, "breaker",
		                    json_pack("{s:b, s:s}", "open", 1, "reason", breaker_reason));
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *s = api__session_json(a, &rows[i], API_SJ_HEALTH);
		json_object_set_new(s, "recentRecoveryAttempts", attempts_json(a, rows[i].id));
		json_array_append_new(arr, s);
	}
	store_list_free(rows, n);
	json_object_set_new(o, "sessions", arr);
	api__reply(req, db_ok ? 200 : 503, o);
}
