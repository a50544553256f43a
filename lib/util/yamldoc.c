#include "util/yamldoc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util/map.h"

/* A collection being filled: the node, the key waiting for its value (maps),
 * the anchor to register once the node is complete, and the keys seen so far. */
typedef struct opyaml_frame {
    opyaml_node *node;
    opyaml_node *key;
    char *anchor;
    opmap keys;
} opyaml_frame;

typedef struct opyaml_loader {
    yaml_parser_t parser;
    opyaml_doc *doc;
    opyaml_limits lim;
    opyaml_frame *stack; /* lim.max_depth frames */
    unsigned depth;
    opmap anchors; /* name -> complete node in this document (owned by the tree) */
    operr *err;
} opyaml_loader;

/* Deeper trees than this are refused whatever the caller asks: node release and
 * alias copies recurse. */
#define OPYAML_HARD_MAX_DEPTH 1024u

static void opyaml_node_free(opyaml_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == OPYAML_MAP) {
            opyaml_node_free(n->pairs[i].key);
            opyaml_node_free(n->pairs[i].value);
        } else if (n->kind == OPYAML_SEQ) {
            opyaml_node_free(n->items[i]);
        }
    }
    free(n->pairs);
    free(n->items);
    free(n->str);
    free(n->tag);
    free(n);
}

void opyaml_init(opyaml_doc *d)
{
    d->roots = NULL;
    d->nroots = 0;
    d->nodes = 0;
}

void opyaml_release(opyaml_doc *d)
{
    for (size_t i = 0; i < d->nroots; i++)
        opyaml_node_free(d->roots[i]);
    free(d->roots);
    opyaml_init(d);
}

