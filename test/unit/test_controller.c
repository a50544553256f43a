/* The reconcile loop against the in-process fake API server: what it writes,
 * as whom, when it must not, and how it meets other field managers. Usage
 * comes from a canned provider (provider.h is an interface). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "apply/fields.h"
#include "cli/cli.h"
#include "controller/controller.h"
#include "support/fakeapi.h"
#include "support/fakessa.h"
#include "http/http.h"
#include "kube/config.h"
#include "httpd/httpd.h"
#include "kube/events.h"
#include "support/loop.h"
#include "support/tctl.h"
#include "test.h"

static tctl_env tenv;
#define env tenv.k

/* ---- a provider with canned usage --------------------------------------------------------- */

/* app: 0.2 cores, 200 MiB; sidecar: 0.04 cores, 40 MiB; three days of samples. */
static const mprov_container_stats use_both[] = {{.container = "app",
                                                  .cpu_cores = 0.2,
                                                  .mem_bytes = 200.0 * 1024 * 1024,
                                                  .mem_peak_bytes = 210.0 * 1024 * 1024,
                                                  .cpu_samples = 5000,
                                                  .mem_samples = 5000,
                                                  .history_s = 3 * 86400},
                                                 {.container = "sidecar",
                                                  .cpu_cores = 0.04,
                                                  .mem_bytes = 40.0 * 1024 * 1024,
                                                  .mem_peak_bytes = 41.0 * 1024 * 1024,
                                                  .cpu_samples = 5000,
                                                  .mem_samples = 5000,
                                                  .history_s = 3 * 86400}};

/* ---- environment: the shared harness (support/tctl.h) --------------------------------------- */

typedef tctl run;

static void env_start(void)
{
    tctl_env_start(&tenv, "test_controller");
    /* workloads roll out at once: the rollout gate is tested on its own */
    fakeapi_set_rollouts_done(env.fa, 1);
}

/* Everything closes and the loop closes clean. */
static void env_stop(void)
{
    tctl_env_stop(&tenv);
}

/* A controller on namespace ns with the given options (providers owned by it
 * from here on); resyncs every 300 ms of virtual time. */
static void run_start_opts(run *r, const char *ns, ctl_opts o, tprov *p)
{
    o.resync_ms = 300;
    tctl_start(r, &tenv, ns, p, o);
}

static void run_start(run *r, const char *ns, int fail_metrics, int dry_run)
{
    run_start_opts(r, ns, (ctl_opts){.dry_run = dry_run},
                   tprov_new("test", fail_metrics, use_both, 2));
}

typedef struct wait_stat {
    size_t off; /* offset of a uint64_t in ctl_stats */
    uint64_t at_least;
} wait_stat;

static int pred_wait(void *ud)
{
    wait_stat *w = ud;
    ctl_stats st = tctl_stats(tctl_current());
    return *(uint64_t *)((char *)&st + w->off) >= w->at_least;
}

#define WAIT_STAT(field, n)                                                                        \
    do {                                                                                           \
        wait_stat w_ = {offsetof(ctl_stats, field), (n)};                                          \
        tctl_until(tctl_current(), pred_wait, &w_, #field " >= " #n);                              \
    } while (0)

/* ---- objects -------------------------------------------------------------------------------- */

static void put_ns(const char *ns)
{
    char j[256];
    snprintf(j, sizeof j,
             "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", ns);
    ASSERT_EQ_INT(fakeapi_put_json(env.fa, j), 0);
}

static void put_policy(const char *ns, const char *name, const char *spec)
{
    char j[2048];
    snprintf(j, sizeof j,
             "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\","
             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},\"spec\":%s}",
             name, ns, spec);
    ASSERT_EQ_INT(fakeapi_put_json(env.fa, j), 0);
}

#define SEL "\"selector\":{\"workloadSelector\":{\"matchLabels\":{\"app\":\"web\"}}}"

/* The Deployment as Git has it: two containers with requests. */
static void deployment_json(char *buf, size_t cap, const char *ns, int sidecar)
{
    snprintf(buf, cap,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
             "\"namespace\":\"%s\",\"labels\":{\"app\":\"web\"}},\"spec\":{\"replicas\":1,"
             "\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":"
             "{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"app\","
             "\"image\":\"registry.invalid/app:1\",\"resources\":{\"requests\":{\"cpu\":\"1\","
             "\"memory\":\"1Gi\"}}}%s]}}}}",
             ns,
             sidecar ? ",{\"name\":\"sidecar\",\"image\":\"registry.invalid/sidecar:1\","
                       "\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"128Mi\"}}}"
                     : "");
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

/* Server-side apply as another field manager (a GitOps tool). */
static long apply_as(const char *manager, int force, const char *ns, const char *body)
{
    reply_flag f = {0};
    krest_write_opts o = {.field_manager = manager, .force = force};
    ASSERT_EQ_INT(krest_patch(env.rest, &KRES_DEPLOYMENTS, ns, "web", NULL, KREST_PATCH_APPLY, body,
                              strlen(body), &o, on_reply, &f),
                  0);
    ASSERT(tloop_until_flag(&env.loop, &f.done, 5000));
    return f.status;
}

static const cJSON *live(const char *ns)
{
    char path[256];
    snprintf(path, sizeof path, "/apis/apps/v1/namespaces/%s/deployments/web", ns);
    const cJSON *o = fakeapi_get(env.fa, path);
    ASSERT_NOT_NULL(o);
    return o;
}

static const char *live_request(const char *ns, const char *container, const char *res)
{
    const cJSON *cs = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(live(ns), "spec"), "template"),
                            "spec"),
        "containers");
    const cJSON *c;
    cJSON_ArrayForEach(c, cs)
    {
        const cJSON *n = cJSON_GetObjectItem(c, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, container) == 0) {
            const cJSON *v = cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(c, "resources"), "requests"), res);
            return cJSON_IsString(v) ? v->valuestring : NULL;
        }
    }
    return NULL;
}

static int live_has_container(const char *ns, const char *container)
{
    const cJSON *cs = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(live(ns), "spec"), "template"),
                            "spec"),
        "containers");
    const cJSON *c;
    cJSON_ArrayForEach(c, cs)
    {
        const cJSON *n = cJSON_GetObjectItem(c, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, container) == 0)
            return 1;
    }
    return 0;
}

/* Requests in the log: method, a path substring, a query/body substring (NULL = any). */
static size_t count_req(const char *method, const char *path, const char *in_path,
                        const char *in_body)
{
    return tctl_count_req(&tenv, method, path, in_path, in_body);
}

static const fakeapi_logged *last_req(const char *method, const char *path, const char *in_path)
{
    const fakeapi_logged *found = NULL;
    for (size_t i = 0; i < fakeapi_log_count(env.fa); i++) {
        const fakeapi_logged *l = fakeapi_log_at(env.fa, i);
        if (strcmp(l->method, method) == 0 && strstr(l->path, path) &&
            (!in_path || strstr(l->path, in_path)))
            found = l;
    }
    return found;
}

/* The workload write requests (not events, not dry runs). */
static size_t workload_writes(const char *ns)
{
    char p[256];
    snprintf(p, sizeof p, "/namespaces/%s/deployments/web", ns);
    size_t n = 0;
    for (size_t i = 0; i < fakeapi_log_count(env.fa); i++) {
        const fakeapi_logged *l = fakeapi_log_at(env.fa, i);
        if (strcmp(l->method, "GET") != 0 && strstr(l->path, p) &&
            strstr(l->path, "fieldManager=optipod") && !strstr(l->path, "dryRun=All"))
            n++;
    }
    return n;
}

static const cJSON *policy_status(const char *ns, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/apis/optipod.io/v1alpha1/namespaces/%s/optimizationpolicies/%s",
             ns, name);
    const cJSON *o = fakeapi_get(env.fa, path);
    return o ? cJSON_GetObjectItem(o, "status") : NULL;
}

static const char *condition(const cJSON *status, const char *type, const char *field)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(status, "conditions"))
    {
        const cJSON *t = cJSON_GetObjectItem(c, "type");
        if (cJSON_IsString(t) && strcmp(t->valuestring, type) == 0) {
            const cJSON *v = cJSON_GetObjectItem(c, field);
            return cJSON_IsString(v) ? v->valuestring : NULL;
        }
    }
    return NULL;
}

typedef struct status_wait {
    const char *ns, *name, *type, *want;
} status_wait;

static int pred_condition(void *ud)
{
    status_wait *w = ud;
    const cJSON *st = policy_status(w->ns, w->name);
    const char *s = st ? condition(st, w->type, "status") : NULL;
    return s && strcmp(s, w->want) == 0;
}

#define WAIT_CONDITION(ns, name, type, want)                                                       \
    do {                                                                                           \
        status_wait sw_ = {ns, name, type, want};                                                  \
        tctl_until(tctl_current(), pred_condition, &sw_, "condition " type " = " want);            \
    } while (0)

/* Events of a reason regarding anything in ns: POSTs (created), not series PATCHes. */
static size_t events_created(const char *ns, const char *reason)
{
    return tctl_events(&tenv, ns, reason, NULL);
}

typedef struct wait_ev {
    const char *ns, *reason;
    size_t n;
} wait_ev;

static int pred_ev(void *ud)
{
    wait_ev *w = ud;
    return events_created(w->ns, w->reason) >= w->n;
}

#define WAIT_EVENT(ns, reason, n)                                                                  \
    do {                                                                                           \
        wait_ev we_ = {ns, reason, n};                                                             \
        tctl_until(tctl_current(), pred_ev, &we_, "Event " reason);                                \
    } while (0)

static const char *event_note(const char *ns, const char *reason)
{
    const char *note = NULL;
    tctl_events(&tenv, ns, reason, &note);
    return note;
}

/* Git's Deployment synced by Argo CD (Apply, not forced) into a new namespace,
 * and a policy there. */
static void git_synced(const char *ns, int sidecar, const char *policy, const char *spec)
{
    char d[2048];
    put_ns(ns);
    deployment_json(d, sizeof d, ns, sidecar);
    ASSERT_EQ_INT(apply_as("argocd-controller", 0, ns, d), 201);
    put_policy(ns, policy, spec);
}

/* Git's one-container Deployment (body in d) synced by Flux (forced Apply)
 * into a new namespace, and an Auto policy there. */
