/*
 * plan: the offline `optipod plan` mode. Workload manifests from files, usage
 * from a file, the same engine as the controller, and the outputs a GitOps
 * repository needs: a table (or json/yaml/csv) and kustomize patches.
 *
 *   plan p; plan_init(&p);
 *   plan_set_policy(&p, pol)            (optional; default: the CRD defaults)
 *   plan_load_manifests(&p, path)       files or directories, any number of times
 *   plan_load_usage(&p, path)           CSV or OpenMetrics text (by content)
 *   plan_run(&p, now)                   aggregate usage, run eng_recommend
 *   plan_render(&p, PLAN_FMT_TABLE, &buf) / plan_export(&p, dir)
 *   plan_release(&p);
 *
 * Problems with one object or one input line (bad YAML, an unknown kind, a
 * malformed usage line, a container without usage) never stop the plan: each
 * is kept as one message in p.diags ("file:line: ..."), p.problems counts
 * them, and the rest is planned. Only I/O and memory failures are returned as
 * errors.
 *
 * Usage files (see docs/sample/README.md for the full description):
 *  - CSV with a header naming the columns, in any order:
 *      timestamp,namespace,pod,container,cpu_cores,memory_bytes,oom
 *    timestamp in Unix seconds; cpu_cores the average cores used since the
 *    previous sample; memory_bytes the working set; oom 1 when the container
 *    was OOMKilled at that time (else 0 or empty). An optional `workload`
 *    column names the workload directly instead of matching by pod name.
 *  - OpenMetrics / Prometheus text exposition with timestamps (seconds):
 *      container_cpu_usage_seconds_total (counter; rates over 5m windows, as
 *      rate(...[5m]) does, with counter resets handled; no extrapolation to
 *      the window edges, and a sample alone in its window gives no rate),
 *      container_memory_working_set_bytes (gauge),
 *      kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}
 *      (a 0 -> 1 edge, or a first sample of 1, counts as one OOM),
 *    all with namespace/pod/container labels.
 * Pods map to workloads by name: a Deployment's pods are
 * <name>-<replicaset hash>-<pod hash>, a StatefulSet's <name>-<ordinal>, a
 * DaemonSet's <name>-<pod hash>; the longest matching workload name in the
 * pod's namespace wins.
 *
 * Ownership: a plan owns everything it holds. plan_init() sets the CRD
 * default policy (a few small strings); plan_release() frees it all and
 * zeroes the plan (plan_init() it again to reuse it).
 */
#ifndef OPTIPOD_PLAN_PLAN_H
#define OPTIPOD_PLAN_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "policy/policy.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/map.h"

#define PLAN_MAX_FILE      ((size_t)64 << 20) /* largest manifest or policy file (usage: no cap) */
#define PLAN_MAX_DEPTH     16                 /* directory / kustomization nesting */
#define PLAN_RATE_WINDOW_S 300                /* rate() window for CPU counters */

typedef enum plan_fmt {
    PLAN_FMT_TABLE = 0,
    PLAN_FMT_JSON,
    PLAN_FMT_YAML,
    PLAN_FMT_CSV,
} plan_fmt;

typedef struct plan_container {
    char *name;
    bool init;
    size_t index;    /* position in containers[] or initContainers[] */
    eng_container c; /* current requests/limits; usage filled by plan_run */
    bool has_usage;
    bool preset;    /* c.use came ready-made (Prometheus), not from series */
    eng_result res; /* valid after plan_run when has_usage */
} plan_container;

typedef struct plan_workload {
    char *kind, *ns, *name, *api_version;
    char *file; /* where it came from */
    int line;   /* document's first line */
    plan_container *ctrs;
    size_t nctrs;
    size_t same_name; /* index + 1 of the next workload with this namespace and name, or 0 */
} plan_workload;

typedef struct plan {
    pol_policy pol;
    eng_policy eng;
    plan_workload *wl;
    size_t nwl, capwl;
    /* Indexes into wl (values: index + 1): "kind\x1fns\x1fname" and "ns\x1fname" (the first
     * of the workloads with that name, chained by same_name). Rebuilt when wl is sorted. */
    opmap by_id, by_name;
    opmap series; /* "ns\x1fpod\x1fcontainer" -> plan_series (usage.c) */
    char **diags; /* one message per problem or note, in order */
    size_t ndiags, capdiags;
    size_t problems;        /* messages that make the exit status 1 */
    int64_t newest;         /* newest usage timestamp seen */
    int64_t now;            /* the decision time used by plan_run */
    int64_t fixed_now;      /* plan_set_now(): the decision time known while reading usage */
    bool keep_history;      /* plan_keep_history(): no sample is dropped (a backtest replays all) */
    int64_t dropped_before; /* samples before this were dropped while reading (0: none) */
    bool ran;
} plan;

void plan_init(plan *p);
void plan_release(plan *p);

/* The policy from an OptimizationPolicy YAML file; without it the plan uses
 * the CRD defaults. Returns 0, or -EINVAL/-errno with `err` set. */
int plan_load_policy(plan *p, const char *path, operr *err);

