#include "engine/engine.h"

#include "engine/quantity.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest value the engine produces: far above any real resource, far below
 * overflow when limits multiply it. */
#define ENG_VALUE_MAX ((int64_t)1 << 60)

void eng_policy_defaults(eng_policy *p)
{
    memset(p, 0, sizeof *p);
    p->percentile = 0.95;
    p->safety_factor = 1.15;
    p->min_samples = 720;
    p->min_history_s = 86400;
    p->change_threshold = 0.10;
    p->max_decrease = 0.5;
    p->mem_floor_peak = true;
    p->oom_bump_bytes = 100 * KQ_MI;
    p->oom_bump_factor = 1.2;
    p->oom_cooling_s = 86400;
    p->limits = ENG_LIMITS_KEEP_RATIO;
    p->limit_multiplier = 2.0;
    p->include_init = false;
    p->skip_cpu_under_hpa = true;
    p->cpu_round_m = 5;
    p->mem_round_bytes = KQ_MI;
}

static int check_bounds(const char *what, const eng_bounds *b, bool cpu, operr *err)
{
    char lo[KQ_STR_MAX], hi[KQ_STR_MAX];
    if (b->min < 0 || b->max < 0)
        return operr_set(err, -EINVAL, "policy: %s bounds: negative", what);
    if (b->max > 0 && b->min > b->max) {
        if (cpu) {
            kq_fmt_cpu_milli(b->min, lo, sizeof lo);
            kq_fmt_cpu_milli(b->max, hi, sizeof hi);
        } else {
            kq_fmt_mem_bytes(b->min, lo, sizeof lo);
            kq_fmt_mem_bytes(b->max, hi, sizeof hi);
        }
        return operr_set(err, -EINVAL, "policy: %s bounds: min %s is above max %s", what, lo, hi);
    }
    return 0;
}

int eng_policy_check(const eng_policy *p, operr *err)
{
    int rc;
    if (!(p->percentile > 0 && p->percentile <= 1))
        return operr_set(err, -EINVAL, "policy: percentile %g is not in (0, 1]", p->percentile);
    if (!(p->safety_factor > 0) || !isfinite(p->safety_factor))
        return operr_set(err, -EINVAL, "policy: safetyFactor %g must be positive",
                         p->safety_factor);
    if ((rc = check_bounds("cpu", &p->cpu, true, err)) != 0 ||
        (rc = check_bounds("memory", &p->mem, false, err)) != 0)
        return rc;
    if (p->min_samples < 0 || p->min_history_s < 0)
        return operr_set(err, -EINVAL, "policy: minimum history: negative");
    if (!(p->change_threshold >= 0 && p->change_threshold < 1))
        return operr_set(err, -EINVAL, "policy: changeThreshold %g is not in [0, 1)",
                         p->change_threshold);
    if (!isfinite(p->max_decrease))
        return operr_set(err, -EINVAL, "policy: maxDecrease is not a number");
    if (p->oom_bump_bytes < 0 || !(p->oom_bump_factor >= 1) || !isfinite(p->oom_bump_factor) ||
        p->oom_cooling_s < 0)
        return operr_set(err, -EINVAL,
                         "policy: OOM bump: needs bytes >= 0, factor >= 1, cooling >= 0");
    if (p->limits != ENG_LIMITS_KEEP_RATIO && p->limits != ENG_LIMITS_REQUESTS_ONLY &&
        p->limits != ENG_LIMITS_MULTIPLIER)
        return operr_set(err, -EINVAL, "policy: limits: unknown mode %d", (int)p->limits);
    if (p->limits == ENG_LIMITS_MULTIPLIER &&
        (!(p->limit_multiplier >= 1) || !isfinite(p->limit_multiplier)))
        return operr_set(err, -EINVAL, "policy: limits: multiplier %g must be >= 1",
                         p->limit_multiplier);
    if (p->cpu_round_m <= 0 || p->mem_round_bytes <= 0)
        return operr_set(err, -EINVAL, "policy: rounding units must be positive");
    return 0;
}

