#include "kube/watch.h"

#include "kube/projscan.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"

#define KWATCH_BACKOFF_INITIAL_MS 800
#define KWATCH_BACKOFF_MAX_MS     30000
#define KWATCH_BACKOFF_JITTER     0.2
#define KWATCH_HEALTHY_MS         120000 /* a watch up this long ends a bad spell */
#define KWATCH_INSTANT_CLOSE_MS   1000   /* an empty watch closed this fast is not "normal" */
#define KWATCH_TIMEOUT_MIN_S      300 /* spread watch ends so informers do not reconnect in step */
#define KWATCH_TIMEOUT_SPAN_S     301

static const char *const kwatch_type_names[KWATCH_EV_NTYPES] = {"ADDED", "MODIFIED", "DELETED",
                                                                "BOOKMARK", "ERROR"};

const char *kwatch_ev_type_name(enum kwatch_ev_type t)
{
    return (unsigned)t < KWATCH_EV_NTYPES ? kwatch_type_names[t] : "?";
}

const char *kwatch_state_name(enum kwatch_state s)
{
    switch (s) {
    case KWATCH_EMPTY:
        return "Empty";
    case KWATCH_LISTING:
        return "Listing";
    case KWATCH_WATCHING:
        return "Watching";
    case KWATCH_BACKOFF:
        return "Backoff";
    case KWATCH_STOPPED:
        return "Stopped";
    }
    return "?";
}

/* ---- the machine -------------------------------------------------------------------------- */

