#include "support/tcache.h"

#include <errno.h>
#include <string.h>

static int with_text(kcache *c, const cJSON *obj, int (*fn)(kcache *, const char *, size_t))
{
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    if (!s)
        return obj ? -ENOMEM : -EINVAL;
    int rc = fn(c, s, strlen(s));
    cJSON_free(s);
    return rc;
}

int tcache_upsert(kcache *c, const cJSON *obj)
{
    return with_text(c, obj, kcache_upsert);
}

int tcache_remove(kcache *c, const cJSON *obj)
{
    return with_text(c, obj, kcache_remove);
}

int tcache_replace_item(kcache *c, const cJSON *obj)
{
    return with_text(c, obj, kcache_replace_item);
}
