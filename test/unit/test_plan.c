/*
 * optipod plan: the embedded sample (docs/sample) planned with the engine and
 * the CRD defaults, golden outputs in every format, patch export idempotence,
 * malformed inputs with their exact messages, OpenMetrics usage (rates from
 * counters, resets, OOM edges), pod-to-workload mapping, the binary's exit
 * statuses, and `kubectl kustomize` of an overlay with the written patches.
 *
 * UPDATE_GOLDEN=1 rewrites test/data/plan/golden/ from the current output.
 */
#include "test.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/quantity.h"
#include "plan/internal.h" /* the series, to check the rates read from counters */
#include "plan/plan.h"
#include "support/authproxy.h"
#include "support/proc.h"
#include "support/promserver.h"
#include "util/yaml2json.h"

#define SAMPLE_BASE  "docs/sample/base"
#define SAMPLE_USAGE "docs/sample/usage.csv"
#define SAMPLE_POL   "docs/sample/policy.yaml"
#define DATA         "test/data/plan"
#define MI           ((int64_t)1 << 20)

static void load_sample(plan *p, const char *policy)
{
    operr err;
    plan_init(p);
    if (policy && plan_load_policy(p, policy, &err) < 0)
        test_fail(__FILE__, __LINE__, "policy: %s", err.msg);
    if (plan_load_manifests(p, SAMPLE_BASE, &err) < 0)
        test_fail(__FILE__, __LINE__, "manifests: %s", err.msg);
    if (plan_load_usage(p, SAMPLE_USAGE, &err) < 0)
        test_fail(__FILE__, __LINE__, "usage: %s", err.msg);
    ASSERT_EQ_INT(plan_run(p, 0), 0);
}

static const plan_container *find(const plan *p, const char *wl, const char *ctr)
{
    for (size_t i = 0; i < p->nwl; i++)
        if (!strcmp(p->wl[i].name, wl))
            for (size_t k = 0; k < p->wl[i].nctrs; k++)
                if (!strcmp(p->wl[i].ctrs[k].name, ctr))
                    return &p->wl[i].ctrs[k];
    return NULL;
}

static bool has_step(const eng_res *r, eng_step_kind k)
{
    for (size_t i = 0; i < r->nsteps; i++)
        if (r->steps[i].kind == k)
            return true;
    return false;
}

static bool has_diag(const plan *p, const char *msg)
{
    for (size_t i = 0; i < p->ndiags; i++)
        if (!strcmp(p->diags[i], msg))
            return true;
    return false;
}

static void test_sample_plan_follows_the_model(void)
{
    plan p;
    load_sample(&p, NULL);
    ASSERT_EQ_INT(p.problems, 0);
    ASSERT_EQ_INT(p.ndiags, 0);
    ASSERT_EQ_INT(p.nwl, 5);
    /* sorted by namespace, kind, name */
    ASSERT_STR_EQ(p.wl[0].name, "cart");
    ASSERT_STR_EQ(p.wl[4].kind, "StatefulSet");
    ASSERT_EQ_INT(p.now, 1767571200 + 2 * 86400); /* the newest sample */

    /* web: diurnal CPU; request lowered to about the afternoon peak x 1.2 */
    const plan_container *web = find(&p, "web", "web");
    ASSERT_NOT_NULL(web);
    /* the default rolling window: the last 24h of the two days, both ends in */
    ASSERT_EQ_INT(web->c.use.samples, 3 * 721);
    ASSERT_EQ_INT(web->c.use.span_s, 86400);
    ASSERT_EQ_INT(web->res.cpu.decision, ENG_APPLY);
    ASSERT_CMP_INT(web->res.cpu.req, >=, 540);
    ASSERT_CMP_INT(web->res.cpu.req, <=, 640);
    ASSERT_EQ_INT(web->res.mem.req, 256 * MI); /* -50% cap of one step */
    ASSERT(has_step(&web->res.mem, ENG_STEP_DECREASE_CAP));

    /* cart: the leak's peak decides memory, not the percentile */
    const plan_container *cart = find(&p, "cart", "cart");
    ASSERT_EQ_INT(cart->res.mem.decision, ENG_APPLY);
    ASSERT(has_step(&cart->res.mem, ENG_STEP_PEAK_FLOOR));
    ASSERT_CMP_INT(cart->c.use.mem_peak_bytes, >, 850 * MI);
    ASSERT_CMP_INT(cart->res.mem.req, >=, cart->c.use.mem_peak_bytes);
    ASSERT_CMP_INT(cart->res.mem.req, <, cart->c.use.mem_peak_bytes + MI);
    ASSERT_CMP_INT(cart->c.use.mem_bytes * 12 / 10, <, cart->c.use.mem_peak_bytes);

    /* search: the JVM's GC spikes put P90 at ~1.2 cores: CPU goes up */
    const plan_container *search = find(&p, "search", "search");
    ASSERT_EQ_INT(search->res.cpu.decision, ENG_APPLY);
    ASSERT_CMP_INT(search->res.cpu.req, >, 1200);
    ASSERT_CMP_INT(search->res.cpu.req, <, 1600);

    /* worker: three OOM kills; memory bumped, capped by its limit (requests only) */
    const plan_container *worker = find(&p, "worker", "worker");
    ASSERT_EQ_INT(worker->c.use.oom_count, 3);
    ASSERT_EQ_INT(worker->c.use.oom_mem_bytes, 512 * MI);
    ASSERT_EQ_INT(worker->res.mem.decision, ENG_APPLY);
    ASSERT(has_step(&worker->res.mem, ENG_STEP_OOM_BUMP));
    ASSERT(has_step(&worker->res.mem, ENG_STEP_LIMIT_CAP));
    ASSERT_EQ_INT(worker->res.mem.req, 512 * MI);
    ASSERT_EQ_INT(worker->res.cpu.decision, ENG_UNCHANGED);

    /* checkout: the app and its envoy sidecar each get their own numbers */
    const plan_container *app = find(&p, "checkout", "checkout");
    const plan_container *envoy = find(&p, "checkout", "envoy");
    ASSERT_EQ_INT(app->c.use.samples, 721);
    ASSERT_EQ_INT(envoy->c.use.samples, 721);
    ASSERT_EQ_INT(app->res.cpu.req, 360);
    ASSERT_EQ_INT(envoy->res.cpu.req, 50); /* 100m halved: the decrease cap */
    ASSERT_CMP_INT(envoy->c.use.mem_peak_bytes, <, 50 * MI);
    ASSERT_CMP_INT(app->c.use.mem_bytes, >, 300 * MI);
    plan_release(&p);
}

static void test_sample_keep_ratio_policy_moves_limits(void)
{
    plan p;
    load_sample(&p, SAMPLE_POL);
    ASSERT_NEAR(p.eng.percentile, 0.95, 1e-9);
    const plan_container *worker = find(&p, "worker", "worker");
    /* max(512Mi + 100Mi, 512Mi x 1.2) = 614.4Mi, rounded up to 615Mi; limit x 512/384 */
    ASSERT_EQ_INT(worker->res.mem.req, 615 * MI);
    ASSERT(worker->res.mem.has_lim);
    ASSERT_EQ_INT(worker->res.mem.lim, 820 * MI);
    const plan_container *cart = find(&p, "cart", "cart");
    ASSERT_EQ_INT(cart->res.mem.lim, 2 * cart->res.mem.req);
    plan_release(&p);
}

