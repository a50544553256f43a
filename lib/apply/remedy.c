/*
 * remedy: YAML and Event text telling a GitOps tool to leave optipod's fields
 * alone. See remedy.h for where each field comes from.
 */
#include "apply/remedy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "apply/fields.h"
#include "util/emit.h"

enum remedy_tool remedy_tool_for_manager(const char *manager)
{
    if (!manager)
        return REMEDY_UNKNOWN;
    if (!strncmp(manager, "argocd", 6))
        return REMEDY_ARGOCD;
    if (!strcmp(manager, "kustomize-controller"))
        return REMEDY_FLUX_KUSTOMIZE;
    if (!strcmp(manager, "helm-controller"))
        return REMEDY_FLUX_HELM;
    return REMEDY_UNKNOWN;
}

const char *remedy_tool_name(enum remedy_tool t)
{
    switch (t) {
    case REMEDY_ARGOCD:
        return "Argo CD";
    case REMEDY_FLUX_KUSTOMIZE:
        return "Flux kustomize-controller";
    case REMEDY_FLUX_HELM:
        return "Flux helm-controller";
    default:
        return "unknown";
    }
}

/* A name as an anchored regular expression, quoted: web.app → '^web\.app$'. */
static int yaml_regex(opbuf *b, const char *s)
{
    int rc = opbuf_puts(b, "'^");
    for (const char *p = s; rc == 0 && *p; p++) {
        if (strchr(".^$*+?()[]{}|\\", *p))
            rc = opbuf_printf(b, "\\%c", *p);
        else if (*p == '\'')
            rc = opbuf_puts(b, "''");
        else
            rc = opbuf_append(b, p, 1);
    }
    return rc ? rc : opbuf_puts(b, "$'");
}

static int pointer_escape(opbuf *b, const char *s, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (s[i] == '~')
            rc = opbuf_puts(b, "~0");
        else if (s[i] == '/')
            rc = opbuf_puts(b, "~1");
        else
            rc = opbuf_append(b, &s[i], 1);
    }
    return rc;
}

int remedy_pointer(const kproj_obj *live, const remedy_field *f, char *buf, size_t cap)
{
    if (!live || !f || !f->container || !f->field)
        return -EINVAL;
    const char *dot = strchr(f->field, '.');
    if (!dot || dot[1] == '\0' ||
        (strncmp(f->field, "requests.", 9) && strncmp(f->field, "limits.", 7)))
        return -EINVAL;
    const kproj_container *v = f->init ? live->init_containers : live->containers;
    size_t n = f->init ? live->ninit_containers : live->ncontainers, idx = n;
    for (size_t i = 0; i < n && idx == n; i++) {
        if (v[i].name && !strcmp(v[i].name, f->container))
            idx = i;
    }
    if (idx == n)
        return -ENOENT;
    opbuf b;
    opbuf_init(&b, MFIELDS_PATH_MAX);
    int rc = opbuf_printf(&b, "/spec/template/spec/%s/%zu/resources/",
                          f->init ? "initContainers" : "containers", idx);
    if (rc == 0)
        rc = pointer_escape(&b, f->field, (size_t)(dot - f->field));
    if (rc == 0)
        rc = opbuf_puts(&b, "/");
    if (rc == 0)
        rc = pointer_escape(&b, dot + 1, strlen(dot + 1));
    if (rc == 0 && b.len >= cap)
        rc = -E2BIG;
    if (rc == 0) {
        memcpy(buf, opbuf_str(&b), b.len + 1);
        rc = (int)b.len;
    }
    opbuf_release(&b);
    return rc;
}

static const char *mgr(const remedy_request *rq)
{
    return rq->manager && *rq->manager ? rq->manager : MFIELDS_OPTIPOD;
}

/* The JSON pointers of rq's fields, de-duplicated, NUL-separated into `ptrs`;
 * returns how many (0 = none in the live object). */
static int pointers(const remedy_request *rq, opbuf *ptrs)
{
    int n = 0;
    for (size_t i = 0; i < rq->nfields; i++) {
        char p[MFIELDS_PATH_MAX];
        int len = remedy_pointer(rq->live, &rq->fields[i], p, sizeof(p));
        if (len <= 0)
            continue;
        int dup = 0;
        for (size_t off = 0; off < ptrs->len && !dup; off += strlen(ptrs->data + off) + 1)
            dup = !strcmp(ptrs->data + off, p);
        if (dup)
            continue;
        if (opbuf_append(ptrs, p, (size_t)len + 1) != 0)
            return -E2BIG;
        n++;
    }
    return n;
}

static int check(const remedy_request *rq)
{
    if (!rq || !rq->live || !rq->live->name)
        return -EINVAL;
    switch (rq->live->kind) {
    case KPROJ_DEPLOYMENT:
    case KPROJ_STATEFULSET:
    case KPROJ_DAEMONSET:
    case KPROJ_REPLICASET:
        return 0;
    default:
        return -EINVAL;
    }
}

static int subject(opbuf *b, const kproj_obj *o)
{
    return opbuf_printf(b, "%s %s%s%s", kproj_kind_name(o->kind), o->ns ? o->ns : "",
                        o->ns ? "/" : "", o->name);
}

