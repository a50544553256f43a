/*
 * kevents: the pure formatters byte-exact, then the recorder against
 * test/support/fakeapi: creation with every field, series patches, folding,
 * rate limits, the in-flight cap, 404 → re-create, 500 → logged and dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "kube/events.h"
#include "kube/rest.h"
#include "support/fakeapi.h"
#include "support/kenv.h"
#include "support/loop.h"
#include "test.h"
#include "util/log.h"

#define T0_NS          (1795312960ULL * 1000000000ULL + 123456789ULL) /* 2026-11-22T02:02:40.123456789Z */
#define EVENTS_DEFAULT "/apis/events.k8s.io/v1/namespaces/default/events"
#define EVENTS_PROD    "/apis/events.k8s.io/v1/namespaces/prod/events"

static const kevents_ref web = {"apps/v1", "Deployment", "prod", "web",
                                "5d3c6f5e-1111-4a2b-9c3d-000000000001"};

/* ---- pure helpers ----------------------------------------------------------------------- */

static void test_micro_time(void)
{
    char t[KEVENTS_MICRO_TIME_LEN + 1];
    ASSERT_EQ_INT(kevents_micro_time(T0_NS, t, sizeof(t)), 0);
    ASSERT_STR_EQ(t, "2026-11-22T02:02:40.123456Z");
    ASSERT_EQ_INT(kevents_micro_time(0, t, sizeof(t)), 0);
    ASSERT_STR_EQ(t, "1970-01-01T00:00:00.000000Z");
    ASSERT_EQ_INT(kevents_micro_time(T0_NS, t, KEVENTS_MICRO_TIME_LEN), -EINVAL);
}

static void test_parse_time(void)
{
    uint64_t ns = 0;
    ASSERT_EQ_INT(kevents_parse_time("2026-11-22T02:02:40.123456Z", &ns), 0);
    ASSERT_EQ_INT(ns, T0_NS - 789);
    ASSERT_EQ_INT(kevents_parse_time("2026-11-22T02:02:40.123456789Z", &ns), 0);
    ASSERT_EQ_INT(ns, T0_NS);
    ASSERT_EQ_INT(kevents_parse_time("2026-11-22T02:02:40Z", &ns), 0);
    ASSERT_EQ_INT(ns, 1795312960ULL * 1000000000ULL);
    ASSERT_EQ_INT(kevents_parse_time("2026-11-22T03:32:40+01:30", &ns), 0);
    ASSERT_EQ_INT(ns, 1795312960ULL * 1000000000ULL);
    ASSERT_EQ_INT(kevents_parse_time("2026-11-22 02:02:40Z", &ns), -EINVAL);
    ASSERT_EQ_INT(kevents_parse_time("2026-13-22T02:02:40Z", &ns), -EINVAL);
    ASSERT_EQ_INT(kevents_parse_time("2026-11-22T02:02:40.Z", &ns), -EINVAL);
    ASSERT_EQ_INT(kevents_parse_time("2026-11-22T02:02:40Zjunk", &ns), -EINVAL);
    ASSERT_EQ_INT(kevents_parse_time("", &ns), -EINVAL);
    /* the last second 64-bit ns hold, and the first they do not (found by fuzz_rollout_slot:
     * year 4052 wrapped to a time in the past) */
    ASSERT_EQ_INT(kevents_parse_time("2554-07-21T23:34:32.999999999Z", &ns), 0);
    ASSERT(ns == 18446744072999999999ULL);
    ASSERT_EQ_INT(kevents_parse_time("2554-07-21T23:34:33Z", &ns), -EINVAL);
    ASSERT_EQ_INT(kevents_parse_time("4052-11-22T10:00:00Z", &ns), -EINVAL);
    ASSERT_EQ_INT(kevents_parse_time("1969-12-31T23:59:59Z", &ns), -EINVAL);
}

