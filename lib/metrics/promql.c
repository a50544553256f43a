/*
 * promql: query building, response parsing and per-workload combination for
 * the Prometheus provider. See promql.h for the choice of statistics.
 */
#include "metrics/promql.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/window.h"
#include "util/map.h"

/* The label that tags each sub-expression's results (no "__" prefix: reserved). */
#define STAT_LABEL "optipod_stat"

static const char *const stat_names[PROMQL_NSTATS] = {
    [PROMQL_CPU_Q] = "cpu_q", [PROMQL_CPU_N] = "cpu_n",
    [PROMQL_MEM_Q] = "mem_q", [PROMQL_MEM_MAX] = "mem_max",
    [PROMQL_MEM_N] = "mem_n", [PROMQL_MEM_FIRST] = "mem_first",
    [PROMQL_OOM] = "oom",     [PROMQL_OOM_FIRST] = "oom_first",
};

const char *promql_stat_name(enum promql_stat s)
{
    if ((int)s < 0 || s >= PROMQL_NSTATS)
        return NULL;
    return stat_names[s];
}

int promql_stat_parse(const char *name)
{
    for (int i = 0; i < PROMQL_NSTATS; i++)
        if (strcmp(stat_names[i], name) == 0)
            return i;
    return -1;
}

uint64_t promql_step_s(uint64_t window_s, uint64_t floor_s)
{
    uint64_t step = (window_s + PROMQL_MAX_POINTS - 1) / PROMQL_MAX_POINTS;
    if (floor_s == 0)
        floor_s = PROMQL_STEP_FLOOR_S;
    return step > floor_s ? step : floor_s;
}

int promql_append_regex_literal(opbuf *out, const char *s)
{
    /* RE2 metacharacters; escaping any other punctuation would also be legal,
     * but pod names are DNS labels, so this keeps queries readable. */
    static const char meta[] = "\\.+*?()|[]{}^$";
    int rc = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        if (strchr(meta, *p))
            rc = opbuf_append(out, "\\", 1);
        if (rc == 0)
            rc = opbuf_append(out, p, 1);
    }
    return rc;
}

int promql_append_string(opbuf *out, const char *s)
{
    int rc = opbuf_append(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            rc = opbuf_append(out, e, 2);
        } else if (*p == '\n') {
            rc = opbuf_append(out, "\\n", 2);
        } else if (*p < 0x20) {
            rc = opbuf_printf(out, "\\x%02x", *p);
        } else {
            rc = opbuf_append(out, p, 1);
        }
    }
    if (rc == 0)
        rc = opbuf_append(out, "\"", 1);
    return rc;
}

int promql_append_form(opbuf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            rc = opbuf_append(out, &s[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = opbuf_append(out, e, 3);
        }
    }
    return rc;
}

/* The shortest decimal that reads back as exactly q. */
static int append_double(opbuf *out, double q)
{
    char tmp[64];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, q);
        if (strtod(tmp, NULL) == q)
            break;
    }
    return opbuf_puts(out, tmp);
}

/* {namespace="ns",pod=~"RE",container!="",container!="POD"<extra>} */
static int append_selector(opbuf *out, const char *ns, const char *pod_re, const char *extra)
{
    int rc = opbuf_puts(out, "{namespace=");
    if (rc == 0)
        rc = promql_append_string(out, ns);
    if (rc == 0 && pod_re && *pod_re) {
        rc = opbuf_puts(out, ",pod=~");
        if (rc == 0)
            rc = promql_append_string(out, pod_re);
    }
    if (rc == 0)
        rc = opbuf_printf(out, ",container!=\"\",container!=\"POD\"%s}", extra);
    return rc;
}

enum sel_kind { SEL_CPU, SEL_MEM, SEL_OOM };

typedef struct build_ctx {
    opbuf *out;
    const char *ns;
    const char *pod_re;
    const promql_opts *o;
    uint64_t step_s, rate_s;
} build_ctx;

static int append_series(build_ctx *c, enum sel_kind k)
{
    static const char *const metric[] = {
        [SEL_CPU] = "container_cpu_usage_seconds_total",
        [SEL_MEM] = "container_memory_working_set_bytes",
        [SEL_OOM] = "kube_pod_container_status_last_terminated_reason",
    };
    int rc = opbuf_puts(c->out, metric[k]);
    if (rc == 0)
        rc = append_selector(c->out, c->ns, c->pod_re, k == SEL_OOM ? ",reason=\"OOMKilled\"" : "");
    return rc;
}

