/*
 * kprojs against kref_from_json(): every input projected both ways must give
 * the same result code and, on success, the same projection field by field
 * (kprojs_diff). Inputs: the recorded API server fixtures, generated
 * Deployments, hand-written pods (OOMKilled, resize conditions) and edge
 * cases (escapes, unicode, "\u0000", duplicates, nulls, numbers as
 * quantities, arrays past the 65535 cap). The documented differences (strict
 * JSON, the DOM path's double-PodResizePending failure) are pinned too.
 */
#include <cJSON.h>
#include <errno.h>
#include <stdint.h>

#include "fuzz/kref.h"
#include "kube/projscan.h"
#include "support/gen.h"
#include "test.h"
#include "util/buf.h"

static const enum kproj_kind all_kinds[] = {
    KPROJ_UNKNOWN, KPROJ_DEPLOYMENT, KPROJ_STATEFULSET, KPROJ_DAEMONSET, KPROJ_REPLICASET,
    KPROJ_POD,     KPROJ_NAMESPACE,  KPROJ_HPA,         KPROJ_POLICY,    KPROJ_PDB,
};

/* Both paths on the same bytes; returns the common result code. */
static int same_n(const char *json, size_t len, enum kproj_kind kind)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    kproj_obj *a = NULL, *b = NULL;
    int ra = kref_from_json(root, kind, &a);
    int rb = kprojs_from_bytes(json, len, kind, &b);
    cJSON_Delete(root);
    if (rb != -EINVAL || b) {
        /* Valid JSON: the trusted entry point must agree with the validating one. */
        kproj_obj *c = NULL;
        int rc = kprojs_from_valid(json, len, kind, &c);
        ASSERT_EQ_INT(rc, rb);
        ASSERT_EQ_INT(kref_diff(b, c, NULL, 0), 0);
        kproj_free(c);
    } else {
        /* Invalid JSON: whatever it yields, it must be memory-safe. */
        kproj_obj *c = NULL;
        kprojs_from_valid(json, len, kind, &c);
        kproj_free(c);
    }
    char why[256];
    int diff = kref_diff(a, b, why, sizeof why);
    size_t sa = a ? a->size : 0, sb = b ? b->size : 0;
    kproj_free(a);
    kproj_free(b);
    if (ra != rb)
        test_fail(__FILE__, __LINE__, "kind %d: kproj_from_json %d, kprojs_from_bytes %d on %.200s",
                  (int)kind, ra, rb, json);
    if (diff)
        test_fail(__FILE__, __LINE__, "kind %d: projections differ: %s", (int)kind, why);
    /* The packed layout may only drop alignment padding (< 8 bytes per array). */
    ASSERT(sb <= sa);
    ASSERT(sa - sb < 8 * 64);
    return ra;
}

static int same(const char *json, enum kproj_kind kind)
{
    return same_n(json, strlen(json), kind);
}

static void same_all_kinds(const char *json)
{
    for (size_t i = 0; i < sizeof all_kinds / sizeof all_kinds[0]; i++)
        same(json, all_kinds[i]);
}

static char *fixture(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_fixture_dir(), name);
    return test_read_file(path, len);
}

static void test_list_fixture(void)
{
    size_t len;
    char *body = fixture("list-deployments-limit1.json", &len);
    kprojs_list l;
    ASSERT_EQ_INT(kprojs_list_parse(body, len, &l), 0);
    char rv[64], cont[1024];
    ASSERT_EQ_INT(kprojs_str(&l.rv, rv, sizeof rv), 0);
    ASSERT_EQ_INT(kprojs_str(&l.cont, cont, sizeof cont), 0);
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    ASSERT_STR_EQ(rv, cJSON_GetObjectItemCaseSensitive(md, "resourceVersion")->valuestring);
    ASSERT_STR_EQ(cont, cJSON_GetObjectItemCaseSensitive(md, "continue")->valuestring);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items"), *it;
    const char *item;
    size_t n, seen = 0;
    it = items->child;
    while (kprojs_list_next(&l, &item, &n)) {
        ASSERT_NOT_NULL(it);
        ASSERT_EQ_INT(same_n(item, n, KPROJ_DEPLOYMENT), 0);
        for (size_t k = 0; k < sizeof all_kinds / sizeof all_kinds[0]; k++)
            same_n(item, n, all_kinds[k]);
        kproj_obj *o;
        ASSERT_EQ_INT(kprojs_from_bytes(item, n, KPROJ_DEPLOYMENT, &o), 0);
        ASSERT_STR_EQ(o->name, "web");
        ASSERT_STR_EQ(o->ns, "default");
        ASSERT_EQ_INT(o->ncontainers, 1);
        kproj_free(o);
        it = it->next;
        seen++;
    }
    ASSERT_EQ_INT(seen, 1);
    ASSERT_EQ_INT(cJSON_GetArraySize(items), 1);
    ASSERT_EQ_INT(kprojs_list_next(&l, &item, &n), 0);
    cJSON_Delete(root);
    free(body);
}

