/*
 * ctl: the reconcile loop. Informer handlers only queue keys; a reconcile is
 * a job that runs a chain of asynchronous steps (usage, GET, dry-run apply,
 * write), each one request at a time, and ends in exactly one outcome.
 * Nothing borrowed from a cache is kept across a step: a job keeps keys and
 * copies, and looks objects up again.
 *
 * This file: the informers' hooks and what they queue, a job from its
 * start through its decision (act: where it goes next) to its end, the
 * tick (resyncs, status flushes) and the lifecycle. The steps that talk
 * to the API server or the metrics provider have a file each, over the
 * state in ctl_int.h (private to lib/controller):
 *   ctl_usage.c    usage: one provider request per namespace, percentile and window
 *   ctl_ssa.c      the annotations apply; the ssa strategy (GET, pre-check, PATCH)
 *   ctl_rollout.c  the rollout gate's I/O and the slot; the webhook restart
 *   ctl_resize.c   in-place resize, one pod at a time, followed to its end
 *   ctl_status.c   the policies' status
 * reconcile.c and rollout.c are the pure decisions (no I/O).
 */
#include "controller/ctl_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply/fields.h"
#include "apply/ssa.h"
#include "controller/reconcile.h"
#include "kube/discovery.h"
#include "kube/queue.h"
#include "util/log.h"
#include "util/optime.h"

#define MAX_POLICIES 256
#define TICK_MS      100

static const kres *const inf_res[CTL_NINF] = {
    &KRES_POLICIES, &KRES_DEPLOYMENTS, &KRES_STATEFULSETS, &KRES_DAEMONSETS, &KRES_REPLICASETS,
    &KRES_PODS,     &KRES_NAMESPACES,  &KRES_HPAS,         &KRES_PDBS};

/* ---- state -------------------------------------------------------------------------------- */

typedef struct ctl_hpa {
    char kind[64];
    char name[256];
    int cpu;
} ctl_hpa;

static void pump(ctl *c);

/* ---- small helpers ------------------------------------------------------------------------ */

int64_t ctl__wall_ms(const ctl *c)
{
    if (c->o.clock_ms)
        return c->o.clock_ms(c->o.clock_ud);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ctl__rfc3339(int64_t ms, char *buf, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

kcache *ctl__cache(ctl *c, enum ctl_inf i)
{
    return c->inf[i] ? kinf_cache(c->inf[i]) : NULL;
}

enum ctl_inf ctl__inf_for_kind(enum kproj_kind k)
{
    switch (k) {
    case KPROJ_DEPLOYMENT:
        return CTL_INF_DEPLOYMENTS;
    case KPROJ_STATEFULSET:
        return CTL_INF_STATEFULSETS;
    case KPROJ_DAEMONSET:
        return CTL_INF_DAEMONSETS;
    default:
        return CTL_NINF;
    }
}

const kres *ctl__res_for_kind(enum kproj_kind k)
{
    enum ctl_inf i = ctl__inf_for_kind(k);
    return i == CTL_NINF ? NULL : inf_res[i];
}

static int wkey(char *buf, size_t cap, enum kproj_kind k, const char *ns, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s/%s", kproj_kind_name(k), ns ? ns : "", name);
    return n < 0 || (size_t)n >= cap ? -E2BIG : 0;
}

int ctl__parse_wkey(const char *key, enum kproj_kind *k, char *ns, char *name)
{
    const char *a = strchr(key, '/');
    const char *b = a ? strchr(a + 1, '/') : NULL;
    if (!a || !b || (size_t)(b - a - 1) >= 256 || strlen(b + 1) >= 256)
        return -EINVAL;
    static const enum kproj_kind kinds[] = {KPROJ_DEPLOYMENT, KPROJ_STATEFULSET, KPROJ_DAEMONSET};
    *k = KPROJ_UNKNOWN;
    for (size_t i = 0; i < 3; i++) {
        const char *kn = kproj_kind_name(kinds[i]);
        if (strlen(kn) == (size_t)(a - key) && strncmp(key, kn, (size_t)(a - key)) == 0)
            *k = kinds[i];
    }
    if (*k == KPROJ_UNKNOWN)
        return -EINVAL;
    memcpy(ns, a + 1, (size_t)(b - a - 1));
    ns[b - a - 1] = 0;
    strcpy(name, b + 1);
    return 0;
}

ctl_wstate *ctl__wstate(ctl *c, const char *key, int create)
{
    ctl_wstate *w = opmap_get(&c->wstates, key);
    if (!w && create) {
        w = calloc(1, sizeof *w);
        if (w && opmap_put(&c->wstates, key, w, NULL) != 0) {
            free(w);
            w = NULL;
        }
    }
    return w;
}

ctl_pstate *ctl__pstate(ctl *c, const char *pkey, int create)
{
    ctl_pstate *p = opmap_get(&c->pstates, pkey);
    if (!p && create) {
        p = calloc(1, sizeof *p);
        if (p && opmap_put(&c->pstates, pkey, p, NULL) != 0) {
            free(p);
            p = NULL;
        }
        if (p)
            p->invalid_warned_gen = -1;
    }
    return p;
}

static void pstate_free(void *v)
{
    ctl_pstate *p = v;
    if (p->req)
        ophttp_cancel(p->req);
    ctl__status_req_release(p->sr);
    free(p->last_sig);
    free(p);
}

static void pstate_free_key(ctl *c, const char *pkey)
{
    ctl_pstate *p = opmap_del(&c->pstates, pkey);
    if (p)
        pstate_free(p);
}

const pol_policy *ctl__policy_of(const kproj_obj *o)
{
    return o && o->ext ? &((const ctl_policy_ext *)o->ext)->p : NULL;
}

void ctl__mark_policy_dirty(ctl *c, const char *pkey)
{
    ctl_pstate *p = pkey && *pkey ? ctl__pstate(c, pkey, 1) : NULL;
    if (p)
        p->dirty = 1;
}

/* The workload ("Kind/name") a pod belongs to, through its ReplicaSet. */
int ctl__pod_owner(ctl *c, const kproj_obj *pod, char *key, size_t cap)
{
    const kproj_owner *own = kproj_controller(pod);
    if (!own || !own->kind || !own->name)
        return -ENOENT;
    if (strcmp(own->kind, "ReplicaSet") == 0) {
        const kproj_obj *rs = kcache_get(ctl__cache(c, CTL_INF_REPLICASETS), pod->ns, own->name);
        const kproj_owner *d = rs ? kproj_controller(rs) : NULL;
        if (!d || !d->kind || strcmp(d->kind, "Deployment") != 0 || !d->name)
            return -ENOENT;
        snprintf(key, cap, "Deployment/%s", d->name);
        return 0;
    }
    snprintf(key, cap, "%s/%s", own->kind, own->name);
    return 0;
}

void ctl__event(ctl *c, const kevents_ref *ref, kevents_type type, const char *reason,
                const char *action, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (c->o.events)
        kevents_vemit(c->o.events, ref, type, reason, action, fmt, ap);
    va_end(ap);
}

void ctl__workload_ref(const ctl_job *j, const char *uid, kevents_ref *ref)
{
    *ref = (kevents_ref){ssa_api_version(j->kind), kproj_kind_name(j->kind), j->ns, j->name, uid};
}

void ctl__policy_event(ctl *c, const char *pkey, kevents_type type, const char *reason,
                       const char *fmt, ...)
{
    const kproj_obj *po = kcache_get_key(ctl__cache(c, CTL_INF_POLICIES), pkey);
    if (!po || !c->o.events)
        return;
    kevents_ref ref = {KRES_POLICIES.group_version, "OptimizationPolicy", po->ns, po->name,
                       po->uid};
    va_list ap;
    va_start(ap, fmt);
    kevents_vemit(c->o.events, &ref, type, reason, "Reconcile", fmt, ap);
    va_end(ap);
}

/* ---- projection hooks ---------------------------------------------------------------------- */

static void policy_ext_free(void *v)
{
    ctl_policy_ext *x = v;
    pol_release(&x->p);
    free(x);
}

/* Keep the parsed policy, valid or not: an invalid one still needs its status.
 * A damaged status.rollout is said and ignored (the next status write
 * replaces it). */
static int ext_policy(const cJSON *obj, kproj_obj *o, void *ud)
{
    (void)ud;
    ctl_policy_ext *x = calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    pol_init(&x->p);
    if (pol_parse(obj, &x->p, NULL) == -ENOMEM) {
        free(x);
        return -ENOMEM;
    }
    const cJSON *rec = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "status"), "rollout");
    char why[256];
    if (rec && !cJSON_IsNull(rec) && rollout_slot_from_json(rec, &x->recorded, why, sizeof why))
        OPLOG_W("policy %s/%s: %s; ignored", o->ns ? o->ns : "", o->name ? o->name : "", why);
    o->ext = x;
    o->ext_free = policy_ext_free;
    return 0;
}

