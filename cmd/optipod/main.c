/*
 * optipod: the controller binary. Flags and wiring only: the reactor pieces
 * live in lib/ (kube/ for the client, controller/ for the reconcile loop,
 * metrics/ for usage, webhook/ for the pod webhook, server/ for the probes).
 *
 * It runs the controller (informers for policies, workloads, pods,
 * namespaces and HPAs; the reconcile loop; Events and policy status), the
 * optional leader election (only the leader reconciles; every replica may
 * serve the webhook), the optional mutating webhook (its certificate kept in a
 * Secret by the leader and rotated before expiry, or mounted files re-read on
 * change: webhook/lifecycle.h), the health, readiness
 * and metrics endpoints, and a graceful shutdown on SIGTERM/SIGINT (watches
 * stopped, in-flight requests drained up to --shutdown-timeout, every handle
 * closed, exit 0).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "controller/ckpt.h"
#include "controller/controller.h"
#include "http/http.h"
#include "kube/config.h"
#include "kube/events.h"
#include "kube/informer.h"
#include "kube/lease.h"
#include "kube/rest.h"
#include "metrics/metricsserver.h"
#include "completion.h"
#include "metrics/prometheus.h"
#include "ops.h"
#include "metrics/promflags.h"
#include "backtest.h"
#include "plan.h"
#include "selfcheck.h"
#include "server/probes.h"
#include "util/flags.h"
#include "util/log.h"
#include "util/loopmon.h"
#include "webhook/certs.h"
#include "webhook/lifecycle.h"
#include "webhook/server.h"

#define NINF CTL_NINF
/* The chart's default namespace. A local run (no in-cluster namespace) elects on its Lease
 * there, so it waits for an installed controller instead of writing next to it. */
#define APP_DEFAULT_NS "optipod-system"

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
    mpromflags prom;
    uint64_t ckpt_ms;
    const char *ckpt_name;
    const char *gitops_managers;
    int dry_run;
    uint64_t min_write_ms;
    int leader_elect;
    const char *lease_ns;
    const char *lease_name;
    klease_timing lease_timing; /* zeros: client-go's defaults */
    long webhook_port;
    const char *webhook_cert_dir;
    const char *webhook_service;
    const char *webhook_ns;
    const char *webhook_secret;
    const char *webhook_config;
    const char *webhook_sans;
    int webhook_only;
    uint64_t webhook_read_ms;
} app_flags;

typedef struct app {
    app_flags f;
    uv_loop_t loop;
    kcfg cfg;
    ophttp_client *http;
    krest *rest;
    /* The controller's informers (borrowed), or with --webhook-only the four the webhook
     * resolves owners from (owned; the others NULL). */
    kinf *inf[NINF];
    ctl *ctl;
    ckpt *ckpt; /* the metrics-server histograms' checkpoints, or NULL */
    kevents *events;
    klease *lease;
    whsrv *webhook;
    whlife *whlife;
    char webhook_ns[254];
    char webhook_secret[254];
    char lease_ns[254];
    char lease_label[600]; /* "ns/name" of the Lease, "none" without election */
    obs_reg *obs;          /* the registry behind /metrics (ops.h) */
    int fatal;             /* a failure after start-up (the webhook could not listen): exit 1 */
    probes *probe;
    probes *metrics;
    uv_signal_t sig_term, sig_int;
    uv_timer_t drain_timer, stats_timer;
    oploopmon loopmon; /* stalls of the loop, for /metrics and the controller's slices */
    int stopping;
    int http_closed;
    uint64_t stats_last_ms;
    uint64_t drain_deadline_ms;
} app;

