#include "support/tcache.h"
#include "kube/cache.h"
#include "kube/index.h"
#include "test.h"
#include "util/log.h"

#include <errno.h>
#include <malloc.h>

static cJSON *fixture_json(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", test_fixture_dir(), name);
    size_t n;
    char *s = test_read_file(path, &n);
    cJSON *j = cJSON_ParseWithLength(s, n);
    free(s);
    ASSERT_NOT_NULL(j);
    return j;
}

/* Records handler calls as "+ns/name ~ns/name(oldrv>newrv) -ns/name". */
typedef struct calls {
    char s[4096];
    int adds, updates, deletes;
} calls;

static void cat(calls *c, const char *fmt, const char *a, const char *b, const char *d)
{
    size_t o = strlen(c->s);
    snprintf(c->s + o, sizeof c->s - o, fmt, o ? " " : "", a, b, d);
}

static void on_add(const kproj_obj *o, void *ud)
{
    calls *c = ud;
    c->adds++;
    cat(c, "%s+%s/%s%s", o->ns, o->name, "");
}

static void on_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    calls *c = ud;
    c->updates++;
    size_t o = strlen(c->s);
    snprintf(c->s + o, sizeof c->s - o, "%s~%s(%s>%s)", o ? " " : "", cur->name, old->rv, cur->rv);
}

static void on_delete(const kproj_obj *o, void *ud)
{
    calls *c = ud;
    c->deletes++;
    cat(c, "%s-%s/%s%s", o->ns, o->name, "");
}

static cJSON *mini(const char *ns, const char *name, const char *rv)
{
    char buf[512];
    snprintf(buf, sizeof buf,
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"resourceVersion\":\"%s\"},"
             "\"spec\":{\"replicas\":2,\"template\":{\"spec\":{\"containers\":[{\"name\":\"c\"}]}}}"
             "}",
             name, ns, rv);
    cJSON *j = cJSON_Parse(buf);
    ASSERT_NOT_NULL(j);
    return j;
}

static void test_project_deployment_fixture(void)
{
    cJSON *list = fixture_json("list-deployments-limit1.json");
    const cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItem(list, "items"), 0);
    kproj_obj *o;
    ASSERT_EQ_INT(kproj_from_json(item, KPROJ_DEPLOYMENT, &o), 0);
    ASSERT_EQ_INT(o->kind, KPROJ_DEPLOYMENT);
    ASSERT_STR_EQ(o->ns, "default");
    ASSERT_STR_EQ(o->name, "web");
    ASSERT_STR_EQ(o->uid, "3bda5752-c80d-4763-9a31-e3f30ba12177");
    ASSERT_STR_EQ(o->rv, "225");
    ASSERT_EQ_INT(o->generation, 1);
    ASSERT_EQ_INT(o->nlabels, 1);
    ASSERT_STR_EQ(kproj_kv_get(o->labels, o->nlabels, "app"), "web");
    /* Only optipod.io/ annotations are kept. */
    ASSERT_EQ_INT(o->nannotations, 0);
    ASSERT_EQ_INT(o->nselector, 1);
    ASSERT_STR_EQ(kproj_kv_get(o->selector, o->nselector, "app"), "web");
    ASSERT_CMP_INT(o->ncontainers, >=, 1);
    ASSERT_NOT_NULL(o->containers[0].name);
    ASSERT_CMP_INT(o->replicas, >=, 0);
    /* The projection is a small fraction of the JSON (managedFields dropped). */
    char *json = cJSON_PrintUnformatted(item);
    ASSERT_CMP_INT(o->size * 4, <, strlen(json));
    free(json);
    kproj_free(o);
    cJSON_Delete(list);
}