static int ld_fail(opyaml_loader *ld, int code, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int ld_fail(opyaml_loader *ld, int code, int line, int col, const char *fmt, ...)
{
    char msg[OPERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return operr_set(ld->err, code, "line %d column %d: %s", line, col, msg);
}

static opyaml_node *ld_new(opyaml_loader *ld, opyaml_kind kind, yaml_mark_t mark, int *rc)
{
    int line = (int)(mark.line + 1), col = (int)(mark.column + 1);
    if (ld->doc->nodes >= ld->lim.max_nodes) {
        *rc = ld_fail(ld, -E2BIG, line, col, "more than %zu nodes", ld->lim.max_nodes);
        return NULL;
    }
    opyaml_node *n = calloc(1, sizeof *n);
    if (!n) {
        *rc = operr_set(ld->err, -ENOMEM, "out of memory");
        return NULL;
    }
    ld->doc->nodes++;
    n->kind = kind;
    n->line = line;
    n->column = col;
    return n;
}

/* Make room for one more slot in a growable array of `size`-byte elements. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Hand `n` to its parent (or make it a document root). Takes ownership: on
 * failure n is freed. */
static int ld_attach(opyaml_loader *ld, opyaml_node *n)
{
    int rc = 0;
    if (ld->depth == 0) {
        opyaml_doc *d = ld->doc;
        size_t cap = d->nroots;
        /* roots grow one by one: documents are few */
        if (grow((void **)&d->roots, &cap, d->nroots, sizeof *d->roots)) {
            rc = operr_set(ld->err, -ENOMEM, "out of memory");
            goto fail;
        }
        d->roots[d->nroots++] = n;
        return 0;
    }
    opyaml_frame *f = &ld->stack[ld->depth - 1];
    opyaml_node *p = f->node;
    if (p->kind == OPYAML_SEQ) {
        if (grow((void **)&p->items, &p->cap_, p->n, sizeof *p->items)) {
            rc = operr_set(ld->err, -ENOMEM, "out of memory");
            goto fail;
        }
        p->items[p->n++] = n;
        return 0;
    }
    if (!f->key) {
        if (n->kind != OPYAML_SCALAR) {
            rc = ld_fail(ld, -EINVAL, n->line, n->column, "a map key must be a scalar, not a %s",
                         opyaml_kind_name(n));
            goto fail;
        }
        if (opmap_get(&f->keys, n->str)) {
            rc = ld_fail(ld, -EINVAL, n->line, n->column, "duplicate key \"%s\"", n->str);
            goto fail;
        }
        if (opmap_put(&f->keys, n->str, p, NULL)) {
            rc = operr_set(ld->err, -ENOMEM, "out of memory");
            goto fail;
        }
        f->key = n;
        return 0;
    }
    if (grow((void **)&p->pairs, &p->cap_, p->n, sizeof *p->pairs)) {
        rc = operr_set(ld->err, -ENOMEM, "out of memory");
        goto fail;
    }
    p->pairs[p->n].key = f->key;
    p->pairs[p->n].value = n;
    p->n++;
    f->key = NULL;
    return 0;
fail:
    opyaml_node_free(n);
    return rc;
}

static char *dup_bytes(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static unsigned node_depth(const opyaml_node *n)
{
    unsigned best = 0;
    if (n->kind == OPYAML_SCALAR)
        return 0;
    for (size_t i = 0; i < n->n; i++) {
        unsigned d = node_depth(n->kind == OPYAML_MAP ? n->pairs[i].value : n->items[i]);
        if (d > best)
            best = d;
    }
    return best + 1;
}

/* Deep copy for an alias, counted against the node budget. */
static opyaml_node *ld_copy(opyaml_loader *ld, const opyaml_node *src, yaml_mark_t mark, int *rc)
{
    opyaml_node *n = ld_new(ld, src->kind, mark, rc);
    if (!n)
        return NULL;
    n->plain = src->plain;
    if (src->kind == OPYAML_SCALAR) {
        n->str = dup_bytes(src->str, src->len);
        n->len = src->len;
        if (!n->str)
            goto oom;
    }
    if (src->tag && !(n->tag = strdup(src->tag)))
        goto oom;
    if (src->n) {
        if (src->kind == OPYAML_MAP && !(n->pairs = calloc(src->n, sizeof *n->pairs)))
            goto oom;
        if (src->kind == OPYAML_SEQ && !(n->items = calloc(src->n, sizeof *n->items)))
            goto oom;
        n->cap_ = src->n;
    }
    for (size_t i = 0; i < src->n; i++) {
        if (src->kind == OPYAML_MAP) {
            opyaml_node *k = ld_copy(ld, src->pairs[i].key, mark, rc);
            if (!k)
                goto fail;
            opyaml_node *v = ld_copy(ld, src->pairs[i].value, mark, rc);
            if (!v) {
                opyaml_node_free(k);
                goto fail;
            }
            n->pairs[i].key = k;
            n->pairs[i].value = v;
        } else {
            if (!(n->items[i] = ld_copy(ld, src->items[i], mark, rc)))
                goto fail;
        }
        n->n = i + 1;
    }
    return n;
oom:
    *rc = operr_set(ld->err, -ENOMEM, "out of memory");
fail:
    opyaml_node_free(n);
    return NULL;
}

static int ld_anchor(opyaml_loader *ld, const char *anchor, opyaml_node *n)
{
    if (!anchor)
        return 0;
    if (opmap_put(&ld->anchors, anchor, n, NULL))
        return operr_set(ld->err, -ENOMEM, "out of memory");
    return 0;
}

static int ld_scalar(opyaml_loader *ld, const yaml_event_t *ev)
{
    int rc = 0;
    opyaml_node *n = ld_new(ld, OPYAML_SCALAR, ev->start_mark, &rc);
    if (!n)
        return rc;
    const char *tag = (const char *)ev->data.scalar.tag;
    n->str = dup_bytes((const char *)ev->data.scalar.value, ev->data.scalar.length);
    n->len = ev->data.scalar.length;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag;
    if (!n->str || (tag && !(n->tag = strdup(tag)))) {
        opyaml_node_free(n);
        return operr_set(ld->err, -ENOMEM, "out of memory");
    }
    rc = ld_attach(ld, n);
    if (rc)
        return rc;
    return ld_anchor(ld, (const char *)ev->data.scalar.anchor, n);
}

static int ld_start(opyaml_loader *ld, const yaml_event_t *ev, opyaml_kind kind)
{
    int rc = 0;
    const char *anchor, *tag;
    if (kind == OPYAML_MAP) {
        anchor = (const char *)ev->data.mapping_start.anchor;
        tag = (const char *)ev->data.mapping_start.tag;
    } else {
        anchor = (const char *)ev->data.sequence_start.anchor;
        tag = (const char *)ev->data.sequence_start.tag;
    }
    if (ld->depth >= ld->lim.max_depth)
        return ld_fail(ld, -E2BIG, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                       "nested deeper than %u levels", ld->lim.max_depth);
    opyaml_node *n = ld_new(ld, kind, ev->start_mark, &rc);
    if (!n)
        return rc;
    if (tag && !(n->tag = strdup(tag))) {
        opyaml_node_free(n);
        return operr_set(ld->err, -ENOMEM, "out of memory");
    }
    rc = ld_attach(ld, n);
    if (rc)
        return rc;
    opyaml_frame *f = &ld->stack[ld->depth];
    f->node = n;
    f->key = NULL;
    f->anchor = NULL;
    opmap_init(&f->keys);
    ld->depth++;
    if (anchor && !(f->anchor = strdup(anchor)))
        return operr_set(ld->err, -ENOMEM, "out of memory");
    return 0;
}

static void ld_frame_release(opyaml_frame *f)
{
    opyaml_node_free(f->key);
    f->key = NULL;
    free(f->anchor);
    f->anchor = NULL;
    opmap_release(&f->keys, NULL);
}

static int ld_end(opyaml_loader *ld)
{
    if (ld->depth == 0)
        return operr_set(ld->err, -EINVAL, "unbalanced collection end");
    opyaml_frame *f = &ld->stack[ld->depth - 1];
    int rc = ld_anchor(ld, f->anchor, f->node);
    ld_frame_release(f);
    ld->depth--;
    return rc;
}

static int ld_alias(opyaml_loader *ld, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    const opyaml_node *src = opmap_get(&ld->anchors, name);
    if (!src)
        return ld_fail(ld, -EINVAL, line, col, "alias *%s names no complete anchor", name);
    if (ld->depth + node_depth(src) > ld->lim.max_depth)
        return ld_fail(ld, -E2BIG, line, col, "alias *%s nests deeper than %u levels", name,
                       ld->lim.max_depth);
    int rc = 0;
    opyaml_node *n = ld_copy(ld, src, ev->start_mark, &rc);
    if (!n)
        return rc;
    return ld_attach(ld, n);
}

static int ld_parser_error(opyaml_loader *ld)
{
    yaml_parser_t *p = &ld->parser;
    if (p->error == YAML_MEMORY_ERROR)
        return operr_set(ld->err, -ENOMEM, "out of memory");
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->context)
        return ld_fail(ld, -EINVAL, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
                       "%s: %s", p->context, problem);
    return ld_fail(ld, -EINVAL, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
                   "%s", problem);
}

static void limits_fill(opyaml_limits *out, const opyaml_limits *in)
{
    out->max_bytes = in && in->max_bytes ? in->max_bytes : OPYAML_MAX_BYTES;
    out->max_depth = in && in->max_depth ? in->max_depth : OPYAML_MAX_DEPTH;
    out->max_nodes = in && in->max_nodes ? in->max_nodes : OPYAML_MAX_NODES;
    out->max_docs = in && in->max_docs ? in->max_docs : OPYAML_MAX_DOCS;
    if (out->max_depth > OPYAML_HARD_MAX_DEPTH)
        out->max_depth = OPYAML_HARD_MAX_DEPTH;
}

/* The loader is an event loop with an explicit stack: libyaml's events map one
 * to one onto tree operations, so no recursion depends on the input. */
int opyaml_load(opyaml_doc *d, const char *data, size_t len, const opyaml_limits *lim, operr *err)
{
    opyaml_loader ld;
    memset(&ld, 0, sizeof ld);
    ld.doc = d;
    ld.err = err;
    limits_fill(&ld.lim, lim);
    opmap_init(&ld.anchors);
    opyaml_init(d);
    int rc = 0, parser_ok = 0, done = 0;

    if (len > ld.lim.max_bytes) {
        rc = operr_set(err, -E2BIG, "input is %zu bytes, more than the %zu allowed", len,
                       ld.lim.max_bytes);
        goto out;
    }
    ld.stack = calloc(ld.lim.max_depth, sizeof *ld.stack);
    if (!ld.stack || !yaml_parser_initialize(&ld.parser)) {
        rc = operr_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    parser_ok = 1;
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)(data ? data : ""), len);

    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&ld.parser, &ev)) {
            rc = ld_parser_error(&ld);
            goto out;
        }
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (d->nroots >= ld.lim.max_docs)
                rc =
                    ld_fail(&ld, -E2BIG, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                            "more than %zu documents", ld.lim.max_docs);
            /* anchors are scoped to their document */
            opmap_release(&ld.anchors, NULL);
            opmap_init(&ld.anchors);
            break;
        case YAML_SCALAR_EVENT:
            rc = ld_scalar(&ld, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = ld_start(&ld, &ev, OPYAML_SEQ);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = ld_start(&ld, &ev, OPYAML_MAP);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            rc = ld_end(&ld);
            break;
        case YAML_ALIAS_EVENT:
            rc = ld_alias(&ld, &ev);
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc)
            goto out;
    }
