#include "obs/obs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/map.h"

#define MAX_COLLECTORS 16
/* "<len>:<value>" per label: the key of a series in its family's map. */
#define KEY_MAX (OBS_MAX_LABELS * (OBS_VALUE_MAX + 8))

typedef struct series_t {
    char *lv[OBS_MAX_LABELS]; /* point into the same allocation */
    double value;             /* counter, gauge; a histogram's sum */
    uint64_t count;           /* histogram */
    uint64_t *buckets;        /* histogram: per bucket (not cumulative), nbounds of them */
} series_t;

struct obs_fam {
    obs_reg *reg;
    obs_type type;
    char name[OBS_NAME_MAX];
    char *help;
    size_t nlabels;
    char *labels[OBS_MAX_LABELS];
    size_t nbounds;
    double bounds[OBS_MAX_BUCKETS];
    opmap series; /* key → series_t* */
    uint64_t dropped;
};

struct obs_reg {
    size_t max_series;
    opmap fams; /* name → obs_fam* */
    obs_fam *dropped_fam;
    uint64_t dropped;
    struct {
        void (*fn)(void *ud);
        void *ud;
    } collectors[MAX_COLLECTORS];
    size_t ncollectors;
};

/* ---- names ------------------------------------------------------------------------------ */

static int name_ok(const char *s, int metric)
{
    if (!s || !*s || strlen(s) >= OBS_NAME_MAX)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        int ok = alpha || (i > 0 && c >= '0' && c <= '9') || (metric && c == ':');
        if (!ok)
            return 0;
    }
    return metric || strncmp(s, "__", 2) != 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- families --------------------------------------------------------------------------- */

static void series_free(void *p)
{
    free(p);
}

static void fam_free(void *p)
{
    obs_fam *f = p;
    if (!f)
        return;
    opmap_release(&f->series, series_free);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->help);
    free(f);
}

static int same_def(const obs_fam *f, obs_type t, const char *const *labels, const double *bounds,
                    size_t nbounds)
{
    size_t n = 0;
    while (labels && labels[n])
        n++;
    if (f->type != t || f->nlabels != n || f->nbounds != nbounds)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return 0;
    for (size_t i = 0; i < nbounds; i++)
        if (f->bounds[i] != bounds[i])
            return 0;
    return 1;
}

static obs_fam *define(obs_reg *r, obs_type t, const char *name, const char *help,
                       const char *const *labels, const double *bounds, size_t nbounds, operr *err)
{
    if (!r)
        return NULL;
    if (!name_ok(name, 1)) {
        operr_set(err, -EINVAL, "metric '%s': not a valid metric name", name ? name : "");
        return NULL;
    }
    obs_fam *old = opmap_get(&r->fams, name);
    if (old) {
        if (same_def(old, t, labels, bounds, nbounds))
            return old;
        operr_set(err, -EEXIST, "metric '%s': defined before with another type, labels or buckets",
                  name);
        return NULL;
    }
    if (t == OBS_COUNTER && !ends_with(name, "_total")) {
        operr_set(err, -EINVAL, "metric '%s': a counter's name ends in _total", name);
        return NULL;
    }
    if (t == OBS_HISTOGRAM) {
        if (nbounds == 0 || nbounds > OBS_MAX_BUCKETS) {
            operr_set(err, -EINVAL, "metric '%s': 1 to %d bucket bounds", name, OBS_MAX_BUCKETS);
            return NULL;
        }
        for (size_t i = 0; i < nbounds; i++)
            if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
                operr_set(err, -EINVAL,
                          "metric '%s': bucket bounds must be finite and strictly increasing",
                          name);
                return NULL;
            }
    }
    size_t n = 0;
    for (; labels && labels[n]; n++) {
        if (n >= OBS_MAX_LABELS) {
            operr_set(err, -EINVAL, "metric '%s': more than %d labels", name, OBS_MAX_LABELS);
            return NULL;
        }
        if (!name_ok(labels[n], 0) || (t == OBS_HISTOGRAM && strcmp(labels[n], "le") == 0)) {
            operr_set(err, -EINVAL, "metric '%s': label '%s' is not a valid label name", name,
                      labels[n]);
            return NULL;
        }
        for (size_t k = 0; k < n; k++)
            if (strcmp(labels[k], labels[n]) == 0) {
                operr_set(err, -EINVAL, "metric '%s': label '%s' twice", name, labels[n]);
                return NULL;
            }
    }
    obs_fam *f = calloc(1, sizeof *f);
    if (!f || !(f->help = strdup(help ? help : ""))) {
        free(f);
        operr_set(err, -ENOMEM, "metric '%s': out of memory", name);
        return NULL;
    }
    f->reg = r;
    f->type = t;
    snprintf(f->name, sizeof f->name, "%s", name);
    opmap_init(&f->series);
    for (size_t i = 0; i < n; i++) {
        if (!(f->labels[i] = strdup(labels[i]))) {
            fam_free(f);
            operr_set(err, -ENOMEM, "metric '%s': out of memory", name);
            return NULL;
        }
        f->nlabels = i + 1;
    }
    f->nbounds = t == OBS_HISTOGRAM ? nbounds : 0;
    if (f->nbounds)
        memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
    if (opmap_put(&r->fams, name, f, NULL) != 0) {
        fam_free(f);
        operr_set(err, -ENOMEM, "metric '%s': out of memory", name);
        return NULL;
    }
    return f;
}

