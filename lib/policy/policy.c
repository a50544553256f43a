#include "policy/policy.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quantity.h"
#include "util/optime.h"

/* --- enums -------------------------------------------------------------------------------- */

/* Index = enum value (providers are offset by one: 0 is "not set"). */
static const char *const mode_names[] = {"Auto", "Recommend", "Disabled", NULL};
static const char *const provider_names[] = {"prometheus", "metrics-server", NULL};
static const char *const strategy_names[] = {"ssa", "webhook", NULL};
static const char *const rollout_names[] = {"onNextRestart", "immediate", NULL};
static const char *const limits_names[] = {"RequestsOnly", "KeepRatio", "Multiplier", NULL};
static const char *const percentile_names[] = {"P50", "P90", "P95", "P99", NULL};
static const int percentile_values[] = {50, 90, 95, 99};
static const char *const kind_names[] = {"Deployment", "StatefulSet", "DaemonSet", NULL};
static const char *const op_names[] = {"In", "NotIn", "Exists", "DoesNotExist", NULL};

const char *pol_mode_name(pol_mode m)
{
    return (unsigned)m < 3 ? mode_names[m] : "?";
}

const char *pol_provider_name(pol_provider p)
{
    return p == POL_PROVIDER_DEFAULT ? "" : (unsigned)p <= 2 ? provider_names[p - 1] : "?";
}

const char *pol_strategy_name(pol_strategy s)
{
    return (unsigned)s < 2 ? strategy_names[s] : "?";
}

const char *pol_rollout_name(pol_rollout r)
{
    return (unsigned)r < 2 ? rollout_names[r] : "?";
}

const char *pol_limits_name(pol_limits l)
{
    return (unsigned)l < 3 ? limits_names[l] : "?";
}

const char *pol_kind_name(pol_kind k)
{
    for (int i = 0; kind_names[i]; i++)
        if (k == (pol_kind)(1 << i))
            return kind_names[i];
    return "?";
}

pol_kind pol_kind_from_name(const char *s)
{
    for (int i = 0; s && kind_names[i]; i++)
        if (strcmp(s, kind_names[i]) == 0)
            return (pol_kind)(1 << i);
    return (pol_kind)0;
}

/* --- the field table ---------------------------------------------------------------------- */

#define OBJ(p)                                                                                     \
    {                                                                                              \
        .path = p, .type = POL_F_OBJECT                                                            \
    }
#define OBJD(p, d)                                                                                 \
    {                                                                                              \
        .path = p, .type = POL_F_OBJECT, .dflt = d                                                 \
    }
#define LEAF(p, t, d)                                                                              \
    {                                                                                              \
        .path = p, .type = t, .dflt = d                                                            \
    }
#define ENUM(p, e, d)                                                                              \
    {                                                                                              \
        .path = p, .type = POL_F_STRING, .enums = e, .dflt = d                                     \
    }
#define RANGE(p, t, d, lo, hi)                                                                     \
    {                                                                                              \
        .path = p, .type = t, .dflt = d, .has_min = true, .has_max = true, .min = lo, .max = hi    \
    }
#define SELECTOR(p)                                                                                \
    OBJ(p), LEAF(p ".matchLabels", POL_F_MAP, NULL),                                               \
        LEAF(p ".matchExpressions", POL_F_ARRAY, NULL), OBJ(p ".matchExpressions[]"),              \
        LEAF(p ".matchExpressions[].key", POL_F_STRING, NULL),                                     \
        ENUM(p ".matchExpressions[].operator", op_names, NULL),                                    \
        LEAF(p ".matchExpressions[].values", POL_F_ARRAY, NULL),                                   \
        LEAF(p ".matchExpressions[].values[]", POL_F_STRING, NULL)

