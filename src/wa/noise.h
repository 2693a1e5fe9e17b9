/*
 * The WhatsApp variant of Noise_XX_25519_AESGCM_SHA256 (docs/wa-protocol.md
 * §2), both roles, sans I/O: each step takes the bytes that arrived and
 * appends the bytes to send. Inputs are frame payloads as wa_frame_next()
 * yields them (no 3-byte length); outputs are complete frames (with the
 * length) ready to be written to the WebSocket.
 *
 *   client                                   server
 *   wa_noise_client_hello()      ------>     wa_noise_server_hello()
 *   wa_noise_client_finish()     <------
 *                                ------>     wa_noise_server_finish()
 *   wa_noise_encrypt_frame() / wa_noise_decrypt() in both directions
 *
 * Any failure is final: the object refuses further calls with WG_ESTATE, and
 * wa_noise_why() says what went wrong. A transport frame that does not
 * authenticate is such a failure too, since the counters can no longer agree.
 */
#ifndef WA_NOISE_H
#define WA_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "wa/cert.h"

enum wa_noise_role {
	WA_NOISE_CLIENT,
	WA_NOISE_SERVER,
};

/* The protocol name, 32 bytes, used raw as the initial hash (not hashed). */
#define WA_NOISE_PROTOCOL_NAME "Noise_XX_25519_AESGCM_SHA256\0\0\0\0"

struct wa_noise;

/*
 * Starts a handshake. dict_version (2 or 3) goes into the intro
 * `57 41 06 DV`, which is mixed into the handshake hash here; a server learns
 * it from wa_frame_dict_version(). Returns NULL for any other version.
 */
struct wa_noise *wa_noise_new(enum wa_noise_role role, int dict_version);

/* Wipes all key material and frees. NULL is a no-op. */
void wa_noise_free(struct wa_noise *ns);

/*
 * Client, step 1: appends the client's first WebSocket message, the intro and
 * the framed ClientHello. A client with routing info appends
 * wa_frame_write_routing() to out before calling this.
 */
int wa_noise_client_hello(struct wa_noise *ns, struct wg_buf *out);

/*
 * Client, step 2: processes the ServerHello, verifies the server's certificate
 * chain against policy (full verification, see wa_cert_verify()), and appends
 * the framed ClientFinish carrying noise_pub (the persistent client static
 * key) and client_payload (an encoded ClientPayload). On success the object is
 * in transport mode. Errors: WG_EPROTO (malformed message), WG_ECRYPTO (does
 * not authenticate), WG_ECERT (chain rejected), WG_ESTATE (wrong step);
 * WG_EINVAL (no policy) and WG_ELIMIT (payload too large for a frame) leave
 * the handshake untouched.
 */
int wa_noise_client_finish(struct wa_noise *ns, const uint8_t *server_hello, size_t len,
                           const uint8_t noise_priv[32], const uint8_t noise_pub[32],
                           const struct wa_cert_policy *policy, const uint8_t *client_payload,
                           size_t payload_len, struct wg_buf *out);

/*
 * Server, step 1: processes the ClientHello and appends the framed
 * ServerHello, which carries static_pub and cert_chain (an encoded CertChain,
 * e.g. from wa_cert_issue()) encrypted.
 */
int wa_noise_server_hello(struct wa_noise *ns, const uint8_t *client_hello, size_t len,
                          const uint8_t static_priv[32], const uint8_t static_pub[32],
                          const uint8_t *cert_chain, size_t cert_len, struct wg_buf *out);

/*
 * Server, step 2: processes the ClientFinish, stores the client's static
 * (noise) public key in client_static_out, appends the decrypted
 * ClientPayload to payload_out, and switches to transport mode.
 */
int wa_noise_server_finish(struct wa_noise *ns, const uint8_t *client_finish, size_t len,
                           uint8_t client_static_out[32], struct wg_buf *payload_out);

/*
 * Transport: appends `len(3 bytes BE) || AES-GCM(ciphertext || tag)` under the
 * next write counter. WG_ELIMIT if the frame would exceed the 3-byte length
 * or the 2^32 counter space is exhausted.
 */
int wa_noise_encrypt_frame(struct wa_noise *ns, const uint8_t *plain, size_t len,
                           struct wg_buf *out);

/*
 * Transport: decrypts one frame payload (as from wa_frame_next()) under the
 * next read counter and appends the plaintext to plain_out. WG_ECRYPTO if it
 * does not authenticate (tampered, replayed or out of order), which is final.
 */
int wa_noise_decrypt(struct wa_noise *ns, const uint8_t *frame_payload, size_t len,
                     struct wg_buf *plain_out);

/* 1 once the handshake is complete and transport frames may flow, else 0. */
int wa_noise_is_transport(const struct wa_noise *ns);

/* The current handshake hash h (32 bytes), for tests and channel binding. */
const uint8_t *wa_noise_handshake_hash(const struct wa_noise *ns);

/* A static description of the failure that ended this handshake, or NULL. */
const char *wa_noise_why(const struct wa_noise *ns);

/* For deterministic tests only: replaces the ephemeral key before the first message. */
void wa_noise__set_ephemeral(struct wa_noise *ns, const uint8_t priv[32]);

#endif
