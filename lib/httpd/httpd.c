/*
 * ophttpd: connections, TLS over memory BIOs, request dispatch and responses.
 *
 * Handle discipline: a connection owns a uv_tcp_t and a uv_timer_t; it is freed
 * only after both close callbacks ran. The server is freed after the listener
 * and every connection closed and every request the handler still held was
 * finished (requests outlive their connection: they are then "gone").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "httpd/httpd.h"
#include "httpd/fault.h" /* defined here: they need the connection internals */
#include "util/buf.h"
#include "util/log.h"

#define DEF_MAX_CONN 256
#define DEF_IDLE_MS  60000
#define READ_CHUNK   65536

typedef struct conn conn;

struct ophttpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    ophttpd_opts opts;
    char *bind;
    SSL_CTX *ctx; /* NULL: plain HTTP */
    char *rbuf;   /* READ_CHUNK bytes: every read lands here and is consumed in on_read */
    int port;
    conn *conns;
    size_t nconns;
    size_t live_reqs;
    int listener_open;
    int closing;
    void (*on_closed)(void *ud);
    void *closed_ud;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    ophttpd *srv;
    conn *prev, *next;
    int handles; /* open libuv handles */
    SSL *ssl;
    BIO *rbio, *wbio;
    int handshake_done;
    opbuf in;         /* plaintext received, not yet consumed */
    ophttpd_req *req; /* the request being answered, or NULL */
    int closing;
    int close_when_flushed;
    size_t writes_pending;
    int kick; /* the timer fires to process buffered bytes, not for idleness */
    int sent_continue;
    ophttpd_parsed *parsed; /* scratch, allocated once */
};

struct ophttpd_req {
    conn *c; /* NULL once gone */
    ophttpd *srv;
    char *method, *path, *query, *target;
    char **hname, **hval;
    size_t nh;
    char *body;
    size_t body_len;
    int keep_alive;
    int head;
    int streaming;
    int gone;
    void *ud;
    void (*on_gone)(ophttpd_req *req, void *ud);
};

typedef struct wreq {
    uv_write_t w;
    conn *c;
    char data[];
} wreq;

static void conn_close(conn *c);
static void conn_process(conn *c);
static void srv_maybe_free(ophttpd *srv);
static void on_timer(uv_timer_t *t);

/* ---- status text --------------------------------------------------------------------- */

const char *ophttpd_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

/* ---- TLS context --------------------------------------------------------------------- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    /* We speak HTTP/1.1 only: pick it when offered, otherwise let the client fall back. */
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *ctx_new(const char *cert_pem, const char *key_pem)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *bio = NULL;
    X509 *x = NULL;
    EVP_PKEY *pk = NULL;
    if (!ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    bio = BIO_new_mem_buf(cert_pem, -1);
    if (!bio)
        goto fail;
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!x || SSL_CTX_use_certificate(ctx, x) != 1)
        goto fail;
    /* the rest of the PEM is the chain */
    for (;;) {
        X509 *extra = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!extra)
            break;
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            goto fail;
        }
    }
    BIO_free(bio);
    bio = BIO_new_mem_buf(key_pem, -1);
    if (!bio)
        goto fail;
    pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!pk || SSL_CTX_use_PrivateKey(ctx, pk) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(pk);
    BIO_free(bio);
    return ctx;
fail:
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(pk);
    BIO_free(bio);
    SSL_CTX_free(ctx);
    return NULL;
}

int ophttpd_set_tls(ophttpd *srv, const char *cert_pem, const char *key_pem)
{
    if (!cert_pem || !key_pem)
        return -EINVAL;
    SSL_CTX *ctx = ctx_new(cert_pem, key_pem);
    if (!ctx)
        return -EINVAL;
    SSL_CTX_free(srv->ctx); /* live SSL objects keep their own reference */
    srv->ctx = ctx;
    return 0;
}

/* ---- writing ------------------------------------------------------------------------- */

static void on_write(uv_write_t *w, int status)
{
    wreq *wr = (wreq *)w;
    conn *c = wr->c;
    free(wr);
    c->writes_pending--;
    if (status < 0 && !c->closing) {
        conn_close(c);
        return;
    }
    if (c->close_when_flushed && c->writes_pending == 0 && !c->closing)
        conn_close(c);
}

