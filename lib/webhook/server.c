#include "webhook/server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd/httpd.h"
#include "util/log.h"

#define WHSRV_MAX_EXCLUDE 16

struct whsrv {
    ophttpd *h;
    char *path;
    char *exclude[WHSRV_MAX_EXCLUDE + 1]; /* NULL-terminated copies */
    wresolve_caches caches;
    whsrv_stats st;
    obs_fam *m_review; /* NULL: not measured */
    void (*on_closed)(void *ud);
    void *closed_ud;
};

#define WHSRV_REASON_NAME(id, s) s,
static const char *const k_reason_names[] = {WHSRV_REASONS(WHSRV_REASON_NAME)};
#undef WHSRV_REASON_NAME

const char *whsrv_reason_name(enum whsrv_reason r)
{
    return (unsigned)r < WHSRV_NREASONS ? k_reason_names[r] : "other";
}

enum whsrv_reason whsrv_reason_index(const char *slug)
{
    for (int i = 0; slug && i < WHSRV_NREASONS; i++)
        if (strcmp(k_reason_names[i], slug) == 0)
            return (enum whsrv_reason)i;
    return WHSRV_R_OTHER;
}

long whsrv_parse_timeout(const char *s)
{
    if (!s || !*s)
        return -EINVAL;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || v < 0 || v > 3600L * 1000)
        return -EINVAL;
    if (strcmp(end, "ms") == 0)
        return v;
    if (strcmp(end, "s") == 0)
        return v * 1000;
    if (strcmp(end, "m") == 0 && v <= 60)
        return v * 60000;
    return -EINVAL;
}

int whsrv_answer(const wresolve_caches *c, const char *body, size_t len, opbuf *out,
                 const char **reason, operr *err)
{
    return whsrv_answer_ex(c, NULL, body, len, out, reason, err);
}

static int excluded(const char *const *list, const char *ns)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(list[i], ns) == 0)
            return 1;
    return 0;
}

int whsrv_answer_ex(const wresolve_caches *c, const char *const *exclude, const char *body,
                    size_t len, opbuf *out, const char **reason, operr *err)
{
    static const char *unused;
    if (!reason)
        reason = &unused;
    *reason = NULL;
    admrev_req r;
    opbuf patch;
    opbuf_init(&patch, ADMREV_MAX_BODY);
    int rc = admrev_parse(&r, body, len, err);
    if (rc < 0)
        return rc == -ENOMEM ? 500 : rc == -E2BIG ? 413 : 400;
    int status = 200;
    operr why = {{0}};
    if (!r.is_pod_create) {
        *reason = "not-pod-create";
        operr_set(&why, -EINVAL, "%s of a non-pod object", r.operation);
    } else if (excluded(exclude, r.ns)) {
        *reason = "excluded-namespace";
        operr_set(&why, -EPERM, "namespace '%s' is excluded", r.ns);
    } else {
        wresolve_result res;
        rc = wresolve_pod(c, r.ns, r.owner_kind, r.owner_name, r.owner_uid, &res, reason, &why);
        if (rc == WRESOLVE_OK) {
            rc = admrev_patch(&r, res.wants, res.nwants, &patch, reason, &why);
            if (rc == 0) {
                *reason = "no-change";
            } else if (rc < 0 && !*reason) {
                status = 500; /* out of memory building the patch */
                operr_set(err, rc, "AdmissionReview '%s': cannot build the patch", r.uid);
                goto out;
            }
        }
    }
    if (*reason)
        OPLOG_V(2, "webhook: pod '%s/%s' (review %s) admitted unchanged: %s: %s", r.ns,
                r.name[0] ? r.name : "<generated>", r.uid, *reason, why.msg);
    rc = admrev_response(out, r.uid, *reason ? NULL : patch.data, *reason ? 0 : patch.len);
    if (rc) {
        status = 500;
        operr_set(err, rc, "AdmissionReview '%s': cannot build the response", r.uid);
    }
out:
    opbuf_release(&patch);
    admrev_release(&r);
    return status;
}

static int is_json_ct(const char *ct)
{
    static const char want[] = "application/json";
    if (!ct || strncasecmp(ct, want, sizeof want - 1) != 0)
        return 0;
    char next = ct[sizeof want - 1];
    return next == 0 || next == ';' || next == ' ';
}