static void flux_synced(const char *ns, char *d, size_t cap)
{
    put_ns(ns);
    deployment_json(d, cap, ns, 0);
    ASSERT_EQ_INT(apply_as("kustomize-controller", 1, ns, d), 201);
    put_policy(ns, "auto", "{\"mode\":\"Auto\"," SEL "}");
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* SSA strategy: the pre-check body holds only resources and the uid; the
 * write is optipod's alone; a steady state writes nothing more. */
static void test_auto_ssa_writes_only_resources_as_optipod(void)
{
    const char *ns = "t-ssa";
    char d[2048];
    put_ns(ns);
    deployment_json(d, sizeof d, ns, 1);
    ASSERT_EQ_INT(apply_as("argocd-controller", 0, ns, d), 201);
    /* Git does not set the sidecar's requests in this test: nobody else owns them. */
    put_policy(ns, "auto", "{\"mode\":\"Auto\"," SEL "}");
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0, 0);
    WAIT_STAT(applied, 1);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "500m");
    ASSERT_STR_EQ(live_request(ns, "app", "memory"), "512Mi");

    /* the pre-check: unforced, dryRun=All, fieldManager=optipod, only resources + uid */
    const fakeapi_logged *dry = last_req("PATCH", "/deployments/web", "dryRun=All");
    ASSERT_NOT_NULL(dry);
    ASSERT_STR_EQ(dry->content_type, "application/apply-patch+yaml");
    ASSERT_STR_CONTAINS(dry->path, "fieldManager=optipod");
    ASSERT(strstr(dry->path, "force=") == NULL);
    cJSON *b = cJSON_Parse(dry->body);
    ASSERT_NOT_NULL(b);
    const cJSON *md = cJSON_GetObjectItem(b, "metadata");
    ASSERT_STR_EQ(
        cJSON_GetObjectItem(md, "uid")->valuestring,
        cJSON_GetObjectItem(cJSON_GetObjectItem(live(ns), "metadata"), "uid")->valuestring);
    ASSERT_NULL(cJSON_GetObjectItem(md, "labels"));
    ASSERT_NULL(cJSON_GetObjectItem(md, "annotations"));
    const cJSON *spec = cJSON_GetObjectItem(b, "spec");
    ASSERT_EQ_INT(cJSON_GetArraySize(spec), 1);
    const cJSON *pspec = cJSON_GetObjectItem(cJSON_GetObjectItem(spec, "template"), "spec");
    ASSERT_EQ_INT(cJSON_GetArraySize(pspec), 1);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(pspec, "containers"))
    {
        ASSERT_EQ_INT(cJSON_GetArraySize(c), 2); /* name and resources */
        ASSERT_NOT_NULL(cJSON_GetObjectItem(c, "resources"));
        ASSERT_NULL(cJSON_GetObjectItem(c, "image"));
    }
    cJSON_Delete(b);

    /* the write: strategic merge under optipod; optipod owns nothing else */
    const fakeapi_logged *wr = last_req("PATCH", "/deployments/web", "fieldManager=optipod");
    ASSERT_NOT_NULL(wr);
    ASSERT_STR_EQ(wr->content_type, "application/strategic-merge-patch+json");
    ASSERT(strstr(wr->path, "dryRun") == NULL);
    ASSERT_STR_CONTAINS(wr->body, "\"resourceVersion\"");
    mfields mf;
    mfields_init(&mf);
    ASSERT_EQ_INT(mfields_parse(&mf, live(ns), NULL), 0);
    char path[512];
    mfields_path_resource(path, sizeof path, MFIELDS_CONTAINERS, "app", "requests", "cpu");
    ASSERT(mfields_manager_owns(&mf, MFIELDS_OPTIPOD, path));
    ASSERT_EQ_INT((int)mfields_foreign(&mf, MFIELDS_OPTIPOD, 0, NULL), 0);
    /* an Update owner: it never pins a container item (kubernetes#128102) */
    ASSERT_EQ_INT(mfields_pins_item(&mf, MFIELDS_OPTIPOD, MFIELDS_CONTAINERS, "app"), 0);
    mfields_release(&mf);
    WAIT_EVENT(ns, "ResourcesApplied", 1); /* Events go out one at a time, after the write */
    WAIT_CONDITION(ns, "auto", "Ready", "True");
    const cJSON *st = policy_status(ns, "auto");
    ASSERT_EQ_INT(cJSON_GetObjectItem(st, "workloadsMatched")->valueint, 1);
    ASSERT_NOT_NULL(cJSON_GetObjectItem(st, "lastReconcileTime"));
    ASSERT_CMP_INT(cJSON_GetArraySize(cJSON_GetObjectItem(st, "recommendations")), >=, 1);

    /* steady state: the next resyncs converge, then write nothing at all */
    tctl_step(2500);
    size_t writes = workload_writes(ns),
           all = count_req("PATCH", NULL, NULL, NULL) + count_req("POST", NULL, NULL, NULL);
    ctl_stats s0, s1;
    ctl_stats_get(r.c, &s0);
    tctl_step(1500);
    ctl_stats_get(r.c, &s1);
    ASSERT_CMP_INT(s1.reconciles, >, s0.reconciles); /* it kept reconciling */
    ASSERT_EQ_INT((long long)workload_writes(ns), (long long)writes);
    ASSERT_EQ_INT(
        (long long)(count_req("PATCH", NULL, NULL, NULL) + count_req("POST", NULL, NULL, NULL)),
        (long long)all);
    tctl_stop(&r);
}

/* argocd-controller owns the requests: one SSAConflict event (a series on
 * repeats), a Conflict condition, and a forced write only when allowed. */
static void conflict_case(const char *ns, int force)
{
    char d[2048], spec[512];
    put_ns(ns);
    deployment_json(d, sizeof d, ns, 0);
    ASSERT_EQ_INT(apply_as("argocd-controller", 0, ns, d), 201);
    snprintf(spec, sizeof spec,
             "{\"mode\":\"Auto\"," SEL ",\"updateStrategy\":{\"forceConflicts\":%s}}",
             force ? "true" : "false");
    put_policy(ns, "auto", spec);
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0, 0);
    WAIT_STAT(dry_run_applies, 1);
    WAIT_CONDITION(ns, "auto", "Conflict", "True");
    ASSERT_EQ_INT((long long)events_created(ns, "SSAConflict"), 1);
    const char *note = event_note(ns, "SSAConflict");
    ASSERT_STR_CONTAINS(note, "argocd-controller");
    ASSERT_STR_CONTAINS(note, "requests.cpu");
    ASSERT_STR_CONTAINS(note, "Remedy: ");
    ASSERT_EQ_INT((long long)events_created(ns, "SSATakeover"), 0);
    if (force) {
        ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "500m");
        /* Argo CD self-heals once (forced): the conflict comes back, the same
         * event becomes a series instead of a new object */
        ASSERT_EQ_INT(apply_as("argocd-controller", 1, ns, d), 200);
        WAIT_STAT(dry_run_applies, 2);
        tctl_step(800);
        ASSERT_EQ_INT((long long)events_created(ns, "SSAConflict"), 1);
        ASSERT_CMP_INT(count_req("PATCH", "/events/", NULL, "\"series\""), >=, 1);
    } else {
        uint64_t n0 = tctl_reconciles();
        tctl_step(1000);
        ASSERT_CMP_INT(tctl_reconciles(), >, n0);
        ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "1");
        ASSERT_EQ_INT((long long)workload_writes(ns), 0);
        ctl_stats st;
        ctl_stats_get(r.c, &st);
        ASSERT_CMP_INT(st.conflicts, >=, 1);
        ASSERT_EQ_INT((long long)events_created(ns, "SSAConflict"), 1);
    }
    tctl_stop(&r);
}

static void test_conflict_with_argocd_forced_when_allowed(void)
{
    conflict_case("t-argo-force", 1);
}

static void test_conflict_with_argocd_yields_when_not_allowed(void)
{
    conflict_case("t-argo-yield", 0);
}

typedef struct flux {
    const char *ns;
    const char *body;
    int reclaims;
    const char *last_seen;
} flux;

static int ours_live(const flux *f)
{
    const char *v = live_request(f->ns, "app", "cpu");
    return v && strcmp(v, "1") != 0;
}

static int pred_ours_live_or_stopped(void *ud)
{
    return ours_live(ud) || tctl_stats(tctl_current()).loops_stopped > 0;
}

/* Flux at its interval: whenever optipod's value is live, force Git's back. */
static void flux_sync(flux *f)
{
    if (ours_live(f)) {
        ASSERT_EQ_INT(apply_as("kustomize-controller", 1, f->ns, f->body), 200);
        f->reclaims++;
    }
}

static void test_flux_forced_reclaim_stops_in_a_loop(void)
{
    const char *ns = "t-flux";
    char d[2048];
    flux_synced(ns, d, sizeof d);
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0, 0);
    flux f = {ns, d, 0, NULL};
    while (tctl_stats(&r).loops_stopped == 0) {
        ASSERT_CMP_INT(f.reclaims, <, 10);
        tctl_until(&r, pred_ours_live_or_stopped, &f, "optipod's value live, or the loop stopped");
        flux_sync(&f);
    }
    /* three take-backs (the default) stop it, each counted once */
    ASSERT_EQ_INT(f.reclaims, 3);
    ctl_stats st;
    ctl_stats_get(r.c, &st);
    ASSERT_EQ_INT((long long)st.loops_stopped, 1);
    ASSERT_EQ_INT((long long)events_created(ns, "GitOpsConflictLoop"), 1);
    const char *note = event_note(ns, "GitOpsConflictLoop");
    ASSERT_STR_CONTAINS(note, "kustomize-controller");
    ASSERT_STR_CONTAINS(note, "/spec/template/spec/containers/0/resources/requests/cpu");
    /* stopped: no further applies while Flux keeps its values */
    size_t writes = workload_writes(ns);
    int reclaims = f.reclaims;
    uint64_t n0 = tctl_reconciles();
    for (int i = 0; i < 5; i++) {
        tctl_step(300);
        flux_sync(&f);
    }
    ASSERT_CMP_INT(tctl_reconciles(), >, n0); /* it kept looking */
    ASSERT_EQ_INT((long long)workload_writes(ns), (long long)writes);
    ASSERT_EQ_INT(f.reclaims, reclaims);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "1");
    WAIT_CONDITION(ns, "auto", "Conflict", "True");
    ASSERT_STR_EQ(condition(policy_status(ns, "auto"), "Conflict", "reason"), "GitOpsConflictLoop");
    tctl_stop(&r);
}

/* Git's re-apply races optipod's write: the fake answers optipod's next
 * writes (the strategic-merge PATCH, not the dry run) with the 409 a real
 * server gives when another apply lands between optipod's GET and its write. */
static int races_left;

