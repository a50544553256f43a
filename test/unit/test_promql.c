/*
 * promql: query planning and building, response parsing, and the combination
 * of per-pod results into per-workload statistics (all pure).
 */
#include "test.h"

#include <errno.h>
#include <math.h>

#include "metrics/promql.h"
#include "util/buf.h"

static void test_stat_names_round_trip(void)
{
    for (int s = 0; s < PROMQL_NSTATS; s++)
        ASSERT_EQ_INT(promql_stat_parse(promql_stat_name((enum promql_stat)s)), s);
    ASSERT_EQ_INT(promql_stat_parse("cpu"), -1);
    ASSERT_NULL(promql_stat_name(PROMQL_NSTATS));
}

static void test_step_respects_point_limit_and_floor(void)
{
    ASSERT_EQ_INT(promql_step_s(86400, 0), 60);        /* 1 d: the floor wins */
    ASSERT_EQ_INT(promql_step_s(14 * 86400, 0), 110);  /* 1209600 / 11000 = 109.96 → 110 */
    ASSERT_EQ_INT(promql_step_s(30 * 86400, 0), 236);  /* 235.6 → 236 */
    ASSERT_EQ_INT(promql_step_s(86400, 15), 15);       /* a finer floor is allowed ... */
    ASSERT_EQ_INT(promql_step_s(11000 * 7 + 1, 1), 8); /* ... but never past the limit */
    for (uint64_t w = 1; w < 4000000; w = w * 3 + 7)
        ASSERT_CMP_INT(w / promql_step_s(w, 1), <=, PROMQL_MAX_POINTS);
}

static void test_regex_and_string_escaping(void)
{
    opbuf b;
    opbuf_init(&b, 1024);
    ASSERT_EQ_INT(promql_append_regex_literal(&b, "web-1.a"), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "web-1\\.a");
    opbuf_reset(&b);
    ASSERT_EQ_INT(promql_append_regex_literal(&b, "a+b*c?(d)|[e]{f}^$\\"), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "a\\+b\\*c\\?\\(d\\)\\|\\[e\\]\\{f\\}\\^\\$\\\\");
    opbuf_reset(&b);
    /* Regex text goes into a PromQL string: each backslash doubles. */
    ASSERT_EQ_INT(promql_append_string(&b, "web-1\\.a"), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "\"web-1\\\\.a\"");
    opbuf_reset(&b);
    ASSERT_EQ_INT(promql_append_string(&b, "q\"x\ny\x01"), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "\"q\\\"x\\ny\\x01\"");
    opbuf_reset(&b);
    ASSERT_EQ_INT(promql_append_form(&b, "a b&c=d/é~", strlen("a b&c=d/é~")), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "a%20b%26c%3Dd%2F%C3%A9~");
    opbuf_release(&b);
}

