/*
 * opbackoff: exponential backoff with jitter, as pure arithmetic.
 *
 * Used for watch reconnects (0.8 s doubling to 30 s, reset after 2 min of
 * health) and by the work queue (5 ms doubling to 1000 s per key). No clock is
 * read here: callers pass "now" in milliseconds and a random source, so tests
 * are deterministic.
 */
#ifndef OPTIPOD_UTIL_BACKOFF_H
#define OPTIPOD_UTIL_BACKOFF_H

#include <stdint.h>

typedef struct opbackoff {
    uint64_t initial_ms;   /* first delay */
    uint64_t max_ms;       /* ceiling for the delay */
    uint64_t reset_ms;     /* healthy for this long → next failure starts at initial; 0 = never */
    double jitter;         /* fraction of the delay added at random, 0..1 */
    uint64_t current_ms;   /* the delay the next failure will wait, before jitter */
    uint64_t last_fail_ms; /* when the last failure was recorded */
    uint32_t failures;     /* consecutive failures since the last reset */
} opbackoff;

void opbackoff_init(opbackoff *b, uint64_t initial_ms, uint64_t max_ms, uint64_t reset_ms,
                    double jitter);
/* Record a failure at now_ms and return how long to wait. `rnd` in [0,1). */
uint64_t opbackoff_next(opbackoff *b, uint64_t now_ms, double rnd);
/* Forget all failures. */
void opbackoff_reset(opbackoff *b);

#endif
