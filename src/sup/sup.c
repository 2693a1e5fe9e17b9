/*
 * The supervisor. See sup.h for the contract and docs/supervisor.md for the
 * rules; each rule is marked "Rule N" where it is carried out.
 *
 * Every session lives in memory (a table by id, due instants in a heap), and
 * memory is the truth about the columns the supervisor owns; the database is
 * written behind it (sup_wb.c). Nothing here reads the database on an event's
 * path except to fetch credentials when a connection starts.
 */
#include "sup/sup.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/pg_listen.h"
#include "store/seal.h"
#include "sup/sup_int.h"
#include "wa/crypto.h"

const char *const sup__state_names[] = {"idle",      "waiting", "connecting", "pairing",
					"connected", "stopped", "reading"};

#define SESS_OF(node, field) ((struct sess *)((char *)(node) - offsetof(struct sess, field)))

static const struct sup_client_cb client_cb;
static void schedule(struct sup *s);
static int load_row(struct sup *s, const char *id, struct sess **out);

void
sup_config_defaults(struct sup_config *c)
{
	memset(c, 0, sizeof(*c));
	c->start_stagger_ms = 2000;
	c->start_retries_ms[0] = 5000;
	c->start_retries_ms[1] = 15000;
	c->start_retries_ms[2] = 45000;
	c->n_start_retries = 3;
	c->backoff_base_ms = 1000;
	c->backoff_cap_ms = 5 * 60 * 1000;
	c->stable_after_ms = 60000;
	c->recovery_interval_ms = 60000;
	c->stale_after_ms = 30 * 60 * 1000;
	c->recovery_max = 3;
	c->recovery_window_ms = 3600 * 1000;
	c->reconnect_wait_ms = 20000;
	c->shutdown_grace_ms = 5000;
	c->start_burst = 4;
	c->max_handshakes = 16;
	c->flush_delay_ms = 50;
	c->message_at_interval_ms = 5000;
	c->db_check_interval_ms = 5000;
	c->monitor_slice = 200;
	c->retention_ms = 30ull * 24 * 3600 * 1000;
	c->watch_interval_ms = 1000;
	c->lease_ttl_ms = 30000;
}

/* ---- sessions ---- */

static const char *
status_of(const struct sess *x, int logged_out)
{
	switch (x->state) {
	case SS_CONNECTING:
	case SS_READING:
		return "connecting";
	case SS_PAIRING:
		return "qr_pending";
	case SS_CONNECTED:
		return "connected";
	default:
		return logged_out ? "logged_out" : "disconnected";
	}
}

/* Which /health count a session is in: active primary sessions with credentials, by status. */
static int
bucket_of(const struct sess *x)
{
	/* A primary the user switched off (is_active or auto_connect false) is not expected to be up. */
	if (x->deleted || !sup__should_run(x))
		return -1;
	if (strcmp(x->status, "connected") == 0)
		return B_CONNECTED;
	if (strcmp(x->status, "connecting") == 0 || strcmp(x->status, "qr_pending") == 0)
		return B_CONNECTING;
	return B_DISCONNECTED;
}

void
sup__recount(struct sess *x)
{
	int b = bucket_of(x);
	if (b == x->bucket)
		return;
	if (x->bucket >= 0)
		x->sup->cnt[x->bucket]--;
	if (b >= 0)
		x->sup->cnt[b]++;
	x->bucket = b;
}

struct sess *
sup__find(struct sup *s, const char *id)
{
	return wg_map_get(&s->by_id, id);
}

struct sess *
sup__add(struct sup *s, const char *id)
{
	struct sess *x = sup__find(s, id);
	if (x)
		return x;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = wg_realloc(s->v, s->cap * sizeof(*s->v));
	}
	x = wg_calloc(1, sizeof(*x));
	snprintf(x->id, sizeof(x->id), "%s", id);
	x->sup = s;
	x->bucket = -1;
	x->seen = s->pass; /* new in this pass: not taken for a row that disappeared */
	x->pend_tail = &x->pend;
	x->recov = wg_calloc(s->cfg.recovery_max ? s->cfg.recovery_max : 1, sizeof(*x->recov));
	x->idx = s->n;
	s->v[s->n++] = x;
	wg_map_put(&s->by_id, x->id, x);
	return x;
}

bool
sup__should_run(const struct sess *x)
{
	/* With several nodes, only the one holding the lease (and not handing it over). */
	if (sup__cluster(x->sup) && (!x->leased || x->releasing))
		return false;
	return x->primary && x->is_active && x->auto_connect && x->has_auth;
}

/* The row's user-owned columns, as the rules read them. */
void
sup__apply_row(struct sess *x, const struct store_session *row)
{
	x->is_active = row->is_active != 0;
	x->auto_connect = row->auto_connect != 0;
	x->has_auth = row->auth_state != NULL;
	x->primary = row->session_name && strcmp(row->session_name, "primary") == 0;
	if (sup__cluster(x->sup) && !x->leased && x->client == NULL) {
		/* Another node's session (or no one's): its status is what that node wrote. */
		snprintf(x->status, sizeof(x->status), "%s", row->connection_status);
		free(x->last_error);
		x->last_error = row->last_error ? wg_strdup(row->last_error) : NULL;
		x->last_connected_at = row->last_connected_at;
		x->last_message_at = row->last_message_at;
	}
	sup__ucols_apply(x, row);
	x->seen = x->sup->pass;
	sup__recount(x);
}

void
sup__finish_waiters(struct sess *x, int ok, const char *msg)
{
	struct waiter *w = x->waiters;
	x->waiters = NULL;
	wg_heap_del(&x->sup->deadlines, &x->deadline);
	while (w) {
		struct waiter *next = w->next;
		w->done(w->arg, ok, msg);
		free(w);
		w = next;
	}
}

static void
free_sess(struct sess *x)
{
	sup__wb_forget(x);
	free(x->qr);
	free(x->recov);
	free(x->last_error);
	sup__ucols_free(x);
	free(x);
}

void
sup__remove(struct sup *s, struct sess *x)
{
	struct sess *last = s->v[--s->n];
	s->v[x->idx] = last;
	last->idx = x->idx;
	wg_map_del(&s->by_id, x->id);
	wg_heap_del(&s->due, &x->due);
	if (x->state == SS_CONNECTING || x->state == SS_READING)
		s->connecting--;
	if (x->state == SS_CONNECTED)
		s->nconnected--;
	sup__read_forget(x);
	if (x->bucket >= 0)
		s->cnt[x->bucket]--;
	if (x->leased)
		s->nleased--; /* the row went, its lease with it (ON DELETE CASCADE) */
	sup__finish_waiters(x, 0, "session deleted");
	free_sess(x);
}

void
sup__notify(struct sess *x, enum sup_event ev)
{
	struct sup *s = x->sup;
	if (x->deleted)
		return;
	for (size_t i = 0; i < SUP_OBSERVERS_MAX; i++)
		if (s->observers[i].fn != NULL)
			s->observers[i].fn(s->observers[i].arg, ev, x->id);
}

/* Counts a row of the recovery table by its kind (a few dozen kinds exist: a scan is fine). */
static void
metrics_recovery(struct sup_metrics *m, const char *trigger, const char *action, const char *result)
{
	for (size_t i = 0; i < m->nrecov; i++)
		if (strcmp(m->recov[i].trigger, trigger) == 0 && strcmp(m->recov[i].action, action) == 0 &&
		    strcmp(m->recov[i].result, result) == 0) {
			m->recov[i].n++;
			return;
		}
	if (m->nrecov == SUP_RECOVERY_KINDS) {
		m->recov_other++;
		return;
	}
	snprintf(m->recov[m->nrecov].trigger, sizeof(m->recov[0].trigger), "%s", trigger);
	snprintf(m->recov[m->nrecov].action, sizeof(m->recov[0].action), "%s", action);
	snprintf(m->recov[m->nrecov].result, sizeof(m->recov[0].result), "%s", result);
	m->recov[m->nrecov++].n = 1;
}

