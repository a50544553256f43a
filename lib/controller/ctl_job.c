/*
 * ctl job: the executor of a reconcile. It owns a job from ctl__job_start()
 * to its end: it gathers the facts (the workload, the policies' decision
 * through ctlrec, usage, the resize plan, the pods, the rollout gate, and
 * what the requests answered), asks ctlstep_next() for the one next step,
 * applies that step's side effects (Events, the rollout slot, what to
 * remember of the workload) and performs it through the I/O files (ctl_usage,
 * ctl_ssa, ctl_rollout, ctl_resize). Their reply recorders only store what
 * came back in the job and call j->resume, which is job_run() here; only
 * job_run() ends a job. No rule lives here: every decision is ctlstep's.
 */
#include "controller/ctl_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply/ssa.h"
#include "util/log.h"
#include "util/optime.h"

#define MAX_POLICIES 256
#define MAX_STEPS    16 /* steps run without a request in between: a bound, never reached */

static void job_run(ctl_job *j);

/* ---- facts from the caches: policies, HPAs, OOM kills -----------------------------------------
 */

typedef struct ctl_hpa_view {
    char kind[64];
    char name[256];
    int cpu;
} ctl_hpa_view;

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

typedef struct hpa_ctx {
    const ctl_job *j;
    int cpu;
} hpa_ctx;

static int check_hpa(const kproj_obj *o, void *ud)
{
    hpa_ctx *x = ud;
    const ctl_hpa_view *h = o->ext;
    if (h && o->ns && strcmp(o->ns, x->j->ns) == 0 &&
        strcmp(h->kind, kproj_kind_name(x->j->kind)) == 0 && strcmp(h->name, x->j->name) == 0)
        x->cpu |= h->cpu;
    return 0;
}

