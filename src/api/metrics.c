/*
 * GET /metrics: the Prometheus text format (version 0.0.4), from counters
 * kept on every transition (no I/O, no scan of the sessions). Names follow
 * Prometheus' conventions: the wagate_ prefix, base units (seconds), _total
 * for counters; no label holds a session id or a phone number. docs/api.md
 * lists every metric.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "client/session.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/version.h"
#include "hook/hook.h"
#include "net/looplag.h"
#include "store/store.h"
#include "sup/sup.h"

static void
head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
gauge(struct evbuffer *b, const char *name, const char *help, double v)
{
	head(b, name, "gauge", help);
	evbuffer_add_printf(b, "%s %.17g\n", name, v);
}

static void
counter(struct evbuffer *b, const char *name, const char *help, unsigned long long v)
{
	head(b, name, "counter", help);
	evbuffer_add_printf(b, "%s %llu\n", name, v);
}

static void
sessions(struct api *a, struct evbuffer *b)
{
	struct sup_health h;
	sup_health(a->sup, &h);
	head(b, "wagate_sessions", "gauge",
	     "Sessions wagate keeps connected (active primaries with credentials), by status.");
	evbuffer_add_printf(b, "wagate_sessions{status=\"connected\"} %u\n", h.connected);
	evbuffer_add_printf(b, "wagate_sessions{status=\"connecting\"} %u\n", h.connecting);
	evbuffer_add_printf(b, "wagate_sessions{status=\"disconnected\"} %u\n", h.disconnected);
	gauge(b, "wagate_logins_in_flight", "Logins (handshakes) in progress.", h.handshakes);
	gauge(b, "wagate_breaker_open",
	      "1 while automatic reconnects are stopped (WhatsApp called this client outdated).",
	      h.breaker_open);
	gauge(b, "wagate_store_up", "1 while the database takes writes.", h.db_ok);
	gauge(b, "wagate_store_pending_sessions",
	      "Sessions whose row has not caught up with memory yet.", h.db_pending);
	gauge(b, "wagate_ready", "1 while GET /readyz answers 200.",
	      h.started && !h.stopping && h.db_ok);

	const struct sup_metrics *m;
	sup_metrics(a->sup, &m);
	counter(b, "wagate_session_connects_total", "Connects started (logins and pairings).",
	        (unsigned long long)m->connects);
	counter(b, "wagate_session_opens_total", "Connections that logged in.",
	        (unsigned long long)m->opens);
	head(b, "wagate_session_closes_total", "counter", "Connections that ended, by reason.");
	for (int r = 0; r <= WA_CLOSE_CLOSED_BY_US && r < SUP_CLOSE_REASONS; r++)
		evbuffer_add_printf(b, "wagate_session_closes_total{reason=\"%s\"} %llu\n",
		                    wa_close_reason_name((enum wa_close_reason)r),
		                    (unsigned long long)m->closes[r]);
	head(b, "wagate_recoveries_total", "counter",
	     "Rows of the recovery table, by trigger, action and result.");
	for (size_t i = 0; i < m->nrecov; i++)
		evbuffer_add_printf(b,
		                    "wagate_recoveries_total{trigger=\"%s\",action=\"%s\",result=\"%s\"} "
		                    "%llu\n",
		                    m->recov[i].trigger, m->recov[i].action, m->recov[i].result,
		                    (unsigned long long)m->recov[i].n);
	head(b, "wagate_login_duration_seconds", "histogram",
	     "From the start of a connect to its login (pairings, which wait for a person, left out).");
	wg_hist_write(b, "wagate_login_duration_seconds", NULL, &m->connect);
	head(b, "wagate_keepalive_rtt_seconds", "histogram",
	     "Round trips of the keepalive pings to WhatsApp (millisecond resolution).");
	wg_hist_write(b, "wagate_keepalive_rtt_seconds", NULL, wa_session_keepalive_rtt());
}

static void
store(struct evbuffer *b)
{
	const struct store_write_metrics *w = store_write_metrics();
	head(b, "wagate_store_write_duration_seconds", "histogram",
	     "The supervisor's batched database writes (one transaction each), failed ones too.");
	wg_hist_write(b, "wagate_store_write_duration_seconds", NULL, &w->latency);
	counter(b, "wagate_store_write_failures_total", "Batched database writes that failed.",
	        (unsigned long long)wg_count_read(&w->failures));
}

static void
http(struct api *a, struct evbuffer *b)
{
	head(b, "wagate_http_requests_total", "counter", "HTTP answers, by route and status code.");
	for (int r = 0; r < API_ROUTES; r++)
		for (int k = 0; k < API_CODES; k++) {
			if (a->answers[r][k] == 0)
				continue;
			char code[8];
			if (k == API_CODES - 1)
				snprintf(code, sizeof(code), "other");
			else
				snprintf(code, sizeof(code), "%d", api__codes[k]);
			evbuffer_add_printf(b, "wagate_http_requests_total{route=\"%s\",code=\"%s\"} %llu\n",
			                    api__route_name(r), code, (unsigned long long)a->answers[r][k]);
		}
	struct httpd_stats st;
	httpd_stats(a->http, &st);
	gauge(b, "wagate_http_connections", "HTTP connections open.", st.conns);
	counter(b, "wagate_http_connections_accepted_total", "HTTP connections accepted.", st.accepted);
	counter(b, "wagate_http_refused_total",
	        "Requests the HTTP server refused itself (malformed, too large, too slow).", st.refused);
	counter(b, "wagate_http_timeouts_total", "Request deadlines and idle timeouts.", st.timed_out);
	counter(b, "wagate_http_evicted_total",
	        "Idle keep-alive connections closed to make room at the connection cap.", st.evicted);
	counter(b, "wagate_http_accept_pauses_total",
	        "Times accepting paused: at the connection cap, or out of descriptors.",
	        st.cap_pauses + st.accept_errors);
	gauge(b, "wagate_sse_clients", "GET /events streams open.", (double)api_event_streams(a));
}

void
api__metrics(struct api *a, struct httpd_req *req)
{
	struct evbuffer *b = evbuffer_new();
	head(b, "wagate_build_info", "gauge", "The version of wagate; always 1.");
	evbuffer_add_printf(b, "wagate_build_info{version=\"%s\"} 1\n", WAGATE_VERSION);
	gauge(b, "wagate_uptime_seconds", "Seconds since the server started.",
	      (double)api__uptime(a));
	if (a->lag != NULL) {
		struct looplag_stat ls;
		looplag_since(a->lag, (int64_t)wg_wall_ms() - 60000, &ls);
		gauge(b, "wagate_event_loop_lag_max_seconds",
		      "The event loop's largest lateness in the last minute.",
		      (double)ls.max_lag_us / 1e6);
		gauge(b, "wagate_event_loop_turn_max_seconds",
		      "The event loop's longest turn in the last minute.",
		      (double)ls.max_turn_us / 1e6);
		gauge(b, "wagate_event_loop_own_lag_max_seconds",
		      "The longest turn's own work (less waits for a CPU and stolen time) in the last minute.",
		      (double)ls.max_own_us / 1e6);
	}
	if (a->sup != NULL)
		sessions(a, b);
	store(b);
	http(a, b);
	if (a->hook != NULL) {
		struct hook_stats hs;
		hook_stats(a->hook, &hs);
		counter(b, "wagate_webhook_delivered_total", "Webhook events the receivers accepted.",
		        (unsigned long long)hs.delivered);
		counter(b, "wagate_webhook_failures_total",
		        "Webhook delivery attempts that failed (each is retried).",
		        (unsigned long long)hs.failures);
		counter(b, "wagate_webhook_dropped_total",
		        "Webhook events dropped at the queue's bound.", (unsigned long long)hs.dropped);
		counter(b, "wagate_webhook_coalesced_total",
		        "Session status events replaced by a later one before delivery.",
		        (unsigned long long)hs.coalesced);
		gauge(b, "wagate_webhook_queued", "Webhook events not delivered yet.", (double)hs.queued);
	}
	evhttp_add_header(httpd_out_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(httpd_out_headers(req), "Cache-Control", "no-store");
	api__log_answer(req, 200);
	httpd_reply(req, 200, "OK", b);
	evbuffer_free(b);
}
