/*
 * plan usage: CSV and OpenMetrics usage files into per-pod series. See plan.h
 * for both formats. Malformed lines are reported (file:line) and skipped; at
 * most USAGE_MAX_REPORTED of them per file are listed, the rest counted.
 *
 * A file is read as a stream of lines (USAGE_CHUNK at a time, whatever its
 * size); each line goes to one reader (usage_rd) that decides the format on
 * the first line that is neither empty nor a comment. What is kept is the
 * series: per pod and container, the samples that can still fall in the
 * decision window (plan_series_add drops the others), so memory follows the
 * number of series and the window, not the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plan/internal.h"

#define USAGE_MAX_REPORTED 20
#define USAGE_LINE_MAX     4096      /* longer lines are malformed */
#define USAGE_CHUNK        (1 << 20) /* bytes read at once */
#define USAGE_MAX_FIELDS   16
#define USAGE_MAX_LABEL    256
#define USAGE_MAX_VALUE    1e15           /* larger values (bytes, cores, seconds) are not usage */
#define USAGE_MAX_TIME     100000000000LL /* Unix seconds, the year 5138 */

/* Room for one more sample (by half again: little slack for series of a window's length). */
static int pts_room(plan_pts *s)
{
    if (s->n < s->cap)
        return 0;
    size_t cap = s->cap ? s->cap + s->cap / 2 : 32;
    plan_pt *nv = realloc(s->v, cap * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    s->v = nv;
    s->cap = cap;
    return 0;
}

/* Append without dropping anything (the finishing steps); room was made. */
static void pts_put(plan_pts *s, int64_t t, double v)
{
    if (s->n == 0 || t < s->min_t)
        s->min_t = t;
    s->v[s->n++] = (plan_pt){t, v};
}

/* Samples before this time cannot be in the decision window: the window before the decision
 * time (fixed, or the newest sample so far, which only moves later), and one rate window more
 * for CPU counters. 0: keep everything. */
static int64_t keep_from(const plan *p)
{
    int64_t span = p->pol.window_ms / 1000 + PLAN_RATE_WINDOW_S;
    int64_t ref = p->fixed_now ? p->fixed_now : p->newest;
    return ref > span ? ref - span : 0;
}

/* Drop the samples before `from`, but for the newest of them (a counter's rate and a
 * termination edge look at the sample before), and with a fixed decision time the ones
 * after it. */
static void prune(plan *p, plan_pts *s, int64_t from)
{
    if (s->n == 0 || (s->min_t >= from && !p->fixed_now))
        return; /* nothing old enough (the usual case: samples come in time order) */
    size_t before = SIZE_MAX, out = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].t < from && (before == SIZE_MAX || s->v[i].t >= s->v[before].t))
            before = i;
    for (size_t i = 0; i < s->n; i++) {
        int64_t t = s->v[i].t;
        if ((t >= from || i == before) && (!p->fixed_now || t <= p->fixed_now))
            s->v[out++] = s->v[i];
    }
    for (size_t i = 0; i < out; i++)
        s->min_t = i == 0 || s->v[i].t < s->min_t ? s->v[i].t : s->min_t;
    if (out < s->n && before != SIZE_MAX && from > p->dropped_before)
        p->dropped_before = from;
    s->n = out;
}

int plan_series_add(plan *p, plan_pts *s, int64_t t, double v)
{
    if (s->n == s->cap && !p->keep_history) {
        int64_t from = keep_from(p);
        if (from > 0 || p->fixed_now)
            prune(p, s, from);
        /* grow unless pruning freed a quarter: amortized O(1) per sample */
        if (s->n > s->cap - s->cap / 4 && pts_room(s) < 0)
            return -ENOMEM;
    }
    if (pts_room(s) < 0)
        return -ENOMEM;
    pts_put(s, t, v);
    return 0;
}

void plan_series_free(void *v)
{
    plan_series *s = v;
    if (!s)
        return;
    free(s->workload);
    free(s->cpu.v);
    free(s->mem.v);
    free(s->oom.v);
    free(s->term.v);
    free(s);
}