/* One tagged sub-expression: label_replace(AGG by (pod, container) (FN(...)), stat). */
static int append_stat(build_ctx *c, enum promql_stat s)
{
    opbuf *out = c->out;
    const char *agg = "max";
    if (s == PROMQL_CPU_N || s == PROMQL_MEM_N)
        agg = "sum"; /* restarts create new series; their samples add up */
    else if (s == PROMQL_MEM_FIRST || s == PROMQL_OOM_FIRST)
        agg = "min";
    int rc = opbuf_printf(out, "%slabel_replace(%s by (pod, container) (", s ? " or " : "", agg);
    switch (s) {
    case PROMQL_CPU_Q:
    case PROMQL_CPU_N:
        if (rc == 0 && s == PROMQL_CPU_Q) {
            rc = opbuf_puts(out, "quantile_over_time(");
            if (rc == 0)
                rc = append_double(out, c->o->percentile);
            if (rc == 0)
                rc = opbuf_puts(out, ", rate(");
        } else if (rc == 0) {
            rc = opbuf_puts(out, "count_over_time(rate(");
        }
        if (rc == 0)
            rc = append_series(c, SEL_CPU);
        if (rc == 0)
            rc = opbuf_printf(out, "[%" PRIu64 "s])[%" PRIu64 "s:%" PRIu64 "s])", c->rate_s,
                              c->o->window_s, c->step_s);
        break;
    case PROMQL_MEM_Q:
    case PROMQL_MEM_MAX:
    case PROMQL_MEM_N:
    case PROMQL_OOM:
        if (rc == 0 && s == PROMQL_MEM_Q) {
            rc = opbuf_puts(out, "quantile_over_time(");
            if (rc == 0)
                rc = append_double(out, c->o->percentile);
            if (rc == 0)
                rc = opbuf_puts(out, ", ");
        } else if (rc == 0) {
            rc = opbuf_puts(out, s == PROMQL_MEM_N ? "count_over_time(" : "max_over_time(");
        }
        if (rc == 0)
            rc = append_series(c, s == PROMQL_OOM ? SEL_OOM : SEL_MEM);
        if (rc == 0)
            rc = opbuf_printf(out, "[%" PRIu64 "s])", c->o->window_s);
        break;
    case PROMQL_MEM_FIRST:
    case PROMQL_OOM_FIRST:
        if (rc == 0)
            rc = opbuf_puts(out, "min_over_time(timestamp(");
        if (rc == 0)
            rc = append_series(c, s == PROMQL_OOM_FIRST ? SEL_OOM : SEL_MEM);
        if (rc == 0 && s == PROMQL_OOM_FIRST)
            rc = opbuf_puts(out, " == 1");
        if (rc == 0)
            rc = opbuf_printf(out, ")[%" PRIu64 "s:%" PRIu64 "s])", c->o->window_s, c->step_s);
        break;
    default:
        return -EINVAL;
    }
    if (rc == 0)
        rc = opbuf_printf(out, "), \"" STAT_LABEL "\", \"%s\", \"\", \"\")", stat_names[s]);
    return rc;
}

int promql_build(opbuf *out, const char *ns, const char *const *pods, size_t npods,
                 const promql_opts *o)
{
    opbuf re;
    opbuf_init(&re, out->max);
    int rc = 0;
    for (size_t i = 0; pods && i < npods && rc == 0; i++) {
        if (i > 0)
            rc = opbuf_append(&re, "|", 1);
        if (rc == 0)
            rc = promql_append_regex_literal(&re, pods[i]);
    }
    if (rc == 0)
        rc = promql_build_re(out, ns, opbuf_str(&re), o);
    opbuf_release(&re);
    return rc;
}

