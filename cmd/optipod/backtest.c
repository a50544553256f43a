/*
 * optipod backtest: flags and wiring only; see lib/backtest/backtest.h.
 *
 *   optipod backtest -f DIR_OR_FILE... (--usage FILE | --prometheus-url URL)
 *                    [--policy FILE]... [--from RFC3339] [--to RFC3339] [-o table|json]
 *                    [the controller's --prometheus-* auth flags]
 *
 * The manifests give today's requests, the usage file (CSV or OpenMetrics,
 * read by plan's reader) or Prometheus (range queries, backtest/prom.h) the
 * history; each --policy (default: the CRD defaults) is replayed over the
 * same period, every reconcileInterval over its rollingWindow, and the
 * report compares them. With a file the period defaults to the newest
 * sample back to the oldest one plus the longest window, so every decision
 * sees a full window; with Prometheus to the last 7 days (and the window
 * before them is fetched too). Problems with the inputs go to stderr
 * (file:line), the report to stdout.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backtest.h"
#include "backtest/prom.h"
#include "backtest/render.h"
#include "metrics/promflags.h"
#include "plan.h"
#include "plan/plan.h"
#include "util/flags.h"
#include "util/optime.h"

#define BT_MAX_INPUTS   64
#define BT_MAX_POLICIES 8
#define BT_PROM_DAYS    7

/* One container's history, every pod merged. */
typedef struct ctr_hist {
    bt_point *cpu, *mem;
    size_t ncpu, nmem, capcpu, capmem;
    int64_t *oom;
    size_t noom, capoom;
} ctr_hist;

typedef struct collect {
    const plan *p;
    plan *notes;   /* the same plan: its diagnostics */
    ctr_hist *h;   /* every container of every workload, in order */
    size_t *first; /* per workload: the index of its first container in h */
    int64_t oldest, newest;
} collect;

static int append(bt_point **v, size_t *n, size_t *cap, const plan_sample *s, size_t k)
{
    if (*n + k > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *n + k)
            c *= 2;
        bt_point *nv = realloc(*v, c * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        *v = nv;
        *cap = c;
    }
    for (size_t i = 0; i < k; i++)
        (*v)[(*n)++] = (bt_point){s[i].t, s[i].v};
    return 0;
}

static int add_oom(ctr_hist *h, int64_t t)
{
    if (h->noom == h->capoom) {
        size_t cap = h->capoom ? h->capoom * 2 : 8;
        int64_t *no = realloc(h->oom, cap * sizeof *no);
        if (!no)
            return -ENOMEM;
        h->oom = no;
        h->capoom = cap;
    }
    h->oom[h->noom++] = t;
    return 0;
}

static void note_span(collect *c, const plan_sample *s, size_t n)
{
    if (!n)
        return;
    if (!c->oldest || s[0].t < c->oldest)
        c->oldest = s[0].t;
    if (s[n - 1].t > c->newest)
        c->newest = s[n - 1].t;
}

static int on_usage(const plan_workload *w, size_t ctr, const char *pod, const plan_sample *cpu,
                    size_t ncpu, const plan_sample *mem, size_t nmem, const plan_sample *oom,
                    size_t noom, void *ud)
{
    collect *c = ud;
    ctr_hist *h = &c->h[c->first[w - c->p->wl] + ctr];
    note_span(c, cpu, ncpu);
    note_span(c, mem, nmem);
    if (append(&h->cpu, &h->ncpu, &h->capcpu, cpu, ncpu) < 0 ||
        append(&h->mem, &h->nmem, &h->capmem, mem, nmem) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < noom; i++)
        if (add_oom(h, oom[i].t) < 0)
            return -ENOMEM;
    return 0;
}

/* A Prometheus series: CPU and memory points as they are; the OOMKilled
 * gauge's 0 -> 1 edges (or a first 1) as kill times, as plan reads it. */
