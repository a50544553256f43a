/*
 * libFuzzer target for mms_store_ingest(): a metrics.k8s.io PodMetricsList
 * from the network. Any bytes either fold in (samples added >= 0) or are
 * refused whole with a reason (-EPROTO, nothing folded: the series count and
 * the statistics do not move); the statistics that follow are finite and
 * never negative.
 */
#include "metrics/metricsserver.h"
#include "util/err.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define T0 1790000000.0

static void check_stats(mms_store *s, const mprov_request *rq, double eval_s, size_t *samples)
{
    mprov_result r = {0};
    if (mms_store_stats(s, rq, eval_s, &r) != 0)
        abort();
    *samples = 0;
    for (size_t w = 0; w < r.nworkloads; w++)
        for (size_t i = 0; i < r.workloads[w].ncontainers; i++) {
            const mprov_container_stats *c = &r.workloads[w].containers[i];
            if (!isfinite(c->cpu_cores) || c->cpu_cores < 0 || !isfinite(c->mem_bytes) ||
                c->mem_bytes < 0 || !isfinite(c->mem_peak_bytes) || c->mem_peak_bytes < 0 ||
                !isfinite(c->history_s) || c->history_s < 0)
                abort();
            *samples += c->cpu_samples + c->mem_samples;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    static const char *const pods[] = {"web-a", "web-b"};
    mprov_workload w = {.kind = "Deployment", .name = "web", .pods = pods, .npods = 2};
    mprov_request rq = {
        .ns = "shop", .workloads = &w, .nworkloads = 1, .percentile = 0.9, .window_s = 86400};
    mms_store *s = NULL;
    if (mms_store_new(&s, NULL) != 0 || mms_store_map(s, &rq, T0) != 0)
        abort();
    /* one good list first, so a refused one has something to leave untouched */
    static const char good[] =
        "{\"kind\":\"PodMetricsList\",\"items\":[{\"metadata\":{\"name\":\"web-a\","
        "\"namespace\":\"shop\"},\"timestamp\":\"2026-09-21T12:00:00Z\",\"window\":\"15s\","
        "\"containers\":[{\"name\":\"app\",\"usage\":{\"cpu\":\"12m\",\"memory\":\"1Gi\"}}]}]}";
    operr err = {0};
    if (mms_store_ingest(s, "shop", good, sizeof good - 1, T0, &err) < 0)
        abort();
    size_t series = mms_store_series(s), before, after;
    check_stats(s, &rq, T0 + 60, &before);
    int rc = mms_store_ingest(s, "shop", (const char *)data, size, T0 + 30, &err);
    if (rc < 0) {
        if (rc != -EPROTO || !err.msg[0] || mms_store_series(s) != series)
            abort();
        check_stats(s, &rq, T0 + 60, &after);
        if (after != before)
            abort(); /* refused whole: nothing folded */
    } else {
        check_stats(s, &rq, T0 + 60, &after);
    }
    mms_store_free(s);
    return 0;
}
