/*
 * fakeapi_cli: a minimal raw HTTP(S) test client. See fakeapi_client.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "support/fakeapi_client.h"
#include "util/buf.h"

struct fakeapi_cli {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_timer_t timer;
    int handles;
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio;
    int handshaken;
    char *req;
    size_t req_len;
    int until_eof;
    opbuf in;
    int done;
    int freed;
    fakeapi_cli_result res;
    char *partial;
};

static void cli_finish(fakeapi_cli *c, int error, int eof);

static void on_closed(uv_handle_t *h)
{
    fakeapi_cli *c = h->data;
    if (--c->handles > 0)
        return;
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    opbuf_release(&c->in);
    free(c->req);
    free(c->partial);
    fakeapi_cli_result_release(&c->res);
    free(c);
}

static void on_write(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static int raw_send(fakeapi_cli *c, const char *p, size_t n)
{
    uv_write_t *w = malloc(sizeof(*w));
    char *copy = malloc(n ? n : 1);
    if (!w || !copy) {
        free(w);
        free(copy);
        return -ENOMEM;
    }
    memcpy(copy, p, n);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned int)n);
    int rc = uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(copy);
        free(w);
    }
    return rc;
}

static void flush_tls(fakeapi_cli *c)
{
    char tmp[16384];
    int n;
    while ((n = BIO_read(c->wbio, tmp, sizeof(tmp))) > 0)
        raw_send(c, tmp, (size_t)n);
}

static void send_request(fakeapi_cli *c)
{
    if (!c->ssl) {
        raw_send(c, c->req, c->req_len);
        return;
    }
    size_t off = 0;
    while (off < c->req_len) {
        int n = SSL_write(c->ssl, c->req + off, (int)(c->req_len - off));
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    flush_tls(c);
}

int fakeapi_cli_parse_response(const char *raw, size_t len, int partial_ok, int *status,
                               char **headers, char **body, size_t *body_len, size_t *consumed)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < len; i++) {
        if (memcmp(raw + i, "\r\n\r\n", 4) == 0) {
            end = raw + i;
            break;
        }
    }
    if (!end)
        return 0;
    size_t hlen = (size_t)(end - raw) + 4;
    if (len < 12 || memcmp(raw, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(raw + 9);
    if (*status == 100) {
        /* skip an interim response */
        size_t sub = 0;
        int rc = fakeapi_cli_parse_response(raw + hlen, len - hlen, partial_ok, status, headers,
                                            body, body_len, &sub);
        if (consumed)
            *consumed = hlen + sub;
        return rc;
    }
    /* header lookup on the block */
    char *hb = malloc(hlen + 1);
    if (!hb)
        return -1;
    memcpy(hb, raw, hlen);
    hb[hlen] = '\0';
    int chunked = 0;
    long clen = -1;
    for (char *line = strstr(hb, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        char *l = line + 2;
        if (!strncasecmp(l, "transfer-encoding:", 18) && strstr(l, "chunked") &&
            strstr(l, "chunked") < strstr(l, "\r\n"))
            chunked = 1;
        if (!strncasecmp(l, "content-length:", 15))
            clen = strtol(l + 15, NULL, 10);
    }
    opbuf b;
    opbuf_init(&b, OPBUF_DEFAULT_MAX);
    int rc = 0;
    size_t i = hlen;
    if (chunked) {
        for (;;) {
            const char *nl = memchr(raw + i, '\n', len - i);
            if (!nl)
                break;
            size_t sz = strtoul(raw + i, NULL, 16);
            size_t ds = (size_t)(nl - raw) + 1;
            if (sz == 0) {
                if (len - ds >= 2) {
                    i = ds + 2;
                    rc = 1;
                }
                break;
            }
            size_t avail = len - ds < sz ? len - ds : sz;
            opbuf_append(&b, raw + ds, avail);
            if (len - ds < sz + 2)
                break;
            i = ds + sz + 2;
        }
    } else if (clen >= 0) {
        size_t avail = len - hlen < (size_t)clen ? len - hlen : (size_t)clen;
        opbuf_append(&b, raw + hlen, avail);
        if (avail == (size_t)clen) {
            rc = 1;
            i = hlen + (size_t)clen;
        }
    } else {
        opbuf_append(&b, raw + hlen, len - hlen); /* until EOF */
    }
    if (rc == 1 || partial_ok) {
        if (headers)
            *headers = hb;
        else
            free(hb);
        hb = NULL;
        if (body)
            *body = opbuf_detach(&b, body_len);
        if (consumed)
            *consumed = i;
    }
    free(hb);
    opbuf_release(&b);
    return rc;
}

