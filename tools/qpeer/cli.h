/* SPDX-License-Identifier: MIT */
/* Shared pieces of the qpeer command-line tool. */
#ifndef QPEER_TOOLS_CLI_H
#define QPEER_TOOLS_CLI_H

#include "qpeer.h"

/* Prints "qpeer: <what>: <name> (<message>)" to stderr and returns 1. */
int cli_fail(const char *what, int err);
/* Default key path: $QPEER_KEY, else $HOME/.config/qpeer/key.pem. */
const char *cli_default_key(void);
/* Loads the identity at |path|, or with |create| makes and saves one. */
int cli_load_identity(const char *path, int create, qpeer_identity_t **pid);

int cmd_id(int argc, char **argv);
int cmd_pipe(int argc, char **argv);
int cmd_ticket(int argc, char **argv);
int cmd_netcheck(int argc, char **argv);

#endif
