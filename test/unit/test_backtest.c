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
#include <unistd.h>

#include "backtest/backtest.h"
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
    const char *b = getenv("OPTIPOD_BUILD");
    char bin[PATH_MAX], cmd[4 * PATH_MAX];
    snprintf(bin, sizeof bin, "%s/optipod", b && *b ? b : "build/rel");
    if (access(bin, X_OK) != 0)
        test_skip("%s not built (make %s)", bin, bin);
    if (!out_path[0]) {
        snprintf(out_path, sizeof out_path, "/tmp/optipod-bt-out-%d", (int)getpid());
        snprintf(err_path, sizeof err_path, "/tmp/optipod-bt-err-%d", (int)getpid());
    }
    snprintf(cmd, sizeof cmd, "%s backtest %s >%s 2>%s", bin, args, out_path, err_path);
    int st = system(cmd);
    ASSERT(WIFEXITED(st));
    free(out_text);
    free(err_text);
    size_t n;
    out_text = test_read_file(out_path, &n);
    err_text = test_read_file(err_path, &n);
    return WEXITSTATUS(st);
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
    const cJSON *ts = cJSON_GetObjectItem(steady, "total"), *tt = cJSON_GetObjectItem(tight, "total");
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
    ASSERT_STR_CONTAINS(err_text, "--usage is required");
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

int main(void)
{
    TEST_RUN(test_hand_computed_replay);
    TEST_RUN(test_sliding_windows_equal_recomputation);
    TEST_RUN(test_bad_input);
    TEST_RUN(test_policies_side_by_side);
    TEST_RUN(test_bad_input_is_named);
    if (out_path[0]) {
        unlink(out_path);
        unlink(err_path);
    }
    free(out_text);
    free(err_text);
    return test_summary();
}
