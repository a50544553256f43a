#include "engine/engine.h"
#include "engine/quantity.h"
#include "test.h"

#include <errno.h>
#include <math.h>

#define MI  KQ_MI
#define GI  KQ_GI
#define NOW 1700000000

static eng_policy pol(void)
{
    eng_policy p;
    eng_policy_defaults(&p);
    return p;
}

/* A container with a week of history and no current resources. */
static eng_container ctr(double cpu_cores, int64_t mem_bytes)
{
    eng_container c;
    memset(&c, 0, sizeof c);
    c.name = "app";
    c.use.cpu_cores = cpu_cores;
    c.use.mem_bytes = mem_bytes;
    c.use.mem_peak_bytes = mem_bytes;
    c.use.samples = 7 * 1440;
    c.use.span_s = 7 * 86400;
    return c;
}

static eng_rl rl(int64_t req, int64_t lim)
{
    eng_rl r = {.has_req = req > 0, .has_lim = lim > 0, .req = req, .lim = lim};
    return r;
}

static eng_result rec(const eng_policy *p, const eng_container *c, bool hpa)
{
    eng_facts f = {.now = NOW, .hpa_cpu = hpa};
    eng_result r;
    eng_recommend(p, &f, c, &r);
    /* Invariants of every result: a limit is never below the request, and
     * only applied resources carry a limit. */
    ASSERT(!r.cpu.has_lim || (r.cpu.lim >= r.cpu.req && r.cpu.decision == ENG_APPLY));
    ASSERT(!r.mem.has_lim || (r.mem.lim >= r.mem.req && r.mem.decision == ENG_APPLY));
    return r;
}

static const eng_step *step(const eng_res *r, eng_step_kind k)
{
    for (size_t i = 0; i < r->nsteps; i++)
        if (r->steps[i].kind == k)
            return &r->steps[i];
    return NULL;
}

static void test_percentile_times_safety_then_round(void)
{
    eng_policy p = pol();
    eng_container c = ctr(0.21, 200 * MI);
    eng_result r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.decision, ENG_APPLY);
    ASSERT_EQ_INT(r.cpu.decision, ENG_APPLY);
    /* 210m x 1.15 = 241.5m -> 242m -> rounded up to 245m. */
    ASSERT_EQ_INT(r.cpu.req, 245);
    ASSERT_EQ_INT(r.cpu.steps[0].kind, ENG_STEP_PERCENTILE);
    ASSERT_EQ_INT(r.cpu.steps[0].after, 210);
    ASSERT_EQ_INT(r.cpu.steps[1].kind, ENG_STEP_SAFETY);
    ASSERT_EQ_INT(r.cpu.steps[1].after, 242);
    ASSERT_EQ_INT(r.cpu.steps[2].kind, ENG_STEP_ROUND);
    ASSERT_EQ_INT(r.cpu.steps[2].after, 245);
    /* 200Mi x 1.15 = 230Mi exactly: no rounding step. */
    ASSERT_EQ_INT(r.mem.req, 230 * MI);
    ASSERT_NULL(step(&r.mem, ENG_STEP_ROUND));
    ASSERT(!r.cpu.has_lim && !r.mem.has_lim); /* keep-ratio, and there was no limit */
}

static void test_rounding_table(void)
{
    static const struct {
        double cpu;
        int64_t mem, want_cpu, want_mem;
    } t[] = {
        {0, 0, 5, MI},                   /* never zero: one unit */
        {0.001, 1, 5, MI},               /* 1m -> 5m, 1 byte -> 1Mi */
        {0.005, MI, 5, MI},              /* exact units stay */
        {0.0051, MI + 1, 10, 2 * MI},    /* 5.1m -> 10m; 1Mi+1 -> 2Mi */
        {1.0, 512 * MI, 1000, 512 * MI}, /* whole core */
        {1.099, 1000000, 1100, MI},      /* 1099m (no float noise) -> 1100m */
        {2.4151, 3 * GI / 2, 2420, 1536 * MI},
    };
    eng_policy p = pol();
    p.safety_factor = 1.0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        eng_container c = ctr(t[i].cpu, t[i].mem);
        eng_result r = rec(&p, &c, false);
        if (r.cpu.req != t[i].want_cpu || r.mem.req != t[i].want_mem)
            test_fail(__FILE__, __LINE__, "row %zu: cpu %" PRId64 " mem %" PRId64, i, r.cpu.req,
                      r.mem.req);
    }
}