static void test_build_one_query_with_every_stat(void)
{
    opbuf b;
    opbuf_init(&b, 1 << 16);
    const char *const pods[] = {"web-1", "web.2"};
    promql_opts o = {.percentile = 0.95, .window_s = 86400};
    ASSERT_EQ_INT(promql_build(&b, "shop", pods, 2, &o), 0);
    const char *q = opbuf_str(&b);
    ASSERT_STR_CONTAINS(q, "label_replace(max by (pod, container) (quantile_over_time(0.95, "
                           "rate(container_cpu_usage_seconds_total{namespace=\"shop\",pod=~\"web-"
                           "1|web\\\\.2\",container!=\"\",container!=\"POD\"}[300s])[86400s:60s]))"
                           ", \"optipod_stat\", \"cpu_q\", \"\", \"\")");
    ASSERT_STR_CONTAINS(q, "sum by (pod, container) (count_over_time(rate(");
    ASSERT_STR_CONTAINS(q, "max by (pod, container) (max_over_time(container_memory_working_set_"
                           "bytes{");
    ASSERT_STR_CONTAINS(q, "quantile_over_time(0.95, container_memory_working_set_bytes{");
    ASSERT_STR_CONTAINS(q, "min_over_time(timestamp(container_memory_working_set_bytes{");
    ASSERT_STR_CONTAINS(q, "kube_pod_container_status_last_terminated_reason{namespace=\"shop\","
                           "pod=~\"web-1|web\\\\.2\",container!=\"\",container!=\"POD\","
                           "reason=\"OOMKilled\"}[86400s]");
    ASSERT_STR_CONTAINS(q, "reason=\"OOMKilled\"} == 1)[86400s:60s]");
    /* One tagged sub-expression per statistic, joined by "or". */
    int ors = 0;
    for (const char *p = q; (p = strstr(p, " or ")); p++)
        ors++;
    ASSERT_EQ_INT(ors, PROMQL_NSTATS - 1);
    for (int s = 0; s < PROMQL_NSTATS; s++) {
        char tag[64];
        snprintf(tag, sizeof tag, "\"optipod_stat\", \"%s\"",
                 promql_stat_name((enum promql_stat)s));
        ASSERT_STR_CONTAINS(q, tag);
    }
    /* A percentile that needs every digit is printed exactly. */
    opbuf_reset(&b);
    o.percentile = 0.1 + 0.2; /* 0.30000000000000004 */
    o.step_s = 30;
    o.rate_s = 120;
    ASSERT_EQ_INT(promql_build(&b, "ns", NULL, 0, &o), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&b), "quantile_over_time(0.30000000000000004, ");
    ASSERT_STR_CONTAINS(opbuf_str(&b), "[120s])[86400s:30s]");
    /* Namespace-wide: no pod matcher. */
    ASSERT_NULL(strstr(opbuf_str(&b), "pod=~"));
    ASSERT_STR_CONTAINS(opbuf_str(&b), "{namespace=\"ns\",container!=\"\"");
    opbuf_release(&b);
}

static void test_build_rejects_bad_options(void)
{
    opbuf b;
    opbuf_init(&b, 1 << 16);
    promql_opts o = {.percentile = 0.5, .window_s = 3600};
    ASSERT_EQ_INT(promql_build(&b, "", NULL, 0, &o), -EINVAL);
    ASSERT_EQ_INT(promql_build(&b, NULL, NULL, 0, &o), -EINVAL);
    o.percentile = 1.0;
    ASSERT_EQ_INT(promql_build(&b, "ns", NULL, 0, &o), -EINVAL);
    o.percentile = NAN;
    ASSERT_EQ_INT(promql_build(&b, "ns", NULL, 0, &o), -EINVAL);
    o.percentile = 0.5;
    o.window_s = 0;
    ASSERT_EQ_INT(promql_build(&b, "ns", NULL, 0, &o), -EINVAL);
    o.window_s = 86400;
    o.step_s = 1; /* 86400 points: Prometheus would refuse */
    ASSERT_EQ_INT(promql_build(&b, "ns", NULL, 0, &o), -EINVAL);
    opbuf_release(&b);
    opbuf_init(&b, 200); /* the cap holds */
    o.step_s = 0;
    ASSERT_EQ_INT(promql_build(&b, "ns", NULL, 0, &o), -E2BIG);
    opbuf_release(&b);
}

typedef struct seen {
    int n;
    char pod[8][32], container[8][32], stat[8][32];
    double v[8], ts[8];
    int stop_after;
} seen;

static int collect(const promql_sample *s, void *ud)
{
    seen *x = ud;
    if (x->n < 8) {
        snprintf(x->pod[x->n], 32, "%s", s->pod);
        snprintf(x->container[x->n], 32, "%s", s->container);
        snprintf(x->stat[x->n], 32, "%s", s->stat);
        x->v[x->n] = s->value;
        x->ts[x->n] = s->ts;
    }
    x->n++;
    return x->stop_after && x->n >= x->stop_after ? -ECANCELED : 0;
}

/* Shaped like a real Prometheus 2.42 answer to promql_build's query. */
static const char real_body[] =
    "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
    "{\"metric\":{\"container\":\"app\",\"optipod_stat\":\"cpu_q\",\"pod\":\"web-1\"},"
    "\"value\":[1795313670,\"0.6573624620211996\"]},"
    "{\"metric\":{\"container\":\"app\",\"optipod_stat\":\"mem_max\",\"pod\":\"web-1\"},"
    "\"value\":[1795313670.5,\"199976406\"]},"
    "{\"metric\":{\"container\":\"app\",\"optipod_stat\":\"mem_q\",\"pod\":\"web-2\"},"
    "\"value\":[1795313670,\"1.5e8\"]},"
    "{\"metric\":{\"optipod_stat\":\"cpu_n\"},\"value\":[1,\"+Inf\"]}]}}";

