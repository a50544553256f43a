/*
 * gen_sample: writes the embedded sample's usage file (docs/sample/usage.csv)
 * from the model documented in docs/sample/README.md. Deterministic: a fixed
 * start time, a fixed-seed splitmix64 for noise, and values printed with few
 * digits, so every run on every machine writes the same bytes.
 *
 *   gen_sample [--openmetrics] [--end UNIX] > usage.csv
 *
 * --end moves the whole sample in time (by a multiple of the step) so that
 * its newest sample is at or just before UNIX: a test's Prometheus keeps
 * recent data only.
 *
 * --openmetrics writes the same samples as OpenMetrics series instead
 * (container_cpu_usage_seconds_total counters, working-set gauges and
 * kube_pod_container_status_last_terminated_reason, which stays 1 after a
 * pod's first OOM kill as kube-state-metrics keeps it), grouped by family as
 * `promtool tsdb create-blocks-from openmetrics` wants.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define START0  1767571200LL /* 2026-01-05T00:00:00Z */
#define STEP    120          /* seconds between samples */
#define NSTEPS  1441         /* two days, both ends included */
#define MI      1048576.0
#define NS      "shop"
#define NSERIES 10
#define PI      3.14159265358979323846

static uint64_t rng = 0x6f707469706f64ULL; /* "optipod" */
static long long START = START0;