/* Write what the socket takes now (uv_try_write: no allocation, no copy, one syscall in the
 * common case of an empty send queue) and queue only the rest, copied, behind it. */
static int raw_write(conn *c, const char *data, size_t len)
{
    if (c->closing)
        return -EPIPE;
    if (len == 0)
        return 0;
    if (c->writes_pending == 0) {
        uv_buf_t now = uv_buf_init((char *)data, (unsigned int)len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &now, 1);
        if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS)
            return n;
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
        if (len == 0)
            return 0;
    }
    wreq *wr = malloc(sizeof(*wr) + len);
    if (!wr)
        return -ENOMEM;
    memcpy(wr->data, data, len);
    wr->c = c;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned int)len);
    int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(wr);
        return rc;
    }
    c->writes_pending++;
    return 0;
}

/* Move whatever OpenSSL wrote into the write BIO onto the socket. (Not straight from the
 * BIO's buffer: emptying a memory BIO with BIO_reset zeroes its whole allocation.) */
static int flush_tls(conn *c)
{
    char tmp[16384];
    for (;;) {
        int n = BIO_read(c->wbio, tmp, sizeof(tmp));
        if (n <= 0)
            return 0;
        int rc = raw_write(c, tmp, (size_t)n);
        if (rc < 0)
            return rc;
    }
}

static int conn_write(conn *c, const char *data, size_t len)
{
    if (c->closing)
        return -EPIPE;
    if (!c->ssl)
        return raw_write(c, data, len);
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int n = SSL_write(c->ssl, data, chunk);
        if (n <= 0) {
            ERR_clear_error();
            return -EIO;
        }
        data += n;
        len -= (size_t)n;
    }
    return flush_tls(c);
}

/* ---- requests ------------------------------------------------------------------------ */

static void req_free(ophttpd_req *r)
{
    ophttpd *srv = r->srv;
    free(r); /* strings and arrays live in the same block (req_new) */
    srv->live_reqs--;
    srv_maybe_free(srv);
}

/* The request is answered: detach it from its connection and go on with the next. */
static void req_finish(ophttpd_req *r, int keep)
{
    conn *c = r->c;
    if (c) {
        c->req = NULL;
        r->c = NULL;
        if (!keep || !r->keep_alive || c->srv->closing) {
            c->close_when_flushed = 1;
            if (c->writes_pending == 0)
                conn_close(c);
        } else if (!c->closing && c->in.len == 0) {
            /* nothing buffered: the next request must arrive within the idle timeout */
            uv_timer_start(&c->timer, on_timer, c->srv->opts.idle_timeout_ms, 0);
        } else if (!c->closing) {
            /* process buffered bytes from the loop, not from inside the handler */
            c->kick = 1;
            uv_timer_start(&c->timer, on_timer, 0, 0);
        }
    }
    req_free(r);
}

static void req_gone(ophttpd_req *r)
{
    r->c = NULL;
    r->gone = 1;
    if (r->on_gone)
        r->on_gone(r, r->ud);
}

/* Copy n bytes at *at and NUL-terminate; advance *at. */
static char *put_str(char **at, const char *p, size_t n)
{
    char *s = *at;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    *at += n + 1;
    return s;
}

/* One allocation per request: the struct, the header arrays, then every string. */
static ophttpd_req *req_new(conn *c, const ophttpd_parsed *p, const char *body, size_t body_len)
{
    if (!body)
        body_len = 0;
    size_t nh = p->nheaders;
    size_t strs = p->method.n + p->path.n + p->query.n + p->target.n + body_len + 5;
    for (size_t i = 0; i < nh; i++)
        strs += p->headers[i].name.n + p->headers[i].value.n + 2;
    size_t arrays = 2 * (nh + 1) * sizeof(char *);
    ophttpd_req *r = malloc(sizeof(*r) + arrays + strs);
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->c = c;
    r->srv = c->srv;
    c->srv->live_reqs++;
    r->hname = (char **)(void *)(r + 1);
    r->hval = r->hname + nh + 1;
    char *at = (char *)(r->hval + nh + 1);
    r->method = put_str(&at, p->method.p, p->method.n);
    r->path = put_str(&at, p->path.p, p->path.n);
    r->query = put_str(&at, p->query.p, p->query.n);
    r->target = put_str(&at, p->target.p, p->target.n);
    r->body = put_str(&at, body, body_len);
    r->body_len = body_len;
    for (size_t i = 0; i < nh; i++) {
        r->hname[i] = put_str(&at, p->headers[i].name.p, p->headers[i].name.n);
        r->hval[i] = put_str(&at, p->headers[i].value.p, p->headers[i].value.n);
    }
    r->hname[nh] = r->hval[nh] = NULL;
    r->nh = nh;
    r->keep_alive = p->keep_alive;
    r->head = strcmp(r->method, "HEAD") == 0;
    return r;
}

