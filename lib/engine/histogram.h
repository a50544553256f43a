/*
 * ehist: a decaying histogram with exponentially growing buckets, the shape
 * the VPA recommender uses, for usage sampled in memory (metrics-server).
 *
 * Buckets: bucket 0 is [0, first); bucket i starts at
 * first * (ratio^i - 1) / (ratio - 1), so each bucket is `ratio` times wider
 * than the previous one and the relative error of any answer is below
 * ratio - 1 (5 % for 1.05). The last bucket holds everything above max_value.
 * The number of buckets is fixed by the options (at most EHIST_MAX_BUCKETS),
 * so the memory of a histogram is bounded whatever it is fed.
 *
 * Decay: a sample taken at time t weighs w * 2^((t - ref) / half_life), i.e.
 * a sample one half-life older counts half as much. Weights are kept relative
 * to a reference time `ref` that moves forward (rescaling every bucket) when
 * the exponent would grow too large, so no weight ever overflows.
 *
 * Percentile answers are the END of the bucket where the cumulative weight
 * reaches q (the start of the last bucket for the open-ended one): an
 * overestimate by less than one bucket width, the safe side for sizing.
 *
 * Ownership: ehist_init() allocates the bucket array; ehist_release() frees
 * it (the struct itself is the caller's). Not thread-safe.
 */
#ifndef OPTIPOD_ENGINE_HISTOGRAM_H
#define OPTIPOD_ENGINE_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define EHIST_MAX_BUCKETS 4096

typedef struct ehist_opts {
    double first_bucket; /* width of bucket 0, > 0 (CPU: 0.01 cores, memory: 1e7 bytes) */
    double ratio;        /* growth of each bucket, > 1 (1.05) */
    double max_value;    /* values above land in the last bucket (CPU 1000, memory 1e12) */
    double half_life_s;  /* decay half-life in seconds, > 0 (86400) */
} ehist_opts;

typedef struct ehist {
    ehist_opts o;
    size_t nbuckets;
    double *w;      /* nbuckets weights, relative to ref */
    double total;   /* sum of w */
    double ref;     /* reference time (seconds) of the weights */
    uint64_t count; /* samples added (undecayed) */
    double first_t; /* time of the oldest sample (valid when count > 0) */
    double last_t;  /* time of the newest sample */
    double peak;    /* largest value added */
} ehist;

/* Presets matching the VPA's CPU (cores) and memory (bytes) histograms, 24 h half-life. */
void ehist_opts_cpu(ehist_opts *o);
void ehist_opts_memory(ehist_opts *o);

/* Returns 0, -EINVAL for bad options (or too many buckets), -ENOMEM. */
int ehist_init(ehist *h, const ehist_opts *o);
void ehist_release(ehist *h);
/* Forget all samples; keeps the allocation. */
void ehist_clear(ehist *h);

/* Add `value` (negative counts as 0) with `weight` (> 0) observed at `t_s`
 * seconds (any epoch, e.g. Unix time). Returns 0 or -EINVAL for NaN/inf or a
 * non-positive weight. */
int ehist_add(ehist *h, double value, double weight, double t_s);
/* The q-th quantile (0 <= q <= 1) of the weighted samples; 0 when empty. */
double ehist_percentile(const ehist *h, double q);
/* Fold `src` into `dst` (same options required, else -EINVAL): weights are
 * brought to a common reference time, counts and extremes combined. */
int ehist_merge(ehist *dst, const ehist *src);

int ehist_empty(const ehist *h);
/* Seconds between the oldest and newest sample (0 when fewer than two). */
double ehist_span(const ehist *h);
/* Start of bucket i (i <= nbuckets) and the bucket a value falls in. */
double ehist_bucket_start(const ehist *h, size_t i);
size_t ehist_bucket_of(const ehist *h, double value);

#endif
