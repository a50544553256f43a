/*
 * cli_release: stop managing a workload or one container of it, never
 * deleting a request or limit nobody else owns (see cli.h for the steps).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/ssa.h"
#include "cli/cli.h"
#include "record/record.h"

#define ANN          "optipod.io/"
#define MAX_RELEASED 64

static const char *const kinds[4] = {"requests", "requests", "limits", "limits"};
static const char *const ress[4] = {"cpu", "memory", "cpu", "memory"};

typedef struct rel_ctx {
    cli_conn *c;
    const cli_release_opts *o;
    const char *kind, *name;
    const kres *res;
    opbuf *report;
    operr *err;
    opbuf path;
    int get_rc; /* why the last get_live failed */
} rel_ctx;

static int write_path(rel_ctx *x, const char *manager, int force)
{
    const char *kv[] = {"fieldManager",
                        manager,
                        "force",
                        force ? "true" : NULL,
                        "dryRun",
                        x->o->dry_run ? "All" : NULL,
                        NULL};
    opbuf_reset(&x->path);
    return kpath(&x->path, x->res, x->o->ns, x->name, NULL) ?: kpath_query(&x->path, kv);
}

static cJSON *get_live(rel_ctx *x)
{
    opbuf_reset(&x->path);
    if (kpath(&x->path, x->res, x->o->ns, x->name, NULL)) {
        operr_set(x->err, -E2BIG, "%s/%s: name too long", x->kind, x->name);
        return NULL;
    }
    cli_resp r;
    cJSON *v = NULL;
    if (cli_call(x->c, "GET", opbuf_str(&x->path), NULL, NULL, 0, &r, x->err))
        goto out;
    if (r.status == 404)
        x->get_rc = operr_set(x->err, -ENOENT, "%s %s/%s: not found", x->kind, x->o->ns, x->name);
    else if (r.status < 200 || r.status > 299)
        operr_set(x->err, -EIO, "get %s %s/%s: HTTP %ld: %s", x->kind, x->o->ns, x->name, r.status,
                  r.msg);
    else if (!(v = cJSON_ParseWithLength(opbuf_str(&r.body), r.body.len)))
        operr_set(x->err, -EINVAL, "get %s %s/%s: the reply is not JSON", x->kind, x->o->ns,
                  x->name);
out:
    opbuf_release(&r.body);
    return v;
}

static int rel_send(rel_ctx *x, const char *what, const char *ctype, const char *body)
{
    cli_resp r;
    int rc = cli_call(x->c, "PATCH", opbuf_str(&x->path), ctype, body, strlen(body), &r, x->err);
    if (!rc && (r.status < 200 || r.status > 299))
        rc = operr_set(x->err, -EIO, "%s %s %s/%s: HTTP %ld: %s", what, x->kind, x->o->ns, x->name,
                       r.status, r.msg);
    opbuf_release(&r.body);
    return rc;
}

static int released(const rel_ctx *x, const char *container)
{
    return !x->o->container || !strcmp(x->o->container, container);
}

/* Is this annotation optipod's for a released container (or, for the whole
 * workload, any of optipod's)? */
static int released_key(const rel_ctx *x, const char *key)
{
    if (strncmp(key, ANN, strlen(ANN)) || rrec_is_marker(key))
        return 0;
    if (!x->o->container)
        return 1;
    const char *dot = strchr(key + strlen(ANN), '.');
    return dot && !strcmp(dot + 1, x->o->container);
}

/* The fieldsV1 node at f:spec.f:template.f:spec.f:<list>.k:{"name":C}.f:resources.f:<kind>;
 * created when `create`. */
static cJSON *res_node(cJSON *fields, int init, const char *ctr, const char *kind, int create)
{
    char key[MFIELDS_NAME_MAX + 32], fkind[32];
    snprintf(key, sizeof key, "k:{\"name\":\"%s\"}", ctr);
    snprintf(fkind, sizeof fkind, "f:%s", kind);
    const char *path[] = {
        "f:spec", "f:template",  "f:spec", init ? "f:initContainers" : "f:containers",
        key,      "f:resources", fkind};
    cJSON *n = fields;
    for (size_t i = 0; n && i < sizeof path / sizeof path[0]; i++) {
        cJSON *next = cJSON_GetObjectItemCaseSensitive(n, path[i]);
        if (!next && create)
            next = cJSON_AddObjectToObject(n, path[i]);
        n = next;
    }
    return n;
}

