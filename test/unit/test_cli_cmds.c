/*
 * kubectl-optipod's logic (lib/cli) against the fake API server: the
 * recommendations in four formats (golden), the OptimizationRecommendation
 * records winning over annotations (every mode and strategy), scope and
 * selector, explain from the records and from
 * the controller's optipod.io/explanation (itself built by
 * ctlrec_explanation), savings, export idempotence, the GitOps snippets, and
 * release on the recorded container-removal sequence, after which the GitOps
 * apply that drops the sidecar succeeds.
 *
 * UPDATE_GOLDEN=1 rewrites test/data/cli/golden/ from the current output.
 */
#include "test.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "controller/reconcile.h"
#include "record/record.h"
#include "support/fakeapi.h"
#include "support/loop.h"
#include "util/yaml2json.h"

#define GOLDEN "test/data/cli/golden"

static void check_golden(const char *name, const char *got, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, GOLDEN "/%s", name);
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
        size_t i = 0, line = 1;
        while (i < len && i < glen && want[i] == got[i])
            line += got[i++] == '\n';
        free(want);
        test_fail(__FILE__, __LINE__, "%s differs at line %zu (UPDATE_GOLDEN=1 rewrites it):\n%s",
                  path, line, got);
    }
    free(want);
}

/* ---- the explanation the controller publishes --------------------------------------------- */

static void policy_for_test(pol_policy *p)
{
    pol_init(p);
    p->name = strdup("rightsize");
    p->namespace = strdup("shop");
    p->mode = POL_MODE_RECOMMEND;
    p->provider = POL_PROVIDER_PROMETHEUS;
    p->window_ms = 7 * 24 * 3600 * 1000LL;
    p->percentile = 95;
    p->safety_factor = 1.15;
}

/* An engine decision with a max bound and an OOM, as the controller makes it. */
static void decide(ctlrec_out *out, const pol_policy *pol, size_t nctrs)
{
    ctlrec_out_release(out);
    out->cap = nctrs;
    out->containers = calloc(nctrs, sizeof *out->containers);
    out->ssa = calloc(nctrs, sizeof *out->ssa);
    out->rec = calloc(nctrs, sizeof *out->rec);
    ASSERT(out->containers && out->ssa && out->rec);
    out->winner = pol;
    out->mode = pol->mode;
    out->history = "kube-state-metrics"; /* as the Prometheus provider reports it */
    out->history_pods = 7;
    eng_policy ep;
    eng_policy_defaults(&ep);
    ep.cpu.max = 300;
    eng_facts f = {.now = 2000000000};
    for (size_t i = 0; i < nctrs; i++) {
        ctlrec_container *c = &out->containers[out->ncontainers++];
        snprintf(c->name, sizeof c->name, i == 0 ? "app" : "container-with-a-long-name-%zu", i);
        eng_container ec = {.name = c->name};
        ec.cpu = (eng_rl){.has_req = true, .req = 500};
        ec.mem = (eng_rl){.has_req = true, .req = 512LL << 20};
        ec.use = (eng_usage){.cpu_cores = 0.4,
                             .mem_bytes = 300LL << 20,
                             .mem_peak_bytes = 350LL << 20,
                             .samples = 10080,
                             .span_s = 7 * 86400,
                             .oom_count = 1,
                             .oom_last = f.now - 3600,
                             .oom_mem_bytes = 400LL << 20};
        eng_recommend(&ep, &f, &ec, &c->res);
    }
}

static char *explanation_json(size_t nctrs)
{
    pol_policy pol;
    policy_for_test(&pol);
    static ctlrec_out out;
    decide(&out, &pol, nctrs);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    ASSERT_EQ_INT(ctlrec_explanation(&out, &b), 0);
    pol_release(&pol);
    ctlrec_out_release(&out);
    size_t n;
    return opbuf_detach(&b, &n);
}

static void test_explanation_annotation_is_capped(void)
{
    char *one = explanation_json(1);
    cJSON *e = cJSON_Parse(one);
    ASSERT_NOT_NULL(e);
    ASSERT_STR_EQ(cJSON_GetObjectItem(e, "policy")->valuestring, "shop/rightsize");
    ASSERT_STR_EQ(cJSON_GetObjectItem(e, "window")->valuestring, "168h");
    ASSERT_STR_CONTAINS(one, "\"step\":\"clamp-max\"");
    ASSERT_STR_CONTAINS(one, "\"step\":\"oom-bump\"");
    ASSERT_NULL(cJSON_GetObjectItem(e, "truncated"));
    cJSON_Delete(e);
    free(one);
    /* 32 containers do not fit 8 KiB: steps go first, every container stays */
    char *many = explanation_json(32);
    ASSERT_CMP_INT(strlen(many), <=, CTLREC_EXPLANATION_MAX);
    e = cJSON_Parse(many);
    ASSERT_NOT_NULL(e);
    ASSERT_STR_EQ(cJSON_GetObjectItem(e, "truncated")->valuestring, "steps");
    ASSERT_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(e, "containers")), 32);
    ASSERT(!strstr(many, "\"steps\":["));
    cJSON_Delete(e);
    free(many);
}

static void test_explanation_left_the_annotations(void)
{
    pol_policy pol;
    policy_for_test(&pol);
    static ctlrec_out out;
    decide(&out, &pol, 1);
    snprintf(out.containers[0].rec_cpu_req, CTLREC_QTY, "300m");
    out.rec[0] = (ssa_container){.name = "app", .cpu_request = "300m"};
    out.nrec = 1;
    const char *wl = "{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\",\"uid\":\"u1\","
                     "\"annotations\":{\"optipod.io/cpu-request.app\":\"300m\","
                     "\"optipod.io/strategy\":\"recommend\",\"optipod.io/webhook-enabled\":"
                     "\"false\"}},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":"
                     "\"app\"}]}}}}";
    cJSON *j = cJSON_Parse(wl);
    kproj_obj *live = NULL;
    ASSERT_EQ_INT(kproj_from_json(j, KPROJ_DEPLOYMENT, &live), 0);
    /* the annotations hold what the webhook needs: no write */
    ASSERT_EQ_INT(ctlrec_annotations_differ(&out, live), 0);
    opbuf body;
    opbuf_init(&body, 1 << 20);
    operr err;
    ASSERT_EQ_INT(ctlrec_annotations_body(&out, live, 0, &body, &err), 0);
    cJSON *b = cJSON_Parse(opbuf_str(&body));
    cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "metadata"), "annotations");
    /* the explanation lives in the record: never copied onto every ReplicaSet */
    ASSERT_NULL(cJSON_GetObjectItem(ann, CTLREC_EXPLANATION_KEY));
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/cpu-request.app")->valuestring, "300m");
    /* one an older controller left: one write, whose apply drops it */
    cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "annotations"),
                            CTLREC_EXPLANATION_KEY, "{\"containers\":[]}");
    kproj_obj *live2 = NULL;
    ASSERT_EQ_INT(kproj_from_json(j, KPROJ_DEPLOYMENT, &live2), 0);
    ASSERT_EQ_INT(ctlrec_annotations_differ(&out, live2), 1);
    kproj_free(live);
    kproj_free(live2);
    cJSON_Delete(b);
    cJSON_Delete(j);
    opbuf_release(&body);
    pol_release(&pol);
    ctlrec_out_release(&out);
}

