#include "kube/queue.h"
#include "test.h"

#include <errno.h>

static kqueue *mkq(void)
{
    kqueue *q;
    ASSERT_EQ_INT(kqueue_new(&q, NULL), 0);
    return q;
}

static void test_queue_dedup_and_fifo(void)
{
    kqueue *q = mkq();
    const char *k;
    ASSERT_EQ_INT(kqueue_get(q, &k), -EAGAIN);
    kqueue_add(q, "ns/a");
    kqueue_add(q, "ns/b");
    kqueue_add(q, "ns/a");
    ASSERT_EQ_INT(kqueue_len(q), 2);
    ASSERT_EQ_INT(kqueue_get(q, &k), 0);
    ASSERT_STR_EQ(k, "ns/a");
    kqueue_done(q, k);
    ASSERT_EQ_INT(kqueue_get(q, &k), 0);
    ASSERT_STR_EQ(k, "ns/b");
    kqueue_done(q, "ns/b"); /* an equal string works too */
    ASSERT_EQ_INT(kqueue_len(q), 0);
    ASSERT_EQ_INT(kqueue_processing(q), 0);
    kqueue_free(q);
}

/* A key being processed is never handed out again until done(); adds during
 * processing collapse into exactly one more pass. */
static void test_queue_never_twice_concurrently(void)
{
    kqueue *q = mkq();
    const char *k, *k2;
    kqueue_add(q, "a");
    kqueue_add(q, "b");
    ASSERT_EQ_INT(kqueue_get(q, &k), 0);
    ASSERT_STR_EQ(k, "a");
    for (int i = 0; i < 10; i++)
        kqueue_add(q, "a");
    ASSERT_EQ_INT(kqueue_len(q), 1); /* only b */
    ASSERT_EQ_INT(kqueue_get(q, &k2), 0);
    ASSERT_STR_EQ(k2, "b");
    ASSERT_EQ_INT(kqueue_get(q, &k2), -EAGAIN); /* a is not handed out twice */
    kqueue_done(q, k);
    ASSERT_EQ_INT(kqueue_len(q), 1);
    ASSERT_EQ_INT(kqueue_get(q, &k), 0);
    ASSERT_STR_EQ(k, "a");
    kqueue_done(q, k);
    kqueue_done(q, "b");
    ASSERT_EQ_INT(kqueue_get(q, &k), -EAGAIN); /* the burst of 10 was one pass */
    /* done() for a key not processing is harmless. */
    kqueue_done(q, "zzz");
    kqueue_free(q);
}

static void test_queue_per_key_backoff(void)
{
    kqueue *q = mkq();
    uint64_t expect = 5;
    for (int i = 0; i < 25; i++) {
        uint64_t d = kqueue_when(q, "k", (uint64_t)i * 1000);
        ASSERT_EQ_INT(d, expect);
        expect = expect * 2 > 1000000 ? 1000000 : expect * 2;
    }
    ASSERT_EQ_INT(kqueue_num_requeues(q, "k"), 25);
    ASSERT_EQ_INT(kqueue_when(q, "other", 30000), 5); /* per key */
    kqueue_forget(q, "k");
    ASSERT_EQ_INT(kqueue_num_requeues(q, "k"), 0);
    ASSERT_EQ_INT(kqueue_when(q, "k", 31000), 5);
    ASSERT_EQ_INT(kqueue_when(q, "k", 31000), 10);
    kqueue_free(q);
}

/* The overall bucket: a burst of 100 passes at once, then 10 per second. */
static void test_queue_overall_rate_limit(void)
{
    kqueue *q = mkq();
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ASSERT_EQ_INT(kqueue_when(q, key, 0), 5);
    }
    ASSERT_EQ_INT(kqueue_when(q, "k100", 0), 100);
    ASSERT_EQ_INT(kqueue_when(q, "k101", 0), 200);
    for (int i = 102; i < 110; i++) {
        snprintf(key, sizeof key, "k%d", i);
        kqueue_when(q, key, 0);
    }
    ASSERT_EQ_INT(kqueue_when(q, "k110", 0), 1100);
    /* 2 s later 20 tokens came back (-11 + 20 - 1 = 8 left): only the per-key delay. */
    ASSERT_EQ_INT(kqueue_when(q, "k111", 2000), 5);
    /* add_rate_limited puts the key in the delayed set. */
    ASSERT_EQ_INT(kqueue_add_rate_limited(q, "x", 2000), 0);
    ASSERT_EQ_INT(kqueue_delayed(q), 1);
    ASSERT_EQ_INT(kqueue_tick(q, 2004), 1);
    ASSERT_EQ_INT(kqueue_tick(q, 2005), KQUEUE_NEVER);
    ASSERT_EQ_INT(kqueue_len(q), 1);
    kqueue_free(q);
}

