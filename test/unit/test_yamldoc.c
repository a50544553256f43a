/*
 * opyaml: the tree, positions, scalar interpretation, aliases, and every limit.
 */
#include "test.h"
#include "util/yaml2json.h"
#include "util/yamldoc.h"

#include <errno.h>

static int load(opyaml_doc *d, const char *y, const opyaml_limits *lim, operr *err)
{
    opyaml_init(d);
    return opyaml_load(d, y, strlen(y), lim, err);
}

static void test_tree_and_positions(void)
{
    const char *y = "# a policy\n"
                    "name: web\n"
                    "spec:\n"
                    "  replicas: 3\n"
                    "  ports: [80, \"443\"]\n"
                    "  empty:\n"
                    "  list:\n"
                    "  - a: 1\n"
                    "  - 'quoted'\n";
    opyaml_doc d;
    operr err = {{0}};
    ASSERT_EQ_INT(load(&d, y, NULL, &err), 0);
    ASSERT_EQ_INT(d.nroots, 1);
    const opyaml_node *root = opyaml_root(&d);
    ASSERT_EQ_INT(root->kind, OPYAML_MAP);
    ASSERT_EQ_INT(root->n, 2);
    ASSERT_STR_EQ(opyaml_str(opyaml_get(root, "name")), "web");
    const opyaml_node *spec = opyaml_get(root, "spec");
    ASSERT_EQ_INT(spec->kind, OPYAML_MAP);
    ASSERT_EQ_INT(spec->line, 4); /* a block map starts at its first key */
    const opyaml_pair *rp = opyaml_get_pair(spec, "replicas");
    ASSERT_EQ_INT(rp->key->line, 4);
    ASSERT_EQ_INT(rp->key->column, 3);
    ASSERT_EQ_INT(rp->value->column, 13);
    int64_t v = 0;
    ASSERT_EQ_INT(opyaml_int64(rp->value, &v), 0);
    ASSERT_EQ_INT(v, 3);
    const opyaml_node *ports = opyaml_get(spec, "ports");
    ASSERT_EQ_INT(ports->kind, OPYAML_SEQ);
    ASSERT_EQ_INT(ports->n, 2);
    ASSERT_EQ_INT(opyaml_int64(opyaml_at(ports, 0), &v), 0);
    ASSERT_EQ_INT(v, 80);
    /* quoted: a string, not a number */
    ASSERT_EQ_INT(opyaml_int64(opyaml_at(ports, 1), &v), -EINVAL);
    ASSERT_STR_EQ(opyaml_str(opyaml_at(ports, 1)), "443");
    ASSERT_NULL(opyaml_at(ports, 2));
    ASSERT_NULL(opyaml_at(spec, 0));
    /* present but empty is null; absent is NULL; both read as null */
    const opyaml_node *empty = opyaml_get(spec, "empty");
    ASSERT_NOT_NULL(empty);
    ASSERT(opyaml_is_null(empty));
    ASSERT_NULL(opyaml_str(empty));
    ASSERT_NULL(opyaml_get(spec, "absent"));
    ASSERT(opyaml_is_null(opyaml_get(spec, "absent")));
    const opyaml_node *list = opyaml_get(spec, "list");
    ASSERT_EQ_INT(list->n, 2);
    ASSERT_EQ_INT(list->line, 8);
    ASSERT_STR_EQ(opyaml_str(opyaml_get(opyaml_at(list, 0), "a")), "1");
    ASSERT_EQ_INT(opyaml_at(list, 1)->plain, 0);
    ASSERT_STR_EQ(opyaml_kind_name(list), "sequence");
    ASSERT_STR_EQ(opyaml_kind_name(spec), "map");
    ASSERT_STR_EQ(opyaml_kind_name(empty), "null");
    ASSERT_STR_EQ(opyaml_kind_name(opyaml_at(list, 1)), "string");
    ASSERT_NULL(opyaml_get(ports, "x")); /* not a map */
    opyaml_release(&d);
    ASSERT_EQ_INT(d.nroots, 0);
    ASSERT_NULL(opyaml_root(&d));
    opyaml_release(&d); /* twice is harmless */
}

