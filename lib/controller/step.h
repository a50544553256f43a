/*
 * ctlstep: what a reconcile does next, as one pure function in the shape of
 * controller-runtime's Reconcile: given the facts gathered for a job so far,
 * ctlstep_next() returns exactly ONE step:
 *   END          the outcome, its reason, and when to look again
 *   FETCH_USAGE  ask the metrics provider (the namespace's usage is stale)
 *   RESIZE       resize one running pod in place
 *   ANNOTATE     apply the optipod.io/ annotations (publish, or release all)
 *   READ_LIVE    GET the live object (the ssa strategy)
 *   DRY_RUN      the unforced dryRun=All apply that finds conflicts
 *   WRITE        the strategic-merge PATCH of the values
 *   RESTART      the webhook strategy's PATCH of optipod.io/restartedAt
 * The executor (ctl_job.c) gathers the facts, performs the step, records what
 * came back into the facts and asks again, until END. Every rule of a
 * reconcile lives here: which policy mode writes what, the change threshold's
 * verdict (ctlrec), resize before the strategy, the once-per-period rule, the
 * minimum interval between two writes of a workload, the rollout gate's
 * verdict, reclaims and the conflict loop, another process writing as
 * optipod (DuplicateController), conflicts and forceConflicts, the webhook
 * restart's conditions, and every requeue.
 *
 * A workload is written at most once per ctl_facts.min_write_ms whatever the
 * cause: the annotations apply (publish or release), the ssa write, the
 * webhook strategy's restart, and an in-place resize of one of its pods
 * (counted per workload: its pods are resized one per interval at most). A
 * write that would come sooner ends the job, requeued when the interval ends.
 *
 * A step may carry side effects for the executor to apply with it: an Event,
 * the rollout slot taken or freed, and what to remember of the workload
 * (ctlstep_mem, the typed per-workload memory).
 *
 * Ownership: ctl_facts borrows everything it points to; ctl_step is a plain
 * value whose pointers (names, the new loop state) point into the facts. No
 * I/O, no clock (time is a fact), no allocation.
 */
#ifndef OPTIPOD_CONTROLLER_STEP_H
#define OPTIPOD_CONTROLLER_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "apply/conflict.h"
#include "apply/resize.h"
#include "apply/ssa.h"
#include "controller/reconcile.h"
#include "controller/rollout.h"
#include "kube/events.h"
#include "kube/project.h"

#define CTLSTEP_NO_REQUEUE UINT64_MAX
#define CTLSTEP_NOTE_MAX   1024 /* an Event note, as kevents caps it */
#define CTLSTEP_PROBE_MS   1000 /* waiting for the first pod-PATCH resize's answer */
#define CTLSTEP_EVENTS     3

enum ctlstep_kind {
    CTLSTEP_END,
    CTLSTEP_FETCH_USAGE,
    CTLSTEP_RESIZE,
    CTLSTEP_ANNOTATE,
    CTLSTEP_READ_LIVE,
    CTLSTEP_DRY_RUN,
    CTLSTEP_WRITE,
    CTLSTEP_RESTART,
};

/* One value optipod wrote: container/field = value. */
typedef struct ctlstep_written {
    char container[64]; /* a DNS label (63) */
    int init;
    char field[16]; /* "requests.cpu" */
    char value[CTLREC_QTY];
} ctlstep_written;

/* What optipod remembers of one workload between reconciles, as far as the
 * next step depends on it (the executor keeps it, sized by its containers). */