/* --- golden files ------------------------------------------------------------------------- */

static void check_golden(const char *name, const char *got, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, DATA "/golden/%s", name);
    const char *upd = getenv("UPDATE_GOLDEN");
    if (upd && *upd == '1') {
        FILE *f = fopen(path, "w");
        ASSERT_NOT_NULL(f);
        ASSERT_EQ_INT(fwrite(got, 1, len, f), len);
        fclose(f);
    }
    size_t glen = 0;
    char *want = test_read_file(path, &glen);
    if (glen != len || memcmp(want, got, len) != 0) {
        size_t i = 0;
        while (i < len && i < glen && want[i] == got[i])
            i++;
        size_t line = 1;
        for (size_t k = 0; k < i; k++)
            line += got[k] == '\n';
        free(want);
        test_fail(__FILE__, __LINE__,
                  "%s differs from the output at line %zu (UPDATE_GOLDEN=1 "
                  "rewrites it)",
                  path, line);
    }
    free(want);
}

static void test_golden_outputs(void)
{
    static const char *const names[] = {"sample.table", "sample.json", "sample.yaml", "sample.csv"};
    plan p;
    load_sample(&p, NULL);
    for (int f = 0; f < 4; f++) {
        opbuf b;
        opbuf_init(&b, OPBUF_DEFAULT_MAX);
        ASSERT_EQ_INT(plan_render(&p, (plan_fmt)f, &b), 0);
        check_golden(names[f], opbuf_str(&b), b.len);
        opbuf_release(&b);
    }
    plan_release(&p);
    /* the malformed set too: the table still lists what was planned */
    operr err;
    plan_init(&p);
    ASSERT_EQ_INT(plan_load_policy(&p, DATA "/policy-quick.yaml", &err), 0);
    ASSERT_EQ_INT(plan_load_manifests(&p, DATA "/bad", &err), 0);
    ASSERT_EQ_INT(plan_load_usage(&p, DATA "/bad/usage.csv", &err), 0);
    ASSERT_EQ_INT(plan_run(&p, 0), 0);
    opbuf b;
    opbuf_init(&b, OPBUF_DEFAULT_MAX);
    ASSERT_EQ_INT(plan_render(&p, PLAN_FMT_TABLE, &b), 0);
    check_golden("bad.table", opbuf_str(&b), b.len);
    opbuf_reset(&b);
    ASSERT_EQ_INT(plan_render(&p, PLAN_FMT_CSV, &b), 0);
    check_golden("bad.csv", opbuf_str(&b), b.len);
    opbuf_release(&b);
    plan_release(&p);
}

static void test_yaml_output_parses_back_like_json(void)
{
    /* the yaml rendering is the json document: check through yaml2json */
    plan p;
    load_sample(&p, NULL);
    opbuf y, j;
    opbuf_init(&y, OPBUF_DEFAULT_MAX);
    opbuf_init(&j, OPBUF_DEFAULT_MAX);
    ASSERT_EQ_INT(plan_render(&p, PLAN_FMT_YAML, &y), 0);
    ASSERT_EQ_INT(plan_render(&p, PLAN_FMT_JSON, &j), 0);
    cJSON *a = NULL, *b = cJSON_Parse(j.data);
    operr err;
    ASSERT_EQ_INT(yaml2json_parse(y.data, y.len, &a, &err), 0);
    ASSERT_NOT_NULL(b);
    ASSERT(cJSON_Compare(a, b, true));
    cJSON_Delete(a);
    cJSON_Delete(b);
    opbuf_release(&y);
    opbuf_release(&j);
    plan_release(&p);
}

/* --- export ------------------------------------------------------------------------------- */

static char tmp_root[PATH_MAX];

static const char *tmpdir(void)
{
    if (!tmp_root[0]) {
        snprintf(tmp_root, sizeof tmp_root, "/tmp/optipod-test-plan-XXXXXX");
        ASSERT_NOT_NULL(mkdtemp(tmp_root));
    }
    return tmp_root;
}

/* Write text into tmpdir()/name; the path goes to path (PATH_MAX + 16 bytes). */
static void write_tmp(char *path, const char *name, const char *text)
{
    snprintf(path, PATH_MAX + 16, "%s/%s", tmpdir(), name);
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    fputs(text, f);
    ASSERT_EQ_INT(fclose(f), 0);
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return test_read_file(path, len);
}

static void test_export_is_idempotent(void)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/idem/patches", tmpdir());
    plan p;
    load_sample(&p, NULL);
    operr err;
    size_t n = 0;
    ASSERT_EQ_INT(plan_export(&p, dir, &n, &err), 0);
    ASSERT_EQ_INT(n, 5);
    /* a file we did not write stays */
    char foreign[PATH_MAX + 16];
    snprintf(foreign, sizeof foreign, "%s/NOTES.md", dir);
    FILE *f = fopen(foreign, "w");
    ASSERT_NOT_NULL(f);
    fputs("reviewer notes\n", f);
    fclose(f);
    static const char *const files[] = {"kustomization.yaml",
                                        "deployment-shop-cart.yaml",
                                        "deployment-shop-web.yaml",
                                        "deployment-shop-worker.yaml",
                                        "deployment-shop-checkout.yaml",
                                        "statefulset-shop-search.yaml"};
    char *first[6];
    size_t flen[6];
    struct stat st0[6];
    for (int i = 0; i < 6; i++) {
        first[i] = slurp(dir, files[i], &flen[i]);
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        ASSERT_EQ_INT(stat(path, &st0[i]), 0);
    }
    plan_release(&p);
    /* a second, independent run over the same inputs */
    load_sample(&p, NULL);
    ASSERT_EQ_INT(plan_export(&p, dir, &n, &err), 0);
    for (int i = 0; i < 6; i++) {
        size_t len;
        char *again = slurp(dir, files[i], &len);
        ASSERT_EQ_INT(len, flen[i]);
        ASSERT(memcmp(again, first[i], len) == 0);
        char path[PATH_MAX + 64];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        ASSERT_EQ_INT(stat(path, &st), 0);
        ASSERT_EQ_INT(st.st_ino, st0[i].st_ino); /* not even rewritten */
        free(again);
    }
    ASSERT_EQ_INT(access(foreign, F_OK), 0);
    /* the patch: only name and resources of the changed containers */
    ASSERT_STR_EQ(first[3], "apiVersion: apps/v1\n"
                            "kind: Deployment\n"
                            "metadata:\n"
                            "  name: worker\n"
                            "  namespace: shop\n"
                            "spec:\n"
                            "  template:\n"
                            "    spec:\n"
                            "      containers:\n"
                            "      - name: worker\n"
                            "        resources:\n"
                            "          requests:\n"
                            "            memory: 512Mi\n");
    ASSERT_STR_CONTAINS(first[0], "kind: Component\npatches:\n"
                                  "- path: deployment-shop-cart.yaml\n"
                                  "  target:\n"
                                  "    group: apps\n"
                                  "    version: v1\n"
                                  "    kind: Deployment\n"
                                  "    name: cart\n"
                                  "    namespace: shop\n");
    for (int i = 0; i < 6; i++)
        free(first[i]);
    /* the committed sample patches are what the plan writes today */
    size_t len, glen;
    char *got = slurp(dir, "deployment-shop-checkout.yaml", &len);
    char *want = test_read_file("docs/sample/patches/deployment-shop-checkout.yaml", &glen);
    ASSERT_EQ_INT(len, glen);
    ASSERT(memcmp(got, want, len) == 0);
    free(got);
    free(want);
    plan_release(&p);
}

