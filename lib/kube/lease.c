/*
 * klease: see lease.h. The machine first (pure), then the Lease wire format,
 * then the libuv glue that feeds the machine from one timer and krest replies.
 */
#include "kube/lease.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kube/events.h" /* kevents_micro_time, kevents_parse_time */
#include "util/log.h"

#define NEVER       UINT64_MAX
#define BASE_MAX    ((size_t)64 * 1024) /* a Lease is a few hundred bytes; cap what we keep */
#define BODY_MAX    ((size_t)80 * 1024)
#define PATH_MAXLEN 2048

/* ---- the machine ------------------------------------------------------------------------ */

int klease_timing_check(klease_timing *t)
{
    if (!t)
        return -EINVAL;
    if (!t->lease_duration_ms)
        t->lease_duration_ms = KLEASE_DEFAULT_DURATION_MS;
    if (!t->renew_deadline_ms)
        t->renew_deadline_ms = KLEASE_DEFAULT_DEADLINE_MS;
    if (!t->retry_period_ms)
        t->retry_period_ms = KLEASE_DEFAULT_RETRY_MS;
    /* client-go: leaseDuration > renewDeadline > JitterFactor (1.2) * retryPeriod. */
    if (t->lease_duration_ms <= t->renew_deadline_ms ||
        t->renew_deadline_ms * 10 <= t->retry_period_ms * 12)
        return -EINVAL;
    return 0;
}

void klease_m_init(klease_machine *m, const char *identity, const klease_timing *t)
{
    memset(m, 0, sizeof(*m));
    m->t = *t;
    snprintf(m->identity, sizeof(m->identity), "%s", identity ? identity : "");
    m->state = KLEASE_M_CANDIDATE;
}

static void out_reset(klease_out *out)
{
    memset(out, 0, sizeof(*out));
    out->wake_ms = NEVER;
}

