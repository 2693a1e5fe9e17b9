#include "wa/noise.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"
#include "proto/wa.pb-c.h"
#include "wa/crypto.h"
#include "wa/frame.h"

enum state {
	ST_START,       /* client: nothing sent; server: waiting for ClientHello */
	ST_WAIT_SERVER, /* client: ClientHello sent */
	ST_WAIT_FINISH, /* server: ServerHello sent */
	ST_TRANSPORT,
	ST_FAILED,
};

struct wa_noise {
	enum wa_noise_role role;
	enum state state;
	int dv;
	/* Symmetric handshake state. WA keeps one counter for both directions
	 * during the handshake; MixKey resets it. */
	uint8_t h[32], ck[32], k[32];
	uint32_t n;
	struct wa_keypair e; /* our ephemeral */
	uint8_t re[32];      /* the peer's ephemeral */
	/* Transport keys and per-direction counters; 64-bit so that exhausting
	 * the 32-bit IV space is detectable. */
	uint8_t wkey[32], rkey[32];
	uint64_t wn, rn;
	const char *why;
};

struct wa_noise *
wa_noise_new(enum wa_noise_role role, int dict_version)
{
	if (dict_version != 2 && dict_version != 3)
		return NULL;
	struct wa_noise *ns = wg_calloc(1, sizeof(*ns));
	ns->role = role;
	ns->dv = dict_version;
	/* The name is exactly 32 bytes, so Noise uses it as h directly. */
	memcpy(ns->h, WA_NOISE_PROTOCOL_NAME, 32);
	memcpy(ns->ck, ns->h, 32);
	memcpy(ns->k, ns->h, 32);
	/* The intro is the prologue; only its 4 bytes are hashed, never the ED block. */
	uint8_t intro[4] = {0x57, 0x41, 0x06, (uint8_t)dict_version};
	uint8_t buf[36];
	memcpy(buf, ns->h, 32);
	memcpy(buf + 32, intro, 4);
	wa_crypto_sha256(ns->h, buf, sizeof(buf));
	wa_crypto_keypair(&ns->e);
	return ns;
}

void
wa_noise_free(struct wa_noise *ns)
{
	if (ns == NULL)
		return;
	wg_wipe(ns, sizeof(*ns));
	free(ns);
}

void
wa_noise__set_ephemeral(struct wa_noise *ns, const uint8_t priv[32])
{
	memcpy(ns->e.priv, priv, 32);
	wa_crypto_clamp(ns->e.priv);
	if (wa_crypto_pub_from_priv(ns->e.pub, ns->e.priv) != 0)
		abort();
}

int
wa_noise_is_transport(const struct wa_noise *ns)
{
	return ns->state == ST_TRANSPORT;
}

const uint8_t *
wa_noise_handshake_hash(const struct wa_noise *ns)
{
	return ns->h;
}

const char *
wa_noise_why(const struct wa_noise *ns)
{
	return ns->why;
}

static int
fail(struct wa_noise *ns, int err, const char *why)
{
	ns->state = ST_FAILED;
	ns->why = why;
	/* Nothing derived so far may be used after a failure. */
	wg_wipe(ns->ck, sizeof(ns->ck));
	wg_wipe(ns->k, sizeof(ns->k));
	wg_wipe(&ns->e, sizeof(ns->e));
	wg_wipe(ns->wkey, sizeof(ns->wkey));
	wg_wipe(ns->rkey, sizeof(ns->rkey));
	return err;
}

static void
mix_hash(struct wa_noise *ns, const uint8_t *data, size_t len)
{
	uint8_t *buf = wg_malloc(32 + len);
	memcpy(buf, ns->h, 32);
	if (len)
		memcpy(buf + 32, data, len);
	wa_crypto_sha256(ns->h, buf, 32 + len);
	free(buf);
}

static void
mix_key(struct wa_noise *ns, const uint8_t ikm[32])
{
	uint8_t okm[64];
	wa_crypto_hkdf(okm, sizeof(okm), ns->ck, 32, ikm, 32, NULL, 0);
	memcpy(ns->ck, okm, 32);
	memcpy(ns->k, okm + 32, 32);
	ns->n = 0;
	wg_wipe(okm, sizeof(okm));
}

