/*
 * Unit tests for wa/noise: the protocol notes' vectors, both roles talking to
 * each other in memory through the frame reader, and tampering at every step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/enc.h"
#include "core/err.h"
#include "proto/wa.pb-c.h"
#include "wa/cert.h"
#include "wa/crypto.h"
#include "wa/frame.h"
#include "wa/noise.h"

#define NOW 1750000000

static struct wa_keypair root, server_static, client_noise;
static struct wg_buf chain;
static const uint8_t client_payload[] = "an encoded ClientPayload would go here";

static size_t
hex(uint8_t *out, const char *s)
{
	size_t bad = 0;
	long n = wg_hex_decode(out, s, strlen(s), &bad);
	assert_true(n >= 0);
	return (size_t)n;
}

static int
setup(void **state)
{
	(void)state;
	wa_crypto_keypair(&root);
	wa_crypto_keypair(&server_static);
	wa_crypto_keypair(&client_noise);
	assert_int_equal(wa_cert_issue(root.priv, server_static.pub, NOW, &chain), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	wg_buf_free(&chain);
	return 0;
}

static struct wa_cert_policy
policy(void)
{
	struct wa_cert_policy p;
	memcpy(p.root_pub, root.pub, 32);
	p.now = NOW;
	return p;
}

/* One frame out of a byte stream, copied so the caller owns it. */
static void
one_frame(struct wa_frame_reader *r, const struct wg_buf *in, struct wg_buf *frame)
{
	const uint8_t *p;
	size_t len;
	assert_int_equal(wa_frame_feed(r, in->data, in->len), 0);
	assert_int_equal(wa_frame_next(r, &p, &len), 1);
	wg_buf_reset(frame);
	wg_buf_append(frame, p, len);
	assert_int_equal(wa_frame_next(r, &p, &len), 0);
}

struct pair {
	struct wa_noise *c, *s;
	struct wa_frame_reader cr, sr; /* what the client reads, what the server reads */
	struct wg_buf hello, server_hello, finish; /* frame payloads, no length prefix */
};

static void
pair_free(struct pair *p)
{
	wa_noise_free(p->c);
	wa_noise_free(p->s);
	wa_frame_reader_free(&p->cr);
	wa_frame_reader_free(&p->sr);
	wg_buf_free(&p->hello);
	wg_buf_free(&p->server_hello);
	wg_buf_free(&p->finish);
}

/* Client hello, through the server's frame reader (intro included). */
static void
step_hello(struct pair *p, int dv)
{
	struct wg_buf wire = {0};
	memset(p, 0, sizeof(*p));
	wa_frame_reader_init(&p->cr, WA_FRAME_CLIENT, 0);
	wa_frame_reader_init(&p->sr, WA_FRAME_SERVER, 0);
	p->c = wa_noise_new(WA_NOISE_CLIENT, dv);
	assert_non_null(p->c);
	assert_int_equal(wa_noise_client_hello(p->c, &wire), 0);
	one_frame(&p->sr, &wire, &p->hello);
	assert_int_equal(wa_frame_dict_version(&p->sr), dv);
	p->s = wa_noise_new(WA_NOISE_SERVER, wa_frame_dict_version(&p->sr));
	assert_non_null(p->s);
	wg_buf_free(&wire);
}

static void
step_server_hello(struct pair *p)
{
	struct wg_buf wire = {0};
	assert_int_equal(wa_noise_server_hello(p->s, p->hello.data, p->hello.len,
	                                       server_static.priv, server_static.pub, chain.data,
	                                       chain.len, &wire),
	                 0);
	one_frame(&p->cr, &wire, &p->server_hello);
	wg_buf_free(&wire);
}

static int
step_client_finish(struct pair *p, const struct wa_cert_policy *pol)
{
	struct wg_buf wire = {0};
	int rc = wa_noise_client_finish(p->c, p->server_hello.data, p->server_hello.len,
	                                client_noise.priv, client_noise.pub, pol, client_payload,
	                                sizeof(client_payload), &wire);
	if (rc == 0)
		one_frame(&p->sr, &wire, &p->finish);
	else
		assert_int_equal(wire.len, 0);
	wg_buf_free(&wire);
	return rc;
}

