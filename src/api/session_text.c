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
#include "core/enc.h"
#include "core/mem.h"
#include "sup/sup.h"

/* A session's text is built here, then added to the buffer at once (one evbuffer_add per session). */
struct tb {
	char *p;
	size_t len, cap;
	char local[1024];
};

static void
tb_grow(struct tb *t, size_t need)
{
	size_t cap = t->cap * 2;
	while (cap < t->len + need)
		cap *= 2;
	if (t->p == t->local) {
		t->p = wg_malloc(cap);
		memcpy(t->p, t->local, t->len);
	} else {
		t->p = wg_realloc(t->p, cap);
	}
	t->cap = cap;
}

static inline void
tb_add(struct tb *t, const void *d, size_t n)
{
	if (t->len + n > t->cap)
		tb_grow(t, n);
	memcpy(t->p + t->len, d, n);
	t->len += n;
}

#define TB_LIT(t, lit) tb_add((t), (lit), sizeof(lit) - 1)

static void
tb_str(struct tb *t, const char *s)
{
	if (s == NULL || s[0] == '\0') {
		TB_LIT(t, "null");
		return;
	}
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), run = 0;
	TB_LIT(t, "\"");
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			i++;
			run++;
			continue;
		}
		size_t u = c >= 0x80 ? wg_utf8_seq(p + i, n - i) : 0;
		if (u) {
			i += u;
			run += u;
			continue;
		}
		tb_add(t, p + i - run, run);
		run = 0;
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			tb_add(t, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			tb_add(t, esc, 6);
		} else {
			TB_LIT(t, "\\ufffd");
		}
		i++;
	}
	tb_add(t, p + n - run, run);
	TB_LIT(t, "\"");
}

static void
tb_time(struct tb *t, int64_t ms)
{
	if (ms <= 0) {
		TB_LIT(t, "null");
		return;
	}
	char iso[32];
	wg_iso8601(iso, (uint64_t)ms);
	TB_LIT(t, "\"");
	tb_add(t, iso, strlen(iso));
	TB_LIT(t, "\"");
}

static void
tb_bool(struct tb *t, int v)
{
	if (v)
		TB_LIT(t, "true");
	else
		TB_LIT(t, "false");
}

/* Writes into b through a builder, for the helpers' evbuffer forms. */
static void
tb_init(struct tb *t)
{
	t->p = t->local;
	t->len = 0;
	t->cap = sizeof(t->local);
}

static void
tb_flush(struct tb *t, struct evbuffer *b)
{
	evbuffer_add(b, t->p, t->len);
	if (t->p != t->local)
		free(t->p);
}

void
api__json_str(struct evbuffer *b, const char *s)
{
	struct tb t;
	tb_init(&t);
	tb_str(&t, s);
	tb_flush(&t, b);
}

void
api__session_text(struct evbuffer *b, const struct sup_session_view *v, enum api_sj shape,
                  int open)
{
	bool full = shape == API_SJ_FULL;
	struct tb t;
	tb_init(&t);
	TB_LIT(&t, "{\"sessionId\":");
	tb_str(&t, v->id);
	TB_LIT(&t, ",\"sessionName\":");
	tb_str(&t, v->session_name);
	if (full) {
		TB_LIT(&t, ",\"userId\":");
		tb_str(&t, v->user_id);
	}
	TB_LIT(&t, ",\"phoneNumber\":");
	tb_str(&t, v->phone_number);
	TB_LIT(&t, ",\"connectionStatus\":");
	tb_str(&t, v->status);
	TB_LIT(&t, ",\"isActive\":");
	tb_bool(&t, v->is_active);
	TB_LIT(&t, ",\"autoConnect\":");
	tb_bool(&t, v->auto_connect);
	TB_LIT(&t, ",\"lastError\":");
	tb_str(&t, v->last_error);
	TB_LIT(&t, ",\"lastConnectedAt\":");
	tb_time(&t, v->last_connected_at);
	TB_LIT(&t, ",\"lastMessageAt\":");
	tb_time(&t, v->last_message_at);
	if (full) {
		TB_LIT(&t, ",\"createdAt\":");
		tb_time(&t, v->created_at);
		TB_LIT(&t, ",\"updatedAt\":");
		tb_time(&t, v->updated_at);
	}
	TB_LIT(&t, ",\"paired\":");
	tb_bool(&t, v->paired);
	TB_LIT(&t, ",\"socketAlive\":");
	tb_bool(&t, v->socket_alive);
	TB_LIT(&t, ",\"supervisorState\":");
	tb_str(&t, v->state);
	TB_LIT(&t, ",\"manualInterventionNeeded\":");
	tb_bool(&t, v->manual_needed);
	TB_LIT(&t, ",\"nextRetryAt\":");
	tb_time(&t, v->next_retry_at);
	if (v->node != NULL) {
		/* Several nodes: the one that holds the session (docs/cluster.md). */
		TB_LIT(&t, ",\"node\":");
		tb_str(&t, v->node);
	}
	if (!open)
		TB_LIT(&t, "}");
	tb_flush(&t, b);
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
