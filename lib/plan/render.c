/*
 * plan rendering: table, json, yaml, csv. Every format lists workloads in
 * (namespace, kind, name) order and containers in manifest order, with no
 * timestamps of the run itself, so the same inputs give the same bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quantity.h"
#include "plan/internal.h"
#include "util/emit.h"
#include "util/optime.h"

/* One container's row, as strings. */
typedef struct row {
    char ns[128], wl[160], ctr[128];
    char cpu_cur[64], cpu_rec[64], cpu_delta[16];
    char mem_cur[64], mem_rec[64], mem_delta[16];
    char conf[48], decision[24], reason[200];
} row;

static void fmt_val(bool cpu, bool has, int64_t v, char *buf, size_t size)
{
    if (!has)
        snprintf(buf, size, "-");
    else if (cpu)
        kq_fmt_cpu_milli(v, buf, size);
    else
        kq_fmt_mem_bytes(v, buf, size);
}

static void fmt_pair(bool cpu, bool has_req, int64_t req, bool has_lim, int64_t lim, char *buf,
                     size_t size)
{
    char a[KQ_STR_MAX], b[KQ_STR_MAX];
    fmt_val(cpu, has_req, req, a, sizeof a);
    fmt_val(cpu, has_lim, lim, b, sizeof b);
    snprintf(buf, size, "%s/%s", a, b);
}

/* The values a resource ends with: written ones, else the current ones. */
static void rec_values(const eng_res *r, const eng_rl *cur, bool *has_req, int64_t *req,
                       bool *has_lim, int64_t *lim)
{
    *has_req = r->decision != ENG_SKIPPED;
    *req = r->req;
    *has_lim = r->has_lim || cur->has_lim;
    *lim = r->has_lim ? r->lim : cur->lim;
}

static void fmt_delta(const eng_res *r, const eng_rl *cur, char *buf, size_t size)
{
    if (r->decision == ENG_SKIPPED)
        snprintf(buf, size, "-");
    else if (r->decision == ENG_UNCHANGED)
        snprintf(buf, size, "0%%");
    else if (!cur->has_req || cur->req == 0)
        snprintf(buf, size, "new");
    else
        snprintf(buf, size, "%+.0f%%", 100.0 * (double)(r->req - cur->req) / (double)cur->req);
}

static void fmt_span(int64_t s, char *buf, size_t size)
{
    int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;
    if (d && h)
        snprintf(buf, size, "%" PRId64 "d%" PRId64 "h", d, h);
    else if (d)
        snprintf(buf, size, "%" PRId64 "d", d);
    else if (h)
        snprintf(buf, size, "%" PRId64 "h%s", h, m ? "+" : "");
    else
        snprintf(buf, size, "%" PRId64 "m", m);
}

/* What shaped one resource's number, in a few words. */
static void res_reason(const char *what, const eng_res *r, const plan *p, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%s ", what);
    if (r->decision == ENG_SKIPPED) {
        snprintf(buf + n, size - n, "%s", eng_reason_str(r->reason));
        return;
    }
    if (r->decision == ENG_UNCHANGED) {
        snprintf(buf + n, size - n, "%s", eng_reason_str(ENG_R_WITHIN_THRESHOLD));
        return;
    }
    bool any = false;
    for (size_t i = 0; i < r->nsteps && n < size; i++) {
        switch (r->steps[i].kind) {
        case ENG_STEP_PEAK_FLOOR:
        case ENG_STEP_OOM_BUMP:
        case ENG_STEP_CLAMP_MIN:
        case ENG_STEP_CLAMP_MAX:
        case ENG_STEP_OOM_COOLING:
        case ENG_STEP_DECREASE_CAP:
        case ENG_STEP_LIMIT_CAP:
            n += (size_t)snprintf(buf + n, size - n, "%s%s", any ? "+" : "",
                                  eng_step_str(r->steps[i].kind));
            any = true;
            break;
        default:
            break;
        }
    }
    if (!any && n < size)
        snprintf(buf + n, size - n, "p%.0fx%g", p->eng.percentile * 100, p->eng.safety_factor);
}

