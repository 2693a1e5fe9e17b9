/*
 * The supervisor. See sup.h for the contract and docs/supervisor.md for the
 * rules; each rule is marked "Rule N" where it is carried out.
 */
#include "sup/sup.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "wa/crypto.h"

/*
 * A session's life in this process; ss_enter() is the only place that changes
 * it, and it keeps connection_status in the database in step:
 *   idle        nothing scheduled (not auto-connected, or waiting for a person)  disconnected
 *   waiting     a connect is due at `due`                                         disconnected
 *   connecting  a client is logging in                                            connecting
 *   pairing     a client shows QR codes                                           qr_pending
 *   connected   open                                                              connected
 *   stopped     logged out, replaced, breaker or recovery limit: a person decides disconnected | logged_out
 */
enum ss_state { SS_IDLE, SS_WAITING, SS_CONNECTING, SS_PAIRING, SS_CONNECTED, SS_STOPPED };
static const char *ss_names[] = {"idle", "waiting", "connecting", "pairing", "connected", "stopped"};

struct waiter {
	void (*done)(void *arg, int ok, const char *msg);
	void *arg;
	uint64_t deadline;
	struct waiter *next;
};

struct sess {
	char id[37];
	enum ss_state state;
	struct sup_client *client;
	uint64_t due;            /* waiting: when to connect (monotonic ms) */
	int ever_open;           /* opened once in this process: running rules, not startup rules */
	size_t start_try;        /* startup retries used */
	unsigned failures;       /* consecutive failed attempts while running, for the backoff */
	int manual_needed;       /* recovery limit reached */
	int reopen;              /* closing only to connect again */
	int logout;              /* closing to log out */
	int deleted;             /* removed through the API; free once its client is gone */
	char trigger[48];        /* what started the attempt in flight, for the recovery table */
	int probing;
	uint64_t connected_mono;
	int64_t last_activity;   /* wall ms: the last message, or when it connected */
	char *qr;
	int64_t qr_expires;
	int64_t next_retry_wall;
	char db_status[16];      /* connection_status as last written (or read) by us */
	int db_status_known;     /* db_status is valid; read from the row on first need */
	struct waiter *waiters;
	struct sup *sup;
};

struct sup {
	struct store *st;
	struct sup_config cfg;
	const struct sup_client_ops *ops;
	void *ctx;
	struct sess **v;
	size_t n, cap;
	uint64_t next_monitor;
	int breaker;            /* client_outdated seen: no automatic reconnects */
	int shutting_down;
	void (*shutdown_done)(void *);
	void *shutdown_arg;
	uint64_t shutdown_deadline;
	int started;
	size_t skipped_rows;     /* bad rows the store passed over, logged when it changes */
	unsigned start_pending;  /* first attempts not yet resolved, for the start summary */
	unsigned start_ok, start_retry, start_reauth;
	struct event_base *base;
	struct event *timer;
	sup_observer_fn observer;
	void *observer_arg;
};

static const struct sup_client_cb client_cb;
static void schedule(struct sup *s);

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
	c->recovery_interval_ms = 60000;
	c->stale_after_ms = 30 * 60 * 1000;
	c->recovery_max = 3;
	c->recovery_window_ms = 3600 * 1000;
	c->reconnect_wait_ms = 20000;
	c->shutdown_grace_ms = 5000;
}

/* ---- the database ---- */

static const char *
db_status(const struct sess *x, int logged_out)
{
	switch (x->state) {
	case SS_CONNECTING:
		return "connecting";
	case SS_PAIRING:
		return "qr_pending";
	case SS_CONNECTED:
		return "connected";
	default:
		return logged_out ? "logged_out" : "disconnected";
	}
}

/*
 * Writes status (and last_error when err is not NULL; "" clears it). Logs
 * failures once here and returns the store's result.
 */
