/*
 * The supervisor's rules, one test each, deterministic: a fake session client
 * driven by hand, a real SQLite store in a temporary directory, and virtual
 * monotonic and wall clocks that only move when a test moves them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <semaphore.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <sqlite3.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/store.h"
#include "sup/sup.h"

/* ---- virtual time ---- */

static uint64_t now_ms;                   /* monotonic */
static const uint64_t WALL0 = 1800000000000ull; /* wall = WALL0 + now_ms */

static uint64_t
vmono(void *arg)
{
	return now_ms;
}

static uint64_t
vwall(void *arg)
{
	return WALL0 + now_ms;
}

/* ---- the fake client ---- */

struct sup_client {
	char id[40];
	int has_auth;
	int alive;
	int close_requested;
	int probes;
	const struct sup_client_cb *cb;
	void *arg;
	int gone;
};

#define MAX_CLIENTS 256
struct fake {
	struct sup_client *c[MAX_CLIENTS];
	uint64_t opened_at[MAX_CLIENTS];
	int n;
	int probe_result; /* what a probe reports, delivered by the test */
} fake;

/* How long an open takes, in real µs (0: no time), as parsing credentials and opening a socket do. */
static unsigned slow_open_us;

static int
f_open(void *ctx, const char *id, const char *auth, const struct sup_client_cb *cb, void *arg,
       struct sup_client **out)
{
	assert_true(fake.n < MAX_CLIENTS);
	if (slow_open_us > 0)
		usleep(slow_open_us);
	/* As the real client does for credentials it cannot parse (another program's, say). */
	if (auth != NULL && strstr(auth, "baileys") != NULL)
		return WG_EINVAL;
	struct sup_client *c = calloc(1, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->has_auth = auth != NULL;
	c->cb = cb;
	c->arg = arg;
	c->alive = 0;
	fake.opened_at[fake.n] = now_ms;
	fake.c[fake.n++] = c;
	*out = c;
	return 0;
}

static void
f_close(struct sup_client *c)
{
	c->close_requested = 1;
}

static int
f_probe(struct sup_client *c)
{
	c->probes++;
	return 0;
}

static int
f_alive(const struct sup_client *c)
{
	return c->alive;
}

static const struct sup_client_ops fake_ops = {f_open, f_close, f_probe, f_alive};

/* The newest client of a session, or NULL. */
static struct sup_client *
client_of(const char *id)
{
	for (int i = fake.n - 1; i >= 0; i--)
		if (strcmp(fake.c[i]->id, id) == 0 && !fake.c[i]->gone)
			return fake.c[i];
	return NULL;
}

static int
opens_of(const char *id)
{
	int k = 0;
	for (int i = 0; i < fake.n; i++)
		k += strcmp(fake.c[i]->id, id) == 0;
	return k;
}

static void
c_open(struct sup_client *c)
{
	c->alive = 1;
	c->cb->open(c->arg, "15551234567:1@s.whatsapp.net", "Shop");
}

static void
c_close(struct sup_client *c, enum wa_close_reason r, int code, int64_t ban)
{
	/* The server answered: its close says why. */
	struct wa_session_close w = {
	    .reason = r, .code = code, .text = "test close", .ban_expires = ban, .reached = 1};
	c->alive = 0;
	c->gone = 1;
	c->cb->closed(c->arg, &w);
}

/* The attempt never reached the server (connection refused, DNS, a connect timeout). */
static void
c_close_net(struct sup_client *c)
{
	struct wa_session_close w = {
	    .reason = WA_CLOSE_TRANSIENT, .code = 428, .text = "connection refused", .reached = 0};
	c->alive = 0;
	c->gone = 1;
	c->cb->closed(c->arg, &w);
}

/* Delivers the closes the supervisor asked for, as the real client does later. */
static void
pump_closes(void)
{
	for (int i = 0; i < fake.n; i++)
		if (fake.c[i]->close_requested && !fake.c[i]->gone)
			c_close(fake.c[i], WA_CLOSE_CLOSED_BY_US, 0, 0);
}

/* ---- fixtures ---- */

struct fx {
	char dir[64];
	struct store *st;
	struct store *app; /* a second connection to the same file: the web app's */
	struct sup *sup;
	struct sup_config cfg;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/wagate-sup-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char url[128], err[256];
	snprintf(url, sizeof(url), "sqlite:%s/db.sqlite", f->dir);
	assert_int_equal(store_open(url, &f->st, err, sizeof(err)), 0);
	int applied;
	assert_int_equal(store_migrate(f->st, &applied), 0);
	assert_int_equal(store_open(url, &f->app, err, sizeof(err)), 0);
	now_ms = 1000000;
	wg_clock_set(vmono, NULL);
	wg_wall_clock_set(vwall, NULL);
	memset(&fake, 0, sizeof(fake));
	sup_config_defaults(&f->cfg);
	/* Most tests drop a connection the instant it opens; the flapping rule has tests of its own. */
	f->cfg.stable_after_ms = 0;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	sup_free(f->sup);
	store_close(f->st);
	store_close(f->app);
	for (int i = 0; i < fake.n; i++)
		free(fake.c[i]);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	wg_clock_set(NULL, NULL);
	wg_wall_clock_set(NULL, NULL);
	free(f);
	return 0;
}

/* Inserts a session through st; returns its id in a static ring of buffers. */
static const char *
insert_session(struct store *st, const char *name, int auth, int active, int autoc,
               const char *status)
{
	static char ids[16][40];
	static int k;
	struct store_session s;
	store_session_init(&s);
	s.session_name = (char *)name;
	s.auth_state = auth ? (char *)"{\"format\":\"test\"}" : NULL;
	s.is_active = active;
	s.auto_connect = autoc;
	if (status)
		snprintf(s.connection_status, sizeof(s.connection_status), "%s", status);
	assert_int_equal(store_insert(st, &s), 0);
	now_ms += 1; /* distinct creation times keep the start order well defined */
	char *out = ids[k++ % 16];
	snprintf(out, 40, "%s", s.id);
	return out;
}

static const char *
add_session(struct fx *f, const char *name, int auth, int active, int autoc, const char *status)
{
	return insert_session(f->st, name, auth, active, autoc, status);
}

/* A row the web app inserts, through its own connection. */
static const char *
app_session(struct fx *f, const char *name, int auth, int active, int autoc)
{
	return insert_session(f->app, name, auth, active, autoc, NULL);
}

static void
start(struct fx *f)
{
	assert_int_equal(sup_new(f->st, &f->cfg, &fake_ops, NULL, &f->sup), 0);
	assert_int_equal(sup_start(f->sup), 0);
	sup_run(f->sup);
}

/* Moves time forward, stopping at every instant the supervisor has something due. */
static void
advance(struct fx *f, uint64_t ms)
{
	uint64_t end = now_ms + ms;
	for (;;) {
		uint64_t next = sup_run(f->sup);
		if (next == UINT64_MAX || next > end)
			break;
		/* Everything due now was just done; anything still "due" moves with time. */
		now_ms = next > now_ms ? next : now_ms + 1;
	}
	now_ms = end;
	sup_run(f->sup);
}

/*
 * The status in memory (what the API shows) and, once the write-behind has
 * flushed, in the row: the two must agree.
 */
static void
expect_status(struct fx *f, const char *id, const char *status)
{
	struct sup_session_view v;
	if (f->sup && sup_view(f->sup, id, &v) == 0 && strcmp(v.status, status) != 0)
		fail_msg("session %s: status in memory \"%s\", expected \"%s\"", id, v.status, status);
	if (f->sup)
		assert_int_equal(sup_flush(f->sup), 0);
	struct store_session s;
	assert_int_equal(store_get(f->st, id, &s), 0);
	if (strcmp(s.connection_status, status) != 0)
		fail_msg("session %s: status \"%s\", expected \"%s\"", id, s.connection_status, status);
	store_session_free(&s);
}

static char *
last_error(struct fx *f, const char *id)
{
	static char buf[512];
	struct store_session s;
	assert_int_equal(sup_flush(f->sup), 0);
	assert_int_equal(store_get(f->st, id, &s), 0);
	snprintf(buf, sizeof(buf), "%s", s.last_error ? s.last_error : "");
	store_session_free(&s);
	return buf;
}

/* Opens a session's first client and logs it in. */
static struct sup_client *
bring_up(struct fx *f, const char *id)
{
	struct sup_client *c = client_of(id);
	assert_non_null(c);
	c_open(c);
	expect_status(f, id, "connected");
	return c;
}

/* Logs a client in without looking at the database (which may be refusing writes). */
static void
bring_up_quiet(struct sup_client *c)
{
	assert_non_null(c);
	c_open(c);
}

/* ---- Rule 1 ---- */

static void
test_reconcile_then_stagger(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, "connected");
	const char *b = add_session(f, "primary", 1, 1, 1, "qr_pending");
	const char *c = add_session(f, "primary", 1, 1, 1, "connecting");
	/* Not selected: no credentials, inactive, no auto-connect, not the primary. */
	const char *d = add_session(f, "primary", 0, 1, 1, "connected");
	const char *e = add_session(f, "primary", 1, 0, 1, NULL);
	const char *g = add_session(f, "primary", 1, 1, 0, NULL);
	const char *h = add_session(f, "secondary", 1, 1, 1, NULL);
	f->cfg.recovery_interval_ms = 3600000; /* keep the monitor out of this test */
	start(f);
	/* Reconciled, before and whatever happens next. */
	expect_status(f, d, "disconnected");
	/* The first starts at once, the others 2 s apart. */
	assert_int_equal(fake.n, 1);
	advance(f, 1999);
	assert_int_equal(fake.n, 1);
	advance(f, 1);
	assert_int_equal(fake.n, 2);
	advance(f, 2000);
	assert_int_equal(fake.n, 3);
	advance(f, 60000);
	assert_int_equal(fake.n, 3);
	assert_int_equal(fake.opened_at[1] - fake.opened_at[0], 2000);
	assert_int_equal(fake.opened_at[2] - fake.opened_at[1], 2000);
	/* In creation order, and only the selected ones. */
	assert_string_equal(fake.c[0]->id, a);
	assert_string_equal(fake.c[1]->id, b);
	assert_string_equal(fake.c[2]->id, c);
	assert_int_equal(opens_of(d) + opens_of(e) + opens_of(g) + opens_of(h), 0);
	expect_status(f, a, "connecting");
	bring_up(f, a);
}

/* ---- Rule 2 ---- */

static void
test_startup_retries(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.recovery_interval_ms = 3600000;
	start(f);
	assert_int_equal(opens_of(a), 1);
	static const uint64_t delays[] = {5000, 15000, 45000};
	static const char *const says[] = {"retry 1 of 3 in 5 s", "retry 2 of 3 in 15 s",
					   "retry 3 of 3 in 45 s"};
	for (int i = 0; i < 3; i++) {
		c_close(client_of(a), WA_CLOSE_TRANSIENT, 428, 0);
		expect_status(f, a, "disconnected");
		/* last_error says what happens next. */
		assert_non_null(strstr(last_error(f, a), says[i]));
		advance(f, delays[i] - 1);
		assert_int_equal(opens_of(a), i + 1);
		advance(f, 1);
		assert_int_equal(opens_of(a), i + 2);
	}
	c_close(client_of(a), WA_CLOSE_TRANSIENT, 428, 0);
	advance(f, 600000);
	assert_int_equal(opens_of(a), 4);
	expect_status(f, a, "disconnected");
	assert_non_null(strstr(last_error(f, a), "transient"));
	assert_non_null(strstr(last_error(f, a), "startup retries used up: the recovery monitor tries "
						 "again within 60 min"));
}

