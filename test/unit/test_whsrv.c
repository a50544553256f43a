#include "support/tcache.h"
#include "support/fakeapi_client.h"
#include "http/http.h"
#include "httpd/httpd.h"
#include "kube/cache.h"
#include "test.h"
#include "util/b64.h"
#include "util/log.h"
#include "webhook/server.h"

#include <errno.h>

static struct {
    uv_loop_t loop;
    kcache rs, dep;
    whsrv *srv;
    ophttpd_cert cert, other;
    int closed;
} S;

static void put(kcache *c, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    ASSERT_NOT_NULL(j);
    ASSERT_EQ_INT(tcache_upsert(c, j), 0);
    cJSON_Delete(j);
}

static char *fixture(size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/admission-review-pod-create.json", test_fixture_dir());
    return test_read_file(path, len);
}

static void on_closed(void *ud)
{
    (void)ud;
    S.closed = 1;
}

static void start(void)
{
    memset(&S, 0, sizeof S);
    ASSERT_EQ_INT(uv_loop_init(&S.loop), 0);
    kcache_init(&S.rs, KPROJ_REPLICASET);
    kcache_init(&S.dep, KPROJ_DEPLOYMENT);
    put(&S.rs,
        "{\"metadata\":{\"name\":\"web-app-d6d4b97cf\",\"namespace\":\"prod\","
        "\"uid\":\"6b2b9139-49e2-4c8b-89ec-da77eb712910\",\"ownerReferences\":[{"
        "\"kind\":\"Deployment\",\"name\":\"web-app\",\"uid\":\"d-1\",\"controller\":true}]},"
        "\"spec\":{}}");
    put(&S.dep, "{\"metadata\":{\"name\":\"web-app\",\"namespace\":\"prod\",\"uid\":\"d-1\","
                "\"annotations\":{\"optipod.io/webhook-enabled\":\"true\","
                "\"optipod.io/strategy\":\"webhook\",\"optipod.io/cpu-request.nginx\":\"250m\","
                "\"optipod.io/memory-request.nginx\":\"512Mi\"}},\"spec\":{}}");
    const char *sans[] = {"optipod-webhook.optipod-system.svc", "127.0.0.1", NULL};
    ASSERT_EQ_INT(ophttpd_cert_generate(&S.cert, "optipod", sans, 1), 0);
    ASSERT_EQ_INT(ophttpd_cert_generate(&S.other, "stranger", sans, 1), 0);
    whsrv_opts o = {.bind = "127.0.0.1",
                    .cert_pem = S.cert.cert_pem,
                    .key_pem = S.cert.key_pem,
                    .max_body = 64 * 1024,
                    .caches = {.replicasets = &S.rs, .deployments = &S.dep}};
    operr err;
    ASSERT_EQ_INT(whsrv_start(&S.srv, &S.loop, &o, &err), 0);
    ASSERT_CMP_INT(whsrv_port(S.srv), >, 0);
}

static void stop(void)
{
    whsrv_stop(S.srv, on_closed, NULL);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(S.closed, 1);
    ASSERT_EQ_INT(uv_loop_close(&S.loop), 0);
    kcache_release(&S.rs);
    kcache_release(&S.dep);
    ophttpd_cert_release(&S.cert);
    ophttpd_cert_release(&S.other);
}

typedef struct done {
    int done;
    long status;
    int error;
    char *body;
} done;

static void on_done(ophttp_req *req, const ophttp_response *res, void *ud)
{
    (void)req;
    done *d = ud;
    d->done = 1;
    d->status = res->status;
    d->error = res->error;
    d->body = strdup(res->body);
}

static void client_closed(void *ud)
{
    *(int *)ud = 1;
}

/* A POST through lib/http's client (libcurl, OpenSSL) trusting ca_pem. */
static done post(const char *path, const char *body, size_t len, const char *ca_pem)
{
    ophttp_client *c;
    ASSERT_EQ_INT(ophttp_client_new(&c, &S.loop, "kube-apiserver-admission"), 0);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", whsrv_port(S.srv), path);
    ophttp_tls tls = {.ca_pem = ca_pem, .ca_pem_len = strlen(ca_pem)};
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    done d = {0};
    ophttp_req_opts o = {.method = "POST",
                         .url = url,
                         .headers = hdrs,
                         .body = body,
                         .body_len = len,
                         .timeout_ms = 5000,
                         .tls = &tls,
                         .on_done = on_done,
                         .ud = &d};
    ASSERT_EQ_INT(ophttp_request(c, &o, NULL), 0);
    while (!d.done)
        uv_run(&S.loop, UV_RUN_ONCE);
    int closed = 0;
    ophttp_client_close(c, client_closed, &closed);
    while (!closed)
        uv_run(&S.loop, UV_RUN_ONCE);
    return d;
}

