/*
 * ophttpd: the pure request parser, then the server over loopback (plain and
 * TLS) driven by a raw client (test/support/fakeapi_client), never lib/http.
 * Every server test ends with uv_loop_close() == 0: no handle is left behind.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "httpd/fault.h"
#include "httpd/httpd.h"
#include "support/fakeapi_client.h"
#include "test.h"

/* ---- parser -------------------------------------------------------------------------- */

static ophttpd_parsed P;

static int parse(const char *s, const ophttpd_limits *lim)
{
    return ophttpd_parse_request(s, strlen(s), lim, &P, NULL, 0);
}

static int span_is(ophttpd_span s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static void test_parse_simple_get(void)
{
    const char *r = "GET /apis/apps/v1/deployments?watch=1&rv=5 HTTP/1.1\r\nHost: x\r\n"
                    "X-Thing:  padded value \r\n\r\nNEXT";
    ASSERT_EQ_INT(parse(r, NULL), OPHTTPD_PARSE_COMPLETE);
    ASSERT(span_is(P.method, "GET"));
    ASSERT(span_is(P.path, "/apis/apps/v1/deployments"));
    ASSERT(span_is(P.query, "watch=1&rv=5"));
    ASSERT_EQ_INT(P.minor_version, 1);
    ASSERT_EQ_INT(P.nheaders, 2);
    ASSERT(span_is(P.headers[1].name, "X-Thing"));
    ASSERT(span_is(P.headers[1].value, "padded value"));
    ASSERT_EQ_INT(P.keep_alive, 1);
    ASSERT_EQ_INT(P.body_len, 0);
    ASSERT_EQ_INT(P.consumed, strlen(r) - 4);
}

static void test_parse_need_more_at_every_prefix(void)
{
    const char *r = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    size_t n = strlen(r);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ_INT(ophttpd_parse_request(r, i, NULL, &P, NULL, 0), OPHTTPD_PARSE_NEED_MORE);
    ASSERT_EQ_INT(ophttpd_parse_request(r, n, NULL, &P, NULL, 0), OPHTTPD_PARSE_COMPLETE);
    ASSERT_EQ_INT(P.body_len, 5);
    ASSERT(memcmp(P.body, "hello", 5) == 0);
}

static void test_parse_chunked_body(void)
{
    const char *r = "PATCH /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
    char body[64];
    ASSERT_EQ_INT(parse(r, NULL), OPHTTPD_PARSE_COMPLETE);
    ASSERT_EQ_INT(P.chunked, 1);
    ASSERT_EQ_INT(P.body_len, 11);
    ASSERT_EQ_INT(P.consumed, strlen(r));
    ASSERT_EQ_INT(ophttpd_parse_request(r, strlen(r), NULL, &P, body, sizeof(body)),
                  OPHTTPD_PARSE_COMPLETE);
    ASSERT_STR_EQ(P.body, "hello world");
    /* every strict prefix needs more */
    for (size_t i = 0; i < strlen(r); i++)
        ASSERT_EQ_INT(ophttpd_parse_request(r, i, NULL, &P, NULL, 0), OPHTTPD_PARSE_NEED_MORE);
}

static void test_parse_keep_alive_rules(void)
{
    ASSERT_EQ_INT(parse("GET / HTTP/1.0\r\n\r\n", NULL), OPHTTPD_PARSE_COMPLETE);
    ASSERT_EQ_INT(P.keep_alive, 0);
    ASSERT_EQ_INT(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", NULL),
                  OPHTTPD_PARSE_COMPLETE);
    ASSERT_EQ_INT(P.keep_alive, 1);
    ASSERT_EQ_INT(parse("GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n", NULL),
                  OPHTTPD_PARSE_COMPLETE);
    ASSERT_EQ_INT(P.keep_alive, 0);
    /* bare LF line ends are tolerated */
    ASSERT_EQ_INT(parse("GET /lf HTTP/1.1\nHost: a\n\n", NULL), OPHTTPD_PARSE_COMPLETE);
    ASSERT(span_is(P.path, "/lf"));
}

static void expect_error(const char *r, const ophttpd_limits *lim, int status)
{
    int rc = parse(r, lim);
    if (rc != OPHTTPD_PARSE_ERROR || P.error_status != status)
        test_fail(__FILE__, __LINE__, "request %.40s...: rc %d status %d, want error %d", r, rc,
                  P.error_status, status);
    ASSERT_NOT_NULL(P.error_msg);
}

static void test_parse_errors(void)
{
    ophttpd_limits small = {.max_header_bytes = 64, .max_body_bytes = 10, .max_headers = 3};
    expect_error("GARBAGE\r\n\r\n", NULL, 400);
    expect_error("GET nopath HTTP/1.1\r\n\r\n", NULL, 400);
    expect_error("GET / HTTP/2.0\r\n\r\n", NULL, 400);
    expect_error("GET /a b HTTP/1.1\r\n\r\n", NULL, 400);
    expect_error("GET / HTTP/1.1\r\nNo colon here\r\n\r\n", NULL, 400);
    expect_error("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", NULL, 400);
    expect_error("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", NULL, 400);
    expect_error("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", NULL, 400);
    expect_error("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", NULL,
                 400);
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", NULL, 501);
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", NULL, 400);
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX", NULL, 400);
    expect_error("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", &small, 413);
    expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\n",
                 &small, 413);
    expect_error("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", &small, 431);
    /* headers that never end within the limit: 431 before the blank line arrives */
    char big[200];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    big[sizeof(big) - 1] = '\0';
    expect_error(big, &small, 431);
    /* but an incomplete request within limits just needs more */
    ASSERT_EQ_INT(parse("GET / HTTP/1.1\r\nX: a", &small), OPHTTPD_PARSE_NEED_MORE);
}