static void test_utf8_cut(void)
{
    const char *s = "ab\xc3\xa9"
                    "cd"; /* "abécd": é is 2 bytes at offsets 2..3 */
    ASSERT_EQ_INT(kevents_utf8_cut(s, 6, 10), 6);
    ASSERT_EQ_INT(kevents_utf8_cut(s, 6, 4), 4);
    ASSERT_EQ_INT(kevents_utf8_cut(s, 6, 3), 2); /* would split é */
    ASSERT_EQ_INT(kevents_utf8_cut(s, 6, 2), 2);
    const char *e = "\xe2\x82\xac\xe2\x82\xac"; /* "€€" 3 bytes each */
    ASSERT_EQ_INT(kevents_utf8_cut(e, 6, 5), 3);
    ASSERT_EQ_INT(kevents_utf8_cut(e, 6, 4), 3);
    ASSERT_EQ_INT(kevents_utf8_cut(e, 6, 2), 0);
}

static void test_object_name(void)
{
    char out[300];
    ASSERT_EQ_INT(kevents_object_name("web", T0_NS, out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "web.18ea3ba010d04d15");
    char longname[254];
    memset(longname, 'a', 253);
    longname[253] = '\0';
    longname[235] = '-'; /* lands at the cut: must not end the name part */
    ASSERT_EQ_INT(kevents_object_name(longname, T0_NS, out, sizeof(out)), 0);
    ASSERT_CMP_INT(strlen(out), <=, KEVENTS_NAME_MAX);
    ASSERT_STR_CONTAINS(out, "a.18ea3ba010d04d15");
    ASSERT(strstr(out, "-.") == NULL);
    ASSERT_EQ_INT(kevents_object_name("web", T0_NS, out, 8), -E2BIG);
    ASSERT_EQ_INT(kevents_object_name("", T0_NS, out, sizeof(out)), -EINVAL);
}

static void test_format_event_exact(void)
{
    opbuf b;
    opbuf_init(&b, 16384);
    kevents_event ev = {
        .name = "web.18ea3ba010d04d15",
        .namespace = "prod",
        .event_time_ns = T0_NS,
        .reporting_controller = KEVENTS_CONTROLLER,
        .reporting_instance = "optipod-7c9f",
        .action = "Apply",
        .reason = "SSAConflict",
        .note = "conflict with \"argocd-controller\"",
        .type = KEVENTS_WARNING,
        .regarding = web,
    };
    ASSERT_EQ_INT(kevents_format_event(&b, &ev), 0);
    ASSERT_STR_EQ(
        b.data,
        "{\"apiVersion\":\"events.k8s.io/v1\",\"kind\":\"Event\",\"metadata\":{\"name\":"
        "\"web.18ea3ba010d04d15\",\"namespace\":\"prod\"},\"eventTime\":"
        "\"2026-11-22T02:02:40.123456Z\",\"reportingController\":\"optipod.io/controller\","
        "\"reportingInstance\":\"optipod-7c9f\",\"action\":\"Apply\",\"reason\":\"SSAConflict\","
        "\"regarding\":{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"namespace\":\"prod\","
        "\"name\":\"web\",\"uid\":\"5d3c6f5e-1111-4a2b-9c3d-000000000001\"},\"note\":"
        "\"conflict with \\\"argocd-controller\\\"\",\"type\":\"Warning\"}");
    /* With a series, and a cluster-scoped regarding without uid. */
    opbuf_reset(&b);
    ev.series_count = 3;
    ev.series_last_ns = T0_NS + 2000000000ULL;
    ev.type = KEVENTS_NORMAL;
    ev.regarding = (kevents_ref){"v1", "Namespace", NULL, "prod", NULL};
    ev.namespace = "default";
    ASSERT_EQ_INT(kevents_format_event(&b, &ev), 0);
    ASSERT_STR_CONTAINS(b.data,
                        "\"eventTime\":\"2026-11-22T02:02:40.123456Z\",\"series\":"
                        "{\"count\":3,\"lastObservedTime\":\"2026-11-22T02:02:42.123456Z\"},"
                        "\"reportingController\"");
    ASSERT_STR_CONTAINS(b.data, "\"regarding\":{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                                "\"name\":\"prod\"},");
    ASSERT_STR_CONTAINS(b.data, "\"type\":\"Normal\"}");
    /* Missing required fields are refused. */
    opbuf_reset(&b);
    ev.reason = "";
    ASSERT_EQ_INT(kevents_format_event(&b, &ev), -EINVAL);
    ev.reason = "X";
    ev.type = (kevents_type)7;
    ASSERT_EQ_INT(kevents_format_event(&b, &ev), -EINVAL);
    opbuf_release(&b);
}

static void test_format_series_patch(void)
{
    opbuf b;
    opbuf_init(&b, 1024);
    ASSERT_EQ_INT(kevents_format_series_patch(&b, 2, T0_NS), 0);
    ASSERT_STR_EQ(
        b.data, "{\"series\":{\"count\":2,\"lastObservedTime\":\"2026-11-22T02:02:40.123456Z\"}}");
    ASSERT_EQ_INT(kevents_format_series_patch(&b, 1, T0_NS), -EINVAL);
    opbuf_release(&b);
}

/* ---- against the fake API server -------------------------------------------------------- */

static kevents *rec;
static uint64_t fake_now;

static uint64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static kenv env;

static void setup(const kevents_opts *extra)
{
    operr err = {{0}};
    kenv_start(&env, "test_events");
    fake_now = T0_NS;
    kevents_opts o = {0};
    if (extra)
        o = *extra;
    o.clock_ns = fake_clock;
    if (!o.reporting_instance)
        o.reporting_instance = "optipod-test-0";
    ASSERT_EQ_INT(kevents_new(&rec, env.rest, &o, &err), 0);
}

static void teardown(void)
{
    kevents_free(rec);
    rec = NULL;
    kenv_stop(&env);
}

static int idle(void *ud)
{
    (void)ud;
    kevents_stats st;
    kevents_get_stats(rec, &st);
    return st.inflight == 0;
}

/* Run until no write is in flight. */
static void settle(void)
{
    ASSERT(tloop_until(&env.loop, idle, NULL, tloop_scaled(5000)));
}

static kevents_stats stats(void)
{
    kevents_stats st;
    kevents_get_stats(rec, &st);
    return st;
}

/* The only event stored under a collection; NULL unless exactly one. */
static char *only_event_path(const char *collection)
{
    const fakeapi_logged *lg = fakeapi_log_last(env.fa, "POST", "/events");
    if (!lg || fakeapi_object_count(env.fa, collection) != 1)
        return NULL;
    cJSON *b = cJSON_Parse(lg->body);
    const char *name =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "metadata"), "name"));
    char *p = NULL;
    if (name) {
        p = malloc(strlen(collection) + strlen(name) + 2);
        sprintf(p, "%s/%s", collection, name);
    }
    cJSON_Delete(b);
    return p;
}

