/*
 * ctl internals, private to lib/controller: the controller's state (struct
 * ctl, what it remembers of each workload and policy, the reconcile job)
 * and the functions its files share. Only lib/controller/ctl*.c and
 * controller.c include it; the API is controller/controller.h. Shared
 * functions carry the prefix ctl__ (as libuv's uv__); all else stays static
 * in its file. Which file owns what: see the top of controller.c.
 *
 * Ownership as in controller.h: all of it belongs to the ctl and is touched
 * on the loop thread only. A ctl_job lives from job_start() to
 * ctl__job_end() (or ctl_close()); it keeps keys and copies, never an object
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
#include "kube/discovery.h"
#include "kube/queue.h"
#include "util/buf.h"
#include "util/map.h"

#define KEY_MAX     600
#define BODY_MAX    ((size_t)1 << 20)
#define STATUS_RECS 8 /* containers remembered per workload for status */
#define WRITTEN_MAX 1024

typedef struct ctl_rec {
    char container[MFIELDS_NAME_MAX + 1];
    char cpu[CTLREC_QTY], mem[CTLREC_QTY], cpu_lim[CTLREC_QTY], mem_lim[CTLREC_QTY];
    int applied;
} ctl_rec;

/* What the controller remembers of one workload between reconciles. */
typedef struct ctl_wstate {
    char policy[KCACHE_KEY_MAX]; /* winner "ns/name", "" when none */
    char loser_of[4][KCACHE_KEY_MAX];
    int nlosers;
    enum ctlrec_outcome outcome;
    char reason[CTLREC_REASON];
    char conflict[512]; /* "argocd-controller" etc. while in conflict */
    int loop_stopped;
    int insufficient;
    char written[WRITTEN_MAX]; /* our last values: "c/requests.cpu=500m;..." */
    uint64_t last_apply_ms;    /* loop time of our last resource write */
    char released_rv[32];      /* annotations released at this resourceVersion */
    char ann_base_rv[32];      /* annotations written over this resourceVersion ... */
    uint64_t ann_hash;         /* ... with this body */
    ctl_rec recs[STATUS_RECS];
    int nrecs;
    int deferred;              /* the last reconcile waited at the rollout gate */
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
    char *last_sig; /* the status last written, without its time */
    ctl_cond conds[NCOND];
    int dirty;
    int writing;
    ophttp_req *req;
    struct status_req *sr; /* the write in flight */
} ctl_pstate;

/* A policy's projection carries this (its kproj ext): the parsed spec, and
 * the rollout its status records (status.rollout), read once when leading
 * starts to resume following it. */
typedef struct ctl_policy_ext {
    pol_policy p;          /* first: ctl__policy_of() returns it */
    rollout_slot recorded; /* key "" when the status records none (or a damaged one) */
} ctl_policy_ext;

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

typedef struct ctl_job {
    struct ctl *c;
    struct ctl_job *next, *prev; /* in-flight list */
    struct ctl_job *next_wait;
    char key[KEY_MAX];
    enum kproj_kind kind;
    char ns[256], name[256];
    ophttp_req *req;
    ctlrec_out out;
    /* the winner, copied (the cache may replace it while we wait) */
    char pkey[KCACHE_KEY_MAX];
    int force_conflicts;
    uint64_t period_ms;
    /* the SSA path */
    conflict_set cs;
    char changes[WRITTEN_MAX];
    char patch_path[2048];
    opbuf body;
    int forced;
    int restart;   /* webhook + immediate + allowRecreate: restart pods that differ */
    int slot_held; /* the rollout slot is reserved for this job's write */
    int deferred;  /* ended waiting at the rollout gate */
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
    uint64_t next_tick_ms; /* resyncs and status flushes, every TICK_MS */
    uint64_t armed_at;     /* the alarm set, CTL_ALARM_NEVER when none */
    conflict_tracker tracker;
    rollout_slot slot;                /* the one optipod rollout in progress */
    char slot_policy[KCACHE_KEY_MAX]; /* the policy whose status.rollout records it */
    int slot_recovered;               /* status.rollout read since leading began */
    opmap usage;                      /* "ns|pct|window" → ctl_usage* */
    opmap wstates;                    /* workload key → ctl_wstate* */
    opmap pstates;                    /* policy "ns/name" → ctl_pstate* */
    ctl_job *jobs;
    int running;
    int leader;
    int started;
    int closing;
    int ninf_closing;
    int pumping, repump;
    ctl_stats st;
    void (*on_closed)(void *ud);
    void *closed_ud;
};

