/*
 * optipod: the controller binary. Flags and wiring only: the reactor pieces
 * live in lib/ (kube/ for the client, server/ for the probes).
 *
 * Today it runs the Kubernetes client reactor: informers for the workload
 * kinds and their pods, kept in projection caches by list+watch, the health,
 * readiness and metrics endpoints, and a graceful shutdown on SIGTERM/SIGINT
 * (watches stopped, in-flight requests drained up to --shutdown-timeout, every
 * handle closed, exit 0).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http/http.h"
#include "kube/config.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "plan.h"
#include "selfcheck.h"
#include "server/probes.h"
#include "util/flags.h"
#include "util/log.h"

#define NINF 5

static const kres *const app_resources[NINF] = {&KRES_DEPLOYMENTS, &KRES_STATEFULSETS,
                                                &KRES_DAEMONSETS, &KRES_REPLICASETS, &KRES_PODS};

typedef struct app_flags {
    const char *kubeconfig;
    const char *context;
    const char *ns;
    const char *probe_addr;
    const char *metrics_addr;
    long verbosity;
    uint64_t shutdown_ms;
    uint64_t stats_ms;
    int version;
    int help;
    int self_check;
} app_flags;

typedef struct app {
    app_flags f;
    uv_loop_t loop;
    kcfg cfg;
    ophttp_client *http;
    krest *rest;
    kinf *inf[NINF];
    probes *probe;
    probes *metrics;
    uv_signal_t sig_term, sig_int;
    uv_timer_t drain_timer, stats_timer;
    int stopping;
    int http_closed;
    uint64_t stats_last_ms;
    uint64_t drain_deadline_ms;
} app;

static const char *app_kind(int i)
{
    return app_resources[i]->resource;
}

/* ---- informer handlers: log at -v 3, count always (the cache does) ---------------------- */

static void app_on_add(const kproj_obj *o, void *ud)
{
    OPLOG_V(3, "%s %s/%s added (rv %s)", (const char *)ud, o->ns ? o->ns : "", o->name, o->rv);
}

static void app_on_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    (void)old;
    OPLOG_V(3, "%s %s/%s updated (rv %s)", (const char *)ud, cur->ns ? cur->ns : "", cur->name,
            cur->rv);
}

static void app_on_delete(const kproj_obj *o, void *ud)
{
    OPLOG_V(3, "%s %s/%s deleted", (const char *)ud, o->ns ? o->ns : "", o->name);
}

/* ---- probes ------------------------------------------------------------------------------ */

static int app_ready(opbuf *why, void *ud)
{
    app *a = ud;
    int ready = !a->stopping;
    if (a->stopping)
        opbuf_puts(why, "shutting down");
    for (int i = 0; i < NINF; i++) {
        if (!a->inf[i] || !kinf_has_synced(a->inf[i])) {
            opbuf_printf(why, "%s%s not synced", why->len ? "; " : "", app_kind(i));
            ready = 0;
        }
    }
    return ready;
}

