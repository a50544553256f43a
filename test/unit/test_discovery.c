/*
 * kdisc: the /version and APIResourceList parsers on realistic documents, and
 * the cache against the fake API server (a hook answers the discovery paths
 * the way a 1.33 server does, or a 1.24 one): answers, freshness, refresh
 * interval, failures keeping the previous answer, optional APIs (present,
 * 404), free with requests in flight.
 */
#include "test.h"
#include "support/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "apply/resize.h"
#include "http/http.h"
#include "kube/config.h"
#include "kube/discovery.h"
#include "kube/rest.h"
#include "support/fakeapi.h"
#include "util/buf.h"

/* ---- documents ----------------------------------------------------------------------------- */

static const char *version_124 =
    "{\n  \"major\": \"1\",\n  \"minor\": \"24\",\n  \"gitVersion\": \"v1.24.17\",\n"
    "  \"gitCommit\": \"22a9682c8fe855c321be75c5faacde343f909b04\",\n"
    "  \"gitTreeState\": \"clean\",\n  \"buildDate\": \"2023-08-23T23:37:25Z\",\n"
    "  \"goVersion\": \"go1.20.7\",\n  \"compiler\": \"gc\",\n  \"platform\": \"linux/amd64\"\n}";

static const char *version_133 =
    "{\"major\":\"1\",\"minor\":\"33\",\"emulationMajor\":\"1\",\"emulationMinor\":\"33\","
    "\"minCompatibilityMajor\":\"1\",\"minCompatibilityMinor\":\"32\",\"gitVersion\":\"v1.33.1\","
    "\"gitCommit\":\"8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828\",\"gitTreeState\":\"clean\","
    "\"buildDate\":\"2025-05-15T08:19:08Z\",\"goVersion\":\"go1.24.2\",\"compiler\":\"gc\","
    "\"platform\":\"linux/arm64\"}";

/* A GKE-style answer: minor with a "+" suffix. */
static const char *version_gke =
    "{\"major\":\"1\",\"minor\":\"27+\",\"gitVersion\":\"v1.27.3-gke.100\","
    "\"platform\":\"linux/amd64\"}";

/* Empty major/minor (some dev builds): gitVersion decides. */
static const char *version_git_only =
    "{\"major\":\"\",\"minor\":\"\",\"gitVersion\":\"v1.30.0-alpha.2\"}";

#define POD_RESOURCES(EXTRA)                                                                       \
    "{\"name\":\"pods\",\"singularName\":\"pod\",\"namespaced\":true,\"kind\":\"Pod\","            \
    "\"verbs\":[\"create\",\"delete\",\"deletecollection\",\"get\",\"list\",\"patch\","            \
    "\"update\",\"watch\"],\"shortNames\":[\"po\"],\"categories\":[\"all\"],"                      \
    "\"storageVersionHash\":\"xPOwRZ+Yhw8=\"},"                                                    \
    "{\"name\":\"pods/attach\",\"singularName\":\"\",\"namespaced\":true,\"kind\":"                \
    "\"PodAttachOptions\",\"verbs\":[\"create\",\"get\"]},"                                        \
    "{\"name\":\"pods/binding\",\"singularName\":\"\",\"namespaced\":true,\"kind\":\"Binding\","   \
    "\"verbs\":[\"create\"]},"                                                                     \
    "{\"name\":\"pods/ephemeralcontainers\",\"singularName\":\"\",\"namespaced\":true,"            \
    "\"kind\":\"Pod\",\"verbs\":[\"get\",\"patch\",\"update\"]},"                                  \
    "{\"name\":\"pods/eviction\",\"singularName\":\"\",\"namespaced\":true,\"group\":\"policy\","  \
    "\"version\":\"v1\",\"kind\":\"Eviction\",\"verbs\":[\"create\"]},"                            \
    "{\"name\":\"pods/exec\",\"singularName\":\"\",\"namespaced\":true,\"kind\":"                  \
    "\"PodExecOptions\",\"verbs\":[\"create\",\"get\"]},"                                          \
    "{\"name\":\"pods/log\",\"singularName\":\"\",\"namespaced\":true,\"kind\":\"Pod\","           \
    "\"verbs\":[\"get\"]},"                                                                        \
    "{\"name\":\"pods/portforward\",\"singularName\":\"\",\"namespaced\":true,\"kind\":"           \
    "\"PodPortForwardOptions\",\"verbs\":[\"create\",\"get\"]},"                                   \
    "{\"name\":\"pods/proxy\",\"singularName\":\"\",\"namespaced\":true,\"kind\":"                 \
    "\"PodProxyOptions\",\"verbs\":[\"create\",\"delete\",\"get\",\"patch\",\"update\"]}," EXTRA   \
    "{\"name\":\"pods/status\",\"singularName\":\"\",\"namespaced\":true,\"kind\":\"Pod\","        \
    "\"verbs\":[\"get\",\"patch\",\"update\"]}"

