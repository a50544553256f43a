/*
 * ctl rollout: the I/O around the rollout gate (controller/rollout.h, pure):
 * the namespace's PodDisruptionBudgets and the slot holder read from the
 * caches, the one cluster-wide slot reserved before a write and committed to
 * the generation it produced, and the webhook strategy's restart (a PATCH of
 * the template annotation optipod.io/restartedAt) that passes through it.
 * Separate because every write that rolls pods, from either strategy, goes
 * through here.
 */
#include "controller/ctl_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apply/ssa.h"
#include "controller/rollout.h"
#include "kube/queue.h"
#include "util/log.h"

#define MAX_PDBS     64 /* PDBs of one namespace the gate looks at */
#define RESTARTED_AT "optipod.io/restartedAt"

/* ---- the rollout gate and the webhook strategy's restart ------------------------------------ */

typedef struct pdb_ctx {
    const char *ns;
    const kproj_obj *pdbs[MAX_PDBS];
    size_t n;
} pdb_ctx;

static int collect_pdb(const kproj_obj *o, void *ud)
{
    pdb_ctx *x = ud;
    if (o->ns && strcmp(o->ns, x->ns) == 0 && x->n < MAX_PDBS)
        x->pdbs[x->n++] = o;
    return 0;
}

static void key_ref(const char *key, const char *uid, kevents_ref *ref, char *ns, char *name)
{
    enum kproj_kind k = KPROJ_UNKNOWN;
    if (ctl__parse_wkey(key, &k, ns, name) != 0)
        ns[0] = name[0] = 0;
    *ref = (kevents_ref){ssa_api_version(k), kproj_kind_name(k), ns, name, uid};
}

/* Before a write that rolls w's pods: 1 = go (the slot is reserved for this
 * job); 0 = the job has ended (deferred, Event RolloutDeferred, requeued). */
int ctl__gate_rollout(ctl_job *j, const kproj_obj *w)
{
    ctl *c = j->c;
    if (!rollout_rolls_pods(w))
        return 1; /* OnDelete: a template change replaces nothing */
    pdb_ctx px = {.ns = j->ns};
    kcache_foreach(ctl__cache(c, CTL_INF_PDBS), collect_pdb, &px);
    const kproj_obj *holder = NULL;
    enum kproj_kind hk;
    char hns[256], hname[256];
    if (c->slot.key[0] && ctl__parse_wkey(c->slot.key, &hk, hns, hname) == 0)
        holder = kcache_get(ctl__cache(c, ctl__inf_for_kind(hk)), hns, hname);
    rollout_in in = {.key = j->key,
                     .workload = w,
                     .slot = &c->slot,
                     .slot_workload = holder,
                     .pdbs = px.pdbs,
                     .npdbs = px.n,
                     .now_ms = ctl__wall_ms(c)};
    rollout_out out;
    if (rollout_gate(&in, &out) != 0) {
        ctl__job_end(j, CTLREC_ERROR, "rollout gate: bad input");
        return 0;
    }
    if (out.release != ROLLOUT_KEEP) {
        if (out.release == ROLLOUT_STUCK) {
            kevents_ref ref;
            key_ref(c->slot.key, holder ? holder->uid : NULL, &ref, hns, hname);
            ctl__event(c, &ref, KEVENTS_WARNING, "RolloutStuck", "Rollout", "%s", out.stuck);
            OPLOG_W("rollout: %s", out.stuck);
        } else {
            OPLOG_V(2, "rollout: %s %s", c->slot.key, rollout_release_name(out.release));
        }
        ctl__slot_clear(c);
        ctl__wake_deferred(c, NULL, j->key);
    }
    if (out.verdict == ROLLOUT_WAIT) {
        kevents_ref ref;
        ctl__workload_ref(j, w->uid, &ref);
        ctl__event(c, &ref, KEVENTS_NORMAL, "RolloutDeferred", "Rollout", "%s", out.reason);
        j->deferred = 1;
        ctl__requeue_after(c, j->key, out.retry_ms);
        ctl__job_end(j, CTLREC_SKIPPED, "rollout deferred: %s", out.reason);
        return 0;
    }
    ctl__slot_clear(c);
    snprintf(c->slot.key, sizeof c->slot.key, "%s", j->key);
    snprintf(c->slot_policy, sizeof c->slot_policy, "%s", j->pkey);
    j->slot_held = 1;
    return 1;
}

