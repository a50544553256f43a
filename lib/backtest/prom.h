/*
 * btprom: the backtest's history from a Prometheus-compatible server, for
 * `optipod backtest --prometheus-url`, through the Prometheus provider's
 * auth, TLS, timeouts and retries (mprom_query_raw), on a private loop.
 *
 * The pods of each workload over the range are found as the controller
 * finds them in its window (metrics/window.h, metrics/promql.h): per
 * namespace, the controller's owners query (kube-state-metrics'
 * kube_pod_owner and kube_replicaset_owner over the whole range, at `end`);
 * when it has owner series, a pod belongs to the workload they say,
 * whatever its name, otherwise to the workload whose generated names it
 * has (never a longer name's). Then one range query per workload (the
 * backtest is a command, not the controller's reconcile cycle: a month of a
 * namespace in one answer would be too big): per (pod, container) the CPU
 * rate over 5 minutes, the working set and kube-state-metrics' OOMKilled
 * gauge, at every `step` from `start` to `end`. Each series of the
 * workload's pods is handed to the callback; ns_cb (may be NULL) hears per
 * namespace how the pods were found ("kube-state-metrics" or
 * "pod-names"). The first failure ends the fetch with err naming the
 * server and the workload or namespace.
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

typedef void (*bt_prom_ns_cb)(const char *ns, const char *history, void *ud);

int bt_prom_fetch(const mprom_opts *o, const bt_prom_workload *w, size_t nw, int64_t start,
                  int64_t end, int64_t step, bt_prom_cb cb, bt_prom_ns_cb ns_cb, void *ud,
                  operr *err);

#endif
