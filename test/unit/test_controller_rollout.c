/*
 * Rollouts against the in-process fake API server: the webhook strategy's
 * restart through the workload (rolloutStrategy immediate + allowRecreate),
 * exactly what it writes and as whom; the gate in front of it and of the ssa
 * template write (PodDisruptionBudgets, one rollout at a time); onNextRestart
 * never restarting; --dry-run. The fake server plays no workload controller
 * here unless a test says so: statuses are what the test writes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "controller/controller.h"
#include "controller/rollout.h"
#include "kube/events.h"
#include "support/fakeapi.h"
#include "support/loop.h"
#include "support/schemacheck.h"
#include "support/tctl.h"
#include "test.h"
#include "util/log.h"
#include "util/yaml2json.h"

static tctl_env tenv;
#define env tenv.k

/* ---- a provider: the app container uses 0.2 cores and 200 MiB -------------------------------- */

static const mprov_container_stats use_app = {.container = "app",
                                              .cpu_cores = 0.2,
                                              .mem_bytes = 200.0 * 1024 * 1024,
                                              .mem_peak_bytes = 210.0 * 1024 * 1024,
                                              .cpu_samples = 5000,
                                              .mem_samples = 5000,
                                              .history_s = 3 * 86400};

/* ---- environment ---------------------------------------------------------------------------- */

typedef tctl run;

/* The reconcile period: long, so pods the fake server never replaces are
 * not restarted again within a test; a test about the next period shortens it. */
static uint64_t run_period_ms = 60000;

static void run_start(run *r, const char *ns, int dry_run)
{
    tctl_start(r, &tenv, ns, tprov_new("test", 0, &use_app, 1),
               (ctl_opts){.dry_run = dry_run, .resync_ms = run_period_ms});
}

/* ---- objects -------------------------------------------------------------------------------- */

static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void put(const char *fmt, ...)
{
    char j[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j, sizeof j, fmt, ap);
    va_end(ap);
    ASSERT_EQ_INT(fakeapi_put_json(env.fa, j), 0);
}

static char *path_of(char *buf, size_t cap, const char *ns, const char *name)
{
    snprintf(buf, cap, "/apis/apps/v1/namespaces/%s/deployments/%s", ns, name);
    return buf;
}

typedef struct reply_flag {
    int done;
    long status;
} reply_flag;

static void on_reply(const krest_reply *r, void *ud)
{
    reply_flag *f = ud;
    f->status = r->http_status;
    f->done = 1;
}

static void complete_rollout(const char *ns, const char *name);

/* Deployment `name` (2 replicas, rolled out), its ReplicaSet and two running
 * pods with requests cpu 1 / memory 1Gi (the recommendation differs). The
 * Deployment is created by a server-side apply as GitOps would, so the
 * server's defaults are in place before optipod writes. */
static void put_workload(const char *ns, const char *name)
{
    char d[2048];
    snprintf(d, sizeof d,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"%s\",\"labels\":{\"app\":\"%s\",\"opt\":\"in\"}},\"spec\":{"
             "\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},\"template\":{"
             "\"metadata\":{\"labels\":{\"app\":\"%s\"}},\"spec\":{\"containers\":[{\"name\":"
             "\"app\",\"image\":\"registry.invalid/app:1\",\"resources\":{\"requests\":{\"cpu\":"
             "\"1\",\"memory\":\"1Gi\"}}}]}}}}",
             name, ns, name, name, name);
    reply_flag f = {0};
    krest_write_opts o = {.field_manager = "argocd-controller"};
    ASSERT_EQ_INT(krest_patch(env.rest, &KRES_DEPLOYMENTS, ns, name, NULL, KREST_PATCH_APPLY, d,
                              strlen(d), &o, on_reply, &f),
                  0);
    ASSERT(tloop_until_flag(&env.loop, &f.done, 5000));
    ASSERT_EQ_INT(f.status, 201);
    complete_rollout(ns, name);
    char p[256];
    const cJSON *dep = fakeapi_get(env.fa, path_of(p, sizeof p, ns, name));
    ASSERT_NOT_NULL(dep);
    const char *uid = cJSON_GetObjectItem(cJSON_GetObjectItem(dep, "metadata"), "uid")->valuestring;
    put("{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":\"%s-rs\","
        "\"namespace\":\"%s\",\"uid\":\"%s-rs-uid\",\"ownerReferences\":[{\"apiVersion\":"
        "\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"%s\",\"uid\":\"%s\",\"controller\":true}]},"
        "\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"%s\"}}}}",
        name, ns, name, name, uid, name);
    for (int i = 0; i < 2; i++)
        put("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s-rs-%d\","
            "\"namespace\":\"%s\",\"labels\":{\"app\":\"%s\"},\"ownerReferences\":[{\"apiVersion\":"
            "\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"%s-rs\",\"uid\":\"%s-rs-uid\","
            "\"controller\":true}]},\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":"
            "\"registry.invalid/app:1\",\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":"
            "\"1Gi\"}}}]},\"status\":{\"phase\":\"Running\",\"qosClass\":\"Burstable\"}}",
            name, i, ns, name, name, name);
}

