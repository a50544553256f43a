#include "test.h"
#include "policy/selector.h"

#include <errno.h>

static cJSON *labels(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    if (!j)
        test_fail(__FILE__, __LINE__, "bad test JSON: %s", json);
    return j;
}

/* Parse the string form and match against a label set given as JSON. */
static int match_str(const char *sel, const char *lbl)
{
    lsel_selector s;
    operr err = {{0}};
    lsel_init(&s);
    int rc = lsel_parse(&s, sel, strlen(sel), &err);
    if (rc)
        test_fail(__FILE__, __LINE__, "parse \"%s\": %s", sel, err.msg);
    cJSON *l = labels(lbl);
    int m = lsel_matches(&s, l);
    cJSON_Delete(l);
    lsel_release(&s);
    return m;
}

static void test_string_form_operators(void)
{
    const char *l = "{\"app\":\"web\",\"tier\":\"front\",\"env\":\"prod\"}";
    ASSERT(match_str("", l));
    ASSERT(match_str("app=web", l));
    ASSERT(match_str("app==web", l));
    ASSERT(!match_str("app=api", l));
    ASSERT(match_str("app!=api", l));
    ASSERT(!match_str("app!=web", l));
    ASSERT(match_str("missing!=x", l)); /* NotIn matches a missing key */
    ASSERT(match_str("env in (prod, staging)", l));
    ASSERT(!match_str("env in (dev,staging)", l));
    ASSERT(match_str("env notin (dev)", l));
    ASSERT(!match_str("env notin (dev,prod)", l));
    ASSERT(match_str("missing notin (a)", l));
    ASSERT(match_str("tier", l));
    ASSERT(!match_str("missing", l));
    ASSERT(match_str("!missing", l));
    ASSERT(!match_str("!tier", l));
    ASSERT(match_str("a=b,c!=d,e in (x,y),!f", "{\"a\":\"b\",\"e\":\"y\"}"));
    ASSERT(!match_str("a=b,c!=d,e in (x,y),!f", "{\"a\":\"b\",\"e\":\"y\",\"f\":\"1\"}"));
    ASSERT(!match_str("a=b,c!=d,e in (x,y),!f", "{\"a\":\"b\",\"c\":\"d\",\"e\":\"y\"}"));
    ASSERT(
        match_str("  a = b ,  optipod.io/managed  ", "{\"a\":\"b\",\"optipod.io/managed\":\"\"}"));
    ASSERT(match_str("a=", "{\"a\":\"\"}"));
    ASSERT(!match_str("a=", "{\"a\":\"x\"}"));
    /* A label set that is not an object (or absent) has no labels. */
    ASSERT(match_str("!a", "null"));
    ASSERT(!match_str("a", "[]"));
}

static void expect_parse_error(const char *sel, int code, const char *needle)
{
    lsel_selector s;
    operr err = {{0}};
    lsel_init(&s);
    int rc = lsel_parse(&s, sel, strlen(sel), &err);
    if (rc != code)
        test_fail(__FILE__, __LINE__, "\"%s\": rc %d, want %d (%s)", sel, rc, code, err.msg);
    if (!strstr(err.msg, needle))
        test_fail(__FILE__, __LINE__, "\"%s\": error \"%s\" lacks \"%s\"", sel, err.msg, needle);
    ASSERT_EQ_INT(s.nreqs, 0);
    lsel_release(&s);
}

