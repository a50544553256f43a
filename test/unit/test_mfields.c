/* mfields against the managedFields a real v1.24 API server recorded. */
#include "apply/fields.h"
#include "test.h"
#include "util/buf.h"

#include <errno.h>

#define CPU_NGINX  ".spec.template.spec.containers[name=\"nginx\"].resources.requests.cpu"
#define MEM_NGINX  ".spec.template.spec.containers[name=\"nginx\"].resources.requests.memory"
#define ITEM_NGINX ".spec.template.spec.containers[name=\"nginx\"]"

static void load(mfields *m, const char *name)
{
    char path[512];
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", test_fixture_dir(), name);
    char *json = test_read_file(path, &len);
    operr err = {{0}};
    int rc = mfields_parse_json(m, json, len, &err);
    free(json);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "%s: %d %s", name, rc, err.msg);
}

static const mfields_entry *entry(const mfields *m, const char *manager)
{
    for (size_t i = 0; i < m->nentries; i++) {
        if (!strcmp(m->entries[i].manager, manager))
            return &m->entries[i];
    }
    return NULL;
}

static void test_paths_render_like_status_fields(void)
{
    char buf[256];
    ASSERT_EQ_INT(
        mfields_path_resource(buf, sizeof(buf), MFIELDS_CONTAINERS, "nginx", "requests", "cpu"),
        strlen(CPU_NGINX));
    ASSERT_STR_EQ(buf, CPU_NGINX);
    ASSERT_CMP_INT(mfields_path_item(buf, sizeof(buf), MFIELDS_INIT_CONTAINERS, "x\"y"), >, 0);
    ASSERT_STR_EQ(buf, ".spec.template.spec.initContainers[name=\"x\\\"y\"]");
    ASSERT_EQ_INT(mfields_path_resource(buf, 20, MFIELDS_CONTAINERS, "nginx", "requests", "cpu"),
                  -E2BIG);
    ASSERT_EQ_INT(
        mfields_path_resource(buf, sizeof(buf), MFIELDS_CONTAINERS, "nginx", "status", "cpu"),
        -EINVAL);
    ASSERT_EQ_INT(mfields_path_item(buf, sizeof(buf), MFIELDS_CONTAINERS, ""), -EINVAL);
}

static void test_apply_force_200(void)
{
    mfields m;
    load(&m, "apply-force-200.json");
    ASSERT_EQ_INT(m.nentries, 3);
    const mfields_entry *argo = entry(&m, "argocd-controller");
    const mfields_entry *op = entry(&m, "optipod");
    const mfields_entry *kcm = entry(&m, "kube-controller-manager");
    ASSERT_NOT_NULL(argo);
    ASSERT_NOT_NULL(op);
    ASSERT_NOT_NULL(kcm);
    ASSERT_EQ_INT(argo->op, MFIELDS_OP_APPLY);
    ASSERT_STR_EQ(argo->api_version, "apps/v1");
    ASSERT_STR_EQ(argo->subresource, "");
    ASSERT_EQ_INT(kcm->op, MFIELDS_OP_UPDATE);
    ASSERT_STR_EQ(kcm->subresource, "status");
    /* labels.optimize, replicas, selector, 2 template labels, item, image, name */
    ASSERT_EQ_INT(argo->npaths, 8);
    ASSERT(mfields_entry_owns(argo, ".spec.replicas"));
    ASSERT(mfields_entry_owns(argo, ".metadata.labels.optimize"));
    ASSERT(mfields_entry_owns(argo, ITEM_NGINX ".image"));
    ASSERT(!mfields_entry_owns(argo, CPU_NGINX)); /* lost to the forced apply */
    ASSERT(mfields_entry_owns(kcm, ".status.conditions[type=\"Available\"].reason"));
    ASSERT(mfields_entry_owns(kcm, ".metadata.annotations"));

    /* optipod: item, name, cpu, memory */
    ASSERT_EQ_INT(op->npaths, 4);
    const mfields_entry *who[4];
    ASSERT_EQ_INT(mfields_owners(&m, CPU_NGINX, NULL, who, 4), 1);
    ASSERT_STR_EQ(who[0]->manager, "optipod");
    ASSERT_EQ_INT(mfields_owners(&m, CPU_NGINX, "optipod", who, 4), 0);
    ASSERT_EQ_INT(mfields_owners(&m, ITEM_NGINX, NULL, who, 4), 2);
    ASSERT_EQ_INT(mfields_owners(&m, ITEM_NGINX, NULL, who, 1), 2); /* counts beyond max */
    ASSERT(mfields_manager_owns(&m, "optipod", MEM_NGINX));
    ASSERT(!mfields_manager_owns(&m, "optipod",
                                 ".spec.template.spec.containers[name=\"nginx\"].resources."
                                 "limits.cpu"));
    for (size_t i = 0; i < op->npaths; i++) {
        const mfields_path *p = &op->paths[i];
        ASSERT_STR_EQ(p->container, "nginx");
        ASSERT_EQ_INT(p->list, MFIELDS_CONTAINERS);
        if (!strcmp(p->path, CPU_NGINX)) {
            ASSERT_EQ_INT(p->cls, MFIELDS_RESOURCES);
            ASSERT_STR_EQ(p->leaf, "requests.cpu");
        }
    }
    const char *first = "unset";
    ASSERT_EQ_INT(mfields_foreign(&m, "optipod", 0, &first), 0);
    ASSERT_NULL(first);
    ASSERT_EQ_INT(mfields_foreign(&m, "argocd-controller", 0, &first), 6); /* all but item, name */
    ASSERT_STR_EQ(first, ".metadata.labels.optimize");
    ASSERT_EQ_INT(mfields_pins_item(&m, "optipod", MFIELDS_CONTAINERS, "nginx"), 1);
    ASSERT_EQ_INT(mfields_pins_item(&m, "optipod", MFIELDS_INIT_CONTAINERS, "nginx"), 0);
    mfields_release(&m);
    ASSERT_EQ_INT(m.nentries, 0);
}