static const pol_field fields[] = {
    OBJ("spec"),
    ENUM("spec.mode", mode_names, "\"Recommend\""),
    RANGE("spec.weight", POL_F_INTEGER, "0", 0, POL_MAX_WEIGHT),
    OBJ("spec.selector"),
    SELECTOR("spec.selector.workloadSelector"),
    SELECTOR("spec.selector.namespaceSelector"),
    LEAF("spec.selector.workloadKinds", POL_F_ARRAY,
         "[\"Deployment\",\"StatefulSet\",\"DaemonSet\"]"),
    ENUM("spec.selector.workloadKinds[]", kind_names, NULL),
    OBJD("spec.metricsConfig", "{}"),
    ENUM("spec.metricsConfig.provider", provider_names, NULL),
    LEAF("spec.metricsConfig.rollingWindow", POL_F_DURATION, "\"24h\""),
    ENUM("spec.metricsConfig.percentile", percentile_names, "\"P90\""),
    RANGE("spec.metricsConfig.safetyFactor", POL_F_NUMBER, "1.2", 1, 10),
    OBJ("spec.resourceBounds"),
    OBJ("spec.resourceBounds.cpu"),
    LEAF("spec.resourceBounds.cpu.min", POL_F_QUANTITY, NULL),
    LEAF("spec.resourceBounds.cpu.max", POL_F_QUANTITY, NULL),
    OBJ("spec.resourceBounds.memory"),
    LEAF("spec.resourceBounds.memory.min", POL_F_QUANTITY, NULL),
    LEAF("spec.resourceBounds.memory.max", POL_F_QUANTITY, NULL),
    OBJD("spec.updateStrategy", "{}"),
    ENUM("spec.updateStrategy.strategy", strategy_names, "\"ssa\""),
    ENUM("spec.updateStrategy.rolloutStrategy", rollout_names, "\"onNextRestart\""),
    LEAF("spec.updateStrategy.allowInPlaceResize", POL_F_BOOLEAN, "false"),
    LEAF("spec.updateStrategy.allowRecreate", POL_F_BOOLEAN, "false"),
    /* No fixed default: follows limitsPolicy.mode (see parse_limits). */
    LEAF("spec.updateStrategy.updateRequestsOnly", POL_F_BOOLEAN, NULL),
    LEAF("spec.updateStrategy.useServerSideApply", POL_F_BOOLEAN, "true"),
    LEAF("spec.updateStrategy.forceConflicts", POL_F_BOOLEAN, "true"),
    OBJD("spec.minHistory", "{}"),
    RANGE("spec.minHistory.samples", POL_F_INTEGER, "60", 1, 1000000),
    /* No fixed default: min(6h, rollingWindow). */
    LEAF("spec.minHistory.duration", POL_F_DURATION, NULL),
    RANGE("spec.changeThresholdPercent", POL_F_INTEGER, "10", 0, 100),
    RANGE("spec.maxDecreasePercent", POL_F_INTEGER, "50", 1, 100),
    OBJ("spec.limitsPolicy"),
    ENUM("spec.limitsPolicy.mode", limits_names, NULL),
    RANGE("spec.limitsPolicy.multiplier", POL_F_NUMBER, NULL, 1, 100),
    LEAF("spec.memoryFloorAtPeak", POL_F_BOOLEAN, "true"),
    OBJD("spec.oomBump", "{}"),
    LEAF("spec.oomBump.enabled", POL_F_BOOLEAN, "true"),
    LEAF("spec.oomBump.minIncrease", POL_F_QUANTITY, "\"100Mi\""),
    RANGE("spec.oomBump.factor", POL_F_NUMBER, "1.2", 1, 10),
    LEAF("spec.oomBump.cooldown", POL_F_DURATION, "\"24h\""),
    LEAF("spec.excludeContainers", POL_F_ARRAY, NULL),
    LEAF("spec.excludeContainers[]", POL_F_STRING, NULL),
    LEAF("spec.includeInitContainers", POL_F_BOOLEAN, "false"),
    LEAF("spec.reconcileInterval", POL_F_DURATION, "\"5m\""),
};

#define NFIELDS (sizeof fields / sizeof fields[0])

const pol_field *pol_fields(size_t *n)
{
    *n = NFIELDS;
    return fields;
}

const pol_field *pol_field_find(const char *path)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(fields[i].path, path) == 0)
            return &fields[i];
    return NULL;
}

/* --- durations ---------------------------------------------------------------------------- */

int pol_parse_duration(const char *s, int64_t *ms)
{
    int64_t total = 0;
    if (!s || !*s)
        return -EINVAL;
    while (*s) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        int64_t n = 0;
        bool big = false;
        while (*s >= '0' && *s <= '9') {
            n = n * 10 + (*s++ - '0');
            if (n > POL_MAX_DURATION)
                big = true, n = POL_MAX_DURATION + 1; /* keep scanning the syntax */
        }
        int64_t unit;
        if (s[0] == 'm' && s[1] == 's')
            unit = 1, s += 2;
        else if (*s == 's')
            unit = 1000, s++;
        else if (*s == 'm')
            unit = 60 * 1000, s++;
        else if (*s == 'h')
            unit = 3600 * 1000, s++;
        else if (*s == 'd')
            unit = 24 * 3600 * 1000, s++;
        else
            return -EINVAL;
        if (big || n > (POL_MAX_DURATION - total) / unit)
            total = POL_MAX_DURATION + 1;
        else
            total += n * unit;
    }
    /* Only now: a syntax error anywhere wins over a range error. */
    if (total > POL_MAX_DURATION)
        return -ERANGE;
    *ms = total;
    return 0;
}

void pol_format_duration(int64_t ms, char *buf, size_t size)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    size_t off = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    if (ms <= 0) {
        snprintf(buf, size, "0s");
        return;
    }
    for (size_t i = 0; i < 4 && off < size; i++) {
        if (ms < units[i].ms)
            continue;
        int n =
            snprintf(buf + off, size - off, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
        if (n < 0)
            return;
        off += (size_t)n;
        ms %= units[i].ms;
    }
}

/* --- parse context ------------------------------------------------------------------------ */

typedef struct pctx {
    pol_policy *p;
    int nomem;
} pctx;

