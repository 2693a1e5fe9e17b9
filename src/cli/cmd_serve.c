/* wagate serve / wagate migrate: see src/serve/ and docs/supervisor.md. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "serve/config.h"
#include "serve/serve.h"

static const char *
usage_line(const char *cmd)
{
	if (strcmp(cmd, "migrate") == 0)
		return "usage: wagate migrate [--dry-run] [--flag value]...\n"
		       "applies the database migrations and exits; --dry-run prints their SQL and runs "
		       "nothing.\nThe database and the other settings are serve's:";
	if (strcmp(cmd, "rekey") == 0)
		return "usage: wagate rekey [--flag value]...\n"
		       "re-seals every stored credential under a new key (WAGATE_NEW_SECRET_KEY, or a new "
		       "random key in the key file).\nRun it with the servers stopped. The database and "
		       "the current key are serve's settings:";
	return "usage: wagate serve [--flag value]...\n"
	       "runs the gateway. Each variable has a flag; flags win. Bad values stop the start "
	       "(exit 2).";
}

static int
load(int argc, char **argv, struct serve_config *c)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			serve_config_usage(stdout, usage_line(argv[0]));
			return 0;
		}
	}
	char err[512];
	if (serve_config_load(c, argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "wagate %s: %s\n", argv[0], err);
		return 2;
	}
	return -1;
}

int
cmd_serve(int argc, char **argv)
{
	static struct serve_config c;
	int r = load(argc, argv, &c);
	return r >= 0 ? r : serve_run(&c);
}

int
cmd_migrate(int argc, char **argv)
{
	static struct serve_config c;
	/* --dry-run is migrate's own; the rest are serve's settings (the database's above all). */
	char *args[64];
	int n = 0, dry = 0;
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--dry-run") == 0) {
			dry = 1;
			continue;
		}
		if (n == (int)(sizeof(args) / sizeof(args[0])) - 1) {
			fprintf(stderr, "wagate migrate: too many arguments\n");
			return 2;
		}
		args[n++] = argv[i];
	}
	args[n] = NULL;
	int r = load(n, args, &c);
	return r >= 0 ? r : serve_migrate(&c, dry);
}

int
cmd_rekey(int argc, char **argv)
{
	static struct serve_config c;
	int r = load(argc, argv, &c);
	return r >= 0 ? r : serve_rekey(&c);
}
