/*
 * The metrics-server provider: the pure store (PodMetrics parsing, dedup,
 * histograms, bounds) and the provider against the fake API server serving
 * metrics.k8s.io PodMetrics.
 */
#include "test.h"
#include "support/loop.h"

#include <errno.h>
#include <math.h>
#include <time.h>
#include <uv.h>

#include "engine/histogram.h"
#include "http/http.h"
#include "kube/config.h"
#include "kube/rest.h"
#include "controller/ckpt.h"
#include "metrics/metricsserver.h"
#include "support/fakeapi.h"
#include "util/buf.h"
#include "util/optime.h"

/* 2026-11-22T00:00:00Z */
#define T0 1795305600.0

static void fmt_time(double t, char *out, size_t n)
{
    ASSERT_EQ_INT(optime_format((optime){.sec = (int64_t)t}, 0, out, n), 20);
}

/* One PodMetrics object (for the fake API server) or list item. */
static void pod_metrics(opbuf *b, const char *ns, const char *pod, double t, const char *cpu,
                        const char *mem, const char *cpu2, const char *mem2)
{
    char ts[32];
    fmt_time(t, ts, sizeof ts);
    opbuf_printf(b,
                 "{\"apiVersion\":\"metrics.k8s.io/v1beta1\",\"kind\":\"PodMetrics\","
                 "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},\"timestamp\":\"%s\","
                 "\"window\":\"30s\",\"containers\":[{\"name\":\"app\",\"usage\":{\"cpu\":\"%s\","
                 "\"memory\":\"%s\"}}",
                 pod, ns, ts, cpu, mem);
    if (cpu2)
        opbuf_printf(b, ",{\"name\":\"sidecar\",\"usage\":{\"cpu\":\"%s\",\"memory\":\"%s\"}}",
                     cpu2, mem2);
    opbuf_puts(b, "]}");
}

static const char *const web_pods[] = {"web-a", "web-b", "web-c"};
static const mprov_workload web_w = {"Deployment", "web", web_pods, 3};

static mprov_request web_request(void)
{
    return (mprov_request){
        .ns = "shop", .workloads = &web_w, .nworkloads = 1, .percentile = 0.9, .window_s = 86400};
}

static const mprov_container_stats *find_c(const mprov_workload_stats *w, const char *name)
{
    for (size_t i = 0; i < w->ncontainers; i++)
        if (strcmp(w->containers[i].container, name) == 0)
            return &w->containers[i];
    return NULL;
}

static void test_store_parses_quantities_and_dedups(void)
{
    mms_store *s = NULL;
    ASSERT_EQ_INT(mms_store_new(&s, NULL), 0);
    mprov_request rq = web_request();
    ASSERT_EQ_INT(mms_store_map(s, &rq, T0), 0);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    opbuf_puts(&b, "{\"kind\":\"PodMetricsList\",\"items\":[");
    pod_metrics(&b, "shop", "web-a", T0, "123456789n", "1234Ki", "12m", "1Gi");
    opbuf_puts(&b, ",");
    pod_metrics(&b, "shop", "stranger", T0, "5", "1Ti", NULL, NULL); /* not mapped: ignored */
    opbuf_puts(&b, "]}");
    operr err;
    ASSERT_EQ_INT(mms_store_ingest(s, "shop", b.data, b.len, T0, &err), 2);
    /* The same list again (metrics-server has not scraped since): nothing new. */
    ASSERT_EQ_INT(mms_store_ingest(s, "shop", b.data, b.len, T0 + 10, &err), 0);
    ASSERT_EQ_INT(mms_store_series(s), 2);
    mprov_result r = {0};
    ASSERT_EQ_INT(mms_store_stats(s, &rq, T0 + 60, &r), 0);
    ASSERT_EQ_INT(r.nworkloads, 1);
    ASSERT_STR_EQ(r.workloads[0].name, "web");
    ASSERT_EQ_INT(r.workloads[0].ncontainers, 2);
    const mprov_container_stats *app = find_c(&r.workloads[0], "app");
    const mprov_container_stats *side = find_c(&r.workloads[0], "sidecar");
    ASSERT_NOT_NULL(app);
    ASSERT_NOT_NULL(side);
    ASSERT_EQ_INT(app->cpu_samples, 1);
    ASSERT_EQ_INT(app->mem_samples, 1);
    ASSERT_NEAR(app->mem_peak_bytes, 1234 * 1024, 0);
    ASSERT_NEAR(side->mem_peak_bytes, 1024.0 * 1024 * 1024, 0);
    ASSERT_NEAR(app->history_s, 60, 1e-9);
    ASSERT_EQ_INT(app->oom_count, 0);
    /* The percentile is the end of the sample's bucket: at most 5 % high. */
    ASSERT(app->cpu_cores >= 0.123456789 && app->cpu_cores <= 0.123456789 * 1.05 + 0.01);
    ASSERT(side->cpu_cores >= 0.012 && side->cpu_cores <= 0.012 * 1.05 + 0.01);
    ASSERT(app->mem_bytes >= 1234 * 1024);
    opbuf_release(&b);
    mms_store_free(s);
}

