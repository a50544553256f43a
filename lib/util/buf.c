#include "util/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void opbuf_init(opbuf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : OPBUF_DEFAULT_MAX;
    b->err = 0;
}

void opbuf_release(opbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = 0;
}

void opbuf_reset(opbuf *b)
{
    b->len = 0;
    b->err = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* A failed append: free what was there and stay failed with rc. */
static int opbuf_fail(opbuf *b, int rc)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = rc;
    return rc;
}

/* Make room for n more bytes plus the terminator. */
static int opbuf_grow(opbuf *b, size_t n)
{
    if (b->err)
        return b->err;
    if (n > b->max || b->len > b->max - n)
        return opbuf_fail(b, -E2BIG);
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return opbuf_fail(b, -ENOMEM);
    b->data = p;
    b->cap = cap;
    return 0;
}

int opbuf_append(opbuf *b, const void *p, size_t n)
{
    int rc = opbuf_grow(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int opbuf_puts(opbuf *b, const char *s)
{
    return opbuf_append(b, s, strlen(s));
}

int opbuf_vprintf(opbuf *b, const char *fmt, va_list ap)
{
    if (b->err)
        return b->err;
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return opbuf_fail(b, -EINVAL);
    int rc = opbuf_grow(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int opbuf_printf(opbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = opbuf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int opbuf_error(const opbuf *b)
{
    return b->err;
}

void opbuf_consume(opbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        if (b->data)
            b->data[0] = '\0';
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *opbuf_detach(opbuf *b, size_t *len)
{
    char *p = b->err ? NULL : b->data ? b->data : calloc(1, 1);
    if (len)
        *len = p ? b->len : 0;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = 0;
    return p;
}

const char *opbuf_str(const opbuf *b)
{
    return b->data ? b->data : "";
}
