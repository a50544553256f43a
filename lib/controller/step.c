/*
 * ctlstep: the next step of a reconcile (step.h). Read top-down: ctlstep_next
 * picks the path (no policy, in-place resize, annotations, ssa), each path
 * first looks at the latest answer it got, then at the rules that lead to
 * its next request.
 */
#include "controller/step.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "apply/remedy.h"

const char *ctlstep_kind_name(enum ctlstep_kind k)
{
    switch (k) {
    case CTLSTEP_END:
        return "end";
    case CTLSTEP_FETCH_USAGE:
        return "fetch-usage";
    case CTLSTEP_RESIZE:
        return "resize";
    case CTLSTEP_ANNOTATE:
        return "annotate";
    case CTLSTEP_READ_LIVE:
        return "read-live";
    case CTLSTEP_DRY_RUN:
        return "dry-run";
    case CTLSTEP_WRITE:
        return "write";
    case CTLSTEP_RESTART:
        return "restart";
    }
    return "?";
}

/* ---- building a step --------------------------------------------------------------------------
 */

__attribute__((format(printf, 3, 4))) static void end(ctl_step *s, enum ctlrec_outcome oc,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s->kind = CTLSTEP_END;
    s->outcome = oc;
    vsnprintf(s->reason, sizeof s->reason, fmt, ap);
    va_end(ap);
}

static void go(ctl_step *s, enum ctlstep_kind k)
{
    s->kind = k;
}

__attribute__((format(printf, 5, 6))) static void
event(ctl_step *s, kevents_type type, const char *reason, const char *action, const char *fmt, ...)
{
    if (s->nevents == CTLSTEP_EVENTS)
        return;
    struct ctlstep_event *e = &s->events[s->nevents++];
    e->type = type;
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    snprintf(e->action, sizeof e->action, "%s", action);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->note, sizeof e->note, fmt, ap);
    va_end(ap);
}

static int ok2xx(const ctlstep_reply *r)
{
    return r->sent && r->http_status >= 200 && r->http_status < 300;
}

/* A failed request ends the job in error (retried with backoff). */
static void failed(ctl_step *s, const char *what, const ctlstep_reply *r)
{
    const char *msg = r->msg ? r->msg : "no response";
    if (!r->sent)
        end(s, CTLREC_ERROR, "%s: %s", what, msg);
    else
        end(s, CTLREC_ERROR, "%s: HTTP %ld: %s", what, r->http_status, msg);
}

/* ---- rules shared by the paths ----------------------------------------------------------------
 */

/* At most one rollout per reconcile period: 1 = the job ends (requeued for
 * the period's end). */
static int once_per_period(const ctl_facts *f, ctl_step *s)
{
    uint64_t last = f->mem->last_apply_ms;
    if (!last || f->now_ms - last >= f->period_ms)
        return 0;
    end(s, CTLREC_SKIPPED, "already rolled out within this reconcile period");
    s->requeue_ms = f->period_ms - (f->now_ms - last);
    return 1;
}

/* No workload is written more than once per --min-write-interval, whatever
 * the cause (step.h): 1 = the job ends, requeued when the interval ends. */
static int min_write_interval(const ctl_facts *f, ctl_step *s, const char *what)
{
    uint64_t last = f->mem->last_write_ms;
    if (!f->min_write_ms || !last || f->now_ms - last >= f->min_write_ms)
        return 0;
    uint64_t left = f->min_write_ms - (f->now_ms - last);
    end(s, CTLREC_SKIPPED,
        "%s waits %llu ms: written %llu ms ago, at most once per --min-write-interval (%llu ms)",
        what, (unsigned long long)left, (unsigned long long)(f->now_ms - last),
        (unsigned long long)f->min_write_ms);
    s->requeue_ms = left;
    return 1;
}