static void test_flux_fight(void)
{
    mfields m;
    load(&m, "flux-1-optipod-forced.json");
    ASSERT(mfields_manager_owns(&m, "optipod", CPU_NGINX));
    ASSERT_EQ_INT(mfields_owners(&m, CPU_NGINX, "optipod", NULL, 0), 0);
    mfields_release(&m);

    /* after Flux's forced re-apply optipod keeps only the item and its key */
    load(&m, "flux-2-after-flux-reapply.json");
    const mfields_entry *who[2];
    ASSERT_EQ_INT(mfields_owners(&m, CPU_NGINX, NULL, who, 2), 1);
    ASSERT_STR_EQ(who[0]->manager, "kustomize-controller");
    ASSERT_EQ_INT(mfields_owners(&m, MEM_NGINX, "optipod", who, 2), 1);
    ASSERT(!mfields_manager_owns(&m, "optipod", CPU_NGINX));
    const mfields_entry *op = entry(&m, "optipod");
    ASSERT_EQ_INT(op->npaths, 2);
    ASSERT_EQ_INT(op->paths[0].cls, MFIELDS_ITEM);
    ASSERT_EQ_INT(op->paths[1].cls, MFIELDS_ITEM);
    ASSERT_EQ_INT(mfields_pins_item(&m, "optipod", MFIELDS_CONTAINERS, "nginx"), 1);
    ASSERT_EQ_INT(mfields_foreign(&m, "optipod", 0, NULL), 0);
    mfields_release(&m);
}

