/*
 * kdisc: discovery parsers and the refresh cache. See discovery.h.
 *
 * A refresh fires every GET at once (version, /api/v1, each wanted
 * /apis/GV) and completes when the last one answers; answers are applied as
 * they arrive, failures keep the previous answer.
 */
#include "kube/discovery.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "util/log.h"

#define KDISC_DEFAULT_REFRESH_MS (10u * 60u * 1000u)
#define KDISC_BODY_MAX           ((size_t)4 << 20) /* /api/v1 is ~10 KiB; be generous */
#define KDISC_GV_MAX             128
#define KDISC_RES_MAX            128

/* ---- parsers ------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    unsigned bit;
} verb_names[] = {
    {"get", KDISC_VERB_GET},       {"list", KDISC_VERB_LIST},
    {"watch", KDISC_VERB_WATCH},   {"create", KDISC_VERB_CREATE},
    {"update", KDISC_VERB_UPDATE}, {"patch", KDISC_VERB_PATCH},
    {"delete", KDISC_VERB_DELETE}, {"deletecollection", KDISC_VERB_DELETECOLLECTION},
};

unsigned kdisc_verb_bit(const char *verb)
{
    if (!verb)
        return 0;
    for (size_t i = 0; i < sizeof(verb_names) / sizeof(verb_names[0]); i++)
        if (strcmp(verb, verb_names[i].name) == 0)
            return verb_names[i].bit;
    return 0;
}

/* Leading decimal digits of s ("27+" → 27); -1 when none or absurdly large. */
static int leading_int(const char *s, const char **end)
{
    int v = 0, n = 0;
    while (s && *s >= '0' && *s <= '9') {
        if (v > 100000)
            return -1;
        v = v * 10 + (*s - '0');
        s++;
        n++;
    }
    if (end)
        *end = s;
    return n ? v : -1;
}

static void copy_str(char *dst, size_t cap, const cJSON *item)
{
    dst[0] = '\0';
    if (cJSON_IsString(item) && item->valuestring) {
        size_t n = strlen(item->valuestring);
        if (n >= cap)
            n = cap - 1;
        memcpy(dst, item->valuestring, n);
        dst[n] = '\0';
    }
}

int kdisc_parse_version(const char *body, size_t len, kdisc_version *out, operr *err)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        rc = operr_set(err, -EINVAL, "version document: not a JSON object");
        goto out;
    }
    const cJSON *maj = cJSON_GetObjectItemCaseSensitive(root, "major");
    const cJSON *min = cJSON_GetObjectItemCaseSensitive(root, "minor");
    copy_str(out->git_version, sizeof(out->git_version),
             cJSON_GetObjectItemCaseSensitive(root, "gitVersion"));
    copy_str(out->platform, sizeof(out->platform),
             cJSON_GetObjectItemCaseSensitive(root, "platform"));
    int a = cJSON_IsString(maj) ? leading_int(maj->valuestring, NULL) : -1;
    int b = cJSON_IsString(min) ? leading_int(min->valuestring, NULL) : -1;
    if (a <= 0 || b < 0) {
        /* Some distributions leave major/minor empty; gitVersion "v1.27.3-gke.1" has them. */
        const char *g = out->git_version, *e = NULL;
        if (g[0] == 'v')
            g++;
        a = leading_int(g, &e);
        b = (a > 0 && e && *e == '.') ? leading_int(e + 1, NULL) : -1;
    }
    if (a <= 0 || b < 0) {
        memset(out, 0, sizeof(*out));
        rc = operr_set(err, -EINVAL, "version document: no usable major/minor or gitVersion");
        goto out;
    }
    out->major = a;
    out->minor = b;
out:
    cJSON_Delete(root);
    return rc;
}

int kdisc_version_cmp(const kdisc_version *v, int maj, int min)
{
    if (!v || v->major <= 0)
        return -1;
    if (v->major != maj)
        return v->major < maj ? -1 : 1;
    if (v->minor != min)
        return v->minor < min ? -1 : 1;
    return 0;
}

int kdisc_find_resource(const char *body, size_t len, const char *group_version, const char *name,
                        unsigned *verbs, operr *err)
{
    int rc = 0;
    if (verbs)
        *verbs = 0;
    if (!name)
        return operr_set(err, -EINVAL, "APIResourceList: no resource name given");
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        rc = operr_set(err, -EINVAL, "APIResourceList: not a JSON object");
        goto out;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *gv = cJSON_GetObjectItemCaseSensitive(root, "groupVersion");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "resources");
    if (kind && !(cJSON_IsString(kind) && strcmp(kind->valuestring, "APIResourceList") == 0)) {
        rc = operr_set(err, -EINVAL, "APIResourceList: kind is not APIResourceList");
        goto out;
    }
    if (!cJSON_IsArray(res)) {
        rc = operr_set(err, -EINVAL, "APIResourceList: no resources array");
        goto out;
    }
    if (group_version && !(cJSON_IsString(gv) && strcmp(gv->valuestring, group_version) == 0)) {
        rc = operr_set(err, -EINVAL, "APIResourceList '%s': groupVersion is '%.128s'",
                       group_version, cJSON_IsString(gv) ? gv->valuestring : "");
        goto out;
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, res)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(r, "name");
        if (!cJSON_IsString(n) || strcmp(n->valuestring, name) != 0)
            continue;
        unsigned set = 0;
        const cJSON *v, *vs = cJSON_GetObjectItemCaseSensitive(r, "verbs");
        if (!cJSON_IsArray(vs))
            vs = NULL;
        cJSON_ArrayForEach(v, vs)
        {
            if (cJSON_IsString(v))
                set |= kdisc_verb_bit(v->valuestring);
        }
        if (verbs)
            *verbs = set;
        rc = 1;
        goto out;
    }
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- the cache ---------------------------------------------------------------------------- */

