/*
 * klease: leader election on a coordination.k8s.io/v1 Lease, client-go style.
 *
 * Two layers. The machine (klease_m_*) is pure: it is told the time and the
 * results of requests and answers with the next request to send, whether
 * leadership started or stopped, and when to wake it next. The glue (klease_*)
 * runs it on a libuv loop with one timer and krest.
 *
 * Rules (client-go's, defaults leaseDuration 15 s, renewDeadline 10 s,
 * retryPeriod 2 s):
 *  - A candidate GETs the lease every retryPeriod. Absent → CREATE it as holder.
 *    Held by another → the lease counts as expired only when the record has not
 *    changed (resourceVersion) for the record's leaseDurationSeconds as measured
 *    on OUR monotonic clock since we first saw it (no trust in remote clocks);
 *    then, or when holderIdentity is empty (released), UPDATE (PUT) with the
 *    observed resourceVersion as precondition: 409 means another candidate won.
 *  - The leader renews (PUT, renewTime = now) every retryPeriod. Its leadership
 *    is valid until renewDeadline after the SEND time of its last successful
 *    write; when that passes without a successful renew it stops leading
 *    (on_stopped_leading with lost=1) — before any other candidate can see the
 *    lease expire, because they count leaseDuration (> renewDeadline) from a
 *    later moment. klease_is_leader() checks the deadline itself, so a stale
 *    leader is never reported as leading even if the timer is late.
 *  - Release (on stop): stop leading first, then PUT holderIdentity "" and
 *    leaseDurationSeconds 1, so a successor acquires at its next try.
 *  - leaseTransitions is incremented whenever the holder changes to us;
 *    acquireTime is kept while we stay the holder.
 * After losing, the glue keeps running as a candidate; a controller that
 * prefers to exit (as controller-runtime does) does so from on_stopped_leading.
 *
 * Ownership: klease_new() allocates; klease_stop() and klease_close() both end
 * with the memory reclaimed from the loop (a timer's close callback), then call
 * their callback. Do not touch the klease after calling either. The machine is
 * a plain struct with no allocations (init only).
 */
#ifndef OPTIPOD_KUBE_LEASE_H
#define OPTIPOD_KUBE_LEASE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kube/rest.h"
#include "util/buf.h"
#include "util/err.h"

#define KLEASE_ID_MAX 256 /* holderIdentity, bytes incl. NUL */
#define KLEASE_RV_MAX 64

#define KLEASE_DEFAULT_DURATION_MS 15000
#define KLEASE_DEFAULT_DEADLINE_MS 10000
#define KLEASE_DEFAULT_RETRY_MS    2000

typedef struct klease_timing {
    uint64_t lease_duration_ms; /* written as leaseDurationSeconds (rounded up) */
    uint64_t renew_deadline_ms;
    uint64_t retry_period_ms;
} klease_timing;

/* Lease.spec as read or written. Times are wall-clock ns since the epoch, 0 = absent. */
typedef struct klease_record {
    char holder[KLEASE_ID_MAX];
    int duration_s;
    uint64_t acquire_ns;
    uint64_t renew_ns;
    int transitions;
} klease_record;

/* ---- the pure machine ------------------------------------------------------------------- */

typedef enum klease_op {
    KLEASE_OP_NONE = 0,
    KLEASE_OP_GET,     /* GET the lease */
    KLEASE_OP_CREATE,  /* POST out.write */
    KLEASE_OP_UPDATE,  /* PUT out.write with resourceVersion out.rv */
    KLEASE_OP_RELEASE, /* PUT out.write (holder "", duration 1) with out.rv */
} klease_op;

typedef struct klease_now {
    uint64_t mono_ms; /* monotonic: all timing decisions */
    uint64_t wall_ns; /* wall clock: only the times written into the record */
} klease_now;

typedef struct klease_out {
    klease_op op;        /* request to send now; at most one is ever in flight */
    klease_record write; /* for CREATE/UPDATE/RELEASE */
    char rv[KLEASE_RV_MAX];
    int started;      /* we became leader */
    int stopped;      /* we stopped leading ... */
    int lost;         /* ... because renewal failed or another holder appeared (not a release) */
    int abandon;      /* the request in flight has run for renewDeadline: cancel it, then
                         call klease_m_abandon */
    uint64_t wake_ms; /* call klease_m_tick at this mono time at the latest; UINT64_MAX = never */
} klease_out;

typedef enum klease_mstate {
    KLEASE_M_CANDIDATE = 0,
    KLEASE_M_LEADER,
    KLEASE_M_RELEASING, /* release write in flight */
    KLEASE_M_DONE,      /* released or stopped: sends nothing more */
} klease_mstate;

