/*
 * ctl internals, private to lib/controller: the controller's state (struct
 * ctl, what it remembers of each workload and policy, the reconcile job)
 * and the functions its files share. Only lib/controller/ctl*.c and
 * controller.c include it; the API is controller/controller.h. Shared
 * functions carry the prefix ctl__ (as libuv's uv__); all else stays static
 * in its file.
 *
 * The files call one way only (no circle; reply handlers resume a job
 * through the j->resume pointer, the alarm runs the pump through c->wake):
 *   controller.c   informers' hooks, queueing, pump, tick, lifecycle
 *     -> ctl_job.c   the executor: facts, the step (step.c), effects, the end
 *       -> ctl_ssa.c ctl_rollout.c ctl_resize.c ctl_usage.c ctl_status.c
 *          ctl_record.c (I/O; the record, synced once at the end of each job)
 *         -> ctl_common.c   clock, keys, caches, state maps, Events, requests
 * and the pure decisions below any of them: step.c, reconcile.c, rollout.c.
 *
 * Ownership as in controller.h: all of it belongs to the ctl and is touched
 * on the loop thread only. A ctl_job lives from ctl__job_start() to the
 * executor's end (or ctl_close()); it keeps keys and copies, never an object
 * borrowed from a cache across a request.
 */
#ifndef OPTIPOD_CONTROLLER_CTL_INT_H
#define OPTIPOD_CONTROLLER_CTL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "apply/conflict.h"
#include "apply/fields.h"
#include "controller/controller.h"
#include "controller/reconcile.h"
#include "controller/rollout.h"
#include "controller/step.h"
#include "kube/discovery.h"
#include "kube/queue.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/loopmon.h"
#include "util/map.h"

#define KEY_MAX 600
/* Work that can wait (the queue, a status walk) stops once the loop has been
 * busy this long since its last poll, and goes on after the next one. */
#define CTL_SLICE_NS 2000000ull
#define BODY_MAX     ((size_t)1 << 20)
#define STATUS_RECS  8 /* containers remembered per workload for status */
#define WRITTEN_MAX  1024

#define CTL_NAME_MAX 64 /* a container name: a DNS label (63) */

/* One container's recommendation, for the policy's status. */
typedef struct ctl_rec {
    char container[CTL_NAME_MAX];
    char cpu[CTLREC_QTY], mem[CTLREC_QTY], cpu_lim[CTLREC_QTY], mem_lim[CTLREC_QTY];
    int applied;
    int64_t samples; /* -1 unknown */
} ctl_rec;

/* What the controller remembers of one workload between reconciles, sized
 * by what it holds (the strings and arrays are owned; NULL = none). Kept only
 * while there is something to remember: a policy selects the workload or
 * loses it to another, or optipod wrote to it (ctl__wstate_forget_idle). */
typedef struct ctl_wstate {
    char *policy;    /* the winner "ns/name" */
    char **loser_of; /* the other policies selecting it, at most 4 */
    int nlosers;
    enum ctlrec_outcome outcome;
    char *conflict; /* "argocd-controller" etc. while in conflict */
    int loop_stopped;
    int insufficient;
    ctlstep_written *written; /* our last resource write, a field each */
    size_t nwritten;
    int reclaim_counted;         /* the take-back of that write has been counted */
    uint64_t last_apply_ms;      /* monotonic time of our last write that rolls pods */
    uint64_t last_write_ms;      /* ... of our last write of it or its pods (min-write-interval) */
    uint64_t duplicate_until_ms; /* DuplicateController: left alone until then */
    char released_rv[32];        /* annotations released at this resourceVersion */
    char ann_base_rv[32];        /* annotations written over this resourceVersion ... */
    uint64_t ann_hash;           /* ... with this body */
    ctl_rec *recs;               /* recommended containers, at most STATUS_RECS */
    int nrecs;
    int deferred;              /* the last reconcile waited at the rollout gate */
    int taken_over;            /* the last write forced over a manager that is not GitOps */
    int64_t restart_gen;       /* generation our last restart produced, 0 none */
    int64_t uninjected_warned; /* WebhookNotInjecting emitted for this restart_gen */
} ctl_wstate;

