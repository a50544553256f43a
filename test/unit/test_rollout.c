/*
 * The rollout gate alone: every GO/WAIT rule over projections built from JSON
 * the way the informers build them. Workload completeness per kind, PDBs
 * (blocking, stale, selector misses, null and empty selectors, other
 * namespaces), the one-at-a-time slot (in flight, in progress, completed,
 * not yet observed, gone, stuck past its bound), OnDelete, and whether a
 * pod still runs with other values than the recommendation.
 */
#include <cJSON.h>
#include <errno.h>
#include <stdarg.h>

#include "controller/rollout.h"
#include "test.h"

/* ---- projections ------------------------------------------------------------------------- */

static kproj_obj *pool[32];
static size_t npool;

static const kproj_obj *proj(enum kproj_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const kproj_obj *proj(enum kproj_kind kind, const char *fmt, ...)
{
    char json[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(json, sizeof json, fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_Parse(json);
    ASSERT_NOT_NULL(root);
    kproj_obj *o = NULL;
    ASSERT_EQ_INT(kproj_from_json(root, kind, &o), 0);
    cJSON_Delete(root);
    ASSERT(npool < sizeof pool / sizeof pool[0]);
    pool[npool++] = o;
    return o;
}

static void pool_free(void)
{
    while (npool)
        kproj_free(pool[--npool]);
}

/* A Deployment "ns/name" at generation gen whose status says observed, total,
 * updated and available replicas (spec replicas 3). */
static const kproj_obj *deploy(const char *ns, const char *name, int gen, int observed, int total,
                               int updated, int available, const char *extra_spec)
{
    return proj(KPROJ_DEPLOYMENT,
                "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"generation\":%d},"
                "\"spec\":{\"replicas\":3,%s\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},"
                "\"template\":{\"metadata\":{\"labels\":{\"app\":\"%s\",\"tier\":\"fe\"}}}},"
                "\"status\":{\"observedGeneration\":%d,\"replicas\":%d,\"updatedReplicas\":%d,"
                "\"readyReplicas\":%d,\"availableReplicas\":%d}}",
                name, ns, gen, extra_spec ? extra_spec : "", name, name, observed, total, updated,
                available, available);
}

static const kproj_obj *ready_deploy(const char *ns, const char *name)
{
    return deploy(ns, name, 2, 2, 3, 3, 3, NULL);
}

static const kproj_obj *pdb(const char *ns, const char *name, const char *selector, int gen,
                            int observed, int allowed)
{
    return proj(KPROJ_PDB,
                "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"generation\":%d},"
                "\"spec\":{\"minAvailable\":2%s%s},\"status\":{\"observedGeneration\":%d,"
                "\"disruptionsAllowed\":%d}}",
                name, ns, gen, selector ? ",\"selector\":" : "", selector ? selector : "", observed,
                allowed);
}

static rollout_out gate(const char *key, const kproj_obj *w, const rollout_slot *slot,
                        const kproj_obj *holder, const kproj_obj *const *pdbs, size_t npdbs,
                        int64_t now_ms)
{
    rollout_in in = {.key = key,
                     .workload = w,
                     .slot = slot,
                     .slot_workload = holder,
                     .pdbs = pdbs,
                     .npdbs = npdbs,
                     .now_ms = now_ms};
    rollout_out out;
    ASSERT_EQ_INT(rollout_gate(&in, &out), 0);
    return out;
}

#define KEY "Deployment/shop/web"

/* ---- the workload itself ------------------------------------------------------------------ */

static void test_available_workload_goes(void)
{
    rollout_out o = gate(KEY, ready_deploy("shop", "web"), NULL, NULL, NULL, 0, 1000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_GO);
    ASSERT_EQ_INT(o.release, ROLLOUT_KEEP);
    ASSERT_NULL(o.pdb);
    ASSERT_EQ_INT(o.retry_ms, 0);
    rollout_in bad = {.key = KEY};
    ASSERT_EQ_INT(rollout_gate(&bad, &o), -EINVAL);
    pool_free();
}

static void test_deployment_mid_rollout_waits(void)
{
    static const int cases[][4] = {
        {2, 3, 3, 3}, /* generation 3 not observed yet */
        {3, 4, 3, 3}, /* an old pod still runs (status.replicas 4) */
        {3, 3, 2, 3}, /* one replica not updated */
        {3, 3, 3, 2}, /* one replica not available */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const kproj_obj *w =
            deploy("shop", "web", 3, cases[i][0], cases[i][1], cases[i][2], cases[i][3], NULL);
        rollout_out o = gate(KEY, w, NULL, NULL, NULL, 0, 1000);
        ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
        ASSERT_EQ_INT(o.retry_ms, ROLLOUT_RETRY_MS);
        ASSERT_STR_CONTAINS(o.reason, "mid-rollout or not fully available");
    }
    /* no status at all: nothing is known to be available */
    const kproj_obj *w = proj(KPROJ_DEPLOYMENT, "{\"metadata\":{\"name\":\"web\",\"namespace\":"
                                                "\"shop\",\"generation\":1},\"spec\":{}}");
    char why[256];
    ASSERT_EQ_INT(rollout_complete(w, 0, why, sizeof why), 0);
    ASSERT_STR_CONTAINS(why, "not observed generation 1");
    pool_free();
}

static void test_statefulset_and_daemonset_completion(void)
{
    char why[256];
    const char *sts = "{\"metadata\":{\"name\":\"db\",\"namespace\":\"shop\",\"generation\":5},"
                      "\"spec\":{\"replicas\":2%s},\"status\":{\"observedGeneration\":5,"
                      "\"replicas\":2,\"readyReplicas\":%d,\"currentRevision\":\"db-%d\","
                      "\"updateRevision\":\"db-2\"}}";
    const kproj_obj *a = proj(KPROJ_STATEFULSET, sts, "", 2, 1);
    ASSERT_EQ_INT(rollout_complete(a, 0, why, sizeof why), 0);
    ASSERT_STR_CONTAINS(why, "revision db-2 not yet current");
    const kproj_obj *b = proj(KPROJ_STATEFULSET, sts, "", 1, 2);
    ASSERT_EQ_INT(rollout_complete(b, 0, why, sizeof why), 0);
    ASSERT_STR_CONTAINS(why, "1 of 2 replicas ready");
    const kproj_obj *c = proj(KPROJ_STATEFULSET, sts, "", 2, 2);
    ASSERT_EQ_INT(rollout_complete(c, 0, why, sizeof why), 1);
    ASSERT_EQ_INT(rollout_complete(c, 6, why, sizeof why), 0); /* our write not yet seen */
    ASSERT_EQ_INT(rollout_rolls_pods(c), 1);
    const kproj_obj *od =
        proj(KPROJ_STATEFULSET, sts, ",\"updateStrategy\":{\"type\":\"OnDelete\"}", 2, 1);
    ASSERT_EQ_INT(rollout_rolls_pods(od), 0);

    const char *ds = "{\"metadata\":{\"name\":\"agent\",\"namespace\":\"shop\",\"generation\":"
                     "3},\"spec\":{%s},\"status\":{\"observedGeneration\":3,"
                     "\"desiredNumberScheduled\":4,\"updatedNumberScheduled\":%d,"
                     "\"numberAvailable\":%d}}";
    ASSERT_EQ_INT(rollout_complete(proj(KPROJ_DAEMONSET, ds, "", 3, 4), 0, why, sizeof why), 0);
    ASSERT_STR_CONTAINS(why, "3 of 4 pods updated");
    ASSERT_EQ_INT(rollout_complete(proj(KPROJ_DAEMONSET, ds, "", 4, 3), 0, why, sizeof why), 0);
    ASSERT_EQ_INT(rollout_complete(proj(KPROJ_DAEMONSET, ds, "", 4, 4), 0, why, sizeof why), 1);
    ASSERT_EQ_INT(rollout_rolls_pods(proj(KPROJ_DAEMONSET, ds,
                                          "\"updateStrategy\":{\"type\":\"OnDelete\"}", 4, 4)),
                  0);
    ASSERT_EQ_INT(rollout_rolls_pods(proj(KPROJ_DAEMONSET, ds,
                                          "\"updateStrategy\":{\"type\":\"RollingUpdate\"}", 4, 4)),
                  1);
    /* a Deployment always rolls; other kinds are not workloads */
    ASSERT_EQ_INT(rollout_rolls_pods(ready_deploy("shop", "web")), 1);
    ASSERT_EQ_INT(rollout_rolls_pods(proj(KPROJ_POD, "{\"metadata\":{\"name\":\"p\"}}")), 0);
    pool_free();
}

/* ---- PodDisruptionBudgets ------------------------------------------------------------------ */

static void test_pdb_without_budget_waits(void)
{
    const kproj_obj *w = ready_deploy("shop", "web");
    const kproj_obj *p[] = {pdb("shop", "web-pdb", "{\"matchLabels\":{\"app\":\"web\"}}", 1, 1, 0)};
    rollout_out o = gate(KEY, w, NULL, NULL, p, 1, 1000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
    ASSERT(o.pdb == p[0]);
    ASSERT_EQ_INT(o.retry_ms, ROLLOUT_RETRY_MS);
    ASSERT_STR_CONTAINS(o.reason, "PodDisruptionBudget shop/web-pdb allows no disruption");
    /* the budget opens */
    const kproj_obj *q[] = {pdb("shop", "web-pdb", "{\"matchLabels\":{\"app\":\"web\"}}", 1, 1, 1)};
    o = gate(KEY, w, NULL, NULL, q, 1, 1000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_GO);
    ASSERT_NULL(o.pdb);
    pool_free();
}

static void test_stale_pdb_waits(void)
{
    const kproj_obj *w = ready_deploy("shop", "web");
    const kproj_obj *p[] = {pdb("shop", "web-pdb", "{\"matchLabels\":{\"app\":\"web\"}}", 4, 3, 2)};
    rollout_out o = gate(KEY, w, NULL, NULL, p, 1, 1000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
    ASSERT(o.pdb == p[0]);
    ASSERT_STR_CONTAINS(o.reason, "stale status (observedGeneration 3 < generation 4)");
    pool_free();
}

static void test_pdb_selector_rules(void)
{
    const kproj_obj *w = ready_deploy("shop", "web");
    /* none of these select web's pods, so a zero budget does not matter */
    const kproj_obj *miss[] = {
        pdb("shop", "other", "{\"matchLabels\":{\"app\":\"db\"}}", 1, 1, 0),
        pdb("shop", "sub", "{\"matchLabels\":{\"app\":\"web\",\"tier\":\"be\"}}", 1, 1, 0),
        pdb("shop", "expr",
            "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"NotIn\",\"values\":"
            "[\"x\",\"fe\"]}]}",
            1, 1, 0),
        pdb("shop", "null", NULL, 1, 1, 0),
        pdb("other-ns", "all", "{}", 1, 1, 0),
    };
    rollout_out o = gate(KEY, w, NULL, NULL, miss, 5, 1000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_GO);
    for (size_t i = 0; i < 5; i++)
        ASSERT_EQ_INT(rollout_pdb_selects(miss[i], w), 0);
    /* these do */
    const kproj_obj *hit[] = {
        pdb("shop", "all", "{}", 1, 1, 0),
        pdb("shop", "in",
            "{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\",\"values\":"
            "[\"be\",\"fe\"]},{\"key\":\"app\",\"operator\":\"Exists\"}]}",
            1, 1, 0),
        pdb("shop", "both", "{\"matchLabels\":{\"app\":\"web\",\"tier\":\"fe\"}}", 1, 1, 0),
    };
    for (size_t i = 0; i < 3; i++) {
        ASSERT_EQ_INT(rollout_pdb_selects(hit[i], w), 1);
        o = gate(KEY, w, NULL, NULL, &hit[i], 1, 1000);
        ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
        ASSERT(o.pdb == hit[i]);
    }
    pool_free();
}

/* ---- one rollout at a time ----------------------------------------------------------------- */

static rollout_slot slot_of(const char *key, int64_t gen, int64_t started, int64_t bound)
{
    rollout_slot s = {.generation = gen, .started_ms = started, .bound_ms = bound};
    snprintf(s.key, sizeof s.key, "%s", key);
    return s;
}

static void test_other_rollout_in_progress_waits(void)
{
    const kproj_obj *w = ready_deploy("shop", "web");
    /* the holder's write is still in flight */
    rollout_slot s = slot_of("Deployment/shop/api", 0, 0, 0);
    rollout_out o = gate(KEY, w, &s, NULL, NULL, 0, 1000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
    ASSERT_EQ_INT(o.release, ROLLOUT_KEEP);
    ASSERT_STR_CONTAINS(o.reason, "Deployment/shop/api is being written");
    /* it rolls: 1 of 3 updated */
    s = slot_of("Deployment/shop/api", 4, 1000, 600000);
    const kproj_obj *api = deploy("shop", "api", 4, 4, 4, 1, 3, NULL);
    o = gate(KEY, w, &s, api, NULL, 0, 2000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
    ASSERT_EQ_INT(o.release, ROLLOUT_KEEP);
    ASSERT_EQ_INT(o.retry_ms, ROLLOUT_POLL_MS);
    ASSERT_STR_CONTAINS(o.reason, "the rollout of Deployment/shop/api is still in progress");
    ASSERT_STR_CONTAINS(o.reason, "1 of 3 replicas updated");
    /* the cache still shows the generation before our write: not complete */
    const kproj_obj *before = deploy("shop", "api", 3, 3, 3, 3, 3, NULL);
    o = gate(KEY, w, &s, before, NULL, 0, 2000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
    ASSERT_STR_CONTAINS(o.reason, "generation 3 not yet seen");
    /* done: the slot is released and web may go */
    const kproj_obj *done = deploy("shop", "api", 4, 4, 3, 3, 3, NULL);
    o = gate(KEY, w, &s, done, NULL, 0, 3000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_GO);
    ASSERT_EQ_INT(o.release, ROLLOUT_COMPLETED);
    /* released, but web itself is blocked by a PDB: the release still stands */
    const kproj_obj *p[] = {pdb("shop", "web-pdb", "{}", 1, 1, 0)};
    o = gate(KEY, w, &s, done, p, 1, 3000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
    ASSERT_EQ_INT(o.release, ROLLOUT_COMPLETED);
    /* the holder was deleted */
    o = gate(KEY, w, &s, NULL, NULL, 0, 3000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_GO);
    ASSERT_EQ_INT(o.release, ROLLOUT_GONE);
    /* the same workload's previous rollout */
    rollout_slot own = slot_of(KEY, 3, 1000, 600000);
    const kproj_obj *rolling = deploy("shop", "web", 3, 3, 4, 2, 3, NULL);
    o = gate(KEY, rolling, &own, rolling, NULL, 0, 2000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
    ASSERT_STR_CONTAINS(o.reason, "its previous rollout is still in progress");
    pool_free();
}

static void test_stuck_rollout_releases_the_slot(void)
{
    const kproj_obj *w = ready_deploy("shop", "web");
    const kproj_obj *api = deploy("shop", "api", 4, 4, 4, 1, 3, "\"progressDeadlineSeconds\":90,");
    int64_t bound = rollout_bound_ms(api);
    ASSERT_EQ_INT(bound, 90000);
    ASSERT_EQ_INT(rollout_bound_ms(w), ROLLOUT_BOUND_MS);
    rollout_slot s = slot_of("Deployment/shop/api", 4, 10000, bound);
    rollout_out o = gate(KEY, w, &s, api, NULL, 0, 10000 + bound - 1);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
    ASSERT_EQ_INT(o.release, ROLLOUT_KEEP);
    o = gate(KEY, w, &s, api, NULL, 0, 10000 + bound);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_GO);
    ASSERT_EQ_INT(o.release, ROLLOUT_STUCK);
    ASSERT_STR_CONTAINS(o.stuck, "Deployment/shop/api did not complete within 90s");
    ASSERT_STR_CONTAINS(o.stuck, "1 of 3 replicas updated");
    ASSERT_STR_EQ(rollout_release_name(ROLLOUT_STUCK), "stuck");
    pool_free();
}

/* A paused Deployment rolls nothing on a template change, and a resume is its
 * owner's: the gate waits for the resume, and a holder paused mid-rollout
 * gives the slot up at once instead of holding everyone for its bound. */
static void test_paused_deployment(void)
{
    const kproj_obj *w = ready_deploy("shop", "web");
    const kproj_obj *paused = deploy("shop", "web", 2, 2, 3, 3, 3, "\"paused\":true,");
    ASSERT_EQ_INT(paused->rollout.paused, 1);
    ASSERT_EQ_INT(w->rollout.paused, 0);
    rollout_out o = gate(KEY, paused, NULL, NULL, NULL, 0, 1000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
    ASSERT_EQ_INT(o.retry_ms, ROLLOUT_RETRY_MS);
    ASSERT_STR_CONTAINS(o.reason, "the Deployment is paused");
    /* paused is named even while another rollout holds the slot */
    rollout_slot busy = slot_of("Deployment/shop/api", 0, 0, 0);
    o = gate(KEY, paused, &busy, NULL, NULL, 0, 1000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_WAIT);
    ASSERT_STR_CONTAINS(o.reason, "the Deployment is paused");
    /* "paused": false is not paused */
    const kproj_obj *unpaused = deploy("shop", "web", 2, 2, 3, 3, 3, "\"paused\":false,");
    ASSERT_EQ_INT(gate(KEY, unpaused, NULL, NULL, NULL, 0, 1000).verdict, ROLLOUT_GO);
    /* the holder was paused with 1 of 3 updated, long before its bound */
    rollout_slot s = slot_of("Deployment/shop/api", 4, 1000, 600000);
    const kproj_obj *api = deploy("shop", "api", 4, 4, 4, 1, 3, "\"paused\":true,");
    o = gate(KEY, w, &s, api, NULL, 0, 2000);
    ASSERT_EQ_INT(o.verdict, ROLLOUT_GO);
    ASSERT_EQ_INT(o.release, ROLLOUT_PAUSED);
    ASSERT_STR_EQ(rollout_release_name(ROLLOUT_PAUSED), "paused");
    /* paused, but already complete: that is a completion */
    const kproj_obj *done = deploy("shop", "api", 4, 4, 3, 3, 3, "\"paused\":true,");
    ASSERT_EQ_INT(gate(KEY, w, &s, done, NULL, 0, 2000).release, ROLLOUT_COMPLETED);
    /* only Deployments have spec.paused */
    const kproj_obj *sts =
        proj(KPROJ_STATEFULSET, "{\"metadata\":{\"name\":\"db\",\"namespace\":\"shop\"},"
                                "\"spec\":{\"paused\":true}}");
    ASSERT_EQ_INT(sts->rollout.paused, 0);
    pool_free();
}

/* The slot on record in a policy's status: what is written reads back as the
 * same slot; a free or in-flight slot writes nothing; a damaged record is
 * refused naming the field. */
static void test_slot_record(void)
{
    rollout_slot s = slot_of("StatefulSet/shop/db", 12, 1779415360123LL, 90000), back;
    cJSON *j = rollout_slot_to_json(&s);
    ASSERT_NOT_NULL(j);
    char *txt = cJSON_PrintUnformatted(j);
    ASSERT_STR_EQ(txt, "{\"kind\":\"StatefulSet\",\"namespace\":\"shop\",\"name\":\"db\","
                       "\"generation\":12,\"startedAt\":\"2026-05-22T02:02:40Z\"}");
    cJSON_free(txt);
    char why[256];
    ASSERT_EQ_INT(rollout_slot_from_json(j, &back, why, sizeof why), 0);
    ASSERT_STR_EQ(back.key, "StatefulSet/shop/db");
    ASSERT_EQ_INT(back.generation, 12);
    ASSERT_EQ_INT(back.started_ms, 1779415360000LL); /* whole seconds */
    ASSERT_EQ_INT(back.bound_ms, 0);                 /* the caller's, from the workload */
    cJSON_Delete(j);
    /* nothing to record */
    rollout_slot none = {0}, flight = slot_of(KEY, 0, 0, 0), odd = slot_of("web", 3, 1, 1);
    ASSERT_NULL(rollout_slot_to_json(&none));
    ASSERT_NULL(rollout_slot_to_json(&flight));
    ASSERT_NULL(rollout_slot_to_json(&odd));
    ASSERT_NULL(rollout_slot_to_json(NULL));
    /* damaged records, each naming its field */
    static const struct {
        const char *json, *field;
    } bad[] = {
        {"[]", "status.rollout.: not an object"},
        {"{\"kind\":\"Pod\",\"namespace\":\"a\",\"name\":\"b\",\"generation\":1,"
         "\"startedAt\":\"2026-01-01T00:00:00Z\"}",
         "status.rollout.kind"},
        {"{\"kind\":\"Deployment\",\"namespace\":\"a/b\",\"name\":\"b\",\"generation\":1,"
         "\"startedAt\":\"2026-01-01T00:00:00Z\"}",
         "status.rollout.namespace"},
        {"{\"kind\":\"Deployment\",\"namespace\":\"a\",\"name\":\"\",\"generation\":1,"
         "\"startedAt\":\"2026-01-01T00:00:00Z\"}",
         "status.rollout.name"},
        {"{\"kind\":\"Deployment\",\"namespace\":\"a\",\"name\":\"b\",\"generation\":1.5,"
         "\"startedAt\":\"2026-01-01T00:00:00Z\"}",
         "status.rollout.generation"},
        {"{\"kind\":\"Deployment\",\"namespace\":\"a\",\"name\":\"b\",\"generation\":0,"
         "\"startedAt\":\"2026-01-01T00:00:00Z\"}",
         "status.rollout.generation"},
        {"{\"kind\":\"Deployment\",\"namespace\":\"a\",\"name\":\"b\",\"generation\":2,"
         "\"startedAt\":\"yesterday\"}",
         "status.rollout.startedAt"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *b = cJSON_Parse(bad[i].json);
        ASSERT_NOT_NULL(b);
        back.generation = 99;
        ASSERT_EQ_INT(rollout_slot_from_json(b, &back, why, sizeof why), -EINVAL);
        ASSERT_STR_CONTAINS(why, bad[i].field);
        ASSERT_EQ_INT(back.generation, 0);
        ASSERT_EQ_INT(back.key[0], 0);
        cJSON_Delete(b);
    }
    ASSERT_EQ_INT(rollout_slot_from_json(NULL, &back, why, sizeof why), -EINVAL);
}

/* A pod that runs the template's request where the recommendation differs
 * was not injected; one running an older recommendation was. */
static void test_pod_uninjected(void)
{
    const kproj_obj *w =
        proj(KPROJ_DEPLOYMENT,
             "{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\"},\"spec\":{\"template\":{"
             "\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":"
             "\"1\",\"memory\":\"1Gi\"}}},{\"name\":\"side\"}]}}}}");
    const char *fmt = "{\"metadata\":{\"name\":\"p\",\"namespace\":\"shop\"},\"spec\":{"
                      "\"containers\":[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":"
                      "\"%s\",\"memory\":\"%s\"}}},{\"name\":\"side\"}]}}";
    const kproj_obj *as_template = proj(KPROJ_POD, fmt, "1000m", "1024Mi");
    const kproj_obj *older_rec = proj(KPROJ_POD, fmt, "300m", "700Mi");
    ssa_container rec[] = {{"app", 0, "250m", "512Mi", NULL, NULL}};
    ASSERT_EQ_INT(rollout_pod_uninjected(as_template, w, rec, 1), 1);
    ASSERT_EQ_INT(rollout_pod_uninjected(older_rec, w, rec, 1), 0);
    /* the recommendation equals the template: nothing to inject */
    ssa_container same[] = {{"app", 0, "1", "1Gi", NULL, NULL}};
    ASSERT_EQ_INT(rollout_pod_uninjected(as_template, w, same, 1), 0);
    /* a container without requests in template and pod, with a recommendation */
    ssa_container side[] = {{"side", 0, "", "64Mi", NULL, NULL}};
    ASSERT_EQ_INT(rollout_pod_uninjected(as_template, w, side, 1), 1);
    /* init containers and containers the pod lacks are not compared */
    ssa_container other[] = {{"app", 1, "5", NULL, NULL, NULL}, {"gone", 0, "5", NULL, NULL, NULL}};
    ASSERT_EQ_INT(rollout_pod_uninjected(as_template, w, other, 2), 0);
    pool_free();
}

static void test_pod_differs(void)
{
    const kproj_obj *pod =
        proj(KPROJ_POD,
             "{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"shop\"},\"spec\":{\"containers\":"
             "[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},"
             "\"limits\":{\"memory\":\"2Gi\"}}},{\"name\":\"side\"}]}}");
    ssa_container same[] = {{"app", 0, "1000m", "1024Mi", NULL, "4Gi"},
                            {"init", 1, "5", "5Gi", NULL, NULL},
                            {"gone", 0, "5", "5Gi", NULL, NULL}};
    ASSERT_EQ_INT(rollout_pod_differs(pod, same, 3, 0), 0);
    ASSERT_EQ_INT(rollout_pod_differs(pod, same, 3, 1), 1); /* the memory limit differs */
    ssa_container cpu[] = {{"app", 0, "500m", "", NULL, NULL}};
    ASSERT_EQ_INT(rollout_pod_differs(pod, cpu, 1, 0), 1);
    ssa_container side[] = {{"side", 0, "", "64Mi", NULL, NULL}};
    ASSERT_EQ_INT(rollout_pod_differs(pod, side, 1, 0), 1); /* missing on the pod */
    ssa_container bad[] = {{"app", 0, "lots", NULL, NULL, NULL}};
    ASSERT_EQ_INT(rollout_pod_differs(pod, bad, 1, 0), 1);
    pool_free();
}

int main(void)
{
    TEST_RUN(test_available_workload_goes);
    TEST_RUN(test_paused_deployment);
    TEST_RUN(test_deployment_mid_rollout_waits);
    TEST_RUN(test_statefulset_and_daemonset_completion);
    TEST_RUN(test_pdb_without_budget_waits);
    TEST_RUN(test_stale_pdb_waits);
    TEST_RUN(test_pdb_selector_rules);
    TEST_RUN(test_other_rollout_in_progress_waits);
    TEST_RUN(test_stuck_rollout_releases_the_slot);
    TEST_RUN(test_pod_differs);
    TEST_RUN(test_pod_uninjected);
    TEST_RUN(test_slot_record);
    return test_summary();
}