void
sup_metrics(struct sup *s, const struct sup_metrics **out)
{
	*out = &s->metrics;
}

void
sup__record(struct sess *x, const char *trigger, const char *action, const char *result,
	    const char *detail)
{
	struct store_attempt a;
	memset(&a, 0, sizeof(a));
	snprintf(a.session_id, sizeof(a.session_id), "%s", x->id);
	a.at = (int64_t)wg_wall_ms();
	snprintf(a.trigger, sizeof(a.trigger), "%s", trigger);
	snprintf(a.action, sizeof(a.action), "%s", action);
	snprintf(a.result, sizeof(a.result), "%s", result);
	a.detail = (char *)detail;
	log_info(x->id, "recovery: trigger %s, action %s, result %s%s%s", trigger, action, result,
		 detail ? ": " : "", detail ? detail : "");
	metrics_recovery(&x->sup->metrics, trigger, action, result);
	if (strncmp(trigger, "monitor:", 8) == 0 && strcmp(result, "failed") == 0) {
		/* The limit counts the monitor's recoveries that failed (sup_monitor.c); a success costs nothing. */
		sup__recoveries_in_window(x); /* loads the older ones first, so none counts twice */
		unsigned cap = x->sup->cfg.recovery_max ? x->sup->cfg.recovery_max : 1;
		if (x->nrecov == cap) {
			memmove(x->recov, x->recov + 1, (cap - 1) * sizeof(*x->recov));
			x->nrecov--;
		}
		x->recov[x->nrecov++] = a.at;
	}
	sup__wb_attempt(x, &a);
}

/*
 * The only place a session's state changes. Memory changes at once (status,
 * last_error, last_connected_at, the history row); the database follows.
 * err: NULL keeps last_error, "" clears it.
 */
void
sup__enter(struct sess *x, enum ss_state st, const char *why, const char *err, int logged_out)
{
	struct sup *s = x->sup;
	enum ss_state old = x->state;
	x->state = st;
	if (old != st)
		log_info(x->id, "%s -> %s (%s)", sup__state_names[old], sup__state_names[st], why);
	/* Reads and logins in flight count against max_handshakes alike. */
	bool was_in = old == SS_CONNECTING || old == SS_READING;
	bool is_in = st == SS_CONNECTING || st == SS_READING;
	if (was_in && !is_in)
		s->connecting--;
	else if (!was_in && is_in)
		s->connecting++;
	if (old == SS_READING && st != SS_READING)
		sup__read_forget(x);
	if (old == SS_CONNECTED && st != SS_CONNECTED)
		s->nconnected--;
	else if (old != SS_CONNECTED && st == SS_CONNECTED)
		s->nconnected++;
	if (st != SS_WAITING) {
		wg_heap_del(&s->due, &x->due);
		x->next_retry_wall = 0;
	}
	if (st != SS_PAIRING) {
		free(x->qr);
		x->qr = NULL;
	}
	if (x->deleted)
		return;
	if (sup__cluster(s) && !x->leased) {
		/* Not this node's: its status is the holder's to write; memory mirrors the row. */
		sup__recount(x);
		sup__notify(x, SUP_EV_SESSION);
		return;
	}
	unsigned f = STORE_F_STATUS;
	if (st == SS_CONNECTED && old != SS_CONNECTED) {
		/* Entering connected stamps last_connected_at with the status, so observers see both. */
		x->last_connected_at = (int64_t)wg_wall_ms();
		f |= STORE_F_CONNECTED_AT;
	}
	if (err) {
		sup__wb_set_error(x, err);
		f |= STORE_F_ERROR;
	}
	const char *status = status_of(x, logged_out);
	if (strcmp(x->status, status) != 0) {
		/* The history: one row each time the status really changes (docs/store.md). */
		char reason[512];
		if (err && err[0] && strcmp(err, why) != 0)
			snprintf(reason, sizeof(reason), "%s: %s", why, err);
		else
			snprintf(reason, sizeof(reason), "%s", why);
		snprintf(x->status, sizeof(x->status), "%s", status);
		sup__wb_history(x, status, reason);
	}
	sup__wb_mark(x, f);
	sup__recount(x);
	sup__notify(x, SUP_EV_SESSION);
}

/* Schedules a connect after delay_ms (0: at once, from the next sup_run). */
void
sup__wait_then_connect(struct sess *x, uint64_t delay_ms, const char *why, const char *err)
{
	/* Set first, so the state change that observers see carries the retry time. */
	wg_heap_set(&x->sup->due, &x->due, wg_now_ms() + delay_ms);
	x->next_retry_wall = (int64_t)(wg_wall_ms() + delay_ms);
	sup__enter(x, SS_WAITING, why, err, 0);
	/* sup__enter removes the node for any other state; waiting keeps it. */
}

static uint64_t backoff(const struct sup *s, unsigned failures);
static void start_resolved(struct sup *s, struct sess *x, int outcome);

/*
 * How a failed recovery is recorded. The limit is for sessions that are
 * broken, not for a network that is down: a monitor recovery that never
 * reached WhatsApp while no session of this process is connected either is
 * "unreachable", recorded but not counted, so an outage (at start or later)
 * is retried at the monitor's pace for as long as it lasts.
 */
static const char *
failed_result(const struct sup *s, const char *trigger, int reached)
{
	if (strncmp(trigger, "monitor:", 8) == 0 && !reached && s->nconnected == 0)
		return "unreachable";
	return "failed";
}

/*
 * A connect could not even start. A passing failure (the database did not
 * answer, no socket could be made) is tried again with backoff: the schedule
 * is kept, not dropped. Anything else (the row is gone, credentials that
 * cannot be used) waits, with the reason in last_error, for a change or a
 * person. Either way the attempt is recorded
 * and waiting reconnect requests are answered.
 */
static void
connect_failed(struct sess *x, const char *trigger, int r, const char *what)
{
	struct sup *s = x->sup;
	char err[160];
	snprintf(err, sizeof(err), "%s: %s", what,
		 r == WG_ENOTFOUND ? "the session's row is gone" : wg_strerror(r));
	if (trigger[0] && strncmp(trigger, "start", 5) != 0 && strcmp(trigger, "pair") != 0)
		sup__record(x, trigger, "reconnect", failed_result(s, trigger, 0), err);
	if (r == WG_ETIMEDOUT || r == WG_EIO) {
		uint64_t d = backoff(s, ++x->failures);
		snprintf(x->trigger, sizeof(x->trigger), "%s", trigger);
		sup__wait_then_connect(x, d, what, err);
		return;
	}
	sup__enter(x, SS_IDLE, what, err, 0);
	sup__finish_waiters(x, 0, err);
}

/*
 * Credentials that cannot be used (another program's format, or damaged):
 * retrying cannot help, so the session waits for a person (pair again) or for
 * someone else to write its row (sup__row_written); recorded and shown as
 * needing re-authentication.
 */
