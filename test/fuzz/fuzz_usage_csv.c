/*
 * plan_usage_csv() on arbitrary bytes: never crashes or leaks, reports at most
 * 20 malformed lines plus one count, and leaves every series sorted by time
 * with finite, non-negative values (CPU rates included: counter resets are
 * handled, so a rate is never negative).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "plan/internal.h"

static void check(const plan_pts *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!isfinite(s->v[i].v) || s->v[i].v < 0)
            __builtin_trap();
        if (i && s->v[i].t < s->v[i - 1].t)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    plan p;
    plan_init(&p);
    if (plan_usage_csv(&p, "fuzz", (const char *)data, size) == 0) {
        if (p.ndiags > 22)
            __builtin_trap();
        opmap_iter it;
        opmap_iter_init(&it, &p.series);
        opmap_entry *e;
        while ((e = opmap_next(&it))) {
            plan_series *s = e->value;
            check(&s->cpu);
            check(&s->mem);
            check(&s->oom);
        }
        opbuf b;
        opbuf_init(&b, OPBUF_DEFAULT_MAX);
        if (plan_run(&p, 0) == 0 && plan_render(&p, PLAN_FMT_TABLE, &b) != 0)
            __builtin_trap();
        opbuf_release(&b);
    }
    plan_release(&p);
    return 0;
}