static void test_query_lookup(void)
{
    char *v =
        ophttpd_query_lookup("a=1&labelSelector=app%3Dweb%2Ctier+in+(x)&flag&e=", "labelSelector");
    ASSERT_STR_EQ(v, "app=web,tier in (x)");
    free(v);
    v = ophttpd_query_lookup("a=1&flag&e=", "flag");
    ASSERT_STR_EQ(v, "");
    free(v);
    v = ophttpd_query_lookup("a=1&flag&e=", "e");
    ASSERT_STR_EQ(v, "");
    free(v);
    ASSERT_NULL(ophttpd_query_lookup("a=1&flag", "b"));
    ASSERT_NULL(ophttpd_query_lookup("aa=1", "a"));
    v = ophttpd_query_lookup("bad=%zz%4", "bad");
    ASSERT_STR_EQ(v, "%zz%4");
    free(v);
}

/* ---- server fixtures ----------------------------------------------------------------- */

typedef struct srvctx {
    uv_loop_t loop;
    ophttpd *srv;
    int closed;
    int requests;
    char last_method[16], last_path[256], last_query[256], last_ct[128], last_body[256];
    int saw_header_ci;
    uv_timer_t later; /* async answer */
    ophttpd_req *held;
    int gone_calls;
    int mode; /* 0 echo, 1 async, 2 stream, 3 abort mid-body, 4 hold until gone */
} srvctx;

static srvctx S;

static void on_gone(ophttpd_req *req, void *ud)
{
    srvctx *s = ud;
    s->gone_calls++;
    ASSERT(ophttpd_req_gone(req));
    ASSERT_EQ_INT(ophttpd_stream_write(req, "x", 1), -EPIPE);
    s->held = NULL;
    ophttpd_stream_end(req); /* finishing a gone request only frees it */
}

static void on_later(uv_timer_t *t)
{
    srvctx *s = t->data;
    ophttpd_req *r = s->held;
    s->held = NULL;
    ophttpd_respond(r, 202, "text/plain", "later", 5, "X-Async: yes\r\n");
}

