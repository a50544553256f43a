/*
 * kref: the reference the tests hold kube/projscan.h to. optipod projects
 * objects and reads watch lines with the byte scanner only; this is the cJSON
 * DOM walker it replaced (kref_from_json(), the same projection from a parsed
 * tree), the DOM reading of a watch line (kref_event_parse()) and a deep
 * comparison of two projections (kref_diff()). test_projscan, fuzz_projscan
 * and bench_projscan use it as the oracle and the baseline; nothing in lib/
 * does. Header-only (static inline), as fuzz targets link no test library.
 *
 * Where the two may differ by design (projscan.h): the scanner refuses sloppy
 * JSON cJSON accepts, its `size` can be a few bytes smaller (no padding), and
 * a generation outside int64 pins to INT64_MIN here too; a pod with two
 * PodResizePending=True conditions fails here with -EOVERFLOW (this walker's
 * passes count differently) where the scanner keeps the first reason.
 */
#ifndef OPTIPOD_TEST_FUZZ_KREF_H
#define OPTIPOD_TEST_FUZZ_KREF_H

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/project.h"
#include "kube/watch.h"

/* ---- the DOM projection ------------------------------------------------------------------ */

#define KREF_ANNOTATION_PREFIX "optipod.io/"
#define KREF_ARRAY_MAX         65535 /* counts are uint16_t */

/*
 * The builder runs twice over the same JSON: first with base == NULL to
 * measure (every allocation only advances `off`), then into one block of
 * exactly that size. Writes into arrays are guarded by the returned pointer
 * (NULL while measuring); scalar fields go to a scratch struct then.
 */
typedef struct kpb {
    char *base; /* NULL while measuring */
    size_t off;
    size_t cap;
    int err; /* first error: -EINVAL for an over-long array, -EOVERFLOW if the passes differ */
} kpb;

static inline void *kpb_alloc(kpb *b, size_t n, size_t align)
{
    b->off = (b->off + align - 1) & ~(align - 1);
    void *p = NULL;
    if (b->base) {
        if (b->off + n > b->cap) {
            b->err = b->err ? b->err : -EOVERFLOW;
            return NULL;
        }
        p = b->base + b->off;
    }
    b->off += n;
    return p;
}

static inline const char *kpb_strn(kpb *b, const char *s, size_t n)
{
    char *p = kpb_alloc(b, n + 1, 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static inline const char *kpb_str(kpb *b, const char *s)
{
    return s ? kpb_strn(b, s, strlen(s)) : NULL;
}

static inline const cJSON *jget(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static inline const cJSON *jarr(const cJSON *v)
{
    return cJSON_IsArray(v) ? v : NULL;
}

static inline const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = jget(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A quantity may arrive as a JSON number from hand-written objects. */
static inline const char *jqty(const cJSON *v, char *tmp, size_t cap)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 1e15)
            snprintf(tmp, cap, "%lld", (long long)d);
        else
            snprintf(tmp, cap, "%.9g", d);
        return tmp;
    }
    return NULL;
}

/* Casting a double outside int64's range is undefined: pin it instead. */
static inline int64_t jint64(const cJSON *v)
{
    if (!cJSON_IsNumber(v))
        return 0;
    if (v->valuedouble >= -9223372036854775808.0 && v->valuedouble < 9223372036854775808.0)
        return (int64_t)v->valuedouble;
    return INT64_MIN;
}

/* A count or a number of seconds: `absent` unless a number in [0, 2e9). */
static inline int32_t jint32(const cJSON *v, int32_t absent)
{
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 2e9)
        return (int32_t)v->valuedouble;
    return absent;
}

static inline uint16_t kpb_count(kpb *b, size_t n)
{
    if (n > KREF_ARRAY_MAX) {
        b->err = b->err ? b->err : -EINVAL;
        return 0;
    }
    return (uint16_t)n;
}

