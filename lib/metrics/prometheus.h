/*
 * mprom: the Prometheus metrics provider (an mprov) over the HTTP API.
 *
 * A stats request becomes one POST /api/v1/query per batch of pods (see
 * promql.h: every statistic rides in the same query, and a namespace costs
 * at most two queries), run one after another on the loop. Each query has a
 * timeout and is retried with exponential backoff (opbackoff) on transport
 * errors, HTTP 5xx and 429; a 4xx, an {"status":"error"}, a body past the
 * size cap or one that is not a Prometheus vector fails the request at once.
 * Either way the callback gets error != 0 and a one-line message naming
 * the server and the namespace first: no partial or guessed statistics.
 *
 * Auth and TLS for --prometheus-url: a bearer token (or a token file re-read
 * for every query, so a rotated token is picked up), a CA file, or
 * insecure_skip_verify (logged as a warning).
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
    const char *ca_file;           /* PEM bundle for https, or NULL (system trust) */
    int insecure_skip_verify;
    long timeout_ms;             /* per query attempt; 0 = 30 s */
    unsigned max_retries;        /* extra attempts after the first (0 = none) */
    uint64_t backoff_initial_ms; /* 0 = 250 ms */
    uint64_t backoff_max_ms;     /* 0 = 10 s */
    size_t max_body;             /* response cap; 0 = 16 MiB */
    size_t batch_pods;           /* pods per query; 0 = 200 */
    uint64_t step_floor_s;       /* subquery step floor; 0 = PROMQL_STEP_FLOOR_S */
    uint64_t rate_window_s;      /* CPU rate() window; 0 = PROMQL_RATE_WINDOW_S */
    obs_reg *metrics;            /* query latency and errors (provider.h); NULL = none */
} mprom_opts;

/* Create the provider; *out is freed by mprov_close(). Returns 0 or a negative
 * errno (-EINVAL for a bad URL or options, with err filled). */
int mprom_new(mprov **out, uv_loop_t *loop, ophttp_client *http, const mprom_opts *o, operr *err);

#endif