static void handler(ophttpd_req *req, void *ud)
{
    srvctx *s = ud;
    size_t bl;
    const char *body = ophttpd_body(req, &bl);
    s->requests++;
    snprintf(s->last_method, sizeof(s->last_method), "%s", ophttpd_method(req));
    snprintf(s->last_path, sizeof(s->last_path), "%s", ophttpd_path(req));
    snprintf(s->last_query, sizeof(s->last_query), "%s", ophttpd_query(req));
    const char *ct = ophttpd_header(req, "CONTENT-type");
    snprintf(s->last_ct, sizeof(s->last_ct), "%s", ct ? ct : "");
    snprintf(s->last_body, sizeof(s->last_body), "%.*s", (int)bl, body);
    s->saw_header_ci = ophttpd_header(req, "x-MiXeD") != NULL;
    ASSERT_EQ_INT(ophttpd_req_server(req) == s->srv, 1);
    switch (s->mode) {
    case 1:
        s->held = req;
        uv_timer_start(&s->later, on_later, 30, 0);
        return;
    case 2:
        ASSERT_EQ_INT(ophttpd_stream_begin(req, 200, "application/json", NULL), 0);
        ophttpd_stream_write(req, "{\"n\":1}\n", 8);
        ophttpd_stream_write(req, "{\"n\":2}\n", 8);
        ophttpd_stream_write(req, "", 0);
        ophttpd_stream_write(req, "{\"n\":3}\n", 8);
        ophttpd_stream_end(req);
        return;
    case 3:
        ophttpd_fault_write_raw(req,
                                "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"half\":", 48);
        ophttpd_fault_abort(req);
        return;
    case 4:
        ophttpd_req_set_ud(req, s);
        ASSERT(ophttpd_req_ud(req) == s);
        ophttpd_req_on_gone(req, on_gone);
        ophttpd_stream_begin(req, 200, "application/json", NULL);
        ophttpd_stream_write(req, "{\"open\":true}\n", 14);
        s->held = req;
        return;
    default: {
        char out[600];
        int n = snprintf(out, sizeof(out), "%s %s ?%s [%.*s]", ophttpd_method(req),
                         ophttpd_path(req), ophttpd_query(req), (int)bl, body);
        ophttpd_respond(req, 200, "text/plain", out, (size_t)n, NULL);
    }
    }
}

static void on_srv_closed(void *ud)
{
    ((srvctx *)ud)->closed = 1;
}

static void later_closed(uv_handle_t *h)
{
    (void)h;
}

static void srv_start(const ophttpd_opts *extra)
{
    memset(&S, 0, sizeof(S));
    ASSERT_EQ_INT(uv_loop_init(&S.loop), 0);
    uv_timer_init(&S.loop, &S.later);
    S.later.data = &S;
    ophttpd_opts o = {0};
    if (extra)
        o = *extra;
    o.on_request = handler;
    o.ud = &S;
    ASSERT_EQ_INT(ophttpd_new(&S.srv, &S.loop, &o), 0);
    ASSERT_CMP_INT(ophttpd_port(S.srv), >, 0);
}

static void srv_stop(void)
{
    ophttpd_close(S.srv, on_srv_closed, &S);
    uv_close((uv_handle_t *)&S.later, later_closed);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(S.closed, 1);
    ASSERT_EQ_INT(uv_loop_close(&S.loop), 0);
}

static void run_raw(const char *req, int tls, const char *ca, int until_eof, fakeapi_cli_result *r)
{
    ASSERT_EQ_INT(
        fakeapi_cli_run(&S.loop, ophttpd_port(S.srv), ca, tls, req, strlen(req), until_eof, r), 0);
}

/* ---- server tests -------------------------------------------------------------------- */

static void test_plain_get_and_headers(void)
{
    fakeapi_cli_result r;
    srv_start(NULL);
    run_raw("POST /p/q?x=1&y=%20 HTTP/1.1\r\nHost: a\r\nX-Mixed: 1\r\nContent-Type: text/x\r\n"
            "Content-Length: 4\r\n\r\nbody",
            0, NULL, 0, &r);
    ASSERT_EQ_INT(r.error, 0);
    ASSERT_EQ_INT(r.complete, 1);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_STR_EQ(r.body, "POST /p/q ?x=1&y=%20 [body]");
    ASSERT_STR_CONTAINS(r.headers, "Content-Type: text/plain\r\n");
    ASSERT_STR_CONTAINS(r.headers, "Content-Length: 27\r\n");
    ASSERT_STR_EQ(S.last_ct, "text/x");
    ASSERT_EQ_INT(S.saw_header_ci, 1);
    fakeapi_cli_result_release(&r);
    srv_stop();
}

