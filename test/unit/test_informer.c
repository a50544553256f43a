#include "http/http.h"
#include "kube/config.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "support/fakeapi.h"
#include "test.h"
#include "support/kenv.h"
#include "support/loop.h"
#include "util/log.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

static kenv env;
static kinf *inf;

/* What the handlers saw. */
static struct seen {
    int adds, updates, deletes;
    char last_add[64], last_update[64], last_delete[64];
} seen;

static void h_add(const kproj_obj *o, void *ud)
{
    (void)ud;
    seen.adds++;
    snprintf(seen.last_add, sizeof seen.last_add, "%s/%s", o->ns, o->name);
}

static void h_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    (void)ud;
    (void)old;
    seen.updates++;
    snprintf(seen.last_update, sizeof seen.last_update, "%s/%s", cur->ns, cur->name);
}

static void h_delete(const kproj_obj *o, void *ud)
{
    (void)ud;
    seen.deletes++;
    snprintf(seen.last_delete, sizeof seen.last_delete, "%s/%s", o->ns, o->name);
}

/* Run the loop until pred() holds or ms pass (times OPTIPOD_SLOW, for valgrind);
 * returns pred(). The bounds are generous: a passing test returns early. */
static int call_pred(void *ud)
{
    return ((int (*)(void))ud)();
}

static int run_until(int (*pred)(void), unsigned ms)
{
    return tloop_until(&env.loop, call_pred, (void *)pred, ms);
}

static int synced(void)
{
    return kinf_has_synced(inf);
}

static int watching(void)
{
    return kinf_has_synced(inf) && kinf_state(inf) == KWATCH_WATCHING &&
           fakeapi_count(env.fa, "GET", "watch=") >= 1;
}

static int backing_off(void)
{
    return kinf_state(inf) == KWATCH_BACKOFF;
}

static void put_deploy(const char *ns, const char *name, int replicas)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"%s\",\"labels\":{\"app\":\"%s\",\"suite\":\"informer\"}},\"spec\":{"
             "\"replicas\":%d,"
             "\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},\"template\":{\"metadata\":{"
             "\"labels\":{\"app\":\"%s\"}},\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":"
             "\"img:1\",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}}}]}}}}",
             name, ns, name, replicas, name, name);
    ASSERT_EQ_INT(fakeapi_put_json(env.fa, buf), 0);
}

