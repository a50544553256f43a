/*
 * whlife: see lifecycle.h. The pure rule (whlife_decide, whlife_examine)
 * first, then the loop glue: one timer, one request in flight.
 */
#include "webhook/lifecycle.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/log.h"

#define FIELD_MANAGER        "optipod"
#define MAX_CONFLICTS_IN_ROW 3

/* ---- the pure core ---------------------------------------------------------------------- */

enum whlife_do whlife_decide(const whlife_view *v)
{
    if (!v->found)
        return v->leader ? WHLIFE_CREATE : WHLIFE_WAIT;
    if (v->readable && v->action == WHCERT_KEEP)
        return v->leader && (v->prev == WHLIFE_PREV_OVER || v->prev == WHLIFE_PREV_BAD)
                   ? WHLIFE_TIDY
                   : WHLIFE_USE;
    if (v->leader)
        return WHLIFE_REPLACE;
    /* Not ours to fix: keep serving what still verifies until the leader rotates it. */
    return v->readable && !v->expired ? WHLIFE_USE : WHLIFE_WAIT;
}

const char *whlife_do_name(enum whlife_do d)
{
    switch (d) {
    case WHLIFE_USE:
        return "use";
    case WHLIFE_CREATE:
        return "create";
    case WHLIFE_REPLACE:
        return "replace";
    case WHLIFE_WAIT:
        return "wait";
    case WHLIFE_TIDY:
        return "tidy";
    }
    return "?";
}

static void read_rv(const char *json, size_t len, char *rv, size_t cap)
{
    rv[0] = '\0';
    cJSON *j = cJSON_ParseWithLength(json, len);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
    if (cJSON_IsString(r))
        snprintf(rv, cap, "%s", r->valuestring);
    cJSON_Delete(j);
}

/* Whether the previous CA stays in the caBundle; pems keeps it only when it does. */
static void examine_prev(whlife_view *v, whcert_pems *pems, time_t now)
{
    if (pems->prev_err[0]) {
        v->prev = WHLIFE_PREV_BAD;
        snprintf(v->prev_why, sizeof v->prev_why, "%s", pems->prev_err);
        return;
    }
    if (!pems->prev_ca)
        return;
    if (now < pems->prev_until && now < pems->prev_not_after &&
        strcmp(pems->prev_ca, pems->ca) != 0) {
        v->prev = WHLIFE_PREV_LIVE;
        return;
    }
    v->prev = WHLIFE_PREV_OVER;
    snprintf(v->prev_why, sizeof v->prev_why, "%s",
             strcmp(pems->prev_ca, pems->ca) == 0 ? "the same as ca.crt"
             : now >= pems->prev_until            ? "its overlap is over"
                                                  : "it expired");
    free(pems->prev_ca);
    pems->prev_ca = NULL;
}

int whlife_examine(const char *json, size_t len, const char *const *want_sans, time_t now,
                   whlife_view *v, whcert_pems *pems)
{
    int leader = v->leader;
    memset(v, 0, sizeof *v);
    memset(pems, 0, sizeof *pems);
    v->leader = leader;
    v->action = WHCERT_RENEW_INVALID;
    if (!json) {
        snprintf(v->why, sizeof v->why, "absent");
        return 0;
    }
    v->found = 1;
    read_rv(json, len, v->rv, sizeof v->rv);
    operr err = {{0}};
    int rc = whcert_from_secret_json(json, len, pems, &err);
    if (rc == -ENOMEM)
        return rc;
    if (rc) {
        snprintf(v->why, sizeof v->why, "%s", err.msg);
        return 0;
    }
    /* Without ca.crt there is nothing to put in the caBundle. */
    if (!pems->ca) {
        snprintf(v->why, sizeof v->why, "no ca.crt");
        goto unreadable;
    }
    if (whcert_check_pair(pems->cert, pems->key, &err) != 0) {
        snprintf(v->why, sizeof v->why, "%s", err.msg);
        goto unreadable;
    }
    whcert_decision d;
    rc = whcert_decide(pems->cert, pems->ca, want_sans, now, &d);
    if (rc)
        goto fail;
    v->readable = 1;
    v->action = d.action;
    v->expired = d.not_after <= now || d.not_before > now;
    snprintf(v->why, sizeof v->why, "%s", d.why);
    examine_prev(v, pems, now);
    return 0;
unreadable:
    whcert_pems_release(pems);
    return 0;
fail:
    whcert_pems_release(pems);
    return rc;
}

