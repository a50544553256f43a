/* ssa: apply bodies built from the live objects a real v1.24 server returned. */
#include "apply/conflict.h"
#include "apply/ssa.h"
#include "test.h"

#include <errno.h>

#include <cJSON.h>

typedef struct live {
    cJSON *obj;
    kproj_obj *proj;
    mfields mf;
} live;

static cJSON *load_json(const char *name)
{
    char path[512];
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", test_fixture_dir(), name);
    char *txt = test_read_file(path, &len);
    cJSON *obj = cJSON_ParseWithLength(txt, len);
    free(txt);
    ASSERT_NOT_NULL(obj);
    return obj;
}

/* Project obj (taking it) and read its managedFields. */
static void live_from(live *l, cJSON *obj)
{
    operr err = {{0}};
    l->obj = obj;
    ASSERT_EQ_INT(kproj_from_json(obj, KPROJ_DEPLOYMENT, &l->proj), 0);
    ASSERT_EQ_INT(mfields_parse(&l->mf, obj, &err), 0);
}

static void live_load(live *l, const char *name)
{
    live_from(l, load_json(name));
}

static void live_free(live *l)
{
    kproj_free(l->proj);
    mfields_release(&l->mf);
    cJSON_Delete(l->obj);
}

/* The fields of a managedFields entry, for editing recorded states. */
static cJSON *entry_fields(cJSON *obj, const char *manager)
{
    cJSON *mf = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "managedFields");
    cJSON *e;
    cJSON_ArrayForEach(e, mf)
    {
        if (!strcmp(cJSON_GetObjectItem(e, "manager")->valuestring, manager))
            return cJSON_GetObjectItem(e, "fieldsV1");
    }
    return NULL;
}

static cJSON *nginx_item(cJSON *fields)
{
    cJSON *c = cJSON_GetObjectItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(fields, "f:spec"), "f:template"), "f:spec"),
            "f:containers"),
        "k:{\"name\":\"nginx\"}");
    ASSERT_NOT_NULL(c);
    return c;
}

static cJSON *build(const ssa_request *rq, ssa_report *rep)
{
    opbuf b;
    operr err = {{0}};
    opbuf_init(&b, 1 << 16);
    int rc = ssa_build(rq, &b, rep, &err);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "ssa_build: %d %s", rc, err.msg);
    cJSON *j = cJSON_Parse(b.data);
    opbuf_release(&b);
    ASSERT_NOT_NULL(j);
    return j;
}

/* the containers array of a body, or NULL */
static cJSON *containers(cJSON *body)
{
    return cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "spec"), "template"),
                            "spec"),
        "containers");
}

static const char *res_of(cJSON *body, int idx, const char *kind, const char *r)
{
    cJSON *c = cJSON_GetArrayItem(containers(body), idx);
    cJSON *v =
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "resources"), kind), r);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const ssa_note *find_note(const ssa_report *rep, enum ssa_action a, const char *container,
                                 const char *field)
{
    for (int i = 0; i < rep->nnotes; i++) {
        const ssa_note *n = &rep->notes[i];
        if (n->action == a && !strcmp(n->container, container) && !strcmp(n->field, field))
            return n;
    }
    return NULL;
}