static void add_err(pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_err(pctx *c, const char *fmt, ...)
{
    pol_policy *p = c->p;
    if (p->nerrors >= POL_MAX_ERRORS) {
        p->dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errors[p->nerrors++], POL_ERROR_LEN, fmt, ap);
    va_end(ap);
}

static const char *json_type(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsArray(v))
        return "a list";
    if (cJSON_IsObject(v))
        return "an object";
    return "null";
}

/* "parent.name" into buf. */
static const char *join(char *buf, size_t size, const char *parent, const char *name)
{
    snprintf(buf, size, "%s.%s", parent, name);
    return buf;
}

/* Report fields of `obj` that the table does not know (typos like "safetyfactor"
 * would otherwise be silently ignored). */
static void check_unknown(pctx *c, const cJSON *obj, const char *path)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, obj)
    {
        char sub[256];
        if (!pol_field_find(join(sub, sizeof sub, path, f->string)))
            add_err(c, "%s.%.60s: unknown field", path, f->string);
    }
}

/* The object at parent.name, or NULL when absent/null; reports a wrong type. */
static const cJSON *get_obj(pctx *c, const cJSON *parent, const char *ppath, const char *name,
                            char *path, size_t size)
{
    join(path, size, ppath, name);
    const cJSON *v = cJSON_IsObject(parent) ? cJSON_GetObjectItemCaseSensitive(parent, name) : NULL;
    if (!v || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsObject(v)) {
        add_err(c, "%s: must be an object, not %s", path, json_type(v));
        return NULL;
    }
    check_unknown(c, v, path);
    return v;
}

/* The value at parent.name, or the table's default when absent. *tmp holds a
 * parsed default for the caller to delete. */
static const cJSON *get_val(pctx *c, const cJSON *parent, const char *path, const char *name,
                            cJSON **tmp)
{
    *tmp = NULL;
    const cJSON *v = cJSON_IsObject(parent) ? cJSON_GetObjectItemCaseSensitive(parent, name) : NULL;
    if (v && !cJSON_IsNull(v))
        return v;
    const pol_field *f = pol_field_find(path);
    if (!f || !f->dflt)
        return NULL;
    *tmp = cJSON_Parse(f->dflt);
    if (!*tmp)
        c->nomem = 1;
    return *tmp;
}

/* Returns the enum index, -1 when absent without default, -2 when bad. */
static int get_enum(pctx *c, const cJSON *parent, const char *ppath, const char *name)
{
    char path[256];
    cJSON *tmp;
    join(path, sizeof path, ppath, name);
    const cJSON *v = get_val(c, parent, path, name, &tmp);
    const pol_field *f = pol_field_find(path);
    int idx = -1;
    if (!v)
        goto out;
    idx = -2;
    if (!cJSON_IsString(v)) {
        add_err(c, "%s: must be a string, not %s", path, json_type(v));
        goto out;
    }
    for (int i = 0; f->enums[i]; i++)
        if (strcmp(v->valuestring, f->enums[i]) == 0) {
            idx = i;
            goto out;
        }
    char want[128] = "";
    size_t off = 0;
    for (int i = 0; f->enums[i] && off < sizeof want; i++)
        off += (size_t)snprintf(want + off, sizeof want - off, "%s%s", i ? ", " : "", f->enums[i]);
    add_err(c, "%s: unsupported value \"%.40s\" (want one of %s)", path, v->valuestring, want);
out:
    cJSON_Delete(tmp);
    return idx;
}

/* Returns 1 when *out was set, 0 when absent without default, -1 when bad. */
static int get_bool(pctx *c, const cJSON *parent, const char *ppath, const char *name, bool *out)
{
    char path[256];
    cJSON *tmp;
    join(path, sizeof path, ppath, name);
    const cJSON *v = get_val(c, parent, path, name, &tmp);
    int rc = 0;
    if (v && cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        rc = 1;
    } else if (v) {
        add_err(c, "%s: must be a boolean, not %s", path, json_type(v));
        rc = -1;
    }
    cJSON_Delete(tmp);
    return rc;
}

/* Numbers and integers, range-checked against the table. */
static int get_num(pctx *c, const cJSON *parent, const char *ppath, const char *name, double *out)
{
    char path[256];
    cJSON *tmp;
    join(path, sizeof path, ppath, name);
    const cJSON *v = get_val(c, parent, path, name, &tmp);
    const pol_field *f = pol_field_find(path);
    int rc = 0;
    if (!v)
        goto out;
    rc = -1;
    if (!cJSON_IsNumber(v)) {
        add_err(c, "%s: must be a number, not %s", path, json_type(v));
        goto out;
    }
    double d = v->valuedouble;
    if (f->type == POL_F_INTEGER && (d != floor(d) || !isfinite(d))) {
        add_err(c, "%s: must be an integer, not %g", path, d);
        goto out;
    }
    if ((f->has_min && !(d >= f->min)) || (f->has_max && !(d <= f->max))) {
        add_err(c, "%s: %g is out of range [%g, %g]", path, d, f->min, f->max);
        goto out;
    }
    *out = d;
    rc = 1;
out:
    cJSON_Delete(tmp);
    return rc;
}

