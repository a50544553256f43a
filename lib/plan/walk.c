/*
 * plan walk: the loaded usage series, one pod and container at a time, for
 * readers other than plan_run (the backtest). See plan_foreach_usage().
 */
#include <stddef.h>
#include <string.h>

#include "plan/internal.h"

/* The internal points are handed out as they are. */
_Static_assert(sizeof(plan_pt) == sizeof(plan_sample), "plan_pt layout");
_Static_assert(offsetof(plan_pt, t) == offsetof(plan_sample, t), "plan_pt layout");
_Static_assert(offsetof(plan_pt, v) == offsetof(plan_sample, v), "plan_pt layout");

int plan_foreach_usage(plan *p, plan_usage_cb cb, void *ud)
{
    opmap_iter it;
    opmap_iter_init(&it, &p->series);
    opmap_entry *e;
    while ((e = opmap_next(&it))) {
        const plan_series *s = e->value;
        plan_workload *w = plan_find_workload(p, s->ns, s->pod, s->workload);
        for (size_t i = 0; w && i < w->nctrs; i++) {
            if (strcmp(w->ctrs[i].name, s->ctr) != 0)
                continue;
            int rc = cb(w, i, s->pod, (const plan_sample *)s->cpu.v, s->cpu.n,
                        (const plan_sample *)s->mem.v, s->mem.n, (const plan_sample *)s->oom.v,
                        s->oom.n, ud);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}