/* String (or quantity) members of a JSON object, optionally only keys with `prefix`. */
static inline kproj_kv *kpb_kv(kpb *b, const cJSON *obj, const char *prefix, uint16_t *n)
{
    char tmp[64];
    size_t plen = prefix ? strlen(prefix) : 0, cnt = 0;
    const cJSON *it;
    *n = 0;
    if (!cJSON_IsObject(obj))
        return NULL;
    cJSON_ArrayForEach(it, obj)
    {
        if (jqty(it, tmp, sizeof tmp) && (!plen || strncmp(it->string, prefix, plen) == 0))
            cnt++;
    }
    *n = kpb_count(b, cnt);
    if (!*n)
        return NULL;
    kproj_kv *kv = kpb_alloc(b, *n * sizeof *kv, _Alignof(kproj_kv));
    size_t i = 0;
    cJSON_ArrayForEach(it, obj)
    {
        const char *v = jqty(it, tmp, sizeof tmp);
        if (!v || (plen && strncmp(it->string, prefix, plen) != 0) || i >= *n)
            continue;
        kproj_kv x = {kpb_str(b, it->string), kpb_str(b, v)};
        if (kv)
            kv[i] = x;
        i++;
    }
    return kv;
}

static inline size_t jcount_objects(const cJSON *arr)
{
    size_t n = 0;
    const cJSON *it;
    if (!cJSON_IsArray(arr))
        return 0;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsObject(it))
            n++;
    }
    return n;
}

static inline const cJSON *jfind_named(const cJSON *arr, const char *name)
{
    const cJSON *it;
    if (!cJSON_IsArray(arr) || !name)
        return NULL;
    cJSON_ArrayForEach(it, arr)
    {
        const char *n = jstr(it, "name");
        if (n && strcmp(n, name) == 0)
            return it;
    }
    return NULL;
}

/* containers[] (+ their statuses for pods). */
static inline kproj_container *kpb_containers(kpb *b, const cJSON *arr, const cJSON *statuses,
                                              uint16_t *n)
{
    *n = kpb_count(b, jcount_objects(arr));
    if (!*n)
        return NULL;
    kproj_container *cs = kpb_alloc(b, *n * sizeof *cs, _Alignof(kproj_container));
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsObject(it) || i >= *n)
            continue;
        kproj_container c;
        memset(&c, 0, sizeof c);
        c.name = kpb_str(b, jstr(it, "name"));
        c.image = kpb_str(b, jstr(it, "image"));
        const cJSON *res = jget(it, "resources");
        c.requests = kpb_kv(b, jget(res, "requests"), NULL, &c.nrequests);
        c.limits = kpb_kv(b, jget(res, "limits"), NULL, &c.nlimits);
        /* resizePolicy: [{resourceName, restartPolicy}] */
        const cJSON *rp = jget(it, "resizePolicy");
        c.nresize_policy = kpb_count(b, jcount_objects(rp));
        if (c.nresize_policy) {
            c.resize_policy = kpb_alloc(b, c.nresize_policy * sizeof(kproj_kv), _Alignof(kproj_kv));
            size_t j = 0;
            const cJSON *p;
            cJSON_ArrayForEach(p, rp)
            {
                if (!cJSON_IsObject(p) || j >= c.nresize_policy)
                    continue;
                kproj_kv x = {kpb_str(b, jstr(p, "resourceName")),
                              kpb_str(b, jstr(p, "restartPolicy"))};
                if (c.resize_policy)
                    c.resize_policy[j] = x;
                j++;
            }
        }
        c.restart_count = -1;
        const cJSON *st = jfind_named(statuses, jstr(it, "name"));
        if (st) {
            const cJSON *rc = jget(st, "restartCount");
            if (cJSON_IsNumber(rc) && rc->valuedouble >= 0 && rc->valuedouble < 2e9)
                c.restart_count = (int32_t)rc->valuedouble;
            const cJSON *term = jget(jget(st, "lastState"), "terminated");
            const char *reason = jstr(term, "reason");
            if (reason && strcmp(reason, "OOMKilled") == 0) {
                const char *at = jstr(term, "finishedAt");
                c.oom_killed_at = kpb_str(b, at ? at : "");
            }
            const cJSON *sres = jget(st, "resources");
            c.status_requests = kpb_kv(b, jget(sres, "requests"), NULL, &c.nstatus_requests);
            c.status_limits = kpb_kv(b, jget(sres, "limits"), NULL, &c.nstatus_limits);
        }
        if (cs)
            cs[i] = c;
        i++;
    }
    return cs;
}

