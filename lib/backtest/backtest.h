/*
 * bt: the backtest. Replays a stretch of usage history through the engine
 * exactly as the controller would have run it, every reconcileInterval, and
 * measures what the recommendations would have done to the workload before
 * anyone turns `mode: Auto` on. Pure: no I/O; the caller brings the series
 * (usage files through plan's reader, or Prometheus) and renders the result.
 *
 * For one container (the samples of all its pods merged, as plan merges
 * them) and one policy, at each step t = from, from + interval, ... <= to:
 *   1. the engine's usage is what the window [t - rollingWindow, t] holds:
 *      the CPU and memory percentiles (interpolated as quantile_over_time
 *      and eng_percentile do), the memory peak, the sample count (the
 *      smaller of the CPU and memory counts, as the controller takes it),
 *      the span, and the OOM kills (count, last, working set at the last);
 *   2. eng_recommend() decides against the requests in force; an apply
 *      replaces them (and the limits when the engine sets them): a change;
 *   3. the samples of (t, t + interval] are judged against the requests in
 *      force: CPU above the request (throttling pressure when the node is
 *      busy), memory above the request and above the limit (OOM risk).
 * The requests in force before the first step are today's (the manifest's).
 * The windows slide: each series is ranked once, a sample enters and leaves
 * a bit set of ranks once, and a percentile is found by counting bits, so a
 * step costs a few word operations plus the engine, not a percentile over
 * the window; the engine is not asked again when its inputs did not change
 * (it is a pure function of them).
 *
 * Ownership: bt_ws is scratch reused across containers (bt_ws_new/free);
 * series are borrowed; results are plain values.
 */
#ifndef OPTIPOD_BACKTEST_BACKTEST_H
#define OPTIPOD_BACKTEST_BACKTEST_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct bt_point {
    int64_t t; /* Unix seconds */
    double v;  /* cores, or bytes */
} bt_point;

/* One container, every pod's samples merged; each array sorted by time. */
typedef struct bt_series {
    const bt_point *cpu; /* CPU usage rates, cores */
    size_t ncpu;
    const bt_point *mem; /* working set, bytes */
    size_t nmem;
    const int64_t *oom; /* OOM kill times */
    size_t noom;
} bt_series;

typedef struct bt_period {
    int64_t from, to;   /* the replayed period: steps at from + k * interval <= to */
    int64_t interval_s; /* the policy's reconcileInterval, > 0 */
    int64_t window_s;   /* the policy's rollingWindow, > 0 */
} bt_period;

typedef struct bt_result {
    int64_t steps;   /* engine decisions */
    int64_t changes; /* steps that changed something (a write, a rollout) */
    int64_t cpu_changes, mem_changes;
    int64_t cpu_judged, cpu_over; /* CPU samples in (from, to]; above the request in force */
    int64_t mem_judged, mem_over_req, mem_over_lim;
    double mem_peak;                 /* largest working-set sample judged, bytes */
    eng_rl mem_at_peak;              /* memory request and limit in force then */
    double cpu_req_avg, mem_req_avg; /* requests in force, time-weighted over (from, to] */
    eng_rl cpu_today, mem_today;     /* in force before the first step */
    eng_rl cpu_end, mem_end;         /* in force after the last step */
    eng_decision last;               /* the last step's decision and reason */
    eng_reason last_reason;
} bt_result;

typedef struct bt_ws bt_ws;

int bt_ws_new(bt_ws **out);
void bt_ws_free(bt_ws *ws);

/* Replay one container. `today` gives the current requests and limits and
 * the opt-out (its usage is ignored). Returns 0, -EINVAL for a bad period
 * (to < from, interval or window <= 0) or unsorted series, -E2BIG for a
 * series of 2^32 samples or more, -ENOMEM. */
int bt_replay(bt_ws *ws, const eng_policy *p, const eng_container *today, const bt_series *s,
              const bt_period *per, bt_result *out);

/* Sums over containers, for the totals line. */
typedef struct bt_total {
    size_t containers;
    int64_t changes, cpu_judged, cpu_over, mem_judged, mem_over_req, mem_over_lim;
    double cpu_today_m, cpu_avg_m; /* containers with a request today only */
    double mem_today, mem_avg;
} bt_total;

void bt_total_add(bt_total *t, const bt_result *r);

#endif
