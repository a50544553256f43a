/*
 * resize: in-place pod resize (spec.containers[].resources of a running pod).
 * Pure: no I/O. The controller sends the body with
 *   PATCH /api/v1/namespaces/NS/pods/NAME/resize   (application/strategic-merge-patch+json)
 * or, on servers without the subresource, the same body as a plain pod PATCH.
 *
 * Mode (resize_mode_for, from kube/discovery.h):
 *  - pods/resize listed with "patch"      → RESIZE_MODE_SUBRESOURCE (1.32+);
 *  - else the subresource is known absent, the server is 1.27-1.32 and the
 *    caller allows the alpha path → RESIZE_MODE_POD_PATCH. The
 *    InPlacePodVerticalScaling gate cannot be discovered (1.27-1.31 resize
 *    through the pod itself; a 1.32 that does not list pods/resize has the
 *    gate off), so the first PATCH tells: the 422 Forbidden "pod updates may
 *    not change fields other than ..." (what a v1.24 server and the fake API
 *    server answer) makes resize_track_sent() say RESIZE_ACT_UNSUPPORTED and
 *    the caller stops using the mode for that server (one request wasted);
 *  - else RESIZE_MODE_NONE (use the configured strategy). A discovery that
 *    has not answered yet is NONE too: never assume.
 *
 * Planning (resize_plan_make), in order:
 *  1. pod-level skips: being deleted, phase not Running, a resize already
 *     pending (PodResizePending Deferred/Infeasible, or the alpha status.resize)
 *     or in progress, status.qosClass disagreeing with the spec (a pod-level
 *     resources feature we do not model), too many containers;
 *  2. per container (never init containers: a wanted name that is only an init
 *     container, or absent, is reported and ignored): the wanted values that
 *     differ from the spec (compared as quantities; containers nobody asked
 *     about are left exactly as they are); a resource whose
 *     resizePolicy is RestartContainer is held back unless opts.allow_restart;
 *     limits are never removed, and a limit below the new request is raised to
 *     it;
 *  3. QoS guard: the class is computed with Kubernetes' exact rules
 *     (GetPodQOS: over containers and init containers, cpu and memory only,
 *     zero values ignored, requests and limits summed over containers; a
 *     container missing a cpu or memory limit makes the pod not Guaranteed; a
 *     limit without a request counts as that request, as API defaulting does)
 *     before and after. Choice: a Guaranteed pod stays Guaranteed by moving
 *     each touched container's limits with its requests (limit := request for
 *     cpu and memory) when opts.keep_guaranteed (the default); without it, or
 *     for any other class change (BestEffort→Burstable, Burstable→Guaranteed),
 *     the resize is refused (RESIZE_REFUSED, RESIZE_R_QOS) naming the container
 *     and resource that breaks it.
 *
 * Body (resize_body), compact JSON, only the changed fields, containers in
 * spec order:
 *   {"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"250m",
 *    "memory":"256Mi"},"limits":{"cpu":"500m"}}}]}}
 * The pod PATCH fallback uses the same body plus the pod's uid as a
 * precondition ({"metadata":{"uid":U},"spec":...}) because that PATCH can
 * change a pod re-created under the same name (StatefulSets).
 *
 * Following a resize (resize_track): SENT → (PATCH answered 2xx) ACCEPTED →
 * IN_PROGRESS → DONE when every target container's
 * status.containerStatuses[].resources match the targets; PodResizePending
 * Infeasible (or alpha status.resize "Infeasible") → FALLBACK at once;
 * Deferred → wait, FALLBACK after deferred_ms; PodResizeInProgress with
 * reason Error → FALLBACK; not DONE within stall_ms of acceptance (time spent
 * Deferred aside) → FALLBACK. FALLBACK means: use the configured strategy.
 * The pod replaced (another uid), terminating or no longer Running → GONE.
 * Terminal states (DONE, FALLBACK, GONE) keep answering the same action.
 *
 * Ownership: a plan borrows the pod projection (container names point into
 * it) and must not outlive it; a track copies what it needs (plain value).
 */
#ifndef OPTIPOD_APPLY_RESIZE_H
#define OPTIPOD_APPLY_RESIZE_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "kube/discovery.h"
#include "kube/project.h"
#include "kube/rest.h"
#include "util/buf.h"
#include "util/err.h"

#define RESIZE_MAX_CONTAINERS 64
#define RESIZE_MAX_NOTES      32
#define RESIZE_NAME_MAX       63 /* DNS label */

enum resize_mode {
    RESIZE_MODE_NONE = 0,    /* not supported (or not known yet): use the strategy */
    RESIZE_MODE_SUBRESOURCE, /* PATCH .../pods/NAME/resize */
    RESIZE_MODE_POD_PATCH,   /* PATCH .../pods/NAME (1.27-1.31 alpha) */
};