static void
test_startup_logged_out_not_retried(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	start(f);
	c_close(client_of(a), WA_CLOSE_LOGGED_OUT, 401, 0);
	advance(f, 7200000); /* two hours, monitor included */
	assert_int_equal(opens_of(a), 1);
	expect_status(f, a, "logged_out");
	assert_non_null(strstr(last_error(f, a), "re-authentication"));
}

static void
reconnect_done_count(void *arg, int ok, const char *msg)
{
	(void)ok;
	(void)msg;
	++*(int *)arg;
}

/* The web app writes a row's credentials, through its own connection. */
static void
app_write_auth(struct fx *f, const char *id, const char *auth)
{
	struct store_session v;
	memset(&v, 0, sizeof(v));
	v.auth_state = (char *)auth;
	assert_int_equal(store_update(f->app, id, &v, STORE_F_AUTH, (int64_t)(WALL0 + now_ms)), 0);
}

/* Credentials wagate cannot read need a person (or new credentials), not retries. */
static void
test_unusable_credentials_need_reauth(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	app_write_auth(f, a, "{\"creds\":{\"noiseKey\":\"baileys\"}}");
	f->cfg.recovery_interval_ms = 60000;
	start(f);
	/* Not opened: re-authentication needed, recorded, counted in the start's summary. */
	assert_int_equal(opens_of(a), 0);
	expect_status(f, a, "logged_out");
	assert_non_null(strstr(last_error(f, a), "re-authentication needed"));
	struct store_attempt *at;
	size_t n;
	assert_int_equal(store_attempts(f->st, a, 0, 0, &at, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(at[0].result, "needs_reauth");
	store_attempts_free(at, n);
	/* Two hours of monitor passes, another session's row written meanwhile: no retry, no record. */
	app_session(f, "secondary", 0, 1, 1);
	advance(f, 7200000);
	assert_int_equal(opens_of(a), 0);
	assert_int_equal(store_attempts(f->st, a, 0, 0, &at, &n), 0);
	assert_int_equal(n, 1);
	store_attempts_free(at, n);
	/* The web app writes usable credentials: the next pass connects the session. */
	now_ms += 1000;
	app_write_auth(f, a, "{\"format\":\"test\"}");
	advance(f, 60000);
	for (int i = 0; i < 5; i++)
		sup_run(f->sup);
	assert_int_equal(opens_of(a), 1);
	bring_up(f, a);
}

/* Pairing a session again keeps its id: after QR codes expire, after a logout, over unusable credentials. */
static void
test_pair_again(void **state)
{
	struct fx *f = *state;
	const char *p = add_session(f, "shop", 0, 1, 1, NULL);
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	const char *u = add_session(f, "primary", 1, 1, 1, NULL);
	app_write_auth(f, u, "{\"baileys\":true}");
	f->cfg.start_stagger_ms = 0;
	start(f);
	const char *why = NULL;
	/* QR codes expire: pairing again opens a new client without credentials. */
	assert_int_equal(sup_pair(f->sup, p, &why), 0);
	c_close(client_of(p), WA_CLOSE_QR_TIMEOUT, 0, 0);
	expect_status(f, p, "disconnected");
	assert_int_equal(sup_pair(f->sup, p, &why), 0);
	assert_int_equal(opens_of(p), 2);
	assert_int_equal(client_of(p)->has_auth, 0);
	/* Asking again while it pairs changes nothing. */
	assert_int_equal(sup_pair(f->sup, p, &why), 0);
	assert_int_equal(opens_of(p), 2);
	/* Connected: refused, with the reason; a working session's credentials are never replaced. */
	bring_up(f, a);
	assert_int_equal(sup_pair(f->sup, a, &why), WG_ESTATE);
	assert_non_null(strstr(why, "log it out first"));
	c_close(client_of(a), WA_CLOSE_TRANSIENT, 428, 0);
	assert_int_equal(sup_pair(f->sup, a, &why), WG_ESTATE);
	/* Logged out: a new device. */
	advance(f, 10);
	c_close(client_of(a), WA_CLOSE_LOGGED_OUT, 401, 0);
	expect_status(f, a, "logged_out");
	int before = opens_of(a);
	assert_int_equal(sup_pair(f->sup, a, &why), 0);
	assert_int_equal(opens_of(a), before + 1);
	assert_int_equal(client_of(a)->has_auth, 0);
	expect_status(f, a, "qr_pending");
	/* Unusable credentials: a new device too, never the old blob. */
	expect_status(f, u, "logged_out");
	assert_int_equal(sup_pair(f->sup, u, &why), 0);
	assert_int_equal(client_of(u)->has_auth, 0);
	assert_int_equal(sup_pair(f->sup, "00000000-0000-4000-8000-000000000000", &why), WG_ENOTFOUND);
}

/* A session another client took over (440) stays stopped across a restart. */
static void
test_replaced_not_taken_back_after_restart(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	const char *b = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.start_stagger_ms = 0;
	start(f);
	bring_up(f, a);
	bring_up(f, b);
	c_close(client_of(b), WA_CLOSE_REPLACED, 440, 0);
	sup_shutdown(f->sup, NULL, NULL);
	pump_closes();
	sup_run(f->sup);
	assert_int_equal(sup_flush(f->sup), 0);
	sup_free(f->sup);
	f->sup = NULL;
	start(f);
	advance(f, 3 * 3600000ull);
	assert_int_equal(opens_of(a), 2);
	assert_int_equal(opens_of(b), 1);
	assert_non_null(strstr(last_error(f, b), "440"));
	/* A person reconnects it: taken back, and the next restart connects it again. */
	int done = 0;
	assert_int_equal(sup_reconnect(f->sup, b, reconnect_done_count, &done), 0);
	assert_int_equal(opens_of(b), 2);
}

/*
 * One meaning of auto-connect: only a primary connects by itself (at start,
 * and through the monitor). Another session connects when a person asks, and
 * is then kept up like any other while the process runs.
 */
/* A change through the API: the row read back after the write, handed to the supervisor. */
static void
session_changed(struct fx *f, const char *id)
{
	struct store_session row;
	assert_int_equal(store_get(f->st, id, &row), 0);
	sup_session_changed(f->sup, &row);
	store_session_free(&row);
}

static void
test_only_primary_connects_by_itself(void **state)
{
	struct fx *f = *state;
	const char *shop = add_session(f, "shop", 1, 1, 1, NULL);
	const char *off = add_session(f, "primary", 1, 1, 0, NULL);
	f->cfg.recovery_interval_ms = 60000;
	start(f);
	advance(f, 3 * 3600000ull);
	assert_int_equal(opens_of(shop), 0);
	assert_int_equal(opens_of(off), 0);
	/* Its reason is written where the app and the dashboard look. */
	assert_non_null(strstr(last_error(f, shop), "only a session named \"primary\""));
	/* /health counts neither: one is not a primary, the other was switched off by its user. */
	struct sup_health h;
	sup_health(f->sup, &h);
	assert_int_equal(h.total, 0);
	assert_string_equal(h.status, "ok");
	/* A no-op change of the flag does not connect it either. */
	struct store_session v;
	memset(&v, 0, sizeof(v));
	v.auto_connect = 1;
	assert_int_equal(store_update(f->st, shop, &v, STORE_F_AUTO, (int64_t)(WALL0 + now_ms)), 0);
	session_changed(f, shop);
	advance(f, 1000);
	assert_int_equal(opens_of(shop), 0);
	/* A person connects it; a drop while running is reconnected like any session's. */
	int done = 0;
	assert_int_equal(sup_reconnect(f->sup, shop, reconnect_done_count, &done), 0);
	assert_int_equal(opens_of(shop), 1);
	bring_up(f, shop);
	assert_int_equal(done, 1);
	c_close(client_of(shop), WA_CLOSE_TRANSIENT, 428, 0);
	advance(f, 10);
	assert_int_equal(opens_of(shop), 2);
	bring_up(f, shop);
	assert_string_equal(last_error(f, shop), "");
	/* The switched-off primary counts again once its user turns auto-connect on, and connects. */
	assert_int_equal(store_update(f->st, off, &v, STORE_F_AUTO, (int64_t)(WALL0 + now_ms)), 0);
	session_changed(f, off);
	sup_health(f->sup, &h);
	assert_int_equal(h.total, 1);
	advance(f, 10);
	assert_int_equal(opens_of(off), 1);
}

/* ---- Rule 3 ---- */

static void
test_transient_at_once_then_backoff(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.recovery_interval_ms = 3600000;
	start(f);
	struct sup_client *c = bring_up(f, a);
	/* A working connection drops: reconnect at once. */
	c_close(c, WA_CLOSE_KEEPALIVE_TIMEOUT, 408, 0);
	sup_run(f->sup);
	assert_int_equal(opens_of(a), 2);
	/* Each further failure waits longer: between half and all of 1 s, 2 s, 4 s, ... capped at 5 min. */
	uint64_t full = 1000;
	for (int i = 0; i < 12; i++) {
		c_close(client_of(a), WA_CLOSE_TRANSIENT, 428, 0);
		if (i == 0) {
			/* last_error says when the next attempt is. */
			struct sup_session_view v;
			assert_int_equal(sup_view(f->sup, a, &v), 0);
			assert_non_null(strstr(v.last_error, "; reconnecting in "));
			assert_non_null(strstr(v.last_error, "(failure 2 in a row)"));
		}
		int before = opens_of(a);
		uint64_t t0 = now_ms;
		while (opens_of(a) == before && now_ms - t0 <= full)
			advance(f, 10);
		uint64_t waited = now_ms - t0;
		if (waited < full / 2 || waited > full + 10)
			fail_msg("failure %d: waited %llu ms, expected %llu..%llu", i + 2,
				 (unsigned long long)waited, (unsigned long long)full / 2,
				 (unsigned long long)full);
		full = full * 2 > 300000 ? 300000 : full * 2;
	}
	/* Success resets the backoff. */
	c = bring_up(f, a);
	c_close(c, WA_CLOSE_TRANSIENT, 428, 0);
	int before = opens_of(a);
	sup_run(f->sup);
	assert_int_equal(opens_of(a), before + 1);
}

static void
test_restart_required_at_once(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	start(f);
	bring_up(f, a);
	for (int i = 0; i < 3; i++) {
		c_close(client_of(a), WA_CLOSE_RESTART_REQUIRED, 515, 0);
		sup_run(f->sup);
		assert_int_equal(opens_of(a), i + 2);
	}
}

static void
test_logged_out_and_replaced_stop(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	const char *b = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.start_stagger_ms = 0;
	start(f);
	bring_up(f, a);
	bring_up(f, b);
	c_close(client_of(a), WA_CLOSE_LOGGED_OUT, 401, 0);
	c_close(client_of(b), WA_CLOSE_REPLACED, 440, 0);
	advance(f, 3 * 3600000ull); /* the monitor runs many times meanwhile */
	assert_int_equal(opens_of(a), 1);
	assert_int_equal(opens_of(b), 1);
	expect_status(f, a, "logged_out");
	expect_status(f, b, "disconnected");
	assert_non_null(strstr(last_error(f, b), "not taking it back"));
}

static void
test_temp_ban_waits_for_expiry(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	start(f);
	bring_up(f, a);
	int64_t expires = (int64_t)((WALL0 + now_ms) / 1000) + 600; /* ten minutes */
	c_close(client_of(a), WA_CLOSE_TEMP_BANNED, 402, expires);
	advance(f, 599000);
	assert_int_equal(opens_of(a), 1);
	advance(f, 1000);
	assert_int_equal(opens_of(a), 2);
}

static void
test_client_outdated_breaker(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	const char *b = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.start_stagger_ms = 0;
	start(f);
	bring_up(f, a);
	bring_up(f, b);
	c_close(client_of(a), WA_CLOSE_CLIENT_OUTDATED, 405, 0);
	/* Another session dropping for a transient reason does not reconnect either. */
	c_close(client_of(b), WA_CLOSE_TRANSIENT, 428, 0);
	advance(f, 3 * 3600000ull);
	assert_int_equal(opens_of(a), 1);
	assert_int_equal(opens_of(b), 1);
	struct sup_health h;
	sup_health(f->sup, &h);
	assert_true(h.breaker_open);
	assert_string_equal(h.status, "degraded");
	/* Both say why nothing reconnects, where the app and the dashboard look. */
	assert_non_null(strstr(last_error(f, a), "automatic reconnects are stopped"));
	assert_non_null(strstr(last_error(f, b), "automatic reconnects are stopped"));
	assert_non_null(strstr(last_error(f, b), "428"));
}

/* ---- Rule 4 ---- */

static int shutdown_done;
static void
on_shutdown(void *arg)
{
	shutdown_done++;
}

static void
test_shutdown_truthful(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	const char *b = add_session(f, "primary", 1, 1, 1, NULL);
	const char *c = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.start_stagger_ms = 0;
	start(f);
	bring_up(f, a);
	bring_up(f, b); /* c stays connecting */
	shutdown_done = 0;
	sup_shutdown(f->sup, on_shutdown, NULL);
	/* The database is truthful at once, before the sockets finish closing. */
	expect_status(f, a, "disconnected");
	expect_status(f, b, "disconnected");
	expect_status(f, c, "disconnected");
	assert_true(client_of(a)->close_requested && client_of(b)->close_requested &&
		    client_of(c)->close_requested);
	sup_run(f->sup);
	assert_int_equal(shutdown_done, 0);
	pump_closes();
	sup_run(f->sup);
	assert_int_equal(shutdown_done, 1);
	expect_status(f, a, "disconnected");
	assert_int_equal(opens_of(a), 1); /* nothing reconnects during shutdown */
}

static void
test_shutdown_grace_bounds_wait(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	start(f);
	bring_up(f, a);
	shutdown_done = 0;
	sup_shutdown(f->sup, on_shutdown, NULL);
	advance(f, f->cfg.shutdown_grace_ms - 1);
	assert_int_equal(shutdown_done, 0);
	advance(f, 1);
	assert_int_equal(shutdown_done, 1);
}

/* ---- Rule 5 ---- */

struct outcome {
	int calls, ok;
	char msg[128];
};

static void
on_outcome(void *arg, int ok, const char *msg)
{
	struct outcome *o = arg;
	o->calls++;
	o->ok = ok;
	snprintf(o->msg, sizeof(o->msg), "%s", msg);
}



static int
attempts_with(struct fx *f, const char *id, const char *trigger, const char *result)
{
	struct store_attempt *arr;
	size_t n;
	assert_int_equal(sup_flush(f->sup), 0);
	assert_int_equal(store_attempts(f->st, id, 0, 1000, &arr, &n), 0);
	int k = 0;
	for (size_t i = 0; i < n; i++)
		k += strcmp(arr[i].trigger, trigger) == 0 && (!result || strcmp(arr[i].result, result) == 0);
	store_attempts_free(arr, n);
	return k;
}

static void
test_monitor_dead_socket(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	start(f);
	struct sup_client *c = bring_up(f, a);
	c->alive = 0; /* deaf, and the client has not noticed */
	advance(f, 59999);
	assert_false(c->close_requested);
	advance(f, 1);
	assert_true(c->close_requested);
	pump_closes();
	sup_run(f->sup);
	assert_int_equal(opens_of(a), 2);
	bring_up(f, a);
	assert_int_equal(attempts_with(f, a, "monitor:dead_socket", "connected"), 1);
}

/*
 * The monitor finds a socket not alive that is in fact closing on a 440 whose
 * report has not arrived: the report wins, and the session is not taken back.
 */
static void
test_dead_socket_then_replaced(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	start(f);
	struct sup_client *c = bring_up(f, a);
	c->alive = 0; /* the stream error came; the close is on its way */
	advance(f, 60000);
	assert_true(c->close_requested);
	c_close(c, WA_CLOSE_REPLACED, 440, 0);
	advance(f, 600000);
	assert_int_equal(opens_of(a), 1);
	expect_status(f, a, "disconnected");
	assert_non_null(strstr(last_error(f, a), "replaced"));
}

static void
test_monitor_down_after_startup_retries(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.n_start_retries = 1;
	f->cfg.start_retries_ms[0] = 1000;
	f->cfg.recovery_interval_ms = 60000;
	start(f);
	c_close(client_of(a), WA_CLOSE_TRANSIENT, 428, 0);
	advance(f, 1000);
	assert_int_equal(opens_of(a), 2);
	c_close(client_of(a), WA_CLOSE_TRANSIENT, 428, 0);
	/* Retries used up: nothing until the monitor's next look, which connects it. */
	expect_status(f, a, "disconnected");
	advance(f, 58000);
	assert_int_equal(opens_of(a), 2);
	advance(f, 1000);
	assert_int_equal(opens_of(a), 3);
	bring_up(f, a);
	assert_int_equal(attempts_with(f, a, "monitor:down", "connected"), 1);
}

static void
test_monitor_stale_probe(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.stale_after_ms = 30 * 60000;
	start(f);
	struct sup_client *c = bring_up(f, a);
	/* Quiet but fresh: no probe. */
	advance(f, 29 * 60000);
	assert_int_equal(c->probes, 0);
	/* A message keeps it fresh. */
	c->cb->message(c->arg, 1700000000);
	advance(f, 29 * 60000);
	assert_int_equal(c->probes, 0);
	/* Stale: probe; an answer keeps the connection. */
	advance(f, 2 * 60000);
	assert_int_equal(c->probes, 1);
	c->cb->probe(c->arg, 1, 42);
	assert_false(c->close_requested);
	assert_int_equal(attempts_with(f, a, "probe:stale", "ok"), 1);
	/* Stale again, and the probe fails: reconnect. */
	advance(f, 31 * 60000);
	assert_int_equal(c->probes, 2);
	c->cb->probe(c->arg, 0, 0);
	assert_true(c->close_requested);
	pump_closes();
	sup_run(f->sup);
	assert_int_equal(opens_of(a), 2);
	assert_int_equal(attempts_with(f, a, "probe:stale", "failed"), 1);
	bring_up(f, a);
	assert_int_equal(attempts_with(f, a, "monitor:stale", "connected"), 1);
}

static void
test_monitor_rate_limit_and_manual(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.recovery_interval_ms = 60000;
	f->cfg.stale_after_ms = 10 * 3600000ull; /* only dead sockets until the probe part */
	start(f);
	bring_up(f, a);
	struct sup_session_view v;
	/* Recoveries that work cost nothing: four in the hour, and the fifth is still allowed. */
	for (int i = 0; i < 4; i++) {
		client_of(a)->alive = 0;
		advance(f, 60000);
		pump_closes();
		sup_run(f->sup);
		assert_int_equal(opens_of(a), i + 2);
		bring_up(f, a);
	}
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_false(v.manual_needed);
	/* Three that fail (the reconnect is refused; the backoff's retry then works) count... */
	int opens = opens_of(a);
	for (int i = 0; i < 3; i++) {
		client_of(a)->alive = 0;
		advance(f, 60000);
		pump_closes();
		sup_run(f->sup);
		assert_int_equal(opens_of(a), ++opens);
		c_close(client_of(a), WA_CLOSE_TRANSIENT, 503, 0);
		advance(f, 1000); /* the first backoff step */
		assert_int_equal(opens_of(a), ++opens);
		bring_up(f, a);
	}
	assert_int_equal(attempts_with(f, a, "monitor:dead_socket", "failed"), 3);
	/* ...and the fourth is not made: a person must decide. */
	client_of(a)->alive = 0;
	advance(f, 60000);
	assert_false(client_of(a)->close_requested);
	assert_non_null(strstr(last_error(f, a), "automatic recovery limit reached"));
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_true(v.manual_needed);
	assert_int_equal(attempts_with(f, a, "limit:dead_socket", "rate_limited"), 1);
	/* Even after the window has passed, only a manual reconnect clears it. */
	advance(f, 2 * 3600000ull);
	assert_int_equal(opens_of(a), opens);
	struct outcome o = {0};
	assert_int_equal(sup_reconnect(f->sup, a, on_outcome, &o), 0);
	pump_closes();
	sup_run(f->sup);
	assert_int_equal(opens_of(a), opens + 1);
	bring_up(f, a);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.ok, 1);
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_false(v.manual_needed);
	assert_int_equal(attempts_with(f, a, "manual", NULL), 2); /* started, connected */
	/* A fresh window: a failure right after the manual reconnect does not reach the limit. */
	client_of(a)->alive = 0;
	advance(f, 60000);
	pump_closes();
	sup_run(f->sup);
	assert_int_equal(opens_of(a), opens + 2);
	bring_up(f, a);
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_false(v.manual_needed);
}

/*
 * A network outage is no broken session: while nothing reaches WhatsApp, the
 * monitor's failed recoveries are recorded "unreachable" and do not count, so
 * a start during an outage is retried for as long as it lasts. Once another
 * session is connected, the same failures count again.
 */
static void
test_outage_does_not_burn_the_limit(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.recovery_interval_ms = 60000;
	f->cfg.start_stagger_ms = 0;
	start(f);
	/* The start and its three retries fail before reaching anything. */
	for (int i = 0; i < 4; i++) {
		c_close_net(client_of(a));
		advance(f, 45000);
	}
	assert_true(opens_of(a) >= 4);
	/* Then two hours of monitor recoveries, all unreachable: never the limit. */
	for (int i = 0; i < 120; i++) {
		advance(f, 60000);
		struct sup_client *c = client_of(a);
		if (c != NULL && !c->gone)
			c_close_net(c);
	}
	struct sup_session_view v;
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_false(v.manual_needed);
	assert_true(opens_of(a) > 100);
	assert_int_equal(attempts_with(f, a, "monitor:down", "failed"), 0);
	assert_true(attempts_with(f, a, "monitor:down", "unreachable") > 100);
	/* The network is back for another session; this one still cannot connect: now it counts. */
	const char *b = app_session(f, "primary", 1, 1, 1);
	(void)b;
	struct store_session row;
	assert_int_equal(store_get(f->st, b, &row), 0);
	store_session_free(&row);
	for (int i = 0; i < 10 && client_of(b) == NULL; i++)
		advance(f, 60000);
	bring_up(f, b);
	for (int i = 0; i < 5; i++) {
		advance(f, 60000);
		struct sup_client *c = client_of(a);
		if (c != NULL && !c->gone)
			c_close_net(c);
	}
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_true(v.manual_needed);
	assert_int_equal(attempts_with(f, a, "monitor:down", "failed"), 3);
}

/* Retention: recovery attempts and history older than WAGATE_RETENTION go; newer ones stay. */
static void
test_retention(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.retention_ms = 2 * 3600000ull;
	f->cfg.recovery_interval_ms = 3600000ull * 24;
	start(f);
	bring_up(f, a);
	int done = 0;
	assert_int_equal(sup_reconnect(f->sup, a, reconnect_done_count, &done), 0);
	pump_closes();
	sup_run(f->sup);
	bring_up(f, a); /* old: manual started, connected; history: disconnected, connecting, connected... */
	assert_int_equal(sup_flush(f->sup), 0);
	struct store_attempt *at;
	struct store_status_change *h;
	size_t n, nh_old;
	assert_int_equal(store_status_history(f->st, a, 0, 0, &h, &nh_old), 0);
	store_status_history_free(h, nh_old);
	advance(f, 3 * 3600000ull); /* past the retention, and past an hourly run */
	assert_int_equal(sup_reconnect(f->sup, a, reconnect_done_count, &done), 0);
	pump_closes();
	sup_run(f->sup);
	bring_up(f, a); /* new ones */
	advance(f, 3600000ull + 1000);
	assert_int_equal(sup_flush(f->sup), 0);
	assert_int_equal(store_attempts(f->st, a, 0, 0, &at, &n), 0);
	assert_int_equal(n, 2); /* only the new manual started + connected */
	for (size_t i = 0; i < n; i++)
		assert_true(at[i].at > (int64_t)(WALL0 + now_ms) - 2 * 3600000);
	store_attempts_free(at, n);
	assert_int_equal(store_status_history(f->st, a, 0, 0, &h, &n), 0);
	assert_true(n > 0 && n < nh_old + 3);
	for (size_t i = 0; i < n; i++)
		assert_true(h[i].at > (int64_t)(WALL0 + now_ms) - 2 * 3600000);
	store_status_history_free(h, n);
}

/* A pass that finds several sessions down reconnects them a stagger apart, not at once. */
static void
test_monitor_recoveries_staggered(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	const char *b = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.recovery_interval_ms = 60000;
	f->cfg.start_stagger_ms = 2000;
	start(f);
	advance(f, 2000);
	bring_up(f, a);
	bring_up(f, b);
	/* Both sockets die unnoticed: the next pass finds them together. */
	client_of(a)->alive = 0;
	client_of(b)->alive = 0;
	const char *ids[2] = {a, b};
	int opens[2] = {opens_of(a), opens_of(b)};
	uint64_t at[2] = {0, 0}, t = 0;
	for (int step = 0; step < 700; step++) {
		advance(f, 100);
		t += 100;
		pump_closes();
		sup_run(f->sup);
		for (int i = 0; i < 2; i++)
			if (at[i] == 0 && opens_of(ids[i]) > opens[i])
				at[i] = t;
	}
	assert_true(at[0] > 0 && at[1] > 0);
	uint64_t gap = at[0] > at[1] ? at[0] - at[1] : at[1] - at[0];
	if (gap < 2000)
		fail_msg("monitor recoveries %llu ms apart, expected at least 2000",
			 (unsigned long long)gap);
}

/* The staleness probe is no recovery: it is made even when no automatic recovery is allowed at all. */
static void
test_probe_never_limited(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.recovery_interval_ms = 60000;
	f->cfg.stale_after_ms = 60000;
	f->cfg.recovery_max = 0;
	start(f);
	struct sup_client *c = bring_up(f, a);
	advance(f, 3 * 60000);
	assert_int_equal(c->probes, 1);
	c->cb->probe(c->arg, 1, 42);
	assert_int_equal(attempts_with(f, a, "probe:stale", "ok"), 1);
	struct sup_session_view v;
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_false(v.manual_needed);
	/* A failed probe would recover: that is what the limit holds back. */
	advance(f, 3 * 60000);
	assert_int_equal(c->probes, 2);
	c->cb->probe(c->arg, 0, 0);
	assert_false(c->close_requested);
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_true(v.manual_needed);
}

static void
test_rate_limit_window_slides(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.recovery_interval_ms = 60000;
	f->cfg.recovery_max = 3;
	f->cfg.recovery_window_ms = 3600000;
	f->cfg.stale_after_ms = 10 * 3600000ull; /* only dead sockets in this test */
	start(f);
	bring_up(f, a);
	for (int i = 0; i < 2; i++) {
		client_of(a)->alive = 0;
		advance(f, 60000);
		pump_closes();
		sup_run(f->sup);
		bring_up(f, a);
	}
	/* An hour later those two have left the window: three more are allowed. */
	advance(f, 3600000);
	for (int i = 0; i < 3; i++) {
		client_of(a)->alive = 0;
		advance(f, 60000);
		pump_closes();
		sup_run(f->sup);
		bring_up(f, a);
	}
	assert_int_equal(opens_of(a), 6);
	struct sup_session_view v;
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_false(v.manual_needed);
}

/* ---- manual reconnect ---- */

static void
test_manual_reconnect_shared_and_bounded(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	const char *nocreds = add_session(f, "primary", 0, 1, 1, NULL);
	start(f);
	bring_up(f, a);
	struct outcome o1 = {0}, o2 = {0}, o3 = {0};
	assert_int_equal(sup_reconnect(f->sup, a, on_outcome, &o1), 0);
	assert_int_equal(sup_reconnect(f->sup, a, on_outcome, &o2), 0);
	pump_closes();
	sup_run(f->sup);
	assert_int_equal(opens_of(a), 2); /* two requests, one attempt */
	bring_up(f, a);
	assert_int_equal(o1.calls, 1);
	assert_int_equal(o2.calls, 1);
	assert_true(o1.ok && o2.ok);
	/* An attempt with no outcome answers after the bound. */
	assert_int_equal(sup_reconnect(f->sup, a, on_outcome, &o3), 0);
	pump_closes();
	sup_run(f->sup);
	advance(f, f->cfg.reconnect_wait_ms - 1);
	assert_int_equal(o3.calls, 0);
	advance(f, 1);
	assert_int_equal(o3.calls, 1);
	assert_false(o3.ok);
	/* An attempt that fails at once is answered at once, saying what comes next. */
	pump_closes();
	sup_run(f->sup);
	bring_up(f, a);
	struct outcome o5 = {0};
	assert_int_equal(sup_reconnect(f->sup, a, on_outcome, &o5), 0);
	pump_closes();
	sup_run(f->sup);
	assert_int_equal(o5.calls, 0);
	c_close(client_of(a), WA_CLOSE_TRANSIENT, 503, 0);
	pump_closes();
	sup_run(f->sup);
	assert_int_equal(o5.calls, 1);
	assert_false(o5.ok);
	assert_non_null(strstr(o5.msg, "next automatic attempt"));
	/* Unknown ids and sessions without credentials. */
	struct outcome o4 = {0};
	assert_int_equal(sup_reconnect(f->sup, "00000000-0000-4000-8000-000000000000", on_outcome, &o4),
			 WG_ENOTFOUND);
	assert_int_equal(sup_reconnect(f->sup, nocreds, on_outcome, &o4), 0);
	assert_int_equal(o4.calls, 1);
	assert_false(o4.ok);
	assert_non_null(strstr(o4.msg, "pair"));
}

/* ---- Rule 6 ---- */

static void
test_status_derivation(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	const char *b = add_session(f, "primary", 1, 1, 1, NULL);
	add_session(f, "primary", 0, 1, 1, NULL);  /* no credentials: not counted */
	add_session(f, "primary", 1, 0, 1, NULL);  /* inactive: not counted */
	add_session(f, "other", 1, 1, 1, NULL);    /* not primary: not counted */
	f->cfg.start_stagger_ms = 0;
	start(f);
	struct sup_health h;
	sup_health(f->sup, &h);
	assert_string_equal(h.status, "degraded");
	assert_int_equal(h.total, 2);
	assert_int_equal(h.connecting, 2);
	bring_up(f, a);
	sup_health(f->sup, &h);
	assert_string_equal(h.status, "degraded");
	assert_int_equal(h.connected, 1);
	bring_up(f, b);
	sup_health(f->sup, &h);
	assert_string_equal(h.status, "ok");
	assert_int_equal(h.connected, 2);
	assert_true(h.db_ok);
	c_close(client_of(b), WA_CLOSE_LOGGED_OUT, 401, 0);
	sup_health(f->sup, &h);
	assert_string_equal(h.status, "degraded");
	assert_int_equal(h.disconnected, 1);
}

/* ---- the observer and the status history ---- */

struct seen {
	int session, qr, gone;
	char last_id[40];
	char last_state[16];
	struct sup *sup;
};

static void
observe(void *arg, enum sup_event ev, const char *id)
{
	struct seen *s = arg;
	if (ev == SUP_EV_GONE) {
		s->gone++;
		assert_null(id);
		return;
	}
	snprintf(s->last_id, sizeof(s->last_id), "%s", id);
	if (ev == SUP_EV_QR) {
		s->qr++;
		return;
	}
	s->session++;
	/* Called after the change: the view and the row already show it. */
	struct sup_session_view v;
	assert_int_equal(sup_view(s->sup, id, &v), 0);
	snprintf(s->last_state, sizeof(s->last_state), "%s", v.state);
}

static void
test_observer_and_history(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, "connected");
	assert_int_equal(sup_new(f->st, &f->cfg, &fake_ops, NULL, &f->sup), 0);
	struct seen seen = {.sup = f->sup};
	sup_set_observer(f->sup, observe, &seen);
	/* Reconciled: connected -> disconnected, one history row; then the first connect. */
	assert_int_equal(sup_start(f->sup), 0);
	sup_run(f->sup);
	assert_int_equal(seen.session, 1);
	assert_string_equal(seen.last_id, a);
	assert_string_equal(seen.last_state, "connecting");
	struct sup_client *c = bring_up(f, a);
	assert_int_equal(seen.session, 2);
	assert_string_equal(seen.last_state, "connected");
	c_close(c, WA_CLOSE_TRANSIENT, 428, 0);
	assert_int_equal(seen.session, 3);
	assert_string_equal(seen.last_state, "waiting");
	/* The retry time is set before observers hear of the waiting state. */
	struct sup_session_view v;
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_true(v.next_retry_at > 0);
	sup_run(f->sup);
	assert_int_equal(seen.session, 4);

	struct store_status_change *h = NULL;
	size_t n = 0;
	assert_int_equal(sup_flush(f->sup), 0);
	assert_int_equal(store_status_history(f->st, a, 0, 0, &h, &n), 0);
	const char *want[] = {"disconnected", "connecting", "connected", "disconnected", "connecting"};
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(h[i].status, want[i]);
	assert_non_null(strstr(h[0].reason, "reconciled at startup"));
	assert_string_equal(h[1].reason, "start");
	assert_string_equal(h[2].reason, "open");
	assert_string_equal(h[3].reason, "connection lost: test close (transient 428); reconnecting now");
	store_status_history_free(h, n);

	/* A state change that keeps the status (waiting -> idle, both disconnected) adds no row. */
	c = client_of(a);
	c_close(c, WA_CLOSE_LOGGED_OUT, 401, 0);
	assert_int_equal(sup_flush(f->sup), 0);
	assert_int_equal(store_status_history(f->st, a, 0, 0, &h, &n), 0);
	assert_int_equal(n, 6);
	assert_string_equal(h[5].status, "logged_out");
	store_status_history_free(h, n);
	int before = seen.session;
	assert_int_equal(sup_logout(f->sup, a), 0); /* stopped again: observed, no new row */
	assert_int_equal(seen.session, before + 1);
	assert_int_equal(sup_flush(f->sup), 0);
	assert_int_equal(store_status_history(f->st, a, 0, 0, &h, &n), 0);
	assert_int_equal(n, 6);
	store_status_history_free(h, n);

	/* QR codes, and the end of the supervisor. */
	const char *p = add_session(f, "shop", 0, 1, 1, NULL);
	assert_int_equal(sup_pair(f->sup, p, NULL), 0);
	c = client_of(p);
	c->cb->qr(c->arg, "2@x,y,z,w", 60000);
	assert_int_equal(seen.qr, 1);
	assert_string_equal(seen.last_id, p);
	/* Removed only by its own arg. */
	sup_remove_observer(f->sup, &f);
	c->cb->qr(c->arg, "2@x,y,z,v", 60000);
	assert_int_equal(seen.qr, 2);
	sup_free(f->sup);
	f->sup = NULL;
	assert_int_equal(seen.gone, 1);
}