static void test_container_removal_states(void)
{
    mfields m;
    const char *names[4];
    const char *const git_after[] = {"app"};
    const char *const live_both[] = {"app", "sidecar"};

    load(&m, "container-removal-state-before-release.json");
    ASSERT_EQ_INT(mfields_containers(&m, "optipod", MFIELDS_CONTAINERS, names, 4), 2);
    ASSERT_STR_EQ(names[0], "app");
    ASSERT_STR_EQ(names[1], "sidecar");
    ASSERT_EQ_INT(mfields_pins_item(&m, "optipod", MFIELDS_CONTAINERS, "sidecar"), 1);
    /* the live spec still has both; Git has only app */
    ASSERT_EQ_INT(
        mfields_stale_containers(&m, "optipod", MFIELDS_CONTAINERS, live_both, 2, names, 4), 0);
    ASSERT_EQ_INT(
        mfields_stale_containers(&m, "optipod", MFIELDS_CONTAINERS, git_after, 1, names, 4), 1);
    ASSERT_STR_EQ(names[0], "sidecar");
    ASSERT_EQ_INT(mfields_stale_containers(&m, "optipod", MFIELDS_CONTAINERS, NULL, 0, names, 1),
                  2);
    ASSERT(mfields_others_hold_container(&m, "optipod", MFIELDS_CONTAINERS, "sidecar"));
    mfields_release(&m);

    load(&m, "container-released-by-optipod.json");
    ASSERT_EQ_INT(mfields_containers(&m, "optipod", MFIELDS_CONTAINERS, names, 4), 1);
    ASSERT_STR_EQ(names[0], "app");
    ASSERT_EQ_INT(mfields_pins_item(&m, "optipod", MFIELDS_CONTAINERS, "sidecar"), 0);
    ASSERT_EQ_INT(mfields_pins_item(&m, "optipod", MFIELDS_CONTAINERS, "app"), 1);
    ASSERT(mfields_others_hold_container(&m, "optipod", MFIELDS_CONTAINERS, "sidecar"));
    ASSERT(!mfields_others_hold_container(&m, "argocd-controller", MFIELDS_CONTAINERS, "sidecar"));
    mfields_release(&m);

    load(&m, "container-removal-by-gitops-after-release-200.json");
    ASSERT_EQ_INT(mfields_containers(&m, "argocd-controller", MFIELDS_CONTAINERS, names, 4), 1);
    ASSERT_EQ_INT(
        mfields_stale_containers(&m, "optipod", MFIELDS_CONTAINERS, git_after, 1, names, 4), 0);
    mfields_release(&m);
}

static void test_update_operation_does_not_pin(void)
{
    mfields m;
    load(&m, "container-removal-after-update-operation-200.json");
    const mfields_entry *op = entry(&m, "optipod");
    ASSERT_NOT_NULL(op);
    ASSERT_EQ_INT(op->op, MFIELDS_OP_UPDATE);
    ASSERT_STR_EQ(op->operation, "Update");
    ASSERT_EQ_INT(op->npaths, 2);
    ASSERT_STR_EQ(op->paths[0].path,
                  ".spec.template.spec.containers[name=\"app\"].resources.requests");
    ASSERT_STR_EQ(op->paths[0].leaf, "requests");
    ASSERT_EQ_INT(op->paths[0].cls, MFIELDS_RESOURCES);
    ASSERT_STR_EQ(op->paths[1].leaf, "requests.cpu");
    ASSERT_EQ_INT(mfields_pins_item(&m, "optipod", MFIELDS_CONTAINERS, "app"), 0);
    ASSERT_EQ_INT(mfields_foreign(&m, "optipod", 0, NULL), 0);
    mfields_release(&m);
}

static int parse_str(mfields *m, const char *json, operr *err)
{
    return mfields_parse_json(m, json, strlen(json), err);
}

static void test_keys_values_indexes_and_lanes(void)
{
    mfields m;
    operr err = {{0}};
    const char *json =
        "{\"metadata\":{\"managedFields\":[{\"manager\":\"optipod\",\"operation\":\"Apply\","
        "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{"
        "\"f:metadata\":{\"f:annotations\":{\"f:optipod.io/cpu-request.app\":{},"
        "\"f:other.io/x\":{}}},"
        "\"f:spec\":{\"f:replicas\":{},\"f:template\":{\"f:spec\":{"
        "\"f:containers\":{\"k:{\\\"name\\\":\\\"app\\\"}\":{\"f:ports\":{"
        "\"k:{\\\"containerPort\\\":80,\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{}}},"
        "\"f:args\":{\"v:\\\"-x\\\"\":{},\"i:0\":{}}}}}}}}}]}}";
    ASSERT_EQ_INT(parse_str(&m, json, &err), 0);
    const mfields_entry *e = &m.entries[0];
    ASSERT_EQ_INT(e->npaths, 6);
    ASSERT(mfields_entry_owns(e, ".metadata.annotations.optipod.io/cpu-request.app"));
    ASSERT(mfields_entry_owns(
        e,
        ".spec.template.spec.containers[name=\"app\"].ports[containerPort=80,protocol=\"TCP\"]"));
    ASSERT(mfields_entry_owns(e, ".spec.template.spec.containers[name=\"app\"].args[=\"-x\"]"));
    ASSERT(mfields_entry_owns(e, ".spec.template.spec.containers[name=\"app\"].args[0]"));
    const char *first;
    /* other.io/x, replicas, ports item, 2 args (the optipod.io annotation is allowed) */
    ASSERT_EQ_INT(mfields_foreign(&m, "optipod", MFIELDS_ALLOW_ANNOTATIONS, &first), 5);
    ASSERT_STR_EQ(first, ".metadata.annotations.other.io/x");
    ASSERT_EQ_INT(mfields_foreign(&m, "optipod", 0, NULL), 6);
    mfields_release(&m);

    /* no managedFields at all: an empty model */
    ASSERT_EQ_INT(parse_str(&m, "{\"metadata\":{\"name\":\"x\"}}", &err), 0);
    ASSERT_EQ_INT(m.nentries, 0);
    ASSERT_EQ_INT(mfields_foreign(&m, "optipod", 0, NULL), 0);
    mfields_release(&m);
}