static void
creds_unusable(struct sess *x, const char *trigger, const char *kid)
{
	const char *err = "the stored credentials cannot be used (not wagate's format, or damaged): "
			  "re-authentication needed, pair the device again";
	char sealed[256];
	if (kid != NULL) {
		/* Not the device's fault: the key that opens them is elsewhere. */
		snprintf(sealed, sizeof(sealed),
		         "the stored credentials are sealed under key %s, which this server does not "
		         "have: start it with that key (WAGATE_SECRET_KEY or its key file)", kid);
		err = sealed;
	}
	sup__record(x, trigger[0] ? trigger : "start", "connect", "needs_reauth", err);
	start_resolved(x->sup, x, 2);
	if (!x->ever_open)
		log_warn(x->id, "start: needs re-authentication");
	sup__enter(x, SS_STOPPED, "credentials unusable", err, 1);
	sup__finish_waiters(x, 0, err);
}

/*
 * The second half of a connect: the credentials are known (auth, NULL to pair
 * a new device), or their read failed (rc). row, when given, is freed here.
 */
static int
open_with(struct sess *x, const char *trig, int rc, const char *auth, struct store_session *row)
{
	struct sup *s = x->sup;
	if (rc != 0) {
		connect_failed(x, trig, rc, "cannot read the session");
		return rc;
	}
	int paired = auth != NULL;
	snprintf(x->trigger, sizeof(x->trigger), "%s", trig);
	x->connected_mono = wg_now_ms(); /* the login's duration starts here (metrics) */
	s->metrics.connects++;
	int r = s->ops->open(s->ctx, x->id, auth, &client_cb, x, &x->client);
	/* Credentials still sealed did not open (store/seal.h): which key they need. */
	char kid[SEAL_KID_LEN + 1] = "";
	if (r == WG_EINVAL && seal_is_sealed(auth)) {
		seal_id_of(auth, kid);
		if (kid[0] == '\0')
			snprintf(kid, sizeof(kid), "?");
	}
	if (row != NULL)
		store_session_free(row);
	if (r == WG_EINVAL && paired) {
		x->trigger[0] = '\0';
		creds_unusable(x, trig, kid[0] ? kid : NULL);
		return r;
	}
	if (r) {
		connect_failed(x, trig, r, "cannot start a connection");
		return r;
	}
	sup__enter(x, paired ? SS_CONNECTING : SS_PAIRING, trig, NULL, 0);
	return 0;
}

/* fresh: pair a new device, whatever credentials the row holds. */
static int
connect_as(struct sess *x, const char *trigger, int fresh)
{
	struct sup *s = x->sup;
	if (x->client != NULL || x->state == SS_READING)
		return 0; /* never more than one connection per session */
	if (sup__cluster(s) && !sup__lease_sure(x)) {
		/* Not this node's, or not sure any more: another node may be connecting it. */
		sup__enter(x, SS_IDLE, "no lease", NULL, 0);
		sup__finish_waiters(x, 0, "this node does not hold the session's lease");
		return WG_ESTATE;
	}
	char trig[48];
	snprintf(trig, sizeof(trig), "%s", trigger);
	/* Credentials: the newest stay in memory until the row has them. */
	if (!fresh && !x->auth_newer) {
		/* The row's: read off the loop when there is a reader (sup_read.c), else here. */
		snprintf(x->trigger, sizeof(x->trigger), "%s", trig);
		if (sup__read_start(x))
			return 0;
		struct store_session row;
		int r = store_get(s->st, x->id, &row);
		if (r != 0)
			log_error(x->id, "cannot read the session: %s",
				  r == WG_ENOTFOUND ? "not found" : store_errmsg(s->st));
		return open_with(x, trig, r, r == 0 ? row.auth_state : NULL, r == 0 ? &row : NULL);
	}
	return open_with(x, trig, 0, fresh ? NULL : x->auth_pending, NULL);
}

void
sup__connect_with(struct sess *x, int rc, const char *auth)
{
	if (sup__cluster(x->sup) && !sup__lease_sure(x)) {
		/* Lost, handed over or not sure while the credentials were read: another node's now. */
		sup__enter(x, SS_IDLE, "no lease", NULL, 0);
		sup__finish_waiters(x, 0, "this node does not hold the session's lease");
		return;
	}
	if (!x->is_active) {
		/* Switched off while its credentials were read. */
		sup__enter(x, SS_IDLE, "switched off", "switched off (is_active is false)", 0);
		sup__finish_waiters(x, 0, "the session was switched off");
		return;
	}
	char trig[48];
	snprintf(trig, sizeof(trig), "%s", x->trigger);
	open_with(x, trig, rc, auth, NULL);
	/* The caller schedules once for a turn's connects (sup_read.c). */
}

int
sup__connect_now(struct sess *x, const char *trigger)
{
	return connect_as(x, trigger, 0);
}

/*
 * Someone else (the web app) wrote this session's row. A session waiting for
 * re-authentication may have new credentials in it: it is tried once more,
 * under the start's rules, as a row the app inserted would be.
 */
void
sup__row_written(struct sess *x)
{
	if (x->state != SS_STOPPED || strcmp(x->status, "logged_out") != 0 || !x->has_auth ||
	    x->client != NULL || x->deleted)
		return;
	x->start_try = 0;
	x->manual_needed = 0;
	if (sup__should_run(x) && !x->sup->breaker) {
		log_info(x->id, "the row changed while the session needed re-authentication: trying it");
		snprintf(x->trigger, sizeof(x->trigger), "start:row");
		sup__wait_then_connect(x, 0, "the row changed", "");
	} else {
		sup__enter(x, SS_IDLE, "the row changed", "", 0);
	}
}

/* Exponential backoff with equal jitter: between half and all of base * 2^(n-1), capped. */
static uint64_t
backoff(const struct sup *s, unsigned failures)
{
	if (failures == 0)
		return 0;
	uint64_t d = s->cfg.backoff_base_ms;
	for (unsigned i = 1; i < failures && d < s->cfg.backoff_cap_ms; i++)
		d *= 2;
	if (d > s->cfg.backoff_cap_ms)
		d = s->cfg.backoff_cap_ms;
	uint32_t r;
	wa_random((uint8_t *)&r, sizeof(r));
	return d / 2 + (d / 2 ? r % (d / 2 + 1) : 0);
}

static void
start_resolved(struct sup *s, struct sess *x, int outcome)
{
	/* outcome: 0 connected, 1 failed (will retry / gave up), 2 needs re-authentication */
	if (x->ever_open || s->start_pending == 0 || x->start_try > 0)
		return;
	s->start_pending--;
	if (outcome == 0)
		s->start_ok++;
	else if (outcome == 1)
		s->start_retry++;
	else
		s->start_reauth++;
	if (s->start_pending == 0)
		log_info("supervisor", "start: %u connected, %u failed (retrying), %u need re-authentication",
			 s->start_ok, s->start_retry, s->start_reauth);
}

/* ---- client events ---- */

static void
cb_qr(void *arg, const char *qr, uint32_t valid_ms)
{
	struct sess *x = arg;
	free(x->qr);
	x->qr = wg_strdup(qr);
	x->qr_expires = (int64_t)(wg_wall_ms() + valid_ms);
	sup__notify(x, SUP_EV_QR);
	schedule(x->sup);
}

static void
cb_paired(void *arg, const char *jid)
{
	struct sess *x = arg;
	char masked[WG_MASKED_MAX];
	log_info(x->id, "paired as %s", wg_mask_phone(masked, jid));
	sup__enter(x, SS_CONNECTING, "paired; logging in", "", 0);
	schedule(x->sup);
}

static void
cb_creds(void *arg, const char *auth_state, const char *phone)
{
	struct sess *x = arg;
	sup__wb_auth(x, auth_state, phone);
	if (phone)
		sup__ucols_set_phone(x, phone);
	x->has_auth = auth_state != NULL;
	sup__recount(x);
}

