/*
 * A session object as JSON text, written straight into a buffer: the one
 * place that says what a session looks like on the wire. Listings write
 * thousands of these per second, so no JSON tree is built for them (a tree
 * of sixteen members costs about as much as everything else together);
 * single answers parse the same text into a tree, so both shapes can never
 * differ. Text is escaped as JSON requires, and bytes that are not UTF-8
 * (a row written by someone else) become U+FFFD instead of breaking the
 * answer.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "core/clock.h"
#include "sup/sup.h"

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	unsigned min;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	unsigned cp = c & (0x3fu >> (len - 1));
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void
api__json_str(struct evbuffer *b, const char *s)
{
	if (s == NULL || s[0] == '\0') {
		evbuffer_add(b, "null", 4);
		return;
	}
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), run = 0;
	evbuffer_add(b, "\"", 1);
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			i++;
			run++;
			continue;
		}
		size_t u = c >= 0x80 ? utf8_len(p + i, n - i) : 0;
		if (u) {
			i += u;
			run += u;
			continue;
		}
		evbuffer_add(b, p + i - run, run);
		run = 0;
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			evbuffer_add(b, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			evbuffer_add(b, esc, 6);
		} else {
			evbuffer_add(b, "\\ufffd", 6);
		}
		i++;
	}
	evbuffer_add(b, p + n - run, run);
	evbuffer_add(b, "\"", 1);
}

void
api__json_time(struct evbuffer *b, int64_t ms)
{
	if (ms <= 0) {
		evbuffer_add(b, "null", 4);
		return;
	}
	char t[34];
	t[0] = '"';
	wg_iso8601(t + 1, (uint64_t)ms);
	size_t len = strlen(t);
	t[len] = '"';
	evbuffer_add(b, t, len + 1);
}

static void
put_bool(struct evbuffer *b, const char *key, int v)
{
	evbuffer_add_printf(b, ",\"%s\":%s", key, v ? "true" : "false");
}

static void
put_str(struct evbuffer *b, const char *key, const char *v)
{
	evbuffer_add_printf(b, ",\"%s\":", key);
	api__json_str(b, v);
}

static void
put_time(struct evbuffer *b, const char *key, int64_t ms)
{
	evbuffer_add_printf(b, ",\"%s\":", key);
	api__json_time(b, ms);
}

void
api__session_text(struct evbuffer *b, const struct sup_session_view *v, enum api_sj shape,
                  int open)
{
	bool full = shape == API_SJ_FULL;
	evbuffer_add(b, "{\"sessionId\":", 13);
	api__json_str(b, v->id);
	put_str(b, "sessionName", v->session_name);
	if (full)
		put_str(b, "userId", v->user_id);
	put_str(b, "phoneNumber", v->phone_number);
	put_str(b, "connectionStatus", v->status);
	put_bool(b, "isActive", v->is_active);
	put_bool(b, "autoConnect", v->auto_connect);
	put_str(b, "lastError", v->last_error);
	put_time(b, "lastConnectedAt", v->last_connected_at);
	put_time(b, "lastMessageAt", v->last_message_at);
	if (full) {
		put_time(b, "createdAt", v->created_at);
		put_time(b, "updatedAt", v->updated_at);
	}
	put_bool(b, "socketAlive", v->socket_alive);
	put_str(b, "supervisorState", v->state);
	put_bool(b, "manualInterventionNeeded", v->manual_needed);
	put_time(b, "nextRetryAt", v->next_retry_at);
	if (!open)
		evbuffer_add(b, "}", 1);
}

json_t *
api__session_json(struct api *a, const struct store_session *row, enum api_sj shape)
{
	struct sup_session_view v;
	/*
	 * The supervisor's columns come from its memory, which is the truth (the
	 * row is written behind it); a session it has not loaded has nothing
	 * scheduled: it reads as idle, with the row's own values. The user's
	 * columns come from the row just read, which may be newer than memory.
	 */
	if (a->sup == NULL || sup_view(a->sup, row->id, &v) != 0) {
		memset(&v, 0, sizeof(v));
		v.id = row->id;
		v.state = "idle";
		v.status = row->connection_status;
		v.last_error = row->last_error;
		v.last_connected_at = row->last_connected_at;
		v.last_message_at = row->last_message_at;
	}
	v.session_name = row->session_name;
	v.user_id = row->user_id;
	/* A phone number learnt at pairing may not be written yet. */
	if (row->phone_number || v.phone_number == NULL)
		v.phone_number = row->phone_number;
	v.is_active = row->is_active;
	v.auto_connect = row->auto_connect;
	v.created_at = row->created_at;
	if (v.updated_at < row->updated_at)
		v.updated_at = row->updated_at;
	return api__view_json(&v, shape);
}

json_t *
api__view_json(const struct sup_session_view *v, enum api_sj shape)
{
	struct evbuffer *b = evbuffer_new();
	api__session_text(b, v, shape, 0);
	json_error_t err;
	json_t *o = json_loadb((const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b), 0, &err);
	evbuffer_free(b);
	if (o == NULL)
		abort(); /* our own writer wrote something that is not JSON: a bug to fix, not to hide */
	return o;
}