/* ---- the seeded cluster -------------------------------------------------------------------- */

typedef struct env {
    uv_loop_t loop;
    fakeapi *fa;
    char kc[64];
    cli_conn c;
} env;

static void put(env *e, const char *json)
{
    ASSERT_EQ_INT(fakeapi_put_json(e->fa, json), 0);
}

static char *web_json(void)
{
    char *ex = explanation_json(1);
    cJSON *o = cJSON_Parse(
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
        "\"namespace\":\"shop\",\"labels\":{\"app\":\"web\"},\"annotations\":{"
        "\"optipod.io/cpu-request.app\":\"250m\",\"optipod.io/memory-request.app\":\"384Mi\","
        "\"optipod.io/cpu-limit.app\":\"500m\",\"optipod.io/memory-limit.app\":\"768Mi\","
        "\"optipod.io/cpu-request.envoy\":\"100m\",\"optipod.io/memory-request.envoy\":"
        "\"128Mi\",\"optipod.io/strategy\":\"recommend\",\"optipod.io/webhook-enabled\":"
        "\"false\"},"
        "\"managedFields\":[{\"manager\":\"argocd-controller\",\"operation\":\"Apply\","
        "\"apiVersion\":\"apps/v1\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:spec\":{"
        "\"f:template\":{\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"app\\\"}\":{"
        "\".\":{},\"f:name\":{},\"f:image\":{}},\"k:{\\\"name\\\":\\\"envoy\\\"}\":{\".\":{},"
        "\"f:name\":{},\"f:image\":{},\"f:resources\":{\"f:requests\":{\"f:cpu\":{}}}}}}}}}},"
        "{\"manager\":\"optipod\",\"operation\":\"Apply\",\"apiVersion\":\"apps/v1\","
        "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":{\"f:annotations\":{"
        "\"f:optipod.io/strategy\":{}}}}}]},"
        "\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
        "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":["
        "{\"name\":\"app\",\"image\":\"shop/web:1\",\"resources\":{\"requests\":{\"cpu\":"
        "\"500m\",\"memory\":\"512Mi\"},\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}},"
        "{\"name\":\"envoy\",\"image\":\"envoy:1\",\"resources\":{\"requests\":{\"cpu\":"
        "\"0.1\",\"memory\":\"128Mi\"}}}]}}}}");
    ASSERT_NOT_NULL(o);
    cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "annotations"),
                            CTLREC_EXPLANATION_KEY, ex);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(ex);
    return s;
}

static void seed(env *e)
{
    char *web = web_json();
    put(e, web);
    free(web);
    put(e, "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"metadata\":{\"name\":\"db\","
           "\"namespace\":\"shop\",\"labels\":{\"app\":\"db\"},\"annotations\":{"
           "\"optipod.io/cpu-request.postgres\":\"600m\",\"optipod.io/memory-request.postgres\":"
           "\"2560Mi\",\"optipod.io/strategy\":\"webhook\",\"optipod.io/webhook-enabled\":"
           "\"true\"}},\"spec\":{\"replicas\":2,\"template\":{\"spec\":{\"initContainers\":[{"
           "\"name\":\"migrate\",\"image\":\"m:1\"}],\"containers\":[{\"name\":\"postgres\","
           "\"image\":\"pg:16\",\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"2Gi\"}}}"
           "]}}}}");
    put(e, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"api\","
           "\"namespace\":\"team-b\",\"labels\":{\"app\":\"api\"},\"annotations\":{"
           "\"optipod.io/cpu-request.api\":\"300m\",\"optipod.io/memory-request.api\":\"256Mi\","
           "\"optipod.io/strategy\":\"recommend\"}},\"spec\":{\"replicas\":1,\"template\":{"
           "\"spec\":{\"containers\":[{\"name\":\"api\",\"image\":\"api:1\",\"resources\":{"
           "\"requests\":{\"cpu\":\"300m\",\"memory\":\"256Mi\"}}}]}}}}");
    put(e, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"plain\","
           "\"namespace\":\"shop\",\"annotations\":{\"other.io/x\":\"1\"}},\"spec\":{"
           "\"replicas\":1,\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":"
           "\"c:1\"}]}}}}");
    put(e, "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\",\"metadata\":"
           "{\"name\":\"rightsize\",\"namespace\":\"shop\"},\"spec\":{\"selector\":{"
           "\"workloadSelector\":{}}},\"status\":{\"recommendations\":["
           "{\"kind\":\"Deployment\",\"namespace\":\"shop\",\"name\":\"web\",\"container\":\"app\","
           "\"cpuRequest\":\"250m\",\"samples\":10080,\"applied\":false},"
           "{\"kind\":\"Deployment\",\"namespace\":\"shop\",\"name\":\"web\",\"container\":"
           "\"envoy\",\"cpuRequest\":\"100m\",\"samples\":10080,\"applied\":true},"
           "{\"kind\":\"StatefulSet\",\"namespace\":\"shop\",\"name\":\"db\",\"container\":"
           "\"postgres\",\"cpuRequest\":\"600m\",\"samples\":5000,\"applied\":false}]}}");
}

static void env_start(env *e, int seeded)
{
    memset(e, 0, sizeof *e);
    ASSERT_EQ_INT(uv_loop_init(&e->loop), 0);
    fakeapi_opts o = {.now = "2026-11-22T03:00:00Z"};
    ASSERT_EQ_INT(fakeapi_start(&e->fa, &e->loop, &o), 0);
    snprintf(e->kc, sizeof e->kc, "/tmp/optipod-cli-kc-%d", (int)getpid());
    ASSERT_EQ_INT(fakeapi_write_kubeconfig(e->fa, e->kc, "tok"), 0);
    if (seeded)
        seed(e);
    operr err;
    if (cli_conn_open(&e->c, &e->loop, e->kc, NULL, &err))
        test_fail(__FILE__, __LINE__, "open: %s", err.msg);
}

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

