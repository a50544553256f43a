/*
 * klease: the pure machine's timing rules as tables, the Lease wire format, and
 * the glue against test/support/fakeapi with short timings (lease 1 s, renew
 * deadline 600 ms, retry 100 ms): acquire, two candidates, takeover after
 * expiry, renew failure, release on stop, 409s.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "kube/events.h"
#include "kube/lease.h"
#include "support/fakeapi.h"
#include "support/kenv.h"
#include "support/loop.h"
#include "test.h"
#include "util/log.h"

#define WALL0 (1795312960ULL * 1000000000ULL + 123456789ULL) /* 2026-11-22T02:02:40.123456789Z */

static const klease_timing defaults = {15000, 10000, 2000};

static klease_now at(uint64_t ms)
{
    klease_now n = {ms, WALL0 + ms * 1000000ULL};
    return n;
}

static klease_record holder(const char *who, int dur, int transitions)
{
    klease_record r;
    memset(&r, 0, sizeof(r));
    snprintf(r.holder, sizeof(r.holder), "%s", who);
    r.duration_s = dur;
    r.transitions = transitions;
    r.acquire_ns = WALL0 - 1000000000ULL;
    r.renew_ns = WALL0;
    return r;
}

/* ---- the machine ------------------------------------------------------------------------ */

