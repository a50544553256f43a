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

/* "2026-01-02T03:04:05Z" or with a ±hh:mm offset, to Unix seconds; 0 or -1.
 * (Shared with `optipod backtest`.) */
#include <stdint.h>
int parse_rfc3339(const char *s, int64_t *out);

#endif