enum { Q_VERSION = 0, Q_CORE = 1, Q_API0 = 2, Q_MAX = Q_API0 + KDISC_MAX_APIS };

typedef struct kdisc_q {
    kdisc *d;
    int idx;
    ophttp_req *req; /* in flight, or NULL */
} kdisc_q;

typedef struct kdisc_api {
    char gv[KDISC_GV_MAX];
    char resource[KDISC_RES_MAX];
    int have; /* enum kdisc_tri */
} kdisc_api;

struct kdisc {
    krest *rest;
    uint64_t refresh_ms;
    kdisc_info info;
    int napis;
    kdisc_api apis[KDISC_MAX_APIS];
    kdisc_q q[Q_MAX];
    int inflight; /* GETs of the running refresh not answered yet */
    int ok;       /* every answer of the running refresh was usable */
    uint64_t started_ms;
    int nwaiters;
    struct {
        kdisc_cb cb;
        void *ud;
    } waiters[KDISC_MAX_WAITERS];
    char last_error[OPERR_MAX];
};

int kdisc_new(kdisc **out, krest *rest, uint64_t refresh_ms)
{
    *out = NULL;
    if (!rest)
        return -EINVAL;
    kdisc *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->rest = rest;
    d->refresh_ms = refresh_ms ? refresh_ms : KDISC_DEFAULT_REFRESH_MS;
    d->info.pods_resize = KDISC_UNKNOWN;
    for (int i = 0; i < Q_MAX; i++) {
        d->q[i].d = d;
        d->q[i].idx = i;
    }
    *out = d;
    return 0;
}

void kdisc_free(kdisc *d)
{
    if (!d)
        return;
    for (int i = 0; i < Q_MAX; i++)
        if (d->q[i].req)
            ophttp_cancel(d->q[i].req);
    free(d);
}

/* DNS-ish names only: the group/version goes into a URL path as is. */
static int name_ok(const char *s, size_t max, int slashes)
{
    size_t n = 0;
    int seen = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (c == '/')
            seen++;
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return 0;
    }
    return n > 0 && n < max && seen == slashes;
}

int kdisc_want(kdisc *d, const char *group_version, const char *resource)
{
    if (!group_version || !resource || !name_ok(group_version, KDISC_GV_MAX, 1) ||
        !name_ok(resource, KDISC_RES_MAX, 0))
        return -EINVAL;
    for (int i = 0; i < d->napis; i++)
        if (!strcmp(d->apis[i].gv, group_version) && !strcmp(d->apis[i].resource, resource))
            return i;
    if (d->napis >= KDISC_MAX_APIS)
        return -ENOSPC;
    kdisc_api *a = &d->apis[d->napis];
    strcpy(a->gv, group_version);
    strcpy(a->resource, resource);
    a->have = KDISC_UNKNOWN;
    return d->napis++;
}

int kdisc_busy(const kdisc *d)
{
    return d->inflight > 0;
}

void kdisc_get(const kdisc *d, kdisc_info *out)
{
    *out = d->info;
}

int kdisc_has(const kdisc *d, const char *group_version, const char *resource)
{
    if (!group_version || !resource)
        return KDISC_UNKNOWN;
    for (int i = 0; i < d->napis; i++)
        if (!strcmp(d->apis[i].gv, group_version) && !strcmp(d->apis[i].resource, resource))
            return d->apis[i].have;
    return KDISC_UNKNOWN;
}

const char *kdisc_last_error(const kdisc *d)
{
    return d->last_error;
}

static void note_error(kdisc *d, const char *what, const krest_reply *r, const char *msg)
{
    d->ok = 0;
    if (msg)
        snprintf(d->last_error, sizeof(d->last_error), "discovery '%s': %s", what, msg);
    else if (r->http_status == 0)
        snprintf(d->last_error, sizeof(d->last_error), "discovery '%s': %s", what,
                 r->error_msg ? r->error_msg : "transport error");
    else
        snprintf(d->last_error, sizeof(d->last_error), "discovery '%s': HTTP %ld: %.300s", what,
                 r->http_status, r->status ? r->status->message : "");
    OPLOG_W("%s", d->last_error);
}