typedef struct ctlstep_mem {
    const ctlstep_written *written; /* our last resource write */
    size_t nwritten;
    int reclaim_counted;         /* the take-back of that write has been counted */
    uint64_t last_apply_ms;      /* monotonic time of our last write that rolls pods; 0 never */
    uint64_t last_write_ms;      /* ... of our last write of it or its pods, any cause; 0 never */
    uint64_t duplicate_until_ms; /* DuplicateController: left alone until then; 0 none */
    const char *released_rv;     /* annotations released at this resourceVersion ("" none) */
    const char *ann_base_rv;     /* annotations last written over this resourceVersion ... */
    uint64_t ann_hash;           /* ... with this body */
    int64_t restart_gen;         /* generation our last restart produced, 0 none */
    int64_t uninjected_warned;   /* WebhookNotInjecting told for this restart_gen */
    int loop_stopped;            /* GitOpsConflictLoop */
    const conflict_loop *loop;   /* loop detection's state; NULL = never seen */
} ctlstep_mem;

/* A request's answer. */
typedef struct ctlstep_reply {
    int done;         /* answered, or could not be sent */
    int sent;         /* 0: could not be sent (msg says why) */
    long http_status; /* 0: no response */
    const char *msg;  /* the Status message or the transport error */
} ctlstep_reply;

enum ctlstep_usage {
    CTLSTEP_USAGE_NONE,  /* no metrics provider: decide without usage */
    CTLSTEP_USAGE_STALE, /* missing or older than the TTL: fetch it */
    CTLSTEP_USAGE_READY, /* answered (rec holds the decision with it) */
};

/* In-place resize (Auto with updateStrategy.allowInPlaceResize). */
typedef struct ctlstep_resize {
    int mode_ok; /* the server can resize in place (discovery, not turned off) */
    /* the resize this workload follows, stepped with what the pod shows */
    int following;
    const char *follow_pod;
    const char *follow_state; /* resize_state_name() */
    uint64_t follow_due_ms;   /* its next deadline, from now */
    /* the running pods, planned */
    const char *pod; /* the first pod to resize, NULL none */
    int npods, ndone;
    int probe_busy;   /* a first pod-PATCH resize is in flight: its answer decides */
    const char *what; /* the resize sent ("app: requests.cpu=500m") */
    /* the PATCH's answer */
    int answered;
    enum resize_action action; /* resize_track_sent() */
    const char *detail;
} ctlstep_resize;

/* The workload's pods, against the recommendation (the webhook restart). */
typedef struct ctlstep_pods {
    int counted;
    int npods, ndiffer, nuninjected;
    const char *first; /* the first pod that differs */
} ctlstep_pods;

/* The ssa strategy's read of the live object. */
typedef struct ctlstep_live {
    const kproj_obj *obj;      /* NULL: unreadable */
    const char *unreadable;    /* why, when obj is NULL */
    const ssa_change *changes; /* the fields that would change */
    size_t nchanges;
    const char *changed; /* "c/f=v;..." of those changes */
    /* per change, a manager other than optipod owning the field (managedFields), NULL none */
    const char *const *owners;
    /* of the fields optipod last wrote (ctlstep_mem.written), those the live
     * object's managedFields give to manager optipod, with their live values */
    const ctlstep_written *ours;
    size_t nours;
} ctlstep_live;

typedef struct ctl_facts {
    const char *key;           /* "Kind/namespace/name" */
    const kproj_obj *workload; /* from the cache; NULL: gone */
    int dry_run;
    uint64_t now_ms; /* monotonic */
    int64_t wall_ms;
    uint64_t min_write_ms; /* --min-write-interval; 0 none */
    const ctlstep_mem *mem;

    /* the decision (ctlrec): rec NULL until matched; decided once every fact
     * it needs (usage) is in */
    const ctlrec_out *rec;
    int decided;
    int policy_gone;  /* the winner left the cache while a request was out */
    const char *pkey; /* the winner "ns/name" */
    uint64_t period_ms;
    enum ctlstep_usage usage;

    /* annotations: does the live set differ, and the body's hash */
    int ann_differ;
    uint64_t ann_hash;
    ctlstep_reply ann;

    ctlstep_resize rz;
    ctlstep_pods pods;
    const char *webhook_hint; /* why the webhook may not inject (namespace label) */
    ctlstep_reply restart;

    /* the rollout gate: rollout_gate()'s verdict, NULL when not gathered */
    const rollout_out *gate;

    ctlstep_reply live_reply;
    ctlstep_live live;
    conflict_loop_cfg loop_cfg;

    ctlstep_reply dry; /* the dry-run apply's answer */
    const conflict_set *cs;
    /* field managers that take fields back like a GitOps controller, beyond
     * the known ones (ctl_opts.gitops_managers): comma-separated, NULL none */
    const char *gitops_managers;
    ctlstep_reply write;
} ctl_facts;

