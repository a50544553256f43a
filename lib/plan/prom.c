/*
 * plan usage from Prometheus: the controller's provider (lib/metrics/
 * prometheus.c) on a private libuv loop. Offline there are no owner
 * references: the provider finds every pod each workload had in the window
 * itself (kube-state-metrics owner series, else the generated names:
 * metrics/window.h) and computes the statistics as it does for the
 * controller (percentiles in Prometheus, the max over a workload's pods).
 * Namespaces are done one after another; the first failure ends the run.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "http/http.h"
#include "metrics/prometheus.h"
#include "plan/internal.h"

#define PROM_TIMEOUT_MS 30000

typedef struct prom_run {
    plan *p;
    uv_loop_t loop;
    ophttp_client *http;
    mprov *prov;
    const char *url;
    int64_t eval;
    uint64_t window_s;
    size_t nsi; /* index into p->wl of the namespace being done */
    int done, rc, http_closed;
    operr *err;
} prom_run;

static void next_ns(prom_run *r);

static void finish(prom_run *r, int rc)
{
    r->rc = rc;
    r->done = 1;
}

static void on_stats(const mprov_result *res, void *ud)
{
    prom_run *r = ud;
    if (res->error) {
        operr_set(r->err, res->error, "%s", res->error_msg);
        finish(r, res->error);
        return;
    }
    r->p->now = res->eval_time_s;
    if (res->nworkloads && res->workloads[0].history &&
        plan_diag(r->p, false, "prometheus: namespace %s: the window's pods found by %s", res->ns,
                  res->workloads[0].history) < 0) {
        finish(r, -ENOMEM);
        return;
    }
    for (size_t i = 0; i < res->nworkloads; i++) {
        const mprov_workload_stats *ws = &res->workloads[i];
        plan_workload *w = plan_find(r->p, ws->kind, res->ns, ws->name);
        if (!w)
            continue; /* not in the manifests */
        for (size_t c = 0; c < ws->ncontainers; c++) {
            const mprov_container_stats *cs = &ws->containers[c];
            for (size_t j = 0; j < w->nctrs; j++) {
                plan_container *pc = &w->ctrs[j];
                if (strcmp(pc->name, cs->container) != 0)
                    continue;
                eng_usage *u = &pc->c.use;
                u->cpu_cores = cs->cpu_cores;
                u->mem_bytes = (int64_t)cs->mem_bytes;
                u->mem_peak_bytes = (int64_t)cs->mem_peak_bytes;
                u->samples = (int64_t)(cs->cpu_samples > cs->mem_samples ? cs->cpu_samples
                                                                         : cs->mem_samples);
                u->span_s = (int64_t)cs->history_s;
                u->oom_count = cs->oom_count;
                u->oom_last = cs->oom_last_s;
                u->oom_mem_bytes = 0; /* unknown: the engine uses the limit */
                pc->has_usage = pc->preset = true;
            }
        }
    }
    next_ns(r);
}

/* One stats request for the workloads of the namespace at r->nsi. */
static int request_stats(prom_run *r)
{
    const char *ns = r->p->wl[r->nsi].ns;
    size_t nw = 0;
    mprov_workload *ws = calloc(r->p->nwl, sizeof *ws);
    if (!ws)
        return operr_set(r->err, -ENOMEM, "prometheus: out of memory");
    for (size_t k = r->nsi; k < r->p->nwl && !strcmp(r->p->wl[k].ns, ns); k++)
        ws[nw++] = (mprov_workload){r->p->wl[k].kind, r->p->wl[k].name, NULL, 0};
    mprov_request rq = {
        .ns = ns,
        .workloads = ws,
        .nworkloads = nw,
        .percentile = r->p->eng.percentile,
        .window_s = r->window_s,
        .eval_time_s = r->eval,
    };
    int rc = mprov_request_stats(r->prov, &rq, on_stats, r);
    if (rc < 0)
        operr_set(r->err, rc, "prometheus '%s': namespace %s: %s", r->url, ns, strerror(-rc));
    free(ws);
    return rc;
}

/* Move to the next namespace (workloads are sorted by namespace). */
static void next_ns(prom_run *r)
{
    if (r->nsi < r->p->nwl) {
        const char *ns = r->p->wl[r->nsi].ns;
        while (r->nsi < r->p->nwl && !strcmp(r->p->wl[r->nsi].ns, ns))
            r->nsi++;
    }
    if (r->nsi >= r->p->nwl) {
        finish(r, 0);
        return;
    }
    int rc = request_stats(r);
    if (rc < 0)
        finish(r, rc);
}

static void on_http_closed(void *ud)
{
    ((prom_run *)ud)->http_closed = 1;
}

int plan_usage_prometheus(plan *p, const char *url, int64_t now, operr *err)
{
    mprom_opts mo = {.url = url};
    return plan_usage_prometheus_opts(p, &mo, now, err);
}

int plan_usage_prometheus_opts(plan *p, const mprom_opts *opts, int64_t now, operr *err)
{
    const char *url = opts->url;
    prom_run r = {.p = p, .url = url, .err = err};
    r.eval = now ? now : (int64_t)time(NULL);
    r.window_s = (uint64_t)(p->pol.window_ms / 1000);
    int rc = plan_sort(p); /* the namespaces in order, and the indexes */
    if (rc < 0)
        return operr_set(err, rc, "prometheus: out of memory");
    rc = uv_loop_init(&r.loop);
    if (rc < 0)
        return operr_set(err, rc, "prometheus: %s", uv_strerror(rc));
    rc = ophttp_client_new(&r.http, &r.loop, NULL);
    if (rc < 0) {
        operr_set(err, rc, "prometheus: %s", strerror(-rc));
        goto out;
    }
    mprom_opts mo = *opts;
    mo.timeout_ms = mo.timeout_ms ? mo.timeout_ms : PROM_TIMEOUT_MS;
    mo.max_retries = mo.max_retries ? mo.max_retries : 2;
    rc = mprom_new(&r.prov, &r.loop, r.http, &mo, err);
    if (rc < 0)
        goto out;
    p->now = r.eval;
    if (p->nwl == 0)
        finish(&r, 0);
    else
        rc = request_stats(&r);
    if (rc < 0)
        finish(&r, rc);
    while (!r.done && uv_run(&r.loop, UV_RUN_ONCE))
        ;
    rc = r.done ? r.rc : operr_set(err, -EIO, "prometheus '%s': the requests stalled", url);
out:
    if (r.prov)
        mprov_close(r.prov);
    if (r.http) {
        ophttp_client_close(r.http, on_http_closed, &r);
        while (!r.http_closed && uv_run(&r.loop, UV_RUN_ONCE))
            ;
    }
    uv_run(&r.loop, UV_RUN_DEFAULT); /* the provider's timers close */
    uv_loop_close(&r.loop);
    return rc;
}
