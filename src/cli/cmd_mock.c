/* wagate mock: placeholder until the mock server lands (see src/mock/). */
#include <stdio.h>

#include "cli/cli.h"

int
cmd_mock(int argc, char **argv)
{
	fprintf(stderr, "wagate mock: not built yet\n");
	return 2;
}