/* ---- the glue --------------------------------------------------------------------------- */

enum wait_for { W_NONE = 0, W_GET, W_WRITE, W_PATCH };

struct whlife {
    uv_loop_t *loop;
    krest *rest;
    uv_timer_t timer;
    whcert_watch *watch;
    int stopping;
    int mounted;

    char service[64], ns[64], secret[254], config[254];
    char *names[WHLIFE_MAX_NAMES + 1];
    size_t nnames;
    whcert_sans sans;
    int days;
    unsigned interval_ms, retry_ms, overlap_s;
    int (*is_leader)(void *ud);
    time_t (*now)(void *ud);
    whlife_cert_cb on_cert;
    void *ud;

    enum wait_for waiting;
    ophttp_req *req;
    int again; /* a kick arrived while busy */
    unsigned conflicts_in_row;
    char *served_cert;    /* what on_cert last got (compare before re-delivering) */
    char *served_ca;      /* CA of the served pair (self-managed) */
    char *patched_bundle; /* caBundle last patched by this process */
    whcert_pems pending;  /* being written (its prev_ca is the previous CA it records) */
    char *bundle_old_ca;  /* the previous CA to keep in the next bundle patch (from the Secret) */
    int prev_warned;      /* a malformed previous CA was logged (once until it changes) */

    whlife_stats st;
    void (*on_closed)(void *ud);
    void *closed_ud;
};

static void check(whlife *l);
static void on_timer_closed(uv_handle_t *h);
static void patch_bundle(whlife *l);

static time_t now_of(whlife *l)
{
    return l->now ? l->now(l->ud) : time(NULL);
}

static int leading(whlife *l)
{
    return !l->is_leader || l->is_leader(l->ud);
}

static void on_timer(uv_timer_t *t)
{
    check(t->data);
}

static void schedule(whlife *l, unsigned ms)
{
    if (!l->stopping)
        uv_timer_start(&l->timer, on_timer, ms, 0);
}

static void fail_retry(whlife *l)
{
    l->st.errors++;
    schedule(l, l->retry_ms);
}

/* Settle after a step: a kick that came meanwhile checks again at once. */
static void settle(whlife *l, unsigned ms)
{
    if (l->again) {
        l->again = 0;
        ms = 0;
    }
    schedule(l, ms);
}

static int set_str(char **dst, const char *s)
{
    char *c = s ? strdup(s) : NULL;
    if (s && !c)
        return -ENOMEM;
    free(*dst);
    *dst = c;
    return 0;
}

static void deliver(whlife *l, const char *cert, const char *key, const char *ca)
{
    if (l->served_cert && strcmp(l->served_cert, cert) == 0)
        return;
    if (set_str(&l->served_cert, cert) != 0 || set_str(&l->served_ca, ca) != 0) {
        l->st.errors++;
        return;
    }
    l->st.delivered++;
    l->on_cert(cert, key, l->ud);
}

static const char *reply_what(const krest_reply *r)
{
    if (r->status && r->status->message[0])
        return r->status->message;
    return r->error_msg ? r->error_msg : "no answer";
}

/* -- caBundle -- */

static void on_patched(const krest_reply *r, void *ud)
{
    whlife *l = ud;
    l->req = NULL;
    l->waiting = W_NONE;
    if (r->http_status < 200 || r->http_status >= 300) {
        OPLOG_W("webhook certificate: caBundle of mutatingwebhookconfiguration '%s': %ld %s",
                l->config, r->http_status, reply_what(r));
        set_str(&l->patched_bundle, NULL);
        fail_retry(l);
        return;
    }
    l->st.bundle_patches++;
    OPLOG_I("webhook certificate: caBundle of mutatingwebhookconfiguration '%s' updated",
            l->config);
    settle(l, l->interval_ms);
}

