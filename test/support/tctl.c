#include "support/tctl.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "support/loop.h"
#include "test.h"

#define NEVER       CTL_ALARM_NEVER
#define START_MS    1000000ULL       /* virtual time starts here: 0 reads as "never" */
#define DEADLINE_MS 8000             /* real time, scaled by $OPTIPOD_SLOW */
#define HORIZON_MS  (3600ULL * 1000) /* virtual time one wait may take */
#define QUIET_MS    4                /* real time without activity: settled */
#define MAX_FIRINGS 10000            /* alarms run by one fire_due() */

/* ---- the virtual clock ---------------------------------------------------------------------- */

static uint64_t clk_now(void *ud)
{
    return ((const tctl_clock *)ud)->now;
}

static int64_t clk_wall(void *ud)
{
    const tctl_clock *k = ud;
    return k->wall0 + (int64_t)k->now;
}

/* Run every alarm due now, earliest first (a wake may set the next one). */
static void fire_due(tctl_clock *k)
{
    for (int n = 0; n < MAX_FIRINGS; n++) {
        int best = -1;
        for (int i = 0; i < TCTL_ALARMS; i++)
            if (k->alarms[i].wake && k->alarms[i].at <= k->now &&
                (best < 0 || k->alarms[i].at < k->alarms[best].at))
                best = i;
        if (best < 0)
            return;
        void (*wake)(void *) = k->alarms[best].wake;
        void *arg = k->alarms[best].arg;
        k->alarms[best].at = NEVER; /* kept for its arg: the wake usually sets it again */
        wake(arg);
    }
    test_fail(__FILE__, __LINE__, "the controller's alarm keeps firing at the same time");
}

static void on_kick(uv_timer_t *t)
{
    fire_due(t->data);
}

static int alarm_due(const tctl_clock *k)
{
    for (int i = 0; i < TCTL_ALARMS; i++)
        if (k->alarms[i].wake && k->alarms[i].at <= k->now)
            return 1;
    return 0;
}

static uint64_t next_alarm(const tctl_clock *k)
{
    uint64_t at = NEVER;
    for (int i = 0; i < TCTL_ALARMS; i++)
        if (k->alarms[i].wake && k->alarms[i].at < at)
            at = k->alarms[i].at;
    return at;
}

static void clk_alarm(void *ud, uint64_t at, void (*wake)(void *arg), void *arg)
{
    tctl_clock *k = ud;
    int slot = -1;
    for (int i = 0; i < TCTL_ALARMS && slot < 0; i++)
        if (k->alarms[i].wake && k->alarms[i].arg == arg)
            slot = i;
    for (int i = 0; i < TCTL_ALARMS && slot < 0; i++)
        if (!k->alarms[i].wake)
            slot = i;
    if (slot < 0)
        test_fail(__FILE__, __LINE__, "more than %d alarms", TCTL_ALARMS);
    if (at == NEVER) {
        k->alarms[slot].wake = NULL;
        k->alarms[slot].arg = NULL;
        return;
    }
    k->alarms[slot].at = at;
    k->alarms[slot].wake = wake;
    k->alarms[slot].arg = arg;
    if (at <= k->now)
        uv_timer_start(&k->kick, on_kick, 0, 0); /* from the loop, never from here */
}

void tctl_env_start(tctl_env *e, const char *name)
{
    memset(e, 0, sizeof *e);
    kenv_start(&e->k, name);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    e->clock.now = START_MS;
    e->clock.wall0 = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - (int64_t)START_MS;
    ASSERT_EQ_INT(uv_timer_init(&e->k.loop, &e->clock.kick), 0);
    e->clock.kick.data = &e->clock;
}

void tctl_env_stop(tctl_env *e)
{
    uv_close((uv_handle_t *)&e->clock.kick, NULL);
    kenv_stop(&e->k);
}

/* ---- a controller ---------------------------------------------------------------------------- */

static tctl *current;