plan_series *plan_series_get(plan *p, const char *ns, const char *pod, const char *ctr)
{
    /* "ns\x1fpod\x1fctr", each part shorter than USAGE_MAX_LABEL (the readers check) */
    char key[3 * USAGE_MAX_LABEL + 4];
    size_t a = strnlen(ns, USAGE_MAX_LABEL), b = strnlen(pod, USAGE_MAX_LABEL),
           c = strnlen(ctr, USAGE_MAX_LABEL);
    memcpy(key, ns, a);
    key[a] = '\x1f';
    memcpy(key + a + 1, pod, b);
    key[a + 1 + b] = '\x1f';
    memcpy(key + a + b + 2, ctr, c);
    key[a + b + 2 + c] = '\0';
    plan_series *s = opmap_get(&p->series, key);
    if (s)
        return s;
    s = calloc(1, sizeof *s + a + b + c + 3);
    if (!s)
        return NULL;
    /* the key's bytes, each \x1f a terminator */
    memcpy(s->names, key, a + b + c + 3);
    s->names[a] = s->names[a + b + 1] = '\0';
    s->ns = s->names;
    s->pod = s->names + a + 1;
    s->ctr = s->names + a + b + 2;
    s->ns_n = (uint16_t)a;
    s->pod_n = (uint16_t)b;
    s->ctr_n = (uint16_t)c;
    if (opmap_put(&p->series, key, s, NULL) < 0) {
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

/* By time; files are mostly in time order already, so first look. */
static void sort_pts(plan_pts *s)
{
    for (size_t i = 1; i < s->n; i++)
        if (s->v[i].t < s->v[i - 1].t) {
            qsort(s->v, s->n, sizeof *s->v, cmp_pt);
            return;
        }
}

int plan_series_finish(plan_series *s)
{
    sort_pts(&s->mem);
    sort_pts(&s->cpu);
    sort_pts(&s->oom);
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
        sort_pts(&s->term);
        double prev = 0;
        for (size_t i = 0; i < s->term.n; i++) {
            if (s->term.v[i].v >= 1 && prev < 1) {
                if (pts_room(&s->oom) < 0)
                    return -ENOMEM;
                pts_put(&s->oom, s->term.v[i].t, 1);
            }
            prev = s->term.v[i].v;
        }
        s->term.n = 0;
    }
    return 0;
}

/* The end of a file: every series down to the samples the decision window can use, sorted, its
 * counters turned into rates. */
static int finish_all(plan *p)
{
    int64_t from = keep_from(p);
    opmap_iter it;
    opmap_iter_init(&it, &p->series);
    opmap_entry *e;
    while ((e = opmap_next(&it))) {
        plan_series *s = e->value;
        if (!p->keep_history && (from > 0 || p->fixed_now)) {
            prune(p, &s->cpu, from);
            prune(p, &s->mem, from);
            prune(p, &s->oom, from);
            prune(p, &s->term, from);
        }
        if (plan_series_finish(s) < 0)
            return -ENOMEM;
    }
    return 0;
}

enum usage_fmt { FMT_AUTO, FMT_CSV, FMT_OM };

enum { C_TS, C_NS, C_POD, C_CTR, C_CPU, C_MEM, C_OOM, C_WL, C_N };

/* One file being read, line by line. */
typedef struct usage_rd {
    plan *p;
    const char *name;
    enum usage_fmt fmt;
    size_t lineno;
    size_t bad;                        /* malformed lines */
    bool skip_rest;                    /* the file was refused (no CSV header) */
    bool header;                       /* CSV: the header was read */
    plan_series *last, *back2, *back3; /* the previous lines' series (see series_of) */
    int col[C_N];                      /* CSV: field index of each column, -1 when absent */
    size_t ncols;
} usage_rd;

/* A line's three names, with their lengths (each under USAGE_MAX_LABEL). */
typedef struct names3 {
    const char *ns, *pod, *ctr;
    size_t ns_n, pod_n, ctr_n;
} names3;

static bool is_series(const plan_series *s, const names3 *k)
{
    return s && s->pod_n == k->pod_n && s->ctr_n == k->ctr_n && s->ns_n == k->ns_n &&
           !memcmp(s->pod, k->pod, k->pod_n) && !memcmp(s->ctr, k->ctr, k->ctr_n) &&
           !memcmp(s->ns, k->ns, k->ns_n);
}

/* The series of a line. Files list the series in a stable order, time after time (or one series
 * after another): the series that followed the previous line's last time, or that series
 * again, is checked before the map. NULL on ENOMEM. */
static plan_series *series_of(usage_rd *r, const names3 *k)
{
    plan_series *s = r->last ? r->last->next_hint : NULL;
    if (!is_series(s, k)) {
        s = is_series(r->last, k) ? r->last : plan_series_get(r->p, k->ns, k->pod, k->ctr);
        if (s && r->last)
            r->last->next_hint = s;
    }
    if (s && r->back3)
        r->back3->ahead = s;
    r->back3 = r->back2;
    r->back2 = r->last;
    r->last = s;
    /* The next lines' series are known from the hints: ask for their memory now, the series
     * three lines ahead and where the next line's samples go (its series was asked for two
     * lines ago), as every load otherwise stalls: each line touches a different series. */
    if (s && s->ahead)
        __builtin_prefetch(s->ahead);
    const plan_series *n1 = s ? s->next_hint : NULL;
    if (n1 && n1->cpu.v)
        __builtin_prefetch(n1->cpu.v + n1->cpu.n, 1);
    if (n1 && n1->mem.v)
        __builtin_prefetch(n1->mem.v + n1->mem.n, 1);
    return s;
}

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

/* Plain digits (what a usage file is made of) are read here; anything else goes to strtoll. */
static bool parse_i64(const char *s, int64_t *out)
{
    int64_t d = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9' && i < 18; i++)
        d = d * 10 + (s[i] - '0');
    if (i > 0 && !s[i]) {
        *out = d;
        return true;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno)
        return false;
    *out = v;
    return true;
}

static const double exact_pow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* Digits with at most one '.', 15 digits at most (the usual "0.250", "536870912") are read
 * exactly here: the digits make an exact integer and one correctly rounded division by an exact
 * power of ten gives the double strtod would. Anything else goes to strtod. */
static bool parse_num(const char *s, double *out)
{
    int64_t mant = 0;
    int digits = 0, frac = -1;
    const char *c = s;
    for (; digits <= 15; c++) {
        if (*c >= '0' && *c <= '9') {
            mant = mant * 10 + (*c - '0');
            digits++;
            frac += frac >= 0;
        } else if (*c == '.' && frac < 0) {
            frac = 0;
        } else {
            break;
        }
    }
    if (!*c && digits > 0 && digits <= 15) {
        double v = (double)mant / exact_pow10[frac > 0 ? frac : 0];
        if (v > USAGE_MAX_VALUE)
            return false;
        *out = v;
        return true;
    }
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v) || v < 0 || v > USAGE_MAX_VALUE)
        return false;
    *out = v;
    return true;
}