static int ext_hpa(const cJSON *obj, kproj_obj *o, void *ud)
{
    (void)ud;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(spec, "scaleTargetRef");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(ref, "kind");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(ref, "name");
    ctl_hpa *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    if (cJSON_IsString(kind))
        snprintf(h->kind, sizeof h->kind, "%s", kind->valuestring);
    if (cJSON_IsString(name))
        snprintf(h->name, sizeof h->name, "%s", name->valuestring);
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(spec, "metrics"), *m;
    if (!cJSON_IsArray(metrics) || cJSON_GetArraySize(metrics) == 0)
        h->cpu = 1; /* autoscaling/v2 defaults to 80 % CPU utilization */
    cJSON_ArrayForEach(m, metrics)
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "resource");
        if (!r)
            r = cJSON_GetObjectItemCaseSensitive(m, "containerResource");
        const cJSON *rn = cJSON_GetObjectItemCaseSensitive(r, "name");
        if (cJSON_IsString(rn) && strcmp(rn->valuestring, "cpu") == 0)
            h->cpu = 1;
    }
    o->ext = h;
    o->ext_free = free;
    return 0;
}

/* ---- queueing ----------------------------------------------------------------------------- */

static int enqueue_obj(ctl *c, const kproj_obj *w)
{
    char key[KEY_MAX];
    if (c->closing || wkey(key, sizeof key, w->kind, w->ns, w->name))
        return -EINVAL;
    return kqueue_add(c->q, key);
}

int ctl_enqueue(ctl *c, const char *key)
{
    return c->closing ? -ESHUTDOWN : kqueue_add(c->q, key);
}

typedef struct match_ctx {
    ctl *c;
    const char *ns;           /* only this namespace, or NULL */
    const pol_policy *policy; /* only workloads it may select, or NULL */
} match_ctx;

static int queue_if(const kproj_obj *w, void *ud)
{
    match_ctx *m = ud;
    if (m->ns && (!w->ns || strcmp(w->ns, m->ns) != 0))
        return 0;
    if (m->policy && m->policy->has_namespace_sel == 0 &&
        (!w->ns || strcmp(w->ns, m->policy->namespace) != 0))
        return 0;
    enqueue_obj(m->c, w);
    return 0;
}

static void queue_workloads(ctl *c, const char *ns, const pol_policy *p)
{
    match_ctx m = {c, ns, p};
    for (enum ctl_inf i = CTL_INF_DEPLOYMENTS; i <= CTL_INF_DAEMONSETS; i++)
        if (ctl__cache(c, i))
            kcache_foreach(ctl__cache(c, i), queue_if, &m);
}

/* Queue the workload a pod or ReplicaSet belongs to. */
static void queue_owner_of(ctl *c, const kproj_obj *o)
{
    const kproj_owner *own = kproj_controller(o);
    if (!own || !own->kind || !own->name)
        return;
    if (strcmp(own->kind, "ReplicaSet") == 0) {
        const kproj_obj *rs = kcache_get(ctl__cache(c, CTL_INF_REPLICASETS), o->ns, own->name);
        if (rs)
            queue_owner_of(c, rs);
        return;
    }
    enum kproj_kind k = strcmp(own->kind, "Deployment") == 0    ? KPROJ_DEPLOYMENT
                        : strcmp(own->kind, "StatefulSet") == 0 ? KPROJ_STATEFULSET
                        : strcmp(own->kind, "DaemonSet") == 0   ? KPROJ_DAEMONSET
                                                                : KPROJ_UNKNOWN;
    char key[KEY_MAX];
    if (k != KPROJ_UNKNOWN && !wkey(key, sizeof key, k, o->ns, own->name))
        ctl_enqueue(c, key);
}

static int kv_equal(const kproj_kv *a, size_t na, const kproj_kv *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++) {
        const char *v = kproj_kv_get(b, nb, a[i].key);
        if (!v || !a[i].value || strcmp(v, a[i].value) != 0)
            return 0;
    }
    return 1;
}

