/*
 * The SSA engine of the fake API server, replayed against the recordings of a
 * real kube-apiserver v1.24 (fixtures/kube-apiserver-v1.24): every sequence in
 * its README, from scratch and step by step from the recorded states, compared
 * structurally after dropping what a pure function cannot know (uid,
 * resourceVersion, creationTimestamp, generation, status, times and
 * kube-controller-manager's doings). Plus yaml2json.
 */
#include <errno.h>
#include <stdarg.h>

#include "support/fakessa.h"
#include "util/yaml2json.h"
#include "test.h"
#include "util/buf.h"

/* ------------------------------------------------------------------ helpers */

static cJSON *fixture_json(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", test_fixture_dir(), name);
    char *text = test_read_file(path, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j)
        test_fail(__FILE__, __LINE__, "fixture %s is not JSON", name);
    return j;
}

/* A YAML fixture as JSON, with every `from` replaced by `to` first (may be NULL). */
static cJSON *fixture_yaml(const char *name, const char *from, const char *to)
{
    char path[1024];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/%s", test_fixture_dir(), name);
    char *text = test_read_file(path, &len);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    const char *p = text;
    while (from && *p) {
        const char *hit = strstr(p, from);
        if (!hit)
            break;
        opbuf_append(&b, p, (size_t)(hit - p));
        opbuf_puts(&b, to);
        p = hit + strlen(from);
    }
    opbuf_puts(&b, p);
    cJSON *j = NULL;
    operr err;
    int rc = yaml2json_parse(b.data, b.len, &j, &err);
    free(text);
    opbuf_release(&b);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "fixture %s: %s", name, err.msg);
    return j;
}

/* The recorded time of `manager`'s entry, used as `now` so that entries sort alike. */
static const char *time_of(const cJSON *obj, const char *manager)
{
    const cJSON *mf = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "managedFields");
    const cJSON *e;
    cJSON_ArrayForEach(e, mf)
    {
        if (strcmp(cJSON_GetObjectItem(e, "manager")->valuestring, manager) == 0)
            return cJSON_GetObjectItem(e, "time")->valuestring;
    }
    return "2026-11-22T02:00:00Z";
}

/* Drops what the engine cannot know: server-set metadata, status, times, and
 * kube-controller-manager's entry and annotation. */
static cJSON *normalized(const cJSON *obj)
{
    cJSON *c = cJSON_Duplicate(obj, 1);
    cJSON *md = cJSON_GetObjectItem(c, "metadata");
    static const char *const drop[] = {"uid", "resourceVersion", "creationTimestamp", "generation"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(md, drop[i]);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "status");
    cJSON *ann = cJSON_GetObjectItem(md, "annotations");
    cJSON_DeleteItemFromObjectCaseSensitive(ann, "deployment.kubernetes.io/revision");
    if (ann && !ann->child)
        cJSON_DeleteItemFromObjectCaseSensitive(md, "annotations");
    cJSON *mf = cJSON_GetObjectItem(md, "managedFields");
    for (cJSON *e = mf ? mf->child : NULL, *next; e; e = next) {
        next = e->next;
        if (strcmp(cJSON_GetObjectItem(e, "manager")->valuestring, "kube-controller-manager") == 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(mf, e));
        else
            cJSON_DeleteItemFromObjectCaseSensitive(e, "time");
    }
    return c;
}

#define ASSERT_SAME_OBJECT(got, want) assert_same_object(__FILE__, __LINE__, got, want)

static void assert_same_object(const char *file, int line, const cJSON *got, const cJSON *want)
{
    cJSON *g = normalized(got), *w = normalized(want);
    if (!cJSON_Compare(g, w, 1)) {
        char *gs = cJSON_Print(g), *ws = cJSON_Print(w);
        fprintf(stderr, "--- got\n%s\n--- want\n%s\n", gs, ws);
        free(gs);
        free(ws);
        cJSON_Delete(g);
        cJSON_Delete(w);
        test_fail(file, line, "objects differ (after dropping volatile fields)");
    }
    cJSON_Delete(g);
    cJSON_Delete(w);
}

/* Applies and expects `want_status`; returns the new object (or NULL) and
 * hands the Status body to *status when asked. */
static cJSON *apply_ok(const cJSON *live, const cJSON *cfg, const char *manager, int force,
                       const char *now, int want_status, cJSON **status)
{
    fakessa_result r;
    ASSERT_EQ_INT(fakessa_apply(live, cfg, manager, force, now, &r), 0);
    if (r.http_status != want_status && r.status) {
        char *s = cJSON_Print(r.status);
        fprintf(stderr, "status body: %s\n", s);
        free(s);
    }
    ASSERT_EQ_INT(r.http_status, want_status);
    cJSON *obj = r.object;
    r.object = NULL;
    if (status) {
        *status = r.status;
        r.status = NULL;
    }
    fakessa_result_release(&r);
    return obj;
}

static cJSON *update_ok(const cJSON *live, const cJSON *updated, const char *manager,
                        const char *sub, const char *now, int want_status)
{
    fakessa_result r;
    ASSERT_EQ_INT(fakessa_update(live, updated, manager, sub, now, &r), 0);
    ASSERT_EQ_INT(r.http_status, want_status);
    cJSON *obj = r.object;
    r.object = NULL;
    fakessa_result_release(&r);
    return obj;
}

static cJSON *update_ok_status(const cJSON *live, const cJSON *updated, int want_status,
                               cJSON **status)
{
    fakessa_result r;
    ASSERT_EQ_INT(fakessa_update(live, updated, "m", NULL, "2026-11-22T02:00:00Z", &r), 0);
    ASSERT_EQ_INT(r.http_status, want_status);
    cJSON *obj = r.object;
    *status = r.status;
    r.object = NULL;
    r.status = NULL;
    fakessa_result_release(&r);
    return obj;
}