/* ---- small exact helpers ------------------------------------------------------------------ */

/* ceil(x) as an int64 within [0, ENG_VALUE_MAX]; NaN and negatives are 0.
 * A millionth of a millicore or byte is float noise (1.099 * 1000 is
 * 1099.0000000000002), not a reason to round up a whole unit. */
static int64_t d2i(double x)
{
    if (!(x > 0))
        return 0;
    if (x >= (double)ENG_VALUE_MAX)
        return ENG_VALUE_MAX;
    return (int64_t)ceil(x - 1e-6);
}

/* v rounded up to a multiple of unit, at least one unit. */
static int64_t ceil_to(int64_t v, int64_t unit)
{
    if (v <= unit)
        return unit;
    if (v >= ENG_VALUE_MAX)
        return ENG_VALUE_MAX - ENG_VALUE_MAX % unit;
    return (v + unit - 1) / unit * unit;
}

/* v limited to [0, ENG_VALUE_MAX]: inputs come from users and providers. */
static int64_t clampv(int64_t v)
{
    return v < 0 ? 0 : v > ENG_VALUE_MAX ? ENG_VALUE_MAX : v;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    a = clampv(a);
    b = clampv(b);
    return a > ENG_VALUE_MAX - b ? ENG_VALUE_MAX : a + b;
}

/* A current request or limit that is negative is treated as absent. */
static eng_rl sane_rl(const eng_rl *r)
{
    eng_rl o = *r;
    o.has_req = o.has_req && o.req >= 0;
    o.has_lim = o.has_lim && o.lim >= 0;
    return o;
}

static void push(eng_res *o, eng_step_kind k, int64_t before, int64_t after, double aux,
                 double aux2)
{
    if (o->nsteps == ENG_MAX_STEPS)
        return; /* cannot happen: a resource runs each step at most once */
    eng_step *s = &o->steps[o->nsteps++];
    s->kind = k;
    s->before = before;
    s->after = after;
    s->aux = aux;
    s->aux2 = aux2;
}

static void skip(eng_res *o, eng_reason why, double aux, double aux2)
{
    o->decision = ENG_SKIPPED;
    o->reason = why;
    push(o, ENG_STEP_SKIP, 0, 0, aux, aux2);
}

/* An empty outcome: what zeroing it would give, but for steps[], which
 * only nsteps says are there. */
static void res_reset(eng_res *o)
{
    o->decision = ENG_APPLY;
    o->reason = ENG_R_NONE;
    o->req = 0;
    o->has_lim = false;
    o->lim = 0;
    o->nsteps = 0;
}

/* ---- one resource ------------------------------------------------------------------------- */

typedef struct res_in {
    bool mem;          /* memory rules (peak floor, OOM) apply */
    bool have_usage;   /* the percentile path runs (else OOM bump only) */
    double usage;      /* millicores or bytes at the percentile */
    const eng_rl *cur; /* current request/limit */
    eng_bounds b;
    int64_t unit;
    bool oom_recent;
    int64_t oom_base; /* memory the OOM bump grows from */
    int64_t oom_age;  /* seconds since the OOM */
} res_in;