static void test_clamps_to_bounds(void)
{
    eng_policy p = pol();
    p.cpu.min = 100;
    p.cpu.max = 2000;
    p.mem.min = 64 * MI;
    p.mem.max = 2 * GI;
    static const struct {
        double cpu;
        int64_t mem, peak;
        int64_t want_cpu, want_mem;
        eng_step_kind cpu_step, mem_step;
    } t[] = {
        {0.01, 10 * MI, 10 * MI, 100, 64 * MI, ENG_STEP_CLAMP_MIN, ENG_STEP_CLAMP_MIN},
        {5.0, 4 * GI, 4 * GI, 2000, 2 * GI, ENG_STEP_CLAMP_MAX, ENG_STEP_CLAMP_MAX},
        /* The max bound wins over the peak floor. */
        {0.5, GI, 3 * GI, 575, 2 * GI, ENG_STEP_SAFETY, ENG_STEP_CLAMP_MAX},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        eng_container c = ctr(t[i].cpu, t[i].mem);
        c.use.mem_peak_bytes = t[i].peak;
        eng_result r = rec(&p, &c, false);
        ASSERT_EQ_INT(r.cpu.req, t[i].want_cpu);
        ASSERT_EQ_INT(r.mem.req, t[i].want_mem);
        ASSERT_NOT_NULL(step(&r.cpu, t[i].cpu_step));
        ASSERT_NOT_NULL(step(&r.mem, t[i].mem_step));
    }
    /* The bound step records what it cut. */
    eng_container c = ctr(5.0, 4 * GI);
    eng_result r = rec(&p, &c, false);
    ASSERT_EQ_INT(step(&r.cpu, ENG_STEP_CLAMP_MAX)->before, 5750);
    ASSERT_EQ_INT(step(&r.cpu, ENG_STEP_CLAMP_MAX)->after, 2000);
}

static void test_memory_floor_at_peak(void)
{
    eng_policy p = pol();
    eng_container c = ctr(0.1, 400 * MI);
    c.use.mem_peak_bytes = 700 * MI;
    eng_result r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.mem.req, 700 * MI);
    const eng_step *s = step(&r.mem, ENG_STEP_PEAK_FLOOR);
    ASSERT_NOT_NULL(s);
    ASSERT_EQ_INT(s->before, 460 * MI);
    ASSERT_EQ_INT(s->after, 700 * MI);
    /* Below the percentile x safety the peak changes nothing. */
    c.use.mem_peak_bytes = 450 * MI;
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.mem.req, 460 * MI);
    ASSERT_NULL(step(&r.mem, ENG_STEP_PEAK_FLOOR));
    /* Turned off by the policy. */
    p.mem_floor_peak = false;
    c.use.mem_peak_bytes = 700 * MI;
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.mem.req, 460 * MI);
}

/* Hysteresis: a change below the threshold (10 %) is not made; at or above it is. */
static void test_threshold_hysteresis(void)
{
    static const struct {
        double cpu;
        int64_t mem;
        eng_decision want;
    } t[] = {
        {1.099, 1099000, ENG_UNCHANGED}, /* +9.9 % */
        {1.101, 1101000, ENG_APPLY},     /* +10.1 % */
        {0.901, 901000, ENG_UNCHANGED},  /* -9.9 % */
        {0.899, 899000, ENG_APPLY},      /* -10.1 % */
        {1.1, 1100000, ENG_APPLY},       /* exactly 10 %: not below the threshold */
        {1.0, 1000000, ENG_UNCHANGED},   /* no change at all */
    };
    eng_policy p = pol();
    p.safety_factor = 1.0;
    p.cpu_round_m = 1;
    p.mem_round_bytes = 1;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        eng_container c = ctr(t[i].cpu, t[i].mem);
        c.cpu = rl(1000, 0);
        c.mem = rl(1000000, 0);
        eng_result r = rec(&p, &c, false);
        if (r.cpu.decision != t[i].want || r.mem.decision != t[i].want)
            test_fail(__FILE__, __LINE__, "row %zu: cpu %s mem %s", i,
                      eng_decision_str(r.cpu.decision), eng_decision_str(r.mem.decision));
        const eng_step *s = step(&r.cpu, ENG_STEP_THRESHOLD);
        ASSERT_NOT_NULL(s);
        ASSERT_EQ_INT(s->before, 1000);
        ASSERT_NEAR(s->aux, fabs(t[i].cpu - 1.0), 1e-9);
        if (t[i].want == ENG_UNCHANGED) {
            ASSERT_EQ_INT(r.cpu.req, 1000); /* the current value is kept */
            ASSERT_EQ_INT(r.cpu.reason, ENG_R_WITHIN_THRESHOLD);
            ASSERT_EQ_INT(r.decision, ENG_UNCHANGED);
            ASSERT_EQ_INT(r.reason, ENG_R_WITHIN_THRESHOLD);
        } else {
            ASSERT_EQ_INT(r.cpu.req, (int64_t)llround(t[i].cpu * 1000));
            ASSERT_EQ_INT(r.mem.req, t[i].mem);
        }
    }
    /* A current request outside the bounds is corrected even for a small change. */
    p.cpu.max = 960;
    eng_container c = ctr(0.99, 1000000);
    c.cpu = rl(1000, 0);
    eng_result r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.cpu.decision, ENG_APPLY);
    ASSERT_EQ_INT(r.cpu.req, 960);
}