static inline kproj_owner *kpb_owners(kpb *b, const cJSON *arr, uint16_t *n)
{
    *n = kpb_count(b, jcount_objects(arr));
    if (!*n)
        return NULL;
    kproj_owner *os = kpb_alloc(b, *n * sizeof *os, _Alignof(kproj_owner));
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsObject(it) || i >= *n)
            continue;
        kproj_owner o = {kpb_str(b, jstr(it, "kind")), kpb_str(b, jstr(it, "name")),
                         kpb_str(b, jstr(it, "uid")), cJSON_IsTrue(jget(it, "controller"))};
        if (os)
            os[i] = o;
        i++;
    }
    return os;
}

/* matchExpressions: values joined by ','. */
static inline kproj_expr *kpb_exprs(kpb *b, const cJSON *arr, uint16_t *n)
{
    *n = kpb_count(b, jcount_objects(arr));
    if (!*n)
        return NULL;
    kproj_expr *es = kpb_alloc(b, *n * sizeof *es, _Alignof(kproj_expr));
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsObject(it) || i >= *n)
            continue;
        kproj_expr e = {kpb_str(b, jstr(it, "key")), kpb_str(b, jstr(it, "operator")), NULL};
        const cJSON *vals = jget(it, "values"), *v;
        size_t len = 0;
        cJSON_ArrayForEach(v, jarr(vals))
        {
            if (cJSON_IsString(v))
                len += strlen(v->valuestring) + 1;
        }
        char *p = kpb_alloc(b, len ? len : 1, 1);
        if (p) {
            size_t o = 0;
            cJSON_ArrayForEach(v, jarr(vals))
            {
                if (!cJSON_IsString(v))
                    continue;
                size_t l = strlen(v->valuestring);
                if (o)
                    p[o++] = ',';
                memcpy(p + o, v->valuestring, l);
                o += l;
            }
            p[o] = 0;
        }
        e.values = p;
        if (es)
            es[i] = e;
        i++;
    }
    return es;
}

/* Rollout state: status counts by kind, revisions, update strategy. */
static inline void kpb_rollout(kpb *b, const cJSON *spec, const cJSON *status, enum kproj_kind kind,
                               kproj_rollout *r)
{
    r->observed_generation = jint64(jget(status, "observedGeneration"));
    r->has_selector = cJSON_IsObject(jget(spec, "selector"));
    r->progress_deadline_s = -1;
    if (kind == KPROJ_PDB) {
        r->disruptions_allowed = jint32(jget(status, "disruptionsAllowed"), 0);
        return;
    }
    if (kind == KPROJ_DAEMONSET) {
        r->replicas = jint32(jget(status, "desiredNumberScheduled"), 0);
        r->updated = jint32(jget(status, "updatedNumberScheduled"), 0);
        r->ready = jint32(jget(status, "numberReady"), 0);
        r->available = jint32(jget(status, "numberAvailable"), 0);
    } else {
        r->replicas = jint32(jget(status, "replicas"), 0);
        r->updated = jint32(jget(status, "updatedReplicas"), 0);
        r->ready = jint32(jget(status, "readyReplicas"), 0);
        r->available = jint32(jget(status, "availableReplicas"), 0);
    }
    r->progress_deadline_s = jint32(jget(spec, "progressDeadlineSeconds"), -1);
    r->paused = kind == KPROJ_DEPLOYMENT && cJSON_IsTrue(jget(spec, "paused"));
    r->update_strategy = kpb_str(b, jstr(jget(spec, "updateStrategy"), "type"));
    r->current_revision = kpb_str(b, jstr(status, "currentRevision"));
    r->update_revision = kpb_str(b, jstr(status, "updateRevision"));
    r->template_labels = kpb_kv(b, jget(jget(jget(spec, "template"), "metadata"), "labels"), NULL,
                                &r->ntemplate_labels);
}

