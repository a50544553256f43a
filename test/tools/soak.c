/*
 * soak: the real optipod binary for minutes to hours against the project's
 * fake API server (in this process) and the real Prometheus, under churn,
 * watched from outside. `make soak` runs it (SOAK_MINUTES, default 30).
 *
 *   soak --optipod build/rel/optipod --out build/soak [--minutes 30] [--duration 90s]
 *   soak --optipod build/rel/optipod --out build/soak/failover --failover
 *
 * --failover, instead of the soak: two replicas with --leader-elect (client-go's
 * lease timing unless --lease-duration, --renew-deadline, --retry-period say otherwise:
 * make test runs it with short ones, test_failover) on the same cluster with both
 * policies in Recommend; once the follower runs, both switch to Auto and the
 * leader is SIGKILLed when its first write of the burst reaches the server.
 * Passes when the follower takes the Lease within TAKEOVER_MS (+0.5 s of
 * scheduling slack) of the leader's last renewal, every workload
 * gets exactly one resource write (none lost, none twice, the same
 * recommendation never written again), the invariants below hold and the
 * follower exits 0 on SIGTERM. Summary in failover.txt.
 *
 * The cluster: namespace "soak", six Deployments (each with a ReplicaSet),
 * three StatefulSets and three DaemonSets with two containers each, two live
 * pods per workload from a pool of six names, and two OptimizationPolicies
 * (group a, group b) with reconcileInterval 10s. Prometheus is backfilled with
 * 100 minutes of cAdvisor series for every pool pod, so pod replacement keeps
 * usage; the fed memory peak of each (workload, container) is kept here.
 *
 * Churn, one action a second (a fixed pseudo-random sequence): scale, edit the
 * pod template, replace a pod, delete a workload (and its pods) and re-create
 * it, edit a policy, switch its mode (Auto/Recommend) or strategy
 * (ssa/webhook), delete and re-create it, and a GitOps manager
 * ("argocd-controller") re-applying three workloads' requests by server-side
 * apply, over HTTP like any client. A forked second process sends a pod
 * AdmissionReview to optipod's webhook over TLS every 100 ms throughout.
 *
 * Invariants, checked on every write optipod sends (the fake server's hook
 * sees it before it lands; the object is compared 200 ms later):
 *  - it writes only workloads, pods (resize), policy status, its OptimizationRecommendation
 *    records, Events and Leases;
 *  - managedFields of manager "optipod" hold only resources of containers
 *    that exist and optipod.io/ annotations;
 *  - no request or limit present before the write is gone after it;
 *  - a memory request or limit it changes is at least the fed peak;
 *  - no write of resources while its policy has been Recommend, Disabled or
 *    gone for more than GRACE_MS (what the watch may take to tell it); writes
 *    of only its optipod.io/ annotations (its recommendation records) are
 *    counted apart;
 *  - no two resource writes of one workload (same uid) within
 *    --min-write-interval (MIN_WRITE, passed to optipod: its default).
 * Dry runs (dryRun=All) persist nothing and are counted apart.
 *
 * Every 10 s: RSS and open fds from /proc/<pid>, and what /metrics exports
 * (informer objects and cache bytes, reconciles, API writes, webhook reviews, libuv
 * handles, the work queue's depth).
 * At the end (SIGTERM to optipod, which must exit 0): least-squares slopes of
 * RSS, fds and libuv handles over the second half, printed per hour, against the tolerances
 * below; build/soak/report.txt, samples.tsv and soak.gp (gnuplot, run by make).
 * Exit 0 when everything held.
 */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "engine/quantity.h"
#include "support/fakeapi.h"
#include "support/fakeapi_client.h"
#include "support/fakessa.h"
#include "support/promserver.h"
#include "util/buf.h"
#include "util/flags.h"
#include "webhook/certs.h"

#define NS           "soak"
#define POD_PREFIX   "/api/v1/namespaces/" NS "/pods/"
#define NWL          12
#define POOL         6 /* pod names per workload */
#define LIVE_PODS    2
#define NCONT        2
#define SCRAPE_S     30
#define DATA_S       (100 * 60)
#define RECONCILE    "10s"
#define RECONCILE_MS 10000
#define MIN_WRITE    "30s" /* --min-write-interval, the binary's default */
#define MIN_WRITE_MS 30000
#define GRACE_MS     2000
#define SAMPLE_MS    10000
#define CHURN_MS     1000
#define SCAN_MS      200
#define MAX_SAMPLES  4096
#define MAX_PENDING  512
#define MAX_VIOL_LOG 50

/* Tolerances: how far the least-squares trend may rise across the second half.
 * The heap grows in steps (glibc pads each sbrk by 128 KiB, M_TOP_PAD; the runs
 * show 64 KiB steps of RSS), so a window cannot resolve less than about two
 * such steps: 256 KiB. A 30-minute soak thus fails above 1 MiB/h (a leak of one
 * 5 KB object per reconcile, at the ~7 reconciles a second here, is 120 MiB/h),
 * and a longer soak is stricter (a 2-hour one fails above 256 KiB/h). Open fds
 * move by a few as keep-alive connections to the API server, Prometheus and
 * the webhook client open and close: 2. */
#define RSS_TOL_RISE (256.0 * 1024.0)
#define FD_TOL_RISE  2.0
/* libuv handles come and go with those connections too (a TCP handle and a timer each). */
#define HANDLE_TOL_RISE 4.0
/* Both write times are taken here when the request arrives; this loop's latency
 * under load (the fake server, Prometheus backfill done, /metrics scrapes) can
 * make a write on optipod's exact 10 s tick look a few ms early. */
#define INTERVAL_SLACK_MS 100

static const char *const cont_names[NCONT] = {"app", "side"};

typedef enum { K_DEP, K_STS, K_DS } wkind;
static const char *const kind_name[] = {"Deployment", "StatefulSet", "DaemonSet"};
static const char *const kind_plural[] = {"deployments", "statefulsets", "daemonsets"};

typedef struct workload {
    wkind kind;
    char name[32];
    char group; /* 'a' or 'b': the policy selecting it */
    int gitops; /* re-applied by argocd-controller */
    int exists;
    unsigned recreate_tick; /* churn tick to re-create it at, when deleted */
    char uid[64];
    int next_pod; /* pool index of the next pod */
    int live[LIVE_PODS];
    int replicas;
    double peak[NCONT]; /* fed memory peak, bytes */
    uint64_t last_write_ms;
    uint64_t arrived_ms; /* when the last resource write reached the server (hook) */
    char last_write_uid[64];
    unsigned rev;
} workload;

typedef struct policy_model {
    char name[8];
    char group;
    int exists;
    unsigned recreate_tick;
    int mode; /* 0 Auto, 1 Recommend, 2 Disabled */
    int webhook;
    int variant;
    uint64_t no_write_since_ms; /* when it stopped allowing writes; 0 = allows */
} policy_model;

typedef struct pending {
    char path[192];
    cJSON *pre; /* live object before the write, or NULL */
    uint64_t at_ms;
    int wl; /* workload index, -1 for a pod */
} pending;

typedef struct sample {
    double t_s;
    double rss, fds;
    double inf_objects, cache_bytes, reconciles, api_writes, wh_reviews;
    double handles;             /* optipod_loop_handles, active + inactive */
    double q_queued, q_delayed; /* optipod_queue_depth */
} sample;

static struct {
    const char *optipod;
    const char *out;
    long minutes;
    uint64_t duration_ms;
    int failover;
    uint64_t lease_ms, renew_ms, retry_ms, slack_ms;
} cfg = {.minutes = 30,
         .out = "build/soak",
         .lease_ms = 15000,
         .renew_ms = 10000,
         .retry_ms = 2000,
         .slack_ms = 500 /* a loaded 2-core machine's scheduling */};

static uv_loop_t loop;
/* 50 (the default) in the soak; 100 in the failover, so each workload needs one write. */
static int max_decrease_pct = 50;
static fakeapi *fa;
static promsrv prom;
static workload wl[NWL];
static policy_model pol[2] = {{"pa", 'a', 0, 0, 0, 0, 0, 0}, {"pb", 'b', 0, 0, 0, 0, 0, 0}};
static pending pend[MAX_PENDING];
static size_t npend;
static sample samples[MAX_SAMPLES];
static size_t nsamples;
static uint64_t start_ms;
static unsigned tick;
static uint64_t rng = 0x50a4;
static pid_t op_pid, wh_pid;
static int op_exited, op_status;
static int metrics_port, webhook_port;
static uv_timer_t churn_t, scan_t, sample_t, end_t;
static fakeapi_cli *gitops_cli[NWL];
static FILE *viol_log, *writes_log; /* writes.log: every workload write optipod sent */

static struct {
    uint64_t recobj_writes; /* OptimizationRecommendation objects */
    uint64_t workload_writes, record_writes, pod_writes, status_writes, event_writes, lease_writes,
        other_writes;
    uint64_t failed_writes, dry_runs, gitops_applies, gitops_ok;
    uint64_t scales, edits, pod_replacements, wl_deletes, wl_creates;
    uint64_t pol_edits, pol_mode_switches, pol_strategy_switches, pol_deletes;
    uint64_t v_target, v_fields, v_removed, v_below_peak, v_mode, v_interval;
} st;

