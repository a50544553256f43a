#include "test.h"
#include "util/b64.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/emit.h"
#include "util/err.h"
#include "util/loopmon.h"
#include "util/map.h"

#include <errno.h>

static void test_buf_cap_is_enforced(void)
{
    opbuf b;
    opbuf_init(&b, 8);
    ASSERT_EQ_INT(opbuf_puts(&b, "12345678"), 0);
    opbuf_consume(&b, 3);
    ASSERT_STR_EQ(opbuf_str(&b), "45678");
    ASSERT_EQ_INT(opbuf_printf(&b, "%d", 123), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "45678123");
    size_t n;
    char *p = opbuf_detach(&b, &n);
    ASSERT_EQ_INT(n, 8);
    ASSERT_STR_EQ(p, "45678123");
    free(p);
    ASSERT_EQ_INT(b.len, 0);
    opbuf_release(&b);
}

/* Past the cap the buffer empties and stays failed: later appends do nothing and return the
 * first error, so a writer can check once at the end (as curl's dynbuf). */
static void test_buf_errors_are_sticky(void)
{
    opbuf b;
    opbuf_init(&b, 8);
    ASSERT_EQ_INT(opbuf_puts(&b, "1234"), 0);
    ASSERT_EQ_INT(opbuf_error(&b), 0);
    ASSERT_EQ_INT(opbuf_puts(&b, "56789"), -E2BIG);
    ASSERT_EQ_INT(opbuf_error(&b), -E2BIG);
    ASSERT_EQ_INT(b.len, 0);
    ASSERT_NULL(b.data);
    ASSERT_STR_EQ(opbuf_str(&b), "");
    ASSERT_EQ_INT(opbuf_puts(&b, "x"), -E2BIG); /* would fit, but the buffer failed */
    ASSERT_EQ_INT(opbuf_printf(&b, "%d", 1), -E2BIG);
    ASSERT_EQ_INT(opbuf_append(&b, "", 0), -E2BIG);
    ASSERT_EQ_INT(b.len, 0);
    ASSERT_NULL(opbuf_detach(&b, NULL)); /* never half a result */
    ASSERT_EQ_INT(opbuf_error(&b), 0);   /* detach leaves an empty, usable buffer */
    ASSERT_EQ_INT(opbuf_puts(&b, "ok"), 0);
    ASSERT_EQ_INT(opbuf_puts(&b, "123456789"), -E2BIG);
    opbuf_reset(&b); /* reset starts over too */
    ASSERT_EQ_INT(opbuf_error(&b), 0);
    ASSERT_EQ_INT(opbuf_puts(&b, "again"), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "again");
    opbuf_release(&b);
}

static void test_err_wraps(void)
{
    operr e;
    ASSERT_EQ_INT(operr_set(&e, -EINVAL, "'%s' is not a quantity", "abc"), -EINVAL);
    operr_wrap(&e, -EINVAL, "spec.resourceBounds.cpu.min");
    ASSERT_STR_EQ(e.msg, "spec.resourceBounds.cpu.min: 'abc' is not a quantity");
    ASSERT_EQ_INT(operr_set(NULL, -5, "x"), -5);
}

static void test_backoff_doubles_caps_and_resets(void)
{
    opbackoff b;
    opbackoff_init(&b, 800, 30000, 120000, 0.0);
    uint64_t want[] = {800, 1600, 3200, 6400, 12800, 25600, 30000, 30000};
    uint64_t now = 1000;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ASSERT_EQ_INT(opbackoff_next(&b, now, 0.5), want[i]);
        now += 10;
    }
    /* Two healthy minutes after the last failure start the sequence again. */
    ASSERT_EQ_INT(opbackoff_next(&b, now + 120000, 0.5), 800);
    opbackoff b2;
    opbackoff_init(&b2, 1000, 4000, 0, 0.5);
    uint64_t d = opbackoff_next(&b2, 0, 0.5);
    ASSERT_EQ_INT(d, 1250);
}