static void put_env(const char *ns, const char *rollout, const char *strategy)
{
    put("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", ns);
    put("{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\",\"metadata\":{"
        "\"name\":\"auto\",\"namespace\":\"%s\"},\"spec\":{\"mode\":\"Auto\",\"selector\":{"
        "\"workloadSelector\":{\"matchLabels\":{\"opt\":\"in\"}}},\"updateStrategy\":{"
        "\"strategy\":\"%s\",\"rolloutStrategy\":\"%s\",\"allowRecreate\":true}}}",
        ns, strategy, rollout);
}

static void put_pdb(const char *ns, int allowed)
{
    put("{\"apiVersion\":\"policy/v1\",\"kind\":\"PodDisruptionBudget\",\"metadata\":{\"name\":"
        "\"web-pdb\",\"namespace\":\"%s\",\"generation\":1},\"spec\":{\"minAvailable\":2,"
        "\"selector\":{\"matchLabels\":{\"app\":\"web\"}}},\"status\":{\"observedGeneration\":1,"
        "\"disruptionsAllowed\":%d,\"currentHealthy\":2,\"desiredHealthy\":2,\"expectedPods\":2}}",
        ns, allowed);
}

/* The restart PATCHes sent to a Deployment (dry runs included). */
static size_t restarts(const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "/deployments/%s?", name);
    size_t n = 0;
    for (size_t i = 0; i < fakeapi_log_count(env.fa); i++) {
        const fakeapi_logged *l = fakeapi_log_at(env.fa, i);
        if (strcmp(l->method, "PATCH") == 0 && strstr(l->path, p) &&
            strstr(l->body, "optipod.io/restartedAt"))
            n++;
    }
    return n;
}

static const fakeapi_logged *last_restart(const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "/deployments/%s?", name);
    const fakeapi_logged *found = NULL;
    for (size_t i = 0; i < fakeapi_log_count(env.fa); i++) {
        const fakeapi_logged *l = fakeapi_log_at(env.fa, i);
        if (strcmp(l->method, "PATCH") == 0 && strstr(l->path, p) &&
            strstr(l->body, "optipod.io/restartedAt"))
            found = l;
    }
    return found;
}

/* Events of a reason in ns, and the note of the last one. */
static size_t events(const char *ns, const char *reason, const char **note)
{
    return tctl_events(&tenv, ns, reason, note);
}

typedef struct count_wait {
    const char *name;
    size_t n;
    const char *ns, *reason;
} count_wait;

static int pred_restarts(void *ud)
{
    count_wait *w = ud;
    return restarts(w->name) >= w->n;
}

static int pred_events(void *ud)
{
    count_wait *w = ud;
    return events(w->ns, w->reason, NULL) >= w->n;
}

#define WAIT_RESTARTS(name_, n_)                                                                   \
    do {                                                                                           \
        count_wait cw_ = {.name = (name_), .n = (n_)};                                             \
        tctl_until(tctl_current(), pred_restarts, &cw_, #n_ " restarts of " #name_);               \
    } while (0)

#define WAIT_EVENTS(ns_, reason_, n_)                                                              \
    do {                                                                                           \
        count_wait cw_ = {.ns = (ns_), .reason = (reason_), .n = (n_)};                            \
        tctl_until(tctl_current(), pred_events, &cw_, "Event " reason_);                           \
    } while (0)

static const cJSON *live_template_annotations(const char *ns, const char *name)
{
    char p[256];
    const cJSON *d = fakeapi_get(env.fa, path_of(p, sizeof p, ns, name));
    ASSERT_NOT_NULL(d);
    return cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "template"),
                            "metadata"),
        "annotations");
}

static double live_generation(const char *ns, const char *name)
{
    char p[256];
    const cJSON *d = fakeapi_get(env.fa, path_of(p, sizeof p, ns, name));
    ASSERT_NOT_NULL(d);
    return cJSON_GetObjectItem(cJSON_GetObjectItem(d, "metadata"), "generation")->valuedouble;
}