static int get_duration(pctx *c, const cJSON *parent, const char *ppath, const char *name,
                        int64_t *out)
{
    char path[256];
    cJSON *tmp;
    join(path, sizeof path, ppath, name);
    const cJSON *v = get_val(c, parent, path, name, &tmp);
    int rc = 0;
    if (!v)
        goto out;
    rc = -1;
    if (!cJSON_IsString(v)) {
        add_err(c, "%s: must be a duration string like \"24h\", not %s", path, json_type(v));
        goto out;
    }
    int e = pol_parse_duration(v->valuestring, out);
    if (e == -ERANGE)
        add_err(c, "%s: \"%.40s\" is longer than 366d", path, v->valuestring);
    else if (e)
        add_err(c,
                "%s: \"%.40s\" is not a duration (digits and units ms, s, m, h, d, as in "
                "\"1h30m\")",
                path, v->valuestring);
    else
        rc = 1;
out:
    cJSON_Delete(tmp);
    return rc;
}

/* Quantities are int-or-string, like resource.Quantity in the API.
 * cpu: value in millicores; otherwise bytes. */
static int get_qty(pctx *c, const cJSON *parent, const char *ppath, const char *name, bool cpu,
                   pol_qty *out)
{
    char path[256];
    cJSON *tmp;
    join(path, sizeof path, ppath, name);
    const cJSON *v = get_val(c, parent, path, name, &tmp);
    int rc = 0;
    if (!v)
        goto out;
    rc = -1;
    char text[POL_QTY_TEXT];
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d != floor(d) || fabs(d) > 9e15) {
            add_err(c, "%s: %g is not a quantity (write fractions as strings like \"500m\")", path,
                    d);
            goto out;
        }
        snprintf(text, sizeof text, "%.0f", d);
    } else if (cJSON_IsString(v)) {
        if (strlen(v->valuestring) >= sizeof text) {
            add_err(c, "%s: \"%.40s...\" is not a quantity", path, v->valuestring);
            goto out;
        }
        snprintf(text, sizeof text, "%s", v->valuestring);
    } else {
        add_err(c, "%s: must be a quantity (a string like \"100m\" or \"1Gi\"), not %s", path,
                json_type(v));
        goto out;
    }
    kq q;
    int64_t val;
    if (kq_parse_str(&q, text, NULL) != 0) {
        add_err(c, "%s: \"%s\" is not a quantity", path, text);
        goto out;
    }
    if ((cpu ? kq_to_milli(&q, &val) : kq_to_int(&q, &val)) != 0) {
        add_err(c, "%s: \"%s\" is too large", path, text);
        goto out;
    }
    if (val < 0 || (q.units < 0 || q.nanos < 0)) {
        add_err(c, "%s: \"%s\" must not be negative", path, text);
        goto out;
    }
    out->set = true;
    out->value = val;
    memcpy(out->text, text, sizeof text);
    rc = 1;
out:
    cJSON_Delete(tmp);
    return rc;
}

/* --- sections ----------------------------------------------------------------------------- */

static void parse_selector(pctx *c, const cJSON *spec)
{
    pol_policy *p = c->p;
    char path[256], sub[256];
    const cJSON *sel = get_obj(c, spec, "spec", "selector", path, sizeof path);
    if (!sel) {
        add_err(c, "spec.selector.workloadSelector: required (use {} to select every workload)");
        return;
    }
    for (int which = 0; which < 2; which++) {
        const char *name = which ? "namespaceSelector" : "workloadSelector";
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(sel, name);
        join(sub, sizeof sub, path, name);
        if (!s || cJSON_IsNull(s)) {
            if (!which)
                add_err(c, "%s: required (use {} to select every workload)", sub);
            continue;
        }
        operr e;
        int rc = lsel_from_json(which ? &p->namespace_sel : &p->workload_sel, s, sub, &e);
        if (rc == -ENOMEM)
            c->nomem = 1;
        else if (rc)
            add_err(c, "%s", e.msg);
        else if (which)
            p->has_namespace_sel = true;
    }
    cJSON *tmp;
    join(sub, sizeof sub, path, "workloadKinds");
    const cJSON *kinds = get_val(c, sel, sub, "workloadKinds", &tmp);
    if (!cJSON_IsArray(kinds)) {
        add_err(c, "%s: must be a list, not %s", sub, json_type(kinds));
        goto out;
    }
    unsigned set = 0;
    int i = 0;
    const cJSON *k;
    cJSON_ArrayForEach(k, kinds)
    {
        pol_kind kind = cJSON_IsString(k) ? pol_kind_from_name(k->valuestring) : 0;
        if (!kind)
            add_err(c,
                    "%s[%d]: unsupported value %s%.40s%s (want one of Deployment, StatefulSet, "
                    "DaemonSet)",
                    sub, i, cJSON_IsString(k) ? "\"" : "",
                    cJSON_IsString(k) ? k->valuestring : json_type(k),
                    cJSON_IsString(k) ? "\"" : "");
        else if (set & kind)
            add_err(c, "%s[%d]: duplicate value \"%s\"", sub, i, k->valuestring);
        set |= kind;
        i++;
    }
    if (i == 0)
        add_err(c, "%s: must list at least one kind", sub);
    p->kinds = set;
out:
    cJSON_Delete(tmp);
}