static void count_status(whsrv *s, int status, const char *reason)
{
    if (status == 200 && !reason)
        s->st.mutated++;
    else if (status == 200)
        s->st.unchanged[whsrv_reason_index(reason)]++;
    else if (status == 400 || status == 413)
        s->st.malformed++;
    else if (status == 500)
        s->st.errors++;
    else
        s->st.rejected++;
}

static void reply_text(whsrv *s, ophttpd_req *req, int status, const char *msg, const char *extra)
{
    count_status(s, status, NULL);
    char line[OPERR_MAX + 2];
    int n = snprintf(line, sizeof line, "%s\n", msg);
    ophttpd_respond(req, status, "text/plain; charset=utf-8", line, (size_t)n, extra);
}

static void on_request(ophttpd_req *req, void *ud)
{
    whsrv *s = ud;
    const char *path = ophttpd_path(req), *method = ophttpd_method(req);
    if (strcmp(path, "/healthz") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            ophttpd_respond(req, 405, "text/plain", "method not allowed\n", 19,
                            "Allow: GET, HEAD\r\n");
        else
            ophttpd_respond(req, 200, "text/plain", "ok", 2, NULL);
        return;
    }
    if (strcmp(path, s->path) != 0) {
        reply_text(s, req, 404, "not found", NULL);
        return;
    }
    if (strcmp(method, "POST") != 0) {
        reply_text(s, req, 405, "the admission webhook accepts POST only", "Allow: POST\r\n");
        return;
    }
    if (!is_json_ct(ophttpd_header(req, "Content-Type"))) {
        reply_text(s, req, 415, "the admission webhook accepts Content-Type: application/json",
                   NULL);
        return;
    }
    uint64_t t0 = uv_hrtime();
    long timeout_ms = -1;
    char *t = ophttpd_query_param(req, "timeout");
    if (t)
        timeout_ms = whsrv_parse_timeout(t);
    free(t);

    size_t len;
    const char *body = ophttpd_body(req, &len);
    opbuf out;
    opbuf_init(&out, ADMREV_MAX_BODY * 2);
    const char *reason = NULL;
    operr err = {{0}};
    int status = whsrv_answer_ex(&s->caches, (const char *const *)s->exclude, body, len, &out,
                                 &reason, &err);
    uint64_t took = uv_hrtime() - t0;
    if (timeout_ms >= 0 && took / 1000000 > (uint64_t)timeout_ms)
        s->st.late++;
    const char *outcome[] = {status != 200 ? "errored" : reason ? "allowed" : "patched"};
    obs_observe(s->m_review, outcome, (double)took / 1e9);
    if (status == 200) {
        count_status(s, status, reason);
        ophttpd_respond(req, 200, "application/json", out.data, out.len, NULL);
    } else {
        OPLOG_W("webhook: %s %s: %d: %s", method, ophttpd_target(req), status, err.msg);
        reply_text(s, req, status, err.msg[0] ? err.msg : ophttpd_status_text(status), NULL);
    }
    opbuf_release(&out);
}

static void whsrv_free(whsrv *s)
{
    for (size_t i = 0; s->exclude[i]; i++)
        free(s->exclude[i]);
    free(s->path);
    free(s);
}

