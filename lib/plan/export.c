/*
 * plan export: kustomize strategic-merge patches, one per workload with a
 * change, and a kustomization.yaml (kind Component) listing them. Files are
 * rewritten only when their bytes change (write to a temporary name, then
 * rename), and nothing else in the directory is touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/quantity.h"
#include "plan/internal.h"
#include "util/emit.h"

static bool changes(const plan_container *c)
{
    return c->has_usage && (c->res.cpu.decision == ENG_APPLY || c->res.mem.decision == ENG_APPLY);
}

static void add_res(cJSON *req, cJSON *lim, const char *key, bool cpu, const eng_res *r)
{
    if (r->decision != ENG_APPLY)
        return;
    char v[KQ_STR_MAX];
    if (cpu)
        kq_fmt_cpu_milli(r->req, v, sizeof v);
    else
        kq_fmt_mem_bytes(r->req, v, sizeof v);
    cJSON_AddStringToObject(req, key, v);
    if (!r->has_lim)
        return;
    if (cpu)
        kq_fmt_cpu_milli(r->lim, v, sizeof v);
    else
        kq_fmt_mem_bytes(r->lim, v, sizeof v);
    cJSON_AddStringToObject(lim, key, v);
}

static cJSON *ctr_patch(const plan_container *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON *res = cJSON_AddObjectToObject(o, "resources");
    cJSON *req = cJSON_CreateObject(), *lim = cJSON_CreateObject();
    if (!res || !req || !lim) {
        cJSON_Delete(req);
        cJSON_Delete(lim);
        return o;
    }
    add_res(req, lim, "cpu", true, &c->res.cpu);
    add_res(req, lim, "memory", false, &c->res.mem);
    /* limits first, as kubectl prints them (alphabetical) */
    if (lim->child)
        cJSON_AddItemToObject(res, "limits", lim);
    else
        cJSON_Delete(lim);
    cJSON_AddItemToObject(res, "requests", req);
    return o;
}

static cJSON *workload_patch(const plan_workload *w)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc)
        return NULL;
    cJSON_AddStringToObject(doc, "apiVersion", w->api_version);
    cJSON_AddStringToObject(doc, "kind", w->kind);
    cJSON *md = cJSON_AddObjectToObject(doc, "metadata");
    if (md) {
        cJSON_AddStringToObject(md, "name", w->name);
        cJSON_AddStringToObject(md, "namespace", w->ns);
    }
    cJSON *spec = cJSON_AddObjectToObject(cJSON_AddObjectToObject(doc, "spec"), "template");
    spec = cJSON_AddObjectToObject(spec, "spec");
    cJSON *ctrs = NULL, *inits = NULL;
    for (size_t i = 0; spec && i < w->nctrs; i++) {
        const plan_container *c = &w->ctrs[i];
        if (!changes(c))
            continue;
        cJSON **list = c->init ? &inits : &ctrs;
        if (!*list)
            *list = cJSON_CreateArray();
        cJSON_AddItemToArray(*list, ctr_patch(c));
    }
    if (spec && ctrs)
        cJSON_AddItemToObject(spec, "containers", ctrs);
    else
        cJSON_Delete(ctrs);
    if (spec && inits)
        cJSON_AddItemToObject(spec, "initContainers", inits);
    else
        cJSON_Delete(inits);
    return doc;
}

static const char *api_group(const char *api_version, char *buf, size_t size)
{
    const char *slash = strchr(api_version, '/');
    if (!slash)
        return "";
    snprintf(buf, size, "%.*s", (int)(slash - api_version), api_version);
    return buf;
}

static const char *api_ver(const char *api_version)
{
    const char *slash = strchr(api_version, '/');
    return slash ? slash + 1 : api_version;
}