static const char *sget(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_GetStringValue(x);
}

static void test_create_has_every_field(void)
{
    setup(NULL);
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "RecommendationUpdated", "Recommend",
                               "cpu %s, memory %s", "250m", "300Mi"),
                  0);
    settle();
    ASSERT_EQ_INT(stats().created, 1);
    char *path = only_event_path(EVENTS_PROD);
    ASSERT_NOT_NULL(path);
    const cJSON *ev = fakeapi_get(env.fa, path);
    ASSERT_NOT_NULL(ev);
    ASSERT_STR_EQ(sget(ev, "apiVersion", NULL), "events.k8s.io/v1");
    ASSERT_STR_EQ(sget(ev, "kind", NULL), "Event");
    ASSERT_STR_EQ(sget(ev, "metadata", "namespace"), "prod");
    ASSERT_STR_EQ(sget(ev, "metadata", "name"), "web.18ea3ba010d04d15");
    ASSERT_STR_EQ(sget(ev, "eventTime", NULL), "2026-11-22T02:02:40.123456Z");
    ASSERT_STR_EQ(sget(ev, "reportingController", NULL), "optipod.io/controller");
    ASSERT_STR_EQ(sget(ev, "reportingInstance", NULL), "optipod-test-0");
    ASSERT_STR_EQ(sget(ev, "action", NULL), "Recommend");
    ASSERT_STR_EQ(sget(ev, "reason", NULL), "RecommendationUpdated");
    ASSERT_STR_EQ(sget(ev, "note", NULL), "cpu 250m, memory 300Mi");
    ASSERT_STR_EQ(sget(ev, "type", NULL), "Normal");
    ASSERT_STR_EQ(sget(ev, "regarding", "apiVersion"), "apps/v1");
    ASSERT_STR_EQ(sget(ev, "regarding", "kind"), "Deployment");
    ASSERT_STR_EQ(sget(ev, "regarding", "namespace"), "prod");
    ASSERT_STR_EQ(sget(ev, "regarding", "name"), "web");
    ASSERT_STR_EQ(sget(ev, "regarding", "uid"), web.uid);
    ASSERT(cJSON_GetObjectItem(ev, "series") == NULL);
    const fakeapi_logged *lg = fakeapi_log_last(env.fa, "POST", "/events");
    ASSERT_STR_EQ(lg->path, "/apis/events.k8s.io/v1/namespaces/prod/events");
    ASSERT_STR_EQ(lg->content_type, "application/json");
    free(path);
    teardown();
}