/* Compare kprojs_event_parse() with kref_event_parse() on one line. */
static int same_event(const char *line, size_t len)
{
    kref_event a;
    kprojs_event b;
    int ra = kref_event_parse(line, len, &a);
    int rb = kprojs_event_parse(line, len, &b);
    if (ra != rb)
        test_fail(__FILE__, __LINE__, "kwatch_event_parse %d, kprojs_event_parse %d on %.200s", ra,
                  rb, line);
    if (ra) {
        kproj_obj *o = (kproj_obj *)1;
        int prc = 1;
        ASSERT_EQ_INT(kprojs_event_project(line, len, KPROJ_POD, &b, &o, &prc), ra);
        ASSERT_NULL(o);
        ASSERT_EQ_INT(prc, 0);
    }
    if (ra == 0) {
        char buf[4096];
        ASSERT_EQ_INT(a.type, b.type);
        ASSERT_EQ_INT(a.code, b.code);
        ASSERT_EQ_INT(a.retry_after_s, b.retry_after_s);
        if (a.rv) {
            ASSERT_EQ_INT(kprojs_str(&b.rv, buf, sizeof buf), 0);
            ASSERT_STR_EQ(buf, a.rv);
        } else {
            ASSERT_EQ_INT(b.rv.type, JSCAN_NONE);
        }
        kprojs_str(&b.reason, buf, sizeof buf);
        ASSERT_STR_EQ(buf, a.reason);
        kprojs_str(&b.message, buf, sizeof buf);
        ASSERT_STR_EQ(buf, a.message);
        /* The object span holds the same object. */
        for (size_t k = 0; k < sizeof all_kinds / sizeof all_kinds[0]; k++) {
            kproj_obj *x = NULL, *y = NULL;
            int rx = kref_from_json(a.object, all_kinds[k], &x);
            int ry = kprojs_from_bytes(b.object, b.object_len, all_kinds[k], &y);
            ASSERT_EQ_INT(rx, ry);
            ASSERT_EQ_INT(kref_diff(x, y, buf, sizeof buf), 0);
            kproj_free(x);
            kproj_free(y);
            /* The one-scan path: event and projection together. */
            kprojs_event c;
            int prc;
            ASSERT_EQ_INT(kprojs_event_project(line, len, all_kinds[k], &c, &y, &prc), 0);
            ASSERT_EQ_INT(c.type, b.type);
            ASSERT(c.object == b.object && c.object_len == b.object_len);
            if (a.type == KWATCH_EV_BOOKMARK || a.type == KWATCH_EV_ERROR) {
                ASSERT_EQ_INT(prc, 0);
                ASSERT_NULL(y);
            } else {
                rx = kref_from_json(a.object, all_kinds[k], &x);
                ASSERT_EQ_INT(prc, rx);
                ASSERT_EQ_INT(kref_diff(x, y, buf, sizeof buf), 0);
                kproj_free(x);
            }
            kproj_free(y);
        }
        kref_event_release(&a);
    }
    return ra;
}

static void test_watch_fixture(void)
{
    size_t len;
    char *body = fixture("watch-deployments.jsonl", &len);
    int lines = 0, objects = 0;
    for (char *p = body, *nl; p < body + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(body + len - p));
        if (!nl)
            nl = body + len;
        if (nl == p)
            continue;
        ASSERT_EQ_INT(same_event(p, (size_t)(nl - p)), 0);
        kprojs_event ev;
        ASSERT_EQ_INT(kprojs_event_parse(p, (size_t)(nl - p), &ev), 0);
        if (ev.type != KWATCH_EV_BOOKMARK) {
            ASSERT_EQ_INT(same_n(ev.object, ev.object_len, KPROJ_DEPLOYMENT), 0);
            objects++;
        }
        lines++;
    }
    ASSERT_EQ_INT(lines, 7);
    ASSERT_EQ_INT(objects, 5);
    free(body);
}

static void test_admission_pod(void)
{
    size_t len;
    char *body = fixture("admission-review-pod-create.json", &len);
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(root, "request");
    char *pod = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(req, "object"));
    ASSERT_NOT_NULL(pod);
    same_all_kinds(pod);
    /* The whole review has no metadata.name at its top: both refuse it. */
    ASSERT_EQ_INT(same_n(body, len, KPROJ_POD), -EINVAL);
    free(pod);
    cJSON_Delete(root);
    free(body);
}

static void test_generated_deployments(void)
{
    opbuf b;
    opbuf_init(&b, 1 << 20);
    for (unsigned i = 0; i < 300; i++) {
        opbuf_reset(&b);
        ASSERT_EQ_INT(gen_deployment(&b, i % 3 ? "team-a" : "prod", i), 0);
        ASSERT_EQ_INT(same_n(b.data, b.len, KPROJ_DEPLOYMENT), 0);
        if (i % 25 == 0) {
            for (size_t k = 0; k < sizeof all_kinds / sizeof all_kinds[0]; k++)
                same_n(b.data, b.len, all_kinds[k]);
        }
    }
    kproj_obj *o;
    opbuf_reset(&b);
    gen_deployment(&b, "prod", 7);
    ASSERT_EQ_INT(kprojs_from_bytes(b.data, b.len, KPROJ_DEPLOYMENT, &o), 0);
    ASSERT_EQ_INT(o->ncontainers, 2);
    ASSERT_CMP_INT(o->size, <, b.len);
    kproj_free(o);
    opbuf_release(&b);
}

