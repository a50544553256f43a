/*
 * mprov: the one interface every metrics provider (Prometheus, metrics-server)
 * offers, so the engine's caller never knows which one fed it.
 *
 * The caller asks for the usage statistics of a set of workloads in one
 * namespace; each workload names its pods (mapped to the workload by owner
 * references from the informer cache, not by name patterns). The provider
 * answers exactly once through the callback with per-workload, per-container
 * statistics or with an error (a down, slow or garbage backend is an error
 * result with a one-line message, never a guess):
 *
 *   mprov_workload w = {"Deployment", "web", pods, 3};
 *   mprov_request rq = {.ns = "shop", .workloads = &w, .nworkloads = 1,
 *                       .percentile = 0.95, .window_s = 86400};
 *   mprov_request_stats(p, &rq, on_stats, ud);
 *
 * Ownership: the request (and every string in it) is copied by the provider;
 * the caller may free it on return. The mprov_result and everything it points
 * to are valid only during the callback. A call that fails to start returns a
 * negative errno and never calls back. mprov_close() cancels what is in flight
 * (no callbacks run afterwards) and frees the provider.
 */
#ifndef OPTIPOD_METRICS_PROVIDER_H
#define OPTIPOD_METRICS_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "obs/obs.h"

/* Longest container / workload / pod name we carry (Kubernetes names are <= 253). */
#define MPROV_NAME_MAX 254

typedef struct mprov_workload {
    const char *kind;        /* "Deployment", "StatefulSet", "DaemonSet" */
    const char *name;        /* workload name */
    const char *const *pods; /* names of its current pods (a provider that searches the
                                window adds the earlier ones itself) */
    size_t npods;
} mprov_workload;

typedef struct mprov_request {
    const char *ns;
    const mprov_workload *workloads;
    size_t nworkloads;
    double percentile;   /* 0 < p < 1, e.g. 0.95 */
    uint64_t window_s;   /* rolling window, e.g. 86400 */
    int64_t eval_time_s; /* evaluate at this unix time; 0 = now */
} mprov_request;

typedef struct mprov_container_stats {
    char container[MPROV_NAME_MAX];
    double cpu_cores;      /* the percentile of CPU usage rates, in cores */
    double mem_bytes;      /* the percentile of working-set bytes */
    double mem_peak_bytes; /* the largest working-set sample in the window */
    uint64_t cpu_samples;  /* CPU rate points behind cpu_cores, all pods */
    uint64_t mem_samples;  /* working-set samples behind mem_bytes, all pods */
    double history_s;      /* eval time minus the oldest sample in the window */
    uint32_t oom_count;    /* OOM kills seen in the window (see the provider's notes) */
    int64_t oom_last_s;    /* unix time of the latest OOM seen, 0 when none */
    const char *history;   /* how the window's pods were found: a static string
                              ("kube-state-metrics", "pod-names"), NULL when not searched */
    uint32_t pods;         /* pods whose series are behind these numbers */
} mprov_container_stats;

typedef struct mprov_workload_stats {
    const char *kind;
    const char *name;
    size_t ncontainers; /* 0 when no usage was found for any of its pods */
    const mprov_container_stats *containers;
    const char *history; /* as in mprov_container_stats; NULL when not searched */
} mprov_workload_stats;

typedef struct mprov_result {
    int error;             /* 0, or a negative errno (-ETIMEDOUT, -ECONNREFUSED, -EPROTO, ...) */
    const char *error_msg; /* "" on success; one line naming the provider and query first */
    const char *ns;
    size_t nworkloads; /* in the order of the request */
    const mprov_workload_stats *workloads;
    int64_t eval_time_s; /* the time the statistics were evaluated at */
    unsigned queries;    /* backend queries this request issued (retries included) */
} mprov_result;

typedef void (*mprov_cb)(const mprov_result *res, void *ud);

typedef struct mprov_ops {
    const char *name; /* "prometheus", "metrics-server" */
    int (*request_stats)(void *state, const mprov_request *req, mprov_cb cb, void *ud);
    void (*close)(void *state);
} mprov_ops;

typedef struct mprov {
    const mprov_ops *ops;
    void *state;
} mprov;

static inline const char *mprov_name(const mprov *p)
{
    return p->ops->name;
}

static inline int mprov_request_stats(mprov *p, const mprov_request *req, mprov_cb cb, void *ud)
{
    return p->ops->request_stats(p->state, req, cb, ud);
}

/* Cancel everything in flight and free the provider (the mprov itself too). */
static inline void mprov_close(mprov *p)
{
    p->ops->close(p->state);
}

/* ---- what every provider measures (metrics/provider.c) ---------------------------------- */

/* optipod_usage_query_duration_seconds{provider} (every backend query: a Prometheus POST, a
 * metrics-server list; failures included) and optipod_usage_query_errors_total{provider,reason},
 * reason one of "transport" (no answer), "http" (an error answer: a non-2xx status, Prometheus'
 * {"status":"error"}), "decode" (an answer that could not be used). Zeros (no registry): nothing is
 * recorded. */
typedef struct mprov_obs {
    obs_fam *seconds, *errors;
} mprov_obs;

/* r NULL leaves o zeroed. 0, or -EINVAL when r cannot hold the families (err says why). */
int mprov_obs_init(mprov_obs *o, obs_reg *r, operr *err);
/* One query answered: sent at sent_ns (uv_hrtime), failed for `reason` (NULL: it worked). */
void mprov_obs_query(const mprov_obs *o, const char *provider, uint64_t sent_ns,
                     const char *reason);

#endif
