#include "kube/informer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/log.h"

#define KINF_PATH_MAX      16384
#define KINF_STALL_GRACE_S 60 /* a watch silent this long past its timeout is dead */

enum kinf_pending { KINF_PEND_NONE, KINF_PEND_LIST_FAIL, KINF_PEND_WATCH_FAIL };

struct kinf {
    uv_loop_t *loop;
    krest *rest;
    kres res;
    char *ns, *selector;
    char name[160]; /* "apps/v1 deployments" for logs */
    kwatch w;
    kcache cache;
    kframer fr;
    ophttp_req *list_req;
    ophttp_req *watch_req;
    uv_timer_t timer;
    enum kinf_pending pending; /* a request that failed to start inside the emit callback */
    int closing;
    uint64_t start_errors;
    void (*on_closed)(void *ud);
    void *closed_ud;
};

static uint64_t kinf_now(const kinf *i)
{
    return uv_now(i->loop);
}

/* Feed failures to start a request back into the machine, outside its emit. */
static void kinf_settle(kinf *i)
{
    while (i->pending != KINF_PEND_NONE && !i->closing) {
        enum kinf_pending p = i->pending;
        i->pending = KINF_PEND_NONE;
        if (p == KINF_PEND_LIST_FAIL)
            kwatch_list_error(&i->w, kinf_now(i), 0, -1);
        else
            kwatch_stream_failed(&i->w, kinf_now(i), 0, -1);
    }
}

/* ---- LIST ------------------------------------------------------------------------------ */

static void kinf_list_done(const krest_reply *rep, void *ud)
{
    kinf *i = ud;
    i->list_req = NULL;
    if (i->closing)
        return;
    if (rep->error == 0 && rep->http_status >= 200 && rep->http_status < 300) {
        kwatch_list_body(&i->w, kinf_now(i), rep->body, rep->body_len);
    } else {
        long ra = rep->retry_after_s;
        if (rep->status && rep->status->retry_after_s > ra)
            ra = rep->status->retry_after_s;
        OPLOG_W("list %s: %s", i->name,
                rep->error ? rep->error_msg
                           : (rep->status && rep->status->message[0] ? rep->status->message
                                                                     : "request failed"));
        kwatch_list_error(&i->w, kinf_now(i), rep->error ? 0 : rep->http_status, ra);
    }
    kinf_settle(i);
}

static int kinf_path(kinf *i, opbuf *p, const char *const *kv)
{
    int rc = kpath(p, &i->res, i->ns, NULL, NULL);
    return rc ? rc : kpath_query(p, kv);
}

static void kinf_do_list(kinf *i, const kwatch_action *a)
{
    char limit[16];
    opbuf p;
    snprintf(limit, sizeof limit, "%d", a->limit);
    const char *kv[] = {"limit",         limit,       "continue", a->continue_token,
                        "labelSelector", i->selector, NULL};
    opbuf_init(&p, KINF_PATH_MAX);
    int rc = kinf_path(i, &p, kv);
    if (!rc)
        rc = krest_call(i->rest, "GET", p.data, NULL, NULL, 0, kinf_list_done, i, &i->list_req);
    if (rc) {
        OPLOG_E("list %s: cannot start the request: %s", i->name, strerror(-rc));
        i->start_errors++;
        i->pending = KINF_PEND_LIST_FAIL;
    }
    opbuf_release(&p);
}

/* ---- WATCH ----------------------------------------------------------------------------- */

static int kinf_on_line(const char *line, size_t len, void *ud)
{
    kinf *i = ud;
    kwatch_line(&i->w, kinf_now(i), line, len);
    /* Stop framing the chunk if the machine abandoned this stream. */
    return i->watch_req ? 0 : 1;
}

static int kinf_watch_data(const char *data, size_t len, void *ud)
{
    kinf *i = ud;
    if (i->closing || !i->watch_req)
        return 1;
    int rc = kframer_feed(&i->fr, data, len);
    kinf_settle(i);
    if (rc < 0) {
        OPLOG_E("watch %s: %s", i->name, strerror(-rc));
        return 1; /* ends the request with an error → backoff and resume */
    }
    return 0;
}