static const char pod_oom[] =
    "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-1\",\"namespace\":\"prod\",\"uid\":\"u1\","
    "\"resourceVersion\":\"77\",\"labels\":{\"app\":\"web\"},\"annotations\":{\"optipod.io/"
    "policy\":\"p\",\"other\":\"x\",\"optipod.io/n\":3},\"ownerReferences\":[{\"kind\":"
    "\"ReplicaSet\",\"name\":\"web-abc\",\"uid\":\"r1\",\"controller\":true},{\"kind\":\"X\"},7]},"
    "\"spec\":{\"nodeName\":\"n1\",\"initContainers\":[{\"name\":\"init\",\"image\":\"busybox\"}],"
    "\"containers\":[{\"name\":\"app\",\"image\":\"web:1\",\"resources\":{\"requests\":{\"cpu\":"
    "\"250m\",\"memory\":\"128Mi\"},\"limits\":{\"memory\":\"256Mi\",\"cpu\":1}},\"resizePolicy\":"
    "[{\"resourceName\":\"cpu\",\"restartPolicy\":\"NotRequired\"},{\"resourceName\":\"memory\","
    "\"restartPolicy\":\"RestartContainer\"}]},{\"name\":\"side\",\"resources\":null},\"junk\"]},"
    "\"status\":{\"phase\":\"Running\",\"qosClass\":\"Burstable\",\"resize\":\"InProgress\","
    "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},{\"type\":\"PodResizePending\","
    "\"status\":\"True\",\"reason\":\"Deferred\"},{\"type\":\"PodResizeInProgress\",\"status\":"
    "\"True\"},3,null],\"initContainerStatuses\":[{\"name\":\"init\",\"restartCount\":0}],"
    "\"containerStatuses\":[{\"name\":\"side\",\"restartCount\":2.7,\"lastState\":{"
    "\"terminated\":{\"reason\":\"Completed\"}}},{\"name\":\"app\",\"restartCount\":4,"
    "\"lastState\":{\"terminated\":{\"reason\":\"OOMKilled\",\"finishedAt\":"
    "\"2026-11-22T02:00:00Z\"}}},{\"name\":\"app\",\"restartCount\":9}]}}";

static void test_pod_oom_resize(void)
{
    same_all_kinds(pod_oom);
    kproj_obj *o;
    ASSERT_EQ_INT(kprojs_from_bytes(pod_oom, sizeof pod_oom - 1, KPROJ_POD, &o), 0);
    ASSERT_STR_EQ(o->node, "n1");
    ASSERT_STR_EQ(o->phase, "Running");
    ASSERT_STR_EQ(o->qos_class, "Burstable");
    ASSERT_STR_EQ(o->resize_status, "InProgress");
    ASSERT_STR_EQ(o->resize_pending, "Deferred");
    ASSERT_EQ_INT(o->resize_in_progress, 1);
    ASSERT_EQ_INT(o->nannotations, 2);
    ASSERT_STR_EQ(kproj_kv_get(o->annotations, o->nannotations, "optipod.io/n"), "3");
    ASSERT_EQ_INT(o->nowners, 2);
    ASSERT_STR_EQ(kproj_controller(o)->name, "web-abc");
    ASSERT_EQ_INT(o->ncontainers, 2);
    const kproj_container *app = kproj_container_get(o, "app");
    ASSERT_NOT_NULL(app);
    ASSERT_EQ_INT(app->restart_count, 4);
    ASSERT_STR_EQ(app->oom_killed_at, "2026-11-22T02:00:00Z");
    ASSERT_STR_EQ(kproj_kv_get(app->limits, app->nlimits, "cpu"), "1");
    ASSERT_EQ_INT(app->nresize_policy, 2);
    const kproj_container *side = kproj_container_get(o, "side");
    ASSERT_EQ_INT(side->restart_count, 2);
    ASSERT_NULL(side->oom_killed_at);
    ASSERT_EQ_INT(kproj_container_get(o, "init")->restart_count, 0);
    kproj_free(o);
}

/* What the controller follows after an in-place resize: the resources the
 * kubelet reports per container (first status of a name wins, numbers are
 * quantities), the InProgress reason and a set deletionTimestamp. */
static const char pod_resized[] =
    "{\"metadata\":{\"name\":\"web-2\",\"uid\":\"u2\",\"deletionTimestamp\":"
    "\"2026-11-22T03:00:00Z\"},\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{"
    "\"requests\":{\"cpu\":\"500m\"}}},{\"name\":\"side\"}]},\"status\":{\"phase\":"
    "\"Running\",\"conditions\":[{\"type\":\"PodResizeInProgress\",\"status\":\"True\","
    "\"reason\":\"Error\"},{\"type\":\"PodResizeInProgress\",\"status\":\"True\",\"reason\":"
    "\"Other\"}],\"containerStatuses\":[{\"name\":\"app\",\"resources\":{\"requests\":{"
    "\"cpu\":\"250m\",\"memory\":268435456},\"limits\":{\"memory\":\"512Mi\"}}},{\"name\":"
    "\"app\",\"resources\":{\"requests\":{\"cpu\":\"9\"}}},{\"name\":\"side\",\"resources\":"
    "null}]}}";