static void test_decrease_is_capped_per_step(void)
{
    eng_policy p = pol();
    eng_container c = ctr(0.1, 100 * MI);
    c.cpu = rl(1000, 0);
    c.mem = rl(2 * GI, 0);
    eng_result r = rec(&p, &c, false);
    /* 115m and 115Mi would be wanted; one step removes at most half. */
    ASSERT_EQ_INT(r.cpu.req, 500);
    ASSERT_EQ_INT(r.mem.req, GI);
    const eng_step *s = step(&r.cpu, ENG_STEP_DECREASE_CAP);
    ASSERT_NOT_NULL(s);
    ASSERT_EQ_INT(s->before, 115);
    ASSERT_EQ_INT(s->after, 500);
    /* The next cycle goes on from there. */
    c.cpu = rl(500, 0);
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.cpu.req, 250);
    /* Increases are never capped. */
    c = ctr(4.0, 4 * GI);
    c.cpu = rl(100, 0);
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.cpu.req, 4600);
    ASSERT_NULL(step(&r.cpu, ENG_STEP_DECREASE_CAP));
    /* Disabled: straight down. */
    p.max_decrease = 0;
    c = ctr(0.1, 100 * MI);
    c.cpu = rl(1000, 0);
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.cpu.req, 115);
    /* A max bound below the current value wins over the gradual decrease. */
    p.max_decrease = 0.5;
    p.cpu.max = 1000;
    c.cpu = rl(4000, 0);
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.cpu.req, 1000);
}

static void test_oom_bump_and_cooling(void)
{
    eng_policy p = pol();
    /* OOM an hour ago at 300Mi: at least max(300Mi + 100Mi, 300Mi x 1.2) = 400Mi. */
    eng_container c = ctr(0.1, 200 * MI);
    c.use.mem_peak_bytes = 250 * MI;
    c.use.oom_count = 2;
    c.use.oom_last = NOW - 3600;
    c.use.oom_mem_bytes = 300 * MI;
    c.mem = rl(256 * MI, 300 * MI);
    eng_result r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.mem.decision, ENG_APPLY);
    ASSERT_EQ_INT(r.mem.req, 400 * MI);
    const eng_step *s = step(&r.mem, ENG_STEP_OOM_BUMP);
    ASSERT_NOT_NULL(s);
    ASSERT_EQ_INT(s->before, 250 * MI);
    ASSERT_EQ_INT(s->after, 400 * MI);
    ASSERT_NEAR(s->aux2, 2, 0);
    /* Keep-ratio limit follows: 300/256 of 400Mi = 468.75Mi -> 469Mi. */
    ASSERT(r.mem.has_lim);
    ASSERT_EQ_INT(r.mem.lim, 469 * MI);

    /* Large containers: x1.2 beats +100Mi. 1Gi x 1.2 = 1228.8Mi -> 1229Mi. */
    c.use.oom_mem_bytes = GI;
    c.mem = rl(GI, GI);
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.mem.req, 1229 * MI);

    /* Memory at the OOM unknown: grows from the current limit. */
    c.use.oom_mem_bytes = 0;
    c.mem = rl(256 * MI, 512 * MI);
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.mem.req, 614 * MI + MI); /* 512Mi x 1.2 = 614.4Mi -> 615Mi */

    /* Cooling: usage says 115Mi, but within 24 h of an OOM memory is not lowered. */
    c = ctr(0.1, 100 * MI);
    c.use.oom_count = 1;
    c.use.oom_last = NOW - 7200;
    c.use.oom_mem_bytes = 100 * MI;
    c.mem = rl(2 * GI, 0);
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.mem.decision, ENG_UNCHANGED);
    ASSERT_EQ_INT(r.mem.req, 2 * GI);
    s = step(&r.mem, ENG_STEP_OOM_COOLING);
    ASSERT_NOT_NULL(s);
    ASSERT_EQ_INT(s->after, 2 * GI);
    ASSERT_NEAR(s->aux, 7200, 0);
    /* After the cooling period the normal (capped) decrease resumes. */
    c.use.oom_last = NOW - 25 * 3600;
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.mem.decision, ENG_APPLY);
    ASSERT_EQ_INT(r.mem.req, GI);
    ASSERT_NULL(step(&r.mem, ENG_STEP_OOM_BUMP));
    ASSERT_NULL(step(&r.mem, ENG_STEP_OOM_COOLING));

    /* An OOM bump is made even when it is a small change (hysteresis would
     * otherwise leave the value that just got killed). */
    c = ctr(0.1, 100 * MI);
    c.use.oom_count = 1;
    c.use.oom_last = NOW - 60;
    c.use.oom_mem_bytes = 300 * MI;
    c.mem = rl(380 * MI, 0);
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.mem.decision, ENG_APPLY);
    ASSERT_EQ_INT(r.mem.req, 400 * MI);
    ASSERT_NEAR(step(&r.mem, ENG_STEP_THRESHOLD)->aux, 20.0 / 380, 1e-9);

    /* Too little history refuses CPU, but a recent OOM still bumps memory. */
    c = ctr(0.1, 0);
    c.use.samples = 10;
    c.use.span_s = 600;
    c.use.oom_count = 1;
    c.use.oom_last = NOW - 60;
    c.use.oom_mem_bytes = 300 * MI;
    c.mem = rl(256 * MI, 300 * MI);
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.cpu.decision, ENG_SKIPPED);
    ASSERT_EQ_INT(r.cpu.reason, ENG_R_INSUFFICIENT_DATA);
    ASSERT_EQ_INT(r.mem.decision, ENG_APPLY);
    ASSERT_EQ_INT(r.mem.req, 400 * MI);
    ASSERT_EQ_INT(r.mem.steps[0].kind, ENG_STEP_OOM_BUMP);
    ASSERT_NULL(step(&r.mem, ENG_STEP_PERCENTILE));
}

