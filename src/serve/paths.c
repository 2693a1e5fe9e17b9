/* Where wagate's files are: the build tree, or an installed layout (see paths.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/paths.h"

#ifndef WAGATE_STATE_DIR
#define WAGATE_STATE_DIR "/var/lib/wagate"
#endif
#ifndef WAGATE_SHARE_REL
#define WAGATE_SHARE_REL "share/wagate"
#endif

bool
serve_installed(char *share, size_t n)
{
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		return false;
	exe[len] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash == NULL)
		return false;
	*slash = '\0'; /* the executable's directory */
	slash = strrchr(exe, '/');
	if (slash == NULL || strcmp(slash + 1, "bin") != 0)
		return false;
	*slash = '\0'; /* the prefix */
	char dir[PATH_MAX + 64];
	snprintf(dir, sizeof(dir), "%s/%s", exe, WAGATE_SHARE_REL);
	struct stat sb;
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return false;
	snprintf(share, n, "%s", dir);
	return true;
}

void
serve_state_dir(char *out, size_t n)
{
	/* systemd's StateDirectory= (a list when several are named: the first is ours). */
	const char *sd = getenv("STATE_DIRECTORY");
	if (sd != NULL && sd[0] == '/') {
		size_t len = strcspn(sd, ":");
		snprintf(out, n, "%.*s", (int)len, sd);
		return;
	}
	char share[PATH_MAX];
	snprintf(out, n, "%s", serve_installed(share, sizeof(share)) ? WAGATE_STATE_DIR : "var");
}