static void test_keep_alive_serves_requests_in_order(void)
{
    fakeapi_cli_result r;
    srv_start(NULL);
    /* three requests in one write: answered one after the other on one connection */
    run_raw(
        "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
        "POST /two HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        "GET /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        0, NULL, 1, &r);
    ASSERT_EQ_INT(r.error, 0);
    ASSERT_EQ_INT(r.eof, 1);
    ASSERT_EQ_INT(S.requests, 3);
    const char *a = strstr(r.raw, "GET /one ?");
    const char *b = strstr(r.raw, "POST /two ? [abc]");
    const char *c = strstr(r.raw, "GET /three ?");
    ASSERT(a && b && c && a < b && b < c);
    ASSERT_STR_CONTAINS(c - 60, "Connection: close\r\n");
    ASSERT_EQ_INT(ophttpd_connection_count(S.srv), 0);
    fakeapi_cli_result_release(&r);
    srv_stop();
}

static void test_async_response_from_timer(void)
{
    fakeapi_cli_result r;
    srv_start(NULL);
    S.mode = 1;
    run_raw("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n", 0, NULL, 0, &r);
    ASSERT_EQ_INT(r.status, 202);
    ASSERT_STR_EQ(r.body, "later");
    ASSERT_STR_CONTAINS(r.headers, "X-Async: yes\r\n");
    fakeapi_cli_result_release(&r);
    srv_stop();
}