typedef struct ctl_cond {
    char status[8];
    char reason[64];
    char msg[1024];
    char since[32];
} ctl_cond;

enum { COND_READY, COND_CONFLICT, COND_METRICS, NCOND };

typedef struct ctl_pstate {
    uint64_t next_resync_ms;
    int64_t invalid_warned_gen; /* InvalidPolicy Event emitted for this generation */
    int metrics_state;          /* 0 unknown, 1 ok, -1 failing */
    char metrics_msg[256];
    /* Failing metrics and status writes are logged once per step of these backoffs (1 s
     * doubling to 30 s), not on every reconcile or tick; a failed status write also waits
     * until status_retry_ms before the next one. Zero until the first failure. */
    opbackoff metrics_bo, status_bo;
    uint64_t metrics_log_ms, status_retry_ms;
    unsigned metrics_quiet, status_failures;
    char *last_sig;      /* the status last written, without its time */
    char *last_dsig;     /* ... and without the usage figures (recommendations[].samples) */
    uint64_t written_at; /* ctl__now() when it was sent */
    ctl_cond conds[NCOND];
    int dirty;
    int writing;
    ophttp_req *req;
    struct status_req *sr;    /* the write in flight */
    struct status_walk *walk; /* the status being built (ctl_status.c), NULL between */
} ctl_pstate;

/* A policy's projection carries this (its kproj ext): the parsed spec, and
 * the rollout its status records (status.rollout), read once when leading
 * starts to resume following it. */
typedef struct ctl_policy_ext {
    pol_policy p;          /* first: ctl__policy_of() returns it */
    rollout_slot recorded; /* key "" when the status records none (or a damaged one) */
} ctl_policy_ext;

/* An HPA's projection carries this (its kproj ext). */
typedef struct ctl_hpa {
    char kind[64]; /* scaleTargetRef */
    char name[256];
    int cpu; /* it scales on CPU */
} ctl_hpa;

typedef struct ctl_ustats {
    size_t n;
    mprov_container_stats c[];
} ctl_ustats;

struct ctl_job;

typedef struct ctl_usage {
    struct ctl *c;
    mprov *prov; /* borrowed from the controller */
    char ns[256];
    double pct;
    uint64_t window_s;
    int state; /* 0 idle, 1 pending, 2 answered */
    uint64_t fetched_ms;
    int error;
    char msg[256];
    opmap stats; /* "Kind/name" → ctl_ustats* */
    struct ctl_job *waiting;
} ctl_usage;

/* A request's answer as recorded for the step, with its message kept. */
typedef struct ctl_answer {
    ctlstep_reply r;
    char msg[256];
} ctl_answer;

/* One reconcile, from ctl__job_start() to the executor's end. It keeps keys
 * and copies (the caches may replace any object while a request is out) and
 * the facts gathered so far (step.h). */