static void test_store_rejects_bad_lists_whole(void)
{
    mms_store *s = NULL;
    ASSERT_EQ_INT(mms_store_new(&s, NULL), 0);
    mprov_request rq = web_request();
    ASSERT_EQ_INT(mms_store_map(s, &rq, T0), 0);
    operr err;
    const char *bad[] = {
        "not json",
        "{\"kind\":\"Status\"}",
        "{\"items\":[{\"metadata\":{\"name\":\"web-a\"},\"timestamp\":\"yesterday\","
        "\"containers\":[]}]}",
        "{\"items\":[{\"metadata\":{\"name\":\"web-a\"},\"timestamp\":\"2026-11-22T00:00:00Z\","
        "\"containers\":[{\"name\":\"app\",\"usage\":{\"cpu\":\"1\"}}]}]}",
    };
    const char *want[] = {"not JSON", "no \"items\"", "items[0]", "containers[0]"};
    for (size_t i = 0; i < 4; i++) {
        operr_clear(&err);
        ASSERT_EQ_INT(mms_store_ingest(s, "shop", bad[i], strlen(bad[i]), T0, &err), -EPROTO);
        ASSERT_STR_CONTAINS(err.msg, want[i]);
    }
    /* A good item before a bad quantity: the whole list is refused, nothing folded. */
    opbuf b;
    opbuf_init(&b, 1 << 16);
    opbuf_puts(&b, "{\"items\":[");
    pod_metrics(&b, "shop", "web-a", T0, "10m", "10Mi", NULL, NULL);
    opbuf_puts(&b, ",");
    pod_metrics(&b, "shop", "web-b", T0, "10x", "10Mi", NULL, NULL);
    opbuf_puts(&b, "]}");
    ASSERT_EQ_INT(mms_store_ingest(s, "shop", b.data, b.len, T0, &err), -EPROTO);
    ASSERT_STR_CONTAINS(err.msg, "pod 'web-b' container 'app': bad usage");
    ASSERT_EQ_INT(mms_store_series(s), 0);
    /* Offsets and fractions in timestamps are understood. */
    const char *ok = "{\"items\":[{\"metadata\":{\"name\":\"web-a\"},"
                     "\"timestamp\":\"2026-11-22T02:00:00.5+02:00\",\"containers\":[{\"name\":"
                     "\"app\",\"usage\":{\"cpu\":\"0\",\"memory\":\"0\"}}]}]}";
    ASSERT_EQ_INT(mms_store_ingest(s, "shop", ok, strlen(ok), T0, &err), 1);
    mprov_result r = {0};
    ASSERT_EQ_INT(mms_store_stats(s, &rq, T0 + 10, &r), 0);
    ASSERT_NEAR(r.workloads[0].containers[0].history_s, 9.5, 1e-9);
    opbuf_release(&b);
    mms_store_free(s);
}

