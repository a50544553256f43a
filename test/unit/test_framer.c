#include "kube/framer.h"
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

/* Collects lines as "line1|line2|..." for easy comparison. */
typedef struct lines {
    opbuf all;
    int n;
    int stop_at; /* return non-zero from this line on (1-based); 0 = never */
} lines;

static int collect(const char *line, size_t len, void *ud)
{
    lines *l = ud;
    l->n++;
    if (l->all.len)
        opbuf_puts(&l->all, "|");
    opbuf_append(&l->all, line, len);
    return l->stop_at && l->n >= l->stop_at ? 7 : 0;
}

static void test_framer_whole_chunk(void)
{
    lines l = {0};
    opbuf_init(&l.all, 1 << 20);
    kframer f;
    kframer_init(&f, 0, collect, &l);
    ASSERT_EQ_INT(f.max_line, KFRAMER_DEFAULT_MAX);
    const char *s = "{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}";
    ASSERT_EQ_INT(kframer_feed(&f, s, strlen(s)), 0);
    ASSERT_STR_EQ(opbuf_str(&l.all), "{\"a\":1}|{\"b\":2}");
    ASSERT_EQ_INT(kframer_pending(&f), 7);
    ASSERT_EQ_INT(kframer_finish(&f), 0);
    ASSERT_STR_EQ(opbuf_str(&l.all), "{\"a\":1}|{\"b\":2}|{\"c\":3}");
    ASSERT_EQ_INT(f.lines, 3);
    ASSERT_EQ_INT(kframer_pending(&f), 0);
    kframer_release(&f);
    opbuf_release(&l.all);
}

/* Every way of cutting the real watch stream in two (and into single bytes)
 * yields exactly the lines of the file. */
static void test_framer_split_every_boundary(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/watch-deployments.jsonl", test_fixture_dir());
    size_t n;
    char *s = test_read_file(path, &n);
    lines ref = {0};
    opbuf_init(&ref.all, 1 << 20);
    kframer f;
    kframer_init(&f, 0, collect, &ref);
    ASSERT_EQ_INT(kframer_feed(&f, s, n), 0);
    ASSERT_EQ_INT(kframer_finish(&f), 0);
    kframer_release(&f);
    ASSERT_EQ_INT(ref.n, 7);

    for (size_t cut = 0; cut <= n; cut++) {
        lines l = {0};
        opbuf_init(&l.all, 1 << 20);
        kframer_init(&f, 0, collect, &l);
        ASSERT_EQ_INT(kframer_feed(&f, s, cut), 0);
        ASSERT_EQ_INT(kframer_feed(&f, s + cut, n - cut), 0);
        ASSERT_EQ_INT(kframer_finish(&f), 0);
        ASSERT_EQ_INT(l.n, ref.n);
        ASSERT(l.all.len == ref.all.len && memcmp(l.all.data, ref.all.data, l.all.len) == 0);
        kframer_release(&f);
        opbuf_release(&l.all);
    }
    lines l = {0};
    opbuf_init(&l.all, 1 << 20);
    kframer_init(&f, 0, collect, &l);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ_INT(kframer_feed(&f, s + i, 1), 0);
    ASSERT_EQ_INT(kframer_finish(&f), 0);
    ASSERT(l.all.len == ref.all.len && memcmp(l.all.data, ref.all.data, l.all.len) == 0);
    kframer_release(&f);
    opbuf_release(&l.all);
    opbuf_release(&ref.all);
    free(s);
}

/* Occurrences of needle in the NUL-terminated hay. */
static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Capture the log into a memory stream (its text valid after log_end). */
static FILE *log_begin(char **text, size_t *len)
{
    FILE *f = open_memstream(text, len);
    if (f)
        oplog_set_sink(f);
    return f;
}

static void log_end(FILE *f)
{
    oplog_set_sink(NULL);
    fclose(f);
}

/* An over-long line is reported once (one warning naming the cap) and skipped,
 * whatever the chunking, and the next line comes through. The warnings go to a
 * captured log, where they are counted, not to the test's output. */
static void test_framer_overlong_skipped(void)
{
    const char *s = "ok1\n0123456789ABCDEF-too-long\nok2\n0123456789\nxx";
    size_t n = strlen(s);
    for (size_t chunk = 1; chunk <= n; chunk++) {
        lines l = {0};
        opbuf_init(&l.all, 1024);
        kframer f;
        kframer_init(&f, 10, collect, &l);
        char *log = NULL;
        size_t log_len = 0;
        FILE *sink = log_begin(&log, &log_len);
        ASSERT_NOT_NULL(sink);
        int rc = 0;
        for (size_t i = 0; i < n && !rc; i += chunk)
            rc = kframer_feed(&f, s + i, i + chunk > n ? n - i : chunk);
        size_t pending = kframer_pending(&f);
        int frc = kframer_finish(&f);
        log_end(sink);
        int warned = count_of(log, "watch stream: line longer than 10 bytes skipped (1 so far)");
        int lines_logged = count_of(log, "\n");
        free(log);
        ASSERT_EQ_INT(rc, 0);
        ASSERT(pending <= 10);
        ASSERT_EQ_INT(frc, 0);
        ASSERT_STR_EQ(opbuf_str(&l.all), "ok1|ok2|0123456789|xx");
        ASSERT_EQ_INT(f.overlong, 1);
        ASSERT_EQ_INT(warned, 1);
        ASSERT_EQ_INT(lines_logged, 1);
        kframer_release(&f);
        opbuf_release(&l.all);
    }
    /* An over-long tail at the end of the stream is dropped, not delivered. */
    lines l = {0};
    opbuf_init(&l.all, 1024);
    kframer f;
    kframer_init(&f, 4, collect, &l);
    char *log = NULL;
    size_t log_len = 0;
    FILE *sink = log_begin(&log, &log_len);
    ASSERT_NOT_NULL(sink);
    int rc = kframer_feed(&f, "abc\nabcdefgh", 12);
    int frc = kframer_finish(&f);
    log_end(sink);
    int warned = count_of(log, "line longer than 4 bytes skipped (1 so far)");
    free(log);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(frc, 0);
    ASSERT_STR_EQ(opbuf_str(&l.all), "abc");
    ASSERT_EQ_INT(f.overlong, 1);
    ASSERT_EQ_INT(warned, 1);
    kframer_release(&f);
    opbuf_release(&l.all);
}

static void test_framer_callback_stops(void)
{
    lines l = {0};
    l.stop_at = 2;
    opbuf_init(&l.all, 1024);
    kframer f;
    kframer_init(&f, 0, collect, &l);
    ASSERT_EQ_INT(kframer_feed(&f, "a\nb\nc\n", 6), 7);
    ASSERT_STR_EQ(opbuf_str(&l.all), "a|b");
    /* After a reset (a new stream) the partial state is gone. */
    ASSERT_EQ_INT(kframer_feed(&f, "par", 3), 0);
    kframer_reset(&f);
    l.stop_at = 0;
    ASSERT_EQ_INT(kframer_feed(&f, "tial\n", 5), 0);
    ASSERT_STR_EQ(opbuf_str(&l.all), "a|b|tial");
    kframer_release(&f);
    opbuf_release(&l.all);
}

int main(void)
{
    TEST_RUN(test_framer_whole_chunk);
    TEST_RUN(test_framer_split_every_boundary);
    TEST_RUN(test_framer_overlong_skipped);
    TEST_RUN(test_framer_callback_stops);
    return test_summary();
}