static const char *app_kind(int i)
{
    return ctl_informer_name((enum ctl_inf)i);
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

/* The reasons are appended piece by piece; probes checks the buffer once (util/buf.h: a failed
 * append leaves it failed, and /readyz then answers without them). */
static int app_ready(opbuf *why, void *ud)
{
    app *a = ud;
    int ready = !a->stopping;
    if (a->stopping)
        opbuf_puts(why, "shutting down");
    for (int i = 0; i < NINF; i++) {
        if (a->f.webhook_only && !a->inf[i])
            continue; /* not watched in this mode */
        if (!a->inf[i] || !kinf_has_synced(a->inf[i])) {
            opbuf_printf(why, "%s%s not synced", why->len ? "; " : "", app_kind(i));
            ready = 0;
        }
    }
    return ready;
}

/* The page is appended piece by piece and checked once, at the end: a failed append leaves
 * `out` failed (util/buf.h), so the result is the whole page or an error. */
static int app_metrics(opbuf *out, void *ud)
{
    app *a = ud;
    if (a->ctl) {
        ctl_stats cs;
        ctl_stats_get(a->ctl, &cs);
        opbuf_printf(
            out,
            "# HELP optipod_reconciles_total Reconciles by outcome.\n"
            "# TYPE optipod_reconciles_total counter\n"
            "optipod_reconciles_total{outcome=\"applied\"} %llu\n"
            "optipod_reconciles_total{outcome=\"unchanged\"} %llu\n"
            "optipod_reconciles_total{outcome=\"skipped\"} %llu\n"
            "optipod_reconciles_total{outcome=\"conflict\"} %llu\n"
            "optipod_reconciles_total{outcome=\"error\"} %llu\n"
            "# HELP optipod_api_writes_total Write requests sent (events excluded).\n"
            "# TYPE optipod_api_writes_total counter\n"
            "optipod_api_writes_total %llu\n"
            "# HELP optipod_status_writes_total Of those, writes of a policy's status.\n"
            "# TYPE optipod_status_writes_total counter\n"
            "optipod_status_writes_total %llu\n"
            "# HELP optipod_record_writes_total Of those, writes of a recommendation record.\n"
            "# TYPE optipod_record_writes_total counter\n"
            "optipod_record_writes_total %llu\n"
            "# HELP optipod_gitops_loops_total Workloads stopped by GitOpsConflictLoop.\n"
            "# TYPE optipod_gitops_loops_total counter\n"
            "optipod_gitops_loops_total %llu\n"
            "# HELP optipod_duplicate_controller_total Workloads whose values changed under field "
            "manager optipod by a write this process did not make (DuplicateController).\n"
            "# TYPE optipod_duplicate_controller_total counter\n"
            "optipod_duplicate_controller_total %llu\n"
            "# HELP optipod_reconciles_pending Reconciles queued, running or delayed.\n"
            "# TYPE optipod_reconciles_pending gauge\n"
            "optipod_reconciles_pending %zu\n",
            (unsigned long long)cs.applied, (unsigned long long)cs.unchanged,
            (unsigned long long)cs.skipped, (unsigned long long)cs.conflicts,
            (unsigned long long)cs.errors, (unsigned long long)cs.writes,
            (unsigned long long)cs.status_writes, (unsigned long long)cs.record_writes,
            (unsigned long long)cs.loops_stopped, (unsigned long long)cs.duplicates,
            ctl_pending(a->ctl));
    }
    if (a->webhook && whsrv_metrics(a->webhook, out))
        return opbuf_error(out);
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
    obs_reg_write(a->obs, out); /* the registry's families (ops.h) */
    return opbuf_error(out);
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
            if (!a->inf[i])
                continue;
            kinf_stats_get(a->inf[i], &st);
            opbuf_printf(
                &line, "%s%s=%zu (events %llu, relists %llu, reconnects %llu)", i ? ", " : "",
                app_kind(i), kcache_count(kinf_cache(a->inf[i])),
                (unsigned long long)(st.watch.events[0] + st.watch.events[1] + st.watch.events[2]),
                (unsigned long long)st.watch.relists, (unsigned long long)st.watch.reconnects);
        }
        /* checked once: a failed append leaves the line failed (util/buf.h) */
        if (opbuf_error(&line))
            OPLOG_I("cache: status line longer than %zu bytes", line.max);
        else
            OPLOG_I("cache: %s; loop: longest stall %.1f ms", opbuf_str(&line),
                    (double)a->loopmon.max_ns / 1e6);
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
    if (a->events) {
        kevents_free(a->events);
        a->events = NULL;
    }
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
    oploopmon_close(&a->loopmon, NULL, NULL);
    /* The controller first: its watches never finish on their own. */
    for (int i = 0; i < NINF; i++) {
        if (a->f.webhook_only && a->inf[i])
            kinf_close(a->inf[i], NULL, NULL);
        a->inf[i] = NULL;
    }
    if (a->whlife) {
        whlife_stop(a->whlife, NULL, NULL);
        a->whlife = NULL;
    }
    if (a->webhook) {
        whsrv_stop(a->webhook, NULL, NULL);
        a->webhook = NULL;
    }
    if (a->ckpt) {
        ckpt_close(a->ckpt); /* before the controller: it borrows its provider */
        a->ckpt = NULL;
    }
    if (a->ctl) {
        ctl_close(a->ctl, NULL, NULL);
        a->ctl = NULL;
    }
    if (a->lease) {
        klease_stop(a->lease, NULL, NULL); /* releases the lease within the drain */
        a->lease = NULL;
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

/* ---- leadership and the webhook ------------------------------------------------------------ */

static void app_on_leading(void *ud)
{
    app *a = ud;
    OPLOG_I("leader election: leading");
    ops_set_leader(a->obs, a->lease_label, 1);
    if (a->ctl)
        ctl_set_leader(a->ctl, 1);
    whlife_kick(a->whlife); /* the Secret may be waiting for a leader to write it */
}

static void app_on_not_leading(void *ud, int lost)
{
    app *a = ud;
    OPLOG_I("leader election: %s", lost ? "lost the lease; standing by" : "released");
    ops_set_leader(a->obs, a->lease_label, 0);
    ctl_metrics_forget(a->obs); /* the next leader exports what it manages */
    if (a->ctl)
        ctl_set_leader(a->ctl, 0);
}

/* The namespace this process runs in: POD_NAMESPACE (the downward API), else the service
 * account's namespace file (in-cluster), else "" (a local run). */
static void app_pod_ns(char *out, size_t cap)
{
    const char *env = getenv("POD_NAMESPACE");
    out[0] = '\0';
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    FILE *f = fopen("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "r");
    if (f) {
        if (fgets(out, (int)cap, f))
            out[strcspn(out, "\r\n")] = '\0';
        fclose(f);
    }
}

/* The webhook's namespace: the flag, else the pod's, else optipod-system. */
static void app_webhook_ns(app *a)
{
    char pod[254];
    app_pod_ns(pod, sizeof pod);
    const char *ns = a->f.webhook_ns && *a->f.webhook_ns ? a->f.webhook_ns : pod;
    snprintf(a->webhook_ns, sizeof a->webhook_ns, "%s", *ns ? ns : APP_DEFAULT_NS);
}

static int app_is_leader(void *ud)
{
    app *a = ud;
    return !a->lease || klease_is_leader(a->lease);
}

/* Every replica serves the webhook from its own caches; it starts listening with the first
 * certificate whlife delivers and takes each renewed one without a restart. */
static void app_on_webhook_cert(const char *cert, const char *key, void *ud)
{
    app *a = ud;
    operr err = {{0}};
    if (a->stopping)
        return;
    if (a->webhook) {
        if (whsrv_set_tls(a->webhook, cert, key) != 0)
            OPLOG_E("webhook: the new certificate was refused; serving the previous one");
        return;
    }
    const char *const exclude[] = {"kube-system", a->webhook_ns, NULL};
    whsrv_opts wo = {.port = (int)a->f.webhook_port,
                     .cert_pem = cert,
                     .key_pem = key,
                     .exclude_namespaces = exclude,
                     .read_timeout_ms = (unsigned)a->f.webhook_read_ms,
                     .metrics = a->obs};
    wo.caches.replicasets = kinf_cache(a->inf[CTL_INF_REPLICASETS]);
    wo.caches.deployments = kinf_cache(a->inf[CTL_INF_DEPLOYMENTS]);
    wo.caches.statefulsets = kinf_cache(a->inf[CTL_INF_STATEFULSETS]);
    wo.caches.daemonsets = kinf_cache(a->inf[CTL_INF_DAEMONSETS]);
    if (whsrv_start(&a->webhook, &a->loop, &wo, &err) != 0) {
        OPLOG_E("--webhook-port: %s", err.msg);
        a->fatal = 1;
        app_stop(a, "webhook failed");
        return;
    }
    if (a->f.webhook_cert_dir && *a->f.webhook_cert_dir)
        OPLOG_I("webhook on https port %d (certificate from %s, reloaded on change)",
                whsrv_port(a->webhook), a->f.webhook_cert_dir);
    else
        OPLOG_I("webhook on https port %d (certificate from secret %s/%s)", whsrv_port(a->webhook),
                a->webhook_ns, a->webhook_secret);
}

/* Certificates from --webhook-cert-dir (cert-manager; watched) or managed in a Secret. */
static int app_start_webhook(app *a)
{
    operr err = {{0}};
    app_webhook_ns(a);
    snprintf(a->webhook_secret, sizeof a->webhook_secret, "%s",
             a->f.webhook_secret && *a->f.webhook_secret ? a->f.webhook_secret : "");
    if (!a->webhook_secret[0])
        snprintf(a->webhook_secret, sizeof a->webhook_secret, "%s-tls", a->f.webhook_service);
    /* Extra names: loopback, and --webhook-extra-sans (an address the API server dials when
     * the webhook runs outside the cluster). */
    char sans_buf[1024];
    const char *extra[WHCERT_MAX_SANS] = {"127.0.0.1", "localhost"};
    size_t nextra = 2;
    snprintf(sans_buf, sizeof sans_buf, "%s", a->f.webhook_sans ? a->f.webhook_sans : "");
    for (char *save = NULL, *t = strtok_r(sans_buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        if (!*t)
            continue;
        if (nextra + 1 >= WHCERT_MAX_SANS - 4) {
            OPLOG_E("--webhook-extra-sans: too many names");
            return 1;
        }
        extra[nextra++] = t;
    }
    extra[nextra] = NULL;
    whlife_opts lo = {.cert_dir = a->f.webhook_cert_dir,
                      .service = a->f.webhook_service,
                      .ns = a->webhook_ns,
                      .secret = a->webhook_secret,
                      .config_name = a->f.webhook_config,
                      .extra_sans = extra,
                      .is_leader = app_is_leader,
                      .on_cert = app_on_webhook_cert,
                      .ud = a};
    if (whlife_start(&a->whlife, &a->loop, a->rest, &lo, &err) != 0) {
        OPLOG_E("%s%s",
                a->f.webhook_cert_dir && *a->f.webhook_cert_dir ? "--webhook-cert-dir: " : "",
                err.msg);
        return 1;
    }
    if (a->fatal) { /* the first (mounted) pair was delivered, but listening failed */
        whlife_stop(a->whlife, NULL, NULL);
        a->whlife = NULL;
        return 1;
    }
    if (!(a->f.webhook_cert_dir && *a->f.webhook_cert_dir))
        OPLOG_I("webhook certificate: secret %s/%s for service %s.%s.svc%s%s", a->webhook_ns,
                a->webhook_secret, a->f.webhook_service, a->webhook_ns,
                a->f.webhook_config && *a->f.webhook_config
                    ? ", caBundle of mutatingwebhookconfiguration "
                    : " (no caBundle patched)",
                a->f.webhook_config && *a->f.webhook_config ? a->f.webhook_config : "");
    return 0;
}

/* ---- start ------------------------------------------------------------------------------- */

/* Checkpoints are written (and read) by the leader only. */
static int app_ckpt_active(void *ud)
{
    app *a = ud;
    return a->ctl && ctl_leading(a->ctl);
}

/* The controller, its usage providers and its informers (the app borrows them). */
static int app_start_controller(app *a)
{
    operr err = {{0}};
    mprov *prov = NULL, *ms = NULL;
    mms_opts mo = {.metrics = a->obs};
    if (mms_new(&ms, &a->loop, a->rest, &mo, &err) != 0) {
        OPLOG_E("metrics-server provider: %s", err.msg);
        return -1;
    }
    mprom_opts po = {.max_retries = 2, .metrics = a->obs};
    if (mpromflags_opts(&a->f.prom, &po, &err) == 0) {
        if (mprom_new(&prov, &a->loop, a->http, &po, &err) != 0) {
            OPLOG_E("--prometheus-url: %s", err.msg);
            mprov_close(ms);
            return -1;
        }
    } else {
        prov = ms;
        ms = NULL;
    }
    OPLOG_I("usage from %s%s%s", mprov_name(prov),
            ms ? " (metrics-server for policies that ask for it)" : "",
            a->f.dry_run ? "; dry run: nothing is changed" : "");
    ctl_opts co = {.ns = a->f.ns,
                   .dry_run = a->f.dry_run,
                   .provider = prov,
                   .metrics_server = ms,
                   .events = a->events,
                   .gitops_managers = a->f.gitops_managers,
                   .metrics = a->obs,
                   .min_write_ms = a->f.min_write_ms};
    mprov *hist = ms ? ms : mms_is(prov) ? prov : NULL; /* borrowed by the checkpoints */
    if (ctl_new(&a->ctl, &a->loop, a->rest, &co, &err) != 0) {
        OPLOG_E("controller: %s", err.msg);
        return -1;
    }
    ckpt_opts ko = {.interval_ms = a->f.ckpt_ms,
                    .name = a->f.ckpt_name,
                    .dry_run = a->f.dry_run,
                    .active = app_ckpt_active,
                    .active_ud = a};
    if (hist && a->f.ckpt_ms && ckpt_new(&a->ckpt, &a->loop, a->rest, hist, &ko, &err) != 0)
        OPLOG_W("--checkpoint-interval: %s; history is kept in memory only", err.msg);
    for (int i = 0; i < NINF; i++) {
        kcache_handlers h = {app_on_add, app_on_update, app_on_delete, (void *)app_kind(i)};
        a->inf[i] = ctl_informer(a->ctl, (enum ctl_inf)i);
        kcache_add_handlers(kinf_cache(a->inf[i]), &h);
    }
    if (a->f.leader_elect)
        ctl_set_leader(a->ctl, 0); /* until the lease is ours */
    return 0;
}

/* --webhook-only: just the informers the webhook resolves a pod's owner from (no Pods,
 * no policies, no reconcile), owned by the app. */
static int app_start_webhook_caches(app *a)
{
    static const enum ctl_inf want[] = {CTL_INF_DEPLOYMENTS, CTL_INF_STATEFULSETS,
                                        CTL_INF_DAEMONSETS, CTL_INF_REPLICASETS};
    static const kres *const res[] = {&KRES_DEPLOYMENTS, &KRES_STATEFULSETS, &KRES_DAEMONSETS,
                                      &KRES_REPLICASETS};
    operr err = {{0}};
    if (a->f.prom.url && *a->f.prom.url)
        OPLOG_W("--prometheus-url is not used with --webhook-only");
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        enum ctl_inf i = want[k];
        kcache_handlers h = {app_on_add, app_on_update, app_on_delete, (void *)app_kind(i)};
        kinf_opts o = {.res = res[k], .ns = a->f.ns};
        if (kinf_new(&a->inf[i], &a->loop, a->rest, &o, &h, &err) != 0) {
            OPLOG_E("%s informer: %s", app_kind(i), err.msg);
            return -1;
        }
        kinf_start(a->inf[i]);
    }
    OPLOG_I("webhook only: no reconcile here; watching %s for owners",
            a->f.ns && *a->f.ns ? a->f.ns : "all namespaces");
    return 0;
}

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
    if (!(a->obs = ops_new(&err)) || krest_set_metrics(a->rest, a->obs, &err) != 0 ||
        ops_watch(a->obs, &a->loop, &a->ctl, &err) != 0 ||
        ops_loopmon(a->obs, &a->loopmon, &err) != 0) {
        OPLOG_E("%s", err.msg);
        return 1;
    }
    if (kevents_new(&a->events, a->rest, NULL, &err) != 0) {
        OPLOG_E("events: %s", err.msg);
        return 1;
    }
    /* metrics-server always (it samples only namespaces a policy asks for);
     * Prometheus, the default, when given. */
    if (a->f.webhook_only ? app_start_webhook_caches(a) != 0 : app_start_controller(a) != 0)
        return 1;
    if (a->f.leader_elect) {
        char pod[254];
        app_pod_ns(pod, sizeof pod);
        snprintf(a->lease_ns, sizeof a->lease_ns, "%s",
                 a->f.lease_ns && *a->f.lease_ns ? a->f.lease_ns
                 : *pod                          ? pod
                                                 : APP_DEFAULT_NS);
        snprintf(a->lease_label, sizeof a->lease_label, "%s/%s", a->lease_ns, a->f.lease_name);
        ops_set_leader(a->obs, a->lease_label, 0);
        klease_opts lo = {.namespace = a->lease_ns,
                          .name = a->f.lease_name,
                          .timing = a->f.lease_timing,
                          .on_started_leading = app_on_leading,
                          .on_stopped_leading = app_on_not_leading,
                          .ud = a};
        if (klease_new(&a->lease, &a->loop, a->rest, &lo, &err) != 0) {
            OPLOG_E("--leader-elect: %s", err.msg);
            return 1;
        }
        klease_start(a->lease);
        OPLOG_I("leader election: lease %s/%s as %s%s", a->lease_ns, a->f.lease_name,
                klease_identity(a->lease),
                a->f.webhook_only ? " (the leader writes the webhook certificate)"
                                  : " (only the holder writes)");
    } else {
        ops_set_leader(a->obs, NULL, 1);
        OPLOG_W("leader election off (--leader-elect=false): this process writes whatever "
                "other optipod instances do");
    }
    if (a->ctl)
        ctl_start(a->ctl);
    if (a->f.webhook_port > 0 && app_start_webhook(a) != 0)
        return 1;
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

/* A bind-address flag: "0" disables, anything else must be host:port. */
static int app_bind_flag_bad(const char *flag, const char *addr)
{
    char host[256];
    int port;
    if (strcmp(addr, "0") == 0 || probes_parse_bind(addr, host, sizeof host, &port) == 0)
        return 0;
    fprintf(stderr, "optipod: flag --%s: \"%s\" is not host:port\n", flag, addr);
    return 1;
}

static void app_usage(FILE *out, const opflag *flags, int n)
{
    fprintf(out, "optipod right-sizes Kubernetes workloads' CPU and memory without fighting "
                 "GitOps.\n\nUsage:\n  optipod [flags]                the controller\n"
                 "  optipod plan [flags]           right-size manifests offline (plan --help)\n"
                 "  optipod completion bash|zsh    a shell completion script\n\n");
    opflag_usage(out, flags, n);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "plan") == 0)
        return plan_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "backtest") == 0)
        return backtest_main(argc - 1, argv + 1);
    static app a;
    a.f.probe_addr = ":8081";
    a.f.metrics_addr = ":8080";
    a.f.shutdown_ms = 10000;
    a.f.stats_ms = 60000;
    a.f.leader_elect = 1;
    a.f.min_write_ms = 30000;
    a.f.webhook_service = "optipod-webhook";
    a.f.webhook_config = "optipod-webhook";
    mpromflags_init(&a.f.prom);
    a.f.ckpt_ms = 600000;
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
        MPROMFLAGS_OPFLAGS(&a.f.prom),
        {"checkpoint-interval", 0, OPFLAG_DURATION, &a.f.ckpt_ms,
         "save the metrics-server usage histograms to a ConfigMap per namespace this often, and "
         "restore them on start and on becoming leader (default 10m; 0 disables)"},
        {"checkpoint-name", 0, OPFLAG_STRING, &a.f.ckpt_name,
         "name of those ConfigMaps (default optipod-usage-checkpoint)"},
        {"gitops-managers", 0, OPFLAG_STRING, &a.f.gitops_managers,
         "comma-separated field managers that take fields back like a GitOps controller, "
         "beyond Argo CD's, Flux's and Helm's (forcing over them is a Warning SSAConflict)"},
        {"dry-run", 0, OPFLAG_BOOL, &a.f.dry_run,
         "send every write with dryRun=All: report what would change, change nothing"},
        {"min-write-interval", 0, OPFLAG_DURATION, &a.f.min_write_ms,
         "write a workload at most once per this, whatever the cause: annotations, the ssa "
         "write, a restart, an in-place resize of one of its pods (default 30s; 0: no minimum)"},
        {"leader-elect", 0, OPFLAG_BOOL, &a.f.leader_elect,
         "elect a leader on a Lease; only the leader reconciles and writes (default true; "
         "--leader-elect=false lets this process write next to any other)"},
        {"leader-election-namespace", 0, OPFLAG_STRING, &a.f.lease_ns,
         "namespace of the leader Lease (default: $POD_NAMESPACE, the in-cluster namespace, "
         "else " APP_DEFAULT_NS ", the chart's, so a local run waits for an installed one)"},
        {"leader-election-id", 0, OPFLAG_STRING, &a.f.lease_name,
         "name of the leader Lease (default optipod-leader; optipod-webhook-leader with "
         "--webhook-only, so webhook replicas never take the controller's lease)"},
        {"leader-election-lease-duration", 0, OPFLAG_DURATION, &a.f.lease_timing.lease_duration_ms,
         "how long a follower waits after the leader's last renewal before taking the Lease "
         "(default 15s; client-go's name and default)"},
        {"leader-election-renew-deadline", 0, OPFLAG_DURATION, &a.f.lease_timing.renew_deadline_ms,
         "how long the leader keeps trying to renew before it stops writing (default 10s; "
         "below the lease duration)"},
        {"leader-election-retry-period", 0, OPFLAG_DURATION, &a.f.lease_timing.retry_period_ms,
         "how often candidates try to take, and the leader to renew, the Lease (default 2s; "
         "renew deadline > 1.2 x this)"},
        {"webhook-port", 0, OPFLAG_INT, &a.f.webhook_port,
         "serve the mutating pod webhook over HTTPS on this port (default 0: off)"},
        {"webhook-cert-dir", 0, OPFLAG_STRING, &a.f.webhook_cert_dir,
         "directory with tls.crt and tls.key, re-read when they change (e.g. cert-manager); "
         "default: a self-managed certificate in --webhook-secret"},
        {"webhook-service", 0, OPFLAG_STRING, &a.f.webhook_service,
         "Service the API server calls the webhook through: the certificate is for "
         "<service>.<namespace>.svc (default optipod-webhook)"},
        {"webhook-namespace", 0, OPFLAG_STRING, &a.f.webhook_ns,
         "namespace of that Service and of the certificate Secret (default: $POD_NAMESPACE, "
         "the in-cluster namespace, optipod-system)"},
        {"webhook-secret", 0, OPFLAG_STRING, &a.f.webhook_secret,
         "Secret holding the self-managed certificate; only the leader writes it "
         "(default <webhook-service>-tls)"},
        {"webhook-config-name", 0, OPFLAG_STRING, &a.f.webhook_config,
         "MutatingWebhookConfiguration whose caBundle the leader patches; empty: none "
         "(default optipod-webhook)"},
        {"webhook-read-timeout", 0, OPFLAG_DURATION, &a.f.webhook_read_ms,
         "time a webhook client has to send each whole request (from connecting, or from the "
         "previous answer on a kept-alive connection); slower clients are closed so they "
         "cannot hold connections (default 60s)"},
        {"webhook-only", 0, OPFLAG_BOOL, &a.f.webhook_only,
         "serve only the webhook (needs --webhook-port): watch the workloads and ReplicaSets it "
         "resolves owners from, never reconcile; run the controller in another Deployment"},
        {"webhook-extra-sans", 0, OPFLAG_STRING, &a.f.webhook_sans,
         "comma-separated extra DNS names or IPs for the self-managed certificate (a webhook "
         "reached by URL from outside the cluster)"},
        {"v", 'v', OPFLAG_INT, &a.f.verbosity, "log verbosity (0-5)"},
        {"self-check", 0, OPFLAG_BOOL, &a.f.self_check,
         "check TLS, HTTP/2, the loop and the parsers on this machine, then exit"},
        {"version", 0, OPFLAG_BOOL, &a.f.version, "print the version and exit"},
        {"help", 'h', OPFLAG_BOOL, &a.f.help, "print this help and exit"},
    };
    const int nflags = (int)(sizeof flags / sizeof flags[0]);
    if (argc > 1 && strcmp(argv[1], "completion") == 0)
        return completion_main(argc - 1, argv + 1, flags, nflags);
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
    if (a.f.webhook_port < 0 || a.f.webhook_port > 65535) {
        fprintf(stderr, "optipod: flag --webhook-port: %ld is out of range (0-65535)\n",
                a.f.webhook_port);
        return 2;
    }
    klease_timing lt = a.f.lease_timing;
    if (klease_timing_check(&lt) != 0) {
        fprintf(stderr,
                "optipod: flags --leader-election-*: lease duration %llums, renew deadline "
                "%llums, retry period %llums: need lease duration > renew deadline > 1.2 x "
                "retry period\n",
                (unsigned long long)lt.lease_duration_ms, (unsigned long long)lt.renew_deadline_ms,
                (unsigned long long)lt.retry_period_ms);
        return 2;
    }
    a.f.lease_timing = lt;
    if (a.f.webhook_read_ms > 3600000) {
        fprintf(stderr, "optipod: flag --webhook-read-timeout: %llums is over 1h\n",
                (unsigned long long)a.f.webhook_read_ms);
        return 2;
    }
    if (a.f.webhook_only && a.f.webhook_port == 0) {
        fprintf(stderr, "optipod: flag --webhook-only: needs --webhook-port\n");
        return 2;
    }
    mprom_opts po_check = {0};
    if (mpromflags_opts(&a.f.prom, &po_check, &err) < 0) {
        fprintf(stderr, "optipod: %s\n", err.msg);
        return 2;
    }
    if (!a.f.lease_name || !*a.f.lease_name)
        a.f.lease_name = a.f.webhook_only ? "optipod-webhook-leader" : "optipod-leader";
    if (app_bind_flag_bad("health-probe-bind-address", a.f.probe_addr) ||
        app_bind_flag_bad("metrics-bind-address", a.f.metrics_addr))
        return 2;
    oplog_set_verbosity((int)a.f.verbosity);
    if (a.f.self_check)
        return selfcheck_run();

    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&a.loop);
    oploopmon_start(&a.loopmon, &a.loop);
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
    if (a.fatal && code == 0)
        code = 1;
    if (a.rest)
        krest_free(a.rest);
    kcfg_release(&a.cfg);
    int rc = uv_loop_close(&a.loop);
    ops_free(a.obs); /* nothing records once the loop is closed */
    if (rc != 0) {
        OPLOG_E("shutdown: event loop still has open handles (%s)", uv_strerror(rc));
        return 1;
    }
    if (code == 0)
        OPLOG_I("shutdown complete");
    return code;
}
