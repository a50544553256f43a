/*
 * jscan: token streams, the strict grammar (what is refused and why), the
 * depth and number bounds, escapes and their decoding, skipping subtrees,
 * trusted mode, and agreement with cJSON on which documents are valid.
 */
#include <cJSON.h>
#include <errno.h>

#include "test.h"
#include "util/buf.h"
#include "util/jscan.h"

/* Tokenize all of s; returns 0 or the error, and the token types as letters. */
static int tokens(const char *s, char *out, size_t cap)
{
    static const char letters[] = "-{}[]ksntfF.";
    jscan sc;
    jscan_tok t;
    size_t n = 0;
    jscan_init(&sc, s, strlen(s));
    for (;;) {
        int rc = jscan_next(&sc, &t);
        if (rc) {
            out[n] = 0;
            return rc;
        }
        if (t.type == JSCAN_EOF)
            break;
        if (n + 1 < cap)
            out[n++] = letters[t.type];
    }
    out[n] = 0;
    return 0;
}

static int valid(const char *s)
{
    char buf[256];
    return tokens(s, buf, sizeof buf) == 0;
}

static void test_token_stream(void)
{
    char buf[128];
    ASSERT_EQ_INT(tokens("{\"a\":[1,\"x\",true,false,null,{}],\"b\":-0.5e+3}", buf, sizeof buf), 0);
    ASSERT_STR_EQ(buf, "{k[nstfF{}]kn}");
    ASSERT_EQ_INT(tokens("  [ ]  ", buf, sizeof buf), 0);
    ASSERT_STR_EQ(buf, "[]");
    ASSERT_EQ_INT(tokens("\"top\"", buf, sizeof buf), 0);
    ASSERT_STR_EQ(buf, "s");
    ASSERT_EQ_INT(tokens("42", buf, sizeof buf), 0);
    ASSERT_STR_EQ(buf, "n");

    jscan s;
    jscan_tok t;
    const char *doc = "{\"key\" : \"va\\\"l\", \"n\": 12.5}";
    jscan_init(&s, doc, strlen(doc));
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(t.type, JSCAN_OBJ);
    ASSERT_EQ_INT(jscan_depth(&s), 1);
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(t.type, JSCAN_KEY);
    ASSERT_EQ_INT(t.n, 3);
    ASSERT(memcmp(t.p, "key", 3) == 0);
    ASSERT_EQ_INT(t.esc, 0);
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(t.type, JSCAN_STR);
    ASSERT_EQ_INT(t.esc, 1);
    ASSERT_EQ_INT(t.n, 5); /* raw: va\"l */
    char dec[16];
    ASSERT_EQ_INT(jscan_unescape(&t, dec, sizeof dec), 4);
    ASSERT(memcmp(dec, "va\"l", 4) == 0);
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(t.type, JSCAN_NUM);
    ASSERT_EQ_INT(t.n, 4);
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(t.type, JSCAN_OBJ_END);
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(t.type, JSCAN_EOF);
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(t.type, JSCAN_EOF);
    ASSERT_EQ_INT(jscan_offset(&s), strlen(doc));
}

static void test_rejects(void)
{
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "}",
        "[1,]",
        "[,1]",
        "{,}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\" 1}",
        "{1:2}",
        "{'a':1}",
        "[1 2]",
        "[1]]",
        "[1] x",
        "{} {}",
        "tru",
        "nul",
        "falsey",
        "01",
        "1.",
        "-.5",
        ".5",
        "+1",
        "-",
        "1e",
        "1e+",
        "0x10",
        "Infinity",
        "NaN",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\uZZZZ\"",
        "\"a\tb\"",
        "\"a\nb\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\ud800x\"",
        "[\"\\\"]",
        "\xef\xbb\xbf[]",
        "\x01[]",
        "[\x0b]",
        "{\"a\":1,}",
        "[}",
        "{]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (valid(bad[i]))
            test_fail(__FILE__, __LINE__, "accepted bad case %zu: %s", i, bad[i]);
    }
    /* Errors are sticky. */
    jscan s;
    jscan_tok t;
    jscan_init(&s, "[1,,2]", 6);
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(jscan_next(&s, &t), -EINVAL);
    ASSERT_EQ_INT(jscan_next(&s, &t), -EINVAL);
    ASSERT_EQ_INT(jscan_skip(&s, &t), -EINVAL);
    /* No NUL terminator needed: the length bounds everything. */
    ASSERT(!valid("\"abc\"") == 0);
    jscan_init(&s, "\"abc\"xyz", 4);
    ASSERT_EQ_INT(jscan_next(&s, &t), -EINVAL);
}

