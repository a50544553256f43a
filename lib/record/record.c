/*
 * rrec: build and read OptimizationRecommendation records (see record.h).
 */
#include "record/record.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const slot_json[RREC_NV] = {"cpuRequest", "memoryRequest", "cpuLimit",
                                               "memoryLimit"};

void rrec_init(rrec *r)
{
    memset(r, 0, sizeof *r);
}

void rrec_release(rrec *r)
{
    for (size_t i = 0; i < r->n && i < RREC_MAX_CONTAINERS; i++)
        free(r->c[i].explanation);
    memset(r, 0, sizeof *r);
}

int rrec_name(char *buf, size_t size, const char *kind, const char *name)
{
    if (!kind || !*kind || !name || !*name || size < RREC_NAME_MAX + 1)
        return -EINVAL;
    char full[2 * RREC_NAME_MAX + 64];
    int n = snprintf(full, sizeof full, "%s-%s", kind, name);
    if (n < 0 || (size_t)n >= sizeof full)
        return -EINVAL;
    for (char *p = full; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (n <= RREC_NAME_MAX) {
        memcpy(buf, full, (size_t)n + 1);
        return 0;
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = full; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(buf, size, "%.244s-%08x", full, h);
    return 0;
}

int rrec_set_explanation(rrec_container *c, const char *json)
{
    free(c->explanation);
    c->explanation = NULL;
    if (!json)
        return 0;
    return (c->explanation = strdup(json)) ? 0 : -ENOMEM;
}

int rrec_applied(const rrec *r)
{
    int any = 0;
    for (size_t i = 0; i < r->n; i++) {
        int has = 0;
        for (int v = 0; v < RREC_NV; v++)
            has |= r->c[i].rec[v][0] != '\0';
        if (has && !r->c[i].applied)
            return 0;
        any |= has;
    }
    return any;
}

int64_t rrec_samples(const rrec *r)
{
    int64_t m = -1;
    for (size_t i = 0; i < r->n; i++)
        if (r->c[i].samples >= 0 && (m < 0 || r->c[i].samples < m))
            m = r->c[i].samples;
    return m;
}

/* ---- build ----------------------------------------------------------------------------------- */

static int add_str(cJSON *o, const char *k, const char *v)
{
    return cJSON_AddStringToObject(o, k, v) ? 0 : -ENOMEM;
}

static cJSON *slots(const char (*v)[RREC_QTY])
{
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; o && k < RREC_NV; k++)
        if (v[k][0] && add_str(o, slot_json[k], v[k])) {
            cJSON_Delete(o);
            return NULL;
        }
    return o;
}

/* "500m->315m" per container with a recommendation for the slot, ","-joined. */
static void summary(const rrec *r, int v, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        const rrec_container *c = &r->c[i];
        if (!c->rec[v][0])
            continue;
        int n = snprintf(buf + len, size - len, "%s%s->%s", len ? "," : "",
                         c->cur[v][0] ? c->cur[v] : "-", c->rec[v]);
        if (n < 0 || (size_t)n >= size - len) {
            buf[len] = '\0';
            return;
        }
        len += (size_t)n;
    }
}