static void test_body_matches_recorded_apply(void)
{
    live l;
    live_load(&l, "apply-force-200.json");
    ssa_container want = {.name = "nginx", .cpu_request = "250m", .memory_request = "512Mi"};
    ssa_request rq = {.live = l.proj, .mf = &l.mf, .containers = &want, .ncontainers = 1};
    ssa_report rep;
    opbuf b;
    opbuf_init(&b, 4096);
    ASSERT_EQ_INT(ssa_build(&rq, &b, &rep, NULL), 0);
    ASSERT_EQ_INT(rep.napplied, 1);
    ASSERT_EQ_INT(rep.nnotes, 0);

    cJSON *got = cJSON_Parse(b.data);
    cJSON *uid = cJSON_DetachItemFromObject(cJSON_GetObjectItem(got, "metadata"), "uid");
    ASSERT_STR_EQ(cJSON_GetStringValue(uid), "05800cd8-277c-4718-8908-ec15ae16eaa3");
    cJSON_Delete(uid);
    cJSON *want_body = load_json("apply-body-optipod.json");
    ASSERT(cJSON_Compare(got, want_body, 1));
    /* byte for byte too, once the uid the recording lacked is taken out */
    char *got_txt = cJSON_PrintUnformatted(got);
    char path[512];
    size_t len;
    snprintf(path, sizeof(path), "%s/apply-body-optipod.json", test_fixture_dir());
    char *raw = test_read_file(path, &len);
    while (len && (raw[len - 1] == '\n' || raw[len - 1] == '\r'))
        raw[--len] = '\0';
    ASSERT_STR_EQ(got_txt, raw);
    ASSERT_STR_CONTAINS(b.data, "\"metadata\":{\"name\":\"web-app\",\"namespace\":\"default\","
                                "\"uid\":\"05800cd8-277c-4718-8908-ec15ae16eaa3\"}");
    free(raw);
    free(got_txt);
    cJSON_Delete(got);
    cJSON_Delete(want_body);

    /* without managedFields (first apply) the body is the same */
    opbuf_reset(&b);
    rq.mf = NULL;
    ASSERT_EQ_INT(ssa_build(&rq, &b, &rep, NULL), 0);
    ASSERT_STR_CONTAINS(b.data, "\"containers\":[{\"name\":\"nginx\",\"resources\":{\"requests\":"
                                "{\"cpu\":\"250m\",\"memory\":\"512Mi\"}}}]");
    opbuf_release(&b);
    live_free(&l);
}

static void test_skips_containers_not_live_and_limits(void)
{
    live l;
    live_load(&l, "apply-force-200.json");
    ssa_container want[] = {
        {.name = "ghost", .cpu_request = "1"},
        {.name = "nginx",
         .cpu_request = "300m",
         .memory_request = "600Mi",
         .cpu_limit = "1",
         .memory_limit = "1Gi"},
    };
    ssa_request rq = {.live = l.proj, .mf = &l.mf, .containers = want, .ncontainers = 2};
    ssa_report rep;
    cJSON *body = build(&rq, &rep);
    ASSERT_EQ_INT(cJSON_GetArraySize(containers(body)), 1);
    ASSERT_STR_EQ(res_of(body, 0, "requests", "cpu"), "300m");
    ASSERT_NULL(res_of(body, 0, "limits", "cpu")); /* limits not allowed */
    ASSERT_EQ_INT(rep.nskipped, 1);
    const ssa_note *n = find_note(&rep, SSA_SKIPPED, "ghost", "");
    ASSERT_NOT_NULL(n);
    ASSERT_STR_CONTAINS(n->reason, "never re-created");
    ASSERT_STR_EQ(ssa_action_name(n->action), "skipped");
    cJSON_Delete(body);

    rq.allow_limits = 1;
    body = build(&rq, &rep);
    ASSERT_STR_EQ(res_of(body, 0, "limits", "cpu"), "1");
    ASSERT_STR_EQ(res_of(body, 0, "limits", "memory"), "1Gi");
    cJSON_Delete(body);
    live_free(&l);
}

