/*
 * eng: the recommendation engine. Pure functions from a policy, per-container
 * usage statistics and the current requests/limits to recommended requests
 * (and limits), each with the list of steps that produced it. No I/O, no
 * allocation except eng_result_json(); safe to run on a worker thread.
 *
 * Units: CPU in millicores (int64), memory in bytes (int64), times in Unix
 * seconds, usage percentiles as measured (CPU cores as a double).
 *
 * The rules, in the order they run for one resource of one container:
 *   skip       opted-out, init container (unless policy.include_init),
 *              too little data (samples or span; memory still acts on a
 *              recent OOM), CPU under a CPU-based HPA (reported, memory goes on)
 *   percentile the usage at policy.percentile, as the provider measured it
 *   safety     x policy.safety_factor, rounded up
 *   peak floor memory: never below the observed peak (policy.mem_floor_peak)
 *   OOM bump   memory after an OOM within the cooling period: at least
 *              max(m + oom_bump_bytes, m x oom_bump_factor), m = memory at the
 *              OOM (else the current limit, request, or peak)
 *   round      up to the unit: CPU 5m, memory 1Mi (never zero: at least one unit).
 *              5m keeps sidecars small while every value stays a clean "NNNm".
 *   clamp      to the bounds (min, then max); the user's bounds win over all
 *              of the above
 *   cooling    memory is not lowered while an OOM is within the cooling period
 *   decrease   one step lowers at most policy.max_decrease of the current
 *              request (gradual decrease), never above the max bound
 *   limit cap  requests-only: a request never exceeds the existing limit
 *   threshold  a change below policy.change_threshold of the current request
 *              is not made (hysteresis); a current request outside the bounds
 *              is always corrected, and an OOM bump is always made
 *   limit      keep-ratio (original limit:request, no limit if there was none),
 *              multiplier (limit = request x N), or requests-only (untouched);
 *              never a limit below the request
 */
#ifndef OPTIPOD_ENGINE_ENGINE_H
#define OPTIPOD_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "util/err.h"

typedef enum eng_limits {
    ENG_LIMITS_KEEP_RATIO = 0, /* default, like the VPA */
    ENG_LIMITS_REQUESTS_ONLY,
    ENG_LIMITS_MULTIPLIER,
} eng_limits;

typedef struct eng_bounds {
    int64_t min; /* 0 = no lower bound */
    int64_t max; /* 0 = no upper bound */
} eng_bounds;

typedef struct eng_policy {
    double percentile;       /* quantile the usage was measured at: 0.5/0.9/0.95/0.99 (0.95) */
    double safety_factor;    /* multiplier on the percentile, > 0 (1.15) */
    eng_bounds cpu;          /* millicores (none) */
    eng_bounds mem;          /* bytes (none) */
    int64_t min_samples;     /* fewer samples: refuse (720, half the minutes of a day) */
    int64_t min_history_s;   /* shorter history: refuse (86400) */
    double change_threshold; /* relative change below which nothing changes (0.10) */
    double max_decrease;     /* largest fraction of the request one step removes (0.5);
                                <= 0 or >= 1 disables the cap */
    bool mem_floor_peak;     /* memory never below the observed peak (true) */
    int64_t oom_bump_bytes;  /* OOM bump: at least +this (100 MiB) ... */
    double oom_bump_factor;  /* ... and at least x this (1.2) */
    int64_t oom_cooling_s;   /* after an OOM, memory is not lowered for this long (86400) */
    eng_limits limits;       /* ENG_LIMITS_KEEP_RATIO */
    double limit_multiplier; /* for ENG_LIMITS_MULTIPLIER, >= 1 (2.0) */
    bool include_init;       /* size init containers too (false) */
    bool skip_cpu_under_hpa; /* leave CPU alone when an HPA scales on CPU (true) */
    int64_t cpu_round_m;     /* CPU rounding unit, millicores (5) */
    int64_t mem_round_bytes; /* memory rounding unit (1 MiB) */
} eng_policy;

/* Facts about the workload and the moment of the decision. */
typedef struct eng_facts {
    int64_t now;  /* Unix seconds */
    bool hpa_cpu; /* an HPA scales this workload on CPU utilization */
} eng_facts;

/* Current request and limit of one resource; absent ones are false. */
typedef struct eng_rl {
    bool has_req, has_lim;
    int64_t req, lim;
} eng_rl;

/* Usage of one container over the rolling window, over all its pods. */
typedef struct eng_usage {
    double cpu_cores;       /* CPU at policy.percentile, cores (short-window rates) */
    int64_t mem_bytes;      /* working set at policy.percentile */
    int64_t mem_peak_bytes; /* highest working set seen */
    int64_t samples;        /* samples behind the percentiles */
    int64_t span_s;         /* time between the oldest and newest sample */
    int64_t oom_count;      /* OOMKilled terminations in the window */
    int64_t oom_last;       /* Unix time of the last one */
    int64_t oom_mem_bytes;  /* working set (or limit) at that OOM; 0 = unknown */
} eng_usage;