static int
db_write(struct sess *x, const char *status, const char *err, unsigned extra,
	 const struct store_session *vals)
{
	struct store_session row;
	memset(&row, 0, sizeof(row));
	if (vals)
		row = *vals;
	unsigned f = extra;
	if (status) {
		snprintf(row.connection_status, sizeof(row.connection_status), "%s", status);
		f |= STORE_F_STATUS;
	}
	if (err) {
		row.last_error = err[0] ? (char *)err : NULL;
		f |= STORE_F_ERROR;
	}
	int r = store_update(x->sup->st, x->id, &row, f, (int64_t)wg_wall_ms());
	if (r && r != WG_ENOTFOUND)
		log_error(x->id, "database update failed: %s", store_errmsg(x->sup->st));
	return r;
}

static void
notify(struct sess *x, enum sup_event ev)
{
	struct sup *s = x->sup;
	if (s->observer != NULL && !x->deleted)
		s->observer(s->observer_arg, ev, x->id);
}

/*
 * The status history (docs/store.md): one row each time connection_status
 * really changes. The status we wrote last is kept in memory; the first time
 * a session is written in this process its row tells what the status was.
 */
static void
history_before(struct sess *x)
{
	if (x->db_status_known)
		return;
	struct store_session row;
	if (store_get(x->sup->st, x->id, &row) != 0)
		return; /* unknown: the write below will say so, or the row is gone */
	snprintf(x->db_status, sizeof(x->db_status), "%s", row.connection_status);
	x->db_status_known = 1;
	store_session_free(&row);
}

static void
history_after(struct sess *x, const char *status, const char *why, const char *err)
{
	if (x->db_status_known && strcmp(x->db_status, status) == 0)
		return;
	snprintf(x->db_status, sizeof(x->db_status), "%s", status);
	x->db_status_known = 1;
	/* The supervisor's reason, then the cause when there is one: "connection lost: ... (transient 428)". */
	char reason[512];
	if (err && err[0] && strcmp(err, why) != 0)
		snprintf(reason, sizeof(reason), "%s: %s", why, err);
	else
		snprintf(reason, sizeof(reason), "%s", why);
	struct store_status_change c;
	memset(&c, 0, sizeof(c));
	snprintf(c.session_id, sizeof(c.session_id), "%s", x->id);
	c.at = (int64_t)wg_wall_ms();
	snprintf(c.status, sizeof(c.status), "%s", status);
	c.reason = reason;
	if (store_add_status_change(x->sup->st, &c) != 0)
		log_error(x->id, "cannot record the status change: %s", store_errmsg(x->sup->st));
}

static void
record(struct sess *x, const char *trigger, const char *action, const char *result,
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
	if (store_add_attempt(x->sup->st, &a) != 0)
		log_error(x->id, "cannot record a recovery attempt: %s", store_errmsg(x->sup->st));
}

/* ---- sessions ---- */

static struct sess *
find(struct sup *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i]->id, id) == 0)
			return s->v[i];
	return NULL;
}

static struct sess *
add(struct sup *s, const char *id)
{
	struct sess *x = find(s, id);
	if (x)
		return x;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = wg_realloc(s->v, s->cap * sizeof(*s->v));
	}
	x = wg_calloc(1, sizeof(*x));
	snprintf(x->id, sizeof(x->id), "%s", id);
	x->sup = s;
	s->v[s->n++] = x;
	return x;
}

static void
finish_waiters(struct sess *x, int ok, const char *msg)
{
	struct waiter *w = x->waiters;
	x->waiters = NULL;
	while (w) {
		struct waiter *next = w->next;
		w->done(w->arg, ok, msg);
		free(w);
		w = next;
	}
}

static void
remove_sess(struct sup *s, struct sess *x)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i] == x) {
			s->v[i] = s->v[--s->n];
			break;
		}
	}
	finish_waiters(x, 0, "session deleted");
	free(x->qr);
	free(x);
}

