/*
 * authproxy: a small loopback HTTP proxy in front of a test's real
 * Prometheus that demands what a managed or multi-tenant backend (Mimir,
 * Cortex, Thanos behind an auth gateway) demands: an Authorization header
 * (a bearer token, or basic user:password) and a tenant header such as
 * "X-Scope-OrgID: team-a". A request without the right credentials gets
 * 401, one without the right tenant 403 (both with a one-line text body,
 * as those gateways answer); the others are forwarded to the upstream port
 * and the answer relayed byte for byte.
 *
 *   authproxy px;
 *   authproxy_rules r = {.bearer = "s3cret", .header = "X-Scope-OrgID", .value = "team-a"};
 *   ASSERT_EQ_INT(authproxy_start(&px, prom.port, &r), 0);
 *   ... query http://127.0.0.1:<px.port> ...
 *   authproxy_stop(&px);
 *
 * It runs on its own thread with blocking sockets, one connection at a
 * time (answers carry Connection: close), so it works with any client loop.
 * Counters are read after authproxy_stop() or at any time (atomics).
 */
#ifndef OPTIPOD_TEST_AUTHPROXY_H
#define OPTIPOD_TEST_AUTHPROXY_H

#include <pthread.h>
#include <stdatomic.h>

typedef struct authproxy_rules {
    const char *bearer; /* required token, or NULL */
    const char *basic;  /* required "user:password", or NULL */
    const char *header; /* required header name (e.g. X-Scope-OrgID), or NULL */
    const char *value;  /* ... and its value */
} authproxy_rules;

typedef struct authproxy {
    int port; /* where it listens (127.0.0.1) */
    int upstream;
    authproxy_rules r;
    int fd;
    atomic_int stop;
    atomic_int requests, forwarded, refused401, refused403;
    char last_auth[256]; /* the last request's Authorization value */
    pthread_t th;
    int running;
} authproxy;

/* Listen on a free loopback port; returns 0 or a negative errno. */
int authproxy_start(authproxy *p, int upstream_port, const authproxy_rules *r);
void authproxy_stop(authproxy *p);

#endif
