/*
 * tcache: the cache's byte API (kube/cache.h) for tests that build objects as
 * cJSON trees: each prints the object and hands its bytes over, as the
 * informer hands over the spans of a page or a watch line.
 */
#ifndef OPTIPOD_TEST_TCACHE_H
#define OPTIPOD_TEST_TCACHE_H

#include <cJSON.h>

#include "kube/cache.h"

/* kcache_upsert / kcache_remove / kcache_replace_item of obj's JSON text; -ENOMEM when it
 * cannot be printed. */
int tcache_upsert(kcache *c, const cJSON *obj);
int tcache_remove(kcache *c, const cJSON *obj);
int tcache_replace_item(kcache *c, const cJSON *obj);

#endif