static void test_timing_check(void)
{
    klease_timing t = {0, 0, 0};
    ASSERT_EQ_INT(klease_timing_check(&t), 0);
    ASSERT_EQ_INT(t.lease_duration_ms, 15000);
    ASSERT_EQ_INT(t.renew_deadline_ms, 10000);
    ASSERT_EQ_INT(t.retry_period_ms, 2000);
    struct {
        klease_timing t;
        int rc;
    } rows[] = {
        {{15000, 15000, 2000}, -EINVAL}, /* deadline must be below the duration */
        {{15000, 16000, 2000}, -EINVAL},
        {{15000, 2400, 2000}, -EINVAL}, /* deadline ≤ 1.2 × retry */
        {{15000, 2401, 2000}, 0},
        {{1000, 600, 100}, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        ASSERT_EQ_INT(klease_timing_check(&rows[i].t), rows[i].rc);
}

/* Acquire an absent lease: GET → 404 → CREATE → leader. */
static void acquire_empty(klease_machine *m, uint64_t t0)
{
    klease_out o;
    klease_now n = at(t0);
    klease_m_tick(m, &n, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_GET);
    klease_m_on_get(m, &n, 404, NULL, NULL, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_CREATE);
    n = at(t0 + 50);
    klease_m_on_write(m, &n, 201, "5", &o);
    ASSERT_EQ_INT(o.started, 1);
}

static void test_m_acquire_from_empty(void)
{
    klease_machine m;
    klease_out o;
    klease_m_init(&m, "me", &defaults);
    klease_now n = at(1000);
    klease_m_tick(&m, &n, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_GET);
    ASSERT_EQ_INT(o.wake_ms, 1000 + 10000); /* abandon the GET if it hangs */
    /* Nothing more while it is in flight. */
    n = at(1500);
    klease_m_tick(&m, &n, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_NONE);
    klease_m_on_get(&m, &n, 404, NULL, NULL, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_CREATE);
    ASSERT_STR_EQ(o.write.holder, "me");
    ASSERT_EQ_INT(o.write.duration_s, 15);
    ASSERT_EQ_INT(o.write.transitions, 0);
    ASSERT_EQ_INT(o.write.acquire_ns, at(1500).wall_ns);
    ASSERT_EQ_INT(o.write.renew_ns, at(1500).wall_ns);
    ASSERT_STR_EQ(o.rv, "");
    ASSERT_EQ_INT(klease_m_is_leader(&m, 1600), 0);
    n = at(1600);
    klease_m_on_write(&m, &n, 201, "5", &o);
    ASSERT_EQ_INT(o.started, 1);
    ASSERT_EQ_INT(o.stopped, 0);
    ASSERT_EQ_INT(o.op, KLEASE_OP_NONE);
    ASSERT_EQ_INT(o.wake_ms, 1600 + 2000);
    /* Valid from the send time of the winning write. */
    ASSERT_EQ_INT(klease_m_is_leader(&m, 1600), 1);
    ASSERT_EQ_INT(klease_m_is_leader(&m, 1500 + 9999), 1);
    ASSERT_EQ_INT(klease_m_is_leader(&m, 1500 + 10000), 0);
}

static void test_m_renew_keeps_acquire_time(void)
{
    klease_machine m;
    klease_out o;
    klease_m_init(&m, "me", &defaults);
    acquire_empty(&m, 0);
    klease_now n = at(1999);
    klease_m_tick(&m, &n, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_NONE);
    n = at(2050);
    klease_m_tick(&m, &n, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_UPDATE);
    ASSERT_STR_EQ(o.rv, "5");
    ASSERT_STR_EQ(o.write.holder, "me");
    ASSERT_EQ_INT(o.write.acquire_ns, at(0).wall_ns);
    ASSERT_EQ_INT(o.write.renew_ns, at(2050).wall_ns);
    ASSERT_EQ_INT(o.write.transitions, 0);
    n = at(2100);
    klease_m_on_write(&m, &n, 200, "9", &o);
    ASSERT_EQ_INT(o.started, 0);
    ASSERT_EQ_INT(o.wake_ms, 2100 + 2000);
    ASSERT_EQ_INT(klease_m_is_leader(&m, 2050 + 9999), 1);
    ASSERT_EQ_INT(klease_m_is_leader(&m, 2050 + 10000), 0);
    /* The next renew goes with the new resourceVersion. */
    n = at(4100);
    klease_m_tick(&m, &n, &o);
    ASSERT_STR_EQ(o.rv, "9");
}

/* Renewals fail: the leader steps down at renewDeadline after its last good
 * renew's send time, which is before anyone could see the lease expire. */
static void test_m_renew_failure_stops_before_expiry(void)
{
    klease_machine m;
    klease_out o;
    klease_m_init(&m, "me", &defaults);
    acquire_empty(&m, 0);
    uint64_t t = 2000;
    int lost_at = -1;
    while (t <= 20000 && lost_at < 0) {
        klease_now n = at(t);
        klease_m_tick(&m, &n, &o);
        if (o.stopped) {
            ASSERT_EQ_INT(o.lost, 1);
            lost_at = (int)t;
            break;
        }
        if (o.op == KLEASE_OP_UPDATE) {
            n = at(t + 30);
            klease_m_on_write(&m, &n, 500, NULL, &o);
            if (o.stopped) {
                lost_at = (int)t + 30;
                break;
            }
        }
        t = o.wake_ms;
    }
    /* Acquired with a write sent at 0: leader until 10000 exactly. */
    ASSERT_EQ_INT(lost_at, 10000);
    ASSERT_CMP_INT(lost_at, <, 15000);
    ASSERT_EQ_INT(klease_m_is_leader(&m, 10000), 0);
    ASSERT_EQ_INT(m.state, KLEASE_M_CANDIDATE);
}

static void test_m_follower_waits_for_expiry_on_own_clock(void)
{
    klease_machine m;
    klease_out o;
    klease_m_init(&m, "me", &defaults);
    klease_record b = holder("b", 15, 4);
    /* Rows: time, rv the GET returns, whether we then try to take the lease. */
    struct {
        uint64_t t;
        const char *rv;
        int take;
    } rows[] = {
        {0, "7", 0},                      /* first sight: expiry counted from now */
        {14999, "7", 0},                  /* unchanged, not yet 15 s */
        {10000, "8", 0},                  /* b renewed: observation restarts at 10000 */
        {24999, "8", 0}, {25000, "8", 1}, /* 15 s without a change on our clock */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        klease_now n = at(rows[i].t);
        m.next_try_ms = 0;
        klease_m_tick(&m, &n, &o);
        ASSERT_EQ_INT(o.op, KLEASE_OP_GET);
        klease_m_on_get(&m, &n, 200, &b, rows[i].rv, &o);
        if (o.op != (rows[i].take ? KLEASE_OP_UPDATE : KLEASE_OP_NONE))
            test_fail(__FILE__, __LINE__, "row %zu: op %d", i, (int)o.op);
        if (!rows[i].take)
            ASSERT_EQ_INT(o.wake_ms, rows[i].t + 2000);
    }
    ASSERT_STR_EQ(o.rv, "8");
    ASSERT_STR_EQ(o.write.holder, "me");
    ASSERT_EQ_INT(o.write.transitions, 5);
    ASSERT_EQ_INT(o.write.acquire_ns, at(25000).wall_ns);
    klease_now n = at(25040);
    klease_m_on_write(&m, &n, 200, "9", &o);
    ASSERT_EQ_INT(o.started, 1);
}

static void test_m_released_lease_taken_at_once(void)
{
    klease_machine m;
    klease_out o;
    klease_m_init(&m, "me", &defaults);
    klease_record r = holder("", 1, 3);
    klease_now n = at(0);
    klease_m_tick(&m, &n, &o);
    klease_m_on_get(&m, &n, 200, &r, "12", &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_UPDATE);
    ASSERT_EQ_INT(o.write.transitions, 4);
    ASSERT_STR_EQ(o.rv, "12");
}

static void test_m_conflicts(void)
{
    klease_machine m;
    klease_out o;
    klease_m_init(&m, "me", &defaults);
    /* Candidate: the UPDATE meets 409 (someone won) → GET at once, then wait. */
    klease_record r = holder("", 1, 0);
    klease_now n = at(0);
    klease_m_tick(&m, &n, &o);
    klease_m_on_get(&m, &n, 200, &r, "3", &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_UPDATE);
    n = at(20);
    klease_m_on_write(&m, &n, 409, NULL, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_GET);
    ASSERT_EQ_INT(o.started, 0);
    klease_record other = holder("other", 15, 1);
    klease_m_on_get(&m, &n, 200, &other, "4", &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_NONE);
    ASSERT_EQ_INT(klease_m_is_leader(&m, 20), 0);

    /* Leader: a 409 on renew with the lease still ours → renew again, still leading. */
    klease_m_init(&m, "me", &defaults);
    acquire_empty(&m, 0);
    n = at(2050);
    klease_m_tick(&m, &n, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_UPDATE);
    klease_m_on_write(&m, &n, 409, NULL, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_GET);
    ASSERT_EQ_INT(o.stopped, 0);
    klease_record mine = holder("me", 15, 0);
    klease_m_on_get(&m, &n, 200, &mine, "6", &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_UPDATE);
    ASSERT_STR_EQ(o.rv, "6");
    klease_m_on_write(&m, &n, 200, "7", &o);
    ASSERT_EQ_INT(klease_m_is_leader(&m, 2100), 1);

    /* Leader: 409, and the lease shows another live holder → lost now. */
    n = at(4050);
    klease_m_tick(&m, &n, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_UPDATE);
    klease_m_on_write(&m, &n, 409, NULL, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_GET);
    klease_m_on_get(&m, &n, 200, &other, "8", &o);
    ASSERT_EQ_INT(o.stopped, 1);
    ASSERT_EQ_INT(o.lost, 1);
    ASSERT_EQ_INT(klease_m_is_leader(&m, 4050), 0);
}

static void test_m_late_win_and_hung_request(void)
{
    klease_machine m;
    klease_out o;
    klease_m_init(&m, "me", &defaults);
    klease_now n = at(0);
    klease_m_tick(&m, &n, &o);
    klease_m_on_get(&m, &n, 404, NULL, NULL, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_CREATE);
    /* The CREATE hangs: at the deadline the machine asks to abandon it. */
    n = at(9999);
    klease_m_tick(&m, &n, &o);
    ASSERT_EQ_INT(o.abandon, 0);
    n = at(10000);
    klease_m_tick(&m, &n, &o);
    ASSERT_EQ_INT(o.abandon, 1);
    klease_m_abandon(&m, &n, &o);
    ASSERT_EQ_INT(o.wake_ms, 10000); /* try again at once */
    /* A write that succeeds only after the deadline does not make us leader. */
    klease_m_tick(&m, &n, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_GET);
    klease_m_on_get(&m, &n, 404, NULL, NULL, &o);
    n = at(20001);
    klease_m_on_write(&m, &n, 201, "2", &o);
    ASSERT_EQ_INT(o.started, 0);
    ASSERT_EQ_INT(o.wake_ms, 20001);
    klease_m_tick(&m, &n, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_GET);
    klease_record mine = holder("me", 15, 0);
    klease_m_on_get(&m, &n, 200, &mine, "2", &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_UPDATE);
    ASSERT_EQ_INT(o.write.transitions, 0); /* still ours: no transition */
    klease_m_on_write(&m, &n, 200, "3", &o);
    ASSERT_EQ_INT(o.started, 1);
}

static void test_m_release(void)
{
    klease_machine m;
    klease_out o;
    klease_m_init(&m, "me", &defaults);
    acquire_empty(&m, 0);
    klease_now n = at(3000);
    klease_m_release(&m, &n, &o);
    ASSERT_EQ_INT(o.stopped, 1);
    ASSERT_EQ_INT(o.lost, 0);
    ASSERT_EQ_INT(o.op, KLEASE_OP_RELEASE);
    ASSERT_STR_EQ(o.write.holder, "");
    ASSERT_EQ_INT(o.write.duration_s, 1);
    ASSERT_STR_EQ(o.rv, "5");
    ASSERT_EQ_INT(klease_m_is_leader(&m, 3000), 0);
    ASSERT_EQ_INT(o.wake_ms, 3000 + 10000); /* bounded */
    /* 409: look again; still ours → one more release; then give up. */
    klease_m_on_write(&m, &n, 409, NULL, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_GET);
    klease_record mine = holder("me", 15, 0);
    klease_m_on_get(&m, &n, 200, &mine, "6", &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_RELEASE);
    ASSERT_STR_EQ(o.rv, "6");
    klease_m_on_write(&m, &n, 409, NULL, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_NONE);
    ASSERT_EQ_INT(m.state, KLEASE_M_DONE);
    ASSERT_EQ_INT(o.wake_ms, UINT64_MAX);
    /* A candidate that holds nothing just stops. */
    klease_m_init(&m, "me", &defaults);
    klease_m_release(&m, &n, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_NONE);
    ASSERT_EQ_INT(o.stopped, 0);
    ASSERT_EQ_INT(m.state, KLEASE_M_DONE);
    klease_m_tick(&m, &n, &o);
    ASSERT_EQ_INT(o.op, KLEASE_OP_NONE);
}

/* ---- wire format ------------------------------------------------------------------------ */

/* A base with duplicate keys (JSON allows them, cJSON keeps them): the body
 * carries one metadata (the first, which klease_parse read) and one spec, ours,
 * so no server can pick a stale one. Found by fuzz_lease. */
static void test_format_over_duplicate_keys(void)
{
    const char *base = "{\"metadata\":{\"name\":\"l\",\"resourceVersion\":\"7\"},"
                       "\"spec\":{\"holderIdentity\":\"old\"},"
                       "\"metadata\":{\"name\":\"stale\",\"resourceVersion\":\"1\"},"
                       "\"spec\":{\"holderIdentity\":\"stale\"}}";
    klease_record r = holder("pod-a", 15, 1);
    opbuf b;
    opbuf_init(&b, 65536);
    ASSERT_EQ_INT(klease_format(&b, base, strlen(base), "ns", "l", "8", &r), 0);
    const char *first = strstr(b.data, "\"spec\"");
    ASSERT_NOT_NULL(first);
    ASSERT_NULL(strstr(first + 1, "\"spec\""));
    first = strstr(b.data, "\"metadata\"");
    ASSERT_NOT_NULL(first);
    ASSERT_NULL(strstr(first + 1, "\"metadata\""));
    ASSERT_NULL(strstr(b.data, "stale"));
    klease_record p;
    char rv[KLEASE_RV_MAX];
    ASSERT_EQ_INT(klease_parse(b.data, b.len, &p, rv, sizeof rv), 0);
    ASSERT_STR_EQ(p.holder, "pod-a");
    ASSERT_STR_EQ(rv, "8");
    opbuf_release(&b);
}

static void test_format_and_parse(void)
{
    opbuf b;
    opbuf_init(&b, 65536);
    klease_record r = holder("pod-a_1f2e", 15, 2);
    r.acquire_ns = WALL0;
    r.renew_ns = WALL0 + 2000000000ULL;
    ASSERT_EQ_INT(klease_format(&b, NULL, 0, "optipod-system", "optipod-leader", NULL, &r), 0);
    ASSERT_STR_EQ(b.data,
                  "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
                  "\"name\":\"optipod-leader\",\"namespace\":\"optipod-system\"},\"spec\":{"
                  "\"holderIdentity\":\"pod-a_1f2e\",\"leaseDurationSeconds\":15,\"acquireTime\":"
                  "\"2026-11-22T02:02:40.123456Z\",\"renewTime\":\"2026-11-22T02:02:42.123456Z\","
                  "\"leaseTransitions\":2}}");
    /* On a base object: labels kept, rv set, spec replaced. */
    const char *base = "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                       "\"metadata\":{\"name\":\"optipod-leader\",\"namespace\":\"optipod-system\","
                       "\"resourceVersion\":\"41\",\"labels\":{\"a\":\"b\"}},"
                       "\"spec\":{\"holderIdentity\":\"old\",\"leaseDurationSeconds\":9}}";
    opbuf_reset(&b);
    klease_record rel;
    memset(&rel, 0, sizeof(rel));
    rel.duration_s = 1;
    ASSERT_EQ_INT(
        klease_format(&b, base, strlen(base), "optipod-system", "optipod-leader", "42", &rel), 0);
    ASSERT_STR_CONTAINS(b.data, "\"labels\":{\"a\":\"b\"}");
    ASSERT_STR_CONTAINS(b.data, "\"resourceVersion\":\"42\"");
    ASSERT_STR_CONTAINS(b.data, "\"spec\":{\"holderIdentity\":\"\",\"leaseDurationSeconds\":1,"
                                "\"leaseTransitions\":0}");
    klease_record p;
    char rv[KLEASE_RV_MAX];
    ASSERT_EQ_INT(klease_parse(b.data, b.len, &p, rv, sizeof(rv)), 0);
    ASSERT_STR_EQ(rv, "42");
    ASSERT_STR_EQ(p.holder, "");
    ASSERT_EQ_INT(p.duration_s, 1);
    opbuf_reset(&b);
    ASSERT_EQ_INT(klease_format(&b, NULL, 0, "ns", "n", NULL, &r), 0);
    ASSERT_EQ_INT(klease_parse(b.data, b.len, &p, rv, sizeof(rv)), 0);
    ASSERT_STR_EQ(p.holder, "pod-a_1f2e");
    ASSERT_EQ_INT(p.duration_s, 15);
    ASSERT_EQ_INT(p.transitions, 2);
    ASSERT_EQ_INT(p.acquire_ns, WALL0 - 789); /* micro-second precision on the wire */
    ASSERT_EQ_INT(p.renew_ns, WALL0 + 2000000000ULL - 789);
    ASSERT_STR_EQ(rv, "");
    ASSERT_EQ_INT(klease_parse("[1]", 3, &p, rv, sizeof(rv)), -EINVAL);
    ASSERT_EQ_INT(klease_parse("{nope", 5, &p, rv, sizeof(rv)), -EINVAL);
    ASSERT_EQ_INT(klease_format(&b, NULL, 0, "", "n", NULL, &r), -EINVAL);
    opbuf_release(&b);
}

/* ---- the glue against the fake API server ----------------------------------------------- */

#define LEASE_PATH "/apis/coordination.k8s.io/v1/namespaces/optipod-system/leases/optipod-leader"

static const klease_timing fast = {1000, 600, 100};

typedef struct cand {
    klease *l;
    int started, stopped, lost;
    uint64_t started_ms, stopped_ms;
    int closed;
} cand;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000ULL;
}

static void on_started(void *ud)
{
    cand *c = ud;
    c->started++;
    c->started_ms = now_ms();
}

static void on_stopped(void *ud, int lost)
{
    cand *c = ud;
    c->stopped++;
    c->lost += lost;
    c->stopped_ms = now_ms();
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

static kenv env;

static void setup(void)
{
    kenv_start(&env, "test_lease");
}

static void teardown(void)
{
    kenv_stop(&env);
}

static void cand_new(cand *c, const char *id)
{
    operr err = {{0}};
    memset(c, 0, sizeof(*c));
    klease_opts o = {.namespace = "optipod-system",
                     .name = "optipod-leader",
                     .identity = id,
                     .timing = fast,
                     .on_started_leading = on_started,
                     .on_stopped_leading = on_stopped,
                     .ud = c};
    if (klease_new(&c->l, &env.loop, env.rest, &o, &err))
        test_fail(__FILE__, __LINE__, "klease_new: %s", err.msg);
    ASSERT_EQ_INT(klease_start(c->l), 0);
}

/* Crash it (no release); run the loop until freed. */
static void cand_close(cand *c)
{
    klease_close(c->l, on_closed, &c->closed);
    c->l = NULL;
    ASSERT(tloop_until_flag(&env.loop, &c->closed, tloop_scaled(2000)));
}

static void cand_stop(cand *c)
{
    klease_stop(c->l, on_closed, &c->closed);
    c->l = NULL;
    ASSERT(tloop_until_flag(&env.loop, &c->closed, tloop_scaled(3000)));
}

static int either_started(void *ud)
{
    cand *c = ud;
    return c[0].started || c[1].started;
}

/* Run the loop for ms (whatever happens). */
static void run_for(unsigned ms)
{
    int never = 0;
    tloop_until_flag(&env.loop, &never, ms);
}

static const char *spec_str(const cJSON *lease, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(lease, "spec"), k));
}

