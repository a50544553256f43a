/*
 * mckpt: histogram checkpoints. See checkpoint.h.
 */
#include "metrics/checkpoint.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shortest decimal that reads back as exactly x. */
static int put_num(opbuf *out, double x)
{
    char tmp[40];
    if (x == floor(x) && fabs(x) < 1e15)
        return opbuf_printf(out, "%.0f", x); /* times and counts as they are */
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, x);
        if (strtod(tmp, NULL) == x)
            break;
    }
    return opbuf_puts(out, tmp);
}

static int put_str(opbuf *out, const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    int rc = t ? opbuf_puts(out, t) : -ENOMEM;
    cJSON_free(t);
    cJSON_Delete(j);
    return rc;
}

static int put_hist(opbuf *o, const ehist *h)
{
    const double opts[4] = {h->o.first_bucket, h->o.ratio, h->o.max_value, h->o.half_life_s};
    int rc = opbuf_puts(o, "{\"options\":[");
    for (int i = 0; i < 4 && rc == 0; i++) {
        if (i)
            rc = opbuf_puts(o, ",");
        if (rc == 0)
            rc = put_num(o, opts[i]);
    }
    const struct {
        const char *k;
        double v;
    } f[] = {{"ref", h->ref},
             {"count", (double)h->count},
             {"first", h->first_t},
             {"last", h->last_t},
             {"peak", h->peak}};
    for (size_t i = 0; i < sizeof f / sizeof *f && rc == 0; i++) {
        rc = opbuf_printf(o, i == 0 ? "],\"%s\":" : ",\"%s\":", f[i].k);
        if (rc == 0)
            rc = put_num(o, f[i].v);
    }
    if (rc == 0)
        rc = opbuf_puts(o, ",\"buckets\":[");
    int first = 1;
    for (size_t i = 0; i < h->nbuckets && rc == 0; i++) {
        if (!(h->w[i] > 0))
            continue;
        rc = opbuf_printf(o, "%s[%zu,", first ? "" : ",", i);
        if (rc == 0)
            rc = put_num(o, h->w[i]);
        if (rc == 0)
            rc = opbuf_puts(o, "]");
        first = 0;
    }
    return rc ? rc : opbuf_puts(o, "]}");
}

static int by_updated(const void *a, const void *b)
{
    const mckpt_series *x = a, *y = b;
    return (x->updated_s < y->updated_s) - (x->updated_s > y->updated_s);
}

int mckpt_encode(const char *ns, double saved_s, mckpt_series *s, size_t n, size_t max_bytes,
                 opbuf *out, size_t *kept)
{
    if (!ns || !*ns)
        return -EINVAL;
    if (!max_bytes)
        max_bytes = MCKPT_MAX_BYTES;
    *kept = 0;
    qsort(s, n, sizeof *s, by_updated);
    opbuf one;
    opbuf_init(&one, max_bytes);
    size_t start = out->len;
    int rc = opbuf_printf(out, "{\"version\":%d,\"namespace\":", MCKPT_VERSION);
    if (rc == 0)
        rc = put_str(out, ns);
    if (rc == 0)
        rc = opbuf_puts(out, ",\"savedAt\":");
    if (rc == 0)
        rc = put_num(out, saved_s);
    if (rc == 0)
        rc = opbuf_puts(out, ",\"series\":[");
    for (size_t i = 0; i < n && rc == 0; i++) {
        opbuf_reset(&one);
        rc = opbuf_puts(&one, *kept ? ",{\"kind\":" : "{\"kind\":");
        rc = rc ?: put_str(&one, s[i].kind);
        rc = rc ?: opbuf_puts(&one, ",\"name\":");
        rc = rc ?: put_str(&one, s[i].name);
        rc = rc ?: opbuf_puts(&one, ",\"container\":");
        rc = rc ?: put_str(&one, s[i].container);
        rc = rc ?: opbuf_puts(&one, ",\"updated\":");
        rc = rc ?: put_num(&one, s[i].updated_s);
        rc = rc ?: opbuf_puts(&one, ",\"cpu\":");
        rc = rc ?: put_hist(&one, s[i].cpu);
        rc = rc ?: opbuf_puts(&one, ",\"memory\":");
        rc = rc ?: put_hist(&one, s[i].mem);
        rc = rc ?: opbuf_puts(&one, "}");
        if (rc == -E2BIG || (rc == 0 && out->len - start + one.len + 2 > max_bytes)) {
            rc = 0;
            break; /* the older series do not fit: dropped */
        }
        if (rc == 0 && (rc = opbuf_append(out, one.data, one.len)) == 0)
            (*kept)++;
    }
    opbuf_release(&one);
    if (rc == 0)
        rc = opbuf_puts(out, "]}");
    return rc == -E2BIG ? -ENOMEM : rc;
}

