/*
 * promql: the pure half of the Prometheus provider: query planning and
 * building, response parsing, and the combination of per-pod results into
 * per-workload statistics. No I/O; prometheus.c drives it.
 *
 * A namespace costs two queries, never one per workload, container or
 * statistic (the window of every workload: window.h):
 *  1. the owners query (promql_build_owners): kube-state-metrics'
 *     kube_pod_owner of every pod and kube_replicaset_owner of the requested
 *     Deployments' ReplicaSets, over the window. Its answer says whether
 *     kube-state-metrics runs there at all (detection for free) and which
 *     pods each workload had;
 *  2. the stats query (promql_build_re): every statistic in one query, each
 *     sub-expression aggregated `by (pod, container)`, tagged with an
 *     `optipod_stat` label (label_replace) and joined with `or`, over the
 *     pods matching promql_agg_pod_regex(): each workload's generated-name
 *     pattern, plus by name its current pods and the pods the owner series
 *     name that the pattern misses. Past `max_alts` alternatives the query
 *     is namespace-wide and the aggregator drops the other pods.
 * The aggregator maps each pod to a workload: its current pods (owner
 * references) first, then kube-state-metrics' owner (exact), then the
 * generated names.
 *
 * Percentile over all pods of a workload. Prometheus cannot take a quantile
 * over the union of several series' samples in one expression, and fetching
 * the raw points (a range query, percentile in C) costs window/step points per
 * series, which does not scale to 14-day windows over thousands of pods. So
 * each pod's percentile is computed in Prometheus (quantile_over_time, linear
 * interpolation) and the workload takes the MAX over its pods. For any q, at
 * least a fraction q of every pod's samples lie at or below that maximum, so
 * at least q of the union does too: the maximum is an upper bound of the
 * union percentile, never below it (conservative: a request sized by it never
 * undercuts the true percentile), and it equals it when pods behave alike.
 * Sample counts are summed over pods and reported with the value.
 *
 * Statistics, per (pod, container), container != "" and != "POD":
 *   cpu_q     quantile_over_time(q, rate(container_cpu_usage_seconds_total[RATE])[W:STEP])
 *   cpu_n     count_over_time(<the same rate subquery>)           number of rate points
 *   mem_q     quantile_over_time(q, container_memory_working_set_bytes[W])
 *   mem_max   max_over_time(container_memory_working_set_bytes[W])  the peak, exact
 *   mem_n     count_over_time(container_memory_working_set_bytes[W])
 *   mem_first min_over_time(timestamp(container_memory_working_set_bytes)[W:STEP])
 *   oom max_over_time(kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}[W])
 *   oom_first min_over_time(timestamp(<that gauge> == 1)[W:STEP])
 * OOM kills come from kube-state-metrics' last-terminated-reason gauge, not
 * cAdvisor's container_oom_events_total: the latter counts OOM events inside a
 * cgroup (also non-fatal kills of child processes) and restarts from zero with
 * every new container id, while the gauge says exactly "this container's last
 * termination was an OOM kill", which is what the engine's bump rule needs.
 * oom_count is the number of pods whose container was OOM-killed in the
 * window (the gauge cannot tell repeated kills of one container apart);
 * oom_last_s is the latest, over those pods, of the time the OOMKilled state
 * was first seen in the window: about the kill time (the window start when
 * the kill is older).
 */
#ifndef OPTIPOD_METRICS_PROMQL_H
#define OPTIPOD_METRICS_PROMQL_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/provider.h"
#include "util/buf.h"
#include "util/err.h"

/* Prometheus refuses queries (and subqueries) of more than 11000 points. */
#define PROMQL_MAX_POINTS 11000
/* Default subquery step floor: one point a minute is finer than any request needs. */
#define PROMQL_STEP_FLOOR_S 60
/* Default CPU rate window: 5 min covers >= 4 scrapes at the usual 15-60 s intervals. */
#define PROMQL_RATE_WINDOW_S 300