static cJSON *container_json(const rrec_container *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int rc = add_str(o, "name", c->name);
    if (!rc && c->init)
        rc = cJSON_AddTrueToObject(o, "init") ? 0 : -ENOMEM;
    cJSON *cur = slots(c->cur), *rec = slots(c->rec);
    if (cur)
        cJSON_AddItemToObject(o, "current", cur);
    if (rec)
        cJSON_AddItemToObject(o, "recommended", rec);
    if (!cur || !rec)
        rc = -ENOMEM;
    if (!rc && c->samples >= 0)
        rc = cJSON_AddNumberToObject(o, "samples", (double)c->samples) ? 0 : -ENOMEM;
    if (!rc && c->span_s >= 0)
        rc = cJSON_AddNumberToObject(o, "spanSeconds", (double)c->span_s) ? 0 : -ENOMEM;
    if (!rc)
        rc = add_str(o, "rule", c->rule);
    if (!rc)
        rc = cJSON_AddBoolToObject(o, "applied", c->applied) ? 0 : -ENOMEM;
    cJSON *m = rc ? NULL : cJSON_AddArrayToObject(o, "conflictingManagers");
    if (!rc && !m)
        rc = -ENOMEM;
    for (const char *p = c->conflicts; !rc && *p;) {
        const char *e = strstr(p, ", ");
        size_t l = e ? (size_t)(e - p) : strlen(p);
        char name[RREC_CONFLICTS];
        snprintf(name, sizeof name, "%.*s", (int)l, p);
        cJSON *s = cJSON_CreateString(name);
        if (!s)
            rc = -ENOMEM;
        else
            cJSON_AddItemToArray(m, s);
        p = e ? e + 2 : p + l;
    }
    if (!rc && c->explanation) {
        cJSON *x = cJSON_Parse(c->explanation);
        if (cJSON_IsObject(x))
            cJSON_AddItemToObject(o, "explanation", x);
        else
            cJSON_Delete(x);
    }
    if (rc) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int rrec_build(const rrec *r, opbuf *body, operr *err)
{
    if (!r->name[0] || !r->ns[0] || !r->kind[0] || !r->target[0])
        return operr_set(err, -EINVAL,
                         "recommendation record: name, namespace and workload "
                         "are required");
    if (r->n > RREC_MAX_CONTAINERS)
        return operr_set(err, -EINVAL, "recommendation record: %zu containers (at most %d)", r->n,
                         RREC_MAX_CONTAINERS);
    cJSON *o = cJSON_CreateObject(), *md = NULL, *spec = NULL, *st = NULL;
    int rc = o ? 0 : -ENOMEM;
    rc = rc ?: add_str(o, "apiVersion", RREC_API_VERSION);
    rc = rc ?: add_str(o, "kind", RREC_KIND);
    if (!rc && !(md = cJSON_AddObjectToObject(o, "metadata")))
        rc = -ENOMEM;
    rc = rc ?: add_str(md, "name", r->name);
    rc = rc ?: add_str(md, "namespace", r->ns);
    if (!rc) {
        cJSON *l = cJSON_AddObjectToObject(md, "labels");
        rc = l ? add_str(l, "app.kubernetes.io/managed-by", "optipod") : -ENOMEM;
    }
    if (!rc && r->uid[0]) {
        cJSON *refs = cJSON_AddArrayToObject(md, "ownerReferences");
        cJSON *ref = cJSON_CreateObject();
        if (!refs || !ref) {
            cJSON_Delete(ref);
            rc = -ENOMEM;
        } else {
            cJSON_AddItemToArray(refs, ref);
            rc = add_str(ref, "apiVersion", r->api_version[0] ? r->api_version : "apps/v1");
            rc = rc ?: add_str(ref, "kind", r->kind);
            rc = rc ?: add_str(ref, "name", r->target);
            rc = rc ?: add_str(ref, "uid", r->uid);
        }
    }
    if (!rc && !(spec = cJSON_AddObjectToObject(o, "spec")))
        rc = -ENOMEM;
    if (!rc) {
        cJSON *t = cJSON_AddObjectToObject(spec, "targetRef");
        rc = t ? 0 : -ENOMEM;
        if (!rc && r->api_version[0])
            rc = add_str(t, "apiVersion", r->api_version);
        rc = rc ?: add_str(t, "kind", r->kind);
        rc = rc ?: add_str(t, "name", r->target);
        if (!rc && r->uid[0])
            rc = add_str(t, "uid", r->uid);
    }
    rc = rc ?: add_str(spec, "policy", r->policy);
    rc = rc ?: add_str(spec, "mode", r->mode);
    rc = rc ?: add_str(spec, "strategy", r->strategy);
    if (!rc) {
        cJSON *s = cJSON_AddObjectToObject(spec, "source");
        rc = s ? add_str(s, "provider", r->provider) : -ENOMEM;
        if (!rc && r->window[0])
            rc = add_str(s, "window", r->window);
        if (!rc && r->percentile != 0)
            rc = cJSON_AddNumberToObject(s, "percentile", r->percentile) ? 0 : -ENOMEM;
        if (!rc && r->safety_factor != 0)
            rc = cJSON_AddNumberToObject(s, "safetyFactor", r->safety_factor) ? 0 : -ENOMEM;
        if (!rc && r->history[0])
            rc = add_str(s, "history", r->history);
        if (!rc && r->history[0])
            rc = cJSON_AddNumberToObject(s, "historyPods", r->history_pods) ? 0 : -ENOMEM;
    }
    if (!rc && !(st = cJSON_AddObjectToObject(o, "status")))
        rc = -ENOMEM;
    if (!rc && r->time[0])
        rc = add_str(st, "time", r->time);
    if (!rc)
        rc = cJSON_AddBoolToObject(st, "applied", rrec_applied(r)) ? 0 : -ENOMEM;
    int64_t smp = rrec_samples(r);
    if (!rc && smp >= 0)
        rc = cJSON_AddNumberToObject(st, "samples", (double)smp) ? 0 : -ENOMEM;
    char sum[512];
    summary(r, RREC_CPU_REQ, sum, sizeof sum);
    if (!rc && sum[0])
        rc = add_str(st, "cpuRequest", sum);
    summary(r, RREC_MEM_REQ, sum, sizeof sum);
    if (!rc && sum[0])
        rc = add_str(st, "memoryRequest", sum);
    cJSON *ctrs = rc ? NULL : cJSON_AddArrayToObject(st, "containers");
    if (!rc && !ctrs)
        rc = -ENOMEM;
    for (size_t i = 0; !rc && i < r->n; i++) {
        cJSON *c = container_json(&r->c[i]);
        if (!c)
            rc = -ENOMEM;
        else
            cJSON_AddItemToArray(ctrs, c);
    }
    char *text = rc ? NULL : cJSON_PrintUnformatted(o);
    if (!rc && !text)
        rc = -ENOMEM;
    if (!rc)
        rc = opbuf_puts(body, text);
    cJSON_free(text);
    cJSON_Delete(o);
    return rc ? operr_set(err, rc, "recommendation record %s/%s: out of memory", r->ns, r->name)
              : 0;
}

/* ---- parse ----------------------------------------------------------------------------------- */

/* A string field into buf. Missing: "" (or an error when required). */
static int get_str(const cJSON *o, const char *key, char *buf, size_t size, int required,
                   const char *path, operr *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    buf[0] = '\0';
    if (!v || cJSON_IsNull(v))
        return required ? operr_set(err, -EINVAL, "%s.%s: required", path, key) : 0;
    if (!cJSON_IsString(v))
        return operr_set(err, -EINVAL, "%s.%s: not a string", path, key);
    size_t n = strlen(v->valuestring);
    if (n >= size)
        return operr_set(err, -EINVAL, "%s.%s: longer than %zu characters", path, key, size - 1);
    memcpy(buf, v->valuestring, n + 1);
    return 0;
}

/* A non-negative integer field; -1 when missing. */
static int get_count(const cJSON *o, const char *key, int64_t *out, const char *path, operr *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = -1;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 9.0e15 ||
        v->valuedouble != floor(v->valuedouble))
        return operr_set(err, -EINVAL, "%s.%s: not a non-negative integer", path, key);
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int get_num(const cJSON *o, const char *key, double *out, const char *path, operr *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = 0;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return operr_set(err, -EINVAL, "%s.%s: not a number", path, key);
    *out = v->valuedouble;
    return 0;
}

static const cJSON *get_obj(const cJSON *o, const char *key, int required, const char *path,
                            operr *err, int *rc)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *rc = 0;
    if (!v || cJSON_IsNull(v)) {
        if (required)
            *rc = operr_set(err, -EINVAL, "%s.%s: required", path, key);
        return NULL;
    }
    if (!cJSON_IsObject(v)) {
        *rc = operr_set(err, -EINVAL, "%s.%s: not an object", path, key);
        return NULL;
    }
    return v;
}