out:
    while (ld.depth > 0)
        ld_frame_release(&ld.stack[--ld.depth]);
    free(ld.stack);
    opmap_release(&ld.anchors, NULL);
    if (parser_ok)
        yaml_parser_delete(&ld.parser);
    if (rc)
        opyaml_release(d);
    return rc;
}

const opyaml_node *opyaml_root(const opyaml_doc *d)
{
    return d->nroots ? d->roots[0] : NULL;
}

const opyaml_pair *opyaml_get_pair(const opyaml_node *map, const char *key)
{
    if (!map || map->kind != OPYAML_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->n; i++) {
        const opyaml_node *k = map->pairs[i].key;
        if (k->len == klen && memcmp(k->str, key, klen) == 0)
            return &map->pairs[i];
    }
    return NULL;
}

const opyaml_node *opyaml_get(const opyaml_node *map, const char *key)
{
    const opyaml_pair *p = opyaml_get_pair(map, key);
    return p ? p->value : NULL;
}

const opyaml_node *opyaml_at(const opyaml_node *seq, size_t i)
{
    if (!seq || seq->kind != OPYAML_SEQ || i >= seq->n)
        return NULL;
    return seq->items[i];
}

/* ---- what a scalar means ----------------------------------------------------------------- */

static int word_in(const char *s, size_t n, const char *const *words)
{
    for (size_t i = 0; words[i]; i++)
        if (strlen(words[i]) == n && memcmp(s, words[i], n) == 0)
            return 1;
    return 0;
}

