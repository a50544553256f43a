/*
 * fakeapi_server: the project's fake API server as a process of its own, for
 * the demo, the tests of the real binaries and the benchmarks (where the
 * server must not share the measured process's CPU).
 *
 *   fakeapi_server --kubeconfig-out /tmp/kc [--token T] [--deployments N]
 *                  [--namespaces K] [--pods-per-deployment P] [--seed FILE]...
 *                  [--churn 200ms] [--bookmarks 1s]
 *
 * Generated Deployments (test/support/gen.h) go round-robin into namespaces
 * team-0 .. team-K-1, which exist as Namespace objects (labelled team=<name>).
 * With --pods-per-deployment each Deployment also has its current ReplicaSet
 * and P running pods (every tenth Deployment's first pod carries an OOMKilled
 * last state), as a cluster of that size holds.
 *
 * Prints "ready <url>" on stdout once serving; stops on SIGTERM/SIGINT.
 * SIGUSR1 modifies every generated Deployment once (N MODIFIED events: the
 * watch-path benchmark) and prints "touched N".
 * --churn modifies one generated Deployment per tick (its replicas) and every
 * fifth tick deletes one and creates it again, so watches see MODIFIED,
 * DELETED and ADDED events.
 */
#include <cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "support/fakeapi.h"
#include "support/gen.h"
#include "util/flags.h"

#define MAX_SEEDS 32

static struct {
    const char *kubeconfig_out;
    const char *token;
    long deployments;
    long namespaces;
    long pods_per_deployment;
    uint64_t churn_ms;
    uint64_t bookmark_ms;
    const char *seeds[MAX_SEEDS];
} cfg = {.namespaces = 1};

static fakeapi *fa;
static uv_timer_t churn_timer;
static uv_signal_t sig_term, sig_int, sig_usr1;
static unsigned churn_tick;

static int put_generated(unsigned i)
{
    char ns[32];
    snprintf(ns, sizeof ns, "team-%ld", cfg.namespaces ? (long)(i % (unsigned)cfg.namespaces) : 0);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    int rc = gen_deployment(&b, ns, i);
    if (rc == 0)
        rc = fakeapi_put_json(fa, b.data);
    opbuf_release(&b);
    return rc;
}

/* Deployment i's ReplicaSet and pods. */
static int put_generated_pods(unsigned i)
{
    char ns[32];
    snprintf(ns, sizeof ns, "team-%ld", (long)(i % (unsigned)cfg.namespaces));
    opbuf b;
    opbuf_init(&b, 1 << 20);
    int rc = gen_replicaset(&b, ns, i);
    if (rc == 0)
        rc = fakeapi_put_json(fa, b.data);
    for (long k = 0; rc == 0 && k < cfg.pods_per_deployment; k++) {
        opbuf_reset(&b);
        rc = gen_pod(&b, ns, i, (unsigned)k, k == 0 && i % 10 == 0);
        if (rc == 0)
            rc = fakeapi_put_json(fa, b.data);
    }
    opbuf_release(&b);
    return rc;
}

static int put_namespaces(void)
{
    opbuf b;
    opbuf_init(&b, 4096);
    int rc = 0;
    for (long k = 0; rc == 0 && k < cfg.namespaces; k++) {
        char ns[32];
        snprintf(ns, sizeof ns, "team-%ld", k);
        opbuf_reset(&b);
        rc = gen_namespace(&b, ns);
        if (rc == 0)
            rc = fakeapi_put_json(fa, b.data);
    }
    opbuf_release(&b);
    return rc;
}

static int seed_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fakeapi_server: --seed '%s': cannot open\n", path);
        return -1;
    }
    opbuf b;
    opbuf_init(&b, 64 << 20);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && rc == 0)
        rc = opbuf_append(&b, chunk, n);
    fclose(f);
    cJSON *doc = rc == 0 ? cJSON_Parse(opbuf_str(&b)) : NULL;
    opbuf_release(&b);
    if (!doc) {
        fprintf(stderr, "fakeapi_server: --seed '%s': not JSON\n", path);
        return -1;
    }
    /* A single object, a JSON array of objects, or a List with items. */
    cJSON *items = cJSON_IsArray(doc) ? doc : cJSON_GetObjectItem(doc, "items");
    cJSON *it;
    if (items && cJSON_IsArray(items)) {
        cJSON_ArrayForEach(it, items)
        {
            if (fakeapi_put(fa, it) != 0)
                rc = -1;
        }
    } else if (fakeapi_put(fa, doc) != 0) {
        rc = -1;
    }
    cJSON_Delete(doc);
    if (rc)
        fprintf(stderr, "fakeapi_server: --seed '%s': an object lacks apiVersion, kind or name\n",
                path);
    return rc;
}

/* Change the replicas of generated Deployment i (re-create it if gone). */
static void touch(unsigned i)
{
    char path[160];
    snprintf(path, sizeof path, "/apis/apps/v1/namespaces/team-%ld/deployments/svc-%u",
             (long)(i % (unsigned)cfg.namespaces), i);
    const cJSON *live = fakeapi_get(fa, path);
    if (!live) {
        put_generated(i);
        return;
    }
    cJSON *copy = cJSON_Duplicate(live, 1);
    cJSON *spec = cJSON_GetObjectItem(copy, "spec");
    cJSON *rep = spec ? cJSON_GetObjectItem(spec, "replicas") : NULL;
    if (rep)
        cJSON_SetNumberValue(rep, ((int)rep->valuedouble % 5) + 1);
    fakeapi_put(fa, copy);
    cJSON_Delete(copy);
}