static const char *POD =
    "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-7d-abc\",\"namespace\":\"prod\",\"uid\":\"u1\","
    "\"resourceVersion\":\"77\",\"labels\":{\"app\":\"web\"},\"annotations\":{\"optipod.io/"
    "policy\":\"p1\",\"other.io/x\":\"y\"},\"ownerReferences\":[{\"apiVersion\":\"apps/v1\","
    "\"kind\":\"ReplicaSet\",\"name\":\"web-7d\",\"uid\":\"rs1\",\"controller\":true}]},"
    "\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"app\",\"image\":\"img:1\","
    "\"resources\":{\"requests\":{\"cpu\":\"250m\",\"memory\":\"512Mi\"},\"limits\":{\"memory\":"
    "1073741824}},\"resizePolicy\":[{\"resourceName\":\"cpu\",\"restartPolicy\":\"NotRequired\"},"
    "{\"resourceName\":\"memory\",\"restartPolicy\":\"RestartContainer\"}]}],\"initContainers\":"
    "[{\"name\":\"init\",\"image\":\"busybox\"}]},\"status\":{\"phase\":\"Running\",\"qosClass\":"
    "\"Burstable\",\"resize\":\"InProgress\",\"conditions\":[{\"type\":\"Ready\",\"status\":"
    "\"True\"},{\"type\":\"PodResizePending\",\"status\":\"True\",\"reason\":\"Infeasible\"},"
    "{\"type\":\"PodResizeInProgress\",\"status\":\"True\"}],\"containerStatuses\":[{\"name\":"
    "\"app\",\"restartCount\":3,\"lastState\":{\"terminated\":{\"reason\":\"OOMKilled\","
    "\"exitCode\":137,\"finishedAt\":\"2026-11-22T01:00:00Z\"}}}]}}";

static void test_project_pod(void)
{
    cJSON *j = cJSON_Parse(POD);
    kproj_obj *o;
    ASSERT_EQ_INT(kproj_from_json(j, KPROJ_POD, &o), 0);
    ASSERT_STR_EQ(o->node, "n1");
    ASSERT_STR_EQ(o->phase, "Running");
    ASSERT_STR_EQ(o->qos_class, "Burstable");
    ASSERT_STR_EQ(o->resize_status, "InProgress");
    ASSERT_STR_EQ(o->resize_pending, "Infeasible");
    ASSERT_EQ_INT(o->resize_in_progress, 1);
    ASSERT_EQ_INT(o->nannotations, 1);
    ASSERT_STR_EQ(o->annotations[0].key, "optipod.io/policy");
    ASSERT_EQ_INT(o->nlabels, 0); /* nothing reads a pod's labels: not kept */
    const kproj_owner *ctl = kproj_controller(o);
    ASSERT_NOT_NULL(ctl);
    ASSERT_STR_EQ(ctl->kind, "ReplicaSet");
    ASSERT_STR_EQ(ctl->name, "web-7d");
    ASSERT_STR_EQ(ctl->uid, "rs1");
    const kproj_container *c = kproj_container_get(o, "app");
    ASSERT_NOT_NULL(c);
    ASSERT_STR_EQ(c->image, "img:1");
    ASSERT_STR_EQ(kproj_kv_get(c->requests, c->nrequests, "cpu"), "250m");
    ASSERT_STR_EQ(kproj_kv_get(c->requests, c->nrequests, "memory"), "512Mi");
    ASSERT_STR_EQ(kproj_kv_get(c->limits, c->nlimits, "memory"), "1073741824");
    ASSERT_STR_EQ(kproj_kv_get(c->resize_policy, c->nresize_policy, "memory"), "RestartContainer");
    ASSERT_EQ_INT(c->restart_count, 3);
    ASSERT_STR_EQ(c->oom_killed_at, "2026-11-22T01:00:00Z");
    c = kproj_container_get(o, "init");
    ASSERT_NOT_NULL(c);
    ASSERT_NULL(c->oom_killed_at);
    ASSERT_EQ_INT(c->restart_count, -1);
    ASSERT_NULL(kproj_container_get(o, "nope"));
    kproj_free(o);
    /* Without a name there is nothing to key it by. */
    cJSON *bad = cJSON_Parse("{\"metadata\":{\"namespace\":\"x\"}}");
    ASSERT_EQ_INT(kproj_from_json(bad, KPROJ_POD, &o), -EINVAL);
    ASSERT_NULL(o);
    ASSERT_EQ_INT(kproj_from_json(j, KPROJ_UNKNOWN, &o), -EINVAL);
    cJSON_Delete(bad);
    cJSON_Delete(j);
    ASSERT_EQ_INT(kproj_kind_for_resource("replicasets"), KPROJ_REPLICASET);
    ASSERT_EQ_INT(kproj_kind_for_resource("leases"), KPROJ_UNKNOWN);
}

