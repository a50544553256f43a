/*
 * cli renderers: recommendations (table, json, yaml, csv), explain, savings.
 * All output is a pure function of the cli_state, so it is golden-tested.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/quantity.h"
#include "util/emit.h" /* the same YAML, CSV and tables as `optipod plan` */

static const char *const slot_json[CLI_NV] = {"cpuRequest", "memoryRequest", "cpuLimit",
                                              "memoryLimit"};

int cli_fmt_parse(const char *s)
{
    return opemit_fmt_parse(s);
}

/* Value of a slot in millicores (CPU) or bytes (memory); 0 when unset. */
static int slot_value(int v, const char *s, int64_t *out)
{
    *out = 0;
    if (!s)
        return -ENOENT;
    return (v == CLI_CPU_REQ || v == CLI_CPU_LIM) ? kq_parse_cpu_milli(s, out, NULL)
                                                  : kq_parse_bytes(s, out, NULL);
}

static void fmt_qty(int v, int64_t x, char *buf, size_t size)
{
    if (v == CLI_CPU_REQ || v == CLI_CPU_LIM)
        kq_fmt_cpu_milli(x, buf, size);
    else
        kq_fmt_mem_bytes(x, buf, size);
}

/* "-250m (-50%)", "+64Mi", "0"; "" when there is no recommendation. */
static void delta(const cli_ctr *c, int v, char *buf, size_t size, int pct)
{
    int64_t cur, rec;
    buf[0] = '\0';
    if (slot_value(v, c->rec[v], &rec))
        return;
    slot_value(v, c->cur[v], &cur);
    int64_t d = rec - cur;
    char q[KQ_STR_MAX];
    fmt_qty(v, d < 0 ? -d : d, q, sizeof q);
    if (d == 0) {
        snprintf(buf, size, "0");
        return;
    }
    if (pct && cur > 0)
        snprintf(buf, size, "%c%s (%+.0f%%)", d < 0 ? '-' : '+', q,
                 100.0 * (double)d / (double)cur);
    else
        snprintf(buf, size, "%c%s", d < 0 ? '-' : '+', q);
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static const char *dash(const char *s)
{
    return s ? s : "-";
}

static const char *ns_of(const cli_workload *w)
{
    return w->proj->ns ? w->proj->ns : "";
}

/* ---- table -------------------------------------------------------------------------------- */

enum { COLS = 14 };

static int render_table(const cli_state *s, opbuf *out)
{
    static const char *const head[COLS] = {"NAMESPACE", "WORKLOAD",         "CONTAINER", "CPU REQ",
                                           "CPU REC",   "CPU DELTA",        "MEM REQ",   "MEM REC",
                                           "MEM DELTA", "LIMITS (CPU/MEM)", "SAMPLES",   "STRATEGY",
                                           "APPLIED",   "CONFLICTS"};
    opemit_table t;
    int rc = opemit_table_init(&t, COLS, head, "   ");
    size_t rows = 0;
    for (size_t i = 0; !rc && i < s->nwl; i++) {
        const cli_workload *w = &s->wl[i];
        for (size_t j = 0; !rc && j < w->nctrs; j++) {
            const cli_ctr *c = &w->ctrs[j];
            if (!c->has_rec)
                continue;
            char wl[320], ctr[160], dc[64], dm[64], lim[160], smp[32];
            snprintf(wl, sizeof wl, "%s/%s", w->kind, w->proj->name);
            snprintf(ctr, sizeof ctr, "%s%s", c->name, c->init ? " (init)" : "");
            delta(c, CLI_CPU_REQ, dc, sizeof dc, 1);
            delta(c, CLI_MEM_REQ, dm, sizeof dm, 1);
            if (c->rec[CLI_CPU_LIM] || c->rec[CLI_MEM_LIM])
                snprintf(lim, sizeof lim, "%s/%s -> %s/%s", dash(c->cur[CLI_CPU_LIM]),
                         dash(c->cur[CLI_MEM_LIM]), dash(c->rec[CLI_CPU_LIM]),
                         dash(c->rec[CLI_MEM_LIM]));
            else
                snprintf(lim, sizeof lim, "%s/%s", dash(c->cur[CLI_CPU_LIM]),
                         dash(c->cur[CLI_MEM_LIM]));
            if (c->samples >= 0)
                snprintf(smp, sizeof smp, "%lld", (long long)c->samples);
            else
                snprintf(smp, sizeof smp, "-");
            const char *cells[COLS] = {ns_of(w),
                                       wl,
                                       ctr,
                                       dash(c->cur[CLI_CPU_REQ]),
                                       dash(c->rec[CLI_CPU_REQ]),
                                       dc,
                                       dash(c->cur[CLI_MEM_REQ]),
                                       dash(c->rec[CLI_MEM_REQ]),
                                       dm,
                                       lim,
                                       smp,
                                       w->strategy[0] ? w->strategy : "-",
                                       c->applied ? "yes" : "no",
                                       c->conflicts[0] ? c->conflicts : "-"};
            rc = opemit_table_add(&t, cells);
            rows++;
        }
    }
    if (!rc)
        rc = rows ? opemit_table_render(&t, out) : opbuf_puts(out, "No recommendations found.\n");
    opemit_table_release(&t);
    return rc;
}

/* ---- csv / json / yaml --------------------------------------------------------------------------
 */

static int render_csv(const cli_state *s, opbuf *out)
{
    static const char *const head[] = {"namespace",
                                       "kind",
                                       "name",
                                       "container",
                                       "init",
                                       "replicas",
                                       "cpu_request",
                                       "cpu_request_recommended",
                                       "cpu_request_delta",
                                       "memory_request",
                                       "memory_request_recommended",
                                       "memory_request_delta",
                                       "cpu_limit",
                                       "cpu_limit_recommended",
                                       "memory_limit",
                                       "memory_limit_recommended",
                                       "samples",
                                       "strategy",
                                       "applied",
                                       "conflicting_managers"};
    int rc = opemit_csv(out, head, sizeof head / sizeof head[0]);
    for (size_t i = 0; !rc && i < s->nwl; i++) {
        const cli_workload *w = &s->wl[i];
        for (size_t j = 0; !rc && j < w->nctrs; j++) {
            const cli_ctr *c = &w->ctrs[j];
            if (!c->has_rec)
                continue;
            char dc[64], dm[64], rep[32], smp[32];
            delta(c, CLI_CPU_REQ, dc, sizeof dc, 0);
            delta(c, CLI_MEM_REQ, dm, sizeof dm, 0);
            snprintf(rep, sizeof rep, "%lld", (long long)w->replicas);
            if (c->samples >= 0)
                snprintf(smp, sizeof smp, "%lld", (long long)c->samples);
            else
                smp[0] = '\0';
            const char *f[] = {ns_of(w),
                               w->kind,
                               w->proj->name,
                               c->name,
                               c->init ? "true" : "false",
                               rep,
                               nz(c->cur[CLI_CPU_REQ]),
                               nz(c->rec[CLI_CPU_REQ]),
                               dc,
                               nz(c->cur[CLI_MEM_REQ]),
                               nz(c->rec[CLI_MEM_REQ]),
                               dm,
                               nz(c->cur[CLI_CPU_LIM]),
                               nz(c->rec[CLI_CPU_LIM]),
                               nz(c->cur[CLI_MEM_LIM]),
                               nz(c->rec[CLI_MEM_LIM]),
                               smp,
                               w->strategy,
                               c->applied ? "true" : "false",
                               c->conflicts};
            rc = opemit_csv(out, f, sizeof f / sizeof f[0]);
        }
    }
    return rc;
}

static cJSON *slots_json(const char *const *v)
{
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; o && k < CLI_NV; k++)
        if (v[k])
            cJSON_AddStringToObject(o, slot_json[k], v[k]);
    return o;
}