static void env_stop(env *e)
{
    cli_conn_close(&e->c);
    int closed = 0;
    fakeapi_stop(e->fa, on_closed, &closed);
    while (!closed)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&e->loop), 0);
    unlink(e->kc);
}

static void fetch(env *e, const cli_scope *sc, cli_state *s)
{
    operr err;
    cli_state_init(s);
    if (cli_fetch(&e->c, sc, s, &err))
        test_fail(__FILE__, __LINE__, "fetch: %s", err.msg);
}

static void test_recommendations_golden(void)
{
    env e;
    env_start(&e, 1);
    cli_state s;
    cli_scope sc = {.all = 1};
    fetch(&e, &sc, &s);
    /* plain carries no recommendation: left out; sorted by namespace, kind, name */
    ASSERT_EQ_INT(s.nwl, 3);
    ASSERT_STR_EQ(s.wl[0].proj->name, "web");
    ASSERT_STR_EQ(s.wl[1].proj->name, "db");
    ASSERT_STR_EQ(s.wl[2].proj->name, "api");
    const cli_workload *web = &s.wl[0];
    ASSERT_EQ_INT(web->ctrs[0].applied, 0);
    ASSERT_EQ_INT(web->ctrs[1].applied, 1); /* "0.1" == "100m" */
    ASSERT_STR_EQ(web->ctrs[1].conflicts, "argocd-controller");
    ASSERT_STR_EQ(web->ctrs[0].conflicts, "");
    ASSERT_EQ_INT(web->ctrs[0].samples, 10080);
    ASSERT_EQ_INT(s.wl[2].ctrs[0].samples, -1);
    static const char *const names[] = {"recommendations.table", "recommendations.json",
                                        "recommendations.yaml", "recommendations.csv"};
    for (int f = 0; f < 4; f++) {
        opbuf b;
        opbuf_init(&b, 1 << 20);
        ASSERT_EQ_INT(cli_render_recommendations(&s, (enum cli_fmt)f, &b), 0);
        check_golden(names[f], opbuf_str(&b), b.len);
        opbuf_release(&b);
    }
    /* the list calls went to every namespace */
    ASSERT_EQ_INT(fakeapi_count(e.fa, "GET", "/apis/apps/v1/deployments"), 1);
    cli_state_release(&s);
    env_stop(&e);
}

/* The state of workloads given as a JSON array (no policies), as cli_fetch
 * builds it: 0 or cli_state_from_json's error, with err. */
static int state_of(cli_state *s, const char *workloads, operr *err)
{
    cJSON *w = cJSON_Parse(workloads);
    ASSERT_NOT_NULL(w);
    cli_state_init(s);
    int rc = cli_state_from_json(s, w, NULL, err);
    cJSON_Delete(w); /* the state keeps copies */
    return rc;
}

/* managedFields are anyone's to write: an entry with an empty manager name
 * (which hung the de-duplication: found by fuzz_cli_state) names no one, and
 * a manager owning several of a container's values is named once. */
/* ---- the records (docs/recommendation.md) ---------------------------------------------------- */

/* A record as the controller writes it (rrec_build), one container. */
static void put_record(env *e, const char *ns, const char *kind, const char *name, const char *mode,
                       const char *strategy, const char *ctr, const char *cpu, const char *mem,
                       int64_t samples)
{
    static rrec r;
    rrec_init(&r);
    snprintf(r.ns, sizeof r.ns, "%s", ns);
    ASSERT_EQ_INT(rrec_name(r.name, sizeof r.name, kind, name), 0);
    snprintf(r.kind, sizeof r.kind, "%s", kind);
    snprintf(r.api_version, sizeof r.api_version, "apps/v1");
    snprintf(r.target, sizeof r.target, "%s", name);
    snprintf(r.policy, sizeof r.policy, "%s/rightsize", ns);
    snprintf(r.mode, sizeof r.mode, "%s", mode);
    snprintf(r.strategy, sizeof r.strategy, "%s", strategy);
    snprintf(r.provider, sizeof r.provider, "prometheus");
    snprintf(r.window, sizeof r.window, "168h");
    r.percentile = 95;
    r.safety_factor = 1.15;
    r.n = 1;
    snprintf(r.c[0].name, sizeof r.c[0].name, "%s", ctr);
    snprintf(r.c[0].rec[RREC_CPU_REQ], RREC_QTY, "%s", cpu);
    snprintf(r.c[0].rec[RREC_MEM_REQ], RREC_QTY, "%s", mem);
    r.c[0].samples = samples;
    r.c[0].span_s = 86400;
    snprintf(r.c[0].rule, sizeof r.c[0].rule, "apply");
    rrec_set_explanation(&r.c[0], "{\"decision\":\"apply\",\"cpu\":{\"decision\":\"apply\","
                                  "\"request\":\"315m\",\"steps\":[]},\"memory\":{\"decision\":"
                                  "\"apply\",\"request\":\"438Mi\",\"steps\":[{\"step\":"
                                  "\"percentile\",\"percentile\":\"P95\",\"samples\":968,"
                                  "\"value\":\"459206680\"}]}}");
    opbuf b;
    opbuf_init(&b, 1 << 20);
    operr err;
    ASSERT_EQ_INT(rrec_build(&r, &b, &err), 0);
    put(e, opbuf_str(&b));
    opbuf_release(&b);
    rrec_release(&r);
}

static const cJSON *rec_entry(const cJSON *doc, const char *name, const char *ctr)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(doc, "recommendations"))
    {
        if (!strcmp(cJSON_GetObjectItem(o, "name")->valuestring, name) &&
            !strcmp(cJSON_GetObjectItem(o, "container")->valuestring, ctr))
            return o;
    }
    test_fail(__FILE__, __LINE__, "%s/%s: not listed", name, ctr);
    return NULL;
}

/* Issue 13 point 1: a workload managed in Auto/ssa has no annotations, and one
 * switched from Recommend keeps stale ones; the record is what counts. */