static void test_project_selector_exprs(void)
{
    cJSON *j = cJSON_Parse(
        "{\"metadata\":{\"name\":\"s\",\"namespace\":\"d\",\"ownerReferences\":[{\"kind\":"
        "\"Deployment\",\"name\":\"web\",\"uid\":\"d1\",\"controller\":true}]},\"spec\":{"
        "\"selector\":{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\",\"values\":"
        "[\"a\",\"b\"]},{\"key\":\"x\",\"operator\":\"Exists\"}]}}}");
    kproj_obj *o;
    /* a ReplicaSet keeps its identity and owners only: the pod-to-Deployment map */
    ASSERT_EQ_INT(kproj_from_json(j, KPROJ_REPLICASET, &o), 0);
    ASSERT_STR_EQ(kproj_controller(o)->name, "web");
    ASSERT_EQ_INT(o->nselector_exprs, 0);
    kproj_free(o);
    ASSERT_EQ_INT(kproj_from_json(j, KPROJ_STATEFULSET, &o), 0);
    ASSERT_EQ_INT(o->nselector_exprs, 2);
    ASSERT_STR_EQ(o->selector_exprs[0].values, "a,b");
    ASSERT_STR_EQ(o->selector_exprs[1].op, "Exists");
    ASSERT_STR_EQ(o->selector_exprs[1].values, "");
    ASSERT_EQ_INT(o->replicas, -1);
    ASSERT_STR_EQ(kproj_controller(o)->kind, "Deployment");
    kproj_free(o);
    cJSON_Delete(j);
}

static void test_cache_events_and_handlers(void)
{
    kcache c;
    calls k = {0};
    kcache_init(&c, KPROJ_DEPLOYMENT);
    kcache_handlers h = {on_add, on_update, on_delete, &k};
    ASSERT_EQ_INT(kcache_add_handlers(&c, &h), 0);
    cJSON *a = mini("default", "a", "1"), *a2 = mini("default", "a", "2"),
          *b = mini("kube-system", "b", "3");
    ASSERT_EQ_INT(tcache_upsert(&c, a), 0);
    ASSERT_EQ_INT(tcache_upsert(&c, b), 0);
    ASSERT_EQ_INT(tcache_upsert(&c, a2), 0);
    ASSERT_EQ_INT(kcache_count(&c), 2);
    ASSERT_STR_EQ(kcache_get(&c, "default", "a")->rv, "2");
    ASSERT_STR_EQ(kcache_get_key(&c, "kube-system/b")->rv, "3");
    ASSERT_EQ_INT(tcache_remove(&c, b), 0);
    ASSERT_EQ_INT(tcache_remove(&c, b), -ENOENT);
    ASSERT_NULL(kcache_get(&c, "kube-system", "b"));
    ASSERT_STR_EQ(k.s, "+default/a +kube-system/b ~a(1>2) -kube-system/b");
    ASSERT_EQ_INT(kcache_count(&c), 1);
    ASSERT_EQ_INT(c.bytes, kcache_get(&c, "default", "a")->size);
    kcache_release(&c);
    cJSON_Delete(a);
    cJSON_Delete(a2);
    cJSON_Delete(b);
}

/* A relist is one consistent set: missing objects are deleted, unchanged ones
 * are not "updated", changed ones are; an aborted set changes nothing. */