/* Every *.yaml, *.yml, *.json under `path` (a file or a directory, recursed
 * in byte order of names); a directory with a kustomization.yaml contributes
 * exactly the `resources:` it lists instead. Returns 0 or a negative errno
 * for a path that cannot be read at all (`err` set); per-object problems go
 * to diags. */
int plan_load_manifests(plan *p, const char *path, operr *err);

/* The decision time (Unix seconds), before usage is read: samples that cannot
 * fall in its rolling window are then not kept. Without it the newest sample
 * decides, and samples older than a window before the newest seen so far are
 * dropped as the file is read. */
void plan_set_now(plan *p, int64_t now);
/* Keep every sample read, whatever its age: for a replay of the whole history (backtest),
 * where memory grows with the file instead of the window. */
void plan_keep_history(plan *p);

/* A usage file, CSV or OpenMetrics (decided by the first line), read as a
 * stream: no size cap, and what is kept is each series' samples within the
 * policy's rolling window (memory grows with the number of series, not the
 * file). Same return convention as plan_load_manifests. */
int plan_load_usage(plan *p, const char *path, operr *err);
/* The same on bytes in memory; `name` is used in messages. */
int plan_usage_csv(plan *p, const char *name, const char *buf, size_t len);
int plan_usage_openmetrics(plan *p, const char *name, const char *buf, size_t len);

/* Usage from a Prometheus server (base URL) through the controller's
 * provider, evaluated at `now` (0: the current time) over the policy's
 * rolling window. Call after the manifests are loaded; the provider finds
 * every pod each workload had in the window (metrics/window.h) and a note
 * per namespace says how. Returns 0 or a negative errno with `err` naming
 * the server and namespace. */
int plan_usage_prometheus(plan *p, const char *url, int64_t now, operr *err);
/* The same with auth, CA and headers (metrics/prometheus.h). */
struct mprom_opts;
int plan_usage_prometheus_opts(plan *p, const struct mprom_opts *o, int64_t now, operr *err);

/* One usage sample: Unix seconds and a value (cores, bytes, or 1 for an OOM). */
typedef struct plan_sample {
    int64_t t;
    double v;
} plan_sample;

/* Called once per pod and container with usage, for a container of a
 * workload in the manifests: CPU rates (cores; counters already turned into
 * rates), working-set samples (bytes) and OOM kill times, each sorted by
 * time. Valid during the call only. Non-zero stops the walk (returned). */
typedef int (*plan_usage_cb)(const plan_workload *w, size_t ctr, const char *pod,
                             const plan_sample *cpu, size_t ncpu, const plan_sample *mem,
                             size_t nmem, const plan_sample *oom, size_t noom, void *ud);
/* Walk the loaded usage (after plan_load_usage and the manifests), the way
 * plan_run maps it: a CSV workload column, else the pod naming rules. */
int plan_foreach_usage(plan *p, plan_usage_cb cb, void *ud);

/* Map usage to containers and run the engine. `now` (Unix seconds) is the
 * decision time; 0 means plan_set_now()'s, else the newest usage sample. A
 * `now` whose window reaches before samples dropped while reading adds a
 * problem to diags. Linear in workloads and samples: workloads are found
 * through hash maps. Returns 0 or -ENOMEM. */
int plan_run(plan *p, int64_t now);

/* Append the plan in a format. Returns 0 or an opbuf error. */
int plan_render(const plan *p, plan_fmt fmt, opbuf *out);
/* "table" → PLAN_FMT_TABLE ...; -1 when unknown. */
int plan_fmt_parse(const char *s);

/* Write the kustomize patches and a kustomization.yaml (a kustomize
 * Component, so any overlay can add it with `components:`) into `dir`
 * (created if missing). Files whose bytes would not change are not touched;
 * nothing else in `dir` is removed. `written` (may be NULL) receives the
 * number of patch files. Returns 0 or -errno with `err` naming the file. */
int plan_export(const plan *p, const char *dir, size_t *written, operr *err);

/* Write values-optipod.yaml into `dir`: the recommended resources of every
 * changed container, for Helm charts, in this documented layout:
 *   workloads:
 *     <kind>-<namespace>-<name>:     (lower-case kind, as the patch file stem)
 *       kind: Deployment
 *       namespace: shop
 *       name: web
 *       containers:
 *         <container>:
 *           resources: {limits: {...}, requests: {...}}   (changed values only)
 * Same idempotence rules as plan_export(); `written` gets the workload count. */
int plan_export_helm(const plan *p, const char *dir, size_t *written, operr *err);

/* The same, written by another command: `generator` names it in the headers
 * (NULL: "optipod plan"); with patch_only the patch files are plain
 * strategic-merge patches for `kubectl patch --patch-file`, each headed by
 * the command that applies it, and no kustomization.yaml is written. */
typedef struct plan_export_opts {
    const char *generator;
    bool patch_only;
} plan_export_opts;
int plan_export_with(const plan *p, const char *dir, const plan_export_opts *o, size_t *written,
                     operr *err);
int plan_export_helm_with(const plan *p, const char *dir, const plan_export_opts *o,
                          size_t *written, operr *err);

/* The patch file name of a workload: "deployment-demo-web.yaml". */
int plan_patch_name(const plan_workload *w, char *buf, size_t size);

/* Record a message; `problem` makes it count toward the exit status. */
int plan_diag(plan *p, bool problem, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