static void test_accepts(void)
{
    static const char *const good[] = {
        "0",
        "-0",
        "1.5",
        "-1.5e-10",
        "1E5",
        "1e+5",
        "123456789012345678901234567890",
        "[]",
        "{}",
        "[[]]",
        "[{}]",
        "\"\"",
        "\"\\u0000\"",
        "\"\\ud83d\\ude00\"",
        "\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"",
        "\" \x7f\xff\xc3\xa9\"",
        " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \n",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!valid(good[i]))
            test_fail(__FILE__, __LINE__, "refused good case %zu: %s", i, good[i]);
    }
}

/* Numbers up to JSCAN_NUM_MAX characters (cJSON reads longer ones: stricter here). */
static void test_number_cap(void)
{
    char buf[JSCAN_NUM_MAX + 8];
    for (size_t n = JSCAN_NUM_MAX - 1; n <= JSCAN_NUM_MAX + 1; n++) {
        memset(buf, 0, sizeof buf);
        buf[0] = '[';
        memset(buf + 1, '1', n);
        buf[n + 1] = ']';
        ASSERT_EQ_INT(valid(buf), n <= JSCAN_NUM_MAX);
        cJSON *c = cJSON_Parse(buf);
        ASSERT_NOT_NULL(c);
        cJSON_Delete(c);
    }
}

static void test_depth_cap(void)
{
    opbuf b;
    opbuf_init(&b, 1 << 16);
    for (int depth = JSCAN_DEPTH_MAX - 1; depth <= JSCAN_DEPTH_MAX + 1; depth++) {
        opbuf_reset(&b);
        for (int i = 0; i < depth; i++)
            opbuf_puts(&b, i % 2 ? "{\"k\":" : "[");
        opbuf_puts(&b, "0");
        for (int i = depth - 1; i >= 0; i--)
            opbuf_puts(&b, i % 2 ? "}" : "]");
        jscan s;
        jscan_tok t;
        int rc = 0, maxd = 0;
        jscan_init(&s, b.data, b.len);
        do {
            rc = jscan_next(&s, &t);
            if (jscan_depth(&s) > maxd)
                maxd = jscan_depth(&s);
        } while (!rc && t.type != JSCAN_EOF);
        ASSERT_EQ_INT(rc, depth <= JSCAN_DEPTH_MAX ? 0 : -E2BIG);
        cJSON *c = cJSON_ParseWithLength(b.data, b.len);
        ASSERT_EQ_INT(c != NULL, depth <= JSCAN_DEPTH_MAX);
        cJSON_Delete(c);
        if (!rc)
            ASSERT_EQ_INT(maxd, depth);
    }
    opbuf_release(&b);
}

static jscan_tok one_string(const char *json)
{
    jscan s;
    jscan_tok t;
    jscan_init(&s, json, strlen(json));
    if (jscan_next(&s, &t) || t.type != JSCAN_STR)
        test_fail(__FILE__, __LINE__, "not a string: %s", json);
    return t;
}

static void test_unescape(void)
{
    char buf[64];
    jscan_tok t = one_string("\"a\\u00e9\\u20ac\\ud83d\\ude00\\n\\u0041\"");
    ssize_t n = jscan_unescape(&t, buf, sizeof buf);
    ASSERT_EQ_INT(n, 1 + 2 + 3 + 4 + 1 + 1);
    ASSERT(memcmp(buf, "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\nA", (size_t)n) == 0);
    ASSERT_EQ_INT(jscan_unescape(&t, NULL, 0), n);
    ASSERT_EQ_INT(jscan_unescape(&t, buf, 3), -E2BIG);
    ASSERT_EQ_INT(jscan_strlen0(&t), (size_t)n);

    /* U+0000 is decoded, and ends the C-string view. */
    t = one_string("\"ab\\u0000cd\"");
    ASSERT_EQ_INT(jscan_unescape(&t, buf, sizeof buf), 5);
    ASSERT(memcmp(buf, "ab\0cd", 5) == 0);
    ASSERT_EQ_INT(jscan_strlen0(&t), 2);
    memset(buf, 'x', sizeof buf);
    ASSERT_EQ_INT(jscan_strcpy0(&t, buf), 2);
    ASSERT_STR_EQ(buf, "ab");
    ASSERT(jscan_streq(&t, "ab", 2));
    ASSERT(!jscan_streq(&t, "abc", 3));
    ASSERT(!jscan_streq(&t, "a", 1));
    ASSERT(jscan_strprefix(&t, "a", 1));
    ASSERT(jscan_strprefix(&t, "ab", 2));
    ASSERT(!jscan_strprefix(&t, "abc", 3));

    jscan_tok plain = one_string("\"ab\"");
    ASSERT_EQ_INT(plain.esc, 0);
    ASSERT(jscan_streq_tok(&t, &plain));
    ASSERT(jscan_streq_tok(&plain, &t));
    jscan_tok other = one_string("\"a\\u0062c\"");
    ASSERT(!jscan_streq_tok(&other, &plain));
    ASSERT(jscan_streq(&other, "abc", 3));
    ASSERT_EQ_INT(jscan_unescape(&plain, buf, 1), -E2BIG);
    ASSERT_EQ_INT(jscan_unescape(&plain, buf, 2), 2);

    /* Every escape decodes as cJSON decodes it. */
    const char *json = "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u07ff\\uffff\\udbff\\udfff\"]";
    cJSON *c = cJSON_Parse(json);
    ASSERT_NOT_NULL(c);
    jscan s;
    jscan_init(&s, json, strlen(json));
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    char dec[64];
    ASSERT_EQ_INT(jscan_strcpy0(&t, dec), strlen(c->child->valuestring));
    ASSERT_STR_EQ(dec, c->child->valuestring);
    cJSON_Delete(c);
}