static int race_hook(fakeapi *f, ophttpd_req *req, void *ud)
{
    (void)f;
    (void)ud;
    static const char conflict[] =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
        "\"message\":\"Operation cannot be fulfilled on deployments.apps \\\"web\\\": the object "
        "has been modified; please apply your changes to the latest version and try again\","
        "\"reason\":\"Conflict\",\"details\":{\"name\":\"web\",\"group\":\"apps\","
        "\"kind\":\"deployments\"},\"code\":409}";
    if (races_left <= 0 || strcmp(ophttpd_method(req), "PATCH") != 0 ||
        !strstr(ophttpd_path(req), "/deployments/web") ||
        strcmp(ophttpd_query(req), "fieldManager=optipod") != 0)
        return 0;
    races_left--;
    ophttpd_respond(req, 409, "application/json", conflict, strlen(conflict), NULL);
    return 1;
}

static int pred_ours_back(void *ud)
{
    const char *v = live_request(ud, "app", "cpu");
    return v && strcmp(v, "500m") == 0;
}

/* One take-back by Git, then two 409 retries of optipod's write: each retry
 * reads the same take-back again. That is one reclaim, not three: the
 * workload is not stopped, and the third write lands. */
static void test_raced_take_back_is_one_reclaim(void)
{
    const char *ns = "t-race";
    char d[2048];
    flux_synced(ns, d, sizeof d);
    run r;
    run_start(&r, ns, 0, 0);
    WAIT_STAT(applied, 1);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "500m");
    races_left = 2;
    fakeapi_set_hook(env.fa, race_hook, NULL);
    ASSERT_EQ_INT(apply_as("kustomize-controller", 1, ns, d), 200); /* Git takes it back */
    tctl_until(&r, pred_ours_back, (void *)ns, "optipod's value back after two 409s");
    fakeapi_set_hook(env.fa, NULL, NULL);
    ASSERT_EQ_INT(races_left, 0);
    ctl_stats st = tctl_stats(&r);
    ASSERT_CMP_INT(st.errors, >=, 2);
    ASSERT_EQ_INT((long long)st.loops_stopped, 0);
    ASSERT_EQ_INT((long long)events_created(ns, "GitOpsConflictLoop"), 0);
    tctl_stop(&r);
}

/* --min-write-interval: optipod writes, Flux takes the value back at once (a
 * second cause to write); the second write waits for the interval's end,
 * however many reconciles (resyncs every 300 ms) look in between, and
 * happens when it ends, not a resync later. */
static void test_min_write_interval_writes_once_per_interval(void)
{
    const char *ns = "t-min-write";
    char d[2048];
    flux_synced(ns, d, sizeof d);
    run r;
    run_start_opts(&r, ns, (ctl_opts){.min_write_ms = 5000}, tprov_new("test", 0, use_both, 2));
    WAIT_STAT(applied, 1);
    uint64_t t1 = tctl_now(&r);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "500m");
    size_t writes = workload_writes(ns);
    ASSERT_EQ_INT(apply_as("kustomize-controller", 1, ns, d), 200); /* the second cause */
    uint64_t n0 = tctl_reconciles();
    tctl_step(4500);
    ASSERT_CMP_INT(tctl_reconciles(), >, n0 + 5); /* it looked, every resync */
    ASSERT_EQ_INT((long long)workload_writes(ns), (long long)writes);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "1");
    tctl_until(&r, pred_ours_back, (void *)ns, "the second write");
    uint64_t t2 = tctl_now(&r);
    ASSERT_CMP_INT(t2 - t1, >=, 5000);
    ASSERT_CMP_INT(t2 - t1, <, 5000 + 300); /* requeued for the interval's end */
    ASSERT_EQ_INT((long long)workload_writes(ns), (long long)writes + 1);
    tctl_stop(&r);
}

static int pred_duplicate_reason(void *ud)
{
    const cJSON *st = policy_status(ud, "auto");
    const char *reason = st ? condition(st, "Conflict", "reason") : NULL;
    return reason && strcmp(reason, "DuplicateController") == 0;
}

static int pred_not_theirs(void *ud)
{
    const char *v = live_request(ud, "app", "cpu");
    return v && strcmp(v, "300m") != 0;
}

/* Another process writes as field manager optipod (a second install, a local
 * run without leader election): the value optipod wrote changes under its
 * own name. One Warning DuplicateController, the Conflict condition says so,
 * no write for the reconcile period; then it is evaluated again. */
static void test_duplicate_controller_is_told_once_and_left_alone(void)
{
    const char *ns = "t-duplicate";
    git_synced(ns, 0, "auto",
               "{\"mode\":\"Auto\"," SEL ",\"updateStrategy\":{\"forceConflicts\":true}}");
    run r;
    tctl_start(&r, &tenv, ns, tprov_new("test", 0, use_both, 2), (ctl_opts){.resync_ms = 3000});
    WAIT_STAT(applied, 1);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "500m");
    ASSERT_EQ_INT((long long)events_created(ns, "DuplicateController"), 0);

    /* the other process: an apply as optipod, with other values */
    char other[1024];
    snprintf(other, sizeof other,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
             "\"namespace\":\"%s\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":"
             "\"app\",\"resources\":{\"requests\":{\"cpu\":\"300m\"}}}]}}}}",
             ns);
    ASSERT_EQ_INT(apply_as("optipod", 1, ns, other), 200);
    WAIT_STAT(duplicates, 1);
    uint64_t t0 = tctl_now(&r);
    ASSERT_EQ_INT((long long)events_created(ns, "DuplicateController"), 1);
    const char *note = event_note(ns, "DuplicateController");
    ASSERT_STR_CONTAINS(note, "\"type\":\"Warning\"");
    ASSERT_STR_CONTAINS(note, "another process writes as field manager optipod");
    ASSERT_STR_CONTAINS(note, "app/requests.cpu");
    size_t writes = workload_writes(ns);
    tctl_until(&r, pred_duplicate_reason, (void *)ns, "Conflict reason DuplicateController");
    ASSERT_STR_EQ(condition(policy_status(ns, "auto"), "Conflict", "status"), "True");
    /* the reconcile period: nothing written, whatever queues it */
    tctl_step(t0 + 2900 - tctl_now(&r));
    ASSERT_EQ_INT((long long)workload_writes(ns), (long long)writes);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "300m");
    ASSERT_EQ_INT((long long)events_created(ns, "DuplicateController"), 1);
    /* evaluated again after it: optipod's value, once, and no second Event */
    tctl_until(&r, pred_not_theirs, (void *)ns, "optipod's value after the period");
    ASSERT_CMP_INT(tctl_now(&r) - t0, >=, 3000);
    ASSERT_EQ_INT((long long)workload_writes(ns), (long long)writes + 1);
    tctl_step(3500);
    ASSERT_EQ_INT((long long)events_created(ns, "DuplicateController"), 1);
    ASSERT_EQ_INT((long long)tctl_stats(&r).duplicates, 1);
    WAIT_CONDITION(ns, "auto", "Conflict", "False");

    /* a replica that lost the Lease and leads again: the leader in between
     * wrote as optipod legitimately; that is no DuplicateController */
    ctl_set_leader(r.c, 0);
    ASSERT_EQ_INT(apply_as("optipod", 1, ns, other), 200);
    ctl_set_leader(r.c, 1);
    uint64_t n0 = tctl_reconciles();
    tctl_step(7000);
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    ASSERT_EQ_INT((long long)events_created(ns, "DuplicateController"), 1);
    ASSERT_EQ_INT((long long)tctl_stats(&r).duplicates, 1);
    tctl_stop(&r);
}

/* kubernetes#128102: the fake reproduces the 422 when optipod APPLIES
 * container fields; optipod's release (an apply without that container)
 * unblocks it; and optipod's own writes (Update operations) never block it,
 * nor does it ever write a container Git removed. */
static void test_container_removed_in_git_is_never_reapplied(void)
{
    const char *ns = "t-removal";
    char two[2048], one[2048];
    put_ns(ns);
    deployment_json(two, sizeof two, ns, 1);
    deployment_json(one, sizeof one, ns, 0);

    /* 1. the problem, on the fake: an Apply owner pins the sidecar */
    ASSERT_EQ_INT(apply_as("argocd-controller", 0, ns, two), 201);
    char pin[1024];
    char uid[64];
    snprintf(uid, sizeof uid, "%s",
             cJSON_GetObjectItem(cJSON_GetObjectItem(live(ns), "metadata"), "uid")->valuestring);
    snprintf(pin, sizeof pin,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
             "\"namespace\":\"%s\",\"uid\":\"%s\"},\"spec\":{\"template\":{\"spec\":{"
             "\"containers\":[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"300m\"}}},"
             "{\"name\":\"sidecar\",\"resources\":{\"requests\":{\"cpu\":\"50m\"}}}]}}}}",
             ns, uid);
    ASSERT_EQ_INT(apply_as("optipod", 1, ns, pin), 200);
    ASSERT_EQ_INT(apply_as("argocd-controller", 1, ns, one), 422);
    ASSERT(live_has_container(ns, "sidecar"));
    /* optipod's release: apply without the sidecar; Git's removal then passes */
    snprintf(pin, sizeof pin,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
             "\"namespace\":\"%s\",\"uid\":\"%s\"},\"spec\":{\"template\":{\"spec\":{"
             "\"containers\":[{\"name\":\"app\",\"resources\":{\"requests\":{\"cpu\":\"300m\"}}}"
             "]}}}}",
             ns, uid);
    ASSERT_EQ_INT(apply_as("optipod", 1, ns, pin), 200);
    ASSERT_EQ_INT(apply_as("argocd-controller", 1, ns, one), 200);
    ASSERT(!live_has_container(ns, "sidecar"));

    /* 2. the controller: start again from two containers, Git-owned */
    char path[256];
    snprintf(path, sizeof path, "/apis/apps/v1/namespaces/%s/deployments/web", ns);
    ASSERT_EQ_INT(fakeapi_delete(env.fa, path), 0);
    ASSERT_EQ_INT(apply_as("argocd-controller", 0, ns, two), 201);
    put_policy(ns, "auto", "{\"mode\":\"Auto\"," SEL "}");
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0, 0);
    WAIT_STAT(applied, 1);
    ASSERT_STR_EQ(live_request(ns, "sidecar", "cpu"), "50m"); /* optipod sized it */
    /* Git removes the sidecar: accepted at once, nothing pins it */
    ASSERT_EQ_INT(apply_as("argocd-controller", 1, ns, one), 200);
    ASSERT(!live_has_container(ns, "sidecar"));
    /* optipod keeps reconciling and never writes the sidecar back */
    uint64_t n0 = tctl_reconciles();
    tctl_step(1500);
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    ASSERT(!live_has_container(ns, "sidecar"));
    ASSERT_EQ_INT(
        (long long)count_req("PATCH", "/deployments/web", "fieldManager=optipod", "sidecar") -
            (long long)count_req("PATCH", "/deployments/web", "fieldManager=optipod",
                                 "\"name\":\"sidecar\""),
        0);
    size_t before = fakeapi_log_count(env.fa);
    tctl_step(800);
    for (size_t i = before; i < fakeapi_log_count(env.fa); i++)
        ASSERT(strstr(fakeapi_log_at(env.fa, i)->body, "sidecar") == NULL);
    tctl_stop(&r);
}

