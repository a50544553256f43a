/*
 * ctl rollout: the I/O around the rollout gate (controller/rollout.h, pure):
 * the gate's verdict over the caches (the namespace's PodDisruptionBudgets,
 * the slot holder), the one cluster-wide slot (taken before a write that
 * rolls pods, committed to the generation it produced, recovered from and
 * recorded in a policy's status.rollout, released when its rollout is over),
 * the pods against the recommendation for the webhook strategy's restart,
 * and that restart (a PATCH of the template annotation optipod.io/restartedAt).
 * I/O layer: calls ctl_common.c only; answers go back through j->resume.
 * Separate because every write that rolls pods, from either strategy, goes
 * through here.
 */
#include "controller/ctl_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apply/ssa.h"
#include "controller/rollout.h"
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

int ctl__gate(ctl *c, const char *key, const kproj_obj *w, rollout_out *out)
{
    pdb_ctx px = {.ns = w->ns ? w->ns : ""};
    ctl__in_namespace(c, CTL_INF_PDBS, px.ns, collect_pdb, &px);
    const kproj_obj *holder = NULL;
    enum kproj_kind hk;
    char hns[256], hname[256];
    if (c->slot.key[0] && ctl__parse_wkey(c->slot.key, &hk, hns, hname) == 0)
        holder = kcache_get(ctl__cache(c, ctl__inf_for_kind(hk)), hns, hname);
    rollout_in in = {.key = key,
                     .workload = w,
                     .slot = &c->slot,
                     .slot_workload = holder,
                     .pdbs = px.pdbs,
                     .npdbs = px.n,
                     .now_ms = ctl__wall_ms(c)};
    return rollout_gate(&in, out);
}

void ctl__slot_take(ctl *c, const char *key, const char *pkey)
{
    ctl__slot_clear(c);
    snprintf(c->slot.key, sizeof c->slot.key, "%s", key);
    snprintf(c->slot_policy, sizeof c->slot_policy, "%s", pkey);
}

void ctl__slot_commit(ctl *c, const char *key, int held, int64_t gen, const kproj_obj *w)
{
    if (!held || c->o.dry_run || strcmp(c->slot.key, key) != 0)
        return;
    c->slot.generation = gen ? gen : w ? w->generation + 1 : 1;
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
    j->req = NULL;
    ctl__answer(&j->restart, r);
    if (ctl__ok2xx(r))
        j->new_gen = ctl__answered_generation(r);
    j->resume(j);
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

void ctl__count_pods(ctl_job *j, const kproj_obj *w)
{
    ctl *c = j->c;
    differ_ctx x = {.c = c, .j = j, .w = w};
    ctl__workload_pods(c, j->kind, j->ns, j->name, count_differing, &x);
    snprintf(j->first_pod, sizeof j->first_pod, "%s", x.first);
    j->pods = (ctlstep_pods){.counted = 1,
                             .npods = x.npods,
                             .ndiffer = x.ndiffer,
                             .nuninjected = x.nuninjected,
                             .first = j->first_pod};
    const kproj_obj *nso = kcache_get(ctl__cache(c, CTL_INF_NAMESPACES), NULL, j->ns);
    const char *label = nso ? kproj_kv_get(nso->labels, nso->nlabels, "optipod.io/webhook") : NULL;
    if (nso && (!label || strcmp(label, "enabled") != 0))
        snprintf(j->hint, sizeof j->hint, "namespace %s is not labelled optipod.io/webhook=enabled",
                 j->ns);
    else
        snprintf(j->hint, sizeof j->hint,
                 "is the MutatingWebhookConfiguration reaching optipod? (with failurePolicy "
                 "Ignore an unreachable webhook admits pods unchanged)");
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

/* The webhook strategy's restart: a PATCH of the template annotation only. */
int ctl__send_restart(ctl_job *j, const kproj_obj *w)
{
    ctl *c = j->c;
    char at[32];
    ctl__rfc3339(ctl__wall_ms(c), at, sizeof at);
    opbuf p;
    opbuf_init(&p, sizeof j->patch_path);
    opbuf_release(&j->body); /* may hold the annotations body of a dry run */
    opbuf_init(&j->body, BODY_MAX);
    int rc = w ? restart_body(w, at, &j->body) : -ENOENT;
    if (!rc)
        rc = ctl__write_path(c, &p, ctl__res_for_kind(j->kind), j->ns, j->name, NULL, 0, 0, 0);
    snprintf(j->patch_path, sizeof j->patch_path, "%s", opbuf_str(&p));
    opbuf_release(&p);
    if (!rc)
        rc = ctl__job_send(j, "PATCH", j->patch_path, "application/strategic-merge-patch+json",
                           &j->body, on_restart_done);
    if (rc) {
        ctl__answer_unsent(&j->restart, "%s", strerror(-rc));
        return rc;
    }
    c->st.writes++;
    return 0;
}
