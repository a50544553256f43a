#include "policy/toengine.h"

static eng_bounds pol_eng_bounds(const pol_bounds *b)
{
    eng_bounds e = {0, 0};
    if (b->min.set)
        e.min = b->min.value;
    if (b->max.set)
        e.max = b->max.value;
    return e;
}

void pol_engine_policy(const pol_policy *p, eng_policy *out)
{
    /* Start from the engine's set for the knobs a policy does not expose
     * (rounding units, HPA handling), then take every policy field. */
    eng_policy_defaults(out);
    out->percentile = (double)p->percentile / 100.0;
    out->safety_factor = p->safety_factor;
    out->cpu = pol_eng_bounds(&p->cpu);
    out->mem = pol_eng_bounds(&p->memory);
    out->min_samples = p->min_samples;
    out->min_history_s = p->min_history_ms / 1000;
    out->change_threshold = (double)p->change_threshold_pct / 100.0;
    out->max_decrease = p->max_decrease_pct >= 100 ? 0.0 : (double)p->max_decrease_pct / 100.0;
    out->mem_floor_peak = p->memory_floor_at_peak;
    if (p->oom_bump) {
        out->oom_bump_bytes = p->oom_min_bump_bytes;
        out->oom_bump_factor = p->oom_factor;
    } else {
        out->oom_bump_bytes = 0;
        out->oom_bump_factor = 1.0;
    }
    out->oom_cooling_s = p->oom_cooldown_ms / 1000;
    switch (p->limits) {
    case POL_LIMITS_REQUESTS_ONLY:
        out->limits = ENG_LIMITS_REQUESTS_ONLY;
        break;
    case POL_LIMITS_KEEP_RATIO:
        out->limits = ENG_LIMITS_KEEP_RATIO;
        break;
    case POL_LIMITS_MULTIPLIER:
        out->limits = ENG_LIMITS_MULTIPLIER;
        out->limit_multiplier = p->limit_multiplier;
        break;
    }
    if (p->update_requests_only)
        out->limits = ENG_LIMITS_REQUESTS_ONLY;
    out->include_init = p->include_init_containers;
}