static void test_limits_policies(void)
{
    static const struct {
        eng_limits mode;
        double mult;
        int64_t req, lim;  /* current CPU */
        bool want_has_lim; /* a limit to write */
        int64_t want_req, want_lim;
    } t[] = {
        /* keep-ratio with an original 1:2 ratio */
        {ENG_LIMITS_KEEP_RATIO, 0, 100, 200, true, 575, 1150},
        /* keep-ratio 1:1.5 with rounding: 575 x 1.5 = 862.5 -> 863 -> 865 */
        {ENG_LIMITS_KEEP_RATIO, 0, 200, 300, true, 575, 865},
        /* keep-ratio without an original limit: none is created */
        {ENG_LIMITS_KEEP_RATIO, 0, 100, 0, false, 575, 0},
        /* keep-ratio with only a limit (the request defaulted to it): 1:1 */
        {ENG_LIMITS_KEEP_RATIO, 0, 0, 300, true, 575, 575},
        /* keep-ratio never keeps a limit below the request */
        {ENG_LIMITS_KEEP_RATIO, 0, 300, 200, true, 575, 575},
        /* multiplier: set even when there was none */
        {ENG_LIMITS_MULTIPLIER, 2.0, 100, 0, true, 575, 1150},
        {ENG_LIMITS_MULTIPLIER, 1.3, 100, 200, true, 575, 750}, /* 747.5 -> 750 */
        /* requests-only: limits untouched; the request stays under the limit */
        {ENG_LIMITS_REQUESTS_ONLY, 0, 100, 1000, false, 575, 0},
        {ENG_LIMITS_REQUESTS_ONLY, 0, 100, 400, false, 400, 0},
        {ENG_LIMITS_REQUESTS_ONLY, 0, 100, 0, false, 575, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        eng_policy p = pol();
        p.limits = t[i].mode;
        p.limit_multiplier = t[i].mult;
        eng_container c = ctr(0.5, 256 * MI);
        c.cpu = rl(t[i].req, t[i].lim);
        eng_result r = rec(&p, &c, false);
        if (r.cpu.decision != ENG_APPLY || r.cpu.req != t[i].want_req ||
            r.cpu.has_lim != t[i].want_has_lim || (t[i].want_has_lim && r.cpu.lim != t[i].want_lim))
            test_fail(__FILE__, __LINE__, "row %zu: %s req %" PRId64 " lim %d/%" PRId64, i,
                      eng_decision_str(r.cpu.decision), r.cpu.req, r.cpu.has_lim, r.cpu.lim);
        if (t[i].mode == ENG_LIMITS_REQUESTS_ONLY && t[i].want_req == t[i].lim)
            ASSERT_NOT_NULL(step(&r.cpu, ENG_STEP_LIMIT_CAP));
    }
    /* Memory keeps its own ratio: 256Mi:512Mi -> 460Mi:920Mi. */
    eng_policy p = pol();
    eng_container c = ctr(0.5, 400 * MI);
    c.mem = rl(256 * MI, 512 * MI);
    eng_result r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.mem.req, 460 * MI);
    ASSERT_EQ_INT(r.mem.lim, 920 * MI);
    /* An unchanged request writes no limit either. */
    c = ctr(0.5, 256 * MI);
    c.cpu = rl(575, 1150);
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.cpu.decision, ENG_UNCHANGED);
    ASSERT(!r.cpu.has_lim);
}

