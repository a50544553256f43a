/*
 * krest: Kubernetes REST verbs over ophttp (see rest.h).
 *
 * Each call allocates one krest_call_ctx that lives exactly as long as the
 * ophttp request: ophttp_set_release() frees it whether the request finished,
 * was cancelled by the caller or died with the client.
 */
#include "kube/rest.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "util/log.h"

#define KREST_PATH_MAX           8192
#define KREST_DEFAULT_TIMEOUT_MS 30000L
#define KREST_USER_AGENT         "optipod/" OPTIPOD_VERSION

const kres KRES_DEPLOYMENTS = {"apps/v1", "deployments", 1};
const kres KRES_STATEFULSETS = {"apps/v1", "statefulsets", 1};
const kres KRES_DAEMONSETS = {"apps/v1", "daemonsets", 1};
const kres KRES_REPLICASETS = {"apps/v1", "replicasets", 1};
const kres KRES_PODS = {"v1", "pods", 1};
const kres KRES_NAMESPACES = {"v1", "namespaces", 0};
const kres KRES_EVENTS = {"events.k8s.io/v1", "events", 1};
const kres KRES_LEASES = {"coordination.k8s.io/v1", "leases", 1};
const kres KRES_HPAS = {"autoscaling/v2", "horizontalpodautoscalers", 1};
const kres KRES_PDBS = {"policy/v1", "poddisruptionbudgets", 1};
const kres KRES_POLICIES = {"optipod.io/v1alpha1", "optimizationpolicies", 1};
const kres KRES_RECOMMENDATIONS = {"optipod.io/v1alpha1", "optimizationrecommendations", 1};
const kres KRES_MUTATING_WEBHOOKS = {"admissionregistration.k8s.io/v1",
                                     "mutatingwebhookconfigurations", 0};
const kres KRES_SECRETS = {"v1", "secrets", 1};
const kres KRES_CONFIGMAPS = {"v1", "configmaps", 1};
const kres KRES_POD_METRICS = {"metrics.k8s.io/v1beta1", "pods", 1};

struct krest {
    ophttp_client *http;
    kcfg *cfg;
    ophttp_tls tls;
    long timeout_ms;
    obs_fam *m_seconds, *m_errors; /* NULL: not measured */
};

typedef struct krest_call_ctx {
    krest_cb cb;
    krest_data_cb on_data;
    void *ud;
    krest *k;
    uint64_t sent_ns;
    char verb[8]; /* the HTTP method, WATCH for a stream */
} krest_call_ctx;

