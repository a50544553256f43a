/*
 * ophttp against two servers on the test's own loop:
 *  - a canned HTTP/1.1 server written here (plain TCP on 127.0.0.1), whose
 *    replies are picked by path, to pin transport details byte by byte;
 *  - test/support/fakeapi (HTTPS with a generated CA) for TLS behaviour.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "http/http.h"
#include "support/fakeapi.h"
#include "test.h"
#include "support/loop.h"
#include "util/buf.h"

/* ---- the canned server ------------------------------------------------------------------ */

typedef struct conn conn;
typedef struct canned {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    size_t accepted;
    size_t requests;
    opbuf last; /* the last request: head and body as received */
    conn *conns;
    int closing;
    int pending;
} canned;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    canned *s;
    opbuf in;
    int chunks_left; /* for /stream*: chunks still to send; -1 = forever */
    int seq;
    int handles; /* open uv handles */
    conn *prev, *next;
};

typedef struct wreq {
    uv_write_t w;
    uv_buf_t buf;
    int close_after;
} wreq;

static void conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles)
        return;
    canned *s = c->s;
    opbuf_release(&c->in);
    free(c);
    s->pending--;
}

static void conn_close(conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->s->pending++;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
    wreq *r = (wreq *)w;
    conn *c = w->handle->data;
    if (r->close_after || status < 0)
        conn_close(c);
    free(r->buf.base);
    free(r);
}

static void conn_write(conn *c, const char *data, size_t len, int close_after)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    wreq *r = calloc(1, sizeof(*r));
    r->buf = uv_buf_init(malloc(len ? len : 1), (unsigned)len);
    memcpy(r->buf.base, data, len);
    r->close_after = close_after;
    if (uv_write(&r->w, (uv_stream_t *)&c->tcp, &r->buf, 1, on_written)) {
        free(r->buf.base);
        free(r);
        conn_close(c);
    }
}

static void reply(conn *c, const char *status, const char *extra, const char *ct, const char *body,
                  size_t len)
{
    opbuf b;
    opbuf_init(&b, 0);
    opbuf_printf(&b, "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%s%s%s%s\r\n", status, len,
                 ct ? "Content-Type: " : "", ct ? ct : "", ct ? "\r\n" : "", extra ? extra : "");
    opbuf_append(&b, body, len);
    conn_write(c, b.data, b.len, 0);
    opbuf_release(&b);
}

static void on_stream_tick(uv_timer_t *t)
{
    conn *c = t->data;
    char chunk[64], line[48];
    int n = snprintf(line, sizeof(line), "{\"n\":%d}\n", c->seq++);
    int m = snprintf(chunk, sizeof(chunk), "%x\r\n%s\r\n", n, line);
    conn_write(c, chunk, (size_t)m, 0);
    if (c->chunks_left > 0 && --c->chunks_left == 0) {
        uv_timer_stop(t);
        conn_write(c, "0\r\n\r\n", 5, 0);
    }
}

static void start_stream(conn *c, int chunks, const char *status)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n",
                     status);
    conn_write(c, head, (size_t)n, 0);
    c->chunks_left = chunks;
    c->seq = 0;
    if (chunks != 0)
        uv_timer_start(&c->timer, on_stream_tick, 5, 5);
}

/* Answer one request; the path picks the behaviour. */
static void route(conn *c, const char *head, size_t head_len, const char *body, size_t body_len)
{
    char method[16] = "", path[256] = "";
    sscanf(head, "%15s %255s", method, path);
    if (strcmp(path, "/ok") == 0) {
        reply(c, "200 OK", NULL, "application/json", "{\"a\":1}", 7);
    } else if (strcmp(path, "/echo") == 0) {
        opbuf b;
        opbuf_init(&b, 0);
        opbuf_append(&b, head, head_len);
        opbuf_append(&b, body, body_len);
        reply(c, "200 OK", NULL, "text/plain", b.data, b.len);
        opbuf_release(&b);
    } else if (strcmp(path, "/429") == 0) {
        const char *st = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                         "\"reason\":\"TooManyRequests\",\"code\":429}";
        reply(c, "429 Too Many Requests", "Retry-After: 3\r\n", "application/json", st, strlen(st));
    } else if (strcmp(path, "/503date") == 0) {
        char extra[128], date[64];
        time_t t = time(NULL) + 100;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        snprintf(extra, sizeof(extra), "retry-after:  %s \r\n", date);
        reply(c, "503 Service Unavailable", extra, NULL, "later", 5);
    } else if (strcmp(path, "/503junk") == 0) {
        reply(c, "503 Service Unavailable", "Retry-After: soon\r\n", NULL, "", 0);
    } else if (strcmp(path, "/500") == 0) {
        reply(c, "500 Internal Server Error", NULL, "text/plain; charset=utf-8", "boom", 4);
    } else if (strcmp(path, "/big") == 0) {
        size_t n = 100000;
        char *b = malloc(n);
        memset(b, 'x', n);
        reply(c, "200 OK", NULL, "application/octet-stream", b, n);
        free(b);
    } else if (strcmp(path, "/big404") == 0) {
        size_t n = 5000;
        char *b = malloc(n);
        memset(b, 'y', n);
        reply(c, "404 Not Found", NULL, NULL, b, n);
        free(b);
    } else if (strcmp(path, "/stream5") == 0) {
        start_stream(c, 5, "200 OK");
    } else if (strcmp(path, "/streamforever") == 0) {
        start_stream(c, -1, "200 OK");
    } else if (strcmp(path, "/stall") == 0) {
        start_stream(c, 0, "200 OK"); /* headers, then silence */
    } else if (strcmp(path, "/slow") == 0) {
        /* never answer */
    } else if (strcmp(path, "/partial") == 0) {
        const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
        conn_write(c, r, strlen(r), 1);
    } else if (strcmp(path, "/hangup") == 0) {
        conn_close(c);
    } else {
        reply(c, "404 Not Found", NULL, "text/plain", "404 page not found", 18);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    buf->base = malloc(65536);
    buf->len = 65536;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    conn *c = st->data;
    if (n < 0) {
        free(buf->base);
        conn_close(c);
        return;
    }
    opbuf_append(&c->in, buf->base, (size_t)n);
    free(buf->base);
    for (;;) {
        const char *end = c->in.data ? strstr(c->in.data, "\r\n\r\n") : NULL;
        if (!end)
            return;
        size_t head_len = (size_t)(end - c->in.data) + 4;
        size_t clen = 0;
        const char *cl = strcasestr(c->in.data, "\r\ncontent-length:");
        if (cl && cl < end)
            clen = strtoul(cl + 17, NULL, 10);
        if (c->in.len < head_len + clen)
            return;
        canned *s = c->s;
        s->requests++;
        opbuf_reset(&s->last);
        opbuf_append(&s->last, c->in.data, head_len + clen);
        route(c, c->in.data, head_len, c->in.data + head_len, clen);
        if (uv_is_closing((uv_handle_t *)&c->tcp))
            return;
        opbuf_consume(&c->in, head_len + clen);
    }
}

static void on_conn(uv_stream_t *l, int status)
{
    canned *s = l->data;
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof(*c));
    c->s = s;
    opbuf_init(&c->in, 1 << 20);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) == 0) {
        s->accepted++;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    } else {
        conn_close(c);
    }
}