/* Drop an empty f:requests / f:limits and f:resources left behind (an empty
 * object would mean "owns this field"). */
static void prune(cJSON *fields, int init, const char *ctr)
{
    cJSON *req = res_node(fields, init, ctr, "requests", 0);
    cJSON *lim = res_node(fields, init, ctr, "limits", 0);
    cJSON *any = req ? req : lim;
    if (!any)
        return;
    /* f:resources is the parent of either; find it through the item */
    char key[MFIELDS_NAME_MAX + 32];
    snprintf(key, sizeof key, "k:{\"name\":\"%s\"}", ctr);
    const char *path[] = {"f:spec", "f:template", "f:spec",
                          init ? "f:initContainers" : "f:containers", key};
    cJSON *item = fields;
    for (size_t i = 0; item && i < sizeof path / sizeof path[0]; i++)
        item = cJSON_GetObjectItemCaseSensitive(item, path[i]);
    cJSON *res = cJSON_GetObjectItemCaseSensitive(item, "f:resources");
    if (req && !req->child)
        cJSON_DeleteItemFromObjectCaseSensitive(res, "f:requests");
    if (lim && !lim->child)
        cJSON_DeleteItemFromObjectCaseSensitive(res, "f:limits");
    if (res && !res->child)
        cJSON_DeleteItemFromObjectCaseSensitive(item, "f:resources");
}

/* Step 1: the values of released containers that only optipod owns change
 * hands without changing: a PATCH as optipod-release (an Update) that moves
 * those leaves from optipod's Apply entry into an optipod-release Update entry
 * of metadata.managedFields. A re-assert of the same value would not do it:
 * an Update owns only what it changes, and changing a request rolls the pods.
 * The API server takes managedFields from the request when it sets them (the
 * way client-go's csaupgrade migrates owners); the patch is guarded by the
 * live resourceVersion. Returns how many values moved (or a negative errno). */