static int containers_equal(const kproj_obj *a, const kproj_obj *b)
{
    if (a->ncontainers != b->ncontainers || a->ninit_containers != b->ninit_containers)
        return 0;
    for (size_t i = 0; i < a->ncontainers + a->ninit_containers; i++) {
        const kproj_container *x =
            i < a->ncontainers ? &a->containers[i] : &a->init_containers[i - a->ncontainers];
        const kproj_container *y =
            i < b->ncontainers ? &b->containers[i] : &b->init_containers[i - b->ncontainers];
        if (!x->name || !y->name || strcmp(x->name, y->name) != 0 ||
            !kv_equal(x->requests, x->nrequests, y->requests, y->nrequests) ||
            !kv_equal(x->limits, x->nlimits, y->limits, y->nlimits))
            return 0;
        if ((x->oom_killed_at == NULL) != (y->oom_killed_at == NULL) ||
            (x->oom_killed_at && strcmp(x->oom_killed_at, y->oom_killed_at) != 0))
            return 0;
    }
    return 1;
}

/* Queue the workloads that wait at the rollout gate (in ns; NULL = all),
 * except `self` (being reconciled). */
void ctl__wake_deferred(ctl *c, const char *ns, const char *self)
{
    opmap_iter it;
    opmap_entry *e;
    enum kproj_kind k;
    char wns[256], name[256];
    opmap_iter_init(&it, &c->wstates);
    while ((e = opmap_next(&it)) != NULL) {
        const ctl_wstate *ws = e->value;
        if (!ws->deferred || (self && strcmp(e->key, self) == 0) ||
            ctl__parse_wkey(e->key, &k, wns, name) != 0 || (ns && strcmp(ns, wns) != 0))
            continue;
        ctl_enqueue(c, e->key);
    }
}

static int rollout_status_changed(const kproj_obj *a, const kproj_obj *b)
{
    const kproj_rollout *x = &a->rollout, *y = &b->rollout;
    return x->observed_generation != y->observed_generation || x->replicas != y->replicas ||
           x->updated != y->updated || x->ready != y->ready || x->available != y->available ||
           (x->update_revision == NULL) != (y->update_revision == NULL) ||
           (x->current_revision == NULL) != (y->current_revision == NULL) ||
           (x->update_revision && strcmp(x->update_revision, y->update_revision) != 0) ||
           (x->current_revision && strcmp(x->current_revision, y->current_revision) != 0) ||
           x->paused != y->paused;
}

/* A workload's rollout progressed: it may pass the gate now, and so may the
 * others when it holds the slot. */
static void on_workload_status(ctl *c, const kproj_obj *w)
{
    char key[KEY_MAX];
    if (wkey(key, sizeof key, w->kind, w->ns, w->name))
        return;
    const ctl_wstate *ws = ctl__wstate(c, key, 0);
    if (ws && ws->deferred)
        ctl_enqueue(c, key);
    if (strcmp(c->slot.key, key) == 0) {
        ctl__slot_check(c, w);
        ctl__wake_deferred(c, NULL, key);
    }
}

/* A budget changed: the workloads of its namespace waiting at the gate ask again. */
static void on_pdb_change(const kproj_obj *o, void *ud)
{
    if (o->ns)
        ctl__wake_deferred(ud, o->ns, NULL);
}

static void on_pdb_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    (void)old;
    on_pdb_change(cur, ud);
}

static void on_workload_add(const kproj_obj *o, void *ud)
{
    enqueue_obj(ud, o);
}

/* Only what the decision reads: spec (generation), labels, our annotations. */
static void on_workload_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    if (old->generation != cur->generation ||
        !kv_equal(old->labels, old->nlabels, cur->labels, cur->nlabels) ||
        !kv_equal(old->annotations, old->nannotations, cur->annotations, cur->nannotations) ||
        !containers_equal(old, cur))
        enqueue_obj(ud, cur);
    if (rollout_status_changed(old, cur))
        on_workload_status(ud, cur);
}

static void on_workload_delete(const kproj_obj *o, void *ud)
{
    ctl *c = ud;
    char key[KEY_MAX];
    if (wkey(key, sizeof key, o->kind, o->ns, o->name))
        return;
    free(opmap_del(&c->resizes, key));
    ctl_wstate *w = opmap_del(&c->wstates, key);
    if (w) {
        ctl__mark_policy_dirty(c, w->policy);
        free(w);
    }
    conflict_tracker_forget(&c->tracker, key);
    if (strcmp(c->slot.key, key) == 0 && c->slot.generation != 0) {
        /* the workload rolling out is gone: the others need not wait for it */
        ctl__slot_clear(c);
        ctl__wake_deferred(c, NULL, NULL);
    }
}

static void on_pod_add(const kproj_obj *o, void *ud)
{
    for (size_t i = 0; i < o->ncontainers; i++)
        if (o->containers[i].oom_killed_at) {
            queue_owner_of(ud, o);
            return;
        }
}

static int str_differ(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* What a followed resize reads (resize_observe_pod): its conditions, the
 * alpha status.resize, phase, deletion, uid and the resources the kubelet
 * reports per container. */
static int pod_resize_differs(const kproj_obj *a, const kproj_obj *b)
{
    if (a->resize_in_progress != b->resize_in_progress || a->deleting != b->deleting ||
        str_differ(a->resize_pending, b->resize_pending) ||
        str_differ(a->resize_in_progress_reason, b->resize_in_progress_reason) ||
        str_differ(a->resize_status, b->resize_status) || str_differ(a->phase, b->phase) ||
        str_differ(a->uid, b->uid) || a->ncontainers != b->ncontainers)
        return 1;
    for (size_t i = 0; i < a->ncontainers; i++) {
        const kproj_container *x = &a->containers[i], *y = &b->containers[i];
        if (!kv_equal(x->status_requests, x->nstatus_requests, y->status_requests,
                      y->nstatus_requests) ||
            !kv_equal(x->status_limits, x->nstatus_limits, y->status_limits, y->nstatus_limits))
            return 1;
    }
    return 0;
}

/* Resize state changes of any pod (someone's resize may be over), and every
 * change a followed resize reads; not each phase change of every pod. */
static void on_pod_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    int resize = (old->resize_in_progress != cur->resize_in_progress) ||
                 ((old->resize_pending == NULL) != (cur->resize_pending == NULL));
    if (resize || !containers_equal(old, cur) ||
        (pod_resize_differs(old, cur) && ctl__pod_followed(ud, cur)))
        queue_owner_of(ud, cur);
}