static void test_store_is_bounded_and_forgets(void)
{
    mms_opts o = {.max_series = 3, .forget_after_s = 3600};
    mms_store *s = NULL;
    ASSERT_EQ_INT(mms_store_new(&s, &o), 0);
    /* 5 workloads with one pod each: only 3 series may exist. */
    static const char *const pods[5][1] = {{"p0"}, {"p1"}, {"p2"}, {"p3"}, {"p4"}};
    mprov_workload w[5];
    char names[5][8];
    for (int i = 0; i < 5; i++) {
        snprintf(names[i], sizeof names[i], "w%d", i);
        w[i] = (mprov_workload){"Deployment", names[i], pods[i], 1};
    }
    mprov_request rq = {
        .ns = "ns", .workloads = w, .nworkloads = 5, .percentile = 0.5, .window_s = 3600};
    ASSERT_EQ_INT(mms_store_map(s, &rq, T0), 0);
    opbuf b;
    opbuf_init(&b, 1 << 16);
    opbuf_puts(&b, "{\"items\":[");
    for (int i = 0; i < 5; i++) {
        if (i)
            opbuf_puts(&b, ",");
        pod_metrics(&b, "ns", pods[i][0], T0, "1m", "1Mi", NULL, NULL);
    }
    opbuf_puts(&b, "]}");
    operr err;
    ASSERT_EQ_INT(mms_store_ingest(s, "ns", b.data, b.len, T0, &err), 3);
    ASSERT_EQ_INT(mms_store_series(s), 3);
    /* Two hours later nothing was updated: an empty list forgets them all. */
    const char *empty = "{\"items\":[]}";
    ASSERT_EQ_INT(mms_store_ingest(s, "ns", empty, strlen(empty), T0 + 7200, &err), 0);
    ASSERT_EQ_INT(mms_store_series(s), 0);
    opbuf_release(&b);
    mms_store_free(s);
}

static void test_store_merges_mappings_of_requests(void)
{
    mms_opts o = {.forget_after_s = 3600};
    mms_store *s = NULL;
    ASSERT_EQ_INT(mms_store_new(&s, &o), 0);
    static const char *const a_pods[] = {"a-1", "shared"};
    static const char *const b_pods[] = {"shared", "b-1"};
    mprov_workload both[2] = {{"Deployment", "a", a_pods, 2}, {"Deployment", "b", b_pods, 2}};
    mprov_request rq = {
        .ns = "ns", .workloads = both, .nworkloads = 2, .percentile = 0.5, .window_s = 3600};
    ASSERT_EQ_INT(mms_store_map(s, &rq, T0), 0); /* "shared": the first claim (a) wins */
    /* A later request naming only a third workload adds to the mapping. */
    static const char *const c_pods[] = {"c-1"};
    mprov_workload c = {"StatefulSet", "c", c_pods, 1};
    mprov_request rc = {
        .ns = "ns", .workloads = &c, .nworkloads = 1, .percentile = 0.5, .window_s = 3600};
    ASSERT_EQ_INT(mms_store_map(s, &rc, T0), 0);
    opbuf b;
    opbuf_init(&b, 1 << 16);
    opbuf_puts(&b, "{\"items\":[");
    pod_metrics(&b, "ns", "a-1", T0, "100m", "10Mi", NULL, NULL);
    opbuf_puts(&b, ",");
    pod_metrics(&b, "ns", "shared", T0, "300m", "30Mi", NULL, NULL);
    opbuf_puts(&b, ",");
    pod_metrics(&b, "ns", "b-1", T0, "200m", "20Mi", NULL, NULL);
    opbuf_puts(&b, ",");
    pod_metrics(&b, "ns", "c-1", T0, "50m", "5Mi", NULL, NULL);
    opbuf_puts(&b, "]}");
    operr err;
    ASSERT_EQ_INT(mms_store_ingest(s, "ns", b.data, b.len, T0, &err), 4);
    mprov_result r = {0};
    ASSERT_EQ_INT(mms_store_stats(s, &rq, T0, &r), 0);
    ASSERT_EQ_INT(r.workloads[0].containers[0].cpu_samples, 2); /* a-1 and shared */
    ASSERT_NEAR(r.workloads[0].containers[0].mem_peak_bytes, 30 * 1048576.0, 0);
    ASSERT_EQ_INT(r.workloads[1].containers[0].cpu_samples, 1); /* b-1 only */
    ASSERT_EQ_INT(mms_store_stats(s, &rc, T0, &r), 0);
    ASSERT_EQ_INT(r.workloads[0].ncontainers, 1);
    ASSERT_NEAR(r.workloads[0].containers[0].mem_peak_bytes, 5 * 1048576.0, 0);
    /* Two hours on, c-1 left the list and nobody named it: forgotten, so its
     * usage is no longer attributed even if it shows up again. */
    opbuf_reset(&b);
    opbuf_puts(&b, "{\"items\":[");
    pod_metrics(&b, "ns", "a-1", T0 + 7200, "100m", "10Mi", NULL, NULL);
    opbuf_puts(&b, "]}");
    ASSERT_EQ_INT(mms_store_ingest(s, "ns", b.data, b.len, T0 + 7200, &err), 1);
    opbuf_reset(&b);
    opbuf_puts(&b, "{\"items\":[");
    pod_metrics(&b, "ns", "c-1", T0 + 7230, "50m", "5Mi", NULL, NULL);
    opbuf_puts(&b, "]}");
    ASSERT_EQ_INT(mms_store_ingest(s, "ns", b.data, b.len, T0 + 7230, &err), 0);
    opbuf_release(&b);
    mms_store_free(s);
}