static void test_helm_values_fragment(void)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/helm", tmpdir());
    plan p;
    load_sample(&p, SAMPLE_POL);
    operr err;
    size_t n = 0;
    ASSERT_EQ_INT(plan_export_helm(&p, dir, &n, &err), 0);
    ASSERT_EQ_INT(n, 5);
    size_t len, len2;
    char *first = slurp(dir, "values-optipod.yaml", &len);
    ASSERT_EQ_INT(plan_export_helm(&p, dir, &n, &err), 0);
    char *again = slurp(dir, "values-optipod.yaml", &len2);
    ASSERT_EQ_INT(len, len2);
    ASSERT(memcmp(first, again, len) == 0);
    ASSERT_STR_CONTAINS(first, "  deployment-shop-worker:\n"
                               "    kind: Deployment\n"
                               "    namespace: shop\n"
                               "    name: worker\n"
                               "    containers:\n"
                               "      worker:\n"
                               "        resources:\n"
                               "          limits:\n"
                               "            memory: 820Mi\n"
                               "          requests:\n"
                               "            memory: 615Mi\n");
    cJSON *doc = NULL;
    ASSERT_EQ_INT(yaml2json_parse(first, len, &doc, &err), 0);
    const cJSON *envoy = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "workloads"),
                                             "deployment-shop-checkout"),
            "containers"),
        "envoy");
    const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(envoy, "resources"),
                                         "requests"),
        "cpu");
    ASSERT(cJSON_IsString(cpu));
    ASSERT_STR_EQ(cpu->valuestring, "50m");
    cJSON_Delete(doc);
    free(first);
    free(again);
    plan_release(&p);
}

static void test_kubectl_kustomize_builds_the_overlay(void)
{
    if (system("command -v kubectl >/dev/null 2>&1") != 0)
        test_skip("kubectl is not on the PATH: the overlay build is not checked");
    char root[PATH_MAX], cwd[PATH_MAX];
    ASSERT_NOT_NULL(getcwd(cwd, sizeof cwd));
    snprintf(root, sizeof root, "%s/kustomize", tmpdir());
    char patches[PATH_MAX + 16], overlay[PATH_MAX + 16], base[PATH_MAX + 32];
    snprintf(patches, sizeof patches, "%s/patches", root);
    snprintf(overlay, sizeof overlay, "%s/overlay", root);
    snprintf(base, sizeof base, "%s/" SAMPLE_BASE, cwd);
    plan p;
    load_sample(&p, SAMPLE_POL);
    operr err;
    ASSERT_EQ_INT(plan_export(&p, patches, NULL, &err), 0);
    plan_release(&p);
    ASSERT_EQ_INT(mkdir(overlay, 0755), 0);
    /* the base is a directory outside the overlay: a copy keeps the build
     * inside kustomize's load restrictions */
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s/base'", base, root);
    ASSERT_EQ_INT(system(cmd), 0);
    char kpath[PATH_MAX + 64];
    snprintf(kpath, sizeof kpath, "%s/kustomization.yaml", overlay);
    FILE *f = fopen(kpath, "w");
    ASSERT_NOT_NULL(f);
    fputs("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
          "resources:\n  - ../base\ncomponents:\n  - ../patches\n",
          f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "kubectl kustomize '%s' > '%s/out.yaml' 2>&1", overlay, root);
    int rc = system(cmd);
    size_t len;
    char *out = slurp(root, "out.yaml", &len);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "kubectl kustomize failed: %s", out);
    /* the worker's OOM bump with its limit (KeepRatio), the sidecar apart */
    ASSERT_STR_CONTAINS(out, "        name: worker\n"
                             "        resources:\n"
                             "          limits:\n"
                             "            cpu: 500m\n"
                             "            memory: 820Mi\n"
                             "          requests:\n"
                             "            cpu: 250m\n"
                             "            memory: 615Mi\n");
    ASSERT_STR_CONTAINS(out, "        name: envoy\n"
                             "        resources:\n"
                             "          limits:\n"
                             "            cpu: 100m\n"
                             "            memory: 64Mi\n"
                             "          requests:\n"
                             "            cpu: 50m\n"
                             "            memory: 64Mi\n");
    ASSERT_STR_CONTAINS(out, "image: envoyproxy/envoy:v1.31.0"); /* the base survives */
    free(out);
}

/* --- malformed inputs --------------------------------------------------------------------- */

static void test_malformed_inputs_are_reported_and_the_rest_planned(void)
{
    plan p;
    operr err;
    plan_init(&p);
    ASSERT_EQ_INT(plan_load_policy(&p, DATA "/policy-quick.yaml", &err), 0);
    ASSERT_EQ_INT(plan_load_manifests(&p, DATA "/bad", &err), 0);
    ASSERT_EQ_INT(plan_load_usage(&p, DATA "/bad/usage.csv", &err), 0);
    ASSERT_EQ_INT(plan_run(&p, 0), 0);
    ASSERT(has_diag(&p, DATA "/bad/apps.yaml: document 2: Service api: skipped: kind Service "
                             "is not a workload optipod sizes"));
    ASSERT(has_diag(&p, DATA "/bad/broken.yaml: yaml: line 6 column 5: while parsing a flow "
                             "mapping: did not find expected ',' or '}'; file skipped"));
    ASSERT(has_diag(&p, DATA "/bad/usage.csv:5: cpu_cores \"zero\" is not a number; line "
                             "skipped"));
    ASSERT(has_diag(&p, DATA "/bad/usage.csv:7: 6 fields, the header has 7; line skipped"));
    ASSERT(has_diag(&p, DATA "/bad/apps.yaml: Deployment prod/api: container \"exporter\": no "
                             "usage data; not planned"));
    ASSERT_EQ_INT(p.problems, 5);
    ASSERT_EQ_INT(p.ndiags, 5);
    /* the rest: api (5 good lines of 7), the DaemonSet and the StatefulSet's two pods */
    ASSERT_EQ_INT(p.nwl, 3);
    const plan_container *api = find(&p, "api", "api");
    ASSERT_EQ_INT(api->c.use.samples, 5);
    ASSERT_EQ_INT(api->res.decision, ENG_APPLY);
    const plan_container *agent = find(&p, "agent", "agent");
    ASSERT_EQ_INT(agent->c.use.samples, 4);
    const plan_container *pg = find(&p, "db", "postgres");
    ASSERT_EQ_INT(pg->c.use.samples, 3); /* db-backup-... is not a pod of StatefulSet db */
    ASSERT_EQ_INT(pg->c.use.mem_peak_bytes, 600 * MI);
    ASSERT(!find(&p, "api", "exporter")->has_usage);
    plan_release(&p);
}