/* MixKey(DH(our key pair, their public key)); fails on a low-order peer key. */
static int
mix_dh(struct wa_noise *ns, const uint8_t priv[32], const uint8_t ours[32], const uint8_t pub[32])
{
	uint8_t shared[32];
	struct wa_keypair kp;
	memcpy(kp.priv, priv, 32);
	memcpy(kp.pub, ours, 32);
	int rc = wa_crypto_dh(shared, &kp, pub);
	if (rc == 0)
		mix_key(ns, shared);
	wg_wipe(shared, sizeof(shared));
	wg_wipe(&kp, sizeof(kp));
	return rc;
}

/* IV(n): 8 zero bytes, then n as a big-endian uint32. */
static void
make_iv(uint8_t iv[12], uint64_t n)
{
	memset(iv, 0, 8);
	iv[8] = (uint8_t)(n >> 24);
	iv[9] = (uint8_t)(n >> 16);
	iv[10] = (uint8_t)(n >> 8);
	iv[11] = (uint8_t)n;
}

/* Handshake Encrypt: c = GCM(k, IV(n), AAD = h, p); n++; MixHash(c). Returns malloc'd c. */
static uint8_t *
hs_encrypt(struct wa_noise *ns, const uint8_t *p, size_t len)
{
	uint8_t iv[12];
	uint8_t *c = wg_malloc(len + WA_GCM_TAG_LEN);
	make_iv(iv, ns->n++);
	if (wa_crypto_gcm_encrypt(ns->k, iv, ns->h, 32, p, len, c) != 0)
		abort(); /* only fails on sizes the frame limit already excludes */
	mix_hash(ns, c, len + WA_GCM_TAG_LEN);
	return c;
}

/* Handshake Decrypt: the mirror of hs_encrypt, MixHash over the ciphertext. */
static int
hs_decrypt(struct wa_noise *ns, const uint8_t *c, size_t len, uint8_t **p_out, size_t *p_len)
{
	uint8_t iv[12];
	if (len < WA_GCM_TAG_LEN)
		return WG_EPROTO;
	uint8_t *p = wg_malloc(len - WA_GCM_TAG_LEN);
	make_iv(iv, ns->n++);
	if (wa_crypto_gcm_decrypt(ns->k, iv, ns->h, 32, c, len, p) != 0) {
		free(p);
		return WG_ECRYPTO;
	}
	mix_hash(ns, c, len);
	*p_out = p;
	*p_len = len - WA_GCM_TAG_LEN;
	return 0;
}

static int
append_handshake(struct wg_buf *out, const Wa__HandshakeMessage *m)
{
	size_t len = wa__handshake_message__get_packed_size(m);
	if (len > WA_FRAME_HARD_MAX)
		return WG_ELIMIT;
	uint8_t hdr[3] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
	wg_buf_reserve(out, sizeof(hdr) + len);
	wg_buf_append(out, hdr, sizeof(hdr));
	wa__handshake_message__pack(m, out->data + out->len);
	out->len += len;
	return 0;
}

/* Derives the transport keys; the first half of the output is the client's write key. */
static void
split(struct wa_noise *ns)
{
	uint8_t okm[64];
	wa_crypto_hkdf(okm, sizeof(okm), ns->ck, 32, NULL, 0, NULL, 0);
	int client = ns->role == WA_NOISE_CLIENT;
	memcpy(ns->wkey, client ? okm : okm + 32, 32);
	memcpy(ns->rkey, client ? okm + 32 : okm, 32);
	ns->wn = ns->rn = 0;
	ns->state = ST_TRANSPORT;
	wg_wipe(okm, sizeof(okm));
	wg_wipe(ns->ck, sizeof(ns->ck));
	wg_wipe(ns->k, sizeof(ns->k));
	wg_wipe(&ns->e, sizeof(ns->e));
}

