#include "engine/histogram.h"
#include "test.h"

#include <errno.h>
#include <math.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_buckets_grow_by_ratio(void)
{
    ehist h;
    ehist_opts o;
    ehist_opts_cpu(&o);
    ASSERT_EQ_INT(ehist_init(&h, &o), 0);
    /* ceil(log(1000 * 0.05 / 0.01 + 1) / log(1.05)) + 1 */
    ASSERT_EQ_INT(h.nbuckets, 176);
    ASSERT_NEAR(ehist_bucket_start(&h, 0), 0, 1e-12);
    ASSERT_NEAR(ehist_bucket_start(&h, 1), 0.01, 1e-12);
    ASSERT_NEAR(ehist_bucket_start(&h, 2), 0.01 + 0.0105, 1e-12);
    ASSERT(ehist_bucket_start(&h, h.nbuckets - 1) >= 1000.0 / 1.05);
    for (size_t i = 1; i < h.nbuckets; i++) {
        double s = ehist_bucket_start(&h, i);
        double width = ehist_bucket_start(&h, i + 1) - s;
        ASSERT_NEAR(width / (s - ehist_bucket_start(&h, i - 1)), 1.05, 1e-9);
        ASSERT_EQ_INT(ehist_bucket_of(&h, s), i);
        ASSERT_EQ_INT(ehist_bucket_of(&h, s - width * 1e-6), i - 1);
    }
    ASSERT_EQ_INT(ehist_bucket_of(&h, 0), 0);
    ASSERT_EQ_INT(ehist_bucket_of(&h, 0.0099), 0);
    ASSERT_EQ_INT(ehist_bucket_of(&h, 1e9), h.nbuckets - 1);
    ehist_release(&h);
}

static void test_bad_options_and_samples(void)
{
    ehist h;
    ehist_opts o;
    ehist_opts_memory(&o);
    o.ratio = 1.0;
    ASSERT_EQ_INT(ehist_init(&h, &o), -EINVAL);
    ehist_opts_memory(&o);
    o.first_bucket = 0;
    ASSERT_EQ_INT(ehist_init(&h, &o), -EINVAL);
    ehist_opts_memory(&o);
    o.half_life_s = NAN;
    ASSERT_EQ_INT(ehist_init(&h, &o), -EINVAL);
    ehist_opts_memory(&o);
    o.ratio = 1.0001; /* would need ~85k buckets: refused, memory stays bounded */
    ASSERT_EQ_INT(ehist_init(&h, &o), -EINVAL);
    ehist_opts_memory(&o);
    ASSERT_EQ_INT(ehist_init(&h, &o), 0);
    ASSERT_EQ_INT(ehist_add(&h, NAN, 1, 0), -EINVAL);
    ASSERT_EQ_INT(ehist_add(&h, INFINITY, 1, 0), -EINVAL);
    ASSERT_EQ_INT(ehist_add(&h, 1, 0, 0), -EINVAL);
    ASSERT_EQ_INT(ehist_add(&h, 1, 1, NAN), -EINVAL);
    ASSERT(ehist_empty(&h));
    ASSERT_NEAR(ehist_percentile(&h, 0.9), 0, 0);
    /* Negative usage (a counter reset upstream) counts as zero. */
    ASSERT_EQ_INT(ehist_add(&h, -5, 1, 0), 0);
    ASSERT_NEAR(ehist_percentile(&h, 1), 1e7, 1e-3);
    ehist_release(&h);
}

/* Equal weights at one instant: answers are the bucket end just above the
 * exact sample quantile, so never below it and at most one bucket (5 %) above. */
static void test_percentiles_bracket_exact_values(void)
{
    ehist h;
    ehist_opts o;
    ehist_opts_cpu(&o);
    ASSERT_EQ_INT(ehist_init(&h, &o), 0);
    enum { N = 5000 };
    static double v[N];
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[i] = 0.05 + (double)(x % 100000) / 25000.0; /* 0.05 .. 4.05 cores */
        ASSERT_EQ_INT(ehist_add(&h, v[i], 1, 1000), 0);
    }
    qsort(v, N, sizeof v[0], cmp_double);
    const double qs[] = {0.5, 0.9, 0.95, 0.99};
    for (size_t k = 0; k < 4; k++) {
        double exact = v[(size_t)ceil(qs[k] * N) - 1]; /* smallest value with >= q of the weight */
        double got = ehist_percentile(&h, qs[k]);
        ASSERT_CMP_INT(got * 1e6, >, exact * 1e6);
        ASSERT_CMP_INT(got * 1e6, <=, exact * 1.05 * 1e6 + 1);
    }
    ASSERT_EQ_INT(h.count, N);
    ASSERT_NEAR(h.peak, v[N - 1], 0);
    ehist_release(&h);
}

static void test_decay_halves_weight_per_half_life(void)
{
    ehist h;
    ehist_opts o;
    ehist_opts_cpu(&o);
    ASSERT_EQ_INT(ehist_init(&h, &o), 0);
    /* Same instant: the 1-core sample and the 100-core sample weigh the same,
     * so P50 is the bucket of 1 core. */
    ehist_add(&h, 1, 1, 0);
    ehist_add(&h, 100, 1, 0);
    double end1 = ehist_bucket_start(&h, ehist_bucket_of(&h, 1) + 1);
    double end100 = ehist_bucket_start(&h, ehist_bucket_of(&h, 100) + 1);
    ASSERT_NEAR(ehist_percentile(&h, 0.5), end1, 1e-12);
    ehist_clear(&h);
    /* 100 cores one half-life later weighs twice as much: P50 moves to it,
     * P33 stays at 1 core (weights 1 and 2 of 3). */
    ehist_add(&h, 1, 1, 0);
    ehist_add(&h, 100, 1, 86400);
    ASSERT_NEAR(h.total, 3, 1e-12);
    ASSERT_NEAR(ehist_percentile(&h, 0.5), end100, 1e-12);
    ASSERT_NEAR(ehist_percentile(&h, 0.33), end1, 1e-12);
    ASSERT_NEAR(ehist_span(&h), 86400, 0);
    ehist_release(&h);
}

