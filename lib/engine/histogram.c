#include "engine/histogram.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rebase the weights once a new sample would weigh more than 2^64 times a
 * sample at `ref`: far from overflow (doubles reach 2^1023), and old samples
 * are by then negligible anyway. */
#define EHIST_MAX_EXP 64.0

void ehist_opts_cpu(ehist_opts *o)
{
    o->first_bucket = 0.01;
    o->ratio = 1.05;
    o->max_value = 1000.0;
    o->half_life_s = 86400.0;
}

void ehist_opts_memory(ehist_opts *o)
{
    o->first_bucket = 1e7;
    o->ratio = 1.05;
    o->max_value = 1e12;
    o->half_life_s = 86400.0;
}

int ehist_init(ehist *h, const ehist_opts *o)
{
    memset(h, 0, sizeof *h);
    if (!(o->first_bucket > 0) || !(o->ratio > 1.0) || !(o->max_value >= o->first_bucket) ||
        !(o->half_life_s > 0) || !isfinite(o->max_value) || !isfinite(o->ratio))
        return -EINVAL;
    double n = ceil(log(o->max_value * (o->ratio - 1) / o->first_bucket + 1) / log(o->ratio)) + 1;
    if (!(n <= EHIST_MAX_BUCKETS))
        return -EINVAL;
    h->o = *o;
    h->nbuckets = (size_t)n;
    h->w = calloc(h->nbuckets, sizeof *h->w);
    if (!h->w) {
        h->nbuckets = 0;
        return -ENOMEM;
    }
    return 0;
}

void ehist_release(ehist *h)
{
    free(h->w);
    h->w = NULL;
    h->nbuckets = 0;
}

void ehist_clear(ehist *h)
{
    if (h->w)
        memset(h->w, 0, h->nbuckets * sizeof *h->w);
    h->total = 0;
    h->ref = 0;
    h->count = 0;
    h->first_t = h->last_t = h->peak = 0;
}

double ehist_bucket_start(const ehist *h, size_t i)
{
    return h->o.first_bucket * (pow(h->o.ratio, (double)i) - 1) / (h->o.ratio - 1);
}

size_t ehist_bucket_of(const ehist *h, double value)
{
    if (!(value >= h->o.first_bucket))
        return 0;
    double b = floor(log(value * (h->o.ratio - 1) / h->o.first_bucket + 1) / log(h->o.ratio));
    if (!(b < (double)h->nbuckets - 1))
        return h->nbuckets - 1;
    size_t i = (size_t)b;
    /* log() may land one bucket off at the edges; settle on the exact one. */
    if (i > 0 && value < ehist_bucket_start(h, i))
        i--;
    else if (i + 1 < h->nbuckets && value >= ehist_bucket_start(h, i + 1))
        i++;
    return i;
}

/* Move the reference time to `ref`, scaling every weight to match. */
static void rebase(ehist *h, double ref)
{
    double f = exp2((h->ref - ref) / h->o.half_life_s);
    h->total = 0;
    for (size_t i = 0; i < h->nbuckets; i++) {
        h->w[i] *= f;
        h->total += h->w[i];
    }
    h->ref = ref;
}

int ehist_add(ehist *h, double value, double weight, double t_s)
{
    if (!isfinite(value) || !isfinite(t_s) || !(weight > 0) || !isfinite(weight))
        return -EINVAL;
    if (value < 0)
        value = 0;
    if (h->count == 0 && h->total == 0)
        h->ref = t_s;
    else if ((t_s - h->ref) / h->o.half_life_s > EHIST_MAX_EXP)
        rebase(h, t_s);
    double wt = weight * exp2((t_s - h->ref) / h->o.half_life_s);
    h->w[ehist_bucket_of(h, value)] += wt;
    h->total += wt;
    if (h->count == 0 || t_s < h->first_t)
        h->first_t = t_s;
    if (h->count == 0 || t_s > h->last_t)
        h->last_t = t_s;
    if (h->count == 0 || value > h->peak)
        h->peak = value;
    h->count++;
    return 0;
}

double ehist_percentile(const ehist *h, double q)
{
    if (!(h->total > 0))
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    double threshold = q * h->total, partial = 0;
    size_t last = 0;
    for (size_t i = 0; i < h->nbuckets; i++) {
        if (h->w[i] <= 0)
            continue;
        last = i;
        partial += h->w[i];
        if (partial >= threshold)
            break;
    }
    /* Rounding may leave partial a hair below total for q = 1: `last` is then
     * the highest non-empty bucket, the right answer. */
    return last + 1 < h->nbuckets ? ehist_bucket_start(h, last + 1) : ehist_bucket_start(h, last);
}

int ehist_merge(ehist *dst, const ehist *src)
{
    if (memcmp(&dst->o, &src->o, sizeof dst->o) != 0 || dst->nbuckets != src->nbuckets)
        return -EINVAL;
    if (src->count == 0)
        return 0;
    if (dst->count == 0) {
        memcpy(dst->w, src->w, src->nbuckets * sizeof *src->w);
        dst->total = src->total;
        dst->ref = src->ref;
        dst->count = src->count;
        dst->first_t = src->first_t;
        dst->last_t = src->last_t;
        dst->peak = src->peak;
        return 0;
    }
    double ref = dst->ref > src->ref ? dst->ref : src->ref;
    rebase(dst, ref);
    double f = exp2((src->ref - ref) / src->o.half_life_s);
    for (size_t i = 0; i < dst->nbuckets; i++) {
        dst->w[i] += src->w[i] * f;
        dst->total += src->w[i] * f;
    }
    dst->count += src->count;
    if (src->first_t < dst->first_t)
        dst->first_t = src->first_t;
    if (src->last_t > dst->last_t)
        dst->last_t = src->last_t;
    if (src->peak > dst->peak)
        dst->peak = src->peak;
    return 0;
}

int ehist_empty(const ehist *h)
{
    return h->count == 0;
}

double ehist_span(const ehist *h)
{
    return h->count > 1 ? h->last_t - h->first_t : 0;
}
