#include "util/jscan.h"

#include <errno.h>
#include <string.h>

/* What the grammar allows next. */
enum {
    JS_VALUE,     /* a value (the document's, after ':' or after ',' in an array) */
    JS_ARR_FIRST, /* a value or ']' */
    JS_OBJ_FIRST, /* a key or '}' */
    JS_KEY,       /* a key (after ',' in an object) */
    JS_AFTER,     /* ',' or the closing bracket, or the end at depth 0 */
    JS_DONE,      /* the top-level value is complete and only EOF remains */
};

/* Bytes a string scan must stop at: '"', '\\' and control characters. */
static const uint8_t js_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,           1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1 /* '"' */, ['\\'] = 1,
};

/* x with every byte set to c (for the word-at-a-time string scan). */
#define JS_REP(c) ((uint64_t)(c)*0x0101010101010101ull)

static int js_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static int js_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static long js_hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = js_hex(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

void jscan_init(jscan *s, const char *json, size_t len)
{
    s->start = s->p = json;
    s->end = json + len;
    s->state = JS_VALUE;
    s->depth = 0;
    s->err = 0;
    s->trusted = 0;
}

void jscan_init_trusted(jscan *s, const char *json, size_t len)
{
    jscan_init(s, json, len);
    s->trusted = 1;
}

int jscan_depth(const jscan *s)
{
    return s->depth;
}

size_t jscan_offset(const jscan *s)
{
    return (size_t)(s->p - s->start);
}

static int js_fail(jscan *s, int err)
{
    s->err = err;
    return err;
}

static int js_in_obj(const jscan *s)
{
    int d = s->depth - 1;
    return (s->objs[d >> 3] >> (d & 7)) & 1;
}

static int js_push(jscan *s, int obj)
{
    if (s->depth >= JSCAN_DEPTH_MAX)
        return -E2BIG;
    int d = s->depth++;
    if (obj)
        s->objs[d >> 3] |= (uint8_t)(1u << (d & 7));
    else
        s->objs[d >> 3] &= (uint8_t) ~(1u << (d & 7));
    return 0;
}

/* A string body from just after the opening quote: validates escapes (a high
 * surrogate must be followed by a low one, a low one may not come alone) and
 * leaves s->p after the closing quote. */
static int js_string(jscan *s, jscan_tok *t)
{
    const char *p = s->p, *end = s->end;
    int esc = 0;
    t->p = p;
    for (;;) {
        /* Eight bytes at a time while none of them is '"', '\\' or a control byte. */
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            uint64_t q = x ^ JS_REP('"'), b = x ^ JS_REP('\\');
            uint64_t hit = ((q - JS_REP(1)) & ~q) | ((b - JS_REP(1)) & ~b) | (x - JS_REP(0x20));
            if ((hit & ~x & JS_REP(0x80)) != 0)
                break;
            p += 8;
        }
        while (p < end && !js_stop[(uint8_t)*p])
            p++;
        if (p >= end)
            return -EINVAL;
        if (*p == '"')
            break;
        if (*p != '\\')
            return -EINVAL; /* a raw control character */
        esc = 1;
        if (s->trusted) {
            p += 2; /* validated before: no need to look into the escape */
            if (p > end)
                return -EINVAL;
            continue;
        }
        if (end - p < 2)
            return -EINVAL;
        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p += 2;
            break;
        case 'u': {
            if (end - p < 6)
                return -EINVAL;
            long u = js_hex4(p + 2);
            if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF))
                return -EINVAL;
            p += 6;
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
                    return -EINVAL;
                long lo = js_hex4(p + 2);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return -EINVAL;
                p += 6;
            }
            break;
        }
        default:
            return -EINVAL;
        }
    }
    t->n = (size_t)(p - t->p);
    t->esc = esc;
    s->p = p + 1;
    return 0;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int js_number(jscan *s, jscan_tok *t)
{
    const char *p = s->p, *end = s->end;
    t->p = p;
    if (p < end && *p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return -EINVAL;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return -EINVAL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return -EINVAL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    t->n = (size_t)(p - t->p);
    if (t->n > JSCAN_NUM_MAX)
        return -EINVAL;
    s->p = p;
    return 0;
}

static int js_literal(jscan *s, jscan_tok *t, const char *word, size_t n, enum jscan_type type)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -EINVAL;
    t->type = type;
    t->p = s->p;
    t->n = n;
    s->p += n;
    return 0;
}

