/*
 * The controller restarted mid-window on the metrics-server path: the real
 * controller (lib/controller) with its real metrics-server provider sampling
 * PodMetrics from the fake API server, and its real checkpoints
 * (controller/ckpt.h) wired as cmd/optipod wires them: written and restored
 * by the leader only, every short checkpoint interval.
 *
 * Two namespaces hold the same Deployment, pods, Recommend policy and, round
 * by round, the same usage. Controller C watches one and never stops.
 * Controller A watches the other for the first half of the window and is
 * killed (closed without a last save); controller B starts as a follower,
 * restores nothing until it becomes leader, then restores A's last
 * checkpoint and samples the second half. What B recommends at the end is
 * checked against the recommendation the controller's own decision
 * (ctlrec_decide) makes from exactly the samples B can hold: every round up
 * to A's last save plus every round B sampled itself. The rounds in between
 * (A's samples after its last save) are the history a restart may lose,
 * and the test shows they are at most one checkpoint interval's worth, that
 * losing them moves the recommendation no further than losing the last
 * rounds of any interval could, and that without the checkpoint B would
 * recommend something else entirely.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "controller/ckpt.h"
#include "controller/controller.h"
#include "controller/reconcile.h"
#include "kube/events.h"
#include "kube/project.h"
#include "metrics/metricsserver.h"
#include "policy/policy.h"
#include "support/kenv.h"
#include "support/loop.h"
#include "test.h"
#include "util/buf.h"
#include "util/optime.h"

#define ROUNDS    48  /* samples of every pod, 30 s of PodMetrics time apart */
#define KILL      24  /* A is killed after this many rounds; B samples the rest */
#define ROUND_MS  50  /* real time a round lasts at least */
#define CKPT_MS   250 /* --checkpoint-interval */
#define SAMPLE_MS 10  /* the metrics-server provider's interval */
#define NPODS     3

static kenv env;
static double t0; /* PodMetrics time of round 0 */

static const char *const pods[NPODS] = {"web-7d9f8c6b5d-bcdfg", "web-7d9f8c6b5d-x2k4p",
                                        "web-7d9f8c6b5d-qz5lm"};

/* ---- usage ------------------------------------------------------------------------------- */

/* Round r, pod p: the first half of the window busy (0.40-0.58 cores,
 * 300-345 MiB, varied so the percentile depends on the samples), the second
 * half nearly idle. */
static double cpu_of(int r, int p)
{
    return r < KILL ? 0.40 + 0.02 * ((r * 7 + p * 3) % 10) : 0.03 + 0.002 * ((r + p) % 5);
}

static double mem_of(int r, int p)
{
    double mib = r < KILL ? 300 + 5 * ((r * 3 + p * 5) % 10) : 150 + (r + p) % 7;
    return mib * 1048576;
}

static void pod_metrics(opbuf *b, const char *ns, int r, int p)
{
    char ts[32];
    ASSERT_EQ_INT(optime_format((optime){.sec = (int64_t)(t0 + 30.0 * r)}, 0, ts, sizeof ts), 20);
    opbuf_printf(b,
                 "{\"apiVersion\":\"metrics.k8s.io/v1beta1\",\"kind\":\"PodMetrics\","
                 "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},\"timestamp\":\"%s\","
                 "\"window\":\"30s\",\"containers\":[{\"name\":\"app\",\"usage\":{\"cpu\":"
                 "\"%lldn\",\"memory\":\"%lldKi\"}}]}",
                 pods[p], ns, ts, (long long)(cpu_of(r, p) * 1e9 + 0.5),
                 (long long)(mem_of(r, p) / 1024 + 0.5));
}

/* The round's PodMetrics in the fake API server (what metrics-server serves). */
static void put_round(const char *ns, int r)
{
    opbuf b;
    opbuf_init(&b, 4096);
    for (int p = 0; p < NPODS; p++) {
        opbuf_reset(&b);
        pod_metrics(&b, ns, r, p);
        ASSERT_EQ_INT(fakeapi_put_json(env.fa, opbuf_str(&b)), 0);
    }
    opbuf_release(&b);
}

/* ---- objects ------------------------------------------------------------------------------ */

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

