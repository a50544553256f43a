/*
 * lib/record: the OptimizationRecommendation record. Names, the object the
 * controller applies (valid under crds/optimizationrecommendations.optipod.io.yaml,
 * every field declared so the API server prunes nothing), parse(build(r)) == r,
 * rrec_same ignoring only the time, and refusals that name the field.
 */
#include "test.h"
#include "record/record.h"
#include "support/schemacheck.h"
#include "util/yaml2json.h"

#include <errno.h>

static cJSON *load_yaml(const char *path)
{
    size_t len;
    char *text = test_read_file(path, &len);
    operr err = {{0}};
    cJSON *j = NULL;
    yaml2json_parse(text, len, &j, &err);
    free(text);
    if (!j)
        test_fail(__FILE__, __LINE__, "%s: %s", path, err.msg);
    return j;
}

static void sample(rrec *r)
{
    rrec_init(r);
    snprintf(r->ns, sizeof r->ns, "shop");
    rrec_name(r->name, sizeof r->name, "Deployment", "web");
    snprintf(r->api_version, sizeof r->api_version, "apps/v1");
    snprintf(r->kind, sizeof r->kind, "Deployment");
    snprintf(r->target, sizeof r->target, "web");
    snprintf(r->uid, sizeof r->uid, "0b5c9e6e-1111-4c2b-9a51-9c1f0c0a7e11");
    snprintf(r->policy, sizeof r->policy, "shop/rightsize");
    snprintf(r->mode, sizeof r->mode, "Auto");
    snprintf(r->strategy, sizeof r->strategy, "ssa");
    snprintf(r->provider, sizeof r->provider, "prometheus");
    snprintf(r->window, sizeof r->window, "168h");
    r->percentile = 95;
    r->safety_factor = 1.15;
    snprintf(r->history, sizeof r->history, "pod-names");
    r->history_pods = 2;
    snprintf(r->time, sizeof r->time, "2026-12-07T21:00:00Z");
    r->n = 2;
    rrec_container *a = &r->c[0], *b = &r->c[1];
    snprintf(a->name, sizeof a->name, "app");
    snprintf(a->cur[RREC_CPU_REQ], RREC_QTY, "500m");
    snprintf(a->cur[RREC_MEM_REQ], RREC_QTY, "512Mi");
    snprintf(a->rec[RREC_CPU_REQ], RREC_QTY, "315m");
    snprintf(a->rec[RREC_MEM_REQ], RREC_QTY, "438Mi");
    a->samples = 968;
    a->span_s = 86400;
    snprintf(a->rule, sizeof a->rule, "apply");
    snprintf(a->conflicts, sizeof a->conflicts, "argocd-controller, kubectl-edit");
    ASSERT_EQ_INT(rrec_set_explanation(a, "{\"cpu\":{\"decision\":\"apply\",\"request\":\"315m\","
                                          "\"steps\":[{\"step\":\"percentile\"}]},"
                                          "\"memory\":{\"decision\":\"apply\"}}"),
                  0);
    snprintf(b->name, sizeof b->name, "migrate");
    b->init = 1;
    b->samples = -1;
    b->span_s = -1;
    snprintf(b->rule, sizeof b->rule, "skipped: init-container");
}

static void test_names(void)
{
    char n[RREC_NAME_MAX + 1];
    ASSERT_EQ_INT(rrec_name(n, sizeof n, "Deployment", "web"), 0);
    ASSERT_STR_EQ(n, "deployment-web");
    ASSERT_EQ_INT(rrec_name(n, sizeof n, "StatefulSet", "db-0"), 0);
    ASSERT_STR_EQ(n, "statefulset-db-0");
    ASSERT_EQ_INT(rrec_name(n, sizeof n, "", "web"), -EINVAL);
    ASSERT_EQ_INT(rrec_name(n, sizeof n, "Deployment", ""), -EINVAL);
    char longname[254], n2[RREC_NAME_MAX + 1];
    memset(longname, 'a', 253);
    longname[253] = '\0';
    ASSERT_EQ_INT(rrec_name(n, sizeof n, "Deployment", longname), 0);
    ASSERT_EQ_INT((int)strlen(n), RREC_NAME_MAX);
    longname[252] = 'b'; /* differs only past the kept prefix: a different name still */
    ASSERT_EQ_INT(rrec_name(n2, sizeof n2, "Deployment", longname), 0);
    ASSERT(strcmp(n, n2) != 0);
}

