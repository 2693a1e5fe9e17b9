/*
 * The mock's control API: JSON over HTTP (libevent's evhttp) on its own port,
 * for tests and demos to inspect connections and, later, to play the phone and
 * inject faults. Documented in docs/mock.md.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/addr.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "mock/mock_int.h"

/* Control requests are small JSON documents. */
#define CONTROL_MAX_BODY (64 * 1024)
#define CONTROL_MAX_HEADERS (8 * 1024)

static void
reply_json(struct evhttp_request *req, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\n", 1);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evhttp_send_reply(req, status, NULL, out);
	evbuffer_free(out);
	free(text);
	json_decref(body);
}

static void
reply_error(struct evhttp_request *req, int status, const char *msg)
{
	reply_json(req, status, json_pack("{s:s}", "error", msg));
}

static json_t *
conn_json(const struct mock_conn *c)
{
	char at[32], last[32];
	wg_iso8601(at, c->connected_at);
	json_t *o = json_pack("{s:I, s:i, s:s, s:s, s:s}", "id", (json_int_t)c->id, "dict",
			      c->dict, "state", mock__state_name(c->state), "remote", c->remote,
			      "connectedAt", at);
	json_object_set_new(o, "jid", c->jid ? json_string(c->jid) : json_null());
	if (c->last_frame_at) {
		wg_iso8601(last, c->last_frame_at);
		json_object_set_new(o, "lastFrameAt", json_string(last));
	} else {
		json_object_set_new(o, "lastFrameAt", json_null());
	}
	json_object_set_new(o, "frames", json_integer(c->frames_in));
	json_object_set_new(o, "pings", json_integer(c->pings));
	return o;
}

json_t *
mock_connections(const struct mock *m)
{
	json_t *arr = json_array();
	struct mock_conn *c;
	TAILQ_FOREACH(c, &m->conns, link)
		json_array_append_new(arr, conn_json(c));
	return arr;
}

static void
get_connections(struct mock *m, struct evhttp_request *req)
{
	reply_json(req, 200, mock_connections(m));
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct mock *m = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	if (path == NULL) {
		reply_error(req, 400, "bad request URI");
		return;
	}
	if (strcmp(path, "/connections") == 0) {
		if (method != EVHTTP_REQ_GET) {
			reply_error(req, 405, "use GET");
			return;
		}
		get_connections(m, req);
		return;
	}
	reply_error(req, 404, "no such endpoint");
}

int
mock__control_start(struct mock *m, const char *host_port, char *err, size_t errlen)
{
	char host[256];
	uint16_t port;
	if (wg_addr_split(host_port, host, sizeof(host), &port)) {
		snprintf(err, errlen, "control address \"%s\" is not host:port", host_port);
		return WG_EINVAL;
	}
	m->http = evhttp_new(m->base);
	evhttp_set_max_body_size(m->http, CONTROL_MAX_BODY);
	evhttp_set_max_headers_size(m->http, CONTROL_MAX_HEADERS);
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_gencb(m->http, on_request, m);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(m->http, host, port);
	if (bs == NULL) {
		snprintf(err, errlen, "cannot listen on %s for the control API", host_port);
		return WG_EIO;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
		m->control_port = ntohs(ss.ss_family == AF_INET6
						? ((struct sockaddr_in6 *)&ss)->sin6_port
						: ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

void
mock__control_stop(struct mock *m)
{
	if (m->http != NULL) {
		evhttp_free(m->http);
		m->http = NULL;
	}
}
