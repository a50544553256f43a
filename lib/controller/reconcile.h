/*
 * ctlrec: the reconcile decision for one workload, as a pure function.
 *
 * Given the workload's projection, every known policy, its namespace's
 * labels, whether an HPA scales it on CPU, the usage the metrics provider
 * measured and the OOM kills seen on its pods, ctlrec_decide() answers:
 *  - which policies match, ranked (pol_rank: winner first, then the losers
 *    to report), and the winner's mode;
 *  - per container, the engine's result (pol_engine_policy + eng_recommend)
 *    and the values to write, as canonical quantity strings;
 *  - ONE outcome with a reason: apply (something to write), unchanged
 *    (within threshold), skipped (which rule), or error (metrics missing).
 *    Conflicts are found later, against the live managedFields (the caller).
 * No matching policy, a Disabled winner, or a workload that left its policy
 * all end in skipped with release_annotations set when the workload still
 * carries optipod.io/ annotations: the caller removes those (never requests).
 * A workload released by `kubectl optipod release` (record.h's marker) ends
 * in skipped with `released` set, and nothing may be written to it; a
 * released container is skipped like an excluded one (rule "released").
 *
 * The desired-annotation helpers compute exactly what the annotation apply
 * would write, so the caller writes only when it differs from the live
 * annotations (steady state: zero writes).
 *
 * Ownership: ctlrec_out owns its per-container arrays, sized by the
 * workload (ctlrec_out_release() frees them); it borrows the policies given
 * in the input (ssa[] and rec[] point into out itself). ctlrec_decide() and
 * ctlrec_match() fill an out that holds nothing (zeroed or released).
 * Allocation: those arrays and temporary label objects for matching. No I/O.
 */
#ifndef OPTIPOD_CONTROLLER_RECONCILE_H
#define OPTIPOD_CONTROLLER_RECONCILE_H

#include <stddef.h>
#include <stdint.h>

#include "apply/ssa.h"
#include "engine/engine.h"
#include "kube/project.h"
#include "metrics/provider.h"
#include "policy/policy.h"
#include "util/buf.h"

#define CTLREC_MAX_CONTAINERS 32
#define CTLREC_MAX_LOSERS     16
#define CTLREC_QTY            32
#define CTLREC_REASON         256

enum ctlrec_outcome {
    CTLREC_APPLY,     /* values to write (resources or, in Recommend, annotations) */
    CTLREC_UNCHANGED, /* every container within the threshold */
    CTLREC_SKIPPED,   /* a rule says no: reason names it */
    CTLREC_CONFLICT,  /* set by the caller: another manager owns the fields */
    CTLREC_ERROR,     /* cannot decide now (metrics unavailable); retried */
};

/* OOM kills seen on the workload's pods, per container (from pod status). */
typedef struct ctlrec_oom {
    const char *container;
    int64_t count;
    int64_t last_s; /* Unix seconds */
} ctlrec_oom;

typedef struct ctlrec_input {
    const kproj_obj *workload;
    const pol_policy *const *policies;
    size_t npolicies;
    const kproj_obj *ns; /* the Namespace projection (labels); NULL = no labels */
    int hpa_cpu;         /* an HPA scales this workload on CPU */
    int metrics_error;   /* the provider failed for this namespace */
    const char *metrics_msg;
    const mprov_container_stats *usage; /* per container; may be NULL */
    size_t nusage;
    const ctlrec_oom *ooms;
    size_t nooms;
    int64_t now_s;
} ctlrec_input;

typedef struct ctlrec_container {
    char name[MFIELDS_NAME_MAX + 1];
    int init;
    eng_result res;
    /* what to write under the ssa strategy ("" = leave the field alone) */
    char cpu_req[CTLREC_QTY], mem_req[CTLREC_QTY], cpu_lim[CTLREC_QTY], mem_lim[CTLREC_QTY];
    /* the recommendation to publish (applied or kept value; "" = none) */
    char rec_cpu_req[CTLREC_QTY], rec_mem_req[CTLREC_QTY], rec_cpu_lim[CTLREC_QTY],
        rec_mem_lim[CTLREC_QTY];
    int64_t samples, span_s; /* the usage behind it; -1 when none was measured */
    int released;            /* optipod.io/managed.<name>: "false" (never written) */
} ctlrec_container;

