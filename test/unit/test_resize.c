/*
 * resize: the QoS table (Kubernetes' GetPodQOS rules with init containers,
 * partial limits, zero values, quantity spellings), the resizePolicy table,
 * pod skip reasons, the QoS guard, byte-exact patch bodies and paths, the
 * mode decision, the tracking state machine, and the resize sent to the fake
 * API server's pods/resize subresource (and the pod PATCH fallback), read back.
 */
#include "test.h"
#include "support/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "apply/resize.h"
#include "http/http.h"
#include "kube/config.h"
#include "kube/project.h"
#include "kube/rest.h"
#include "support/fakeapi.h"
#include "util/buf.h"

/* ---- pods ------------------------------------------------------------------------------------ */

/* A container: name and its "resources" object body (may be ""), plus extra members. */
#define CT(name, res) "{\"name\":\"" name "\",\"image\":\"img\",\"resources\":{" res "}}"
#define CTP(name, res, policy)                                                                     \
    "{\"name\":\"" name "\",\"image\":\"img\",\"resources\":{" res "},\"resizePolicy\":[" policy   \
    "]}"
#define RP(res, pol)       "{\"resourceName\":\"" res "\",\"restartPolicy\":\"" pol "\"}"
#define REQ(cpu, mem)      "\"requests\":{\"cpu\":\"" cpu "\",\"memory\":\"" mem "\"}"
#define LIM(cpu, mem)      "\"limits\":{\"cpu\":\"" cpu "\",\"memory\":\"" mem "\"}"
#define RL(rc, rm, lc, lm) REQ(rc, rm) "," LIM(lc, lm)

static char pod_buf[8192];

/* The pod JSON: containers, init containers (JSON array bodies) and status members. */
static const char *pod_json(const char *containers, const char *init, const char *status)
{
    snprintf(pod_buf, sizeof(pod_buf),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-0\","
             "\"namespace\":\"default\",\"uid\":\"0b5c4f3e-1111-4c3a-9a0e-6f1d2c3b4a59\"},"
             "\"spec\":{\"containers\":[%s]%s%s%s},\"status\":{\"phase\":\"Running\"%s%s}}",
             containers, init ? ",\"initContainers\":[" : "", init ? init : "", init ? "]" : "",
             status ? "," : "", status ? status : "");
    return pod_buf;
}

static kproj_obj *mkpod(const char *containers, const char *init, const char *status)
{
    cJSON *j = cJSON_Parse(pod_json(containers, init, status));
    ASSERT_NOT_NULL(j);
    kproj_obj *o = NULL;
    int rc = kproj_from_json(j, KPROJ_POD, &o);
    cJSON_Delete(j);
    ASSERT_EQ_INT(rc, 0);
    return o;
}

/* ---- QoS ------------------------------------------------------------------------------------- */

