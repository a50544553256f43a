/*
 * ctl resize: in-place resize (updateStrategy.allowInPlaceResize), which the
 * step tries before the strategy. Owns the facts the step reads about it
 * (ctl__resize_facts: the resize followed, stepped with what the pod
 * informer shows, or the first running pod that differs from the
 * recommendation, planned), the PATCH (pods/resize, or a pod PATCH on a
 * 1.27-1.31 server) and what its answer teaches (the server's modes, the
 * resizes never to send again). One pod in flight per workload: that resize
 * is followed until done, fallen back or its pod gone, then the next pod.
 * What it remembers per workload (ctl_resize, in c->resizes) is private to
 * this file. I/O layer: calls ctl_common.c only; its answers go back through
 * j->resume. Separate because it is the one path that writes pods rather
 * than workloads, around its own state machine (apply/resize.h).
 */
#include "controller/ctl_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/fields.h"
#include "apply/resize.h"
#include "apply/ssa.h"
#include "kube/discovery.h"
#include "util/log.h"

/* ---- in-place resize ------------------------------------------------------------------------ */

#define RESIZE_FAILED_MAX 16

/* One workload's resize in flight (at most one pod at a time) and the
 * resizes that failed (or were only dry-run), remembered as hashes of pod
 * uid + targets so the same resize is never sent again to that pod. Kept in
 * c->resizes, freed with the workload. */
typedef struct ctl_resize {
    int active;    /* t is being followed */
    char pod[256]; /* its pod's name */
    char what[WRITTEN_MAX];
    resize_track t;
    uint64_t failed[RESIZE_FAILED_MAX];
    size_t nfailed;
} ctl_resize;

/* What the job keeps of the resize it plans or sends (the resize state in
 * c->resizes may go with its workload while a request is out). */
struct ctl_rzplan {
    resize_plan plan;
    enum resize_mode mode;
    char pod[256], uid[64];
    char what[WRITTEN_MAX];
    char detail[256];
};

typedef struct resize_ctx {
    ctl *c;
    ctl_job *j;
    ctl_resize *rz;
    enum resize_mode mode;
    resize_want wants[CTLREC_MAX_CONTAINERS];
    size_t nwants;
    int npods, ndone, nrefused;
    char pod[256], uid[64];
    resize_plan plan; /* of the first pod to resize */
    resize_track tmp; /* scratch: the signature of a plan */
    char detail[256];
} resize_ctx;

/* pod uid + targets, as one hash */
static uint64_t resize_sig(const resize_track *t)
{
    char s[WRITTEN_MAX];
    size_t n = (size_t)snprintf(s, sizeof s, "%s", t->uid);
    for (size_t i = 0; i < t->nitems && n < sizeof s; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "|%s:%d%d%d%d:%lld,%lld,%lld,%lld",
                              t->items[i].name, t->items[i].set_req[0], t->items[i].set_req[1],
                              t->items[i].set_lim[0], t->items[i].set_lim[1],
                              (long long)t->items[i].req[0], (long long)t->items[i].req[1],
                              (long long)t->items[i].lim[0], (long long)t->items[i].lim[1]);
    return opmap_hash(s);
}

static void resize_remember(ctl_resize *rz)
{
    uint64_t h = resize_sig(&rz->t);
    for (size_t i = 0; i < rz->nfailed; i++)
        if (rz->failed[i] == h)
            return;
    if (rz->nfailed == RESIZE_FAILED_MAX) { /* forget the oldest */
        memmove(rz->failed, rz->failed + 1, (RESIZE_FAILED_MAX - 1) * sizeof rz->failed[0]);
        rz->nfailed--;
    }
    rz->failed[rz->nfailed++] = h;
}

static int resize_failed_before(const ctl_resize *rz, const resize_track *t)
{
    uint64_t h = resize_sig(t);
    for (size_t i = 0; rz && i < rz->nfailed; i++)
        if (rz->failed[i] == h)
            return 1;
    return 0;
}