/* Recommend: annotations only, never resources; written once. */
static void test_recommend_never_writes_resources(void)
{
    const char *ns = "t-rec";
    git_synced(ns, 1, "rec", "{\"mode\":\"Recommend\"," SEL "}");
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0, 0);
    WAIT_STAT(applied, 1);
    uint64_t n0 = tctl_reconciles();
    tctl_step(1500);
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "1");
    ASSERT_STR_EQ(live_request(ns, "sidecar", "memory"), "128Mi");
    const cJSON *ann =
        cJSON_GetObjectItem(cJSON_GetObjectItem(live(ns), "metadata"), "annotations");
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/cpu-request.app")->valuestring, "500m");
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/strategy")->valuestring, "recommend");
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/webhook-enabled")->valuestring, "false");
    /* every optipod write was an annotation apply without a spec */
    ASSERT_EQ_INT(
        (long long)count_req("PATCH", "/deployments/web", "fieldManager=optipod", "\"spec\""), 0);
    ASSERT_EQ_INT((long long)workload_writes(ns), 1);
    ASSERT_CMP_INT(events_created(ns, "RecommendationUpdated"), >=, 1);
    tctl_stop(&r);
}

/* --dry-run: every write carries dryRun=All, nothing changes. */
static void test_dry_run_writes_nothing(void)
{
    const char *ns = "t-dry";
    git_synced(ns, 0, "auto", "{\"mode\":\"Auto\"," SEL "}");
    char *before = fakeapi_get_json(env.fa, "/apis/apps/v1/namespaces/t-dry/deployments/web");
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0, 1);
    WAIT_STAT(applied, 1);
    WAIT_STAT(status_writes, 1);
    tctl_step(300);
    char *after = fakeapi_get_json(env.fa, "/apis/apps/v1/namespaces/t-dry/deployments/web");
    ASSERT_STR_EQ(after, before);
    ASSERT_NULL(policy_status(ns, "auto"));
    for (size_t i = 0; i < fakeapi_log_count(env.fa); i++) {
        const fakeapi_logged *l = fakeapi_log_at(env.fa, i);
        if (strcmp(l->method, "GET") == 0 || strstr(l->path, "/events"))
            continue;
        if (!strstr(l->path, "dryRun=All"))
            test_fail(__FILE__, __LINE__, "a write without dryRun=All: %s %s", l->method, l->path);
    }
    ASSERT_CMP_INT(count_req("PATCH", "/deployments/web", "dryRun=All", NULL), >=, 2);
    free(before);
    free(after);
    tctl_stop(&r);
}

/* An invalid policy: Ready=False with the errors, an InvalidPolicy event, no write. */
static void test_invalid_policy_reports_and_never_applies(void)
{
    const char *ns = "t-invalid";
    git_synced(ns, 0, "bad",
               "{\"mode\":\"Auto\"," SEL ",\"resourceBounds\":{\"cpu\":{\"min\":\"lots\"}}}");
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0, 0);
    WAIT_CONDITION(ns, "bad", "Ready", "False");
    const cJSON *st = policy_status(ns, "bad");
    ASSERT_STR_EQ(condition(st, "Ready", "reason"), "InvalidSpec");
    ASSERT_STR_CONTAINS(condition(st, "Ready", "message"), "spec.resourceBounds.cpu.min");
    ASSERT_CMP_INT(cJSON_GetArraySize(cJSON_GetObjectItem(st, "validationErrors")), >=, 1);
    tctl_step(500);
    ASSERT_EQ_INT((long long)events_created(ns, "InvalidPolicy"), 1);
    ASSERT_EQ_INT((long long)workload_writes(ns), 0);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "1");
    tctl_stop(&r);
}

/* Disabled: optipod's annotations go, the requests stay. */
static void test_disabled_removes_annotations_and_leaves_values(void)
{
    const char *ns = "t-disabled";
    git_synced(ns, 0, "p", "{\"mode\":\"Recommend\"," SEL "}");
    run r;
    run_start(&r, ns, 0, 0);
    WAIT_STAT(applied, 1);
    const cJSON *ann =
        cJSON_GetObjectItem(cJSON_GetObjectItem(live(ns), "metadata"), "annotations");
    ASSERT_NOT_NULL(cJSON_GetObjectItem(ann, "optipod.io/cpu-request.app"));
    put_policy(ns, "p", "{\"mode\":\"Disabled\"," SEL "}");
    WAIT_STAT(skipped, 1);
    tctl_step(800);
    ann = cJSON_GetObjectItem(cJSON_GetObjectItem(live(ns), "metadata"), "annotations");
    ASSERT(!ann || !cJSON_GetObjectItem(ann, "optipod.io/cpu-request.app"));
    ASSERT(!ann || !cJSON_GetObjectItem(ann, "optipod.io/strategy"));
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "1");
    ASSERT_STR_EQ(live_request(ns, "app", "memory"), "1Gi");
    size_t writes = workload_writes(ns);
    uint64_t n0 = tctl_reconciles();
    tctl_step(800);
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    ASSERT_EQ_INT((long long)workload_writes(ns), (long long)writes);
    tctl_stop(&r);
}

/* The provider is down: MetricsUnavailable, MetricsAvailable=False, no change. */
static void test_metrics_unavailable(void)
{
    const char *ns = "t-nometrics";
    git_synced(ns, 0, "auto", "{\"mode\":\"Auto\"," SEL "}");
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 1, 0);
    WAIT_STAT(errors, 1);
    WAIT_CONDITION(ns, "auto", "MetricsAvailable", "False");
    ASSERT_STR_CONTAINS(condition(policy_status(ns, "auto"), "MetricsAvailable", "message"),
                        "connection refused");
    ASSERT_EQ_INT((long long)events_created(ns, "MetricsUnavailable"), 1);
    ASSERT_EQ_INT((long long)workload_writes(ns), 0);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "1");
    tctl_stop(&r);
}

/* metricsConfig.provider picks the source: a policy naming metrics-server is
 * served by it while Prometheus is the default; one naming Prometheus when
 * optipod runs without it gets MetricsUnavailable naming the flag and no
 * change, never another source's numbers. */
static void test_policy_provider_selects_source(void)
{
    const char *ns = "t-provider";
    git_synced(ns, 0, "auto",
               "{\"mode\":\"Auto\",\"metricsConfig\":{\"provider\":\"metrics-server\"}," SEL "}");
    tprov *prom = tprov_new("prometheus", 0, use_both, 2),
          *ms = tprov_new("metrics-server", 0, use_both, 2);
    run r;
    run_start_opts(&r, ns, (ctl_opts){.provider = &prom->p, .metrics_server = &ms->p}, NULL);
    WAIT_STAT(applied, 1);
    ASSERT(ms->calls > 0);
    ASSERT_EQ_INT(prom->calls, 0);
    WAIT_CONDITION(ns, "auto", "MetricsAvailable", "True");
    tctl_stop(&r);

    /* Only metrics-server runs; the policy asks for Prometheus. */
    const char *ns2 = "t-provider-missing";
    git_synced(ns2, 0, "auto",
               "{\"mode\":\"Auto\",\"metricsConfig\":{\"provider\":\"prometheus\"}," SEL "}");
    tprov *only_ms = tprov_new("metrics-server", 0, use_both, 2);
    run r2;
    run_start_opts(&r2, ns2, (ctl_opts){.provider = &only_ms->p}, NULL);
    WAIT_STAT(errors, 1);
    WAIT_CONDITION(ns2, "auto", "MetricsAvailable", "False");
    ASSERT_STR_CONTAINS(condition(policy_status(ns2, "auto"), "MetricsAvailable", "message"),
                        "--prometheus-url");
    ASSERT_EQ_INT((long long)events_created(ns2, "MetricsUnavailable"), 1);
    ASSERT_EQ_INT(only_ms->calls, 0);
    ASSERT_EQ_INT((long long)workload_writes(ns2), 0);
    ASSERT_STR_EQ(live_request(ns2, "app", "cpu"), "1");
    tctl_stop(&r2);
}

/* ---- in-place resize ---------------------------------------------------------------------- */

/* What discovery sees: the server's minor version and whether /api/v1 lists
 * pods/resize (1.32+). */
static struct {
    int minor;
    int subresource;
} disc = {33, 1};

static int discovery_hook(fakeapi *f, ophttpd_req *req, void *ud)
{
    (void)f;
    (void)ud;
    if (strcmp(ophttpd_method(req), "GET") != 0)
        return 0;
    char body[1024];
    if (strcmp(ophttpd_path(req), "/version") == 0) {
        snprintf(body, sizeof body,
                 "{\"major\":\"1\",\"minor\":\"%d\",\"gitVersion\":\"v1.%d.3\","
                 "\"platform\":\"linux/amd64\"}",
                 disc.minor, disc.minor);
    } else if (strcmp(ophttpd_path(req), "/api/v1") == 0) {
        snprintf(body, sizeof body,
                 "{\"kind\":\"APIResourceList\",\"groupVersion\":\"v1\",\"resources\":["
                 "{\"name\":\"pods\",\"singularName\":\"\",\"namespaced\":true,\"kind\":\"Pod\","
                 "\"verbs\":[\"create\",\"delete\",\"get\",\"list\",\"patch\",\"update\","
                 "\"watch\"]}%s]}",
                 disc.subresource
                     ? ",{\"name\":\"pods/resize\",\"singularName\":\"\",\"namespaced\":true,"
                       "\"kind\":\"Pod\",\"verbs\":[\"get\",\"patch\",\"update\"]}"
                     : "");
    } else {
        return 0;
    }
    ophttpd_respond(req, 200, "application/json", body, strlen(body), NULL);
    return 1;
}

static void put_pod_owned(const char *ns, const char *name, const char *owner_kind,
                          const char *owner, const char *resources, const char *qos)
{
    char j[2048];
    snprintf(j, sizeof j,
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"%s\",\"labels\":{\"app\":\"web\"},\"ownerReferences\":[{"
             "\"apiVersion\":\"apps/v1\",\"kind\":\"%s\",\"name\":\"%s\","
             "\"uid\":\"owner-uid\",\"controller\":true}]},\"spec\":{\"containers\":[{\"name\":"
             "\"app\",\"image\":\"registry.invalid/app:1\",\"resources\":%s}]},"
             "\"status\":{\"phase\":\"Running\",\"qosClass\":\"%s\"}}",
             name, ns, owner_kind, owner, resources, qos);
    ASSERT_EQ_INT(fakeapi_put_json(env.fa, j), 0);
}