static void test_chunked_stream(void)
{
    fakeapi_cli_result r;
    srv_start(NULL);
    S.mode = 2;
    run_raw("GET /watch HTTP/1.1\r\nHost: a\r\n\r\n", 0, NULL, 0, &r);
    ASSERT_EQ_INT(r.complete, 1);
    ASSERT_STR_CONTAINS(r.headers, "Transfer-Encoding: chunked\r\n");
    ASSERT_STR_EQ(r.body, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    ASSERT_STR_CONTAINS(r.raw, "\r\n8\r\n{\"n\":1}\n\r\n");
    ASSERT(strstr(r.raw, "0\r\n\r\n") == r.raw + r.raw_len - 5);
    fakeapi_cli_result_release(&r);
    srv_stop();
}

static void test_abort_cuts_the_body(void)
{
    fakeapi_cli_result r;
    srv_start(NULL);
    S.mode = 3;
    run_raw("GET /cut HTTP/1.1\r\nHost: a\r\n\r\n", 0, NULL, 1, &r);
    ASSERT_EQ_INT(r.eof, 1);
    ASSERT_EQ_INT(r.complete, 0);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_STR_EQ(r.body, "{\"half\":");
    fakeapi_cli_result_release(&r);
    srv_stop();
}

static void test_client_disconnect_is_reported(void)
{
    srv_start(NULL);
    S.mode = 4;
    const char *req = "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n";
    fakeapi_cli *c;
    ASSERT_EQ_INT(fakeapi_cli_start(&c, &S.loop, ophttpd_port(S.srv), NULL, 0, req, strlen(req), 1),
                  0);
    size_t n = 0;
    for (int i = 0; i < 200 && n == 0; i++) {
        uv_run(&S.loop, UV_RUN_ONCE);
        fakeapi_cli_body_so_far(c, &n);
    }
    ASSERT_STR_EQ(fakeapi_cli_body_so_far(c, &n), "{\"open\":true}\n");
    ASSERT_NOT_NULL(S.held);
    fakeapi_cli_free(c);
    for (int i = 0; i < 200 && S.gone_calls == 0; i++)
        uv_run(&S.loop, UV_RUN_ONCE);
    ASSERT_EQ_INT(S.gone_calls, 1);
    ASSERT_NULL(S.held);
    srv_stop();
}

static void test_limits_413_431_and_400(void)
{
    ophttpd_opts o = {.limits = {.max_header_bytes = 256, .max_body_bytes = 16}};
    fakeapi_cli_result r;
    srv_start(&o);
    run_raw("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", 0, NULL, 1, &r);
    ASSERT_EQ_INT(r.status, 413);
    ASSERT_STR_EQ(r.body, "request body too large\n");
    ASSERT_STR_CONTAINS(r.headers, "Connection: close");
    ASSERT_EQ_INT(r.eof, 1);
    fakeapi_cli_result_release(&r);

    char big[600];
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: %0400d\r\n\r\n", 7);
    run_raw(big, 0, NULL, 1, &r);
    ASSERT_EQ_INT(r.status, 431);
    ASSERT_STR_CONTAINS(r.body, "too large");
    fakeapi_cli_result_release(&r);

    run_raw("HELLO\r\n\r\n", 0, NULL, 1, &r);
    ASSERT_EQ_INT(r.status, 400);
    ASSERT_STR_EQ(r.body, "bad request line\n");
    fakeapi_cli_result_release(&r);
    ASSERT_EQ_INT(S.requests, 0);
    srv_stop();
}

static void test_idle_timeout_closes(void)
{
    ophttpd_opts o = {.idle_timeout_ms = 50};
    fakeapi_cli_result r;
    srv_start(&o);
    run_raw("GET / HTTP/1.1\r\nHost: a\r\n", 0, NULL, 1, &r); /* never finished */
    ASSERT_EQ_INT(r.eof, 1);
    ASSERT_EQ_INT(r.raw_len, 0);
    ASSERT_EQ_INT(S.requests, 0);
    fakeapi_cli_result_release(&r);
    srv_stop();
}

static void test_trickling_client_is_cut_off(void)
{
    ophttpd_opts o = {.idle_timeout_ms = 150};
    srv_start(&o);
    const char *req = "GET /slow HTTP/1.1\r\n";
    fakeapi_cli *c;
    ASSERT_EQ_INT(fakeapi_cli_start(&c, &S.loop, ophttpd_port(S.srv), NULL, 0, req, strlen(req), 1),
                  0);
    uv_update_time(&S.loop);
    uint64_t t0 = uv_now(&S.loop);
    /* one header byte every 20 ms keeps the socket busy but never finishes the request */
    while (!fakeapi_cli_done(c) && uv_now(&S.loop) - t0 < 2000) {
        fakeapi_cli_send(c, "X", 1);
        usleep(20000);
        uv_run(&S.loop, UV_RUN_NOWAIT);
        uv_update_time(&S.loop);
    }
    ASSERT_EQ_INT(fakeapi_cli_done(c), 1);
    ASSERT_CMP_INT(uv_now(&S.loop) - t0, <, 1000);
    ASSERT_EQ_INT(fakeapi_cli_result_of(c)->eof, 1);
    ASSERT_EQ_INT(S.requests, 0);
    fakeapi_cli_free(c);
    srv_stop();
}

static void test_flood_while_answering_drops_the_peer(void)
{
    ophttpd_opts o = {.limits = {.max_header_bytes = 1024, .max_body_bytes = 1024}};
    srv_start(&o);
    S.mode = 4;
    const char *req = "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n";
    fakeapi_cli *c;
    ASSERT_EQ_INT(fakeapi_cli_start(&c, &S.loop, ophttpd_port(S.srv), NULL, 0, req, strlen(req), 1),
                  0);
    for (int i = 0; i < 200 && !S.held; i++)
        uv_run(&S.loop, UV_RUN_ONCE);
    ASSERT_NOT_NULL(S.held);
    /* far more than one request may hold, sent while the first is still being answered */
    static char junk[256 * 1024];
    memset(junk, 'j', sizeof(junk));
    fakeapi_cli_send(c, junk, sizeof(junk));
    for (int i = 0; i < 2000 && !fakeapi_cli_done(c); i++)
        uv_run(&S.loop, UV_RUN_ONCE);
    ASSERT_EQ_INT(fakeapi_cli_done(c), 1);
    ASSERT_EQ_INT(S.gone_calls, 1);
    ASSERT_EQ_INT(S.requests, 1);
    fakeapi_cli_free(c);
    srv_stop();
}

static void test_max_connections(void)
{
    ophttpd_opts o = {.max_connections = 1};
    srv_start(&o);
    S.mode = 4;
    const char *req = "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n";
    fakeapi_cli *c;
    ASSERT_EQ_INT(fakeapi_cli_start(&c, &S.loop, ophttpd_port(S.srv), NULL, 0, req, strlen(req), 1),
                  0);
    for (int i = 0; i < 200 && !S.held; i++)
        uv_run(&S.loop, UV_RUN_ONCE);
    ASSERT_NOT_NULL(S.held);
    fakeapi_cli_result r;
    run_raw("GET /second HTTP/1.1\r\nHost: a\r\n\r\n", 0, NULL, 1, &r);
    ASSERT_EQ_INT(r.eof, 1);
    ASSERT_EQ_INT(r.raw_len, 0);
    ASSERT_EQ_INT(S.requests, 1);
    fakeapi_cli_result_release(&r);
    fakeapi_cli_free(c);
    srv_stop();
    ASSERT_EQ_INT(S.gone_calls, 1);
}

static void test_close_with_held_stream(void)
{
    /* close while the handler holds a stream: the req is reported gone, then all closes */
    srv_start(NULL);
    S.mode = 4;
    const char *req = "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n";
    fakeapi_cli *c;
    ASSERT_EQ_INT(fakeapi_cli_start(&c, &S.loop, ophttpd_port(S.srv), NULL, 0, req, strlen(req), 1),
                  0);
    for (int i = 0; i < 200 && !S.held; i++)
        uv_run(&S.loop, UV_RUN_ONCE);
    ASSERT_NOT_NULL(S.held);
    ophttpd_close(S.srv, on_srv_closed, &S);
    ASSERT_EQ_INT(S.gone_calls, 1);
    while (!fakeapi_cli_done(c))
        uv_run(&S.loop, UV_RUN_ONCE);
    ASSERT_EQ_INT(fakeapi_cli_result_of(c)->eof, 1);
    fakeapi_cli_free(c);
    uv_close((uv_handle_t *)&S.later, later_closed);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(S.closed, 1);
    ASSERT_EQ_INT(uv_loop_close(&S.loop), 0);
}

/* ---- TLS ----------------------------------------------------------------------------- */

static void test_cert_generate(void)
{
    ophttpd_cert c;
    const char *sans[] = {"optipod-webhook.optipod-system.svc", "127.0.0.1", "::1", NULL};
    ASSERT_EQ_INT(ophttpd_cert_generate(&c, "optipod", sans, 30), 0);
    ASSERT_STR_CONTAINS(c.ca_pem, "-----BEGIN CERTIFICATE-----");
    ASSERT_STR_CONTAINS(c.key_pem, "PRIVATE KEY-----");
    BIO *b1 = BIO_new_mem_buf(c.ca_pem, -1), *b2 = BIO_new_mem_buf(c.cert_pem, -1);
    X509 *ca = PEM_read_bio_X509(b1, NULL, NULL, NULL);
    X509 *leaf = PEM_read_bio_X509(b2, NULL, NULL, NULL);
    ASSERT_NOT_NULL(ca);
    ASSERT_NOT_NULL(leaf);
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, ca);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, st, leaf, NULL);
    X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx),
                                "optipod-webhook.optipod-system.svc", 0);
    int ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    /* and by IP */
    ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, st, leaf, NULL);
    X509_VERIFY_PARAM_set1_ip_asc(X509_STORE_CTX_get0_param(ctx), "127.0.0.1");
    int ok_ip = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, st, leaf, NULL);
    X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), "other.example", 0);
    int bad = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    X509_free(ca);
    X509_free(leaf);
    BIO_free(b1);
    BIO_free(b2);
    ophttpd_cert_release(&c);
    ASSERT_NULL(c.ca_pem);
    ASSERT_EQ_INT(ok, 1);
    ASSERT_EQ_INT(ok_ip, 1);
    ASSERT_NE_INT(bad, 1);
}