static void parse_metrics(pctx *c, const cJSON *spec)
{
    pol_policy *p = c->p;
    char path[256];
    const cJSON *m = get_obj(c, spec, "spec", "metricsConfig", path, sizeof path);
    int i = get_enum(c, m, path, "provider");
    if (i >= 0)
        p->provider = (pol_provider)(i + 1);
    if (get_duration(c, m, path, "rollingWindow", &p->window_ms) > 0 &&
        p->window_ms < POL_MIN_WINDOW)
        add_err(c, "%s.rollingWindow: must be at least 5m", path);
    i = get_enum(c, m, path, "percentile");
    if (i >= 0)
        p->percentile = percentile_values[i];
    get_num(c, m, path, "safetyFactor", &p->safety_factor);
}

static void parse_bounds(pctx *c, const cJSON *spec)
{
    pol_policy *p = c->p;
    char path[256], sub[256];
    const cJSON *b = get_obj(c, spec, "spec", "resourceBounds", path, sizeof path);
    for (int res = 0; res < 2; res++) {
        const char *name = res ? "memory" : "cpu";
        pol_bounds *pb = res ? &p->memory : &p->cpu;
        const cJSON *r = get_obj(c, b, path, name, sub, sizeof sub);
        get_qty(c, r, sub, "min", !res, &pb->min);
        get_qty(c, r, sub, "max", !res, &pb->max);
        if (pb->max.set && pb->max.value == 0)
            add_err(c, "%s.max: must be greater than zero", sub);
        if (pb->min.set && pb->max.set && pb->min.value > pb->max.value)
            add_err(c, "%s.min: \"%s\" is greater than max \"%s\"", sub, pb->min.text,
                    pb->max.text);
    }
}

/* updateRequestsOnly and limitsPolicy.mode say the same thing twice (the first
 * is the product docs' switch, the second the engine's): either may be given,
 * and when both are they must agree. Their defaults follow each other. */
static void parse_update_and_limits(pctx *c, const cJSON *spec)
{
    pol_policy *p = c->p;
    char path[256], lpath[256];
    const cJSON *u = get_obj(c, spec, "spec", "updateStrategy", path, sizeof path);
    int i = get_enum(c, u, path, "strategy");
    if (i >= 0)
        p->strategy = (pol_strategy)i;
    i = get_enum(c, u, path, "rolloutStrategy");
    if (i >= 0)
        p->rollout = (pol_rollout)i;
    get_bool(c, u, path, "allowInPlaceResize", &p->allow_in_place_resize);
    get_bool(c, u, path, "allowRecreate", &p->allow_recreate);
    bool uro = true;
    int has_uro = get_bool(c, u, path, "updateRequestsOnly", &uro);
    get_bool(c, u, path, "useServerSideApply", &p->use_ssa);
    get_bool(c, u, path, "forceConflicts", &p->force_conflicts);

    if (p->strategy == POL_STRATEGY_SSA && !p->use_ssa)
        add_err(c, "%s.useServerSideApply: false contradicts strategy \"ssa\"", path);
    /* The webhook sets resources only when a pod is created: applying at once
     * needs a way to touch running pods. */
    if (p->strategy == POL_STRATEGY_WEBHOOK && p->rollout == POL_ROLLOUT_IMMEDIATE &&
        !p->allow_in_place_resize && !p->allow_recreate)
        add_err(c,
                "%s.rolloutStrategy: \"immediate\" with strategy \"webhook\" needs "
                "allowInPlaceResize or allowRecreate (the webhook only acts when pods are "
                "created)",
                path);

    const cJSON *l = get_obj(c, spec, "spec", "limitsPolicy", lpath, sizeof lpath);
    int mode = get_enum(c, l, lpath, "mode");
    double mult = 0;
    int has_mult = get_num(c, l, lpath, "multiplier", &mult);
    if (l && mode == -1)
        add_err(c, "%s.mode: required", lpath);
    if (mode >= 0) {
        p->limits = (pol_limits)mode;
        if (has_uro > 0 && uro != (p->limits == POL_LIMITS_REQUESTS_ONLY))
            add_err(c, "%s.updateRequestsOnly: %s contradicts limitsPolicy.mode \"%s\"", path,
                    uro ? "true" : "false", limits_names[mode]);
        p->update_requests_only = p->limits == POL_LIMITS_REQUESTS_ONLY;
    } else if (mode == -1) {
        p->update_requests_only = uro;
        p->limits = uro ? POL_LIMITS_REQUESTS_ONLY : POL_LIMITS_KEEP_RATIO;
    }
    if (mode == POL_LIMITS_MULTIPLIER && has_mult == 0)
        add_err(c, "%s.multiplier: required when mode is \"Multiplier\"", lpath);
    if (mode >= 0 && mode != POL_LIMITS_MULTIPLIER && has_mult > 0)
        add_err(c, "%s.multiplier: only allowed when mode is \"Multiplier\"", lpath);
    if (has_mult > 0)
        p->limit_multiplier = mult;
}