static void put_pod(const char *ns, const char *name, const char *resources, const char *qos)
{
    put_pod_owned(ns, name, "ReplicaSet", "web-5d8f", resources, qos);
}

#define BURSTABLE "{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}"

/* The Deployment "web" (as Argo CD applied it), its ReplicaSet web-5d8f and a
 * policy with allowInPlaceResize and `strategy`. */
static void resize_setup(const char *ns, const char *strategy)
{
    char d[2048], rs[1024], spec[512];
    put_ns(ns);
    deployment_json(d, sizeof d, ns, 0);
    ASSERT_EQ_INT(apply_as("argocd-controller", 0, ns, d), 201);
    const char *duid =
        cJSON_GetObjectItem(cJSON_GetObjectItem(live(ns), "metadata"), "uid")->valuestring;
    snprintf(rs, sizeof rs,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":"
             "\"web-5d8f\",\"namespace\":\"%s\",\"uid\":\"rs-uid\",\"ownerReferences\":[{"
             "\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"web\",\"uid\":\"%s\","
             "\"controller\":true}]},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{"
             "\"app\":\"web\"}},\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\","
             "\"image\":\"registry.invalid/app:1\"}]}}}}",
             ns, duid);
    ASSERT_EQ_INT(fakeapi_put_json(env.fa, rs), 0);
    snprintf(spec, sizeof spec,
             "{\"mode\":\"Auto\"," SEL ",\"updateStrategy\":{\"strategy\":\"%s\","
             "\"allowInPlaceResize\":true}}",
             strategy);
    put_policy(ns, "auto", spec);
}

static char pod_path[256];

static const char *pod_at(const char *ns, const char *name)
{
    snprintf(pod_path, sizeof pod_path, "/api/v1/namespaces/%s/pods/%s", ns, name);
    return pod_path;
}

/* What the kubelet would write: the pod's status members (JSON object body)
 * replace its status; the spec (with the resize) is kept. */
static void kubelet_reports(const char *ns, const char *name, const char *status_members)
{
    const cJSON *was = fakeapi_get(env.fa, pod_at(ns, name));
    ASSERT_NOT_NULL(was);
    cJSON *pod = cJSON_Duplicate(was, 1);
    char st[2048];
    snprintf(st, sizeof st, "{\"phase\":\"Running\",\"qosClass\":\"Burstable\"%s%s}",
             status_members[0] ? "," : "", status_members);
    cJSON *status = cJSON_Parse(st);
    ASSERT_NOT_NULL(status);
    cJSON_ReplaceItemInObject(pod, "status", status);
    ASSERT_EQ_INT(fakeapi_put(env.fa, pod), 0);
    cJSON_Delete(pod);
}

#define IN_PROGRESS "\"conditions\":[{\"type\":\"PodResizeInProgress\",\"status\":\"True\"}]"
#define PENDING(r)                                                                                 \
    "\"conditions\":[{\"type\":\"PodResizePending\",\"status\":\"True\",\"reason\":\"" r "\"}]"
/* the recommendation for the canned usage: 500m / 512Mi (what the resize body sets) */
#define APPLIED                                                                                    \
    "\"containerStatuses\":[{\"name\":\"app\",\"ready\":true,\"restartCount\":0,\"resources\":{"   \
    "\"requests\":{\"cpu\":\"500m\",\"memory\":\"512Mi\"}}}]"

typedef struct wait_req {
    const char *method, *path, *in_body;
    size_t n;
} wait_req;

static int pred_req(void *ud)
{
    wait_req *w = ud;
    return count_req(w->method, w->path, NULL, w->in_body) >= w->n;
}

#define WAIT_REQ(method, path, in_body, n)                                                         \
    do {                                                                                           \
        wait_req wr_ = {method, path, in_body, n};                                                 \
        tctl_until(tctl_current(), pred_req, &wr_, "requests " #method " " #path);                 \
    } while (0)

static uint64_t resize_bound_ms; /* run_resize: both resize bounds; 0 = defaults */

static void run_resize(run *r, const char *ns)
{
    run_start_opts(
        r, ns,
        (ctl_opts){.resize_stall_ms = resize_bound_ms, .resize_deferred_ms = resize_bound_ms},
        tprov_new("test", 0, use_both, 2));
}

static void resize_done(run *r)
{
    tctl_stop(r);
    fakeapi_set_hook(env.fa, NULL, NULL);
    fakeapi_set_pod_patch_resize(env.fa, 0);
    resize_bound_ms = 0;
    disc.minor = 33;
    disc.subresource = 1;
}

/* allowInPlaceResize on a server with pods/resize: a running pod is resized
 * through the subresource, and only when the kubelet reports the new values
 * is it done (Event ResourcesResized); the QoS guard refuses the BestEffort
 * pod, so the webhook strategy's annotations follow. */
static void test_in_place_resize_with_qos_guard(void)
{
    const char *ns = "t-resize";
    resize_setup(ns, "webhook");
    put_pod(ns, "web-5d8f-a", BURSTABLE, "Burstable");
    /* no requests at all: BestEffort; requests would make it Burstable */
    put_pod(ns, "web-5d8f-b", "{}", "BestEffort");
    fakeapi_set_hook(env.fa, discovery_hook, NULL);
    fakeapi_log_clear(env.fa);
    run r;
    run_resize(&r, ns);
    WAIT_STAT(applied, 1); /* the resize, accepted */
    tctl_step(400);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/pods/web-5d8f-a/resize", NULL, "500m"), 1);
    ASSERT_EQ_INT((long long)events_created(ns, "ResourcesResized"), 0);
    ASSERT_NULL(live_request(ns, "app", "cpu") ? NULL : "template changed");
    kubelet_reports(ns, "web-5d8f-a", APPLIED);
    WAIT_STAT(applied, 2); /* then the annotations */
    tctl_step(300);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/pods/web-5d8f-b", NULL, NULL), 0);
    const cJSON *pod = fakeapi_get(env.fa, pod_at(ns, "web-5d8f-a"));
    ASSERT_NOT_NULL(pod);
    char *pj = cJSON_PrintUnformatted(pod);
    ASSERT_STR_CONTAINS(pj, "\"cpu\":\"500m\"");
    free(pj);
    /* the template is untouched; the annotations carry the values for new pods */
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "1");
    const cJSON *ann =
        cJSON_GetObjectItem(cJSON_GetObjectItem(live(ns), "metadata"), "annotations");
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/cpu-request.app")->valuestring, "500m");
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/strategy")->valuestring, "webhook");
    ASSERT_EQ_INT((long long)events_created(ns, "ResourcesResized"), 1);
    ASSERT_STR_CONTAINS(event_note(ns, "ResourcesResized"),
                        "resized pod web-5d8f-a in place: app: requests.cpu=500m "
                        "requests.memory=512Mi");
    resize_done(&r);
}

/* One pod in flight per workload: the second pod waits while the first one's
 * resize is accepted and in progress, and goes once the first is done. */
static void test_resize_one_pod_at_a_time(void)
{
    const char *ns = "t-resize-seq";
    resize_setup(ns, "webhook");
    put_pod(ns, "web-5d8f-a", BURSTABLE, "Burstable");
    put_pod(ns, "web-5d8f-b", BURSTABLE, "Burstable");
    fakeapi_set_hook(env.fa, discovery_hook, NULL);
    fakeapi_log_clear(env.fa);
    run r;
    run_resize(&r, ns);
    WAIT_REQ("PATCH", "/pods/web-5d8f-", NULL, 1);
    uint64_t n0 = tctl_reconciles();
    tctl_step(700); /* resyncs every 300 ms: still one in flight */
    ASSERT_CMP_INT(tctl_reconciles(), >, n0);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/pods/web-5d8f-", NULL, NULL), 1);
    const char *first =
        count_req("PATCH", "/pods/web-5d8f-a/resize", NULL, NULL) ? "web-5d8f-a" : "web-5d8f-b";
    const char *second = first[9] == 'a' ? "web-5d8f-b" : "web-5d8f-a";
    kubelet_reports(ns, first, IN_PROGRESS);
    tctl_step(700);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/pods/web-5d8f-", NULL, NULL), 1);
    ASSERT_EQ_INT((long long)events_created(ns, "ResourcesResized"), 0);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/deployments/web", NULL, NULL), 0);
    kubelet_reports(ns, first, APPLIED);
    char p[64];
    snprintf(p, sizeof p, "/pods/%s/resize", second);
    WAIT_REQ("PATCH", p, "500m", 1);
    ASSERT_EQ_INT((long long)events_created(ns, "ResourcesResized"), 1);
    kubelet_reports(ns, second, APPLIED);
    WAIT_EVENT(ns, "ResourcesResized", 2);
    tctl_step(700);
    /* each completion told once; each pod resized once */
    ASSERT_EQ_INT((long long)events_created(ns, "ResourcesResized"), 2);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/pods/web-5d8f-", NULL, NULL), 2);
    ctl_stats st;
    ctl_stats_get(r.c, &st);
    ASSERT_EQ_INT((long long)st.errors, 0);
    resize_done(&r);
}

/* Infeasible on the node: ResizeInfeasible names the pod, the resize is not
 * tried again on it, and the ssa strategy writes the template. */
static void test_resize_infeasible_falls_back_to_ssa(void)
{
    const char *ns = "t-resize-inf";
    resize_setup(ns, "ssa");
    put_pod(ns, "web-5d8f-a", BURSTABLE, "Burstable");
    fakeapi_set_hook(env.fa, discovery_hook, NULL);
    fakeapi_log_clear(env.fa);
    run r;
    run_resize(&r, ns);
    WAIT_REQ("PATCH", "/pods/web-5d8f-a/resize", NULL, 1);
    tctl_step(400);
    ASSERT_EQ_INT((long long)workload_writes(ns), 0);
    kubelet_reports(ns, "web-5d8f-a", PENDING("Infeasible"));
    WAIT_EVENT(ns, "ResizeInfeasible", 1);
    ASSERT_STR_CONTAINS(event_note(ns, "ResizeInfeasible"), "pod web-5d8f-a");
    ASSERT_STR_CONTAINS(event_note(ns, "ResizeInfeasible"), "infeasible");
    WAIT_STAT(applied, 2); /* the resize, then the template write */
    tctl_step(700);
    ASSERT(strcmp(live_request(ns, "app", "cpu"), "1") != 0); /* the strategy's value */
    const fakeapi_logged *w = last_req("PATCH", "/deployments/web", "fieldManager=optipod");
    ASSERT_NOT_NULL(w);
    ASSERT_STR_EQ(w->content_type, "application/strategic-merge-patch+json");
    ASSERT_EQ_INT((long long)count_req("PATCH", "/pods/web-5d8f-a/resize", NULL, NULL), 1);
    ASSERT_EQ_INT((long long)events_created(ns, "ResizeInfeasible"), 1);
    ASSERT_EQ_INT((long long)events_created(ns, "ResourcesResized"), 0);
    resize_done(&r);
}