static double spec_num(const cJSON *lease, const char *k)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(lease, "spec"), k));
}

static void test_acquire_from_empty_and_renew(void)
{
    setup();
    cand a;
    cand_new(&a, "pod-a");
    ASSERT_STR_EQ(klease_identity(a.l), "pod-a");
    ASSERT(tloop_until_flag(&env.loop, &a.started, tloop_scaled(2000)));
    ASSERT_EQ_INT(klease_is_leader(a.l), 1);
    ASSERT_EQ_INT(klease_leader_starts(a.l), 1);
    const cJSON *lease = fakeapi_get(env.fa, LEASE_PATH);
    ASSERT_NOT_NULL(lease);
    ASSERT_STR_EQ(spec_str(lease, "holderIdentity"), "pod-a");
    ASSERT_EQ_INT(spec_num(lease, "leaseDurationSeconds"), 1);
    ASSERT_EQ_INT(spec_num(lease, "leaseTransitions"), 0);
    char acquire[40];
    snprintf(acquire, sizeof(acquire), "%s", spec_str(lease, "acquireTime"));
    uint64_t ns;
    ASSERT_EQ_INT(strlen(acquire), KEVENTS_MICRO_TIME_LEN);
    ASSERT_EQ_INT(kevents_parse_time(acquire, &ns), 0);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "POST", "/leases"), 1);
    /* Renewals: PUTs every ~100 ms, renewTime moves, acquireTime stays. */
    run_for(tloop_scaled(450));
    ASSERT_CMP_INT(fakeapi_count(env.fa, "PUT", "/leases/optipod-leader"), >=, 2);
    lease = fakeapi_get(env.fa, LEASE_PATH);
    ASSERT_STR_EQ(spec_str(lease, "acquireTime"), acquire);
    ASSERT(strcmp(spec_str(lease, "renewTime"), acquire) > 0);
    ASSERT_EQ_INT(a.stopped, 0);
    ASSERT_EQ_INT(klease_is_leader(a.l), 1);
    const fakeapi_logged *put = fakeapi_log_last(env.fa, "PUT", "/leases/");
    ASSERT_STR_CONTAINS(put->body, "\"resourceVersion\":\"");
    cand_close(&a);
    teardown();
}

