/*
 * mwin and the aggregator's window: which pods a workload had, by the names
 * Kubernetes generates and by kube-state-metrics' owner series (all pure;
 * test_prometheus runs the same against the real Prometheus).
 */
#include "test.h"

#include <errno.h>
#include <math.h>
#include <regex.h>

#include "metrics/promql.h"
#include "metrics/window.h"
#include "util/buf.h"

/* The regex text, anchored as PromQL anchors it, through POSIX ERE (the
 * patterns use nothing RE2 and ERE read differently). */
static int re_matches(const char *kind, const char *name, const char *pod)
{
    opbuf b;
    opbuf_init(&b, 4096);
    ASSERT_EQ_INT(opbuf_puts(&b, "^("), 0);
    ASSERT_EQ_INT(mwin_pod_regex(&b, kind, name), 0);
    ASSERT_EQ_INT(opbuf_puts(&b, ")$"), 0);
    regex_t re;
    ASSERT_EQ_INT(regcomp(&re, opbuf_str(&b), REG_EXTENDED | REG_NOSUB), 0);
    int m = regexec(&re, pod, 0, NULL, 0) == 0;
    regfree(&re);
    opbuf_release(&b);
    return m;
}

typedef struct tcase {
    const char *kind, *name, *pod;
    int match;
} tcase;

static const tcase cases[] = {
    {"Deployment", "web", "web-7d9f8c6b5d-x2k4p", 1},
    {"Deployment", "web", "web-5c6b9f8d47-bcdfg", 1},
    {"Deployment", "web", "web-456789-bcdfg", 1},         /* 6 hash characters */
    {"Deployment", "web", "web-45678-bcdfg", 0},          /* 5: too short */
    {"Deployment", "web", "web-45678945678-bcdfg", 0},    /* 11: too long */
    {"Deployment", "web", "web-api-7d9f8c6b5d-x2k4p", 0}, /* web-api's pods */
    {"Deployment", "web-api", "web-api-7d9f8c6b5d-x2k4p", 1},
    {"Deployment", "web-api", "web-7d9f8c6b5d-x2k4p", 0},
    {"Deployment", "web", "web-29012345-bcdfg", 0},   /* a CronJob web's Job pod */
    {"Deployment", "web", "web-bcdfgh-x2k4p", 0},     /* g, h: not in the hash alphabet */
    {"Deployment", "web", "web-7d9f8c6b5d-abcde", 0}, /* vowels: never generated */
    {"Deployment", "web", "web-7d9f8c6b5d-x2k4", 0},
    {"Deployment", "web", "web-7d9f8c6b5d-x2k4p-1", 0},
    {"Deployment", "web", "xweb-7d9f8c6b5d-x2k4p", 0}, /* anchored at the start */
    {"Deployment", "w.b", "wxb-7d9f8c6b5d-x2k4p", 0},  /* the name is a literal */
    {"Deployment", "w.b", "w.b-7d9f8c6b5d-x2k4p", 1},
    {"StatefulSet", "db", "db-0", 1},
    {"StatefulSet", "db", "db-12", 1},
    {"StatefulSet", "db", "db-01", 0},
    {"StatefulSet", "db", "db-", 0},
    {"StatefulSet", "db", "db-x", 0},
    {"StatefulSet", "db", "db-0-0", 0},
    {"StatefulSet", "web", "web-api-0", 0},
    {"DaemonSet", "agent", "agent-x2k4p", 1},
    {"DaemonSet", "agent", "agent-x2k4pq", 0},
    {"DaemonSet", "web", "web-redis", 0}, /* a bare pod web-redis */
    {"DaemonSet", "web", "web-proxy", 0},
    {"DaemonSet", "web", "web-api-x2k4p", 0},        /* DaemonSet web-api's pod */
    {"DaemonSet", "web", "web-7d9f8c6b5d-x2k4p", 0}, /* Deployment web's pod */
    {"DaemonSet", "web", "web-24567", 1},
    {"StatefulSet", "web", "web-24567", 1}, /* the same name both ways */
};

/* The regex (as Prometheus reads it) and the C rule agree on every case,
 * and both say what Kubernetes' naming means. */
