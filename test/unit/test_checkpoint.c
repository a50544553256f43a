/*
 * Checkpoints of the metrics-server histograms (metrics/checkpoint.h): a
 * round trip restores every histogram exactly; the size cap keeps the newest
 * series; foreign, damaged or differently shaped documents are refused or
 * skipped, never half-applied.
 */
#include "test.h"

#include <errno.h>
#include <math.h>

#include "engine/histogram.h"
#include "metrics/checkpoint.h"
#include "util/buf.h"

typedef struct got {
    int n;
    char kind[8][32], name[8][32], ctr[8][32];
    double updated[8];
    ehist cpu[8], mem[8];
} got;

static int keep(const char *kind, const char *name, const char *container, double updated_s,
                ehist *cpu, ehist *mem, void *ud)
{
    got *g = ud;
    if (g->n >= 8) {
        ehist_release(cpu);
        ehist_release(mem);
        return 0;
    }
    snprintf(g->kind[g->n], 32, "%s", kind);
    snprintf(g->name[g->n], 32, "%s", name);
    snprintf(g->ctr[g->n], 32, "%s", container);
    g->updated[g->n] = updated_s;
    g->cpu[g->n] = *cpu;
    g->mem[g->n] = *mem;
    g->n++;
    return 0;
}

static void got_release(got *g)
{
    for (int i = 0; i < g->n; i++) {
        ehist_release(&g->cpu[i]);
        ehist_release(&g->mem[i]);
    }
    g->n = 0;
}

static void same_hist(const ehist *a, const ehist *b)
{
    ASSERT_EQ_INT(a->nbuckets, b->nbuckets);
    for (size_t i = 0; i < a->nbuckets; i++)
        if (a->w[i] != b->w[i])
            test_fail(__FILE__, __LINE__, "bucket %zu: %.17g != %.17g", i, a->w[i], b->w[i]);
    ASSERT_EQ_INT(a->count, b->count);
    ASSERT(a->ref == b->ref && a->first_t == b->first_t && a->last_t == b->last_t &&
           a->peak == b->peak);
    ASSERT_NEAR(a->total, b->total, a->total * 1e-12);
    for (double q = 0.5; q < 1; q += 0.1)
        ASSERT(ehist_percentile(a, q) == ehist_percentile(b, q));
}

static void fill(ehist *cpu, ehist *mem, int seed)
{
    ehist_opts co, mo;
    ehist_opts_cpu(&co);
    ehist_opts_memory(&mo);
    ASSERT_EQ_INT(ehist_init(cpu, &co), 0);
    ASSERT_EQ_INT(ehist_init(mem, &mo), 0);
    for (int i = 0; i < 2000; i++) {
        double t = 1796000000.0 + 30.0 * i;
        ASSERT_EQ_INT(ehist_add(cpu, 0.1 + 0.3 * sin(i * 0.01 * seed) * sin(i * 0.01 * seed), 1, t),
                      0);
        ASSERT_EQ_INT(ehist_add(mem, 2e8 + 1e6 * (i % (50 + seed)), 1, t), 0);
    }
}

static void test_round_trip_is_exact(void)
{
    ehist c[3], m[3];
    for (int i = 0; i < 3; i++)
        fill(&c[i], &m[i], i + 1);
    mckpt_series s[3] = {{"Deployment", "web", "app", 1796059000, &c[0], &m[0]},
                         {"Deployment", "web", "side\"car", 1796059990, &c[1], &m[1]},
                         {"StatefulSet", "db", "pg", 1796050000, &c[2], &m[2]}};
    opbuf b;
    opbuf_init(&b, 1 << 20);
    size_t kept = 0;
    ASSERT_EQ_INT(mckpt_encode("shop", 1796060000, s, 3, 0, &b, &kept), 0);
    ASSERT_EQ_INT(kept, 3);
    ASSERT_STR_CONTAINS(opbuf_str(&b),
                        "{\"version\":1,\"namespace\":\"shop\",\"savedAt\":1796060000,");
    ASSERT_CMP_INT(b.len, <, 40000); /* sparse buckets */
    ehist_opts co, mo;
    ehist_opts_cpu(&co);
    ehist_opts_memory(&mo);
    got g = {0};
    size_t skipped = 9;
    operr err;
    ASSERT_EQ_INT(mckpt_decode(b.data, b.len, "shop", &co, &mo, keep, &g, &skipped, &err), 3);
    ASSERT_EQ_INT(skipped, 0);
    /* newest first */
    ASSERT_STR_EQ(g.ctr[0], "side\"car");
    ASSERT_STR_EQ(g.name[2], "db");
    ASSERT_NEAR(g.updated[2], 1796050000, 0);
    same_hist(&g.cpu[0], &c[1]);
    same_hist(&g.mem[0], &m[1]);
    same_hist(&g.cpu[1], &c[0]);
    same_hist(&g.mem[2], &m[2]);
    got_release(&g);

    /* the cap keeps the newest series whole */
    opbuf_reset(&b);
    ASSERT_EQ_INT(mckpt_encode("shop", 1796060000, s, 3, 1500, &b, &kept), 0);
    ASSERT_CMP_INT(kept, <, 3);
    ASSERT_CMP_INT(kept, >=, 1);
    ASSERT_CMP_INT(b.len, <=, 1500);
    ASSERT_EQ_INT(mckpt_decode(b.data, b.len, "shop", &co, &mo, keep, &g, &skipped, &err),
                  (long long)kept);
    ASSERT_STR_EQ(g.ctr[0], "side\"car");
    got_release(&g);
    opbuf_release(&b);
    for (int i = 0; i < 3; i++) {
        ehist_release(&c[i]);
        ehist_release(&m[i]);
    }
}