/* ---- the provider against the fake API server ------------------------------------------- */

static uv_loop_t loop;
static fakeapi *fa;
static ophttp_client *http;
static krest *rest;
static kcfg cfg;

typedef struct got {
    int done, error;
    char msg[OPERR_MAX];
    size_t nw, nc;
    mprov_container_stats c[4];
} got;

static void on_stats(const mprov_result *r, void *ud)
{
    got *g = ud;
    g->done++;
    g->error = r->error;
    snprintf(g->msg, sizeof g->msg, "%s", r->error_msg);
    g->nw = r->nworkloads;
    g->nc = r->nworkloads ? r->workloads[0].ncontainers : 0;
    for (size_t i = 0; i < g->nc && i < 4; i++)
        g->c[i] = r->workloads[0].containers[i];
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

static void setup(void)
{
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    ASSERT_EQ_INT(fakeapi_start(&fa, &loop, NULL), 0);
    kcfg_init(&cfg);
    cfg.server = strdup(fakeapi_url(fa));
    cfg.ca_data = strdup(fakeapi_ca_pem(fa));
    cfg.ca_data_len = strlen(cfg.ca_data);
    operr err;
    ASSERT_EQ_INT(ophttp_client_new(&http, &loop, NULL), 0);
    ASSERT_EQ_INT(krest_new(&rest, http, &cfg, &err), 0);
}

static void teardown(void)
{
    int closed = 0, fclosed = 0;
    krest_free(rest);
    ophttp_client_close(http, on_closed, &closed);
    fakeapi_stop(fa, on_closed, &fclosed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(fclosed, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    kcfg_release(&cfg);
}
static void run_until(uv_loop_t *l, const int *done)
{
    tloop_until_flag(l, done, 20000);
}

static void wait_for(got *g)
{
    run_until(&loop, &g->done);
    ASSERT_EQ_INT(g->done, 1);
}

static void put_metrics(int round, double *cpu, double *mem)
{
    opbuf b;
    opbuf_init(&b, 1 << 16);
    for (int p = 0; p < 3; p++) {
        /* Deterministic, different per pod and round; cpu in nanocores, mem in Ki. */
        long long nc = 50000000LL + ((round * 7919LL + p * 104729LL) % 400) * 1000000LL;
        long long ki = 100000LL + ((round * 6151LL + p * 3571LL) % 900) * 100LL;
        char cs[32], ms[32];
        snprintf(cs, sizeof cs, "%lldn", nc);
        snprintf(ms, sizeof ms, "%lldKi", ki);
        cpu[p] = (double)nc / 1e9;
        mem[p] = (double)ki * 1024;
        opbuf_reset(&b);
        pod_metrics(&b, "shop", web_pods[p], T0 + 30.0 * round, cs, ms, NULL, NULL);
        ASSERT_EQ_INT(fakeapi_put_json(fa, opbuf_str(&b)), 0);
    }
    opbuf_release(&b);
}

static void test_provider_samples_into_histograms(void)
{
    setup();
    mprov *p = NULL;
    operr err;
    /* A long interval: the test drives sampling with mms_sample_now(). */
    mms_opts o = {.interval_ms = 3600 * 1000};
    ASSERT_EQ_INT(mms_new(&p, &loop, rest, &o, &err), 0);
    ASSERT_STR_EQ(mprov_name(p), "metrics-server");
    ehist ecpu, emem;
    ehist_opts co, mo;
    ehist_opts_cpu(&co);
    ehist_opts_memory(&mo);
    ASSERT_EQ_INT(ehist_init(&ecpu, &co), 0);
    ASSERT_EQ_INT(ehist_init(&emem, &mo), 0);
    double peak = 0;
    mprov_request rq = web_request();
    rq.eval_time_s = (int64_t)T0 + 30 * 40;
    const int rounds = 40;
    for (int round = 0; round < rounds; round++) {
        double cpu[3], mem[3];
        put_metrics(round, cpu, mem);
        for (int i = 0; i < 3; i++) {
            ehist_add(&ecpu, cpu[i], 1.0, T0 + 30.0 * round);
            ehist_add(&emem, mem[i], 1.0, T0 + 30.0 * round);
            peak = fmax(peak, mem[i]);
        }
        if (round > 0)
            ASSERT_EQ_INT(mms_sample_now(p), 0);
        got g = {0};
        ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), 0);
        ASSERT_EQ_INT(g.done, 0);
        wait_for(&g);
        if (g.error)
            test_fail(__FILE__, __LINE__, "round %d: %s", round, g.msg);
        if (round == rounds - 1) {
            ASSERT_EQ_INT(g.nw, 1);
            ASSERT_EQ_INT(g.nc, 1);
            /* Same samples, same times, same histogram: the same answer. */
            ASSERT_NEAR(g.c[0].cpu_cores, ehist_percentile(&ecpu, 0.9), 1e-12);
            ASSERT_NEAR(g.c[0].mem_bytes, ehist_percentile(&emem, 0.9), 1e-3);
            ASSERT_NEAR(g.c[0].mem_peak_bytes, peak, 0);
            ASSERT_EQ_INT(g.c[0].cpu_samples, 3 * rounds);
            ASSERT_EQ_INT(g.c[0].mem_samples, 3 * rounds);
            ASSERT_NEAR(g.c[0].history_s, 30.0 * 40, 1e-9);
        }
    }
    /* Asked again right away: answered from memory, no new list. */
    size_t lists = fakeapi_count(fa, "GET", "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods");
    ASSERT_EQ_INT(lists, rounds);
    got g = {0};
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), 0);
    wait_for(&g);
    ASSERT_EQ_INT(g.error, 0);
    ASSERT_EQ_INT(fakeapi_count(fa, "GET", "/apis/metrics.k8s.io/"), rounds);
    ASSERT_EQ_INT(mms_namespaces(p), 1);
    ASSERT_EQ_INT(mms_series(p), 1);
    ehist_release(&ecpu);
    ehist_release(&emem);
    mprov_close(p);
    teardown();
}