static void test_patterns_match_generated_names_only(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const tcase *c = &cases[i];
        int re = re_matches(c->kind, c->name, c->pod);
        int cm = mwin_pod_matches(c->kind, c->name, c->pod);
        if (re != c->match || cm != c->match)
            test_fail(__FILE__, __LINE__, "%s %s vs pod %s: regex %d, C %d, want %d", c->kind,
                      c->name, c->pod, re, cm, c->match);
    }
    opbuf b;
    opbuf_init(&b, 256);
    ASSERT_EQ_INT(mwin_pod_regex(&b, "Deployment", "web"), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "web-[456789bcdf]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}");
    ASSERT_EQ_INT(mwin_pod_regex(&b, "CronJob", "web"), -EINVAL);
    opbuf_release(&b);
    ASSERT(mwin_kind_known("DaemonSet"));
    ASSERT(!mwin_kind_known("Job"));
    ASSERT_STR_EQ(mwin_method_name(MWIN_OWNERS), "kube-state-metrics");
    ASSERT_STR_EQ(mwin_method_name(MWIN_NAMES), "pod-names");
    ASSERT_STR_EQ(mwin_method_name(MWIN_CURRENT), "current-pods");
}

static void test_candidates_and_replicaset_names(void)
{
    mwin_cand c[3];
    ASSERT_EQ_INT(mwin_candidates("web-api-7d9f8c6b5d-x2k4p", c), 2);
    ASSERT_STR_EQ(c[0].kind, "Deployment");
    ASSERT_EQ_INT(c[0].name_len, 7); /* web-api */
    ASSERT_STR_EQ(c[1].kind, "DaemonSet");
    ASSERT_EQ_INT(c[1].name_len, 18);
    ASSERT_EQ_INT(mwin_candidates("web-24567", c), 2);
    ASSERT_STR_EQ(c[0].kind, "DaemonSet");
    ASSERT_STR_EQ(c[1].kind, "StatefulSet");
    ASSERT_EQ_INT(mwin_candidates("db-3", c), 1);
    ASSERT_EQ_INT(mwin_candidates("nodash", c), 0);
    ASSERT_EQ_INT(mwin_candidates("-bcdfg", c), 0);
    ASSERT_EQ_INT(mwin_candidates("", c), 0);
    ASSERT_EQ_INT(mwin_rs_deployment_len("web-api-7d9f8c6b5d"), 7);
    ASSERT_EQ_INT(mwin_rs_deployment_len("web-bcdfgh"), 0);
    ASSERT_EQ_INT(mwin_rs_deployment_len("7d9f8c6b5d"), 0);
}

static int add(promql_agg *a, const char *pod, const char *stat, double v)
{
    operr err;
    promql_sample s = {.pod = pod, .container = "app", .stat = stat, .value = v};
    return promql_agg_add(a, &s, &err);
}

static int owner(promql_agg *a, const char *stat, const char *who, const char *kind,
                 const char *name)
{
    operr err;
    int rs = strcmp(stat, "rs_owner") == 0;
    promql_sample s = {.pod = rs ? "" : who,
                       .container = "",
                       .stat = stat,
                       .owner_kind = kind,
                       .owner_name = name,
                       .replicaset = rs ? who : ""};
    return promql_agg_add(a, &s, &err);
}

static const mprov_container_stats *app_of(const mprov_result *r, size_t w)
{
    return r->workloads[w].ncontainers ? &r->workloads[w].containers[0] : NULL;
}