static void test_release_refuses_to_delete_unless_asked(void)
{
    live l;
    live_load(&l, "container-removal-state-before-release.json");
    ssa_container want = {.name = "app", .cpu_request = "200m"};
    const char *const rel[] = {"sidecar"};
    ssa_request rq = {.live = l.proj,
                      .mf = &l.mf,
                      .containers = &want,
                      .ncontainers = 1,
                      .release = rel,
                      .nrelease = 1};
    ssa_report rep;

    /* only optipod owns sidecar's requests.cpu: omitting it deletes it, so keep it */
    cJSON *body = build(&rq, &rep);
    ASSERT_EQ_INT(cJSON_GetArraySize(containers(body)), 2);
    ASSERT_STR_EQ(res_of(body, 1, "requests", "cpu"), "50m");
    ASSERT_EQ_INT(rep.nkept, 1);
    const ssa_note *n = find_note(&rep, SSA_KEPT, "sidecar", "requests.cpu");
    ASSERT_NOT_NULL(n);
    ASSERT_STR_CONTAINS(n->reason, "only optipod owns requests.cpu=50m");
    ASSERT_STR_CONTAINS(n->reason, "would delete");
    cJSON_Delete(body);

    /* explicitly asked: the body optipod sent for container-released-by-optipod */
    rq.allow_delete = 1;
    body = build(&rq, &rep);
    cJSON *expect = cJSON_Parse(
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"twoc\","
        "\"namespace\":\"default\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":"
        "\"app\",\"resources\":{\"requests\":{\"cpu\":\"200m\"}}}]}}}}");
    cJSON_AddStringToObject(cJSON_GetObjectItem(expect, "metadata"), "uid", l.proj->uid);
    ASSERT(cJSON_Compare(body, expect, 1));
    ASSERT_EQ_INT(rep.ndeleted, 1);
    ASSERT_NOT_NULL(find_note(&rep, SSA_DELETED, "sidecar", "requests.cpu"));
    cJSON_Delete(expect);
    cJSON_Delete(body);
    live_free(&l);

    /* the server's answer to that body: sidecar's requests gone, argocd keeps the
     * container; a further release finds nothing of optipod's to decide */
    live_load(&l, "container-released-by-optipod.json");
    rq.live = l.proj;
    rq.mf = &l.mf;
    rq.allow_delete = 0;
    body = build(&rq, &rep);
    ASSERT_EQ_INT(cJSON_GetArraySize(containers(body)), 1);
    ASSERT_EQ_INT(rep.nnotes, 0);
    cJSON_Delete(body);
    live_free(&l);
}

static void test_release_with_co_owner_keeps_value(void)
{
    live l;
    cJSON *obj = load_json("flux-1-optipod-forced.json");
    /* kustomize-controller co-owns requests.cpu (a same-value apply shares it) */
    cJSON *item = nginx_item(entry_fields(obj, "kustomize-controller"));
    cJSON_AddItemToObject(item, "f:resources", cJSON_Parse("{\"f:requests\":{\"f:cpu\":{}}}"));
    live_from(&l, obj);
    const char *const rel[] = {"nginx"};
    ssa_request rq = {.live = l.proj, .mf = &l.mf, .release = rel, .nrelease = 1};
    ssa_report rep;
    cJSON *body = build(&rq, &rep);
    ASSERT_NOT_NULL(find_note(&rep, SSA_RELEASED, "nginx", "requests.cpu"));
    ASSERT_NOT_NULL(find_note(&rep, SSA_KEPT, "nginx", "requests.memory"));
    ASSERT_EQ_INT(cJSON_GetArraySize(containers(body)), 1);
    ASSERT_NULL(res_of(body, 0, "requests", "cpu"));
    ASSERT_STR_EQ(res_of(body, 0, "requests", "memory"), "512Mi");
    cJSON_Delete(body);
    live_free(&l);

    /* after Flux's re-apply optipod owns no value: releasing writes no spec at all
     * (an applied empty object would be owned as a leaf) */
    live_load(&l, "flux-2-after-flux-reapply.json");
    rq.live = l.proj;
    rq.mf = &l.mf;
    body = build(&rq, &rep);
    ASSERT_NULL(cJSON_GetObjectItem(body, "spec"));
    ASSERT_EQ_INT(rep.nnotes, 0);
    ASSERT_EQ_INT(rep.napplied, 0);
    cJSON_Delete(body);
    live_free(&l);
}