/* The test plays the Deployment controller: the rollout at the live
 * generation is complete. */
static void complete_rollout(const char *ns, const char *name)
{
    char p[256];
    const cJSON *d = fakeapi_get(env.fa, path_of(p, sizeof p, ns, name));
    ASSERT_NOT_NULL(d);
    cJSON *copy = cJSON_Duplicate(d, 1);
    double gen = live_generation(ns, name);
    cJSON *st = cJSON_CreateObject();
    cJSON_AddNumberToObject(st, "observedGeneration", gen);
    cJSON_AddNumberToObject(st, "replicas", 2);
    cJSON_AddNumberToObject(st, "updatedReplicas", 2);
    cJSON_AddNumberToObject(st, "readyReplicas", 2);
    cJSON_AddNumberToObject(st, "availableReplicas", 2);
    cJSON_ReplaceItemInObject(copy, "status", st);
    ASSERT_EQ_INT(fakeapi_put(env.fa, copy), 0);
    cJSON_Delete(copy);
}

/* The test plays a user pausing or resuming Deployment `name` (a new
 * generation) and its controller observing it: with `rolled` every replica is
 * updated, otherwise none is (a paused rollout stops where it was). */
static void set_paused(const char *ns, const char *name, int paused, int rolled)
{
    char p[256];
    const cJSON *d = fakeapi_get(env.fa, path_of(p, sizeof p, ns, name));
    ASSERT_NOT_NULL(d);
    cJSON *copy = cJSON_Duplicate(d, 1);
    double gen = live_generation(ns, name) + 1;
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(copy, "metadata"), "generation",
                              cJSON_CreateNumber(gen));
    cJSON *spec = cJSON_GetObjectItem(copy, "spec");
    cJSON_DeleteItemFromObject(spec, "paused");
    cJSON_AddBoolToObject(spec, "paused", paused);
    cJSON *st = cJSON_CreateObject();
    cJSON_AddNumberToObject(st, "observedGeneration", gen);
    cJSON_AddNumberToObject(st, "replicas", 2);
    cJSON_AddNumberToObject(st, "updatedReplicas", rolled ? 2 : 0);
    cJSON_AddNumberToObject(st, "readyReplicas", 2);
    cJSON_AddNumberToObject(st, "availableReplicas", 2);
    cJSON_ReplaceItemInObject(copy, "status", st);
    ASSERT_EQ_INT(fakeapi_put(env.fa, copy), 0);
    cJSON_Delete(copy);
}

/* ---- the slot on record --------------------------------------------------------------------- */

static const cJSON *policy_status(const char *ns)
{
    char p[256];
    snprintf(p, sizeof p, "/apis/optipod.io/v1alpha1/namespaces/%s/optimizationpolicies/auto", ns);
    const cJSON *pol = fakeapi_get(env.fa, p);
    return pol ? cJSON_GetObjectItem(pol, "status") : NULL;
}

typedef struct rec_wait {
    const char *ns, *name; /* NULL name: no record */
} rec_wait;

static int pred_record(void *ud)
{
    rec_wait *w = ud;
    const cJSON *st = policy_status(w->ns);
    const cJSON *rec = st ? cJSON_GetObjectItem(st, "rollout") : NULL;
    if (!w->name)
        return st && !rec;
    const cJSON *n = cJSON_GetObjectItem(rec, "name");
    return cJSON_IsString(n) && strcmp(n->valuestring, w->name) == 0;
}

#define WAIT_RECORD(ns_, name_)                                                                    \
    do {                                                                                           \
        rec_wait rw_ = {(ns_), (name_)};                                                           \
        tctl_until(tctl_current(), pred_record, &rw_, "status.rollout naming " #name_);            \
    } while (0)

/* The status as the CRD's schema sees it: what optipod writes must be kept. */
static void assert_status_valid(const char *ns)
{
    size_t len;
    char *text = test_read_file("crds/optimizationpolicies.optipod.io.yaml", &len);
    operr err = {{0}};
    cJSON *crd = NULL;
    ASSERT_EQ_INT(yaml2json_parse(text, len, &crd, &err), 0);
    free(text);
    const cJSON *schema = cJSON_GetObjectItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(
                cJSON_GetObjectItem(
                    cJSON_GetArrayItem(
                        cJSON_GetObjectItem(cJSON_GetObjectItem(crd, "spec"), "versions"), 0),
                    "schema"),
                "openAPIV3Schema"),
            "properties"),
        "status");
    ASSERT_NOT_NULL(schema);
    opbuf errs;
    opbuf_init(&errs, 1 << 16);
    if (tsch_validate(schema, policy_status(ns), "status", &errs) != 0)
        test_fail(__FILE__, __LINE__, "%s", opbuf_str(&errs));
    opbuf_release(&errs);
    cJSON_Delete(crd);
}