/* allow_pod_patch: try the 1.27-1.31 alpha path (feature gate unknown). */
enum resize_mode resize_mode_for(const kdisc_info *d, int allow_pod_patch);
const char *resize_mode_name(enum resize_mode m);

enum resize_qos { RESIZE_QOS_BEST_EFFORT = 0, RESIZE_QOS_BURSTABLE, RESIZE_QOS_GUARANTEED };
const char *resize_qos_name(enum resize_qos q); /* "BestEffort", "Burstable", "Guaranteed" */

/* Kubernetes' QoS class of a pod's spec. Quantities that do not parse count
 * as absent. */
enum resize_qos resize_qos_of(const kproj_obj *pod);

/* One container's wanted values: quantity strings, NULL = leave as is. */
typedef struct resize_want {
    const char *name;
    const char *cpu_request, *memory_request;
    const char *cpu_limit, *memory_limit;
} resize_want;

typedef struct resize_opts {
    /* Resize resources whose resizePolicy is RestartContainer (the kubelet
     * restarts the container). Leave 0 for rolloutStrategy onNextRestart. */
    int allow_restart;
    int keep_guaranteed; /* Guaranteed pods: limits follow requests (see above) */
} resize_opts;

/* allow_restart 0, keep_guaranteed 1. */
void resize_opts_defaults(resize_opts *o);

enum resize_outcome {
    RESIZE_PATCH = 0, /* send the body */
    RESIZE_UNCHANGED, /* nothing differs (or everything left was held back) */
    RESIZE_SKIPPED,   /* the pod cannot be resized now; see reason */
    RESIZE_REFUSED,   /* the resize would change the QoS class */
};

enum resize_reason {
    RESIZE_R_NONE = 0,
    RESIZE_R_DELETING,     /* metadata.deletionTimestamp set */
    RESIZE_R_NOT_RUNNING,  /* status.phase != Running */
    RESIZE_R_PENDING,      /* PodResizePending (detail: Deferred / Infeasible): back off */
    RESIZE_R_IN_PROGRESS,  /* PodResizeInProgress or status.resize InProgress/Proposed */
    RESIZE_R_QOS_MISMATCH, /* status.qosClass differs from the spec's class */
    RESIZE_R_TOO_MANY,     /* more than RESIZE_MAX_CONTAINERS containers */
    RESIZE_R_BAD_QUANTITY, /* a wanted value does not parse */
    RESIZE_R_QOS,          /* refused: the class would change */
};
const char *resize_outcome_name(enum resize_outcome o);
const char *resize_reason_name(enum resize_reason r);

/* Resource slots. */
enum { RESIZE_CPU = 0, RESIZE_MEM = 1 };

/* One container's new values: millicores (cpu) and bytes (memory). */
typedef struct resize_item {
    const char *name; /* borrowed from the pod projection */
    int64_t req[2], lim[2];
    unsigned char set_req[2], set_lim[2]; /* write these */
} resize_item;

enum resize_note_kind {
    RESIZE_N_HELD_RESTART,   /* resizePolicy RestartContainer, restarts not allowed */
    RESIZE_N_NO_CONTAINER,   /* wanted container not in spec.containers */
    RESIZE_N_INIT_CONTAINER, /* wanted container is an init container: never resized */
    RESIZE_N_LIMIT_RAISED,   /* a limit below the new request was raised to it */
    RESIZE_N_LIMIT_FOLLOWS,  /* Guaranteed kept: limit set to the request */
};

typedef struct resize_note {
    enum resize_note_kind kind;
    char container[RESIZE_NAME_MAX + 1];
    char resource[8]; /* "cpu", "memory", "" */
} resize_note;

typedef struct resize_plan {
    enum resize_outcome outcome;
    enum resize_reason reason;
    char detail[256]; /* one line for events and logs: what, which container/resource */
    enum resize_qos qos_before, qos_after;
    size_t nitems;
    resize_item items[RESIZE_MAX_CONTAINERS];
    size_t nnotes;
    int notes_dropped;
    resize_note notes[RESIZE_MAX_NOTES];
} resize_plan;

/* Plan the resize of `pod` (a KPROJ_POD projection) to `want`. `deleting`:
 * the pod has metadata.deletionTimestamp (the projection does not carry it).
 * Never fails: every problem is an outcome with a reason (plan->detail). */
void resize_plan_make(const kproj_obj *pod, int deleting, const resize_want *want, size_t nwant,
                      const resize_opts *opts, resize_plan *plan);

/* Append the patch body for a RESIZE_PATCH plan. uid is used only for
 * RESIZE_MODE_POD_PATCH (NULL/"" = no precondition). Returns 0, -EINVAL (plan
 * has nothing to write or mode NONE), -E2BIG or -ENOMEM. */