/* The only place a session's state changes; keeps the database in step. */
static void
ss_enter(struct sess *x, enum ss_state st, const char *why, const char *err, int logged_out)
{
	enum ss_state old = x->state;
	x->state = st;
	if (old != st)
		log_info(x->id, "%s -> %s (%s)", ss_names[old], ss_names[st], why);
	if (st != SS_WAITING) {
		x->due = 0;
		x->next_retry_wall = 0;
	}
	if (st != SS_PAIRING) {
		free(x->qr);
		x->qr = NULL;
	}
	if (x->deleted)
		return;
	/* Entering connected stamps last_connected_at in the same write, so observers see both. */
	struct store_session v;
	memset(&v, 0, sizeof(v));
	unsigned extra = 0;
	if (st == SS_CONNECTED && old != SS_CONNECTED) {
		v.last_connected_at = (int64_t)wg_wall_ms();
		extra = STORE_F_CONNECTED_AT;
	}
	const char *status = db_status(x, logged_out);
	history_before(x);
	if (db_write(x, status, err, extra, &v) != 0) {
		x->db_status_known = 0; /* we no longer know what the row says */
		return;
	}
	history_after(x, status, why, err);
	notify(x, SUP_EV_SESSION);
}

/* Schedules a connect after delay_ms (0: at once, from the next sup_run). */
static void
wait_then_connect(struct sess *x, uint64_t delay_ms, const char *why, const char *err)
{
	/* Set first, so the state change that observers see carries the retry time. */
	x->due = wg_now_ms() + delay_ms;
	x->next_retry_wall = (int64_t)(wg_wall_ms() + delay_ms);
	ss_enter(x, SS_WAITING, why, err, 0);
}

static int
connect_now(struct sess *x, const char *trigger)
{
	struct sup *s = x->sup;
	if (x->client != NULL)
		return 0; /* never more than one connection per session */
	struct store_session row;
	int r = store_get(s->st, x->id, &row);
	if (r) {
		log_error(x->id, "cannot read the session: %s", r == WG_ENOTFOUND ? "not found" : store_errmsg(s->st));
		ss_enter(x, SS_IDLE, "cannot read the session", NULL, 0);
		return r;
	}
	if (trigger != x->trigger)
		snprintf(x->trigger, sizeof(x->trigger), "%s", trigger);
	r = s->ops->open(s->ctx, x->id, row.auth_state, &client_cb, x, &x->client);
	int paired = row.auth_state != NULL;
	store_session_free(&row);
	if (r) {
		char err[96];
		snprintf(err, sizeof(err), "cannot start a connection: %s", wg_strerror(r));
		ss_enter(x, SS_IDLE, "open failed", err, 0);
		return r;
	}
	ss_enter(x, paired ? SS_CONNECTING : SS_PAIRING, trigger, NULL, 0);
	return 0;
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
	notify(x, SUP_EV_QR);
	schedule(x->sup);
}

static void
cb_paired(void *arg, const char *jid)
{
	struct sess *x = arg;
	log_info(x->id, "paired as %s", jid);
	ss_enter(x, SS_CONNECTING, "paired; logging in", "", 0);
	schedule(x->sup);
}

static void
cb_creds(void *arg, const char *auth_state, const char *phone)
{
	struct sess *x = arg;
	struct store_session v;
	memset(&v, 0, sizeof(v));
	v.auth_state = (char *)auth_state;
	v.phone_number = (char *)phone;
	db_write(x, NULL, NULL, STORE_F_AUTH | (phone ? STORE_F_PHONE : 0), &v);
}

static void
cb_open(void *arg, const char *jid, const char *push_name)
{
	struct sess *x = arg;
	struct sup *s = x->sup;
	start_resolved(s, x, 0);
	if (!x->ever_open && x->start_try == 0)
		log_info(x->id, "start: connected as %s", jid);
	x->ever_open = 1;
	x->failures = 0;
	x->start_try = 0;
	x->manual_needed = 0;
	x->connected_mono = wg_now_ms();
	x->last_activity = (int64_t)wg_wall_ms();
	ss_enter(x, SS_CONNECTED, "open", "", 0);
	if (x->trigger[0] && strncmp(x->trigger, "start", 5) != 0 && strcmp(x->trigger, "pair") != 0)
		record(x, x->trigger, "reconnect", "connected", NULL);
	x->trigger[0] = '\0';
	finish_waiters(x, 1, "connected");
	schedule(s);
}

static void
cb_message(void *arg, int64_t t)
{
	struct sess *x = arg;
	x->last_activity = (int64_t)wg_wall_ms();
	struct store_session v;
	memset(&v, 0, sizeof(v));
	v.last_message_at = x->last_activity;
	db_write(x, NULL, NULL, STORE_F_MESSAGE_AT, &v);
}

