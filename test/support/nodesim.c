#include "support/nodesim.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *nsim_action_name(enum nsim_action a)
{
    switch (a) {
    case NSIM_BIND:
        return "bind";
    case NSIM_REPORT:
        return "report";
    case NSIM_ECHO:
        return "echo";
    case NSIM_FINALIZE:
        return "finalize";
    case NSIM_NONE:
        break;
    }
    return "none";
}

/* Same keys with the same values, in any order. */
static int kv_same(const kproj_kv *a, size_t na, const kproj_kv *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++) {
        const char *v = kproj_kv_get(b, nb, a[i].key);
        if (!v || strcmp(v, a[i].value) != 0)
            return 0;
    }
    return 1;
}

/* The server keeps containerStatuses[].resources (v1.27+) and some container's
 * differ from its spec: an in-place resize to report as done. */
static int resize_to_echo(const kproj_obj *pod)
{
    int kept = 0, differs = 0;
    for (size_t i = 0; i < pod->ncontainers; i++) {
        const kproj_container *c = &pod->containers[i];
        if (c->nstatus_requests || c->nstatus_limits)
            kept = 1;
        if (!kv_same(c->requests, c->nrequests, c->status_requests, c->nstatus_requests) ||
            !kv_same(c->limits, c->nlimits, c->status_limits, c->nstatus_limits))
            differs = 1;
    }
    return kept && differs;
}

enum nsim_action nsim_decide(const kproj_obj *pod, const char *node)
{
    if (!pod || pod->kind != KPROJ_POD || !node)
        return NSIM_NONE;
    int ours = pod->node && strcmp(pod->node, node) == 0;
    if (pod->deleting)
        return ours ? NSIM_FINALIZE : NSIM_NONE;
    if (!pod->node || !pod->node[0])
        return NSIM_BIND;
    if (!ours)
        return NSIM_NONE;
    if (!pod->phase || strcmp(pod->phase, "Running") != 0)
        return NSIM_REPORT;
    return resize_to_echo(pod) ? NSIM_ECHO : NSIM_NONE;
}

static int fmt_time(char *out, size_t cap, time_t t, const char *fmt)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, cap, fmt, &tm) == 0)
        return -E2BIG;
    return 0;
}

int nsim_time(char *out, size_t cap, time_t t)
{
    return fmt_time(out, cap, t, "%Y-%m-%dT%H:%M:%SZ");
}

int nsim_microtime(char *out, size_t cap, time_t t)
{
    return fmt_time(out, cap, t, "%Y-%m-%dT%H:%M:%S.000000Z");
}

/* Print `root` compactly into out and free it; -ENOMEM when any part of the
 * tree could not be built (cJSON's add functions fail silently but leave the
 * tree smaller, so the builders count their failures in *bad). */
static int emit(opbuf *out, cJSON *root, int bad)
{
    int rc = -ENOMEM;
    char *s = root && !bad ? cJSON_PrintUnformatted(root) : NULL;
    if (s)
        rc = opbuf_puts(out, s);
    cJSON_free(s);
    cJSON_Delete(root);
    return rc;
}

static void str(cJSON *parent, const char *key, const char *v, int *bad);

/* A new document, with apiVersion and kind when given; NULL counts as a failure
 * and emit() then reports -ENOMEM. */
static cJSON *doc(const char *api_version, const char *kind, int *bad)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        (*bad)++;
        return NULL;
    }
    if (api_version)
        str(root, "apiVersion", api_version, bad);
    if (kind)
        str(root, "kind", kind, bad);
    return root;
}

static cJSON *obj(cJSON *parent, const char *key, int *bad)
{
    cJSON *o = parent ? cJSON_AddObjectToObject(parent, key) : NULL;
    if (!o)
        (*bad)++;
    return o;
}

static cJSON *arr(cJSON *parent, const char *key, int *bad)
{
    cJSON *a = parent ? cJSON_AddArrayToObject(parent, key) : NULL;
    if (!a)
        (*bad)++;
    return a;
}

static void str(cJSON *parent, const char *key, const char *v, int *bad)
{
    if (!parent || !cJSON_AddStringToObject(parent, key, v ? v : ""))
        (*bad)++;
}

static void num(cJSON *parent, const char *key, double v, int *bad)
{
    if (!parent || !cJSON_AddNumberToObject(parent, key, v))
        (*bad)++;
}

static void boolean(cJSON *parent, const char *key, int v, int *bad)
{
    if (!parent || !cJSON_AddBoolToObject(parent, key, v))
        (*bad)++;
}

static cJSON *item(cJSON *array, int *bad)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !array || !cJSON_AddItemToArray(array, o)) {
        cJSON_Delete(o);
        (*bad)++;
        return NULL;
    }
    return o;
}