static void test_map_put_get_del_iterate(void)
{
    opmap m;
    opmap_init(&m);
    char key[32];
    static int values[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "ns/name-%d", i);
        values[i] = i;
        ASSERT_EQ_INT(opmap_put(&m, key, &values[i], NULL), 0);
    }
    ASSERT_EQ_INT(opmap_count(&m), 1000);
    ASSERT(opmap_get(&m, "ns/name-517") == &values[517]);
    ASSERT_NULL(opmap_get(&m, "ns/name-1000"));
    void *old;
    ASSERT_EQ_INT(opmap_put(&m, "ns/name-5", &values[6], &old), 0);
    ASSERT(old == &values[5]);
    ASSERT_EQ_INT(opmap_count(&m), 1000);
    /* Delete every even entry while iterating. */
    opmap_iter it;
    opmap_iter_init(&it, &m);
    opmap_entry *e;
    int seen = 0;
    while ((e = opmap_next(&it))) {
        seen++;
        int v = *(int *)e->value;
        if (v % 2 == 0 && strcmp(e->key, "ns/name-5") != 0)
            ASSERT(opmap_del(&m, e->key) != NULL);
    }
    ASSERT_EQ_INT(seen, 1000);
    ASSERT_EQ_INT(opmap_count(&m), 500);
    opmap_release(&m, NULL);
    ASSERT_EQ_INT(opmap_count(&m), 0);
}

/* RFC 4648 section 10's vectors, both ways. */
static void test_b64_rfc4648_vectors(void)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    opbuf b;
    opbuf_init(&b, 64);
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        opbuf_reset(&b);
        ASSERT_EQ_INT(opb64_encode(&b, in[i], strlen(in[i])), 0);
        ASSERT_STR_EQ(opbuf_str(&b), out[i]);
        char *d;
        size_t n;
        ASSERT_EQ_INT(opb64_decode(out[i], strlen(out[i]), &d, &n, NULL, 0), 0);
        ASSERT_EQ_INT(n, strlen(in[i]));
        ASSERT_STR_EQ(d, in[i]);
        free(d);
    }
    opbuf_release(&b);
    /* the cap holds, and a long input is encoded in chunks */
    opbuf_init(&b, 8);
    ASSERT_EQ_INT(opb64_encode(&b, "foobar!", 7), -E2BIG);
    opbuf_release(&b);
    unsigned char big[3000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7);
    opbuf_init(&b, 0);
    ASSERT_EQ_INT(opb64_encode(&b, big, sizeof big), 0);
    ASSERT_EQ_INT(b.len, 4000);
    char *d;
    size_t n;
    ASSERT_EQ_INT(opb64_decode(b.data, b.len, &d, &n, NULL, 0), 0);
    ASSERT_EQ_INT(n, sizeof big);
    ASSERT(memcmp(d, big, n) == 0);
    free(d);
    opbuf_release(&b);
}

static void test_b64_decode_refuses_with_reason(void)
{
    char *d = (char *)1, why[128];
    size_t n = 7;
    /* white space anywhere is skipped (a kubeconfig folds long values) */
    ASSERT_EQ_INT(opb64_decode(" Zm9v\r\nYm E=\t", 13, &d, &n, why, sizeof why), 0);
    ASSERT_EQ_INT(n, 5);
    ASSERT_STR_EQ(d, "fooba");
    free(d);
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"Zm9*", "invalid base64: character '*' at offset 3"},
        {"Zm\x01v", "invalid base64: byte 0x01 at offset 2"},
        {"Zm9vY", "invalid base64: 5 characters is not a whole number of groups"},
        {"Zm9vYg", "invalid base64: 6 characters is not a whole number of groups"},
        {"Zg=a", "invalid base64: padding before the end"},
        {"Z===", "invalid base64: 3 '=' at the end (two at most)"},
        {"Zm9v-_==", "invalid base64: character '-' at offset 4"}, /* no URL alphabet */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = (char *)1;
        ASSERT_EQ_INT(opb64_decode(bad[i].in, strlen(bad[i].in), &d, &n, why, sizeof why), -EINVAL);
        ASSERT_NULL(d);
        ASSERT_EQ_INT(n, 0);
        ASSERT_STR_EQ(why, bad[i].why);
    }
    /* NUL bytes decode as data, counted in the length */
    ASSERT_EQ_INT(opb64_decode("AAE=", 4, &d, &n, NULL, 0), 0);
    ASSERT_EQ_INT(n, 2);
    ASSERT(d[0] == 0 && d[1] == 1 && d[2] == 0);
    free(d);
}