static void test_pod_status_resources(void)
{
    same_all_kinds(pod_resized);
    kproj_obj *o;
    ASSERT_EQ_INT(kprojs_from_bytes(pod_resized, sizeof pod_resized - 1, KPROJ_POD, &o), 0);
    ASSERT_EQ_INT(o->deleting, 1);
    ASSERT_EQ_INT(o->resize_in_progress, 1);
    ASSERT_STR_EQ(o->resize_in_progress_reason, "Error");
    const kproj_container *app = kproj_container_get(o, "app");
    ASSERT_EQ_INT(app->nstatus_requests, 2);
    ASSERT_STR_EQ(kproj_kv_get(app->status_requests, app->nstatus_requests, "cpu"), "250m");
    ASSERT_STR_EQ(kproj_kv_get(app->status_requests, app->nstatus_requests, "memory"), "268435456");
    ASSERT_STR_EQ(kproj_kv_get(app->status_limits, app->nstatus_limits, "memory"), "512Mi");
    const kproj_container *side = kproj_container_get(o, "side");
    ASSERT_EQ_INT(side->nstatus_requests, 0);
    ASSERT_NULL(side->status_requests);
    kproj_free(o);
    /* neither field on a pod without them */
    ASSERT_EQ_INT(kprojs_from_bytes(pod_oom, sizeof pod_oom - 1, KPROJ_POD, &o), 0);
    ASSERT_EQ_INT(o->deleting, 0);
    ASSERT_NULL(o->resize_in_progress_reason);
    kproj_free(o);
}

/* Objects a hand or a buggy client could produce; each is checked for every kind. */
static const char *const edge_cases[] = {
    "{\"metadata\":{\"name\":\"a\"}}",
    "{\"metadata\":{\"name\":\"\"}}",
    "{\"metadata\":{\"name\":null}}",
    "{\"metadata\":{\"name\":5}}",
    "{\"metadata\":null}",
    "{\"metadata\":[]}",
    "{}",
    "[]",
    "[{\"metadata\":{\"name\":\"a\"}}]",
    "\"x\"",
    "null",
    "3",
    "",
    "   ",
    "{\"metadata\":{\"name\":\"a\"},\"spec\":null,\"status\":[]}",
    "{\"metadata\":{\"name\":\"a\",\"labels\":null,\"annotations\":[],\"ownerReferences\":{}}}",
    /* escapes, unicode, surrogate pairs, U+0000 cutting a string or a key */
    "{\"metadata\":{\"name\":\"w\\u00e9b\\n\\t\\\"\\\\\\/\",\"namespace\":\"\\ud83d\\ude00\"}}",
    "{\"metadata\":{\"name\":\"ab\\u0000cd\",\"uid\":\"\\u0000\"}}",
    "{\"meta\\u0064ata\":{\"na\\u006de\":\"esc-key\"}}",
    "{\"metadata\\u0000junk\":{\"name\\u0000\":\"cut-key\"}}",
    "{\"metadata\":{\"name\":\"a\",\"labels\":{\"k\\u0000x\":\"v\\u0000y\",\"\":\"\"},"
    "\"annotations\":{\"optipod.io\\/a\":\"1\",\"optipod.io\\u0000/b\":\"2\",\"optipod.i\":\"3\","
    "\"optipod.io/\":\"4\",\"optipod.io/c\":null,\"optipod.io/d\":{\"x\":1}}}}",
    "{\"metadata\":{\"name\":\"\xc3\xa9\xff\xfe raw bytes\"}}",
    /* duplicates: the first member counts, kv maps keep all */
    "{\"metadata\":{\"name\":\"first\",\"name\":\"second\",\"labels\":{\"a\":\"1\",\"a\":\"2\"}},"
    "\"metadata\":{\"name\":\"third\"}}",
    "{\"metadata\":\"str\",\"metadata\":{\"name\":\"late\"}}",
    "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"replicas\":1},\"spec\":{\"replicas\":2}}",
    /* numbers: quantities, generation, replicas */
    "{\"metadata\":{\"name\":\"a\",\"generation\":12.9,\"labels\":{\"a\":1,\"b\":0.5,\"c\":1e3,"
    "\"d\":-0,\"e\":1e20,\"f\":1e999,\"g\":-1e999,\"h\":123456789012345678,\"i\":true,\"j\":"
    "1.25e-7,\"k\":99999999999999.5,\"l\":-4}}}",
    "{\"metadata\":{\"name\":\"a\",\"generation\":-3},\"spec\":{\"replicas\":-1}}",
    "{\"metadata\":{\"name\":\"a\",\"generation\":\"7\"},\"spec\":{\"replicas\":2e9}}",
    "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"replicas\":1999999999.9}}",
    "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"replicas\":3.5}}",
    "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"replicas\":null}}",
    /* workloads: selector, template */
    "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"x\"},"
    "\"matchExpressions\":[{\"key\":\"k\",\"operator\":\"In\",\"values\":[\"a\",1,\"b\\u0000c\","
    "null,\"\"]},{\"key\":\"e\",\"operator\":\"Exists\"},{\"values\":\"notarray\"},{\"values\":[]},"
    "\"junk\",[]]},\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\","
    "\"resources\":{\"requests\":{\"cpu\":\"1\"},\"limits\":[]},\"resizePolicy\":[{}]},{}],"
    "\"initContainers\":{}}}}}",
    "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"template\":null,\"selector\":[]}}",
    "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[]}},"
    "\"containers\":[{\"name\":\"podstyle\"}]}}",
    /* pods: statuses not matching, odd shapes */
    "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\"},{\"image\":\"x\"},"
    "{\"name\":\"b\"}]},\"status\":{\"containerStatuses\":[{\"name\":\"b\",\"restartCount\":-1,"
    "\"lastState\":{\"terminated\":{\"reason\":\"OOMKilled\"}}},{\"name\":\"a\",\"restartCount\":"
    "3e9,\"lastState\":{\"terminated\":{\"reason\":\"OOMKilled\",\"finishedAt\":5}}}]}}",
    "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\"}]},\"status\":{"
    "\"containerStatuses\":{\"name\":\"a\"},\"conditions\":{}}}",
    "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"name\":\"a\\u0000x\"}]},"
    "\"status\":"
    "{\"containerStatuses\":[{\"name\":\"a\",\"restartCount\":5,\"lastState\":{\"terminated\":{"
    "\"reason\":\"OOMKilled\\u0000\",\"finishedAt\":\"t\"}}}]}}",
    "{\"metadata\":{\"name\":\"p\"},\"status\":{\"conditions\":[{\"type\":\"PodResizePending\","
    "\"status\":\"False\",\"reason\":\"Infeasible\"},{\"type\":\"PodResizePending\",\"status\":"
    "\"True\"},{\"type\":\"PodResizeInProgress\",\"status\":\"False\"}],\"resize\":7}}",
    /* whitespace around and inside */
    " \r\n\t{ \"metadata\" : { \"name\" : \"ws\" , \"labels\" : { } } , \"spec\" : [ ] } \n ",
};

