/*
 * ctl status: each OptimizationPolicy's status (conditions, counts,
 * conflicts, recommendations), rebuilt from what the controller remembers of
 * the workloads and written only when it differs from the last write
 * (lastReconcileTime aside: a steady state writes nothing; usage figures that
 * moved alone are written at most every STATUS_REFRESH_MS). Separate because
 * it writes to the policy, never to a workload, and no reconcile job runs
 * through it: the tick (controller.c) flushes dirty policies once nothing is
 * running. At most one status write per policy is in flight (ctl_pstate).
 *
 * Building a status walks every workload's state (ten thousand at scale), so
 * the walk goes in slices like the queue (controller.c's pump): it stops once
 * the loop has been busy CTL_SLICE_NS since its last poll and goes on at the
 * next tick, where it left off, unless the states were added or removed in
 * between (then it starts again).
 */
#include "controller/ctl_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* ---- policy status ----------------------------------------------------------------------- */

static const char *const cond_type[NCOND] = {"Ready", "Conflict", "MetricsAvailable"};

typedef struct status_ctx {
    ctl *c;
    const char *pkey;
    const pol_policy *p;
    int matched, applied, conflicting, taken_over;
    int loop, duplicate;
    char conflict_msg[1024];
    cJSON *recs, *conflicts;
    size_t nrecs, nconflicts, max_recs;
} status_ctx;

/* The status being built: where the walk over the workloads' states is. */
typedef struct status_walk {
    status_ctx x;
    opmap_iter it;
    uint64_t gen; /* c->wstates_gen when it started: the iterator holds while it is unchanged */
} status_walk;

/* Entries walked before the slice's clock is looked at: a small controller
 * (and every test) builds a status in one go. */
#define STATUS_WALK_MIN 1024

static void status_workload(status_ctx *x, const char *key, const ctl_wstate *ws)
{
    enum kproj_kind k;
    char ns[256], name[256];
    int mine = strcmp(ctl__str(ws->policy), x->pkey) == 0;
    if (!mine && !ws->nlosers)
        return; /* most workloads of a big cluster: no key to parse */
    if (ctl__parse_wkey(key, &k, ns, name) != 0)
        return;
    for (int i = 0; i < ws->nlosers; i++) {
        if (strcmp(ws->loser_of[i], x->pkey) != 0)
            continue;
        x->conflicting++;
        if (x->nconflicts < 50) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "kind", kproj_kind_name(k));
            cJSON_AddStringToObject(e, "namespace", ns);
            cJSON_AddStringToObject(e, "name", name);
            cJSON_AddStringToObject(e, "winner", ctl__str(ws->policy));
            cJSON_AddItemToArray(x->conflicts, e);
            x->nconflicts++;
        }
    }
    if (!mine)
        return;
    x->matched++;
    /* applied: the live values equal the recommendation (the record reads them) */
    if (ctl__record_applied(x->c, key))
        x->applied++;
    x->taken_over += ws->taken_over;
    if (ws->conflict) {
        x->conflicting++;
        x->loop |= ws->loop_stopped;
        x->duplicate |= ws->duplicate_until_ms != 0;
        size_t l = strlen(x->conflict_msg);
        if (l < 700)
            snprintf(x->conflict_msg + l, sizeof x->conflict_msg - l, "%s%s: %s", l ? "; " : "",
                     key, ws->conflict);
    }
    for (int i = 0; i < ws->nrecs && x->nrecs < x->max_recs; i++) {
        const ctl_rec *r = &ws->recs[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "kind", kproj_kind_name(k));
        cJSON_AddStringToObject(e, "namespace", ns);
        cJSON_AddStringToObject(e, "name", name);
        cJSON_AddStringToObject(e, "container", r->container);
        if (r->cpu[0])
            cJSON_AddStringToObject(e, "cpuRequest", r->cpu);
        if (r->mem[0])
            cJSON_AddStringToObject(e, "memoryRequest", r->mem);
        if (r->cpu_lim[0])
            cJSON_AddStringToObject(e, "cpuLimit", r->cpu_lim);
        if (r->mem_lim[0])
            cJSON_AddStringToObject(e, "memoryLimit", r->mem_lim);
        if (r->samples >= 0)
            cJSON_AddNumberToObject(e, "samples", (double)r->samples);
        cJSON_AddBoolToObject(e, "applied", r->applied);
        cJSON_AddItemToArray(x->recs, e);
        x->nrecs++;
    }
}