/* "app: requests.cpu=500m requests.memory=512Mi" from a plan's items, for Events. */
static void describe_resize(const resize_plan *pl, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < pl->nitems && n < cap; i++) {
        const resize_item *it = &pl->items[i];
        n += (size_t)snprintf(buf + n, cap - n, "%s%s:", n ? "; " : "", it->name);
        for (int r = 0; r < 2 && n < cap; r++) {
            const char *res = r == RESIZE_CPU ? "cpu" : "memory";
            const char *unit = r == RESIZE_CPU ? "m" : "";
            for (int l = 0; l < 2 && n < cap; l++) {
                if (!(l ? it->set_lim[r] : it->set_req[r]))
                    continue;
                long long v = l ? it->lim[r] : it->req[r];
                const char *u = unit;
                if (r == RESIZE_MEM && v % (1LL << 30) == 0) {
                    v >>= 30;
                    u = "Gi";
                } else if (r == RESIZE_MEM && v % (1LL << 20) == 0) {
                    v >>= 20;
                    u = "Mi";
                }
                n += (size_t)snprintf(buf + n, cap - n, " %s.%s=%lld%s", l ? "limits" : "requests",
                                      res, v, u);
            }
        }
    }
}

/* Is this the pod whose in-place resize its workload is following? */
int ctl__pod_followed(ctl *c, const kproj_obj *pod)
{
    char owner[600], key[KEY_MAX];
    if (!pod->ns || !pod->name || ctl__pod_owner(c, pod, owner, sizeof owner) != 0)
        return 0;
    const char *slash = strchr(owner, '/');
    if (!slash || snprintf(key, sizeof key, "%.*s/%s/%s", (int)(slash - owner), owner, pod->ns,
                           slash + 1) >= (int)sizeof key)
        return 0;
    const ctl_resize *rz = opmap_get(&c->resizes, key);
    return rz && rz->active && strcmp(rz->pod, pod->name) == 0;
}

static int plan_pod(const kproj_obj *pod, void *ud)
{
    resize_ctx *x = ud;
    char key[600], want[600];
    if (x->pod[0] || !pod->ns || strcmp(pod->ns, x->j->ns) != 0 ||
        ctl__pod_owner(x->c, pod, key, sizeof key) != 0)
        return 0;
    snprintf(want, sizeof want, "%s/%s", kproj_kind_name(x->j->kind), x->j->name);
    if (strcmp(key, want) != 0 || !pod->phase || strcmp(pod->phase, "Running") != 0)
        return 0;
    x->npods++;
    resize_opts ro;
    resize_opts_defaults(&ro);
    resize_plan_make(pod, pod->deleting, x->wants, x->nwants, &ro, &x->plan);
    if (x->plan.outcome == RESIZE_PATCH) {
        resize_track_init(&x->tmp, &x->plan, x->mode, pod->uid, 0);
        if (resize_failed_before(x->rz, &x->tmp)) {
            x->nrefused++;
            snprintf(x->detail, sizeof x->detail, "pod %s: the same resize was tried before",
                     pod->name);
            return 0;
        }
        snprintf(x->pod, sizeof x->pod, "%s", pod->name);
        snprintf(x->uid, sizeof x->uid, "%s", pod->uid ? pod->uid : "");
    } else if (x->plan.outcome == RESIZE_UNCHANGED) {
        x->ndone++;
    } else {
        x->nrefused++;
        snprintf(x->detail, sizeof x->detail, "pod %s: %s", pod->name, x->plan.detail);
    }
    return 0;
}

/* ms until the track's next deadline (the requeue while waiting). */
static uint64_t resize_due_ms(const resize_track *t, uint64_t now)
{
    uint64_t at = t->state == RESIZE_ST_DEFERRED ? t->deferred_since_ms + t->deferred_ms
                  : t->state == RESIZE_ST_SENT   ? t->sent_ms + t->stall_ms
                                                 : t->accepted_ms + t->stall_ms;
    return at > now ? at - now + 1 : 1;
}

/* A resize ended without completing: tell, and never try it on that pod again. */
static void resize_fell_back(ctl_job *j, ctl_resize *rz)
{
    ctl *c = j->c;
    kevents_ref ref;
    ctl__workload_ref(j, NULL, &ref);
    int infeasible = strstr(rz->t.detail, "infeasible") != NULL;
    ctl__event(
        c, &ref, KEVENTS_WARNING, infeasible ? "ResizeInfeasible" : "ResizeFailed", "Resize",
        "in-place resize of pod %s (%s) did not complete: %s; the update strategy takes over",
        rz->pod, rz->what, rz->t.detail);
    resize_remember(rz);
    rz->active = 0;
}

/* Step the followed resize with what the pod informer shows; 1 = it goes
 * on (j->rz says how long to wait), 0 = over (done, fallen back or gone). */