static void app_metrics(opbuf *out, void *ud)
{
    app *a = ud;
    static const char *const ev_names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
    opbuf_puts(out, "# HELP optipod_informer_objects Objects in the informer cache.\n"
                    "# TYPE optipod_informer_objects gauge\n");
    for (int i = 0; i < NINF; i++)
        if (a->inf[i])
            opbuf_printf(out, "optipod_informer_objects{resource=\"%s\"} %zu\n", app_kind(i),
                         kcache_count(kinf_cache(a->inf[i])));
    opbuf_puts(out, "# HELP optipod_informer_cache_bytes Bytes held by cached projections.\n"
                    "# TYPE optipod_informer_cache_bytes gauge\n");
    for (int i = 0; i < NINF; i++)
        if (a->inf[i])
            opbuf_printf(out, "optipod_informer_cache_bytes{resource=\"%s\"} %zu\n", app_kind(i),
                         kcache_mem_bytes(kinf_cache(a->inf[i])));
    opbuf_puts(out, "# HELP optipod_watch_events_total Watch events received.\n"
                    "# TYPE optipod_watch_events_total counter\n");
    for (int i = 0; i < NINF; i++) {
        if (!a->inf[i])
            continue;
        kinf_stats st;
        kinf_stats_get(a->inf[i], &st);
        for (int t = 0; t < KWATCH_EV_NTYPES; t++)
            opbuf_printf(out, "optipod_watch_events_total{resource=\"%s\",type=\"%s\"} %llu\n",
                         app_kind(i), ev_names[t], (unsigned long long)st.watch.events[t]);
    }
    opbuf_puts(out, "# HELP optipod_watch_restarts_total Lists, relists, reconnects, "
                    "malformed events.\n# TYPE optipod_watch_restarts_total counter\n");
    for (int i = 0; i < NINF; i++) {
        if (!a->inf[i])
            continue;
        kinf_stats st;
        kinf_stats_get(a->inf[i], &st);
        opbuf_printf(out,
                     "optipod_watch_restarts_total{resource=\"%s\",reason=\"list\"} %llu\n"
                     "optipod_watch_restarts_total{resource=\"%s\",reason=\"relist\"} %llu\n"
                     "optipod_watch_restarts_total{resource=\"%s\",reason=\"reconnect\"} %llu\n"
                     "optipod_watch_restarts_total{resource=\"%s\",reason=\"malformed\"} %llu\n",
                     app_kind(i), (unsigned long long)st.watch.lists, app_kind(i),
                     (unsigned long long)st.watch.relists, app_kind(i),
                     (unsigned long long)st.watch.reconnects, app_kind(i),
                     (unsigned long long)st.watch.malformed);
    }
}

/* ---- periodic status line ---------------------------------------------------------------- */

static void app_on_stats(uv_timer_t *t)
{
    app *a = t->data;
    uint64_t now = uv_now(&a->loop);
    if (oplog_verbosity() >= 1 && now - a->stats_last_ms >= a->f.stats_ms) {
        a->stats_last_ms = now;
        opbuf line;
        opbuf_init(&line, 4096);
        for (int i = 0; i < NINF; i++) {
            kinf_stats st;
            kinf_stats_get(a->inf[i], &st);
            opbuf_printf(
                &line, "%s%s=%zu (events %llu, relists %llu, reconnects %llu)", i ? ", " : "",
                app_kind(i), kcache_count(kinf_cache(a->inf[i])),
                (unsigned long long)(st.watch.events[0] + st.watch.events[1] + st.watch.events[2]),
                (unsigned long long)st.watch.relists, (unsigned long long)st.watch.reconnects);
        }
        OPLOG_I("cache: %s", opbuf_str(&line));
        opbuf_release(&line);
    }
}

/* ---- shutdown ---------------------------------------------------------------------------- */

static void app_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void app_http_closed(void *ud)
{
    app *a = ud;
    a->http_closed = 1;
    OPLOG_V(1, "HTTP client closed");
}

/* Phase 2: the drain deadline passed or nothing is in flight: close everything. */
static void app_finish(app *a)
{
    uv_timer_stop(&a->drain_timer);
    if (!uv_is_closing((uv_handle_t *)&a->drain_timer))
        uv_close((uv_handle_t *)&a->drain_timer, app_handle_closed);
    if (a->http) {
        size_t left = ophttp_inflight(a->http);
        if (left)
            OPLOG_W("shutdown: cancelling %zu request(s) still in flight", left);
        ophttp_client_close(a->http, app_http_closed, a);
        a->http = NULL;
    }
}

static void app_on_drain_tick(uv_timer_t *t)
{
    app *a = t->data;
    if (!a->http || ophttp_inflight(a->http) == 0 || uv_now(&a->loop) >= a->drain_deadline_ms)
        app_finish(a);
}