static void test_qos_table(void)
{
    static const struct {
        const char *what, *containers, *init;
        enum resize_qos want;
    } cases[] = {
        {"no resources", CT("a", ""), NULL, RESIZE_QOS_BEST_EFFORT},
        {"requests only", CT("a", REQ("100m", "128Mi")), NULL, RESIZE_QOS_BURSTABLE},
        {"equal requests and limits", CT("a", RL("500m", "256Mi", "500m", "256Mi")), NULL,
         RESIZE_QOS_GUARANTEED},
        {"limits only (requests default to them)", CT("a", LIM("1", "1Gi")), NULL,
         RESIZE_QOS_GUARANTEED},
        {"same value, other spelling", CT("a", RL("1000m", "1Gi", "1", "1024Mi")), NULL,
         RESIZE_QOS_GUARANTEED},
        {"0.5 cores is 500m", CT("a", RL("0.5", "0.5Gi", "500m", "512Mi")), NULL,
         RESIZE_QOS_GUARANTEED},
        {"cpu limit only", CT("a", "\"limits\":{\"cpu\":\"1\"}"), NULL, RESIZE_QOS_BURSTABLE},
        {"request below limit", CT("a", RL("250m", "256Mi", "500m", "256Mi")), NULL,
         RESIZE_QOS_BURSTABLE},
        {"one container without limits", CT("a", RL("1", "1Gi", "1", "1Gi")) "," CT("b", ""), NULL,
         RESIZE_QOS_BURSTABLE},
        {"two guaranteed containers",
         CT("a", RL("1", "1Gi", "1", "1Gi")) "," CT("b", RL("100m", "64Mi", "100m", "64Mi")), NULL,
         RESIZE_QOS_GUARANTEED},
        {"init container without limits breaks Guaranteed", CT("a", RL("1", "1Gi", "1", "1Gi")),
         CT("init", ""), RESIZE_QOS_BURSTABLE},
        {"guaranteed init container", CT("a", RL("1", "1Gi", "1", "1Gi")),
         CT("init", RL("200m", "32Mi", "200m", "32Mi")), RESIZE_QOS_GUARANTEED},
        {"only the init container has resources", CT("a", ""), CT("init", REQ("10m", "8Mi")),
         RESIZE_QOS_BURSTABLE},
        {"zero requests are ignored", CT("a", "\"requests\":{\"cpu\":\"0\",\"memory\":\"0\"}"),
         NULL, RESIZE_QOS_BEST_EFFORT},
        {"zero limits do not count as limits",
         CT("a", "\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"limits\":{\"cpu\":\"0\","
                 "\"memory\":\"1Gi\"}"),
         NULL, RESIZE_QOS_BURSTABLE},
        {"other resources do not count",
         CT("a", "\"requests\":{\"ephemeral-storage\":\"1Gi\"},\"limits\":{\"ephemeral-storage\":"
                 "\"1Gi\",\"hugepages-2Mi\":\"2Mi\"}"),
         NULL, RESIZE_QOS_BEST_EFFORT},
        {"guaranteed plus an extended resource",
         CT("a", "\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\",\"nvidia.com/gpu\":\"1\"},"
                 "\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\",\"nvidia.com/gpu\":\"1\"}"),
         NULL, RESIZE_QOS_GUARANTEED},
        {"nano precision", CT("a", RL("1n", "1", "2n", "1")), NULL, RESIZE_QOS_BURSTABLE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kproj_obj *o = mkpod(cases[i].containers, cases[i].init, NULL);
        enum resize_qos got = resize_qos_of(o);
        kproj_free(o);
        if (got != cases[i].want)
            test_fail(__FILE__, __LINE__, "%s: got %s, want %s", cases[i].what,
                      resize_qos_name(got), resize_qos_name(cases[i].want));
    }
    ASSERT_STR_EQ(resize_qos_name(RESIZE_QOS_BEST_EFFORT), "BestEffort");
}

/* ---- planning -------------------------------------------------------------------------------- */

static resize_plan plan;

static void make_plan(kproj_obj *pod, const resize_want *w, size_t n, const resize_opts *o)
{
    resize_plan_make(pod, 0, w, n, o, &plan);
}

static char *body_of(enum resize_mode mode, const char *uid)
{
    opbuf b;
    opbuf_init(&b, 1 << 16);
    ASSERT_EQ_INT(resize_body(&plan, mode, uid, &b), 0);
    return opbuf_detach(&b, NULL);
}

static int has_note(enum resize_note_kind k, const char *container, const char *res)
{
    for (size_t i = 0; i < plan.nnotes; i++)
        if (plan.notes[i].kind == k && strcmp(plan.notes[i].container, container) == 0 &&
            strcmp(plan.notes[i].resource, res) == 0)
            return 1;
    return 0;
}

static void test_plan_burstable_body(void)
{
    kproj_obj *pod = mkpod(CT("app", RL("100m", "128Mi", "500m", "256Mi")) "," CT(
                               "sidecar", RL("50m", "32Mi", "100m", "64Mi")),
                           NULL, "\"qosClass\":\"Burstable\"");
    resize_want w[] = {
        {.name = "sidecar", .cpu_request = "20m"},
        {.name = "app", .cpu_request = "250m", .memory_request = "200Mi"},
    };
    make_plan(pod, w, 2, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_PATCH);
    ASSERT_EQ_INT(plan.qos_before, RESIZE_QOS_BURSTABLE);
    ASSERT_EQ_INT(plan.qos_after, RESIZE_QOS_BURSTABLE);
    ASSERT_EQ_INT(plan.nitems, 2);
    char *b = body_of(RESIZE_MODE_SUBRESOURCE, "ignored");
    /* Spec order, only what changes, no uid on the subresource. */
    ASSERT_STR_EQ(b, "{\"spec\":{\"containers\":["
                     "{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"250m\","
                     "\"memory\":\"200Mi\"}}},"
                     "{\"name\":\"sidecar\",\"resources\":{\"requests\":{\"cpu\":\"20m\"}}}]}}");
    free(b);
    b = body_of(RESIZE_MODE_POD_PATCH, "0b5c4f3e-1111-4c3a-9a0e-6f1d2c3b4a59");
    ASSERT_STR_EQ(b, "{\"metadata\":{\"uid\":\"0b5c4f3e-1111-4c3a-9a0e-6f1d2c3b4a59\"},"
                     "\"spec\":{\"containers\":["
                     "{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"250m\","
                     "\"memory\":\"200Mi\"}}},"
                     "{\"name\":\"sidecar\",\"resources\":{\"requests\":{\"cpu\":\"20m\"}}}]}}");
    free(b);

    /* Limits too, in canonical spellings ("1Gi", "1"). */
    resize_want wl = {.name = "app",
                      .cpu_request = "0.3",
                      .memory_request = "268435456",
                      .cpu_limit = "1000m",
                      .memory_limit = "1Gi"};
    make_plan(pod, &wl, 1, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_PATCH);
    b = body_of(RESIZE_MODE_SUBRESOURCE, NULL);
    ASSERT_STR_EQ(b, "{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{"
                     "\"requests\":{\"cpu\":\"300m\",\"memory\":\"256Mi\"},"
                     "\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]}}");
    free(b);

    /* Limit only. */
    resize_want lo = {.name = "app", .memory_limit = "512Mi"};
    make_plan(pod, &lo, 1, NULL);
    b = body_of(RESIZE_MODE_SUBRESOURCE, NULL);
    ASSERT_STR_EQ(b, "{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{"
                     "\"limits\":{\"memory\":\"512Mi\"}}}]}}");
    free(b);

    /* The same values spelled differently are no change. */
    resize_want same = {.name = "app", .cpu_request = "0.1", .memory_request = "131072Ki"};
    make_plan(pod, &same, 1, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_UNCHANGED);
    ASSERT_EQ_INT(plan.nitems, 0);
    opbuf ob;
    opbuf_init(&ob, 1024);
    ASSERT_EQ_INT(resize_body(&plan, RESIZE_MODE_SUBRESOURCE, NULL, &ob), -EINVAL);
    make_plan(pod, w, 2, NULL);
    ASSERT_EQ_INT(resize_body(&plan, RESIZE_MODE_NONE, NULL, &ob), -EINVAL);
    opbuf_release(&ob);
    kproj_free(pod);
}

static void test_plan_limit_raised_to_request(void)
{
    kproj_obj *pod = mkpod(CT("app", RL("100m", "128Mi", "500m", "256Mi")), NULL, NULL);
    resize_want w = {.name = "app", .cpu_request = "800m"};
    make_plan(pod, &w, 1, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_PATCH);
    ASSERT(has_note(RESIZE_N_LIMIT_RAISED, "app", "cpu"));
    char *b = body_of(RESIZE_MODE_SUBRESOURCE, NULL);
    ASSERT_STR_EQ(b, "{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{"
                     "\"requests\":{\"cpu\":\"800m\"},\"limits\":{\"cpu\":\"800m\"}}}]}}");
    free(b);
    kproj_free(pod);
}

static void test_plan_qos_guard(void)
{
    /* Guaranteed: limits follow requests by default. */
    kproj_obj *g = mkpod(CT("app", RL("500m", "256Mi", "500m", "256Mi")) "," CT(
                             "proxy", RL("100m", "64Mi", "100m", "64Mi")),
                         NULL, "\"qosClass\":\"Guaranteed\"");
    resize_want w = {.name = "app", .cpu_request = "300m", .memory_request = "384Mi"};
    make_plan(g, &w, 1, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_PATCH);
    ASSERT_EQ_INT(plan.qos_after, RESIZE_QOS_GUARANTEED);
    ASSERT(has_note(RESIZE_N_LIMIT_FOLLOWS, "app", "cpu"));
    ASSERT(has_note(RESIZE_N_LIMIT_RAISED, "app", "memory")); /* 384Mi > 256Mi: raised first */
    ASSERT(!has_note(RESIZE_N_LIMIT_FOLLOWS, "app", "memory"));
    char *b = body_of(RESIZE_MODE_SUBRESOURCE, NULL);
    ASSERT_STR_EQ(b, "{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{"
                     "\"requests\":{\"cpu\":\"300m\",\"memory\":\"384Mi\"},"
                     "\"limits\":{\"cpu\":\"300m\",\"memory\":\"384Mi\"}}}]}}");
    free(b);

    /* A wanted limit apart from the request: in a Guaranteed pod the request wins. */
    resize_want wr = {.name = "proxy", .cpu_request = "200m", .cpu_limit = "400m"};
    make_plan(g, &wr, 1, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_PATCH);
    ASSERT(has_note(RESIZE_N_LIMIT_FOLLOWS, "proxy", "cpu"));
    b = body_of(RESIZE_MODE_SUBRESOURCE, NULL);
    ASSERT_STR_EQ(b, "{\"spec\":{\"containers\":[{\"name\":\"proxy\",\"resources\":{"
                     "\"requests\":{\"cpu\":\"200m\"},\"limits\":{\"cpu\":\"200m\"}}}]}}");
    free(b);

    /* Without keep_guaranteed: refused, naming the container and resource. */
    resize_opts o;
    resize_opts_defaults(&o);
    ASSERT_EQ_INT(o.keep_guaranteed, 1);
    ASSERT_EQ_INT(o.allow_restart, 0);
    o.keep_guaranteed = 0;
    resize_want wc = {.name = "proxy", .cpu_request = "50m"};
    make_plan(g, &wc, 1, &o);
    ASSERT_EQ_INT(plan.outcome, RESIZE_REFUSED);
    ASSERT_EQ_INT(plan.reason, RESIZE_R_QOS);
    ASSERT_EQ_INT(plan.qos_after, RESIZE_QOS_BURSTABLE);
    ASSERT_STR_EQ(plan.detail,
                  "container \"proxy\" cpu: the QoS class would change from Guaranteed to "
                  "Burstable");
    ASSERT_STR_EQ(resize_reason_name(plan.reason), "QoSClassWouldChange");

    /* A limit apart from its request cannot keep Guaranteed: refused even by default. */
    resize_want wl = {.name = "app", .memory_limit = "1Gi"};
    make_plan(g, &wl, 1, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_REFUSED);
    ASSERT_STR_CONTAINS(plan.detail, "\"app\" memory");
    kproj_free(g);

    /* Burstable → Guaranteed is refused: the request would meet the limit. */
    kproj_obj *bu = mkpod(CT("app", RL("100m", "256Mi", "500m", "256Mi")), NULL, NULL);
    resize_want up = {.name = "app", .cpu_request = "500m"};
    make_plan(bu, &up, 1, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_REFUSED);
    ASSERT_STR_EQ(plan.detail, "container \"app\" cpu: the QoS class would change from Burstable "
                               "to Guaranteed");
    kproj_free(bu);

    /* ... unless an init container keeps the pod Burstable anyway. */
    bu = mkpod(CT("app", RL("100m", "256Mi", "500m", "256Mi")), CT("migrate", ""), NULL);
    make_plan(bu, &up, 1, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_PATCH);
    ASSERT_EQ_INT(plan.qos_after, RESIZE_QOS_BURSTABLE);
    kproj_free(bu);

    /* BestEffort cannot gain requests in place. */
    kproj_obj *be = mkpod(CT("app", ""), NULL, "\"qosClass\":\"BestEffort\"");
    resize_want any = {.name = "app", .memory_request = "64Mi"};
    make_plan(be, &any, 1, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_REFUSED);
    ASSERT_STR_EQ(plan.detail, "container \"app\" memory: the QoS class would change from "
                               "BestEffort to Burstable");
    kproj_free(be);
}

static void test_plan_resize_policy_table(void)
{
    static const struct {
        const char *cpu_pol, *mem_pol; /* NULL = not listed (NotRequired) */
        int allow_restart;
        const char *body; /* NULL = unchanged */
    } cases[] = {
        {NULL, NULL, 0,
         "{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":"
         "\"200m\",\"memory\":\"192Mi\"}}}]}}"},
        {"NotRequired", "NotRequired", 0,
         "{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":"
         "\"200m\",\"memory\":\"192Mi\"}}}]}}"},
        {"NotRequired", "RestartContainer", 0,
         "{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":"
         "\"200m\"}}}]}}"},
        {"RestartContainer", "NotRequired", 0,
         "{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"requests\":{"
         "\"memory\":\"192Mi\"}}}]}}"},
        {"RestartContainer", "RestartContainer", 0, NULL},
        {"RestartContainer", "RestartContainer", 1,
         "{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":"
         "\"200m\",\"memory\":\"192Mi\"}}}]}}"},
    };
    resize_want w = {.name = "app", .cpu_request = "200m", .memory_request = "192Mi"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char containers[1024], pol[256] = "";
        if (cases[i].cpu_pol)
            snprintf(pol, sizeof(pol), RP("cpu", "%s"), cases[i].cpu_pol);
        if (cases[i].mem_pol)
            snprintf(pol + strlen(pol), sizeof(pol) - strlen(pol), "%s" RP("memory", "%s"),
                     pol[0] ? "," : "", cases[i].mem_pol);
        snprintf(containers, sizeof(containers), CTP("app", RL("100m", "128Mi", "1", "1Gi"), "%s"),
                 pol);
        kproj_obj *pod = mkpod(containers, NULL, NULL);
        resize_opts o;
        resize_opts_defaults(&o);
        o.allow_restart = cases[i].allow_restart;
        make_plan(pod, &w, 1, &o);
        if (!cases[i].body) {
            ASSERT_EQ_INT(plan.outcome, RESIZE_UNCHANGED);
            ASSERT(has_note(RESIZE_N_HELD_RESTART, "app", "cpu"));
            ASSERT(has_note(RESIZE_N_HELD_RESTART, "app", "memory"));
            ASSERT_STR_CONTAINS(plan.detail, "notes");
        } else {
            ASSERT_EQ_INT(plan.outcome, RESIZE_PATCH);
            char *b = body_of(RESIZE_MODE_SUBRESOURCE, NULL);
            if (strcmp(b, cases[i].body) != 0)
                test_fail(__FILE__, __LINE__, "case %zu: %s", i, b);
            free(b);
            int held_mem = cases[i].mem_pol && !strcmp(cases[i].mem_pol, "RestartContainer") &&
                           !cases[i].allow_restart;
            ASSERT_EQ_INT(has_note(RESIZE_N_HELD_RESTART, "app", "memory"), held_mem);
        }
        kproj_free(pod);
    }
}

static void test_plan_skip_reasons(void)
{
    static const struct {
        const char *status;
        int deleting;
        enum resize_reason reason;
        const char *detail;
    } cases[] = {
        {NULL, 1, RESIZE_R_DELETING, "pod is being deleted"},
        {"\"phase\":\"Pending\"", 0, RESIZE_R_NOT_RUNNING, "pod phase is Pending"},
        {"\"conditions\":[{\"type\":\"PodResizePending\",\"status\":\"True\",\"reason\":"
         "\"Deferred\",\"message\":\"Node didn't have enough resource: memory\"}]",
         0, RESIZE_R_PENDING, "a resize is pending (Deferred)"},
        {"\"conditions\":[{\"type\":\"PodResizePending\",\"status\":\"True\",\"reason\":"
         "\"Infeasible\"}]",
         0, RESIZE_R_PENDING, "a resize is pending (Infeasible)"},
        {"\"conditions\":[{\"type\":\"PodResizeInProgress\",\"status\":\"True\"}]", 0,
         RESIZE_R_IN_PROGRESS, "a resize is in progress"},
        {"\"resize\":\"Deferred\"", 0, RESIZE_R_PENDING, "a resize is pending (Deferred)"},
        {"\"resize\":\"Proposed\"", 0, RESIZE_R_IN_PROGRESS, "a resize is in progress (Proposed)"},
        {"\"qosClass\":\"Guaranteed\"", 0, RESIZE_R_QOS_MISMATCH,
         "status.qosClass Guaranteed differs from the spec's Burstable"},
    };
    resize_want w = {.name = "app", .cpu_request = "200m"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* "phase" given twice: cJSON keeps the first, so put the case's status first. */
        char st[512];
        snprintf(st, sizeof(st), "%s", cases[i].status ? cases[i].status : "\"x\":1");
        kproj_obj *pod = mkpod(CT("app", REQ("100m", "128Mi")), NULL, st);
        if (cases[i].status && strstr(cases[i].status, "Pending\"") &&
            strstr(cases[i].status, "phase")) {
            /* pod_json puts phase Running first; build this one by hand. */
            kproj_free(pod);
            cJSON *j = cJSON_Parse(pod_json(CT("app", REQ("100m", "128Mi")), NULL, NULL));
            cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "status"), "phase",
                                      cJSON_CreateString("Pending"));
            ASSERT_EQ_INT(kproj_from_json(j, KPROJ_POD, &pod), 0);
            cJSON_Delete(j);
        }
        resize_plan_make(pod, cases[i].deleting, &w, 1, NULL, &plan);
        ASSERT_EQ_INT(plan.outcome, RESIZE_SKIPPED);
        ASSERT_EQ_INT(plan.reason, cases[i].reason);
        ASSERT_STR_EQ(plan.detail, cases[i].detail);
        kproj_free(pod);
    }

    kproj_obj *pod = mkpod(CT("app", REQ("100m", "128Mi")), NULL, NULL);
    const char *bad[] = {"abc", "0", "-1", "1Qi"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resize_want b = {.name = "app", .memory_request = bad[i]};
        make_plan(pod, &b, 1, NULL);
        ASSERT_EQ_INT(plan.outcome, RESIZE_SKIPPED);
        ASSERT_EQ_INT(plan.reason, RESIZE_R_BAD_QUANTITY);
        ASSERT_STR_CONTAINS(plan.detail, "\"app\" memory request");
    }
    kproj_free(pod);
}