typedef struct klease_machine {
    klease_timing t;
    char identity[KLEASE_ID_MAX];
    klease_mstate state;
    klease_op inflight; /* request sent and not answered */
    uint64_t sent_ms;   /* when it was sent */
    klease_record sent; /* what a CREATE/UPDATE/RELEASE wrote */
    int have_observed;  /* a lease was seen */
    klease_record observed;
    char observed_rv[KLEASE_RV_MAX];
    uint64_t observed_ms; /* when observed_rv was first seen */
    uint64_t renewed_ms;  /* send time of the last successful write as leader */
    uint64_t next_try_ms; /* next GET/renew */
    int release_tries;
} klease_machine;

/* Defaults for zero fields; returns 0 or -EINVAL unless
 * lease_duration > renew_deadline > 1.2 * retry_period > 0 (client-go's rule). */
int klease_timing_check(klease_timing *t);
/* identity is copied (truncated to KLEASE_ID_MAX-1). t must have passed klease_timing_check. */
void klease_m_init(klease_machine *m, const char *identity, const klease_timing *t);
/* Time passed: enforce the renew deadline, start the next try when due, ask
 * for a hung request to be abandoned (out.abandon). */
void klease_m_tick(klease_machine *m, const klease_now *now, klease_out *out);
/* Answer to GET: http_status 200 with rec and rv, 404 (rec NULL), other/0 = failure. */
void klease_m_on_get(klease_machine *m, const klease_now *now, long http_status,
                     const klease_record *rec, const char *rv, klease_out *out);
/* Answer to CREATE/UPDATE/RELEASE: 2xx with the stored rv, 409, other/0 = failure. */
void klease_m_on_write(klease_machine *m, const klease_now *now, long http_status, const char *rv,
                       klease_out *out);
/* The request in flight was abandoned (cancelled/timed out locally): forget it. */
void klease_m_abandon(klease_machine *m, const klease_now *now, klease_out *out);
/* Stop: a leader stops leading now (out.stopped) and, when it holds the lease,
 * gets a RELEASE to send; anyone else goes DONE. Call with nothing in flight
 * (abandon it first). */
void klease_m_release(klease_machine *m, const klease_now *now, klease_out *out);
/* Leading and within the renew deadline at now_ms. */
int klease_m_is_leader(const klease_machine *m, uint64_t now_ms);

/* ---- pure wire helpers ------------------------------------------------------------------ */

/* Parse a Lease object: spec into rec (absent fields zero/""), metadata.resourceVersion
 * into rv. Returns 0 or -EINVAL (not JSON, not an object). */
int klease_parse(const char *json, size_t len, klease_record *rec, char *rv, size_t rv_size);
/* The Lease body for POST/PUT: base (the last object read, or NULL) with spec
 * replaced by rec, metadata.name/namespace set and resourceVersion set to rv
 * (omitted when rv is NULL or ""). Compact JSON appended to out. */
int klease_format(opbuf *out, const char *base, size_t base_len, const char *ns, const char *name,
                  const char *rv, const klease_record *rec);

/* ---- the glue --------------------------------------------------------------------------- */

typedef struct klease klease;

typedef struct klease_opts {
    const char *namespace; /* of the Lease; required */
    const char *name;      /* of the Lease; required, e.g. "optipod-leader" */
    const char *identity;  /* holderIdentity; NULL = "<hostname>_<random hex>" */
    klease_timing timing;  /* zeros = client-go defaults */
    void (*on_started_leading)(void *ud);
    /* lost = 1: renewal failed or another holder took over; 0: released by klease_stop. */
    void (*on_stopped_leading)(void *ud, int lost);
    void *ud;
} klease_opts;

/* Borrows loop and rest (they must outlive it). Returns 0, -EINVAL (message in err) or -ENOMEM. */
int klease_new(klease **out, uv_loop_t *loop, krest *rest, const klease_opts *opts, operr *err);
/* Start campaigning (the first GET goes out at once). Returns 0 or a negative errno. */
int klease_start(klease *l);
/* Graceful: stop leading (on_stopped_leading(lost=0) runs before this returns
 * when leading), release the lease, then free and call on_done(ud) from the
 * loop. The release is bounded by the renew deadline. */
void klease_stop(klease *l, void (*on_done)(void *ud), void *ud);
/* Abrupt (a crash, for tests and fatal paths): cancel everything without
 * releasing or calling on_stopped_leading, free, then on_closed(ud) from the loop. */
void klease_close(klease *l, void (*on_closed)(void *ud), void *ud);
/* Leading now (checks the renew deadline against the current time). */
int klease_is_leader(const klease *l);
const char *klease_identity(const klease *l);
/* Times this candidate started leading so far (for metrics and tests). */
unsigned klease_leader_starts(const klease *l);
/* holderIdentity as last read or written ("" = none seen, or released). A candidate logs it
 * once each time it changes to another identity ("held by X"), never on every retry. */
const char *klease_holder(const klease *l);

#endif