static void test_records_are_the_source_of_truth(void)
{
    env e;
    env_start(&e, 1);
    /* first managed in Auto/ssa: no annotation at all, the value already applied */
    put(&e, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web2\","
            "\"namespace\":\"shop\"},\"spec\":{\"replicas\":1,\"template\":{\"spec\":{"
            "\"containers\":[{\"name\":\"app\",\"image\":\"a:1\",\"resources\":{\"requests\":{"
            "\"cpu\":\"315m\",\"memory\":\"438Mi\"}}}]}}}}");
    put_record(&e, "shop", "Deployment", "web2", "Auto", "ssa", "app", "315m", "438Mi", 968);
    /* web's stale Recommend annotations say 250m; its record says Auto/ssa 500m (applied) */
    put_record(&e, "shop", "Deployment", "web", "Auto", "ssa", "app", "500m", "512Mi", 968);
    /* db under the webhook: the template keeps 1 CPU, the annotations hold 600m */
    put_record(&e, "shop", "StatefulSet", "db", "Auto", "webhook", "postgres", "600m", "2560Mi",
               5000);
    cli_state s;
    cli_scope sc = {.ns = "shop"};
    fetch(&e, &sc, &s);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    ASSERT_EQ_INT(cli_render_recommendations(&s, CLI_FMT_JSON, &b), 0);
    cJSON *doc = cJSON_Parse(opbuf_str(&b));
    ASSERT_NOT_NULL(doc);
    const cJSON *w2 = rec_entry(doc, "web2", "app");
    ASSERT_STR_EQ(cJSON_GetObjectItem(w2, "mode")->valuestring, "Auto");
    ASSERT_STR_EQ(cJSON_GetObjectItem(w2, "strategy")->valuestring, "ssa");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(w2, "applied")));
    ASSERT_EQ_INT((int)cJSON_GetObjectItem(w2, "samples")->valuedouble, 968);
    const cJSON *w = rec_entry(doc, "web", "app");
    ASSERT_STR_EQ(
        cJSON_GetObjectItem(cJSON_GetObjectItem(w, "recommended"), "cpuRequest")->valuestring,
        "500m");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(w, "applied")));
    ASSERT_STR_EQ(cJSON_GetObjectItem(w, "mode")->valuestring, "Auto");
    /* envoy is not in web's record: listed without a recommendation */
    const cJSON *env_ = rec_entry(doc, "web", "envoy");
    ASSERT_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(env_, "recommended")), 0);
    const cJSON *db = rec_entry(doc, "db", "postgres");
    ASSERT_STR_EQ(cJSON_GetObjectItem(db, "strategy")->valuestring, "webhook");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(db, "applied")));
    cJSON_Delete(doc);
    /* explain agrees */
    operr err;
    opbuf_reset(&b);
    ASSERT_EQ_INT(cli_render_explain(cli_find(&s, "deploy/web2", "shop"), &b, &err), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&b), "policy:      shop/rightsize (mode Auto, strategy ssa)");
    ASSERT_STR_CONTAINS(opbuf_str(&b), "app          requests 315m/438Mi, recommended "
                                       "315m/438Mi, applied yes");
    ASSERT_STR_CONTAINS(opbuf_str(&b), "container app: apply (968 samples");
    /* memory as Kubernetes prints it, not raw bytes */
    ASSERT_STR_CONTAINS(opbuf_str(&b), "P95 of usage over 968 samples: 438Mi\n");
    ASSERT(!strstr(opbuf_str(&b), "459206680"));
    opbuf_reset(&b);
    ASSERT_EQ_INT(cli_render_explain(cli_find(&s, "sts/db", "shop"), &b, &err), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&b), "(mode Auto, strategy webhook)");
    opbuf_release(&b);
    cli_state_release(&s);
    /* a record anyone broke is refused naming it */
    put(&e, "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationRecommendation\","
            "\"metadata\":{\"name\":\"deployment-bad\",\"namespace\":\"shop\"},\"spec\":{"
            "\"targetRef\":{\"kind\":\"Deployment\"}}}");
    cli_state_init(&s);
    ASSERT_EQ_INT(cli_fetch(&e.c, &sc, &s, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "OptimizationRecommendation deployment-bad: "
                                 "spec.targetRef.name: required");
    cli_state_release(&s);
    env_stop(&e);
}

static void test_conflicting_managers_are_named_once(void)
{
    static const char *const wl =
        "[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
        "\"namespace\":\"shop\",\"annotations\":{\"optipod.io/cpu-request.app\":\"250m\"},"
        "\"managedFields\":["
        "{\"manager\":\"\",\"operation\":\"Update\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{"
        "\"f:spec\":{\"f:template\":{\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"app\\\"}"
        "\":{"
        "\"f:resources\":{\"f:requests\":{\"f:cpu\":{}}}}}}}}}},"
        "{\"manager\":\"argocd-controller\",\"operation\":\"Apply\",\"fieldsType\":\"FieldsV1\","
        "\"fieldsV1\":{\"f:spec\":{\"f:template\":{\"f:spec\":{\"f:containers\":{"
        "\"k:{\\\"name\\\":\\\"app\\\"}\":{\"f:resources\":{\"f:requests\":{\"f:cpu\":{},"
        "\"f:memory\":{}},\"f:limits\":{\"f:memory\":{}}}}}}}}}}]},"
        "\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{"
        "\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"limits\":{\"memory\":\"2Gi\"}}}]}}}}]";
    cli_state s;
    operr err = {0};
    ASSERT_EQ_INT(state_of(&s, wl, &err), 0);
    ASSERT_EQ_INT(s.nwl, 1);
    ASSERT_EQ_INT(s.wl[0].nctrs, 1);
    ASSERT_STR_EQ(s.wl[0].ctrs[0].conflicts, "argocd-controller");
    cli_state_release(&s);
}

/* Objects no API server would list, as a fuzzer wrote them (found by
 * fuzz_cli_state: a NULL container name reached the CSV writer): a workload
 * without a name is refused with a reason, an unnamed container is skipped but
 * keeps its place in the list's indexes, and every format renders. */
