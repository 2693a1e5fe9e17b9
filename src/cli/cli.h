/* Sub-commands of the wagate binary. Each returns the process exit status. */
#ifndef WG_CLI_H
#define WG_CLI_H

int cmd_wire(int argc, char **argv);
int cmd_mock(int argc, char **argv);
int cmd_pair(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_rekey(int argc, char **argv);

#endif