static void test_queue_delayed_adds(void)
{
    kqueue *q = mkq();
    const char *k;
    ASSERT_EQ_INT(kqueue_add_after(q, "a", 100, 0), 0);
    ASSERT_EQ_INT(kqueue_add_after(q, "a", 50, 0), 0);  /* earlier wins */
    ASSERT_EQ_INT(kqueue_add_after(q, "a", 500, 0), 0); /* later is ignored */
    ASSERT_EQ_INT(kqueue_delayed(q), 1);
    ASSERT_EQ_INT(kqueue_add_after(q, "b", 30, 0), 0);
    ASSERT_EQ_INT(kqueue_add_after(q, "c", 10, 0), 0);
    ASSERT_EQ_INT(kqueue_add_after(q, "d", 20, 0), 0);
    ASSERT_EQ_INT(kqueue_add_after(q, "now", 0, 0), 0); /* no delay: queued at once */
    ASSERT_EQ_INT(kqueue_len(q), 1);
    ASSERT_EQ_INT(kqueue_tick(q, 9), 1);
    ASSERT_EQ_INT(kqueue_tick(q, 25), 5);
    ASSERT_EQ_INT(kqueue_tick(q, 49), 1);
    ASSERT_EQ_INT(kqueue_len(q), 4);
    const char *order[] = {"now", "c", "d", "b"};
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ_INT(kqueue_get(q, &k), 0);
        ASSERT_STR_EQ(k, order[i]);
        kqueue_done(q, k);
    }
    ASSERT_EQ_INT(kqueue_tick(q, 50), KQUEUE_NEVER);
    ASSERT_EQ_INT(kqueue_get(q, &k), 0);
    ASSERT_STR_EQ(k, "a");
    kqueue_done(q, k);
    /* Many delayed keys come out in time order. */
    for (int i = 0; i < 200; i++) {
        char key[16];
        snprintf(key, sizeof key, "%03d", (i * 37) % 200);
        kqueue_add_after(q, key, (uint64_t)((i * 37) % 200) + 1, 1000);
    }
    kqueue_tick(q, 5000);
    for (int i = 0; i < 200; i++) {
        char key[16];
        snprintf(key, sizeof key, "%03d", i);
        ASSERT_EQ_INT(kqueue_get(q, &k), 0);
        ASSERT_STR_EQ(k, key);
        kqueue_done(q, k);
    }
    kqueue_free(q);
}

static void test_queue_shutdown_drains(void)
{
    kqueue *q = mkq();
    const char *k;
    kqueue_add(q, "a");
    kqueue_add_after(q, "later", 10, 0);
    kqueue_shutdown(q);
    ASSERT(kqueue_shutting_down(q));
    ASSERT_EQ_INT(kqueue_add(q, "b"), -ESHUTDOWN);
    ASSERT_EQ_INT(kqueue_add_after(q, "b", 5, 0), -ESHUTDOWN);
    ASSERT_EQ_INT(kqueue_add_rate_limited(q, "b", 0), -ESHUTDOWN);
    ASSERT_EQ_INT(kqueue_delayed(q), 0);
    ASSERT_EQ_INT(kqueue_get(q, &k), 0);
    ASSERT_STR_EQ(k, "a");
    ASSERT_EQ_INT(kqueue_get(q, &k), -ESHUTDOWN);
    kqueue_free(q); /* frees the key still processing */
}

/* ---- on a real loop ------------------------------------------------------------------- */

typedef struct loopctx {
    uint64_t t0;
    uint64_t retry_at[2], fast_at, slow_at;
    int retries, n;
} loopctx;

static void on_ready(kqueue *q, void *ud)
{
    loopctx *c = ud;
    const char *k;
    while (kqueue_get(q, &k) == 0) {
        uint64_t at = kqueue_now(q) - c->t0;
        c->n++;
        if (strcmp(k, "retry") == 0) {
            if (c->retries < 2)
                c->retry_at[c->retries] = at;
            /* The first pass fails and is rate limited (5 ms). */
            if (c->retries++ == 0)
                kqueue_add_rate_limited(q, k, kqueue_now(q));
        } else if (strcmp(k, "fast") == 0) {
            c->fast_at = at;
        } else {
            c->slow_at = at;
        }
        kqueue_done(q, k);
    }
    if (c->n == 4)
        kqueue_shutdown(q);
}

/* Delayed and rate-limited adds come out of a real loop no earlier than due. */
static void test_queue_real_loop(void)
{
    uv_loop_t loop;
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    kqueue *q = mkq();
    loopctx c = {0};
    ASSERT_EQ_INT(kqueue_bind(q, &loop, on_ready, &c), 0);
    ASSERT_EQ_INT(kqueue_bind(q, &loop, on_ready, &c), -EALREADY);
    uv_update_time(&loop);
    c.t0 = kqueue_now(q);
    kqueue_add_after(q, "slow", 60, kqueue_now(q));
    kqueue_add_after(q, "fast", 20, kqueue_now(q));
    kqueue_add(q, "retry");
    ASSERT_EQ_INT(c.n, 0);         /* never called from inside add */
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once shut down: no timer left */
    ASSERT_EQ_INT(c.n, 4);
    ASSERT_EQ_INT(c.retries, 2);
    ASSERT_CMP_INT(c.retry_at[1], >=, c.retry_at[0] + 5);
    ASSERT_CMP_INT(c.fast_at, >=, 20);
    ASSERT_CMP_INT(c.slow_at, >=, 60);
    ASSERT_CMP_INT(c.slow_at, >=, c.fast_at);
    ASSERT_CMP_INT(c.slow_at, <, 5000);
    kqueue_free(q);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    TEST_RUN(test_queue_dedup_and_fifo);
    TEST_RUN(test_queue_never_twice_concurrently);
    TEST_RUN(test_queue_per_key_backoff);
    TEST_RUN(test_queue_overall_rate_limit);
    TEST_RUN(test_queue_delayed_adds);
    TEST_RUN(test_queue_shutdown_drains);
    TEST_RUN(test_queue_real_loop);
    return test_summary();
}