/* DuplicateController: another process writes as field manager optipod, so
 * the workload is left alone for the reconcile period after it was seen.
 * 1 = the job ends (requeued when the period ends); once it has ended the
 * conflict it recorded is cleared and the workload is evaluated again. */
static int left_alone(const ctl_facts *f, ctl_step *s)
{
    uint64_t until = f->mem->duplicate_until_ms;
    if (!until)
        return 0;
    if (f->now_ms >= until) {
        s->fx |= CTLSTEP_FX_DUPLICATE_OVER;
        if (!f->mem->loop_stopped)
            s->fx |= CTLSTEP_FX_CONFLICT; /* "" clears it */
        return 0;
    }
    end(s, CTLREC_CONFLICT,
        "DuplicateController: another process writes as field manager optipod; left alone "
        "until the reconcile period ends");
    s->requeue_ms = until - f->now_ms;
    return 1;
}

/* The rollout gate before a write that rolls pods: 1 = the job ends
 * (deferred, asked again after the gate's retry); 0 = go, with the slot. */
static int gate(const ctl_facts *f, ctl_step *s)
{
    const rollout_out *g = f->gate;
    if (!g) {
        end(s, CTLREC_ERROR, "rollout gate: bad input");
        return 1;
    }
    if (g->release != ROLLOUT_KEEP) {
        s->fx |= CTLSTEP_FX_SLOT_FREE;
        if (g->release == ROLLOUT_STUCK) {
            event(s, KEVENTS_WARNING, "RolloutStuck", "Rollout", "%s", g->stuck);
            s->events[s->nevents - 1].about_holder = 1;
        }
    }
    if (g->verdict == ROLLOUT_WAIT) {
        event(s, KEVENTS_NORMAL, "RolloutDeferred", "Rollout", "%s", g->reason);
        s->events[s->nevents - 1].with_uid = 1;
        s->fx |= CTLSTEP_FX_DEFERRED;
        end(s, CTLREC_SKIPPED, "rollout deferred: %s", g->reason);
        s->requeue_ms = g->retry_ms;
        return 1;
    }
    s->fx |= CTLSTEP_FX_SLOT_TAKE;
    return 0;
}

/* The annotation apply, unless the same body went over the same version
 * (the cache has not seen our last write yet: its watch event queues the
 * workload again). */
static void annotate(const ctl_facts *f, ctl_step *s, int release)
{
    const kproj_obj *w = f->workload;
    if (w->rv && f->mem->ann_hash == f->ann_hash && f->mem->ann_base_rv &&
        strcmp(f->mem->ann_base_rv, w->rv) == 0) {
        end(s, CTLREC_UNCHANGED, "annotations written, waiting for the watch to catch up");
        return;
    }
    if (min_write_interval(f, s, release ? "the annotations' release" : "the annotations apply"))
        return;
    go(s, CTLSTEP_ANNOTATE);
    s->release = release;
    s->fx |= CTLSTEP_FX_REMEMBER_ANN;
}

/* ---- no policy, or a Disabled one: release our annotations ------------------------------------
 */

static void no_policy(const ctl_facts *f, ctl_step *s)
{
    const ctlrec_out *r = f->rec;
    const kproj_obj *w = f->workload;
    if (f->ann.done) {
        if (!ok2xx(&f->ann)) {
            failed(s, "annotations apply", &f->ann);
            return;
        }
        s->fx |= CTLSTEP_FX_RELEASED | (f->dry_run ? 0 : CTLSTEP_FX_WROTE);
        end(s, CTLREC_SKIPPED, "%s; optipod.io/ annotations removed%s", r->reason,
            f->dry_run ? " (dry run)" : "");
        return;
    }
    if (r->release_annotations &&
        (!w->rv || !f->mem->released_rv || strcmp(f->mem->released_rv, w->rv) != 0)) {
        annotate(f, s, 1);
        return;
    }
    end(s, CTLREC_SKIPPED, "%s", r->reason);
}

/* ---- in-place resize, before the strategy -----------------------------------------------------
 */

