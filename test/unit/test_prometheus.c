/*
 * The Prometheus provider against the REAL Prometheus server (Debian's
 * /usr/bin/prometheus), over series backfilled with promtool, and against a
 * tiny misbehaving HTTP server for the failure paths.
 *
 * Data: a 3-pod Deployment "web" (pods a and b live 24 h, pod c only the last
 * ~15.7 h) with containers "app" and "sidecar", a second workload "api" in the
 * same namespace, plus series that must NOT count: container "POD", container
 * "", a pod of the same name in another namespace. Scrapes every 30 s at
 * t = base + 13 + 30k (never on a subquery point or a window edge, so the
 * inclusive/exclusive edge rules of Prometheus versions do not matter).
 * CPU counters grow by rate × 30 s with a deterministic pseudo-random rate per
 * scrape; memory gauges are deterministic pseudo-random integers.
 *
 * A second data set, in namespaces "roll" (no kube-state-metrics) and
 * "roll-ksm" (with its owner series), is a cluster after rollouts: the
 * Deployment web's earlier ReplicaSet's pods ran hot for most of the day and
 * are gone an hour ago, its one current pod idles; web-api (a name that
 * starts with web-) runs hotter still; the StatefulSet db was scaled from 2
 * to 1; one pod of the DaemonSet agent was replaced. Pods of other things
 * (a DaemonSet web-redis, a CronJob web's Job pod, a DaemonSet web-db) sit
 * in between with huge values that must never be counted.
 *
 * Expected values are computed here independently from the same samples, the
 * way Prometheus 2.42 does: rate() with its extrapolation at every multiple of
 * the 60 s step inside the window, quantile_over_time by linear interpolation
 * (rank q·(n−1)), then the max over pods (the provider's documented
 * combination). Because the evaluation points are the same, the only
 * difference left is floating-point rounding order: the tolerance is 1e-9
 * relative. Peaks and sample counts are exact.
 */
#include "test.h"
#include "support/loop.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "http/http.h"
#include "metrics/prometheus.h"
#include "metrics/promflags.h"
#include "metrics/promql.h"
#include "support/authproxy.h"
#include "support/fakeapi.h"
#include "support/promserver.h"
#include "util/buf.h"

#define SCRAPE_S 30
#define NSCRAPES 2900
#define WINDOW_S 86400
#define STEP_S   60
#define RATE_S   300

/* ---- deterministic data ------------------------------------------------------------------ */

typedef struct series {
    const char *metric, *ns, *pod, *container;
    const char *owner_kind, *owner_name; /* kube-state-metrics owner series */
    int64_t t[NSCRAPES];                 /* unix seconds */
    double v[NSCRAPES];
    int n;
} series;

enum { S_CPU, S_MEM };

typedef struct pod_def {
    const char *ns, *pod;
    int first_k; /* first scrape index: newer pods start later */
    double cpu_scale, mem_base;
    int end_k; /* scrape index it ended at (gone pods); 0: it still runs */
} pod_def;

static const pod_def web_pods[] = {
    {"shop", "web-5d8f-a", 0, 0.20, 200e6, 0},
    {"shop", "web-5d8f-b", 0, 0.30, 260e6, 0},
    {"shop", "web-5d8f-c", 1000, 0.25, 230e6, 0},
};
static const char *const containers[] = {"app", "sidecar"};

static int64_t base_t, eval_t;
static series *all;
static int nall;
static opbuf om;
static promsrv prom; /* static: promsrv's atexit hook may still see it */
static char prom_err[OPERR_MAX];

static uint64_t rng_state;
static double rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / (double)(1ull << 53);
}

static series *add_series(const char *metric, const char *ns, const char *pod,
                          const char *container)
{
    series *s = &all[nall++];
    s->metric = metric;
    s->ns = ns;
    s->pod = pod;
    s->container = container;
    s->owner_kind = s->owner_name = NULL;
    s->n = 0;
    return s;
}

/* CPU counter: rate per scrape interval from a skewed distribution (u^3 puts
 * most points low with rare spikes, so percentiles differ from the mean). */
static void gen_cpu_until(series *s, int first_k, int end_k, double scale)
{
    double c = 5000.0 + 1000.0 * rnd();
    for (int k = first_k; k < end_k; k++) {
        double u = rnd();
        c += (0.05 + scale * u * u * u * 4.0) * SCRAPE_S;
        s->t[s->n] = base_t + 13 + (int64_t)SCRAPE_S * k;
        s->v[s->n++] = c;
    }
}

static void gen_cpu(series *s, int first_k, double scale)
{
    gen_cpu_until(s, first_k, NSCRAPES, scale);
}

static void gen_mem_until(series *s, int first_k, int end_k, double base)
{
    for (int k = first_k; k < end_k; k++) {
        double u = rnd();
        s->t[s->n] = base_t + 13 + (int64_t)SCRAPE_S * k;
        s->v[s->n++] = floor(base + base * 0.5 * u * u);
    }
}

static void gen_mem(series *s, int first_k, double base)
{
    gen_mem_until(s, first_k, NSCRAPES, base);
}

/* ---- after rollouts: the window's pods, not the current ones ---------------------------- */

#define GONE_K (NSCRAPES - 120) /* an hour before the end */

/* Pods of the requested workloads, per namespace (roll: [0], roll-ksm: [1]). */
static const pod_def roll_web[2][4] = {
    {{"roll", "web-7d9f8c6b5d-x2k4p", 0, 0.5, 300e6, GONE_K},
     {"roll", "web-7d9f8c6b5d-m8qzt", 0, 0.4, 320e6, GONE_K},
     {"roll", "web-5c6b9f8d47-bcdfg", GONE_K, 0.005, 100e6, 0}},
    {{"roll-ksm", "web-7d9f8c6b5d-x2k4p", 0, 0.5, 300e6, GONE_K},
     {"roll-ksm", "web-7d9f8c6b5d-m8qzt", 0, 0.4, 320e6, GONE_K},
     {"roll-ksm", "web-5c6b9f8d47-bcdfg", GONE_K, 0.005, 100e6, 0},
     /* a name no pattern knows: only kube-state-metrics finds it */
     {"roll-ksm", "web-legacy-pod-1", 0, 0.3, 500e6, 600}},
};
static const pod_def roll_api[2][1] = {
    {{"roll", "web-api-6f7d8c9b5d-q4v9s", 0, 1.0, 900e6, 0}},
    {{"roll-ksm", "web-api-6f7d8c9b5d-q4v9s", 0, 1.0, 900e6, 0}}};
static const pod_def roll_db[2][2] = {
    {{"roll", "db-0", 0, 0.1, 400e6, 0}, {"roll", "db-1", 0, 0.2, 450e6, GONE_K}},
    {{"roll-ksm", "db-0", 0, 0.1, 400e6, 0}, {"roll-ksm", "db-1", 0, 0.2, 450e6, GONE_K}}};
static const pod_def roll_agent[2][2] = {{{"roll", "agent-bcdfg", 0, 0.05, 80e6, GONE_K},
                                          {"roll", "agent-x2k4p", GONE_K, 0.01, 60e6, 0}},
                                         {{"roll-ksm", "agent-bcdfg", 0, 0.05, 80e6, GONE_K},
                                          {"roll-ksm", "agent-x2k4p", GONE_K, 0.01, 60e6, 0}}};
/* Not theirs: huge values. The last one has web's pattern, but
 * kube-state-metrics says another Deployment owns it (roll-ksm only). */
static const char *const roll_strangers[] = {"web-redis-bcdfg", "web-29012345-bcdfg",
                                             "web-db-x2k4p", "web-bcdfgh-x2k4p",
                                             "web-7d9f8c6b5d-zzzzz"};

static void gen_pod(const pod_def *d)
{
    int end = d->end_k ? d->end_k : NSCRAPES;
    gen_cpu_until(add_series("container_cpu_usage_seconds_total", d->ns, d->pod, "app"), d->first_k,
                  end, d->cpu_scale);
    gen_mem_until(add_series("container_memory_working_set_bytes", d->ns, d->pod, "app"),
                  d->first_k, end, d->mem_base);
}

