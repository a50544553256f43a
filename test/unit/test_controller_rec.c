/* The pure reconcile decision (lib/controller/reconcile.h) and the projection
 * hook it relies on (kproj ext through kcache). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "support/tcache.h"
#include "controller/reconcile.h"
#include "engine/quantity.h"
#include "kube/cache.h"
#include "test.h"

#define NOW 1700000000LL

static kproj_obj *workload(const char *labels, const char *ann, const char *cpu, const char *mem)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\",\"uid\":\"u1\","
             "\"resourceVersion\":\"5\",\"labels\":%s,\"annotations\":%s},"
             "\"spec\":{\"replicas\":2,\"template\":{\"spec\":{\"containers\":["
             "{\"name\":\"app\",\"image\":\"nginx\",\"resources\":{\"requests\":"
             "{\"cpu\":\"%s\",\"memory\":\"%s\"},\"limits\":{\"cpu\":\"2\",\"memory\":\"2Gi\"}}},"
             "{\"name\":\"side\",\"image\":\"envoy\"}]}}}}",
             labels, ann, cpu, mem);
    cJSON *o = cJSON_Parse(json);
    ASSERT_NOT_NULL(o);
    kproj_obj *p = NULL;
    ASSERT_EQ_INT(kproj_from_json(o, KPROJ_DEPLOYMENT, &p), 0);
    cJSON_Delete(o);
    return p;
}

static pol_policy *policy(const char *name, const char *spec)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"shop\",\"uid\":\"p-%s\","
             "\"generation\":3,\"creationTimestamp\":\"2024-01-01T00:00:00Z\"},\"spec\":%s}",
             name, name, spec);
    cJSON *o = cJSON_Parse(json);
    ASSERT_NOT_NULL(o);
    pol_policy *p = malloc(sizeof *p);
    pol_init(p);
    pol_parse(o, p, NULL);
    cJSON_Delete(o);
    return p;
}

/* One decision at a time: each releases the last. */
static ctlrec_out out;

static int decide(const ctlrec_input *in)
{
    ctlrec_out_release(&out);
    return ctlrec_decide(in, &out);
}

static void policy_free(pol_policy *p)
{
    pol_release(p);
    free(p);
}

static const mprov_container_stats app_usage = {.container = "app",
                                                .cpu_cores = 0.2,
                                                .mem_bytes = 200.0 * 1024 * 1024,
                                                .mem_peak_bytes = 220.0 * 1024 * 1024,
                                                .cpu_samples = 5000,
                                                .mem_samples = 5000,
                                                .history_s = 3 * 86400};

#define AUTO_SPEC                                                                                  \
    "{\"mode\":\"Auto\",\"weight\":%d,\"selector\":{\"workloadSelector\":{\"matchLabels\":"        \
    "{\"app\":\"web\"}}}}"

static void test_ranked_winner_and_apply_then_unchanged(void)
{
    char s1[256], s2[256];
    snprintf(s1, sizeof s1, AUTO_SPEC, 5);
    snprintf(s2, sizeof s2, AUTO_SPEC, 50);
    pol_policy *lo = policy("low", s1), *hi = policy("high", s2);
    ASSERT(lo->valid && hi->valid);
    const pol_policy *pols[] = {lo, hi};
    kproj_obj *w = workload("{\"app\":\"web\"}", "{}", "1", "1Gi");
    ctlrec_input in = {.workload = w,
                       .policies = pols,
                       .npolicies = 2,
                       .usage = &app_usage,
                       .nusage = 1,
                       .now_s = NOW};
    ASSERT_EQ_INT(decide(&in), 0);
    ASSERT(out.winner == hi);
    ASSERT_EQ_INT((int)out.nlosers, 1);
    ASSERT(out.losers[0] == lo);
    ASSERT_EQ_INT(out.mode, POL_MODE_AUTO);
    ASSERT_EQ_INT(out.outcome, CTLREC_APPLY);
    ASSERT_STR_EQ(ctlrec_outcome_name(out.outcome), "applied");
    ASSERT_EQ_INT((int)out.ncontainers, 2);
    /* 200m * 1.2 = 240m, but one step lowers at most 50 % of 1 core. */
    ASSERT_STR_EQ(out.containers[0].cpu_req, "500m");
    ASSERT_STR_EQ(out.containers[0].mem_req, "512Mi");
    ASSERT_EQ_INT((int)out.nssa, 1);
    ASSERT_STR_EQ(out.ssa[0].name, "app");
    ASSERT_STR_EQ(out.ssa[0].cpu_request, "500m");
    /* the sidecar has no usage: insufficient data, nothing written for it */
    ASSERT_EQ_INT(out.containers[1].res.decision, ENG_SKIPPED);
    kproj_free(w);

    /* Once applied, the same usage is within the threshold next time? Not yet
     * (the decrease continues), but at the recommendation it is. */
    w = workload("{\"app\":\"web\"}", "{}", "240m", "240Mi");
    in.workload = w;
    ASSERT_EQ_INT(decide(&in), 0);
    ASSERT_EQ_INT(out.outcome, CTLREC_UNCHANGED);
    ASSERT_STR_CONTAINS(out.reason, "threshold");
    ASSERT_EQ_INT((int)out.nssa, 0);
    ASSERT_EQ_INT((int)out.nrec, 1); /* the kept values are still published */
    ASSERT_STR_EQ(out.rec[0].cpu_request, "240m");
    kproj_free(w);
    policy_free(lo);
    policy_free(hi);
}