/* A pod whose resize is followed went away: its workload moves on. */
static void on_pod_delete(const kproj_obj *o, void *ud)
{
    if (ctl__pod_followed(ud, o))
        queue_owner_of(ud, o);
}

static void on_policy_change(const kproj_obj *o, void *ud)
{
    ctl *c = ud;
    const pol_policy *p = ctl__policy_of(o);
    char pkey[KCACHE_KEY_MAX];
    if (kproj_key(pkey, sizeof pkey, o->ns, o->name) == 0) {
        ctl_pstate *ps = ctl__pstate(c, pkey, 1);
        if (ps) {
            ps->dirty = 1;
            ps->next_resync_ms = 0; /* resync at the next tick */
        }
    }
    queue_workloads(c, NULL, p && p->has_namespace_sel ? NULL : p);
}

static void on_policy_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    /* Status writes (ours) do not move the generation: nothing to decide. */
    if (old->generation == cur->generation &&
        kv_equal(old->labels, old->nlabels, cur->labels, cur->nlabels))
        return;
    /* Workloads the old version selected must be re-decided too (they may
     * have left it): queue by both. */
    on_policy_change(old, ud);
    on_policy_change(cur, ud);
}

static void on_policy_delete(const kproj_obj *o, void *ud)
{
    ctl *c = ud;
    char pkey[KCACHE_KEY_MAX];
    if (kproj_key(pkey, sizeof pkey, o->ns, o->name) == 0)
        pstate_free_key(c, pkey);
    queue_workloads(c, NULL, NULL);
}

static void on_ns_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    if (!kv_equal(old->labels, old->nlabels, cur->labels, cur->nlabels))
        queue_workloads(ud, cur->name, NULL);
}

static void on_ns_add(const kproj_obj *o, void *ud)
{
    queue_workloads(ud, o->name, NULL);
}

static void on_hpa_change(const kproj_obj *o, void *ud)
{
    const ctl_hpa *h = o->ext;
    ctl *c = ud;
    if (!h)
        return;
    enum kproj_kind k = strcmp(h->kind, "Deployment") == 0    ? KPROJ_DEPLOYMENT
                        : strcmp(h->kind, "StatefulSet") == 0 ? KPROJ_STATEFULSET
                                                              : KPROJ_UNKNOWN;
    char key[KEY_MAX];
    if (k != KPROJ_UNKNOWN && !wkey(key, sizeof key, k, o->ns, h->name))
        ctl_enqueue(c, key);
}

static void on_hpa_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    on_hpa_change(old, ud);
    on_hpa_change(cur, ud);
}

/* ---- OOM kills and HPAs from the caches --------------------------------------------------- */

static int64_t parse_time_s(const char *s)
{
    optime t;
    return optime_parse(s, 0, &t) == 0 ? t.sec : 0;
}

typedef struct oom_ctx {
    ctl *c;
    const ctl_job *j;
    ctlrec_oom ooms[CTLREC_MAX_CONTAINERS];
    char names[CTLREC_MAX_CONTAINERS][MFIELDS_NAME_MAX + 1];
    size_t n;
} oom_ctx;

static int collect_oom(const kproj_obj *pod, void *ud)
{
    oom_ctx *x = ud;
    char key[600], want[600];
    if (!pod->ns || strcmp(pod->ns, x->j->ns) != 0 ||
        ctl__pod_owner(x->c, pod, key, sizeof key) != 0)
        return 0;
    snprintf(want, sizeof want, "%s/%s", kproj_kind_name(x->j->kind), x->j->name);
    if (strcmp(key, want) != 0)
        return 0;
    for (size_t i = 0; i < pod->ncontainers; i++) {
        const kproj_container *pc = &pod->containers[i];
        if (!pc->oom_killed_at || !pc->name)
            continue;
        size_t k = 0;
        while (k < x->n && strcmp(x->names[k], pc->name) != 0)
            k++;
        if (k == x->n) {
            if (x->n == CTLREC_MAX_CONTAINERS)
                continue;
            snprintf(x->names[k], sizeof x->names[k], "%s", pc->name);
            x->ooms[k] = (ctlrec_oom){x->names[k], 0, 0};
            x->n++;
        }
        int64_t t = parse_time_s(pc->oom_killed_at);
        x->ooms[k].count++;
        if (t > x->ooms[k].last_s)
            x->ooms[k].last_s = t;
    }
    return 0;
}

typedef struct hpa_ctx {
    const ctl_job *j;
    int cpu;
} hpa_ctx;

static int check_hpa(const kproj_obj *o, void *ud)
{
    hpa_ctx *x = ud;
    const ctl_hpa *h = o->ext;
    if (h && o->ns && strcmp(o->ns, x->j->ns) == 0 &&
        strcmp(h->kind, kproj_kind_name(x->j->kind)) == 0 && strcmp(h->name, x->j->name) == 0)
        x->cpu |= h->cpu;
    return 0;
}

typedef struct pol_ctx {
    const pol_policy **pols;
    size_t n;
} pol_ctx;

static int collect_policy(const kproj_obj *o, void *ud)
{
    pol_ctx *x = ud;
    const pol_policy *p = ctl__policy_of(o);
    if (p && x->n < MAX_POLICIES)
        x->pols[x->n++] = p;
    return 0;
}

/* ---- the end of a reconcile --------------------------------------------------------------- */

static void job_free(ctl_job *j)
{
    ctl *c = j->c;
    if (j->prev)
        j->prev->next = j->next;
    else
        c->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    opbuf_release(&j->body);
    free(j);
}

