#include "kube/framer.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"

void kframer_init(kframer *f, size_t max_line, kframer_line_cb cb, void *ud)
{
    f->max_line = max_line ? max_line : KFRAMER_DEFAULT_MAX;
    /* The buffer holds at most one line plus the byte that proves it too long. */
    opbuf_init(&f->part, f->max_line + 1);
    f->skipping = 0;
    f->lines = 0;
    f->overlong = 0;
    f->cb = cb;
    f->ud = ud;
}

void kframer_release(kframer *f)
{
    opbuf_release(&f->part);
    f->skipping = 0;
}

void kframer_reset(kframer *f)
{
    opbuf_reset(&f->part);
    f->skipping = 0;
}

size_t kframer_pending(const kframer *f)
{
    return f->part.len;
}

static void kframer_overlong(kframer *f)
{
    f->overlong++;
    OPLOG_W("watch stream: line longer than %zu bytes skipped (%llu so far)", f->max_line,
            (unsigned long long)f->overlong);
}

/* Deliver line[0..len) with a trailing '\r' trimmed. */
static int kframer_emit(kframer *f, const char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    if (!len)
        return 0;
    f->lines++;
    return f->cb ? f->cb(line, len, f->ud) : 0;
}

int kframer_feed(kframer *f, const char *data, size_t len)
{
    int rc = 0;
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t seg = nl ? (size_t)(nl - data) : len;
        size_t adv = nl ? seg + 1 : len;

        if (f->skipping) {
            /* Still inside an over-long line: drop through its newline. */
            if (nl)
                f->skipping = 0;
        } else if (f->part.len + seg > f->max_line) {
            opbuf_reset(&f->part);
            kframer_overlong(f);
            f->skipping = nl ? 0 : 1;
        } else if (!nl) {
            rc = opbuf_append(&f->part, data, seg);
            if (rc)
                return rc;
        } else if (f->part.len == 0) {
            /* Whole line inside this chunk: no copy. */
            rc = kframer_emit(f, data, seg);
        } else {
            rc = opbuf_append(&f->part, data, seg);
            if (rc)
                return rc;
            rc = kframer_emit(f, f->part.data, f->part.len);
            opbuf_reset(&f->part);
        }
        if (rc)
            return rc;
        data += adv;
        len -= adv;
    }
    return 0;
}

int kframer_finish(kframer *f)
{
    int rc = 0;
    if (!f->skipping && f->part.len)
        rc = kframer_emit(f, f->part.data, f->part.len);
    kframer_reset(f);
    return rc;
}
