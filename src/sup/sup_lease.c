/*
 * Leases: several wagate nodes share one database's sessions (docs/cluster.md).
 *
 * A node connects a session only while it holds the session's lease. Every
 * lease_ttl_ms / 3 a round (one transaction, on a thread of its own so a busy
 * writer never delays it) renews this node's leases, gives back those it
 * hands over, and takes free or expired ones up to its fair share. The
 * outcome comes back to the loop: leases gained start their sessions (paced
 * like recoveries), leases missing are lost and their sockets closed at once.
 *
 * Fencing, two ways. The database's: every write about a session carries the
 * lease's token and is skipped once another node took the lease (sup_wb.c).
 * The node's own: a lease is sure only until the round that renewed it was
 * sent plus nine tenths of the lease time (the database counts from later,
 * so the node gives up first); past that without a new round, as when the
 * database is unreachable or the process was paused, every socket is closed
 * before anyone else may take the sessions.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/writer.h"
#include "sup/sup_int.h"

/* Leases taken per round: the start stagger paces the connects that follow. */
#define LEASE_CLAIM_MAX 500
/* A failed round is tried again this soon (or at a sixth of the lease time, if sooner). */
#define LEASE_RETRY_MS 1000
/* The first round only registers the node; the second, this soon, claims (peers starting too have registered). */
#define LEASE_FIRST_CLAIM_MS 2000
/* Node ids remembered as owners: more than this many nodes show as the last one's neighbour "?". */
#define LEASE_OWNERS_MAX 256

struct lease_job {
	struct sup *s;
	struct store_lease_round r;
	char **release; /* copies of the ids given back */
	size_t nrelease;
	uint64_t sent; /* monotonic ms when submitted */
	int rc;
	char err[256];
};

bool
sup__cluster(const struct sup *s)
{
	return s->cfg.node_id[0] != '\0';
}

/* The interned copy of a node id, so sessions point at one string per node. */
static const char *
owner_name(struct sup *s, const char *node)
{
	if (strcmp(node, s->cfg.node_id) == 0)
		return s->cfg.node_id;
	for (size_t i = 0; i < s->nowners; i++)
		if (strcmp(s->owners[i], node) == 0)
			return s->owners[i];
	if (s->nowners == LEASE_OWNERS_MAX)
		return "?";
	s->owners = wg_realloc(s->owners, (s->nowners + 1) * sizeof(*s->owners));
	s->owners[s->nowners] = wg_strdup(node);
	return s->owners[s->nowners++];
}

bool
sup__lease_sure(const struct sess *x)
{
	uint64_t now = wg_now_ms();
	return x->leased && !x->releasing && (now < x->sup->lease_until || now < x->claim_until);
}

void
sup__lease_hurry(struct sup *s)
{
	if (sup__cluster(s) && s->lease_rounds > 0 && s->lease_at > wg_now_ms()) {
		s->lease_at = wg_now_ms();
		sup__kick(s);
	}
}

/* x is no longer this node's: who holds it the next round says; what memory had for its row is dropped. */
static void
unlease(struct sess *x)
{
	x->leased = 0;
	x->releasing = 0;
	x->owner = NULL;
	x->sup->nleased--;
	sup__wb_forget(x);
}

/* The lease of x is gone (taken over, fenced, or not sure any more): its socket goes at once. */
void
sup__lease_lost(struct sess *x, const char *why)
{
	struct sup *s = x->sup;
	if (!x->leased)
		return;
	log_warn(x->id, "this node no longer holds the session (%s): closing it, writing nothing", why);
	unlease(x);
	sup__finish_waiters(x, 0, "another node holds this session now; ask again");
	if (x->client != NULL)
		s->ops->close(x->client); /* cb_closed sees it unleased: idle, nothing written */
	else
		sup__enter(x, SS_IDLE, "lease lost", NULL, 0);
	sup__recount(x);
}

/* A lease this node now holds: a session taken over from a node that stopped shows it, then runs. */
static void
lease_gained(struct sess *x, int64_t token, unsigned *k)
{
	struct sup *s = x->sup;
	x->leased = 1;
	x->releasing = 0;
	x->lease_token = token;
	x->owner = s->cfg.node_id;
	s->nleased++;
	/* The row may say what the previous holder left (it stopped without saying otherwise). */
	if (x->client == NULL &&
	    (strcmp(x->status, "connected") == 0 || strcmp(x->status, "connecting") == 0 ||
	     strcmp(x->status, "qr_pending") == 0))
		sup__enter(x, SS_IDLE, "taken over",
			   "taken over: the node that held it stopped renewing its lease", 0);
	sup__recount(x);
	if (!sup__should_run(x) || x->client != NULL || x->state != SS_IDLE || s->breaker ||
	    s->shutting_down)
		return;
	if (x->last_error &&
	    strncmp(x->last_error, SUP_REPLACED_ERR, strlen(SUP_REPLACED_ERR)) == 0) {
		x->state = SS_STOPPED; /* another client took it over: a person decides */
		return;
	}
	/* Connected under the start's rules, each in its slot of the stagger. */
	snprintf(x->trigger, sizeof(x->trigger), "start:lease");
	sup__wait_then_connect(x, sup__recovery_delay(s), "lease taken", NULL);
	(*k)++;
}