static inline void kpb_fill(kpb *b, const cJSON *obj, enum kproj_kind kind, kproj_obj **out)
{
    kproj_obj scratch, *o = kpb_alloc(b, sizeof *o, _Alignof(kproj_obj));
    if (!o)
        o = &scratch;
    memset(o, 0, sizeof *o);
    o->kind = kind;
    const cJSON *md = jget(obj, "metadata");
    o->ns = kpb_str(b, jstr(md, "namespace"));
    o->name = kpb_str(b, jstr(md, "name"));
    o->uid = kpb_str(b, jstr(md, "uid"));
    o->rv = kpb_str(b, jstr(md, "resourceVersion"));
    o->generation = jint64(jget(md, "generation"));
    if (kind != KPROJ_POD) /* nothing reads a pod's labels */
        o->labels = kpb_kv(b, jget(md, "labels"), NULL, &o->nlabels);
    o->annotations = kpb_kv(b, jget(md, "annotations"), KREF_ANNOTATION_PREFIX, &o->nannotations);
    o->owners = kpb_owners(b, jget(md, "ownerReferences"), &o->nowners);
    o->replicas = -1;

    const cJSON *spec = jget(obj, "spec"), *status = jget(obj, "status");
    if (kind == KPROJ_POD) {
        o->containers = kpb_containers(b, jget(spec, "containers"),
                                       jget(status, "containerStatuses"), &o->ncontainers);
        o->init_containers =
            kpb_containers(b, jget(spec, "initContainers"), jget(status, "initContainerStatuses"),
                           &o->ninit_containers);
        o->node = kpb_str(b, jstr(spec, "nodeName"));
        o->phase = kpb_str(b, jstr(status, "phase"));
        o->qos_class = kpb_str(b, jstr(status, "qosClass"));
        o->resize_status = kpb_str(b, jstr(status, "resize"));
        o->deleting = jstr(md, "deletionTimestamp") != NULL;
        const cJSON *conds = jget(status, "conditions"), *c;
        /* A flag, not o->resize_pending: in the measuring pass kpb_str returns
         * NULL, and every matching condition would be counted but one stored. */
        int have_pending = 0, have_progress = 0;
        cJSON_ArrayForEach(c, jarr(conds))
        {
            const char *type = jstr(c, "type"), *st = jstr(c, "status");
            if (!type)
                continue;
            if (strcmp(type, "PodResizePending") == 0 && st && strcmp(st, "True") == 0) {
                const char *reason = jstr(c, "reason");
                if (!have_pending) {
                    have_pending = 1;
                    o->resize_pending = kpb_str(b, reason ? reason : "");
                }
            } else if (strcmp(type, "PodResizeInProgress") == 0 && st && strcmp(st, "True") == 0) {
                const char *reason = jstr(c, "reason");
                o->resize_in_progress = 1;
                if (!have_progress) {
                    have_progress = 1;
                    o->resize_in_progress_reason = kpb_str(b, reason);
                }
            }
        }
    } else if (kind < KPROJ_REPLICASET) { /* a ReplicaSet: identity and owners only */
        o->replicas = jint32(jget(spec, "replicas"), -1);
        const cJSON *sel = jget(spec, "selector");
        o->selector = kpb_kv(b, jget(sel, "matchLabels"), NULL, &o->nselector);
        o->selector_exprs = kpb_exprs(b, jget(sel, "matchExpressions"), &o->nselector_exprs);
        const cJSON *pspec = jget(jget(spec, "template"), "spec");
        o->containers = kpb_containers(b, jget(pspec, "containers"), NULL, &o->ncontainers);
        o->init_containers =
            kpb_containers(b, jget(pspec, "initContainers"), NULL, &o->ninit_containers);
        kpb_rollout(b, spec, status, kind, &o->rollout);
    } else if (kind == KPROJ_PDB) {
        const cJSON *sel = jget(spec, "selector");
        o->selector = kpb_kv(b, jget(sel, "matchLabels"), NULL, &o->nselector);
        o->selector_exprs = kpb_exprs(b, jget(sel, "matchExpressions"), &o->nselector_exprs);
        kpb_rollout(b, spec, status, kind, &o->rollout);
    }
    *out = o == &scratch ? NULL : o;
}

