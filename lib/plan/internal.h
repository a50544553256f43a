/*
 * plan internals shared by the plan_*.c files: the per-pod usage series and
 * small helpers. Not part of the public API.
 */
#ifndef OPTIPOD_PLAN_INTERNAL_H
#define OPTIPOD_PLAN_INTERNAL_H

#include <stdint.h>

#include "plan/plan.h"

typedef struct plan_pt {
    int64_t t;
    double v;
} plan_pt;

typedef struct plan_pts {
    plan_pt *v;
    size_t n, cap;
} plan_pts;

/* One container of one pod, as the usage file gives it. Owned by p->series. */
typedef struct plan_series {
    char *ns, *pod, *ctr;
    char *workload; /* CSV `workload` column, or NULL */
    plan_pts cpu;   /* rates in cores (counters until plan_series_finish) */
    bool cpu_counter;
    plan_pts mem;
    plan_pts oom;  /* OOM events: t, and 1 */
    plan_pts term; /* OpenMetrics last_terminated_reason samples */
} plan_series;

int plan_pts_add(plan_pts *s, int64_t t, double v);
void plan_series_free(void *s);
/* Find or create the series of ns/pod/container. NULL on ENOMEM. */
plan_series *plan_series_get(plan *p, const char *ns, const char *pod, const char *ctr);
/* Turn counters into rates and termination reasons into OOM events. */
int plan_series_finish(plan_series *s);

/* The workload a series belongs to (its workload column, else the pod naming
 * rules, longest name first), or NULL. */
plan_workload *plan_find_workload(plan *p, const plan_series *s);
/* Sort the workloads by (namespace, kind, name). */
void plan_sort(plan *p);

/* Read a whole file, capped at PLAN_MAX_FILE. Returns 0 or -errno. */
int plan_read_file(const char *path, opbuf *out, operr *err);

/* Build the output document of the plan (json and yaml formats). */
cJSON *plan_to_json(const plan *p);

#endif