/* Hands sessions over while this node holds more than its share (a node joined): idle ones first. */
static void
rebalance(struct sup *s)
{
	if (s->lease_share == 0 || s->nleased <= s->lease_share + 1)
		return;
	/* The share counts sessions that should run; one held for a person's action is extra. */
	unsigned running = 0;
	for (size_t i = 0; i < s->n; i++)
		running += s->v[i]->leased && !s->v[i]->releasing && sup__should_run(s->v[i]);
	if (running <= s->lease_share + 1)
		return;
	unsigned excess = running - s->lease_share, chosen = 0;
	for (int pass = 0; pass < 2 && chosen < excess; pass++) {
		for (size_t i = 0; i < s->n && chosen < excess; i++) {
			struct sess *x = s->v[i];
			if (!x->leased || x->releasing || x->deleted || !sup__should_run(x))
				continue;
			if (pass == 0 && x->client != NULL)
				continue; /* the first pass hands over only what is not connected */
			x->releasing = 1;
			chosen++;
			sup__recount(x);
			sup__finish_waiters(x, 0, "handed over to another node; ask again");
			if (x->client != NULL)
				s->ops->close(x->client); /* cb_closed: idle, written, then released */
			else if (x->state == SS_WAITING || x->state == SS_READING)
				sup__enter(x, SS_IDLE, "handed over", "handed over to another node", 0);
		}
	}
	if (chosen)
		log_info("supervisor", "handing %u session(s) over: this node holds %u, its share is %u",
			 chosen, s->nleased, s->lease_share);
}

static void
run_round(struct store *st, void *arg)
{
	struct lease_job *j = arg;
	j->rc = store_lease_round(st, &j->r);
	if (j->rc != 0)
		snprintf(j->err, sizeof(j->err), "%s", store_errmsg(st));
}

static void
job_free(struct lease_job *j)
{
	for (size_t i = 0; i < j->nrelease; i++)
		free(j->release[i]);
	free(j->release);
	store_lease_round_free(&j->r);
	free(j);
}

static void
round_done(struct sup *s, struct lease_job *j)
{
	uint64_t now = wg_now_ms();
	s->lease_inflight = NULL;
	uint64_t retry = s->cfg.lease_ttl_ms / 6 < LEASE_RETRY_MS ? s->cfg.lease_ttl_ms / 6
								   : LEASE_RETRY_MS;
	if (j->rc != 0) {
		if (now - s->lease_error_logged >= 10000 || s->lease_ok) {
			log_error("supervisor", "lease round failed (this node's leases are sure for %" PRIu64
						" ms more): %s",
				  s->lease_until > now ? s->lease_until - now : 0, j->err);
			s->lease_error_logged = now;
		}
		s->lease_ok = 0;
		s->lease_at = now + retry;
		job_free(j);
		return;
	}
	if (!s->lease_ok)
		log_info("supervisor", "leases: round done (%zu held, share %u of %u, %zu node(s) live)",
			 j->r.nheld, j->r.share, j->r.runnable, j->r.nnodes);
	s->lease_ok = 1;
	s->lease_rounds++;
	/* Sure until the round's start plus nine tenths of the lease: the database counts from later. */
	s->lease_until = j->sent + s->cfg.lease_ttl_ms - s->cfg.lease_ttl_ms / 10;
	s->lease_share = j->r.share;
	s->live_nodes = (unsigned)j->r.nnodes;
	/* What was handed over is another node's now. */
	for (size_t i = 0; i < j->nrelease; i++) {
		struct sess *x = sup__find(s, j->release[i]);
		if (x != NULL && x->leased && x->releasing && x->client == NULL) {
			unlease(x);
			sup__recount(x);
		}
	}
	unsigned gen = ++s->lease_gen, k = 0;
	for (size_t i = 0; i < j->r.nheld; i++) {
		const struct store_lease *l = &j->r.held[i];
		struct sess *x = sup__find(s, l->session_id);
		if (x == NULL) {
			/*
			 * A row this node has not read yet (the watch or a notification
			 * normally brings it first): read off the loop, as a notification
			 * would; the next round finds it known and takes it up.
			 */
			if (s->reader != NULL)
				sup__notified(s, l->session_id);
			else if (sup_learn(s, l->session_id) == 0)
				x = sup__find(s, l->session_id);
		}
		if (x == NULL || x->deleted)
			continue;
		x->lease_seen = gen;
		if (!x->leased)
			lease_gained(x, l->token, &k);
		else
			x->lease_token = l->token;
	}
	/* Held in memory, missing from the database's answer: lost (expired and taken, or given back). */
	for (size_t i = 0; i < s->n; i++) {
		struct sess *x = s->v[i];
		/* A lease taken on demand after this round was sent is not in its answer. */
		if (x->leased && x->lease_seen != gen && !x->releasing && x->claim_at < j->sent)
			sup__lease_lost(x, "the database says another node holds it, or no one");
	}
	for (size_t i = 0; i < j->r.nothers; i++) {
		struct sess *x = sup__find(s, j->r.others[i].session_id);
		if (x != NULL && !x->leased)
			x->owner = owner_name(s, j->r.others[i].owner);
	}
	free(s->nodes);
	s->nodes = j->r.nodes;
	s->nnodes = j->r.nnodes;
	j->r.nodes = NULL;
	j->r.nnodes = 0;
	if (k)
		log_info("supervisor", "leases: took %u session(s); this node holds %u (share %u)", k,
			 s->nleased, s->lease_share);
	rebalance(s);
	bool releasing = false;
	for (size_t i = 0; i < s->n && !releasing; i++)
		releasing = s->v[i]->releasing;
	uint64_t every = s->cfg.lease_ttl_ms / 3;
	if (s->lease_rounds == 1 && every > LEASE_FIRST_CLAIM_MS)
		every = LEASE_FIRST_CLAIM_MS;
	/* Sessions being handed over go back as soon as their sockets are closed. */
	s->lease_at = now + (releasing && every > 250 ? 250 : every);
	job_free(j);
}

