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
#include <time.h>

#include "metrics/promql.h"
#include "util/backoff.h"
#include "util/buf.h"
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
    char *token, *token_file, *ca_file;
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
    size_t nqueries, qi, per_batch;
    unsigned attempt, issued;
    opbackoff bo;
    uv_timer_t timer;
    ophttp_req *req;
    uint64_t sent_ns; /* of the query in flight */
    opbuf form;
    mprov_cb cb;
    void *ud;
    int finished;
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
    opbuf_init(&hdr, MPROM_MAX_TOKEN + 64);
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
    size_t npods;
    const char *const *pods = promql_agg_pods(j->agg, &npods);
    size_t first = j->qi * j->per_batch;
    size_t count = j->per_batch ? npods - first : 0;
    if (j->per_batch && count > j->per_batch)
        count = j->per_batch;
    opbuf_reset(&j->form);
    rc = promql_build(&q, j->ns, j->per_batch ? pods + first : NULL, count, &j->qo);
    if (rc == 0)
        rc = opbuf_puts(&j->form, "query=");
    if (rc == 0)
        rc = promql_append_form(&j->form, q.data, q.len);
    if (rc == 0)
        rc = opbuf_printf(&j->form, "&time=%" PRId64, j->eval_time_s);
    if (rc != 0) {
        fail = "cannot build the query (too many or too long pod names?)";
        goto out;
    }
    const char *headers[4] = {"Content-Type: application/x-www-form-urlencoded",
                              "Accept: application/json", NULL, NULL};
    if (auth_token && *auth_token) {
        rc = opbuf_printf(&hdr, "Authorization: Bearer %s", auth_token);
        if (rc != 0) {
            fail = "the bearer token is too long";
            goto out;
        }
        headers[2] = opbuf_str(&hdr);
    }
    ophttp_req_opts o = {
        .method = "POST",
        .url = m->url,
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
        if (promql_parse(res->body, res->body_len, ignore_sample, NULL, &pe) == -EREMOTEIO) {
            snprintf(detail, sizeof detail, "HTTP %ld: %s", res->status, pe.msg);
        } else {
            excerpt(res->body, res->body_len, ex, sizeof ex);
            snprintf(detail, sizeof detail, "HTTP %ld: %s", res->status, ex);
        }
        if (res->status >= 500 || res->status == 429)
            retry_or_fail(j, -EREMOTEIO, detail);
        else
            job_fail(j, -EREMOTEIO, "", detail);
        return;
    }
    operr pe;
    operr_clear(&pe);
    promql_agg_ctx ctx = {.agg = j->agg, .err = &pe};
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

static int mprom_request_stats(void *state, const mprov_request *rq, mprov_cb cb, void *ud)
{
    mprom *m = state;
    if (m->closing || !cb || !rq || !rq->ns || !*rq->ns || !(rq->percentile > 0) ||
        !(rq->percentile < 1) || rq->window_s == 0)
        return -EINVAL;
    mjob *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    int rc = -ENOMEM;
    j->m = m;
    j->cb = cb;
    j->ud = ud;
    opbuf_init(&j->form, MPROM_MAX_QUERY * 3 + 64);
    j->ns = strdup(rq->ns);
    if (!j->ns)
        goto fail;
    rc = promql_agg_new(&j->agg, rq);
    if (rc != 0)
        goto fail;
    j->qo = (promql_opts){
        .percentile = rq->percentile,
        .window_s = rq->window_s,
        .step_s = promql_step_s(rq->window_s, m->step_floor_s),
        .rate_s = m->rate_s,
    };
    j->eval_time_s = rq->eval_time_s ? rq->eval_time_s : (int64_t)time(NULL);
    size_t npods;
    promql_agg_pods(j->agg, &npods);
    j->nqueries = promql_plan(npods, m->batch_pods, &j->per_batch);
    opbackoff_init(&j->bo, m->backoff_initial_ms, m->backoff_max_ms, 0, 0.2);
    rc = uv_timer_init(m->loop, &j->timer);
    if (rc != 0)
        goto fail;
    j->timer.data = j;
    j->next = m->jobs;
    m->jobs = j;
    m->njobs++;
    /* Always answer from the loop, even when there is nothing to ask. */
    if (j->nqueries == 0) {
        uv_timer_start(&j->timer, finish_empty, 0, 0);
    } else {
        uv_timer_start(&j->timer, start_query, 0, 0);
    }
    return 0;
fail:
    free(j->ns);
    promql_agg_free(j->agg);
    opbuf_release(&j->form);
    free(j);
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

int mprom_new(mprov **out, uv_loop_t *loop, ophttp_client *http, const mprom_opts *o, operr *err)
{
    if (!o || !o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8)))
        return operr_set(err, -EINVAL,
                         "prometheus '%s': the URL must start with http:// or "
                         "https://",
                         o && o->url ? o->url : "");
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
