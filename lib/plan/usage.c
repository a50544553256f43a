/*
 * plan usage: CSV and OpenMetrics usage files into per-pod series. See plan.h
 * for both formats. Malformed lines are reported (file:line) and skipped; at
 * most USAGE_MAX_REPORTED of them per file are listed, the rest counted.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/internal.h"

#define USAGE_MAX_REPORTED 20
#define USAGE_MAX_FIELDS   16
#define USAGE_MAX_LABEL    256
#define USAGE_MAX_VALUE    1e15           /* larger values (bytes, cores, seconds) are not usage */
#define USAGE_MAX_TIME     100000000000LL /* Unix seconds, the year 5138 */

int plan_pts_add(plan_pts *s, int64_t t, double v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        plan_pt *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = (plan_pt){t, v};
    return 0;
}

void plan_series_free(void *v)
{
    plan_series *s = v;
    if (!s)
        return;
    free(s->ns);
    free(s->pod);
    free(s->ctr);
    free(s->workload);
    free(s->cpu.v);
    free(s->mem.v);
    free(s->oom.v);
    free(s->term.v);
    free(s);
}

plan_series *plan_series_get(plan *p, const char *ns, const char *pod, const char *ctr)
{
    char key[3 * USAGE_MAX_LABEL + 4];
    snprintf(key, sizeof key, "%s\x1f%s\x1f%s", ns, pod, ctr);
    plan_series *s = opmap_get(&p->series, key);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ns = strdup(ns);
    s->pod = strdup(pod);
    s->ctr = strdup(ctr);
    if (!s->ns || !s->pod || !s->ctr || opmap_put(&p->series, key, s, NULL) < 0) {
        plan_series_free(s);
        return NULL;
    }
    return s;
}

static int cmp_pt(const void *a, const void *b)
{
    const plan_pt *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

int plan_series_finish(plan_series *s)
{
    if (s->mem.n > 1)
        qsort(s->mem.v, s->mem.n, sizeof *s->mem.v, cmp_pt);
    if (s->cpu.n > 1)
        qsort(s->cpu.v, s->cpu.n, sizeof *s->cpu.v, cmp_pt);
    if (s->oom.n > 1)
        qsort(s->oom.v, s->oom.n, sizeof *s->oom.v, cmp_pt);
    if (s->cpu_counter && s->cpu.n) {
        /* rate(x[5m]) at each sample: the reset-adjusted increase between the
         * oldest sample inside the window and this one, per second. */
        size_t n = s->cpu.n, out = 0;
        double *acc = malloc(n * sizeof *acc);
        plan_pt *rates = malloc(n * sizeof *rates);
        if (!acc || !rates) {
            free(acc);
            free(rates);
            return -ENOMEM;
        }
        acc[0] = 0;
        for (size_t i = 1; i < n; i++) {
            double d = s->cpu.v[i].v - s->cpu.v[i - 1].v;
            acc[i] = acc[i - 1] + (d >= 0 ? d : s->cpu.v[i].v);
        }
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            while (s->cpu.v[j].t < s->cpu.v[i].t - PLAN_RATE_WINDOW_S)
                j++;
            int64_t dt = s->cpu.v[i].t - s->cpu.v[j].t;
            if (j < i && dt > 0)
                rates[out++] = (plan_pt){s->cpu.v[i].t, (acc[i] - acc[j]) / (double)dt};
        }
        free(acc);
        free(s->cpu.v);
        s->cpu.v = rates;
        s->cpu.n = out;
        s->cpu.cap = n;
        s->cpu_counter = false;
    }
    if (s->term.n) {
        if (s->term.n > 1)
            qsort(s->term.v, s->term.n, sizeof *s->term.v, cmp_pt);
        double prev = 0;
        for (size_t i = 0; i < s->term.n; i++) {
            if (s->term.v[i].v >= 1 && prev < 1 && plan_pts_add(&s->oom, s->term.v[i].t, 1) < 0)
                return -ENOMEM;
            prev = s->term.v[i].v;
        }
        s->term.n = 0;
    }
    return 0;
}