const char *ophttpd_method(const ophttpd_req *req)
{
    return req->method;
}
const char *ophttpd_path(const ophttpd_req *req)
{
    return req->path;
}
const char *ophttpd_query(const ophttpd_req *req)
{
    return req->query;
}
const char *ophttpd_target(const ophttpd_req *req)
{
    return req->target;
}
ophttpd *ophttpd_req_server(const ophttpd_req *req)
{
    return req->srv;
}
void ophttpd_req_set_ud(ophttpd_req *req, void *ud)
{
    req->ud = ud;
}
void *ophttpd_req_ud(const ophttpd_req *req)
{
    return req->ud;
}
void ophttpd_req_on_gone(ophttpd_req *req, void (*on_gone)(ophttpd_req *req, void *ud))
{
    req->on_gone = on_gone;
}
int ophttpd_req_gone(const ophttpd_req *req)
{
    return req->gone;
}

const char *ophttpd_header(const ophttpd_req *req, const char *name)
{
    for (size_t i = 0; i < req->nh; i++)
        if (strcasecmp(req->hname[i], name) == 0)
            return req->hval[i];
    return NULL;
}

const char *ophttpd_body(const ophttpd_req *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body;
}

static int unhex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static char *pct_decode(const char *p, size_t n)
{
    char *s = malloc(n + 1), *o = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n && unhex(p[i + 1]) >= 0 && unhex(p[i + 2]) >= 0) {
            *o++ = (char)(unhex(p[i + 1]) * 16 + unhex(p[i + 2]));
            i += 2;
        } else if (p[i] == '+') {
            *o++ = ' ';
        } else {
            *o++ = p[i];
        }
    }
    *o = '\0';
    return s;
}

char *ophttpd_query_lookup(const char *query, const char *name)
{
    if (!query)
        return NULL;
    size_t nl = strlen(name);
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', seg);
        size_t kl = eq ? (size_t)(eq - p) : seg;
        char *key = pct_decode(p, kl);
        if (!key)
            return NULL;
        int match = strlen(key) == nl && memcmp(key, name, nl) == 0;
        free(key);
        if (match)
            return eq ? pct_decode(eq + 1, seg - kl - 1) : pct_decode("", 0);
        if (!amp)
            break;
        p = amp + 1;
    }
    return NULL;
}

char *ophttpd_query_param(const ophttpd_req *req, const char *name)
{
    return ophttpd_query_lookup(req->query, name);
}

/* ---- responding ---------------------------------------------------------------------- */

static int put_dec(opbuf *h, size_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do
        tmp[--i] = (char)('0' + v % 10);
    while ((v /= 10) && i > 0);
    return opbuf_append(h, tmp + i, sizeof tmp - i);
}

/* Plain appends, no printf: the head is built once per response. */
static int head_build(opbuf *h, const ophttpd_req *req, int status, const char *content_type,
                      const char *extra, int chunked, size_t len)
{
    int rc = opbuf_puts(h, "HTTP/1.1 ");
    if (!rc)
        rc = put_dec(h, status < 0 ? 0 : (size_t)status);
    if (!rc)
        rc = opbuf_puts(h, " ");
    if (!rc)
        rc = opbuf_puts(h, ophttpd_status_text(status));
    if (!rc && content_type) {
        rc = opbuf_puts(h, "\r\nContent-Type: ");
        if (!rc)
            rc = opbuf_puts(h, content_type);
    }
    if (!rc && chunked) {
        rc = opbuf_puts(h, "\r\nTransfer-Encoding: chunked\r\n");
    } else if (!rc) {
        rc = opbuf_puts(h, "\r\nContent-Length: ");
        if (!rc)
            rc = put_dec(h, len);
        if (!rc)
            rc = opbuf_puts(h, "\r\n");
    }
    if (!rc && extra)
        rc = opbuf_puts(h, extra);
    if (!rc && (!req->keep_alive || req->srv->closing))
        rc = opbuf_puts(h, "Connection: close\r\n");
    if (!rc)
        rc = opbuf_puts(h, "\r\n");
    return rc;
}