static int duration_s(const klease_machine *m)
{
    return (int)((m->t.lease_duration_ms + 999) / 1000);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static void set_wake(const klease_machine *m, klease_out *out)
{
    uint64_t w = NEVER;
    if (m->state == KLEASE_M_DONE) {
        out->wake_ms = NEVER;
        return;
    }
    if (m->inflight)
        w = m->sent_ms + m->t.renew_deadline_ms; /* abandon a hung request */
    else if (m->state != KLEASE_M_RELEASING)
        w = m->next_try_ms;
    if (m->state == KLEASE_M_LEADER)
        w = min_u64(w, m->renewed_ms + m->t.renew_deadline_ms);
    out->wake_ms = w;
}

static void lose(klease_machine *m, klease_out *out)
{
    m->state = KLEASE_M_CANDIDATE;
    out->stopped = 1;
    out->lost = 1;
}

/* A leader whose renew deadline passed stops now, whatever is in flight. */
static void check_deadline(klease_machine *m, uint64_t now_ms, klease_out *out)
{
    if (m->state == KLEASE_M_LEADER && now_ms >= m->renewed_ms + m->t.renew_deadline_ms)
        lose(m, out);
}

static void send_op(klease_machine *m, const klease_now *now, klease_op op, klease_out *out)
{
    m->inflight = op;
    m->sent_ms = now->mono_ms;
    out->op = op;
    if (op != KLEASE_OP_GET) {
        out->write = m->sent;
        snprintf(out->rv, sizeof(out->rv), "%s", op == KLEASE_OP_CREATE ? "" : m->observed_rv);
    }
}

/* The record that makes us holder, based on what was observed (NULL: nothing). */
static void claim(klease_machine *m, const klease_now *now, const klease_record *cur)
{
    int mine = cur && strcmp(cur->holder, m->identity) == 0;
    memset(&m->sent, 0, sizeof(m->sent));
    snprintf(m->sent.holder, sizeof(m->sent.holder), "%s", m->identity);
    m->sent.duration_s = duration_s(m);
    m->sent.acquire_ns = (mine && cur->acquire_ns) ? cur->acquire_ns : now->wall_ns;
    m->sent.renew_ns = now->wall_ns;
    m->sent.transitions = cur ? (mine ? cur->transitions : cur->transitions + 1) : 0;
}

void klease_m_tick(klease_machine *m, const klease_now *now, klease_out *out)
{
    out_reset(out);
    if (m->state == KLEASE_M_DONE)
        return;
    check_deadline(m, now->mono_ms, out);
    if (m->inflight) {
        if (now->mono_ms >= m->sent_ms + m->t.renew_deadline_ms)
            out->abandon = 1;
    } else if (m->state != KLEASE_M_RELEASING && now->mono_ms >= m->next_try_ms) {
        if (m->state == KLEASE_M_LEADER) {
            /* Renew straight from what we wrote last; a 409 sends us back to GET. */
            claim(m, now, &m->observed);
            send_op(m, now, KLEASE_OP_UPDATE, out);
        } else {
            send_op(m, now, KLEASE_OP_GET, out);
        }
    }
    set_wake(m, out);
}

static void release_op(klease_machine *m, const klease_now *now, klease_out *out)
{
    memset(&m->sent, 0, sizeof(m->sent));
    m->sent.duration_s = 1;
    m->sent.acquire_ns = now->wall_ns;
    m->sent.renew_ns = now->wall_ns;
    m->sent.transitions = m->observed.transitions;
    m->state = KLEASE_M_RELEASING;
    m->release_tries++;
    send_op(m, now, KLEASE_OP_RELEASE, out);
}

void klease_m_on_get(klease_machine *m, const klease_now *now, long http_status,
                     const klease_record *rec, const char *rv, klease_out *out)
{
    out_reset(out);
    if (m->inflight != KLEASE_OP_GET || m->state == KLEASE_M_DONE) {
        set_wake(m, out);
        return;
    }
    m->inflight = KLEASE_OP_NONE;
    int ok = http_status == 200 && rec;
    if (ok && strcmp(m->observed_rv, rv ? rv : "") != 0) {
        m->observed_ms = now->mono_ms;
        snprintf(m->observed_rv, sizeof(m->observed_rv), "%s", rv ? rv : "");
    }
    if (ok) {
        m->observed = *rec;
        m->have_observed = 1;
    }
    if (m->state == KLEASE_M_RELEASING) {
        /* A release met a 409: try once more if the lease is still ours. */
        if (ok && strcmp(rec->holder, m->identity) == 0 && m->release_tries < 2)
            release_op(m, now, out);
        else
            m->state = KLEASE_M_DONE;
        set_wake(m, out);
        return;
    }
    check_deadline(m, now->mono_ms, out);
    if (http_status == 404) {
        m->have_observed = 0;
        m->observed_rv[0] = '\0';
        claim(m, now, NULL);
        send_op(m, now, KLEASE_OP_CREATE, out);
    } else if (ok) {
        int other = rec->holder[0] && strcmp(rec->holder, m->identity) != 0;
        uint64_t expires =
            m->observed_ms + (uint64_t)(rec->duration_s > 0 ? rec->duration_s : 0) * 1000ULL;
        if (other && now->mono_ms < expires) {
            if (m->state == KLEASE_M_LEADER)
                lose(m, out);
            m->next_try_ms = now->mono_ms + m->t.retry_period_ms;
        } else {
            claim(m, now, rec);
            send_op(m, now, KLEASE_OP_UPDATE, out);
        }
    } else {
        m->next_try_ms = now->mono_ms + m->t.retry_period_ms;
    }
    set_wake(m, out);
}

void klease_m_on_write(klease_machine *m, const klease_now *now, long http_status, const char *rv,
                       klease_out *out)
{
    out_reset(out);
    klease_op op = m->inflight;
    if (op == KLEASE_OP_NONE || op == KLEASE_OP_GET || m->state == KLEASE_M_DONE) {
        set_wake(m, out);
        return;
    }
    m->inflight = KLEASE_OP_NONE;
    int ok = http_status >= 200 && http_status < 300;
    if (op == KLEASE_OP_RELEASE) {
        if (!ok && http_status == 409 && m->release_tries < 2)
            send_op(m, now, KLEASE_OP_GET, out);
        else
            m->state = KLEASE_M_DONE;
        set_wake(m, out);
        return;
    }
    if (ok) {
        m->observed = m->sent;
        m->have_observed = 1;
        snprintf(m->observed_rv, sizeof(m->observed_rv), "%s", rv ? rv : "");
        m->observed_ms = now->mono_ms;
        m->renewed_ms = m->sent_ms;
        m->next_try_ms = now->mono_ms + m->t.retry_period_ms;
        if (m->state != KLEASE_M_LEADER) {
            if (now->mono_ms < m->sent_ms + m->t.renew_deadline_ms) {
                m->state = KLEASE_M_LEADER;
                out->started = 1;
            } else {
                /* Won, but too late to act on it safely: renew first. */
                m->next_try_ms = now->mono_ms;
            }
        }
    } else if (http_status == 409) {
        /* Someone else wrote the lease since we read it: look again now. */
        check_deadline(m, now->mono_ms, out);
        send_op(m, now, KLEASE_OP_GET, out);
    } else {
        check_deadline(m, now->mono_ms, out);
        m->next_try_ms = now->mono_ms + m->t.retry_period_ms;
    }
    set_wake(m, out);
}

void klease_m_abandon(klease_machine *m, const klease_now *now, klease_out *out)
{
    out_reset(out);
    if (m->inflight == KLEASE_OP_NONE || m->state == KLEASE_M_DONE) {
        set_wake(m, out);
        return;
    }
    m->inflight = KLEASE_OP_NONE;
    if (m->state == KLEASE_M_RELEASING) {
        m->state = KLEASE_M_DONE;
    } else {
        check_deadline(m, now->mono_ms, out);
        m->next_try_ms = now->mono_ms;
    }
    set_wake(m, out);
}

void klease_m_release(klease_machine *m, const klease_now *now, klease_out *out)
{
    out_reset(out);
    m->inflight = KLEASE_OP_NONE;
    if (m->state == KLEASE_M_DONE || m->state == KLEASE_M_RELEASING) {
        m->state = KLEASE_M_DONE;
        return;
    }
    if (m->state == KLEASE_M_LEADER) {
        out->stopped = 1;
        out->lost = 0;
    }
    /* Hand over whatever we last saw ourselves hold; the resourceVersion
     * precondition keeps a stale view from clobbering a successor. */
    if (m->have_observed && m->observed_rv[0] && strcmp(m->observed.holder, m->identity) == 0)
        release_op(m, now, out);
    else
        m->state = KLEASE_M_DONE;
    set_wake(m, out);
}

int klease_m_is_leader(const klease_machine *m, uint64_t now_ms)
{
    return m->state == KLEASE_M_LEADER && now_ms < m->renewed_ms + m->t.renew_deadline_ms;
}

/* ---- wire format ------------------------------------------------------------------------ */

int klease_parse(const char *json, size_t len, klease_record *rec, char *rv, size_t rv_size)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    memset(rec, 0, sizeof(*rec));
    if (rv && rv_size)
        rv[0] = '\0';
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return -EINVAL;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
    if (rv && rv_size && cJSON_IsString(v))
        snprintf(rv, rv_size, "%s", v->valuestring);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(root, "spec");
    v = cJSON_GetObjectItemCaseSensitive(spec, "holderIdentity");
    if (cJSON_IsString(v))
        snprintf(rec->holder, sizeof(rec->holder), "%s", v->valuestring);
    v = cJSON_GetObjectItemCaseSensitive(spec, "leaseDurationSeconds");
    if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e9)
        rec->duration_s = (int)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(spec, "leaseTransitions");
    if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 2e9)
        rec->transitions = (int)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(spec, "acquireTime");
    if (cJSON_IsString(v) && kevents_parse_time(v->valuestring, &rec->acquire_ns))
        rec->acquire_ns = 0;
    v = cJSON_GetObjectItemCaseSensitive(spec, "renewTime");
    if (cJSON_IsString(v) && kevents_parse_time(v->valuestring, &rec->renew_ns))
        rec->renew_ns = 0;
    cJSON_Delete(root);
    return 0;
}

