/*
 * mprom: the Prometheus provider. The I/O half: promql.c plans, builds,
 * parses and combines; this file runs the queries on the loop with timeouts,
 * retries and backoff, and turns every failure into one error result.
 */
#include "metrics/prometheus.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "metrics/promql.h"
#include "util/backoff.h"
#include "util/buf.h"
#include "util/b64.h"
#include "util/log.h"

/* A query string is a few hundred bytes plus the pod regex; this cap also
 * bounds what a caller can make us send. */
#define MPROM_MAX_QUERY ((size_t)4 << 20)
#define MPROM_MAX_TOKEN 16384

typedef struct mjob mjob;

typedef struct mprom {
    mprov prov; /* first: mprov_close() hands us back prov.state == this */
    uv_loop_t *loop;
    ophttp_client *http;
    char *url; /* ".../api/v1/query" */
    char *base;
    char *token, *token_file, *ca_file, *basic_file;
    char **headers; /* extra "Name: value" lines */
    size_t nheaders;
    ophttp_tls tls;
    long timeout_ms;
    unsigned max_retries;
    uint64_t backoff_initial_ms, backoff_max_ms;
    size_t max_body, batch_pods;
    uint64_t step_floor_s, rate_s;
    uint64_t rnd; /* xorshift state for backoff jitter */
    mprov_obs obs;
    mjob *jobs; /* live jobs, including those whose timer is closing */
    size_t njobs;
    int closing;
} mprom;

struct mjob {
    mjob *next;
    mprom *m;
    char *ns;
    promql_agg *agg;
    promql_opts qo;
    int64_t eval_time_s;
    size_t nqueries, qi;
    unsigned attempt, issued;
    opbackoff bo;
    uv_timer_t timer;
    ophttp_req *req;
    uint64_t sent_ns; /* of the query in flight */
    opbuf form;
    mprov_cb cb;
    void *ud;
    int finished;
    /* a raw call (mprom_query_raw): its URL, form and callback; agg unused */
    char *raw_url;
    mprom_raw_cb raw_cb;
};

static const mprov_ops mprom_ops;

static double next_rnd(mprom *m)
{
    m->rnd ^= m->rnd << 13;
    m->rnd ^= m->rnd >> 7;
    m->rnd ^= m->rnd << 17;
    return (double)(m->rnd >> 11) / (double)(1ull << 53);
}

static void mprom_free(mprom *m)
{
    free(m->url);
    free(m->base);
    free(m->token);
    free(m->token_file);
    free(m->ca_file);
    free(m->basic_file);
    for (size_t i = 0; i < m->nheaders; i++)
        free(m->headers[i]);
    free(m->headers);
    free(m);
}

static void job_closed(uv_handle_t *h)
{
    mjob *j = h->data;
    mprom *m = j->m;
    for (mjob **pp = &m->jobs; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    }
    m->njobs--;
    free(j->ns);
    free(j->raw_url);
    promql_agg_free(j->agg);
    opbuf_release(&j->form);
    free(j);
    if (m->closing && m->njobs == 0)
        mprom_free(m);
}

static void job_close(mjob *j)
{
    j->finished = 1;
    if (j->req) {
        ophttp_cancel(j->req);
        j->req = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&j->timer))
        uv_close((uv_handle_t *)&j->timer, job_closed);
}

/* Deliver the one callback of a job, then retire it. */
static void job_finish(mjob *j, int rc, const char *msg)
{
    if (j->raw_cb) {
        j->finished = 1;
        if (j->req)
            ophttp_cancel(j->req);
        j->req = NULL;
        j->raw_cb(rc, rc ? msg : "", NULL, 0, j->ud);
        job_close(j);
        return;
    }
    mprov_result res = {
        .error = rc,
        .error_msg = rc ? msg : "",
        .ns = j->ns,
        .eval_time_s = j->eval_time_s,
    };
    if (rc == 0 && promql_agg_result(j->agg, j->eval_time_s, &res) != 0) {
        res = (mprov_result){.error = -ENOMEM, .error_msg = "prometheus: out of memory"};
        res.ns = j->ns;
    }
    res.queries = j->issued;
    j->finished = 1;
    if (j->req)
        ophttp_cancel(j->req);
    j->req = NULL;
    j->cb(&res, j->ud);
    job_close(j);
}