/* --- Status --------------------------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, const cJSON *item)
{
    const char *s = cJSON_GetStringValue(item);
    snprintf(dst, cap, "%s", s ? s : "");
}

static int cause_seen(const kstatus *st, const kstatus_cause *c)
{
    for (int i = 0; i < st->ncauses; i++) {
        const kstatus_cause *o = &st->causes[i];
        if (strcmp(o->reason, c->reason) == 0 && strcmp(o->message, c->message) == 0 &&
            strcmp(o->field, c->field) == 0)
            return 1;
    }
    return 0;
}

int kstatus_parse(const char *body, size_t len, kstatus *out)
{
    int rc = -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!body || len == 0)
        return -EINVAL;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root))
        goto out;
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "kind"));
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(root, "code");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    /* A Status says so; tolerate a missing kind only when the shape is unmistakable. */
    if (kind ? strcmp(kind, "Status") != 0 : !(cJSON_IsString(status) && cJSON_IsNumber(code)))
        goto out;
    if (cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble < 1000)
        out->code = (int)code->valuedouble;
    copy_str(out->status, sizeof(out->status), status);
    copy_str(out->reason, sizeof(out->reason), cJSON_GetObjectItemCaseSensitive(root, "reason"));
    copy_str(out->message, sizeof(out->message), cJSON_GetObjectItemCaseSensitive(root, "message"));
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    copy_str(out->continue_token, sizeof(out->continue_token),
             cJSON_GetObjectItemCaseSensitive(md, "continue"));
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(root, "details");
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(det, "retryAfterSeconds");
    if (cJSON_IsNumber(ra) && ra->valuedouble > 0 && ra->valuedouble < 1e9)
        out->retry_after_s = (int)ra->valuedouble;
    const cJSON *causes = cJSON_GetObjectItemCaseSensitive(det, "causes");
    if (!cJSON_IsArray(causes))
        causes = NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, causes)
    {
        if (out->ncauses == KSTATUS_MAX_CAUSES)
            break;
        if (!cJSON_IsObject(c))
            continue;
        kstatus_cause *dst = &out->causes[out->ncauses];
        copy_str(dst->reason, sizeof(dst->reason), cJSON_GetObjectItemCaseSensitive(c, "reason"));
        copy_str(dst->message, sizeof(dst->message),
                 cJSON_GetObjectItemCaseSensitive(c, "message"));
        copy_str(dst->field, sizeof(dst->field), cJSON_GetObjectItemCaseSensitive(c, "field"));
        /* The v1.24 server repeats causes (fixtures/apply-conflict-409.json). */
        if (cause_seen(out, dst))
            memset(dst, 0, sizeof(*dst));
        else
            out->ncauses++;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* --- paths ---------------------------------------------------------------------------- */

static int is_unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static int put_escaped(opbuf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rc;
        if (is_unreserved(*p)) {
            rc = opbuf_append(out, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = opbuf_append(out, e, 3);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* After a failed append `out` is empty and failed (util/buf.h); the caller gets -E2BIG. */
static int path_failed(const opbuf *out)
{
    return opbuf_error(out) == -ENOMEM ? -ENOMEM : -E2BIG;
}

int kpath(opbuf *out, const kres *r, const char *ns, const char *name, const char *sub)
{
    int core = strcmp(r->group_version, "v1") == 0;
    int rc = opbuf_puts(out, core ? "/api/" : "/apis/");
    /* group_version keeps its '/': it is two segments, both plain DNS labels. */
    if (!rc)
        rc = opbuf_puts(out, r->group_version);
    if (!rc && r->namespaced && ns && *ns) {
        rc = opbuf_puts(out, "/namespaces/");
        if (!rc)
            rc = put_escaped(out, ns);
    }
    if (!rc)
        rc = opbuf_puts(out, "/");
    if (!rc)
        rc = put_escaped(out, r->resource);
    if (!rc && name && *name) {
        rc = opbuf_puts(out, "/");
        if (!rc)
            rc = put_escaped(out, name);
        if (!rc && sub && *sub) {
            rc = opbuf_puts(out, "/");
            if (!rc)
                rc = put_escaped(out, sub);
        }
    }
    return rc ? path_failed(out) : 0;
}

int kpath_query(opbuf *out, const char *const *kv)
{
    int first = !(out->data && memchr(out->data, '?', out->len));
    int rc = 0;
    for (; kv && kv[0]; kv += 2) {
        const char *v = kv[1];
        if (!v || !*v)
            continue;
        rc = opbuf_puts(out, first ? "?" : "&");
        if (!rc)
            rc = put_escaped(out, kv[0]);
        if (!rc)
            rc = opbuf_puts(out, "=");
        if (!rc)
            rc = put_escaped(out, v);
        if (rc)
            break;
        first = 0;
    }
    return rc ? path_failed(out) : 0;
}

/* --- client --------------------------------------------------------------------------- */

int krest_new(krest **out, ophttp_client *http, kcfg *cfg, operr *err)
{
    *out = NULL;
    if (!http || !cfg || !cfg->server || !*cfg->server)
        return operr_set(err, -EINVAL, "kube client '%s': no API server address",
                         cfg && cfg->source ? cfg->source : "?");
    krest *k = calloc(1, sizeof(*k));
    if (!k)
        return operr_set(err, -ENOMEM, "kube client '%s': out of memory", cfg->server);
    k->http = http;
    k->cfg = cfg;
    k->timeout_ms = KREST_DEFAULT_TIMEOUT_MS;
    k->tls.ca_file = cfg->ca_file;
    k->tls.ca_pem = cfg->ca_data;
    k->tls.ca_pem_len = cfg->ca_data_len;
    k->tls.cert_file = cfg->cert_file;
    k->tls.key_file = cfg->key_file;
    k->tls.cert_pem = cfg->cert_data;
    k->tls.cert_pem_len = cfg->cert_data_len;
    k->tls.key_pem = cfg->key_data;
    k->tls.key_pem_len = cfg->key_data_len;
    k->tls.insecure_skip_verify = cfg->insecure;
    if (cfg->insecure)
        OPLOG_W("kube client '%s': insecure-skip-tls-verify is set: the API server's "
                "certificate is NOT verified",
                cfg->server);
    *out = k;
    return 0;
}

void krest_free(krest *k)
{
    free(k);
}

const char *krest_server(const krest *k)
{
    return k->cfg->server;
}

void krest_set_timeout(krest *k, long timeout_ms)
{
    k->timeout_ms = timeout_ms > 0 ? timeout_ms : KREST_DEFAULT_TIMEOUT_MS;
}

int krest_set_metrics(krest *k, obs_reg *r, operr *err)
{
    /* From 5 ms (a cached GET on loopback) to 30 s (the request timeout). */
    static const double b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    static const char *const lv[] = {"verb", NULL}, *const lvc[] = {"verb", "code", NULL};
    k->m_seconds = obs_histogram(r, "optipod_api_request_duration_seconds",
                                 "Kubernetes API requests by HTTP verb: time to the whole answer "
                                 "(watch streams excluded), failures included.",
                                 lv, b, sizeof b / sizeof b[0], err);
    k->m_errors = obs_counter(r, "optipod_api_request_errors_total",
                              "Kubernetes API requests answered with a status >= 400 (code), or "
                              "with none (code \"transport\"), by HTTP verb (WATCH: a stream).",
                              lvc, err);
    return k->m_seconds && k->m_errors ? 0 : -EINVAL;
}

/* One answered request: its latency (not for streams) and, when it failed, its code. */
static void observe(const krest_call_ctx *x, const ophttp_response *res)
{
    const krest *k = x->k;
    const char *verb[] = {x->verb, NULL};
    if (!x->on_data)
        obs_observe(k->m_seconds, verb, (double)(uv_hrtime() - x->sent_ns) / 1e9);
    if (res->error != OPHTTP_OK || res->status >= 400) {
        char code[16];
        snprintf(code, sizeof code, "%ld", res->status);
        const char *lv[] = {x->verb, res->error != OPHTTP_OK ? "transport" : code};
        obs_add(k->m_errors, lv, 1);
    }
}

static void call_release(void *ud)
{
    free(ud);
}

static int call_on_data(ophttp_req *req, const char *data, size_t len, void *ud)
{
    krest_call_ctx *x = ud;
    return x->on_data(data, len, x->ud);
}

/* Keep a printable prefix of a non-Status error body ("404 page not found"). */
static void message_from_body(kstatus *st, const char *body, size_t len)
{
    size_t n = len < sizeof(st->message) - 1 ? len : sizeof(st->message) - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)body[i];
        st->message[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    st->message[n] = '\0';
}

static void call_on_done(ophttp_req *req, const ophttp_response *res, void *ud)
{
    krest_call_ctx *x = ud;
    krest_reply rep;
    kstatus *st = NULL;
    observe(x, res);
    memset(&rep, 0, sizeof(rep));
    rep.http_status = res->status;
    rep.error = res->error;
    rep.error_msg = res->error_msg;
    rep.body = res->body;
    rep.body_len = res->body_len;
    rep.retry_after_s = res->retry_after_s;
    if (res->status && (res->status < 200 || res->status >= 300)) {
        st = malloc(sizeof(*st));
        if (st) {
            if (kstatus_parse(res->body, res->body_len, st) != 0)
                message_from_body(st, res->body, res->body_len);
            if (st->code == 0)
                st->code = (int)res->status;
            rep.status = st;
        }
    }
    x->cb(&rep, x->ud);
    free(st);
}

static int start(krest *k, const char *method, const char *path, const char *content_type,
                 const char *body, size_t body_len, long timeout_ms, long low_speed_s,
                 krest_data_cb on_data, krest_cb cb, void *ud, ophttp_req **reqp)
{
    opbuf url, auth;
    char ct[160];
    const char *headers[5];
    int nh = 0, rc;
    krest_call_ctx *x = NULL;
    ophttp_req *req = NULL;
    if (reqp)
        *reqp = NULL;
    if (!cb || !path || path[0] != '/')
        return -EINVAL;
    opbuf_init(&url, KREST_PATH_MAX + 1024);
    opbuf_init(&auth, 64 * 1024);
    rc = opbuf_puts(&url, k->cfg->server);
    if (!rc)
        rc = opbuf_puts(&url, path);
    if (rc)
        goto out;
    headers[nh++] = "Accept: application/json";
    headers[nh++] = "User-Agent: " KREST_USER_AGENT;
    if (content_type) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        headers[nh++] = ct;
    }
    operr err;
    operr_clear(&err);
    const char *tok = kcfg_bearer(k->cfg, &err);
    if (tok && *tok) {
        rc = opbuf_printf(&auth, "Authorization: Bearer %s", tok);
        if (rc)
            goto out;
        headers[nh++] = auth.data;
    } else if (err.msg[0]) {
        /* The server will answer 401; say why here, where the cause is known. */
        OPLOG_W("%s", err.msg);
    }
    headers[nh] = NULL;

    rc = -ENOMEM;
    x = calloc(1, sizeof(*x));
    if (!x)
        goto out;
    x->cb = cb;
    x->on_data = on_data;
    x->ud = ud;
    x->k = k;
    x->sent_ns = uv_hrtime();
    snprintf(x->verb, sizeof x->verb, "%s", on_data ? "WATCH" : method);
    ophttp_req_opts o = {
        .method = method,
        .url = url.data,
        .headers = headers,
        .body = body,
        .body_len = body_len,
        .timeout_ms = timeout_ms,
        .low_speed_time_s = low_speed_s,
        .tls = &k->tls,
        .on_data = on_data ? call_on_data : NULL,
        .on_done = call_on_done,
        .ud = x,
    };
    rc = ophttp_request(k->http, &o, &req);
    if (rc)
        goto out;
    ophttp_set_release(req, call_release);
    x = NULL; /* owned by the request now */
    if (reqp)
        *reqp = req;
out:
    free(x);
    opbuf_release(&url);
    opbuf_release(&auth);
    return rc;
}

int krest_call(krest *k, const char *method, const char *path, const char *content_type,
               const char *body, size_t body_len, krest_cb cb, void *ud, ophttp_req **req)
{
    return start(k, method, path, content_type, body, body_len, k->timeout_ms, 0, NULL, cb, ud,
                 req);
}

int krest_stream(krest *k, const char *path, long low_speed_time_s, krest_data_cb on_data,
                 krest_cb cb, void *ud, ophttp_req **req)
{
    if (!on_data)
        return -EINVAL;
    return start(k, "GET", path, NULL, NULL, 0, 0, low_speed_time_s, on_data, cb, ud, req);
}

int krest_get(krest *k, const kres *r, const char *ns, const char *name, const char *sub,
              krest_cb cb, void *ud)
{
    opbuf p;
    opbuf_init(&p, KREST_PATH_MAX);
    int rc = kpath(&p, r, ns, name, sub);
    if (!rc)
        rc = krest_call(k, "GET", p.data, NULL, NULL, 0, cb, ud, NULL);
    opbuf_release(&p);
    return rc;
}

static int write_query(opbuf *p, const krest_write_opts *o, int apply)
{
    const char *kv[] = {"fieldManager",
                        o ? o->field_manager : NULL,
                        "force",
                        (apply && o && o->force) ? "true" : NULL,
                        "dryRun",
                        (o && o->dry_run) ? "All" : NULL,
                        NULL};
    return kpath_query(p, kv);
}

int krest_create(krest *k, const kres *r, const char *ns, const char *body, size_t len,
                 const krest_write_opts *o, krest_cb cb, void *ud)
{
    opbuf p;
    opbuf_init(&p, KREST_PATH_MAX);
    int rc = kpath(&p, r, ns, NULL, NULL);
    if (!rc)
        rc = write_query(&p, o, 0);
    if (!rc)
        rc = krest_call(k, "POST", p.data, "application/json", body, len, cb, ud, NULL);
    opbuf_release(&p);
    return rc;
}

static const char *patch_content_type(enum krest_patch_type t)
{
    switch (t) {
    case KREST_PATCH_MERGE:
        return "application/merge-patch+json";
    case KREST_PATCH_STRATEGIC:
        return "application/strategic-merge-patch+json";
    case KREST_PATCH_JSON:
        return "application/json-patch+json";
    case KREST_PATCH_APPLY:
        return "application/apply-patch+yaml";
    }
    return NULL;
}

int krest_patch(krest *k, const kres *r, const char *ns, const char *name, const char *sub,
                enum krest_patch_type type, const char *body, size_t len, const krest_write_opts *o,
                krest_cb cb, void *ud)
{
    const char *ct = patch_content_type(type);
    int apply = type == KREST_PATCH_APPLY;
    if (!ct || !name || !*name)
        return -EINVAL;
    /* The server refuses an apply without a manager (422); fail before the round trip. */
    if (apply && !(o && o->field_manager && *o->field_manager))
        return -EINVAL;
    opbuf p;
    opbuf_init(&p, KREST_PATH_MAX);
    int rc = kpath(&p, r, ns, name, sub);
    if (!rc)
        rc = write_query(&p, o, apply);
    if (!rc)
        rc = krest_call(k, "PATCH", p.data, ct, body, len, cb, ud, NULL);
    opbuf_release(&p);
    return rc;
}

int krest_delete(krest *k, const kres *r, const char *ns, const char *name, krest_cb cb, void *ud)
{
    if (!name || !*name)
        return -EINVAL;
    opbuf p;
    opbuf_init(&p, KREST_PATH_MAX);
    int rc = kpath(&p, r, ns, name, NULL);
    if (!rc)
        rc = krest_call(k, "DELETE", p.data, NULL, NULL, 0, cb, ud, NULL);
    opbuf_release(&p);
    return rc;
}