static const cJSON *get(const char *ns, const char *what)
{
    char path[256];
    if (strcmp(what, "deployment") == 0)
        snprintf(path, sizeof path, "/apis/apps/v1/namespaces/%s/deployments/web", ns);
    else if (strcmp(what, "policy") == 0)
        snprintf(path, sizeof path,
                 "/apis/optipod.io/v1alpha1/namespaces/%s/optimizationpolicies/rec", ns);
    else
        snprintf(path, sizeof path, "/api/v1/namespaces/%s/configmaps/" CKPT_DEFAULT_NAME, ns);
    return fakeapi_get(env.fa, path);
}

#define SPEC                                                                                       \
    "{\"mode\":\"Recommend\",\"selector\":{\"workloadSelector\":{\"matchLabels\":{\"app\":"        \
    "\"web\"}}},\"metricsConfig\":{\"provider\":\"metrics-server\",\"percentile\":\"P90\","        \
    "\"rollingWindow\":\"24h\"},\"minHistory\":{\"samples\":10,\"duration\":\"5m\"},"              \
    "\"reconcileInterval\":\"1m\"}"

static void put_workload(const char *ns)
{
    put("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", ns);
    put("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
        "\"namespace\":\"%s\",\"labels\":{\"app\":\"web\"}},\"spec\":{\"replicas\":3,"
        "\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":"
        "{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"app\","
        "\"image\":\"registry.invalid/app:1\",\"resources\":{\"requests\":{\"cpu\":\"200m\","
        "\"memory\":\"256Mi\"}}}]}}}}",
        ns);
    const char *uid =
        cJSON_GetObjectItem(cJSON_GetObjectItem(get(ns, "deployment"), "metadata"), "uid")
            ->valuestring;
    put("{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":"
        "\"web-7d9f8c6b5d\",\"namespace\":\"%s\",\"uid\":\"%s-rs\",\"ownerReferences\":[{"
        "\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"web\",\"uid\":\"%s\","
        "\"controller\":true}]},\"spec\":{\"replicas\":3,\"selector\":{\"matchLabels\":{\"app\":"
        "\"web\"}},\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":"
        "\"registry.invalid/app:1\"}]}}}}",
        ns, ns, uid);
    for (int p = 0; p < NPODS; p++)
        put("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
            "\"namespace\":\"%s\",\"labels\":{\"app\":\"web\"},\"ownerReferences\":[{"
            "\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"web-7d9f8c6b5d\","
            "\"uid\":\"%s-rs\",\"controller\":true}]},\"spec\":{\"containers\":[{\"name\":"
            "\"app\",\"image\":\"registry.invalid/app:1\",\"resources\":{\"requests\":{\"cpu\":"
            "\"200m\",\"memory\":\"256Mi\"}}}]},\"status\":{\"phase\":\"Running\",\"qosClass\":"
            "\"Burstable\"}}",
            pods[p], ns, ns);
    put("{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\",\"metadata\":"
        "{\"name\":\"rec\",\"namespace\":\"%s\"},\"spec\":" SPEC "}",
        ns);
}

/* The recommendation published on the workload (Recommend mode). */
typedef struct rec {
    char cpu[32], mem[32];
} rec;

static rec published(const char *ns)
{
    rec r = {"", ""};
    const cJSON *ann =
        cJSON_GetObjectItem(cJSON_GetObjectItem(get(ns, "deployment"), "metadata"), "annotations");
    const cJSON *c = cJSON_GetObjectItem(ann, "optipod.io/cpu-request.app");
    const cJSON *m = cJSON_GetObjectItem(ann, "optipod.io/memory-request.app");
    if (cJSON_IsString(c))
        snprintf(r.cpu, sizeof r.cpu, "%s", c->valuestring);
    if (cJSON_IsString(m))
        snprintf(r.mem, sizeof r.mem, "%s", m->valuestring);
    return r;
}

/* ---- what the controller decides from a given set of rounds -------------------------------- */

/* The metrics-server provider's pure store fed rounds [0, upto) but those in
 * [gap_from, gap_to), then the controller's own decision (ctlrec_decide)
 * for the workload and policy as they are in the fake API server. */
