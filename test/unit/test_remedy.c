/* remedy: golden YAML and Event notes, and proof that they parse as the
 * structures Argo CD and Flux read. */
#include "apply/remedy.h"
#include "util/yaml2json.h"
#include "test.h"

#include <errno.h>

#include <cJSON.h>

static kproj_obj *load(const char *name)
{
    char path[512];
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", test_fixture_dir(), name);
    char *txt = test_read_file(path, &len);
    cJSON *obj = cJSON_ParseWithLength(txt, len);
    free(txt);
    ASSERT_NOT_NULL(obj);
    kproj_obj *o = NULL;
    ASSERT_EQ_INT(kproj_from_json(obj, KPROJ_DEPLOYMENT, &o), 0);
    cJSON_Delete(obj);
    return o;
}

static cJSON *yaml(const char *txt)
{
    cJSON *j = NULL;
    operr err = {{0}};
    if (yaml2json_parse(txt, strlen(txt), &j, &err) != 0)
        test_fail(__FILE__, __LINE__, "not YAML: %s\n%s", err.msg, txt);
    return j;
}

static void test_tools_from_managers(void)
{
    ASSERT_EQ_INT(remedy_tool_for_manager("argocd-controller"), REMEDY_ARGOCD);
    ASSERT_EQ_INT(remedy_tool_for_manager("argocd-application-controller"), REMEDY_ARGOCD);
    ASSERT_EQ_INT(remedy_tool_for_manager("kustomize-controller"), REMEDY_FLUX_KUSTOMIZE);
    ASSERT_EQ_INT(remedy_tool_for_manager("helm-controller"), REMEDY_FLUX_HELM);
    ASSERT_EQ_INT(remedy_tool_for_manager("kubectl-edit"), REMEDY_UNKNOWN);
    ASSERT_EQ_INT(remedy_tool_for_manager(NULL), REMEDY_UNKNOWN);
    ASSERT_STR_EQ(remedy_tool_name(REMEDY_FLUX_KUSTOMIZE), "Flux kustomize-controller");
}

static void test_argocd(void)
{
    kproj_obj *o = load("apply-force-200.json");
    remedy_request rq = {.live = o, .reclaimer = "argocd-controller"};
    opbuf b;
    opbuf_init(&b, 0);
    ASSERT_EQ_INT(remedy_yaml(REMEDY_ARGOCD, &rq, &b), 0);
    ASSERT_STR_EQ(b.data,
                  "# Argo CD Application: leave the fields optipod manages on Deployment "
                  "default/web-app out of the diff and out of syncs\n"
                  "spec:\n"
                  "  ignoreDifferences:\n"
                  "    - group: apps\n"
                  "      kind: Deployment\n"
                  "      name: web-app\n"
                  "      namespace: default\n"
                  "      managedFieldsManagers:\n"
                  "        - optipod\n"
                  "  syncPolicy:\n"
                  "    syncOptions:\n"
                  "      - RespectIgnoreDifferences=true\n"
                  "# Argo CD then writes the live values on sync and co-owns them: optipod's "
                  "next change is a forced apply.\n");
    cJSON *j = yaml(b.data);
    cJSON *rule = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "spec"), "ignoreDifferences"), 0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(rule, "name")->valuestring, "web-app");
    ASSERT_STR_EQ(
        cJSON_GetArrayItem(cJSON_GetObjectItem(rule, "managedFieldsManagers"), 0)->valuestring,
        "optipod");
    cJSON_Delete(j);

    char note[REMEDY_NOTE_MAX + 1];
    int n = remedy_note(REMEDY_ARGOCD, &rq, note, sizeof(note));
    ASSERT_STR_EQ(note, "\"argocd-controller\" keeps taking back the fields optipod manages on "
                        "Deployment default/web-app; optipod stopped applying to it. In the Argo "
                        "CD Application add spec.ignoreDifferences: [{group: apps, kind: "
                        "Deployment, name: web-app, namespace: default, managedFieldsManagers: "
                        "[optipod]}] and spec.syncPolicy.syncOptions: "
                        "[RespectIgnoreDifferences=true].");
    ASSERT_EQ_INT(n, strlen(note));
    /* the flow sequence in the note is YAML too */
    const char *flow = strstr(note, "[{");
    char part[512];
    snprintf(part, sizeof(part), "%.*s", (int)(strstr(flow, "}]") + 2 - flow), flow);
    j = yaml(part);
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "kind")->valuestring, "Deployment");
    cJSON_Delete(j);
    opbuf_release(&b);
    kproj_free(o);
}

