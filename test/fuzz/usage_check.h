/*
 * Shared body of the usage-file fuzzers (CSV and OpenMetrics): parse arbitrary
 * bytes, then check what every parser of usage data promises: at most 20
 * malformed lines reported plus one count, every series sorted by time with
 * finite, non-negative values (counter resets handled, so no negative rate),
 * and a plan that runs and renders.
 */
#ifndef OPTIPOD_FUZZ_USAGE_CHECK_H
#define OPTIPOD_FUZZ_USAGE_CHECK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "plan/internal.h"

static void usage_check_series(const plan_pts *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!isfinite(s->v[i].v) || s->v[i].v < 0)
            __builtin_trap();
        if (i && s->v[i].t < s->v[i - 1].t)
            __builtin_trap();
    }
}

static void usage_check(int (*parse)(plan *, const char *, const char *, size_t),
                        const uint8_t *data, size_t size)
{
    plan p;
    plan_init(&p);
    if (parse(&p, "fuzz", (const char *)data, size) == 0) {
        if (p.ndiags > 22)
            __builtin_trap();
        opmap_iter it;
        opmap_iter_init(&it, &p.series);
        opmap_entry *e;
        while ((e = opmap_next(&it))) {
            plan_series *s = e->value;
            usage_check_series(&s->cpu);
            usage_check_series(&s->mem);
            usage_check_series(&s->oom);
        }
        opbuf b;
        opbuf_init(&b, OPBUF_DEFAULT_MAX);
        if (plan_run(&p, 0) == 0 && plan_render(&p, PLAN_FMT_TABLE, &b) != 0)
            __builtin_trap();
        opbuf_release(&b);
    }
    plan_release(&p);
}

#endif
