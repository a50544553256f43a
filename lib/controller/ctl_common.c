/*
 * ctl common: the helpers every file of the controller shares, and nothing
 * else: the clock and the alarm (ctl_clock), workload keys, the caches, the
 * per-workload and per-policy state maps, Events, queueing a key, request
 * paths and sending, and recording an answer for the step. The bottom layer
 * of lib/controller: it calls no other file of it (the alarm runs
 * controller.c's pump through c->wake, a pointer set by ctl_new).
 */
#include "controller/ctl_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply/ssa.h"
#include "kube/index.h"

const kres *const ctl__inf_res[CTL_NINF] = {&KRES_POLICIES,   &KRES_DEPLOYMENTS, &KRES_STATEFULSETS,
                                            &KRES_DAEMONSETS, &KRES_REPLICASETS, &KRES_PODS,
                                            &KRES_NAMESPACES, &KRES_HPAS,        &KRES_PDBS};

/* ---- small helpers ------------------------------------------------------------------------ */

uint64_t ctl__now(const ctl *c)
{
    return c->o.clock.now_ms ? c->o.clock.now_ms(c->o.clock.ud) : uv_now(c->loop);
}

/* uv_now is when this loop turn began; a busy turn (a large list parsed) leaves it behind,
 * and a reply read late in such a turn would date the write before the server answered it:
 * the next write could then reach the server sooner than --min-write-interval after it. */
uint64_t ctl__now_fresh(ctl *c)
{
    if (!c->o.clock.now_ms)
        uv_update_time(c->loop);
    return ctl__now(c);
}

int64_t ctl__wall_ms(const ctl *c)
{
    if (c->o.clock.wall_ms)
        return c->o.clock.wall_ms(c->o.clock.ud);
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
    return i == CTL_NINF ? NULL : ctl__inf_res[i];
}

int ctl__wkey(char *buf, size_t cap, enum kproj_kind k, const char *ns, const char *name)
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
        c->wstates_gen++;
        if (w && opmap_put(&c->wstates, key, w, NULL) != 0) {
            free(w);
            w = NULL;
        }
    }
    return w;
}

void ctl__wstate_free(void *v)
{
    ctl_wstate *w = v;
    if (!w)
        return;
    free(w->policy);
    for (int i = 0; i < w->nlosers; i++)
        free(w->loser_of[i]);
    free(w->loser_of);
    free(w->conflict);
    free(w->written);
    free(w->recs);
    free(w);
}

static int wstate_idle(const ctl_wstate *w)
{
    return !w->policy && !w->nlosers && !w->conflict && !w->loop_stopped && !w->nwritten &&
           !w->last_apply_ms && !w->last_write_ms && !w->duplicate_until_ms && !w->released_rv[0] &&
           !w->ann_hash && !w->deferred && !w->restart_gen;
}

void ctl__wstate_forget_idle(ctl *c, const char *key)
{
    ctl_wstate *w = opmap_get(&c->wstates, key);
    if (w && wstate_idle(w)) {
        ctl__wstate_free(opmap_del(&c->wstates, key));
        c->wstates_gen++;
    }
}

int ctl__set_str(char **dst, const char *s)
{
    char *copy = NULL;
    if (s && *s && !(copy = strdup(s)))
        return -ENOMEM;
    free(*dst);
    *dst = copy;
    return 0;
}

