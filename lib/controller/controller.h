/*
 * ctl: the reconcile loop. It joins the informers (kinf/kcache), the work
 * queue (kqueue), the metrics provider (mprov), the pure decision (ctlrec),
 * the appliers (ssa builders over krest), conflict and loop detection
 * (conflict_*), Events (kevents) and the policies' status.
 *
 * Watched: OptimizationPolicies (parsed once into pol_policy, attached to
 * their projections), Deployments, StatefulSets, DaemonSets, ReplicaSets and
 * Pods (owner mapping, OOM kills, resize state), Namespaces (labels, for
 * namespaceSelector), HPAs (scaleTargetRef, and whether they scale on
 * CPU) and PodDisruptionBudgets (the rollout gate). A workload key "Kind/namespace/name" is queued
 * when its spec, labels or optipod.io/ annotations change, when one of its pods is OOMKilled or
 * changes resize state, when a policy or a namespace's labels or an HPA
 * change, and on each policy's resync (spec.reconcileInterval).
 *
 * How values are written (see docs/gitops.md for the why):
 *  - Recommend, and Auto with the webhook strategy: an apply
 *    (fieldManager=optipod) of optipod.io/ annotations only, when they differ.
 *  - Auto with the ssa strategy: read the live object (managedFields), find
 *    other managers on the fields that change, run an unforced apply of only
 *    those containers' resources with the live uid and dryRun=All; on 409
 *    report SSAConflict (Event, Conflict condition) and continue only when
 *    updateStrategy.forceConflicts; then write the values with a
 *    strategic-merge PATCH under fieldManager=optipod (an Update operation,
 *    which does not pin the container list items: a container removed in
 *    Git can always be removed, kubernetes#128102) carrying the live uid and
 *    resourceVersion as preconditions. A manager taking the values back
 *    repeatedly stops the workload (GitOpsConflictLoop, with the remedy).
 *  - Auto with updateStrategy.allowInPlaceResize, where discovery shows
 *    pods/resize (or a 1.27-1.31 server, through a pod PATCH with the uid
 *    precondition): running pods are resized in place first, within their
 *    QoS class (resize_plan), ONE pod in flight per workload: each resize is
 *    followed (resize_track, fed by the pod informer) until the kubelet
 *    reports the new values (Event ResourcesResized, then the next pod), or
 *    it fails (Infeasible, Deferred or stalled too long, Error: Warning
 *    ResizeInfeasible/ResizeFailed; that pod and those targets are not
 *    tried again) or the pod goes away. A 422 "may not change fields other
 *    than" to a pod PATCH turns the pod-PATCH mode off for the process. A
 *    pod that cannot be resized leaves the work to the strategy. With the
 *    ssa strategy and rolloutStrategy onNextRestart the template is then
 *    left alone (writing it would roll the pods out).
 *  - Auto with the webhook strategy, rolloutStrategy immediate and
 *    allowRecreate: once the annotations hold the recommendation, running
 *    pods that still differ from it are replaced through the workload: a
 *    strategic-merge PATCH (fieldManager=optipod, live uid and
 *    resourceVersion as preconditions) of only the pod template annotation
 *    optipod.io/restartedAt (Event RolloutTriggered). Never for a
 *    StatefulSet or DaemonSet with updateStrategy OnDelete. onNextRestart
 *    never restarts, deletes or evicts a pod.
 *  - Every write optipod makes under rolloutStrategy immediate that rolls
 *    pods (that restart, and the ssa template write; under onNextRestart the
 *    ssa write is the strategy's own change, paced by the workload's
 *    updateStrategy) passes the rollout gate first (controller/rollout.h): one optipod rollout
 *    at a time cluster-wide, the workload fully available, and every
 *    PodDisruptionBudget selecting its pods current with a disruption to
 *    spare; otherwise Event RolloutDeferred, outcome skipped, retried.
 *  - No workload is written more than once per ctl_opts.min_write_ms,
 *    whatever the cause (step.h); a sooner write waits for the interval.
 *  - A value optipod wrote found changed under manager optipod by a write
 *    this process did not make (another optipod without the same Lease):
 *    Warning DuplicateController once, the workload left alone for the
 *    reconcile period, then evaluated again.
 *  - --dry-run: every write carries dryRun=All.
 * Only the leader (ctl_set_leader) reconciles; a follower keeps its caches.
 * Steady state (nothing changed) makes no API writes at all.
 *
 * Ownership: ctl_new() borrows the loop, the krest and the kevents (all must
 * outlive the controller) and takes ownership of the provider (closed by
 * ctl_close). ctl_close() stops the informers, cancels in-flight requests
 * (no callback runs afterwards) and frees everything from the loop, then
 * calls on_closed. Loop thread only.
 */
#ifndef OPTIPOD_CONTROLLER_CONTROLLER_H
#define OPTIPOD_CONTROLLER_CONTROLLER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "apply/conflict.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "metrics/provider.h"
#include "obs/obs.h"
#include "util/err.h"

/* Informers, in this order. */
enum ctl_inf {
    CTL_INF_POLICIES,
    CTL_INF_DEPLOYMENTS,
    CTL_INF_STATEFULSETS,
    CTL_INF_DAEMONSETS,
    CTL_INF_REPLICASETS,
    CTL_INF_PODS,
    CTL_INF_NAMESPACES,
    CTL_INF_HPAS,
    CTL_INF_PDBS,
    CTL_NINF
};

