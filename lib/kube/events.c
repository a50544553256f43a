/*
 * kevents: see events.h. The recorder keeps two LRUs (event keys → the event
 * object written for them; regarding objects → their token bucket), a list of
 * writes in flight (so kevents_free can cancel them), and decides per emit
 * between create, series patch, fold into a running write, or drop.
 */
#include "kube/events.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/map.h"
#include "util/optime.h"

#define DEFAULT_WINDOW_MS   (30ULL * 60 * 1000)
#define DEFAULT_BURST       25
#define DEFAULT_REFILL_MS   (5ULL * 60 * 1000)
#define DEFAULT_INFLIGHT    16
#define DEFAULT_MAX_KEYS    4096
#define DEFAULT_MAX_OBJECTS 4096
#define NOTE_SCRATCH        4096  /* printf target before the 1024-byte cut */
#define BODY_MAX            16384 /* an event body is ~2 KiB at most */
#define PATH_MAX_LEN        2048

/* ---- pure helpers ----------------------------------------------------------------------- */

int kevents_micro_time(uint64_t ns, char *out, size_t size)
{
    int n = out ? optime_format(optime_from_ns(ns), 6, out, size) : -EINVAL;
    return n == KEVENTS_MICRO_TIME_LEN ? 0 : -EINVAL;
}

int kevents_parse_time(const char *s, uint64_t *ns)
{
    optime t;
    if (!ns || optime_parse(s, 0, &t) || optime_ns(t, ns))
        return -EINVAL;
    return 0;
}

size_t kevents_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    /* Back off continuation bytes (10xxxxxx) to the start of the cut sequence,
     * then drop that lead byte too: the whole sequence did not fit. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

int kevents_object_name(const char *regarding_name, uint64_t ns, char *out, size_t size)
{
    char hex[20];
    if (!regarding_name || !*regarding_name || !out)
        return -EINVAL;
    int hl = snprintf(hex, sizeof(hex), "%" PRIx64, ns);
    size_t room = KEVENTS_NAME_MAX - 1 - (size_t)hl;
    size_t nl = strlen(regarding_name);
    if (nl > room) {
        nl = room;
        while (nl > 0 && (regarding_name[nl - 1] == '.' || regarding_name[nl - 1] == '-'))
            nl--;
        if (nl == 0)
            return -EINVAL;
    }
    if (nl + 1 + (size_t)hl + 1 > size)
        return -E2BIG;
    memcpy(out, regarding_name, nl);
    out[nl] = '.';
    memcpy(out + nl + 1, hex, (size_t)hl);
    out[nl + 1 + (size_t)hl] = '\0';
    return 0;
}

/* Add a string cut to max bytes on a UTF-8 boundary. */
static int add_cut(cJSON *o, const char *key, const char *v, size_t max)
{
    char tmp[KEVENTS_NOTE_MAX + 1];
    size_t n = kevents_utf8_cut(v, strlen(v), max < KEVENTS_NOTE_MAX ? max : KEVENTS_NOTE_MAX);
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    return cJSON_AddStringToObject(o, key, tmp) ? 0 : -ENOMEM;
}

static int add_time(cJSON *o, const char *key, uint64_t ns)
{
    char t[KEVENTS_MICRO_TIME_LEN + 1];
    if (kevents_micro_time(ns, t, sizeof(t)))
        return -EINVAL;
    return cJSON_AddStringToObject(o, key, t) ? 0 : -ENOMEM;
}

static int append_json(opbuf *out, cJSON *root)
{
    char *s = cJSON_PrintUnformatted(root);
    if (!s)
        return -ENOMEM;
    int rc = opbuf_puts(out, s);
    cJSON_free(s);
    return rc;
}

static int nonempty(const char *s)
{
    return s && *s;
}