static void condition(cJSON *conds, const char *type, const char *reason, const char *at,
                      int heartbeat, int *bad)
{
    cJSON *c = item(conds, bad);
    str(c, "type", type, bad);
    str(c, "status", "True", bad);
    if (heartbeat)
        str(c, "lastHeartbeatTime", at, bad);
    str(c, "lastTransitionTime", at, bad);
    if (reason) {
        str(c, "reason", reason, bad);
        str(c, "message", "optipod node simulator", bad);
    }
}

static void capacity(cJSON *parent, const char *key, const nsim_capacity *cap, int *bad)
{
    cJSON *c = obj(parent, key, bad);
    str(c, "cpu", cap->cpu, bad);
    str(c, "memory", cap->memory, bad);
    str(c, "pods", cap->pods, bad);
}

/* The status fields the heartbeat refreshes (also the created Node's). */
static void node_status(cJSON *status, const char *node, const char *ip, const nsim_capacity *cap,
                        time_t now, int *bad)
{
    char at[32];
    if (nsim_time(at, sizeof at, now))
        (*bad)++;
    capacity(status, "capacity", cap, bad);
    capacity(status, "allocatable", cap, bad);
    condition(arr(status, "conditions", bad), "Ready", "KubeletReady", at, 1, bad);
    cJSON *addrs = arr(status, "addresses", bad);
    cJSON *a = item(addrs, bad);
    str(a, "type", "InternalIP", bad);
    str(a, "address", ip, bad);
    a = item(addrs, bad);
    str(a, "type", "Hostname", bad);
    str(a, "address", node, bad);
}

int nsim_node_body(opbuf *out, const char *node, const char *ip, const nsim_capacity *cap,
                   time_t now)
{
    int bad = 0;
    cJSON *root = doc("v1", "Node", &bad);
    cJSON *meta = obj(root, "metadata", &bad);
    str(meta, "name", node, &bad);
    cJSON *labels = obj(meta, "labels", &bad);
    str(labels, "kubernetes.io/hostname", node, &bad);
    str(labels, "kubernetes.io/os", "linux", &bad);
    str(labels, "kubernetes.io/arch", "amd64", &bad);
    str(labels, NSIM_LABEL, "true", &bad);
    obj(root, "spec", &bad);
    cJSON *status = obj(root, "status", &bad);
    node_status(status, node, ip, cap, now, &bad);
    cJSON *info = obj(status, "nodeInfo", &bad);
    str(info, "operatingSystem", "linux", &bad);
    str(info, "architecture", "amd64", &bad);
    str(info, "osImage", "optipod node simulator", &bad);
    str(info, "containerRuntimeVersion", "nodesim://1", &bad);
    str(info, "kubeletVersion", "nodesim", &bad);
    return emit(out, root, bad);
}

int nsim_node_status_body(opbuf *out, const char *node, const char *ip, const nsim_capacity *cap,
                          time_t now)
{
    int bad = 0;
    cJSON *root = doc(NULL, NULL, &bad);
    node_status(obj(root, "status", &bad), node, ip, cap, now, &bad);
    return emit(out, root, bad);
}

int nsim_lease_body(opbuf *out, const char *node, const char *node_uid, time_t now)
{
    int bad = 0;
    char at[40];
    if (nsim_microtime(at, sizeof at, now))
        return -E2BIG;
    cJSON *root = doc("coordination.k8s.io/v1", "Lease", &bad);
    cJSON *meta = obj(root, "metadata", &bad);
    str(meta, "name", node, &bad);
    str(meta, "namespace", "kube-node-lease", &bad);
    if (node_uid && node_uid[0]) {
        cJSON *o = item(arr(meta, "ownerReferences", &bad), &bad);
        str(o, "apiVersion", "v1", &bad);
        str(o, "kind", "Node", &bad);
        str(o, "name", node, &bad);
        str(o, "uid", node_uid, &bad);
    }
    cJSON *spec = obj(root, "spec", &bad);
    str(spec, "holderIdentity", node, &bad);
    num(spec, "leaseDurationSeconds", 40, &bad);
    str(spec, "renewTime", at, &bad);
    return emit(out, root, bad);
}

int nsim_lease_renew_body(opbuf *out, time_t now)
{
    int bad = 0;
    char at[40];
    if (nsim_microtime(at, sizeof at, now))
        return -E2BIG;
    cJSON *root = doc(NULL, NULL, &bad);
    str(obj(root, "spec", &bad), "renewTime", at, &bad);
    return emit(out, root, bad);
}