static rec decide(const char *ns, int upto, int gap_from, int gap_to)
{
    mms_store *s = NULL;
    ASSERT_EQ_INT(mms_store_new(&s, NULL), 0);
    const mprov_workload w = {"Deployment", "web", pods, NPODS};
    mprov_request rq = {
        .ns = ns, .workloads = &w, .nworkloads = 1, .percentile = 0.9, .window_s = 86400};
    double now = (double)time(NULL);
    ASSERT_EQ_INT(mms_store_map(s, &rq, now), 0);
    opbuf b;
    opbuf_init(&b, 1 << 14);
    operr err;
    for (int r = 0; r < upto; r++) {
        if (r >= gap_from && r < gap_to)
            continue;
        opbuf_reset(&b);
        opbuf_puts(&b, "{\"kind\":\"PodMetricsList\",\"items\":[");
        for (int p = 0; p < NPODS; p++) {
            if (p)
                opbuf_puts(&b, ",");
            pod_metrics(&b, ns, r, p);
        }
        opbuf_puts(&b, "]}");
        ASSERT_EQ_INT(mms_store_ingest(s, ns, b.data, b.len, now, &err), NPODS);
    }
    opbuf_release(&b);
    mprov_result res = {0};
    ASSERT_EQ_INT(mms_store_stats(s, &rq, now, &res), 0);
    ASSERT_EQ_INT(res.nworkloads, 1);
    kproj_obj *wl = NULL;
    ASSERT_EQ_INT(kproj_from_json(get(ns, "deployment"), KPROJ_DEPLOYMENT, &wl), 0);
    pol_policy pol;
    pol_init(&pol);
    ASSERT_EQ_INT(pol_parse(get(ns, "policy"), &pol, &err), 0);
    const pol_policy *pols[] = {&pol};
    ctlrec_input in = {.workload = wl,
                       .policies = pols,
                       .npolicies = 1,
                       .usage = res.workloads[0].containers,
                       .nusage = res.workloads[0].ncontainers,
                       .now_s = (int64_t)now};
    ctlrec_out out = {0};
    ASSERT_EQ_INT(ctlrec_decide(&in, &out), 0);
    ASSERT_EQ_INT(out.nrec, 1);
    rec d;
    snprintf(d.cpu, sizeof d.cpu, "%s", out.rec[0].cpu_request);
    snprintf(d.mem, sizeof d.mem, "%s", out.rec[0].memory_request);
    ctlrec_out_release(&out);
    pol_release(&pol);
    kproj_free(wl);
    mms_store_free(s);
    return d;
}

static double qty(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (strcmp(end, "m") == 0)
        return v / 1000;
    if (strcmp(end, "Mi") == 0)
        return v * 1048576;
    if (strcmp(end, "Gi") == 0)
        return v * 1073741824.0;
    ASSERT(*end == '\0');
    return v;
}

/* ---- controllers ------------------------------------------------------------------------- */

typedef struct run {
    const char *ns;
    ctl *c;
    ckpt *ck;
    mprov *ms; /* owned by the controller */
    kevents *ev;
} run;

