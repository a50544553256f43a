/*
 * ckpt: metrics-server histogram checkpoints in ConfigMaps. See ckpt.h.
 */
#include "controller/ckpt.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "metrics/metricsserver.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/map.h"

/* Per namespace: restored yet, and the bytes last written. */
typedef struct nsstate {
    int restored;
    char *saved;
} nsstate;

enum step { IDLE, GET_CHECKPOINT, LIST_POLICIES, APPLY };

struct ckpt {
    uv_loop_t *loop;
    krest *rest;
    mprov *ms;
    ckpt_opts o;
    char *name;
    uv_timer_t scan, save;
    int open_handles, closing;
    opmap ns; /* ns → nsstate */
    /* the one request in flight */
    enum step step;
    ophttp_req *req;
    char cur[256];
    opbuf doc;    /* the document being saved */
    char **queue; /* namespaces left in this save round */
    size_t nqueue, capqueue;
    ckpt_stats st;
};

static void pump(ckpt *c);

static void free_nsstate(void *p)
{
    nsstate *s = p;
    free(s->saved);
    free(s);
}

static nsstate *state_of(ckpt *c, const char *ns)
{
    nsstate *s = opmap_get(&c->ns, ns);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (s && opmap_put(&c->ns, ns, s, NULL) != 0) {
        free(s);
        s = NULL;
    }
    return s;
}

static int active(const ckpt *c)
{
    return !c->closing && (!c->o.active || c->o.active(c->o.active_ud));
}

static int call(ckpt *c, enum step step, const char *method, const char *path, const char *ctype,
                const char *body, size_t len, krest_cb cb)
{
    c->step = step;
    int rc = krest_call(c->rest, method, path, ctype, body, len, cb, c, &c->req);
    if (rc != 0) {
        c->step = IDLE;
        c->req = NULL;
        c->st.errors++;
        OPLOG_W("checkpoint %s/%s: cannot send: %s", c->cur, c->name, strerror(-rc));
    }
    return rc;
}

static const char *reply_error(const krest_reply *r)
{
    if (r->status && r->status->message[0])
        return r->status->message;
    return r->http_status ? "unexpected reply" : r->error_msg ? r->error_msg : "transport error";
}

/* ---- restore --------------------------------------------------------------------------- */

static void on_checkpoint(const krest_reply *r, void *ud)
{
    ckpt *c = ud;
    c->req = NULL;
    c->step = IDLE;
    nsstate *s = state_of(c, c->cur);
    if (r->http_status == 404) {
        if (s)
            s->restored = 1; /* nothing saved yet */
    } else if (r->http_status == 200) {
        cJSON *cm = cJSON_ParseWithLength(r->body, r->body_len);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cm, "data"), CKPT_DATA_KEY);
        operr err;
        int rc = cJSON_IsString(v)
                     ? mms_restore(c->ms, c->cur, v->valuestring, strlen(v->valuestring), &err)
                     : operr_set(&err, -EPROTO, "no data.%s", CKPT_DATA_KEY);
        if (rc >= 0) {
            c->st.restored++;
            OPLOG_I("checkpoint %s/%s: %d series of usage history restored", c->cur, c->name, rc);
        } else {
            /* a damaged checkpoint is replaced at the next save */
            c->st.errors++;
            OPLOG_W("checkpoint %s/%s: not restored: %s", c->cur, c->name, err.msg);
        }
        cJSON_Delete(cm);
        if (s)
            s->restored = 1;
    } else {
        c->st.errors++;
        OPLOG_W("checkpoint %s/%s: cannot read it: HTTP %ld: %s (retried)", c->cur, c->name,
                r->http_status, reply_error(r));
        return; /* retried at the next scan */
    }
    pump(c);
}

/* The next namespace the provider samples that is not restored yet. */
static const char *unrestored(ckpt *c)
{
    for (size_t i = 0; i < mms_namespaces(c->ms); i++) {
        const char *ns = mms_namespace_at(c->ms, i);
        nsstate *s = ns ? state_of(c, ns) : NULL;
        if (s && !s->restored)
            return ns;
    }
    return NULL;
}

/* ---- save ------------------------------------------------------------------------------ */

static void save_next(ckpt *c);

