/*
 * The dashboard's files: every GET or HEAD outside the API paths is a file
 * under the web root (WAGATE_WEB_ROOT, by default "web" beside the
 * executable, where the build puts the built dashboard). A path without a
 * file extension is a page of the single-page app and gets index.html.
 *
 * The files are small (a few hundred KiB) and asked for once per browser
 * (assets are immutable, hashed names), so they are read with plain read()
 * on the loop, bounded by ST_MAX_FILE: a local disk read of that size costs
 * well under a millisecond, less than sending the answer.
 *
 * Paths are decoded once and refused when they hold a NUL, a control
 * character, a "." or ".." segment or a dot-file; then the file's realpath()
 * must lie inside the web root's, which also stops symbolic links that lead
 * out. Every refusal is the same 404 as a missing file.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_int.h"
#include "core/log.h"
#include "core/mem.h"

#define ST_MAX_FILE (8u << 20) /* larger files are not served */
#define ST_MAX_PATH 1024       /* longest decoded path */

static const struct {
	const char *ext, *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"woff2", "font/woff2"},
    {"txt", "text/plain; charset=utf-8"},
};

static const char *
content_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (dot != NULL && strchr(dot, '/') == NULL)
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

void
api__static_init(struct api *a, const char *web_root)
{
	char exe[PATH_MAX], root[PATH_MAX + 8];
	if (web_root != NULL && web_root[0] != '\0') {
		snprintf(root, sizeof(root), "%s", web_root);
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash == NULL) {
			log_warn("api", "cannot find the executable's directory: the dashboard is "
			                "not served (set WAGATE_WEB_ROOT)");
			return;
		}
		*slash = '\0';
		snprintf(root, sizeof(root), "%s/web", exe);
	}
	a->web_root = wg_strdup(root);
	struct stat sb;
	if (stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode))
		log_warn("api",
		         "the dashboard is not built (%s is missing): run make; the API works "
		         "without it",
		         root);
}

/* A decoded path we are willing to look up: no NUL, control bytes, ".", ".." or dot-files. */
static bool
path_ok(const char *p, size_t len)
{
	if (len == 0 || len > ST_MAX_PATH || strlen(p) != len || p[0] != '/')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f || c == '\\')
			return false;
		if (c == '/' && p[i + 1] == '.')
			return false; /* ".", "..", ".git", ".env": never served */
	}
	return true;
}

/* Reads a regular file of at most ST_MAX_FILE bytes. 0, or -1 with errno-style reason in *why. */
static int
read_file(const char *path, struct evbuffer *out, const char **why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		*why = "no such file";
		return -1;
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		*why = "no such file";
		return -1;
	}
	if ((uint64_t)sb.st_size > ST_MAX_FILE) {
		close(fd);
		*why = "file too large";
		return -1;
	}
	char buf[16384];
	size_t total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			*why = "cannot read the file";
			return -1;
		}
		if (n == 0)
			break;
		total += (size_t)n;
		/* The file may grow while we read it; the bound holds anyway. */
		if (total > ST_MAX_FILE) {
			close(fd);
			*why = "file too large";
			return -1;
		}
		evbuffer_add(out, buf, (size_t)n);
	}
	close(fd);
	return 0;
}

static void
reply_file(struct httpd_req *req, struct evbuffer *body, const char *type, const char *cache)
{
	struct evkeyvalq *h = httpd_out_headers(req);
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", cache);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	/* The dashboard has buttons that act: never inside someone else's frame. */
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	api__log_answer(req, 200);
	httpd_reply(req, 200, "OK", body);
}

void
api__static(struct api *a, struct httpd_req *req, const char *path)
{
	char root[PATH_MAX], want[PATH_MAX + ST_MAX_PATH + 16], real[PATH_MAX];
	if (a->web_root == NULL || realpath(a->web_root, root) == NULL) {
		api__error(req, 404, "dashboard not built: run make");
		return;
	}
	size_t len = 0;
	char *dec = evhttp_uridecode(path, 0, &len);
	if (dec == NULL || !path_ok(dec, len)) {
		free(dec);
		api__error(req, 404, "no such file");
		return;
	}
	const char *last = strrchr(dec, '/') + 1;
	/* No extension: a page of the single-page app, which routes it itself. */
	bool page = strchr(last, '.') == NULL;
	const char *rel = page ? "index.html" : dec + 1;
	bool immutable = !page && strncmp(dec, "/assets/", 8) == 0;
	snprintf(want, sizeof(want), "%s/%s", root, rel);
	free(dec);
	size_t rl = strlen(root);
	/* Inside the root after every symbolic link is followed, or not at all. */
	if (realpath(want, real) == NULL || strncmp(real, root, rl) != 0 || real[rl] != '/') {
		api__error(req, 404, "no such file");
		return;
	}
	struct evbuffer *body = evbuffer_new();
	const char *why = NULL;
	if (read_file(real, body, &why) != 0) {
		evbuffer_free(body);
		if (strcmp(why, "no such file") != 0)
			log_warn("api", "cannot serve %.200s: %s", real, why);
		api__error(req, 404, why);
		return;
	}
	bool index = strcmp(real + rl, "/index.html") == 0;
	reply_file(req, body, content_type(real + rl),
	           immutable && !index ? "public, max-age=31536000, immutable" : "no-cache");
	evbuffer_free(body);
}