void ctl__job_end(ctl_job *j, enum ctlrec_outcome oc, const char *fmt, ...)
{
    ctl *c = j->c;
    ctl_wstate *ws = ctl__wstate(c, j->key, 1);
    char reason[CTLREC_REASON];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (j->slot_held && strcmp(c->slot.key, j->key) == 0 && c->slot.generation == 0) {
        /* reserved for a write that did not roll anything: free it */
        ctl__slot_clear(c);
        ctl__wake_deferred(c, NULL, j->key);
    }
    if (ws) {
        ws->deferred = j->deferred;
        ws->outcome = oc;
        snprintf(ws->reason, sizeof ws->reason, "%s", reason);
        ctl__mark_policy_dirty(c, ws->policy);
        for (int i = 0; i < ws->nlosers; i++)
            ctl__mark_policy_dirty(c, ws->loser_of[i]);
    }
    c->st.reconciles++;
    switch (oc) {
    case CTLREC_APPLY:
        c->st.applied++;
        break;
    case CTLREC_UNCHANGED:
        c->st.unchanged++;
        break;
    case CTLREC_SKIPPED:
        c->st.skipped++;
        break;
    case CTLREC_CONFLICT:
        c->st.conflicts++;
        break;
    case CTLREC_ERROR:
        c->st.errors++;
        break;
    }
    if (oc == CTLREC_ERROR)
        OPLOG_W("reconcile %s: error: %s", j->key, reason);
    else
        OPLOG_V(2, "reconcile %s: %s: %s", j->key, ctlrec_outcome_name(oc), reason);
    kqueue_done(c->q, j->key);
    if (oc == CTLREC_ERROR)
        kqueue_add_rate_limited(c->q, j->key, kqueue_now(c->q));
    else
        kqueue_forget(c->q, j->key);
    c->running--;
    job_free(j);
    pump(c);
}

/* ---- requests ----------------------------------------------------------------------------- */

int ctl__job_send(ctl_job *j, const char *method, const char *path, const char *ctype,
                  const opbuf *body, krest_cb cb)
{
    return krest_call(j->c->rest, method, path, ctype, body ? body->data : NULL,
                      body ? body->len : 0, cb, j, &j->req);
}

int ctl__write_path(ctl *c, opbuf *p, const kres *r, const char *ns, const char *name,
                    const char *sub, int apply, int force, int dry_run)
{
    const char *kv[] = {"fieldManager",
                        MFIELDS_OPTIPOD,
                        "force",
                        apply && force ? "true" : NULL,
                        "dryRun",
                        dry_run || c->o.dry_run ? "All" : NULL,
                        NULL};
    opbuf_reset(p);
    int rc = kpath(p, r, ns, name, sub);
    return rc ? rc : kpath_query(p, kv);
}

const char *ctl__reply_msg(const krest_reply *r)
{
    if (r->status && r->status->message[0])
        return r->status->message;
    return r->error_msg ? r->error_msg : "no response";
}

int ctl__ok2xx(const krest_reply *r)
{
    return r->http_status >= 200 && r->http_status < 300;
}

/* ---- the decision and what follows -------------------------------------------------------- */

static void record_decision(ctl_job *j, ctl_wstate *ws)
{
    ctl *c = j->c;
    const ctlrec_out *o = &j->out;
    char pkey[KCACHE_KEY_MAX] = "";
    if (o->winner)
        kproj_key(pkey, sizeof pkey, o->winner->namespace, o->winner->name);
    if (strcmp(ws->policy, pkey) != 0) {
        ctl__mark_policy_dirty(c, ws->policy);
        snprintf(ws->policy, sizeof ws->policy, "%s", pkey);
    }
    for (int i = 0; i < ws->nlosers; i++)
        ctl__mark_policy_dirty(c, ws->loser_of[i]);
    ws->nlosers = 0;
    for (size_t i = 0; i < o->nlosers && ws->nlosers < 4; i++)
        kproj_key(ws->loser_of[ws->nlosers++], KCACHE_KEY_MAX, o->losers[i]->namespace,
                  o->losers[i]->name);
    ws->nrecs = 0;
    for (size_t i = 0; i < o->ncontainers && ws->nrecs < STATUS_RECS; i++) {
        const ctlrec_container *cc = &o->containers[i];
        if (!cc->rec_cpu_req[0] && !cc->rec_mem_req[0])
            continue;
        ctl_rec *r = &ws->recs[ws->nrecs++];
        snprintf(r->container, sizeof r->container, "%s", cc->name);
        snprintf(r->cpu, sizeof r->cpu, "%s", cc->rec_cpu_req);
        snprintf(r->mem, sizeof r->mem, "%s", cc->rec_mem_req);
        snprintf(r->cpu_lim, sizeof r->cpu_lim, "%s", cc->rec_cpu_lim);
        snprintf(r->mem_lim, sizeof r->mem_lim, "%s", cc->rec_mem_lim);
        r->applied = cc->res.decision == ENG_UNCHANGED;
    }
    int insufficient = o->outcome == CTLREC_SKIPPED && strstr(o->reason, "insufficient") != NULL;
    if (insufficient && !ws->insufficient) {
        kevents_ref ref;
        ctl__workload_ref(j, NULL, &ref);
        ctl__event(c, &ref, KEVENTS_NORMAL, "InsufficientData", "Recommend", "%s", o->reason);
    }
    ws->insufficient = insufficient;
}

