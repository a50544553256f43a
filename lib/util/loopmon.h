/*
 * oploopmon: how long the event loop runs callbacks without polling for I/O.
 *
 * A single-threaded reactor answers a webhook call or a probe only when it
 * polls; every stretch it spends in callbacks between two polls delays them.
 * One uv_prepare_t (run just before each poll) measures that stretch: the wall
 * time since the previous prepare minus the time the loop spent waiting in
 * the kernel (libuv's idle-time metric, switched on here). That is one
 * "stall"; the longest of the last OPLOOPMON_WINDOW_S seconds and of the whole
 * run are kept, and stalls over 5 ms and 100 ms are counted. The loop thread's
 * CPU time over each stretch is kept the same way: on a machine short of CPU
 * a stall in wall time can be mostly time the thread waited to run, which the
 * two figures tell apart.
 *
 * oploopmon_busy_ns() tells a callback how long the loop has been busy since
 * its last poll: work that can wait (the controller's queue) stops there and
 * goes on after the next poll, so requests are answered in between.
 *
 * The arithmetic is pure (oploopmon_record, oploopmon_window_max_ns take the
 * time): tests drive it without a loop. Ownership: the struct is the caller's;
 * oploopmon_start() starts an unreferenced handle (it keeps no loop alive);
 * oploopmon_close() closes it, and the struct must stay valid until `cb`
 * runs from the loop. Loop thread only.
 */
#ifndef OPTIPOD_UTIL_LOOPMON_H
#define OPTIPOD_UTIL_LOOPMON_H

#include <stdint.h>
#include <uv.h>

#define OPLOOPMON_WINDOW_S 10

typedef struct oploopmon {
    uv_loop_t *loop;
    uv_prepare_t prep;
    int started;
    uint64_t last_ns;      /* uv_hrtime() at the last prepare */
    uint64_t last_idle_ns; /* uv_metrics_idle_time() then */
    uint64_t last_cpu_ns;  /* the thread's CPU time then */
    uint64_t max_ns;       /* longest stall since start */
    uint64_t max_cpu_ns;   /* most CPU time of one stretch since start */
    uint64_t over_5ms, over_100ms, stalls;
    /* The longest stall of each of the last seconds: second number, maximum. */
    uint64_t win_sec[OPLOOPMON_WINDOW_S];
    uint64_t win_max[OPLOOPMON_WINDOW_S];
    uint64_t win_cpu_max[OPLOOPMON_WINDOW_S];
    void (*on_closed)(void *ud);
    void *closed_ud;
} oploopmon;

/* Zero the counters (no handle; what oploopmon_start does first). */
void oploopmon_init(oploopmon *m);
/* Returns 0 or a libuv error. */
int oploopmon_start(oploopmon *m, uv_loop_t *loop);
/* ns the loop has spent outside its poll since the last one (0 before start). */
uint64_t oploopmon_busy_ns(const oploopmon *m);
/* Count one stall of stall_ns, cpu_ns of it on CPU, ending at now_ns (the prepare
 * callback's arithmetic). */
void oploopmon_record(oploopmon *m, uint64_t now_ns, uint64_t stall_ns, uint64_t cpu_ns);
/* The longest stall of the OPLOOPMON_WINDOW_S seconds up to now_ns. */
uint64_t oploopmon_window_max_ns(const oploopmon *m, uint64_t now_ns);
/* The most CPU time one stretch took in those seconds. */
uint64_t oploopmon_window_cpu_max_ns(const oploopmon *m, uint64_t now_ns);
/* cb may be NULL; runs from the loop once the handle is closed (at once when never started). */
void oploopmon_close(oploopmon *m, void (*cb)(void *ud), void *ud);

#endif
