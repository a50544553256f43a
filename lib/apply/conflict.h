/*
 * conflict: who else owns the fields optipod wants to write, what to tell the
 * user, whether to force, and when to give up on a workload. Pure: no I/O.
 *
 * Sources. An unforced apply that meets another manager's fields answers 409
 * with causes "conflict with \"argocd-controller\"" (an Apply manager) or
 * "conflict with \"kubectl-edit\" using apps/v1" (an Update manager). The
 * recorded v1.24 server listed one field twice and left another out, so the
 * causes are de-duplicated and merged with what managedFields says: every
 * other manager owning a target field is a conflict. managedFields alone is a
 * superset (an apply of the same value shares the field without conflict), so
 * pass as targets only the fields whose value changes.
 *
 * Loop detection (conflict_loop_step) is a pure step function over one
 * workload's state: feed it the time and what happened (optipod applied, a
 * manager reclaimed a field, or time passed quietly) and it answers continue
 * or stop. N reclaims within a window (default 3 in 1 h) stop applying to the
 * workload (GitOpsConflictLoop); once the reclaimer has been quiet for the
 * quiet window (default 1 h) it resumes on probation: one more reclaim within
 * the window stops it again at once and doubles the quiet window (up to
 * 24 h). conflict_tracker keeps those states per workload key.
 *
 * Ownership: conflict_set and conflict_loop are plain values. A
 * conflict_tracker owns its states: conflict_tracker_init() allocates nothing,
 * conflict_tracker_release() frees them.
 */
#ifndef OPTIPOD_APPLY_CONFLICT_H
#define OPTIPOD_APPLY_CONFLICT_H

#include <stddef.h>
#include <stdint.h>

#include "apply/fields.h"
#include "kube/rest.h"
#include "util/map.h"

#define CONFLICT_MAX         32
#define CONFLICT_MANAGER_MAX 129  /* fieldManager is at most 128 characters */
#define CONFLICT_NOTE_MAX    1024 /* events.k8s.io/v1 note limit */

typedef struct conflict_item {
    char manager[CONFLICT_MANAGER_MAX];
    char operation[16];   /* "Apply" or "Update" */
    char api_version[64]; /* Update managers: the version they wrote with; else "" */
    char field[256]; /* ".spec.template.spec.containers[name=\"nginx\"].resources.requests.cpu" */
} conflict_item;

typedef struct conflict_set {
    int n;
    int dropped; /* distinct conflicts beyond CONFLICT_MAX */
    conflict_item items[CONFLICT_MAX];
} conflict_set;

void conflict_set_init(conflict_set *c);
/* Add the FieldManagerConflict causes of a 409 Status (other causes are
 * ignored), de-duplicated by (manager, field). Returns how many were new. */
int conflict_add_status(conflict_set *c, const kstatus *st);
/* Add every manager other than `self` owning one of the target paths in mf.
 * Returns how many were new. An Update owner's operation wins over a plain
 * "Apply" guess from a Status for the same (manager, field). */
int conflict_add_fields(conflict_set *c, const mfields *mf, const char *self,
                        const char *const *targets, size_t ntargets);
/* Distinct managers in the set. */
int conflict_managers(const conflict_set *c);

enum conflict_decision {
    CONFLICT_APPLY, /* no conflict: apply without force */
    CONFLICT_FORCE, /* conflicts, and the policy allows forcing */
    CONFLICT_YIELD, /* conflicts, forcing not allowed: leave the fields to their owners */
};
enum conflict_decision conflict_decide(const conflict_set *c, int force_conflicts);
const char *conflict_decision_name(enum conflict_decision d);

/* The SSAConflict Event note: names every manager and its fields, then the
 * decision; at most CONFLICT_NOTE_MAX bytes, cut only between fields
 * ("... and N more"). `buf` needs CONFLICT_NOTE_MAX + 1 bytes. Returns the
 * length. */
int conflict_note(const conflict_set *c, enum conflict_decision d, char *buf, size_t cap);

/* --- loop detection ------------------------------------------------------------------- */

#define CONFLICT_LOOP_HISTORY 16

typedef struct conflict_loop_cfg {
    int max_reclaims;     /* N: stop after this many reclaims in the window; default 3 */
    int64_t window_ms;    /* default 1 h */
    int64_t quiet_ms;     /* reclaimer quiet this long → resume; default 1 h */
    int64_t max_quiet_ms; /* cap of the doubled quiet window; default 24 h */
} conflict_loop_cfg;

/* Fill zero fields with the defaults. */
void conflict_loop_cfg_defaults(conflict_loop_cfg *cfg);

enum conflict_loop_state { CONFLICT_LOOP_OK, CONFLICT_LOOP_STOPPED, CONFLICT_LOOP_PROBATION };

typedef struct conflict_loop {
    enum conflict_loop_state state;
    int64_t reclaims[CONFLICT_LOOP_HISTORY]; /* times of recent reclaims, oldest first */
    int nreclaims;
    int64_t last_reclaim;               /* -1 never */
    int64_t since;                      /* when the current state began */
    int64_t seen;                       /* latest time stepped */
    int64_t quiet_ms;                   /* current quiet window (doubles on relapse) */
    int strikes;                        /* stops since the last full recovery */
    char manager[CONFLICT_MANAGER_MAX]; /* last reclaimer */
} conflict_loop;

enum conflict_event {
    CONFLICT_EV_APPLIED,   /* optipod applied its values */
    CONFLICT_EV_RECLAIMED, /* `manager` took a field back */
    CONFLICT_EV_QUIET,     /* time passed without a reclaim (periodic check) */
};

enum conflict_action { CONFLICT_CONTINUE, CONFLICT_STOP_LOOP };

typedef struct conflict_loop_out {
    enum conflict_action action;
    int entered;         /* this step stopped the workload: emit GitOpsConflictLoop */
    int resumed;         /* this step resumed it */
    int reclaims;        /* reclaims inside the window now */
    int64_t resume_at;   /* STOP: earliest time a quiet check can resume; else 0 */
    const char *manager; /* the last reclaimer ("" when none); points into the state */
} conflict_loop_out;

void conflict_loop_init(conflict_loop *st);
/* One step. `manager` is used by CONFLICT_EV_RECLAIMED only. Time must not go
 * backwards (an earlier `now` is treated as the last time seen). */
void conflict_loop_step(conflict_loop *st, const conflict_loop_cfg *cfg, int64_t now_ms,
                        enum conflict_event ev, const char *manager, conflict_loop_out *out);

typedef struct conflict_tracker {
    opmap states; /* workload key → conflict_loop* */
    conflict_loop_cfg cfg;
} conflict_tracker;

void conflict_tracker_init(conflict_tracker *t, const conflict_loop_cfg *cfg);
void conflict_tracker_release(conflict_tracker *t);
/* Step the state of `key` (created on first use). Returns 0 or -ENOMEM. */
int conflict_tracker_step(conflict_tracker *t, const char *key, int64_t now_ms,
                          enum conflict_event ev, const char *manager, conflict_loop_out *out);
/* Forget a workload (deleted, or left the policy). */
void conflict_tracker_forget(conflict_tracker *t, const char *key);

#endif
