/*
 * Fuzz the watch event path: bytes → framer (with a small line cap) → event
 * parser → state machine → cache projection. Nothing may crash or leak, and
 * the machine must stay in a valid state.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kube/cache.h"
#include "kube/framer.h"
#include "kube/watch.h"
#include "util/log.h"

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
        kcache_replace_item(&f->c, a->obj);
        break;
    case KWATCH_REPLACE_END:
        kcache_replace_end(&f->c);
        break;
    case KWATCH_REPLACE_ABORT:
        kcache_replace_abort(&f->c);
        break;
    case KWATCH_ADDED:
    case KWATCH_MODIFIED:
        kcache_upsert(&f->c, a->obj);
        break;
    case KWATCH_DELETED:
        kcache_remove(&f->c, a->obj);
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
        kwatch_list_page(&f->w, 2000, NULL, "1", NULL);
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
    kwatch_list_page(&f.w, 0, NULL, "1", NULL);
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
