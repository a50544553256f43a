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

#include <uv.h>

#include "controller/controller.h"
#include "obs/obs.h"
#include "util/err.h"
#include "util/loopmon.h"

obs_reg *ops_new(operr *err);
/* optipod_is_leader{lease}: 1 while this process may write (always, without election). */
void ops_set_leader(obs_reg *r, const char *lease, int leading);
/* At each scrape: optipod_loop_handles{state} (the libuv handles the loop holds, "active"
 * and "inactive") and optipod_queue_depth{state} (the controller's work queue: "queued",
 * "delayed", "running"). loop and *ctlp are borrowed: *ctlp is read at each scrape (NULL
 * once the controller is closed, or with --webhook-only: no queue series). */
int ops_watch(obs_reg *r, uv_loop_t *loop, ctl *const *ctlp, operr *err);
/* The loop monitor's families, read from m at each scrape (m outlives r's last write):
 * optipod_loop_stall_max_seconds, optipod_loop_stall_cpu_max_seconds (the last
 * OPLOOPMON_WINDOW_S seconds) and optipod_loop_stalls_total{over}. */
int ops_loopmon(obs_reg *r, oploopmon *m, operr *err);
void ops_free(obs_reg *r);

#endif
