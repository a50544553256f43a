#include "policy/selector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {"In", "NotIn", "Exists", "DoesNotExist"};

const char *lsel_op_name(lsel_op op)
{
    return (unsigned)op < 4 ? op_names[op] : "?";
}

void lsel_init(lsel_selector *s)
{
    s->reqs = NULL;
    s->nreqs = 0;
}

static void req_release(lsel_req *r)
{
    for (size_t i = 0; i < r->nvalues; i++)
        free(r->values[i]);
    free(r->values);
    free(r->key);
    memset(r, 0, sizeof *r);
}

void lsel_release(lsel_selector *s)
{
    for (size_t i = 0; i < s->nreqs; i++)
        req_release(&s->reqs[i]);
    free(s->reqs);
    lsel_init(s);
}

/* --- syntax ------------------------------------------------------------------------------ */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A label name: [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 bytes. */
static bool valid_name(const char *p, size_t n)
{
    if (n == 0 || n > LSEL_MAX_NAME || !is_alnum(p[0]) || !is_alnum(p[n - 1]))
        return false;
    for (size_t i = 1; i + 1 < n; i++)
        if (!is_alnum(p[i]) && p[i] != '-' && p[i] != '_' && p[i] != '.')
            return false;
    return true;
}

/* A DNS-1123 subdomain: lowercase labels of [a-z0-9-] joined by '.', at most 253. */
static bool valid_subdomain(const char *p, size_t n)
{
    if (n == 0 || n > LSEL_MAX_KEY_PREFIX)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '.') {
            char c = p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                return false;
            continue;
        }
        if (i == start || p[start] == '-' || p[i - 1] == '-')
            return false;
        start = i + 1;
    }
    return true;
}

bool lsel_valid_key(const char *k)
{
    if (!k)
        return false;
    const char *slash = strchr(k, '/');
    if (!slash)
        return valid_name(k, strlen(k));
    return valid_subdomain(k, (size_t)(slash - k)) && valid_name(slash + 1, strlen(slash + 1));
}

bool lsel_valid_value(const char *v)
{
    return v && (v[0] == '\0' || valid_name(v, strlen(v)));
}

/* --- building ---------------------------------------------------------------------------- */

/* Append a requirement that takes ownership of nothing: key and values are copied. */
static int add_req(lsel_selector *s, const char *key, size_t klen, lsel_op op, bool from_labels,
                   lsel_req **out)
{
    if (s->nreqs >= LSEL_MAX_REQS)
        return -E2BIG;
    lsel_req *reqs = realloc(s->reqs, (s->nreqs + 1) * sizeof *reqs);
    if (!reqs)
        return -ENOMEM;
    s->reqs = reqs;
    lsel_req *r = &reqs[s->nreqs];
    memset(r, 0, sizeof *r);
    r->key = strndup(key, klen);
    if (!r->key)
        return -ENOMEM;
    r->op = op;
    r->from_match_labels = from_labels;
    s->nreqs++;
    *out = r;
    return 0;
}

static int add_value(lsel_req *r, const char *v, size_t n)
{
    if (r->nvalues >= LSEL_MAX_VALUES)
        return -E2BIG;
    char **vals = realloc(r->values, (r->nvalues + 1) * sizeof *vals);
    if (!vals)
        return -ENOMEM;
    r->values = vals;
    vals[r->nvalues] = strndup(v, n);
    if (!vals[r->nvalues])
        return -ENOMEM;
    r->nvalues++;
    return 0;
}

static int check_req(const lsel_req *r, const char *path, operr *err)
{
    if (!lsel_valid_key(r->key))
        return operr_set(err, -EINVAL, "%s: \"%.80s\" is not a valid label key", path, r->key);
    bool want_values = r->op == LSEL_OP_IN || r->op == LSEL_OP_NOT_IN;
    if (want_values && r->nvalues == 0)
        return operr_set(err, -EINVAL, "%s: operator %s needs at least one value", path,
                         lsel_op_name(r->op));
    if (!want_values && r->nvalues > 0)
        return operr_set(err, -EINVAL, "%s: operator %s takes no values", path,
                         lsel_op_name(r->op));
    for (size_t i = 0; i < r->nvalues; i++)
        if (!lsel_valid_value(r->values[i]))
            return operr_set(err, -EINVAL, "%s: \"%.80s\" is not a valid label value", path,
                             r->values[i]);
    return 0;
}

