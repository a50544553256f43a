/*
 * kcache: the informer's store of projections, keyed "namespace/name".
 *
 * One kcache holds one resource type. It stores kproj projections only (never
 * JSON trees or managedFields) and calls handlers on add, update (old and new)
 * and delete. Watch events go through kcache_upsert()/kcache_remove(); a list
 * or relist goes through replace_begin/item.../end, which stages the new set
 * and, at the end, delivers a delete for every cached object missing from it,
 * then adds and updates (an update only when the resourceVersion changed).
 * replace_abort() drops the staged set and leaves the cache untouched.
 *
 * Handlers run synchronously and must not modify the cache; the objects they
 * receive are valid only during the call (copy the key to keep a reference,
 * then kcache_get() it later).
 *
 * Secondary indexes, in the shape of client-go's Indexer: a named index
 * function gives the values an object is indexed under ("its namespace", "its
 * controller owner"); the cache keeps, per index, value -> the objects under
 * it, and moves an object between values on every add, update and delete
 * (also the ones a relist delivers), before the handlers run. A lookup then
 * costs what is under the value, not what the cache holds.
 *
 * Ownership: kcache_init() allocates nothing; kcache_release() frees every
 * projection and index. kcache_put() takes ownership of the projection it is
 * given.
 */
#ifndef OPTIPOD_KUBE_CACHE_H
#define OPTIPOD_KUBE_CACHE_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "kube/project.h"
#include "util/map.h"

#define KCACHE_MAX_HANDLERS 8
#define KCACHE_KEY_MAX      512 /* namespace (63) + '/' + name (253), with room */
#define KCACHE_MAX_INDEXES  4
#define KCACHE_INDEX_VALUES 8 /* values one object may be indexed under */

/* An index function: write the values o is indexed under into vals[0..max)
 * (NUL-terminated, at most KCACHE_KEY_MAX bytes each; a longer one is not
 * indexed) and return how many (0: o is not in the index). Pure: called again
 * with the same object, it must give the same values. */
typedef int (*kcache_index_fn)(const kproj_obj *o, char (*vals)[KCACHE_KEY_MAX], int max, void *ud);

typedef struct kcache_index {
    char name[32];
    kcache_index_fn fn;
    void *ud;
    opmap values; /* value → kcache_bucket* */
} kcache_index;

typedef struct kcache_handlers {
    void (*on_add)(const kproj_obj *o, void *ud);
    void (*on_update)(const kproj_obj *old, const kproj_obj *cur, void *ud);
    void (*on_delete)(const kproj_obj *o, void *ud);
    void *ud;
} kcache_handlers;

typedef struct kcache {
    enum kproj_kind kind;
    opmap objs;    /* key → kproj_obj* */
    opmap staging; /* the set being replaced in */
    int replacing;
    kcache_handlers h[KCACHE_MAX_HANDLERS];
    int nh;
    size_t bytes;           /* sum of the cached projections' sizes */
    size_t entry_bytes;     /* the map's entries (key copies included) */
    uint64_t skipped;       /* objects that could not be projected */
    kproj_extend_fn extend; /* optional hook run on every fresh projection */
    void *extend_ud;
    kcache_index idx[KCACHE_MAX_INDEXES];
    int nidx;
    size_t idx_bytes; /* the indexes' buckets and member arrays */
} kcache;

void kcache_init(kcache *c, enum kproj_kind kind);
void kcache_release(kcache *c);
/* Attach a custom value to every projection from now on (a parsed policy
 * instead of its JSON). fn NULL removes the hook. */
void kcache_set_extend(kcache *c, kproj_extend_fn fn, void *ud);
/* Register handlers (copied). Returns 0 or -ENOSPC. */
int kcache_add_handlers(kcache *c, const kcache_handlers *h);

/* Insert or replace a projection (ownership taken, also on failure); fires add or update. */
int kcache_put(kcache *c, kproj_obj *o);
/* Objects arrive as their JSON bytes, a span a validating scan accepted (kube/projscan.h's
 * list and event parsers give them): projected without a DOM (the extend hook, when set, is
 * handed the object parsed with cJSON). */

/* Project and put an object (ADDED/MODIFIED). Returns 0, -EINVAL or -ENOMEM. */
int kcache_upsert(kcache *c, const char *json, size_t len);
/* Remove by key; fires delete with the cached projection. Returns 0 or -ENOENT. */
int kcache_del(kcache *c, const char *ns, const char *name);
/* Remove the object a DELETED event names. */
int kcache_remove(kcache *c, const char *json, size_t len);

void kcache_replace_begin(kcache *c);
int kcache_replace_item(kcache *c, const char *json, size_t len);
void kcache_replace_end(kcache *c);
void kcache_replace_abort(kcache *c);

const kproj_obj *kcache_get(const kcache *c, const char *ns, const char *name);
const kproj_obj *kcache_get_key(const kcache *c, const char *key);
size_t kcache_count(const kcache *c);
/* Bytes held for the cached objects: projections, the map's entries and buckets, the indexes
 * (malloc's own per-block overhead is not included). O(1). */
size_t kcache_mem_bytes(const kcache *c);
/* Call fn for every cached object until it returns non-zero (returned). */
int kcache_foreach(const kcache *c, int (*fn)(const kproj_obj *o, void *ud), void *ud);

/* Add an index (the objects already cached are indexed at once). Returns 0,
 * -EEXIST (the name is taken), -ENOSPC or -ENOMEM. */
int kcache_add_index(kcache *c, const char *name, kcache_index_fn fn, void *ud);
/* The objects under `value` in index `name`, in no particular order: *objs is
 * borrowed and valid until the cache next changes; *n is 0 when none. Returns
 * 0, or -ENOENT when the cache has no such index. */
int kcache_by_index(const kcache *c, const char *name, const char *value,
                    const kproj_obj *const **objs, size_t *n);
/* Call fn for each object under `value` in index `name` until it returns
 * non-zero (returned); -ENOENT when there is no such index. fn must not change
 * the cache. */
int kcache_index_foreach(const kcache *c, const char *name, const char *value,
                         int (*fn)(const kproj_obj *o, void *ud), void *ud);

#endif