static void job_fail(mjob *j, int rc, const char *fmt, const char *detail)
{
    operr e;
    if (j->raw_cb)
        operr_set(&e, rc, "prometheus '%s': %s%s: %s", j->m->base, j->raw_url + strlen(j->m->base),
                  fmt, detail);
    else
        operr_set(&e, rc, "prometheus '%s': namespace '%s' query %zu/%zu%s: %s", j->m->base, j->ns,
                  j->qi + 1, j->nqueries, fmt, detail);
    job_finish(j, rc, e.msg);
}

static int read_token(const char *path, char **out)
{
    int rc = 0;
    opbuf b;
    opbuf_init(&b, MPROM_MAX_TOKEN);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char tmp[4096];
    size_t n;
    while (rc == 0 && (n = fread(tmp, 1, sizeof tmp, f)) > 0)
        rc = opbuf_append(&b, tmp, n);
    fclose(f);
    while (rc == 0 && b.len > 0 &&
           (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' || b.data[b.len - 1] == ' ' ||
            b.data[b.len - 1] == '\t'))
        b.data[--b.len] = '\0';
    if (rc == 0)
        *out = opbuf_detach(&b, NULL);
    opbuf_release(&b);
    return rc;
}

/* "Authorization: Basic base64(user:password)" from a file holding user:password. */
static int basic_auth_header(const char *path, opbuf *hdr, const char **fail)
{
    char *cred = NULL;
    int rc = read_token(path, &cred);
    if (rc != 0) {
        *fail = "cannot read the basic auth file";
        return rc;
    }
    size_t n = strlen(cred);
    const char *colon = strchr(cred, ':');
    if (!colon || colon == cred || strchr(cred, '\n')) {
        *fail = "the basic auth file must hold one line user:password";
        rc = -EINVAL;
        goto out;
    }
    rc = opbuf_puts(hdr, "Authorization: Basic ");
    if (rc == 0)
        rc = opb64_encode(hdr, cred, n); /* the one base64 codec (util/b64.h) */
    if (rc != 0)
        *fail = "the basic auth credentials are too long";
out:
    OPENSSL_cleanse(cred, n);
    free(cred);
    return rc;
}

static void on_query_done(ophttp_req *req, const ophttp_response *res, void *ud);
static void start_query(uv_timer_t *t);

static void retry_or_fail(mjob *j, int rc, const char *detail)
{
    mprom *m = j->m;
    if (j->attempt < m->max_retries) {
        j->attempt++;
        uint64_t delay = opbackoff_next(&j->bo, uv_now(m->loop), next_rnd(m));
        OPLOG_V(1, "prometheus '%s': namespace '%s': %s; retry %u/%u in %" PRIu64 " ms", m->base,
                j->ns, detail, j->attempt, m->max_retries, delay);
        uv_timer_start(&j->timer, start_query, delay, 0);
        return;
    }
    char tail[32] = "";
    if (j->attempt > 0)
        snprintf(tail, sizeof tail, " (%u attempts)", j->attempt + 1);
    job_fail(j, rc, tail, detail);
}

/* Query 0 asks kube-state-metrics who owned which pod in the window; query 1
 * (once that answer is folded in) every statistic of the window's pods. Past
 * batch_pods alternatives a matcher is left out: namespace-wide. */
static int build_query(mjob *j, opbuf *q)
{
    opbuf a;
    opbuf_init(&a, MPROM_MAX_QUERY / 2);
    size_t nalts = 0;
    int rc;
    if (j->qi == 0) {
        rc = promql_agg_deploy_regex(j->agg, &a);
        int wide = rc == -E2BIG || promql_agg_nworkloads(j->agg) > j->m->batch_pods;
        if (rc == 0 || wide)
            rc = promql_build_owners(q, j->ns, wide ? ".+" : opbuf_str(&a), j->qo.window_s);
    } else {
        rc = promql_agg_pod_regex(j->agg, &a, &nalts);
        int wide = rc == -E2BIG || nalts > j->m->batch_pods;
        if (rc == 0 || wide)
            rc = promql_build_re(q, j->ns, wide ? NULL : opbuf_str(&a), &j->qo);
    }
    opbuf_release(&a);
    return rc;
}