int nsim_binding_body(opbuf *out, const kproj_obj *pod, const char *node)
{
    int bad = 0;
    cJSON *root = doc("v1", "Binding", &bad);
    cJSON *meta = obj(root, "metadata", &bad);
    str(meta, "name", pod->name, &bad);
    str(meta, "namespace", pod->ns, &bad);
    if (pod->uid)
        str(meta, "uid", pod->uid, &bad);
    cJSON *target = obj(root, "target", &bad);
    str(target, "apiVersion", "v1", &bad);
    str(target, "kind", "Node", &bad);
    str(target, "name", node, &bad);
    return emit(out, root, bad);
}

static void kv_obj(cJSON *parent, const char *key, const kproj_kv *kv, size_t n, int *bad)
{
    cJSON *o = obj(parent, key, bad);
    for (size_t i = 0; i < n; i++)
        str(o, kv[i].key, kv[i].value, bad);
}

/* The fields every container status has: name, image, "nodesim://<pod uid>/<container>"
 * (unique per container, stable across reports) and ready. Returns the status object. */
static cJSON *container_status(cJSON *list, const kproj_obj *pod, const kproj_container *c,
                               char *id, size_t idcap, int *bad)
{
    snprintf(id, idcap, "nodesim://%s/%s", pod->uid ? pod->uid : pod->name, c->name);
    cJSON *s = item(list, bad);
    str(s, "name", c->name, bad);
    str(s, "image", c->image, bad);
    str(s, "imageID", "", bad);
    str(s, "containerID", id, bad);
    boolean(s, "ready", 1, bad);
    return s;
}

static void container_statuses(cJSON *status, const kproj_obj *pod, const char *at, int *bad)
{
    char id[384];
    if (pod->ninit_containers) {
        cJSON *inits = arr(status, "initContainerStatuses", bad);
        for (size_t i = 0; i < pod->ninit_containers; i++) {
            cJSON *s = container_status(inits, pod, &pod->init_containers[i], id, sizeof id, bad);
            num(s, "restartCount", 0, bad);
            cJSON *t = obj(obj(s, "state", bad), "terminated", bad);
            num(t, "exitCode", 0, bad);
            str(t, "reason", "Completed", bad);
            str(t, "startedAt", at, bad);
            str(t, "finishedAt", at, bad);
            str(t, "containerID", id, bad);
        }
    }
    cJSON *list = arr(status, "containerStatuses", bad);
    for (size_t i = 0; i < pod->ncontainers; i++) {
        const kproj_container *c = &pod->containers[i];
        cJSON *s = container_status(list, pod, c, id, sizeof id, bad);
        boolean(s, "started", 1, bad);
        num(s, "restartCount", c->restart_count > 0 ? c->restart_count : 0, bad); /* -1: absent */
        str(obj(obj(s, "state", bad), "running", bad), "startedAt", at, bad);
        /* What a v1.27+ kubelet reports: the resources applied and allocated. */
        cJSON *res = obj(s, "resources", bad);
        if (c->nrequests)
            kv_obj(res, "requests", c->requests, c->nrequests, bad);
        if (c->nlimits)
            kv_obj(res, "limits", c->limits, c->nlimits, bad);
        if (c->nrequests)
            kv_obj(s, "allocatedResources", c->requests, c->nrequests, bad);
    }
}

int nsim_pod_status_body(opbuf *out, const kproj_obj *pod, enum nsim_action a, const char *ip,
                         time_t now)
{
    if (a != NSIM_REPORT && a != NSIM_ECHO)
        return -EINVAL;
    int bad = 0;
    char at[32];
    if (nsim_time(at, sizeof at, now))
        return -E2BIG;
    cJSON *root = doc(NULL, NULL, &bad);
    cJSON *status = obj(root, "status", &bad);
    if (a == NSIM_REPORT) {
        str(status, "phase", "Running", &bad);
        str(status, "hostIP", ip, &bad);
        str(status, "podIP", ip, &bad);
        str(item(arr(status, "podIPs", &bad), &bad), "ip", ip, &bad);
        str(status, "startTime", at, &bad);
        cJSON *conds = arr(status, "conditions", &bad);
        condition(conds, "Initialized", NULL, at, 0, &bad);
        condition(conds, "Ready", NULL, at, 0, &bad);
        condition(conds, "ContainersReady", NULL, at, 0, &bad);
        condition(conds, "PodScheduled", NULL, at, 0, &bad);
    }
    container_statuses(status, pod, at, &bad);
    return emit(out, root, bad);
}

int nsim_delete_body(opbuf *out, const kproj_obj *pod)
{
    int bad = 0;
    cJSON *root = doc("v1", "DeleteOptions", &bad);
    num(root, "gracePeriodSeconds", 0, &bad);
    if (pod->uid)
        str(obj(root, "preconditions", &bad), "uid", pod->uid, &bad);
    return emit(out, root, bad);
}
