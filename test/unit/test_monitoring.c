/*
 * What the chart ships for monitoring optipod: the alert rules pass the real
 * `promtool check rules` and `promtool test rules` (test/data/monitoring), the
 * Grafana dashboard is a dashboard Grafana imports, and the chart renders both
 * (a ConfigMap for Grafana's sidecar, a PrometheusRule) byte for byte from those
 * files only when asked. That every query in them names a metric optipod
 * exports is checked against the running binary's /metrics in test_cli_ops.
 */
#include "test.h"
#include "support/chart.h"
#include "support/proc.h"
#include "util/yaml2json.h"

#include <cJSON.h>
#include <errno.h>
#include <unistd.h>

#define CHART_DIR "charts/optipod"
#define RULES     CHART_DIR "/rules/optipod.rules.yaml"
#define DASHBOARD CHART_DIR "/dashboards/optipod.json"
#define PROMTOOL  "/usr/bin/promtool"

static int promtool(const char *args, proc *p)
{
    if (access(PROMTOOL, X_OK) != 0)
        test_skip("promtool is not installed (make test installs prometheus)");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s %s", PROMTOOL, args);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    proc_start(p, argv);
    return proc_wait_exit(p, 60);
}

static void test_rules_pass_promtool_check_rules(void)
{
    static proc p;
    int rc = promtool("check rules " RULES, &p);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "promtool check rules exited %d:\n%s", rc, p.out);
    ASSERT_STR_CONTAINS(p.out, "SUCCESS: 5 rules found");
}

/* The alerts fire on the series that mean trouble, after their `for`, and stay quiet on
 * healthy ones (the test file says which). */
static void test_alerts_pass_promtool_test_rules(void)
{
    static proc p;
    int rc = promtool("test rules test/data/monitoring/optipod-alerts-test.yaml", &p);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "promtool test rules exited %d:\n%s", rc, p.out);
    ASSERT_STR_CONTAINS(p.out, "SUCCESS");
    /* every alert of the rules file is exercised by the test file */
    size_t n;
    char *tests = test_read_file("test/data/monitoring/optipod-alerts-test.yaml", &n);
    static const char *const alerts[] = {"OptipodGitOpsLoop", "OptipodDuplicateController",
                                         "OptipodWebhookFailing", "OptipodMetricsUnavailable",
                                         "OptipodNoLeader"};
    for (size_t i = 0; i < sizeof alerts / sizeof alerts[0]; i++) {
        char want[96];
        snprintf(want, sizeof want, "alertname: %s\n", alerts[i]);
        ASSERT_STR_CONTAINS(tests, want);
    }
    free(tests);
}

static cJSON *read_json(const char *path)
{
    size_t n;
    char *text = test_read_file(path, &n);
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!j)
        test_fail(__FILE__, __LINE__, "%s: not JSON", path);
    return j;
}

/* A dashboard Grafana imports: a uid and title, a Prometheus data source variable every
 * query uses, unique panel ids, panels inside the 24-column grid, and an expression in
 * every target. */
static void test_dashboard_is_an_importable_grafana_dashboard(void)
{
    cJSON *d = read_json(DASHBOARD);
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(d, "uid")), "optipod-overview");
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(d, "title")), "optipod");
    ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(d, "schemaVersion")));
    const cJSON *vars = chart_get(d, "templating.list"), *v;
    int have_ds = 0;
    cJSON_ArrayForEach(v, vars)
    {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(v, "type"));
        if (type && strcmp(type, "datasource") == 0) {
            ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(v, "query")), "prometheus");
            ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(v, "name")), "datasource");
            have_ds = 1;
        }
    }
    ASSERT(have_ds);
    int ids[256] = {0}, nids = 0, ntargets = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(d, "panels"))
    {
        const cJSON *id = cJSON_GetObjectItem(p, "id");
        ASSERT(cJSON_IsNumber(id) && nids < 256);
        for (int i = 0; i < nids; i++)
            ASSERT_NE_INT(ids[i], id->valueint);
        ids[nids++] = id->valueint;
        const cJSON *g = cJSON_GetObjectItem(p, "gridPos");
        int x = cJSON_GetObjectItem(g, "x")->valueint, w = cJSON_GetObjectItem(g, "w")->valueint;
        ASSERT(x >= 0 && w > 0 && x + w <= 24);
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(p, "type"));
        ASSERT_NOT_NULL(type);
        if (strcmp(type, "row") == 0)
            continue;
        ASSERT_STR_EQ(cJSON_GetStringValue(chart_get(p, "datasource.uid")), "${datasource}");
        const cJSON *t;
        int n = 0;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(p, "targets"))
        {
            const char *e = cJSON_GetStringValue(cJSON_GetObjectItem(t, "expr"));
            ASSERT(e && *e);
            n++;
        }
        ASSERT(n > 0);
        ntargets += n;
    }
    ASSERT(ntargets >= 20);
    cJSON_Delete(d);
}

static cJSON *render(const char *overrides)
{
    cJSON *o = overrides ? cJSON_Parse(overrides) : NULL, *docs = NULL;
    operr err = {{0}};
    int rc = chart_render(CHART_DIR, "optipod", "optipod-system", o, NULL, &docs, &err);
    cJSON_Delete(o);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "chart_render: %d: %s", rc, err.msg);
    return docs;
}