static void
cb_open(void *arg, const char *jid, const char *push_name)
{
	struct sess *x = arg;
	struct sup *s = x->sup;
	char masked[WG_MASKED_MAX];
	(void)push_name;
	start_resolved(s, x, 0);
	if (!x->ever_open && x->start_try == 0)
		log_info(x->id, "start: connected as %s", wg_mask_phone(masked, jid));
	x->ever_open = 1;
	/* Not failures = 0: a connection that drops again soon is a failure too (flapping, cb_closed). */
	x->start_try = 0;
	x->manual_needed = 0;
	uint64_t now = wg_now_ms();
	if (x->state != SS_PAIRING) /* a pairing waits for a person: not a login's time */
		wg_hist_observe_ns(&s->metrics.connect, (now - x->connected_mono) * 1000000u);
	s->metrics.opens++;
	x->connected_mono = now;
	x->last_activity = (int64_t)wg_wall_ms();
	sup__enter(x, SS_CONNECTED, "open", "", 0);
	if (x->trigger[0] && strncmp(x->trigger, "start", 5) != 0 && strcmp(x->trigger, "pair") != 0)
		sup__record(x, x->trigger, "reconnect", "connected", NULL);
	x->trigger[0] = '\0';
	sup__finish_waiters(x, 1, "connected");
	schedule(s);
}

static void
cb_message(void *arg, int64_t t)
{
	struct sess *x = arg;
	(void)t;
	x->last_activity = (int64_t)wg_wall_ms();
	x->last_message_at = x->last_activity;
	/* Coalesced: at most one write per session per message_at_interval_ms. */
	sup__wb_message(x);
}

static void
cb_probe(void *arg, int ok, uint32_t rtt_ms)
{
	struct sess *x = arg;
	(void)rtt_ms;
	x->probing = 0;
	if (ok) {
		/* Still answering: it was only quiet. */
		x->last_activity = (int64_t)wg_wall_ms();
		sup__record(x, "probe:stale", "probe", "ok", NULL);
		return;
	}
	sup__record(x, "probe:stale", "probe", "failed", "no answer to presence and ping");
	/* The probe was free; the reconnect it calls for is a recovery, within the limit. */
	if (x->client && sup__recovery_allowed(x, "monitor:stale")) {
		x->reopen = 1;
		snprintf(x->trigger, sizeof(x->trigger), "monitor:stale");
		x->sup->ops->close(x->client);
	}
	schedule(x->sup);
}

/* A delay for people: "800 ms", "15 s", "5 min". */
static const char *
delay_text(char *buf, size_t len, uint64_t ms)
{
	if (ms < 1000)
		snprintf(buf, len, "%" PRIu64 " ms", ms);
	else if (ms < 120000)
		snprintf(buf, len, "%" PRIu64 " s", (ms + 999) / 1000);
	else
		snprintf(buf, len, "%" PRIu64 " min", (ms + 59999) / 60000);
	return buf;
}

/* Rule 3: one table of close reasons (docs/supervisor.md). */
/* Said once when a session starts flapping (its second short connection in a row), then in last_error. */
static void
flapping(struct sess *x, const char *what)
{
	if (x->failures == 2)
		log_warn(x->id, "flapping: %s", what);
}