static void
step_server_finish(struct pair *p)
{
	uint8_t cs[32];
	struct wg_buf payload = {0};
	assert_int_equal(wa_noise_server_finish(p->s, p->finish.data, p->finish.len, cs, &payload),
	                 0);
	assert_memory_equal(cs, client_noise.pub, 32);
	assert_int_equal(payload.len, sizeof(client_payload));
	assert_memory_equal(payload.data, client_payload, sizeof(client_payload));
	wg_buf_free(&payload);
}

static void
handshake(struct pair *p, int dv)
{
	struct wa_cert_policy pol = policy();
	step_hello(p, dv);
	step_server_hello(p);
	assert_int_equal(step_client_finish(p, &pol), 0);
	step_server_finish(p);
	assert_true(wa_noise_is_transport(p->c));
	assert_true(wa_noise_is_transport(p->s));
	/* Both sides saw the same transcript. */
	assert_memory_equal(wa_noise_handshake_hash(p->c), wa_noise_handshake_hash(p->s), 32);
}

/* Sends plain from one side and checks the other side receives it. */
static void
transfer(struct wa_noise *from, struct wa_noise *to, struct wa_frame_reader *to_reader,
         const uint8_t *plain, size_t len)
{
	struct wg_buf wire = {0}, frame = {0}, got = {0};
	assert_int_equal(wa_noise_encrypt_frame(from, plain, len, &wire), 0);
	assert_int_equal(wire.len, 3 + len + 16);
	one_frame(to_reader, &wire, &frame);
	assert_int_equal(wa_noise_decrypt(to, frame.data, frame.len, &got), 0);
	assert_int_equal(got.len, len);
	if (len)
		assert_memory_equal(got.data, plain, len);
	wg_buf_free(&wire);
	wg_buf_free(&frame);
	wg_buf_free(&got);
}

/* Encrypts one transport frame and returns its payload (no length prefix). */
static void
seal(struct wa_noise *from, const char *text, struct wg_buf *payload)
{
	struct wg_buf wire = {0};
	assert_int_equal(wa_noise_encrypt_frame(from, (const uint8_t *)text, strlen(text), &wire),
	                 0);
	wg_buf_reset(payload);
	wg_buf_append(payload, wire.data + 3, wire.len - 3);
	wg_buf_free(&wire);
}

static void
test_vectors(void **state)
{
	(void)state;
	uint8_t want[32], h[32], buf[36];
	hex(want, "4e6f6973655f58585f32353531395f41455347434d5f53484132353600000000");
	assert_memory_equal(WA_NOISE_PROTOCOL_NAME, want, 32);

	/* h after MixHash(intro), computed independently and as wa_noise_new leaves it. */
	memcpy(buf, want, 32);
	memcpy(buf + 32, "\x57\x41\x06\x02", 4);
	wa_crypto_sha256(h, buf, sizeof(buf));
	hex(want, "24076ca3815931f30d113dfc5f158dbf4e5ff5a2f01da528ff682074befc9eed");
	assert_memory_equal(h, want, 32);
	for (int role = WA_NOISE_CLIENT; role <= WA_NOISE_SERVER; role++) {
		struct wa_noise *ns = wa_noise_new(role, 2);
		assert_memory_equal(wa_noise_handshake_hash(ns), want, 32);
		wa_noise_free(ns);
	}
	hex(want, "ffff0c9267310966f1311170c04b38c79504285bf5edf763e5c946492a50a755");
	for (int role = WA_NOISE_CLIENT; role <= WA_NOISE_SERVER; role++) {
		struct wa_noise *ns = wa_noise_new(role, 3);
		assert_memory_equal(wa_noise_handshake_hash(ns), want, 32);
		wa_noise_free(ns);
	}
	assert_null(wa_noise_new(WA_NOISE_CLIENT, 4));
	assert_null(wa_noise_new(WA_NOISE_SERVER, 1));
}