static void test_cluster_scoped_goes_to_default_and_truncates(void)
{
    setup(NULL);
    kevents_ref ns = {"v1", "Namespace", NULL, "team-a", "uid-ns"};
    char note[2100];
    /* 700 × "é" (1400 bytes): the cut at 1024 must fall between sequences. */
    note[0] = 'x';
    for (int i = 0; i < 700; i++)
        memcpy(note + 1 + 2 * i, "\xc3\xa9", 2);
    note[1401] = '\0';
    char reason[200];
    memset(reason, 'R', 199);
    reason[199] = '\0';
    ASSERT_EQ_INT(kevents_emit(rec, &ns, KEVENTS_WARNING, reason, "Validate", "%s", note), 0);
    settle();
    ASSERT_EQ_INT(stats().created, 1);
    char *path = only_event_path(EVENTS_DEFAULT);
    ASSERT_NOT_NULL(path);
    const cJSON *ev = fakeapi_get(env.fa, path);
    const char *n = sget(ev, "note", NULL);
    ASSERT_NOT_NULL(n);
    ASSERT_EQ_INT(strlen(n), 1023); /* 'x' + 511 whole é; 1024 would split one */
    ASSERT_EQ_INT(strlen(sget(ev, "reason", NULL)), KEVENTS_FIELD_MAX);
    ASSERT(sget(ev, "regarding", "namespace") == NULL);
    ASSERT_STR_EQ(sget(ev, "regarding", "name"), "team-a");
    free(path);
    teardown();
}

static void test_repeats_patch_series(void)
{
    setup(NULL);
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_WARNING, "SSAConflict", "Apply", "n"), 0);
    settle();
    char *path = only_event_path(EVENTS_PROD);
    ASSERT_NOT_NULL(path);

    fake_now += 5ULL * 1000000000ULL;
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_WARNING, "SSAConflict", "Apply", "n"), 0);
    settle();
    const cJSON *ev = fakeapi_get(env.fa, path);
    const cJSON *series = cJSON_GetObjectItem(ev, "series");
    ASSERT_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(series, "count")), 2);
    ASSERT_STR_EQ(sget(series, "lastObservedTime", NULL), "2026-11-22T02:02:45.123456Z");
    const fakeapi_logged *lg = fakeapi_log_last(env.fa, "PATCH", "/events/");
    ASSERT_NOT_NULL(lg);
    ASSERT_STR_EQ(lg->content_type, "application/merge-patch+json");
    ASSERT_STR_EQ(
        lg->body,
        "{\"series\":{\"count\":2,\"lastObservedTime\":\"2026-11-22T02:02:45.123456Z\"}}");

    fake_now += 5ULL * 1000000000ULL;
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_WARNING, "SSAConflict", "Apply", "n"), 0);
    settle();
    ev = fakeapi_get(env.fa, path);
    series = cJSON_GetObjectItem(ev, "series");
    ASSERT_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(series, "count")), 3);
    ASSERT_STR_EQ(sget(series, "lastObservedTime", NULL), "2026-11-22T02:02:50.123456Z");
    /* The original eventTime stays; no second object. */
    ASSERT_STR_EQ(sget(ev, "eventTime", NULL), "2026-11-22T02:02:40.123456Z");
    ASSERT_EQ_INT(fakeapi_object_count(env.fa, EVENTS_PROD), 1);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "POST", "/events"), 1);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "PATCH", "/events"), 2);
    ASSERT_EQ_INT(stats().patched, 2);

    /* A different note is a different event. */
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_WARNING, "SSAConflict", "Apply", "other"), 0);
    settle();
    ASSERT_EQ_INT(fakeapi_object_count(env.fa, EVENTS_PROD), 2);
    free(path);
    teardown();
}