static void test_cache_replace_semantics(void)
{
    kcache c;
    calls k = {0};
    kcache_init(&c, KPROJ_DEPLOYMENT);
    kcache_handlers h = {on_add, on_update, on_delete, &k};
    kcache_add_handlers(&c, &h);
    cJSON *o[] = {mini("d", "a", "1"), mini("d", "b", "1"), mini("d", "c", "1"),
                  mini("d", "b", "5"), mini("d", "e", "6")};
    kcache_replace_begin(&c);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_INT(tcache_replace_item(&c, o[i]), 0);
    ASSERT_EQ_INT(kcache_count(&c), 0); /* nothing visible before the end */
    kcache_replace_end(&c);
    ASSERT_EQ_INT(kcache_count(&c), 3);
    ASSERT_EQ_INT(k.adds, 3);
    k.s[0] = 0;

    /* Aborted relist: the cache keeps its state, no handler runs. */
    kcache_replace_begin(&c);
    tcache_replace_item(&c, o[4]);
    kcache_replace_abort(&c);
    ASSERT_EQ_INT(kcache_count(&c), 3);
    ASSERT_STR_EQ(k.s, "");

    /* Relist with {a(1), b(5), e(6)}: c deleted, b updated, e added, a untouched. */
    kcache_replace_begin(&c);
    tcache_replace_item(&c, o[0]);
    tcache_replace_item(&c, o[3]);
    tcache_replace_item(&c, o[4]);
    kcache_replace_end(&c);
    ASSERT_EQ_INT(kcache_count(&c), 3);
    ASSERT_EQ_INT(k.deletes, 1);
    ASSERT_EQ_INT(k.updates, 1);
    ASSERT_EQ_INT(k.adds, 4);
    ASSERT_STR_CONTAINS(k.s, "-d/c");
    ASSERT_STR_CONTAINS(k.s, "~b(1>5)");
    ASSERT_STR_CONTAINS(k.s, "+d/e");
    ASSERT(strncmp(k.s, "-d/c", 4) == 0); /* deletions come first */
    ASSERT_NULL(kcache_get(&c, "d", "c"));
    /* Items outside a replace are refused. */
    ASSERT_EQ_INT(tcache_replace_item(&c, o[2]), -EINVAL);
    kcache_release(&c);
    for (int i = 0; i < 5; i++)
        cJSON_Delete(o[i]);
}

static int count_cb(const kproj_obj *o, void *ud)
{
    (void)o;
    return ++*(int *)ud == 2 ? 9 : 0;
}

static void test_cache_foreach_and_unprojectable(void)
{
    kcache c;
    kcache_init(&c, KPROJ_DEPLOYMENT);
    cJSON *a = mini("d", "a", "1"), *b = mini("d", "b", "1"),
          *bad = cJSON_Parse("{\"metadata\":{}}");
    tcache_upsert(&c, a);
    tcache_upsert(&c, b);
    ASSERT_EQ_INT(tcache_upsert(&c, bad), -EINVAL);
    ASSERT_EQ_INT(c.skipped, 1);
    int n = 0;
    ASSERT_EQ_INT(kcache_foreach(&c, count_cb, &n), 9);
    ASSERT_EQ_INT(n, 2);
    kcache_release(&c);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(bad);
}

/* Memory target: at most 2 KiB per cached Deployment with 2 containers, measured
 * on a real object (with managedFields) given requests+limits and an optipod.io
 * annotation. */
static void test_cache_memory_per_deployment(void)
{
    cJSON *d = fixture_json("container-removal-state-before-release.json");
    cJSON *md = cJSON_GetObjectItem(d, "metadata");
    cJSON *labels = cJSON_AddObjectToObject(md, "labels");
    cJSON_AddStringToObject(labels, "app", "twoc");
    cJSON_AddStringToObject(labels, "app.kubernetes.io/part-of", "shop");
    cJSON_AddStringToObject(cJSON_GetObjectItem(md, "annotations"), "optipod.io/policy",
                            "default-policy");
    cJSON *cs = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "template"),
                            "spec"),
        "containers");
    ASSERT_EQ_INT(cJSON_GetArraySize(cs), 2);
    cJSON *ctr;
    cJSON_ArrayForEach(ctr, cs)
    {
        cJSON *res = cJSON_GetObjectItem(ctr, "resources");
        cJSON_AddStringToObject(cJSON_GetObjectItem(res, "requests"), "memory", "256Mi");
        cJSON *lim = cJSON_AddObjectToObject(res, "limits");
        cJSON_AddStringToObject(lim, "cpu", "1");
        cJSON_AddStringToObject(lim, "memory", "512Mi");
    }
    cJSON *name = cJSON_GetObjectItem(md, "name");
    enum { N = 2000 };
    kcache c;
    kcache_init(&c, KPROJ_DEPLOYMENT);
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < N; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "web-app-number-%05d", i);
        cJSON_SetValuestring(name, nm);
        ASSERT_EQ_INT(tcache_upsert(&c, d), 0);
    }
    struct mallinfo2 after = mallinfo2();
    ASSERT_EQ_INT(kcache_count(&c), N);
    size_t per = kcache_mem_bytes(&c) / N;
    size_t heap = after.uordblks > before.uordblks ? (after.uordblks - before.uordblks) / N : 0;
    printf("     memory per cached 2-container Deployment: %zu B counted, %zu B heap (mallinfo2)\n",
           per, heap);
    ASSERT_CMP_INT(per, <=, 2048);
    if (heap) /* mallinfo2 reports nothing under ASan */
        ASSERT_CMP_INT(heap, <=, 2048);
    const kproj_obj *o = kcache_get(&c, "default", "web-app-number-00007");
    ASSERT_NOT_NULL(o);
    ASSERT_EQ_INT(o->ncontainers, 2);
    ASSERT_STR_EQ(kproj_kv_get(o->annotations, o->nannotations, "optipod.io/policy"),
                  "default-policy");
    ASSERT_STR_EQ(kproj_kv_get(o->containers[1].limits, o->containers[1].nlimits, "memory"),
                  "512Mi");
    kcache_release(&c);
    cJSON_Delete(d);
}

