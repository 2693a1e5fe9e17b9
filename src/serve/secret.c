/* The credentials' sealing key: from the environment or a key file (see secret.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "core/enc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "serve/paths.h"
#include "serve/secret.h"

void
secret_path(const struct serve_config *c, char *out, size_t n)
{
	out[0] = '\0';
	if (c->secret_key_file[0] != '\0') {
		snprintf(out, n, "%s", c->secret_key_file);
		return;
	}
	const char *db = c->database;
	if (strncmp(db, "sqlite:", 7) == 0) {
		const char *p = db + 7;
		if (strncmp(p, "//", 2) == 0)
			p += 2;
		if (strcmp(p, ":memory:") == 0)
			return; /* nothing outlives the process: neither does its key */
		snprintf(out, n, "%s.key", p);
		return;
	}
	char state[1000];
	serve_state_dir(state, sizeof(state));
	snprintf(out, n, "%s/wagate.key", state);
}

int
secret_read(const char *path, uint8_t key[32], char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read the key file %.300s: %s", path, strerror(errno));
		return errno == ENOENT ? WG_ENOTFOUND : WG_EIO;
	}
	char text[80];
	ssize_t got = read(fd, text, sizeof(text) - 1);
	close(fd);
	size_t n = got > 0 ? (size_t)got : 0;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	size_t bad;
	long k = n == 64 ? wg_hex_decode(key, text, 64, &bad) : WG_EINVAL;
	wg_wipe(text, sizeof(text));
	if (k != 32) {
		snprintf(err, errlen, "the key file %.300s does not hold a key (64 hex digits)", path);
		return WG_EINVAL;
	}
	return 0;
}

/* Makes the directories above path (like mkdir -p), mode 0700. */
static void
make_parents(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			(void)mkdir(tmp, 0700);
			*p = '/';
		}
}

int
secret_write(const char *path, const uint8_t key[32], char *err, size_t errlen)
{
	char text[66];
	wg_hex_encode(text, key, 32);
	text[64] = '\n';
	text[65] = '\0';
	int rc = secret_write_text(path, text, err, errlen);
	wg_wipe(text, sizeof(text));
	return rc;
}

int
secret_write_text(const char *path, const char *text, char *err, size_t errlen)
{
	make_parents(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot make the file %.300s: %s", path, strerror(errno));
		return WG_EIO;
	}
	size_t len = strlen(text);
	bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	close(fd);
	if (!ok) {
		snprintf(err, errlen, "cannot write %.300s: %s", path, strerror(errno));
		unlink(path);
		return WG_EIO;
	}
	/* The new name must survive a crash too. */
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* A key file others may read is made 0600; one we cannot change stops the start. */
static int
check_mode(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) != 0 || (st.st_mode & 077) == 0)
		return 0;
	if (chmod(path, 0600) != 0) {
		snprintf(err, errlen, "the key file %.300s can be read by others (mode %03o) and cannot "
		                      "be made 0600: %s", path, (unsigned)(st.st_mode & 0777),
		         strerror(errno));
		return WG_EIO;
	}
	log_warn("serve", "the key file %s could be read by others (mode %03o): made 0600", path,
	         (unsigned)(st.st_mode & 0777));
	return 0;
}

int
secret_load(const struct serve_config *c, bool create, struct serve_secret *out, char *err,
            size_t errlen)
{
	memset(out, 0, sizeof(*out));
	secret_path(c, out->path, sizeof(out->path));
	if (c->have_secret_key) {
		memcpy(out->key, c->secret_key, 32);
		out->from_env = true;
		out->path[0] = '\0';
		return 0;
	}
	if (out->path[0] == '\0') {
		/* An in-memory database: a key for this process only. */
		return RAND_bytes(out->key, 32) == 1 ? 0 : WG_EIO;
	}
	int rc = secret_read(out->path, out->key, err, errlen);
	if (rc == WG_ENOTFOUND && create) {
		if (RAND_bytes(out->key, 32) != 1) {
			snprintf(err, errlen, "no randomness for a key");
			return WG_EIO;
		}
		if ((rc = secret_write(out->path, out->key, err, errlen)) != 0)
			return rc;
		out->made = true;
	} else if (rc != 0) {
		return rc;
	} else if ((rc = check_mode(out->path, err, errlen)) != 0) {
		return rc;
	}
	char pend[4200];
	snprintf(pend, sizeof(pend), "%s.new", out->path);
	char why[400];
	if (access(pend, F_OK) == 0) {
		if (secret_read(pend, out->pending, why, sizeof(why)) == 0)
			out->have_pending = true;
		else
			log_warn("serve", "%s", why);
	}
	return 0;
}

void
secret_wipe(struct serve_secret *s)
{
	wg_wipe(s->key, sizeof(s->key));
	wg_wipe(s->pending, sizeof(s->pending));
}