static void test_edge_cases(void)
{
    for (size_t i = 0; i < sizeof edge_cases / sizeof edge_cases[0]; i++)
        same_all_kinds(edge_cases[i]);
    /* A few pinned values so "both agree" cannot hide "both wrong". */
    kproj_obj *o;
    ASSERT_EQ_INT(kprojs_from_bytes(edge_cases[17], strlen(edge_cases[17]), KPROJ_POD, &o), 0);
    ASSERT_STR_EQ(o->name, "ab");
    ASSERT_STR_EQ(o->uid, "");
    kproj_free(o);
    ASSERT_EQ_INT(kprojs_from_bytes(edge_cases[16], strlen(edge_cases[16]), KPROJ_POD, &o), 0);
    ASSERT_STR_EQ(o->name, "w\xc3\xa9"
                           "b\n\t\"\\/");
    ASSERT_STR_EQ(o->ns, "\xf0\x9f\x98\x80");
    kproj_free(o);
    /* (a pod keeps no labels: a Deployment shows them) */
    ASSERT_EQ_INT(kprojs_from_bytes(edge_cases[22], strlen(edge_cases[22]), KPROJ_DEPLOYMENT, &o),
                  0);
    ASSERT_STR_EQ(o->name, "first");
    ASSERT_EQ_INT(o->nlabels, 2);
    ASSERT_STR_EQ(o->labels[1].value, "2");
    kproj_free(o);
    ASSERT_EQ_INT(kprojs_from_bytes(edge_cases[23], strlen(edge_cases[23]), KPROJ_POD, &o),
                  -EINVAL);
}

