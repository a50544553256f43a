#include "support/tlsload.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

typedef struct conn conn;

typedef struct gen {
    uv_loop_t loop;
    SSL_CTX *ctx;
    int port;
    const char *req;
    size_t req_len;
    const char *must_contain; /* every response body must contain this */
    int nconns;
    conn *conns;
    int warmed, closed;
    int measuring;
    long target, started, done; /* target 0: until stop_fd */
    double *lat_ms;
    size_t lat_cap;
    int stopping, inflight;
    int ready_fd;
    uv_pipe_t stop;
    int have_stop;
    uint64_t t_start, t_end;
    int failed;
    /* Open loop (rate > 0): requests are due at `rate` per second whatever the answers do; a
     * due request goes out on an idle connection, or waits in the backlog (its wait counts in
     * its latency) until one frees up. */
    double rate;
    uv_timer_t tick;
    int *idle, nidle;
    uint64_t *backlog; /* due times of waiting requests, FIFO */
    long bl_head, bl_tail;
} gen;

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    gen *g;
    SSL *ssl;
    BIO *rbio, *wbio;
    int handshaken, warm;
    uint64_t t0;
    char *in; /* plaintext received */
    size_t in_len, in_cap;
};

typedef struct wreq {
    uv_write_t w;
    uv_buf_t b;
} wreq;

static void fail(gen *g, const char *what)
{
    if (!g->failed)
        fprintf(stderr, "tlsload: %s\n", what);
    g->failed = 1;
    uv_stop(&g->loop);
}

static void on_written(uv_write_t *w, int status)
{
    wreq *r = (wreq *)w;
    free(r->b.base);
    free(r);
    (void)status;
}

/* Ship whatever OpenSSL wrote into the write BIO. */
static void flush(conn *c)
{
    size_t pending;
    while ((pending = BIO_ctrl_pending(c->wbio)) > 0) {
        wreq *r = malloc(sizeof *r);
        r->b.base = malloc(pending);
        int n = BIO_read(c->wbio, r->b.base, (int)pending);
        r->b.len = (size_t)(n > 0 ? n : 0);
        uv_buf_t b = r->b; /* uv_write copies it; r->b keeps the memory to free */
        if (uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
            free(r->b.base);
            free(r);
            fail(c->g, "write failed");
            return;
        }
    }
}

/* t0: when the request was due (its latency starts there). */
static void send_req_at(conn *c, uint64_t t0)
{
    c->t0 = t0;
    c->g->inflight++;
    if (SSL_write(c->ssl, c->g->req, (int)c->g->req_len) <= 0)
        fail(c->g, "SSL_write failed");
    flush(c);
}

static void send_req(conn *c)
{
    send_req_at(c, uv_hrtime());
}

/* Open loop: every millisecond, send what has fallen due since the phase began. */
static void on_tick(uv_timer_t *t)
{
    gen *g = t->data;
    uint64_t now = uv_hrtime();
    long due = (long)((double)(now - g->t_start) / 1e9 * g->rate);
    if (due > g->target)
        due = g->target;
    for (; g->started < due; g->started++) {
        if (g->nidle > 0)
            send_req_at(&g->conns[g->idle[--g->nidle]], now);
        else
            g->backlog[g->bl_tail++] = now;
    }
    if (g->started == g->target)
        uv_timer_stop(t);
}

static void start_measuring(gen *g)
{
    g->measuring = 1;
    if (g->ready_fd >= 0 && write(g->ready_fd, "ready\n", 6) != 6)
        fail(g, "cannot say ready");
    g->t_start = uv_hrtime();
    if (g->rate > 0) {
        for (int i = 0; i < g->nconns; i++)
            g->idle[g->nidle++] = i;
        uv_timer_start(&g->tick, on_tick, 1, 1);
        return;
    }
    for (int i = 0; i < g->nconns && (!g->target || g->started < g->target); i++) {
        g->started++;
        send_req(&g->conns[i]);
    }
}

/* A complete response at the head of c->in: its length, or 0 when not yet complete. */
static size_t response_len(conn *c, int *status, const char **body, size_t *blen)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t hl = (size_t)(end - c->in) + 4;
    *status = atoi(c->in + 9);
    const char *cl = memmem(c->in, hl, "Content-Length: ", 16);
    size_t n = cl ? strtoul(cl + 16, NULL, 10) : 0;
    if (c->in_len < hl + n)
        return 0;
    *body = c->in + hl;
    *blen = n;
    return hl + n;
}

static void on_response(conn *c, int status, const char *body, size_t blen)
{
    gen *g = c->g;
    if (status != 200 || !memmem(body, blen, g->must_contain, strlen(g->must_contain))) {
        fail(g, "unexpected response");
        return;
    }
    g->inflight--;
    if (!c->warm) {
        c->warm = 1;
        if (++g->warmed == g->nconns)
            start_measuring(g);
        return;
    }
    if ((size_t)g->done == g->lat_cap) {
        size_t ncap = g->lat_cap ? g->lat_cap * 2 : 65536;
        double *nl = realloc(g->lat_ms, ncap * sizeof *nl);
        if (!nl) {
            fail(g, "out of memory");
            return;
        }
        g->lat_ms = nl;
        g->lat_cap = ncap;
    }
    g->lat_ms[g->done++] = (double)(uv_hrtime() - c->t0) / 1e6;
    if (g->done == g->target || (g->stopping && g->inflight == 0)) {
        g->t_end = uv_hrtime();
        uv_stop(&g->loop);
        return;
    }
    if (g->stopping)
        return;
    if (g->rate > 0) {
        if (g->bl_head < g->bl_tail)
            send_req_at(c, g->backlog[g->bl_head++]);
        else
            g->idle[g->nidle++] = (int)(c - g->conns);
        return;
    }
    if (!g->target || g->started < g->target) {
        g->started++;
        send_req(c);
    }
}