static void test_tls_round_trip_fixture(void)
{
    start();
    size_t n;
    char *body = fixture(&n);
    done d = post("/mutate-pods?timeout=5s", body, n, S.cert.ca_pem);
    ASSERT_EQ_INT(d.error, 0);
    ASSERT_EQ_INT(d.status, 200);
    cJSON *r = cJSON_Parse(d.body);
    ASSERT_NOT_NULL(r);
    cJSON *res = cJSON_GetObjectItem(r, "response");
    ASSERT_STR_EQ(cJSON_GetObjectItem(res, "uid")->valuestring,
                  "ce615b29-0db6-4445-8db7-3ab9dbb75211");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(res, "allowed")));
    ASSERT_STR_EQ(cJSON_GetObjectItem(res, "patchType")->valuestring, "JSONPatch");
    /* base64 of the exact patch admrev builds (its bytes are tested in test_admrev) */
    opbuf want;
    opbuf_init(&want, 4096);
    const char *wp = "[{\"op\":\"replace\",\"path\":\"/spec/containers/0/resources/"
                     "requests/cpu\",\"value\":\"250m\"},{\"op\":\"replace\",\"path\":"
                     "\"/spec/containers/0/resources/requests/memory\",\"value\":"
                     "\"512Mi\"}]";
    ASSERT_EQ_INT(opb64_encode(&want, wp, strlen(wp)), 0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(res, "patch")->valuestring, want.data);
    opbuf_release(&want);
    cJSON_Delete(r);
    free(d.body);

    /* The same pod, owner unknown to the cache: allowed, no patch. */
    kcache_del(&S.rs, "prod", "web-app-d6d4b97cf");
    d = post("/mutate-pods", body, n, S.cert.ca_pem);
    ASSERT_EQ_INT(d.status, 200);
    ASSERT_STR_EQ(d.body, "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                          "\"response\":{\"uid\":\"ce615b29-0db6-4445-8db7-3ab9dbb75211\","
                          "\"allowed\":true}}");
    free(d.body);
    const whsrv_stats *st = whsrv_get_stats(S.srv);
    ASSERT_EQ_INT(st->mutated, 1);
    ASSERT_EQ_INT(st->unchanged[WHSRV_R_UNKNOWN_OWNER], 1);
    ASSERT_EQ_INT(st->late, 0);
    free(body);
    stop();
}

static void test_wrong_ca_fails_handshake(void)
{
    start();
    done d = post("/mutate-pods", "{}", 2, S.other.ca_pem);
    ASSERT_EQ_INT(d.error, OPHTTP_ETLS);
    ASSERT_EQ_INT(d.status, 0);
    free(d.body);
    /* and the raw OpenSSL client agrees */
    const char *req = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    fakeapi_cli_result r;
    ASSERT_EQ_INT(
        fakeapi_cli_run(&S.loop, whsrv_port(S.srv), S.other.ca_pem, 1, req, strlen(req), 0, &r), 0);
    ASSERT_EQ_INT(r.error, -EPROTO);
    fakeapi_cli_result_release(&r);
    ASSERT_EQ_INT(whsrv_get_stats(S.srv)->mutated, 0);
    stop();
}

static fakeapi_cli_result raw(const char *method, const char *path, const char *ct,
                              const char *body, const char *extra)
{
    char *req = fakeapi_cli_format(method, path, ct, body, extra);
    fakeapi_cli_result r;
    ASSERT_EQ_INT(
        fakeapi_cli_run(&S.loop, whsrv_port(S.srv), S.cert.ca_pem, 1, req, strlen(req), 0, &r), 0);
    free(req);
    ASSERT_EQ_INT(r.error, 0);
    return r;
}