static void run(const eng_policy *p, const eng_container *c, const res_in *in, eng_res *o)
{
    const eng_rl *cur = in->cur;
    int64_t v = 0;
    bool bumped = false;

    if (in->have_usage) {
        int64_t u = d2i(in->usage);
        push(o, ENG_STEP_PERCENTILE, 0, u, p->percentile, (double)c->use.samples);
        /* From the unrounded usage, so rounding happens once. */
        v = d2i(in->usage * p->safety_factor);
        push(o, ENG_STEP_SAFETY, u, v, p->safety_factor, 0);
        if (in->mem && p->mem_floor_peak && c->use.mem_peak_bytes > v) {
            int64_t peak =
                c->use.mem_peak_bytes < ENG_VALUE_MAX ? c->use.mem_peak_bytes : ENG_VALUE_MAX;
            push(o, ENG_STEP_PEAK_FLOOR, v, peak, 0, 0);
            v = peak;
        }
    }
    if (in->mem && in->oom_recent) {
        int64_t base = in->oom_base;
        int64_t bump = sat_add(base, p->oom_bump_bytes);
        int64_t scaled = d2i((double)base * p->oom_bump_factor);
        if (scaled > bump)
            bump = scaled;
        if (bump > v) {
            push(o, ENG_STEP_OOM_BUMP, v, bump, (double)base, (double)c->use.oom_count);
            v = bump;
            bumped = true;
        }
    }
    int64_t r = ceil_to(v, in->unit);
    if (r != v)
        push(o, ENG_STEP_ROUND, v, r, (double)in->unit, 0);
    v = r;
    if (in->b.min > 0 && v < in->b.min) {
        push(o, ENG_STEP_CLAMP_MIN, v, in->b.min, 0, 0);
        v = in->b.min;
    }
    if (in->b.max > 0 && v > in->b.max) {
        push(o, ENG_STEP_CLAMP_MAX, v, in->b.max, 0, 0);
        v = in->b.max;
    }
    if (cur->has_req && v < cur->req) {
        /* The max bound still wins over holding the current value. */
        int64_t hold = in->b.max > 0 && cur->req > in->b.max ? in->b.max : cur->req;
        if (in->mem && in->oom_recent && hold > v) {
            push(o, ENG_STEP_OOM_COOLING, v, hold, (double)in->oom_age, 0);
            v = hold;
        }
        if (p->max_decrease > 0 && p->max_decrease < 1 && v < hold) {
            int64_t floor_v = ceil_to(d2i((double)cur->req * (1 - p->max_decrease)), in->unit);
            if (floor_v > hold)
                floor_v = hold;
            if (floor_v > v) {
                push(o, ENG_STEP_DECREASE_CAP, v, floor_v, p->max_decrease, 0);
                v = floor_v;
            }
        }
    }
    if (p->limits == ENG_LIMITS_REQUESTS_ONLY && cur->has_lim && v > cur->lim) {
        push(o, ENG_STEP_LIMIT_CAP, v, cur->lim, 0, 0);
        v = cur->lim;
    }

    o->decision = ENG_APPLY;
    o->req = v;
    if (cur->has_req) {
        bool out_of_bounds =
            (in->b.min > 0 && cur->req < in->b.min) || (in->b.max > 0 && cur->req > in->b.max);
        double change = cur->req > 0 ? fabs((double)v - (double)cur->req) / (double)cur->req
                                     : (v == cur->req ? 0 : 1);
        /* Bounds are enforced and an OOM bump is made however small the
         * change: skipping either would leave a known-bad value in place. */
        bool forced = out_of_bounds || (bumped && v > cur->req);
        bool within = v == cur->req || (!forced && change < p->change_threshold);
        push(o, ENG_STEP_THRESHOLD, cur->req, v, change, p->change_threshold);
        if (within) {
            o->decision = ENG_UNCHANGED;
            o->reason = ENG_R_WITHIN_THRESHOLD;
            o->req = cur->req;
            return;
        }
    }

    int64_t lim;
    switch (p->limits) {
    case ENG_LIMITS_KEEP_RATIO:
        if (!cur->has_lim)
            return; /* no limit before, none after */
        if (cur->has_req && cur->req > 0 && cur->lim > cur->req) {
            /* Exact: ceil(v * lim / req) in 128 bits. */
            unsigned __int128 x = (unsigned __int128)v * (uint64_t)cur->lim;
            x = (x + (uint64_t)cur->req - 1) / (uint64_t)cur->req;
            lim = x > (unsigned __int128)ENG_VALUE_MAX ? ENG_VALUE_MAX : (int64_t)x;
            lim = ceil_to(lim, in->unit);
        } else {
            lim = v; /* request defaulted from the limit, or limit == request */
        }
        if (lim < v)
            lim = v;
        push(o, ENG_STEP_LIMIT, v, lim, (double)lim / (double)v, 0);
        break;
    case ENG_LIMITS_MULTIPLIER: {
        double m = p->limit_multiplier >= 1 ? p->limit_multiplier : 1;
        lim = ceil_to(d2i((double)v * m), in->unit);
        if (lim < v)
            lim = v;
        push(o, ENG_STEP_LIMIT, v, lim, m, 1);
        break;
    }
    default:
        return; /* requests-only: limits untouched */
    }
    o->has_lim = true;
    o->lim = lim;
}

