/*
 * ssa: the Server-Side Apply bodies optipod sends, and the decisions behind
 * them. Pure: no I/O; the reconcile loop sends the body with
 * PATCH ...?fieldManager=optipod (application/apply-patch+yaml).
 *
 * Resources body (strategy ssa), compact JSON:
 *   {"apiVersion":"apps/v1","kind":"Deployment",
 *    "metadata":{"name":N,"namespace":NS,"uid":UID},
 *    "spec":{"template":{"spec":{"containers":[
 *      {"name":C,"resources":{"requests":{"cpu":..,"memory":..},"limits":{..}}}]}}}}
 * The uid makes the server answer 409 instead of re-creating a deleted
 * object. Only containers present in the live object are written (a container
 * Git removed is never re-created); the others are reported as skipped.
 * Limits are written only when the request allows them.
 *
 * Releases. Omitting from an apply a field that optipod owned releases it, and
 * a released field that no other manager owns is DELETED by the server
 * (fixture container-released-by-optipod: sidecar lost its requests). So for
 * every resource field optipod owns (read from the live managedFields) that the
 * new body would not carry — a container named in `release`, a container or
 * field no longer recommended, limits no longer allowed — the builder decides:
 *   - another manager owns it too: omit it (SSA_RELEASED, the value stays);
 *   - only optipod owns it: keep writing the live value (SSA_KEPT) unless the
 *     caller set allow_delete, then omit it (SSA_DELETED: the value goes);
 *   - a container with no live value for the field: omit (nothing to delete).
 * A container is never deleted from the pod template by omission: if no other
 * manager holds anything in it, it stays in the body with its key at least.
 * Entries for containers the live spec no longer has (the kubernetes#128102
 * pin) are always released. Each decision is reported with its reason.
 *
 * Annotations body (strategy webhook): metadata.annotations only, no spec:
 *   optipod.io/cpu-request.<c>, optipod.io/memory-request.<c>, and
 *   optipod.io/cpu-limit.<c>, optipod.io/memory-limit.<c> when limits are
 *   allowed, plus optipod.io/strategy: webhook, optipod.io/webhook-enabled: "true".
 * optipod is the only writer of these keys, so dropping one (a container no
 * longer recommended) deletes it, which is what is wanted. This body releases
 * every resource field optipod wrote under the ssa strategy, so with `mf` set
 * the same release rules apply: fields only optipod owns are kept (a spec with
 * just those values is added) unless allow_delete.
 *
 * Ownership: the builders append to the caller's opbuf; the request borrows
 * everything it points to; the report is a plain value (no allocation).
 */
#ifndef OPTIPOD_APPLY_SSA_H
#define OPTIPOD_APPLY_SSA_H

#include <stddef.h>

#include "apply/fields.h"
#include "kube/project.h"
#include "util/buf.h"
#include "util/err.h"

#define SSA_MAX_CONTAINERS 64
#define SSA_MAX_NOTES      64
#define SSA_REASON_MAX     256

/* One container's desired values: quantity strings, NULL when not set. */
typedef struct ssa_container {
    const char *name;
    int init; /* an init container (spec.template.spec.initContainers) */
    const char *cpu_request, *memory_request;
    const char *cpu_limit, *memory_limit;
} ssa_container;

typedef struct ssa_request {
    const kproj_obj *live;           /* the live workload (identity and containers) */
    const mfields *mf;               /* its managedFields; NULL = optipod owns nothing yet */
    const char *manager;             /* NULL = MFIELDS_OPTIPOD */
    const ssa_container *containers; /* desired values */
    size_t ncontainers;
    int allow_limits;           /* write limits */
    const char *const *release; /* containers to stop writing */
    size_t nrelease;
    int allow_delete; /* let a release delete values only optipod owns */
} ssa_request;

enum ssa_action {
    SSA_SKIPPED,  /* desired container not in the live object: not written */
    SSA_RELEASED, /* omitted; another manager keeps the value */
    SSA_KEPT,     /* would have been released, but only optipod owns it: live value kept */
    SSA_DELETED,  /* omitted with allow_delete: the server deletes the value */
    SSA_UNPINNED, /* optipod's entries for a container the live spec lacks: released */
};

typedef struct ssa_note {
    enum ssa_action action;
    char container[MFIELDS_NAME_MAX + 1];
    char field[64]; /* "requests.cpu"; "" for the whole container */
    char reason[SSA_REASON_MAX];
} ssa_note;

typedef struct ssa_report {
    int napplied; /* containers written to the body */
    int nnotes;
    int notes_dropped;
    int nkept, ndeleted, nskipped; /* counts by action */
    ssa_note notes[SSA_MAX_NOTES];
} ssa_report;

const char *ssa_action_name(enum ssa_action a);

/* A desired value that differs from the live one. */
typedef struct ssa_change {
    char container[MFIELDS_NAME_MAX + 1];
    int init;
    char field[64];        /* "requests.cpu" */
    char path[400];        /* as in managedFields and 409 causes: conflict_add_fields() targets */
    const char *from, *to; /* live value (NULL when unset) and desired value; borrowed */
} ssa_change;

/* The fields ssa_build would change: containers present in the live object
 * and not released, limits only when allowed; values compared as quantities
 * ("0.5Gi" equals "512Mi"), as strings when one does not parse. Fills up to
 * max and returns how many there are (0: the workload is unchanged). */
size_t ssa_changes(const ssa_request *rq, ssa_change *out, size_t max);

/* Two resource values are the same: as quantities ("0.5Gi" equals "512Mi"),
 * as strings when one does not parse; NULL (unset) equals only NULL. */
int ssa_same_quantity(const char *a, const char *b);

/* apiVersion for a workload kind ("apps/v1"), NULL for kinds SSA cannot patch. */
const char *ssa_api_version(enum kproj_kind k);

/* Build the resources apply body into `body` and explain it in `rep` (may be
 * NULL). Returns 0, -EINVAL (no live object, a kind that is not a workload, a
 * container without a name), -E2BIG (body cap) or -ENOMEM. A body with no
 * container at all is still valid (it releases everything it may). */
int ssa_build(const ssa_request *rq, opbuf *body, ssa_report *rep, operr *err);

/* Build the webhook strategy's annotation-only apply body. Containers not in
 * the live object are skipped, as are containers whose annotation key would
 * exceed the 63-character name limit (the server would reject the apply). */
int ssa_build_annotations(const ssa_request *rq, opbuf *body, ssa_report *rep, operr *err);

#endif
