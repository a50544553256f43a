/* The reconcile queue at scale, against the in-process fake API server: a pass
 * over many workloads is drained in slices, and the loop serves other requests
 * (a /healthz probe here) between them; the pass still completes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "controller/controller.h"
#include "server/probes.h"
#include "support/fakeapi.h"
#include "support/fakeapi_client.h"
#include "support/gen.h"
#include "support/kenv.h"
#include "support/loop.h"
#include "test.h"
#include "util/log.h"

enum { N = 1500 };

static kenv env;

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

static int both_closed(void *ud)
{
    return *(int *)ud >= 2;
}

typedef struct pass {
    ctl *c;
    uint64_t want;
} pass;

static int passed(void *ud)
{
    pass *p = ud;
    ctl_stats st;
    ctl_stats_get(p->c, &st);
    return st.reconciles >= p->want && ctl_pending(p->c) == 0;
}

/* The policy's status counts every workload (its walk over 1,500 states may take
 * several ticks: controller/ctl_status.c). */
static int status_counts_all(void *ud)
{
    (void)ud;
    char *j = fakeapi_get_json(env.fa, "/apis/optipod.io/v1alpha1/namespaces/scale/"
                                       "optimizationpolicies/all");
    char want[64];
    snprintf(want, sizeof want, "\"workloadsMatched\":%u", (unsigned)N);
    int ok = j && strstr(j, want) != NULL;
    free(j);
    return ok;
}

typedef struct probe {
    ctl *c;
    fakeapi_cli *cli;
    uint64_t reconciles_at_answer;
    int answered;
} probe;

/* Runs every loop iteration until the probe's answer is in: when it is, note how far
 * the pass had come. */
static void on_check(uv_check_t *h)
{
    probe *p = h->data;
    if (p->answered || !fakeapi_cli_done(p->cli))
        return;
    ctl_stats st;
    ctl_stats_get(p->c, &st);
    p->reconciles_at_answer = st.reconciles;
    p->answered = 1;
    uv_check_stop(h);
}

static void test_probe_answered_during_a_pass(void)
{
    kenv_start(&env, "test_controller_scale");
    ASSERT_EQ_INT(fakeapi_put_json(env.fa, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                                           "\"metadata\":{\"name\":\"scale\"}}"),
                  0);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    for (unsigned i = 0; i < N; i++) {
        opbuf_reset(&b);
        gen_deployment(&b, "scale", i);
        ASSERT_EQ_INT(fakeapi_put_json(env.fa, b.data), 0);
    }
    opbuf_release(&b);
    ASSERT_EQ_INT(fakeapi_put_json(env.fa, "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":"
                                           "\"OptimizationPolicy\",\"metadata\":{\"name\":\"all\","
                                           "\"namespace\":\"scale\"},\"spec\":{\"mode\":\"Auto\","
                                           "\"selector\":{\"workloadSelector\":{\"matchLabels\":{"
                                           "\"optimize\":\"true\"}}}}}"),
                  0);
    /* No usage provider: every reconcile decides and ends without a request, so
     * nothing but the slicing lets the loop turn during a pass. */
    ctl *c;
    operr err = {{0}};
    ctl_opts o = {.ns = "scale"};
    ASSERT_EQ_INT(ctl_new(&c, &env.loop, env.rest, &o, &err), 0);
    ASSERT_EQ_INT(ctl_start(c), 0);
    pass first = {c, N};
    ASSERT(tloop_until(&env.loop, passed, &first, tloop_scaled(60000)));
    ASSERT(tloop_until(&env.loop, status_counts_all, NULL, tloop_scaled(30000)));

    probes *pr;
    probes_opts po = {.bind = "127.0.0.1:0"};
    ASSERT_EQ_INT(probes_start(&pr, &env.loop, &po, &err), 0);
    ctl_stats s0;
    ctl_stats_get(c, &s0);
    /* a full pass is queued, then a probe arrives */
    char key[64];
    for (unsigned i = 0; i < N; i++) {
        snprintf(key, sizeof key, "Deployment/scale/svc-%u", i);
        ASSERT_EQ_INT(ctl_enqueue(c, key), 0);
    }
    probe p = {.c = c};
    char *req = fakeapi_cli_format("GET", "/healthz", NULL, NULL, NULL);
    ASSERT_EQ_INT(
        fakeapi_cli_start(&p.cli, &env.loop, probes_port(pr), NULL, 0, req, strlen(req), 0), 0);
    uv_check_t check;
    uv_check_init(&env.loop, &check);
    check.data = &p;
    uv_check_start(&check, on_check);
    pass second = {c, s0.reconciles + N};
    ASSERT(tloop_until(&env.loop, passed, &second, tloop_scaled(60000)));
    /* the probe was answered, and answered while the pass was still going */
    ASSERT(p.answered);
    ASSERT_EQ_INT(fakeapi_cli_result_of(p.cli)->status, 200);
    ASSERT_CMP_INT(p.reconciles_at_answer, <, s0.reconciles + N);
    /* and the pass went on to the end: every workload once */
    ctl_stats s1;
    ctl_stats_get(c, &s1);
    ASSERT_EQ_INT(s1.reconciles - s0.reconciles, N);

    free(req);
    fakeapi_cli_free(p.cli);
    uv_close((uv_handle_t *)&check, NULL);
    int closed = 0;
    probes_stop(pr, on_closed, &closed);
    ctl_close(c, on_closed, &closed);
    ASSERT(tloop_until(&env.loop, both_closed, &closed, 5000));
    kenv_stop(&env);
}

int main(void)
{
    FILE *quiet = fopen("/dev/null", "w");
    oplog_set_sink(quiet);
    TEST_RUN(test_probe_answered_during_a_pass);
    oplog_set_sink(NULL);
    fclose(quiet);
    return test_summary();
}
