/*
 * opbuf: a growable byte buffer with a hard size cap.
 *
 * Every buffer that holds bytes from the network or a file has a maximum, so a
 * hostile or broken peer can never make us allocate without bound. The data is
 * always NUL-terminated (the terminator is not counted in len), so text can be
 * handed to parsers that want a C string.
 *
 * Ownership: the opbuf owns `data`. opbuf_init() allocates nothing;
 * opbuf_release() frees the contents and leaves the buffer re-usable;
 * opbuf_detach() hands the bytes to the caller, who must free() them.
 */
#ifndef OPTIPOD_UTIL_BUF_H
#define OPTIPOD_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct opbuf {
    char *data; /* NULL until the first append; then always NUL-terminated */
    size_t len; /* bytes used, excluding the terminator */
    size_t cap; /* bytes allocated */
    size_t max; /* hard limit on len; appends beyond it fail with -E2BIG */
} opbuf;

/* Default cap for buffers that do not choose one: 64 MiB. */
#define OPBUF_DEFAULT_MAX ((size_t)64 << 20)

void opbuf_init(opbuf *b, size_t max);
void opbuf_release(opbuf *b);
/* Forget the contents but keep the allocation. */
void opbuf_reset(opbuf *b);
/* Append; returns 0, -E2BIG past the cap (buffer unchanged) or -ENOMEM. */
int opbuf_append(opbuf *b, const void *p, size_t n);
int opbuf_puts(opbuf *b, const char *s);
int opbuf_printf(opbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int opbuf_vprintf(opbuf *b, const char *fmt, va_list ap);
/* Remove the first n bytes (n <= len). */
void opbuf_consume(opbuf *b, size_t n);
/* Take ownership of the bytes (never NULL: an empty buffer yields ""). */
char *opbuf_detach(opbuf *b, size_t *len);
/* Returns data, or "" when nothing was appended yet. */
const char *opbuf_str(const opbuf *b);

#endif