static void act(ctl_job *j, const kproj_obj *w)
{
    ctl *c = j->c;
    ctlrec_out *o = &j->out;
    ctl_wstate *ws = ctl__wstate(c, j->key, 1);
    if (!ws) {
        ctl__job_end(j, CTLREC_ERROR, "out of memory");
        return;
    }
    record_decision(j, ws);
    const pol_policy *p = o->winner;
    if (o->outcome == CTLREC_ERROR) {
        ctl__job_end(j, CTLREC_ERROR, "%s", o->reason);
        return;
    }
    if (o->mode == POL_MODE_AUTO && p->allow_in_place_resize) {
        int r = ctl__try_resize(j);
        if (r == RESIZE_SENT)
            return;
        if (r == RESIZE_ALL_DONE && p->strategy == POL_STRATEGY_SSA &&
            p->rollout == POL_ROLLOUT_ON_NEXT_RESTART) {
            /* The pods run with the values; a template write now would roll
             * them out, which onNextRestart never does. */
            ctl__job_end(j, CTLREC_UNCHANGED,
                         "running pods resized in place; the pod template is left to the next "
                         "rollout");
            return;
        }
    }
    int annotations = o->mode == POL_MODE_RECOMMEND || p->strategy == POL_STRATEGY_WEBHOOK;
    j->restart = o->mode == POL_MODE_AUTO && p->strategy == POL_STRATEGY_WEBHOOK &&
                 p->rollout == POL_ROLLOUT_IMMEDIATE && p->allow_recreate &&
                 o->outcome != CTLREC_SKIPPED;
    if (annotations) {
        if (ctlrec_annotations_differ(o, w)) {
            ctl__send_annotations(j, w, 0);
            return;
        }
        if (j->restart && ctl__maybe_restart(j, w, ws))
            return;
        if (o->outcome == CTLREC_APPLY)
            ctl__job_end(j, CTLREC_UNCHANGED, "recommendation already published to annotations");
        else
            ctl__job_end(j, o->outcome, "%s", o->reason);
        return;
    }
    if (o->outcome != CTLREC_APPLY) {
        ctl__job_end(j, o->outcome, "%s", o->reason);
        return;
    }
    /* At most one rollout per reconcile period. */
    uint64_t now = uv_now(c->loop);
    if (ws->last_apply_ms && now - ws->last_apply_ms < j->period_ms) {
        kqueue_add_after(c->q, j->key, j->period_ms - (now - ws->last_apply_ms), kqueue_now(c->q));
        ctl__job_end(j, CTLREC_SKIPPED, "already rolled out within this reconcile period");
        return;
    }
    /* Under immediate optipod paces the rollouts its writes cause; under
     * onNextRestart the template write is the strategy's own change, paced by
     * the workload's updateStrategy (and the once-per-period rule above). */
    if (p->rollout == POL_ROLLOUT_IMMEDIATE && !ctl__gate_rollout(j, w))
        return;
    char path[2048];
    opbuf pb;
    opbuf_init(&pb, sizeof path);
    int rc = kpath(&pb, ctl__res_for_kind(j->kind), j->ns, j->name, NULL);
    snprintf(path, sizeof path, "%s", opbuf_str(&pb));
    opbuf_release(&pb);
    if (!rc)
        rc = krest_call(c->rest, "GET", path, NULL, NULL, 0, ctl__on_live, j, &j->req);
    if (rc)
        ctl__job_end(j, CTLREC_ERROR, "GET: %s", strerror(-rc));
}

static void metrics_state(ctl *c, const char *pkey, int ok, const char *msg)
{
    ctl_pstate *ps = ctl__pstate(c, pkey, 1);
    int st = ok ? 1 : -1;
    if (!ps || ps->metrics_state == st)
        return;
    ps->metrics_state = st;
    snprintf(ps->metrics_msg, sizeof ps->metrics_msg, "%s", msg ? msg : "");
    ps->dirty = 1;
    if (!ok)
        ctl__policy_event(c, pkey, KEVENTS_WARNING, "MetricsUnavailable", "%s", msg ? msg : "");
}

/* The provider a policy's metricsConfig.provider names. Unset: the default
 * (Prometheus when --prometheus-url was given, else metrics-server). A
 * provider the controller does not run is a metrics error naming the flag,
 * never a silent switch to another source. */
static mprov *provider_for(const ctl *c, const pol_policy *p, char *why, size_t cap)
{
    const char *want = NULL;
    switch (p->provider) {
    case POL_PROVIDER_DEFAULT:
        if (c->prov)
            return c->prov;
        return c->prov_ms;
    case POL_PROVIDER_PROMETHEUS:
        want = "prometheus";
        break;
    case POL_PROVIDER_METRICS_SERVER:
        want = "metrics-server";
        break;
    }
    if (c->prov && strcmp(mprov_name(c->prov), want) == 0)
        return c->prov;
    if (c->prov_ms && strcmp(mprov_name(c->prov_ms), want) == 0)
        return c->prov_ms;
    snprintf(why, cap, "metricsConfig.provider is %s, but optipod runs without it%s", want,
             p->provider == POL_PROVIDER_PROMETHEUS ? " (start it with --prometheus-url)" : "");
    return NULL;
}

void ctl__job_decide(ctl_job *j)
{
    ctl *c = j->c;
    const kproj_obj *w = kcache_get(ctl__cache(c, ctl__inf_for_kind(j->kind)), j->ns, j->name);
    if (!w) {
        ctl__job_end(j, CTLREC_SKIPPED, "the workload is gone");
        return;
    }
    const pol_policy *pols[MAX_POLICIES];
    pol_ctx px = {pols, 0};
    kcache_foreach(ctl__cache(c, CTL_INF_POLICIES), collect_policy, &px);
    hpa_ctx hx = {j, 0};
    kcache_foreach(ctl__cache(c, CTL_INF_HPAS), check_hpa, &hx);
    ctlrec_input in = {.workload = w,
                       .policies = pols,
                       .npolicies = px.n,
                       .ns = kcache_get(ctl__cache(c, CTL_INF_NAMESPACES), NULL, j->ns),
                       .hpa_cpu = hx.cpu,
                       .now_s = ctl__wall_ms(c) / 1000};
    if (ctlrec_decide(&in, &j->out) != 0) {
        ctl__job_end(j, CTLREC_ERROR, "%s", j->out.reason);
        return;
    }
    const pol_policy *p = j->out.winner;
    if (!p || j->out.mode == POL_MODE_DISABLED) {
        ctl_wstate *ws = ctl__wstate(c, j->key, 1);
        if (ws) {
            record_decision(j, ws);
            ws->conflict[0] = 0;
            ws->loop_stopped = 0;
        }
        j->pkey[0] = 0;
        j->out.winner = NULL;
        if (j->out.release_annotations && ws && (!w->rv || strcmp(ws->released_rv, w->rv) != 0))
            ctl__send_annotations(j, w, 1);
        else
            ctl__job_end(j, CTLREC_SKIPPED, "%s", j->out.reason);
        return;
    }
    kproj_key(j->pkey, sizeof j->pkey, p->namespace, p->name);
    j->force_conflicts = p->force_conflicts;
    j->period_ms = c->o.resync_ms ? c->o.resync_ms : (uint64_t)p->reconcile_ms;
    oom_ctx ox = {.c = c, .j = j};
    kcache_foreach(ctl__cache(c, CTL_INF_PODS), collect_oom, &ox);
    in.ooms = ox.ooms;
    in.nooms = ox.n;
    if (c->prov || c->prov_ms) {
        char why[256];
        mprov *pv = provider_for(c, p, why, sizeof why);
        ctl_usage *u = NULL;
        if (pv) {
            u = ctl__usage_get(c, pv, j->ns, p->percentile / 100.0, (uint64_t)p->window_ms / 1000);
            if (!u) {
                ctl__job_end(j, CTLREC_ERROR, "out of memory");
                return;
            }
            uint64_t ttl = c->o.usage_ttl_ms ? c->o.usage_ttl_ms : 60000;
            if (u->state != 2 || uv_now(c->loop) - u->fetched_ms > ttl) {
                j->next_wait = u->waiting;
                u->waiting = j;
                if (u->state != 1)
                    ctl__usage_fetch(c, u);
                return; /* j may be gone now */
            }
        }
        if (!u || u->error) {
            in.metrics_error = 1;
            in.metrics_msg = u ? u->msg : why;
        } else {
            char key[600];
            snprintf(key, sizeof key, "%s/%s", kproj_kind_name(j->kind), j->name);
            const ctl_ustats *s = opmap_get(&u->stats, key);
            if (s) {
                in.usage = s->c;
                in.nusage = s->n;
            }
        }
        metrics_state(c, j->pkey, !in.metrics_error, in.metrics_msg ? in.metrics_msg : "");
        if (ctlrec_decide(&in, &j->out) != 0) {
            ctl__job_end(j, CTLREC_ERROR, "%s", j->out.reason);
            return;
        }
    }
    act(j, w);
    /* Nothing borrowed from the caches may be used once a request is out. */
}