static void test_never_deletes_a_container_by_omission(void)
{
    live l;
    cJSON *obj = load_json("flux-2-after-flux-reapply.json");
    /* nobody but optipod holds the nginx item */
    cJSON *spec = cJSON_GetObjectItem(entry_fields(obj, "kustomize-controller"), "f:spec");
    cJSON_DeleteItemFromObject(spec, "f:template");
    live_from(&l, obj);
    const char *const rel[] = {"nginx"};
    ssa_request rq = {
        .live = l.proj, .mf = &l.mf, .release = rel, .nrelease = 1, .allow_delete = 1};
    ssa_report rep;
    cJSON *body = build(&rq, &rep);
    ASSERT_EQ_INT(cJSON_GetArraySize(containers(body)), 1);
    cJSON *c = cJSON_GetArrayItem(containers(body), 0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(c, "name")->valuestring, "nginx");
    ASSERT_NULL(cJSON_GetObjectItem(c, "resources"));
    const ssa_note *n = find_note(&rep, SSA_KEPT, "nginx", "");
    ASSERT_NOT_NULL(n);
    ASSERT_STR_CONTAINS(n->reason, "delete it from the pod template");
    cJSON_Delete(body);
    live_free(&l);
}

static void test_unpins_containers_gone_from_live(void)
{
    live l;
    cJSON *obj = load_json("container-removal-state-before-release.json");
    /* the live spec without sidecar, optipod's entries still naming it */
    cJSON *cs = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "spec"), "template"),
                            "spec"),
        "containers");
    cJSON_DeleteItemFromArray(cs, 1);
    live_from(&l, obj);
    ssa_container want = {.name = "app", .cpu_request = "250m"};
    ssa_request rq = {.live = l.proj, .mf = &l.mf, .containers = &want, .ncontainers = 1};
    ssa_report rep;
    cJSON *body = build(&rq, &rep);
    ASSERT_EQ_INT(cJSON_GetArraySize(containers(body)), 1);
    ASSERT_STR_EQ(res_of(body, 0, "requests", "cpu"), "250m");
    const ssa_note *n = find_note(&rep, SSA_UNPINNED, "sidecar", "");
    ASSERT_NOT_NULL(n);
    ASSERT_STR_CONTAINS(n->reason, "not in the live spec");
    cJSON_Delete(body);
    live_free(&l);
}