static void test_parse_vector(void)
{
    seen x = {0};
    operr err;
    ASSERT_EQ_INT(promql_parse(real_body, strlen(real_body), collect, &x, &err), 0);
    ASSERT_EQ_INT(x.n, 4);
    ASSERT_STR_EQ(x.pod[0], "web-1");
    ASSERT_STR_EQ(x.container[0], "app");
    ASSERT_STR_EQ(x.stat[0], "cpu_q");
    ASSERT_NEAR(x.v[0], 0.6573624620211996, 0);
    ASSERT_NEAR(x.ts[1], 1795313670.5, 0);
    ASSERT_NEAR(x.v[1], 199976406, 0);
    ASSERT_NEAR(x.v[2], 1.5e8, 0);
    ASSERT_STR_EQ(x.pod[3], ""); /* absent labels are "" */
    ASSERT(isinf(x.v[3]));
    /* The body need not be NUL-terminated: parse a prefix-length slice. */
    char *copy = malloc(sizeof real_body + 10);
    memcpy(copy, real_body, sizeof real_body - 1);
    memcpy(copy + sizeof real_body - 1, "GARBAGE!!!", 10);
    x = (seen){0};
    ASSERT_EQ_INT(promql_parse(copy, sizeof real_body - 1, collect, &x, &err), 0);
    ASSERT_EQ_INT(x.n, 4);
    free(copy);
    /* A callback can stop the walk. */
    x = (seen){.stop_after = 2};
    ASSERT_EQ_INT(promql_parse(real_body, strlen(real_body), collect, &x, &err), -ECANCELED);
    ASSERT_EQ_INT(x.n, 2);
}

static void expect_parse_error(const char *body, int rc, const char *msg)
{
    seen x = {0};
    operr err;
    operr_clear(&err);
    ASSERT_EQ_INT(promql_parse(body, strlen(body), collect, &x, &err), rc);
    ASSERT_STR_CONTAINS(err.msg, msg);
}

static void test_parse_errors_are_clear(void)
{
    expect_parse_error("", -EPROTO, "not JSON");
    expect_parse_error("<html>502 Bad Gateway</html>", -EPROTO, "not JSON");
    expect_parse_error("{\"status\":\"success\",\"data\":{\"resultType\":\"vec", -EPROTO,
                       "not JSON");
    expect_parse_error("[1,2]", -EPROTO, "no \"status\"");
    expect_parse_error("{\"status\":\"error\",\"errorType\":\"timeout\",\"error\":\"query timed "
                       "out in expression evaluation\"}",
                       -EREMOTEIO, "status \"error\": timeout: query timed out");
    expect_parse_error("{\"status\":\"error\"}", -EREMOTEIO, "(no message)");
    expect_parse_error("{\"status\":\"success\"}", -EPROTO, "no data.resultType");
    expect_parse_error("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\","
                       "\"result\":[]}}",
                       -EPROTO, "resultType \"matrix\"");
    expect_parse_error("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                       "\"result\":[{\"metric\":{},\"value\":[1,\"abc\"]}]}}",
                       -EPROTO, "data.result[0]");
    expect_parse_error("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                       "\"result\":[{\"metric\":{},\"value\":[1,\"1\"]},{\"metric\":{},"
                       "\"value\":[1,2]}]}}",
                       -EPROTO, "data.result[1]");
    expect_parse_error("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                       "\"result\":[{\"metric\":{},\"value\":[\"1\",\"1\"]}]}}",
                       -EPROTO, "data.result[0]");
    expect_parse_error("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                       "\"result\":[{\"metric\":{},\"value\":[1,\"1e999\"]}]}}",
                       -EPROTO, "data.result[0]");
}