static void test_csv_header_and_field_errors(void)
{
    plan p;
    plan_init(&p);
    const char *no_header = "1,prod,a-1,a,0.1,1,0\n";
    ASSERT_EQ_INT(plan_usage_csv(&p, "u.csv", no_header, strlen(no_header)), 0);
    ASSERT_STR_EQ(p.diags[0], "u.csv:1: not a usage CSV header (needs timestamp, namespace, pod, "
                              "container and cpu_cores or memory_bytes); file skipped");
    plan_release(&p);
    plan_init(&p);
    const char *rows = "namespace,pod,container,timestamp,memory_bytes,oom,workload\r\n"
                       "ns,p1,c,100,10,,batch\r\n"
                       "ns,p1,c,-5,10,0,batch\n"
                       ",p1,c,100,10,0,batch\n"
                       "ns,p1,c,200,-1,0,batch\n"
                       "ns,p1,c,300,20,2,batch\n"
                       "ns,p1,c,400,30,1,batch\n";
    ASSERT_EQ_INT(plan_usage_csv(&p, "u.csv", rows, strlen(rows)), 0);
    ASSERT_EQ_INT(p.ndiags, 4);
    ASSERT_STR_EQ(p.diags[0], "u.csv:3: timestamp \"-5\" is not Unix seconds; line skipped");
    ASSERT_STR_EQ(p.diags[1], "u.csv:4: namespace, pod and container must be set; line skipped");
    ASSERT_STR_EQ(p.diags[2], "u.csv:5: memory_bytes \"-1\" is not a number; line skipped");
    ASSERT_STR_EQ(p.diags[3], "u.csv:6: oom \"2\" is not 0 or 1; line skipped");
    ASSERT_EQ_INT(p.newest, 400);
    /* the workload column maps a pod that no naming rule would */
    const char *m = "apiVersion: batch/v1\nkind: StatefulSet\nmetadata: {name: batch, namespace: "
                    "ns}\nspec: {template: {spec: {containers: [{name: c}]}}}\n";
    char path[PATH_MAX + 16];
    write_tmp(path, "wlcol.yaml", m);
    operr err;
    ASSERT_EQ_INT(plan_load_manifests(&p, path, &err), 0);
    ASSERT_EQ_INT(plan_run(&p, 0), 0);
    const plan_container *c = find(&p, "batch", "c");
    ASSERT(c->has_usage);
    ASSERT_EQ_INT(c->c.use.samples, 2);
    ASSERT_EQ_INT(c->c.use.oom_count, 1);
    ASSERT_EQ_INT(c->c.use.oom_mem_bytes, 30);
    /* 2 samples are not enough data, but memory still acts on the recent OOM */
    ASSERT_EQ_INT(c->res.cpu.decision, ENG_SKIPPED);
    ASSERT_EQ_INT(c->res.cpu.reason, ENG_R_INSUFFICIENT_DATA);
    ASSERT_EQ_INT(c->res.mem.decision, ENG_APPLY);
    ASSERT(has_step(&c->res.mem, ENG_STEP_OOM_BUMP));
    plan_release(&p);
}

static void test_many_bad_lines_are_counted_not_listed(void)
{
    plan p;
    plan_init(&p);
    opbuf b;
    opbuf_init(&b, OPBUF_DEFAULT_MAX);
    opbuf_puts(&b, "timestamp,namespace,pod,container,cpu_cores\n");
    for (int i = 0; i < 50; i++)
        opbuf_puts(&b, "x,ns,p,c,1\n");
    ASSERT_EQ_INT(plan_usage_csv(&p, "u.csv", b.data, b.len), 0);
    ASSERT_EQ_INT(p.ndiags, 21);
    ASSERT_EQ_INT(p.problems, 20);
    ASSERT_STR_EQ(p.diags[20], "u.csv: 30 more malformed lines not listed");
    opbuf_release(&b);
    plan_release(&p);
}

/* --- OpenMetrics -------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_openmetrics_rates_resets_and_ooms(void)
{
    plan p;
    plan_init(&p);
    const char *om =
        "# TYPE container_cpu_usage_seconds_total counter\n"
        "container_cpu_usage_seconds_total{namespace=\"ns\",pod=\"web-5d8f9-abcde\","
        "container=\"web\"} 100 1000\n"
        "container_cpu_usage_seconds_total{namespace=\"ns\",pod=\"web-5d8f9-abcde\","
        "container=\"web\"} 130 1060\n"
        "container_cpu_usage_seconds_total{namespace=\"ns\",pod=\"web-5d8f9-abcde\","
        "container=\"web\"} 190 1120\n"
        /* a restart: the counter starts over */
        "container_cpu_usage_seconds_total{namespace=\"ns\",pod=\"web-5d8f9-abcde\","
        "container=\"web\"} 12 1180\n"
        /* 420 s later: alone in its 5m window, so no rate (as in Prometheus) */
        "container_cpu_usage_seconds_total{namespace=\"ns\",pod=\"web-5d8f9-abcde\","
        "container=\"web\"} 54 1600\n"
        "container_cpu_usage_seconds_total{namespace=\"ns\",pod=\"web-5d8f9-abcde\","
        "container=\"web\"} 60 1660\n"
        "container_cpu_usage_seconds_total{namespace=\"ns\",pod=\"web-5d8f9-abcde\"} 999 1600\n"
        "container_memory_working_set_bytes{namespace=\"ns\",pod=\"web-5d8f9-abcde\","
        "container=\"web\"} 1048576 1000\n"
        "container_memory_working_set_bytes{container=\"web\",namespace=\"ns\","
        "pod=\"web-5d8f9-abcde\"} 2097152 1100\n"
        "kube_pod_container_status_last_terminated_reason{namespace=\"ns\","
        "pod=\"web-5d8f9-abcde\",container=\"web\",reason=\"OOMKilled\"} 0 1000\n"
        "kube_pod_container_status_last_terminated_reason{namespace=\"ns\","
        "pod=\"web-5d8f9-abcde\",container=\"web\",reason=\"OOMKilled\"} 1 1100\n"
        "kube_pod_container_status_last_terminated_reason{namespace=\"ns\","
        "pod=\"web-5d8f9-abcde\",container=\"web\",reason=\"OOMKilled\"} 1 1160\n"
        "kube_pod_container_status_last_terminated_reason{namespace=\"ns\","
        "pod=\"web-5d8f9-abcde\",container=\"web\",reason=\"Error\"} 1 1160\n"
        "node_load1 3 1000\n"
        "container_memory_working_set_bytes{namespace=\"ns\",pod=\"p\",container=\"c\"} 5\n"
        "container_memory_working_set_bytes{namespace=\"ns\",pod=\"p\",container=\"c\"} x 1\n"
        "container_memory_working_set_bytes{namespace=\"ns,pod=\"p\"} 1 1\n"
        "# EOF\n";
    ASSERT_EQ_INT(plan_usage_openmetrics(&p, "u.om", om, strlen(om)), 0);
    ASSERT_EQ_INT(p.ndiags, 3);
    ASSERT_STR_EQ(p.diags[0], "u.om:16: no timestamp (usage samples need one); line skipped");
    ASSERT_STR_EQ(p.diags[1], "u.om:17: bad value; line skipped");
    ASSERT_STR_EQ(p.diags[2], "u.om:18: bad label separator; line skipped");
    const char *m = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: "
                    "ns}\nspec: {template: {spec: {containers: [{name: web}]}}}\n";
    char path[PATH_MAX + 16];
    write_tmp(path, "om.yaml", m);
    operr err;
    ASSERT_EQ_INT(plan_load_manifests(&p, path, &err), 0);
    ASSERT_EQ_INT(plan_run(&p, 0), 0);
    const plan_container *c = find(&p, "web", "web");
    ASSERT(c->has_usage);
    /* rates: 30/60, 90/120, (90 + 12)/180 (the reset), none at 1600, 6/60 at 1660 */
    ASSERT_EQ_INT(c->c.use.samples, 4);
    const plan_series *ps = opmap_get(&p.series, "ns\x1fweb-5d8f9-abcde\x1fweb");
    ASSERT_NOT_NULL(ps);
    ASSERT_EQ_INT(ps->cpu.n, 4);
    double r[4];
    for (size_t i = 0; i < 4; i++)
        r[i] = ps->cpu.v[i].v;
    qsort(r, 4, sizeof *r, cmp_double);
    ASSERT_NEAR(r[0], 0.1, 1e-9);
    ASSERT_NEAR(r[1], 0.5, 1e-9);
    ASSERT_NEAR(r[2], 102.0 / 180.0, 1e-9);
    ASSERT_NEAR(r[3], 0.75, 1e-9);
    ASSERT_EQ_INT(c->c.use.mem_peak_bytes, 2 * MI);
    ASSERT_EQ_INT(c->c.use.oom_count, 1); /* one 0 -> 1 edge */
    ASSERT_EQ_INT(c->c.use.oom_last, 1100);
    ASSERT_EQ_INT(c->c.use.oom_mem_bytes, 2 * MI);
    ASSERT_EQ_INT(p.now, 1660);
    plan_release(&p);
}

