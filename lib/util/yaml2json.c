/*
 * yaml2json: libyaml event stream → cJSON. See yaml2json.h for the rules.
 */
#include "util/yaml2json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct y2j_anchor {
    char *name;
    const cJSON *node; /* borrowed from the tree being built */
} y2j_anchor;

typedef struct y2j {
    yaml_parser_t parser;
    operr *err;
    size_t nodes;
    y2j_anchor *anchors;
    size_t nanchors, cap;
} y2j;

static int y2j_fail(y2j *p, const yaml_mark_t *m, const char *what)
{
    return operr_set(p->err, -EINVAL, "yaml: line %zu column %zu: %s", m->line + 1, m->column + 1,
                     what);
}

static int y2j_next(y2j *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&p->parser, ev))
        return operr_set(p->err, -EINVAL, "yaml: line %zu column %zu: %s",
                         p->parser.problem_mark.line + 1, p->parser.problem_mark.column + 1,
                         p->parser.problem ? p->parser.problem : "syntax error");
    return 0;
}

static int y2j_count(y2j *p, const yaml_mark_t *m, size_t n)
{
    p->nodes += n;
    if (p->nodes > YAML2JSON_MAX_NODES)
        return y2j_fail(p, m, "too many nodes (alias expansion?)");
    return 0;
}

static size_t y2j_tree_size(const cJSON *n)
{
    size_t s = 1;
    for (const cJSON *c = n->child; c; c = c->next)
        s += y2j_tree_size(c);
    return s;
}

static int y2j_add_anchor(y2j *p, const yaml_char_t *name, const cJSON *node)
{
    if (!name)
        return 0;
    if (p->nanchors == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 8;
        y2j_anchor *na = realloc(p->anchors, nc * sizeof(*na));
        if (!na)
            return -ENOMEM;
        p->anchors = na;
        p->cap = nc;
    }
    char *dup = strdup((const char *)name);
    if (!dup)
        return -ENOMEM;
    p->anchors[p->nanchors].name = dup;
    p->anchors[p->nanchors].node = node;
    p->nanchors++;
    return 0;
}

static void y2j_clear_anchors(y2j *p)
{
    for (size_t i = 0; i < p->nanchors; i++)
        free(p->anchors[i].name);
    p->nanchors = 0;
}

static int eq_any(const char *s, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && memcmp(s, *list, n) == 0)
            return 1;
    return 0;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? ; *is_int when no '.'/exponent. */
static int looks_numeric(const char *s, size_t n, int *is_int)
{
    size_t i = 0, digits = 0;
    *is_int = 1;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t int_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    size_t int_digits = digits;
    if (i < n && s[i] == '.') {
        *is_int = 0;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (int_digits == 0 && *is_int)
            return 0;
        *is_int = 0;
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t ed = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, ed++;
        if (ed == 0)
            return 0;
    }
    if (i != n)
        return 0;
    /* YAML 1.1 reads 0123 as octal; keep such text as a string rather than guess. */
    if (*is_int && int_digits > 1 && s[int_start] == '0')
        return 0;
    return 1;
}

static const char *const Y_NULL[] = {"~", "null", "Null", "NULL", NULL};
static const char *const Y_TRUE[] = {"true", "True", "TRUE", "yes", "Yes",
                                     "YES",  "on",   "On",   "ON",  NULL};
static const char *const Y_FALSE[] = {"false", "False", "FALSE", "no",  "No",
                                      "NO",    "off",   "Off",   "OFF", NULL};

/* The resolved JSON value of a scalar, or NULL on allocation failure / bad tag. */
static cJSON *y2j_scalar(const char *s, size_t n, int plain, const char *tag, int *bad)
{
    *bad = 0;
    char *text = malloc(n + 1);
    if (!text)
        return NULL;
    memcpy(text, s, n);
    text[n] = '\0';
    cJSON *v = NULL;
    const char *t = tag;
    if (t && strncmp(t, "tag:yaml.org,2002:", 18) == 0)
        t += 18;
    else if (t && strcmp(t, "!") == 0)
        t = "str";
    if (!t && !plain)
        t = "str";
    int is_int = 0;
    if (t && strcmp(t, "str") == 0) {
        v = cJSON_CreateString(text);
    } else if ((!t || strcmp(t, "null") == 0) && (n == 0 || eq_any(s, n, Y_NULL))) {
        v = cJSON_CreateNull();
    } else if ((!t || strcmp(t, "bool") == 0) && eq_any(s, n, Y_TRUE)) {
        v = cJSON_CreateTrue();
    } else if ((!t || strcmp(t, "bool") == 0) && eq_any(s, n, Y_FALSE)) {
        v = cJSON_CreateFalse();
    } else if ((!t || strcmp(t, "int") == 0) && n > 2 && s[0] == '0' && (s[1] == 'x') &&
               strspn(text + 2, "0123456789abcdefABCDEF") == n - 2) {
        v = cJSON_CreateNumber((double)strtoull(text + 2, NULL, 16));
    } else if ((!t || strcmp(t, "int") == 0 || strcmp(t, "float") == 0) &&
               looks_numeric(s, n, &is_int)) {
        v = cJSON_CreateNumber(strtod(text, NULL));
    } else if (!t) {
        v = cJSON_CreateString(text);
    } else {
        *bad = 1; /* a tag we do not resolve, or a value that does not fit its tag */
    }
    free(text);
    return v;
}