static void test_plan_never_init_containers(void)
{
    kproj_obj *pod =
        mkpod(CT("app", REQ("100m", "128Mi")), CT("migrate", REQ("100m", "128Mi")), NULL);
    resize_want w[] = {
        {.name = "migrate", .cpu_request = "500m"},
        {.name = "gone", .cpu_request = "500m"},
    };
    make_plan(pod, w, 2, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_UNCHANGED);
    ASSERT(has_note(RESIZE_N_INIT_CONTAINER, "migrate", ""));
    ASSERT(has_note(RESIZE_N_NO_CONTAINER, "gone", ""));
    resize_want both[] = {w[0], {.name = "app", .cpu_request = "150m"}};
    make_plan(pod, both, 2, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_PATCH);
    char *b = body_of(RESIZE_MODE_SUBRESOURCE, NULL);
    ASSERT(strstr(b, "migrate") == NULL);
    ASSERT_STR_EQ(b, "{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"requests\":"
                     "{\"cpu\":\"150m\"}}}]}}");
    free(b);
    kproj_free(pod);
}

static void test_paths_and_modes(void)
{
    opbuf b;
    opbuf_init(&b, 4096);
    ASSERT_EQ_INT(resize_path(RESIZE_MODE_SUBRESOURCE, "default", "web-0", &b), 0);
    ASSERT_STR_EQ(b.data, "/api/v1/namespaces/default/pods/web-0/resize");
    opbuf_reset(&b);
    ASSERT_EQ_INT(resize_path(RESIZE_MODE_POD_PATCH, "default", "web-0", &b), 0);
    ASSERT_STR_EQ(b.data, "/api/v1/namespaces/default/pods/web-0");
    ASSERT_EQ_INT(resize_path(RESIZE_MODE_NONE, "default", "web-0", &b), -EINVAL);
    ASSERT_EQ_INT(resize_path(RESIZE_MODE_POD_PATCH, "", "web-0", &b), -EINVAL);
    opbuf_release(&b);

    static const struct {
        int pods_resize, have_version, major, minor, allow;
        enum resize_mode want;
    } cases[] = {
        {KDISC_YES, 1, 1, 33, 0, RESIZE_MODE_SUBRESOURCE},
        {KDISC_YES, 0, 0, 0, 0, RESIZE_MODE_SUBRESOURCE},
        {KDISC_NO, 1, 1, 26, 1, RESIZE_MODE_NONE},
        {KDISC_NO, 1, 1, 27, 1, RESIZE_MODE_POD_PATCH},
        {KDISC_NO, 1, 1, 31, 1, RESIZE_MODE_POD_PATCH},
        {KDISC_NO, 1, 1, 32, 1, RESIZE_MODE_POD_PATCH},
        {KDISC_NO, 1, 1, 33, 1, RESIZE_MODE_NONE},
        {KDISC_NO, 1, 1, 30, 0, RESIZE_MODE_NONE},
        {KDISC_NO, 0, 0, 0, 1, RESIZE_MODE_NONE},
        {KDISC_UNKNOWN, 1, 1, 30, 1, RESIZE_MODE_NONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kdisc_info d = {.pods_resize = cases[i].pods_resize,
                        .have_version = cases[i].have_version,
                        .version = {.major = cases[i].major, .minor = cases[i].minor}};
        enum resize_mode m = resize_mode_for(&d, cases[i].allow);
        if (m != cases[i].want)
            test_fail(__FILE__, __LINE__, "case %zu: %s, want %s", i, resize_mode_name(m),
                      resize_mode_name(cases[i].want));
    }
    ASSERT_EQ_INT(resize_mode_for(NULL, 1), RESIZE_MODE_NONE);
}

/* ---- tracking -------------------------------------------------------------------------------- */

static resize_obs obs;

static void observe(const char *status_members)
{
    char st[2048];
    snprintf(st, sizeof(st), "%s", status_members ? status_members : "\"x\":1");
    cJSON *j = cJSON_Parse(pod_json(CT("app", RL("250m", "256Mi", "500m", "512Mi")), NULL, st));
    ASSERT_NOT_NULL(j);
    ASSERT_EQ_INT(resize_observe(j, &obs), 0);
    cJSON_Delete(j);
}

#define CSTAT(cpu, mem)                                                                            \
    "\"containerStatuses\":[{\"name\":\"app\",\"ready\":true,\"restartCount\":0,"                  \
    "\"resources\":{\"requests\":{\"cpu\":\"" cpu "\",\"memory\":\"" mem "\"},"                    \
    "\"limits\":{\"cpu\":\"500m\",\"memory\":\"512Mi\"}}}]"

static void track_setup(resize_track *t, kproj_obj **pod)
{
    *pod = mkpod(CT("app", RL("100m", "128Mi", "500m", "512Mi")), NULL, NULL);
    resize_want w = {.name = "app", .cpu_request = "250m", .memory_request = "256Mi"};
    make_plan(*pod, &w, 1, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_PATCH);
    resize_track_init(t, &plan, RESIZE_MODE_SUBRESOURCE, (*pod)->uid, 1000);
    ASSERT_EQ_INT(t->state, RESIZE_ST_SENT);
}

/* The projection the controller keeps observes what the JSON observes, and a
 * track driven by it completes on the same status. */
static void test_observe_from_projection(void)
{
    static const char *const statuses[] = {
        CSTAT("250m", "256Mi"),
        CSTAT("100m", "128Mi") ",\"resize\":\"InProgress\"",
        "\"conditions\":[{\"type\":\"PodResizePending\",\"status\":\"True\",\"reason\":"
        "\"Infeasible\"}]," CSTAT("100m", "128Mi"),
        "\"conditions\":[{\"type\":\"PodResizePending\",\"status\":\"True\"},{\"type\":"
        "\"PodResizeInProgress\",\"status\":\"True\",\"reason\":\"Error\"}]",
        "\"containerStatuses\":[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":"
        "\"0.25\",\"memory\":\"268435456\"}}}]",
    };
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        observe(statuses[i]);
        resize_obs from_json = obs;
        kproj_obj *pod = mkpod(CT("app", RL("250m", "256Mi", "500m", "512Mi")), NULL, statuses[i]);
        resize_obs from_proj;
        ASSERT_EQ_INT(resize_observe_pod(pod, &from_proj), 0);
        kproj_free(pod);
        ASSERT_STR_EQ(from_proj.uid, from_json.uid);
        ASSERT_EQ_INT(from_proj.running, from_json.running);
        ASSERT_EQ_INT(from_proj.deleting, 0);
        ASSERT_STR_EQ(from_proj.pending, from_json.pending);
        ASSERT_STR_EQ(from_proj.alpha_status, from_json.alpha_status);
        ASSERT_EQ_INT(from_proj.in_progress, from_json.in_progress);
        ASSERT_STR_EQ(from_proj.in_progress_reason, from_json.in_progress_reason);
        ASSERT_EQ_INT(from_proj.nstatus, 1);
        ASSERT_STR_EQ(from_proj.status[0].name, "app");
        for (int r = 0; r < 2; r++) {
            ASSERT_EQ_INT(from_proj.status[0].has_req[r],
                          (from_json.nstatus ? from_json.status[0].has_req[r] : 0));
            ASSERT_EQ_INT(from_proj.status[0].has_lim[r],
                          (from_json.nstatus ? from_json.status[0].has_lim[r] : 0));
            if (from_proj.status[0].has_req[r])
                ASSERT_EQ_INT(from_proj.status[0].req[r], from_json.status[0].req[r]);
        }
    }
    /* deletionTimestamp and a non-pod projection */
    kproj_obj *pod = mkpod(CT("app", ""), NULL, NULL);
    resize_obs o;
    ASSERT_EQ_INT(resize_observe_pod(pod, &o), 0);
    ASSERT_EQ_INT(o.nstatus, 1);
    ASSERT_EQ_INT(o.status[0].has_req[0], 0);
    pod->kind = KPROJ_DEPLOYMENT;
    ASSERT_EQ_INT(resize_observe_pod(pod, &o), -EINVAL);
    kproj_free(pod);
    ASSERT_EQ_INT(resize_observe_pod(NULL, &o), -EINVAL);
    cJSON *j = cJSON_Parse(pod_json(CT("app", ""), NULL, NULL));
    cJSON_AddItemToObject(cJSON_GetObjectItem(j, "metadata"), "deletionTimestamp",
                          cJSON_CreateString("2026-11-22T05:00:00Z"));
    ASSERT_EQ_INT(kproj_from_json(j, KPROJ_POD, &pod), 0);
    cJSON_Delete(j);
    ASSERT_EQ_INT(resize_observe_pod(pod, &o), 0);
    ASSERT_EQ_INT(o.deleting, 1);
    kproj_free(pod);

    /* a track completes from the projection of the kubelet's report */
    resize_track t;
    track_setup(&t, &pod);
    kproj_free(pod);
    ASSERT_EQ_INT(resize_track_sent(&t, 200, NULL, 1100), RESIZE_ACT_WAIT);
    pod = mkpod(CT("app", RL("250m", "256Mi", "500m", "512Mi")), NULL, CSTAT("100m", "128Mi"));
    ASSERT_EQ_INT(resize_observe_pod(pod, &o), 0);
    kproj_free(pod);
    ASSERT_EQ_INT(resize_track_step(&t, &o, 1200), RESIZE_ACT_WAIT);
    pod = mkpod(CT("app", RL("250m", "256Mi", "500m", "512Mi")), NULL, CSTAT("250m", "256Mi"));
    ASSERT_EQ_INT(resize_observe_pod(pod, &o), 0);
    kproj_free(pod);
    ASSERT_EQ_INT(resize_track_step(&t, &o, 1300), RESIZE_ACT_DONE);
}

