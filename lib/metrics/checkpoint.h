/*
 * mckpt: checkpoints of the metrics-server path's decaying histograms, so a
 * restart, an upgrade or a leader change does not start the history from
 * zero (the VPA recommender's VerticalPodAutoscalerCheckpoint, per
 * namespace). Pure: text in, histograms out; the store (metricsserver.c)
 * and the controller's writer (controller/ctl_checkpoint.c) use it.
 *
 * One document per namespace, JSON, at most max_bytes (a ConfigMap holds
 * 1 MiB; newest series first, the oldest dropped past the cap):
 *   {"version":1,"namespace":"shop","savedAt":1796601600,
 *    "series":[{"kind":"Deployment","name":"web","container":"app",
 *      "updated":1796601590,
 *      "cpu":{"options":[0.01,1.05,1000,86400],"ref":..,"count":1440,
 *             "first":..,"last":..,"peak":..,"buckets":[[3,0.5],[7,12.25]]},
 *      "memory":{...}}]}
 * Buckets are sparse ([index, weight relative to ref]); numbers are
 * printed so they read back exactly. A histogram is restored only with the
 * options it was saved with (else its series is skipped: different bucket
 * edges would misplace every weight); weights must be finite and >= 0,
 * indices inside the histogram; the total is recomputed, not trusted.
 */
#ifndef OPTIPOD_METRICS_CHECKPOINT_H
#define OPTIPOD_METRICS_CHECKPOINT_H

#include <stddef.h>

#include "engine/histogram.h"
#include "util/buf.h"
#include "util/err.h"

#define MCKPT_VERSION   1
#define MCKPT_MAX_BYTES ((size_t)900 * 1024)

typedef struct mckpt_series {
    const char *kind, *name, *container;
    double updated_s; /* when a sample was last added */
    const ehist *cpu, *mem;
} mckpt_series;

/* Append the document of namespace `ns` (series reordered newest first).
 * *kept receives the series that fit in max_bytes (0: MCKPT_MAX_BYTES).
 * Returns 0, -EINVAL (empty ns) or -ENOMEM. */
int mckpt_encode(const char *ns, double saved_s, mckpt_series *s, size_t n, size_t max_bytes,
                 opbuf *out, size_t *kept);

/* Called per restored series with histograms built from cpu_o / mem_o; the
 * callback owns them from then on (ehist_release). Non-zero stops. */
typedef int (*mckpt_cb)(const char *kind, const char *name, const char *container, double updated_s,
                        ehist *cpu, ehist *mem, void *ud);

/* Parse a document of namespace `want_ns`. Returns the series restored
 * (>= 0), -EPROTO for a document that is not a checkpoint of this version
 * and namespace (err says why; a single bad series is skipped and counted
 * in *skipped instead), -ENOMEM, or what the callback returned. */
int mckpt_decode(const char *json, size_t len, const char *want_ns, const ehist_opts *cpu_o,
                 const ehist_opts *mem_o, mckpt_cb cb, void *ud, size_t *skipped, operr *err);

#endif