/* The test plays the webhook after a rollout: name's pods are replaced by
 * pods with the values its annotations recommend. */
static void pods_follow(const char *ns, const char *name)
{
    char p[256], cpu[64], mem[64];
    const cJSON *d = fakeapi_get(env.fa, path_of(p, sizeof p, ns, name));
    ASSERT_NOT_NULL(d);
    const cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "metadata"), "annotations");
    const cJSON *c = cJSON_GetObjectItem(ann, "optipod.io/cpu-request.app");
    const cJSON *m = cJSON_GetObjectItem(ann, "optipod.io/memory-request.app");
    ASSERT(cJSON_IsString(c) && cJSON_IsString(m));
    snprintf(cpu, sizeof cpu, "%s", c->valuestring);
    snprintf(mem, sizeof mem, "%s", m->valuestring);
    for (int i = 0; i < 2; i++)
        put("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s-rs-%d\","
            "\"namespace\":\"%s\",\"labels\":{\"app\":\"%s\"},\"ownerReferences\":[{\"apiVersion\":"
            "\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"%s-rs\",\"uid\":\"%s-rs-uid\","
            "\"controller\":true}]},\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":"
            "\"registry.invalid/app:1\",\"resources\":{\"requests\":{\"cpu\":\"%s\",\"memory\":"
            "\"%s\"}}}]},\"status\":{\"phase\":\"Running\",\"qosClass\":\"Burstable\"}}",
            name, i, ns, name, name, name, cpu, mem);
}

/* web and api under one immediate / webhook / allowRecreate policy, and a
 * controller started on them (the log cleared first). */
static void start_two(run *r, const char *ns)
{
    put_env(ns, "immediate", "webhook");
    put_workload(ns, "web");
    put_workload(ns, "api");
    fakeapi_log_clear(env.fa);
    run_start(r, ns, 0);
}

/* ---- tests ------------------------------------------------------------------------------------
 */

/* One PATCH of the template annotation only, as optipod, with the live uid
 * and resourceVersion; the Deployment's generation moves; RolloutTriggered. */
static void test_webhook_immediate_restarts_through_the_workload(void)
{
    const char *ns = "t-restart";
    put_env(ns, "immediate", "webhook");
    put_workload(ns, "web");
    double gen0 = live_generation(ns, "web");
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0);
    WAIT_RESTARTS("web", 1);
    WAIT_EVENTS(ns, "RolloutTriggered", 1);
    tctl_step(1500);
    ASSERT_EQ_INT((long long)restarts("web"), 1);
    const fakeapi_logged *l = last_restart("web");
    ASSERT_STR_CONTAINS(l->path, "fieldManager=optipod");
    ASSERT(strstr(l->path, "dryRun") == NULL);
    ASSERT_STR_CONTAINS(l->content_type, "strategic-merge-patch");
    /* the body: preconditions and the one annotation, nothing else */
    cJSON *b = cJSON_Parse(l->body);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ_INT(cJSON_GetArraySize(b), 2);
    const cJSON *md = cJSON_GetObjectItem(b, "metadata");
    ASSERT_EQ_INT(cJSON_GetArraySize(md), 2);
    ASSERT(cJSON_IsString(cJSON_GetObjectItem(md, "uid")));
    ASSERT(cJSON_IsString(cJSON_GetObjectItem(md, "resourceVersion")));
    char p[256];
    const cJSON *d = fakeapi_get(env.fa, path_of(p, sizeof p, ns, "web"));
    ASSERT_STR_EQ(cJSON_GetObjectItem(md, "uid")->valuestring,
                  cJSON_GetObjectItem(cJSON_GetObjectItem(d, "metadata"), "uid")->valuestring);
    const cJSON *spec = cJSON_GetObjectItem(b, "spec");
    ASSERT_EQ_INT(cJSON_GetArraySize(spec), 1);
    const cJSON *tmpl = cJSON_GetObjectItem(spec, "template");
    ASSERT_EQ_INT(cJSON_GetArraySize(tmpl), 1);
    const cJSON *tmd = cJSON_GetObjectItem(tmpl, "metadata");
    ASSERT_EQ_INT(cJSON_GetArraySize(tmd), 1);
    const cJSON *ann = cJSON_GetObjectItem(tmd, "annotations");
    ASSERT_EQ_INT(cJSON_GetArraySize(ann), 1);
    char at[32];
    snprintf(at, sizeof at, "%s", cJSON_GetObjectItem(ann, "optipod.io/restartedAt")->valuestring);
    ASSERT_EQ_INT((long long)strlen(at), 20); /* 2026-11-22T05:00:00Z */
    ASSERT(at[10] == 'T' && at[19] == 'Z');
    cJSON_Delete(b);
    /* it landed: the template annotation, a new generation, values untouched */
    ASSERT_STR_EQ(
        cJSON_GetObjectItem(live_template_annotations(ns, "web"), "optipod.io/restartedAt")
            ->valuestring,
        at);
    ASSERT(live_generation(ns, "web") > gen0);
    const char *note = NULL;
    ASSERT_EQ_INT((long long)events(ns, "RolloutTriggered", &note), 1);
    ASSERT_STR_CONTAINS(note, "2 of 2 pods");
    ASSERT_EQ_INT((long long)events(ns, "RolloutDeferred", NULL), 0);
    tctl_stop(&r);
}