static void test_no_policy_and_disabled_release_annotations(void)
{
    pol_policy *dis = policy("off", "{\"mode\":\"Disabled\",\"selector\":{\"workloadSelector\":"
                                    "{\"matchLabels\":{\"app\":\"web\"}}}}");
    const pol_policy *pols[] = {dis};
    kproj_obj *w =
        workload("{\"app\":\"web\"}", "{\"optipod.io/cpu-request.app\":\"250m\"}", "1", "1Gi");
    ctlrec_input in = {.workload = w, .policies = pols, .npolicies = 1, .now_s = NOW};
    ASSERT_EQ_INT(decide(&in), 0);
    ASSERT_EQ_INT(out.outcome, CTLREC_SKIPPED);
    ASSERT_STR_CONTAINS(out.reason, "shop/off is Disabled");
    ASSERT_EQ_INT(out.release_annotations, 1);
    ASSERT_EQ_INT((int)out.nssa, 0);
    /* the workload leaves the policy: same thing */
    kproj_free(w);
    w = workload("{\"app\":\"other\"}", "{\"optipod.io/strategy\":\"recommend\"}", "1", "1Gi");
    in.workload = w;
    ASSERT_EQ_INT(decide(&in), 0);
    ASSERT_EQ_INT(out.outcome, CTLREC_SKIPPED);
    ASSERT_NULL(out.winner);
    ASSERT_STR_CONTAINS(out.reason, "no policy selects");
    ASSERT_EQ_INT(out.release_annotations, 1);
    /* the release body drops every optipod.io/ annotation and keeps the uid */
    opbuf b;
    opbuf_init(&b, 1 << 16);
    ASSERT_EQ_INT(ctlrec_annotations_body(&out, w, 1, &b, NULL), 0);
    ASSERT(strstr(b.data, "optipod.io/") == NULL);
    ASSERT_STR_CONTAINS(b.data, "\"uid\":\"u1\"");
    ASSERT(strstr(b.data, "\"spec\"") == NULL);
    opbuf_release(&b);
    kproj_free(w);
    /* no annotations: nothing to release */
    w = workload("{\"app\":\"other\"}", "{}", "1", "1Gi");
    in.workload = w;
    ASSERT_EQ_INT(decide(&in), 0);
    ASSERT_EQ_INT(out.release_annotations, 0);
    kproj_free(w);
    policy_free(dis);
}

static void test_metrics_error_and_insufficient_data(void)
{
    char s[256];
    snprintf(s, sizeof s, AUTO_SPEC, 1);
    pol_policy *p = policy("auto", s);
    const pol_policy *pols[] = {p};
    kproj_obj *w = workload("{\"app\":\"web\"}", "{}", "1", "1Gi");
    ctlrec_input in = {.workload = w,
                       .policies = pols,
                       .npolicies = 1,
                       .metrics_error = 1,
                       .metrics_msg = "prometheus 'http://x': connection refused",
                       .now_s = NOW};
    ASSERT_EQ_INT(decide(&in), 0);
    ASSERT_EQ_INT(out.outcome, CTLREC_ERROR);
    ASSERT_STR_CONTAINS(out.reason, "metrics unavailable: prometheus");
    ASSERT_EQ_INT((int)out.nssa, 0);
    in.metrics_error = 0;
    ASSERT_EQ_INT(decide(&in), 0);
    ASSERT_EQ_INT(out.outcome, CTLREC_SKIPPED);
    ASSERT_STR_CONTAINS(out.reason, "container app: insufficient");
    kproj_free(w);
    policy_free(p);
}

static void test_oom_from_pods_bumps_memory(void)
{
    char s[256];
    snprintf(s, sizeof s, AUTO_SPEC, 1);
    pol_policy *p = policy("auto", s);
    const pol_policy *pols[] = {p};
    kproj_obj *w = workload("{\"app\":\"web\"}", "{}", "240m", "256Mi");
    ctlrec_oom oom = {"app", 2, NOW - 60};
    ctlrec_input in = {.workload = w,
                       .policies = pols,
                       .npolicies = 1,
                       .usage = &app_usage,
                       .nusage = 1,
                       .ooms = &oom,
                       .nooms = 1,
                       .now_s = NOW};
    ASSERT_EQ_INT(decide(&in), 0);
    ASSERT_EQ_INT(out.outcome, CTLREC_APPLY);
    int64_t bytes = 0;
    ASSERT_EQ_INT(kq_parse_bytes(out.containers[0].mem_req, &bytes, NULL), 0);
    ASSERT_CMP_INT(bytes, >=, (256LL + 100) << 20);
    kproj_free(w);
    policy_free(p);
}

