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
    int64_t min_t; /* the oldest t in v (valid when n > 0): nothing to drop before it */
} plan_pts;

/* One container of one pod, as the usage file gives it. Owned by p->series; one allocation with
 * its three names. */
typedef struct plan_series {
    const char *ns, *pod, *ctr; /* in names[] */
    char *workload;             /* CSV `workload` column, or NULL */
    plan_pts cpu;               /* rates in cores (counters until plan_series_finish) */
    bool cpu_counter;
    plan_pts mem;
    plan_pts oom;                  /* OOM events: t, and 1 */
    plan_pts term;                 /* OpenMetrics last_terminated_reason samples */
    struct plan_series *next_hint; /* the series the line after this one's named last time */
    struct plan_series *ahead;     /* and the one three lines after (only ever prefetched) */
    uint16_t ns_n, pod_n, ctr_n;   /* strlen of the three names */
    char names[];
} plan_series;

/* Add a sample to one of p's series; samples that cannot be in the decision window are dropped
 * first when the array is full (see plan_set_now). Returns 0 or -ENOMEM. */
int plan_series_add(plan *p, plan_pts *s, int64_t t, double v);
void plan_series_free(void *s);
/* Find or create the series of ns/pod/container. NULL on ENOMEM. */
plan_series *plan_series_get(plan *p, const char *ns, const char *pod, const char *ctr);
/* Turn counters into rates and termination reasons into OOM events. */
int plan_series_finish(plan_series *s);

/* The workload a pod's series belongs to: the one named `workload` (a CSV workload column) when
 * given, else by the pod naming rules, longest name first; NULL when none. */
plan_workload *plan_find_workload(plan *p, const char *ns, const char *pod, const char *workload);
/* The workload of that kind, namespace and name, or NULL. */
plan_workload *plan_find(plan *p, const char *kind, const char *ns, const char *name);
/* Sort the workloads by (namespace, kind, name) and rebuild the indexes. Returns 0 or -ENOMEM. */
int plan_sort(plan *p);

/* Read a whole (manifest or policy) file, capped at PLAN_MAX_FILE. Returns 0 or -errno. */
int plan_read_file(const char *path, opbuf *out, operr *err);

/* Build the output document of the plan (json and yaml formats). */
cJSON *plan_to_json(const plan *p);

#endif