static int add_time(cJSON *o, const char *key, uint64_t ns)
{
    char t[KEVENTS_MICRO_TIME_LEN + 1];
    if (!ns)
        return 0;
    if (kevents_micro_time(ns, t, sizeof(t)))
        return -EINVAL;
    return cJSON_AddStringToObject(o, key, t) ? 0 : -ENOMEM;
}

/* Every member named key: cJSON keeps duplicate keys, and a body with our value
 * beside a stale one would depend on which one the server reads. */
static void drop_all(cJSON *o, const char *key)
{
    while (cJSON_GetObjectItemCaseSensitive(o, key))
        cJSON_DeleteItemFromObjectCaseSensitive(o, key);
}

static int set_string(cJSON *o, const char *key, const char *v)
{
    drop_all(o, key);
    return cJSON_AddStringToObject(o, key, v) ? 0 : -ENOMEM;
}

int klease_format(opbuf *out, const char *base, size_t base_len, const char *ns, const char *name,
                  const char *rv, const klease_record *rec)
{
    int rc = -ENOMEM;
    cJSON *root = NULL, *meta, *spec;
    char *s = NULL;
    if (!out || !ns || !*ns || !name || !*name || !rec)
        return -EINVAL;
    if (base && base_len)
        root = cJSON_ParseWithLength(base, base_len);
    if (root && !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        root = NULL;
    }
    if (!root) {
        root = cJSON_CreateObject();
        if (!root)
            return -ENOMEM;
    }
    if ((rc = set_string(root, "apiVersion", "coordination.k8s.io/v1")) ||
        (rc = set_string(root, "kind", "Lease")))
        goto out;
    rc = -ENOMEM;
    /* the first metadata (the one klease_parse read), and no other */
    meta = cJSON_DetachItemFromObjectCaseSensitive(root, "metadata");
    drop_all(root, "metadata");
    if (!cJSON_IsObject(meta)) {
        cJSON_Delete(meta);
        meta = cJSON_CreateObject();
    }
    if (!meta || !cJSON_AddItemToObject(root, "metadata", meta)) {
        cJSON_Delete(meta);
        goto out;
    }
    rc = set_string(meta, "name", name);
    if (!rc)
        rc = set_string(meta, "namespace", ns);
    if (rc)
        goto out;
    drop_all(meta, "resourceVersion");
    if (rv && *rv)
        rc = set_string(meta, "resourceVersion", rv);
    if (rc)
        goto out;
    rc = -ENOMEM;
    drop_all(root, "spec");
    spec = cJSON_AddObjectToObject(root, "spec");
    if (!spec || !cJSON_AddStringToObject(spec, "holderIdentity", rec->holder) ||
        !cJSON_AddNumberToObject(spec, "leaseDurationSeconds", rec->duration_s))
        goto out;
    if ((rc = add_time(spec, "acquireTime", rec->acquire_ns)) ||
        (rc = add_time(spec, "renewTime", rec->renew_ns)))
        goto out;
    rc = -ENOMEM;
    if (!cJSON_AddNumberToObject(spec, "leaseTransitions", rec->transitions))
        goto out;
    s = cJSON_PrintUnformatted(root);
    if (!s)
        goto out;
    rc = opbuf_puts(out, s);
out:
    cJSON_free(s);
    cJSON_Delete(root);
    return rc;
}

