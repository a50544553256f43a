/*
 * bench_prom_queries: Prometheus queries issued per reconcile cycle for 1000
 * workloads in 20 namespaces, counted from the provider's own planning
 * (PROMQL_QUERIES, and the owners and stats queries built exactly as mprom
 * builds them: the window's pods, metrics/window.h), against the naive
 * baseline of one query per workload, container and statistic (what a
 * per-container client would send).
 *
 * Namespaces differ in size: pods per workload cycle through 1..9 and one
 * namespace holds big workloads (30 pods each); every third workload has a
 * current pod the name patterns miss (asked by name). Reported: queries,
 * namespaces, queries per namespace (target <= 2), the ratio to the
 * baseline, bytes of the largest query, and the time to build all queries.
 * Exits 1 when the target is missed.
 */
#include "support/benchclock.h"
#include "metrics/promql.h"
#include "metrics/window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NAMESPACES = 20, WORKLOADS = 1000, CONTAINERS = 2, BATCH = 200 };

/* A generated-name suffix: 5 characters of Kubernetes' random alphabet. */
static const char *suffix(size_t x)
{
    static char s[6];
    static const char a[] = MWIN_RAND_ALPHABET;
    for (int k = 0; k < 5; k++, x /= sizeof a - 1)
        s[k] = a[x % (sizeof a - 1)];
    return s;
}

int main(void)
{
    const size_t per_ns = WORKLOADS / NAMESPACES;
    size_t queries = 0, baseline = 0, max_bytes = 0, total_pods = 0, nswide = 0;
    double t0 = bench_now_s();
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
                if (i % 3 == 2 && p == 0)
                    snprintf(pods[i][p], 96, "%s-manual-%zu", name, p);
                else
                    snprintf(pods[i][p], 96, "%s-7d9c8b6f5-%s", name, suffix(p * 7919 + i));
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
        size_t npods, nalts = 0;
        promql_agg_pods(a, &npods);
        total_pods += npods;
        unsigned nq = PROMQL_QUERIES(rq.nworkloads);
        promql_opts o = {.percentile = 0.95, .window_s = 7 * 86400};
        opbuf b, re;
        opbuf_init(&b, (size_t)4 << 20);
        opbuf_init(&re, (size_t)2 << 20);
        /* 1: the owners (as mprom: namespace-wide past BATCH workloads) */
        if (promql_agg_deploy_regex(a, &re) != 0 ||
            promql_build_owners(&b, ns, per_ns > BATCH ? ".+" : opbuf_str(&re), o.window_s) != 0)
            return 1;
        max_bytes = b.len > max_bytes ? b.len : max_bytes;
        /* 2: the statistics over the window's pods */
        opbuf_reset(&b);
        opbuf_reset(&re);
        if (promql_agg_pod_regex(a, &re, &nalts) != 0)
            return 1;
        if (nalts > BATCH)
            nswide++;
        if (promql_build_re(&b, ns, nalts > BATCH ? NULL : opbuf_str(&re), &o) != 0)
            return 1;
        max_bytes = b.len > max_bytes ? b.len : max_bytes;
        opbuf_release(&b);
        opbuf_release(&re);
        queries += nq;
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
    double el = bench_now_s() - t0;
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