/* Build and send query j->qi (a timer callback: first attempts and retries). */
static void start_query(uv_timer_t *t)
{
    mjob *j = t->data;
    mprom *m = j->m;
    const char *auth_token = m->token;
    const char *fail = NULL;
    char *file_token = NULL;
    opbuf q, hdr;
    opbuf_init(&q, MPROM_MAX_QUERY);
    opbuf_init(&hdr, 2 * MPROM_MAX_TOKEN + 64);
    int rc = 0;
    if (j->finished)
        goto out;
    if (m->token_file) {
        /* Re-read every time: a projected token is rotated in place. */
        rc = read_token(m->token_file, &file_token);
        if (rc != 0) {
            fail = "cannot read the bearer token file";
            goto out;
        }
        auth_token = file_token;
    }
    if (!j->raw_cb) {
        opbuf_reset(&j->form);
        rc = build_query(j, &q);
        if (rc == 0)
            rc = opbuf_puts(&j->form, "query=");
        if (rc == 0)
            rc = promql_append_form(&j->form, q.data, q.len);
        if (rc == 0)
            rc = opbuf_printf(&j->form, "&time=%" PRId64, j->eval_time_s);
    }
    if (rc != 0) {
        fail = "cannot build the query (too many or too long pod names?)";
        goto out;
    }
    const char *headers[4 + MPROM_MAX_HEADERS] = {"Content-Type: application/x-www-form-urlencoded",
                                                  "Accept: application/json"};
    size_t nh = 2;
    if (m->basic_file) {
        if ((rc = basic_auth_header(m->basic_file, &hdr, &fail)) != 0)
            goto out;
        headers[nh++] = opbuf_str(&hdr);
    } else if (auth_token && *auth_token) {
        if ((rc = opbuf_printf(&hdr, "Authorization: Bearer %s", auth_token)) != 0) {
            fail = "the bearer token is too long";
            goto out;
        }
        headers[nh++] = opbuf_str(&hdr);
    }
    for (size_t i = 0; i < m->nheaders; i++)
        headers[nh++] = m->headers[i];
    ophttp_req_opts o = {
        .method = "POST",
        .url = j->raw_url ? j->raw_url : m->url,
        .headers = headers,
        .body = j->form.data,
        .body_len = j->form.len,
        .timeout_ms = m->timeout_ms,
        .connect_timeout_ms = m->timeout_ms < 10000 ? m->timeout_ms : 10000,
        .max_body = m->max_body,
        .tls = &m->tls,
        .on_done = on_query_done,
        .ud = j,
    };
    j->sent_ns = uv_hrtime();
    rc = ophttp_request(m->http, &o, &j->req);
    if (rc != 0) {
        fail = "cannot start the HTTP request";
        goto out;
    }
    j->issued++;
out:
    opbuf_release(&q);
    if (hdr.data)
        OPENSSL_cleanse(hdr.data, hdr.len);
    opbuf_release(&hdr);
    free(file_token);
    if (fail)
        job_fail(j, rc, "", fail);
}

static int map_transport(int e)
{
    switch (e) {
    case OPHTTP_ECONNECT:
        return -ECONNREFUSED;
    case OPHTTP_ETIMEOUT:
        return -ETIMEDOUT;
    case OPHTTP_ETLS:
        return -EPROTO;
    case OPHTTP_ETOOBIG:
        return -EFBIG;
    default:
        return -EIO;
    }
}