int ophttpd_respond(ophttpd_req *req, int status, const char *content_type, const char *body,
                    size_t len, const char *extra_headers)
{
    int rc = 0;
    opbuf h;
    opbuf_init(&h, OPBUF_DEFAULT_MAX);
    if (!req->c || req->streaming) {
        rc = req->c ? -EINVAL : -EPIPE;
        goto out;
    }
    rc = head_build(&h, req, status, content_type, extra_headers, 0, len);
    if (!rc && !req->head && len)
        rc = opbuf_append(&h, body, len);
    if (!rc)
        rc = conn_write(req->c, h.data, h.len);
out:
    opbuf_release(&h);
    req_finish(req, rc == 0);
    return rc;
}

int ophttpd_stream_begin(ophttpd_req *req, int status, const char *content_type,
                         const char *extra_headers)
{
    if (!req->c)
        return -EPIPE;
    if (req->streaming)
        return -EINVAL;
    opbuf h;
    opbuf_init(&h, 1 << 20);
    int rc = head_build(&h, req, status, content_type, extra_headers, 1, 0);
    if (!rc)
        rc = conn_write(req->c, h.data, h.len);
    opbuf_release(&h);
    if (!rc)
        req->streaming = 1;
    return rc;
}

int ophttpd_stream_write(ophttpd_req *req, const char *data, size_t len)
{
    if (!req->c)
        return -EPIPE;
    if (!req->streaming)
        return -EINVAL;
    if (len == 0)
        return 0;
    char hdr[32];
    int n = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
    opbuf b;
    opbuf_init(&b, OPBUF_DEFAULT_MAX);
    int rc = opbuf_append(&b, hdr, (size_t)n);
    if (!rc)
        rc = opbuf_append(&b, data, len);
    if (!rc)
        rc = opbuf_append(&b, "\r\n", 2);
    if (!rc)
        rc = conn_write(req->c, b.data, b.len);
    opbuf_release(&b);
    return rc;
}

int ophttpd_fault_write_raw(ophttpd_req *req, const char *data, size_t len)
{
    if (!req->c)
        return -EPIPE;
    return conn_write(req->c, data, len);
}

int ophttpd_stream_end(ophttpd_req *req)
{
    int rc = -EPIPE;
    if (req->c && req->streaming)
        rc = conn_write(req->c, "0\r\n\r\n", 5);
    req_finish(req, rc == 0);
    return rc;
}

void ophttpd_fault_abort(ophttpd_req *req)
{
    conn *c = req->c;
    if (c) {
        c->req = NULL;
        req->c = NULL;
        /* no TLS close_notify, no final chunk: the peer sees the stream cut where it stands */
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->close_when_flushed = 1;
        if (c->writes_pending == 0)
            conn_close(c);
    }
    req_free(req);
}

/* ---- connections --------------------------------------------------------------------- */

static void conn_free(conn *c)
{
    ophttpd *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    SSL_free(c->ssl); /* frees both BIOs */
    opbuf_release(&c->in);
    free(c->parsed);
    free(c);
    srv_maybe_free(srv);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles == 0)
        conn_free(c);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->req) {
        ophttpd_req *r = c->req;
        c->req = NULL;
        req_gone(r);
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void send_error(conn *c, int status, const char *msg)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                     status, ophttpd_status_text(status), strlen(msg) + 1, msg);
    conn_write(c, buf, (size_t)n);
    c->close_when_flushed = 1;
    if (c->writes_pending == 0)
        conn_close(c);
}