/* ---- the glue --------------------------------------------------------------------------- */

struct klease {
    uv_loop_t *loop;
    krest *rest;
    uv_timer_t timer;
    klease_opts o;
    char ns[KEVENTS_NAME_MAX + 1];
    char name[KEVENTS_NAME_MAX + 1];
    klease_machine m;
    ophttp_req *req; /* the one request in flight */
    char *base;      /* the Lease as last read or written, for PUT */
    size_t base_len;
    int running;
    int stopping; /* klease_stop called: finish once the machine is DONE */
    int closing;  /* the timer is closing; nothing else may happen */
    unsigned starts;
    unsigned gen; /* bumped by every apply(), to notice a nested one */
    /* What was last logged, so a candidate says who leads once per change and a failing
     * request once per distinct message, not on every retry. */
    char holder_seen[KLEASE_ID_MAX];
    char fail_seen[256];
    void (*done_cb)(void *ud);
    void *done_ud;
};

static klease_now clock_now(void)
{
    struct timespec ts;
    klease_now n;
    n.mono_ms = uv_hrtime() / 1000000ULL;
    clock_gettime(CLOCK_REALTIME, &ts);
    n.wall_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    return n;
}

static void default_identity(char *out, size_t size)
{
    char host[200];
    unsigned char rnd[6] = {0};
    if (gethostname(host, sizeof(host)) != 0 || !host[0])
        snprintf(host, sizeof(host), "optipod");
    host[sizeof(host) - 1] = '\0';
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, rnd, sizeof(rnd)) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof(rnd)) {
        uint64_t x = uv_hrtime() ^ ((uint64_t)getpid() << 32);
        memcpy(rnd, &x, sizeof(rnd));
    }
    snprintf(out, size, "%s_%02x%02x%02x%02x%02x%02x", host, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
             rnd[5]);
}