static void test_annotations_differ_until_written(void)
{
    pol_policy *p = policy("rec", "{\"mode\":\"Recommend\",\"selector\":{\"workloadSelector\":"
                                  "{\"matchLabels\":{\"app\":\"web\"}}}}");
    const pol_policy *pols[] = {p};
    kproj_obj *w = workload("{\"app\":\"web\"}", "{}", "1", "1Gi");
    ctlrec_input in = {.workload = w,
                       .policies = pols,
                       .npolicies = 1,
                       .usage = &app_usage,
                       .nusage = 1,
                       .now_s = NOW};
    ASSERT_EQ_INT(decide(&in), 0);
    ASSERT_EQ_INT(out.mode, POL_MODE_RECOMMEND);
    ASSERT_STR_EQ(ctlrec_strategy_value(&out), "recommend");
    ASSERT_EQ_INT(ctlrec_annotations_differ(&out, w), 1);
    opbuf b;
    opbuf_init(&b, 1 << 16);
    ASSERT_EQ_INT(ctlrec_annotations_body(&out, w, 0, &b, NULL), 0);
    ASSERT_STR_CONTAINS(b.data, "\"optipod.io/cpu-request.app\":\"500m\"");
    ASSERT_STR_CONTAINS(b.data, "\"optipod.io/strategy\":\"recommend\"");
    ASSERT_STR_CONTAINS(b.data, "\"optipod.io/webhook-enabled\":\"false\"");
    ASSERT(strstr(b.data, "\"spec\"") == NULL); /* never resources */
    /* the live object with exactly those annotations: no difference */
    cJSON *body = cJSON_Parse(b.data);
    cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(body, "metadata"), "annotations");
    char *annj = cJSON_PrintUnformatted(ann);
    kproj_obj *w2 = workload("{\"app\":\"web\"}", annj, "1", "1Gi");
    ASSERT_EQ_INT(ctlrec_annotations_differ(&out, w2), 0);
    cJSON_free(annj);
    cJSON_Delete(body);
    opbuf_release(&b);
    kproj_free(w2);
    kproj_free(w);
    policy_free(p);
}

/* ---- the projection hook ------------------------------------------------------------------ */

static int freed;

static void ext_free(void *v)
{
    freed++;
    free(v);
}

static int ext_policy(const cJSON *obj, kproj_obj *o, void *ud)
{
    (void)ud;
    const cJSON *spec = cJSON_GetObjectItem(obj, "spec");
    const cJSON *mode = cJSON_GetObjectItem(spec, "mode");
    if (!cJSON_IsString(mode))
        return -EINVAL;
    o->ext = strdup(mode->valuestring);
    o->ext_free = ext_free;
    return o->ext ? 0 : -ENOMEM;
}

static void test_cache_extend_hook_owns_values(void)
{
    kcache c;
    kcache_init(&c, KPROJ_POLICY);
    kcache_set_extend(&c, ext_policy, NULL);
    freed = 0;
    cJSON *a = cJSON_Parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\","
                           "\"labels\":{\"x\":\"y\"},\"resourceVersion\":\"1\"},"
                           "\"spec\":{\"mode\":\"Auto\"}}");
    cJSON *b = cJSON_Parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\","
                           "\"resourceVersion\":\"2\"},\"spec\":{\"mode\":\"Recommend\"}}");
    cJSON *bad = cJSON_Parse("{\"metadata\":{\"name\":\"q\",\"namespace\":\"n\"},\"spec\":{}}");
    ASSERT_EQ_INT(tcache_upsert(&c, a), 0);
    const kproj_obj *o = kcache_get(&c, "n", "p");
    ASSERT_NOT_NULL(o);
    ASSERT_STR_EQ((const char *)o->ext, "Auto");
    ASSERT_STR_EQ(kproj_kv_get(o->labels, o->nlabels, "x"), "y");
    ASSERT_EQ_INT(tcache_upsert(&c, b), 0);
    ASSERT_EQ_INT(freed, 1); /* the replaced projection's value */
    ASSERT_STR_EQ((const char *)kcache_get(&c, "n", "p")->ext, "Recommend");
    ASSERT_EQ_INT(tcache_upsert(&c, bad), -EINVAL);
    ASSERT_NULL(kcache_get(&c, "n", "q"));
    kcache_release(&c);
    ASSERT_EQ_INT(freed, 2);
    ASSERT_EQ_INT(kproj_kind_for_resource("optimizationpolicies"), KPROJ_POLICY);
    ASSERT_EQ_INT(kproj_kind_for_resource("namespaces"), KPROJ_NAMESPACE);
    ASSERT_EQ_INT(kproj_kind_for_resource("horizontalpodautoscalers"), KPROJ_HPA);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(bad);
}

int main(void)
{
    TEST_RUN(test_ranked_winner_and_apply_then_unchanged);
    TEST_RUN(test_no_policy_and_disabled_release_annotations);
    TEST_RUN(test_metrics_error_and_insufficient_data);
    TEST_RUN(test_oom_from_pods_bumps_memory);
    TEST_RUN(test_annotations_differ_until_written);
    TEST_RUN(test_cache_extend_hook_owns_values);
    ctlrec_out_release(&out);
    return test_summary();
}