/* A write that rolls pods was answered: the slot now waits for the
 * generation it produced (a dry run rolls nothing: ctl__job_end frees it). */
void ctl__slot_commit(ctl_job *j, const krest_reply *r)
{
    ctl *c = j->c;
    if (!j->slot_held || c->o.dry_run || strcmp(c->slot.key, j->key) != 0)
        return;
    const kproj_obj *w = kcache_get(ctl__cache(c, ctl__inf_for_kind(j->kind)), j->ns, j->name);
    cJSON *obj = cJSON_ParseWithLength(r->body, r->body_len);
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "generation");
    int64_t g = cJSON_IsNumber(gen) && gen->valuedouble >= 1 ? (int64_t)gen->valuedouble : 0;
    if (g == 0)
        g = w ? w->generation + 1 : 1;
    cJSON_Delete(obj);
    c->slot.generation = g;
    c->slot.started_ms = ctl__wall_ms(c);
    c->slot.bound_ms = rollout_bound_ms(w);
    ctl__mark_policy_dirty(c, c->slot_policy); /* status.rollout records it */
}

void ctl__slot_clear(ctl *c)
{
    if (c->slot.generation >= 1)
        ctl__mark_policy_dirty(c, c->slot_policy); /* its record goes */
    memset(&c->slot, 0, sizeof c->slot);
    c->slot_policy[0] = 0;
}

typedef struct recover_ctx {
    rollout_slot best;
    char pkey[KCACHE_KEY_MAX];
} recover_ctx;

/* The latest record wins: two can only exist after a split brain, and the
 * later one is the rollout still likeliest to be running. */
static int recover_visit(const kproj_obj *o, void *ud)
{
    recover_ctx *x = ud;
    const ctl_policy_ext *e = o->ext;
    if (!e || !e->recorded.key[0] ||
        (x->best.key[0] && e->recorded.started_ms <= x->best.started_ms))
        return 0;
    if (kproj_key(x->pkey, sizeof x->pkey, o->ns, o->name) == 0)
        x->best = e->recorded;
    return 0;
}

void ctl__slot_recover(ctl *c)
{
    if (c->slot_recovered)
        return;
    c->slot_recovered = 1;
    if (c->slot.key[0])
        return; /* taken meanwhile */
    recover_ctx x = {0};
    kcache_foreach(ctl__cache(c, CTL_INF_POLICIES), recover_visit, &x);
    enum kproj_kind k;
    char ns[256], name[256];
    if (!x.best.key[0] || ctl__parse_wkey(x.best.key, &k, ns, name) != 0)
        return;
    const kproj_obj *w = kcache_get(ctl__cache(c, ctl__inf_for_kind(k)), ns, name);
    if (!w) {
        OPLOG_I("rollout: %s, recorded in policy %s, is gone; not waiting for it", x.best.key,
                x.pkey);
        ctl__mark_policy_dirty(c, x.pkey);
        return;
    }
    c->slot = x.best;
    c->slot.bound_ms = rollout_bound_ms(w);
    snprintf(c->slot_policy, sizeof c->slot_policy, "%s", x.pkey);
    char at[32];
    ctl__rfc3339(c->slot.started_ms, at, sizeof at);
    OPLOG_I("rollout: following %s (generation %lld, started %s) as policy %s recorded it",
            c->slot.key, (long long)c->slot.generation, at, x.pkey);
    ctl__slot_check(c, w);
}

void ctl__slot_check(ctl *c, const kproj_obj *holder)
{
    if (!c->slot.key[0] || c->slot.generation < 1 || !holder)
        return;
    const char *why = NULL;
    if (rollout_complete(holder, c->slot.generation, NULL, 0))
        why = rollout_release_name(ROLLOUT_COMPLETED);
    else if (holder->rollout.paused)
        why = rollout_release_name(ROLLOUT_PAUSED);
    if (!why)
        return;
    OPLOG_V(2, "rollout: %s %s", c->slot.key, why);
    ctl__slot_clear(c);
}

