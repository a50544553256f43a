#include "fuzz/admrev_oracle.h"
#include "support/fakeapi.h"
#include "support/fakeapi_client.h"
#include "test.h"
#include "util/b64.h"
#include "webhook/review.h"

#include <errno.h>

static char *fixture(size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/admission-review-pod-create.json", test_fixture_dir());
    return test_read_file(path, len);
}

/* The patch inside a response, decoded and parsed (NULL when none). */
static cJSON *response_patch(const char *resp, const char *uid)
{
    cJSON *r = cJSON_Parse(resp);
    ASSERT_NOT_NULL(r);
    ASSERT_STR_EQ(cJSON_GetObjectItem(r, "apiVersion")->valuestring, "admission.k8s.io/v1");
    ASSERT_STR_EQ(cJSON_GetObjectItem(r, "kind")->valuestring, "AdmissionReview");
    cJSON *res = cJSON_GetObjectItem(r, "response");
    ASSERT_STR_EQ(cJSON_GetObjectItem(res, "uid")->valuestring, uid);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(res, "allowed")));
    cJSON *p = cJSON_GetObjectItem(res, "patch");
    cJSON *out = NULL;
    if (p) {
        ASSERT_STR_EQ(cJSON_GetObjectItem(res, "patchType")->valuestring, "JSONPatch");
        size_t n;
        char *raw;
        ASSERT_EQ_INT(opb64_decode(p->valuestring, strlen(p->valuestring), &raw, &n, NULL, 0), 0);
        out = cJSON_ParseWithLength(raw, n);
        free(raw);
        ASSERT_NOT_NULL(out);
    } else {
        ASSERT_NULL(cJSON_GetObjectItem(res, "patchType"));
    }
    cJSON_Delete(r);
    return out;
}

static void assert_json_eq(const cJSON *got, const char *want_text)
{
    cJSON *want = cJSON_Parse(want_text);
    ASSERT_NOT_NULL(want);
    char *g = cJSON_PrintUnformatted(got);
    int same = cJSON_Compare(got, want, 1);
    if (!same) {
        char *w = cJSON_PrintUnformatted(want);
        fprintf(stderr, "got:  %s\nwant: %s\n", g, w);
        free(w);
    }
    free(g);
    cJSON_Delete(want);
    ASSERT(same);
}

static void test_parse_fixture(void)
{
    size_t n;
    char *body = fixture(&n);
    admrev_req r;
    operr err;
    ASSERT_EQ_INT(admrev_parse(&r, body, n, &err), 0);
    ASSERT_STR_EQ(r.uid, "ce615b29-0db6-4445-8db7-3ab9dbb75211");
    ASSERT_STR_EQ(r.ns, "prod");
    ASSERT_STR_EQ(r.name, "");
    ASSERT_STR_EQ(r.operation, "CREATE");
    ASSERT(r.is_pod_create);
    ASSERT(!r.dry_run);
    ASSERT_STR_EQ(r.owner_kind, "ReplicaSet");
    ASSERT_STR_EQ(r.owner_name, "web-app-d6d4b97cf");
    ASSERT_STR_EQ(r.owner_uid, "6b2b9139-49e2-4c8b-89ec-da77eb712910");
    ASSERT_EQ_INT(cJSON_GetArraySize(r.containers), 1);
    admrev_release(&r);
    admrev_release(&r); /* idempotent */
    free(body);
}

