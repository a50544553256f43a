/*
 * pol: the OptimizationPolicy model (optipod.io/v1alpha1): parsing with
 * defaults, semantic validation, workload matching and precedence.
 *
 * pol_parse() turns a policy object as the API server returns it into a
 * pol_policy with every default filled in. Validation goes beyond the CRD
 * schema (which a v1.24 API server cannot use to compare quantities): every
 * problem is recorded with the exact field path, up to POL_MAX_ERRORS of
 * them, so the controller can list them all in status and keep the policy
 * out of use. The field table (pol_fields()) is the single list of spec paths,
 * types, enums, ranges and defaults the parser knows; the CRD test checks the
 * schema in crds/ against it, so the two cannot drift apart.
 *
 * Precedence when several policies match one workload: highest spec.weight,
 * then the oldest metadata.creationTimestamp, then namespace/name in byte
 * order (a total order, so every replica of the controller picks the same
 * winner). pol_rank() is a pure function returning winner and losers.
 *
 * Ownership: a pol_policy owns its strings and selectors. pol_init() allocates
 * nothing; pol_release() frees the contents and leaves an initialised policy;
 * pol_parse() releases `out` before filling it. Nothing here does I/O.
 */
#ifndef OPTIPOD_POLICY_POLICY_H
#define OPTIPOD_POLICY_POLICY_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/selector.h"
#include "util/buf.h"
#include "util/err.h"

#define POL_MAX_ERRORS    16  /* validation errors kept per policy */
#define POL_ERROR_LEN     256 /* bytes per kept error, including the NUL */
#define POL_MAX_EXCLUDED  64  /* spec.excludeContainers entries */
#define POL_MAX_NAME      253 /* metadata.name / namespace */
#define POL_QTY_TEXT      64  /* bytes kept of a quantity's original spelling */
#define POL_MAX_WEIGHT    1000
#define POL_MIN_RECONCILE 10000LL                    /* ms: fastest reconcileInterval */
#define POL_MAX_DURATION  (366LL * 24 * 3600 * 1000) /* ms: any duration field */
#define POL_MIN_WINDOW    (5LL * 60 * 1000)          /* ms: shortest rollingWindow */

/* The CRD's patterns. The duration parser accepts exactly the strings the
 * pattern matches; the quantity parser accepts a subset (the Kubernetes
 * pattern also lets "1e1.5" through, which no quantity parser accepts). The
 * CRD test checks both on a table of inputs. */
#define POL_DURATION_PATTERN "^([0-9]+(ms|s|m|h|d))+$"
#define POL_QUANTITY_PATTERN                                                                       \
    "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+("   \
    "\\."                                                                                          \
    "[0-9]*)?)|(\\.[0-9]+))))?$"

typedef enum pol_mode { POL_MODE_AUTO, POL_MODE_RECOMMEND, POL_MODE_DISABLED } pol_mode;

/* POL_PROVIDER_DEFAULT: not set in the policy; the controller uses Prometheus
 * when it was given --prometheus-url and metrics-server otherwise. */
typedef enum pol_provider {
    POL_PROVIDER_DEFAULT,
    POL_PROVIDER_PROMETHEUS,
    POL_PROVIDER_METRICS_SERVER,
} pol_provider;

typedef enum pol_strategy { POL_STRATEGY_SSA, POL_STRATEGY_WEBHOOK } pol_strategy;
typedef enum pol_rollout { POL_ROLLOUT_ON_NEXT_RESTART, POL_ROLLOUT_IMMEDIATE } pol_rollout;
typedef enum pol_limits {
    POL_LIMITS_REQUESTS_ONLY,
    POL_LIMITS_KEEP_RATIO,
    POL_LIMITS_MULTIPLIER,
} pol_limits;

/* Workload kinds, as a bit set. */
typedef enum pol_kind {
    POL_KIND_DEPLOYMENT = 1 << 0,
    POL_KIND_STATEFULSET = 1 << 1,
    POL_KIND_DAEMONSET = 1 << 2,
} pol_kind;
#define POL_KIND_ALL (POL_KIND_DEPLOYMENT | POL_KIND_STATEFULSET | POL_KIND_DAEMONSET)

/* A quantity from the spec: `value` is millicores for CPU and bytes for memory
 * (rounded up, as Kubernetes does); `text` the user's spelling. */
typedef struct pol_qty {
    bool set;
    int64_t value;
    char text[POL_QTY_TEXT];
} pol_qty;

typedef struct pol_bounds {
    pol_qty min, max;
} pol_bounds;