static int js_value(jscan *s, jscan_tok *t)
{
    int rc;
    char c = *s->p;
    t->esc = 0;
    switch (c) {
    case '{':
    case '[':
        rc = js_push(s, c == '{');
        if (rc)
            return rc;
        t->type = c == '{' ? JSCAN_OBJ : JSCAN_ARR;
        t->p = s->p++;
        t->n = 1;
        s->state = c == '{' ? JS_OBJ_FIRST : JS_ARR_FIRST;
        return 0;
    case '"':
        s->p++;
        t->type = JSCAN_STR;
        rc = js_string(s, t);
        break;
    case 't':
        rc = js_literal(s, t, "true", 4, JSCAN_TRUE);
        break;
    case 'f':
        rc = js_literal(s, t, "false", 5, JSCAN_FALSE);
        break;
    case 'n':
        rc = js_literal(s, t, "null", 4, JSCAN_NULL);
        break;
    default:
        t->type = JSCAN_NUM;
        t->esc = 0;
        rc = js_number(s, t);
        break;
    }
    if (rc)
        return rc;
    s->state = s->depth ? JS_AFTER : JS_DONE;
    return 0;
}

static int js_close(jscan *s, jscan_tok *t, int obj)
{
    t->type = obj ? JSCAN_OBJ_END : JSCAN_ARR_END;
    t->p = s->p++;
    t->n = 1;
    t->esc = 0;
    s->depth--;
    s->state = s->depth ? JS_AFTER : JS_DONE;
    return 0;
}

static int js_key(jscan *s, jscan_tok *t)
{
    if (*s->p != '"')
        return -EINVAL;
    s->p++;
    t->type = JSCAN_KEY;
    int rc = js_string(s, t);
    if (rc)
        return rc;
    while (s->p < s->end && js_ws(*s->p))
        s->p++;
    if (s->p >= s->end || *s->p != ':')
        return -EINVAL;
    s->p++;
    s->state = JS_VALUE;
    return 0;
}

static int js_step(jscan *s, jscan_tok *t)
{
    for (;;) {
        while (s->p < s->end && js_ws(*s->p))
            s->p++;
        if (s->p >= s->end) {
            if (s->state != JS_DONE)
                return -EINVAL;
            t->type = JSCAN_EOF;
            t->p = s->p;
            t->n = 0;
            t->esc = 0;
            return 0;
        }
        char c = *s->p;
        switch (s->state) {
        case JS_VALUE:
            return js_value(s, t);
        case JS_ARR_FIRST:
            if (c == ']')
                return js_close(s, t, 0);
            return js_value(s, t);
        case JS_OBJ_FIRST:
            if (c == '}')
                return js_close(s, t, 1);
            return js_key(s, t);
        case JS_KEY:
            return js_key(s, t);
        case JS_AFTER:
            if (c == ',') {
                s->p++;
                s->state = js_in_obj(s) ? JS_KEY : JS_VALUE;
                continue;
            }
            if (c == (js_in_obj(s) ? '}' : ']'))
                return js_close(s, t, js_in_obj(s));
            return -EINVAL;
        default:
            return -EINVAL; /* JS_DONE: bytes after the document */
        }
    }
}

int jscan_next(jscan *s, jscan_tok *t)
{
    if (s->err)
        return s->err;
    int rc = js_step(s, t);
    return rc ? js_fail(s, rc) : 0;
}

/* Trusted strings: just past the closing quote (escapes jumped, not read), or NULL. */
static const char *js_str_end(const char *p, const char *end)
{
    for (;;) {
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            uint64_t q = x ^ JS_REP('"'), b = x ^ JS_REP('\\');
            uint64_t hit = ((q - JS_REP(1)) & ~q) | ((b - JS_REP(1)) & ~b);
            if ((hit & JS_REP(0x80)) != 0)
                break;
            p += 8;
        }
        while (p < end && *p != '"' && *p != '\\')
            p++;
        if (p >= end)
            return NULL;
        if (*p == '"')
            return p + 1;
        p += 2;
        if (p > end)
            return NULL;
    }
}

