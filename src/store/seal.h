/*
 * Credentials sealed at rest (docs/store.md, "Sealed credentials"). The
 * store seals every auth_state it writes and opens every one it reads, so
 * the database (a dump, a backup, the WAL) holds no key material:
 *
 *   wgs1:<key id, 8 hex>:<base64 of IV (12) | AES-256-GCM ciphertext | tag (16)>
 *
 * The associated data is "wgs1:<key id>:<session id>": a sealed value moved
 * to another row, or re-labelled with another key id, does not open. The key
 * id (the first 4 bytes of SHA-256 over a label and the key) says which key
 * sealed a value, so the error names the key that is missing.
 *
 * Keys are process-wide, set once at start before any thread runs: the
 * current key seals and opens; a second one (an interrupted rekey's) only
 * opens. With no key set nothing is sealed (tools and tests), and sealed
 * values read back as they are, which the credentials parser then refuses.
 */
#ifndef WG_STORE_SEAL_H
#define WG_STORE_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_LEN 32
#define SEAL_KID_LEN 8 /* hex digits */
#define SEAL_PREFIX "wgs1:"

/* Sets the keys (copies them); cur NULL: no sealing. other may be NULL. */
void seal_set_keys(const uint8_t *cur, const uint8_t *other);
bool seal_enabled(void);
/* The id of a key, as sealed values carry it. */
void seal_key_id(const uint8_t key[SEAL_KEY_LEN], char out[SEAL_KID_LEN + 1]);
/* The current key's id ("" without one). */
const char *seal_current_id(void);
/* Whether text is a sealed value (by its prefix; not whether it opens). */
bool seal_is_sealed(const char *text);
/* The key id a sealed value names (out gets "" when it is not one). */
void seal_id_of(const char *text, char out[SEAL_KID_LEN + 1]);

/* Seals plain for the row id under the current key: a malloc'd string, NULL without a key. */
char *seal_text(const char *id, const char *plain);
/* Seals under an explicit key (rekey). */
char *seal_text_with(const uint8_t key[SEAL_KEY_LEN], const char *id, const char *plain);
/*
 * Opens a sealed value of the row id with whichever key its id names: 0 and
 * a malloc'd plain text, or WG_ENOTFOUND (no such key here) or WG_EINVAL
 * (damaged, or not for this row), why saying which. key, if not NULL,
 * is the only key tried.
 */
int seal_open(const uint8_t *key, const char *id, const char *sealed, char **plain, char *why,
              size_t whylen);

#endif
