/*
 * btprom: range queries for the backtest. See prom.h.
 */
#include "backtest/prom.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "http/http.h"
#include "metrics/window.h"
#include "util/buf.h"

#define BT_PROM_RATE_S     300
#define BT_PROM_MAX_BODY   ((size_t)256 << 20) /* a month of a big workload's series */
#define BT_PROM_TIMEOUT_MS 120000

int64_t bt_prom_step(int64_t start, int64_t end, int64_t floor_s)
{
    int64_t span = end > start ? end - start : 0;
    int64_t step = (span + BT_PROM_MAX_POINTS - 2) / (BT_PROM_MAX_POINTS - 1);
    step = (step + 59) / 60 * 60;
    return step > floor_s ? step : floor_s;
}

typedef struct fetch {
    uv_loop_t loop;
    ophttp_client *http;
    mprov *prov;
    const bt_prom_workload *w;
    size_t nw;
    bool *taken; /* workloads of a namespace already done or under way */
    /* the namespace under way: its workloads (indexes into w, request order
     * of agg) and the owners answer folded into agg */
    promql_agg *agg;
    size_t *idx, nidx, ai;
    int64_t start, end, step;
    bt_prom_cb cb;
    bt_prom_ns_cb ns_cb;
    void *ud;
    int done, rc, http_closed;
    operr *err;
} fetch;

static void next(fetch *f);

static void fail(fetch *f, int rc)
{
    f->rc = rc;
    f->done = 1;
}

/* A series of the workload asked for: a pod matching its name pattern that
 * kube-state-metrics gives to another owner is not its. */
static int on_series(const promql_series *s, void *ud)
{
    fetch *f = ud;
    if (promql_agg_workload_of(f->agg, s->pod) != f->ai + 1)
        return 0;
    return f->cb(f->idx[f->ai], s, f->ud);
}

static void on_range(int error, const char *msg, const char *body, size_t len, void *ud)
{
    fetch *f = ud;
    const bt_prom_workload *w = &f->w[f->idx[f->ai]];
    if (error) {
        fail(f, operr_set(f->err, error, "%s (%s %s/%s)", msg, w->kind, w->ns, w->name));
        return;
    }
    operr pe;
    int rc = promql_parse_matrix(body, len, on_series, f, &pe);
    if (rc != 0) {
        fail(f, operr_set(f->err, rc, "prometheus: %s %s/%s: %s", w->kind, w->ns, w->name,
                          rc == -EPROTO || rc == -EREMOTEIO || rc == -ENOMEM ? pe.msg
                                                                             : strerror(-rc)));
        return;
    }
    f->ai++;
    next(f);
}

static void on_owners(int error, const char *msg, const char *body, size_t len, void *ud)
{
    fetch *f = ud;
    const char *ns = f->w[f->idx[0]].ns;
    if (error) {
        fail(f,
             operr_set(f->err, error, "%s (kube-state-metrics owners in namespace %s)", msg, ns));
        return;
    }
    operr pe;
    promql_agg_ctx ctx = {.agg = f->agg, .err = &pe, .owners_query = 1};
    int rc = promql_parse(body, len, promql_agg_sample_cb, &ctx, &pe);
    if (rc != 0) {
        fail(f, operr_set(f->err, rc, "prometheus: namespace %s: owners: %s", ns,
                          rc == -EPROTO || rc == -EREMOTEIO || rc == -ENOMEM ? pe.msg
                                                                             : strerror(-rc)));
        return;
    }
    if (f->ns_cb)
        f->ns_cb(ns, promql_agg_history(f->agg), f->ud);
    f->ai = 0;
    next(f);
}

/* The range query of workload f->idx[f->ai]. */
static int ask_range(fetch *f)
{
    opbuf re, q, form;
    size_t nalts;
    opbuf_init(&re, 1 << 16);
    opbuf_init(&q, 1 << 17);
    opbuf_init(&form, 1 << 18);
    const bt_prom_workload *w = &f->w[f->idx[f->ai]];
    int rc = promql_agg_pod_regex_of(f->agg, f->ai, &re, &nalts);
    if (rc == 0)
        rc = promql_build_range(&q, w->ns, opbuf_str(&re), BT_PROM_RATE_S);
    if (rc == 0)
        rc = opbuf_puts(&form, "query=");
    if (rc == 0)
        rc = promql_append_form(&form, q.data, q.len);
    if (rc == 0)
        rc = opbuf_printf(&form, "&start=%" PRId64 "&end=%" PRId64 "&step=%" PRId64, f->start,
                          f->end, f->step);
    if (rc == 0)
        rc = mprom_query_raw(f->prov, "/api/v1/query_range", opbuf_str(&form), on_range, f);
    if (rc != 0)
        operr_set(f->err, rc, "prometheus: %s %s/%s: cannot ask: %s", w->kind, w->ns, w->name,
                  strerror(-rc));
    opbuf_release(&re);
    opbuf_release(&q);
    opbuf_release(&form);
    return rc;
}

/* The next namespace: its workloads of a known kind, and the owners query
 * over the whole range (the controller's first query, promql_build_owners). */
