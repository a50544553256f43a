#include "webhook/resolve.h"

#include "record/record.h"

#include <errno.h>
#include <string.h>

static const char *const k_fields[] = {"cpu-request", "memory-request", "cpu-limit",
                                       "memory-limit"};

static int skip(const char **reason, const char *slug)
{
    *reason = slug;
    return WRESOLVE_SKIP;
}

/* The want slot for container name, created on first use; NULL when full. */
static admrev_want *slot(wresolve_result *out, const char *name)
{
    for (size_t i = 0; i < out->nwants; i++)
        if (strcmp(out->wants[i].container, name) == 0)
            return &out->wants[i];
    if (out->nwants >= ADMREV_MAX_CONTAINERS)
        return NULL;
    admrev_want *w = &out->wants[out->nwants++];
    memset(w, 0, sizeof *w);
    w->container = name;
    return w;
}

int wresolve_wants(const kproj_obj *o, wresolve_result *out, const char **reason, operr *err)
{
    out->nwants = 0;
    const size_t plen = strlen(WRESOLVE_ANN_PREFIX);
    for (size_t i = 0; i < o->nannotations; i++) {
        const char *key = o->annotations[i].key, *val = o->annotations[i].value;
        if (strncmp(key, WRESOLVE_ANN_PREFIX, plen) != 0)
            continue;
        const char *rest = key + plen;
        for (int f = 0; f < 4; f++) {
            size_t fl = strlen(k_fields[f]);
            if (strncmp(rest, k_fields[f], fl) != 0 || rest[fl] != '.')
                continue;
            const char *cname = rest + fl + 1;
            if (!cname[0] || !val) {
                operr_set(err, -EINVAL, "%s '%s/%s': annotation %s has no container or value",
                          kproj_kind_name(o->kind), o->ns, o->name, key);
                return skip(reason, "bad-annotation");
            }
            admrev_want *w = slot(out, cname);
            if (!w) {
                operr_set(err, -E2BIG, "%s '%s/%s': more than %d annotated containers",
                          kproj_kind_name(o->kind), o->ns, o->name, ADMREV_MAX_CONTAINERS);
                return skip(reason, "bad-annotation");
            }
            const char **dst[4] = {&w->cpu_req, &w->mem_req, &w->cpu_lim, &w->mem_lim};
            *dst[f] = val;
            break;
        }
    }
    if (out->nwants == 0) {
        operr_set(err, -ENOENT, "%s '%s/%s': no optipod.io resource annotations",
                  kproj_kind_name(o->kind), o->ns, o->name);
        return skip(reason, "no-annotations");
    }
    return WRESOLVE_OK;
}

/* The cached object named by a reference, checking its uid when both are known. */
static int lookup(const kcache *c, const char *ns, const char *kind, const char *name,
                  const char *uid, const kproj_obj **obj, const char **reason, operr *err)
{
    const kproj_obj *o = c ? kcache_get(c, ns, name) : NULL;
    if (!o) {
        operr_set(err, -ENOENT, "%s '%s/%s' is not in the cache", kind, ns, name);
        return skip(reason, "unknown-owner");
    }
    if (uid && uid[0] && o->uid && strcmp(uid, o->uid) != 0) {
        operr_set(err, -ESTALE, "%s '%s/%s': cached uid %s is not the referenced %s", kind, ns,
                  name, o->uid, uid);
        return skip(reason, "owner-uid");
    }
    *obj = o;
    return WRESOLVE_OK;
}

int wresolve_pod(const wresolve_caches *c, const char *ns, const char *owner_kind,
                 const char *owner_name, const char *owner_uid, wresolve_result *out,
                 const char **reason, operr *err)
{
    static const char *unused;
    if (!reason)
        reason = &unused;
    *reason = NULL;
    out->workload = NULL;
    out->nwants = 0;
    if (!owner_kind || !owner_name) {
        operr_set(err, -ENOENT, "pod in '%s' has no controller ownerReference", ns);
        return skip(reason, "no-owner");
    }
    const kproj_obj *w = NULL;
    int rc;
    if (strcmp(owner_kind, "ReplicaSet") == 0) {
        const kproj_obj *rs;
        rc = lookup(c->replicasets, ns, "ReplicaSet", owner_name, owner_uid, &rs, reason, err);
        if (rc)
            return rc;
        const kproj_owner *o = kproj_controller(rs);
        if (!o) {
            w = rs; /* a bare ReplicaSet is its own workload */
        } else if (strcmp(o->kind, "Deployment") == 0) {
            rc = lookup(c->deployments, ns, "Deployment", o->name, o->uid, &w, reason, err);
            if (rc)
                return rc;
        } else {
            operr_set(err, -ENOTSUP, "ReplicaSet '%s/%s' is controlled by a %s", ns, owner_name,
                      o->kind);
            return skip(reason, "owner-kind");
        }
    } else if (strcmp(owner_kind, "StatefulSet") == 0) {
        rc = lookup(c->statefulsets, ns, owner_kind, owner_name, owner_uid, &w, reason, err);
        if (rc)
            return rc;
    } else if (strcmp(owner_kind, "DaemonSet") == 0) {
        rc = lookup(c->daemonsets, ns, owner_kind, owner_name, owner_uid, &w, reason, err);
        if (rc)
            return rc;
    } else {
        operr_set(err, -ENOTSUP, "pod in '%s' is owned by %s '%s', not a workload optipod manages",
                  ns, owner_kind, owner_name);
        return skip(reason, "owner-kind");
    }

    const char *en = kproj_kv_get(w->annotations, w->nannotations, WRESOLVE_ANN_ENABLED);
    if (!en || strcmp(en, "true") != 0) {
        operr_set(err, -EPERM, "%s '%s/%s': %s is not \"true\"", kproj_kind_name(w->kind), ns,
                  w->name, WRESOLVE_ANN_ENABLED);
        return skip(reason, "not-enabled");
    }
    const char *st = kproj_kv_get(w->annotations, w->nannotations, WRESOLVE_ANN_STRATEGY);
    if (!st || strcmp(st, "webhook") != 0) {
        operr_set(err, -EPERM, "%s '%s/%s': %s is \"%s\", not \"webhook\"",
                  kproj_kind_name(w->kind), ns, w->name, WRESOLVE_ANN_STRATEGY, st ? st : "");
        return skip(reason, "strategy");
    }
    if (rrec_released(w, NULL)) {
        operr_set(err, -EPERM, "%s '%s/%s': released (%s: \"false\")", kproj_kind_name(w->kind), ns,
                  w->name, RREC_MANAGED_KEY);
        return skip(reason, "released");
    }
    rc = wresolve_wants(w, out, reason, err);
    if (rc != WRESOLVE_OK)
        return rc;
    /* a released container keeps what its pod spec says */
    size_t kept = 0;
    for (size_t i = 0; i < out->nwants; i++)
        if (!rrec_released(w, out->wants[i].container))
            out->wants[kept++] = out->wants[i];
    if (kept == 0) {
        out->nwants = 0;
        operr_set(err, -EPERM, "%s '%s/%s': every annotated container is released",
                  kproj_kind_name(w->kind), ns, w->name);
        return skip(reason, "released");
    }
    out->nwants = kept;
    out->workload = w;
    return WRESOLVE_OK;
}