static void
cb_probe(void *arg, int ok, uint32_t rtt_ms)
{
	struct sess *x = arg;
	x->probing = 0;
	if (ok) {
		/* Still answering: it was only quiet. */
		x->last_activity = (int64_t)wg_wall_ms();
		record(x, "probe:stale", "probe", "ok", NULL);
		return;
	}
	record(x, "probe:stale", "probe", "failed", "no answer to presence and ping");
	if (x->client) {
		x->reopen = 1;
		snprintf(x->trigger, sizeof(x->trigger), "monitor:stale");
		x->sup->ops->close(x->client);
	}
	schedule(x->sup);
}

/* Rule 3: one table of close reasons (docs/supervisor.md). */
static void
cb_closed(void *arg, const struct wa_session_close *why)
{
	struct sess *x = arg;
	struct sup *s = x->sup;
	x->client = NULL;
	x->probing = 0;
	char err[200];
	snprintf(err, sizeof(err), "%s (%s %d)", why->text, wa_close_reason_name(why->reason),
		 why->code);
	if (x->trigger[0] && why->reason != WA_CLOSE_CLOSED_BY_US)
		record(x, x->trigger, "reconnect", "failed", err);

	if (x->deleted) {
		remove_sess(s, x);
		schedule(s);
		return;
	}
	if (s->shutting_down) {
		ss_enter(x, SS_IDLE, "shutdown", NULL, 0);
		schedule(s);
		return;
	}
	if (x->logout) {
		x->logout = 0;
		ss_enter(x, SS_STOPPED, "logged out by request", "logged out by request", 1);
		finish_waiters(x, 0, "logged out");
		schedule(s);
		return;
	}
	if (x->reopen) {
		x->reopen = 0;
		connect_now(x, x->trigger[0] ? x->trigger : "manual");
		schedule(s);
		return;
	}

	int was_open = x->state == SS_CONNECTED, pairing = x->state == SS_PAIRING;
	switch (why->reason) {
	case WA_CLOSE_LOGGED_OUT:
		snprintf(err, sizeof(err), "logged out (%d): re-authentication needed, pair the device again",
			 why->code);
		start_resolved(s, x, 2);
		if (!x->ever_open)
			log_warn(x->id, "start: needs re-authentication");
		ss_enter(x, SS_STOPPED, "logged out", err, 1);
		break;
	case WA_CLOSE_REPLACED:
		snprintf(err, sizeof(err), "replaced (440): another client took over this session; "
					   "not taking it back automatically");
		ss_enter(x, SS_STOPPED, "replaced", err, 0);
		break;
	case WA_CLOSE_CLIENT_OUTDATED:
		s->breaker = 1;
		log_error("supervisor", "WhatsApp says this client is outdated (405): every automatic "
					"reconnect is stopped until the server is updated");
		ss_enter(x, SS_STOPPED, "client outdated", "client version outdated (405): update wagate", 0);
		break;
	case WA_CLOSE_TEMP_BANNED: {
		int64_t now = (int64_t)wg_wall_ms();
		int64_t until = why->ban_expires > 0 ? why->ban_expires * 1000 : now + (int64_t)s->cfg.backoff_cap_ms;
		snprintf(err, sizeof(err), "temporarily banned (402) until %" PRId64 " (Unix s)", until / 1000);
		wait_then_connect(x, until > now ? (uint64_t)(until - now) : 0, "temporary ban", err);
		break;
	}
	case WA_CLOSE_CLOSED_BY_US:
		ss_enter(x, SS_IDLE, "closed by us", NULL, 0);
		break;
	case WA_CLOSE_QR_TIMEOUT:
		ss_enter(x, SS_IDLE, "QR codes expired", "QR codes expired without a scan; start pairing again", 0);
		break;
	case WA_CLOSE_RESTART_REQUIRED:
		if (s->breaker) {
			ss_enter(x, SS_STOPPED, "breaker open", err, 0);
			break;
		}
		/* The server asks for a new connection: at once, without counting a failure. */
		snprintf(x->trigger, sizeof(x->trigger), "close:restart_required");
		wait_then_connect(x, 0, "restart required", err);
		break;
	default: /* transient, keepalive_timeout, protocol_error */
		if (s->breaker) {
			ss_enter(x, SS_STOPPED, "breaker open", err, 0);
			break;
		}
		if (pairing) {
			ss_enter(x, SS_IDLE, "pairing failed", err, 0);
			break;
		}
		if (!x->ever_open) {
			/* Rule 2: startup retries, then give up (the monitor may try later, rate-limited). */
			start_resolved(s, x, 1);
			if (x->start_try < s->cfg.n_start_retries) {
				uint64_t d = s->cfg.start_retries_ms[x->start_try++];
				log_warn(x->id, "start: connection failed (%s); retry %zu of %zu in %" PRIu64 " ms",
					 err, x->start_try, s->cfg.n_start_retries, d);
				snprintf(x->trigger, sizeof(x->trigger), "start:retry");
				wait_then_connect(x, d, "startup retry", err);
			} else {
				log_warn(x->id, "start: connection failed after %zu retries: %s",
					 s->cfg.n_start_retries, err);
				ss_enter(x, SS_IDLE, "startup retries exhausted", err, 0);
			}
			break;
		}
		/* Rule 3: at once after a working connection drops, then backoff. */
		uint64_t d = was_open ? 0 : backoff(s, x->failures);
		x->failures++;
		snprintf(x->trigger, sizeof(x->trigger), "close:%s", wa_close_reason_name(why->reason));
		wait_then_connect(x, d, "connection lost", err);
		break;
	}
	if (x->state != SS_WAITING && x->state != SS_CONNECTING)
		finish_waiters(x, 0, err);
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

/* A row with bad data must not stop the others; say so once, not every minute. */
static void
note_skipped(struct sup *s)
{
	size_t n = store_list_skipped(s->st);
	if (n != s->skipped_rows && n > 0)
		log_error("supervisor", "%s", store_errmsg(s->st));
	s->skipped_rows = n;
}

/* ---- the recovery monitor (Rule 5) ---- */

/* Counts this session's automatic recoveries in the window; past the limit a person decides. */
static int
recovery_allowed(struct sess *x, const char *trigger)
{
	struct sup *s = x->sup;
	if (x->manual_needed)
		return 0;
	int count = 0;
	int64_t since = (int64_t)wg_wall_ms() - (int64_t)s->cfg.recovery_window_ms;
	if (store_count_attempts(s->st, x->id, "monitor:", since, &count) != 0) {
		log_error(x->id, "cannot count recoveries: %s", store_errmsg(s->st));
		return 0; /* without the count, do not risk a storm */
	}
	/* Each recovery leaves one record under "monitor:"; probes and notes use other prefixes. */
	if ((unsigned)count < s->cfg.recovery_max)
		return 1;
	char err[200];
	snprintf(err, sizeof(err),
		 "automatic recovery limit reached (%u in %" PRIu64 " min): waiting for a manual reconnect",
		 s->cfg.recovery_max, s->cfg.recovery_window_ms / 60000);
	x->manual_needed = 1;
	/* Under its own prefix: notes about the limit are not recoveries and must not count. */
	char note[48];
	snprintf(note, sizeof(note), "limit:%s", trigger + (strncmp(trigger, "monitor:", 8) == 0 ? 8 : 0));
	record(x, note, "none", "rate_limited", err);
	if (x->state == SS_CONNECTED || x->state == SS_CONNECTING) {
		/* No state change, but lastError and manualInterventionNeeded did change. */
		if (db_write(x, NULL, err, 0, NULL) == 0)
			notify(x, SUP_EV_SESSION);
	} else {
		ss_enter(x, SS_STOPPED, "recovery limit", err, 0);
	}
	return 0;
}

static void
recover(struct sess *x, const char *trigger, const char *detail)
{
	struct sup *s = x->sup;
	if (!recovery_allowed(x, trigger))
		return;
	log_warn(x->id, "recovering: %s", detail);
	snprintf(x->trigger, sizeof(x->trigger), "%s", trigger);
	if (x->client) {
		x->reopen = 1;
		s->ops->close(x->client);
	} else {
		connect_now(x, trigger);
	}
}

static void
monitor(struct sup *s)
{
	struct store_filter all = {.without_auth = true};
	struct store_session *rows = NULL;
	size_t n = 0;
	if (store_list(s->st, &all, &rows, &n) != 0) {
		log_error("supervisor", "monitor: cannot read sessions: %s", store_errmsg(s->st));
		return;
	}
	note_skipped(s);
	int64_t now_wall = (int64_t)wg_wall_ms();
	for (size_t i = 0; i < n; i++) {
		struct store_session *r = &rows[i];
		int should_run = r->is_active && r->auth_state != NULL && r->auto_connect &&
				 strcmp(r->session_name, "primary") == 0;
		if (!should_run || s->breaker)
			continue;
		struct sess *x = add(s, r->id);
		if (x->state == SS_STOPPED || x->state == SS_PAIRING || x->state == SS_WAITING ||
		    x->state == SS_CONNECTING || x->probing || x->reopen)
			continue;
		int db_connected = strcmp(r->connection_status, "connected") == 0;
		int alive = x->client != NULL && s->ops->alive(x->client);
		if (db_connected && !alive) {
			recover(x, "monitor:dead_socket", "the database says connected but the socket is not alive");
		} else if (x->state == SS_IDLE && x->client == NULL) {
			recover(x, "monitor:down", "the session should be connected but is not");
		} else if (x->state == SS_CONNECTED && alive) {
			int64_t last = r->last_message_at > x->last_activity ? r->last_message_at : x->last_activity;
			if (now_wall - last > (int64_t)s->cfg.stale_after_ms) {
				if (!recovery_allowed(x, "monitor:stale"))
					continue;
				x->probing = 1;
				if (s->ops->probe(x->client) != 0) {
					x->probing = 0;
					recover(x, "monitor:stale", "probe could not be sent");
				}
			}
		}
	}
	store_list_free(rows, n);
}

/* ---- scheduling ---- */

uint64_t
sup_run(struct sup *s)
{
	uint64_t now = wg_now_ms(), next = UINT64_MAX;
	/* Due connects; a copy of the count because connects may add nothing but can close. */
	for (size_t i = 0; i < s->n; i++) {
		struct sess *x = s->v[i];
		if (x->state == SS_WAITING && x->due <= now && !s->shutting_down) {
			if (s->breaker) {
				ss_enter(x, SS_STOPPED, "breaker open", "client version outdated (405): update wagate", 0);
				continue;
			}
			connect_now(x, x->trigger[0] ? x->trigger : "start");
		}
		if (x->state == SS_WAITING && x->due < next)
			next = x->due;
		for (struct waiter **w = &x->waiters; *w;) {
			if ((*w)->deadline <= now) {
				struct waiter *dead = *w;
				*w = dead->next;
				dead->done(dead->arg, 0, "no outcome within the time limit; still trying");
				free(dead);
				continue;
			}
			if ((*w)->deadline < next)
				next = (*w)->deadline;
			w = &(*w)->next;
		}
	}
	if (s->started && !s->shutting_down) {
		if (now >= s->next_monitor) {
			s->next_monitor = now + s->cfg.recovery_interval_ms;
			monitor(s);
		}
		if (s->next_monitor < next)
			next = s->next_monitor;
	}
	if (s->shutting_down) {
		int open = 0;
		for (size_t i = 0; i < s->n; i++)
			open += s->v[i]->client != NULL;
		if ((open == 0 || now >= s->shutdown_deadline) && s->shutdown_done) {
			void (*done)(void *) = s->shutdown_done;
			s->shutdown_done = NULL;
			done(s->shutdown_arg);
		} else if (s->shutdown_done && s->shutdown_deadline < next) {
			next = s->shutdown_deadline;
		}
	}
	return next;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sup *s = arg;
	schedule(s);
}

/* Runs what is due and re-arms the loop's timer for the next due instant. */
static void
schedule(struct sup *s)
{
	if (s->timer == NULL)
		return; /* tests call sup_run() themselves */
	uint64_t next = sup_run(s), now = wg_now_ms();
	if (next == UINT64_MAX)
		return;
	uint64_t d = next > now ? next - now : 0;
	struct timeval tv = {(time_t)(d / 1000), (suseconds_t)((d % 1000) * 1000)};
	evtimer_add(s->timer, &tv);
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
	s->ops = ops;
	s->ctx = client_ctx;
	*out = s;
	return 0;
}

void
sup_set_observer(struct sup *s, sup_observer_fn fn, void *arg)
{
	s->observer = fn;
	s->observer_arg = fn ? arg : NULL;
}

void
sup_remove_observer(struct sup *s, void *arg)
{
	if (s->observer_arg == arg)
		sup_set_observer(s, NULL, NULL);
}

void
sup_free(struct sup *s)
{
	if (s == NULL)
		return;
	if (s->observer)
		s->observer(s->observer_arg, SUP_EV_GONE, NULL);
	s->observer = NULL;
	for (size_t i = 0; i < s->n; i++) {
		struct sess *x = s->v[i];
		finish_waiters(x, 0, "server stopping");
		free(x->qr);
		free(x);
	}
	free(s->v);
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
	struct store_filter f = {.autoconnect = 1, .without_auth = true};
	struct store_session *rows = NULL;
	size_t n = 0;
	if (store_list(s->st, &f, &rows, &n) != 0) {
		log_error("supervisor", "cannot list sessions: %s", store_errmsg(s->st));
		return WG_EIO;
	}
	note_skipped(s);
	uint64_t t = wg_now_ms();
	for (size_t i = 0; i < n; i++) {
		struct sess *x = add(s, rows[i].id);
		snprintf(x->trigger, sizeof(x->trigger), "start");
		x->state = SS_WAITING; /* already "disconnected" in the database after reconciling */
		x->due = t + i * s->cfg.start_stagger_ms;
		x->next_retry_wall = (int64_t)(wg_wall_ms() + i * s->cfg.start_stagger_ms);
	}
	s->start_pending = (unsigned)n;
	log_info("supervisor", "start: %zu session(s) to connect, %" PRIu64 " ms apart", n,
		 s->cfg.start_stagger_ms);
	store_list_free(rows, n);
	/* Load the others too, so the API and monitor know them. */
	struct store_filter all = {.without_auth = true};
	if (store_list(s->st, &all, &rows, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			add(s, rows[i].id);
		store_list_free(rows, n);
	}
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
		    x->state == SS_WAITING)
			ss_enter(x, SS_IDLE, "shutdown", NULL, 0);
		if (x->client)
			s->ops->close(x->client);
		finish_waiters(x, 0, "server stopping");
	}
	if (s->timer == NULL)
		return;
	schedule(s);
}

