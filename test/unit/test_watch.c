#include "kube/projscan.h"
#include "kube/watch.h"
#include "test.h"
#include "util/log.h"

#include <errno.h>

/* Records every action the machine emits. */
typedef struct rec_act {
    enum kwatch_act type;
    char token[KWATCH_CONTINUE_MAX];
    char rv[KWATCH_RV_MAX];
    char name[64];
    int limit, timeout_s;
    uint64_t wait_ms;
} rec_act;

typedef struct rec {
    rec_act a[256];
    int n;
} rec;

static void record(const kwatch_action *a, void *ud)
{
    rec *r = ud;
    if (r->n >= (int)(sizeof r->a / sizeof r->a[0]))
        test_fail(__FILE__, __LINE__, "too many actions");
    rec_act *x = &r->a[r->n++];
    memset(x, 0, sizeof *x);
    x->type = a->type;
    x->limit = a->limit;
    x->timeout_s = a->timeout_s;
    x->wait_ms = a->wait_ms;
    if (a->continue_token)
        snprintf(x->token, sizeof x->token, "%s", a->continue_token);
    if (a->rv)
        snprintf(x->rv, sizeof x->rv, "%s", a->rv);
    kproj_obj *o = NULL;
    if (a->raw && kprojs_from_valid(a->raw, a->raw_len, KPROJ_DEPLOYMENT, &o) == 0)
        snprintf(x->name, sizeof x->name, "%s", o->name);
    kproj_free(o);
}

/* The actions since `from` as a compact string: "L(tok) W(rv) T(ms) C B I(name) E A +(n) ~(n)
 * -(n)". */
static const char *acts(const rec *r, int from)
{
    static char s[8192];
    size_t o = 0;
    s[0] = 0;
    for (int i = from; i < r->n && o < sizeof s - 200; i++) {
        const rec_act *x = &r->a[i];
        if (i > from)
            s[o++] = ' ';
        switch (x->type) {
        case KWATCH_DO_LIST:
            o += (size_t)snprintf(s + o, sizeof s - o, "L(%s)", x->token);
            break;
        case KWATCH_DO_WATCH:
            o += (size_t)snprintf(s + o, sizeof s - o, "W(%s)", x->rv);
            break;
        case KWATCH_DO_WAIT:
            o += (size_t)snprintf(s + o, sizeof s - o, "T");
            break;
        case KWATCH_DO_CANCEL:
            o += (size_t)snprintf(s + o, sizeof s - o, "C");
            break;
        case KWATCH_REPLACE_BEGIN:
            o += (size_t)snprintf(s + o, sizeof s - o, "B");
            break;
        case KWATCH_REPLACE_ITEM:
            o += (size_t)snprintf(s + o, sizeof s - o, "I(%s)", x->name);
            break;
        case KWATCH_REPLACE_END:
            o += (size_t)snprintf(s + o, sizeof s - o, "E");
            break;
        case KWATCH_REPLACE_ABORT:
            o += (size_t)snprintf(s + o, sizeof s - o, "A");
            break;
        case KWATCH_ADDED:
            o += (size_t)snprintf(s + o, sizeof s - o, "+(%s)", x->name);
            break;
        case KWATCH_MODIFIED:
            o += (size_t)snprintf(s + o, sizeof s - o, "~(%s)", x->name);
            break;
        case KWATCH_DELETED:
            o += (size_t)snprintf(s + o, sizeof s - o, "-(%s)", x->name);
            break;
        }
    }
    s[o] = 0;
    return s;
}

static const rec_act *last(const rec *r)
{
    ASSERT(r->n > 0);
    return &r->a[r->n - 1];
}

