/*
 * opyaml_load() on arbitrary bytes, then every accessor over the whole tree.
 * Must never crash, leak or run away with memory (the limits hold).
 */
#include <stddef.h>
#include <stdint.h>

#include "util/yamldoc.h"

static size_t walk(const opyaml_node *n, unsigned depth)
{
    size_t sum = 0;
    int b;
    int64_t v;
    if (!n)
        return 0;
    sum += (size_t)opyaml_is_null(n) + (opyaml_bool(n, &b) == 0) + (opyaml_int64(n, &v) == 0);
    sum += opyaml_str(n) ? 1 : 0;
    sum += opyaml_kind_name(n)[0];
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == OPYAML_MAP) {
            const opyaml_pair *p = &n->pairs[i];
            /* a lookup by each key finds a pair with that key (the first one) */
            if (p->key->len == __builtin_strlen(p->key->str)) {
                const opyaml_pair *q = opyaml_get_pair(n, p->key->str);
                if (!q || q->key->len != p->key->len)
                    __builtin_trap();
            }
            sum += walk(p->key, depth + 1) + walk(p->value, depth + 1);
        } else {
            if (opyaml_at(n, i) != n->items[i])
                __builtin_trap();
            sum += walk(n->items[i], depth + 1);
        }
    }
    if (depth > OPYAML_MAX_DEPTH + 1)
        __builtin_trap();
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    opyaml_doc d;
    operr err;
    opyaml_limits lim = {.max_nodes = 20000};
    opyaml_init(&d);
    if (opyaml_load(&d, (const char *)data, size, &lim, &err) == 0) {
        if (d.nodes > lim.max_nodes)
            __builtin_trap();
        for (size_t i = 0; i < d.nroots; i++)
            (void)walk(d.roots[i], 0);
    } else if (d.nroots != 0 || err.msg[0] == '\0') {
        __builtin_trap();
    }
    opyaml_release(&d);
    return 0;
}
