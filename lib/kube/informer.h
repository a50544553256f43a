/*
 * kinf: an informer: one resource type (optionally one namespace and a label
 * selector) kept in a kcache by list+watch over krest, driven by kwatch.
 *
 * The informer only performs what the pure machine (kube/watch.h) asks: LIST
 * pages with krest_call (limit 500 by default, continue tokens), the WATCH as
 * a krest_stream whose bytes go through a kframer into the machine, WAITs on
 * one uv_timer_t, CANCEL of a stream the machine gave up on. Deliveries go to
 * the cache, whose handlers the caller registered.
 *
 * Ownership and lifecycle (libuv's rules): kinf_new() borrows the loop and the
 * krest (both must outlive the informer) and copies the options. kinf_close()
 * stops it: requests are cancelled (no handler runs afterwards) and the timer
 * is closed; the memory is reclaimed in the timer's close callback, after
 * which `on_closed` runs. Run the loop until then; uv_loop_close() then
 * succeeds. Everything runs on the loop's thread.
 */
#ifndef OPTIPOD_KUBE_INFORMER_H
#define OPTIPOD_KUBE_INFORMER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kube/cache.h"
#include "kube/framer.h"
#include "kube/rest.h"
#include "kube/watch.h"
#include "util/err.h"

typedef struct kinf kinf;

typedef struct kinf_opts {
    const kres *res;            /* required; its kind must be one kproj projects */
    const char *ns;             /* NULL or "" = all namespaces */
    const char *label_selector; /* NULL = everything */
    int page_limit;             /* LIST page size; 0 = 500 */
    size_t max_line;            /* cap on one watch event line; 0 = 16 MiB */
    uint64_t seed;              /* jitter and watch timeouts; 0 = from the clock */
    kproj_extend_fn extend;     /* optional: attach a custom value to each projection */
    void *extend_ud;
} kinf_opts;

typedef struct kinf_stats {
    kwatch_stats watch;    /* lists, relists, watches, reconnects, events by type, malformed */
    uint64_t overlong;     /* watch lines dropped for exceeding max_line */
    uint64_t start_errors; /* requests that could not even be started */
} kinf_stats;

/* handlers may be NULL (register later with kcache_add_handlers(kinf_cache())). */
int kinf_new(kinf **out, uv_loop_t *loop, krest *rest, const kinf_opts *opts,
             const kcache_handlers *handlers, operr *err);
/* Begin listing. Returns 0 or -EALREADY. */
int kinf_start(kinf *i);
/* The first full list has been delivered to the cache. */
int kinf_has_synced(const kinf *i);
kcache *kinf_cache(kinf *i);
void kinf_stats_get(const kinf *i, kinf_stats *out);
enum kwatch_state kinf_state(const kinf *i);
/* The last resourceVersion seen ("" before the first list). */
const char *kinf_rv(const kinf *i);
/* Stop and free (see above). on_closed may be NULL. */
void kinf_close(kinf *i, void (*on_closed)(void *ud), void *ud);

#endif