static void test_unnamed_objects(void)
{
    cli_state s;
    operr err = {0};
    ASSERT_EQ_INT(state_of(&s,
                           "[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{"
                           "\"annotations\":{\"optipod.io/cpu-request.app\":\"250m\"}}}]",
                           &err),
                  -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "Deployment: cannot read it");
    cli_state_release(&s);
    static const char *const wl =
        "[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
        "\"namespace\":\"shop\",\"annotations\":{\"optipod.io/cpu-request.app\":\"250m\","
        "\"optipod.io/cpu-limit.(null)\":\"1\"}},\"spec\":{\"template\":{\"spec\":{\"containers\":["
        "{\"image\":\"x\"},{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"1\"}}}]}}}}]";
    ASSERT_EQ_INT(state_of(&s, wl, &err), 0);
    ASSERT_EQ_INT(s.nwl, 1);
    ASSERT_EQ_INT(s.wl[0].nctrs, 1);
    ASSERT_STR_EQ(s.wl[0].ctrs[0].name, "app");
    ASSERT_EQ_INT(s.wl[0].ctrs[0].index, 1);
    opbuf out;
    opbuf_init(&out, 1 << 20);
    for (int f = CLI_FMT_TABLE; f <= CLI_FMT_CSV; f++) {
        opbuf_reset(&out);
        ASSERT_EQ_INT(cli_render_recommendations(&s, (enum cli_fmt)f, &out), 0);
        ASSERT_STR_CONTAINS(out.data, "250m");
    }
    opbuf_release(&out);
    cli_state_release(&s);
}

/* Totals of requests x replicas saturate instead of wrapping (found by
 * fuzz_cli_state under UBSan: signed overflow in the savings sums), so no
 * namespace shows a negative cost. */
static void test_savings_totals_saturate(void)
{
    static const char *const wl =
        "[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"big\","
        "\"namespace\":\"shop\",\"annotations\":{\"optipod.io/memory-request.app\":\"4Ei\"}},"
        "\"spec\":{\"replicas\":2000000000,\"template\":{\"spec\":{\"containers\":[{\"name\":"
        "\"app\",\"resources\":{\"requests\":{\"cpu\":\"4000000000\",\"memory\":\"4Ei\"}}}]}}}},"
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"big2\","
        "\"namespace\":\"shop\",\"annotations\":{\"optipod.io/memory-request.app\":\"4Ei\"}},"
        "\"spec\":{\"replicas\":2000000000,\"template\":{\"spec\":{\"containers\":[{\"name\":"
        "\"app\",\"resources\":{\"requests\":{\"cpu\":\"4000000000\",\"memory\":\"4Ei\"}}}]}}}}]";
    cli_state s;
    operr err = {0};
    ASSERT_EQ_INT(state_of(&s, wl, &err), 0);
    ASSERT_EQ_INT(s.nwl, 2);
    opbuf out;
    opbuf_init(&out, 1 << 20);
    ASSERT_EQ_INT(cli_render_savings(&s, 0.03, 0.004, &out), 0);
    /* the namespace's line and the total: no wrapped, negative figure */
    const char *rows[] = {"\nshop ", "\nTOTAL "};
    for (size_t i = 0; i < 2; i++) {
        const char *line = strstr(out.data, rows[i]);
        ASSERT_NOT_NULL(line);
        for (const char *p = line + 1; *p && *p != '\n'; p++)
            ASSERT(*p != '-');
    }
    opbuf_release(&out);
    cli_state_release(&s);
}

static void test_scope_and_selector(void)
{
    env e;
    env_start(&e, 1);
    cli_state s;
    cli_scope sc = {.ns = "team-b"};
    fetch(&e, &sc, &s);
    ASSERT_EQ_INT(s.nwl, 1);
    ASSERT_STR_EQ(s.wl[0].proj->name, "api");
    cli_state_release(&s);
    cli_scope sel = {.ns = "shop", .selector = "app=web"};
    fetch(&e, &sel, &s);
    ASSERT_EQ_INT(s.nwl, 1);
    ASSERT_STR_EQ(s.wl[0].proj->name, "web");
    ASSERT_NOT_NULL(fakeapi_log_last(e.fa, "GET", "labelSelector=app%3Dweb"));
    ASSERT_NOT_NULL(cli_find(&s, "deploy/web", "shop"));
    ASSERT_NOT_NULL(cli_find(&s, "deployments/web", NULL));
    ASSERT_NULL(cli_find(&s, "sts/web", "shop"));
    cli_state_release(&s);
    env_stop(&e);
}

static void test_missing_crd_is_named(void)
{
    env e;
    env_start(&e, 1);
    fakeapi_fault f = {.method = "GET",
                       .path = "/optimizationpolicies",
                       .watch = -1,
                       .kind = FAKEAPI_FAULT_STATUS,
                       .status = 404,
                       .message = "the server could not find the requested resource"};
    ASSERT_EQ_INT(fakeapi_add_fault(e.fa, &f), 0);
    cli_state s;
    cli_state_init(&s);
    cli_scope sc = {.all = 1};
    operr err;
    ASSERT_EQ_INT(cli_fetch(&e.c, &sc, &s, &err), -ENOENT);
    ASSERT_STR_CONTAINS(err.msg, "no OptimizationPolicy CRD installed (crds/");
    cli_state_release(&s);
    env_stop(&e);
}

static void test_explain_and_savings(void)
{
    env e;
    env_start(&e, 1);
    cli_state s;
    cli_scope sc = {.all = 1};
    fetch(&e, &sc, &s);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    operr err;
    ASSERT_EQ_INT(cli_render_explain(cli_find(&s, "deployment/web", "shop"), &b, &err), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&b), "provider:    prometheus, window 168h");
    ASSERT_STR_CONTAINS(opbuf_str(&b), "CLIPPED by the policy's max bound");
    ASSERT_STR_CONTAINS(opbuf_str(&b), "OOM history: 1 OOMKilled");
    check_golden("explain.txt", opbuf_str(&b), b.len);
    opbuf_reset(&b);
    ASSERT_EQ_INT(cli_render_explain(cli_find(&s, "sts/db", "shop"), &b, &err), -ENOENT);
    ASSERT_STR_CONTAINS(err.msg, "no optipod.io/explanation annotation");
    opbuf_reset(&b);
    ASSERT_EQ_INT(cli_render_savings(&s, 0.04, 0.005, &b), 0);
    /* shop: cpu 3x(500m+100m) + 2x1 = 3.8 -> 3x(250m+100m) + 2x600m = 2.25 */
    ASSERT_STR_CONTAINS(opbuf_str(&b), "3800m");
    ASSERT_STR_CONTAINS(opbuf_str(&b), "2250m");
    check_golden("savings.txt", opbuf_str(&b), b.len);
    opbuf_release(&b);
    cli_state_release(&s);
    env_stop(&e);
}

static char *slurp(const char *dir, const char *name)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    size_t n;
    return test_read_file(p, &n);
}