static void test_scalars(void)
{
    const char *y = "t: [true, True, TRUE, yes, on, Y]\n"
                    "f: [false, no, Off, n]\n"
                    "notbool: ['true', maybe, !!str true, 1]\n"
                    "nulls: [~, null, Null, NULL, '', \"null\"]\n"
                    "ints: [0, -12, +7, 9223372036854775807, -9223372036854775808, 0x10]\n"
                    "notints: [9223372036854775808, 1.5, 0123, '5', -, '', !!int x]\n"
                    "nul: \"a\\0b\"\n";
    opyaml_doc d;
    operr err = {{0}};
    ASSERT_EQ_INT(load(&d, y, NULL, &err), 0);
    const opyaml_node *r = opyaml_root(&d);
    int b = -1;
    const opyaml_node *s = opyaml_get(r, "t");
    for (size_t i = 0; i < s->n; i++) {
        b = -1;
        ASSERT_EQ_INT(opyaml_bool(opyaml_at(s, i), &b), 0);
        ASSERT_EQ_INT(b, 1);
    }
    s = opyaml_get(r, "f");
    for (size_t i = 0; i < s->n; i++) {
        b = -1;
        ASSERT_EQ_INT(opyaml_bool(opyaml_at(s, i), &b), 0);
        ASSERT_EQ_INT(b, 0);
    }
    s = opyaml_get(r, "notbool");
    for (size_t i = 0; i < s->n; i++)
        ASSERT_EQ_INT(opyaml_bool(opyaml_at(s, i), &b), -EINVAL);
    ASSERT_STR_EQ(opyaml_at(s, 2)->tag, "tag:yaml.org,2002:str");
    s = opyaml_get(r, "nulls");
    for (size_t i = 0; i < 4; i++)
        ASSERT(opyaml_is_null(opyaml_at(s, i)));
    ASSERT(!opyaml_is_null(opyaml_at(s, 4))); /* '' is an empty string */
    ASSERT_STR_EQ(opyaml_str(opyaml_at(s, 4)), "");
    ASSERT_STR_EQ(opyaml_str(opyaml_at(s, 5)), "null");
    s = opyaml_get(r, "ints");
    const int64_t want[] = {0, -12, 7, INT64_MAX, INT64_MIN, 16};
    for (size_t i = 0; i < s->n; i++) {
        int64_t v = 1;
        ASSERT_EQ_INT(opyaml_int64(opyaml_at(s, i), &v), 0);
        ASSERT(v == want[i]);
    }
    s = opyaml_get(r, "notints");
    for (size_t i = 0; i < s->n; i++) {
        int64_t v;
        ASSERT_EQ_INT(opyaml_int64(opyaml_at(s, i), &v), -EINVAL);
    }
    const opyaml_node *nul = opyaml_get(r, "nul");
    ASSERT_EQ_INT(nul->len, 3);
    ASSERT(memcmp(nul->str, "a\0b", 4) == 0);
    ASSERT_EQ_INT(opyaml_int64(nul, &(int64_t){0}), -EINVAL);
    opyaml_release(&d);
}