static const char *core_133 =
    "{\"kind\":\"APIResourceList\",\"groupVersion\":\"v1\",\"resources\":["
    "{\"name\":\"bindings\",\"singularName\":\"binding\",\"namespaced\":true,\"kind\":"
    "\"Binding\",\"verbs\":[\"create\"]},"
    "{\"name\":\"configmaps\",\"singularName\":\"configmap\",\"namespaced\":true,\"kind\":"
    "\"ConfigMap\",\"verbs\":[\"create\",\"delete\",\"deletecollection\",\"get\",\"list\","
    "\"patch\",\"update\",\"watch\"],\"shortNames\":[\"cm\"],\"storageVersionHash\":"
    "\"qFsyl6wFWjQ=\"},"
    "{\"name\":\"namespaces\",\"singularName\":\"namespace\",\"namespaced\":false,\"kind\":"
    "\"Namespace\",\"verbs\":[\"create\",\"delete\",\"get\",\"list\",\"patch\",\"update\","
    "\"watch\"],\"shortNames\":[\"ns\"]}," POD_RESOURCES(
        "{\"name\":\"pods/resize\",\"singularName\":\"\",\"namespaced\":true,\"kind\":\"Pod\","
        "\"verbs\":[\"get\",\"patch\",\"update\"]},") "]}";

static const char *core_124 =
    "{\"kind\":\"APIResourceList\",\"groupVersion\":\"v1\",\"resources\":["
    "{\"name\":\"bindings\",\"singularName\":\"\",\"namespaced\":true,\"kind\":\"Binding\","
    "\"verbs\":[\"create\"]}," POD_RESOURCES("") "]}";

/* pods/resize listed but read-only (a hypothetical RBAC-trimmed aggregator). */
static const char *core_resize_get_only =
    "{\"kind\":\"APIResourceList\",\"groupVersion\":\"v1\",\"resources\":["
    "{\"name\":\"pods/resize\",\"singularName\":\"\",\"namespaced\":true,\"kind\":\"Pod\","
    "\"verbs\":[\"get\"]}]}";

static const char *argo_v1alpha1 =
    "{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":"
    "\"argoproj.io/v1alpha1\",\"resources\":["
    "{\"name\":\"applications\",\"singularName\":\"application\",\"namespaced\":true,\"kind\":"
    "\"Application\",\"verbs\":[\"delete\",\"deletecollection\",\"get\",\"list\",\"patch\","
    "\"create\",\"update\",\"watch\"],\"shortNames\":[\"app\",\"apps\"],\"storageVersionHash\":"
    "\"QJ1DCaaH5WU=\"},"
    "{\"name\":\"applicationsets\",\"singularName\":\"applicationset\",\"namespaced\":true,"
    "\"kind\":\"ApplicationSet\",\"verbs\":[\"delete\",\"deletecollection\",\"get\",\"list\","
    "\"patch\",\"create\",\"update\",\"watch\"],\"shortNames\":[\"appset\",\"appsets\"]},"
    "{\"name\":\"appprojects\",\"singularName\":\"appproject\",\"namespaced\":true,\"kind\":"
    "\"AppProject\",\"verbs\":[\"delete\",\"deletecollection\",\"get\",\"list\",\"patch\","
    "\"create\",\"update\",\"watch\"],\"shortNames\":[\"appproj\",\"appprojs\"]}]}";

static const char *notfound_status =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
    "\"message\":\"the server could not find the requested resource\",\"reason\":\"NotFound\","
    "\"details\":{},\"code\":404}";

/* ---- parsers ------------------------------------------------------------------------------- */

