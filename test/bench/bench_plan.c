/*
 * bench_plan: the offline planner over a whole GitOps repository, the way a
 * team runs `optipod plan` on it. For N = 1k, 4k and 16k Deployments (two
 * containers each, one pod, in namespaces of 250) a day of 5-minute samples
 * (288 per container) is generated into a temporary directory: N/500
 * multi-document manifest files and one usage CSV in scrape order (every
 * container at one timestamp, then the next), about 600 MB at 16k. A forked
 * child then loads the manifests, reads the usage file, runs the engine and
 * renders the table, exactly what the command does; the parent reports its
 * wall time and peak RSS (getrusage of the child), and removes the files.
 *
 * Reported per size: usage bytes and samples, time, peak RSS, and for each
 * step the growth per doubling of N ((t2/t1)^(1/log2(N2/N1)): 2.0 is linear).
 * Targets: linear growth, 16k under 10 s and 1 GiB. A child that does not plan
 * every container counts as a failure (exit 1); the figures are not asserted.
 * BENCH_PLAN_SIZES="1000 2000" overrides the sizes; TMPDIR the directory;
 * BENCH_PLAN_KEEP=1 keeps the inputs (to profile `optipod plan` on them).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plan/plan.h"
#include "util/buf.h"
#include "util/log.h"

#define SAMPLES      288 /* a day every 5 minutes */
#define STEP_S       300
#define T0           1767571200 /* 2026-01-05T00:00:00Z */
#define PER_FILE     500
#define PER_NS       250
#define MAX_SIZES    8
#define USAGE_HEADER "timestamp,namespace,pod,container,cpu_cores,memory_bytes\n"

static const char *const ctr_names[2] = {"app", "sidecar"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static int write_all(FILE *f, const opbuf *b)
{
    return fwrite(b->data, 1, b->len, f) == b->len ? 0 : -EIO;
}

/* N/PER_FILE files of PER_FILE Deployments each, as a GitOps repository keeps them. */
static int gen_manifests(const char *dir, unsigned n)
{
    opbuf b;
    opbuf_init(&b, 0);
    int rc = 0;
    for (unsigned f = 0; !rc && f * PER_FILE < n; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/apps-%03u.yaml", dir, f);
        opbuf_reset(&b);
        for (unsigned i = f * PER_FILE; i < n && i < (f + 1) * PER_FILE; i++)
            (void)opbuf_printf(
                &b,
                "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
                "  name: svc-%05u\n  namespace: team-%03u\n"
                "  labels: {app: svc-%05u, tier: backend}\nspec:\n"
                "  replicas: 1\n  selector:\n    matchLabels: {app: svc-%05u}\n"
                "  template:\n    metadata:\n      labels: {app: svc-%05u}\n"
                "    spec:\n      containers:\n"
                "      - name: app\n        image: registry.example/svc:1.4.2\n"
                "        resources:\n          requests: {cpu: 500m, memory: 512Mi}\n"
                "          limits: {memory: 1Gi}\n"
                "      - name: sidecar\n        image: registry.example/proxy:2.1\n"
                "        resources:\n          requests: {cpu: 100m, memory: 128Mi}\n",
                i, i / PER_NS, i, i, i);
        rc = opbuf_error(&b);
        FILE *fp = rc ? NULL : fopen(path, "w");
        if (!rc && !fp)
            rc = -errno;
        if (!rc)
            rc = write_all(fp, &b);
        if (fp && fclose(fp) && !rc)
            rc = -EIO;
    }
    opbuf_release(&b);
    return rc;
}

/* The usage CSV, timestamp-major; returns the bytes written in *bytes. */
static int gen_usage(const char *path, unsigned n, size_t *bytes)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -errno;
    /* ",team-007,svc-00042-<rs>-<pod>,app," once per container, then only numbers per line */
    char(*mid)[96] = calloc((size_t)n * 2, sizeof *mid);
    opbuf b;
    opbuf_init(&b, 0);
    int rc = mid ? 0 : -ENOMEM;
    for (unsigned i = 0; !rc && i < n; i++) {
        uint64_t h = mix(i + 1);
        for (int c = 0; c < 2; c++)
            snprintf(mid[2 * i + c], sizeof mid[0], ",team-%03u,svc-%05u-%09llx-%05llx,%s,",
                     i / PER_NS, i, (unsigned long long)(h & 0xfffffffffULL),
                     (unsigned long long)((h >> 40) & 0xfffff), ctr_names[c]);
    }
    *bytes = 0;
    if (!rc)
        rc = opbuf_puts(&b, USAGE_HEADER);
    for (unsigned k = 0; !rc && k < SAMPLES; k++) {
        char ts[24];
        snprintf(ts, sizeof ts, "%lld", (long long)T0 + (long long)k * STEP_S);
        for (unsigned i = 0; !rc && i < n; i++)
            for (int c = 0; c < 2; c++) {
                uint64_t r = mix(((uint64_t)i << 20) ^ ((uint64_t)k << 1) ^ (uint64_t)c);
                /* a diurnal curve around a per-container base, some noise */
                double base = c ? 0.02 + (double)(i % 7) / 100 : 0.1 + (double)(i % 50) / 100;
                double day = 1 + 0.5 * sin(2 * M_PI * k / SAMPLES);
                unsigned milli = (unsigned)(1000 * base * day) + (unsigned)(r % 40);
                unsigned long long mem =
                    (c ? 40ULL << 20 : 200ULL << 20) + (i % 64) * 4194304ULL + (r >> 40) % 8388608;
                (void)opbuf_puts(&b, ts);
                (void)opbuf_puts(&b, mid[2 * i + c]);
                rc = opbuf_printf(&b, "%u.%03u,%llu\n", milli / 1000, milli % 1000, mem);
            }
        if (!rc && b.len > (4u << 20)) {
            rc = write_all(fp, &b);
            *bytes += b.len;
            opbuf_reset(&b);
        }
    }
    if (!rc) {
        rc = write_all(fp, &b);
        *bytes += b.len;
    }
    if (fclose(fp) && !rc)
        rc = -EIO;
    opbuf_release(&b);
    free(mid);
    return rc;
}