int promql_build_owners(opbuf *out, const char *ns, const char *deploy_re, uint64_t window_s)
{
    if (!ns || !*ns || window_s == 0)
        return -EINVAL;
    int rc = opbuf_puts(out, "label_replace(max by (pod, owner_kind, owner_name) (max_over_time("
                             "kube_pod_owner{namespace=");
    if (rc == 0)
        rc = promql_append_string(out, ns);
    if (rc == 0)
        rc = opbuf_puts(out, ",owner_kind=~\"ReplicaSet|StatefulSet|DaemonSet\"");
    if (rc == 0)
        rc = opbuf_printf(out, "}[%" PRIu64 "s])), \"" STAT_LABEL "\", \"pod_owner\", \"\", \"\")",
                          window_s);
    if (rc == 0 && deploy_re && *deploy_re) {
        rc = opbuf_puts(out, " or label_replace(max by (replicaset, owner_name) (max_over_time("
                             "kube_replicaset_owner{namespace=");
        if (rc == 0)
            rc = promql_append_string(out, ns);
        if (rc == 0)
            rc = opbuf_puts(out, ",owner_kind=\"Deployment\",owner_name=~");
        if (rc == 0)
            rc = promql_append_string(out, deploy_re);
        if (rc == 0)
            rc = opbuf_printf(
                out, "}[%" PRIu64 "s])), \"" STAT_LABEL "\", \"rs_owner\", \"\", \"\")", window_s);
    }
    return rc;
}

int promql_build_re(opbuf *out, const char *ns, const char *pod_re, const promql_opts *o)
{
    if (!ns || !*ns || !o || !(o->percentile > 0 && o->percentile < 1) || o->window_s == 0)
        return -EINVAL;
    build_ctx c = {
        .out = out,
        .ns = ns,
        .pod_re = pod_re,
        .o = o,
        .step_s = o->step_s ? o->step_s : promql_step_s(o->window_s, 0),
        .rate_s = o->rate_s ? o->rate_s : PROMQL_RATE_WINDOW_S,
    };
    /* A subquery finer than the point limit is refused by Prometheus. */
    if (o->window_s / c.step_s > PROMQL_MAX_POINTS)
        return -EINVAL;
    int rc = 0;
    for (int s = 0; s < PROMQL_NSTATS && rc == 0; s++)
        rc = append_stat(&c, (enum promql_stat)s);
    return rc;
}

/* ---- response parsing ------------------------------------------------------------------ */

static const char *label(const cJSON *metric, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(metric, name);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

/* Prometheus sends sample values as strings: "0.25", "NaN", "+Inf", "-Inf". */
static int parse_value(const char *s, double *out)
{
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return 0;
    }
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Inf") == 0) {
        *out = -INFINITY;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -EPROTO;
    *out = v;
    return 0;
}

int promql_parse(const char *body, size_t len, promql_sample_cb cb, void *ud, operr *err)
{
    int rc = 0;
    cJSON *doc = cJSON_ParseWithLength(body, len);
    if (!doc) {
        rc = operr_set(err, -EPROTO, "response is not JSON");
        goto out;
    }
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(doc, "status");
    if (!cJSON_IsString(status)) {
        rc = operr_set(err, -EPROTO, "response has no \"status\"");
        goto out;
    }
    if (strcmp(status->valuestring, "success") != 0) {
        const cJSON *et = cJSON_GetObjectItemCaseSensitive(doc, "errorType");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
        rc = operr_set(err, -EREMOTEIO, "status \"%.32s\": %.32s: %.300s", status->valuestring,
                       cJSON_IsString(et) ? et->valuestring : "?",
                       cJSON_IsString(e) ? e->valuestring : "(no message)");
        goto out;
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(data, "resultType");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(data, "result");
    if (!cJSON_IsObject(data) || !cJSON_IsString(rt) || !cJSON_IsArray(result)) {
        rc = operr_set(err, -EPROTO, "response has no data.resultType and data.result");
        goto out;
    }
    if (strcmp(rt->valuestring, "vector") != 0) {
        rc = operr_set(err, -EPROTO, "resultType \"%.32s\", want \"vector\"", rt->valuestring);
        goto out;
    }
    int i = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, result)
    {
        const cJSON *metric = cJSON_GetObjectItemCaseSensitive(el, "metric");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(el, "value");
        const cJSON *ts = cJSON_GetArrayItem(value, 0);
        const cJSON *vs = cJSON_GetArrayItem(value, 1);
        promql_sample s = {0};
        if (!cJSON_IsObject(metric) || !cJSON_IsArray(value) || cJSON_GetArraySize(value) != 2 ||
            !cJSON_IsNumber(ts) || !cJSON_IsString(vs) ||
            parse_value(vs->valuestring, &s.value) != 0) {
            rc = operr_set(err, -EPROTO, "data.result[%d] is not a {metric, value:[ts,\"v\"]}", i);
            goto out;
        }
        s.pod = label(metric, "pod");
        s.container = label(metric, "container");
        s.stat = label(metric, STAT_LABEL);
        s.owner_kind = label(metric, "owner_kind");
        s.owner_name = label(metric, "owner_name");
        s.replicaset = label(metric, "replicaset");
        s.ts = ts->valuedouble;
        rc = cb(&s, ud);
        if (rc != 0)
            goto out;
        i++;
    }
out:
    cJSON_Delete(doc);
    return rc;
}

