/*
 * The key that seals the stored credentials (store/seal.h): WAGATE_SECRET_KEY,
 * or a key file, made with mode 0600 on the first start when there is none
 * (its path said once). The database never holds it. A file PATH.new beside
 * the key file is a rekey's new key, written before any row is re-sealed: its
 * presence at start means a rekey was interrupted (both keys then open rows).
 */
#ifndef WG_SERVE_SECRET_H
#define WG_SERVE_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serve/config.h"

struct serve_secret {
	uint8_t key[32];
	bool have_pending; /* PATH.new: an interrupted rekey's key */
	uint8_t pending[32];
	bool from_env;     /* WAGATE_SECRET_KEY */
	bool made;         /* the key file was made by this call */
	char path[4096];   /* the key file ("" with WAGATE_SECRET_KEY or an in-memory database) */
};

/*
 * The key file's path for c: WAGATE_SECRET_KEY_FILE, else beside a SQLite
 * file (PATH.key), else var/wagate.key; "" for an in-memory database.
 */
void secret_path(const struct serve_config *c, char *out, size_t n);
/*
 * Loads (or, with create, makes) the key. A key file others may read is made
 * 0600, with a warning. Returns 0, or WG_E* with err saying why.
 */
int secret_load(const struct serve_config *c, bool create, struct serve_secret *out, char *err,
                size_t errlen);
/* Writes key as 64 hex digits to a new file (O_EXCL, 0600), synced. */
int secret_write(const char *path, const uint8_t key[32], char *err, size_t errlen);
/* Writes text to a new file (O_EXCL, 0600), synced, its directory too. */
int secret_write_text(const char *path, const char *text, char *err, size_t errlen);
/* Reads a key file (64 hex digits and a newline). */
int secret_read(const char *path, uint8_t key[32], char *err, size_t errlen);
void secret_wipe(struct serve_secret *s);

#endif