int klease_new(klease **out, uv_loop_t *loop, krest *rest, const klease_opts *opts, operr *err)
{
    char id[KLEASE_ID_MAX];
    *out = NULL;
    if (!loop || !rest || !opts)
        return operr_set(err, -EINVAL, "leader election: missing loop, client or options");
    if (!opts->namespace || !*opts->namespace || !opts->name || !*opts->name ||
        strlen(opts->namespace) > KEVENTS_NAME_MAX || strlen(opts->name) > KEVENTS_NAME_MAX)
        return operr_set(err, -EINVAL, "leader election: lease namespace and name are required");
    klease_timing t = opts->timing;
    if (klease_timing_check(&t))
        return operr_set(err, -EINVAL,
                         "leader election lease '%s/%s': need leaseDuration > renewDeadline > "
                         "1.2 * retryPeriod, got %" PRIu64 " ms, %" PRIu64 " ms, %" PRIu64 " ms",
                         opts->namespace, opts->name, t.lease_duration_ms, t.renew_deadline_ms,
                         t.retry_period_ms);
    if (opts->identity && *opts->identity) {
        if (strlen(opts->identity) >= KLEASE_ID_MAX)
            return operr_set(err, -EINVAL, "leader election: identity longer than %d bytes",
                             KLEASE_ID_MAX - 1);
        snprintf(id, sizeof(id), "%s", opts->identity);
    } else {
        default_identity(id, sizeof(id));
    }
    klease *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    int rc = uv_timer_init(loop, &l->timer);
    if (rc) {
        free(l);
        return rc;
    }
    l->timer.data = l;
    l->loop = loop;
    l->rest = rest;
    l->o = *opts;
    l->o.namespace = l->ns;
    l->o.name = l->name;
    l->o.identity = NULL;
    snprintf(l->ns, sizeof(l->ns), "%s", opts->namespace);
    snprintf(l->name, sizeof(l->name), "%s", opts->name);
    klease_m_init(&l->m, id, &t);
    *out = l;
    return 0;
}

const char *klease_identity(const klease *l)
{
    return l->m.identity;
}

unsigned klease_leader_starts(const klease *l)
{
    return l->starts;
}

const char *klease_holder(const klease *l)
{
    return l->holder_seen;
}

int klease_is_leader(const klease *l)
{
    return !l->closing && klease_m_is_leader(&l->m, uv_hrtime() / 1000000ULL);
}

static void on_timer_closed(uv_handle_t *h)
{
    klease *l = h->data;
    void (*cb)(void *) = l->done_cb;
    void *ud = l->done_ud;
    free(l->base);
    free(l);
    if (cb)
        cb(ud);
}

static void finish(klease *l)
{
    if (l->closing)
        return;
    l->closing = 1;
    if (l->req) {
        ophttp_cancel(l->req);
        l->req = NULL;
    }
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}

static void keep_base(klease *l, const char *body, size_t len)
{
    if (len == 0 || len > BASE_MAX)
        return;
    char *b = malloc(len + 1);
    if (!b)
        return;
    memcpy(b, body, len);
    b[len] = '\0';
    free(l->base);
    l->base = b;
    l->base_len = len;
}