static int parse_slots(const cJSON *o, char (*v)[RREC_QTY], const char *path, operr *err)
{
    for (int k = 0; k < RREC_NV; k++) {
        int rc = get_str(o, slot_json[k], v[k], RREC_QTY, 0, path, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_container(const cJSON *o, rrec_container *c, const char *path, operr *err)
{
    if (!cJSON_IsObject(o))
        return operr_set(err, -EINVAL, "%s: not an object", path);
    int rc = get_str(o, "name", c->name, sizeof c->name, 1, path, err);
    if (rc)
        return rc;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "init");
    if (b && !cJSON_IsBool(b))
        return operr_set(err, -EINVAL, "%s.init: not a boolean", path);
    c->init = cJSON_IsTrue(b);
    b = cJSON_GetObjectItemCaseSensitive(o, "applied");
    if (b && !cJSON_IsBool(b))
        return operr_set(err, -EINVAL, "%s.applied: not a boolean", path);
    c->applied = cJSON_IsTrue(b);
    char sub[160];
    const cJSON *s = get_obj(o, "current", 0, path, err, &rc);
    snprintf(sub, sizeof sub, "%s.current", path);
    if (rc || (s && (rc = parse_slots(s, c->cur, sub, err))))
        return rc;
    s = get_obj(o, "recommended", 0, path, err, &rc);
    snprintf(sub, sizeof sub, "%s.recommended", path);
    if (rc || (s && (rc = parse_slots(s, c->rec, sub, err))))
        return rc;
    if ((rc = get_count(o, "samples", &c->samples, path, err)) ||
        (rc = get_count(o, "spanSeconds", &c->span_s, path, err)) ||
        (rc = get_str(o, "rule", c->rule, sizeof c->rule, 0, path, err)))
        return rc;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "conflictingManagers");
    if (m && !cJSON_IsNull(m) && !cJSON_IsArray(m))
        return operr_set(err, -EINVAL, "%s.conflictingManagers: not a list", path);
    size_t len = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, m)
    {
        if (!cJSON_IsString(e))
            return operr_set(err, -EINVAL, "%s.conflictingManagers: not a list of strings", path);
        size_t l = strlen(e->valuestring);
        if (!l || strstr(e->valuestring, ", "))
            return operr_set(err, -EINVAL, "%s.conflictingManagers: \"%s\" is not a manager name",
                             path, e->valuestring);
        if (len + l + 3 > sizeof c->conflicts)
            return operr_set(err, -EINVAL, "%s.conflictingManagers: longer than %d characters",
                             path, RREC_CONFLICTS - 1);
        len += (size_t)snprintf(c->conflicts + len, sizeof c->conflicts - len, "%s%s",
                                len ? ", " : "", e->valuestring);
    }
    const cJSON *x = get_obj(o, "explanation", 0, path, err, &rc);
    if (rc)
        return rc;
    if (x) {
        char *t = cJSON_PrintUnformatted(x);
        if (!t)
            return operr_set(err, -ENOMEM, "out of memory");
        rc = rrec_set_explanation(c, t);
        cJSON_free(t);
        if (rc)
            return operr_set(err, rc, "out of memory");
    }
    return 0;
}