/* ---- the write-behind (the database as a converging mirror) ---- */

/*
 * The real SQLite backend with its batch writes refused while `refuse` > 0,
 * and every batch counted, to see what the supervisor writes and when.
 */
static struct {
	int refuse;
	int lists; /* reads of rows by the monitor or a listing */
	int batches, refused;
	uint64_t slow_ms; /* each write takes this long on the virtual clock */
	size_t sizes[64]; /* sessions in each batch, while nsizes < 64 */
	int nsizes;
	int message_writes;
	char poison[40]; /* a session whose changes the database refuses as invalid */
} wrap;

static int
wrap_write_batch(struct store *st, struct store_write *w, size_t n, int64_t now, size_t *gone)
{
	wrap.batches++;
	now_ms += wrap.slow_ms;
	if (wrap.nsizes < 64)
		wrap.sizes[wrap.nsizes++] = n;
	if (wrap.refuse > 0) {
		wrap.refuse--;
		wrap.refused++;
		return store__fail(st, WG_EIO, "disk I/O error (injected)");
	}
	for (size_t i = 0; i < n; i++)
		if (wrap.poison[0] && strcmp(w[i].id, wrap.poison) == 0)
			return store__fail(st, WG_EINVAL, "CHECK constraint failed (injected)");
	for (size_t i = 0; i < n; i++)
		wrap.message_writes += (w[i].fields & STORE_F_MESSAGE_AT) != 0;
	return store_sqlite_backend.write_batch(st, w, n, now, gone);
}