static void set_cond(ctl_pstate *ps, int i, const char *status, const char *reason, const char *msg,
                     const char *now)
{
    ctl_cond *c = &ps->conds[i];
    if (strcmp(c->status, status) != 0 || !c->since[0])
        snprintf(c->since, sizeof c->since, "%s", now);
    snprintf(c->status, sizeof c->status, "%s", status);
    snprintf(c->reason, sizeof c->reason, "%s", reason);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
}

static void on_status_done(const krest_reply *r, void *ud);

/* Usage figures that changed alone are written at most this often: they move
 * with every query as the window slides (the records do the same). */
#define STATUS_REFRESH_MS 600000u

/* The status without its usage figures (recommendations[].samples), for
 * telling a new decision from figures that moved. NULL on ENOMEM. */
static char *decision_sig(const cJSON *root)
{
    cJSON *d = cJSON_Duplicate(root, 1);
    cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(
                              cJSON_GetObjectItemCaseSensitive(d, "status"), "recommendations"))
        cJSON_DeleteItemFromObjectCaseSensitive(e, "samples");
    char *s = d ? cJSON_PrintUnformatted(d) : NULL;
    cJSON_Delete(d);
    return s;
}

typedef struct status_req {
    ctl *c;
    char pkey[KCACHE_KEY_MAX];
    char *sig, *dsig;
} status_req;

void ctl__status_req_release(struct status_req *s)
{
    if (!s)
        return;
    free(s->sig);
    free(s->dsig);
    free(s);
}

void ctl__status_walk_free(struct status_walk *w)
{
    if (!w)
        return;
    cJSON_Delete(w->x.recs);
    cJSON_Delete(w->x.conflicts);
    free(w);
}

/* Start the walk, or go on with it; 1 when it is done (w->x holds the counts). */
static int status_walk_step(ctl *c, const char *pkey, ctl_pstate *ps)
{
    status_walk *w = ps->walk;
    if (w && w->gen != c->wstates_gen) { /* states came or went: the iterator is stale */
        ctl__status_walk_free(w);
        w = ps->walk = NULL;
    }
    if (!w) {
        if (!(w = calloc(1, sizeof *w)))
            return -ENOMEM;
        w->x = (status_ctx){.c = c, .pkey = pkey};
        w->x.max_recs = c->o.max_status_recs ? c->o.max_status_recs : 20;
        w->x.recs = cJSON_CreateArray();
        w->x.conflicts = cJSON_CreateArray();
        w->gen = c->wstates_gen;
        opmap_iter_init(&w->it, &c->wstates);
        ps->walk = w;
    }
    w->x.pkey = pkey; /* the pstates entry's key: stable while ps is */
    opmap_entry *e;
    for (size_t n = 1; (e = opmap_next(&w->it)) != NULL; n++) {
        status_workload(&w->x, e->key, e->value);
        if (n >= STATUS_WALK_MIN && n % 256 == 0 && oploopmon_busy_ns(&c->lm) >= CTL_SLICE_NS)
            return 0;
    }
    return 1;
}

/* Build the status, a slice at a time; write it when it differs from the last
 * one written (lastReconcileTime aside: a steady state writes nothing).
 * Returns 1 while the walk goes on (call again at the next tick). */