static int64_t parse_time_s(const char *s)
{
    optime t;
    return s && optime_parse(s, 0, &t) == 0 ? t.sec : 0;
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

/* ---- the decision, recorded for the status ------------------------------------------------------
 */

static void record_decision(ctl_job *j, ctl_wstate *ws)
{
    ctl *c = j->c;
    const ctlrec_out *o = &j->out;
    char pkey[KCACHE_KEY_MAX] = "";
    if (o->winner)
        kproj_key(pkey, sizeof pkey, o->winner->namespace, o->winner->name);
    if (strcmp(ctl__str(ws->policy), pkey) != 0) {
        ctl__mark_policy_dirty(c, ws->policy);
        ctl__set_str(&ws->policy, pkey);
    }
    for (int i = 0; i < ws->nlosers; i++) {
        ctl__mark_policy_dirty(c, ws->loser_of[i]);
        free(ws->loser_of[i]);
    }
    free(ws->loser_of);
    ws->loser_of = NULL;
    ws->nlosers = 0;
    size_t nl = o->nlosers < 4 ? o->nlosers : 4;
    if (nl && (ws->loser_of = calloc(nl, sizeof *ws->loser_of)) != NULL) {
        for (size_t i = 0; i < nl; i++) {
            char lk[KCACHE_KEY_MAX];
            kproj_key(lk, sizeof lk, o->losers[i]->namespace, o->losers[i]->name);
            if ((ws->loser_of[ws->nlosers] = strdup(lk)) != NULL)
                ws->nlosers++;
        }
    }
    size_t nr = 0;
    for (size_t i = 0; i < o->ncontainers; i++)
        nr += o->containers[i].rec_cpu_req[0] || o->containers[i].rec_mem_req[0];
    nr = nr < STATUS_RECS ? nr : STATUS_RECS;
    free(ws->recs);
    ws->recs = nr ? calloc(nr, sizeof *ws->recs) : NULL;
    ws->nrecs = 0;
    for (size_t i = 0; ws->recs && i < o->ncontainers && (size_t)ws->nrecs < nr; i++) {
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
        r->samples = cc->samples;
    }
    int insufficient = o->outcome == CTLREC_SKIPPED && strstr(o->reason, "insufficient") != NULL;
    if (insufficient && !ws->insufficient) {
        kevents_ref ref;
        ctl__workload_ref(j, NULL, &ref);
        ctl__event(c, &ref, KEVENTS_NORMAL, "InsufficientData", "Recommend", "%s", o->reason);
    }
    ws->insufficient = insufficient;
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

/* A provider outage fails every workload's reconcile: said once per step of the policy's
 * backoff (with how many failures went unsaid), each reconcile's own line at -v 2. */
static void metrics_log(ctl *c, const char *pkey, int ok, const char *msg)
{
    ctl_pstate *ps = ctl__pstate(c, pkey, 1);
    if (!ps)
        return;
    uint64_t now = ctl__now(c);
    if (ok) {
        if (ps->metrics_log_ms)
            OPLOG_I("policy %s: metrics available again", pkey);
        opbackoff_reset(&ps->metrics_bo);
        ps->metrics_log_ms = 0;
        ps->metrics_quiet = 0;
        return;
    }
    if (ps->metrics_log_ms && now < ps->metrics_log_ms) {
        ps->metrics_quiet++;
        return;
    }
    uint64_t d = ctl__fail_backoff(&ps->metrics_bo, now);
    OPLOG_W("policy %s: metrics unavailable: %s (%u more failed reconciles since the last "
            "line; next line in %.0f s at the earliest)",
            pkey, msg ? msg : "", ps->metrics_quiet, (double)d / 1000.0);
    ps->metrics_quiet = 0;
    ps->metrics_log_ms = now + d;
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

static int is_annotations_path(const ctlrec_out *o)
{
    return o->mode == POL_MODE_RECOMMEND || o->winner->strategy == POL_STRATEGY_WEBHOOK;
}

static int restart_applies(const ctlrec_out *o)
{
    const pol_policy *p = o->winner;
    return o->mode == POL_MODE_AUTO && p->strategy == POL_STRATEGY_WEBHOOK &&
           p->rollout == POL_ROLLOUT_IMMEDIATE && p->allow_recreate && o->outcome != CTLREC_SKIPPED;
}

/* The winner, or no policy: what the no-policy path needs. */
static void matched(ctl_job *j, const kproj_obj *w, ctl_wstate *ws)
{
    ctl *c = j->c;
    const pol_policy *p = j->out.winner;
    j->rec_pkey[0] = 0;
    if (p)
        kproj_key(j->rec_pkey, sizeof j->rec_pkey, p->namespace, p->name);
    if (p && j->out.mode != POL_MODE_DISABLED) {
        kproj_key(j->pkey, sizeof j->pkey, p->namespace, p->name);
        j->period_ms = c->o.resync_ms ? c->o.resync_ms : (uint64_t)p->reconcile_ms;
        return;
    }
    record_decision(j, ws);
    ctl__set_str(&ws->conflict, NULL);
    ws->loop_stopped = 0;
    j->pkey[0] = 0;
    j->out.winner = NULL;
    if (j->out.release_annotations)
        ctl__annotations_body(j, w, 1);
}

static void match(ctl_job *j, const kproj_obj *w, ctl_wstate *ws)
{
    ctl *c = j->c;
    const pol_policy *pols[MAX_POLICIES];
    pol_ctx px = {pols, 0};
    ctl__policies_for(c, j->ns, collect_policy, &px);
    ctlrec_input in = {.workload = w,
                       .policies = pols,
                       .npolicies = px.n,
                       .ns = kcache_get(ctl__cache(c, CTL_INF_NAMESPACES), NULL, j->ns)};
    j->matched = 1;
    ctlrec_match(&in, &j->out);
    matched(j, w, ws);
}

/* Decide with usage, once it is fresh (or no provider runs), and gather the
 * facts the decision's path needs. */
static int decide(ctl_job *j, const kproj_obj *w, ctl_wstate *ws)
{
    ctl *c = j->c;
    const pol_policy *pols[MAX_POLICIES];
    pol_ctx px = {pols, 0};
    ctl__policies_for(c, j->ns, collect_policy, &px);
    hpa_ctx hx = {j, 0};
    ctl__hpas_for(c, j->kind, j->ns, j->name, check_hpa, &hx);
    oom_ctx ox = {.c = c, .j = j};
    ctl__workload_pods(c, j->kind, j->ns, j->name, collect_oom, &ox);
    ctlrec_input in = {.workload = w,
                       .policies = pols,
                       .npolicies = px.n,
                       .ns = kcache_get(ctl__cache(c, CTL_INF_NAMESPACES), NULL, j->ns),
                       .hpa_cpu = hx.cpu,
                       .ooms = ox.ooms,
                       .nooms = ox.n,
                       .now_s = ctl__wall_ms(c) / 1000};
    j->usage = CTLSTEP_USAGE_NONE;
    char why[256] = ""; /* lives until ctlrec_decide() has read in.metrics_msg */
    if (c->prov || c->prov_ms) {
        const pol_policy *p = j->out.winner;
        mprov *pv = provider_for(c, p, why, sizeof why);
        ctl_usage *u = NULL;
        if (pv) {
            u = ctl__usage_get(c, pv, j->ns, p->percentile / 100.0, (uint64_t)p->window_ms / 1000);
            if (!u)
                return -ENOMEM;
            uint64_t ttl = c->o.usage_ttl_ms ? c->o.usage_ttl_ms : 60000;
            if (u->state != 2 || ctl__now(c) - u->fetched_ms > ttl) {
                j->usage = CTLSTEP_USAGE_STALE;
                j->u = u;
                return 0;
            }
        }
        j->usage = CTLSTEP_USAGE_READY;
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
        metrics_log(c, j->pkey, !in.metrics_error, in.metrics_msg ? in.metrics_msg : "");
        j->metrics_error = in.metrics_error;
    }
    ctlrec_decide(&in, &j->out);
    j->decided = 1;
    matched(j, w, ws);
    if (!j->out.winner)
        return 0;
    record_decision(j, ws);
    if (j->out.outcome == CTLREC_ERROR)
        return 0;
    if (is_annotations_path(&j->out)) {
        j->ann_differ = ctlrec_annotations_differ(&j->out, w);
        if (j->ann_differ)
            ctl__annotations_body(j, w, 0);
    }
    if (j->out.mode == POL_MODE_AUTO && j->out.winner->allow_in_place_resize)
        ctl__resize_facts(j);
    if (restart_applies(&j->out))
        ctl__count_pods(j, w);
    return 0;
}

/* ---- the facts for the step -------------------------------------------------------------------
 */

static const ctlstep_reply *answer(const ctl_answer *a)
{
    return &a->r;
}

/* Does the next step depend on the rollout gate? Only before the write that
 * rolls pods is sent, for a policy under rolloutStrategy immediate. */
static int gate_needed(const ctl_job *j, const kproj_obj *w)
{
    const ctlrec_out *o = &j->out;
    if (!j->decided || !o->winner || o->winner->rollout != POL_ROLLOUT_IMMEDIATE ||
        !rollout_rolls_pods(w) || j->live_reply.r.done || j->restart.r.done)
        return 0;
    return is_annotations_path(o) ? restart_applies(o) && j->pods.ndiffer > 0
                                  : o->outcome == CTLREC_APPLY;
}

/* Gather the facts; -ENOMEM when the workload's memory cannot be kept. */
static int gather(ctl_job *j, ctl_facts *f, ctlstep_mem *m, ctl_wstate **wsp)
{
    ctl *c = j->c;
    memset(f, 0, sizeof *f);
    memset(m, 0, sizeof *m);
    const kproj_obj *w = kcache_get(ctl__cache(c, ctl__inf_for_kind(j->kind)), j->ns, j->name);
    f->key = j->key;
    f->workload = w;
    f->dry_run = c->o.dry_run;
    f->now_ms = ctl__now(c);
    f->wall_ms = ctl__wall_ms(c);
    f->min_write_ms = c->o.min_write_ms;
    f->mem = m;
    *wsp = NULL;
    if (!w)
        return 0;
    ctl_wstate *ws = ctl__wstate(c, j->key, 1);
    if (!ws)
        return -ENOMEM;
    *wsp = ws;
    if (!j->matched) {
        match(j, w, ws);
    } else if (j->pkey[0]) {
        /* the cache may have replaced the winner while a request was out */
        j->out.winner = ctl__policy_of(kcache_get_key(ctl__cache(c, CTL_INF_POLICIES), j->pkey));
        j->out.nlosers = 0;
        f->policy_gone = j->out.winner == NULL;
    }
    if (j->out.winner && !j->out.released && !j->decided && decide(j, w, ws) != 0)
        return -ENOMEM;

    m->written = ws->written;
    m->nwritten = ws->nwritten;
    m->reclaim_counted = ws->reclaim_counted;
    m->last_apply_ms = ws->last_apply_ms;
    m->last_write_ms = ws->last_write_ms;
    m->duplicate_until_ms = ws->duplicate_until_ms;
    m->released_rv = ws->released_rv;
    m->ann_base_rv = ws->ann_base_rv;
    m->ann_hash = ws->ann_hash;
    m->restart_gen = ws->restart_gen;
    m->uninjected_warned = ws->uninjected_warned;
    m->loop_stopped = ws->loop_stopped;
    m->loop = opmap_get(&c->tracker.states, j->key);

    f->rec = &j->out;
    f->decided = j->decided;
    f->pkey = j->pkey;
    f->period_ms = j->period_ms;
    f->usage = j->usage;
    f->ann_differ = j->ann_differ;
    f->ann_hash = j->ann_hash;
    f->ann = *answer(&j->ann);
    f->rz = j->rz;
    f->pods = j->pods;
    f->webhook_hint = j->hint;
    f->restart = *answer(&j->restart);
    if (gate_needed(j, w) && ctl__gate(c, j->key, w, &j->gate) == 0)
        f->gate = &j->gate;
    f->live_reply = *answer(&j->live_reply);
    f->live = (ctlstep_live){.obj = j->live,
                             .unreadable = j->unreadable,
                             .changes = j->ch,
                             .nchanges = j->nch,
                             .changed = j->changed,
                             .owners = j->owners,
                             .ours = j->ours,
                             .nours = j->nours};
    f->loop_cfg = c->tracker.cfg;
    f->dry = *answer(&j->dry);
    f->cs = j->cs;
    f->gitops_managers = c->o.gitops_managers;
    f->write = *answer(&j->write);
    return 0;
}

/* ---- a step's side effects ----------------------------------------------------------------------
 */

static void emit(ctl_job *j, const struct ctlstep_event *e, const kproj_obj *w)
{
    ctl *c = j->c;
    kevents_ref ref;
    char ns[256], name[256];
    if (e->about_holder) {
        enum kproj_kind k = KPROJ_UNKNOWN;
        if (ctl__parse_wkey(c->slot.key, &k, ns, name) != 0)
            ns[0] = name[0] = 0;
        const kproj_obj *h = kcache_get(ctl__cache(c, ctl__inf_for_kind(k)), ns, name);
        ref = (kevents_ref){ssa_api_version(k), kproj_kind_name(k), ns, name, h ? h->uid : NULL};
    } else {
        ctl__workload_ref(j, e->with_uid && w ? w->uid : NULL, &ref);
    }
    ctl__event(c, &ref, e->type, e->reason, e->action, "%s", e->note);
}

/* What optipod wrote, one entry per changed field (the next GET's reclaim
 * and DuplicateController checks read it). */
static void remember_written(ctl_job *j, ctl_wstate *ws)
{
    ctlstep_written *wr = j->nch ? calloc(j->nch, sizeof *wr) : NULL;
    if (j->nch && !wr)
        return; /* forgets the last write: no reclaim counted for it */
    for (size_t i = 0; i < j->nch; i++) {
        snprintf(wr[i].container, sizeof wr[i].container, "%s", j->ch[i].container);
        wr[i].init = j->ch[i].init;
        snprintf(wr[i].field, sizeof wr[i].field, "%s", j->ch[i].field);
        snprintf(wr[i].value, sizeof wr[i].value, "%s", j->ch[i].to ? j->ch[i].to : "");
    }
    free(ws->written);
    ws->written = wr;
    ws->nwritten = j->nch;
}

/* DuplicateController: what optipod's name holds now replaces our record of
 * what we wrote, so only a further write by the other process is seen again. */
static void adopt_ours(ctl_job *j, ctl_wstate *ws)
{
    for (size_t i = 0; i < j->nours; i++)
        for (size_t k = 0; k < ws->nwritten; k++)
            if (ws->written[k].init == j->ours[i].init &&
                strcmp(ws->written[k].container, j->ours[i].container) == 0 &&
                strcmp(ws->written[k].field, j->ours[i].field) == 0)
                ws->written[k] = j->ours[i];
}

static void effects(ctl_job *j, const ctl_step *s, const kproj_obj *w, ctl_wstate *ws)
{
    ctl *c = j->c;
    for (int i = 0; i < s->nevents; i++)
        emit(j, &s->events[i], w);
    if (s->fx & CTLSTEP_FX_SLOT_FREE) {
        if (j->gate.release == ROLLOUT_STUCK)
            OPLOG_W("rollout: %s", j->gate.stuck);
        else
            OPLOG_V(2, "rollout: %s %s", c->slot.key, rollout_release_name(j->gate.release));
        ctl__slot_clear(c);
        ctl__wake_deferred(c, NULL, j->key);
    }
    if (s->fx & CTLSTEP_FX_SLOT_TAKE) {
        ctl__slot_take(c, j->key, j->pkey);
        j->slot_held = 1;
    }
    if (s->fx & (CTLSTEP_FX_WRITTEN | CTLSTEP_FX_RESTARTED))
        ctl__slot_commit(c, j->key, j->slot_held, j->new_gen, w);
    if (!ws)
        return;
    if (s->fx & CTLSTEP_FX_REMEMBER_ANN) {
        ws->ann_hash = j->ann_hash;
        snprintf(ws->ann_base_rv, sizeof ws->ann_base_rv, "%s", w && w->rv ? w->rv : "");
        snprintf(j->ann_rv, sizeof j->ann_rv, "%s", w && w->rv ? w->rv : "");
    }
    if (s->fx & CTLSTEP_FX_RELEASED)
        snprintf(ws->released_rv, sizeof ws->released_rv, "%s", j->ann_rv);
    if (s->fx & CTLSTEP_FX_WRITTEN) {
        remember_written(j, ws);
        ws->reclaim_counted = 0;
        ws->last_apply_ms = ctl__now(c);
    }
    if (s->fx & CTLSTEP_FX_WROTE)
        ws->last_write_ms = ctl__now_fresh(c);
    if (s->fx & CTLSTEP_FX_DUPLICATE) {
        adopt_ours(j, ws);
        ws->duplicate_until_ms = ctl__now(c) + j->period_ms;
        c->st.duplicates++;
    }
    if (s->fx & CTLSTEP_FX_DUPLICATE_OVER)
        ws->duplicate_until_ms = 0;
    if (s->fx & CTLSTEP_FX_RESTARTED) {
        ws->last_apply_ms = ctl__now(c);
        if (strcmp(c->slot.key, j->key) == 0 && c->slot.generation > 0)
            ws->restart_gen = c->slot.generation; /* did it take? asked at the next restart */
    }
    if (s->fx & CTLSTEP_FX_WARNED)
        ws->uninjected_warned = ws->restart_gen;
    if (s->fx & CTLSTEP_FX_RECLAIM_COUNTED)
        ws->reclaim_counted = 1;
    if (s->fx & CTLSTEP_FX_LOOP) {
        conflict_loop *st = opmap_get(&c->tracker.states, j->key);
        if (!st && (st = malloc(sizeof *st)) != NULL &&
            opmap_put(&c->tracker.states, j->key, st, NULL) != 0) {
            free(st);
            st = NULL;
        }
        if (st)
            *st = s->loop;
        ws->loop_stopped = s->loop_stopped;
    }
    if (s->fx & CTLSTEP_FX_LOOP_ENTERED)
        c->st.loops_stopped++;
    if (s->fx & CTLSTEP_FX_CONFLICT)
        ctl__set_str(&ws->conflict, s->conflict);
    if (s->fx & CTLSTEP_FX_TAKEN_OVER)
        ws->taken_over = s->taken_over;
}

/* ---- the end of a job -------------------------------------------------------------------------
 */

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
    ctlrec_out_release(&j->out);
    kproj_free(j->live);
    mfields_release(&j->mf);
    free(j->ch);
    free(j->owners);
    free(j->ours);
    free(j->cs);
    ctl__resize_job_free(j);
    free(j);
}

void ctl__jobs_cancel(ctl *c)
{
    while (c->jobs) {
        ctl_job *j = c->jobs;
        if (j->req)
            ophttp_cancel(j->req);
        job_free(j);
    }
}

static void job_end(ctl_job *j, const ctl_step *s)
{
    ctl *c = j->c;
    ctl_wstate *ws = ctl__wstate(c, j->key, 1);
    enum ctlrec_outcome oc = s->outcome;
    if (j->slot_held && strcmp(c->slot.key, j->key) == 0 && c->slot.generation == 0) {
        /* reserved for a write that did not roll anything: free it */
        ctl__slot_clear(c);
        ctl__wake_deferred(c, NULL, j->key);
    }
    if (ws) {
        ws->deferred = (s->fx & CTLSTEP_FX_DEFERRED) != 0;
        ws->outcome = oc;
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
    ctl__metrics_end(j, ws, oc);
    if (oc == CTLREC_ERROR && !j->metrics_error) /* metrics errors: metrics_log */
        OPLOG_W("reconcile %s: error: %s", j->key, s->reason);
    else if (oc == CTLREC_ERROR)
        OPLOG_V(2, "reconcile %s: error: %s", j->key, s->reason);
    else
        OPLOG_V(2, "reconcile %s: %s: %s", j->key, ctlrec_outcome_name(oc), s->reason);
    /* the record: written once, when its content changed */
    ctl__record_sync(j, oc, (s->fx & CTLSTEP_FX_WRITTEN) != 0);
    kqueue_done(c->q, j->key);
    if (oc == CTLREC_ERROR)
        kqueue_add_rate_limited(c->q, j->key, ctl__now(c));
    else
        kqueue_forget(c->q, j->key);
    if (s->requeue_ms != CTLSTEP_NO_REQUEUE)
        ctl__requeue_after(c, j->key, s->requeue_ms);
    ctl__wstate_forget_idle(c, j->key);
    c->running--;
    job_free(j);
    ctl__rearm(c); /* the next key, from the loop */
}

static void end_now(ctl_job *j, enum ctlrec_outcome oc, const char *reason)
{
    ctl_step s = {.kind = CTLSTEP_END, .outcome = oc, .requeue_ms = CTLSTEP_NO_REQUEUE};
    snprintf(s.reason, sizeof s.reason, "%s", reason);
    job_end(j, &s);
}

/* ---- the executor -------------------------------------------------------------------------------
 */

static void job_run(ctl_job *j)
{
    ctl *c = j->c;
    for (int n = 0; n < MAX_STEPS; n++) {
        ctl_facts f;
        ctlstep_mem m;
        ctl_wstate *ws;
        if (gather(j, &f, &m, &ws) != 0) {
            end_now(j, CTLREC_ERROR, "out of memory");
            return;
        }
        ctl_step s;
        ctlstep_next(&f, &s);
        OPLOG_V(3, "reconcile %s: %s", j->key, ctlstep_kind_name(s.kind));
        effects(j, &s, f.workload, ws);
        int rc = 0;
        switch (s.kind) {
        case CTLSTEP_END:
            job_end(j, &s);
            return;
        case CTLSTEP_FETCH_USAGE: {
            ctl_usage *u = j->u;
            j->next_wait = u->waiting;
            u->waiting = j;
            if (u->state != 1)
                ctl__usage_fetch(c, u); /* may answer at once: j may be gone now */
            return;
        }
        case CTLSTEP_RESIZE:
            if (ctl__send_resize(j) == 0)
                return;
            j->rz.mode_ok = 0; /* could not send: the strategy follows */
            j->rz.pod = NULL;
            continue;
        case CTLSTEP_ANNOTATE:
            rc = ctl__send_annotations(j, s.release);
            break;
        case CTLSTEP_READ_LIVE:
            rc = ctl__read_live(j);
            break;
        case CTLSTEP_DRY_RUN:
            rc = ctl__send_dry_run(j);
            break;
        case CTLSTEP_WRITE:
            rc = ctl__send_write(j, s.force);
            break;
        case CTLSTEP_RESTART:
            rc = ctl__send_restart(j, f.workload);
            break;
        }
        if (rc == 0)
            return; /* a request is out: its recorder resumes the job */
        /* not sent: the sender recorded why, the step ends the job */
    }
    end_now(j, CTLREC_ERROR, "no step left to take");
}

void ctl__job_start(ctl *c, const char *key)
{
    ctl_job *j = calloc(1, sizeof *j);
    if (!j) {
        kqueue_done(c->q, key);
        kqueue_add_rate_limited(c->q, key, ctl__now(c));
        return;
    }
    j->c = c;
    j->started_ns = uv_hrtime();
    j->resume = job_run;
    snprintf(j->key, sizeof j->key, "%s", key);
    opbuf_init(&j->body, BODY_MAX);
    mfields_init(&j->mf);
    j->next = c->jobs;
    if (c->jobs)
        c->jobs->prev = j;
    c->jobs = j;
    c->running++;
    if (ctl__parse_wkey(key, &j->kind, j->ns, j->name) != 0) {
        end_now(j, CTLREC_SKIPPED, "not a workload key");
        return;
    }
    job_run(j);
}
