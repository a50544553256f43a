/*
 * The backtest (lib/backtest, `optipod backtest`): a small replay computed
 * by hand, the sliding windows against a from-scratch recomputation at every
 * step, bad input; then the binary on the embedded sample comparing two
 * policies (a golden table and exact JSON totals) and its error messages.
 */
#include "test.h"

#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backtest/backtest.h"
#include "plan/plan.h"
#include "support/proc.h"
#include "support/promserver.h"
#include "engine/engine.h"
#include "support/btnaive.h"

#define MI (1024.0 * 1024.0)
#define T0 1000000

/* Median, no headroom, no rounding surprises: numbers a reader can follow. */
static void small_policy(eng_policy *p)
{
    eng_policy_defaults(p);
    p->percentile = 0.5;
    p->safety_factor = 1.0;
    p->min_samples = 1;
    p->min_history_s = 0;
    p->max_decrease = 0; /* no cap */
    p->mem_floor_peak = false;
    p->limits = ENG_LIMITS_KEEP_RATIO;
}

/*
 * Ten samples a minute apart (t = T0+60 .. T0+600): CPU 0.1 cores and 100Mi
 * for five, then 0.5 cores and 300Mi. Today: 1 CPU / 2 CPU, 512Mi / 1Gi.
 * Replayed over (T0+300, T0+600] every 120 s with a 300 s window:
 *   t=300  window k=1..5: median 0.1, 100Mi -> apply 100m/200m, 100Mi/200Mi
 *          (limits keep today's 1:2); judged k=6,7: 0.5 > 0.1, 300Mi > both
 *   t=420  window k=2..7: [.1 .1 .1 .1 .5 .5], rank 2.5 -> 0.1: unchanged;
 *          judged k=8,9: over the request and the limit again
 *   t=540  window k=4..9: [.1 .1 .5 .5 .5 .5], rank 2.5 -> 0.5: apply
 *          500m/1000m, 300Mi/600Mi; judged k=10: 0.5 and 300Mi, not above
 * CPU in force: 100m for 240 s, 500m for 60 s: 180m on average; memory
 * 100Mi, 100Mi, 300Mi: 140Mi.
 */
static void test_hand_computed_replay(void)
{
    bt_point cpu[10], mem[10];
    for (int k = 1; k <= 10; k++) {
        cpu[k - 1] = (bt_point){T0 + 60 * k, k <= 5 ? 0.1 : 0.5};
        mem[k - 1] = (bt_point){T0 + 60 * k, (k <= 5 ? 100 : 300) * MI};
    }
    bt_series s = {.cpu = cpu, .ncpu = 10, .mem = mem, .nmem = 10};
    eng_policy p;
    small_policy(&p);
    eng_container today = {.name = "app"};
    today.cpu = (eng_rl){.has_req = true, .has_lim = true, .req = 1000, .lim = 2000};
    today.mem = (eng_rl){.has_req = true, .has_lim = true, .req = 512LL << 20, .lim = 1LL << 30};
    bt_period per = {.from = T0 + 300, .to = T0 + 600, .interval_s = 120, .window_s = 300};
    bt_ws *ws = NULL;
    ASSERT_EQ_INT(bt_ws_new(&ws), 0);
    bt_result r;
    ASSERT_EQ_INT(bt_replay(ws, &p, &today, &s, &per, &r), 0);
    ASSERT_EQ_INT(r.steps, 3);
    ASSERT_EQ_INT(r.changes, 2);
    ASSERT_EQ_INT(r.cpu_changes, 2);
    ASSERT_EQ_INT(r.mem_changes, 2);
    ASSERT_EQ_INT(r.cpu_judged, 5);
    ASSERT_EQ_INT(r.cpu_over, 4);
    ASSERT_EQ_INT(r.mem_judged, 5);
    ASSERT_EQ_INT(r.mem_over_req, 4);
    ASSERT_EQ_INT(r.mem_over_lim, 4);
    ASSERT_NEAR(r.mem_peak, 300 * MI, 0);
    ASSERT_EQ_INT(r.mem_at_peak.req, 100LL << 20);
    ASSERT_EQ_INT(r.mem_at_peak.lim, 200LL << 20);
    ASSERT_NEAR(r.cpu_req_avg, 180, 1e-9);
    ASSERT_NEAR(r.mem_req_avg, 140 * MI, 1e-3);
    ASSERT_EQ_INT(r.cpu_today.req, 1000);
    ASSERT_EQ_INT(r.cpu_end.req, 500);
    ASSERT_EQ_INT(r.cpu_end.lim, 1000);
    ASSERT_EQ_INT(r.mem_end.req, 300LL << 20);
    ASSERT_EQ_INT(r.mem_end.lim, 600LL << 20);
    ASSERT_EQ_INT(r.last, ENG_APPLY);

    bt_total t = {0};
    bt_total_add(&t, &r);
    bt_total_add(&t, &r);
    ASSERT_EQ_INT(t.containers, 2);
    ASSERT_EQ_INT(t.changes, 4);
    ASSERT_EQ_INT(t.cpu_over, 8);
    ASSERT_NEAR(t.cpu_today_m, 2000, 0);
    ASSERT_NEAR(t.cpu_avg_m, 360, 1e-9);

    /* An opted-out container is never changed; usage is still judged. */
    today.opted_out = true;
    ASSERT_EQ_INT(bt_replay(ws, &p, &today, &s, &per, &r), 0);
    ASSERT_EQ_INT(r.changes, 0);
    ASSERT_EQ_INT(r.cpu_over, 0);
    ASSERT_NEAR(r.cpu_req_avg, 1000, 0);
    ASSERT_EQ_INT(r.last, ENG_SKIPPED);
    bt_ws_free(ws);
}