static int finish_all(plan *p)
{
    opmap_iter it;
    opmap_iter_init(&it, &p->series);
    opmap_entry *e;
    while ((e = opmap_next(&it)))
        if (plan_series_finish(e->value) < 0)
            return -ENOMEM;
    return 0;
}

typedef struct usage_rd {
    plan *p;
    const char *name;
    size_t bad;
} usage_rd;

static int bad_line(usage_rd *r, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad_line(usage_rd *r, size_t line, const char *fmt, ...)
{
    if (++r->bad > USAGE_MAX_REPORTED)
        return 0;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return plan_diag(r->p, true, "%s:%zu: %s; line skipped", r->name, line, msg);
}

static int end_bad(usage_rd *r)
{
    if (r->bad > USAGE_MAX_REPORTED)
        return plan_diag(r->p, false, "%s: %zu more malformed lines not listed", r->name,
                         r->bad - USAGE_MAX_REPORTED);
    return 0;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno)
        return false;
    *out = v;
    return true;
}

static bool parse_num(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v) || v < 0 || v > USAGE_MAX_VALUE)
        return false;
    *out = v;
    return true;
}

/* --- CSV ---------------------------------------------------------------------------------- */

enum { C_TS, C_NS, C_POD, C_CTR, C_CPU, C_MEM, C_OOM, C_WL, C_N };
static const char *const csv_cols[C_N] = {"timestamp", "namespace",    "pod", "container",
                                          "cpu_cores", "memory_bytes", "oom", "workload"};

static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;
    for (char *s = line;; s++) {
        if (n == max)
            return max + 1;
        f[n++] = s;
        s = strchr(s, ',');
        if (!s)
            break;
        *s = 0;
    }
    return n;
}

static int csv_row(usage_rd *r, size_t lineno, char **f, size_t nf, const int *col, size_t ncols)
{
    if (nf != ncols)
        return bad_line(r, lineno, "%zu fields, the header has %zu", nf, ncols);
    int64_t ts;
    if (!parse_i64(f[col[C_TS]], &ts) || ts <= 0 || ts > USAGE_MAX_TIME)
        return bad_line(r, lineno, "timestamp \"%.40s\" is not Unix seconds", f[col[C_TS]]);
    const char *ns = f[col[C_NS]], *pod = f[col[C_POD]], *ctr = f[col[C_CTR]];
    if (!*ns || !*pod || !*ctr || strlen(ns) >= USAGE_MAX_LABEL || strlen(pod) >= USAGE_MAX_LABEL ||
        strlen(ctr) >= USAGE_MAX_LABEL)
        return bad_line(r, lineno, "namespace, pod and container must be set");
    double cpu = NAN, mem = NAN;
    int64_t oom = 0;
    if (col[C_CPU] >= 0 && *f[col[C_CPU]] && !parse_num(f[col[C_CPU]], &cpu))
        return bad_line(r, lineno, "cpu_cores \"%.40s\" is not a number", f[col[C_CPU]]);
    if (col[C_MEM] >= 0 && *f[col[C_MEM]] && !parse_num(f[col[C_MEM]], &mem))
        return bad_line(r, lineno, "memory_bytes \"%.40s\" is not a number", f[col[C_MEM]]);
    if (col[C_OOM] >= 0 && *f[col[C_OOM]] &&
        (!parse_i64(f[col[C_OOM]], &oom) || (oom != 0 && oom != 1)))
        return bad_line(r, lineno, "oom \"%.40s\" is not 0 or 1", f[col[C_OOM]]);
    plan_series *s = plan_series_get(r->p, ns, pod, ctr);
    if (!s)
        return -ENOMEM;
    if (col[C_WL] >= 0 && *f[col[C_WL]] && !s->workload && !(s->workload = strdup(f[col[C_WL]])))
        return -ENOMEM;
    if (!isnan(cpu) && plan_pts_add(&s->cpu, ts, cpu) < 0)
        return -ENOMEM;
    if (!isnan(mem) && plan_pts_add(&s->mem, ts, mem) < 0)
        return -ENOMEM;
    if (oom && plan_pts_add(&s->oom, ts, 1) < 0)
        return -ENOMEM;
    if (ts > r->p->newest)
        r->p->newest = ts;
    return 0;
}