/* A list page body: names comma-separated. */
static void page(kwatch *w, uint64_t now, const char *names, const char *rv, const char *cont)
{
    char body[4096];
    size_t o = (size_t)snprintf(body, sizeof body,
                                "{\"kind\":\"DeploymentList\",\"metadata\":{\"resourceVersion\":"
                                "\"%s\",\"continue\":\"%s\"},\"items\":[",
                                rv, cont ? cont : "");
    char buf[512];
    snprintf(buf, sizeof buf, "%s", names);
    int first = 1;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        o += (size_t)snprintf(body + o, sizeof body - o,
                              "%s{\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\","
                              "\"resourceVersion\":\"%s\"}}",
                              first ? "" : ",", t, rv);
        first = 0;
    }
    snprintf(body + o, sizeof body - o, "]}");
    ASSERT_EQ_INT(kwatch_list_body(w, now, body, strlen(body)), 0);
}

static void event(kwatch *w, uint64_t now, const char *type, const char *name, const char *rv)
{
    char line[512];
    int n = snprintf(line, sizeof line,
                     "{\"type\":\"%s\",\"object\":{\"metadata\":{\"name\":\"%s\","
                     "\"namespace\":\"default\",\"resourceVersion\":\"%s\"}}}",
                     type, name, rv);
    kwatch_line(w, now, line, (size_t)n);
}

static void bookmark(kwatch *w, uint64_t now, const char *rv)
{
    char line[256];
    int n = snprintf(line, sizeof line,
                     "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Deployment\","
                     "\"metadata\":{\"resourceVersion\":\"%s\"}}}",
                     rv);
    kwatch_line(w, now, line, (size_t)n);
}

static const char *ERR410 =
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
    "\"status\":\"Failure\",\"message\":\"too old resource version: 5 (290)\",\"reason\":"
    "\"Expired\",\"code\":410}}";

/* Start, three pages, then a watch from the list's RV. */
static void start_synced(kwatch *w, rec *r)
{
    kwatch_init(w, 2, 42, record, r);
    ASSERT_EQ_INT(kwatch_start(w, 0), 0);
    ASSERT_EQ_INT(kwatch_start(w, 0), -EALREADY);
    ASSERT_STR_EQ(acts(r, 0), "L()");
    ASSERT_EQ_INT(r->a[0].limit, 2);
    page(w, 10, "a,b", "100", "tok1");
    ASSERT_EQ_INT(kwatch_has_synced(w), 0);
    page(w, 20, "c,d", "100", "tok2");
    page(w, 30, "e", "100", NULL);
    ASSERT_STR_EQ(acts(r, 0), "L() B I(a) I(b) L(tok1) I(c) I(d) L(tok2) I(e) E W(100)");
    ASSERT_EQ_INT(kwatch_has_synced(w), 1);
    ASSERT_EQ_INT(w->state, KWATCH_WATCHING);
    ASSERT_CMP_INT(last(r)->timeout_s, >=, 300);
    ASSERT_CMP_INT(last(r)->timeout_s, <=, 600);
    ASSERT_EQ_INT(w->stats.lists, 3);
    ASSERT_EQ_INT(w->stats.relists, 0);
}

static void test_watch_paging_then_events(void)
{
    kwatch w;
    rec r = {0};
    start_synced(&w, &r);
    int m = r.n;
    event(&w, 40, "ADDED", "f", "101");
    event(&w, 41, "MODIFIED", "a", "102");
    event(&w, 42, "DELETED", "b", "103");
    ASSERT_STR_EQ(acts(&r, m), "+(f) ~(a) -(b)");
    ASSERT_STR_EQ(w.rv, "103");
    ASSERT_EQ_INT(w.stats.events[KWATCH_EV_ADDED], 1);
    ASSERT_EQ_INT(w.stats.events[KWATCH_EV_MODIFIED], 1);
    ASSERT_EQ_INT(w.stats.events[KWATCH_EV_DELETED], 1);
    kwatch_release(&w);
}

static void test_watch_410_on_continue_restarts_list(void)
{
    kwatch w;
    rec r = {0};
    kwatch_init(&w, 2, 1, record, &r);
    kwatch_start(&w, 0);
    page(&w, 10, "a,b", "100", "tok1");
    kwatch_list_error(&w, 20, 410, -1);
    /* The partial set is abandoned and the list starts from the first page. */
    ASSERT_STR_EQ(acts(&r, 0), "L() B I(a) I(b) L(tok1) A L()");
    ASSERT_EQ_INT(w.stats.relists, 1);
    page(&w, 30, "a,c", "200", NULL);
    ASSERT_STR_EQ(acts(&r, 7), "B I(a) I(c) E W(200)");
    kwatch_release(&w);
}

