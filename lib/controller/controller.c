/*
 * ctl: the reconcile loop. Informer handlers only queue keys; a reconcile is
 * a job that runs a chain of asynchronous steps (usage, GET, dry-run apply,
 * write), each one request at a time, and ends in exactly one outcome.
 * Nothing borrowed from a cache is kept across a step: a job keeps keys and
 * copies, and looks objects up again.
 *
 * This file: the informers' hooks and what they queue, the queue's pump
 * and alarm (the tick: resyncs, status flushes), and the lifecycle. A job
 * is run by the executor, over the state in ctl_int.h (private to
 * lib/controller):
 *   ctl_job.c      the executor: gathers a job's facts, asks step.c for the
 *                  next step, performs it, ends the job
 *   ctl_usage.c    usage: one provider request per namespace, percentile and window
 *   ctl_ssa.c      the annotations apply; the ssa strategy (GET, pre-check, PATCH)
 *   ctl_rollout.c  the rollout gate's facts and the slot; the webhook restart
 *   ctl_resize.c   in-place resize, one pod at a time, followed to its end
 *   ctl_status.c   the policies' status
 *   ctl_common.c   the helpers they all share (the bottom layer)
 * step.c, reconcile.c and rollout.c are the pure decisions (no I/O).
 * The layers and their one-way calls: ctl_int.h.
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

#define TICK_MS 100
/* A slice of the queue ends when the loop has run callbacks this long since its last
 * poll, or after this many reconciles were started (whichever first). */
#define SLICE_JOBS 64

static void pump(ctl *c);

static void pstate_free(void *v)
{
    ctl_pstate *p = v;
    if (p->req)
        ophttp_cancel(p->req);
    ctl__status_req_release(p->sr);
    ctl__status_walk_free(p->walk);
    free(p->last_sig);
    free(p->last_dsig);
    free(p);
}

