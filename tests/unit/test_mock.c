/*
 * The mock server in-process, driven by our own client pieces over loopback:
 * WebSocket client, Noise client role with full certificate verification
 * against the mock's root key, login and registration payloads, a keepalive
 * ping, and hostile input that must close the connection and nothing more.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "core/clock.h"
#include "core/err.h"
#include "mock/mock.h"
#include "net/ws.h"
#include "wa/cert.h"
#include "wa/crypto.h"
#include "wa/frame.h"
#include "wa/node.h"
#include "wa/noise.h"
#include "wa/payload.h"

enum step { S_HELLO_SENT, S_FINISHED, S_PONG, S_CLOSED };

struct client {
	struct event_base *base;
	struct mock *mock;
	struct ws_conn *ws;
	struct wa_noise *noise;
	struct wa_frame_reader rd;
	int dict, login, wrong_root;
	/* what to send instead of a proper hello: hostile-input cases */
	const uint8_t *raw_first;
	size_t raw_first_len;
	int garbage_after_handshake;
	struct wa_keypair noise_key;
	enum step step;
	int finish_err, close_err, close_code;
	json_t *seen_after_finish; /* mock_connections() right after the handshake */
	char ping_id[16];
	int pong_ok;
};

static void
send_ping(struct client *c)
{
	struct wa_arena a = {0};
	struct wa_node *iq = wa_node_new(&a, "iq");
	snprintf(c->ping_id, sizeof(c->ping_id), "p.%d", c->dict);
	wa_node_set_attr(&a, iq, "id", c->ping_id);
	wa_node_set_attr(&a, iq, "to", "@s.whatsapp.net");
	wa_node_set_attr(&a, iq, "type", "get");
	wa_node_set_attr(&a, iq, "xmlns", "w:p");
	wa_node_add_child(&a, iq, "ping");
	struct wg_buf plain = {0}, out = {0};
	wg_buf_push(&plain, 0);
	assert_int_equal(wa_node_encode(wa_dict_get(c->dict), iq, &plain), 0);
	assert_int_equal(wa_noise_encrypt_frame(c->noise, plain.data, plain.len, &out), 0);
	assert_int_equal(ws_send(c->ws, out.data, out.len), 0);
	wg_buf_free(&plain);
	wg_buf_free(&out);
	wa_arena_free(&a);
}

static void
build_payload(struct client *c, struct wg_buf *out)
{
	if (c->login) {
		struct wa_login_opts o = {WA_LOGIN_DEFAULTS, .user = 15551234567ull, .device = 7};
		assert_int_equal(wa_payload_login(&o, out), 0);
	} else {
		struct wa_register_opts o = {.registration_id = 1234, .signed_prekey_id = 1,
					     .os = "Linux", .platform_type = 1};
		struct wa_keypair ident, spk;
		wa_crypto_keypair(&ident);
		wa_crypto_keypair(&spk);
		memcpy(o.identity_pub, ident.pub, 32);
		memcpy(o.signed_prekey_pub, spk.pub, 32);
		uint8_t msg[33] = {5};
		memcpy(msg + 1, spk.pub, 32);
		assert_int_equal(wa_crypto_sign(o.signed_prekey_sig, ident.priv, msg, 33), 0);
		assert_int_equal(wa_payload_register(&o, out), 0);
	}
}

static void
on_open(struct ws_conn *ws, void *arg)
{
	struct client *c = arg;
	if (c->raw_first) {
		ws_send(ws, c->raw_first, c->raw_first_len);
		c->step = S_HELLO_SENT;
		return;
	}
	struct wg_buf out = {0};
	assert_int_equal(wa_noise_client_hello(c->noise, &out), 0);
	assert_int_equal(ws_send(ws, out.data, out.len), 0);
	wg_buf_free(&out);
	c->step = S_HELLO_SENT;
}

static void
on_message(struct ws_conn *ws, const uint8_t *data, size_t len, void *arg)
{
	struct client *c = arg;
	assert_int_equal(wa_frame_feed(&c->rd, data, len), 0);
	const uint8_t *p;
	size_t plen;
	int r;
	while ((r = wa_frame_next(&c->rd, &p, &plen)) == 1) {
		if (c->step == S_HELLO_SENT) {
			struct wa_cert_policy pol = {.now = (int64_t)(wg_wall_ms() / 1000)};
			memcpy(pol.root_pub, mock_root_pub(c->mock), 32);
			if (c->wrong_root)
				pol.root_pub[0] ^= 1;
			struct wg_buf payload = {0}, out = {0};
			build_payload(c, &payload);
			c->finish_err = wa_noise_client_finish(
				c->noise, p, plen, c->noise_key.priv, c->noise_key.pub, &pol,
				payload.data, payload.len, &out);
			if (c->finish_err == 0)
				assert_int_equal(ws_send(ws, out.data, out.len), 0);
			wg_buf_free(&payload);
			wg_buf_free(&out);
			if (c->finish_err) {
				ws_close(ws, 1000, "certificate rejected");
				return;
			}
			c->step = S_FINISHED;
			if (c->garbage_after_handshake) {
				static const uint8_t junk[] = {0, 0, 5, 1, 2, 3, 4, 5};
				ws_send(ws, junk, sizeof(junk));
			} else {
				send_ping(c);
			}
		} else if (c->step == S_FINISHED) {
			struct wg_buf plain = {0};
			assert_int_equal(wa_noise_decrypt(c->noise, p, plen, &plain), 0);
			struct wa_arena a = {0};
			struct wa_node *n;
			assert_int_equal(wa_frame_decode_node(wa_dict_get(c->dict), plain.data,
							      plain.len, NULL, &a, &n, NULL),
					 0);
			const char *id = wa_node_attr(n, "id"), *type = wa_node_attr(n, "type");
			/* The mock's own first stanza (success, pair-device) may come first. */
			if (!(id && strcmp(id, c->ping_id) == 0)) {
				wa_arena_free(&a);
				wg_buf_free(&plain);
				continue;
			}
			c->pong_ok = strcmp(n->tag.p, "iq") == 0 && type &&
				     strcmp(type, "result") == 0;
			c->step = S_PONG;
			c->seen_after_finish = mock_connections(c->mock);
			wa_arena_free(&a);
			wg_buf_free(&plain);
			ws_close(ws, 1000, "done");
		}
	}
	assert_true(r >= 0);
}