/* 1 = s is set; 0 = the strategy follows. */
static int resize(const ctl_facts *f, ctl_step *s)
{
    const ctlstep_resize *z = &f->rz;
    const pol_policy *p = f->rec->winner;
    if (z->answered) {
        switch (z->action) {
        case RESIZE_ACT_WAIT:
            if (f->dry_run) {
                /* nothing changes on a dry run: tell, and go on to the strategy */
                event(s, KEVENTS_NORMAL, "ResourcesResized", "Resize",
                      "would resize pod %s in place: %s (dry run)", z->pod, z->what);
                end(s, CTLREC_APPLY, "dry run: would resize pod %s in place", z->pod);
                s->requeue_ms = 0;
                return 1;
            }
            /* the pod's watch events step the track; its deadline comes anyway */
            s->fx |= CTLSTEP_FX_WROTE;
            end(s, CTLREC_APPLY, "in-place resize of pod %s accepted (%s); following it", z->pod,
                z->what);
            s->requeue_ms = z->follow_due_ms;
            return 1;
        case RESIZE_ACT_UNSUPPORTED:
            end(s, CTLREC_SKIPPED,
                "in-place resize not supported by the server; the strategy follows");
            s->requeue_ms = 0;
            return 1;
        case RESIZE_ACT_GONE:
            end(s, CTLREC_SKIPPED, "pod %s went away before its resize: %s", z->pod, z->detail);
            s->requeue_ms = 0;
            return 1;
        case RESIZE_ACT_FALLBACK:
            end(s, CTLREC_SKIPPED, "in-place resize of pod %s refused: %s", z->pod, z->detail);
            s->requeue_ms = 0;
            return 1;
        default: /* RETRY: plan and send again after the backoff */
            end(s, CTLREC_ERROR, "in-place resize of pod %s: %s", z->pod, z->detail);
            return 1;
        }
    }
    if (z->following) {
        end(s, CTLREC_SKIPPED, "waiting for pod %s's resize (%s)", z->follow_pod, z->follow_state);
        s->requeue_ms = z->follow_due_ms;
        return 1;
    }
    if (!z->mode_ok)
        return 0;
    if (z->pod) {
        if (z->probe_busy) {
            /* whether the server allows it is learnt from the first answer: one request */
            end(s, CTLREC_SKIPPED,
                "waiting for the API server's first answer to an in-place resize");
            s->requeue_ms = CTLSTEP_PROBE_MS;
            return 1;
        }
        if (min_write_interval(f, s, "the in-place resize"))
            return 1;
        go(s, CTLSTEP_RESIZE);
        return 1;
    }
    if (z->npods > 0 && z->ndone == z->npods && p->strategy == POL_STRATEGY_SSA &&
        p->rollout == POL_ROLLOUT_ON_NEXT_RESTART) {
        /* The pods run with the values; a template write now would roll
         * them out, which onNextRestart never does. */
        end(s, CTLREC_UNCHANGED,
            "running pods resized in place; the pod template is left to the next rollout");
        return 1;
    }
    return 0;
}

/* ---- the webhook strategy's restart -------------------------------------------------------------
 */

static void pods_differ(const ctl_facts *f, char *buf, size_t cap)
{
    snprintf(buf, cap, "%d of %d pods (%s%s) run other values than the recommendation",
             f->pods.ndiffer, f->pods.npods, f->pods.first ? f->pods.first : "",
             f->pods.ndiffer > 1 ? ", ..." : "");
}

/* Our last restart rolled out (the spec unchanged since), yet its pods run
 * the template's requests: the webhook did not inject them, and restarting
 * again would only churn pods every period. */
