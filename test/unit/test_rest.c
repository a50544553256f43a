/*
 * krest: Status parsing on the recorded v1.24 bodies, path and query building,
 * and (against test/support/fakeapi) the verbs on the wire.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/rest.h"
#include "support/fakeapi.h"
#include "test.h"
#include "support/loop.h"

static char *fixture(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", test_fixture_dir(), name);
    return test_read_file(path, len);
}

/* ---- kstatus_parse ---------------------------------------------------------------------- */

static void test_status_conflict_409_dedups_causes(void)
{
    size_t len;
    char *body = fixture("apply-conflict-409.json", &len);
    kstatus st;
    int rc = kstatus_parse(body, len, &st);
    free(body);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(st.code, 409);
    ASSERT_STR_EQ(st.status, "Failure");
    ASSERT_STR_EQ(st.reason, "Conflict");
    ASSERT_STR_CONTAINS(st.message, "Apply failed with 2 conflicts");
    /* The server listed requests.memory twice: one cause survives. */
    ASSERT_EQ_INT(st.ncauses, 1);
    ASSERT_STR_EQ(st.causes[0].reason, "FieldManagerConflict");
    ASSERT_STR_EQ(st.causes[0].message, "conflict with \"argocd-controller\"");
    ASSERT_STR_EQ(st.causes[0].field,
                  ".spec.template.spec.containers[name=\"nginx\"].resources.requests.memory");
    ASSERT_STR_EQ(st.continue_token, "");
    ASSERT_EQ_INT(st.retry_after_s, 0);
}

static void test_status_expired_410_continue(void)
{
    size_t len;
    char *body = fixture("list-continue-expired-410.json", &len);
    kstatus st;
    int rc = kstatus_parse(body, len, &st);
    free(body);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(st.code, 410);
    ASSERT_STR_EQ(st.reason, "Expired");
    ASSERT_STR_EQ(st.continue_token,
                  "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6LTEsInN0YXJ0Ijoid2ViXHUwMDAwIn0");
    ASSERT_EQ_INT(st.ncauses, 0);
    ASSERT_STR_CONTAINS(st.message, "too old to display a consistent list");
}

static void test_status_invalid_422(void)
{
    size_t len;
    char *body = fixture("container-removal-by-gitops-rejected-422.json", &len);
    kstatus st;
    int rc = kstatus_parse(body, len, &st);
    free(body);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(st.code, 422);
    ASSERT_STR_EQ(st.reason, "Invalid");
    ASSERT_EQ_INT(st.ncauses, 1);
    ASSERT_STR_EQ(st.causes[0].reason, "FieldValueRequired");
    ASSERT_STR_EQ(st.causes[0].message, "Required value");
    ASSERT_STR_EQ(st.causes[0].field, "spec.template.spec.containers[1].image");
}

static void test_status_retry_after_and_distinct_causes(void)
{
    const char *b = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                    "\"reason\":\"TooManyRequests\",\"code\":429,"
                    "\"details\":{\"retryAfterSeconds\":7,\"causes\":["
                    "{\"reason\":\"A\",\"field\":\"x\"},{\"reason\":\"A\",\"field\":\"y\"},"
                    "{\"reason\":\"A\",\"field\":\"x\"},{\"reason\":\"B\",\"field\":\"x\"},"
                    "7,{}]}}";
    kstatus st;
    ASSERT_EQ_INT(kstatus_parse(b, strlen(b), &st), 0);
    ASSERT_EQ_INT(st.code, 429);
    ASSERT_EQ_INT(st.retry_after_s, 7);
    /* x, y, B/x and the empty one; the duplicate A/x and the number are dropped. */
    ASSERT_EQ_INT(st.ncauses, 4);
    ASSERT_STR_EQ(st.causes[1].field, "y");
    ASSERT_STR_EQ(st.causes[2].reason, "B");
    ASSERT_STR_EQ(st.causes[3].reason, "");
}

static void test_status_caps_causes_and_truncates(void)
{
    opbuf b;
    opbuf_init(&b, 0);
    opbuf_puts(&b, "{\"kind\":\"Status\",\"code\":409,\"reason\":\"");
    for (int i = 0; i < 200; i++)
        opbuf_puts(&b, "R");
    opbuf_puts(&b, "\",\"details\":{\"causes\":[");
    for (int i = 0; i < 100; i++)
        opbuf_printf(&b, "%s{\"field\":\"f%d\"}", i ? "," : "", i);
    opbuf_puts(&b, "]}}");
    kstatus st;
    ASSERT_EQ_INT(kstatus_parse(b.data, b.len, &st), 0);
    opbuf_release(&b);
    ASSERT_EQ_INT(st.ncauses, KSTATUS_MAX_CAUSES);
    ASSERT_STR_EQ(st.causes[KSTATUS_MAX_CAUSES - 1].field, "f31");
    ASSERT_EQ_INT(strlen(st.reason), sizeof(st.reason) - 1);
}

