#include "kube/cache.h"
#include "kube/projscan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* ---- secondary indexes --------------------------------------------------------------------- */

/* The objects under one value of one index (order not kept: removal swaps in the last). */
typedef struct kcache_bucket {
    size_t n, cap;
    const kproj_obj **objs;
} kcache_bucket;

static void kcache_bucket_free(void *v)
{
    kcache_bucket *b = v;
    free(b->objs);
    free(b);
}

static void kcache_index_release(kcache *c)
{
    for (int i = 0; i < c->nidx; i++)
        opmap_release(&c->idx[i].values, kcache_bucket_free);
    c->nidx = 0;
    c->idx_bytes = 0;
}

/* ix's values for o, without duplicates or unterminated ones. */
static int kcache_index_values(const kcache_index *ix, const kproj_obj *o,
                               char (*vals)[KCACHE_KEY_MAX])
{
    int n = ix->fn(o, vals, KCACHE_INDEX_VALUES, ix->ud), m = 0;
    for (int i = 0; i < n && i < KCACHE_INDEX_VALUES; i++) {
        if (!memchr(vals[i], 0, KCACHE_KEY_MAX))
            continue;
        int dup = 0;
        for (int k = 0; k < m && !dup; k++)
            dup = strcmp(vals[k], vals[i]) == 0;
        if (!dup && m++ != i)
            memmove(vals[m - 1], vals[i], strlen(vals[i]) + 1);
    }
    return m;
}

static int kcache_index_add(kcache *c, kcache_index *ix, const kproj_obj *o)
{
    char vals[KCACHE_INDEX_VALUES][KCACHE_KEY_MAX];
    int n = kcache_index_values(ix, o, vals);
    for (int i = 0; i < n; i++) {
        kcache_bucket *b = opmap_get(&ix->values, vals[i]);
        if (!b) {
            b = calloc(1, sizeof *b);
            if (!b || opmap_put(&ix->values, vals[i], b, NULL) != 0) {
                free(b);
                return -ENOMEM;
            }
            c->idx_bytes += sizeof *b + sizeof(opmap_entry) + strlen(vals[i]) + 1;
        }
        if (b->n == b->cap) {
            size_t ncap = b->cap ? b->cap * 2 : 2;
            const kproj_obj **no = realloc(b->objs, ncap * sizeof *no);
            if (!no)
                return -ENOMEM;
            c->idx_bytes += (ncap - b->cap) * sizeof *no;
            b->objs = no;
            b->cap = ncap;
        }
        b->objs[b->n++] = o;
    }
    return 0;
}

static void kcache_index_remove(kcache *c, kcache_index *ix, const kproj_obj *o)
{
    char vals[KCACHE_INDEX_VALUES][KCACHE_KEY_MAX];
    int n = kcache_index_values(ix, o, vals);
    for (int i = 0; i < n; i++) {
        kcache_bucket *b = opmap_get(&ix->values, vals[i]);
        for (size_t k = 0; b && k < b->n; k++) {
            if (b->objs[k] != o)
                continue;
            b->objs[k] = b->objs[--b->n];
            break;
        }
        if (b && b->n == 0) {
            c->idx_bytes -=
                sizeof *b + sizeof(opmap_entry) + strlen(vals[i]) + 1 + b->cap * sizeof *b->objs;
            kcache_bucket_free(opmap_del(&ix->values, vals[i]));
        }
    }
}

/* Move an object between values: old leaves (NULL: an add), cur enters (NULL: a delete). */
static void kcache_index_update(kcache *c, const kproj_obj *old, const kproj_obj *cur)
{
    for (int i = 0; i < c->nidx; i++) {
        if (old)
            kcache_index_remove(c, &c->idx[i], old);
        if (cur && kcache_index_add(c, &c->idx[i], cur) != 0)
            OPLOG_E("cache %s: out of memory indexing an object by %s; lookups by it may miss "
                    "it",
                    kproj_kind_name(c->kind), c->idx[i].name);
    }
}

int kcache_add_index(kcache *c, const char *name, kcache_index_fn fn, void *ud)
{
    for (int i = 0; i < c->nidx; i++)
        if (strcmp(c->idx[i].name, name) == 0)
            return -EEXIST;
    if (c->nidx == KCACHE_MAX_INDEXES)
        return -ENOSPC;
    if (strlen(name) >= sizeof c->idx[0].name)
        return -EINVAL;
    kcache_index *ix = &c->idx[c->nidx];
    snprintf(ix->name, sizeof ix->name, "%s", name);
    ix->fn = fn;
    ix->ud = ud;
    opmap_init(&ix->values);
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &c->objs);
    while ((e = opmap_next(&it)) != NULL) {
        if (kcache_index_add(c, ix, e->value) != 0) {
            opmap_release(&ix->values, kcache_bucket_free);
            return -ENOMEM;
        }
    }
    c->nidx++;
    return 0;
}