static void on_applied(const krest_reply *r, void *ud)
{
    ckpt *c = ud;
    c->req = NULL;
    c->step = IDLE;
    nsstate *s = state_of(c, c->cur);
    if (r->http_status >= 200 && r->http_status < 300) {
        c->st.saves++;
        if (s) {
            free(s->saved);
            s->saved = opbuf_detach(&c->doc, NULL);
        }
        OPLOG_V(1, "checkpoint %s/%s: saved", c->cur, c->name);
    } else {
        c->st.errors++;
        OPLOG_W("checkpoint %s/%s: not saved: HTTP %ld: %s", c->cur, c->name, r->http_status,
                reply_error(r));
    }
    opbuf_reset(&c->doc);
    pump(c);
}

/* The oldest policy of the namespace owns the checkpoint; none: no owner. */
static void on_policies(const krest_reply *r, void *ud)
{
    ckpt *c = ud;
    c->req = NULL;
    c->step = IDLE;
    cJSON *list = r->http_status == 200 ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
    const cJSON *it, *owner = NULL;
    const char *oldest = NULL;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items"))
    {
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(md, "creationTimestamp");
        const char *t = cJSON_IsString(ts) ? ts->valuestring : "";
        if (!owner || strcmp(t, oldest) < 0) {
            owner = md;
            oldest = t;
        }
    }
    if (r->http_status != 200)
        OPLOG_W("checkpoint %s/%s: cannot list the policies (HTTP %ld): saved without an owner",
                c->cur, c->name, r->http_status);
    cJSON *cm = cJSON_CreateObject(), *md = cJSON_AddObjectToObject(cm, "metadata");
    cJSON *labels = cJSON_AddObjectToObject(md, "labels");
    cJSON_AddStringToObject(cm, "apiVersion", "v1");
    cJSON_AddStringToObject(cm, "kind", "ConfigMap");
    cJSON_AddStringToObject(md, "name", c->name);
    cJSON_AddStringToObject(md, "namespace", c->cur);
    cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "optipod");
    cJSON_AddStringToObject(labels, "optipod.io/checkpoint", "metrics-server");
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(owner, "name");
    const cJSON *ou = cJSON_GetObjectItemCaseSensitive(owner, "uid");
    if (cJSON_IsString(on) && cJSON_IsString(ou)) {
        cJSON *ref = cJSON_CreateObject();
        cJSON_AddStringToObject(ref, "apiVersion", "optipod.io/v1alpha1");
        cJSON_AddStringToObject(ref, "kind", "OptimizationPolicy");
        cJSON_AddStringToObject(ref, "name", on->valuestring);
        cJSON_AddStringToObject(ref, "uid", ou->valuestring);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(md, "ownerReferences"), ref);
    }
    cJSON_AddStringToObject(cJSON_AddObjectToObject(cm, "data"), CKPT_DATA_KEY, opbuf_str(&c->doc));
    char *body = cJSON_PrintUnformatted(cm);
    cJSON_Delete(cm);
    cJSON_Delete(list);
    opbuf path;
    opbuf_init(&path, 1024);
    int rc = body ? kpath(&path, &KRES_CONFIGMAPS, c->cur, c->name, NULL) : -ENOMEM;
    if (rc == 0)
        rc = opbuf_printf(&path, "?fieldManager=optipod&force=true%s",
                          c->o.dry_run ? "&dryRun=All" : "");
    if (rc != 0 || call(c, APPLY, "PATCH", opbuf_str(&path), "application/apply-patch+yaml", body,
                        strlen(body), on_applied) != 0) {
        if (rc != 0)
            c->st.errors++;
        opbuf_reset(&c->doc);
        pump(c);
    }
    opbuf_release(&path);
    cJSON_free(body);
}

/* Take the next namespace of the round: a document that changed is written. */
static void save_next(ckpt *c)
{
    while (c->nqueue > 0) {
        char *ns = c->queue[--c->nqueue];
        snprintf(c->cur, sizeof c->cur, "%s", ns);
        free(ns);
        nsstate *s = state_of(c, c->cur);
        size_t kept = 0, total = 0;
        opbuf_reset(&c->doc);
        if (!s || !s->restored ||
            mms_checkpoint(c->ms, c->cur, CKPT_MAX_BYTES, &c->doc, &kept, &total) != 0 ||
            total == 0)
            continue;
        if (kept < total)
            OPLOG_W("checkpoint %s/%s: %zu of %zu series fit in %zu bytes; the oldest dropped",
                    c->cur, c->name, kept, total, CKPT_MAX_BYTES);
        /* savedAt changes every time: compare what follows it */
        const char *body = strstr(opbuf_str(&c->doc), ",\"series\":");
        const char *old = s->saved ? strstr(s->saved, ",\"series\":") : NULL;
        if (body && old && strcmp(body, old) == 0) {
            c->st.unchanged++;
            continue;
        }
        opbuf path;
        opbuf_init(&path, 1024);
        int rc = kpath(&path, &KRES_POLICIES, c->cur, NULL, NULL);
        if (rc == 0 &&
            call(c, LIST_POLICIES, "GET", opbuf_str(&path), NULL, NULL, 0, on_policies) == 0) {
            opbuf_release(&path);
            return;
        }
        opbuf_release(&path);
    }
}