static void test_repeats_while_in_flight_fold(void)
{
    setup(NULL);
    for (int i = 0; i < 6; i++) {
        fake_now += 1000000ULL;
        ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "ResourcesApplied", "Apply", "x"), 0);
    }
    settle();
    ASSERT_EQ_INT(fakeapi_object_count(env.fa, EVENTS_PROD), 1);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "POST", "/events"), 1);
    /* One create, then one patch carrying all five repeats. */
    ASSERT_EQ_INT(fakeapi_count(env.fa, "PATCH", "/events"), 1);
    char *path = only_event_path(EVENTS_PROD);
    const cJSON *ev = fakeapi_get(env.fa, path);
    ASSERT_EQ_INT(
        cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "series"), "count")), 6);
    free(path);
    teardown();
}

static void test_rate_limit_per_object(void)
{
    kevents_opts o = {.burst = 3, .refill_ms = 60000};
    setup(&o);
    int rcs[5];
    char reason[32];
    for (int i = 0; i < 5; i++) {
        snprintf(reason, sizeof(reason), "Reason%d", i);
        rcs[i] = kevents_emit(rec, &web, KEVENTS_NORMAL, reason, "Apply", "n");
    }
    ASSERT_EQ_INT(rcs[0], 0);
    ASSERT_EQ_INT(rcs[2], 0);
    ASSERT_EQ_INT(rcs[3], -EAGAIN);
    ASSERT_EQ_INT(rcs[4], -EAGAIN);
    /* Another object has its own bucket. */
    kevents_ref api = {"apps/v1", "Deployment", "prod", "api", "uid-api"};
    ASSERT_EQ_INT(kevents_emit(rec, &api, KEVENTS_NORMAL, "Reason0", "Apply", "n"), 0);
    settle();
    ASSERT_EQ_INT(fakeapi_object_count(env.fa, EVENTS_PROD), 4);
    ASSERT_EQ_INT(stats().rate_limited, 2);

    /* A repeat without a token is counted, not written; the next allowed patch carries it. */
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "Reason0", "Apply", "n"), 0);
    settle();
    ASSERT_EQ_INT(fakeapi_count(env.fa, "PATCH", "/events"), 0);
    fake_now += 60ULL * 1000000000ULL; /* one token back */
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "Reason0", "Apply", "n"), 0);
    settle();
    ASSERT_EQ_INT(fakeapi_count(env.fa, "PATCH", "/events"), 1);
    ASSERT_STR_CONTAINS(fakeapi_log_last(env.fa, "PATCH", "/events")->body, "\"count\":3");
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "Reason9", "Apply", "n"), -EAGAIN);
    teardown();
}

static void test_inflight_cap_drops(void)
{
    kevents_opts o = {.max_inflight = 2};
    setup(&o);
    char reason[32];
    int ok = 0, dropped = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(reason, sizeof(reason), "Reason%d", i);
        int rc = kevents_emit(rec, &web, KEVENTS_NORMAL, reason, "Apply", "n");
        if (rc == 0)
            ok++;
        else if (rc == -EAGAIN)
            dropped++;
    }
    ASSERT_EQ_INT(ok, 2);
    ASSERT_EQ_INT(dropped, 3);
    ASSERT_EQ_INT(stats().dropped_inflight, 3);
    settle();
    ASSERT_EQ_INT(fakeapi_object_count(env.fa, EVENTS_PROD), 2);
    teardown();
}

