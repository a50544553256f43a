/*
 * opbuf: a growable byte buffer with a hard size cap and sticky errors.
 *
 * Every buffer that holds bytes from the network or a file has a maximum, so a
 * hostile or broken peer can never make us allocate without bound. The data is
 * always NUL-terminated (the terminator is not counted in len), so text can be
 * handed to parsers that want a C string.
 *
 * Errors are sticky, as in curl's dynbuf: when an append would pass the cap
 * (-E2BIG) or cannot allocate (-ENOMEM), the buffer frees its contents and
 * stays failed: every later append is a no-op returning that same error, and
 * opbuf_error() tells it. A writer may therefore append several pieces and
 * check only the last result (or opbuf_error()) at the end: a half-written
 * buffer is never mistaken for a whole one. opbuf_reset() and opbuf_release()
 * clear the error (the buffer is empty and usable again).
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
    int err;    /* 0, or the sticky -E2BIG/-ENOMEM of a failed append */
} opbuf;

/* Default cap for buffers that do not choose one: 64 MiB. */
#define OPBUF_DEFAULT_MAX ((size_t)64 << 20)

void opbuf_init(opbuf *b, size_t max);
void opbuf_release(opbuf *b);
/* Forget the contents (and any error) but keep the allocation. */
void opbuf_reset(opbuf *b);
/* Append; returns 0, or -E2BIG past the cap or -ENOMEM: the buffer is then emptied and
 * failed (see above), and so is every later append until a reset. */
int opbuf_append(opbuf *b, const void *p, size_t n);
int opbuf_puts(opbuf *b, const char *s);
int opbuf_printf(opbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int opbuf_vprintf(opbuf *b, const char *fmt, va_list ap);
/* The sticky error: 0 while every append succeeded. */
int opbuf_error(const opbuf *b);
/* Remove the first n bytes (n <= len). */
void opbuf_consume(opbuf *b, size_t n);
/* Take ownership of the bytes (an empty buffer yields ""). NULL for a failed buffer or when
 * even "" cannot be allocated. */
char *opbuf_detach(opbuf *b, size_t *len);
/* Returns data, or "" when nothing was appended yet (or the buffer failed). */
const char *opbuf_str(const opbuf *b);

#endif