int ctl__flush_status(ctl *c, const char *pkey, ctl_pstate *ps)
{
    if (!ps->walk)
        ps->dirty = 0; /* a change from here on is seen by the next walk */
    const pol_policy *p = ctl__policy_of(kcache_get_key(ctl__cache(c, CTL_INF_POLICIES), pkey));
    if (!p) {
        ctl__status_walk_free(ps->walk);
        ps->walk = NULL;
        return 0;
    }
    int done = status_walk_step(c, pkey, ps);
    if (done == 0)
        return 1;
    status_walk *w = ps->walk;
    ps->walk = NULL;
    if (done < 0) {
        OPLOG_W("policy %s: status: out of memory", pkey);
        ps->dirty = 1;
        return 0;
    }
    const kproj_obj *po = kcache_get_key(ctl__cache(c, CTL_INF_POLICIES), pkey);
    status_ctx x = w->x;
    x.p = p;
    free(w); /* its arrays move into the status below */
    char now[32];
    ctl__rfc3339(ctl__wall_ms(c), now, sizeof now);

    if (p->valid) {
        set_cond(ps, COND_READY, "True", "Valid", "the policy is valid and in use", now);
    } else {
        opbuf m;
        opbuf_init(&m, 8192);
        pol_errors_format(p, &m);
        set_cond(ps, COND_READY, "False", "InvalidSpec", opbuf_str(&m), now);
        if (ps->invalid_warned_gen != p->generation) {
            ps->invalid_warned_gen = p->generation;
            ctl__policy_event(c, pkey, KEVENTS_WARNING, "InvalidPolicy", "%s", opbuf_str(&m));
        }
        opbuf_release(&m);
    }
    if (x.conflict_msg[0])
        set_cond(ps, COND_CONFLICT, "True",
                 x.loop        ? "GitOpsConflictLoop"
                 : x.duplicate ? "DuplicateController"
                               : "SSAConflict",
                 x.conflict_msg, now);
    else if (x.nconflicts)
        set_cond(ps, COND_CONFLICT, "True", "PolicyConflict",
                 "another policy wins some selected workloads", now);
    else
        set_cond(ps, COND_CONFLICT, "False", "NoConflict", "no other manager or policy conflicts",
                 now);
    if (ps->metrics_state > 0)
        set_cond(ps, COND_METRICS, "True", "ProviderAnswered", "the metrics provider answered",
                 now);
    else if (ps->metrics_state < 0)
        set_cond(ps, COND_METRICS, "False", "MetricsUnavailable", ps->metrics_msg, now);
    else
        set_cond(ps, COND_METRICS, "Unknown", "NotQueried", "no usage was needed yet", now);

    cJSON *root = cJSON_CreateObject();
    cJSON *st = cJSON_AddObjectToObject(root, "status");
    cJSON_AddNumberToObject(st, "observedGeneration", (double)p->generation);
    cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
    for (int i = 0; i < NCOND; i++) {
        cJSON *cd = cJSON_CreateObject();
        cJSON_AddStringToObject(cd, "type", cond_type[i]);
        cJSON_AddStringToObject(cd, "status", ps->conds[i].status);
        cJSON_AddNumberToObject(cd, "observedGeneration", (double)p->generation);
        cJSON_AddStringToObject(cd, "lastTransitionTime", ps->conds[i].since);
        cJSON_AddStringToObject(cd, "reason", ps->conds[i].reason);
        cJSON_AddStringToObject(cd, "message", ps->conds[i].msg);
        cJSON_AddItemToArray(conds, cd);
    }
    cJSON_AddNumberToObject(st, "workloadsMatched", x.matched);
    cJSON_AddNumberToObject(st, "workloadsApplied", x.applied);
    cJSON_AddNumberToObject(st, "workloadsConflicting", x.conflicting);
    cJSON_AddNumberToObject(st, "workloadsTakenOver", x.taken_over);
    if (!p->valid)
        cJSON_AddItemToObject(st, "validationErrors", pol_errors_to_json(p));
    else
        cJSON_AddItemToObject(st, "validationErrors", cJSON_CreateArray());
    cJSON_AddItemToObject(st, "conflicts", x.conflicts);
    cJSON_AddItemToObject(st, "recommendations", x.recs);
    /* The rollout being followed, on its policy; null elsewhere, which a
     * merge patch reads as "remove": a record never outlives its rollout. */
    cJSON *rec = strcmp(c->slot_policy, pkey) == 0 ? rollout_slot_to_json(&c->slot) : NULL;
    cJSON_AddItemToObject(st, "rollout", rec ? rec : cJSON_CreateNull());
    char *sig = cJSON_PrintUnformatted(root);
    char *dsig = decision_sig(root);
    if (!sig || !dsig || (ps->last_sig && strcmp(sig, ps->last_sig) == 0) ||
        (ps->last_dsig && strcmp(dsig, ps->last_dsig) == 0 &&
         ctl__now(c) - ps->written_at < STATUS_REFRESH_MS) ||
        ps->writing) {
        if (ps->writing && sig)
            ps->dirty = 1; /* write again once the running one is done */
        cJSON_free(sig);
        cJSON_free(dsig);
        cJSON_Delete(root);
        return 0;
    }
    cJSON_AddStringToObject(st, "lastReconcileTime", now);
    char *body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    status_req *sr = calloc(1, sizeof *sr);
    opbuf path;
    opbuf_init(&path, 2048);
    int rc = !body || !sr ? -ENOMEM : 0;
    if (!rc)
        rc = ctl__write_path(c, &path, &KRES_POLICIES, po->ns, po->name, "status", 0, 0, 0);
    if (!rc) {
        sr->c = c;
        snprintf(sr->pkey, sizeof sr->pkey, "%s", pkey);
        sr->sig = strdup(sig);
        sr->dsig = strdup(dsig);
        rc = krest_call(c->rest, "PATCH", opbuf_str(&path), "application/merge-patch+json", body,
                        strlen(body), on_status_done, sr, &ps->req);
    }
    if (!rc) {
        ps->sr = sr;
        ps->writing = 1;
        ps->written_at = ctl__now(c);
        c->st.writes++;
        c->st.status_writes++;
    } else {
        if (sr)
            ctl__status_req_release(sr);
        OPLOG_W("policy %s: status write: %s", pkey, strerror(-rc));
    }
    opbuf_release(&path);
    cJSON_free(body);
    cJSON_free(sig);
    cJSON_free(dsig);
    return 0;
}