static int handoff(rel_ctx *x, const cJSON *obj, const kproj_obj *live, const mfields *mf)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "resourceVersion"));
    const cJSON *live_mf = cJSON_GetObjectItemCaseSensitive(md, "managedFields");
    cJSON *mfs = cJSON_IsArray(live_mf) ? cJSON_Duplicate(live_mf, 1) : cJSON_CreateArray();
    cJSON *neutral = cJSON_CreateObject(), *nf = NULL;
    int n = 0, rc = 0;
    if (!mfs || !neutral || !(nf = cJSON_AddObjectToObject(neutral, "fieldsV1"))) {
        rc = operr_set(x->err, -ENOMEM, "out of memory");
        goto out;
    }
    for (int init = 0; init < 2 && !rc; init++) {
        const kproj_container *cs = init ? live->init_containers : live->containers;
        size_t nc = init ? live->ninit_containers : live->ncontainers;
        enum mfields_list l = init ? MFIELDS_INIT_CONTAINERS : MFIELDS_CONTAINERS;
        for (size_t i = 0; i < nc && !rc; i++) {
            if (!cs[i].name || !released(x, cs[i].name))
                continue;
            for (int v = 0; v < 4 && !rc; v++) {
                const char *val = v < 2 ? kproj_kv_get(cs[i].requests, cs[i].nrequests, ress[v])
                                        : kproj_kv_get(cs[i].limits, cs[i].nlimits, ress[v]);
                char p[MFIELDS_PATH_MAX], leaf[16];
                const mfields_entry *own[4];
                if (!val ||
                    mfields_path_resource(p, sizeof p, l, cs[i].name, kinds[v], ress[v]) < 0 ||
                    !mfields_manager_owns(mf, MFIELDS_OPTIPOD, p) ||
                    mfields_owners(mf, p, MFIELDS_OPTIPOD, own, 4) > 0)
                    continue;
                snprintf(leaf, sizeof leaf, "f:%s", ress[v]);
                cJSON *e;
                cJSON_ArrayForEach(e, mfs)
                {
                    const char *m =
                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "manager"));
                    if (!m || strcmp(m, MFIELDS_OPTIPOD))
                        continue;
                    cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "fieldsV1");
                    cJSON_DeleteItemFromObjectCaseSensitive(
                        res_node(f, init, cs[i].name, kinds[v], 0), leaf);
                    prune(f, init, cs[i].name);
                }
                cJSON *dst = res_node(nf, init, cs[i].name, kinds[v], 1);
                if (!dst || !cJSON_AddObjectToObject(dst, leaf)) {
                    rc = operr_set(x->err, -ENOMEM, "out of memory");
                    break;
                }
                n++;
                rc = opbuf_printf(x->report,
                                  "  kept %s %s.%s.%s=%s: only optipod owned it; ownership handed "
                                  "to %s (an Update), so the release does not delete it\n",
                                  init ? "init container" : "container", cs[i].name, kinds[v],
                                  ress[v], val, CLI_RELEASE_MGR);
            }
        }
    }
    if (rc || n == 0)
        goto out;
    const char *av = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"));
    cJSON_AddStringToObject(neutral, "manager", CLI_RELEASE_MGR);
    cJSON_AddStringToObject(neutral, "operation", "Update");
    cJSON_AddStringToObject(neutral, "apiVersion", av ? av : x->res->group_version);
    cJSON_AddStringToObject(neutral, "fieldsType", "FieldsV1");
    cJSON_DetachItemViaPointer(neutral, nf);
    cJSON_AddItemToObject(neutral, "fieldsV1", nf);
    cJSON_AddItemToArray(mfs, neutral);
    neutral = NULL;
    cJSON *patch = cJSON_CreateArray();
    cJSON *t = cJSON_CreateObject(), *r = cJSON_CreateObject();
    if (!patch || !t || !r) {
        cJSON_Delete(patch);
        cJSON_Delete(t);
        cJSON_Delete(r);
        rc = operr_set(x->err, -ENOMEM, "out of memory");
        goto out;
    }
    cJSON_AddItemToArray(patch, t);
    cJSON_AddItemToArray(patch, r);
    cJSON_AddStringToObject(t, "op", "test");
    cJSON_AddStringToObject(t, "path", "/metadata/resourceVersion");
    cJSON_AddStringToObject(t, "value", rv ? rv : "");
    cJSON_AddStringToObject(r, "op", "replace");
    cJSON_AddStringToObject(r, "path", "/metadata/managedFields");
    cJSON_AddItemToObject(r, "value", mfs);
    mfs = NULL;
    char *body = cJSON_PrintUnformatted(patch);
    cJSON_Delete(patch);
    rc = body ? write_path(x, CLI_RELEASE_MGR, 0) : -ENOMEM;
    rc = rc
             ?: rel_send(x, "hand values over to " CLI_RELEASE_MGR " on",
                         "application/json-patch+json", body);
    cJSON_free(body);
out:
    cJSON_Delete(mfs);
    cJSON_Delete(neutral);
    return rc ? rc : n;
}

