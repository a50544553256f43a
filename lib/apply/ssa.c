/*
 * ssa: apply bodies. The body is built as a cJSON tree (key order is the
 * insertion order) and printed compact into the caller's capped buffer.
 */
#include "apply/ssa.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "engine/quantity.h"

#define SLOTS_MAX 16 /* resource fields of one container: 4 recommended + any owned */

typedef struct slot {
    const char *kind;     /* "requests" | "limits" */
    const char *resource; /* "cpu", "memory", ... */
    const char *value;    /* what the body writes; NULL = omitted */
} slot;

const char *ssa_action_name(enum ssa_action a)
{
    switch (a) {
    case SSA_SKIPPED:
        return "skipped";
    case SSA_RELEASED:
        return "released";
    case SSA_KEPT:
        return "kept";
    case SSA_DELETED:
        return "deleted";
    case SSA_UNPINNED:
        return "unpinned";
    }
    return "?";
}

const char *ssa_api_version(enum kproj_kind k)
{
    switch (k) {
    case KPROJ_DEPLOYMENT:
    case KPROJ_STATEFULSET:
    case KPROJ_DAEMONSET:
    case KPROJ_REPLICASET:
        return "apps/v1";
    default:
        return NULL;
    }
}

static void note(ssa_report *rep, enum ssa_action a, const char *container, const char *field,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void note(ssa_report *rep, enum ssa_action a, const char *container, const char *field,
                 const char *fmt, ...)
{
    if (!rep)
        return;
    if (a == SSA_KEPT)
        rep->nkept++;
    else if (a == SSA_DELETED)
        rep->ndeleted++;
    else if (a == SSA_SKIPPED)
        rep->nskipped++;
    if (rep->nnotes >= SSA_MAX_NOTES) {
        rep->notes_dropped++;
        return;
    }
    ssa_note *n = &rep->notes[rep->nnotes++];
    n->action = a;
    snprintf(n->container, sizeof(n->container), "%s", container);
    snprintf(n->field, sizeof(n->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->reason, sizeof(n->reason), fmt, ap);
    va_end(ap);
}

static const char *manager_of(const ssa_request *rq)
{
    return rq->manager && *rq->manager ? rq->manager : MFIELDS_OPTIPOD;
}

static const ssa_container *desired(const ssa_request *rq, const char *name, int init)
{
    for (size_t i = 0; i < rq->nrelease; i++) {
        if (rq->release[i] && !strcmp(rq->release[i], name))
            return NULL;
    }
    for (size_t i = 0; i < rq->ncontainers; i++) {
        const ssa_container *c = &rq->containers[i];
        if (c->name && !strcmp(c->name, name) && !c->init == !init)
            return c;
    }
    return NULL;
}

static int live_has(const kproj_obj *o, const char *name, int init)
{
    const kproj_container *v = init ? o->init_containers : o->containers;
    size_t n = init ? o->ninit_containers : o->ncontainers;
    for (size_t i = 0; i < n; i++) {
        if (v[i].name && !strcmp(v[i].name, name))
            return 1;
    }
    return 0;
}

static const char *live_value(const kproj_container *c, const char *kind, const char *res)
{
    if (!strcmp(kind, "requests"))
        return kproj_kv_get(c->requests, c->nrequests, res);
    return kproj_kv_get(c->limits, c->nlimits, res);
}

static cJSON *body_head(const ssa_request *rq, const char *api, cJSON **md)
{
    const kproj_obj *o = rq->live;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "apiVersion", api);
    cJSON_AddStringToObject(root, "kind", kproj_kind_name(o->kind));
    *md = cJSON_AddObjectToObject(root, "metadata");
    if (*md) {
        cJSON_AddStringToObject(*md, "name", o->name);
        if (o->ns && *o->ns)
            cJSON_AddStringToObject(*md, "namespace", o->ns);
        if (o->uid && *o->uid)
            cJSON_AddStringToObject(*md, "uid", o->uid);
    }
    return root;
}

static int check_request(const ssa_request *rq, const char **api, operr *err)
{
    if (!rq || !rq->live || !rq->live->name)
        return operr_set(err, -EINVAL, "apply body: no live object");
    *api = ssa_api_version(rq->live->kind);
    if (!*api)
        return operr_set(err, -EINVAL, "apply body for '%s': kind %s is not a workload",
                         rq->live->name, kproj_kind_name(rq->live->kind));
    for (size_t i = 0; i < rq->ncontainers; i++) {
        if (!rq->containers[i].name || !*rq->containers[i].name)
            return operr_set(err, -EINVAL, "apply body for '%s': container %zu has no name",
                             rq->live->name, i);
    }
    return 0;
}

static int print_body(cJSON *root, opbuf *body, const char *name, operr *err)
{
    char *txt = cJSON_PrintUnformatted(root);
    if (!txt)
        return operr_set(err, -ENOMEM, "apply body for '%s': out of memory", name);
    int rc = opbuf_puts(body, txt);
    free(txt);
    if (rc == -E2BIG)
        return operr_set(err, rc, "apply body for '%s': larger than %zu bytes", name, body->max);
    return rc;
}

/* Add the field slot for (kind, res) unless present; returns it or NULL when full. */
static slot *slot_get(slot *s, int *n, const char *kind, const char *res)
{
    for (int i = 0; i < *n; i++) {
        if (!strcmp(s[i].kind, kind) && !strcmp(s[i].resource, res))
            return &s[i];
    }
    if (*n >= SLOTS_MAX)
        return NULL;
    s[*n] = (slot){kind, res, NULL};
    return &s[(*n)++];
}

/* Decide every field of one live container; fills slots with what is written. */
static void plan_container(const ssa_request *rq, const kproj_container *lc, int init,
                           int release_all, slot *s, int *ns, ssa_report *rep)
{
    const char *mgr = manager_of(rq);
    const ssa_container *d = release_all ? NULL : desired(rq, lc->name, init);
    enum mfields_list list = init ? MFIELDS_INIT_CONTAINERS : MFIELDS_CONTAINERS;
    *ns = 0;
    slot_get(s, ns, "requests", "cpu")->value = d ? d->cpu_request : NULL;
    slot_get(s, ns, "requests", "memory")->value = d ? d->memory_request : NULL;
    slot_get(s, ns, "limits", "cpu")->value = d && rq->allow_limits ? d->cpu_limit : NULL;
    slot_get(s, ns, "limits", "memory")->value = d && rq->allow_limits ? d->memory_limit : NULL;
    if (!rq->mf)
        return;
    /* every resource leaf optipod owns in this container that the body omits */
    for (size_t i = 0; i < rq->mf->nentries; i++) {
        const mfields_entry *e = &rq->mf->entries[i];
        if (strcmp(e->manager, mgr))
            continue;
        for (size_t j = 0; j < e->npaths; j++) {
            const mfields_path *p = &e->paths[j];
            if (p->cls != MFIELDS_RESOURCES || !p->leaf || p->list != list ||
                strcmp(p->container, lc->name))
                continue;
            const char *dot = strchr(p->leaf, '.');
            if (!dot)
                continue; /* the requests/limits map itself follows its leaves */
            const char *kind = !strncmp(p->leaf, "requests.", 9) ? "requests" : "limits";
            slot *sl = slot_get(s, ns, kind, dot + 1);
            if (!sl || sl->value)
                continue;
            const char *field = p->leaf;
            size_t others = mfields_owners(rq->mf, p->path, mgr, NULL, 0);
            const char *lv = live_value(lc, kind, dot + 1);
            if (others) {
                note(rep, SSA_RELEASED, lc->name, field,
                     "another manager also owns %s of container \"%s\": omitting it keeps the "
                     "value",
                     field, lc->name);
            } else if (!lv) {
                note(rep, SSA_RELEASED, lc->name, field,
                     "container \"%s\" has no live %s: nothing to delete", lc->name, field);
            } else if (rq->allow_delete) {
                note(rep, SSA_DELETED, lc->name, field,
                     "only %s owns %s=%s of container \"%s\": omitting it deletes the value "
                     "(allowed by the caller)",
                     mgr, field, lv, lc->name);
            } else {
                sl->value = lv;
                note(rep, SSA_KEPT, lc->name, field,
                     "only %s owns %s=%s of container \"%s\": omitting it would delete the "
                     "value, so the live value is kept",
                     mgr, field, lv, lc->name);
            }
        }
    }
}

static int add_container(cJSON *arr, const char *name, const slot *s, int ns)
{
    cJSON *c = cJSON_CreateObject();
    if (!c || !cJSON_AddItemToArray(arr, c)) {
        cJSON_Delete(c);
        return -ENOMEM;
    }
    if (!cJSON_AddStringToObject(c, "name", name))
        return -ENOMEM;
    cJSON *res = NULL;
    static const char *const kinds[] = {"requests", "limits"};
    for (int k = 0; k < 2; k++) {
        cJSON *map = NULL;
        for (int i = 0; i < ns; i++) {
            if (!s[i].value || strcmp(s[i].kind, kinds[k]))
                continue;
            if (!res && !(res = cJSON_AddObjectToObject(c, "resources")))
                return -ENOMEM;
            if (!map && !(map = cJSON_AddObjectToObject(res, kinds[k])))
                return -ENOMEM;
            if (!cJSON_AddStringToObject(map, s[i].resource, s[i].value))
                return -ENOMEM;
        }
    }
    return 0;
}

static int build_list(const ssa_request *rq, int init, int release_all, cJSON *spec,
                      ssa_report *rep)
{
    const kproj_obj *o = rq->live;
    const kproj_container *v = init ? o->init_containers : o->containers;
    size_t n = init ? o->ninit_containers : o->ncontainers;
    enum mfields_list list = init ? MFIELDS_INIT_CONTAINERS : MFIELDS_CONTAINERS;
    const char *mgr = manager_of(rq);
    cJSON *arr = NULL;
    slot s[SLOTS_MAX];
    int ns, rc;

    for (size_t i = 0; i < n; i++) {
        if (!v[i].name)
            continue;
        plan_container(rq, &v[i], init, release_all, s, &ns, rep);
        int any = 0;
        for (int k = 0; k < ns; k++)
            any |= s[k].value != NULL;
        if (!any && rq->mf && mfields_holds_container(rq->mf, mgr, list, v[i].name) &&
            !mfields_others_hold_container(rq->mf, mgr, list, v[i].name)) {
            /* nobody else holds the item: omitting it would remove the container */
            note(rep, SSA_KEPT, v[i].name, NULL,
                 "no other manager holds container \"%s\": omitting it would delete it from "
                 "the pod template, so its key stays",
                 v[i].name);
            any = 1;
        }
        if (!any)
            continue;
        if (!arr && !(arr = cJSON_AddArrayToObject(spec, init ? "initContainers" : "containers")))
            return -ENOMEM;
        rc = add_container(arr, v[i].name, s, ns);
        if (rc != 0)
            return rc;
        if (rep)
            rep->napplied++;
    }

    /* optipod's entries for containers the live spec no longer has: leaving them
     * out of the body releases them, which un-pins the list item */
    if (rq->mf) {
        const char *live[SSA_MAX_CONTAINERS];
        size_t nl = 0;
        for (size_t i = 0; i < n && nl < SSA_MAX_CONTAINERS; i++)
            live[nl++] = v[i].name;
        const char *stale[SSA_MAX_CONTAINERS];
        size_t nst =
            mfields_stale_containers(rq->mf, mgr, list, live, nl, stale, SSA_MAX_CONTAINERS);
        for (size_t i = 0; i < nst && i < SSA_MAX_CONTAINERS; i++)
            note(rep, SSA_UNPINNED, stale[i], NULL,
                 "container \"%s\" is not in the live spec: %s releases its entries so the "
                 "owner's removal can succeed",
                 stale[i], mgr);
    }
    return 0;
}

static void note_skipped(const ssa_request *rq, ssa_report *rep)
{
    for (size_t i = 0; i < rq->ncontainers; i++) {
        const ssa_container *c = &rq->containers[i];
        if (!live_has(rq->live, c->name, c->init))
            note(rep, SSA_SKIPPED, c->name, NULL,
                 "container \"%s\" is not in the live %s: never re-created", c->name,
                 kproj_kind_name(rq->live->kind));
    }
}

static int spec_lists(const ssa_request *rq, int release_all, cJSON *root, cJSON *pspec,
                      ssa_report *rep);

int ssa_build(const ssa_request *rq, opbuf *body, ssa_report *rep, operr *err)
{
    const char *api;
    cJSON *md = NULL;
    int rc = check_request(rq, &api, err);
    if (rep)
        memset(rep, 0, sizeof(*rep));
    if (rc)
        return rc;
    cJSON *root = body_head(rq, api, &md);
    cJSON *spec = root ? cJSON_AddObjectToObject(root, "spec") : NULL;
    cJSON *tmpl = spec ? cJSON_AddObjectToObject(spec, "template") : NULL;
    cJSON *pspec = tmpl ? cJSON_AddObjectToObject(tmpl, "spec") : NULL;
    if (!md || !pspec) {
        rc = operr_set(err, -ENOMEM, "apply body for '%s': out of memory", rq->live->name);
        goto out;
    }
    note_skipped(rq, rep);
    rc = spec_lists(rq, 0, root, pspec, rep);
    if (rc) {
        operr_set(err, rc, "apply body for '%s': out of memory", rq->live->name);
        goto out;
    }
    rc = print_body(root, body, rq->live->name, err);
out:
    cJSON_Delete(root);
    return rc;
}

/* Fill the pod template's container lists; with release_all no value is
 * desired and only what must be kept is written. */
static int spec_lists(const ssa_request *rq, int release_all, cJSON *root, cJSON *pspec,
                      ssa_report *rep)
{
    int napplied = rep ? rep->napplied : 0;
    int rc = build_list(rq, 0, release_all, pspec, rep);
    if (rc == 0)
        rc = build_list(rq, 1, release_all, pspec, rep);
    if (rc)
        return rc;
    if (rep && release_all)
        rep->napplied = napplied; /* kept values are not applied recommendations */
    /* No container to write: drop the whole spec. An applied empty object is
     * owned as a leaf ("f:spec": {}), which optipod must never own. */
    if (!pspec->child)
        cJSON_DeleteItemFromObjectCaseSensitive(root, "spec");
    return 0;
}

/* The longest annotation name part is "memory-request.<c>"; the name part of a
 * key is limited to 63 characters. */
#define ANN_NAME_MAX 63

int ssa_build_annotations(const ssa_request *rq, opbuf *body, ssa_report *rep, operr *err)
{
    const char *api;
    cJSON *md = NULL;
    int rc = check_request(rq, &api, err);
    if (rep)
        memset(rep, 0, sizeof(*rep));
    if (rc)
        return rc;
    cJSON *root = body_head(rq, api, &md);
    cJSON *ann = md ? cJSON_AddObjectToObject(md, "annotations") : NULL;
    if (!ann) {
        rc = operr_set(err, -ENOMEM, "apply body for '%s': out of memory", rq->live->name);
        goto out;
    }
    note_skipped(rq, rep);
    for (size_t i = 0; i < rq->ncontainers; i++) {
        const ssa_container *c = &rq->containers[i];
        if (!live_has(rq->live, c->name, c->init) || !desired(rq, c->name, c->init))
            continue;
        if (strlen("memory-request.") + strlen(c->name) > ANN_NAME_MAX) {
            note(rep, SSA_SKIPPED, c->name, NULL,
                 "container \"%s\": annotation optipod.io/memory-request.%s would exceed the "
                 "%d-character name limit",
                 c->name, c->name, ANN_NAME_MAX);
            continue;
        }
        const struct {
            const char *key, *value;
        } kv[] = {
            {"cpu-request", c->cpu_request},
            {"memory-request", c->memory_request},
            {"cpu-limit", rq->allow_limits ? c->cpu_limit : NULL},
            {"memory-limit", rq->allow_limits ? c->memory_limit : NULL},
        };
        int any = 0;
        for (size_t k = 0; k < sizeof(kv) / sizeof(kv[0]); k++) {
            if (!kv[k].value)
                continue;
            char key[128];
            snprintf(key, sizeof(key), "optipod.io/%s.%s", kv[k].key, c->name);
            if (!cJSON_AddStringToObject(ann, key, kv[k].value)) {
                rc = -ENOMEM;
                goto out;
            }
            any = 1;
        }
        if (any && rep)
            rep->napplied++;
    }
    if (!cJSON_AddStringToObject(ann, "optipod.io/strategy", "webhook") ||
        !cJSON_AddStringToObject(ann, "optipod.io/webhook-enabled", "true")) {
        rc = -ENOMEM;
        goto out;
    }
    /* Resource fields optipod wrote under the ssa strategy are released by
     * this body: keep those nobody else owns (switching strategy must not
     * strip the pod template's requests). */
    if (rq->mf) {
        cJSON *spec = cJSON_AddObjectToObject(root, "spec");
        cJSON *tmpl = spec ? cJSON_AddObjectToObject(spec, "template") : NULL;
        cJSON *pspec = tmpl ? cJSON_AddObjectToObject(tmpl, "spec") : NULL;
        rc = pspec ? spec_lists(rq, 1, root, pspec, rep) : -ENOMEM;
        if (rc != 0)
            goto out;
    }
    rc = print_body(root, body, rq->live->name, err);
out:
    if (rc == -ENOMEM)
        operr_set(err, rc, "apply body for '%s': out of memory", rq->live->name);
    cJSON_Delete(root);
    return rc;
}

int ssa_same_quantity(const char *a, const char *b)
{
    kq qa, qb;
    if (!a || !b)
        return a == b;
    if (kq_parse_str(&qa, a, NULL) == 0 && kq_parse_str(&qb, b, NULL) == 0)
        return kq_cmp(&qa, &qb) == 0;
    return strcmp(a, b) == 0;
}

size_t ssa_changes(const ssa_request *rq, ssa_change *out, size_t max)
{
    size_t n = 0;
    if (!rq || !rq->live)
        return 0;
    for (size_t i = 0; i < rq->ncontainers; i++) {
        const ssa_container *c = &rq->containers[i];
        if (!c->name || !live_has(rq->live, c->name, c->init) || !desired(rq, c->name, c->init))
            continue;
        const kproj_container *lc = kproj_container_get(rq->live, c->name);
        const struct {
            const char *kind, *res, *want;
        } f[] = {
            {"requests", "cpu", c->cpu_request},
            {"requests", "memory", c->memory_request},
            {"limits", "cpu", rq->allow_limits ? c->cpu_limit : NULL},
            {"limits", "memory", rq->allow_limits ? c->memory_limit : NULL},
        };
        for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
            const char *have = lc ? live_value(lc, f[k].kind, f[k].res) : NULL;
            if (!f[k].want || ssa_same_quantity(have, f[k].want))
                continue;
            if (out && n < max) {
                ssa_change *ch = &out[n];
                snprintf(ch->container, sizeof(ch->container), "%s", c->name);
                ch->init = c->init;
                snprintf(ch->field, sizeof(ch->field), "%s.%s", f[k].kind, f[k].res);
                if (mfields_path_resource(ch->path, sizeof(ch->path),
                                          c->init ? MFIELDS_INIT_CONTAINERS : MFIELDS_CONTAINERS,
                                          c->name, f[k].kind, f[k].res) < 0)
                    ch->path[0] = '\0';
                ch->from = have;
                ch->to = f[k].want;
            }
            n++;
        }
    }
    return n;
}