static void test_documents(void)
{
    opyaml_doc d;
    operr err = {{0}};
    ASSERT_EQ_INT(load(&d, "", NULL, &err), 0);
    ASSERT_EQ_INT(d.nroots, 0);
    ASSERT_NULL(opyaml_root(&d));
    opyaml_release(&d);

    ASSERT_EQ_INT(load(&d, "# only a comment\n", NULL, &err), 0);
    ASSERT_EQ_INT(d.nroots, 0);
    opyaml_release(&d);

    ASSERT_EQ_INT(load(&d, "---\n", NULL, &err), 0);
    ASSERT_EQ_INT(d.nroots, 1);
    ASSERT(opyaml_is_null(opyaml_root(&d)));
    opyaml_release(&d);

    ASSERT_EQ_INT(load(&d, "a: 1\n---\n- x\n---\nplain\n...\n", NULL, &err), 0);
    ASSERT_EQ_INT(d.nroots, 3);
    ASSERT_EQ_INT(d.roots[0]->kind, OPYAML_MAP);
    ASSERT_EQ_INT(d.roots[1]->kind, OPYAML_SEQ);
    ASSERT_EQ_INT(d.roots[1]->line, 3);
    ASSERT_STR_EQ(opyaml_str(d.roots[2]), "plain");
    opyaml_release(&d);

    opyaml_limits lim = {.max_docs = 2};
    ASSERT_EQ_INT(load(&d, "a\n---\nb\n---\nc\n", &lim, &err), -E2BIG);
    ASSERT_STR_CONTAINS(err.msg, "line 4 column 1: more than 2 documents");
    ASSERT_EQ_INT(d.nroots, 0);
    opyaml_release(&d);

    /* input need not be NUL-terminated: only len bytes are read */
    const char buf[] = {'k', ':', ' ', 'v', 'X', 'Y'};
    opyaml_init(&d);
    ASSERT_EQ_INT(opyaml_load(&d, buf, 4, NULL, &err), 0);
    ASSERT_STR_EQ(opyaml_str(opyaml_get(opyaml_root(&d), "k")), "v");
    opyaml_release(&d);
}