typedef struct ctl_job {
    struct ctl *c;
    struct ctl_job *next, *prev; /* in-flight list */
    struct ctl_job *next_wait;   /* jobs waiting for the same usage */
    /* The executor: every reply recorder calls it, never anything else. */
    void (*resume)(struct ctl_job *j);
    char key[KEY_MAX];
    enum kproj_kind kind;
    char ns[256], name[256];
    ophttp_req *req;
    /* the decision: matched at the start, decided once usage is in */
    ctlrec_out out;
    int matched, decided;
    int metrics_error;         /* decided without usage: the provider failed (logged per policy) */
    char pkey[KCACHE_KEY_MAX]; /* the winner, by key (looked up again after each request) */
    uint64_t period_ms;
    enum ctlstep_usage usage;
    struct ctl_usage *u; /* the usage to fetch (FETCH_USAGE) */
    /* facts gathered with the decision */
    int ann_differ;
    uint64_t ann_hash; /* of the annotations body in `body` */
    ctlstep_resize rz;
    struct ctl_rzplan *rzplan; /* ctl_resize.c's plan for the pod to resize */
    ctlstep_pods pods;
    char first_pod[256];
    char hint[512];
    /* answers */
    ctl_answer ann, restart, live_reply, dry, write;
    char ann_rv[32];  /* the resourceVersion the annotations went over */
    rollout_out gate; /* the gate's verdict, asked before a write that rolls pods */
    int64_t new_gen;  /* the generation a write that rolls pods produced (its answer) */
    /* the ssa path: the live object read, and the pre-check's conflicts */
    kproj_obj *live;
    mfields mf;
    ssa_change *ch;
    size_t nch;
    char changed[WRITTEN_MAX]; /* "c/f=v;" of ch, for messages */
    const char **owners;       /* per change, another manager owning it (points into mf) */
    ctlstep_written *ours;     /* of ws->written, what the live object holds under optipod */
    size_t nours;
    char unreadable[256];
    conflict_set *cs; /* NULL until the pre-check answers with conflicts or none */
    char patch_path[2048];
    opbuf body;
    char rec_pkey[KCACHE_KEY_MAX]; /* the deciding policy, Disabled too, for the record */
    int slot_held;                 /* the rollout slot is reserved for this job's write */
    /* uv_hrtime() at ctl__job_start, for the duration metric */
    uint64_t started_ns;
} ctl_job;

struct ctl {
    uv_loop_t *loop;
    krest *rest;
    ctl_opts o;
    char *ns;
    mprov *prov;    /* the default provider */
    mprov *prov_ms; /* metrics-server for policies that name it, when prov is Prometheus */
    kinf *inf[CTL_NINF];
    kqueue *q;
    kdisc *disc; /* is pods/resize served? asked, never assumed */
    uint64_t disc_next_ms;
    opmap resizes;         /* workload key → ctl_resize* (in-place resize followed) */
    int pod_patch_off;     /* a pod PATCH may not resize here (the 422 seen once) */
    int pod_patch_ok;      /* ... it may (a 2xx seen) */
    int pod_patch_probe;   /* the first pod-PATCH resize is in flight: others wait */
    int subresource_off;   /* pods/resize listed but not served */
    uv_timer_t tick;       /* the alarm when the clock is libuv's */
    void (*wake)(void *c); /* what the alarm runs: controller.c's tick and pump */
    uint64_t next_tick_ms; /* resyncs and status flushes, every TICK_MS */
    uint64_t armed_at;     /* the alarm set, CTL_ALARM_NEVER when none */
    conflict_tracker tracker;
    rollout_slot slot;                /* the one optipod rollout in progress */
    char slot_policy[KCACHE_KEY_MAX]; /* the policy whose status.rollout records it */
    int slot_recovered;               /* status.rollout read since leading began */
    opmap usage;                      /* "ns|pct|window" → ctl_usage* */
    opmap wstates;                    /* workload key → ctl_wstate* */
    uint64_t wstates_gen;             /* bumped when a state is added or removed */
    opmap pstates;                    /* policy "ns/name" → ctl_pstate* */
    opmap records;                    /* workload key → what its record last said */
    struct ctl_recw *recws;           /* record writes in flight */
    int nrecws;
    ctl_job *jobs;
    int running;
    int leader;
    int started;
    int closing;
    int ninf_closing;
    int pumping, repump;
    /* The queue is drained in slices (pump): when the loop has been busy for a slice since
     * its last poll, the rest waits for the check handle, after the next poll (the idle
     * handle keeps that poll from blocking). */
    oploopmon lm;
    uv_check_t slice_check;
    uv_idle_t slice_idle;
    int slice_armed, slice_force, slice_jobs;
    uint64_t slice_mark; /* lm.last_ns when slice_jobs was counted from 0 */
    ctl_stats st;
    void (*on_closed)(void *ud);
    void *closed_ud;
};