static const cJSON *entry_of(const cJSON *obj, const char *manager, const char *op)
{
    const cJSON *mf = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "managedFields");
    const cJSON *e;
    cJSON_ArrayForEach(e, mf)
    {
        if (strcmp(cJSON_GetObjectItem(e, "manager")->valuestring, manager) == 0 &&
            strcmp(cJSON_GetObjectItem(e, "operation")->valuestring, op) == 0)
            return e;
    }
    return NULL;
}

/* fieldsV1 of an entry, walked down by path elements (NULL-terminated). */
static const cJSON *fields_at(const cJSON *entry, ...)
{
    va_list ap;
    va_start(ap, entry);
    const cJSON *n = cJSON_GetObjectItem(entry, "fieldsV1");
    for (const char *pe = va_arg(ap, const char *); n && pe; pe = va_arg(ap, const char *))
        n = cJSON_GetObjectItemCaseSensitive(n, pe);
    va_end(ap);
    return n;
}

static const char *const CONTAINERS[] = {"f:spec", "f:template", "f:spec", "f:containers"};
#define IN_CONTAINERS CONTAINERS[0], CONTAINERS[1], CONTAINERS[2], CONTAINERS[3]

static cJSON *parse(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    ASSERT_NOT_NULL(j);
    return j;
}

static const char OPTIPOD_TWO[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"twoc\","
    "\"namespace\":\"default\"},\"spec\":{\"template\":{\"spec\":{\"containers\":["
    "{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"200m\"}}},"
    "{\"name\":\"sidecar\",\"resources\":{\"requests\":{\"cpu\":\"50m\"}}}]}}}}";
static const char OPTIPOD_APP_ONLY[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"twoc\","
    "\"namespace\":\"default\"},\"spec\":{\"template\":{\"spec\":{\"containers\":["
    "{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"200m\"}}}]}}}}";

/* ---------------------------------------------- recorded sequences: conflict */

static void test_apply_conflict_409_then_force(void)
{
    cJSON *yaml = fixture_yaml("deployment-web-app.yaml", NULL, NULL);
    cJSON *body = fixture_json("apply-body-optipod.json");
    cJSON *want409 = fixture_json("apply-conflict-409.json");
    cJSON *want200 = fixture_json("apply-force-200.json");

    cJSON *live = apply_ok(NULL, yaml, "argocd-controller", 1,
                           time_of(want200, "argocd-controller"), 201, NULL);
    ASSERT_NOT_NULL(live);

    cJSON *st = NULL;
    cJSON *none = apply_ok(live, body, "optipod", 0, "2026-11-22T02:02:54Z", 409, &st);
    ASSERT_NULL(none);
    /* Same shape as the recording; causes compared after de-duplication. */
    static const char *const same_keys[] = {"kind",   "apiVersion", "metadata",
                                            "status", "reason",     "code"};
    for (size_t i = 0; i < sizeof(same_keys) / sizeof(same_keys[0]); i++)
        ASSERT(cJSON_Compare(cJSON_GetObjectItem(st, same_keys[i]),
                             cJSON_GetObjectItem(want409, same_keys[i]), 1));
    const cJSON *causes = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "details"), "causes");
    const cJSON *rec = cJSON_GetObjectItem(cJSON_GetObjectItem(want409, "details"), "causes");
    ASSERT_EQ_INT(cJSON_GetArraySize(causes), 2);
    const cJSON *c;
    cJSON_ArrayForEach(c, rec)
    { /* every recorded cause is one of ours */
        int found = 0;
        const cJSON *o;
        cJSON_ArrayForEach(o, causes) found |= cJSON_Compare(o, c, 1);
        ASSERT(found);
    }
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(causes, 0), "field")->valuestring,
                  ".spec.template.spec.containers[name=\"nginx\"].resources.requests.cpu");
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(causes, 0), "message")->valuestring,
                  "conflict with \"argocd-controller\"");
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(causes, 1), "field")->valuestring,
                  ".spec.template.spec.containers[name=\"nginx\"].resources.requests.memory");
    ASSERT_STR_EQ(cJSON_GetObjectItem(st, "message")->valuestring,
                  "Apply failed with 2 conflicts: conflicts with \"argocd-controller\":\n"
                  "- .spec.template.spec.containers[name=\"nginx\"].resources.requests.cpu\n"
                  "- .spec.template.spec.containers[name=\"nginx\"].resources.requests.memory");

    cJSON *forced = apply_ok(live, body, "optipod", 1, time_of(want200, "optipod"), 200, NULL);
    ASSERT_SAME_OBJECT(forced, want200);

    cJSON_Delete(forced);
    cJSON_Delete(st);
    cJSON_Delete(live);
    cJSON_Delete(yaml);
    cJSON_Delete(body);
    cJSON_Delete(want409);
    cJSON_Delete(want200);
}

/* ------------------------------------------------- recorded sequences: Flux */

static void test_flux_fight_from_scratch(void)
{
    cJSON *yaml = fixture_yaml("deployment-web-app.yaml", "web-app", "flux-app");
    cJSON *body = fixture_json("apply-body-optipod.json");
    cJSON *md = cJSON_GetObjectItem(body, "metadata");
    cJSON_ReplaceItemInObject(md, "name", cJSON_CreateString("flux-app"));
    cJSON *want1 = fixture_json("flux-1-optipod-forced.json");
    cJSON *want2 = fixture_json("flux-2-after-flux-reapply.json");

    cJSON *s0 = apply_ok(NULL, yaml, "kustomize-controller", 1,
                         time_of(want1, "kustomize-controller"), 201, NULL);
    cJSON *s1 = apply_ok(s0, body, "optipod", 1, time_of(want1, "optipod"), 200, NULL);
    ASSERT_SAME_OBJECT(s1, want1);
    cJSON *s2 = apply_ok(s1, yaml, "kustomize-controller", 1,
                         time_of(want2, "kustomize-controller"), 200, NULL);
    ASSERT_SAME_OBJECT(s2, want2);

    /* Step by step from the recorded state as well. */
    cJSON *r2 = apply_ok(want1, yaml, "kustomize-controller", 1,
                         time_of(want2, "kustomize-controller"), 200, NULL);
    ASSERT_SAME_OBJECT(r2, want2);

    cJSON_Delete(r2);
    cJSON_Delete(s0);
    cJSON_Delete(s1);
    cJSON_Delete(s2);
    cJSON_Delete(yaml);
    cJSON_Delete(body);
    cJSON_Delete(want1);
    cJSON_Delete(want2);
}