static void test_skip_values(void)
{
    const char *doc =
        "{\"skip\":{\"a\":[1,{\"b\":\"}]\\\"\"}],\"c\":{}},\"next\":[[],[1]],\"s\":1}";
    for (int trusted = 0; trusted < 2; trusted++) {
        jscan s;
        jscan_tok t;
        if (trusted)
            jscan_init_trusted(&s, doc, strlen(doc));
        else
            jscan_init(&s, doc, strlen(doc));
        ASSERT_EQ_INT(jscan_next(&s, &t), 0);
        ASSERT_EQ_INT(jscan_next(&s, &t), 0);
        ASSERT_EQ_INT(jscan_next(&s, &t), 0);
        ASSERT_EQ_INT(t.type, JSCAN_OBJ);
        ASSERT_EQ_INT(jscan_skip(&s, &t), 0);
        ASSERT_EQ_INT(t.n, strlen("{\"a\":[1,{\"b\":\"}]\\\"\"}],\"c\":{}}"));
        ASSERT(memcmp(t.p, "{\"a\":[1,{\"b\":\"}]\\\"\"}],\"c\":{}}", t.n) == 0);
        ASSERT_EQ_INT(jscan_depth(&s), 1);
        ASSERT_EQ_INT(jscan_next(&s, &t), 0);
        ASSERT_EQ_INT(t.type, JSCAN_KEY);
        ASSERT_EQ_INT(jscan_next(&s, &t), 0);
        ASSERT_EQ_INT(jscan_skip(&s, &t), 0);
        ASSERT_EQ_INT(t.n, 8);
        ASSERT_EQ_INT(jscan_next(&s, &t), 0);
        ASSERT_EQ_INT(jscan_next(&s, &t), 0);
        ASSERT_EQ_INT(t.type, JSCAN_NUM);
        ASSERT_EQ_INT(jscan_skip(&s, &t), 0); /* scalars: nothing to do */
        ASSERT_EQ_INT(t.n, 1);
        ASSERT_EQ_INT(jscan_next(&s, &t), 0);
        ASSERT_EQ_INT(t.type, JSCAN_OBJ_END);
        ASSERT_EQ_INT(jscan_next(&s, &t), 0);
        ASSERT_EQ_INT(t.type, JSCAN_EOF);
    }
    /* Validating skip still validates the subtree; the trusted one is bounded. */
    const char *bad = "[{\"a\":01}]";
    jscan s;
    jscan_tok t;
    jscan_init(&s, bad, strlen(bad));
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(jscan_skip(&s, &t), -EINVAL);
    const char *cut = "[{\"a\":\"}";
    jscan_init_trusted(&s, cut, strlen(cut));
    ASSERT_EQ_INT(jscan_next(&s, &t), 0);
    ASSERT_EQ_INT(jscan_skip(&s, &t), -EINVAL);
}

/* Where both are defined, validity agrees with cJSON (cJSON being laxer on
 * the documented points only). */
static void test_agrees_with_cjson(void)
{
    static const char *const docs[] = {
        "{\"a\":[1,2,{\"b\":null}]}",
        "[true,false]",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\udc00\"}",
        "[1,]",
        "{\"a\":1,,}",
        "[\"\\q\"]",
        "[1e5,-0.0]",
        "{\"\\u00e9\":\"\"}",
        "[\"\\ud800\\udc00\"]",
        "[[[]]]]",
        "{\"a\":[}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        cJSON *c = cJSON_ParseWithLength(docs[i], strlen(docs[i]));
        int v = valid(docs[i]);
        /* "[[[]]]]" has trailing bytes, which cJSON_ParseWithLength ignores. */
        if (i == 10)
            ASSERT(c && !v);
        else if ((c != NULL) != v)
            test_fail(__FILE__, __LINE__, "case %zu: cJSON %d, jscan %d", i, c != NULL, v);
        cJSON_Delete(c);
    }
}

int main(void)
{
    TEST_RUN(test_token_stream);
    TEST_RUN(test_rejects);
    TEST_RUN(test_accepts);
    TEST_RUN(test_number_cap);
    TEST_RUN(test_depth_cap);
    TEST_RUN(test_unescape);
    TEST_RUN(test_skip_values);
    TEST_RUN(test_agrees_with_cjson);
    return test_summary();
}