/* What cmd/optipod's app_ckpt_active says: checkpoints are the leader's. */
static int run_leading(void *ud)
{
    const run *r = ud;
    return r->c && ctl_leading(r->c);
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

static void run_start(run *r, const char *ns, int follower)
{
    operr err = {{0}};
    memset(r, 0, sizeof *r);
    r->ns = ns;
    mms_opts mo = {.interval_ms = SAMPLE_MS};
    ASSERT_EQ_INT(mms_new(&r->ms, &env.loop, env.rest, &mo, &err), 0);
    ASSERT_EQ_INT(kevents_new(&r->ev, env.rest, NULL, &err), 0);
    ctl_opts o = {
        .ns = ns, .events = r->ev, .resync_ms = 100, .usage_ttl_ms = 50, .provider = r->ms};
    if (ctl_new(&r->c, &env.loop, env.rest, &o, &err) != 0)
        test_fail(__FILE__, __LINE__, "ctl_new: %s", err.msg);
    ckpt_opts ko = {.interval_ms = CKPT_MS, .scan_ms = 20, .active = run_leading, .active_ud = r};
    if (ckpt_new(&r->ck, &env.loop, env.rest, r->ms, &ko, &err) != 0)
        test_fail(__FILE__, __LINE__, "ckpt_new: %s", err.msg);
    if (follower)
        ctl_set_leader(r->c, 0);
    ASSERT_EQ_INT(ctl_start(r->c), 0);
}

/* SIGKILL's effect on the history: nothing saved on the way out. */
static void run_kill(run *r)
{
    int closed = 0;
    ckpt_close(r->ck);
    ctl_close(r->c, on_closed, &closed);
    ASSERT(tloop_until_flag(&env.loop, &closed, 5000));
    kevents_free(r->ev);
    r->c = NULL;
}

static size_t lists(const char *ns)
{
    char path[128];
    snprintf(path, sizeof path, "/apis/metrics.k8s.io/v1beta1/namespaces/%s/pods", ns);
    return fakeapi_count(env.fa, "GET", path);
}

typedef struct list_wait {
    const char *ns[2];
    size_t after[2];
    uint64_t until;
} list_wait;

/* Every live provider listed its namespace since the round was put, and the
 * round lasted ROUND_MS. */
static int pred_listed(void *ud)
{
    list_wait *w = ud;
    for (int i = 0; i < 2; i++)
        if (w->ns[i] && lists(w->ns[i]) <= w->after[i])
            return 0;
    return uv_now(&env.loop) >= w->until;
}

static void play_round(int r, const char *a, const char *b)
{
    list_wait w = {{a, b}, {0, 0}, 0};
    put_round("ck-ref", r);
    put_round("ck-restart", r);
    for (int i = 0; i < 2; i++)
        w.after[i] = w.ns[i] ? lists(w.ns[i]) : 0;
    uv_update_time(&env.loop);
    w.until = uv_now(&env.loop) + ROUND_MS;
    if (!tloop_until(&env.loop, pred_listed, &w, 10000))
        test_fail(__FILE__, __LINE__, "round %d: a provider did not sample", r);
}

static int pred_sampling(void *ud)
{
    const run *r = ud;
    return mms_namespaces(r->ms) == 1;
}

typedef struct rec_wait {
    const char *ns;
    rec want;
} rec_wait;

static int pred_rec(void *ud)
{
    rec_wait *w = ud;
    rec p = published(w->ns);
    return strcmp(p.cpu, w->want.cpu) == 0 && strcmp(p.mem, w->want.mem) == 0;
}

static void wait_rec(const char *ns, rec want, const char *who)
{
    rec_wait w = {ns, want};
    if (!tloop_until(&env.loop, pred_rec, &w, 15000)) {
        rec p = published(ns);
        test_fail(__FILE__, __LINE__, "%s published cpu %s memory %s, not %s / %s", who, p.cpu,
                  p.mem, want.cpu, want.mem);
    }
}

/* Rounds of samples in the checkpoint ConfigMap now (0 when none). */
static int checkpointed_rounds(void)
{
    const cJSON *cm = get("ck-restart", "configmap");
    if (!cm)
        return 0;
    const cJSON *d = cJSON_GetObjectItem(cJSON_GetObjectItem(cm, "data"), CKPT_DATA_KEY);
    ASSERT(cJSON_IsString(d));
    cJSON *doc = cJSON_Parse(d->valuestring);
    ASSERT_NOT_NULL(doc);
    const cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "series"), 0);
    const cJSON *n = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "cpu"), "count");
    ASSERT(cJSON_IsNumber(n));
    int rounds = n->valueint / NPODS;
    ASSERT_EQ_INT(n->valueint % NPODS, 0);
    cJSON_Delete(doc);
    return rounds;
}

static int pred_some_checkpoint(void *ud)
{
    (void)ud;
    return checkpointed_rounds() > 0;
}

/* ---- the test ---------------------------------------------------------------------------- */

