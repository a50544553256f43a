/*
 * tlsload: an HTTPS load generator for the benchmarks (bench_webhook,
 * bench_scale), meant to run in a process of its own so its CPU does not land
 * on the server's.
 *
 * It opens `nconns` keep-alive TLS connections to 127.0.0.1:port (OpenSSL over
 * memory BIOs on its own libuv loop, no libcurl; the server verified against
 * ca_pem and IP 127.0.0.1), sends one warm-up request on each (handshakes are
 * excluded from the figures), then sends the same raw request over and over:
 *  - closed loop (rate 0): exactly one request in flight per connection, so
 *    by Little's law latency ~= connections / throughput;
 *  - open loop (rate > 0): requests fall due at `rate` per second whatever
 *    the answers do; a due request takes an idle connection or waits for one,
 *    and that wait counts in its latency (no coordinated omission).
 * It ends after `nreqs` answers, or (closed loop, nreqs 0) once `stop_fd`
 * becomes readable or reaches end of file: no new request is sent then, and
 * the ones in flight are awaited and counted. Every answer must be a 200
 * whose body contains `must_contain`, or the run fails.
 *
 * Latency is from when a request was due to when its answer was complete.
 */
#ifndef OPTIPOD_TEST_TLSLOAD_H
#define OPTIPOD_TEST_TLSLOAD_H

typedef struct tlsload_opts {
    int port;
    const char *ca_pem;
    const char *req;          /* raw HTTP/1.1 request bytes (fakeapi_cli_format) */
    const char *must_contain; /* in every response body */
    int nconns;
    long nreqs;   /* answers to collect; 0 = until stop_fd (closed loop only) */
    double rate;  /* 0 = closed loop, else requests per second (needs nreqs) */
    int stop_fd;  /* -1 = none */
    int ready_fd; /* -1 = none; "ready\n" is written there once every connection is warm */
} tlsload_opts;

typedef struct tlsload_result {
    double p50, p99, max; /* ms */
    double rps;           /* answers per second while measuring */
    long n;               /* answers measured */
    int ok;               /* 0: a connection or an answer failed (said on stderr) */
} tlsload_result;

tlsload_result tlsload_run(const tlsload_opts *o);

#endif