/* A PDB without a disruption to spare: no PATCH, RolloutDeferred naming it;
 * its status allows one: the PATCH follows. */
static void test_pdb_defers_the_restart_until_it_allows_one(void)
{
    const char *ns = "t-pdb";
    put_env(ns, "immediate", "webhook");
    put_workload(ns, "web");
    put_pdb(ns, 0);
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0);
    WAIT_EVENTS(ns, "RolloutDeferred", 1);
    uint64_t n0 = tctl_reconciles();
    tctl_step(ROLLOUT_RETRY_MS + 1000); /* the gate is asked again, and waits again */
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    ASSERT_EQ_INT((long long)restarts("web"), 0);
    const char *note = NULL;
    events(ns, "RolloutDeferred", &note);
    ASSERT_STR_CONTAINS(note, "PodDisruptionBudget t-pdb/web-pdb allows no disruption");
    ctl_stats st;
    ctl_stats_get(r.c, &st);
    ASSERT_CMP_INT(st.skipped, >=, 1);
    put_pdb(ns, 1);
    WAIT_RESTARTS("web", 1);
    WAIT_EVENTS(ns, "RolloutTriggered", 1);
    tctl_stop(&r);
}

/* The ssa template write passes the same gate under immediate; under
 * onNextRestart it is the strategy's own change (like a Git commit), paced by
 * the workload's updateStrategy and the once-per-period rule, not the gate. */
static void test_pdb_defers_the_ssa_write_when_immediate(void)
{
    const char *ns = "t-pdb-ssa";
    put_env(ns, "immediate", "ssa");
    put_workload(ns, "web");
    put_pdb(ns, 0);
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0);
    WAIT_EVENTS(ns, "RolloutDeferred", 1);
    uint64_t n0 = tctl_reconciles();
    tctl_step(ROLLOUT_RETRY_MS + 1000);
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    ASSERT_EQ_INT((long long)fakeapi_count(env.fa, "PATCH", "/deployments/web"), 0);
    put_pdb(ns, 1);
    WAIT_EVENTS(ns, "ResourcesApplied", 1);
    ASSERT_EQ_INT((long long)restarts("web"), 0);
    tctl_stop(&r);

    const char *ns2 = "t-pdb-ssa-next";
    put_env(ns2, "onNextRestart", "ssa");
    put_workload(ns2, "web");
    put_pdb(ns2, 0);
    run_start(&r, ns2, 0);
    WAIT_EVENTS(ns2, "ResourcesApplied", 1);
    ASSERT_EQ_INT((long long)events(ns2, "RolloutDeferred", NULL), 0);
    tctl_stop(&r);
}

/* Two workloads: the second waits until the first's status shows its
 * rollout complete. */
static void test_one_rollout_at_a_time(void)
{
    const char *ns = "t-one";
    run r;
    start_two(&r, ns);
    WAIT_EVENTS(ns, "RolloutTriggered", 1);
    WAIT_EVENTS(ns, "RolloutDeferred", 1);
    uint64_t n0 = tctl_reconciles();
    tctl_step(ROLLOUT_POLL_MS + 1000); /* the second asks again while the first rolls */
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    size_t web = restarts("web"), api = restarts("api");
    ASSERT_EQ_INT((long long)(web + api), 1);
    const char *first = web ? "web" : "api", *second = web ? "api" : "web";
    const char *note = NULL;
    events(ns, "RolloutDeferred", &note);
    char want[128];
    /* "being written", then "still in progress": either names the first */
    snprintf(want, sizeof want, "rollout of Deployment/t-one/%s ", first);
    ASSERT_STR_CONTAINS(note, want);
    /* the first one's controller reports it rolled out */
    complete_rollout(ns, first);
    WAIT_RESTARTS(second, 1);
    tctl_step(300);
    ASSERT_EQ_INT((long long)restarts(first), 1);
    ASSERT_EQ_INT((long long)restarts(second), 1);
    ASSERT_EQ_INT((long long)events(ns, "RolloutTriggered", NULL), 2);
    tctl_stop(&r);
}