int resize_body(const resize_plan *plan, enum resize_mode mode, const char *uid, opbuf *out);
/* Append the request path: ".../pods/NAME/resize" or ".../pods/NAME". */
int resize_path(enum resize_mode mode, const char *ns, const char *name, opbuf *out);

/* ---- following a resize ------------------------------------------------------------------ */

/* What the pod says now, read from its JSON (watch object or GET). */
typedef struct resize_obs {
    char uid[64];
    int deleting;
    int running;
    char pending[32];            /* PodResizePending reason, "" */
    char alpha_status[32];       /* status.resize (1.27-1.32), "" */
    int in_progress;             /* PodResizeInProgress True */
    char in_progress_reason[32]; /* its reason ("Error" on 1.33+ failures), "" */
    size_t nstatus;
    struct {
        char name[RESIZE_NAME_MAX + 1];
        int64_t req[2], lim[2];
        unsigned char has_req[2], has_lim[2];
    } status[RESIZE_MAX_CONTAINERS]; /* status.containerStatuses[].resources */
} resize_obs;

/* Parse a pod object (cJSON) into an observation. Returns 0 or -EINVAL (not an
 * object). Unparseable quantities count as absent. */
int resize_observe(const cJSON *pod, resize_obs *out);
/* The same from a KPROJ_POD projection (what the informer keeps): statuses
 * come in spec order, one per spec container (without values when it has no
 * status). Returns 0 or -EINVAL (not a pod projection). */
int resize_observe_pod(const kproj_obj *pod, resize_obs *out);

enum resize_state {
    RESIZE_ST_SENT = 0, /* PATCH sent, no answer yet */
    RESIZE_ST_ACCEPTED, /* 2xx; the kubelet has not reported yet */
    RESIZE_ST_IN_PROGRESS,
    RESIZE_ST_DEFERRED,
    RESIZE_ST_DONE,     /* status resources match the targets */
    RESIZE_ST_RETRY,    /* the PATCH failed transiently: plan and send again */
    RESIZE_ST_FALLBACK, /* give up: use the configured strategy */
    RESIZE_ST_GONE,     /* the pod is gone, replaced or terminating */
};
const char *resize_state_name(enum resize_state s);

enum resize_action {
    RESIZE_ACT_WAIT = 0, /* observe again later */
    RESIZE_ACT_DONE,     /* finished */
    RESIZE_ACT_RETRY,    /* the PATCH failed transiently (409, 429, 5xx, transport): plan again */
    RESIZE_ACT_FALLBACK, /* use the configured strategy (detail says why) */
    RESIZE_ACT_UNSUPPORTED, /* the server rejects this mode: stop using it, then fall back */
    RESIZE_ACT_GONE,        /* the pod is gone or replaced: forget it */
};
const char *resize_action_name(enum resize_action a);

typedef struct resize_track {
    enum resize_state state;
    enum resize_mode mode;
    char uid[64];
    uint64_t sent_ms, accepted_ms, deferred_since_ms;
    uint64_t deferred_ms; /* Deferred longer than this → fallback (default 10 min) */
    uint64_t stall_ms; /* not done this long after acceptance (Deferred aside) → fallback (5 min) */
    size_t nitems;
    struct {
        char name[RESIZE_NAME_MAX + 1];
        int64_t req[2], lim[2];
        unsigned char set_req[2], set_lim[2];
    } items[RESIZE_MAX_CONTAINERS];
    char detail[256]; /* why the last FALLBACK / UNSUPPORTED / RETRY / GONE */
} resize_track;

/* Start following `plan` (RESIZE_PATCH) sent at now_ms on `pod_uid` with `mode`. */
void resize_track_init(resize_track *t, const resize_plan *plan, enum resize_mode mode,
                       const char *pod_uid, uint64_t now_ms);
/* The PATCH answered: http_status (0 = transport error) and its Status for
 * non-2xx (may be NULL):
 *   2xx → WAIT (ACCEPTED);
 *   404 NotFound Status → GONE; 404 without a Status (no such route) or 405 →
 *   UNSUPPORTED; 422 "may not change fields other than" (pod PATCH with the
 *   gate off) → UNSUPPORTED; 409/422 about metadata.uid (pod replaced) → GONE;
 *   409 other, 429, 5xx, 0 → RETRY; any other 4xx (403 RBAC, 422 validation
 *   such as a QoS change) → FALLBACK. t->detail says why. */
enum resize_action resize_track_sent(resize_track *t, long http_status, const kstatus *st,
                                     uint64_t now_ms);
/* A new observation of the pod (NULL = none: only check the deadlines, e.g.
 * from a periodic resync); returns what to do. An observation of another uid,
 * or of a pod being deleted, is GONE. */
enum resize_action resize_track_step(resize_track *t, const resize_obs *obs, uint64_t now_ms);

#endif