static void test_malformed_and_rejected(void)
{
    start();
    fakeapi_cli_result r = raw("POST", "/mutate-pods", "application/json", "{not json", NULL);
    ASSERT_EQ_INT(r.status, 400);
    ASSERT_STR_EQ(r.body, "AdmissionReview: body is not JSON\n");
    fakeapi_cli_result_release(&r);
    r = raw("POST", "/mutate-pods", "application/json",
            "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
            "\"request\":{\"namespace\":\"a\"}}",
            NULL);
    ASSERT_EQ_INT(r.status, 400);
    ASSERT_STR_CONTAINS(r.body, "request.uid is missing");
    fakeapi_cli_result_release(&r);
    r = raw("POST", "/mutate-pods", "application/json",
            "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"request\":{}}", NULL);
    ASSERT_EQ_INT(r.status, 400);
    ASSERT_STR_CONTAINS(r.body, "apiVersion \"v1\" is not admission.k8s.io/v1");
    fakeapi_cli_result_release(&r);
    /* over max_body (64 KiB here): ophttpd's 413 */
    char *huge = malloc(70000);
    memset(huge, ' ', 69999);
    huge[0] = '{';
    huge[69998] = '}';
    huge[69999] = 0;
    r = raw("POST", "/mutate-pods", "application/json", huge, NULL);
    ASSERT_EQ_INT(r.status, 413);
    fakeapi_cli_result_release(&r);
    free(huge);
    r = raw("GET", "/mutate-pods", NULL, NULL, NULL);
    ASSERT_EQ_INT(r.status, 405);
    ASSERT_STR_CONTAINS(r.headers, "Allow: POST");
    fakeapi_cli_result_release(&r);
    r = raw("POST", "/mutate-pods", "text/plain", "{}", NULL);
    ASSERT_EQ_INT(r.status, 415);
    fakeapi_cli_result_release(&r);
    r = raw("POST", "/mutate-podsx", "application/json", "{}", NULL);
    ASSERT_EQ_INT(r.status, 404);
    fakeapi_cli_result_release(&r);
    r = raw("GET", "/healthz", NULL, NULL, NULL);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_STR_EQ(r.body, "ok");
    fakeapi_cli_result_release(&r);
    /* a content type with parameters is still JSON */
    r = raw("POST", "/mutate-pods", "application/json; charset=utf-8", "[]", NULL);
    ASSERT_EQ_INT(r.status, 400);
    fakeapi_cli_result_release(&r);

    const whsrv_stats *st = whsrv_get_stats(S.srv);
    ASSERT_EQ_INT(st->malformed, 4); /* ophttpd answers the 413 before the handler runs */
    ASSERT_EQ_INT(st->rejected, 3);
    opbuf m;
    opbuf_init(&m, 1 << 16);
    ASSERT_EQ_INT(whsrv_metrics(S.srv, &m), 0);
    ASSERT_STR_CONTAINS(m.data, "optipod_webhook_reviews_total{outcome=\"malformed\"} 4\n");
    ASSERT_STR_CONTAINS(m.data, "optipod_webhook_reviews_total{outcome=\"rejected\"} 3\n");
    ASSERT_STR_CONTAINS(m.data, "{outcome=\"unchanged\",reason=\"unknown-owner\"} 0\n");
    ASSERT_STR_CONTAINS(m.data, "# TYPE optipod_webhook_reviews_total counter\n");
    opbuf_release(&m);
    stop();
}

static void test_not_pod_create_and_timeout_parse(void)
{
    start();
    const char *upd = "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                      "\"request\":{\"uid\":\"u-9\",\"namespace\":\"n\",\"operation\":\"DELETE\","
                      "\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"}}}";
    fakeapi_cli_result r = raw("POST", "/mutate-pods?timeout=2s", "application/json", upd, NULL);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_STR_CONTAINS(r.body, "\"uid\":\"u-9\",\"allowed\":true}}");
    fakeapi_cli_result_release(&r);
    ASSERT_EQ_INT(whsrv_get_stats(S.srv)->unchanged[WHSRV_R_NOT_POD_CREATE], 1);
    ASSERT_EQ_INT(whsrv_parse_timeout("5s"), 5000);
    ASSERT_EQ_INT(whsrv_parse_timeout("250ms"), 250);
    ASSERT_EQ_INT(whsrv_parse_timeout("1m"), 60000);
    ASSERT_EQ_INT(whsrv_parse_timeout("5"), -EINVAL);
    ASSERT_EQ_INT(whsrv_parse_timeout("-1s"), -EINVAL);
    ASSERT_EQ_INT(whsrv_parse_timeout("s"), -EINVAL);
    ASSERT_EQ_INT(whsrv_reason_index("no-change"), WHSRV_R_NO_CHANGE);
    ASSERT_EQ_INT(whsrv_reason_index("zzz"), WHSRV_R_OTHER);
    ASSERT_STR_EQ(whsrv_reason_name(WHSRV_R_OWNER_UID), "owner-uid");
    stop();
}

