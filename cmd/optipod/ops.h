/*
 * ops: the controller process's own metrics registry, served on /metrics next to
 * the legacy hand-written families (main.c's app_metrics).
 *
 * ops_new() creates the registry (10000 series per family at most) with
 * optipod_build_info, optipod_is_leader, the process_* families and the
 * reconcile families; the modules add theirs when handed the registry
 * (krest_set_metrics, mprom/mms/whsrv/ctl options). ops_free() frees it once
 * nothing records into it any more (after the loop has stopped).
 */
#ifndef OPTIPOD_CMD_OPS_H
#define OPTIPOD_CMD_OPS_H

#include "obs/obs.h"
#include "util/err.h"

obs_reg *ops_new(operr *err);
/* optipod_is_leader{lease}: 1 while this process may write (always, without election). */
void ops_set_leader(obs_reg *r, const char *lease, int leading);
void ops_free(obs_reg *r);

#endif
