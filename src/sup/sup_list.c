/*
 * What the listings need from memory, so GET /sessions, GET /health/deep and
 * the event stream's snapshot are passes over memory with no query per row:
 *
 *   - each session's other user columns as last read from its row (name,
 *     user id, phone number, created_at, updated_at), kept in one allocation;
 *   - every session in creation order (created_at, then id) in one sorted
 *     array of pointers. It changes by binary search and memmove: new
 *     sessions are nearly always the newest (appended), and a removal moves
 *     at most N pointers (about 10 µs at 10,000 sessions).
 *
 * A listing resumes from a key (created_at, id), never a position, so sessions
 * added or removed between its pages never make it skip or repeat another.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "sup/sup_int.h"

#define UC_NONE UINT32_MAX

/* -1, 0, 1 as (c, id) sorts before, with, after x's key. */
static int
key_cmp(int64_t c, const char *id, const struct sess *x)
{
	if (c != x->created_at)
		return c < x->created_at ? -1 : 1;
	return strcmp(id, x->id);
}

/* The first position whose key is after (c, id) (inclusive: at or after). */
static size_t
bound(const struct sup *s, int64_t c, const char *id, int inclusive)
{
	size_t lo = 0, hi = s->norder;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int k = key_cmp(c, id, s->order[mid]);
		if (k > 0 || (k == 0 && !inclusive))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
order_add(struct sess *x)
{
	struct sup *s = x->sup;
	if (s->norder == s->order_cap) {
		s->order_cap = s->order_cap ? s->order_cap * 2 : 64;
		s->order = wg_realloc(s->order, s->order_cap * sizeof(*s->order));
	}
	size_t i = s->norder;
	if (i > 0 && key_cmp(x->created_at, x->id, s->order[i - 1]) < 0)
		i = bound(s, x->created_at, x->id, 0);
	memmove(s->order + i + 1, s->order + i, (s->norder - i) * sizeof(*s->order));
	s->order[i] = x;
	s->norder++;
	x->in_order = 1;
}

void
sup__order_del(struct sess *x)
{
	struct sup *s = x->sup;
	if (!x->in_order)
		return;
	size_t i = bound(s, x->created_at, x->id, 1);
	if (i < s->norder && s->order[i] == x) {
		memmove(s->order + i, s->order + i + 1, (s->norder - i - 1) * sizeof(*s->order));
		s->norder--;
	}
	x->in_order = 0;
}

const char *
sup__ucol(const struct sess *x, int col)
{
	return x->ucols && x->uoff[col] != UC_NONE ? x->ucols + x->uoff[col] : NULL;
}

static int
same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Sets the three text columns (NULL: the column is NULL); one allocation for all. */
static void
set_ucols(struct sess *x, const char *name, const char *user, const char *phone)
{
	const char *v[UC_N] = {name, user, phone};
	int changed = 0;
	for (int i = 0; i < UC_N; i++)
		changed |= !same(v[i], sup__ucol(x, i));
	if (!changed)
		return;
	size_t len[UC_N], total = 0;
	for (int i = 0; i < UC_N; i++) {
		len[i] = v[i] ? strlen(v[i]) + 1 : 0;
		total += len[i];
	}
	char *blob = total ? wg_malloc(total) : NULL;
	uint32_t off[UC_N];
	size_t at = 0;
	for (int i = 0; i < UC_N; i++) {
		off[i] = v[i] ? (uint32_t)at : UC_NONE;
		if (v[i])
			memcpy(blob + at, v[i], len[i]);
		at += len[i];
	}
	free(x->ucols);
	x->ucols = blob;
	memcpy(x->uoff, off, sizeof(off));
}

void
sup__ucols_apply(struct sess *x, const struct store_session *row)
{
	/* A phone number learnt at pairing and not written yet is newer than the row's. */
	const char *phone = x->phone_pending ? x->phone_pending : row->phone_number;
	set_ucols(x, row->session_name, row->user_id, phone);
	if (x->updated_at < row->updated_at)
		x->updated_at = row->updated_at;
	if (!x->in_order || x->created_at != row->created_at) {
		sup__order_del(x);
		x->created_at = row->created_at;
		order_add(x);
	}
}

void
sup__ucols_set_phone(struct sess *x, const char *phone)
{
	set_ucols(x, sup__ucol(x, UC_NAME), sup__ucol(x, UC_USER), phone);
}

void
sup__ucols_free(struct sess *x)
{
	sup__order_del(x);
	free(x->ucols);
	x->ucols = NULL;
}

int
sup_list(struct sup *s, struct sup_cursor *at, size_t max, sup_list_fn fn, void *arg)
{
	size_t i = at->id[0] ? bound(s, at->created_at, at->id, 0) : 0;
	struct sup_session_view v;
	for (size_t k = 0; i < s->norder && k < max; k++) {
		struct sess *x = s->order[i++];
		at->created_at = x->created_at;
		memcpy(at->id, x->id, sizeof(at->id));
		if (x->deleted)
			continue;
		sup__fill_view(x, &v);
		if (fn(arg, &v))
			break;
	}
	return i < s->norder;
}

int
sup_list_ids(struct sup *s, struct sup_cursor *at, size_t max, const char *status,
             char (*ids)[STORE_ID_LEN + 1], size_t want, size_t *n)
{
	size_t i = at->id[0] ? bound(s, at->created_at, at->id, 0) : 0;
	*n = 0;
	for (size_t k = 0; i < s->norder && k < max && *n < want; k++) {
		struct sess *x = s->order[i++];
		at->created_at = x->created_at;
		memcpy(at->id, x->id, sizeof(at->id));
		if (x->deleted || (status[0] && strcmp(x->status, status) != 0))
			continue;
		memcpy(ids[(*n)++], x->id, sizeof(ids[0]));
	}
	return i < s->norder;
}

size_t
sup__order_slice(struct sup *s, struct sup_cursor *at, struct sess **out, size_t max, int *more)
{
	size_t i = at->id[0] ? bound(s, at->created_at, at->id, 0) : 0, k = 0;
	while (i < s->norder && k < max) {
		struct sess *x = s->order[i++];
		at->created_at = x->created_at;
		memcpy(at->id, x->id, sizeof(at->id));
		out[k++] = x;
	}
	*more = i < s->norder;
	return k;
}

size_t
sup_count(const struct sup *s)
{
	return s->norder;
}
