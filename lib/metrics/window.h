/*
 * mwin: which pods a workload had during its rolling window, as pure
 * functions for the Prometheus provider (and `optipod plan --prometheus`).
 *
 * The caches know a workload's CURRENT pods only. Every rollout replaces
 * them (and optipod's own writes cause rollouts), so asking Prometheus for
 * the current pods forgets the window's history. Two ways find the others:
 *
 *  1. kube-state-metrics owner series, when the namespace has them:
 *     kube_pod_owner{owner_kind="ReplicaSet",owner_name=<rs>} for the pods,
 *     joined with kube_replicaset_owner{owner_kind="Deployment"} for the
 *     ReplicaSets; StatefulSet and DaemonSet pods are owned directly. Exact,
 *     whatever the names (MWIN_OWNERS, "kube-state-metrics").
 *  2. Otherwise the names Kubernetes generates (MWIN_NAMES, "pod-names"):
 *       Deployment   <name>-<pod-template-hash>-<5>
 *       StatefulSet  <name>-<ordinal>
 *       DaemonSet    <name>-<5>
 *     The pod-template-hash is rand.SafeEncodeString of a uint32 in decimal:
 *     each digit maps to one of "456789bcdf" (6 to 10 of them; fewer than 6
 *     means a hash below 100000, 2 in 100000). The 5 random characters come
 *     from "bcdfghjklmnpqrstvwxz2456789" (apimachinery's util/rand: no
 *     vowels, no 0, 1, 3). A dash is in neither alphabet, so `web`'s
 *     pattern never matches `web-api-7d9f8c6b5d-x2k4p` (two more dashes),
 *     and the alphabets keep `web` from a DaemonSet `web-redis` or a bare
 *     pod `web-proxy` (vowels), and from a CronJob `web`'s pods
 *     (web-29000000-...: its Job names are minutes since 1970, starting
 *     with 2). PromQL anchors regex matchers at both ends, and so does
 *     mwin_pod_matches(). Known limit: a Deployment name of 47 characters
 *     or more gets its pod names truncated by Kubernetes (63 characters);
 *     those pods are found through kube-state-metrics or as current pods.
 *
 * The provider always adds the current pods (from owner references) by
 * name, so a pod found neither way is still counted while it runs.
 */
#ifndef OPTIPOD_METRICS_WINDOW_H
#define OPTIPOD_METRICS_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* apimachinery util/rand's alphabet (generateName suffixes). */
#define MWIN_RAND_ALPHABET "bcdfghjklmnpqrstvwxz2456789"
/* The pod-template-hash alphabet (SafeEncodeString of decimal digits). */
#define MWIN_HASH_ALPHABET "456789bcdf"
#define MWIN_HASH_MIN      6
#define MWIN_HASH_MAX      10
#define MWIN_SUFFIX_LEN    5

typedef enum mwin_method {
    MWIN_CURRENT = 0, /* only the pods that run now (no window search) */
    MWIN_OWNERS,      /* kube-state-metrics owner series */
    MWIN_NAMES,       /* the names Kubernetes generates */
} mwin_method;

/* "current-pods", "kube-state-metrics", "pod-names". */
const char *mwin_method_name(mwin_method m);

/* Deployment, StatefulSet or DaemonSet: the kinds whose pod names are known. */
bool mwin_kind_known(const char *kind);

/* Append the RE2 regex (unanchored text: PromQL anchors it) of the pod names
 * `kind` `name` generates. Returns 0, -EINVAL for a kind other than
 * Deployment, StatefulSet, DaemonSet or an empty name, or an opbuf error. */
int mwin_pod_regex(opbuf *out, const char *kind, const char *name);

/* Does `pod` have the shape of a pod of `kind` `name`? The regex's rule. */
bool mwin_pod_matches(const char *kind, const char *name, const char *pod);

/* The workloads whose generated names `pod` could be, most likely first:
 * Deployment, DaemonSet, StatefulSet. Each is the kind and the length of
 * the name prefix of `pod`. Returns how many (0 to 3). */
typedef struct mwin_cand {
    const char *kind;
    size_t name_len;
} mwin_cand;
size_t mwin_candidates(const char *pod, mwin_cand out[3]);

/* The Deployment a ReplicaSet name `<deployment>-<hash>` belongs to by its
 * name: the length of the prefix, or 0 when the name has no such shape. */
size_t mwin_rs_deployment_len(const char *rs);

#endif