static void test_expired_event_404_recreates(void)
{
    setup(NULL);
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_WARNING, "GitOpsConflictLoop", "Apply", "n"), 0);
    settle();
    char *path = only_event_path(EVENTS_PROD);
    ASSERT_NOT_NULL(path);
    ASSERT_EQ_INT(fakeapi_delete(env.fa, path), 0); /* the server's TTL removed it */
    fake_now += 1000000000ULL;
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_WARNING, "GitOpsConflictLoop", "Apply", "n"), 0);
    settle();
    ASSERT_EQ_INT(fakeapi_count(env.fa, "PATCH", "/events"), 1);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "POST", "/events"), 2);
    ASSERT_EQ_INT(stats().recreated, 1);
    char *path2 = only_event_path(EVENTS_PROD);
    ASSERT_NOT_NULL(path2);
    ASSERT(strcmp(path, path2) != 0);
    const cJSON *ev = fakeapi_get(env.fa, path2);
    ASSERT(cJSON_GetObjectItem(ev, "series") == NULL);
    ASSERT_STR_EQ(sget(ev, "eventTime", NULL), "2026-11-22T02:02:41.123456Z");
    /* The key now points at the new object: the next repeat patches it. */
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_WARNING, "GitOpsConflictLoop", "Apply", "n"), 0);
    settle();
    ev = fakeapi_get(env.fa, path2);
    ASSERT_EQ_INT(
        cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "series"), "count")), 2);
    free(path);
    free(path2);
    teardown();
}

static void test_server_error_is_logged_and_dropped(void)
{
    setup(NULL);
    FILE *logf = tmpfile();
    ASSERT_NOT_NULL(logf);
    oplog_set_sink(logf);
    fakeapi_fault f = {.method = "POST",
                       .path = "/events",
                       .watch = 0,
                       .count = 1,
                       .kind = FAKEAPI_FAULT_STATUS,
                       .status = 500,
                       .message = "etcd is sad"};
    ASSERT_EQ_INT(fakeapi_add_fault(env.fa, &f), 0);
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "InsufficientData", "Recommend", "n"), 0);
    settle();
    oplog_set_sink(NULL);
    ASSERT_EQ_INT(stats().failed, 1);
    ASSERT_EQ_INT(stats().created, 0);
    ASSERT_EQ_INT(fakeapi_object_count(env.fa, EVENTS_PROD), 0);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "POST", "/events"), 1); /* not retried */
    char buf[1024] = {0};
    rewind(logf);
    size_t n = fread(buf, 1, sizeof(buf) - 1, logf);
    fclose(logf);
    buf[n] = '\0';
    ASSERT_STR_CONTAINS(buf, "HTTP 500");
    ASSERT_STR_CONTAINS(buf, "etcd is sad");
    ASSERT_STR_CONTAINS(buf, "dropped");
    /* The key was forgotten: the same event is created afresh next time. */
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "InsufficientData", "Recommend", "n"), 0);
    settle();
    ASSERT_EQ_INT(fakeapi_object_count(env.fa, EVENTS_PROD), 1);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "PATCH", "/events"), 0);

    /* A 500 on a series patch drops that patch; the next repeat patches the full count. */
    f.method = "PATCH";
    ASSERT_EQ_INT(fakeapi_add_fault(env.fa, &f), 0);
    FILE *quiet = fopen("/dev/null", "w");
    oplog_set_sink(quiet);
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "InsufficientData", "Recommend", "n"), 0);
    settle();
    oplog_set_sink(NULL);
    fclose(quiet);
    ASSERT_EQ_INT(stats().failed, 2);
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "InsufficientData", "Recommend", "n"), 0);
    settle();
    ASSERT_STR_CONTAINS(fakeapi_log_last(env.fa, "PATCH", "/events")->body, "\"count\":3");
    ASSERT_EQ_INT(fakeapi_object_count(env.fa, EVENTS_PROD), 1);
    teardown();
}