/* ------------------------------------ recorded sequences: container removal */

static void test_container_removal_sequence_from_scratch(void)
{
    cJSON *two = fixture_yaml("deployment-two-containers.yaml", NULL, NULL);
    cJSON *one = fixture_yaml("deployment-sidecar-removed.yaml", NULL, NULL);
    cJSON *opt_two = parse(OPTIPOD_TWO), *opt_app = parse(OPTIPOD_APP_ONLY);
    cJSON *before = fixture_json("container-removal-state-before-release.json");
    cJSON *want422 = fixture_json("container-removal-by-gitops-rejected-422.json");
    cJSON *released = fixture_json("container-released-by-optipod.json");
    cJSON *after = fixture_json("container-removal-by-gitops-after-release-200.json");

    cJSON *s0 = apply_ok(NULL, two, "argocd-controller", 1, time_of(before, "argocd-controller"),
                         201, NULL);
    cJSON *s1 = apply_ok(s0, opt_two, "optipod", 1, time_of(before, "optipod"), 200, NULL);
    ASSERT_SAME_OBJECT(s1, before);

    /* kubernetes#128102: the GitOps apply dropping `sidecar` is rejected. */
    cJSON *st = NULL;
    cJSON *none = apply_ok(s1, one, "argocd-controller", 1, "2026-11-22T02:13:28Z", 422, &st);
    ASSERT_NULL(none);
    ASSERT(cJSON_Compare(st, want422, 1));
    cJSON_Delete(st);
    st = NULL;
    /* The same from a dry run without force: no conflicts, still 422. */
    none = apply_ok(s1, one, "argocd-controller", 0, "2026-11-22T02:13:28Z", 422, &st);
    ASSERT(cJSON_Compare(st, want422, 1));
    cJSON_Delete(st);

    /* optipod releases the sidecar: its requests (only optipod's) are deleted. */
    cJSON *s2 = apply_ok(s1, opt_app, "optipod", 1, time_of(released, "optipod"), 200, NULL);
    ASSERT_SAME_OBJECT(s2, released);
    cJSON *s3 =
        apply_ok(s2, one, "argocd-controller", 1, time_of(after, "argocd-controller"), 200, NULL);
    ASSERT_SAME_OBJECT(s3, after);

    cJSON_Delete(s0);
    cJSON_Delete(s1);
    cJSON_Delete(s2);
    cJSON_Delete(s3);
    cJSON_Delete(two);
    cJSON_Delete(one);
    cJSON_Delete(opt_two);
    cJSON_Delete(opt_app);
    cJSON_Delete(before);
    cJSON_Delete(want422);
    cJSON_Delete(released);
    cJSON_Delete(after);
}

static void test_container_removal_steps_from_recorded_states(void)
{
    cJSON *one = fixture_yaml("deployment-sidecar-removed.yaml", NULL, NULL);
    cJSON *opt_app = parse(OPTIPOD_APP_ONLY);
    cJSON *before = fixture_json("container-removal-state-before-release.json");
    cJSON *want422 = fixture_json("container-removal-by-gitops-rejected-422.json");
    cJSON *released = fixture_json("container-released-by-optipod.json");
    cJSON *after = fixture_json("container-removal-by-gitops-after-release-200.json");

    cJSON *st = NULL;
    ASSERT_NULL(apply_ok(before, one, "argocd-controller", 1, "2026-11-22T02:13:28Z", 422, &st));
    ASSERT(cJSON_Compare(st, want422, 1));
    cJSON *r1 = apply_ok(before, opt_app, "optipod", 1, time_of(released, "optipod"), 200, NULL);
    ASSERT_SAME_OBJECT(r1, released);
    /* kube-controller-manager's entry is carried over untouched */
    ASSERT(cJSON_Compare(entry_of(r1, "kube-controller-manager", "Update"),
                         entry_of(before, "kube-controller-manager", "Update"), 1));
    cJSON *r2 = apply_ok(released, one, "argocd-controller", 1, time_of(after, "argocd-controller"),
                         200, NULL);
    ASSERT_SAME_OBJECT(r2, after);

    cJSON_Delete(st);
    cJSON_Delete(r1);
    cJSON_Delete(r2);
    cJSON_Delete(one);
    cJSON_Delete(opt_app);
    cJSON_Delete(before);
    cJSON_Delete(want422);
    cJSON_Delete(released);
    cJSON_Delete(after);
}

/* The live object with cpu requests written into both containers, as a
 * strategic-merge PATCH would produce it. */
static cJSON *with_requests(const cJSON *live)
{
    cJSON *u = cJSON_Duplicate(live, 1);
    cJSON *cs = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(u, "spec"), "template"),
                            "spec"),
        "containers");
    const char *cpu[] = {"200m", "50m"};
    int i = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, cs)
    {
        cJSON *res = cJSON_GetObjectItem(c, "resources");
        cJSON *req = cJSON_AddObjectToObject(res, "requests");
        cJSON_AddStringToObject(req, "cpu", cpu[i++]);
    }
    return u;
}