static void make_row(const plan *p, const plan_workload *w, const plan_container *c, row *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->ns, sizeof r->ns, "%s", w->ns);
    snprintf(r->wl, sizeof r->wl, "%s/%s", w->kind, w->name);
    snprintf(r->ctr, sizeof r->ctr, "%s%s", c->name, c->init ? " (init)" : "");
    const eng_rl *cc = &c->c.cpu, *mc = &c->c.mem;
    fmt_pair(true, cc->has_req, cc->req, cc->has_lim, cc->lim, r->cpu_cur, sizeof r->cpu_cur);
    fmt_pair(false, mc->has_req, mc->req, mc->has_lim, mc->lim, r->mem_cur, sizeof r->mem_cur);
    if (!c->has_usage) {
        snprintf(r->cpu_rec, sizeof r->cpu_rec, "-");
        snprintf(r->mem_rec, sizeof r->mem_rec, "-");
        snprintf(r->cpu_delta, sizeof r->cpu_delta, "-");
        snprintf(r->mem_delta, sizeof r->mem_delta, "-");
        snprintf(r->conf, sizeof r->conf, "0/0m");
        snprintf(r->decision, sizeof r->decision, "skipped");
        snprintf(r->reason, sizeof r->reason, "no usage data");
        return;
    }
    const eng_result *res = &c->res;
    bool hr, hl;
    int64_t rq, lm;
    rec_values(&res->cpu, cc, &hr, &rq, &hl, &lm);
    if (hr)
        fmt_pair(true, hr, rq, hl, lm, r->cpu_rec, sizeof r->cpu_rec);
    else
        snprintf(r->cpu_rec, sizeof r->cpu_rec, "-");
    rec_values(&res->mem, mc, &hr, &rq, &hl, &lm);
    if (hr)
        fmt_pair(false, hr, rq, hl, lm, r->mem_rec, sizeof r->mem_rec);
    else
        snprintf(r->mem_rec, sizeof r->mem_rec, "-");
    fmt_delta(&res->cpu, cc, r->cpu_delta, sizeof r->cpu_delta);
    fmt_delta(&res->mem, mc, r->mem_delta, sizeof r->mem_delta);
    char span[24];
    fmt_span(c->c.use.span_s, span, sizeof span);
    snprintf(r->conf, sizeof r->conf, "%" PRId64 "/%s", c->c.use.samples, span);
    snprintf(r->decision, sizeof r->decision, "%s", eng_decision_str(res->decision));
    char a[96], b[96];
    res_reason("cpu", &res->cpu, p, a, sizeof a);
    res_reason("mem", &res->mem, p, b, sizeof b);
    snprintf(r->reason, sizeof r->reason, "%s; %s", a, b);
}

static bool shown(const plan *p, const plan_container *c)
{
    return !c->init || c->has_usage || p->eng.include_init;
}

#define NCOLS 12

static const char *const col_head[NCOLS] = {
    "NAMESPACE",   "WORKLOAD", "CONTAINER", "CPU REQ/LIM",  "CPU REC",  "CPU DELTA",
    "MEM REQ/LIM", "MEM REC",  "MEM DELTA", "SAMPLES/SPAN", "DECISION", "REASON"};

static int render_table(const plan *p, opbuf *out)
{
    opemit_table t;
    int rc = opemit_table_init(&t, NCOLS, col_head, "  ");
    if (rc)
        return rc;
    size_t n = 0, napply = 0, nunch = 0, nskip = 0;
    for (size_t i = 0; i < p->nwl && !rc; i++)
        for (size_t k = 0; k < p->wl[i].nctrs && !rc; k++) {
            const plan_container *c = &p->wl[i].ctrs[k];
            if (!shown(p, c))
                continue;
            row r;
            make_row(p, &p->wl[i], c, &r);
            const char *cells[NCOLS] = {r.ns,        r.wl,        r.ctr,      r.cpu_cur,
                                        r.cpu_rec,   r.cpu_delta, r.mem_cur,  r.mem_rec,
                                        r.mem_delta, r.conf,      r.decision, r.reason};
            rc = opemit_table_add(&t, cells);
            n++;
            if (!c->has_usage || c->res.decision == ENG_SKIPPED)
                nskip++;
            else if (c->res.decision == ENG_APPLY)
                napply++;
            else
                nunch++;
        }
    rc = rc ?: opemit_table_render(&t, out);
    rc = rc
             ?: opbuf_printf(out,
                             "\n%zu workloads, %zu containers: %zu apply, %zu unchanged, %zu "
                             "skipped\n",
                             p->nwl, n, napply, nunch, nskip);
    opemit_table_release(&t);
    return rc;
}

