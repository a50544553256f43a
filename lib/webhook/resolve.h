/*
 * wresolve: from an admitted pod to the workload that owns it and the
 * resources optipod wants for its containers, over the informer caches only
 * (never an API call in the request path).
 *
 *   pod's controller ownerReference
 *     ReplicaSet  → the ReplicaSet in the cache → its controller Deployment
 *                   (a ReplicaSet without a controller is the workload itself)
 *     StatefulSet, DaemonSet → directly
 *   each hop checks the cached object's uid against the reference's uid, so a
 *   name re-used by a newer object is not mistaken for the old one.
 *
 * The workload must carry optipod.io/webhook-enabled: "true" and
 * optipod.io/strategy: "webhook"; its wants come from the annotations
 * optipod.io/{cpu,memory}-{request,limit}.<container>. A workload released
 * with optipod.io/managed: "false" gets nothing, a container released with
 * optipod.io/managed.<container>: "false" keeps its own values (record.h).
 *
 * Anything missing or odd is NOT an error but a "leave the pod alone"
 * outcome with a reason slug (for logs and metrics) and a sentence.
 *
 * Ownership: nothing is allocated. The result's strings point into the
 * cached projections, so they are valid until the caches change: use them
 * within the same loop turn (the webhook answers synchronously).
 */
#ifndef OPTIPOD_WEBHOOK_RESOLVE_H
#define OPTIPOD_WEBHOOK_RESOLVE_H

#include "kube/cache.h"
#include "util/err.h"
#include "webhook/review.h"

#define WRESOLVE_ANN_PREFIX   "optipod.io/"
#define WRESOLVE_ANN_ENABLED  "optipod.io/webhook-enabled"
#define WRESOLVE_ANN_STRATEGY "optipod.io/strategy"

/* The informer caches consulted; any may be NULL (that kind is then unknown). */
typedef struct wresolve_caches {
    const kcache *replicasets, *deployments, *statefulsets, *daemonsets;
} wresolve_caches;

typedef struct wresolve_result {
    const kproj_obj *workload; /* NULL unless resolved */
    admrev_want wants[ADMREV_MAX_CONTAINERS];
    size_t nwants;
} wresolve_result;

enum wresolve_rc {
    WRESOLVE_OK = 0,   /* workload found, enabled, nwants >= 1 */
    WRESOLVE_SKIP = 1, /* leave the pod unchanged: *reason and err say why */
};

/*
 * Resolve the owner (kind/name/uid from the pod's controller reference; any
 * may be NULL) in namespace ns. Returns WRESOLVE_OK or WRESOLVE_SKIP with
 * *reason one of "no-owner", "owner-kind", "unknown-owner", "owner-uid",
 * "not-enabled", "strategy", "released", "no-annotations", "bad-annotation".
 */
int wresolve_pod(const wresolve_caches *c, const char *ns, const char *owner_kind,
                 const char *owner_name, const char *owner_uid, wresolve_result *out,
                 const char **reason, operr *err);

/* Read the wants of one workload's annotations (no enablement check).
 * Returns WRESOLVE_OK, or WRESOLVE_SKIP ("no-annotations", "bad-annotation"). */
int wresolve_wants(const kproj_obj *workload, wresolve_result *out, const char **reason,
                   operr *err);

#endif