typedef struct ctlrec_out {
    const pol_policy *winner; /* NULL when no policy matches */
    const pol_policy *losers[CTLREC_MAX_LOSERS];
    size_t nlosers;
    pol_mode mode;
    enum ctlrec_outcome outcome;
    char reason[CTLREC_REASON];
    int release_annotations; /* optipod.io/ annotations to remove */
    int released;            /* optipod.io/managed: "false": nothing is written at all */
    int allow_limits;
    /* per container, sized by the workload's containers (owned; at most
     * CTLREC_MAX_CONTAINERS) */
    ctlrec_container *containers;
    size_t ncontainers, cap;
    /* views for the SSA builders: values to write / values to publish */
    ssa_container *ssa;
    size_t nssa;
    ssa_container *rec;
    size_t nrec;
    const char *history; /* how the usage's pods were found (mprov_container_stats) */
    uint32_t history_pods;
} ctlrec_out;

const char *ctlrec_outcome_name(enum ctlrec_outcome o);

/* Free what out holds; it is then empty (zeros). */
void ctlrec_out_release(ctlrec_out *out);

/* Decide. Returns 0, or -ENOMEM (out then says error). */
int ctlrec_decide(const ctlrec_input *in, ctlrec_out *out);
/* Only the policies (usage, OOMs and HPAs are not read, the engine does not
 * run): the winner, the losers and the mode; the outcome and release as
 * ctlrec_decide() says them when no policy selects the workload or the winner
 * is Disabled. Returns 0, or -ENOMEM. */
int ctlrec_match(const ctlrec_input *in, ctlrec_out *out);

/* The workload kind as a pol_kind bit (0 for non-workloads). */
pol_kind ctlrec_pol_kind(enum kproj_kind k);

/* The value the annotations body sets for optipod.io/strategy: "webhook" for
 * Auto with the webhook strategy (the webhook injects only then), "recommend"
 * otherwise. */
const char *ctlrec_strategy_value(const ctlrec_out *out);

/* Does the live workload's optipod.io/ annotation set differ from what the
 * annotation apply for `out` would leave (keys and values)? */
int ctlrec_annotations_differ(const ctlrec_out *out, const kproj_obj *live);

/* optipod.io/explanation: why each number, as compact JSON:
 *   {"policy":"ns/name","mode":"Recommend","provider":"prometheus","window":"168h",
 *    "percentile":95,"safetyFactor":1.15,"history":"kube-state-metrics","historyPods":7,
 *    "containers":[eng_result_json(...), ...]}
 * (history and historyPods: how the window's pods were found, when the
 * provider searched for them: metrics/window.h)
 * At most CTLREC_EXPLANATION_MAX bytes: per-step detail is dropped first
 * ("truncated":"steps"), then trailing containers ("truncated":"containers").
 * No longer written as an annotation (the Deployment controller copies those
 * onto every ReplicaSet): the record (lib/record) carries it per container.
 * kubectl-optipod still reads one an older controller left. */
#define CTLREC_EXPLANATION_KEY "optipod.io/explanation"
#define CTLREC_EXPLANATION_MAX 8192
int ctlrec_explanation(const ctlrec_out *out, opbuf *json);

/* The annotation apply body for `out`: ssa_build_annotations() of the
 * recommendation, with optipod.io/strategy and optipod.io/webhook-enabled
 * set for the mode (webhook injection only for Auto + webhook). With
 * `release` every optipod.io/ annotation is dropped (an empty set). */
int ctlrec_annotations_body(const ctlrec_out *out, const kproj_obj *live, int release, opbuf *body,
                            operr *err);

#endif