static unsigned rnd(unsigned n)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((rng >> 33) % n);
}

static uint64_t now_ms(void)
{
    uv_update_time(&loop);
    return uv_now(&loop);
}

static void violation(uint64_t *counter, const char *fmt, const char *a, const char *b)
{
    (*counter)++;
    static unsigned logged;
    if (viol_log && logged++ < MAX_VIOL_LOG) {
        fprintf(viol_log, "%.1f s: ", (double)(now_ms() - start_ms) / 1000.0);
        fprintf(viol_log, fmt, a, b ? b : "");
        fputc('\n', viol_log);
        fflush(viol_log);
    }
}

/* ---- the cluster -------------------------------------------------------------------------- */

static void wl_path(const workload *w, char *buf, size_t n)
{
    snprintf(buf, n, "/apis/apps/v1/namespaces/" NS "/%s/%s", kind_plural[w->kind], w->name);
}

static void pod_name(const workload *w, int k, char *buf, size_t n)
{
    if (w->kind == K_DEP)
        snprintf(buf, n, "%s-rs-%d", w->name, k);
    else
        snprintf(buf, n, "%s-%d", w->name, k);
}

static const char *const base_requests[NCONT] = {
    "{\"requests\":{\"cpu\":\"500m\",\"memory\":\"512Mi\"},\"limits\":{\"memory\":\"1Gi\"}}",
    "{\"requests\":{\"cpu\":\"50m\",\"memory\":\"64Mi\"}}"};

static cJSON *wl_json(const workload *w)
{
    char j[4096];
    snprintf(j, sizeof j,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"" NS "\",\"labels\":{\"app\":\"%s\",\"group\":\"%c\"}},"
             "\"spec\":{%s\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},\"template\":{"
             "\"metadata\":{\"labels\":{\"app\":\"%s\"},\"annotations\":{\"soak/rev\":\"%u\"}},"
             "\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"registry.invalid/app:1\","
             "\"resources\":%s},{\"name\":\"side\",\"image\":\"registry.invalid/side:1\","
             "\"resources\":%s}]}}}}",
             kind_name[w->kind], w->name, w->name, w->group,
             w->kind == K_DS ? "" : "\"replicas\":2,", w->name, w->name, w->rev, base_requests[0],
             base_requests[1]);
    return cJSON_Parse(j);
}

static const cJSON *live(const workload *w)
{
    char p[192];
    wl_path(w, p, sizeof p);
    return fakeapi_get(fa, p);
}

static const char *uid_of(const cJSON *o)
{
    const cJSON *u = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "uid");
    return cJSON_IsString(u) ? u->valuestring : "";
}

/* Store a workload as a client would write it: through the fake server's
 * managedFields bookkeeping (defaults owned by the creator, as on a real
 * server), not as a bare seed. */
static void store(const cJSON *obj, const char *manager)
{
    char path[192], now[32];
    const cJSON *md = cJSON_GetObjectItem(obj, "metadata");
    const char *kind = cJSON_GetObjectItem(obj, "kind")->valuestring;
    int k = strcmp(kind, "Deployment") == 0 ? 0 : strcmp(kind, "StatefulSet") == 0 ? 1 : 2;
    snprintf(path, sizeof path, "/apis/apps/v1/namespaces/" NS "/%s/%s", kind_plural[k],
             cJSON_GetObjectItem(md, "name")->valuestring);
    time_t t = time(NULL);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    fakessa_result r = {0};
    if (fakessa_update(fakeapi_get(fa, path), obj, manager, NULL, now, &r) == 0 &&
        r.http_status / 100 == 2)
        fakeapi_put(fa, r.object);
    else
        fprintf(stderr, "soak: %s by %s refused (%d)\n", path, manager, r.http_status);
    fakessa_result_release(&r);
}

static void put_pod(workload *w, int k)
{
    const cJSON *o = live(w);
    if (!o)
        return;
    char name[64], owner[64], owner_uid[64], j[1024];
    pod_name(w, k, name, sizeof name);
    const char *okind = kind_name[w->kind];
    snprintf(owner, sizeof owner, "%s", w->name);
    snprintf(owner_uid, sizeof owner_uid, "%s", uid_of(o));
    if (w->kind == K_DEP) {
        okind = "ReplicaSet";
        snprintf(owner, sizeof owner, "%s-rs", w->name);
        char rsp[192];
        snprintf(rsp, sizeof rsp, "/apis/apps/v1/namespaces/" NS "/replicasets/%s-rs", w->name);
        snprintf(owner_uid, sizeof owner_uid, "%s", uid_of(fakeapi_get(fa, rsp)));
    }
    cJSON *pod = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}");
    snprintf(j, sizeof j,
             "{\"name\":\"%s\",\"namespace\":\"" NS "\",\"labels\":{\"app\":\"%s\"},"
             "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"%s\",\"name\":\"%s\","
             "\"uid\":\"%s\",\"controller\":true}]}",
             name, w->name, okind, owner, owner_uid);
    cJSON_AddItemToObject(pod, "metadata", cJSON_Parse(j));
    const cJSON *tspec = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "template"), "spec");
    cJSON_AddItemToObject(pod, "spec", cJSON_Duplicate(tspec, 1));
    cJSON_AddItemToObject(pod, "status",
                          cJSON_Parse("{\"phase\":\"Running\",\"qosClass\":\"Burstable\"}"));
    fakeapi_put(fa, pod);
    cJSON_Delete(pod);
}

static void delete_pod(workload *w, int k)
{
    char name[64], p[192];
    pod_name(w, k, name, sizeof name);
    snprintf(p, sizeof p, "/api/v1/namespaces/" NS "/pods/%s", name);
    fakeapi_delete(fa, p);
}

static void create_workload(workload *w)
{
    cJSON *o = wl_json(w);
    store(o, "kubectl-create");
    cJSON_Delete(o);
    w->exists = 1;
    snprintf(w->uid, sizeof w->uid, "%s", uid_of(live(w)));
    if (w->kind == K_DEP) {
        char rs[1024];
        snprintf(rs, sizeof rs,
                 "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":"
                 "\"%s-rs\",\"namespace\":\"" NS "\",\"labels\":{\"app\":\"%s\"},"
                 "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                 "\"name\":\"%s\",\"uid\":\"%s\",\"controller\":true}]},\"spec\":{\"replicas\":2,"
                 "\"selector\":{\"matchLabels\":{\"app\":\"%s\"}}}}",
                 w->name, w->name, w->name, w->uid, w->name);
        fakeapi_put_json(fa, rs);
    }
    for (int i = 0; i < LIVE_PODS; i++) {
        w->live[i] = w->next_pod;
        w->next_pod = (w->next_pod + 1) % POOL;
        put_pod(w, w->live[i]);
    }
    st.wl_creates++;
}

static void delete_workload(workload *w)
{
    char p[192];
    for (int i = 0; i < LIVE_PODS; i++)
        delete_pod(w, w->live[i]);
    if (w->kind == K_DEP) {
        snprintf(p, sizeof p, "/apis/apps/v1/namespaces/" NS "/replicasets/%s-rs", w->name);
        fakeapi_delete(fa, p);
    }
    wl_path(w, p, sizeof p);
    fakeapi_delete(fa, p);
    w->exists = 0;
    w->recreate_tick = tick + 3;
    st.wl_deletes++;
}

static void put_policy(policy_model *p)
{
    static const char *const modes[] = {"Auto", "Recommend", "Disabled"};
    char j[2048];
    snprintf(j, sizeof j,
             "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\","
             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"" NS "\"},\"spec\":{\"mode\":\"%s\","
             "\"selector\":{\"workloadSelector\":{\"matchLabels\":{\"group\":\"%c\"}}},"
             "\"metricsConfig\":{\"provider\":\"prometheus\",\"rollingWindow\":\"3h\","
             "\"percentile\":\"%s\",\"safetyFactor\":%s},\"minHistory\":{\"samples\":30,"
             "\"duration\":\"1h\"},"
             "\"updateStrategy\":{\"strategy\":\"%s\"},\"maxDecreasePercent\":%d,"
             "\"reconcileInterval\":\"" RECONCILE "\"}}",
             p->name, modes[p->mode], p->group, p->variant & 1 ? "P95" : "P90",
             p->variant & 2 ? "1.3" : "1.2", p->webhook ? "webhook" : "ssa", max_decrease_pct);
    fakeapi_put_json(fa, j);
    p->exists = 1;
}

static void policy_changed(policy_model *p, int allowed_before)
{
    int allows = p->exists && p->mode == 0;
    if (allowed_before && !allows)
        p->no_write_since_ms = now_ms();
    else if (allows)
        p->no_write_since_ms = 0;
}

/* Recommend and Disabled never write; a deleted policy releases its workloads. */
static int policy_allows(const policy_model *p)
{
    return p->exists && p->mode == 0;
}

/* ---- Prometheus data ------------------------------------------------------------------------ */