static void
cb_closed(void *arg, const struct wa_session_close *why)
{
	struct sess *x = arg;
	struct sup *s = x->sup;
	x->client = NULL;
	x->probing = 0;
	/*
	 * A connection that worked for stable_after_ms wipes the slate; one that
	 * dropped sooner was no success: it counts as a failure, so a session that
	 * logs in and is dropped at once backs off like one that cannot connect
	 * (flapping), instead of reconnecting as fast as it can.
	 */
	int was_open = x->state == SS_CONNECTED, pairing = x->state == SS_PAIRING;
	uint64_t lasted = was_open ? wg_now_ms() - x->connected_mono : 0;
	int flapped = was_open && lasted < s->cfg.stable_after_ms;
	s->metrics.closes[(unsigned)why->reason < SUP_CLOSE_REASONS ? why->reason : 0]++;
	if (was_open && !flapped)
		x->failures = 0;
	char err[200];
	snprintf(err, sizeof(err), "%s (%s %d)", why->text, wa_close_reason_name(why->reason),
		 why->code);
	if (x->trigger[0] && why->reason != WA_CLOSE_CLOSED_BY_US)
		sup__record(x, x->trigger, "reconnect", failed_result(s, x->trigger, why->reached), err);

	if (x->deleted) {
		sup__remove(s, x);
		schedule(s);
		return;
	}
	if (s->shutting_down) {
		sup__enter(x, SS_IDLE, "shutdown", NULL, 0);
		schedule(s);
		return;
	}
	if (sup__cluster(s) && (!x->leased || x->releasing)) {
		/* Lost, or handed over: another node connects it now, not this one. */
		sup__enter(x, SS_IDLE, x->releasing ? "handed over" : "lease lost",
			   x->releasing ? "handed over to another node" : NULL, 0);
		sup__finish_waiters(x, 0, "another node holds this session now; ask again");
		schedule(s);
		return;
	}
	if (x->logout) {
		x->logout = 0;
		sup__enter(x, SS_STOPPED, "logged out by request", "logged out by request", 1);
		sup__finish_waiters(x, 0, "logged out");
		schedule(s);
		return;
	}
	/*
	 * What the server said outranks a reconnect that was on its way: a socket
	 * the monitor found not alive may be one closing on a 440, a 401 or a ban
	 * whose report had not arrived yet. Taking those back would be the storm
	 * WhatsApp bans accounts for.
	 */
	if (x->reopen && (why->reason == WA_CLOSE_LOGGED_OUT || why->reason == WA_CLOSE_REPLACED ||
			  why->reason == WA_CLOSE_CLIENT_OUTDATED ||
			  why->reason == WA_CLOSE_TEMP_BANNED))
		x->reopen = 0;
	if (x->reopen) {
		x->reopen = 0;
		if (strncmp(x->trigger, "monitor:", 8) == 0)
			/* An automatic recovery waits its turn like every connect (pacing). */
			sup__wait_then_connect(x, sup__recovery_delay(s), "recovering", NULL);
		else
			sup__connect_now(x, x->trigger[0] ? x->trigger : "manual"); /* a person asked */
		schedule(s);
		return;
	}

	switch (why->reason) {
	case WA_CLOSE_LOGGED_OUT:
		snprintf(err, sizeof(err), "logged out (%d): re-authentication needed, pair the device again",
			 why->code);
		start_resolved(s, x, 2);
		if (!x->ever_open)
			log_warn(x->id, "start: needs re-authentication");
		sup__enter(x, SS_STOPPED, "logged out", err, 1);
		break;
	case WA_CLOSE_REPLACED:
		snprintf(err, sizeof(err), "%s; not taking it back automatically", SUP_REPLACED_ERR);
		sup__enter(x, SS_STOPPED, "replaced", err, 0);
		break;
	case WA_CLOSE_CLIENT_OUTDATED:
		s->breaker = 1;
		log_error("supervisor", "WhatsApp says this client is outdated (405): every automatic "
					"reconnect is stopped until the server is updated");
		sup__enter(x, SS_STOPPED, "client outdated", SUP_BREAKER_ERR, 0);
		break;
	case WA_CLOSE_TEMP_BANNED: {
		int64_t now = (int64_t)wg_wall_ms();
		int64_t until = why->ban_expires > 0 ? why->ban_expires * 1000 : now + (int64_t)s->cfg.backoff_cap_ms;
		snprintf(err, sizeof(err), "temporarily banned (402) until %" PRId64 " (Unix s)", until / 1000);
		sup__wait_then_connect(x, until > now ? (uint64_t)(until - now) : 0, "temporary ban", err);
		break;
	}
	case WA_CLOSE_CLOSED_BY_US:
		sup__enter(x, SS_IDLE, "closed by us", NULL, 0);
		break;
	case WA_CLOSE_QR_TIMEOUT:
		sup__enter(x, SS_IDLE, "QR codes expired", "QR codes expired without a scan; start pairing again", 0);
		break;
	case WA_CLOSE_RESTART_REQUIRED:
		if (s->breaker) {
			char stopped[sizeof(err) + sizeof(SUP_BREAKER_ERR) + 4];
			snprintf(stopped, sizeof(stopped), "%s; %s", err, SUP_BREAKER_ERR);
			sup__enter(x, SS_STOPPED, "breaker open", stopped, 0);
			break;
		}
		/*
		 * The server asks for a new connection: at once, without counting a
		 * failure; but one asked for again right after the last login is
		 * flapping, and backs off.
		 */
		snprintf(x->trigger, sizeof(x->trigger), "close:restart_required");
		if (flapped && ++x->failures > 1) {
			char next[sizeof(err) + 160], in[24], up[24];
			uint64_t d = backoff(s, x->failures - 1);
			snprintf(next, sizeof(next), "%s; asked again %s after the last login (flapping, %u in a "
				 "row): reconnecting in %s", err, delay_text(up, sizeof(up), lasted),
				 x->failures, delay_text(in, sizeof(in), d));
			flapping(x, next);
			sup__wait_then_connect(x, d, "restart required", next);
			break;
		}
		sup__wait_then_connect(x, 0, "restart required", err);
		break;
	default: /* transient, keepalive_timeout, protocol_error */
		if (s->breaker) {
			char stopped[sizeof(err) + sizeof(SUP_BREAKER_ERR) + 4];
			snprintf(stopped, sizeof(stopped), "%s; %s", err, SUP_BREAKER_ERR);
			sup__enter(x, SS_STOPPED, "breaker open", stopped, 0);
			break;
		}
		if (pairing) {
			sup__enter(x, SS_IDLE, "pairing failed", err, 0);
			break;
		}
		if (!x->ever_open) {
			/* Rule 2: startup retries, then give up (the monitor may try later, rate-limited). */
			start_resolved(s, x, 1);
			char next[sizeof(err) + 128], in[24];
			if (x->start_try < s->cfg.n_start_retries) {
				uint64_t d = s->cfg.start_retries_ms[x->start_try++];
				log_warn(x->id, "start: connection failed (%s); retry %zu of %zu in %" PRIu64 " ms",
					 err, x->start_try, s->cfg.n_start_retries, d);
				snprintf(x->trigger, sizeof(x->trigger), "start:retry");
				snprintf(next, sizeof(next), "%s; startup retry %zu of %zu in %s", err,
					 x->start_try, s->cfg.n_start_retries, delay_text(in, sizeof(in), d));
				sup__wait_then_connect(x, d, "startup retry", next);
			} else {
				log_warn(x->id, "start: connection failed after %zu retries: %s",
					 s->cfg.n_start_retries, err);
				if (x->primary && x->auto_connect && x->is_active)
					snprintf(next, sizeof(next), "%s; startup retries used up: the recovery "
						 "monitor tries again within %s", err,
						 delay_text(in, sizeof(in), s->cfg.recovery_interval_ms));
				else
					snprintf(next, sizeof(next), "%s; startup retries used up: reconnect it "
						 "by hand", err);
				sup__enter(x, SS_IDLE, "startup retries exhausted", next, 0);
			}
			break;
		}
		/* Rule 3: at once after a working connection drops, then backoff. */
		snprintf(x->trigger, sizeof(x->trigger), "close:%s", wa_close_reason_name(why->reason));
		char next[sizeof(err) + 160], in[24], up[24];
		if (flapped) {
			/* A failed attempt like one that never opened: the same steps. */
			uint64_t d = backoff(s, x->failures++);
			snprintf(next, sizeof(next), "%s; it dropped %s after opening (flapping, failure %u in a "
				 "row): reconnecting %s%s", err, delay_text(up, sizeof(up), lasted),
				 x->failures, d ? "in " : "now", d ? delay_text(in, sizeof(in), d) : "");
			flapping(x, next);
			sup__wait_then_connect(x, d, "connection lost", next);
			break;
		}
		uint64_t d = was_open ? 0 : backoff(s, x->failures);
		x->failures++;
		if (d == 0)
			snprintf(next, sizeof(next), "%s; reconnecting now", err);
		else
			snprintf(next, sizeof(next), "%s; reconnecting in %s (failure %u in a row)", err,
				 delay_text(in, sizeof(in), d), x->failures);
		sup__wait_then_connect(x, d, "connection lost", next);
		break;
	}
	/*
	 * Whoever waits for this attempt (a manual reconnect) learns its outcome
	 * now, not at the deadline: it failed, whatever is tried next. Only a
	 * restart the server asked for belongs to the same attempt.
	 */
	if (x->waiters != NULL && why->reason != WA_CLOSE_RESTART_REQUIRED) {
		char msg[sizeof(err) + 96];
		if (x->state == SS_WAITING && x->next_retry_wall > 0) {
			int64_t in = x->next_retry_wall - (int64_t)wg_wall_ms();
			snprintf(msg, sizeof(msg), "%s; the next automatic attempt is in %" PRId64 " s", err,
				 in > 0 ? (in + 999) / 1000 : 0);
		} else {
			snprintf(msg, sizeof(msg), "%s", err);
		}
		sup__finish_waiters(x, 0, msg);
	}
	schedule(s);
}

static const struct sup_client_cb client_cb = {
	.qr = cb_qr,
	.paired = cb_paired,
	.open = cb_open,
	.closed = cb_closed,
	.message = cb_message,
	.creds = cb_creds,
	.probe = cb_probe,
};

/* ---- scheduling ---- */

/*
 * Starts the connects that are due, paced: at most start_burst per call (the
 * rest in the next loop turn, so other events run between them) and at most
 * max_handshakes logins in flight (the rest when one ends). Returns the next
 * instant it needs.
 */
static uint64_t
run_due(struct sup *s, uint64_t now)
{
	unsigned burst = 0;
	struct wg_heap_node *n;
	while ((n = wg_heap_min(&s->due)) != NULL && n->key <= now) {
		if (s->shutting_down)
			return UINT64_MAX;
		if (s->connecting >= s->cfg.max_handshakes)
			return UINT64_MAX; /* a handshake's end calls schedule() */
		if (burst >= s->cfg.start_burst)
			return now; /* the next loop turn */
		struct sess *x = SESS_OF(n, due);
		wg_heap_del(&s->due, n);
		if (!x->is_active) {
			sup__enter(x, SS_IDLE, "switched off", "switched off (is_active is false)", 0);
			continue;
		}
		if (s->breaker) {
			sup__enter(x, SS_STOPPED, "breaker open", SUP_BREAKER_ERR, 0);
			continue;
		}
		sup__connect_now(x, x->trigger[0] ? x->trigger : "start");
		burst++;
	}
	if (n == NULL || s->shutting_down)
		return UINT64_MAX;
	return s->connecting >= s->cfg.max_handshakes ? UINT64_MAX : n->key;
}