/* A short, printable excerpt of a body for messages. */
static void excerpt(const char *body, size_t len, char *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < max; i++)
        out[n++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

static int ignore_sample(const promql_sample *s, void *ud)
{
    return 0;
}

static void on_query_done(ophttp_req *req, const ophttp_response *res, void *ud)
{
    mjob *j = ud;
    mprom *m = j->m;
    char detail[OPERR_MAX];
    j->req = NULL;
    if (j->finished)
        return;
    if (res->error != OPHTTP_OK) {
        mprov_obs_query(&m->obs, "prometheus", j->sent_ns,
                        res->error == OPHTTP_ETOOBIG ? "decode" : "transport");
        int rc = map_transport(res->error);
        snprintf(detail, sizeof detail, "%s",
                 res->error_msg && *res->error_msg ? res->error_msg : "transport error");
        if (res->error == OPHTTP_ETOOBIG)
            snprintf(detail, sizeof detail, "response larger than the %zu-byte cap", m->max_body);
        if (rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == -EIO)
            retry_or_fail(j, rc, detail);
        else
            job_fail(j, rc, "", detail);
        return;
    }
    if (res->status < 200 || res->status > 299) {
        mprov_obs_query(&m->obs, "prometheus", j->sent_ns, "http");
        /* Prometheus explains errors in its JSON envelope; otherwise quote the body. */
        operr pe;
        char ex[160];
        /* 401/403 are named: they mean the credentials or the tenant, not the query. */
        const char *what = res->status == 401 ? " Unauthorized (the bearer token or basic auth)"
                           : res->status == 403
                               ? " Forbidden (the credentials or the tenant header)"
                               : "";
        if (promql_parse(res->body, res->body_len, ignore_sample, NULL, &pe) == -EREMOTEIO) {
            snprintf(detail, sizeof detail, "HTTP %ld%s: %s", res->status, what, pe.msg);
        } else {
            excerpt(res->body, res->body_len, ex, sizeof ex);
            snprintf(detail, sizeof detail, "HTTP %ld%s: %s", res->status, what, ex);
        }
        if (res->status >= 500 || res->status == 429)
            retry_or_fail(j, -EREMOTEIO, detail);
        else
            job_fail(j, res->status == 401 || res->status == 403 ? -EACCES : -EREMOTEIO, "",
                     detail);
        return;
    }
    if (j->raw_cb) {
        j->finished = 1;
        j->raw_cb(0, "", res->body, res->body_len, j->ud);
        job_close(j);
        return;
    }
    operr pe;
    operr_clear(&pe);
    promql_agg_ctx ctx = {.agg = j->agg, .err = &pe, .owners_query = j->qi == 0};
    int rc = promql_parse(res->body, res->body_len, promql_agg_sample_cb, &ctx, &pe);
    mprov_obs_query(&m->obs, "prometheus", j->sent_ns,
                    rc == 0            ? NULL
                    : rc == -EREMOTEIO ? "http"
                                       : "decode");
    if (rc != 0) {
        job_fail(j, rc, "", pe.msg[0] ? pe.msg : "cannot use the response");
        return;
    }
    j->qi++;
    j->attempt = 0;
    opbackoff_reset(&j->bo);
    if (j->qi < j->nqueries)
        uv_timer_start(&j->timer, start_query, 0, 0);
    else
        job_finish(j, 0, "");
}

static void finish_empty(uv_timer_t *t)
{
    mjob *j = t->data;
    if (!j->finished)
        job_finish(j, 0, "");
}

/* A new job of m for ns (copied), its form capped as every query's. */
static mjob *job_new(mprom *m, const char *ns, void *ud)
{
    mjob *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->m = m;
    j->ud = ud;
    opbuf_init(&j->form, MPROM_MAX_QUERY * 3 + 64);
    if (!(j->ns = strdup(ns))) {
        free(j);
        return NULL;
    }
    return j;
}

static void job_discard(mjob *j)
{
    free(j->ns);
    free(j->raw_url);
    promql_agg_free(j->agg);
    opbuf_release(&j->form);
    free(j);
}

/* Link a prepared job and run `first` from the loop (never synchronously). */
static int job_launch(mjob *j, uv_timer_cb first)
{
    mprom *m = j->m;
    opbackoff_init(&j->bo, m->backoff_initial_ms, m->backoff_max_ms, 0, 0.2);
    int rc = uv_timer_init(m->loop, &j->timer);
    if (rc != 0)
        return rc;
    j->timer.data = j;
    j->next = m->jobs;
    m->jobs = j;
    m->njobs++;
    uv_timer_start(&j->timer, first, 0, 0);
    return 0;
}

static int mprom_request_stats(void *state, const mprov_request *rq, mprov_cb cb, void *ud)
{
    mprom *m = state;
    if (m->closing || !cb || !rq || !rq->ns || !*rq->ns || !(rq->percentile > 0) ||
        !(rq->percentile < 1) || rq->window_s == 0)
        return -EINVAL;
    mjob *j = job_new(m, rq->ns, ud);
    if (!j)
        return -ENOMEM;
    j->cb = cb;
    int rc = promql_agg_new(&j->agg, rq);
    if (rc != 0)
        goto fail;
    j->qo = (promql_opts){
        .percentile = rq->percentile,
        .window_s = rq->window_s,
        .step_s = promql_step_s(rq->window_s, m->step_floor_s),
        .rate_s = m->rate_s,
    };
    j->eval_time_s = rq->eval_time_s ? rq->eval_time_s : (int64_t)time(NULL);
    j->nqueries = PROMQL_QUERIES(rq->nworkloads);
    /* Always answer from the loop, even when there is nothing to ask. */
    if ((rc = job_launch(j, j->nqueries ? start_query : finish_empty)) != 0)
        goto fail;
    return 0;
fail:
    job_discard(j);
    return rc;
}

int mprom_query_raw(mprov *p, const char *path, const char *form, mprom_raw_cb cb, void *ud)
{
    if (!p || p->ops != &mprom_ops || !path || path[0] != '/' || !form || !cb)
        return -EINVAL;
    mprom *m = p->state;
    if (m->closing)
        return -EINVAL;
    mjob *j = job_new(m, "", ud);
    if (!j)
        return -ENOMEM;
    int rc = -ENOMEM;
    j->raw_cb = cb;
    j->nqueries = 1;
    if (asprintf(&j->raw_url, "%s%s", m->base, path) < 0) {
        j->raw_url = NULL;
        goto fail;
    }
    if ((rc = opbuf_puts(&j->form, form)) != 0 || (rc = job_launch(j, start_query)) != 0)
        goto fail;
    return 0;
fail:
    job_discard(j);
    return rc;
}

static void mprom_close(void *state)
{
    mprom *m = state;
    m->closing = 1;
    if (m->njobs == 0) {
        mprom_free(m);
        return;
    }
    for (mjob *j = m->jobs; j; j = j->next)
        job_close(j);
}

static const mprov_ops mprom_ops = {
    .name = "prometheus",
    .request_stats = mprom_request_stats,
    .close = mprom_close,
};

static char *dup_or_null(const char *s, int *oom)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

static int name_is(const char *line, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(line, name, n) == 0;
}

int mprom_header_check(const char *line, operr *err)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    size_t n = 0;
    if (!line)
        return operr_set(err, -EINVAL, "no header");
    if (!strchr(line, ':'))
        return operr_set(err, -EINVAL, "\"%.100s\": want 'Name: value' (no colon)", line);
    for (; line[n] && line[n] != ':'; n++) {
        unsigned char c = (unsigned char)line[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr(tchar, c))))
            return operr_set(err, -EINVAL,
                             "\"%.100s\": want 'Name: value' (character %zu of the name is not "
                             "allowed in an HTTP header name)",
                             line, n + 1);
    }
    if (n == 0)
        return operr_set(err, -EINVAL,
                         "\"%.100s\": want 'Name: value' (no header name before the colon)", line);
    static const char *const ours[] = {"Content-Type", "Content-Length", "Host", "Expect",
                                       "Transfer-Encoding"};
    for (size_t i = 0; i < sizeof ours / sizeof *ours; i++)
        if (name_is(line, n, ours[i]))
            return operr_set(err, -EINVAL, "\"%.100s\": %s is set by optipod itself", line,
                             ours[i]);
    const char *v = line + n + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v)
        return operr_set(err, -EINVAL, "\"%.100s\": want 'Name: value' (the value is empty)", line);
    for (const char *p = v; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return operr_set(err, -EINVAL,
                             "\"%.100s\": the value holds a control character (a line break?)",
                             line);
    return 0;
}

