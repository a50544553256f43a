/*
 * `optipod plan --prometheus-url` and `optipod backtest --prometheus-url`
 * find a workload's pods across its window as the controller does
 * (metrics/window.h): kube-state-metrics owner series first, else the
 * names Kubernetes generates, never a longer name's pods. The binaries run
 * against the REAL Prometheus (promtool backfill) holding two namespaces
 * with the same pods and usage; only `ksm` has kube-state-metrics' owner
 * series. Deployment web's history:
 *   web-7d9f8c6b5d-x2k4p   30 h to 2 h ago  0.3 cores, 300 MiB (the earlier ReplicaSet)
 *   web-canary-x7k2m        4 h to 3 h ago  0.9 cores, 700 MiB (a ReplicaSet "web-canary"
 *                                           of web: only its owner series say so)
 *   web-5c6b9f8d47-bcdfg    2 h ago to now  0.02 cores, 200 MiB (the current pod)
 * and Deployment web-api's pod web-api-6d8f7b9c45-qwrtz (1.5 cores, 1000 MiB)
 * all along, whose name starts with "web-".
 */
#include "test.h"

#include <cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/proc.h"
#include "support/promserver.h"
#include "util/buf.h"

#define STEP_S 60
#define MI     1048576.0

static promsrv prom; /* static: promsrv's atexit hook reads it */
static int64_t end_t;
static char dir[64], out_path[PATH_MAX], err_path[PATH_MAX];
static char *out_text, *err_text;

typedef struct pod {
    const char *name, *rs, *deploy;
    double from_h, to_h, cores, mib;
} pod;

static const pod pods[] = {
    {"web-7d9f8c6b5d-x2k4p", "web-7d9f8c6b5d", "web", 30, 2, 0.3, 300},
    {"web-canary-x7k2m", "web-canary", "web", 4, 3, 0.9, 700},
    {"web-5c6b9f8d47-bcdfg", "web-5c6b9f8d47", "web", 2, 0, 0.02, 200},
    {"web-api-6d8f7b9c45-qwrtz", "web-api-6d8f7b9c45", "web-api", 30, 0, 1.5, 1000},
};
#define NPODS (sizeof pods / sizeof pods[0])

static void om_namespace(opbuf *om, const char *ns, int ksm)
{
    for (size_t i = 0; i < NPODS; i++) {
        const pod *p = &pods[i];
        double c = 100;
        for (int64_t t = end_t - (int64_t)(p->from_h * 3600);
             t <= end_t - (int64_t)(p->to_h * 3600); t += STEP_S) {
            c += p->cores * STEP_S;
            opbuf_printf(om,
                         "container_cpu_usage_seconds_total{namespace=\"%s\",pod=\"%s\","
                         "container=\"app\"} %.3f %" PRId64 "\n",
                         ns, p->name, c, t);
            opbuf_printf(om,
                         "container_memory_working_set_bytes{namespace=\"%s\",pod=\"%s\","
                         "container=\"app\"} %.0f %" PRId64 "\n",
                         ns, p->name, p->mib * MI, t);
            if (!ksm)
                continue;
            opbuf_printf(om,
                         "kube_pod_owner{namespace=\"%s\",pod=\"%s\",owner_kind=\"ReplicaSet\","
                         "owner_name=\"%s\",owner_is_controller=\"true\"} 1 %" PRId64 "\n",
                         ns, p->name, p->rs, t);
            opbuf_printf(om,
                         "kube_replicaset_owner{namespace=\"%s\",replicaset=\"%s\","
                         "owner_kind=\"Deployment\",owner_name=\"%s\",owner_is_controller="
                         "\"true\"} 1 %" PRId64 "\n",
                         ns, p->rs, p->deploy, t);
        }
    }
}

static const char *prom_error;
static char prom_err[OPERR_MAX];

