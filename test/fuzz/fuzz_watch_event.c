/*
 * Fuzz the watch event path: bytes → framer (with a small line cap) → event
 * scanner → state machine → cache projection (from the line's bytes). Nothing may crash or leak,
 * and the machine must stay in a valid state.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kube/cache.h"
#include "kube/framer.h"
#include "kube/watch.h"
#include "util/log.h"

/* The last (and only) page of a list: its resourceVersion, no items. */
static const char EMPTY_LIST[] = "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[]}";

typedef struct fz {
    kwatch w;
    kcache c;
} fz;

static void emit(const kwatch_action *a, void *ud)
{
    fz *f = ud;
    switch (a->type) {
    case KWATCH_REPLACE_BEGIN:
        kcache_replace_begin(&f->c);
        break;
    case KWATCH_REPLACE_ITEM:
        kcache_replace_item(&f->c, a->raw, a->raw_len);
        break;
    case KWATCH_REPLACE_END:
        kcache_replace_end(&f->c);
        break;
    case KWATCH_REPLACE_ABORT:
        kcache_replace_abort(&f->c);
        break;
    case KWATCH_ADDED:
    case KWATCH_MODIFIED:
        kcache_upsert(&f->c, a->raw, a->raw_len);
        break;
    case KWATCH_DELETED:
        kcache_remove(&f->c, a->raw, a->raw_len);
        break;
    default:
        break;
    }
}

static int on_line(const char *line, size_t len, void *ud)
{
    fz *f = ud;
    kwatch_line(&f->w, 1000, line, len);
    /* Whatever the event did, get back to watching for the next one. */
    if (f->w.state == KWATCH_BACKOFF)
        kwatch_timer(&f->w, 2000);
    if (f->w.state == KWATCH_LISTING)
        kwatch_list_body(&f->w, 2000, EMPTY_LIST, sizeof EMPTY_LIST - 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *quiet;
    if (!quiet) {
        quiet = fopen("/dev/null", "w");
        oplog_set_sink(quiet);
    }
    fz f;
    kwatch_init(&f.w, 0, 1, emit, &f);
    kcache_init(&f.c, KPROJ_POD);
    kwatch_start(&f.w, 0);
    kwatch_list_body(&f.w, 0, EMPTY_LIST, sizeof EMPTY_LIST - 1);
    kframer fr;
    kframer_init(&fr, 4096, on_line, &f);
    /* Feed in two uneven chunks to exercise reassembly. */
    size_t cut = size ? data[0] % (size + 1) : 0;
    kframer_feed(&fr, (const char *)data, cut);
    kframer_feed(&fr, (const char *)data + cut, size - cut);
    kframer_finish(&fr);
    if (f.w.state != KWATCH_WATCHING)
        abort();
    kframer_release(&fr);
    kcache_release(&f.c);
    kwatch_release(&f.w);
    return 0;
}