/* ---- the sliding windows against a recomputation from scratch -------------------------- */

static uint64_t rng = 7;
static double rnd(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / (double)(1ull << 53);
}

static void test_sliding_windows_equal_recomputation(void)
{
    enum { N = 3000 };
    static bt_point cpu[N], mem[N];
    static int64_t oom[8];
    bt_ws *ws = NULL;
    ASSERT_EQ_INT(bt_ws_new(&ws), 0);
    for (int round = 0; round < 6; round++) {
        /* two pods merged: pairs of samples at the same time, repeated values too */
        size_t noom = 0;
        double level = 0.2 + rnd();
        for (int i = 0; i < N; i++) {
            int64_t t = T0 + 30 * (i / 2);
            if (i % 500 == 0)
                level = 0.05 + 2 * rnd();
            cpu[i] = (bt_point){t, round % 2 ? floor(level * 10 * rnd()) / 10 : level * rnd()};
            mem[i] = (bt_point){t, floor((100 + 400 * level * rnd()) * MI)};
            if (i % 700 == 350 && noom < 8)
                oom[noom++] = t;
        }
        bt_series s = {cpu, N, mem, N, oom, noom};
        eng_policy p;
        eng_policy_defaults(&p);
        p.min_samples = 20;
        p.min_history_s = 600;
        p.change_threshold = round >= 3 ? 0 : 0.1;
        p.percentile = round % 3 == 0 ? 0.9 : round % 3 == 1 ? 0.95 : 0.5;
        p.oom_cooling_s = 1800;
        eng_container today = {.name = "app"};
        today.cpu = (eng_rl){.has_req = true, .has_lim = round % 2, .req = 700, .lim = 1400};
        today.mem = (eng_rl){.has_req = true, .req = 400LL << 20};
        bt_period per = {.from = T0 + 600 + round * 7,
                         .to = T0 + 30 * (N / 2) + 100,
                         .interval_s = 60 + round * 45,
                         .window_s = 1200 + round * 600};
        bt_result r;
        ASSERT_EQ_INT(bt_replay(ws, &p, &today, &s, &per, &r), 0);
        int64_t changes;
        eng_rl ce, me;
        btnaive_replay(&p, &today, &s, &per, &changes, &ce, &me);
        ASSERT_CMP_INT(r.changes, >, 2); /* the data makes it work */
        ASSERT_EQ_INT(r.changes, changes);
        ASSERT_EQ_INT(r.cpu_end.req, ce.req);
        ASSERT_EQ_INT(r.cpu_end.lim, ce.lim);
        ASSERT_EQ_INT(r.mem_end.req, me.req);
        int64_t after = 0;
        for (int i = 0; i < N; i++)
            after += cpu[i].t > per.from && cpu[i].t <= per.to;
        ASSERT_EQ_INT(r.cpu_judged, after);
    }
    bt_ws_free(ws);
}