/* ---- range queries -------------------------------------------------------------------- */

int promql_build_range(opbuf *out, const char *ns, const char *pod_re, uint64_t rate_s)
{
    static const struct {
        const char *stat, *agg, *pre, *metric, *extra, *post;
    } parts[] = {
        {"cpu", "sum", "rate(", "container_cpu_usage_seconds_total", "", "[RATE])"},
        {"mem", "max", "", "container_memory_working_set_bytes", "", ""},
        {"oom", "max", "", "kube_pod_container_status_last_terminated_reason",
         ",reason=\"OOMKilled\"", ""},
    };
    if (!ns || !*ns || rate_s == 0)
        return -EINVAL;
    int rc = 0;
    for (size_t i = 0; i < 3 && rc == 0; i++) {
        rc = opbuf_printf(out, "%slabel_replace(%s by (pod, container) (%s%s", i ? " or " : "",
                          parts[i].agg, parts[i].pre, parts[i].metric);
        if (rc == 0)
            rc = append_selector(out, ns, pod_re, parts[i].extra);
        if (rc == 0 && *parts[i].post)
            rc = opbuf_printf(out, "[%" PRIu64 "s])", rate_s);
        if (rc == 0)
            rc = opbuf_printf(out, "), \"" STAT_LABEL "\", \"%s\", \"\", \"\")", parts[i].stat);
    }
    return rc;
}