static void on_churn(uv_timer_t *t)
{
    if (cfg.deployments <= 0)
        return;
    unsigned i = churn_tick++ % (unsigned)cfg.deployments;
    if (churn_tick % 5 == 0) {
        char path[160];
        snprintf(path, sizeof path, "/apis/apps/v1/namespaces/team-%ld/deployments/svc-%u",
                 (long)(i % (unsigned)cfg.namespaces), i);
        fakeapi_delete(fa, path);
        put_generated(i);
        return;
    }
    touch(i);
}

static void on_touch_all(uv_signal_t *s, int signum)
{
    for (long i = 0; i < cfg.deployments; i++)
        touch((unsigned)i);
    printf("touched %ld\n", cfg.deployments);
    fflush(stdout);
}

static void on_closed(void *ud)
{
    (void)ud;
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    uv_signal_stop(&sig_term);
    uv_signal_stop(&sig_int);
    uv_signal_stop(&sig_usr1);
    uv_close((uv_handle_t *)&sig_usr1, close_cb);
    uv_close((uv_handle_t *)&sig_term, close_cb);
    uv_close((uv_handle_t *)&sig_int, close_cb);
    uv_timer_stop(&churn_timer);
    uv_close((uv_handle_t *)&churn_timer, close_cb);
    fakeapi_stop(fa, on_closed, NULL);
    (void)s;
}

int main(int argc, char **argv)
{
    opflag_list seeds = {cfg.seeds, 0, MAX_SEEDS};
    int help = 0;
    opflag flags[] = {
        {"kubeconfig-out", 0, OPFLAG_STRING, &cfg.kubeconfig_out, "write a kubeconfig here"},
        {"token", 0, OPFLAG_STRING, &cfg.token, "require this bearer token"},
        {"deployments", 0, OPFLAG_INT, &cfg.deployments, "generate N realistic Deployments"},
        {"namespaces", 0, OPFLAG_INT, &cfg.namespaces, "spread them over K namespaces"},
        {"pods-per-deployment", 0, OPFLAG_INT, &cfg.pods_per_deployment,
         "give each a ReplicaSet and P running pods"},
        {"seed", 0, OPFLAG_LIST, &seeds, "load objects from a JSON file (repeatable)"},
        {"churn", 0, OPFLAG_DURATION, &cfg.churn_ms, "modify/delete/re-create one object per tick"},
        {"bookmarks", 0, OPFLAG_DURATION, &cfg.bookmark_ms, "BOOKMARK interval"},
        {"help", 'h', OPFLAG_BOOL, &help, "this help"},
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]);
    operr err;
    int rest = 0;
    if (opflag_parse(flags, nflags, argc, argv, &rest, &err) != 0) {
        fprintf(stderr, "fakeapi_server: %s\n", err.msg);
        return 2;
    }
    if (rest < argc) {
        fprintf(stderr, "fakeapi_server: unexpected argument '%s'\n", argv[rest]);
        return 2;
    }
    if (help) {
        fprintf(stdout, "Usage: fakeapi_server [flags]\n");
        opflag_usage(stdout, flags, nflags);
        return 0;
    }
    if (cfg.namespaces < 1)
        cfg.namespaces = 1;
    if (cfg.pods_per_deployment < 0 || cfg.pods_per_deployment > 100) {
        fprintf(stderr, "fakeapi_server: --pods-per-deployment: %ld is out of range (0-100)\n",
                cfg.pods_per_deployment);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t loop;
    uv_loop_init(&loop);
    fakeapi_opts opts = {
        .token = cfg.token, .bookmark_ms = (unsigned)cfg.bookmark_ms, .history_max = 100000};
    if (fakeapi_start(&fa, &loop, &opts) != 0) {
        fprintf(stderr, "fakeapi_server: cannot start\n");
        return 1;
    }
    int rc = cfg.deployments > 0 ? put_namespaces() : 0;
    for (long d = 0; d < cfg.deployments && rc == 0; d++)
        rc = put_generated((unsigned)d);
    for (long d = 0; cfg.pods_per_deployment && d < cfg.deployments && rc == 0; d++)
        rc = put_generated_pods((unsigned)d);
    for (int s = 0; s < seeds.n && rc == 0; s++)
        rc = seed_file(cfg.seeds[s]);
    if (rc == 0 && cfg.kubeconfig_out &&
        fakeapi_write_kubeconfig(fa, cfg.kubeconfig_out, cfg.token) != 0) {
        fprintf(stderr, "fakeapi_server: cannot write '%s'\n", cfg.kubeconfig_out);
        rc = -1;
    }
    uv_timer_init(&loop, &churn_timer);
    uv_signal_init(&loop, &sig_term);
    uv_signal_init(&loop, &sig_int);
    uv_signal_init(&loop, &sig_usr1);
    if (rc != 0) {
        on_signal(&sig_term, SIGTERM);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_usr1, on_touch_all, SIGUSR1);
    if (cfg.churn_ms)
        uv_timer_start(&churn_timer, on_churn, cfg.churn_ms, cfg.churn_ms);
    printf("ready %s\n", fakeapi_url(fa));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}
