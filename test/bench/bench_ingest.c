/*
 * bench_ingest: how fast Deployments flow from the API server into the
 * informer cache, against plain cJSON parsing of the same objects in the same
 * run (the baseline), and what the cache costs in memory.
 *
 * For N = 1k and 10k realistic Deployments (test/support/gen.h: ~4.6 KB of
 * JSON each, managedFields included) served by the fake API server in ANOTHER
 * process (test/tools/fakeapi_server, so the server's work does not land on
 * the measured CPU):
 *   list:  paged LIST (500 per page) over HTTPS until the informer has synced;
 *   watch: the server modifies every object once (SIGUSR1), N MODIFIED events
 *          until the cache has applied them all.
 * Reported: objects/s by wall clock and by this process's CPU time, each as a
 * ratio to the baseline (cJSON_Parse + cJSON_Delete of the same N objects);
 * every figure is the best of 3 runs, interleaved with the baseline's. Also
 * peak RSS, and RSS growth and cache bytes per cached object (first run).
 * "wall" includes the fake server's own time (it serialises every page and
 * event in one thread), "client CPU" is this process's CPU time only.
 * No figure here is asserted: this is a measurement (make bench), not a test.
 */
#include <cJSON.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "support/benchclock.h"
#include "http/http.h"
#include "kube/config.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "support/gen.h"
#include "util/log.h"

typedef struct server {
    pid_t pid;
    FILE *out;
    char url[256];
} server;

static int server_start(server *s, const char *tool, const char *kubeconfig, unsigned n)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char nbuf[32];
        snprintf(nbuf, sizeof nbuf, "%u", n);
        execl(tool, tool, "--kubeconfig-out", kubeconfig, "--deployments", nbuf, "--namespaces",
              "20", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    s->out = fdopen(fds[0], "r");
    char line[512];
    while (s->out && fgets(line, sizeof line, s->out)) {
        if (strncmp(line, "ready ", 6) == 0) {
            snprintf(s->url, sizeof s->url, "%s", line + 6);
            return 0;
        }
    }
    return -1;
}

static void server_stop(server *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    if (s->out)
        fclose(s->out);
}

typedef struct run {
    uv_loop_t loop;
    kinf *inf;
    uv_check_t check;
    server *srv;
    unsigned n;
    unsigned updates;
    int phase; /* 0 listing, 1 watching, 2 done */
    double t0, c0, t_list, c_list, t_watch, c_watch;
    long rss_synced;
    size_t cache_bytes;
    ophttp_client *http;
} run;

static void on_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    (void)old;
    (void)cur;
    ((run *)ud)->updates++;
}

static void on_check(uv_check_t *c)
{
    run *r = c->data;
    if (r->phase == 0 && kinf_has_synced(r->inf)) {
        r->t_list = bench_now_s() - r->t0;
        r->c_list = bench_cpu_s() - r->c0;
        r->rss_synced = bench_rss_kib();
        r->cache_bytes = kcache_mem_bytes(kinf_cache(r->inf));
        r->phase = 1;
        r->updates = 0;
        r->t0 = bench_now_s();
        r->c0 = bench_cpu_s();
        kill(r->srv->pid, SIGUSR1);
    } else if (r->phase == 1 && r->updates >= r->n) {
        r->t_watch = bench_now_s() - r->t0;
        r->c_watch = bench_cpu_s() - r->c0;
        r->phase = 2;
        uv_check_stop(c);
        uv_close((uv_handle_t *)c, NULL);
        kinf_close(r->inf, NULL, NULL);
        ophttp_client_close(r->http, NULL, NULL);
    }
}

static double baseline_parse(unsigned n, size_t *bytes)
{
    char **objs = calloc(n, sizeof *objs);
    *bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        opbuf b;
        opbuf_init(&b, 1 << 20);
        gen_deployment(&b, "team-0", i);
        *bytes += b.len;
        objs[i] = opbuf_detach(&b, NULL);
    }
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double t = bench_now_s();
        for (unsigned i = 0; i < n; i++)
            cJSON_Delete(cJSON_Parse(objs[i]));
        t = bench_now_s() - t;
        if (t < best)
            best = t;
    }
    for (unsigned i = 0; i < n; i++)
        free(objs[i]);
    free(objs);
    return best;
}

