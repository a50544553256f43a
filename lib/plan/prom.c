/*
 * plan usage from Prometheus: the controller's provider (lib/metrics/
 * prometheus.c) on a private libuv loop. Offline there are no owner
 * references, so one extra query per namespace lists the pods that have
 * working-set series in the window, and the plan's naming rules map them to
 * workloads; the provider then computes the statistics as it does for the
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
#include "metrics/promql.h"
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
    size_t nsi;  /* index into p->wl of the namespace being done */
    opbuf form;  /* the pod-list query */
    char **pods; /* pods of the namespace, owned */
    size_t npods, cap;
    plan_workload **pw; /* the workload of each pod */
    int done, rc, http_closed;
    operr *err;
} prom_run;

static void next_ns(prom_run *r);

static void finish(prom_run *r, int rc)
{
    r->rc = rc;
    r->done = 1;
}

static void free_pods(prom_run *r)
{
    for (size_t i = 0; i < r->npods; i++)
        free(r->pods[i]);
    free(r->pods);
    free(r->pw);
    r->pods = NULL;
    r->pw = NULL;
    r->npods = r->cap = 0;
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

static int collect_pod(const promql_sample *s, void *ud)
{
    prom_run *r = ud;
    const char *ns = r->p->wl[r->nsi].ns;
    plan_workload *w = plan_find_workload(r->p, ns, s->pod, NULL);
    if (!w || !*s->pod)
        return 0;
    if (r->npods == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        char **np = realloc(r->pods, cap * sizeof *np);
        if (!np)
            return -ENOMEM;
        r->pods = np;
        plan_workload **nw = realloc(r->pw, cap * sizeof *nw);
        if (!nw)
            return -ENOMEM;
        r->pw = nw;
        r->cap = cap;
    }
    if (!(r->pods[r->npods] = strdup(s->pod)))
        return -ENOMEM;
    r->pw[r->npods++] = w;
    return 0;
}

/* The pods of the namespace are known: one stats request for its workloads. */
static int request_stats(prom_run *r)
{
    const char *ns = r->p->wl[r->nsi].ns;
    size_t nw = 0;
    mprov_workload *ws = calloc(r->p->nwl, sizeof *ws);
    const char **pods = calloc(r->npods ? r->npods : 1, sizeof *pods);
    int rc = -ENOMEM;
    if (!ws || !pods)
        goto out;
    size_t used = 0;
    for (size_t k = r->nsi; k < r->p->nwl && !strcmp(r->p->wl[k].ns, ns); k++) {
        plan_workload *w = &r->p->wl[k];
        mprov_workload *m = &ws[nw];
        m->kind = w->kind;
        m->name = w->name;
        m->pods = pods + used;
        for (size_t i = 0; i < r->npods; i++)
            if (r->pw[i] == w)
                pods[used++] = r->pods[i];
        m->npods = (size_t)(pods + used - m->pods);
        if (m->npods)
            nw++;
    }
    if (nw == 0) {
        rc = 1; /* nothing of this namespace runs: no statistics to ask for */
        goto out;
    }
    mprov_request rq = {
        .ns = ns,
        .workloads = ws,
        .nworkloads = nw,
        .percentile = r->p->eng.percentile,
        .window_s = r->window_s,
        .eval_time_s = r->eval,
    };
    rc = mprov_request_stats(r->prov, &rq, on_stats, r);
    if (rc < 0)
        operr_set(r->err, rc, "prometheus '%s': namespace %s: %s", r->url, ns, strerror(-rc));
out:
    free(ws);
    free(pods);
    return rc;
}

static void on_pods(ophttp_req *req, const ophttp_response *res, void *ud)
{
    prom_run *r = ud;
    const char *ns = r->p->wl[r->nsi].ns;
    if (res->error || res->status != 200) {
        char why[64];
        snprintf(why, sizeof why, "HTTP %ld", res->status);
        operr_set(r->err, -EIO, "prometheus '%s': namespace %s: pod list: %s", r->url, ns,
                  res->error ? res->error_msg : why);
        finish(r, -EIO);
        return;
    }
    operr pe;
    int rc = promql_parse(res->body, res->body_len, collect_pod, r, &pe);
    if (rc < 0) {
        operr_set(r->err, rc, "prometheus '%s': namespace %s: pod list: %s", r->url, ns,
                  rc == -ENOMEM ? "out of memory" : pe.msg);
        finish(r, rc);
        return;
    }
    rc = request_stats(r);
    if (rc < 0)
        finish(r, rc);
    else if (rc > 0)
        next_ns(r);
}

static int list_pods(prom_run *r)
{
    const char *ns = r->p->wl[r->nsi].ns;
    char q[1024];
    opbuf lit;
    opbuf_init(&lit, 1024);
    int rc = promql_append_string(&lit, ns);
    if (rc == 0)
        snprintf(q, sizeof q,
                 "count by (pod) (count_over_time(container_memory_working_set_bytes"
                 "{namespace=%s,container!=\"\",container!=\"POD\"}[%" PRIu64 "s]))",
                 opbuf_str(&lit), r->window_s);
    opbuf_release(&lit);
    if (rc < 0)
        return rc;
    opbuf_reset(&r->form);
    rc = opbuf_puts(&r->form, "query=");
    if (rc == 0)
        rc = promql_append_form(&r->form, q, strlen(q));
    if (rc == 0)
        rc = opbuf_printf(&r->form, "&time=%" PRId64, r->eval);
    char url[2048];
    snprintf(url, sizeof url, "%s/api/v1/query", r->url);
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    ophttp_req_opts o = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = r->form.data,
        .body_len = r->form.len,
        .timeout_ms = PROM_TIMEOUT_MS,
        .max_body = (size_t)16 << 20,
        .on_done = on_pods,
        .ud = r,
    };
    if (rc == 0)
        rc = ophttp_request(r->http, &o, NULL);
    if (rc < 0)
        operr_set(r->err, rc, "prometheus '%s': namespace %s: %s", r->url, ns, strerror(-rc));
    return rc;
}