void eng_recommend(const eng_policy *p, const eng_facts *f, const eng_container *c, eng_result *out)
{
    const eng_usage *u = &c->use;
    /* The headers only: steps past nsteps are never read, and zeroing all
     * sixteen per resource was most of a call's cost (a backtest makes
     * millions of calls). */
    out->decision = ENG_APPLY;
    out->reason = ENG_R_NONE;
    res_reset(&out->cpu);
    res_reset(&out->mem);

    if (c->opted_out) {
        skip(&out->cpu, ENG_R_OPTED_OUT, 0, 0);
        skip(&out->mem, ENG_R_OPTED_OUT, 0, 0);
    } else if (c->init && !p->include_init) {
        skip(&out->cpu, ENG_R_INIT_CONTAINER, 0, 0);
        skip(&out->mem, ENG_R_INIT_CONTAINER, 0, 0);
    } else {
        bool enough =
            u->samples >= p->min_samples && u->span_s >= p->min_history_s && u->samples > 0;
        int64_t oom_age = 0; /* a future OOM time (clock skew) counts as just now */
        if (f->now > u->oom_last)
            oom_age = u->oom_last >= 0 || f->now < INT64_MAX + u->oom_last ? f->now - u->oom_last
                                                                           : INT64_MAX;
        bool oom_recent = u->oom_count > 0 && oom_age < p->oom_cooling_s;
        eng_rl cur_cpu = sane_rl(&c->cpu), cur_mem = sane_rl(&c->mem);
        res_in in = {0};

        if (!enough || !isfinite(u->cpu_cores))
            skip(&out->cpu, ENG_R_INSUFFICIENT_DATA, (double)u->samples, (double)u->span_s);
        else if (f->hpa_cpu && p->skip_cpu_under_hpa)
            skip(&out->cpu, ENG_R_HPA_CPU, 0, 0);
        else {
            in.have_usage = true;
            in.usage = u->cpu_cores * 1000.0;
            in.cur = &cur_cpu;
            in.b = p->cpu;
            in.unit = p->cpu_round_m > 0 ? clampv(p->cpu_round_m) : 1;
            run(p, c, &in, &out->cpu);
        }

        if (!enough && !oom_recent) {
            skip(&out->mem, ENG_R_INSUFFICIENT_DATA, (double)u->samples, (double)u->span_s);
        } else {
            memset(&in, 0, sizeof in);
            in.mem = true;
            in.have_usage = enough;
            in.usage = (double)u->mem_bytes;
            in.cur = &cur_mem;
            in.b = p->mem;
            in.unit = p->mem_round_bytes > 0 ? clampv(p->mem_round_bytes) : 1;
            in.oom_recent = oom_recent;
            in.oom_age = oom_age;
            in.oom_base = u->oom_mem_bytes > 0 ? u->oom_mem_bytes
                          : cur_mem.has_lim    ? cur_mem.lim
                          : cur_mem.has_req    ? cur_mem.req
                                               : u->mem_peak_bytes;
            if (in.oom_base < 0)
                in.oom_base = 0;
            if (in.oom_base > ENG_VALUE_MAX)
                in.oom_base = ENG_VALUE_MAX;
            run(p, c, &in, &out->mem);
        }
    }

    if (out->cpu.decision == ENG_APPLY || out->mem.decision == ENG_APPLY) {
        out->decision = ENG_APPLY;
    } else if (out->cpu.decision == ENG_SKIPPED && out->mem.decision == ENG_SKIPPED) {
        out->decision = ENG_SKIPPED;
        out->reason = out->mem.reason;
    } else {
        out->decision = ENG_UNCHANGED;
        out->reason = ENG_R_WITHIN_THRESHOLD;
    }
}