static int ask_owners(fetch *f, size_t first)
{
    const char *ns = f->w[first].ns;
    mprov_workload *mw = calloc(f->nw, sizeof *mw);
    if (!mw)
        return operr_set(f->err, -ENOMEM, "prometheus: out of memory");
    f->nidx = 0;
    for (size_t i = first; i < f->nw; i++) {
        if (f->taken[i] || strcmp(f->w[i].ns, ns) != 0)
            continue;
        f->taken[i] = true;
        if (!mwin_kind_known(f->w[i].kind))
            continue; /* no pods to find by kind: nothing to ask */
        mw[f->nidx] = (mprov_workload){f->w[i].kind, f->w[i].name, NULL, 0};
        f->idx[f->nidx++] = i;
    }
    promql_agg_free(f->agg);
    f->agg = NULL;
    mprov_request rq = {.ns = ns,
                        .workloads = mw,
                        .nworkloads = f->nidx,
                        .percentile = 0.5,
                        .window_s = (uint64_t)(f->end - f->start)};
    opbuf dre, q, form;
    opbuf_init(&dre, 1 << 16);
    opbuf_init(&q, 1 << 17);
    opbuf_init(&form, 1 << 18);
    int rc = promql_agg_new(&f->agg, &rq);
    if (rc == 0)
        rc = promql_agg_deploy_regex(f->agg, &dre);
    if (rc == 0)
        rc = promql_build_owners(&q, ns, opbuf_str(&dre),
                                 (uint64_t)(f->end > f->start ? f->end - f->start : 1));
    if (rc == 0)
        rc = opbuf_puts(&form, "query=");
    if (rc == 0)
        rc = promql_append_form(&form, q.data, q.len);
    if (rc == 0)
        rc = opbuf_printf(&form, "&time=%" PRId64, f->end);
    if (rc == 0)
        rc = mprom_query_raw(f->prov, "/api/v1/query", opbuf_str(&form), on_owners, f);
    if (rc != 0)
        operr_set(f->err, rc, "prometheus: namespace %s: cannot ask for the owners: %s", ns,
                  strerror(-rc));
    opbuf_release(&dre);
    opbuf_release(&q);
    opbuf_release(&form);
    free(mw);
    return rc;
}

/* Ask for the next workload of the namespace under way, or the next
 * namespace's owners, or finish. */
static void next(fetch *f)
{
    int rc;
    if (f->agg && f->ai < f->nidx) {
        rc = ask_range(f);
    } else {
        size_t first = 0;
        while (first < f->nw && (f->taken[first] || !mwin_kind_known(f->w[first].kind))) {
            f->taken[first] = true;
            first++;
        }
        if (first >= f->nw) {
            f->done = 1;
            return;
        }
        rc = ask_owners(f, first);
    }
    if (rc != 0)
        fail(f, rc);
}

static void on_http_closed(void *ud)
{
    ((fetch *)ud)->http_closed = 1;
}

int bt_prom_fetch(const mprom_opts *o, const bt_prom_workload *w, size_t nw, int64_t start,
                  int64_t end, int64_t step, bt_prom_cb cb, bt_prom_ns_cb ns_cb, void *ud,
                  operr *err)
{
    if (step <= 0 || end < start || (end - start) / step + 1 > BT_PROM_MAX_POINTS)
        return operr_set(err, -EINVAL,
                         "prometheus: a range of %" PRId64 " s in steps of %" PRId64
                         " s is more than %d points",
                         end - start, step, BT_PROM_MAX_POINTS);
    fetch f = {.w = w,
               .nw = nw,
               .start = start,
               .end = end,
               .step = step,
               .cb = cb,
               .ns_cb = ns_cb,
               .ud = ud,
               .err = err};
    f.taken = calloc(nw + 1, sizeof *f.taken);
    f.idx = calloc(nw + 1, sizeof *f.idx);
    if (!f.taken || !f.idx) {
        free(f.taken);
        free(f.idx);
        return operr_set(err, -ENOMEM, "prometheus: out of memory");
    }
    int rc = uv_loop_init(&f.loop);
    if (rc < 0) {
        free(f.taken);
        free(f.idx);
        return operr_set(err, rc, "prometheus: %s", uv_strerror(rc));
    }
    mprom_opts mo = *o;
    mo.timeout_ms = mo.timeout_ms ? mo.timeout_ms : BT_PROM_TIMEOUT_MS;
    mo.max_retries = mo.max_retries ? mo.max_retries : 2;
    mo.max_body = mo.max_body ? mo.max_body : BT_PROM_MAX_BODY;
    if ((rc = ophttp_client_new(&f.http, &f.loop, NULL)) < 0)
        operr_set(err, rc, "prometheus: %s", strerror(-rc));
    else if ((rc = mprom_new(&f.prov, &f.loop, f.http, &mo, err)) == 0) {
        next(&f);
        while (!f.done && uv_run(&f.loop, UV_RUN_ONCE))
            ;
        rc = f.done ? f.rc : operr_set(err, -EIO, "prometheus '%s': the requests stalled", o->url);
    }
    if (f.prov)
        mprov_close(f.prov);
    if (f.http) {
        ophttp_client_close(f.http, on_http_closed, &f);
        while (!f.http_closed && uv_run(&f.loop, UV_RUN_ONCE))
            ;
    }
    uv_run(&f.loop, UV_RUN_DEFAULT);
    uv_loop_close(&f.loop);
    promql_agg_free(f.agg);
    free(f.taken);
    free(f.idx);
    return rc;
}