/* Step 2: optipod's apply without the released containers and annotations. */
static int apply_release(rel_ctx *x, const kproj_obj *live, const mfields *mf)
{
    ssa_container keep[SSA_MAX_CONTAINERS];
    const char *rel[MAX_RELEASED];
    size_t nkeep = 0, nrel = 0;
    for (int init = 0; init < 2; init++) {
        const kproj_container *cs = init ? live->init_containers : live->containers;
        size_t nc = init ? live->ninit_containers : live->ncontainers;
        enum mfields_list l = init ? MFIELDS_INIT_CONTAINERS : MFIELDS_CONTAINERS;
        for (size_t i = 0; i < nc; i++) {
            if (!cs[i].name)
                continue;
            if (released(x, cs[i].name)) {
                if (nrel < MAX_RELEASED)
                    rel[nrel++] = cs[i].name;
                continue;
            }
            if (nkeep == SSA_MAX_CONTAINERS)
                continue;
            /* keep writing exactly what optipod owns now */
            ssa_container *k = &keep[nkeep];
            memset(k, 0, sizeof *k);
            k->name = cs[i].name;
            k->init = init;
            const char **slot[4] = {&k->cpu_request, &k->memory_request, &k->cpu_limit,
                                    &k->memory_limit};
            int any = 0;
            for (int v = 0; v < 4; v++) {
                char p[MFIELDS_PATH_MAX];
                if (mfields_path_resource(p, sizeof p, l, cs[i].name, kinds[v], ress[v]) < 0 ||
                    !mfields_manager_owns(mf, MFIELDS_OPTIPOD, p))
                    continue;
                *slot[v] = v < 2 ? kproj_kv_get(cs[i].requests, cs[i].nrequests, ress[v])
                                 : kproj_kv_get(cs[i].limits, cs[i].nlimits, ress[v]);
                any |= *slot[v] != NULL;
            }
            if (any)
                nkeep++;
        }
    }
    ssa_request rq = {.live = live,
                      .mf = mf,
                      .containers = keep,
                      .ncontainers = nkeep,
                      .allow_limits = 1,
                      .release = rel,
                      .nrelease = nrel,
                      .allow_delete = 0};
    opbuf body;
    opbuf_init(&body, CLI_MAX_BODY);
    ssa_report rep;
    cJSON *root = NULL;
    int rc = ssa_build(&rq, &body, &rep, x->err);
    if (rc)
        goto out;
    root = cJSON_ParseWithLength(opbuf_str(&body), body.len);
    cJSON *md = root ? cJSON_GetObjectItemCaseSensitive(root, "metadata") : NULL;
    if (!md) {
        rc = operr_set(x->err, -ENOMEM, "release body: out of memory");
        goto out;
    }
    /* optipod's annotations that stay (a container release keeps the others) */
    cJSON *ann = NULL;
    for (size_t i = 0; i < live->nannotations; i++) {
        if (released_key(x, live->annotations[i].key))
            continue;
        if (!ann)
            ann = cJSON_AddObjectToObject(md, "annotations");
        cJSON_AddStringToObject(ann, live->annotations[i].key, live->annotations[i].value);
    }
    for (int i = 0; i < rep.nnotes && !rc; i++) {
        const ssa_note *nt = &rep.notes[i];
        if (nt->action == SSA_SKIPPED)
            continue;
        rc = opbuf_printf(x->report, "  %s %s%s%s: %s\n", ssa_action_name(nt->action),
                          nt->container, nt->field[0] ? "." : "", nt->field, nt->reason);
    }
    char *s = rc ? NULL : cJSON_PrintUnformatted(root);
    if (!rc && !s)
        rc = -ENOMEM;
    rc = rc ?: write_path(x, MFIELDS_OPTIPOD, 1);
    rc = rc ?: rel_send(x, "release apply of", "application/apply-patch+yaml", s);
    cJSON_free(s);
out:
    cJSON_Delete(root);
    opbuf_release(&body);
    return rc;
}

/* Step 3: annotations still there (written by an Update, not the apply). */
static int drop_annotations(rel_ctx *x, const kproj_obj *live, int *dropped)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *ann = cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "metadata"), "annotations");
    int n = 0, rc = ann ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < live->nannotations; i++) {
        if (!released_key(x, live->annotations[i].key))
            continue;
        cJSON_AddNullToObject(ann, live->annotations[i].key);
        n++;
    }
    if (!rc && n > 0) {
        char *s = cJSON_PrintUnformatted(root);
        rc = s ? write_path(x, MFIELDS_OPTIPOD, 0) : -ENOMEM;
        rc = rc ?: rel_send(x, "remove annotations of", "application/merge-patch+json", s);
        cJSON_free(s);
    }
    cJSON_Delete(root);
    *dropped = n;
    return rc;
}

/* Step 4 (and `manage`): the release marker, as field manager optipod-release
 * (the user's, never optipod's own apply). value NULL removes the marker(s):
 * the container's, or for the whole workload every one. */
static int set_marker(rel_ctx *x, const kproj_obj *live, const char *value)
{
    char key[sizeof RREC_MANAGED_KEY + MFIELDS_NAME_MAX + 2];
    snprintf(key, sizeof key, "%s%s%s", RREC_MANAGED_KEY, x->o->container ? "." : "",
             x->o->container ? x->o->container : "");
    cJSON *root = cJSON_CreateObject();
    cJSON *ann = cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "metadata"), "annotations");
    int rc = ann ? 0 : -ENOMEM;
    if (!rc && value)
        rc = cJSON_AddStringToObject(ann, key, value) ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && !value && i < live->nannotations; i++) {
        const char *k = live->annotations[i].key;
        if (rrec_is_marker(k) && (!x->o->container || !strcmp(k, key)))
            rc = cJSON_AddNullToObject(ann, k) ? 0 : -ENOMEM;
    }
    if (!rc && (value || ann->child)) {
        char *s = cJSON_PrintUnformatted(root);
        rc = s ? write_path(x, CLI_RELEASE_MGR, 0) : -ENOMEM;
        rc = rc
                 ?: rel_send(x, value ? "mark released" : "mark managed",
                             "application/merge-patch+json", s);
        cJSON_free(s);
    }
    cJSON_Delete(root);
    return rc;
}