static cJSON *to_json(const cli_state *s)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "recommendations");
    if (!arr) {
        cJSON_Delete(root);
        return NULL;
    }
    for (size_t i = 0; i < s->nwl; i++) {
        const cli_workload *w = &s->wl[i];
        for (size_t j = 0; j < w->nctrs; j++) {
            const cli_ctr *c = &w->ctrs[j];
            if (!c->has_rec)
                continue;
            cJSON *o = cJSON_CreateObject();
            if (!o)
                break;
            cJSON_AddItemToArray(arr, o);
            cJSON_AddStringToObject(o, "namespace", ns_of(w));
            cJSON_AddStringToObject(o, "kind", w->kind);
            cJSON_AddStringToObject(o, "name", w->proj->name);
            cJSON_AddStringToObject(o, "container", c->name);
            if (c->init)
                cJSON_AddTrueToObject(o, "init");
            cJSON_AddNumberToObject(o, "replicas", (double)w->replicas);
            cJSON_AddItemToObject(o, "current", slots_json(c->cur));
            cJSON_AddItemToObject(o, "recommended", slots_json(c->rec));
            cJSON *d = cJSON_AddObjectToObject(o, "delta");
            char b[64];
            delta(c, CLI_CPU_REQ, b, sizeof b, 0);
            if (d && b[0])
                cJSON_AddStringToObject(d, "cpuRequest", b);
            delta(c, CLI_MEM_REQ, b, sizeof b, 0);
            if (d && b[0])
                cJSON_AddStringToObject(d, "memoryRequest", b);
            if (c->samples >= 0)
                cJSON_AddNumberToObject(o, "samples", (double)c->samples);
            else
                cJSON_AddNullToObject(o, "samples");
            cJSON_AddStringToObject(o, "strategy", w->strategy);
            cJSON_AddStringToObject(o, "mode", w->mode);
            if (w->rec)
                cJSON_AddStringToObject(o, "policy", w->rec->policy);
            if (c->rule)
                cJSON_AddStringToObject(o, "rule", c->rule);
            cJSON_AddBoolToObject(o, "applied", c->applied);
            cJSON *m = cJSON_AddArrayToObject(o, "conflictingManagers");
            char tmp[sizeof c->conflicts];
            snprintf(tmp, sizeof tmp, "%s", c->conflicts);
            for (char *save = NULL, *t = strtok_r(tmp, ", ", &save); m && t;
                 t = strtok_r(NULL, ", ", &save))
                cJSON_AddItemToArray(m, cJSON_CreateString(t));
        }
    }
    return root;
}