/* The fixture's pod with the guide's annotations → the exact JSONPatch. */
static void test_fixture_patch(void)
{
    size_t n;
    char *body = fixture(&n);
    admrev_req r;
    ASSERT_EQ_INT(admrev_parse(&r, body, n, NULL), 0);
    admrev_want w[] = {{.container = "nginx", .cpu_req = "250m", .mem_req = "512Mi"}};
    opbuf patch, resp;
    opbuf_init(&patch, 1 << 16);
    opbuf_init(&resp, 1 << 16);
    const char *reason = "x";
    ASSERT_EQ_INT(admrev_patch(&r, w, 1, &patch, &reason, NULL), 2);
    ASSERT_NULL(reason);
    ASSERT_EQ_INT(admrev_response(&resp, r.uid, patch.data, patch.len), 0);
    cJSON *p = response_patch(resp.data, "ce615b29-0db6-4445-8db7-3ab9dbb75211");
    assert_json_eq(p, "[{\"op\":\"replace\",\"path\":\"/spec/containers/0/resources/requests/cpu\","
                      "\"value\":\"250m\"},"
                      "{\"op\":\"replace\",\"path\":\"/spec/containers/0/resources/requests/"
                      "memory\",\"value\":\"512Mi\"}]");
    cJSON_Delete(p);
    opbuf_release(&patch);
    opbuf_release(&resp);
    admrev_release(&r);
    free(body);
}

static int parse_pod(admrev_req *r, const char *containers)
{
    char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
             "\"uid\":\"u-1\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
             "\"namespace\":\"ns\",\"operation\":\"CREATE\",\"object\":{\"metadata\":{"
             "\"generateName\":\"a-\"},\"spec\":{\"containers\":%s}}}}",
             containers);
    return admrev_parse(r, buf, strlen(buf), NULL);
}

static cJSON *patch_of(const char *containers, const admrev_want *w, size_t n, int want_ops,
                       const char *want_reason)
{
    admrev_req r;
    ASSERT_EQ_INT(parse_pod(&r, containers), 0);
    opbuf patch;
    opbuf_init(&patch, 1 << 16);
    const char *reason = NULL;
    operr err = {{0}};
    int rc = admrev_patch(&r, w, n, &patch, &reason, &err);
    if (rc != want_ops)
        fprintf(stderr, "admrev_patch: %d (%s)\n", rc, err.msg);
    ASSERT_EQ_INT(rc, want_ops);
    if (want_reason)
        ASSERT_STR_EQ(reason, want_reason);
    cJSON *p = patch.len ? cJSON_Parse(patch.data) : NULL;
    opbuf_release(&patch);
    admrev_release(&r);
    return p;
}

/* Missing parents are added before their members; only annotated containers change. */
static void test_missing_parents_and_other_containers(void)
{
    admrev_want w[] = {{.container = "app", .cpu_req = "0.5", .mem_lim = "1Gi"},
                       {.container = "gone", .cpu_req = "1"}};
    cJSON *p = patch_of("[{\"name\":\"side\"},{\"name\":\"app\"}]", w, 2, 5, NULL);
    assert_json_eq(p, "[{\"op\":\"add\",\"path\":\"/spec/containers/1/resources\",\"value\":{}},"
                      "{\"op\":\"add\",\"path\":\"/spec/containers/1/resources/requests\","
                      "\"value\":{}},"
                      "{\"op\":\"add\",\"path\":\"/spec/containers/1/resources/requests/cpu\","
                      "\"value\":\"500m\"},"
                      "{\"op\":\"add\",\"path\":\"/spec/containers/1/resources/limits\","
                      "\"value\":{}},"
                      "{\"op\":\"add\",\"path\":\"/spec/containers/1/resources/limits/memory\","
                      "\"value\":\"1Gi\"}]");
    cJSON_Delete(p);
    /* resources present, limits present, requests missing */
    admrev_want w2[] = {{.container = "app", .mem_req = "64Mi"}};
    p = patch_of("[{\"name\":\"app\",\"resources\":{\"limits\":{\"memory\":\"128Mi\"}}}]", w2, 1, 2,
                 NULL);
    assert_json_eq(p, "[{\"op\":\"add\",\"path\":\"/spec/containers/0/resources/requests\","
                      "\"value\":{}},"
                      "{\"op\":\"add\",\"path\":\"/spec/containers/0/resources/requests/memory\","
                      "\"value\":\"64Mi\"}]");
    cJSON_Delete(p);
}

