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

void
api__health(struct api *a, struct evhttp_request *req)
{
	int status;
	json_t *o = api__health_json(a, &status, NULL, 0);
	api__reply(req, status, o);
}