/* A usage file is read as a stream: lines cut by the reader's chunks, a line longer than a chunk,
 * and a last line without a newline all read as they would from memory. */
static void test_usage_file_is_streamed(void)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/stream.csv", tmpdir());
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    fputs("timestamp,namespace,pod,container,cpu_cores\n", f); /* line 1 */
    fputs("1000,ns,web-6c7d8-xk2p9,c,0.5\n", f);               /* 2 */
    for (int i = 0; i < 5000; i++)                             /* 3: too long */
        fputc('x', f);
    fputs("\n1001,ns,web-6c7d8-xk2p9,c,0.5\n", f); /* 4 */
    for (int i = 0; i < (3 << 20) / 2; i++)        /* 5: longer than a whole chunk */
        fputc(i % 2 ? ',' : '1', f);
    fputc('\n', f);
    for (int i = 0; i < 60000; i++) /* 1.8 MB more: lines across chunk ends */
        fprintf(f, "%d,ns,web-6c7d8-xk2p9,c,0.%03d\n", 2000 + i, i % 1000);
    fputs("70000,ns,web-6c7d8-xk2p9,c,2", f); /* no newline */
    fclose(f);
    plan p;
    plan_init(&p);
    operr err;
    ASSERT_EQ_INT(plan_load_usage(&p, path, &err), 0);
    ASSERT_EQ_INT(p.ndiags, 2);
    ASSERT_STR_CONTAINS(p.diags[0], "stream.csv:3: longer than 4095 bytes; line skipped");
    ASSERT_STR_CONTAINS(p.diags[1], "stream.csv:5: longer than 4095 bytes; line skipped");
    const plan_series *s = opmap_get(&p.series, "ns\x1fweb-6c7d8-xk2p9\x1f"
                                                "c");
    ASSERT_NOT_NULL(s);
    /* the default 24 h window before the newest sample (70000), and one more sample before it */
    ASSERT_EQ_INT(p.newest, 70000);
    ASSERT_EQ_INT(s->cpu.v[s->cpu.n - 1].t, 70000);
    ASSERT_NEAR(s->cpu.v[s->cpu.n - 1].v, 2, 1e-9);
    ASSERT_EQ_INT(s->cpu.n, 2 + 60000 + 1); /* all of 1000..70000 is within a day */
    plan_release(&p);
}

/* Only what the decision window can use is kept, whatever the file's length: the newest sample's
 * window, or the window of a decision time set first. */
static void test_usage_keeps_the_window_only(void)
{
    opbuf u;
    opbuf_init(&u, 0);
    ASSERT_EQ_INT(opbuf_puts(&u, "timestamp,namespace,pod,container,cpu_cores,memory_bytes\n"), 0);
    const int64_t t0 = 1767571200;
    for (int h = 0; h <= 24 * 30; h++) /* 30 days, hourly */
        (void)opbuf_printf(&u, "%lld,ns,web-6c7d8-xk2p9,c,%d.%02d,%d\n",
                           (long long)(t0 + h * 3600LL), h % 3, h % 100, 1000000 + h);
    ASSERT_EQ_INT(opbuf_error(&u), 0);
    static const char m[] = "kind: Deployment\nmetadata: {name: web, namespace: ns}\n"
                            "spec: {template: {spec: {containers: [{name: c}]}}}\n";
    char path[PATH_MAX + 16];
    write_tmp(path, "window.yaml", m);
    operr err;
    for (int fixed = 0; fixed < 2; fixed++) {
        plan p;
        plan_init(&p);
        int64_t at = fixed ? t0 + 10 * 86400 : t0 + 30 * 86400;
        if (fixed)
            plan_set_now(&p, at);
        ASSERT_EQ_INT(plan_load_manifests(&p, path, &err), 0);
        ASSERT_EQ_INT(plan_usage_csv(&p, "u.csv", u.data, u.len), 0);
        const plan_series *s = opmap_get(&p.series, "ns\x1fweb-6c7d8-xk2p9\x1f"
                                                    "c");
        ASSERT_NOT_NULL(s);
        /* 25 hourly samples in [at - 24h, at] and the one before */
        ASSERT_EQ_INT(s->cpu.n, 26);
        ASSERT_EQ_INT(s->mem.n, 26);
        ASSERT_EQ_INT(s->cpu.v[0].t, at - 25 * 3600);
        ASSERT_EQ_INT(s->cpu.v[25].t, at);
        ASSERT_EQ_INT(plan_run(&p, 0), 0);
        ASSERT_EQ_INT(p.now, at);
        ASSERT_EQ_INT(p.wl[0].ctrs[0].c.use.samples, 25);
        ASSERT_EQ_INT(p.wl[0].ctrs[0].c.use.mem_peak_bytes, 1000000 + (at - t0) / 3600);
        ASSERT_EQ_INT(p.problems, 0);
        plan_release(&p);
    }
    /* A decision time given only to plan_run, before what was kept: said, not hidden. */
    plan p;
    plan_init(&p);
    ASSERT_EQ_INT(plan_load_manifests(&p, path, &err), 0);
    ASSERT_EQ_INT(plan_usage_csv(&p, "u.csv", u.data, u.len), 0);
    ASSERT_EQ_INT(plan_run(&p, t0 + 10 * 86400), 0);
    ASSERT(p.problems > 0);
    ASSERT_STR_CONTAINS(p.diags[0], "were not kept while reading");
    plan_release(&p);
    opbuf_release(&u);
}

