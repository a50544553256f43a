/*
 * btrender: the backtest report. See render.h.
 */
#include "backtest/render.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/quantity.h"
#include "policy/policy.h"

/* CPU to the millicore; memory to the nearest MiB (peaks and averages are
 * not round numbers; "939312590" says less than "896Mi"). */
static void qty(int cpu, int has, double v, char *buf, size_t size)
{
    const double mi = 1024.0 * 1024.0;
    if (!has)
        snprintf(buf, size, "-");
    else if (cpu)
        kq_fmt_cpu_milli((int64_t)llround(v), buf, size);
    else if (fmod(v, mi) == 0 || v < mi)
        kq_fmt_mem_bytes((int64_t)llround(v), buf, size);
    else
        kq_fmt_mem_bytes((int64_t)llround(v / mi) * (1 << 20), buf, size);
}

static double pct(int64_t part, int64_t whole)
{
    return whole > 0 ? 100.0 * (double)part / (double)whole : 0;
}

/* "388m (39%)", "-" without a request today */
static void saving(int cpu, int has, double today, double avg, char *buf, size_t size)
{
    char q[KQ_STR_MAX + 1];
    if (!has || today <= 0) {
        snprintf(buf, size, "-");
        return;
    }
    double d = today - avg;
    qty(cpu, 1, fabs(d), q, sizeof q);
    snprintf(buf, size, "%s%s (%.0f%%)", d < 0 ? "-" : "", q, 100.0 * d / today);
}