static void del_deploy(const char *ns, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/apis/apps/v1/namespaces/%s/deployments/%s", ns, name);
    ASSERT_EQ_INT(fakeapi_delete(env.fa, path), 0);
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

/* One server, client and loop for the whole binary (the fake's certificate
 * generation is slow under valgrind); each test works in its own namespace. */
static void env_start(void)
{
    kenv_start(&env, "test_informer");
}

/* Everything closes and the loop closes clean. */
static void env_stop(void)
{
    kenv_stop(&env);
}

static void setup(void)
{
    memset(&seen, 0, sizeof seen);
    fakeapi_clear_faults(env.fa);
    fakeapi_log_clear(env.fa);
}

static void new_informer_sel(const char *ns, int limit, const char *selector)
{
    operr err = {{0}};
    kinf_opts o = {.res = &KRES_DEPLOYMENTS,
                   .ns = ns,
                   .label_selector = selector,
                   .page_limit = limit,
                   .seed = 7};
    kcache_handlers h = {h_add, h_update, h_delete, NULL};
    ASSERT_EQ_INT(kinf_new(&inf, &env.loop, env.rest, &o, &h, &err), 0);
    ASSERT_EQ_INT(kinf_start(inf), 0);
    ASSERT_EQ_INT(kinf_start(inf), -EALREADY);
}

static void new_informer(const char *ns, int limit)
{
    new_informer_sel(ns, limit, NULL);
}

static int inf_closed;
static int closed(void)
{
    return inf_closed;
}

/* Close the informer: its close callback runs from the loop. */
static void teardown(void)
{
    inf_closed = 0;
    kinf_close(inf, on_closed, &inf_closed);
    inf = NULL;
    ASSERT(run_until(closed, 15000));
    ASSERT_EQ_INT(inf_closed, 1);
}

static size_t list_requests(void)
{
    return fakeapi_count(env.fa, "GET", "limit=");
}

static int three_changes(void)
{
    return seen.adds >= 7 && seen.updates >= 1 && seen.deletes >= 1;
}

/* Paged list (limit 2), then a watch from the list's RV; events reach the handlers. */
static void test_informer_pages_then_watches(void)
{
    setup();
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "d%d", i);
        put_deploy("default", name, i);
    }
    put_deploy("other", "x", 1);
    uint64_t list_rv = fakeapi_rv(env.fa);
    /* All namespaces, this suite's objects only, two per page. */
    new_informer_sel(NULL, 2, "suite=informer");
    ASSERT(run_until(watching, 15000));
    kcache *c = kinf_cache(inf);
    ASSERT_EQ_INT(kcache_count(c), 6);
    ASSERT_EQ_INT(seen.adds, 6);
    ASSERT_EQ_INT(list_requests(), 3);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "GET", "continue="), 2);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "GET", "labelSelector=suite%3Dinformer"), 4);
    const kproj_obj *o = kcache_get(c, "default", "d3");
    ASSERT_NOT_NULL(o);
    ASSERT_EQ_INT(o->replicas, 3);
    ASSERT_STR_EQ(kproj_kv_get(o->containers[0].requests, o->containers[0].nrequests, "cpu"),
                  "100m");
    const fakeapi_logged *w = fakeapi_log_last(env.fa, "GET", "watch=");
    ASSERT_NOT_NULL(w);
    char want[64];
    snprintf(want, sizeof want, "resourceVersion=%llu", (unsigned long long)list_rv);
    ASSERT_STR_CONTAINS(w->path, want);
    ASSERT_STR_CONTAINS(w->path, "allowWatchBookmarks=true");
    const char *t = strstr(w->path, "timeoutSeconds=");
    ASSERT_NOT_NULL(t);
    int tmo = atoi(t + strlen("timeoutSeconds="));
    ASSERT_CMP_INT(tmo, >=, 300);
    ASSERT_CMP_INT(tmo, <=, 600);

    put_deploy("default", "new", 1);
    put_deploy("default", "d1", 9);
    del_deploy("default", "d2");
    ASSERT(run_until(three_changes, 15000));
    ASSERT_EQ_INT(seen.adds, 7);
    ASSERT_STR_EQ(seen.last_add, "default/new");
    ASSERT_EQ_INT(seen.updates, 1);
    ASSERT_STR_EQ(seen.last_update, "default/d1");
    ASSERT_EQ_INT(kcache_get(c, "default", "d1")->replicas, 9);
    ASSERT_EQ_INT(seen.deletes, 1);
    ASSERT_NULL(kcache_get(c, "default", "d2"));
    char rv[32];
    snprintf(rv, sizeof rv, "%llu", (unsigned long long)fakeapi_rv(env.fa));
    ASSERT_STR_EQ(kinf_rv(inf), rv);
    kinf_stats st;
    kinf_stats_get(inf, &st);
    ASSERT_EQ_INT(st.watch.events[KWATCH_EV_ADDED], 1);
    ASSERT_EQ_INT(st.watch.events[KWATCH_EV_MODIFIED], 1);
    ASSERT_EQ_INT(st.watch.events[KWATCH_EV_DELETED], 1);
    ASSERT_EQ_INT(st.watch.relists, 0);
    teardown();
}

static int saw_update(void)
{
    return seen.adds >= 2;
}

/* A dropped stream backs off and resumes from the last RV: no new LIST, and
 * what changed meanwhile arrives as watch events. */
static void test_informer_dropped_stream_resumes_without_relist(void)
{
    setup();
    put_deploy("t-drop", "a", 1);
    new_informer("t-drop", 0);
    ASSERT(run_until(watching, 15000));
    ASSERT_EQ_INT(list_requests(), 1);
    uint64_t t0 = uv_now(&env.loop);
    fakeapi_drop_connections(env.fa);
    ASSERT(run_until(backing_off, 15000));
    put_deploy("t-drop", "b", 1); /* while disconnected */
    ASSERT(run_until(saw_update, 15000));
    ASSERT_CMP_INT(uv_now(&env.loop) - t0, >=, 800);
    ASSERT_NOT_NULL(kcache_get(kinf_cache(inf), "t-drop", "b"));
    ASSERT_EQ_INT(list_requests(), 1); /* the proof: never relisted */
    ASSERT_EQ_INT(fakeapi_count(env.fa, "GET", "watch="), 2);
    kinf_stats st;
    kinf_stats_get(inf, &st);
    ASSERT_EQ_INT(st.watch.reconnects, 1);
    ASSERT_EQ_INT(st.watch.relists, 0);
    /* A watch that ends normally is resumed at once, again without a LIST. */
    fakeapi_end_watches(env.fa);
    ASSERT(run_until(backing_off, 300) == 0);
    ASSERT(run_until(watching, 15000));
    kinf_stats_get(inf, &st);
    ASSERT_EQ_INT(st.watch.rewatches, 1);
    ASSERT_EQ_INT(list_requests(), 1);
    teardown();
}

