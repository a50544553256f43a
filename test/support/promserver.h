/*
 * promsrv: run the REAL Prometheus server (Debian's /usr/bin/prometheus) on
 * loopback for a test, over series the test wrote as OpenMetrics text and
 * backfilled with `promtool tsdb create-blocks-from openmetrics`.
 *
 *   promsrv s;
 *   if (!promsrv_available()) test_skip("...");
 *   ASSERT_EQ_INT(promsrv_start(&s, om_text, om_len, &err), 0);
 *   ... query s.url ...
 *   promsrv_stop(&s);
 *
 * The server gets a temporary directory (config with no scrape targets, the
 * TSDB, its log), 127.0.0.1 and a free port. promsrv_start() returns once
 * /-/ready answers 200. promsrv_stop() kills the process, waits for it and
 * removes the directory; it is idempotent, and every started server is also
 * stopped at exit (atexit), so a failing test never leaves one behind; the
 * server also gets SIGKILL if the test process dies (PR_SET_PDEATHSIG). Keep
 * the promsrv in static storage: the atexit hook reads it.
 */
#ifndef OPTIPOD_TEST_PROMSERVER_H
#define OPTIPOD_TEST_PROMSERVER_H

#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"

#define PROMSRV_PROMETHEUS "/usr/bin/prometheus"
#define PROMSRV_PROMTOOL   "/usr/bin/promtool"

typedef struct promsrv {
    pid_t pid; /* 0 when not running */
    int port;
    char dir[256]; /* temporary directory, "" once removed */
    char url[64];  /* "http://127.0.0.1:PORT" */
} promsrv;

/* 1 when both prometheus and promtool are installed. */
int promsrv_available(void);
/* Backfill `om` (OpenMetrics text ending in "# EOF\n"), start and wait for ready
 * (at most 30 s). Returns 0 or a negative errno with err filled (the tail of the
 * tool's log included). */
int promsrv_start(promsrv *s, const char *om, size_t len, operr *err);
void promsrv_stop(promsrv *s);
/* A loopback port nobody listens on (bound then closed), for "server down" tests. */
int promsrv_free_port(void);
/* Blocking GET of http://127.0.0.1:port/path; returns the HTTP status or a
 * negative errno. The body (capped) goes to body_out when non-NULL. */
int promsrv_http_get(int port, const char *path, char *body_out, size_t body_max);

#endif