static void on_restart_done(const krest_reply *r, void *ud)
{
    ctl_job *j = ud;
    ctl *c = j->c;
    j->req = NULL;
    if (r->http_status == 409) {
        ctl__job_end(j, CTLREC_ERROR, "restart: the workload changed meanwhile (%s); retrying",
                     ctl__reply_msg(r));
        return;
    }
    if (!ctl__ok2xx(r)) {
        ctl__job_end(j, CTLREC_ERROR, "restart: HTTP %ld: %s", r->http_status, ctl__reply_msg(r));
        return;
    }
    ctl__slot_commit(j, r);
    ctl_wstate *ws = ctl__wstate(c, j->key, 1);
    if (ws && !c->o.dry_run) {
        ws->last_apply_ms = ctl__now(c);
        if (strcmp(c->slot.key, j->key) == 0 && c->slot.generation > 0)
            ws->restart_gen = c->slot.generation; /* did it take? see restart_did_not_take() */
    }
    kevents_ref ref;
    ctl__workload_ref(j, NULL, &ref);
    ctl__event(c, &ref, KEVENTS_NORMAL, "RolloutTriggered", "Rollout",
               "%s a rollout through the workload: %s (policy %s)%s",
               c->o.dry_run ? "would trigger" : "triggered", j->changes, j->pkey,
               c->o.dry_run ? " (dry run)" : "");
    ctl__job_end(j, CTLREC_APPLY, "%s: %s%s",
                 c->o.dry_run ? "dry run: would roll out" : "rolled out", j->changes,
                 c->o.dry_run ? " (dry run)" : "");
}

typedef struct differ_ctx {
    ctl *c;
    const ctl_job *j;
    const kproj_obj *w;
    int npods, ndiffer;
    int nuninjected; /* of those, pods running the template's requests */
    char first[256];
} differ_ctx;

static int count_differing(const kproj_obj *pod, void *ud)
{
    differ_ctx *x = ud;
    char key[600], want[600];
    if (!pod->ns || strcmp(pod->ns, x->j->ns) != 0 || !pod->phase ||
        (strcmp(pod->phase, "Running") != 0 && strcmp(pod->phase, "Pending") != 0) ||
        ctl__pod_owner(x->c, pod, key, sizeof key) != 0)
        return 0;
    snprintf(want, sizeof want, "%s/%s", kproj_kind_name(x->j->kind), x->j->name);
    if (strcmp(key, want) != 0)
        return 0;
    x->npods++;
    if (rollout_pod_differs(pod, x->j->out.rec, x->j->out.nrec, x->j->out.allow_limits)) {
        if (!x->ndiffer++)
            snprintf(x->first, sizeof x->first, "%s", pod->name ? pod->name : "");
        x->nuninjected += rollout_pod_uninjected(pod, x->w, x->j->out.rec, x->j->out.nrec);
    }
    return 0;
}

/* Our last restart rolled out (the spec unchanged since), yet its pods run
 * the template's requests: the webhook did not inject them, and restarting
 * again would only churn pods every period. 1 = the job ended (skipped, a
 * Warning once per restart); 0 = no such evidence. */