/* --- CSV ---------------------------------------------------------------------------------- */

static const char *const csv_cols[C_N] = {"timestamp", "namespace",    "pod", "container",
                                          "cpu_cores", "memory_bytes", "oom", "workload"};

/* Cut line (len bytes) at its commas: the fields in f, their lengths in fl. */
static size_t split(char *line, size_t len, char **f, size_t *fl, size_t max)
{
    size_t n = 1;
    char *end = line + len, *c;
    f[0] = line;
    while ((c = memchr(f[n - 1], ',', (size_t)(end - f[n - 1])))) {
        if (n == max)
            return max + 1;
        *c = '\0';
        fl[n - 1] = (size_t)(c - f[n - 1]);
        f[n++] = c + 1;
    }
    fl[n - 1] = (size_t)(end - f[n - 1]);
    return n;
}

static int csv_row(usage_rd *r, char **f, const size_t *fl, size_t nf)
{
    const int *col = r->col;
    size_t lineno = r->lineno;
    if (nf != r->ncols)
        return bad_line(r, lineno, "%zu fields, the header has %zu", nf, r->ncols);
    int64_t ts;
    if (!parse_i64(f[col[C_TS]], &ts) || ts <= 0 || ts > USAGE_MAX_TIME)
        return bad_line(r, lineno, "timestamp \"%.40s\" is not Unix seconds", f[col[C_TS]]);
    names3 k = {f[col[C_NS]],  f[col[C_POD]],  f[col[C_CTR]],
                fl[col[C_NS]], fl[col[C_POD]], fl[col[C_CTR]]};
    if (!k.ns_n || !k.pod_n || !k.ctr_n || k.ns_n >= USAGE_MAX_LABEL ||
        k.pod_n >= USAGE_MAX_LABEL || k.ctr_n >= USAGE_MAX_LABEL)
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
    plan *p = r->p;
    plan_series *s = series_of(r, &k);
    if (!s)
        return -ENOMEM;
    if (col[C_WL] >= 0 && *f[col[C_WL]] && !s->workload) {
        s->workload = strdup(f[col[C_WL]]);
        if (!s->workload)
            return -ENOMEM;
    }
    if (ts > p->newest)
        p->newest = ts;
    int rc = 0;
    if (!isnan(cpu))
        rc = plan_series_add(p, &s->cpu, ts, cpu);
    if (!rc && !isnan(mem))
        rc = plan_series_add(p, &s->mem, ts, mem);
    if (!rc && oom)
        rc = plan_series_add(p, &s->oom, ts, 1);
    return rc;
}