int
sup_reconnect(struct sup *s, const char *id, void (*done)(void *arg, int ok, const char *msg),
	      void *arg)
{
	struct store_session row;
	int r = store_get(s->st, id, &row);
	if (r)
		return r;
	int has_creds = row.auth_state != NULL;
	store_session_free(&row);
	if (!has_creds) {
		done(arg, 0, "the session has no credentials: pair it first");
		return 0;
	}
	if (s->shutting_down) {
		done(arg, 0, "the server is stopping");
		return 0;
	}
	struct sess *x = add(s, id);
	struct waiter *w = wg_calloc(1, sizeof(*w));
	w->done = done;
	w->arg = arg;
	w->deadline = wg_now_ms() + s->cfg.reconnect_wait_ms;
	int joining = x->waiters != NULL;
	w->next = x->waiters;
	x->waiters = w;
	if (joining) {
		schedule(s);
		return 0; /* one attempt serves every request made while it runs */
	}
	/* A person asked: the limit and the breaker's hold on this session are lifted. */
	x->manual_needed = 0;
	x->start_try = 0;
	record(x, "manual", "reconnect", "started", NULL);
	snprintf(x->trigger, sizeof(x->trigger), "manual");
	if (x->client) {
		x->reopen = 1;
		s->ops->close(x->client);
	} else {
		connect_now(x, "manual");
	}
	schedule(s);
	return 0;
}