static int add(promql_agg *a, const char *pod, const char *c, const char *stat, double v)
{
    promql_sample s = {.pod = pod, .container = c, .stat = stat, .value = v};
    operr err;
    return promql_agg_add(a, &s, &err);
}

static const mprov_container_stats *find_c(const mprov_workload_stats *w, const char *name)
{
    for (size_t i = 0; i < w->ncontainers; i++)
        if (strcmp(w->containers[i].container, name) == 0)
            return &w->containers[i];
    return NULL;
}

static void test_agg_maps_pods_to_workloads_and_combines(void)
{
    const char *const web[] = {"web-a", "web-b", "web-c"};
    const char *const api[] = {"api-x", "web-a" /* claimed twice: the first owner wins */};
    mprov_workload w[3] = {
        {"Deployment", "web", web, 3},
        {"StatefulSet", "api", api, 2},
        {"DaemonSet", "idle", NULL, 0},
    };
    mprov_request rq = {
        .ns = "shop", .workloads = w, .nworkloads = 3, .percentile = 0.9, .window_s = 3600};
    promql_agg *a = NULL;
    ASSERT_EQ_INT(promql_agg_new(&a, &rq), 0);
    size_t npods;
    const char *const *pods = promql_agg_pods(a, &npods);
    ASSERT_EQ_INT(npods, 4);
    ASSERT_STR_EQ(pods[0], "web-a");
    ASSERT_STR_EQ(pods[3], "api-x");

    ASSERT_EQ_INT(add(a, "web-a", "app", "cpu_q", 0.5), 0);
    ASSERT_EQ_INT(add(a, "web-b", "app", "cpu_q", 0.8), 0);
    ASSERT_EQ_INT(add(a, "web-c", "app", "cpu_q", 0.2), 0);
    ASSERT_EQ_INT(add(a, "web-a", "app", "cpu_n", 60), 0);
    ASSERT_EQ_INT(add(a, "web-b", "app", "cpu_n", 60), 0);
    ASSERT_EQ_INT(add(a, "web-c", "app", "cpu_n", 10), 0);
    ASSERT_EQ_INT(add(a, "web-a", "app", "mem_q", 100), 0);
    ASSERT_EQ_INT(add(a, "web-b", "app", "mem_q", 300), 0);
    ASSERT_EQ_INT(add(a, "web-a", "app", "mem_max", 900), 0);
    ASSERT_EQ_INT(add(a, "web-b", "app", "mem_max", 400), 0);
    ASSERT_EQ_INT(add(a, "web-a", "app", "mem_n", 120), 0);
    ASSERT_EQ_INT(add(a, "web-b", "app", "mem_n", 119), 0);
    ASSERT_EQ_INT(add(a, "web-a", "app", "mem_first", 10000), 0);
    ASSERT_EQ_INT(add(a, "web-b", "app", "mem_first", 9000), 0);
    ASSERT_EQ_INT(add(a, "web-a", "app", "oom", 1), 0);
    ASSERT_EQ_INT(add(a, "web-b", "app", "oom", 1), 0);
    ASSERT_EQ_INT(add(a, "web-c", "app", "oom", 0), 0);
    ASSERT_EQ_INT(add(a, "web-a", "app", "oom_first", 11000), 0);
    ASSERT_EQ_INT(add(a, "web-b", "app", "oom_first", 11500), 0);
    ASSERT_EQ_INT(add(a, "web-a", "sidecar", "mem_max", 50), 0);
    ASSERT_EQ_INT(add(a, "web-a", "sidecar", "mem_first", 100), 0); /* older than the window */
    ASSERT_EQ_INT(add(a, "api-x", "srv", "cpu_q", 0.1), 0);
    /* Ignored: unknown pods, stats and empty containers. */
    ASSERT_EQ_INT(add(a, "stranger", "app", "cpu_q", 99), 0);
    ASSERT_EQ_INT(add(a, "web-a", "app", "cpu_mean", 99), 0);
    ASSERT_EQ_INT(add(a, "web-a", "", "cpu_q", 99), 0);
    /* Broken numbers are errors. */
    ASSERT_EQ_INT(add(a, "web-a", "app", "cpu_q", NAN), -EPROTO);
    ASSERT_EQ_INT(add(a, "web-a", "app", "cpu_q", INFINITY), -EPROTO);
    ASSERT_EQ_INT(add(a, "web-a", "app", "mem_n", -1), -EPROTO);
    promql_sample s = {.pod = "web-a", .container = "app", .stat = "mem_q", .value = -5};
    operr err;
    ASSERT_EQ_INT(promql_agg_add(a, &s, &err), -EPROTO);
    ASSERT_STR_EQ(err.msg, "mem_q of pod 'web-a' container 'app' is -5, not a usable number");

    mprov_result r = {0};
    ASSERT_EQ_INT(promql_agg_result(a, 12000, &r), 0);
    ASSERT_EQ_INT(r.eval_time_s, 12000);
    ASSERT_EQ_INT(r.nworkloads, 3);
    ASSERT_STR_EQ(r.workloads[0].name, "web");
    ASSERT_STR_EQ(r.workloads[1].kind, "StatefulSet");
    ASSERT_EQ_INT(r.workloads[2].ncontainers, 0);
    ASSERT_EQ_INT(r.workloads[0].ncontainers, 2);
    const mprov_container_stats *app = find_c(&r.workloads[0], "app");
    ASSERT_NOT_NULL(app);
    ASSERT_NEAR(app->cpu_cores, 0.8, 0);
    ASSERT_EQ_INT(app->cpu_samples, 130);
    ASSERT_NEAR(app->mem_bytes, 300, 0);
    ASSERT_NEAR(app->mem_peak_bytes, 900, 0);
    ASSERT_EQ_INT(app->mem_samples, 239);
    ASSERT_NEAR(app->history_s, 3000, 0);
    ASSERT_EQ_INT(app->oom_count, 2);
    ASSERT_EQ_INT(app->oom_last_s, 11500);
    const mprov_container_stats *side = find_c(&r.workloads[0], "sidecar");
    ASSERT_NOT_NULL(side);
    ASSERT_NEAR(side->history_s, 3600, 0); /* clamped to the window */
    ASSERT_EQ_INT(side->oom_count, 0);
    ASSERT_EQ_INT(side->cpu_samples, 0);
    ASSERT_EQ_INT(r.workloads[1].ncontainers, 1);
    ASSERT_NEAR(r.workloads[1].containers[0].cpu_cores, 0.1, 0);
    /* Result again (e.g. after more samples): still consistent, no leak. */
    ASSERT_EQ_INT(promql_agg_result(a, 12000, &r), 0);
    ASSERT_EQ_INT(r.workloads[0].ncontainers, 2);
    promql_agg_free(a);
}