int
wa_noise_client_hello(struct wa_noise *ns, struct wg_buf *out)
{
	if (ns->role != WA_NOISE_CLIENT || ns->state != ST_START)
		return WG_ESTATE;
	Wa__HandshakeMessage m = WA__HANDSHAKE_MESSAGE__INIT;
	Wa__HandshakeMessage__ClientHello ch = WA__HANDSHAKE_MESSAGE__CLIENT_HELLO__INIT;
	ch.has_ephemeral = 1;
	ch.ephemeral.data = ns->e.pub;
	ch.ephemeral.len = 32;
	m.client_hello = &ch;

	mix_hash(ns, ns->e.pub, 32);
	wa_frame_write_intro(out, ns->dv);
	int rc = append_handshake(out, &m);
	if (rc < 0)
		return fail(ns, rc, "ClientHello too large");
	ns->state = ST_WAIT_SERVER;
	return 0;
}

int
wa_noise_client_finish(struct wa_noise *ns, const uint8_t *server_hello, size_t len,
                       const uint8_t noise_priv[32], const uint8_t noise_pub[32],
                       const struct wa_cert_policy *policy, const uint8_t *client_payload,
                       size_t payload_len, struct wg_buf *out)
{
	Wa__HandshakeMessage *m = NULL;
	uint8_t *server_static = NULL, *cert = NULL, *n_enc = NULL, *p_enc = NULL;
	size_t s_len = 0, cert_len = 0;
	const char *why = NULL;
	int rc;

	if (ns->role != WA_NOISE_CLIENT || ns->state != ST_WAIT_SERVER)
		return WG_ESTATE;
	if (policy == NULL)
		return WG_EINVAL;
	/* The encrypted payload and its ClientFinish envelope must fit in one frame. */
	if (payload_len > WA_FRAME_HARD_MAX - 256)
		return WG_ELIMIT;
	m = wa__handshake_message__unpack(NULL, len, server_hello);
	const Wa__HandshakeMessage__ServerHello *sh = m ? m->server_hello : NULL;
	if (sh == NULL) {
		rc = fail(ns, WG_EPROTO, "ServerHello does not parse");
		goto out;
	}
	if (!sh->has_ephemeral || sh->ephemeral.len != 32 || !sh->has_static_ || !sh->has_payload) {
		rc =
		    fail(ns, WG_EPROTO, "ServerHello lacks a 32-byte ephemeral, static or payload");
		goto out;
	}
	memcpy(ns->re, sh->ephemeral.data, 32);
	mix_hash(ns, ns->re, 32);
	if (mix_dh(ns, ns->e.priv, ns->e.pub, ns->re) != 0) {
		rc = fail(ns, WG_ECRYPTO, "server ephemeral is a low-order point");
		goto out;
	}
	rc = hs_decrypt(ns, sh->static_.data, sh->static_.len, &server_static, &s_len);
	if (rc != 0) {
		rc = fail(ns, rc, "server static key does not decrypt");
		goto out;
	}
	if (s_len != 32) {
		rc = fail(ns, WG_EPROTO, "server static key is not 32 bytes");
		goto out;
	}
	if (mix_dh(ns, ns->e.priv, ns->e.pub, server_static) != 0) {
		rc = fail(ns, WG_ECRYPTO, "server static key is a low-order point");
		goto out;
	}
	rc = hs_decrypt(ns, sh->payload.data, sh->payload.len, &cert, &cert_len);
	if (rc != 0) {
		rc = fail(ns, rc, "server certificate does not decrypt");
		goto out;
	}
	rc = wa_cert_verify(cert, cert_len, policy, server_static, &why);
	if (rc != 0) {
		rc = fail(ns, rc, why);
		goto out;
	}

	n_enc = hs_encrypt(ns, noise_pub, 32);
	if (mix_dh(ns, noise_priv, noise_pub, ns->re) != 0) {
		rc = fail(ns, WG_ECRYPTO, "server ephemeral is a low-order point");
		goto out;
	}
	p_enc = hs_encrypt(ns, client_payload, payload_len);

	Wa__HandshakeMessage reply = WA__HANDSHAKE_MESSAGE__INIT;
	Wa__HandshakeMessage__ClientFinish cf = WA__HANDSHAKE_MESSAGE__CLIENT_FINISH__INIT;
	cf.has_static_ = 1;
	cf.static_.data = n_enc;
	cf.static_.len = 32 + WA_GCM_TAG_LEN;
	cf.has_payload = 1;
	cf.payload.data = p_enc;
	cf.payload.len = payload_len + WA_GCM_TAG_LEN;
	reply.client_finish = &cf;
	rc = append_handshake(out, &reply);
	if (rc != 0) {
		rc = fail(ns, rc, "ClientPayload too large");
		goto out;
	}
	split(ns);
out:
	if (m != NULL)
		wa__handshake_message__free_unpacked(m, NULL);
	free(server_static);
	if (cert != NULL) {
		wg_wipe(cert, cert_len);
		free(cert);
	}
	free(n_enc);
	free(p_enc);
	return rc;
}