static void test_status_rejects_non_status(void)
{
    kstatus st;
    const char *cases[] = {
        "",
        "404 page not found",
        "{\"kind\":\"Deployment\",\"code\":404,\"status\":{}}",
        "[1,2]",
        "{\"kind\":\"Status\"", /* truncated */
        "{\"code\":500}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&st, 0x5a, sizeof(st));
        ASSERT_EQ_INT(kstatus_parse(cases[i], strlen(cases[i]), &st), -EINVAL);
        ASSERT_EQ_INT(st.code, 0);
        ASSERT_EQ_INT(st.ncauses, 0);
        ASSERT_STR_EQ(st.reason, "");
    }
    /* A Status without kind but with the unmistakable shape is accepted. */
    const char *nokind = "{\"status\":\"Failure\",\"code\":503,\"reason\":\"ServiceUnavailable\"}";
    ASSERT_EQ_INT(kstatus_parse(nokind, strlen(nokind), &st), 0);
    ASSERT_EQ_INT(st.code, 503);
    /* The length is honoured: the same bytes cut short are not a Status. */
    const char *full = "{\"kind\":\"Status\",\"code\":409}";
    ASSERT_EQ_INT(kstatus_parse(full, strlen(full) - 1, &st), -EINVAL);
}

/* ---- kpath ------------------------------------------------------------------------------ */

static void check_path(const kres *r, const char *ns, const char *name, const char *sub,
                       const char *want)
{
    opbuf b;
    opbuf_init(&b, 0);
    ASSERT_EQ_INT(kpath(&b, r, ns, name, sub), 0);
    if (strcmp(opbuf_str(&b), want) != 0) {
        char got[512];
        snprintf(got, sizeof(got), "%s", opbuf_str(&b));
        opbuf_release(&b);
        ASSERT_STR_EQ(got, want);
    }
    opbuf_release(&b);
}

static void test_kpath_resources(void)
{
    check_path(&KRES_DEPLOYMENTS, "default", "web-app", NULL,
               "/apis/apps/v1/namespaces/default/deployments/web-app");
    check_path(&KRES_DEPLOYMENTS, NULL, NULL, NULL, "/apis/apps/v1/deployments");
    check_path(&KRES_DEPLOYMENTS, "", NULL, NULL, "/apis/apps/v1/deployments");
    check_path(&KRES_STATEFULSETS, "db", "pg", "status",
               "/apis/apps/v1/namespaces/db/statefulsets/pg/status");
    check_path(&KRES_DAEMONSETS, "kube-system", NULL, NULL,
               "/apis/apps/v1/namespaces/kube-system/daemonsets");
    check_path(&KRES_REPLICASETS, "a", "b", NULL, "/apis/apps/v1/namespaces/a/replicasets/b");
    check_path(&KRES_PODS, "default", "web-1", "resize",
               "/api/v1/namespaces/default/pods/web-1/resize");
    check_path(&KRES_PODS, NULL, NULL, NULL, "/api/v1/pods");
    /* Cluster-scoped: a namespace argument is ignored. */
    check_path(&KRES_NAMESPACES, "ignored", "prod", NULL, "/api/v1/namespaces/prod");
    check_path(&KRES_NAMESPACES, NULL, NULL, NULL, "/api/v1/namespaces");
    check_path(&KRES_EVENTS, "default", NULL, NULL,
               "/apis/events.k8s.io/v1/namespaces/default/events");
    check_path(&KRES_LEASES, "optipod-system", "optipod-leader", NULL,
               "/apis/coordination.k8s.io/v1/namespaces/optipod-system/leases/optipod-leader");
    check_path(&KRES_HPAS, "default", "web", NULL,
               "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web");
    check_path(&KRES_POLICIES, "default", "p1", "status",
               "/apis/optipod.io/v1alpha1/namespaces/default/optimizationpolicies/p1/status");
    check_path(&KRES_MUTATING_WEBHOOKS, "x", "optipod", NULL,
               "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/optipod");
    check_path(&KRES_SECRETS, "optipod-system", "tls", NULL,
               "/api/v1/namespaces/optipod-system/secrets/tls");
    check_path(&KRES_POD_METRICS, "default", NULL, NULL,
               "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods");
    /* A subresource without a name means nothing. */
    check_path(&KRES_PODS, "default", NULL, "status", "/api/v1/namespaces/default/pods");
}