static void test_container_removal_after_update_operation(void)
{
    cJSON *two = fixture_yaml("deployment-two-containers.yaml", NULL, NULL);
    cJSON *one = fixture_yaml("deployment-sidecar-removed.yaml", NULL, NULL);
    cJSON *want = fixture_json("container-removal-after-update-operation-200.json");

    cJSON *s0 = apply_ok(NULL, two, "argocd-controller", 1, "2026-11-22T02:13:48Z", 201, NULL);
    cJSON *u = with_requests(s0);
    cJSON *s1 = update_ok(s0, u, "optipod", NULL, time_of(want, "optipod"), 200);
    const cJSON *e = entry_of(s1, "optipod", "Update");
    ASSERT_NOT_NULL(e);
    const cJSON *req =
        fields_at(e, IN_CONTAINERS, "k:{\"name\":\"sidecar\"}", "f:resources", "f:requests", NULL);
    ASSERT_NOT_NULL(cJSON_GetObjectItem(req, "."));
    ASSERT_NOT_NULL(cJSON_GetObjectItem(req, "f:cpu"));
    /* an Update entry does not own the list item itself */
    ASSERT_NULL(fields_at(e, IN_CONTAINERS, "k:{\"name\":\"sidecar\"}", ".", NULL));

    cJSON *s2 =
        apply_ok(s1, one, "argocd-controller", 1, time_of(want, "argocd-controller"), 200, NULL);
    ASSERT_SAME_OBJECT(s2, want);

    cJSON_Delete(u);
    cJSON_Delete(s0);
    cJSON_Delete(s1);
    cJSON_Delete(s2);
    cJSON_Delete(two);
    cJSON_Delete(one);
    cJSON_Delete(want);
}

/* kube-controller-manager's UpdateStatus (revision annotation + status) gives
 * exactly the recorded entry. */
static void test_status_subresource_update_matches_recorded_entry(void)
{
    cJSON *yaml = fixture_yaml("deployment-web-app.yaml", NULL, NULL);
    cJSON *rec = fixture_json("apply-force-200.json");
    cJSON *live = apply_ok(NULL, yaml, "argocd-controller", 1, "2026-11-22T02:02:49Z", 201, NULL);
    cJSON *u = cJSON_Duplicate(live, 1);
    cJSON *ann = cJSON_AddObjectToObject(cJSON_GetObjectItem(u, "metadata"), "annotations");
    cJSON_AddStringToObject(ann, "deployment.kubernetes.io/revision", "1");
    cJSON_ReplaceItemInObject(u, "status", cJSON_Duplicate(cJSON_GetObjectItem(rec, "status"), 1));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(u, "spec"), "replicas", cJSON_CreateNumber(7));

    cJSON *s = update_ok(live, u, "kube-controller-manager", "status", "2026-11-22T02:02:49Z", 200);
    const cJSON *got = entry_of(s, "kube-controller-manager", "Update");
    const cJSON *want = entry_of(rec, "kube-controller-manager", "Update");
    ASSERT(cJSON_Compare(got, want, 1));
    /* /status cannot change spec */
    ASSERT_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "spec"), "replicas")->valuedouble, 2);
    /* the Update entry sorts after the Apply entry */
    ASSERT_STR_EQ(
        cJSON_GetObjectItem(
            cJSON_GetArrayItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(s, "metadata"), "managedFields"), 1),
            "manager")
            ->valuestring,
        "kube-controller-manager");

    cJSON_Delete(s);
    cJSON_Delete(u);
    cJSON_Delete(live);
    cJSON_Delete(yaml);
    cJSON_Delete(rec);
}

/* ------------------------------------------------------------- behaviours */

static void test_same_value_is_shared_not_conflict(void)
{
    cJSON *yaml = fixture_yaml("deployment-web-app.yaml", NULL, NULL);
    cJSON *live = apply_ok(NULL, yaml, "argocd-controller", 1, "2026-11-22T02:00:00Z", 201, NULL);
    cJSON *body =
        parse("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
              "\"web-app\",\"namespace\":\"default\"},\"spec\":{\"template\":{\"spec\":{"
              "\"containers\":[{\"name\":\"nginx\",\"resources\":{\"requests\":{\"cpu\":"
              "\"100m\",\"memory\":\"128Mi\"}}}]}}}}");
    cJSON *s = apply_ok(live, body, "optipod", 0, "2026-11-22T02:00:01Z", 200, NULL);
    const char *k = "k:{\"name\":\"nginx\"}";
    ASSERT_NOT_NULL(fields_at(entry_of(s, "argocd-controller", "Apply"), IN_CONTAINERS, k,
                              "f:resources", "f:requests", "f:cpu", NULL));
    ASSERT_NOT_NULL(fields_at(entry_of(s, "optipod", "Apply"), IN_CONTAINERS, k, "f:resources",
                              "f:requests", "f:cpu", NULL));
    cJSON_Delete(s);
    cJSON_Delete(body);
    cJSON_Delete(live);
    cJSON_Delete(yaml);
}