static const char *const csv_head[] = {"namespace",
                                       "kind",
                                       "name",
                                       "container",
                                       "cpu_request",
                                       "cpu_limit",
                                       "memory_request",
                                       "memory_limit",
                                       "rec_cpu_request",
                                       "rec_cpu_limit",
                                       "rec_memory_request",
                                       "rec_memory_limit",
                                       "cpu_delta",
                                       "memory_delta",
                                       "samples",
                                       "span_seconds",
                                       "oom_count",
                                       "decision",
                                       "cpu_decision",
                                       "memory_decision",
                                       "reason"};
#define CSV_COLS (sizeof csv_head / sizeof csv_head[0])

static int render_csv(const plan *p, opbuf *out)
{
    int rc = opemit_csv(out, csv_head, CSV_COLS);
    for (size_t i = 0; i < p->nwl && rc == 0; i++) {
        const plan_workload *w = &p->wl[i];
        for (size_t k = 0; k < w->nctrs && rc == 0; k++) {
            const plan_container *c = &w->ctrs[k];
            if (!shown(p, c))
                continue;
            row r;
            make_row(p, w, c, &r);
            char v[8][KQ_STR_MAX];
            fmt_val(true, c->c.cpu.has_req, c->c.cpu.req, v[0], sizeof v[0]);
            fmt_val(true, c->c.cpu.has_lim, c->c.cpu.lim, v[1], sizeof v[1]);
            fmt_val(false, c->c.mem.has_req, c->c.mem.req, v[2], sizeof v[2]);
            fmt_val(false, c->c.mem.has_lim, c->c.mem.lim, v[3], sizeof v[3]);
            bool hr = false, hl = false;
            int64_t rq = 0, lm = 0;
            if (c->has_usage)
                rec_values(&c->res.cpu, &c->c.cpu, &hr, &rq, &hl, &lm);
            fmt_val(true, hr, rq, v[4], sizeof v[4]);
            fmt_val(true, hl && hr, lm, v[5], sizeof v[5]);
            hr = hl = false;
            if (c->has_usage)
                rec_values(&c->res.mem, &c->c.mem, &hr, &rq, &hl, &lm);
            fmt_val(false, hr, rq, v[6], sizeof v[6]);
            fmt_val(false, hl && hr, lm, v[7], sizeof v[7]);
            for (int j = 0; j < 8; j++)
                if (!strcmp(v[j], "-"))
                    v[j][0] = 0;
            char num[3][24];
            snprintf(num[0], sizeof num[0], "%" PRId64, c->has_usage ? c->c.use.samples : 0);
            snprintf(num[1], sizeof num[1], "%" PRId64, c->has_usage ? c->c.use.span_s : 0);
            snprintf(num[2], sizeof num[2], "%" PRId64, c->has_usage ? c->c.use.oom_count : 0);
            const char *f[CSV_COLS] = {
                w->ns,
                w->kind,
                w->name,
                c->name,
                v[0],
                v[1],
                v[2],
                v[3],
                v[4],
                v[5],
                v[6],
                v[7],
                r.cpu_delta,
                r.mem_delta,
                num[0],
                num[1],
                num[2],
                r.decision,
                c->has_usage ? eng_decision_str(c->res.cpu.decision) : "skipped",
                c->has_usage ? eng_decision_str(c->res.mem.decision) : "skipped",
                r.reason};
            rc = opemit_csv(out, f, CSV_COLS);
        }
    }
    return rc;
}

/* --- json / yaml -------------------------------------------------------------------------- */

static cJSON *rl_json(bool cpu, bool has_req, int64_t req, bool has_lim, int64_t lim)
{
    cJSON *o = cJSON_CreateObject();
    char v[KQ_STR_MAX];
    if (o && has_req) {
        fmt_val(cpu, true, req, v, sizeof v);
        cJSON_AddStringToObject(o, "request", v);
    }
    if (o && has_lim) {
        fmt_val(cpu, true, lim, v, sizeof v);
        cJSON_AddStringToObject(o, "limit", v);
    }
    return o;
}

