/*
 * btprom: range queries for the backtest. See prom.h.
 */
#include "backtest/prom.h"

#include <errno.h>
#include <inttypes.h>
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
    size_t nw, wi;
    int64_t start, end, step;
    bt_prom_cb cb;
    void *ud;
    int done, rc, http_closed;
    operr *err;
} fetch;

static void next(fetch *f);

static int on_series(const promql_series *s, void *ud)
{
    fetch *f = ud;
    return f->cb(f->wi, s, f->ud);
}

static void on_body(int error, const char *msg, const char *body, size_t len, void *ud)
{
    fetch *f = ud;
    const bt_prom_workload *w = &f->w[f->wi];
    if (error) {
        f->rc = operr_set(f->err, error, "%s (%s %s/%s)", msg, w->kind, w->ns, w->name);
        f->done = 1;
        return;
    }
    operr pe;
    int rc = promql_parse_matrix(body, len, on_series, f, &pe);
    if (rc != 0) {
        f->rc =
            operr_set(f->err, rc, "prometheus: %s %s/%s: %s", w->kind, w->ns, w->name,
                      rc == -EPROTO || rc == -EREMOTEIO || rc == -ENOMEM ? pe.msg : strerror(-rc));
        f->done = 1;
        return;
    }
    f->wi++;
    next(f);
}

/* Ask for the next workload with a known kind, or finish. */
static void next(fetch *f)
{
    while (f->wi < f->nw && !mwin_kind_known(f->w[f->wi].kind))
        f->wi++;
    if (f->wi >= f->nw) {
        f->done = 1;
        return;
    }
    const bt_prom_workload *w = &f->w[f->wi];
    opbuf re, q, form;
    opbuf_init(&re, 4096);
    opbuf_init(&q, 1 << 16);
    opbuf_init(&form, 1 << 18);
    int rc = mwin_pod_regex(&re, w->kind, w->name);
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
        rc = mprom_query_raw(f->prov, "/api/v1/query_range", opbuf_str(&form), on_body, f);
    if (rc != 0) {
        f->rc = operr_set(f->err, rc, "prometheus: %s %s/%s: cannot ask: %s", w->kind, w->ns,
                          w->name, strerror(-rc));
        f->done = 1;
    }
    opbuf_release(&re);
    opbuf_release(&q);
    opbuf_release(&form);
}

static void on_http_closed(void *ud)
{
    ((fetch *)ud)->http_closed = 1;
}

int bt_prom_fetch(const mprom_opts *o, const bt_prom_workload *w, size_t nw, int64_t start,
                  int64_t end, int64_t step, bt_prom_cb cb, void *ud, operr *err)
{
    if (step <= 0 || end < start || (end - start) / step + 1 > BT_PROM_MAX_POINTS)
        return operr_set(err, -EINVAL,
                         "prometheus: a range of %" PRId64 " s in steps of %" PRId64
                         " s is more than %d points",
                         end - start, step, BT_PROM_MAX_POINTS);
    fetch f = {
        .w = w, .nw = nw, .start = start, .end = end, .step = step, .cb = cb, .ud = ud, .err = err};
    int rc = uv_loop_init(&f.loop);
    if (rc < 0)
        return operr_set(err, rc, "prometheus: %s", uv_strerror(rc));
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
    return rc;
}
