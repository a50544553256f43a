#include "util/map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: short keys (namespace/name), no adversarial input worth SipHash here. */
uint64_t opmap_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void opmap_init(opmap *m)
{
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void opmap_release(opmap *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        opmap_entry *e = m->buckets[i];
        while (e) {
            opmap_entry *next = e->next;
            if (free_value)
                free_value(e->value);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    opmap_init(m);
}

static opmap_entry **opmap_slot(const opmap *m, const char *key, uint64_t h)
{
    opmap_entry **pp = &m->buckets[h & (m->nbuckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *opmap_get(const opmap *m, const char *key)
{
    if (!m->nbuckets)
        return NULL;
    opmap_entry *e = *opmap_slot(m, key, opmap_hash(key));
    return e ? e->value : NULL;
}

static int opmap_resize(opmap *m, size_t n)
{
    opmap_entry **nb = calloc(n, sizeof *nb);
    if (!nb)
        return -ENOMEM;
    for (size_t i = 0; i < m->nbuckets; i++) {
        opmap_entry *e = m->buckets[i];
        while (e) {
            opmap_entry *next = e->next;
            e->next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = nb;
    m->nbuckets = n;
    return 0;
}

int opmap_put(opmap *m, const char *key, void *value, void **old)
{
    if (old)
        *old = NULL;
    if (m->count + 1 > m->nbuckets - m->nbuckets / 4 || !m->nbuckets) {
        int rc = opmap_resize(m, m->nbuckets ? m->nbuckets * 2 : 16);
        if (rc)
            return rc;
    }
    uint64_t h = opmap_hash(key);
    opmap_entry **pp = opmap_slot(m, key, h);
    if (*pp) {
        if (old)
            *old = (*pp)->value;
        (*pp)->value = value;
        return 0;
    }
    size_t klen = strlen(key);
    opmap_entry *e = malloc(sizeof *e + klen + 1);
    if (!e)
        return -ENOMEM;
    e->next = NULL;
    e->hash = h;
    e->value = value;
    memcpy(e->key, key, klen + 1);
    *pp = e;
    m->count++;
    return 0;
}

void *opmap_del(opmap *m, const char *key)
{
    if (!m->nbuckets)
        return NULL;
    opmap_entry **pp = opmap_slot(m, key, opmap_hash(key));
    opmap_entry *e = *pp;
    if (!e)
        return NULL;
    void *v = e->value;
    *pp = e->next;
    free(e);
    m->count--;
    return v;
}

size_t opmap_count(const opmap *m)
{
    return m->count;
}

void opmap_iter_init(opmap_iter *it, const opmap *m)
{
    it->map = m;
    it->bucket = 0;
    it->next = NULL;
    while (it->bucket < m->nbuckets && !(it->next = m->buckets[it->bucket]))
        it->bucket++;
}

opmap_entry *opmap_next(opmap_iter *it)
{
    opmap_entry *cur = it->next;
    if (!cur)
        return NULL;
    it->next = cur->next;
    while (!it->next && ++it->bucket < it->map->nbuckets)
        it->next = it->map->buckets[it->bucket];
    return cur;
}