int kevents_format_event(opbuf *out, const kevents_event *ev)
{
    int rc = -EINVAL;
    cJSON *root = NULL;
    if (!out || !ev || !nonempty(ev->name) || !nonempty(ev->namespace) ||
        !nonempty(ev->reporting_controller) || !nonempty(ev->reporting_instance) ||
        !nonempty(ev->action) || !nonempty(ev->reason) || !nonempty(ev->regarding.api_version) ||
        !nonempty(ev->regarding.kind) || !nonempty(ev->regarding.name) ||
        (ev->type != KEVENTS_NORMAL && ev->type != KEVENTS_WARNING))
        return -EINVAL;
    root = cJSON_CreateObject();
    if (!root)
        return -ENOMEM;
    rc = -ENOMEM;
    cJSON *meta, *reg;
    if (!cJSON_AddStringToObject(root, "apiVersion", "events.k8s.io/v1") ||
        !cJSON_AddStringToObject(root, "kind", "Event") ||
        !(meta = cJSON_AddObjectToObject(root, "metadata")) ||
        !cJSON_AddStringToObject(meta, "name", ev->name) ||
        !cJSON_AddStringToObject(meta, "namespace", ev->namespace))
        goto out;
    rc = add_time(root, "eventTime", ev->event_time_ns);
    if (rc)
        goto out;
    if (ev->series_count >= 2) {
        cJSON *series = cJSON_AddObjectToObject(root, "series");
        rc = -ENOMEM;
        if (!series || !cJSON_AddNumberToObject(series, "count", ev->series_count))
            goto out;
        rc = add_time(series, "lastObservedTime", ev->series_last_ns);
        if (rc)
            goto out;
    }
    if ((rc = add_cut(root, "reportingController", ev->reporting_controller, KEVENTS_FIELD_MAX)) ||
        (rc = add_cut(root, "reportingInstance", ev->reporting_instance, KEVENTS_FIELD_MAX)) ||
        (rc = add_cut(root, "action", ev->action, KEVENTS_FIELD_MAX)) ||
        (rc = add_cut(root, "reason", ev->reason, KEVENTS_FIELD_MAX)))
        goto out;
    rc = -ENOMEM;
    if (!(reg = cJSON_AddObjectToObject(root, "regarding")) ||
        !cJSON_AddStringToObject(reg, "apiVersion", ev->regarding.api_version) ||
        !cJSON_AddStringToObject(reg, "kind", ev->regarding.kind))
        goto out;
    if (nonempty(ev->regarding.namespace) &&
        !cJSON_AddStringToObject(reg, "namespace", ev->regarding.namespace))
        goto out;
    if (!cJSON_AddStringToObject(reg, "name", ev->regarding.name))
        goto out;
    if (nonempty(ev->regarding.uid) && !cJSON_AddStringToObject(reg, "uid", ev->regarding.uid))
        goto out;
    rc = add_cut(root, "note", ev->note ? ev->note : "", KEVENTS_NOTE_MAX);
    if (rc)
        goto out;
    rc = -ENOMEM;
    if (!cJSON_AddStringToObject(root, "type", ev->type == KEVENTS_WARNING ? "Warning" : "Normal"))
        goto out;
    rc = append_json(out, root);
out:
    cJSON_Delete(root);
    return rc;
}

int kevents_format_series_patch(opbuf *out, int count, uint64_t last_ns)
{
    char t[KEVENTS_MICRO_TIME_LEN + 1];
    if (!out || count < 2 || kevents_micro_time(last_ns, t, sizeof(t)))
        return -EINVAL;
    return opbuf_printf(out, "{\"series\":{\"count\":%d,\"lastObservedTime\":\"%s\"}}", count, t);
}

/* ---- LRU: an intrusive list, most recent at the front ----------------------------------- */

typedef struct lnode {
    struct lnode *prev, *next;
} lnode;

static void lru_init(lnode *head)
{
    head->prev = head->next = head;
}