/* A paused Deployment is not rolled (a template change would wait for the
 * resume, and the resume is its owner's): RolloutDeferred says so. A rollout
 * of ours paused midway gives up the one-at-a-time slot at once, so the next
 * workload does not wait for that rollout's bound. */
static void test_paused_deployment_is_not_rolled(void)
{
    const char *ns = "t-paused";
    put_env(ns, "immediate", "webhook");
    put_workload(ns, "web");
    put_workload(ns, "api");
    set_paused(ns, "web", 1, 1);
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0);
    WAIT_RESTARTS("api", 1);
    WAIT_EVENTS(ns, "RolloutDeferred", 1);
    uint64_t n0 = tctl_reconciles();
    tctl_step(ROLLOUT_RETRY_MS + 1000);
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    ASSERT_EQ_INT((long long)restarts("web"), 0);
    const char *note = NULL;
    events(ns, "RolloutDeferred", &note);
    ASSERT_STR_CONTAINS(note, "the Deployment is paused");
    ASSERT_STR_CONTAINS(note, "\"name\":\"web\"");
    /* api's rollout is paused halfway and web resumed: web rolls now, with
     * api neither complete nor past its bound */
    set_paused(ns, "api", 1, 0);
    set_paused(ns, "web", 0, 1);
    WAIT_RESTARTS("web", 1);
    tctl_step(300);
    ASSERT_EQ_INT((long long)restarts("api"), 1);
    ASSERT_EQ_INT((long long)restarts("web"), 1);
    ASSERT_EQ_INT((long long)events(ns, "RolloutStuck", NULL), 0);
    tctl_stop(&r);
}

/* One at a time survives a restart of the controller: the rollout it
 * follows is recorded in the policy's status.rollout (valid under the CRD);
 * the next controller takes it up, holds the other workload back until that
 * rollout completes, then moves the record on. */
static void test_restart_resumes_the_rollout_it_followed(void)
{
    const char *ns = "t-resume";
    run r;
    start_two(&r, ns);
    WAIT_EVENTS(ns, "RolloutTriggered", 1);
    const char *first = restarts("web") ? "web" : "api", *second = restarts("web") ? "api" : "web";
    WAIT_RECORD(ns, first);
    assert_status_valid(ns);
    const cJSON *rec = cJSON_GetObjectItem(policy_status(ns), "rollout");
    ASSERT_STR_EQ(cJSON_GetObjectItem(rec, "kind")->valuestring, "Deployment");
    ASSERT_STR_EQ(cJSON_GetObjectItem(rec, "namespace")->valuestring, ns);
    ASSERT_EQ_INT((long long)cJSON_GetObjectItem(rec, "generation")->valuedouble,
                  (long long)live_generation(ns, first));
    tctl_stop(&r);

    /* a new controller: the record holds it back */
    fakeapi_log_clear(env.fa);
    run_start(&r, ns, 0);
    WAIT_EVENTS(ns, "RolloutDeferred", 1);
    uint64_t n0 = tctl_reconciles();
    tctl_step(ROLLOUT_POLL_MS + 1000);
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    ASSERT_EQ_INT((long long)(restarts("web") + restarts("api")), 0);
    const char *note = NULL;
    events(ns, "RolloutDeferred", &note);
    char want[128];
    snprintf(want, sizeof want, "Deployment/t-resume/%s", first);
    ASSERT_STR_CONTAINS(note, want);
    WAIT_RECORD(ns, first); /* still recorded */
    /* that rollout completes (the webhook gave its new pods the values) */
    pods_follow(ns, first);
    complete_rollout(ns, first);
    WAIT_RESTARTS(second, 1);
    WAIT_RECORD(ns, second);
    assert_status_valid(ns);
    ASSERT_EQ_INT((long long)restarts(first), 0);
    /* and the second completes: the record goes */
    pods_follow(ns, second);
    complete_rollout(ns, second);
    WAIT_RECORD(ns, NULL);
    tctl_stop(&r);
}

