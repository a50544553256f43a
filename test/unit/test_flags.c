#include "test.h"
#include "util/flags.h"

static int dry;
static long verbosity;
static const char *kubeconfig;
static uint64_t timeout_ms;

static const opflag flags[] = {
    {"kubeconfig", 0, OPFLAG_STRING, &kubeconfig, "path"},
    {"dry-run", 0, OPFLAG_BOOL, &dry, "dry"},
    {"v", 'v', OPFLAG_INT, &verbosity, "verbosity"},
    {"shutdown-timeout", 0, OPFLAG_DURATION, &timeout_ms, "drain"},
};
#define NFLAGS ((int)(sizeof flags / sizeof flags[0]))

static void reset(void)
{
    dry = 0;
    verbosity = 0;
    kubeconfig = NULL;
    timeout_ms = 0;
}

static void test_forms(void)
{
    reset();
    char *argv[] = {"optipod", "--kubeconfig=/k",    "--dry-run", "-v",
                    "3",       "--shutdown-timeout", "1m30s",     "plan",
                    "-x"};
    int rest = 0;
    operr e;
    ASSERT_EQ_INT(opflag_parse(flags, NFLAGS, 9, argv, &rest, &e), 0);
    ASSERT_STR_EQ(kubeconfig, "/k");
    ASSERT_EQ_INT(dry, 1);
    ASSERT_EQ_INT(verbosity, 3);
    ASSERT_EQ_INT(timeout_ms, 90000);
    ASSERT_EQ_INT(rest, 7);
    char *argv2[] = {"optipod", "--v=5", "--dry-run=false", "--kubeconfig", "/x", "--", "--not"};
    reset();
    ASSERT_EQ_INT(opflag_parse(flags, NFLAGS, 7, argv2, &rest, &e), 0);
    ASSERT_EQ_INT(verbosity, 5);
    ASSERT_EQ_INT(dry, 0);
    ASSERT_STR_EQ(kubeconfig, "/x");
    ASSERT_EQ_INT(rest, 6);
}

static void test_errors_name_the_flag(void)
{
    operr e;
    char *a1[] = {"optipod", "--kubeconfg=/k"};
    ASSERT_NE_INT(opflag_parse(flags, NFLAGS, 2, a1, NULL, &e), 0);
    ASSERT_STR_EQ(e.msg, "unknown flag: --kubeconfg");
    char *a2[] = {"optipod", "--kubeconfig"};
    ASSERT_NE_INT(opflag_parse(flags, NFLAGS, 2, a2, NULL, &e), 0);
    ASSERT_STR_EQ(e.msg, "flag needs an argument: --kubeconfig");
    char *a3[] = {"optipod", "-v", "lots"};
    ASSERT_NE_INT(opflag_parse(flags, NFLAGS, 3, a3, NULL, &e), 0);
    ASSERT_STR_EQ(e.msg, "flag --v: \"lots\" is not an integer");
    char *a4[] = {"optipod", "--shutdown-timeout=5 minutes"};
    ASSERT_NE_INT(opflag_parse(flags, NFLAGS, 2, a4, NULL, &e), 0);
    ASSERT_STR_CONTAINS(e.msg, "flag --shutdown-timeout: \"5 minutes\" is not a duration");
    char *a5[] = {"optipod", "--dry-run=maybe"};
    ASSERT_NE_INT(opflag_parse(flags, NFLAGS, 2, a5, NULL, &e), 0);
    ASSERT_STR_CONTAINS(e.msg, "is not a boolean");
    char *a6[] = {"optipod", "-kubeconfig"};
    ASSERT_NE_INT(opflag_parse(flags, NFLAGS, 2, a6, NULL, &e), 0);
    ASSERT_STR_CONTAINS(e.msg, "unknown shorthand flag: -kubeconfig");
}

static void test_repeatable_list(void)
{
    const char *store[2];
    opflag_list seeds = {store, 0, 2};
    opflag f[] = {{"seed", 0, OPFLAG_LIST, &seeds, "seed file"}};
    char *argv[] = {"x", "--seed", "a", "--seed=b"};
    operr e;
    ASSERT_EQ_INT(opflag_parse(f, 1, 4, argv, NULL, &e), 0);
    ASSERT_EQ_INT(seeds.n, 2);
    ASSERT_STR_EQ(store[0], "a");
    ASSERT_STR_EQ(store[1], "b");
    char *argv2[] = {"x", "--seed", "c"};
    ASSERT_NE_INT(opflag_parse(f, 1, 3, argv2, NULL, &e), 0);
    ASSERT_STR_EQ(e.msg, "flag --seed: at most 2 values");
}

static void test_durations(void)
{
    uint64_t ms;
    ASSERT_EQ_INT(opflag_parse_duration("250ms", &ms), 0);
    ASSERT_EQ_INT(ms, 250);
    ASSERT_EQ_INT(opflag_parse_duration("1h2m3s", &ms), 0);
    ASSERT_EQ_INT(ms, 3723000);
    ASSERT_EQ_INT(opflag_parse_duration("0", &ms), 0);
    ASSERT_EQ_INT(ms, 0);
    ASSERT_NE_INT(opflag_parse_duration("", &ms), 0);
    ASSERT_NE_INT(opflag_parse_duration("5", &ms), 0);
    ASSERT_NE_INT(opflag_parse_duration("-5s", &ms), 0);
    ASSERT_NE_INT(opflag_parse_duration("5d", &ms), 0);
    ASSERT_NE_INT(opflag_parse_duration("99999999999999999999h", &ms), 0);
}

int main(void)
{
    TEST_RUN(test_forms);
    TEST_RUN(test_errors_name_the_flag);
    TEST_RUN(test_repeatable_list);
    TEST_RUN(test_durations);
    return test_summary();
}