/* ---- secondary indexes --------------------------------------------------------------------- */

/* A pod of ns controlled by kind/owner ("" owner: none). */
static cJSON *owned(const char *ns, const char *name, const char *rv, const char *kind,
                    const char *owner)
{
    char buf[768], refs[256] = "";
    if (*owner)
        snprintf(refs, sizeof refs,
                 ",\"ownerReferences\":[{\"kind\":\"%s\",\"name\":\"%s\",\"uid\":\"u\","
                 "\"controller\":true}]",
                 kind, owner);
    snprintf(buf, sizeof buf,
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"resourceVersion\":\"%s\"%s},"
             "\"spec\":{\"containers\":[{\"name\":\"c\"}]}}",
             name, ns, rv, refs);
    cJSON *j = cJSON_Parse(buf);
    ASSERT_NOT_NULL(j);
    return j;
}

/* The names under a value, sorted and joined by ' ' (order in a bucket is not kept). */
static const char *under(const kcache *c, const char *index, const char *value)
{
    static char out[4096];
    const kproj_obj *const *objs;
    size_t n;
    out[0] = 0;
    if (kcache_by_index(c, index, value, &objs, &n) != 0)
        return "(no index)";
    const char *names[64];
    for (size_t i = 0; i < n && i < 64; i++) {
        size_t j = i;
        while (j > 0 && strcmp(names[j - 1], objs[i]->name) > 0) {
            names[j] = names[j - 1];
            j--;
        }
        names[j] = objs[i]->name;
    }
    for (size_t i = 0; i < n && i < 64; i++) {
        size_t o = strlen(out);
        snprintf(out + o, sizeof out - o, "%s%s", i ? " " : "", names[i]);
    }
    return out;
}

/* What a handler sees of the index: the state after the change. */
typedef struct seen {
    const kcache *c;
    char s[512];
} seen;

static void seen_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    seen *x = ud;
    (void)old;
    char rs1[256];
    snprintf(rs1, sizeof rs1, "%s", under(x->c, KIDX_CONTROLLER, "d/ReplicaSet/rs1"));
    snprintf(x->s, sizeof x->s, "%s | %s", rs1, under(x->c, KIDX_CONTROLLER, "d/ReplicaSet/rs2"));
}