/* A damaged record is bad input from the cluster: said, ignored, replaced. */
static void test_damaged_rollout_record_is_ignored(void)
{
    const char *ns = "t-damaged";
    put_env(ns, "immediate", "webhook");
    put_workload(ns, "web");
    /* as another writer of the status would: through the status subresource */
    const char *st = "{\"status\":{\"rollout\":{\"kind\":\"Pod\",\"namespace\":\"t-damaged\","
                     "\"name\":\"x\",\"generation\":1,\"startedAt\":\"now\"}}}";
    reply_flag f = {0};
    ASSERT_EQ_INT(krest_patch(env.rest, &KRES_POLICIES, ns, "auto", "status", KREST_PATCH_MERGE, st,
                              strlen(st), NULL, on_reply, &f),
                  0);
    ASSERT(tloop_until_flag(&env.loop, &f.done, 5000));
    ASSERT_EQ_INT(f.status, 200);
    ASSERT_NOT_NULL(cJSON_GetObjectItem(policy_status(ns), "rollout"));
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0);
    WAIT_RESTARTS("web", 1);
    WAIT_RECORD(ns, "web");
    assert_status_valid(ns);
    tctl_stop(&r);
}

/* The restart rolled out, the spec is unchanged since, and the new pods run
 * the template's requests: the webhook did not inject them. optipod says so
 * once (Warning WebhookNotInjecting, naming the missing namespace label and
 * the command to run once fixed) and does not restart again every period;
 * a change to the spec lifts that. */
static void test_restart_that_did_not_take_is_not_repeated(void)
{
    const char *ns = "t-noinject";
    put_env(ns, "immediate", "webhook");
    put_workload(ns, "web");
    fakeapi_log_clear(env.fa);
    run_period_ms = 300;
    run r;
    run_start(&r, ns, 0);
    WAIT_RESTARTS("web", 1);
    complete_rollout(ns, "web"); /* its pods, "new", still run cpu 1 / memory 1Gi */
    WAIT_EVENTS(ns, "WebhookNotInjecting", 1);
    uint64_t n0 = tctl_reconciles();
    tctl_step(1500); /* five periods */
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    ASSERT_EQ_INT((long long)restarts("web"), 1);
    ASSERT_EQ_INT((long long)events(ns, "WebhookNotInjecting", NULL), 1);
    const char *note = NULL;
    events(ns, "WebhookNotInjecting", &note);
    ASSERT_STR_CONTAINS(note, "2 of 2 pods");
    ASSERT_STR_CONTAINS(note, "namespace t-noinject is not labelled optipod.io/webhook=enabled");
    ASSERT_STR_CONTAINS(note, "kubectl -n t-noinject rollout restart deployment/web");
    ASSERT_STR_CONTAINS(note, "\"type\":\"Warning\"");
    /* Git changes the spec (a new generation): one more restart is in order */
    set_paused(ns, "web", 0, 1);
    WAIT_RESTARTS("web", 2);
    tctl_stop(&r);
    run_period_ms = 60000;
}

/* onNextRestart: the annotations are written, pods still differ, nothing restarts. */
static void test_on_next_restart_never_restarts(void)
{
    const char *ns = "t-next";
    put_env(ns, "onNextRestart", "webhook");
    put_workload(ns, "web");
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0);
    WAIT_EVENTS(ns, "RecommendationUpdated", 1);
    uint64_t n0 = tctl_reconciles();
    tctl_step(run_period_ms + 1000); /* past the period: reconciled again */
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    ASSERT_EQ_INT((long long)restarts("web"), 0);
    ASSERT_EQ_INT((long long)events(ns, "RolloutTriggered", NULL), 0);
    ASSERT_EQ_INT((long long)fakeapi_count(env.fa, "DELETE", "/pods/"), 0);
    ASSERT_EQ_INT((long long)fakeapi_count(env.fa, "POST", "/eviction"), 0);
    ASSERT_NULL(live_template_annotations(ns, "web"));
    tctl_stop(&r);
}

/* --dry-run: the restart is sent with dryRun=All and nothing changes. */
static void test_dry_run_restart(void)
{
    const char *ns = "t-dry";
    put_env(ns, "immediate", "webhook");
    put_workload(ns, "web");
    double gen0 = live_generation(ns, "web");
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 1);
    WAIT_RESTARTS("web", 1);
    WAIT_EVENTS(ns, "RolloutTriggered", 1);
    const fakeapi_logged *l = last_restart("web");
    ASSERT_STR_CONTAINS(l->path, "dryRun=All");
    ASSERT_STR_CONTAINS(l->path, "fieldManager=optipod");
    ASSERT_NULL(live_template_annotations(ns, "web"));
    ASSERT(live_generation(ns, "web") == gen0);
    const char *note = NULL;
    events(ns, "RolloutTriggered", &note);
    ASSERT_STR_CONTAINS(note, "would trigger");
    tctl_stop(&r);
}