/* kube-state-metrics: a gauge of 1 while the object exists. */
static void gen_owner(const char *metric, const char *ns, const char *pod, const char *kind,
                      const char *owner, int first_k, int end_k)
{
    series *s = add_series(metric, ns, pod, "");
    s->owner_kind = kind;
    s->owner_name = owner;
    for (int k = first_k; k < (end_k ? end_k : NSCRAPES); k++) {
        s->t[s->n] = base_t + 13 + (int64_t)SCRAPE_S * k;
        s->v[s->n++] = 1;
    }
}

static void gen_roll(void)
{
    for (int n = 0; n < 2; n++) {
        const pod_def *all_pods[] = {&roll_web[n][0], &roll_web[n][1],   &roll_web[n][2],
                                     &roll_web[n][3], &roll_api[n][0],   &roll_db[n][0],
                                     &roll_db[n][1],  &roll_agent[n][0], &roll_agent[n][1]};
        for (size_t i = 0; i < sizeof all_pods / sizeof *all_pods; i++)
            if (all_pods[i]->pod)
                gen_pod(all_pods[i]);
        const char *ns = n ? "roll-ksm" : "roll";
        for (size_t i = 0; i < sizeof roll_strangers / sizeof *roll_strangers - (n ? 0 : 1); i++) {
            pod_def d = {ns, roll_strangers[i], 0, 40, 9e9, 0};
            gen_pod(&d);
        }
        if (!n)
            continue;
        static const char *const KPO = "kube_pod_owner", *const KRO = "kube_replicaset_owner";
        gen_owner(KPO, ns, "web-7d9f8c6b5d-x2k4p", "ReplicaSet", "web-7d9f8c6b5d", 0, GONE_K);
        gen_owner(KPO, ns, "web-7d9f8c6b5d-m8qzt", "ReplicaSet", "web-7d9f8c6b5d", 0, GONE_K);
        gen_owner(KPO, ns, "web-5c6b9f8d47-bcdfg", "ReplicaSet", "web-5c6b9f8d47", GONE_K, 0);
        gen_owner(KPO, ns, "web-legacy-pod-1", "ReplicaSet", "web-7d9f8c6b5d", 0, 600);
        gen_owner(KPO, ns, "web-api-6f7d8c9b5d-q4v9s", "ReplicaSet", "web-api-6f7d8c9b5d", 0, 0);
        gen_owner(KPO, ns, "db-0", "StatefulSet", "db", 0, 0);
        gen_owner(KPO, ns, "db-1", "StatefulSet", "db", 0, GONE_K);
        gen_owner(KPO, ns, "agent-bcdfg", "DaemonSet", "agent", 0, GONE_K);
        gen_owner(KPO, ns, "agent-x2k4p", "DaemonSet", "agent", GONE_K, 0);
        gen_owner(KPO, ns, "web-redis-bcdfg", "DaemonSet", "web-redis", 0, 0);
        gen_owner(KPO, ns, "web-29012345-bcdfg", "Job", "web-29012345", 0, 0);
        gen_owner(KPO, ns, "web-db-x2k4p", "DaemonSet", "web-db", 0, 0);
        gen_owner(KPO, ns, "web-bcdfgh-x2k4p", "ReplicaSet", "web-bcdfgh", 0, 0);
        gen_owner(KPO, ns, "web-7d9f8c6b5d-zzzzz", "ReplicaSet", "impostor-5d8f9b6c4d", 0, 0);
        /* the old ReplicaSet was deleted with its pods; its series still covers the window */
        gen_owner(KRO, ns, "web-7d9f8c6b5d", "Deployment", "web", 0, GONE_K);
        gen_owner(KRO, ns, "web-5c6b9f8d47", "Deployment", "web", GONE_K, 0);
        gen_owner(KRO, ns, "web-api-6f7d8c9b5d", "Deployment", "web-api", 0, 0);
        gen_owner(KRO, ns, "impostor-5d8f9b6c4d", "Deployment", "impostor", 0, 0);
    }
}

static void gen_data(void)
{
    rng_state = 42;
    int64_t now = (int64_t)time(NULL);
    base_t = now / 60 * 60 - WINDOW_S - 900;
    eval_t = base_t + WINDOW_S + 30; /* ≡ 30 mod 60: not a subquery point */
    all = calloc(128, sizeof *all);
    for (size_t p = 0; p < 3; p++) {
        for (size_t c = 0; c < 2; c++) {
            double f = c == 0 ? 1.0 : 0.1;
            gen_cpu(add_series("container_cpu_usage_seconds_total", "shop", web_pods[p].pod,
                               containers[c]),
                    web_pods[p].first_k, web_pods[p].cpu_scale * f);
            gen_mem(add_series("container_memory_working_set_bytes", "shop", web_pods[p].pod,
                               containers[c]),
                    web_pods[p].first_k, web_pods[p].mem_base * f);
        }
    }
    gen_cpu(add_series("container_cpu_usage_seconds_total", "shop", "api-77c-x", "server"), 0,
            0.05);
    gen_mem(add_series("container_memory_working_set_bytes", "shop", "api-77c-x", "server"), 0,
            50e6);
    /* Series that must be ignored: huge values everywhere. */
    gen_cpu(add_series("container_cpu_usage_seconds_total", "shop", "web-5d8f-a", "POD"), 0, 50);
    gen_mem(add_series("container_memory_working_set_bytes", "shop", "web-5d8f-a", "POD"), 0, 9e9);
    gen_mem(add_series("container_memory_working_set_bytes", "shop", "web-5d8f-a", ""), 0, 9e9);
    gen_cpu(add_series("container_cpu_usage_seconds_total", "other", "web-5d8f-a", "app"), 0, 50);
    gen_mem(add_series("container_memory_working_set_bytes", "other", "web-5d8f-a", "app"), 0, 9e9);
    /* kube-state-metrics: web-b's app was OOM-killed at scrape 2000. */
    series *oom =
        add_series("kube_pod_container_status_last_terminated_reason", "shop", "web-5d8f-b", "app");
    for (int k = 0; k < NSCRAPES; k++) {
        oom->t[oom->n] = base_t + 13 + (int64_t)SCRAPE_S * k;
        oom->v[oom->n++] = k >= 2000 ? 1 : 0;
    }
    gen_roll();

    opbuf_init(&om, (size_t)64 << 20);
    for (int i = 0; i < nall; i++) {
        series *s = &all[i];
        for (int k = 0; s->owner_kind && k < s->n; k++)
            opbuf_printf(&om,
                         "%s{namespace=\"%s\",%s=\"%s\",owner_kind=\"%s\",owner_name=\"%s\","
                         "owner_is_controller=\"true\"} 1 %" PRId64 "\n",
                         s->metric, s->ns,
                         strcmp(s->metric, "kube_pod_owner") ? "replicaset" : "pod", s->pod,
                         s->owner_kind, s->owner_name, s->t[k]);
        for (int k = 0; !s->owner_kind && k < s->n; k++) {
            opbuf_printf(&om,
                         "%s{namespace=\"%s\",pod=\"%s\",container=\"%s\"%s} %.17g %" PRId64 "\n",
                         s->metric, s->ns, s->pod, s->container,
                         strncmp(s->metric, "kube_", 5) == 0 ? ",reason=\"OOMKilled\"" : "",
                         s->v[k], s->t[k]);
        }
    }
    opbuf_puts(&om, "# EOF\n");
}

static series *find(const char *metric, const char *ns, const char *pod, const char *container)
{
    for (int i = 0; i < nall; i++)
        if (!strcmp(all[i].metric, metric) && !strcmp(all[i].ns, ns) && !strcmp(all[i].pod, pod) &&
            !strcmp(all[i].container, container))
            return &all[i];
    return NULL;
}