static int start_prometheus(void)
{
    opbuf om;
    opbuf_init(&om, (size_t)256 << 20);
    int64_t end = (int64_t)time(NULL) / 60 * 60 - 60, begin = end - DATA_S;
    for (int i = 0; i < NWL; i++) {
        workload *w = &wl[i];
        double cpu = 0.05 + 0.03 * i, mem = (96.0 + 24.0 * i) * 1048576.0;
        for (int k = 0; k < POOL; k++) {
            char pod[64];
            pod_name(w, k, pod, sizeof pod);
            for (int c = 0; c < NCONT; c++) {
                double scale = c == 0 ? 1.0 : 0.2, counter = 1000.0;
                for (int64_t t = begin; t <= end; t += SCRAPE_S) {
                    double u = (double)rnd(1000) / 1000.0;
                    counter += (cpu * scale) * (0.5 + u) * SCRAPE_S;
                    opbuf_printf(&om,
                                 "container_cpu_usage_seconds_total{namespace=\"" NS
                                 "\",pod=\"%s\","
                                 "container=\"%s\"} %.6f %" PRId64 "\n",
                                 pod, cont_names[c], counter, t);
                }
                for (int64_t t = begin; t <= end; t += SCRAPE_S) {
                    double u = (double)rnd(1000) / 1000.0;
                    double v = floor(mem * scale * (0.8 + 0.4 * u * u));
                    if (v > w->peak[c])
                        w->peak[c] = v;
                    opbuf_printf(&om,
                                 "container_memory_working_set_bytes{namespace=\"" NS "\","
                                 "pod=\"%s\",container=\"%s\"} %.0f %" PRId64 "\n",
                                 pod, cont_names[c], v, t);
                }
            }
        }
    }
    opbuf_puts(&om, "# EOF\n");
    operr err = {{0}};
    int rc = promsrv_start(&prom, om.data, om.len, &err);
    opbuf_release(&om);
    if (rc != 0)
        fprintf(stderr, "soak: prometheus: %s\n", err.msg);
    return rc;
}

/* ---- GitOps: argocd-controller re-applies its workloads' requests -------------------------------
 */

static void gitops_apply(int i)
{
    workload *w = &wl[i];
    if (gitops_cli[i] || !w->exists)
        return;
    cJSON *o = wl_json(w);
    cJSON *md = cJSON_GetObjectItem(o, "metadata");
    cJSON_DeleteItemFromObject(md, "labels"); /* it owns only the requests it applies here */
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char path[256], p[192];
    wl_path(w, p, sizeof p);
    snprintf(path, sizeof path, "%s?fieldManager=argocd-controller&force=true", p);
    char *req = fakeapi_cli_format("PATCH", path, "application/apply-patch+yaml", body, NULL);
    free(body);
    if (fakeapi_cli_start(&gitops_cli[i], &loop, fakeapi_port(fa), fakeapi_ca_pem(fa), 1, req,
                          strlen(req), 0) != 0)
        gitops_cli[i] = NULL;
    else
        st.gitops_applies++;
    free(req);
}

static void gitops_reap(void)
{
    for (int i = 0; i < NWL; i++) {
        if (!gitops_cli[i] || !fakeapi_cli_done(gitops_cli[i]))
            continue;
        const fakeapi_cli_result *r = fakeapi_cli_result_of(gitops_cli[i]);
        if (r->status >= 200 && r->status < 300)
            st.gitops_ok++;
        fakeapi_cli_free(gitops_cli[i]);
        gitops_cli[i] = NULL;
    }
}

/* ---- churn -------------------------------------------------------------------------------- */

static void edit_workload(workload *w, int scale)
{
    const cJSON *o = live(w);
    if (!o)
        return;
    cJSON *c = cJSON_Duplicate(o, 1);
    cJSON *spec = cJSON_GetObjectItem(c, "spec");
    if (scale) {
        w->replicas = 1 + (int)rnd(4);
        cJSON_ReplaceItemInObject(spec, "replicas", cJSON_CreateNumber(w->replicas));
        st.scales++;
    } else {
        char rev[16];
        snprintf(rev, sizeof rev, "%u", ++w->rev);
        cJSON *ann = cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(spec, "template"), "metadata"), "annotations");
        if (ann)
            cJSON_ReplaceItemInObject(ann, "soak/rev", cJSON_CreateString(rev));
        st.edits++;
    }
    store(c, scale ? "kubectl-scale" : "kubectl-edit");
    cJSON_Delete(c);
}

static void replace_pod(workload *w)
{
    delete_pod(w, w->live[0]);
    w->live[0] = w->live[1];
    w->live[1] = w->next_pod;
    w->next_pod = (w->next_pod + 1) % POOL;
    put_pod(w, w->live[1]);
    st.pod_replacements++;
}

/* owners.txt: each workload's pod owner (kind, name, uid) for the webhook client, which
 * sends reviews of pods owned by what exists now; replaced atomically. */
static char owners_path[512];

static void write_owners(void)
{
    char tmp[520];
    snprintf(tmp, sizeof tmp, "%s.tmp", owners_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    for (int i = 0; i < NWL; i++) {
        workload *w = &wl[i];
        char p[192];
        if (w->kind == K_DEP)
            snprintf(p, sizeof p, "/apis/apps/v1/namespaces/" NS "/replicasets/%s-rs", w->name);
        else
            wl_path(w, p, sizeof p);
        const cJSON *o = fakeapi_get(fa, p);
        fprintf(f, "%s %s%s %s\n", w->kind == K_DEP ? "ReplicaSet" : kind_name[w->kind], w->name,
                w->kind == K_DEP ? "-rs" : "", o ? uid_of(o) : "-");
    }
    fclose(f);
    rename(tmp, owners_path);
}

static void on_churn(uv_timer_t *t)
{
    tick++;
    write_owners();
    for (int i = 0; i < NWL; i++)
        if (!wl[i].exists && tick >= wl[i].recreate_tick)
            create_workload(&wl[i]);
    for (int i = 0; i < 2; i++) {
        if (!pol[i].exists && tick >= pol[i].recreate_tick) {
            put_policy(&pol[i]);
            policy_changed(&pol[i], 0);
        }
    }
    workload *w = &wl[rnd(NWL)];
    policy_model *p = &pol[rnd(2)];
    unsigned a = rnd(100);
    int before = policy_allows(p);
    if (a < 20) {
        if (w->exists && w->kind != K_DS)
            edit_workload(w, 1);
    } else if (a < 35) {
        if (w->exists)
            edit_workload(w, 0);
    } else if (a < 60) {
        if (w->exists)
            replace_pod(w);
    } else if (a < 65) {
        if (w->exists)
            delete_workload(w);
    } else if (a < 72) {
        if (p->exists) {
            p->variant = (p->variant + 1) & 3;
            put_policy(p);
            st.pol_edits++;
        }
    } else if (a < 80) {
        if (p->exists) {
            p->mode = p->mode == 0 ? 1 + (int)rnd(4) / 3 : 0; /* mostly Recommend, some Disabled */
            put_policy(p);
            st.pol_mode_switches++;
        }
    } else if (a < 84) {
        if (p->exists) {
            p->webhook = !p->webhook;
            put_policy(p);
            st.pol_strategy_switches++;
        }
    } else if (a < 86) {
        if (p->exists) {
            char path[192];
            snprintf(path, sizeof path,
                     "/apis/optipod.io/v1alpha1/namespaces/" NS "/optimizationpolicies/%s",
                     p->name);
            fakeapi_delete(fa, path);
            p->exists = 0;
            p->recreate_tick = tick + 5;
            st.pol_deletes++;
        }
    } else {
        int gi[] = {0, 1, 6};
        gitops_apply(gi[rnd(3)]);
    }
    policy_changed(p, before);
}

/* ---- invariants ------------------------------------------------------------------------------ */

static int wl_by_path(const char *path)
{
    for (int i = 0; i < NWL; i++) {
        char p[192];
        wl_path(&wl[i], p, sizeof p);
        if (strcmp(p, path) == 0)
            return i;
    }
    return -1;
}

static int wl_by_pod(const char *name)
{
    for (int i = 0; i < NWL; i++)
        if (strncmp(name, wl[i].name, strlen(wl[i].name)) == 0 && name[strlen(wl[i].name)] == '-')
            return i;
    return -1;
}

/* ---- failover (--failover): two replicas, the leader SIGKILLed mid-burst ----------------------
 */

/* The replicas' lease timing (--lease-duration, --renew-deadline, --retry-period; client-go's
 * defaults unless given) and the scheduling slack allowed on top of the bound. */
#define LEASE_MS       ((int)cfg.lease_ms)
#define RETRY_MS       ((int)cfg.retry_ms)
#define LEASE_SLACK_MS ((int)cfg.slack_ms)
/* The follower sees the last renewal up to a retryPeriod late (it reads the Lease every
 * retryPeriod), counts leaseDuration from then, and tries again within a retryPeriod. */
#define TAKEOVER_MS (LEASE_MS + 2 * RETRY_MS)

static struct {
    int on, armed, killed;
    pid_t leader, follower;
    char leader_id[256], follower_id[256];
    uint64_t last_leader_lease_ms, kill_ms, acquire_ms, last_write_ms;
    unsigned writes[NWL];
    unsigned leader_writes, follower_writes, dups;
    char last[NWL][512];
} fo;

static void fo_on_request(const char *m, const char *path, const char *q, const char *body, int wi)
{
    uint64_t now = now_ms();
    if (strstr(path, "/leases/") || (strstr(path, "/leases") && strcmp(m, "POST") == 0)) {
        cJSON *b = cJSON_Parse(body ? body : "");
        const cJSON *h = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "spec"), "holderIdentity");
        const char *holder = cJSON_IsString(h) ? h->valuestring : "";
        if (*holder && !fo.leader_id[0])
            snprintf(fo.leader_id, sizeof fo.leader_id, "%s", holder);
        if (*holder && strcmp(holder, fo.leader_id) == 0)
            fo.last_leader_lease_ms = now;
        else if (*holder && fo.killed && !fo.acquire_ms) {
            fo.acquire_ms = now;
            snprintf(fo.follower_id, sizeof fo.follower_id, "%s", holder);
        }
        cJSON_Delete(b);
        return;
    }
    if (wi < 0 || strstr(q, "dryRun=All") || !body || !strstr(body, "\"resources\""))
        return;
    const char *res = strstr(body, "\"containers\"");
    if (res && strcmp(res, fo.last[wi]) == 0)
        fo.dups++; /* the same recommendation written again */
    snprintf(fo.last[wi], sizeof fo.last[wi], "%s", res ? res : "");
    fo.writes[wi]++;
    fo.last_write_ms = now;
    if (fo.killed)
        fo.follower_writes++;
    else
        fo.leader_writes++;
    if (fo.armed && !fo.killed) {
        kill(fo.leader, SIGKILL); /* mid-burst: this write lands, the rest die with it */
        fo.killed = 1;
        fo.kill_ms = now;
    }
}

