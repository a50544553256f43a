#include "kube/project.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KPROJ_ANNOTATION_PREFIX "optipod.io/"
#define KPROJ_ARRAY_MAX         65535 /* counts are uint16_t */

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

static void *kpb_alloc(kpb *b, size_t n, size_t align)
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

static const char *kpb_strn(kpb *b, const char *s, size_t n)
{
    char *p = kpb_alloc(b, n + 1, 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static const char *kpb_str(kpb *b, const char *s)
{
    return s ? kpb_strn(b, s, strlen(s)) : NULL;
}

static const cJSON *jget(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const cJSON *jarr(const cJSON *v)
{
    return cJSON_IsArray(v) ? v : NULL;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = jget(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A quantity may arrive as a JSON number from hand-written objects. */
static const char *jqty(const cJSON *v, char *tmp, size_t cap)
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
static int64_t jint64(const cJSON *v)
{
    if (!cJSON_IsNumber(v))
        return 0;
    if (v->valuedouble >= -9223372036854775808.0 && v->valuedouble < 9223372036854775808.0)
        return (int64_t)v->valuedouble;
    return INT64_MIN;
}

/* A count or a number of seconds: `absent` unless a number in [0, 2e9). */
static int32_t jint32(const cJSON *v, int32_t absent)
{
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 2e9)
        return (int32_t)v->valuedouble;
    return absent;
}

static uint16_t kpb_count(kpb *b, size_t n)
{
    if (n > KPROJ_ARRAY_MAX) {
        b->err = b->err ? b->err : -EINVAL;
        return 0;
    }
    return (uint16_t)n;
}

/* String (or quantity) members of a JSON object, optionally only keys with `prefix`. */
static kproj_kv *kpb_kv(kpb *b, const cJSON *obj, const char *prefix, uint16_t *n)
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

static size_t jcount_objects(const cJSON *arr)
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

static const cJSON *jfind_named(const cJSON *arr, const char *name)
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
static kproj_container *kpb_containers(kpb *b, const cJSON *arr, const cJSON *statuses, uint16_t *n)
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

static kproj_owner *kpb_owners(kpb *b, const cJSON *arr, uint16_t *n)
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
static kproj_expr *kpb_exprs(kpb *b, const cJSON *arr, uint16_t *n)
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
static void kpb_rollout(kpb *b, const cJSON *spec, const cJSON *status, enum kproj_kind kind,
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

static void kpb_fill(kpb *b, const cJSON *obj, enum kproj_kind kind, kproj_obj **out)
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
    o->labels = kpb_kv(b, jget(md, "labels"), NULL, &o->nlabels);
    o->annotations = kpb_kv(b, jget(md, "annotations"), KPROJ_ANNOTATION_PREFIX, &o->nannotations);
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
    } else if (kind <= KPROJ_REPLICASET) {
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

int kproj_from_json(const cJSON *obj, enum kproj_kind kind, kproj_obj **out)
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

void kproj_free(kproj_obj *o)
{
    if (o && o->ext && o->ext_free)
        o->ext_free(o->ext);
    free(o);
}

enum kproj_kind kproj_kind_for_resource(const char *resource)
{
    static const struct {
        const char *res;
        enum kproj_kind kind;
    } map[] = {{"deployments", KPROJ_DEPLOYMENT},
               {"statefulsets", KPROJ_STATEFULSET},
               {"daemonsets", KPROJ_DAEMONSET},
               {"replicasets", KPROJ_REPLICASET},
               {"pods", KPROJ_POD},
               {"namespaces", KPROJ_NAMESPACE},
               {"horizontalpodautoscalers", KPROJ_HPA},
               {"optimizationpolicies", KPROJ_POLICY},
               {"poddisruptionbudgets", KPROJ_PDB}};
    for (size_t i = 0; resource && i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(resource, map[i].res) == 0)
            return map[i].kind;
    }
    return KPROJ_UNKNOWN;
}

const char *kproj_kind_name(enum kproj_kind k)
{
    switch (k) {
    case KPROJ_DEPLOYMENT:
        return "Deployment";
    case KPROJ_STATEFULSET:
        return "StatefulSet";
    case KPROJ_DAEMONSET:
        return "DaemonSet";
    case KPROJ_REPLICASET:
        return "ReplicaSet";
    case KPROJ_POD:
        return "Pod";
    case KPROJ_NAMESPACE:
        return "Namespace";
    case KPROJ_HPA:
        return "HorizontalPodAutoscaler";
    case KPROJ_POLICY:
        return "OptimizationPolicy";
    case KPROJ_PDB:
        return "PodDisruptionBudget";
    case KPROJ_UNKNOWN:
        break;
    }
    return "Unknown";
}

int kproj_key(char *buf, size_t cap, const char *ns, const char *name)
{
    int n = ns && *ns ? snprintf(buf, cap, "%s/%s", ns, name ? name : "")
                      : snprintf(buf, cap, "%s", name ? name : "");
    return n < 0 || (size_t)n >= cap ? -E2BIG : 0;
}

const char *kproj_kv_get(const kproj_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (kv[i].key && strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    }
    return NULL;
}

const kproj_owner *kproj_controller(const kproj_obj *o)
{
    for (size_t i = 0; i < o->nowners; i++) {
        if (o->owners[i].controller)
            return &o->owners[i];
    }
    return NULL;
}

const kproj_container *kproj_container_get(const kproj_obj *o, const char *name)
{
    for (size_t i = 0; i < o->ncontainers; i++) {
        if (o->containers[i].name && strcmp(o->containers[i].name, name) == 0)
            return &o->containers[i];
    }
    for (size_t i = 0; i < o->ninit_containers; i++) {
        if (o->init_containers[i].name && strcmp(o->init_containers[i].name, name) == 0)
            return &o->init_containers[i];
    }
    return NULL;
}