/* Side effects a step carries. */
enum {
    CTLSTEP_FX_SLOT_TAKE = 1 << 0,    /* reserve the rollout slot for this write */
    CTLSTEP_FX_SLOT_FREE = 1 << 1,    /* the gate released the slot's holder */
    CTLSTEP_FX_REMEMBER_ANN = 1 << 2, /* mem: ann_hash/ann_base_rv = this body, this rv */
    CTLSTEP_FX_RELEASED = 1 << 3,     /* mem: released_rv = the rv released at */
    CTLSTEP_FX_WRITTEN = 1 << 4,      /* mem: written = the changes, last_apply_ms = now */
    CTLSTEP_FX_RESTARTED = 1 << 5,    /* mem: last_apply_ms = now, restart_gen = the slot's */
    CTLSTEP_FX_WARNED = 1 << 6,       /* mem: uninjected_warned = restart_gen */
    CTLSTEP_FX_LOOP = 1 << 7,         /* mem: loop = step.loop, loop_stopped = step.loop_stopped */
    CTLSTEP_FX_RECLAIM_COUNTED = 1 << 8, /* mem: reclaim_counted = 1 */
    CTLSTEP_FX_CONFLICT = 1 << 9,        /* status: conflict = step.conflict ("" clears) */
    CTLSTEP_FX_DEFERRED = 1 << 10,       /* the job waits at the rollout gate */
    CTLSTEP_FX_LOOP_ENTERED = 1 << 11,   /* this step stopped the workload (a count) */
    CTLSTEP_FX_WROTE = 1 << 12,          /* mem: last_write_ms = now (a write succeeded) */
    /* mem: written = live.ours (what optipod's name holds now), duplicate_until_ms = now +
     * period; a count */
    CTLSTEP_FX_DUPLICATE = 1 << 13,
    CTLSTEP_FX_DUPLICATE_OVER = 1 << 14, /* mem: duplicate_until_ms = 0 */
    CTLSTEP_FX_TAKEN_OVER = 1 << 15,     /* status: taken_over = step.taken_over */
};

typedef struct ctl_step {
    enum ctlstep_kind kind;
    /* END */
    enum ctlrec_outcome outcome;
    char reason[CTLREC_REASON];
    uint64_t requeue_ms; /* CTLSTEP_NO_REQUEUE; an ERROR is retried with backoff */
    /* ANNOTATE: remove every optipod.io/ annotation; WRITE: forced */
    int release, force;
    unsigned fx;
    /* Events to emit with the step, about the workload (or the rollout
     * slot's holder when about_holder) */
    struct ctlstep_event {
        kevents_type type;
        char reason[64];
        char action[16];
        int about_holder;
        int with_uid; /* regarding carries the workload's uid */
        char note[CTLSTEP_NOTE_MAX];
    } events[CTLSTEP_EVENTS];
    int nevents;
    conflict_loop loop; /* FX_LOOP */
    int loop_stopped;
    char conflict[512]; /* FX_CONFLICT */
    int taken_over;     /* FX_TAKEN_OVER: this write forces over a manager that is not GitOps */
} ctl_step;

/* The next step. Never fails: facts it cannot use end the job in error. */
void ctlstep_next(const ctl_facts *f, ctl_step *out);

const char *ctlstep_kind_name(enum ctlstep_kind k);

#endif