static void test_kpath_escapes_segments(void)
{
    check_path(&KRES_PODS, "a b", "x/y?z#%", "st&tus",
               "/api/v1/namespaces/a%20b/pods/x%2Fy%3Fz%23%25/st%26tus");
    check_path(&KRES_SECRETS, "ns", "s\xc3\xa9", NULL, "/api/v1/namespaces/ns/secrets/s%C3%A9");
    check_path(&KRES_PODS, "n", "a-b.c_d~e", NULL, "/api/v1/namespaces/n/pods/a-b.c_d~e");
}

static void test_kpath_appends_and_caps(void)
{
    opbuf b;
    opbuf_init(&b, 40);
    opbuf_puts(&b, "https://h");
    ASSERT_EQ_INT(kpath(&b, &KRES_PODS, "ns", "p", NULL), 0);
    ASSERT_STR_EQ(b.data, "https://h/api/v1/namespaces/ns/pods/p");
    /* Past the cap: -E2BIG and the buffer failed (util/buf.h): never a cut path. */
    ASSERT_EQ_INT(kpath(&b, &KRES_DEPLOYMENTS, "default", "web", NULL), -E2BIG);
    ASSERT_EQ_INT(opbuf_error(&b), -E2BIG);
    ASSERT_EQ_INT(b.len, 0);
    opbuf_release(&b);
}

static void test_kpath_query(void)
{
    opbuf b;
    opbuf_init(&b, 0);
    kpath(&b, &KRES_DEPLOYMENTS, NULL, NULL, NULL);
    const char *kv[] = {"labelSelector",
                        "app=web,tier!=db",
                        "limit",
                        "500",
                        "continue",
                        NULL,
                        "fieldSelector",
                        "",
                        "resourceVersion",
                        "12 3",
                        NULL};
    ASSERT_EQ_INT(kpath_query(&b, kv), 0);
    ASSERT_STR_EQ(b.data, "/apis/apps/v1/deployments?labelSelector=app%3Dweb%2Ctier%21%3Ddb"
                          "&limit=500&resourceVersion=12%203");
    /* A second call continues with '&'. */
    const char *kv2[] = {"watch", "1", NULL};
    ASSERT_EQ_INT(kpath_query(&b, kv2), 0);
    ASSERT_STR_CONTAINS(b.data, "&resourceVersion=12%203&watch=1");
    /* Nothing to add: nothing appended (not even '?'). */
    opbuf_reset(&b);
    opbuf_puts(&b, "/x");
    const char *kv3[] = {"a", NULL, "b", "", NULL};
    ASSERT_EQ_INT(kpath_query(&b, kv3), 0);
    ASSERT_STR_EQ(b.data, "/x");
    ASSERT_EQ_INT(kpath_query(&b, NULL), 0);
    ASSERT_STR_EQ(b.data, "/x");
    opbuf_release(&b);

    opbuf_init(&b, 12);
    opbuf_puts(&b, "/x");
    const char *big[] = {"continue", "0123456789", NULL};
    ASSERT_EQ_INT(kpath_query(&b, big), -E2BIG);
    ASSERT_EQ_INT(opbuf_error(&b), -E2BIG);
    ASSERT_STR_EQ(opbuf_str(&b), "");
    opbuf_release(&b);
}

/* ---- against the fake API server ---------------------------------------------------------- */

static uv_loop_t loop;
static fakeapi *fa;
static ophttp_client *http;
static kcfg cfg;
static krest *k;
static char tmpdir[64];

/* Headers of the last request, seen by a fakeapi hook. */
static char seen_auth[256], seen_accept[128], seen_ua[128];
static int hook_calls;

static int capture_hook(fakeapi *f, ophttpd_req *req, void *ud)
{
    const char *a = ophttpd_header(req, "Authorization");
    const char *acc = ophttpd_header(req, "Accept");
    const char *ua = ophttpd_header(req, "User-Agent");
    snprintf(seen_auth, sizeof(seen_auth), "%s", a ? a : "");
    snprintf(seen_accept, sizeof(seen_accept), "%s", acc ? acc : "");
    snprintf(seen_ua, sizeof(seen_ua), "%s", ua ? ua : "");
    hook_calls++;
    return 0;
}

typedef struct reply {
    int done;
    long http_status;
    int error;
    char body[8192];
    size_t body_len;
    int has_status;
    kstatus st;
    long retry_after_s;
    opbuf stream;
} reply;

static void reply_init(reply *r)
{
    memset(r, 0, sizeof(*r));
    opbuf_init(&r->stream, 0);
}