static cJSON *ctr_json(const plan *p, const plan_workload *w, const plan_container *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    row r;
    make_row(p, w, c, &r);
    cJSON_AddStringToObject(o, "name", c->name);
    if (c->init)
        cJSON_AddBoolToObject(o, "init", true);
    cJSON *cur = cJSON_AddObjectToObject(o, "current");
    if (cur) {
        cJSON_AddItemToObject(
            cur, "cpu",
            rl_json(true, c->c.cpu.has_req, c->c.cpu.req, c->c.cpu.has_lim, c->c.cpu.lim));
        cJSON_AddItemToObject(
            cur, "memory",
            rl_json(false, c->c.mem.has_req, c->c.mem.req, c->c.mem.has_lim, c->c.mem.lim));
    }
    cJSON_AddStringToObject(o, "decision", r.decision);
    cJSON_AddStringToObject(o, "reason", r.reason);
    if (!c->has_usage)
        return o;
    cJSON *rec = cJSON_AddObjectToObject(o, "recommended");
    bool hr, hl;
    int64_t rq, lm;
    if (rec) {
        rec_values(&c->res.cpu, &c->c.cpu, &hr, &rq, &hl, &lm);
        cJSON_AddItemToObject(rec, "cpu", rl_json(true, hr, rq, hl && hr, lm));
        rec_values(&c->res.mem, &c->c.mem, &hr, &rq, &hl, &lm);
        cJSON_AddItemToObject(rec, "memory", rl_json(false, hr, rq, hl && hr, lm));
    }
    cJSON_AddStringToObject(o, "cpuDelta", r.cpu_delta);
    cJSON_AddStringToObject(o, "memoryDelta", r.mem_delta);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    const eng_usage *us = &c->c.use;
    if (u) {
        char v[KQ_STR_MAX];
        if (isnan(us->cpu_cores))
            cJSON_AddNullToObject(u, "cpu");
        else {
            kq_fmt_cpu_milli((int64_t)ceil(us->cpu_cores * 1000), v, sizeof v);
            cJSON_AddStringToObject(u, "cpu", v);
        }
        fmt_val(false, us->mem_bytes >= 0, us->mem_bytes, v, sizeof v);
        cJSON_AddStringToObject(u, "memory", v);
        fmt_val(false, true, us->mem_peak_bytes, v, sizeof v);
        cJSON_AddStringToObject(u, "memoryPeak", v);
        cJSON_AddNumberToObject(u, "samples", (double)us->samples);
        cJSON_AddNumberToObject(u, "spanSeconds", (double)us->span_s);
        cJSON_AddNumberToObject(u, "oomCount", (double)us->oom_count);
    }
    cJSON_AddItemToObject(o, "explanation", eng_result_json(&c->res, c->name));
    return o;
}

cJSON *plan_to_json(const plan *p)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc)
        return NULL;
    char now[OPTIME_STR_MAX];
    optime_format((optime){.sec = p->now}, 0, now, sizeof now); /* "" when out of range */
    cJSON_AddStringToObject(doc, "now", now);
    cJSON_AddItemToObject(doc, "policy", pol_spec_to_json(&p->pol));
    cJSON *wls = cJSON_AddArrayToObject(doc, "workloads");
    for (size_t i = 0; wls && i < p->nwl; i++) {
        const plan_workload *w = &p->wl[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddItemToArray(wls, o);
        cJSON_AddStringToObject(o, "kind", w->kind);
        cJSON_AddStringToObject(o, "namespace", w->ns);
        cJSON_AddStringToObject(o, "name", w->name);
        cJSON_AddStringToObject(o, "file", w->file);
        cJSON *cs = cJSON_AddArrayToObject(o, "containers");
        for (size_t k = 0; cs && k < w->nctrs; k++)
            if (shown(p, &w->ctrs[k]))
                cJSON_AddItemToArray(cs, ctr_json(p, w, &w->ctrs[k]));
    }
    cJSON *msgs = cJSON_AddArrayToObject(doc, "messages");
    for (size_t i = 0; msgs && i < p->ndiags; i++)
        cJSON_AddItemToArray(msgs, cJSON_CreateString(p->diags[i]));
    return doc;
}

int plan_render(const plan *p, plan_fmt fmt, opbuf *out)
{
    if (fmt == PLAN_FMT_TABLE)
        return render_table(p, out);
    if (fmt == PLAN_FMT_CSV)
        return render_csv(p, out);
    return opemit_doc(plan_to_json(p), fmt == PLAN_FMT_YAML, out);
}

int plan_fmt_parse(const char *s)
{
    return opemit_fmt_parse(s);
}