/* Strings that YAML would read back as something else are quoted; the rest stay plain. */
static void test_emit_yaml_quotes_what_yaml_would_misread(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"web", "web"},       {"a~b", "a~b"},   {"/spec/x", "/spec/x"},
        {"100m", "100m"},     {"y", "\"y\""},   {"On", "\"On\""},
        {"NULL", "\"NULL\""}, {"~", "\"~\""},   {"0x10", "\"0x10\""},
        {"1e3", "\"1e3\""},   {"-x", "\"-x\""}, {".inf", "\".inf\""},
        {"a: b", "\"a: b\""}, {"", "\"\""},     {"say \"hi\"", "\"say \\\"hi\\\"\""},
    };
    opbuf b;
    opbuf_init(&b, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        opbuf_reset(&b);
        ASSERT_EQ_INT(opemit_yaml_str(&b, cases[i].in), 0);
        ASSERT_STR_EQ(opbuf_str(&b), cases[i].out);
    }
    opbuf_reset(&b);
    cJSON *doc = cJSON_Parse("{\"a\":[1,{\"b\":\"yes\",\"c\":[]}],\"d\":{},\"e\":null}");
    ASSERT_EQ_INT(opemit_doc(doc, 1, &b), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "a:\n- 1\n- b: \"yes\"\n  c: []\nd: {}\ne: null\n");
    ASSERT_EQ_INT(opemit_doc(NULL, 1, &b), -ENOMEM);
    opbuf_release(&b);
}