static void test_provider_errors_are_results(void)
{
    setup();
    mprov *p = NULL;
    operr err;
    mms_opts o = {.interval_ms = 3600 * 1000};
    ASSERT_EQ_INT(mms_new(&p, &loop, rest, &o, &err), 0);
    mprov_request rq = web_request();
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, NULL, NULL), -EINVAL);
    rq.percentile = 0;
    got g = {0};
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), -EINVAL);
    rq = web_request();
    /* metrics-server unavailable (the aggregated API answers 503). */
    fakeapi_fault f = {.method = "GET",
                       .path = "/apis/metrics.k8s.io/",
                       .watch = -1,
                       .count = 1,
                       .kind = FAKEAPI_FAULT_STATUS,
                       .status = 503,
                       .message = "the server is currently unable to handle the request"};
    ASSERT_EQ_INT(fakeapi_add_fault(fa, &f), 0);
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), 0);
    wait_for(&g);
    ASSERT_EQ_INT(g.error, -EREMOTEIO);
    ASSERT_STR_CONTAINS(g.msg, "metrics-server: namespace 'shop': HTTP 503");
    ASSERT_EQ_INT(g.nw, 0);
    /* A truncated body: not JSON. */
    fakeapi_fault t = {.method = "GET",
                       .path = "/apis/metrics.k8s.io/",
                       .watch = -1,
                       .count = 1,
                       .kind = FAKEAPI_FAULT_TRUNCATE};
    ASSERT_EQ_INT(fakeapi_add_fault(fa, &t), 0);
    double cpu[3], mem[3];
    put_metrics(0, cpu, mem);
    g = (got){0};
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), 0);
    wait_for(&g);
    ASSERT_EQ_INT(g.error, -EPROTO);
    ASSERT_STR_CONTAINS(g.msg, "metrics-server: namespace 'shop'");
    /* Healthy again: the next request samples and answers. */
    g = (got){0};
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), 0);
    wait_for(&g);
    ASSERT_EQ_INT(g.error, 0);
    ASSERT_EQ_INT(g.nc, 1);
    ASSERT_EQ_INT(g.c[0].cpu_samples, 3);
    /* Close with a request pending: no callback afterwards. */
    ASSERT_EQ_INT(mms_sample_now(p), 0);
    g = (got){0};
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), 0);
    mprov_close(p);
    teardown();
    ASSERT_EQ_INT(g.done, 0);
}