int
sup_pair(struct sup *s, const char *id)
{
	struct sess *x = add(s, id);
	if (x->client)
		return WG_ESTATE;
	x->trigger[0] = '\0';
	int r = connect_now(x, "pair");
	schedule(s);
	return r;
}

int
sup_session_changed(struct sup *s, const char *id)
{
	struct store_session row;
	int r = store_get(s->st, id, &row);
	if (r)
		return r;
	struct sess *x = add(s, id);
	int run = row.is_active && row.auto_connect && row.auth_state != NULL;
	if (!row.is_active && x->client) {
		/* Deactivated: close it and leave it alone. */
		s->ops->close(x->client);
	} else if (run && x->client == NULL && (x->state == SS_IDLE)) {
		snprintf(x->trigger, sizeof(x->trigger), "manual");
		wait_then_connect(x, 0, "auto-connect enabled", NULL);
	}
	store_session_free(&row);
	schedule(s);
	return 0;
}

int
sup_session_deleted(struct sup *s, const char *id)
{
	struct sess *x = find(s, id);
	if (x == NULL)
		return 0;
	x->deleted = 1;
	if (x->client)
		s->ops->close(x->client);
	else
		remove_sess(s, x);
	schedule(s);
	return 0;
}

int
sup_logout(struct sup *s, const char *id)
{
	struct sess *x = find(s, id);
	if (x == NULL)
		x = add(s, id);
	if (x->client) {
		x->logout = 1;
		s->ops->close(x->client);
	} else {
		ss_enter(x, SS_STOPPED, "logged out by request", "logged out by request", 1);
	}
	struct store_session v;
	memset(&v, 0, sizeof(v));
	db_write(x, NULL, NULL, STORE_F_AUTH, &v); /* credentials are dropped: pairing starts over */
	schedule(s);
	return 0;
}