static void test_restart_mid_window_recommends_as_one_that_never_stopped(void)
{
    t0 = (double)(time(NULL) / 60 * 60) - 3600; /* the window: the last hour */
    put_workload("ck-ref");
    put_workload("ck-restart");
    run c, a, b;
    run_start(&c, "ck-ref", 0);
    run_start(&a, "ck-restart", 0);
    /* both providers know their namespace (first reconcile) before round 0 */
    ASSERT(tloop_until(&env.loop, pred_sampling, &c, 10000));
    ASSERT(tloop_until(&env.loop, pred_sampling, &a, 10000));
    for (int r = 0; r < KILL; r++)
        play_round(r, "ck-ref", "ck-restart");
    /* A's checkpoints: at least one was written in the first half */
    ASSERT(tloop_until(&env.loop, pred_some_checkpoint, NULL, 5000));
    run_kill(&a);
    int never_set = 0;
    tloop_until_flag(&env.loop, &never_set, 50); /* a write already sent lands */
    int saved = checkpointed_rounds();
    /* One interval is at most CKPT_MS / ROUND_MS rounds (every round lasts
     * at least ROUND_MS), plus the round a save overlaps and the one its
     * round trip (list the policies, apply) may take. */
    const int interval_rounds = CKPT_MS / ROUND_MS + 2;
    ASSERT_CMP_INT(saved, >=, 1);
    ASSERT_CMP_INT(KILL - saved, <=, interval_rounds);

    /* B: the next process, not leading yet: it neither reads nor writes the
     * checkpoint (the one leader's job), and publishes nothing. */
    put_round("ck-restart", KILL);
    put_round("ck-ref", KILL);
    size_t cm_gets = fakeapi_count(env.fa, "GET", "/configmaps/" CKPT_DEFAULT_NAME);
    run_start(&b, "ck-restart", 1);
    int never = 0;
    tloop_until_flag(&env.loop, &never, 300); /* 300 ms of a follower */
    ASSERT_EQ_INT(fakeapi_count(env.fa, "GET", "/configmaps/" CKPT_DEFAULT_NAME), cm_gets);
    ckpt_stats st;
    ckpt_stats_get(b.ck, &st);
    ASSERT_EQ_INT(st.restored, 0);
    ASSERT_EQ_INT(st.saves, 0);
    /* it becomes leader: first reconcile, the namespace sampled (round KILL),
     * its checkpoint restored */
    ctl_set_leader(b.c, 1);
    ASSERT(tloop_until(&env.loop, pred_sampling, &b, 10000));
    play_round(KILL, "ck-ref", "ck-restart");
    for (int r = KILL + 1; r < ROUNDS; r++)
        play_round(r, "ck-ref", "ck-restart");
    ckpt_stats_get(b.ck, &st);
    ASSERT_EQ_INT(st.restored, 1);
    ASSERT_EQ_INT(st.errors, 0);

    /* C never stopped: the recommendation from every round. */
    rec all = decide("ck-ref", ROUNDS, 0, 0);
    wait_rec("ck-ref", all, "controller C (never stopped)");
    /* B: every round but those A sampled after its last save. */
    rec got = decide("ck-restart", ROUNDS, saved, KILL);
    wait_rec("ck-restart", got, "controller B (restarted)");
    /* "Within one checkpoint interval of samples": B's answer is one that
     * losing the last k <= interval_rounds rounds before any restart gives;
     * in values, between the least and the most of those. */
    double lo_c = qty(all.cpu), hi_c = lo_c, lo_m = qty(all.mem), hi_m = lo_m;
    for (int k = 1; k <= interval_rounds; k++) {
        rec d = decide("ck-restart", ROUNDS, KILL - k, KILL);
        lo_c = qty(d.cpu) < lo_c ? qty(d.cpu) : lo_c;
        hi_c = qty(d.cpu) > hi_c ? qty(d.cpu) : hi_c;
        lo_m = qty(d.mem) < lo_m ? qty(d.mem) : lo_m;
        hi_m = qty(d.mem) > hi_m ? qty(d.mem) : hi_m;
    }
    rec pb = published("ck-restart"), pc = published("ck-ref");
    printf("  C (never stopped) cpu %s memory %s; B (restarted, %d of %d rounds before the kill "
           "checkpointed) cpu %s memory %s; one interval's loss spans cpu %.3f-%.3f, memory "
           "%.0f-%.0f MiB\n",
           pc.cpu, pc.mem, saved, KILL, pb.cpu, pb.mem, lo_c, hi_c, lo_m / 1048576, hi_m / 1048576);
    ASSERT(qty(pb.cpu) >= lo_c && qty(pb.cpu) <= hi_c);
    ASSERT(qty(pb.mem) >= lo_m && qty(pb.mem) <= hi_m);
    /* ...and close to C: a 5 % histogram bucket or two */
    ASSERT(qty(pb.cpu) >= qty(pc.cpu) * 0.9 && qty(pb.cpu) <= qty(pc.cpu) * 1.1);
    ASSERT(qty(pb.mem) >= qty(pc.mem) * 0.9 && qty(pb.mem) <= qty(pc.mem) * 1.1);
    /* Without the checkpoint B would know the idle half only: far below. */
    rec none = decide("ck-restart", ROUNDS, 0, KILL);
    ASSERT(qty(none.cpu) < qty(pc.cpu) / 4);
    ASSERT(qty(none.mem) < qty(pc.mem) * 0.6);

    /* B, now leading, keeps checkpointing what it holds. */
    ASSERT(tloop_until(&env.loop, pred_some_checkpoint, NULL, 100));
    ckpt_save_now(b.ck);
    run_kill(&b);
    run_kill(&c);
}

int main(void)
{
    kenv_start(&env, "test_controller_ckpt");
    TEST_RUN(test_restart_mid_window_recommends_as_one_that_never_stopped);
    kenv_stop(&env);
    return test_summary();
}
