/*
 * rollout: the gate in front of every write of optipod's that rolls pods (the
 * ssa strategy's pod template write, the webhook strategy's restart), as a
 * pure function over projections.
 *
 * rollout_gate() answers GO, or WAIT with a reason and a retry delay, when
 *  - another optipod-initiated rollout is still in progress (one at a time,
 *    cluster-wide): the slot names the workload last rolled, and is released
 *    once that workload's status shows the rollout complete
 *    (rollout_complete()), once it is gone, or once the rollout has taken
 *    longer than its bound (rollout_bound_ms(); `stuck` is then set so the
 *    caller warns: one stuck workload cannot stop all others), or once its
 *    Deployment is paused (its owner paces that rollout now);
 *  - the workload is a paused Deployment (spec.paused: a template change
 *    rolls nothing until it is resumed, and the resume is its owner's);
 *  - the workload itself is not fully available or is mid-rollout;
 *  - a PodDisruptionBudget in its namespace selecting its pod template labels
 *    allows no disruption (status.disruptionsAllowed < 1) or has a status
 *    older than its spec (observedGeneration < generation). A PDB with a null
 *    selector selects nothing; an empty one selects every pod.
 * A workload whose updateStrategy is OnDelete (StatefulSet, DaemonSet) is not
 * rolled by a template change: rollout_rolls_pods() says 0 and the caller
 * neither gates nor takes the slot for it.
 *
 * The slot is the caller's state: rollout_gate() only reads it and says, in
 * out->release, that it is free again (the caller then clears it). A slot
 * with generation 0 is reserved by a write still in flight.
 *
 * rollout_pod_differs() tells whether a running pod still has other values than
 * the recommendation (the webhook strategy restarts only then).
 *
 * Ownership: plain values; rollout_in borrows its projections. Allocation is
 * limited to temporary selector objects for matching and the record that
 * rollout_slot_to_json() returns. No I/O, no clock.
 */
#ifndef OPTIPOD_CONTROLLER_ROLLOUT_H
#define OPTIPOD_CONTROLLER_ROLLOUT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "apply/ssa.h"
#include "kube/project.h"

#define ROLLOUT_KEY_MAX    600
#define ROLLOUT_REASON_MAX 512
#define ROLLOUT_BOUND_MS   (10 * 60 * 1000) /* a rollout without progressDeadlineSeconds */
#define ROLLOUT_RETRY_MS   (30 * 1000)      /* retry after a PDB or an unavailable workload */
#define ROLLOUT_POLL_MS    (10 * 1000)      /* retry while another rollout runs */

/* The one optipod-initiated rollout in progress. key "" = free. */
typedef struct rollout_slot {
    char key[ROLLOUT_KEY_MAX]; /* "Kind/namespace/name" */
    int64_t generation;        /* the workload's generation our write produced; 0 = in flight */
    int64_t started_ms;        /* wall clock when the write was answered */
    int64_t bound_ms;          /* release the slot after this long */
} rollout_slot;

typedef struct rollout_in {
    const char *key;                /* the workload to roll, "Kind/namespace/name" */
    const kproj_obj *workload;      /* its projection */
    const rollout_slot *slot;       /* may be NULL (free) */
    const kproj_obj *slot_workload; /* the slot holder's projection; NULL when gone */
    const kproj_obj *const *pdbs;   /* PDBs of the workload's namespace */
    size_t npdbs;
    int64_t now_ms;
} rollout_in;

enum rollout_verdict { ROLLOUT_GO, ROLLOUT_WAIT };

enum rollout_release {
    ROLLOUT_KEEP,      /* the slot stays as it is */
    ROLLOUT_COMPLETED, /* the holder's rollout completed */
    ROLLOUT_GONE,      /* the holder was deleted */
    ROLLOUT_STUCK,     /* the holder exceeded its bound: release and warn */
    ROLLOUT_PAUSED,    /* the holder's Deployment was paused mid-rollout */
};

typedef struct rollout_out {
    enum rollout_verdict verdict;
    enum rollout_release release;
    uint64_t retry_ms;               /* WAIT: ask again after this long */
    const kproj_obj *pdb;            /* WAIT because of this PDB, or NULL */
    char reason[ROLLOUT_REASON_MAX]; /* WAIT: why */
    char stuck[ROLLOUT_REASON_MAX];  /* release STUCK: which rollout, for the Warning */
} rollout_out;

/* Does a template change roll this workload's pods? 0 for updateStrategy
 * OnDelete and for non-workloads. */
int rollout_rolls_pods(const kproj_obj *w);

/* Is the workload's latest rollout complete and every replica available, at
 * generation >= min_generation? 1 yes; 0 no, with why (cap bytes; may be 0).
 *  Deployment: observedGeneration >= generation, spec replicas (1 when absent)
 *   == status.replicas == updatedReplicas == availableReplicas (no old pods);
 *  StatefulSet: observedGeneration >= generation, updateRevision ==
 *   currentRevision, readyReplicas == replicas == spec replicas;
 *  DaemonSet: observedGeneration >= generation, updatedNumberScheduled ==
 *   desiredNumberScheduled == numberAvailable. */
int rollout_complete(const kproj_obj *w, int64_t min_generation, char *why, size_t cap);

/* How long a rollout of w may take before its slot is released:
 * progressDeadlineSeconds (Deployment) when set, else ROLLOUT_BOUND_MS. */
int64_t rollout_bound_ms(const kproj_obj *w);

/* Does the PDB select the workload's pods (its template labels)? 1/0. */
int rollout_pdb_selects(const kproj_obj *pdb, const kproj_obj *w);

/* The gate. Returns 0, or -EINVAL (no workload or key). */
int rollout_gate(const rollout_in *in, rollout_out *out);

/* Does a pod run with values other than `want` (the recommendation; init
 * containers and empty values are not compared, limits only with
 * allow_limits)? Values are compared as quantities ("1" == "1000m"); a value
 * missing from the pod, or unreadable, differs. 1/0. */
int rollout_pod_differs(const kproj_obj *pod, const ssa_container *want, size_t nwant,
                        int allow_limits);

/* Did this pod start without the webhook's values? 1 when, for a container
 * whose recommended request differs from the workload's pod template, the
 * pod runs exactly the template's request (both absent counts as equal):
 * what the API server admits when no webhook injected anything. A pod running
 * an older recommendation is not counted. Compared as quantities. */
int rollout_pod_uninjected(const kproj_obj *pod, const kproj_obj *w, const ssa_container *want,
                           size_t nwant);

const char *rollout_release_name(enum rollout_release r);

/* ---- the slot on record (a policy's status.rollout) ------------------------------------------
 * The slot outlives the process that took it: it is written into the status
 * of the policy whose workload holds it, so that a restarted or newly elected
 * controller follows that rollout instead of starting a second one. */

/* The slot as {"kind","namespace","name","generation","startedAt"} (caller
 * deletes); NULL for a free slot, one whose write is still in flight
 * (generation 0), a malformed key or no memory. */
cJSON *rollout_slot_to_json(const rollout_slot *s);

/* A status.rollout record back into a slot, its bound left 0 for the caller
 * to set from the workload (rollout_bound_ms()). Returns 0, or -EINVAL with
 * why (cap bytes) naming the field that is missing or wrong. */
int rollout_slot_from_json(const cJSON *rec, rollout_slot *out, char *why, size_t cap);

#endif