/* Without owner series: current pods by name, the rest by pattern. */
static void test_agg_by_names(void)
{
    const char *const web[] = {"web-5c6b9f8d47-bcdfg", "hand-made"};
    mprov_workload w[3] = {{"Deployment", "web", web, 2},
                           {"Deployment", "web-api", NULL, 0},
                           {"StatefulSet", "db", NULL, 0}};
    mprov_request rq = {
        .ns = "n", .workloads = w, .nworkloads = 3, .percentile = 0.9, .window_s = 3600};
    promql_agg *a = NULL;
    ASSERT_EQ_INT(promql_agg_new(&a, &rq), 0);
    opbuf re;
    opbuf_init(&re, 4096);
    size_t nalts = 0;
    ASSERT_EQ_INT(promql_agg_pod_regex(a, &re, &nalts), 0);
    ASSERT_EQ_INT(nalts, 4); /* three patterns, and the hand-made current pod */
    ASSERT_STR_CONTAINS(opbuf_str(&re), "web-api-[456789bcdf]{6,10}-");
    ASSERT_STR_CONTAINS(opbuf_str(&re), "|db-(0|[1-9][0-9]*)|hand-made");
    opbuf_reset(&re);
    ASSERT_EQ_INT(promql_agg_deploy_regex(a, &re), 0);
    ASSERT_STR_EQ(opbuf_str(&re), "web|web-api");
    opbuf_release(&re);
    ASSERT_EQ_INT(add(a, "web-7d9f8c6b5d-x2k4p", "cpu_q", 0.5), 0); /* gone: by its name */
    ASSERT_EQ_INT(add(a, "web-5c6b9f8d47-bcdfg", "cpu_q", 0.02), 0);
    ASSERT_EQ_INT(add(a, "hand-made", "cpu_q", 0.1), 0);
    ASSERT_EQ_INT(add(a, "web-api-7d9f8c6b5d-x2k4p", "cpu_q", 2.0), 0);
    ASSERT_EQ_INT(add(a, "db-1", "cpu_q", 0.3), 0);
    ASSERT_EQ_INT(add(a, "web-redis-bcdfg", "cpu_q", 99), 0);  /* nobody's */
    ASSERT_EQ_INT(add(a, "web-redis-bcdfg", "cpu_q", NAN), 0); /* ignored before checked */
    mprov_result r = {0};
    ASSERT_EQ_INT(promql_agg_result(a, 3600, &r), 0);
    ASSERT_NEAR(app_of(&r, 0)->cpu_cores, 0.5, 0);
    ASSERT_EQ_INT(app_of(&r, 0)->pods, 3);
    ASSERT_STR_EQ(app_of(&r, 0)->history, "pod-names");
    ASSERT_STR_EQ(r.workloads[0].history, "pod-names");
    ASSERT_NEAR(app_of(&r, 1)->cpu_cores, 2.0, 0);
    ASSERT_EQ_INT(app_of(&r, 1)->pods, 1);
    ASSERT_NEAR(app_of(&r, 2)->cpu_cores, 0.3, 0);
    promql_agg_free(a);
}

/* With owner series: exact, whatever the names; a pod kube-state-metrics
 * gives to another owner is never taken by its name. */
static void test_agg_by_owners(void)
{
    mprov_workload w[3] = {{"Deployment", "web", NULL, 0},
                           {"DaemonSet", "agent", NULL, 0},
                           {"StatefulSet", "db", NULL, 0}};
    mprov_request rq = {
        .ns = "n", .workloads = w, .nworkloads = 3, .percentile = 0.9, .window_s = 3600};
    promql_agg *a = NULL;
    ASSERT_EQ_INT(promql_agg_new(&a, &rq), 0);
    ASSERT_EQ_INT(owner(a, "pod_owner", "web-7d9f8c6b5d-x2k4p", "ReplicaSet", "web-7d9f8c6b5d"), 0);
    ASSERT_EQ_INT(owner(a, "pod_owner", "legacy-1", "ReplicaSet", "web-7d9f8c6b5d"), 0);
    ASSERT_EQ_INT(owner(a, "pod_owner", "odd-rs-pod", "ReplicaSet", "web-5c6b9f8d47"), 0);
    ASSERT_EQ_INT(owner(a, "pod_owner", "web-7d9f8c6b5d-zzzzz", "ReplicaSet", "imp-5d8f9b6c4d"), 0);
    ASSERT_EQ_INT(owner(a, "pod_owner", "agent-x2k4p", "DaemonSet", "agent"), 0);
    ASSERT_EQ_INT(owner(a, "pod_owner", "db-0", "StatefulSet", "db"), 0);
    ASSERT_EQ_INT(owner(a, "rs_owner", "web-7d9f8c6b5d", "Deployment", "web"), 0);
    ASSERT_EQ_INT(owner(a, "rs_owner", "imp-5d8f9b6c4d", "Deployment", "imp"), 0);
    /* pod_regex: the patterns, plus the pods only their owners name */
    opbuf re;
    opbuf_init(&re, 4096);
    size_t nalts = 0;
    ASSERT_EQ_INT(promql_agg_pod_regex(a, &re, &nalts), 0);
    ASSERT_EQ_INT(nalts, 5);
    ASSERT_STR_CONTAINS(opbuf_str(&re), "|legacy-1");
    ASSERT_STR_CONTAINS(opbuf_str(&re), "|odd-rs-pod"); /* its RS only by its name */
    ASSERT_NULL(strstr(opbuf_str(&re), "zzzzz"));
    opbuf_release(&re);
    ASSERT_EQ_INT(add(a, "web-7d9f8c6b5d-x2k4p", "cpu_q", 0.5), 0);
    ASSERT_EQ_INT(add(a, "legacy-1", "cpu_q", 0.7), 0);
    ASSERT_EQ_INT(add(a, "odd-rs-pod", "cpu_q", 0.1), 0);
    ASSERT_EQ_INT(add(a, "web-7d9f8c6b5d-zzzzz", "cpu_q", 50), 0);  /* imp's */
    ASSERT_EQ_INT(add(a, "web-7d9f8c6b5d-bbbbb", "cpu_q", 0.2), 0); /* unknown: by name */
    ASSERT_EQ_INT(add(a, "agent-x2k4p", "cpu_q", 0.01), 0);
    ASSERT_EQ_INT(add(a, "db-0", "mem_max", 1e6), 0);
    mprov_result r = {0};
    ASSERT_EQ_INT(promql_agg_result(a, 3600, &r), 0);
    ASSERT_NEAR(app_of(&r, 0)->cpu_cores, 0.7, 0);
    ASSERT_EQ_INT(app_of(&r, 0)->pods, 4);
    ASSERT_STR_EQ(app_of(&r, 0)->history, "kube-state-metrics");
    ASSERT_NEAR(app_of(&r, 1)->cpu_cores, 0.01, 0);
    ASSERT_NEAR(app_of(&r, 2)->mem_peak_bytes, 1e6, 0);
    promql_agg_free(a);
}