int cli_render_recommendations(const cli_state *s, enum cli_fmt fmt, opbuf *out)
{
    if (fmt == CLI_FMT_TABLE)
        return render_table(s, out);
    if (fmt == CLI_FMT_CSV)
        return render_csv(s, out);
    return opemit_doc(to_json(s), fmt == CLI_FMT_YAML, out);
}

/* ---- explain -------------------------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    return s ? s : "";
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int has(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k) != NULL;
}

static int explain_step(const cJSON *st, opbuf *out)
{
    const char *k = jstr(st, "step");
    if (!strcmp(k, "skip")) {
        if (has(st, "samples"))
            return opbuf_printf(out, "      skipped: %s (%.0f samples over %.1fh)\n",
                                jstr(st, "reason"), jnum(st, "samples"),
                                jnum(st, "historySeconds") / 3600);
        return opbuf_printf(out, "      skipped: %s%s\n", jstr(st, "reason"),
                            !strcmp(jstr(st, "reason"), "hpa-cpu")
                                ? " (an HPA scales this workload on CPU; CPU is left to it)"
                                : "");
    }
    if (!strcmp(k, "percentile"))
        return opbuf_printf(out, "      %s of usage over %.0f samples: %s\n",
                            jstr(st, "percentile"), jnum(st, "samples"), jstr(st, "value"));
    if (!strcmp(k, "safety"))
        return opbuf_printf(out, "      x safety factor %g: %s -> %s\n", jnum(st, "factor"),
                            jstr(st, "from"), jstr(st, "to"));
    if (!strcmp(k, "peak-floor"))
        return opbuf_printf(out, "      raised to the observed peak: %s -> %s\n", jstr(st, "from"),
                            jstr(st, "to"));
    if (!strcmp(k, "oom-bump"))
        return opbuf_printf(
            out, "      OOM history: %.0f OOMKilled (memory at the OOM %s): %s -> %s\n",
            jnum(st, "ooms"), jstr(st, "oomMemory"), jstr(st, "from"), jstr(st, "to"));
    if (!strcmp(k, "round"))
        return opbuf_printf(out, "      rounded up to %s: %s -> %s\n", jstr(st, "unit"),
                            jstr(st, "from"), jstr(st, "to"));
    if (!strcmp(k, "clamp-min"))
        return opbuf_printf(out, "      CLIPPED by the policy's min bound: %s -> %s\n",
                            jstr(st, "from"), jstr(st, "to"));
    if (!strcmp(k, "clamp-max"))
        return opbuf_printf(out, "      CLIPPED by the policy's max bound: %s -> %s\n",
                            jstr(st, "from"), jstr(st, "to"));
    if (!strcmp(k, "oom-cooling"))
        return opbuf_printf(out, "      OOM cooling: not lowered after a recent OOM (%s -> %s)\n",
                            jstr(st, "from"), jstr(st, "to"));
    if (!strcmp(k, "decrease-cap"))
        return opbuf_printf(
            out, "      CLIPPED by the gradual-decrease rule (at most %.0f%% per step): %s -> %s\n",
            jnum(st, "maxDecrease") * 100, jstr(st, "from"), jstr(st, "to"));
    if (!strcmp(k, "limit-cap"))
        return opbuf_printf(out, "      CLIPPED to the existing limit (requests only): %s -> %s\n",
                            jstr(st, "from"), jstr(st, "to"));
    if (!strcmp(k, "threshold"))
        return opbuf_printf(
            out, "      change threshold %.0f%%: current %s, recommended %s (a %.1f%% change)%s\n",
            jnum(st, "threshold") * 100, jstr(st, "current"), jstr(st, "recommended"),
            jnum(st, "change") * 100,
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "within")) ? ": within it, kept"
                                                                         : "");
    if (!strcmp(k, "limit"))
        return opbuf_printf(out, "      limit: %s from request %s (%s %g)\n", jstr(st, "limit"),
                            jstr(st, "request"), has(st, "multiplier") ? "multiplier" : "ratio",
                            has(st, "multiplier") ? jnum(st, "multiplier") : jnum(st, "ratio"));
    return opbuf_printf(out, "      %s\n", k);
}

static int explain_res(const cJSON *r, const char *what, opbuf *out)
{
    int rc = opbuf_printf(out, "    %s: %s", what, jstr(r, "decision"));
    if (!rc && has(r, "reason"))
        rc = opbuf_printf(out, " (%s)", jstr(r, "reason"));
    if (!rc && has(r, "request"))
        rc = opbuf_printf(out, ", request %s", jstr(r, "request"));
    if (!rc && has(r, "limit"))
        rc = opbuf_printf(out, ", limit %s", jstr(r, "limit"));
    rc = rc ?: opbuf_puts(out, "\n");
    const cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(r, "steps"))
    {
        if (!rc)
            rc = explain_step(st, out);
    }
    return rc;
}

/* Memory as Kubernetes users read it: a byte count that is no binary multiple
 * (a measured usage, 459206680) as the nearest Mi (438Mi), as kubectl top
 * prints it; quantities with a unit are left as they are. In place, over the
 * value fields of a memory explanation. */
