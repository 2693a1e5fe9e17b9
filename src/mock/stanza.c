/*
 * What the mock says and answers once a connection's handshake is done: the
 * login outcome, the iqs a client sends after <success> (pre-key count and
 * upload, digest, passive/active, pings, and an empty result for everything
 * else), presences, acks and receipts, and the messages the control API
 * injects. docs/mock.md lists them.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "mock/mock_int.h"
#include "wa/crypto.h"

#define SERVER_JID "@s.whatsapp.net"

static bool
eq(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

/* Remembers an id, keeping only the newest MOCK_MAX_IDS. */
static void
remember(json_t *arr, const char *id)
{
	if (json_array_size(arr) >= MOCK_MAX_IDS)
		json_array_remove(arr, 0);
	json_array_append_new(arr, json_string(id));
}

static const char *const failure_reasons[] = {"401", "402", "403", "405", "406", "500", "503"};

bool
mock__failure_valid(const char *reason)
{
	for (size_t i = 0; i < sizeof(failure_reasons) / sizeof(failure_reasons[0]); i++)
		if (strcmp(reason, failure_reasons[i]) == 0)
			return true;
	return false;
}

bool
mock__take_fault(struct mock *m, const char *jid, struct mock_failure *out)
{
	for (size_t i = 0; i < m->nfaults; i++)
		if (strcmp(m->faults[i].jid, jid) == 0) {
			*out = m->faults[i].failure;
			m->faults[i] = m->faults[--m->nfaults];
			return true;
		}
	return false;
}

bool
mock__set_fault(struct mock *m, const char *jid, const struct mock_failure *f)
{
	struct mock_failure old;
	mock__take_fault(m, jid, &old);
	if (f == NULL)
		return true;
	if (m->nfaults >= MOCK_MAX_FAULTS)
		return false;
	if (m->faults == NULL)
		m->faults = wg_calloc(MOCK_MAX_FAULTS, sizeof(*m->faults));
	struct mock_fault *e = &m->faults[m->nfaults++];
	snprintf(e->jid, sizeof(e->jid), "%s", jid);
	e->failure = *f;
	return true;
}

static void
send_result(struct mock_conn *c, const char *id, const char *child, const char *value_attr,
	    const char *value)
{
	struct wa_arena a = {0};
	struct wa_node *res = wa_node_new(&a, "iq");
	wa_node_set_attr(&a, res, "from", SERVER_JID);
	wa_node_set_attr(&a, res, "type", "result");
	wa_node_set_attr(&a, res, "id", id);
	if (child) {
		struct wa_node *ch = wa_node_add_child(&a, res, child);
		if (value_attr)
			wa_node_set_attr(&a, ch, value_attr, value);
	}
	mc_send_node(c, res);
	wa_arena_free(&a);
}

void
mock__login_start(struct mock_conn *c)
{
	char who[32], t[24];
	snprintf(t, sizeof(t), "%llu", (unsigned long long)(wg_wall_ms() / 1000));
	struct wa_arena a = {0};
	struct wa_node *n;
	if (c->failure.reason[0]) {
		n = wa_node_new(&a, "failure");
		wa_node_set_attr(&a, n, "reason", c->failure.reason);
		if (c->failure.code[0])
			wa_node_set_attr(&a, n, "code", c->failure.code);
		if (c->failure.expire[0])
			wa_node_set_attr(&a, n, "expire", c->failure.expire);
		wa_node_set_attr(&a, n, "location", "mock");
		mc_send_node(c, n);
		char why[48];
		snprintf(why, sizeof(why), "login failure %s", c->failure.reason);
		mc_close(c, 1000, why);
	} else {
		n = wa_node_new(&a, "success");
		wa_node_set_attr(&a, n, "t", t);
		wa_node_set_attr(&a, n, "lid", c->lid);
		wa_node_set_attr(&a, n, "location", "mock");
		if (mc_send_node(c, n) == 0) {
			mc_logged_in(c);
			log_info(mc_who(c, who), "%s logged in", c->jid);
		}
	}
	wa_arena_free(&a);
}

/*
 * A device logged in with --accept-any-login but never paired here has no
 * record; its uploads are still remembered per jid, in memory, as WhatsApp
 * remembers them per device, so a reconnect does not upload again (a client
 * would otherwise pay a fresh upload at every login).
 */
static uint32_t
device_prekeys(const struct mock_conn *c)
{
	if (c->dev)
		return c->dev->prekeys;
	if (c->jid[0] && c->m->anon_prekeys) {
		json_t *had = json_object_get(c->m->anon_prekeys, c->jid);
		return had ? (uint32_t)json_integer_value(had) : c->m->prekeys_known;
	}
	return c->prekeys;
}

