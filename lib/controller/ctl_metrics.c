/*
 * What a reconcile leaves in the metrics registry (ctl_opts.metrics): its
 * duration by outcome, and for a workload a policy manages the current
 * requests and limits of its containers next to optipod's recommendation,
 * the figures VPA, KRR and Goldilocks users compare. Series exist only for
 * managed workloads: a reconcile that finds the workload gone, or no longer
 * selected by an enabled policy, removes them, as does the workload's
 * deletion, and a controller that stops leading forgets them all
 * (ctl_metrics_forget), so the series count is bounded by what this leader
 * manages.
 */
#include <math.h>
#include <string.h>

#include "controller/ctl_int.h"
#include "engine/quantity.h"

#define F_DURATION "optipod_reconcile_duration_seconds"
#define F_REQ      "optipod_container_resource_requests"
#define F_LIM      "optipod_container_resource_limits"
#define F_REC_REQ  "optipod_container_recommended_requests"
#define F_REC_LIM  "optipod_container_recommended_limits"

static const char *const k_labels[] = {"namespace", "kind", "workload", "container",
                                       "resource",  "unit", NULL};

int ctl_metrics_define(obs_reg *r, operr *err)
{
    /* From 1 ms (a decision from the caches) to 2 min (a usage query that retried). */
    static const double b[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                               0.5,   1,     2.5,  5,     10,   30,  120};
    static const char *const lo[] = {"outcome", NULL};
    if (!r)
        return 0;
    int ok = obs_histogram(r, F_DURATION,
                           "Reconciles of one workload, from dequeue to outcome (applied, "
                           "unchanged, skipped, conflict, error), usage queries included.",
                           lo, b, sizeof b / sizeof b[0], err) &&
             obs_gauge(r, F_REQ,
                       "Requests of a managed workload's containers as its pod template has them "
                       "(cpu in cores, memory in bytes).",
                       k_labels, err) &&
             obs_gauge(r, F_LIM,
                       "Limits of a managed workload's containers as its pod template has them.",
                       k_labels, err) &&
             obs_gauge(r, F_REC_REQ, "optipod's recommended requests for a managed container.",
                       k_labels, err) &&
             obs_gauge(r, F_REC_LIM, "optipod's recommended limits for a managed container.",
                       k_labels, err);
    return ok ? 0 : -EINVAL;
}

void ctl_metrics_forget(obs_reg *r)
{
    obs_clear(obs_find(r, F_REQ));
    obs_clear(obs_find(r, F_LIM));
    obs_clear(obs_find(r, F_REC_REQ));
    obs_clear(obs_find(r, F_REC_LIM));
}

/* Set {ns, kind, name, container, resource, unit} of family f from a quantity string. */
static void put(obs_fam *f, const char *const *w, const char *container, const char *resource,
                const char *qty)
{
    int64_t v;
    if (!qty || !*qty)
        return;
    int cpu = strcmp(resource, "cpu") == 0;
    if (!cpu && strcmp(resource, "memory") != 0)
        return; /* optipod manages these two */
    if ((cpu ? kq_parse_cpu_milli(qty, &v, NULL) : kq_parse_bytes(qty, &v, NULL)) != 0)
        return;
    const char *lv[] = {w[0], w[1], w[2], container, resource, cpu ? "core" : "byte"};
    obs_set(f, lv, cpu ? (double)v / 1000.0 : (double)v);
}

static void put_kvs(obs_fam *f, const char *const *w, const char *container, const kproj_kv *kv,
                    size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(f, w, container, kv[i].key, kv[i].value);
}

/* Remove every per-container series of workload w = {ns, kind, name}. */
static void forget(obs_reg *r, const char *const *w)
{
    static const char *const fams[] = {F_REQ, F_LIM, F_REC_REQ, F_REC_LIM};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
        obs_remove_prefix(obs_find(r, fams[i]), w, 3);
}

/* Remove the series of workload w = {ns, kind, name} for the containers o has: what
 * a reconcile put, without walking the families (thousands of series at scale, and a
 * reconcile of every workload each pass). */
static void forget_obj(obs_reg *r, const char *const *w, const kproj_obj *o)
{
    static const char *const fams[] = {F_REQ, F_LIM, F_REC_REQ, F_REC_LIM};
    static const char *const res[][2] = {{"cpu", "core"}, {"memory", "byte"}};
    for (size_t i = 0; i < o->ncontainers + o->ninit_containers; i++) {
        const kproj_container *pc =
            i < o->ncontainers ? &o->containers[i] : &o->init_containers[i - o->ncontainers];
        for (size_t f = 0; pc->name && f < sizeof fams / sizeof fams[0]; f++)
            for (size_t k = 0; k < 2; k++) {
                const char *lv[] = {w[0], w[1], w[2], pc->name, res[k][0], res[k][1]};
                obs_remove(obs_find(r, fams[f]), lv);
            }
    }
}

void ctl__metrics_containers_changed(ctl *c, const kproj_obj *old)
{
    if (!c->o.metrics || !old->ns || !old->name)
        return;
    const char *w[] = {old->ns, kproj_kind_name(old->kind), old->name};
    forget_obj(c->o.metrics, w, old);
}

void ctl__metrics_gone(ctl *c, enum kproj_kind kind, const char *ns, const char *name)
{
    const char *w[] = {ns ? ns : "", kproj_kind_name(kind), name ? name : ""};
    forget(c->o.metrics, w);
}

void ctl__metrics_end(ctl_job *j, const ctl_wstate *ws, enum ctlrec_outcome oc)
{
    ctl *c = j->c;
    obs_reg *r = c->o.metrics;
    if (!r || ctl_metrics_define(r, NULL) != 0)
        return;
    const char *outcome[] = {ctlrec_outcome_name(oc)};
    obs_observe(obs_find(r, F_DURATION), outcome, (double)(uv_hrtime() - j->started_ns) / 1e9);
    if (!j->ns[0] || !j->name[0])
        return; /* not a workload key */
    obs_fam *req = obs_find(r, F_REQ), *lim = obs_find(r, F_LIM), *rreq = obs_find(r, F_REC_REQ),
            *rlim = obs_find(r, F_REC_LIM);
    const char *w[] = {j->ns, kproj_kind_name(j->kind), j->name};
    const kproj_obj *o = kcache_get(ctl__cache(c, ctl__inf_for_kind(j->kind)), j->ns, j->name);
    if (o)
        forget_obj(r, w, o); /* series of containers it no longer has went when it changed */
    else
        forget(r, w);
    /* Managed: an enabled policy won this reconcile (j->pkey) and the workload exists. */
    if (!o || !j->pkey[0] || !ws)
        return;
    for (size_t i = 0; i < o->ncontainers; i++) {
        const kproj_container *pc = &o->containers[i];
        if (!pc->name)
            continue;
        put_kvs(req, w, pc->name, pc->requests, pc->nrequests);
        put_kvs(lim, w, pc->name, pc->limits, pc->nlimits);
    }
    for (int i = 0; i < ws->nrecs; i++) {
        const ctl_rec *rc = &ws->recs[i];
        put(rreq, w, rc->container, "cpu", rc->cpu);
        put(rreq, w, rc->container, "memory", rc->mem);
        put(rlim, w, rc->container, "cpu", rc->cpu_lim);
        put(rlim, w, rc->container, "memory", rc->mem_lim);
    }
}