int rrec_parse(const cJSON *obj, rrec *out, operr *err)
{
    rrec_init(out);
    int rc = 0;
    if (!cJSON_IsObject(obj))
        return operr_set(err, -EINVAL, "recommendation record: not an object");
    const cJSON *md = get_obj(obj, "metadata", 1, "record", err, &rc);
    if (rc || (rc = get_str(md, "name", out->name, sizeof out->name, 1, "metadata", err)) ||
        (rc = get_str(md, "namespace", out->ns, sizeof out->ns, 0, "metadata", err)))
        goto fail;
    const cJSON *spec = get_obj(obj, "spec", 1, "record", err, &rc);
    if (rc)
        goto fail;
    const cJSON *t = get_obj(spec, "targetRef", 1, "spec", err, &rc);
    if (rc ||
        (rc = get_str(t, "apiVersion", out->api_version, sizeof out->api_version, 0,
                      "spec.targetRef", err)) ||
        (rc = get_str(t, "kind", out->kind, sizeof out->kind, 1, "spec.targetRef", err)) ||
        (rc = get_str(t, "name", out->target, sizeof out->target, 1, "spec.targetRef", err)) ||
        (rc = get_str(t, "uid", out->uid, sizeof out->uid, 0, "spec.targetRef", err)) ||
        (rc = get_str(spec, "policy", out->policy, sizeof out->policy, 0, "spec", err)) ||
        (rc = get_str(spec, "mode", out->mode, sizeof out->mode, 0, "spec", err)) ||
        (rc = get_str(spec, "strategy", out->strategy, sizeof out->strategy, 0, "spec", err)))
        goto fail;
    const cJSON *src = get_obj(spec, "source", 0, "spec", err, &rc);
    if (rc ||
        (rc = get_str(src, "provider", out->provider, sizeof out->provider, 0, "spec.source",
                      err)) ||
        (rc = get_str(src, "window", out->window, sizeof out->window, 0, "spec.source", err)) ||
        (rc = get_num(src, "percentile", &out->percentile, "spec.source", err)) ||
        (rc = get_num(src, "safetyFactor", &out->safety_factor, "spec.source", err)) ||
        (rc = get_str(src, "history", out->history, sizeof out->history, 0, "spec.source", err)) ||
        (rc = get_num(src, "historyPods", &out->history_pods, "spec.source", err)))
        goto fail;
    const cJSON *st = get_obj(obj, "status", 0, "record", err, &rc);
    if (rc || (rc = get_str(st, "time", out->time, sizeof out->time, 0, "status", err)))
        goto fail;
    const cJSON *ctrs = cJSON_GetObjectItemCaseSensitive(st, "containers");
    if (ctrs && !cJSON_IsNull(ctrs) && !cJSON_IsArray(ctrs)) {
        rc = operr_set(err, -EINVAL, "status.containers: not a list");
        goto fail;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, ctrs)
    {
        if (out->n == RREC_MAX_CONTAINERS) {
            rc = operr_set(err, -EINVAL, "status.containers: more than %d", RREC_MAX_CONTAINERS);
            goto fail;
        }
        char path[64];
        snprintf(path, sizeof path, "status.containers[%zu]", out->n);
        rrec_container *rc_ = &out->c[out->n++];
        if ((rc = parse_container(c, rc_, path, err)))
            goto fail;
    }
    return 0;
fail:
    rrec_release(out);
    return rc;
}