int
wa_noise_server_hello(struct wa_noise *ns, const uint8_t *client_hello, size_t len,
                      const uint8_t static_priv[32], const uint8_t static_pub[32],
                      const uint8_t *cert_chain, size_t cert_len, struct wg_buf *out)
{
	Wa__HandshakeMessage *m = NULL;
	uint8_t *s_enc = NULL, *c_enc = NULL;
	int rc;

	if (ns->role != WA_NOISE_SERVER || ns->state != ST_START)
		return WG_ESTATE;
	if (cert_len > WA_FRAME_HARD_MAX / 2)
		return WG_ELIMIT;
	m = wa__handshake_message__unpack(NULL, len, client_hello);
	const Wa__HandshakeMessage__ClientHello *ch = m ? m->client_hello : NULL;
	if (ch == NULL) {
		rc = fail(ns, WG_EPROTO, "ClientHello does not parse");
		goto out;
	}
	if (!ch->has_ephemeral || ch->ephemeral.len != 32) {
		rc = fail(ns, WG_EPROTO, "ClientHello lacks a 32-byte ephemeral");
		goto out;
	}
	memcpy(ns->re, ch->ephemeral.data, 32);
	mix_hash(ns, ns->re, 32);
	mix_hash(ns, ns->e.pub, 32);
	if (mix_dh(ns, ns->e.priv, ns->e.pub, ns->re) != 0) {
		rc = fail(ns, WG_ECRYPTO, "client ephemeral is a low-order point");
		goto out;
	}
	s_enc = hs_encrypt(ns, static_pub, 32);
	if (mix_dh(ns, static_priv, static_pub, ns->re) != 0) {
		rc = fail(ns, WG_ECRYPTO, "client ephemeral is a low-order point");
		goto out;
	}
	c_enc = hs_encrypt(ns, cert_chain, cert_len);

	Wa__HandshakeMessage reply = WA__HANDSHAKE_MESSAGE__INIT;
	Wa__HandshakeMessage__ServerHello sh = WA__HANDSHAKE_MESSAGE__SERVER_HELLO__INIT;
	sh.has_ephemeral = 1;
	sh.ephemeral.data = ns->e.pub;
	sh.ephemeral.len = 32;
	sh.has_static_ = 1;
	sh.static_.data = s_enc;
	sh.static_.len = 32 + WA_GCM_TAG_LEN;
	sh.has_payload = 1;
	sh.payload.data = c_enc;
	sh.payload.len = cert_len + WA_GCM_TAG_LEN;
	reply.server_hello = &sh;
	rc = append_handshake(out, &reply);
	if (rc != 0) {
		rc = fail(ns, rc, "ServerHello too large");
		goto out;
	}
	ns->state = ST_WAIT_FINISH;
out:
	if (m != NULL)
		wa__handshake_message__free_unpacked(m, NULL);
	free(s_enc);
	free(c_enc);
	return rc;
}