/* ---- decoding ------------------------------------------------------------------------------ */

static int num_of(const cJSON *o, const char *k, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return -1;
    *out = v->valuedouble;
    return 0;
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) < 254 ? v->valuestring
                                                                                  : NULL;
}

/* One histogram; 0 or -1 (skip the series); -ENOMEM. */
static int get_hist(const cJSON *j, const ehist_opts *o, ehist *h)
{
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(j, "options");
    const double want[4] = {o->first_bucket, o->ratio, o->max_value, o->half_life_s};
    if (!cJSON_IsArray(opts) || cJSON_GetArraySize(opts) != 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        const cJSON *v = cJSON_GetArrayItem(opts, i);
        if (!cJSON_IsNumber(v) || v->valuedouble != want[i])
            return -1; /* other bucket edges: the weights would land wrong */
    }
    double ref, count, first, last, peak;
    if (num_of(j, "ref", &ref) || num_of(j, "count", &count) || num_of(j, "first", &first) ||
        num_of(j, "last", &last) || num_of(j, "peak", &peak) || count < 0 || count > 1e15 ||
        count != floor(count) || peak < 0)
        return -1;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "buckets");
    if (!cJSON_IsArray(b))
        return -1;
    int rc = ehist_init(h, o);
    if (rc != 0)
        return rc == -ENOMEM ? -ENOMEM : -1;
    const cJSON *pair;
    cJSON_ArrayForEach(pair, b)
    {
        const cJSON *i = cJSON_GetArrayItem(pair, 0), *w = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsNumber(i) ||
            !cJSON_IsNumber(w) || i->valuedouble < 0 || i->valuedouble >= (double)h->nbuckets ||
            i->valuedouble != floor(i->valuedouble) || !isfinite(w->valuedouble) ||
            w->valuedouble < 0) {
            ehist_release(h);
            return -1;
        }
        h->w[(size_t)i->valuedouble] += w->valuedouble;
        h->total += w->valuedouble;
    }
    if (!isfinite(h->total) || (count == 0) != (h->total == 0)) {
        ehist_release(h);
        return -1;
    }
    h->ref = ref;
    h->count = (uint64_t)count;
    h->first_t = first;
    h->last_t = last;
    h->peak = peak;
    return 0;
}

int mckpt_decode(const char *json, size_t len, const char *want_ns, const ehist_opts *cpu_o,
                 const ehist_opts *mem_o, mckpt_cb cb, void *ud, size_t *skipped, operr *err)
{
    *skipped = 0;
    cJSON *doc = cJSON_ParseWithLength(json, len);
    int rc = 0, restored = 0;
    double version;
    const char *ns = doc ? str_of(doc, "namespace") : NULL;
    const cJSON *series = cJSON_GetObjectItemCaseSensitive(doc, "series"), *s;
    if (!doc) {
        rc = operr_set(err, -EPROTO, "checkpoint: not JSON");
        goto out;
    }
    if (num_of(doc, "version", &version) || version != MCKPT_VERSION) {
        rc = operr_set(err, -EPROTO, "checkpoint: not version %d", MCKPT_VERSION);
        goto out;
    }
    if (!ns || strcmp(ns, want_ns) != 0) {
        rc = operr_set(err, -EPROTO, "checkpoint: of namespace '%.64s', not '%.64s'", ns ? ns : "",
                       want_ns);
        goto out;
    }
    if (!cJSON_IsArray(series)) {
        rc = operr_set(err, -EPROTO, "checkpoint: no series");
        goto out;
    }
    cJSON_ArrayForEach(s, series)
    {
        const char *kind = str_of(s, "kind"), *name = str_of(s, "name"),
                   *ctr = str_of(s, "container");
        double updated;
        ehist cpu, mem;
        if (!kind || !name || !ctr || num_of(s, "updated", &updated)) {
            (*skipped)++;
            continue;
        }
        int a = get_hist(cJSON_GetObjectItemCaseSensitive(s, "cpu"), cpu_o, &cpu);
        int b = a == 0 ? get_hist(cJSON_GetObjectItemCaseSensitive(s, "memory"), mem_o, &mem) : a;
        if (a == 0 && b != 0)
            ehist_release(&cpu);
        if (a == -ENOMEM || b == -ENOMEM) {
            rc = operr_set(err, -ENOMEM, "checkpoint: out of memory");
            goto out;
        }
        if (a || b) {
            (*skipped)++;
            continue;
        }
        if ((rc = cb(kind, name, ctr, updated, &cpu, &mem, ud)) != 0)
            goto out;
        restored++;
    }
    rc = restored;
out:
    cJSON_Delete(doc);
    return rc;
}
