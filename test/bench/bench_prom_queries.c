/*
 * bench_prom_queries: Prometheus queries issued per reconcile cycle for 1000
 * workloads in 20 namespaces, counted from the provider's own batching logic
 * (promql_plan + promql_build, exactly what mprom sends), against the naive
 * baseline of one query per workload, container and statistic (what a
 * per-container client would send).
 *
 * Namespaces differ in size: pods per workload cycle through 1..9 and one
 * namespace holds big workloads (30 pods each), so both the batched and the
 * namespace-wide plans are exercised. Reported: queries, namespaces, queries
 * per namespace (target <= 2), the ratio to the baseline, bytes of the largest
 * query, and the time to build all queries. Exits 1 when the target is missed.
 */
#include "metrics/promql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NAMESPACES = 20, WORKLOADS = 1000, CONTAINERS = 2, BATCH = 200 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    const size_t per_ns = WORKLOADS / NAMESPACES;
    size_t queries = 0, baseline = 0, max_bytes = 0, total_pods = 0, nswide = 0;
    double t0 = now_s();
    for (size_t n = 0; n < NAMESPACES; n++) {
        char ns[32];
        snprintf(ns, sizeof ns, "team-%02zu", n);
        /* The caller's view: workloads and their pods from the informer cache. */
        mprov_workload *w = calloc(per_ns, sizeof *w);
        char ***pods = calloc(per_ns, sizeof *pods);
        for (size_t i = 0; i < per_ns; i++) {
            size_t np = n == 7 ? 30 : 1 + (i % 9);
            char name[64];
            snprintf(name, sizeof name, "svc-%02zu-%03zu", n, i);
            pods[i] = calloc(np, sizeof **pods);
            for (size_t p = 0; p < np; p++) {
                pods[i][p] = malloc(96);
                snprintf(pods[i][p], 96, "%s-7d9c8b6f5-%05zx", name, p * 7919 + i);
            }
            w[i] = (mprov_workload){"Deployment", strdup(name), (const char *const *)pods[i], np};
            baseline += CONTAINERS * PROMQL_NSTATS;
        }
        mprov_request rq = {.ns = ns,
                            .workloads = w,
                            .nworkloads = per_ns,
                            .percentile = 0.95,
                            .window_s = 7 * 86400};
        promql_agg *a = NULL;
        if (promql_agg_new(&a, &rq) != 0)
            return 1;
        size_t npods, per_batch;
        const char *const *all = promql_agg_pods(a, &npods);
        total_pods += npods;
        size_t nq = promql_plan(npods, BATCH, &per_batch);
        if (per_batch == 0)
            nswide++;
        promql_opts o = {.percentile = 0.95, .window_s = 7 * 86400};
        for (size_t q = 0; q < nq; q++) {
            opbuf b;
            opbuf_init(&b, (size_t)4 << 20);
            size_t first = q * per_batch;
            size_t count = per_batch ? (npods - first < per_batch ? npods - first : per_batch) : 0;
            if (promql_build(&b, ns, per_batch ? all + first : NULL, count, &o) != 0)
                return 1;
            if (b.len > max_bytes)
                max_bytes = b.len;
            opbuf_release(&b);
            queries++;
        }
        promql_agg_free(a);
        for (size_t i = 0; i < per_ns; i++) {
            for (size_t p = 0; p < w[i].npods; p++)
                free(pods[i][p]);
            free(pods[i]);
            free((char *)w[i].name);
        }
        free(pods);
        free(w);
    }
    double el = now_s() - t0;
    double per = (double)queries / NAMESPACES;
    printf("prom queries per reconcile cycle: %d workloads, %zu pods, %d namespaces\n", WORKLOADS,
           total_pods, NAMESPACES);
    printf("  queries            %zu (%.2f per namespace, target <= 2; %zu namespace-wide)\n",
           queries, per, nswide);
    printf("  baseline           %zu (one per workload x container x statistic)\n", baseline);
    printf("  ratio to baseline  %.5f\n", (double)queries / (double)baseline);
    printf("  largest query      %zu bytes\n", max_bytes);
    printf("  build time         %.2f ms for all queries\n", el * 1e3);
    if (per > 2.0) {
        printf("FAIL: %.2f queries per namespace > 2\n", per);
        return 1;
    }
    return 0;
}