static uint64_t kwatch_rand(kwatch *w)
{
    /* xorshift64*: enough for jitter, and reproducible from the seed. */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double kwatch_rand01(kwatch *w)
{
    return (double)(kwatch_rand(w) >> 11) * (1.0 / 9007199254740992.0);
}

void kwatch_init(kwatch *w, int limit, uint64_t seed, kwatch_emit_cb emit, void *ud)
{
    memset(w, 0, sizeof *w);
    w->state = KWATCH_EMPTY;
    w->limit = limit > 0 ? limit : 500;
    w->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
    w->healthy_reset_ms = KWATCH_HEALTHY_MS;
    opbackoff_init(&w->backoff, KWATCH_BACKOFF_INITIAL_MS, KWATCH_BACKOFF_MAX_MS, KWATCH_HEALTHY_MS,
                   KWATCH_BACKOFF_JITTER);
    w->emit = emit;
    w->ud = ud;
}

void kwatch_release(kwatch *w)
{
    /* Nothing is heap-allocated; forget the state so a reused struct starts clean. */
    w->state = KWATCH_STOPPED;
    w->rv[0] = 0;
    w->cont[0] = 0;
}

int kwatch_has_synced(const kwatch *w)
{
    return w->synced;
}

static void kwatch_do(kwatch *w, const kwatch_action *a)
{
    if (w->emit)
        w->emit(a, w->ud);
}

static void kwatch_simple(kwatch *w, enum kwatch_act type)
{
    kwatch_action a = {.type = type};
    kwatch_do(w, &a);
}

static void kwatch_issue_list(kwatch *w)
{
    kwatch_action a = {.type = KWATCH_DO_LIST, .limit = w->limit};
    a.continue_token = w->cont[0] ? w->cont : NULL;
    w->state = KWATCH_LISTING;
    w->stats.lists++;
    kwatch_do(w, &a);
}

/* Throw away any partial set and list again from the first page. */
static void kwatch_relist(kwatch *w)
{
    if (w->replacing) {
        w->replacing = 0;
        kwatch_simple(w, KWATCH_REPLACE_ABORT);
    }
    w->cont[0] = 0;
    w->stats.relists++;
    kwatch_issue_list(w);
}

static void kwatch_issue_watch(kwatch *w, uint64_t now_ms)
{
    kwatch_action a = {.type = KWATCH_DO_WATCH, .rv = w->rv};
    a.timeout_s = KWATCH_TIMEOUT_MIN_S + (int)(kwatch_rand(w) % KWATCH_TIMEOUT_SPAN_S);
    w->state = KWATCH_WATCHING;
    w->watch_start_ms = now_ms;
    w->watch_lines = 0;
    w->stats.watches++;
    kwatch_do(w, &a);
}

static void kwatch_set_rv(kwatch *w, const char *rv)
{
    if (!rv || !*rv)
        return;
    size_t n = strlen(rv);
    if (n >= sizeof w->rv) {
        OPLOG_W("watch: resourceVersion of %zu bytes ignored", n);
        return;
    }
    memcpy(w->rv, rv, n + 1);
}

/* Back off, then redo `what` (LISTING: the current page; WATCHING: resume from rv). */
static void kwatch_backoff(kwatch *w, uint64_t now_ms, enum kwatch_state what, long retry_after_s)
{
    /* A watch that stayed up long enough proves the trouble was over. */
    if (w->state == KWATCH_WATCHING && now_ms - w->watch_start_ms >= w->healthy_reset_ms)
        opbackoff_reset(&w->backoff);
    uint64_t d = opbackoff_next(&w->backoff, now_ms, kwatch_rand01(w));
    if (retry_after_s > 0 && (uint64_t)retry_after_s * 1000 > d)
        d = (uint64_t)retry_after_s * 1000;
    w->stats.failures++;
    w->state = KWATCH_BACKOFF;
    w->after_wait = what;
    kwatch_action a = {.type = KWATCH_DO_WAIT, .wait_ms = d};
    kwatch_do(w, &a);
}

int kwatch_start(kwatch *w, uint64_t now_ms)
{
    (void)now_ms;
    if (w->state != KWATCH_EMPTY)
        return -EALREADY;
    w->cont[0] = 0;
    kwatch_issue_list(w);
    return 0;
}

/* Start (or continue) the replaced set; 0 when the machine is listing. */
static int kwatch_page_begin(kwatch *w)
{
    if (w->state != KWATCH_LISTING)
        return -1;
    if (!w->replacing) {
        w->replacing = 1;
        kwatch_simple(w, KWATCH_REPLACE_BEGIN);
    }
    return 0;
}

/* A continue token we cannot hold: drop the set and list again. */
static void kwatch_cont_too_long(kwatch *w, uint64_t now_ms)
{
    OPLOG_W("list: continue token longer than %zu bytes, restarting the list", sizeof w->cont - 1);
    w->replacing = 0;
    w->cont[0] = 0;
    kwatch_simple(w, KWATCH_REPLACE_ABORT);
    kwatch_backoff(w, now_ms, KWATCH_LISTING, -1);
}

/* After a page's items: the next page, or the end of the set and the watch. */
static void kwatch_page_end(kwatch *w, uint64_t now_ms, const char *rv, const char *continue_token)
{
    if (continue_token && *continue_token) {
        size_t n = strlen(continue_token);
        if (n >= sizeof w->cont) {
            kwatch_cont_too_long(w, now_ms);
            return;
        }
        memcpy(w->cont, continue_token, n + 1);
        kwatch_issue_list(w);
        return;
    }
    w->cont[0] = 0;
    w->replacing = 0;
    kwatch_simple(w, KWATCH_REPLACE_END);
    w->synced = 1;
    kwatch_set_rv(w, rv);
    kwatch_issue_watch(w, now_ms);
}

int kwatch_list_body(kwatch *w, uint64_t now_ms, const char *body, size_t len)
{
    kprojs_list l;
    if (kprojs_list_parse(body, len, &l) != 0) {
        OPLOG_W("list: response body is not a list (%zu bytes)", len);
        kwatch_list_error(w, now_ms, 0, -1);
        return -EINVAL;
    }
    if (kwatch_page_begin(w))
        return 0;
    const char *item;
    size_t n;
    while (kprojs_list_next(&l, &item, &n) == 1) {
        if (n == 0 || item[0] != '{')
            continue; /* an item that is not an object is skipped */
        kwatch_action a = {.type = KWATCH_REPLACE_ITEM, .raw = item, .raw_len = n};
        kwatch_do(w, &a);
        if (w->state != KWATCH_LISTING)
            return 0;
    }
    char rv[KWATCH_RV_MAX * 4], cont[KWATCH_CONTINUE_MAX];
    kprojs_str(&l.rv, rv, sizeof rv);
    if (kprojs_str(&l.cont, cont, sizeof cont) == -E2BIG) {
        kwatch_cont_too_long(w, now_ms);
        return 0;
    }
    kwatch_page_end(w, now_ms, rv[0] ? rv : NULL, cont);
    return 0;
}

void kwatch_list_error(kwatch *w, uint64_t now_ms, long http_status, long retry_after_s)
{
    if (w->state != KWATCH_LISTING)
        return;
    if (http_status == 410 && w->cont[0]) {
        /* The continue token expired (etcd compaction): the pages we have are
         * from an older snapshot, so start over for a consistent set. */
        OPLOG_I("list: continue token expired, restarting the list");
        kwatch_relist(w);
        return;
    }
    /* Anything else: retry the same page after a backoff. */
    kwatch_backoff(w, now_ms, KWATCH_LISTING, retry_after_s);
}

void kwatch_event_in(kwatch *w, uint64_t now_ms, const kwatch_event *ev)
{
    if (w->state != KWATCH_WATCHING || (unsigned)ev->type >= KWATCH_EV_NTYPES)
        return;
    w->stats.events[ev->type]++;
    w->watch_lines++;
    kwatch_action a = {.raw = ev->raw, .raw_len = ev->raw_len};
    switch (ev->type) {
    case KWATCH_EV_ADDED:
        a.type = KWATCH_ADDED;
        break;
    case KWATCH_EV_MODIFIED:
        a.type = KWATCH_MODIFIED;
        break;
    case KWATCH_EV_DELETED:
        a.type = KWATCH_DELETED;
        break;
    case KWATCH_EV_BOOKMARK:
        kwatch_set_rv(w, ev->rv);
        return;
    case KWATCH_EV_ERROR:
    default:
        kwatch_simple(w, KWATCH_DO_CANCEL);
        if (w->state != KWATCH_WATCHING)
            return;
        if (ev->code == 410) {
            /* Our RV fell out of the server's history: only a relist (with the
             * deletions it implies) brings the cache back in line. */
            OPLOG_I("watch: resourceVersion %s too old (%s), relisting", w->rv,
                    ev->reason[0] ? ev->reason : "Gone");
            kwatch_relist(w);
        } else {
            OPLOG_W("watch: ERROR event code %d %s: %s", ev->code, ev->reason, ev->message);
            kwatch_backoff(w, now_ms, KWATCH_WATCHING, ev->retry_after_s);
        }
        return;
    }
    kwatch_set_rv(w, ev->rv);
    kwatch_do(w, &a);
}

void kwatch_line(kwatch *w, uint64_t now_ms, const char *line, size_t len)
{
    if (w->state != KWATCH_WATCHING)
        return;
    kprojs_event pe;
    if (kprojs_event_parse(line, len, &pe) != 0) {
        w->watch_lines++;
        w->stats.malformed++;
        OPLOG_W("watch: malformed event skipped (%zu bytes: %.*s%s)", len,
                (int)(len < 80 ? len : 80), line, len > 80 ? "..." : "");
        return;
    }
    char rv[KWATCH_RV_MAX * 4], reason[128], message[1024];
    kwatch_event ev = {.type = pe.type,
                       .raw = pe.object,
                       .raw_len = pe.object_len,
                       .code = pe.code,
                       .reason = reason,
                       .message = message,
                       .retry_after_s = pe.retry_after_s};
    ev.rv = kprojs_str(&pe.rv, rv, sizeof rv) == 0 ? rv : NULL;
    kprojs_str(&pe.reason, reason, sizeof reason);
    kprojs_str(&pe.message, message, sizeof message);
    kwatch_event_in(w, now_ms, &ev);
}

void kwatch_stream_ended(kwatch *w, uint64_t now_ms)
{
    if (w->state != KWATCH_WATCHING)
        return;
    /* A server (or proxy) that answers 200 and hangs up at once, again and
     * again, would have us spin: an instant empty close counts as a failure. */
    if (w->watch_lines == 0 && now_ms - w->watch_start_ms < KWATCH_INSTANT_CLOSE_MS) {
        OPLOG_W("watch: stream closed at once without events, backing off");
        kwatch_backoff(w, now_ms, KWATCH_WATCHING, -1);
        return;
    }
    w->stats.rewatches++;
    kwatch_issue_watch(w, now_ms);
}

void kwatch_stream_failed(kwatch *w, uint64_t now_ms, long http_status, long retry_after_s)
{
    if (w->state != KWATCH_WATCHING)
        return;
    if (http_status == 410) {
        OPLOG_I("watch: resourceVersion %s gone (HTTP 410), relisting", w->rv);
        kwatch_relist(w);
        return;
    }
    kwatch_backoff(w, now_ms, KWATCH_WATCHING, retry_after_s);
}

void kwatch_timer(kwatch *w, uint64_t now_ms)
{
    if (w->state != KWATCH_BACKOFF)
        return;
    if (w->after_wait == KWATCH_WATCHING) {
        w->stats.reconnects++;
        kwatch_issue_watch(w, now_ms);
    } else {
        kwatch_issue_list(w);
    }
}

void kwatch_stop(kwatch *w)
{
    w->state = KWATCH_STOPPED;
}