/* The success envelope: data.result of resultType `want`, or an error set. */
static int envelope(const cJSON *doc, const char *want, const cJSON **result, operr *err)
{
    if (!doc)
        return operr_set(err, -EPROTO, "response is not JSON");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(doc, "status");
    if (!cJSON_IsString(status))
        return operr_set(err, -EPROTO, "response has no \"status\"");
    if (strcmp(status->valuestring, "success") != 0) {
        const cJSON *et = cJSON_GetObjectItemCaseSensitive(doc, "errorType");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
        return operr_set(err, -EREMOTEIO, "status \"%.32s\": %.32s: %.300s", status->valuestring,
                         cJSON_IsString(et) ? et->valuestring : "?",
                         cJSON_IsString(e) ? e->valuestring : "(no message)");
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(data, "resultType");
    *result = cJSON_GetObjectItemCaseSensitive(data, "result");
    if (!cJSON_IsObject(data) || !cJSON_IsString(rt) || !cJSON_IsArray(*result))
        return operr_set(err, -EPROTO, "response has no data.resultType and data.result");
    if (strcmp(rt->valuestring, want) != 0)
        return operr_set(err, -EPROTO, "resultType \"%.32s\", want \"%s\"", rt->valuestring, want);
    return 0;
}

int promql_parse_matrix(const char *body, size_t len, promql_series_cb cb, void *ud, operr *err)
{
    cJSON *doc = cJSON_ParseWithLength(body, len);
    const cJSON *result = NULL, *el;
    int64_t *t = NULL;
    double *v = NULL;
    size_t cap = 0;
    int i = 0, rc = envelope(doc, "matrix", &result, err);
    if (rc != 0)
        goto out;
    cJSON_ArrayForEach(el, result)
    {
        const cJSON *metric = cJSON_GetObjectItemCaseSensitive(el, "metric");
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(el, "values");
        if (!cJSON_IsObject(metric) || !cJSON_IsArray(values)) {
            rc = operr_set(err, -EPROTO, "data.result[%d] is not a {metric, values}", i);
            goto out;
        }
        size_t n = (size_t)cJSON_GetArraySize(values), k = 0;
        if (n > cap) {
            int64_t *nt = realloc(t, n * sizeof *nt);
            double *nv = nt ? realloc(v, n * sizeof *nv) : NULL;
            if (nt)
                t = nt;
            if (!nt || !nv) {
                rc = operr_set(err, -ENOMEM, "out of memory");
                goto out;
            }
            v = nv;
            cap = n;
        }
        const cJSON *pt;
        cJSON_ArrayForEach(pt, values)
        {
            const cJSON *ts = cJSON_GetArrayItem(pt, 0), *vs = cJSON_GetArrayItem(pt, 1);
            double x;
            if (!cJSON_IsArray(pt) || cJSON_GetArraySize(pt) != 2 || !cJSON_IsNumber(ts) ||
                !isfinite(ts->valuedouble) || fabs(ts->valuedouble) > 1e15 || !cJSON_IsString(vs) ||
                parse_value(vs->valuestring, &x) != 0 || !isfinite(x)) {
                rc = operr_set(err, -EPROTO,
                               "data.result[%d].values[%zu] is not a [time, \"finite number\"]", i,
                               k);
                goto out;
            }
            t[k] = (int64_t)floor(ts->valuedouble);
            if (k > 0 && t[k] <= t[k - 1]) {
                rc = operr_set(err, -EPROTO, "data.result[%d].values[%zu]: time goes back", i, k);
                goto out;
            }
            v[k++] = x;
        }
        promql_series s = {
            label(metric, "pod"), label(metric, "container"), label(metric, STAT_LABEL), t, v, n};
        if ((rc = cb(&s, ud)) != 0)
            goto out;
        i++;
    }
out:
    free(t);
    free(v);
    cJSON_Delete(doc);
    return rc;
}

/* ---- combination ----------------------------------------------------------------------- */

typedef struct cacc {
    char name[MPROV_NAME_MAX];
    unsigned seen; /* bit per enum promql_stat */
    uint32_t pods; /* distinct pods seen for this container */
    double v[PROMQL_NSTATS];
} cacc;

typedef struct wacc {
    char *kind, *name;
    cacc *c;
    size_t n, cap;
    mprov_container_stats *out;
} wacc;

/* A resolved pod: its workload, or none (cached either way). */
#define POD_NONE ((void *)(uintptr_t)SIZE_MAX)

struct promql_agg {
    wacc *w;
    size_t nw;
    char **pods; /* the request's current pods */
    size_t npods;
    opmap pod_to_w; /* current pods: workload index + 1 */
    opmap wl_idx;   /* "Kind/name": workload index + 1 */
    opmap ksm_pod;  /* pod → "Kind/owner" from kube_pod_owner (malloc'd) */
    opmap ksm_rs;   /* ReplicaSet → its Deployment from kube_replicaset_owner (malloc'd) */
    opmap resolved; /* pod → index + 1 or POD_NONE, for pods seen in the stats */
    opmap seen_pc;  /* "pod\x1fcontainer" seen (value unused) */
    int ksm;        /* kube_pod_owner series seen: kube-state-metrics runs here */
    uint64_t window_s;
    mprov_workload_stats *out;
};

void promql_agg_free(promql_agg *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nw; i++) {
        free(a->w[i].kind);
        free(a->w[i].name);
        free(a->w[i].c);
        free(a->w[i].out);
    }
    for (size_t i = 0; i < a->npods; i++)
        free(a->pods[i]);
    free(a->w);
    free(a->pods);
    free(a->out);
    opmap_release(&a->pod_to_w, NULL);
    opmap_release(&a->wl_idx, NULL);
    opmap_release(&a->ksm_pod, free);
    opmap_release(&a->ksm_rs, free);
    opmap_release(&a->resolved, NULL);
    opmap_release(&a->seen_pc, NULL);
    free(a);
}

