#include "kube/project.h"

#include "kube/projscan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kproj_from_json(const cJSON *obj, enum kproj_kind kind, kproj_obj **out)
{
    *out = NULL;
    if (!cJSON_IsObject(obj))
        return -EINVAL;
    char *json = cJSON_PrintUnformatted(obj);
    if (!json)
        return -ENOMEM;
    int rc = kprojs_from_bytes(json, strlen(json), kind, out);
    cJSON_free(json);
    return rc;
}

void kproj_free(kproj_obj *o)
{
    if (o && o->ext && o->ext_free)
        o->ext_free(o->ext);
    free(o);
}

enum kproj_kind kproj_kind_for_resource(const char *resource)
{
    static const struct {
        const char *res;
        enum kproj_kind kind;
    } map[] = {{"deployments", KPROJ_DEPLOYMENT},
               {"statefulsets", KPROJ_STATEFULSET},
               {"daemonsets", KPROJ_DAEMONSET},
               {"replicasets", KPROJ_REPLICASET},
               {"pods", KPROJ_POD},
               {"namespaces", KPROJ_NAMESPACE},
               {"horizontalpodautoscalers", KPROJ_HPA},
               {"optimizationpolicies", KPROJ_POLICY},
               {"poddisruptionbudgets", KPROJ_PDB}};
    for (size_t i = 0; resource && i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(resource, map[i].res) == 0)
            return map[i].kind;
    }
    return KPROJ_UNKNOWN;
}

const char *kproj_kind_name(enum kproj_kind k)
{
    switch (k) {
    case KPROJ_DEPLOYMENT:
        return "Deployment";
    case KPROJ_STATEFULSET:
        return "StatefulSet";
    case KPROJ_DAEMONSET:
        return "DaemonSet";
    case KPROJ_REPLICASET:
        return "ReplicaSet";
    case KPROJ_POD:
        return "Pod";
    case KPROJ_NAMESPACE:
        return "Namespace";
    case KPROJ_HPA:
        return "HorizontalPodAutoscaler";
    case KPROJ_POLICY:
        return "OptimizationPolicy";
    case KPROJ_PDB:
        return "PodDisruptionBudget";
    case KPROJ_UNKNOWN:
        break;
    }
    return "Unknown";
}

int kproj_key(char *buf, size_t cap, const char *ns, const char *name)
{
    int n = ns && *ns ? snprintf(buf, cap, "%s/%s", ns, name ? name : "")
                      : snprintf(buf, cap, "%s", name ? name : "");
    return n < 0 || (size_t)n >= cap ? -E2BIG : 0;
}

const char *kproj_kv_get(const kproj_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (kv[i].key && strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    }
    return NULL;
}

const kproj_owner *kproj_controller(const kproj_obj *o)
{
    for (size_t i = 0; i < o->nowners; i++) {
        if (o->owners[i].controller)
            return &o->owners[i];
    }
    return NULL;
}

const kproj_container *kproj_container_get(const kproj_obj *o, const char *name)
{
    for (size_t i = 0; i < o->ncontainers; i++) {
        if (o->containers[i].name && strcmp(o->containers[i].name, name) == 0)
            return &o->containers[i];
    }
    for (size_t i = 0; i < o->ninit_containers; i++) {
        if (o->init_containers[i].name && strcmp(o->init_containers[i].name, name) == 0)
            return &o->init_containers[i];
    }
    return NULL;
}