static void test_export_is_idempotent(void)
{
    env e;
    env_start(&e, 1);
    cli_state s;
    cli_scope sc = {.all = 1};
    fetch(&e, &sc, &s);
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/optipod-cli-export-%d", (int)getpid());
    operr err;
    size_t n = 0;
    ASSERT_EQ_INT(cli_export(&s, CLI_EXPORT_KUSTOMIZE, dir, &n, &err), 0);
    ASSERT_EQ_INT(n, 2); /* web and db change; api is applied */
    char *k = slurp(dir, "kustomization.yaml");
    char *w = slurp(dir, "deployment-shop-web.yaml");
    ASSERT_STR_CONTAINS(k, "kind: Component");
    ASSERT_STR_CONTAINS(k, "statefulset-shop-db.yaml");
    check_golden("export-deployment-shop-web.yaml", w, strlen(w));
    struct stat st1, st2;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/deployment-shop-web.yaml", dir);
    ASSERT_EQ_INT(stat(p, &st1), 0);
    ASSERT_EQ_INT(cli_export(&s, CLI_EXPORT_KUSTOMIZE, dir, &n, &err), 0);
    ASSERT_EQ_INT(stat(p, &st2), 0);
    ASSERT_EQ_INT(st1.st_ino, st2.st_ino); /* not rewritten (rename would change it) */
    char *k2 = slurp(dir, "kustomization.yaml"), *w2 = slurp(dir, "deployment-shop-web.yaml");
    ASSERT_STR_EQ(k, k2);
    ASSERT_STR_EQ(w, w2);
    ASSERT_EQ_INT(cli_export(&s, CLI_EXPORT_HELM, dir, &n, &err), 0);
    char *h = slurp(dir, "values-optipod.yaml");
    ASSERT_STR_CONTAINS(h, "deployment-shop-web:");
    ASSERT_STR_CONTAINS(h, "384Mi");
    /* headers name the command that wrote them */
    ASSERT_STR_CONTAINS(k, "# Generated by `kubectl optipod export --format kustomize`");
    ASSERT(!strstr(k, "optipod plan"));
    ASSERT_STR_CONTAINS(h, "# Generated by `kubectl optipod export --format helm-values`");
    free(k);
    free(w);
    free(k2);
    free(w2);
    free(h);
    const char *files[] = {"kustomization.yaml", "deployment-shop-web.yaml",
                           "statefulset-shop-db.yaml", "values-optipod.yaml"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    cli_state_release(&s);
    env_stop(&e);
}

/* Issue 13 point 4: --format patch wrote the same files as kustomize. Now plain
 * patch files, each saying how to apply it, and no kustomization.yaml. */
static void test_export_patch_differs_from_kustomize(void)
{
    env e;
    env_start(&e, 1);
    cli_state s;
    cli_scope sc = {.all = 1};
    fetch(&e, &sc, &s);
    char dir[64], p[PATH_MAX];
    snprintf(dir, sizeof dir, "/tmp/optipod-cli-patch-%d", (int)getpid());
    operr err;
    size_t n = 0;
    ASSERT_EQ_INT(cli_export(&s, CLI_EXPORT_PATCH, dir, &n, &err), 0);
    ASSERT_EQ_INT(n, 2);
    snprintf(p, sizeof p, "%s/kustomization.yaml", dir);
    ASSERT_NE_INT(access(p, F_OK), 0);
    char *w = slurp(dir, "deployment-shop-web.yaml");
    ASSERT_STR_CONTAINS(w, "# Generated by `kubectl optipod export --format patch`");
    ASSERT_STR_CONTAINS(w, "#   kubectl patch deployment web -n shop --type strategic "
                           "--patch-file deployment-shop-web.yaml\n");
    /* the patch itself is the kustomize one: only the header differs */
    char *golden = test_read_file(GOLDEN "/export-deployment-shop-web.yaml", &(size_t){0});
    ASSERT_STR_CONTAINS(w, golden);
    free(golden);
    free(w);
    const char *files[] = {"deployment-shop-web.yaml", "statefulset-shop-db.yaml"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        ASSERT_EQ_INT(unlink(p), 0);
    }
    ASSERT_EQ_INT(rmdir(dir), 0);
    cli_state_release(&s);
    env_stop(&e);
}

static void test_gitops_snippets(void)
{
    env e;
    env_start(&e, 1);
    cli_state s;
    cli_scope sc = {.ns = "shop"};
    fetch(&e, &sc, &s);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    operr err;
    ASSERT_EQ_INT(cli_render_gitops(&s, CLI_GITOPS_ARGOCD, &b, &err), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&b), "managedFieldsManagers");
    ASSERT_STR_CONTAINS(opbuf_str(&b), "- optipod");
    ASSERT_STR_CONTAINS(opbuf_str(&b), "RespectIgnoreDifferences=true");
    /* one Application spec with one merged list, not a spec: per workload */
    cJSON *app = NULL;
    ASSERT_EQ_INT(yaml2json_parse(opbuf_str(&b), b.len, &app, &err), 0);
    const cJSON *ign = cJSON_GetObjectItem(cJSON_GetObjectItem(app, "spec"), "ignoreDifferences");
    ASSERT_EQ_INT(cJSON_GetArraySize(ign), 2);
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(ign, 1), "name")->valuestring, "db");
    ASSERT(!strstr(strstr(opbuf_str(&b), "spec:") + 1, "spec:"));
    cJSON_Delete(app);
    check_golden("gitops-argocd.yaml", opbuf_str(&b), b.len);
    opbuf_reset(&b);
    ASSERT_EQ_INT(cli_render_gitops(&s, CLI_GITOPS_FLUX, &b, &err), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&b), "driftIgnoreRules");
    /* envoy is the second container: its real index */
    ASSERT_STR_CONTAINS(opbuf_str(&b), "/spec/template/spec/containers/1/resources/requests/cpu");
    check_golden("gitops-flux.yaml", opbuf_str(&b), b.len);
    opbuf_release(&b);
    cli_state_release(&s);
    env_stop(&e);
}

/* ---- release on the recorded container-removal sequence -------------------------------------- */

static cJSON *fixture(const char *name)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", test_fixture_dir(), name);
    size_t n;
    char *s = test_read_file(p, &n);
    cJSON *v = NULL;
    if (strstr(name, ".yaml")) {
        operr err;
        ASSERT_EQ_INT(yaml2json_parse(s, n, &v, &err), 0);
    } else {
        v = cJSON_ParseWithLength(s, n);
    }
    free(s);
    ASSERT_NOT_NULL(v);
    return v;
}