static void
on_close(struct ws_conn *ws, int err, int code, const char *reason, void *arg)
{
	struct client *c = arg;
	c->close_err = err;
	c->close_code = code;
	c->step = S_CLOSED;
	c->ws = NULL;
	event_base_loopbreak(c->base);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	fail_msg("test did not finish in time");
}

/* Runs one client against a fresh mock until the client's connection closes. */
static void
run(struct client *c)
{
	c->base = event_base_new();
	/* Logins here are of devices the mock never paired (test_mock_phone.c pairs them). */
	struct mock_opts mo = {.listen = "127.0.0.1:0", .control = "127.0.0.1:0",
			       .accept_any_login = true};
	char err[256] = "";
	int r = mock_new(c->base, &mo, &c->mock, err, sizeof(err));
	if (r)
		fail_msg("mock_new: %s", err);
	char url[64];
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws/chat", mock_listen_port(c->mock));
	c->noise = wa_noise_new(WA_NOISE_CLIENT, c->dict);
	wa_crypto_keypair(&c->noise_key);
	wa_frame_reader_init(&c->rd, WA_FRAME_CLIENT, 0);
	static const struct ws_callbacks cbs = {on_open, on_message, on_close};
	struct ws_client_opts wo = {.url = url, .origin = "https://web.whatsapp.com"};
	assert_int_equal(ws_client_connect(c->base, &wo, &cbs, c, &c->ws), 0);
	struct event *deadline = evtimer_new(c->base, on_deadline, NULL);
	struct timeval tv = {10, 0};
	evtimer_add(deadline, &tv);
	event_base_dispatch(c->base);
	event_free(deadline);
	wa_noise_free(c->noise);
	wa_frame_reader_free(&c->rd);
}

static void
finish(struct client *c)
{
	mock_free(c->mock);
	event_base_free(c->base);
	json_decref(c->seen_after_finish);
}

static void
check_session(int dict, int login)
{
	struct client c = {.dict = dict, .login = login};
	run(&c);
	assert_int_equal(c.finish_err, 0);
	assert_true(c.pong_ok);
	assert_int_equal(c.close_code, 1000);
	json_t *arr = c.seen_after_finish;
	assert_int_equal(json_array_size(arr), 1);
	json_t *o = json_array_get(arr, 0);
	assert_int_equal(json_integer_value(json_object_get(o, "dict")), dict);
	assert_string_equal(json_string_value(json_object_get(o, "state")),
			    login ? "login" : "register");
	assert_int_equal(json_integer_value(json_object_get(o, "pings")), 1);
	if (login)
		assert_string_equal(json_string_value(json_object_get(o, "jid")),
				    "15551234567:7@s.whatsapp.net");
	finish(&c);
}

static void
test_login_v3(void **state)
{
	check_session(3, 1);
}

static void
test_login_v2(void **state)
{
	check_session(2, 1);
}

static void
test_register_v3(void **state)
{
	check_session(3, 0);
}

static void
test_register_v2(void **state)
{
	check_session(2, 0);
}

static void
test_wrong_root_rejected(void **state)
{
	struct client c = {.dict = 3, .login = 1, .wrong_root = 1};
	run(&c);
	assert_int_equal(c.finish_err, WG_ECERT);
	assert_false(c.pong_ok);
	finish(&c);
}

static void
test_bad_intro_closes(void **state)
{
	/* An unknown dictionary version: the mock must close, with a protocol error. */
	static const uint8_t intro[] = {'W', 'A', 6, 9, 0, 0, 1, 0};
	struct client c = {.dict = 3, .raw_first = intro, .raw_first_len = sizeof(intro)};
	run(&c);
	assert_int_equal(c.step, S_CLOSED);
	assert_int_equal(c.close_code, 1002);
	finish(&c);
}

static void
test_bad_hello_closes(void **state)
{
	static const uint8_t hello[] = {'W', 'A', 6, 3, 0, 0, 4, 0x12, 0x02, 0x0a, 0x00};
	struct client c = {.dict = 3, .raw_first = hello, .raw_first_len = sizeof(hello)};
	run(&c);
	assert_int_equal(c.close_code, 1002);
	finish(&c);
}

static void
test_garbage_after_handshake_closes(void **state)
{
	struct client c = {.dict = 3, .login = 1, .garbage_after_handshake = 1};
	run(&c);
	assert_int_equal(c.finish_err, 0);
	assert_int_equal(c.close_code, 1002);
	finish(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_v3),
		cmocka_unit_test(test_login_v2),
		cmocka_unit_test(test_register_v3),
		cmocka_unit_test(test_register_v2),
		cmocka_unit_test(test_wrong_root_rejected),
		cmocka_unit_test(test_bad_intro_closes),
		cmocka_unit_test(test_bad_hello_closes),
		cmocka_unit_test(test_garbage_after_handshake_closes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