static void test_track_happy_path(void)
{
    resize_track t;
    kproj_obj *pod;
    track_setup(&t, &pod);
    kproj_free(pod); /* the track keeps its own copy */
    observe(CSTAT("100m", "128Mi"));
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 1100), RESIZE_ACT_WAIT); /* PATCH not answered */
    ASSERT_EQ_INT(resize_track_sent(&t, 200, NULL, 1200), RESIZE_ACT_WAIT);
    ASSERT_EQ_INT(t.state, RESIZE_ST_ACCEPTED);
    observe("\"conditions\":[{\"type\":\"PodResizeInProgress\",\"status\":\"True\"}]," CSTAT(
        "100m", "128Mi"));
    ASSERT_EQ_INT(obs.in_progress, 1);
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 1300), RESIZE_ACT_WAIT);
    ASSERT_EQ_INT(t.state, RESIZE_ST_IN_PROGRESS);
    /* Half applied: still waiting. */
    observe(CSTAT("250m", "128Mi"));
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 1400), RESIZE_ACT_WAIT);
    observe(CSTAT("0.25", "256Mi"));
    ASSERT_EQ_INT(obs.nstatus, 1);
    ASSERT_EQ_INT(obs.status[0].req[RESIZE_CPU], 250);
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 1500), RESIZE_ACT_DONE);
    ASSERT_EQ_INT(t.state, RESIZE_ST_DONE);
    ASSERT_EQ_INT(resize_track_step(&t, NULL, 999999999), RESIZE_ACT_DONE);
    ASSERT_STR_EQ(resize_state_name(t.state), "Done");
}