/* A year of samples at 1-minute steps (365 half-lives): the reference time
 * moves forward, weights stay finite, and the recent past dominates. */
static void test_rebase_keeps_weights_finite(void)
{
    ehist h;
    ehist_opts o;
    ehist_opts_memory(&o);
    ASSERT_EQ_INT(ehist_init(&h, &o), 0);
    double t = 0;
    for (int day = 0; day < 365; day++) {
        double usage = day < 358 ? 2e9 : 5e8; /* dropped to 500 MB in the last week */
        for (int m = 0; m < 1440; m += 10, t += 600)
            ASSERT_EQ_INT(ehist_add(&h, usage, 1, t), 0);
    }
    ASSERT(isfinite(h.total) && h.total > 0);
    ASSERT(h.ref > 0);
    /* Last 7 days hold 1 - 2^-7 of the weight. */
    double p90 = ehist_percentile(&h, 0.9);
    ASSERT(p90 >= 5e8 && p90 <= 5e8 * 1.05);
    double p995 = ehist_percentile(&h, 0.995);
    ASSERT(p995 >= 2e9 && p995 <= 2e9 * 1.05);
    ASSERT_EQ_INT(h.count, 365 * 144);
    ASSERT_NEAR(h.peak, 2e9, 0);
    ehist_release(&h);
}

static void test_merge_equals_single_histogram(void)
{
    ehist all, a, b;
    ehist_opts o;
    ehist_opts_cpu(&o);
    ASSERT_EQ_INT(ehist_init(&all, &o), 0);
    ASSERT_EQ_INT(ehist_init(&a, &o), 0);
    ASSERT_EQ_INT(ehist_init(&b, &o), 0);
    /* a: pod 1 over days 0..100 (its reference moves); b: pod 2, days 50..60 only. */
    for (int i = 0; i < 100 * 24; i++) {
        double t = i * 3600.0, v = 0.2 + (i % 7) * 0.1;
        ehist_add(&a, v, 1, t);
        ehist_add(&all, v, 1, t);
        if (i >= 50 * 24 && i < 60 * 24) {
            ehist_add(&b, v * 3, 1, t);
            ehist_add(&all, v * 3, 1, t);
        }
    }
    ASSERT_EQ_INT(ehist_merge(&a, &b), 0);
    ASSERT_EQ_INT(a.count, all.count);
    ASSERT_NEAR(a.first_t, all.first_t, 0);
    ASSERT_NEAR(a.last_t, all.last_t, 0);
    ASSERT_NEAR(a.peak, all.peak, 0);
    double ta = a.total * exp2((a.ref - all.ref) / o.half_life_s);
    ASSERT_NEAR(ta / all.total, 1, 1e-9);
    for (double q = 0.05; q < 1; q += 0.05)
        ASSERT_NEAR(ehist_percentile(&a, q), ehist_percentile(&all, q), 1e-12);
    /* Merging into an empty histogram copies; merging empty is a no-op. */
    ehist e;
    ASSERT_EQ_INT(ehist_init(&e, &o), 0);
    ASSERT_EQ_INT(ehist_merge(&e, &b), 0);
    ASSERT_NEAR(ehist_percentile(&e, 0.5), ehist_percentile(&b, 0.5), 0);
    ehist_clear(&e);
    ASSERT_EQ_INT(ehist_merge(&b, &e), 0);
    ASSERT_EQ_INT(b.count, 10 * 24);
    /* Different bucket layouts cannot merge. */
    ehist m;
    ehist_opts mo;
    ehist_opts_memory(&mo);
    ASSERT_EQ_INT(ehist_init(&m, &mo), 0);
    ASSERT_EQ_INT(ehist_merge(&m, &a), -EINVAL);
    ehist_release(&m);
    ehist_release(&e);
    ehist_release(&all);
    ehist_release(&a);
    ehist_release(&b);
}

static void test_open_ended_last_bucket(void)
{
    ehist h;
    ehist_opts o;
    ehist_opts_cpu(&o);
    ASSERT_EQ_INT(ehist_init(&h, &o), 0);
    ehist_add(&h, 5000, 1, 0); /* beyond max_value */
    ASSERT_NEAR(ehist_percentile(&h, 0.5), ehist_bucket_start(&h, h.nbuckets - 1), 0);
    ASSERT_NEAR(h.peak, 5000, 0);
    ASSERT_NEAR(ehist_span(&h), 0, 0);
    ehist_release(&h);
}

int main(void)
{
    TEST_RUN(test_buckets_grow_by_ratio);
    TEST_RUN(test_bad_options_and_samples);
    TEST_RUN(test_percentiles_bracket_exact_values);
    TEST_RUN(test_decay_halves_weight_per_half_life);
    TEST_RUN(test_rebase_keeps_weights_finite);
    TEST_RUN(test_merge_equals_single_histogram);
    TEST_RUN(test_open_ended_last_bucket);
    return test_summary();
}