/* The leader makes sure the configuration trusts the served CA (and the previous one). */
static void patch_bundle(whlife *l)
{
    opbuf bundle, body, path;
    opbuf_init(&bundle, WHCERT_MAX_PEM);
    opbuf_init(&body, WHCERT_MAX_PEM * 2);
    opbuf_init(&path, 1024);
    const char *q[] = {"fieldManager", FIELD_MANAGER, NULL};
    int rc = whcert_ca_bundle(&bundle, l->served_ca, l->bundle_old_ca);
    if (!rc && l->patched_bundle && strcmp(l->patched_bundle, opbuf_str(&bundle)) == 0) {
        settle(l, l->interval_ms); /* already there */
        goto out;
    }
    if (!rc)
        rc = whcert_cabundle_patch(&body, (const char *const *)l->names, l->nnames,
                                   opbuf_str(&bundle));
    if (!rc)
        rc = kpath(&path, &KRES_MUTATING_WEBHOOKS, NULL, l->config, NULL);
    if (!rc)
        rc = kpath_query(&path, q);
    if (!rc)
        rc = set_str(&l->patched_bundle, opbuf_str(&bundle));
    if (!rc) {
        l->waiting = W_PATCH;
        rc = krest_call(l->rest, "PATCH", opbuf_str(&path), WHCERT_CABUNDLE_PATCH_TYPE, body.data,
                        body.len, on_patched, l, &l->req);
    }
    if (rc) {
        l->waiting = W_NONE;
        set_str(&l->patched_bundle, NULL);
        OPLOG_E("webhook certificate: caBundle patch: %s", strerror(-rc));
        fail_retry(l);
    }
out:
    opbuf_release(&bundle);
    opbuf_release(&body);
    opbuf_release(&path);
}

static void after_use(whlife *l)
{
    if (l->stopping) /* on_cert may have stopped us */
        return;
    if (l->config[0] && l->served_ca && leading(l))
        patch_bundle(l);
    else
        settle(l, l->interval_ms);
}

/* -- Secret writes -- */

static void on_written(const krest_reply *r, void *ud)
{
    whlife *l = ud;
    l->req = NULL;
    l->waiting = W_NONE;
    if (r->http_status == 409) {
        /* AlreadyExists on create or a stale resourceVersion on update: another replica
         * wrote first. Read its Secret and use it. */
        l->st.conflicts++;
        l->conflicts_in_row++;
        OPLOG_I("webhook certificate: secret '%s/%s' was written by another replica; "
                "reading it",
                l->ns, l->secret);
        whcert_pems_release(&l->pending);
        if (l->conflicts_in_row > MAX_CONFLICTS_IN_ROW)
            fail_retry(l);
        else
            schedule(l, 0);
        return;
    }
    if (r->http_status < 200 || r->http_status >= 300) {
        OPLOG_E("webhook certificate: writing secret '%s/%s': %ld %s", l->ns, l->secret,
                r->http_status, reply_what(r));
        whcert_pems_release(&l->pending);
        fail_retry(l);
        return;
    }
    l->st.secret_writes++;
    l->conflicts_in_row = 0;
    OPLOG_I("webhook certificate: secret '%s/%s' written%s", l->ns, l->secret,
            l->served_cert && strcmp(l->served_cert, l->pending.cert) == 0
                ? " without the previous CA"
                : " with a new certificate");
    deliver(l, l->pending.cert, l->pending.key, l->pending.ca);
    free(l->bundle_old_ca);
    l->bundle_old_ca = l->pending.prev_ca;
    l->pending.prev_ca = NULL;
    whcert_pems_release(&l->pending);
    after_use(l);
}

