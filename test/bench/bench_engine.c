/*
 * bench_engine: the engine over 10k containers x 1440 samples each (a day of
 * 1-minute samples), percentiles computed from the raw samples by selection
 * (eng_percentile), against a qsort-based baseline on the same samples in the
 * same run. Samples are generated per container into one reused buffer, as a
 * provider streams them, so RSS measures the engine, not a 100 MB input.
 *
 * Prints the engine time, the baseline time, their ratio and the peak RSS;
 * targets: engine < 100 ms, RSS < 50 MiB. Exits 1 if selection and baseline
 * disagree on any percentile.
 */
#include "support/benchclock.h"
#include "engine/engine.h"
#include "engine/quantity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { CONTAINERS = 10000, SAMPLES = 1440 };

static uint64_t rng(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A day of CPU rates (cores) and working sets (bytes, 4 KiB pages, so many
 * equal values) for container i; deterministic per i. */
static void gen(size_t i, double *cpu, double *mem)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL ^ (i * 0xBF58476D1CE4E5B9ULL);
    double base = 0.01 + (double)(rng(&x) % 2000) / 1000;
    double ws = (double)(32 + rng(&x) % 2048) * 1048576;
    for (size_t k = 0; k < SAMPLES; k++) {
        uint64_t r = rng(&x);
        double u = (double)(r % 10000) / 10000;
        cpu[k] = base * (0.5 + u) * ((r >> 20) % 50 == 0 ? 3 : 1); /* occasional spikes */
        mem[k] = ws + (double)((r >> 32) % 64) * 4096;
    }
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double baseline_quantile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, cmpd);
    double rank = q * (double)(n - 1);
    size_t lo = (size_t)floor(rank), hi = lo + 1 < n ? lo + 1 : lo;
    double w = rank - floor(rank);
    return v[lo] * (1 - w) + v[hi] * w;
}

int main(void)
{
    static double cpu[SAMPLES], mem[SAMPLES], cpu2[SAMPLES], mem2[SAMPLES];
    eng_policy p;
    eng_policy_defaults(&p);
    eng_facts f = {.now = 1700000000, .hpa_cpu = false};
    double t_engine = 0, t_base = 0;
    size_t applied = 0, mismatches = 0;

    for (size_t i = 0; i < CONTAINERS; i++) {
        gen(i, cpu, mem);
        memcpy(cpu2, cpu, sizeof cpu);
        memcpy(mem2, mem, sizeof mem);

        double t0 = bench_now_s();
        eng_container c;
        memset(&c, 0, sizeof c);
        c.name = "app";
        c.use.cpu_cores = eng_percentile(cpu, SAMPLES, p.percentile);
        c.use.mem_bytes = (int64_t)eng_percentile(mem, SAMPLES, p.percentile);
        double pk[4] = {mem[0], mem[1], mem[2], mem[3]}; /* 4 chains: no add latency stall */
        for (size_t k = 4; k + 3 < SAMPLES; k += 4)
            for (int j = 0; j < 4; j++)
                pk[j] = mem[k + j] > pk[j] ? mem[k + j] : pk[j];
        double peak = fmax(fmax(pk[0], pk[1]), fmax(pk[2], pk[3]));
        c.use.mem_peak_bytes = (int64_t)peak;
        c.use.samples = SAMPLES;
        c.use.span_s = 86400;
        c.cpu.has_req = c.mem.has_req = true;
        c.cpu.req = 250;
        c.mem.req = 256 * KQ_MI;
        c.cpu.has_lim = true;
        c.cpu.lim = 500;
        eng_result r;
        eng_recommend(&p, &f, &c, &r);
        double t1 = bench_now_s();
        applied += r.decision == ENG_APPLY;

        double bc = baseline_quantile(cpu2, SAMPLES, p.percentile);
        double bm = baseline_quantile(mem2, SAMPLES, p.percentile);
        double t2 = bench_now_s();
        t_engine += t1 - t0;
        t_base += t2 - t1;
        if (bc != c.use.cpu_cores || (int64_t)bm != c.use.mem_bytes)
            mismatches++;
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = (double)ru.ru_maxrss / 1024;
    printf("engine: %d containers x %d samples (2 percentiles + peak + rules each): %.1f ms\n",
           CONTAINERS, SAMPLES, t_engine * 1e3);
    printf("baseline (qsort percentiles only): %.1f ms; engine/baseline ratio %.2f\n", t_base * 1e3,
           t_engine / t_base);
    printf("peak RSS %.1f MiB; %zu of %d containers would change\n", rss_mib, applied, CONTAINERS);
    printf("targets: time < 100 ms %s, RSS < 50 MiB %s\n", t_engine < 0.1 ? "met" : "MISSED",
           rss_mib < 50 ? "met" : "MISSED");
    if (mismatches) {
        printf("FAIL: %zu containers where selection and qsort disagree\n", mismatches);
        return 1;
    }
    return 0;
}