int
sup_view(struct sup *s, const char *id, struct sup_session_view *out)
{
	struct sess *x = find(s, id);
	memset(out, 0, sizeof(*out));
	if (x == NULL)
		return WG_ENOTFOUND;
	out->id = x->id;
	out->state = ss_names[x->state];
	out->socket_alive = x->client != NULL && s->ops->alive(x->client);
	out->manual_needed = x->manual_needed;
	out->next_retry_at = x->state == SS_WAITING ? x->next_retry_wall : 0;
	out->qr = x->state == SS_PAIRING ? x->qr : NULL;
	out->qr_expires_at = x->qr ? x->qr_expires : 0;
	int count = 0;
	store_count_attempts(s->st, x->id, "monitor:",
			     (int64_t)wg_wall_ms() - (int64_t)s->cfg.recovery_window_ms, &count);
	out->recoveries_in_window = (unsigned)count;
	return 0;
}

/* Rule 6: ok, degraded or error. */
void
sup_health(struct sup *s, struct sup_health *out)
{
	memset(out, 0, sizeof(*out));
	out->breaker_open = s->breaker;
	if (store_ping(s->st, &out->db_latency_us) != 0) {
		out->status = "error";
		return;
	}
	out->db_ok = 1;
	struct store_filter f = {.without_auth = true};
	struct store_session *rows = NULL;
	size_t n = 0;
	if (store_list(s->st, &f, &rows, &n) != 0) {
		out->db_ok = 0;
		out->status = "error";
		return;
	}
	for (size_t i = 0; i < n; i++) {
		/* Counted: active primary sessions with credentials, as the status rule reads. */
		if (!rows[i].is_active || rows[i].auth_state == NULL ||
		    strcmp(rows[i].session_name, "primary") != 0)
			continue;
		const char *st = rows[i].connection_status;
		out->total++;
		if (strcmp(st, "connected") == 0)
			out->connected++;
		else if (strcmp(st, "connecting") == 0 || strcmp(st, "qr_pending") == 0)
			out->connecting++;
		else
			out->disconnected++;
	}
	store_list_free(rows, n);
	out->status = out->connected == out->total && !s->breaker ? "ok" : "degraded";
}
