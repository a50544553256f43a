/*
 * fakeapi against the recordings of a real v1.24 API server
 * (test/data/kube-apiserver-v1.24), driven over HTTPS by the raw
 * test client on the same loop. Every test stops the server and asserts the
 * loop closes clean.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "support/fakeapi.h"
#include "support/fakeapi_client.h"
#include "support/fakeapi_int.h"
#include "record/record.h"
#include "test.h"

static uv_loop_t L;
static fakeapi *FA;
static int closed;

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

static void start(const fakeapi_opts *o)
{
    ASSERT_EQ_INT(uv_loop_init(&L), 0);
    ASSERT_EQ_INT(fakeapi_start(&FA, &L, o), 0);
    closed = 0;
}

static void stop(void)
{
    fakeapi_stop(FA, on_closed, &closed);
    uv_run(&L, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(uv_loop_close(&L), 0);
}

/* One request over TLS; the result body is parsed into *json when asked. */
static void call(const char *method, const char *path, const char *ct, const char *body,
                 fakeapi_cli_result *r)
{
    char *req = fakeapi_cli_format(method, path, ct, body, NULL);
    ASSERT_EQ_INT(
        fakeapi_cli_run(&L, fakeapi_port(FA), fakeapi_ca_pem(FA), 1, req, strlen(req), 0, r), 0);
    free(req);
    ASSERT_EQ_INT(r->error, 0);
}

static cJSON *call_json(const char *method, const char *path, const char *ct, const char *body,
                        int want_status)
{
    fakeapi_cli_result r;
    call(method, path, ct, body, &r);
    if (r.status != want_status)
        test_fail(__FILE__, __LINE__, "%s %s: status %d, want %d: %s", method, path, r.status,
                  want_status, r.body ? r.body : "");
    cJSON *j = cJSON_Parse(r.body ? r.body : "");
    fakeapi_cli_result_release(&r);
    ASSERT_NOT_NULL(j);
    return j;
}

static cJSON *fixture(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", test_fixture_dir(), name);
    char *s = test_read_file(path, NULL);
    cJSON *j = cJSON_Parse(s);
    free(s);
    ASSERT_NOT_NULL(j);
    return j;
}

static const cJSON *at(const cJSON *o, const char *dotted)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", dotted);
    char *save = NULL;
    const cJSON *cur = o;
    for (char *t = strtok_r(buf, ".", &save); t && cur; t = strtok_r(NULL, ".", &save)) {
        if (cJSON_IsArray(cur))
            cur = cJSON_GetArrayItem(cur, atoi(t));
        else
            cur = cJSON_GetObjectItemCaseSensitive(cur, t);
    }
    return cur;
}

static const char *at_str(const cJSON *o, const char *dotted)
{
    const cJSON *v = at(o, dotted);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The managedFields entry of `manager` (fieldsV1), or NULL. */
static const cJSON *fields_of(const cJSON *o, const char *manager, const char *op)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, at(o, "metadata.managedFields"))
    {
        if (!strcmp(at_str(e, "manager"), manager) && (!op || !strcmp(at_str(e, "operation"), op)))
            return cJSON_GetObjectItemCaseSensitive(e, "fieldsV1");
    }
    return NULL;
}

static void assert_same_json(const cJSON *a, const cJSON *b, const char *what)
{
    if (!cJSON_Compare(a, b, 1)) {
        char *x = cJSON_PrintUnformatted(a), *y = cJSON_PrintUnformatted(b);
        test_fail(__FILE__, __LINE__, "%s differs:\n got  %s\n want %s", what, x ? x : "(null)",
                  y ? y : "(null)");
    }
}

#define DEPLOY "/apis/apps/v1/namespaces/default/deployments"
#define APPLY  "application/apply-patch+yaml"