static int follow_resize(ctl_job *j, ctl_resize *rz)
{
    ctl *c = j->c;
    uint64_t now = ctl__now(c);
    const kproj_obj *pod = kcache_get(ctl__cache(c, CTL_INF_PODS), j->ns, rz->pod);
    enum resize_action a;
    if (!pod) {
        a = RESIZE_ACT_GONE;
        snprintf(rz->t.detail, sizeof rz->t.detail, "pod deleted");
    } else {
        resize_obs obs;
        resize_observe_pod(pod, &obs);
        a = resize_track_step(&rz->t, &obs, now);
    }
    kevents_ref ref;
    switch (a) {
    case RESIZE_ACT_WAIT:
        j->rz.following = 1;
        snprintf(j->rzplan->pod, sizeof j->rzplan->pod, "%s", rz->pod);
        j->rz.follow_pod = j->rzplan->pod;
        j->rz.follow_state = resize_state_name(rz->t.state);
        j->rz.follow_due_ms = resize_due_ms(&rz->t, now);
        return 1;
    case RESIZE_ACT_DONE:
        ctl__workload_ref(j, NULL, &ref);
        ctl__event(c, &ref, KEVENTS_NORMAL, "ResourcesResized", "Resize",
                   "resized pod %s in place: %s", rz->pod, rz->what);
        OPLOG_V(1, "reconcile %s: pod %s resized in place", j->key, rz->pod);
        rz->active = 0;
        break;
    case RESIZE_ACT_FALLBACK:
        resize_fell_back(j, rz);
        break;
    default: /* GONE (RETRY and UNSUPPORTED only answer a PATCH) */
        OPLOG_V(2, "reconcile %s: resize of pod %s dropped: %s", j->key, rz->pod, rz->t.detail);
        rz->active = 0;
        break;
    }
    return 0;
}

/* What the PATCH answered: the track steps, the server's modes are learnt,
 * and the step decides from the action. */
static void on_resize_done(const krest_reply *r, void *ud)
{
    ctl_job *j = ud;
    ctl *c = j->c;
    j->req = NULL;
    ctl_resize *rz = opmap_get(&c->resizes, j->key);
    ctlstep_resize *z = &j->rz;
    z->answered = 1;
    if (!rz) { /* the workload was deleted meanwhile */
        z->action = RESIZE_ACT_GONE;
        snprintf(j->rzplan->detail, sizeof j->rzplan->detail, "the workload is gone");
        z->detail = j->rzplan->detail;
        j->resume(j);
        return;
    }
    uint64_t now = ctl__now(c);
    enum resize_action a = resize_track_sent(&rz->t, r->http_status, r->status, now);
    if (rz->t.mode == RESIZE_MODE_POD_PATCH) {
        c->pod_patch_probe = 0;
        if (a == RESIZE_ACT_WAIT)
            c->pod_patch_ok = 1;
    }
    switch (a) {
    case RESIZE_ACT_WAIT:
        if (c->o.dry_run) {
            /* nothing changes on a dry run: do not send it again */
            resize_remember(rz);
            rz->active = 0;
        }
        z->follow_due_ms = resize_due_ms(&rz->t, now);
        break;
    case RESIZE_ACT_UNSUPPORTED:
        rz->active = 0;
        if (rz->t.mode == RESIZE_MODE_POD_PATCH && !c->pod_patch_off) {
            c->pod_patch_off = 1;
            OPLOG_I("in-place resize through a pod PATCH is not enabled on this API server (%s); "
                    "the update strategy is used from now on",
                    rz->t.detail);
        } else if (rz->t.mode == RESIZE_MODE_SUBRESOURCE && !c->subresource_off) {
            c->subresource_off = 1;
            OPLOG_I("pods/resize is listed but not served (%s); the update strategy is used from "
                    "now on",
                    rz->t.detail);
        }
        break;
    case RESIZE_ACT_FALLBACK:
        resize_fell_back(j, rz);
        break;
    default: /* GONE, RETRY */
        rz->active = 0;
        break;
    }
    z->action = a;
    snprintf(j->rzplan->detail, sizeof j->rzplan->detail, "%s", rz->t.detail);
    z->detail = j->rzplan->detail;
    j->resume(j);
}

void ctl__resize_job_free(ctl_job *j)
{
    free(j->rzplan);
    j->rzplan = NULL;
}

/* Follow the workload's resize in flight; when none, plan the first running
 * pod that differs from the recommendation. */