/* The owners query asks for every pod's owner (a pod another owner has
 * must be known as such) and only the requested Deployments' ReplicaSets. */
static void test_owners_query(void)
{
    opbuf b;
    opbuf_init(&b, 4096);
    ASSERT_EQ_INT(promql_build_owners(&b, "shop", "web|web-api", 86400), 0);
    ASSERT_STR_EQ(opbuf_str(&b),
                  "label_replace(max by (pod, owner_kind, owner_name) (max_over_time("
                  "kube_pod_owner{namespace=\"shop\",owner_kind=~\"ReplicaSet|StatefulSet|"
                  "DaemonSet\"}[86400s])), \"optipod_stat\", \"pod_owner\", \"\", \"\") or "
                  "label_replace(max by (replicaset, owner_name) (max_over_time("
                  "kube_replicaset_owner{namespace=\"shop\",owner_kind=\"Deployment\","
                  "owner_name=~\"web|web-api\"}[86400s])), \"optipod_stat\", \"rs_owner\", \"\", "
                  "\"\")");
    opbuf_reset(&b);
    ASSERT_EQ_INT(promql_build_owners(&b, "shop", NULL, 60), 0);
    ASSERT_NULL(strstr(opbuf_str(&b), "kube_replicaset_owner"));
    ASSERT_EQ_INT(promql_build_owners(&b, "", NULL, 60), -EINVAL);
    ASSERT_EQ_INT(promql_build_owners(&b, "shop", NULL, 0), -EINVAL);
    opbuf_release(&b);
    /* The adapter folds only what its query asked for. */
    mprov_workload w = {"Deployment", "web", NULL, 0};
    mprov_request rq = {
        .ns = "n", .workloads = &w, .nworkloads = 1, .percentile = 0.9, .window_s = 3600};
    promql_agg *a = NULL;
    ASSERT_EQ_INT(promql_agg_new(&a, &rq), 0);
    operr err;
    promql_agg_ctx owners = {.agg = a, .err = &err, .owners_query = 1},
                   stats = {.agg = a, .err = &err};
    promql_sample st = {.pod = "web-7d9f8c6b5d-x2k4p",
                        .container = "app",
                        .stat = "cpu_q",
                        .value = 1,
                        .owner_kind = "",
                        .owner_name = "",
                        .replicaset = ""};
    promql_sample ow = {.pod = "legacy",
                        .container = "",
                        .stat = "pod_owner",
                        .owner_kind = "ReplicaSet",
                        .owner_name = "web-7d9f8c6b5d",
                        .replicaset = ""};
    ASSERT_EQ_INT(promql_agg_sample_cb(&st, &owners), 0);
    ASSERT_EQ_INT(promql_agg_sample_cb(&ow, &stats), 0);
    mprov_result r = {0};
    ASSERT_EQ_INT(promql_agg_result(a, 3600, &r), 0);
    ASSERT_EQ_INT(r.workloads[0].ncontainers, 0);
    ASSERT_STR_EQ(r.workloads[0].history, "pod-names"); /* no owner series folded */
    promql_agg_free(a);
}

int main(void)
{
    TEST_RUN(test_patterns_match_generated_names_only);
    TEST_RUN(test_candidates_and_replicaset_names);
    TEST_RUN(test_agg_by_names);
    TEST_RUN(test_agg_by_owners);
    TEST_RUN(test_owners_query);
    return test_summary();
}
