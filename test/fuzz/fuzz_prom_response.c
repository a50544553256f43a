/* libFuzzer target for the Prometheus response path: promql_parse() feeding
 * the per-workload combiner, as the provider does with every body it gets:
 * the same input first as the owners query's answer (kube-state-metrics
 * owner series steer which pods count), then as the stats query's.
 * Any input must end in 0, -EPROTO or -EREMOTEIO (with a message when not 0),
 * and a success may only yield finite, non-negative statistics. */
#include "metrics/promql.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const web[] = {"web-1", "web-2", "web-3"};
    static const char *const api[] = {"api-1"};
    const mprov_workload w[2] = {{"Deployment", "web", web, 3}, {"StatefulSet", "api", api, 1}};
    const mprov_request rq = {
        .ns = "shop", .workloads = w, .nworkloads = 2, .percentile = 0.95, .window_s = 86400};
    promql_agg *a = NULL;
    if (promql_agg_new(&a, &rq) != 0)
        abort();
    operr err;
    err.msg[0] = '\0';
    promql_agg_ctx octx = {.agg = a, .err = &err, .owners_query = 1};
    int orc = promql_parse((const char *)data, size, promql_agg_sample_cb, &octx, &err);
    if (orc != 0 && orc != -EPROTO && orc != -EREMOTEIO && orc != -ENOMEM)
        abort();
    opbuf re;
    opbuf_init(&re, 1 << 20);
    size_t nalts = 0;
    int prc = promql_agg_pod_regex(a, &re, &nalts);
    if ((prc != 0 && prc != -E2BIG && prc != -ENOMEM) || (prc == 0 && nalts < 2))
        abort(); /* at least the two workloads' patterns */
    opbuf_release(&re);
    err.msg[0] = '\0';
    promql_agg_ctx ctx = {.agg = a, .err = &err};
    int rc = promql_parse((const char *)data, size, promql_agg_sample_cb, &ctx, &err);
    if (rc != 0 && rc != -EPROTO && rc != -EREMOTEIO && rc != -ENOMEM)
        abort();
    if (rc != 0 && rc != -ENOMEM && err.msg[0] == '\0')
        abort();
    if (rc == 0) {
        mprov_result r = {0};
        if (promql_agg_result(a, 1795313670, &r) != 0 || r.nworkloads != 2)
            abort();
        for (size_t i = 0; i < r.nworkloads; i++) {
            for (size_t j = 0; j < r.workloads[i].ncontainers; j++) {
                const mprov_container_stats *c = &r.workloads[i].containers[j];
                if (!isfinite(c->cpu_cores) || c->cpu_cores < 0 || !isfinite(c->mem_bytes) ||
                    c->mem_bytes < 0 || !isfinite(c->mem_peak_bytes) || c->mem_peak_bytes < 0 ||
                    c->history_s < 0 || c->history_s > 86400 || c->container[0] == '\0')
                    abort();
            }
        }
    }
    promql_agg_free(a);
    return 0;
}