/* ---- ctl_common.c: the bottom layer, shared by every file ---------------------------------- */
extern const kres *const ctl__inf_res[CTL_NINF];
uint64_t ctl__now(const ctl *c); /* the monotonic clock (ctl_clock) */
uint64_t ctl__now_fresh(ctl *c); /* the same, read now rather than at the turn's start */
/* The next delay of a failure backoff of ctl_pstate (1 s doubling to 30 s, 20% jitter),
 * initialising it at the first failure. */
uint64_t ctl__fail_backoff(opbackoff *b, uint64_t now_ms);
int64_t ctl__wall_ms(const ctl *c);
void ctl__rfc3339(int64_t ms, char *buf, size_t cap);
kcache *ctl__cache(ctl *c, enum ctl_inf i);
enum ctl_inf ctl__inf_for_kind(enum kproj_kind k);
const kres *ctl__res_for_kind(enum kproj_kind k);
/* "Kind/namespace/name", and back */
int ctl__wkey(char *buf, size_t cap, enum kproj_kind k, const char *ns, const char *name);
int ctl__parse_wkey(const char *key, enum kproj_kind *k, char *ns, char *name);
ctl_wstate *ctl__wstate(ctl *c, const char *key, int create);
void ctl__wstate_free(void *ws);
/* Drop key's state when it holds nothing to remember. */
void ctl__wstate_forget_idle(ctl *c, const char *key);
/* Replace *dst with a copy of s ("" or NULL: none). 0 or -ENOMEM (*dst kept). */
int ctl__set_str(char **dst, const char *s);
/* s, or "" for none. */
const char *ctl__str(const char *s);
ctl_pstate *ctl__pstate(ctl *c, const char *pkey, int create);
const pol_policy *ctl__policy_of(const kproj_obj *o);
int ctl__pod_owner(ctl *c, const kproj_obj *pod, char *key, size_t cap);
/* Secondary indexes on the caches (ctl_new), and the lookups over them: a reconcile
 * reads its own workload's pods, HPAs and policies, never the whole cluster's. Each
 * calls fn until it returns non-zero (returned). */
int ctl__add_indexes(ctl *c);
int ctl__workload_pods(ctl *c, enum kproj_kind kind, const char *ns, const char *name,
                       int (*fn)(const kproj_obj *pod, void *ud), void *ud);
/* Policies that may select a workload of ns: those of ns, those with a namespaceSelector. */
int ctl__policies_for(ctl *c, const char *ns, int (*fn)(const kproj_obj *policy, void *ud),
                      void *ud);
/* HPAs whose scaleTargetRef is the workload. */
int ctl__hpas_for(ctl *c, enum kproj_kind kind, const char *ns, const char *name,
                  int (*fn)(const kproj_obj *hpa, void *ud), void *ud);
/* The objects of cache inf (workloads, PDBs) in ns; every namespace when ns is NULL. */
int ctl__in_namespace(ctl *c, enum ctl_inf inf, const char *ns,
                      int (*fn)(const kproj_obj *o, void *ud), void *ud);