/* The validating skip: js_step()'s grammar in one loop with the position and
 * state in locals, producing no tokens (skipping managedFields is most of the
 * work of projecting an object). Stops once the depth is back at `target`. */
static int js_skip_valid(jscan *s, int target)
{
    const char *p = s->p, *end = s->end;
    int st = s->state, rc;
    jscan_tok t;
    for (;;) {
        while (p < end && js_ws(*p))
            p++;
        if (p >= end)
            return -EINVAL;
        char c = *p;
        int obj;
        switch (st) {
        case JS_OBJ_FIRST:
            if (c == '}') {
                obj = 1;
                break;
            }
            /* fall through */
        case JS_KEY:
            if (c != '"')
                return -EINVAL;
            s->p = p + 1;
            rc = js_string(s, &t);
            if (rc)
                return rc;
            p = s->p;
            while (p < end && js_ws(*p))
                p++;
            if (p >= end || *p != ':')
                return -EINVAL;
            p++;
            st = JS_VALUE;
            continue;
        case JS_ARR_FIRST:
            if (c == ']') {
                obj = 0;
                break;
            }
            /* fall through */
        case JS_VALUE:
            if (c == '{' || c == '[') {
                rc = js_push(s, c == '{');
                if (rc)
                    return rc;
                p++;
                st = c == '{' ? JS_OBJ_FIRST : JS_ARR_FIRST;
                continue;
            }
            s->p = p;
            rc = js_value(s, &t); /* a scalar */
            if (rc)
                return rc;
            p = s->p;
            st = JS_AFTER;
            continue;
        case JS_AFTER:
            obj = js_in_obj(s);
            if (c == ',') {
                p++;
                st = obj ? JS_KEY : JS_VALUE;
                continue;
            }
            if (c != (obj ? '}' : ']'))
                return -EINVAL;
            break;
        default:
            return -EINVAL;
        }
        /* A closing bracket. */
        p++;
        s->depth--;
        if (s->depth <= target) {
            s->p = p;
            s->state = s->depth ? JS_AFTER : JS_DONE;
            return 0;
        }
        st = JS_AFTER;
    }
}

int jscan_skip(jscan *s, jscan_tok *t)
{
    if (s->err)
        return s->err;
    if (t->type != JSCAN_OBJ && t->type != JSCAN_ARR)
        return 0;
    int target = s->depth - 1;
    if (s->trusted) {
        /* Valid already: only brackets and string ends matter. */
        const char *p = s->p, *end = s->end;
        int d = 1;
        while (p < end && d) {
            char c = *p++;
            if (c == '{' || c == '[') {
                d++;
            } else if (c == '}' || c == ']') {
                d--;
            } else if (c == '"') {
                p = js_str_end(p, end);
                if (!p)
                    return js_fail(s, -EINVAL);
            }
        }
        if (d)
            return js_fail(s, -EINVAL);
        s->p = p;
        s->depth = target;
        s->state = s->depth ? JS_AFTER : JS_DONE;
        t->n = (size_t)(s->p - t->p);
        return 0;
    }
    int rc = js_skip_valid(s, target);
    if (rc)
        return js_fail(s, rc);
    t->n = (size_t)(s->p - t->p);
    return 0;
}

/* ---- decoding ------------------------------------------------------------------------- */

/* A byte-at-a-time decoder over a string token's raw bytes. Escapes were
 * validated by the scanner; anything odd still ends the string safely. */
typedef struct jdec {
    const char *p, *end;
    uint8_t buf[4];
    int bi, bn;
} jdec;

static void jdec_init(jdec *d, const jscan_tok *t)
{
    d->p = t->p;
    d->end = t->p + t->n;
    d->bi = d->bn = 0;
}