static void humanize_mem(cJSON *o)
{
    static const char *const keys[] = {"value",   "from",        "to",    "current",
                                       "request", "recommended", "limit", "oomMemory"};
    cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            humanize_mem(it);
            continue;
        }
        int known = 0;
        for (size_t k = 0; it->string && k < sizeof keys / sizeof keys[0]; k++)
            known |= !strcmp(it->string, keys[k]);
        int64_t b;
        if (!known || !cJSON_IsString(it) || kq_parse_bytes(it->valuestring, &b, NULL) ||
            b % 1024 == 0 || b < 1024)
            continue;
        char buf[48];
        if (b >= (1LL << 20))
            snprintf(buf, sizeof buf, "%lldMi", (long long)((b + (1LL << 19)) >> 20));
        else
            snprintf(buf, sizeof buf, "%lldKi", (long long)((b + 512) >> 10));
        cJSON_SetValuestring(it, buf);
    }
}

/* The record in the shape of the explanation annotation of older controllers. */
static cJSON *record_explanation(const cli_workload *w)
{
    const rrec *r = w->rec;
    cJSON *e = cJSON_CreateObject(), *ctrs = cJSON_AddArrayToObject(e, "containers");
    if (!ctrs) {
        cJSON_Delete(e);
        return NULL;
    }
    cJSON_AddStringToObject(e, "policy", r->policy);
    cJSON_AddStringToObject(e, "mode", r->mode);
    cJSON_AddStringToObject(e, "provider", r->provider);
    cJSON_AddStringToObject(e, "window", r->window);
    cJSON_AddNumberToObject(e, "percentile", r->percentile);
    cJSON_AddNumberToObject(e, "safetyFactor", r->safety_factor);
    if (r->history[0]) {
        cJSON_AddStringToObject(e, "history", r->history);
        cJSON_AddNumberToObject(e, "historyPods", r->history_pods);
    }
    for (size_t i = 0; i < r->n; i++) {
        const rrec_container *c = &r->c[i];
        cJSON *x = c->explanation ? cJSON_Parse(c->explanation) : NULL;
        if (!cJSON_IsObject(x)) {
            cJSON_Delete(x);
            x = cJSON_CreateObject();
        }
        if (!x)
            break;
        cJSON_DeleteItemFromObjectCaseSensitive(x, "container");
        cJSON_AddStringToObject(x, "container", c->name);
        if (c->init && !has(x, "init"))
            cJSON_AddTrueToObject(x, "init");
        if (!has(x, "decision"))
            cJSON_AddStringToObject(x, "decision", c->rule);
        cJSON_AddItemToArray(ctrs, x);
    }
    return e;
}

