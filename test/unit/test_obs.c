/*
 * lib/obs: the metrics registry (families, label sets, caps, exposition) and the
 * process_* collector's /proc parsers. The exposition of a registry is also fed to
 * the real `promtool check metrics` when it is installed.
 */
#include "test.h"
#include "obs/obs.h"
#include "obs/process.h"
#include "support/proc.h"
#include "util/buf.h"

#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

static const char *write_all(obs_reg *r, opbuf *b)
{
    opbuf_reset(b);
    ASSERT_EQ_INT(obs_reg_write(r, b), 0);
    return opbuf_str(b);
}

static void test_counter_gauge_histogram_exposition(void)
{
    obs_reg *r = obs_reg_new("t", 0);
    ASSERT_NOT_NULL(r);
    static const char *const vc[] = {"verb", "code", NULL};
    obs_fam *c = obs_counter(r, "t_requests_total", "Requests.", vc, NULL);
    obs_fam *g = obs_gauge(r, "t_temperature", "A gauge.", NULL, NULL);
    static const char *const vo[] = {"outcome", NULL};
    static const double b[] = {0.1, 0.5, 1};
    obs_fam *h = obs_histogram(r, "t_duration_seconds", "Time.", vo, b, 3, NULL);
    ASSERT(c && g && h);
    const char *get200[] = {"GET", "200"}, *patch409[] = {"PATCH", "409"};
    obs_add(c, patch409, 1);
    obs_add(c, get200, 2);
    obs_add(c, get200, 0.5);
    obs_add(c, get200, -3); /* a counter never goes down */
    obs_add(c, get200, NAN);
    obs_set(g, NULL, -1.5);
    const char *ok[] = {"ok"};
    obs_observe(h, ok, 0.1); /* on a bound: counts in that bucket (le is <=) */
    obs_observe(h, ok, 0.7);
    obs_observe(h, ok, 5);
    opbuf out;
    opbuf_init(&out, 1 << 20);
    ASSERT_STR_EQ(write_all(r, &out),
                  "# HELP t_duration_seconds Time.\n"
                  "# TYPE t_duration_seconds histogram\n"
                  "t_duration_seconds_bucket{outcome=\"ok\",le=\"0.1\"} 1\n"
                  "t_duration_seconds_bucket{outcome=\"ok\",le=\"0.5\"} 1\n"
                  "t_duration_seconds_bucket{outcome=\"ok\",le=\"1\"} 2\n"
                  "t_duration_seconds_bucket{outcome=\"ok\",le=\"+Inf\"} 3\n"
                  "t_duration_seconds_sum{outcome=\"ok\"} 5.8\n"
                  "t_duration_seconds_count{outcome=\"ok\"} 3\n"
                  "# HELP t_metrics_series_dropped_total Series not recorded because their "
                  "family was at its cap or a label value was too long.\n"
                  "# TYPE t_metrics_series_dropped_total counter\n"
                  "# HELP t_requests_total Requests.\n"
                  "# TYPE t_requests_total counter\n"
                  "t_requests_total{verb=\"GET\",code=\"200\"} 2.5\n"
                  "t_requests_total{verb=\"PATCH\",code=\"409\"} 1\n"
                  "# HELP t_temperature A gauge.\n"
                  "# TYPE t_temperature gauge\n"
                  "t_temperature -1.5\n");
    ASSERT_NEAR(obs_value(c, get200), 2.5, 0);
    ASSERT_NEAR(obs_value(h, ok), 3, 0);
    const char *absent[] = {"PUT", "200"};
    ASSERT(isnan(obs_value(c, absent)));
    /* set on a counter: an absolute total kept elsewhere, never backwards */
    obs_set(c, patch409, 7);
    obs_set(c, patch409, 3);
    ASSERT_NEAR(obs_value(c, patch409), 7, 0);
    opbuf_release(&out);
    obs_reg_free(r);
}

static void test_label_values_and_help_are_escaped(void)
{
    obs_reg *r = obs_reg_new("t", 0);
    static const char *const l[] = {"name", NULL};
    obs_fam *g = obs_gauge(r, "t_info", "Back\\slash and\nnewline \"quoted\".", l, NULL);
    const char *v[] = {"a\\b\"c\nd"};
    obs_set(g, v, 1);
    opbuf out;
    opbuf_init(&out, 1 << 20);
    const char *s = write_all(r, &out);
    /* HELP escapes \ and newline only; label values also escape the double quote */
    ASSERT_STR_CONTAINS(s, "# HELP t_info Back\\\\slash and\\nnewline \"quoted\".\n");
    ASSERT_STR_CONTAINS(s, "t_info{name=\"a\\\\b\\\"c\\nd\"} 1\n");
    opbuf_release(&out);
    obs_reg_free(r);
}

