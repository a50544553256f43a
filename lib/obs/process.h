/*
 * obs_process: the standard process_* metrics every Prometheus client exports,
 * read from /proc at scrape time:
 *
 *   process_cpu_seconds_total       user + system CPU time
 *   process_resident_memory_bytes   RSS
 *   process_virtual_memory_bytes    virtual memory size
 *   process_open_fds                entries of /proc/self/fd
 *   process_max_fds                 RLIMIT_NOFILE (soft)
 *   process_start_time_seconds      since the epoch (boot time + start ticks)
 *
 * The parsers are pure (tested and fuzzed on text); obs_process_register()
 * defines the families and a collector reading /proc/self/stat and /proc/stat.
 * Nothing is allocated beyond the families; the registry owns those.
 */
#ifndef OPTIPOD_OBS_PROCESS_H
#define OPTIPOD_OBS_PROCESS_H

#include <stddef.h>

#include "obs/obs.h"

typedef struct obs_proc_stat {
    double utime_ticks, stime_ticks; /* fields 14, 15 */
    double start_ticks;              /* field 22: after boot, in clock ticks */
    double vsize_bytes;              /* field 23 */
    double rss_pages;                /* field 24 */
} obs_proc_stat;

/* Parse /proc/<pid>/stat text: "pid (comm) state ppid ..." (comm may hold spaces and
 * parentheses: the last ')' ends it). Returns 0 or -EINVAL when a field is missing or
 * not a non-negative number. */
int obs_proc_parse_stat(const char *text, size_t len, obs_proc_stat *out);
/* The "btime <seconds>" line of /proc/stat; 0 or -EINVAL. */
int obs_proc_parse_btime(const char *text, size_t len, double *btime);

/* Define the six families in r and a collector that fills them at each scrape. A file
 * that cannot be read leaves its families without a sample. Returns 0 or a negative
 * errno (err says which family). */
int obs_process_register(obs_reg *r, operr *err);

#endif
