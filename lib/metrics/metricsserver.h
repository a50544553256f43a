/*
 * mms: the metrics-server provider (an mprov), the embedded default when no
 * Prometheus is configured.
 *
 * metrics-server keeps only the latest usage of each container, so history is
 * built here: every `interval_ms` the provider lists
 * GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods for each namespace it
 * was asked about, and folds each container's usage into two decaying
 * histograms (CPU cores, working-set bytes; lib/engine/histogram.h, 24 h
 * half-life by default) per workload and container. Pods are mapped to
 * workloads by the requests for their namespace (owner references from the
 * informer cache; requests naming different workloads add up); usage of
 * unmapped pods is ignored. A PodMetrics whose
 * timestamp did not move since the last list is not counted twice.
 *
 * Outputs, as mprov_container_stats: cpu_cores / mem_bytes are the decayed
 * histogram's percentile (the END of the bucket where it falls: < 5 % high);
 * mem_peak_bytes the largest sample since tracking began; cpu_samples and
 * mem_samples the samples folded in; history_s the eval time minus the oldest
 * sample (clamped to the window). oom_count / oom_last_s are always 0:
 * metrics.k8s.io carries no termination reasons (the caller has them from pod
 * status, lastState.terminated.reason).
 *
 * Memory is bounded: at most max_series (workload, container) pairs, each a
 * fixed number of buckets; series not updated for forget_after_s are dropped.
 *
 * A request answers from memory when its namespace was sampled within the
 * interval; otherwise it samples first and answers after (an unreachable
 * metrics-server is then an error result). Callbacks always run from the loop.
 *
 * Ownership: mms_new() borrows the loop and the krest (both must outlive the
 * provider). mprov_close() cancels in-flight lists and pending answers (no
 * callback runs afterwards) and frees everything from the loop.
 */
#ifndef OPTIPOD_METRICS_METRICSSERVER_H
#define OPTIPOD_METRICS_METRICSSERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kube/rest.h"
#include "metrics/provider.h"
#include "util/buf.h"
#include "util/err.h"

typedef struct mms_opts {
    uint64_t interval_ms;    /* sampling interval; 0 = 30 s */
    double half_life_s;      /* histogram decay; 0 = 86400 */
    size_t max_series;       /* (workload, container) pairs kept; 0 = 5000 */
    uint64_t forget_after_s; /* drop a series not updated for this long; 0 = 8 days */
    obs_reg *metrics;        /* list latency and errors (provider.h); NULL = none */
} mms_opts;

int mms_new(mprov **out, uv_loop_t *loop, krest *rest, const mms_opts *o, operr *err);
/* Sample every known namespace now, as the interval timer does (at start-up,
 * or to make tests deterministic). Requests made while a list is in flight are
 * answered after it. Returns 0 or the first error starting a list. */
int mms_sample_now(mprov *p);
/* Namespaces sampled on the interval, and series held (for tests and metrics). */
size_t mms_namespaces(const mprov *p);
/* The i-th of them (any stable order while none is added), or NULL. */
const char *mms_namespace_at(const mprov *p, size_t i);
/* 1 when p is a metrics-server provider. */
int mms_is(const mprov *p);
/* Checkpoints of a namespace's histograms (metrics/checkpoint.h): append
 * the document (newest series first, at most max_bytes; *kept of *total
 * series fit), or merge a document into what is held (histograms add up:
 * restore each document once). Returns 0 / the series restored, or a
 * negative errno with err set. */
int mms_checkpoint(mprov *p, const char *ns, size_t max_bytes, opbuf *out, size_t *kept,
                   size_t *total);
int mms_restore(mprov *p, const char *ns, const char *json, size_t len, operr *err);
size_t mms_series(const mprov *p);

/* ---- the pure store under the provider (no I/O; used by the tests) ---------------------- */

typedef struct mms_store mms_store;

int mms_store_new(mms_store **out, const mms_opts *o);
void mms_store_free(mms_store *s);
/* Merge the request's pod → workload mapping into req->ns's (a later claim
 * replaces an earlier one; within one request the first claim wins). A pod
 * neither named nor listed for forget_after_s is forgotten at the next ingest. */
int mms_store_map(mms_store *s, const mprov_request *req, double now_s);
/* Fold a PodMetricsList (JSON, len bytes) of namespace `ns` in. Returns the
 * samples added (>= 0), or -EPROTO for a body that is not a PodMetricsList or
 * holds a bad quantity / timestamp (err says which; nothing is folded then). */
int mms_store_ingest(mms_store *s, const char *ns, const char *body, size_t len, double now_s,
                     operr *err);
/* The stats for req (mapping as last set), evaluated at eval_s. The arrays in
 * `out` are owned by the store and valid until the next call on it. */
int mms_store_stats(mms_store *s, const mprov_request *req, double eval_s, mprov_result *out);
size_t mms_store_series(const mms_store *s);
/* The checkpoint functions above, on the store. */
int mms_store_checkpoint(const mms_store *s, const char *ns, double now_s, size_t max_bytes,
                         opbuf *out, size_t *kept, size_t *total);
int mms_store_restore(mms_store *s, const char *ns, const char *json, size_t len, operr *err);

#endif