/* Secret body with the resourceVersion precondition for an update. */
static int secret_body(whlife *l, opbuf *out, const char *rv)
{
    opbuf raw;
    opbuf_init(&raw, WHCERT_MAX_PEM * 4);
    int rc = whcert_secret_json_pems(&raw, l->secret, l->ns, &l->pending);
    if (!rc && rv && rv[0]) {
        rc = -ENOMEM;
        cJSON *j = cJSON_ParseWithLength(raw.data, raw.len);
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
        char *s = NULL;
        if (meta && cJSON_AddStringToObject(meta, "resourceVersion", rv) &&
            (s = cJSON_PrintUnformatted(j)))
            rc = opbuf_puts(out, s);
        cJSON_free(s);
        cJSON_Delete(j);
    } else if (!rc) {
        rc = opbuf_append(out, raw.data, raw.len);
    }
    opbuf_release(&raw);
    return rc;
}

/* The old CA becomes the previous one: kept until now + overlap, or its own expiry if
 * sooner. An old CA that does not parse or has expired is not worth keeping. */
static int keep_prev(whlife *l, const whcert_pems *old)
{
    time_t nb, na, now = now_of(l);
    if (!old->ca || whcert_validity(old->ca, &nb, &na) != 0 || na <= now)
        return 0;
    if (!(l->pending.prev_ca = strdup(old->ca)))
        return -ENOMEM;
    time_t until = now + (time_t)l->overlap_s;
    l->pending.prev_until = until < na ? until : na;
    return 0;
}

/* CREATE/REPLACE: a new pair (the old CA kept as the previous one); TIDY: the read pair
 * again, without the previous CA. */
static void write_secret(whlife *l, enum whlife_do what, const whlife_view *v,
                         const whcert_pems *old)
{
    ophttpd_cert gen = {0};
    opbuf body, path;
    opbuf_init(&body, WHCERT_MAX_PEM * 4);
    opbuf_init(&path, 1024);
    const char *q[] = {"fieldManager", FIELD_MANAGER, NULL};
    int update = what != WHLIFE_CREATE;
    int rc = 0;
    whcert_pems_release(&l->pending);
    if (what == WHLIFE_TIDY) {
        l->pending.cert = strdup(old->cert);
        l->pending.key = strdup(old->key);
        l->pending.ca = strdup(old->ca);
    } else {
        rc = whcert_generate(&gen, &l->sans, l->days);
        if (rc) {
            OPLOG_E("webhook certificate: cannot generate: %s", strerror(-rc));
            goto out;
        }
        l->st.generated++;
        l->pending.cert = strdup(gen.cert_pem);
        l->pending.key = strdup(gen.key_pem);
        l->pending.ca = strdup(gen.ca_pem);
        rc = keep_prev(l, old);
    }
    if (!rc && (!l->pending.cert || !l->pending.key || !l->pending.ca))
        rc = -ENOMEM;
    if (!rc)
        rc = secret_body(l, &body, update ? v->rv : NULL);
    if (!rc)
        rc = kpath(&path, &KRES_SECRETS, l->ns, update ? l->secret : NULL, NULL);
    if (!rc)
        rc = kpath_query(&path, q);
    if (!rc) {
        if (what == WHLIFE_TIDY)
            OPLOG_I("webhook certificate: removing the previous CA from secret '%s/%s' (%s)", l->ns,
                    l->secret, v->prev_why);
        else
            OPLOG_I("webhook certificate: %s secret '%s/%s' (%s)",
                    what == WHLIFE_CREATE ? "creating" : "rotating", l->ns, l->secret, v->why);
        l->waiting = W_WRITE;
        rc = krest_call(l->rest, update ? "PUT" : "POST", opbuf_str(&path), "application/json",
                        body.data, body.len, on_written, l, &l->req);
    }
    if (rc)
        OPLOG_E("webhook certificate: secret '%s/%s': %s", l->ns, l->secret, strerror(-rc));
out:
    if (rc) {
        l->waiting = W_NONE;
        whcert_pems_release(&l->pending);
        fail_retry(l);
    }
    ophttpd_cert_release(&gen);
    opbuf_release(&body);
    opbuf_release(&path);
}

/* -- Secret read -- */