/* The header: which field is which column. A file without one is skipped whole. */
static int csv_header(usage_rd *r, char **f, size_t nf)
{
    int *col = r->col;
    for (int c = 0; c < C_N; c++)
        col[c] = -1;
    for (size_t i = 0; i < nf && i < USAGE_MAX_FIELDS; i++)
        for (int c = 0; c < C_N; c++)
            if (!strcmp(f[i], csv_cols[c]) && col[c] < 0)
                col[c] = (int)i;
    if (nf > USAGE_MAX_FIELDS || col[C_TS] < 0 || col[C_NS] < 0 || col[C_POD] < 0 ||
        col[C_CTR] < 0 || (col[C_CPU] < 0 && col[C_MEM] < 0)) {
        r->skip_rest = true;
        return plan_diag(r->p, true,
                         "%s:%zu: not a usage CSV header (needs timestamp, namespace, "
                         "pod, container and cpu_cores or memory_bytes); file skipped",
                         r->name, r->lineno);
    }
    r->ncols = nf;
    r->header = true;
    return 0;
}

static int csv_line(usage_rd *r, char *line, size_t len)
{
    char *f[USAGE_MAX_FIELDS];
    size_t fl[USAGE_MAX_FIELDS];
    size_t nf = split(line, len, f, fl, USAGE_MAX_FIELDS);
    return r->header ? csv_row(r, f, fl, nf) : csv_header(r, f, nf);
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

static int om_line(usage_rd *r, const char *line)
{
    om_sample o;
    const char *why = om_parse(line, &o);
    if (why)
        return bad_line(r, r->lineno, "%s", why);
    if (o.metric == M_OTHER || (o.metric == M_TERM && !o.oom_reason))
        return 0;
    if (!o.ns[0] || !o.pod[0] || !o.ctr[0] || !strcmp(o.ctr, "POD")) {
        if (o.ctr[0] != 0 && strcmp(o.ctr, "POD") != 0)
            return bad_line(r, r->lineno, "needs namespace, pod and container labels");
        return 0; /* pod-level cgroup series carry no container */
    }
    if (!isfinite(o.value) || o.value < 0 || o.value > USAGE_MAX_VALUE)
        return bad_line(r, r->lineno, "value out of range");
    plan *p = r->p;
    names3 k = {o.ns, o.pod, o.ctr, strlen(o.ns), strlen(o.pod), strlen(o.ctr)};
    plan_series *s = series_of(r, &k);
    if (!s)
        return -ENOMEM;
    plan_pts *dst = o.metric == M_CPU ? &s->cpu : o.metric == M_MEM ? &s->mem : &s->term;
    if (o.metric == M_CPU)
        s->cpu_counter = true;
    if (o.ts > p->newest)
        p->newest = o.ts;
    return plan_series_add(p, dst, o.ts, o.value);
}

/* --- lines -------------------------------------------------------------------------------- */

/* One line (without its '\n'), writable, with a byte to spare after it. The first line that is
 * neither empty nor a comment decides an undecided format: a comma and no label set make a
 * CSV header, anything else OpenMetrics. */
static int usage_line(usage_rd *r, char *line, size_t n)
{
    r->lineno++;
    if (r->skip_rest)
        return 0;
    if (n && line[n - 1] == '\r')
        n--;
    if (n == 0 || line[0] == '#')
        return 0;
    if (r->fmt == FMT_AUTO)
        r->fmt = memchr(line, ',', n) && !memchr(line, '{', n) ? FMT_CSV : FMT_OM;
    if (n >= USAGE_LINE_MAX)
        return r->fmt == FMT_CSV
                   ? bad_line(r, r->lineno, "longer than %d bytes", USAGE_LINE_MAX - 1)
                   : bad_line(r, r->lineno, "not a sample line");
    if (memchr(line, 0, n))
        return r->fmt == FMT_CSV ? bad_line(r, r->lineno, "contains a NUL byte")
                                 : bad_line(r, r->lineno, "not a sample line");
    line[n] = '\0';
    return r->fmt == FMT_CSV ? csv_line(r, line, n) : om_line(r, line);
}

static int usage_end(usage_rd *r)
{
    int rc = end_bad(r);
    return rc < 0 ? rc : finish_all(r->p);
}

/* Bytes in memory (the tests' and fuzzers' way in): each line copied out to be writable. */
static int usage_buf(plan *p, const char *name, enum usage_fmt fmt, const char *buf, size_t len)
{
    usage_rd r = {.p = p, .name = name, .fmt = fmt};
    char line[USAGE_LINE_MAX + 1];
    int rc = 0;
    for (size_t off = 0; off < len && rc >= 0;) {
        const char *start = buf + off, *nl = memchr(start, '\n', len - off);
        size_t n = nl ? (size_t)(nl - start) : len - off;
        off += n + (nl ? 1 : 0);
        /* an overlong line goes in cut to the cap: still too long, so reported as such */
        size_t k = n < USAGE_LINE_MAX ? n : USAGE_LINE_MAX;
        memcpy(line, start, k);
        if (k == USAGE_LINE_MAX && start[k - 1] == '\r' && n > k)
            line[k - 1] = 'x'; /* not the end of the line, whatever the cut shows */
        rc = usage_line(&r, line, k);
    }
    return rc < 0 ? rc : usage_end(&r);
}

int plan_usage_csv(plan *p, const char *name, const char *buf, size_t len)
{
    return usage_buf(p, name, FMT_CSV, buf, len);
}

int plan_usage_openmetrics(plan *p, const char *name, const char *buf, size_t len)
{
    return usage_buf(p, name, FMT_OM, buf, len);
}

/* A file, USAGE_CHUNK bytes at a time: lines are handled in place in the chunk buffer; the
 * part of a line the chunk cuts moves to the front, and a line longer than the whole buffer
 * is reported once and skipped to its end. */
static int usage_fd(usage_rd *r, int fd, operr *err)
{
    char *buf = malloc(USAGE_CHUNK + 1);
    if (!buf)
        return -ENOMEM;
    size_t have = 0;
    bool skipping = false; /* inside a line longer than the buffer */
    int rc = 0;
    for (;;) {
        ssize_t got = read(fd, buf + have, USAGE_CHUNK - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = operr_set(err, -errno, "'%s': %s", r->name, strerror(errno));
            break;
        }
        have += (size_t)got;
        size_t start = 0;
        char *nl;
        while (rc >= 0 && (nl = memchr(buf + start, '\n', have - start))) {
            size_t n = (size_t)(nl - (buf + start));
            if (skipping)
                skipping = false; /* the end of the long line: counted when it began */
            else
                rc = usage_line(r, buf + start, n);
            start += n + 1;
        }
        if (rc < 0)
            break;
        memmove(buf, buf + start, have - start);
        have -= start;
        if (got == 0) { /* the end: a last line without '\n' */
            if (have && !skipping)
                rc = usage_line(r, buf, have);
            break;
        }
        if (have == USAGE_CHUNK) {
            if (!skipping)
                rc = usage_line(r, buf, have); /* too long: reported */
            skipping = true;
            have = 0;
        }
    }
    free(buf);
    return rc;
}

int plan_load_usage(plan *p, const char *path, operr *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return operr_set(err, -errno, "'%s': %s", path, strerror(errno));
    usage_rd r = {.p = p, .name = path, .fmt = FMT_AUTO};
    int rc = usage_fd(&r, fd, err); /* a read error is named in err */
    close(fd);
    if (rc >= 0)
        rc = usage_end(&r);
    if (rc == -ENOMEM)
        operr_set(err, rc, "'%s': out of memory", path);
    return rc;
}