/* Hook: every request to the fake server, before it is handled. */
static int on_request(fakeapi *f, ophttpd_req *req, void *ud)
{
    (void)f;
    (void)ud;
    const char *m = ophttpd_method(req), *path = ophttpd_path(req), *q = ophttpd_query(req);
    if (fo.on && strcmp(m, "GET") != 0) {
        size_t bl = 0;
        fo_on_request(m, path, q, ophttpd_body(req, &bl), wl_by_path(path));
    }
    if (strcmp(m, "GET") == 0 || strstr(q, "fieldManager=argocd-controller") ||
        strstr(q, "dryRun=All"))
        return 0; /* reads, the GitOps manager, and dry runs (they persist nothing) */
    int wi = wl_by_path(path);
    int is_pod = strncmp(path, POD_PREFIX, strlen(POD_PREFIX)) == 0;
    if (wi < 0 && !is_pod)
        return 0;
    size_t blen = 0;
    const char *body = ophttpd_body(req, &blen);
    if (wi >= 0 && body && strstr(body, "\"resources\""))
        wl[wi].arrived_ms = now_ms(); /* the write's time, for the interval check */
    if (wi >= 0 && strcmp(m, "DELETE") != 0 && body && strstr(body, "\"resources\"")) {
        policy_model *p = &pol[wl[wi].group == 'a' ? 0 : 1];
        uint64_t now = now_ms();
        if (!policy_allows(p) && p->no_write_since_ms && now - p->no_write_since_ms > GRACE_MS)
            violation(&st.v_mode, "%s: resources written while its policy is %s", path,
                      p->exists ? "Recommend/Disabled" : "gone");
    }
    if (npend < MAX_PENDING) {
        pending *pd = &pend[npend++];
        snprintf(pd->path, sizeof pd->path, "%s", path);
        char *s = strstr(pd->path, "/resize");
        if (s && s[7] == '\0')
            *s = '\0';
        const cJSON *cur = fakeapi_get(fa, pd->path);
        pd->pre = cur ? cJSON_Duplicate(cur, 1) : NULL;
        pd->at_ms = now_ms();
        pd->wl = wi;
    }
    return 0;
}

static const cJSON *containers_of(const cJSON *o)
{
    const cJSON *spec = cJSON_GetObjectItem(o, "spec");
    const cJSON *t = cJSON_GetObjectItem(spec, "template");
    if (t)
        spec = cJSON_GetObjectItem(t, "spec");
    return cJSON_GetObjectItem(spec, "containers");
}

static const cJSON *container_named(const cJSON *list, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, list)
    {
        const cJSON *n = cJSON_GetObjectItem(c, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return c;
    }
    return NULL;
}

static int64_t mem_bytes(const cJSON *res, const char *which)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(res, which), "memory");
    int64_t b = -1;
    if (cJSON_IsString(v) && kq_parse_bytes(v->valuestring, &b, NULL) != 0)
        b = -1;
    return b;
}

/* Every field of a container entry optipod may own: its key, and resources. */
static int container_fields_ok(const cJSON *fields)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, fields)
    {
        if (strcmp(f->string, ".") != 0 && strcmp(f->string, "f:name") != 0 &&
            strcmp(f->string, "f:resources") != 0)
            return 0;
    }
    return 1;
}

static int annotations_ok(const cJSON *ann)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, ann)
    {
        if (strcmp(f->string, ".") != 0 && strncmp(f->string, "f:optipod.io/", 13) != 0)
            return 0;
    }
    return 1;
}

/* metadata: only optipod.io/ annotations. */
static int metadata_ok(const cJSON *md)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, md)
    {
        if (strcmp(f->string, "f:annotations") != 0 || !annotations_ok(f))
            return 0;
    }
    return 1;
}

/* spec.containers (or the template's): keys of live containers only, resources only. */
static int pod_spec_ok(const cJSON *spec, const cJSON *live_containers, char *why, size_t n)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, spec)
    {
        if (strcmp(f->string, "f:containers") != 0) {
            snprintf(why, n, "spec field %s", f->string);
            return 0;
        }
        const cJSON *k;
        cJSON_ArrayForEach(k, f)
        {
            char name[128] = "";
            if (sscanf(k->string, "k:{\"name\":\"%127[^\"]\"}", name) != 1 ||
                !container_named(live_containers, name)) {
                snprintf(why, n, "container key %s (not a live container)", k->string);
                return 0;
            }
            if (!container_fields_ok(k)) {
                snprintf(why, n, "fields of %s beyond resources", k->string);
                return 0;
            }
        }
    }
    return 1;
}

static int owned_ok(const cJSON *o, char *why, size_t n)
{
    const cJSON *mfs = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "managedFields");
    const cJSON *e;
    const cJSON *conts = containers_of(o);
    cJSON_ArrayForEach(e, mfs)
    {
        const cJSON *mgr = cJSON_GetObjectItem(e, "manager");
        if (!cJSON_IsString(mgr) || strcmp(mgr->valuestring, "optipod") != 0)
            continue;
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItem(e, "fieldsV1"))
        {
            if (strcmp(f->string, "f:metadata") == 0) {
                if (!metadata_ok(f)) {
                    snprintf(why, n, "metadata beyond optipod.io/ annotations");
                    return 0;
                }
            } else if (strcmp(f->string, "f:spec") == 0) {
                const cJSON *tmpl = cJSON_GetObjectItem(f, "f:template");
                if (tmpl) {
                    const cJSON *g;
                    cJSON_ArrayForEach(g, tmpl)
                    {
                        if (strcmp(g->string, "f:metadata") == 0 && metadata_ok(g))
                            continue;
                        if (strcmp(g->string, "f:spec") == 0 && pod_spec_ok(g, conts, why, n))
                            continue;
                        if (!why[0])
                            snprintf(why, n, "template field %s", g->string);
                        return 0;
                    }
                    if (cJSON_GetArraySize(f) != 1) {
                        snprintf(why, n, "spec fields beside the template");
                        return 0;
                    }
                } else if (!pod_spec_ok(f, conts, why, n)) {
                    return 0;
                }
            } else {
                snprintf(why, n, "top-level field %s", f->string);
                return 0;
            }
        }
    }
    return 1;
}

