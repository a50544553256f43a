/*
 * bench_steady: API writes in the steady state. 1000 Deployments (the
 * realistic 5 KB objects of test/support/gen) selected by one Auto policy,
 * with usage that confirms their current requests (within the change
 * threshold), on the in-process fake API server. The controller resyncs
 * every 200 ms; after the first full pass (which writes the policy status
 * once) every write request the server receives is counted over many cycles.
 * Reported: reconciles, cycles, writes in the steady window (target 0) and
 * the rate per hour that implies. Exits 1 when the target is missed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "controller/controller.h"
#include "http/http.h"
#include "kube/config.h"
#include "kube/events.h"
#include "support/fakeapi.h"
#include "support/gen.h"
#include "support/loop.h"

enum { WORKLOADS = 1000, RESYNC_MS = 200, STEADY_MS = 6000 };

static uv_loop_t loop;

/* Usage that gives back the generated requests: x 1.2 (the safety factor)
 * lands on them again, so every container is within the threshold. */
static int bp_request(void *state, const mprov_request *rq, mprov_cb cb, void *ud)
{
    (void)state;
    mprov_workload_stats *ws = calloc(rq->nworkloads ? rq->nworkloads : 1, sizeof *ws);
    mprov_container_stats *cs = calloc(rq->nworkloads * 2 + 1, sizeof *cs);
    for (size_t i = 0; ws && cs && i < rq->nworkloads; i++) {
        unsigned n = (unsigned)strtoul(rq->workloads[i].name + 4, NULL, 10);
        double cpu_m = 50 + (n * 37) % 950, mem_mi = 64 + (n * 53) % 1984;
        mprov_container_stats *c = &cs[2 * i];
        snprintf(c[0].container, sizeof c[0].container, "app");
        c[0].cpu_cores = cpu_m / 1000.0 / 1.2;
        c[0].mem_bytes = c[0].mem_peak_bytes = mem_mi * 1048576.0 / 1.2;
        snprintf(c[1].container, sizeof c[1].container, "sidecar");
        c[1].cpu_cores = 0.010 / 1.2;
        c[1].mem_bytes = c[1].mem_peak_bytes = 32 * 1048576.0 / 1.2;
        for (int k = 0; k < 2; k++) {
            c[k].cpu_samples = c[k].mem_samples = 10000;
            c[k].history_s = 7 * 86400;
        }
        ws[i] = (mprov_workload_stats){rq->workloads[i].kind, rq->workloads[i].name, 2, c, NULL};
    }
    mprov_result r = {.ns = rq->ns, .nworkloads = rq->nworkloads, .workloads = ws, .queries = 1};
    if (!ws || !cs)
        r = (mprov_result){.error = -12, .error_msg = "out of memory", .ns = rq->ns};
    cb(&r, ud);
    free(ws);
    free(cs);
    return 0;
}

static void bp_close(void *state)
{
    free(state);
}

static const mprov_ops bp_ops = {"bench", bp_request, bp_close};

static size_t writes(const fakeapi *fa)
{
    size_t n = 0;
    for (size_t i = 0; i < fakeapi_log_count(fa); i++) {
        const fakeapi_logged *l = fakeapi_log_at(fa, i);
        if (strcmp(l->method, "GET") != 0)
            n++;
    }
    return n;
}

typedef struct pass {
    ctl *c;
    const fakeapi *fa;
    uint64_t want;
} pass;

static int passed(void *ud)
{
    pass *p = ud;
    ctl_stats st;
    ctl_stats_get(p->c, &st);
    return st.reconciles >= p->want && writes(p->fa) >= 1; /* the status, answered */
}