static int load(rel_ctx *x, cJSON **obj, kproj_obj **proj, mfields *mf, enum kproj_kind pk)
{
    x->get_rc = -EIO;
    if (!(*obj = get_live(x)))
        return x->get_rc;
    int rc = kproj_from_json(*obj, pk, proj);
    if (rc)
        return operr_set(x->err, rc, "%s %s/%s: cannot read it", x->kind, x->o->ns, x->name);
    rc = mfields_parse(mf, *obj, x->err);
    if (rc != 0)
        operr_wrap(x->err, rc, "%s %s/%s: managedFields", x->kind, x->o->ns, x->name);
    return rc;
}

/* Values set in the released containers, and how many of them optipod still owns. */
static void tally(const rel_ctx *x, const kproj_obj *live, const mfields *mf, int *values,
                  int *owned)
{
    *values = *owned = 0;
    for (int init = 0; init < 2; init++) {
        const kproj_container *cs = init ? live->init_containers : live->containers;
        size_t nc = init ? live->ninit_containers : live->ncontainers;
        for (size_t i = 0; i < nc; i++) {
            if (!cs[i].name || !released(x, cs[i].name))
                continue;
            for (int v = 0; v < 4; v++) {
                const char *val = v < 2 ? kproj_kv_get(cs[i].requests, cs[i].nrequests, ress[v])
                                        : kproj_kv_get(cs[i].limits, cs[i].nlimits, ress[v]);
                char p[MFIELDS_PATH_MAX];
                *values += val != NULL;
                if (mfields_path_resource(p, sizeof p,
                                          init ? MFIELDS_INIT_CONTAINERS : MFIELDS_CONTAINERS,
                                          cs[i].name, kinds[v], ress[v]) >= 0 &&
                    mfields_manager_owns(mf, MFIELDS_OPTIPOD, p))
                    (*owned)++;
            }
        }
    }
}

