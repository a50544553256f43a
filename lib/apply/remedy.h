/*
 * remedy: the exact configuration a user adds to their GitOps tool so that it
 * stops taking back the fields optipod manages — the text of the
 * GitOpsConflictLoop Event and status, and of `kubectl-optipod gitops`.
 *
 * Argo CD (Application): spec.ignoreDifferences with managedFieldsManagers:
 * [optipod] (since 2.3) leaves fields owned by optipod out of the diff, and
 * spec.syncPolicy.syncOptions: [RespectIgnoreDifferences=true] keeps a sync
 * from writing Git's values back. With it Argo writes the live value on sync
 * and co-owns the field, so optipod's next change needs a forced apply.
 *
 * Flux kustomize-controller (Kustomization): PROTOCOL.md names `spec.ignore`
 * with JSON pointers (kustomize-controller >= 1.9), which could not be
 * confirmed: `spec.ignore` is a source's .gitignore-style file filter. What
 * kustomize-controller offers (checked against its docs and PR
 * fluxcd/kustomize-controller#1627, announced on fluxcd.io in 2026-08; the first
 * release carrying it is unverified) is spec.driftIgnoreRules: a list of
 * {paths: [RFC 6901 JSON pointers], target: {group, version, kind, name,
 * namespace} (regular expressions)}; the fields are left out of drift
 * detection and of the apply. Flux helm-controller (HelmRelease) has the same
 * shape under spec.driftDetection.ignore. JSON pointers index containers by
 * position, so each container's index is computed from the live object;
 * names in targets are anchored and escaped so they match one object only.
 * Without that feature the remedy is to keep requests/limits out of Git.
 *
 * Everything is pure text generation; output is appended to the caller's opbuf.
 */
#ifndef OPTIPOD_APPLY_REMEDY_H
#define OPTIPOD_APPLY_REMEDY_H

#include <stddef.h>

#include "kube/project.h"
#include "util/buf.h"

#define REMEDY_NOTE_MAX 1024 /* events.k8s.io/v1 note limit */

enum remedy_tool {
    REMEDY_UNKNOWN,
    REMEDY_ARGOCD,         /* argocd-controller, argocd-application-controller */
    REMEDY_FLUX_KUSTOMIZE, /* kustomize-controller */
    REMEDY_FLUX_HELM,      /* helm-controller */
};

/* The tool behind a field manager name. */
enum remedy_tool remedy_tool_for_manager(const char *manager);
const char *remedy_tool_name(enum remedy_tool t);

/* A field optipod writes: container and "requests.cpu" / "limits.memory" / ... */
typedef struct remedy_field {
    const char *container;
    int init; /* in initContainers */
    const char *field;
} remedy_field;

typedef struct remedy_request {
    const kproj_obj *live;      /* the workload: kind, namespace, name, container order */
    const char *manager;        /* optipod's field manager; NULL = "optipod" */
    const char *reclaimer;      /* the manager that keeps taking the fields back */
    const remedy_field *fields; /* for JSON pointers (Flux) */
    size_t nfields;
} remedy_request;

/* Multi-line YAML for the tool's object (Application, Kustomization,
 * HelmRelease), with comments. Returns 0, -EINVAL (no live object or not a
 * workload), -ENOENT (Flux: none of the fields is in the live object) or
 * -E2BIG (buffer cap). */
int remedy_yaml(enum remedy_tool tool, const remedy_request *rq, opbuf *out);

/* The Argo CD pieces, to merge several workloads into one Application spec:
 * one `ignoreDifferences` list item (indented for "spec:\n  ignoreDifferences:\n"),
 * and the syncPolicy that makes Argo CD respect them. */
int remedy_argocd_entry(const remedy_request *rq, opbuf *out);
int remedy_argocd_tail(opbuf *out);

/* One paragraph for the GitOpsConflictLoop Event note and status message,
 * at most REMEDY_NOTE_MAX bytes (JSON pointers beyond that are counted and
 * the full list is left to `kubectl-optipod gitops`). `buf` needs
 * REMEDY_NOTE_MAX + 1 bytes. Returns the length or a negative errno as above. */
int remedy_note(enum remedy_tool tool, const remedy_request *rq, char *buf, size_t cap);

/* RFC 6901 pointer of one field in the live object:
 * "/spec/template/spec/containers/0/resources/requests/cpu". Returns the
 * length, -ENOENT (container not in the live object), -EINVAL or -E2BIG. */
int remedy_pointer(const kproj_obj *live, const remedy_field *f, char *buf, size_t cap);

#endif