static int canned_start(canned *s, uv_loop_t *loop)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    opbuf_init(&s->last, 0);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&a, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&s->listener, 64, on_conn);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (!rc)
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    if (!rc)
        s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return rc;
}

static void listener_closed(uv_handle_t *h)
{
    canned *s = h->data;
    s->pending--;
}

static void canned_stop(canned *s)
{
    s->closing = 1;
    while (s->conns)
        conn_close(s->conns);
    s->pending++;
    uv_close((uv_handle_t *)&s->listener, listener_closed);
}

static void canned_drop_all(canned *s)
{
    while (s->conns)
        conn_close(s->conns);
}

/* ---- harness ---------------------------------------------------------------------------- */

static uv_loop_t loop;
static canned srv;
static ophttp_client *cli;
static char url_base[64];

/* What a request saw, copied out of the callbacks. */
typedef struct result {
    int done;
    long status;
    int error;
    char error_msg[256];
    opbuf body;   /* buffered body from on_done */
    opbuf stream; /* bytes through on_data */
    int chunks;
    char content_type[128];
    long retry_after_s;
    int http_version;
    int cancel_after_chunks; /* on_data cancels its own request after this many */
    int abort_after_chunks;  /* on_data returns 1 after this many */
    ophttp_req *req;
} result;

static void result_init(result *r)
{
    memset(r, 0, sizeof(*r));
    opbuf_init(&r->body, 0);
    opbuf_init(&r->stream, 0);
}

static void result_release(result *r)
{
    opbuf_release(&r->body);
    opbuf_release(&r->stream);
}

static void on_done(ophttp_req *req, const ophttp_response *res, void *ud)
{
    result *r = ud;
    r->done++;
    r->status = res->status;
    r->error = res->error;
    snprintf(r->error_msg, sizeof(r->error_msg), "%s", res->error_msg);
    opbuf_append(&r->body, res->body, res->body_len);
    snprintf(r->content_type, sizeof(r->content_type), "%s", res->content_type);
    r->retry_after_s = res->retry_after_s;
    r->http_version = res->http_version;
    /* The body is NUL-terminated. */
    if (res->body[res->body_len] != '\0')
        r->done = 1000;
}

static int on_data(ophttp_req *req, const char *data, size_t len, void *ud)
{
    result *r = ud;
    r->chunks++;
    opbuf_append(&r->stream, data, len);
    if (r->cancel_after_chunks && r->chunks == r->cancel_after_chunks) {
        ophttp_cancel(req);
        ophttp_cancel(req); /* twice is harmless */
    }
    if (r->abort_after_chunks && r->chunks == r->abort_after_chunks)
        return 1;
    return 0;
}

/* Run the loop until *flag becomes non-zero or ms pass; returns the flag. */
static int run_until(const int *flag, unsigned ms)
{
    return tloop_until_flag(&loop, flag, ms);
}

/* Let the loop run for ms (to prove nothing else happens). */
static void run_for(unsigned ms)
{
    int never = 0;
    run_until(&never, ms);
}

static void setup(void)
{
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    ASSERT_EQ_INT(canned_start(&srv, &loop), 0);
    snprintf(url_base, sizeof(url_base), "http://127.0.0.1:%d", srv.port);
    ASSERT_EQ_INT(ophttp_client_new(&cli, &loop, NULL), 0);
}

static void on_client_closed(void *ud)
{
    (*(int *)ud)++;
}