/* Deferred past its bound: ResizeFailed, and the strategy takes over. */
static void test_resize_deferred_too_long(void)
{
    const char *ns = "t-resize-def";
    resize_setup(ns, "webhook");
    put_pod(ns, "web-5d8f-a", BURSTABLE, "Burstable");
    fakeapi_set_hook(env.fa, discovery_hook, NULL);
    fakeapi_log_clear(env.fa);
    resize_bound_ms = 1500; /* virtual time: slow runs need no scaling */
    run r;
    run_resize(&r, ns);
    WAIT_REQ("PATCH", "/pods/web-5d8f-a/resize", NULL, 1);
    kubelet_reports(ns, "web-5d8f-a", PENDING("Deferred"));
    tctl_step(600);
    ASSERT_EQ_INT((long long)events_created(ns, "ResizeFailed"), 0);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/deployments/web", NULL, NULL), 0);
    WAIT_EVENT(ns, "ResizeFailed", 1);
    ASSERT_STR_CONTAINS(event_note(ns, "ResizeFailed"), "deferred");
    WAIT_STAT(applied, 2); /* the resize, then the annotations */
    const cJSON *ann =
        cJSON_GetObjectItem(cJSON_GetObjectItem(live(ns), "metadata"), "annotations");
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/cpu-request.app")->valuestring, "500m");
    ASSERT_EQ_INT((long long)count_req("PATCH", "/pods/web-5d8f-a/resize", NULL, NULL), 1);
    resize_done(&r);
}

/* The pod deleted mid-resize: forgotten without an error; the next pod goes. */
static void test_resize_pod_deleted_midway(void)
{
    const char *ns = "t-resize-del";
    resize_setup(ns, "webhook");
    put_pod(ns, "web-5d8f-a", BURSTABLE, "Burstable");
    put_pod(ns, "web-5d8f-b", BURSTABLE, "Burstable");
    fakeapi_set_hook(env.fa, discovery_hook, NULL);
    fakeapi_log_clear(env.fa);
    run r;
    run_resize(&r, ns);
    WAIT_REQ("PATCH", "/pods/web-5d8f-", NULL, 1);
    const char *first =
        count_req("PATCH", "/pods/web-5d8f-a/resize", NULL, NULL) ? "web-5d8f-a" : "web-5d8f-b";
    const char *second = first[9] == 'a' ? "web-5d8f-b" : "web-5d8f-a";
    tctl_step(300);
    ASSERT_EQ_INT(fakeapi_delete(env.fa, pod_at(ns, first)), 0);
    char p[64];
    snprintf(p, sizeof p, "/pods/%s/resize", second);
    WAIT_REQ("PATCH", p, NULL, 1);
    tctl_step(300);
    ctl_stats st;
    ctl_stats_get(r.c, &st);
    ASSERT_EQ_INT((long long)st.errors, 0);
    ASSERT_EQ_INT((long long)events_created(ns, "ResizeFailed"), 0);
    ASSERT_EQ_INT((long long)events_created(ns, "ResourcesResized"), 0);
    resize_done(&r);
}

/* 1.29 without pods/resize, the gate on: the pod itself is PATCHed, with its
 * uid as a precondition, and followed like a subresource resize. */
static void test_resize_pod_patch_on_1_29(void)
{
    const char *ns = "t-resize-129";
    resize_setup(ns, "webhook");
    put_pod(ns, "web-5d8f-a", BURSTABLE, "Burstable");
    disc.minor = 29;
    disc.subresource = 0;
    fakeapi_set_hook(env.fa, discovery_hook, NULL);
    fakeapi_set_pod_patch_resize(env.fa, 1);
    fakeapi_log_clear(env.fa);
    run r;
    run_resize(&r, ns);
    WAIT_REQ("PATCH", "/pods/web-5d8f-a?", NULL, 1);
    WAIT_STAT(applied, 1);
    const fakeapi_logged *l = last_req("PATCH", "/pods/web-5d8f-a?", NULL);
    const char *uid =
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(fakeapi_get(env.fa, pod_at(ns, "web-5d8f-a")), "metadata"), "uid")
            ->valuestring;
    char pre[128];
    snprintf(pre, sizeof pre, "{\"metadata\":{\"uid\":\"%s\"},\"spec\":", uid);
    ASSERT(strncmp(l->body, pre, strlen(pre)) == 0);
    ASSERT_STR_CONTAINS(l->body, "\"cpu\":\"500m\"");
    ASSERT_EQ_INT(l->status, 200);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/resize", NULL, NULL), 0);
    kubelet_reports(ns, "web-5d8f-a", "\"resize\":\"InProgress\"");
    tctl_step(400);
    ASSERT_EQ_INT((long long)events_created(ns, "ResourcesResized"), 0);
    kubelet_reports(ns, "web-5d8f-a", APPLIED);
    WAIT_EVENT(ns, "ResourcesResized", 1);
    resize_done(&r);
}

static void put_statefulset(const char *ns)
{
    char j[2048];
    snprintf(j, sizeof j,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"metadata\":{\"name\":\"db\","
             "\"namespace\":\"%s\",\"labels\":{\"app\":\"web\"}},\"spec\":{\"replicas\":1,"
             "\"selector\":{\"matchLabels\":{\"app\":\"db\"}},\"template\":{\"metadata\":"
             "{\"labels\":{\"app\":\"db\"}},\"spec\":{\"containers\":[{\"name\":\"app\","
             "\"image\":\"registry.invalid/db:1\",\"resources\":{\"requests\":{\"cpu\":\"1\","
             "\"memory\":\"1Gi\"}}}]}}}}",
             ns);
    ASSERT_EQ_INT(fakeapi_put_json(env.fa, j), 0);
}

/* 1.29 with the gate off answers a pod PATCH with v1.24's 422: one pod PATCH
 * in all, none for the next workload, and the ssa strategy writes both. */
static void test_resize_pod_patch_unsupported_once(void)
{
    const char *ns = "t-resize-422";
    resize_setup(ns, "ssa");
    put_statefulset(ns);
    put_pod(ns, "web-5d8f-a", BURSTABLE, "Burstable");
    put_pod_owned(ns, "db-0", "StatefulSet", "db", BURSTABLE, "Burstable");
    disc.minor = 29;
    disc.subresource = 0;
    fakeapi_set_hook(env.fa, discovery_hook, NULL);
    fakeapi_log_clear(env.fa);
    run r;
    run_resize(&r, ns);
    WAIT_REQ("PATCH", "/statefulsets/db", "requests", 2); /* dry run + write */
    WAIT_REQ("PATCH", "/deployments/web", "requests", 2);
    tctl_step(700);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/pods/", NULL, NULL), 1);
    const fakeapi_logged *l = last_req("PATCH", "/pods/", NULL);
    ASSERT_EQ_INT(l->status, 422);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/resize", NULL, NULL), 0);
    ASSERT(strcmp(live_request(ns, "app", "cpu"), "1") != 0);
    ASSERT_EQ_INT((long long)events_created(ns, "ResizeFailed"), 0);
    resize_done(&r);
}

/* v1.24 (the fixtures' server): no in-place resize at all, the strategy only. */
static void test_resize_not_on_1_24(void)
{
    const char *ns = "t-resize-124";
    resize_setup(ns, "ssa");
    put_pod(ns, "web-5d8f-a", BURSTABLE, "Burstable");
    disc.minor = 24;
    disc.subresource = 0;
    fakeapi_set_hook(env.fa, discovery_hook, NULL);
    fakeapi_log_clear(env.fa);
    run r;
    run_resize(&r, ns);
    WAIT_REQ("PATCH", "/deployments/web", "requests", 2);
    tctl_step(300);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/pods/", NULL, NULL), 0);
    ASSERT(strcmp(live_request(ns, "app", "cpu"), "1") != 0);
    resize_done(&r);
}

/* ---- status and events mean what they say (issue 13) ----------------------------------------- */

/* Forcing over a manager that is not a GitOps controller (kubectl, a script) is
 * the configured behaviour, not a conflict: a Normal SSATakeover naming it, a
 * count in status, no Warning, Conflict not True. Over Helm (and a manager
 * named with gitops_managers), which takes the fields back: Warning SSAConflict
 * with the remedy, and Conflict=True. */
static void takeover_case(const char *ns, const char *manager, const char *extra, int gitops)
{
    char d[2048];
    put_ns(ns);
    deployment_json(d, sizeof d, ns, 0);
    ASSERT_EQ_INT(apply_as(manager, 0, ns, d), 201);
    put_policy(ns, "auto", "{\"mode\":\"Auto\"," SEL "}");
    fakeapi_log_clear(env.fa);
    run r;
    run_start_opts(&r, ns, (ctl_opts){.gitops_managers = extra}, tprov_new("test", 0, use_both, 2));
    WAIT_STAT(applied, 1);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "500m");
    if (gitops) {
        WAIT_EVENT(ns, "SSAConflict", 1);
        const char *note = event_note(ns, "SSAConflict");
        ASSERT_STR_CONTAINS(note, manager);
        ASSERT_STR_CONTAINS(note, "Remedy: exclude the resources from its sync");
        WAIT_CONDITION(ns, "auto", "Conflict", "True");
        ASSERT_EQ_INT((long long)events_created(ns, "SSATakeover"), 0);
    } else {
        WAIT_EVENT(ns, "SSATakeover", 1);
        ASSERT_STR_CONTAINS(event_note(ns, "SSATakeover"), manager);
        WAIT_CONDITION(ns, "auto", "Ready", "True");
        tctl_step(800);
        ASSERT_EQ_INT((long long)events_created(ns, "SSAConflict"), 0);
        ASSERT_EQ_INT((long long)count_req("POST", "/events", NULL, "\"type\":\"Warning\""), 0);
        ASSERT_STR_EQ(condition(policy_status(ns, "auto"), "Conflict", "status"), "False");
        const cJSON *st = policy_status(ns, "auto");
        ASSERT_EQ_INT(cJSON_GetObjectItem(st, "workloadsTakenOver")->valueint, 1);
        ASSERT_EQ_INT(cJSON_GetObjectItem(st, "workloadsConflicting")->valueint, 0);
    }
    tctl_stop(&r);
}