static void on_read(const krest_reply *r, void *ud)
{
    whlife *l = ud;
    l->req = NULL;
    l->waiting = W_NONE;
    if (r->http_status != 200 && r->http_status != 404) {
        OPLOG_W("webhook certificate: reading secret '%s/%s': %ld %s", l->ns, l->secret,
                r->http_status, reply_what(r));
        fail_retry(l);
        return;
    }
    l->st.checks++;
    whlife_view v = {.leader = leading(l)};
    whcert_pems pems;
    int rc = whlife_examine(r->http_status == 200 ? r->body : NULL, r->body_len,
                            (const char *const *)l->sans.v, now_of(l), &v, &pems);
    if (rc) {
        fail_retry(l);
        return;
    }
    enum whlife_do d = whlife_decide(&v);
    OPLOG_V(2, "webhook certificate: secret '%s/%s': %s → %s", l->ns, l->secret, v.why,
            whlife_do_name(d));
    if (v.readable && v.prev == WHLIFE_PREV_BAD) {
        l->st.prev_ignored++;
        if (!l->prev_warned)
            OPLOG_W("webhook certificate: secret '%s/%s': previous CA ignored: %s", l->ns,
                    l->secret, v.prev_why);
        l->prev_warned = 1;
    } else if (v.readable) {
        l->prev_warned = 0;
    }
    switch (d) {
    case WHLIFE_USE:
    case WHLIFE_TIDY:
        l->conflicts_in_row = 0;
        deliver(l, pems.cert, pems.key, pems.ca);
        /* The bundle is rebuilt from the Secret: the previous CA only while it is live. */
        if (set_str(&l->bundle_old_ca, pems.prev_ca) != 0) {
            fail_retry(l);
            break;
        }
        if (d == WHLIFE_TIDY && !l->stopping)
            write_secret(l, d, &v, &pems);
        else
            after_use(l);
        break;
    case WHLIFE_WAIT:
        if (!l->served_cert)
            OPLOG_I("webhook certificate: waiting for the leader to write secret '%s/%s' (%s)",
                    l->ns, l->secret, v.why);
        settle(l, l->interval_ms);
        break;
    case WHLIFE_CREATE:
    case WHLIFE_REPLACE:
        write_secret(l, d, &v, &pems);
        break;
    }
    whcert_pems_release(&pems);
}

static void check(whlife *l)
{
    if (l->stopping)
        return;
    if (l->waiting != W_NONE) {
        l->again = 1;
        return;
    }
    opbuf path;
    opbuf_init(&path, 1024);
    int rc = kpath(&path, &KRES_SECRETS, l->ns, l->secret, NULL);
    if (!rc) {
        l->waiting = W_GET;
        rc = krest_call(l->rest, "GET", opbuf_str(&path), NULL, NULL, 0, on_read, l, &l->req);
    }
    opbuf_release(&path);
    if (rc) {
        l->waiting = W_NONE;
        OPLOG_E("webhook certificate: reading secret '%s/%s': %s", l->ns, l->secret, strerror(-rc));
        fail_retry(l);
    }
}

/* -- mounted -- */

static void on_dir_change(const char *cert, const char *key, void *ud)
{
    whlife *l = ud;
    OPLOG_I("webhook certificate: %s pair from the certificate directory",
            l->served_cert ? "new" : "loaded");
    deliver(l, cert, key, NULL);
}

/* -- lifecycle -- */

static void free_life(whlife *l)
{
    for (size_t i = 0; i < l->nnames; i++)
        free(l->names[i]);
    free(l->served_cert);
    free(l->served_ca);
    free(l->patched_bundle);
    free(l->bundle_old_ca);
    whcert_pems_release(&l->pending);
    free(l);
}