static void parse_engine(pctx *c, const cJSON *spec)
{
    pol_policy *p = c->p;
    char path[256];
    double d;
    const cJSON *h = get_obj(c, spec, "spec", "minHistory", path, sizeof path);
    if (get_num(c, h, path, "samples", &d) > 0)
        p->min_samples = (int64_t)d;
    int has = get_duration(c, h, path, "duration", &p->min_history_ms);
    if (has == 0)
        p->min_history_ms = p->window_ms < 6 * 3600000LL ? p->window_ms : 6 * 3600000LL;
    else if (has > 0 && p->min_history_ms > p->window_ms)
        add_err(c,
                "%s.duration: longer than metricsConfig.rollingWindow (history beyond the "
                "window is never seen)",
                path);

    if (get_num(c, spec, "spec", "changeThresholdPercent", &d) > 0)
        p->change_threshold_pct = (int)d;
    if (get_num(c, spec, "spec", "maxDecreasePercent", &d) > 0)
        p->max_decrease_pct = (int)d;
    get_bool(c, spec, "spec", "memoryFloorAtPeak", &p->memory_floor_at_peak);

    const cJSON *o = get_obj(c, spec, "spec", "oomBump", path, sizeof path);
    get_bool(c, o, path, "enabled", &p->oom_bump);
    pol_qty q = {0};
    if (get_qty(c, o, path, "minIncrease", false, &q) > 0)
        p->oom_min_bump_bytes = q.value;
    get_num(c, o, path, "factor", &p->oom_factor);
    get_duration(c, o, path, "cooldown", &p->oom_cooldown_ms);

    get_bool(c, spec, "spec", "includeInitContainers", &p->include_init_containers);
    if (get_duration(c, spec, "spec", "reconcileInterval", &p->reconcile_ms) > 0 &&
        p->reconcile_ms < POL_MIN_RECONCILE)
        add_err(c, "spec.reconcileInterval: must be at least 10s");
}

/* Container names are DNS-1123 labels. */
static bool valid_dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static void parse_excluded(pctx *c, const cJSON *spec)
{
    pol_policy *p = c->p;
    const char *path = "spec.excludeContainers";
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(spec, "excludeContainers");
    if (!x || cJSON_IsNull(x))
        return;
    if (!cJSON_IsArray(x)) {
        add_err(c, "%s: must be a list, not %s", path, json_type(x));
        return;
    }
    int n = cJSON_GetArraySize(x);
    if (n > POL_MAX_EXCLUDED) {
        add_err(c, "%s: more than %d entries", path, POL_MAX_EXCLUDED);
        return;
    }
    p->exclude_containers = calloc((size_t)n + 1, sizeof *p->exclude_containers);
    if (!p->exclude_containers) {
        c->nomem = 1;
        return;
    }
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, x)
    {
        if (!cJSON_IsString(e))
            add_err(c, "%s[%d]: must be a string, not %s", path, i, json_type(e));
        else if (!valid_dns_label(e->valuestring))
            add_err(c, "%s[%d]: \"%.63s\" is not a valid container name", path, i, e->valuestring);
        else if (!(p->exclude_containers[p->nexclude++] = strdup(e->valuestring)))
            c->nomem = 1;
        i++;
    }
}

static char *dup_bounded(pctx *c, const char *s)
{
    char *d = strndup(s, POL_MAX_NAME);
    if (!d)
        c->nomem = 1;
    return d;
}

static void parse_meta(pctx *c, const cJSON *obj)
{
    pol_policy *p = c->p;
    const cJSON *av = cJSON_GetObjectItemCaseSensitive(obj, "apiVersion");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    if (av && !(cJSON_IsString(av) && strcmp(av->valuestring, "optipod.io/v1alpha1") == 0))
        add_err(c, "apiVersion: want \"optipod.io/v1alpha1\"");
    if (kind && !(cJSON_IsString(kind) && strcmp(kind->valuestring, "OptimizationPolicy") == 0))
        add_err(c, "kind: want \"OptimizationPolicy\"");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(md, "uid");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(md, "generation");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(md, "creationTimestamp");
    if (cJSON_IsString(name) && name->valuestring[0])
        p->name = dup_bounded(c, name->valuestring);
    else
        add_err(c, "metadata.name: required");
    /* Offline (kubectl optipod validate) a file may omit it, like kubectl does. */
    p->namespace =
        dup_bounded(c, cJSON_IsString(ns) && ns->valuestring[0] ? ns->valuestring : "default");
    if (cJSON_IsString(uid))
        p->uid = dup_bounded(c, uid->valuestring);
    if (cJSON_IsNumber(gen))
        p->generation = (int64_t)gen->valuedouble;
    optime created;
    if (cJSON_IsString(ct) && optime_parse(ct->valuestring, OPTIME_UTC, &created) != 0)
        add_err(c, "metadata.creationTimestamp: \"%.40s\" is not an RFC 3339 UTC time",
                ct->valuestring);
    else if (cJSON_IsString(ct))
        p->created = created.sec;
}