static inline int kref_from_json(const cJSON *obj, enum kproj_kind kind, kproj_obj **out)
{
    *out = NULL;
    if (kind == KPROJ_UNKNOWN || !jstr(jget(obj, "metadata"), "name"))
        return -EINVAL;
    kpb b = {0};
    kproj_obj *o = NULL;
    kpb_fill(&b, obj, kind, &o);
    if (b.err)
        return b.err;
    size_t size = b.off;
    char *block = malloc(size);
    if (!block)
        return -ENOMEM;
    b = (kpb){.base = block, .cap = size};
    kpb_fill(&b, obj, kind, &o);
    if (b.err || !o || b.off != size) {
        free(block);
        return b.err ? b.err : -EOVERFLOW;
    }
    o->size = size;
    *out = o;
    return 0;
}

/* ---- a watch line through cJSON ---------------------------------------------------------- */

/* One parsed watch event line. Owns `root`; release with kref_event_release(). */
typedef struct kref_event {
    enum kwatch_ev_type type;
    cJSON *root;
    const cJSON *object; /* root.object */
    const char *rv;      /* object.metadata.resourceVersion, or NULL */
    int code;            /* ERROR: object.code (0 when absent) */
    const char *reason;  /* ERROR: object.reason, or "" */
    const char *message; /* ERROR: object.message, or "" */
    long retry_after_s;  /* ERROR: object.details.retryAfterSeconds, -1 when absent */
} kref_event;

static inline const char *kref_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline void kref_event_release(kref_event *ev)
{
    cJSON_Delete(ev->root);
    memset(ev, 0, sizeof *ev);
}

static inline int kref_event_parse(const char *line, size_t len, kref_event *ev)
{
    const char *end = NULL;
    memset(ev, 0, sizeof *ev);
    ev->reason = "";
    ev->message = "";
    ev->retry_after_s = -1;
    cJSON *root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!root)
        return -EINVAL;
    /* Only whitespace may follow the document. */
    for (; end && end < line + len; end++) {
        if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n')
            goto bad;
    }
    const char *type = kref_str(root, "type");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "object");
    if (!type || !cJSON_IsObject(obj))
        goto bad;
    int t = -1;
    for (int i = 0; i < KWATCH_EV_NTYPES; i++) {
        if (strcmp(type, kwatch_ev_type_name((enum kwatch_ev_type)i)) == 0)
            t = i;
    }
    if (t < 0)
        goto bad;
    ev->type = (enum kwatch_ev_type)t;
    ev->root = root;
    ev->object = obj;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    ev->rv = cJSON_IsObject(md) ? kref_str(md, "resourceVersion") : NULL;
    switch (ev->type) {
    case KWATCH_EV_ADDED:
    case KWATCH_EV_MODIFIED:
    case KWATCH_EV_DELETED:
        if (!cJSON_IsObject(md) || !kref_str(md, "name"))
            goto bad;
        break;
    case KWATCH_EV_BOOKMARK:
        if (!ev->rv)
            goto bad;
        break;
    case KWATCH_EV_ERROR: {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
        if (cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble < 1000)
            ev->code = (int)code->valuedouble;
        const char *s = kref_str(obj, "reason");
        ev->reason = s ? s : "";
        s = kref_str(obj, "message");
        ev->message = s ? s : "";
        const cJSON *details = cJSON_GetObjectItemCaseSensitive(obj, "details");
        const cJSON *ra = cJSON_GetObjectItemCaseSensitive(details, "retryAfterSeconds");
        if (cJSON_IsNumber(ra) && ra->valuedouble > 0 && ra->valuedouble < 86400)
            ev->retry_after_s = (long)ra->valuedouble;
        break;
    }
    default:
        goto bad;
    }
    return 0;