/* Write `data` to dir/name unless the file already holds exactly these bytes. */
static int write_if_changed(const char *dir, const char *name, const opbuf *data, operr *err)
{
    char path[PATH_MAX], tmp[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    opbuf old;
    operr ignore;
    if (plan_read_file(path, &old, &ignore) == 0) {
        bool same = old.len == data->len && memcmp(old.data, data->data, data->len) == 0;
        opbuf_release(&old);
        if (same)
            return 0;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return operr_set(err, -errno, "'%s': %s", tmp, strerror(errno));
    for (size_t off = 0; off < data->len;) {
        ssize_t n = write(fd, data->data + off, data->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = operr_set(err, -errno, "'%s': %s", tmp, strerror(errno));
            break;
        }
        off += (size_t)n;
    }
    if (close(fd) < 0 && rc == 0)
        rc = operr_set(err, -errno, "'%s': %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) < 0)
        rc = operr_set(err, -errno, "'%s': %s", path, strerror(errno));
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static int mkdirs(const char *dir, operr *err)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return operr_set(err, -ENAMETOOLONG, "'%s': path too long", dir);
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c != '/' && c != 0)
            continue;
        *s = 0;
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return operr_set(err, -errno, "'%s': %s", p, strerror(errno));
        *s = c;
        if (!c)
            break;
    }
    return 0;
}

#define KUST_HEADER                                                                                \
    "# Generated by `%s`: resource patches for the workloads below.\n"                             \
    "# Add to an overlay with `components: [<this directory>]`. Re-running it\n"                   \
    "# with the same inputs rewrites the same bytes.\n"

static const char *generator(const plan_export_opts *o, const char *dflt)
{
    return o && o->generator ? o->generator : dflt;
}

/* A --format patch file's header: how to apply it, with what. */
static int patch_header(const plan_workload *w, const char *name, const char *gen, opbuf *b)
{
    char kind[64];
    snprintf(kind, sizeof kind, "%s", w->kind);
    for (char *c = kind; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    return opbuf_printf(b,
                        "# Generated by `%s`: a strategic-merge patch of the resources of\n"
                        "# %s %s/%s. Apply it with\n"
                        "#   kubectl patch %s %s -n %s --type strategic --patch-file %s\n",
                        gen, w->kind, w->ns, w->name, kind, w->name, w->ns, name);
}

int plan_export(const plan *p, const char *dir, size_t *written, operr *err)
{
    return plan_export_with(p, dir, NULL, written, err);
}

int plan_export_with(const plan *p, const char *dir, const plan_export_opts *o, size_t *written,
                     operr *err)
{
    const char *gen = generator(o, "optipod plan");
    bool patch_only = o && o->patch_only;
    if (err)
        err->msg[0] = 0;
    int rc = mkdirs(dir, err);
    if (rc < 0)
        return rc;
    cJSON *kust = cJSON_CreateObject();
    opbuf b;
    opbuf_init(&b, PLAN_MAX_FILE);
    size_t count = 0;
    if (!kust)
        return -ENOMEM;
    cJSON_AddStringToObject(kust, "apiVersion", "kustomize.config.k8s.io/v1alpha1");
    cJSON_AddStringToObject(kust, "kind", "Component");
    cJSON *patches = cJSON_AddArrayToObject(kust, "patches");
    rc = -ENOMEM;
    if (!patches)
        goto out;
    for (size_t i = 0; i < p->nwl; i++) {
        const plan_workload *w = &p->wl[i];
        bool any = false;
        for (size_t k = 0; k < w->nctrs; k++)
            any |= changes(&w->ctrs[k]);
        if (!any)
            continue;
        char name[PATH_MAX];
        rc = plan_patch_name(w, name, sizeof name);
        if (rc < 0) {
            operr_set(err, rc, "%s %s/%s: patch file name too long", w->kind, w->ns, w->name);
            goto out;
        }
        cJSON *doc = workload_patch(w);
        opbuf_reset(&b);
        rc = patch_only ? patch_header(w, name, gen, &b) : 0;
        rc = rc ?: doc ? opemit_yaml(doc, &b) : -ENOMEM;
        cJSON_Delete(doc);
        if (rc < 0)
            goto out;
        rc = write_if_changed(dir, name, &b, err);
        if (rc < 0)
            goto out;
        count++;
        cJSON *e = cJSON_CreateObject();
        cJSON *t = cJSON_CreateObject();
        if (!e || !t) {
            cJSON_Delete(e);
            cJSON_Delete(t);
            rc = -ENOMEM;
            goto out;
        }
        cJSON_AddItemToArray(patches, e);
        cJSON_AddStringToObject(e, "path", name);
        cJSON_AddItemToObject(e, "target", t);
        char grp[128];
        cJSON_AddStringToObject(t, "group", api_group(w->api_version, grp, sizeof grp));
        cJSON_AddStringToObject(t, "version", api_ver(w->api_version));
        cJSON_AddStringToObject(t, "kind", w->kind);
        cJSON_AddStringToObject(t, "name", w->name);
        cJSON_AddStringToObject(t, "namespace", w->ns);
    }
    rc = 0;
    if (patch_only)
        goto out; /* plain patch files: no kustomization.yaml */
    opbuf_reset(&b);
    rc = opbuf_printf(&b, KUST_HEADER, gen);
    if (rc == 0)
        rc = opemit_yaml(kust, &b);
    if (rc == 0)
        rc = write_if_changed(dir, "kustomization.yaml", &b, err);
out:
    if (rc < 0 && err && !err->msg[0])
        operr_set(err, rc, "'%s': %s", dir, strerror(-rc));
    cJSON_Delete(kust);
    opbuf_release(&b);
    if (written)
        *written = count;
    return rc;
}

#define HELM_HEADER                                                                                \
    "# Generated by `%s`: recommended resources per\n"                                             \
    "# container, keyed workloads.<kind>-<namespace>-<name>.containers.<container>.\n"             \
    "# Map them into your chart's values; only changed values are listed.\n"

int plan_export_helm(const plan *p, const char *dir, size_t *written, operr *err)
{
    return plan_export_helm_with(p, dir, NULL, written, err);
}

int plan_export_helm_with(const plan *p, const char *dir, const plan_export_opts *opts,
                          size_t *written, operr *err)
{
    if (err)
        err->msg[0] = 0;
    int rc = mkdirs(dir, err);
    if (rc < 0)
        return rc;
    size_t count = 0;
    opbuf b;
    opbuf_init(&b, PLAN_MAX_FILE);
    cJSON *doc = cJSON_CreateObject();
    cJSON *wls = cJSON_AddObjectToObject(doc, "workloads");
    rc = -ENOMEM;
    if (!wls)
        goto out;
    for (size_t i = 0; i < p->nwl; i++) {
        const plan_workload *w = &p->wl[i];
        cJSON *ctrs = NULL;
        for (size_t k = 0; k < w->nctrs; k++) {
            const plan_container *c = &w->ctrs[k];
            if (!changes(c))
                continue;
            if (!ctrs) {
                char key[PATH_MAX];
                rc = plan_patch_name(w, key, sizeof key);
                if (rc < 0)
                    goto out;
                key[strlen(key) - 5] = 0; /* no ".yaml" */
                cJSON *o = cJSON_AddObjectToObject(wls, key);
                if (!o || !cJSON_AddStringToObject(o, "kind", w->kind) ||
                    !cJSON_AddStringToObject(o, "namespace", w->ns) ||
                    !cJSON_AddStringToObject(o, "name", w->name) ||
                    !(ctrs = cJSON_AddObjectToObject(o, "containers"))) {
                    rc = -ENOMEM;
                    goto out;
                }
                count++;
            }
            cJSON *patch = ctr_patch(c); /* {"name":..., "resources":...} */
            if (!patch) {
                rc = -ENOMEM;
                goto out;
            }
            cJSON *one = cJSON_AddObjectToObject(ctrs, c->name);
            cJSON *res = cJSON_DetachItemFromObjectCaseSensitive(patch, "resources");
            cJSON_Delete(patch);
            if (!one || !res) {
                cJSON_Delete(res);
                rc = -ENOMEM;
                goto out;
            }
            cJSON_AddItemToObject(one, "resources", res);
        }
    }
    rc = opbuf_printf(&b, HELM_HEADER, generator(opts, "optipod plan --format helm-values"));
    if (rc == 0)
        rc = opemit_yaml(doc, &b);
    if (rc == 0)
        rc = write_if_changed(dir, "values-optipod.yaml", &b, err);
out:
    if (rc < 0 && err && !err->msg[0])
        operr_set(err, rc, "'%s': %s", dir, strerror(-rc));
    cJSON_Delete(doc);
    opbuf_release(&b);
    if (written)
        *written = count;
    return rc;
}