static void conn_process(conn *c)
{
    ophttpd *srv = c->srv;
    if (c->req || c->closing || c->close_when_flushed || c->in.len == 0)
        return;
    ophttpd_parsed *p = c->parsed;
    int rc = ophttpd_parse_request(c->in.data, c->in.len, &srv->opts.limits, p, NULL, 0);
    if (rc == OPHTTPD_PARSE_ERROR) {
        send_error(c, p->error_status, p->error_msg);
        return;
    }
    if (rc == OPHTTPD_PARSE_NEED_MORE) {
        /* Headers complete and the client waits for our go-ahead before the body. */
        if (p->header_len && !c->sent_continue) {
            for (size_t i = 0; i < p->nheaders; i++) {
                if (p->headers[i].name.n == 6 && !strncasecmp(p->headers[i].name.p, "expect", 6) &&
                    p->headers[i].value.n == 12 &&
                    !strncasecmp(p->headers[i].value.p, "100-continue", 12)) {
                    c->sent_continue = 1;
                    conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                }
            }
        }
        return;
    }
    char *chunked_body = NULL;
    if (p->chunked) {
        chunked_body = malloc(p->body_len + 1);
        if (!chunked_body) {
            send_error(c, 500, "out of memory");
            return;
        }
        ophttpd_parse_request(c->in.data, c->in.len, &srv->opts.limits, p, chunked_body,
                              p->body_len + 1);
    }
    ophttpd_req *r = req_new(c, p, p->body, p->body_len);
    size_t consumed = p->consumed;
    free(chunked_body);
    if (!r) {
        send_error(c, 500, "out of memory");
        return;
    }
    opbuf_consume(&c->in, consumed);
    c->sent_continue = 0;
    c->req = r;
    uv_timer_stop(&c->timer);
    srv->opts.on_request(r, srv->opts.ud);
}

static void on_timer(uv_timer_t *t)
{
    conn *c = t->data;
    if (c->kick) {
        c->kick = 0;
        if (!c->req)
            uv_timer_start(&c->timer, on_timer, c->srv->opts.idle_timeout_ms, 0);
        conn_process(c);
        return;
    }
    if (!c->req)
        conn_close(c); /* idle */
}

/* One buffer per server: libuv calls on_read right after each on_alloc, and on_read copies
 * the bytes out (into the TLS read BIO or c->in) before returning. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    conn *c = h->data;
    buf->base = c->srv->rbuf;
    buf->len = READ_CHUNK;
}

static size_t in_cap(const ophttpd *srv)
{
    size_t mh = srv->opts.limits.max_header_bytes ? srv->opts.limits.max_header_bytes : 16384;
    size_t mb = srv->opts.limits.max_body_bytes ? srv->opts.limits.max_body_bytes : (3u << 20);
    /* chunk framing of a body can be larger than the body itself */
    return mh + 2 * mb + 65536;
}

static int feed_plain(conn *c, const char *data, size_t len)
{
    if (opbuf_append(&c->in, data, len) < 0) {
        /* more buffered input than a request may be: refuse it, or drop a flooding peer */
        if (c->req)
            conn_close(c);
        else
            send_error(c, 413, "request too large");
        return -2;
    }
    return 0;
}

static int feed_tls(conn *c, const char *data, size_t len)
{
    if (BIO_write(c->rbio, data, (int)len) != (int)len)
        return -1;
    if (!c->handshake_done) {
        int rc = SSL_do_handshake(c->ssl);
        flush_tls(c);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            ERR_clear_error();
            return e == SSL_ERROR_WANT_READ ? 0 : -1;
        }
        c->handshake_done = 1;
        if (c->srv->opts.on_handshake)
            c->srv->opts.on_handshake(c->srv->opts.ud);
    }
    char tmp[16384];
    for (;;) {
        int n = SSL_read(c->ssl, tmp, sizeof(tmp));
        if (n > 0) {
            if (feed_plain(c, tmp, (size_t)n) < 0)
                return -2;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        ERR_clear_error();
        flush_tls(c);
        if (e == SSL_ERROR_WANT_READ)
            return 0;
        return -1; /* close_notify or a protocol error */
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->closing)
        return;
    int rc;
    if (c->ssl)
        rc = feed_tls(c, buf->base, (size_t)nread);
    else
        rc = feed_plain(c, buf->base, (size_t)nread);
    if (rc == -1) {
        /* the peer closed (close_notify) or spoke garbage TLS: answer what we have first */
        conn_process(c);
        if (!c->req)
            conn_close(c);
        else
            uv_read_stop((uv_stream_t *)&c->tcp);
        return;
    }
    if (rc < 0)
        return;
    /* The timer is not restarted here: a request must arrive whole within
     * idle_timeout_ms, so a client trickling bytes cannot hold the connection. */
    conn_process(c);
}