/* <iq xmlns="encrypt" type="set"> with <list><key>...: a pre-key upload. */
static void
prekey_upload(struct mock_conn *c, const struct wa_node *list)
{
	uint32_t n = 0;
	for (uint32_t i = 0; list->kind == WA_CONTENT_LIST && i < list->len; i++)
		if (strcmp(list->c.children[i]->tag.p, "key") == 0)
			n++;
	c->prekeys += n;
	if (!c->dev && c->jid[0] && c->m->anon_prekeys) {
		json_t *had = json_object_get(c->m->anon_prekeys, c->jid);
		json_int_t was = had ? json_integer_value(had) : c->m->prekeys_known;
		if (had || json_object_size(c->m->anon_prekeys) < MOCK_ANON_DEVICES_MAX)
			json_object_set_new(c->m->anon_prekeys, c->jid, json_integer(was + n));
	}
	if (c->dev) {
		c->dev->prekeys += n;
		char err[256] = "", who[32];
		if (mock__store_save(&c->m->store, err, sizeof(err)))
			log_error(mc_who(c, who), "saving state: %s", err);
	}
}

static void
handle_iq(struct mock_conn *c, const struct wa_node *n)
{
	const char *type = wa_node_attr(n, "type"), *id = wa_node_attr(n, "id");
	const char *xmlns = wa_node_attr(n, "xmlns");
	const struct wa_node *first = wa_node_first_child(n);
	char who[32];
	if (id == NULL)
		return;
	if (eq(type, "result") || eq(type, "error")) {
		if (c->pair_iq_id[0] && strcmp(id, c->pair_iq_id) == 0) {
			c->pair_device_acked = eq(type, "result");
			log_info(mc_who(c, who), "pair-device %s", type);
		} else if (c->scan != NULL) {
			mock__pair_reply(c, n);
		}
		return;
	}
	if (!eq(type, "get") && !eq(type, "set"))
		return;
	if (eq(xmlns, "w:p")) {
		c->pings++;
		send_result(c, id, NULL, NULL, NULL);
	} else if (eq(xmlns, "encrypt") && eq(type, "get") && wa_node_child(n, "count")) {
		char v[16];
		snprintf(v, sizeof(v), "%u", device_prekeys(c));
		send_result(c, id, "count", "value", v);
	} else if (eq(xmlns, "encrypt") && eq(type, "get") && wa_node_child(n, "digest")) {
		/* Baileys 7 only checks that the answer has a <digest>; without one it re-uploads. */
		send_result(c, id, "digest", NULL, NULL);
	} else if (eq(xmlns, "encrypt") && eq(type, "set") && wa_node_child(n, "list")) {
		prekey_upload(c, wa_node_child(n, "list"));
		send_result(c, id, NULL, NULL, NULL);
	} else {
		/* passive/active, props, abt, blocklist, privacy, usync...: an empty result suffices. */
		log_debug(mc_who(c, who), "empty result for iq xmlns=%s <%s>", xmlns ? xmlns : "",
			  first ? first->tag.p : "");
		send_result(c, id, NULL, NULL, NULL);
	}
}

void
mock__handle_node(struct mock_conn *c, const struct wa_node *n)
{
	const char *tag = n->tag.p, *id = wa_node_attr(n, "id");
	char who[32];
	if (strcmp(tag, "iq") == 0) {
		handle_iq(c, n);
	} else if (strcmp(tag, "presence") == 0) {
		c->presences++;
	} else if (strcmp(tag, "ack") == 0) {
		if (id && eq(wa_node_attr(n, "class"), "message"))
			remember(c->acked, id);
	} else if (strcmp(tag, "receipt") == 0) {
		if (id)
			remember(c->receipts, id);
	} else {
		log_debug(mc_who(c, who), "unhandled <%s>", tag);
	}
}

int
mock__send_message(struct mock_conn *c, const char *from, const char *id, uint64_t t)
{
	char ts[24];
	snprintf(ts, sizeof(ts), "%llu", (unsigned long long)t);
	/* Ciphertext of no session at all: the client cannot decrypt it, and must ack it anyway. */
	uint8_t junk[48];
	wa_random(junk, sizeof(junk));
	struct wa_arena a = {0};
	struct wa_node *n = wa_node_new(&a, "message");
	wa_node_set_attr(&a, n, "from", from);
	wa_node_set_attr(&a, n, "id", id);
	wa_node_set_attr(&a, n, "t", ts);
	wa_node_set_attr(&a, n, "type", "text");
	struct wa_node *enc = wa_node_add_child(&a, n, "enc");
	wa_node_set_attr(&a, enc, "v", "2");
	wa_node_set_attr(&a, enc, "type", "msg");
	wa_node_set_bytes(&a, enc, junk, sizeof(junk));
	int r = mc_send_node(c, n);
	wa_arena_free(&a);
	return r;
}