static void test_watch_dropped_stream_resumes_without_relist(void)
{
    kwatch w;
    rec r = {0};
    start_synced(&w, &r);
    event(&w, 40, "MODIFIED", "a", "150");
    int m = r.n;
    uint64_t lists = w.stats.lists;
    kwatch_stream_failed(&w, 1000, 0, -1); /* connection lost */
    ASSERT_EQ_INT(w.state, KWATCH_BACKOFF);
    ASSERT_STR_EQ(acts(&r, m), "T");
    uint64_t wait = last(&r)->wait_ms;
    ASSERT_CMP_INT(wait, >=, 800);
    ASSERT_CMP_INT(wait, <=, 960);
    /* Inputs for the old stream are ignored while waiting. */
    event(&w, 1100, "MODIFIED", "a", "151");
    ASSERT_EQ_INT(r.n, m + 1);
    kwatch_timer(&w, 1000 + wait);
    ASSERT_STR_EQ(acts(&r, m), "T W(150)");
    ASSERT_EQ_INT(w.stats.lists, lists);
    ASSERT_EQ_INT(w.stats.reconnects, 1);
    ASSERT_EQ_INT(w.stats.relists, 0);
    kwatch_release(&w);
}

static void test_watch_normal_close_rewatches_at_once(void)
{
    kwatch w;
    rec r = {0};
    start_synced(&w, &r);
    bookmark(&w, 50, "180");
    int m = r.n;
    kwatch_stream_ended(&w, 60);
    ASSERT_STR_EQ(acts(&r, m), "W(180)");
    ASSERT_EQ_INT(w.stats.rewatches, 1);
    ASSERT_EQ_INT(w.stats.failures, 0);
    kwatch_release(&w);
}

static void test_watch_error_410_relists_with_replace(void)
{
    kwatch w;
    rec r = {0};
    start_synced(&w, &r);
    int m = r.n;
    kwatch_line(&w, 50, ERR410, strlen(ERR410));
    ASSERT_STR_EQ(acts(&r, m), "C L()");
    ASSERT_EQ_INT(w.stats.relists, 1);
    ASSERT_EQ_INT(w.stats.events[KWATCH_EV_ERROR], 1);
    /* The relist is one REPLACE (the cache derives deletions of b, d, e from it). */
    page(&w, 60, "a,c", "300", NULL);
    ASSERT_STR_EQ(acts(&r, m), "C L() B I(a) I(c) E W(300)");
    /* "Gone" and an HTTP 410 answer to the watch request relist too. */
    m = r.n;
    const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"reason\":\"Gone\","
                       "\"code\":410}}";
    kwatch_line(&w, 70, gone, strlen(gone));
    ASSERT_STR_EQ(acts(&r, m), "C L()");
    page(&w, 80, "", "310", NULL);
    m = r.n;
    kwatch_stream_failed(&w, 90, 410, -1);
    ASSERT_STR_EQ(acts(&r, m), "L()");
    ASSERT_EQ_INT(w.stats.relists, 3);
    kwatch_release(&w);
}