/* --- JSON form --------------------------------------------------------------------------- */

static int from_match_labels(lsel_selector *out, const cJSON *ml, const char *path, operr *err)
{
    if (cJSON_IsNull(ml))
        return 0;
    if (!cJSON_IsObject(ml))
        return operr_set(err, -EINVAL, "%s.matchLabels: must be an object", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, ml)
    {
        if (!cJSON_IsString(it))
            return operr_set(err, -EINVAL, "%s.matchLabels.%.80s: must be a string", path,
                             it->string);
        lsel_req *r;
        int rc = add_req(out, it->string, strlen(it->string), LSEL_OP_IN, true, &r);
        if (rc == 0)
            rc = add_value(r, it->valuestring, strlen(it->valuestring));
        if (rc == -E2BIG)
            return operr_set(err, rc, "%s: more than %d requirements", path, LSEL_MAX_REQS);
        if (rc)
            return operr_set(err, rc, "%s: out of memory", path);
        char sub[320];
        snprintf(sub, sizeof sub, "%s.matchLabels.%.80s", path, it->string);
        rc = check_req(r, sub, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_op(const char *s, lsel_op *op)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, op_names[i]) == 0) {
            *op = (lsel_op)i;
            return 0;
        }
    return -EINVAL;
}

static int from_match_expressions(lsel_selector *out, const cJSON *me, const char *path, operr *err)
{
    if (cJSON_IsNull(me))
        return 0;
    if (!cJSON_IsArray(me))
        return operr_set(err, -EINVAL, "%s.matchExpressions: must be a list", path);
    int idx = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, me)
    {
        char sub[320];
        snprintf(sub, sizeof sub, "%s.matchExpressions[%d]", path, idx++);
        if (!cJSON_IsObject(e))
            return operr_set(err, -EINVAL, "%s: must be an object", sub);
        const cJSON *key = NULL, *opj = NULL, *vals = NULL, *f;
        cJSON_ArrayForEach(f, e)
        {
            if (strcmp(f->string, "key") == 0)
                key = f;
            else if (strcmp(f->string, "operator") == 0)
                opj = f;
            else if (strcmp(f->string, "values") == 0)
                vals = f;
            else
                return operr_set(err, -EINVAL, "%s.%.80s: unknown field", sub, f->string);
        }
        if (!cJSON_IsString(key))
            return operr_set(err, -EINVAL, "%s.key: required string", sub);
        if (!cJSON_IsString(opj))
            return operr_set(err, -EINVAL, "%s.operator: required string", sub);
        lsel_op op;
        if (parse_op(opj->valuestring, &op))
            return operr_set(err, -EINVAL,
                             "%s.operator: unsupported value \"%.40s\" (want In, NotIn, Exists or "
                             "DoesNotExist)",
                             sub, opj->valuestring);
        if (vals && !cJSON_IsNull(vals) && !cJSON_IsArray(vals))
            return operr_set(err, -EINVAL, "%s.values: must be a list", sub);
        lsel_req *r;
        int rc = add_req(out, key->valuestring, strlen(key->valuestring), op, false, &r);
        const cJSON *v;
        const cJSON *list = cJSON_IsArray(vals) ? vals : NULL;
        int vi = 0;
        cJSON_ArrayForEach(v, list)
        {
            if (rc)
                break;
            if (!cJSON_IsString(v))
                return operr_set(err, -EINVAL, "%s.values[%d]: must be a string", sub, vi);
            rc = add_value(r, v->valuestring, strlen(v->valuestring));
            vi++;
        }
        if (rc == -E2BIG)
            return operr_set(err, rc, "%s: too many requirements or values (max %d, %d)", sub,
                             LSEL_MAX_REQS, LSEL_MAX_VALUES);
        if (rc)
            return operr_set(err, rc, "%s: out of memory", sub);
        rc = check_req(r, sub, err);
        if (rc)
            return rc;
    }
    return 0;
}