static int
wrap_list(struct store *st, const struct store_filter *f, struct store_session **out, size_t *n)
{
	wrap.lists++;
	return store_sqlite_backend.list(st, f, out, n);
}

static struct store_backend wrap_backend;

/* Reopens the fixture's database through the wrapping backend. */
static void
use_wrap(struct fx *f)
{
	store_close(f->st);
	wrap_backend = store_sqlite_backend;
	wrap_backend.name = "wrapped sqlite";
	wrap_backend.write_batch = wrap_write_batch;
	wrap_backend.list = wrap_list;
	memset(&wrap, 0, sizeof(wrap));
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/db.sqlite", f->dir);
	assert_int_equal(store_open_backend(&wrap_backend, path, &f->st, err, sizeof(err)), 0);
}

static void
test_write_behind_converges_after_failures(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	use_wrap(f);
	f->cfg.recovery_interval_ms = 60000;
	start(f);
	/* From here the database refuses every write for a while. */
	wrap.refuse = 1000;
	struct sup_client *c = client_of(a);
	c_open(c);
	c_close(c, WA_CLOSE_TRANSIENT, 428, 0);
	sup_run(f->sup);
	bring_up_quiet(client_of(a));
	client_of(a)->alive = 0; /* deaf: the monitor recovers it */
	advance(f, 60000);
	pump_closes();
	sup_run(f->sup);
	bring_up_quiet(client_of(a));
	advance(f, 5000);
	assert_true(wrap.refused >= 3);
	/* Memory is right, /health says why the database is not. */
	struct sup_health h;
	sup_health(f->sup, &h);
	assert_string_equal(h.status, "error");
	assert_non_null(h.db_error);
	assert_non_null(strstr(h.db_error, "injected"));
	assert_int_equal(h.connected, 1);
	assert_true(h.db_pending >= 1);
	struct store_session row;
	assert_int_equal(store_get(f->st, a, &row), 0);
	assert_string_equal(row.connection_status, ""); /* the row lags: never written yet */
	store_session_free(&row);
	/* Retried with backoff: a few tries in a minute, not one per event. */
	int tries = wrap.batches;
	advance(f, 60000);
	assert_true(wrap.batches - tries <= 8);
	assert_true(wrap.batches - tries >= 1);

	/* The database takes writes again: within the retry interval, the row equals memory. */
	wrap.refuse = 0;
	advance(f, 10000);
	sup_health(f->sup, &h);
	assert_string_equal(h.status, "ok");
	assert_int_equal(h.db_pending, 0);
	struct sup_session_view v;
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_int_equal(store_get(f->st, a, &row), 0);
	assert_string_equal(row.connection_status, "connected");
	assert_string_equal(row.connection_status, v.status);
	assert_int_equal(row.last_connected_at, v.last_connected_at);
	assert_null(row.last_error);
	store_session_free(&row);
	/* Every status change once, in order: no gap, no duplicate. */
	struct store_status_change *hist = NULL;
	size_t n = 0;
	assert_int_equal(store_status_history(f->st, a, 0, 0, &hist, &n), 0);
	const char *want[] = {"connecting", "connected", "disconnected", "connecting",
			      "connected", "disconnected", "connecting", "connected"};
	assert_int_equal(n, 8);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(hist[i].status, want[i]);
		if (i > 0)
			assert_true(hist[i].at >= hist[i - 1].at);
	}
	store_status_history_free(hist, n);
	/* Every recovery attempt is there. */
	assert_int_equal(attempts_with(f, a, "close:transient", "connected"), 1);
	assert_int_equal(attempts_with(f, a, "monitor:dead_socket", "connected"), 1);
}