static int never(void *ud)
{
    (void)ud;
    return 0;
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

int main(void)
{
    fakeapi *fa;
    kcfg cfg;
    ophttp_client *http;
    krest *rest;
    kevents *ev;
    ctl *c;
    operr err = {{0}};
    char kc[] = "/tmp/bench_steady.XXXXXX";
    uv_loop_init(&loop);
    if (fakeapi_start(&fa, &loop, NULL) != 0 || !mkdtemp(kc))
        return 1;
    char path[128];
    snprintf(path, sizeof path, "%s/kubeconfig", kc);
    fakeapi_write_kubeconfig(fa, path, "tok");
    kcfg_init(&cfg);
    if (kcfg_load_file(&cfg, path, NULL, &err) || ophttp_client_new(&http, &loop, NULL) ||
        krest_new(&rest, http, &cfg, &err) || kevents_new(&ev, rest, NULL, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    opbuf b;
    opbuf_init(&b, 1 << 16);
    fakeapi_put_json(fa, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":"
                         "\"bench\"}}");
    for (unsigned i = 0; i < WORKLOADS; i++) {
        opbuf_reset(&b);
        gen_deployment(&b, "bench", i);
        if (fakeapi_put_json(fa, b.data) != 0)
            return 1;
    }
    opbuf_release(&b);
    fakeapi_put_json(fa, "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\","
                         "\"metadata\":{\"name\":\"all\",\"namespace\":\"bench\"},\"spec\":{"
                         "\"mode\":\"Auto\",\"selector\":{\"workloadSelector\":{\"matchLabels\":"
                         "{\"optimize\":\"true\"}}}}}");
    mprov *prov = calloc(1, sizeof *prov);
    prov->ops = &bp_ops;
    prov->state = prov;
    ctl_opts o = {.ns = "bench",
                  .provider = prov,
                  .events = ev,
                  .resync_ms = RESYNC_MS,
                  .usage_ttl_ms = RESYNC_MS};
    if (ctl_new(&c, &loop, rest, &o, &err) != 0) {
        fprintf(stderr, "ctl_new: %s\n", err.msg);
        return 1;
    }
    ctl_start(c);
    /* the first full pass, and its one status write */
    pass p = {c, fa, WORKLOADS};
    if (!tloop_until(&loop, passed, &p, tloop_scaled(60000))) {
        ctl_stats st;
        ctl_stats_get(c, &st);
        fprintf(stderr,
                "FAIL: the first pass did not finish: %llu reconciles (%llu unchanged, %llu "
                "applied, %llu skipped, %llu errors), %llu status writes, %zu pending\n",
                (unsigned long long)st.reconciles, (unsigned long long)st.unchanged,
                (unsigned long long)st.applied, (unsigned long long)st.skipped,
                (unsigned long long)st.errors, (unsigned long long)st.status_writes,
                ctl_pending(c));
        return 1;
    }
    ctl_stats s0, s1;
    ctl_stats_get(c, &s0);
    size_t w0 = writes(fa);
    tloop_until(&loop, never, NULL, STEADY_MS);
    ctl_stats_get(c, &s1);
    size_t w1 = writes(fa);
    uint64_t recs = s1.reconciles - s0.reconciles;
    double cycles = (double)STEADY_MS / RESYNC_MS;
    double per_hour = (double)(w1 - w0) * 3600000.0 / STEADY_MS;
    printf("steady-state API writes: %d unchanged workloads, resync every %d ms\n", WORKLOADS,
           RESYNC_MS);
    printf("  first pass         %llu reconciles (%llu unchanged), %zu writes (policy status)\n",
           (unsigned long long)s0.reconciles, (unsigned long long)s0.unchanged, w0);
    printf("  steady window      %.0f cycles, %llu reconciles (%.0f per cycle)\n", cycles,
           (unsigned long long)recs, (double)recs / cycles);
    printf("  writes             %zu (target 0); %.0f per hour at this rate\n", w1 - w0, per_hour);
    printf("  usage requests     %llu\n", (unsigned long long)s1.usage_requests);
    int rc = (w1 != w0 || s1.unchanged < WORKLOADS) ? 1 : 0;
    if (rc)
        printf("FAIL: writes in the steady state, or workloads not unchanged\n");
    int closed = 0;
    ctl_close(c, on_closed, &closed);
    tloop_until_flag(&loop, &closed, 5000);
    kevents_free(ev);
    krest_free(rest);
    ophttp_client_close(http, on_closed, &closed);
    fakeapi_stop(fa, on_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    kcfg_release(&cfg);
    unlink(path);
    rmdir(kc);
    return rc;
}