static void test_track_pending_and_deadlines(void)
{
    resize_track t;
    kproj_obj *pod;
    track_setup(&t, &pod);
    resize_track_sent(&t, 200, NULL, 1000);
    observe("\"conditions\":[{\"type\":\"PodResizePending\",\"status\":\"True\",\"reason\":"
            "\"Deferred\"}]," CSTAT("100m", "128Mi"));
    ASSERT_STR_EQ(obs.pending, "Deferred");
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 2000), RESIZE_ACT_WAIT);
    ASSERT_EQ_INT(t.state, RESIZE_ST_DEFERRED);
    ASSERT_EQ_INT(resize_track_step(&t, NULL, 2000 + t.deferred_ms - 1), RESIZE_ACT_WAIT);
    ASSERT_EQ_INT(resize_track_step(&t, NULL, 2000 + t.deferred_ms), RESIZE_ACT_FALLBACK);
    ASSERT_STR_CONTAINS(t.detail, "deferred");
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 2000 + t.deferred_ms + 5), RESIZE_ACT_FALLBACK);

    /* Infeasible: fall back at once (condition, or the alpha status field). */
    resize_track_init(&t, &plan, RESIZE_MODE_SUBRESOURCE, pod->uid, 0);
    resize_track_sent(&t, 200, NULL, 0);
    observe("\"conditions\":[{\"type\":\"PodResizePending\",\"status\":\"True\",\"reason\":"
            "\"Infeasible\"}]");
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 10), RESIZE_ACT_FALLBACK);
    ASSERT_STR_CONTAINS(t.detail, "infeasible");
    resize_track_init(&t, &plan, RESIZE_MODE_POD_PATCH, pod->uid, 0);
    resize_track_sent(&t, 200, NULL, 0);
    observe("\"resize\":\"Infeasible\"");
    ASSERT_STR_EQ(obs.alpha_status, "Infeasible");
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 10), RESIZE_ACT_FALLBACK);

    /* The kubelet reports an error. */
    resize_track_init(&t, &plan, RESIZE_MODE_SUBRESOURCE, pod->uid, 0);
    resize_track_sent(&t, 200, NULL, 0);
    observe("\"conditions\":[{\"type\":\"PodResizeInProgress\",\"status\":\"True\",\"reason\":"
            "\"Error\",\"message\":\"cgroup write failed\"}]");
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 10), RESIZE_ACT_FALLBACK);

    /* Stall: accepted, nothing ever reported. Deferred time is not counted. */
    resize_track_init(&t, &plan, RESIZE_MODE_SUBRESOURCE, pod->uid, 0);
    resize_track_sent(&t, 200, NULL, 100);
    observe("\"conditions\":[{\"type\":\"PodResizePending\",\"status\":\"True\",\"reason\":"
            "\"Deferred\"}]");
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 200), RESIZE_ACT_WAIT);
    observe(CSTAT("100m", "128Mi"));
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 200 + 60000), RESIZE_ACT_WAIT); /* 60 s deferred */
    ASSERT_EQ_INT(t.state, RESIZE_ST_ACCEPTED);
    ASSERT_EQ_INT(resize_track_step(&t, NULL, 100 + t.stall_ms + 60000 - 1), RESIZE_ACT_WAIT);
    ASSERT_EQ_INT(resize_track_step(&t, NULL, 100 + t.stall_ms + 60000), RESIZE_ACT_FALLBACK);
    ASSERT_STR_CONTAINS(t.detail, "not completed");

    /* The pod replaced, terminating, or finished. */
    resize_track_init(&t, &plan, RESIZE_MODE_SUBRESOURCE, "another-uid", 0);
    resize_track_sent(&t, 200, NULL, 0);
    observe(NULL);
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 1), RESIZE_ACT_GONE);
    ASSERT_EQ_INT(t.state, RESIZE_ST_GONE);
    kproj_free(pod);
}