int cli_render_explain(const cli_workload *w, opbuf *out, operr *err)
{
    if (!w->rec && !w->explanation)
        return operr_set(err, -ENOENT,
                         "%s %s/%s: no OptimizationRecommendation record and no "
                         "optipod.io/explanation annotation (is the controller running?)",
                         w->kind, ns_of(w), w->proj->name);
    cJSON *e = w->rec ? record_explanation(w) : cJSON_Parse(w->explanation);
    if (!e)
        return operr_set(err, -EINVAL, "%s %s/%s: optipod.io/explanation is not JSON", w->kind,
                         ns_of(w), w->proj->name);
    int rc = opbuf_printf(out, "%s %s/%s\n", w->kind, ns_of(w), w->proj->name);
    rc = rc
             ?: opbuf_printf(out, "  policy:      %s (mode %s, strategy %s)\n", jstr(e, "policy"),
                             jstr(e, "mode"), w->strategy[0] ? w->strategy : "-");
    for (size_t i = 0; !rc && i < w->nctrs; i++) {
        const cli_ctr *c = &w->ctrs[i];
        if (!c->has_rec)
            continue;
        char cur[64], rec[64];
        snprintf(cur, sizeof cur, "%s/%s", c->cur[CLI_CPU_REQ] ? c->cur[CLI_CPU_REQ] : "-",
                 c->cur[CLI_MEM_REQ] ? c->cur[CLI_MEM_REQ] : "-");
        snprintf(rec, sizeof rec, "%s/%s", c->rec[CLI_CPU_REQ] ? c->rec[CLI_CPU_REQ] : "-",
                 c->rec[CLI_MEM_REQ] ? c->rec[CLI_MEM_REQ] : "-");
        rc = opbuf_printf(out, "  %-12s requests %s, recommended %s, applied %s\n", c->name, cur,
                          rec, c->applied ? "yes" : "no");
    }
    rc = rc
             ?: opbuf_printf(out, "  provider:    %s, window %s\n", jstr(e, "provider"),
                             jstr(e, "window"));
    rc = rc
             ?: opbuf_printf(out, "  percentile:  P%.0f, safety factor %g\n", jnum(e, "percentile"),
                             jnum(e, "safetyFactor"));
    if (!rc && has(e, "history"))
        rc = opbuf_printf(
            out, "  history:     %.0f pods of the window, found by %s\n", jnum(e, "historyPods"),
            !strcmp(jstr(e, "history"), "kube-state-metrics") ? "kube-state-metrics owner series"
            : !strcmp(jstr(e, "history"), "pod-names")        ? "their generated names"
                                                              : jstr(e, "history"));
    if (!rc && has(e, "truncated"))
        rc = opbuf_printf(out, "  (explanation truncated by the controller: %s dropped)\n",
                          jstr(e, "truncated"));
    const cJSON *c;
    int hpa = 0, oom = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(e, "containers"))
    {
        if (rc)
            break;
        const cli_ctr *cc = NULL;
        for (size_t i = 0; i < w->nctrs; i++)
            if (!strcmp(w->ctrs[i].name, jstr(c, "container")))
                cc = &w->ctrs[i];
        rc =
            opbuf_printf(out, "  container %s%s: %s", jstr(c, "container"),
                         cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "init")) ? " (init)" : "",
                         jstr(c, "decision"));
        if (!rc && cc && cc->samples >= 0)
            rc = opbuf_printf(out, " (%lld samples)", (long long)cc->samples);
        rc = rc ?: opbuf_puts(out, "\n");
        rc = rc ?: explain_res(cJSON_GetObjectItemCaseSensitive(c, "cpu"), "cpu", out);
        humanize_mem(cJSON_GetObjectItemCaseSensitive(c, "memory"));
        rc = rc ?: explain_res(cJSON_GetObjectItemCaseSensitive(c, "memory"), "memory", out);
        if (!strcmp(jstr(cJSON_GetObjectItemCaseSensitive(c, "cpu"), "reason"), "hpa-cpu"))
            hpa = 1;
        char *t = cJSON_PrintUnformatted(c);
        if (t && strstr(t, "\"oom-"))
            oom = 1;
        cJSON_free(t);
    }
    if (!rc)
        rc = opbuf_printf(out, "  HPA:         %s\n",
                          hpa ? "scales on CPU: CPU left alone, memory sized"
                              : "none scaling on CPU");
    if (!rc)
        rc = opbuf_printf(out, "  OOM history: %s\n",
                          oom ? "OOM kills shaped the memory value (see above)"
                              : "none in the window");
    cJSON_Delete(e);
    return rc;
}