static void test_tls_round_trip_and_untrusted(void)
{
    ophttpd_cert c, other;
    const char *sans[] = {"127.0.0.1", NULL};
    ASSERT_EQ_INT(ophttpd_cert_generate(&c, "t", sans, 1), 0);
    ASSERT_EQ_INT(ophttpd_cert_generate(&other, "o", sans, 1), 0);
    ophttpd_opts o = {.cert_pem = c.cert_pem, .key_pem = c.key_pem};
    srv_start(&o);
    fakeapi_cli_result r;
    run_raw("PUT /tls?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 1, c.ca_pem, 0, &r);
    ASSERT_EQ_INT(r.error, 0);
    ASSERT_EQ_INT(r.status, 200);
    ASSERT_STR_EQ(r.body, "PUT /tls ?q=1 [abc]");
    fakeapi_cli_result_release(&r);

    /* streaming over TLS */
    S.mode = 2;
    run_raw("GET /s HTTP/1.1\r\nHost: a\r\n\r\n", 1, c.ca_pem, 0, &r);
    ASSERT_STR_EQ(r.body, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    fakeapi_cli_result_release(&r);

    /* a client trusting another CA fails the handshake; the server survives */
    run_raw("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, other.ca_pem, 0, &r);
    ASSERT_EQ_INT(r.error, -EPROTO);
    ASSERT_EQ_INT(r.status, 0);
    fakeapi_cli_result_release(&r);

    /* rotate the serving cert: new connections use it */
    ASSERT_EQ_INT(ophttpd_set_tls(S.srv, other.cert_pem, other.key_pem), 0);
    S.mode = 0;
    run_raw("GET /rotated HTTP/1.1\r\nHost: a\r\n\r\n", 1, other.ca_pem, 0, &r);
    ASSERT_EQ_INT(r.status, 200);
    fakeapi_cli_result_release(&r);
    ASSERT_EQ_INT(ophttpd_set_tls(S.srv, "junk", "junk"), -EINVAL);

    /* plaintext garbage on a TLS port is dropped */
    run_raw("GET / HTTP/1.1\r\n\r\n", 0, NULL, 1, &r);
    ASSERT_EQ_INT(r.eof, 1);
    ASSERT_EQ_INT(r.status, 0);
    fakeapi_cli_result_release(&r);
    srv_stop();
    ophttpd_cert_release(&c);
    ophttpd_cert_release(&other);
}

static void on_srv_closed_flag(void *ud)
{
    *(int *)ud = 1;
}

static void test_bad_options(void)
{
    uv_loop_t loop;
    ophttpd *srv;
    uv_loop_init(&loop);
    ophttpd_opts o = {.on_request = handler, .cert_pem = "nope", .key_pem = "nope"};
    ASSERT_EQ_INT(ophttpd_new(&srv, &loop, &o), -EINVAL);
    ophttpd_opts o2 = {.on_request = NULL};
    ASSERT_EQ_INT(ophttpd_new(&srv, &loop, &o2), -EINVAL);
    ophttpd_opts o3 = {.on_request = handler, .bind = "not-an-ip"};
    ASSERT_EQ_INT(ophttpd_new(&srv, &loop, &o3), -EINVAL);
    /* a port in use: the error, and the half-made listener goes away with the loop */
    ophttpd *first;
    ophttpd_opts o4 = {.on_request = handler};
    ASSERT_EQ_INT(ophttpd_new(&first, &loop, &o4), 0);
    o4.port = ophttpd_port(first);
    ASSERT_EQ_INT(ophttpd_new(&srv, &loop, &o4), UV_EADDRINUSE);
    int done = 0;
    ophttpd_close(first, on_srv_closed_flag, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(done, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    TEST_RUN(test_parse_simple_get);
    TEST_RUN(test_parse_need_more_at_every_prefix);
    TEST_RUN(test_parse_chunked_body);
    TEST_RUN(test_parse_keep_alive_rules);
    TEST_RUN(test_parse_errors);
    TEST_RUN(test_query_lookup);
    TEST_RUN(test_plain_get_and_headers);
    TEST_RUN(test_keep_alive_serves_requests_in_order);
    TEST_RUN(test_async_response_from_timer);
    TEST_RUN(test_chunked_stream);
    TEST_RUN(test_abort_cuts_the_body);
    TEST_RUN(test_client_disconnect_is_reported);
    TEST_RUN(test_limits_413_431_and_400);
    TEST_RUN(test_idle_timeout_closes);
    TEST_RUN(test_trickling_client_is_cut_off);
    TEST_RUN(test_flood_while_answering_drops_the_peer);
    TEST_RUN(test_max_connections);
    TEST_RUN(test_close_with_held_stream);
    TEST_RUN(test_cert_generate);
    TEST_RUN(test_tls_round_trip_and_untrusted);
    TEST_RUN(test_bad_options);
    return test_summary();
}