static void test_version_docs(void)
{
    kdisc_version v;
    operr err = {{0}};
    ASSERT_EQ_INT(kdisc_parse_version(version_124, strlen(version_124), &v, &err), 0);
    ASSERT_EQ_INT(v.major, 1);
    ASSERT_EQ_INT(v.minor, 24);
    ASSERT_STR_EQ(v.git_version, "v1.24.17");
    ASSERT_STR_EQ(v.platform, "linux/amd64");

    ASSERT_EQ_INT(kdisc_parse_version(version_133, strlen(version_133), &v, &err), 0);
    ASSERT_EQ_INT(v.minor, 33);
    ASSERT_STR_EQ(v.platform, "linux/arm64");

    ASSERT_EQ_INT(kdisc_parse_version(version_gke, strlen(version_gke), &v, &err), 0);
    ASSERT_EQ_INT(v.major, 1);
    ASSERT_EQ_INT(v.minor, 27);
    ASSERT_STR_EQ(v.git_version, "v1.27.3-gke.100");

    ASSERT_EQ_INT(kdisc_parse_version(version_git_only, strlen(version_git_only), &v, &err), 0);
    ASSERT_EQ_INT(v.major, 1);
    ASSERT_EQ_INT(v.minor, 30);

    /* The parser honours the length: a prefix is not a document. */
    ASSERT_EQ_INT(kdisc_parse_version(version_124, 20, &v, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "version document");
    ASSERT_EQ_INT(v.major, 0);
    const char *bad[] = {"[]",
                         "{}",
                         "{\"major\":\"x\",\"minor\":\"1\"}",
                         "{\"gitVersion\":\"latest\"}",
                         "{\"major\":1,\"minor\":24}",
                         "null",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        operr_clear(&err);
        ASSERT_EQ_INT(kdisc_parse_version(bad[i], strlen(bad[i]), &v, &err), -EINVAL);
        ASSERT(err.msg[0] != '\0');
    }
}

static void test_version_cmp(void)
{
    kdisc_version v = {.major = 1, .minor = 27};
    ASSERT_EQ_INT(kdisc_version_cmp(&v, 1, 27), 0);
    ASSERT_CMP_INT(kdisc_version_cmp(&v, 1, 32), <, 0);
    ASSERT_CMP_INT(kdisc_version_cmp(&v, 1, 26), >, 0);
    ASSERT_CMP_INT(kdisc_version_cmp(&v, 2, 0), <, 0);
    kdisc_version unknown = {0};
    ASSERT_CMP_INT(kdisc_version_cmp(&unknown, 0, 0), <, 0);
    ASSERT_CMP_INT(kdisc_version_cmp(NULL, 1, 0), <, 0);
}

static void test_resource_lists(void)
{
    unsigned verbs = 0;
    operr err = {{0}};
    ASSERT_EQ_INT(
        kdisc_find_resource(core_133, strlen(core_133), "v1", "pods/resize", &verbs, &err), 1);
    ASSERT_EQ_INT(verbs, KDISC_VERB_GET | KDISC_VERB_PATCH | KDISC_VERB_UPDATE);
    ASSERT_EQ_INT(kdisc_find_resource(core_133, strlen(core_133), "v1", "pods", &verbs, &err), 1);
    ASSERT_EQ_INT(verbs, 0xffu);
    ASSERT_EQ_INT(
        kdisc_find_resource(core_124, strlen(core_124), "v1", "pods/resize", &verbs, &err), 0);
    ASSERT_EQ_INT(verbs, 0);
    ASSERT_EQ_INT(
        kdisc_find_resource(core_124, strlen(core_124), NULL, "pods/status", &verbs, &err), 1);
    ASSERT_EQ_INT(verbs, KDISC_VERB_GET | KDISC_VERB_PATCH | KDISC_VERB_UPDATE);
    ASSERT_EQ_INT(kdisc_find_resource(argo_v1alpha1, strlen(argo_v1alpha1), "argoproj.io/v1alpha1",
                                      "applications", NULL, &err),
                  1);
    ASSERT_EQ_INT(kdisc_find_resource(argo_v1alpha1, strlen(argo_v1alpha1), "argoproj.io/v1alpha1",
                                      "rollouts", NULL, &err),
                  0);

    /* Another groupVersion is an error, not an absence. */
    operr_clear(&err);
    ASSERT_EQ_INT(
        kdisc_find_resource(argo_v1alpha1, strlen(argo_v1alpha1), "v1", "applications", NULL, &err),
        -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "argoproj.io/v1alpha1");
    /* A Status (404 body) or an APIGroupList are not resource lists. */
    ASSERT_EQ_INT(
        kdisc_find_resource(notfound_status, strlen(notfound_status), NULL, "pods", NULL, &err),
        -EINVAL);
    const char *group_list = "{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[]}";
    ASSERT_EQ_INT(kdisc_find_resource(group_list, strlen(group_list), NULL, "pods", NULL, &err),
                  -EINVAL);
    ASSERT_EQ_INT(kdisc_find_resource(core_133, strlen(core_133) / 2, "v1", "pods", NULL, &err),
                  -EINVAL);
    /* Odd entries are skipped, not fatal. */
    const char *odd = "{\"groupVersion\":\"v1\",\"resources\":[1,{\"name\":7},"
                      "{\"name\":\"pods/resize\",\"verbs\":\"patch\"},"
                      "{\"name\":\"x\",\"verbs\":[\"patch\",3,\"fly\"]}]}";
    ASSERT_EQ_INT(kdisc_find_resource(odd, strlen(odd), "v1", "pods/resize", &verbs, &err), 1);
    ASSERT_EQ_INT(verbs, 0);
    ASSERT_EQ_INT(kdisc_find_resource(odd, strlen(odd), "v1", "x", &verbs, &err), 1);
    ASSERT_EQ_INT(verbs, KDISC_VERB_PATCH);
    ASSERT_EQ_INT(kdisc_find_resource(core_resize_get_only, strlen(core_resize_get_only), "v1",
                                      "pods/resize", &verbs, &err),
                  1);
    ASSERT_EQ_INT(verbs, KDISC_VERB_GET);
    ASSERT_EQ_INT(kdisc_verb_bit("deletecollection"), KDISC_VERB_DELETECOLLECTION);
    ASSERT_EQ_INT(kdisc_verb_bit("PATCH"), 0);
    ASSERT_EQ_INT(kdisc_verb_bit(NULL), 0);
}

/* ---- the cache against the fake server ------------------------------------------------------ */

static uv_loop_t loop;
static fakeapi *fa;
static ophttp_client *http;
static kcfg cfg;
static krest *rest;
static char tmpdir[64];

/* What the hook serves. */
static struct {
    const char *version, *core, *argo; /* NULL = 404 */
    int core_status;                   /* non-zero: answer /api/v1 with this status */
    unsigned delay_ms;                 /* answer /version after this long */
    uv_timer_t timer;
    ophttpd_req *delayed;
} srv;

static void answer(ophttpd_req *req, int status, const char *body)
{
    ophttpd_respond(req, status, "application/json", body, strlen(body), NULL);
}

static void on_delay(uv_timer_t *t)
{
    if (srv.delayed)
        answer(srv.delayed, 200, srv.version);
    srv.delayed = NULL;
}

static int disc_hook(fakeapi *f, ophttpd_req *req, void *ud)
{
    const char *p = ophttpd_path(req);
    if (strcmp(ophttpd_method(req), "GET") != 0)
        return 0;
    if (strcmp(p, "/version") == 0) {
        if (srv.delay_ms) {
            srv.delayed = req;
            uv_timer_start(&srv.timer, on_delay, srv.delay_ms, 0);
            return 1;
        }
        answer(req, 200, srv.version);
    } else if (strcmp(p, "/api/v1") == 0) {
        if (srv.core_status)
            answer(req, srv.core_status,
                   "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                   "\"message\":\"etcdserver: request timed out\",\"reason\":\"InternalError\","
                   "\"code\":500}");
        else
            answer(req, 200, srv.core);
    } else if (strcmp(p, "/apis/argoproj.io/v1alpha1") == 0) {
        answer(req, srv.argo ? 200 : 404, srv.argo ? srv.argo : notfound_status);
    } else if (strncmp(p, "/apis/", 6) == 0 && strchr(p + 6, '/') &&
               !strchr(strchr(p + 6, '/') + 1, '/')) {
        answer(req, 404, notfound_status); /* any other /apis/G/V: not served */
    } else {
        return 0;
    }
    return 1;
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

static void setup(void)
{
    memset(&srv, 0, sizeof(srv));
    srv.version = version_133;
    srv.core = core_133;
    srv.argo = argo_v1alpha1;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    ASSERT_EQ_INT(uv_timer_init(&loop, &srv.timer), 0);
    ASSERT_EQ_INT(fakeapi_start(&fa, &loop, NULL), 0);
    fakeapi_set_hook(fa, disc_hook, NULL);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_discovery.XXXXXX");
    ASSERT_NOT_NULL(mkdtemp(tmpdir));
    char path[128];
    snprintf(path, sizeof(path), "%s/kubeconfig", tmpdir);
    ASSERT_EQ_INT(fakeapi_write_kubeconfig(fa, path, NULL), 0);
    kcfg_init(&cfg);
    operr err = {{0}};
    ASSERT_EQ_INT(kcfg_load_file(&cfg, path, NULL, &err), 0);
    ASSERT_EQ_INT(ophttp_client_new(&http, &loop, NULL), 0);
    ASSERT_EQ_INT(krest_new(&rest, http, &cfg, &err), 0);
    unlink(path);
    rmdir(tmpdir);
}

static void teardown(void)
{
    int closed = 0, fclosed = 0;
    krest_free(rest);
    rest = NULL;
    ophttp_client_close(http, on_closed, &closed);
    if (srv.delayed) {
        answer(srv.delayed, 503, "{}");
        srv.delayed = NULL;
    }
    fakeapi_stop(fa, on_closed, &fclosed);
    uv_close((uv_handle_t *)&srv.timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(fclosed, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    kcfg_release(&cfg);
}

typedef struct done_ctx {
    int calls, ok;
} done_ctx;

static void on_done(kdisc *d, int ok, void *ud)
{
    done_ctx *c = ud;
    c->calls++;
    c->ok = ok;
}

static void test_cache_discovers(void)
{
    setup();
    kdisc *d;
    ASSERT_EQ_INT(kdisc_new(&d, rest, 60000), 0);
    ASSERT_EQ_INT(kdisc_want(d, "argoproj.io/v1alpha1", "applications"), 0);
    ASSERT_EQ_INT(kdisc_want(d, "kustomize.toolkit.fluxcd.io/v1", "kustomizations"), 1);
    ASSERT_EQ_INT(kdisc_want(d, "argoproj.io/v1alpha1", "applications"), 0);
    ASSERT_EQ_INT(kdisc_want(d, "noslash", "x"), -EINVAL);
    ASSERT_EQ_INT(kdisc_want(d, "a.io/v1?x=1", "things"), -EINVAL);
    ASSERT_EQ_INT(kdisc_want(d, "a.io/v1/extra", "things"), -EINVAL);
    ASSERT_EQ_INT(kdisc_want(d, "a.io/v1", "Things"), -EINVAL);
    ASSERT_EQ_INT(kdisc_want(d, "a.io/v1", ""), -EINVAL);
    ASSERT_EQ_INT(kdisc_has(d, "argoproj.io/v1alpha1", "applications"), KDISC_UNKNOWN);

    kdisc_info info;
    kdisc_get(d, &info);
    ASSERT_EQ_INT(info.pods_resize, KDISC_UNKNOWN);
    ASSERT_EQ_INT(resize_mode_for(&info, 1), RESIZE_MODE_NONE); /* never assume */

    done_ctx c = {0};
    ASSERT_EQ_INT(kdisc_refresh(d, 1000, 0, on_done, &c), 0);
    ASSERT(kdisc_busy(d));
    ASSERT(tloop_until_flag(&loop, &c.calls, 5000));
    ASSERT_EQ_INT(c.calls, 1);
    ASSERT_EQ_INT(c.ok, 1);
    ASSERT(!kdisc_busy(d));
    kdisc_get(d, &info);
    ASSERT_EQ_INT(info.have_version, 1);
    ASSERT_EQ_INT(info.version.major, 1);
    ASSERT_EQ_INT(info.version.minor, 33);
    ASSERT_EQ_INT(info.pods_resize, KDISC_YES);
    ASSERT_EQ_INT(info.resize_verbs & KDISC_VERB_PATCH, KDISC_VERB_PATCH);
    ASSERT_EQ_INT(info.refreshed_ms, 1000);
    ASSERT_EQ_INT(kdisc_has(d, "argoproj.io/v1alpha1", "applications"), KDISC_YES);
    ASSERT_EQ_INT(kdisc_has(d, "kustomize.toolkit.fluxcd.io/v1", "kustomizations"), KDISC_NO);
    ASSERT_EQ_INT(kdisc_has(d, "other.io/v1", "things"), KDISC_UNKNOWN);
    ASSERT_STR_EQ(kdisc_last_error(d), "");
    ASSERT_EQ_INT(resize_mode_for(&info, 0), RESIZE_MODE_SUBRESOURCE);
    ASSERT_EQ_INT(fakeapi_count(fa, "GET", "/version"), 1);
    ASSERT_EQ_INT(fakeapi_count(fa, "GET", "/api/v1"), 1);
    ASSERT_EQ_INT(fakeapi_count(fa, "GET", "/apis/argoproj.io/v1alpha1"), 1);
    ASSERT_EQ_INT(fakeapi_count(fa, "GET", "/apis/kustomize.toolkit.fluxcd.io/v1"), 1);

    /* Fresh: nothing asked, no callback. */
    c.calls = 0;
    ASSERT_EQ_INT(kdisc_refresh(d, 30000, 0, on_done, &c), 1);
    ASSERT(!kdisc_busy(d));
    ASSERT_EQ_INT(fakeapi_count(fa, "GET", "/version"), 1);

    /* Stale after the interval: the server is now a 1.24 without argo. */
    srv.version = version_124;
    srv.core = core_124;
    srv.argo = NULL;
    ASSERT_EQ_INT(kdisc_refresh(d, 61000, 0, on_done, &c), 0);
    ASSERT(tloop_until_flag(&loop, &c.calls, 5000));
    ASSERT_EQ_INT(c.ok, 1);
    kdisc_get(d, &info);
    ASSERT_EQ_INT(info.version.minor, 24);
    ASSERT_EQ_INT(info.pods_resize, KDISC_NO);
    ASSERT_EQ_INT(info.refreshed_ms, 61000);
    ASSERT_EQ_INT(kdisc_has(d, "argoproj.io/v1alpha1", "applications"), KDISC_NO);
    ASSERT_EQ_INT(resize_mode_for(&info, 1), RESIZE_MODE_NONE); /* 1.24: no resize at all */
    ASSERT_EQ_INT(fakeapi_count(fa, "GET", "/version"), 2);

    /* A newly wanted API makes the cache stale. */
    ASSERT_EQ_INT(kdisc_want(d, "argoproj.io/v1alpha1", "appprojects"), 2);
    c.calls = 0;
    srv.argo = argo_v1alpha1;
    ASSERT_EQ_INT(kdisc_refresh(d, 62000, 0, on_done, &c), 0);
    ASSERT(tloop_until_flag(&loop, &c.calls, 5000));
    ASSERT_EQ_INT(kdisc_has(d, "argoproj.io/v1alpha1", "appprojects"), KDISC_YES);
    kdisc_free(d);
    teardown();
}

static void test_cache_failure_keeps_answers(void)
{
    setup();
    kdisc *d;
    ASSERT_EQ_INT(kdisc_new(&d, rest, 0), 0);
    done_ctx c = {0};
    ASSERT_EQ_INT(kdisc_refresh(d, 5, 0, on_done, &c), 0);
    ASSERT(tloop_until_flag(&loop, &c.calls, 5000));
    ASSERT_EQ_INT(c.ok, 1);

    /* /api/v1 fails: the previous answer stays, the refresh reports it. */
    srv.core_status = 500;
    srv.version = version_gke;
    c.calls = 0;
    ASSERT_EQ_INT(kdisc_refresh(d, 10, 1, on_done, &c), 0);
    ASSERT(tloop_until_flag(&loop, &c.calls, 5000));
    ASSERT_EQ_INT(c.ok, 0);
    kdisc_info info;
    kdisc_get(d, &info);
    ASSERT_EQ_INT(info.pods_resize, KDISC_YES);
    ASSERT_EQ_INT(info.version.minor, 27); /* the GET that worked was applied */
    ASSERT_STR_CONTAINS(kdisc_last_error(d), "/api/v1");
    ASSERT_STR_CONTAINS(kdisc_last_error(d), "500");

    /* A garbage answer is an error too, never a "no". */
    srv.core_status = 0;
    srv.core = "{\"kind\":\"Status\"}";
    c.calls = 0;
    ASSERT_EQ_INT(kdisc_refresh(d, 20, 1, on_done, &c), 0);
    ASSERT(tloop_until_flag(&loop, &c.calls, 5000));
    ASSERT_EQ_INT(c.ok, 0);
    kdisc_get(d, &info);
    ASSERT_EQ_INT(info.pods_resize, KDISC_YES);

    /* Clean again: the error clears. 1.27 without the subresource → pod PATCH when allowed. */
    srv.core = core_124;
    c.calls = 0;
    ASSERT_EQ_INT(kdisc_refresh(d, 30, 1, on_done, &c), 0);
    ASSERT(tloop_until_flag(&loop, &c.calls, 5000));
    ASSERT_EQ_INT(c.ok, 1);
    ASSERT_STR_EQ(kdisc_last_error(d), "");
    kdisc_get(d, &info);
    ASSERT_EQ_INT(info.pods_resize, KDISC_NO);
    ASSERT_EQ_INT(resize_mode_for(&info, 1), RESIZE_MODE_POD_PATCH);
    ASSERT_EQ_INT(resize_mode_for(&info, 0), RESIZE_MODE_NONE);

    /* Listed without "patch": not usable. */
    srv.core = core_resize_get_only;
    c.calls = 0;
    ASSERT_EQ_INT(kdisc_refresh(d, 40, 1, on_done, &c), 0);
    ASSERT(tloop_until_flag(&loop, &c.calls, 5000));
    kdisc_get(d, &info);
    ASSERT_EQ_INT(info.pods_resize, KDISC_NO);
    ASSERT_EQ_INT(info.resize_verbs, KDISC_VERB_GET);
    kdisc_free(d);
    teardown();
}

static int request_held(void *ud)
{
    (void)ud;
    return srv.delayed != NULL;
}

static void test_cache_waiters_and_free_in_flight(void)
{
    setup();
    srv.delay_ms = 100;
    kdisc *d;
    ASSERT_EQ_INT(kdisc_new(&d, rest, 0), 0);
    done_ctx a = {0}, b = {0};
    ASSERT_EQ_INT(kdisc_refresh(d, 1, 0, on_done, &a), 0);
    ASSERT_EQ_INT(kdisc_refresh(d, 2, 0, on_done, &b), 0); /* joins the running refresh */
    ASSERT_EQ_INT(kdisc_refresh(d, 2, 0, NULL, NULL), 0);
    for (int i = 2; i < KDISC_MAX_WAITERS; i++)
        ASSERT_EQ_INT(kdisc_refresh(d, 2, 0, on_done, &b), 0);
    ASSERT_EQ_INT(kdisc_refresh(d, 2, 0, on_done, &b), -EBUSY);
    ASSERT(tloop_until_flag(&loop, &a.calls, 5000));
    ASSERT_EQ_INT(a.calls, 1);
    ASSERT_EQ_INT(b.calls, KDISC_MAX_WAITERS - 1);
    ASSERT_EQ_INT(fakeapi_count(fa, "GET", "/version"), 1);

    /* Freed while /version is still being answered: no callback, nothing leaks.
     * The server holds it long enough that even a slow run sees it in flight. */
    srv.delay_ms = 30000;
    done_ctx c = {0};
    ASSERT_EQ_INT(kdisc_refresh(d, 3, 1, on_done, &c), 0);
    /* Let the requests go out: the server holds /version for delay_ms. */
    ASSERT(tloop_until(&loop, request_held, NULL, 5000));
    kdisc_free(d);
    uv_run(&loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(c.calls, 0);
    teardown();
}

static void test_new_rejects(void)
{
    kdisc *d = (kdisc *)1;
    ASSERT_EQ_INT(kdisc_new(&d, NULL, 0), -EINVAL);
    ASSERT(d == NULL);
    kdisc_free(NULL);
}

int main(void)
{
    TEST_RUN(test_version_docs);
    TEST_RUN(test_version_cmp);
    TEST_RUN(test_resource_lists);
    TEST_RUN(test_new_rejects);
    TEST_RUN(test_cache_discovers);
    TEST_RUN(test_cache_failure_keeps_answers);
    TEST_RUN(test_cache_waiters_and_free_in_flight);
    return test_summary();
}
