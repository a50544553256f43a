#include "kube/cache.h"
#include "kube/projscan.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"

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
    opmap_release(&c->objs, kcache_free_value);
    opmap_release(&c->staging, kcache_free_value);
    c->replacing = 0;
    c->bytes = 0;
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
        kproj_obj *o = opmap_del(&c->objs, e->key);
        c->bytes -= o->size;
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
    size_t n = c->bytes + c->objs.nbuckets * sizeof(opmap_entry *);
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &c->objs);
    for (e = opmap_next(&it); e; e = opmap_next(&it))
        n += sizeof *e + strlen(e->key) + 1;
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