int cli_release(cli_conn *c, const cli_release_opts *o, opbuf *report, operr *err)
{
    rel_ctx x = {.c = c, .o = o, .report = report, .err = err};
    if (cli_parse_ref(o->ref, &x.kind, &x.res, &x.name))
        return operr_set(err, -EINVAL,
                         "'%s': expected deployment/NAME, statefulset/NAME or daemonset/NAME",
                         o->ref ? o->ref : "");
    enum kproj_kind pk = kproj_kind_for_resource(x.res->resource);
    opbuf_init(&x.path, 4096);
    cJSON *obj = NULL;
    kproj_obj *live = NULL;
    mfields mf;
    mfields_init(&mf);
    int rc = load(&x, &obj, &live, &mf, pk);
    if (rc)
        goto out;
    if (o->container && !kproj_container_get(live, o->container)) {
        int found = 0;
        for (size_t i = 0; i < live->ninit_containers; i++)
            found |= live->init_containers[i].name &&
                     !strcmp(live->init_containers[i].name, o->container);
        if (!found) {
            rc = operr_set(err, -ENOENT, "%s %s/%s has no container \"%s\"", x.kind, o->ns, x.name,
                           o->container);
            goto out;
        }
    }
    rc = opbuf_printf(report, "%sRelease of %s %s/%s%s%s%s by optipod:\n",
                      o->dry_run ? "[dry run] " : "", x.kind, o->ns, x.name,
                      o->container ? " (container " : "", o->container ? o->container : "",
                      o->container ? ")" : "");
    int values_before = 0, values_after = 0, owned_after = 0;
    tally(&x, live, &mf, &values_before, &owned_after);
    int n = rc ? rc : handoff(&x, obj, live, &mf);
    if (n < 0) {
        rc = n;
        goto out;
    }
    if (n > 0 && !o->dry_run) {
        /* the apply must see the new co-owner */
        cJSON_Delete(obj);
        kproj_free(live);
        mfields_release(&mf);
        obj = NULL;
        live = NULL;
        rc = load(&x, &obj, &live, &mf, pk);
        if (rc != 0)
            goto out;
    }
    rc = apply_release(&x, live, &mf);
    if (rc != 0)
        goto out;
    int dropped = 0;
    if (!o->dry_run) {
        cJSON_Delete(obj);
        kproj_free(live);
        mfields_release(&mf);
        obj = NULL;
        live = NULL;
        rc = load(&x, &obj, &live, &mf, pk);
        if (rc != 0)
            goto out;
        rc = drop_annotations(&x, live, &dropped);
        if (rc != 0)
            goto out;
    }
    if (dropped > 0)
        rc = opbuf_printf(report, "  removed %d optipod.io/ annotation(s) written by an Update\n",
                          dropped);
    rc = rc
             ?: opbuf_printf(report, "  optipod.io/ annotations of the released %s: %s\n",
                             o->container ? "container" : "workload",
                             o->dry_run ? "would be removed" : "removed");
    if (!rc && !o->dry_run)
        rc = set_marker(&x, live, "false");
    rc = rc
             ?: opbuf_printf(report,
                             "  %s %s%s%s: \"false\": the controller and the webhook leave it "
                             "alone until `kubectl optipod manage %s%s%s`\n",
                             o->dry_run ? "would mark" : "marked", RREC_MANAGED_KEY,
                             o->container ? "." : "", o->container ? o->container : "", o->ref,
                             o->container ? " --container " : "", o->container ? o->container : "");
    if (rc || o->dry_run)
        goto out;
    /* say what the server now holds, not what was intended */
    tally(&x, live, &mf, &values_after, &owned_after);
    if (owned_after)
        rc = opbuf_printf(report, "  WARNING: optipod still owns %d released field(s)\n",
                          owned_after);
    else
        rc = opbuf_printf(report, "  field manager optipod no longer owns the released fields\n");
    if (!rc && values_after < values_before)
        rc = opbuf_printf(report, "  WARNING: %d request/limit value(s) were deleted\n",
                          values_before - values_after);
    else if (!rc)
        rc = opbuf_printf(report, "  no value was deleted (%d request/limit value(s) kept)\n",
                          values_after);
out:
    cJSON_Delete(obj);
    kproj_free(live);
    mfields_release(&mf);
    opbuf_release(&x.path);
    return rc;
}

int cli_manage(cli_conn *c, const cli_release_opts *o, opbuf *report, operr *err)
{
    rel_ctx x = {.c = c, .o = o, .report = report, .err = err};
    if (cli_parse_ref(o->ref, &x.kind, &x.res, &x.name))
        return operr_set(err, -EINVAL,
                         "'%s': expected deployment/NAME, statefulset/NAME or daemonset/NAME",
                         o->ref ? o->ref : "");
    opbuf_init(&x.path, 4096);
    cJSON *obj = NULL;
    kproj_obj *live = NULL;
    mfields mf;
    mfields_init(&mf);
    int rc = load(&x, &obj, &live, &mf, kproj_kind_for_resource(x.res->resource));
    if (rc)
        goto out;
    int was = o->container ? rrec_released(live, o->container) : 0;
    for (size_t i = 0; !o->container && i < live->nannotations; i++)
        was |= rrec_is_marker(live->annotations[i].key);
    if (!was) {
        rc = opbuf_printf(report, "%s %s/%s%s%s: not released; nothing to do\n", x.kind, o->ns,
                          x.name, o->container ? " container " : "",
                          o->container ? o->container : "");
        goto out;
    }
    if (o->container && rrec_released(live, NULL)) {
        rc = operr_set(err, -EBUSY,
                       "%s %s/%s is released as a whole: `kubectl optipod manage %s` first", x.kind,
                       o->ns, x.name, o->ref);
        goto out;
    }
    if (!o->dry_run && (rc = set_marker(&x, live, NULL)) != 0)
        goto out;
    rc = opbuf_printf(report,
                      "%s%s %s/%s%s%s: %s again; the controller writes it at its next "
                      "reconcile\n",
                      o->dry_run ? "[dry run] " : "", x.kind, o->ns, x.name,
                      o->container ? " container " : "", o->container ? o->container : "",
                      o->dry_run ? "would be managed" : "managed");
out:
    cJSON_Delete(obj);
    kproj_free(live);
    mfields_release(&mf);
    opbuf_release(&x.path);
    return rc;
}