static void app_stop(app *a, const char *why)
{
    if (a->stopping)
        return;
    a->stopping = 1;
    OPLOG_I("%s: shutting down (drain up to %llu ms)", why, (unsigned long long)a->f.shutdown_ms);
    uv_signal_stop(&a->sig_term);
    uv_signal_stop(&a->sig_int);
    uv_close((uv_handle_t *)&a->sig_term, app_handle_closed);
    uv_close((uv_handle_t *)&a->sig_int, app_handle_closed);
    uv_timer_stop(&a->stats_timer);
    uv_close((uv_handle_t *)&a->stats_timer, app_handle_closed);
    /* Watches first: they never finish on their own and hold no work. */
    for (int i = 0; i < NINF; i++) {
        if (a->inf[i]) {
            kinf_close(a->inf[i], NULL, NULL);
            a->inf[i] = NULL;
        }
    }
    if (a->probe) {
        probes_stop(a->probe, NULL, NULL);
        a->probe = NULL;
    }
    if (a->metrics) {
        probes_stop(a->metrics, NULL, NULL);
        a->metrics = NULL;
    }
    /* Then let in-flight writes finish, polling every 50 ms up to the deadline. */
    a->drain_deadline_ms = uv_now(&a->loop) + a->f.shutdown_ms;
    a->drain_timer.data = a;
    uv_timer_start(&a->drain_timer, app_on_drain_tick, 0, 50);
}

