/*
 * kframer: cut a byte stream into newline-terminated lines with a per-line cap.
 *
 * A watch response arrives in chunks whose boundaries mean nothing; events are
 * one JSON document per line. kframer_feed() takes chunks of any size and calls
 * the line callback once per complete line (without the '\n' and a trailing
 * '\r'; empty lines are skipped). A line longer than max_line is reported once
 * (counted in `overlong`, logged) and its bytes are discarded up to the next
 * newline, so a hostile peer can never make us buffer without bound.
 *
 * Lines handed to the callback are NOT NUL-terminated (use the length) and are
 * valid only during the call. A complete line inside one chunk is passed
 * without copying; only a line split across chunks is buffered.
 *
 * Ownership: kframer_init() allocates nothing; kframer_release() frees the
 * partial-line buffer; kframer_reset() forgets a partial line (new stream).
 */
#ifndef OPTIPOD_KUBE_FRAMER_H
#define OPTIPOD_KUBE_FRAMER_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Default cap for one line: 16 MiB (the API server's own limit is near 3 MiB
 * per object, and an event wraps one object). */
#define KFRAMER_DEFAULT_MAX ((size_t)16 << 20)

/* Return non-zero to stop: kframer_feed() then returns that value. */
typedef int (*kframer_line_cb)(const char *line, size_t len, void *ud);

typedef struct kframer {
    opbuf part;        /* the unterminated tail of the stream */
    size_t max_line;   /* cap on one line, excluding the newline */
    int skipping;      /* inside an over-long line: drop bytes until '\n' */
    uint64_t lines;    /* lines delivered */
    uint64_t overlong; /* lines dropped for exceeding max_line */
    kframer_line_cb cb;
    void *ud;
} kframer;

/* max_line 0 = KFRAMER_DEFAULT_MAX. */
void kframer_init(kframer *f, size_t max_line, kframer_line_cb cb, void *ud);
void kframer_release(kframer *f);
void kframer_reset(kframer *f);
/* Returns 0, the callback's non-zero value, or -ENOMEM. */
int kframer_feed(kframer *f, const char *data, size_t len);
/* End of stream: deliver a final unterminated line if any (a decoder at EOF
 * accepts it; a truncated event then fails to parse and is counted there). */
int kframer_finish(kframer *f);
/* Bytes held in an incomplete line. */
size_t kframer_pending(const kframer *f);

#endif
