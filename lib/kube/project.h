/*
 * kproj: small projections of the objects optipod watches.
 *
 * The cache never keeps whole JSON trees (a Deployment with its managedFields
 * is 5-10 KiB as cJSON); it keeps just what the controller reads:
 *  - workloads (Deployment, StatefulSet, DaemonSet): identity, labels, the
 *    optipod.io/ annotations, selector, replicas, containers and init
 *    containers (name, image, requests/limits as quantity strings, resizePolicy) and
 *    owner references;
 *  - ReplicaSets: identity, labels, the optipod.io/ annotations and owner
 *    references only (they map a pod to its Deployment; nothing reads their
 *    template);
 *  - pods: identity (no labels: nothing reads them), owners (the controller
 *    ref), node, phase, qosClass,
 *    containers' requests/limits and resizePolicy, the last termination of
 *    each container when it was OOMKilled (and when), the in-place resize
 *    state (conditions PodResizePending/PodResizeInProgress with its reason,
 *    status.resize, containerStatuses[].resources, deletionTimestamp set);
 *  - for the rollout gate: a workload's pod template labels, update strategy
 *    and rollout status; a PodDisruptionBudget's selector and budget.
 * managedFields and everything else are dropped.
 *
 * A projection is ONE malloc'd block (struct, arrays and strings packed
 * together, sized exactly by a measuring pass), so it is freed with
 * kproj_free() (= free()) and `size` tells its exact footprint. Strings that
 * are absent are NULL. Projections are immutable once built.
 */
#ifndef OPTIPOD_KUBE_PROJECT_H
#define OPTIPOD_KUBE_PROJECT_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

enum kproj_kind {
    KPROJ_UNKNOWN,
    KPROJ_DEPLOYMENT,
    KPROJ_STATEFULSET,
    KPROJ_DAEMONSET,
    KPROJ_REPLICASET,
    KPROJ_POD,
    /* Metadata-only projections (identity, labels, optipod.io/ annotations,
     * owners); what else matters rides in `ext` (see kproj_extend_fn). */
    KPROJ_NAMESPACE,
    KPROJ_HPA,
    KPROJ_POLICY,
    /* policy/v1 PodDisruptionBudget: identity, generation, selector (with
     * has_selector) and the budget's status (rollout below). */
    KPROJ_PDB,
};

typedef struct kproj_kv {
    const char *key;
    const char *value;
} kproj_kv;

typedef struct kproj_owner {
    const char *kind, *name, *uid;
    int controller; /* ownerReferences[].controller == true */
} kproj_owner;

/* A selector requirement: key, operator (In, NotIn, Exists, DoesNotExist) and
 * values joined by ','. */
typedef struct kproj_expr {
    const char *key, *op, *values;
} kproj_expr;

typedef struct kproj_container {
    const char *name;
    const char *image;  /* a pod's containers' statuses name it (test/support/nodesim) */
    kproj_kv *requests; /* resource name → quantity string ("250m", "512Mi") */
    kproj_kv *limits;
    kproj_kv *resize_policy; /* resourceName → restartPolicy */
    /* pods only: status.containerStatuses[].resources, what the kubelet
     * actually applied (followed after an in-place resize) */
    kproj_kv *status_requests, *status_limits;
    uint16_t nrequests, nlimits, nresize_policy, nstatus_requests, nstatus_limits;
    /* pods only, from status.containerStatuses[] */
    int32_t restart_count;
    const char *oom_killed_at; /* lastState.terminated.finishedAt when reason was OOMKilled */
} kproj_container;

/* Rollout state from spec and status; counts absent from the object are 0
 * (the API server omits zero values). Meaning per kind:
 *  - Deployment, StatefulSet: status.replicas, updatedReplicas, readyReplicas,
 *    availableReplicas;
 *  - DaemonSet: desiredNumberScheduled, updatedNumberScheduled, numberReady,
 *    numberAvailable in the same four slots;
 *  - PodDisruptionBudget: disruptions_allowed (status.disruptionsAllowed). */