int remedy_argocd_entry(const remedy_request *rq, opbuf *b)
{
    const kproj_obj *o = rq->live;
    int rc = opbuf_printf(
        b, "    - group: apps\n      kind: %s\n      name: ", kproj_kind_name(o->kind));
    rc = rc ? rc : opemit_yaml_str(b, o->name);
    if (rc == 0 && o->ns && *o->ns) {
        rc = opbuf_puts(b, "\n      namespace: ");
        rc = rc ? rc : opemit_yaml_str(b, o->ns);
    }
    rc = rc ? rc : opbuf_puts(b, "\n      managedFieldsManagers:\n        - ");
    rc = rc ? rc : opemit_yaml_str(b, mgr(rq));
    return rc ? rc : opbuf_puts(b, "\n");
}

int remedy_argocd_tail(opbuf *b)
{
    return opbuf_puts(b, "  syncPolicy:\n"
                         "    syncOptions:\n"
                         "      - RespectIgnoreDifferences=true\n"
                         "# Argo CD then writes the live values on sync and co-owns "
                         "them: optipod's next change is a forced apply.\n");
}

static int yaml_argocd(const remedy_request *rq, opbuf *b)
{
    const kproj_obj *o = rq->live;
    int rc = opbuf_puts(b, "# Argo CD Application: leave the fields ");
    rc = rc ? rc : opemit_yaml_str(b, mgr(rq));
    rc = rc ? rc : opbuf_puts(b, " manages on ");
    rc = rc ? rc : subject(b, o);
    rc = rc ? rc
            : opbuf_puts(b, " out of the diff and out of syncs\n"
                            "spec:\n"
                            "  ignoreDifferences:\n");
    rc = rc ? rc : remedy_argocd_entry(rq, b);
    return rc ? rc : remedy_argocd_tail(b);
}

/* Flux: driftIgnoreRules (kustomize-controller) or driftDetection.ignore
 * (helm-controller); same rule shape. */
static int yaml_flux(enum remedy_tool tool, const remedy_request *rq, opbuf *b)
{
    const kproj_obj *o = rq->live;
    opbuf ptrs;
    opbuf_init(&ptrs, OPBUF_DEFAULT_MAX);
    int n = pointers(rq, &ptrs), rc = 0;
    if (n <= 0) {
        rc = n < 0 ? n : -ENOENT;
        goto out;
    }
    int helm = tool == REMEDY_FLUX_HELM;
    rc = opbuf_printf(b, "# Flux %s: leave the fields ",
                      helm ? "HelmRelease (helm-controller)"
                           : "Kustomization (kustomize-controller)");
    rc = rc ? rc : opemit_yaml_str(b, mgr(rq));
    rc = rc ? rc : opbuf_puts(b, " manages on ");
    rc = rc ? rc : subject(b, o);
    rc = rc ? rc
            : opbuf_puts(b, " out of drift correction\n"
                            "# container indexes are positions in the live object: "
                            "update them if the container list changes\n"
                            "spec:\n");
    rc = rc ? rc
            : opbuf_puts(b, helm ? "  driftDetection:\n    ignore:\n" : "  driftIgnoreRules:\n");
    const char *ind = helm ? "    " : "  ";
    rc = rc ? rc : opbuf_printf(b, "%s  - paths:\n", ind);
    for (size_t off = 0; rc == 0 && off < ptrs.len; off += strlen(ptrs.data + off) + 1) {
        rc = opbuf_printf(b, "%s      - ", ind);
        rc = rc ? rc : opemit_yaml_str(b, ptrs.data + off);
        rc = rc ? rc : opbuf_puts(b, "\n");
    }
    rc = rc ? rc
            : opbuf_printf(b,
                           "%s    target:\n%s      group: apps\n%s      version: v1\n"
                           "%s      kind: %s\n%s      name: ",
                           ind, ind, ind, ind, kproj_kind_name(o->kind), ind);
    rc = rc ? rc : yaml_regex(b, o->name);
    if (rc == 0 && o->ns && *o->ns) {
        rc = opbuf_printf(b, "\n%s      namespace: ", ind);
        rc = rc ? rc : yaml_regex(b, o->ns);
    }
    rc = rc ? rc : opbuf_puts(b, "\n");
out:
    opbuf_release(&ptrs);
    return rc;
}

static int yaml_unknown(const remedy_request *rq, opbuf *b)
{
    int rc = opbuf_puts(b, "# ");
    rc = rc ? rc
            : opbuf_printf(b, "\"%s\" keeps taking back the fields ",
                           rq->reclaimer && *rq->reclaimer ? rq->reclaimer : "another manager");
    rc = rc ? rc : opemit_yaml_str(b, mgr(rq));
    rc = rc ? rc : opbuf_puts(b, " manages on ");
    rc = rc ? rc : subject(b, rq->live);
    rc = rc ? rc
            : opbuf_puts(b, ".\n# Remove resources.requests/limits of the optimized "
                            "containers from that manager's source,\n# or exclude the "
                            "workload from the OptimizationPolicy.\n");
    return rc;
}