static void test_emit_table_and_csv(void)
{
    static const char *const head[] = {"NAME", "CPU", "NOTE"};
    static const char *const r1[] = {"web", "250m", "ok"};
    static const char *const r2[] = {"a-longer-name", NULL, "x"};
    opemit_table t;
    opbuf b;
    opbuf_init(&b, 0);
    ASSERT_EQ_INT(opemit_table_init(&t, 3, head, "  "), 0);
    ASSERT_EQ_INT(opemit_table_add(&t, r1), 0);
    ASSERT_EQ_INT(opemit_table_add(&t, r2), 0);
    ASSERT_EQ_INT(opemit_table_render(&t, &b), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "NAME           CPU   NOTE\n"
                                 "web            250m  ok\n"
                                 "a-longer-name        x\n");
    opemit_table_release(&t);
    opbuf_reset(&b);
    static const char *const f[] = {"plain", "a,b", "say \"hi\"", "two\nlines", ""};
    ASSERT_EQ_INT(opemit_csv(&b, f, 5), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\n");
    opbuf_release(&b);
}

/* The stall arithmetic: the longest of the last seconds, forgetting older ones. */
static void test_loopmon_window_and_counts(void)
{
    oploopmon m;
    oploopmon_init(&m);
    const uint64_t s = 1000000000ull, ms = 1000000ull;
    ASSERT_EQ_INT(oploopmon_window_max_ns(&m, 5 * s), 0);
    oploopmon_record(&m, 100 * s, 3 * ms, 3 * ms);
    oploopmon_record(&m, 100 * s + 500 * ms, 7 * ms, 1 * ms); /* mostly waiting for a CPU */
    oploopmon_record(&m, 103 * s, 2 * ms, 2 * ms);
    oploopmon_record(&m, 105 * s, 150 * ms, 140 * ms);
    ASSERT_EQ_INT(m.stalls, 4);
    ASSERT_EQ_INT(m.over_5ms, 2);
    ASSERT_EQ_INT(m.over_100ms, 1);
    ASSERT_EQ_INT(m.max_ns, 150 * ms);
    ASSERT_EQ_INT(oploopmon_window_max_ns(&m, 105 * s), 150 * ms);
    ASSERT_EQ_INT(oploopmon_window_cpu_max_ns(&m, 105 * s), 140 * ms);
    ASSERT_EQ_INT(oploopmon_window_cpu_max_ns(&m, 101 * s), 3 * ms);
    ASSERT_EQ_INT(m.max_cpu_ns, 140 * ms);
    /* ten seconds on, the 150 ms stall has left the window; 103 s's has too at 113 s */
    ASSERT_EQ_INT(oploopmon_window_max_ns(&m, 109 * s), 150 * ms);
    oploopmon_record(&m, 110 * s, 1 * ms, 1 * ms);
    ASSERT_EQ_INT(oploopmon_window_max_ns(&m, 115 * s), 1 * ms);
    ASSERT_EQ_INT(oploopmon_window_max_ns(&m, 120 * s), 0);
    /* a slot reused by a later second starts again from that second's stalls */
    oploopmon_record(&m, 125 * s, 4 * ms, 4 * ms);
    ASSERT_EQ_INT(oploopmon_window_max_ns(&m, 125 * s), 4 * ms);
    ASSERT_EQ_INT(m.max_ns, 150 * ms);
}

/* On a loop: a callback that keeps it busy shows as a stall, waiting does not. */
static void busy_cb(uv_timer_t *t)
{
    uint64_t until = uv_hrtime() + 30000000ull;
    while (uv_hrtime() < until)
        ;
    *(uint64_t *)t->data = oploopmon_busy_ns(t->loop->data);
}

static void test_loopmon_measures_a_busy_callback(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    oploopmon m;
    ASSERT_EQ_INT(oploopmon_start(&m, &loop), 0);
    loop.data = &m;
    uv_timer_t busy;
    uint64_t busy_seen = 0;
    uv_timer_init(&loop, &busy);
    busy.data = &busy_seen;
    uv_timer_start(&busy, busy_cb, 300, 0); /* 300 ms of waiting in the kernel first */
    uv_run(&loop, UV_RUN_DEFAULT);          /* the monitor's handle keeps no loop alive */
    ASSERT_CMP_INT(busy_seen, >=, 30000000);
    ASSERT_CMP_INT(m.max_ns, >=, 30000000);
    ASSERT_CMP_INT(m.max_cpu_ns, >, 0); /* the spin ran on a CPU, for all the scheduler gave it */
    /* the wait is no stall: counted, the longest would exceed 330 ms */
    ASSERT_CMP_INT(m.max_ns, <, 300000000);
    ASSERT_CMP_INT(m.stalls, >=, 2);
    oploopmon_close(&m, NULL, NULL);
    uv_close((uv_handle_t *)&busy, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    TEST_RUN(test_buf_cap_is_enforced);
    TEST_RUN(test_buf_errors_are_sticky);
    TEST_RUN(test_err_wraps);
    TEST_RUN(test_backoff_doubles_caps_and_resets);
    TEST_RUN(test_map_put_get_del_iterate);
    TEST_RUN(test_b64_rfc4648_vectors);
    TEST_RUN(test_b64_decode_refuses_with_reason);
    TEST_RUN(test_emit_yaml_quotes_what_yaml_would_misread);
    TEST_RUN(test_emit_table_and_csv);
    TEST_RUN(test_loopmon_window_and_counts);
    TEST_RUN(test_loopmon_measures_a_busy_callback);
    return test_summary();
}