void bt_fmt_time(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- table ------------------------------------------------------------------------------ */

#define NCOL 12
#define CELL 96

typedef struct grid {
    char (*cell)[NCOL][CELL];
    size_t n, ncol;
} grid;

static int grid_emit(const grid *g, opbuf *out)
{
    size_t w[NCOL] = {0};
    for (size_t r = 0; r < g->n; r++)
        for (size_t c = 0; c < g->ncol; c++) {
            size_t l = strlen(g->cell[r][c]);
            w[c] = l > w[c] ? l : w[c];
        }
    int rc = 0;
    for (size_t r = 0; r < g->n && rc == 0; r++) {
        for (size_t c = 0; c < g->ncol && rc == 0; c++)
            rc = c + 1 < g->ncol ? opbuf_printf(out, "%-*s  ", (int)w[c], g->cell[r][c])
                                 : opbuf_printf(out, "%s\n", g->cell[r][c]);
    }
    return rc;
}

static void set(grid *g, size_t c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set(grid *g, size_t c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->cell[g->n][c], CELL, fmt, ap);
    va_end(ap);
}

int bt_render_table(const bt_run *runs, size_t nruns, opbuf *out)
{
    size_t nrows = nruns ? runs[0].nrows : 0;
    size_t need = 1 + (nrows * nruns > nruns ? nrows * nruns : nruns);
    grid g = {calloc(need, sizeof *g.cell), 0, NCOL};
    if (!g.cell)
        return -ENOMEM;
    static const char *const head[NCOL] = {
        "POLICY",  "NAMESPACE", "WORKLOAD", "CONTAINER",        "CHANGES",    "CPU REQ",
        "CPU>REQ", "MEM REQ",   "MEM>LIM",  "MEM PEAK/REQ/LIM", "CPU SAVING", "MEM SAVING"};
    for (size_t c = 0; c < NCOL; c++)
        set(&g, c, "%s", head[c]);
    g.n++;
    char a[KQ_STR_MAX + 1], b[KQ_STR_MAX + 1], d[KQ_STR_MAX + 1];
    for (size_t i = 0; i < nrows; i++) {
        for (size_t k = 0; k < nruns; k++, g.n++) {
            const bt_row *row = &runs[k].rows[i];
            const bt_result *r = &row->r;
            set(&g, 0, "%s", runs[k].label);
            set(&g, 1, "%s", row->ns);
            set(&g, 2, "%s/%s", row->kind, row->workload);
            set(&g, 3, "%s", row->container);
            set(&g, 4, "%" PRId64, r->changes);
            qty(1, r->cpu_today.has_req, (double)r->cpu_today.req, a, sizeof a);
            qty(1, r->cpu_end.has_req, (double)r->cpu_end.req, b, sizeof b);
            set(&g, 5, "%s->%s", a, b);
            set(&g, 6, "%.1f%%", pct(r->cpu_over, r->cpu_judged));
            qty(0, r->mem_today.has_req, (double)r->mem_today.req, a, sizeof a);
            qty(0, r->mem_end.has_req, (double)r->mem_end.req, b, sizeof b);
            set(&g, 7, "%s->%s", a, b);
            set(&g, 8, "%" PRId64, r->mem_over_lim);
            qty(0, r->mem_judged > 0, r->mem_peak, a, sizeof a);
            qty(0, r->mem_at_peak.has_req, (double)r->mem_at_peak.req, b, sizeof b);
            qty(0, r->mem_at_peak.has_lim, (double)r->mem_at_peak.lim, d, sizeof d);
            set(&g, 9, "%s/%s/%s", a, b, d);
            saving(1, r->cpu_today.has_req, (double)r->cpu_today.req, r->cpu_req_avg,
                   g.cell[g.n][10], CELL);
            saving(0, r->mem_today.has_req, (double)r->mem_today.req, r->mem_req_avg,
                   g.cell[g.n][11], CELL);
        }
    }
    int rc = grid_emit(&g, out);
    if (rc != 0 || nruns == 0)
        goto out;
    char from[32], to[32], iv[32], win[32];
    bt_fmt_time(runs[0].period.from, from, sizeof from);
    bt_fmt_time(runs[0].period.to, to, sizeof to);
    rc = opbuf_printf(out, "\nTOTAL: %zu containers, per pod, replayed %s .. %s\n",
                      runs[0].total.containers, from, to);
    g.n = 0;
    g.ncol = 9;
    static const char *const thead[9] = {"POLICY",  "EVERY",   "WINDOW",     "CHANGES",   "CPU>REQ",
                                         "MEM>REQ", "MEM>LIM", "CPU SAVING", "MEM SAVING"};
    for (size_t c = 0; c < 9; c++)
        set(&g, c, "%s", thead[c]);
    g.n++;
    for (size_t k = 0; k < nruns; k++, g.n++) {
        const bt_total *t = &runs[k].total;
        pol_format_duration(runs[k].period.interval_s * 1000, iv, sizeof iv);
        pol_format_duration(runs[k].period.window_s * 1000, win, sizeof win);
        set(&g, 0, "%s", runs[k].label);
        set(&g, 1, "%s", iv);
        set(&g, 2, "%s", win);
        set(&g, 3, "%" PRId64, t->changes);
        set(&g, 4, "%.1f%%", pct(t->cpu_over, t->cpu_judged));
        set(&g, 5, "%.1f%%", pct(t->mem_over_req, t->mem_judged));
        set(&g, 6, "%" PRId64, t->mem_over_lim);
        saving(1, 1, t->cpu_today_m, t->cpu_avg_m, g.cell[g.n][7], CELL);
        saving(0, 1, t->mem_today, t->mem_avg, g.cell[g.n][8], CELL);
    }
    if (rc == 0)
        rc = grid_emit(&g, out);
out:
    free(g.cell);
    return rc;
}

/* ---- JSON ------------------------------------------------------------------------------- */

static void add_qty(cJSON *o, const char *key, int cpu, int has, double v)
{
    char q[KQ_STR_MAX + 1];
    if (!has) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    qty(cpu, 1, v, q, sizeof q);
    cJSON_AddStringToObject(o, key, q);
}

static double round2(double x)
{
    return round(x * 100) / 100;
}

static void add_saving(cJSON *o, const char *key, const char *pkey, int cpu, int has, double today,
                       double avg)
{
    if (!has || today <= 0) {
        cJSON_AddNullToObject(o, key);
        cJSON_AddNullToObject(o, pkey);
        return;
    }
    char q[KQ_STR_MAX + 2];
    double d = today - avg;
    qty(cpu, 1, fabs(d), q + 1, sizeof q - 1);
    q[0] = '-';
    cJSON_AddStringToObject(o, key, d < 0 ? q : q + 1);
    cJSON_AddNumberToObject(o, pkey, round2(100.0 * d / today));
}

static cJSON *row_json(const bt_row *row)
{
    const bt_result *r = &row->r;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "namespace", row->ns);
    cJSON_AddStringToObject(o, "kind", row->kind);
    cJSON_AddStringToObject(o, "workload", row->workload);
    cJSON_AddStringToObject(o, "container", row->container);
    cJSON_AddNumberToObject(o, "steps", (double)r->steps);
    cJSON_AddNumberToObject(o, "changes", (double)r->changes);
    cJSON_AddNumberToObject(o, "cpuChanges", (double)r->cpu_changes);
    cJSON_AddNumberToObject(o, "memoryChanges", (double)r->mem_changes);
    cJSON_AddStringToObject(o, "lastDecision", eng_decision_str(r->last));
    cJSON_AddNumberToObject(o, "cpuSamples", (double)r->cpu_judged);
    cJSON_AddNumberToObject(o, "cpuAboveRequest", (double)r->cpu_over);
    cJSON_AddNumberToObject(o, "cpuAboveRequestPercent", round2(pct(r->cpu_over, r->cpu_judged)));
    cJSON_AddNumberToObject(o, "memorySamples", (double)r->mem_judged);
    cJSON_AddNumberToObject(o, "memoryAboveRequest", (double)r->mem_over_req);
    cJSON_AddNumberToObject(o, "memoryAboveLimit", (double)r->mem_over_lim);
    add_qty(o, "memoryPeak", 0, r->mem_judged > 0, r->mem_peak);
    add_qty(o, "memoryRequestAtPeak", 0, r->mem_at_peak.has_req, (double)r->mem_at_peak.req);
    add_qty(o, "memoryLimitAtPeak", 0, r->mem_at_peak.has_lim, (double)r->mem_at_peak.lim);
    add_qty(o, "cpuRequestToday", 1, r->cpu_today.has_req, (double)r->cpu_today.req);
    add_qty(o, "cpuRequestAverage", 1, 1, r->cpu_req_avg);
    add_qty(o, "cpuRequestEnd", 1, r->cpu_end.has_req, (double)r->cpu_end.req);
    add_qty(o, "cpuLimitEnd", 1, r->cpu_end.has_lim, (double)r->cpu_end.lim);
    add_saving(o, "cpuSaving", "cpuSavingPercent", 1, r->cpu_today.has_req,
               (double)r->cpu_today.req, r->cpu_req_avg);
    add_qty(o, "memoryRequestToday", 0, r->mem_today.has_req, (double)r->mem_today.req);
    add_qty(o, "memoryRequestAverage", 0, 1, r->mem_req_avg);
    add_qty(o, "memoryRequestEnd", 0, r->mem_end.has_req, (double)r->mem_end.req);
    add_qty(o, "memoryLimitEnd", 0, r->mem_end.has_lim, (double)r->mem_end.lim);
    add_saving(o, "memorySaving", "memorySavingPercent", 0, r->mem_today.has_req,
               (double)r->mem_today.req, r->mem_req_avg);
    return o;
}