static void test_build_is_valid_under_the_crd_and_parses_back(void)
{
    rrec r, back;
    sample(&r);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    operr err = {{0}};
    ASSERT_EQ_INT(rrec_build(&r, &b, &err), 0);
    cJSON *obj = cJSON_Parse(opbuf_str(&b));
    ASSERT_NOT_NULL(obj);
    /* what `kubectl get oprec` and the garbage collector see */
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *ref =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(md, "ownerReferences"), 0);
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "kind")),
                  "Deployment");
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "uid")), r.uid);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(obj, "status");
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "cpuRequest")),
                  "500m->315m");
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "memoryRequest")),
                  "512Mi->438Mi");
    ASSERT_EQ_INT((int)cJSON_GetObjectItemCaseSensitive(st, "samples")->valuedouble, 968);
    ASSERT(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(st, "applied")));

    cJSON *crd = load_yaml("crds/optimizationrecommendations.optipod.io.yaml");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                                   cJSON_GetObjectItemCaseSensitive(crd, "spec"), "versions"),
                               0),
            "schema"),
        "openAPIV3Schema");
    opbuf errs;
    opbuf_init(&errs, 1 << 16);
    int n = tsch_validate(schema, obj, "", &errs);
    if (n)
        test_fail(__FILE__, __LINE__, "record not valid under the CRD: %s", opbuf_str(&errs));
    /* every printer column points at a field the record fills */
    const cJSON *col;
    cJSON_ArrayForEach(
        col, cJSON_GetObjectItemCaseSensitive(
                 cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                                        cJSON_GetObjectItemCaseSensitive(crd, "spec"), "versions"),
                                    0),
                 "additionalPrinterColumns"))
    {
        const char *jp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(col, "jsonPath"));
        ASSERT_NOT_NULL(jp);
        char path[128];
        snprintf(path, sizeof path, "%s", jp + 1);
        const cJSON *at = obj;
        for (char *save = NULL, *k = strtok_r(path, ".", &save); k && at;
             k = strtok_r(NULL, ".", &save))
            at = cJSON_GetObjectItemCaseSensitive(at, k);
        if (!at && strcmp(jp, ".metadata.creationTimestamp"))
            test_fail(__FILE__, __LINE__, "printer column %s: not in the record", jp);
    }
    opbuf_release(&errs);
    cJSON_Delete(crd);

    ASSERT_EQ_INT(rrec_parse(obj, &back, &err), 0);
    ASSERT(rrec_same(&r, &back));
    ASSERT_STR_EQ(back.time, r.time);
    ASSERT_STR_EQ(back.history, "pod-names");
    ASSERT_EQ_INT((int)back.history_pods, 2);
    ASSERT_STR_EQ(back.c[0].conflicts, "argocd-controller, kubectl-edit");
    ASSERT_EQ_INT((int)back.c[1].samples, -1);
    ASSERT_EQ_INT(back.c[1].init, 1);
    rrec_release(&back);
    cJSON_Delete(obj);
    opbuf_release(&b);
    rrec_release(&r);
}

/* rrec_same: all but the time; rrec_same_decision: all but the usage figures too. */
static void test_same_ignores_only_the_time(void)
{
    rrec a, b;
    sample(&a);
    sample(&b);
    snprintf(b.time, sizeof b.time, "2026-12-08T00:00:00Z");
    ASSERT(rrec_same(&a, &b));
    ASSERT(rrec_same_decision(&a, &b));
    b.c[0].applied = 1;
    ASSERT(!rrec_same(&a, &b));
    ASSERT(!rrec_same_decision(&a, &b));
    b.c[0].applied = 0;
    snprintf(b.mode, sizeof b.mode, "Recommend");
    ASSERT(!rrec_same(&a, &b));
    ASSERT(!rrec_same_decision(&a, &b));
    snprintf(b.mode, sizeof b.mode, "Auto");
    snprintf(b.c[0].rec[RREC_CPU_REQ], RREC_QTY, "1");
    ASSERT(!rrec_same_decision(&a, &b));
    snprintf(b.c[0].rec[RREC_CPU_REQ], RREC_QTY, "%s", a.c[0].rec[RREC_CPU_REQ]);
    /* the usage figures move with every query: a content change, not a new decision */
    b.history_pods = 3;
    ASSERT(!rrec_same(&a, &b));
    ASSERT(rrec_same_decision(&a, &b));
    b.history_pods = 2;
    b.c[0].samples++;
    ASSERT(!rrec_same(&a, &b));
    ASSERT(rrec_same_decision(&a, &b));
    b.c[0].samples--;
    b.c[0].span_s++;
    ASSERT(!rrec_same(&a, &b));
    ASSERT(rrec_same_decision(&a, &b));
    b.c[0].span_s--;
    rrec_set_explanation(&b.c[0], NULL);
    ASSERT(!rrec_same(&a, &b));
    ASSERT(rrec_same_decision(&a, &b));
    rrec_release(&a);
    rrec_release(&b);
}