static void test_init_containers(void)
{
    live l;
    live_from(&l, cJSON_Parse("{\"metadata\":{\"name\":\"w\",\"namespace\":\"ns\",\"uid\":\"u1\"},"
                              "\"spec\":{\"template\":{\"spec\":{\"initContainers\":[{\"name\":"
                              "\"init\"}],\"containers\":[{\"name\":\"app\"}]}}}}"));
    ssa_container want[] = {{.name = "init", .init = 1, .cpu_request = "100m"},
                            {.name = "init", .cpu_request = "1"}}; /* no such main container */
    ssa_request rq = {.live = l.proj, .containers = want, .ncontainers = 2};
    ssa_report rep;
    opbuf b;
    opbuf_init(&b, 4096);
    ASSERT_EQ_INT(ssa_build(&rq, &b, &rep, NULL), 0);
    ASSERT_STR_EQ(b.data, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{"
                          "\"name\":\"w\",\"namespace\":\"ns\",\"uid\":\"u1\"},\"spec\":{"
                          "\"template\":{\"spec\":{\"initContainers\":[{\"name\":\"init\","
                          "\"resources\":{\"requests\":{\"cpu\":\"100m\"}}}]}}}}");
    ASSERT_EQ_INT(rep.nskipped, 1);
    opbuf_release(&b);
    live_free(&l);
}

static void test_annotations_body(void)
{
    live l;
    live_load(&l, "apply-force-200.json");
    ssa_container want[] = {
        {.name = "nginx",
         .cpu_request = "250m",
         .memory_request = "512Mi",
         .cpu_limit = "500m",
         .memory_limit = "1Gi"},
        {.name = "ghost", .cpu_request = "1"},
    };
    /* a workload optipod has written nothing to yet */
    ssa_request rq = {.live = l.proj, .containers = want, .ncontainers = 2};
    ssa_report rep;
    opbuf b;
    opbuf_init(&b, 4096);
    ASSERT_EQ_INT(ssa_build_annotations(&rq, &b, &rep, NULL), 0);
    ASSERT_STR_EQ(b.data,
                  "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
                  "\"web-app\",\"namespace\":\"default\",\"uid\":\"05800cd8-277c-4718-8908-"
                  "ec15ae16eaa3\",\"annotations\":{\"optipod.io/cpu-request.nginx\":\"250m\","
                  "\"optipod.io/memory-request.nginx\":\"512Mi\",\"optipod.io/strategy\":"
                  "\"webhook\",\"optipod.io/webhook-enabled\":\"true\"}}}");
    ASSERT_EQ_INT(rep.napplied, 1);
    ASSERT_NOT_NULL(find_note(&rep, SSA_SKIPPED, "ghost", ""));

    opbuf_reset(&b);
    rq.allow_limits = 1;
    ASSERT_EQ_INT(ssa_build_annotations(&rq, &b, &rep, NULL), 0);
    ASSERT_STR_CONTAINS(b.data, "\"optipod.io/memory-request.nginx\":\"512Mi\","
                                "\"optipod.io/cpu-limit.nginx\":\"500m\","
                                "\"optipod.io/memory-limit.nginx\":\"1Gi\",");
    ASSERT(!strstr(b.data, "\"spec\""));

    /* switching from the ssa strategy: the requests only optipod owns must not
     * be stripped from the pod template by the annotation-only body */
    opbuf_reset(&b);
    rq.mf = &l.mf;
    ASSERT_EQ_INT(ssa_build_annotations(&rq, &b, &rep, NULL), 0);
    ASSERT_STR_CONTAINS(b.data, "\"optipod.io/webhook-enabled\":\"true\"}},\"spec\":{\"template\":"
                                "{\"spec\":{\"containers\":[{\"name\":\"nginx\",\"resources\":{"
                                "\"requests\":{\"cpu\":\"250m\",\"memory\":\"512Mi\"}}}]}}}}");
    ASSERT_EQ_INT(rep.nkept, 2);
    ASSERT_EQ_INT(rep.napplied, 1);
    ASSERT_NOT_NULL(find_note(&rep, SSA_KEPT, "nginx", "requests.memory"));
    opbuf_reset(&b);
    rq.allow_delete = 1;
    ASSERT_EQ_INT(ssa_build_annotations(&rq, &b, &rep, NULL), 0);
    ASSERT(!strstr(b.data, "\"spec\""));
    ASSERT_EQ_INT(rep.ndeleted, 2);
    opbuf_release(&b);
    live_free(&l);

    /* a container name that would overflow the 63-character key name */
    const char *longname = "a-container-name-that-is-exactly-fifty-characters";
    char json[512];
    snprintf(json, sizeof(json),
             "{\"metadata\":{\"name\":\"w\",\"namespace\":\"ns\"},\"spec\":{\"template\":{"
             "\"spec\":{\"containers\":[{\"name\":\"%s\"}]}}}}",
             longname);
    live_from(&l, cJSON_Parse(json));
    ssa_container lw = {.name = longname, .cpu_request = "1"};
    rq = (ssa_request){.live = l.proj, .containers = &lw, .ncontainers = 1};
    opbuf_init(&b, 4096);
    ASSERT_EQ_INT(ssa_build_annotations(&rq, &b, &rep, NULL), 0);
    ASSERT(!strstr(b.data, longname));
    ASSERT_STR_CONTAINS(find_note(&rep, SSA_SKIPPED, longname, "")->reason, "63-character");
    opbuf_release(&b);
    live_free(&l);
}

static void test_errors(void)
{
    live l;
    operr err = {{0}};
    opbuf b;
    opbuf_init(&b, 64);
    ssa_request rq = {0};
    ASSERT_EQ_INT(ssa_build(&rq, &b, NULL, &err), -EINVAL);
    live_load(&l, "apply-force-200.json");
    ssa_container want = {.name = "nginx", .cpu_request = "250m"};
    rq = (ssa_request){.live = l.proj, .containers = &want, .ncontainers = 1};
    ASSERT_EQ_INT(ssa_build(&rq, &b, NULL, &err), -E2BIG);
    ASSERT_STR_CONTAINS(err.msg, "'web-app'");
    ssa_container noname = {.cpu_request = "1"};
    rq.containers = &noname;
    ASSERT_EQ_INT(ssa_build(&rq, &b, NULL, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "no name");
    ASSERT_NULL(ssa_api_version(KPROJ_POD));
    ASSERT_STR_EQ(ssa_api_version(KPROJ_STATEFULSET), "apps/v1");
    opbuf_release(&b);
    live_free(&l);
}

static void test_changes_feed_conflict_detection(void)
{
    live l;
    live_load(&l, "flux-2-after-flux-reapply.json"); /* live: 100m / 128Mi */
    ssa_container want = {
        .name = "nginx", .cpu_request = "0.1", .memory_request = "0.5Gi", .cpu_limit = "1"};
    ssa_request rq = {.live = l.proj, .mf = &l.mf, .containers = &want, .ncontainers = 1};
    ssa_change ch[4];
    ASSERT_EQ_INT(ssa_changes(&rq, ch, 4), 1); /* 0.1 == 100m; limits not allowed */
    ASSERT_STR_EQ(ch[0].field, "requests.memory");
    ASSERT_STR_EQ(ch[0].from, "128Mi");
    ASSERT_STR_EQ(ch[0].to, "0.5Gi");
    ASSERT_STR_EQ(ch[0].path,
                  ".spec.template.spec.containers[name=\"nginx\"].resources.requests.memory");
    rq.allow_limits = 1;
    ASSERT_EQ_INT(ssa_changes(&rq, ch, 4), 2);
    ASSERT_NULL(ch[1].from);

    /* the changed fields are the conflict targets: Flux owns them */
    const char *targets[4];
    for (int i = 0; i < 2; i++)
        targets[i] = ch[i].path;
    conflict_set cs;
    conflict_set_init(&cs);
    ASSERT_EQ_INT(conflict_add_fields(&cs, &l.mf, MFIELDS_OPTIPOD, targets, 2), 1);
    ASSERT_STR_EQ(cs.items[0].manager, "kustomize-controller");

    /* unchanged, released or not live: nothing */
    want = (ssa_container){.name = "nginx", .cpu_request = "100m", .memory_request = "128Mi"};
    ASSERT_EQ_INT(ssa_changes(&rq, ch, 4), 0);
    want.cpu_request = "1";
    const char *const rel[] = {"nginx"};
    rq.release = rel;
    rq.nrelease = 1;
    ASSERT_EQ_INT(ssa_changes(&rq, NULL, 0), 0);
    live_free(&l);
}

int main(void)
{
    TEST_RUN(test_changes_feed_conflict_detection);
    TEST_RUN(test_body_matches_recorded_apply);
    TEST_RUN(test_skips_containers_not_live_and_limits);
    TEST_RUN(test_release_refuses_to_delete_unless_asked);
    TEST_RUN(test_release_with_co_owner_keeps_value);
    TEST_RUN(test_never_deletes_a_container_by_omission);
    TEST_RUN(test_unpins_containers_gone_from_live);
    TEST_RUN(test_init_containers);
    TEST_RUN(test_annotations_body);
    TEST_RUN(test_errors);
    return test_summary();
}