/* Answers the manual reconnects whose time limit passed. */
static uint64_t
run_deadlines(struct sup *s, uint64_t now)
{
	struct wg_heap_node *n;
	while ((n = wg_heap_min(&s->deadlines)) != NULL && n->key <= now) {
		struct sess *x = SESS_OF(n, deadline);
		uint64_t earliest = UINT64_MAX;
		for (struct waiter **w = &x->waiters; *w;) {
			if ((*w)->deadline <= now) {
				struct waiter *dead = *w;
				*w = dead->next;
				dead->done(dead->arg, 0, "no outcome within the time limit; still trying");
				free(dead);
				continue;
			}
			if ((*w)->deadline < earliest)
				earliest = (*w)->deadline;
			w = &(*w)->next;
		}
		if (earliest == UINT64_MAX)
			wg_heap_del(&s->deadlines, n);
		else
			wg_heap_set(&s->deadlines, n, earliest);
	}
	return n ? n->key : UINT64_MAX;
}

static uint64_t
min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t
sup_run(struct sup *s)
{
	uint64_t now = wg_now_ms(), next = UINT64_MAX;
	/* Leases first: a node that resumes after a pause gives up what it lost before it connects anything. */
	if (s->started)
		next = min64(next, sup__lease_step(s, now));
	next = min64(next, run_due(s, now));
	next = min64(next, run_deadlines(s, now));
	if (s->started && !s->shutting_down) {
		next = min64(next, sup__monitor_step(s, now));
		next = min64(next, sup__watch_step(s, now));
	}
	if (s->shutting_down) {
		size_t open = 0;
		for (size_t i = 0; i < s->n; i++)
			open += s->v[i]->client != NULL;
		if ((open == 0 || now >= s->shutdown_deadline) && s->shutdown_done) {
			void (*done)(void *) = s->shutdown_done;
			s->shutdown_done = NULL;
			/* What the closes changed, and every coalesced last_message_at, before the end. */
			sup__wb_flush_all(s);
			done(s->shutdown_arg);
		} else if (s->shutdown_done) {
			next = min64(next, s->shutdown_deadline);
		}
	}
	next = min64(next, sup__wb_run(s, wg_now_ms()));
	return next;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	schedule(arg);
}

/* Runs what is due and re-arms the loop's timer for the next due instant. */
static void
schedule(struct sup *s)
{
	if (s->timer == NULL)
		return; /* tests call sup_run() themselves */
	uint64_t next = sup_run(s), now = wg_now_ms();
	if (next == UINT64_MAX) {
		evtimer_del(s->timer);
		return;
	}
	uint64_t d = next > now ? next - now : 0;
	struct timeval tv = {(time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000)};
	evtimer_add(s->timer, &tv);
}

void
sup__kick(struct sup *s)
{
	schedule(s);
}

static void
on_notify(void *arg, const char *payload)
{
	sup__notified(arg, payload);
}

int
sup_use_writer(struct sup *s, const char *url, char *err, size_t errlen)
{
	if (s->base == NULL) {
		snprintf(err, errlen, "the supervisor is not attached to a loop");
		return WG_ESTATE;
	}
	int r = sup__wb_attach_writer(s, s->base, url, err, errlen);
	if (r != 0)
		return r;
	/* The credentials a connect needs are read on a thread too. */
	if ((r = sup__read_attach(s, s->base, url, err, errlen)) != 0)
		return r;
	/* PostgreSQL tells of the app's writes at once (a trigger and LISTEN); elsewhere the watch polls. */
	if (s->listener == NULL &&
	    store_listener_new(s->base, url, STORE_NOTIFY_CHANNEL, on_notify, s, &s->listener, err,
			       errlen) == 0)
		log_info("supervisor", "listening for the app's writes (the watch polls as well)");
	err[0] = '\0';
	/* The lease rounds get a thread of their own: a slow batch never delays a renewal. */
	return sup__lease_attach(s, s->base, url, err, errlen);
}

void
sup_attach(struct sup *s, struct event_base *base)
{
	s->base = base;
	s->timer = evtimer_new(base, on_timer, s);
	schedule(s);
}

/* ---- public ---- */

int
sup_new(struct store *st, const struct sup_config *cfg, const struct sup_client_ops *ops,
	void *client_ctx, struct sup **out)
{
	struct sup *s = wg_calloc(1, sizeof(*s));
	s->st = st;
	s->cfg = *cfg;
	s->metrics.connect.bounds = wg_hist_connect;
	s->metrics.connect.n = WG_HIST_CONNECT_N;
	if (s->cfg.start_burst == 0)
		s->cfg.start_burst = 1;
	if (s->cfg.max_handshakes == 0)
		s->cfg.max_handshakes = 1;
	if (s->cfg.monitor_slice == 0)
		s->cfg.monitor_slice = 1;
	/* The recovery limit reads its window back from the table: retention keeps at least that. */
	if (s->cfg.retention_ms != 0 && s->cfg.retention_ms < s->cfg.recovery_window_ms)
		s->cfg.retention_ms = s->cfg.recovery_window_ms;
	s->ops = ops;
	s->ctx = client_ctx;
	wg_map_init(&s->by_id);
	wg_heap_init(&s->due);
	wg_heap_init(&s->deadlines);
	TAILQ_INIT(&s->reads);
	TAILQ_INIT(&s->calls);
	sup__wb_init(s);
	/* /health must not say "ok" before the database was ever asked. */
	uint32_t us = 0;
	if (store_ping(st, &us) == 0) {
		s->db_latency_us = us;
	} else {
		s->db_ok = 0;
		snprintf(s->db_error, sizeof(s->db_error), "%s", store_errmsg(st));
	}
	s->ping_at = wg_now_ms() + s->cfg.db_check_interval_ms;
	*out = s;
	return 0;
}

void
sup_set_observer(struct sup *s, sup_observer_fn fn, void *arg)
{
	size_t free_slot = SUP_OBSERVERS_MAX;
	for (size_t i = 0; i < SUP_OBSERVERS_MAX; i++) {
		if (s->observers[i].fn != NULL && s->observers[i].arg == arg) {
			s->observers[i].fn = fn;
			if (fn == NULL)
				s->observers[i].arg = NULL;
			return;
		}
		if (s->observers[i].fn == NULL && free_slot == SUP_OBSERVERS_MAX)
			free_slot = i;
	}
	if (fn == NULL)
		return;
	if (free_slot == SUP_OBSERVERS_MAX)
		abort(); /* a programming error: more observers than the build allows */
	s->observers[free_slot].fn = fn;
	s->observers[free_slot].arg = arg;
}

void
sup_remove_observer(struct sup *s, void *arg)
{
	sup_set_observer(s, NULL, arg);
}

void
sup_free(struct sup *s)
{
	if (s == NULL)
		return;
	/* The writer's job in hand completes first: its outcome goes back to sessions still here. */
	sup__wb_detach_writer(s);
	sup__lease_detach(s);
	sup__read_detach(s);
	store_listener_free(s->listener);
	s->listener = NULL;
	for (size_t i = 0; i < SUP_OBSERVERS_MAX; i++) {
		sup_observer_fn fn = s->observers[i].fn;
		s->observers[i].fn = NULL;
		if (fn)
			fn(s->observers[i].arg, SUP_EV_GONE, NULL);
	}
	/* The heaps first: freeing them touches the sessions' nodes. */
	wg_heap_free(&s->due);
	wg_heap_free(&s->deadlines);
	s->norder = 0; /* everything goes: no removals one by one */
	for (size_t i = 0; i < s->n; i++) {
		struct sess *x = s->v[i];
		sup__finish_waiters(x, 0, "server stopping");
		free_sess(x);
	}
	free(s->v);
	free(s->order);
	free(s->pass_after);
	sup__lease_free(s);
	wg_map_free(&s->by_id);
	if (s->timer)
		event_free(s->timer);
	free(s);
}

