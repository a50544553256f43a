#include "util/backoff.h"

void opbackoff_init(opbackoff *b, uint64_t initial_ms, uint64_t max_ms, uint64_t reset_ms,
                    double jitter)
{
    b->initial_ms = initial_ms;
    b->max_ms = max_ms;
    b->reset_ms = reset_ms;
    b->jitter = jitter < 0 ? 0 : (jitter > 1 ? 1 : jitter);
    opbackoff_reset(b);
}

void opbackoff_reset(opbackoff *b)
{
    b->current_ms = b->initial_ms;
    b->last_fail_ms = 0;
    b->failures = 0;
}

uint64_t opbackoff_next(opbackoff *b, uint64_t now_ms, double rnd)
{
    /* A long healthy stretch since the last failure means the trouble is over. */
    if (b->failures && b->reset_ms && now_ms >= b->last_fail_ms &&
        now_ms - b->last_fail_ms >= b->reset_ms)
        opbackoff_reset(b);
    uint64_t delay = b->current_ms;
    b->current_ms = delay >= b->max_ms / 2 ? b->max_ms : delay * 2;
    if (delay > b->max_ms)
        delay = b->max_ms;
    b->failures++;
    b->last_fail_ms = now_ms;
    if (rnd < 0)
        rnd = 0;
    if (rnd >= 1)
        rnd = 0.999999;
    return delay + (uint64_t)((double)delay * b->jitter * rnd);
}