static void test_series_are_capped_and_drops_counted(void)
{
    obs_reg *r = obs_reg_new("t", 3);
    static const char *const l[] = {"pod", NULL};
    obs_fam *g = obs_gauge(r, "t_pods", "Pods.", l, NULL);
    const char *a[] = {"a"}, *b[] = {"b"}, *c[] = {"c"}, *d[] = {"d"};
    obs_set(g, a, 1);
    obs_set(g, b, 1);
    obs_set(g, c, 1);
    obs_set(g, d, 1); /* the fourth: dropped */
    obs_set(g, a, 2); /* existing series still update */
    ASSERT_EQ_INT(obs_series(g), 3);
    ASSERT(isnan(obs_value(g, d)));
    ASSERT_NEAR(obs_value(g, a), 2, 0);
    /* a value over OBS_VALUE_MAX is dropped too, never truncated into another series */
    char big[OBS_VALUE_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *bv[] = {big};
    obs_remove(g, c);
    obs_set(g, bv, 1);
    ASSERT_EQ_INT(obs_series(g), 2);
    ASSERT_EQ_INT(obs_dropped(r), 2);
    opbuf out;
    opbuf_init(&out, 1 << 20);
    ASSERT_STR_CONTAINS(write_all(r, &out),
                        "t_metrics_series_dropped_total{family=\"t_pods\"} 2\n");
    opbuf_release(&out);
    obs_reg_free(r);
}

static void test_remove_prefix_and_clear(void)
{
    obs_reg *r = obs_reg_new("t", 0);
    static const char *const l[] = {"namespace", "workload", "container", NULL};
    obs_fam *g = obs_gauge(r, "t_req", "Requests.", l, NULL);
    const char *v1[] = {"shop", "web", "app"}, *v2[] = {"shop", "web", "sidecar"},
               *v3[] = {"shop", "api", "app"}, *v4[] = {"other", "web", "app"};
    obs_set(g, v1, 1);
    obs_set(g, v2, 1);
    obs_set(g, v3, 1);
    obs_set(g, v4, 1);
    ASSERT_EQ_INT(obs_remove_prefix(g, v1, 2), 2); /* both containers of shop/web */
    ASSERT_EQ_INT(obs_series(g), 2);
    ASSERT(!isnan(obs_value(g, v3)) && !isnan(obs_value(g, v4)));
    ASSERT_EQ_INT(obs_remove(g, v3), 1);
    ASSERT_EQ_INT(obs_remove(g, v3), 0);
    obs_clear(g);
    ASSERT_EQ_INT(obs_series(g), 0);
    obs_set(g, v1, 3); /* usable after a clear */
    ASSERT_EQ_INT(obs_series(g), 1);
    /* NULL families are no-ops everywhere */
    obs_add(NULL, v1, 1);
    obs_set(NULL, v1, 1);
    obs_observe(NULL, v1, 1);
    ASSERT_EQ_INT(obs_remove_prefix(NULL, v1, 1), 0);
    obs_clear(NULL);
    obs_reg_free(r);
}

static void test_definitions_are_checked(void)
{
    obs_reg *r = obs_reg_new("t", 0);
    operr err = {{0}};
    static const char *const l[] = {"verb", NULL}, *const l2[] = {"code", NULL};
    obs_fam *a = obs_counter(r, "t_x_total", "X.", l, &err);
    ASSERT_NOT_NULL(a);
    ASSERT(obs_counter(r, "t_x_total", "Other help is fine.", l, &err) == a);
    ASSERT_NULL(obs_counter(r, "t_x_total", "X.", l2, &err));
    ASSERT_STR_CONTAINS(err.msg, "defined before");
    ASSERT_NULL(obs_gauge(r, "t_x_total", "X.", l, &err));
    ASSERT_NULL(obs_counter(r, "t_requests", "X.", NULL, &err));
    ASSERT_STR_CONTAINS(err.msg, "ends in _total");
    ASSERT_NULL(obs_gauge(r, "9lives", "X.", NULL, &err));
    ASSERT_STR_CONTAINS(err.msg, "not a valid metric name");
    ASSERT_NULL(obs_gauge(r, "t-dash", "X.", NULL, &err));
    static const char *const bad[] = {"__reserved", NULL}, *const dup[] = {"a", "a", NULL},
                             *const le[] = {"le", NULL}, *const dash[] = {"a-b", NULL};
    ASSERT_NULL(obs_gauge(r, "t_g", "X.", bad, &err));
    ASSERT_STR_CONTAINS(err.msg, "label '__reserved'");
    ASSERT_NULL(obs_gauge(r, "t_g", "X.", dup, &err));
    ASSERT_STR_CONTAINS(err.msg, "label 'a' twice");
    ASSERT_NULL(obs_gauge(r, "t_g", "X.", dash, &err));
    static const double b[] = {1, 2}, down[] = {2, 1}, inf[] = {1, INFINITY};
    ASSERT_NULL(obs_histogram(r, "t_h", "X.", le, b, 2, &err));
    ASSERT_NULL(obs_histogram(r, "t_h", "X.", NULL, down, 2, &err));
    ASSERT_STR_CONTAINS(err.msg, "strictly increasing");
    ASSERT_NULL(obs_histogram(r, "t_h", "X.", NULL, inf, 2, &err));
    ASSERT_NULL(obs_histogram(r, "t_h", "X.", NULL, b, 0, &err));
    ASSERT_NOT_NULL(obs_histogram(r, "t_h", "X.", NULL, b, 2, &err));
    ASSERT_NULL(obs_histogram(r, "t_h", "X.", NULL, b, 1, &err)); /* other buckets */
    ASSERT(obs_find(r, "t_h") != NULL && obs_find(r, "t_nope") == NULL);
    ASSERT_NULL(obs_reg_new("bad-prefix", 0));
    /* a histogram ignores add/set, a counter ignores observe */
    obs_observe(a, (const char *[]){"GET"}, 1);
    ASSERT_EQ_INT(obs_series(a), 0);
    obs_reg_free(r);
    obs_reg_free(NULL);
}

static void test_values_format_shortest_round_trip(void)
{
    char s[32];
    static const struct {
        double v;
        const char *want;
    } cases[] = {{0, "0"},
                 {0.1, "0.1"},
                 {1, "1"},
                 {12345678, "12345678"},
                 {20000, "20000"},
                 {-2.5, "-2.5"},
                 {1e21, "1e+21"},
                 {0.005, "0.005"},
                 {1.0 / 3, "0.3333333333333333"},
                 {NAN, "NaN"},
                 {INFINITY, "+Inf"},
                 {-INFINITY, "-Inf"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        obs_format_value(cases[i].v, s, sizeof s);
        ASSERT_STR_EQ(s, cases[i].want);
    }
}

static int collected;

static void count_collect(void *ud)
{
    obs_set(ud, NULL, ++collected);
}

static void test_collectors_run_at_each_write(void)
{
    obs_reg *r = obs_reg_new("t", 0);
    obs_fam *g = obs_gauge(r, "t_scrapes", "Scrapes.", NULL, NULL);
    ASSERT_EQ_INT(obs_reg_collector(r, count_collect, g), 0);
    opbuf out;
    opbuf_init(&out, 1 << 20);
    write_all(r, &out);
    ASSERT_STR_CONTAINS(write_all(r, &out), "t_scrapes 2\n");
    opbuf_release(&out);
    obs_reg_free(r);
}

/* ---- /proc parsers and the collector ---------------------------------------------------- */

static void test_proc_stat_parses_past_a_hostile_comm(void)
{
    /* comm "(a) b) (" holds spaces and parentheses: only the last ')' ends it */
    static const char stat[] =
        "4242 ((a) b) () S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 25 0 0 20 0 3 0 "
        "98765 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    obs_proc_stat st;
    ASSERT_EQ_INT(obs_proc_parse_stat(stat, strlen(stat), &st), 0);
    ASSERT_NEAR(st.utime_ticks, 150, 0);
    ASSERT_NEAR(st.stime_ticks, 25, 0);
    ASSERT_NEAR(st.start_ticks, 98765, 0);
    ASSERT_NEAR(st.vsize_bytes, 123456789, 0);
    ASSERT_NEAR(st.rss_pages, 2048, 0);
    /* truncated, a negative field, no ')' at all */
    ASSERT_EQ_INT(obs_proc_parse_stat(stat, 60, &st), -EINVAL);
    static const char neg[] = "1 (x) S 1 1 1 0 -1 0 0 0 0 0 -5 0 0 0 20 -2 1 0 1 1 1\n";
    ASSERT_EQ_INT(obs_proc_parse_stat(neg, strlen(neg), &st), -EINVAL);
    ASSERT_EQ_INT(obs_proc_parse_stat("1 x S", 5, &st), -EINVAL);
    ASSERT_EQ_INT(obs_proc_parse_stat("", 0, &st), -EINVAL);
}

static void test_proc_btime(void)
{
    static const char s[] = "cpu  1 2 3\nintr 5\nbtime 1733600000\nprocesses 9\n";
    double bt = 0;
    ASSERT_EQ_INT(obs_proc_parse_btime(s, strlen(s), &bt), 0);
    ASSERT_NEAR(bt, 1733600000, 0);
    ASSERT_EQ_INT(obs_proc_parse_btime("cpu 1\n", 6, &bt), -EINVAL);
    ASSERT_EQ_INT(obs_proc_parse_btime("btime x1\n", 9, &bt), -EINVAL);
    ASSERT_EQ_INT(obs_proc_parse_btime("btime 12", 8, &bt), 0); /* no final newline */
}

static void test_process_collector_reads_this_process(void)
{
    obs_reg *r = obs_reg_new("t", 0);
    ASSERT_EQ_INT(obs_process_register(r, NULL), 0);
    opbuf out;
    opbuf_init(&out, 1 << 20);
    write_all(r, &out);
    ASSERT(obs_value(obs_find(r, "process_resident_memory_bytes"), NULL) > 4096);
    ASSERT(obs_value(obs_find(r, "process_virtual_memory_bytes"), NULL) >=
           obs_value(obs_find(r, "process_resident_memory_bytes"), NULL));
    ASSERT(obs_value(obs_find(r, "process_open_fds"), NULL) >= 3); /* stdin, stdout, stderr */
    ASSERT(obs_value(obs_find(r, "process_max_fds"), NULL) >=
           obs_value(obs_find(r, "process_open_fds"), NULL));
    double start = obs_value(obs_find(r, "process_start_time_seconds"), NULL);
    ASSERT(start > 1.6e9 && start <= (double)time(NULL) + 1);
    ASSERT(obs_value(obs_find(r, "process_cpu_seconds_total"), NULL) >= 0);
    ASSERT_STR_CONTAINS(opbuf_str(&out), "# TYPE process_cpu_seconds_total counter\n");
    opbuf_release(&out);
    obs_reg_free(r);
}

/* The real promtool lints a registry's exposition: names, types, HELP, histograms. */
static void test_promtool_accepts_the_exposition(void)
{
    if (access("/usr/bin/promtool", X_OK) != 0)
        test_skip("promtool is not installed (make test installs prometheus)");
    obs_reg *r = obs_reg_new("t", 2);
    static const char *const l[] = {"verb", "code", NULL};
    static const double b[] = {0.005, 0.05, 0.5, 5};
    obs_fam *c = obs_counter(r, "t_api_request_errors_total", "Failed requests.", l, NULL);
    obs_fam *h = obs_histogram(r, "t_api_request_duration_seconds", "Latency.", l, b, 4, NULL);
    obs_fam *g = obs_gauge(r, "t_leader", "1 when leading \"quoted\" \\ \n.", NULL, NULL);
    ASSERT_EQ_INT(obs_process_register(r, NULL), 0);
    const char *v[] = {"GET", "500"}, *w[] = {"PATCH", "a\"b\\c\nd"}, *x[] = {"PUT", "409"};
    obs_add(c, v, 1);
    obs_add(c, w, 1);
    obs_add(c, x, 1); /* dropped: cap 2 */
    obs_observe(h, v, 0.02);
    obs_set(g, NULL, 1);
    opbuf out;
    opbuf_init(&out, 1 << 20);
    write_all(r, &out);
    char path[] = "/tmp/optipod-obs-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    ASSERT_EQ_INT(write(fd, out.data, out.len), (long long)out.len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics <%s", path);
    static proc p;
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    proc_start(&p, argv);
    int rc = proc_wait_exit(&p, 30);
    unlink(path);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "promtool check metrics exited %d:\n%s\n--- input:\n%s", rc,
                  p.out, opbuf_str(&out));
    opbuf_release(&out);
    obs_reg_free(r);
}

int main(void)
{
    TEST_RUN(test_counter_gauge_histogram_exposition);
    TEST_RUN(test_label_values_and_help_are_escaped);
    TEST_RUN(test_series_are_capped_and_drops_counted);
    TEST_RUN(test_remove_prefix_and_clear);
    TEST_RUN(test_definitions_are_checked);
    TEST_RUN(test_values_format_shortest_round_trip);
    TEST_RUN(test_collectors_run_at_each_write);
    TEST_RUN(test_proc_stat_parses_past_a_hostile_comm);
    TEST_RUN(test_proc_btime);
    TEST_RUN(test_process_collector_reads_this_process);
    TEST_RUN(test_promtool_accepts_the_exposition);
    return test_summary();
}