int
sup_start(struct sup *s)
{
	int changed = 0;
	int64_t now = (int64_t)wg_wall_ms();
	/* Rule 1: rows that still say connecting/connected/qr_pending belong to a process that died. */
	if (store_reconcile(s->st, now, &changed) != 0) {
		log_error("supervisor", "cannot reconcile the database: %s", store_errmsg(s->st));
		return WG_EIO;
	}
	if (changed)
		log_info("supervisor", "reconciled %d session(s) left connected by a previous process", changed);
	/* Every session into memory (one listing, in creation order, without credentials). */
	struct store_filter all = {.without_auth = true};
	struct store_session *rows = NULL;
	size_t n = 0;
	if (store_list(s->st, &all, &rows, &n) != 0) {
		log_error("supervisor", "cannot list sessions: %s", store_errmsg(s->st));
		return WG_EIO;
	}
	size_t skipped = store_list_skipped(s->st);
	if (skipped)
		log_error("supervisor", "%s", store_errmsg(s->st));
	s->skipped_rows = skipped;
	uint64_t t = wg_now_ms();
	int64_t wall = (int64_t)wg_wall_ms();
	size_t k = 0;
	int64_t newest = 0;
	for (size_t i = 0; i < n; i++) {
		if (rows[i].updated_at > newest)
			newest = rows[i].updated_at;
		struct sess *x = sup__add(s, rows[i].id);
		snprintf(x->status, sizeof(x->status), "%s", rows[i].connection_status);
		x->last_error = rows[i].last_error ? wg_strdup(rows[i].last_error) : NULL;
		x->last_connected_at = rows[i].last_connected_at;
		x->last_message_at = rows[i].last_message_at;
		sup__apply_row(x, &rows[i]);
		if (!x->primary && x->has_auth && x->is_active && x->last_error == NULL) {
			/* Said where the app and the dashboard look, so "disconnected" has a reason. */
			sup__wb_set_error(x, SUP_NOT_PRIMARY_ERR);
			sup__wb_mark(x, STORE_F_ERROR);
		}
		if (!sup__should_run(x))
			continue;
		if (strcmp(x->status, "disconnected") == 0 && x->last_error &&
		    strncmp(x->last_error, SUP_REPLACED_ERR, strlen(SUP_REPLACED_ERR)) == 0) {
			/* Another client took it over before the restart: still not ours to take back. */
			log_warn(x->id, "start: not connecting: another client took this session over "
					"(440) before the restart; reconnect it by hand");
			x->state = SS_STOPPED;
			continue;
		}
		/* Rule 1: the auto-connects, stagger apart, in creation order. */
		snprintf(x->trigger, sizeof(x->trigger), "start");
		x->state = SS_WAITING; /* already "disconnected" in the database after reconciling */
		wg_heap_set(&s->due, &x->due, t + k * s->cfg.start_stagger_ms);
		x->next_retry_wall = wall + (int64_t)(k * s->cfg.start_stagger_ms);
		k++;
	}
	store_list_free(rows, n);
	/* The watch reads what changes after the rows just read (the reconcile's writes included: harmless). */
	sup__watch_init(s, newest);
	if (!skipped)
		sup__note_rows_version(s);
	s->start_pending = (unsigned)k;
	log_info("supervisor", "start: %zu session(s) to connect, %" PRIu64 " ms apart", k,
		 s->cfg.start_stagger_ms);
	s->started = 1;
	s->next_monitor = t + s->cfg.recovery_interval_ms;
	schedule(s);
	return 0;
}

void
sup_shutdown(struct sup *s, void (*done)(void *arg), void *arg)
{
	s->shutting_down = 1;
	s->shutdown_done = done;
	s->shutdown_arg = arg;
	s->shutdown_deadline = wg_now_ms() + s->cfg.shutdown_grace_ms;
	for (size_t i = 0; i < s->n; i++) {
		struct sess *x = s->v[i];
		/* Rule 4: the database is made truthful first, whatever the sockets do next. */
		if (x->state == SS_CONNECTED || x->state == SS_CONNECTING || x->state == SS_PAIRING ||
		    x->state == SS_WAITING || x->state == SS_READING)
			sup__enter(x, SS_IDLE, "shutdown", NULL, 0);
		sup__finish_waiters(x, 0, "server stopping");
	}
	if (sup__wb_flush_all(s) != 0)
		log_error("supervisor", "shutdown: the database could not be written (%s); the next "
					"start reconciles what it says", s->db_error);
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i]->client)
			s->ops->close(s->v[i]->client);
	if (s->timer == NULL)
		return;
	schedule(s);
}

/*
 * Memory takes a session's row (one created or changed through the API, or
 * read by the monitor or the watch): a session it did not know is added with
 * the row's status; credentials memory has not written yet stay newer.
 */
struct sess *
sup__take_row(struct sup *s, const struct store_session *row)
{
	struct sess *x = sup__find(s, row->id);
	if (x == NULL) {
		x = sup__add(s, row->id);
		snprintf(x->status, sizeof(x->status), "%s", row->connection_status);
		x->last_error = row->last_error ? wg_strdup(row->last_error) : NULL;
		x->last_connected_at = row->last_connected_at;
		x->last_message_at = row->last_message_at;
	}
	/* Credentials not yet written are newer than the row's. */
	int had_auth = x->has_auth, pending = x->auth_newer;
	sup__apply_row(x, row);
	if (pending) {
		x->has_auth = had_auth;
		sup__recount(x);
	}
	return x;
}

/* Reads a session's row into memory, on the loop (tools, tests; the API reads off it). */
static int
load_row(struct sup *s, const char *id, struct sess **out)
{
	struct store_session row;
	int r = store_get(s->st, id, &row);
	if (r)
		return r;
	*out = sup__take_row(s, &row);
	store_session_free(&row);
	return 0;
}

int
sup_learn(struct sup *s, const char *id)
{
	struct sess *x;
	return load_row(s, id, &x);
}

void
sup_learn_row(struct sup *s, const struct store_session *row)
{
	struct sess *x = sup__find(s, row->id);
	if (x != NULL && x->deleted)
		return; /* going: a row read before the delete brings nothing back */
	sup__take_row(s, row);
}

/* The session in memory, or its row read on the loop when memory has not seen it yet. */
static int
find_or_load(struct sup *s, const char *id, struct sess **out)
{
	*out = sup__find(s, id);
	if (*out != NULL)
		return (*out)->deleted ? WG_ENOTFOUND : 0;
	return load_row(s, id, out);
}

int
sup_reconnect(struct sup *s, const char *id, void (*done)(void *arg, int ok, const char *msg),
	      void *arg)
{
	struct sess *x;
	/* Not in memory: a row the web app wrote since the last pass (the API hands it over first). */
	int r = find_or_load(s, id, &x);
	if (r)
		return r;
	if (!x->has_auth) {
		done(arg, 0, "the session has no credentials: pair it first");
		return 0;
	}
	if (s->shutting_down) {
		done(arg, 0, "the server is stopping");
		return 0;
	}
	struct waiter *w = wg_calloc(1, sizeof(*w));
	w->done = done;
	w->arg = arg;
	w->deadline = wg_now_ms() + s->cfg.reconnect_wait_ms;
	int joining = x->waiters != NULL;
	w->next = x->waiters;
	x->waiters = w;
	if (!wg_heap_has(&x->deadline) || w->deadline < x->deadline.key)
		wg_heap_set(&s->deadlines, &x->deadline, w->deadline);
	if (joining) {
		schedule(s);
		return 0; /* one attempt serves every request made while it runs */
	}
	/*
	 * A person asked: the limit and the breaker's hold on this session are
	 * lifted, and the window and the backoff (a flapping one too) start afresh.
	 */
	x->manual_needed = 0;
	x->start_try = 0;
	x->failures = 0;
	x->nrecov = 0;
	x->recov_loaded = 1;
	sup__record(x, "manual", "reconnect", "started", NULL);
	snprintf(x->trigger, sizeof(x->trigger), "manual");
	if (x->client) {
		x->reopen = 1;
		s->ops->close(x->client);
	} else {
		sup__connect_now(x, "manual");
	}
	schedule(s);
	return 0;
}