const char *ctl__str(const char *s)
{
    return s ? s : "";
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

const pol_policy *ctl__policy_of(const kproj_obj *o)
{
    return o && o->ext ? &((const ctl_policy_ext *)o->ext)->p : NULL;
}

uint64_t ctl__fail_backoff(opbackoff *b, uint64_t now_ms)
{
    if (!b->initial_ms)
        opbackoff_init(b, 1000, 30000, 0, 0.2);
    return opbackoff_next(b, now_ms, (double)(now_ms % 1000) / 1000.0);
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

/* ---- indexes: a workload's facts by lookup, not by scanning the cluster (kube/index.h) ---- */

#define IDX_TARGET "target" /* HPAs: "ns/Kind/name" of scaleTargetRef */
#define IDX_SCOPE  "scope"  /* policies: their namespace, "*" with a namespaceSelector */

static int idx_hpa_target(const kproj_obj *o, char (*vals)[KCACHE_KEY_MAX], int max, void *ud)
{
    (void)ud;
    const ctl_hpa *h = o->ext;
    return h && max > 0 && kidx_owner_value(vals[0], KCACHE_KEY_MAX, o->ns, h->kind, h->name) == 0;
}

static int idx_policy_scope(const kproj_obj *o, char (*vals)[KCACHE_KEY_MAX], int max, void *ud)
{
    (void)ud;
    const pol_policy *p = ctl__policy_of(o);
    if (!p || max < 1 || (!p->has_namespace_sel && !o->ns))
        return 0;
    snprintf(vals[0], KCACHE_KEY_MAX, "%s", p->has_namespace_sel ? "*" : o->ns);
    return 1;
}

int ctl__add_indexes(ctl *c)
{
    static const struct {
        enum ctl_inf inf;
        const char *name;
        kcache_index_fn fn;
    } want[] = {
        {CTL_INF_PODS, KIDX_CONTROLLER, kidx_controller},
        {CTL_INF_REPLICASETS, KIDX_CONTROLLER, kidx_controller},
        {CTL_INF_DEPLOYMENTS, KIDX_NAMESPACE, kidx_namespace},
        {CTL_INF_STATEFULSETS, KIDX_NAMESPACE, kidx_namespace},
        {CTL_INF_DAEMONSETS, KIDX_NAMESPACE, kidx_namespace},
        {CTL_INF_PDBS, KIDX_NAMESPACE, kidx_namespace},
        {CTL_INF_HPAS, IDX_TARGET, idx_hpa_target},
        {CTL_INF_POLICIES, IDX_SCOPE, idx_policy_scope},
    };
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof want / sizeof want[0]; i++)
        if (ctl__cache(c, want[i].inf))
            rc = kcache_add_index(ctl__cache(c, want[i].inf), want[i].name, want[i].fn, NULL);
    return rc;
}

int ctl__workload_pods(ctl *c, enum kproj_kind kind, const char *ns, const char *name,
                       int (*fn)(const kproj_obj *pod, void *ud), void *ud)
{
    return kidx_workload_pods(ctl__cache(c, CTL_INF_PODS), ctl__cache(c, CTL_INF_REPLICASETS),
                              kproj_kind_name(kind), ns, name, fn, ud);
}

int ctl__policies_for(ctl *c, const char *ns, int (*fn)(const kproj_obj *policy, void *ud),
                      void *ud)
{
    kcache *pc = ctl__cache(c, CTL_INF_POLICIES);
    int rc = ns ? kcache_index_foreach(pc, IDX_SCOPE, ns, fn, ud) : 0;
    return rc ? rc : kcache_index_foreach(pc, IDX_SCOPE, "*", fn, ud);
}

int ctl__hpas_for(ctl *c, enum kproj_kind kind, const char *ns, const char *name,
                  int (*fn)(const kproj_obj *hpa, void *ud), void *ud)
{
    char v[KCACHE_KEY_MAX];
    if (!ctl__cache(c, CTL_INF_HPAS) ||
        kidx_owner_value(v, sizeof v, ns, kproj_kind_name(kind), name) != 0)
        return 0;
    return kcache_index_foreach(ctl__cache(c, CTL_INF_HPAS), IDX_TARGET, v, fn, ud);
}

int ctl__in_namespace(ctl *c, enum ctl_inf inf, const char *ns,
                      int (*fn)(const kproj_obj *o, void *ud), void *ud)
{
    kcache *wc = ctl__cache(c, inf);
    if (!wc)
        return 0;
    return ns ? kcache_index_foreach(wc, KIDX_NAMESPACE, ns, fn, ud) : kcache_foreach(wc, fn, ud);
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

static void on_uv_alarm(uv_timer_t *t)
{
    ctl *c = t->data;
    c->wake(c);
}

int ctl__workers(const ctl *c)
{
    return c->o.workers > 0 ? c->o.workers : 8;
}

/* Wake at the next tick, the next delayed key, or now when keys are queued
 * and a worker is free (from the loop: never inside an informer's handler). */
void ctl__rearm(ctl *c)
{
    if (c->closing || !c->started)
        return;
    uint64_t now = ctl__now(c);
    uint64_t d = kqueue_tick(c->q, now);
    uint64_t at = c->next_tick_ms;
    /* keys wait for a free worker, or for the next slice (controller.c's pump) */
    if (kqueue_len(c->q) && c->running < ctl__workers(c) && c->leader && ctl_synced(c) &&
        !c->slice_armed)
        at = now;
    else if (d != KQUEUE_NEVER && now + d < at)
        at = now + d;
    if (at == c->armed_at)
        return;
    c->armed_at = at;
    if (c->o.clock.now_ms) {
        if (c->o.clock.alarm)
            c->o.clock.alarm(c->o.clock.ud, at, c->wake, c);
    } else {
        uv_timer_start(&c->tick, on_uv_alarm, at > now ? at - now : 0, 0);
    }
}

/* ---- queueing ----------------------------------------------------------------------------- */

int ctl_enqueue(ctl *c, const char *key)
{
    if (c->closing)
        return -ESHUTDOWN;
    int rc = kqueue_add(c->q, key);
    ctl__rearm(c);
    return rc;
}

void ctl__requeue_after(ctl *c, const char *key, uint64_t ms)
{
    if (c->closing)
        return;
    kqueue_add_after(c->q, key, ms, ctl__now(c));
    ctl__rearm(c);
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

int64_t ctl__answered_generation(const krest_reply *r)
{
    cJSON *obj = cJSON_ParseWithLength(r->body, r->body_len);
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "generation");
    int64_t g = cJSON_IsNumber(gen) && gen->valuedouble >= 1 ? (int64_t)gen->valuedouble : 0;
    cJSON_Delete(obj);
    return g;
}

void ctl__answer(ctl_answer *a, const krest_reply *r)
{
    snprintf(a->msg, sizeof a->msg, "%s", ctl__reply_msg(r));
    a->r = (ctlstep_reply){.done = 1, .sent = 1, .http_status = r->http_status, .msg = a->msg};
}

void ctl__answer_unsent(ctl_answer *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->msg, sizeof a->msg, fmt, ap);
    va_end(ap);
    a->r = (ctlstep_reply){.done = 1, .sent = 0, .msg = a->msg};
}

int ctl_synced(const ctl *c)
{
    for (int i = 0; i < CTL_NINF; i++)
        if (!c->inf[i] || !kinf_has_synced(c->inf[i]))
            return 0;
    return 1;
}
