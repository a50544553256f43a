#include "test.h"
#include "util/optime.h"

#include <errno.h>
#include <time.h>

static optime parsed(const char *s, int flags)
{
    optime t = {-1, -1};
    if (optime_parse(s, flags, &t) != 0)
        test_fail(__FILE__, __LINE__, "'%s' did not parse", s);
    return t;
}

static void test_parses_what_kubernetes_writes(void)
{
    optime t = parsed("2026-11-22T02:02:40Z", 0);
    ASSERT_EQ_INT(t.sec, 1795312960);
    ASSERT_EQ_INT(t.nsec, 0);
    t = parsed("2026-11-22T02:02:40.123456Z", 0); /* MicroTime */
    ASSERT_EQ_INT(t.sec, 1795312960);
    ASSERT_EQ_INT(t.nsec, 123456000);
    t = parsed("2026-11-22T02:02:40.5Z", 0);
    ASSERT_EQ_INT(t.nsec, 500000000);
    t = parsed("2026-11-22T02:02:40.123456789Z", 0);
    ASSERT_EQ_INT(t.nsec, 123456789);
    /* past the ninth digit: truncated, as Go does */
    t = parsed("2026-11-22T02:02:40.1234567899999Z", 0);
    ASSERT_EQ_INT(t.sec, 1795312960);
    ASSERT_EQ_INT(t.nsec, 123456789);
    ASSERT_EQ_INT(parsed("1970-01-01T00:00:00Z", 0).sec, 0);
    ASSERT_EQ_INT(parsed("1969-12-31T23:59:59Z", 0).sec, -1);
    ASSERT_EQ_INT(parsed("0000-01-01T00:00:00Z", 0).sec, -62167219200LL);
    ASSERT_EQ_INT(parsed("9999-12-31T23:59:59Z", 0).sec, 253402300799LL);
}

static void test_offsets_are_applied(void)
{
    ASSERT_EQ_INT(parsed("2026-11-22T03:32:40+01:30", 0).sec, 1795312960);
    ASSERT_EQ_INT(parsed("2026-11-21T21:02:40-05:00", 0).sec, 1795312960);
    ASSERT_EQ_INT(parsed("2026-11-22T02:02:40-00:00", 0).sec, 1795312960);
    /* an offset that moves the date across a year */
    ASSERT_EQ_INT(parsed("1970-01-01T00:00:00+23:59", 0).sec, -86340);
    ASSERT_EQ_INT(parsed("1969-12-31T23:00:00.25-01:00", 0).sec, 0);
    ASSERT_EQ_INT(parsed("1969-12-31T23:00:00.25-01:00", 0).nsec, 250000000);
    /* OPTIME_UTC: only Z */
    ASSERT_EQ_INT(parsed("2026-11-22T02:02:40Z", OPTIME_UTC).sec, 1795312960);
    optime t;
    ASSERT_EQ_INT(optime_parse("2026-11-22T02:02:40+00:00", OPTIME_UTC, &t), -EINVAL);
}

static void test_refuses_with_range_checks(void)
{
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11-22",
        "2026-11-22T02:02:40", /* no offset */
        "2026-11-22 02:02:40Z",
        "2026-11-22t02:02:40Z", /* lower case: Go refuses it */
        "2026-11-22T02:02:40z",
        "2026-13-22T02:02:40Z",
        "2026-00-22T02:02:40Z",
        "2026-11-00T02:02:40Z",
        "2026-11-31T02:02:40Z", /* November has 30 days */
        "2023-02-29T00:00:00Z", /* not a leap year */
        "1900-02-29T00:00:00Z", /* a century, not a leap year */
        "2026-11-22T24:00:00Z",
        "2026-11-22T02:60:40Z",
        "2026-11-22T23:59:60Z", /* Go refuses the leap second */
        "2026-11-22T02:02:40.Z",
        "2026-11-22T02:02:40,5Z",
        "2026-11-22T02:02:40+1:00",
        "2026-11-22T02:02:40+01",
        "2026-11-22T02:02:40+0100",
        "2026-11-22T02:02:40+24:00",
        "2026-11-22T02:02:40+01:60",
        "2026-11-22T02:02:40Zjunk",
        "2026-11-22T02:02:40+01:00 ",
        "+2026-11-22T02:02:40Z",
        "20261-11-22T02:02:40Z",
        "2026-1-22T02:02:40Z",
        "2026-11- 2T02:02:40Z",
        "-026-11-22T02:02:40Z",
        "2026-11-22T02:02:4",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        optime t = {7, 7};
        if (optime_parse(bad[i], 0, &t) != -EINVAL)
            test_fail(__FILE__, __LINE__, "'%s' parsed", bad[i]);
        ASSERT_EQ_INT(t.sec, 7); /* untouched */
    }
    optime t;
    ASSERT_EQ_INT(optime_parse(NULL, 0, &t), -EINVAL);
    /* the leap days that exist */
    ASSERT_EQ_INT(parsed("2024-02-29T00:00:00Z", 0).sec, 1709164800);
    ASSERT_EQ_INT(parsed("2000-02-29T00:00:00Z", 0).sec, 951782400);
}