static void test_kubectl_apply_is_taken_over_without_a_warning(void)
{
    takeover_case("t-kubectl", "kubectl-client-side-apply", NULL, 0);
}

static void test_helm_and_listed_managers_are_gitops(void)
{
    takeover_case("t-helm", "helm", NULL, 1);
    takeover_case("t-listed", "my-sync-bot", "other,my-sync-bot", 1);
}

/* ---- the recommendation records (docs/recommendation.md) --------------------------------------
 */

#define RECORD_PATH(ns)                                                                            \
    "/apis/optipod.io/v1alpha1/namespaces/" ns "/optimizationrecommendations/deployment-web"

typedef struct rec_wait {
    const char *path, *mode, *strategy;
    int applied; /* -1: any */
} rec_wait;

static int pred_record(void *ud)
{
    const rec_wait *w = ud;
    const cJSON *o = fakeapi_get(env.fa, w->path);
    const cJSON *spec = cJSON_GetObjectItem(o, "spec"), *st = cJSON_GetObjectItem(o, "status");
    const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(spec, "mode"));
    const char *sg = cJSON_GetStringValue(cJSON_GetObjectItem(spec, "strategy"));
    return m && sg && !strcmp(m, w->mode) && !strcmp(sg, w->strategy) &&
           (w->applied < 0 || cJSON_IsTrue(cJSON_GetObjectItem(st, "applied")) == w->applied);
}

#define WAIT_RECORD(path_, mode_, strategy_, applied_)                                             \
    do {                                                                                           \
        rec_wait rw_ = {(path_), (mode_), (strategy_), (applied_)};                                \
        tctl_until(tctl_current(), pred_record, &rw_, "the record's mode, strategy, applied");     \
    } while (0)

/* The stored object fits its CRD's schema: every field the controller wrote
 * is declared (the real server would prune an undeclared one from a policy's
 * status, written by merge patch, and refuse it in a record's apply). */
static void assert_fits_crd(const char *path, const char *plural)
{
    cJSON *bad = NULL;
    ASSERT_EQ_INT(fakessa_typecheck(fakeapi_schema(env.fa, "optipod.io/v1alpha1", plural),
                                    fakeapi_get(env.fa, path), path, &bad),
                  0);
    if (bad)
        test_fail(__FILE__, __LINE__, "%s: %s", path,
                  cJSON_GetStringValue(cJSON_GetObjectItem(bad, "message")));
}

/* What a user sees: kubectl-optipod's recommendations -o json and explain,
 * through lib/cli against the same fake API server. */
static void check_plugin(const char *ns, const char *mode, const char *strategy, const char *cpu,
                         int applied)
{
    char kc[64];
    snprintf(kc, sizeof kc, "/tmp/optipod-ctl-kc-%d", (int)getpid());
    ASSERT_EQ_INT(fakeapi_write_kubeconfig(env.fa, kc, "tok"), 0);
    cli_conn cc;
    operr err = {{0}};
    if (cli_conn_open(&cc, &env.loop, kc, NULL, &err))
        test_fail(__FILE__, __LINE__, "open: %s", err.msg);
    cli_state s;
    cli_state_init(&s);
    cli_scope sc = {.ns = ns};
    if (cli_fetch(&cc, &sc, &s, &err))
        test_fail(__FILE__, __LINE__, "fetch: %s", err.msg);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    ASSERT_EQ_INT(cli_render_recommendations(&s, CLI_FMT_JSON, &b), 0);
    cJSON *doc = cJSON_Parse(opbuf_str(&b));
    const cJSON *e = NULL, *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "recommendations"))
    {
        if (!strcmp(cJSON_GetObjectItem(it, "container")->valuestring, "app"))
            e = it;
    }
    if (!e)
        test_fail(__FILE__, __LINE__, "web/app not listed:\n%s", opbuf_str(&b));
    ASSERT_STR_EQ(cJSON_GetObjectItem(e, "mode")->valuestring, mode);
    ASSERT_STR_EQ(cJSON_GetObjectItem(e, "strategy")->valuestring, strategy);
    const cJSON *rc = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "recommended"), "cpuRequest");
    if (cpu)
        ASSERT_STR_EQ(cJSON_GetStringValue(rc), cpu);
    else
        ASSERT_NULL(rc);
    ASSERT_EQ_INT(cJSON_IsTrue(cJSON_GetObjectItem(e, "applied")), applied);
    cJSON_Delete(doc);
    opbuf_reset(&b);
    ASSERT_EQ_INT(cli_render_explain(cli_find(&s, "deploy/web", ns), &b, &err), 0);
    char want[128];
    snprintf(want, sizeof want, "(mode %s, strategy %s)", mode, strategy);
    ASSERT_STR_CONTAINS(opbuf_str(&b), want);
    snprintf(want, sizeof want, ", applied %s\n", applied ? "yes" : "no");
    ASSERT_STR_CONTAINS(opbuf_str(&b), want);
    opbuf_release(&b);
    cli_state_release(&s);
    cli_conn_close(&cc);
    unlink(kc);
}

static int pred_live_250m(void *ud)
{
    const char *v = live_request(ud, "app", "cpu");
    return v && !strcmp(v, "250m");
}

/* Issue 13's acceptance: Recommend -> Auto (ssa) -> Auto (webhook) -> Disabled;
 * after each switch the plugin shows the right mode, strategy, recommendation
 * and applied, and explain agrees. */
static void test_records_follow_every_mode_and_strategy(void)
{
    const char *ns = "t-switch";
    char d[2048];
    put_ns(ns);
    deployment_json(d, sizeof d, ns, 0);
    ASSERT_EQ_INT(apply_as("kubectl-client-side-apply", 0, ns, d), 201);
    put_policy(ns, "p", "{\"mode\":\"Recommend\"," SEL "}");
    run r;
    run_start(&r, ns, 0, 0);
    WAIT_RECORD(RECORD_PATH("t-switch"), "Recommend", "none", 0);
    check_plugin(ns, "Recommend", "none", "500m", 0);
    /* the SAMPLES column: the record and the policy status carry them */
    ASSERT_EQ_INT(
        (int)cJSON_GetObjectItem(
            cJSON_GetObjectItem(fakeapi_get(env.fa, RECORD_PATH("t-switch")), "status"), "samples")
            ->valuedouble,
        5000);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "1");
    /* the record is owned by the workload: the garbage collector removes it with it */
    const cJSON *ref = cJSON_GetArrayItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(fakeapi_get(env.fa, RECORD_PATH("t-switch")), "metadata"),
            "ownerReferences"),
        0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(ref, "kind")->valuestring, "Deployment");
    ASSERT_STR_EQ(cJSON_GetObjectItem(ref, "name")->valuestring, "web");

    put_policy(ns, "p", "{\"mode\":\"Auto\"," SEL "}");
    /* 1 -> 500m -> 250m: at most a 50% decrease per write, one write per period */
    tctl_until(tctl_current(), pred_live_250m, (void *)ns, "app's cpu request 250m");
    WAIT_RECORD(RECORD_PATH("t-switch"), "Auto", "ssa", 1);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "250m");
    check_plugin(ns, "Auto", "ssa", "250m", 1);
    WAIT_CONDITION(ns, "p", "Ready", "True");
    assert_fits_crd("/apis/optipod.io/v1alpha1/namespaces/t-switch/optimizationpolicies/p",
                    "optimizationpolicies");
    assert_fits_crd(RECORD_PATH("t-switch"), "optimizationrecommendations");

    put_policy(ns, "p",
               "{\"mode\":\"Auto\"," SEL ",\"updateStrategy\":{\"strategy\":\"webhook\"}}");
    WAIT_RECORD(RECORD_PATH("t-switch"), "Auto", "webhook", 1);
    check_plugin(ns, "Auto", "webhook", "250m", 1);

    put_policy(ns, "p", "{\"mode\":\"Disabled\"," SEL "}");
    WAIT_RECORD(RECORD_PATH("t-switch"), "Disabled", "none", 0);
    check_plugin(ns, "Disabled", "none", NULL, 0);

    /* steady: no record write without a change */
    tctl_step(300);
    size_t before = count_req("PATCH", "/optimizationrecommendations/", NULL, NULL);
    tctl_step(1500); /* five reconcile periods */
    ASSERT_EQ_INT((long long)count_req("PATCH", "/optimizationrecommendations/", NULL, NULL),
                  (long long)before);
    tctl_stop(&r);
}

/* `release` then ten reconcile periods: zero writes to the workload; `manage`:
 * written again. */
static void test_release_sticks_until_manage(void)
{
    const char *ns = "t-release";
    char d[2048];
    put_ns(ns);
    deployment_json(d, sizeof d, ns, 0);
    ASSERT_EQ_INT(apply_as("kubectl-client-side-apply", 0, ns, d), 201);
    put_policy(ns, "auto", "{\"mode\":\"Auto\"," SEL "}");
    run r;
    run_start(&r, ns, 0, 0);
    WAIT_STAT(applied, 1);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "500m");

    char kc[64];
    snprintf(kc, sizeof kc, "/tmp/optipod-ctl-kc-%d", (int)getpid());
    ASSERT_EQ_INT(fakeapi_write_kubeconfig(env.fa, kc, "tok"), 0);
    cli_conn cc;
    operr err = {{0}};
    ASSERT_EQ_INT(cli_conn_open(&cc, &env.loop, kc, NULL, &err), 0);
    opbuf rep;
    opbuf_init(&rep, 1 << 20);
    cli_release_opts o = {.ns = ns, .ref = "deploy/web"};
    if (cli_release(&cc, &o, &rep, &err))
        test_fail(__FILE__, __LINE__, "release: %s", err.msg);
    /* someone sets a value by hand: optipod leaves it */
    char hand[2048];
    deployment_json(hand, sizeof hand, ns, 0);
    ASSERT_EQ_INT(apply_as("kubectl-client-side-apply", 1, ns, hand), 200);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "1");
    fakeapi_log_clear(env.fa);
    tctl_step(3000); /* ten reconcile periods (300 ms each) */
    ASSERT_EQ_INT((long long)workload_writes(ns), 0);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/deployments/web", "dryRun=All", NULL), 0);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "1");
    WAIT_RECORD(RECORD_PATH("t-release"), "Auto", "ssa", 0);
    char *st = cJSON_PrintUnformatted(
        cJSON_GetObjectItem(fakeapi_get(env.fa, RECORD_PATH("t-release")), "status"));
    ASSERT_STR_CONTAINS(st, "skipped: released");
    cJSON_free(st);

    opbuf_reset(&rep);
    if (cli_manage(&cc, &o, &rep, &err))
        test_fail(__FILE__, __LINE__, "manage: %s", err.msg);
    WAIT_STAT(applied, 2);
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "500m");
    ASSERT_CMP_INT(workload_writes(ns), >=, 1);
    opbuf_release(&rep);
    cli_conn_close(&cc);
    unlink(kc);
    tctl_stop(&r);
}