/* Rollout state (workloads) and budgets (PDBs): both paths, every kind's slots pinned. */
static const char *const rollout_objs[] = {
    "{\"metadata\":{\"name\":\"web\",\"generation\":4},\"spec\":{\"replicas\":3,"
    "\"progressDeadlineSeconds\":120,\"paused\":true,\"selector\":{\"matchLabels\":{\"app\":"
    "\"web\"}},"
    "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\",\"tier\":\"fe\"}},\"spec\":{}}},"
    "\"status\":{\"observedGeneration\":3,\"replicas\":4,\"updatedReplicas\":2,"
    "\"readyReplicas\":3,\"availableReplicas\":3}}",
    "{\"metadata\":{\"name\":\"db\",\"generation\":2},\"spec\":{\"updateStrategy\":{\"type\":"
    "\"OnDelete\"},\"template\":{\"metadata\":{\"labels\":{\"app\":\"db\"}}}},\"status\":{"
    "\"observedGeneration\":2,\"replicas\":2,\"readyReplicas\":2,\"currentRevision\":\"db-1\","
    "\"updateRevision\":\"db-2\",\"updatedReplicas\":1}}",
    "{\"metadata\":{\"name\":\"agent\"},\"spec\":{\"updateStrategy\":{\"type\":7},\"template\":"
    "{\"metadata\":{\"labels\":null}}},\"status\":{\"desiredNumberScheduled\":5,"
    "\"updatedNumberScheduled\":5,\"numberReady\":4,\"numberAvailable\":4,\"replicas\":99}}",
    "{\"metadata\":{\"name\":\"pdb\",\"generation\":3},\"spec\":{\"minAvailable\":1,"
    "\"selector\":{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":[{\"key\":\"tier\","
    "\"operator\":\"In\",\"values\":[\"fe\",\"be\"]}]}},\"status\":{\"observedGeneration\":3,"
    "\"disruptionsAllowed\":1,\"currentHealthy\":3}}",
    "{\"metadata\":{\"name\":\"pdb2\"},\"spec\":{\"selector\":null},\"status\":{"
    "\"disruptionsAllowed\":-1,\"observedGeneration\":1e300}}",
    "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"updateStrategy\":\"OnDelete\",\"template\":7,"
    "\"progressDeadlineSeconds\":3e9,\"paused\":\"true\"},\"status\":[]}",
    "{\"metadata\":{\"name\":\"y\"},\"spec\":{\"paused\":1}}",
};

static void test_rollout_status(void)
{
    for (size_t i = 0; i < sizeof rollout_objs / sizeof rollout_objs[0]; i++)
        same_all_kinds(rollout_objs[i]);
    kproj_obj *o;
    ASSERT_EQ_INT(kprojs_from_bytes(rollout_objs[0], strlen(rollout_objs[0]), KPROJ_DEPLOYMENT, &o),
                  0);
    ASSERT_EQ_INT(o->rollout.observed_generation, 3);
    ASSERT_EQ_INT(o->rollout.replicas, 4);
    ASSERT_EQ_INT(o->rollout.updated, 2);
    ASSERT_EQ_INT(o->rollout.ready, 3);
    ASSERT_EQ_INT(o->rollout.available, 3);
    ASSERT_EQ_INT(o->rollout.progress_deadline_s, 120);
    ASSERT_EQ_INT(o->rollout.paused, 1);
    ASSERT_EQ_INT(o->rollout.has_selector, 1);
    ASSERT_EQ_INT(o->rollout.ntemplate_labels, 2);
    ASSERT_STR_EQ(kproj_kv_get(o->rollout.template_labels, 2, "tier"), "fe");
    kproj_free(o);
    ASSERT_EQ_INT(
        kprojs_from_bytes(rollout_objs[1], strlen(rollout_objs[1]), KPROJ_STATEFULSET, &o), 0);
    ASSERT_STR_EQ(o->rollout.update_strategy, "OnDelete");
    ASSERT_STR_EQ(o->rollout.current_revision, "db-1");
    ASSERT_STR_EQ(o->rollout.update_revision, "db-2");
    ASSERT_EQ_INT(o->rollout.progress_deadline_s, -1);
    ASSERT_EQ_INT(o->rollout.paused, 0);
    ASSERT_EQ_INT(o->rollout.available, 0);
    kproj_free(o);
    ASSERT_EQ_INT(kprojs_from_bytes(rollout_objs[2], strlen(rollout_objs[2]), KPROJ_DAEMONSET, &o),
                  0);
    ASSERT_EQ_INT(o->rollout.replicas, 5);
    ASSERT_EQ_INT(o->rollout.updated, 5);
    ASSERT_EQ_INT(o->rollout.ready, 4);
    ASSERT_EQ_INT(o->rollout.available, 4);
    ASSERT_NULL(o->rollout.update_strategy);
    ASSERT_EQ_INT(o->rollout.ntemplate_labels, 0);
    kproj_free(o);
    ASSERT_EQ_INT(kprojs_from_bytes(rollout_objs[3], strlen(rollout_objs[3]), KPROJ_PDB, &o), 0);
    ASSERT_EQ_INT(o->generation, 3);
    ASSERT_EQ_INT(o->rollout.observed_generation, 3);
    ASSERT_EQ_INT(o->rollout.disruptions_allowed, 1);
    ASSERT_EQ_INT(o->rollout.has_selector, 1);
    ASSERT_EQ_INT(o->nselector, 1);
    ASSERT_EQ_INT(o->nselector_exprs, 1);
    ASSERT_STR_EQ(o->selector_exprs[0].values, "fe,be");
    ASSERT_EQ_INT(o->ncontainers, 0);
    kproj_free(o);
    ASSERT_EQ_INT(kprojs_from_bytes(rollout_objs[4], strlen(rollout_objs[4]), KPROJ_PDB, &o), 0);
    ASSERT_EQ_INT(o->rollout.has_selector, 0);
    ASSERT_EQ_INT(o->rollout.disruptions_allowed, 0);
    ASSERT(o->rollout.observed_generation == INT64_MIN);
    kproj_free(o);
    ASSERT_EQ_INT(kproj_kind_for_resource("poddisruptionbudgets"), KPROJ_PDB);
    ASSERT_STR_EQ(kproj_kind_name(KPROJ_PDB), "PodDisruptionBudget");
}

/* Arrays past the uint16_t counts: -EINVAL on both paths; exactly at the cap: fine. */
static void test_array_caps(void)
{
    opbuf b;
    opbuf_init(&b, 8 << 20);
    const size_t counts[] = {65535, 65536};
    for (size_t c = 0; c < 2; c++) {
        opbuf_reset(&b);
        opbuf_puts(&b, "{\"metadata\":{\"name\":\"big\",\"labels\":{");
        for (size_t i = 0; i < counts[c]; i++)
            opbuf_printf(&b, "%s\"l%zu\":\"v\"", i ? "," : "", i);
        opbuf_puts(&b, "}}}");
        ASSERT_EQ_INT(same_n(b.data, b.len, KPROJ_DEPLOYMENT), c ? -EINVAL : 0);
        /* Labels that are not strings do not count towards the cap. */
        opbuf_reset(&b);
        opbuf_puts(&b, "{\"metadata\":{\"name\":\"big\",\"annotations\":{");
        for (size_t i = 0; i < counts[c]; i++)
            opbuf_printf(&b, "%s\"l%zu\":\"v\"", i ? "," : "", i);
        opbuf_puts(&b, "}}}");
        ASSERT_EQ_INT(same_n(b.data, b.len, KPROJ_DEPLOYMENT), 0);
        opbuf_reset(&b);
        opbuf_puts(&b, "{\"metadata\":{\"name\":\"big\"},\"spec\":{\"containers\":[");
        for (size_t i = 0; i < counts[c]; i++)
            opbuf_printf(&b, "%s{}", i ? "," : "");
        opbuf_puts(&b, "]}}");
        ASSERT_EQ_INT(same_n(b.data, b.len, KPROJ_POD), c ? -EINVAL : 0);
        ASSERT_EQ_INT(same_n(b.data, b.len, KPROJ_DEPLOYMENT), 0);
    }
    /* Conditions and statuses have no cap. */
    opbuf_reset(&b);
    opbuf_puts(&b, "{\"metadata\":{\"name\":\"p\"},\"status\":{\"conditions\":[");
    for (size_t i = 0; i < 70000; i++)
        opbuf_printf(&b, "%snull", i ? "," : "");
    opbuf_puts(&b, "]}}");
    ASSERT_EQ_INT(same_n(b.data, b.len, KPROJ_POD), 0);
    opbuf_release(&b);
}

/* Input cJSON accepts but strict JSON does not: refused here (documented). */
static void test_stricter_than_cjson(void)
{
    static const char *const sloppy[] = {
        "{\"metadata\":{\"name\":\"a\"}} trailing",
        "{\"metadata\":{\"name\":\"a\"}}}",
        "{\"metadata\":{\"name\":\"a\",\"generation\":01}}",
        "{\"metadata\":{\"name\":\"a\",\"generation\":1.}}",
        "{\"metadata\":{\"name\":\"a\",\"generation\":-.5}}",
        "{\"metadata\":{\"name\":\"a\tb\"}}",
        "{\"metadata\":{\"name\":\"\\uZZZZ\"}}",
        "{\x01\"metadata\":{\"name\":\"a\"}}",
        "\xef\xbb\xbf{\"metadata\":{\"name\":\"a\"}}",
    };
    for (size_t i = 0; i < sizeof sloppy / sizeof sloppy[0]; i++) {
        cJSON *root = cJSON_ParseWithLength(sloppy[i], strlen(sloppy[i]));
        kproj_obj *o = NULL;
        if (!root || kref_from_json(root, KPROJ_POD, &o) != 0)
            test_fail(__FILE__, __LINE__, "cJSON path refused case %zu", i);
        kproj_free(o);
        cJSON_Delete(root);
        ASSERT_EQ_INT(kprojs_from_bytes(sloppy[i], strlen(sloppy[i]), KPROJ_POD, &o), -EINVAL);
        ASSERT_NULL(o);
    }
    /* Malformed for both. */
    static const char *const bad[] = {
        "{\"metadata\":{\"name\":\"a\"}",
        "{\"metadata\":{\"name\":\"a\",}}",
        "{\"metadata\":{\"name\":\"a\\x\"}}",
        "{\"metadata\":{\"name\":\"\\ud800\"}}",
        "{\"metadata\":{\"name\":\"\\udc00x\"}}",
        "{\"metadata\":{\"name\":'a'}}",
        "{\"metadata\":{\"name\":\"a\"},\"x\":tru}",
        "{\"metadata\" {\"name\":\"a\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ_INT(same(bad[i], KPROJ_POD), -EINVAL);
}

/* Nesting: cJSON's limit is 1000 containers, and so is jscan's. */
static void test_depth(void)
{
    opbuf b;
    opbuf_init(&b, 1 << 20);
    for (int depth = 998; depth <= 1001; depth++) {
        opbuf_reset(&b);
        opbuf_puts(&b, "{\"metadata\":{\"name\":\"d\"},\"x\":");
        for (int i = 0; i < depth - 1; i++)
            opbuf_puts(&b, "[");
        for (int i = 0; i < depth - 1; i++)
            opbuf_puts(&b, "]");
        opbuf_puts(&b, "}");
        ASSERT_EQ_INT(same_n(b.data, b.len, KPROJ_POD), depth <= 1000 ? 0 : -EINVAL);
    }
    opbuf_release(&b);
}

/* A pod with two PodResizePending=True conditions: both paths keep the first
 * reason (the DOM path used to fail with -EOVERFLOW here). */
static void test_double_resize_pending(void)
{
    const char *pod = "{\"metadata\":{\"name\":\"p\"},\"status\":{\"conditions\":[{\"type\":"
                      "\"PodResizePending\",\"status\":\"True\",\"reason\":\"Deferred\"},{\"type\":"
                      "\"PodResizePending\",\"status\":\"True\",\"reason\":\"Infeasible\"}]}}";
    cJSON *root = cJSON_Parse(pod);
    kproj_obj *a = NULL, *b = NULL;
    ASSERT_EQ_INT(kref_from_json(root, KPROJ_POD, &a), 0);
    ASSERT_EQ_INT(kprojs_from_bytes(pod, strlen(pod), KPROJ_POD, &b), 0);
    ASSERT_STR_EQ(b->resize_pending, "Deferred");
    ASSERT_EQ_INT(kref_diff(a, b, NULL, 0), 0);
    kproj_free(a);
    kproj_free(b);
    cJSON_Delete(root);
}

static void test_list_parse(void)
{
    static const char *const cases[] = {
        "{\"metadata\":{\"resourceVersion\":\"5\",\"continue\":\"c\\u0041\"},\"items\":[{"
        "\"metadata\""
        ":{\"name\":\"a\"}},1,null,{\"metadata\":{}}]}",
        "{\"metadata\":{},\"items\":null}",
        "{\"metadata\":{}}",
        "{\"metadata\":{\"resourceVersion\":5},\"items\":[]}",
        "{\"metadata\":{},\"items\":{}}",
        "{\"metadata\":[],\"items\":[]}",
        "{\"items\":[]}",
        "[]",
        "{\"metadata\":{},\"items\":[}",
    };
    static const int ok[] = {1, 1, 1, 1, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kprojs_list l;
        int rc = kprojs_list_parse(cases[i], strlen(cases[i]), &l);
        ASSERT_EQ_INT(rc, ok[i] ? 0 : -EINVAL);
        if (rc)
            continue;
        cJSON *root = cJSON_Parse(cases[i]);
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items"), *it;
        const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
        const cJSON *cont = cJSON_GetObjectItemCaseSensitive(md, "continue");
        char buf[64];
        ASSERT_EQ_INT(kprojs_str(&l.rv, buf, sizeof buf), cJSON_IsString(rv) ? 0 : -ENOENT);
        if (cJSON_IsString(rv))
            ASSERT_STR_EQ(buf, rv->valuestring);
        ASSERT_EQ_INT(kprojs_str(&l.cont, buf, sizeof buf), cJSON_IsString(cont) ? 0 : -ENOENT);
        if (cJSON_IsString(cont))
            ASSERT_STR_EQ(buf, "cA");
        const char *p;
        size_t n, k = 0;
        it = cJSON_IsArray(items) ? items->child : NULL;
        while (kprojs_list_next(&l, &p, &n)) {
            char *s = cJSON_PrintUnformatted(it);
            cJSON *again = cJSON_ParseWithLength(p, n);
            char *t = cJSON_PrintUnformatted(again);
            ASSERT_STR_EQ(t, s);
            free(s);
            free(t);
            cJSON_Delete(again);
            same_n(p, n, KPROJ_POD);
            it = it->next;
            k++;
        }
        ASSERT_EQ_INT(k, cJSON_IsArray(items) ? cJSON_GetArraySize(items) : 0);
        cJSON_Delete(root);
    }
    char small[2];
    kprojs_list l;
    const char *big = "{\"metadata\":{\"resourceVersion\":\"12345\"}}";
    ASSERT_EQ_INT(kprojs_list_parse(big, strlen(big), &l), 0);
    ASSERT_EQ_INT(kprojs_str(&l.rv, small, sizeof small), -E2BIG);
    ASSERT_STR_EQ(small, "");
}

static void test_event_parse(void)
{
    static const char *const lines[] = {
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"9\"}}}",
        "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}  \r\n",
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}",
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}",
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}",
        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\","
        "\"message\":\"too old resource version: 1 (2)\",\"details\":{\"retryAfterSeconds\":3}}}",
        "{\"type\":\"ERROR\",\"object\":{\"code\":1e3,\"reason\":5,\"details\":{"
        "\"retryAfterSeconds\":86400}}}",
        "{\"type\":\"ERROR\",\"object\":{\"code\":-1,\"details\":{\"retryAfterSeconds\":0.5}}}",
        "{\"type\":\"ERROR\",\"object\":{\"code\":999.9,\"details\":{\"retryAfterSeconds\":2.9}}}",
        "{\"type\":\"ADDED\\u0000x\",\"object\":{\"metadata\":{\"name\":\"a\"}}}",
        "{\"type\":\"added\",\"object\":{\"metadata\":{\"name\":\"a\"}}}",
        "{\"type\":\"ADDED\",\"object\":[]}",
        "{\"type\":\"ADDED\"}",
        "{\"type\":1,\"object\":{}}",
        "{\"object\":{\"metadata\":{\"name\":\"a\"}},\"type\":\"ADDED\",\"type\":\"ERROR\"}",
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}} x",
        "",
        "[]",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        same_event(lines[i], strlen(lines[i]));
    kprojs_event ev;
    ASSERT_EQ_INT(kprojs_event_parse(lines[5], strlen(lines[5]), &ev), 0);
    ASSERT_EQ_INT(ev.type, KWATCH_EV_ERROR);
    ASSERT_EQ_INT(ev.code, 410);
    ASSERT_EQ_INT(ev.retry_after_s, 3);
    ASSERT_EQ_INT(kprojs_event_parse(lines[15], strlen(lines[15]), &ev), -EINVAL);
    ASSERT_EQ_INT(ev.retry_after_s, -1);
    ASSERT_NULL(ev.object);
}