static void pstate_free_key(ctl *c, const char *pkey)
{
    ctl_pstate *p = opmap_del(&c->pstates, pkey);
    if (p)
        pstate_free(p);
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

/* ---- the alarm: the tick and the queue's delayed keys, on the controller's clock ---------- */

static void on_tick(ctl *c);

static void on_wake(void *arg)
{
    ctl *c = arg;
    c->armed_at = CTL_ALARM_NEVER;
    if (c->closing)
        return;
    uint64_t now = ctl__now(c);
    if (now >= c->next_tick_ms) {
        c->next_tick_ms = now + TICK_MS;
        on_tick(c);
    }
    kqueue_tick(c->q, now);
    if (kqueue_len(c->q))
        pump(c);
    ctl__rearm(c);
}

/* ---- what the informers queue ------------------------------------------------------------- */

static int enqueue_obj(ctl *c, const kproj_obj *w)
{
    char key[KEY_MAX];
    if (c->closing || ctl__wkey(key, sizeof key, w->kind, w->ns, w->name))
        return -EINVAL;
    return ctl_enqueue(c, key);
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
    /* one namespace (asked for, or the only one the policy may select): its index entry */
    const char *only = ns ? ns : p && !p->has_namespace_sel ? p->namespace : NULL;
    for (enum ctl_inf i = CTL_INF_DEPLOYMENTS; i <= CTL_INF_DAEMONSETS; i++)
        ctl__in_namespace(c, i, only, queue_if, &m);
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
    if (k != KPROJ_UNKNOWN && !ctl__wkey(key, sizeof key, k, o->ns, own->name))
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
    if (ctl__wkey(key, sizeof key, w->kind, w->ns, w->name))
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
    int same = containers_equal(old, cur);
    if (!same)
        ctl__metrics_containers_changed(ud, old);
    if (old->generation != cur->generation ||
        !kv_equal(old->labels, old->nlabels, cur->labels, cur->nlabels) ||
        !kv_equal(old->annotations, old->nannotations, cur->annotations, cur->nannotations) ||
        !same)
        enqueue_obj(ud, cur);
    if (rollout_status_changed(old, cur))
        on_workload_status(ud, cur);
}

static void on_workload_delete(const kproj_obj *o, void *ud)
{
    ctl *c = ud;
    char key[KEY_MAX];
    if (ctl__wkey(key, sizeof key, o->kind, o->ns, o->name))
        return;
    free(opmap_del(&c->resizes, key));
    ctl__metrics_gone(c, o->kind, o->ns, o->name);
    ctl_wstate *w = opmap_del(&c->wstates, key);
    c->wstates_gen++;
    if (w) {
        ctl__mark_policy_dirty(c, w->policy);
        ctl__wstate_free(w);
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
    if (k != KPROJ_UNKNOWN && !ctl__wkey(key, sizeof key, k, o->ns, h->name))
        ctl_enqueue(c, key);
}

static void on_hpa_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    on_hpa_change(old, ud);
    on_hpa_change(cur, ud);
}

/* ---- the pump: the queue drained in slices that yield to the loop ------------------------- */

/* This slice is used up: the loop has been busy long enough since its last poll
 * (whoever kept it busy), or enough reconciles started in it. A continuation
 * always gets one reconcile, so the queue moves even under constant I/O. */
static int slice_spent(ctl *c)
{
    if (c->slice_mark != c->lm.last_ns) { /* the loop polled since: a new slice */
        c->slice_mark = c->lm.last_ns;
        c->slice_jobs = 0;
    }
    if (c->slice_force) {
        c->slice_force = 0;
        return 0;
    }
    return c->slice_jobs >= SLICE_JOBS || oploopmon_busy_ns(&c->lm) >= CTL_SLICE_NS;
}

static void on_slice_idle(uv_idle_t *h)
{
    (void)h; /* only keeps the next poll from blocking */
}

static void on_slice(uv_check_t *h)
{
    ctl *c = h->data;
    uv_check_stop(&c->slice_check);
    uv_idle_stop(&c->slice_idle);
    c->slice_armed = 0;
    c->slice_force = 1;
    c->slice_jobs = 0; /* a new slice, also when there is no monitor to say the loop polled */
    pump(c);
    c->slice_force = 0;
}

static void slice_arm(ctl *c)
{
    if (c->slice_armed || c->closing)
        return;
    c->slice_armed = 1;
    uv_check_start(&c->slice_check, on_slice);
    uv_idle_start(&c->slice_idle, on_slice_idle);
}

/* Start queued reconciles, a slice at a time: webhook reviews, probes and
 * watch events are served between slices (the check handle goes on after the
 * next poll). */
static void pump(ctl *c)
{
    if (c->pumping) {
        c->repump = 1;
        return;
    }
    c->pumping = 1;
    int workers = ctl__workers(c);
    do {
        c->repump = 0;
        /* Decide only on complete caches: a missing policy would look like a
         * workload that left its policy. */
        if (!c->closing && c->leader && c->started && ctl_synced(c))
            ctl__slot_recover(c); /* before any gate or status write */
        while (!c->closing && c->leader && c->started && ctl_synced(c) && c->running < workers &&
               kqueue_len(c->q) > 0) {
            const char *key;
            if (slice_spent(c)) {
                slice_arm(c);
                c->repump = 0;
                break;
            }
            if (kqueue_get(c->q, &key) != 0)
                break;
            c->slice_jobs++;
            ctl__job_start(c, key);
        }
    } while (c->repump);
    c->pumping = 0;
    ctl__rearm(c);
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

static void on_tick(ctl *c)
{
    if (c->closing || !c->leader || !ctl_synced(c))
        return;
    ctl__slot_recover(c); /* before the first status write drops the record */
    if (kqueue_len(c->q))
        pump(c); /* keys queued before the caches synced */
    tick_ctx x = {c, ctl__now(c)};
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
        if ((ps->dirty || ps->walk) && !ps->writing && x.now >= ps->status_retry_ms &&
            ctl__flush_status(c, e->key, ps))
            break; /* this slice is spent: the rest at the next tick */
    }
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

const char *ctl_informer_name(enum ctl_inf i)
{
    return i < CTL_NINF ? ctl__inf_res[i]->resource : "";
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
    c->wake = on_wake;
    c->prov = c->o.provider;
    c->prov_ms = c->o.metrics_server;
    c->leader = 1;
    c->ns = c->o.ns && *c->o.ns ? strdup(c->o.ns) : NULL;
    c->o.ns = c->ns;
    opmap_init(&c->usage);
    opmap_init(&c->wstates);
    opmap_init(&c->resizes);
    opmap_init(&c->pstates);
    opmap_init(&c->records);
    conflict_loop_cfg lc = c->o.loop;
    conflict_loop_cfg_defaults(&lc);
    conflict_tracker_init(&c->tracker, &lc);
    c->armed_at = CTL_ALARM_NEVER;
    /* not bound to the loop: the controller's alarm runs its delayed keys */
    if ((rc = kqueue_new(&c->q, NULL)) != 0) {
        operr_set(err, rc, "controller: work queue: %s", strerror(-rc));
        goto fail;
    }
    static const kcache_handlers none = {0};
    for (int i = 0; i < CTL_NINF; i++) {
        kcache_handlers h = none;
        kinf_opts o = {.res = ctl__inf_res[i], .ns = i == CTL_INF_NAMESPACES ? NULL : c->ns};
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
    if ((rc = ctl__add_indexes(c)) != 0) {
        operr_set(err, rc, "controller: cache indexes: %s", strerror(-rc));
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
    /* these always succeed (libuv); without the monitor a slice is counted in jobs only */
    uv_check_init(loop, &c->slice_check);
    uv_idle_init(loop, &c->slice_idle);
    c->slice_check.data = c->slice_idle.data = c;
    if (oploopmon_start(&c->lm, loop) != 0)
        OPLOG_W("controller: no loop monitor: the queue is drained %d reconciles at a time",
                SLICE_JOBS);
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
    uint64_t now = ctl__now(c);
    c->next_tick_ms = now + TICK_MS;
    kdisc_refresh(c->disc, now, 1, NULL, NULL);
    c->disc_next_ms = now + 60000;
    pump(c);
    return 0;
}

/* Not leading: another replica (the legitimate leader) writes as optipod from
 * now on, so what this one last wrote says nothing about who wrote what is
 * live when it leads again: forget it, or that leader's writes would read as
 * a DuplicateController's (and as take-backs of ours). */
static void forget_writes(ctl *c)
{
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &c->wstates);
    while ((e = opmap_next(&it)) != NULL) {
        ctl_wstate *ws = e->value;
        free(ws->written);
        ws->written = NULL;
        ws->nwritten = 0;
        ws->reclaim_counted = 0;
        if (ws->duplicate_until_ms) {
            ws->duplicate_until_ms = 0;
            ctl__set_str(&ws->conflict, NULL);
        }
    }
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
        forget_writes(c);
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

void ctl_stats_get(const ctl *c, ctl_stats *out)
{
    *out = c->st;
}

size_t ctl_pending(const ctl *c)
{
    return kqueue_len(c->q) + (size_t)c->running + kqueue_delayed(c->q) + (size_t)c->nrecws;
}

void ctl_queue_depth_get(const ctl *c, ctl_queue_depth *out)
{
    out->queued = kqueue_len(c->q);
    out->delayed = kqueue_delayed(c->q);
    out->running = (size_t)c->running;
}

size_t ctl_busy(const ctl *c)
{
    /* a slice armed: reconciles that start after the next poll, without an alarm */
    size_t n = (size_t)c->running + (size_t)c->slice_armed;
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &c->pstates);
    while ((e = opmap_next(&it)) != NULL)
        n += ((const ctl_pstate *)e->value)->writing != 0;
    return n;
}

static void ctl_maybe_free(ctl *c)
{
    if (c->ninf_closing > 0)
        return;
    void (*cb)(void *) = c->on_closed;
    void *ud = c->closed_ud;
    opmap_release(&c->usage, ctl__usage_free);
    opmap_release(&c->wstates, ctl__wstate_free);
    opmap_release(&c->resizes, free);
    opmap_release(&c->pstates, pstate_free);
    opmap_release(&c->records, ctl__recstate_free);
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
    ctl__records_cancel(c);
    ctl__jobs_cancel(c);
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
    if (c->o.clock.now_ms && c->o.clock.alarm && c->armed_at != CTL_ALARM_NEVER)
        c->o.clock.alarm(c->o.clock.ud, CTL_ALARM_NEVER, on_wake, c);
    c->armed_at = CTL_ALARM_NEVER;
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, on_tick_closed);
    c->ninf_closing += 3;
    uv_close((uv_handle_t *)&c->slice_check, on_tick_closed);
    uv_close((uv_handle_t *)&c->slice_idle, on_tick_closed);
    oploopmon_close(&c->lm, on_inf_closed, c);
}

int ctl_leading(const ctl *c)
{
    return c->leader && !c->closing;
}