static void check_complete(fakeapi_cli *c)
{
    if (c->until_eof || c->done)
        return;
    int st = 0;
    if (fakeapi_cli_parse_response(c->in.data, c->in.len, 0, &st, NULL, NULL, NULL, NULL) == 1)
        cli_finish(c, 0, 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    fakeapi_cli *c = s->data;
    if (c->done) {
        free(buf->base);
        return;
    }
    if (n < 0) {
        free(buf->base);
        if (c->ssl && !c->handshaken)
            cli_finish(c, -EPROTO, 1);
        else
            cli_finish(c, n == UV_EOF ? 0 : (int)n, 1);
        return;
    }
    if (!c->ssl) {
        opbuf_append(&c->in, buf->base, (size_t)n);
        free(buf->base);
        check_complete(c);
        return;
    }
    BIO_write(c->rbio, buf->base, (int)n);
    free(buf->base);
    if (!c->handshaken) {
        int rc = SSL_do_handshake(c->ssl);
        flush_tls(c);
        if (rc != 1) {
            int e = SSL_get_error(c->ssl, rc);
            ERR_clear_error();
            if (e != SSL_ERROR_WANT_READ)
                cli_finish(c, -EPROTO, 0);
            return;
        }
        c->handshaken = 1;
        send_request(c);
    }
    char tmp[16384];
    for (;;) {
        int r = SSL_read(c->ssl, tmp, sizeof(tmp));
        if (r > 0) {
            opbuf_append(&c->in, tmp, (size_t)r);
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        ERR_clear_error();
        if (e == SSL_ERROR_ZERO_RETURN) {
            cli_finish(c, 0, 1);
            return;
        }
        break;
    }
    check_complete(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    fakeapi_cli *c = req->data;
    if (status < 0) {
        cli_finish(c, status, 0);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (c->ssl) {
        SSL_do_handshake(c->ssl);
        ERR_clear_error();
        flush_tls(c);
    } else {
        send_request(c);
    }
}

static void on_timeout(uv_timer_t *t)
{
    fakeapi_cli *c = t->data;
    cli_finish(c, UV_ETIMEDOUT, 0);
}

static void cli_finish(fakeapi_cli *c, int error, int eof)
{
    if (c->done)
        return;
    c->done = 1;
    c->res.error = error;
    c->res.eof = eof;
    c->res.raw_len = c->in.len;
    c->res.raw = malloc(c->in.len + 1);
    if (c->res.raw) {
        memcpy(c->res.raw, opbuf_str(&c->in), c->in.len);
        c->res.raw[c->in.len] = '\0';
    }
    size_t used = 0;
    int rc = fakeapi_cli_parse_response(c->in.data, c->in.len, 1, &c->res.status, &c->res.headers,
                                        &c->res.body, &c->res.body_len, &used);
    c->res.complete = rc == 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
}

int fakeapi_cli_start(fakeapi_cli **out, uv_loop_t *loop, int port, const char *ca_pem, int tls,
                      const char *req, size_t len, int until_eof)
{
    fakeapi_cli *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->until_eof = until_eof;
    opbuf_init(&c->in, OPBUF_DEFAULT_MAX);
    c->req = malloc(len + 1);
    if (!c->req) {
        free(c);
        return -ENOMEM;
    }
    memcpy(c->req, req, len);
    c->req_len = len;
    if (tls) {
        c->ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        if (ca_pem) {
            BIO *b = BIO_new_mem_buf(ca_pem, -1);
            X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
            X509_STORE_add_cert(SSL_CTX_get_cert_store(c->ctx), x);
            X509_free(x);
            BIO_free(b);
        }
        c->ssl = SSL_new(c->ctx);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1");
        SSL_set_connect_state(c->ssl);
    }
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->tcp.data = c->timer.data = c->conn.data = c;
    c->handles = 2;
    uv_timer_start(&c->timer, on_timeout, 20000, 0);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    int rc = uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&sa, on_connect);
    if (rc < 0)
        cli_finish(c, rc, 0);
    *out = c;
    return 0;
}

int fakeapi_cli_send(fakeapi_cli *c, const char *data, size_t len)
{
    if (c->done)
        return -EPIPE;
    if (!c->ssl)
        return raw_send(c, data, len);
    if (SSL_write(c->ssl, data, (int)len) <= 0) {
        ERR_clear_error();
        return -EIO;
    }
    flush_tls(c);
    return 0;
}

int fakeapi_cli_done(const fakeapi_cli *c)
{
    return c->done;
}

const fakeapi_cli_result *fakeapi_cli_result_of(const fakeapi_cli *c)
{
    return &c->res;
}

const char *fakeapi_cli_body_so_far(fakeapi_cli *c, size_t *len)
{
    int st = 0;
    free(c->partial);
    c->partial = NULL;
    *len = 0;
    fakeapi_cli_parse_response(c->in.data, c->in.len, 1, &st, NULL, &c->partial, len, NULL);
    return c->partial ? c->partial : "";
}

void fakeapi_cli_free(fakeapi_cli *c)
{
    if (c->freed)
        return;
    c->freed = 1;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

int fakeapi_cli_run(uv_loop_t *loop, int port, const char *ca_pem, int tls, const char *req,
                    size_t len, int until_eof, fakeapi_cli_result *out)
{
    fakeapi_cli *c;
    memset(out, 0, sizeof(*out));
    int rc = fakeapi_cli_start(&c, loop, port, ca_pem, tls, req, len, until_eof);
    if (rc < 0)
        return rc;
    while (!c->done)
        uv_run(loop, UV_RUN_ONCE);
    *out = c->res;
    memset(&c->res, 0, sizeof(c->res));
    fakeapi_cli_free(c);
    return 0;
}

void fakeapi_cli_result_release(fakeapi_cli_result *r)
{
    free(r->raw);
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

char *fakeapi_cli_format(const char *method, const char *path, const char *ct, const char *body,
                         const char *extra_headers)
{
    opbuf b;
    opbuf_init(&b, OPBUF_DEFAULT_MAX);
    opbuf_printf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: fakeapi-cli/1\r\n", method,
                 path);
    if (ct)
        opbuf_printf(&b, "Content-Type: %s\r\n", ct);
    if (body)
        opbuf_printf(&b, "Content-Length: %zu\r\n", strlen(body));
    if (extra_headers)
        opbuf_puts(&b, extra_headers);
    opbuf_puts(&b, "\r\n");
    if (body)
        opbuf_puts(&b, body);
    return opbuf_detach(&b, NULL);
}