int
sup_pair(struct sup *s, const char *id, const char **why)
{
	struct sess *x;
	const char *no;
	if (why == NULL)
		why = &no;
	*why = NULL;
	int r = find_or_load(s, id, &x);
	if (r)
		return r;
	if (x->state == SS_PAIRING)
		return 0; /* already showing QR codes */
	if (x->client != NULL || x->state == SS_CONNECTED || x->state == SS_READING) {
		*why = "the session is connected or logging in: log it out first to pair a new device";
		return WG_ESTATE;
	}
	/* Credentials that work are kept: a new device would only be needed after a logout. */
	int reauth = strcmp(x->status, "logged_out") == 0;
	if (x->has_auth && !reauth) {
		*why = "the session has credentials: reconnect it, or log it out first to pair a new device";
		return WG_ESTATE;
	}
	if (s->shutting_down) {
		*why = "the server is stopping";
		return WG_ESTATE;
	}
	/* A person asked: whatever held the session (limit, retries) starts afresh. */
	x->manual_needed = 0;
	x->start_try = 0;
	x->failures = 0;
	x->nrecov = 0;
	x->recov_loaded = 1;
	x->trigger[0] = '\0';
	r = connect_as(x, "pair", 1);
	schedule(s);
	return r;
}

void
sup__user_changed(struct sess *x)
{
	struct sup *s = x->sup;
	/* Only a primary connects by itself (Rule 1): a flag on another session changes nothing now. */
	int run = sup__should_run(x);
	if (!x->is_active && x->client) {
		/* Deactivated: close it and leave it alone. */
		s->ops->close(x->client);
	} else if ((!x->is_active || !x->auto_connect) && x->state == SS_WAITING) {
		/* A retry was scheduled: it is not made. */
		sup__enter(x, SS_IDLE, "switched off",
			   x->is_active ? "auto-connect is off" : "switched off (is_active is false)", 0);
	} else if (run && x->client == NULL && x->state == SS_IDLE && !s->breaker) {
		snprintf(x->trigger, sizeof(x->trigger), "manual");
		sup__wait_then_connect(x, 0, "auto-connect enabled", NULL);
	}
}

void
sup_session_changed(struct sup *s, const struct store_session *row)
{
	struct sess *x = sup__find(s, row->id);
	if (x != NULL && x->deleted)
		return;
	x = sup__take_row(s, row);
	sup__user_changed(x);
	schedule(s);
}

int
sup_session_deleted(struct sup *s, const char *id)
{
	struct sess *x = sup__find(s, id);
	if (x == NULL)
		return 0;
	x->deleted = 1;
	sup__recount(x);
	sup__wb_forget(x); /* the row is going: nothing to write to it */
	if (x->client)
		s->ops->close(x->client);
	else
		sup__remove(s, x);
	schedule(s);
	return 0;
}

int
sup_logout(struct sup *s, const char *id)
{
	struct sess *x = sup__find(s, id);
	if (x == NULL && load_row(s, id, &x) != 0)
		x = sup__add(s, id);
	if (x->client) {
		x->logout = 1;
		s->ops->close(x->client);
	} else {
		sup__enter(x, SS_STOPPED, "logged out by request", "logged out by request", 1);
	}
	/* Credentials are dropped: pairing starts over. */
	sup__wb_auth(x, NULL, NULL);
	x->has_auth = 0;
	sup__recount(x);
	schedule(s);
	return 0;
}

size_t
sup_pending_attempts(struct sup *s, const char *id, const struct store_attempt **out, size_t max)
{
	struct sess *x = sup__find(s, id);
	if (x == NULL || max == 0)
		return 0;
	/* A listing asks for a few per session: no allocation for those. */
	const struct pend *few[8], **p = max <= 8 ? few : wg_calloc(max, sizeof(*p));
	size_t n = sup__wb_pending(x, true, p, max);
	for (size_t i = 0; i < n; i++)
		out[i] = &p[n - 1 - i]->a; /* newest first */
	if (p != few)
		free(p);
	return n;
}

int
sup_writing(const struct sup *s)
{
	return s->inflight != NULL;
}

int
sup_flush(struct sup *s)
{
	return sup__wb_flush_all(s);
}

size_t
sup_pending_history(struct sup *s, const char *id, const struct store_status_change **out,
		    size_t max)
{
	struct sess *x = sup__find(s, id);
	if (x == NULL || max == 0)
		return 0;
	const struct pend **p = wg_calloc(max, sizeof(*p));
	size_t n = sup__wb_pending(x, false, p, max);
	for (size_t i = 0; i < n; i++)
		out[i] = &p[i]->h; /* oldest first */
	free(p);
	return n;
}

void
sup__fill_view(struct sess *x, struct sup_session_view *out)
{
	struct sup *s = x->sup;
	memset(out, 0, sizeof(*out));
	out->id = x->id;
	/* Reading the credentials is part of connecting, as the API names states. */
	out->state = sup__state_names[x->state == SS_READING ? SS_CONNECTING : x->state];
	out->socket_alive = x->client != NULL && s->ops->alive(x->client);
	out->paired = x->has_auth;
	out->manual_needed = x->manual_needed;
	out->next_retry_at = x->state == SS_WAITING ? x->next_retry_wall : 0;
	out->qr = x->state == SS_PAIRING ? x->qr : NULL;
	out->qr_expires_at = x->qr ? x->qr_expires : 0;
	out->recoveries_in_window = sup__recoveries_known(x);
	out->status = x->status;
	out->last_error = x->last_error;
	out->last_connected_at = x->last_connected_at;
	out->last_message_at = x->last_message_at;
	out->session_name = sup__ucol(x, UC_NAME);
	out->user_id = sup__ucol(x, UC_USER);
	out->phone_number = sup__ucol(x, UC_PHONE);
	out->is_active = x->is_active;
	out->auto_connect = x->auto_connect;
	out->created_at = x->created_at;
	out->updated_at = x->updated_at;
	out->node = x->owner;
}

int
sup_view(struct sup *s, const char *id, struct sup_session_view *out)
{
	struct sess *x = sup__find(s, id);
	if (x == NULL || x->deleted) {
		/* A deleted session stays in memory until its connection's close is reported: gone already. */
		memset(out, 0, sizeof(*out));
		return WG_ENOTFOUND;
	}
	sup__fill_view(x, out);
	return 0;
}

/* Rule 6: ok, degraded or error, from counts kept on every transition (no I/O). */
void
sup_health(struct sup *s, struct sup_health *out)
{
	memset(out, 0, sizeof(*out));
	out->breaker_open = s->breaker;
	out->db_ok = s->db_ok;
	out->db_latency_us = s->db_latency_us;
	out->db_error = s->db_ok ? NULL : s->db_error;
	out->connected = s->cnt[B_CONNECTED];
	out->connecting = s->cnt[B_CONNECTING];
	out->disconnected = s->cnt[B_DISCONNECTED];
	out->total = out->connected + out->connecting + out->disconnected;
	out->handshakes = s->connecting;
	out->db_pending = s->ndirty;
	out->started = s->started;
	out->stopping = s->shutting_down;
	if (!s->db_ok)
		out->status = "error";
	else
		out->status = out->connected == out->total && !s->breaker ? "ok" : "degraded";
}
