/*
 * bench_backtest: `optipod backtest`'s replay over 1,000 containers x 30 days
 * of 5-minute samples (8,640 CPU and 8,640 memory samples each), a decision
 * every 5 minutes (the CRD's reconcileInterval) over a 24 h window (its
 * rollingWindow), with the CRD's engine defaults. Each container's series is
 * generated into one reused buffer, as a reader streams them, so the RSS
 * measures the replay, not a 140 MB input.
 *
 * Baseline, in the same run: the replay with every step's percentiles
 * recomputed from its window (btnaive), on the first BASE containers; the
 * ratio is per container. Both must end with the same requests and change
 * counts, or the benchmark exits 1. Targets (printed, not asserted): under
 * 2 s and 200 MiB peak RSS.
 */
#include "backtest/backtest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "support/btnaive.h"

enum { CONTAINERS = 1000, DAYS = 30, STEP_S = 300, BASE = 40 };
#define NS     (DAYS * 86400 / STEP_S)
#define START  1767225600LL /* 2026-01-01T00:00:00Z */
#define WINDOW 86400

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* CPU time: on a shared machine the wall clock also counts the neighbours. */
static double cpu_s(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static uint64_t rng;
static double rnd(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / (double)(1ull << 53);
}

/* Container i: a diurnal CPU curve with noise and spikes, memory that creeps
 * up and is reset by restarts, a few OOM kills; requests from a guess. */
static size_t gen(size_t i, bt_point *cpu, bt_point *mem, int64_t *oom, eng_container *c)
{
    rng = 0x9E3779B97F4A7C15ull * (i + 1);
    double base = 0.05 + 0.6 * rnd(), amp = base * (0.2 + rnd()), m0 = (80 + 900 * rnd()) * 1e6;
    double leak = rnd() < 0.2 ? 2e4 * rnd() : 0, m = m0;
    size_t noom = 0;
    for (size_t k = 0; k < NS; k++) {
        int64_t t = START + (int64_t)(k * STEP_S);
        double h = (double)(t % 86400) / 3600.0;
        double x = base + amp * (1 - cos(2 * M_PI * (h - 4) / 24)) / 2;
        x *= 0.9 + 0.2 * rnd();
        if (rnd() < 0.01)
            x *= 3;
        m += leak * STEP_S * (0.5 + rnd()) - (rnd() < 0.001 ? m - m0 : 0);
        cpu[k] = (bt_point){t, x};
        mem[k] = (bt_point){t, floor(m * (0.98 + 0.04 * rnd()))};
        if (leak > 0 && m > 3 * m0 && noom < 16) {
            oom[noom++] = t;
            m = m0;
        }
    }
    memset(c, 0, sizeof *c);
    c->name = "app";
    c->cpu = (eng_rl){.has_req = true, .has_lim = i % 2, .req = 100 + (int64_t)(1500 * rnd())};
    c->cpu.lim = 2 * c->cpu.req;
    c->mem = (eng_rl){.has_req = true, .has_lim = true, .req = (int64_t)(m0 * (0.8 + rnd()))};
    c->mem.lim = c->mem.req * 2;
    return noom;
}

int main(void)
{
    static bt_point cpu[NS], mem[NS];
    static int64_t oom[16];
    eng_policy p;
    eng_policy_defaults(&p);
    p.percentile = 0.9; /* the CRD's P90 x 1.2, 60 samples, 6 h */
    p.safety_factor = 1.2;
    p.min_samples = 60;
    p.min_history_s = 6 * 3600;
    bt_period per = {.from = START + WINDOW,
                     .to = START + NS * (int64_t)STEP_S - STEP_S,
                     .interval_s = STEP_S,
                     .window_s = WINDOW};
    bt_ws *ws = NULL;
    if (bt_ws_new(&ws) != 0)
        return 1;
    bt_total tot = {0};
    double gen_s = 0, replay_s = 0, replay_cpu = 0, base_s = 0;
    int64_t steps = 0;
    for (size_t i = 0; i < CONTAINERS; i++) {
        eng_container c;
        double t0 = now_s();
        size_t noom = gen(i, cpu, mem, oom, &c);
        double t1 = now_s(), c1 = cpu_s();
        bt_series s = {cpu, NS, mem, NS, oom, noom};
        bt_result r;
        if (bt_replay(ws, &p, &c, &s, &per, &r) != 0)
            return 1;
        double t2 = now_s();
        replay_cpu += cpu_s() - c1;
        gen_s += t1 - t0;
        replay_s += t2 - t1;
        steps += r.steps;
        bt_total_add(&tot, &r);
        if (i < BASE) {
            int64_t ch;
            eng_rl ce, me;
            btnaive_replay(&p, &c, &s, &per, &ch, &ce, &me);
            base_s += now_s() - t2;
            if (ch != r.changes || ce.req != r.cpu_end.req || me.req != r.mem_end.req) {
                printf("FAIL: container %zu: replay and recomputation disagree\n", i);
                return 1;
            }
        }
    }
    bt_ws_free(ws);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double per_c = replay_s / CONTAINERS, base_c = base_s / BASE;
    printf("backtest: %d containers x %d days of %d-minute samples (%d CPU + %d memory each), "
           "a decision every %d s over a %d h window\n",
           CONTAINERS, DAYS, STEP_S / 60, NS, NS, STEP_S, WINDOW / 3600);
    printf(
        "  replay             %.3f s wall, %.3f s CPU (%lld steps, %.0f ns each; target < 2 s)\n",
        replay_s, replay_cpu, (long long)steps, replay_cpu / (double)steps * 1e9);
    printf("  input generation   %.3f s (not in the replay time)\n", gen_s);
    printf("  baseline           %.2f ms per container, recomputing each window (%d containers)\n",
           base_c * 1e3, BASE);
    printf("  ratio to baseline  %.3f per container\n", per_c / base_c);
    printf("  peak RSS           %.1f MiB (target < 200 MiB)\n", (double)ru.ru_maxrss / 1024.0);
    printf("  result             %lld changes, CPU above request %.1f%% of samples, %lld memory "
           "samples above the limit\n",
           (long long)tot.changes, 100.0 * (double)tot.cpu_over / (double)tot.cpu_judged,
           (long long)tot.mem_over_lim);
    return 0;
}