/* ---- compare --------------------------------------------------------------------------------- */

static int streq_opt(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* figures: 1 also compares the usage figures (samples, span, history pods,
 * explanation), 0 only the decision */
static int same(const rrec *a, const rrec *b, int figures)
{
    if (figures && a->history_pods != b->history_pods)
        return 0;
    if (strcmp(a->ns, b->ns) || strcmp(a->name, b->name) ||
        strcmp(a->api_version, b->api_version) || strcmp(a->kind, b->kind) ||
        strcmp(a->target, b->target) || strcmp(a->uid, b->uid) || strcmp(a->policy, b->policy) ||
        strcmp(a->mode, b->mode) || strcmp(a->strategy, b->strategy) ||
        strcmp(a->provider, b->provider) || strcmp(a->window, b->window) ||
        a->percentile != b->percentile || a->safety_factor != b->safety_factor ||
        strcmp(a->history, b->history) || a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        const rrec_container *x = &a->c[i], *y = &b->c[i];
        if (strcmp(x->name, y->name) || x->init != y->init || strcmp(x->rule, y->rule) ||
            x->applied != y->applied || strcmp(x->conflicts, y->conflicts))
            return 0;
        if (figures && (x->samples != y->samples || x->span_s != y->span_s ||
                        !streq_opt(x->explanation, y->explanation)))
            return 0;
        for (int v = 0; v < RREC_NV; v++)
            if (strcmp(x->cur[v], y->cur[v]) || strcmp(x->rec[v], y->rec[v]))
                return 0;
    }
    return 1;
}

int rrec_same(const rrec *a, const rrec *b)
{
    return same(a, b, 1);
}

int rrec_same_decision(const rrec *a, const rrec *b)
{
    return same(a, b, 0);
}

/* ---- the release marker ---------------------------------------------------------------------- */

int rrec_is_marker(const char *key)
{
    size_t n = strlen(RREC_MANAGED_KEY);
    return key && !strncmp(key, RREC_MANAGED_KEY, n) && (!key[n] || (key[n] == '.' && key[n + 1]));
}

int rrec_released(const kproj_obj *w, const char *container)
{
    const char *v = kproj_kv_get(w->annotations, w->nannotations, RREC_MANAGED_KEY);
    if (v && !strcmp(v, "false"))
        return 1;
    if (!container)
        return 0;
    char key[sizeof RREC_MANAGED_KEY + 256];
    if (snprintf(key, sizeof key, RREC_MANAGED_KEY ".%s", container) >= (int)sizeof key)
        return 0;
    v = kproj_kv_get(w->annotations, w->nannotations, key);
    return v && !strcmp(v, "false");
}