void ctl__resize_facts(ctl_job *j)
{
    ctl *c = j->c;
    memset(&j->rz, 0, sizeof j->rz);
    if (!j->rzplan && !(j->rzplan = calloc(1, sizeof *j->rzplan)))
        return; /* no memory: not used, the strategy follows */
    ctl_resize *rz = opmap_get(&c->resizes, j->key);
    if (rz && rz->active && follow_resize(j, rz))
        return;
    kdisc_info di;
    kdisc_get(c->disc, &di);
    enum resize_mode mode = resize_mode_for(&di, !c->pod_patch_off);
    if (mode == RESIZE_MODE_SUBRESOURCE && c->subresource_off)
        mode = RESIZE_MODE_NONE;
    if (mode == RESIZE_MODE_NONE)
        return;
    resize_ctx *x = calloc(1, sizeof *x);
    if (!x)
        return;
    j->rz.mode_ok = 1;
    x->c = c;
    x->j = j;
    x->rz = rz;
    x->mode = mode;
    for (size_t i = 0; i < j->out.nrec; i++) {
        const ssa_container *r = &j->out.rec[i];
        if (r->init)
            continue;
        x->wants[x->nwants++] = (resize_want){r->name, r->cpu_request, r->memory_request,
                                              j->out.allow_limits ? r->cpu_limit : NULL,
                                              j->out.allow_limits ? r->memory_limit : NULL};
    }
    ctl__workload_pods(c, j->kind, j->ns, j->name, plan_pod, x);
    if (x->nrefused)
        OPLOG_V(2, "reconcile %s: in-place resize not possible (%s); using the strategy", j->key,
                x->detail);
    j->rz.npods = x->npods;
    j->rz.ndone = x->ndone;
    if (x->pod[0]) {
        struct ctl_rzplan *pl = j->rzplan;
        pl->plan = x->plan;
        pl->mode = mode;
        snprintf(pl->pod, sizeof pl->pod, "%s", x->pod);
        snprintf(pl->uid, sizeof pl->uid, "%s", x->uid);
        j->rz.pod = pl->pod;
        j->rz.probe_busy = mode == RESIZE_MODE_POD_PATCH && !c->pod_patch_ok && c->pod_patch_probe;
    }
    free(x);
}

int ctl__send_resize(ctl_job *j)
{
    ctl *c = j->c;
    struct ctl_rzplan *pl = j->rzplan;
    if (!pl || !pl->pod[0])
        return -EINVAL;
    ctl_resize *rz = opmap_get(&c->resizes, j->key);
    if (!rz) {
        rz = calloc(1, sizeof *rz);
        if (rz && opmap_put(&c->resizes, j->key, rz, NULL) != 0) {
            free(rz);
            rz = NULL;
        }
    }
    if (!rz)
        return -ENOMEM;
    opbuf path, body;
    opbuf_init(&path, 2048);
    opbuf_init(&body, BODY_MAX);
    const char *kv[] = {"fieldManager", MFIELDS_OPTIPOD, "dryRun", c->o.dry_run ? "All" : NULL,
                        NULL};
    int e = resize_path(pl->mode, j->ns, pl->pod, &path);
    if (!e)
        e = kpath_query(&path, kv);
    if (!e)
        e = resize_body(&pl->plan, pl->mode, pl->uid, &body);
    if (!e) {
        resize_track_init(&rz->t, &pl->plan, pl->mode, pl->uid, ctl__now(c));
        if (c->o.resize_stall_ms)
            rz->t.stall_ms = c->o.resize_stall_ms;
        if (c->o.resize_deferred_ms)
            rz->t.deferred_ms = c->o.resize_deferred_ms;
        snprintf(rz->pod, sizeof rz->pod, "%s", pl->pod);
        describe_resize(&pl->plan, rz->what, sizeof rz->what);
        snprintf(pl->what, sizeof pl->what, "%s", rz->what);
        j->rz.what = pl->what;
        e = ctl__job_send(j, "PATCH", opbuf_str(&path), "application/strategic-merge-patch+json",
                          &body, on_resize_done);
    }
    opbuf_release(&path);
    opbuf_release(&body);
    if (e)
        return e;
    c->st.writes++;
    rz->active = 1;
    if (pl->mode == RESIZE_MODE_POD_PATCH && !c->pod_patch_ok)
        c->pod_patch_probe = 1;
    return 0;
}