#define TWOC "/apis/apps/v1/namespaces/default/deployments/twoc"

static void seed_twoc(env *e)
{
    cJSON *o = fixture("container-removal-state-before-release.json");
    cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "annotations");
    cJSON_AddStringToObject(ann, "optipod.io/cpu-request.app", "200m");
    cJSON_AddStringToObject(ann, "optipod.io/cpu-request.sidecar", "50m");
    cJSON_AddStringToObject(ann, "optipod.io/strategy", "recommend");
    ASSERT_EQ_INT(fakeapi_put(e->fa, o), 0);
    cJSON_Delete(o);
}

static long gitops_apply(env *e, char *msg, size_t cap)
{
    cJSON *y = fixture("deployment-sidecar-removed.yaml");
    char *body = cJSON_PrintUnformatted(y);
    cli_resp r;
    operr err;
    ASSERT_EQ_INT(cli_call(&e->c, "PATCH", TWOC "?fieldManager=argocd-controller&force=true",
                           "application/apply-patch+yaml", body, strlen(body), &r, &err),
                  0);
    snprintf(msg, cap, "%s", r.msg);
    opbuf_release(&r.body);
    cJSON_free(body);
    cJSON_Delete(y);
    return r.status;
}

static const cJSON *ctr(const cJSON *obj, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(
        c, cJSON_GetObjectItem(
               cJSON_GetObjectItem(
                   cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "spec"), "template"), "spec"),
               "containers"))
    {
        if (!strcmp(cJSON_GetObjectItem(c, "name")->valuestring, name))
            return c;
    }
    return NULL;
}

static const char *cpu_of(const cJSON *c)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(c, "resources"), "requests"), "cpu"));
}

static void test_without_release_the_gitops_removal_is_rejected(void)
{
    env e;
    env_start(&e, 0);
    seed_twoc(&e);
    char msg[1024];
    ASSERT_EQ_INT(gitops_apply(&e, msg, sizeof msg), 422);
    env_stop(&e);
}

static void test_release_container_unblocks_the_gitops_removal(void)
{
    env e;
    env_start(&e, 0);
    seed_twoc(&e);
    opbuf rep;
    opbuf_init(&rep, 1 << 20);
    operr err;
    cli_release_opts o = {.ns = "default", .ref = "deployment/twoc", .container = "sidecar"};
    if (cli_release(&e.c, &o, &rep, &err))
        test_fail(__FILE__, __LINE__, "release: %s", err.msg);
    ASSERT_STR_CONTAINS(opbuf_str(&rep), "kept container sidecar.requests.cpu=50m");
    ASSERT_STR_CONTAINS(opbuf_str(&rep), "no value was deleted");
    ASSERT(!strstr(opbuf_str(&rep), "WARNING"));
    ASSERT_STR_CONTAINS(opbuf_str(&rep), "optipod no longer owns the released fields");
    /* the neutral manager's patch, then optipod's apply, then the marker */
    const fakeapi_logged *h = NULL, *mark = NULL;
    for (size_t i = 0; i < fakeapi_log_count(e.fa); i++) {
        const fakeapi_logged *l = fakeapi_log_at(e.fa, i);
        if (!strcmp(l->method, "PATCH") && strstr(l->path, "fieldManager=optipod-release"))
            *(!strcmp(l->content_type, "application/json-patch+json") ? &h : &mark) = l;
    }
    ASSERT_NOT_NULL(h);
    ASSERT_NOT_NULL(mark);
    ASSERT_STR_EQ(mark->content_type, "application/merge-patch+json");
    ASSERT_STR_CONTAINS(opbuf_str(&rep), "marked optipod.io/managed.sidecar: \"false\"");
    ASSERT_STR_CONTAINS(h->body, "\"op\":\"test\",\"path\":\"/metadata/resourceVersion\"");
    const fakeapi_logged *ap = fakeapi_log_last(e.fa, "PATCH", "fieldManager=optipod&force=true");
    ASSERT_NOT_NULL(ap);
    ASSERT(!strstr(ap->body, "sidecar"));
    const cJSON *live = fakeapi_get(e.fa, TWOC);
    ASSERT_STR_EQ(cpu_of(ctr(live, "sidecar")), "50m"); /* never deleted */
    ASSERT_STR_EQ(cpu_of(ctr(live, "app")), "200m");
    mfields mf;
    mfields_init(&mf);
    ASSERT_EQ_INT(mfields_parse(&mf, live, &err), 0);
    ASSERT_EQ_INT(mfields_holds_container(&mf, MFIELDS_OPTIPOD, MFIELDS_CONTAINERS, "sidecar"), 0);
    ASSERT_EQ_INT(mfields_holds_container(&mf, MFIELDS_OPTIPOD, MFIELDS_CONTAINERS, "app"), 1);
    char path[MFIELDS_PATH_MAX];
    mfields_path_resource(path, sizeof path, MFIELDS_CONTAINERS, "sidecar", "requests", "cpu");
    const mfields_entry *own[4];
    ASSERT_EQ_INT(mfields_owners(&mf, path, NULL, own, 4), 1);
    ASSERT_STR_EQ(own[0]->manager, "optipod-release");
    ASSERT_EQ_INT(own[0]->op, MFIELDS_OP_UPDATE);
    ASSERT_EQ_INT(mfields_pins_item(&mf, "optipod-release", MFIELDS_CONTAINERS, "sidecar"), 0);
    mfields_release(&mf);
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(live, "metadata"), "annotations");
    ASSERT_NULL(cJSON_GetObjectItem(ann, "optipod.io/cpu-request.sidecar"));
    ASSERT_NOT_NULL(cJSON_GetObjectItem(ann, "optipod.io/cpu-request.app"));
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/managed.sidecar")->valuestring, "false");
    ASSERT_NULL(cJSON_GetObjectItem(ann, "optipod.io/managed"));
    /* the GitOps tool's apply that drops the sidecar now succeeds */
    char msg[1024];
    long st = gitops_apply(&e, msg, sizeof msg);
    if (st != 200)
        test_fail(__FILE__, __LINE__, "gitops apply: HTTP %ld: %s", st, msg);
    live = fakeapi_get(e.fa, TWOC);
    ASSERT_NULL(ctr(live, "sidecar"));
    ASSERT_STR_EQ(cpu_of(ctr(live, "app")), "200m");
    opbuf_release(&rep);
    env_stop(&e);
}