static void test_provider_samples_on_the_interval(void)
{
    setup();
    mprov *p = NULL;
    operr err;
    mms_opts o = {.interval_ms = 20};
    ASSERT_EQ_INT(mms_new(&p, &loop, rest, &o, &err), 0);
    double cpu[3], mem[3];
    put_metrics(0, cpu, mem);
    mprov_request rq = web_request();
    got g = {0};
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), 0);
    wait_for(&g);
    ASSERT_EQ_INT(g.error, 0);
    /* Without any request, the timer keeps listing the namespace. */
    uint64_t start = uv_now(&loop);
    while (fakeapi_count(fa, "GET", "/apis/metrics.k8s.io/") < 4 && uv_now(&loop) - start < 5000) {
        uv_run(&loop, UV_RUN_ONCE); /* the 20 ms timer keeps waking it */
        uv_update_time(&loop);
    }
    ASSERT_CMP_INT(fakeapi_count(fa, "GET", "/apis/metrics.k8s.io/"), >=, 4);
    mprov_close(p);
    teardown();
}

/* ---- restarts: checkpoints in a ConfigMap (controller/ckpt.h) ------------------------------ */

static void ask(mprov *p, int64_t eval, got *g)
{
    mprov_request rq = web_request();
    rq.eval_time_s = eval;
    memset(g, 0, sizeof *g);
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, g), 0);
    wait_for(g);
    if (g->error)
        test_fail(__FILE__, __LINE__, "stats: %s", g->msg);
}

typedef struct ckpt_wait {
    ckpt *c;
    uint64_t saves, restored;
} ckpt_wait;

static int pred_ckpt(void *ud)
{
    ckpt_wait *w = ud;
    ckpt_stats st;
    ckpt_stats_get(w->c, &st);
    if (st.saves < w->saves)
        ckpt_save_now(w->c); /* the namespace may not have been looked up yet */
    return st.saves >= w->saves && st.restored >= w->restored;
}

static void wait_ckpt(ckpt *c, uint64_t saves, uint64_t restored)
{
    ckpt_wait w = {c, saves, restored};
    if (!tloop_until(&loop, pred_ckpt, &w, 10000)) {
        ckpt_stats st;
        ckpt_stats_get(c, &st);
        test_fail(__FILE__, __LINE__, "checkpoint: %llu saves, %llu restored, %llu errors",
                  (unsigned long long)st.saves, (unsigned long long)st.restored,
                  (unsigned long long)st.errors);
    }
}

/* A provider that is stopped after round 24 (its checkpoint saved right
 * before) and started again restores the history from the ConfigMap and,
 * given the same samples afterwards, answers what one that never stopped
 * answers. The ConfigMap is in the workloads' namespace, owned by its policy. */