int whsrv_start(whsrv **out, uv_loop_t *loop, const whsrv_opts *opts, operr *err)
{
    *out = NULL;
    if (!opts->cert_pem || !opts->key_pem)
        return operr_set(err, -EINVAL, "webhook: a serving certificate and key are required");
    const char *path = opts->path && opts->path[0] ? opts->path : WHSRV_DEFAULT_PATH;
    if (path[0] != '/')
        return operr_set(err, -EINVAL, "webhook path '%s': must start with '/'", path);
    whsrv *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return -ENOMEM;
    }
    s->caches = opts->caches;
    if (opts->metrics) {
        /* From 50 us (a cached answer) to 10 s (the API server's longest timeout). */
        static const double b[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                   0.005,   0.01,   0.025,   0.1,    1,     10};
        static const char *const lo[] = {"outcome", NULL};
        s->m_review = obs_histogram(opts->metrics, "optipod_webhook_review_duration_seconds",
                                    "Pod admission reviews, from the request read to the answer "
                                    "built, by outcome: patched (requests injected), allowed "
                                    "(admitted unchanged), errored (a 400, 413 or 500 answer).",
                                    lo, b, sizeof b / sizeof b[0], err);
        if (!s->m_review) {
            whsrv_free(s);
            return -EINVAL;
        }
    }
    static const char *const def_exclude[] = {"kube-system", NULL};
    const char *const *ex = opts->exclude_namespaces ? opts->exclude_namespaces : def_exclude;
    for (size_t i = 0; ex[i]; i++) {
        if (i >= WHSRV_MAX_EXCLUDE || !(s->exclude[i] = strdup(ex[i]))) {
            whsrv_free(s);
            return i >= WHSRV_MAX_EXCLUDE
                       ? operr_set(err, -E2BIG, "webhook: more than %d excluded namespaces",
                                   WHSRV_MAX_EXCLUDE)
                       : -ENOMEM;
        }
    }
    ophttpd_opts ho = {
        .bind = opts->bind ? opts->bind : "0.0.0.0",
        .port = opts->port,
        .cert_pem = opts->cert_pem,
        .key_pem = opts->key_pem,
        .limits = {.max_body_bytes = opts->max_body ? opts->max_body : ADMREV_MAX_BODY},
        .max_connections = opts->max_connections ? opts->max_connections : 1024,
        .idle_timeout_ms = opts->read_timeout_ms,
        .on_request = on_request,
        .ud = s,
    };
    int rc = ophttpd_new(&s->h, loop, &ho);
    if (rc < 0) {
        whsrv_free(s);
        return operr_set(err, rc, "webhook '%s:%d': cannot listen: %s", ho.bind, ho.port,
                         rc == -EINVAL ? "bad TLS material or address" : uv_strerror(rc));
    }
    *out = s;
    return 0;
}

int whsrv_port(const whsrv *s)
{
    return ophttpd_port(s->h);
}

int whsrv_set_tls(whsrv *s, const char *cert_pem, const char *key_pem)
{
    return ophttpd_set_tls(s->h, cert_pem, key_pem);
}

const whsrv_stats *whsrv_get_stats(const whsrv *s)
{
    return &s->st;
}

int whsrv_metrics(const whsrv *s, opbuf *out)
{
    int rc = opbuf_puts(out, "# HELP optipod_webhook_reviews_total Pod admission reviews by "
                             "outcome and, when admitted unchanged, why.\n"
                             "# TYPE optipod_webhook_reviews_total counter\n");
    if (!rc)
        rc = opbuf_printf(out, "optipod_webhook_reviews_total{outcome=\"mutated\"} %llu\n",
                          (unsigned long long)s->st.mutated);
    for (int i = 0; i < WHSRV_NREASONS && !rc; i++)
        rc = opbuf_printf(out,
                          "optipod_webhook_reviews_total{outcome=\"unchanged\",reason=\"%s\"} "
                          "%llu\n",
                          k_reason_names[i], (unsigned long long)s->st.unchanged[i]);
    if (!rc)
        rc = opbuf_printf(out,
                          "optipod_webhook_reviews_total{outcome=\"malformed\"} %llu\n"
                          "optipod_webhook_reviews_total{outcome=\"rejected\"} %llu\n"
                          "optipod_webhook_reviews_total{outcome=\"error\"} %llu\n"
                          "# HELP optipod_webhook_late_total Reviews answered after the API "
                          "server's timeout.\n"
                          "# TYPE optipod_webhook_late_total counter\n"
                          "optipod_webhook_late_total %llu\n",
                          (unsigned long long)s->st.malformed, (unsigned long long)s->st.rejected,
                          (unsigned long long)s->st.errors, (unsigned long long)s->st.late);
    return rc;
}

static void on_httpd_closed(void *ud)
{
    whsrv *s = ud;
    void (*cb)(void *) = s->on_closed;
    void *cud = s->closed_ud;
    whsrv_free(s);
    if (cb)
        cb(cud);
}

void whsrv_stop(whsrv *s, void (*on_closed)(void *ud), void *ud)
{
    s->on_closed = on_closed;
    s->closed_ud = ud;
    ophttpd_close(s->h, on_httpd_closed, s);
}