static void on_connection(uv_stream_t *ls, int status)
{
    ophttpd *srv = ls->data;
    if (status < 0 || srv->closing)
        return;
    conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = srv;
    c->parsed = malloc(sizeof(*c->parsed));
    opbuf_init(&c->in, in_cap(srv));
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0 || !c->parsed ||
        srv->nconns > srv->opts.max_connections ||
        (srv->opts.on_accept && srv->opts.on_accept(srv->opts.ud))) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (srv->ctx) {
        c->ssl = SSL_new(srv->ctx);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        if (!c->ssl || !c->rbio || !c->wbio) {
            BIO_free(c->rbio);
            BIO_free(c->wbio);
            c->rbio = c->wbio = NULL;
            conn_close(c);
            return;
        }
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_accept_state(c->ssl);
    }
    uv_timer_start(&c->timer, on_timer, srv->opts.idle_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

/* ---- the server ---------------------------------------------------------------------- */

int ophttpd_new(ophttpd **out, uv_loop_t *loop, const ophttpd_opts *opts)
{
    int rc;
    *out = NULL;
    if (!opts || !opts->on_request)
        return -EINVAL;
    ophttpd *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->loop = loop;
    srv->opts = *opts;
    srv->bind = strdup(opts->bind ? opts->bind : "127.0.0.1");
    srv->rbuf = malloc(READ_CHUNK);
    if (!srv->bind || !srv->rbuf) {
        free(srv->bind);
        free(srv->rbuf);
        free(srv);
        return -ENOMEM;
    }
    srv->opts.bind = srv->bind;
    srv->opts.cert_pem = srv->opts.key_pem = NULL;
    if (!srv->opts.max_connections)
        srv->opts.max_connections = DEF_MAX_CONN;
    if (!srv->opts.idle_timeout_ms)
        srv->opts.idle_timeout_ms = DEF_IDLE_MS;
    if (opts->cert_pem || opts->key_pem) {
        rc = ophttpd_set_tls(srv, opts->cert_pem, opts->key_pem);
        if (rc < 0)
            goto fail;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(srv->bind, opts->port, (struct sockaddr_in *)&ss) < 0 &&
        uv_ip6_addr(srv->bind, opts->port, (struct sockaddr_in6 *)&ss) < 0) {
        rc = -EINVAL;
        goto fail;
    }
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    srv->listener_open = 1;
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
    if (rc < 0) {
        /* The listener handle exists now and can only be freed from its close callback:
         * the server frees itself once the loop runs; no callback is called. */
        ophttpd_close(srv, NULL, NULL);
        return rc;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen);
    srv->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *out = srv;
    return 0;
fail:
    SSL_CTX_free(srv->ctx);
    free(srv->bind);
    free(srv->rbuf);
    free(srv);
    return rc;
}

int ophttpd_port(const ophttpd *srv)
{
    return srv->port;
}

size_t ophttpd_connection_count(const ophttpd *srv)
{
    return srv->nconns;
}

void ophttpd_close_connections(ophttpd *srv)
{
    for (conn *c = srv->conns; c; c = c->next)
        conn_close(c);
}

static void srv_maybe_free(ophttpd *srv)
{
    if (!srv->closing || srv->listener_open || srv->conns || srv->live_reqs)
        return;
    void (*cb)(void *) = srv->on_closed;
    void *ud = srv->closed_ud;
    SSL_CTX_free(srv->ctx);
    free(srv->bind);
    free(srv->rbuf);
    free(srv);
    if (cb)
        cb(ud);
}

static void on_listener_closed(uv_handle_t *h)
{
    ophttpd *srv = h->data;
    srv->listener_open = 0;
    srv_maybe_free(srv);
}

void ophttpd_close(ophttpd *srv, void (*on_closed)(void *ud), void *ud)
{
    if (srv->closing)
        return;
    srv->closing = 1;
    srv->on_closed = on_closed;
    srv->closed_ud = ud;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    ophttpd_close_connections(srv);
}