static void pump(conn *c)
{
    if (!c->handshaken) {
        int rc = SSL_do_handshake(c->ssl);
        flush(c);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                fail(c->g, "TLS handshake failed");
            return;
        }
        c->handshaken = 1;
        send_req(c); /* the warm-up request */
    }
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap * 2 + 32768;
            c->in = realloc(c->in, c->in_cap);
        }
        int n = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));
        if (n <= 0)
            break;
        c->in_len += (size_t)n;
    }
    int status;
    const char *body;
    size_t blen, used;
    while ((used = response_len(c, &status, &body, &blen)) > 0) {
        on_response(c, status, body, blen);
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(sz);
    b->len = sz;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    if (n > 0) {
        BIO_write(c->rbio, b->base, (int)n);
        pump(c);
    } else if (n < 0) {
        fail(c->g, "connection closed by the server");
    }
    free(b->base);
}

static void on_connect(uv_connect_t *r, int status)
{
    conn *c = r->data;
    if (status < 0) {
        fail(c->g, "connect failed");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    pump(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    c->g->closed++;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* stop_fd readable or closed: send nothing more, collect what is in flight. */
static void on_stop_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    static char sink[64];
    (void)h;
    (void)sz;
    b->base = sink;
    b->len = sizeof sink;
}

static void on_stop(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    gen *g = s->data;
    (void)b;
    if (n == 0)
        return;
    uv_read_stop(s);
    g->stopping = 1;
    if (g->inflight == 0) {
        g->t_end = uv_hrtime();
        uv_stop(&g->loop);
    }
}

tlsload_result tlsload_run(const tlsload_opts *o)
{
    tlsload_result pr = {0};
    if (o->nconns <= 0 || (o->nreqs <= 0 && (o->rate > 0 || o->stop_fd < 0))) {
        fprintf(stderr, "tlsload: needs connections, and a request count or a stop fd\n");
        return pr;
    }
    static gen g;
    memset(&g, 0, sizeof g);
    g.port = o->port;
    g.req = o->req;
    g.req_len = strlen(o->req);
    g.must_contain = o->must_contain;
    g.nconns = o->nconns;
    g.target = o->nreqs > 0 ? o->nreqs : 0;
    g.rate = o->rate;
    g.ready_fd = o->ready_fd;
    g.lat_cap = g.target ? (size_t)g.target : 0;
    g.lat_ms = g.lat_cap ? calloc(g.lat_cap, sizeof(double)) : NULL;
    g.conns = calloc((size_t)o->nconns, sizeof(conn));
    g.idle = calloc((size_t)o->nconns, sizeof(int));
    g.backlog = g.target ? calloc((size_t)g.target, sizeof(uint64_t)) : NULL;
    uv_loop_init(&g.loop);
    uv_timer_init(&g.loop, &g.tick);
    g.tick.data = &g;
    if (o->stop_fd >= 0 && uv_pipe_init(&g.loop, &g.stop, 0) == 0) {
        g.have_stop = 1;
        g.stop.data = &g;
        if (uv_pipe_open(&g.stop, o->stop_fd) != 0 ||
            uv_read_start((uv_stream_t *)&g.stop, on_stop_alloc, on_stop) != 0)
            fail(&g, "cannot watch the stop fd");
    }
    g.ctx = SSL_CTX_new(TLS_client_method());
    BIO *cb = BIO_new_mem_buf(o->ca_pem, -1);
    X509 *ca = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(g.ctx), ca);
    X509_free(ca);
    BIO_free(cb);
    SSL_CTX_set_verify(g.ctx, SSL_VERIFY_PEER, NULL);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", o->port, &sa);
    for (int i = 0; i < o->nconns; i++) {
        conn *c = &g.conns[i];
        c->g = &g;
        c->ssl = SSL_new(g.ctx);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_connect_state(c->ssl);
        SSL_set1_host(c->ssl, "127.0.0.1");
        uv_tcp_init(&g.loop, &c->tcp);
        c->tcp.data = c;
        c->creq.data = c;
        uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&sa, on_connect);
    }
    uv_run(&g.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&g.tick, NULL);
    if (g.have_stop)
        uv_close((uv_handle_t *)&g.stop, NULL);
    for (int i = 0; i < o->nconns; i++)
        uv_close((uv_handle_t *)&g.conns[i].tcp, on_conn_closed);
    uv_run(&g.loop, UV_RUN_DEFAULT);
    uv_loop_close(&g.loop);
    long n = g.done;
    if (!g.failed && n > 0 && (!g.target || n == g.target)) {
        qsort(g.lat_ms, (size_t)n, sizeof(double), cmp_double);
        pr.p50 = g.lat_ms[n / 2];
        pr.p99 = g.lat_ms[(size_t)((double)n * 0.99)];
        pr.max = g.lat_ms[n - 1];
        pr.rps = (double)n / ((double)(g.t_end - g.t_start) / 1e9);
        pr.n = n;
        pr.ok = 1;
    }
    for (int i = 0; i < o->nconns; i++) {
        SSL_free(g.conns[i].ssl);
        free(g.conns[i].in);
    }
    SSL_CTX_free(g.ctx);
    free(g.conns);
    free(g.lat_ms);
    free(g.idle);
    free(g.backlog);
    return pr;
}