static void test_track_patch_answers(void)
{
    static const struct {
        enum resize_mode mode;
        long http;
        const char *reason, *message;
        enum resize_action want;
    } cases[] = {
        {RESIZE_MODE_SUBRESOURCE, 200, NULL, NULL, RESIZE_ACT_WAIT},
        {RESIZE_MODE_SUBRESOURCE, 0, NULL, NULL, RESIZE_ACT_RETRY},
        {RESIZE_MODE_SUBRESOURCE, 404, "NotFound", "pods \"web-0\" not found", RESIZE_ACT_GONE},
        {RESIZE_MODE_SUBRESOURCE, 404, "", "404 page not found", RESIZE_ACT_UNSUPPORTED},
        {RESIZE_MODE_SUBRESOURCE, 405, "MethodNotAllowed", "", RESIZE_ACT_UNSUPPORTED},
        {RESIZE_MODE_SUBRESOURCE, 409, "Conflict", "the object has been modified",
         RESIZE_ACT_RETRY},
        {RESIZE_MODE_POD_PATCH, 409, "Conflict",
         "Operation cannot be fulfilled on pods \"web-0\": Precondition failed: UID in "
         "precondition: 1, UID in object meta: 2",
         RESIZE_ACT_GONE},
        {RESIZE_MODE_SUBRESOURCE, 429, "TooManyRequests", "", RESIZE_ACT_RETRY},
        {RESIZE_MODE_SUBRESOURCE, 503, "ServiceUnavailable", "", RESIZE_ACT_RETRY},
        {RESIZE_MODE_POD_PATCH, 422, "Invalid",
         "Pod \"web-0\" is invalid: spec: Forbidden: pod updates may not change fields other "
         "than `spec.containers[*].image`,`spec.initContainers[*].image`",
         RESIZE_ACT_UNSUPPORTED},
        {RESIZE_MODE_SUBRESOURCE, 422, "Invalid",
         "Pod \"web-0\" is invalid: spec: Invalid value: \"Guaranteed\": Pod QOS Class may not "
         "change as a result of resizing",
         RESIZE_ACT_FALLBACK},
        {RESIZE_MODE_SUBRESOURCE, 403, "Forbidden",
         "pods \"web-0\" is forbidden: User \"system:serviceaccount:optipod:optipod\" cannot "
         "patch resource \"pods/resize\"",
         RESIZE_ACT_FALLBACK},
    };
    kproj_obj *pod;
    resize_track t;
    track_setup(&t, &pod);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        resize_track_init(&t, &plan, cases[i].mode, pod->uid, 0);
        kstatus st;
        memset(&st, 0, sizeof(st));
        st.code = (int)cases[i].http;
        snprintf(st.reason, sizeof(st.reason), "%s", cases[i].reason ? cases[i].reason : "");
        snprintf(st.message, sizeof(st.message), "%s", cases[i].message ? cases[i].message : "");
        enum resize_action a =
            resize_track_sent(&t, cases[i].http, cases[i].reason ? &st : NULL, 5);
        if (a != cases[i].want)
            test_fail(__FILE__, __LINE__, "case %zu (HTTP %ld): %s, want %s (%s)", i, cases[i].http,
                      resize_action_name(a), resize_action_name(cases[i].want), t.detail);
    }
    kproj_free(pod);
}