static void apply(klease *l, const klease_out *out);

/* A failure, logged once per distinct message (a retry every retryPeriod would repeat it). */
static void log_failure(klease *l, const char *what, long st, const krest_reply *rep)
{
    char msg[sizeof l->fail_seen];
    snprintf(msg, sizeof msg, "%s failed: %s%s", what,
             st ? (rep->status ? rep->status->message : "bad reply")
                : (rep->error_msg ? rep->error_msg : "transport error"),
             st == 404 && strcmp(what, "create") == 0 ? " (does the namespace exist?)" : "");
    if (strcmp(msg, l->fail_seen) == 0)
        return;
    snprintf(l->fail_seen, sizeof l->fail_seen, "%s", msg);
    OPLOG_W("lease '%s/%s': %s; retrying every %" PRIu64 " ms", l->ns, l->name, msg,
            l->m.t.retry_period_ms);
}

/* Who holds the lease, as a candidate sees it: logged when it changes to someone else. */
static void note_holder(klease *l, const char *holder)
{
    if (strcmp(holder, l->holder_seen) == 0)
        return;
    snprintf(l->holder_seen, sizeof l->holder_seen, "%s", holder);
    if (holder[0] && strcmp(holder, l->m.identity) != 0)
        OPLOG_I("lease '%s/%s': held by %s; %s waits as a candidate", l->ns, l->name, holder,
                l->m.identity);
}

static void on_get_done(const krest_reply *rep, void *ud)
{
    klease *l = ud;
    klease_record rec;
    char rv[KLEASE_RV_MAX];
    klease_out out;
    klease_now now = clock_now();
    l->req = NULL;
    long st = rep->http_status;
    if (st == 200 && klease_parse(rep->body, rep->body_len, &rec, rv, sizeof(rv)) == 0) {
        keep_base(l, rep->body, rep->body_len);
        l->fail_seen[0] = '\0';
        note_holder(l, rec.holder);
        klease_m_on_get(&l->m, &now, 200, &rec, rv, &out);
    } else {
        if (st != 404)
            log_failure(l, "get", st, rep);
        klease_m_on_get(&l->m, &now, st == 200 ? 0 : st, NULL, NULL, &out);
    }
    apply(l, &out);
}

static void on_write_done(const krest_reply *rep, void *ud)
{
    klease *l = ud;
    klease_record rec;
    char rv[KLEASE_RV_MAX] = "";
    klease_out out;
    klease_now now = clock_now();
    l->req = NULL;
    long st = rep->http_status;
    if (st >= 200 && st < 300) {
        l->fail_seen[0] = '\0';
        if (klease_parse(rep->body, rep->body_len, &rec, rv, sizeof(rv)) == 0) {
            keep_base(l, rep->body, rep->body_len);
            snprintf(l->holder_seen, sizeof l->holder_seen, "%s", rec.holder);
        }
    } else if (st != 409) {
        log_failure(l,
                    l->m.inflight == KLEASE_OP_CREATE    ? "create"
                    : l->m.inflight == KLEASE_OP_RELEASE ? "release"
                                                         : "update",
                    st, rep);
    }
    klease_m_on_write(&l->m, &now, st, rv, &out);
    apply(l, &out);
}

static int send_request(klease *l, const klease_out *out)
{
    opbuf path, body;
    int rc;
    opbuf_init(&path, PATH_MAXLEN);
    opbuf_init(&body, BODY_MAX);
    switch (out->op) {
    case KLEASE_OP_GET:
        rc = kpath(&path, &KRES_LEASES, l->ns, l->name, NULL);
        if (!rc)
            rc = krest_call(l->rest, "GET", path.data, NULL, NULL, 0, on_get_done, l, &l->req);
        break;
    case KLEASE_OP_CREATE:
        rc = kpath(&path, &KRES_LEASES, l->ns, NULL, NULL);
        if (!rc)
            rc = klease_format(&body, NULL, 0, l->ns, l->name, NULL, &out->write);
        if (!rc)
            rc = krest_call(l->rest, "POST", path.data, "application/json", body.data, body.len,
                            on_write_done, l, &l->req);
        break;
    case KLEASE_OP_UPDATE:
    case KLEASE_OP_RELEASE:
        rc = kpath(&path, &KRES_LEASES, l->ns, l->name, NULL);
        if (!rc)
            rc = klease_format(&body, l->base, l->base_len, l->ns, l->name, out->rv, &out->write);
        if (!rc)
            rc = krest_call(l->rest, "PUT", path.data, "application/json", body.data, body.len,
                            on_write_done, l, &l->req);
        break;
    default:
        rc = 0;
        break;
    }
    opbuf_release(&path);
    opbuf_release(&body);
    return rc;
}