void ctl__event(ctl *c, const kevents_ref *ref, kevents_type type, const char *reason,
                const char *action, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void ctl__workload_ref(const ctl_job *j, const char *uid, kevents_ref *ref);
void ctl__policy_event(ctl *c, const char *pkey, kevents_type type, const char *reason,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* a policy's status needs writing */
void ctl__mark_policy_dirty(ctl *c, const char *pkey);

/* queueing */
void ctl__wake_deferred(ctl *c, const char *ns, const char *self);
void ctl__requeue_after(ctl *c, const char *key, uint64_t ms);
/* Arm the alarm for what is due next (after the queue changed). */
void ctl__rearm(ctl *c);
int ctl__workers(const ctl *c);

/* requests, and recording their answers for the step */
int ctl__job_send(ctl_job *j, const char *method, const char *path, const char *ctype,
                  const opbuf *body, krest_cb cb);
int ctl__write_path(ctl *c, opbuf *p, const kres *r, const char *ns, const char *name,
                    const char *sub, int apply, int force, int dry_run);
const char *ctl__reply_msg(const krest_reply *r);
int ctl__ok2xx(const krest_reply *r);
void ctl__answer(ctl_answer *a, const krest_reply *r);
/* The generation a write produced, from the object it returned (0 unknown). */
int64_t ctl__answered_generation(const krest_reply *r);
void ctl__answer_unsent(ctl_answer *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ctl_job.c: the executor */
void ctl__job_start(ctl *c, const char *key);
/* ctl_close: cancel every job's request and free them (no callback runs) */
void ctl__jobs_cancel(ctl *c);

/* ctl_usage.c */
void ctl__usage_free(void *v);
ctl_usage *ctl__usage_get(ctl *c, mprov *prov, const char *ns, double pct, uint64_t window_s);
void ctl__usage_fetch(ctl *c, ctl_usage *u);

/* ctl_ssa.c: each sender returns 0 (the answer resumes the job) or records
 * why it could not send in the job's answer and returns a negative errno */
int ctl__annotations_body(ctl_job *j, const kproj_obj *w, int release);
int ctl__send_annotations(ctl_job *j, int release);
int ctl__read_live(ctl_job *j);
int ctl__send_dry_run(ctl_job *j);
int ctl__send_write(ctl_job *j, int force);

/* ctl_rollout.c */
/* The gate's verdict for w (controller/rollout.h, over the caches). */
int ctl__gate(ctl *c, const char *key, const kproj_obj *w, rollout_out *out);
/* Reserve the slot for key's write (generation 0: in flight). */
void ctl__slot_take(ctl *c, const char *key, const char *pkey);
/* key's write that rolls pods was answered with generation gen (0 unknown):
 * the slot waits for it (a dry run rolls nothing: the job's end frees it). */
void ctl__slot_commit(ctl *c, const char *key, int held, int64_t gen, const kproj_obj *w);
/* Free the slot (its policy's status then drops the record). */
void ctl__slot_clear(ctl *c);
/* Once per leadership, with synced caches: take up the rollout a policy's
 * status.rollout records, when its workload is still there. */
void ctl__slot_recover(ctl *c);
/* The holder's status changed: release the slot now when its rollout
 * completed or was paused, rather than when the next workload asks. */
void ctl__slot_check(ctl *c, const kproj_obj *holder);
/* The running pods against the recommendation (j->pods), and why the webhook
 * may not inject (j->hint). */
void ctl__count_pods(ctl_job *j, const kproj_obj *w);
int ctl__send_restart(ctl_job *j, const kproj_obj *w);

/* ctl_resize.c */
int ctl__pod_followed(ctl *c, const kproj_obj *pod);
/* Step the resize followed, or plan the next pod: j->rz. */
void ctl__resize_facts(ctl_job *j);
int ctl__send_resize(ctl_job *j);
void ctl__resize_job_free(ctl_job *j);

/* ctl_metrics.c: a reconcile ended (called by the executor's end); a workload was deleted */
void ctl__metrics_end(ctl_job *j, const ctl_wstate *ws, enum ctlrec_outcome oc);
void ctl__metrics_gone(ctl *c, enum kproj_kind kind, const char *ns, const char *name);
/* The workload's containers changed: drop the series of the old ones (a reconcile puts
 * the new ones). */
void ctl__metrics_containers_changed(ctl *c, const kproj_obj *old);

/* ctl_record.c */
/* At the end of a job; wrote: its server-side apply of resources succeeded
 * (the record then shows the written values as current at once). */
void ctl__record_sync(ctl_job *j, enum ctlrec_outcome oc, int wrote);
void ctl__records_cancel(ctl *c);
void ctl__recstate_free(void *v);
/* Does the workload's record say its live values equal the recommendation? */
int ctl__record_applied(ctl *c, const char *key);

/* ctl_status.c */
void ctl__status_req_release(struct status_req *sr);
/* Build pkey's status (a slice of it: 1 while unfinished, go on at the next tick)
 * and write it when it changed. */
int ctl__flush_status(ctl *c, const char *pkey, ctl_pstate *ps);
void ctl__status_walk_free(struct status_walk *w);

#endif