/* go-yaml v2's resolve table (YAML 1.1), which sigs.k8s.io/yaml reads manifests with. */
static const char *const y_null[] = {"~", "null", "Null", "NULL", NULL};
static const char *const y_true[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                     "True", "TRUE", "on",  "On",  "ON",  NULL};
static const char *const y_false[] = {"n",     "N",     "no",  "No",  "NO",  "false",
                                      "False", "FALSE", "off", "Off", "OFF", NULL};

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? (go-yaml v2's float syntax); *is_int when
 * it has neither '.' nor an exponent. */
static int numeric(const char *s, size_t n, int *is_int)
{
    size_t i = 0, digits = 0;
    *is_int = 1;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.') {
        *is_int = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    }
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        *is_int = 0;
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t ed = 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ed++;
        if (ed == 0)
            return 0;
    }
    return i == n;
}

/* An integer or a number: decimal (sign allowed) or 0x hex. Leading-zero decimals ("0123",
 * octal to YAML 1.1) are not numbers here: kept as text rather than guessed. */
static int number(const char *s, size_t n, opyaml_scalar *v)
{
    char buf[64];
    int is_int;
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (n > 2 && s[0] == '0' && s[1] == 'x' && strspn(buf + 2, "0123456789abcdefABCDEF") == n - 2) {
        errno = 0;
        unsigned long long u = strtoull(buf + 2, NULL, 16);
        if (errno == 0 && u <= INT64_MAX) {
            *v = (opyaml_scalar){.type = OPYAML_T_INT, .i = (int64_t)u, .f = (double)u};
        } else {
            /* past 64 bits strtoull saturates: read it digit by digit as a double */
            double f = 0;
            for (size_t i = 2; i < n; i++)
                f = f * 16 + (buf[i] <= '9' ? buf[i] - '0' : (buf[i] | 0x20) - 'a' + 10);
            *v = (opyaml_scalar){.type = OPYAML_T_FLOAT, .f = f};
        }
        return 1;
    }
    if (!numeric(buf, n, &is_int))
        return 0;
    size_t sign = buf[0] == '-' || buf[0] == '+';
    if (is_int && n - sign > 1 && buf[sign] == '0')
        return 0;
    if (is_int) {
        errno = 0;
        long long i = strtoll(buf, NULL, 10);
        if (errno == 0) {
            *v = (opyaml_scalar){.type = OPYAML_T_INT, .i = i, .f = (double)i};
            return 1;
        }
    }
    *v = (opyaml_scalar){.type = OPYAML_T_FLOAT, .f = strtod(buf, NULL)};
    return 1;
}