bad:
    cJSON_Delete(root);
    memset(ev, 0, sizeof *ev);
    ev->reason = "";
    ev->message = "";
    ev->retry_after_s = -1;
    return -EINVAL;
}

/* ---- comparison --------------------------------------------------------------------------- */

static inline int kd_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0) ? 0 : 1;
}

#define KD_FAIL(...)                                                                               \
    do {                                                                                           \
        if (cap)                                                                                   \
            snprintf(why, cap, __VA_ARGS__);                                                       \
        return 1;                                                                                  \
    } while (0)

#define KD_S(path, x, y)                                                                           \
    do {                                                                                           \
        if (kd_str(x, y))                                                                          \
            KD_FAIL("%s: \"%s\" vs \"%s\"", path, (x) ? (x) : "(null)", (y) ? (y) : "(null)");     \
    } while (0)

#define KD_I(path, x, y)                                                                           \
    do {                                                                                           \
        if ((long long)(x) != (long long)(y))                                                      \
            KD_FAIL("%s: %lld vs %lld", path, (long long)(x), (long long)(y));                     \
    } while (0)

static inline int kd_kv(const char *what, const kproj_kv *a, size_t na, const kproj_kv *b,
                        size_t nb, char *why, size_t cap)
{
    KD_I(what, na, nb);
    if (!na && (a || b))
        KD_FAIL("%s: empty but not NULL", what);
    for (size_t i = 0; i < na; i++) {
        KD_S(what, a[i].key, b[i].key);
        KD_S(what, a[i].value, b[i].value);
    }
    return 0;
}

static inline int kd_containers(const char *what, const kproj_container *a, size_t na,
                                const kproj_container *b, size_t nb, char *why, size_t cap)
{
    KD_I(what, na, nb);
    if (!na && (a || b))
        KD_FAIL("%s: empty but not NULL", what);
    for (size_t i = 0; i < na; i++) {
        KD_S(what, a[i].name, b[i].name);
        KD_S(what, a[i].image, b[i].image);
        KD_S(what, a[i].oom_killed_at, b[i].oom_killed_at);
        KD_I(what, a[i].restart_count, b[i].restart_count);
        if (kd_kv("status.requests", a[i].status_requests, a[i].nstatus_requests,
                  b[i].status_requests, b[i].nstatus_requests, why, cap) ||
            kd_kv("status.limits", a[i].status_limits, a[i].nstatus_limits, b[i].status_limits,
                  b[i].nstatus_limits, why, cap))
            return 1;
        if (kd_kv("requests", a[i].requests, a[i].nrequests, b[i].requests, b[i].nrequests, why,
                  cap) ||
            kd_kv("limits", a[i].limits, a[i].nlimits, b[i].limits, b[i].nlimits, why, cap) ||
            kd_kv("resizePolicy", a[i].resize_policy, a[i].nresize_policy, b[i].resize_policy,
                  b[i].nresize_policy, why, cap))
            return 1;
    }
    return 0;
}