static void test_conflict_with_update_owner_names_api_version(void)
{
    cJSON *two = fixture_yaml("deployment-two-containers.yaml", NULL, NULL);
    cJSON *git = fixture_yaml("deployment-two-containers.yaml", "{name: app,",
                              "{name: app, resources: {requests: {cpu: 100m}},");
    cJSON *s0 = apply_ok(NULL, two, "argocd-controller", 1, "2026-11-22T02:00:00Z", 201, NULL);
    cJSON *u = with_requests(s0);
    cJSON *s1 = update_ok(s0, u, "optipod", NULL, "2026-11-22T02:00:01Z", 200);
    cJSON *st = NULL;
    ASSERT_NULL(apply_ok(s1, git, "argocd-controller", 0, "2026-11-22T02:00:02Z", 409, &st));
    ASSERT_STR_EQ(cJSON_GetObjectItem(st, "message")->valuestring,
                  "Apply failed with 1 conflict: conflict with \"optipod\" using apps/v1: "
                  ".spec.template.spec.containers[name=\"app\"].resources.requests.cpu");
    const cJSON *cause =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "details"), "causes"), 0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(cause, "message")->valuestring,
                  "conflict with \"optipod\" using apps/v1");
    /* forced: optipod's Update entry loses app's cpu but keeps sidecar's */
    cJSON *s2 = apply_ok(s1, git, "argocd-controller", 1, "2026-11-22T02:00:02Z", 200, NULL);
    const cJSON *e = entry_of(s2, "optipod", "Update");
    ASSERT_NULL(fields_at(e, IN_CONTAINERS, "k:{\"name\":\"app\"}", "f:resources", "f:requests",
                          "f:cpu", NULL));
    /* it still owns the requests map it created (only its cpu entry was taken): f:requests {} */
    const cJSON *req =
        fields_at(e, IN_CONTAINERS, "k:{\"name\":\"app\"}", "f:resources", "f:requests", NULL);
    ASSERT(cJSON_IsObject(req) && req->child == NULL);
    ASSERT_NOT_NULL(fields_at(e, IN_CONTAINERS, "k:{\"name\":\"sidecar\"}", "f:resources",
                              "f:requests", "f:cpu", NULL));
    cJSON_Delete(s2);
    cJSON_Delete(st);
    cJSON_Delete(s1);
    cJSON_Delete(u);
    cJSON_Delete(s0);
    cJSON_Delete(two);
    cJSON_Delete(git);
}

static void test_force_empties_and_drops_other_manager(void)
{
    cJSON *a = parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
                     "\"labels\":{\"x\":\"1\"}}}");
    cJSON *b = parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
                     "\"labels\":{\"x\":\"2\"}}}");
    cJSON *s0 = apply_ok(NULL, a, "one", 0, "2026-11-22T02:00:00Z", 201, NULL);
    cJSON *s1 = apply_ok(s0, b, "two", 1, "2026-11-22T02:00:01Z", 200, NULL);
    ASSERT_NULL(entry_of(s1, "one", "Apply"));
    ASSERT_NOT_NULL(entry_of(s1, "two", "Apply"));
    ASSERT_EQ_INT(cJSON_GetArraySize(
                      cJSON_GetObjectItem(cJSON_GetObjectItem(s1, "metadata"), "managedFields")),
                  1);
    cJSON_Delete(s0);
    cJSON_Delete(s1);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_noop_apply_keeps_time(void)
{
    cJSON *a = parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
                     "\"labels\":{\"x\":\"1\"}},\"data\":{\"k\":\"v\"}}");
    cJSON *s0 = apply_ok(NULL, a, "one", 0, "2026-11-22T02:00:00Z", 201, NULL);
    cJSON *s1 = apply_ok(s0, a, "one", 0, "2026-11-22T03:00:00Z", 200, NULL);
    ASSERT_STR_EQ(cJSON_GetObjectItem(entry_of(s1, "one", "Apply"), "time")->valuestring,
                  "2026-11-22T02:00:00Z");
    /* dropping a field it alone owned deletes it and bumps the time */
    cJSON_DeleteItemFromObject(a, "data");
    cJSON *s2 = apply_ok(s1, a, "one", 0, "2026-11-22T03:00:00Z", 200, NULL);
    ASSERT_NULL(cJSON_GetObjectItem(s2, "data"));
    ASSERT_STR_EQ(cJSON_GetObjectItem(entry_of(s2, "one", "Apply"), "time")->valuestring,
                  "2026-11-22T03:00:00Z");
    cJSON_Delete(s0);
    cJSON_Delete(s1);
    cJSON_Delete(s2);
    cJSON_Delete(a);
}

static void test_keys_for_ports_env_and_finalizer_values(void)
{
    cJSON *cfg = parse(
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\","
        "\"finalizers\":[\"x.io/keep\"]},\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"b\"}},"
        "\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":"
        "\"c\",\"image\":\"img\",\"ports\":[{\"containerPort\":80}],\"env\":[{\"name\":\"A\","
        "\"value\":\"1\"}]}]}}}}");
    cJSON *s = apply_ok(NULL, cfg, "m", 0, "2026-11-22T02:00:00Z", 201, NULL);
    const cJSON *e = entry_of(s, "m", "Apply");
    const char *k = "k:{\"name\":\"c\"}";
    const cJSON *port = fields_at(e, IN_CONTAINERS, k, "f:ports",
                                  "k:{\"containerPort\":80,\"protocol\":\"TCP\"}", NULL);
    ASSERT_NOT_NULL(port);
    ASSERT_NOT_NULL(cJSON_GetObjectItem(port, "."));
    ASSERT_NOT_NULL(cJSON_GetObjectItem(port, "f:containerPort"));
    ASSERT_NULL(cJSON_GetObjectItem(port, "f:protocol")); /* defaulted, not applied */
    ASSERT_NOT_NULL(fields_at(e, IN_CONTAINERS, k, "f:env", "k:{\"name\":\"A\"}", "f:value", NULL));
    ASSERT_NOT_NULL(fields_at(e, "f:metadata", "f:finalizers", "v:\"x.io/keep\"", NULL));
    ASSERT_NOT_NULL(fields_at(e, "f:spec", "f:selector", NULL));
    ASSERT_NULL(fields_at(e, "f:spec", "f:selector", "f:matchLabels", NULL)); /* atomic */
    /* defaults were applied to the object */
    const cJSON *c0 = cJSON_GetArrayItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "spec"), "template"),
                                "spec"),
            "containers"),
        0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(c0, "imagePullPolicy")->valuestring, "Always");
    ASSERT_STR_EQ(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(c0, "ports"), 0), "protocol")
            ->valuestring,
        "TCP");
    cJSON_Delete(s);
    cJSON_Delete(cfg);
}