static void start_prometheus(void)
{
    if (!promsrv_available())
        return;
    end_t = ((int64_t)time(NULL) - 3600) / 60 * 60;
    opbuf om;
    opbuf_init(&om, (size_t)64 << 20);
    /* OpenMetrics wants each metric family together: one family per pass */
    opbuf ksm, names;
    opbuf_init(&ksm, (size_t)32 << 20);
    opbuf_init(&names, (size_t)32 << 20);
    om_namespace(&ksm, "ksm", 1);
    om_namespace(&names, "names", 0);
    static const char *const fam[] = {"container_cpu_usage_seconds_total{",
                                      "container_memory_working_set_bytes{", "kube_pod_owner{",
                                      "kube_replicaset_owner{"};
    for (size_t f = 0; f < sizeof fam / sizeof *fam; f++)
        for (int k = 0; k < 2; k++) {
            const opbuf *b = k ? &names : &ksm;
            const char *s = opbuf_str(b);
            while (*s) {
                const char *nl = strchr(s, '\n');
                if (strncmp(s, fam[f], strlen(fam[f])) == 0)
                    opbuf_append(&om, s, (size_t)(nl - s + 1));
                s = nl + 1;
            }
        }
    opbuf_puts(&om, "# EOF\n");
    operr err;
    if (promsrv_start(&prom, om.data, om.len, &err) != 0) {
        snprintf(prom_err, sizeof prom_err, "%s", err.msg);
        prom_error = prom_err;
    }
    opbuf_release(&om);
    opbuf_release(&ksm);
    opbuf_release(&names);
}

static void need_prometheus(void)
{
    if (!promsrv_available())
        test_skip("%s or %s is not installed (make test installs the Debian package)",
                  PROMSRV_PROMETHEUS, PROMSRV_PROMTOOL);
    if (prom_error)
        test_fail(__FILE__, __LINE__, "prometheus did not start: %s", prom_error);
}

/* The manifests: web and web-api in both namespaces. */
static void write_manifests(void)
{
    snprintf(dir, sizeof dir, "/tmp/optipod-cmdwin-XXXXXX");
    ASSERT_NOT_NULL(mkdtemp(dir));
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/apps.yaml", dir);
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    static const char *const ns[] = {"ksm", "names"}, *const names[] = {"web", "web-api"};
    for (int n = 0; n < 2; n++)
        for (int w = 0; w < 2; w++)
            fprintf(f,
                    "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\n"
                    "  namespace: %s\nspec:\n  selector:\n    matchLabels: {app: %s}\n"
                    "  template:\n    metadata:\n      labels: {app: %s}\n    spec:\n"
                    "      containers:\n        - name: app\n          image: app:1\n"
                    "          resources:\n            requests: {cpu: 500m, memory: 512Mi}\n",
                    names[w], ns[n], names[w], names[w]);
    fclose(f);
    snprintf(out_path, sizeof out_path, "%s/out", dir);
    snprintf(err_path, sizeof err_path, "%s/err", dir);
}

static int run(const char *args)
{
    return proc_run_optipod(args, out_path, err_path, &out_text, &err_text);
}

static void rfc3339(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));
}

static const cJSON *find_row(const cJSON *arr, const char *nskey, const char *ns,
                             const char *namekey, const char *name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, arr)
    {
        const cJSON *a = cJSON_GetObjectItem(r, nskey), *b = cJSON_GetObjectItem(r, namekey);
        if (cJSON_IsString(a) && cJSON_IsString(b) && strcmp(a->valuestring, ns) == 0 &&
            strcmp(b->valuestring, name) == 0)
            return r;
    }
    test_fail(__FILE__, __LINE__, "no %s/%s in the output", ns, name);
    return NULL;
}

static const char *sget(const cJSON *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *v = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = cJSON_GetObjectItem(v, k);
    if (!cJSON_IsString(v))
        test_fail(__FILE__, __LINE__, "%s is not a string", path);
    return v->valuestring;
}

/* Said on stderr, as plan says it: how each namespace's pods were found. */
static void assert_found_by(void)
{
    ASSERT_STR_CONTAINS(err_text,
                        "prometheus: namespace ksm: the window's pods found by kube-state-metrics");
    ASSERT_STR_CONTAINS(err_text, "prometheus: namespace names: the window's pods found by "
                                  "pod-names");
}

/* A quantity the JSON prints: bytes, or NNNMi when whole. */
static double bytes(const char *q)
{
    char *e;
    double v = strtod(q, &e);
    if (strcmp(e, "Mi") == 0)
        return v * MI;
    ASSERT_STR_EQ(e, "");
    return v;
}