static void test_pods_map_to_workloads_by_name(void)
{
    plan p;
    plan_init(&p);
    const char *m = "kind: Deployment\nmetadata: {name: web, namespace: a}\n"
                    "spec: {template: {spec: {containers: [{name: c}]}}}\n---\n"
                    "kind: Deployment\nmetadata: {name: web-api, namespace: a}\n"
                    "spec: {template: {spec: {containers: [{name: c}]}}}\n---\n"
                    "kind: StatefulSet\nmetadata: {name: web, namespace: a}\n"
                    "spec: {template: {spec: {containers: [{name: c}]}}}\n---\n"
                    "kind: DaemonSet\nmetadata: {name: node, namespace: a}\n"
                    "spec: {template: {spec: {containers: [{name: c}]}}}\n---\n"
                    "kind: Deployment\nmetadata: {name: web}\n"
                    "spec: {template: {spec: {containers: [{name: c}]}}}\n";
    char path[PATH_MAX + 16];
    write_tmp(path, "map.yaml", m);
    operr err;
    ASSERT_EQ_INT(plan_load_manifests(&p, path, &err), 0);
    const char *u = "timestamp,namespace,pod,container,cpu_cores\n"
                    "1,a,web-6c7d8-xk2p9,c,1\n"        /* Deployment web */
                    "1,a,web-api-6c7d8-xk2p9,c,2\n"    /* Deployment web-api */
                    "2,a,web-api-6c7d8-aaaaa,c,2\n"    /* Deployment web-api */
                    "1,a,web-0,c,3\n"                  /* StatefulSet web */
                    "1,a,node-q8r7z,c,4\n"             /* DaemonSet node */
                    "1,a,node-q8r7z-extra,c,5\n"       /* nothing */
                    "1,default,web-6c7d8-xk2p9,c,6\n"  /* Deployment default/web */
                    "1,b,web-6c7d8-xk2p9,c,7\n"        /* nothing: another namespace */
                    "1,a,web-6c7d8-xk2p9,sidecar,8\n"; /* not in the manifest: ignored */
    ASSERT_EQ_INT(plan_usage_csv(&p, "u.csv", u, strlen(u)), 0);
    ASSERT_EQ_INT(plan_run(&p, 0), 0);
    ASSERT_EQ_INT(p.nwl, 5);
    /* a/Deployment/web, a/Deployment/web-api, a/DaemonSet/node, a/StatefulSet/web, default/web */
    ASSERT_STR_EQ(p.wl[0].kind, "DaemonSet");
    ASSERT_EQ_INT(p.wl[0].ctrs[0].c.use.samples, 1);
    ASSERT_NEAR(p.wl[0].ctrs[0].c.use.cpu_cores, 4, 1e-9);
    ASSERT_STR_EQ(p.wl[1].name, "web");
    ASSERT_EQ_INT(p.wl[1].ctrs[0].c.use.samples, 1);
    ASSERT_NEAR(p.wl[1].ctrs[0].c.use.cpu_cores, 1, 1e-9);
    ASSERT_STR_EQ(p.wl[2].name, "web-api");
    ASSERT_EQ_INT(p.wl[2].ctrs[0].c.use.samples, 2);
    ASSERT_STR_EQ(p.wl[3].kind, "StatefulSet");
    ASSERT_NEAR(p.wl[3].ctrs[0].c.use.cpu_cores, 3, 1e-9);
    ASSERT_STR_EQ(p.wl[4].ns, "default");
    ASSERT_NEAR(p.wl[4].ctrs[0].c.use.cpu_cores, 6, 1e-9);
    ASSERT_EQ_INT(p.problems, 0);
    plan_release(&p);
}

static void test_kustomization_resources_are_followed(void)
{
    plan p;
    plan_init(&p);
    operr err;
    ASSERT_EQ_INT(plan_load_manifests(&p, DATA "/kust", &err), 0);
    ASSERT_EQ_INT(p.nwl, 2); /* app.yaml and extra/more.yml; not ignored.yaml */
    ASSERT_STR_EQ(p.wl[0].name, "app");
    ASSERT_STR_EQ(p.wl[0].file, DATA "/kust/app.yaml");
    ASSERT_STR_EQ(p.wl[1].file, DATA "/kust/extra/more.yml");
    ASSERT_EQ_INT(p.problems, 0);
    ASSERT_EQ_INT(plan_load_manifests(&p, DATA "/nope", &err), -ENOENT);
    ASSERT_STR_EQ(err.msg, "'" DATA "/nope': No such file or directory");
    ASSERT_EQ_INT(plan_load_manifests(&p, DATA "/kust/app.yaml", &err), 0);
    ASSERT_STR_EQ(p.diags[0], DATA "/kust/app.yaml: Deployment kust/app: duplicate (first in " DATA
                                   "/kust/app.yaml); skipped");
    plan_release(&p);
}