static int jdec_utf8(jdec *d, unsigned long cp)
{
    if (cp < 0x80) {
        d->buf[0] = (uint8_t)cp;
        d->bn = 1;
    } else if (cp < 0x800) {
        d->buf[0] = (uint8_t)(0xC0 | cp >> 6);
        d->buf[1] = (uint8_t)(0x80 | (cp & 0x3F));
        d->bn = 2;
    } else if (cp < 0x10000) {
        d->buf[0] = (uint8_t)(0xE0 | cp >> 12);
        d->buf[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        d->buf[2] = (uint8_t)(0x80 | (cp & 0x3F));
        d->bn = 3;
    } else {
        d->buf[0] = (uint8_t)(0xF0 | cp >> 18);
        d->buf[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        d->buf[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        d->buf[3] = (uint8_t)(0x80 | (cp & 0x3F));
        d->bn = 4;
    }
    d->bi = 1;
    return d->buf[0];
}

/* The next decoded byte, or -1 at the end. */
static int jdec_next(jdec *d)
{
    if (d->bi < d->bn)
        return d->buf[d->bi++];
    if (d->p >= d->end)
        return -1;
    if (*d->p != '\\')
        return (uint8_t)*d->p++;
    if (d->end - d->p < 2) {
        d->p = d->end;
        return -1;
    }
    char c = d->p[1];
    d->p += 2;
    switch (c) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'u': {
        long u = d->end - d->p >= 4 ? js_hex4(d->p) : -1;
        if (u < 0) {
            d->p = d->end;
            return -1;
        }
        d->p += 4;
        unsigned long cp = (unsigned long)u;
        if (u >= 0xD800 && u <= 0xDBFF) {
            long lo =
                d->end - d->p >= 6 && d->p[0] == '\\' && d->p[1] == 'u' ? js_hex4(d->p + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) {
                d->p = d->end;
                return -1;
            }
            d->p += 6;
            cp = 0x10000 + (((unsigned long)u & 0x3FF) << 10 | ((unsigned long)lo & 0x3FF));
        }
        return jdec_utf8(d, cp);
    }
    default:
        return (uint8_t)c; /* '"', '\\', '/' */
    }
}

ssize_t jscan_unescape(const jscan_tok *t, char *dst, size_t cap)
{
    if (!t->esc) {
        if (dst && t->n > cap)
            return -E2BIG;
        if (dst)
            memcpy(dst, t->p, t->n);
        return (ssize_t)t->n;
    }
    jdec d;
    jdec_init(&d, t);
    size_t n = 0;
    int c;
    while ((c = jdec_next(&d)) >= 0) {
        if (dst) {
            if (n >= cap)
                return -E2BIG;
            dst[n] = (char)c;
        }
        n++;
    }
    return (ssize_t)n;
}

size_t jscan_strlen0(const jscan_tok *t)
{
    if (!t->esc)
        return t->n; /* raw strings cannot hold a 0 byte */
    jdec d;
    jdec_init(&d, t);
    size_t n = 0;
    int c;
    while ((c = jdec_next(&d)) > 0)
        n++;
    return n;
}

size_t jscan_strcpy0(const jscan_tok *t, char *dst)
{
    size_t n = 0;
    if (!t->esc) {
        memcpy(dst, t->p, t->n);
        n = t->n;
    } else {
        jdec d;
        jdec_init(&d, t);
        int c;
        while ((c = jdec_next(&d)) > 0)
            dst[n++] = (char)c;
    }
    dst[n] = 0;
    return n;
}

int jscan_strprefix(const jscan_tok *t, const char *s, size_t n)
{
    if (!t->esc)
        return t->n >= n && memcmp(t->p, s, n) == 0;
    jdec d;
    jdec_init(&d, t);
    for (size_t i = 0; i < n; i++) {
        if (jdec_next(&d) != (uint8_t)s[i])
            return 0;
    }
    return 1;
}

int jscan_streq(const jscan_tok *t, const char *s, size_t n)
{
    if (!t->esc)
        return t->n == n && memcmp(t->p, s, n) == 0;
    jdec d;
    jdec_init(&d, t);
    for (size_t i = 0; i < n; i++) {
        if (jdec_next(&d) != (uint8_t)s[i])
            return 0;
    }
    return jdec_next(&d) <= 0;
}

int jscan_streq_tok(const jscan_tok *a, const jscan_tok *b)
{
    if (!a->esc && !b->esc)
        return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
    jdec da, db;
    jdec_init(&da, a);
    jdec_init(&db, b);
    for (;;) {
        int x = jdec_next(&da), y = jdec_next(&db);
        if (x <= 0 || y <= 0)
            return x <= 0 && y <= 0;
        if (x != y)
            return 0;
    }
}
