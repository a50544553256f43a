/*
 * opmap: a string-keyed hash map (separate chaining, power-of-two buckets).
 *
 * Keys are copied in; values are opaque pointers the caller owns. The map never
 * frees a value: opmap_release() takes an optional destructor for that.
 * Iteration order is unspecified. Removing the current entry during
 * opmap_next() iteration is allowed (the iterator has already moved on).
 */
#ifndef OPTIPOD_UTIL_MAP_H
#define OPTIPOD_UTIL_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct opmap_entry {
    struct opmap_entry *next;
    uint64_t hash;
    void *value;
    char key[]; /* NUL-terminated copy */
} opmap_entry;

typedef struct opmap {
    opmap_entry **buckets;
    size_t nbuckets; /* 0 or a power of two */
    size_t count;
} opmap;

typedef struct opmap_iter {
    const opmap *map;
    size_t bucket;
    opmap_entry *next;
} opmap_iter;

void opmap_init(opmap *m);
/* Free every entry; call `free_value` on each value when non-NULL. */
void opmap_release(opmap *m, void (*free_value)(void *));
void *opmap_get(const opmap *m, const char *key);
/* Insert or replace. If `old` is non-NULL it receives the replaced value (or NULL).
 * Returns 0 or -ENOMEM. */
int opmap_put(opmap *m, const char *key, void *value, void **old);
/* Remove; returns the value that was stored, or NULL. */
void *opmap_del(opmap *m, const char *key);
size_t opmap_count(const opmap *m);

void opmap_iter_init(opmap_iter *it, const opmap *m);
/* Returns the next entry or NULL at the end. */
opmap_entry *opmap_next(opmap_iter *it);

uint64_t opmap_hash(const char *s);

#endif