static int saw_delete(void)
{
    return seen.deletes >= 1;
}

/* The RV falls out of the history while we are away: ERROR 410 → relist, and
 * the object deleted in the meantime is delivered as a delete. */
static void test_informer_410_relists_with_deletions(void)
{
    setup();
    put_deploy("t-410", "keep", 1);
    put_deploy("t-410", "gone", 1);
    new_informer("t-410", 0);
    ASSERT(run_until(watching, 15000));
    ASSERT_EQ_INT(kcache_count(kinf_cache(inf)), 2);
    fakeapi_drop_connections(env.fa);
    ASSERT(run_until(backing_off, 15000));
    del_deploy("t-410", "gone");
    put_deploy("t-410", "keep", 5);
    fakeapi_compact(env.fa);
    ASSERT(run_until(saw_delete, 15000));
    ASSERT_STR_EQ(seen.last_delete, "t-410/gone");
    ASSERT_EQ_INT(seen.updates, 1);
    ASSERT_EQ_INT(kcache_count(kinf_cache(inf)), 1);
    ASSERT_EQ_INT(kcache_get(kinf_cache(inf), "t-410", "keep")->replicas, 5);
    ASSERT_EQ_INT(list_requests(), 2);
    kinf_stats st;
    kinf_stats_get(inf, &st);
    ASSERT_EQ_INT(st.watch.relists, 1);
    ASSERT(run_until(watching, 15000));
    teardown();
}

static uint64_t t_watch2;
static int second_watch(void)
{
    if (!t_watch2 && fakeapi_count(env.fa, "GET", "watch=") >= 2)
        t_watch2 = uv_now(&env.loop);
    return t_watch2 != 0;
}

/* 429 with Retry-After: 1 on the watch: the retry waits at least 1 s, and does
 * not relist. A 503 with Retry-After on the first LIST is retried likewise. */
static void test_informer_429_retry_after_honoured(void)
{
    setup();
    put_deploy("t-429", "a", 1);
    fakeapi_fault lf = {.method = "GET",
                        .path = "limit=",
                        .watch = 0,
                        .count = 1,
                        .kind = FAKEAPI_FAULT_STATUS,
                        .status = 503,
                        .retry_after_s = 1};
    fakeapi_fault wf = {.method = "GET",
                        .path = "watch=",
                        .watch = 1,
                        .count = 1,
                        .kind = FAKEAPI_FAULT_STATUS,
                        .status = 429,
                        .retry_after_s = 1};
    ASSERT_EQ_INT(fakeapi_add_fault(env.fa, &lf), 0);
    ASSERT_EQ_INT(fakeapi_add_fault(env.fa, &wf), 0);
    uv_update_time(&env.loop);
    uint64_t t0 = uv_now(&env.loop);
    new_informer("t-429", 0);
    ASSERT(run_until(synced, 15000));
    uint64_t t_synced = uv_now(&env.loop);
    ASSERT_CMP_INT(t_synced - t0, >=, 1000);
    ASSERT_EQ_INT(list_requests(), 2);
    t_watch2 = 0;
    ASSERT(run_until(second_watch, 15000));
    ASSERT_CMP_INT(t_watch2 - t_synced, >=, 1000);
    ASSERT(run_until(watching, 15000));
    ASSERT_EQ_INT(list_requests(), 2);
    kinf_stats st;
    kinf_stats_get(inf, &st);
    ASSERT_EQ_INT(st.watch.failures, 2);
    ASSERT_EQ_INT(st.watch.reconnects, 1);
    ASSERT_EQ_INT(st.watch.relists, 0);
    teardown();
}

static int two_events(void)
{
    return seen.adds >= 3;
}