tctl *tctl_current(void)
{
    if (!current)
        test_fail(__FILE__, __LINE__, "no controller started");
    return current;
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

void tctl_start(tctl *t, tctl_env *e, const char *ns, tprov *prov, ctl_opts o)
{
    operr err = {{0}};
    memset(t, 0, sizeof *t);
    t->env = e;
    t->ns = ns;
    ASSERT_EQ_INT(kevents_new(&t->ev, e->k.rest, NULL, &err), 0);
    if (prov) {
        o.provider = &prov->p;
        t->prov = prov;
    }
    o.ns = ns;
    o.events = t->ev;
    if (!o.usage_ttl_ms)
        o.usage_ttl_ms = 100;
    o.clock = (ctl_clock){clk_now, clk_wall, clk_alarm, &e->clock};
    if (ctl_new(&t->c, &e->k.loop, e->k.rest, &o, &err) != 0)
        test_fail(__FILE__, __LINE__, "ctl_new: %s", err.msg);
    ASSERT_EQ_INT(ctl_start(t->c), 0);
    current = t;
}

void tctl_stop(tctl *t)
{
    int closed = 0;
    ctl_close(t->c, on_closed, &closed);
    ASSERT(tloop_until_flag(&t->env->k.loop, &closed, 5000));
    kevents_free(t->ev);
    t->c = NULL;
    if (current == t)
        current = NULL;
}

uint64_t tctl_now(const tctl *t)
{
    return t->env->clock.now;
}

ctl_stats tctl_stats(const tctl *t)
{
    ctl_stats st;
    ctl_stats_get(t->c, &st);
    return st;
}

void tctl_step(uint64_t ms)
{
    tctl_advance(tctl_current(), ms);
}

uint64_t tctl_reconciles(void)
{
    return tctl_stats(tctl_current()).reconciles;
}

/* ---- settling and stepping ------------------------------------------------------------------- */

/* Anything the controller or the server did: monotonic counters summed. */
static uint64_t activity(const tctl *t)
{
    ctl_stats st;
    ctl_stats_get(t->c, &st);
    kevents_stats ev;
    kevents_get_stats(t->ev, &ev);
    return fakeapi_log_count(t->env->k.fa) + st.reconciles + st.writes + st.dry_run_applies +
           st.usage_requests + ev.emitted + ev.created + ev.patched + ev.failed;
}

static int idle(const tctl *t)
{
    kevents_stats ev;
    kevents_get_stats(t->ev, &ev);
    return ctl_synced(t->c) && ctl_busy(t->c) == 0 && ev.inflight == 0 &&
           !alarm_due(&t->env->clock);
}

typedef struct settle_ctx {
    tctl *t;
    int (*pred)(void *ud);
    void *ud;
    uint64_t sig, since;
    int done;
} settle_ctx;

static int pred_settled(void *ud)
{
    settle_ctx *x = ud;
    uv_loop_t *loop = &x->t->env->k.loop;
    if (x->done || (x->pred && x->pred(x->ud)))
        return x->done = 1;
    uint64_t s = activity(x->t);
    if (s != x->sig || !idle(x->t)) {
        x->sig = s;
        x->since = uv_now(loop);
        return 0;
    }
    return x->done = uv_now(loop) - x->since >= tloop_scaled(QUIET_MS);
}

/* Settle (or stop early once pred holds). Without `force`, a controller that
 * is idle with nothing done since the last settle is taken as settled at once:
 * an alarm that did nothing needs no loop turn. */
static void settle(tctl *t, int force, int (*pred)(void *ud), void *ud)
{
    if (!force && idle(t) && activity(t) == t->sig)
        return;
    uv_loop_t *loop = &t->env->k.loop;
    uv_update_time(loop);
    settle_ctx x = {t, pred, ud, activity(t), uv_now(loop), 0};
    tloop_until(loop, pred_settled, &x, DEADLINE_MS);
    if (!x.done) {
        kevents_stats ev;
        kevents_get_stats(t->ev, &ev);
        test_fail(__FILE__, __LINE__,
                  "the controller never settled: %zu busy, %u Events in flight, alarm %s, "
                  "synced %d, activity %llu",
                  ctl_busy(t->c), ev.inflight, alarm_due(&t->env->clock) ? "due" : "not due",
                  ctl_synced(t->c), (unsigned long long)activity(t));
    }
    t->sig = activity(t);
}

void tctl_settle(tctl *t)
{
    settle(t, 1, NULL, NULL);
}

void tctl_advance(tctl *t, uint64_t ms)
{
    tctl_clock *k = &t->env->clock;
    uint64_t target = k->now + ms;
    settle(t, 1, NULL, NULL);
    for (;;) {
        uint64_t at = next_alarm(k);
        if (at > target)
            break;
        if (at > k->now)
            k->now = at;
        fire_due(k);
        settle(t, 0, NULL, NULL);
    }
    k->now = target;
    settle(t, 0, NULL, NULL);
}

int tctl_until_at(tctl *t, int (*pred)(void *ud), void *ud, const char *what, const char *file,
                  int line)
{
    tctl_clock *k = &t->env->clock;
    uv_loop_t *loop = &t->env->k.loop;
    uv_update_time(loop);
    uint64_t deadline = uv_now(loop) + tloop_scaled(DEADLINE_MS), start = k->now;
    settle(t, 1, pred, ud);
    while (!pred(ud)) {
        uv_update_time(loop);
        if (uv_now(loop) > deadline || k->now - start > HORIZON_MS)
            test_fail(file, line, "waited for %s (%llu virtual ms)", what,
                      (unsigned long long)(k->now - start));
        uint64_t at = next_alarm(k);
        if (at == NEVER)
            test_fail(file, line, "waited for %s: no alarm left", what);
        if (at > k->now)
            k->now = at;
        fire_due(k);
        settle(t, 0, pred, ud);
    }
    return 1;
}

/* ---- what the fake server saw ---------------------------------------------------------------- */

size_t tctl_count_req(const tctl_env *e, const char *method, const char *path, const char *in_path,
                      const char *in_body)
{
    size_t n = 0;
    for (size_t i = 0; i < fakeapi_log_count(e->k.fa); i++) {
        const fakeapi_logged *l = fakeapi_log_at(e->k.fa, i);
        if ((method && strcmp(l->method, method) != 0) || (path && !strstr(l->path, path)) ||
            (in_path && !strstr(l->path, in_path)) || (in_body && !strstr(l->body, in_body)))
            continue;
        n++;
    }
    return n;
}

size_t tctl_events(const tctl_env *e, const char *ns, const char *reason, const char **note)
{
    char p[128], r[128];
    snprintf(p, sizeof p, "/namespaces/%s/events", ns);
    snprintf(r, sizeof r, "\"reason\":\"%s\"", reason);
    size_t n = 0;
    for (size_t i = 0; i < fakeapi_log_count(e->k.fa); i++) {
        const fakeapi_logged *l = fakeapi_log_at(e->k.fa, i);
        if (strcmp(l->method, "POST") == 0 && strstr(l->path, p) && strstr(l->body, r)) {
            if (note)
                *note = l->body;
            n++;
        }
    }
    return n;
}