obs_fam *obs_counter(obs_reg *r, const char *name, const char *help, const char *const *labels,
                     operr *err)
{
    return define(r, OBS_COUNTER, name, help, labels, NULL, 0, err);
}

obs_fam *obs_gauge(obs_reg *r, const char *name, const char *help, const char *const *labels,
                   operr *err)
{
    return define(r, OBS_GAUGE, name, help, labels, NULL, 0, err);
}

obs_fam *obs_histogram(obs_reg *r, const char *name, const char *help, const char *const *labels,
                       const double *bounds, size_t nbounds, operr *err)
{
    return define(r, OBS_HISTOGRAM, name, help, labels, bounds, nbounds, err);
}

obs_fam *obs_find(obs_reg *r, const char *name)
{
    return r && name ? opmap_get(&r->fams, name) : NULL;
}

obs_reg *obs_reg_new(const char *prefix, size_t max_series)
{
    char name[OBS_NAME_MAX];
    if (!prefix ||
        snprintf(name, sizeof name, "%s_metrics_series_dropped_total", prefix) >= (int)sizeof name)
        return NULL;
    obs_reg *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->max_series = max_series ? max_series : 10000;
    opmap_init(&r->fams);
    static const char *const lbl[] = {"family", NULL};
    r->dropped_fam = obs_counter(r, name,
                                 "Series not recorded because their family was at its cap or a "
                                 "label value was too long.",
                                 lbl, NULL);
    if (!r->dropped_fam) {
        obs_reg_free(r);
        return NULL;
    }
    return r;
}

void obs_reg_free(obs_reg *r)
{
    if (!r)
        return;
    opmap_release(&r->fams, fam_free);
    free(r);
}

uint64_t obs_dropped(const obs_reg *r)
{
    return r ? r->dropped : 0;
}

int obs_reg_collector(obs_reg *r, void (*fn)(void *ud), void *ud)
{
    if (!r || !fn)
        return -EINVAL;
    if (r->ncollectors == MAX_COLLECTORS)
        return -ENOMEM;
    r->collectors[r->ncollectors].fn = fn;
    r->collectors[r->ncollectors].ud = ud;
    r->ncollectors++;
    return 0;
}

/* ---- series ----------------------------------------------------------------------------- */

/* The map key of lv[0..n); -E2BIG when a value is too long. */
static int make_key(const obs_fam *f, const char *const *lv, size_t n, char *key, size_t cap)
{
    size_t len = 0;
    key[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *v = lv && lv[i] ? lv[i] : "";
        size_t vl = strlen(v);
        if (vl > OBS_VALUE_MAX)
            return -E2BIG;
        int w = snprintf(key + len, cap - len, "%zu:%s", vl, v);
        if (w < 0 || (size_t)w >= cap - len)
            return -E2BIG;
        len += (size_t)w;
    }
    (void)f;
    return 0;
}

static void drop(obs_fam *f)
{
    f->dropped++;
    f->reg->dropped++;
}