static void test_applied_and_samples_summary(void)
{
    rrec r;
    sample(&r);
    ASSERT_EQ_INT(rrec_applied(&r), 0);
    r.c[0].applied = 1;
    ASSERT_EQ_INT(rrec_applied(&r), 1); /* the init container has no recommendation */
    ASSERT_EQ_INT((int)rrec_samples(&r), 968);
    r.c[1].samples = 12;
    ASSERT_EQ_INT((int)rrec_samples(&r), 12);
    rrec_release(&r);
    rrec_init(&r);
    ASSERT_EQ_INT(rrec_applied(&r), 0); /* nothing recommended is not "applied" */
    ASSERT_EQ_INT((int)rrec_samples(&r), -1);
}

static void expect_refused(const char *json, const char *msg)
{
    cJSON *o = cJSON_Parse(json);
    ASSERT_NOT_NULL(o);
    rrec r;
    operr err = {{0}};
    ASSERT_EQ_INT(rrec_parse(o, &r, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, msg);
    cJSON_Delete(o);
}

static void test_parse_refuses_naming_the_field(void)
{
    expect_refused("[]", "not an object");
    expect_refused("{\"spec\":{}}", "record.metadata: required");
    expect_refused("{\"metadata\":{\"name\":\"x\"}}", "record.spec: required");
    expect_refused(
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"targetRef\":{\"kind\":\"Deployment\"}}}",
        "spec.targetRef.name: required");
    expect_refused(
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"targetRef\":{\"kind\":\"Deployment\","
        "\"name\":\"w\"},\"mode\":7}}",
        "spec.mode: not a string");
    expect_refused(
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"targetRef\":{\"kind\":\"Deployment\","
        "\"name\":\"w\"}},\"status\":{\"containers\":[{\"name\":\"a\",\"samples\":-3}]}}",
        "status.containers[0].samples: not a non-negative integer");
    expect_refused(
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"targetRef\":{\"kind\":\"Deployment\","
        "\"name\":\"w\"}},\"status\":{\"containers\":[{\"name\":\"a\",\"recommended\":"
        "{\"cpuRequest\":\"1234567890123456789012345678901234567890\"}}]}}",
        "status.containers[0].recommended.cpuRequest: longer than");
    expect_refused(
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"targetRef\":{\"kind\":\"Deployment\","
        "\"name\":\"w\"}},\"status\":{\"containers\":[{\"name\":\"a\","
        "\"conflictingManagers\":[\"a, b\"]}]}}",
        "is not a manager name");
}

static void test_build_refuses_an_incomplete_record(void)
{
    rrec r;
    rrec_init(&r);
    opbuf b;
    opbuf_init(&b, 1 << 16);
    operr err = {{0}};
    ASSERT_EQ_INT(rrec_build(&r, &b, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "required");
    ASSERT_EQ_INT((int)b.len, 0);
    opbuf_release(&b);
}

static void test_release_marker(void)
{
    cJSON *j = cJSON_Parse("{\"metadata\":{\"name\":\"w\",\"annotations\":{"
                           "\"optipod.io/managed.side\":\"false\",\"optipod.io/managed.app\":"
                           "\"False\"}},\"spec\":{}}");
    kproj_obj *o = NULL;
    ASSERT_EQ_INT(kproj_from_json(j, KPROJ_DEPLOYMENT, &o), 0);
    ASSERT_EQ_INT(rrec_released(o, NULL), 0);
    ASSERT_EQ_INT(rrec_released(o, "side"), 1);
    ASSERT_EQ_INT(rrec_released(o, "app"), 0); /* only "false" releases */
    kproj_free(o);
    cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "annotations"),
                            "optipod.io/managed", "false");
    ASSERT_EQ_INT(kproj_from_json(j, KPROJ_DEPLOYMENT, &o), 0);
    ASSERT_EQ_INT(rrec_released(o, NULL), 1);
    ASSERT_EQ_INT(rrec_released(o, "app"), 1); /* with the whole workload */
    kproj_free(o);
    cJSON_Delete(j);
    ASSERT(rrec_is_marker("optipod.io/managed"));
    ASSERT(rrec_is_marker("optipod.io/managed.app"));
    ASSERT(!rrec_is_marker("optipod.io/managed."));
    ASSERT(!rrec_is_marker("optipod.io/managedx"));
    ASSERT(!rrec_is_marker("optipod.io/cpu-request.app"));
}

int main(void)
{
    TEST_RUN(test_names);
    TEST_RUN(test_build_is_valid_under_the_crd_and_parses_back);
    TEST_RUN(test_same_ignores_only_the_time);
    TEST_RUN(test_applied_and_samples_summary);
    TEST_RUN(test_parse_refuses_naming_the_field);
    TEST_RUN(test_build_refuses_an_incomplete_record);
    TEST_RUN(test_release_marker);
    return test_summary();
}