/* --- public ------------------------------------------------------------------------------- */

void pol_init(pol_policy *p)
{
    memset(p, 0, sizeof *p);
    lsel_init(&p->workload_sel);
    lsel_init(&p->namespace_sel);
    p->created = INT64_MAX;
}

void pol_release(pol_policy *p)
{
    free(p->name);
    free(p->namespace);
    free(p->uid);
    for (size_t i = 0; i < p->nexclude; i++)
        free(p->exclude_containers[i]);
    free(p->exclude_containers);
    lsel_release(&p->workload_sel);
    lsel_release(&p->namespace_sel);
    pol_init(p);
}

int pol_parse(const cJSON *obj, pol_policy *out, operr *err)
{
    pctx c = {.p = out};
    int rc = 0;
    pol_release(out);
    if (!cJSON_IsObject(obj)) {
        add_err(&c, "policy: must be a JSON object");
        goto done;
    }
    parse_meta(&c, obj);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    if (!cJSON_IsObject(spec)) {
        add_err(&c, "spec: required object");
        goto done;
    }
    check_unknown(&c, spec, "spec");
    int i = get_enum(&c, spec, "spec", "mode");
    if (i >= 0)
        out->mode = (pol_mode)i;
    double w;
    if (get_num(&c, spec, "spec", "weight", &w) > 0)
        out->weight = (int)w;
    parse_selector(&c, spec);
    parse_metrics(&c, spec);
    parse_bounds(&c, spec);
    parse_update_and_limits(&c, spec);
    parse_engine(&c, spec);
    parse_excluded(&c, spec);
done:
    if (c.nomem) {
        pol_release(out);
        return operr_set(err, -ENOMEM, "policy: out of memory");
    }
    out->valid = out->nerrors == 0;
    if (out->valid)
        return 0;
    rc = -EINVAL;
    size_t more = out->nerrors - 1 + out->dropped;
    if (more)
        operr_set(err, rc, "%s (and %zu more)", out->errors[0], more);
    else
        operr_set(err, rc, "%s", out->errors[0]);
    return rc;
}

int pol_errors_format(const pol_policy *p, opbuf *out)
{
    int rc = 0;
    for (size_t i = 0; i < p->nerrors && rc == 0; i++)
        rc = opbuf_printf(out, "%s%s", i ? "; " : "", p->errors[i]);
    if (rc == 0 && p->dropped)
        rc = opbuf_printf(out, " (and %zu more)", p->dropped);
    return rc;
}

cJSON *pol_errors_to_json(const pol_policy *p)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < p->nerrors; i++) {
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(p->errors[i]))) {
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

/* --- matching and precedence -------------------------------------------------------------- */

bool pol_matches(const pol_policy *p, const pol_target *t)
{
    if (!p->valid || !(p->kinds & (unsigned)t->kind))
        return false;
    if (p->has_namespace_sel) {
        if (!lsel_matches(&p->namespace_sel, t->ns_labels))
            return false;
    } else if (!p->namespace || !t->namespace || strcmp(p->namespace, t->namespace) != 0) {
        return false;
    }
    return lsel_matches(&p->workload_sel, t->labels);
}

static int cmp_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

int pol_compare(const pol_policy *a, const pol_policy *b)
{
    if (a->weight != b->weight)
        return a->weight > b->weight ? -1 : 1;
    if (a->created != b->created)
        return a->created < b->created ? -1 : 1;
    int c = cmp_str(a->namespace, b->namespace);
    return c ? c : cmp_str(a->name, b->name);
}

size_t pol_rank(const pol_policy *const *policies, size_t n, const pol_target *t,
                const pol_policy **ranked)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!policies[i] || !pol_matches(policies[i], t))
            continue;
        /* Insertion sort: a workload rarely matches more than a few policies. */
        size_t j = m++;
        while (j > 0 && pol_compare(policies[i], ranked[j - 1]) < 0) {
            ranked[j] = ranked[j - 1];
            j--;
        }
        ranked[j] = policies[i];
    }
    return m;
}

bool pol_excludes_container(const pol_policy *p, const char *container)
{
    for (size_t i = 0; i < p->nexclude; i++)
        if (strcmp(p->exclude_containers[i], container) == 0)
            return true;
    return false;
}

/* --- back to JSON ------------------------------------------------------------------------- */

static bool add_dur(cJSON *o, const char *k, int64_t ms)
{
    char buf[64];
    pol_format_duration(ms, buf, sizeof buf);
    return cJSON_AddStringToObject(o, k, buf) != NULL;
}

static bool add_bounds(cJSON *parent, const char *k, const pol_bounds *b)
{
    if (!b->min.set && !b->max.set)
        return true;
    cJSON *o = cJSON_AddObjectToObject(parent, k);
    if (!o)
        return false;
    if (b->min.set && !cJSON_AddStringToObject(o, "min", b->min.text))
        return false;
    return !b->max.set || cJSON_AddStringToObject(o, "max", b->max.text);
}