enum promql_stat {
    PROMQL_CPU_Q,
    PROMQL_CPU_N,
    PROMQL_MEM_Q,
    PROMQL_MEM_MAX,
    PROMQL_MEM_N,
    PROMQL_MEM_FIRST,
    PROMQL_OOM,
    PROMQL_OOM_FIRST,
    PROMQL_NSTATS
};

/* "cpu_q", ...; NULL for an out-of-range value. */
const char *promql_stat_name(enum promql_stat s);
/* The stat for a name, or -1. */
int promql_stat_parse(const char *name);

/* The subquery step in seconds: >= window / PROMQL_MAX_POINTS (rounded up), and
 * >= floor_s (0 = PROMQL_STEP_FLOOR_S). */
uint64_t promql_step_s(uint64_t window_s, uint64_t floor_s);

/* Queries for a request of `nworkloads` workloads: 2 (owners, stats), or 0
 * when there is nothing to ask. */
#define PROMQL_QUERIES(nworkloads) ((nworkloads) ? 2u : 0u)

/* Append `s` as an anchored RE2 alternative matching exactly that string:
 * regex metacharacters are backslash-escaped. The output is raw regex text;
 * promql_append_string() then quotes it for PromQL. */
int promql_append_regex_literal(opbuf *out, const char *s);
/* Append a PromQL double-quoted string literal of s (escapes \ " and controls). */
int promql_append_string(opbuf *out, const char *s);
/* Append s percent-encoded for application/x-www-form-urlencoded. */
int promql_append_form(opbuf *out, const char *s, size_t len);

typedef struct promql_opts {
    double percentile; /* 0 < q < 1 */
    uint64_t window_s; /* > 0 */
    uint64_t step_s;   /* subquery step; 0 = promql_step_s(window_s, 0) */
    uint64_t rate_s;   /* CPU rate window; 0 = PROMQL_RATE_WINDOW_S */
} promql_opts;

/* Append the combined query for namespace `ns` and pods[0..npods) (npods == 0:
 * every pod of the namespace). Returns 0, -EINVAL (bad options, empty ns) or
 * -E2BIG (the buffer's cap). */
int promql_build(opbuf *out, const char *ns, const char *const *pods, size_t npods,
                 const promql_opts *o);
/* The same over the pods matching the RE2 regex `pod_re` (NULL or "": every
 * pod of the namespace). */
int promql_build_re(opbuf *out, const char *ns, const char *pod_re, const promql_opts *o);

/* The owners query: the owner (a ReplicaSet, StatefulSet or DaemonSet) of
 * every pod in namespace `ns` during the window (stat "pod_owner", labels
 * pod, owner_kind, owner_name: every pod, so that a pod kube-state-metrics
 * gives to another owner is never taken by its name), and the Deployment of
 * every ReplicaSet whose Deployment matches `deploy_re` (stat "rs_owner",
 * labels replicaset, owner_name; left out when deploy_re is NULL or "").
 * Same returns as promql_build. */
int promql_build_owners(opbuf *out, const char *ns, const char *deploy_re, uint64_t window_s);

/* One element of an instant-vector result. Strings point into the parsed
 * document and are valid only during the callback; absent labels are "". */
typedef struct promql_sample {
    const char *pod;
    const char *container;
    const char *stat;                                 /* the optipod_stat label */
    const char *owner_kind, *owner_name, *replicaset; /* owner series only */
    double value;                                     /* may be NaN or Inf: the consumer decides */
    double ts;                                        /* evaluation time, unix seconds */
} promql_sample;

/* Return 0 to continue, negative to stop parsing (returned as is). */
typedef int (*promql_sample_cb)(const promql_sample *s, void *ud);

/* Parse a /api/v1/query response body (at most len bytes, need not be
 * NUL-terminated). Returns 0; -EPROTO for anything that is not a well-formed
 * success response of resultType "vector" (err says what); -EREMOTEIO for
 * {"status":"error"} (err carries errorType and error). */
int promql_parse(const char *body, size_t len, promql_sample_cb cb, void *ud, operr *err);

/* ---- range queries (the backtest's history) ---- */