static void
leaser_done(void *job, void *arg)
{
	struct sup *s = arg;
	round_done(s, job);
	sup__kick(s);
}

static void
start_round(struct sup *s, uint64_t now)
{
	struct lease_job *j = wg_calloc(1, sizeof(*j));
	j->s = s;
	j->sent = now;
	j->r.node = s->cfg.node_id;
	j->r.url = s->cfg.node_url[0] ? s->cfg.node_url : NULL;
	j->r.ttl_ms = s->cfg.lease_ttl_ms;
	j->r.capacity = s->cfg.max_sessions;
	/* The first round registers this node only, so that nodes started together share fairly. */
	j->r.claim_max = s->lease_rounds == 0 || s->shutting_down ? 0 : LEASE_CLAIM_MAX;
	for (size_t i = 0; i < s->n; i++) {
		struct sess *x = s->v[i];
		if (!x->leased || !x->releasing || x->client != NULL)
			continue;
		j->release = wg_realloc(j->release, (j->nrelease + 1) * sizeof(*j->release));
		j->release[j->nrelease++] = wg_strdup(x->id);
	}
	j->r.release = (const char *const *)j->release;
	j->r.nrelease = j->nrelease;
	if (s->leaser != NULL && store_writer_submit(s->leaser, run_round, j) == 0) {
		s->lease_inflight = j;
		return;
	}
	run_round(s->st, j);
	round_done(s, j);
}

uint64_t
sup__lease_step(struct sup *s, uint64_t now)
{
	if (!sup__cluster(s))
		return UINT64_MAX;
	/* Not sure any more: everything is closed before another node may take it. */
	if (s->nleased > 0 && now >= s->lease_until) {
		unsigned lost = 0;
		for (size_t i = 0; i < s->n; i++) {
			struct sess *x = s->v[i];
			if (x->leased && now >= x->claim_until) {
				sup__lease_lost(x, "its lease is not sure any more");
				lost++;
			}
		}
		if (lost)
			log_error("supervisor", "the database has not renewed this node's leases in "
						"time: closed %u session(s)", lost);
	}
	if (s->lease_inflight == NULL && now >= s->lease_at)
		start_round(s, now);
	uint64_t next = s->lease_inflight ? UINT64_MAX : s->lease_at;
	if (s->nleased > 0 && s->lease_until > now && s->lease_until < next)
		next = s->lease_until;
	return next;
}

int
sup__lease_attach(struct sup *s, struct event_base *base, const char *url, char *err,
		  size_t errlen)
{
	if (!sup__cluster(s) || s->leaser != NULL)
		return 0;
	return store_writer_new(base, url, leaser_done, s, &s->leaser, err, errlen);
}

void
sup__lease_detach(struct sup *s)
{
	struct store_writer *w = s->leaser;
	if (w == NULL)
		return;
	struct lease_job *j = store_writer_wait(w);
	if (j != NULL)
		round_done(s, j);
	s->leaser = NULL;
	store_writer_free(w);
}