static void test_bad_quantities_and_policy(void)
{
    plan p;
    plan_init(&p);
    const char *m = "kind: Deployment\nmetadata: {name: q, namespace: a}\n"
                    "spec: {template: {spec: {containers: [{name: c, resources: {requests: "
                    "{cpu: lots, memory: 64Mi}}}, {image: x}]}}}\n";
    char path[PATH_MAX + 16];
    write_tmp(path, "q.yaml", m);
    operr err;
    ASSERT_EQ_INT(plan_load_manifests(&p, path, &err), 0);
    ASSERT_EQ_INT(p.ndiags, 2);
    ASSERT_STR_CONTAINS(p.diags[0], ": Deployment a/q: container \"c\": resources.requests.cpu: ");
    ASSERT_STR_CONTAINS(p.diags[0], "; treated as unset");
    ASSERT_STR_CONTAINS(p.diags[1], ": Deployment a/q: containers[1] has no name; skipped");
    ASSERT(!p.wl[0].ctrs[0].c.cpu.has_req);
    ASSERT(p.wl[0].ctrs[0].c.mem.has_req);
    /* a policy file that is not a valid OptimizationPolicy */
    write_tmp(path, "pol.yaml",
              "metadata: {name: x}\nspec: {selector: {workloadSelector: {}}, metricsConfig: "
              "{percentile: P42}}\n");
    ASSERT_EQ_INT(plan_load_policy(&p, path, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "spec.metricsConfig.percentile");
    ASSERT_NEAR(p.eng.percentile, 0.90, 1e-9); /* the defaults stay */
    plan_release(&p);
}

/* --- the binary --------------------------------------------------------------------------- */

static int run_plan(const char *args)
{
    char cmd[4 * PATH_MAX], out[PATH_MAX], err[PATH_MAX];
    snprintf(cmd, sizeof cmd, "plan %s", args);
    snprintf(out, sizeof out, "%s/cmd.out", tmpdir());
    snprintf(err, sizeof err, "%s/cmd.err", tmpdir());
    return proc_run_optipod(cmd, out, err, NULL, NULL);
}

static void test_binary_exit_statuses(void)
{
    char args[2 * PATH_MAX];
    snprintf(args, sizeof args, "-f %s --usage %s --out %s/cmd-patches", SAMPLE_BASE, SAMPLE_USAGE,
             tmpdir());
    ASSERT_EQ_INT(run_plan(args), 0);
    size_t len;
    char *out = slurp(tmpdir(), "cmd.out", &len);
    size_t glen;
    char *want = test_read_file(DATA "/golden/sample.table", &glen);
    ASSERT(len > glen && memcmp(out, want, glen) == 0);
    ASSERT_STR_CONTAINS(out + glen, "wrote 5 patches and kustomization.yaml to ");
    free(out);
    free(want);
    ASSERT_EQ_INT(run_plan("-f " DATA "/bad --usage " DATA "/bad/usage.csv -o csv"), 1);
    char *err = slurp(tmpdir(), "cmd.err", &len);
    ASSERT_STR_CONTAINS(err, "kind Service is not a workload optipod sizes\n");
    free(err);
    ASSERT_EQ_INT(run_plan("-f " SAMPLE_BASE), 2);
    err = slurp(tmpdir(), "cmd.err", &len);
    ASSERT_STR_CONTAINS(err,
                        "optipod plan: exactly one of --usage and --prometheus-url is required\n");
    free(err);
    ASSERT_EQ_INT(run_plan("-f " SAMPLE_BASE " --usage x -o xml"), 2);
    ASSERT_EQ_INT(run_plan("-f " SAMPLE_BASE " --usage x --format chart"), 2);
    err = slurp(tmpdir(), "cmd.err", &len);
    ASSERT_STR_CONTAINS(err, "--format 'chart': expected kustomize or helm-values\n");
    free(err);
    /* a -f naming nothing: exit 2, one line, no (empty) plan */
    ASSERT_EQ_INT(run_plan("-f " DATA "/missing-dir --usage " SAMPLE_USAGE), 2);
    err = slurp(tmpdir(), "cmd.err", &len);
    ASSERT_STR_CONTAINS(err,
                        "optipod plan: -f '" DATA "/missing-dir': no such file or directory\n");
    ASSERT_EQ_INT((int)len, (int)strlen(err));
    ASSERT(!strchr(strchr(err, '\n') + 1, '\n'));
    free(err);
    out = slurp(tmpdir(), "cmd.out", &len);
    ASSERT_EQ_INT((int)len, 0);
    free(out);
    ASSERT_EQ_INT(run_plan("-f " SAMPLE_BASE " --usage x --prometheus http://127.0.0.1:1"), 2);
    ASSERT_EQ_INT(run_plan("-f " SAMPLE_BASE " --prometheus-url http://127.0.0.1:1 "
                           "--prometheus-header 'X-Scope-OrgID team-a'"),
                  2);
    err = slurp(tmpdir(), "cmd.err", &len);
    ASSERT_STR_CONTAINS(err, "optipod plan: flag --prometheus-header: \"X-Scope-OrgID team-a\": "
                             "want 'Name: value' (no colon)\n");
    free(err);
    snprintf(args, sizeof args, "-f %s --usage %s --format helm-values --out %s/cmd-helm",
             SAMPLE_BASE, SAMPLE_USAGE, tmpdir());
    ASSERT_EQ_INT(run_plan(args), 0);
    out = slurp(tmpdir(), "cmd.out", &len);
    ASSERT_STR_CONTAINS(out, "wrote values-optipod.yaml (5 workloads) to ");
    free(out);
    char hv[PATH_MAX + 64];
    snprintf(hv, sizeof hv, "%s/cmd-helm/values-optipod.yaml", tmpdir());
    ASSERT_EQ_INT(access(hv, R_OK), 0);
    ASSERT_EQ_INT(run_plan("-f " SAMPLE_BASE " --usage x --now yesterday"), 2);
    ASSERT_EQ_INT(run_plan("--bogus"), 2);
    /* --now moves the decision time and its window: a day earlier, before the
     * leak and the OOM kills, the cart's memory would have gone down */
    ASSERT_EQ_INT(run_plan("-f " SAMPLE_BASE " --usage " SAMPLE_USAGE
                           " -o csv --now 2026-01-06T06:00:00+02:00"),
                  0);
    out = slurp(tmpdir(), "cmd.out", &len);
    ASSERT_STR_CONTAINS(out, "shop,Deployment,cart,cart,200m,,512Mi,1Gi,115m,,367Mi,1Gi,-42%,"
                             "-28%,721,86400,0,apply,apply,apply,cpu p90x1.2; mem p90x1.2\n");
    ASSERT_STR_CONTAINS(out, ",1442,86400,0,apply,unchanged,apply,cpu within-threshold; mem "
                             "limit-cap\n");
    free(out);
}

/* --- Prometheus -------------------------------------------------------------------------- */

#define PS_SERIES 16
#define PS_POINTS 1441

typedef struct ps_series {
    char pod[64], ctr[32];
    int64_t t[PS_POINTS];
    double cpu[PS_POINTS], mem[PS_POINTS];
    int oom[PS_POINTS];
    int n;
} ps_series;

static promsrv prom; /* static: promsrv's atexit hook reads it */

/* The sample's CSV as Prometheus series (grouped per series, as OpenMetrics
 * wants), moved in time so that it ends an hour ago (inside retention). */
static void sample_to_openmetrics(opbuf *om, int64_t shift)
{
    static ps_series ser[PS_SERIES];
    int nser = 0;
    size_t len;
    char *csv = test_read_file(SAMPLE_USAGE, &len);
    char *save = NULL;
    for (char *line = strtok_r(csv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        long long t;
        char ns[32], pod[64], ctr[32];
        double cpu, mem;
        int oom;
        if (sscanf(line, "%lld,%31[^,],%63[^,],%31[^,],%lf,%lf,%d", &t, ns, pod, ctr, &cpu, &mem,
                   &oom) != 7)
            continue;
        int k = 0;
        while (k < nser && (strcmp(ser[k].pod, pod) || strcmp(ser[k].ctr, ctr)))
            k++;
        if (k == nser) {
            ASSERT(nser < PS_SERIES);
            memset(&ser[k], 0, sizeof ser[k]);
            snprintf(ser[k].pod, sizeof ser[k].pod, "%s", pod);
            snprintf(ser[k].ctr, sizeof ser[k].ctr, "%s", ctr);
            nser++;
        }
        ps_series *x = &ser[k];
        ASSERT(x->n < PS_POINTS);
        x->t[x->n] = t + shift;
        x->cpu[x->n] = cpu;
        x->mem[x->n] = mem;
        x->oom[x->n++] = oom;
    }
    free(csv);
    ASSERT_EQ_INT(nser, 10);
    opbuf_puts(om, "# TYPE container_cpu_usage_seconds counter\n");
    for (int k = 0; k < nser; k++) {
        double total = 0;
        for (int i = 0; i < ser[k].n; i++) {
            total += ser[k].cpu[i] * 120;
            opbuf_printf(om,
                         "container_cpu_usage_seconds_total{namespace=\"shop\",pod=\"%s\","
                         "container=\"%s\"} %.3f %" PRId64 "\n",
                         ser[k].pod, ser[k].ctr, total, ser[k].t[i]);
        }
    }
    opbuf_puts(om, "# TYPE container_memory_working_set_bytes gauge\n");
    for (int k = 0; k < nser; k++)
        for (int i = 0; i < ser[k].n; i++)
            opbuf_printf(om,
                         "container_memory_working_set_bytes{namespace=\"shop\",pod=\"%s\","
                         "container=\"%s\"} %.0f %" PRId64 "\n",
                         ser[k].pod, ser[k].ctr, ser[k].mem[i], ser[k].t[i]);
    /* kube-state-metrics keeps the last terminated reason until the next one */
    opbuf_puts(om, "# TYPE kube_pod_container_status_last_terminated_reason gauge\n");
    for (int k = 0; k < nser; k++) {
        if (strcmp(ser[k].ctr, "worker") != 0)
            continue;
        int seen = 0;
        for (int i = 0; i < ser[k].n; i++) {
            seen |= ser[k].oom[i];
            opbuf_printf(om,
                         "kube_pod_container_status_last_terminated_reason{namespace=\"shop\","
                         "pod=\"%s\",container=\"%s\",reason=\"OOMKilled\"} %d %" PRId64 "\n",
                         ser[k].pod, ser[k].ctr, seen, ser[k].t[i]);
        }
    }
    opbuf_puts(om, "# EOF\n");
}

static void test_prometheus_usage_agrees_with_the_file(void)
{
    if (!promsrv_available())
        test_skip("prometheus/promtool not installed: the --prometheus path is not checked");
    const int64_t end = 1767744000; /* the sample's newest sample */
    int64_t now = ((int64_t)time(NULL) - 3600) / 120 * 120;
    opbuf om;
    opbuf_init(&om, (size_t)64 << 20);
    sample_to_openmetrics(&om, now - end);
    operr err;
    int rc = promsrv_start(&prom, om.data, om.len, &err);
    opbuf_release(&om);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "promsrv: %s", err.msg);

    plan file, pr;
    load_sample(&file, NULL);
    plan_init(&pr);
    ASSERT_EQ_INT(plan_load_manifests(&pr, SAMPLE_BASE, &err), 0);
    rc = plan_usage_prometheus(&pr, prom.url, now, &err);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "plan_usage_prometheus: %s", err.msg);
    ASSERT_EQ_INT(plan_run(&pr, now), 0);
    ASSERT_EQ_INT(pr.problems, 0);
    ASSERT_EQ_INT(pr.now, now);
    /* no owner references offline: the pods came from their generated names */
    ASSERT_EQ_INT(pr.ndiags, 1);
    ASSERT_STR_EQ(pr.diags[0], "prometheus: namespace shop: the window's pods found by pod-names");
    for (size_t i = 0; i < pr.nwl; i++)
        for (size_t k = 0; k < pr.wl[i].nctrs; k++)
            ASSERT(pr.wl[i].ctrs[k].has_usage);
    /* the leak's peak is exact in both: max_over_time */
    const plan_container *a = find(&pr, "cart", "cart"), *b = find(&file, "cart", "cart");
    ASSERT_EQ_INT(a->c.use.mem_peak_bytes, b->c.use.mem_peak_bytes);
    ASSERT(has_step(&a->res.mem, ENG_STEP_PEAK_FLOOR));
    ASSERT_EQ_INT(a->res.mem.req, b->res.mem.req);
    /* OOMs: kube-state-metrics' gauge counts pods, not kills */
    a = find(&pr, "worker", "worker");
    ASSERT_EQ_INT(a->c.use.oom_count, 2);
    ASSERT(has_step(&a->res.mem, ENG_STEP_OOM_BUMP));
    ASSERT_EQ_INT(a->res.mem.req, 512 * MI);
    /* percentiles: Prometheus takes the max of per-pod ones over subquery rates;
     * within 15% of the union's over the file's rates */
    static const char *const names[][2] = {
        {"web", "web"}, {"checkout", "checkout"}, {"checkout", "envoy"}};
    for (int i = 0; i < 3; i++) {
        a = find(&pr, names[i][0], names[i][1]);
        b = find(&file, names[i][0], names[i][1]);
        ASSERT_EQ_INT(a->res.cpu.decision, ENG_APPLY);
        ASSERT_CMP_INT(a->res.cpu.req * 100, >=, b->res.cpu.req * 85);
        ASSERT_CMP_INT(a->res.cpu.req * 100, <=, b->res.cpu.req * 115);
        ASSERT_CMP_INT(a->res.mem.req * 100, >=, b->res.mem.req * 85);
        ASSERT_CMP_INT(a->res.mem.req * 100, <=, b->res.mem.req * 115);
    }
    /* the JVM's 2-minute GC spikes are smoothed by rate()'s 5m window, so
     * Prometheus sees less than the file's 2-minute averages, still well up */
    a = find(&pr, "search", "search");
    b = find(&file, "search", "search");
    ASSERT_CMP_INT(a->res.cpu.req, >, 700);
    ASSERT_CMP_INT(a->res.cpu.req, <, b->res.cpu.req);
    ASSERT_EQ_INT(find(&pr, "checkout", "envoy")->res.cpu.req, 50);
    plan_release(&pr);
    plan_release(&file);

    /* the binary, through a gateway demanding a token and a tenant: the
     * controller's flags; the old --prometheus spelling still works */
    static authproxy px;
    authproxy_rules rules = {.bearer = "plan-tok", .header = "X-Scope-OrgID", .value = "shop"};
    ASSERT_EQ_INT(authproxy_start(&px, prom.port, &rules), 0);
    char tok[PATH_MAX + 16], args[4 * PATH_MAX], when[32];
    snprintf(tok, sizeof tok, "%s/plan-token", tmpdir());
    FILE *tf = fopen(tok, "w");
    ASSERT_NOT_NULL(tf);
    fputs("plan-tok\n", tf);
    fclose(tf);
    time_t nt = (time_t)now;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&nt));
    snprintf(args, sizeof args,
             "-f %s --prometheus http://127.0.0.1:%d --prometheus-bearer-token-file %s "
             "--prometheus-header 'X-Scope-OrgID: shop' --now %s -o csv",
             SAMPLE_BASE, px.port, tok, when);
    int ok = run_plan(args);
    snprintf(args, sizeof args,
             "-f %s --prometheus-url http://127.0.0.1:%d --prometheus-bearer-token-file %s "
             "--prometheus-header 'X-Scope-OrgID: other' --now %s",
             SAMPLE_BASE, px.port, tok, when);
    int denied = run_plan(args);
    authproxy_stop(&px);
    size_t olen;
    char *out = slurp(tmpdir(), "cmd.err", &olen);
    ASSERT_EQ_INT(denied, 1);
    ASSERT_STR_CONTAINS(out, "HTTP 403 Forbidden");
    free(out);
    ASSERT_EQ_INT(ok, 0);
    ASSERT_EQ_INT(px.forwarded, 2); /* the owners and the stats query of namespace shop */

    /* a server that is not there: a clear error naming it */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", promsrv_free_port());
    plan_init(&pr);
    ASSERT_EQ_INT(plan_load_manifests(&pr, SAMPLE_BASE, &err), 0);
    ASSERT_CMP_INT(plan_usage_prometheus(&pr, url, now, &err), <, 0);
    ASSERT_STR_CONTAINS(err.msg, url);
    ASSERT_STR_CONTAINS(err.msg, "namespace 'shop'");
    plan_release(&pr);
    promsrv_stop(&prom);
}