static int y2j_node(y2j *p, yaml_event_t *ev, int depth, cJSON **out);

/* YAML merge keys: copy keys of `src` (a mapping or a sequence of mappings) missing in `dst`. */
static int y2j_merge(y2j *p, cJSON *dst, const cJSON *src, const yaml_mark_t *m)
{
    if (cJSON_IsArray(src)) {
        for (const cJSON *c = src->child; c; c = c->next) {
            int rc = y2j_merge(p, dst, c, m);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    if (!cJSON_IsObject(src))
        return y2j_fail(p, m, "merge key '<<' needs a mapping");
    for (const cJSON *c = src->child; c; c = c->next) {
        if (cJSON_GetObjectItemCaseSensitive(dst, c->string))
            continue;
        cJSON *d = cJSON_Duplicate(c, 1);
        if (!d)
            return -ENOMEM;
        int rc = y2j_count(p, m, y2j_tree_size(d));
        if (rc < 0) {
            cJSON_Delete(d);
            return rc;
        }
        cJSON_AddItemToObject(dst, c->string, d);
    }
    return 0;
}

static int y2j_mapping(y2j *p, int depth, const yaml_mark_t *start, cJSON **out)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON *merges = cJSON_CreateArray();
    yaml_event_t ev;
    int rc = -ENOMEM;
    if (!obj || !merges)
        goto out;
    for (;;) {
        rc = y2j_next(p, &ev);
        if (rc < 0)
            goto out;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            rc = y2j_fail(p, &ev.start_mark, "mapping keys must be scalars");
            yaml_event_delete(&ev);
            goto out;
        }
        size_t klen = ev.data.scalar.length;
        char *key = malloc(klen + 1);
        if (!key) {
            yaml_event_delete(&ev);
            rc = -ENOMEM;
            goto out;
        }
        memcpy(key, ev.data.scalar.value, klen);
        key[klen] = '\0';
        int is_merge = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(key, "<<") == 0;
        yaml_mark_t kmark = ev.start_mark;
        yaml_event_delete(&ev);
        if (strlen(key) != klen || (!is_merge && cJSON_GetObjectItemCaseSensitive(obj, key))) {
            rc = y2j_fail(p, &kmark, klen != strlen(key) ? "NUL in key" : "duplicate key");
            free(key);
            goto out;
        }
        cJSON *val = NULL;
        rc = y2j_next(p, &ev);
        if (rc == 0)
            rc = y2j_node(p, &ev, depth + 1, &val);
        if (rc < 0) {
            free(key);
            goto out;
        }
        if (is_merge)
            cJSON_AddItemToArray(merges, val);
        else
            cJSON_AddItemToObject(obj, key, val);
        free(key);
    }
    for (const cJSON *m = merges->child; m; m = m->next) {
        rc = y2j_merge(p, obj, m, start);
        if (rc < 0)
            goto out;
    }
    rc = 0;
out:
    cJSON_Delete(merges);
    if (rc < 0) {
        cJSON_Delete(obj);
        obj = NULL;
    }
    *out = obj;
    return rc;
}

static int y2j_sequence(y2j *p, int depth, cJSON **out)
{
    cJSON *arr = cJSON_CreateArray();
    yaml_event_t ev;
    int rc = -ENOMEM;
    if (!arr)
        goto out;
    for (;;) {
        rc = y2j_next(p, &ev);
        if (rc < 0)
            goto out;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        cJSON *item = NULL;
        rc = y2j_node(p, &ev, depth + 1, &item);
        if (rc < 0)
            goto out;
        cJSON_AddItemToArray(arr, item);
    }
    rc = 0;
out:
    if (rc < 0) {
        cJSON_Delete(arr);
        arr = NULL;
    }
    *out = arr;
    return rc;
}