static int on_series(size_t wi, const promql_series *s, void *ud)
{
    collect *c = ud;
    const plan_workload *w = &c->p->wl[wi];
    size_t j = 0;
    while (j < w->nctrs && strcmp(w->ctrs[j].name, s->container) != 0)
        j++;
    if (j == w->nctrs || s->n == 0)
        return 0; /* a container the manifest does not have */
    ctr_hist *h = &c->h[c->first[wi] + j];
    int cpu = strcmp(s->stat, "cpu") == 0, mem = strcmp(s->stat, "mem") == 0;
    for (size_t i = 0; i < s->n; i++) {
        plan_sample p = {s->t[i], s->v[i]};
        int rc = 0;
        if (cpu)
            rc = append(&h->cpu, &h->ncpu, &h->capcpu, &p, 1);
        else if (mem)
            rc = append(&h->mem, &h->nmem, &h->capmem, &p, 1);
        else if (s->v[i] >= 1 && (i == 0 || s->v[i - 1] < 1))
            rc = add_oom(h, s->t[i]);
        if (rc < 0)
            return rc;
    }
    plan_sample ends[2] = {{s->t[0], 0}, {s->t[s->n - 1], 0}};
    note_span(c, ends, 2);
    return 0;
}

/* How the workloads' pods were found in a namespace, as plan says it. */
static void on_namespace(const char *ns, const char *history, void *ud)
{
    collect *c = ud;
    plan_diag(c->notes, false, "prometheus: namespace %s: the window's pods found by %s", ns,
              history);
}