static void test_index_follows_add_update_delete(void)
{
    kcache c;
    kcache_init(&c, KPROJ_POD);
    ASSERT_EQ_INT(kcache_add_index(&c, KIDX_CONTROLLER, kidx_controller, NULL), 0);
    ASSERT_EQ_INT(kcache_add_index(&c, KIDX_NAMESPACE, kidx_namespace, NULL), 0);
    ASSERT_EQ_INT(kcache_add_index(&c, KIDX_NAMESPACE, kidx_namespace, NULL), -EEXIST);
    seen x = {.c = &c};
    kcache_handlers h = {.on_update = seen_update, .ud = &x};
    kcache_add_handlers(&c, &h);
    cJSON *o[] = {
        owned("d", "a", "1", "ReplicaSet", "rs1"), owned("d", "b", "1", "ReplicaSet", "rs1"),
        owned("d", "c", "1", "ReplicaSet", "rs2"), owned("e", "x", "1", "ReplicaSet", "rs1"),
        owned("d", "lone", "1", "", ""),           owned("d", "b", "2", "ReplicaSet", "rs2")};
    for (int i = 0; i < 5; i++)
        ASSERT_EQ_INT(tcache_upsert(&c, o[i]), 0);
    ASSERT_STR_EQ(under(&c, KIDX_CONTROLLER, "d/ReplicaSet/rs1"), "a b");
    ASSERT_STR_EQ(under(&c, KIDX_CONTROLLER, "d/ReplicaSet/rs2"), "c");
    ASSERT_STR_EQ(under(&c, KIDX_CONTROLLER, "e/ReplicaSet/rs1"), "x"); /* per namespace */
    ASSERT_STR_EQ(under(&c, KIDX_NAMESPACE, "d"), "a b c lone");
    ASSERT_STR_EQ(under(&c, KIDX_NAMESPACE, "e"), "x");
    ASSERT_STR_EQ(under(&c, KIDX_NAMESPACE, "nowhere"), "");
    ASSERT_STR_EQ(under(&c, "no-such-index", "d"), "(no index)");

    /* b moves to rs2: out of rs1's set, into rs2's, before the handler runs */
    ASSERT_EQ_INT(tcache_upsert(&c, o[5]), 0);
    ASSERT_STR_EQ(x.s, "a | b c");
    ASSERT_STR_EQ(under(&c, KIDX_NAMESPACE, "d"), "a b c lone");
    /* the same object again (a resync): nothing doubles */
    ASSERT_EQ_INT(tcache_upsert(&c, o[5]), 0);
    ASSERT_STR_EQ(under(&c, KIDX_CONTROLLER, "d/ReplicaSet/rs2"), "b c");

    ASSERT_EQ_INT(tcache_remove(&c, o[0]), 0);
    ASSERT_STR_EQ(under(&c, KIDX_CONTROLLER, "d/ReplicaSet/rs1"), "");
    const kproj_obj *const *objs;
    size_t n = 9;
    ASSERT_EQ_INT(kcache_by_index(&c, KIDX_CONTROLLER, "d/ReplicaSet/rs1", &objs, &n), 0);
    ASSERT_EQ_INT(n, 0);
    ASSERT_NULL(objs);

    /* a relist moves, adds and deletes through the indexes too */
    cJSON *r[] = {owned("d", "c", "7", "ReplicaSet", "rs1"),
                  owned("d", "n", "7", "StatefulSet", "db")};
    kcache_replace_begin(&c);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ_INT(tcache_replace_item(&c, r[i]), 0);
    kcache_replace_end(&c);
    ASSERT_STR_EQ(under(&c, KIDX_CONTROLLER, "d/ReplicaSet/rs1"), "c");
    ASSERT_STR_EQ(under(&c, KIDX_CONTROLLER, "d/ReplicaSet/rs2"), "");
    ASSERT_STR_EQ(under(&c, KIDX_CONTROLLER, "d/StatefulSet/db"), "n");
    ASSERT_STR_EQ(under(&c, KIDX_NAMESPACE, "d"), "c n");
    ASSERT_STR_EQ(under(&c, KIDX_NAMESPACE, "e"), "");
    ASSERT_EQ_INT(kcache_del(&c, "d", "c"), 0);
    ASSERT_EQ_INT(kcache_del(&c, "d", "n"), 0);
    ASSERT_EQ_INT(c.idx_bytes, 0); /* every bucket went with its last object */
    ASSERT_EQ_INT(c.entry_bytes, 0);
    kcache_release(&c);
    for (int i = 0; i < 6; i++)
        cJSON_Delete(o[i]);
    for (int i = 0; i < 2; i++)
        cJSON_Delete(r[i]);
}

/* An index function giving a value twice, and one too long to index. */
static int twice(const kproj_obj *o, char (*vals)[KCACHE_KEY_MAX], int max, void *ud)
{
    (void)ud;
    (void)max;
    snprintf(vals[0], KCACHE_KEY_MAX, "v");
    snprintf(vals[1], KCACHE_KEY_MAX, "v");
    memset(vals[2], 'x', KCACHE_KEY_MAX); /* not terminated */
    snprintf(vals[3], KCACHE_KEY_MAX, "%s", o->name);
    return 4;
}