/* ---- the expected values, computed the way Prometheus 2.42 does ------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(double q, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double rank = q * (n - 1);
    double lo = floor(rank);
    double hi = lo + 1 < n - 1 ? lo + 1 : n - 1;
    double w = rank - lo;
    return v[(int)lo] * (1 - w) + v[(int)hi] * w;
}

/* rate(s[RATE_S]) at time t: promql/functions.go extrapolatedRate, counters. */
static int rate_at(const series *s, int64_t t, double *out)
{
    int first = -1, last = -1;
    for (int k = 0; k < s->n; k++) {
        if (s->t[k] >= t - RATE_S && s->t[k] <= t) {
            if (first < 0)
                first = k;
            last = k;
        }
    }
    if (first < 0 || last - first + 1 < 2)
        return 0;
    double result = s->v[last] - s->v[first];
    for (int k = first + 1; k <= last; k++)
        if (s->v[k] < s->v[k - 1])
            result += s->v[k - 1];
    double to_start = (double)(s->t[first] - (t - RATE_S));
    double to_end = (double)(t - s->t[last]);
    double sampled = (double)(s->t[last] - s->t[first]);
    double avg = sampled / (last - first);
    if (result > 0 && s->v[first] >= 0) {
        double to_zero = sampled * (s->v[first] / result);
        if (to_zero < to_start)
            to_start = to_zero;
    }
    double thr = avg * 1.1;
    double interval = sampled;
    interval += to_start < thr ? to_start : avg / 2;
    interval += to_end < thr ? to_end : avg / 2;
    *out = result * (interval / sampled) / RATE_S;
    return 1;
}

typedef struct expect {
    double cpu_q, mem_q, mem_max, first;
    uint64_t cpu_n, mem_n;
} expect;

static void expect_pod(const series *cpu, const series *mem, double q, expect *e)
{
    double *pts = calloc(WINDOW_S / STEP_S + 2, sizeof *pts);
    int n = 0;
    int64_t t0 = ((eval_t - WINDOW_S) / STEP_S + 1) * STEP_S; /* eval_t-W is not a multiple */
    for (int64_t t = t0; t <= eval_t; t += STEP_S)
        if (rate_at(cpu, t, &pts[n]))
            n++;
    e->cpu_n = (uint64_t)n;
    e->cpu_q = n ? quantile(q, pts, n) : 0;
    free(pts);
    double *mv = calloc(NSCRAPES, sizeof *mv);
    n = 0;
    e->mem_max = 0;
    for (int k = 0; k < mem->n; k++) {
        if (mem->t[k] >= eval_t - WINDOW_S && mem->t[k] <= eval_t) {
            mv[n++] = mem->v[k];
            if (mem->v[k] > e->mem_max)
                e->mem_max = mem->v[k];
        }
    }
    e->mem_n = (uint64_t)n;
    e->mem_q = n ? quantile(q, mv, n) : 0;
    free(mv);
    /* min_over_time(timestamp(mem)[W:STEP]): the first step point sees the
     * latest sample within the 5 min lookback. */
    e->first = 0;
    for (int64_t t = t0; t <= eval_t && e->first == 0; t += STEP_S)
        for (int k = mem->n - 1; k >= 0; k--)
            if (mem->t[k] <= t && mem->t[k] > t - 300) {
                e->first = (double)mem->t[k];
                break;
            }
}

static void expect_workload(const pod_def *pods, size_t npods, const char *container, double q,
                            expect *w)
{
    memset(w, 0, sizeof *w);
    for (size_t p = 0; p < npods; p++) {
        expect e;
        expect_pod(find("container_cpu_usage_seconds_total", pods[p].ns, pods[p].pod, container),
                   find("container_memory_working_set_bytes", pods[p].ns, pods[p].pod, container),
                   q, &e);
        w->cpu_q = fmax(w->cpu_q, e.cpu_q);
        w->mem_q = fmax(w->mem_q, e.mem_q);
        w->mem_max = fmax(w->mem_max, e.mem_max);
        w->cpu_n += e.cpu_n;
        w->mem_n += e.mem_n;
        if (e.first > 0 && (w->first == 0 || e.first < w->first))
            w->first = e.first;
    }
}

/* ---- running the provider on a loop ------------------------------------------------------- */

typedef struct got {
    int done;
    int error;
    char msg[OPERR_MAX];
    unsigned queries;
    int64_t eval;
    size_t nw;
    char kind[4][32], name[4][64];
    size_t nc[4];
    mprov_container_stats c[4][4];
} got;

static void on_stats(const mprov_result *r, void *ud)
{
    got *g = ud;
    g->done++;
    g->error = r->error;
    snprintf(g->msg, sizeof g->msg, "%s", r->error_msg);
    g->queries = r->queries;
    g->eval = r->eval_time_s;
    g->nw = r->nworkloads;
    for (size_t i = 0; i < r->nworkloads && i < 4; i++) {
        snprintf(g->kind[i], sizeof g->kind[i], "%s", r->workloads[i].kind);
        snprintf(g->name[i], sizeof g->name[i], "%s", r->workloads[i].name);
        g->nc[i] = r->workloads[i].ncontainers;
        for (size_t j = 0; j < r->workloads[i].ncontainers && j < 4; j++)
            g->c[i][j] = r->workloads[i].containers[j];
    }
}
static void run_until(uv_loop_t *l, const int *done)
{
    tloop_until_flag(l, done, 20000);
}

static void on_http_closed(void *ud)
{
    *(int *)ud = 1;
}

static const char *const web_pod_names[] = {"web-5d8f-a", "web-5d8f-b", "web-5d8f-c"};
static const char *const api_pod_names[] = {"api-77c-x"};

/* Ask `url` for the stats of rq on `loop` (other handles may live on it:
 * everything this opened is closed again); fills g. */
static void run_request(uv_loop_t *loop, const char *url, const mprom_opts *extra,
                        const mprov_request *rq, got *g)
{
    ophttp_client *http = NULL;
    ASSERT_EQ_INT(ophttp_client_new(&http, loop, NULL), 0);
    mprom_opts o = *extra;
    o.url = url;
    mprov *p = NULL;
    operr err;
    ASSERT_EQ_INT(mprom_new(&p, loop, http, &o, &err), 0);
    ASSERT_STR_EQ(mprov_name(p), "prometheus");
    memset(g, 0, sizeof *g);
    ASSERT_EQ_INT(mprov_request_stats(p, rq, on_stats, g), 0);
    ASSERT_EQ_INT(g->done, 0); /* never called back synchronously */
    run_until(loop, &g->done);
    mprov_close(p);
    int closed = 0;
    ophttp_client_close(http, on_http_closed, &closed);
    run_until(loop, &closed);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(g->done, 1);
}

/* web and api in "shop". */
static void run_provider_on(uv_loop_t *loop, const char *url, const mprom_opts *extra, got *g)
{
    mprov_workload w[2] = {
        {"Deployment", "web", web_pod_names, 3},
        {"Deployment", "api", api_pod_names, 1},
    };
    mprov_request rq = {.ns = "shop",
                        .workloads = w,
                        .nworkloads = 2,
                        .percentile = 0.95,
                        .window_s = WINDOW_S,
                        .eval_time_s = eval_t};
    run_request(loop, url, extra, &rq, g);
}