/* ---- a fixed input's replay, pinned -------------------------------------------------------- */

/* Six containers over three days of 5-minute samples, each shaped to reach a
 * different corner of the sliding windows: a diurnal curve with spikes and
 * OOM kills; values repeated many times; memory values a few bytes apart
 * (equal to the rankers' first digits); zeros, negatives and NaNs; two pods
 * merged with a gap of hours; an opted-out container. Every field of every
 * result is pinned, bit for bit: a faster replay must not move any of them. */
enum { PIN_N = 864, PIN_C = 6 };

static size_t pin_gen(int i, bt_point *cpu, size_t *ncpu, bt_point *mem, size_t *nmem, int64_t *oom,
                      eng_container *c)
{
    rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
    size_t nc = 0, nm = 0, noom = 0;
    double m = (200 + 300 * rnd()) * MI;
    for (int k = 0; k < PIN_N; k++) {
        int64_t t = T0 + 300 * k;
        double h = (double)(t % 86400) / 3600.0, x, y;
        switch (i) {
        case 0: /* diurnal, spikes, a leak reset by OOM kills */
            x = (0.2 + 0.3 * (1 - cos(2 * M_PI * h / 24)) / 2) * (0.9 + 0.2 * rnd());
            x *= rnd() < 0.02 ? 3 : 1;
            m += 40e3 * 300 * rnd();
            if (m > 900 * MI && noom < 8) {
                oom[noom++] = t;
                m = 200 * MI;
            }
            y = floor(m);
            break;
        case 1: /* few distinct values, each repeated many times */
            x = floor(10 * rnd()) / 100;
            y = (double)(4096 * (int64_t)(60000 + 4 * (int)(4 * rnd())));
            break;
        case 2: /* memory a few bytes apart; CPU at zero, below, tiny, missing */
            x = rnd() < 0.1 ? 0 : rnd() < 0.05 ? -0.01 : rnd() < 0.03 ? NAN : 1e-3 * rnd();
            y = 1e9 + floor(300 * rnd());
            break;
        case 3: /* two pods merged, then six hours without samples */
            if (k >= 300 && k < 372)
                continue;
            x = 0.5 * rnd();
            y = floor((300 + 50 * rnd()) * MI);
            cpu[nc++] = (bt_point){t, x * 0.5};
            mem[nm++] = (bt_point){t, y * 0.9};
            break;
        default: /* steady with noise */
            x = 1.5 + 0.1 * rnd();
            y = floor((700 + 20 * rnd()) * MI);
            break;
        }
        cpu[nc++] = (bt_point){t, x};
        mem[nm++] = (bt_point){t, y};
    }
    *ncpu = nc;
    *nmem = nm;
    *c = (eng_container){.name = "app", .opted_out = i == 5};
    c->cpu = (eng_rl){.has_req = true, .has_lim = i % 2 == 0, .req = 250 + 100 * i};
    c->cpu.lim = 3 * c->cpu.req;
    c->mem = (eng_rl){.has_req = i != 4, .has_lim = i != 1, .req = 256LL << 20, .lim = 1LL << 30};
    return noom;
}