static void
test_message_at_coalesced(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	use_wrap(f);
	f->cfg.message_at_interval_ms = 5000;
	f->cfg.recovery_interval_ms = 3600000;
	start(f);
	struct sup_client *c = bring_up(f, a);
	advance(f, 1000);
	int batches = wrap.batches;
	/* A hundred messages within a second: no write of their own. */
	int64_t last = 0;
	for (int i = 0; i < 100; i++) {
		c->cb->message(c->arg, 0);
		last = (int64_t)(WALL0 + now_ms);
		advance(f, 10);
	}
	assert_int_equal(wrap.message_writes, 0);
	assert_int_equal(wrap.batches, batches);
	/* One write once the interval has passed, with the newest time. */
	advance(f, 5000);
	assert_int_equal(wrap.message_writes, 1);
	struct store_session row;
	assert_int_equal(store_get(f->st, a, &row), 0);
	struct sup_session_view v;
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_int_equal(row.last_message_at, v.last_message_at);
	assert_int_equal(row.last_message_at, last);
	store_session_free(&row);
	/* A message just before a shutdown is not lost. */
	c->cb->message(c->arg, 0);
	int64_t t = (int64_t)(WALL0 + now_ms);
	sup_shutdown(f->sup, on_shutdown, NULL);
	pump_closes();
	sup_run(f->sup);
	assert_int_equal(store_get(f->st, a, &row), 0);
	assert_int_equal(row.last_message_at, t);
	store_session_free(&row);
}

static void
test_paced_starts(void **state)
{
	struct fx *f = *state;
	enum { N = 200 };
	for (int i = 0; i < N; i++)
		add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.start_stagger_ms = 0; /* all due at once: only the pacing limits them */
	f->cfg.start_burst = 8;
	f->cfg.max_handshakes = 20;
	f->cfg.recovery_interval_ms = 3600000;
	assert_int_equal(sup_new(f->st, &f->cfg, &fake_ops, NULL, &f->sup), 0);
	assert_int_equal(sup_start(f->sup), 0);
	/* One loop turn starts at most a burst. */
	uint64_t next = sup_run(f->sup);
	assert_int_equal(fake.n, 8);
	assert_int_equal(next, now_ms); /* the rest in the next turn, not now */
	sup_run(f->sup);
	sup_run(f->sup);
	assert_int_equal(fake.n, 20);
	/* No more than max_handshakes logins in flight, however often it runs. */
	for (int i = 0; i < 10; i++)
		sup_run(f->sup);
	assert_int_equal(fake.n, 20);
	struct sup_health h;
	sup_health(f->sup, &h);
	assert_int_equal(h.handshakes, 20);
	/* As logins end, more start, until all are up. */
	int opened = 0;
	while (opened < N) {
		int k = fake.n;
		for (int i = opened; i < k; i++)
			c_open(fake.c[i]);
		opened = k;
		for (int i = 0; i < 4; i++)
			sup_run(f->sup);
		sup_health(f->sup, &h);
		assert_true(h.handshakes <= 20);
		assert_true(fake.n - opened <= 20);
	}
	assert_int_equal(fake.n, N);
	sup_health(f->sup, &h);
	assert_int_equal(h.connected, N);
	assert_string_equal(h.status, "ok");
}