int lsel_from_json(lsel_selector *out, const cJSON *obj, const char *path, operr *err)
{
    int rc = 0;
    lsel_release(out);
    if (!obj || cJSON_IsNull(obj))
        return 0;
    if (!cJSON_IsObject(obj)) {
        rc = operr_set(err, -EINVAL, "%s: must be an object", path);
        goto out;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, obj)
    {
        if (strcmp(f->string, "matchLabels") == 0)
            rc = from_match_labels(out, f, path, err);
        else if (strcmp(f->string, "matchExpressions") == 0)
            rc = from_match_expressions(out, f, path, err);
        else
            rc = operr_set(err, -EINVAL, "%s.%.80s: unknown field", path, f->string);
        if (rc)
            goto out;
    }
out:
    if (rc)
        lsel_release(out);
    return rc;
}

cJSON *lsel_to_json(const lsel_selector *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *ml = NULL, *me = NULL;
    if (!o)
        return NULL;
    for (size_t i = 0; i < s->nreqs; i++) {
        const lsel_req *r = &s->reqs[i];
        if (r->from_match_labels && r->op == LSEL_OP_IN && r->nvalues == 1) {
            if (!ml && !(ml = cJSON_AddObjectToObject(o, "matchLabels")))
                goto fail;
            if (!cJSON_AddStringToObject(ml, r->key, r->values[0]))
                goto fail;
            continue;
        }
        if (!me && !(me = cJSON_AddArrayToObject(o, "matchExpressions")))
            goto fail;
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(me, e))
            goto fail_e;
        if (!cJSON_AddStringToObject(e, "key", r->key) ||
            !cJSON_AddStringToObject(e, "operator", lsel_op_name(r->op)))
            goto fail;
        if (r->nvalues) {
            cJSON *vals = cJSON_AddArrayToObject(e, "values");
            if (!vals)
                goto fail;
            for (size_t j = 0; j < r->nvalues; j++) {
                cJSON *v = cJSON_CreateString(r->values[j]);
                if (!v || !cJSON_AddItemToArray(vals, v)) {
                    cJSON_Delete(v);
                    goto fail;
                }
            }
        }
        continue;
    fail_e:
        cJSON_Delete(e);
        goto fail;
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

/* --- matching ---------------------------------------------------------------------------- */

static bool has_value(const lsel_req *r, const char *v)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

bool lsel_matches(const lsel_selector *s, const cJSON *labels)
{
    for (size_t i = 0; i < s->nreqs; i++) {
        const lsel_req *r = &s->reqs[i];
        const cJSON *l =
            cJSON_IsObject(labels) ? cJSON_GetObjectItemCaseSensitive(labels, r->key) : NULL;
        const char *v = cJSON_IsString(l) ? l->valuestring : NULL;
        bool ok;
        switch (r->op) {
        case LSEL_OP_IN:
            ok = v && has_value(r, v);
            break;
        case LSEL_OP_NOT_IN:
            ok = !v || !has_value(r, v);
            break;
        case LSEL_OP_EXISTS:
            ok = v != NULL;
            break;
        case LSEL_OP_DOES_NOT_EXIST:
            ok = v == NULL;
            break;
        default:
            ok = false;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* --- string form ------------------------------------------------------------------------- */

/* Tokens of the string form, as in kubectl: identifiers are runs of anything
 * that is not blank or one of the punctuation characters below. */
typedef enum {
    TK_END,
    TK_IDENT,
    TK_COMMA,
    TK_NOT,    /* ! */
    TK_EQ,     /* = or == */
    TK_NE,     /* != */
    TK_LPAREN, /* ( */
    TK_RPAREN, /* ) */
    TK_BAD,    /* < > and other operators kubectl has but LabelSelector does not */
} tok_kind;

typedef struct lexer {
    const char *p, *end;
    tok_kind kind;
    const char *tok;
    size_t toklen;
} lexer;

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_punct(char c)
{
    return c == ',' || c == '!' || c == '=' || c == '(' || c == ')' || c == '<' || c == '>';
}

static void lex_next(lexer *lx)
{
    while (lx->p < lx->end && is_blank(*lx->p))
        lx->p++;
    lx->tok = lx->p;
    lx->toklen = 1;
    if (lx->p >= lx->end) {
        lx->kind = TK_END;
        lx->toklen = 0;
        return;
    }
    char c = *lx->p;
    bool next_eq = lx->p + 1 < lx->end && lx->p[1] == '=';
    switch (c) {
    case ',':
        lx->kind = TK_COMMA;
        break;
    case '(':
        lx->kind = TK_LPAREN;
        break;
    case ')':
        lx->kind = TK_RPAREN;
        break;
    case '!':
        lx->kind = next_eq ? TK_NE : TK_NOT;
        lx->toklen = next_eq ? 2 : 1;
        break;
    case '=':
        lx->kind = TK_EQ;
        lx->toklen = next_eq ? 2 : 1;
        break;
    case '<':
    case '>':
        lx->kind = TK_BAD;
        break;
    default:
        lx->kind = TK_IDENT;
        while (lx->p + lx->toklen < lx->end && !is_blank(lx->p[lx->toklen]) &&
               !is_punct(lx->p[lx->toklen]))
            lx->toklen++;
    }
    lx->p += lx->toklen;
}

static bool tok_is(const lexer *lx, const char *word)
{
    return lx->kind == TK_IDENT && lx->toklen == strlen(word) &&
           memcmp(lx->tok, word, lx->toklen) == 0;
}

/* Column (1-based) of the current token, for error messages. */
static int col(const lexer *lx, const char *start)
{
    return (int)(lx->tok - start) + 1;
}

/* "(v1, v2)" after in/notin; the lexer sits on the token after the keyword. */
static int parse_set(lexer *lx, lsel_req *r, const char *start, operr *err)
{
    if (lx->kind != TK_LPAREN)
        return operr_set(err, -EINVAL, "selector: column %d: expected '('", col(lx, start));
    lex_next(lx);
    for (;;) {
        /* As in kubectl, an empty member ("(a,)", "()") is the empty value. */
        const char *v = "";
        size_t vlen = 0;
        if (lx->kind == TK_IDENT) {
            v = lx->tok;
            vlen = lx->toklen;
            lex_next(lx);
        } else if (lx->kind != TK_COMMA && lx->kind != TK_RPAREN) {
            return operr_set(err, -EINVAL, "selector: column %d: expected a value", col(lx, start));
        }
        int rc = add_value(r, v, vlen);
        if (rc == -E2BIG)
            return operr_set(err, rc, "selector: more than %d values", LSEL_MAX_VALUES);
        if (rc)
            return operr_set(err, rc, "selector: out of memory");
        if (lx->kind == TK_RPAREN) {
            lex_next(lx);
            return 0;
        }
        if (lx->kind != TK_COMMA)
            return operr_set(err, -EINVAL, "selector: column %d: expected ',' or ')'",
                             col(lx, start));
        lex_next(lx);
    }
}

static int parse_one(lexer *lx, lsel_selector *out, const char *start, operr *err)
{
    bool negate = false;
    if (lx->kind == TK_NOT) {
        negate = true;
        lex_next(lx);
    }
    if (lx->kind != TK_IDENT)
        return operr_set(err, -EINVAL, "selector: column %d: expected a label key", col(lx, start));
    const char *key = lx->tok;
    size_t klen = lx->toklen;
    lex_next(lx);
    lsel_req *r;
    lsel_op op;
    if (negate)
        op = LSEL_OP_DOES_NOT_EXIST;
    else if (lx->kind == TK_EQ)
        op = LSEL_OP_IN;
    else if (lx->kind == TK_NE || tok_is(lx, "notin"))
        op = LSEL_OP_NOT_IN;
    else if (tok_is(lx, "in"))
        op = LSEL_OP_IN;
    else if (lx->kind == TK_END || lx->kind == TK_COMMA)
        op = LSEL_OP_EXISTS;
    else
        return operr_set(err, -EINVAL,
                         "selector: column %d: expected one of =, ==, !=, in, notin, ',' or the "
                         "end",
                         col(lx, start));
    int rc = add_req(out, key, klen, op, false, &r);
    if (rc == -E2BIG)
        return operr_set(err, rc, "selector: more than %d requirements", LSEL_MAX_REQS);
    if (rc)
        return operr_set(err, rc, "selector: out of memory");
    if (negate) {
        /* "!key" stands alone; the caller reports what follows. */
    } else if (lx->kind == TK_EQ || lx->kind == TK_NE) {
        lex_next(lx);
        /* "a=" selects the empty value, as in kubectl. */
        const char *v = "";
        size_t vlen = 0;
        if (lx->kind == TK_IDENT) {
            v = lx->tok;
            vlen = lx->toklen;
            lex_next(lx);
        }
        rc = add_value(r, v, vlen);
        if (rc)
            return operr_set(err, rc, "selector: out of memory");
    } else if (tok_is(lx, "in") || tok_is(lx, "notin")) {
        lex_next(lx);
        rc = parse_set(lx, r, start, err);
        if (rc)
            return rc;
    }
    char sub[320];
    snprintf(sub, sizeof sub, "selector requirement %zu", out->nreqs);
    return check_req(r, sub, err);
}

int lsel_parse(lsel_selector *out, const char *s, size_t len, operr *err)
{
    int rc = 0;
    lsel_release(out);
    if (len > LSEL_MAX_STRING)
        return operr_set(err, -E2BIG, "selector: longer than %d bytes", LSEL_MAX_STRING);
    if (memchr(s, '\0', len))
        return operr_set(err, -EINVAL, "selector: contains a NUL byte");
    lexer lx = {.p = s, .end = s + len};
    lex_next(&lx);
    if (lx.kind == TK_END)
        return 0;
    for (;;) {
        rc = parse_one(&lx, out, s, err);
        if (rc)
            goto out;
        if (lx.kind == TK_END)
            break;
        if (lx.kind != TK_COMMA) {
            rc = operr_set(err, -EINVAL, "selector: column %d: expected ',' or the end",
                           col(&lx, s));
            goto out;
        }
        lex_next(&lx);
    }
out:
    if (rc)
        lsel_release(out);
    return rc;
}

int lsel_format(const lsel_selector *s, opbuf *out)
{
    int rc = 0;
    for (size_t i = 0; i < s->nreqs && rc == 0; i++) {
        const lsel_req *r = &s->reqs[i];
        if (i)
            rc = opbuf_puts(out, ",");
        if (rc)
            break;
        switch (r->op) {
        case LSEL_OP_EXISTS:
            rc = opbuf_puts(out, r->key);
            break;
        case LSEL_OP_DOES_NOT_EXIST:
            rc = opbuf_printf(out, "!%s", r->key);
            break;
        case LSEL_OP_IN:
        case LSEL_OP_NOT_IN:
            if (r->nvalues == 1 && r->values[0][0]) {
                rc = opbuf_printf(out, "%s%s%s", r->key,
                                  r->op == LSEL_OP_IN ? "=" : "!=", r->values[0]);
                break;
            }
            if (r->nvalues == 1) { /* the empty value cannot be written inside a set */
                rc = opbuf_printf(out, "%s%s", r->key, r->op == LSEL_OP_IN ? "=" : "!=");
                break;
            }
            rc = opbuf_printf(out, "%s %s (", r->key, r->op == LSEL_OP_IN ? "in" : "notin");
            for (size_t j = 0; j < r->nvalues && rc == 0; j++)
                rc = opbuf_printf(out, "%s%s", j ? "," : "", r->values[j]);
            if (rc == 0)
                rc = opbuf_puts(out, ")");
            break;
        }
    }
    return rc;
}