static int restart_did_not_take(const ctl_facts *f, ctl_step *s)
{
    const kproj_obj *w = f->workload;
    const ctlstep_mem *m = f->mem;
    if (!m->restart_gen || m->restart_gen != w->generation || !f->pods.nuninjected ||
        !rollout_complete(w, m->restart_gen, NULL, 0))
        return 0;
    const char *hint = f->webhook_hint ? f->webhook_hint : "";
    if (m->uninjected_warned != m->restart_gen) {
        char kind[32];
        snprintf(kind, sizeof kind, "%s", kproj_kind_name(w->kind));
        for (char *p = kind; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        s->fx |= CTLSTEP_FX_WARNED;
        event(s, KEVENTS_WARNING, "WebhookNotInjecting", "Rollout",
              "%d of %d pods, created by optipod's restart (generation %lld), run the pod "
              "template's requests: the webhook did not inject the recommendation; %s. "
              "optipod will not restart %s/%s again until its pods carry the "
              "recommendation or its spec changes; once fixed: kubectl -n %s rollout "
              "restart %s/%s",
              f->pods.nuninjected, f->pods.npods, (long long)m->restart_gen, hint, kind, w->name,
              w->ns ? w->ns : "", kind, w->name);
        s->events[s->nevents - 1].with_uid = 1;
    }
    end(s, CTLREC_SKIPPED,
        "the webhook did not inject the pods of optipod's last restart (%s); not "
        "restarting again",
        hint);
    return 1;
}

/* Webhook strategy, immediate + allowRecreate, annotations current: replace
 * the pods that still run other values. 1 = s is set; 0 = nothing to restart. */
static int restart(const ctl_facts *f, ctl_step *s)
{
    if (f->pods.ndiffer == 0)
        return 0;
    if (!rollout_rolls_pods(f->workload)) {
        char d[512];
        pods_differ(f, d, sizeof d);
        end(s, CTLREC_SKIPPED,
            "%s; updateStrategy OnDelete: the owner chose manual updates, optipod restarts "
            "nothing",
            d);
        return 1;
    }
    if (restart_did_not_take(f, s) || min_write_interval(f, s, "the restart") ||
        once_per_period(f, s) || gate(f, s))
        return 1;
    go(s, CTLSTEP_RESTART);
    return 1;
}

static void restart_answered(const ctl_facts *f, ctl_step *s)
{
    const ctlstep_reply *r = &f->restart;
    if (r->sent && r->http_status == 409) {
        end(s, CTLREC_ERROR, "restart: the workload changed meanwhile (%s); retrying",
            r->msg ? r->msg : "");
        return;
    }
    if (!ok2xx(r)) {
        failed(s, "restart", r);
        return;
    }
    if (!f->dry_run)
        s->fx |= CTLSTEP_FX_RESTARTED | CTLSTEP_FX_WROTE;
    char d[512];
    pods_differ(f, d, sizeof d);
    event(s, KEVENTS_NORMAL, "RolloutTriggered", "Rollout",
          "%s a rollout through the workload: %s (policy %s)%s",
          f->dry_run ? "would trigger" : "triggered", d, f->pkey, f->dry_run ? " (dry run)" : "");
    end(s, CTLREC_APPLY, "%s: %s%s", f->dry_run ? "dry run: would roll out" : "rolled out", d,
        f->dry_run ? " (dry run)" : "");
}

/* ---- Recommend, and the webhook strategy: the annotations -------------------------------------
 */

static void annotations(const ctl_facts *f, ctl_step *s)
{
    const ctlrec_out *r = f->rec;
    const pol_policy *p = r->winner;
    int restarts = r->mode == POL_MODE_AUTO && p->strategy == POL_STRATEGY_WEBHOOK &&
                   p->rollout == POL_ROLLOUT_IMMEDIATE && p->allow_recreate &&
                   r->outcome != CTLREC_SKIPPED;
    if (f->restart.done) {
        restart_answered(f, s);
        return;
    }
    if (f->ann.done) {
        if (!ok2xx(&f->ann)) {
            failed(s, "annotations apply", &f->ann);
            return;
        }
        if (!f->dry_run)
            s->fx |= CTLSTEP_FX_WROTE;
        event(s, KEVENTS_NORMAL, "RecommendationUpdated", "Recommend",
              "recommendation published to optipod.io/ annotations by policy %s%s", f->pkey,
              f->dry_run ? " (dry run)" : "");
        /* A dry run never sees its annotations land: show the restart that would follow now. */
        if (f->dry_run && restarts && restart(f, s))
            return;
        end(s, CTLREC_APPLY, "recommendation published to annotations%s",
            f->dry_run ? " (dry run)" : "");
        return;
    }
    if (f->ann_differ) {
        annotate(f, s, 0);
        return;
    }
    if (restarts && restart(f, s))
        return;
    if (r->outcome == CTLREC_APPLY)
        end(s, CTLREC_UNCHANGED, "recommendation already published to annotations");
    else
        end(s, r->outcome, "%s", r->reason);
}

/* ---- the ssa strategy --------------------------------------------------------------------------
 */

static void loop_note(const ctl_facts *f, const char *reclaimer, char *note, size_t cap)
{
    remedy_field fields[16];
    size_t nf = 0;
    for (size_t i = 0; i < f->live.nchanges && nf < 16; i++)
        fields[nf++] = (remedy_field){f->live.changes[i].container, f->live.changes[i].init,
                                      f->live.changes[i].field};
    remedy_request rq = {
        .live = f->live.obj, .reclaimer = reclaimer, .fields = fields, .nfields = nf};
    if (remedy_note(remedy_tool_for_manager(reclaimer), &rq, note, cap) < 0)
        snprintf(note, cap,
                 "%s keeps taking back the resources optipod sets on %s/%s; exclude them from "
                 "its sync or set the policy to Recommend",
                 reclaimer, f->workload->ns ? f->workload->ns : "", f->workload->name);
}

/* The value optipod last wrote for the change's field, or NULL. */
static const char *written_value(const ctlstep_mem *m, const ssa_change *ch)
{
    for (size_t i = 0; i < m->nwritten; i++) {
        const ctlstep_written *w = &m->written[i];
        if (w->init == ch->init && strcmp(w->container, ch->container) == 0 &&
            strcmp(w->field, ch->field) == 0)
            return w->value;
    }
    return NULL;
}

/* A take-back: a value optipod wrote was replaced, and another manager owns
 * the field now. That manager, or NULL. */
static const char *taken_back_by(const ctl_facts *f)
{
    for (size_t i = 0; f->live.owners && i < f->live.nchanges; i++) {
        const ssa_change *ch = &f->live.changes[i];
        const char *ours = written_value(f->mem, ch);
        if (ours && (!ch->from || strcmp(ch->from, ours) != 0) && f->live.owners[i])
            return f->live.owners[i];
    }
    return NULL;
}

/* A value optipod last wrote that the live object holds under optipod's own
 * manager name, but with another value: a write this process did not make
 * (a take-back by anyone else moves the field to that manager). The field
 * as it is live now, with what we wrote in *wrote; NULL none. */
static const ctlstep_written *rewritten_as_optipod(const ctl_facts *f, const char **wrote)
{
    for (size_t i = 0; i < f->live.nours; i++) {
        const ctlstep_written *o = &f->live.ours[i];
        for (size_t k = 0; k < f->mem->nwritten; k++) {
            const ctlstep_written *w = &f->mem->written[k];
            if (w->init == o->init && strcmp(w->container, o->container) == 0 &&
                strcmp(w->field, o->field) == 0 && !ssa_same_quantity(w->value, o->value)) {
                *wrote = w->value;
                return o;
            }
        }
    }
    return NULL;
}

/* Another process writes as field manager optipod: one Warning Event, and
 * the workload is left alone for the reconcile period (left_alone). What it
 * wrote becomes what we compare with next, so only a further write by it is
 * seen again. 1 = s is set. */
static int duplicate(const ctl_facts *f, ctl_step *s)
{
    const char *wrote = "";
    const ctlstep_written *o = rewritten_as_optipod(f, &wrote);
    if (!o)
        return 0;
    const kproj_obj *w = f->workload;
    event(s, KEVENTS_WARNING, "DuplicateController", "Apply",
          "%s/%s of %s/%s is %s under field manager optipod, but this optipod last wrote %s: "
          "another process writes as field manager optipod (a second install, or a local run "
          "with --leader-elect=false). Left alone for the reconcile period (%llu s), then "
          "evaluated again; run one optipod per cluster, with leader election on",
          o->container, o->field, w->ns ? w->ns : "", w->name, o->value, wrote,
          (unsigned long long)(f->period_ms / 1000));
    s->events[s->nevents - 1].with_uid = 1;
    s->fx |= CTLSTEP_FX_DUPLICATE | CTLSTEP_FX_CONFLICT;
    snprintf(s->conflict, sizeof s->conflict, "optipod (DuplicateController)");
    end(s, CTLREC_CONFLICT,
        "DuplicateController: %s/%s changed under field manager optipod by a write this process "
        "did not make; left alone for the reconcile period",
        o->container, o->field);
    s->requeue_ms = f->period_ms;
    return 1;
}

/* The live object read: unchanged, the conflict loop, or the pre-check. */
static void live_read(const ctl_facts *f, ctl_step *s)
{
    const ctlstep_reply *r = &f->live_reply;
    if (r->sent && r->http_status == 404) {
        end(s, CTLREC_SKIPPED, "the workload is gone");
        return;
    }
    if (!ok2xx(r)) {
        failed(s, "GET", r);
        return;
    }
    if (!f->live.obj) {
        end(s, CTLREC_ERROR, "GET: unreadable object %s",
            f->live.unreadable ? f->live.unreadable : "");
        return;
    }
    if (duplicate(f, s))
        return;
    if (f->live.nchanges == 0) {
        end(s, CTLREC_UNCHANGED, "the live object already has the recommended values");
        return;
    }
    /* A reclaim is one observed take-back of our last write, however many
     * reconciles see it (a retried write must not count it again). */
    enum conflict_event ev = CONFLICT_EV_QUIET;
    const char *by = taken_back_by(f);
    if (by && !f->mem->reclaim_counted) {
        ev = CONFLICT_EV_RECLAIMED;
        s->fx |= CTLSTEP_FX_RECLAIM_COUNTED;
    }
    if (f->mem->loop)
        s->loop = *f->mem->loop;
    else
        conflict_loop_init(&s->loop);
    conflict_loop_out lo;
    conflict_loop_step(&s->loop, &f->loop_cfg, f->wall_ms, ev, by, &lo);
    s->fx |= CTLSTEP_FX_LOOP;
    s->loop_stopped = f->mem->loop_stopped && !lo.resumed;
    if (lo.action == CONFLICT_STOP_LOOP) {
        s->loop_stopped = 1;
        if (lo.entered) {
            char note[REMEDY_NOTE_MAX + 1];
            loop_note(f, lo.manager, note, sizeof note);
            event(s, KEVENTS_WARNING, "GitOpsConflictLoop", "Apply", "%s", note);
            s->events[s->nevents - 1].with_uid = 1;
            s->fx |= CTLSTEP_FX_LOOP_ENTERED;
        }
        s->fx |= CTLSTEP_FX_CONFLICT;
        snprintf(s->conflict, sizeof s->conflict, "%s (GitOpsConflictLoop)", lo.manager);
        end(s, CTLREC_CONFLICT,
            "GitOpsConflictLoop: %s took the fields back %d times; not applying until it stops",
            lo.manager, lo.reclaims);
        return;
    }
    go(s, CTLSTEP_DRY_RUN);
}

/* A manager that takes fields back on its next sync: a GitOps controller
 * known by name, or one named in --gitops-managers. */
static int is_gitops(const ctl_facts *f, const char *m)
{
    if (remedy_tool_for_manager(m) != REMEDY_UNKNOWN || !strcmp(m, "helm"))
        return 1;
    size_t ml = strlen(m);
    for (const char *p = f->gitops_managers; p && *p;) {
        size_t l = strcspn(p, ",");
        if (l == ml && !strncmp(p, m, ml))
            return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

/* "a, b" of the conflicting managers (only the GitOps ones when gitops_only). */
static void managers_of(const ctl_facts *f, int gitops_only, char *buf, size_t cap)
{
    buf[0] = 0;
    for (int i = 0; i < f->cs->n; i++) {
        const char *m = f->cs->items[i].manager;
        if ((gitops_only && !is_gitops(f, m)) || strstr(buf, m))
            continue;
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s", l ? ", " : "", m);
    }
}

/* The pre-check's answer: conflicts are reported, and written over only with
 * updateStrategy.forceConflicts. */
static void dry_run_answered(const ctl_facts *f, ctl_step *s)
{
    const ctlstep_reply *r = &f->dry;
    int conflicts = r->sent && r->http_status == 409 && f->cs;
    if (!conflicts && !ok2xx(r)) {
        failed(s, "conflict pre-check", r);
        return;
    }
    if (!f->cs || f->cs->n == 0) {
        if (!f->mem->loop_stopped)
            s->fx |= CTLSTEP_FX_CONFLICT; /* nobody else holds these fields any more */
        go(s, CTLSTEP_WRITE);
        return;
    }
    enum conflict_decision d = conflict_decide(f->cs, f->rec->winner->force_conflicts);
    char note[CONFLICT_NOTE_MAX + 1], gitops[256], all[256];
    conflict_note(f->cs, d, note, sizeof note);
    managers_of(f, 1, gitops, sizeof gitops);
    managers_of(f, 0, all, sizeof all);
    s->fx |= CTLSTEP_FX_TAKEN_OVER;
    if (d == CONFLICT_YIELD || gitops[0]) {
        /* blocked, or taken from a tool that will take them back: say so and how */
        event(s, KEVENTS_WARNING, "SSAConflict", "Apply", "%s. Remedy: %s", note,
              d == CONFLICT_YIELD
                  ? "let optipod own the resources (exclude them from the other manager's "
                    "sync: kubectl optipod gitops argocd|flux), or set "
                    "updateStrategy.forceConflicts: true, or use the webhook strategy"
                  : "exclude the resources from its sync (kubectl optipod gitops argocd|flux "
                    "prints the snippet) or it takes them back on its next sync; or set the "
                    "policy to Recommend or the webhook strategy");
        s->fx |= CTLSTEP_FX_CONFLICT;
        snprintf(s->conflict, sizeof s->conflict, "%s", gitops[0] ? gitops : all);
    } else {
        /* forced as configured over a manager that does not reconcile: not a conflict */
        event(s, KEVENTS_NORMAL, "SSATakeover", "Apply",
              "took over the resources from %s (updateStrategy.forceConflicts: true; not a "
              "GitOps controller, it will not take them back)",
              all);
        if (!f->mem->loop_stopped)
            s->fx |= CTLSTEP_FX_CONFLICT; /* "" clears it */
        s->taken_over = 1;
    }
    if (d == CONFLICT_YIELD) {
        end(s, CTLREC_CONFLICT,
            "fields owned by %s; updateStrategy.forceConflicts is false: left to them",
            s->conflict);
        return;
    }
    go(s, CTLSTEP_WRITE);
    s->force = 1;
}

static void write_answered(const ctl_facts *f, ctl_step *s)
{
    const ctlstep_reply *r = &f->write;
    if (r->sent && r->http_status == 409) {
        end(s, CTLREC_ERROR, "write: the workload changed meanwhile (%s); retrying",
            r->msg ? r->msg : "");
        return;
    }
    if (!ok2xx(r)) {
        failed(s, "write", r);
        return;
    }
    const char *changed = f->live.changed ? f->live.changed : "";
    if (!f->dry_run) {
        s->fx |= CTLSTEP_FX_WRITTEN | CTLSTEP_FX_WROTE | CTLSTEP_FX_LOOP;
        if (f->mem->loop)
            s->loop = *f->mem->loop;
        else
            conflict_loop_init(&s->loop);
        conflict_loop_out lo;
        conflict_loop_step(&s->loop, &f->loop_cfg, f->wall_ms, CONFLICT_EV_APPLIED, NULL, &lo);
        s->loop_stopped = f->mem->loop_stopped;
    }
    event(s, KEVENTS_NORMAL, "ResourcesApplied", "Apply", "%s %s (policy %s)",
          f->dry_run ? "would set" : "set", changed, f->pkey);
    end(s, CTLREC_APPLY, "%s%s%s", f->dry_run ? "dry run: would apply " : "applied ", changed,
        f->cs && f->cs->n > 0 ? " (forced over another manager)" : "");
}

static void ssa(const ctl_facts *f, ctl_step *s)
{
    const ctlrec_out *r = f->rec;
    if (f->write.done) {
        write_answered(f, s);
        return;
    }
    if (f->dry.done) {
        dry_run_answered(f, s);
        return;
    }
    if (f->live_reply.done) {
        live_read(f, s);
        return;
    }
    if (r->outcome != CTLREC_APPLY) {
        end(s, r->outcome, "%s", r->reason);
        return;
    }
    if (min_write_interval(f, s, "the write") || once_per_period(f, s))
        return;
    /* Under immediate optipod paces the rollouts its writes cause; under
     * onNextRestart the template write is the strategy's own change, paced by
     * the workload's updateStrategy (and the once-per-period rule above). */
    if (r->winner->rollout == POL_ROLLOUT_IMMEDIATE && rollout_rolls_pods(f->workload) &&
        gate(f, s))
        return;
    go(s, CTLSTEP_READ_LIVE);
}

/* ---- the step ----------------------------------------------------------------------------------
 */

void ctlstep_next(const ctl_facts *f, ctl_step *s)
{
    memset(s, 0, sizeof *s);
    s->requeue_ms = CTLSTEP_NO_REQUEUE;
    const ctlrec_out *r = f->rec;
    if (!f->workload) {
        end(s, CTLREC_SKIPPED, "the workload is gone");
        return;
    }
    if (!r || !f->mem) {
        end(s, CTLREC_ERROR, "no decision");
        return;
    }
    if (f->policy_gone) {
        end(s, CTLREC_SKIPPED, "policy %s is gone", f->pkey ? f->pkey : "");
        return;
    }
    if (r->released) { /* `kubectl optipod release`: not a single write until `manage` */
        end(s, CTLREC_SKIPPED, "%s", r->reason);
        return;
    }
    if (!r->winner || r->mode == POL_MODE_DISABLED) {
        no_policy(f, s);
        return;
    }
    if (!f->decided) {
        if (f->usage == CTLSTEP_USAGE_STALE)
            go(s, CTLSTEP_FETCH_USAGE);
        else
            end(s, CTLREC_ERROR, "%s", r->outcome == CTLREC_ERROR ? r->reason : "no decision");
        return;
    }
    if (r->outcome == CTLREC_ERROR) {
        end(s, CTLREC_ERROR, "%s", r->reason);
        return;
    }
    if (left_alone(f, s))
        return;
    if (r->mode == POL_MODE_AUTO && r->winner->allow_in_place_resize && resize(f, s))
        return;
    if (r->mode == POL_MODE_RECOMMEND || r->winner->strategy == POL_STRATEGY_WEBHOOK)
        annotations(f, s);
    else
        ssa(f, s);
}