static void run_provider(const char *url, const mprom_opts *extra, got *g)
{
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    run_provider_on(&loop, url, extra, g);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static const mprov_container_stats *container_of(const got *g, size_t w, const char *name)
{
    for (size_t j = 0; j < g->nc[w]; j++)
        if (strcmp(g->c[w][j].container, name) == 0)
            return &g->c[w][j];
    return NULL;
}

static void need_prometheus(void)
{
    if (!promsrv_available())
        test_skip("%s or %s is not installed (make test installs the Debian package)",
                  PROMSRV_PROMETHEUS, PROMSRV_PROMTOOL);
    if (prom_err[0])
        test_fail(__FILE__, __LINE__, "prometheus did not start: %s", prom_err);
}

static void check_against_expected(const got *g)
{
    ASSERT_EQ_INT(g->error, 0);
    ASSERT_EQ_INT(g->eval, eval_t);
    ASSERT_EQ_INT(g->nw, 2);
    ASSERT_STR_EQ(g->kind[0], "Deployment");
    ASSERT_STR_EQ(g->name[0], "web");
    ASSERT_STR_EQ(g->name[1], "api");
    ASSERT_EQ_INT(g->nc[0], 2); /* app and sidecar; never "POD" or "" */
    ASSERT_EQ_INT(g->nc[1], 1);
    for (size_t c = 0; c < 2; c++) {
        expect e;
        expect_workload(web_pods, 3, containers[c], 0.95, &e);
        ASSERT(e.cpu_q > 0.01 && e.mem_q > 1e6 && e.cpu_n > 1000); /* the data is there */
        const mprov_container_stats *s = container_of(g, 0, containers[c]);
        ASSERT_NOT_NULL(s);
        ASSERT_NEAR(s->cpu_cores, e.cpu_q, e.cpu_q * 1e-9);
        ASSERT_NEAR(s->mem_bytes, e.mem_q, e.mem_q * 1e-9);
        ASSERT_EQ_INT((long long)s->mem_peak_bytes, (long long)e.mem_max);
        ASSERT_EQ_INT(s->cpu_samples, e.cpu_n);
        ASSERT_EQ_INT(s->mem_samples, e.mem_n);
        ASSERT_NEAR(s->history_s, (double)eval_t - e.first, 1e-3);
        if (c == 0) {
            /* web-b's app: OOMKilled first seen at scrape 2000, within one step. */
            double kill = (double)(base_t + 13 + SCRAPE_S * 2000);
            ASSERT_EQ_INT(s->oom_count, 1);
            ASSERT_CMP_INT(s->oom_last_s, >=, (long long)kill);
            ASSERT_CMP_INT(s->oom_last_s, <=, (long long)kill + STEP_S);
        } else {
            ASSERT_EQ_INT(s->oom_count, 0);
            ASSERT_EQ_INT(s->oom_last_s, 0);
        }
    }
    /* Sanity of the data itself: pods a and b saw 2880 scrapes in the window;
     * c started at scrape 1000; the POD and other-namespace series (9e9)
     * never leak in. */
    const mprov_container_stats *app = container_of(g, 0, "app");
    ASSERT_EQ_INT(app->mem_samples, 2880 + 2880 + (2880 - 999));
    ASSERT_CMP_INT((long long)app->mem_peak_bytes, <, (long long)1e9);
    ASSERT_CMP_INT(app->cpu_samples, >, 2 * 1430);
    expect ea;
    static const pod_def api_pod[] = {{"shop", "api-77c-x", 0, 0.05, 50e6, 0}};
    expect_workload(api_pod, 1, "server", 0.95, &ea);
    const mprov_container_stats *api = container_of(g, 1, "server");
    ASSERT_NOT_NULL(api);
    ASSERT_NEAR(api->cpu_cores, ea.cpu_q, ea.cpu_q * 1e-9);
    ASSERT_EQ_INT((long long)api->mem_peak_bytes, (long long)ea.mem_max);
    ASSERT_EQ_INT(api->oom_count, 0);
}

static void test_real_prometheus_percentiles_match_independent_computation(void)
{
    need_prometheus();
    got g;
    mprom_opts o = {.timeout_ms = 15000};
    run_provider(prom.url, &o, &g);
    if (g.error)
        test_fail(__FILE__, __LINE__, "provider error: %s", g.msg);
    check_against_expected(&g);
    ASSERT_EQ_INT(g.queries, 2); /* the owners, then every statistic in one query */
    /* The max over pods is an upper bound of the union percentile (promql.h). */
    const mprov_container_stats *app = container_of(&g, 0, "app");
    ASSERT_CMP_INT((long long)(app->mem_bytes * 1000), <=, (long long)(app->mem_peak_bytes * 1000));
}

static void test_real_prometheus_matcher_and_namespace_wide_agree(void)
{
    need_prometheus();
    got g;
    /* 2 patterns and 4 current pods by name: past 2 alternatives the stats
     * query is namespace-wide; past 1 workload the owners query too. */
    mprom_opts o = {.timeout_ms = 15000, .batch_pods = 2};
    run_provider(prom.url, &o, &g);
    if (g.error)
        test_fail(__FILE__, __LINE__, "provider error: %s", g.msg);
    ASSERT_EQ_INT(g.queries, 2);
    check_against_expected(&g);
    o.batch_pods = 1;
    run_provider(prom.url, &o, &g);
    if (g.error)
        test_fail(__FILE__, __LINE__, "provider error: %s", g.msg);
    ASSERT_EQ_INT(g.queries, 2);
    check_against_expected(&g);
}

/* ---- the window's pods, not the current ones --------------------------------------------- */

static const char *const roll_cur_web[] = {"web-5c6b9f8d47-bcdfg"};
static const char *const roll_cur_api[] = {"web-api-6f7d8c9b5d-q4v9s"};
static const char *const roll_cur_db[] = {"db-0"};
static const char *const roll_cur_agent[] = {"agent-x2k4p"};

/* Ask for web, web-api, db and agent in `ns` with their CURRENT pods only. */
static void run_roll(const char *ns, size_t batch, got *g)
{
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    mprom_opts o = {.timeout_ms = 15000, .batch_pods = batch};
    mprov_workload w[4] = {
        {"Deployment", "web", roll_cur_web, 1},
        {"Deployment", "web-api", roll_cur_api, 1},
        {"StatefulSet", "db", roll_cur_db, 1},
        {"DaemonSet", "agent", roll_cur_agent, 1},
    };
    mprov_request rq = {.ns = ns,
                        .workloads = w,
                        .nworkloads = 4,
                        .percentile = 0.95,
                        .window_s = WINDOW_S,
                        .eval_time_s = eval_t};
    run_request(&loop, prom.url, &o, &rq, g);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    if (g->error)
        test_fail(__FILE__, __LINE__, "provider error: %s", g->msg);
}

/* The provider's numbers for workload w are exactly those of `pods`. */
static void check_window(const got *g, size_t w, const pod_def *pods, size_t n, const char *how)
{
    expect e;
    expect_workload(pods, n, "app", 0.95, &e);
    ASSERT_EQ_INT(g->nc[w], 1);
    const mprov_container_stats *s = &g->c[w][0];
    ASSERT_STR_EQ(s->container, "app");
    ASSERT_NEAR(s->cpu_cores, e.cpu_q, e.cpu_q * 1e-9);
    ASSERT_NEAR(s->mem_bytes, e.mem_q, e.mem_q * 1e-9);
    ASSERT_EQ_INT((long long)s->mem_peak_bytes, (long long)e.mem_max);
    ASSERT_EQ_INT(s->cpu_samples, e.cpu_n);
    ASSERT_EQ_INT(s->mem_samples, e.mem_n);
    ASSERT_NEAR(s->history_s, (double)eval_t - e.first, 1e-3);
    ASSERT_EQ_INT(s->pods, n);
    ASSERT_STR_EQ(s->history, how);
}

/* Without kube-state-metrics, by the generated names: web gets its earlier
 * ReplicaSet's pods (gone an hour ago), never web-api's nor the strangers';
 * db its scaled-away db-1; agent its replaced pod. Two queries. */
static void test_window_by_generated_pod_names(void)
{
    need_prometheus();
    got g;
    run_roll("roll", 0, &g);
    ASSERT_EQ_INT(g.queries, 2);
    ASSERT_EQ_INT(g.nw, 4);
    check_window(&g, 0, roll_web[0], 3, "pod-names");
    check_window(&g, 1, roll_api[0], 1, "pod-names");
    check_window(&g, 2, roll_db[0], 2, "pod-names");
    check_window(&g, 3, roll_agent[0], 2, "pod-names");
    /* What the current pods alone would say: the idle new pod, a 50m floor. */
    expect now;
    expect_workload(&roll_web[0][2], 1, "app", 0.95, &now);
    ASSERT_CMP_INT((long long)(now.cpu_q * 1000), <, 100);
    ASSERT_CMP_INT((long long)(g.c[0][0].cpu_cores * 1000), >, 500);
    ASSERT_CMP_INT((long long)g.c[0][0].mem_peak_bytes, <, (long long)1e9); /* no stranger */
    /* A tiny matcher budget: one namespace-wide query, the same numbers. */
    got wide;
    run_roll("roll", 1, &wide);
    ASSERT_EQ_INT(wide.queries, 2);
    check_window(&wide, 0, roll_web[0], 3, "pod-names");
    check_window(&wide, 1, roll_api[0], 1, "pod-names");
}

/* With kube-state-metrics' owner series: the same, plus a pod no pattern
 * knows (its owner says web's ReplicaSet), minus one that has web's pattern
 * but another Deployment's ReplicaSet as owner. */
static void test_window_by_kube_state_metrics_owners(void)
{
    need_prometheus();
    got g;
    run_roll("roll-ksm", 0, &g);
    ASSERT_EQ_INT(g.queries, 2);
    check_window(&g, 0, roll_web[1], 4, "kube-state-metrics");
    check_window(&g, 1, roll_api[1], 1, "kube-state-metrics");
    check_window(&g, 2, roll_db[1], 2, "kube-state-metrics");
    check_window(&g, 3, roll_agent[1], 2, "kube-state-metrics");
    got wide;
    run_roll("roll-ksm", 1, &wide);
    check_window(&wide, 0, roll_web[1], 4, "kube-state-metrics");
    check_window(&wide, 3, roll_agent[1], 2, "kube-state-metrics");
}

/* ---- a backend behind auth (Mimir/Cortex tenants, gateways) ------------------------------- */

static char *temp_file(const char *content)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/optipod-cred-XXXXXX");
    int fd = mkstemp(path);
    ASSERT_CMP_INT(fd, >=, 0);
    ASSERT_EQ_INT(write(fd, content, strlen(content)), (long long)strlen(content));
    close(fd);
    return path;
}