/* Never a limit below the request, over many generated inputs and all modes. */
static void test_limit_never_below_request_generated(void)
{
    uint64_t x = 0x2545F4914F6CDD1DULL;
    for (int i = 0; i < 30000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        eng_policy p = pol();
        p.limits = (eng_limits)(x % 3);
        p.limit_multiplier = 1 + (double)((x >> 3) % 40) / 10;
        p.cpu.max = (x >> 10) & 1 ? 0 : 500;
        eng_container c = ctr((double)((x >> 12) % 8000) / 1000, (int64_t)((x >> 24) % 4096) * MI);
        c.cpu = rl((int64_t)((x >> 36) % 3000), (int64_t)((x >> 48) % 3000));
        c.mem = rl((int64_t)((x >> 40) % 2048) * MI, (int64_t)((x >> 52) % 2048) * MI);
        c.use.mem_peak_bytes = c.use.mem_bytes + (int64_t)((x >> 20) % 64) * MI;
        rec(&p, &c, (x >> 60) & 1); /* asserts the invariants */
    }
}

static uint64_t xs(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int64_t pick_i(uint64_t *x)
{
    static const int64_t v[] = {0,
                                1,
                                -1,
                                5,
                                1000,
                                MI,
                                GI,
                                INT64_MAX,
                                INT64_MIN,
                                INT64_MAX / 2,
                                -(INT64_MAX / 2),
                                (int64_t)1 << 60};
    return v[xs(x) % (sizeof v / sizeof v[0])];
}

static double pick_d(uint64_t *x)
{
    static const double v[] = {0,      0.5, 1,        1.15,      -1,     1e300,
                               -1e300, NAN, INFINITY, -INFINITY, 1e-300, 2.0};
    return v[xs(x) % (sizeof v / sizeof v[0])];
}

/* Hostile numbers everywhere (extremes, negatives, NaN, infinities): no
 * undefined behaviour (the sanitizer build checks), the invariants hold, and
 * the explanation renders. */
static void test_survives_hostile_inputs(void)
{
    uint64_t x = 0xDEADBEEFCAFEF00DULL;
    for (int i = 0; i < 20000; i++) {
        eng_policy p = pol();
        p.percentile = pick_d(&x);
        p.safety_factor = pick_d(&x);
        p.cpu.min = pick_i(&x);
        p.cpu.max = pick_i(&x);
        p.mem.min = pick_i(&x);
        p.mem.max = pick_i(&x);
        p.min_samples = pick_i(&x);
        p.min_history_s = pick_i(&x);
        p.change_threshold = pick_d(&x);
        p.max_decrease = pick_d(&x);
        p.oom_bump_bytes = pick_i(&x);
        p.oom_bump_factor = pick_d(&x);
        p.oom_cooling_s = pick_i(&x);
        p.limits = (eng_limits)(xs(&x) % 4);
        p.limit_multiplier = pick_d(&x);
        if (i % 2)
            p.cpu_round_m = pick_i(&x);
        if (i % 3)
            p.mem_round_bytes = pick_i(&x);
        bool valid = eng_policy_check(&p, NULL) == 0;
        double cpu = pick_d(&x);
        eng_container c = ctr(cpu, pick_i(&x));
        c.use.mem_peak_bytes = pick_i(&x);
        c.use.samples = pick_i(&x);
        c.use.span_s = pick_i(&x);
        c.use.oom_count = pick_i(&x);
        c.use.oom_last = pick_i(&x);
        c.use.oom_mem_bytes = pick_i(&x);
        uint64_t bits = xs(&x);
        c.cpu.has_req = bits & 1;
        c.cpu.has_lim = bits & 2;
        c.mem.has_req = bits & 4;
        c.mem.has_lim = bits & 8;
        c.cpu.req = pick_i(&x);
        c.cpu.lim = pick_i(&x);
        c.mem.req = pick_i(&x);
        c.mem.lim = pick_i(&x);
        eng_facts f = {.hpa_cpu = bits & 16};
        f.now = pick_i(&x);
        eng_result r;
        eng_recommend(&p, &f, &c, &r);
        if (valid) {
            ASSERT(!r.cpu.has_lim || r.cpu.lim >= r.cpu.req);
            ASSERT(!r.mem.has_lim || r.mem.lim >= r.mem.req);
        }
        ASSERT(r.cpu.nsteps <= ENG_MAX_STEPS && r.mem.nsteps <= ENG_MAX_STEPS);
        cJSON *j = eng_result_json(&r, "x");
        ASSERT_NOT_NULL(j);
        char *s = cJSON_PrintUnformatted(j);
        ASSERT_NOT_NULL(s);
        free(s);
        cJSON_Delete(j);
    }
}

static void test_hpa_on_cpu_skips_cpu_only(void)
{
    eng_policy p = pol();
    eng_container c = ctr(0.5, 256 * MI);
    eng_result r = rec(&p, &c, true);
    ASSERT_EQ_INT(r.cpu.decision, ENG_SKIPPED);
    ASSERT_EQ_INT(r.cpu.reason, ENG_R_HPA_CPU);
    ASSERT_EQ_INT(r.cpu.steps[0].kind, ENG_STEP_SKIP);
    ASSERT_EQ_INT(r.mem.decision, ENG_APPLY);
    ASSERT_EQ_INT(r.decision, ENG_APPLY);
    /* Reported in the explanation. */
    cJSON *j = eng_result_json(&r, c.name);
    ASSERT_NOT_NULL(j);
    cJSON *cpu = cJSON_GetObjectItem(j, "cpu");
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(cpu, "reason")), "hpa-cpu");
    ASSERT_NULL(cJSON_GetObjectItem(cpu, "request"));
    cJSON_Delete(j);
    /* A policy may choose to size CPU anyway. */
    p.skip_cpu_under_hpa = false;
    r = rec(&p, &c, true);
    ASSERT_EQ_INT(r.cpu.decision, ENG_APPLY);
    ASSERT_EQ_INT(r.cpu.req, 575);
}