static const char web_app_json[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web-app\","
    "\"namespace\":\"default\",\"labels\":{\"optimize\":\"true\"}},\"spec\":{\"replicas\":2,"
    "\"selector\":{\"matchLabels\":{\"app\":\"web-app\"}},\"template\":{\"metadata\":{\"labels\":"
    "{\"app\":\"web-app\",\"optimize\":\"true\"}},\"spec\":{\"containers\":[{\"name\":\"nginx\","
    "\"image\":\"nginx:1.21\",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"128Mi\"}}"
    "}]}}}}";

static const char twoc_json[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"twoc\","
    "\"namespace\":\"default\"},\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":"
    "\"twoc\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"twoc\"}},\"spec\":{"
    "\"containers\":[{\"name\":\"app\",\"image\":\"registry.invalid/app:1\"},{\"name\":"
    "\"sidecar\",\"image\":\"registry.invalid/sidecar:1\"}]}}}}";

static const char twoc_removed_json[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"twoc\","
    "\"namespace\":\"default\"},\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":"
    "\"twoc\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"twoc\"}},\"spec\":{"
    "\"containers\":[{\"name\":\"app\",\"image\":\"registry.invalid/app:1\"}]}}}}";

static const char optipod_both_json[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"twoc\","
    "\"namespace\":\"default\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":"
    "\"app\",\"resources\":{\"requests\":{\"cpu\":\"200m\"}}},{\"name\":"
    "\"sidecar\",\"resources\":{\"requests\":{\"cpu\":\"50m\"}}}]}}}}";

static const char optipod_app_only_json[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"twoc\","
    "\"namespace\":\"default\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":"
    "\"app\",\"resources\":{\"requests\":{\"cpu\":\"200m\"}}}]}}}}";

/* ---- objects, GET, 404, CRUD --------------------------------------------------------- */

static void test_crud_and_not_found(void)
{
    fakeapi_opts o = {.first_rv = 500, .now = "2026-11-22T02:02:40Z"};
    start(&o);
    cJSON *j = call_json("GET", DEPLOY "/web", NULL, NULL, 404);
    cJSON *want = cJSON_Parse(
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
        "\"message\":\"deployments.apps \\\"web\\\" not found\",\"reason\":\"NotFound\","
        "\"details\":{\"name\":\"web\",\"group\":\"apps\",\"kind\":\"deployments\"},\"code\":404}");
    assert_same_json(j, want, "NotFound Status");
    cJSON_Delete(j);
    cJSON_Delete(want);

    const char *cm = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c1\"},"
                     "\"data\":{\"a\":\"1\"}}";
    j = call_json("POST", "/api/v1/namespaces/ns1/configmaps?fieldManager=tester",
                  "application/json", cm, 201);
    ASSERT_STR_EQ(at_str(j, "metadata.namespace"), "ns1");
    ASSERT_STR_EQ(at_str(j, "metadata.resourceVersion"), "500");
    ASSERT_STR_EQ(at_str(j, "metadata.creationTimestamp"), "2026-11-22T02:02:40Z");
    ASSERT_NOT_NULL(at_str(j, "metadata.uid"));
    ASSERT_STR_EQ(at_str(j, "metadata.managedFields.0.manager"), "tester");
    ASSERT_STR_EQ(at_str(j, "metadata.managedFields.0.operation"), "Update");
    char uid[64];
    snprintf(uid, sizeof(uid), "%s", at_str(j, "metadata.uid"));
    cJSON_Delete(j);
    /* the same name again */
    j = call_json("POST", "/api/v1/namespaces/ns1/configmaps", "application/json", cm, 409);
    ASSERT_STR_EQ(at_str(j, "reason"), "AlreadyExists");
    ASSERT_STR_EQ(at_str(j, "message"), "configmaps \"c1\" already exists");
    cJSON_Delete(j);
    /* a stale resourceVersion on PUT */
    j = call_json("PUT", "/api/v1/namespaces/ns1/configmaps/c1", "application/json",
                  "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c1\","
                  "\"resourceVersion\":\"499\"},\"data\":{\"a\":\"2\"}}",
                  409);
    ASSERT_STR_EQ(at_str(j, "reason"), "Conflict");
    ASSERT_STR_CONTAINS(at_str(j, "message"), "the object has been modified");
    cJSON_Delete(j);
    j = call_json("PUT", "/api/v1/namespaces/ns1/configmaps/c1", "application/json",
                  "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c1\","
                  "\"resourceVersion\":\"500\"},\"data\":{\"a\":\"2\"}}",
                  200);
    ASSERT_STR_EQ(at_str(j, "data.a"), "2");
    ASSERT_STR_EQ(at_str(j, "metadata.resourceVersion"), "501");
    ASSERT_STR_EQ(at_str(j, "metadata.uid"), uid);
    cJSON_Delete(j);
    /* generateName */
    j = call_json("POST", "/api/v1/namespaces/ns1/configmaps", "application/json",
                  "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"generateName\":"
                  "\"gen-\"}}",
                  201);
    ASSERT_EQ_INT(strncmp(at_str(j, "metadata.name"), "gen-", 4), 0);
    ASSERT_EQ_INT(strlen(at_str(j, "metadata.name")), 9);
    cJSON_Delete(j);
    ASSERT_EQ_INT(fakeapi_object_count(FA, "/api/v1/namespaces/ns1/configmaps"), 2);
    /* DELETE → Status Success, then 404 */
    j = call_json("DELETE", "/api/v1/namespaces/ns1/configmaps/c1", NULL, NULL, 200);
    ASSERT_STR_EQ(at_str(j, "status"), "Success");
    ASSERT_STR_EQ(at_str(j, "details.uid"), uid);
    cJSON_Delete(j);
    cJSON_Delete(call_json("GET", "/api/v1/namespaces/ns1/configmaps/c1", NULL, NULL, 404));
    ASSERT_NULL(fakeapi_get(FA, "/api/v1/namespaces/ns1/configmaps/c1"));
    /* cluster-scoped */
    ASSERT_EQ_INT(fakeapi_put_json(FA, "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":"
                                       "{\"name\":\"n1\",\"namespace\":\"ignored\"}}"),
                  0);
    j = call_json("GET", "/api/v1/nodes/n1", NULL, NULL, 200);
    ASSERT_NULL(at(j, "metadata.namespace"));
    ASSERT_STR_EQ(at_str(j, "metadata.name"), "n1");
    cJSON_Delete(j);
    ASSERT_EQ_INT(fakeapi_put_json(FA, "{\"kind\":\"Node\"}"), -EINVAL);
    ASSERT_EQ_INT(fakeapi_put_json(FA, "not json"), -EINVAL);
    /* the request log */
    const fakeapi_logged *l = fakeapi_log_last(FA, "PUT", "/configmaps/c1");
    ASSERT_NOT_NULL(l);
    ASSERT_EQ_INT(l->status, 200);
    ASSERT_STR_EQ(l->content_type, "application/json");
    ASSERT_STR_CONTAINS(l->body, "\"resourceVersion\":\"500\"");
    ASSERT_EQ_INT(fakeapi_count(FA, "PUT", "/configmaps/c1"), 2);
    ASSERT_EQ_INT(fakeapi_count(FA, NULL, NULL), fakeapi_log_count(FA));
    ASSERT_STR_EQ(fakeapi_log_at(FA, 1)->path,
                  "/api/v1/namespaces/ns1/configmaps?fieldManager=tester");
    fakeapi_log_clear(FA);
    ASSERT_EQ_INT(fakeapi_log_count(FA), 0);
    stop();
}

/* metadata.generation as measured on a real v1.24 server: a Deployment's moves with its
 * spec and with its annotations (copied to its ReplicaSets), not with its labels; a
 * StatefulSet's moves with its spec only. The Deployment controller observes an
 * annotations-only generation at once (nothing to roll out). */
static void test_generation_moves_like_the_real_server(void)
{
    start(&(fakeapi_opts){0});
#define D  "/apis/apps/v1/namespaces/ns1/deployments/d"
#define MP "application/merge-patch+json"
#define TEMPLATE                                                                                   \
    "\"selector\":{\"matchLabels\":{\"app\":\"a\"}},\"template\":{\"metadata\":{\"labels\":"       \
    "{\"app\":\"a\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"pause\"}]}}"
    /* Created as a client creates it (the server defaults the spec), then the Deployment
     * controller's status. */
    cJSON_Delete(call_json("POST", "/apis/apps/v1/namespaces/ns1/deployments", "application/json",
                           "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":"
                           "{\"name\":\"d\"},\"spec\":{\"replicas\":1," TEMPLATE "}}",
                           201));
    cJSON_Delete(
        call_json("PATCH", D "/status", MP, "{\"status\":{\"observedGeneration\":1}}", 200));
    struct {
        const char *patch;
        double generation, observed;
    } steps[] = {
        {"{\"metadata\":{\"labels\":{\"y\":\"1\"}}}", 1, 1},
        {"{\"metadata\":{\"annotations\":{\"x\":\"1\"}}}", 2, 2},
        {"{\"metadata\":{\"annotations\":{\"x\":\"1\"}}}", 2, 2}, /* no change */
        {"{\"spec\":{\"replicas\":2}}", 3, 2},
        {"{\"metadata\":{\"annotations\":{\"x\":null}}}", 4, 2}, /* status not caught up */
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        cJSON *j = call_json("PATCH", D, MP, steps[i].patch, 200);
        ASSERT_EQ_INT(cJSON_GetNumberValue(at(j, "metadata.generation")), steps[i].generation);
        ASSERT_EQ_INT(cJSON_GetNumberValue(at(j, "status.observedGeneration")), steps[i].observed);
        cJSON_Delete(j);
    }
    cJSON_Delete(
        call_json("POST", "/apis/apps/v1/namespaces/ns1/statefulsets", "application/json",
                  "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"metadata\":"
                  "{\"name\":\"s\"},\"spec\":{\"replicas\":0,\"serviceName\":\"s\"," TEMPLATE "}}",
                  201));
    cJSON *j = call_json("PATCH", "/apis/apps/v1/namespaces/ns1/statefulsets/s", MP,
                         "{\"metadata\":{\"annotations\":{\"x\":\"1\"}}}", 200);
    ASSERT_EQ_INT(cJSON_GetNumberValue(at(j, "metadata.generation")), 1);
    cJSON_Delete(j);
#undef D
#undef MP
#undef TEMPLATE
    stop();
}

/* ---- paged lists --------------------------------------------------------------------- */

static void test_paged_list_matches_fixture(void)
{
    fakeapi_opts o = {.first_rv = 248};
    start(&o);
    cJSON *fx = fixture("list-deployments-limit1.json");
    /* kind/apiVersion in front, as a stored object has them */
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "kind", "Deployment");
    cJSON_AddStringToObject(obj, "apiVersion", "apps/v1");
    const cJSON *it;
    cJSON_ArrayForEach(it, at(fx, "items.0"))
        cJSON_AddItemToObject(obj, it->string, cJSON_Duplicate(it, 1));
    ASSERT_EQ_INT(fakeapi_put(FA, obj), 0); /* rv 248 */
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
                                           "name", cJSON_CreateString("web2"));
    ASSERT_EQ_INT(fakeapi_put(FA, obj), 0); /* rv 249 */
    cJSON_Delete(obj);
    ASSERT_EQ_INT(fakeapi_rv(FA), 249);

    cJSON *page = call_json("GET", DEPLOY "?limit=1", NULL, NULL, 200);
    ASSERT_STR_EQ(at_str(page, "kind"), "DeploymentList");
    ASSERT_STR_EQ(at_str(page, "apiVersion"), "apps/v1");
    /* the list metadata is byte-for-byte the recorded one (same RV, same start key) */
    assert_same_json(at(page, "metadata"), at(fx, "metadata"), "list metadata");
    ASSERT_EQ_INT(cJSON_GetArraySize(at(page, "items")), 1);
    cJSON *got = cJSON_Duplicate(at(page, "items.0"), 1);
    cJSON *want = cJSON_Duplicate(at(fx, "items.0"), 1);
    /* typed list items carry no kind/apiVersion; only resourceVersion differs */
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(got, "metadata"), "resourceVersion");
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(want, "metadata"), "resourceVersion");
    assert_same_json(got, want, "list item");
    cJSON_Delete(got);
    cJSON_Delete(want);

    /* the token decodes to the real server's shape */
    size_t n;
    char *raw = fakeapi_b64_decode(at_str(page, "metadata.continue"), &n);
    ASSERT_STR_EQ(raw, "{\"v\":\"meta.k8s.io/v1\",\"rv\":249,\"start\":\"web\\u0000\"}");
    free(raw);

    char path[512];
    snprintf(path, sizeof(path), DEPLOY "?limit=1&continue=%s", at_str(page, "metadata.continue"));
    cJSON *p2 = call_json("GET", path, NULL, NULL, 200);
    ASSERT_STR_EQ(at_str(p2, "items.0.metadata.name"), "web2");
    ASSERT_NULL(at(p2, "metadata.continue"));
    ASSERT_NULL(at(p2, "metadata.remainingItemCount"));
    ASSERT_STR_EQ(at_str(p2, "metadata.resourceVersion"), "249");
    cJSON_Delete(p2);

    /* after compaction the same token is 410, exactly as recorded */
    fakeapi_put_json(FA, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                         "\"bump\",\"namespace\":\"default\"}}");
    fakeapi_compact(FA);
    cJSON *gone = call_json("GET", path, NULL, NULL, 410);
    cJSON *fx410 = fixture("list-continue-expired-410.json");
    assert_same_json(gone, fx410, "410 continue Status");
    cJSON_Delete(fx410);
    cJSON_Delete(gone);

    /* label and field selectors; cross-namespace list */
    fakeapi_put_json(FA, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{"
                         "\"name\":\"api\",\"namespace\":\"other\",\"labels\":{\"app\":\"api\"}}}");
    cJSON *all = call_json("GET", "/apis/apps/v1/deployments", NULL, NULL, 200);
    ASSERT_EQ_INT(cJSON_GetArraySize(at(all, "items")), 3);
    ASSERT_STR_EQ(at_str(all, "items.0.metadata.name"), "web"); /* default/web < other/api */
    ASSERT_STR_EQ(at_str(all, "items.2.metadata.name"), "api");
    cJSON_Delete(all);
    cJSON *sel =
        call_json("GET", "/apis/apps/v1/deployments?labelSelector=app%3Dapi", NULL, NULL, 200);
    ASSERT_EQ_INT(cJSON_GetArraySize(at(sel, "items")), 1);
    ASSERT_STR_EQ(at_str(sel, "items.0.metadata.namespace"), "other");
    cJSON_Delete(sel);
    sel =
        call_json("GET", "/apis/apps/v1/deployments?labelSelector=app!%3Dapi,app", NULL, NULL, 200);
    ASSERT_EQ_INT(cJSON_GetArraySize(at(sel, "items")), 2);
    cJSON_Delete(sel);
    sel = call_json("GET", "/apis/apps/v1/deployments?fieldSelector=metadata.name%3Dweb2", NULL,
                    NULL, 200);
    ASSERT_EQ_INT(cJSON_GetArraySize(at(sel, "items")), 1);
    cJSON_Delete(sel);
    cJSON *empty =
        call_json("GET", "/apis/optipod.io/v1alpha1/optimizationpolicies", NULL, NULL, 200);
    ASSERT_STR_EQ(at_str(empty, "kind"), "OptimizationPolicyList");
    ASSERT_EQ_INT(cJSON_GetArraySize(at(empty, "items")), 0);
    cJSON_Delete(empty);
    cJSON_Delete(page);
    cJSON_Delete(fx);
    stop();
}

/* ---- watch --------------------------------------------------------------------------- */

static char **fixture_lines(const char *name, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", test_fixture_dir(), name);
    char *s = test_read_file(path, NULL);
    char **lines = calloc(64, sizeof(char *));
    *n = 0;
    char *save = NULL;
    for (char *t = strtok_r(s, "\n", &save); t && *n < 64; t = strtok_r(NULL, "\n", &save))
        lines[(*n)++] = strdup(t);
    free(s);
    return lines;
}

static void free_lines(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

/* Put the object of a fixture event line. */
static void put_event_object(const char *line)
{
    cJSON *e = cJSON_Parse(line);
    ASSERT_NOT_NULL(e);
    ASSERT_EQ_INT(fakeapi_put(FA, cJSON_GetObjectItem(e, "object")), 0);
    cJSON_Delete(e);
}

static void bump_rv_to(uint64_t rv)
{
    while (fakeapi_rv(FA) < rv)
        fakeapi_put_json(FA, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                             "\"filler\",\"namespace\":\"kube-system\"}}");
}

static fakeapi_cli *open_watch(const char *path)
{
    char *req = fakeapi_cli_format("GET", path, NULL, NULL, NULL);
    fakeapi_cli *c;
    ASSERT_EQ_INT(
        fakeapi_cli_start(&c, &L, fakeapi_port(FA), fakeapi_ca_pem(FA), 1, req, strlen(req), 0), 0);
    free(req);
    for (int i = 0; i < 500 && fakeapi_watch_count(FA) == 0; i++)
        uv_run(&L, UV_RUN_ONCE);
    return c;
}

static void wait_done(fakeapi_cli *c)
{
    while (!fakeapi_cli_done(c))
        uv_run(&L, UV_RUN_ONCE);
}

static void wait_body(fakeapi_cli *c, size_t min)
{
    size_t n = 0;
    for (int i = 0; i < 1000 && !fakeapi_cli_done(c); i++) {
        fakeapi_cli_body_so_far(c, &n);
        if (n >= min)
            return;
        uv_run(&L, UV_RUN_ONCE);
    }
}

static void close_cli(fakeapi_cli *c)
{
    fakeapi_cli_free(c);
    uv_run(&L, UV_RUN_NOWAIT);
}

static void test_watch_stream_matches_fixture(void)
{
    size_t nl;
    char **fx = fixture_lines("watch-deployments.jsonl", &nl);
    ASSERT_EQ_INT(nl, 7);
    fakeapi_opts o = {.first_rv = 249};
    start(&o);
    /* the state before the recording, at rv 249 */
    put_event_object(fx[0]);
    ASSERT_EQ_INT(fakeapi_rv(FA), 249);
    fakeapi_cli *c = open_watch("/apis/apps/v1/deployments?watch=1&allowWatchBookmarks=true&"
                                "resourceVersion=249&timeoutSeconds=8");
    ASSERT_EQ_INT(fakeapi_watch_count(FA), 1);
    /* replay the recorded changes at the recorded resourceVersions */
    put_event_object(fx[0]); /* rv 250 */
    bump_rv_to(251);
    put_event_object(fx[1]); /* 252 */
    bump_rv_to(256);
    put_event_object(fx[2]); /* 257 */
    bump_rv_to(258);
    put_event_object(fx[3]); /* 259 */
    ASSERT_EQ_INT(fakeapi_delete(FA, "/apis/apps/v1/namespaces/default/deployments/web"), 0);
    ASSERT_EQ_INT(fakeapi_rv(FA), 260);
    fakeapi_bookmark(FA);
    fakeapi_bookmark(FA);
    fakeapi_end_watches(FA);
    wait_done(c);
    const fakeapi_cli_result *r = fakeapi_cli_result_of(c);
    ASSERT_EQ_INT(r->status, 200);
    ASSERT_EQ_INT(r->complete, 1);
    ASSERT_STR_CONTAINS(r->headers, "Transfer-Encoding: chunked");
    /* byte-for-byte the recorded stream (fillers were ConfigMaps, not watched) */
    char *want = NULL;
    size_t wl = 0;
    for (size_t i = 0; i < nl; i++) {
        want = realloc(want, wl + strlen(fx[i]) + 2);
        memcpy(want + wl, fx[i], strlen(fx[i]));
        wl += strlen(fx[i]);
        want[wl++] = '\n';
        want[wl] = '\0';
    }
    size_t gl = r->body_len;
    for (size_t i = 0, line = 0, off = 0; i < nl; i++) {
        const char *got_line = r->body + off;
        const char *e = memchr(got_line, '\n', gl - off);
        ASSERT_NOT_NULL(e);
        size_t len = (size_t)(e - got_line);
        if (len != strlen(fx[i]) || memcmp(got_line, fx[i], len) != 0)
            test_fail(__FILE__, __LINE__, "event %zu differs:\n got  %.*s\n want %s", line,
                      (int)len, got_line, fx[i]);
        off += len + 1;
        line++;
    }
    ASSERT_EQ_INT(gl, wl);
    free(want);
    close_cli(c);
    free_lines(fx, nl);
    stop();
}

static void test_watch_expired_initial_selectors_and_timeout(void)
{
    fakeapi_opts o = {.first_rv = 5, .history_max = 4};
    start(&o);
    fakeapi_put_json(FA, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\","
                         "\"namespace\":\"n\",\"labels\":{\"app\":\"x\"}}}"); /* 5 */
    for (int i = 0; i < 6; i++)
        fakeapi_put_json(FA, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                             "\"b\",\"namespace\":\"n\"}}"); /* 6..11: history keeps 8..11 */
    /* from rv 5: too old → the ERROR event of the README, then end of stream */
    fakeapi_cli_result r;
    call("GET", "/api/v1/namespaces/n/pods?watch=1&resourceVersion=5", NULL, NULL, &r);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_INT(r.complete, 1);
    ASSERT_STR_EQ(r.body, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":"
                          "\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old "
                          "resource version: 5 (8)\",\"reason\":\"Expired\",\"code\":410}}\n");
    fakeapi_cli_result_release(&r);
    /* from rv 9: events 10 and 11, then the timeout ends it */
    call("GET", "/api/v1/namespaces/n/pods?watch=1&resourceVersion=9&timeoutSeconds=1", NULL, NULL,
         &r);
    ASSERT_EQ_INT(r.complete, 1);
    ASSERT_STR_CONTAINS(r.body, "\"resourceVersion\":\"10\"");
    ASSERT_STR_CONTAINS(r.body, "\"resourceVersion\":\"11\"");
    ASSERT_NULL(strstr(r.body, "\"resourceVersion\":\"9\""));
    ASSERT_NULL(strstr(r.body, "BOOKMARK")); /* not asked for */
    fakeapi_cli_result_release(&r);
    /* no RV: current state as ADDED, label selector applied; bookmark before the timeout */
    call("GET",
         "/api/v1/watch/namespaces/n/pods?labelSelector=app%3Dx&timeoutSeconds=1&"
         "allowWatchBookmarks=true",
         NULL, NULL, &r);
    ASSERT_EQ_INT(r.complete, 1);
    ASSERT_EQ_INT(strncmp(r.body, "{\"type\":\"ADDED\",\"object\":{\"apiVersion\":\"v1\"", 40) ==
                          0 ||
                      strncmp(r.body, "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\"", 38) == 0,
                  1);
    ASSERT_STR_CONTAINS(r.body, "\"name\":\"a\"");
    ASSERT_NULL(strstr(r.body, "\"name\":\"b\""));
    ASSERT_STR_CONTAINS(r.body,
                        "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":"
                        "\"v1\",\"metadata\":{\"resourceVersion\":\"11\",");
    fakeapi_cli_result_release(&r);
    /* compaction makes even a recent RV too old */
    fakeapi_compact(FA);
    call("GET", "/api/v1/namespaces/n/pods?watch=true&resourceVersion=10", NULL, NULL, &r);
    ASSERT_STR_CONTAINS(r.body, "\"type\":\"ERROR\"");
    ASSERT_STR_CONTAINS(r.body, "\"code\":410");
    fakeapi_cli_result_release(&r);
    ASSERT_EQ_INT(fakeapi_watch_count(FA), 0);
    stop();
}

static void test_watch_client_gone_and_periodic_bookmarks(void)
{
    fakeapi_opts o = {.bookmark_ms = 20};
    start(&o);
    fakeapi_cli *c = open_watch("/apis/apps/v1/namespaces/default/deployments?watch=1&"
                                "allowWatchBookmarks=true&resourceVersion=100");
    wait_body(c, 1);
    size_t n;
    ASSERT_STR_CONTAINS(fakeapi_cli_body_so_far(c, &n), "\"type\":\"BOOKMARK\"");
    close_cli(c);
    for (int i = 0; i < 500 && fakeapi_watch_count(FA) > 0; i++)
        uv_run(&L, UV_RUN_ONCE);
    ASSERT_EQ_INT(fakeapi_watch_count(FA), 0);
    stop();
}

static void test_watch_selector_transitions(void)
{
    start(NULL);
    const char *pod = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
                      "\"namespace\":\"n\",\"labels\":{\"app\":\"%s\"}}}";
    char buf[256];
    snprintf(buf, sizeof(buf), pod, "other");
    fakeapi_put_json(FA, buf);
    char path[128];
    snprintf(path, sizeof(path),
             "/api/v1/namespaces/n/pods?watch=1&labelSelector=app%%3Dx&"
             "resourceVersion=%llu",
             (unsigned long long)fakeapi_rv(FA));
    fakeapi_cli *c = open_watch(path);
    snprintf(buf, sizeof(buf), pod, "x");
    fakeapi_put_json(FA, buf); /* starts matching */
    fakeapi_put_json(FA, buf); /* still matching */
    snprintf(buf, sizeof(buf), pod, "gone");
    fakeapi_put_json(FA, buf); /* stops matching */
    fakeapi_put_json(FA, buf); /* unseen */
    fakeapi_end_watches(FA);
    wait_done(c);
    const char *b = fakeapi_cli_result_of(c)->body;
    const char *a = strstr(b, "{\"type\":\"ADDED\"");
    const char *m = strstr(b, "{\"type\":\"MODIFIED\"");
    const char *d = strstr(b, "{\"type\":\"DELETED\"");
    ASSERT(a && m && d && a < m && m < d);
    ASSERT_STR_CONTAINS(d, "\"app\":\"gone\"");
    int lines = 0;
    for (const char *p = b; *p; p++)
        lines += *p == '\n';
    ASSERT_EQ_INT(lines, 3);
    close_cli(c);
    /* the same transitions replayed from history */
    snprintf(path, sizeof(path),
             "/api/v1/namespaces/n/pods?watch=1&labelSelector=app%%3Dx&"
             "resourceVersion=%llu&timeoutSeconds=1",
             (unsigned long long)fakeapi_rv(FA) - 4);
    fakeapi_cli_result r;
    call("GET", path, NULL, NULL, &r);
    ASSERT_EQ_INT(r.complete, 1);
    ASSERT(strstr(r.body, "\"ADDED\"") < strstr(r.body, "\"MODIFIED\""));
    ASSERT(strstr(r.body, "\"MODIFIED\"") < strstr(r.body, "\"DELETED\""));
    fakeapi_cli_result_release(&r);
    stop();
}

/* ---- server-side apply against the recordings ---------------------------------------- */

static void test_apply_conflict_and_force(void)
{
    start(NULL);
    /* argocd-controller applies the Git YAML: created */
    cJSON *j = call_json("PATCH", DEPLOY "/web-app?fieldManager=argocd-controller&force=true",
                         APPLY, web_app_json, 201);
    ASSERT_STR_EQ(at_str(j, "metadata.managedFields.0.manager"), "argocd-controller");
    ASSERT_STR_EQ(at_str(j, "metadata.managedFields.0.operation"), "Apply");
    char uid[64];
    snprintf(uid, sizeof(uid), "%s", at_str(j, "metadata.uid"));
    cJSON_Delete(j);

    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", test_fixture_dir(), "apply-body-optipod.json");
    char *body = test_read_file(path, NULL);
    /* optipod without force: 409 FieldManagerConflict with argocd-controller */
    j = call_json("PATCH", DEPLOY "/web-app?fieldManager=optipod", APPLY, body, 409);
    cJSON *fx = fixture("apply-conflict-409.json");
    ASSERT_STR_EQ(at_str(j, "reason"), "Conflict");
    ASSERT_EQ_INT(at(j, "code")->valueint, 409);
    ASSERT_STR_EQ(at_str(j, "details.causes.0.reason"), at_str(fx, "details.causes.0.reason"));
    ASSERT_STR_EQ(at_str(j, "details.causes.0.message"), at_str(fx, "details.causes.0.message"));
    ASSERT_STR_CONTAINS(at_str(j, "message"), "Apply failed with 2 conflicts");
    const cJSON *cause;
    cJSON_ArrayForEach(cause, at(j, "details.causes"))
        ASSERT_STR_CONTAINS(at_str(cause, "field"),
                            ".spec.template.spec.containers[name=\"nginx\"].resources.requests.");
    cJSON_Delete(fx);
    cJSON_Delete(j);
    /* nothing changed */
    ASSERT_STR_EQ(at_str(fakeapi_get(FA, DEPLOY "/web-app"),
                         "spec.template.spec.containers.0.resources.requests.cpu"),
                  "100m");

    /* dryRun=All with force: answered as if applied, nothing persisted */
    const char *rv_before = at_str(fakeapi_get(FA, DEPLOY "/web-app"), "metadata.resourceVersion");
    char rvb[32];
    snprintf(rvb, sizeof(rvb), "%s", rv_before);
    j = call_json("PATCH", DEPLOY "/web-app?fieldManager=optipod&force=true&dryRun=All", APPLY,
                  body, 200);
    ASSERT_STR_EQ(at_str(j, "spec.template.spec.containers.0.resources.requests.cpu"), "250m");
    cJSON_Delete(j);
    ASSERT_STR_EQ(at_str(fakeapi_get(FA, DEPLOY "/web-app"), "metadata.resourceVersion"), rvb);
    ASSERT_STR_EQ(at_str(fakeapi_get(FA, DEPLOY "/web-app"),
                         "spec.template.spec.containers.0.resources.requests.cpu"),
                  "100m");

    /* force: optipod takes the requests; the ownership is the recorded one */
    j = call_json("PATCH", DEPLOY "/web-app?fieldManager=optipod&force=true", APPLY, body, 200);
    fx = fixture("apply-force-200.json");
    ASSERT_STR_EQ(at_str(j, "spec.template.spec.containers.0.resources.requests.cpu"), "250m");
    ASSERT_STR_EQ(at_str(j, "spec.template.spec.containers.0.resources.requests.memory"), "512Mi");
    assert_same_json(fields_of(j, "optipod", "Apply"), fields_of(fx, "optipod", "Apply"),
                     "optipod fieldsV1 after force");
    assert_same_json(fields_of(j, "argocd-controller", "Apply"),
                     fields_of(fx, "argocd-controller", "Apply"),
                     "argocd-controller fieldsV1 after force");
    assert_same_json(at(j, "spec"), at(fx, "spec"), "spec after force");
    ASSERT_EQ_INT(at(j, "metadata.generation")->valueint, 2);
    ASSERT_STR_EQ(at_str(j, "metadata.uid"), uid);
    cJSON_Delete(fx);
    cJSON_Delete(j);

    /* missing fieldManager → 422; uid precondition → 409; apply creates a missing object */
    j = call_json("PATCH", DEPLOY "/web-app", APPLY, body, 422);
    ASSERT_STR_EQ(at_str(j, "reason"), "Invalid");
    ASSERT_STR_EQ(at_str(j, "details.causes.0.field"), "fieldManager");
    cJSON_Delete(j);
    j = call_json("PATCH", DEPLOY "/web-app?fieldManager=optipod", APPLY,
                  "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
                  "\"web-app\",\"namespace\":\"default\",\"uid\":\"0000-other\"}}",
                  409);
    ASSERT_STR_CONTAINS(at_str(j, "message"), "Precondition failed: UID in precondition");
    cJSON_Delete(j);
    j = call_json("PATCH", DEPLOY "/gone?fieldManager=optipod", APPLY,
                  "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
                  "\"gone\",\"namespace\":\"default\",\"uid\":\"0000-old\"}}",
                  409);
    ASSERT_STR_CONTAINS(at_str(j, "message"), "uid mismatch");
    cJSON_Delete(j);
    ASSERT_NULL(fakeapi_get(FA, DEPLOY "/gone"));
    free(body);
    stop();
}

/* The same inputs under the name the Flux recording used. */
static char *renamed(const char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    char *out = malloc(strlen(s) * 2 + 1);
    for (const char *p = s; *p;) {
        if (!strncmp(p, from, fl)) {
            memcpy(out + n, to, tl);
            n += tl;
            p += fl;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return out;
}

static void test_flux_fight(void)
{
    start(NULL);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", test_fixture_dir(), "apply-body-optipod.json");
    char *raw = test_read_file(path, NULL);
    char *body = renamed(raw, "web-app", "flux-app");
    char *git = renamed(web_app_json, "web-app", "flux-app");
    free(raw);
    cJSON_Delete(call_json("PATCH", DEPLOY "/flux-app?fieldManager=kustomize-controller&force=true",
                           APPLY, git, 201));
    cJSON *j =
        call_json("PATCH", DEPLOY "/flux-app?fieldManager=optipod&force=true", APPLY, body, 200);
    cJSON *fx1 = fixture("flux-1-optipod-forced.json");
    assert_same_json(fields_of(j, "optipod", "Apply"), fields_of(fx1, "optipod", "Apply"),
                     "optipod after its forced apply");
    assert_same_json(at(j, "spec"), at(fx1, "spec"), "spec after optipod's forced apply");
    cJSON_Delete(j);
    j = call_json("PATCH", DEPLOY "/flux-app?fieldManager=kustomize-controller&force=true", APPLY,
                  git, 200);
    cJSON *fx2 = fixture("flux-2-after-flux-reapply.json");
    assert_same_json(fields_of(j, "optipod", "Apply"), fields_of(fx2, "optipod", "Apply"),
                     "optipod after flux re-apply");
    assert_same_json(fields_of(j, "kustomize-controller", "Apply"),
                     fields_of(fx2, "kustomize-controller", "Apply"),
                     "kustomize-controller after flux re-apply");
    assert_same_json(at(j, "spec"), at(fx2, "spec"), "spec after flux re-apply");
    ASSERT_EQ_INT(at(j, "metadata.generation")->valueint, 3);
    cJSON_Delete(j);
    cJSON_Delete(fx1);
    cJSON_Delete(fx2);
    free(body);
    free(git);
    stop();
}

static void test_container_removal_422_then_200(void)
{
    start(NULL);
    cJSON_Delete(call_json("PATCH", DEPLOY "/twoc?fieldManager=argocd-controller&force=true", APPLY,
                           twoc_json, 201));
    cJSON_Delete(call_json("PATCH", DEPLOY "/twoc?fieldManager=optipod&force=true", APPLY,
                           optipod_both_json, 200));
    /* Git drops the sidecar: the GitOps apply (and its dry run) is rejected */
    cJSON *fx = fixture("container-removal-by-gitops-rejected-422.json");
    cJSON *j =
        call_json("PATCH", DEPLOY "/twoc?fieldManager=argocd-controller&force=true&dryRun=All",
                  APPLY, twoc_removed_json, 422);
    assert_same_json(j, fx, "422 on dry run");
    cJSON_Delete(j);
    j = call_json("PATCH", DEPLOY "/twoc?fieldManager=argocd-controller&force=true", APPLY,
                  twoc_removed_json, 422);
    assert_same_json(j, fx, "422 Status");
    cJSON_Delete(j);
    cJSON_Delete(fx);
    ASSERT_EQ_INT(
        cJSON_GetArraySize(at(fakeapi_get(FA, DEPLOY "/twoc"), "spec.template.spec.containers")),
        2);
    /* optipod releases the sidecar: its requests go, the container stays */
    j = call_json("PATCH", DEPLOY "/twoc?fieldManager=optipod&force=true", APPLY,
                  optipod_app_only_json, 200);
    fx = fixture("container-released-by-optipod.json");
    assert_same_json(at(j, "spec.template.spec.containers"),
                     at(fx, "spec.template.spec.containers"), "containers after release");
    assert_same_json(fields_of(j, "optipod", "Apply"), fields_of(fx, "optipod", "Apply"),
                     "optipod after release");
    cJSON_Delete(fx);
    cJSON_Delete(j);
    /* now the GitOps apply goes through and the container is gone */
    j = call_json("PATCH", DEPLOY "/twoc?fieldManager=argocd-controller&force=true", APPLY,
                  twoc_removed_json, 200);
    fx = fixture("container-removal-by-gitops-after-release-200.json");
    assert_same_json(at(j, "spec.template.spec.containers"),
                     at(fx, "spec.template.spec.containers"), "containers after removal");
    assert_same_json(fields_of(j, "argocd-controller", "Apply"),
                     fields_of(fx, "argocd-controller", "Apply"), "argocd after removal");
    cJSON_Delete(fx);
    cJSON_Delete(j);
    stop();
}

static void test_update_operation_does_not_pin_containers(void)
{
    start(NULL);
    cJSON_Delete(call_json("PATCH", DEPLOY "/twoc?fieldManager=argocd-controller&force=true", APPLY,
                           twoc_json, 201));
    /* the same requests, written by a strategic-merge PATCH: an Update entry */
    cJSON *j = call_json(
        "PATCH", DEPLOY "/twoc?fieldManager=optipod", "application/strategic-merge-patch+json",
        "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{"
        "\"requests\":{\"cpu\":\"200m\"}}},{\"name\":\"sidecar\","
        "\"resources\":{\"requests\":{\"cpu\":\"50m\"}}}]}}}}",
        200);
    ASSERT_STR_EQ(at_str(j, "spec.template.spec.containers.1.image"), "registry.invalid/sidecar:1");
    ASSERT_STR_EQ(at_str(j, "spec.template.spec.containers.1.resources.requests.cpu"), "50m");
    ASSERT_NOT_NULL(fields_of(j, "optipod", "Update"));
    cJSON_Delete(j);
    j = call_json("PATCH", DEPLOY "/twoc?fieldManager=argocd-controller&force=true", APPLY,
                  twoc_removed_json, 200);
    cJSON *fx = fixture("container-removal-after-update-operation-200.json");
    assert_same_json(at(j, "spec.template.spec.containers"),
                     at(fx, "spec.template.spec.containers"), "containers");
    assert_same_json(fields_of(j, "optipod", "Update"), fields_of(fx, "optipod", "Update"),
                     "optipod Update entry");
    cJSON_Delete(fx);
    cJSON_Delete(j);
    stop();
}

/* ---- patches, subresources ----------------------------------------------------------- */

static void test_merge_patch_status_and_resize(void)
{
    start(NULL);
    fakeapi_put_json(FA,
                     "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\","
                     "\"metadata\":{\"name\":\"p\",\"namespace\":\"default\"},\"spec\":{\"mode\":"
                     "\"Recommend\",\"x\":1},\"status\":{\"phase\":\"Old\"}}");
    /* merge patch: null deletes, objects merge; status is not changed through the main resource */
    cJSON *j = call_json(
        "PATCH", "/apis/optipod.io/v1alpha1/namespaces/default/optimizationpolicies/p",
        "application/merge-patch+json",
        "{\"spec\":{\"mode\":\"Auto\",\"x\":null},\"status\":{\"phase\":\"Hacked\"}}", 200);
    ASSERT_STR_EQ(at_str(j, "spec.mode"), "Auto");
    ASSERT_NULL(at(j, "spec.x"));
    ASSERT_STR_EQ(at_str(j, "status.phase"), "Old");
    ASSERT_EQ_INT(at(j, "metadata.generation")->valueint, 2);
    cJSON_Delete(j);
    /* status subresource: only status changes, generation stays */
    j = call_json("PUT",
                  "/apis/optipod.io/v1alpha1/namespaces/default/optimizationpolicies/p/status",
                  "application/json",
                  "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\","
                  "\"metadata\":{\"name\":\"p\",\"namespace\":\"default\"},\"spec\":{\"mode\":"
                  "\"Ignored\"},\"status\":{\"phase\":\"Ready\"}}",
                  200);
    ASSERT_STR_EQ(at_str(j, "spec.mode"), "Auto");
    ASSERT_STR_EQ(at_str(j, "status.phase"), "Ready");
    ASSERT_EQ_INT(at(j, "metadata.generation")->valueint, 2);
    cJSON_Delete(j);
    j = call_json("PATCH",
                  "/apis/optipod.io/v1alpha1/namespaces/default/optimizationpolicies/p/status",
                  "application/merge-patch+json", "{\"status\":{\"workloads\":3}}", 200);
    ASSERT_STR_EQ(at_str(j, "status.phase"), "Ready");
    ASSERT_EQ_INT(at(j, "status.workloads")->valueint, 3);
    cJSON_Delete(j);

    /* pods: resources change only through pods/resize */
    fakeapi_put_json(FA, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p1\","
                         "\"namespace\":\"default\"},\"spec\":{\"containers\":[{\"name\":\"app\","
                         "\"image\":\"i\",\"resources\":{\"requests\":{\"cpu\":\"1\"}}},{\"name\":"
                         "\"side\",\"image\":\"s\"}]}}");
    const char *resize = "{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"evil\","
                         "\"resources\":{\"requests\":{\"cpu\":\"500m\"}}}]}}";
    j = call_json("PATCH", "/api/v1/namespaces/default/pods/p1",
                  "application/strategic-merge-patch+json", resize, 422);
    ASSERT_STR_CONTAINS(at_str(j, "message"), "pod updates may not change fields");
    cJSON_Delete(j);
    j = call_json("PATCH", "/api/v1/namespaces/default/pods/p1/resize",
                  "application/strategic-merge-patch+json", resize, 200);
    ASSERT_STR_EQ(at_str(j, "spec.containers.0.resources.requests.cpu"), "500m");
    ASSERT_STR_EQ(at_str(j, "spec.containers.0.image"), "i");
    ASSERT_STR_EQ(at_str(j, "spec.containers.1.name"), "side");
    const char *uid = at_str(j, "metadata.uid");
    ASSERT_NOT_NULL(uid);
    char body[512];
    /* a 1.27-1.31 server with the gate on takes resources through the pod; a
     * uid in the patch is a precondition */
    fakeapi_set_pod_patch_resize(FA, 1);
    snprintf(body, sizeof body,
             "{\"metadata\":{\"uid\":\"%s\"},\"spec\":{\"containers\":[{\"name\":\"app\","
             "\"resources\":{\"requests\":{\"cpu\":\"400m\"}}}]}}",
             uid);
    cJSON_Delete(j);
    j = call_json("PATCH", "/api/v1/namespaces/default/pods/p1",
                  "application/strategic-merge-patch+json", body, 200);
    ASSERT_STR_EQ(at_str(j, "spec.containers.0.resources.requests.cpu"), "400m");
    cJSON_Delete(j);
    j = call_json("PATCH", "/api/v1/namespaces/default/pods/p1",
                  "application/strategic-merge-patch+json",
                  "{\"metadata\":{\"uid\":\"another\"},\"spec\":{\"containers\":[{\"name\":"
                  "\"app\",\"resources\":{\"requests\":{\"cpu\":\"300m\"}}}]}}",
                  409);
    ASSERT_STR_CONTAINS(at_str(j, "message"), "Precondition failed: UID in precondition: another");
    cJSON_Delete(j);
    fakeapi_set_pod_patch_resize(FA, 0);

    /* strategic merge: $patch delete and a merge-key list */
    j = call_json("PATCH", "/api/v1/namespaces/default/pods/p1",
                  "application/strategic-merge-patch+json",
                  "{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"$setElementOrder/"
                  "containers\":[{\"name\":\"app\"}],\"containers\":[{\"name\":\"side\",\"$patch\":"
                  "\"delete\"}]}}",
                  200);
    ASSERT_EQ_INT(cJSON_GetArraySize(at(j, "spec.containers")), 1);
    ASSERT_STR_EQ(at_str(j, "metadata.labels.a"), "b");
    cJSON_Delete(j);
    /* RFC 6902 patches; a failed test op is refused */
    j = call_json("PATCH", "/api/v1/namespaces/default/pods/p1", "application/json-patch+json",
                  "[{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{}},"
                  "{\"op\":\"add\",\"path\":\"/metadata/annotations/optipod.io~1x\","
                  "\"value\":\"1\"}]",
                  200);
    ASSERT_STR_EQ(cJSON_GetObjectItem(at(j, "metadata.annotations"), "optipod.io/x")->valuestring,
                  "1");
    cJSON_Delete(j);
    cJSON_Delete(
        call_json("PATCH", "/api/v1/namespaces/default/pods/p1", "application/json-patch+json",
                  "[{\"op\":\"test\",\"path\":\"/metadata/name\",\"value\":\"no\"}]", 422));
    cJSON_Delete(call_json("PATCH", "/api/v1/namespaces/default/pods/p1",
                           "application/json-patch+json", "{}", 400));
    /* unsupported patch type */
    cJSON_Delete(
        call_json("PATCH", "/api/v1/namespaces/default/pods/p1", "application/x-nope", "{}", 415));
    stop();
}

static void test_events_and_leases(void)
{
    start(NULL);
    cJSON *j = call_json(
        "POST", "/apis/events.k8s.io/v1/namespaces/default/events", "application/json",
        "{\"apiVersion\":\"events.k8s.io/v1\",\"kind\":\"Event\",\"metadata\":{\"name\":"
        "\"web.1\"},\"reason\":\"Resized\",\"regarding\":{\"kind\":\"Deployment\",\"name\":"
        "\"web\"},\"series\":null}",
        201);
    ASSERT_STR_EQ(at_str(j, "reason"), "Resized");
    cJSON_Delete(j);
    j = call_json("PATCH", "/apis/events.k8s.io/v1/namespaces/default/events/web.1",
                  "application/merge-patch+json", "{\"series\":{\"count\":2}}", 200);
    ASSERT_EQ_INT(at(j, "series.count")->valueint, 2);
    cJSON_Delete(j);
    /* a lease: optimistic concurrency is what leader election relies on */
    const char *lease = "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                        "\"metadata\":{\"name\":\"optipod\"},\"spec\":{\"holderIdentity\":\"a\","
                        "\"leaseDurationSeconds\":15}}";
    j = call_json("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
                  "application/json", lease, 201);
    char rv[32];
    snprintf(rv, sizeof(rv), "%s", at_str(j, "metadata.resourceVersion"));
    cJSON_Delete(j);
    char upd[512];
    snprintf(upd, sizeof(upd),
             "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
             "\"name\":\"optipod\",\"resourceVersion\":\"%s\"},\"spec\":{\"holderIdentity\":"
             "\"b\"}}",
             rv);
    cJSON_Delete(call_json("PUT",
                           "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/optipod",
                           "application/json", upd, 200));
    /* the second writer with the same (now stale) RV loses */
    cJSON_Delete(call_json("PUT",
                           "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/optipod",
                           "application/json", upd, 409));
    ASSERT_STR_EQ(
        at_str(
            fakeapi_get(FA, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/optipod"),
            "spec.holderIdentity"),
        "b");
    stop();
}

/* ---- faults -------------------------------------------------------------------------- */

static void seed_web(void)
{
    ASSERT_EQ_INT(fakeapi_put_json(FA, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                                       "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},"
                                       "\"spec\":{\"replicas\":1}}"),
                  0);
}

static void test_fault_status_delay_hangup_truncate(void)
{
    start(NULL);
    seed_web();
    fakeapi_fault f = {.method = "GET",
                       .path = "/deployments/web",
                       .watch = 0,
                       .count = 2,
                       .kind = FAKEAPI_FAULT_STATUS,
                       .status = 429,
                       .retry_after_s = 3};
    ASSERT_EQ_INT(fakeapi_add_fault(FA, &f), 0);
    fakeapi_cli_result r;
    for (int i = 0; i < 2; i++) {
        call("GET", DEPLOY "/web", NULL, NULL, &r);
        ASSERT_EQ_INT(r.status, 429);
        ASSERT_STR_CONTAINS(r.headers, "Retry-After: 3\r\n");
        ASSERT_STR_CONTAINS(r.body, "\"reason\":\"TooManyRequests\"");
        fakeapi_cli_result_release(&r);
    }
    call("GET", DEPLOY "/web", NULL, NULL, &r); /* count used up */
    ASSERT_EQ_INT(r.status, 200);
    fakeapi_cli_result_release(&r);
    fakeapi_clear_faults(FA);

    fakeapi_fault d = {.path = "/deployments",
                       .watch = -1,
                       .count = 1,
                       .kind = FAKEAPI_FAULT_DELAY,
                       .delay_ms = 150};
    fakeapi_add_fault(FA, &d);
    uint64_t t0 = uv_now(&L);
    call("GET", DEPLOY "/web", NULL, NULL, &r);
    uv_update_time(&L);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_CMP_INT(uv_now(&L) - t0, >=, 140);
    fakeapi_cli_result_release(&r);

    fakeapi_fault h = {.method = "GET", .watch = -1, .count = 1, .kind = FAKEAPI_FAULT_HANGUP};
    fakeapi_add_fault(FA, &h);
    call("GET", DEPLOY "/web", NULL, NULL, &r);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_EQ_INT(r.eof, 1);
    fakeapi_cli_result_release(&r);

    fakeapi_fault t = {.method = "GET", .watch = 0, .count = 1, .kind = FAKEAPI_FAULT_TRUNCATE};
    fakeapi_add_fault(FA, &t);
    call("GET", DEPLOY "/web", NULL, NULL, &r);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_INT(r.complete, 1);
    ASSERT_CMP_INT(r.body_len, >, 10);
    ASSERT_NULL(cJSON_Parse(r.body)); /* framed right, but not JSON */
    fakeapi_cli_result_release(&r);

    fakeapi_fault dr = {.method = "GET", .watch = 0, .count = 1, .kind = FAKEAPI_FAULT_DROP};
    fakeapi_add_fault(FA, &dr);
    char *req = fakeapi_cli_format("GET", DEPLOY "/web", NULL, NULL, NULL);
    ASSERT_EQ_INT(
        fakeapi_cli_run(&L, fakeapi_port(FA), fakeapi_ca_pem(FA), 1, req, strlen(req), 1, &r), 0);
    free(req);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_INT(r.complete, 0);
    ASSERT_EQ_INT(r.eof, 1);
    ASSERT_CMP_INT(r.body_len, >, 10);
    fakeapi_cli_result_release(&r);

    fakeapi_fault big = {
        .method = "GET", .watch = 0, .count = 1, .kind = FAKEAPI_FAULT_OVERSIZED, .size = 4 << 20};
    fakeapi_add_fault(FA, &big);
    call("GET", DEPLOY "/web", NULL, NULL, &r);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_CMP_INT(r.body_len, >, 4 << 20);
    fakeapi_cli_result_release(&r);

    fakeapi_fault g = {.method = "GET", .watch = 0, .count = 1, .kind = FAKEAPI_FAULT_GONE};
    fakeapi_add_fault(FA, &g);
    call("GET",
         DEPLOY
         "?limit=1&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MjQ5LCJzdGFydCI6IndlYlx1MDAwMCJ9",
         NULL, NULL, &r);
    ASSERT_EQ_INT(r.status, 410);
    cJSON *j = cJSON_Parse(r.body), *fx = fixture("list-continue-expired-410.json");
    assert_same_json(j, fx, "injected 410 on continue");
    cJSON_Delete(j);
    cJSON_Delete(fx);
    fakeapi_cli_result_release(&r);
    ASSERT_EQ_INT(fakeapi_count(FA, "GET", "/deployments/web"), 8);

    /* a client that gives up while its request is delayed: the server lets it go */
    fakeapi_fault d2 = {.watch = -1, .count = 1, .kind = FAKEAPI_FAULT_DELAY, .delay_ms = 5000};
    fakeapi_add_fault(FA, &d2);
    char *req2 = fakeapi_cli_format("GET", DEPLOY "/web", NULL, NULL, NULL);
    fakeapi_cli *c;
    ASSERT_EQ_INT(
        fakeapi_cli_start(&c, &L, fakeapi_port(FA), fakeapi_ca_pem(FA), 1, req2, strlen(req2), 0),
        0);
    free(req2);
    size_t before = fakeapi_count(FA, "GET", "/deployments/web");
    for (int i = 0; i < 500 && fakeapi_count(FA, "GET", "/deployments/web") == before; i++)
        uv_run(&L, UV_RUN_ONCE);
    close_cli(c);
    for (int i = 0; i < 50; i++)
        uv_run(&L, UV_RUN_NOWAIT);
    cJSON_Delete(call_json("GET", DEPLOY "/web", NULL, NULL, 200));
    /* and one still delayed when the server stops is dropped by the stop */
    fakeapi_add_fault(FA, &d2);
    req2 = fakeapi_cli_format("GET", DEPLOY "/web", NULL, NULL, NULL);
    ASSERT_EQ_INT(
        fakeapi_cli_start(&c, &L, fakeapi_port(FA), fakeapi_ca_pem(FA), 1, req2, strlen(req2), 0),
        0);
    free(req2);
    before = fakeapi_count(FA, "GET", "/deployments/web");
    for (int i = 0; i < 500 && fakeapi_count(FA, "GET", "/deployments/web") == before; i++)
        uv_run(&L, UV_RUN_ONCE);
    fakeapi_stop(FA, on_closed, &closed);
    while (!fakeapi_cli_done(c))
        uv_run(&L, UV_RUN_ONCE);
    ASSERT_EQ_INT(fakeapi_cli_result_of(c)->status, 0);
    fakeapi_cli_free(c);
    uv_run(&L, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(uv_loop_close(&L), 0);
}

static void test_fault_watch_drop_malformed_gone(void)
{
    start(NULL);
    seed_web();
    fakeapi_put_json(FA, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{"
                         "\"name\":\"web2\",\"namespace\":\"default\"}}");
    /* drop after 1 event: the second event line is cut in the middle */
    fakeapi_fault f = {.path = "deployments",
                       .watch = 1,
                       .count = 1,
                       .kind = FAKEAPI_FAULT_DROP,
                       .after_events = 1};
    fakeapi_add_fault(FA, &f);
    char *req = fakeapi_cli_format("GET", DEPLOY "?watch=1", NULL, NULL, NULL);
    fakeapi_cli_result r;
    ASSERT_EQ_INT(
        fakeapi_cli_run(&L, fakeapi_port(FA), fakeapi_ca_pem(FA), 1, req, strlen(req), 1, &r), 0);
    free(req);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_INT(r.complete, 0);
    ASSERT_EQ_INT(r.eof, 1);
    const char *nl = strchr(r.body, '\n');
    ASSERT_NOT_NULL(nl);
    ASSERT_STR_CONTAINS(r.body, "\"name\":\"web\"");
    ASSERT_NULL(strchr(nl + 1, '\n')); /* the second line never ends */
    ASSERT_CMP_INT(strlen(nl + 1), >, 10);
    fakeapi_cli_result_release(&r);
    ASSERT_EQ_INT(fakeapi_watch_count(FA), 0);

    /* a malformed line, then the stream goes on */
    fakeapi_fault m = {.watch = 1, .count = 1, .kind = FAKEAPI_FAULT_MALFORMED, .after_events = 1};
    fakeapi_add_fault(FA, &m);
    call("GET", DEPLOY "?watch=1&timeoutSeconds=1", NULL, NULL, &r);
    ASSERT_EQ_INT(r.complete, 1);
    ASSERT_STR_CONTAINS(r.body, "}\n{not json\n{\"type\":\"ADDED\"");
    fakeapi_cli_result_release(&r);

    /* an oversized event */
    fakeapi_fault o = {.watch = 1, .count = 1, .kind = FAKEAPI_FAULT_OVERSIZED, .size = 100000};
    fakeapi_add_fault(FA, &o);
    call("GET", DEPLOY "?watch=1&timeoutSeconds=1", NULL, NULL, &r);
    ASSERT_CMP_INT(r.body_len, >, 100000);
    fakeapi_cli_result_release(&r);

    /* 410 on a watch: the ERROR event, then a clean end */
    fakeapi_fault g = {.watch = 1, .count = 1, .kind = FAKEAPI_FAULT_GONE};
    fakeapi_add_fault(FA, &g);
    call("GET", DEPLOY "?watch=1&resourceVersion=3", NULL, NULL, &r);
    ASSERT_EQ_INT(r.complete, 1);
    ASSERT_EQ_INT(strncmp(r.body, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\"", 41), 0);
    ASSERT_STR_CONTAINS(r.body, "\"reason\":\"Expired\",\"code\":410}}\n");
    fakeapi_cli_result_release(&r);
    /* the watch fault did not touch plain GETs */
    cJSON_Delete(call_json("GET", DEPLOY "/web", NULL, NULL, 200));
    stop();
}

static void test_tls_faults_and_auth(void)
{
    fakeapi_opts o = {.token = "s3cret"};
    start(&o);
    seed_web();
    fakeapi_cli_result r;
    call("GET", DEPLOY "/web", NULL, NULL, &r);
    ASSERT_EQ_INT(r.status, 401);
    fakeapi_cli_result_release(&r);
    char *req =
        fakeapi_cli_format("GET", DEPLOY "/web", NULL, NULL, "Authorization: Bearer s3cret\r\n");
    ASSERT_EQ_INT(
        fakeapi_cli_run(&L, fakeapi_port(FA), fakeapi_ca_pem(FA), 1, req, strlen(req), 0, &r), 0);
    ASSERT_EQ_INT(r.status, 200);
    fakeapi_cli_result_release(&r);
    size_t hs = fakeapi_handshakes(FA);

    ASSERT_EQ_INT(fakeapi_set_tls_fault(FA, FAKEAPI_TLS_UNTRUSTED), 0);
    ASSERT_EQ_INT(
        fakeapi_cli_run(&L, fakeapi_port(FA), fakeapi_ca_pem(FA), 1, req, strlen(req), 0, &r), 0);
    ASSERT_EQ_INT(r.error, -EPROTO);
    fakeapi_cli_result_release(&r);

    ASSERT_EQ_INT(fakeapi_set_tls_fault(FA, FAKEAPI_TLS_HANGUP), 0);
    size_t acc = fakeapi_connections_accepted(FA);
    ASSERT_EQ_INT(
        fakeapi_cli_run(&L, fakeapi_port(FA), fakeapi_ca_pem(FA), 1, req, strlen(req), 0, &r), 0);
    ASSERT_NE_INT(r.error, 0);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_EQ_INT(fakeapi_connections_accepted(FA), acc + 1);
    fakeapi_cli_result_release(&r);

    ASSERT_EQ_INT(fakeapi_set_tls_fault(FA, FAKEAPI_TLS_OK), 0);
    ASSERT_EQ_INT(
        fakeapi_cli_run(&L, fakeapi_port(FA), fakeapi_ca_pem(FA), 1, req, strlen(req), 0, &r), 0);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_INT(fakeapi_handshakes(FA), hs + 1);
    fakeapi_cli_result_release(&r);
    free(req);
    stop();
}

static int hook(fakeapi *fa, ophttpd_req *req, void *ud)
{
    (void)fa;
    ++*(int *)ud;
    if (strcmp(ophttpd_path(req), "/custom") != 0)
        return 0;
    ophttpd_respond(req, 200, "text/plain", "hooked", 6, NULL);
    return 1;
}

static void test_kubeconfig_and_hook(void)
{
    start(NULL);
    int hooked = 0;
    fakeapi_set_hook(FA, hook, &hooked);
    fakeapi_cli_result r;
    call("GET", "/custom", NULL, NULL, &r);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_STR_EQ(r.body, "hooked");
    fakeapi_cli_result_release(&r);
    cJSON_Delete(call_json("GET", DEPLOY "/nope", NULL, NULL, 404)); /* falls through */
    ASSERT_EQ_INT(hooked, 2);
    fakeapi_set_hook(FA, NULL, NULL);
    char path[] = "/tmp/fakeapi-kc-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_CMP_INT(fd, >=, 0);
    close(fd);
    ASSERT_EQ_INT(fakeapi_write_kubeconfig(FA, path, "tok"), 0);
    char *kc = test_read_file(path, NULL);
    unlink(path);
    char want[128];
    snprintf(want, sizeof(want), "    server: https://127.0.0.1:%d\n", fakeapi_port(FA));
    ASSERT_STR_CONTAINS(kc, want);
    ASSERT_STR_CONTAINS(kc, "current-context: fake\n");
    ASSERT_STR_CONTAINS(kc, "    token: tok\n");
    char *ca = strstr(kc, "certificate-authority-data: ");
    ASSERT_NOT_NULL(ca);
    ca += strlen("certificate-authority-data: ");
    *strchr(ca, '\n') = '\0';
    size_t n;
    char *pem = fakeapi_b64_decode(ca, &n);
    ASSERT_STR_EQ(pem, fakeapi_ca_pem(FA));
    free(pem);
    free(kc);
    ASSERT_STR_CONTAINS(fakeapi_url(FA), "https://127.0.0.1:");
    cJSON *v = call_json("GET", "/version", NULL, NULL, 200);
    ASSERT_STR_EQ(at_str(v, "gitVersion"), "v1.24.0");
    cJSON_Delete(v);
    stop();
}

static void test_merge_helpers(void)
{
    cJSON *t = cJSON_Parse("{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"l\":[1,2]}");
    cJSON *p = cJSON_Parse("{\"a\":null,\"b\":{\"c\":9},\"l\":[3],\"n\":{\"x\":null}}");
    cJSON *m = fakeapi_merge_patch(t, p);
    cJSON *want = cJSON_Parse("{\"b\":{\"c\":9,\"d\":3},\"l\":[3],\"n\":{}}");
    assert_same_json(m, want, "RFC 7386");
    cJSON_Delete(m);
    cJSON_Delete(want);
    cJSON_Delete(t);
    cJSON_Delete(p);
    t = cJSON_Parse("{\"containers\":[{\"name\":\"a\",\"image\":\"x\",\"args\":[\"1\"]},"
                    "{\"name\":\"b\",\"image\":\"y\"}]}");
    p = cJSON_Parse("{\"containers\":[{\"name\":\"b\",\"image\":\"z\"},{\"name\":\"c\"},"
                    "{\"name\":\"a\",\"args\":[\"2\"]}]}");
    m = fakeapi_strategic_patch(t, p);
    want = cJSON_Parse("{\"containers\":[{\"name\":\"a\",\"image\":\"x\",\"args\":[\"2\"]},"
                       "{\"name\":\"b\",\"image\":\"z\"},{\"name\":\"c\"}]}");
    assert_same_json(m, want, "strategic merge by name");
    cJSON_Delete(m);
    cJSON_Delete(want);
    cJSON_Delete(t);
    cJSON_Delete(p);
    /* RFC 6902, including the RFC's own examples of ~ escapes and array insertion */
    int err;
    t = cJSON_Parse("{\"a/b\":1,\"m~n\":2,\"l\":[\"x\",\"z\"],\"o\":{\"k\":1}}");
    p = cJSON_Parse("[{\"op\":\"replace\",\"path\":\"/a~1b\",\"value\":10},"
                    "{\"op\":\"remove\",\"path\":\"/m~0n\"},"
                    "{\"op\":\"add\",\"path\":\"/l/1\",\"value\":\"y\"},"
                    "{\"op\":\"add\",\"path\":\"/l/-\",\"value\":\"end\"},"
                    "{\"op\":\"copy\",\"from\":\"/o\",\"path\":\"/o2\"},"
                    "{\"op\":\"move\",\"from\":\"/o/k\",\"path\":\"/k\"},"
                    "{\"op\":\"test\",\"path\":\"/l/0\",\"value\":\"x\"}]");
    m = fakeapi_json_patch(t, p, &err);
    ASSERT_EQ_INT(err, 0);
    want = cJSON_Parse("{\"a/b\":10,\"l\":[\"x\",\"y\",\"z\",\"end\"],\"o\":{},"
                       "\"o2\":{\"k\":1},\"k\":1}");
    assert_same_json(m, want, "RFC 6902");
    cJSON_Delete(m);
    cJSON_Delete(want);
    cJSON_Delete(p);
    const char *bad[] = {"[{\"op\":\"remove\",\"path\":\"/nope\"}]",
                         "[{\"op\":\"replace\",\"path\":\"/nope\",\"value\":1}]",
                         "[{\"op\":\"add\",\"path\":\"/l/9\",\"value\":1}]",
                         "[{\"op\":\"add\",\"path\":\"/l/01\",\"value\":1}]",
                         "[{\"op\":\"test\",\"path\":\"/o/k\",\"value\":2}]",
                         "[{\"op\":\"frob\",\"path\":\"/o\"}]",
                         "[{\"op\":\"add\",\"path\":\"bad\",\"value\":1}]",
                         "{}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = cJSON_Parse(bad[i]);
        m = fakeapi_json_patch(t, p, &err);
        if (m || err != -EINVAL)
            test_fail(__FILE__, __LINE__, "patch %s was accepted", bad[i]);
        cJSON_Delete(p);
    }
    cJSON_Delete(t);
    cJSON *labels = cJSON_Parse("{\"app\":\"web\",\"tier\":\"fe\"}");
    ASSERT_EQ_INT(fakeapi_label_match("app=web,tier in (fe,be)", labels), 1);
    ASSERT_EQ_INT(fakeapi_label_match("app==web,!gone", labels), 1);
    ASSERT_EQ_INT(fakeapi_label_match("app notin (web)", labels), 0);
    ASSERT_EQ_INT(fakeapi_label_match("tier!=fe", labels), 0);
    ASSERT_EQ_INT(fakeapi_label_match("missing", labels), 0);
    ASSERT_EQ_INT(fakeapi_label_match("", labels), 1);
    cJSON_Delete(labels);
}

/* A server-side apply of a custom resource is type-checked against the CRD's
 * structural schema before anything else, as kube-apiserver v1.24 does: the
 * recommendation record that carried spec.source.history to a cluster whose
 * CRD predates that field got HTTP 500 "failed to create typed patch object
 * ... field not declared in schema" (the answer below is the real server's,
 * field for field). The fake accepts the same body with the current CRD. */
#define REC_PATH                                                                                   \
    "/apis/optipod.io/v1alpha1/namespaces/shop/optimizationrecommendations/deployment-web"         \
    "?fieldManager=optipod&force=true"
#define APPLY_CT "application/apply-patch+yaml"

static void record_body(opbuf *b)
{
    static rrec r;
    rrec_init(&r);
    snprintf(r.ns, sizeof r.ns, "shop");
    snprintf(r.name, sizeof r.name, "deployment-web");
    snprintf(r.api_version, sizeof r.api_version, "apps/v1");
    snprintf(r.kind, sizeof r.kind, "Deployment");
    snprintf(r.target, sizeof r.target, "web");
    snprintf(r.policy, sizeof r.policy, "shop/p");
    snprintf(r.mode, sizeof r.mode, "Recommend");
    snprintf(r.strategy, sizeof r.strategy, "none");
    snprintf(r.provider, sizeof r.provider, "prometheus");
    snprintf(r.history, sizeof r.history, "pod-names");
    r.history_pods = 3;
    snprintf(r.time, sizeof r.time, "2026-12-07T23:00:00Z");
    r.n = 1;
    snprintf(r.c[0].name, sizeof r.c[0].name, "app");
    snprintf(r.c[0].cur[RREC_CPU_REQ], RREC_QTY, "500m");
    snprintf(r.c[0].rec[RREC_CPU_REQ], RREC_QTY, "315m");
    r.c[0].samples = 100;
    r.c[0].span_s = 3600;
    snprintf(r.c[0].rule, sizeof r.c[0].rule, "apply");
    ASSERT_EQ_INT(rrec_set_explanation(&r.c[0], "{\"cpu\":{\"steps\":[1,\"x\"]}}"), 0);
    operr err = {{0}};
    ASSERT_EQ_INT(rrec_build(&r, b, &err), 0);
    rrec_release(&r);
}

static void test_custom_resource_apply_is_type_checked(void)
{
    start(NULL);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    record_body(&b);
    const char *av = "optipod.io/v1alpha1", *pl = "optimizationrecommendations";
    ASSERT_NOT_NULL(fakeapi_schema(FA, av, pl)); /* crds/ was loaded */
    cJSON *now = cJSON_Duplicate(fakeapi_schema(FA, av, pl), 1);

    /* the CRD of the first release: spec.source had no history fields */
    cJSON *old = cJSON_Duplicate(now, 1);
    cJSON *src = cJSON_GetObjectItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(old, "properties"), "spec"),
                                "properties"),
            "source"),
        "properties");
    cJSON_DeleteItemFromObject(src, "history");
    cJSON_DeleteItemFromObject(src, "historyPods");
    ASSERT_EQ_INT(fakeapi_set_schema(FA, av, pl, old), 0);
    cJSON *st = call_json("PATCH", REC_PATH, APPLY_CT, opbuf_str(&b), 500);
    ASSERT_STR_EQ(at_str(st, "kind"), "Status");
    ASSERT_STR_EQ(at_str(st, "apiVersion"), "v1");
    ASSERT_STR_EQ(at_str(st, "status"), "Failure");
    ASSERT_NULL(at(st, "reason"));
    ASSERT_NULL(at(st, "details"));
    ASSERT_EQ_INT((int)at(st, "code")->valuedouble, 500);
    ASSERT_STR_EQ(at_str(st, "message"),
                  "failed to create typed patch object (shop/deployment-web; optipod.io/v1alpha1, "
                  "Kind=OptimizationRecommendation): .spec.source.history: field not declared "
                  "in schema");
    cJSON_Delete(st);
    ASSERT_NULL(fakeapi_get(FA, "/apis/optipod.io/v1alpha1/namespaces/shop/"
                                "optimizationrecommendations/deployment-web"));

    /* problems in two places are listed */
    const char *two =
        "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationRecommendation\","
        "\"metadata\":{\"name\":\"deployment-web\",\"namespace\":\"shop\",\"bogus\":1},"
        "\"spec\":{\"targetRef\":{\"kind\":\"Deployment\",\"name\":\"web\"}},"
        "\"status\":{\"applied\":\"no\"}}";
    st = call_json("PATCH", REC_PATH, APPLY_CT, two, 500);
    ASSERT_STR_EQ(at_str(st, "message"),
                  "failed to create typed patch object (shop/deployment-web; optipod.io/v1alpha1, "
                  "Kind=OptimizationRecommendation): errors:\n"
                  "  .metadata.bogus: field not declared in schema\n"
                  "  .status.applied: expected boolean, got &{no}");
    cJSON_Delete(st);

    /* a value of the wrong kind, one problem: no "errors:" list */
    ASSERT_EQ_INT(fakeapi_set_schema(FA, av, pl, now), 0);
    const char *bad =
        "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationRecommendation\","
        "\"metadata\":{\"name\":\"deployment-web\",\"namespace\":\"shop\"},"
        "\"spec\":{\"targetRef\":{\"kind\":\"Deployment\",\"name\":\"web\"}},"
        "\"status\":{\"samples\":\"x\",\"containers\":[{\"name\":\"app\"}]}}";
    st = call_json("PATCH", REC_PATH, APPLY_CT, bad, 500);
    ASSERT_STR_EQ(at_str(st, "message"),
                  "failed to create typed patch object (shop/deployment-web; optipod.io/v1alpha1, "
                  "Kind=OptimizationRecommendation): .status.samples: expected numeric (int or "
                  "float), got string");
    cJSON_Delete(st);

    /* the body the controller builds fits the CRD it ships */
    cJSON *ok = call_json("PATCH", REC_PATH, APPLY_CT, opbuf_str(&b), 201);
    ASSERT_STR_EQ(at_str(ok, "spec.source.history"), "pod-names");
    ASSERT_STR_EQ(at_str(ok, "status.containers.0.explanation.cpu.steps.1"), "x");
    cJSON_Delete(ok);
    cJSON_Delete(old);
    cJSON_Delete(now);
    opbuf_release(&b);
    stop();
}

int main(void)
{
    TEST_RUN(test_merge_helpers);
    TEST_RUN(test_crud_and_not_found);
    TEST_RUN(test_generation_moves_like_the_real_server);
    TEST_RUN(test_paged_list_matches_fixture);
    TEST_RUN(test_watch_stream_matches_fixture);
    TEST_RUN(test_watch_expired_initial_selectors_and_timeout);
    TEST_RUN(test_watch_client_gone_and_periodic_bookmarks);
    TEST_RUN(test_watch_selector_transitions);
    TEST_RUN(test_apply_conflict_and_force);
    TEST_RUN(test_flux_fight);
    TEST_RUN(test_container_removal_422_then_200);
    TEST_RUN(test_update_operation_does_not_pin_containers);
    TEST_RUN(test_merge_patch_status_and_resize);
    TEST_RUN(test_events_and_leases);
    TEST_RUN(test_fault_status_delay_hangup_truncate);
    TEST_RUN(test_fault_watch_drop_malformed_gone);
    TEST_RUN(test_tls_faults_and_auth);
    TEST_RUN(test_kubeconfig_and_hook);
    TEST_RUN(test_custom_resource_apply_is_type_checked);
    return test_summary();
}