static void lru_unlink(lnode *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

static void lru_front(lnode *head, lnode *n)
{
    if (n->next != n)
        lru_unlink(n);
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

/* ---- recorder --------------------------------------------------------------------------- */

/* One event key's last written event. `lru` must stay first (cast from lnode). */
typedef struct ev_entry {
    lnode lru;
    char *key;
    char name[KEVENTS_NAME_MAX + 1];
    char ns[KEVENTS_NAME_MAX + 1];
    kevents_type type;
    char *reason, *action, *note;
    char *r_api, *r_kind, *r_ns, *r_name, *r_uid;
    uint64_t first_ns, last_ns;
    int count;   /* occurrences observed */
    int written; /* occurrences the server's object reflects */
    int exists;  /* the object was created */
    int busy;    /* a write for it is in flight */
} ev_entry;

typedef struct ev_bucket {
    lnode lru;
    char *key;
    unsigned tokens;
    uint64_t refill_at_ns; /* when the last token was credited */
} ev_bucket;

typedef struct ev_write {
    struct ev_write *prev, *next;
    kevents *rec;
    ophttp_req *req;
    char *key;
    char name[KEVENTS_NAME_MAX + 1];
    int patch;      /* series patch (else create) */
    int sent_count; /* count the body carried */
} ev_write;

struct kevents {
    krest *rest;
    kevents_opts o;
    char controller[KEVENTS_FIELD_MAX + 1];
    char instance[KEVENTS_FIELD_MAX + 1];
    opmap entries, buckets;
    lnode entries_lru, buckets_lru;
    ev_write *writes;
    uint64_t last_name_ns;
    kevents_stats st;
};

static uint64_t real_clock(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void copy_cut(char *dst, size_t dst_size, const char *src)
{
    size_t n = kevents_utf8_cut(src, strlen(src), dst_size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int kevents_new(kevents **out, krest *rest, const kevents_opts *opts, operr *err)
{
    kevents *r;
    *out = NULL;
    if (!rest)
        return operr_set(err, -EINVAL, "events recorder: no REST client");
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->rest = rest;
    if (opts)
        r->o = *opts;
    if (!r->o.series_window_ms)
        r->o.series_window_ms = DEFAULT_WINDOW_MS;
    if (!r->o.burst)
        r->o.burst = DEFAULT_BURST;
    if (!r->o.refill_ms)
        r->o.refill_ms = DEFAULT_REFILL_MS;
    if (!r->o.max_inflight)
        r->o.max_inflight = DEFAULT_INFLIGHT;
    if (!r->o.max_keys)
        r->o.max_keys = DEFAULT_MAX_KEYS;
    if (!r->o.max_objects)
        r->o.max_objects = DEFAULT_MAX_OBJECTS;
    if (!r->o.clock_ns) {
        r->o.clock_ns = real_clock;
        r->o.clock_ud = NULL;
    }
    copy_cut(r->controller, sizeof(r->controller),
             nonempty(r->o.reporting_controller) ? r->o.reporting_controller : KEVENTS_CONTROLLER);
    const char *inst = r->o.reporting_instance;
    char host[256];
    if (!nonempty(inst))
        inst = getenv("POD_NAME");
    if (!nonempty(inst)) {
        if (gethostname(host, sizeof(host)) != 0)
            host[0] = '\0';
        host[sizeof(host) - 1] = '\0';
        inst = host;
    }
    if (!nonempty(inst)) {
        free(r);
        return operr_set(err, -EINVAL, "events recorder: no reporting instance (no host name)");
    }
    copy_cut(r->instance, sizeof(r->instance), inst);
    /* The options' strings are borrowed only during new(); drop the pointers. */
    r->o.reporting_controller = r->controller;
    r->o.reporting_instance = r->instance;
    opmap_init(&r->entries);
    opmap_init(&r->buckets);
    lru_init(&r->entries_lru);
    lru_init(&r->buckets_lru);
    *out = r;
    return 0;
}

static void entry_free(void *p)
{
    ev_entry *e = p;
    if (!e)
        return;
    free(e->key);
    free(e->reason);
    free(e->action);
    free(e->note);
    free(e->r_api);
    free(e->r_kind);
    free(e->r_ns);
    free(e->r_name);
    free(e->r_uid);
    free(e);
}

static void bucket_free(void *p)
{
    ev_bucket *b = p;
    if (b)
        free(b->key);
    free(b);
}

static void write_unlink(kevents *r, ev_write *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        r->writes = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    r->st.inflight--;
}

static void write_free(ev_write *w)
{
    free(w->key);
    free(w);
}

void kevents_free(kevents *r)
{
    if (!r)
        return;
    ev_write *w = r->writes;
    while (w) {
        ev_write *next = w->next;
        ophttp_cancel(w->req);
        write_free(w);
        w = next;
    }
    r->writes = NULL;
    r->st.inflight = 0;
    opmap_release(&r->entries, entry_free);
    opmap_release(&r->buckets, bucket_free);
    free(r);
}

void kevents_get_stats(const kevents *r, kevents_stats *out)
{
    *out = r->st;
}

const char *kevents_instance(const kevents *r)
{
    return r->instance;
}

static void entry_remove(kevents *r, ev_entry *e)
{
    opmap_del(&r->entries, e->key);
    lru_unlink(&e->lru);
    entry_free(e);
}

/* Take a token from the regarding object's bucket; 1 when one was available. */
static int take_token(kevents *r, const char *okey, uint64_t now)
{
    uint64_t refill_ns = r->o.refill_ms * 1000000ULL;
    ev_bucket *b = opmap_get(&r->buckets, okey);
    if (!b) {
        b = calloc(1, sizeof(*b));
        if (!b || !(b->key = strdup(okey)) || opmap_put(&r->buckets, okey, b, NULL)) {
            bucket_free(b);
            return 1; /* out of memory: do not hold events back for it */
        }
        lru_init(&b->lru);
        b->tokens = r->o.burst;
        b->refill_at_ns = now;
        while (opmap_count(&r->buckets) > r->o.max_objects) {
            ev_bucket *old = (ev_bucket *)r->buckets_lru.prev;
            opmap_del(&r->buckets, old->key);
            lru_unlink(&old->lru);
            bucket_free(old);
        }
    }
    lru_front(&r->buckets_lru, &b->lru);
    if (now > b->refill_at_ns && b->tokens < r->o.burst) {
        uint64_t n = (now - b->refill_at_ns) / refill_ns;
        if (n > 0) {
            b->tokens = (n >= r->o.burst - b->tokens) ? r->o.burst : b->tokens + (unsigned)n;
            b->refill_at_ns += n * refill_ns;
        }
    }
    if (b->tokens == r->o.burst)
        b->refill_at_ns = now; /* a full bucket earns nothing while it waits */
    if (b->tokens == 0)
        return 0;
    b->tokens--;
    return 1;
}

static void on_write_done(const krest_reply *rep, void *ud);

/* Start the write an entry needs now: create when it does not exist, else a series patch. */
static int start_write(kevents *r, ev_entry *e)
{
    opbuf body, path;
    ev_write *w = NULL;
    int rc;
    opbuf_init(&body, BODY_MAX);
    opbuf_init(&path, PATH_MAX_LEN);
    int patch = e->exists;
    if (patch) {
        rc = kevents_format_series_patch(&body, e->count, e->last_ns);
        if (!rc)
            rc = kpath(&path, &KRES_EVENTS, e->ns, e->name, NULL);
    } else {
        kevents_event ev = {
            .name = e->name,
            .namespace = e->ns,
            .event_time_ns = e->first_ns,
            .reporting_controller = r->controller,
            .reporting_instance = r->instance,
            .action = e->action,
            .reason = e->reason,
            .note = e->note,
            .type = e->type,
            .regarding = {e->r_api, e->r_kind, e->r_ns, e->r_name, e->r_uid},
            .series_count = e->count >= 2 ? e->count : 0,
            .series_last_ns = e->last_ns,
        };
        rc = kevents_format_event(&body, &ev);
        if (!rc)
            rc = kpath(&path, &KRES_EVENTS, e->ns, NULL, NULL);
    }
    if (rc)
        goto out;
    rc = -ENOMEM;
    w = calloc(1, sizeof(*w));
    if (!w || !(w->key = strdup(e->key)))
        goto out;
    w->rec = r;
    w->patch = patch;
    w->sent_count = e->count;
    memcpy(w->name, e->name, sizeof(w->name));
    rc = krest_call(r->rest, patch ? "PATCH" : "POST", path.data,
                    patch ? "application/merge-patch+json" : "application/json", body.data,
                    body.len, on_write_done, w, &w->req);
    if (rc)
        goto out;
    w->next = r->writes;
    if (r->writes)
        r->writes->prev = w;
    r->writes = w;
    r->st.inflight++;
    e->busy = 1;
    w = NULL;
out:
    if (w)
        write_free(w);
    opbuf_release(&body);
    opbuf_release(&path);
    return rc;
}

static uint64_t next_name_ns(kevents *r, uint64_t now)
{
    /* Names must be unique even when the clock does not move between emits. */
    if (now <= r->last_name_ns)
        now = r->last_name_ns + 1;
    r->last_name_ns = now;
    return now;
}

static void log_failure(const ev_write *w, const krest_reply *rep)
{
    if (rep->http_status == 0)
        OPLOG_W("event '%s': %s failed: %s (dropped)", w->name,
                w->patch ? "series patch" : "create",
                rep->error_msg ? rep->error_msg : "transport error");
    else
        OPLOG_W("event '%s': %s failed: HTTP %ld %s (dropped)", w->name,
                w->patch ? "series patch" : "create", rep->http_status,
                rep->status ? rep->status->message : "");
}

static void on_write_done(const krest_reply *rep, void *ud)
{
    ev_write *w = ud;
    kevents *r = w->rec;
    write_unlink(r, w);
    ev_entry *e = opmap_get(&r->entries, w->key);
    /* The entry may have been evicted or replaced by a newer event meanwhile. */
    if (e && strcmp(e->name, w->name) != 0)
        e = NULL;
    int ok = rep->http_status >= 200 && rep->http_status < 300;
    if (ok) {
        if (w->patch)
            r->st.patched++;
        else
            r->st.created++;
        if (e) {
            e->busy = 0;
            e->exists = 1;
            e->written = w->sent_count;
        }
    } else if (w->patch && rep->http_status == 404) {
        r->st.recreated++;
        if (e) {
            /* The event expired server-side: start a fresh object for the key. */
            uint64_t now = r->o.clock_ns(r->o.clock_ud);
            e->busy = 0;
            e->exists = 0;
            e->count = 1;
            e->written = 0;
            e->first_ns = e->last_ns = now;
            if (kevents_object_name(e->r_name, next_name_ns(r, now), e->name, sizeof(e->name)) ||
                start_write(r, e) != 0) {
                r->st.failed++;
                entry_remove(r, e);
            }
            e = NULL;
        }
    } else {
        r->st.failed++;
        log_failure(w, rep);
        if (e) {
            e->busy = 0;
            /* A failed create leaves nothing to patch: forget the key. A failed patch
             * keeps the object; the next repeat patches with the latest count. */
            if (!e->exists) {
                entry_remove(r, e);
                e = NULL;
            }
        }
    }
    /* Repeats folded in while this write ran go out in one follow-up. */
    if (e && e->exists && e->count > e->written && e->count >= 2 &&
        r->st.inflight < r->o.max_inflight) {
        if (start_write(r, e) != 0)
            r->st.failed++;
    }
    write_free(w);
}

static char *dup_or_null(const char *s)
{
    return nonempty(s) ? strdup(s) : NULL;
}

static ev_entry *entry_new(kevents *r, const char *key, const kevents_ref *reg, kevents_type type,
                           const char *reason, const char *action, const char *note, uint64_t now)
{
    ev_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    lru_init(&e->lru);
    e->type = type;
    e->key = strdup(key);
    e->reason = strdup(reason);
    e->action = strdup(action);
    e->note = strdup(note);
    e->r_api = strdup(reg->api_version);
    e->r_kind = strdup(reg->kind);
    e->r_name = strdup(reg->name);
    e->r_ns = dup_or_null(reg->namespace);
    e->r_uid = dup_or_null(reg->uid);
    if (!e->key || !e->reason || !e->action || !e->note || !e->r_api || !e->r_kind || !e->r_name ||
        (nonempty(reg->namespace) && !e->r_ns) || (nonempty(reg->uid) && !e->r_uid))
        goto fail;
    copy_cut(e->ns, sizeof(e->ns), nonempty(reg->namespace) ? reg->namespace : "default");
    if (kevents_object_name(reg->name, next_name_ns(r, now), e->name, sizeof(e->name)))
        goto fail;
    e->first_ns = e->last_ns = now;
    e->count = 1;
    return e;
fail:
    entry_free(e);
    return NULL;
}

int kevents_vemit(kevents *r, const kevents_ref *reg, kevents_type type, const char *reason_in,
                  const char *action_in, const char *fmt, va_list ap)
{
    char note[NOTE_SCRATCH] = "", reason[KEVENTS_FIELD_MAX + 1], action[KEVENTS_FIELD_MAX + 1];
    opbuf okey, key;
    int rc;
    if (!r || !reg || !nonempty(reg->api_version) || !nonempty(reg->kind) || !nonempty(reg->name) ||
        !nonempty(reason_in) || !nonempty(action_in) ||
        (type != KEVENTS_NORMAL && type != KEVENTS_WARNING))
        return -EINVAL;
    if (fmt)
        vsnprintf(note, sizeof(note), fmt, ap);
    note[kevents_utf8_cut(note, strlen(note), KEVENTS_NOTE_MAX)] = '\0';
    copy_cut(reason, sizeof(reason), reason_in);
    copy_cut(action, sizeof(action), action_in);
    uint64_t now = r->o.clock_ns(r->o.clock_ud);
    r->st.emitted++;

    opbuf_init(&okey, 2048);
    opbuf_init(&key, 4096);
    if (nonempty(reg->uid))
        rc = opbuf_printf(&okey, "%s", reg->uid);
    else
        rc = opbuf_printf(&okey, "%s/%s/%s/%s", reg->api_version, reg->kind,
                          reg->namespace ? reg->namespace : "", reg->name);
    if (!rc)
        rc = opbuf_printf(&key, "%s\x1f%s\x1f%s\x1f%016" PRIx64, okey.data, reason, action,
                          opmap_hash(note));
    if (rc)
        goto out;

    ev_entry *e = opmap_get(&r->entries, key.data);
    if (e && (strcmp(e->note, note) != 0 || now - e->last_ns > r->o.series_window_ms * 1000000ULL ||
              now < e->last_ns))
        e = NULL; /* a hash collision, or the series window closed: a new event */
    if (e) {
        /* A repeat: counted whatever happens next, so the next write is exact. */
        e->count++;
        e->last_ns = now;
        lru_front(&r->entries_lru, &e->lru);
        rc = 0;
        if (!take_token(r, okey.data, now)) {
            r->st.rate_limited++;
            goto out;
        }
        if (e->busy)
            goto out; /* folded into the running write's follow-up */
        if (r->st.inflight >= r->o.max_inflight) {
            r->st.dropped_inflight++;
            goto out;
        }
        if (!e->exists)
            goto out; /* its create failed and is being forgotten */
        if (start_write(r, e) != 0)
            r->st.failed++;
        goto out;
    }

    if (!take_token(r, okey.data, now)) {
        r->st.rate_limited++;
        OPLOG_V(2, "event %s for %s '%s': rate limited (dropped)", reason, reg->kind, reg->name);
        rc = -EAGAIN;
        goto out;
    }
    if (r->st.inflight >= r->o.max_inflight) {
        r->st.dropped_inflight++;
        OPLOG_V(2, "event %s for %s '%s': %u writes in flight (dropped)", reason, reg->kind,
                reg->name, r->st.inflight);
        rc = -EAGAIN;
        goto out;
    }
    rc = -ENOMEM;
    e = entry_new(r, key.data, reg, type, reason, action, note, now);
    if (!e)
        goto out;
    void *old = NULL;
    if (opmap_put(&r->entries, key.data, e, &old)) {
        entry_free(e);
        goto out;
    }
    if (old) {
        lru_unlink(&((ev_entry *)old)->lru);
        entry_free(old);
    }
    lru_front(&r->entries_lru, &e->lru);
    while (opmap_count(&r->entries) > r->o.max_keys) {
        ev_entry *tail = (ev_entry *)r->entries_lru.prev;
        entry_remove(r, tail);
    }
    rc = start_write(r, e);
    if (rc) {
        r->st.failed++;
        OPLOG_W("event %s for %s '%s': cannot start the write: %s", reason, reg->kind, reg->name,
                strerror(-rc));
        entry_remove(r, e);
    }
out:
    opbuf_release(&okey);
    opbuf_release(&key);
    return rc;
}

int kevents_emit(kevents *r, const kevents_ref *reg, kevents_type type, const char *reason,
                 const char *action, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = kevents_vemit(r, reg, type, reason, action, fmt, ap);
    va_end(ap);
    return rc;
}
