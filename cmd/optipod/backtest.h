/*
 * `optipod backtest`: replay usage history through the engine as the
 * controller would have, per policy (lib/backtest does the work).
 */
#ifndef OPTIPOD_CMD_BACKTEST_H
#define OPTIPOD_CMD_BACKTEST_H

/* argv[0] is "backtest". Returns the exit status: 0 replayed, 1 something
 * was skipped or wrong (the rest is still replayed), 2 bad flags or policy. */
int backtest_main(int argc, char **argv);

#include "util/flags.h"

/* backtest's flag table (shell completion reads it); *n receives its length. */
const opflag *backtest_flags(int *n);

#endif
