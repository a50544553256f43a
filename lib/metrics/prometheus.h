/*
 * mprom: the Prometheus metrics provider (an mprov) over the HTTP API.
 *
 * A stats request becomes two POST /api/v1/query, run one after another on
 * the loop (promql.h): who owned which pod during the window (kube-state-
 * metrics), then every statistic of those pods in one query, so recent
 * rollouts do not erase the window's history (window.h). Each query has a
 * timeout and is retried with exponential backoff (opbackoff) on transport
 * errors, HTTP 5xx and 429; a 4xx, an {"status":"error"}, a body past the
 * size cap or one that is not a Prometheus vector fails the request at once.
 * Either way the callback gets error != 0 and a one-line message naming
 * the server and the namespace first: no partial or guessed statistics.
 *
 * Auth and TLS for --prometheus-url, for Prometheus-compatible backends
 * (Thanos, Mimir/Cortex, VictoriaMetrics, managed Prometheus): a bearer token
 * (or a token file re-read for every query, so a rotated token is picked up)
 * or basic auth from a "user:password" file (re-read the same way), extra
 * headers such as the Mimir/Cortex tenant "X-Scope-OrgID: team-a", a CA
 * file, or insecure_skip_verify (logged as a warning). A 401 or 403 fails
 * the request at once with -EACCES and a message naming the status.
 *
 * Ownership: mprom_new() copies the options; the ophttp_client and the loop
 * are borrowed and must outlive the provider. Close with mprov_close(): it
 * cancels in-flight queries and pending retries (no callbacks run after it)
 * and frees the provider once its timers are closed (from the loop).
 */
#ifndef OPTIPOD_METRICS_PROMETHEUS_H
#define OPTIPOD_METRICS_PROMETHEUS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/http.h"
#include "metrics/provider.h"
#include "util/err.h"

typedef struct mprom_opts {
    const char *url;               /* base URL, e.g. "https://prom.monitoring:9090[/prefix]" */
    const char *bearer_token;      /* or NULL */
    const char *bearer_token_file; /* re-read per query; or NULL */
    const char *basic_auth_file;   /* "user:password", re-read per query; or NULL */
    const char *const *headers;    /* nheaders "Name: value" lines sent with every query */
    size_t nheaders;
    const char *ca_file; /* PEM bundle for https, or NULL (system trust) */
    int insecure_skip_verify;
    long timeout_ms;             /* per query attempt; 0 = 30 s */
    unsigned max_retries;        /* extra attempts after the first (0 = none) */
    uint64_t backoff_initial_ms; /* 0 = 250 ms */
    uint64_t backoff_max_ms;     /* 0 = 10 s */
    size_t max_body;             /* response cap; 0 = 16 MiB */
    size_t batch_pods;           /* pod-matcher alternatives; more: namespace-wide; 0 = 200 */
    uint64_t step_floor_s;       /* subquery step floor; 0 = PROMQL_STEP_FLOOR_S */
    uint64_t rate_window_s;      /* CPU rate() window; 0 = PROMQL_RATE_WINDOW_S */
    obs_reg *metrics;            /* query latency and errors (provider.h); NULL = none */
} mprom_opts;

/* At most this many extra headers (mprom_opts.headers). */
#define MPROM_MAX_HEADERS 16

/* Check one extra header line: an HTTP field name (RFC 9110 token), a colon,
 * optional blanks and a non-empty value of printable characters. Headers the
 * provider sets itself (Content-Type, Content-Length, Host, Expect,
 * Transfer-Encoding) are refused too. Returns 0 or -EINVAL with err saying
 * what is wrong (without naming a flag: the caller does). */
int mprom_header_check(const char *line, operr *err);

/* Any other call of the HTTP API through the provider's URL, auth, headers,
 * TLS, timeout, retries and size cap (the backtest's range queries): POST
 * `form` (x-www-form-urlencoded, copied) to the base URL + `path`
 * ("/api/v1/query_range"). The callback runs exactly once, from the loop,
 * with the 2xx body (error 0, valid during the call) or an error and a
 * one-line message as for stats; never after mprov_close(). Returns 0 or a
 * negative errno (no callback then). */
typedef void (*mprom_raw_cb)(int error, const char *error_msg, const char *body, size_t len,
                             void *ud);
int mprom_query_raw(mprov *p, const char *path, const char *form, mprom_raw_cb cb, void *ud);

/* Create the provider; *out is freed by mprov_close(). Returns 0 or a negative
 * errno (-EINVAL for a bad URL or options, with err filled). */
int mprom_new(mprov **out, uv_loop_t *loop, ophttp_client *http, const mprom_opts *o, operr *err);

#endif