static void test_diff_reports(void)
{
    kproj_obj *a, *b;
    const char *x = "{\"metadata\":{\"name\":\"a\",\"labels\":{\"k\":\"1\"}}}";
    const char *y = "{\"metadata\":{\"name\":\"a\",\"labels\":{\"k\":\"2\"}}}";
    ASSERT_EQ_INT(kprojs_from_bytes(x, strlen(x), KPROJ_DEPLOYMENT, &a), 0);
    ASSERT_EQ_INT(kprojs_from_bytes(y, strlen(y), KPROJ_DEPLOYMENT, &b), 0);
    char why[128];
    ASSERT_EQ_INT(kref_diff(a, a, why, sizeof why), 0);
    ASSERT_EQ_INT(kref_diff(a, b, why, sizeof why), 1);
    ASSERT_STR_CONTAINS(why, "labels");
    ASSERT_EQ_INT(kref_diff(a, NULL, why, sizeof why), 1);
    kproj_free(a);
    kproj_free(b);
}

int main(void)
{
    TEST_RUN(test_list_fixture);
    TEST_RUN(test_watch_fixture);
    TEST_RUN(test_admission_pod);
    TEST_RUN(test_generated_deployments);
    TEST_RUN(test_pod_oom_resize);
    TEST_RUN(test_pod_status_resources);
    TEST_RUN(test_edge_cases);
    TEST_RUN(test_rollout_status);
    TEST_RUN(test_array_caps);
    TEST_RUN(test_stricter_than_cjson);
    TEST_RUN(test_depth);
    TEST_RUN(test_double_resize_pending);
    TEST_RUN(test_list_parse);
    TEST_RUN(test_event_parse);
    TEST_RUN(test_diff_reports);
    return test_summary();
}
