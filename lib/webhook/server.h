/*
 * whsrv: the mutating pod webhook's HTTPS endpoint, on ophttpd.
 *
 *   POST <path> (default /mutate-pods)  AdmissionReview v1 in, AdmissionReview out
 *   GET  /healthz                       200 "ok"
 *
 * Each review is answered synchronously from the informer caches
 * (wresolve), never with an API call, so the answer is ready long before the
 * API server's ?timeout= (which is still read: answers slower than it are
 * counted as "late"). Every well-formed pod review is allowed: mutated, or
 * unchanged with a reason. A malformed review is 400 with a one-line message;
 * a non-POST is 405, a body that is not application/json is 415, an
 * over-sized body 413 (ophttpd's cap), unknown paths 404.
 *
 * Outcomes are counted for /metrics: whsrv_metrics() writes them as
 * Prometheus text for the controller's metrics endpoint.
 *
 * Ownership: whsrv_start() allocates and listens; the caches must outlive the
 * server and are read only from the loop thread. whsrv_stop() closes every
 * connection, and frees the server from the loop, then calls on_closed.
 */
#ifndef OPTIPOD_WEBHOOK_SERVER_H
#define OPTIPOD_WEBHOOK_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "obs/obs.h"
#include "util/buf.h"
#include "util/err.h"
#include "webhook/resolve.h"

#define WHSRV_DEFAULT_PATH "/mutate-pods"

/* Reasons a pod is admitted unchanged (index into whsrv_stats.unchanged). */
#define WHSRV_REASONS(X)                                                                           \
    X(NOT_POD_CREATE, "not-pod-create")                                                            \
    X(NO_OWNER, "no-owner")                                                                        \
    X(OWNER_KIND, "owner-kind")                                                                    \
    X(UNKNOWN_OWNER, "unknown-owner")                                                              \
    X(OWNER_UID, "owner-uid")                                                                      \
    X(NOT_ENABLED, "not-enabled")                                                                  \
    X(STRATEGY, "strategy")                                                                        \
    X(NO_ANNOTATIONS, "no-annotations")                                                            \
    X(BAD_ANNOTATION, "bad-annotation")                                                            \
    X(BAD_QUANTITY, "bad-quantity")                                                                \
    X(LIMIT_BELOW_REQUEST, "limit-below-request")                                                  \
    X(NO_CONTAINERS, "no-containers")                                                              \
    X(NO_CHANGE, "no-change")                                                                      \
    X(EXCLUDED_NAMESPACE, "excluded-namespace")                                                    \
    X(OTHER, "other")

#define WHSRV_REASON_ENUM(id, s) WHSRV_R_##id,
enum whsrv_reason { WHSRV_REASONS(WHSRV_REASON_ENUM) WHSRV_NREASONS };
#undef WHSRV_REASON_ENUM

typedef struct whsrv_stats {
    uint64_t mutated;
    uint64_t unchanged[WHSRV_NREASONS];
    uint64_t malformed; /* 400 */
    uint64_t rejected;  /* 404, 405, 415 */
    uint64_t errors;    /* 500: could not build an answer */
    uint64_t late;      /* answered after the request's ?timeout= */
} whsrv_stats;

typedef struct whsrv_opts {
    const char *bind;               /* default "0.0.0.0" */
    int port;                       /* 0 = ephemeral (whsrv_port) */
    const char *path;               /* default WHSRV_DEFAULT_PATH */
    const char *cert_pem, *key_pem; /* required: the webhook is HTTPS only */
    size_t max_body;                /* default ADMREV_MAX_BODY */
    size_t max_connections;         /* default 1024 */
    /* Time each whole request may take to arrive, from the accept or the previous answer
     * (a client trickling bytes is closed then); 0 = ophttpd's 60 s. */
    unsigned read_timeout_ms;
    wresolve_caches caches; /* copied; the caches themselves are borrowed */
    /* Namespaces never mutated, whatever the namespaceSelector lets through (defence in
     * depth: kube-system and the controller's own). NULL-terminated, copied; NULL means
     * {"kube-system"}. */
    const char *const *exclude_namespaces;
    /* optipod_webhook_review_duration_seconds{outcome} (patched, allowed, errored) goes here
     * (borrowed; must outlive the server); NULL = not measured. */
    obs_reg *metrics;
} whsrv_opts;

typedef struct whsrv whsrv;

/*
 * The pure part: answer one review body. Returns the HTTP status: 200 (out
 * holds the AdmissionReview response; *reason is NULL when a patch was made,
 * else the unchanged reason slug), 400 (err names what was malformed), 413 (over
 * ADMREV_MAX_BODY) or 500.
 */
int whsrv_answer(const wresolve_caches *c, const char *body, size_t len, opbuf *out,
                 const char **reason, operr *err);
/* The same, leaving pods in the NULL-terminated `exclude` namespaces (may be NULL) unchanged
 * ("excluded-namespace"). */
int whsrv_answer_ex(const wresolve_caches *c, const char *const *exclude, const char *body,
                    size_t len, opbuf *out, const char **reason, operr *err);
enum whsrv_reason whsrv_reason_index(const char *slug);
const char *whsrv_reason_name(enum whsrv_reason r);

/* "5s", "500ms", "1m" (the API server's ?timeout=) → milliseconds, or -EINVAL. */
long whsrv_parse_timeout(const char *s);

int whsrv_start(whsrv **out, uv_loop_t *loop, const whsrv_opts *opts, operr *err);
int whsrv_port(const whsrv *s);
/* New serving certificate for connections accepted from now on. */
int whsrv_set_tls(whsrv *s, const char *cert_pem, const char *key_pem);
const whsrv_stats *whsrv_get_stats(const whsrv *s);
/* Append the outcome counters as Prometheus text exposition. */
int whsrv_metrics(const whsrv *s, opbuf *out);
void whsrv_stop(whsrv *s, void (*on_closed)(void *ud), void *ud);

#endif