static series_t *get_series(obs_fam *f, const char *const *lv)
{
    char key[KEY_MAX];
    if (make_key(f, lv, f->nlabels, key, sizeof key) != 0) {
        drop(f);
        return NULL;
    }
    series_t *s = opmap_get(&f->series, key);
    if (s)
        return s;
    if (opmap_count(&f->series) >= f->reg->max_series) {
        drop(f);
        return NULL;
    }
    size_t sz = sizeof *s + f->nbounds * sizeof(uint64_t);
    for (size_t i = 0; i < f->nlabels; i++)
        sz += strlen(lv[i] ? lv[i] : "") + 1;
    s = calloc(1, sz);
    if (!s) {
        drop(f);
        return NULL;
    }
    char *p = (char *)(s + 1);
    if (f->nbounds) {
        s->buckets = (uint64_t *)p;
        p += f->nbounds * sizeof(uint64_t);
    }
    for (size_t i = 0; i < f->nlabels; i++) {
        size_t vl = strlen(lv[i] ? lv[i] : "");
        memcpy(p, lv[i] ? lv[i] : "", vl + 1);
        s->lv[i] = p;
        p += vl + 1;
    }
    if (opmap_put(&f->series, key, s, NULL) != 0) {
        free(s);
        drop(f);
        return NULL;
    }
    return s;
}

void obs_add(obs_fam *f, const char *const *lv, double v)
{
    if (!f || f->type == OBS_HISTOGRAM || isnan(v) || (f->type == OBS_COUNTER && v < 0))
        return;
    series_t *s = get_series(f, lv);
    if (s)
        s->value += v;
}

void obs_set(obs_fam *f, const char *const *lv, double v)
{
    if (!f || f->type == OBS_HISTOGRAM)
        return;
    series_t *s = get_series(f, lv);
    if (s && (f->type == OBS_GAUGE || v >= s->value))
        s->value = v;
}

void obs_observe(obs_fam *f, const char *const *lv, double v)
{
    if (!f || f->type != OBS_HISTOGRAM || isnan(v))
        return;
    series_t *s = get_series(f, lv);
    if (!s)
        return;
    size_t i = 0;
    while (i < f->nbounds && v > f->bounds[i])
        i++;
    if (i < f->nbounds)
        s->buckets[i]++;
    s->count++;
    s->value += v;
}

int obs_remove(obs_fam *f, const char *const *lv)
{
    char key[KEY_MAX];
    if (!f || make_key(f, lv, f->nlabels, key, sizeof key) != 0)
        return 0;
    series_t *s = opmap_del(&f->series, key);
    free(s);
    return s != NULL;
}

size_t obs_remove_prefix(obs_fam *f, const char *const *lv, size_t n)
{
    if (!f || n > f->nlabels)
        return 0;
    size_t removed = 0;
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &f->series);
    while ((e = opmap_next(&it)) != NULL) {
        series_t *s = e->value;
        size_t i = 0;
        while (i < n && strcmp(s->lv[i], lv[i] ? lv[i] : "") == 0)
            i++;
        if (i == n) {
            free(opmap_del(&f->series, e->key));
            removed++;
        }
    }
    return removed;
}

void obs_clear(obs_fam *f)
{
    if (!f)
        return;
    opmap_release(&f->series, series_free);
    opmap_init(&f->series);
}

size_t obs_series(const obs_fam *f)
{
    return f ? opmap_count(&f->series) : 0;
}

double obs_value(const obs_fam *f, const char *const *lv)
{
    char key[KEY_MAX];
    if (!f || make_key(f, lv, f->nlabels, key, sizeof key) != 0)
        return NAN;
    const series_t *s = opmap_get(&f->series, key);
    if (!s)
        return NAN;
    return f->type == OBS_HISTOGRAM ? (double)s->count : s->value;
}

/* ---- exposition ------------------------------------------------------------------------- */

void obs_format_value(double v, char *out, size_t cap)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15 && cap >= 18) { /* counts and bytes read best in full */
        /* digits by hand: a page of ten thousand series is mostly these */
        char tmp[20];
        size_t n = 0, o = 0;
        uint64_t u = (uint64_t)fabs(v);
        do
            tmp[n++] = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        if (v < 0)
            out[o++] = '-';
        while (n)
            out[o++] = tmp[--n];
        out[o] = 0;
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

int obs_escape_label(opbuf *out, const char *s)
{
    size_t plain = strcspn(s, "\\\"\n"); /* most values need no escape: one append */
    int rc = opbuf_append(out, s, plain);
    for (s += plain; *s && !rc; s++) {
        if (*s == '\\')
            rc = opbuf_puts(out, "\\\\");
        else if (*s == '"')
            rc = opbuf_puts(out, "\\\"");
        else if (*s == '\n')
            rc = opbuf_puts(out, "\\n");
        else
            rc = opbuf_append(out, s, 1);
    }
    return rc;
}

static int escape_help(opbuf *out, const char *s)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        if (*s == '\\')
            rc = opbuf_puts(out, "\\\\");
        else if (*s == '\n')
            rc = opbuf_puts(out, "\\n");
        else
            rc = opbuf_append(out, s, 1);
    }
    return rc;
}

