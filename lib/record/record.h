/*
 * rrec: the OptimizationRecommendation record, optipod's one source of truth
 * for what it recommends for a workload (crds/optimizationrecommendations.optipod.io.yaml,
 * docs/recommendation.md).
 *
 * One namespaced object per managed workload, named after it ("deployment-web",
 * see rrec_name()), owned by it (ownerReference, so the garbage collector
 * removes it with the workload), written by the controller under every mode
 * and strategy with server-side apply as fieldManager optipod, read by
 * kubectl-optipod and by plain `kubectl get oprec`.
 *
 *   spec    what the record is about: targetRef (apiVersion, kind, name, uid),
 *           the policy ("ns/name"), its mode and strategy, and the usage
 *           source (provider, window, percentile, safety factor).
 *   status  per container: current and recommended requests and limits,
 *           samples and the span they cover, the rule that decided, applied
 *           (live values equal the recommendation), conflicting managers, and
 *           the engine's explanation; plus the decision time and the summary
 *           the printer columns show (applied, samples, "500m->315m").
 * The CRD has no status subresource: the record is written whole in one apply.
 *
 * rrec_build() and rrec_parse() are inverse (a parsed build equals its input);
 * rrec_same() compares all but the time, rrec_same_decision() also leaves out
 * the usage figures, so the controller writes when the decision changed and
 * refreshes the figures only now and then. Pure: no I/O.
 *
 * Ownership: rrec_init() zeroes; the explanation strings are owned by the
 * record and freed by rrec_release(). Every other field is a fixed array.
 */
#ifndef OPTIPOD_RECORD_RECORD_H
#define OPTIPOD_RECORD_RECORD_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "kube/project.h"
#include "util/buf.h"
#include "util/err.h"

#define RREC_API_VERSION    "optipod.io/v1alpha1"
#define RREC_KIND           "OptimizationRecommendation"
#define RREC_MAX_CONTAINERS 32
#define RREC_NAME_MAX       253 /* a DNS subdomain */
#define RREC_QTY            32
#define RREC_CONFLICTS      256
#define RREC_EXPLAIN_MAX    4096 /* per container; longer explanations lose their steps */

/* Value slots, in this order everywhere (as cli's CLI_CPU_REQ...). */
enum { RREC_CPU_REQ, RREC_MEM_REQ, RREC_CPU_LIM, RREC_MEM_LIM, RREC_NV };

typedef struct rrec_container {
    char name[64]; /* a DNS label */
    int init;
    char cur[RREC_NV][RREC_QTY]; /* live spec values; "" = unset */
    char rec[RREC_NV][RREC_QTY]; /* recommended; "" = none */
    int64_t samples;             /* usage samples behind it; -1 unknown */
    int64_t span_s;              /* seconds those samples cover; -1 unknown */
    char rule[128];              /* "apply", "unchanged: within-threshold", "skipped: hpa-cpu"... */
    int applied;                 /* every recommended value equals the live one */
    char conflicts[RREC_CONFLICTS]; /* other managers owning its resources, ", "-joined */
    char *explanation; /* owned: {"cpu":{...},"memory":{...}} from eng_result_json, or NULL */
} rrec_container;

typedef struct rrec {
    char ns[64];
    char name[RREC_NAME_MAX + 1];                                       /* the record's own name */
    char api_version[64], kind[32], target[RREC_NAME_MAX + 1], uid[64]; /* the workload */
    char policy[320];                                                   /* "ns/name" */
    char mode[16], strategy[16];
    char provider[32], window[32];
    double percentile, safety_factor; /* 0 when unknown */
    char history[32];                 /* how the window's pods were found ("" unknown) ... */
    double history_pods;              /* ... and how many */
    char time[32];                    /* RFC 3339, when the controller decided */
    size_t n;
    rrec_container c[RREC_MAX_CONTAINERS];
} rrec;

void rrec_init(rrec *r);
void rrec_release(rrec *r);

/* The record's name for a workload: lower-case kind, '-', name
 * ("Deployment", "web" -> "deployment-web"). One longer than 253 characters
 * keeps its first 244 and a '-' and 8 hex digits of a hash of the whole.
 * -EINVAL on an empty kind or name. */
int rrec_name(char *buf, size_t size, const char *kind, const char *name);

/* Set a container's explanation (a copy of the JSON text; NULL clears). */
int rrec_set_explanation(rrec_container *c, const char *json);

/* Is every container with a recommendation applied (and is there one)? */
int rrec_applied(const rrec *r);
/* The fewest samples behind any recommendation; -1 when none is known. */
int64_t rrec_samples(const rrec *r);

/* The object to apply: apiVersion, kind, metadata (name, namespace, the
 * app.kubernetes.io/managed-by label, ownerReferences to the workload when
 * uid is known), spec and status as described above. */
int rrec_build(const rrec *r, opbuf *body, operr *err);

/* Read a record as the API server returns it. Refuses (err naming the field)
 * a missing or mistyped field the record needs; ignores fields it does not
 * know (a newer controller's) and the derived summary fields. */
int rrec_parse(const cJSON *obj, rrec *out, operr *err);

/* Equal in everything but the time. */
int rrec_same(const rrec *a, const rrec *b);
/* Equal in the decision: everything but the time and the usage figures that
 * move with every query (samples, spanSeconds, historyPods, the explanation,
 * whose steps quote them). */
int rrec_same_decision(const rrec *a, const rrec *b);

/* ---- the release marker (docs/recommendation.md, "Release") ---------------------------------
 * `kubectl optipod release` sets, as field manager optipod-release, the
 * workload annotation optipod.io/managed: "false" (the whole workload) or
 * optipod.io/managed.<container>: "false" (one container); `kubectl optipod
 * manage` removes it. While it is there the controller writes nothing for the
 * released part (resources, webhook annotations) and the webhook injects
 * nothing into it. Any other value, or none, means managed. */
#define RREC_MANAGED_KEY "optipod.io/managed"

/* Is the workload released (container NULL), or is that container released
 * (itself or with the whole workload)? */
int rrec_released(const kproj_obj *w, const char *container);
/* Is key the marker or a container's marker? */
int rrec_is_marker(const char *key);

#endif