int plan_usage_csv(plan *p, const char *name, const char *buf, size_t len)
{
    usage_rd r = {p, name, 0};
    int col[C_N];
    size_t ncols = 0, lineno = 0;
    bool header = false;
    char line[4096];
    int rc = 0;
    for (size_t off = 0; off < len;) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
        const char *start = buf + off;
        off += n + (nl ? 1 : 0);
        lineno++;
        if (n && start[n - 1] == '\r')
            n--;
        if (n == 0 || start[0] == '#')
            continue;
        if (n >= sizeof line) {
            rc = bad_line(&r, lineno, "longer than %zu bytes", sizeof line - 1);
            if (rc < 0)
                return rc;
            continue;
        }
        if (memchr(start, 0, n)) {
            if ((rc = bad_line(&r, lineno, "contains a NUL byte")) < 0)
                return rc;
            continue;
        }
        memcpy(line, start, n);
        line[n] = 0;
        char *f[USAGE_MAX_FIELDS];
        size_t nf = split(line, f, USAGE_MAX_FIELDS);
        if (!header) {
            for (int c = 0; c < C_N; c++)
                col[c] = -1;
            for (size_t i = 0; i < nf && i < USAGE_MAX_FIELDS; i++)
                for (int c = 0; c < C_N; c++)
                    if (!strcmp(f[i], csv_cols[c]) && col[c] < 0)
                        col[c] = (int)i;
            if (nf > USAGE_MAX_FIELDS || col[C_TS] < 0 || col[C_NS] < 0 || col[C_POD] < 0 ||
                col[C_CTR] < 0 || (col[C_CPU] < 0 && col[C_MEM] < 0))
                return plan_diag(p, true,
                                 "%s:%zu: not a usage CSV header (needs timestamp, namespace, "
                                 "pod, container and cpu_cores or memory_bytes); file skipped",
                                 name, lineno);
            ncols = nf;
            header = true;
            continue;
        }
        if ((rc = csv_row(&r, lineno, f, nf, col, ncols)) < 0)
            return rc;
    }
    if ((rc = end_bad(&r)) < 0)
        return rc;
    return finish_all(p);
}

/* --- OpenMetrics -------------------------------------------------------------------------- */

enum { M_CPU, M_MEM, M_TERM, M_OTHER };

typedef struct om_sample {
    int metric;
    char ns[USAGE_MAX_LABEL], pod[USAGE_MAX_LABEL], ctr[USAGE_MAX_LABEL];
    bool oom_reason;
    double value;
    int64_t ts;
} om_sample;

/* Parse `name{l="v",...} value timestamp`. Returns NULL or a complaint. */
static const char *om_parse(const char *s, om_sample *o)
{
    static const char *const names[] = {"container_cpu_usage_seconds_total",
                                        "container_memory_working_set_bytes",
                                        "kube_pod_container_status_last_terminated_reason"};
    size_t n = strcspn(s, "{ ");
    o->metric = M_OTHER;
    for (int i = 0; i < 3; i++)
        if (strlen(names[i]) == n && !strncmp(s, names[i], n))
            o->metric = i;
    if (n == 0)
        return "no metric name";
    o->ns[0] = o->pod[0] = o->ctr[0] = 0;
    o->oom_reason = false;
    s += n;
    if (*s == '{') {
        s++;
        while (*s && *s != '}') {
            size_t kn = strcspn(s, "=");
            if (!s[kn] || s[kn + 1] != '"')
                return "bad label";
            const char *key = s;
            s += kn + 2;
            char val[USAGE_MAX_LABEL];
            size_t vn = 0;
            while (*s && *s != '"') {
                char c = *s++;
                if (c == '\\') {
                    c = *s++;
                    if (c == 'n')
                        c = '\n';
                    else if (c != '\\' && c != '"')
                        return "bad escape in a label value";
                }
                if (vn + 1 >= sizeof val)
                    return "label value too long";
                val[vn++] = c;
            }
            if (*s != '"')
                return "unterminated label value";
            s++;
            val[vn] = 0;
            char *dst = NULL;
            if (kn == 9 && !strncmp(key, "namespace", 9))
                dst = o->ns;
            else if (kn == 3 && !strncmp(key, "pod", 3))
                dst = o->pod;
            else if (kn == 9 && !strncmp(key, "container", 9))
                dst = o->ctr;
            else if (kn == 6 && !strncmp(key, "reason", 6))
                o->oom_reason = !strcmp(val, "OOMKilled");
            if (dst)
                memcpy(dst, val, vn + 1);
            if (*s == ',')
                s++;
            else if (*s != '}')
                return "bad label separator";
        }
        if (*s != '}')
            return "unterminated label set";
        s++;
    }
    if (*s != ' ')
        return "no value";
    s++;
    char *end;
    o->value = strtod(s, &end);
    if (end == s || (*end != ' ' && *end))
        return "bad value";
    if (*end != ' ')
        return "no timestamp (usage samples need one)";
    s = end + 1;
    double ts = strtod(s, &end);
    if (end == s || *end || !isfinite(ts) || ts <= 0 || ts > (double)USAGE_MAX_TIME)
        return "bad timestamp";
    o->ts = (int64_t)ts;
    return NULL;
}