static int copy_name(char *dst, size_t cap, const char *s, const char *what, operr *err)
{
    if (!s || !*s)
        return operr_set(err, -EINVAL, "webhook certificate: %s is required", what);
    if (strlen(s) >= cap)
        return operr_set(err, -EINVAL, "webhook certificate: %s '%s' is too long", what, s);
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

int whlife_start(whlife **out, uv_loop_t *loop, krest *rest, const whlife_opts *o, operr *err)
{
    *out = NULL;
    if (!o || !o->on_cert)
        return operr_set(err, -EINVAL, "webhook certificate: on_cert is required");
    whlife *l = calloc(1, sizeof *l);
    if (!l)
        return operr_set(err, -ENOMEM, "webhook certificate: out of memory");
    l->loop = loop;
    l->rest = rest;
    l->on_cert = o->on_cert;
    l->ud = o->ud;
    l->is_leader = o->is_leader;
    l->now = o->now;
    /* Opened first: whlife_stop() frees from its close callback in both modes. */
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    int rc = 0;
    if (o->cert_dir && *o->cert_dir) {
        l->mounted = 1;
        rc =
            whcert_watch_start(&l->watch, loop, o->cert_dir, o->dir_poll_ms, on_dir_change, l, err);
        if (rc)
            goto fail;
        *out = l;
        return 0;
    }
    if (!rest) {
        rc = operr_set(err, -EINVAL, "webhook certificate: an API client is required");
        goto fail;
    }
    if ((rc = copy_name(l->service, sizeof l->service, o->service, "service", err)) ||
        (rc = copy_name(l->ns, sizeof l->ns, o->ns, "namespace", err)) ||
        (rc = copy_name(l->secret, sizeof l->secret, o->secret, "secret", err)))
        goto fail;
    if (o->config_name && *o->config_name &&
        (rc = copy_name(l->config, sizeof l->config, o->config_name, "configuration", err)))
        goto fail;
    static const char *const def_names[] = {WHLIFE_DEFAULT_WEBHOOK, NULL};
    const char *const *names = o->webhook_names ? o->webhook_names : def_names;
    for (size_t i = 0; names[i]; i++) {
        if (i == WHLIFE_MAX_NAMES) {
            rc = operr_set(err, -E2BIG, "webhook certificate: more than %d webhook names",
                           WHLIFE_MAX_NAMES);
            goto fail;
        }
        if (!(l->names[i] = strdup(names[i]))) {
            rc = operr_set(err, -ENOMEM, "webhook certificate: out of memory");
            goto fail;
        }
        l->nnames++;
    }
    rc = whcert_sans_for_service(&l->sans, l->service, l->ns, o->extra_sans);
    if (rc) {
        operr_set(err, rc, "webhook certificate: names for service '%s.%s' do not fit", l->service,
                  l->ns);
        goto fail;
    }
    l->days = o->days > 0 ? o->days : WHLIFE_DEFAULT_DAYS;
    l->interval_ms = o->interval_ms ? o->interval_ms : WHLIFE_DEFAULT_INTERVAL_MS;
    l->retry_ms = o->retry_ms ? o->retry_ms : WHLIFE_DEFAULT_RETRY_MS;
    l->overlap_s = o->overlap_s ? o->overlap_s : WHLIFE_DEFAULT_OVERLAP_S;
    *out = l;
    check(l);
    return 0;
fail:
    /* The timer is open: free from its close callback. */
    l->stopping = 1;
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
    return rc;
}

void whlife_kick(whlife *l)
{
    if (!l || l->mounted || l->stopping)
        return;
    if (l->waiting != W_NONE)
        l->again = 1;
    else
        schedule(l, 0);
}

void whlife_stats_get(const whlife *l, whlife_stats *out)
{
    *out = l->st;
    if (l->mounted) {
        out->delivered = whcert_watch_reloads(l->watch);
        out->errors = whcert_watch_errors(l->watch);
    }
}

const char *whlife_ca(const whlife *l)
{
    return l->served_ca;
}

static void on_timer_closed(uv_handle_t *h)
{
    whlife *l = h->data;
    void (*cb)(void *) = l->on_closed;
    void *ud = l->closed_ud;
    free_life(l);
    if (cb)
        cb(ud);
}

void whlife_stop(whlife *l, void (*on_closed)(void *ud), void *ud)
{
    if (!l)
        return;
    l->stopping = 1;
    l->on_closed = on_closed;
    l->closed_ud = ud;
    if (l->req) {
        ophttp_cancel(l->req);
        l->req = NULL;
    }
    if (l->watch) {
        whcert_watch_stop(l->watch);
        l->watch = NULL;
    }
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}