static void test_flux_kustomization_indexes(void)
{
    kproj_obj *o = load("container-removal-state-before-release.json");
    remedy_field f[] = {
        {.container = "sidecar", .field = "requests.cpu"},
        {.container = "app", .field = "requests.cpu"},
        {.container = "sidecar", .field = "requests.cpu"}, /* duplicate */
        {.container = "gone", .field = "requests.cpu"},    /* not live: left out */
        {.container = "app", .field = "limits.nvidia.com/gpu"},
    };
    remedy_request rq = {.live = o, .reclaimer = "kustomize-controller", .fields = f, .nfields = 5};
    opbuf b;
    opbuf_init(&b, 0);
    ASSERT_EQ_INT(remedy_yaml(REMEDY_FLUX_KUSTOMIZE, &rq, &b), 0);
    ASSERT_STR_EQ(b.data,
                  "# Flux Kustomization (kustomize-controller): leave the fields optipod "
                  "manages on Deployment default/twoc out of drift correction\n"
                  "# container indexes are positions in the live object: update them if the "
                  "container list changes\n"
                  "spec:\n"
                  "  driftIgnoreRules:\n"
                  "    - paths:\n"
                  "        - /spec/template/spec/containers/1/resources/requests/cpu\n"
                  "        - /spec/template/spec/containers/0/resources/requests/cpu\n"
                  "        - /spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu\n"
                  "      target:\n"
                  "        group: apps\n"
                  "        version: v1\n"
                  "        kind: Deployment\n"
                  "        name: '^twoc$'\n"
                  "        namespace: '^default$'\n");
    cJSON *j = yaml(b.data);
    cJSON *rule = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "spec"), "driftIgnoreRules"), 0);
    ASSERT_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(rule, "paths")), 3);
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(rule, "target"), "name")->valuestring,
                  "^twoc$");
    cJSON_Delete(j);

    char note[REMEDY_NOTE_MAX + 1];
    ASSERT_CMP_INT(remedy_note(REMEDY_FLUX_KUSTOMIZE, &rq, note, sizeof(note)), >, 0);
    ASSERT_STR_EQ(note,
                  "\"kustomize-controller\" keeps taking back the fields optipod manages on "
                  "Deployment default/twoc; optipod stopped applying to it. In the Flux "
                  "Kustomization add spec.driftIgnoreRules: [{paths: "
                  "[/spec/template/spec/containers/1/resources/requests/cpu, "
                  "/spec/template/spec/containers/0/resources/requests/cpu, "
                  "/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu], target: "
                  "{group: apps, version: v1, kind: Deployment, name: '^twoc$', namespace: "
                  "'^default$'}}] (container indexes are positions in the live object), or "
                  "keep requests and limits out of Git.");
    opbuf_release(&b);

    /* none of the fields in the live object: no rule can be written */
    remedy_request none = {.live = o, .fields = &f[3], .nfields = 1};
    opbuf_init(&b, 0);
    ASSERT_EQ_INT(remedy_yaml(REMEDY_FLUX_KUSTOMIZE, &none, &b), -ENOENT);
    ASSERT_EQ_INT(remedy_note(REMEDY_FLUX_HELM, &none, note, sizeof(note)), -ENOENT);
    opbuf_release(&b);
    kproj_free(o);
}

