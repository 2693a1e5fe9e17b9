/*
 * A session's credentials: the keys generated once per device, completed by
 * pairing with the account data the phone vouched for. Stored as one
 * versioned, self-describing blob (JSON with base64 keys) that becomes a
 * session's auth_state in the database. Never log any of it.
 */
#ifndef WA_CREDS_H
#define WA_CREDS_H

#include <stddef.h>
#include <stdint.h>

#include "wa/crypto.h"

#define WA_CREDS_FORMAT "wagate-creds"
#define WA_CREDS_VERSION 1
/* Pre-keys kept at most; uploads beyond this reuse ids from the oldest. */
#define WA_CREDS_MAX_PREKEYS 812

struct wa_prekey {
	uint32_t id;
	struct wa_keypair kp;
};

struct wa_creds {
	struct wa_keypair noise;    /* Noise static key; also in the QR code */
	struct wa_keypair identity; /* Signal identity key */
	uint32_t signed_prekey_id;
	struct wa_keypair signed_prekey;
	uint8_t signed_prekey_sig[64]; /* by identity over 05 || signed_prekey.pub */
	uint32_t registration_id;
	uint8_t adv_secret[32];
	/* After pairing (NULL/0 before). */
	char *me_jid;      /* PHONE:DEV@s.whatsapp.net */
	char *me_lid;      /* LID:DEV@lid */
	char *push_name;
	uint8_t *account;  /* ADVSignedDeviceIdentity, with our device signature */
	size_t account_len;
	char *platform;
	/* Pre-keys uploaded to the server, and the next id to use. */
	uint32_t next_prekey_id;
	struct wa_prekey *prekeys;
	size_t nprekeys;
};

/* Fresh keys for a new device (not paired). */
void wa_creds_generate(struct wa_creds *c);
/* True once pairing completed (me_jid and account present). */
int wa_creds_paired(const struct wa_creds *c);
/* The phone number and device number of me_jid; WG_EINVAL if unpaired or malformed. */
int wa_creds_me(const struct wa_creds *c, uint64_t *user, uint32_t *device);
/* Deep copy. */
void wa_creds_copy(struct wa_creds *dst, const struct wa_creds *src);
/* Wipes and frees everything; NULL-safe; leaves c zeroed. */
void wa_creds_free(struct wa_creds *c);

/* The blob: a malloc'd NUL-terminated JSON text. */
char *wa_creds_to_blob(const struct wa_creds *c);
/*
 * Parses a blob. Returns 0, or WG_EINVAL with a reason in why for anything
 * corrupt (not JSON, wrong format tag, unknown version, missing or malformed
 * field, keys of the wrong size or that do not match). out is untouched then.
 */
int wa_creds_from_blob(const char *blob, size_t len, struct wa_creds *out, char *why,
		       size_t whylen);
/*
 * The key checks (each public key against its private key, the signed
 * pre-key's signature) run once per distinct blob per process: a blob that
 * passed them is known by its SHA-256 and only parsed the next time. How many
 * blobs were fully checked so far (tests).
 */
unsigned long wa_creds_full_checks(void);
/*
 * With a secret set (the server's sealing key, before any thread runs), every
 * blob written carries "keysChecked": a mark only the holder of the secret can
 * make, over the keys, saying they were checked (or made) when it was written.
 * A blob with a valid mark skips the checks even the first time this process
 * sees it: a restart of many sessions does not redo them all. A missing or
 * wrong mark (a row written by the web app or a tool, another secret) only
 * means the checks run. NULL forgets the secret.
 */
void wa_creds_set_secret(const uint8_t *secret, size_t len);

/* Files: written atomically (temporary file, fsync, rename) with mode 0600. */
int wa_creds_save(const struct wa_creds *c, const char *path);
int wa_creds_load(const char *path, struct wa_creds *out, char *why, size_t whylen);

#endif