/* The command's work, in a child: 0 when every container was planned. */
static int child_plan(const char *manifests, const char *usage, unsigned n)
{
    FILE *quiet = fopen("/dev/null", "w");
    if (quiet)
        oplog_set_sink(quiet);
    plan p;
    opbuf out;
    operr err;
    plan_init(&p);
    opbuf_init(&out, 0);
    int rc = plan_load_manifests(&p, manifests, &err);
    if (rc == 0)
        rc = plan_load_usage(&p, usage, &err);
    if (rc == 0)
        rc = plan_run(&p, 0);
    if (rc == 0)
        rc = plan_render(&p, PLAN_FMT_TABLE, &out);
    size_t planned = 0;
    for (size_t i = 0; i < p.nwl; i++)
        for (size_t k = 0; k < p.wl[i].nctrs; k++)
            planned += p.wl[i].ctrs[k].has_usage;
    if (rc)
        fprintf(stderr, "bench_plan: %s\n", rc == -ENOMEM ? "out of memory" : err.msg);
    else if (p.nwl != n || planned != 2 * (size_t)n || p.problems)
        fprintf(stderr, "bench_plan: %zu workloads, %zu containers planned, %zu problems%s%s\n",
                p.nwl, planned, p.problems, p.ndiags ? ": " : "", p.ndiags ? p.diags[0] : "");
    int ok = !rc && p.nwl == n && planned == 2 * (size_t)n && !p.problems;
    opbuf_release(&out);
    plan_release(&p);
    return ok ? 0 : 1;
}

typedef struct result {
    unsigned n;
    size_t bytes;
    double secs, cpu; /* wall clock, and the child's user + system CPU */
    long rss_kib;
    int ok;
} result;

