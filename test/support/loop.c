#include "support/loop.h"

#include <stdlib.h>

typedef struct tloop_guard {
    int (*pred)(void *ud);
    void *ud;
    uint64_t deadline;
    int done;
} tloop_guard;

unsigned tloop_scaled(unsigned ms)
{
    const char *slow = getenv("OPTIPOD_SLOW");
    int f = slow ? atoi(slow) : 1;
    return f > 1 ? ms * (unsigned)f : ms;
}

static void tloop_tick(uv_timer_t *t)
{
    tloop_guard *g = t->data;
    if (g->pred(g->ud) || uv_now(t->loop) >= g->deadline) {
        g->done = 1;
        uv_stop(t->loop);
    }
}

int tloop_until(uv_loop_t *loop, int (*pred)(void *ud), void *ud, unsigned ms)
{
    tloop_guard g = {pred, ud, 0, 0};
    uv_update_time(loop);
    g.deadline = uv_now(loop) + tloop_scaled(ms);
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = &g;
    uv_timer_start(&t, tloop_tick, 1, 5);
    /* uv_run returns early on uv_stop; it may also return when nothing but the
     * guard is left, in which case the guard keeps it going to the deadline. */
    while (!pred(ud) && !g.done)
        uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return pred(ud);
}

static int tloop_flag_set(void *ud)
{
    return *(const int *)ud != 0;
}

int tloop_until_flag(uv_loop_t *loop, const int *flag, unsigned ms)
{
    return tloop_until(loop, tloop_flag_set, (void *)flag, ms);
}