static void on_reply(const krest_reply *rep, void *ud)
{
    reply *r = ud;
    r->done++;
    r->http_status = rep->http_status;
    r->error = rep->error;
    r->body_len = rep->body_len;
    snprintf(r->body, sizeof(r->body), "%s", rep->body);
    r->has_status = rep->status != NULL;
    if (rep->status)
        r->st = *rep->status;
    r->retry_after_s = rep->retry_after_s;
}

static int on_stream(const char *data, size_t len, void *ud)
{
    reply *r = ud;
    opbuf_append(&r->stream, data, len);
    return 0;
}

static int run_until(const int *flag, unsigned ms)
{
    return tloop_until_flag(&loop, flag, ms);
}

static const char *web_app =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
    "\"metadata\":{\"name\":\"web-app\",\"namespace\":\"default\"},"
    "\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
    "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":"
    "[{\"name\":\"nginx\",\"image\":\"nginx:1.25\",\"resources\":{\"requests\":"
    "{\"cpu\":\"100m\",\"memory\":\"128Mi\"}}}]}}}}";

/* token NULL: the server accepts anything; token_file: kcfg re-reads it. */
static void setup_with(const char *server_token, const char *kc_token, int use_token_file)
{
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    fakeapi_opts o = {.token = server_token};
    ASSERT_EQ_INT(fakeapi_start(&fa, &loop, &o), 0);
    fakeapi_set_hook(fa, capture_hook, NULL);
    hook_calls = 0;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_rest.XXXXXX");
    ASSERT_NOT_NULL(mkdtemp(tmpdir));
    kcfg_init(&cfg);
    operr err = {{0}};
    if (use_token_file) {
        /* Built by hand: the kubeconfig writer puts tokens inline. */
        const char *ca = fakeapi_ca_pem(fa);
        char path[128];
        snprintf(path, sizeof(path), "%s/token", tmpdir);
        FILE *f = fopen(path, "w");
        ASSERT_NOT_NULL(f);
        fputs(kc_token, f);
        fclose(f);
        cfg.server = strdup(fakeapi_url(fa));
        cfg.ca_data = strdup(ca);
        cfg.ca_data_len = strlen(ca);
        cfg.token_file = strdup(path);
    } else {
        char path[128];
        snprintf(path, sizeof(path), "%s/kubeconfig", tmpdir);
        ASSERT_EQ_INT(fakeapi_write_kubeconfig(fa, path, kc_token), 0);
        int rc = kcfg_load_file(&cfg, path, NULL, &err);
        if (rc)
            test_fail(__FILE__, __LINE__, "kcfg_load_file: %s", err.msg);
    }
    ASSERT_EQ_INT(ophttp_client_new(&http, &loop, NULL), 0);
    ASSERT_EQ_INT(krest_new(&k, http, &cfg, &err), 0);
    ASSERT_STR_EQ(krest_server(k), fakeapi_url(fa));
    ASSERT_EQ_INT(fakeapi_put_json(fa, web_app), 0);
}

