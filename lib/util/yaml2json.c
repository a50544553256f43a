/*
 * yaml2json: an opyaml tree → cJSON. See yaml2json.h for the rules.
 */
#include "util/yaml2json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/yamldoc.h"

static int fail(operr *err, const opyaml_node *n, const char *what)
{
    return operr_set(err, -EINVAL, "yaml: line %d column %d: %s", n->line, n->column, what);
}

/* f as Go's strconv.FormatFloat(f, 'g', -1, ...) writes it (sigs.k8s.io/yaml's float keys):
 * the fewest digits that read back as f, in exponent form only when the exponent is below -4
 * or 6 and over. */
static void float_text(double f, char *buf, size_t cap)
{
    int digits = 1;
    for (; digits < 17; digits++) {
        snprintf(buf, cap, "%.*e", digits - 1, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    snprintf(buf, cap, "%.*e", digits - 1, f);
    const char *e = strchr(buf, 'e');
    int exp = e ? atoi(e + 1) : 0;
    if (exp >= -4 && exp < 6)
        snprintf(buf, cap, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0, f);
}

/* A mapping key as sigs.k8s.io/yaml spells it; 0, or -EINVAL (err set). */
static int key_text(const opyaml_node *k, char *buf, size_t cap, const char **out, operr *err)
{
    opyaml_scalar v;
    if (strlen(k->str) != k->len)
        return fail(err, k, "NUL in key");
    if (opyaml_resolve(k, &v))
        return fail(err, k, "key does not match its tag");
    *out = buf;
    switch (v.type) {
    case OPYAML_T_NULL:
        return fail(err, k, "null key");
    case OPYAML_T_BOOL:
        *out = v.b ? "true" : "false";
        break;
    case OPYAML_T_INT:
        snprintf(buf, cap, "%lld", (long long)v.i);
        break;
    case OPYAML_T_FLOAT:
        float_text(v.f, buf, cap);
        break;
    default:
        *out = k->str;
        break;
    }
    return 0;
}

/* The conversion's state: where errors go, and nodes made so far (the loader's, plus copies
 * made by merge keys, all against YAML2JSON_MAX_NODES). */
typedef struct y2j {
    operr *err;
    size_t nodes;
} y2j;

static size_t tree_size(const cJSON *n)
{
    size_t s = 1;
    for (const cJSON *c = n->child; c; c = c->next)
        s += tree_size(c);
    return s;
}

static int convert(y2j *c, const opyaml_node *n, cJSON **out);

/* `<<`: copy the keys of src (a mapping, or a sequence of mappings) that dst lacks. */
static int merge(y2j *y, cJSON *dst, const cJSON *src, const opyaml_node *at)
{
    if (cJSON_IsArray(src)) {
        for (const cJSON *c = src->child; c; c = c->next) {
            int rc = merge(y, dst, c, at);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (!cJSON_IsObject(src))
        return fail(y->err, at, "merge key '<<' needs a mapping");
    for (const cJSON *c = src->child; c; c = c->next) {
        if (cJSON_GetObjectItemCaseSensitive(dst, c->string))
            continue;
        y->nodes += tree_size(c);
        if (y->nodes > YAML2JSON_MAX_NODES)
            return fail(y->err, at, "more than 1000000 nodes after merge keys");
        cJSON *d = cJSON_Duplicate(c, 1);
        if (!d || !cJSON_AddItemToObject(dst, c->string, d)) {
            cJSON_Delete(d);
            return -ENOMEM;
        }
    }
    return 0;
}

static int mapping(y2j *y, const opyaml_node *n, cJSON *obj)
{
    char buf[64];
    /* explicit keys first, then the merges in order: the first to name a key wins */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n->n; i++) {
            const opyaml_node *k = n->pairs[i].key;
            int is_merge = k->plain && k->len == 2 && memcmp(k->str, "<<", 2) == 0;
            if (is_merge != pass)
                continue;
            cJSON *v = NULL;
            int rc = convert(y, n->pairs[i].value, &v);
            if (!rc && is_merge)
                rc = merge(y, obj, v, k);
            const char *key = NULL;
            if (!rc && !is_merge)
                rc = key_text(k, buf, sizeof buf, &key, y->err);
            if (!rc && !is_merge && cJSON_GetObjectItemCaseSensitive(obj, key))
                rc = fail(y->err, k, "duplicate key (after resolving it)");
            if (!rc && !is_merge) {
                if (!cJSON_AddItemToObject(obj, key, v))
                    rc = -ENOMEM;
                else
                    v = NULL;
            }
            cJSON_Delete(v);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int convert(y2j *y, const opyaml_node *n, cJSON **out)
{
    cJSON *v = NULL;
    int rc = 0;
    if (n->kind == OPYAML_MAP) {
        v = cJSON_CreateObject();
        rc = v ? mapping(y, n, v) : -ENOMEM;
    } else if (n->kind == OPYAML_SEQ) {
        v = cJSON_CreateArray();
        rc = v ? 0 : -ENOMEM;
        for (size_t i = 0; !rc && i < n->n; i++) {
            cJSON *item = NULL;
            rc = convert(y, n->items[i], &item);
            if (!rc && !cJSON_AddItemToArray(v, item)) {
                cJSON_Delete(item);
                rc = -ENOMEM;
            }
        }
    } else {
        opyaml_scalar s;
        if (opyaml_resolve(n, &s))
            return fail(y->err, n, "scalar does not match its tag");
        switch (s.type) {
        case OPYAML_T_NULL:
            v = cJSON_CreateNull();
            break;
        case OPYAML_T_BOOL:
            v = cJSON_CreateBool(s.b);
            break;
        case OPYAML_T_INT:
        case OPYAML_T_FLOAT:
            v = cJSON_CreateNumber(s.f);
            break;
        default:
            v = cJSON_CreateString(n->str);
            break;
        }
        rc = v ? 0 : -ENOMEM;
    }
    if (rc) {
        cJSON_Delete(v);
        v = NULL;
    }
    *out = v;
    return rc;
}

static int run(const char *buf, size_t len, int all, cJSON **out, operr *err)
{
    static const opyaml_limits lim = {.max_bytes = YAML2JSON_MAX_BYTES,
                                      .max_depth = YAML2JSON_MAX_DEPTH,
                                      .max_nodes = YAML2JSON_MAX_NODES,
                                      .max_docs = YAML2JSON_MAX_DOCS};
    opyaml_doc d;
    *out = NULL;
    int rc = opyaml_load(&d, buf, len, &lim, err);
    if (rc == -ENOMEM)
        return rc;
    if (rc)
        return operr_wrap(err, -EINVAL, "yaml");
    y2j y = {.err = err, .nodes = d.nodes};
    cJSON *docs = all ? cJSON_CreateArray() : NULL;
    if (all && !docs)
        rc = -ENOMEM;
    for (size_t i = 0; !rc && i < (all ? d.nroots : 1); i++) {
        cJSON *one = NULL;
        if (i < d.nroots)
            rc = convert(&y, d.roots[i], &one);
        else if (!(one = cJSON_CreateNull())) /* an empty stream */
            rc = -ENOMEM;
        if (!rc && !all)
            *out = one;
        else if (!rc && !cJSON_AddItemToArray(docs, one)) {
            cJSON_Delete(one);
            rc = -ENOMEM;
        }
    }
    if (all && !rc)
        *out = docs;
    else
        cJSON_Delete(docs);
    opyaml_release(&d);
    return rc;
}

int yaml2json_parse(const char *buf, size_t len, cJSON **out, operr *err)
{
    return run(buf, len, 0, out, err);
}

int yaml2json_parse_all(const char *buf, size_t len, cJSON **out, operr *err)
{
    return run(buf, len, 1, out, err);
}