static int wl_key(char *key, size_t cap, const char *kind, const char *name, size_t name_len)
{
    int n = snprintf(key, cap, "%s/%.*s", kind, (int)name_len, name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int promql_agg_new(promql_agg **out, const mprov_request *req)
{
    int rc = -ENOMEM;
    promql_agg *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    opmap_init(&a->pod_to_w);
    opmap_init(&a->wl_idx);
    opmap_init(&a->ksm_pod);
    opmap_init(&a->ksm_rs);
    opmap_init(&a->resolved);
    opmap_init(&a->seen_pc);
    a->window_s = req->window_s;
    size_t total = 0;
    for (size_t i = 0; i < req->nworkloads; i++)
        total += req->workloads[i].npods;
    a->w = calloc(req->nworkloads ? req->nworkloads : 1, sizeof *a->w);
    a->pods = calloc(total ? total : 1, sizeof *a->pods);
    a->out = calloc(req->nworkloads ? req->nworkloads : 1, sizeof *a->out);
    if (!a->w || !a->pods || !a->out)
        goto out;
    for (size_t i = 0; i < req->nworkloads; i++) {
        const mprov_workload *w = &req->workloads[i];
        a->w[i].kind = strdup(w->kind ? w->kind : "");
        a->w[i].name = strdup(w->name ? w->name : "");
        a->nw = i + 1;
        if (!a->w[i].kind || !a->w[i].name)
            goto out;
        char key[2 * MPROV_NAME_MAX + 32];
        if (wl_key(key, sizeof key, a->w[i].kind, a->w[i].name, strlen(a->w[i].name)) == 0 &&
            !opmap_get(&a->wl_idx, key) &&
            opmap_put(&a->wl_idx, key, (void *)(uintptr_t)(i + 1), NULL) != 0)
            goto out;
        for (size_t j = 0; j < w->npods; j++) {
            const char *p = w->pods[j];
            if (!p || !*p || opmap_get(&a->pod_to_w, p))
                continue; /* a pod belongs to one workload: the first that claims it */
            a->pods[a->npods] = strdup(p);
            if (!a->pods[a->npods])
                goto out;
            a->npods++;
            if (opmap_put(&a->pod_to_w, p, (void *)(uintptr_t)(i + 1), NULL) != 0)
                goto out;
        }
    }
    *out = a;
    a = NULL;
    rc = 0;
out:
    promql_agg_free(a);
    return rc;
}

const char *const *promql_agg_pods(const promql_agg *a, size_t *npods)
{
    *npods = a->npods;
    return (const char *const *)a->pods;
}

size_t promql_agg_nworkloads(const promql_agg *a)
{
    return a->nw;
}

static size_t wl_lookup(const promql_agg *a, const char *kind, const char *name, size_t len)
{
    char key[2 * MPROV_NAME_MAX + 32];
    if (wl_key(key, sizeof key, kind, name, len) != 0)
        return 0;
    return (uintptr_t)opmap_get(&a->wl_idx, key);
}

/* The workload (index + 1) kube-state-metrics says `pod` belongs to; 0 for
 * none; -1 when it does not know the pod. */
static long ksm_owner(const promql_agg *a, const char *pod)
{
    const char *own = opmap_get(&a->ksm_pod, pod);
    if (!own)
        return -1;
    const char *slash = strchr(own, '/');
    if (!slash)
        return 0;
    const char *name = slash + 1;
    if (strncmp(own, "ReplicaSet/", 11) == 0) {
        const char *dep = opmap_get(&a->ksm_rs, name);
        if (dep)
            return (long)wl_lookup(a, "Deployment", dep, strlen(dep));
        /* its kube_replicaset_owner series is older than the window: by name */
        return (long)wl_lookup(a, "Deployment", name, mwin_rs_deployment_len(name));
    }
    return (long)wl_lookup(a, own[0] == 'S' ? "StatefulSet" : "DaemonSet", name, strlen(name));
}

/* The workload (index + 1) of `pod`, or 0: current pods (owner references),
 * then kube-state-metrics' owner, then the generated names. */
static size_t resolve(const promql_agg *a, const char *pod)
{
    uintptr_t i = (uintptr_t)opmap_get(&a->pod_to_w, pod);
    if (i)
        return i;
    long k = ksm_owner(a, pod);
    if (k >= 0)
        return (size_t)k;
    mwin_cand c[3];
    size_t n = mwin_candidates(pod, c);
    for (size_t j = 0; j < n; j++)
        if ((i = wl_lookup(a, c[j].kind, pod, c[j].name_len)))
            return i;
    return 0;
}

int promql_agg_deploy_regex(const promql_agg *a, opbuf *deploy_re)
{
    int rc = 0;
    for (size_t i = 0; i < a->nw && rc == 0; i++) {
        if (strcmp(a->w[i].kind, "Deployment") != 0)
            continue;
        if (deploy_re->len)
            rc = opbuf_append(deploy_re, "|", 1);
        if (rc == 0)
            rc = promql_append_regex_literal(deploy_re, a->w[i].name);
    }
    return rc;
}

static int add_alt(opbuf *re, size_t *nalts, const char *lit, const char *kind, const char *name)
{
    int rc = re->len ? opbuf_append(re, "|", 1) : 0;
    if (rc == 0)
        rc = lit ? promql_append_regex_literal(re, lit) : mwin_pod_regex(re, kind, name);
    if (rc == 0)
        (*nalts)++;
    return rc;
}

/* The alternatives of workload `only` (index), or of every workload (SIZE_MAX). */
static int pod_regex(const promql_agg *a, size_t only, opbuf *re, size_t *nalts)
{
    int rc = 0;
    *nalts = 0;
    for (size_t i = 0; i < a->nw && rc == 0; i++) {
        const wacc *w = &a->w[i];
        if ((only == SIZE_MAX || only == i) && mwin_kind_known(w->kind))
            rc = add_alt(re, nalts, NULL, w->kind, w->name);
    }
    /* Current pods the patterns miss (truncated long names, hand-made pods). */
    for (size_t i = 0; i < a->npods && rc == 0; i++) {
        size_t k = (uintptr_t)opmap_get(&a->pod_to_w, a->pods[i]) - 1;
        const wacc *w = &a->w[k];
        if ((only == SIZE_MAX || only == k) && !mwin_pod_matches(w->kind, w->name, a->pods[i]))
            rc = add_alt(re, nalts, a->pods[i], NULL, NULL);
    }
    /* Earlier pods kube-state-metrics names that the patterns miss. */
    opmap_iter it;
    opmap_iter_init(&it, &a->ksm_pod);
    opmap_entry *e;
    while (rc == 0 && (e = opmap_next(&it))) {
        if (opmap_get(&a->pod_to_w, e->key))
            continue;
        long k = ksm_owner(a, e->key);
        if (k > 0 && (only == SIZE_MAX || only == (size_t)(k - 1)) &&
            !mwin_pod_matches(a->w[k - 1].kind, a->w[k - 1].name, e->key))
            rc = add_alt(re, nalts, e->key, NULL, NULL);
    }
    return rc;
}

int promql_agg_pod_regex(const promql_agg *a, opbuf *re, size_t *nalts)
{
    return pod_regex(a, SIZE_MAX, re, nalts);
}

int promql_agg_pod_regex_of(const promql_agg *a, size_t wi, opbuf *re, size_t *nalts)
{
    if (wi >= a->nw)
        return -EINVAL;
    return pod_regex(a, wi, re, nalts);
}

size_t promql_agg_workload_of(const promql_agg *a, const char *pod)
{
    return pod && *pod ? resolve(a, pod) : 0;
}

const char *promql_agg_history(const promql_agg *a)
{
    return mwin_method_name(a->ksm ? MWIN_OWNERS : MWIN_NAMES);
}

static cacc *find_container(wacc *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->c[i].name, name) == 0)
            return &w->c[i];
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4;
        cacc *c = realloc(w->c, cap * sizeof *c);
        if (!c)
            return NULL;
        w->c = c;
        w->cap = cap;
    }
    cacc *c = &w->c[w->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

/* Keep one owner series: pod → "Kind/name", or ReplicaSet → Deployment. */
static int add_owner(promql_agg *a, const promql_sample *s, int rs)
{
    const char *key = rs ? s->replicaset : s->pod;
    if (!*key || !*s->owner_name || strlen(s->owner_name) >= MPROV_NAME_MAX)
        return 0;
    char *v = NULL;
    if (rs)
        v = strdup(s->owner_name);
    else if (asprintf(&v, "%s/%s", s->owner_kind, s->owner_name) < 0)
        v = NULL;
    if (!v)
        return -ENOMEM;
    void *old = NULL;
    if (opmap_put(rs ? &a->ksm_rs : &a->ksm_pod, key, v, &old) != 0) {
        free(v);
        return -ENOMEM;
    }
    free(old);
    if (!rs)
        a->ksm = 1;
    return 0;
}

int promql_agg_add(promql_agg *a, const promql_sample *s, operr *err)
{
    if (strcmp(s->stat, "pod_owner") == 0 || strcmp(s->stat, "rs_owner") == 0)
        return add_owner(a, s, s->stat[0] == 'r');
    int stat = promql_stat_parse(s->stat);
    if (stat < 0 || !*s->pod || !*s->container || strlen(s->container) >= MPROV_NAME_MAX)
        return 0;
    uintptr_t wi = (uintptr_t)opmap_get(&a->resolved, s->pod);
    if (!wi) {
        size_t r = resolve(a, s->pod);
        wi = r ? r : (uintptr_t)POD_NONE;
        if (opmap_put(&a->resolved, s->pod, (void *)wi, NULL) != 0)
            return -ENOMEM;
    }
    if (wi == (uintptr_t)POD_NONE)
        return 0;
    if (!isfinite(s->value) || s->value < 0)
        return operr_set(err, -EPROTO, "%s of pod '%s' container '%s' is %g, not a usable number",
                         s->stat, s->pod, s->container, s->value);
    cacc *c = find_container(&a->w[wi - 1], s->container);
    if (!c)
        return -ENOMEM;
    char pc[2 * MPROV_NAME_MAX + 2];
    snprintf(pc, sizeof pc, "%s\x1f%s", s->pod, s->container);
    if (!opmap_get(&a->seen_pc, pc)) {
        if (opmap_put(&a->seen_pc, pc, (void *)1, NULL) != 0)
            return -ENOMEM;
        c->pods++;
    }
    unsigned bit = 1u << stat;
    double *v = &c->v[stat];
    /* Each sample is one pod's (the query aggregates by pod and container). */
    double x = stat == PROMQL_OOM ? (s->value > 0) : s->value;
    if (!(c->seen & bit))
        *v = x;
    else if (stat == PROMQL_CPU_N || stat == PROMQL_MEM_N || stat == PROMQL_OOM)
        *v += x; /* samples and OOM-killed pods add up over pods */
    else if (stat == PROMQL_MEM_FIRST)
        *v = x < *v ? x : *v; /* the oldest sample of any pod */
    else
        *v = x > *v ? x : *v; /* percentiles, peak, and the latest pod's OOM */
    c->seen |= bit;
    return 0;
}

int promql_agg_sample_cb(const promql_sample *s, void *ud)
{
    promql_agg_ctx *c = ud;
    int owner = strcmp(s->stat, "pod_owner") == 0 || strcmp(s->stat, "rs_owner") == 0;
    if (owner != (c->owners_query != 0))
        return 0;
    return promql_agg_add(c->agg, s, c->err);
}

int promql_agg_result(promql_agg *a, int64_t eval_time_s, mprov_result *out)
{
    const char *history = promql_agg_history(a);
    for (size_t i = 0; i < a->nw; i++) {
        wacc *w = &a->w[i];
        free(w->out);
        w->out = calloc(w->n ? w->n : 1, sizeof *w->out);
        if (!w->out)
            return -ENOMEM;
        for (size_t j = 0; j < w->n; j++) {
            const cacc *c = &w->c[j];
            mprov_container_stats *o = &w->out[j];
            snprintf(o->container, sizeof o->container, "%s", c->name);
            o->cpu_cores = c->v[PROMQL_CPU_Q];
            o->mem_bytes = c->v[PROMQL_MEM_Q];
            o->mem_peak_bytes = c->v[PROMQL_MEM_MAX];
            o->cpu_samples = (uint64_t)llround(c->v[PROMQL_CPU_N]);
            o->mem_samples = (uint64_t)llround(c->v[PROMQL_MEM_N]);
            o->history = history;
            o->pods = c->pods;
            if (c->seen & (1u << PROMQL_MEM_FIRST)) {
                double h = (double)eval_time_s - c->v[PROMQL_MEM_FIRST];
                if (h < 0)
                    h = 0;
                if (h > (double)a->window_s)
                    h = (double)a->window_s;
                o->history_s = h;
            }
            if ((c->seen & (1u << PROMQL_OOM)) && c->v[PROMQL_OOM] > 0) {
                o->oom_count = (uint32_t)c->v[PROMQL_OOM];
                if (c->seen & (1u << PROMQL_OOM_FIRST))
                    o->oom_last_s = (int64_t)c->v[PROMQL_OOM_FIRST];
            }
        }
        a->out[i] = (mprov_workload_stats){
            .kind = w->kind,
            .name = w->name,
            .history = history,
            .ncontainers = w->n,
            .containers = w->out,
        };
    }
    out->nworkloads = a->nw;
    out->workloads = a->out;
    out->eval_time_s = eval_time_s;
    return 0;
}