/* A garbage line in the stream is counted and skipped; the watch goes on. */
static void test_informer_malformed_event_skipped(void)
{
    setup();
    put_deploy("t-bad", "a", 1);
    fakeapi_fault f = {.path = "watch=",
                       .watch = 1,
                       .count = 1,
                       .kind = FAKEAPI_FAULT_MALFORMED,
                       .after_events = 1};
    ASSERT_EQ_INT(fakeapi_add_fault(env.fa, &f), 0);
    new_informer("t-bad", 0);
    ASSERT(run_until(watching, 15000));
    put_deploy("t-bad", "b", 1);
    put_deploy("t-bad", "c", 1);
    ASSERT(run_until(two_events, 15000));
    ASSERT_NOT_NULL(kcache_get(kinf_cache(inf), "t-bad", "c"));
    kinf_stats st;
    kinf_stats_get(inf, &st);
    ASSERT_EQ_INT(st.watch.malformed, 1);
    ASSERT_EQ_INT(st.watch.reconnects, 0);
    ASSERT_EQ_INT(st.watch.relists, 0);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "GET", "watch="), 1);
    teardown();
}

static int saw_bookmark(void)
{
    kinf_stats st;
    kinf_stats_get(inf, &st);
    return st.watch.events[KWATCH_EV_BOOKMARK] >= 1;
}

/* BOOKMARKs move the RV (no handler runs) and the next watch starts from it. */
static void test_informer_bookmarks(void)
{
    setup();
    put_deploy("t-bm", "a", 1);
    new_informer("t-bm", 0);
    ASSERT(run_until(watching, 15000));
    /* Writes elsewhere advance the global RV without events for this watch. */
    put_deploy("other", "z", 1);
    put_deploy("other", "y", 1);
    int adds = seen.adds;
    fakeapi_bookmark(env.fa);
    ASSERT(run_until(saw_bookmark, 15000));
    ASSERT_EQ_INT(seen.adds, adds);
    char rv[32];
    snprintf(rv, sizeof rv, "%llu", (unsigned long long)fakeapi_rv(env.fa));
    ASSERT_STR_EQ(kinf_rv(inf), rv);
    fakeapi_end_watches(env.fa);
    t_watch2 = 0;
    ASSERT(run_until(second_watch, 15000));
    char want[64];
    snprintf(want, sizeof want, "resourceVersion=%s&", rv);
    ASSERT_STR_CONTAINS(fakeapi_log_last(env.fa, "GET", "watch=")->path, want);
    teardown();
}

/* Closing with a LIST in flight: nothing is called back and the loop closes. */
static void test_informer_close_in_flight(void)
{
    setup();
    put_deploy("t-close", "a", 1);
    fakeapi_fault f = {
        .path = "limit=", .watch = 0, .count = 1, .kind = FAKEAPI_FAULT_DELAY, .delay_ms = 200};
    ASSERT_EQ_INT(fakeapi_add_fault(env.fa, &f), 0);
    new_informer("t-close", 0);
    for (int i = 0; i < 5; i++)
        uv_run(&env.loop, UV_RUN_NOWAIT);
    ASSERT_EQ_INT(kinf_has_synced(inf), 0);
    teardown(); /* closes the informer first */
    ASSERT_EQ_INT(seen.adds, 0);
    /* Bad options are refused with a message naming the resource. */
    operr err = {{0}};
    kinf *x = NULL;
    kinf_opts o = {.res = &KRES_LEASES};
    ASSERT_EQ_INT(kinf_new(&x, NULL, NULL, &o, NULL, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "leases");
    ASSERT_NULL(x);
}

int main(void)
{
    FILE *quiet = NULL;
    if (!getenv("TEST_VERBOSE")) {
        quiet = fopen("/dev/null", "w");
        oplog_set_sink(quiet);
    }
    /* The fake server may write to a watch connection the client already
     * dropped; a daemon ignores SIGPIPE too. */
    signal(SIGPIPE, SIG_IGN);
    TEST_RUN(env_start);
    if (!env.rest)
        return test_summary();
    TEST_RUN(test_informer_pages_then_watches);
    TEST_RUN(test_informer_dropped_stream_resumes_without_relist);
    TEST_RUN(test_informer_410_relists_with_deletions);
    TEST_RUN(test_informer_429_retry_after_honoured);
    TEST_RUN(test_informer_malformed_event_skipped);
    TEST_RUN(test_informer_bookmarks);
    TEST_RUN(test_informer_close_in_flight);
    TEST_RUN(env_stop);
    oplog_set_sink(NULL);
    if (quiet)
        fclose(quiet);
    return test_summary();
}