static void kinf_watch_done(const krest_reply *rep, void *ud)
{
    kinf *i = ud;
    i->watch_req = NULL;
    if (i->closing)
        return;
    int ok = rep->error == 0 && rep->http_status >= 200 && rep->http_status < 300;
    if (ok) {
        /* A clean end: an unterminated last line is still an event. */
        kframer_finish(&i->fr);
        kwatch_stream_ended(&i->w, kinf_now(i));
    } else {
        kframer_reset(&i->fr);
        long ra = rep->retry_after_s;
        if (rep->status && rep->status->retry_after_s > ra)
            ra = rep->status->retry_after_s;
        OPLOG_W(
            "watch %s: %s%s (resuming from resourceVersion %s)", i->name, rep->error ? "" : "HTTP ",
            rep->error ? rep->error_msg
                       : (rep->status && rep->status->reason[0] ? rep->status->reason : "error"),
            i->w.rv);
        kwatch_stream_failed(&i->w, kinf_now(i), rep->error ? 0 : rep->http_status, ra);
    }
    kinf_settle(i);
}

static void kinf_do_watch(kinf *i, const kwatch_action *a)
{
    char tmo[16];
    opbuf p;
    snprintf(tmo, sizeof tmo, "%d", a->timeout_s);
    const char *kv[] = {"watch",
                        "1",
                        "resourceVersion",
                        a->rv,
                        "allowWatchBookmarks",
                        "true",
                        "timeoutSeconds",
                        tmo,
                        "labelSelector",
                        i->selector,
                        NULL};
    opbuf_init(&p, KINF_PATH_MAX);
    kframer_reset(&i->fr);
    int rc = kinf_path(i, &p, kv);
    if (!rc)
        rc = krest_stream(i->rest, p.data, a->timeout_s + KINF_STALL_GRACE_S, kinf_watch_data,
                          kinf_watch_done, i, &i->watch_req);
    if (rc) {
        OPLOG_E("watch %s: cannot start the request: %s", i->name, strerror(-rc));
        i->start_errors++;
        i->pending = KINF_PEND_WATCH_FAIL;
    }
    opbuf_release(&p);
}

/* ---- the machine's actions ------------------------------------------------------------- */

static void kinf_on_timer(uv_timer_t *t)
{
    kinf *i = t->data;
    kwatch_timer(&i->w, kinf_now(i));
    kinf_settle(i);
}

