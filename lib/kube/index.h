/*
 * kidx: the secondary indexes the controller keeps on its caches (see
 * kcache_add_index), and the lookups built on them, so that gathering one
 * workload's facts costs what that workload has, not what the cluster has.
 *
 *   KIDX_NAMESPACE   "namespace"   the object's namespace (cluster-scoped: none)
 *   KIDX_CONTROLLER  "controller"  "ns/Kind/name" of its controller ownerReference
 *
 * A Deployment's pods are found as the controller finds their owner
 * (controller.c's ctl__pod_owner): pods whose controller is one of the
 * ReplicaSets whose controller is the Deployment (and any pod it owns
 * directly); a StatefulSet's or DaemonSet's are the pods it controls.
 * Pure functions over caches; nothing here owns memory.
 */
#ifndef OPTIPOD_KUBE_INDEX_H
#define OPTIPOD_KUBE_INDEX_H

#include <stddef.h>

#include "kube/cache.h"

#define KIDX_NAMESPACE  "namespace"
#define KIDX_CONTROLLER "controller"

/* kcache_index_fn: the namespace. */
int kidx_namespace(const kproj_obj *o, char (*vals)[KCACHE_KEY_MAX], int max, void *ud);
/* kcache_index_fn: the controller owner as kidx_owner_value() writes it. */
int kidx_controller(const kproj_obj *o, char (*vals)[KCACHE_KEY_MAX], int max, void *ud);
/* "ns/Kind/name" into buf; 0 or -E2BIG. */
int kidx_owner_value(char *buf, size_t cap, const char *ns, const char *kind, const char *name);

/* Call fn for each pod of the workload kind/ns/name (kind "Deployment",
 * "StatefulSet", "DaemonSet") until it returns non-zero (returned). pods and
 * replicasets need the KIDX_CONTROLLER index (-ENOENT otherwise). */
int kidx_workload_pods(const kcache *pods, const kcache *replicasets, const char *kind,
                       const char *ns, const char *name, int (*fn)(const kproj_obj *pod, void *ud),
                       void *ud);

#endif
