/*
 * `optipod completion bash|zsh`: the shell completion script, generated from
 * the controller's flag table, plan's, and the commands (util/complete.h).
 */
#ifndef OPTIPOD_CMD_COMPLETION_H
#define OPTIPOD_CMD_COMPLETION_H

#include "util/flags.h"

/* argv[0] is "completion"; flags are the controller's. Returns the exit status:
 * 0, 1 when the script cannot be written, 2 for bad usage. */
int completion_main(int argc, char **argv, const opflag *flags, int nflags);

#endif