/* ---- savings -------------------------------------------------------------------------------- */

typedef struct tot {
    char ns[256];
    int64_t cpu_cur, cpu_rec; /* millicores x replicas */
    int64_t mem_cur, mem_rec; /* bytes x replicas */
} tot;

/* acc + v * n, saturating: quantities and replicas come from objects anyone may
 * write, and a wrapped total would print as a negative cost. */
static int64_t sat_madd(int64_t acc, int64_t v, int64_t n)
{
    int64_t m, r;
    if (__builtin_mul_overflow(v, n, &m))
        m = (v < 0) != (n < 0) ? INT64_MIN : INT64_MAX;
    if (__builtin_add_overflow(acc, m, &r))
        r = m < 0 ? INT64_MIN : INT64_MAX;
    return r;
}

static int add_line(opbuf *out, const tot *t, double cp, double mp)
{
    double gib = 1024.0 * 1024 * 1024;
    double cost_cur =
        ((double)t->cpu_cur / 1000 * cp + (double)t->mem_cur / gib * mp) * CLI_HOURS_PER_MONTH;
    double cost_rec =
        ((double)t->cpu_rec / 1000 * cp + (double)t->mem_rec / gib * mp) * CLI_HOURS_PER_MONTH;
    char a[KQ_STR_MAX], b[KQ_STR_MAX], c[KQ_STR_MAX], d[KQ_STR_MAX];
    kq_fmt_cpu_milli(t->cpu_cur, a, sizeof a);
    kq_fmt_cpu_milli(t->cpu_rec, b, sizeof b);
    kq_fmt_mem_bytes(t->mem_cur, c, sizeof c);
    kq_fmt_mem_bytes(t->mem_rec, d, sizeof d);
    return opbuf_printf(out, "%-20s %10s %10s %10s %10s %12.2f %12.2f %12.2f\n", t->ns, a, b, c, d,
                        cost_cur, cost_rec, cost_cur - cost_rec);
}