static int restart_did_not_take(ctl_job *j, const kproj_obj *w, ctl_wstate *ws, const differ_ctx *x)
{
    ctl *c = j->c;
    if (!ws->restart_gen || ws->restart_gen != w->generation || !x->nuninjected ||
        !rollout_complete(w, ws->restart_gen, NULL, 0))
        return 0;
    const kproj_obj *nso = kcache_get(ctl__cache(c, CTL_INF_NAMESPACES), NULL, j->ns);
    const char *label = nso ? kproj_kv_get(nso->labels, nso->nlabels, "optipod.io/webhook") : NULL;
    char hint[512];
    if (nso && (!label || strcmp(label, "enabled") != 0))
        snprintf(hint, sizeof hint, "namespace %s is not labelled optipod.io/webhook=enabled",
                 j->ns);
    else
        snprintf(hint, sizeof hint,
                 "is the MutatingWebhookConfiguration reaching optipod? (with failurePolicy "
                 "Ignore an unreachable webhook admits pods unchanged)");
    char kind[32];
    snprintf(kind, sizeof kind, "%s", kproj_kind_name(j->kind));
    for (char *p = kind; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    if (ws->uninjected_warned != ws->restart_gen) {
        ws->uninjected_warned = ws->restart_gen;
        kevents_ref ref;
        ctl__workload_ref(j, w->uid, &ref);
        ctl__event(c, &ref, KEVENTS_WARNING, "WebhookNotInjecting", "Rollout",
                   "%d of %d pods, created by optipod's restart (generation %lld), run the pod "
                   "template's requests: the webhook did not inject the recommendation; %s. "
                   "optipod will not restart %s/%s again until its pods carry the "
                   "recommendation or its spec changes; once fixed: kubectl -n %s rollout "
                   "restart %s/%s",
                   x->nuninjected, x->npods, (long long)ws->restart_gen, hint, kind, j->name, j->ns,
                   kind, j->name);
    }
    ctl__job_end(j, CTLREC_SKIPPED,
                 "the webhook did not inject the pods of optipod's last restart (%s); not "
                 "restarting again",
                 hint);
    return 1;
}

/* The strategic-merge body: only the template annotation, with the live uid
 * and resourceVersion as preconditions. */
static int restart_body(const kproj_obj *w, const char *at, opbuf *out)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *md = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddStringToObject(md, "uid", w->uid ? w->uid : "");
    cJSON_AddStringToObject(md, "resourceVersion", w->rv ? w->rv : "");
    cJSON *tmd = cJSON_AddObjectToObject(
        cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "spec"), "template"), "metadata");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(tmd, "annotations"), RESTARTED_AT, at);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s)
        return -ENOMEM;
    int rc = opbuf_puts(out, s);
    cJSON_free(s);
    return rc;
}

/* Webhook strategy, immediate + allowRecreate, annotations current: replace
 * the pods that still run other values. 1 = handled (the job ended or a
 * request is out); 0 = nothing to restart. */
int ctl__maybe_restart(ctl_job *j, const kproj_obj *w, ctl_wstate *ws)
{
    ctl *c = j->c;
    differ_ctx x = {.c = c, .j = j, .w = w};
    kcache_foreach(ctl__cache(c, CTL_INF_PODS), count_differing, &x);
    if (x.ndiffer == 0)
        return 0;
    snprintf(j->changes, sizeof j->changes,
             "%d of %d pods (%s%s) run other values than the "
             "recommendation",
             x.ndiffer, x.npods, x.first, x.ndiffer > 1 ? ", ..." : "");
    if (!rollout_rolls_pods(w)) {
        ctl__job_end(
            j, CTLREC_SKIPPED,
            "%s; updateStrategy OnDelete: the owner chose manual updates, optipod restarts "
            "nothing",
            j->changes);
        return 1;
    }
    if (restart_did_not_take(j, w, ws, &x))
        return 1;
    uint64_t now = ctl__now(c);
    if (ws->last_apply_ms && now - ws->last_apply_ms < j->period_ms) {
        ctl__requeue_after(c, j->key, j->period_ms - (now - ws->last_apply_ms));
        ctl__job_end(j, CTLREC_SKIPPED, "already rolled out within this reconcile period");
        return 1;
    }
    if (!ctl__gate_rollout(j, w))
        return 1;
    char at[32];
    ctl__rfc3339(ctl__wall_ms(c), at, sizeof at);
    opbuf p;
    opbuf_init(&p, sizeof j->patch_path);
    opbuf_release(&j->body); /* may hold the annotations body of a dry run */
    opbuf_init(&j->body, BODY_MAX);
    int rc = restart_body(w, at, &j->body);
    if (!rc)
        rc = ctl__write_path(c, &p, ctl__res_for_kind(j->kind), j->ns, j->name, NULL, 0, 0, 0);
    snprintf(j->patch_path, sizeof j->patch_path, "%s", opbuf_str(&p));
    opbuf_release(&p);
    if (!rc)
        rc = ctl__job_send(j, "PATCH", j->patch_path, "application/strategic-merge-patch+json",
                           &j->body, on_restart_done);
    if (rc)
        ctl__job_end(j, CTLREC_ERROR, "restart: %s", strerror(-rc));
    else
        c->st.writes++;
    return 1;
}