int
wa_noise_server_finish(struct wa_noise *ns, const uint8_t *client_finish, size_t len,
                       uint8_t client_static_out[32], struct wg_buf *payload_out)
{
	Wa__HandshakeMessage *m = NULL;
	uint8_t *cs = NULL, *payload = NULL;
	size_t cs_len = 0, p_len = 0;
	int rc;

	if (ns->role != WA_NOISE_SERVER || ns->state != ST_WAIT_FINISH)
		return WG_ESTATE;
	m = wa__handshake_message__unpack(NULL, len, client_finish);
	const Wa__HandshakeMessage__ClientFinish *cf = m ? m->client_finish : NULL;
	if (cf == NULL) {
		rc = fail(ns, WG_EPROTO, "ClientFinish does not parse");
		goto out;
	}
	if (!cf->has_static_ || !cf->has_payload) {
		rc = fail(ns, WG_EPROTO, "ClientFinish lacks static or payload");
		goto out;
	}
	rc = hs_decrypt(ns, cf->static_.data, cf->static_.len, &cs, &cs_len);
	if (rc != 0) {
		rc = fail(ns, rc, "client static key does not decrypt");
		goto out;
	}
	if (cs_len != 32) {
		rc = fail(ns, WG_EPROTO, "client static key is not 32 bytes");
		goto out;
	}
	if (mix_dh(ns, ns->e.priv, ns->e.pub, cs) != 0) {
		rc = fail(ns, WG_ECRYPTO, "client static key is a low-order point");
		goto out;
	}
	rc = hs_decrypt(ns, cf->payload.data, cf->payload.len, &payload, &p_len);
	if (rc != 0) {
		rc = fail(ns, rc, "ClientPayload does not decrypt");
		goto out;
	}
	memcpy(client_static_out, cs, 32);
	wg_buf_append(payload_out, payload, p_len);
	split(ns);
out:
	if (m != NULL)
		wa__handshake_message__free_unpacked(m, NULL);
	free(cs);
	if (payload != NULL) {
		wg_wipe(payload, p_len);
		free(payload);
	}
	return rc;
}

int
wa_noise_encrypt_frame(struct wa_noise *ns, const uint8_t *plain, size_t len, struct wg_buf *out)
{
	uint8_t iv[12];

	if (ns->state != ST_TRANSPORT)
		return WG_ESTATE;
	if (len > WA_FRAME_HARD_MAX - WA_GCM_TAG_LEN || ns->wn > UINT32_MAX)
		return WG_ELIMIT;
	size_t ct_len = len + WA_GCM_TAG_LEN;
	uint8_t hdr[3] = {(uint8_t)(ct_len >> 16), (uint8_t)(ct_len >> 8), (uint8_t)ct_len};
	wg_buf_reserve(out, sizeof(hdr) + ct_len);
	wg_buf_append(out, hdr, sizeof(hdr));
	make_iv(iv, ns->wn);
	if (wa_crypto_gcm_encrypt(ns->wkey, iv, NULL, 0, plain, len, out->data + out->len) != 0) {
		out->len -= sizeof(hdr);
		return fail(ns, WG_ECRYPTO, "transport encryption failed");
	}
	out->len += ct_len;
	ns->wn++;
	return 0;
}

int
wa_noise_decrypt(struct wa_noise *ns, const uint8_t *frame_payload, size_t len,
                 struct wg_buf *plain_out)
{
	uint8_t iv[12];

	if (ns->state != ST_TRANSPORT)
		return WG_ESTATE;
	if (ns->rn > UINT32_MAX)
		return WG_ELIMIT;
	if (len < WA_GCM_TAG_LEN)
		return fail(ns, WG_ECRYPTO, "transport frame shorter than a tag");
	size_t plen = len - WA_GCM_TAG_LEN;
	wg_buf_reserve(plain_out, plen + 1); /* never a NULL output pointer */
	make_iv(iv, ns->rn);
	if (wa_crypto_gcm_decrypt(ns->rkey, iv, NULL, 0, frame_payload, len,
	                          plain_out->data + plain_out->len) != 0)
		return fail(ns, WG_ECRYPTO, "transport frame does not authenticate");
	plain_out->len += plen;
	ns->rn++;
	return 0;
}