static void test_list_merge_order_and_co_owned_items(void)
{
    cJSON *a = fixture_yaml("deployment-two-containers.yaml", NULL, NULL);
    cJSON *s0 = apply_ok(NULL, a, "one", 0, "2026-11-22T02:00:00Z", 201, NULL);
    cJSON *b = parse("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
                     "\"twoc\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":"
                     "\"sidecar\"},{\"name\":\"extra\",\"image\":\"e\"}]}}}}");
    cJSON *s1 = apply_ok(s0, b, "two", 0, "2026-11-22T02:00:01Z", 200, NULL);
    const cJSON *cs = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(s1, "spec"), "template"),
                            "spec"),
        "containers");
    ASSERT_EQ_INT(cJSON_GetArraySize(cs), 3);
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(cs, 0), "name")->valuestring, "app");
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(cs, 1), "name")->valuestring, "sidecar");
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(cs, 2), "name")->valuestring, "extra");
    cJSON_Delete(s0);
    cJSON_Delete(s1);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_update_create_owns_everything_set(void)
{
    cJSON *obj = fixture_yaml("deployment-web-app.yaml", NULL, NULL);
    cJSON *s = update_ok(NULL, obj, "kubectl-create", NULL, "2026-11-22T02:00:00Z", 201);
    const cJSON *e = entry_of(s, "kubectl-create", "Update");
    ASSERT_NOT_NULL(e);
    const char *k = "k:{\"name\":\"nginx\"}";
    ASSERT_NOT_NULL(fields_at(e, IN_CONTAINERS, k, ".", NULL));
    ASSERT_NOT_NULL(fields_at(e, IN_CONTAINERS, k, "f:terminationMessagePath", NULL));
    ASSERT_NOT_NULL(fields_at(e, IN_CONTAINERS, k, "f:resources", "f:requests", "f:cpu", NULL));
    ASSERT_NOT_NULL(fields_at(e, "f:metadata", "f:labels", ".", NULL));
    ASSERT_NULL(fields_at(e, "f:spec", ".", NULL)); /* a Go struct is never "added" */
    ASSERT_NULL(fields_at(e, "f:metadata", "f:name", NULL));
    ASSERT_NOT_NULL(fields_at(e, "f:spec", "f:progressDeadlineSeconds", NULL));
    /* an update that changes nothing adds no entry */
    cJSON *s2 = update_ok(s, s, "someone-else", NULL, "2026-11-22T02:00:01Z", 200);
    ASSERT_NULL(entry_of(s2, "someone-else", "Update"));
    cJSON_Delete(s2);
    cJSON_Delete(s);
    cJSON_Delete(obj);
}

/* managedFields set by a write replace the live ones (the real server's
 * fieldmanager decodes the new object's first: how ownership is handed over);
 * an empty or undecodable list, or a subresource write, keeps the live ones. */
static void test_update_takes_managed_fields_from_the_write(void)
{
    cJSON *obj = fixture_yaml("deployment-web-app.yaml", NULL, NULL);
    cJSON *live = update_ok(NULL, obj, "kubectl-create", NULL, "2026-11-22T02:00:00Z", 201);
    ASSERT_NOT_NULL(entry_of(live, "kubectl-create", "Update"));

    /* hand everything kubectl-create owns to "new-owner" */
    cJSON *w = cJSON_Duplicate(live, 1);
    cJSON *mf = cJSON_GetObjectItem(cJSON_GetObjectItem(w, "metadata"), "managedFields");
    cJSON *e = cJSON_GetArrayItem(mf, 0);
    cJSON_ReplaceItemInObject(e, "manager", cJSON_CreateString("new-owner"));
    cJSON *s = update_ok(live, w, "handover", NULL, "2026-11-22T02:00:01Z", 200);
    ASSERT_NULL(entry_of(s, "kubectl-create", "Update"));
    ASSERT_NOT_NULL(fields_at(entry_of(s, "new-owner", "Update"), IN_CONTAINERS,
                              "k:{\"name\":\"nginx\"}", "f:resources", "f:requests", "f:cpu",
                              NULL));
    ASSERT_NULL(entry_of(s, "handover", "Update")); /* it changed no field */
    cJSON_Delete(s);

    /* an empty list, an undecodable one, a /status write: the live entries stay */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(w, "metadata"), "managedFields",
                              cJSON_CreateArray());
    s = update_ok(live, w, "m", NULL, "2026-11-22T02:00:02Z", 200);
    ASSERT_NOT_NULL(entry_of(s, "kubectl-create", "Update"));
    cJSON_Delete(s);
    cJSON *bad = cJSON_CreateArray();
    cJSON_AddItemToArray(bad, cJSON_CreateObject()); /* no manager */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(w, "metadata"), "managedFields", bad);
    s = update_ok(live, w, "m", NULL, "2026-11-22T02:00:03Z", 200);
    ASSERT_NOT_NULL(entry_of(s, "kubectl-create", "Update"));
    cJSON_Delete(s);
    cJSON_Delete(w);
    w = cJSON_Duplicate(live, 1);
    mf = cJSON_GetObjectItem(cJSON_GetObjectItem(w, "metadata"), "managedFields");
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(mf, 0), "manager",
                              cJSON_CreateString("new-owner"));
    s = update_ok(live, w, "m", "status", "2026-11-22T02:00:04Z", 200);
    ASSERT_NOT_NULL(entry_of(s, "kubectl-create", "Update"));
    ASSERT_NULL(entry_of(s, "new-owner", "Update"));
    cJSON_Delete(s);
    cJSON_Delete(w);
    cJSON_Delete(live);
    cJSON_Delete(obj);
}