static void test_window_closes_series(void)
{
    setup(NULL);
    ASSERT_EQ_INT(
        kevents_emit(rec, &web, KEVENTS_NORMAL, "RecommendationUpdated", "Recommend", "n"), 0);
    settle();
    fake_now += 31ULL * 60 * 1000000000ULL;
    ASSERT_EQ_INT(
        kevents_emit(rec, &web, KEVENTS_NORMAL, "RecommendationUpdated", "Recommend", "n"), 0);
    settle();
    ASSERT_EQ_INT(fakeapi_object_count(env.fa, EVENTS_PROD), 2);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "PATCH", "/events"), 0);
    teardown();
}

static void test_lru_bounds_keys(void)
{
    kevents_opts o = {.max_keys = 2};
    setup(&o);
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "A", "Apply", "n"), 0);
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "B", "Apply", "n"), 0);
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "C", "Apply", "n"), 0);
    settle();
    /* "A" was evicted: its repeat is a new object; "C" is remembered: a patch. */
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "A", "Apply", "n"), 0);
    settle();
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "C", "Apply", "n"), 0);
    settle();
    ASSERT_EQ_INT(fakeapi_object_count(env.fa, EVENTS_PROD), 4);
    ASSERT_EQ_INT(fakeapi_count(env.fa, "PATCH", "/events"), 1);
    teardown();
}

static void test_bad_args_and_free_in_flight(void)
{
    setup(NULL);
    kevents_ref noname = {"apps/v1", "Deployment", "prod", "", "u"};
    ASSERT_EQ_INT(kevents_emit(rec, &noname, KEVENTS_NORMAL, "A", "Apply", "n"), -EINVAL);
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "", "Apply", "n"), -EINVAL);
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "A", NULL, "n"), -EINVAL);
    ASSERT_EQ_INT(kevents_emit(rec, &web, (kevents_type)3, "A", "Apply", "n"), -EINVAL);
    ASSERT_STR_EQ(kevents_instance(rec), "optipod-test-0");
    ASSERT_EQ_INT(kevents_emit(rec, &web, KEVENTS_NORMAL, "A", "Apply", "n"), 0);
    ASSERT_EQ_INT(stats().inflight, 1);
    /* Freed with a write in flight: cancelled, no callback into freed memory. */
    kevents_free(rec);
    rec = NULL;
    teardown();
}

static void test_default_instance(void)
{
    kevents *r = NULL;
    operr err = {{0}};
    ASSERT_EQ_INT(kevents_new(&r, NULL, NULL, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "events recorder");
    setup(NULL);
    setenv("POD_NAME", "optipod-5f7d8-abcde", 1);
    ASSERT_EQ_INT(kevents_new(&r, env.rest, NULL, &err), 0);
    ASSERT_STR_EQ(kevents_instance(r), "optipod-5f7d8-abcde");
    kevents_free(r);
    unsetenv("POD_NAME");
    ASSERT_EQ_INT(kevents_new(&r, env.rest, NULL, &err), 0);
    char host[256];
    ASSERT_EQ_INT(gethostname(host, sizeof(host)), 0);
    host[KEVENTS_FIELD_MAX] = '\0';
    ASSERT_STR_EQ(kevents_instance(r), host);
    kevents_free(r);
    teardown();
}

int main(void)
{
    TEST_RUN(test_micro_time);
    TEST_RUN(test_parse_time);
    TEST_RUN(test_utf8_cut);
    TEST_RUN(test_object_name);
    TEST_RUN(test_format_event_exact);
    TEST_RUN(test_format_series_patch);
    TEST_RUN(test_create_has_every_field);
    TEST_RUN(test_cluster_scoped_goes_to_default_and_truncates);
    TEST_RUN(test_repeats_patch_series);
    TEST_RUN(test_repeats_while_in_flight_fold);
    TEST_RUN(test_rate_limit_per_object);
    TEST_RUN(test_inflight_cap_drops);
    TEST_RUN(test_expired_event_404_recreates);
    TEST_RUN(test_server_error_is_logged_and_dropped);
    TEST_RUN(test_window_closes_series);
    TEST_RUN(test_lru_bounds_keys);
    TEST_RUN(test_bad_args_and_free_in_flight);
    TEST_RUN(test_default_instance);
    return test_summary();
}
