/*
 * tloop: run a test's libuv loop until something happened, with a deadline.
 *
 * A guard timer wakes the loop every few milliseconds to check the condition
 * (with libuv 1.44, UV_RUN_ONCE may sleep in poll right after a timer ran, so
 * a condition set by that timer would otherwise wait for an unrelated event).
 * Deadlines are multiplied by $OPTIPOD_SLOW (make valgrind sets it).
 */
#ifndef OPTIPOD_TEST_LOOP_H
#define OPTIPOD_TEST_LOOP_H

#include <uv.h>

/* Run until pred(ud) is non-zero or ms pass; returns pred(ud). */
int tloop_until(uv_loop_t *loop, int (*pred)(void *ud), void *ud, unsigned ms);
/* Run until *flag is non-zero or ms pass; returns *flag. */
int tloop_until_flag(uv_loop_t *loop, const int *flag, unsigned ms);
/* The deadline ms scaled by $OPTIPOD_SLOW. */
unsigned tloop_scaled(unsigned ms);

#endif
