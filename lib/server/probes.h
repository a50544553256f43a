/*
 * probes: the controller's health, readiness and metrics endpoints.
 *
 *   GET /healthz  200 "ok" while the loop turns (it answers from the loop)
 *   GET /readyz   200 "ok" once ready() says so, else 503 with its reason
 *   GET /metrics  Prometheus text exposition, written by metrics()
 *
 * Plain HTTP on --health-probe-bind-address / --metrics-bind-address, as
 * controller-runtime does; both may share one listener. Everything else is
 * 404. Ownership: probes_start() allocates; probes_stop() closes the listener
 * and frees it from the loop, then calls on_closed.
 */
#ifndef OPTIPOD_SERVER_PROBES_H
#define OPTIPOD_SERVER_PROBES_H

#include <uv.h>

#include "util/buf.h"
#include "util/err.h"

typedef struct probes probes;

typedef struct probes_opts {
    const char *bind; /* "host:port", e.g. ":8081" or "127.0.0.1:0"; "0" disables */
    /* Readiness: return 1 when ready; otherwise write why into `why`. */
    int (*ready)(opbuf *why, void *ud);
    /* Append Prometheus text exposition to `out`; returns 0, or an error (the buffer's
     * opbuf_error(), say) that makes the page a 500. */
    int (*metrics)(opbuf *out, void *ud);
    void *ud;
} probes_opts;

/* Split "host:port" (":8081" → all interfaces) into parts; 0 or -EINVAL. */
int probes_parse_bind(const char *bind, char *host, size_t hostcap, int *port);
int probes_start(probes **out, uv_loop_t *loop, const probes_opts *opts, operr *err);
int probes_port(const probes *p);
void probes_stop(probes *p, void (*on_closed)(void *ud), void *ud);

#endif