static void test_opt_out_and_init_containers(void)
{
    eng_policy p = pol();
    eng_container c = ctr(0.5, 256 * MI);
    c.opted_out = true;
    eng_result r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.decision, ENG_SKIPPED);
    ASSERT_EQ_INT(r.reason, ENG_R_OPTED_OUT);
    ASSERT_EQ_INT(r.cpu.reason, ENG_R_OPTED_OUT);
    ASSERT_EQ_INT(r.mem.reason, ENG_R_OPTED_OUT);
    ASSERT_EQ_INT(r.cpu.req, 0);

    c.opted_out = false;
    c.init = true;
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.decision, ENG_SKIPPED);
    ASSERT_EQ_INT(r.reason, ENG_R_INIT_CONTAINER);
    p.include_init = true;
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.decision, ENG_APPLY);
    ASSERT_EQ_INT(r.cpu.req, 575);
    /* Opt-out wins over include_init. */
    c.opted_out = true;
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.reason, ENG_R_OPTED_OUT);
}

static void test_insufficient_data_refuses(void)
{
    static const struct {
        int64_t samples, span;
        eng_decision want;
    } t[] = {
        {100, 7 * 86400, ENG_SKIPPED}, /* too few samples */
        {7 * 1440, 3600, ENG_SKIPPED}, /* too short a history */
        {0, 0, ENG_SKIPPED},           /* nothing at all */
        {719, 86400, ENG_SKIPPED},     /* one short */
        {720, 86400, ENG_APPLY},       /* exactly the minimum */
    };
    eng_policy p = pol();
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        eng_container c = ctr(0.5, 256 * MI);
        c.use.samples = t[i].samples;
        c.use.span_s = t[i].span;
        c.cpu = rl(100, 0);
        c.mem = rl(64 * MI, 0);
        eng_result r = rec(&p, &c, false);
        ASSERT_EQ_INT(r.decision, t[i].want);
        if (t[i].want == ENG_SKIPPED) {
            ASSERT_EQ_INT(r.reason, ENG_R_INSUFFICIENT_DATA);
            ASSERT_EQ_INT(r.cpu.steps[0].kind, ENG_STEP_SKIP);
            ASSERT_NEAR(r.cpu.steps[0].aux, t[i].samples, 0);
            ASSERT_NEAR(r.mem.steps[0].aux2, t[i].span, 0);
        }
    }
    /* A NaN CPU percentile (provider had no data) is missing data, not 0. */
    eng_container c = ctr(NAN, 256 * MI);
    eng_result r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.cpu.reason, ENG_R_INSUFFICIENT_DATA);
    ASSERT_EQ_INT(r.mem.decision, ENG_APPLY);
}

static void test_container_decision_combines_resources(void)
{
    eng_policy p = pol();
    eng_container c = ctr(0.5, 256 * MI);
    c.cpu = rl(575, 0);      /* unchanged */
    c.mem = rl(100 * MI, 0); /* grows to 295Mi */
    eng_result r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.cpu.decision, ENG_UNCHANGED);
    ASSERT_EQ_INT(r.mem.decision, ENG_APPLY);
    ASSERT_EQ_INT(r.decision, ENG_APPLY);
    ASSERT_EQ_INT(r.reason, ENG_R_NONE);
    c.mem = rl(295 * MI, 0);
    r = rec(&p, &c, false);
    ASSERT_EQ_INT(r.decision, ENG_UNCHANGED);
    ASSERT_EQ_INT(r.reason, ENG_R_WITHIN_THRESHOLD);
}