/* plan: the memory peak and the CPU percentile of web's window, per namespace. */
static void test_plan_finds_the_windows_pods_like_the_controller(void)
{
    need_prometheus();
    char now[32], args[2 * PATH_MAX];
    rfc3339(end_t, now, sizeof now);
    snprintf(args, sizeof args, "plan -f %s --prometheus-url %s --now %s -o json", dir, prom.url,
             now);
    if (run(args) != 0)
        test_fail(__FILE__, __LINE__, "optipod plan: %s", err_text);
    assert_found_by();
    cJSON *doc = cJSON_Parse(out_text);
    ASSERT_NOT_NULL(doc);
    const cJSON *wl = cJSON_GetObjectItem(doc, "workloads");
    const cJSON *ksm = cJSON_GetArrayItem(
        cJSON_GetObjectItem(find_row(wl, "namespace", "ksm", "name", "web"), "containers"), 0);
    const cJSON *names = cJSON_GetArrayItem(
        cJSON_GetObjectItem(find_row(wl, "namespace", "names", "name", "web"), "containers"), 0);
    const cJSON *api = cJSON_GetArrayItem(
        cJSON_GetObjectItem(find_row(wl, "namespace", "names", "name", "web-api"), "containers"),
        0);
    /* the owner series bring in the canary's pod; by name it is nobody's */
    ASSERT_NEAR(bytes(sget(ksm, "usage.memoryPeak")), 700 * MI, 0);
    ASSERT_NEAR(bytes(sget(names, "usage.memoryPeak")), 300 * MI, 0);
    ASSERT_NEAR(bytes(sget(api, "usage.memoryPeak")), 1000 * MI, 0);
    /* CPU P90 over the window: the max of the pods' P90s (promql.h) */
    ASSERT(strtod(sget(ksm, "usage.cpu"), NULL) >= 850);
    ASSERT(strtod(sget(names, "usage.cpu"), NULL) <= 320);
    /* the earlier ReplicaSet's day counts: not the current pod's 0.02 */
    ASSERT(strtod(sget(names, "usage.cpu"), NULL) >= 280);
    cJSON_Delete(doc);
}

/* backtest: the same pods, found the same way, over the replayed range. */
static void test_backtest_finds_the_windows_pods_like_the_controller(void)
{
    need_prometheus();
    char from[32], to[32], args[2 * PATH_MAX];
    rfc3339(end_t - 6 * 3600, from, sizeof from);
    rfc3339(end_t, to, sizeof to);
    snprintf(args, sizeof args,
             "backtest -f %s --prometheus-url %s --from %s --to %s --step 1m -o json", dir,
             prom.url, from, to);
    if (run(args) != 0)
        test_fail(__FILE__, __LINE__, "optipod backtest: %s", err_text);
    assert_found_by();
    cJSON *doc = cJSON_Parse(out_text);
    ASSERT_NOT_NULL(doc);
    const cJSON *rows = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "policies"), 0), "containers");
    ASSERT_STR_EQ(sget(find_row(rows, "namespace", "ksm", "workload", "web"), "memoryPeak"),
                  "700Mi");
    ASSERT_STR_EQ(sget(find_row(rows, "namespace", "names", "workload", "web"), "memoryPeak"),
                  "300Mi");
    ASSERT_STR_EQ(sget(find_row(rows, "namespace", "ksm", "workload", "web-api"), "memoryPeak"),
                  "1000Mi");
    ASSERT_STR_EQ(sget(find_row(rows, "namespace", "names", "workload", "web-api"), "memoryPeak"),
                  "1000Mi");
    cJSON_Delete(doc);
}

int main(void)
{
    start_prometheus();
    write_manifests();
    TEST_RUN(test_plan_finds_the_windows_pods_like_the_controller);
    TEST_RUN(test_backtest_finds_the_windows_pods_like_the_controller);
    unlink(out_path);
    unlink(err_path);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/apps.yaml", dir);
    unlink(path);
    rmdir(dir);
    free(out_text);
    free(err_text);
    promsrv_stop(&prom);
    return test_summary();
}