static const kcache_index *kcache_index_named(const kcache *c, const char *name)
{
    for (int i = 0; i < c->nidx; i++)
        if (strcmp(c->idx[i].name, name) == 0)
            return &c->idx[i];
    return NULL;
}

int kcache_by_index(const kcache *c, const char *name, const char *value,
                    const kproj_obj *const **objs, size_t *n)
{
    const kcache_index *ix = kcache_index_named(c, name);
    *objs = NULL;
    *n = 0;
    if (!ix)
        return -ENOENT;
    const kcache_bucket *b = opmap_get(&ix->values, value);
    if (b) {
        *objs = b->objs;
        *n = b->n;
    }
    return 0;
}

int kcache_index_foreach(const kcache *c, const char *name, const char *value,
                         int (*fn)(const kproj_obj *o, void *ud), void *ud)
{
    const kproj_obj *const *objs;
    size_t n;
    int rc = kcache_by_index(c, name, value, &objs, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = fn(objs[i], ud);
    return rc;
}

/* ---- the cache ------------------------------------------------------------------------------ */

/* What one entry of the map costs beside its projection (kept as objects come and go, so
 * kcache_mem_bytes() is O(1): /metrics reads it on every scrape). */
static size_t kcache_entry_size(const char *key)
{
    return sizeof(opmap_entry) + strlen(key) + 1;
}

void kcache_init(kcache *c, enum kproj_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    opmap_init(&c->objs);
    opmap_init(&c->staging);
}

static void kcache_free_value(void *v)
{
    kproj_free(v);
}

void kcache_release(kcache *c)
{
    kcache_index_release(c);
    opmap_release(&c->objs, kcache_free_value);
    opmap_release(&c->staging, kcache_free_value);
    c->replacing = 0;
    c->bytes = 0;
    c->entry_bytes = 0;
}

void kcache_set_extend(kcache *c, kproj_extend_fn fn, void *ud)
{
    c->extend = fn;
    c->extend_ud = ud;
}

int kcache_add_handlers(kcache *c, const kcache_handlers *h)
{
    if (c->nh >= KCACHE_MAX_HANDLERS)
        return -ENOSPC;
    c->h[c->nh++] = *h;
    return 0;
}

static void kcache_fire_add(kcache *c, const kproj_obj *o)
{
    for (int i = 0; i < c->nh; i++) {
        if (c->h[i].on_add)
            c->h[i].on_add(o, c->h[i].ud);
    }
}

static void kcache_fire_update(kcache *c, const kproj_obj *old, const kproj_obj *cur)
{
    for (int i = 0; i < c->nh; i++) {
        if (c->h[i].on_update)
            c->h[i].on_update(old, cur, c->h[i].ud);
    }
}

static void kcache_fire_delete(kcache *c, const kproj_obj *o)
{
    for (int i = 0; i < c->nh; i++) {
        if (c->h[i].on_delete)
            c->h[i].on_delete(o, c->h[i].ud);
    }
}

static int kcache_key_of(const kproj_obj *o, char *key)
{
    return kproj_key(key, KCACHE_KEY_MAX, o->ns, o->name);
}

/* Project an object from its JSON bytes (a span a validating scan accepted: kube/projscan.h)
 * and run the extend hook, which wants a cJSON object: only caches with a hook parse one. */
static int kcache_project(kcache *c, const char *json, size_t len, kproj_obj **out)
{
    int rc = kprojs_from_valid(json, len, c->kind, out);
    if (!rc && c->extend) {
        cJSON *obj = cJSON_ParseWithLength(json, len);
        rc = obj ? c->extend(obj, *out, c->extend_ud) : -EINVAL;
        cJSON_Delete(obj);
        if (rc) {
            kproj_free(*out);
            *out = NULL;
        }
    }
    if (rc) {
        c->skipped++;
        OPLOG_W("cache %s: object skipped: cannot project it (%s)", kproj_kind_name(c->kind),
                strerror(-rc));
    }
    return rc;
}

static int rv_equal(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Store o; deliver add or, when `changed_only`, update only if the RV moved. */
static int kcache_store(kcache *c, kproj_obj *o, int changed_only)
{
    char key[KCACHE_KEY_MAX];
    void *prev = NULL;
    int rc = kcache_key_of(o, key);
    if (!rc)
        rc = opmap_put(&c->objs, key, o, &prev);
    if (rc) {
        kproj_free(o);
        return rc;
    }
    kproj_obj *old = prev;
    c->bytes += o->size;
    if (!old)
        c->entry_bytes += kcache_entry_size(key);
    kcache_index_update(c, old, o);
    if (!old) {
        kcache_fire_add(c, o);
    } else {
        c->bytes -= old->size;
        if (!changed_only || !rv_equal(old->rv, o->rv))
            kcache_fire_update(c, old, o);
        kproj_free(old);
    }
    return 0;
}

int kcache_put(kcache *c, kproj_obj *o)
{
    return kcache_store(c, o, 0);
}

int kcache_upsert(kcache *c, const char *json, size_t len)
{
    kproj_obj *o;
    int rc = kcache_project(c, json, len, &o);
    return rc ? rc : kcache_put(c, o);
}

int kcache_del(kcache *c, const char *ns, const char *name)
{
    char key[KCACHE_KEY_MAX];
    if (kproj_key(key, sizeof key, ns, name))
        return -ENOENT;
    kproj_obj *o = opmap_del(&c->objs, key);
    if (!o)
        return -ENOENT;
    c->bytes -= o->size;
    c->entry_bytes -= kcache_entry_size(key);
    kcache_index_update(c, o, NULL);
    kcache_fire_delete(c, o);
    kproj_free(o);
    return 0;
}

int kcache_remove(kcache *c, const char *json, size_t len)
{
    kproj_obj *o;
    int rc = kprojs_from_valid(json, len, c->kind, &o);
    if (rc)
        return rc;
    rc = kcache_del(c, o->ns, o->name);
    kproj_free(o);
    return rc;
}

void kcache_replace_begin(kcache *c)
{
    opmap_release(&c->staging, kcache_free_value);
    c->replacing = 1;
}

/* Put a projection into the staged set (ownership taken). */
static int kcache_stage(kcache *c, kproj_obj *o)
{
    char key[KCACHE_KEY_MAX];
    void *prev = NULL;
    int rc = kcache_key_of(o, key);
    if (!rc)
        rc = opmap_put(&c->staging, key, o, &prev);
    if (rc)
        kproj_free(o);
    kproj_free(prev);
    return rc;
}

int kcache_replace_item(kcache *c, const char *json, size_t len)
{
    kproj_obj *o;
    if (!c->replacing)
        return -EINVAL;
    int rc = kcache_project(c, json, len, &o);
    return rc ? rc : kcache_stage(c, o);
}

void kcache_replace_end(kcache *c)
{
    if (!c->replacing)
        return;
    c->replacing = 0;
    /* Deletions first: whatever the new set does not hold is gone. */
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &c->objs);
    for (e = opmap_next(&it); e; e = opmap_next(&it)) {
        if (opmap_get(&c->staging, e->key))
            continue;
        c->entry_bytes -= kcache_entry_size(e->key);
        kproj_obj *o = opmap_del(&c->objs, e->key);
        c->bytes -= o->size;
        kcache_index_update(c, o, NULL);
        kcache_fire_delete(c, o);
        kproj_free(o);
    }
    /* Then adds and (changed) updates; the staged projections move over. */
    opmap_iter_init(&it, &c->staging);
    for (e = opmap_next(&it); e; e = opmap_next(&it)) {
        kproj_obj *o = opmap_del(&c->staging, e->key);
        if (kcache_store(c, o, 1) != 0)
            OPLOG_E("cache %s: out of memory storing an object", kproj_kind_name(c->kind));
    }
    opmap_release(&c->staging, kcache_free_value);
}

void kcache_replace_abort(kcache *c)
{
    opmap_release(&c->staging, kcache_free_value);
    c->replacing = 0;
}

const kproj_obj *kcache_get_key(const kcache *c, const char *key)
{
    return opmap_get(&c->objs, key);
}

const kproj_obj *kcache_get(const kcache *c, const char *ns, const char *name)
{
    char key[KCACHE_KEY_MAX];
    if (kproj_key(key, sizeof key, ns, name))
        return NULL;
    return kcache_get_key(c, key);
}

size_t kcache_count(const kcache *c)
{
    return opmap_count(&c->objs);
}

size_t kcache_mem_bytes(const kcache *c)
{
    size_t n = c->bytes + c->entry_bytes + c->idx_bytes + c->objs.nbuckets * sizeof(opmap_entry *);
    for (int i = 0; i < c->nidx; i++)
        n += c->idx[i].values.nbuckets * sizeof(opmap_entry *);
    return n;
}

int kcache_foreach(const kcache *c, int (*fn)(const kproj_obj *o, void *ud), void *ud)
{
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &c->objs);
    for (e = opmap_next(&it); e; e = opmap_next(&it)) {
        int rc = fn(e->value, ud);
        if (rc)
            return rc;
    }
    return 0;
}