static void test_two_candidates_one_leader(void)
{
    setup();
    cand c[2];
    cand_new(&c[0], "pod-a");
    cand_new(&c[1], "pod-b");
    ASSERT(tloop_until(&env.loop, either_started, c, tloop_scaled(2000)));
    run_for(tloop_scaled(1500)); /* longer than the lease: nobody may take over */
    ASSERT_EQ_INT(c[0].started + c[1].started, 1);
    ASSERT_EQ_INT(c[0].stopped + c[1].stopped, 0);
    ASSERT_EQ_INT(klease_is_leader(c[0].l) + klease_is_leader(c[1].l), 1);
    cand *leader = c[0].started ? &c[0] : &c[1];
    ASSERT_STR_EQ(spec_str(fakeapi_get(env.fa, LEASE_PATH), "holderIdentity"),
                  klease_identity(leader->l));
    cand_close(&c[0]);
    cand_close(&c[1]);
    teardown();
}

static void test_takeover_after_expiry(void)
{
    setup();
    cand a, b;
    cand_new(&a, "pod-a");
    ASSERT(tloop_until_flag(&env.loop, &a.started, tloop_scaled(2000)));
    cand_new(&b, "pod-b");
    run_for(tloop_scaled(300));
    ASSERT_EQ_INT(b.started, 0);
    uint64_t crashed = now_ms();
    cand_close(&a); /* dies without releasing */
    ASSERT(tloop_until_flag(&env.loop, &b.started, tloop_scaled(4000)));
    /* b waited out the 1 s lease on its own clock (it last saw a change just before the crash). */
    ASSERT_CMP_INT(b.started_ms - crashed, >=, 700);
    const cJSON *lease = fakeapi_get(env.fa, LEASE_PATH);
    ASSERT_STR_EQ(spec_str(lease, "holderIdentity"), "pod-b");
    ASSERT_EQ_INT(spec_num(lease, "leaseTransitions"), 1);
    ASSERT_EQ_INT(klease_is_leader(b.l), 1);
    cand_close(&b);
    teardown();
}

