#include "kube/index.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int kidx_owner_value(char *buf, size_t cap, const char *ns, const char *kind, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s/%s", ns ? ns : "", kind, name);
    return n < 0 || (size_t)n >= cap ? -E2BIG : 0;
}

int kidx_namespace(const kproj_obj *o, char (*vals)[KCACHE_KEY_MAX], int max, void *ud)
{
    (void)ud;
    if (!o->ns || !*o->ns || max < 1)
        return 0;
    snprintf(vals[0], KCACHE_KEY_MAX, "%s", o->ns);
    return 1;
}

int kidx_controller(const kproj_obj *o, char (*vals)[KCACHE_KEY_MAX], int max, void *ud)
{
    (void)ud;
    const kproj_owner *own = kproj_controller(o);
    if (!own || !own->kind || !own->name || max < 1 ||
        kidx_owner_value(vals[0], KCACHE_KEY_MAX, o->ns, own->kind, own->name) != 0)
        return 0;
    return 1;
}

typedef struct rs_walk {
    const kcache *pods;
    int (*fn)(const kproj_obj *pod, void *ud);
    void *ud;
} rs_walk;

static int pods_of_rs(const kproj_obj *rs, void *ud)
{
    rs_walk *w = ud;
    char v[KCACHE_KEY_MAX];
    if (kidx_owner_value(v, sizeof v, rs->ns, "ReplicaSet", rs->name) != 0)
        return 0;
    return kcache_index_foreach(w->pods, KIDX_CONTROLLER, v, w->fn, w->ud);
}

int kidx_workload_pods(const kcache *pods, const kcache *replicasets, const char *kind,
                       const char *ns, const char *name, int (*fn)(const kproj_obj *pod, void *ud),
                       void *ud)
{
    char v[KCACHE_KEY_MAX];
    if (!pods || kidx_owner_value(v, sizeof v, ns, kind, name) != 0)
        return 0;
    int rc = kcache_index_foreach(pods, KIDX_CONTROLLER, v, fn, ud);
    if (rc || strcmp(kind, "Deployment") != 0 || !replicasets)
        return rc;
    rs_walk w = {pods, fn, ud};
    return kcache_index_foreach(replicasets, KIDX_CONTROLLER, v, pods_of_rs, &w);
}
