#include "util/loopmon.h"

#include <string.h>
#include <time.h>

#define NS_PER_S 1000000000ull

void oploopmon_init(oploopmon *m)
{
    memset(m, 0, sizeof *m);
}

void oploopmon_record(oploopmon *m, uint64_t now_ns, uint64_t stall_ns, uint64_t cpu_ns)
{
    m->stalls++;
    if (stall_ns > m->max_ns)
        m->max_ns = stall_ns;
    if (cpu_ns > m->max_cpu_ns)
        m->max_cpu_ns = cpu_ns;
    if (stall_ns > 5000000)
        m->over_5ms++;
    if (stall_ns > 100000000)
        m->over_100ms++;
    /* second numbers start at 1: 0 marks an empty slot */
    uint64_t sec = now_ns / NS_PER_S + 1;
    size_t i = sec % OPLOOPMON_WINDOW_S;
    if (m->win_sec[i] != sec) {
        m->win_sec[i] = sec;
        m->win_max[i] = m->win_cpu_max[i] = 0;
    }
    if (stall_ns > m->win_max[i])
        m->win_max[i] = stall_ns;
    if (cpu_ns > m->win_cpu_max[i])
        m->win_cpu_max[i] = cpu_ns;
}

static uint64_t window_max(const oploopmon *m, const uint64_t *per_sec, uint64_t now_ns)
{
    uint64_t sec = now_ns / NS_PER_S + 1, max = 0;
    for (size_t i = 0; i < OPLOOPMON_WINDOW_S; i++)
        if (m->win_sec[i] && m->win_sec[i] <= sec && m->win_sec[i] + OPLOOPMON_WINDOW_S > sec &&
            per_sec[i] > max)
            max = per_sec[i];
    return max;
}

uint64_t oploopmon_window_max_ns(const oploopmon *m, uint64_t now_ns)
{
    return window_max(m, m->win_max, now_ns);
}

uint64_t oploopmon_window_cpu_max_ns(const oploopmon *m, uint64_t now_ns)
{
    return window_max(m, m->win_cpu_max, now_ns);
}

static uint64_t idle_ns(uv_loop_t *loop)
{
    return uv_metrics_idle_time(loop);
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void on_prepare(uv_prepare_t *p)
{
    oploopmon *m = p->data;
    uint64_t now = uv_hrtime(), idle = idle_ns(m->loop), cpu = thread_cpu_ns();
    uint64_t span = now - m->last_ns, waited = idle - m->last_idle_ns;
    oploopmon_record(m, now, span > waited ? span - waited : 0,
                     cpu > m->last_cpu_ns ? cpu - m->last_cpu_ns : 0);
    m->last_ns = now;
    m->last_idle_ns = idle;
    m->last_cpu_ns = cpu;
}

int oploopmon_start(oploopmon *m, uv_loop_t *loop)
{
    oploopmon_init(m);
    /* Harmless when already on; from now on the loop counts its time in the kernel. */
    int rc = uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
    if (rc == 0)
        rc = uv_prepare_init(loop, &m->prep);
    if (rc != 0)
        return rc;
    m->loop = loop;
    m->prep.data = m;
    m->last_ns = uv_hrtime();
    m->last_idle_ns = idle_ns(loop);
    m->last_cpu_ns = thread_cpu_ns();
    uv_prepare_start(&m->prep, on_prepare);
    uv_unref((uv_handle_t *)&m->prep);
    m->started = 1;
    return 0;
}

uint64_t oploopmon_busy_ns(const oploopmon *m)
{
    if (!m->started)
        return 0;
    uint64_t span = uv_hrtime() - m->last_ns, waited = idle_ns(m->loop) - m->last_idle_ns;
    return span > waited ? span - waited : 0;
}

static void on_closed(uv_handle_t *h)
{
    oploopmon *m = h->data;
    if (m->on_closed)
        m->on_closed(m->closed_ud);
}

void oploopmon_close(oploopmon *m, void (*cb)(void *ud), void *ud)
{
    m->on_closed = cb;
    m->closed_ud = ud;
    if (!m->started) {
        if (cb)
            cb(ud);
        return;
    }
    m->started = 0;
    uv_prepare_stop(&m->prep);
    uv_close((uv_handle_t *)&m->prep, on_closed);
}
