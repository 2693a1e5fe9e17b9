/* wagate: a WhatsApp Web multi-device gateway. This file only dispatches sub-commands. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/version.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} commands[] = {
	{"serve", cmd_serve, "run the gateway: sessions, supervisor, HTTP API"},
	{"migrate", cmd_migrate, "apply the database migrations and exit"},
	{"rekey", cmd_rekey, "re-seal the stored credentials under a new key (servers stopped)"},
	{"wire", cmd_wire, "encode and decode WhatsApp binary nodes (hex <-> JSON)"},
	{"mock", cmd_mock, "run a WhatsApp-compatible server for tests and demos"},
	{"pair", cmd_pair, "link a new device: show QR codes, save the credentials"},
	{"connect", cmd_connect, "log in with saved credentials and print events"},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: wagate <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "  %-8s %s\n", "help", "help COMMAND: that command's options");
	fprintf(f, "  %-8s %s\n", "version", "print the version (also --version)");
}

/* wagate help [COMMAND]: the list, or COMMAND --help. */
static int
help(int argc, char **argv)
{
	if (argc < 3) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[2], commands[i].name) == 0) {
			char *args[] = {argv[2], "--help", NULL};
			return commands[i].fn(2, args);
		}
	fprintf(stderr, "wagate: unknown command \"%s\"\n", argv[2]);
	usage(stderr);
	return 2;
}

int
main(int argc, char **argv)
{
	/* A peer that goes away mid-write must cost an error code, not the process. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("wagate %s\n", WAGATE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0)
		return help(argc, argv);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "wagate: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
