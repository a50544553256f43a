/*
 * tctl: the controller under test, one harness for every controller test.
 * An environment (tctl_env: the loop, the fake API server, a krest client,
 * and a virtual clock) and a controller on it (tctl: with its Events
 * recorder and a canned provider), started and stopped in one call each.
 *
 * The controller runs on the virtual clock (ctl_opts.clock): its periods,
 * requeues, usage TTL, resize deadlines and wall times only move when the
 * harness moves them, so no test sleeps:
 *  - tctl_until() runs the loop until a condition holds; whenever the
 *    controller has settled without it, virtual time jumps to the next alarm
 *    (a tick, a delayed key). Bounded: it fails the test after 8 s of real
 *    time (scaled by $OPTIPOD_SLOW) or one virtual hour.
 *  - tctl_advance() steps virtual time by a given amount, firing each alarm
 *    due on the way at its own time and settling after each: "nothing
 *    happened within a period" is asserted after stepping past the period,
 *    together with a count that shows the controller did reconcile.
 * Settled means: no reconcile queued or running, no status write or Event in
 * flight, no alarm due, and the fake server's request log and the
 * controller's counters unchanged for a few real milliseconds (the watch
 * events a write caused have been read).
 *
 * Ownership: tctl_env_start/stop bracket a test binary; tctl_start/stop one
 * controller (the provider handed over is owned by the controller). The
 * clock outlives controllers, so times keep moving forward across them.
 */
#ifndef OPTIPOD_TEST_TCTL_H
#define OPTIPOD_TEST_TCTL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "controller/controller.h"
#include "kube/events.h"
#include "support/kenv.h"
#include "support/tprov.h"

#define TCTL_ALARMS 16

typedef struct tctl_clock {
    uint64_t now;  /* virtual monotonic ms */
    int64_t wall0; /* wall ms since the epoch at now == 0 */
    struct {
        uint64_t at;
        void (*wake)(void *arg);
        void *arg;
    } alarms[TCTL_ALARMS];
    uv_timer_t kick; /* runs alarms set for "now" from the loop */
} tctl_clock;

typedef struct tctl_env {
    kenv k;
    tctl_clock clock;
} tctl_env;

typedef struct tctl {
    tctl_env *env;
    ctl *c;
    kevents *ev;
    tprov *prov; /* NULL when the test gave its own provider */
    const char *ns;
    uint64_t sig; /* activity seen at the last settle */
} tctl;

void tctl_env_start(tctl_env *e, const char *name);
void tctl_env_stop(tctl_env *e);

/* A controller watching ns with `o` (ns, events and clock are the harness's;
 * usage_ttl_ms 0 becomes 100). prov, when not NULL, becomes o.provider. */
void tctl_start(tctl *t, tctl_env *e, const char *ns, tprov *prov, ctl_opts o);
void tctl_stop(tctl *t);

/* Run until pred(ud); virtual time moves on only while the controller is
 * settled. Returns 1, or fails the test naming `what` (file:line of the caller). */
int tctl_until_at(tctl *t, int (*pred)(void *ud), void *ud, const char *what, const char *file,
                  int line);
#define tctl_until(t, pred, ud, what) tctl_until_at((t), (pred), (ud), (what), __FILE__, __LINE__)

/* Step virtual time by ms, each alarm firing at its time; settled after. */
void tctl_advance(tctl *t, uint64_t ms);
/* Run the loop until the controller has settled (see above). */
void tctl_settle(tctl *t);

/* Virtual time now (ms). */
uint64_t tctl_now(const tctl *t);
ctl_stats tctl_stats(const tctl *t);

/* The controller last started and not stopped yet (tests run one at a time),
 * for helpers that wait or step without being handed it. */
tctl *tctl_current(void);
/* tctl_advance() and finished reconciles, of the current controller. */
void tctl_step(uint64_t ms);
uint64_t tctl_reconciles(void);

/* ---- what the fake server saw ---------------------------------------------------------- */

/* Events of `reason` created in ns (POSTs; series PATCHes are not counted),
 * and the body of the last one in *note when note is not NULL. */
size_t tctl_events(const tctl_env *e, const char *ns, const char *reason, const char **note);
/* Requests by method and path substring, with a substring of the path's
 * query (in_path) and of the body (in_body); NULL = any. */
size_t tctl_count_req(const tctl_env *e, const char *method, const char *path, const char *in_path,
                      const char *in_body);

#endif
