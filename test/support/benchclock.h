/*
 * benchclock: what the benchmarks read about themselves: the monotonic clock,
 * this process's CPU time (user + system) and its resident set.
 */
#ifndef OPTIPOD_TEST_BENCHCLOCK_H
#define OPTIPOD_TEST_BENCHCLOCK_H

/* Seconds on CLOCK_MONOTONIC. */
double bench_now_s(void);
/* User + system CPU seconds of this process. */
double bench_cpu_s(void);
/* Resident set in KiB (/proc/self/statm), 0 when unreadable. */
long bench_rss_kib(void);

#endif
