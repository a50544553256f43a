#include "support/tcache.h"
#include "kube/cache.h"
#include "test.h"
#include "webhook/resolve.h"

#include <errno.h>

typedef struct world {
    kcache rs, dep, sts, ds;
    wresolve_caches c;
} world;

static void put(kcache *c, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    ASSERT_NOT_NULL(j);
    int rc = tcache_upsert(c, j);
    cJSON_Delete(j);
    ASSERT_EQ_INT(rc, 0);
}

#define ANNS_ON                                                                                    \
    "\"optipod.io/webhook-enabled\":\"true\",\"optipod.io/strategy\":\"webhook\","                 \
    "\"optipod.io/cpu-request.nginx\":\"250m\",\"optipod.io/memory-request.nginx\":\"512Mi\","     \
    "\"optipod.io/memory-limit.nginx\":\"1Gi\",\"optipod.io/cpu-request.side.car\":\"50m\","       \
    "\"optipod.io/last-applied\":\"x\",\"other.io/cpu-request.nginx\":\"9\""

static void world_init(world *w)
{
    kcache_init(&w->rs, KPROJ_REPLICASET);
    kcache_init(&w->dep, KPROJ_DEPLOYMENT);
    kcache_init(&w->sts, KPROJ_STATEFULSET);
    kcache_init(&w->ds, KPROJ_DAEMONSET);
    w->c = (wresolve_caches){&w->rs, &w->dep, &w->sts, &w->ds};
    /* The ReplicaSet of the fixture's pod, owned by Deployment web-app. */
    put(&w->rs, "{\"metadata\":{\"name\":\"web-app-d6d4b97cf\",\"namespace\":\"prod\","
                "\"uid\":\"6b2b9139-49e2-4c8b-89ec-da77eb712910\",\"resourceVersion\":\"1\","
                "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                "\"name\":\"web-app\",\"uid\":\"d-1\",\"controller\":true}]},"
                "\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"nginx\"}]}}}}");
    put(&w->dep, "{\"metadata\":{\"name\":\"web-app\",\"namespace\":\"prod\",\"uid\":\"d-1\","
                 "\"resourceVersion\":\"2\",\"annotations\":{" ANNS_ON "}},"
                 "\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"nginx\"}]}}}}");
    put(&w->sts, "{\"metadata\":{\"name\":\"db\",\"namespace\":\"prod\",\"uid\":\"s-1\","
                 "\"resourceVersion\":\"3\",\"annotations\":{" ANNS_ON "}},"
                 "\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"nginx\"}]}}}}");
    put(&w->ds, "{\"metadata\":{\"name\":\"agent\",\"namespace\":\"prod\",\"uid\":\"ds-1\","
                "\"resourceVersion\":\"3\",\"annotations\":{\"optipod.io/webhook-enabled\":"
                "\"true\",\"optipod.io/strategy\":\"ssa\","
                "\"optipod.io/cpu-request.a\":\"1\"}},"
                "\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\"}]}}}}");
}

static void world_release(world *w)
{
    kcache_release(&w->rs);
    kcache_release(&w->dep);
    kcache_release(&w->sts);
    kcache_release(&w->ds);
}

static const admrev_want *find(const wresolve_result *r, const char *c)
{
    for (size_t i = 0; i < r->nwants; i++)
        if (strcmp(r->wants[i].container, c) == 0)
            return &r->wants[i];
    return NULL;
}

static void check_web_wants(const wresolve_result *r)
{
    ASSERT_EQ_INT(r->nwants, 2);
    const admrev_want *n = find(r, "nginx");
    ASSERT_NOT_NULL(n);
    ASSERT_STR_EQ(n->cpu_req, "250m");
    ASSERT_STR_EQ(n->mem_req, "512Mi");
    ASSERT_STR_EQ(n->mem_lim, "1Gi");
    ASSERT_NULL(n->cpu_lim);
    const admrev_want *s = find(r, "side.car");
    ASSERT_NOT_NULL(s);
    ASSERT_STR_EQ(s->cpu_req, "50m");
}