static void on_status_done(const krest_reply *r, void *ud)
{
    status_req *sr = ud;
    ctl_pstate *ps = ctl__pstate(sr->c, sr->pkey, 0);
    if (!ps)
        return;
    ps->req = NULL;
    ps->sr = NULL;
    ps->writing = 0;
    if (ctl__ok2xx(r)) {
        free(ps->last_sig);
        ps->last_sig = sr->sig;
        sr->sig = NULL;
        free(ps->last_dsig);
        ps->last_dsig = sr->dsig;
        sr->dsig = NULL;
        if (ps->status_failures)
            OPLOG_I("policy %s: status written again after %u failed attempts", sr->pkey,
                    ps->status_failures);
        ps->status_failures = 0;
        ps->status_retry_ms = 0;
        opbackoff_reset(&ps->status_bo);
    } else if (r->http_status != 404) {
        /* the tick retries, but not before this backoff step: an outage is one line a step */
        uint64_t now = ctl__now(sr->c), d = ctl__fail_backoff(&ps->status_bo, now);
        ps->status_failures++;
        ps->status_retry_ms = now + d;
        OPLOG_W("policy %s: status write: HTTP %ld: %s (attempt %u; next in %.1f s)", sr->pkey,
                r->http_status, ctl__reply_msg(r), ps->status_failures, (double)d / 1000.0);
        ps->dirty = 1;
    }
    ctl__status_req_release(sr);
}