static void test_agg_sample_cb_adapter(void)
{
    const char *const web[] = {"web-1", "web-2"};
    mprov_workload w = {"Deployment", "web", web, 2};
    mprov_request rq = {
        .ns = "shop", .workloads = &w, .nworkloads = 1, .percentile = 0.9, .window_s = 86400};
    promql_agg *a = NULL;
    ASSERT_EQ_INT(promql_agg_new(&a, &rq), 0);
    operr err;
    promql_agg_ctx ctx = {.agg = a, .err = &err};
    ASSERT_EQ_INT(promql_parse(real_body, strlen(real_body), promql_agg_sample_cb, &ctx, &err), 0);
    mprov_result r = {0};
    ASSERT_EQ_INT(promql_agg_result(a, 1795313670, &r), 0);
    ASSERT_EQ_INT(r.workloads[0].ncontainers, 1);
    ASSERT_NEAR(r.workloads[0].containers[0].cpu_cores, 0.6573624620211996, 0);
    ASSERT_NEAR(r.workloads[0].containers[0].mem_bytes, 1.5e8, 0);
    ASSERT_NEAR(r.workloads[0].containers[0].mem_peak_bytes, 199976406, 0);
    promql_agg_free(a);
}

typedef struct mseen {
    int n;
    size_t points;
    char pod[4][32], stat[4][8];
    int64_t t0[4];
    double v0[4];
} mseen;