static void test_foreign_and_damaged_documents(void)
{
    ehist_opts co, mo;
    ehist_opts_cpu(&co);
    ehist_opts_memory(&mo);
    got g = {0};
    size_t skipped;
    operr err;
    static const struct {
        const char *doc, *msg;
    } bad[] = {
        {"nope", "not JSON"},
        {"{\"version\":2,\"namespace\":\"shop\",\"series\":[]}", "not version 1"},
        {"{\"version\":1,\"namespace\":\"other\",\"series\":[]}", "of namespace 'other'"},
        {"{\"version\":1,\"namespace\":\"shop\"}", "no series"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ASSERT_EQ_INT(mckpt_decode(bad[i].doc, strlen(bad[i].doc), "shop", &co, &mo, keep, &g,
                                   &skipped, &err),
                      -EPROTO);
        ASSERT_STR_CONTAINS(err.msg, bad[i].msg);
    }
    /* damaged series are skipped one by one; a good one still restores */
    static const char mixed[] =
        "{\"version\":1,\"namespace\":\"shop\",\"savedAt\":1,\"series\":["
        /* other bucket options */
        "{\"kind\":\"Deployment\",\"name\":\"a\",\"container\":\"c\",\"updated\":1,"
        "\"cpu\":{\"options\":[0.02,1.05,1000,86400],\"ref\":1,\"count\":1,\"first\":1,"
        "\"last\":1,\"peak\":1,\"buckets\":[[1,1]]},\"memory\":{}},"
        /* a bucket past the end */
        "{\"kind\":\"Deployment\",\"name\":\"b\",\"container\":\"c\",\"updated\":1,"
        "\"cpu\":{\"options\":[0.01,1.05,1000,86400],\"ref\":1,\"count\":1,\"first\":1,"
        "\"last\":1,\"peak\":1,\"buckets\":[[999999,1]]},\"memory\":{}},"
        /* a negative weight */
        "{\"kind\":\"Deployment\",\"name\":\"c\",\"container\":\"c\",\"updated\":1,"
        "\"cpu\":{\"options\":[0.01,1.05,1000,86400],\"ref\":1,\"count\":1,\"first\":1,"
        "\"last\":1,\"peak\":1,\"buckets\":[[1,-1]]},\"memory\":{}},"
        /* no name */
        "{\"kind\":\"Deployment\",\"container\":\"c\",\"updated\":1},"
        /* good: one sample each */
        "{\"kind\":\"Deployment\",\"name\":\"ok\",\"container\":\"c\",\"updated\":5,"
        "\"cpu\":{\"options\":[0.01,1.05,1000,86400],\"ref\":5,\"count\":1,\"first\":5,"
        "\"last\":5,\"peak\":0.25,\"buckets\":[[20,1]]},"
        "\"memory\":{\"options\":[1e7,1.05,1e12,86400],\"ref\":5,\"count\":1,\"first\":5,"
        "\"last\":5,\"peak\":3e8,\"buckets\":[[30,1]]}}]}";
    ASSERT_EQ_INT(mckpt_decode(mixed, strlen(mixed), "shop", &co, &mo, keep, &g, &skipped, &err),
                  1);
    ASSERT_EQ_INT(skipped, 4);
    ASSERT_STR_EQ(g.name[0], "ok");
    ASSERT_EQ_INT(g.cpu[0].count, 1);
    ASSERT_NEAR(g.cpu[0].total, 1, 0);
    ASSERT_NEAR(ehist_percentile(&g.cpu[0], 0.9), ehist_bucket_start(&g.cpu[0], 21), 0);
    got_release(&g);
    opbuf b;
    opbuf_init(&b, 1024);
    size_t kept;
    ASSERT_EQ_INT(mckpt_encode("", 1, NULL, 0, 0, &b, &kept), -EINVAL);
    opbuf_release(&b);
}

int main(void)
{
    TEST_RUN(test_round_trip_is_exact);
    TEST_RUN(test_foreign_and_damaged_documents);
    return test_summary();
}
