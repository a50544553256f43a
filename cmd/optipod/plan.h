/*
 * `optipod plan`: the offline plan subcommand (lib/plan does the work).
 */
#ifndef OPTIPOD_CMD_PLAN_H
#define OPTIPOD_CMD_PLAN_H

/* argv[0] is "plan". Returns the exit status: 0 all planned, 1 something was
 * skipped or wrong, 2 bad flags. */
int plan_main(int argc, char **argv);

#include "util/flags.h"

/* plan's flag table (shell completion reads it); *n receives its length. */
const opflag *plan_flags(int *n);

#endif