/* A rotated certificate serves new connections. */
static void test_set_tls_rotates(void)
{
    start();
    ASSERT_EQ_INT(whsrv_set_tls(S.srv, S.other.cert_pem, S.other.key_pem), 0);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    fakeapi_cli_result r;
    ASSERT_EQ_INT(
        fakeapi_cli_run(&S.loop, whsrv_port(S.srv), S.other.ca_pem, 1, req, strlen(req), 0, &r), 0);
    ASSERT_EQ_INT(r.status, 200);
    fakeapi_cli_result_release(&r);
    ASSERT_EQ_INT(
        fakeapi_cli_run(&S.loop, whsrv_port(S.srv), S.cert.ca_pem, 1, req, strlen(req), 0, &r), 0);
    ASSERT_EQ_INT(r.error, -EPROTO);
    fakeapi_cli_result_release(&r);
    stop();
}

/* The pure answer: excluded namespaces are left alone whatever the caches say. */
static void test_answer_excluded_namespace(void)
{
    start();
    size_t n;
    char *body = fixture(&n);
    wresolve_caches c = {.replicasets = &S.rs, .deployments = &S.dep};
    opbuf out;
    opbuf_init(&out, 1 << 16);
    const char *reason = "x";
    ASSERT_EQ_INT(whsrv_answer(&c, body, n, &out, &reason, NULL), 200);
    ASSERT_NULL(reason);
    ASSERT_STR_CONTAINS(out.data, "\"patchType\":\"JSONPatch\"");
    opbuf_reset(&out);
    const char *ex[] = {"kube-system", "prod", NULL};
    ASSERT_EQ_INT(whsrv_answer_ex(&c, ex, body, n, &out, &reason, NULL), 200);
    ASSERT_STR_EQ(reason, "excluded-namespace");
    ASSERT(strstr(out.data, "patch") == NULL);
    opbuf_reset(&out);
    operr err;
    ASSERT_EQ_INT(whsrv_answer(&c, "{", 1, &out, &reason, &err), 400);
    ASSERT_EQ_INT(out.len, 0);
    opbuf_release(&out);
    /* kube-system is excluded by default by the server */
    char *ks = malloc(n + 32);
    char *at = strstr(body, "\"namespace\":\"prod\",\"operation\"");
    ASSERT_NOT_NULL(at);
    snprintf(ks, n + 32, "%.*s\"namespace\":\"kube-system\"%s", (int)(at - body), body,
             at + strlen("\"namespace\":\"prod\""));
    fakeapi_cli_result r = raw("POST", "/mutate-pods", "application/json", ks, NULL);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT(strstr(r.body, "patch") == NULL);
    fakeapi_cli_result_release(&r);
    ASSERT_EQ_INT(whsrv_get_stats(S.srv)->unchanged[WHSRV_R_EXCLUDED_NAMESPACE], 1);
    free(ks);
    free(body);
    stop();
}

static void test_start_errors(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    whsrv *s;
    operr err;
    whsrv_opts o = {.bind = "127.0.0.1"};
    ASSERT_EQ_INT(whsrv_start(&s, &loop, &o, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "certificate and key are required");
    o.cert_pem = "x";
    o.key_pem = "y";
    o.path = "mutate";
    ASSERT_EQ_INT(whsrv_start(&s, &loop, &o, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "must start with '/'");
    o.path = NULL;
    ASSERT_EQ_INT(whsrv_start(&s, &loop, &o, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "cannot listen");
    ASSERT_NULL(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    TEST_RUN(test_tls_round_trip_fixture);
    TEST_RUN(test_wrong_ca_fails_handshake);
    TEST_RUN(test_malformed_and_rejected);
    TEST_RUN(test_not_pod_create_and_timeout_parse);
    TEST_RUN(test_set_tls_rotates);
    TEST_RUN(test_answer_excluded_namespace);
    TEST_RUN(test_start_errors);
    return test_summary();
}
