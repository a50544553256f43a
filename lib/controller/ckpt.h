/*
 * ckpt: keeps the metrics-server provider's histograms in the API server,
 * so a restart, an upgrade or a leader change loses at most one interval of
 * usage history (the VPA recommender's checkpoints, metrics/checkpoint.h).
 *
 * The object: a ConfigMap per namespace, `name` (default
 * optipod-usage-checkpoint), in the namespace of the workloads it
 * describes, data key `histograms.json` (one mckpt document, at most
 * CKPT_MAX_BYTES: the newest series first), labels
 * app.kubernetes.io/managed-by=optipod and optipod.io/checkpoint=metrics-server,
 * owned (ownerReferences) by the oldest OptimizationPolicy of that
 * namespace when it has one, so deleting the policies deletes it. Written
 * with server-side apply (fieldManager optipod, force: optipod owns it
 * whole), only when its bytes change. RBAC: configmaps get and patch on
 * that name, create (which cannot be limited by name), and the policies'
 * list (already granted).
 *
 * While active (the controller leads: `active` says so):
 *  - every namespace the provider samples is restored once per process
 *    before its first save: GET the ConfigMap, merge its histograms into the
 *    provider's (404: nothing to restore). Once per process, so regaining
 *    leadership never counts a checkpoint twice; samples taken meanwhile
 *    add up with the restored history;
 *  - every interval_ms every restored namespace is saved.
 * One request in flight at a time; errors are logged, counted and retried
 * at the next scan or interval.
 *
 * Ownership: borrows the loop, the krest and the provider (all must outlive
 * it: close it before the controller that owns the provider). ckpt_close()
 * cancels what is in flight (no callback afterwards) and frees from the
 * loop.
 */
#ifndef OPTIPOD_CONTROLLER_CKPT_H
#define OPTIPOD_CONTROLLER_CKPT_H

#include <stdint.h>
#include <uv.h>

#include "kube/rest.h"
#include "metrics/provider.h"
#include "util/err.h"

#define CKPT_DEFAULT_NAME "optipod-usage-checkpoint"
#define CKPT_DATA_KEY     "histograms.json"
/* The document's cap: a ConfigMap holds 1 MiB, and the JSON string escapes
 * the document's quotes once more. */
#define CKPT_MAX_BYTES ((size_t)640 * 1024)

typedef struct ckpt_opts {
    uint64_t interval_ms; /* save every; 0 = 10 min */
    uint64_t scan_ms;     /* look for namespaces to restore; 0 = 2 s */
    const char *name;     /* the ConfigMap; NULL = CKPT_DEFAULT_NAME */
    int dry_run;          /* dryRun=All on writes */
    /* Non-zero while this process should restore and save (the leader). */
    int (*active)(void *ud);
    void *active_ud;
} ckpt_opts;

typedef struct ckpt_stats {
    uint64_t restored;  /* namespaces restored from a checkpoint */
    uint64_t saves;     /* ConfigMaps written */
    uint64_t unchanged; /* saves skipped: the same bytes */
    uint64_t errors;
} ckpt_stats;

typedef struct ckpt ckpt;

/* ms must be a metrics-server provider (mms_is). Returns 0 or -EINVAL. */
int ckpt_new(ckpt **out, uv_loop_t *loop, krest *rest, mprov *ms, const ckpt_opts *o, operr *err);
/* Save every restored namespace now (tests; the interval does it too). */
void ckpt_save_now(ckpt *c);
void ckpt_stats_get(const ckpt *c, ckpt_stats *out);
void ckpt_close(ckpt *c);

#endif
