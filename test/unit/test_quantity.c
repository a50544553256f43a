#include "engine/quantity.h"
#include "test.h"

#include <errno.h>

/* Real Kubernetes quantities: input, the canonical string the API server
 * prints (Quantity.String() of the parsed value), MilliValue(), Value(). */
static const struct {
    const char *in, *canon;
    int64_t milli, value;
} cases[] = {
    {"0", "0", 0, 0},
    {"100m", "100m", 100, 1},
    {"250m", "250m", 250, 1},
    {"0.5", "500m", 500, 1},
    {".5", "500m", 500, 1},
    {"1000m", "1", 1000, 1},
    {"5000m", "5", 5000, 5},
    {"1", "1", 1000, 1},
    {"2", "2", 2000, 2},
    {"1.5", "1500m", 1500, 2},
    {"0.001", "1m", 1, 1},
    {"0.1m", "100u", 1, 1},
    {"1.000001", "1000001u", 1001, 2},
    {"1n", "1n", 1, 1},
    {"1000n", "1u", 1, 1},
    {"1u", "1u", 1, 1},
    {"0.0000000001", "1n", 1, 1},
    {"0.30000000000000004", "300000001n", 301, 1},
    {"1k", "1k", 1000000, 1000},
    {"1000", "1k", 1000000, 1000},
    {"1000000", "1M", 1000000000, 1000000},
    {"1500000", "1500k", 1500000000, 1500000},
    {"128974848", "128974848", 128974848000, 128974848},
    {"129M", "129M", 129000000000, 129000000},
    {"123Mi", "123Mi", 128974848000, 128974848},
    {"1G", "1G", 1000000000000, 1000000000},
    {"4G", "4G", 4000000000000, 4000000000},
    {"1.G", "1G", 1000000000000, 1000000000},
    {"1T", "1T", 1000000000000000, 1000000000000},
    {"1P", "1P", 1000000000000000000, 1000000000000000},
    {"1E", "1E", 0, 1000000000000000000}, /* milli overflows: checked apart */
    {"1Ki", "1Ki", 1024000, 1024},
    {"0.5Ki", "512", 512000, 512},
    {"1.5Ki", "1536", 1536000, 1536},
    {"62.5Ki", "64000", 64000000, 64000}, /* binary, exact, not a power of 1024 */
    {"1.1Ki", "1126400m", 1126400, 1127},
    {"1025Ki", "1025Ki", 1049600000, 1049600},
    {"2048Ki", "2Mi", 2097152000, 2097152},
    {"64Mi", "64Mi", 67108864000, 67108864},
    {"100Mi", "100Mi", 104857600000, 104857600},
    {"128Mi", "128Mi", 134217728000, 134217728},
    {"512Mi", "512Mi", 536870912000, 536870912},
    {"1024Mi", "1Gi", 1073741824000, 1073741824},
    {"1536Mi", "1536Mi", 1610612736000, 1610612736},
    {"1Gi", "1Gi", 1073741824000, 1073741824},
    {"1.5Gi", "1536Mi", 1610612736000, 1610612736},
    {"0.9Gi", "966367641600m", 966367641600, 966367642},
    {"1.5Ti", "1536Gi", 1649267441664000, 1649267441664},
    {"1Ei", "1Ei", 0, 1152921504606846976},
    {"7Ei", "7Ei", 0, 8070450532247928832},
    {"1e3", "1e3", 1000000, 1000},
    {"1E3", "1e3", 1000000, 1000},
    {"1e+3", "1e3", 1000000, 1000},
    {"129e6", "129e6", 129000000000, 129000000},
    {"12e6", "12e6", 12000000000, 12000000},
    {"2.5e-3", "2500e-6", 3, 1},
    {"1e-3", "1e-3", 1, 1},
    {"100e-3", "100e-3", 100, 1},
    {"10e-1", "1", 1000, 1},
    {"12000e-3", "12", 12000, 12},
    {"1e18", "1e18", 0, 1000000000000000000},
    {"0e400", "0", 0, 0},
    {"0.0", "0", 0, 0},
    {"-0", "0", 0, 0},
    {"+1", "1", 1000, 1},
    {"007", "7", 7000, 7},
    {"-1", "-1", -1000, -1},
    {"-100m", "-100m", -100, -1},
    {"-1.5Gi", "-1536Mi", -1610612736000, -1610612736},
    {"-1Ki", "-1Ki", -1024000, -1024},
    {"9223372036854775807", "9223372036854775807", 0, INT64_MAX},
};