static void test_restart_restores_the_histograms(void)
{
    setup();
    ASSERT_EQ_INT(fakeapi_put_json(fa, "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":"
                                       "\"OptimizationPolicy\",\"metadata\":{\"name\":\"rec\","
                                       "\"namespace\":\"shop\"},\"spec\":{\"selector\":"
                                       "{\"workloadSelector\":{}}}}"),
                  0);
    mms_opts o = {.interval_ms = 3600 * 1000};
    ckpt_opts co = {.interval_ms = 3600 * 1000, .scan_ms = 10};
    mprov *ref = NULL, *a = NULL, *b = NULL;
    ckpt *ca = NULL, *cb = NULL;
    operr err;
    ASSERT_EQ_INT(mms_new(&ref, &loop, rest, &o, &err), 0);
    ASSERT_EQ_INT(mms_new(&a, &loop, rest, &o, &err), 0);
    ASSERT_EQ_INT(ckpt_new(&ca, &loop, rest, a, &co, &err), 0);
    /* only the metrics-server provider has histograms to keep */
    mprov fake = {0};
    ASSERT_EQ_INT(ckpt_new(&cb, &loop, rest, &fake, &co, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "only the metrics-server provider");
    const int rounds = 40, stop = 25;
    got g;
    for (int round = 0; round < rounds; round++) {
        double cpu[3], mem[3];
        put_metrics(round, cpu, mem);
        if (round == stop) {
            /* the restart: the old process's last checkpoint is from round 24 */
            ckpt_close(ca);
            mprov_close(a);
            ASSERT_EQ_INT(mms_new(&b, &loop, rest, &o, &err), 0);
            ASSERT_EQ_INT(ckpt_new(&cb, &loop, rest, b, &co, &err), 0);
        }
        mprov *live = round < stop ? a : b;
        if (round > 0) {
            ASSERT_EQ_INT(mms_sample_now(ref), 0);
            if (round != stop)
                ASSERT_EQ_INT(mms_sample_now(live), 0);
        }
        ask(ref, (int64_t)T0 + 30 * round, &g);
        ask(live, (int64_t)T0 + 30 * round, &g);
        if (round == stop - 1)
            wait_ckpt(ca, 1, 0);
        if (round == stop)
            wait_ckpt(cb, 0, 1);
    }
    got gr, gb;
    ask(ref, (int64_t)T0 + 30 * rounds, &gr);
    ask(b, (int64_t)T0 + 30 * rounds, &gb);
    ASSERT_EQ_INT(gb.nc, 1);
    ASSERT_EQ_INT(gb.c[0].cpu_samples, gr.c[0].cpu_samples);
    ASSERT_EQ_INT(gb.c[0].cpu_samples, 3 * rounds);
    ASSERT_NEAR(gb.c[0].cpu_cores, gr.c[0].cpu_cores, gr.c[0].cpu_cores * 1e-12);
    ASSERT_NEAR(gb.c[0].mem_bytes, gr.c[0].mem_bytes, gr.c[0].mem_bytes * 1e-12);
    ASSERT_NEAR(gb.c[0].mem_peak_bytes, gr.c[0].mem_peak_bytes, 0);
    ASSERT_NEAR(gb.c[0].history_s, gr.c[0].history_s, 1e-9);

    const cJSON *cm = fakeapi_get(fa, "/api/v1/namespaces/shop/configmaps/" CKPT_DEFAULT_NAME);
    ASSERT_NOT_NULL(cm);
    const cJSON *md = cJSON_GetObjectItem(cm, "metadata");
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(md, "labels"), "optipod.io/checkpoint")
                      ->valuestring,
                  "metrics-server");
    const cJSON *own = cJSON_GetArrayItem(cJSON_GetObjectItem(md, "ownerReferences"), 0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(own, "kind")->valuestring, "OptimizationPolicy");
    ASSERT_STR_EQ(cJSON_GetObjectItem(own, "name")->valuestring, "rec");
    const char *doc =
        cJSON_GetObjectItem(cJSON_GetObjectItem(cm, "data"), CKPT_DATA_KEY)->valuestring;
    ASSERT_STR_CONTAINS(doc, "\"namespace\":\"shop\"");
    ASSERT_STR_CONTAINS(doc, "\"kind\":\"Deployment\",\"name\":\"web\",\"container\":\"app\"");
    /* nothing new since the last save: no write */
    size_t writes = fakeapi_count(fa, "PATCH", "/configmaps/");
    ckpt_save_now(cb);
    wait_ckpt(cb, 1, 1);
    ckpt_save_now(cb);
    tloop_until(&loop, pred_ckpt, &(ckpt_wait){cb, 99, 0}, 300);
    ckpt_stats st;
    ckpt_stats_get(cb, &st);
    ASSERT_CMP_INT(st.unchanged, >=, 1);
    ASSERT_EQ_INT(fakeapi_count(fa, "PATCH", "/configmaps/"), (long long)writes + 1);
    ASSERT_EQ_INT(st.errors, 0);
    ckpt_close(cb);
    mprov_close(b);
    mprov_close(ref);
    teardown();
}

int main(void)
{
    TEST_RUN(test_store_parses_quantities_and_dedups);
    TEST_RUN(test_store_rejects_bad_lists_whole);
    TEST_RUN(test_store_is_bounded_and_forgets);
    TEST_RUN(test_store_merges_mappings_of_requests);
    TEST_RUN(test_provider_samples_into_histograms);
    TEST_RUN(test_provider_errors_are_results);
    TEST_RUN(test_provider_samples_on_the_interval);
    TEST_RUN(test_restart_restores_the_histograms);
    return test_summary();
}