/* ---- against the fake API server ------------------------------------------------------------- */

static uv_loop_t loop;
static fakeapi *fa;
static ophttp_client *http;
static kcfg cfg;
static krest *rest;

typedef struct reply {
    int done;
    long status;
    char *body;
    kstatus st;
    int has_st;
} reply;

static void on_reply(const krest_reply *r, void *ud)
{
    reply *x = ud;
    x->status = r->http_status;
    x->body = strndup(r->body, r->body_len);
    if (r->status) {
        x->st = *r->status;
        x->has_st = 1;
    }
    x->done = 1;
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

static const char *live_pod =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-0\",\"namespace\":"
    "\"default\",\"labels\":{\"app\":\"web\"},\"ownerReferences\":[{\"apiVersion\":\"apps/v1\","
    "\"kind\":\"StatefulSet\",\"name\":\"web\",\"uid\":\"5f0c\",\"controller\":true}]},"
    "\"spec\":{\"nodeName\":\"node-1\",\"containers\":["
    "{\"name\":\"app\",\"image\":\"nginx:1.25\",\"resources\":{\"requests\":{\"cpu\":\"100m\","
    "\"memory\":\"128Mi\"},\"limits\":{\"cpu\":\"500m\",\"memory\":\"512Mi\"}},"
    "\"resizePolicy\":[{\"resourceName\":\"cpu\",\"restartPolicy\":\"NotRequired\"},"
    "{\"resourceName\":\"memory\",\"restartPolicy\":\"RestartContainer\"}]},"
    "{\"name\":\"log\",\"image\":\"fluent-bit:3\",\"resources\":{\"requests\":{\"cpu\":\"50m\","
    "\"memory\":\"32Mi\"}}}]},"
    "\"status\":{\"phase\":\"Running\",\"qosClass\":\"Burstable\",\"containerStatuses\":["
    "{\"name\":\"app\",\"ready\":true,\"restartCount\":0,\"resources\":{\"requests\":{\"cpu\":"
    "\"100m\",\"memory\":\"128Mi\"},\"limits\":{\"cpu\":\"500m\",\"memory\":\"512Mi\"}}}]}}";

static kproj_obj *get_pod(void)
{
    reply r = {0};
    ASSERT_EQ_INT(krest_get(rest, &KRES_PODS, "default", "web-0", NULL, on_reply, &r), 0);
    ASSERT(tloop_until_flag(&loop, &r.done, 5000));
    ASSERT_EQ_INT(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    free(r.body);
    kproj_obj *o = NULL;
    ASSERT_EQ_INT(kproj_from_json(j, KPROJ_POD, &o), 0);
    cJSON_Delete(j);
    return o;
}

static void test_fakeapi_resize(void)
{
    char dir[] = "/tmp/test_resize.XXXXXX", path[64];
    operr err = {{0}};
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    ASSERT_EQ_INT(fakeapi_start(&fa, &loop, NULL), 0);
    ASSERT_EQ_INT(fakeapi_put_json(fa, live_pod), 0);
    ASSERT_NOT_NULL(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/kubeconfig", dir);
    ASSERT_EQ_INT(fakeapi_write_kubeconfig(fa, path, NULL), 0);
    kcfg_init(&cfg);
    ASSERT_EQ_INT(kcfg_load_file(&cfg, path, NULL, &err), 0);
    unlink(path);
    rmdir(dir);
    ASSERT_EQ_INT(ophttp_client_new(&http, &loop, NULL), 0);
    ASSERT_EQ_INT(krest_new(&rest, http, &cfg, &err), 0);

    /* Plan from the live pod: memory is RestartContainer, so only CPU moves. */
    kproj_obj *pod = get_pod();
    ASSERT_NOT_NULL(pod->uid);
    resize_want w[] = {
        {.name = "app", .cpu_request = "300m", .memory_request = "256Mi"},
        {.name = "log", .cpu_request = "20m", .memory_request = "48Mi"},
    };
    make_plan(pod, w, 2, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_PATCH);
    ASSERT(has_note(RESIZE_N_HELD_RESTART, "app", "memory"));
    kdisc_info d = {.pods_resize = KDISC_YES};
    enum resize_mode mode = resize_mode_for(&d, 0);
    opbuf body, p;
    opbuf_init(&body, 1 << 16);
    opbuf_init(&p, 4096);
    ASSERT_EQ_INT(resize_body(&plan, mode, pod->uid, &body), 0);
    ASSERT_STR_EQ(body.data, "{\"spec\":{\"containers\":["
                             "{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"300m\"}}},"
                             "{\"name\":\"log\",\"resources\":{\"requests\":{\"cpu\":\"20m\","
                             "\"memory\":\"48Mi\"}}}]}}");
    ASSERT_EQ_INT(resize_path(mode, pod->ns, pod->name, &p), 0);
    resize_track t;
    resize_track_init(&t, &plan, mode, pod->uid, 0);

    reply r = {0};
    ASSERT_EQ_INT(krest_call(rest, "PATCH", p.data, "application/strategic-merge-patch+json",
                             body.data, body.len, on_reply, &r, NULL),
                  0);
    ASSERT(tloop_until_flag(&loop, &r.done, 5000));
    ASSERT_EQ_INT(r.status, 200);
    free(r.body);
    ASSERT_EQ_INT(resize_track_sent(&t, r.status, NULL, 10), RESIZE_ACT_WAIT);
    const fakeapi_logged *lg = fakeapi_log_last(fa, "PATCH", "/resize");
    ASSERT_NOT_NULL(lg);
    ASSERT_STR_EQ(lg->path, "/api/v1/namespaces/default/pods/web-0/resize");
    ASSERT_STR_EQ(lg->content_type, "application/strategic-merge-patch+json");
    ASSERT_STR_EQ(lg->body, body.data);

    /* Read back: the spec changed, nothing else did. */
    kproj_free(pod);
    pod = get_pod();
    const kproj_container *app = kproj_container_get(pod, "app");
    const kproj_container *lc = kproj_container_get(pod, "log");
    ASSERT_STR_EQ(kproj_kv_get(app->requests, app->nrequests, "cpu"), "300m");
    ASSERT_STR_EQ(kproj_kv_get(app->requests, app->nrequests, "memory"), "128Mi");
    ASSERT_STR_EQ(kproj_kv_get(app->limits, app->nlimits, "cpu"), "500m");
    ASSERT_STR_EQ(kproj_kv_get(lc->requests, lc->nrequests, "cpu"), "20m");
    ASSERT_STR_EQ(kproj_kv_get(lc->requests, lc->nrequests, "memory"), "48Mi");
    ASSERT_STR_EQ(app->image, "nginx:1.25");
    ASSERT_EQ_INT(resize_qos_of(pod), RESIZE_QOS_BURSTABLE);
    /* The same recommendation again is no change. */
    make_plan(pod, w, 2, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_UNCHANGED);

    /* The kubelet would now report the new values: the track completes. The
     * fake server has no kubelet, so write the status the way one would. */
    char *live = fakeapi_get_json(fa, "/api/v1/namespaces/default/pods/web-0");
    cJSON *j = cJSON_Parse(live);
    free(live);
    cJSON *cs = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "status"), "containerStatuses"), 0);
    cJSON *req = cJSON_GetObjectItem(cJSON_GetObjectItem(cs, "resources"), "requests");
    cJSON_ReplaceItemInObject(req, "cpu", cJSON_CreateString("300m"));
    cJSON *st = cJSON_GetObjectItem(j, "status");
    cJSON *sts = cJSON_GetObjectItem(st, "containerStatuses");
    cJSON_AddItemToArray(sts, cJSON_Parse("{\"name\":\"log\",\"resources\":{\"requests\":{\"cpu\":"
                                          "\"20m\",\"memory\":\"48Mi\"}}}"));
    ASSERT_EQ_INT(resize_observe(j, &obs), 0);
    ASSERT_EQ_INT(resize_track_step(&t, &obs, 20), RESIZE_ACT_DONE);
    cJSON_Delete(j);

    /* The pod PATCH fallback (1.27-1.31) carries the uid precondition. The fake
     * server behaves like a v1.24 one (no InPlacePodVerticalScaling): it refuses
     * a resources change through the pod itself with the real 422 Forbidden,
     * which the track reads as "this mode is unsupported here". */
    resize_want w2 = {.name = "app", .cpu_request = "400m"};
    make_plan(pod, &w2, 1, NULL);
    ASSERT_EQ_INT(plan.outcome, RESIZE_PATCH);
    opbuf_reset(&body);
    opbuf_reset(&p);
    ASSERT_EQ_INT(resize_body(&plan, RESIZE_MODE_POD_PATCH, pod->uid, &body), 0);
    ASSERT_EQ_INT(resize_path(RESIZE_MODE_POD_PATCH, pod->ns, pod->name, &p), 0);
    ASSERT(strncmp(body.data, "{\"metadata\":{\"uid\":\"", 20) == 0);
    r = (reply){0};
    ASSERT_EQ_INT(krest_call(rest, "PATCH", p.data, "application/strategic-merge-patch+json",
                             body.data, body.len, on_reply, &r, NULL),
                  0);
    ASSERT(tloop_until_flag(&loop, &r.done, 5000));
    ASSERT_EQ_INT(r.status, 422);
    free(r.body);
    ASSERT(r.has_st);
    resize_track_init(&t, &plan, RESIZE_MODE_POD_PATCH, pod->uid, 0);
    ASSERT_EQ_INT(resize_track_sent(&t, r.status, &r.st, 1), RESIZE_ACT_UNSUPPORTED);
    ASSERT_EQ_INT(t.state, RESIZE_ST_FALLBACK);
    ASSERT_STR_CONTAINS(t.detail, "in-place resize disabled");
    kproj_free(pod);
    pod = get_pod();
    app = kproj_container_get(pod, "app");
    ASSERT_STR_EQ(kproj_kv_get(app->requests, app->nrequests, "cpu"), "300m");

    /* A pod gone between plan and PATCH: 404 NotFound → GONE. */
    ASSERT_EQ_INT(fakeapi_delete(fa, "/api/v1/namespaces/default/pods/web-0"), 0);
    opbuf_reset(&p);
    ASSERT_EQ_INT(resize_path(RESIZE_MODE_SUBRESOURCE, "default", "web-0", &p), 0);
    r = (reply){0};
    ASSERT_EQ_INT(krest_call(rest, "PATCH", p.data, "application/strategic-merge-patch+json",
                             body.data, body.len, on_reply, &r, NULL),
                  0);
    ASSERT(tloop_until_flag(&loop, &r.done, 5000));
    ASSERT_EQ_INT(r.status, 404);
    free(r.body);
    make_plan(pod, &w2, 1, NULL); /* a plan borrows its pod: plan again from the live one */
    resize_track_init(&t, &plan, RESIZE_MODE_SUBRESOURCE, pod->uid, 0);
    ASSERT_EQ_INT(resize_track_sent(&t, r.status, r.has_st ? &r.st : NULL, 1), RESIZE_ACT_GONE);

    kproj_free(pod);
    opbuf_release(&body);
    opbuf_release(&p);
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

int main(void)
{
    TEST_RUN(test_qos_table);
    TEST_RUN(test_plan_burstable_body);
    TEST_RUN(test_plan_limit_raised_to_request);
    TEST_RUN(test_plan_qos_guard);
    TEST_RUN(test_plan_resize_policy_table);
    TEST_RUN(test_plan_skip_reasons);
    TEST_RUN(test_plan_never_init_containers);
    TEST_RUN(test_paths_and_modes);
    TEST_RUN(test_observe_from_projection);
    TEST_RUN(test_track_happy_path);
    TEST_RUN(test_track_pending_and_deadlines);
    TEST_RUN(test_track_patch_answers);
    TEST_RUN(test_fakeapi_resize);
    return test_summary();
}