static int cmp_point(const void *a, const void *b)
{
    const bt_point *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

/* Workloads in (namespace, kind, name) order, as plan prints them. */
static const plan *sort_plan;
static int cmp_wl(const void *a, const void *b)
{
    const plan_workload *x = &sort_plan->wl[*(const size_t *)a],
                        *y = &sort_plan->wl[*(const size_t *)b];
    int c = strcmp(x->ns, y->ns);
    if (!c)
        c = strcmp(x->kind, y->kind);
    return c ? c : strcmp(x->name, y->name);
}

static int cmp_time(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return (*x > *y) - (*x < *y);
}

static void usage(FILE *f, const opflag *flags, int n)
{
    fprintf(f, "Usage: optipod backtest -f DIR_OR_FILE... --usage FILE [--policy FILE]...\n"
               "                        [--from RFC3339] [--to RFC3339] [-o table|json]\n"
               "       optipod backtest -f DIR_OR_FILE... --prometheus-url URL [--step 1m] ...\n\n"
               "Replay usage history through the recommendation engine as the controller would\n"
               "have run it every reconcileInterval, and report per container and in total: the\n"
               "changes it would have made, how often usage exceeded the recommended CPU\n"
               "request, the memory peak against the recommended request and limit, and the\n"
               "saving against today's requests. Several --policy files are compared side by\n"
               "side.\n\n");
    opflag_usage(f, flags, n);
}

/* A label per policy: its metadata.name, or the file when names repeat. */
static void label_policies(const plan *pols, const char *const *files, size_t n, const char **out)
{
    for (size_t i = 0; i < n; i++) {
        const char *name = pols[i].pol.name && *pols[i].pol.name ? pols[i].pol.name : files[i];
        out[i] = name;
        for (size_t j = 0; j < n; j++)
            if (j != i && pols[j].pol.name && pols[i].pol.name &&
                strcmp(pols[j].pol.name, pols[i].pol.name) == 0)
                out[i] = files[i];
    }
}

/* The flags' targets: one backtest per process. */
static const char *inputs_v[BT_MAX_INPUTS], *policies_v[BT_MAX_POLICIES];
static struct {
    opflag_list inputs, policies;
    const char *usage_file, *from_s, *to_s, *output;
    uint64_t step_ms;
    int help;
} bf = {.inputs = {inputs_v, 0, BT_MAX_INPUTS},
        .policies = {policies_v, 0, BT_MAX_POLICIES},
        .output = "table",
        .step_ms = 60000};
static mpromflags bpf = {.headers = {bpf.hdr_v, 0, MPROM_MAX_HEADERS}};

static const opflag flags[] = {
    {"filename", 'f', OPFLAG_LIST, &bf.inputs,
     "manifest file or directory: today's requests (repeatable)"},
    {"usage", 0, OPFLAG_STRING, &bf.usage_file, "usage history: CSV or OpenMetrics text"},
    MPROMFLAGS_OPFLAGS(&bpf),
    {"prometheus", 0, OPFLAG_STRING, &bpf.url, "the old name of --prometheus-url"},
    {"policy", 0, OPFLAG_LIST, &bf.policies,
     "OptimizationPolicy YAML to replay (repeatable, up to 8; default: the CRD defaults)"},
    {"from", 0, OPFLAG_STRING, &bf.from_s,
     "first decision, RFC 3339 (default: the oldest sample plus the longest window; with "
     "Prometheus, 7 days before --to)"},
    {"to", 0, OPFLAG_STRING, &bf.to_s,
     "end of the replay, RFC 3339 (default: the newest sample; with Prometheus, now)"},
    {"step", 0, OPFLAG_DURATION, &bf.step_ms,
     "with Prometheus: the resolution of the history (default 1m; coarser when the range "
     "needs it)"},
    {"output", 'o', OPFLAG_STRING, &bf.output, "table or json (default table)"},
    {"help", 'h', OPFLAG_BOOL, &bf.help, "show this help"},
};

const opflag *backtest_flags(int *n)
{
    *n = (int)(sizeof flags / sizeof *flags);
    return flags;
}

int backtest_main(int argc, char **argv)
{
    const int nflags = (int)(sizeof flags / sizeof *flags);
    int rest = 0;
    operr err;
    if (opflag_parse(flags, nflags, argc, argv, &rest, &err) < 0) {
        fprintf(stderr, "optipod backtest: %s\n", err.msg);
        return 2;
    }
    if (bf.help) {
        usage(stdout, flags, nflags);
        return 0;
    }
    const opflag_list inputs = bf.inputs, policies = bf.policies;
    const char *usage_file = bf.usage_file, *from_s = bf.from_s, *to_s = bf.to_s;
    const char *output = bf.output;
    uint64_t step_ms = bf.step_ms;
    int64_t from = 0, to = 0;
    optime fromt = {0}, tot = {0};
    const char *bad = NULL;
    mprom_opts po = {0};
    int prom = mpromflags_opts(&bpf, &po, &err);
    if (prom < 0) {
        fprintf(stderr, "optipod backtest: %s\n", err.msg);
        return 2;
    }
    prom = prom == 0;
    if (rest < argc)
        bad = "unexpected argument";
    else if (inputs.n == 0)
        bad = "-f is required (the manifests give today's requests)";
    else if (!usage_file == !prom)
        bad = "exactly one of --usage and --prometheus-url is required";
    else if (strcmp(output, "table") != 0 && strcmp(output, "json") != 0)
        bad = "-o must be table or json";
    else if (from_s && optime_parse(from_s, 0, &fromt) < 0)
        bad = "--from must be an RFC 3339 time like 2026-01-02T15:04:05Z";
    else if (to_s && optime_parse(to_s, 0, &tot) < 0)
        bad = "--to must be an RFC 3339 time like 2026-01-02T15:04:05Z";
    from = fromt.sec;
    to = tot.sec;
    if (bad) {
        fprintf(stderr, "optipod backtest: %s\n", bad);
        usage(stderr, flags, nflags);
        return 2;
    }

    int status = 0;
    size_t npol = policies.n ? (size_t)policies.n : 1;
    plan pols[BT_MAX_POLICIES], data;
    const char *labels[BT_MAX_POLICIES];
    const char *files[BT_MAX_POLICIES] = {"crd-defaults"};
    collect col = {.p = &data, .notes = &data};
    size_t nctrs = 0, nrows = 0, *order = NULL;
    bt_row *rows = NULL;
    bt_run runs[BT_MAX_POLICIES];
    bt_ws *ws = NULL;
    opbuf out;
    opbuf_init(&out, OPBUF_DEFAULT_MAX);
    plan_init(&data);
    plan_keep_history(&data); /* the replay walks the whole history, not one window */
    for (size_t i = 0; i < npol; i++)
        plan_init(&pols[i]);
    for (int i = 0; i < policies.n; i++) {
        files[i] = policies.v[i];
        if (plan_load_policy(&pols[i], policies.v[i], &err) < 0) {
            fprintf(stderr, "optipod backtest: policy %s\n", err.msg);
            status = 2;
            goto done;
        }
    }
    label_policies(pols, files, npol, labels);
    if (!policies.n)
        labels[0] = "crd-defaults";
    for (int i = 0; i < inputs.n; i++)
        if (plan_load_manifests(&data, inputs.v[i], &err) < 0) {
            fprintf(stderr, "optipod backtest: %s\n", err.msg);
            status = 1;
        }
    if (usage_file && plan_load_usage(&data, usage_file, &err) < 0) {
        fprintf(stderr, "optipod backtest: usage %s\n", err.msg);
        status = 1;
        goto done;
    }
    col.first = calloc(data.nwl + 1, sizeof *col.first);
    for (size_t i = 0; col.first && i < data.nwl; i++) {
        col.first[i] = nctrs;
        nctrs += data.wl[i].nctrs;
    }
    col.h = calloc(nctrs + 1, sizeof *col.h);
    rows = calloc(npol * (nctrs + 1), sizeof *rows);
    order = calloc(data.nwl + 1, sizeof *order);
    for (size_t i = 0; order && i < data.nwl; i++)
        order[i] = i;
    sort_plan = &data;
    if (order)
        qsort(order, data.nwl, sizeof *order, cmp_wl);
    if (!col.first || !col.h || !rows || !order || bt_ws_new(&ws) < 0 ||
        (usage_file && plan_foreach_usage(&data, on_usage, &col) < 0))
        goto oom;
    int64_t longest = 0;
    for (size_t k = 0; k < npol; k++)
        longest = pols[k].pol.window_ms / 1000 > longest ? pols[k].pol.window_ms / 1000 : longest;
    if (prom) {
        if (!to_s)
            to = (int64_t)time(NULL);
        if (!from_s)
            from = to - BT_PROM_DAYS * 86400;
        if (from >= to) {
            fprintf(stderr, "optipod backtest: --from must be before --to\n");
            status = 2;
            goto done;
        }
        bt_prom_workload *pw = calloc(data.nwl + 1, sizeof *pw);
        if (!pw)
            goto oom;
        for (size_t i = 0; i < data.nwl; i++)
            pw[i] = (bt_prom_workload){data.wl[i].ns, data.wl[i].kind, data.wl[i].name};
        int64_t start = from - longest;
        int64_t step = bt_prom_step(start, to, step_ms >= 1000 ? (int64_t)step_ms / 1000 : 1);
        int rc =
            bt_prom_fetch(&po, pw, data.nwl, start, to, step, on_series, on_namespace, &col, &err);
        free(pw);
        if (rc == -ENOMEM)
            goto oom;
        if (rc < 0) {
            fprintf(stderr, "optipod backtest: %s\n", err.msg);
            status = 1;
            goto done;
        }
    }
    for (size_t i = 0; i < nctrs; i++) {
        /* every pod's samples, merged in time order (qsort wants no NULL, even for none) */
        if (col.h[i].ncpu > 1)
            qsort(col.h[i].cpu, col.h[i].ncpu, sizeof *col.h[i].cpu, cmp_point);
        if (col.h[i].nmem > 1)
            qsort(col.h[i].mem, col.h[i].nmem, sizeof *col.h[i].mem, cmp_point);
        if (col.h[i].noom > 1)
            qsort(col.h[i].oom, col.h[i].noom, sizeof *col.h[i].oom, cmp_time);
    }
    if (!from_s && !prom)
        from = col.oldest + longest;
    if (!to_s && !prom)
        to = col.newest;
    if (!col.newest) {
        fprintf(stderr, "optipod backtest: %s: no usage of any container in the manifests\n",
                usage_file ? usage_file : bpf.url);
        status = 1;
        goto done;
    }
    if (from >= to) {
        char w[32], a[32], b[32], f[32], t[32];
        pol_format_duration(longest * 1000, w, sizeof w);
        bt_fmt_time(col.oldest, a, sizeof a);
        bt_fmt_time(col.newest, b, sizeof b);
        bt_fmt_time(from, f, sizeof f);
        bt_fmt_time(to, t, sizeof t);
        fprintf(stderr,
                "optipod backtest: nothing to replay from %s to %s: the usage spans %s .. %s, "
                "and by default the first decision needs a full window (%s) of history before "
                "it; give --from or a policy with a shorter rollingWindow\n",
                f, t, a, b, w);
        status = 1;
        goto done;
    }
    for (size_t k = 0; k < npol; k++) {
        bt_run *run = &runs[k];
        memset(run, 0, sizeof *run);
        run->label = labels[k];
        run->period =
            (bt_period){from, to, pols[k].pol.reconcile_ms / 1000, pols[k].pol.window_ms / 1000};
        run->rows = rows + k * nctrs;
        nrows = 0;
        for (size_t o = 0; o < data.nwl; o++) {
            size_t i = order[o];
            const plan_workload *w = &data.wl[i];
            for (size_t j = 0; j < w->nctrs; j++) {
                const plan_container *pc = &w->ctrs[j];
                const ctr_hist *h = &col.h[col.first[i] + j];
                if (!h->ncpu && !h->nmem) {
                    if (k == 0 && (!pc->init || pols[k].eng.include_init) &&
                        plan_diag(&data, true,
                                  "%s: %s %s/%s: container \"%s\": no usage; not "
                                  "replayed",
                                  w->file, w->kind, w->ns, w->name, pc->name) < 0)
                        goto oom;
                    continue;
                }
                bt_row *row = (bt_row *)&run->rows[nrows++];
                *row = (bt_row){w->ns, w->kind, w->name, pc->name, {0}};
                eng_container today = pc->c;
                today.name = pc->name;
                today.opted_out = pol_excludes_container(&pols[k].pol, pc->name);
                bt_series s = {h->cpu, h->ncpu, h->mem, h->nmem, h->oom, h->noom};
                int rc = bt_replay(ws, &pols[k].eng, &today, &s, &run->period, &row->r);
                if (rc == -ENOMEM)
                    goto oom;
                if (rc < 0) {
                    fprintf(stderr, "optipod backtest: %s/%s container %s: %s\n", w->ns, w->name,
                            pc->name, strerror(-rc));
                    status = 1;
                    nrows--;
                    continue;
                }
                bt_total_add(&run->total, &row->r);
            }
        }
        run->nrows = nrows;
    }
    int rc = strcmp(output, "json") == 0 ? bt_render_json(runs, npol, &out)
                                         : bt_render_table(runs, npol, &out);
    if (rc < 0)
        goto oom;
    for (size_t i = 0; i < data.ndiags; i++)
        fprintf(stderr, "%s\n", data.diags[i]);
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    if (data.problems || nrows == 0)
        status = status ? status : 1;
    goto done;
oom:
    fprintf(stderr, "optipod backtest: out of memory\n");
    status = 1;
done:
    fflush(stdout);
    for (size_t i = 0; col.h && i < nctrs; i++) {
        free(col.h[i].cpu);
        free(col.h[i].mem);
        free(col.h[i].oom);
    }
    free(col.h);
    free(col.first);
    free(order);
    free(rows);
    bt_ws_free(ws);
    opbuf_release(&out);
    plan_release(&data);
    for (size_t i = 0; i < npol; i++)
        plan_release(&pols[i]);
    return status;
}