static void
test_rows_written_by_others(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	use_wrap(f);
	f->cfg.recovery_interval_ms = 60000;
	f->cfg.monitor_slice = 2; /* several slices per pass */
	f->cfg.watch_interval_ms = 0; /* the monitor alone (the watch has its own test) */
	start(f);
	bring_up(f, a);
	/* Nobody else wrote: a pass applies the rules from memory, with no read. */
	int lists = wrap.lists;
	advance(f, 60000);
	for (int i = 0; i < 5; i++)
		sup_run(f->sup);
	assert_int_equal(wrap.lists, lists);
	/* The web app inserts a row with credentials, and switches the first session off. */
	const char *b = app_session(f, "primary", 1, 1, 1);
	struct store_session v;
	memset(&v, 0, sizeof(v));
	v.is_active = 0;
	assert_int_equal(store_update(f->app, a, &v, STORE_F_ACTIVE, (int64_t)(WALL0 + now_ms)), 0);
	for (int i = 0; i < 3; i++)
		app_session(f, "secondary", 0, 1, 1);
	advance(f, 60000);
	for (int i = 0; i < 5; i++)
		sup_run(f->sup);
	/* Within one monitor pass, which read the rows: the new one connects, the switched-off one is closed. */
	assert_true(wrap.lists > lists);
	assert_int_equal(opens_of(b), 1);
	assert_true(client_of(a)->close_requested);
	pump_closes();
	sup_run(f->sup);
	expect_status(f, a, "disconnected");
	bring_up(f, b);
	struct sup_health h;
	sup_health(f->sup, &h);
	assert_int_equal(h.total, 1); /* the switched-off one is not counted */
	assert_int_equal(h.connected, 1);
	/* A pass over memory alone still applies the rules: a dead socket is recovered. */
	lists = wrap.lists;
	client_of(b)->alive = 0;
	advance(f, 60000);
	for (int i = 0; i < 5; i++)
		sup_run(f->sup);
	assert_int_equal(wrap.lists, lists);
	assert_true(client_of(b)->close_requested);
	pump_closes();
	sup_run(f->sup);
	bring_up(f, b);
	/* A row deleted by someone else: closed and forgotten after the next pass. */
	assert_int_equal(store_delete(f->app, b), 0);
	advance(f, 60000);
	for (int i = 0; i < 5; i++)
		sup_run(f->sup);
	assert_true(client_of(b)->close_requested);
	pump_closes();
	sup_run(f->sup);
	struct sup_session_view view;
	assert_int_equal(sup_view(f->sup, b, &view), WG_ENOTFOUND);
	sup_health(f->sup, &h);
	assert_int_equal(h.total, 0);
}


/*
 * The watch: what the web app writes is acted on within a second, not at the
 * monitor's interval; when nobody writes, each look is one empty read.
 */
static void
test_watch_sees_app_writes_within_a_second(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	use_wrap(f);
	f->cfg.recovery_interval_ms = 3600000; /* the monitor stays out of it */
	f->cfg.watch_interval_ms = 1000;
	start(f);
	bring_up(f, a);
	/* Our own writes read back change nothing. */
	advance(f, 5000);
	assert_int_equal(opens_of(a), 1);
	assert_false(client_of(a)->close_requested);
	/* The app inserts a paired primary: connected within a second. */
	now_ms += 10;
	const char *b = app_session(f, "primary", 1, 1, 1);
	advance(f, 1000);
	assert_int_equal(opens_of(b), 1);
	bring_up(f, b);
	/* The app switches the first off: closed within a second, and left alone. */
	struct store_session v;
	memset(&v, 0, sizeof(v));
	v.is_active = 0;
	now_ms += 10;
	assert_int_equal(store_update(f->app, a, &v, STORE_F_ACTIVE, (int64_t)(WALL0 + now_ms)), 0);
	advance(f, 1000);
	assert_true(client_of(a)->close_requested);
	pump_closes();
	sup_run(f->sup);
	expect_status(f, a, "disconnected");
	/* And on again: connected within a second. */
	v.is_active = 1;
	now_ms += 10;
	assert_int_equal(store_update(f->app, a, &v, STORE_F_ACTIVE, (int64_t)(WALL0 + now_ms)), 0);
	advance(f, 1000);
	assert_int_equal(opens_of(a), 2);
	/* Quiet: one read a second, each finding nothing (no row taken in). */
	bring_up(f, a);
	advance(f, 2000);
	int lists = wrap.lists;
	advance(f, 10000);
	assert_true(wrap.lists - lists <= 11);
	assert_int_equal(opens_of(a), 2);
	assert_int_equal(opens_of(b), 1);
}

/* One session whose changes the database refuses (a constraint of the web app's) holds back no other. */
static void
test_refused_changes_do_not_block_others(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	const char *b = add_session(f, "primary", 1, 1, 1, NULL);
	use_wrap(f);
	f->cfg.start_stagger_ms = 0;
	f->cfg.recovery_interval_ms = 3600000;
	start(f);
	snprintf(wrap.poison, sizeof(wrap.poison), "%s", a);
	bring_up_quiet(client_of(a));
	bring_up_quiet(client_of(b));
	advance(f, 1000);
	struct sup_health h;
	sup_health(f->sup, &h);
	assert_string_equal(h.status, "ok");
	assert_int_equal(h.db_pending, 0);
	struct store_session row;
	assert_int_equal(store_get(f->st, b, &row), 0);
	assert_string_equal(row.connection_status, "connected");
	store_session_free(&row);
	assert_int_equal(store_get(f->st, a, &row), 0);
	assert_string_equal(row.connection_status, ""); /* refused, dropped, logged */
	store_session_free(&row);
}