static void test_renew_failure_loses_before_expiry(void)
{
    setup();
    cand a, b;
    cand_new(&a, "pod-a");
    ASSERT(tloop_until_flag(&env.loop, &a.started, tloop_scaled(2000)));
    cand_new(&b, "pod-b");
    run_for(tloop_scaled(250));
    FILE *quiet = fopen("/dev/null", "w");
    oplog_set_sink(quiet);
    fakeapi_fault f = {.method = "PUT",
                       .path = "/leases/",
                       .watch = 0,
                       .count = 0,
                       .kind = FAKEAPI_FAULT_STATUS,
                       .status = 500};
    ASSERT_EQ_INT(fakeapi_add_fault(env.fa, &f), 0);
    uint64_t broke = now_ms();
    ASSERT(tloop_until_flag(&env.loop, &a.stopped, tloop_scaled(3000)));
    uint64_t lost_after = a.stopped_ms - broke;
    ASSERT_EQ_INT(a.lost, 1);
    ASSERT_EQ_INT(klease_is_leader(a.l), 0);
    /* renewDeadline (600) after the last good renew's send time, which was at most
     * a retry period (plus latency) before the fault: well before the 1 s lease. */
    ASSERT_CMP_INT(lost_after, <, 1000);
    ASSERT_CMP_INT(lost_after, >=, 200);
    ASSERT_EQ_INT(b.started, 0);
    /* a exits on loss (as controller-runtime does); the API recovers; b takes
     * over only after a stepped down, once the lease has expired on b's clock. */
    cand_close(&a);
    fakeapi_clear_faults(env.fa);
    ASSERT(tloop_until_flag(&env.loop, &b.started, tloop_scaled(4000)));
    oplog_set_sink(NULL);
    fclose(quiet);
    ASSERT_CMP_INT(b.started_ms, >, a.stopped_ms);
    ASSERT_CMP_INT(b.started_ms - broke, >=, 700);
    ASSERT_EQ_INT(spec_num(fakeapi_get(env.fa, LEASE_PATH), "leaseTransitions"), 1);
    cand_close(&b);
    teardown();
}

