/*
 * btprom: the backtest's history from a Prometheus-compatible server, for
 * `optipod backtest --prometheus-url`. One range query per workload (the
 * backtest is a command, not the controller's reconcile cycle) through the
 * Prometheus provider's auth, TLS, timeouts and retries (mprom_query_raw),
 * on a private loop: per (pod, container) the CPU rate over 5 minutes, the
 * working set and kube-state-metrics' OOMKilled gauge, at every `step` from
 * `start` to `end`, over the pods the workload's kind generates by name
 * (metrics/window.h: a workload's pods across rollouts, never a longer
 * name's). Each series is handed to the callback; the first failure ends
 * the fetch with err naming the server and the workload.
 */
#ifndef OPTIPOD_BACKTEST_PROM_H
#define OPTIPOD_BACKTEST_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/prometheus.h"
#include "metrics/promql.h"
#include "util/err.h"

typedef struct bt_prom_workload {
    const char *ns, *kind, *name;
} bt_prom_workload;

/* s->stat is "cpu", "mem" or "oom"; w indexes the caller's array. Non-zero
 * stops the fetch (returned). */
typedef int (*bt_prom_cb)(size_t w, const promql_series *s, void *ud);

/* The range limit of Prometheus: at most 11000 points a series. */
#define BT_PROM_MAX_POINTS 11000

/* The step for [start, end]: at least floor_s, and fine enough for the point
 * limit (rounded up to a whole minute). */
int64_t bt_prom_step(int64_t start, int64_t end, int64_t floor_s);

int bt_prom_fetch(const mprom_opts *o, const bt_prom_workload *w, size_t nw, int64_t start,
                  int64_t end, int64_t step, bt_prom_cb cb, void *ud, operr *err);

#endif