int opyaml_resolve(const opyaml_node *n, opyaml_scalar *v)
{
    if (!n || n->kind != OPYAML_SCALAR)
        return -EINVAL;
    const char *s = n->str, *t = n->tag;
    size_t len = n->len;
    if (t && strncmp(t, "tag:yaml.org,2002:", 18) == 0)
        t += 18;
    else if (t && strcmp(t, "!") == 0)
        t = "str"; /* the non-specific tag of a quoted scalar */
    if (!t && !n->plain)
        t = "str";
    *v = (opyaml_scalar){.type = OPYAML_T_STR};
    if (t && strcmp(t, "str") == 0)
        return 0;
    if ((!t || strcmp(t, "null") == 0) && (len == 0 || word_in(s, len, y_null))) {
        v->type = OPYAML_T_NULL;
        return 0;
    }
    if (!t || strcmp(t, "bool") == 0) {
        int yes = word_in(s, len, y_true), no = !yes && word_in(s, len, y_false);
        if (yes || no) {
            *v = (opyaml_scalar){.type = OPYAML_T_BOOL, .b = yes};
            return 0;
        }
    }
    if ((!t || strcmp(t, "int") == 0 || strcmp(t, "float") == 0) && number(s, len, v)) {
        if (t && strcmp(t, "int") == 0 && v->type != OPYAML_T_INT)
            return -EINVAL;
        if (t && strcmp(t, "float") == 0)
            v->type = OPYAML_T_FLOAT;
        return 0;
    }
    *v = (opyaml_scalar){.type = OPYAML_T_STR};
    return t ? -EINVAL : 0; /* a tag we do not resolve, or text that does not fit its tag */
}

int opyaml_is_null(const opyaml_node *n)
{
    opyaml_scalar v;
    return !n || (opyaml_resolve(n, &v) == 0 && v.type == OPYAML_T_NULL);
}

const char *opyaml_str(const opyaml_node *n)
{
    if (!n || n->kind != OPYAML_SCALAR || opyaml_is_null(n))
        return NULL;
    return n->str;
}

int opyaml_bool(const opyaml_node *n, int *out)
{
    opyaml_scalar v;
    if (opyaml_resolve(n, &v) || v.type != OPYAML_T_BOOL)
        return -EINVAL;
    *out = v.b;
    return 0;
}

int opyaml_int64(const opyaml_node *n, int64_t *out)
{
    opyaml_scalar v;
    if (opyaml_resolve(n, &v) || v.type != OPYAML_T_INT)
        return -EINVAL;
    *out = v.i;
    return 0;
}

const char *opyaml_kind_name(const opyaml_node *n)
{
    if (opyaml_is_null(n))
        return "null";
    switch (n->kind) {
    case OPYAML_MAP:
        return "map";
    case OPYAML_SEQ:
        return "sequence";
    default:
        return "string";
    }
}