/* Move to the next namespace (workloads are sorted by namespace). */
static void next_ns(prom_run *r)
{
    free_pods(r);
    if (r->nsi < r->p->nwl) {
        const char *ns = r->p->wl[r->nsi].ns;
        while (r->nsi < r->p->nwl && !strcmp(r->p->wl[r->nsi].ns, ns))
            r->nsi++;
    }
    if (r->nsi >= r->p->nwl) {
        finish(r, 0);
        return;
    }
    int rc = list_pods(r);
    if (rc < 0)
        finish(r, rc);
}

static void on_http_closed(void *ud)
{
    ((prom_run *)ud)->http_closed = 1;
}

int plan_usage_prometheus(plan *p, const char *url, int64_t now, operr *err)
{
    prom_run r = {.p = p, .url = url, .err = err};
    r.eval = now ? now : (int64_t)time(NULL);
    r.window_s = (uint64_t)(p->pol.window_ms / 1000);
    opbuf_init(&r.form, 64 * 1024);
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
    mprom_opts mo = {.url = url, .timeout_ms = PROM_TIMEOUT_MS, .max_retries = 2};
    rc = mprom_new(&r.prov, &r.loop, r.http, &mo, err);
    if (rc < 0)
        goto out;
    p->now = r.eval;
    if (p->nwl == 0)
        finish(&r, 0);
    else
        rc = list_pods(&r);
    if (rc < 0)
        finish(&r, rc);
    while (!r.done && uv_run(&r.loop, UV_RUN_ONCE))
        ;
    rc = r.done ? r.rc : operr_set(err, -EIO, "prometheus '%s': the requests stalled", url);
out:
    free_pods(&r);
    if (r.prov)
        mprov_close(r.prov);
    if (r.http) {
        ophttp_client_close(r.http, on_http_closed, &r);
        while (!r.http_closed && uv_run(&r.loop, UV_RUN_ONCE))
            ;
    }
    uv_run(&r.loop, UV_RUN_DEFAULT); /* the provider's timers close */
    uv_loop_close(&r.loop);
    opbuf_release(&r.form);
    return rc;
}
