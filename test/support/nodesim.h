/*
 * nodesim: what a kubelet-less cluster lacks for pods to run, as pure steps.
 *
 * A bare control plane (etcd, kube-apiserver, kube-controller-manager) creates
 * pods but nothing schedules or runs them: Deployments never become
 * available, PodDisruptionBudgets count no healthy pod. The node simulator
 * (test/tools/nodesim.c) registers one Node and plays scheduler and kubelet
 * for the pods of the namespaces it is given. This module decides, per pod,
 * what it does next, and writes the request bodies; the tool does the I/O.
 *
 * Per pod (nsim_decide):
 *  - not bound to any node: bind it to ours (POST pods/NAME/binding);
 *  - bound to ours, not Running: report it Running and Ready, every container
 *    started and ready, its resources echoed in containerStatuses (what a
 *    v1.27+ kubelet reports; a v1.24 server drops the fields);
 *  - bound to ours, Running, and the server keeps containerStatuses[].resources
 *    but they differ from the spec (an in-place resize): echo them again;
 *  - being deleted on our node: finish the deletion (grace period 0), as the
 *    kubelet does once the containers stopped;
 *  - anything else (another node's pod, a pod already reported): nothing.
 *
 * Bodies are compact JSON appended to an opbuf; times are RFC 3339 UTC.
 * Nothing here allocates beyond the opbuf it is given.
 */
#ifndef OPTIPOD_TEST_NODESIM_H
#define OPTIPOD_TEST_NODESIM_H

#include <time.h>

#include "kube/project.h"
#include "util/buf.h"

/* Every simulated Node carries this label (set to "true"): a Ready node without
 * it is a real one, and then no simulator is needed. */
#define NSIM_LABEL "optipod.io/simulated-node"

enum nsim_action {
    NSIM_NONE,
    NSIM_BIND,     /* POST binding */
    NSIM_REPORT,   /* PATCH status: Running, Ready, containerStatuses */
    NSIM_ECHO,     /* PATCH status: containerStatuses' resources only */
    NSIM_FINALIZE, /* DELETE with gracePeriodSeconds 0 */
};

const char *nsim_action_name(enum nsim_action a);

/* What to do next for `pod` (a KPROJ_POD projection) on node `node`. */
enum nsim_action nsim_decide(const kproj_obj *pod, const char *node);

/* Capacity the Node advertises (quantity strings, e.g. "32", "128Gi", "110"). */
typedef struct nsim_capacity {
    const char *cpu, *memory, *pods;
} nsim_capacity;

/* "2024-05-01T10:00:00Z" (cap >= 21) and the MicroTime "...:00.000000Z" (cap >= 28). */
int nsim_time(char *out, size_t cap, time_t t);
int nsim_microtime(char *out, size_t cap, time_t t);

/* The Node to create: labels (hostname, os, arch, NSIM_LABEL), status with
 * capacity, allocatable, a Ready condition, addresses (InternalIP `ip`). */
int nsim_node_body(opbuf *out, const char *node, const char *ip, const nsim_capacity *cap,
                   time_t now);
/* A status patch (merge) refreshing the Node's conditions, capacity and addresses (lists a
 * merge patch replaces whole): the heartbeat. */
int nsim_node_status_body(opbuf *out, const char *node, const char *ip, const nsim_capacity *cap,
                          time_t now);
/* The node's Lease in kube-node-lease (holder = node, 40 s duration, renewed now),
 * owned by the Node (uid) so it goes with it. */
int nsim_lease_body(opbuf *out, const char *node, const char *node_uid, time_t now);
/* A merge patch renewing that Lease. */
int nsim_lease_renew_body(opbuf *out, time_t now);
/* The Binding of pod (ns/name, uid as a precondition) to node. */
int nsim_binding_body(opbuf *out, const kproj_obj *pod, const char *node);
/* The pod's status patch (merge) for NSIM_REPORT (full: phase, conditions,
 * container statuses) or NSIM_ECHO (container statuses only, so the Ready
 * condition keeps its transition time). */
int nsim_pod_status_body(opbuf *out, const kproj_obj *pod, enum nsim_action a, const char *ip,
                         time_t now);
/* DeleteOptions for NSIM_FINALIZE: gracePeriodSeconds 0, uid precondition. */
int nsim_delete_body(opbuf *out, const kproj_obj *pod);

#endif