static void test_rejections(void)
{
    cJSON *yaml = fixture_yaml("deployment-web-app.yaml", NULL, NULL);
    cJSON *live = apply_ok(NULL, yaml, "argocd-controller", 1, "2026-11-22T02:00:00Z", 201, NULL);
    cJSON *st = NULL;

    /* uid precondition */
    cJSON *b = cJSON_Duplicate(yaml, 1);
    cJSON_AddStringToObject(cJSON_GetObjectItem(b, "metadata"), "uid", "not-the-uid");
    ASSERT_NULL(apply_ok(live, b, "optipod", 1, "2026-11-22T02:00:01Z", 409, &st));
    ASSERT_STR_CONTAINS(cJSON_GetObjectItem(st, "message")->valuestring, "uid mismatch");
    cJSON_Delete(st);
    cJSON_Delete(b);

    /* resourceVersion precondition (optimistic concurrency) */
    cJSON *stale = cJSON_Duplicate(live, 1);
    cJSON *smd = cJSON_GetObjectItem(stale, "metadata");
    cJSON_DeleteItemFromObject(smd, "managedFields");
    cJSON_AddStringToObject(smd, "resourceVersion", "41");
    ASSERT_NULL(update_ok_status(live, stale, 409, &st));
    ASSERT_STR_EQ(cJSON_GetObjectItem(st, "message")->valuestring,
                  "Operation cannot be fulfilled on deployments.apps \"web-app\": the object has "
                  "been modified; please apply your changes to the latest version and try again");
    cJSON_Delete(st);
    cJSON_Delete(stale);

    /* managedFields in an apply body */
    ASSERT_NULL(apply_ok(live, live, "optipod", 1, "2026-11-22T02:00:01Z", 400, &st));
    ASSERT_STR_EQ(cJSON_GetObjectItem(st, "reason")->valuestring, "BadRequest");
    cJSON_Delete(st);

    /* a container without image, on create */
    cJSON *bad = cJSON_Duplicate(yaml, 1);
    cJSON *c0 = cJSON_GetArrayItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(bad, "spec"), "template"),
                                "spec"),
            "containers"),
        0);
    cJSON_DeleteItemFromObject(c0, "image");
    ASSERT_NULL(apply_ok(NULL, bad, "x", 0, "2026-11-22T02:00:01Z", 422, &st));
    ASSERT_STR_EQ(cJSON_GetObjectItem(st, "message")->valuestring,
                  "Deployment.apps \"web-app\" is invalid: "
                  "spec.template.spec.containers[0].image: Required value");
    cJSON_Delete(st);
    cJSON_Delete(bad);

    /* internal errors */
    fakessa_result r;
    ASSERT_EQ_INT(fakessa_apply(NULL, NULL, "m", 0, "t", &r), -EINVAL);
    ASSERT_EQ_INT(fakessa_update(NULL, yaml, NULL, NULL, "t", &r), -EINVAL);
    cJSON *broken = cJSON_Duplicate(live, 1);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(broken, "metadata"), "managedFields",
                              cJSON_CreateString("nope"));
    ASSERT_EQ_INT(fakessa_apply(broken, yaml, "m", 0, "t", &r), -EINVAL);
    ASSERT_NULL(r.object);
    ASSERT_NULL(r.status);
    fakessa_result_release(&r);
    fakessa_result_release(&r);

    cJSON_Delete(broken);
    cJSON_Delete(live);
    cJSON_Delete(yaml);
}

/* Applying requests for a container the workload does not have creates an
 * image-less container: rejected, which is why optipod never does it. */
static void test_apply_to_missing_container_is_invalid(void)
{
    cJSON *yaml = fixture_yaml("deployment-web-app.yaml", NULL, NULL);
    cJSON *live = apply_ok(NULL, yaml, "argocd-controller", 1, "2026-11-22T02:00:00Z", 201, NULL);
    cJSON *ghost = parse("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{"
                         "\"name\":\"web-app\",\"namespace\":\"default\"},\"spec\":{\"template\":"
                         "{\"spec\":{\"containers\":[{\"name\":\"ghost\",\"resources\":{"
                         "\"requests\":{\"cpu\":\"1\"}}}]}}}}");
    cJSON *st = NULL;
    ASSERT_NULL(apply_ok(live, ghost, "optipod", 1, "2026-11-22T02:00:01Z", 422, &st));
    const cJSON *cause =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "details"), "causes"), 0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(cause, "field")->valuestring,
                  "spec.template.spec.containers[1].image");
    cJSON_Delete(st);
    cJSON_Delete(ghost);
    cJSON_Delete(live);
    cJSON_Delete(yaml);
}

static void test_conflicts_with_several_managers(void)
{
    cJSON *a = parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
                     "\"labels\":{\"x\":\"1\"}}}");
    cJSON *s0 = apply_ok(NULL, a, "alpha", 0, "2026-11-22T02:00:00Z", 201, NULL);
    cJSON *u = cJSON_Duplicate(s0, 1);
    cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(u, "metadata"), "labels"), "y",
                            "1");
    cJSON *s1 = update_ok(s0, u, "beta", NULL, "2026-11-22T02:00:01Z", 200);
    cJSON *c = parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\","
                     "\"labels\":{\"x\":\"2\",\"y\":\"2\"}}}");
    cJSON *st = NULL;
    ASSERT_NULL(apply_ok(s1, c, "gamma", 0, "2026-11-22T02:00:02Z", 409, &st));
    ASSERT_STR_EQ(cJSON_GetObjectItem(st, "message")->valuestring,
                  "Apply failed with 2 conflicts: conflicts with \"alpha\":\n- .metadata.labels.x\n"
                  "conflicts with \"beta\" using v1:\n- .metadata.labels.y");
    cJSON_Delete(st);
    cJSON *s2 = apply_ok(s1, c, "gamma", 1, "2026-11-22T02:00:02Z", 200, NULL);
    ASSERT_NULL(entry_of(s2, "alpha", "Apply"));
    ASSERT_NULL(entry_of(s2, "beta", "Update"));
    ASSERT_NOT_NULL(
        fields_at(entry_of(s2, "gamma", "Apply"), "f:metadata", "f:labels", "f:y", NULL));
    cJSON_Delete(s2);
    cJSON_Delete(c);
    cJSON_Delete(s1);
    cJSON_Delete(u);
    cJSON_Delete(s0);
    cJSON_Delete(a);
}