static void test_index_added_late_and_odd_values(void)
{
    kcache c;
    kcache_init(&c, KPROJ_POD);
    cJSON *a = owned("d", "a", "1", "ReplicaSet", "rs1"), *b = owned("d", "b", "1", "", "");
    tcache_upsert(&c, a);
    tcache_upsert(&c, b);
    /* objects already cached are indexed when the index is added */
    ASSERT_EQ_INT(kcache_add_index(&c, "twice", twice, NULL), 0);
    ASSERT_STR_EQ(under(&c, "twice", "v"), "a b");
    ASSERT_STR_EQ(under(&c, "twice", "b"), "b");
    ASSERT_EQ_INT(kcache_add_index(&c, KIDX_CONTROLLER, kidx_controller, NULL), 0);
    ASSERT_STR_EQ(under(&c, KIDX_CONTROLLER, "d/ReplicaSet/rs1"), "a");
    ASSERT_EQ_INT(kcache_add_index(&c, "3", kidx_namespace, NULL), 0);
    ASSERT_EQ_INT(kcache_add_index(&c, "4", kidx_namespace, NULL), 0);
    ASSERT_EQ_INT(kcache_add_index(&c, "5", kidx_namespace, NULL), -ENOSPC);
    ASSERT_EQ_INT(tcache_remove(&c, a), 0);
    ASSERT_STR_EQ(under(&c, "twice", "v"), "b");
    size_t before = kcache_mem_bytes(&c);
    ASSERT_CMP_INT(before, >, c.bytes);
    kcache_release(&c);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static int count_pod(const kproj_obj *o, void *ud)
{
    (void)o;
    (*(int *)ud)++;
    return 0;
}

typedef struct brute {
    const char *value;
    int n;
} brute;

static int brute_count(const kproj_obj *o, void *ud)
{
    brute *b = ud;
    char v[KCACHE_INDEX_VALUES][KCACHE_KEY_MAX];
    if (kidx_controller(o, v, KCACHE_INDEX_VALUES, NULL) == 1 && strcmp(v[0], b->value) == 0)
        b->n++;
    return 0;
}

static int entry_bytes(const kproj_obj *o, void *ud)
{
    char key[KCACHE_KEY_MAX];
    kproj_key(key, sizeof key, o->ns, o->name);
    *(size_t *)ud += sizeof(opmap_entry) + strlen(key) + 1;
    return 0;
}

/* Thousands of pods over hundreds of owners, moved and deleted at random: every
 * owner's set always equals what a full scan finds. */
static void test_index_many_objects(void)
{
    enum { PODS = 6000, OWNERS = 300, STEPS = 8000 };
    kcache c;
    kcache_init(&c, KPROJ_POD);
    kcache_add_index(&c, KIDX_CONTROLLER, kidx_controller, NULL);
    uint64_t rng = 42;
    char name[32], owner[32], rv[16];
    for (int i = 0; i < PODS; i++) {
        snprintf(name, sizeof name, "p%d", i);
        snprintf(owner, sizeof owner, "rs%d", i % OWNERS);
        cJSON *p = owned("d", name, "1", "ReplicaSet", owner);
        ASSERT_EQ_INT(tcache_upsert(&c, p), 0);
        cJSON_Delete(p);
    }
    for (int s = 0; s < STEPS; s++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((rng >> 33) % PODS), o = (int)((rng >> 13) % OWNERS);
        snprintf(name, sizeof name, "p%d", i);
        snprintf(owner, sizeof owner, "rs%d", o);
        snprintf(rv, sizeof rv, "%d", s + 2);
        if ((rng >> 60) == 0) {
            kcache_del(&c, "d", name);
            continue;
        }
        cJSON *p = owned("d", name, rv, "ReplicaSet", owner);
        ASSERT_EQ_INT(tcache_upsert(&c, p), 0);
        cJSON_Delete(p);
    }
    int total = 0;
    for (int o = 0; o < OWNERS; o++) {
        char v[64];
        snprintf(v, sizeof v, "d/ReplicaSet/rs%d", o);
        brute b = {v, 0};
        kcache_foreach(&c, brute_count, &b);
        int n = 0;
        ASSERT_EQ_INT(kcache_index_foreach(&c, KIDX_CONTROLLER, v, count_pod, &n), 0);
        ASSERT_EQ_INT(n, b.n);
        total += n;
    }
    ASSERT_EQ_INT(total, kcache_count(&c));
    ASSERT_CMP_INT(total, <, PODS); /* some were deleted */
    /* the bytes kept up as objects came and went are what a count finds now */
    size_t entries = 0;
    kcache_foreach(&c, entry_bytes, &entries);
    ASSERT_EQ_INT(c.entry_bytes, entries);
    kcache_release(&c);
}

static int name_of(const kproj_obj *o, void *ud)
{
    char *s = ud;
    size_t n = strlen(s);
    snprintf(s + n, 512 - n, "%s%s", n ? " " : "", o->name);
    return 0;
}

/* A Deployment's pods through its ReplicaSets; a StatefulSet's directly. */
static void test_index_workload_pods(void)
{
    kcache pods, rs;
    kcache_init(&pods, KPROJ_POD);
    kcache_init(&rs, KPROJ_REPLICASET);
    kcache_add_index(&pods, KIDX_CONTROLLER, kidx_controller, NULL);
    kcache_add_index(&rs, KIDX_CONTROLLER, kidx_controller, NULL);
    cJSON *o[] = {owned("d", "web-1", "1", "Deployment", "web"),
                  owned("d", "web-old", "1", "Deployment", "web"),
                  owned("e", "web-2", "1", "Deployment", "web"),
                  owned("d", "other", "1", "Deployment", "api")};
    for (int i = 0; i < 4; i++)
        tcache_upsert(&rs, o[i]);
    cJSON *p[] = {owned("d", "p1", "1", "ReplicaSet", "web-1"),
                  owned("d", "p2", "1", "ReplicaSet", "web-old"),
                  owned("d", "p3", "1", "ReplicaSet", "other"),
                  owned("e", "p4", "1", "ReplicaSet", "web-2"),
                  owned("d", "p5", "1", "StatefulSet", "db"),
                  owned("d", "p6", "1", "ReplicaSet", "orphan-rs")};
    for (int i = 0; i < 6; i++)
        tcache_upsert(&pods, p[i]);
    char s[512] = "";
    kidx_workload_pods(&pods, &rs, "Deployment", "d", "web", name_of, s);
    ASSERT(strcmp(s, "p1 p2") == 0 || strcmp(s, "p2 p1") == 0);
    s[0] = 0;
    kidx_workload_pods(&pods, &rs, "StatefulSet", "d", "db", name_of, s);
    ASSERT_STR_EQ(s, "p5");
    s[0] = 0;
    kidx_workload_pods(&pods, &rs, "Deployment", "d", "db", name_of, s);
    ASSERT_STR_EQ(s, "");
    /* the ReplicaSet leaves its Deployment: so do its pods */
    cJSON *moved = owned("d", "web-old", "2", "Deployment", "api");
    tcache_upsert(&rs, moved);
    s[0] = 0;
    kidx_workload_pods(&pods, &rs, "Deployment", "d", "web", name_of, s);
    ASSERT_STR_EQ(s, "p1");
    kcache_release(&pods);
    kcache_release(&rs);
    for (int i = 0; i < 4; i++)
        cJSON_Delete(o[i]);
    for (int i = 0; i < 6; i++)
        cJSON_Delete(p[i]);
    cJSON_Delete(moved);
}

int main(void)
{
    FILE *quiet = fopen("/dev/null", "w");
    oplog_set_sink(quiet);
    TEST_RUN(test_project_deployment_fixture);
    TEST_RUN(test_project_pod);
    TEST_RUN(test_project_selector_exprs);
    TEST_RUN(test_cache_events_and_handlers);
    TEST_RUN(test_cache_replace_semantics);
    TEST_RUN(test_cache_foreach_and_unprojectable);
    TEST_RUN(test_cache_memory_per_deployment);
    TEST_RUN(test_index_follows_add_update_delete);
    TEST_RUN(test_index_added_late_and_odd_values);
    TEST_RUN(test_index_many_objects);
    TEST_RUN(test_index_workload_pods);
    oplog_set_sink(NULL);
    fclose(quiet);
    return test_summary();
}