static void check_pending(const pending *pd)
{
    const cJSON *post = fakeapi_get(fa, pd->path);
    if (!post)
        return; /* deleted since (by the churn) */
    char why[256] = "";
    if (!owned_ok(post, why, sizeof why))
        violation(&st.v_fields, "%s: optipod owns %s", pd->path, why);
    if (!pd->pre || strcmp(uid_of(pd->pre), uid_of(post)) != 0)
        return;
    const cJSON *pre_c = containers_of(pd->pre), *post_c = containers_of(post), *c;
    int wi = pd->wl >= 0 ? pd->wl : -1;
    if (wi < 0) {
        const cJSON *nm = cJSON_GetObjectItem(cJSON_GetObjectItem(post, "metadata"), "name");
        wi = cJSON_IsString(nm) ? wl_by_pod(nm->valuestring) : -1;
    }
    cJSON_ArrayForEach(c, pre_c)
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const cJSON *pc = container_named(post_c, name);
        if (!pc)
            continue;
        const cJSON *r0 = cJSON_GetObjectItem(c, "resources"),
                    *r1 = cJSON_GetObjectItem(pc, "resources");
        static const char *const which[] = {"requests", "limits"};
        for (int k = 0; k < 2; k++) {
            const cJSON *q;
            cJSON_ArrayForEach(q, cJSON_GetObjectItem(r0, which[k]))
            {
                if (!cJSON_GetObjectItem(cJSON_GetObjectItem(r1, which[k]), q->string)) {
                    char what[160];
                    snprintf(what, sizeof what, "%s %s.%s", name, which[k], q->string);
                    violation(&st.v_removed, "%s: removed %s", pd->path, what);
                }
            }
            int64_t m0 = mem_bytes(r0, which[k]), m1 = mem_bytes(r1, which[k]);
            int ci = strcmp(name, "app") == 0 ? 0 : 1;
            if (wi >= 0 && m1 >= 0 && m1 != m0 && (double)m1 < wl[wi].peak[ci]) {
                char what[160];
                snprintf(what, sizeof what, "%s memory %s %lld < peak %.0f", name, which[k],
                         (long long)m1, wl[wi].peak[ci]);
                violation(&st.v_below_peak, "%s: %s", pd->path, what);
            }
        }
    }
}

/* The request log since the last scan: count writes, check the write interval. */
static void scan_log(void)
{
    size_t n = fakeapi_log_count(fa);
    uint64_t now = now_ms();
    for (size_t i = 0; i < n; i++) {
        const fakeapi_logged *l = fakeapi_log_at(fa, i);
        if (strcmp(l->method, "GET") == 0 || strstr(l->path, "fieldManager=argocd-controller"))
            continue;
        if (strstr(l->path, "dryRun=All")) {
            st.dry_runs++;
            continue;
        }
        if (l->status < 200 || l->status >= 300) {
            st.failed_writes++;
            continue;
        }
        char path[256];
        snprintf(path, sizeof path, "%s", l->path);
        path[strcspn(path, "?")] = '\0';
        int wi = wl_by_path(path);
        if (wi >= 0) {
            st.workload_writes++;
            workload *w = &wl[wi];
            if (writes_log)
                fprintf(writes_log, "%.1f s %s %s %.400s\n", (double)(now - start_ms) / 1000.0,
                        l->method, l->path, l->body);
            const cJSON *o = live(w);
            const char *uid = o ? uid_of(o) : "";
            if (!strstr(l->body, "\"resources\"")) {
                st.record_writes++; /* annotations only: its recommendation records */
                continue;
            }
            uint64_t at = w->arrived_ms ? w->arrived_ms : now;
            if (w->last_write_ms && strcmp(uid, w->last_write_uid) == 0 &&
                at + INTERVAL_SLACK_MS < w->last_write_ms + MIN_WRITE_MS) {
                char gap[64];
                snprintf(gap, sizeof gap, "%llu ms", (unsigned long long)(at - w->last_write_ms));
                violation(&st.v_interval, "%s written twice within the interval (%s)", path, gap);
            }
            w->last_write_ms = at;
            snprintf(w->last_write_uid, sizeof w->last_write_uid, "%s", uid);
        } else if (strncmp(path, POD_PREFIX, strlen(POD_PREFIX)) == 0) {
            st.pod_writes++;
        } else if (strstr(path, "/optimizationpolicies/") && strstr(path, "/status")) {
            st.status_writes++;
        } else if (strstr(path, "/optimizationrecommendations")) {
            st.recobj_writes++; /* its own OptimizationRecommendation records */
        } else if (strstr(path, "/events")) {
            st.event_writes++;
        } else if (strstr(path, "/leases")) {
            st.lease_writes++;
        } else {
            st.other_writes++;
            violation(&st.v_target,
                      "%s %s: not a workload, pod, policy status, record, Event or Lease",
                      l->method, path);
        }
    }
    fakeapi_log_clear(fa);
}

static void on_scan(uv_timer_t *t)
{
    scan_log();
    uint64_t now = now_ms();
    size_t keep = 0;
    for (size_t i = 0; i < npend; i++) {
        if (now - pend[i].at_ms >= SCAN_MS) {
            check_pending(&pend[i]);
            cJSON_Delete(pend[i].pre);
        } else {
            pend[keep++] = pend[i];
        }
    }
    npend = keep;
    gitops_reap();
}

/* ---- sampling -------------------------------------------------------------------------------- */

static double proc_rss(pid_t pid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024.0;
}

static double proc_fds(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(p);
    if (!d)
        return -1;
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Sum of every series of `metric` in an exposition text ("name{...} v" or "name v"). */
static double metric_sum(const char *text, const char *metric)
{
    double sum = 0;
    size_t ml = strlen(metric);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, metric, ml) != 0 || (l[ml] != '{' && l[ml] != ' '))
            continue;
        const char *sp = strchr(l, ' ');
        const char *nl = strchr(l, '\n');
        if (sp && (!nl || sp < nl))
            sum += strtod(sp + 1, NULL);
    }
    return sum;
}

static void on_sample(uv_timer_t *t)
{
    if (nsamples >= MAX_SAMPLES || op_exited)
        return;
    static char body[1 << 20];
    sample *s = &samples[nsamples];
    s->t_s = (double)(now_ms() - start_ms) / 1000.0;
    s->rss = proc_rss(op_pid);
    s->fds = proc_fds(op_pid);
    body[0] = '\0';
    if (promsrv_http_get(metrics_port, "/metrics", body, sizeof body) != 200)
        body[0] = '\0';
    s->inf_objects = metric_sum(body, "optipod_informer_objects");
    s->cache_bytes = metric_sum(body, "optipod_informer_cache_bytes");
    s->reconciles = metric_sum(body, "optipod_reconciles_total");
    s->api_writes = metric_sum(body, "optipod_api_writes_total");
    s->wh_reviews = metric_sum(body, "optipod_webhook_reviews_total");
    s->handles = metric_sum(body, "optipod_loop_handles");
    s->q_queued = metric_sum(body, "optipod_queue_depth{state=\"queued\"}") +
                  metric_sum(body, "optipod_queue_depth{state=\"running\"}");
    s->q_delayed = metric_sum(body, "optipod_queue_depth{state=\"delayed\"}");
    if (s->rss > 0)
        nsamples++;
}

/* ---- processes ---------------------------------------------------------------------------- */

static void on_sigchld_check(void)
{
    if (op_exited || !op_pid)
        return;
    int status;
    if (waitpid(op_pid, &status, WNOHANG) == op_pid) {
        op_exited = 1;
        op_status = status;
    }
}

/* Start optipod with argv (argv[0] = the binary), stdout and stderr to <out>/<logname>;
 * it dies with this process. Returns its pid or -1. */