static void app_on_signal(uv_signal_t *s, int signum)
{
    app *a = s->data;
    app_stop(a, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- start ------------------------------------------------------------------------------- */

static int app_start(app *a)
{
    operr err = {{0}};
    if (kcfg_load(&a->cfg, a->f.kubeconfig, a->f.context, &err) != 0) {
        OPLOG_E("%s", err.msg);
        return 1;
    }
    OPLOG_I("optipod %s: API server %s (from %s%s%s)", OPTIPOD_VERSION, a->cfg.server,
            a->cfg.source, a->cfg.context && *a->cfg.context ? ", context " : "",
            a->cfg.context ? a->cfg.context : "");
    if (ophttp_client_new(&a->http, &a->loop, NULL) != 0) {
        OPLOG_E("cannot create the HTTP client");
        return 1;
    }
    if (krest_new(&a->rest, a->http, &a->cfg, &err) != 0) {
        OPLOG_E("%s", err.msg);
        return 1;
    }
    for (int i = 0; i < NINF; i++) {
        kinf_opts o = {.res = app_resources[i], .ns = a->f.ns};
        kcache_handlers h = {app_on_add, app_on_update, app_on_delete, (void *)app_kind(i)};
        if (kinf_new(&a->inf[i], &a->loop, a->rest, &o, &h, &err) != 0) {
            OPLOG_E("informer %s: %s", app_kind(i), err.msg);
            return 1;
        }
        kinf_start(a->inf[i]);
    }
    probes_opts po = {.bind = a->f.probe_addr, .ready = app_ready, .ud = a};
    if (strcmp(a->f.probe_addr, "0") != 0 && probes_start(&a->probe, &a->loop, &po, &err) != 0) {
        OPLOG_E("--health-probe-bind-address: %s", err.msg);
        return 1;
    }
    probes_opts mo = {.bind = a->f.metrics_addr, .metrics = app_metrics, .ud = a};
    if (strcmp(a->f.metrics_addr, "0") != 0 &&
        probes_start(&a->metrics, &a->loop, &mo, &err) != 0) {
        OPLOG_E("--metrics-bind-address: %s", err.msg);
        return 1;
    }
    if (a->probe)
        OPLOG_I("health probes on %s (port %d)", a->f.probe_addr, probes_port(a->probe));
    if (a->metrics)
        OPLOG_I("metrics on %s (port %d)", a->f.metrics_addr, probes_port(a->metrics));
    return 0;
}

static void app_usage(FILE *out, const opflag *flags, int n)
{
    fprintf(out, "optipod right-sizes Kubernetes workloads' CPU and memory without fighting "
                 "GitOps.\n\nUsage:\n  optipod [flags]\n\n");
    opflag_usage(out, flags, n);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "plan") == 0)
        return plan_main(argc - 1, argv + 1);
    static app a;
    a.f.probe_addr = ":8081";
    a.f.metrics_addr = ":8080";
    a.f.shutdown_ms = 10000;
    a.f.stats_ms = 60000;
    const opflag flags[] = {
        {"kubeconfig", 0, OPFLAG_STRING, &a.f.kubeconfig,
         "path to a kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)"},
        {"context", 0, OPFLAG_STRING, &a.f.context, "kubeconfig context to use"},
        {"namespace", 'n', OPFLAG_STRING, &a.f.ns, "watch only this namespace (default: all)"},
        {"health-probe-bind-address", 0, OPFLAG_STRING, &a.f.probe_addr,
         "address of /healthz and /readyz (default :8081; 0 disables)"},
        {"metrics-bind-address", 0, OPFLAG_STRING, &a.f.metrics_addr,
         "address of /metrics (default :8080; 0 disables)"},
        {"shutdown-timeout", 0, OPFLAG_DURATION, &a.f.shutdown_ms,
         "how long in-flight requests may finish on SIGTERM (default 10s)"},
        {"stats-interval", 0, OPFLAG_DURATION, &a.f.stats_ms,
         "cache summary log interval at -v 1 and above (default 1m)"},
        {"v", 'v', OPFLAG_INT, &a.f.verbosity, "log verbosity (0-5)"},
        {"self-check", 0, OPFLAG_BOOL, &a.f.self_check,
         "check TLS, HTTP/2, the loop and the parsers on this machine, then exit"},
        {"version", 0, OPFLAG_BOOL, &a.f.version, "print the version and exit"},
        {"help", 'h', OPFLAG_BOOL, &a.f.help, "print this help and exit"},
    };
    const int nflags = (int)(sizeof flags / sizeof flags[0]);
    operr err = {{0}};
    int rest = 0;
    if (opflag_parse(flags, nflags, argc, argv, &rest, &err) != 0) {
        fprintf(stderr, "optipod: %s\nRun 'optipod --help' for usage.\n", err.msg);
        return 2;
    }
    if (rest < argc) {
        fprintf(stderr, "optipod: unexpected argument \"%s\"\nRun 'optipod --help' for usage.\n",
                argv[rest]);
        return 2;
    }
    if (a.f.help) {
        app_usage(stdout, flags, nflags);
        return 0;
    }
    if (a.f.version) {
        printf("optipod %s\n", OPTIPOD_VERSION);
        return 0;
    }
    if (a.f.verbosity < 0 || a.f.verbosity > 10) {
        fprintf(stderr, "optipod: flag --v: %ld is out of range (0-10)\n", a.f.verbosity);
        return 2;
    }
    char host[256];
    int port;
    if (strcmp(a.f.probe_addr, "0") != 0 &&
        probes_parse_bind(a.f.probe_addr, host, sizeof host, &port) != 0) {
        fprintf(stderr, "optipod: flag --health-probe-bind-address: \"%s\" is not host:port\n",
                a.f.probe_addr);
        return 2;
    }
    if (strcmp(a.f.metrics_addr, "0") != 0 &&
        probes_parse_bind(a.f.metrics_addr, host, sizeof host, &port) != 0) {
        fprintf(stderr, "optipod: flag --metrics-bind-address: \"%s\" is not host:port\n",
                a.f.metrics_addr);
        return 2;
    }
    oplog_set_verbosity((int)a.f.verbosity);
    if (a.f.self_check)
        return selfcheck_run();

    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&a.loop);
    kcfg_init(&a.cfg);
    uv_signal_init(&a.loop, &a.sig_term);
    uv_signal_init(&a.loop, &a.sig_int);
    a.sig_term.data = a.sig_int.data = &a;
    uv_signal_start(&a.sig_term, app_on_signal, SIGTERM);
    uv_signal_start(&a.sig_int, app_on_signal, SIGINT);
    uv_timer_init(&a.loop, &a.stats_timer);
    uv_timer_init(&a.loop, &a.drain_timer);
    a.stats_timer.data = &a;
    uint64_t tick = a.f.stats_ms < 1000 ? a.f.stats_ms : 1000;
    uv_timer_start(&a.stats_timer, app_on_stats, tick ? tick : 1000, tick ? tick : 1000);

    int code = app_start(&a);
    if (code != 0)
        app_stop(&a, "start-up failed");
    uv_run(&a.loop, UV_RUN_DEFAULT);
    if (a.rest)
        krest_free(a.rest);
    kcfg_release(&a.cfg);
    int rc = uv_loop_close(&a.loop);
    if (rc != 0) {
        OPLOG_E("shutdown: event loop still has open handles (%s)", uv_strerror(rc));
        return 1;
    }
    if (code == 0)
        OPLOG_I("shutdown complete");
    return code;
}