/* Logged PUTs whose body contains needle. */
static size_t puts_with(const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < fakeapi_log_count(env.fa); i++) {
        const fakeapi_logged *lg = fakeapi_log_at(env.fa, i);
        if (strcmp(lg->method, "PUT") == 0 && strstr(lg->body, needle))
            n++;
    }
    return n;
}

static void test_release_on_stop_hands_over_at_once(void)
{
    setup();
    cand a, b;
    cand_new(&a, "pod-a");
    ASSERT(tloop_until_flag(&env.loop, &a.started, tloop_scaled(2000)));
    cand_new(&b, "pod-b");
    run_for(tloop_scaled(250));
    klease *al = a.l;
    klease_stop(al, on_closed, &a.closed);
    a.l = NULL;
    /* Stopped leading synchronously, before the release write. */
    ASSERT_EQ_INT(a.stopped, 1);
    ASSERT_EQ_INT(a.lost, 0);
    uint64_t stopped = now_ms();
    ASSERT(tloop_until_flag(&env.loop, &a.closed, tloop_scaled(2000)));
    /* The release PUT (b's acquiring PUT may already have followed it). */
    ASSERT_EQ_INT(puts_with("\"holderIdentity\":\"\",\"leaseDurationSeconds\":1,"), 1);
    ASSERT(tloop_until_flag(&env.loop, &b.started, tloop_scaled(2000)));
    /* At b's next try, not after waiting out the 1 s lease. */
    ASSERT_CMP_INT(b.started_ms - stopped, <, 900);
    const cJSON *lease = fakeapi_get(env.fa, LEASE_PATH);
    ASSERT_STR_EQ(spec_str(lease, "holderIdentity"), "pod-b");
    ASSERT_EQ_INT(spec_num(lease, "leaseTransitions"), 1);
    cand_stop(&b);
    ASSERT_EQ_INT(puts_with("\"holderIdentity\":\"\",\"leaseDurationSeconds\":1,"), 2);
    lease = fakeapi_get(env.fa, LEASE_PATH);
    ASSERT_STR_EQ(spec_str(lease, "holderIdentity"), "");
    teardown();
}

