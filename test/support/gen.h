/*
 * gen: realistic workload objects for benchmarks, the demo and load tests.
 *
 * gen_deployment() writes a Deployment as a v1.24 API server returns it: two
 * containers (app + sidecar) with env, ports, probes and resources, labels,
 * the revision annotation, managedFields for a GitOps applier and
 * kube-controller-manager, and status conditions — about 5 KB of compact JSON,
 * the shape of test/data/kube-apiserver-v1.24/list-deployments-limit1.json.
 * Output is deterministic for a given index.
 */
#ifndef OPTIPOD_TEST_GEN_H
#define OPTIPOD_TEST_GEN_H

#include "util/buf.h"

/* Append the Deployment number `i` in namespace `ns` to `out`; 0 or -E2BIG/-ENOMEM. */
int gen_deployment(opbuf *out, const char *ns, unsigned i);
/* Its current ReplicaSet (svc-i-68bdbdcb94, owned by Deployment svc-i), ~3 KB. */
int gen_replicaset(opbuf *out, const char *ns, unsigned i);
/* Pod k of that ReplicaSet, running both containers with the template's
 * requests, as the kubelet reports it (conditions, containerStatuses,
 * managedFields of kube-controller-manager and the kubelet), ~5 KB. With
 * `oom`, the app container's last state is an OOMKilled termination. */
int gen_pod(opbuf *out, const char *ns, unsigned i, unsigned k, int oom);
/* A Namespace labelled team=<name> and the kubernetes.io/metadata.name label. */
int gen_namespace(opbuf *out, const char *name);

#endif