int cli_render_savings(const cli_state *s, double cp, double mp, opbuf *out)
{
    tot *t = calloc(s->nwl + 1, sizeof *t), all = {.ns = "TOTAL"};
    size_t nt = 0;
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < s->nwl; i++) {
        const cli_workload *w = &s->wl[i];
        if (nt == 0 || strcmp(t[nt - 1].ns, ns_of(w)))
            snprintf(t[nt++].ns, sizeof t->ns, "%s", ns_of(w));
        tot *x = &t[nt - 1];
        for (size_t j = 0; j < w->nctrs; j++) {
            const cli_ctr *c = &w->ctrs[j];
            int64_t cc = 0, cr = 0, mc = 0, mr = 0;
            slot_value(CLI_CPU_REQ, c->cur[CLI_CPU_REQ], &cc);
            slot_value(CLI_MEM_REQ, c->cur[CLI_MEM_REQ], &mc);
            /* without a recommendation the request stays what it is */
            if (slot_value(CLI_CPU_REQ, c->rec[CLI_CPU_REQ], &cr))
                cr = cc;
            if (slot_value(CLI_MEM_REQ, c->rec[CLI_MEM_REQ], &mr))
                mr = mc;
            x->cpu_cur = sat_madd(x->cpu_cur, cc, w->replicas);
            x->cpu_rec = sat_madd(x->cpu_rec, cr, w->replicas);
            x->mem_cur = sat_madd(x->mem_cur, mc, w->replicas);
            x->mem_rec = sat_madd(x->mem_rec, mr, w->replicas);
        }
    }
    int rc = opbuf_printf(out,
                          "Prices: $%g per core-hour, $%g per GiB-hour; a month is %.0f hours; "
                          "requests x replicas.\n",
                          cp, mp, CLI_HOURS_PER_MONTH);
    rc = rc
             ?: opbuf_printf(out, "%-20s %10s %10s %10s %10s %12s %12s %12s\n", "NAMESPACE",
                             "CPU REQ", "CPU REC", "MEM REQ", "MEM REC", "$/MO NOW", "$/MO REC",
                             "$/MO SAVED");
    for (size_t i = 0; !rc && i < nt; i++) {
        rc = add_line(out, &t[i], cp, mp);
        all.cpu_cur = sat_madd(all.cpu_cur, t[i].cpu_cur, 1);
        all.cpu_rec = sat_madd(all.cpu_rec, t[i].cpu_rec, 1);
        all.mem_cur = sat_madd(all.mem_cur, t[i].mem_cur, 1);
        all.mem_rec = sat_madd(all.mem_rec, t[i].mem_rec, 1);
    }
    rc = rc ?: add_line(out, &all, cp, mp);
    free(t);
    return rc;
}