static void test_conflict_409_on_update(void)
{
    setup();
    cand a;
    cand_new(&a, "pod-a");
    ASSERT(tloop_until_flag(&env.loop, &a.started, tloop_scaled(2000)));
    /* One injected 409 on a renew: a re-reads, sees itself and stays leader. */
    fakeapi_fault f = {.method = "PUT",
                       .path = "/leases/",
                       .watch = 0,
                       .count = 1,
                       .kind = FAKEAPI_FAULT_STATUS,
                       .status = 409};
    ASSERT_EQ_INT(fakeapi_add_fault(env.fa, &f), 0);
    size_t gets = fakeapi_count(env.fa, "GET", "/leases/");
    run_for(tloop_scaled(400));
    ASSERT_CMP_INT(fakeapi_count(env.fa, "GET", "/leases/"), >, gets);
    ASSERT_EQ_INT(a.stopped, 0);
    ASSERT_EQ_INT(klease_is_leader(a.l), 1);
    /* Someone else writes the lease behind our back: the next renew gets a real
     * 409, the re-read shows a live holder, and a steps down at once. */
    ASSERT_EQ_INT(fakeapi_put_json(env.fa,
                                   "{\"apiVersion\":\"coordination.k8s.io/v1\","
                                   "\"kind\":\"Lease\",\"metadata\":{\"name\":"
                                   "\"optipod-leader\",\"namespace\":\"optipod-system\"},"
                                   "\"spec\":{\"holderIdentity\":\"intruder\","
                                   "\"leaseDurationSeconds\":3600,\"leaseTransitions\":7}}"),
                  0);
    uint64_t t = now_ms();
    ASSERT(tloop_until_flag(&env.loop, &a.stopped, tloop_scaled(2000)));
    ASSERT_EQ_INT(a.lost, 1);
    ASSERT_CMP_INT(a.stopped_ms - t, <, 550);
    ASSERT_EQ_INT(klease_is_leader(a.l), 0);
    /* It stays a candidate and leaves the intruder's lease alone. */
    size_t puts = fakeapi_count(env.fa, "PUT", "/leases/");
    run_for(tloop_scaled(400));
    ASSERT_EQ_INT(fakeapi_count(env.fa, "PUT", "/leases/"), puts);
    ASSERT_STR_EQ(spec_str(fakeapi_get(env.fa, LEASE_PATH), "holderIdentity"), "intruder");
    cand_stop(&a); /* holds nothing: no release write */
    ASSERT_EQ_INT(fakeapi_count(env.fa, "PUT", "/leases/"), puts);
    teardown();
}