/* Off by default (the PrometheusRule CRD may be absent); on, the ConfigMap carries the
 * dashboard and the PrometheusRule the rules file, unchanged. */
static void test_chart_ships_dashboard_and_rules_when_asked(void)
{
    cJSON *docs = render(NULL);
    ASSERT_EQ_INT(chart_count(docs, "PrometheusRule"), 0);
    ASSERT_EQ_INT(chart_count(docs, "ConfigMap"), 0);
    cJSON_Delete(docs);

    docs = render("{\"metrics\":{\"grafanaDashboard\":{\"enabled\":true},"
                  "\"prometheusRule\":{\"enabled\":true,\"release\":\"monitoring\"}}}");
    const cJSON *cm = chart_find(docs, "ConfigMap", "optipod-dashboard");
    ASSERT_NOT_NULL(cm);
    ASSERT_STR_EQ(cJSON_GetStringValue(chart_get(cm, "metadata.labels.grafana_dashboard")), "1");
    ASSERT_STR_EQ(cJSON_GetStringValue(chart_get(cm, "metadata.namespace")), "optipod-system");
    const char *json = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(chart_get(cm, "data"), "optipod.json"));
    ASSERT_NOT_NULL(json);
    size_t n;
    char *file = test_read_file(DASHBOARD, &n);
    /* the block scalar |- drops the file's final newline, nothing else */
    ASSERT_EQ_INT(strlen(json) + 1, n);
    ASSERT(strncmp(json, file, n - 1) == 0);
    free(file);

    const cJSON *pr = chart_find(docs, "PrometheusRule", "optipod");
    ASSERT_NOT_NULL(pr);
    ASSERT_STR_EQ(cJSON_GetStringValue(chart_get(pr, "apiVersion")), "monitoring.coreos.com/v1");
    ASSERT_STR_EQ(cJSON_GetStringValue(chart_get(pr, "metadata.labels.release")), "monitoring");
    char *rules_text = test_read_file(RULES, &n);
    cJSON *rules = NULL;
    operr err = {{0}};
    ASSERT_EQ_INT(yaml2json_parse(rules_text, n, &rules, &err), 0);
    free(rules_text);
    ASSERT(cJSON_Compare(cJSON_GetObjectItem(pr, "spec"), rules, 1));
    cJSON_Delete(rules);
    cJSON_Delete(docs);

    /* without the metrics Service nothing scrapes optipod: neither is rendered */
    docs = render("{\"metrics\":{\"enabled\":false,\"grafanaDashboard\":{\"enabled\":true},"
                  "\"prometheusRule\":{\"enabled\":true}}}");
    ASSERT_EQ_INT(chart_count(docs, "PrometheusRule") + chart_count(docs, "ConfigMap"), 0);
    cJSON_Delete(docs);
}

/* The subset renderer's .Files.Get: a chart file untouched by templating, sprig's indent,
 * and a clear error for a file the chart does not have or a pipe it does not know. */
static void test_files_get_indents_and_refuses_what_it_cannot_do(void)
{
    cJSON *ctx = cJSON_Parse("{\"Values\":{},\"Release\":{\"Name\":\"r\",\"Namespace\":\"n\"},"
                             "\"Chart\":{\"Version\":\"1\",\"AppVersion\":\"1\"},"
                             "\"Files\":{\"d/a.txt\":\"x {{ $labels.pod }}\\ny\\n\"}}");
    opbuf out;
    opbuf_init(&out, 1 << 16);
    operr err = {{0}};
    const char *t = "k: |\n{{ .Files.Get \"d/a.txt\" | indent 2 }}";
    ASSERT_EQ_INT(chart_render_text("t.yaml", t, strlen(t), ctx, &out, &err), 0);
    ASSERT_STR_EQ(opbuf_str(&out), "k: |\n  x {{ $labels.pod }}\n  y\n  ");
    opbuf_reset(&out);
    t = "{{ .Files.Get \"d/a.txt\" }}";
    ASSERT_EQ_INT(chart_render_text("t.yaml", t, strlen(t), ctx, &out, &err), 0);
    ASSERT_STR_EQ(opbuf_str(&out), "x {{ $labels.pod }}\ny\n");
    t = "{{ .Files.Get \"d/nope.txt\" }}";
    ASSERT_EQ_INT(chart_render_text("t.yaml", t, strlen(t), ctx, &out, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "t.yaml:1: .Files.Get: the chart has no file 'd/nope.txt'");
    t = "{{ .Files.Get \"d/a.txt\" | nindent 2 }}";
    ASSERT_EQ_INT(chart_render_text("t.yaml", t, strlen(t), ctx, &out, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "only '| indent N'");
    t = "{{ .Files.Get d/a.txt }}";
    ASSERT_EQ_INT(chart_render_text("t.yaml", t, strlen(t), ctx, &out, &err), -EINVAL);
    opbuf_release(&out);
    cJSON_Delete(ctx);
}

int main(void)
{
    TEST_RUN(test_rules_pass_promtool_check_rules);
    TEST_RUN(test_alerts_pass_promtool_test_rules);
    TEST_RUN(test_dashboard_is_an_importable_grafana_dashboard);
    TEST_RUN(test_chart_ships_dashboard_and_rules_when_asked);
    TEST_RUN(test_files_get_indents_and_refuses_what_it_cannot_do);
    return test_summary();
}