static size_t g_cmp_nlabels; /* qsort has no context argument; single-threaded use */

static int cmp_series(const void *a, const void *b)
{
    const series_t *x = *(series_t *const *)a, *y = *(series_t *const *)b;
    for (size_t i = 0; i < g_cmp_nlabels; i++) {
        int c = strcmp(x->lv[i], y->lv[i]);
        if (c)
            return c;
    }
    return 0;
}

static int cmp_fam(const void *a, const void *b)
{
    return strcmp((*(obs_fam *const *)a)->name, (*(obs_fam *const *)b)->name);
}

/* name{l1="v1",...[,le="x"]} value\n */
static int write_sample(opbuf *out, const obs_fam *f, const series_t *s, const char *suffix,
                        const char *le, double v)
{
    /* appends, not printf: a page holds ten thousand samples at scale, written in one
     * callback of the loop */
    char num[32];
    opbuf_puts(out, f->name);
    opbuf_puts(out, suffix);
    if (f->nlabels || le) {
        opbuf_puts(out, "{");
        for (size_t i = 0; i < f->nlabels; i++) {
            if (i)
                opbuf_puts(out, ",");
            opbuf_puts(out, f->labels[i]);
            opbuf_puts(out, "=\"");
            obs_escape_label(out, s->lv[i]);
            opbuf_puts(out, "\"");
        }
        if (le) {
            opbuf_puts(out, f->nlabels ? ",le=\"" : "le=\"");
            opbuf_puts(out, le);
            opbuf_puts(out, "\"");
        }
        opbuf_puts(out, "}");
    }
    obs_format_value(v, num, sizeof num);
    opbuf_puts(out, " ");
    opbuf_puts(out, num);
    return opbuf_puts(out, "\n"); /* a failed append leaves the buffer failed (util/buf.h) */
}

static int write_family(opbuf *out, obs_fam *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    int rc = opbuf_printf(out, "# HELP %s ", f->name);
    if (!rc)
        rc = escape_help(out, f->help);
    if (!rc)
        rc = opbuf_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
    size_t n = opmap_count(&f->series);
    if (rc || n == 0)
        return rc;
    series_t **v = malloc(n * sizeof *v);
    if (!v)
        return -ENOMEM;
    opmap_iter it;
    opmap_entry *e;
    size_t k = 0;
    opmap_iter_init(&it, &f->series);
    while ((e = opmap_next(&it)) != NULL)
        v[k++] = e->value;
    g_cmp_nlabels = f->nlabels;
    qsort(v, n, sizeof *v, cmp_series);
    for (size_t i = 0; i < n && !rc; i++) {
        const series_t *s = v[i];
        if (f->type != OBS_HISTOGRAM) {
            rc = write_sample(out, f, s, "", NULL, s->value);
            continue;
        }
        uint64_t cum = 0;
        char le[32];
        for (size_t b = 0; b < f->nbounds && !rc; b++) {
            cum += s->buckets[b];
            obs_format_value(f->bounds[b], le, sizeof le);
            rc = write_sample(out, f, s, "_bucket", le, (double)cum);
        }
        if (!rc)
            rc = write_sample(out, f, s, "_bucket", "+Inf", (double)s->count);
        if (!rc)
            rc = write_sample(out, f, s, "_sum", NULL, s->value);
        if (!rc)
            rc = write_sample(out, f, s, "_count", NULL, (double)s->count);
    }
    free(v);
    return rc;
}

int obs_reg_write(obs_reg *r, opbuf *out)
{
    if (!r)
        return 0;
    for (size_t i = 0; i < r->ncollectors; i++)
        r->collectors[i].fn(r->collectors[i].ud);
    size_t n = opmap_count(&r->fams);
    obs_fam **v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    opmap_iter it;
    opmap_entry *e;
    size_t k = 0;
    opmap_iter_init(&it, &r->fams);
    while ((e = opmap_next(&it)) != NULL) {
        obs_fam *f = e->value;
        v[k++] = f;
        if (f->dropped) {
            const char *lv[] = {f->name};
            obs_set(r->dropped_fam, lv, (double)f->dropped);
        }
    }
    qsort(v, n, sizeof *v, cmp_fam);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = write_family(out, v[i]);
    free(v);
    return rc;
}