/* The fixture's pod: ReplicaSet → Deployment, annotations → wants. */
static void test_fixture_pod_to_deployment(void)
{
    world w;
    world_init(&w);
    char path[512];
    snprintf(path, sizeof path, "%s/admission-review-pod-create.json", test_fixture_dir());
    size_t n;
    char *body = test_read_file(path, &n);
    admrev_req r;
    ASSERT_EQ_INT(admrev_parse(&r, body, n, NULL), 0);
    wresolve_result res;
    const char *reason = "x";
    operr err;
    ASSERT_EQ_INT(
        wresolve_pod(&w.c, r.ns, r.owner_kind, r.owner_name, r.owner_uid, &res, &reason, &err),
        WRESOLVE_OK);
    ASSERT_NULL(reason);
    ASSERT_NOT_NULL(res.workload);
    ASSERT_EQ_INT(res.workload->kind, KPROJ_DEPLOYMENT);
    ASSERT_STR_EQ(res.workload->name, "web-app");
    check_web_wants(&res);
    admrev_release(&r);
    free(body);
    world_release(&w);
}

static void expect_skip(world *w, const char *ns, const char *kind, const char *name,
                        const char *uid, const char *slug, const char *msg)
{
    wresolve_result res;
    const char *reason = NULL;
    operr err = {{0}};
    ASSERT_EQ_INT(wresolve_pod(&w->c, ns, kind, name, uid, &res, &reason, &err), WRESOLVE_SKIP);
    ASSERT_STR_EQ(reason, slug);
    ASSERT_STR_CONTAINS(err.msg, msg);
    ASSERT_NULL(res.workload);
    ASSERT_EQ_INT(res.nwants, 0);
}

static void test_unknown_and_odd_owners(void)
{
    world w;
    world_init(&w);
    expect_skip(&w, "prod", NULL, NULL, NULL, "no-owner", "no controller ownerReference");
    expect_skip(&w, "prod", "ReplicaSet", "nope", NULL, "unknown-owner",
                "ReplicaSet 'prod/nope' is not in the cache");
    expect_skip(&w, "other", "ReplicaSet", "web-app-d6d4b97cf", NULL, "unknown-owner",
                "'other/web-app-d6d4b97cf'");
    expect_skip(&w, "prod", "ReplicaSet", "web-app-d6d4b97cf", "older-uid", "owner-uid",
                "is not the referenced older-uid");
    expect_skip(&w, "prod", "Job", "j", NULL, "owner-kind", "owned by Job 'j'");
    expect_skip(&w, "prod", "DaemonSet", "agent", "ds-1", "strategy", "not \"webhook\"");
    /* RS → Deployment not cached */
    put(&w.rs, "{\"metadata\":{\"name\":\"orphan-1\",\"namespace\":\"prod\",\"uid\":\"r2\","
               "\"ownerReferences\":[{\"kind\":\"Deployment\",\"name\":\"orphan\",\"uid\":\"d9\","
               "\"controller\":true}]},\"spec\":{}}");
    expect_skip(&w, "prod", "ReplicaSet", "orphan-1", "r2", "unknown-owner",
                "Deployment 'prod/orphan' is not in the cache");
    /* RS controlled by something else */
    put(&w.rs, "{\"metadata\":{\"name\":\"argo-1\",\"namespace\":\"prod\",\"uid\":\"r3\","
               "\"ownerReferences\":[{\"kind\":\"Rollout\",\"name\":\"argo\",\"uid\":\"x\","
               "\"controller\":true}]},\"spec\":{}}");
    expect_skip(&w, "prod", "ReplicaSet", "argo-1", NULL, "owner-kind", "controlled by a Rollout");
    /* No caches at all */
    wresolve_caches none = {0};
    wresolve_result res;
    const char *reason;
    ASSERT_EQ_INT(wresolve_pod(&none, "prod", "StatefulSet", "db", NULL, &res, &reason, NULL),
                  WRESOLVE_SKIP);
    ASSERT_STR_EQ(reason, "unknown-owner");
    world_release(&w);
}

static void test_statefulset_and_bare_replicaset(void)
{
    world w;
    world_init(&w);
    wresolve_result res;
    const char *reason;
    ASSERT_EQ_INT(wresolve_pod(&w.c, "prod", "StatefulSet", "db", "s-1", &res, &reason, NULL),
                  WRESOLVE_OK);
    ASSERT_STR_EQ(res.workload->name, "db");
    check_web_wants(&res);
    put(&w.rs, "{\"metadata\":{\"name\":\"bare\",\"namespace\":\"prod\",\"uid\":\"b\","
               "\"annotations\":{" ANNS_ON "}},\"spec\":{}}");
    ASSERT_EQ_INT(wresolve_pod(&w.c, "prod", "ReplicaSet", "bare", "b", &res, &reason, NULL),
                  WRESOLVE_OK);
    ASSERT_EQ_INT(res.workload->kind, KPROJ_REPLICASET);
    check_web_wants(&res);
    world_release(&w);
}