/* A range query over namespace `ns` and the pods matching `pod_re` (NULL:
 * every pod): per (pod, container) the CPU rate over rate_s seconds (stat
 * "cpu", cores), the working set ("mem", bytes) and kube-state-metrics'
 * OOMKilled last-terminated-reason gauge ("oom", 0/1). Same returns as
 * promql_build. */
int promql_build_range(opbuf *out, const char *ns, const char *pod_re, uint64_t rate_s);

/* One series of a matrix result; arrays valid during the callback only. */
typedef struct promql_series {
    const char *pod, *container, *stat;
    const int64_t *t; /* Unix seconds, ascending as Prometheus sends them */
    const double *v;  /* finite */
    size_t n;
} promql_series;

typedef int (*promql_series_cb)(const promql_series *s, void *ud);

/* Parse a /api/v1/query_range response. Returns 0; -EPROTO for anything but
 * a well-formed success of resultType "matrix" whose values are finite
 * numbers at increasing times (err says where); -EREMOTEIO for
 * {"status":"error"}; -ENOMEM; or what the callback returned. */
int promql_parse_matrix(const char *body, size_t len, promql_series_cb cb, void *ud, operr *err);

/* The combiner: pods → workloads (from the request's owner-reference
 * mapping), per-pod statistics → per-workload per-container statistics.
 * Ownership: promql_agg_new() copies what it needs from the request;
 * promql_agg_result() fills `out` with arrays owned by the agg, valid until
 * promql_agg_free(). */
typedef struct promql_agg promql_agg;

int promql_agg_new(promql_agg **out, const mprov_request *req);
void promql_agg_free(promql_agg *a);
/* How many workloads the request named. */
size_t promql_agg_nworkloads(const promql_agg *a);
/* The request's pods in order (workload by workload), for promql_build(). */
const char *const *promql_agg_pods(const promql_agg *a, size_t *npods);
/* The owners query's Deployment regex (see promql_build_owners); empty
 * without Deployments. */
int promql_agg_deploy_regex(const promql_agg *a, opbuf *deploy_re);
/* The stats query's pod regex (call after the owners answer is folded in);
 * *nalts receives the number of alternatives. */
int promql_agg_pod_regex(const promql_agg *a, opbuf *re, size_t *nalts);
/* The same for workload `wi` (request order) alone: its pattern, its current
 * pods and the pods kube-state-metrics gives it that the pattern misses
 * (the backtest asks one workload at a time). -EINVAL past the workloads. */
int promql_agg_pod_regex_of(const promql_agg *a, size_t wi, opbuf *re, size_t *nalts);
/* The workload (request index + 1) `pod` belongs to, as the statistics are
 * attributed: current pods, then kube-state-metrics' owner (a pod it gives
 * to another owner is nobody's here, whatever its name), then the generated
 * names; 0 for none. */
size_t promql_agg_workload_of(const promql_agg *a, const char *pod);
/* How the window's pods are found: "kube-state-metrics" once the owners
 * answer had kube_pod_owner series, else "pod-names". */
const char *promql_agg_history(const promql_agg *a);
/* Fold one sample in: owner series (stat pod_owner / rs_owner) or
 * statistics. Samples of pods of no requested workload or of unknown stats
 * are ignored (0); a non-finite or negative value is -EPROTO: a backend
 * that sends one is broken, and a guess would be a wrong recommendation. */
int promql_agg_add(promql_agg *a, const promql_sample *s, operr *err);
/* promql_sample_cb adapter: ud is a struct promql_agg_ctx. It folds in only
 * what the query asked for: owner series for the owners query, statistics
 * otherwise (a proxy answering the wrong thing cannot count a pod twice). */
typedef struct promql_agg_ctx {
    promql_agg *agg;
    operr *err;
    int owners_query;
} promql_agg_ctx;
int promql_agg_sample_cb(const promql_sample *s, void *ud);
/* Final statistics as evaluated at eval_time_s (history is clamped to the
 * window). `out->error`, `error_msg`, `queries` are left for the caller. */
int promql_agg_result(promql_agg *a, int64_t eval_time_s, mprov_result *out);

#endif