static cJSON *total_json(const bt_total *t)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "containers", (double)t->containers);
    cJSON_AddNumberToObject(o, "changes", (double)t->changes);
    cJSON_AddNumberToObject(o, "cpuAboveRequestPercent", round2(pct(t->cpu_over, t->cpu_judged)));
    cJSON_AddNumberToObject(o, "memoryAboveRequestPercent",
                            round2(pct(t->mem_over_req, t->mem_judged)));
    cJSON_AddNumberToObject(o, "memoryAboveLimit", (double)t->mem_over_lim);
    add_qty(o, "cpuRequestToday", 1, 1, t->cpu_today_m);
    add_qty(o, "cpuRequestAverage", 1, 1, t->cpu_avg_m);
    add_saving(o, "cpuSaving", "cpuSavingPercent", 1, 1, t->cpu_today_m, t->cpu_avg_m);
    add_qty(o, "memoryRequestToday", 0, 1, t->mem_today);
    add_qty(o, "memoryRequestAverage", 0, 1, t->mem_avg);
    add_saving(o, "memorySaving", "memorySavingPercent", 0, 1, t->mem_today, t->mem_avg);
    return o;
}

int bt_render_json(const bt_run *runs, size_t nruns, opbuf *out)
{
    cJSON *root = cJSON_CreateObject(), *pols = NULL;
    char buf[32];
    int rc = -ENOMEM;
    if (!root)
        return -ENOMEM;
    if (nruns) {
        bt_fmt_time(runs[0].period.from, buf, sizeof buf);
        cJSON_AddStringToObject(root, "from", buf);
        bt_fmt_time(runs[0].period.to, buf, sizeof buf);
        cJSON_AddStringToObject(root, "to", buf);
    }
    if (!(pols = cJSON_AddArrayToObject(root, "policies")))
        goto out;
    for (size_t k = 0; k < nruns; k++) {
        cJSON *p = cJSON_CreateObject(), *ctrs;
        if (!p)
            goto out;
        cJSON_AddItemToArray(pols, p);
        cJSON_AddStringToObject(p, "policy", runs[k].label);
        pol_format_duration(runs[k].period.interval_s * 1000, buf, sizeof buf);
        cJSON_AddStringToObject(p, "interval", buf);
        pol_format_duration(runs[k].period.window_s * 1000, buf, sizeof buf);
        cJSON_AddStringToObject(p, "window", buf);
        if (!(ctrs = cJSON_AddArrayToObject(p, "containers")))
            goto out;
        for (size_t i = 0; i < runs[k].nrows; i++) {
            cJSON *c = row_json(&runs[k].rows[i]);
            if (!c)
                goto out;
            cJSON_AddItemToArray(ctrs, c);
        }
        cJSON *t = total_json(&runs[k].total);
        if (!t)
            goto out;
        cJSON_AddItemToObject(p, "total", t);
    }
    char *s = cJSON_Print(root);
    if (!s)
        goto out;
    rc = opbuf_puts(out, s);
    if (rc == 0)
        rc = opbuf_puts(out, "\n");
    cJSON_free(s);
out:
    cJSON_Delete(root);
    return rc;
}