static void job_start(ctl *c, const char *key)
{
    ctl_job *j = calloc(1, sizeof *j);
    if (!j) {
        kqueue_done(c->q, key);
        kqueue_add_rate_limited(c->q, key, kqueue_now(c->q));
        return;
    }
    j->c = c;
    snprintf(j->key, sizeof j->key, "%s", key);
    opbuf_init(&j->body, BODY_MAX);
    j->next = c->jobs;
    if (c->jobs)
        c->jobs->prev = j;
    c->jobs = j;
    c->running++;
    if (ctl__parse_wkey(key, &j->kind, j->ns, j->name) != 0) {
        ctl__job_end(j, CTLREC_SKIPPED, "not a workload key");
        return;
    }
    ctl__job_decide(j);
}

static void pump(ctl *c)
{
    if (c->pumping) {
        c->repump = 1;
        return;
    }
    c->pumping = 1;
    int workers = c->o.workers > 0 ? c->o.workers : 8;
    do {
        c->repump = 0;
        /* Decide only on complete caches: a missing policy would look like a
         * workload that left its policy. */
        if (!c->closing && c->leader && c->started && ctl_synced(c))
            ctl__slot_recover(c); /* before any gate or status write */
        while (!c->closing && c->leader && c->started && ctl_synced(c) && c->running < workers) {
            const char *key;
            if (kqueue_get(c->q, &key) != 0)
                break;
            job_start(c, key);
        }
    } while (c->repump);
    c->pumping = 0;
}

static void on_ready(kqueue *q, void *ud)
{
    (void)q;
    pump(ud);
}

/* ---- the tick: resyncs and status ---------------------------------------------------------- */

typedef struct tick_ctx {
    ctl *c;
    uint64_t now;
} tick_ctx;

static int resync_policy(const kproj_obj *o, void *ud)
{
    tick_ctx *x = ud;
    ctl *c = x->c;
    const pol_policy *p = ctl__policy_of(o);
    char pkey[KCACHE_KEY_MAX];
    if (!p || kproj_key(pkey, sizeof pkey, o->ns, o->name) != 0)
        return 0;
    ctl_pstate *ps = ctl__pstate(c, pkey, 1);
    if (!ps)
        return 0;
    if (x->now >= ps->next_resync_ms) {
        uint64_t every = c->o.resync_ms ? c->o.resync_ms : (uint64_t)p->reconcile_ms;
        ps->next_resync_ms = x->now + (every ? every : 300000);
        if (p->valid)
            queue_workloads(c, NULL, p->has_namespace_sel ? NULL : p);
        ps->dirty = 1;
    }
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    ctl *c = t->data;
    if (c->closing || !c->leader || !ctl_synced(c))
        return;
    ctl__slot_recover(c); /* before the first status write drops the record */
    if (kqueue_len(c->q))
        pump(c); /* keys queued before the caches synced */
    tick_ctx x = {c, uv_now(c->loop)};
    if (x.now >= c->disc_next_ms) {
        /* Ask again once a minute at most (kdisc itself keeps answers 10 min);
         * a server without the API must not be asked on every tick. */
        c->disc_next_ms = x.now + 60000;
        kdisc_refresh(c->disc, x.now, 0, NULL, NULL);
    }
    kcache_foreach(ctl__cache(c, CTL_INF_POLICIES), resync_policy, &x);
    /* status only once nothing is running, so counts describe whole passes */
    if (c->running || kqueue_len(c->q))
        return;
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &c->pstates);
    while ((e = opmap_next(&it)) != NULL) {
        ctl_pstate *ps = e->value;
        if (ps->dirty && !ps->writing)
            ctl__flush_status(c, e->key, ps);
    }
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

const char *ctl_informer_name(enum ctl_inf i)
{
    return i < CTL_NINF ? inf_res[i]->resource : "";
}

kinf *ctl_informer(ctl *c, enum ctl_inf i)
{
    return i < CTL_NINF ? c->inf[i] : NULL;
}