/* Builds the node that starts with `ev` (consumed). */
static int y2j_node(y2j *p, yaml_event_t *ev, int depth, cJSON **out)
{
    cJSON *v = NULL;
    int rc = 0;
    yaml_mark_t mark = ev->start_mark;
    *out = NULL;
    if (depth > YAML2JSON_MAX_DEPTH) {
        rc = y2j_fail(p, &mark, "nesting too deep");
        goto out;
    }
    rc = y2j_count(p, &mark, 1);
    if (rc < 0)
        goto out;
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        int bad = 0;
        v = y2j_scalar((const char *)ev->data.scalar.value, ev->data.scalar.length,
                       ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE,
                       (const char *)ev->data.scalar.tag, &bad);
        if (!v)
            rc = bad ? y2j_fail(p, &mark, "scalar does not match its tag") : -ENOMEM;
        else
            rc = y2j_add_anchor(p, ev->data.scalar.anchor, v);
        break;
    }
    case YAML_SEQUENCE_START_EVENT: {
        rc = y2j_sequence(p, depth, &v);
        if (rc == 0)
            rc = y2j_add_anchor(p, ev->data.sequence_start.anchor, v);
        break;
    }
    case YAML_MAPPING_START_EVENT: {
        rc = y2j_mapping(p, depth, &mark, &v);
        if (rc == 0)
            rc = y2j_add_anchor(p, ev->data.mapping_start.anchor, v);
        break;
    }
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        const cJSON *target = NULL;
        for (size_t i = p->nanchors; i-- > 0;)
            if (strcmp(p->anchors[i].name, name) == 0) {
                target = p->anchors[i].node;
                break;
            }
        if (!target) {
            rc = y2j_fail(p, &mark, "unknown alias");
            break;
        }
        rc = y2j_count(p, &mark, y2j_tree_size(target));
        if (rc < 0)
            break;
        v = cJSON_Duplicate(target, 1);
        if (!v)
            rc = -ENOMEM;
        break;
    }
    default:
        rc = y2j_fail(p, &mark, "unexpected event");
        break;
    }
out:
    yaml_event_delete(ev);
    if (rc < 0) {
        cJSON_Delete(v);
        v = NULL;
    }
    *out = v;
    return rc;
}

static int y2j_run(const char *buf, size_t len, int all, cJSON **out, operr *err)
{
    y2j p;
    memset(&p, 0, sizeof(p));
    p.err = err;
    cJSON *docs = NULL;
    yaml_event_t ev;
    int rc = -ENOMEM;
    *out = NULL;
    if (!yaml_parser_initialize(&p.parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&p.parser, (const unsigned char *)buf, len);
    docs = cJSON_CreateArray();
    if (!docs)
        goto out;
    for (;;) {
        rc = y2j_next(&p, &ev);
        if (rc < 0)
            goto out;
        yaml_event_type_t t = ev.type;
        yaml_event_delete(&ev);
        if (t == YAML_STREAM_END_EVENT)
            break;
        if (t != YAML_DOCUMENT_START_EVENT)
            continue; /* STREAM_START */
        rc = y2j_next(&p, &ev);
        if (rc < 0)
            goto out;
        cJSON *doc = NULL;
        rc = y2j_node(&p, &ev, 0, &doc);
        if (rc < 0)
            goto out;
        cJSON_AddItemToArray(docs, doc);
        y2j_clear_anchors(&p);
        rc = y2j_next(&p, &ev); /* DOCUMENT_END */
        if (rc < 0)
            goto out;
        yaml_event_delete(&ev);
        if (!all)
            break;
    }
    if (all) {
        *out = docs;
        docs = NULL;
    } else {
        cJSON *first = cJSON_DetachItemFromArray(docs, 0);
        *out = first ? first : cJSON_CreateNull();
        if (!*out) {
            rc = -ENOMEM;
            goto out;
        }
    }
    rc = 0;
out:
    y2j_clear_anchors(&p);
    free(p.anchors);
    cJSON_Delete(docs);
    yaml_parser_delete(&p.parser);
    return rc;
}

int yaml2json_parse(const char *buf, size_t len, cJSON **out, operr *err)
{
    return y2j_run(buf, len, 0, out, err);
}

int yaml2json_parse_all(const char *buf, size_t len, cJSON **out, operr *err)
{
    return y2j_run(buf, len, 1, out, err);
}