static void test_created_object_keeps_server_key_order(void)
{
    cJSON *yaml = fixture_yaml("deployment-web-app.yaml", NULL, NULL);
    cJSON *s = apply_ok(NULL, yaml, "argocd-controller", 1, "2026-11-22T02:00:00Z", 201, NULL);
    const char *top[] = {"kind", "apiVersion", "metadata", "spec", "status"};
    const cJSON *c = s->child;
    for (size_t i = 0; i < 5; i++, c = c->next)
        ASSERT_STR_EQ(c->string, top[i]);
    ASSERT_NULL(c);
    const char *meta[] = {"name", "namespace", "creationTimestamp", "labels", "managedFields"};
    c = cJSON_GetObjectItem(s, "metadata")->child;
    for (size_t i = 0; i < 5; i++, c = c->next)
        ASSERT_STR_EQ(c->string, meta[i]);
    ASSERT_NULL(c);
    cJSON_Delete(s);
    cJSON_Delete(yaml);
}

/* ------------------------------------------------------------------ yaml2json */

static void test_yaml2json_scalars_and_structure(void)
{
    static const char y[] = "a: 1\n"
                            "b: \"1\"\n"
                            "c: 1.5\n"
                            "d: true\n"
                            "e: ~\n"
                            "f: 100m\n"
                            "g: [x, 'y', 0x10, -3, 1e3, .5, 0123]\n"
                            "h: {k: v}\n"
                            "i: !!str 42\n"
                            "j: |\n  text\n"
                            "k:\n"
                            "l: off\n";
    cJSON *j = NULL;
    operr err;
    ASSERT_EQ_INT(yaml2json_parse(y, sizeof(y) - 1, &j, &err), 0);
    char *s = cJSON_PrintUnformatted(j);
    ASSERT_STR_EQ(s, "{\"a\":1,\"b\":\"1\",\"c\":1.5,\"d\":true,\"e\":null,\"f\":\"100m\","
                     "\"g\":[\"x\",\"y\",16,-3,1000,0.5,\"0123\"],\"h\":{\"k\":\"v\"},\"i\":\"42\","
                     "\"j\":\"text\\n\",\"k\":null,\"l\":false}");
    free(s);
    cJSON_Delete(j);
}

static void test_yaml2json_anchors_merge_and_documents(void)
{
    static const char y[] = "base: &b {x: 1, z: 2}\n"
                            "use: *b\n"
                            "over:\n  <<: *b\n  z: 3\n"
                            "---\n"
                            "second: doc\n";
    cJSON *j = NULL;
    ASSERT_EQ_INT(yaml2json_parse_all(y, sizeof(y) - 1, &j, NULL), 0);
    ASSERT_EQ_INT(cJSON_GetArraySize(j), 2);
    char *s = cJSON_PrintUnformatted(j);
    ASSERT_STR_EQ(s, "[{\"base\":{\"x\":1,\"z\":2},\"use\":{\"x\":1,\"z\":2},"
                     "\"over\":{\"z\":3,\"x\":1}},{\"second\":\"doc\"}]");
    free(s);
    cJSON_Delete(j);

    ASSERT_EQ_INT(yaml2json_parse("", 0, &j, NULL), 0);
    ASSERT(cJSON_IsNull(j));
    cJSON_Delete(j);
}

static void test_yaml2json_errors(void)
{
    cJSON *j = NULL;
    operr err;
    static const char dup[] = "a: 1\na: 2\n";
    ASSERT_EQ_INT(yaml2json_parse(dup, sizeof(dup) - 1, &j, &err), -EINVAL);
    ASSERT_NULL(j);
    ASSERT_STR_CONTAINS(err.msg, "line 2");
    ASSERT_STR_CONTAINS(err.msg, "duplicate key");
    static const char bad[] = "a: [1, 2\n";
    ASSERT_EQ_INT(yaml2json_parse(bad, sizeof(bad) - 1, &j, &err), -EINVAL);
    static const char alias[] = "a: *nope\n";
    ASSERT_EQ_INT(yaml2json_parse(alias, sizeof(alias) - 1, &j, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "alias *nope names no complete anchor");
    /* nesting limit */
    char deep[400];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    ASSERT_EQ_INT(yaml2json_parse(deep, 200, &j, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "nested deeper than 64 levels");
    /* alias expansion bomb */
    static const char bomb[] =
        "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
    ASSERT_EQ_INT(yaml2json_parse(bomb, sizeof(bomb) - 1, &j, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "more than 1000000 nodes");
}

int main(void)
{
    TEST_RUN(test_apply_conflict_409_then_force);
    TEST_RUN(test_flux_fight_from_scratch);
    TEST_RUN(test_container_removal_sequence_from_scratch);
    TEST_RUN(test_container_removal_steps_from_recorded_states);
    TEST_RUN(test_container_removal_after_update_operation);
    TEST_RUN(test_status_subresource_update_matches_recorded_entry);
    TEST_RUN(test_same_value_is_shared_not_conflict);
    TEST_RUN(test_conflict_with_update_owner_names_api_version);
    TEST_RUN(test_force_empties_and_drops_other_manager);
    TEST_RUN(test_noop_apply_keeps_time);
    TEST_RUN(test_keys_for_ports_env_and_finalizer_values);
    TEST_RUN(test_list_merge_order_and_co_owned_items);
    TEST_RUN(test_update_create_owns_everything_set);
    TEST_RUN(test_update_takes_managed_fields_from_the_write);
    TEST_RUN(test_rejections);
    TEST_RUN(test_created_object_keeps_server_key_order);
    TEST_RUN(test_apply_to_missing_container_is_invalid);
    TEST_RUN(test_conflicts_with_several_managers);
    TEST_RUN(test_yaml2json_scalars_and_structure);
    TEST_RUN(test_yaml2json_anchors_merge_and_documents);
    TEST_RUN(test_yaml2json_errors);
    return test_summary();
}