int remedy_yaml(enum remedy_tool tool, const remedy_request *rq, opbuf *out)
{
    int rc = check(rq);
    if (rc)
        return rc;
    switch (tool) {
    case REMEDY_ARGOCD:
        return yaml_argocd(rq, out);
    case REMEDY_FLUX_KUSTOMIZE:
    case REMEDY_FLUX_HELM:
        return yaml_flux(tool, rq, out);
    default:
        return yaml_unknown(rq, out);
    }
}

/* The note with at most `maxptr` pointers listed (-1 = all). */
static int note_once(enum remedy_tool tool, const remedy_request *rq, const opbuf *ptrs, int nptrs,
                     int maxptr, opbuf *b)
{
    const kproj_obj *o = rq->live;
    int rc =
        opbuf_printf(b, "\"%s\" keeps taking back the fields %s manages on ",
                     rq->reclaimer && *rq->reclaimer ? rq->reclaimer : "another manager", mgr(rq));
    rc = rc ? rc : subject(b, o);
    rc = rc ? rc : opbuf_puts(b, "; optipod stopped applying to it. ");
    if (rc)
        return rc;
    if (tool == REMEDY_ARGOCD) {
        rc = opbuf_printf(b,
                          "In the Argo CD Application add spec.ignoreDifferences: [{group: "
                          "apps, kind: %s, name: ",
                          kproj_kind_name(o->kind));
        rc = rc ? rc : opemit_yaml_str(b, o->name);
        if (rc == 0 && o->ns && *o->ns) {
            rc = opbuf_puts(b, ", namespace: ");
            rc = rc ? rc : opemit_yaml_str(b, o->ns);
        }
        rc = rc ? rc : opbuf_puts(b, ", managedFieldsManagers: [");
        rc = rc ? rc : opemit_yaml_str(b, mgr(rq));
        return rc ? rc
                  : opbuf_puts(b, "]}] and spec.syncPolicy.syncOptions: "
                                  "[RespectIgnoreDifferences=true].");
    }
    if (tool == REMEDY_FLUX_KUSTOMIZE || tool == REMEDY_FLUX_HELM) {
        rc = opbuf_puts(b, tool == REMEDY_FLUX_HELM
                               ? "In the Flux HelmRelease add spec.driftDetection.ignore: "
                               : "In the Flux Kustomization add spec.driftIgnoreRules: ");
        rc = rc ? rc : opbuf_puts(b, "[{paths: [");
        int i = 0;
        for (size_t off = 0; rc == 0 && off < ptrs->len && (maxptr < 0 || i < maxptr);
             off += strlen(ptrs->data + off) + 1, i++) {
            rc = i ? opbuf_puts(b, ", ") : 0;
            rc = rc ? rc : opemit_yaml_str(b, ptrs->data + off);
        }
        if (rc == 0 && i < nptrs)
            rc = opbuf_printf(b, ", ... %d more: see kubectl-optipod gitops", nptrs - i);
        rc = rc ? rc
                : opbuf_printf(b, "], target: {group: apps, version: v1, kind: %s, name: ",
                               kproj_kind_name(o->kind));
        rc = rc ? rc : yaml_regex(b, o->name);
        if (rc == 0 && o->ns && *o->ns) {
            rc = opbuf_puts(b, ", namespace: ");
            rc = rc ? rc : yaml_regex(b, o->ns);
        }
        return rc ? rc
                  : opbuf_puts(b, "}}] (container indexes are positions in the live object), "
                                  "or keep requests and limits out of Git.");
    }
    return opbuf_puts(b, "Remove resources.requests/limits of the optimized containers from "
                         "that manager's source, or exclude the workload from the "
                         "OptimizationPolicy.");
}

int remedy_note(enum remedy_tool tool, const remedy_request *rq, char *buf, size_t cap)
{
    int rc = check(rq), nptrs = 0;
    if (rc)
        return rc;
    opbuf ptrs, b;
    opbuf_init(&ptrs, OPBUF_DEFAULT_MAX);
    opbuf_init(&b, OPBUF_DEFAULT_MAX);
    if (tool == REMEDY_FLUX_KUSTOMIZE || tool == REMEDY_FLUX_HELM) {
        nptrs = pointers(rq, &ptrs);
        if (nptrs <= 0) {
            rc = nptrs < 0 ? nptrs : -ENOENT;
            goto out;
        }
    }
    /* list as many pointers as fit in the note */
    for (int maxptr = nptrs;; maxptr--) {
        opbuf_reset(&b);
        rc = note_once(tool, rq, &ptrs, nptrs, maxptr, &b);
        if (rc || b.len <= REMEDY_NOTE_MAX || maxptr <= 0)
            break;
    }
    if (rc == 0 && b.len > REMEDY_NOTE_MAX)
        rc = -E2BIG;
    if (rc == 0 && b.len >= cap)
        rc = -E2BIG;
    if (rc == 0) {
        memcpy(buf, opbuf_str(&b), b.len + 1);
        rc = (int)b.len;
    }
out:
    opbuf_release(&ptrs);
    opbuf_release(&b);
    return rc;
}