static void test_rejects_malformed(void)
{
    mfields m;
    operr err = {{0}};
    ASSERT_EQ_INT(parse_str(&m, "{", &err), -EINVAL);
    ASSERT_EQ_INT(parse_str(&m, "{\"metadata\":{\"managedFields\":{}}}", &err), -EINVAL);
    ASSERT_EQ_INT(parse_str(&m, "{\"metadata\":{\"managedFields\":[1]}}", &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "managedFields[0]");
    ASSERT_EQ_INT(parse_str(&m,
                            "{\"metadata\":{\"managedFields\":[{\"manager\":\"a\","
                            "\"fieldsType\":\"FieldsV2\",\"fieldsV1\":{}}]}}",
                            &err),
                  -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "'a': fieldsType");
    ASSERT_EQ_INT(parse_str(&m,
                            "{\"metadata\":{\"managedFields\":[{\"manager\":\"a\","
                            "\"fieldsV1\":{\"f:spec\":{\"x:y\":{}}}}]}}",
                            &err),
                  -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "unknown fieldsV1 key 'x:y'");
    ASSERT_EQ_INT(parse_str(&m,
                            "{\"metadata\":{\"managedFields\":[{\"manager\":\"a\","
                            "\"fieldsV1\":{\"f:spec\":{\"k:nope\":{}}}}]}}",
                            &err),
                  -EINVAL);
    ASSERT_EQ_INT(parse_str(&m,
                            "{\"metadata\":{\"managedFields\":[{\"manager\":\"a\","
                            "\"fieldsV1\":{\"f:spec\":[]}}]}}",
                            &err),
                  -EINVAL);
    ASSERT_EQ_INT(m.nentries, 0);

    /* depth cap */
    opbuf b;
    opbuf_init(&b, 0);
    opbuf_puts(&b, "{\"metadata\":{\"managedFields\":[{\"manager\":\"a\",\"fieldsV1\":");
    for (int i = 0; i < MFIELDS_MAX_DEPTH + 2; i++)
        opbuf_puts(&b, "{\"f:a\":");
    opbuf_puts(&b, "{}");
    for (int i = 0; i < MFIELDS_MAX_DEPTH + 2; i++)
        opbuf_puts(&b, "}");
    opbuf_puts(&b, "}]}}");
    ASSERT_EQ_INT(mfields_parse_json(&m, b.data, b.len, &err), -E2BIG);
    ASSERT_STR_CONTAINS(err.msg, "deeper than");
    opbuf_release(&b);

    /* path length cap */
    opbuf_init(&b, 0);
    opbuf_puts(&b, "{\"metadata\":{\"managedFields\":[{\"manager\":\"a\",\"fieldsV1\":{\"f:");
    for (int i = 0; i < MFIELDS_PATH_MAX; i++)
        opbuf_puts(&b, "x");
    opbuf_puts(&b, "\":{}}}]}}");
    ASSERT_EQ_INT(mfields_parse_json(&m, b.data, b.len, &err), -E2BIG);
    opbuf_release(&b);
}

int main(void)
{
    TEST_RUN(test_paths_render_like_status_fields);
    TEST_RUN(test_apply_force_200);
    TEST_RUN(test_flux_fight);
    TEST_RUN(test_container_removal_states);
    TEST_RUN(test_update_operation_does_not_pin);
    TEST_RUN(test_keys_values_indexes_and_lanes);
    TEST_RUN(test_rejects_malformed);
    return test_summary();
}