static void test_enablement_and_annotations(void)
{
    world w;
    world_init(&w);
    put(&w.sts, "{\"metadata\":{\"name\":\"off\",\"namespace\":\"prod\",\"uid\":\"o\","
                "\"annotations\":{\"optipod.io/webhook-enabled\":\"false\","
                "\"optipod.io/strategy\":\"webhook\",\"optipod.io/cpu-request.a\":\"1\"}},"
                "\"spec\":{}}");
    expect_skip(&w, "prod", "StatefulSet", "off", NULL, "not-enabled",
                "optipod.io/webhook-enabled is not \"true\"");
    put(&w.sts, "{\"metadata\":{\"name\":\"empty\",\"namespace\":\"prod\",\"uid\":\"e\","
                "\"annotations\":{\"optipod.io/webhook-enabled\":\"true\","
                "\"optipod.io/strategy\":\"webhook\"}},\"spec\":{}}");
    expect_skip(&w, "prod", "StatefulSet", "empty", NULL, "no-annotations",
                "no optipod.io resource annotations");
    put(&w.sts, "{\"metadata\":{\"name\":\"bad\",\"namespace\":\"prod\",\"uid\":\"e\","
                "\"annotations\":{\"optipod.io/webhook-enabled\":\"true\","
                "\"optipod.io/strategy\":\"webhook\",\"optipod.io/cpu-request.\":\"1\"}},"
                "\"spec\":{}}");
    expect_skip(&w, "prod", "StatefulSet", "bad", NULL, "bad-annotation", "has no container");
    world_release(&w);
}

/* `kubectl optipod release` marks (docs/recommendation.md): a released workload gets
 * nothing, a released container keeps its own values, the others are still injected. */
static void test_released_workload_and_container(void)
{
    world w;
    world_init(&w);
    put(&w.sts, "{\"metadata\":{\"name\":\"rel\",\"namespace\":\"prod\",\"uid\":\"r\","
                "\"annotations\":{" ANNS_ON ",\"optipod.io/managed\":\"false\"}},\"spec\":{}}");
    expect_skip(&w, "prod", "StatefulSet", "rel", NULL, "released",
                "released (optipod.io/managed: \"false\")");
    put(&w.sts, "{\"metadata\":{\"name\":\"one\",\"namespace\":\"prod\",\"uid\":\"o1\","
                "\"annotations\":{" ANNS_ON ",\"optipod.io/managed.nginx\":\"false\"}},"
                "\"spec\":{}}");
    wresolve_result res;
    const char *reason;
    ASSERT_EQ_INT(wresolve_pod(&w.c, "prod", "StatefulSet", "one", "o1", &res, &reason, NULL),
                  WRESOLVE_OK);
    ASSERT_EQ_INT(res.nwants, 1);
    ASSERT_NULL(find(&res, "nginx"));
    ASSERT_STR_EQ(find(&res, "side.car")->cpu_req, "50m");
    put(&w.sts, "{\"metadata\":{\"name\":\"both\",\"namespace\":\"prod\",\"uid\":\"b2\","
                "\"annotations\":{" ANNS_ON ",\"optipod.io/managed.nginx\":\"false\","
                "\"optipod.io/managed.side.car\":\"false\"}},\"spec\":{}}");
    expect_skip(&w, "prod", "StatefulSet", "both", NULL, "released",
                "every annotated container is released");
    /* any other value is managed: `manage` removes the marker, a typo does not release */
    put(&w.sts, "{\"metadata\":{\"name\":\"on\",\"namespace\":\"prod\",\"uid\":\"o2\","
                "\"annotations\":{" ANNS_ON ",\"optipod.io/managed\":\"true\"}},\"spec\":{}}");
    ASSERT_EQ_INT(wresolve_pod(&w.c, "prod", "StatefulSet", "on", "o2", &res, &reason, NULL),
                  WRESOLVE_OK);
    check_web_wants(&res);
    world_release(&w);
}

int main(void)
{
    TEST_RUN(test_fixture_pod_to_deployment);
    TEST_RUN(test_unknown_and_odd_owners);
    TEST_RUN(test_statefulset_and_bare_replicaset);
    TEST_RUN(test_enablement_and_annotations);
    TEST_RUN(test_released_workload_and_container);
    return test_summary();
}
