/*
 * jsoracle: an independent, deliberately plain recursive-descent validator of
 * the JSON that util/jscan.h documents (RFC 8259, depth <= JSCAN_DEPTH_MAX,
 * numbers <= JSCAN_NUM_MAX characters, no lone surrogates, no BOM). The fuzz
 * targets hold jscan and kprojs to it: a second implementation written from
 * the grammar, not from jscan.c. Header-only (static functions).
 */
#ifndef OPTIPOD_TEST_FUZZ_JSORACLE_H
#define OPTIPOD_TEST_FUZZ_JSORACLE_H

#include <stddef.h>

#include "util/jscan.h"

typedef struct jso {
    const unsigned char *p, *end;
} jso;

static void jso_ws(jso *o)
{
    while (o->p < o->end && (*o->p == ' ' || *o->p == '\t' || *o->p == '\n' || *o->p == '\r'))
        o->p++;
}

static int jso_lit(jso *o, const char *w)
{
    for (; *w; w++, o->p++) {
        if (o->p >= o->end || *o->p != (unsigned char)*w)
            return 0;
    }
    return 1;
}

static long jso_hex4(jso *o)
{
    long v = 0;
    for (int i = 0; i < 4; i++, o->p++) {
        if (o->p >= o->end)
            return -1;
        unsigned char c = *o->p;
        int h = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static int jso_string(jso *o)
{
    o->p++; /* '"' */
    while (o->p < o->end) {
        unsigned char c = *o->p++;
        if (c == '"')
            return 1;
        if (c < 0x20)
            return 0;
        if (c != '\\')
            continue;
        if (o->p >= o->end)
            return 0;
        c = *o->p++;
        if (c == 'u') {
            long u = jso_hex4(o);
            if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF))
                return 0;
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (!jso_lit(o, "\\u"))
                    return 0;
                long lo = jso_hex4(o);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return 0;
            }
        } else if (!(c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                     c == 'r' || c == 't')) {
            return 0;
        }
    }
    return 0;
}

static int jso_digits(jso *o)
{
    const unsigned char *s = o->p;
    while (o->p < o->end && *o->p >= '0' && *o->p <= '9')
        o->p++;
    return o->p > s;
}

static int jso_number(jso *o)
{
    const unsigned char *s = o->p;
    if (*o->p == '-')
        o->p++;
    if (o->p < o->end && *o->p == '0')
        o->p++;
    else if (!jso_digits(o))
        return 0;
    if (o->p < o->end && *o->p == '.') {
        o->p++;
        if (!jso_digits(o))
            return 0;
    }
    if (o->p < o->end && (*o->p == 'e' || *o->p == 'E')) {
        o->p++;
        if (o->p < o->end && (*o->p == '+' || *o->p == '-'))
            o->p++;
        if (!jso_digits(o))
            return 0;
    }
    return o->p - s <= JSCAN_NUM_MAX;
}

static int jso_value(jso *o, int depth)
{
    jso_ws(o);
    if (o->p >= o->end)
        return 0;
    unsigned char c = *o->p;
    if (c == '{' || c == '[') {
        if (depth >= JSCAN_DEPTH_MAX)
            return 0;
        unsigned char close = c == '{' ? '}' : ']';
        o->p++;
        jso_ws(o);
        if (o->p < o->end && *o->p == close) {
            o->p++;
            return 1;
        }
        for (;;) {
            if (c == '{') {
                jso_ws(o);
                if (o->p >= o->end || *o->p != '"' || !jso_string(o))
                    return 0;
                jso_ws(o);
                if (o->p >= o->end || *o->p != ':')
                    return 0;
                o->p++;
            }
            if (!jso_value(o, depth + 1))
                return 0;
            jso_ws(o);
            if (o->p >= o->end)
                return 0;
            if (*o->p == close) {
                o->p++;
                return 1;
            }
            if (*o->p != ',')
                return 0;
            o->p++;
        }
    }
    if (c == '"')
        return jso_string(o);
    if (c == 't')
        return jso_lit(o, "true");
    if (c == 'f')
        return jso_lit(o, "false");
    if (c == 'n')
        return jso_lit(o, "null");
    if (c == '-' || (c >= '0' && c <= '9'))
        return jso_number(o);
    return 0;
}

/* 1 when data is exactly one valid JSON value with optional whitespace around it. */
static int jsoracle_valid(const void *data, size_t size)
{
    jso o = {data, (const unsigned char *)data + size};
    if (!jso_value(&o, 0))
        return 0;
    jso_ws(&o);
    return o.p == o.end;
}

#endif