static void test_release_dry_run_and_whole_workload(void)
{
    env e;
    env_start(&e, 0);
    seed_twoc(&e);
    char *before = fakeapi_get_json(e.fa, TWOC);
    opbuf rep;
    opbuf_init(&rep, 1 << 20);
    operr err;
    cli_release_opts o = {.ns = "default", .ref = "deploy/twoc", .dry_run = 1};
    ASSERT_EQ_INT(cli_release(&e.c, &o, &rep, &err), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&rep), "[dry run]");
    ASSERT_STR_CONTAINS(opbuf_str(&rep), "would be removed");
    char *after = fakeapi_get_json(e.fa, TWOC);
    ASSERT_STR_EQ(before, after);
    free(before);
    free(after);
    opbuf_reset(&rep);
    o.dry_run = 0;
    ASSERT_EQ_INT(cli_release(&e.c, &o, &rep, &err), 0);
    const cJSON *live = fakeapi_get(e.fa, TWOC);
    ASSERT_STR_EQ(cpu_of(ctr(live, "sidecar")), "50m");
    ASSERT_STR_EQ(cpu_of(ctr(live, "app")), "200m");
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(live, "metadata"), "annotations");
    ASSERT_NULL(cJSON_GetObjectItem(ann, "optipod.io/strategy"));
    ASSERT_NOT_NULL(cJSON_GetObjectItem(ann, "deployment.kubernetes.io/revision"));
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/managed")->valuestring, "false");
    mfields mf;
    mfields_init(&mf);
    ASSERT_EQ_INT(mfields_parse(&mf, live, &err), 0);
    ASSERT_EQ_INT(mfields_holds_container(&mf, MFIELDS_OPTIPOD, MFIELDS_CONTAINERS, "app"), 0);
    mfields_release(&mf);
    /* errors name the object */
    cli_release_opts bad = {.ns = "default", .ref = "deploy/twoc", .container = "nope"};
    ASSERT_EQ_INT(cli_release(&e.c, &bad, &rep, &err), -ENOENT);
    ASSERT_STR_CONTAINS(err.msg, "has no container \"nope\"");
    cli_release_opts gone = {.ns = "default", .ref = "deploy/missing"};
    ASSERT_EQ_INT(cli_release(&e.c, &gone, &rep, &err), -ENOENT);
    ASSERT_STR_CONTAINS(err.msg, "not found");
    opbuf_release(&rep);
    env_stop(&e);
}

/* `release` marks, `manage` unmarks (docs/recommendation.md, "Release"); a second
 * release keeps the marker (it is not one of optipod's annotations to drop). */
static void test_manage_undoes_the_release(void)
{
    env e;
    env_start(&e, 0);
    seed_twoc(&e);
    opbuf rep;
    opbuf_init(&rep, 1 << 20);
    operr err;
    cli_release_opts o = {.ns = "default", .ref = "deploy/twoc", .container = "sidecar"};
    ASSERT_EQ_INT(cli_manage(&e.c, &o, &rep, &err), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&rep), "not released; nothing to do");
    ASSERT_EQ_INT(cli_release(&e.c, &o, &rep, &err), 0);
    o.container = NULL;
    ASSERT_EQ_INT(cli_release(&e.c, &o, &rep, &err), 0);
    ASSERT_EQ_INT(cli_release(&e.c, &o, &rep, &err), 0); /* again: the marker stays */
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(fakeapi_get(e.fa, TWOC), "metadata"),
                                           "annotations");
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/managed")->valuestring, "false");
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/managed.sidecar")->valuestring, "false");
    /* one container of a workload released as a whole: the whole first */
    o.container = "sidecar";
    ASSERT_EQ_INT(cli_manage(&e.c, &o, &rep, &err), -EBUSY);
    ASSERT_STR_CONTAINS(err.msg, "released as a whole: `kubectl optipod manage deploy/twoc` first");
    o.container = NULL;
    o.dry_run = 1;
    opbuf_reset(&rep);
    ASSERT_EQ_INT(cli_manage(&e.c, &o, &rep, &err), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&rep), "[dry run] Deployment default/twoc: would be managed");
    ann = cJSON_GetObjectItem(cJSON_GetObjectItem(fakeapi_get(e.fa, TWOC), "metadata"),
                              "annotations");
    ASSERT_NOT_NULL(cJSON_GetObjectItem(ann, "optipod.io/managed"));
    o.dry_run = 0;
    opbuf_reset(&rep);
    ASSERT_EQ_INT(cli_manage(&e.c, &o, &rep, &err), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&rep), "Deployment default/twoc: managed again");
    ann = cJSON_GetObjectItem(cJSON_GetObjectItem(fakeapi_get(e.fa, TWOC), "metadata"),
                              "annotations");
    ASSERT_NULL(cJSON_GetObjectItem(ann, "optipod.io/managed"));
    ASSERT_NULL(cJSON_GetObjectItem(ann, "optipod.io/managed.sidecar"));
    ASSERT_NOT_NULL(cJSON_GetObjectItem(ann, "deployment.kubernetes.io/revision"));
    const fakeapi_logged *l = fakeapi_log_last(e.fa, "PATCH", NULL);
    ASSERT_STR_CONTAINS(l->path, "fieldManager=optipod-release");
    ASSERT_STR_EQ(l->content_type, "application/merge-patch+json");
    opbuf_release(&rep);
    env_stop(&e);
}

int main(void)
{
    TEST_RUN(test_explanation_annotation_is_capped);
    TEST_RUN(test_explanation_left_the_annotations);
    TEST_RUN(test_recommendations_golden);
    TEST_RUN(test_records_are_the_source_of_truth);
    TEST_RUN(test_conflicting_managers_are_named_once);
    TEST_RUN(test_unnamed_objects);
    TEST_RUN(test_savings_totals_saturate);
    TEST_RUN(test_scope_and_selector);
    TEST_RUN(test_missing_crd_is_named);
    TEST_RUN(test_explain_and_savings);
    TEST_RUN(test_export_is_idempotent);
    TEST_RUN(test_export_patch_differs_from_kustomize);
    TEST_RUN(test_gitops_snippets);
    TEST_RUN(test_without_release_the_gitops_removal_is_rejected);
    TEST_RUN(test_release_container_unblocks_the_gitops_removal);
    TEST_RUN(test_release_dry_run_and_whole_workload);
    TEST_RUN(test_manage_undoes_the_release);
    return test_summary();
}
