#include "kube/projscan.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KPROJS_ANNOTATION_PREFIX "optipod.io/"
#define KPROJS_ARRAY_MAX         65535 /* counts are uint16_t */

/* ---- member lookup ------------------------------------------------------------------------ */

/*
 * A field table names the members wanted from an object, as a small tree:
 * `parent` is the index of the enclosing field (-1: the scanned object itself)
 * and `nested` says the field's own members are looked up too. One scan fills
 * vals[i] with the FIRST occurrence of each field (cJSON_GetObjectItem's
 * rule), spans of objects and arrays included; absent fields stay JSCAN_NONE.
 */
typedef struct kfield {
    const char *key;
    uint8_t len;
    int8_t parent;
    uint8_t nested;
} kfield;

#define KF(k, parent, nested)                                                                      \
    {                                                                                              \
        k, sizeof k - 1, parent, nested                                                            \
    }

static int kf_match(const jscan_tok *k, const kfield *f)
{
    if (!k->esc)
        return k->n == f->len && memcmp(k->p, f->key, f->len) == 0;
    return jscan_streq(k, f->key, f->len);
}

/* The scanner has just returned the object's JSCAN_OBJ; consumes through its '}'. */
static int kf_scan(jscan *s, const kfield *f, int nf, int parent, jscan_tok *vals, uint64_t *seen)
{
    jscan_tok k, v;
    for (;;) {
        int rc = jscan_next(s, &k);
        if (rc)
            return rc;
        if (k.type != JSCAN_KEY)
            return 0; /* JSCAN_OBJ_END */
        int hit = -1;
        for (int i = 0; i < nf; i++) {
            if (f[i].parent == parent && !(*seen >> i & 1) && kf_match(&k, &f[i])) {
                hit = i;
                break;
            }
        }
        rc = jscan_next(s, &v);
        if (rc)
            return rc;
        if (hit >= 0 && f[hit].nested && v.type == JSCAN_OBJ) {
            *seen |= 1ull << hit;
            rc = kf_scan(s, f, nf, hit, vals, seen);
            v.n = (size_t)(s->p - v.p);
        } else {
            if (hit >= 0)
                *seen |= 1ull << hit;
            rc = jscan_skip(s, &v);
        }
        if (rc)
            return rc;
        if (hit >= 0)
            vals[hit] = v;
    }
}

/* Start iterating the elements of an array or the members of an object token. */
static int ks_open(jscan *s, const jscan_tok *t, enum jscan_type want)
{
    jscan_tok x;
    if (t->type != want)
        return 0;
    jscan_init_trusted(s, t->p, t->n); /* a span of the validated document */
    return jscan_next(s, &x) == 0 && x.type == want;
}

/* A number token's value, as cJSON computes it (strtod of the literal). */
static double ks_num(const jscan_tok *t)
{
    char buf[JSCAN_NUM_MAX + 1];
    size_t n = t->n < JSCAN_NUM_MAX ? t->n : JSCAN_NUM_MAX;
    memcpy(buf, t->p, n);
    buf[n] = 0;
    return strtod(buf, NULL);
}

/* A quantity given as a JSON number (hand-written objects): integers as such, else %.9g. */
static const char *ks_qty(const jscan_tok *t, char *tmp, size_t cap)
{
    double d = ks_num(t);
    if (!isfinite(d))
        return NULL;
    if (d == floor(d) && fabs(d) < 1e15)
        snprintf(tmp, cap, "%lld", (long long)d);
    else
        snprintf(tmp, cap, "%.9g", d);
    return tmp;
}

/* ---- the block builder ------------------------------------------------------------------ */

/*
 * Layout: [kproj_obj][containers][kv, owner and expr arrays][strings]. Every
 * struct size is a multiple of 8, so the two array regions never need padding
 * and each array is filled element by element in one scan (nothing else is
 * taken from its region while it grows). The measuring pass (base NULL) only
 * sums the three regions; the filling pass writes through three cursors.
 */
typedef struct kb {
    char *base; /* NULL while measuring */
    size_t a1, a2, str;
    size_t a1_end, a2_end, str_end;
    int err;
} kb;

_Static_assert(sizeof(kproj_obj) % 8 == 0, "kproj_obj keeps 8-byte alignment");
_Static_assert(sizeof(kproj_container) % 8 == 0, "kproj_container keeps 8-byte alignment");
_Static_assert(sizeof(kproj_kv) % 8 == 0 && sizeof(kproj_owner) % 8 == 0 &&
                   sizeof(kproj_expr) % 8 == 0,
               "leaf arrays keep 8-byte alignment");