/* ---- names and JSON ----------------------------------------------------------------------- */

const char *eng_decision_str(eng_decision d)
{
    switch (d) {
    case ENG_APPLY:
        return "apply";
    case ENG_UNCHANGED:
        return "unchanged";
    case ENG_SKIPPED:
        return "skipped";
    }
    return "unknown";
}

const char *eng_reason_str(eng_reason r)
{
    switch (r) {
    case ENG_R_NONE:
        return "";
    case ENG_R_WITHIN_THRESHOLD:
        return "within-threshold";
    case ENG_R_INSUFFICIENT_DATA:
        return "insufficient-data";
    case ENG_R_OPTED_OUT:
        return "opted-out";
    case ENG_R_HPA_CPU:
        return "hpa-cpu";
    case ENG_R_INIT_CONTAINER:
        return "init-container";
    }
    return "unknown";
}

const char *eng_step_str(eng_step_kind k)
{
    static const char *const names[] = {
        [ENG_STEP_SKIP] = "skip",
        [ENG_STEP_PERCENTILE] = "percentile",
        [ENG_STEP_SAFETY] = "safety",
        [ENG_STEP_PEAK_FLOOR] = "peak-floor",
        [ENG_STEP_OOM_BUMP] = "oom-bump",
        [ENG_STEP_ROUND] = "round",
        [ENG_STEP_CLAMP_MIN] = "clamp-min",
        [ENG_STEP_CLAMP_MAX] = "clamp-max",
        [ENG_STEP_OOM_COOLING] = "oom-cooling",
        [ENG_STEP_DECREASE_CAP] = "decrease-cap",
        [ENG_STEP_LIMIT_CAP] = "limit-cap",
        [ENG_STEP_THRESHOLD] = "threshold",
        [ENG_STEP_LIMIT] = "limit",
    };
    if ((unsigned)k < sizeof names / sizeof names[0] && names[k])
        return names[k];
    return "unknown";
}

/* Add a quantity-valued field: "250m" for CPU, "512Mi" for memory. */
static bool add_q(cJSON *o, const char *key, int64_t v, bool mem)
{
    char buf[KQ_STR_MAX];
    if (mem)
        kq_fmt_mem_bytes(v, buf, sizeof buf);
    else
        kq_fmt_cpu_milli(v, buf, sizeof buf);
    return cJSON_AddStringToObject(o, key, buf) != NULL;
}