static void test_zz_cleanup(void)
{
    if (tmp_root[0]) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
        ASSERT_EQ_INT(system(cmd), 0);
    }
}

int main(void)
{
    TEST_RUN(test_sample_plan_follows_the_model);
    TEST_RUN(test_sample_keep_ratio_policy_moves_limits);
    TEST_RUN(test_golden_outputs);
    TEST_RUN(test_yaml_output_parses_back_like_json);
    TEST_RUN(test_export_is_idempotent);
    TEST_RUN(test_helm_values_fragment);
    TEST_RUN(test_kubectl_kustomize_builds_the_overlay);
    TEST_RUN(test_malformed_inputs_are_reported_and_the_rest_planned);
    TEST_RUN(test_csv_header_and_field_errors);
    TEST_RUN(test_many_bad_lines_are_counted_not_listed);
    TEST_RUN(test_openmetrics_rates_resets_and_ooms);
    TEST_RUN(test_usage_file_is_streamed);
    TEST_RUN(test_usage_keeps_the_window_only);
    TEST_RUN(test_pods_map_to_workloads_by_name);
    TEST_RUN(test_kustomization_resources_are_followed);
    TEST_RUN(test_bad_quantities_and_policy);
    TEST_RUN(test_binary_exit_statuses);
    TEST_RUN(test_prometheus_usage_agrees_with_the_file);
    TEST_RUN(test_zz_cleanup);
    return test_summary();
}