static void setup(void)
{
    setup_with(NULL, NULL, 0);
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

static void teardown(void)
{
    int closed = 0, fclosed = 0;
    krest_free(k);
    k = NULL;
    ophttp_client_close(http, on_closed, &closed);
    fakeapi_stop(fa, on_closed, &fclosed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(fclosed, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    kcfg_release(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ASSERT_EQ_INT(system(cmd), 0);
}

static void test_get_sends_headers_and_parses_404(void)
{
    setup();
    reply r;
    reply_init(&r);
    ASSERT_EQ_INT(krest_get(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 200);
    ASSERT_EQ_INT(r.error, 0);
    ASSERT_EQ_INT(r.has_status, 0);
    ASSERT_STR_CONTAINS(r.body, "\"name\":\"web-app\"");
    const fakeapi_logged *l = fakeapi_log_last(fa, NULL, NULL);
    ASSERT_NOT_NULL(l);
    ASSERT_STR_EQ(l->method, "GET");
    ASSERT_STR_EQ(l->path, "/apis/apps/v1/namespaces/default/deployments/web-app");
    ASSERT_STR_EQ(l->content_type, "");
    ASSERT_STR_EQ(seen_accept, "application/json");
    ASSERT_STR_EQ(seen_ua, "optipod/" OPTIPOD_VERSION);
    ASSERT_STR_EQ(seen_auth, ""); /* no token in this kubeconfig */

    reply_init(&r);
    ASSERT_EQ_INT(krest_get(k, &KRES_DEPLOYMENTS, "default", "nope", NULL, on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 404);
    ASSERT_EQ_INT(r.error, 0);
    ASSERT(r.has_status);
    ASSERT_EQ_INT(r.st.code, 404);
    ASSERT_STR_EQ(r.st.reason, "NotFound");
    ASSERT_EQ_INT(r.retry_after_s, -1);

    /* A paged list through krest_call with a built query. */
    reply_init(&r);
    opbuf p;
    opbuf_init(&p, 0);
    kpath(&p, &KRES_DEPLOYMENTS, NULL, NULL, NULL);
    const char *q[] = {"limit", "500", NULL};
    kpath_query(&p, q);
    ASSERT_EQ_INT(krest_call(k, "GET", p.data, NULL, NULL, 0, on_reply, &r, NULL), 0);
    opbuf_release(&p);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 200);
    ASSERT_STR_CONTAINS(r.body, "\"items\":[");
    ASSERT_STR_CONTAINS(r.body, "\"web-app\"");
    ASSERT_STR_EQ(fakeapi_log_last(fa, NULL, NULL)->path, "/apis/apps/v1/deployments?limit=500");
    teardown();
}

static void test_create_and_conflict(void)
{
    setup();
    const char *pod = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p1\","
                      "\"namespace\":\"default\"},\"spec\":{\"containers\":[{\"name\":\"c\","
                      "\"image\":\"busybox\"}]}}";
    krest_write_opts o = {.field_manager = "optipod"};
    reply r;
    reply_init(&r);
    ASSERT_EQ_INT(krest_create(k, &KRES_PODS, "default", pod, strlen(pod), &o, on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 201);
    const fakeapi_logged *l = fakeapi_log_last(fa, "POST", NULL);
    ASSERT_NOT_NULL(l);
    ASSERT_STR_EQ(l->path, "/api/v1/namespaces/default/pods?fieldManager=optipod");
    ASSERT_STR_EQ(l->content_type, "application/json");
    ASSERT_STR_EQ(l->body, pod);
    ASSERT_EQ_INT(fakeapi_object_count(fa, "/api/v1/namespaces/default/pods"), 1);

    reply_init(&r);
    ASSERT_EQ_INT(krest_create(k, &KRES_PODS, "default", pod, strlen(pod), NULL, on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 409);
    ASSERT(r.has_status);
    ASSERT_STR_EQ(r.st.reason, "AlreadyExists");
    ASSERT_STR_EQ(fakeapi_log_last(fa, "POST", NULL)->path, "/api/v1/namespaces/default/pods");
    teardown();
}

static void test_merge_patch_and_delete(void)
{
    setup();
    const char *patch = "{\"spec\":{\"replicas\":3}}";
    krest_write_opts o = {.field_manager = "optipod"};
    reply r;
    reply_init(&r);
    ASSERT_EQ_INT(krest_patch(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, KREST_PATCH_MERGE,
                              patch, strlen(patch), &o, on_reply, &r),
                  0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 200);
    const fakeapi_logged *l = fakeapi_log_last(fa, "PATCH", NULL);
    ASSERT_STR_EQ(l->path, "/apis/apps/v1/namespaces/default/deployments/web-app"
                           "?fieldManager=optipod");
    ASSERT_STR_EQ(l->content_type, "application/merge-patch+json");
    ASSERT_STR_EQ(l->body, patch);
    const cJSON *live = fakeapi_get(fa, "/apis/apps/v1/namespaces/default/deployments/web-app");
    ASSERT_NOT_NULL(live);
    const cJSON *rep = cJSON_GetObjectItem(cJSON_GetObjectItem(live, "spec"), "replicas");
    ASSERT_EQ_INT(cJSON_GetNumberValue(rep), 3);

    /* Strategic merge on the status subresource: content type and path. */
    reply_init(&r);
    const char *st = "{\"status\":{\"observedGeneration\":1}}";
    ASSERT_EQ_INT(krest_patch(k, &KRES_DEPLOYMENTS, "default", "web-app", "status",
                              KREST_PATCH_STRATEGIC, st, strlen(st), NULL, on_reply, &r),
                  0);
    ASSERT(run_until(&r.done, 5000));
    l = fakeapi_log_last(fa, "PATCH", NULL);
    ASSERT_STR_EQ(l->path, "/apis/apps/v1/namespaces/default/deployments/web-app/status");
    ASSERT_STR_EQ(l->content_type, "application/strategic-merge-patch+json");

    reply_init(&r);
    ASSERT_EQ_INT(krest_delete(k, &KRES_DEPLOYMENTS, "default", "web-app", on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 200);
    l = fakeapi_log_last(fa, "DELETE", NULL);
    ASSERT_STR_EQ(l->path, "/apis/apps/v1/namespaces/default/deployments/web-app");
    ASSERT_NULL(fakeapi_get(fa, "/apis/apps/v1/namespaces/default/deployments/web-app"));
    teardown();
}

static void test_apply_query_dry_run_and_conflict(void)
{
    setup();
    size_t len;
    char *body = fixture("apply-body-optipod.json", &len);
    reply r;

    /* Without a field manager the call fails before any request. */
    size_t before = fakeapi_log_count(fa);
    ASSERT_EQ_INT(krest_patch(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, KREST_PATCH_APPLY,
                              body, len, NULL, on_reply, &r),
                  -EINVAL);
    ASSERT_EQ_INT(fakeapi_log_count(fa), before);

    /* argocd-controller owns the requests through its own apply. */
    krest_write_opts argo = {.field_manager = "argocd-controller", .force = 1};
    reply_init(&r);
    ASSERT_EQ_INT(krest_patch(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, KREST_PATCH_APPLY,
                              web_app, strlen(web_app), &argo, on_reply, &r),
                  0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 200);

    /* optipod's unforced apply conflicts: a parsed 409 with its causes. */
    krest_write_opts o = {.field_manager = "optipod"};
    reply_init(&r);
    ASSERT_EQ_INT(krest_patch(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, KREST_PATCH_APPLY,
                              body, len, &o, on_reply, &r),
                  0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 409);
    ASSERT(r.has_status);
    ASSERT_STR_EQ(r.st.reason, "Conflict");
    ASSERT_CMP_INT(r.st.ncauses, >=, 1);
    ASSERT_STR_EQ(r.st.causes[0].reason, "FieldManagerConflict");
    ASSERT_STR_CONTAINS(r.st.causes[0].message, "argocd-controller");
    const fakeapi_logged *l = fakeapi_log_last(fa, "PATCH", NULL);
    ASSERT_STR_EQ(l->path, "/apis/apps/v1/namespaces/default/deployments/web-app"
                           "?fieldManager=optipod");
    ASSERT_STR_EQ(l->content_type, "application/apply-patch+yaml");
    ASSERT_EQ_INT(l->body_len, len);
    ASSERT_EQ_INT(memcmp(l->body, body, len), 0);

    /* Forced dry run: accepted, nothing persisted. */
    char *live_before =
        fakeapi_get_json(fa, "/apis/apps/v1/namespaces/default/deployments/web-app");
    krest_write_opts fd = {.field_manager = "optipod", .force = 1, .dry_run = 1};
    reply_init(&r);
    ASSERT_EQ_INT(krest_patch(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, KREST_PATCH_APPLY,
                              body, len, &fd, on_reply, &r),
                  0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 200);
    ASSERT_STR_CONTAINS(r.body, "\"250m\"");
    ASSERT_STR_EQ(fakeapi_log_last(fa, "PATCH", NULL)->path,
                  "/apis/apps/v1/namespaces/default/deployments/web-app"
                  "?fieldManager=optipod&force=true&dryRun=All");
    char *live_after = fakeapi_get_json(fa, "/apis/apps/v1/namespaces/default/deployments/web-app");
    ASSERT_STR_EQ(live_after, live_before);
    free(live_before);
    free(live_after);

    /* force is apply-only: a merge patch never carries it. */
    reply_init(&r);
    ASSERT_EQ_INT(krest_patch(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, KREST_PATCH_JSON,
                              "[]", 2, &fd, on_reply, &r),
                  0);
    ASSERT(run_until(&r.done, 5000));
    const fakeapi_logged *j = fakeapi_log_last(fa, "PATCH", NULL);
    ASSERT_STR_EQ(j->path, "/apis/apps/v1/namespaces/default/deployments/web-app"
                           "?fieldManager=optipod&dryRun=All");
    ASSERT_STR_EQ(j->content_type, "application/json-patch+json");
    free(body);
    teardown();
}

static void test_faults_429_500_timeout_truncate(void)
{
    setup();
    fakeapi_fault f429 = {.method = "GET",
                          .path = "/deployments/web-app",
                          .watch = 0,
                          .count = 1,
                          .kind = FAKEAPI_FAULT_STATUS,
                          .status = 429,
                          .retry_after_s = 2};
    ASSERT_EQ_INT(fakeapi_add_fault(fa, &f429), 0);
    reply r;
    reply_init(&r);
    ASSERT_EQ_INT(krest_get(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 429);
    ASSERT_EQ_INT(r.retry_after_s, 2);
    ASSERT(r.has_status);
    ASSERT_EQ_INT(r.st.code, 429);

    fakeapi_fault f500 = {.method = "GET",
                          .watch = 0,
                          .count = 1,
                          .kind = FAKEAPI_FAULT_STATUS,
                          .status = 500,
                          .message = "etcd down"};
    ASSERT_EQ_INT(fakeapi_add_fault(fa, &f500), 0);
    reply_init(&r);
    ASSERT_EQ_INT(krest_get(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 500);
    ASSERT(r.has_status);
    ASSERT_EQ_INT(r.st.code, 500);
    ASSERT_STR_CONTAINS(r.st.message, "etcd down");
    ASSERT_EQ_INT(r.retry_after_s, -1);

    fakeapi_fault slow = {
        .method = "GET", .watch = 0, .count = 1, .kind = FAKEAPI_FAULT_DELAY, .delay_ms = 2000};
    ASSERT_EQ_INT(fakeapi_add_fault(fa, &slow), 0);
    krest_set_timeout(k, 200);
    reply_init(&r);
    ASSERT_EQ_INT(krest_get(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.error, OPHTTP_ETIMEOUT);
    ASSERT_EQ_INT(r.http_status, 0);
    ASSERT_EQ_INT(r.has_status, 0);
    krest_set_timeout(k, 0);

    /* A truncated 200 body is still a 200: the caller's JSON parse must catch it. */
    fakeapi_fault tr = {.method = "GET", .watch = 0, .count = 1, .kind = FAKEAPI_FAULT_TRUNCATE};
    ASSERT_EQ_INT(fakeapi_add_fault(fa, &tr), 0);
    reply_init(&r);
    ASSERT_EQ_INT(krest_get(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 200);
    ASSERT_EQ_INT(r.error, 0);
    cJSON *j = cJSON_ParseWithLength(r.body, r.body_len);
    ASSERT_NULL(j);
    teardown();
}

/* krest_set_metrics: every answer is timed by verb; failures are counted by verb and code,
 * "transport" when no answer came. */
static void test_metrics_time_requests_and_count_failures(void)
{
    setup();
    obs_reg *m = obs_reg_new("t", 0);
    ASSERT_EQ_INT(krest_set_metrics(k, m, NULL), 0);
    fakeapi_fault f500 = {
        .method = "GET", .count = 1, .kind = FAKEAPI_FAULT_STATUS, .status = 500, .message = "x"};
    fakeapi_fault slow = {
        .method = "GET", .count = 1, .kind = FAKEAPI_FAULT_DELAY, .delay_ms = 2000};
    static const char *const names[] = {"web-app", "nope", "web-app", "web-app"};
    for (int i = 0; i < 4; i++) {
        if (i == 2)
            ASSERT_EQ_INT(fakeapi_add_fault(fa, &f500), 0);
        if (i == 3) {
            ASSERT_EQ_INT(fakeapi_add_fault(fa, &slow), 0);
            krest_set_timeout(k, 200);
        }
        reply r;
        reply_init(&r);
        ASSERT_EQ_INT(krest_get(k, &KRES_DEPLOYMENTS, "default", names[i], NULL, on_reply, &r), 0);
        ASSERT(run_until(&r.done, 5000));
    }
    krest_set_timeout(k, 0);
    obs_fam *sec = obs_find(m, "optipod_api_request_duration_seconds");
    obs_fam *err = obs_find(m, "optipod_api_request_errors_total");
    const char *get[] = {"GET"}, *nf[] = {"GET", "404"}, *ise[] = {"GET", "500"},
               *tr[] = {"GET", "transport"}, *ok[] = {"GET", "200"};
    ASSERT_NEAR(obs_value(sec, get), 4, 0);
    ASSERT_NEAR(obs_value(err, nf), 1, 0);
    ASSERT_NEAR(obs_value(err, ise), 1, 0);
    ASSERT_NEAR(obs_value(err, tr), 1, 0);
    ASSERT(isnan(obs_value(err, ok))); /* successes are not errors */
    teardown();
    obs_reg_free(m);
}

static void test_stream_watch(void)
{
    setup();
    reply r;
    reply_init(&r);
    ophttp_req *req = NULL;
    const char *path = "/apis/apps/v1/namespaces/default/deployments?watch=1&resourceVersion=0";
    ASSERT_EQ_INT(krest_stream(k, path, 30, on_stream, on_reply, &r, &req), 0);
    ASSERT_NOT_NULL(req);
    uint64_t deadline = uv_hrtime() + 5000000000ull;
    while (!strstr(opbuf_str(&r.stream), "\n") && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_STR_CONTAINS(opbuf_str(&r.stream), "{\"type\":\"ADDED\"");
    ASSERT_STR_CONTAINS(opbuf_str(&r.stream), "\"web-app\"");
    ASSERT_EQ_INT(r.done, 0);
    ASSERT_EQ_INT(fakeapi_watch_count(fa), 1);
    ASSERT_STR_EQ(fakeapi_log_last(fa, "GET", NULL)->path, path);
    fakeapi_end_watches(fa);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 200);
    ASSERT_EQ_INT(r.error, 0);
    ASSERT_EQ_INT(r.body_len, 0);
    opbuf_release(&r.stream);

    /* Cancelling a stream: no callback, and the context is released (valgrind). */
    reply_init(&r);
    ASSERT_EQ_INT(krest_stream(k, path, 30, on_stream, on_reply, &r, &req), 0);
    deadline = uv_hrtime() + 5000000000ull;
    while (!r.stream.len && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_CMP_INT(r.stream.len, >, 0);
    ophttp_cancel(req);
    ASSERT_EQ_INT(ophttp_inflight(http), 0);
    opbuf_release(&r.stream);

    /* One in flight when the client closes: released too. */
    reply_init(&r);
    ASSERT_EQ_INT(krest_stream(k, path, 30, on_stream, on_reply, &r, NULL), 0);
    teardown();
    ASSERT_EQ_INT(r.done, 0);
    opbuf_release(&r.stream);
}

static void test_bearer_token_and_rotation(void)
{
    setup_with("tok-1", "tok-1", 0);
    reply r;
    reply_init(&r);
    ASSERT_EQ_INT(krest_get(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 200);
    ASSERT_STR_EQ(seen_auth, "Bearer tok-1");
    teardown();

    /* A token file: a stale token gets 401, the rotated one is picked up. */
    setup_with("tok-new", "tok-old", 1);
    reply_init(&r);
    ASSERT_EQ_INT(krest_get(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 401);
    ASSERT(r.has_status);
    ASSERT_EQ_INT(r.st.code, 401);

    FILE *f = fopen(cfg.token_file, "w");
    ASSERT_NOT_NULL(f);
    fputs("tok-new\n", f);
    fclose(f);
    /* Make the change visible even on a coarse-mtime filesystem. */
    struct timespec ts[2] = {{.tv_sec = time(NULL) + 5}, {.tv_sec = time(NULL) + 5}};
    ASSERT_EQ_INT(utimensat(AT_FDCWD, cfg.token_file, ts, 0), 0);
    reply_init(&r);
    ASSERT_EQ_INT(krest_get(k, &KRES_DEPLOYMENTS, "default", "web-app", NULL, on_reply, &r), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.http_status, 200);
    ASSERT_STR_EQ(seen_auth, "Bearer tok-new");
    teardown();
}

static void test_new_rejects_config_without_server(void)
{
    kcfg c;
    kcfg_init(&c);
    uv_loop_t l;
    uv_loop_init(&l);
    ophttp_client *h;
    ASSERT_EQ_INT(ophttp_client_new(&h, &l, NULL), 0);
    krest *kk = (krest *)1;
    operr err = {{0}};
    ASSERT_EQ_INT(krest_new(&kk, h, &c, &err), -EINVAL);
    ASSERT_NULL(kk);
    ASSERT_STR_CONTAINS(err.msg, "no API server address");
    int closed = 0;
    ophttp_client_close(h, on_closed, &closed);
    uv_run(&l, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(uv_loop_close(&l), 0);
    kcfg_release(&c);
}

int main(void)
{
    TEST_RUN(test_status_conflict_409_dedups_causes);
    TEST_RUN(test_status_expired_410_continue);
    TEST_RUN(test_status_invalid_422);
    TEST_RUN(test_status_retry_after_and_distinct_causes);
    TEST_RUN(test_status_caps_causes_and_truncates);
    TEST_RUN(test_status_rejects_non_status);
    TEST_RUN(test_kpath_resources);
    TEST_RUN(test_kpath_escapes_segments);
    TEST_RUN(test_kpath_appends_and_caps);
    TEST_RUN(test_kpath_query);
    TEST_RUN(test_new_rejects_config_without_server);
    TEST_RUN(test_get_sends_headers_and_parses_404);
    TEST_RUN(test_create_and_conflict);
    TEST_RUN(test_merge_patch_and_delete);
    TEST_RUN(test_apply_query_dry_run_and_conflict);
    TEST_RUN(test_faults_429_500_timeout_truncate);
    TEST_RUN(test_metrics_time_requests_and_count_failures);
    TEST_RUN(test_stream_watch);
    TEST_RUN(test_bearer_token_and_rotation);
    return test_summary();
}