/* 0.8 s doubling to 30 s with jitter, Retry-After honoured, reset after 2 min healthy. */
static void test_watch_backoff_sequence(void)
{
    kwatch w;
    rec r = {0};
    start_synced(&w, &r);
    uint64_t now = 1000;
    uint64_t base[] = {800, 1600, 3200, 6400, 12800, 25600, 30000, 30000};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        kwatch_stream_failed(&w, now, i % 2 ? 503 : 0, -1);
        ASSERT_EQ_INT(last(&r)->type, KWATCH_DO_WAIT);
        uint64_t d = last(&r)->wait_ms;
        ASSERT_CMP_INT(d, >=, base[i]);
        ASSERT_CMP_INT(d, <=, base[i] + base[i] / 5);
        now += d;
        kwatch_timer(&w, now);
        ASSERT_EQ_INT(last(&r)->type, KWATCH_DO_WATCH);
        now += 10; /* fails again right away */
    }
    /* 429 with Retry-After longer than the backoff: the Retry-After wins. */
    kwatch_stream_failed(&w, now, 429, 45);
    ASSERT_EQ_INT(last(&r)->wait_ms, 45000);
    now += 45000;
    kwatch_timer(&w, now);
    /* A shorter Retry-After does not shorten the backoff. */
    kwatch_stream_failed(&w, now + 5, 503, 1);
    ASSERT_CMP_INT(last(&r)->wait_ms, >=, 30000);
    now += 40000;
    kwatch_timer(&w, now);
    /* Healthy for 2 min: the next failure starts over at 0.8 s. */
    now += 120000;
    kwatch_stream_failed(&w, now, 0, -1);
    ASSERT_CMP_INT(last(&r)->wait_ms, >=, 800);
    ASSERT_CMP_INT(last(&r)->wait_ms, <=, 960);
    ASSERT_EQ_INT(w.stats.reconnects, 10);
    ASSERT_EQ_INT(w.stats.relists, 0);
    kwatch_release(&w);
}

static void test_watch_list_failure_retries_same_page(void)
{
    kwatch w;
    rec r = {0};
    kwatch_init(&w, 2, 3, record, &r);
    kwatch_start(&w, 0);
    page(&w, 10, "a,b", "100", "tok1");
    kwatch_list_error(&w, 20, 429, 3);
    ASSERT_EQ_INT(last(&r)->type, KWATCH_DO_WAIT);
    ASSERT_EQ_INT(last(&r)->wait_ms, 3000);
    kwatch_timer(&w, 3020);
    ASSERT_STR_EQ(acts(&r, 0), "L() B I(a) I(b) L(tok1) T L(tok1)");
    /* A body that is not a list is a failure, too. */
    ASSERT_EQ_INT(kwatch_list_body(&w, 3030, "<html>", 6), -EINVAL);
    ASSERT_EQ_INT(last(&r)->type, KWATCH_DO_WAIT);
    kwatch_timer(&w, 9000);
    page(&w, 9010, "c", "100", NULL);
    ASSERT_STR_EQ(acts(&r, 7), "T L(tok1) I(c) E W(100)");
    kwatch_release(&w);
}

static void test_watch_bookmarks_update_rv_only(void)
{
    kwatch w;
    rec r = {0};
    start_synced(&w, &r);
    int m = r.n;
    bookmark(&w, 50, "260");
    ASSERT_EQ_INT(r.n, m);
    ASSERT_STR_EQ(w.rv, "260");
    ASSERT_EQ_INT(w.stats.events[KWATCH_EV_BOOKMARK], 1);
    kwatch_stream_failed(&w, 60, 0, -1);
    kwatch_timer(&w, 5000);
    ASSERT_STR_EQ(last(&r)->rv, "260");
    kwatch_release(&w);
}