typedef struct eng_container {
    const char *name; /* borrowed; used in the JSON rendering */
    bool init;        /* an init container */
    bool opted_out;   /* per-container opt-out (annotation, resolved by the caller) */
    eng_usage use;
    eng_rl cpu; /* current, millicores */
    eng_rl mem; /* current, bytes */
} eng_container;

typedef enum eng_decision {
    ENG_APPLY = 0, /* write the recommendation */
    ENG_UNCHANGED, /* keep the current value (within threshold) */
    ENG_SKIPPED,   /* not considered; see the reason */
} eng_decision;

typedef enum eng_reason {
    ENG_R_NONE = 0,
    ENG_R_WITHIN_THRESHOLD,
    ENG_R_INSUFFICIENT_DATA,
    ENG_R_OPTED_OUT,
    ENG_R_HPA_CPU,
    ENG_R_INIT_CONTAINER,
} eng_reason;

typedef enum eng_step_kind {
    ENG_STEP_SKIP,         /* aux: samples, aux2: span_s (insufficient data), else 0 */
    ENG_STEP_PERCENTILE,   /* after: usage; aux: quantile; aux2: samples */
    ENG_STEP_SAFETY,       /* before x aux = after */
    ENG_STEP_PEAK_FLOOR,   /* raised to the peak */
    ENG_STEP_OOM_BUMP,     /* raised; aux: memory at the OOM, aux2: OOM count */
    ENG_STEP_ROUND,        /* rounded up; aux: unit */
    ENG_STEP_CLAMP_MIN,    /* raised to the min bound */
    ENG_STEP_CLAMP_MAX,    /* lowered to the max bound */
    ENG_STEP_OOM_COOLING,  /* decrease refused; aux: seconds since the OOM */
    ENG_STEP_DECREASE_CAP, /* decrease limited; aux: max_decrease */
    ENG_STEP_LIMIT_CAP,    /* requests-only: lowered to the existing limit */
    ENG_STEP_THRESHOLD,    /* before: current, after: kept or new; aux: change, aux2: threshold */
    ENG_STEP_LIMIT,        /* before: request, after: limit; aux: ratio or multiplier */
} eng_step_kind;

typedef struct eng_step {
    eng_step_kind kind;
    int64_t before, after; /* millicores or bytes */
    double aux, aux2;      /* see the kind */
} eng_step;

#define ENG_MAX_STEPS 16

/* The outcome for one resource of one container. */
typedef struct eng_res {
    eng_decision decision;
    eng_reason reason;
    int64_t req;  /* request to write (APPLY) or kept (UNCHANGED); 0 when SKIPPED */
    bool has_lim; /* write `lim` too (APPLY only) */
    int64_t lim;
    size_t nsteps;
    eng_step steps[ENG_MAX_STEPS]; /* [0, nsteps) are set; the rest are not */
} eng_res;

typedef struct eng_result {
    eng_decision decision; /* APPLY if either resource applies; SKIPPED if both are */
    eng_reason reason;     /* the skip reason, or WITHIN_THRESHOLD when unchanged */
    eng_res cpu, mem;
} eng_result;

/* The defaults documented in eng_policy. */
void eng_policy_defaults(eng_policy *p);
/* Reject inconsistent knobs with a message naming the knob:
 *   policy: cpu bounds: min 2000m is above max 1 */
int eng_policy_check(const eng_policy *p, operr *err);

/* Decide for one container. Never fails: bad usage numbers (NaN, negative)
 * count as missing data. */
void eng_recommend(const eng_policy *p, const eng_facts *f, const eng_container *c,
                   eng_result *out);

/* Render as JSON for status and the CLI:
 *   {"container":"app","decision":"apply","cpu":{"decision":"apply","request":"250m",
 *    "limit":"500m","steps":[{"step":"percentile","value":"213m","percentile":"P95",
 *    "samples":1440}, ...]},"memory":{...}}
 * Returns a new object (cJSON_Delete it) or NULL when out of memory. */
cJSON *eng_result_json(const eng_result *r, const char *container);

const char *eng_decision_str(eng_decision d);
const char *eng_reason_str(eng_reason r);
const char *eng_step_str(eng_step_kind k);

/* The q-th quantile (0..1) of samples[0..n), interpolated between closest
 * ranks the way Prometheus' quantile_over_time does. Runs in expected O(n)
 * by selection (never sorts the whole array) and reorders `samples`; NaNs are
 * ignored. Returns NaN when there is no sample or q is outside [0, 1]. */
double eng_percentile(double *samples, size_t n, double q);

#endif