static pid_t spawn_logged(const char *logname, char *const argv[])
{
    char log[512];
    snprintf(log, sizeof log, "%s/%s", cfg.out, logname);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int spawn_optipod(const char *kubeconfig, const char *certdir)
{
    char mport[32], wport[16];
    snprintf(mport, sizeof mport, "127.0.0.1:%d", metrics_port);
    snprintf(wport, sizeof wport, "%d", webhook_port);
    char *const argv[] = {(char *)cfg.optipod,
                          "--kubeconfig",
                          (char *)kubeconfig,
                          "--prometheus-url",
                          prom.url,
                          "--metrics-bind-address",
                          mport,
                          "--health-probe-bind-address",
                          "127.0.0.1:0",
                          "--webhook-port",
                          wport,
                          "--webhook-cert-dir",
                          (char *)certdir,
                          "--stats-interval",
                          "60s",
                          "--min-write-interval",
                          MIN_WRITE,
                          "-v",
                          "1",
                          NULL};
    op_pid = spawn_logged("optipod.log", argv);
    return op_pid < 0 ? -1 : 0;
}

static volatile sig_atomic_t wh_stop;
static void wh_on_term(int s)
{
    (void)s;
    wh_stop = 1;
}

/* The second process: one pod AdmissionReview every 100 ms, over a fresh TLS connection. */
static void webhook_client(const char *ca_pem, const char *result_path)
{
    signal(SIGTERM, wh_on_term);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    uv_loop_t l;
    uv_loop_init(&l);
    unsigned long sent = 0, answered = 0, patched = 0, failed = 0;
    unsigned i = 0;
    while (!wh_stop) {
        workload *w = &wl[i++ % NWL];
        char owner[64], okind[32], uid[64] = "-", line[256], review[2048];
        FILE *of = fopen(owners_path, "r");
        for (unsigned k = 0; of && fgets(line, sizeof line, of); k++)
            if (k == (i - 1) % NWL && sscanf(line, "%31s %63s %63s", okind, owner, uid) != 3)
                snprintf(uid, sizeof uid, "-");
        if (of)
            fclose(of);
        if (strcmp(uid, "-") == 0) { /* gone (deleted by the churn), or no file yet */
            usleep(100000);
            continue;
        }
        snprintf(review, sizeof review,
                 "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                 "\"request\":{\"uid\":\"soak-%u\",\"kind\":{\"group\":\"\",\"version\":\"v1\","
                 "\"kind\":\"Pod\"},\"resource\":{\"group\":\"\",\"version\":\"v1\",\"resource\":"
                 "\"pods\"},\"namespace\":\"" NS "\",\"operation\":\"CREATE\",\"object\":{"
                 "\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"generateName\":\"%s-\","
                 "\"namespace\":\"" NS "\",\"labels\":{\"app\":\"%s\"},\"ownerReferences\":[{"
                 "\"apiVersion\":\"apps/v1\",\"kind\":\"%s\",\"name\":\"%s\",\"uid\":\"%s\","
                 "\"controller\":true}]},\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":"
                 "\"registry.invalid/app:1\",\"resources\":%s},{\"name\":\"side\",\"image\":"
                 "\"registry.invalid/side:1\",\"resources\":%s}]}}}}",
                 i, owner, w->name, okind, owner, uid, base_requests[0], base_requests[1]);
        char *req =
            fakeapi_cli_format("POST", "/mutate-pods?timeout=5s", "application/json", review, NULL);
        fakeapi_cli_result r = {0};
        sent++;
        if (fakeapi_cli_run(&l, webhook_port, ca_pem, 1, req, strlen(req), 0, &r) == 0 &&
            r.status == 200 && r.body && strstr(r.body, "\"allowed\":true")) {
            answered++;
            if (strstr(r.body, "\"patch\""))
                patched++;
        } else if (answered) {
            failed++;
        } else {
            sent--; /* optipod is still starting: not listening yet */
        }
        fakeapi_cli_result_release(&r);
        free(req);
        usleep(100000);
    }
    FILE *f = fopen(result_path, "w");
    if (f) {
        fprintf(f, "%lu %lu %lu %lu\n", sent, answered, patched, failed);
        fclose(f);
    }
    uv_run(&l, UV_RUN_DEFAULT);
    uv_loop_close(&l);
    _exit(0);
}

/* ---- the report ---------------------------------------------------------------------------- */

/* Least-squares slope of y over t (per second) for samples with t >= from. */
static double slope(double from, size_t off)
{
    double n = 0, st_ = 0, sy = 0, stt = 0, sty = 0;
    for (size_t i = 0; i < nsamples; i++) {
        if (samples[i].t_s < from)
            continue;
        double t = samples[i].t_s, y = *(double *)((char *)&samples[i] + off);
        n++;
        st_ += t;
        sy += y;
        stt += t * t;
        sty += t * y;
    }
    double d = n * stt - st_ * st_;
    return n >= 3 && d != 0 ? (n * sty - st_ * sy) / d : 0;
}

static int write_report(uint64_t elapsed_ms, const unsigned long wh[4])
{
    char p[512];
    snprintf(p, sizeof p, "%s/samples.tsv", cfg.out);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fprintf(f, "# t_s\trss_bytes\tfds\tinformer_objects\tcache_bytes\treconciles\tapi_writes\t"
               "webhook_reviews\tloop_handles\tqueue_ready\tqueue_delayed\n");
    for (size_t i = 0; i < nsamples; i++) {
        sample *s = &samples[i];
        fprintf(f, "%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\n", s->t_s,
                s->rss, s->fds, s->inf_objects, s->cache_bytes, s->reconciles, s->api_writes,
                s->wh_reviews, s->handles, s->q_queued, s->q_delayed);
    }
    fclose(f);

    double total_s = (double)elapsed_ms / 1000.0, half = total_s / 2;
    double rss_h = slope(half, offsetof(sample, rss)) * 3600.0;
    double fds_h = slope(half, offsetof(sample, fds)) * 3600.0;
    double cache_h = slope(half, offsetof(sample, cache_bytes)) * 3600.0;
    double handles_h = slope(half, offsetof(sample, handles)) * 3600.0;
    double q_max = 0, qd_max = 0;
    for (size_t i = 0; i < nsamples; i++) {
        q_max = samples[i].q_queued > q_max ? samples[i].q_queued : q_max;
        qd_max = samples[i].q_delayed > qd_max ? samples[i].q_delayed : qd_max;
    }
    const sample *first = nsamples ? &samples[0] : NULL,
                 *last = nsamples ? &samples[nsamples - 1] : NULL;
    uint64_t viol =
        st.v_target + st.v_fields + st.v_removed + st.v_below_peak + st.v_mode + st.v_interval;
    int exit_ok = op_exited && WIFEXITED(op_status) && WEXITSTATUS(op_status) == 0;
    double wh_fail = wh[0] ? (double)wh[3] / (double)wh[0] : 1;
    double half_h = half / 3600.0;
    double rss_tol_h = RSS_TOL_RISE / half_h, fds_tol_h = FD_TOL_RISE / half_h;
    double handles_tol_h = HANDLE_TOL_RISE / half_h;
    int pass = nsamples >= 6 && rss_h <= rss_tol_h && fds_h <= fds_tol_h &&
               handles_h <= handles_tol_h && viol == 0 && exit_ok && wh_fail <= 0.01;

    snprintf(p, sizeof p, "%s/report.txt", cfg.out);
    f = fopen(p, "w");
    if (!f)
        return -1;
    fprintf(f,
            "optipod soak: %.1f min, %zu samples every %d s (plot: soak.png, data: "
            "samples.tsv)\n",
            total_s / 60, nsamples, SAMPLE_MS / 1000);
    fprintf(f,
            "cluster: %d workloads (6 Deployments, 3 StatefulSets, 3 DaemonSets), 2 "
            "policies, reconcileInterval " RECONCILE ", real Prometheus %s\n",
            NWL, prom.url);
    if (first && last) {
        fprintf(f,
                "RSS        %.1f MiB -> %.1f MiB; slope over the second half %+.0f bytes/h "
                "(%+.2f MiB/h; tolerance %.2f MiB/h: a 256 KiB rise over the half)\n",
                first->rss / 1048576, last->rss / 1048576, rss_h, rss_h / 1048576,
                rss_tol_h / 1048576);
        fprintf(f,
                "open fds   %.0f -> %.0f; slope over the second half %+.2f fds/h (tolerance "
                "%.1f fds/h: a rise of 2 over the half)\n",
                first->fds, last->fds, fds_h, fds_tol_h);
        fprintf(f,
                "informers  %.0f objects, %.0f cache bytes at the end; cache slope %+.0f "
                "bytes/h\n",
                last->inf_objects, last->cache_bytes, cache_h);
        fprintf(f, "reconciles %.0f; API writes (optipod's count) %.0f; webhook reviews %.0f\n",
                last->reconciles, last->api_writes, last->wh_reviews);
    }
    if (first && last) {
        fprintf(f,
                "libuv handles %.0f -> %.0f; slope over the second half %+.2f handles/h "
                "(tolerance %.1f/h: a rise of %.0f over the half)\n",
                first->handles, last->handles, handles_h, handles_tol_h, HANDLE_TOL_RISE);
        fprintf(f,
                "work queue: ready or running %.0f at the end (at most %.0f), delayed %.0f at "
                "the end (at most %.0f)\n",
                last->q_queued, q_max, last->q_delayed, qd_max);
    }
    fprintf(f,
            "writes seen by the API server: %llu workload (%llu of them annotations only), %llu "
            "pod, %llu policy status, %llu OptimizationRecommendation, "
            "%llu events, %llu leases, %llu other; %llu refused; %llu dry runs\n",
            (unsigned long long)st.workload_writes, (unsigned long long)st.record_writes,
            (unsigned long long)st.pod_writes, (unsigned long long)st.status_writes,
            (unsigned long long)st.recobj_writes, (unsigned long long)st.event_writes,
            (unsigned long long)st.lease_writes, (unsigned long long)st.other_writes,
            (unsigned long long)st.failed_writes, (unsigned long long)st.dry_runs);
    fprintf(f,
            "churn: %llu scales, %llu template edits, %llu pod replacements, %llu workload "
            "deletes, %llu creates, %llu policy edits, %llu mode switches, %llu strategy "
            "switches, %llu policy deletes, %llu GitOps applies (%llu ok)\n",
            (unsigned long long)st.scales, (unsigned long long)st.edits,
            (unsigned long long)st.pod_replacements, (unsigned long long)st.wl_deletes,
            (unsigned long long)st.wl_creates, (unsigned long long)st.pol_edits,
            (unsigned long long)st.pol_mode_switches, (unsigned long long)st.pol_strategy_switches,
            (unsigned long long)st.pol_deletes, (unsigned long long)st.gitops_applies,
            (unsigned long long)st.gitops_ok);
    fprintf(f,
            "webhook (second process): %lu reviews sent, %lu answered allowed (%lu patched), "
            "%lu failed\n",
            wh[0], wh[1], wh[2], wh[3]);
    fprintf(f,
            "invariant violations: %llu (target %llu, owned fields %llu, removed "
            "request/limit %llu, memory below peak %llu, write in Recommend/Disabled %llu, "
            "twice within " MIN_WRITE " %llu)%s\n",
            (unsigned long long)viol, (unsigned long long)st.v_target,
            (unsigned long long)st.v_fields, (unsigned long long)st.v_removed,
            (unsigned long long)st.v_below_peak, (unsigned long long)st.v_mode,
            (unsigned long long)st.v_interval, viol ? " (first ones in violations.txt)" : "");
    fprintf(f, "optipod exit after SIGTERM: %s\n",
            !op_exited             ? "did not exit"
            : WIFEXITED(op_status) ? (WEXITSTATUS(op_status) == 0 ? "0 (clean)" : "non-zero")
                                   : "killed by a signal");
    fprintf(f, "result: %s\n", pass ? "PASS" : "FAIL");
    fclose(f);

    snprintf(p, sizeof p, "%s/soak.gp", cfg.out);
    f = fopen(p, "w");
    if (!f)
        return -1;
    fprintf(f,
            "set terminal pngcairo size 1000,900 font ',9'\n"
            "set output '%s/soak.png'\n"
            "set multiplot layout 3,1 title 'optipod soak: %.0f min (RSS slope %+.2f MiB/h, fds "
            "%+.2f/h)'\n"
            "set xlabel 'seconds'\nset grid\n"
            "set ylabel 'MiB'\n"
            "set y2label 'KiB'\nset y2tics\nset ytics nomirror\n"
            "plot '%s/samples.tsv' using 1:($2/1048576) with lines title 'RSS (MiB)', '' using "
            "1:($5/1024) axes x1y2 with lines title 'informer cache (KiB, right)'\n"
            "unset y2tics\nunset y2label\nset ytics mirror\n"
            "set ylabel 'count'\n"
            "plot '%s/samples.tsv' using 1:3 with lines title 'open fds', '' using 1:4 with lines "
            "title 'informer objects', '' using 1:9 with lines title 'libuv handles', '' using "
            "1:($10+$11) with lines title 'queue depth (ready+running+delayed)'\n"
            "set ylabel 'total'\n"
            "plot '%s/samples.tsv' using 1:6 with lines title 'reconciles', '' using 1:7 with "
            "lines title 'API writes', '' using 1:8 with lines title 'webhook reviews'\n"
            "unset multiplot\n",
            cfg.out, total_s / 60, rss_h / 1048576, fds_h, cfg.out, cfg.out, cfg.out);
    fclose(f);
    return pass ? 0 : 1;
}

/* final.json: every policy and workload as the fake server holds them at the end. */
static void dump_final(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/final.json", cfg.out);
    FILE *f = fopen(p, "w");
    if (!f)
        return;
    for (int i = 0; i < 2; i++) {
        char path[192];
        snprintf(path, sizeof path,
                 "/apis/optipod.io/v1alpha1/namespaces/" NS "/optimizationpolicies/%s",
                 pol[i].name);
        char *j = fakeapi_get_json(fa, path);
        fprintf(f, "%s\n", j ? j : "null");
        free(j);
    }
    for (int i = 0; i < NWL; i++) {
        char path[192];
        wl_path(&wl[i], path, sizeof path);
        char *j = fakeapi_get_json(fa, path);
        fprintf(f, "%s\n", j ? j : "null");
        free(j);
    }
    fclose(f);
}

static void closed_cb(uv_handle_t *h);

static pid_t spawn_replica(const char *kubeconfig, const char *logname)
{
    char ld[32], rd[32], rp[32];
    snprintf(ld, sizeof ld, "%llums", (unsigned long long)cfg.lease_ms);
    snprintf(rd, sizeof rd, "%llums", (unsigned long long)cfg.renew_ms);
    snprintf(rp, sizeof rp, "%llums", (unsigned long long)cfg.retry_ms);
    char *const argv[] = {(char *)cfg.optipod,
                          "--leader-election-lease-duration",
                          ld,
                          "--leader-election-renew-deadline",
                          rd,
                          "--leader-election-retry-period",
                          rp,
                          "--kubeconfig",
                          (char *)kubeconfig,
                          "--prometheus-url",
                          prom.url,
                          "--metrics-bind-address",
                          "0",
                          "--health-probe-bind-address",
                          "0",
                          "--leader-elect",
                          "--leader-election-namespace",
                          NS,
                          "--leader-election-id",
                          "optipod-leader",
                          "-v",
                          "1",
                          NULL};
    return spawn_logged(logname, argv);
}

static void on_poll(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until cond() or timeout_ms; returns cond(). */
static int run_until(int (*cond)(void), uint64_t timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;
    while (!cond() && now_ms() < end)
        uv_run(&loop, UV_RUN_ONCE);
    return cond();
}

static int fo_has_leader(void)
{
    return fo.leader_id[0] != 0;
}
static int fo_killed(void)
{
    return fo.killed;
}
static int fo_acquired(void)
{
    return fo.acquire_ms != 0;
}
/* Quiet: no resource write for two reconcile intervals since the takeover. */
static int fo_quiet(void)
{
    uint64_t last = fo.last_write_ms > fo.acquire_ms ? fo.last_write_ms : fo.acquire_ms;
    return now_ms() - last > 2 * RECONCILE_MS;
}

static int run_failover(const char *kc)
{
    FILE *out = NULL;
    char p[512];
    static uv_timer_t poll_t;
    uv_timer_init(&loop, &poll_t);
    uv_timer_start(&poll_t, on_poll, 50, 50);
    uv_timer_init(&loop, &scan_t);
    uv_timer_start(&scan_t, on_scan, SCAN_MS, SCAN_MS);
    start_ms = now_ms();
    fo.on = 1;
    fo.leader = spawn_replica(kc, "replica-a.log");
    int ok = run_until(fo_has_leader, 20000);
    if (ok) {
        fo.follower = spawn_replica(kc, "replica-b.log");
        uint64_t settle = now_ms() + 3000; /* the follower lists, watches, polls the lease */
        while (now_ms() < settle)
            uv_run(&loop, UV_RUN_ONCE);
        for (int i = 0; i < 2; i++) {
            pol[i].mode = 0; /* Recommend -> Auto: every workload needs its write */
            put_policy(&pol[i]);
        }
        fo.armed = 1;
        ok = run_until(fo_killed, 30000) && run_until(fo_acquired, TAKEOVER_MS + 10000);
        if (ok)
            run_until(fo_quiet, 90000);
    }
    on_scan(&scan_t);
    unsigned lost = 0, multi = 0;
    for (int i = 0; i < NWL; i++) {
        lost += fo.writes[i] == 0;
        multi += fo.writes[i] > 1;
    }
    uint64_t gap =
        fo.acquire_ms && fo.last_leader_lease_ms ? fo.acquire_ms - fo.last_leader_lease_ms : 0;
    uint64_t viol =
        st.v_target + st.v_fields + st.v_removed + st.v_below_peak + st.v_mode + st.v_interval;
    kill(fo.follower, SIGTERM);
    int status = -1, exited = 0;
    for (int i = 0; i < 300 && !exited; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        exited = waitpid(fo.follower, &status, WNOHANG) == fo.follower;
        if (!exited)
            usleep(50000);
    }
    if (!exited) {
        kill(fo.follower, SIGKILL);
        waitpid(fo.follower, &status, 0);
    }
    waitpid(fo.leader, NULL, 0);
    int clean = exited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    int pass = ok && gap && gap <= (uint64_t)(TAKEOVER_MS + LEASE_SLACK_MS) && lost == 0 &&
               fo.dups == 0 && multi == 0 && viol == 0 && clean;
    snprintf(p, sizeof p, "%s/failover.txt", cfg.out);
    out = fopen(p, "w");
    for (int k = 0; k < 2; k++) {
        FILE *f = k ? stdout : out;
        if (!f)
            continue;
        fprintf(f,
                "failover: %d workloads, two replicas (--leader-elect, leaseDuration %.1f s, "
                "renewDeadline %.1f s, retryPeriod %.1f s), the leader SIGKILLed at its first "
                "write of the burst\n",
                NWL, LEASE_MS / 1000.0, (double)cfg.renew_ms / 1000.0, RETRY_MS / 1000.0);
        fprintf(f, "  leader %s: %u write(s) before the kill\n", fo.leader_id, fo.leader_writes);
        fprintf(f,
                "  follower %s led %.1f s after the leader's last renewal (%.1f s after the "
                "kill; bound %.1f s + %.1f s slack)\n",
                fo.follower_id[0] ? fo.follower_id : "(none)", (double)gap / 1000.0,
                fo.acquire_ms ? (double)(fo.acquire_ms - fo.kill_ms) / 1000.0 : -1.0,
                TAKEOVER_MS / 1000.0, LEASE_SLACK_MS / 1000.0);
        fprintf(f,
                "  follower wrote %u; workloads written: %u of %d; lost %u, written more than "
                "once %u, same recommendation twice %u; invariant violations %llu\n",
                fo.follower_writes, NWL - lost, NWL, lost, multi, fo.dups,
                (unsigned long long)viol);
        fprintf(f, "  follower exit after SIGTERM: %s\nfailover: %s\n",
                clean ? "0 (clean)" : "not clean", pass ? "PASS" : "FAIL");
    }
    if (out)
        fclose(out);
    uv_close((uv_handle_t *)&poll_t, closed_cb);
    uv_close((uv_handle_t *)&scan_t, closed_cb);
    fakeapi_stop(fa, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    promsrv_stop(&prom);
    return pass ? 0 : 1;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void on_end(uv_timer_t *t)
{
    uv_timer_stop(&churn_t);
    uv_timer_stop(&sample_t);
    uv_timer_stop(&end_t);
    uv_stop(&loop);
}

static void on_tick_check(uv_timer_t *t)
{
    on_sigchld_check();
    if (op_exited)
        on_end(t);
}

static int write_file(const char *dir, const char *name, const char *data)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fputs(data, f);
    return fclose(f);
}

static void closed_cb(uv_handle_t *h)
{
    (void)h;
}

int main(int argc, char **argv)
{
    int help = 0;
    opflag flags[] = {
        {"optipod", 0, OPFLAG_STRING, &cfg.optipod, "the optipod binary to soak"},
        {"out", 0, OPFLAG_STRING, &cfg.out, "report directory (default build/soak)"},
        {"minutes", 0, OPFLAG_INT, &cfg.minutes, "how long (default 30)"},
        {"duration", 0, OPFLAG_DURATION, &cfg.duration_ms, "how long, overriding --minutes"},
        {"failover", 0, OPFLAG_BOOL, &cfg.failover,
         "instead: leader failover under a write burst (two replicas)"},
        {"lease-duration", 0, OPFLAG_DURATION, &cfg.lease_ms,
         "--failover: the replicas' --leader-election-lease-duration (default 15s)"},
        {"renew-deadline", 0, OPFLAG_DURATION, &cfg.renew_ms,
         "--failover: their --leader-election-renew-deadline (default 10s)"},
        {"retry-period", 0, OPFLAG_DURATION, &cfg.retry_ms,
         "--failover: their --leader-election-retry-period (default 2s)"},
        {"lease-slack", 0, OPFLAG_DURATION, &cfg.slack_ms,
         "--failover: scheduling slack over leaseDuration + retryPeriod (default 500ms)"},
        {"help", 'h', OPFLAG_BOOL, &help, "this help"},
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]), rest = 0;
    operr err = {{0}};
    if (opflag_parse(flags, nflags, argc, argv, &rest, &err) != 0 || rest < argc) {
        fprintf(stderr, "soak: %s\n", err.msg[0] ? err.msg : "unexpected argument");
        return 2;
    }
    if (help || !cfg.optipod) {
        fprintf(help ? stdout : stderr, "Usage: soak --optipod PATH [flags]\n");
        opflag_usage(help ? stdout : stderr, flags, nflags);
        return help ? 0 : 2;
    }
    uint64_t run_ms = cfg.duration_ms ? cfg.duration_ms : (uint64_t)cfg.minutes * 60000;
    if (run_ms < 60000 && !cfg.failover) {
        fprintf(stderr, "soak: at least one minute (six samples) is needed\n");
        return 2;
    }
    if (!promsrv_available()) {
        fprintf(stderr, "soak: needs prometheus and promtool (make deps installs them)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    mkdir(cfg.out, 0755);
    char p[512];
    snprintf(p, sizeof p, "%s/violations.txt", cfg.out);
    viol_log = fopen(p, "w");
    snprintf(p, sizeof p, "%s/writes.log", cfg.out);
    writes_log = fopen(p, "w");

    const char *names[] = {"d0", "d1", "d2", "d3", "d4", "d5", "s0", "s1", "s2", "x0", "x1", "x2"};
    for (int i = 0; i < NWL; i++) {
        wl[i].kind = i < 6 ? K_DEP : i < 9 ? K_STS : K_DS;
        snprintf(wl[i].name, sizeof wl[i].name, "%s", names[i]);
        wl[i].group = (i % 2) ? 'b' : 'a';
        wl[i].gitops = i == 0 || i == 1 || i == 6;
    }
    fprintf(stderr, "soak: backfilling Prometheus...\n");
    if (start_prometheus() != 0)
        return 1;

    uv_loop_init(&loop);
    if (fakeapi_start(&fa, &loop, NULL) != 0) {
        fprintf(stderr, "soak: cannot start the fake API server\n");
        return 1;
    }
    fakeapi_set_rollouts_done(fa, 1);
    fakeapi_put_json(fa, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":"
                         "\"" NS "\"}}");
    for (int i = 0; i < NWL; i++)
        create_workload(&wl[i]);
    st.wl_creates = 0;
    if (cfg.failover) {
        max_decrease_pct = 100;
        pol[0].mode = pol[1].mode = 1; /* Recommend until both replicas run */
    }
    for (int i = 0; i < 2; i++)
        put_policy(&pol[i]);
    fakeapi_set_hook(fa, on_request, NULL);
    char kc[512];
    snprintf(kc, sizeof kc, "%s/kubeconfig", cfg.out);
    fakeapi_write_kubeconfig(fa, kc, "soak-token");
    if (cfg.failover)
        return run_failover(kc);

    /* The webhook's serving certificate, mounted-directory style. */
    char certdir[512];
    snprintf(certdir, sizeof certdir, "%s/webhook-certs", cfg.out);
    mkdir(certdir, 0700);
    whcert_sans sans;
    const char *extra[] = {"127.0.0.1", NULL};
    ophttpd_cert cert = {0};
    if (whcert_sans_for_service(&sans, "optipod-webhook", "optipod-system", extra) != 0 ||
        whcert_generate(&cert, &sans, 2) != 0 ||
        write_file(certdir, "tls.crt", cert.cert_pem) != 0 ||
        write_file(certdir, "tls.key", cert.key_pem) != 0 ||
        write_file(certdir, "ca.crt", cert.ca_pem) != 0) {
        fprintf(stderr, "soak: cannot make the webhook certificate\n");
        return 1;
    }
    metrics_port = promsrv_free_port();
    webhook_port = promsrv_free_port();

    if (spawn_optipod(kc, certdir) != 0)
        return 1;
    char whres[512];
    snprintf(whres, sizeof whres, "%s/webhook-client.txt", cfg.out);
    unlink(whres);
    snprintf(owners_path, sizeof owners_path, "%s/owners.txt", cfg.out);
    write_owners();
    wh_pid = fork();
    if (wh_pid == 0)
        webhook_client(cert.ca_pem, whres);

    fprintf(stderr, "soak: optipod pid %d, webhook client pid %d, %llu s; report in %s\n",
            (int)op_pid, (int)wh_pid, (unsigned long long)(run_ms / 1000), cfg.out);
    start_ms = now_ms();
    uv_timer_init(&loop, &churn_t);
    uv_timer_init(&loop, &scan_t);
    uv_timer_init(&loop, &sample_t);
    uv_timer_init(&loop, &end_t);
    uv_timer_start(&churn_t, on_churn, 5000, CHURN_MS); /* after the first sync */
    uv_timer_start(&scan_t, on_scan, SCAN_MS, SCAN_MS);
    uv_timer_start(&sample_t, on_sample, 1000, SAMPLE_MS);
    uv_timer_start(&end_t, on_end, run_ms, 0);
    static uv_timer_t check_t;
    uv_timer_init(&loop, &check_t);
    uv_timer_start(&check_t, on_tick_check, 500, 500);
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t elapsed = now_ms() - start_ms;

    /* The webhook client first (its reviews need optipod), then optipod, gracefully, while
     * the fake server still answers. */
    kill(wh_pid, SIGTERM);
    waitpid(wh_pid, NULL, 0);
    if (!op_exited)
        kill(op_pid, SIGTERM);
    uv_timer_stop(&check_t);
    for (int i = 0; i < 300 && !op_exited; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        on_sigchld_check();
        usleep(50000);
    }
    if (!op_exited) {
        kill(op_pid, SIGKILL);
        waitpid(op_pid, NULL, 0);
    }
    unsigned long wh[4] = {0};
    FILE *wf = fopen(whres, "r");
    if (!wf || fscanf(wf, "%lu %lu %lu %lu", &wh[0], &wh[1], &wh[2], &wh[3]) != 4)
        fprintf(stderr, "soak: no result from the webhook client\n");
    if (wf)
        fclose(wf);
    on_scan(&scan_t);
    for (size_t i = 0; i < npend; i++) {
        check_pending(&pend[i]);
        cJSON_Delete(pend[i].pre);
    }
    npend = 0;
    promsrv_stop(&prom);
    dump_final();
    int rc = write_report(elapsed, wh);

    for (int i = 0; i < NWL; i++)
        if (gitops_cli[i])
            fakeapi_cli_free(gitops_cli[i]);
    uv_close((uv_handle_t *)&churn_t, closed_cb);
    uv_close((uv_handle_t *)&scan_t, closed_cb);
    uv_close((uv_handle_t *)&sample_t, closed_cb);
    uv_close((uv_handle_t *)&end_t, closed_cb);
    uv_close((uv_handle_t *)&check_t, closed_cb);
    fakeapi_stop(fa, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    ophttpd_cert_release(&cert);
    if (viol_log)
        fclose(viol_log);
    if (writes_log)
        fclose(writes_log);
    snprintf(p, sizeof p, "%s/report.txt", cfg.out);
    FILE *r = fopen(p, "r");
    char line[1024];
    while (r && fgets(line, sizeof line, r))
        fputs(line, stdout);
    if (r)
        fclose(r);
    return rc;
}