static void test_string_form_errors(void)
{
    expect_parse_error("a=b,", -EINVAL, "expected a label key");
    expect_parse_error(",a", -EINVAL, "column 1");
    expect_parse_error("a b", -EINVAL, "column 3");
    expect_parse_error("a in x", -EINVAL, "expected '('");
    expect_parse_error("a in (x", -EINVAL, "expected ',' or ')'");
    expect_parse_error("a>5", -EINVAL, "expected one of");
    expect_parse_error("!a=b", -EINVAL, "expected ',' or the end");
    expect_parse_error("-bad=x", -EINVAL, "not a valid label key");
    expect_parse_error("Bad.Prefix/x=y", -EINVAL, "not a valid label key");
    expect_parse_error("a=-x", -EINVAL, "not a valid label value");
    expect_parse_error("a=0123456789012345678901234567890123456789012345678901234567890123",
                       -EINVAL, "not a valid label value");
    char big[LSEL_MAX_STRING + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    expect_parse_error(big, -E2BIG, "longer than");
    /* Requirement and value counts are capped. */
    opbuf b;
    opbuf_init(&b, 1 << 16);
    for (int i = 0; i <= LSEL_MAX_REQS; i++)
        ASSERT_EQ_INT(opbuf_printf(&b, "%sk%d", i ? "," : "", i), 0);
    expect_parse_error(opbuf_str(&b), -E2BIG, "more than 64 requirements");
    opbuf_reset(&b);
    ASSERT_EQ_INT(opbuf_puts(&b, "k in ("), 0);
    for (int i = 0; i <= LSEL_MAX_VALUES; i++)
        ASSERT_EQ_INT(opbuf_printf(&b, "%sv%d", i ? "," : "", i), 0);
    ASSERT_EQ_INT(opbuf_puts(&b, ")"), 0);
    expect_parse_error(opbuf_str(&b), -E2BIG, "more than 128 values");
    opbuf_release(&b);
}

static void test_key_and_value_syntax(void)
{
    ASSERT(lsel_valid_key("app"));
    ASSERT(lsel_valid_key("app.kubernetes.io/name"));
    ASSERT(lsel_valid_key("A_b-c.D"));
    ASSERT(!lsel_valid_key(""));
    ASSERT(!lsel_valid_key("/name"));
    ASSERT(!lsel_valid_key("prefix/"));
    ASSERT(!lsel_valid_key("a/b/c"));
    ASSERT(!lsel_valid_key("-a.b/name"));
    ASSERT(!lsel_valid_key("a..b/name"));
    ASSERT(!lsel_valid_key("name_"));
    ASSERT(lsel_valid_value(""));
    ASSERT(lsel_valid_value("v1.2_3-x"));
    ASSERT(!lsel_valid_value("a b"));
    ASSERT(!lsel_valid_value("x-"));
}

static void test_json_form(void)
{
    cJSON *j = labels("{\"matchLabels\":{\"optimize\":\"true\"},"
                      "\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\","
                      "\"values\":[\"a\",\"b\"]},{\"key\":\"legacy\",\"operator\":"
                      "\"DoesNotExist\"},{\"key\":\"team\",\"operator\":\"Exists\","
                      "\"values\":[]}]}");
    lsel_selector s;
    operr err = {{0}};
    lsel_init(&s);
    ASSERT_EQ_INT(lsel_from_json(&s, j, "spec.selector.workloadSelector", &err), 0);
    ASSERT_EQ_INT(s.nreqs, 4);
    cJSON *l = labels("{\"optimize\":\"true\",\"tier\":\"b\",\"team\":\"x\"}");
    ASSERT(lsel_matches(&s, l));
    cJSON_ReplaceItemInObject(l, "tier", cJSON_CreateString("c"));
    ASSERT(!lsel_matches(&s, l));
    cJSON_Delete(l);

    opbuf b;
    opbuf_init(&b, 4096);
    ASSERT_EQ_INT(lsel_format(&s, &b), 0);
    ASSERT_STR_EQ(opbuf_str(&b), "optimize=true,tier in (a,b),!legacy,team");
    opbuf_release(&b);

    /* Back to JSON: matchLabels stay matchLabels, expressions stay expressions. */
    cJSON *back = lsel_to_json(&s);
    char *txt = cJSON_PrintUnformatted(back);
    ASSERT_STR_EQ(txt, "{\"matchLabels\":{\"optimize\":\"true\"},\"matchExpressions\":[{\"key\":"
                       "\"tier\",\"operator\":\"In\",\"values\":[\"a\",\"b\"]},{\"key\":"
                       "\"legacy\",\"operator\":\"DoesNotExist\"},{\"key\":\"team\","
                       "\"operator\":\"Exists\"}]}");
    free(txt);
    cJSON_Delete(back);
    cJSON_Delete(j);
    lsel_release(&s);

    /* Null and empty mean "match everything". */
    ASSERT_EQ_INT(lsel_from_json(&s, NULL, "x", &err), 0);
    ASSERT_EQ_INT(s.nreqs, 0);
    ASSERT(lsel_matches(&s, NULL));
}

static void expect_json_error(const char *json, const char *msg)
{
    cJSON *j = labels(json);
    lsel_selector s;
    operr err = {{0}};
    lsel_init(&s);
    int rc = lsel_from_json(&s, j, "spec.selector.workloadSelector", &err);
    cJSON_Delete(j);
    if (rc != -EINVAL)
        test_fail(__FILE__, __LINE__, "%s: rc %d", json, rc);
    if (strcmp(err.msg, msg) != 0)
        test_fail(__FILE__, __LINE__, "%s:\n  got  %s\n  want %s", json, err.msg, msg);
    ASSERT_EQ_INT(s.nreqs, 0);
    lsel_release(&s);
}

static void test_json_errors_name_the_field(void)
{
    const char *p = "spec.selector.workloadSelector";
    char want[256];
    expect_json_error("[]", "spec.selector.workloadSelector: must be an object");
    expect_json_error("{\"matchLabel\":{}}",
                      "spec.selector.workloadSelector.matchLabel: unknown field");
    expect_json_error("{\"matchLabels\":{\"a\":1}}",
                      "spec.selector.workloadSelector.matchLabels.a: must be a string");
    expect_json_error("{\"matchLabels\":{\"a\":\"b c\"}}", "spec.selector.workloadSelector."
                                                           "matchLabels.a: \"b c\" is not a valid "
                                                           "label value");
    expect_json_error("{\"matchExpressions\":{}}",
                      "spec.selector.workloadSelector.matchExpressions: must be a list");
    snprintf(want, sizeof want,
             "%s.matchExpressions[1].operator: unsupported value \"Foo\" (want In, NotIn, "
             "Exists or DoesNotExist)",
             p);
    expect_json_error("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\"},"
                      "{\"key\":\"a\",\"operator\":\"Foo\"}]}",
                      want);
    expect_json_error("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}",
                      "spec.selector.workloadSelector.matchExpressions[0]: operator In needs at "
                      "least one value");
    expect_json_error(
        "{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\"]}]}",
        "spec.selector.workloadSelector.matchExpressions[0]: operator Exists takes no values");
    expect_json_error("{\"matchExpressions\":[{\"operator\":\"Exists\"}]}",
                      "spec.selector.workloadSelector.matchExpressions[0].key: required string");
    expect_json_error(
        "{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[1]}]}",
        "spec.selector.workloadSelector.matchExpressions[0].values[0]: must be a string");
    expect_json_error("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"value\":[]}]}",
                      "spec.selector.workloadSelector.matchExpressions[0].value: unknown field");
}

/* Formatting then parsing gives the same selector (the fuzz target checks this too). */
static void test_format_round_trip(void)
{
    const char *cases[] = {
        "a=b,c!=d,e in (x,y),!f", "x in (,a)", "k=", "k!=", "a,b,!c", "p.io/k notin (1,2,3)",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lsel_selector s1, s2;
        opbuf b1, b2;
        lsel_init(&s1);
        lsel_init(&s2);
        opbuf_init(&b1, 4096);
        opbuf_init(&b2, 4096);
        ASSERT_EQ_INT(lsel_parse(&s1, cases[i], strlen(cases[i]), NULL), 0);
        ASSERT_EQ_INT(lsel_format(&s1, &b1), 0);
        ASSERT_EQ_INT(lsel_parse(&s2, b1.data ? b1.data : "", b1.len, NULL), 0);
        ASSERT_EQ_INT(lsel_format(&s2, &b2), 0);
        ASSERT_STR_EQ(opbuf_str(&b1), opbuf_str(&b2));
        ASSERT_EQ_INT(s1.nreqs, s2.nreqs);
        opbuf_release(&b1);
        opbuf_release(&b2);
        lsel_release(&s1);
        lsel_release(&s2);
    }
}

int main(void)
{
    TEST_RUN(test_string_form_operators);
    TEST_RUN(test_string_form_errors);
    TEST_RUN(test_key_and_value_syntax);
    TEST_RUN(test_json_form);
    TEST_RUN(test_json_errors_name_the_field);
    TEST_RUN(test_format_round_trip);
    return test_summary();
}