int plan_usage_openmetrics(plan *p, const char *name, const char *buf, size_t len)
{
    usage_rd r = {p, name, 0};
    size_t lineno = 0;
    char line[4096];
    int rc = 0;
    om_sample o;
    for (size_t off = 0; off < len;) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
        const char *start = buf + off;
        off += n + (nl ? 1 : 0);
        lineno++;
        if (n && start[n - 1] == '\r')
            n--;
        if (n == 0 || start[0] == '#')
            continue;
        if (n >= sizeof line || memchr(start, 0, n)) {
            if ((rc = bad_line(&r, lineno, "not a sample line")) < 0)
                return rc;
            continue;
        }
        memcpy(line, start, n);
        line[n] = 0;
        const char *why = om_parse(line, &o);
        if (why) {
            if ((rc = bad_line(&r, lineno, "%s", why)) < 0)
                return rc;
            continue;
        }
        if (o.metric == M_OTHER || (o.metric == M_TERM && !o.oom_reason))
            continue;
        if (!o.ns[0] || !o.pod[0] || !o.ctr[0] || !strcmp(o.ctr, "POD")) {
            if (o.metric != M_OTHER && o.ctr[0] != 0 && strcmp(o.ctr, "POD") != 0 &&
                (rc = bad_line(&r, lineno, "needs namespace, pod and container labels")) < 0)
                return rc;
            continue; /* pod-level cgroup series carry no container */
        }
        if (!isfinite(o.value) || o.value < 0 || o.value > USAGE_MAX_VALUE) {
            if ((rc = bad_line(&r, lineno, "value out of range")) < 0)
                return rc;
            continue;
        }
        plan_series *s = plan_series_get(p, o.ns, o.pod, o.ctr);
        if (!s)
            return -ENOMEM;
        plan_pts *dst = o.metric == M_CPU ? &s->cpu : o.metric == M_MEM ? &s->mem : &s->term;
        if (o.metric == M_CPU)
            s->cpu_counter = true;
        if (plan_pts_add(dst, o.ts, o.value) < 0)
            return -ENOMEM;
        if (o.ts > p->newest)
            p->newest = o.ts;
    }
    if ((rc = end_bad(&r)) < 0)
        return rc;
    return finish_all(p);
}

int plan_load_usage(plan *p, const char *path, operr *err)
{
    opbuf b;
    int rc = plan_read_file(path, &b, err);
    if (rc < 0)
        return rc;
    /* CSV when the first line that is neither empty nor a comment has a comma
     * and no label set (a CSV header); OpenMetrics otherwise. */
    const char *s = b.data;
    while (*s == '#' || *s == '\n' || *s == '\r') {
        const char *nl = strchr(s, '\n');
        s = nl ? nl + 1 : s + strlen(s);
    }
    size_t n = strcspn(s, "\n");
    const char *comma = memchr(s, ',', n);
    if (comma && !memchr(s, '{', n))
        rc = plan_usage_csv(p, path, b.data, b.len);
    else
        rc = plan_usage_openmetrics(p, path, b.data, b.len);
    opbuf_release(&b);
    if (rc < 0)
        operr_set(err, rc, "'%s': %s", path, strerror(-rc));
    return rc;
}