static bool add_num(cJSON *o, const char *key, double v)
{
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

static cJSON *step_json(const eng_res *r, const eng_step *s, bool mem)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "step", eng_step_str(s->kind));
    char pbuf[16];

    switch (s->kind) {
    case ENG_STEP_SKIP:
        ok = ok && cJSON_AddStringToObject(o, "reason", eng_reason_str(r->reason));
        if (r->reason == ENG_R_INSUFFICIENT_DATA)
            ok = ok && add_num(o, "samples", s->aux) && add_num(o, "historySeconds", s->aux2);
        break;
    case ENG_STEP_PERCENTILE:
        snprintf(pbuf, sizeof pbuf, "P%g", s->aux * 100);
        ok = ok && cJSON_AddStringToObject(o, "percentile", pbuf) &&
             add_num(o, "samples", s->aux2) && add_q(o, "value", s->after, mem);
        break;
    case ENG_STEP_THRESHOLD:
        ok = ok && add_q(o, "current", s->before, mem) && add_q(o, "recommended", s->after, mem) &&
             add_num(o, "change", round(s->aux * 10000) / 10000) &&
             add_num(o, "threshold", s->aux2) &&
             cJSON_AddBoolToObject(o, "within", r->decision == ENG_UNCHANGED);
        break;
    case ENG_STEP_LIMIT:
        ok = ok && add_q(o, "request", s->before, mem) && add_q(o, "limit", s->after, mem) &&
             add_num(o, s->aux2 == 1 ? "multiplier" : "ratio", round(s->aux * 1000) / 1000);
        break;
    default:
        ok = ok && add_q(o, "from", s->before, mem) && add_q(o, "to", s->after, mem);
        if (s->kind == ENG_STEP_SAFETY)
            ok = ok && add_num(o, "factor", s->aux);
        else if (s->kind == ENG_STEP_ROUND)
            ok = ok && add_q(o, "unit", (int64_t)s->aux, mem);
        else if (s->kind == ENG_STEP_OOM_BUMP)
            ok = ok && add_q(o, "oomMemory", (int64_t)s->aux, mem) && add_num(o, "ooms", s->aux2);
        else if (s->kind == ENG_STEP_OOM_COOLING)
            ok = ok && add_num(o, "secondsSinceOOM", s->aux);
        else if (s->kind == ENG_STEP_DECREASE_CAP)
            ok = ok && add_num(o, "maxDecrease", s->aux);
        break;
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *res_json(const eng_res *r, bool mem)
{
    cJSON *o = cJSON_CreateObject(), *steps = NULL;
    bool ok = o && cJSON_AddStringToObject(o, "decision", eng_decision_str(r->decision));
    if (ok && r->reason != ENG_R_NONE)
        ok = cJSON_AddStringToObject(o, "reason", eng_reason_str(r->reason)) != NULL;
    if (ok && r->decision != ENG_SKIPPED)
        ok = add_q(o, "request", r->req, mem);
    if (ok && r->has_lim)
        ok = add_q(o, "limit", r->lim, mem);
    ok = ok && (steps = cJSON_AddArrayToObject(o, "steps")) != NULL;
    for (size_t i = 0; ok && i < r->nsteps; i++) {
        cJSON *s = step_json(r, &r->steps[i], mem);
        ok = s != NULL;
        if (ok)
            cJSON_AddItemToArray(steps, s);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *eng_result_json(const eng_result *r, const char *container)
{
    cJSON *o = cJSON_CreateObject(), *cpu = NULL, *mem = NULL;
    bool ok = o && cJSON_AddStringToObject(o, "container", container ? container : "") &&
              cJSON_AddStringToObject(o, "decision", eng_decision_str(r->decision));
    if (ok && r->reason != ENG_R_NONE)
        ok = cJSON_AddStringToObject(o, "reason", eng_reason_str(r->reason)) != NULL;
    ok = ok && (cpu = res_json(&r->cpu, false)) != NULL;
    if (ok)
        cJSON_AddItemToObject(o, "cpu", cpu);
    ok = ok && (mem = res_json(&r->mem, true)) != NULL;
    if (ok)
        cJSON_AddItemToObject(o, "memory", mem);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- percentile by selection -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median3(double a, double b, double c)
{
    if (a < b)
        return b < c ? b : (a < c ? c : a);
    return a < c ? a : (b < c ? c : b);
}

/* Move the values of a[l..r) for which `x < p` (below) or `x <= p` (!below)
 * holds to the front; returns the end of that front part. Branch-free: each
 * step is a swap with a conditional advance, so unpredictable comparisons
 * cost no mispredictions. */
static size_t partition(double *a, size_t l, size_t r, double p, bool below)
{
    size_t j = l;
    if (below) {
        for (size_t i = l; i < r; i++) {
            double x = a[i];
            a[i] = a[j];
            a[j] = x;
            j += x < p;
        }
    } else {
        for (size_t i = l; i < r; i++) {
            double x = a[i];
            a[i] = a[j];
            a[j] = x;
            j += x <= p;
        }
    }
    return j;
}

/* Hoare's selection with a median-of-three pivot. Each round splits off the
 * values below the pivot and, when the wanted rank is not among them, the
 * values equal to it (so runs of equal samples, common for memory, end a
 * round at once). After a budget of rounds the rest is sorted, which bounds
 * the worst case at O(n log n). On return a[k] is the k-th smallest and
 * a[k+1..n) are all >= it. */
static double select_kth(double *a, size_t n, size_t k)
{
    size_t l = 0, r = n;
    int budget = 16;
    for (size_t m = n; m > 1; m >>= 1)
        budget += 2;
    while (r - l > 24) {
        if (budget-- == 0) {
            qsort(a + l, r - l, sizeof *a, cmp_double);
            return a[k];
        }
        double p = median3(a[l], a[l + (r - l) / 2], a[r - 1]);
        size_t lt = partition(a, l, r, p, true);
        if (k < lt) {
            r = lt;
            continue;
        }
        size_t eq = partition(a, lt, r, p, false);
        if (k < eq)
            return p; /* a[lt..eq) == p, everything after is > p */
        l = eq;
    }
    for (size_t i = l + 1; i < r; i++) {
        double x = a[i];
        size_t j = i;
        while (j > l && a[j - 1] > x) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
    return a[k];
}

/* Floyd-Rivest style selection for large inputs: a small sample gives two
 * values bracketing the wanted ranks; one branch-free pass copies the values
 * between them into a scratch band (one store per value, a[] untouched) and
 * counts those below and the NaNs; the selection then runs on the band alone,
 * about a sixth of the data for P95. Returns false when the sample bracketed
 * wrongly, held a NaN, or the band outgrew the scratch; the caller then
 * selects on everything. */
static bool select_band(const double *a, size_t n, double q, double *out)
{
    enum { S = 128, CAP = 1024 };
    double smp[S], band[CAP];
    size_t step = n / S;
    for (size_t j = 0; j < S; j++) {
        smp[j] = a[j * step];
        if (isnan(smp[j]))
            return false;
    }
    long d = (long)(2.5 * sqrt(S * q * (1 - q))) + 2;
    long kk = (long)floor(q * (S - 1));
    long rl = kk - d, rh = kk + 1 + d;
    double lo_t = -INFINITY, hi_t = INFINITY;
    size_t base = 0;
    if (rl > 0) {
        lo_t = select_kth(smp, S, (size_t)rl);
        base = (size_t)rl + 1; /* smp[base..S) now holds the larger values */
    }
    if (rh < S - 1)
        hi_t = select_kth(smp + base, S - base, (size_t)rh - base);

    /* NaNs fail both comparisons: neither below nor in the band. */
    size_t less = 0, w = 0, nan = 0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i];
        band[w & (CAP - 1)] = x; /* wraps harmlessly: w > CAP is refused below */
        less += x < lo_t;
        w += (x >= lo_t) & (x <= hi_t);
        nan += x != x;
    }
    size_t m = n - nan;
    if (w > CAP || m == 0)
        return false;
    double rank = q * (double)(m - 1);
    size_t lo = (size_t)floor(rank);
    double frac = rank - (double)lo;
    if (lo < less || lo - less >= w || (frac > 0 && lo + 1 - less >= w))
        return false;
    size_t k = lo - less;
    double vlo = select_kth(band, w, k);
    if (frac == 0) {
        *out = vlo;
        return true;
    }
    double vhi = band[k + 1];
    for (size_t i = k + 2; i < w; i++)
        vhi = band[i] < vhi ? band[i] : vhi;
    *out = vlo * (1 - frac) + vhi * frac;
    return true;
}

double eng_percentile(double *samples, size_t n, double q)
{
    if (!(q >= 0 && q <= 1))
        return NAN;
    double r;
    if (n >= 512 && select_band(samples, n, q, &r))
        return r;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(samples[i]))
            samples[m++] = samples[i];
    if (m == 0)
        return NAN;
    double rank = q * (double)(m - 1);
    size_t lo = (size_t)floor(rank);
    if (lo >= m - 1)
        return select_kth(samples, m, m - 1);
    double w = rank - (double)lo;
    double vlo = select_kth(samples, m, lo);
    if (w == 0)
        return vlo;
    double vhi = samples[lo + 1];
    for (size_t i = lo + 2; i < m; i++)
        if (samples[i] < vhi)
            vhi = samples[i];
    return vlo * (1 - w) + vhi * w;
}