static void test_fixed_input_replay_is_pinned(void)
{
    static const char *const want[PIN_C] = {
        "steps 792 changes 65/37/30 cpu 791/37 mem 791/0/0 peak 943154544 at "
        "1/988807168/1/3955228672 avg 489.96839443742101/940927941.744627 today 250/268435456 end "
        "1/590/1/1770 1/1013972992/1/4055891968 last 1/1",
        "steps 396 changes 18/18/1 cpu 790/288 mem 790/0/0 peak 245809152 at "
        "1/295698432/0/1073741824 avg 53.937753179363746/295698432 today 350/268435456 end "
        "1/55/0/1050 1/295698432/0/1073741824 last 1/1",
        "steps 264 changes 7/7/1 cpu 790/0 mem 790/0/0 peak 1000000299 at "
        "1/1200619520/1/4802478080 avg 6.6127944140391115/1200619520 today 450/268435456 end "
        "1/5/1/15 1/1200619520/1/4802478080 last 1/1",
        "steps 791 changes 5/5/1 cpu 1436/39 mem 1436/0/0 peak 366950884 at "
        "1/432013312/1/1728053248 avg 465.90886085559197/432013312 today 550/268435456 end "
        "1/475/0/1650 1/432013312/1/1728053248 last 1/1",
        "steps 396 changes 1/1/1 cpu 790/0 mem 790/0/0 peak 754946085 at 1/901775360/1/901775360 "
        "avg 1915/901775360 today 650/268435456 end 1/1915/1/5745 1/901775360/1/901775360 last 1/1",
        "steps 264 changes 0/0/0 cpu 789/789 mem 789/789/0 peak 754817024 at "
        "1/268435456/1/1073741824 avg 750/268435456 today 750/268435456 end 1/750/0/2250 "
        "1/268435456/1/1073741824 last 2/3",
    };
    static bt_point cpu[2 * PIN_N], mem[2 * PIN_N];
    int64_t oom[8];
    bt_ws *ws = NULL;
    ASSERT_EQ_INT(bt_ws_new(&ws), 0);
    for (int i = 0; i < PIN_C; i++) {
        size_t ncpu, nmem;
        eng_container c;
        size_t noom = pin_gen(i, cpu, &ncpu, mem, &nmem, oom, &c);
        bt_series s = {cpu, ncpu, mem, nmem, oom, noom};
        eng_policy p;
        eng_policy_defaults(&p);
        p.percentile = i == 1 ? 0.5 : 0.9;
        p.safety_factor = 1.2;
        p.min_samples = 36;
        p.min_history_s = 3 * 3600;
        p.oom_cooling_s = 6 * 3600;
        bt_period per = {.from = T0 + 6 * 3600 + 60 * i,
                         .to = T0 + 300 * (PIN_N - 1) - 7 * i,
                         .interval_s = 300 * (1 + i % 3),
                         .window_s = (6 + 3 * i) * 3600};
        bt_result r;
        ASSERT_EQ_INT(bt_replay(ws, &p, &c, &s, &per, &r), 0);
        char got[512];
        snprintf(got, sizeof got,
                 "steps %lld changes %lld/%lld/%lld cpu %lld/%lld mem %lld/%lld/%lld peak %.17g "
                 "at %d/%lld/%d/%lld avg %.17g/%.17g today %lld/%lld end %d/%lld/%d/%lld "
                 "%d/%lld/%d/%lld last %d/%d",
                 (long long)r.steps, (long long)r.changes, (long long)r.cpu_changes,
                 (long long)r.mem_changes, (long long)r.cpu_judged, (long long)r.cpu_over,
                 (long long)r.mem_judged, (long long)r.mem_over_req, (long long)r.mem_over_lim,
                 r.mem_peak, r.mem_at_peak.has_req, (long long)r.mem_at_peak.req,
                 r.mem_at_peak.has_lim, (long long)r.mem_at_peak.lim, r.cpu_req_avg, r.mem_req_avg,
                 (long long)r.cpu_today.req, (long long)r.mem_today.req, r.cpu_end.has_req,
                 (long long)r.cpu_end.req, r.cpu_end.has_lim, (long long)r.cpu_end.lim,
                 r.mem_end.has_req, (long long)r.mem_end.req, r.mem_end.has_lim,
                 (long long)r.mem_end.lim, (int)r.last, (int)r.last_reason);
        ASSERT_STR_EQ(got, want[i]);
    }
    bt_ws_free(ws);
}