int mprom_new(mprov **out, uv_loop_t *loop, ophttp_client *http, const mprom_opts *o, operr *err)
{
    if (!o || !o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8)))
        return operr_set(err, -EINVAL,
                         "prometheus '%s': the URL must start with http:// or "
                         "https://",
                         o && o->url ? o->url : "");
    if (o->nheaders > MPROM_MAX_HEADERS)
        return operr_set(err, -EINVAL, "prometheus '%s': %zu headers, at most %d", o->url,
                         o->nheaders, MPROM_MAX_HEADERS);
    int has_auth =
        (o->bearer_token && *o->bearer_token) || (o->bearer_token_file && *o->bearer_token_file);
    if (has_auth && o->basic_auth_file && *o->basic_auth_file)
        return operr_set(err, -EINVAL,
                         "prometheus '%s': a bearer token and basic auth exclude each other",
                         o->url);
    has_auth |= o->basic_auth_file && *o->basic_auth_file;
    for (size_t i = 0; i < o->nheaders; i++) {
        operr he;
        if (mprom_header_check(o->headers[i], &he) != 0)
            return operr_set(err, -EINVAL, "prometheus '%s': header %s", o->url, he.msg);
        if (has_auth && strncasecmp(o->headers[i], "Authorization:", 14) == 0)
            return operr_set(err, -EINVAL,
                             "prometheus '%s': an Authorization header and a bearer token or "
                             "basic auth exclude each other",
                             o->url);
    }
    mprom *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    int oom = 0;
    size_t ulen = strlen(o->url);
    while (ulen > 0 && o->url[ulen - 1] == '/')
        ulen--;
    m->base = strndup(o->url, ulen);
    m->url = malloc(ulen + sizeof "/api/v1/query");
    if (!m->base || !m->url) {
        mprom_free(m);
        return -ENOMEM;
    }
    memcpy(m->url, o->url, ulen);
    memcpy(m->url + ulen, "/api/v1/query", sizeof "/api/v1/query");
    m->token = dup_or_null(o->bearer_token, &oom);
    m->token_file = dup_or_null(o->bearer_token_file, &oom);
    m->ca_file = dup_or_null(o->ca_file, &oom);
    m->basic_file = dup_or_null(o->basic_auth_file, &oom);
    if (o->nheaders && !(m->headers = calloc(o->nheaders, sizeof *m->headers)))
        oom = 1;
    for (size_t i = 0; !oom && i < o->nheaders; i++, m->nheaders++)
        if (!(m->headers[i] = strdup(o->headers[i])))
            oom = 1;
    if (oom) {
        mprom_free(m);
        return -ENOMEM;
    }
    if (mprov_obs_init(&m->obs, o->metrics, err) != 0) {
        mprom_free(m);
        return -EINVAL;
    }
    m->prov = (mprov){.ops = &mprom_ops, .state = m};
    m->loop = loop;
    m->http = http;
    m->tls = (ophttp_tls){.ca_file = m->ca_file, .insecure_skip_verify = o->insecure_skip_verify};
    m->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    m->max_retries = o->max_retries;
    m->backoff_initial_ms = o->backoff_initial_ms ? o->backoff_initial_ms : 250;
    m->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 10000;
    m->max_body = o->max_body ? o->max_body : (size_t)16 << 20;
    m->batch_pods = o->batch_pods ? o->batch_pods : 200;
    m->step_floor_s = o->step_floor_s;
    m->rate_s = o->rate_window_s;
    m->rnd = (uint64_t)time(NULL) * 2654435761u + (uintptr_t)m;
    if (!m->rnd)
        m->rnd = 1;
    if (o->insecure_skip_verify)
        OPLOG_W("prometheus '%s': TLS verification is OFF (insecure_skip_verify)", m->base);
    *out = &m->prov;
    return 0;
}