/* ctl__try_resize()'s answers */
enum { RESIZE_NOT_USED, RESIZE_SENT, RESIZE_ALL_DONE };

/* controller.c: small helpers */
uint64_t ctl__now(const ctl *c); /* the monotonic clock (ctl_clock) */
int64_t ctl__wall_ms(const ctl *c);
void ctl__rfc3339(int64_t ms, char *buf, size_t cap);
kcache *ctl__cache(ctl *c, enum ctl_inf i);
enum ctl_inf ctl__inf_for_kind(enum kproj_kind k);
const kres *ctl__res_for_kind(enum kproj_kind k);
int ctl__parse_wkey(const char *key, enum kproj_kind *k, char *ns, char *name);
ctl_wstate *ctl__wstate(ctl *c, const char *key, int create);
ctl_pstate *ctl__pstate(ctl *c, const char *pkey, int create);
const pol_policy *ctl__policy_of(const kproj_obj *o);
int ctl__pod_owner(ctl *c, const kproj_obj *pod, char *key, size_t cap);
void ctl__event(ctl *c, const kevents_ref *ref, kevents_type type, const char *reason,
                const char *action, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void ctl__workload_ref(const ctl_job *j, const char *uid, kevents_ref *ref);
void ctl__policy_event(ctl *c, const char *pkey, kevents_type type, const char *reason,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* controller.c: queueing */
void ctl__wake_deferred(ctl *c, const char *ns, const char *self);
void ctl__requeue_after(ctl *c, const char *key, uint64_t ms);
/* Arm the alarm for what is due next (after the queue changed). */
void ctl__rearm(ctl *c);
int ctl__workers(const ctl *c);

/* controller.c: the end of a reconcile: one outcome per job */
void ctl__job_end(ctl_job *j, enum ctlrec_outcome oc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* controller.c: requests */
int ctl__job_send(ctl_job *j, const char *method, const char *path, const char *ctype,
                  const opbuf *body, krest_cb cb);
int ctl__write_path(ctl *c, opbuf *p, const kres *r, const char *ns, const char *name,
                    const char *sub, int apply, int force, int dry_run);
const char *ctl__reply_msg(const krest_reply *r);
int ctl__ok2xx(const krest_reply *r);

/* controller.c: the decision (again, once a job's usage is answered) */
void ctl__job_decide(ctl_job *j);

/* ctl_usage.c */
void ctl__usage_free(void *v);
ctl_usage *ctl__usage_get(ctl *c, mprov *prov, const char *ns, double pct, uint64_t window_s);
void ctl__usage_fetch(ctl *c, ctl_usage *u);

/* ctl_ssa.c */
void ctl__send_annotations(ctl_job *j, const kproj_obj *w, int release);
/* the answer to act()'s GET of the live object */
void ctl__on_live(const krest_reply *r, void *ud);

/* controller.c: a policy's status needs writing */
void ctl__mark_policy_dirty(ctl *c, const char *pkey);

/* ctl_rollout.c */
int ctl__gate_rollout(ctl_job *j, const kproj_obj *w);
void ctl__slot_commit(ctl_job *j, const krest_reply *r);
/* Free the slot (its policy's status then drops the record). */
void ctl__slot_clear(ctl *c);
/* Once per leadership, with synced caches: take up the rollout a policy's
 * status.rollout records, when its workload is still there. */
void ctl__slot_recover(ctl *c);
/* The holder's status changed: release the slot now when its rollout
 * completed or was paused, rather than when the next workload asks. */
void ctl__slot_check(ctl *c, const kproj_obj *holder);
int ctl__maybe_restart(ctl_job *j, const kproj_obj *w, ctl_wstate *ws);

/* ctl_resize.c */
int ctl__pod_followed(ctl *c, const kproj_obj *pod);
int ctl__try_resize(ctl_job *j);

/* ctl_status.c */
void ctl__status_req_release(struct status_req *sr);
void ctl__flush_status(ctl *c, const char *pkey, ctl_pstate *ps);

#endif