void
sup__lease_free(struct sup *s)
{
	for (size_t i = 0; i < s->nowners; i++)
		free(s->owners[i]);
	free(s->owners);
	free(s->nodes);
}

/* ---- public ---- */

/* A claim read and written on the reader's thread (sup_call), applied on the loop. */
struct claim_call {
	struct sup_call call; /* first */
	struct sup *s;
	char id[STORE_ID_LEN + 1];
	bool take;
	sup_claim_fn done;
	void *arg;
	uint64_t t0; /* when the claim was sent */
	int rc;
	char err[256];
	struct store_lease l;
	struct store_session row; /* taken: the row, for a session memory has not read */
	bool have_row;
};

static void
claim_run(struct store *st, struct sup_call *sc)
{
	struct claim_call *c = (struct claim_call *)sc;
	struct sup *s = c->s; /* only its configuration, which never changes */
	c->t0 = wg_now_ms();
	c->rc = store_lease_claim(st, s->cfg.node_id, c->id, c->take, s->cfg.lease_ttl_ms, &c->l);
	if (c->rc == 0 && c->take)
		c->have_row = (c->rc = store_get(st, c->id, &c->row)) == 0;
	if (c->rc != 0 && c->rc != WG_ESTATE && c->rc != WG_ENOTFOUND)
		snprintf(c->err, sizeof(c->err), "%s", store_errmsg(st));
}

static void
claim_done(struct sup_call *sc)
{
	struct claim_call *c = (struct claim_call *)sc;
	struct sup *s = c->s;
	const char *owner = NULL, *url = NULL;
	int r = c->rc;
	struct sess *x = sup__find(s, c->id);
	if (sc->cancelled || s->shutting_down) {
		r = WG_ECLOSED;
		snprintf(c->err, sizeof(c->err), "the server is stopping");
	} else if (r == WG_ESTATE) {
		owner = owner_name(s, c->l.owner);
		for (size_t i = 0; i < s->nnodes; i++)
			if (strcmp(s->nodes[i].id, c->l.owner) == 0 && s->nodes[i].url[0])
				url = s->nodes[i].url;
		if (x != NULL)
			x->owner = owner;
	} else if (r == 0 && c->take) {
		if (x == NULL) {
			sup_learn_row(s, &c->row);
			x = sup__find(s, c->id);
		}
		if (x == NULL || x->deleted) {
			r = WG_ENOTFOUND;
		} else if (!x->leased) {
			unsigned k = 0;
			/* Sure until the claim's time plus most of the lease (the claim was sent then). */
			x->claim_at = c->t0;
			x->claim_until = c->t0 + s->cfg.lease_ttl_ms - s->cfg.lease_ttl_ms / 10;
			x->lease_seen = s->lease_gen;
			lease_gained(x, c->l.token, &k);
		}
	}
	c->done(c->arg, r, owner, url, c->err);
	if (c->have_row)
		store_session_free(&c->row);
	free(c);
}

void
sup_claim(struct sup *s, const char *id, bool take, sup_claim_fn done, void *arg)
{
	struct sess *x = sup__find(s, id);
	if (!sup__cluster(s) || (x != NULL && x->leased && !x->releasing)) {
		done(arg, 0, NULL, NULL, "");
		return;
	}
	if (x != NULL && x->deleted) {
		done(arg, WG_ENOTFOUND, NULL, NULL, "");
		return;
	}
	struct claim_call *c = wg_calloc(1, sizeof(*c));
	c->call.run = claim_run;
	c->call.done = claim_done;
	c->s = s;
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->take = take;
	c->done = done;
	c->arg = arg;
	sup_call(s, &c->call);
}

void
sup_cluster_info(struct sup *s, struct sup_cluster_info *out)
{
	memset(out, 0, sizeof(*out));
	out->enabled = sup__cluster(s);
	out->node = s->cfg.node_id;
	out->url = s->cfg.node_url;
	out->lease_ttl_ms = s->cfg.lease_ttl_ms;
	out->held = s->nleased;
	out->share = s->lease_share;
	out->capacity = s->cfg.max_sessions;
	out->rounds_ok = s->lease_ok;
	uint64_t now = wg_now_ms();
	out->sure_for_ms = s->nleased && s->lease_until > now ? s->lease_until - now : 0;
}

int
sup_leave(struct sup *s)
{
	if (!sup__cluster(s))
		return 0;
	sup__lease_detach(s);
	int r = store_lease_leave(s->st, s->cfg.node_id);
	if (r != 0)
		log_warn("supervisor", "cannot hand this node's leases over (the others take them when "
				       "they expire): %s", store_errmsg(s->st));
	else
		log_info("supervisor", "leases handed over: the other nodes take them now");
	return r;
}