typedef struct kproj_rollout {
    int64_t observed_generation; /* status.observedGeneration, 0 when absent */
    int32_t replicas, updated, ready, available;
    int32_t disruptions_allowed;
    int32_t progress_deadline_s;  /* spec.progressDeadlineSeconds, -1 when absent */
    const char *update_strategy;  /* spec.updateStrategy.type (OnDelete, RollingUpdate), or NULL */
    const char *current_revision; /* StatefulSet status.currentRevision, or NULL */
    const char *update_revision;  /* StatefulSet status.updateRevision, or NULL */
    kproj_kv *template_labels;    /* spec.template.metadata.labels */
    uint16_t ntemplate_labels;
    uint16_t has_selector; /* spec.selector is an object (a PDB's null selector selects nothing) */
    uint16_t paused;       /* Deployment spec.paused is true: a template change rolls nothing */
} kproj_rollout;

typedef struct kproj_obj {
    size_t size; /* bytes of this block */
    enum kproj_kind kind;
    const char *ns, *name, *uid, *rv;
    int64_t generation;
    kproj_kv *labels;
    kproj_kv *annotations; /* only keys starting with "optipod.io/" */
    kproj_owner *owners;
    kproj_container *containers;
    kproj_container *init_containers;
    uint16_t nlabels, nannotations, nowners, ncontainers, ninit_containers;
    /* workloads */
    int32_t replicas;   /* -1 when absent (DaemonSet) */
    kproj_kv *selector; /* matchLabels */
    kproj_expr *selector_exprs;
    uint16_t nselector, nselector_exprs;
    /* pods */
    const char *node, *phase, *qos_class;
    const char *resize_status;  /* status.resize (1.27-1.32 alpha field), or NULL */
    const char *resize_pending; /* PodResizePending reason (Deferred, Infeasible), or NULL */
    int resize_in_progress;     /* PodResizeInProgress condition is True */
    int deleting;               /* metadata.deletionTimestamp is set */
    const char *resize_in_progress_reason; /* its reason ("Error" on 1.33+ failures), or NULL */
    /* workloads and PDBs */
    kproj_rollout rollout;
    /* An owned value attached by a kproj_extend_fn (a parsed policy, an HPA's
     * target); freed by kproj_free() through ext_free. NULL when none. */
    void *ext;
    void (*ext_free)(void *ext);
} kproj_obj;

/* A hook that attaches a custom value to a fresh projection: set o->ext and
 * o->ext_free from the JSON object (the only moment it is at hand). Returns 0,
 * or a negative errno to skip the object (o is then freed by the caller). */
typedef int (*kproj_extend_fn)(const cJSON *obj, kproj_obj *o, void *ud);

/* "deployments" → KPROJ_DEPLOYMENT, ...; KPROJ_UNKNOWN for others. */
enum kproj_kind kproj_kind_for_resource(const char *resource);
const char *kproj_kind_name(enum kproj_kind k);

/* Project `obj` (a list item or watch object; the kind comes from the resource
 * watched since list items carry none). Objects are projected from their JSON
 * bytes only (kube/projscan.h: kprojs_from_bytes()); this is for callers that
 * hold a tree (the CLI, an apply's answer): it prints obj and projects that.
 * Returns 0, -EINVAL (not an object, no metadata.name, unknown kind, an
 * over-long array) or -ENOMEM. */
int kproj_from_json(const cJSON *obj, enum kproj_kind kind, kproj_obj **out);
/* Frees the block and, through ext_free, the attached value. NULL is allowed. */
void kproj_free(kproj_obj *o);

/* Cache key "namespace/name" (or "name" when cluster-scoped) into buf;
 * returns 0 or -E2BIG. */
int kproj_key(char *buf, size_t cap, const char *ns, const char *name);

const char *kproj_kv_get(const kproj_kv *kv, size_t n, const char *key);
/* The ownerReference with controller=true, or NULL. */
const kproj_owner *kproj_controller(const kproj_obj *o);
const kproj_container *kproj_container_get(const kproj_obj *o, const char *name);

#endif