static void test_bad_options(void)
{
    klease *l = NULL;
    operr err = {{0}};
    uv_loop_t lp;
    ASSERT_EQ_INT(uv_loop_init(&lp), 0);
    klease_opts o = {.namespace = "ns", .name = "n", .timing = {1000, 1000, 100}};
    ASSERT_EQ_INT(klease_new(&l, &lp, (krest *)&err, &o, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "leaseDuration > renewDeadline");
    o.timing = fast;
    o.name = "";
    ASSERT_EQ_INT(klease_new(&l, &lp, (krest *)&err, &o, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "name");
    ASSERT(l == NULL);
    ASSERT_EQ_INT(uv_loop_close(&lp), 0);
}

static void test_default_identity_and_stop_unstarted(void)
{
    setup();
    klease *l = NULL;
    operr err = {{0}};
    klease_opts o = {.namespace = "optipod-system", .name = "optipod-leader"};
    ASSERT_EQ_INT(klease_new(&l, &env.loop, env.rest, &o, &err), 0);
    char host[200];
    ASSERT_EQ_INT(gethostname(host, sizeof(host)), 0);
    const char *id = klease_identity(l);
    ASSERT_EQ_INT(strncmp(id, host, strlen(host)), 0);
    ASSERT_EQ_INT(id[strlen(host)], '_');
    ASSERT_EQ_INT(strlen(id), strlen(host) + 13);
    ASSERT_EQ_INT(klease_is_leader(l), 0);
    int closed = 0;
    klease_stop(l, on_closed, &closed);
    ASSERT(tloop_until_flag(&env.loop, &closed, tloop_scaled(1000)));
    ASSERT_EQ_INT(fakeapi_log_count(env.fa), 0);
    teardown();
}

int main(void)
{
    TEST_RUN(test_timing_check);
    TEST_RUN(test_m_acquire_from_empty);
    TEST_RUN(test_m_renew_keeps_acquire_time);
    TEST_RUN(test_m_renew_failure_stops_before_expiry);
    TEST_RUN(test_m_follower_waits_for_expiry_on_own_clock);
    TEST_RUN(test_m_released_lease_taken_at_once);
    TEST_RUN(test_m_conflicts);
    TEST_RUN(test_m_late_win_and_hung_request);
    TEST_RUN(test_m_release);
    TEST_RUN(test_format_and_parse);
    TEST_RUN(test_format_over_duplicate_keys);
    TEST_RUN(test_acquire_from_empty_and_renew);
    TEST_RUN(test_two_candidates_one_leader);
    TEST_RUN(test_takeover_after_expiry);
    TEST_RUN(test_renew_failure_loses_before_expiry);
    TEST_RUN(test_release_on_stop_hands_over_at_once);
    TEST_RUN(test_conflict_409_on_update);
    TEST_RUN(test_bad_options);
    TEST_RUN(test_default_identity_and_stop_unstarted);
    return test_summary();
}