static void test_explanation_json(void)
{
    eng_policy p = pol();
    p.cpu.min = 300;
    eng_container c = ctr(0.21, 200 * MI);
    c.use.samples = 1440;
    c.use.mem_peak_bytes = 300 * MI;
    c.cpu = rl(100, 200);
    c.mem = rl(256 * MI, 512 * MI);
    eng_result r = rec(&p, &c, false);
    cJSON *j = eng_result_json(&r, "web");
    ASSERT_NOT_NULL(j);
    char *s = cJSON_PrintUnformatted(j);
    ASSERT_NOT_NULL(s);
    ASSERT_STR_CONTAINS(s, "\"container\":\"web\",\"decision\":\"apply\"");
    ASSERT_STR_CONTAINS(s, "\"cpu\":{\"decision\":\"apply\",\"request\":\"300m\",\"limit\":"
                           "\"600m\",\"steps\":[{\"step\":\"percentile\",\"percentile\":\"P95\","
                           "\"samples\":1440,\"value\":\"210m\"},{\"step\":\"safety\",\"from\":"
                           "\"210m\",\"to\":\"242m\",\"factor\":1.15},{\"step\":\"round\",\"from\":"
                           "\"242m\",\"to\":\"245m\",\"unit\":\"5m\"},{\"step\":\"clamp-min\","
                           "\"from\":\"245m\",\"to\":\"300m\"},{\"step\":\"threshold\","
                           "\"current\":\"100m\",\"recommended\":\"300m\",\"change\":2,"
                           "\"threshold\":0.1,\"within\":false},{\"step\":\"limit\",\"request\":"
                           "\"300m\",\"limit\":\"600m\",\"ratio\":2}]}");
    ASSERT_STR_CONTAINS(s, "{\"step\":\"peak-floor\",\"from\":\"230Mi\",\"to\":\"300Mi\"}");
    ASSERT_STR_CONTAINS(s, "\"memory\":{\"decision\":\"apply\",\"request\":\"300Mi\",\"limit\":"
                           "\"600Mi\"");
    free(s);
    cJSON_Delete(j);

    /* Skipped: the reason and the counts that caused it. */
    c.use.samples = 5;
    r = rec(&p, &c, false);
    j = eng_result_json(&r, "web");
    s = cJSON_PrintUnformatted(j);
    ASSERT_STR_CONTAINS(s, "\"decision\":\"skipped\",\"reason\":\"insufficient-data\"");
    ASSERT_STR_CONTAINS(s, "{\"step\":\"skip\",\"reason\":\"insufficient-data\",\"samples\":5,"
                           "\"historySeconds\":604800}");
    free(s);
    cJSON_Delete(j);
    ASSERT_STR_EQ(eng_step_str(ENG_STEP_OOM_COOLING), "oom-cooling");
    ASSERT_STR_EQ(eng_reason_str(ENG_R_INIT_CONTAINER), "init-container");
    ASSERT_STR_EQ(eng_decision_str(ENG_UNCHANGED), "unchanged");
}

static void test_policy_check(void)
{
    eng_policy p = pol();
    operr e = {""};
    ASSERT_EQ_INT(eng_policy_check(&p, &e), 0);
    p.cpu.min = 2000;
    p.cpu.max = 1000;
    ASSERT_EQ_INT(eng_policy_check(&p, &e), -EINVAL);
    ASSERT_STR_EQ(e.msg, "policy: cpu bounds: min 2 is above max 1");
    p = pol();
    p.mem.min = 2 * GI;
    p.mem.max = 512 * MI;
    ASSERT_EQ_INT(eng_policy_check(&p, &e), -EINVAL);
    ASSERT_STR_EQ(e.msg, "policy: memory bounds: min 2Gi is above max 512Mi");
    p = pol();
    p.limits = ENG_LIMITS_MULTIPLIER;
    p.limit_multiplier = 0.5;
    ASSERT_EQ_INT(eng_policy_check(&p, &e), -EINVAL);
    ASSERT_STR_CONTAINS(e.msg, "multiplier 0.5");
    p = pol();
    p.change_threshold = 1.5;
    ASSERT_EQ_INT(eng_policy_check(&p, &e), -EINVAL);
    ASSERT_STR_CONTAINS(e.msg, "changeThreshold");
    p = pol();
    p.percentile = 0;
    ASSERT_EQ_INT(eng_policy_check(&p, &e), -EINVAL);
    p = pol();
    p.safety_factor = NAN;
    ASSERT_EQ_INT(eng_policy_check(&p, &e), -EINVAL);
    p = pol();
    p.oom_bump_factor = 0.9;
    ASSERT_EQ_INT(eng_policy_check(&p, &e), -EINVAL);
    p = pol();
    p.cpu_round_m = 0;
    ASSERT_EQ_INT(eng_policy_check(&p, &e), -EINVAL);
}