static void test_watch_malformed_event_skipped(void)
{
    kwatch w;
    rec r = {0};
    start_synced(&w, &r);
    int m = r.n;
    const char *bad[] = {"{not json",
                         "{\"type\":\"ADDED\"}",
                         "{\"type\":\"NOPE\",\"object\":{}}",
                         "{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}",
                         "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}",
                         "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}} junk",
                         "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kwatch_line(&w, 50, bad[i], strlen(bad[i]));
    ASSERT_EQ_INT(w.stats.malformed, 7);
    ASSERT_EQ_INT(r.n, m);
    ASSERT_EQ_INT(w.state, KWATCH_WATCHING);
    event(&w, 60, "ADDED", "g", "190");
    ASSERT_STR_EQ(acts(&r, m), "+(g)");
    kwatch_release(&w);
}

/* The real recorded stream: MODIFIED x4, DELETED, BOOKMARK x2. */
static void test_watch_fixture_stream(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/watch-deployments.jsonl", test_fixture_dir());
    size_t n;
    char *s = test_read_file(path, &n);
    kwatch w;
    rec r = {0};
    start_synced(&w, &r);
    int m = r.n;
    char *p = s;
    char *nl = memchr(p, '\n', n);
    while (nl) {
        kwatch_line(&w, 50, p, (size_t)(nl - p));
        p = nl + 1;
        nl = memchr(p, '\n', (size_t)(s + n - p));
    }
    ASSERT_STR_EQ(acts(&r, m), "~(web) ~(web) ~(web) ~(web) -(web)");
    ASSERT_STR_EQ(w.rv, "260");
    ASSERT_EQ_INT(w.stats.events[KWATCH_EV_BOOKMARK], 2);
    ASSERT_EQ_INT(w.stats.malformed, 0);
    kwatch_release(&w);
    free(s);
}

static void test_watch_event_parse(void)
{
    kprojs_event ev;
    char reason[64], message[256];
    ASSERT_EQ_INT(kprojs_event_parse(ERR410, strlen(ERR410), &ev), 0);
    ASSERT_EQ_INT(ev.type, KWATCH_EV_ERROR);
    ASSERT_EQ_INT(ev.code, 410);
    ASSERT_EQ_INT(kprojs_str(&ev.reason, reason, sizeof reason), 0);
    ASSERT_STR_EQ(reason, "Expired");
    ASSERT_EQ_INT(kprojs_str(&ev.message, message, sizeof message), 0);
    ASSERT_STR_CONTAINS(message, "too old");
    ASSERT_STR_EQ(kwatch_ev_type_name(KWATCH_EV_BOOKMARK), "BOOKMARK");
    ASSERT_STR_EQ(kwatch_state_name(KWATCH_BACKOFF), "Backoff");
}

/* An ERROR event other than 410 (a 500 or 429 inside the stream): drop the
 * stream, wait (at least retryAfterSeconds) and resume WITHOUT relisting. */
static void test_watch_error_event_other_backs_off(void)
{
    kwatch w;
    rec r = {0};
    start_synced(&w, &r);
    event(&w, 40, "MODIFIED", "a", "120");
    int m = r.n;
    const char *e = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"reason\":"
                    "\"TooManyRequests\",\"code\":429,\"details\":{\"retryAfterSeconds\":7}}}";
    kwatch_line(&w, 50, e, strlen(e));
    ASSERT_STR_EQ(acts(&r, m), "C T");
    ASSERT_EQ_INT(last(&r)->wait_ms, 7000);
    kwatch_timer(&w, 7050);
    ASSERT_STR_EQ(acts(&r, m), "C T W(120)");
    ASSERT_EQ_INT(w.stats.relists, 0);
    kwatch_release(&w);
}

/* A stream that closes at once with nothing in it is not a normal close:
 * back off instead of spinning. */
static void test_watch_instant_empty_close_backs_off(void)
{
    kwatch w;
    rec r = {0};
    start_synced(&w, &r); /* watch issued at t=30 */
    int m = r.n;
    kwatch_stream_ended(&w, 40);
    ASSERT_STR_EQ(acts(&r, m), "T");
    ASSERT_EQ_INT(w.stats.failures, 1);
    kwatch_timer(&w, 40 + last(&r)->wait_ms);
    ASSERT_STR_EQ(acts(&r, m), "T W(100)");
    /* A long quiet watch that ends is normal. */
    m = r.n;
    kwatch_stream_ended(&w, 600000);
    ASSERT_STR_EQ(acts(&r, m), "W(100)");
    ASSERT_EQ_INT(w.stats.rewatches, 1);
    kwatch_release(&w);
}

static void test_watch_stop_ignores_everything(void)
{
    kwatch w;
    rec r = {0};
    start_synced(&w, &r);
    kwatch_stop(&w);
    int m = r.n;
    event(&w, 50, "ADDED", "z", "999");
    kwatch_stream_failed(&w, 60, 0, -1);
    kwatch_stream_ended(&w, 70);
    kwatch_timer(&w, 80);
    ASSERT_EQ_INT(r.n, m);
    ASSERT_EQ_INT(w.state, KWATCH_STOPPED);
    kwatch_release(&w);
}

/* The recorded list page and watch stream, a second page (with items that are not objects)
 * and bad lines drive the machine to exactly these actions and counters. */
static void test_recorded_list_and_stream(void)
{
    char path[1024];
    size_t page_len, stream_len;
    snprintf(path, sizeof path, "%s/list-deployments-limit1.json", test_fixture_dir());
    char *page = test_read_file(path, &page_len);
    snprintf(path, sizeof path, "%s/watch-deployments.jsonl", test_fixture_dir());
    char *stream = test_read_file(path, &stream_len);
    static const char last_page[] =
        "{\"kind\":\"DeploymentList\",\"apiVersion\":\"apps/v1\",\"metadata\":{"
        "\"resourceVersion\":\"249\"},\"items\":[{\"metadata\":{\"name\":\"web2\","
        "\"namespace\":\"default\"}},7,null]}";
    static rec r;
    kwatch w;
    r.n = 0;
    kwatch_init(&w, 1, 1, record, &r);
    kwatch_start(&w, 0);
    ASSERT_EQ_INT(kwatch_list_body(&w, 1, page, page_len), 0);
    ASSERT_EQ_INT(kwatch_list_body(&w, 2, last_page, sizeof last_page - 1), 0);
    const char *line = stream, *end = stream + stream_len;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        kwatch_line(&w, 3, line, n);
        line += n + 1;
    }
    static const char *const bad[] = {"{not json", "{\"type\":\"ADDED\"}", "[]",
                                      "{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kwatch_line(&w, 4, bad[i], strlen(bad[i]));
    /* the page's continue token, then the second page's one object (7 and null skipped) */
    ASSERT_STR_EQ(acts(&r, 0),
                  "L() B I(web) "
                  "L(eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MjQ5LCJzdGFydCI6IndlYlx1MDAwMCJ9) "
                  "I(web2) E W(249) ~(web) ~(web) ~(web) ~(web) -(web)");
    ASSERT_STR_EQ(w.rv, "260");
    ASSERT_EQ_INT(w.stats.events[KWATCH_EV_ADDED], 0);
    ASSERT_EQ_INT(w.stats.events[KWATCH_EV_MODIFIED], 4);
    ASSERT_EQ_INT(w.stats.events[KWATCH_EV_DELETED], 1);
    ASSERT_EQ_INT(w.stats.events[KWATCH_EV_BOOKMARK], 2);
    ASSERT_EQ_INT(w.stats.events[KWATCH_EV_ERROR], 0);
    ASSERT_EQ_INT(w.stats.malformed, 4);
    kwatch_stop(&w);
    kwatch_release(&w);
    free(page);
    free(stream);
}

int main(void)
{
    FILE *quiet = fopen("/dev/null", "w");
    oplog_set_sink(quiet);
    TEST_RUN(test_watch_paging_then_events);
    TEST_RUN(test_watch_410_on_continue_restarts_list);
    TEST_RUN(test_watch_dropped_stream_resumes_without_relist);
    TEST_RUN(test_watch_normal_close_rewatches_at_once);
    TEST_RUN(test_watch_error_410_relists_with_replace);
    TEST_RUN(test_watch_backoff_sequence);
    TEST_RUN(test_watch_list_failure_retries_same_page);
    TEST_RUN(test_watch_bookmarks_update_rv_only);
    TEST_RUN(test_watch_malformed_event_skipped);
    TEST_RUN(test_watch_fixture_stream);
    TEST_RUN(test_watch_event_parse);
    TEST_RUN(test_watch_error_event_other_backs_off);
    TEST_RUN(test_watch_instant_empty_close_backs_off);
    TEST_RUN(test_watch_stop_ignores_everything);
    TEST_RUN(test_recorded_list_and_stream);
    oplog_set_sink(NULL);
    fclose(quiet);
    return test_summary();
}