static void test_bad_input(void)
{
    bt_point p2[2] = {{T0 + 60, 0.1}, {T0, 0.2}}; /* not sorted */
    int64_t oom2[2] = {T0 + 60, T0};
    bt_series s = {.cpu = p2, .ncpu = 2};
    eng_policy p;
    eng_policy_defaults(&p);
    eng_container c = {.name = "app"};
    bt_period per = {.from = T0, .to = T0 + 600, .interval_s = 60, .window_s = 300};
    bt_ws *ws = NULL;
    ASSERT_EQ_INT(bt_ws_new(&ws), 0);
    bt_result r;
    ASSERT_EQ_INT(bt_replay(ws, &p, &c, &s, &per, &r), -EINVAL);
    bt_series so = {.oom = oom2, .noom = 2};
    ASSERT_EQ_INT(bt_replay(ws, &p, &c, &so, &per, &r), -EINVAL);
    bt_series empty = {0};
    per.interval_s = 0;
    ASSERT_EQ_INT(bt_replay(ws, &p, &c, &empty, &per, &r), -EINVAL);
    per.interval_s = 60;
    per.window_s = 0;
    ASSERT_EQ_INT(bt_replay(ws, &p, &c, &empty, &per, &r), -EINVAL);
    per.window_s = 300;
    per.to = per.from - 1;
    ASSERT_EQ_INT(bt_replay(ws, &p, &c, &empty, &per, &r), -EINVAL);
    /* No usage at all: every step skips for want of data, nothing changes. */
    per.to = per.from + 600;
    ASSERT_EQ_INT(bt_replay(ws, &p, &c, &empty, &per, &r), 0);
    ASSERT_EQ_INT(r.steps, 11);
    ASSERT_EQ_INT(r.changes, 0);
    ASSERT_EQ_INT(r.last, ENG_SKIPPED);
    ASSERT_EQ_INT(r.last_reason, ENG_R_INSUFFICIENT_DATA);
    bt_ws_free(ws);
}

/* ---- the binary ---------------------------------------------------------------------------- */

#define SAMPLE "docs/sample"
static char out_path[64], err_path[64];
static char *out_text, *err_text;

static int run_backtest(const char *args)
{
    if (!out_path[0]) {
        snprintf(out_path, sizeof out_path, "/tmp/optipod-bt-out-%d", (int)getpid());
        snprintf(err_path, sizeof err_path, "/tmp/optipod-bt-err-%d", (int)getpid());
    }
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "backtest %s", args);
    return proc_run_optipod(cmd, out_path, err_path, &out_text, &err_text);
}

static const cJSON *policy_run(const cJSON *doc, const char *name)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(doc, "policies"))
    {
        if (strcmp(cJSON_GetObjectItem(p, "policy")->valuestring, name) == 0)
            return p;
    }
    return NULL;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    ASSERT(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    ASSERT(cJSON_IsString(v));
    return v->valuestring;
}

/* Two policies over the sample's second day: "steady" (P95 x 1.3, hourly, 20 %
 * threshold) changes little and never lets CPU run over its request; "tight"
 * (P90 x 1.05, every 5 minutes, 5 %) saves more and pays with changes and
 * throttling pressure. The table is golden; the JSON's totals are exact. */