/* The batch adapts to what a write costs: slow writes halve it (to 8), fast full ones double it (to 64). */
static void
test_write_batch_adapts(void **state)
{
	struct fx *f = *state;
	enum { N = 100 };
	const char *ids[N];
	static char keep[N][40];
	for (int i = 0; i < N; i++) {
		snprintf(keep[i], sizeof(keep[i]), "%s", add_session(f, "secondary", 1, 1, 0, NULL));
		ids[i] = keep[i];
	}
	use_wrap(f);
	f->cfg.recovery_interval_ms = 3600000;
	start(f);
	wrap.nsizes = 0;
	wrap.slow_ms = 10;
	for (int i = 0; i < N; i++)
		assert_int_equal(sup_logout(f->sup, ids[i]), 0);
	advance(f, 1000);
	static const size_t slow[] = {64, 32, 4};
	assert_int_equal(wrap.nsizes, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wrap.sizes[i], slow[i]);
	/* Fast again: 8, then doubling while the batches are full. */
	wrap.nsizes = 0;
	wrap.slow_ms = 0;
	for (int i = 0; i < N; i++)
		assert_int_equal(sup_logout(f->sup, ids[i]), 0);
	advance(f, 1000);
	static const size_t fast[] = {8, 16, 32, 44};
	assert_true(wrap.nsizes >= 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(wrap.sizes[i], fast[i]);
	struct sup_health h;
	sup_health(f->sup, &h);
	assert_int_equal(h.db_pending, 0);
}

/*
 * The writer thread, for real: a libevent loop, the real clock, and another
 * connection (the web app's) holding the write lock past the writer's wait.
 * Memory answers at once throughout; the row follows once the lock is gone,
 * with every status change and attempt, in order, once.
 */
static void
run_until(struct event_base *base, struct fx *f, const char *id, const char *status, int ms)
{
	for (int waited = 0; waited < ms; waited += 10) {
		struct store_session row;
		assert_int_equal(store_get(f->app, id, &row), 0);
		int ok = strcmp(row.connection_status, status) == 0;
		store_session_free(&row);
		if (ok)
			return;
		struct timeval tv = {0, 10000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	fail_msg("the row of %s did not become %s within %d ms", id, status, ms);
}

/* A supervisor on a real loop with its writer and reader threads, as serve runs it; not started. */
static struct event_base *
start_threaded(struct fx *f)
{
	struct event_base *base = event_base_new();
	assert_int_equal(sup_new(f->st, &f->cfg, &fake_ops, NULL, &f->sup), 0);
	sup_attach(f->sup, base);
	char url[128], err[256];
	snprintf(url, sizeof(url), "sqlite:%s/db.sqlite", f->dir);
	assert_int_equal(sup_use_writer(f->sup, url, err, sizeof(err)), 0);
	return base;
}

/* Runs the loop until the session has a client: its credentials were read (on the reader's thread). */
static struct sup_client *
run_until_client(struct event_base *base, const char *id, int ms)
{
	for (int waited = 0; waited < ms; waited += 10) {
		struct sup_client *c = client_of(id);
		if (c != NULL)
			return c;
		struct timeval tv = {0, 10000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	fail_msg("no client for %s within %d ms", id, ms);
	return NULL;
}

static void
test_writer_thread(void **state)
{
	struct fx *f = *state;
	wg_clock_set(NULL, NULL);
	wg_wall_clock_set(NULL, NULL);
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.start_stagger_ms = 0;
	f->cfg.recovery_interval_ms = 3600000;
	struct event_base *base = start_threaded(f);
	assert_int_equal(sup_start(f->sup), 0);
	/*
	 * The start's connect reads the credentials on the reader's thread: no
	 * client yet (its answer comes through the loop), though the session
	 * shows connecting; then the client opens with what was read.
	 */
	assert_int_equal(fake.n, 0);
	struct sup_session_view v0;
	assert_int_equal(sup_view(f->sup, a, &v0), 0);
	assert_string_equal(v0.status, "connecting");
	assert_string_equal(v0.state, "connecting");
	struct sup_client *c0 = run_until_client(base, a, 2000);
	assert_true(c0->has_auth);
	run_until(base, f, a, "connecting", 2000);
	c_open(c0);
	run_until(base, f, a, "connected", 2000);

	/* The web app holds the write lock: writes wait, then fail; /health says so. */
	char path[128];
	snprintf(path, sizeof(path), "%s/db.sqlite", f->dir);
	sqlite3 *app;
	assert_int_equal(sqlite3_open(path, &app), SQLITE_OK);
	assert_int_equal(sqlite3_exec(app, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	c_close(client_of(a), WA_CLOSE_TRANSIENT, 428, 0); /* dropped: reconnect at once */
	struct sup_health h;
	for (int i = 0; i < 300; i++) {
		struct timeval tv = {0, 10000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		sup_health(f->sup, &h);
		if (!h.db_ok)
			break;
	}
	assert_false(h.db_ok);
	assert_non_null(h.db_error);
	/* Memory is the truth meanwhile: the reconnect goes on (reading does not need the write lock) and opens. */
	struct sup_client *c = run_until_client(base, a, 2000);
	c_open(c);
	struct sup_session_view v;
	assert_int_equal(sup_view(f->sup, a, &v), 0);
	assert_string_equal(v.status, "connected");
	/* The lock goes: the row catches up, and /health with it. */
	assert_int_equal(sqlite3_exec(app, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(app);
	for (int i = 0; i < 300; i++) {
		struct timeval tv = {0, 10000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		sup_health(f->sup, &h);
		if (h.db_ok && h.db_pending == 0)
			break;
	}
	assert_true(h.db_ok);
	assert_int_equal(h.db_pending, 0);
	run_until(base, f, a, "connected", 2000);
	struct store_status_change *hist;
	size_t n;
	assert_int_equal(store_status_history(f->app, a, 0, 0, &hist, &n), 0);
	const char *want[] = {"connecting", "connected", "disconnected", "connecting", "connected"};
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(hist[i].status, want[i]);
	store_status_history_free(hist, n);
	assert_int_equal(attempts_with(f, a, "close:transient", "connected"), 1);
	/* Shutdown writes what is left through the loop's connection once the writer is idle. */
	sup_free(f->sup);
	f->sup = NULL;
	event_base_free(base);
}

/*
 * With the reader (as serve runs), a session's earlier failed recoveries are
 * read off the loop, and the first recovery decision waits for them: with
 * `earlier` of them already in the window (an earlier process recorded them),
 * a dead socket is recovered only while they leave room under the limit.
 */
static void
dead_socket_with_earlier(struct fx *f, int earlier, bool want_recovered)
{
	wg_clock_set(NULL, NULL);
	wg_wall_clock_set(NULL, NULL);
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	for (int i = 0; i < earlier; i++) {
		struct store_attempt at;
		memset(&at, 0, sizeof(at));
		snprintf(at.session_id, sizeof(at.session_id), "%s", a);
		at.at = (int64_t)wg_wall_ms() - 60000 * (i + 1);
		snprintf(at.trigger, sizeof(at.trigger), "monitor:down");
		snprintf(at.action, sizeof(at.action), "reconnect");
		snprintf(at.result, sizeof(at.result), "failed");
		assert_int_equal(store_add_attempt(f->app, &at), 0);
	}
	f->cfg.start_stagger_ms = 0;
	f->cfg.recovery_max = 3;
	f->cfg.recovery_interval_ms = 100;
	f->cfg.stale_after_ms = 10 * 3600000ull;
	struct event_base *base = start_threaded(f);
	assert_int_equal(sup_start(f->sup), 0);
	struct sup_client *c = run_until_client(base, a, 2000);
	c_open(c);
	run_until(base, f, a, "connected", 2000);
	/* The socket dies silently: the monitor's next pass finds it. */
	c->alive = 0;
	struct sup_session_view v;
	bool decided = false;
	for (int i = 0; i < 300 && !decided; i++) {
		struct timeval tv = {0, 10000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		assert_int_equal(sup_view(f->sup, a, &v), 0);
		decided = c->close_requested || v.manual_needed;
	}
	assert_true(decided);
	assert_int_equal(c->close_requested, want_recovered);
	assert_int_equal(v.manual_needed, !want_recovered);
	if (!want_recovered)
		assert_int_equal(attempts_with(f, a, "limit:dead_socket", "rate_limited"), 1);
	sup_free(f->sup);
	f->sup = NULL;
	event_base_free(base);
}

static void
test_reader_reads_earlier_recoveries(void **state)
{
	dead_socket_with_earlier(*state, 3, false);
}


/* A call that holds the reader's thread until the test lets it go. */
static sem_t reader_gate;
static void
gate_run(struct store *st, struct sup_call *c)
{
	(void)st;
	(void)c;
	sem_wait(&reader_gate);
}
static void
gate_done(struct sup_call *c)
{
	(void)c;
}

/*
 * n paired sessions all due at once on a real loop, started 4 a turn, with the
 * reader's thread held by a gate: their reads wait until the test opens it.
 */
static struct event_base *
start_gated(struct fx *f, int n)
{
	wg_clock_set(NULL, NULL);
	wg_wall_clock_set(NULL, NULL);
	for (int i = 0; i < n; i++)
		add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.start_stagger_ms = 0;
	f->cfg.start_burst = 4;
	f->cfg.max_handshakes = (unsigned)n;
	f->cfg.recovery_interval_ms = 3600000;
	struct event_base *base = start_threaded(f);
	assert_int_equal(sem_init(&reader_gate, 0, 0), 0);
	static struct sup_call gate = {.run = gate_run, .done = gate_done};
	sup_call(f->sup, &gate);
	assert_int_equal(sup_start(f->sup), 0);
	return base;
}

static void
stop_gated(struct fx *f, struct event_base *base)
{
	sup_free(f->sup);
	f->sup = NULL;
	event_base_free(base);
	sem_destroy(&reader_gate);
}

/*
 * A read batch that comes back connects at most start_burst of its sessions
 * per loop turn: each connect parses the credentials and opens a socket, and
 * sixteen in one turn held the loop for 16 ms.
 */
static void
test_reader_paced_connects(void **state)
{
	struct fx *f = *state;
	enum { N = 16 };
	/* The reader is busy: every start's read waits, and they come back as one batch. */
	struct event_base *base = start_gated(f, N);
	for (int i = 0; i < 20; i++) {
		struct timeval tv = {0, 5000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	assert_int_equal(fake.n, 0);
	sem_post(&reader_gate);
	/* One loop turn at a time: never more than the burst connected in one. */
	int turns = 0, before = 0;
	while (fake.n < N && turns < 1000) {
		event_base_loop(base, EVLOOP_ONCE);
		assert_true(fake.n - before <= 4);
		before = fake.n;
		turns++;
	}
	assert_int_equal(fake.n, N);
	assert_true(turns >= N / 4);
	stop_gated(f, base);
}

/*
 * The connects of a batch start more reads (a connect runs the due starts):
 * those wait for the batch to be done, so a second batch that comes back
 * first cannot take the first one's place and leave its last sessions
 * reading for ever (seen at 10,000 sessions 1 ms apart: four stuck).
 */
static void
test_reader_batches_do_not_overlap(void **state)
{
	struct fx *f = *state;
	enum { N = 200 };
	struct event_base *base = start_gated(f, N);
	/* Three turns of starts wait for the reader: the first batch will have 12, with 188 still due. */
	for (int i = 0; i < 2; i++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(fake.n, 0);
	/*
	 * Opens slow enough (each batch's first step starts the next batch's
	 * reads) that a batch read meanwhile is back before the first one's next turn.
	 */
	slow_open_us = 3000;
	sem_post(&reader_gate);
	for (int turns = 0; fake.n < N && turns < 2000; turns++) {
		struct timeval tv = {0, 1000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	slow_open_us = 0;
	assert_int_equal(fake.n, N);
	stop_gated(f, base);
}

static void
test_reader_room_under_the_limit(void **state)
{
	dead_socket_with_earlier(*state, 2, true);
}

/* The next open of session a: after at least lo ms (none before), and at most hi ms. */
static void
expect_reopen_between(struct fx *f, const char *a, uint64_t lo, uint64_t hi)
{
	int before = opens_of(a);
	if (lo > 0) {
		advance(f, lo - 1);
		assert_int_equal(opens_of(a), before);
	}
	advance(f, hi - (lo > 0 ? lo - 1 : 0));
	assert_int_equal(opens_of(a), before + 1);
}

/*
 * Flapping: a session that logs in and is dropped again at once backs off
 * like one that cannot connect (1, 2, 4, 8 s... with equal jitter: between
 * half and all of each), and says so; a connection that lasted
 * stable_after_ms is a success: its drop reconnects at once and the count
 * starts over.
 */
static void
test_flapping_backs_off(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.start_stagger_ms = 0;
	f->cfg.stable_after_ms = 60000;
	start(f);
	bring_up(f, a);
	/* A minute up, then a drop: back at once. */
	advance(f, 60000);
	c_close(client_of(a), WA_CLOSE_TRANSIENT, 428, 0);
	expect_reopen_between(f, a, 0, 1);
	bring_up(f, a);
	/* Dropped again right after each login: the waits grow. */
	uint64_t d = 1000;
	for (int i = 0; i < 6; i++, d *= 2) {
		c_close(client_of(a), WA_CLOSE_TRANSIENT, 428, 0);
		assert_non_null(strstr(last_error(f, a), "flapping"));
		expect_reopen_between(f, a, d / 2, d);
		bring_up(f, a);
	}
	/* It stays up a minute: a success. The next drop reconnects at once, and says nothing of flapping. */
	advance(f, 60000);
	c_close(client_of(a), WA_CLOSE_TRANSIENT, 428, 0);
	assert_null(strstr(last_error(f, a), "flapping"));
	expect_reopen_between(f, a, 0, 1);
	/* Twenty seconds of logins dropped at once: a handful (at most 0.5 + 1 + 2 + 4 + 8 s apart), not hundreds. */
	int before = opens_of(a);
	for (int t = 0; t < 20000; t += 10) {
		struct sup_client *c = client_of(a);
		if (c != NULL && !c->alive && !c->gone) {
			c_open(c);
			c_close(c, WA_CLOSE_TRANSIENT, 428, 0);
		}
		advance(f, 10);
	}
	assert_true(opens_of(a) - before <= 6);
	assert_true(opens_of(a) - before >= 4);
	/* A person reconnects it: the backoff starts over, so its next drop is retried at once. */
	struct sup_client *c = client_of(a);
	if (c != NULL && !c->alive && !c->gone) {
		c_open(c);
		c_close(c, WA_CLOSE_TRANSIENT, 428, 0);
	}
	int done = 0;
	assert_int_equal(sup_reconnect(f->sup, a, reconnect_done_count, &done), 0);
	advance(f, 1);
	bring_up(f, a);
	c_close(client_of(a), WA_CLOSE_TRANSIENT, 428, 0);
	expect_reopen_between(f, a, 0, 1);
}

/* A restart asked for after every login (515): the first at once, then backing off. */
static void
test_restart_required_every_login_backs_off(void **state)
{
	struct fx *f = *state;
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	f->cfg.start_stagger_ms = 0;
	f->cfg.stable_after_ms = 60000;
	start(f);
	bring_up(f, a);
	c_close(client_of(a), WA_CLOSE_RESTART_REQUIRED, 515, 0);
	expect_reopen_between(f, a, 0, 1);
	bring_up(f, a);
	uint64_t d = 1000;
	for (int i = 0; i < 5; i++, d *= 2) {
		c_close(client_of(a), WA_CLOSE_RESTART_REQUIRED, 515, 0);
		assert_non_null(strstr(last_error(f, a), "flapping"));
		expect_reopen_between(f, a, d / 2, d);
		bring_up(f, a);
	}
	/* After a minute up, the server's restart is honoured at once again. */
	advance(f, 60000);
	c_close(client_of(a), WA_CLOSE_RESTART_REQUIRED, 515, 0);
	expect_reopen_between(f, a, 0, 1);
}

/* ---- the listing order, from memory ---- */

struct listed {
	char ids[32][40];
	char names[32][16];
	size_t n;
};

static int
take(void *arg, const struct sup_session_view *v)
{
	struct listed *s = arg;
	assert_true(s->n < 32);
	snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", v->id);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", v->session_name ? v->session_name : "");
	s->n++;
	return 0;
}

static size_t
index_of(const struct listed *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->ids[i], id) == 0)
			return i;
	return SIZE_MAX;
}

/*
 * Every session in creation order, in slices that resume from a key: sessions
 * added (by the web app, older or newer than the cursor) or deleted between
 * slices never make a listing skip or repeat another. The user's columns come
 * along, and updatedAt is the row's after a write.
 */
static void
test_listing_order_from_memory(void **state)
{
	struct fx *f = *state;
	const char *ids[6];
	for (int i = 0; i < 6; i++)
		ids[i] = add_session(f, i % 2 ? "secondary" : "primary", 0, 1, 0, NULL);
	f->cfg.recovery_interval_ms = 60000;
	start(f);
	assert_int_equal(sup_count(f->sup), 6);
	struct listed all = {0};
	struct sup_cursor cur = {0};
	assert_int_equal(sup_list(f->sup, &cur, SIZE_MAX, take, &all), 0);
	assert_int_equal(all.n, 6);
	for (int i = 0; i < 6; i++) {
		assert_string_equal(all.ids[i], ids[i]);
		assert_string_equal(all.names[i], i % 2 ? "secondary" : "primary");
	}

	/* Two at a time; between the slices the app inserts and deletes rows. */
	struct listed got = {0};
	memset(&cur, 0, sizeof(cur));
	assert_int_equal(sup_list(f->sup, &cur, 2, take, &got), 1);
	assert_int_equal(got.n, 2);
	/* An older row (before the cursor: not in this listing), a newer one (after: in it). */
	struct store_session old;
	store_session_init(&old);
	old.created_at = (int64_t)WALL0 - 3600000;
	old.updated_at = old.created_at;
	assert_int_equal(store_insert(f->app, &old), 0);
	free(old.session_name);
	const char *newer = app_session(f, "late", 0, 1, 0);
	assert_int_equal(store_delete(f->app, ids[0]), 0); /* already listed */
	assert_int_equal(store_delete(f->app, ids[3]), 0); /* not yet listed */
	advance(f, 60000);
	for (int i = 0; i < 5; i++)
		sup_run(f->sup);
	while (sup_list(f->sup, &cur, 2, take, &got))
		;
	/* ids[0], ids[1] from the first slice; then 2, 4, 5 and the newer one; never the old one. */
	assert_int_equal(got.n, 6);
	assert_string_equal(got.ids[0], ids[0]);
	assert_string_equal(got.ids[1], ids[1]);
	assert_string_equal(got.ids[2], ids[2]);
	assert_string_equal(got.ids[3], ids[4]);
	assert_string_equal(got.ids[4], ids[5]);
	assert_string_equal(got.ids[5], newer);
	assert_int_equal(index_of(&got, old.id), SIZE_MAX);
	/* A fresh listing starts with the old row (inserted in the middle of the order, not appended). */
	struct listed fresh = {0};
	memset(&cur, 0, sizeof(cur));
	assert_int_equal(sup_list(f->sup, &cur, SIZE_MAX, take, &fresh), 0);
	assert_int_equal(fresh.n, 6);
	assert_string_equal(fresh.ids[0], old.id);
	assert_string_equal(fresh.names[5], "late");
	assert_int_equal(sup_count(f->sup), 6);

	/* After a write-behind flush, updatedAt in memory is the row's. */
	assert_int_equal(sup_logout(f->sup, ids[2]), 0);
	advance(f, 1000);
	assert_int_equal(sup_flush(f->sup), 0);
	struct store_session row;
	assert_int_equal(store_get(f->st, ids[2], &row), 0);
	struct sup_session_view v;
	assert_int_equal(sup_view(f->sup, ids[2], &v), 0);
	assert_int_equal(v.updated_at, row.updated_at);
	assert_int_equal(v.created_at, row.created_at);
	assert_string_equal(v.session_name, row.session_name);
	store_session_free(&row);
}

/* ---- several nodes: leases (docs/cluster.md) ---- */

/*
 * The database's side of leases, as the test says: the SQLite backend with
 * lease calls the test controls. grant: the ids the next rounds say this node
 * holds; fail: rounds fail; fenced: ids whose writes the database refuses.
 */
static struct {
	const char *grant[8];
	int ngrant;
	int fail;
	const char *fenced;
	int rounds;
	unsigned last_claim_max;
	size_t last_release;
} fl;

static int
fl_round(struct store *st, struct store_lease_round *r)
{
	fl.rounds++;
	fl.last_claim_max = r->claim_max;
	fl.last_release = r->nrelease;
	if (fl.fail)
		return store__fail(st, WG_EIO, "postgres: lease round: no answer in time");
	int n = r->claim_max ? fl.ngrant : 0;
	r->held = n ? calloc((size_t)n, sizeof(*r->held)) : NULL;
	for (int i = 0; i < n; i++) {
		snprintf(r->held[i].session_id, sizeof(r->held[i].session_id), "%s", fl.grant[i]);
		r->held[i].token = 7;
		snprintf(r->held[i].owner, sizeof(r->held[i].owner), "%s", r->node);
	}
	r->nheld = (size_t)n;
	r->runnable = (unsigned)fl.ngrant;
	r->share = (unsigned)fl.ngrant;
	return 0;
}

static int
fl_write_batch(struct store *st, struct store_write *w, size_t n, int64_t now, size_t *gone)
{
	/* The fenced one is skipped, as PostgreSQL skips a write whose token lost; the rest go to SQLite. */
	struct store_write *keep = calloc(n ? n : 1, sizeof(*keep));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(w[i].token, 7);
		assert_string_equal(w[i].owner, "n1");
		if (fl.fenced && strcmp(w[i].id, fl.fenced) == 0)
			w[i].fenced = true;
		else
			keep[k++] = w[i];
	}
	int rc = store_sqlite_backend.write_batch(st, keep, k, now, gone);
	free(keep);
	return rc;
}

static struct store_backend fl_backend;

/* The fixture's stores, reopened on the backend with leases; the supervisor is node n1. */
static void
use_leases(struct fx *f, uint64_t ttl_ms)
{
	memset(&fl, 0, sizeof(fl));
	fl_backend = store_sqlite_backend;
	fl_backend.name = "sqlite with test leases";
	fl_backend.lease_round = fl_round;
	fl_backend.write_batch = fl_write_batch;
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/db.sqlite", f->dir);
	store_close(f->st);
	assert_int_equal(store_open_backend(&fl_backend, path, &f->st, err, sizeof(err)), 0);
	snprintf(f->cfg.node_id, sizeof(f->cfg.node_id), "n1");
	f->cfg.lease_ttl_ms = ttl_ms;
	f->cfg.start_stagger_ms = 100;
	f->cfg.recovery_interval_ms = 3600000;
	f->cfg.watch_interval_ms = 0;
}

/* Nothing connects before its lease; the first round only registers; leases gained start in stagger slots. */
static void
test_leases_gate_connects(void **state)
{
	struct fx *f = *state;
	use_leases(f, 9000);
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	const char *b = add_session(f, "primary", 1, 1, 1, NULL);
	const char *c = add_session(f, "primary", 1, 1, 1, NULL);
	fl.grant[0] = a;
	fl.grant[1] = b;
	fl.ngrant = 2; /* c is another node's */
	start(f);
	assert_int_equal(fl.rounds, 1);
	assert_int_equal(fl.last_claim_max, 0); /* registers only: peers starting too get their share */
	assert_int_equal(fake.n, 0);
	struct sup_health h;
	sup_health(f->sup, &h);
	assert_int_equal(h.total, 0); /* /health answers for this node: it holds nothing yet */
	advance(f, 1999);
	assert_int_equal(fake.n, 0);
	advance(f, 1);
	assert_int_equal(fl.rounds, 2);
	assert_true(fl.last_claim_max > 0);
	assert_int_equal(fake.n, 1);
	advance(f, 100);
	assert_int_equal(fake.n, 2);
	assert_int_equal(fake.opened_at[1] - fake.opened_at[0], 100);
	advance(f, 60000);
	assert_int_equal(opens_of(c), 0);
	sup_health(f->sup, &h);
	assert_int_equal(h.total, 2);
	/* Renewed every third of the lease time. */
	int r = fl.rounds;
	advance(f, 3000);
	assert_int_equal(fl.rounds, r + 1);
	bring_up(f, a);
	bring_up(f, b);
	struct sup_cluster_info ci;
	sup_cluster_info(f->sup, &ci);
	assert_int_equal(ci.held, 2);
	assert_true(ci.enabled);
	/* A held session deleted: its lease went with the row, and the count with it. */
	assert_int_equal(store_delete(f->st, a), 0);
	assert_int_equal(sup_session_deleted(f->sup, a), 0);
	pump_closes();
	sup_cluster_info(f->sup, &ci);
	assert_int_equal(ci.held, 1);
}

/* A lease the database no longer gives: the socket closes at once, nothing is written, no reconnect. */
static void
test_lease_lost_closes_without_writing(void **state)
{
	struct fx *f = *state;
	use_leases(f, 9000);
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	const char *b = add_session(f, "primary", 1, 1, 1, NULL);
	fl.grant[0] = a;
	fl.grant[1] = b;
	fl.ngrant = 2;
	start(f);
	advance(f, 2100);
	bring_up(f, a);
	struct sup_client *cb = bring_up(f, b);
	fl.ngrant = 1; /* another node took b */
	advance(f, 3000);
	assert_true(cb->close_requested);
	pump_closes();
	advance(f, 60000);
	assert_int_equal(opens_of(b), 1);
	/* The row is the new holder's: still what it says, not this node's "disconnected". */
	expect_status(f, b, "connected");
	expect_status(f, a, "connected");
	struct sup_health h;
	sup_health(f->sup, &h);
	assert_int_equal(h.total, 1);
}

/* Rounds failing: the leases are sure until 0.9 of the lease time after the last good round was sent. */
static void
test_leases_not_sure_close_everything(void **state)
{
	struct fx *f = *state;
	use_leases(f, 9000);
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	fl.grant[0] = a;
	fl.ngrant = 1;
	start(f);
	advance(f, 2000);  /* the claiming round, sent at this instant */
	uint64_t sent = now_ms;
	advance(f, 100);
	struct sup_client *ca = bring_up(f, a);
	fl.fail = 1;
	/* The rounds at +3 s and after fail; until sent + 8.1 s the lease holds. */
	advance(f, sent + 8099 - now_ms);
	assert_false(ca->close_requested);
	advance(f, 1);
	assert_true(ca->close_requested);
	pump_closes();
	advance(f, 5000);
	assert_int_equal(opens_of(a), 1); /* not sure: no reconnect either */
	expect_status(f, a, "connected"); /* nothing written: another node may hold it now */
	/* The database answers again and gives the lease back: it connects again. */
	fl.fail = 0;
	advance(f, 3000);
	assert_int_equal(opens_of(a), 2);
}

/* A write the database fences out (another node's token) means the lease is lost. */
static void
test_fenced_write_loses_the_lease(void **state)
{
	struct fx *f = *state;
	use_leases(f, 9000);
	const char *a = add_session(f, "primary", 1, 1, 1, NULL);
	fl.grant[0] = a;
	fl.ngrant = 1;
	start(f);
	advance(f, 2100);
	struct sup_client *ca = client_of(a);
	assert_non_null(ca);
	fl.fenced = a;
	c_open(ca); /* "connected" is to be written; the database refuses it */
	assert_int_equal(sup_flush(f->sup), 0);
	assert_true(ca->close_requested);
	pump_closes();
	advance(f, 1000);
	assert_int_equal(opens_of(a), 1);
	struct store_session row;
	assert_int_equal(store_get(f->st, a, &row), 0);
	assert_string_equal(row.connection_status, "connecting"); /* "connected" never written */
	store_session_free(&row);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reconcile_then_stagger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_behind_converges_after_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_at_coalesced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paced_starts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_changes_do_not_block_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_written_by_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_sees_app_writes_within_a_second, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listing_order_from_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_batch_adapts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flapping_backs_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_required_every_login_backs_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_reads_earlier_recoveries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_room_under_the_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_paced_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_batches_do_not_overlap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_startup_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_startup_logged_out_not_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_credentials_need_reauth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pair_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_only_primary_connects_by_itself, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replaced_not_taken_back_after_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transient_at_once_then_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_required_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logged_out_and_replaced_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_temp_ban_waits_for_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_outdated_breaker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_truthful, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_grace_bounds_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_dead_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_socket_then_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_down_after_startup_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_stale_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_rate_limit_and_manual, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probe_never_limited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_monitor_recoveries_staggered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outage_does_not_burn_the_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_window_slides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manual_reconnect_shared_and_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_derivation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_observer_and_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leases_gate_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_lost_closes_without_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leases_not_sure_close_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fenced_write_loses_the_lease, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