static void *kb_take(kb *b, size_t *cur, size_t end, size_t n)
{
    if (!b->base) {
        *cur += n;
        return NULL;
    }
    if (*cur + n > end) {
        b->err = b->err ? b->err : -EOVERFLOW;
        return NULL;
    }
    void *p = b->base + *cur;
    *cur += n;
    return p;
}

static const char *kb_cstr(kb *b, const char *s)
{
    size_t n = strlen(s);
    char *p = kb_take(b, &b->str, b->str_end, n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

/* A string (or key) token's C-string value, or NULL when t is not one. */
static const char *kb_tokstr(kb *b, const jscan_tok *t)
{
    if (t->type != JSCAN_STR && t->type != JSCAN_KEY)
        return NULL;
    char *p = kb_take(b, &b->str, b->str_end, jscan_strlen0(t) + 1);
    if (p)
        jscan_strcpy0(t, p);
    return p;
}

static uint16_t kb_count(kb *b, size_t n)
{
    if (n > KPROJS_ARRAY_MAX) {
        b->err = b->err ? b->err : -EINVAL;
        return 0;
    }
    return (uint16_t)n;
}

/* String (or number) members of an object, optionally only keys with `prefix`. */
static kproj_kv *kb_kv(kb *b, const jscan_tok *obj, const char *prefix, uint16_t *n)
{
    size_t plen = prefix ? strlen(prefix) : 0, cnt = 0;
    kproj_kv *first = NULL;
    jscan s;
    jscan_tok k, v;
    *n = 0;
    if (!ks_open(&s, obj, JSCAN_OBJ))
        return NULL;
    while (jscan_next(&s, &k) == 0 && k.type == JSCAN_KEY && jscan_next(&s, &v) == 0) {
        char tmp[64];
        const char *num = NULL;
        if (v.type == JSCAN_NUM)
            num = ks_qty(&v, tmp, sizeof tmp);
        else if (jscan_skip(&s, &v))
            break;
        if ((v.type != JSCAN_STR && !num) || (plen && !jscan_strprefix(&k, prefix, plen)))
            continue;
        kproj_kv *slot = kb_take(b, &b->a2, b->a2_end, sizeof *slot);
        if (!first)
            first = slot;
        kproj_kv x = {kb_tokstr(b, &k), num ? kb_cstr(b, num) : kb_tokstr(b, &v)};
        if (slot)
            *slot = x;
        cnt++;
    }
    *n = kb_count(b, cnt);
    return *n ? first : NULL;
}

/* The next object element of the array `s` is in, its fields `f` scanned into
 * v (zeroed first); other elements are skipped. 1 for an object, 0 at the end
 * of the array or on a scan error (either way the walk stops). */
static int ks_next_obj(jscan *s, const kfield *f, int nf, jscan_tok *v)
{
    jscan_tok t;
    while (jscan_next(s, &t) == 0 && t.type != JSCAN_ARR_END) {
        if (t.type != JSCAN_OBJ) {
            if (jscan_skip(s, &t))
                return 0;
            continue;
        }
        uint64_t seen = 0;
        memset(v, 0, sizeof *v * (size_t)nf);
        return kf_scan(s, f, nf, -1, v, &seen) == 0;
    }
    return 0;
}

static const kfield kst_fields[] = {
    KF("name", -1, 0),      KF("restartCount", -1, 0), KF("lastState", -1, 1),
    KF("terminated", 2, 1), KF("reason", 3, 0),        KF("finishedAt", 3, 0),
    KF("resources", -1, 1), KF("requests", 6, 0),      KF("limits", 6, 0),
};

/* The first status object whose name equals the container's: restartCount,
 * OOMKilled and the resources the kubelet applied. */
static void kb_status(kb *b, const jscan_tok *statuses, const jscan_tok *name, kproj_container *c)
{
    jscan s;
    jscan_tok v[9];
    if (!ks_open(&s, statuses, JSCAN_ARR))
        return;
    while (ks_next_obj(&s, kst_fields, 9, v)) {
        if (v[0].type != JSCAN_STR || !jscan_streq_tok(&v[0], name))
            continue;
        if (v[1].type == JSCAN_NUM) {
            double d = ks_num(&v[1]);
            if (d >= 0 && d < 2e9)
                c->restart_count = (int32_t)d;
        }
        if (v[4].type == JSCAN_STR && jscan_streq(&v[4], "OOMKilled", 9))
            c->oom_killed_at = v[5].type == JSCAN_STR ? kb_tokstr(b, &v[5]) : kb_cstr(b, "");
        c->status_requests = kb_kv(b, &v[7], NULL, &c->nstatus_requests);
        c->status_limits = kb_kv(b, &v[8], NULL, &c->nstatus_limits);
        return;
    }
}

static const kfield krp_fields[] = {KF("resourceName", -1, 0), KF("restartPolicy", -1, 0)};

static kproj_kv *kb_resize_policy(kb *b, const jscan_tok *arr, uint16_t *n)
{
    kproj_kv *first = NULL;
    size_t cnt = 0;
    jscan s;
    jscan_tok v[2];
    *n = 0;
    if (!ks_open(&s, arr, JSCAN_ARR))
        return NULL;
    while (ks_next_obj(&s, krp_fields, 2, v)) {
        kproj_kv *slot = kb_take(b, &b->a2, b->a2_end, sizeof *slot);
        if (!first)
            first = slot;
        kproj_kv x = {kb_tokstr(b, &v[0]), kb_tokstr(b, &v[1])};
        if (slot)
            *slot = x;
        cnt++;
    }
    *n = kb_count(b, cnt);
    return *n ? first : NULL;
}

static const kfield kc_fields[] = {
    KF("name", -1, 0),    KF("image", -1, 0), KF("resources", -1, 1),
    KF("requests", 2, 0), KF("limits", 2, 0), KF("resizePolicy", -1, 0),
};

/* containers[] (+ their statuses for pods: statuses NULL for workloads). */
static kproj_container *kb_containers(kb *b, const jscan_tok *arr, const jscan_tok *statuses,
                                      uint16_t *n)
{
    kproj_container *first = NULL;
    size_t cnt = 0;
    jscan s;
    jscan_tok v[6];
    *n = 0;
    if (!ks_open(&s, arr, JSCAN_ARR))
        return NULL;
    while (ks_next_obj(&s, kc_fields, 6, v)) {
        kproj_container *slot = kb_take(b, &b->a1, b->a1_end, sizeof *slot);
        if (!first)
            first = slot;
        kproj_container c;
        memset(&c, 0, sizeof c);
        c.name = kb_tokstr(b, &v[0]);
        c.image = kb_tokstr(b, &v[1]);
        c.requests = kb_kv(b, &v[3], NULL, &c.nrequests);
        c.limits = kb_kv(b, &v[4], NULL, &c.nlimits);
        c.resize_policy = kb_resize_policy(b, &v[5], &c.nresize_policy);
        c.restart_count = -1;
        if (statuses && v[0].type == JSCAN_STR)
            kb_status(b, statuses, &v[0], &c);
        if (slot)
            *slot = c;
        cnt++;
    }
    *n = kb_count(b, cnt);
    return *n ? first : NULL;
}

static const kfield kown_fields[] = {KF("kind", -1, 0), KF("name", -1, 0), KF("uid", -1, 0),
                                     KF("controller", -1, 0)};

static kproj_owner *kb_owners(kb *b, const jscan_tok *arr, uint16_t *n)
{
    kproj_owner *first = NULL;
    size_t cnt = 0;
    jscan s;
    jscan_tok v[4];
    *n = 0;
    if (!ks_open(&s, arr, JSCAN_ARR))
        return NULL;
    while (ks_next_obj(&s, kown_fields, 4, v)) {
        kproj_owner *slot = kb_take(b, &b->a2, b->a2_end, sizeof *slot);
        if (!first)
            first = slot;
        kproj_owner o = {kb_tokstr(b, &v[0]), kb_tokstr(b, &v[1]), kb_tokstr(b, &v[2]),
                         v[3].type == JSCAN_TRUE};
        if (slot)
            *slot = o;
        cnt++;
    }
    *n = kb_count(b, cnt);
    return *n ? first : NULL;
}

/* values[] joined by ',' ("" when there are none), written piece by piece. */
static const char *kb_join(kb *b, const jscan_tok *arr)
{
    size_t start = b->str, k = 0;
    jscan s;
    jscan_tok t;
    if (ks_open(&s, arr, JSCAN_ARR)) {
        while (jscan_next(&s, &t) == 0 && t.type != JSCAN_ARR_END) {
            if (t.type != JSCAN_STR) {
                if (jscan_skip(&s, &t))
                    break;
                continue;
            }
            if (k++) {
                char *c = kb_take(b, &b->str, b->str_end, 1);
                if (c)
                    *c = ',';
            }
            size_t l = jscan_strlen0(&t);
            char *p = kb_take(b, &b->str, b->str_end, l + 1);
            if (p)
                jscan_strcpy0(&t, p);
            if (p || !b->base)
                b->str -= 1; /* the terminator is written once, at the end */
        }
    }
    char *nul = kb_take(b, &b->str, b->str_end, 1);
    if (nul)
        *nul = 0;
    return b->base ? b->base + start : NULL;
}

static const kfield kex_fields[] = {KF("key", -1, 0), KF("operator", -1, 0), KF("values", -1, 0)};

static kproj_expr *kb_exprs(kb *b, const jscan_tok *arr, uint16_t *n)
{
    kproj_expr *first = NULL;
    size_t cnt = 0;
    jscan s;
    jscan_tok v[3];
    *n = 0;
    if (!ks_open(&s, arr, JSCAN_ARR))
        return NULL;
    while (ks_next_obj(&s, kex_fields, 3, v)) {
        kproj_expr *slot = kb_take(b, &b->a2, b->a2_end, sizeof *slot);
        if (!first)
            first = slot;
        kproj_expr e = {kb_tokstr(b, &v[0]), kb_tokstr(b, &v[1]), kb_join(b, &v[2])};
        if (slot)
            *slot = e;
        cnt++;
    }
    *n = kb_count(b, cnt);
    return *n ? first : NULL;
}

static const kfield kcond_fields[] = {KF("type", -1, 0), KF("status", -1, 0), KF("reason", -1, 0)};

/* status.conditions: PodResizePending (first True one's reason), PodResizeInProgress. */
static void kb_conditions(kb *b, const jscan_tok *arr, kproj_obj *o)
{
    int pending = 0, progress = 0;
    jscan s;
    jscan_tok v[3];
    if (!ks_open(&s, arr, JSCAN_ARR))
        return;
    while (ks_next_obj(&s, kcond_fields, 3, v)) {
        if (v[0].type != JSCAN_STR || v[1].type != JSCAN_STR || !jscan_streq(&v[1], "True", 4))
            continue;
        if (jscan_streq(&v[0], "PodResizePending", 16)) {
            if (!pending)
                o->resize_pending = v[2].type == JSCAN_STR ? kb_tokstr(b, &v[2]) : kb_cstr(b, "");
            pending = 1;
        } else if (jscan_streq(&v[0], "PodResizeInProgress", 19)) {
            o->resize_in_progress = 1;
            if (!progress)
                o->resize_in_progress_reason = kb_tokstr(b, &v[2]);
            progress = 1;
        }
    }
}

/* The members of an object that any kind reads: X(id, key, parent, nested). */
#define KR_FIELDS(X)                                                                               \
    X(KR_MD, "metadata", -1, 1)                                                                    \
    X(KR_NS, "namespace", KR_MD, 0)                                                                \
    X(KR_NAME, "name", KR_MD, 0)                                                                   \
    X(KR_UID, "uid", KR_MD, 0)                                                                     \
    X(KR_RV, "resourceVersion", KR_MD, 0)                                                          \
    X(KR_GEN, "generation", KR_MD, 0)                                                              \
    X(KR_LABELS, "labels", KR_MD, 0)                                                               \
    X(KR_ANN, "annotations", KR_MD, 0)                                                             \
    X(KR_OWNERS, "ownerReferences", KR_MD, 0)                                                      \
    X(KR_DELETION, "deletionTimestamp", KR_MD, 0)                                                  \
    X(KR_SPEC, "spec", -1, 1)                                                                      \
    X(KR_REPLICAS, "replicas", KR_SPEC, 0)                                                         \
    X(KR_SEL, "selector", KR_SPEC, 1)                                                              \
    X(KR_MATCH_LABELS, "matchLabels", KR_SEL, 0)                                                   \
    X(KR_MATCH_EXPRS, "matchExpressions", KR_SEL, 0)                                               \
    X(KR_TMPL, "template", KR_SPEC, 1)                                                             \
    X(KR_TMD, "metadata", KR_TMPL, 1)                                                              \
    X(KR_TLABELS, "labels", KR_TMD, 0)                                                             \
    X(KR_TSPEC, "spec", KR_TMPL, 1)                                                                \
    X(KR_TCONTAINERS, "containers", KR_TSPEC, 0)                                                   \
    X(KR_TINIT, "initContainers", KR_TSPEC, 0)                                                     \
    X(KR_CONTAINERS, "containers", KR_SPEC, 0)                                                     \
    X(KR_INIT, "initContainers", KR_SPEC, 0)                                                       \
    X(KR_NODE, "nodeName", KR_SPEC, 0)                                                             \
    X(KR_PDS, "progressDeadlineSeconds", KR_SPEC, 0)                                               \
    X(KR_PAUSED, "paused", KR_SPEC, 0)                                                             \
    X(KR_USTRAT, "updateStrategy", KR_SPEC, 1)                                                     \
    X(KR_USTRAT_TYPE, "type", KR_USTRAT, 0)                                                        \
    X(KR_STATUS, "status", -1, 1)                                                                  \
    X(KR_PHASE, "phase", KR_STATUS, 0)                                                             \
    X(KR_QOS, "qosClass", KR_STATUS, 0)                                                            \
    X(KR_RESIZE, "resize", KR_STATUS, 0)                                                           \
    X(KR_CONDS, "conditions", KR_STATUS, 0)                                                        \
    X(KR_CSTATUS, "containerStatuses", KR_STATUS, 0)                                               \
    X(KR_ICSTATUS, "initContainerStatuses", KR_STATUS, 0)                                          \
    X(KR_OBSGEN, "observedGeneration", KR_STATUS, 0)                                               \
    X(KR_SREPLICAS, "replicas", KR_STATUS, 0)                                                      \
    X(KR_SUPDATED, "updatedReplicas", KR_STATUS, 0)                                                \
    X(KR_SREADY, "readyReplicas", KR_STATUS, 0)                                                    \
    X(KR_SAVAIL, "availableReplicas", KR_STATUS, 0)                                                \
    X(KR_DDESIRED, "desiredNumberScheduled", KR_STATUS, 0)                                         \
    X(KR_DUPDATED, "updatedNumberScheduled", KR_STATUS, 0)                                         \
    X(KR_DREADY, "numberReady", KR_STATUS, 0)                                                      \
    X(KR_DAVAIL, "numberAvailable", KR_STATUS, 0)                                                  \
    X(KR_CURREV, "currentRevision", KR_STATUS, 0)                                                  \
    X(KR_UPDREV, "updateRevision", KR_STATUS, 0)                                                   \
    X(KR_DALLOWED, "disruptionsAllowed", KR_STATUS, 0)

#define KR_ENUM(id, key, parent, nested) id,
enum { KR_FIELDS(KR_ENUM) KR_N };

#define KR_ENTRY(id, key, parent, nested) [id] = KF(key, parent, nested),
static const kfield kr_fields[KR_N] = {KR_FIELDS(KR_ENTRY)};

/* metadata.generation as an int64, INT64_MIN outside the range (where a cast is undefined). */
static int64_t ks_int64(double d)
{
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return INT64_MIN;
    return (int64_t)d;
}

/* A count or a number of seconds: `absent` unless a number in [0, 2e9). */
static int32_t ks_int32(const jscan_tok *t, int32_t absent)
{
    if (t->type != JSCAN_NUM)
        return absent;
    double d = ks_num(t);
    return d >= 0 && d < 2e9 ? (int32_t)d : absent;
}

/* Rollout state, as kpb_rollout() in project.c. */
static void kb_rollout(kb *b, const jscan_tok *v, enum kproj_kind kind, kproj_rollout *r)
{
    r->observed_generation = v[KR_OBSGEN].type == JSCAN_NUM ? ks_int64(ks_num(&v[KR_OBSGEN])) : 0;
    r->has_selector = v[KR_SEL].type == JSCAN_OBJ;
    r->progress_deadline_s = -1;
    if (kind == KPROJ_PDB) {
        r->disruptions_allowed = ks_int32(&v[KR_DALLOWED], 0);
        return;
    }
    int ds = kind == KPROJ_DAEMONSET;
    r->replicas = ks_int32(&v[ds ? KR_DDESIRED : KR_SREPLICAS], 0);
    r->updated = ks_int32(&v[ds ? KR_DUPDATED : KR_SUPDATED], 0);
    r->ready = ks_int32(&v[ds ? KR_DREADY : KR_SREADY], 0);
    r->available = ks_int32(&v[ds ? KR_DAVAIL : KR_SAVAIL], 0);
    r->progress_deadline_s = ks_int32(&v[KR_PDS], -1);
    r->paused = kind == KPROJ_DEPLOYMENT && v[KR_PAUSED].type == JSCAN_TRUE;
    r->update_strategy = kb_tokstr(b, &v[KR_USTRAT_TYPE]);
    r->current_revision = kb_tokstr(b, &v[KR_CURREV]);
    r->update_revision = kb_tokstr(b, &v[KR_UPDREV]);
    r->template_labels = kb_kv(b, &v[KR_TLABELS], NULL, &r->ntemplate_labels);
}

static void kb_fill(kb *b, const jscan_tok *v, enum kproj_kind kind, kproj_obj *o)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->ns = kb_tokstr(b, &v[KR_NS]);
    o->name = kb_tokstr(b, &v[KR_NAME]);
    o->uid = kb_tokstr(b, &v[KR_UID]);
    o->rv = kb_tokstr(b, &v[KR_RV]);
    o->generation = v[KR_GEN].type == JSCAN_NUM ? ks_int64(ks_num(&v[KR_GEN])) : 0;
    if (kind != KPROJ_POD)
        o->labels = kb_kv(b, &v[KR_LABELS], NULL, &o->nlabels);
    o->annotations = kb_kv(b, &v[KR_ANN], KPROJS_ANNOTATION_PREFIX, &o->nannotations);
    o->owners = kb_owners(b, &v[KR_OWNERS], &o->nowners);
    o->replicas = -1;
    if (kind == KPROJ_POD) {
        o->containers = kb_containers(b, &v[KR_CONTAINERS], &v[KR_CSTATUS], &o->ncontainers);
        o->init_containers = kb_containers(b, &v[KR_INIT], &v[KR_ICSTATUS], &o->ninit_containers);
        o->node = kb_tokstr(b, &v[KR_NODE]);
        o->phase = kb_tokstr(b, &v[KR_PHASE]);
        o->qos_class = kb_tokstr(b, &v[KR_QOS]);
        o->resize_status = kb_tokstr(b, &v[KR_RESIZE]);
        o->deleting = v[KR_DELETION].type == JSCAN_STR;
        kb_conditions(b, &v[KR_CONDS], o);
    } else if (kind < KPROJ_REPLICASET) {
        o->replicas = ks_int32(&v[KR_REPLICAS], -1);
        o->selector = kb_kv(b, &v[KR_MATCH_LABELS], NULL, &o->nselector);
        o->selector_exprs = kb_exprs(b, &v[KR_MATCH_EXPRS], &o->nselector_exprs);
        o->containers = kb_containers(b, &v[KR_TCONTAINERS], NULL, &o->ncontainers);
        o->init_containers = kb_containers(b, &v[KR_TINIT], NULL, &o->ninit_containers);
        kb_rollout(b, v, kind, &o->rollout);
    } else if (kind == KPROJ_PDB) {
        o->selector = kb_kv(b, &v[KR_MATCH_LABELS], NULL, &o->nselector);
        o->selector_exprs = kb_exprs(b, &v[KR_MATCH_EXPRS], &o->nselector_exprs);
        kb_rollout(b, v, kind, &o->rollout);
    }
}

/* Validate a whole document that must be one object, filling a field table.
 * Returns 0 or -EINVAL (malformed, too deep, not an object, bytes after it). */
static int ks_document(const char *json, size_t len, int trusted, const kfield *f, int nf,
                       jscan_tok *vals, jscan_tok *root)
{
    jscan s;
    jscan_tok t;
    uint64_t seen = 0;
    memset(vals, 0, (size_t)nf * sizeof *vals);
    if (trusted)
        jscan_init_trusted(&s, json, len);
    else
        jscan_init(&s, json, len);
    if (jscan_next(&s, &t) || t.type != JSCAN_OBJ)
        return -EINVAL;
    if (kf_scan(&s, f, nf, -1, vals, &seen))
        return -EINVAL;
    t.n = (size_t)(s.p - t.p);
    if (root)
        *root = t;
    jscan_tok eof;
    if (jscan_next(&s, &eof) || eof.type != JSCAN_EOF)
        return -EINVAL;
    return 0;
}

/* Measure, allocate and fill the projection from a filled KR field table. */
static int ks_build(const jscan_tok *v, enum kproj_kind kind, kproj_obj **out)
{
    kproj_obj scratch;
    kb b = {0};
    kb_fill(&b, v, kind, &scratch);
    if (b.err)
        return b.err;
    size_t a1 = sizeof(kproj_obj) + b.a1, a2 = a1 + b.a2, size = a2 + b.str;
    char *block = malloc(size);
    if (!block)
        return -ENOMEM;
    b = (kb){.base = block,
             .a1 = sizeof(kproj_obj),
             .a1_end = a1,
             .a2 = a1,
             .a2_end = a2,
             .str = a2,
             .str_end = size};
    kproj_obj *o = (kproj_obj *)(void *)block;
    kb_fill(&b, v, kind, o);
    if (b.err || b.a1 != a1 || b.a2 != a2 || b.str != size) {
        free(block);
        return b.err ? b.err : -EOVERFLOW;
    }
    o->size = size;
    *out = o;
    return 0;
}

static int ks_project(const char *json, size_t len, int trusted, enum kproj_kind kind,
                      kproj_obj **out)
{
    jscan_tok v[KR_N];
    *out = NULL;
    if (kind == KPROJ_UNKNOWN || ks_document(json, len, trusted, kr_fields, KR_N, v, NULL) ||
        v[KR_NAME].type != JSCAN_STR)
        return -EINVAL;
    return ks_build(v, kind, out);
}

int kprojs_from_bytes(const char *json, size_t len, enum kproj_kind kind, kproj_obj **out)
{
    return ks_project(json, len, 0, kind, out);
}

int kprojs_from_valid(const char *json, size_t len, enum kproj_kind kind, kproj_obj **out)
{
    return ks_project(json, len, 1, kind, out);
}

/* ---- list pages and watch events -------------------------------------------------------- */

enum { KL_MD, KL_RV, KL_CONT, KL_ITEMS, KL_N };
static const kfield kl_fields[KL_N] = {
    [KL_MD] = KF("metadata", -1, 1),
    [KL_RV] = KF("resourceVersion", KL_MD, 0),
    [KL_CONT] = KF("continue", KL_MD, 0),
    [KL_ITEMS] = KF("items", -1, 0),
};

int kprojs_list_parse(const char *body, size_t len, kprojs_list *l)
{
    jscan_tok v[KL_N];
    memset(l, 0, sizeof *l);
    if (ks_document(body, len, 0, kl_fields, KL_N, v, NULL) || v[KL_MD].type != JSCAN_OBJ)
        goto bad;
    if (v[KL_ITEMS].type != JSCAN_ARR && v[KL_ITEMS].type != JSCAN_NULL &&
        v[KL_ITEMS].type != JSCAN_NONE)
        goto bad;
    l->rv = v[KL_RV].type == JSCAN_STR ? v[KL_RV] : (jscan_tok){0};
    l->cont = v[KL_CONT].type == JSCAN_STR ? v[KL_CONT] : (jscan_tok){0};
    if (v[KL_ITEMS].type == JSCAN_ARR) {
        jscan_tok t;
        l->items = v[KL_ITEMS];
        jscan_init_trusted(&l->it, l->items.p, l->items.n);
        if (jscan_next(&l->it, &t))
            goto bad;
    }
    return 0;
bad:
    memset(l, 0, sizeof *l);
    return -EINVAL;
}

int kprojs_list_next(kprojs_list *l, const char **item, size_t *len)
{
    jscan_tok t;
    *item = NULL;
    *len = 0;
    if (l->items.type != JSCAN_ARR || jscan_next(&l->it, &t) || t.type == JSCAN_ARR_END ||
        t.type == JSCAN_EOF || jscan_skip(&l->it, &t))
        return 0;
    *item = t.p;
    *len = t.n;
    return 1;
}

/* An event line: the envelope's members plus every KR field under "object",
 * so one validating scan serves both the event and its projection. */
enum {
    KE_TYPE,
    KE_OBJ,
    KE_KR, /* the KR_* fields start here */
    KE_CODE = KE_KR + KR_N,
    KE_REASON,
    KE_MSG,
    KE_DETAILS,
    KE_RA,
    KE_N,
};
_Static_assert(KE_N <= 64, "field tables track seen members in 64 bits");

#define KE_ENTRY(id, key, parent, nested)                                                          \
    [KE_KR + id] = KF(key, (parent) < 0 ? KE_OBJ : KE_KR + (parent), nested),
static const kfield ke_fields[KE_N] = {
    [KE_TYPE] = KF("type", -1, 0),
    [KE_OBJ] = KF("object", -1, 1),
    KR_FIELDS(KE_ENTRY)[KE_CODE] = KF("code", KE_OBJ, 0),
    [KE_REASON] = KF("reason", KE_OBJ, 0),
    [KE_MSG] = KF("message", KE_OBJ, 0),
    [KE_DETAILS] = KF("details", KE_OBJ, 1),
    [KE_RA] = KF("retryAfterSeconds", KE_DETAILS, 0),
};

static const char *const kprojs_ev_names[KWATCH_EV_NTYPES] = {"ADDED", "MODIFIED", "DELETED",
                                                              "BOOKMARK", "ERROR"};

static int ks_event(const char *line, size_t len, kprojs_event *ev, jscan_tok *v)
{
    memset(ev, 0, sizeof *ev);
    ev->retry_after_s = -1;
    if (ks_document(line, len, 0, ke_fields, KE_N, v, NULL) || v[KE_TYPE].type != JSCAN_STR ||
        v[KE_OBJ].type != JSCAN_OBJ)
        goto bad;
    int t = -1;
    for (int i = 0; i < KWATCH_EV_NTYPES && t < 0; i++) {
        if (jscan_streq(&v[KE_TYPE], kprojs_ev_names[i], strlen(kprojs_ev_names[i])))
            t = i;
    }
    if (t < 0)
        goto bad;
    ev->type = (enum kwatch_ev_type)t;
    ev->object = v[KE_OBJ].p;
    ev->object_len = v[KE_OBJ].n;
    if (v[KE_KR + KR_RV].type == JSCAN_STR)
        ev->rv = v[KE_KR + KR_RV];
    switch (ev->type) {
    case KWATCH_EV_ADDED:
    case KWATCH_EV_MODIFIED:
    case KWATCH_EV_DELETED:
        if (v[KE_KR + KR_MD].type != JSCAN_OBJ || v[KE_KR + KR_NAME].type != JSCAN_STR)
            goto bad;
        break;
    case KWATCH_EV_BOOKMARK:
        if (ev->rv.type != JSCAN_STR)
            goto bad;
        break;
    case KWATCH_EV_ERROR:
        if (v[KE_CODE].type == JSCAN_NUM) {
            double d = ks_num(&v[KE_CODE]);
            if (d >= 0 && d < 1000)
                ev->code = (int)d;
        }
        if (v[KE_REASON].type == JSCAN_STR)
            ev->reason = v[KE_REASON];
        if (v[KE_MSG].type == JSCAN_STR)
            ev->message = v[KE_MSG];
        if (v[KE_RA].type == JSCAN_NUM) {
            double d = ks_num(&v[KE_RA]);
            if (d > 0 && d < 86400)
                ev->retry_after_s = (long)d;
        }
        break;
    default:
        goto bad;
    }
    return 0;
bad:
    memset(ev, 0, sizeof *ev);
    ev->retry_after_s = -1;
    return -EINVAL;
}

int kprojs_event_parse(const char *line, size_t len, kprojs_event *ev)
{
    jscan_tok v[KE_N];
    return ks_event(line, len, ev, v);
}

int kprojs_event_project(const char *line, size_t len, enum kproj_kind kind, kprojs_event *ev,
                         kproj_obj **out, int *proj_rc)
{
    jscan_tok v[KE_N];
    *out = NULL;
    *proj_rc = 0;
    int rc = ks_event(line, len, ev, v);
    if (rc)
        return rc;
    if (ev->type == KWATCH_EV_ADDED || ev->type == KWATCH_EV_MODIFIED ||
        ev->type == KWATCH_EV_DELETED)
        *proj_rc = kind == KPROJ_UNKNOWN ? -EINVAL : ks_build(v + KE_KR, kind, out);
    return 0;
}

int kprojs_str(const jscan_tok *t, char *buf, size_t cap)
{
    if (cap)
        buf[0] = 0;
    if (t->type != JSCAN_STR)
        return -ENOENT;
    if (jscan_strlen0(t) >= cap)
        return -E2BIG;
    jscan_strcpy0(t, buf);
    return 0;
}