/* A StatefulSet with updateStrategy OnDelete: its owner chose manual
 * updates; pods that differ are reported, never restarted. */
static void test_on_delete_statefulset_is_not_restarted(void)
{
    const char *ns = "t-ondelete";
    put_env(ns, "immediate", "webhook");
    put("{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"metadata\":{\"name\":\"db\","
        "\"namespace\":\"%s\",\"uid\":\"db-uid\",\"generation\":1,\"labels\":{\"opt\":\"in\"}},"
        "\"spec\":{\"replicas\":1,\"updateStrategy\":{\"type\":\"OnDelete\"},\"selector\":{"
        "\"matchLabels\":{\"app\":\"db\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":"
        "\"db\"}},\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"registry.invalid/db:1\","
        "\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]}}},\"status\":{"
        "\"observedGeneration\":1,\"replicas\":1,\"readyReplicas\":1,\"currentRevision\":\"db-1\","
        "\"updateRevision\":\"db-1\"}}",
        ns);
    put("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"db-0\",\"namespace\":"
        "\"%s\",\"labels\":{\"app\":\"db\"},\"ownerReferences\":[{\"apiVersion\":\"apps/v1\","
        "\"kind\":\"StatefulSet\",\"name\":\"db\",\"uid\":\"db-uid\",\"controller\":true}]},"
        "\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"registry.invalid/db:1\","
        "\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]},\"status\":{"
        "\"phase\":\"Running\",\"qosClass\":\"Burstable\"}}",
        ns);
    fakeapi_log_clear(env.fa);
    /* the outcome's reason is in the verbose log */
    FILE *logf = tmpfile();
    ASSERT_NOT_NULL(logf);
    int verbosity = oplog_verbosity();
    oplog_set_sink(logf);
    oplog_set_verbosity(2);
    run r;
    run_start(&r, ns, 0);
    WAIT_EVENTS(ns, "RecommendationUpdated", 1);
    uint64_t n0 = tctl_reconciles();
    tctl_step(run_period_ms + 1000);
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    oplog_set_verbosity(verbosity);
    oplog_set_sink(NULL);
    char buf[1 << 16];
    size_t got = (rewind(logf), fread(buf, 1, sizeof buf - 1, logf));
    buf[got] = 0;
    fclose(logf);
    ASSERT_STR_CONTAINS(buf, "reconcile StatefulSet/t-ondelete/db: skipped: 1 of 1 pods (db-0) run "
                             "other values than the recommendation; updateStrategy OnDelete: the "
                             "owner chose manual updates");
    size_t n = 0;
    for (size_t i = 0; i < fakeapi_log_count(env.fa); i++) {
        const fakeapi_logged *l = fakeapi_log_at(env.fa, i);
        if (strcmp(l->method, "PATCH") == 0 && strstr(l->path, "/statefulsets/db?") &&
            strstr(l->body, "optipod.io/restartedAt"))
            n++;
    }
    ASSERT_EQ_INT((long long)n, 0);
    ASSERT_EQ_INT((long long)events(ns, "RolloutTriggered", NULL), 0);
    ASSERT_EQ_INT((long long)events(ns, "RolloutDeferred", NULL), 0);
    ctl_stats st;
    ctl_stats_get(r.c, &st);
    ASSERT_CMP_INT(st.skipped, >=, 1);
    tctl_stop(&r);
}

int main(void)
{
    tctl_env_start(&tenv, "test_controller_rollout");
    TEST_RUN(test_webhook_immediate_restarts_through_the_workload);
    TEST_RUN(test_pdb_defers_the_restart_until_it_allows_one);
    TEST_RUN(test_pdb_defers_the_ssa_write_when_immediate);
    TEST_RUN(test_one_rollout_at_a_time);
    TEST_RUN(test_paused_deployment_is_not_rolled);
    TEST_RUN(test_restart_resumes_the_rollout_it_followed);
    TEST_RUN(test_damaged_rollout_record_is_ignored);
    TEST_RUN(test_restart_that_did_not_take_is_not_repeated);
    TEST_RUN(test_on_next_restart_never_restarts);
    TEST_RUN(test_dry_run_restart);
    TEST_RUN(test_on_delete_statefulset_is_not_restarted);
    tctl_env_stop(&tenv);
    return test_summary();
}