static void test_errors_name_line_and_column(void)
{
    opyaml_doc d;
    operr err = {{0}};
    ASSERT_EQ_INT(load(&d, "a: 1\nb: [1, 2\nc: 3\n", NULL, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "line 3 column 2:");
    ASSERT_STR_CONTAINS(err.msg, "flow sequence");
    ASSERT_EQ_INT(d.nroots, 0);

    ASSERT_EQ_INT(load(&d, "a: 1\nb:\n  x: 1\n  x: 2\n", NULL, &err), -EINVAL);
    ASSERT_STR_EQ(err.msg, "line 4 column 3: duplicate key \"x\"");

    ASSERT_EQ_INT(load(&d, "? [a, b]\n: c\n", NULL, &err), -EINVAL);
    ASSERT_STR_EQ(err.msg, "line 1 column 3: a map key must be a scalar, not a sequence");

    ASSERT_EQ_INT(load(&d, "a: b: c\n", NULL, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "line 1 column 5: mapping values are not allowed");

    ASSERT_EQ_INT(load(&d, "k: \"\xc3\x28\"\n", NULL, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "UTF-8");

    /* the same key text in different maps is fine */
    ASSERT_EQ_INT(load(&d, "a: {x: 1}\nb: {x: 2}\n", NULL, &err), 0);
    opyaml_release(&d);
    /* a NULL err is allowed */
    ASSERT_EQ_INT(load(&d, "[", NULL, NULL), -EINVAL);
}

static void test_aliases(void)
{
    opyaml_doc d;
    operr err = {{0}};
    const char *y = "base: &res {cpu: 100m, memory: 128Mi}\n"
                    "name: &n web\n"
                    "copy: *res\n"
                    "names: [*n, *n]\n";
    ASSERT_EQ_INT(load(&d, y, NULL, &err), 0);
    const opyaml_node *r = opyaml_root(&d);
    const opyaml_node *base = opyaml_get(r, "base"), *copy = opyaml_get(r, "copy");
    ASSERT(base != copy); /* a copy: the tree stays a tree */
    ASSERT_STR_EQ(opyaml_str(opyaml_get(copy, "memory")), "128Mi");
    ASSERT_EQ_INT(copy->line, 3);
    ASSERT_STR_EQ(opyaml_str(opyaml_at(opyaml_get(r, "names"), 1)), "web");
    size_t nodes = d.nodes;
    ASSERT_EQ_INT(nodes, 1 + (1 + 5) + 2 + (1 + 5) + (1 + 1 + 2));
    opyaml_release(&d);

    /* an alias inside its own anchor is refused, as is an unknown one */
    ASSERT_EQ_INT(load(&d, "a: &x [1, *x]\n", NULL, &err), -EINVAL);
    ASSERT_STR_EQ(err.msg, "line 1 column 11: alias *x names no complete anchor");
    ASSERT_EQ_INT(load(&d, "a: *y\n", NULL, &err), -EINVAL);
    /* anchors do not cross documents */
    ASSERT_EQ_INT(load(&d, "a: &x 1\n---\nb: *x\n", NULL, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "line 3 column 4");

    /* billion laughs stops at the node budget */
    const char *lol = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                      "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                      "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    ASSERT_EQ_INT(load(&d, lol, NULL, &err), -E2BIG);
    ASSERT_STR_CONTAINS(err.msg, "more than 262144 nodes");
    ASSERT_EQ_INT(d.nroots, 0);
    /* an alias may not smuggle depth past the cap */
    opyaml_limits lim = {.max_depth = 3};
    ASSERT_EQ_INT(load(&d, "a: &a [[1]]\nb: [*a]\n", &lim, &err), -E2BIG);
    ASSERT_STR_EQ(err.msg, "line 2 column 5: alias *a nests deeper than 3 levels");
}

static void test_limits(void)
{
    opyaml_doc d;
    operr err = {{0}};
    opyaml_limits lim = {.max_bytes = 8};
    ASSERT_EQ_INT(load(&d, "a: 123456\n", &lim, &err), -E2BIG);
    ASSERT_STR_EQ(err.msg, "input is 10 bytes, more than the 8 allowed");

    lim = (opyaml_limits){.max_depth = 2};
    ASSERT_EQ_INT(load(&d, "a: {b: 1}\n", &lim, &err), 0);
    opyaml_release(&d);
    ASSERT_EQ_INT(load(&d, "a: {b: [1]}\n", &lim, &err), -E2BIG);
    ASSERT_STR_EQ(err.msg, "line 1 column 8: nested deeper than 2 levels");

    lim = (opyaml_limits){.max_nodes = 5};
    ASSERT_EQ_INT(load(&d, "a: 1\nb: 2\n", &lim, &err), 0);
    ASSERT_EQ_INT(d.nodes, 5);
    opyaml_release(&d);
    ASSERT_EQ_INT(load(&d, "a: 1\nb: 2\nc: 3\n", &lim, &err), -E2BIG);
    ASSERT_STR_CONTAINS(err.msg, "line 3 column 1: more than 5 nodes");

    /* the default depth cap holds against a very deep flow sequence */
    char deep[20001];
    memset(deep, '[', 10000);
    memset(deep + 10000, ']', 10000);
    deep[20000] = '\0';
    ASSERT_EQ_INT(load(&d, deep, NULL, &err), -E2BIG);
    ASSERT_STR_CONTAINS(err.msg, "nested deeper than 64 levels");
    /* a huge requested depth is clamped, not trusted */
    lim = (opyaml_limits){.max_depth = 1000000};
    ASSERT_EQ_INT(load(&d, deep, &lim, &err), -E2BIG);
    ASSERT_STR_CONTAINS(err.msg, "nested deeper than 1024 levels");
}

/* One truth for booleans: opyaml_bool() and yaml2json agree on every spelling, and both
 * read YAML 1.1 as sigs.k8s.io/yaml (go-yaml v2) does for kubectl: y, Y, yes and on are true. */
static void test_booleans_as_kubernetes_reads_them(void)
{
    static const struct {
        const char *text;
        int want; /* 1 true, 0 false, -1 a string */
    } cases[] = {
        {"y", 1},          {"Y", 1},     {"yes", 1},        {"Yes", 1},  {"YES", 1},
        {"on", 1},         {"On", 1},    {"ON", 1},         {"true", 1}, {"True", 1},
        {"TRUE", 1},       {"n", 0},     {"N", 0},          {"no", 0},   {"No", 0},
        {"NO", 0},         {"off", 0},   {"Off", 0},        {"OFF", 0},  {"false", 0},
        {"False", 0},      {"FALSE", 0}, {"!!bool yes", 1}, {"'y'", -1}, {"\"on\"", -1},
        {"!!str yes", -1}, {"yEs", -1},  {"oN", -1},        {"yy", -1},  {"1", -1},
        {"|\n  y\n", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char y[64];
        snprintf(y, sizeof y, "v: %s\n", cases[i].text);
        opyaml_doc d;
        operr err = {{0}};
        ASSERT_EQ_INT(load(&d, y, NULL, &err), 0);
        int b = -1;
        int rc = opyaml_bool(opyaml_get(opyaml_root(&d), "v"), &b);
        opyaml_release(&d);
        cJSON *j = NULL;
        ASSERT_EQ_INT(yaml2json_parse(y, strlen(y), &j, &err), 0);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "v");
        if (cases[i].want < 0) {
            if (rc != -EINVAL || cJSON_IsBool(v))
                test_fail(__FILE__, __LINE__, "'%s' read as a boolean", cases[i].text);
        } else if (rc != 0 || b != cases[i].want || !cJSON_IsBool(v) ||
                   cJSON_IsTrue(v) != cases[i].want) {
            test_fail(__FILE__, __LINE__, "'%s': opyaml_bool %d (%d), yaml2json %s", cases[i].text,
                      rc, b, cJSON_IsTrue(v) ? "true" : "not true");
        }
        cJSON_Delete(j);
    }
}

/* Keys become strings as sigs.k8s.io/yaml makes them. */
static void test_json_keys_as_kubernetes_spells_them(void)
{
    static const char y[] =
        "{y: 1, 'Y': 2, off: 3, 0x10: 4, 1.0: 5, 1e3: 6, 0123: 7, ~x: 8, 1e6: 9, .5: 10}";
    cJSON *j = NULL;
    operr err = {{0}};
    ASSERT_EQ_INT(yaml2json_parse(y, sizeof y - 1, &j, &err), 0);
    char *s = cJSON_PrintUnformatted(j);
    ASSERT_STR_EQ(s, "{\"true\":1,\"Y\":2,\"false\":3,\"16\":4,\"1\":5,\"1000\":6,"
                     "\"0123\":7,\"~x\":8,\"1e+06\":9,\"0.5\":10}");
    free(s);
    cJSON_Delete(j);
    static const struct {
        const char *y, *why;
    } bad[] = {
        {"{on: 1, true: 2}", "yaml: line 1 column 9: duplicate key (after resolving it)"},
        {"{~: 1}", "yaml: line 1 column 2: null key"},
        {"a: !!int x", "yaml: line 1 column 4: scalar does not match its tag"},
        {"a: !custom x", "yaml: line 1 column 4: scalar does not match its tag"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ_INT(yaml2json_parse(bad[i].y, strlen(bad[i].y), &j, &err), -EINVAL);
        ASSERT_NULL(j);
        ASSERT_STR_EQ(err.msg, bad[i].why);
    }
}

int main(void)
{
    TEST_RUN(test_tree_and_positions);
    TEST_RUN(test_scalars);
    TEST_RUN(test_documents);
    TEST_RUN(test_errors_name_line_and_column);
    TEST_RUN(test_aliases);
    TEST_RUN(test_limits);
    TEST_RUN(test_booleans_as_kubernetes_reads_them);
    TEST_RUN(test_json_keys_as_kubernetes_spells_them);
    return test_summary();
}