static void
test_client_hello_wire(void **state)
{
	(void)state;
	uint8_t priv[32], pub[32], h[32], buf[64];
	struct wg_buf out = {0};
	hex(priv, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	hex(pub, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");

	struct wa_noise *c = wa_noise_new(WA_NOISE_CLIENT, 3);
	memcpy(buf, wa_noise_handshake_hash(c), 32);
	wa_noise__set_ephemeral(c, priv);
	wg_buf_append(&out, "keep", 4); /* appends, never overwrites */
	assert_int_equal(wa_noise_client_hello(c, &out), 0);
	/* keep | intro | len 36 | HandshakeMessage{clientHello{ephemeral}} */
	static const uint8_t prefix[] = {'k',  'e',  'e',  'p',  0x57, 0x41, 0x06, 0x03,
	                                 0x00, 0x00, 0x24, 0x12, 0x22, 0x0a, 0x20};
	assert_int_equal(out.len, sizeof(prefix) + 32);
	assert_memory_equal(out.data, prefix, sizeof(prefix));
	assert_memory_equal(out.data + sizeof(prefix), pub, 32);
	/* MixHash(e.pub) follows MixHash(intro). */
	memcpy(buf + 32, pub, 32);
	wa_crypto_sha256(h, buf, 64);
	assert_memory_equal(wa_noise_handshake_hash(c), h, 32);
	/* Only once, and a client cannot act as a server. */
	assert_int_equal(wa_noise_client_hello(c, &out), WG_ESTATE);
	assert_int_equal(wa_noise_server_hello(c, out.data, out.len, priv, pub, NULL, 0, &out),
	                 WG_ESTATE);
	wa_noise_free(c);
	wg_buf_free(&out);
}

static void
exchange_many(int dv)
{
	struct pair p;
	uint8_t big[5000];
	handshake(&p, dv);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	/* Interleaved, with the counters of each direction moving independently. */
	for (size_t i = 0; i < 6; i++) {
		transfer(p.c, p.s, &p.sr, big, i * 97);
		transfer(p.s, p.c, &p.cr, big + i, 1000 + i);
		transfer(p.s, p.c, &p.cr, big, i);
	}
	transfer(p.c, p.s, &p.sr, big, sizeof(big));
	pair_free(&p);
}

static void
test_roundtrip_v2(void **state)
{
	(void)state;
	exchange_many(2);
}

static void
test_roundtrip_v3(void **state)
{
	(void)state;
	exchange_many(3);
}

/* Several frames in one WebSocket message arrive in order. */
static void
test_frames_batched(void **state)
{
	(void)state;
	struct pair p;
	struct wg_buf wire = {0}, got = {0};
	const uint8_t *f;
	size_t len;
	handshake(&p, 3);
	for (int i = 0; i < 4; i++) {
		uint8_t msg[2] = {'m', (uint8_t)('0' + i)};
		assert_int_equal(wa_noise_encrypt_frame(p.s, msg, 2, &wire), 0);
	}
	assert_int_equal(wa_frame_feed(&p.cr, wire.data, wire.len), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(wa_frame_next(&p.cr, &f, &len), 1);
		assert_int_equal(wa_noise_decrypt(p.c, f, len, &got), 0);
	}
	assert_int_equal(wa_frame_next(&p.cr, &f, &len), 0);
	assert_int_equal(got.len, 8);
	assert_memory_equal(got.data, "m0m1m2m3", 8);
	wg_buf_free(&wire);
	wg_buf_free(&got);
	pair_free(&p);
}

static void
test_transport_tampering(void **state)
{
	(void)state;
	struct pair p;
	struct wg_buf f0 = {0}, f1 = {0}, out = {0};

	/* A flipped ciphertext bit, then the session is dead. */
	handshake(&p, 3);
	seal(p.c, "hello server", &f0);
	f0.data[2] ^= 0x01;
	assert_int_equal(wa_noise_decrypt(p.s, f0.data, f0.len, &out), WG_ECRYPTO);
	assert_int_equal(out.len, 0);
	assert_non_null(wa_noise_why(p.s));
	f0.data[2] ^= 0x01;
	assert_int_equal(wa_noise_decrypt(p.s, f0.data, f0.len, &out), WG_ESTATE);
	assert_int_equal(wa_noise_encrypt_frame(p.s, f0.data, 1, &out), WG_ESTATE);
	pair_free(&p);

	/* A flipped tag bit. */
	handshake(&p, 2);
	seal(p.s, "hello client", &f0);
	f0.data[f0.len - 1] ^= 0x80;
	assert_int_equal(wa_noise_decrypt(p.c, f0.data, f0.len, &out), WG_ECRYPTO);
	pair_free(&p);

	/* A replayed frame: the counter has moved on. */
	handshake(&p, 3);
	seal(p.c, "once", &f0);
	assert_int_equal(wa_noise_decrypt(p.s, f0.data, f0.len, &out), 0);
	assert_int_equal(wa_noise_decrypt(p.s, f0.data, f0.len, &out), WG_ECRYPTO);
	pair_free(&p);

	/* Reordered frames. */
	handshake(&p, 3);
	seal(p.c, "first", &f0);
	seal(p.c, "second", &f1);
	assert_int_equal(wa_noise_decrypt(p.s, f1.data, f1.len, &out), WG_ECRYPTO);
	pair_free(&p);

	/* A frame reflected back to its sender: the two directions use different keys. */
	handshake(&p, 3);
	seal(p.c, "echo", &f0);
	assert_int_equal(wa_noise_decrypt(p.c, f0.data, f0.len, &out), WG_ECRYPTO);
	pair_free(&p);

	/* Truncated below a tag. */
	handshake(&p, 3);
	seal(p.c, "x", &f0);
	assert_int_equal(wa_noise_decrypt(p.s, f0.data, 15, &out), WG_ECRYPTO);
	pair_free(&p);

	/* Transport calls before the handshake is done. */
	struct wa_noise *c = wa_noise_new(WA_NOISE_CLIENT, 3);
	assert_int_equal(wa_noise_encrypt_frame(c, f0.data, 1, &out), WG_ESTATE);
	assert_int_equal(wa_noise_decrypt(c, f0.data, f0.len, &out), WG_ESTATE);
	wa_noise_free(c);

	wg_buf_free(&f0);
	wg_buf_free(&f1);
	wg_buf_free(&out);
}

/* Re-encodes a ServerHello after mutate() and runs client_finish on it. */
static int
client_finish_tampered(int (*mutate)(Wa__HandshakeMessage *m, uint8_t *scratch), const char **why)
{
	struct pair p;
	struct wa_cert_policy pol = policy();
	uint8_t scratch[64];
	step_hello(&p, 3);
	step_server_hello(&p);
	Wa__HandshakeMessage *m =
	    wa__handshake_message__unpack(NULL, p.server_hello.len, p.server_hello.data);
	assert_non_null(m);
	assert_non_null(m->server_hello);
	if (mutate(m, scratch) == 0) {
		size_t len = wa__handshake_message__get_packed_size(m);
		wg_buf_reset(&p.server_hello);
		wg_buf_reserve(&p.server_hello, len);
		wa__handshake_message__pack(m, p.server_hello.data);
		p.server_hello.len = len;
	} else {
		/* Not a HandshakeMessage at all. */
		wg_buf_reset(&p.server_hello);
		wg_buf_append(&p.server_hello, "\xff\xff\xff", 3);
	}
	wa__handshake_message__free_unpacked(m, NULL);
	int rc = step_client_finish(&p, &pol);
	*why = wa_noise_why(p.c);
	/* After a failure nothing more happens. */
	if (rc != 0)
		assert_int_equal(step_client_finish(&p, &pol), WG_ESTATE);
	pair_free(&p);
	return rc;
}

static int
flip_static(Wa__HandshakeMessage *m, uint8_t *scratch)
{
	(void)scratch;
	m->server_hello->static_.data[5] ^= 0x40;
	return 0;
}

static int
flip_payload(Wa__HandshakeMessage *m, uint8_t *scratch)
{
	(void)scratch;
	m->server_hello->payload.data[m->server_hello->payload.len - 3] ^= 0x01;
	return 0;
}

static int
swap_ephemeral(Wa__HandshakeMessage *m, uint8_t *scratch)
{
	struct wa_keypair k;
	wa_crypto_keypair(&k);
	(void)scratch;
	memcpy(m->server_hello->ephemeral.data, k.pub, 32);
	return 0;
}

static int
short_ephemeral(Wa__HandshakeMessage *m, uint8_t *scratch)
{
	(void)scratch;
	m->server_hello->ephemeral.len = 31;
	return 0;
}

static int
drop_static(Wa__HandshakeMessage *m, uint8_t *scratch)
{
	(void)scratch;
	m->server_hello->has_static_ = 0;
	return 0;
}

static int
drop_hello(Wa__HandshakeMessage *m, uint8_t *scratch)
{
	(void)scratch;
	/* A ClientFinish where a ServerHello belongs (leaks nothing: freed via m). */
	static Wa__HandshakeMessage__ClientFinish cf = WA__HANDSHAKE_MESSAGE__CLIENT_FINISH__INIT;
	protobuf_c_message_free_unpacked(&m->server_hello->base, NULL);
	m->server_hello = NULL;
	m->client_finish = &cf;
	return 0;
}

static int
garbage(Wa__HandshakeMessage *m, uint8_t *scratch)
{
	(void)m;
	(void)scratch;
	return -1;
}

static void
test_tampered_server_hello(void **state)
{
	(void)state;
	const char *why = NULL;
	assert_int_equal(client_finish_tampered(flip_static, &why), WG_ECRYPTO);
	assert_string_equal(why, "server static key does not decrypt");
	assert_int_equal(client_finish_tampered(flip_payload, &why), WG_ECRYPTO);
	assert_string_equal(why, "server certificate does not decrypt");
	assert_int_equal(client_finish_tampered(swap_ephemeral, &why), WG_ECRYPTO);
	assert_int_equal(client_finish_tampered(short_ephemeral, &why), WG_EPROTO);
	assert_int_equal(client_finish_tampered(drop_static, &why), WG_EPROTO);
	assert_int_equal(client_finish_tampered(garbage, &why), WG_EPROTO);
	assert_string_equal(why, "ServerHello does not parse");
}

static void
test_drop_hello_is_eproto(void **state)
{
	(void)state;
	const char *why = NULL;
	/* drop_hello leaves a message that still unpacks but has no ServerHello. */
	struct pair p;
	struct wa_cert_policy pol = policy();
	step_hello(&p, 3);
	step_server_hello(&p);
	Wa__HandshakeMessage *m =
	    wa__handshake_message__unpack(NULL, p.server_hello.len, p.server_hello.data);
	uint8_t scratch[64];
	drop_hello(m, scratch);
	size_t len = wa__handshake_message__get_packed_size(m);
	wg_buf_reset(&p.server_hello);
	wg_buf_reserve(&p.server_hello, len + 1);
	wa__handshake_message__pack(m, p.server_hello.data);
	p.server_hello.len = len;
	m->client_finish = NULL; /* static, not ours to free */
	wa__handshake_message__free_unpacked(m, NULL);
	assert_int_equal(step_client_finish(&p, &pol), WG_EPROTO);
	why = wa_noise_why(p.c);
	assert_string_equal(why, "ServerHello does not parse");
	pair_free(&p);
}

static void
test_certificate_rejected(void **state)
{
	(void)state;
	struct pair p;
	struct wa_cert_policy pol = policy();
	struct wa_keypair other;

	/* A client that trusts another root. */
	wa_crypto_keypair(&other);
	memcpy(pol.root_pub, other.pub, 32);
	step_hello(&p, 3);
	step_server_hello(&p);
	assert_int_equal(step_client_finish(&p, &pol), WG_ECERT);
	assert_string_equal(wa_noise_why(p.c),
	                    "intermediate certificate not signed by the root key");
	assert_false(wa_noise_is_transport(p.c));
	pair_free(&p);

	/* A chain for another server key (a man in the middle reusing a real chain). */
	struct wg_buf other_chain = {0};
	assert_int_equal(wa_cert_issue(root.priv, other.pub, NOW, &other_chain), 0);
	pol = policy();
	step_hello(&p, 3);
	struct wg_buf wire = {0};
	assert_int_equal(wa_noise_server_hello(p.s, p.hello.data, p.hello.len, server_static.priv,
	                                       server_static.pub, other_chain.data, other_chain.len,
	                                       &wire),
	                 0);
	one_frame(&p.cr, &wire, &p.server_hello);
	assert_int_equal(step_client_finish(&p, &pol), WG_ECERT);
	assert_string_equal(wa_noise_why(p.c), "leaf key is not the server's static key");
	pair_free(&p);

	/* An expired chain. */
	pol = policy();
	pol.now = NOW + 400 * 86400;
	step_hello(&p, 3);
	step_server_hello(&p);
	assert_int_equal(step_client_finish(&p, &pol), WG_ECERT);
	pair_free(&p);

	wg_buf_free(&wire);
	wg_buf_free(&other_chain);
}

static void
test_tampered_client_finish(void **state)
{
	(void)state;
	struct wa_cert_policy pol = policy();
	uint8_t cs[32];
	struct wg_buf payload = {0};

	for (int which = 0; which < 4; which++) {
		struct pair p;
		step_hello(&p, which % 2 ? 2 : 3);
		step_server_hello(&p);
		assert_int_equal(step_client_finish(&p, &pol), 0);
		Wa__HandshakeMessage *m =
		    wa__handshake_message__unpack(NULL, p.finish.len, p.finish.data);
		assert_non_null(m);
		assert_non_null(m->client_finish);
		assert_int_equal(m->client_finish->static_.len, 48);
		int want = WG_ECRYPTO;
		if (which == 0)
			m->client_finish->static_.data[0] ^= 1;
		else if (which == 1)
			m->client_finish->payload.data[0] ^= 1;
		else if (which == 2)
			m->client_finish->payload.data[m->client_finish->payload.len - 1] ^= 1;
		else {
			m->client_finish->has_payload = 0;
			want = WG_EPROTO;
		}
		size_t len = wa__handshake_message__get_packed_size(m);
		wg_buf_reset(&p.finish);
		wg_buf_reserve(&p.finish, len + 1);
		wa__handshake_message__pack(m, p.finish.data);
		p.finish.len = len;
		wa__handshake_message__free_unpacked(m, NULL);
		assert_int_equal(
		    wa_noise_server_finish(p.s, p.finish.data, p.finish.len, cs, &payload), want);
		assert_int_equal(payload.len, 0);
		assert_false(wa_noise_is_transport(p.s));
		assert_int_equal(
		    wa_noise_server_finish(p.s, p.finish.data, p.finish.len, cs, &payload),
		    WG_ESTATE);
		pair_free(&p);
	}
	wg_buf_free(&payload);
}

/* A client and server whose intros disagree derive different keys. */
static void
test_prologue_mismatch(void **state)
{
	(void)state;
	struct pair p;
	struct wa_cert_policy pol = policy();
	step_hello(&p, 3);
	wa_noise_free(p.s);
	p.s = wa_noise_new(WA_NOISE_SERVER, 2);
	step_server_hello(&p);
	assert_int_equal(step_client_finish(&p, &pol), WG_ECRYPTO);
	pair_free(&p);
}

static void
test_bad_client_hello(void **state)
{
	(void)state;
	struct wg_buf out = {0};
	struct wa_noise *s = wa_noise_new(WA_NOISE_SERVER, 3);
	/* clientHello with a 31-byte ephemeral. */
	uint8_t msg[2 + 2 + 31] = {0x12, 0x21, 0x0a, 0x1f};
	assert_int_equal(wa_noise_server_hello(s, msg, sizeof(msg), server_static.priv,
	                                       server_static.pub, chain.data, chain.len, &out),
	                 WG_EPROTO);
	assert_int_equal(out.len, 0);
	wa_noise_free(s);
	s = wa_noise_new(WA_NOISE_SERVER, 3);
	assert_int_equal(wa_noise_server_hello(s, (const uint8_t *)"\xff", 1, server_static.priv,
	                                       server_static.pub, chain.data, chain.len, &out),
	                 WG_EPROTO);
	wa_noise_free(s);
	wg_buf_free(&out);
}

/*
 * A transcript recorded with Baileys 6.17.16's own noise handler as the
 * client and this module as the server, with fixed keys (each private key is
 * 32 copies of one byte, clamped): client ephemeral 0x11, client noise key
 * 0x22, server ephemeral 0x33, server static 0x44, certificate root 0x55 (the
 * chain was issued at NOW). DV 2, the payload is the §3 LOGIN vector, then
 * "ping" from the client and "pong" from the server. AES-GCM is
 * deterministic, so both roles must reproduce Baileys' bytes exactly; this
 * pins what an in-memory round trip cannot: key order in Split, the shared
 * handshake counter, the IV layout.
 */
static const char bl_chain[] =
    "0a7e0a3a08ea97d1ca0710feaaa4c7071a20ff2ee45601ec1b67310c7790404585ae697331eee1c1"
    "f8cf2419731c1fff3e6b20f0a6bbc2062880ddd9c306124064a0ca1f9391a6bab12c5e24826d18a3"
    "54cb2a5306a3403115e9d8fd63f309346f8a370bcfa8d55970620c7eec56c2a954634345af379925"
    "faa219764fedef00127a0a3608feaaa4c70710001a20d9acb67f3d2bf477f09bcc9f3d168658a7d8"
    "611db3f12ae73f3631538b752b742080a0b6c2062880aac0d1061240c8181c8a80846c4577ffe0ad"
    "3f96baa394ea95bd94765a2d91b3b6cb8e58867e1f0c0af94e267ec66258310a552c7d9cffd4c48e"
    "bd4d3ff06007920dbe203002";
static const char bl_hello[] =
    "5741060200002412220a207b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0"
    "f73f13";
static const char bl_serverhello[] =
    "0001661ae3020a207b0d47d93427f8311160781c7c733fd89f88970aef490d8aa0ee19a4cb8a1b14"
    "123076c390387466635d58f0323bdcbe69099601a1a274074852c87a5a56adbc22002d54c99893f9"
    "826f47e9522804146eaf1a8c0228839fbaa4a25da35f8fac6ebbe16857f69e53070cad731644d226"
    "05c4bd361f013b161c6035d8b964abf837c2fec1e4915c66a1d2d5c6aba47c026e8f2ae6370ad14f"
    "5323ffd900a39477f46ad7e87b897e5309dd762765945039d1361aab66f13d0182c2d6b92eb380e2"
    "745f67ba962bebd5328d2c8f53b7f25cc2972047cc9cad4c9f0d6d38e22d65f990c92a45cbd6a792"
    "2bdab66e27574b85edb2af30a2dfa17ac65627dc2da90f3df57c728a4e98d936c9398aba88d2716f"
    "c79c884721b329bc3f273da2a76ca89ab186bc83cac495725967eb44dc8de1c8f6e3220879e1179c"
    "b57f986b7d63f8c2c71e7d803b375abefb63bb029e20b8303efe3fee4b654ee38c356fdfed0dc1dd"
    "da";
static const char bl_finish[] =
    "0000952292010a30b9cb19690dfcfb9a42e033388870388167c822982ffe1d4ef4c15a4d3e5d9d41"
    "a75ed552e4a4c88c13415cb9229a5f61125e48e381a218138bce8abd80cfa31be1b047f5b9d7099f"
    "55c4aa2df25c4dd69e85c2ce3ad886465ddea4733291524cacc63b6cc28461fe6aea944b9df522ab"
    "84f75c51bf35f56eb01fa0588241731654339646915929811dd320c4e9bf5259";
static const char bl_ping[] = "6bf1e0b97ff3d925809be529db30e41f8f4fed81";
static const char bl_pong[] = "03c68b1b7879d4f6d74548f117d4ced20b0e8f9d";
static const char bl_payload[] =
    "088784b4f73918002a36080e120b080210b81718c6839ee6031a0330303022033030302a03302e31"
    "3a074465736b746f704203302e3150005a02656e620255533202200060016801900107880201";

static void
fixed_key(uint8_t priv[32], uint8_t pub[32], uint8_t fill)
{
	memset(priv, fill, 32);
	wa_crypto_clamp(priv);
	assert_int_equal(wa_crypto_pub_from_priv(pub, priv), 0);
}

static void
hexbuf(struct wg_buf *b, const char *s)
{
	size_t bad = 0;
	wg_buf_reset(b);
	wg_buf_reserve(b, strlen(s) / 2 + 1);
	long n = wg_hex_decode(b->data, s, strlen(s), &bad);
	assert_true(n >= 0);
	b->len = (size_t)n;
}

static void
test_baileys_transcript(void **state)
{
	(void)state;
	uint8_t ce[32], ce_pub[32], cn[32], cn_pub[32], se[32], se_pub[32], ss[32], ss_pub[32];
	uint8_t root_priv[32], cs[32];
	struct wg_buf cert = {0}, hello = {0}, sh = {0}, fin = {0}, ping = {0}, pong = {0};
	struct wg_buf payload = {0}, out = {0}, got = {0};
	fixed_key(ce, ce_pub, 0x11);
	fixed_key(cn, cn_pub, 0x22);
	fixed_key(se, se_pub, 0x33);
	fixed_key(ss, ss_pub, 0x44);
	struct wa_cert_policy pol = {.now = NOW};
	fixed_key(root_priv, pol.root_pub, 0x55);
	hexbuf(&cert, bl_chain);
	hexbuf(&hello, bl_hello);
	hexbuf(&sh, bl_serverhello);
	hexbuf(&fin, bl_finish);
	hexbuf(&ping, bl_ping);
	hexbuf(&pong, bl_pong);
	hexbuf(&payload, bl_payload);

	/* Server role, fed Baileys' messages. */
	struct wa_noise *s = wa_noise_new(WA_NOISE_SERVER, 2);
	wa_noise__set_ephemeral(s, se);
	assert_int_equal(wa_noise_server_hello(s, hello.data + 7, hello.len - 7, ss, ss_pub,
	                                       cert.data, cert.len, &out),
	                 0);
	assert_int_equal(out.len, sh.len);
	assert_memory_equal(out.data, sh.data, sh.len);
	assert_int_equal(wa_noise_server_finish(s, fin.data + 3, fin.len - 3, cs, &got), 0);
	assert_memory_equal(cs, cn_pub, 32);
	assert_int_equal(got.len, payload.len);
	assert_memory_equal(got.data, payload.data, payload.len);
	wg_buf_reset(&got);
	assert_int_equal(wa_noise_decrypt(s, ping.data, ping.len, &got), 0);
	assert_int_equal(got.len, 4);
	assert_memory_equal(got.data, "ping", 4);
	wg_buf_reset(&out);
	assert_int_equal(wa_noise_encrypt_frame(s, (const uint8_t *)"pong", 4, &out), 0);
	assert_int_equal(out.len, 3 + pong.len);
	assert_memory_equal(out.data + 3, pong.data, pong.len);
	wa_noise_free(s);

	/* Client role: must produce exactly what Baileys sent. */
	struct wa_noise *c = wa_noise_new(WA_NOISE_CLIENT, 2);
	wa_noise__set_ephemeral(c, ce);
	wg_buf_reset(&out);
	assert_int_equal(wa_noise_client_hello(c, &out), 0);
	assert_int_equal(out.len, hello.len);
	assert_memory_equal(out.data, hello.data, hello.len);
	wg_buf_reset(&out);
	assert_int_equal(wa_noise_client_finish(c, sh.data + 3, sh.len - 3, cn, cn_pub, &pol,
	                                        payload.data, payload.len, &out),
	                 0);
	assert_int_equal(out.len, fin.len);
	assert_memory_equal(out.data, fin.data, fin.len);
	wg_buf_reset(&out);
	assert_int_equal(wa_noise_encrypt_frame(c, (const uint8_t *)"ping", 4, &out), 0);
	assert_int_equal(out.len, 3 + ping.len);
	assert_memory_equal(out.data + 3, ping.data, ping.len);
	wg_buf_reset(&got);
	assert_int_equal(wa_noise_decrypt(c, pong.data, pong.len, &got), 0);
	assert_memory_equal(got.data, "pong", 4);
	wa_noise_free(c);

	wg_buf_free(&cert);
	wg_buf_free(&hello);
	wg_buf_free(&sh);
	wg_buf_free(&fin);
	wg_buf_free(&ping);
	wg_buf_free(&pong);
	wg_buf_free(&payload);
	wg_buf_free(&out);
	wg_buf_free(&got);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_client_hello_wire),
	    cmocka_unit_test(test_roundtrip_v2),
	    cmocka_unit_test(test_roundtrip_v3),
	    cmocka_unit_test(test_frames_batched),
	    cmocka_unit_test(test_transport_tampering),
	    cmocka_unit_test(test_tampered_server_hello),
	    cmocka_unit_test(test_drop_hello_is_eproto),
	    cmocka_unit_test(test_certificate_rejected),
	    cmocka_unit_test(test_tampered_client_finish),
	    cmocka_unit_test(test_prologue_mismatch),
	    cmocka_unit_test(test_bad_client_hello),
	    cmocka_unit_test(test_baileys_transcript),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