static void test_policies_side_by_side(void)
{
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --usage " SAMPLE "/usage.csv --policy " SAMPLE
                               "/backtest/steady.yaml --policy " SAMPLE "/backtest/tight.yaml"),
                  0);
    ASSERT_STR_EQ(err_text, "");
    size_t glen;
    char *golden = test_read_file("test/data/backtest/sample.table", &glen);
    if (strcmp(out_text, golden) != 0)
        test_fail(__FILE__, __LINE__, "table differs from test/data/backtest/sample.table:\n%s",
                  out_text);
    free(golden);
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --usage " SAMPLE "/usage.csv --policy " SAMPLE
                               "/backtest/steady.yaml --policy " SAMPLE
                               "/backtest/tight.yaml -o json"),
                  0);
    cJSON *doc = cJSON_Parse(out_text);
    ASSERT_NOT_NULL(doc);
    ASSERT_STR_EQ(str(doc, "from"), "2026-01-06T00:00:00Z");
    ASSERT_STR_EQ(str(doc, "to"), "2026-01-07T00:00:00Z");
    const cJSON *steady = policy_run(doc, "steady"), *tight = policy_run(doc, "tight");
    ASSERT_NOT_NULL(steady);
    ASSERT_NOT_NULL(tight);
    ASSERT_STR_EQ(str(steady, "interval"), "1h");
    ASSERT_STR_EQ(str(tight, "window"), "12h");
    const cJSON *ts = cJSON_GetObjectItem(steady, "total"),
                *tt = cJSON_GetObjectItem(tight, "total");
    ASSERT_EQ_INT(num(ts, "containers"), 6);
    ASSERT_EQ_INT(num(ts, "changes"), 9);
    ASSERT_EQ_INT(num(tt, "changes"), 60);
    ASSERT_NEAR(num(ts, "cpuAboveRequestPercent"), 0, 0);
    ASSERT_NEAR(num(tt, "cpuAboveRequestPercent"), 13.2, 0.05);
    ASSERT_STR_EQ(str(tt, "cpuSaving"), "236m");
    ASSERT_STR_EQ(str(ts, "cpuSaving"), "-628m");
    /* web, replayed by tight: the request follows the diurnal curve down */
    const cJSON *c;
    int seen = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(tight, "containers"))
    {
        if (strcmp(str(c, "workload"), "web") != 0)
            continue;
        seen = 1;
        ASSERT_STR_EQ(str(c, "kind"), "Deployment");
        ASSERT_EQ_INT(num(c, "steps"), 289); /* every 5 minutes, both ends */
        ASSERT_EQ_INT(num(c, "changes"), 18);
        ASSERT_EQ_INT(num(c, "cpuSamples"), 3 * 720); /* three pods, 2-minute samples */
        ASSERT_STR_EQ(str(c, "cpuRequestToday"), "1");
        ASSERT_STR_EQ(str(c, "cpuRequestEnd"), "505m");
        ASSERT_EQ_INT(num(c, "memoryAboveLimit"), 0);
    }
    ASSERT(seen);
    cJSON_Delete(doc);
    /* no --policy: the CRD defaults */
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --usage " SAMPLE "/usage.csv -o json"), 0);
    doc = cJSON_Parse(out_text);
    ASSERT_NOT_NULL(policy_run(doc, "crd-defaults"));
    cJSON_Delete(doc);
}

static void test_bad_input_is_named(void)
{
    ASSERT_EQ_INT(run_backtest("--usage " SAMPLE "/usage.csv"), 2);
    ASSERT_STR_CONTAINS(err_text, "optipod backtest: -f is required");
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base"), 2);
    ASSERT_STR_CONTAINS(err_text, "exactly one of --usage and --prometheus-url is required");
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --usage x --prometheus-url http://127.0.0.1:1"),
                  2);
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --prometheus-url http://127.0.0.1:1 "
                               "--prometheus-header 'X-Scope-OrgID team-a'"),
                  2);
    ASSERT_STR_CONTAINS(err_text, "flag --prometheus-header: \"X-Scope-OrgID team-a\"");
    /* a server that is not there: named, with the namespace of the first query (the
     * kube-state-metrics owners, as the controller asks first) */
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --prometheus-url http://127.0.0.1:1 "
                               "--prometheus-bearer-token-file /nonexistent-token"),
                  1);
    ASSERT_STR_CONTAINS(err_text, "prometheus 'http://127.0.0.1:1': /api/v1/query:");
    ASSERT_STR_CONTAINS(err_text, "owners in namespace shop");
    ASSERT_STR_CONTAINS(err_text, "cannot read the bearer token file");
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --usage x -o yaml"), 2);
    ASSERT_STR_CONTAINS(err_text, "-o must be table or json");
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --usage x --from yesterday"), 2);
    ASSERT_STR_CONTAINS(err_text, "--from must be an RFC 3339 time");
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --usage x --policy /nonexistent.yaml"), 2);
    ASSERT_STR_CONTAINS(err_text, "policy '/nonexistent.yaml'");
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --usage /nonexistent.csv"), 1);
    ASSERT_STR_CONTAINS(err_text, "usage '/nonexistent.csv'");
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --usage " SAMPLE "/usage.csv --policy " SAMPLE
                               "/policy.yaml"),
                  1);
    ASSERT_STR_CONTAINS(err_text, "the usage spans 2026-01-05T00:00:00Z .. 2026-01-07T00:00:00Z");
    ASSERT_STR_CONTAINS(err_text, "a full window (48h)");
    ASSERT_STR_EQ(out_text, "");
    /* --from moves it back: replayed, over the last day only */
    ASSERT_EQ_INT(run_backtest("-f " SAMPLE "/base --usage " SAMPLE "/usage.csv --policy " SAMPLE
                               "/policy.yaml --from 2026-01-06T00:00:00Z -o json"),
                  0);
    cJSON *doc = cJSON_Parse(out_text);
    const cJSON *shop = policy_run(doc, "shop");
    ASSERT_NOT_NULL(shop);
    ASSERT_STR_EQ(str(shop, "window"), "48h");
    ASSERT_EQ_INT(num(cJSON_GetObjectItem(shop, "total"), "containers"), 6);
    cJSON_Delete(doc);
    /* manifests the usage does not know */
    ASSERT_EQ_INT(run_backtest("-f test/data/plan/bad --usage " SAMPLE "/usage.csv"), 1);
    ASSERT_STR_CONTAINS(err_text, "no usage of any container in the manifests");
}