/* Start the next piece of work when nothing is in flight: restores first. */
static void pump(ckpt *c)
{
    if (c->req || c->closing || !active(c))
        return;
    const char *ns = unrestored(c);
    if (ns) {
        snprintf(c->cur, sizeof c->cur, "%s", ns);
        opbuf path;
        opbuf_init(&path, 1024);
        if (kpath(&path, &KRES_CONFIGMAPS, c->cur, c->name, NULL) == 0)
            call(c, GET_CHECKPOINT, "GET", opbuf_str(&path), NULL, NULL, 0, on_checkpoint);
        opbuf_release(&path);
        return;
    }
    save_next(c);
}

static void on_scan(uv_timer_t *t)
{
    pump(t->data);
}

void ckpt_save_now(ckpt *c)
{
    if (c->closing)
        return;
    while (c->nqueue > 0)
        free(c->queue[--c->nqueue]);
    for (size_t i = 0; i < mms_namespaces(c->ms); i++) {
        const char *ns = mms_namespace_at(c->ms, i);
        if (!ns)
            continue;
        if (c->nqueue == c->capqueue) {
            size_t cap = c->capqueue ? c->capqueue * 2 : 16;
            char **q = realloc(c->queue, cap * sizeof *q);
            if (!q)
                break;
            c->queue = q;
            c->capqueue = cap;
        }
        if ((c->queue[c->nqueue] = strdup(ns)))
            c->nqueue++;
    }
    pump(c);
}

static void on_save(uv_timer_t *t)
{
    ckpt *c = t->data;
    if (active(c))
        ckpt_save_now(c);
}

int ckpt_new(ckpt **out, uv_loop_t *loop, krest *rest, mprov *ms, const ckpt_opts *o, operr *err)
{
    if (!ms || !mms_is(ms))
        return operr_set(err, -EINVAL, "checkpoints: only the metrics-server provider has any");
    ckpt *c = calloc(1, sizeof *c);
    if (!c)
        return operr_set(err, -ENOMEM, "checkpoints: out of memory");
    c->loop = loop;
    c->rest = rest;
    c->ms = ms;
    if (o)
        c->o = *o;
    c->o.interval_ms = c->o.interval_ms ? c->o.interval_ms : 600000;
    c->o.scan_ms = c->o.scan_ms ? c->o.scan_ms : 2000;
    c->name = strdup(c->o.name && *c->o.name ? c->o.name : CKPT_DEFAULT_NAME);
    if (!c->name) {
        free(c);
        return operr_set(err, -ENOMEM, "checkpoints: out of memory");
    }
    opmap_init(&c->ns);
    opbuf_init(&c->doc, CKPT_MAX_BYTES + 4096);
    uv_timer_init(loop, &c->scan);
    uv_timer_init(loop, &c->save);
    c->scan.data = c->save.data = c;
    c->open_handles = 2;
    uv_timer_start(&c->scan, on_scan, c->o.scan_ms, c->o.scan_ms);
    uv_timer_start(&c->save, on_save, c->o.interval_ms, c->o.interval_ms);
    *out = c;
    return 0;
}

void ckpt_stats_get(const ckpt *c, ckpt_stats *out)
{
    *out = c->st;
}

static void closed(uv_handle_t *h)
{
    ckpt *c = h->data;
    if (--c->open_handles > 0)
        return;
    while (c->nqueue > 0)
        free(c->queue[--c->nqueue]);
    free(c->queue);
    opmap_release(&c->ns, free_nsstate);
    opbuf_release(&c->doc);
    free(c->name);
    free(c);
}

void ckpt_close(ckpt *c)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    if (c->req)
        ophttp_cancel(c->req);
    c->req = NULL;
    uv_close((uv_handle_t *)&c->scan, closed);
    uv_close((uv_handle_t *)&c->save, closed);
}