/* splitmix64 → uniform [0, 1) */
static double uniform(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/* multiplicative noise of +-frac */
static double noisy(double v, double frac)
{
    return v * (1.0 + frac * (2.0 * uniform() - 1.0));
}

/* 0 at 04:00 UTC, 1 at 16:00 UTC */
static double diurnal(int64_t t)
{
    double h = (double)(t % 86400) / 3600.0;
    return (1.0 - cos(2.0 * PI * (h - 4.0) / 24.0)) / 2.0;
}

typedef struct series {
    const char *pod, *ctr;
    int model;
    int replica;
    double mem; /* worker: the current working set */
} series;

enum { WEB, CART, SEARCH, WORKER, CHECKOUT, ENVOY };

static series all[NSERIES] = {
    {"web-7d9f8c6b5d-x2k4p", "web", WEB, 0, 0},
    {"web-7d9f8c6b5d-m8qzt", "web", WEB, 1, 0},
    {"web-7d9f8c6b5d-r5wbn", "web", WEB, 2, 0},
    {"cart-5c6d7f8b9-h7j2k", "cart", CART, 0, 0},
    {"search-0", "search", SEARCH, 0, 0},
    {"search-1", "search", SEARCH, 1, 0},
    {"worker-6b8c9d7f5-q4v9s", "worker", WORKER, 0, 0},
    {"worker-6b8c9d7f5-z4n6c", "worker", WORKER, 1, 0},
    {"checkout-84f5b6c7d8-t6p2l", "checkout", CHECKOUT, 0, 0},
    {"checkout-84f5b6c7d8-t6p2l", "envoy", ENVOY, 0, 0},
};

/* The OOM kills of the worker: (replica, step). */
static const int worker_ooms[][2] = {{0, 900}, {1, 1140}, {0, 1320}};

/* One sample of the model: cores used over the last step, working set, OOM. */
static void sample(series *s, int i, int64_t t, double *cpu, double *mem, int *oom)
{
    *oom = 0;
    switch (s->model) {
    case WEB: /* diurnal CPU 0.15..0.50 cores, steady memory */
        *cpu = noisy(0.15 + 0.35 * diurnal(t), 0.05);
        *mem = noisy(180 * MI, 0.05);
        break;
    case CART: { /* a leak from the last rollout, 4 h before the end: +2.5 MiB/min */
        int leak_from = NSTEPS - 120;
        *cpu = noisy(0.08, 0.2);
        *mem = noisy(300 * MI, 0.02) + (i > leak_from ? (i - leak_from) * 2.0 * 2.5 * MI : 0);
        break;
    }
    case SEARCH: /* a JVM: 0.25 cores with GC spikes of ~1.2 cores one sample in eight */
        *cpu = (i + s->replica * 3) % 8 == 0 ? noisy(1.2, 0.1) : noisy(0.25, 0.1);
        *mem = noisy(1.4 * 1024 * MI, 0.02);
        break;
    case WORKER: { /* batches grow the heap; three OOM kills at the 512Mi limit */
        if (s->mem == 0)
            s->mem = 160 * MI;
        s->mem += noisy(4 * MI, 0.5);
        if (s->mem > 460 * MI)
            s->mem = 300 * MI; /* the batch ends and frees */
        *cpu = noisy(0.12 + 0.1 * diurnal(t), 0.1);
        *mem = s->mem;
        for (size_t k = 0; k < sizeof worker_ooms / sizeof *worker_ooms; k++)
            if (worker_ooms[k][0] == s->replica && worker_ooms[k][1] == i) {
                *mem = 512 * MI;
                *oom = 1;
                s->mem = 160 * MI; /* restarted */
            }
        break;
    }
    case CHECKOUT: /* the app of a pod with a sidecar */
        *cpu = noisy(0.18 + 0.12 * diurnal(t), 0.08);
        *mem = noisy(350 * MI, 0.03);
        break;
    default: /* ENVOY: the sidecar, small and steady */
        *cpu = noisy(0.02 + 0.01 * diurnal(t), 0.1);
        *mem = noisy(45 * MI, 0.03);
        break;
    }
}

static double cpu_v[NSTEPS][NSERIES], mem_v[NSTEPS][NSERIES];
static int oom_v[NSTEPS][NSERIES];

static void print_om(void)
{
    static const char *const l = "{namespace=\"" NS "\",pod=\"%s\",container=\"%s\"";
    /* OpenMetrics: one family at a time, each series in time order */
    printf("# TYPE container_cpu_usage_seconds counter\n");
    for (int k = 0; k < NSERIES; k++) {
        double total = 0;
        for (int i = 0; i < NSTEPS; i++) {
            total += cpu_v[i][k] * STEP;
            printf("container_cpu_usage_seconds_total");
            printf(l, all[k].pod, all[k].ctr);
            printf("} %.3f %lld\n", total, START + (long long)i * STEP);
        }
    }
    printf("# TYPE container_memory_working_set_bytes gauge\n");
    for (int k = 0; k < NSERIES; k++)
        for (int i = 0; i < NSTEPS; i++) {
            printf("container_memory_working_set_bytes");
            printf(l, all[k].pod, all[k].ctr);
            printf("} %.0f %lld\n", mem_v[i][k], START + (long long)i * STEP);
        }
    /* kube-state-metrics keeps the last terminated reason until the next one */
    printf("# TYPE kube_pod_container_status_last_terminated_reason gauge\n");
    for (int k = 0; k < NSERIES; k++) {
        if (all[k].model != WORKER)
            continue;
        int seen = 0;
        for (int i = 0; i < NSTEPS; i++) {
            seen |= oom_v[i][k];
            printf("kube_pod_container_status_last_terminated_reason");
            printf(l, all[k].pod, all[k].ctr);
            printf(",reason=\"OOMKilled\"} %d %lld\n", seen, START + (long long)i * STEP);
        }
    }
    printf("# EOF\n");
}

int main(int argc, char **argv)
{
    int om = 0;
    for (int a = 1; a < argc; a++) {
        long long end = 0;
        if (strcmp(argv[a], "--openmetrics") == 0) {
            om = 1;
        } else if (strcmp(argv[a], "--end") == 0 && a + 1 < argc &&
                   sscanf(argv[++a], "%lld", &end) == 1 && end > (NSTEPS - 1) * STEP) {
            /* a multiple of the step, so the diurnal model's hours do not move */
            long long shift = (end - (NSTEPS - 1) * STEP - START0) / 86400 * 86400;
            START = START0 + shift;
        } else {
            fprintf(stderr, "usage: gen_sample [--openmetrics] [--end UNIX] > FILE\n");
            return 2;
        }
    }
    /* the model runs once, in time order, whatever the output format */
    for (int i = 0; i < NSTEPS; i++)
        for (int k = 0; k < NSERIES; k++)
            sample(&all[k], i, START + (int64_t)i * STEP, &cpu_v[i][k], &mem_v[i][k], &oom_v[i][k]);
    if (om) {
        print_om();
        return 0;
    }
    printf("timestamp,namespace,pod,container,cpu_cores,memory_bytes,oom\n");
    for (int i = 0; i < NSTEPS; i++)
        for (int k = 0; k < NSERIES; k++)
            printf("%lld,%s,%s,%s,%.4f,%.0f,%d\n", START + (long long)i * STEP, NS, all[k].pod,
                   all[k].ctr, cpu_v[i][k], mem_v[i][k], oom_v[i][k]);
    return 0;
}