/* The pod's own limit below a new request is raised to it; a wanted limit below is a doubt. */
static void test_limit_never_below_request(void)
{
    admrev_want w[] = {{.container = "app", .cpu_req = "300m"}};
    cJSON *p = patch_of("[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"100m\"},"
                        "\"limits\":{\"cpu\":\"200m\"}}}]",
                        w, 1, 2, NULL);
    assert_json_eq(p, "[{\"op\":\"replace\",\"path\":\"/spec/containers/0/resources/requests/cpu\","
                      "\"value\":\"300m\"},"
                      "{\"op\":\"replace\",\"path\":\"/spec/containers/0/resources/limits/cpu\","
                      "\"value\":\"300m\"}]");
    cJSON_Delete(p);
    /* a limit above the new request stays */
    p = patch_of("[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"100m\"},"
                 "\"limits\":{\"cpu\":\"1\"}}}]",
                 w, 1, 1, NULL);
    ASSERT_EQ_INT(cJSON_GetArraySize(p), 1);
    cJSON_Delete(p);
    admrev_want bad[] = {{.container = "app", .mem_req = "1Gi", .mem_lim = "512Mi"}};
    p = patch_of("[{\"name\":\"app\"}]", bad, 1, -EINVAL, "limit-below-request");
    ASSERT_NULL(p);
    /* a wanted limit below the pod's request (no new request) is a doubt too */
    admrev_want bad2[] = {{.container = "app", .cpu_lim = "50m"}};
    p = patch_of("[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"100m\"}}}]", bad2, 1,
                 -EINVAL, "limit-below-request");
    ASSERT_NULL(p);
}

