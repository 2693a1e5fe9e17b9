/*
 * Where wagate's files are. Run from the build tree: the dashboard beside the
 * executable, state in ./var (as before). Installed (the executable in a bin/
 * directory with share/wagate beside it, as cmake --install lays it out): the
 * dashboard in <prefix>/share/wagate/web and state in /var/lib/wagate, or in
 * systemd's $STATE_DIRECTORY when set (StateDirectory=wagate). docs/install.md.
 */
#ifndef WG_SERVE_PATHS_H
#define WG_SERVE_PATHS_H

#include <stdbool.h>
#include <stddef.h>

/* Whether this executable is installed; share gets <prefix>/share/wagate then. */
bool serve_installed(char *share, size_t n);
/* The directory for the database and the key files (no trailing slash). */
void serve_state_dir(char *out, size_t n);

#endif