static void test_table_canonical_and_values(void)
{
    ASSERT_CMP_INT(sizeof cases / sizeof cases[0], >=, 40);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kq q;
        operr e = {""};
        char buf[KQ_STR_MAX];
        int rc = kq_parse_str(&q, cases[i].in, &e);
        if (rc != 0)
            test_fail(__FILE__, __LINE__, "parse \"%s\": %s", cases[i].in, e.msg);
        ASSERT_EQ_INT(kq_format(&q, buf, sizeof buf), strlen(cases[i].canon));
        if (strcmp(buf, cases[i].canon) != 0)
            test_fail(__FILE__, __LINE__, "\"%s\" printed \"%s\", want \"%s\"", cases[i].in, buf,
                      cases[i].canon);
        int64_t v;
        ASSERT_EQ_INT(kq_to_int(&q, &v), 0);
        if (v != cases[i].value)
            test_fail(__FILE__, __LINE__, "\"%s\" value %" PRId64 " want %" PRId64, cases[i].in, v,
                      cases[i].value);
        if (cases[i].milli != 0 || cases[i].value == 0) {
            ASSERT_EQ_INT(kq_to_milli(&q, &v), 0);
            if (v != cases[i].milli)
                test_fail(__FILE__, __LINE__, "\"%s\" milli %" PRId64 " want %" PRId64, cases[i].in,
                          v, cases[i].milli);
        } else {
            ASSERT_EQ_INT(kq_to_milli(&q, &v), -ERANGE);
        }
        /* Round trip: the canonical form parses to the same value and prints
         * itself, except binary spellings without a binary suffix, which read
         * back as decimal (as in Kubernetes: "64000" prints "64k"). */
        kq r;
        char again[KQ_STR_MAX];
        ASSERT_EQ_INT(kq_parse_str(&r, buf, &e), 0);
        ASSERT_EQ_INT(kq_cmp(&q, &r), 0);
        ASSERT(kq_format(&r, again, sizeof again) > 0);
        if (strcmp(cases[i].in, "62.5Ki") == 0)
            ASSERT_STR_EQ(again, "64k");
        else
            ASSERT_STR_EQ(again, buf);
    }
}

/* More cases in the spirit of apimachinery's own parse table: fractional
 * SI and exponent forms, rounding up below a nano, fractional binary. */