static void rm_tree(const char *dir, unsigned n)
{
    char path[512];
    for (unsigned f = 0; f * PER_FILE < n; f++) {
        snprintf(path, sizeof path, "%s/manifests/apps-%03u.yaml", dir, f);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/manifests", dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/usage.csv", dir);
    unlink(path);
    rmdir(dir);
}

static int run_size(unsigned n, result *r)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256], manifests[300], usage[300];
    snprintf(dir, sizeof dir, "%s/bench_plan.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return -errno;
    snprintf(manifests, sizeof manifests, "%s/manifests", dir);
    snprintf(usage, sizeof usage, "%s/usage.csv", dir);
    memset(r, 0, sizeof *r);
    r->n = n;
    double g0 = now_s();
    int rc = mkdir(manifests, 0700) ? -errno : 0;
    if (!rc)
        rc = gen_manifests(manifests, n);
    if (!rc)
        rc = gen_usage(usage, n, &r->bytes);
    if (rc) {
        fprintf(stderr, "bench_plan: cannot write the inputs in %s: %s\n", dir, strerror(-rc));
        rm_tree(dir, n);
        return rc;
    }
    printf("%6u Deployments: inputs written in %.1f s (usage %.0f MB, %u samples)\n", n,
           now_s() - g0, (double)r->bytes / 1e6, n * 2 * SAMPLES);
    fflush(stdout);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_plan(manifests, usage, n));
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) {
        rc = -errno;
    } else {
        r->secs = now_s() - t0;
        r->cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        r->rss_kib = ru.ru_maxrss;
        r->ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    const char *keep = getenv("BENCH_PLAN_KEEP");
    if (keep && *keep == '1')
        printf("        inputs kept in %s\n", dir);
    else
        rm_tree(dir, n);
    return rc;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    unsigned sizes[MAX_SIZES] = {1000, 4000, 16000};
    size_t nsizes = 3;
    const char *env = getenv("BENCH_PLAN_SIZES");
    if (env && *env) {
        nsizes = 0;
        for (char *end; *env && nsizes < MAX_SIZES; env = end) {
            unsigned long v = strtoul(env, &end, 10);
            if (end == env)
                break;
            if (v)
                sizes[nsizes++] = (unsigned)v;
        }
    }
    printf("bench_plan: optipod plan over N Deployments x 2 containers, a day of 5-minute "
           "samples\n");
    result res[MAX_SIZES];
    int failed = 0;
    for (size_t i = 0; i < nsizes; i++) {
        if (run_size(sizes[i], &res[i]) != 0)
            return 1;
        printf("%6u Deployments: %6.2f s (CPU %.2f s), peak RSS %6.0f MiB%s\n", res[i].n,
               res[i].secs, res[i].cpu, (double)res[i].rss_kib / 1024,
               res[i].ok ? "" : "  FAILED (see above)");
        if (i > 0) {
            double doublings = log2((double)res[i].n / res[i - 1].n);
            printf("        growth per doubling of N from %u: time %.2fx (CPU %.2fx), RSS %.2fx "
                   "(2.00x is linear)\n",
                   res[i - 1].n, pow(res[i].secs / res[i - 1].secs, 1 / doublings),
                   pow(res[i].cpu / res[i - 1].cpu, 1 / doublings),
                   pow((double)res[i].rss_kib / res[i - 1].rss_kib, 1 / doublings));
        }
        fflush(stdout);
        failed |= !res[i].ok;
    }
    for (size_t i = 0; i < nsizes; i++)
        if (res[i].n == 16000)
            printf("target at 16k: under 10 s and 1 GiB: %s (%.2f s, CPU %.2f s, %.0f MiB; a "
                   "busy host stretches the wall clock, not the CPU time)\n",
                   res[i].ok && res[i].secs < 10 && res[i].rss_kib < 1048576 ? "met" : "NOT met",
                   res[i].secs, res[i].cpu, (double)res[i].rss_kib / 1024);
    return failed;
}