typedef struct pol_policy {
    /* metadata */
    char *name, *namespace, *uid;
    int64_t generation;
    int64_t created; /* creationTimestamp, Unix seconds; INT64_MAX when absent */

    /* spec */
    pol_mode mode;
    int weight; /* 0..POL_MAX_WEIGHT; higher wins */
    lsel_selector workload_sel;
    lsel_selector namespace_sel;
    bool has_namespace_sel; /* absent: only the policy's own namespace */
    unsigned kinds;         /* pol_kind bits */

    pol_provider provider;
    int64_t window_ms;    /* metricsConfig.rollingWindow */
    int percentile;       /* 50, 90, 95 or 99 */
    double safety_factor; /* 1.0 .. 10 */

    pol_bounds cpu;    /* millicores */
    pol_bounds memory; /* bytes */

    pol_strategy strategy;
    pol_rollout rollout;
    bool allow_in_place_resize, allow_recreate, update_requests_only, use_ssa, force_conflicts;

    int64_t min_samples;
    int64_t min_history_ms;
    int change_threshold_pct; /* no update below this relative change */
    int max_decrease_pct;     /* largest decrease in one step; 100 = no cap */
    pol_limits limits;
    double limit_multiplier; /* POL_LIMITS_MULTIPLIER: limit = request × this */
    bool memory_floor_at_peak;
    bool oom_bump;
    int64_t oom_min_bump_bytes;
    double oom_factor;
    int64_t oom_cooldown_ms;
    char **exclude_containers;
    size_t nexclude;
    bool include_init_containers;
    int64_t reconcile_ms;

    /* validation: valid == (nerrors == 0 && dropped == 0) */
    bool valid;
    size_t nerrors;
    size_t dropped; /* errors beyond POL_MAX_ERRORS, counted only */
    char errors[POL_MAX_ERRORS][POL_ERROR_LEN];
} pol_policy;

void pol_init(pol_policy *p);
void pol_release(pol_policy *p);

/* Parse an OptimizationPolicy object ({"metadata":..., "spec":...}). Returns 0
 * when the policy is valid. Otherwise returns -EINVAL with `err` holding the
 * first problem ("spec.resourceBounds.cpu.min: \"abc\" is not a quantity",
 * with "(and N more)" when there are several) and out->errors[] all of them;
 * `out` still holds every field that did parse, for status reporting. Returns
 * -ENOMEM when memory runs out (out is then released). */
int pol_parse(const cJSON *obj, pol_policy *out, operr *err);

/* The validation errors as one line for a Ready=False condition message:
 * "e1; e2; e3" plus " (and N more)" when some were dropped. Appends to out;
 * returns 0 or an opbuf error. */
int pol_errors_format(const pol_policy *p, opbuf *out);
/* The kept errors as a JSON array of strings for status.validationErrors
 * (at most POL_MAX_ERRORS, as the CRD allows), or NULL on ENOMEM. */
cJSON *pol_errors_to_json(const pol_policy *p);

/* The effective spec with every default filled in, in the CRD's shape (a new
 * object the caller deletes, or NULL on ENOMEM). pol_parse() of it gives the
 * same policy. */
cJSON *pol_spec_to_json(const pol_policy *p);

/* The workload a policy may apply to. */
typedef struct pol_target {
    pol_kind kind;
    const char *namespace;
    const cJSON *labels;    /* workload metadata.labels; NULL = none */
    const cJSON *ns_labels; /* its namespace's metadata.labels; NULL = none */
} pol_target;

/* Does a valid policy select this workload? Invalid policies match nothing.
 * Disabled policies do match: a heavy Disabled policy opts workloads out. */
bool pol_matches(const pol_policy *p, const pol_target *t);

/* Precedence: negative when a wins over b. */
int pol_compare(const pol_policy *a, const pol_policy *b);

/* Of `n` policies, write the ones matching `t` to ranked[] (capacity n) in
 * precedence order and return how many: ranked[0] is the winner, the rest are
 * the losers to report as conflicting. Pure; allocates nothing. */
size_t pol_rank(const pol_policy *const *policies, size_t n, const pol_target *t,
                const pol_policy **ranked);

/* Is the container excluded by spec.excludeContainers? */
bool pol_excludes_container(const pol_policy *p, const char *container);

/* Parse a duration of POL_DURATION_PATTERN into milliseconds ("1h30m", "7d").
 * Returns 0, -EINVAL or -ERANGE (beyond POL_MAX_DURATION). */
int pol_parse_duration(const char *s, int64_t *ms);
/* Print milliseconds in the same syntax ("90m" → "1h30m"). */
void pol_format_duration(int64_t ms, char *buf, size_t size);

/* Enum spellings, as in the CRD. */
const char *pol_mode_name(pol_mode m);
const char *pol_provider_name(pol_provider p); /* "" for POL_PROVIDER_DEFAULT */
const char *pol_strategy_name(pol_strategy s);
const char *pol_rollout_name(pol_rollout r);
const char *pol_limits_name(pol_limits l);
const char *pol_kind_name(pol_kind k);
/* "Deployment" → POL_KIND_DEPLOYMENT; 0 when unknown. */
pol_kind pol_kind_from_name(const char *s);

/* --- the field table ---------------------------------------------------------------------- */

typedef enum pol_ftype {
    POL_F_OBJECT,
    POL_F_MAP, /* object with free keys and string values (matchLabels) */
    POL_F_ARRAY,
    POL_F_STRING,
    POL_F_INTEGER,
    POL_F_NUMBER,
    POL_F_BOOLEAN,
    POL_F_QUANTITY, /* int-or-string matching POL_QUANTITY_PATTERN */
    POL_F_DURATION, /* string matching POL_DURATION_PATTERN */
} pol_ftype;

typedef struct pol_field {
    const char *path; /* "spec.metricsConfig.percentile"; array items end in "[]" */
    pol_ftype type;
    const char *const *enums; /* NULL-terminated accepted values, or NULL */
    const char *dflt;         /* the default as JSON text, or NULL */
    bool has_min, has_max;
    double min, max; /* inclusive range of numbers and integers */
} pol_field;

/* Every spec path the parser accepts (objects and leaves), in a fixed order. */
const pol_field *pol_fields(size_t *n);
/* NULL when `path` is not a known field. */
const pol_field *pol_field_find(const char *path);

#endif