/* One list+watch ingest on a fresh loop, client and informer; fills r. */
static int ingest_once(server *srv, const char *kc, unsigned n, run *r, long *rss_growth)
{
    memset(r, 0, sizeof *r);
    r->srv = srv;
    r->n = n;
    uv_loop_init(&r->loop);
    kcfg cfg;
    kcfg_init(&cfg);
    operr err = {{0}};
    krest *rest = NULL;
    int rc = 1;
    if (kcfg_load_file(&cfg, kc, NULL, &err) != 0 || ophttp_client_new(&r->http, &r->loop, NULL) ||
        krest_new(&rest, r->http, &cfg, &err) != 0) {
        fprintf(stderr, "bench_ingest: %s\n", err.msg);
        goto out;
    }
    long rss_before = bench_rss_kib();
    kinf_opts o = {.res = &KRES_DEPLOYMENTS};
    kcache_handlers h = {.on_update = on_update, .ud = r};
    if (kinf_new(&r->inf, &r->loop, rest, &o, &h, &err) != 0) {
        fprintf(stderr, "bench_ingest: %s\n", err.msg);
        ophttp_client_close(r->http, NULL, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        goto out;
    }
    uv_check_init(&r->loop, &r->check);
    r->check.data = r;
    uv_check_start(&r->check, on_check);
    r->t0 = bench_now_s();
    r->c0 = bench_cpu_s();
    kinf_start(r->inf);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    *rss_growth = r->rss_synced - rss_before;
    rc = r->phase == 2 ? 0 : 1;
out:
    if (rest)
        krest_free(rest);
    kcfg_release(&cfg);
    if (uv_loop_close(&r->loop) != 0) {
        fprintf(stderr, "bench_ingest: loop not closed clean\n");
        rc = 1;
    }
    return rc;
}

#define REPS 3

/* Best of REPS for every figure: the machine is shared, noise only slows. */
static int bench_one(const char *tool, unsigned n)
{
    char kc[] = "/tmp/optipod-bench-kc-XXXXXX";
    int fd = mkstemp(kc);
    if (fd < 0)
        return 1;
    close(fd);
    server srv = {0};
    if (server_start(&srv, tool, kc, n) != 0) {
        fprintf(stderr, "bench_ingest: cannot start %s\n", tool);
        unlink(kc);
        return 1;
    }
    size_t bytes = 0;
    double base = 1e9;
    double t_list = 1e9, c_list = 1e9, t_watch = 1e9, c_watch = 1e9;
    long rss_growth = 0;
    size_t cache_bytes = 0;
    int rc = 0;
    for (int rep = 0; rep < REPS && rc == 0; rep++) {
        double b = baseline_parse(n, &bytes);
        base = b < base ? b : base;
        static run r;
        long growth = 0;
        rc = ingest_once(&srv, kc, n, &r, &growth);
        if (rc)
            break;
        if (rep == 0) {
            rss_growth = growth;
            cache_bytes = r.cache_bytes;
        }
        t_list = r.t_list < t_list ? r.t_list : t_list;
        c_list = r.c_list < c_list ? r.c_list : c_list;
        t_watch = r.t_watch < t_watch ? r.t_watch : t_watch;
        c_watch = r.c_watch < c_watch ? r.c_watch : c_watch;
    }
    if (rc == 0) {
        double base_rate = n / base;
        printf("N=%u objects, %.1f KB JSON each on average (best of %d runs)\n", n,
               (double)bytes / n / 1024.0, REPS);
        printf("  baseline cJSON parse+free     %10.0f objects/s\n", base_rate);
        printf("  list into cache   wall        %10.0f objects/s   ratio %.2f\n", n / t_list,
               (n / t_list) / base_rate);
        printf("                    client CPU  %10.0f objects/s   ratio %.2f\n", n / c_list,
               (n / c_list) / base_rate);
        printf("  watch into cache  wall        %10.0f objects/s   ratio %.2f\n", n / t_watch,
               (n / t_watch) / base_rate);
        printf("                    client CPU  %10.0f objects/s   ratio %.2f\n", n / c_watch,
               (n / c_watch) / base_rate);
        printf("  RSS per cached object         %10.0f bytes (RSS growth %ld KiB)\n",
               (double)rss_growth * 1024.0 / n, rss_growth);
        printf("  cache bytes per object        %10.0f bytes (projections only)\n",
               (double)cache_bytes / n);
    }
    server_stop(&srv);
    unlink(kc);
    return rc;
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", argv[0]);
    char tool[PATH_MAX + 64];
    snprintf(tool, sizeof tool, "%s/../tools/fakeapi_server", dirname(self));
    signal(SIGPIPE, SIG_IGN);
    int rc = 0;
    /* OPTIPOD_BENCH_N=N runs one size (for profiling). */
    const char *only = getenv("OPTIPOD_BENCH_N");
    if (only && atoi(only) > 0) {
        rc |= bench_one(tool, (unsigned)atoi(only));
    } else {
        rc |= bench_one(tool, 1000);
        rc |= bench_one(tool, 10000);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS of this process: %ld KiB\n", ru.ru_maxrss);
    return rc;
}