#define CTL_ALARM_NEVER UINT64_MAX

/* The controller's time, injectable so tests step it instead of sleeping.
 * now_ms is monotonic (periods, requeues, usage TTL, resize deadlines) and
 * goes with alarm: one alarm per controller, each call replacing the last;
 * the clock calls wake(arg) from the loop (never from inside alarm) once
 * now_ms() >= at_ms; CTL_ALARM_NEVER cancels it. wall_ms is the wall clock
 * in ms since the epoch (engine time, loop detection, status and rollout
 * times). A NULL now_ms means libuv's uv_now() and a uv timer (alarm is then
 * ignored); a NULL wall_ms, the real clock. */
typedef struct ctl_clock {
    uint64_t (*now_ms)(void *ud);
    int64_t (*wall_ms)(void *ud);
    void (*alarm)(void *ud, uint64_t at_ms, void (*wake)(void *arg), void *arg);
    void *ud;
} ctl_clock;

typedef struct ctl_opts {
    const char *ns;  /* watch only this namespace; NULL = all */
    int dry_run;     /* dryRun=All on every write */
    mprov *provider; /* owned from ctl_new on (even on failure); NULL = no usage */
    /* Owned likewise: the metrics-server sampler for policies that ask for it
     * (metricsConfig.provider) while `provider` is Prometheus; NULL = none. */
    mprov *metrics_server;
    kevents *events;        /* borrowed; NULL = no Events */
    int workers;            /* reconciles in flight; 0 = 8 */
    uint64_t resync_ms;     /* override every policy's reconcileInterval (tests); 0 = policy */
    uint64_t usage_ttl_ms;  /* a namespace's usage is reused this long; 0 = 60 s */
    size_t max_status_recs; /* status.recommendations entries per policy; 0 = 20 */
    conflict_loop_cfg loop; /* zeros = conflict_loop_cfg_defaults() */
    ctl_clock clock;        /* zeros = libuv's clock and a uv timer, the real wall clock */
    /* in-place resize bounds (tests): not done this long after acceptance,
     * or Deferred this long → fall back to the strategy; 0 = 5 / 10 min */
    uint64_t resize_stall_ms, resize_deferred_ms;
    /* Field managers that take fields back like a GitOps controller, beyond
     * the known ones (argocd-controller, argocd-application-controller,
     * kustomize-controller, helm-controller, helm): comma-separated; NULL none.
     * Forcing over one of them is a Warning SSAConflict and Conflict=True; over
     * anyone else a Normal SSATakeover (it will not take them back). */
    const char *gitops_managers;
    obs_reg *metrics; /* borrowed: reconcile durations, per-container values (ctl_metrics.c) */
    /* No workload is written more than once per this (--min-write-interval: the annotations,
     * the ssa write, the restart, an in-place resize of one of its pods); 0 = no minimum. */
    uint64_t min_write_ms;
} ctl_opts;

typedef struct ctl_stats {
    uint64_t reconciles; /* finished reconciles */
    uint64_t applied, unchanged, skipped, conflicts, errors;
    uint64_t writes;          /* write requests sent (apply, patch, status), events excluded */
    uint64_t dry_run_applies; /* conflict pre-checks (dryRun=All applies) */
    uint64_t status_writes;
    uint64_t record_writes; /* of the writes, OptimizationRecommendation applies */
    uint64_t loops_stopped; /* GitOpsConflictLoop entered */
    uint64_t usage_requests;
    uint64_t foreign_fields; /* applies after which optipod owned something it must not */
    uint64_t duplicates;     /* DuplicateController: another process wrote as optipod */
} ctl_stats;

typedef struct ctl ctl;

int ctl_new(ctl **out, uv_loop_t *loop, krest *rest, const ctl_opts *opts, operr *err);
/* Start the informers (handlers may be added to their caches before). */
int ctl_start(ctl *c);
/* Leadership: only a leader reconciles and writes. Becoming leader queues
 * every workload. A new controller is a leader (call with 0 before
 * ctl_start when electing). */
void ctl_set_leader(ctl *c, int leading);
/* Leading and not closing (what ckpt.h's `active` asks). */
int ctl_leading(const ctl *c);
/* Every informer has listed once. */
int ctl_synced(const ctl *c);
kinf *ctl_informer(ctl *c, enum ctl_inf i);
const char *ctl_informer_name(enum ctl_inf i);
void ctl_stats_get(const ctl *c, ctl_stats *out);
/* Reconciles queued, running or delayed (0: idle). */
size_t ctl_pending(const ctl *c);
/* Reconciles running and status writes in flight: 0 when nothing happens
 * until the clock's alarm or an informer event (queued keys are taken when
 * the alarm fires, delayed ones when they are due). */
size_t ctl_busy(const ctl *c);
/* Queue one workload ("Deployment/ns/name") now. */
int ctl_enqueue(ctl *c, const char *key);
void ctl_close(ctl *c, void (*on_closed)(void *ud), void *ud);

/* ctl_metrics.c: define the reconcile families in r (also done at the first reconcile), and
 * drop every per-container series (a controller that stops leading). */
int ctl_metrics_define(obs_reg *r, operr *err);
void ctl_metrics_forget(obs_reg *r);

#endif