static void on_timer(uv_timer_t *t)
{
    klease *l = t->data;
    klease_out out;
    klease_now now = clock_now();
    klease_m_tick(&l->m, &now, &out);
    apply(l, &out);
}

/* Carry out what the machine asked for: callbacks first (a stop or close from
 * inside them takes over, and what was left of `out` is moot), then the abandon,
 * the request, and the timer. */
static void apply(klease *l, const klease_out *out_in)
{
    klease_out out = *out_in, next;
    unsigned gen = ++l->gen;
    for (;;) {
        if (l->closing)
            return;
        if (out.started) {
            l->starts++;
            OPLOG_I("lease '%s/%s': %s started leading", l->ns, l->name, l->m.identity);
            if (l->o.on_started_leading)
                l->o.on_started_leading(l->o.ud);
        }
        if (out.stopped) {
            if (out.lost)
                OPLOG_W("lease '%s/%s': %s lost leadership", l->ns, l->name, l->m.identity);
            else
                OPLOG_I("lease '%s/%s': %s stopped leading", l->ns, l->name, l->m.identity);
            if (l->o.on_stopped_leading)
                l->o.on_stopped_leading(l->o.ud, out.lost);
        }
        if (l->closing || l->gen != gen)
            return; /* a callback stopped or closed us; that call has taken over */
        if (out.abandon) {
            klease_now now = clock_now();
            if (l->req) {
                ophttp_cancel(l->req);
                l->req = NULL;
            }
            klease_m_abandon(&l->m, &now, &next);
            out = next;
            continue;
        }
        if (out.op != KLEASE_OP_NONE) {
            int rc = send_request(l, &out);
            if (rc) {
                klease_now now = clock_now();
                OPLOG_W("lease '%s/%s': cannot send: %s", l->ns, l->name, strerror(-rc));
                if (out.op == KLEASE_OP_GET)
                    klease_m_on_get(&l->m, &now, 0, NULL, NULL, &next);
                else
                    klease_m_on_write(&l->m, &now, 0, NULL, &next);
                out = next;
                continue;
            }
        }
        break;
    }
    if (l->m.state == KLEASE_M_DONE && l->stopping) {
        finish(l);
        return;
    }
    uv_timer_stop(&l->timer);
    if (l->running && out.wake_ms != NEVER) {
        uint64_t now_ms = uv_hrtime() / 1000000ULL;
        uv_timer_start(&l->timer, on_timer, out.wake_ms > now_ms ? out.wake_ms - now_ms : 0, 0);
    }
}

int klease_start(klease *l)
{
    if (l->running || l->stopping || l->closing)
        return -EALREADY;
    l->running = 1;
    klease_out out;
    klease_now now = clock_now();
    klease_m_tick(&l->m, &now, &out);
    apply(l, &out);
    return 0;
}

void klease_stop(klease *l, void (*on_done)(void *ud), void *ud)
{
    if (l->stopping || l->closing)
        return;
    l->stopping = 1;
    l->done_cb = on_done;
    l->done_ud = ud;
    if (l->req) {
        ophttp_cancel(l->req);
        l->req = NULL;
    }
    klease_out out;
    klease_now now = clock_now();
    klease_m_release(&l->m, &now, &out);
    apply(l, &out);
}

void klease_close(klease *l, void (*on_closed)(void *ud), void *ud)
{
    if (l->closing)
        return;
    l->done_cb = on_closed;
    l->done_ud = ud;
    finish(l);
}