/* ---- eng_percentile ---------------------------------------------------------------------- */

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Reference: drop NaNs, sort, then interpolate like Prometheus' quantile. */
static double ref_quantile(const double *v, size_t n, double q)
{
    double *s = malloc(n * sizeof *s);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i]))
            s[m++] = v[i];
    qsort(s, m, sizeof *s, cmpd);
    double rank = q * (double)(m - 1);
    size_t lo = (size_t)floor(rank), hi = lo + 1 < m ? lo + 1 : lo;
    double w = rank - floor(rank);
    double r = s[lo] * (1 - w) + s[hi] * w;
    free(s);
    return r;
}

/* Every shape and size, including the sampled path (n >= 512) and its
 * fallbacks (NaNs in the sample, skewed data that defeats the sample). */
static void test_percentile_matches_sorted_reference(void)
{
    enum { N = 5000 };
    static double v[N], work[N];
    static const size_t sizes[] = {1,   2,   3,   4,   13,   24,   25,  40,
                                   121, 364, 511, 512, 1093, 1440, 5000};
    uint64_t x = 42;
    const double qs[] = {0, 0.5, 0.9, 0.95, 0.99, 1, 0.123};
    for (int shape = 0; shape < 8; shape++) {
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            size_t n = sizes[si];
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                switch (shape) {
                case 0:
                    v[i] = (double)(x % 1000000) / 1000;
                    break; /* random */
                case 1:
                    v[i] = (double)(x % 4);
                    break; /* many duplicates */
                case 2:
                    v[i] = (double)i;
                    break; /* sorted */
                case 3:
                    v[i] = (double)(n - i);
                    break; /* reversed */
                case 4:
                    v[i] = 7.5;
                    break; /* all equal */
                case 5:
                    v[i] = (double)(i < n / 2 ? i : n - i);
                    break; /* organ pipe */
                case 6:
                    v[i] = x % 7 == 0 ? NAN : (double)(x % 1000);
                    break; /* NaNs */
                default:
                    v[i] = i % 128 == 0 ? 1e9 : (double)(x % 100);
                    break; /* fools the sample */
                }
            }
            for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
                memcpy(work, v, n * sizeof *v);
                double got = eng_percentile(work, n, qs[k]);
                double want = ref_quantile(v, n, qs[k]);
                if (got != want)
                    test_fail(__FILE__, __LINE__, "shape %d n %zu q %g: %.17g != %.17g", shape, n,
                              qs[k], got, want);
            }
        }
    }
}

static void test_percentile_edges(void)
{
    double v[] = {NAN, 3, NAN, 1, 2};
    ASSERT_NEAR(eng_percentile(v, 5, 0.5), 2, 0); /* NaNs ignored: median of 1,2,3 */
    double one[] = {4};
    ASSERT_NEAR(eng_percentile(one, 1, 0.95), 4, 0);
    ASSERT(isnan(eng_percentile(one, 0, 0.5)));
    ASSERT(isnan(eng_percentile(one, 1, 1.5)));
    ASSERT(isnan(eng_percentile(one, 1, NAN)));
    double nans[] = {NAN, NAN};
    ASSERT(isnan(eng_percentile(nans, 2, 0.5)));
    double two[] = {10, 20};
    ASSERT_NEAR(eng_percentile(two, 2, 0.9), 19, 1e-12);
}

int main(void)
{
    TEST_RUN(test_percentile_times_safety_then_round);
    TEST_RUN(test_rounding_table);
    TEST_RUN(test_clamps_to_bounds);
    TEST_RUN(test_memory_floor_at_peak);
    TEST_RUN(test_threshold_hysteresis);
    TEST_RUN(test_decrease_is_capped_per_step);
    TEST_RUN(test_oom_bump_and_cooling);
    TEST_RUN(test_limits_policies);
    TEST_RUN(test_limit_never_below_request_generated);
    TEST_RUN(test_survives_hostile_inputs);
    TEST_RUN(test_hpa_on_cpu_skips_cpu_only);
    TEST_RUN(test_opt_out_and_init_containers);
    TEST_RUN(test_insufficient_data_refuses);
    TEST_RUN(test_container_decision_combines_resources);
    TEST_RUN(test_explanation_json);
    TEST_RUN(test_policy_check);
    TEST_RUN(test_percentile_matches_sorted_reference);
    TEST_RUN(test_percentile_edges);
    return test_summary();
}