static inline int kref_diff(const kproj_obj *a, const kproj_obj *b, char *why, size_t cap)
{
    if (cap)
        why[0] = 0;
    if (!a || !b) {
        if (a == b)
            return 0;
        KD_FAIL("one projection is NULL");
    }
    KD_I("kind", a->kind, b->kind);
    KD_S("namespace", a->ns, b->ns);
    KD_S("name", a->name, b->name);
    KD_S("uid", a->uid, b->uid);
    KD_S("resourceVersion", a->rv, b->rv);
    KD_I("generation", a->generation, b->generation);
    KD_I("replicas", a->replicas, b->replicas);
    KD_S("nodeName", a->node, b->node);
    KD_S("phase", a->phase, b->phase);
    KD_S("qosClass", a->qos_class, b->qos_class);
    KD_S("resize", a->resize_status, b->resize_status);
    KD_S("PodResizePending", a->resize_pending, b->resize_pending);
    KD_I("PodResizeInProgress", a->resize_in_progress, b->resize_in_progress);
    const kproj_rollout *ra = &a->rollout, *rb = &b->rollout;
    KD_I("status.observedGeneration", ra->observed_generation, rb->observed_generation);
    KD_I("status.replicas", ra->replicas, rb->replicas);
    KD_I("status.updated", ra->updated, rb->updated);
    KD_I("status.ready", ra->ready, rb->ready);
    KD_I("status.available", ra->available, rb->available);
    KD_I("status.disruptionsAllowed", ra->disruptions_allowed, rb->disruptions_allowed);
    KD_I("spec.progressDeadlineSeconds", ra->progress_deadline_s, rb->progress_deadline_s);
    KD_I("spec.selector present", ra->has_selector, rb->has_selector);
    KD_I("spec.paused", ra->paused, rb->paused);
    KD_S("spec.updateStrategy.type", ra->update_strategy, rb->update_strategy);
    KD_S("status.currentRevision", ra->current_revision, rb->current_revision);
    KD_S("status.updateRevision", ra->update_revision, rb->update_revision);
    if (kd_kv("template labels", ra->template_labels, ra->ntemplate_labels, rb->template_labels,
              rb->ntemplate_labels, why, cap))
        return 1;
    KD_S("PodResizeInProgress.reason", a->resize_in_progress_reason, b->resize_in_progress_reason);
    KD_I("deletionTimestamp", a->deleting, b->deleting);
    if (a->ext != b->ext || a->ext_free != b->ext_free)
        KD_FAIL("ext differs");
    if (kd_kv("labels", a->labels, a->nlabels, b->labels, b->nlabels, why, cap) ||
        kd_kv("annotations", a->annotations, a->nannotations, b->annotations, b->nannotations, why,
              cap) ||
        kd_kv("selector", a->selector, a->nselector, b->selector, b->nselector, why, cap) ||
        kd_containers("containers", a->containers, a->ncontainers, b->containers, b->ncontainers,
                      why, cap) ||
        kd_containers("initContainers", a->init_containers, a->ninit_containers, b->init_containers,
                      b->ninit_containers, why, cap))
        return 1;
    KD_I("ownerReferences", a->nowners, b->nowners);
    if (!a->nowners && (a->owners || b->owners))
        KD_FAIL("ownerReferences: empty but not NULL");
    for (size_t i = 0; i < a->nowners; i++) {
        KD_S("ownerReferences.kind", a->owners[i].kind, b->owners[i].kind);
        KD_S("ownerReferences.name", a->owners[i].name, b->owners[i].name);
        KD_S("ownerReferences.uid", a->owners[i].uid, b->owners[i].uid);
        KD_I("ownerReferences.controller", a->owners[i].controller, b->owners[i].controller);
    }
    KD_I("matchExpressions", a->nselector_exprs, b->nselector_exprs);
    if (!a->nselector_exprs && (a->selector_exprs || b->selector_exprs))
        KD_FAIL("matchExpressions: empty but not NULL");
    for (size_t i = 0; i < a->nselector_exprs; i++) {
        KD_S("matchExpressions.key", a->selector_exprs[i].key, b->selector_exprs[i].key);
        KD_S("matchExpressions.operator", a->selector_exprs[i].op, b->selector_exprs[i].op);
        KD_S("matchExpressions.values", a->selector_exprs[i].values, b->selector_exprs[i].values);
    }
    return 0;
}

#endif