/* Apply one answer to the cache. */
static void apply_reply(kdisc *d, int idx, const krest_reply *r)
{
    operr err;
    operr_clear(&err);
    int ok2xx = r->http_status >= 200 && r->http_status < 300;
    if (r->body_len > KDISC_BODY_MAX) {
        note_error(d, idx == Q_VERSION ? "/version" : "api", r, "answer too large");
        return;
    }
    if (idx == Q_VERSION) {
        kdisc_version v;
        if (!ok2xx) {
            note_error(d, "/version", r, NULL);
        } else if (kdisc_parse_version(r->body, r->body_len, &v, &err) != 0) {
            note_error(d, "/version", r, err.msg);
        } else {
            d->info.version = v;
            d->info.have_version = 1;
        }
        return;
    }
    if (idx == Q_CORE) {
        unsigned verbs = 0;
        int found;
        if (!ok2xx) {
            note_error(d, "/api/v1", r, NULL);
        } else if ((found = kdisc_find_resource(r->body, r->body_len, "v1", "pods/resize", &verbs,
                                                &err)) < 0) {
            note_error(d, "/api/v1", r, err.msg);
        } else {
            d->info.resize_verbs = found ? verbs : 0;
            d->info.pods_resize = (found && (verbs & KDISC_VERB_PATCH)) ? KDISC_YES : KDISC_NO;
        }
        return;
    }
    kdisc_api *a = &d->apis[idx - Q_API0];
    char what[KDISC_GV_MAX + 8];
    snprintf(what, sizeof(what), "/apis/%s", a->gv);
    if (r->http_status == 404) {
        a->have = KDISC_NO; /* the group/version is not served */
        return;
    }
    int found;
    if (!ok2xx) {
        note_error(d, what, r, NULL);
    } else if ((found = kdisc_find_resource(r->body, r->body_len, a->gv, a->resource, NULL, &err)) <
               0) {
        note_error(d, what, r, err.msg);
    } else {
        a->have = found ? KDISC_YES : KDISC_NO;
    }
}

static void on_reply(const krest_reply *r, void *ud)
{
    kdisc_q *q = ud;
    kdisc *d = q->d;
    q->req = NULL;
    apply_reply(d, q->idx, r);
    if (--d->inflight > 0)
        return;
    d->info.refreshed_ms = d->started_ms ? d->started_ms : 1;
    if (d->ok)
        d->last_error[0] = '\0';
    /* Copy the waiters out: a callback may start the next refresh. */
    int n = d->nwaiters, ok = d->ok;
    struct {
        kdisc_cb cb;
        void *ud;
    } w[KDISC_MAX_WAITERS];
    memcpy(w, d->waiters, sizeof(w[0]) * (size_t)n);
    d->nwaiters = 0;
    for (int i = 0; i < n; i++)
        w[i].cb(d, ok, w[i].ud);
}

static int is_fresh(const kdisc *d, uint64_t now_ms)
{
    if (!d->info.refreshed_ms || !d->info.have_version || d->info.pods_resize == KDISC_UNKNOWN)
        return 0;
    for (int i = 0; i < d->napis; i++)
        if (d->apis[i].have == KDISC_UNKNOWN)
            return 0;
    return now_ms >= d->info.refreshed_ms && now_ms - d->info.refreshed_ms < d->refresh_ms;
}

static int start_get(kdisc *d, int idx)
{
    char path[KDISC_GV_MAX + 16];
    if (idx == Q_VERSION)
        snprintf(path, sizeof(path), "/version");
    else if (idx == Q_CORE)
        snprintf(path, sizeof(path), "/api/v1");
    else
        snprintf(path, sizeof(path), "/apis/%s", d->apis[idx - Q_API0].gv);
    int rc = krest_call(d->rest, "GET", path, NULL, NULL, 0, on_reply, &d->q[idx], &d->q[idx].req);
    if (rc == 0)
        d->inflight++;
    return rc;
}

int kdisc_refresh(kdisc *d, uint64_t now_ms, int force, kdisc_cb cb, void *ud)
{
    int rc = 0;
    if (d->inflight == 0 && !force && is_fresh(d, now_ms))
        return 1;
    if (cb && d->nwaiters >= KDISC_MAX_WAITERS)
        return -EBUSY;
    if (d->inflight == 0) {
        d->ok = 1;
        d->started_ms = now_ms;
        int n = Q_API0 + d->napis;
        for (int i = 0; i < n; i++) {
            rc = start_get(d, i);
            if (rc)
                break;
        }
        if (rc) {
            /* Nothing half-started survives: cancel what did start. */
            for (int i = 0; i < n; i++) {
                if (d->q[i].req) {
                    ophttp_cancel(d->q[i].req);
                    d->q[i].req = NULL;
                }
            }
            d->inflight = 0;
            return rc;
        }
    }
    if (cb) {
        d->waiters[d->nwaiters].cb = cb;
        d->waiters[d->nwaiters].ud = ud;
        d->nwaiters++;
    }
    return 0;
}