static void test_kubernetes_parse_table(void)
{
    static const struct {
        const char *in, *canon;
    } t[] = {
        {"100.035k", "100035"},
        {"0.0005k", "500m"},
        {"0.5e-1", "50e-3"},
        {"1.2e3", "1200"},
        {"1.3E+6", "1300e3"},
        {"1.40e9", "1400e6"},
        {"1.53E12", "1530e9"},
        {"9.01", "9010m"},
        {"8.1k", "8100"},
        {"7.123456M", "7123456"},
        {"6.987654321G", "6987654321"},
        {"1.01E", "1010P"},
        {"9E", "9E"},
        {"3.001n", "4n"},
        {"1.1E-9", "2e-9"},
        {"0.0000000005", "1n"},
        {"0.5e-9", "1e-9"},
        {"0.9n", "1n"},
        {"0.00000012345", "124n"},
        {"100.035Ki", "102435840m"},
        {"0.5Mi", "512Ki"},
        {"0.05Gi", "53687091200m"},
        {"0.025Ti", "27487790694400m"},
        {"0.000000000001Ki", "2n"},
        {".001", "1m"},
        {".0001k", "100m"},
        {"0Ki", "0"},
        {"0.00500", "5m"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        kq q, r;
        operr e = {""};
        char buf[KQ_STR_MAX];
        if (kq_parse_str(&q, t[i].in, &e) != 0)
            test_fail(__FILE__, __LINE__, "parse \"%s\": %s", t[i].in, e.msg);
        ASSERT(kq_format(&q, buf, sizeof buf) > 0);
        if (strcmp(buf, t[i].canon) != 0)
            test_fail(__FILE__, __LINE__, "\"%s\" printed \"%s\", want \"%s\"", t[i].in, buf,
                      t[i].canon);
        ASSERT_EQ_INT(kq_parse_str(&r, buf, NULL), 0);
        ASSERT_EQ_INT(kq_cmp(&q, &r), 0);
    }
    /* Beyond 2^63-1 units Kubernetes keeps going (inf.Dec, or a silent cap
     * for binary); we refuse, documented in quantity.h. */
    kq big;
    ASSERT_EQ_INT(kq_parse_str(&big, "12E", NULL), -EINVAL);
    ASSERT_EQ_INT(kq_parse_str(&big, "9Ei", NULL), -EINVAL);
    ASSERT_EQ_INT(kq_parse_str(&big, "9223372036854775807Ki", NULL), -EINVAL);
    /* ... and the same table's rejects. */
    static const char *bad[] = {"1.1.M", "1+1.0M", "0.1mi",   "0.1am", "aoeu", ".5i",
                                "1i",    "-3.01i", "-3.01e-", " 1",    "1 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kq q;
        if (kq_parse_str(&q, bad[i], NULL) != -EINVAL)
            test_fail(__FILE__, __LINE__, "\"%s\" accepted", bad[i]);
    }
}

static void test_garbage_is_einval_naming_input(void)
{
    static const char *bad[] = {"abc",    "1.2.3",
                                "1Qi",    "",
                                " 1",     "1 Gi",
                                "1e400",  "1e",
                                "1K",     "Ki",
                                ".",      "-",
                                "+",      "1ki",
                                "1e3.5",  "1m5",
                                "1Gi ",   "--1",
                                "1e+",    "0x10",
                                "1_000",  "1E3i",
                                "1Mb",    "8Ei",
                                "1e19",   "1e99999999999",
                                "1 ",     "Gi",
                                "1iK",    "+-1",
                                "1.5.Gi", "e3",
                                "1e-",    "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kq q;
        operr e = {""};
        int rc = kq_parse_str(&q, bad[i], &e);
        if (rc != -EINVAL)
            test_fail(__FILE__, __LINE__, "\"%s\" gave %d, want -EINVAL", bad[i], rc);
        char want[64];
        snprintf(want, sizeof want, "quantity \"%s\"", bad[i]);
        ASSERT_STR_CONTAINS(e.msg, want);
    }
    operr e;
    kq q;
    kq_parse_str(&q, "1Qi", &e);
    ASSERT_STR_EQ(e.msg, "quantity \"1Qi\": unknown suffix \"Qi\"");
    kq_parse_str(&q, "1e400", &e);
    ASSERT_STR_CONTAINS(e.msg, "out of range");
    /* An embedded NUL is not the end of the input. */
    ASSERT_EQ_INT(kq_parse(&q, "1\0", 2, NULL), -EINVAL);
    /* Too long is refused before looking at it. */
    char longs[KQ_INPUT_MAX + 2];
    memset(longs, '1', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    ASSERT_EQ_INT(kq_parse_str(&q, longs, &e), -EINVAL);
    ASSERT_STR_CONTAINS(e.msg, "longer than");
}

static void test_long_fractions_round_up_to_nano(void)
{
    kq q;
    char buf[KQ_STR_MAX];
    /* 255 digits: sticky remainder far below a nano. */
    char s[KQ_INPUT_MAX];
    memset(s, '0', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    s[1] = '.';
    s[sizeof s - 2] = '1';
    ASSERT_EQ_INT(kq_parse_str(&q, s, NULL), 0);
    ASSERT(kq_format(&q, buf, sizeof buf) > 0);
    ASSERT_STR_EQ(buf, "1n");
    ASSERT_EQ_INT(kq_parse_str(&q, "-0.0000000001", NULL), 0);
    ASSERT_EQ_INT(kq_format(&q, buf, sizeof buf), 3);
    ASSERT_STR_EQ(buf, "-1n");
    ASSERT_EQ_INT(kq_parse_str(&q, "1e-1000000", NULL), 0);
    ASSERT_EQ_INT(q.nanos, 1);
    /* Binary fractions below a nano round up too: 2^-30 Gi = 1 byte exactly,
     * 1e-10 Ki = 1.024e-7 = 102.4n -> 103n. */
    ASSERT_EQ_INT(kq_parse_str(&q, "0.0000000001Ki", NULL), 0);
    ASSERT(kq_format(&q, buf, sizeof buf) > 0);
    ASSERT_STR_EQ(buf, "103n");
    ASSERT_EQ_INT(kq_parse_str(&q, "0.000000000931322574615478515625Gi", NULL), 0);
    ASSERT_EQ_INT(q.units, 1);
    ASSERT_EQ_INT(q.nanos, 0);
    /* The largest value with nanos prints all 28 digits. */
    ASSERT_EQ_INT(kq_parse_str(&q, "9223372036854775807.999999999", NULL), 0);
    ASSERT(kq_format(&q, buf, sizeof buf) > 0);
    ASSERT_STR_EQ(buf, "9223372036854775807999999999n");
    ASSERT_EQ_INT(kq_parse_str(&q, "-9223372036854775807.9999999991", NULL), -EINVAL);
}

static void test_format_si_and_small_buffers(void)
{
    kq q;
    char buf[KQ_STR_MAX];
    ASSERT_EQ_INT(kq_parse_str(&q, "1e3", NULL), 0);
    ASSERT_EQ_INT(kq_format_si(&q, buf, sizeof buf), 2);
    ASSERT_STR_EQ(buf, "1k");
    ASSERT_EQ_INT(kq_parse_str(&q, "129e6", NULL), 0);
    ASSERT(kq_format_si(&q, buf, sizeof buf) > 0);
    ASSERT_STR_EQ(buf, "129M");
    ASSERT_EQ_INT(kq_parse_str(&q, "1536Mi", NULL), 0);
    ASSERT_EQ_INT(kq_format(&q, buf, 6), -ENOSPC);
    ASSERT_EQ_INT(kq_format(&q, buf, 7), 6);
    ASSERT_STR_EQ(buf, "1536Mi");
    ASSERT_EQ_INT(kq_format(&q, buf, 0), -ENOSPC);
}

static void test_recommendation_spellings(void)
{
    char buf[KQ_STR_MAX];
    static const struct {
        int64_t milli;
        const char *want;
    } cpu[] = {{250, "250m"}, {2000, "2"}, {1500, "1500m"}, {5, "5m"}, {1000000, "1k"}, {0, "0"}};
    for (size_t i = 0; i < sizeof cpu / sizeof cpu[0]; i++) {
        ASSERT(kq_fmt_cpu_milli(cpu[i].milli, buf, sizeof buf) > 0);
        ASSERT_STR_EQ(buf, cpu[i].want);
    }
    static const struct {
        int64_t bytes;
        const char *want;
    } mem[] = {{512 * KQ_MI, "512Mi"}, {2 * KQ_GI, "2Gi"},    {3 * KQ_GI / 2, "1536Mi"},
               {3 * KQ_KI, "3Ki"},     {1000, "1k"},          {1023, "1023"},
               {100000000, "100M"},    {257 * KQ_MI, "257Mi"}};
    for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++) {
        ASSERT(kq_fmt_mem_bytes(mem[i].bytes, buf, sizeof buf) > 0);
        ASSERT_STR_EQ(buf, mem[i].want);
        /* What we write reads back to the same byte count. */
        kq q;
        int64_t v;
        ASSERT_EQ_INT(kq_parse_str(&q, buf, NULL), 0);
        ASSERT_EQ_INT(kq_to_int(&q, &v), 0);
        ASSERT_EQ_INT(v, mem[i].bytes);
    }
}

/* Exhaustive-ish round trip over generated values in all three formats. */
static void test_generated_round_trips(void)
{
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        kq q;
        int shape = (int)(x % 4);
        int64_t units = (int64_t)((x >> 8) % 100000000000ULL);
        if (shape == 0)
            units = (units % 4096) * KQ_MI;
        q.units = (x & 1) ? -units : units;
        q.nanos = shape == 3 ? (int32_t)((x >> 40) % 1000000000) : 0;
        if (q.units < 0)
            q.nanos = -q.nanos;
        else if (q.units == 0 && (x & 1))
            q.nanos = -q.nanos;
        q.fmt = (kq_fmt)((x >> 20) % 3);
        char buf[KQ_STR_MAX];
        ASSERT(kq_format(&q, buf, sizeof buf) > 0);
        kq r;
        operr e = {""};
        if (kq_parse_str(&r, buf, &e) != 0)
            test_fail(__FILE__, __LINE__, "reparse: %s", e.msg);
        if (kq_cmp(&q, &r) != 0)
            test_fail(__FILE__, __LINE__, "%s: %" PRId64 ".%09d became %" PRId64 ".%09d", buf,
                      q.units, q.nanos, r.units, r.nanos);
    }
}

static void test_constructors_and_compare(void)
{
    kq a = kq_from_milli(1500), b, c = kq_from_int(2, KQ_DECIMAL_SI);
    ASSERT_EQ_INT(kq_parse_str(&b, "1.5", NULL), 0);
    ASSERT_EQ_INT(kq_cmp(&a, &b), 0);
    ASSERT_EQ_INT(kq_cmp(&a, &c), -1);
    ASSERT_EQ_INT(kq_cmp(&c, &a), 1);
    kq n = kq_from_milli(-1);
    ASSERT_EQ_INT(kq_cmp(&n, &a), -1);
    ASSERT(!kq_is_zero(&n));
    kq z = kq_from_milli(0);
    ASSERT(kq_is_zero(&z));
    int64_t v;
    ASSERT_EQ_INT(kq_to_milli(&n, &v), 0);
    ASSERT_EQ_INT(v, -1);
    ASSERT_EQ_INT(kq_to_int(&n, &v), 0);
    ASSERT_EQ_INT(v, -1); /* rounded up in magnitude, like Quantity.Value() */
}

static void test_parse_resource_helpers(void)
{
    int64_t v;
    operr e = {""};
    ASSERT_EQ_INT(kq_parse_cpu_milli("250m", &v, &e), 0);
    ASSERT_EQ_INT(v, 250);
    ASSERT_EQ_INT(kq_parse_cpu_milli("0.5", &v, &e), 0);
    ASSERT_EQ_INT(v, 500);
    ASSERT_EQ_INT(kq_parse_cpu_milli("1.0001", &v, &e), 0);
    ASSERT_EQ_INT(v, 1001); /* rounded up, like MilliValue() */
    ASSERT_EQ_INT(kq_parse_bytes("1.5Gi", &v, &e), 0);
    ASSERT_EQ_INT(v, 1610612736);
    ASSERT_EQ_INT(kq_parse_bytes("512M", &v, &e), 0);
    ASSERT_EQ_INT(v, 512000000);
    ASSERT_EQ_INT(kq_parse_bytes("-1Gi", &v, &e), -EINVAL);
    ASSERT_STR_EQ(e.msg, "quantity \"-1Gi\": negative");
    ASSERT_EQ_INT(kq_parse_cpu_milli("1E", &v, &e), -EINVAL);
    ASSERT_STR_EQ(e.msg, "quantity \"1E\": too large in millicores");
    ASSERT_EQ_INT(kq_parse_bytes("1 Gi", &v, &e), -EINVAL);
    ASSERT_STR_CONTAINS(e.msg, "quantity \"1 Gi\"");
}

int main(void)
{
    TEST_RUN(test_table_canonical_and_values);
    TEST_RUN(test_kubernetes_parse_table);
    TEST_RUN(test_garbage_is_einval_naming_input);
    TEST_RUN(test_long_fractions_round_up_to_nano);
    TEST_RUN(test_format_si_and_small_buffers);
    TEST_RUN(test_recommendation_spellings);
    TEST_RUN(test_generated_round_trips);
    TEST_RUN(test_constructors_and_compare);
    TEST_RUN(test_parse_resource_helpers);
    return test_summary();
}