int ctl_new(ctl **out, uv_loop_t *loop, krest *rest, const ctl_opts *opts, operr *err)
{
    *out = NULL;
    ctl *c = calloc(1, sizeof *c);
    if (!c) {
        if (opts && opts->provider)
            mprov_close(opts->provider);
        if (opts && opts->metrics_server)
            mprov_close(opts->metrics_server);
        return operr_set(err, -ENOMEM, "controller: out of memory");
    }
    int rc = 0;
    c->loop = loop;
    c->rest = rest;
    if (opts)
        c->o = *opts;
    c->prov = c->o.provider;
    c->prov_ms = c->o.metrics_server;
    c->leader = 1;
    c->ns = c->o.ns && *c->o.ns ? strdup(c->o.ns) : NULL;
    c->o.ns = c->ns;
    opmap_init(&c->usage);
    opmap_init(&c->wstates);
    opmap_init(&c->resizes);
    opmap_init(&c->pstates);
    conflict_loop_cfg lc = c->o.loop;
    conflict_loop_cfg_defaults(&lc);
    conflict_tracker_init(&c->tracker, &lc);
    if ((rc = kqueue_new(&c->q, NULL)) != 0 || (rc = kqueue_bind(c->q, loop, on_ready, c)) != 0) {
        operr_set(err, rc, "controller: work queue: %s", strerror(-rc));
        goto fail;
    }
    static const kcache_handlers none = {0};
    for (int i = 0; i < CTL_NINF; i++) {
        kcache_handlers h = none;
        kinf_opts o = {.res = inf_res[i], .ns = i == CTL_INF_NAMESPACES ? NULL : c->ns};
        h.ud = c;
        switch ((enum ctl_inf)i) {
        case CTL_INF_POLICIES:
            o.extend = ext_policy;
            h.on_add = on_policy_change;
            h.on_update = on_policy_update;
            h.on_delete = on_policy_delete;
            break;
        case CTL_INF_DEPLOYMENTS:
        case CTL_INF_STATEFULSETS:
        case CTL_INF_DAEMONSETS:
            h.on_add = on_workload_add;
            h.on_update = on_workload_update;
            h.on_delete = on_workload_delete;
            break;
        case CTL_INF_PODS:
            h.on_add = on_pod_add;
            h.on_update = on_pod_update;
            h.on_delete = on_pod_delete;
            break;
        case CTL_INF_NAMESPACES:
            h.on_add = on_ns_add;
            h.on_update = on_ns_update;
            break;
        case CTL_INF_HPAS:
            o.extend = ext_hpa;
            h.on_add = on_hpa_change;
            h.on_update = on_hpa_update;
            h.on_delete = on_hpa_change;
            break;
        case CTL_INF_PDBS:
            h.on_add = on_pdb_change;
            h.on_update = on_pdb_update;
            h.on_delete = on_pdb_change;
            break;
        default:
            break;
        }
        if ((rc = kinf_new(&c->inf[i], loop, rest, &o, &h, err)) != 0)
            goto fail;
    }
    if ((rc = kdisc_new(&c->disc, rest, 0)) != 0) {
        operr_set(err, rc, "controller: discovery: %s", strerror(-rc));
        goto fail;
    }
    if ((rc = uv_timer_init(loop, &c->tick)) != 0) {
        operr_set(err, rc, "controller: timer: %s", uv_strerror(rc));
        goto fail;
    }
    c->tick.data = c;
    *out = c;
    return 0;
fail:
    /* Nothing has run yet: informers close from the loop; the rest goes now. */
    for (int i = 0; i < CTL_NINF; i++)
        if (c->inf[i])
            kinf_close(c->inf[i], NULL, NULL);
    if (c->q)
        kqueue_free(c->q);
    kdisc_free(c->disc);
    if (c->prov)
        mprov_close(c->prov);
    if (c->prov_ms)
        mprov_close(c->prov_ms);
    conflict_tracker_release(&c->tracker);
    free(c->ns);
    free(c);
    return rc;
}

int ctl_start(ctl *c)
{
    if (c->started)
        return -EALREADY;
    c->started = 1;
    for (int i = 0; i < CTL_NINF; i++)
        kinf_start(c->inf[i]);
    uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
    kdisc_refresh(c->disc, uv_now(c->loop), 1, NULL, NULL);
    c->disc_next_ms = uv_now(c->loop) + 60000;
    pump(c);
    return 0;
}

void ctl_set_leader(ctl *c, int leading)
{
    int was = c->leader;
    c->leader = leading != 0;
    if (!c->leader) {
        /* the next leader follows the slot from the status; so do we when
         * we lead again (no status write from here: not leading) */
        memset(&c->slot, 0, sizeof c->slot);
        c->slot_policy[0] = 0;
        c->slot_recovered = 0;
    }
    if (c->leader && !was && !c->closing) {
        OPLOG_I("controller: leading: reconciling every workload");
        queue_workloads(c, NULL, NULL);
        opmap_iter it;
        opmap_entry *e;
        opmap_iter_init(&it, &c->pstates);
        while ((e = opmap_next(&it)) != NULL)
            ((ctl_pstate *)e->value)->next_resync_ms = 0;
        pump(c);
    }
}

int ctl_synced(const ctl *c)
{
    for (int i = 0; i < CTL_NINF; i++)
        if (!c->inf[i] || !kinf_has_synced(c->inf[i]))
            return 0;
    return 1;
}

void ctl_stats_get(const ctl *c, ctl_stats *out)
{
    *out = c->st;
}

size_t ctl_pending(const ctl *c)
{
    return kqueue_len(c->q) + (size_t)c->running + kqueue_delayed(c->q);
}

static void ctl_maybe_free(ctl *c)
{
    if (c->ninf_closing > 0)
        return;
    void (*cb)(void *) = c->on_closed;
    void *ud = c->closed_ud;
    opmap_release(&c->usage, ctl__usage_free);
    opmap_release(&c->wstates, free);
    opmap_release(&c->resizes, free);
    opmap_release(&c->pstates, pstate_free);
    conflict_tracker_release(&c->tracker);
    kqueue_free(c->q);
    free(c->ns);
    free(c);
    if (cb)
        cb(ud);
}

static void on_inf_closed(void *ud)
{
    ctl *c = ud;
    c->ninf_closing--;
    ctl_maybe_free(c);
}

static void on_tick_closed(uv_handle_t *h)
{
    on_inf_closed(h->data);
}

void ctl_close(ctl *c, void (*on_closed)(void *ud), void *ud)
{
    c->closing = 1;
    c->on_closed = on_closed;
    c->closed_ud = ud;
    /* Cancel first: no callback of ours runs after this. */
    while (c->jobs) {
        ctl_job *j = c->jobs;
        if (j->req)
            ophttp_cancel(j->req);
        job_free(j);
    }
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &c->pstates);
    while ((e = opmap_next(&it)) != NULL) {
        ctl_pstate *ps = e->value;
        if (ps->req) {
            ophttp_cancel(ps->req);
            ps->req = NULL;
            ctl__status_req_release(ps->sr);
            ps->sr = NULL;
        }
    }
    if (c->prov) {
        mprov_close(c->prov);
        c->prov = NULL;
    }
    if (c->prov_ms) {
        mprov_close(c->prov_ms);
        c->prov_ms = NULL;
    }
    kdisc_free(c->disc);
    c->disc = NULL;
    opmap_iter_init(&it, &c->usage);
    while ((e = opmap_next(&it)) != NULL)
        ((ctl_usage *)e->value)->waiting = NULL;
    kqueue_shutdown(c->q);
    c->ninf_closing = 1;
    for (int i = 0; i < CTL_NINF; i++) {
        if (c->inf[i]) {
            c->ninf_closing++;
            kinf_close(c->inf[i], on_inf_closed, c);
            c->inf[i] = NULL;
        }
    }
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, on_tick_closed);
}