static void test_bad_quantity_and_no_change(void)
{
    admrev_want w[] = {{.container = "app", .cpu_req = "12 cores"}};
    ASSERT_NULL(patch_of("[{\"name\":\"app\"}]", w, 1, -EINVAL, "bad-quantity"));
    admrev_req r;
    ASSERT_EQ_INT(parse_pod(&r, "[{\"name\":\"app\"}]"), 0);
    opbuf pb;
    opbuf_init(&pb, 1024);
    operr err;
    const char *reason;
    ASSERT_EQ_INT(admrev_patch(&r, w, 1, &pb, &reason, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "container 'app': request: quantity \"12 cores\"");
    ASSERT_EQ_INT(pb.len, 0);
    opbuf_release(&pb);
    admrev_release(&r);
    admrev_want neg[] = {{.container = "app", .mem_req = "-1Gi"}};
    ASSERT_NULL(patch_of("[{\"name\":\"app\"}]", neg, 1, -EINVAL, "bad-quantity"));
    /* equal values spelled differently: nothing to do */
    admrev_want same[] = {{.container = "app", .cpu_req = "0.1", .mem_req = "128Mi"}};
    ASSERT_NULL(patch_of("[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"100m\","
                         "\"memory\":\"134217728\"}}}]",
                         same, 1, 0, NULL));
    /* no wanted container in the pod */
    admrev_want other[] = {{.container = "x", .cpu_req = "1"}};
    ASSERT_NULL(patch_of("[{\"name\":\"app\"}]", other, 1, 0, NULL));
}

static void test_ptr_escape(void)
{
    opbuf b;
    opbuf_init(&b, 256);
    ASSERT_EQ_INT(admrev_ptr_escape(&b, "nvidia.com/gpu~x"), 0);
    ASSERT_STR_EQ(b.data, "nvidia.com~1gpu~0x");
    opbuf_reset(&b);
    ASSERT_EQ_INT(admrev_ptr_escape(&b, "~/~1"), 0);
    ASSERT_STR_EQ(b.data, "~0~1~01");
    opbuf_release(&b);
}

static void test_response_unchanged_and_escaped_uid(void)
{
    opbuf b;
    opbuf_init(&b, 1024);
    ASSERT_EQ_INT(admrev_response(&b, "a\"b\\c", NULL, 0), 0);
    ASSERT_STR_EQ(b.data, "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                          "\"response\":{\"uid\":\"a\\\"b\\\\c\",\"allowed\":true}}");
    cJSON *p = response_patch(b.data, "a\"b\\c");
    ASSERT_NULL(p);
    opbuf_release(&b);
}

static void expect_malformed(const char *body, size_t len, int code, const char *msg)
{
    admrev_req r;
    operr err = {{0}};
    ASSERT_EQ_INT(admrev_parse(&r, body, len, &err), code);
    ASSERT_STR_CONTAINS(err.msg, msg);
    ASSERT_NULL(r.root);
    admrev_release(&r);
}

static void test_malformed(void)
{
    expect_malformed("", 0, -EINVAL, "empty body");
    expect_malformed("{nope", 5, -EINVAL, "not JSON");
    expect_malformed("[1]", 3, -EINVAL, "not a JSON object");
    const char *v1beta =
        "{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\"}";
    expect_malformed(v1beta, strlen(v1beta), -EINVAL, "apiVersion \"admission.k8s.io/v1beta1\"");
    const char *kind = "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\"}";
    expect_malformed(kind, strlen(kind), -EINVAL, "kind \"Pod\" is not AdmissionReview");
    const char *noreq = "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}";
    expect_malformed(noreq, strlen(noreq), -EINVAL, "request is missing");
    const char *nouid = "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                        "\"request\":{\"namespace\":\"x\",\"operation\":\"CREATE\"}}";
    expect_malformed(nouid, strlen(nouid), -EINVAL, "request.uid is missing");
    const char *nons = "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                       "\"request\":{\"uid\":\"u\",\"operation\":\"CREATE\"}}";
    expect_malformed(nons, strlen(nons), -EINVAL, "'u': request.namespace is missing");
    expect_malformed("{}", ADMREV_MAX_BODY + 1, -E2BIG, "over the");
}

/* A valid review that is not a pod CREATE parses but is flagged. */
static void test_not_pod_create(void)
{
    const char *upd = "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                      "\"request\":{\"uid\":\"u\",\"namespace\":\"n\",\"operation\":\"UPDATE\","
                      "\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
                      "\"object\":{\"spec\":{\"containers\":[]}}}}";
    admrev_req r;
    ASSERT_EQ_INT(admrev_parse(&r, upd, strlen(upd), NULL), 0);
    ASSERT(!r.is_pod_create);
    ASSERT_NULL(r.owner_kind);
    admrev_release(&r);
}

/* ---- the patches against the fake API server's RFC 6902 (Kubernetes semantics) ---------- */

static int closed_flag;
static void fa_closed(void *ud)
{
    (void)ud;
    closed_flag = 1;
}

static int fa_patch(uv_loop_t *loop, fakeapi *fa, const char *path, const char *patch, int want)
{
    char *req = fakeapi_cli_format("PATCH", path, "application/json-patch+json", patch, NULL);
    fakeapi_cli_result r;
    ASSERT_EQ_INT(
        fakeapi_cli_run(loop, fakeapi_port(fa), fakeapi_ca_pem(fa), 1, req, strlen(req), 0, &r), 0);
    free(req);
    int status = r.status;
    if (status != want)
        fprintf(stderr, "PATCH %s: %d %s\n", path, status, r.body ? r.body : "");
    fakeapi_cli_result_release(&r);
    return status;
}

/* The byte-level scan against the full cJSON parse it replaced (fuzz/admrev_oracle.h): the
 * fixture, the corpus and hand-made bodies aimed at the places a member picker can slip. */
#define HDR       "\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
#define KIND      "\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
#define REQ(rest) "{" HDR "\"request\":{\"uid\":\"u1\",\"namespace\":\"prod\"," rest "}}"
#define POD(meta, spec)                                                                            \
    REQ("\"operation\":\"CREATE\"," KIND "\"object\":{\"metadata\":" meta ",\"spec\":" spec "}")

static void diff_ok(const char *body, size_t len)
{
    char why[512];
    if (admrev_oracle_diff(body, len, why, sizeof why))
        test_fail(__FILE__, __LINE__, "%.*s: %s", (int)(len > 300 ? 300 : len), body, why);
}

static void test_scan_matches_cjson(void)
{
    size_t n;
    char *body = fixture(&n);
    diff_ok(body, n);
    /* every prefix and a few single-byte changes of the fixture */
    for (size_t i = 0; i < n; i += 7)
        diff_ok(body, i);
    for (size_t i = 0; i < n; i += 11) {
        char saved = body[i];
        static const char subs[] = "\"{}[],:0a\\ \x01";
        for (const char *c = subs; *c; c++) {
            body[i] = *c;
            diff_ok(body, n);
        }
        body[i] = saved;
    }
    free(body);

    static const char *const cases[] = {
        /* the shapes admrev_parse must read */
        POD("{\"name\":\"p\",\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"rs\","
            "\"uid\":\"x\",\"controller\":true}]}",
            "{\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"1\"}}}]}"),
        /* duplicates: the first of a name wins, whatever its type */
        "{" HDR "\"request\":5,\"request\":{\"uid\":\"u\",\"namespace\":\"n\","
        "\"operation\":\"CREATE\"}}",
        "{" HDR "\"request\":{\"uid\":\"u\",\"uid\":\"v\",\"namespace\":\"n\",\"namespace\":\"m\","
        "\"operation\":\"CREATE\",\"operation\":\"DELETE\"}}",
        "{\"apiVersion\":1,\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}",
        "{\"kind\":\"X\"," HDR "\"request\":{}}",
        REQ("\"operation\":\"CREATE\"," KIND
            "\"object\":[],\"object\":{\"spec\":{\"containers\":[]}}"),
        POD("[]", "{\"containers\":{}}"),
        POD("{\"name\":1,\"name\":\"b\"}", "{\"containers\":[1,\"x\",null,[],{}]}"),
        POD("{}", "{\"containers\":[],\"containers\":[{\"name\":\"later\"}]}"),
        REQ("\"operation\":\"CREATE\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\","
            "\"kind\":\"X\"},\"kind\":{},\"object\":{}"),
        REQ("\"operation\":\"CREATE\",\"kind\":[],\"object\":{}"),
        /* ownerReferences: only an object whose controller is literally true counts, the first
         * one ends the search even when it lacks a name */
        POD("{\"ownerReferences\":[1,[],{\"controller\":\"true\",\"kind\":\"A\",\"name\":\"a\"},"
            "{\"kind\":\"B\",\"name\":\"b\",\"controller\":true,\"controller\":false}]}",
            "{}"),
        POD("{\"ownerReferences\":[{\"controller\":true,\"kind\":\"A\"},"
            "{\"controller\":true,\"kind\":\"B\",\"name\":\"b\"}]}",
            "{}"),
        POD("{\"ownerReferences\":{\"controller\":true},\"ownerReferences\":[{\"controller\":true,"
            "\"kind\":\"A\",\"name\":\"a\"}]}",
            "{}"),
        POD("{\"ownerReferences\":[{\"controller\":true,\"kind\":\"A\",\"name\":\"a\",\"uid\":7}]}",
            "{}"),
        /* escapes: in keys (cJSON matches the C string, so "uid\u0000x" is "uid") and values */
        "{" HDR "\"request\":{\"u\\u0069d\":\"u\\u00e9\\ud83d\\ude00\",\"uid\\u0000x\":\"no\","
        "\"namespace\":\"n\\u0000hidden\",\"operation\":\"CRE\\u0041TE\"}}",
        "{" HDR "\"request\":{\"uid\":\"\\u0000\",\"namespace\":\"n\",\"operation\":\"X\"}}",
        /* flags and names */
        REQ("\"operation\":\"CREATE\",\"dryRun\":true,\"name\":\"\"," KIND
            "\"object\":{\"metadata\":{\"name\":\"from-meta\"}}"),
        REQ("\"operation\":\"CREATE\",\"dryRun\":\"true\",\"name\":\"req\"," KIND "\"object\":{}"),
        REQ("\"operation\":\"UPDATE\",\"dryRun\":false," KIND "\"object\":{}"),
        /* refusals, in the reference's order */
        "[]",
        "\"s\"",
        "1",
        "null",
        "{}",
        "{\"apiVersion\":\"v1\"}",
        "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Other\"}",
        "{" HDR "\"request\":[]}",
        "{" HDR "\"request\":{\"uid\":\"\"}}",
        "{" HDR "\"request\":{\"uid\":\"u\",\"namespace\":5}}",
        "{" HDR "\"request\":{\"uid\":\"u\",\"namespace\":\"n\"}}",
        "{" HDR "\"request\":{\"uid\":\"0123456789012345678901234567890123456789012345678901234567"
        "890123456789012345678901234567890123456789012345678901234567890123456789\"}}",
        /* cJSON takes these, the strict scan does not (and must say "not JSON") */
        REQ("\"operation\":\"CREATE\"") " trailing",
        REQ("\"operation\":\"CREATE\",\"n\":01"),
        REQ("\"operation\":\"CRE\x01TE\""),
        "{" HDR "\"request\":{\"uid\":\"u\",\"namespace\":\"n\",\"operation\":\"C\"}",
        "\xef\xbb\xbf{}",
        "",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        diff_ok(cases[i], strlen(cases[i]));

    /* What the scan reads on two of them, spelled out. */
    admrev_req r;
    operr err = {{0}};
    const char *c0 = cases[0];
    ASSERT_EQ_INT(admrev_parse(&r, c0, strlen(c0), &err), 0);
    ASSERT_STR_EQ(r.owner_kind, "ReplicaSet");
    ASSERT_STR_EQ(r.owner_uid, "x");
    ASSERT_STR_EQ(r.name, "p");
    ASSERT(r.is_pod_create);
    ASSERT_EQ_INT(cJSON_GetArraySize(r.containers), 1);
    admrev_release(&r);
    const char *esc = cases[15];
    ASSERT_EQ_INT(admrev_parse(&r, esc, strlen(esc), &err), 0);
    ASSERT_STR_EQ(r.uid, "u\xc3\xa9\xf0\x9f\x98\x80");
    ASSERT_STR_EQ(r.ns, "n");
    ASSERT_STR_EQ(r.operation, "CREATE");
    admrev_release(&r);
    const char *trailing = REQ("\"operation\":\"CREATE\"") " trailing";
    ASSERT_EQ_INT(admrev_parse(&r, trailing, strlen(trailing), &err), -EINVAL);
    ASSERT_STR_EQ(err.msg, "AdmissionReview: body is not JSON");
    ASSERT_NULL(r.root);
    ASSERT_NULL(r.strs);

    /* Deep nesting in a member nobody reads: at the cap both take it, past it both refuse. */
    for (int depth = JSCAN_DEPTH_MAX - 2; depth <= JSCAN_DEPTH_MAX + 1; depth++) {
        opbuf b;
        opbuf_init(&b, 1 << 20);
        opbuf_puts(&b, "{" HDR "\"request\":{\"uid\":\"u\",\"namespace\":\"n\",\"operation\":\"X\","
                       "\"deep\":");
        for (int i = 0; i < depth; i++)
            opbuf_puts(&b, "[");
        for (int i = 0; i < depth; i++)
            opbuf_puts(&b, "]");
        opbuf_puts(&b, "}}");
        diff_ok(b.data, b.len);
        opbuf_release(&b);
    }
}

/* Seed the fixture's pod under a name, patch it with what admrev builds, read it back. */
static void test_patches_apply_on_fake_server(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fakeapi *fa;
    ASSERT_EQ_INT(fakeapi_start(&fa, &loop, NULL), 0);
    size_t n;
    char *body = fixture(&n);
    admrev_req r;
    cJSON *whole = cJSON_ParseWithLength(body, n);
    cJSON *pod = cJSON_DetachItemFromObject(cJSON_GetObjectItem(whole, "request"), "object");
    ASSERT_NOT_NULL(pod);
    cJSON_Delete(whole);
    cJSON *meta = cJSON_GetObjectItem(pod, "metadata");
    cJSON_AddStringToObject(meta, "name", "web-app-d6d4b97cf-abcde");
    /* stored as a look-alike kind: pods themselves are immutable after creation (the fake
     * server enforces it), and what is tested here is the RFC 6902 semantics */
    ASSERT_EQ_INT(fakeapi_register_kind(fa, "test.optipod.io/v1", "PodCopy", "podcopies", 1), 0);
    cJSON_ReplaceItemInObject(pod, "apiVersion", cJSON_CreateString("test.optipod.io/v1"));
    cJSON_ReplaceItemInObject(pod, "kind", cJSON_CreateString("PodCopy"));
    /* a second container without resources, to need the parents */
    cJSON *cs = cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "spec"), "containers");
    cJSON_AddItemToArray(cs, cJSON_Parse("{\"name\":\"side\",\"image\":\"busybox\"}"));
    ASSERT_EQ_INT(fakeapi_put(fa, pod), 0);
    /* parse the seeded pod as a review object again so indexes match */
    opbuf review;
    opbuf_init(&review, 1 << 20);
    char *ps = cJSON_PrintUnformatted(pod);
    opbuf_printf(&review,
                 "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                 "\"request\":{\"uid\":\"u\",\"namespace\":\"prod\",\"operation\":\"CREATE\","
                 "\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},\"object\":%s}}",
                 ps);
    free(ps);
    cJSON_Delete(pod);
    ASSERT_EQ_INT(admrev_parse(&r, review.data, review.len, NULL), 0);
    admrev_want w[] = {{.container = "nginx", .cpu_req = "250m", .mem_req = "512Mi"},
                       {.container = "side", .cpu_req = "10m", .mem_lim = "32Mi"}};
    opbuf patch;
    opbuf_init(&patch, 1 << 16);
    ASSERT_EQ_INT(admrev_patch(&r, w, 2, &patch, NULL, NULL), 7);
    const char *path = "/apis/test.optipod.io/v1/namespaces/prod/podcopies/web-app-d6d4b97cf-abcde";
    /* the parents are needed: the leaf ops alone are refused like Kubernetes does */
    ASSERT_EQ_INT(fa_patch(&loop, fa, path,
                           "[{\"op\":\"add\",\"path\":\"/spec/containers/1/resources/requests/"
                           "cpu\",\"value\":\"10m\"}]",
                           422),
                  422);
    ASSERT_EQ_INT(fa_patch(&loop, fa, path, patch.data, 200), 200);
    const cJSON *live = fakeapi_get(fa, path);
    ASSERT_NOT_NULL(live);
    const cJSON *lc = cJSON_GetObjectItem(cJSON_GetObjectItem(live, "spec"), "containers");
    char *got = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(lc, 0), "resources"));
    ASSERT_STR_EQ(got, "{\"requests\":{\"cpu\":\"250m\",\"memory\":\"512Mi\"}}");
    free(got);
    got = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(lc, 1), "resources"));
    ASSERT_STR_EQ(got, "{\"requests\":{\"cpu\":\"10m\"},\"limits\":{\"memory\":\"32Mi\"}}");
    free(got);
    opbuf_release(&patch);
    opbuf_release(&review);
    admrev_release(&r);
    free(body);
    closed_flag = 0;
    fakeapi_stop(fa, fa_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed_flag, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    TEST_RUN(test_parse_fixture);
    TEST_RUN(test_fixture_patch);
    TEST_RUN(test_missing_parents_and_other_containers);
    TEST_RUN(test_limit_never_below_request);
    TEST_RUN(test_bad_quantity_and_no_change);
    TEST_RUN(test_ptr_escape);
    TEST_RUN(test_response_unchanged_and_escaped_uid);
    TEST_RUN(test_malformed);
    TEST_RUN(test_not_pod_create);
    TEST_RUN(test_patches_apply_on_fake_server);
    TEST_RUN(test_scan_matches_cjson);
    return test_summary();
}