static void test_flux_helm_and_escaped_names(void)
{
    cJSON *obj = cJSON_Parse("{\"metadata\":{\"name\":\"web.app\",\"namespace\":\"team-a\"},"
                             "\"spec\":{\"template\":{\"spec\":{\"initContainers\":[{\"name\":"
                             "\"init\"}],\"containers\":[{\"name\":\"x\"},{\"name\":\"y\"}]}}}}");
    kproj_obj *o = NULL;
    ASSERT_EQ_INT(kproj_from_json(obj, KPROJ_STATEFULSET, &o), 0);
    cJSON_Delete(obj);
    remedy_field f[] = {{.container = "init", .init = 1, .field = "requests.memory"},
                        {.container = "y", .field = "limits.cpu"}};
    remedy_request rq = {.live = o, .reclaimer = "helm-controller", .fields = f, .nfields = 2};
    opbuf b;
    opbuf_init(&b, 0);
    ASSERT_EQ_INT(remedy_yaml(REMEDY_FLUX_HELM, &rq, &b), 0);
    ASSERT_STR_EQ(b.data,
                  "# Flux HelmRelease (helm-controller): leave the fields optipod manages on "
                  "StatefulSet team-a/web.app out of drift correction\n"
                  "# container indexes are positions in the live object: update them if the "
                  "container list changes\n"
                  "spec:\n"
                  "  driftDetection:\n"
                  "    ignore:\n"
                  "      - paths:\n"
                  "          - /spec/template/spec/initContainers/0/resources/requests/memory\n"
                  "          - /spec/template/spec/containers/1/resources/limits/cpu\n"
                  "        target:\n"
                  "          group: apps\n"
                  "          version: v1\n"
                  "          kind: StatefulSet\n"
                  "          name: '^web\\.app$'\n"
                  "          namespace: '^team-a$'\n");
    cJSON *j = yaml(b.data);
    cJSON *rule = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "spec"), "driftDetection"),
                            "ignore"),
        0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(rule, "target"), "name")->valuestring,
                  "^web\\.app$");
    cJSON_Delete(j);
    opbuf_release(&b);
    kproj_free(o);
}

static void test_unknown_manager_and_note_bound(void)
{
    kproj_obj *o = load("apply-force-200.json");
    remedy_request rq = {.live = o, .reclaimer = "kubectl-edit"};
    opbuf b;
    opbuf_init(&b, 0);
    ASSERT_EQ_INT(remedy_yaml(REMEDY_UNKNOWN, &rq, &b), 0);
    ASSERT_STR_EQ(b.data, "# \"kubectl-edit\" keeps taking back the fields optipod manages on "
                          "Deployment default/web-app.\n"
                          "# Remove resources.requests/limits of the optimized containers from "
                          "that manager's source,\n"
                          "# or exclude the workload from the OptimizationPolicy.\n");
    opbuf_release(&b);

    /* many pointers: the note stays within 1024 bytes and points to the CLI */
    remedy_field f[40];
    static char names[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "requests.r%02d", i);
        f[i] = (remedy_field){.container = "nginx", .field = names[i]};
    }
    rq = (remedy_request){
        .live = o, .reclaimer = "kustomize-controller", .fields = f, .nfields = 40};
    char note[REMEDY_NOTE_MAX + 1];
    int n = remedy_note(REMEDY_FLUX_KUSTOMIZE, &rq, note, sizeof(note));
    ASSERT_CMP_INT(n, >, 0);
    ASSERT_CMP_INT(n, <=, REMEDY_NOTE_MAX);
    ASSERT_STR_CONTAINS(note, "more: see kubectl-optipod gitops], target:");
    ASSERT_STR_CONTAINS(note, "/spec/template/spec/containers/0/resources/requests/r00");
    char small[32];
    ASSERT_EQ_INT(remedy_note(REMEDY_ARGOCD, &rq, small, sizeof(small)), -E2BIG);

    char p[16];
    ASSERT_EQ_INT(remedy_pointer(o, &f[0], p, sizeof(p)), -E2BIG);
    remedy_field bad = {.container = "nginx", .field = "status.cpu"};
    ASSERT_EQ_INT(remedy_pointer(o, &bad, p, sizeof(p)), -EINVAL);
    kproj_free(o);

    remedy_request empty = {0};
    ASSERT_EQ_INT(remedy_yaml(REMEDY_ARGOCD, &empty, &b), -EINVAL);
}

int main(void)
{
    TEST_RUN(test_tools_from_managers);
    TEST_RUN(test_argocd);
    TEST_RUN(test_flux_kustomization_indexes);
    TEST_RUN(test_flux_helm_and_escaped_names);
    TEST_RUN(test_unknown_manager_and_note_bound);
    return test_summary();
}