/* plan's reader keeps every sample for a replay (plan_keep_history), through the end of
 * the file too, where it otherwise trims each series to the decision window. */
static int count_mem(const plan_workload *w, size_t ctr, const char *pod, const plan_sample *cpu,
                     size_t ncpu, const plan_sample *mem, size_t nmem, const plan_sample *oom,
                     size_t noom, void *ud)
{
    size_t *n = ud;
    if (!strcmp(pod, "web-7d9f8c6b5d-x2k4p"))
        *n += nmem;
    return 0;
}

static void test_plan_keeps_the_whole_history(void)
{
    for (int keep = 0; keep < 2; keep++) {
        plan p;
        plan_init(&p);
        if (keep)
            plan_keep_history(&p);
        operr err;
        ASSERT_EQ_INT(plan_load_manifests(&p, SAMPLE "/base", &err), 0);
        ASSERT_EQ_INT(plan_load_usage(&p, SAMPLE "/usage.csv", &err), 0);
        size_t n = 0;
        ASSERT_EQ_INT(plan_foreach_usage(&p, count_mem, &n), 0);
        if (keep)
            ASSERT_EQ_INT(n, 1441); /* two days, both ends */
        else
            ASSERT_CMP_INT(n, <, 1441);
        plan_release(&p);
    }
}

/* ---- from Prometheus ----------------------------------------------------------------------- */

static promsrv prom; /* static: promsrv's atexit hook reads it */

static char *tool_output(const char *args, size_t *len)
{
    const char *b = getenv("OPTIPOD_BUILD");
    char cmd[2 * PATH_MAX], path[64];
    snprintf(path, sizeof path, "/tmp/optipod-bt-om-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s/tools/gen_sample %s >%s", b && *b ? b : "build/rel", args, path);
    ASSERT_EQ_INT(system(cmd), 0);
    char *s = test_read_file(path, len);
    unlink(path);
    return s;
}

/* The same history from Prometheus (range queries, the pods found by their
 * generated names) and from the same samples as an OpenMetrics file gives
 * the same replay: memory exactly (every 2-minute step lands on a sample),
 * CPU within a step of rounding (rate() extrapolates the window's second
 * sample; plan's reader does not). */