static void kinf_emit(const kwatch_action *a, void *ud)
{
    kinf *i = ud;
    if (i->closing)
        return;
    switch (a->type) {
    case KWATCH_DO_LIST:
        kinf_do_list(i, a);
        break;
    case KWATCH_DO_WATCH:
        kinf_do_watch(i, a);
        break;
    case KWATCH_DO_WAIT:
        OPLOG_V(1, "%s: retrying in %llu ms", i->name, (unsigned long long)a->wait_ms);
        uv_timer_start(&i->timer, kinf_on_timer, a->wait_ms, 0);
        break;
    case KWATCH_DO_CANCEL:
        if (i->watch_req) {
            ophttp_cancel(i->watch_req);
            i->watch_req = NULL;
        }
        break;
    case KWATCH_REPLACE_BEGIN:
        kcache_replace_begin(&i->cache);
        break;
    case KWATCH_REPLACE_ITEM:
        kcache_replace_item(&i->cache, a->raw, a->raw_len);
        break;
    case KWATCH_REPLACE_END:
        kcache_replace_end(&i->cache);
        OPLOG_V(1, "%s: %zu objects listed", i->name, kcache_count(&i->cache));
        break;
    case KWATCH_REPLACE_ABORT:
        kcache_replace_abort(&i->cache);
        break;
    case KWATCH_ADDED:
    case KWATCH_MODIFIED:
        kcache_upsert(&i->cache, a->raw, a->raw_len);
        break;
    case KWATCH_DELETED:
        kcache_remove(&i->cache, a->raw, a->raw_len);
        break;
    }
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static void kinf_free_mem(kinf *i)
{
    kcache_release(&i->cache);
    kframer_release(&i->fr);
    kwatch_release(&i->w);
    free(i->ns);
    free(i->selector);
    free(i);
}

int kinf_new(kinf **out, uv_loop_t *loop, krest *rest, const kinf_opts *o,
             const kcache_handlers *handlers, operr *err)
{
    int rc = 0;
    kinf *i = NULL;
    *out = NULL;
    if (!o || !o->res || !o->res->resource || !o->res->group_version)
        return operr_set(err, -EINVAL, "informer: no resource given");
    const char *what = o->res->resource;
    enum kproj_kind kind = kproj_kind_for_resource(what);
    if (kind == KPROJ_UNKNOWN)
        return operr_set(err, -EINVAL, "informer '%s': resource has no projection", what);
    i = calloc(1, sizeof *i);
    if (!i)
        return operr_set(err, -ENOMEM, "informer '%s': out of memory", what);
    i->loop = loop;
    i->rest = rest;
    i->res = *o->res;
    kwatch_init(&i->w, o->page_limit, o->seed ? o->seed : uv_hrtime() ^ (uintptr_t)i, kinf_emit, i);
    kcache_init(&i->cache, kind);
    kframer_init(&i->fr, o->max_line, kinf_on_line, i);
    i->ns = o->ns && *o->ns ? strdup(o->ns) : NULL;
    i->selector = o->label_selector && *o->label_selector ? strdup(o->label_selector) : NULL;
    if ((o->ns && *o->ns && !i->ns) || (o->label_selector && *o->label_selector && !i->selector)) {
        rc = operr_set(err, -ENOMEM, "informer '%s': out of memory", what);
        goto out;
    }
    snprintf(i->name, sizeof i->name, "%s %s%s%s", i->res.group_version, what, i->ns ? " in " : "",
             i->ns ? i->ns : "");
    if (handlers)
        kcache_add_handlers(&i->cache, handlers);
    if (o->extend)
        kcache_set_extend(&i->cache, o->extend, o->extend_ud);
    rc = uv_timer_init(loop, &i->timer);
    if (rc) {
        operr_set(err, rc, "informer '%s': %s", what, uv_strerror(rc));
        goto out;
    }
    i->timer.data = i;
    *out = i;
    i = NULL;
out:
    if (i)
        kinf_free_mem(i);
    return rc;
}

int kinf_start(kinf *i)
{
    int rc = kwatch_start(&i->w, kinf_now(i));
    kinf_settle(i);
    return rc;
}

int kinf_has_synced(const kinf *i)
{
    return kwatch_has_synced(&i->w);
}

kcache *kinf_cache(kinf *i)
{
    return &i->cache;
}

enum kwatch_state kinf_state(const kinf *i)
{
    return i->w.state;
}

const char *kinf_rv(const kinf *i)
{
    return i->w.rv;
}

void kinf_stats_get(const kinf *i, kinf_stats *out)
{
    out->watch = i->w.stats;
    out->overlong = i->fr.overlong;
    out->start_errors = i->start_errors;
}

static void kinf_closed(uv_handle_t *h)
{
    kinf *i = h->data;
    void (*cb)(void *) = i->on_closed;
    void *ud = i->closed_ud;
    kinf_free_mem(i);
    if (cb)
        cb(ud);
}

void kinf_close(kinf *i, void (*on_closed)(void *ud), void *ud)
{
    if (!i || i->closing)
        return;
    i->closing = 1;
    i->on_closed = on_closed;
    i->closed_ud = ud;
    kwatch_stop(&i->w);
    /* Cancelled requests call nothing back, so no handler runs after this. */
    if (i->list_req)
        ophttp_cancel(i->list_req);
    if (i->watch_req)
        ophttp_cancel(i->watch_req);
    i->list_req = i->watch_req = NULL;
    uv_close((uv_handle_t *)&i->timer, kinf_closed);
}
