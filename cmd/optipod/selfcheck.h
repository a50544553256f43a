#ifndef OPTIPOD_CMD_SELFCHECK_H
#define OPTIPOD_CMD_SELFCHECK_H

/* Run the checks, print one line each; returns the process exit code. */
int selfcheck_run(void);

#endif