static int pred_record_exists(void *ud)
{
    return fakeapi_get(env.fa, ud) != NULL;
}

/* A record the API server refuses (here: a cluster whose CRD predates a field
 * the controller writes, a 500 "field not declared in schema") is not applied
 * again every reconcile: it waits 10 s, 20 s, 40 s... per workload, and is
 * written as soon as the CRD is upgraded and the wait is over. */
static void test_refused_record_backs_off(void)
{
    const char *ns = "t-recfail", *av = "optipod.io/v1alpha1", *pl = "optimizationrecommendations";
    char d[2048];
    put_ns(ns);
    deployment_json(d, sizeof d, ns, 0);
    ASSERT_EQ_INT(apply_as("kubectl-client-side-apply", 0, ns, d), 201);
    put_policy(ns, "p", "{\"mode\":\"Recommend\"," SEL "}");
    cJSON *now = cJSON_Duplicate(fakeapi_schema(env.fa, av, pl), 1);
    ASSERT_NOT_NULL(now);
    cJSON *old = cJSON_Duplicate(now, 1);
    cJSON *src = cJSON_GetObjectItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(old, "properties"), "spec"),
                                "properties"),
            "source"),
        "properties");
    ASSERT_NOT_NULL(cJSON_GetObjectItem(src, "provider"));
    cJSON_DeleteItemFromObject(src, "provider");
    ASSERT_EQ_INT(fakeapi_set_schema(env.fa, av, pl, old), 0);
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0, 0);
    WAIT_STAT(record_writes, 1);
    tctl_step(1000);
    const fakeapi_logged *l = last_req("PATCH", "/optimizationrecommendations/", NULL);
    ASSERT_NOT_NULL(l);
    ASSERT_EQ_INT(l->status, 500);
    /* about 230 reconcile periods of 300 ms: tries at 0, 10, 30 and 70 s */
    tctl_step(70000);
    size_t tries = count_req("PATCH", "/optimizationrecommendations/", NULL, NULL);
    ASSERT_EQ_INT((long long)tries, 4);
    ASSERT_EQ_INT((long long)tctl_stats(&r).record_writes, 4);
    ASSERT_CMP_INT(tctl_stats(&r).unchanged + tctl_stats(&r).skipped, >=, 100);
    ASSERT_NULL(fakeapi_get(env.fa, RECORD_PATH("t-recfail")));

    /* the CRD is upgraded: written at the next try (150 s), then left alone */
    ASSERT_EQ_INT(fakeapi_set_schema(env.fa, av, pl, now), 0);
    tctl_until(&r, pred_record_exists, (void *)RECORD_PATH("t-recfail"), "the record written");
    ASSERT_EQ_INT((long long)count_req("PATCH", "/optimizationrecommendations/", NULL, NULL), 5);
    tctl_step(3000);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/optimizationrecommendations/", NULL, NULL), 5);
    cJSON_Delete(old);
    cJSON_Delete(now);
    tctl_stop(&r);
}

/* The record written after optipod's own apply already shows the written
 * values (the cache holds the old ones until the watch event) and says
 * applied; a reconcile before that event does not write it back to the old
 * values; once the event is in, it is written once more (its rule is now
 * "unchanged: within-threshold"), then nothing. Requests one step (within the 50 % cap)
 * from the recommendation, so it does not move. */
static void test_record_after_apply_is_written_once(void)
{
    const char *ns = "t-recone";
    char d[2048];
    put_ns(ns);
    snprintf(d, sizeof d,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
             "\"namespace\":\"%s\",\"labels\":{\"app\":\"web\"}},\"spec\":{\"replicas\":1,"
             "\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":"
             "{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"app\","
             "\"image\":\"registry.invalid/app:1\",\"resources\":{\"requests\":{\"cpu\":"
             "\"400m\",\"memory\":\"400Mi\"}}}]}}}}",
             ns);
    ASSERT_EQ_INT(apply_as("kubectl-client-side-apply", 0, ns, d), 201);
    put_policy(ns, "p", "{\"mode\":\"Auto\"," SEL "}");
    fakeapi_log_clear(env.fa);
    run r;
    run_start(&r, ns, 0, 0);
    WAIT_STAT(applied, 1);
    /* the first record, sent with the apply's outcome */
    const fakeapi_logged *l = NULL;
    for (size_t i = 0; !l && i < fakeapi_log_count(env.fa); i++) {
        l = fakeapi_log_at(env.fa, i);
        if (strcmp(l->method, "PATCH") != 0 || !strstr(l->path, "/optimizationrecommendations/"))
            l = NULL;
    }
    ASSERT_NOT_NULL(l);
    cJSON *first = cJSON_Parse(l->body);
    const cJSON *c1 = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(first, "status"), "containers"), 0);
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(c1, "rule")), "apply");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(c1, "applied")));
    ASSERT_STR_EQ(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(c1, "current"), "cpuRequest")),
        "240m");
    cJSON_Delete(first);
    tctl_step(100); /* the watch event of the write; not the next period */
    ASSERT_EQ_INT((long long)workload_writes(ns), 1);
    const cJSON *st = cJSON_GetObjectItem(fakeapi_get(env.fa, RECORD_PATH("t-recone")), "status");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(st, "applied")));
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "containers"), 0);
    ASSERT_STR_EQ(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "current"), "cpuRequest")),
        live_request(ns, "app", "cpu"));
    ASSERT_STR_EQ(live_request(ns, "app", "cpu"), "240m");
    tctl_step(1500); /* five periods: the rule moves on once, then steady */
    ASSERT_EQ_INT((long long)workload_writes(ns), 1);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/optimizationrecommendations/", NULL, NULL), 2);
    st = cJSON_GetObjectItem(fakeapi_get(env.fa, RECORD_PATH("t-recone")), "status");
    c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "containers"), 0);
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "rule")),
                  "unchanged: within-threshold");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(st, "applied")));
    /* never written back to the values from before the apply */
    for (size_t i = 0; i < fakeapi_log_count(env.fa); i++) {
        const fakeapi_logged *e = fakeapi_log_at(env.fa, i);
        if (strcmp(e->method, "PATCH") != 0 || !strstr(e->path, "/optimizationrecommendations/"))
            continue;
        cJSON *b = cJSON_Parse(e->body);
        ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "status"), "applied")));
        cJSON_Delete(b);
    }
    tctl_stop(&r);
}

/* The usage figures move with every query as the window slides: samples
 * alone changing is no new decision. The record and the policy status are
 * not rewritten for it at every reconcile, only refreshed after 10 min. */
static void test_moving_samples_are_refreshed_not_streamed(void)
{
    const char *ns = "t-figures";
    char d[2048];
    put_ns(ns);
    deployment_json(d, sizeof d, ns, 0);
    ASSERT_EQ_INT(apply_as("kubectl-client-side-apply", 0, ns, d), 201);
    put_policy(ns, "p", "{\"mode\":\"Recommend\"," SEL "}");
    tprov *tp = tprov_new("test", 0, use_both, 2);
    run r;
    tctl_start(&r, &tenv, ns, tp, (ctl_opts){.resync_ms = 10000}); /* periods of 10 s */
    WAIT_RECORD(RECORD_PATH("t-figures"), "Recommend", "none", 0);
    tctl_step(1000);
    fakeapi_log_clear(env.fa);
    for (int i = 0; i < 40; i++) { /* 40 periods, a new sample count each */
        tp->c[0].cpu_samples++;
        tp->c[0].mem_samples++;
        tctl_step(10000);
    }
    ASSERT_CMP_INT(tp->calls, >=, 20);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/optimizationrecommendations/", NULL, NULL), 0);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/optimizationpolicies/p/status", NULL, NULL), 0);
    tctl_step(200000); /* 10 min since the last writes: refreshed */
    ASSERT_EQ_INT((long long)count_req("PATCH", "/optimizationrecommendations/", NULL, NULL), 1);
    ASSERT_EQ_INT((long long)count_req("PATCH", "/optimizationpolicies/p/status", NULL, NULL), 1);
    const cJSON *st = cJSON_GetObjectItem(fakeapi_get(env.fa, RECORD_PATH("t-figures")), "status");
    ASSERT_EQ_INT((int)cJSON_GetObjectItem(st, "samples")->valuedouble, 5040);
    tctl_stop(&r);
}

int main(void)
{
    env_start();
    TEST_RUN(test_auto_ssa_writes_only_resources_as_optipod);
    TEST_RUN(test_conflict_with_argocd_forced_when_allowed);
    TEST_RUN(test_conflict_with_argocd_yields_when_not_allowed);
    TEST_RUN(test_flux_forced_reclaim_stops_in_a_loop);
    TEST_RUN(test_raced_take_back_is_one_reclaim);
    TEST_RUN(test_min_write_interval_writes_once_per_interval);
    TEST_RUN(test_duplicate_controller_is_told_once_and_left_alone);
    TEST_RUN(test_container_removed_in_git_is_never_reapplied);
    TEST_RUN(test_recommend_never_writes_resources);
    TEST_RUN(test_dry_run_writes_nothing);
    TEST_RUN(test_invalid_policy_reports_and_never_applies);
    TEST_RUN(test_disabled_removes_annotations_and_leaves_values);
    TEST_RUN(test_metrics_unavailable);
    TEST_RUN(test_policy_provider_selects_source);
    TEST_RUN(test_in_place_resize_with_qos_guard);
    TEST_RUN(test_resize_one_pod_at_a_time);
    TEST_RUN(test_resize_infeasible_falls_back_to_ssa);
    TEST_RUN(test_resize_deferred_too_long);
    TEST_RUN(test_resize_pod_deleted_midway);
    TEST_RUN(test_resize_pod_patch_on_1_29);
    TEST_RUN(test_resize_pod_patch_unsupported_once);
    TEST_RUN(test_resize_not_on_1_24);
    TEST_RUN(test_kubectl_apply_is_taken_over_without_a_warning);
    TEST_RUN(test_helm_and_listed_managers_are_gitops);
    TEST_RUN(test_records_follow_every_mode_and_strategy);
    TEST_RUN(test_release_sticks_until_manage);
    TEST_RUN(test_refused_record_backs_off);
    TEST_RUN(test_record_after_apply_is_written_once);
    TEST_RUN(test_moving_samples_are_refreshed_not_streamed);
    env_stop();
    return test_summary();
}
