/*
 * btrender: the backtest's report as a table or JSON. One bt_run per policy;
 * every run lists the same containers in the same order, so the table puts
 * the policies' lines for one container next to each other, then a totals
 * table with one line per policy. Requests are per pod (one replica); the
 * output holds no time of the run itself: the same inputs give the same
 * bytes.
 */
#ifndef OPTIPOD_BACKTEST_RENDER_H
#define OPTIPOD_BACKTEST_RENDER_H

#include "backtest/backtest.h"
#include "util/buf.h"

typedef struct bt_row {
    const char *ns, *kind, *workload, *container;
    bt_result r;
} bt_row;

typedef struct bt_run {
    const char *label; /* the policy, as the user named it */
    bt_period period;
    const bt_row *rows;
    size_t nrows;
    bt_total total;
} bt_run;

/* Append the report. Returns 0 or an opbuf error (-E2BIG, -ENOMEM). */
int bt_render_table(const bt_run *runs, size_t nruns, opbuf *out);
/*   {"from":"2026-01-06T00:00:00Z","to":"...","policies":[{"policy":"a",
 *    "interval":"5m","window":"24h","containers":[{"namespace":...,"kind":...,
 *    "workload":...,"container":...,"steps":288,"changes":3,"cpuChanges":2,
 *    "memoryChanges":1,"cpuSamples":2163,"cpuAboveRequest":12,
 *    "cpuAboveRequestPercent":0.55,"memorySamples":...,"memoryAboveRequest":..,
 *    "memoryAboveLimit":0,"memoryPeak":"301Mi","memoryRequestAtPeak":"256Mi",
 *    "memoryLimitAtPeak":"1Gi","cpuRequestToday":"1","cpuRequestAverage":"612m",
 *    "cpuRequestEnd":"590m","cpuSaving":"388m","cpuSavingPercent":38.8, and the
 *    same for memory}],"total":{...}}]} */
int bt_render_json(const bt_run *runs, size_t nruns, opbuf *out);

/* Unix seconds as "2026-01-06T00:00:00Z". */
void bt_fmt_time(int64_t t, char *buf, size_t size);

#endif