static bool add_selector(cJSON *parent, const char *k, const lsel_selector *s)
{
    cJSON *j = lsel_to_json(s);
    return j && cJSON_AddItemToObject(parent, k, j);
}

cJSON *pol_spec_to_json(const pol_policy *p)
{
    cJSON *s = cJSON_CreateObject();
    cJSON *o = NULL, *a = NULL;
    char buf[64];
    bool ok = s && cJSON_AddStringToObject(s, "mode", pol_mode_name(p->mode)) &&
              cJSON_AddNumberToObject(s, "weight", p->weight);

    ok = ok && (o = cJSON_AddObjectToObject(s, "selector")) &&
         add_selector(o, "workloadSelector", &p->workload_sel) &&
         (!p->has_namespace_sel || add_selector(o, "namespaceSelector", &p->namespace_sel)) &&
         (a = cJSON_AddArrayToObject(o, "workloadKinds"));
    for (int i = 0; ok && kind_names[i]; i++)
        if (p->kinds & (1u << i))
            ok = cJSON_AddItemToArray(a, cJSON_CreateString(kind_names[i]));

    snprintf(buf, sizeof buf, "P%d", p->percentile);
    ok = ok && (o = cJSON_AddObjectToObject(s, "metricsConfig")) &&
         (p->provider == POL_PROVIDER_DEFAULT ||
          cJSON_AddStringToObject(o, "provider", pol_provider_name(p->provider))) &&
         add_dur(o, "rollingWindow", p->window_ms) &&
         cJSON_AddStringToObject(o, "percentile", buf) &&
         cJSON_AddNumberToObject(o, "safetyFactor", p->safety_factor);

    if (ok && (p->cpu.min.set || p->cpu.max.set || p->memory.min.set || p->memory.max.set))
        ok = (o = cJSON_AddObjectToObject(s, "resourceBounds")) && add_bounds(o, "cpu", &p->cpu) &&
             add_bounds(o, "memory", &p->memory);

    ok = ok && (o = cJSON_AddObjectToObject(s, "updateStrategy")) &&
         cJSON_AddStringToObject(o, "strategy", pol_strategy_name(p->strategy)) &&
         cJSON_AddStringToObject(o, "rolloutStrategy", pol_rollout_name(p->rollout)) &&
         cJSON_AddBoolToObject(o, "allowInPlaceResize", p->allow_in_place_resize) &&
         cJSON_AddBoolToObject(o, "allowRecreate", p->allow_recreate) &&
         cJSON_AddBoolToObject(o, "updateRequestsOnly", p->update_requests_only) &&
         cJSON_AddBoolToObject(o, "useServerSideApply", p->use_ssa) &&
         cJSON_AddBoolToObject(o, "forceConflicts", p->force_conflicts);

    ok = ok && (o = cJSON_AddObjectToObject(s, "minHistory")) &&
         cJSON_AddNumberToObject(o, "samples", (double)p->min_samples) &&
         add_dur(o, "duration", p->min_history_ms) &&
         cJSON_AddNumberToObject(s, "changeThresholdPercent", p->change_threshold_pct) &&
         cJSON_AddNumberToObject(s, "maxDecreasePercent", p->max_decrease_pct);

    ok = ok && (o = cJSON_AddObjectToObject(s, "limitsPolicy")) &&
         cJSON_AddStringToObject(o, "mode", pol_limits_name(p->limits)) &&
         (p->limits != POL_LIMITS_MULTIPLIER ||
          cJSON_AddNumberToObject(o, "multiplier", p->limit_multiplier));

    if (ok) {
        kq q = kq_from_int(p->oom_min_bump_bytes, KQ_BINARY_SI);
        if (kq_format(&q, buf, sizeof buf) < 0)
            snprintf(buf, sizeof buf, "%lld", (long long)p->oom_min_bump_bytes);
    }
    ok = ok && cJSON_AddBoolToObject(s, "memoryFloorAtPeak", p->memory_floor_at_peak) &&
         (o = cJSON_AddObjectToObject(s, "oomBump")) &&
         cJSON_AddBoolToObject(o, "enabled", p->oom_bump) &&
         cJSON_AddStringToObject(o, "minIncrease", buf) &&
         cJSON_AddNumberToObject(o, "factor", p->oom_factor) &&
         add_dur(o, "cooldown", p->oom_cooldown_ms);

    ok = ok && (a = cJSON_AddArrayToObject(s, "excludeContainers"));
    for (size_t i = 0; ok && i < p->nexclude; i++)
        ok = cJSON_AddItemToArray(a, cJSON_CreateString(p->exclude_containers[i]));
    ok = ok && cJSON_AddBoolToObject(s, "includeInitContainers", p->include_init_containers) &&
         add_dur(s, "reconcileInterval", p->reconcile_ms);
    if (!ok) {
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}