static int mcollect(const promql_series *s, void *ud)
{
    mseen *m = ud;
    if (m->n < 4) {
        snprintf(m->pod[m->n], 32, "%s", s->pod);
        snprintf(m->stat[m->n], 8, "%s", s->stat);
        m->t0[m->n] = s->n ? s->t[0] : 0;
        m->v0[m->n] = s->n ? s->v[0] : 0;
    }
    m->n++;
    m->points += s->n;
    return 0;
}

/* The backtest's range query and its matrix answers. */
static void test_range_query_and_matrix(void)
{
    opbuf b;
    opbuf_init(&b, 1 << 16);
    ASSERT_EQ_INT(promql_build_range(&b, "shop", "web-[456789bcdf]{6,10}-x", 300), 0);
    const char *q = opbuf_str(&b);
    ASSERT_STR_CONTAINS(q, "label_replace(sum by (pod, container) (rate(container_cpu_usage_"
                           "seconds_total{namespace=\"shop\",pod=~\"web-[456789bcdf]{6,10}-x\","
                           "container!=\"\",container!=\"POD\"}[300s])), \"optipod_stat\", "
                           "\"cpu\", \"\", \"\")");
    ASSERT_STR_CONTAINS(q, " or label_replace(max by (pod, container) (container_memory_working_"
                           "set_bytes{");
    ASSERT_STR_CONTAINS(q, "reason=\"OOMKilled\"}), \"optipod_stat\", \"oom\"");
    ASSERT_EQ_INT(promql_build_range(&b, "", NULL, 300), -EINVAL);
    ASSERT_EQ_INT(promql_build_range(&b, "shop", NULL, 0), -EINVAL);
    opbuf_release(&b);

    static const char ok[] =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
        "{\"metric\":{\"pod\":\"web-a\",\"container\":\"app\",\"optipod_stat\":\"cpu\"},"
        "\"values\":[[1700000000,\"0.25\"],[1700000060.5,\"0.5\"]]},"
        "{\"metric\":{\"pod\":\"web-b\",\"optipod_stat\":\"mem\"},\"values\":[]}]}}";
    mseen m = {0};
    operr err;
    ASSERT_EQ_INT(promql_parse_matrix(ok, strlen(ok), mcollect, &m, &err), 0);
    ASSERT_EQ_INT(m.n, 2);
    ASSERT_EQ_INT(m.points, 2);
    ASSERT_STR_EQ(m.pod[0], "web-a");
    ASSERT_STR_EQ(m.stat[0], "cpu");
    ASSERT_EQ_INT(m.t0[0], 1700000000);
    ASSERT_NEAR(m.v0[0], 0.25, 0);
    static const struct {
        const char *body, *msg;
        int rc;
    } bad[] = {
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}",
         "resultType \"vector\", want \"matrix\"", -EPROTO},
        {"{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"too many points\"}",
         "bad_data: too many points", -EREMOTEIO},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\""
         ":{},\"values\":[[2,\"1\"],[1,\"1\"]]}]}}",
         "data.result[0].values[1]: time goes back", -EPROTO},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\""
         ":{},\"values\":[[1,\"+Inf\"]]}]}}",
         "values[0] is not a [time, \"finite number\"]", -EPROTO},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"values\""
         ":[]}]}}",
         "data.result[0] is not a {metric, values}", -EPROTO},
        {"not json", "not JSON", -EPROTO},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&m, 0, sizeof m);
        ASSERT_EQ_INT(promql_parse_matrix(bad[i].body, strlen(bad[i].body), mcollect, &m, &err),
                      bad[i].rc);
        ASSERT_STR_CONTAINS(err.msg, bad[i].msg);
    }
}

int main(void)
{
    TEST_RUN(test_stat_names_round_trip);
    TEST_RUN(test_step_respects_point_limit_and_floor);
    TEST_RUN(test_regex_and_string_escaping);
    TEST_RUN(test_build_one_query_with_every_stat);
    TEST_RUN(test_build_rejects_bad_options);
    TEST_RUN(test_parse_vector);
    TEST_RUN(test_parse_errors_are_clear);
    TEST_RUN(test_agg_maps_pods_to_workloads_and_combines);
    TEST_RUN(test_agg_sample_cb_adapter);
    TEST_RUN(test_range_query_and_matrix);
    return test_summary();
}