static void test_formats_and_round_trips(void)
{
    char b[OPTIME_STR_MAX];
    optime t = {1795312960, 123456789};
    ASSERT_EQ_INT(optime_format(t, 0, b, sizeof b), 20);
    ASSERT_STR_EQ(b, "2026-11-22T02:02:40Z");
    ASSERT_EQ_INT(optime_format(t, 3, b, sizeof b), 24);
    ASSERT_STR_EQ(b, "2026-11-22T02:02:40.123Z");
    ASSERT_EQ_INT(optime_format(t, 6, b, sizeof b), 27);
    ASSERT_STR_EQ(b, "2026-11-22T02:02:40.123456Z");
    ASSERT_EQ_INT(optime_format(t, 9, b, sizeof b), 30);
    ASSERT_STR_EQ(b, "2026-11-22T02:02:40.123456789Z");
    ASSERT_EQ_INT(optime_format((optime){-1, 0}, 0, b, sizeof b), 20);
    ASSERT_STR_EQ(b, "1969-12-31T23:59:59Z");
    ASSERT_EQ_INT(optime_format((optime){253402300799LL, 999999999}, 9, b, sizeof b), 30);
    ASSERT_STR_EQ(b, "9999-12-31T23:59:59.999999999Z");
    ASSERT_EQ_INT(optime_format((optime){-62167219200LL, 0}, 0, b, sizeof b), 20);
    ASSERT_STR_EQ(b, "0000-01-01T00:00:00Z");
    /* out of range: an error and "" */
    ASSERT_EQ_INT(optime_format((optime){253402300800LL, 0}, 0, b, sizeof b), -EINVAL);
    ASSERT_STR_EQ(b, "");
    ASSERT_EQ_INT(optime_format((optime){-62167219201LL, 0}, 0, b, sizeof b), -EINVAL);
    ASSERT_EQ_INT(optime_format(t, 10, b, sizeof b), -EINVAL);
    ASSERT_EQ_INT(optime_format(t, 0, b, 20), -EINVAL); /* no room for the terminator */
    ASSERT_STR_EQ(b, "");
    /* every day of four centuries (leap rules included) against the C library */
    for (int64_t s = -2208988800LL; s < 10413792000LL; s += 86400 + 3607) {
        time_t tt = (time_t)s;
        struct tm tm;
        char want[40];
        ASSERT(gmtime_r(&tt, &tm) != NULL);
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
        ASSERT_EQ_INT(optime_format((optime){s, 0}, 0, b, sizeof b), 20);
        ASSERT_STR_EQ(b, want);
        ASSERT_EQ_INT(parsed(b, 0).sec, s);
    }
}

static void test_ns_range(void)
{
    uint64_t ns;
    ASSERT_EQ_INT(optime_ns(parsed("2026-11-22T02:02:40.123456Z", 0), &ns), 0);
    ASSERT_EQ_INT(ns, 1795312960123456000ULL);
    ASSERT_EQ_INT(optime_ns(parsed("1970-01-01T00:00:00Z", 0), &ns), 0);
    ASSERT_EQ_INT(ns, 0);
    ASSERT_EQ_INT(optime_ns(parsed("2554-07-21T23:34:32.999999999Z", 0), &ns), 0);
    ASSERT_EQ_INT(optime_ns(parsed("2554-07-21T23:34:33Z", 0), &ns), -ERANGE);
    ASSERT_EQ_INT(optime_ns(parsed("1969-12-31T23:59:59.999999999Z", 0), &ns), -ERANGE);
    optime t = optime_from_ns(1795312960123456789ULL);
    ASSERT_EQ_INT(t.sec, 1795312960);
    ASSERT_EQ_INT(t.nsec, 123456789);
}

int main(void)
{
    TEST_RUN(test_parses_what_kubernetes_writes);
    TEST_RUN(test_offsets_are_applied);
    TEST_RUN(test_refuses_with_range_checks);
    TEST_RUN(test_formats_and_round_trips);
    TEST_RUN(test_ns_range);
    return test_summary();
}