/* The real Prometheus behind a proxy demanding a bearer token and a tenant
 * header: without the token 401, with a wrong tenant 403 (neither retried:
 * credentials do not heal), each a clear error naming the status; with both
 * the statistics are the same as straight from Prometheus. */
static void test_auth_proxy_bearer_token_and_tenant_header(void)
{
    need_prometheus();
    static authproxy px;
    authproxy_rules r = {.bearer = "s3cret-token", .header = "X-Scope-OrgID", .value = "team-a"};
    ASSERT_EQ_INT(authproxy_start(&px, prom.port, &r), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", px.port);
    const char *team_a[] = {"X-Scope-OrgID: team-a"}, *team_b[] = {"X-Scope-OrgID:team-b"};
    char tok[64];
    snprintf(tok, sizeof tok, "%s", temp_file("s3cret-token\n"));
    got g1, g2, g3;
    mprom_opts o = {.timeout_ms = 15000, .max_retries = 2, .backoff_initial_ms = 5};
    o.headers = team_a;
    o.nheaders = 1;
    run_provider(url, &o, &g1); /* no token */
    o.bearer_token_file = tok;
    o.headers = team_b;
    run_provider(url, &o, &g2); /* the token, another tenant */
    o.headers = team_a;
    run_provider(url, &o, &g3); /* both right */
    authproxy_stop(&px);
    unlink(tok);
    ASSERT_EQ_INT(g1.error, -EACCES);
    ASSERT_EQ_INT(g1.queries, 1);
    ASSERT_EQ_INT(g1.nw, 0);
    ASSERT_STR_CONTAINS(g1.msg, "HTTP 401 Unauthorized");
    ASSERT_STR_CONTAINS(g1.msg, "authproxy: no credentials");
    ASSERT_EQ_INT(g2.error, -EACCES);
    ASSERT_EQ_INT(g2.queries, 1);
    ASSERT_STR_CONTAINS(g2.msg, "HTTP 403 Forbidden");
    ASSERT_STR_CONTAINS(g2.msg, "unknown tenant");
    if (g3.error)
        test_fail(__FILE__, __LINE__, "through the proxy: %s", g3.msg);
    check_against_expected(&g3);
    ASSERT_EQ_INT(px.refused401, 1);
    ASSERT_EQ_INT(px.refused403, 1);
    ASSERT_EQ_INT(px.forwarded, (long long)g3.queries);
    ASSERT_STR_EQ(px.last_auth, "Bearer s3cret-token");
}

/* Basic auth from a user:password file (a password may hold colons), re-read
 * per query: a wrong one is a 401 naming the status. */
static void test_auth_proxy_basic_auth_file(void)
{
    need_prometheus();
    static authproxy px;
    authproxy_rules r = {.basic = "optipod:pa:ss word"};
    ASSERT_EQ_INT(authproxy_start(&px, prom.port, &r), 0);
    char url[64], cred[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", px.port);
    snprintf(cred, sizeof cred, "%s", temp_file("optipod:pa:ss word\n"));
    got g, bad;
    mprom_opts o = {.timeout_ms = 15000, .basic_auth_file = cred};
    run_provider(url, &o, &g);
    FILE *f = fopen(cred, "w");
    ASSERT_NOT_NULL(f);
    fputs("optipod:guess", f);
    fclose(f);
    run_provider(url, &o, &bad);
    unlink(cred);
    authproxy_stop(&px);
    if (g.error)
        test_fail(__FILE__, __LINE__, "basic auth: %s", g.msg);
    check_against_expected(&g);
    ASSERT_STR_EQ(px.last_auth, "Basic b3B0aXBvZDpndWVzcw=="); /* optipod:guess, re-read */
    ASSERT_EQ_INT(bad.error, -EACCES);
    ASSERT_STR_CONTAINS(bad.msg, "HTTP 401");
}

/* Header lines are checked before anything is sent; the flags name themselves. */
static void test_header_and_flag_validation(void)
{
    operr err;
    ASSERT_EQ_INT(mprom_header_check("X-Scope-OrgID: team-a", &err), 0);
    ASSERT_EQ_INT(mprom_header_check("X-Scope-OrgID:team-a", &err), 0);
    ASSERT_EQ_INT(mprom_header_check("X-Scope-OrgID team-a", &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "no colon");
    ASSERT_EQ_INT(mprom_header_check(": team-a", &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "no header name");
    ASSERT_EQ_INT(mprom_header_check("X Scope: a", &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "character 2");
    ASSERT_EQ_INT(mprom_header_check("X-Scope-OrgID:  ", &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "value is empty");
    ASSERT_EQ_INT(mprom_header_check("X-A: b\r\nX-Evil: 1", &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "control character");
    ASSERT_EQ_INT(mprom_header_check("content-type: text/plain", &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "Content-Type is set by optipod");

    mpromflags pf;
    mpromflags_init(&pf);
    mprom_opts o = {0};
    ASSERT_EQ_INT(mpromflags_opts(&pf, &o, &err), 1); /* no URL: no Prometheus */
    char *argv[] = {"x",
                    "--prometheus-url=https://mimir.example:8080/prometheus",
                    "--prometheus-token-file",
                    "/var/run/tok",
                    "--prometheus-header",
                    "X-Scope-OrgID: team-a",
                    "--prometheus-header=X-Extra: 1",
                    "--prometheus-ca-file=/ca.pem"};
    opflag flags[] = {MPROMFLAGS_OPFLAGS(&pf)};
    int rest = 0;
    ASSERT_EQ_INT(opflag_parse(flags, (int)(sizeof flags / sizeof *flags), 8, argv, &rest, &err),
                  0);
    ASSERT_EQ_INT(mpromflags_opts(&pf, &o, &err), 0);
    ASSERT_STR_EQ(o.url, "https://mimir.example:8080/prometheus");
    ASSERT_STR_EQ(o.bearer_token_file, "/var/run/tok"); /* the old spelling still works */
    ASSERT_STR_EQ(o.ca_file, "/ca.pem");
    ASSERT_EQ_INT(o.nheaders, 2);
    ASSERT_STR_EQ(o.headers[1], "X-Extra: 1");
    pf.hdr_v[1] = "X-Scope-OrgID team-b";
    ASSERT_EQ_INT(mpromflags_opts(&pf, &o, &err), -EINVAL);
    ASSERT_STR_EQ(err.msg, "flag --prometheus-header: \"X-Scope-OrgID team-b\": want 'Name: "
                           "value' (no colon)");
    pf.hdr_v[1] = "Authorization: Bearer x";
    ASSERT_EQ_INT(mpromflags_opts(&pf, &o, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "Authorization comes from the token");
    pf.headers.n = 1;
    pf.basic_auth_file = "/b";
    ASSERT_EQ_INT(mpromflags_opts(&pf, &o, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "give one of them");
    pf.basic_auth_file = NULL;
    pf.url = "mimir:8080";
    ASSERT_EQ_INT(mpromflags_opts(&pf, &o, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "flag --prometheus-url: \"mimir:8080\"");
    pf.url = NULL;
    ASSERT_EQ_INT(mpromflags_opts(&pf, &o, &err), -EINVAL);
    ASSERT_STR_EQ(err.msg, "flag --prometheus-bearer-token-file: needs --prometheus-url");
    /* mprom_new checks the same, for callers without flags. */
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    mprov *p = NULL;
    const char *bad[] = {"Host: evil"};
    mprom_opts mo = {.url = "http://127.0.0.1:1", .headers = bad, .nheaders = 1};
    ASSERT_EQ_INT(mprom_new(&p, &loop, NULL, &mo, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "header \"Host: evil\"");
    mprom_opts mo2 = {.url = "http://127.0.0.1:1", .bearer_token = "t", .basic_auth_file = "/b"};
    ASSERT_EQ_INT(mprom_new(&p, &loop, NULL, &mo2, &err), -EINVAL);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* ---- a tiny misbehaving HTTP server ------------------------------------------------------- */

typedef struct canned {
    int status;
    const char *body;
    unsigned delay_ms;
} canned;

typedef struct fconn fconn;

typedef struct fsrv {
    uv_tcp_t tcp;
    int port;
    const canned *script;
    size_t nscript, served;
    char auth[128]; /* the last request's Authorization header */
    char ctype[128];
    fconn *conns;
} fsrv;

struct fconn {
    fconn *next;
    uv_tcp_t tcp;
    fsrv *srv;
    opbuf in;
    uv_timer_t delay;
    int responded, closing, pending;
    const canned *reply;
    char *out;
    uv_write_t wr;
};

static void fconn_half_closed(uv_handle_t *h)
{
    fconn *c = h->data;
    if (--c->pending > 0)
        return;
    for (fconn **pp = &c->srv->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    opbuf_release(&c->in);
    free(c->out);
    free(c);
}

static void fconn_close(fconn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->pending = 2;
    uv_close((uv_handle_t *)&c->tcp, fconn_half_closed);
    uv_close((uv_handle_t *)&c->delay, fconn_half_closed);
}

static void wrote(uv_write_t *w, int status)
{
    fconn_close(w->data);
}

static void send_reply(uv_timer_t *t)
{
    fconn *c = t->data;
    const canned *r = c->reply;
    if (c->closing)
        return;
    opbuf b;
    opbuf_init(&b, 1 << 20);
    opbuf_printf(&b,
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 r->status, strlen(r->body), r->body);
    c->out = opbuf_detach(&b, NULL);
    uv_buf_t buf = uv_buf_init(c->out, (unsigned)strlen(c->out));
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, wrote) != 0)
        fconn_close(c);
}

static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    static char slab[65536];
    *buf = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    fconn *c = s->data;
    if (n < 0) {
        if (!c->responded)
            fconn_close(c);
        return;
    }
    if (c->closing)
        return;
    opbuf_append(&c->in, buf->base, (size_t)n);
    const char *hdr_end = strstr(opbuf_str(&c->in), "\r\n\r\n");
    if (!hdr_end || c->responded)
        return;
    const char *cl = strcasestr(opbuf_str(&c->in), "content-length:");
    size_t need = (size_t)(hdr_end + 4 - c->in.data) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
    if (c->in.len < need)
        return;
    fsrv *srv = c->srv;
    c->responded = 1;
    const char *auth = strcasestr(opbuf_str(&c->in), "\r\nauthorization: ");
    srv->auth[0] = '\0';
    if (auth)
        sscanf(auth + 17, "%127[^\r]", srv->auth);
    const char *ct = strcasestr(opbuf_str(&c->in), "\r\ncontent-type: ");
    srv->ctype[0] = '\0';
    if (ct)
        sscanf(ct + 16, "%127[^\r]", srv->ctype);
    size_t i = srv->served < srv->nscript ? srv->served : srv->nscript - 1;
    srv->served++;
    c->reply = &srv->script[i];
    uv_timer_start(&c->delay, send_reply, c->reply->delay_ms, 0);
}

static void on_conn(uv_stream_t *server, int status)
{
    fsrv *srv = server->data;
    fconn *c = calloc(1, sizeof *c);
    c->srv = srv;
    opbuf_init(&c->in, 1 << 20);
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->delay);
    c->tcp.data = c;
    c->delay.data = c;
    c->next = srv->conns;
    srv->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0)
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    else
        fconn_close(c);
}

/* The fault tests need the server and the client on one loop; run it on a thread. */
typedef struct fthread {
    uv_loop_t loop;
    fsrv srv;
    uv_async_t stop;
    uv_thread_t th;
} fthread;

static void stop_cb(uv_async_t *a)
{
    fthread *f = a->data;
    uv_close((uv_handle_t *)&f->stop, NULL);
    uv_close((uv_handle_t *)&f->srv.tcp, NULL);
    /* Connections still open (a slow reply the client gave up on). */
    for (fconn *c = f->srv.conns; c; c = c->next)
        fconn_close(c);
}

static void fthread_main(void *arg)
{
    fthread *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void fthread_start(fthread *f, const canned *script, size_t n)
{
    memset(f, 0, sizeof *f);
    ASSERT_EQ_INT(uv_loop_init(&f->loop), 0);
    f->srv.script = script;
    f->srv.nscript = n;
    uv_tcp_init(&f->loop, &f->srv.tcp);
    f->srv.tcp.data = &f->srv;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    ASSERT_EQ_INT(uv_tcp_bind(&f->srv.tcp, (const struct sockaddr *)&a, 0), 0);
    ASSERT_EQ_INT(uv_listen((uv_stream_t *)&f->srv.tcp, 16, on_conn), 0);
    int alen = sizeof a;
    uv_tcp_getsockname(&f->srv.tcp, (struct sockaddr *)&a, &alen);
    f->srv.port = ntohs(a.sin_port);
    uv_async_init(&f->loop, &f->stop, stop_cb);
    f->stop.data = f;
    ASSERT_EQ_INT(uv_thread_create(&f->th, fthread_main, f), 0);
}

static void fthread_stop(fthread *f)
{
    uv_async_send(&f->stop);
    uv_thread_join(&f->th);
    ASSERT_EQ_INT(uv_loop_close(&f->loop), 0);
}

static fthread f;

static void run_fault(const canned *script, size_t n, const mprom_opts *o, got *g, size_t *served)
{
    fthread_start(&f, script, n);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.srv.port);
    run_provider(url, o, g);
    fthread_stop(&f);
    if (served)
        *served = f.srv.served;
}

static const char valid_body_fmt[] =
    "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
    "{\"metric\":{\"pod\":\"web-5d8f-a\",\"container\":\"app\",\"optipod_stat\":\"cpu_q\"},"
    "\"value\":[1700000000,\"%s\"]},"
    "{\"metric\":{\"pod\":\"web-5d8f-b\",\"container\":\"app\",\"optipod_stat\":\"cpu_q\"},"
    "\"value\":[1700000000,\"0.5\"]},"
    "{\"metric\":{\"pod\":\"web-5d8f-a\",\"container\":\"app\",\"optipod_stat\":\"cpu_n\"},"
    "\"value\":[1700000000,\"100\"]}]}}";

static void test_down_is_a_clear_error_after_retries(void)
{
    got g;
    int port = promsrv_free_port();
    ASSERT_CMP_INT(port, >, 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    mprom_opts o = {.timeout_ms = 2000, .max_retries = 2, .backoff_initial_ms = 5};
    run_provider(url, &o, &g);
    ASSERT_EQ_INT(g.error, -ECONNREFUSED);
    ASSERT_EQ_INT(g.queries, 3);
    ASSERT_EQ_INT(g.nw, 0); /* no partial statistics */
    char want[96];
    snprintf(want, sizeof want, "prometheus 'http://127.0.0.1:%d': namespace 'shop'", port);
    ASSERT_STR_CONTAINS(g.msg, want);
    ASSERT_STR_CONTAINS(g.msg, "(3 attempts)");
}

static void test_slow_server_times_out(void)
{
    static const canned script[] = {{200, "{}", 3000}};
    got g;
    mprom_opts o = {.timeout_ms = 300};
    run_fault(script, 1, &o, &g, NULL);
    ASSERT_EQ_INT(g.error, -ETIMEDOUT);
    ASSERT_EQ_INT(g.nw, 0);
    ASSERT_STR_CONTAINS(g.msg, "namespace 'shop'");
}

static void test_http_500_is_retried_then_fails(void)
{
    static const canned script[] = {{500, "internal meltdown", 0}};
    got g;
    size_t served = 0;
    mprom_opts o = {.timeout_ms = 2000, .max_retries = 1, .backoff_initial_ms = 5};
    run_fault(script, 1, &o, &g, &served);
    ASSERT_EQ_INT(g.error, -EREMOTEIO);
    ASSERT_EQ_INT(served, 2);
    ASSERT_EQ_INT(g.queries, 2);
    ASSERT_STR_CONTAINS(g.msg, "HTTP 500: internal meltdown");
}

static void test_503_then_success_recovers(void)
{
    static char ok[2048];
    snprintf(ok, sizeof ok, valid_body_fmt, "0.25");
    static canned script[2] = {{503,
                                "{\"status\":\"error\",\"errorType\":\"unavailable\","
                                "\"error\":\"too busy\"}",
                                0},
                               {200, NULL, 0}};
    script[1].body = ok;
    got g;
    mprom_opts o = {.timeout_ms = 2000, .max_retries = 3, .backoff_initial_ms = 5};
    run_fault(script, 2, &o, &g, NULL);
    ASSERT_EQ_INT(g.error, 0);
    ASSERT_EQ_INT(g.queries, 3); /* owners: 503, then 200; stats: 200 */
    ASSERT_EQ_INT(g.nc[0], 1);
    ASSERT_NEAR(g.c[0][0].cpu_cores, 0.5, 1e-12); /* max over pods a (0.25) and b (0.5) */
    ASSERT_EQ_INT(g.c[0][0].cpu_samples, 100);
    ASSERT_EQ_INT(g.nc[1], 0); /* api: no data is not an error, just no containers */
}

static void test_bearer_token_and_token_file_are_sent(void)
{
    static char ok[2048];
    snprintf(ok, sizeof ok, valid_body_fmt, "0.25");
    static canned script[1] = {{200, NULL, 0}};
    script[0].body = ok;
    got g;
    mprom_opts o = {.timeout_ms = 2000, .bearer_token = "t0ken"};
    run_fault(script, 1, &o, &g, NULL);
    ASSERT_EQ_INT(g.error, 0);
    ASSERT_STR_EQ(f.srv.auth, "Bearer t0ken");
    ASSERT_STR_EQ(f.srv.ctype, "application/x-www-form-urlencoded");
    /* A token file wins over nothing and is re-read per query (rotation). */
    char path[] = "/tmp/optipod-token-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_CMP_INT(fd, >=, 0);
    ASSERT_EQ_INT(write(fd, "rotated-1\n", 10), 10);
    close(fd);
    mprom_opts o2 = {.timeout_ms = 2000, .bearer_token_file = path};
    run_fault(script, 1, &o2, &g, NULL);
    unlink(path);
    ASSERT_EQ_INT(g.error, 0);
    ASSERT_STR_EQ(f.srv.auth, "Bearer rotated-1");
    /* A missing token file is a clear error, not an unauthenticated query. */
    run_fault(script, 1, &o2, &g, NULL);
    ASSERT_EQ_INT(g.error, -ENOENT);
    ASSERT_STR_CONTAINS(g.msg, "bearer token file");
}

/* With a registry, every attempt is timed and each failure counted by reason: a 503
 * (http), then the retry that worked and the statistics query after that owners query;
 * a body that is not a Prometheus answer (decode); nobody listening (transport). */
static void test_queries_are_timed_and_failures_counted(void)
{
    static char ok[2048];
    snprintf(ok, sizeof ok, valid_body_fmt, "0.25");
    static canned script[2] = {{503, "busy", 0}, {200, NULL, 0}};
    script[1].body = ok;
    static const canned garbage[] = {{200, "<html>proxy says hi</html>", 0}};
    obs_reg *m = obs_reg_new("t", 0);
    got g;
    mprom_opts o = {.timeout_ms = 2000, .max_retries = 3, .backoff_initial_ms = 5, .metrics = m};
    run_fault(script, 2, &o, &g, NULL);
    ASSERT_EQ_INT(g.error, 0);
    run_fault(garbage, 1, &o, &g, NULL);
    ASSERT_EQ_INT(g.error, -EPROTO);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", promsrv_free_port());
    o.max_retries = 0;
    run_provider(url, &o, &g);
    ASSERT_EQ_INT(g.error, -ECONNREFUSED);
    const char *p[] = {"prometheus"}, *http[] = {"prometheus", "http"},
               *dec[] = {"prometheus", "decode"}, *tr[] = {"prometheus", "transport"};
    ASSERT_NEAR(obs_value(obs_find(m, "optipod_usage_query_duration_seconds"), p), 5, 0);
    obs_fam *e = obs_find(m, "optipod_usage_query_errors_total");
    ASSERT_NEAR(obs_value(e, http), 1, 0);
    ASSERT_NEAR(obs_value(e, dec), 1, 0);
    ASSERT_NEAR(obs_value(e, tr), 1, 0);
    obs_reg_free(m);
}

static void test_garbage_body_is_an_error_not_retried(void)
{
    static const canned script[] = {{200, "<html>proxy says hi</html>", 0}};
    got g;
    size_t served = 0;
    mprom_opts o = {.timeout_ms = 2000, .max_retries = 3, .backoff_initial_ms = 5};
    run_fault(script, 1, &o, &g, &served);
    ASSERT_EQ_INT(g.error, -EPROTO);
    ASSERT_EQ_INT(served, 1);
    ASSERT_STR_CONTAINS(g.msg, "not JSON");
}

static void test_status_error_is_reported(void)
{
    static const canned script[] = {
        {422,
         "{\"status\":\"error\",\"errorType\":\"execution\",\"error\":\"query processing would "
         "load too many samples into memory\"}",
         0}};
    got g;
    mprom_opts o = {.timeout_ms = 2000, .max_retries = 3, .backoff_initial_ms = 5};
    run_fault(script, 1, &o, &g, NULL);
    ASSERT_EQ_INT(g.error, -EREMOTEIO);
    ASSERT_EQ_INT(g.queries, 1); /* a 4xx is not retried */
    ASSERT_STR_CONTAINS(g.msg, "HTTP 422");
    ASSERT_STR_CONTAINS(g.msg, "too many samples");
    static const canned script2[] = {
        {200, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error\"}", 0}};
    run_fault(script2, 1, &o, &g, NULL);
    ASSERT_EQ_INT(g.error, -EREMOTEIO);
    ASSERT_STR_CONTAINS(g.msg, "bad_data: parse error");
}

static void test_nan_value_is_an_error_not_a_number(void)
{
    static char body[2048];
    snprintf(body, sizeof body, valid_body_fmt, "NaN");
    static canned script[1] = {{200, NULL, 0}};
    script[0].body = body;
    got g;
    mprom_opts o = {.timeout_ms = 2000};
    run_fault(script, 1, &o, &g, NULL);
    ASSERT_EQ_INT(g.error, -EPROTO);
    ASSERT_EQ_INT(g.nw, 0);
    ASSERT_STR_CONTAINS(g.msg, "cpu_q of pod 'web-5d8f-a' container 'app'");
}

static void test_response_size_cap(void)
{
    static char body[4096];
    snprintf(body, sizeof body, valid_body_fmt, "0.25");
    static canned script[1] = {{200, NULL, 0}};
    script[0].body = body;
    got g;
    mprom_opts o = {.timeout_ms = 2000, .max_body = 64, .max_retries = 2};
    run_fault(script, 1, &o, &g, NULL);
    ASSERT_EQ_INT(g.error, -EFBIG);
    ASSERT_EQ_INT(g.queries, 1);
    ASSERT_STR_CONTAINS(g.msg, "64-byte cap");
}

/* https: the fake API server (TLS from its own CA) answers /api/v1/query. */
static char hook_auth[128];
static int prom_hook(fakeapi *fa_, ophttpd_req *req, void *ud)
{
    if (strcmp(ophttpd_path(req), "/api/v1/query") != 0)
        return 0;
    const char *auth = ophttpd_header(req, "Authorization");
    snprintf(hook_auth, sizeof hook_auth, "%s", auth ? auth : "");
    const char *body = ud;
    ophttpd_respond(req, 200, "application/json", body, strlen(body), NULL);
    return 1;
}

static void test_tls_ca_file_and_insecure(void)
{
    static char ok[2048];
    snprintf(ok, sizeof ok, valid_body_fmt, "0.25");
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    fakeapi *fa = NULL;
    ASSERT_EQ_INT(fakeapi_start(&fa, &loop, NULL), 0);
    fakeapi_set_hook(fa, prom_hook, ok);
    char ca[] = "/tmp/optipod-ca-XXXXXX";
    int fd = mkstemp(ca);
    ASSERT_CMP_INT(fd, >=, 0);
    const char *pem = fakeapi_ca_pem(fa);
    ASSERT_EQ_INT(write(fd, pem, strlen(pem)), (long long)strlen(pem));
    close(fd);
    got g;
    mprom_opts o = {.timeout_ms = 5000,
                    .ca_file = ca,
                    .bearer_token = "tls-tok",
                    .max_retries = 2,
                    .backoff_initial_ms = 5};
    run_provider_on(&loop, fakeapi_url(fa), &o, &g);
    int ok_ca = g.error == 0 && g.nc[0] == 1 && g.queries == 2;
    char msg_ca[OPERR_MAX], auth_ca[128];
    snprintf(msg_ca, sizeof msg_ca, "%s", g.msg);
    snprintf(auth_ca, sizeof auth_ca, "%s", hook_auth);
    /* The system trust store does not know the fake CA: a TLS error, not retried. */
    mprom_opts o2 = {.timeout_ms = 5000, .max_retries = 2, .backoff_initial_ms = 5};
    got g2;
    run_provider_on(&loop, fakeapi_url(fa), &o2, &g2);
    mprom_opts o3 = {.timeout_ms = 5000, .insecure_skip_verify = 1};
    got g3;
    run_provider_on(&loop, fakeapi_url(fa), &o3, &g3);
    int closed = 0;
    fakeapi_stop(fa, on_http_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    unlink(ca);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    if (!ok_ca)
        test_fail(__FILE__, __LINE__, "with ca_file: %s", msg_ca);
    ASSERT_STR_EQ(auth_ca, "Bearer tls-tok");
    ASSERT_NEAR(g.c[0][0].cpu_cores, 0.5, 1e-12);
    ASSERT_EQ_INT(g2.error, -EPROTO);
    ASSERT_EQ_INT(g2.queries, 1);
    ASSERT_STR_CONTAINS(g2.msg, "prometheus 'https://127.0.0.1:");
    ASSERT_EQ_INT(g3.error, 0);
    ASSERT_NEAR(g3.c[0][0].cpu_cores, 0.5, 1e-12);
}

static void test_bad_url_and_request_rejected_without_callback(void)
{
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    ophttp_client *http = NULL;
    ASSERT_EQ_INT(ophttp_client_new(&http, &loop, NULL), 0);
    mprov *p = NULL;
    operr err;
    mprom_opts o = {.url = "ftp://x"};
    ASSERT_EQ_INT(mprom_new(&p, &loop, http, &o, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "prometheus 'ftp://x'");
    o.url = "http://127.0.0.1:1";
    o.bearer_token = "s3cr3t";
    ASSERT_EQ_INT(mprom_new(&p, &loop, http, &o, &err), 0);
    got g = {0};
    mprov_request rq = {.ns = "shop", .percentile = 1.5, .window_s = 60};
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), -EINVAL);
    rq.percentile = 0.9;
    rq.ns = "";
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), -EINVAL);
    /* No pods at all: answered (empty) from the loop, no query issued. */
    rq.ns = "shop";
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), 0);
    ASSERT_EQ_INT(g.done, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(g.done, 1);
    ASSERT_EQ_INT(g.error, 0);
    ASSERT_EQ_INT(g.queries, 0);
    /* Closing with a request in flight: no callback afterwards. */
    const char *const pods[] = {"x"};
    mprov_workload w = {"Deployment", "x", pods, 1};
    rq.workloads = &w;
    rq.nworkloads = 1;
    ASSERT_EQ_INT(mprov_request_stats(p, &rq, on_stats, &g), 0);
    mprov_close(p);
    int closed = 0;
    ophttp_client_close(http, on_http_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(g.done, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    if (promsrv_available()) {
        gen_data();
        operr err;
        if (promsrv_start(&prom, om.data, om.len, &err) != 0)
            snprintf(prom_err, sizeof prom_err, "%s", err.msg);
        opbuf_release(&om);
    }
    TEST_RUN(test_real_prometheus_percentiles_match_independent_computation);
    TEST_RUN(test_real_prometheus_matcher_and_namespace_wide_agree);
    TEST_RUN(test_window_by_generated_pod_names);
    TEST_RUN(test_window_by_kube_state_metrics_owners);
    TEST_RUN(test_auth_proxy_bearer_token_and_tenant_header);
    TEST_RUN(test_auth_proxy_basic_auth_file);
    TEST_RUN(test_header_and_flag_validation);
    TEST_RUN(test_down_is_a_clear_error_after_retries);
    TEST_RUN(test_slow_server_times_out);
    TEST_RUN(test_http_500_is_retried_then_fails);
    TEST_RUN(test_503_then_success_recovers);
    TEST_RUN(test_bearer_token_and_token_file_are_sent);
    TEST_RUN(test_garbage_body_is_an_error_not_retried);
    TEST_RUN(test_queries_are_timed_and_failures_counted);
    TEST_RUN(test_status_error_is_reported);
    TEST_RUN(test_nan_value_is_an_error_not_a_number);
    TEST_RUN(test_response_size_cap);
    TEST_RUN(test_tls_ca_file_and_insecure);
    TEST_RUN(test_bad_url_and_request_rejected_without_callback);
    promsrv_stop(&prom);
    free(all);
    return test_summary();
}