static void test_prometheus_history_matches_the_file(void)
{
    if (!promsrv_available())
        test_skip("prometheus/promtool not installed: the --prometheus-url path is not checked");
    int64_t end = (int64_t)time(NULL) - 3600;
    char arg[64];
    snprintf(arg, sizeof arg, "--openmetrics --end %lld", (long long)end);
    size_t len;
    char *om = tool_output(arg, &len);
    /* the newest sample: the last line before "# EOF" ends with its time */
    char *last = om + len - strlen("# EOF\n") - 1;
    while (last > om && last[-1] != ' ')
        last--;
    int64_t newest = strtoll(last, NULL, 10);
    ASSERT_CMP_INT(newest, >, end - 86400);
    operr err;
    int rc = promsrv_start(&prom, om, len, &err);
    char om_path[64];
    snprintf(om_path, sizeof om_path, "/tmp/optipod-bt-file-%d.om", (int)getpid());
    FILE *f = fopen(om_path, "w");
    ASSERT_NOT_NULL(f);
    fwrite(om, 1, len, f);
    fclose(f);
    free(om);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "promsrv: %s", err.msg);
    char from[32], to[32], args[4 * PATH_MAX];
    time_t tf = (time_t)(newest - 86400), tt = (time_t)newest;
    strftime(from, sizeof from, "%Y-%m-%dT%H:%M:%SZ", gmtime(&tf));
    strftime(to, sizeof to, "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));
    snprintf(args, sizeof args,
             "-f " SAMPLE "/base --usage %s --policy " SAMPLE
             "/backtest/steady.yaml --policy " SAMPLE
             "/backtest/tight.yaml --from %s --to %s -o json",
             om_path, from, to);
    ASSERT_EQ_INT(run_backtest(args), 0);
    cJSON *file = cJSON_Parse(out_text);
    snprintf(args, sizeof args,
             "-f " SAMPLE "/base --prometheus-url %s --step 2m --policy " SAMPLE
             "/backtest/steady.yaml --policy " SAMPLE
             "/backtest/tight.yaml --from %s --to %s -o json",
             prom.url, from, to);
    rc = run_backtest(args);
    unlink(om_path);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "backtest from Prometheus: %s", err_text);
    cJSON *pr = cJSON_Parse(out_text);
    ASSERT_NOT_NULL(file);
    ASSERT_NOT_NULL(pr);
    const char *names[2] = {"steady", "tight"};
    for (int k = 0; k < 2; k++) {
        const cJSON *a = cJSON_GetObjectItem(policy_run(file, names[k]), "containers");
        const cJSON *b = cJSON_GetObjectItem(policy_run(pr, names[k]), "containers");
        ASSERT_EQ_INT(cJSON_GetArraySize(a), 6);
        ASSERT_EQ_INT(cJSON_GetArraySize(b), 6);
        for (int i = 0; i < 6; i++) {
            const cJSON *x = cJSON_GetArrayItem(a, i), *y = cJSON_GetArrayItem(b, i);
            ASSERT_STR_EQ(str(x, "container"), str(y, "container"));
            ASSERT_EQ_INT(num(x, "cpuSamples"), num(y, "cpuSamples"));
            ASSERT_EQ_INT(num(x, "memorySamples"), num(y, "memorySamples"));
            ASSERT_STR_EQ(str(x, "memoryPeak"), str(y, "memoryPeak"));
            ASSERT_STR_EQ(str(x, "memoryRequestEnd"), str(y, "memoryRequestEnd"));
            ASSERT_EQ_INT(num(x, "memoryAboveLimit"), num(y, "memoryAboveLimit"));
            /* a CPU decision near a threshold may go one way or the other */
            ASSERT_CMP_INT(fabs(num(x, "changes") - num(y, "changes")), <=, 1);
            char *e;
            double cx = strtod(str(x, "cpuRequestEnd"), &e),
                   cy = strtod(str(y, "cpuRequestEnd"), &e);
            ASSERT_CMP_INT(fabs(cx - cy) * 100, <=, cx * 5);
        }
    }
    cJSON_Delete(file);
    cJSON_Delete(pr);
    promsrv_stop(&prom);
}

int main(void)
{
    TEST_RUN(test_hand_computed_replay);
    TEST_RUN(test_sliding_windows_equal_recomputation);
    TEST_RUN(test_fixed_input_replay_is_pinned);
    TEST_RUN(test_bad_input);
    TEST_RUN(test_policies_side_by_side);
    TEST_RUN(test_bad_input_is_named);
    TEST_RUN(test_plan_keeps_the_whole_history);
    TEST_RUN(test_prometheus_history_matches_the_file);
    if (out_path[0]) {
        unlink(out_path);
        unlink(err_path);
    }
    free(out_text);
    free(err_text);
    return test_summary();
}