/* Close client and server; the loop must then close clean. */
static void teardown(void)
{
    int closed = 0;
    if (cli)
        ophttp_client_close(cli, on_client_closed, &closed);
    cli = NULL;
    canned_stop(&srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(srv.pending, 0);
    opbuf_release(&srv.last);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static int start(const char *method, const char *path, const char *body, result *r,
                 const ophttp_req_opts *extra)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", url_base, path);
    ophttp_req_opts o = {0};
    if (extra)
        o = *extra;
    o.method = method;
    o.url = url;
    o.body = body;
    o.body_len = body ? strlen(body) : 0;
    o.on_done = on_done;
    o.ud = r;
    return ophttp_request(cli, &o, &r->req);
}

/* ---- tests: canned server --------------------------------------------------------------- */

static void test_get_buffered_with_keepalive(void)
{
    setup();
    for (int i = 0; i < 3; i++) {
        result r;
        result_init(&r);
        ASSERT_EQ_INT(start("GET", "/ok", NULL, &r, NULL), 0);
        ASSERT_EQ_INT(ophttp_inflight(cli), 1);
        ASSERT(run_until(&r.done, 5000));
        ASSERT_EQ_INT(r.done, 1);
        ASSERT_EQ_INT(r.status, 200);
        ASSERT_EQ_INT(r.error, OPHTTP_OK);
        ASSERT_STR_EQ(r.error_msg, "");
        ASSERT_STR_EQ(r.body.data, "{\"a\":1}");
        ASSERT_STR_EQ(r.content_type, "application/json");
        ASSERT_EQ_INT(r.retry_after_s, -1);
        ASSERT_EQ_INT(r.http_version, 1); /* plain http: no ALPN, HTTP/1.1 */
        ASSERT_EQ_INT(ophttp_inflight(cli), 0);
        result_release(&r);
    }
    /* One TCP connection carried all three. */
    ASSERT_EQ_INT(srv.accepted, 1);
    ASSERT_EQ_INT(ophttp_connections(cli), 1);
    ASSERT_STR_CONTAINS(srv.last.data, "User-Agent: optipod/");
    teardown();
}

static void test_request_line_headers_and_body(void)
{
    setup();
    const char *hdrs[] = {"Content-Type: application/merge-patch+json", "X-Test: 1", NULL};
    ophttp_req_opts o = {.headers = hdrs};
    result r;
    result_init(&r);
    ASSERT_EQ_INT(start("PATCH", "/echo", "{\"spec\":{\"replicas\":2}}", &r, &o), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.status, 200);
    ASSERT(strncmp(r.body.data, "PATCH /echo HTTP/1.1\r\n", 22) == 0);
    ASSERT_STR_CONTAINS(r.body.data, "\r\nContent-Type: application/merge-patch+json\r\n");
    ASSERT_STR_CONTAINS(r.body.data, "\r\nX-Test: 1\r\n");
    ASSERT_STR_CONTAINS(r.body.data, "\r\nContent-Length: 23\r\n");
    ASSERT(strstr(r.body.data, "Expect:") == NULL);
    ASSERT(strcmp(r.body.data + r.body.len - 23, "{\"spec\":{\"replicas\":2}}") == 0);
    result_release(&r);

    /* POST with a body that has a NUL in it, then DELETE with none. */
    result_init(&r);
    char url[128];
    snprintf(url, sizeof(url), "%s/echo", url_base);
    ophttp_req_opts p = {
        .method = "POST", .url = url, .body = "a\0b", .body_len = 3, .on_done = on_done, .ud = &r};
    ASSERT_EQ_INT(ophttp_request(cli, &p, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT(strncmp(r.body.data, "POST /echo HTTP/1.1\r\n", 21) == 0);
    ASSERT_EQ_INT(memcmp(r.body.data + r.body.len - 3, "a\0b", 3), 0);
    result_release(&r);

    result_init(&r);
    ASSERT_EQ_INT(start("DELETE", "/echo", NULL, &r, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT(strncmp(r.body.data, "DELETE /echo HTTP/1.1\r\n", 23) == 0);
    ASSERT(strstr(r.body.data, "Content-Length") == NULL);
    result_release(&r);

    /* User-Agent chosen by the caller of ophttp_client_new. */
    ASSERT_EQ_INT(srv.accepted, 1);
    teardown();
}

static void test_bad_arguments_never_call_back(void)
{
    setup();
    result r;
    result_init(&r);
    ophttp_req_opts o = {.method = "GET", .url = NULL, .on_done = on_done, .ud = &r};
    ASSERT_EQ_INT(ophttp_request(cli, &o, NULL), -EINVAL);
    o.url = "http://127.0.0.1:1/";
    o.on_done = NULL;
    ASSERT_EQ_INT(ophttp_request(cli, &o, NULL), -EINVAL);
    o.on_done = on_done;
    o.method = "";
    ASSERT_EQ_INT(ophttp_request(cli, &o, NULL), -EINVAL);
    ASSERT_EQ_INT(ophttp_inflight(cli), 0);
    run_for(20);
    ASSERT_EQ_INT(r.done, 0);
    result_release(&r);
    teardown();
}

static void test_retry_after_forms(void)
{
    setup();
    result r;
    result_init(&r);
    ASSERT_EQ_INT(start("GET", "/429", NULL, &r, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.status, 429);
    ASSERT_EQ_INT(r.error, OPHTTP_OK);
    ASSERT_EQ_INT(r.retry_after_s, 3);
    ASSERT_STR_CONTAINS(r.body.data, "\"reason\":\"TooManyRequests\"");
    result_release(&r);

    result_init(&r);
    ASSERT_EQ_INT(start("GET", "/503date", NULL, &r, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.status, 503);
    ASSERT_CMP_INT(r.retry_after_s, >=, 95);
    ASSERT_CMP_INT(r.retry_after_s, <=, 100);
    ASSERT_STR_EQ(r.content_type, "");
    ASSERT_STR_EQ(r.body.data, "later");
    result_release(&r);

    result_init(&r);
    ASSERT_EQ_INT(start("GET", "/503junk", NULL, &r, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.status, 503);
    ASSERT_EQ_INT(r.retry_after_s, -1);
    ASSERT_STR_EQ(r.body.data, "");
    result_release(&r);
    teardown();
}

static void test_non_2xx_is_buffered_even_when_streaming(void)
{
    setup();
    result r;
    result_init(&r);
    ophttp_req_opts o = {.on_data = on_data};
    ASSERT_EQ_INT(start("GET", "/500", NULL, &r, &o), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.status, 500);
    ASSERT_EQ_INT(r.error, OPHTTP_OK);
    ASSERT_EQ_INT(r.chunks, 0);
    ASSERT_STR_EQ(r.body.data, "boom");
    ASSERT_STR_EQ(r.content_type, "text/plain; charset=utf-8");
    result_release(&r);
    teardown();
}

static void test_body_cap(void)
{
    setup();
    result r;
    result_init(&r);
    ophttp_req_opts o = {.max_body = 1000};
    ASSERT_EQ_INT(start("GET", "/big", NULL, &r, &o), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.error, OPHTTP_ETOOBIG);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_STR_CONTAINS(r.error_msg, "1000");
    ASSERT_CMP_INT(r.body.len, <=, 1000);
    result_release(&r);

    /* An error body is capped the same way. */
    result_init(&r);
    ASSERT_EQ_INT(start("GET", "/big404", NULL, &r, &o), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.error, OPHTTP_ETOOBIG);
    ASSERT_EQ_INT(r.status, 404);
    result_release(&r);

    /* A streamed 2xx body is not capped: the consumer decides. */
    result_init(&r);
    o.on_data = on_data;
    ASSERT_EQ_INT(start("GET", "/big", NULL, &r, &o), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.error, OPHTTP_OK);
    ASSERT_EQ_INT(r.stream.len, 100000);
    ASSERT_EQ_INT(r.body.len, 0);
    result_release(&r);

    /* Exactly at the cap is fine. */
    result_init(&r);
    ophttp_req_opts exact = {.max_body = 100000};
    ASSERT_EQ_INT(start("GET", "/big", NULL, &r, &exact), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.error, OPHTTP_OK);
    ASSERT_EQ_INT(r.body.len, 100000);
    result_release(&r);
    teardown();
}

static void test_streaming_chunks(void)
{
    setup();
    result r;
    result_init(&r);
    ophttp_req_opts o = {.on_data = on_data};
    ASSERT_EQ_INT(start("GET", "/stream5", NULL, &r, &o), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_INT(r.error, OPHTTP_OK);
    ASSERT_STR_EQ(r.stream.data, "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n");
    ASSERT_CMP_INT(r.chunks, >=, 2); /* delivered as it arrived, not at the end */
    ASSERT_EQ_INT(r.body.len, 0);
    ASSERT_STR_EQ(r.content_type, "application/json");
    result_release(&r);
    teardown();
}

static void test_abort_from_on_data(void)
{
    setup();
    result r;
    result_init(&r);
    r.abort_after_chunks = 2;
    ophttp_req_opts o = {.on_data = on_data};
    ASSERT_EQ_INT(start("GET", "/streamforever", NULL, &r, &o), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.error, OPHTTP_EABORTED);
    ASSERT_EQ_INT(r.chunks, 2);
    ASSERT_EQ_INT(ophttp_inflight(cli), 0);
    result_release(&r);
    teardown();
}

static void test_cancel_inside_on_data(void)
{
    setup();
    result r;
    result_init(&r);
    r.cancel_after_chunks = 1;
    ophttp_req_opts o = {.on_data = on_data};
    ASSERT_EQ_INT(start("GET", "/streamforever", NULL, &r, &o), 0);
    ASSERT(run_until(&r.chunks, 5000));
    ASSERT_EQ_INT(ophttp_inflight(cli), 0);
    run_for(60); /* the server keeps sending: nothing may reach us */
    ASSERT_EQ_INT(r.chunks, 1);
    ASSERT_EQ_INT(r.done, 0);
    result_release(&r);

    /* The client is still usable. */
    result_init(&r);
    ASSERT_EQ_INT(start("GET", "/ok", NULL, &r, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.status, 200);
    result_release(&r);
    teardown();
}

/* on_data of one request cancels another and starts a third (inside curl). */
typedef struct cross {
    result a, b, c;
    int started;
} cross;

static int cross_on_data(ophttp_req *req, const char *data, size_t len, void *ud)
{
    cross *x = ud;
    x->a.chunks++;
    if (x->a.chunks == 1) {
        ophttp_cancel(x->b.req);
        char url[128];
        snprintf(url, sizeof(url), "%s/ok", url_base);
        ophttp_req_opts o = {.method = "GET", .url = url, .on_done = on_done, .ud = &x->c};
        x->started = ophttp_request(cli, &o, NULL) == 0;
        return 1;
    }
    return 0;
}

static void cross_on_done(ophttp_req *req, const ophttp_response *res, void *ud)
{
    cross *x = ud;
    on_done(req, res, &x->a);
}

static void test_cancel_other_and_start_from_callback(void)
{
    setup();
    cross x;
    result_init(&x.a);
    result_init(&x.b);
    result_init(&x.c);
    x.started = 0;
    ASSERT_EQ_INT(start("GET", "/slow", NULL, &x.b, NULL), 0);
    char url[128];
    snprintf(url, sizeof(url), "%s/streamforever", url_base);
    ophttp_req_opts o = {
        .method = "GET", .url = url, .on_data = cross_on_data, .on_done = cross_on_done, .ud = &x};
    ASSERT_EQ_INT(ophttp_request(cli, &o, NULL), 0);
    ASSERT_EQ_INT(ophttp_inflight(cli), 2);
    ASSERT(run_until(&x.c.done, 5000));
    ASSERT_EQ_INT(x.started, 1);
    ASSERT_EQ_INT(x.c.status, 200);
    ASSERT(run_until(&x.a.done, 5000));
    ASSERT_EQ_INT(x.a.error, OPHTTP_EABORTED);
    run_for(20);
    ASSERT_EQ_INT(x.b.done, 0);
    ASSERT_EQ_INT(ophttp_inflight(cli), 0);
    result_release(&x.a);
    result_release(&x.b);
    result_release(&x.c);
    teardown();
}

static void test_timeouts(void)
{
    setup();
    result r;
    result_init(&r);
    ophttp_req_opts o = {.timeout_ms = 150};
    uint64_t t0 = uv_hrtime();
    ASSERT_EQ_INT(start("GET", "/slow", NULL, &r, &o), 0);
    ASSERT(run_until(&r.done, 5000));
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ASSERT_EQ_INT(r.error, OPHTTP_ETIMEOUT);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT_CMP_INT(ms, >=, 140);
    ASSERT_CMP_INT(ms, <, 2000);
    ASSERT(r.error_msg[0] != '\0');
    result_release(&r);

    /* Low-speed limit (curl averages the speed over a few seconds, so the
     * stream sends headers only, then silence). No overall timeout is set. */
    result_init(&r);
    ophttp_req_opts ls = {.low_speed_time_s = 1, .on_data = on_data};
    t0 = uv_hrtime();
    ASSERT_EQ_INT(start("GET", "/stall", NULL, &r, &ls), 0);
    ASSERT(run_until(&r.done, 8000));
    ms = (uv_hrtime() - t0) / 1000000;
    ASSERT_EQ_INT(r.error, OPHTTP_ETIMEOUT);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_INT(r.chunks, 0);
    ASSERT_CMP_INT(ms, >=, 900);
    result_release(&r);
    teardown();
}

static void test_connection_errors(void)
{
    setup();
    /* A port nobody listens on: bind one, learn it, close it. */
    uv_tcp_t t;
    struct sockaddr_in a;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&loop, &t);
    ASSERT_EQ_INT(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
    uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len);
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);

    result r;
    result_init(&r);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
    ophttp_req_opts o = {.method = "GET", .url = url, .on_done = on_done, .ud = &r};
    ASSERT_EQ_INT(ophttp_request(cli, &o, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.error, OPHTTP_ECONNECT);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT(r.error_msg[0] != '\0');
    ASSERT_STR_EQ(r.body.data, "");
    result_release(&r);

    /* Body shorter than its Content-Length, then the connection closes. */
    result_init(&r);
    ASSERT_EQ_INT(start("GET", "/partial", NULL, &r, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.error, OPHTTP_EIO);
    result_release(&r);

    /* Closed without any response. */
    result_init(&r);
    ASSERT_EQ_INT(start("GET", "/hangup", NULL, &r, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.error, OPHTTP_EIO);
    ASSERT_EQ_INT(r.status, 0);
    result_release(&r);
    teardown();
}

static void test_server_drops_kept_alive_connection(void)
{
    setup();
    result r;
    result_init(&r);
    ASSERT_EQ_INT(start("GET", "/ok", NULL, &r, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    result_release(&r);
    canned_drop_all(&srv);
    run_for(20);
    /* curl notices the dead connection and opens a new one. */
    result_init(&r);
    ASSERT_EQ_INT(start("GET", "/ok", NULL, &r, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_EQ_INT(srv.accepted, 2);
    result_release(&r);
    teardown();
}

static void test_many_parallel(void)
{
    setup();
    enum { N = 40 };
    result r[N];
    int all = 0;
    for (int i = 0; i < N; i++) {
        result_init(&r[i]);
        ASSERT_EQ_INT(start("GET", i % 2 ? "/ok" : "/stream5", NULL, &r[i], NULL), 0);
    }
    ASSERT_EQ_INT(ophttp_inflight(cli), N);
    uint64_t deadline = uv_hrtime() + 10000000000ull;
    while (!all && uv_hrtime() < deadline) {
        uv_run(&loop, UV_RUN_ONCE);
        all = 1;
        for (int i = 0; i < N; i++)
            all &= r[i].done == 1;
    }
    ASSERT(all);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ_INT(r[i].status, 200);
        ASSERT_EQ_INT(r[i].body.len, i % 2 ? 7 : 40);
        result_release(&r[i]);
    }
    teardown();
}

/* Close with requests in flight: no callbacks, every handle closed. */
static void test_close_with_requests_in_flight(void)
{
    setup();
    result a, b, c;
    result_init(&a);
    result_init(&b);
    result_init(&c);
    ophttp_req_opts o = {.on_data = on_data};
    ASSERT_EQ_INT(start("GET", "/slow", NULL, &a, NULL), 0);
    ASSERT_EQ_INT(start("GET", "/streamforever", NULL, &b, &o), 0);
    ASSERT(run_until(&b.chunks, 5000));
    ASSERT_EQ_INT(start("GET", "/ok", NULL, &c, NULL), 0); /* not even connected */
    int closed = 0;
    ophttp_client_close(cli, on_client_closed, &closed);
    cli = NULL;
    int chunks = b.chunks;
    run_until(&closed, 5000);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(a.done + b.done + c.done, 0);
    ASSERT_EQ_INT(b.chunks, chunks);
    result_release(&a);
    result_release(&b);
    result_release(&c);
    canned_stop(&srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    opbuf_release(&srv.last);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

/* Closing from inside callbacks: on_done of one, on_data of another. */
typedef struct closer {
    result r, other;
    int closed;
} closer;

static void closer_on_done(ophttp_req *req, const ophttp_response *res, void *ud)
{
    closer *x = ud;
    on_done(req, res, &x->r);
    ophttp_cancel(req); /* no-op during on_done */
    ophttp_client_close(cli, on_client_closed, &x->closed);
    ophttp_client_close(cli, on_client_closed, &x->closed); /* twice is harmless */
}

static int closer_on_data(ophttp_req *req, const char *data, size_t len, void *ud)
{
    closer *x = ud;
    x->r.chunks++;
    ophttp_client_close(cli, on_client_closed, &x->closed);
    return 0;
}

static void test_close_inside_callbacks(void)
{
    for (int variant = 0; variant < 2; variant++) {
        setup();
        closer x;
        result_init(&x.r);
        result_init(&x.other);
        x.closed = 0;
        ASSERT_EQ_INT(start("GET", "/slow", NULL, &x.other, NULL), 0);
        char url[128];
        snprintf(url, sizeof(url), "%s%s", url_base, variant ? "/streamforever" : "/ok");
        ophttp_req_opts o = {.method = "GET",
                             .url = url,
                             .on_data = variant ? closer_on_data : NULL,
                             .on_done = closer_on_done,
                             .ud = &x};
        ASSERT_EQ_INT(ophttp_request(cli, &o, NULL), 0);
        ASSERT(run_until(&x.closed, 5000));
        cli = NULL;
        ASSERT_EQ_INT(x.closed, 1);
        ASSERT_EQ_INT(x.r.done, variant ? 0 : 1);
        ASSERT_EQ_INT(x.r.chunks, variant ? 1 : 0);
        ASSERT_EQ_INT(x.other.done, 0);
        result_release(&x.r);
        result_release(&x.other);
        canned_stop(&srv);
        uv_run(&loop, UV_RUN_DEFAULT);
        opbuf_release(&srv.last);
        ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    }
}

/* A client with nothing ever started closes clean too. */
static void test_close_idle_client(void)
{
    uv_loop_t l;
    ASSERT_EQ_INT(uv_loop_init(&l), 0);
    ophttp_client *c;
    ASSERT_EQ_INT(ophttp_client_new(&c, &l, "custom/1"), 0);
    int closed = 0;
    ophttp_client_close(c, on_client_closed, &closed);
    ASSERT_EQ_INT(closed, 0); /* from the loop, not synchronously */
    uv_run(&l, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(uv_loop_close(&l), 0);
}

static void test_custom_user_agent(void)
{
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    ASSERT_EQ_INT(canned_start(&srv, &loop), 0);
    snprintf(url_base, sizeof(url_base), "http://127.0.0.1:%d", srv.port);
    ASSERT_EQ_INT(ophttp_client_new(&cli, &loop, "custom-agent/9"), 0);
    result r;
    result_init(&r);
    ASSERT_EQ_INT(start("GET", "/echo", NULL, &r, NULL), 0);
    ASSERT(run_until(&r.done, 5000));
    ASSERT_STR_CONTAINS(r.body.data, "\r\nUser-Agent: custom-agent/9\r\n");
    result_release(&r);
    teardown();
}

/* ---- tests: TLS against fakeapi --------------------------------------------------------- */

static fakeapi *fa;

static void tls_setup(void)
{
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    ASSERT_EQ_INT(fakeapi_start(&fa, &loop, NULL), 0);
    ASSERT_EQ_INT(fakeapi_put_json(fa, "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                                       "\"metadata\":{\"name\":\"prod\"}}"),
                  0);
    snprintf(url_base, sizeof(url_base), "%s", fakeapi_url(fa));
    ASSERT_EQ_INT(ophttp_client_new(&cli, &loop, NULL), 0);
}

static void tls_teardown(void)
{
    int closed = 0, fclosed = 0;
    if (cli)
        ophttp_client_close(cli, on_client_closed, &closed);
    cli = NULL;
    fakeapi_stop(fa, on_client_closed, &fclosed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(fclosed, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

static int tls_get(const char *path, const ophttp_tls *tls, result *r, size_t max_body)
{
    ophttp_req_opts o = {.tls = tls, .max_body = max_body};
    result_init(r);
    int rc = start("GET", path, NULL, r, &o);
    if (rc)
        return rc;
    return run_until(&r->done, 5000) ? 0 : -ETIMEDOUT;
}

static void test_tls_trusted_ca_and_reuse(void)
{
    tls_setup();
    const char *ca = fakeapi_ca_pem(fa);
    ophttp_tls t = {.ca_pem = ca, .ca_pem_len = strlen(ca)};
    int version = 0;
    for (int i = 0; i < 3; i++) {
        result r;
        ASSERT_EQ_INT(tls_get("/api/v1/namespaces/prod", &t, &r, 0), 0);
        ASSERT_EQ_INT(r.error, OPHTTP_OK);
        ASSERT_EQ_INT(r.status, 200);
        ASSERT_STR_CONTAINS(r.body.data, "\"name\":\"prod\"");
        ASSERT_STR_CONTAINS(r.content_type, "application/json");
        version = r.http_version;
        result_release(&r);
    }
    /* We offer h2 over ALPN; fakeapi (like ophttpd) selects http/1.1 only, so
     * this is HTTP/1.1 kept alive: one connection and one handshake for all. */
    ASSERT_EQ_INT(version, 1);
    ASSERT_EQ_INT(fakeapi_connections_accepted(fa), 1);
    ASSERT_EQ_INT(fakeapi_handshakes(fa), 1);
    ASSERT_EQ_INT(ophttp_connections(cli), 1);

    /* The same CA from a file. */
    char path[] = "/tmp/test_http_ca.XXXXXX";
    int fd = mkstemp(path);
    ASSERT_CMP_INT(fd, >=, 0);
    ASSERT_EQ_INT(write(fd, ca, strlen(ca)), (long long)strlen(ca));
    close(fd);
    ophttp_tls tf = {.ca_file = path};
    result r;
    int rc = tls_get("/api/v1/namespaces", &tf, &r, 0);
    unlink(path);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(r.error, OPHTTP_OK);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_STR_CONTAINS(r.body.data, "\"items\":[");
    result_release(&r);
    tls_teardown();
}

static void test_tls_verification_failures(void)
{
    tls_setup();
    const char *ca = fakeapi_ca_pem(fa);
    ophttp_tls good = {.ca_pem = ca, .ca_pem_len = strlen(ca)};
    result r;

    /* The system store does not know the fake CA. */
    ASSERT_EQ_INT(tls_get("/api/v1/namespaces", NULL, &r, 0), 0);
    ASSERT_EQ_INT(r.error, OPHTTP_ETLS);
    ASSERT_EQ_INT(r.status, 0);
    ASSERT(r.error_msg[0] != '\0');
    result_release(&r);

    /* A serving cert from another CA fails even with the right CA... */
    ASSERT_EQ_INT(fakeapi_set_tls_fault(fa, FAKEAPI_TLS_UNTRUSTED), 0);
    ASSERT_EQ_INT(tls_get("/api/v1/namespaces", &good, &r, 0), 0);
    ASSERT_EQ_INT(r.error, OPHTTP_ETLS);
    result_release(&r);

    /* ...unless verification is off. */
    ophttp_tls insecure = {.insecure_skip_verify = 1};
    ASSERT_EQ_INT(tls_get("/api/v1/namespaces", &insecure, &r, 0), 0);
    ASSERT_EQ_INT(r.error, OPHTTP_OK);
    ASSERT_EQ_INT(r.status, 200);
    result_release(&r);

    /* A server that hangs up mid-handshake. */
    ASSERT_EQ_INT(fakeapi_set_tls_fault(fa, FAKEAPI_TLS_HANGUP), 0);
    fakeapi_drop_connections(fa);
    ASSERT_EQ_INT(tls_get("/api/v1/namespaces", &good, &r, 0), 0);
    ASSERT(r.error == OPHTTP_ETLS || r.error == OPHTTP_EIO);
    ASSERT_EQ_INT(r.status, 0);
    result_release(&r);

    /* Back to the right cert: the right CA works. */
    ASSERT_EQ_INT(fakeapi_set_tls_fault(fa, FAKEAPI_TLS_OK), 0);
    fakeapi_drop_connections(fa);
    ASSERT_EQ_INT(tls_get("/api/v1/namespaces", &good, &r, 0), 0);
    ASSERT_EQ_INT(r.error, OPHTTP_OK);
    ASSERT_EQ_INT(r.status, 200);
    result_release(&r);
    tls_teardown();
}

static void test_tls_oversize_and_status_faults(void)
{
    tls_setup();
    const char *ca = fakeapi_ca_pem(fa);
    ophttp_tls good = {.ca_pem = ca, .ca_pem_len = strlen(ca)};
    fakeapi_fault big = {
        .method = "GET", .watch = 0, .count = 1, .kind = FAKEAPI_FAULT_OVERSIZED, .size = 300000};
    ASSERT_EQ_INT(fakeapi_add_fault(fa, &big), 0);
    result r;
    ASSERT_EQ_INT(tls_get("/api/v1/namespaces/prod", &good, &r, 100000), 0);
    ASSERT_EQ_INT(r.error, OPHTTP_ETOOBIG);
    ASSERT_EQ_INT(r.status, 200);
    result_release(&r);

    fakeapi_fault busy = {.method = "GET",
                          .watch = 0,
                          .count = 1,
                          .kind = FAKEAPI_FAULT_STATUS,
                          .status = 429,
                          .retry_after_s = 4};
    ASSERT_EQ_INT(fakeapi_add_fault(fa, &busy), 0);
    ASSERT_EQ_INT(tls_get("/api/v1/namespaces/prod", &good, &r, 0), 0);
    ASSERT_EQ_INT(r.error, OPHTTP_OK);
    ASSERT_EQ_INT(r.status, 429);
    ASSERT_EQ_INT(r.retry_after_s, 4);
    ASSERT_STR_CONTAINS(r.body.data, "\"code\":429");
    result_release(&r);

    /* No response at all. On a kept-alive connection curl retries once on a
     * fresh one (the server may have timed the idle connection out), so the
     * fault applies to every request until cleared. */
    fakeapi_fault hang = {.method = "GET", .watch = 0, .kind = FAKEAPI_FAULT_HANGUP};
    ASSERT_EQ_INT(fakeapi_add_fault(fa, &hang), 0);
    ASSERT_EQ_INT(tls_get("/api/v1/namespaces/prod", &good, &r, 0), 0);
    ASSERT_EQ_INT(r.error, OPHTTP_EIO);
    ASSERT_EQ_INT(r.status, 0);
    result_release(&r);
    fakeapi_clear_faults(fa);
    ASSERT_EQ_INT(tls_get("/api/v1/namespaces/prod", &good, &r, 0), 0);
    ASSERT_EQ_INT(r.status, 200);
    result_release(&r);
    tls_teardown();
}

/* Over TLS we wait for ALPN before opening more connections (PIPEWAIT); once the
 * server says HTTP/1.1, parallel requests get their own connections and a slow
 * one does not hold the others back. */
static void test_tls_parallel_on_http1(void)
{
    tls_setup();
    const char *ca = fakeapi_ca_pem(fa);
    ophttp_tls good = {.ca_pem = ca, .ca_pem_len = strlen(ca)};
    fakeapi_fault slow = {
        .path = "/namespaces/prod", .watch = 0, .kind = FAKEAPI_FAULT_DELAY, .delay_ms = 700};
    ASSERT_EQ_INT(fakeapi_add_fault(fa, &slow), 0);
    ophttp_req_opts o = {.tls = &good};
    result a, b, c;
    result_init(&a);
    result_init(&b);
    result_init(&c);
    ASSERT_EQ_INT(start("GET", "/api/v1/namespaces/prod", NULL, &a, &o), 0);
    ASSERT_EQ_INT(start("GET", "/api/v1/namespaces", NULL, &b, &o), 0);
    ASSERT_EQ_INT(start("GET", "/api/v1/namespaces?limit=1", NULL, &c, &o), 0);
    uint64_t deadline = uv_hrtime() + 5000000000ull;
    while (!(b.done && c.done) && uv_hrtime() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ_INT(b.status, 200);
    ASSERT_EQ_INT(c.status, 200);
    ASSERT_EQ_INT(a.done, 0); /* still delayed */
    ASSERT(run_until(&a.done, 5000));
    ASSERT_EQ_INT(a.status, 200);
    ASSERT_EQ_INT(fakeapi_connections_accepted(fa), 3);
    result_release(&a);
    result_release(&b);
    result_release(&c);
    tls_teardown();
}

/* Client certificate material reaches OpenSSL: a matching pair (in memory or
 * from files) connects, a broken one fails as a TLS error. fakeapi does not
 * ask for client certificates, so this checks loading, not the server side. */
static void test_tls_client_cert_material(void)
{
    tls_setup();
    const char *ca = fakeapi_ca_pem(fa);
    ophttpd_cert cc;
    const char *sans[] = {"optipod", NULL};
    ASSERT_EQ_INT(ophttpd_cert_generate(&cc, "client", sans, 1), 0);
    ophttp_tls t = {.ca_pem = ca,
                    .ca_pem_len = strlen(ca),
                    .cert_pem = cc.cert_pem,
                    .cert_pem_len = strlen(cc.cert_pem),
                    .key_pem = cc.key_pem,
                    .key_pem_len = strlen(cc.key_pem)};
    result r;
    ASSERT_EQ_INT(tls_get("/api/v1/namespaces", &t, &r, 0), 0);
    ASSERT_EQ_INT(r.error, OPHTTP_OK);
    ASSERT_EQ_INT(r.status, 200);
    result_release(&r);

    char cpath[] = "/tmp/test_http_crt.XXXXXX", kpath[] = "/tmp/test_http_key.XXXXXX";
    int cfd = mkstemp(cpath), kfd = mkstemp(kpath);
    ASSERT(cfd >= 0 && kfd >= 0);
    ASSERT_EQ_INT(write(cfd, cc.cert_pem, strlen(cc.cert_pem)), (long long)strlen(cc.cert_pem));
    ASSERT_EQ_INT(write(kfd, cc.key_pem, strlen(cc.key_pem)), (long long)strlen(cc.key_pem));
    close(cfd);
    close(kfd);
    ophttp_tls tf = {.ca_pem = ca, .ca_pem_len = strlen(ca), .cert_file = cpath, .key_file = kpath};
    int rc = tls_get("/api/v1/namespaces", &tf, &r, 0);
    unlink(cpath);
    unlink(kpath);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(r.error, OPHTTP_OK);
    ASSERT_EQ_INT(r.status, 200);
    result_release(&r);

    /* A certificate whose key is not the one given. (A new connection: curl
     * reuses a connection whose certificate matches without comparing keys.) */
    fakeapi_drop_connections(fa);
    ophttp_tls bad = t;
    bad.cert_pem = cc.ca_pem;
    bad.cert_pem_len = strlen(cc.ca_pem);
    ASSERT_EQ_INT(tls_get("/api/v1/namespaces", &bad, &r, 0), 0);
    ASSERT_EQ_INT(r.error, OPHTTP_ETLS);
    result_release(&r);
    ophttpd_cert_release(&cc);
    tls_teardown();
}

int main(void)
{
    TEST_RUN(test_get_buffered_with_keepalive);
    TEST_RUN(test_request_line_headers_and_body);
    TEST_RUN(test_bad_arguments_never_call_back);
    TEST_RUN(test_retry_after_forms);
    TEST_RUN(test_non_2xx_is_buffered_even_when_streaming);
    TEST_RUN(test_body_cap);
    TEST_RUN(test_streaming_chunks);
    TEST_RUN(test_abort_from_on_data);
    TEST_RUN(test_cancel_inside_on_data);
    TEST_RUN(test_cancel_other_and_start_from_callback);
    TEST_RUN(test_timeouts);
    TEST_RUN(test_connection_errors);
    TEST_RUN(test_server_drops_kept_alive_connection);
    TEST_RUN(test_many_parallel);
    TEST_RUN(test_close_with_requests_in_flight);
    TEST_RUN(test_close_inside_callbacks);
    TEST_RUN(test_close_idle_client);
    TEST_RUN(test_custom_user_agent);
    TEST_RUN(test_tls_trusted_ca_and_reuse);
    TEST_RUN(test_tls_verification_failures);
    TEST_RUN(test_tls_oversize_and_status_faults);
    TEST_RUN(test_tls_parallel_on_http1);
    TEST_RUN(test_tls_client_cert_material);
    return test_summary();
}
