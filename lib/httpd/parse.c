/*
 * The HTTP/1.1 request parser: a pure function over a byte prefix.
 *
 * It is re-run on the whole buffered prefix each time bytes arrive (requests
 * are small, and it keeps the parser free of state). Every length it reads is
 * bounded by the limits before anything is trusted; framing that could be read
 * two ways (both Content-Length and Transfer-Encoding, two different
 * Content-Lengths) is refused, so a proxy in front cannot be desynchronised.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "httpd/httpd.h"

#define DEF_MAX_HEADER ((size_t)16 << 10)
#define DEF_MAX_BODY   ((size_t)3 << 20)
#define DEF_MAX_NHDR   100

static int fail(ophttpd_parsed *out, int status, const char *msg)
{
    out->error_status = status;
    out->error_msg = msg;
    return OPHTTPD_PARSE_ERROR;
}

/* RFC 9110 tchar */
static int is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int span_ieq(ophttpd_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && strncasecmp(s.p, lit, n) == 0;
}

/* Does the comma-separated list `v` contain token `tok` (case-insensitive)? */
static int list_has(ophttpd_span v, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < v.n) {
        while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.n && v.p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v.p + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* Find the end of the line starting at i: returns index of '\n' or -1. */
static long line_end(const char *b, size_t len, size_t i)
{
    const char *nl = memchr(b + i, '\n', len - i);
    return nl ? (long)(nl - b) : -1;
}

static int parse_request_line(const char *b, size_t e, ophttpd_parsed *out)
{
    /* b[0..e) is the line without CR LF */
    size_t i = 0;
    while (i < e && is_tchar((unsigned char)b[i]))
        i++;
    if (i == 0 || i >= e || b[i] != ' ')
        return fail(out, 400, "bad request line");
    out->method = (ophttpd_span){b, i};
    size_t ts = ++i;
    while (i < e && b[i] != ' ') {
        unsigned char ch = (unsigned char)b[i];
        if (ch <= 0x20 || ch == 0x7f)
            return fail(out, 400, "bad request target");
        i++;
    }
    if (i == ts || i >= e)
        return fail(out, 400, "bad request line");
    out->target = (ophttpd_span){b + ts, i - ts};
    if (b[ts] != '/' && !(i - ts == 1 && b[ts] == '*'))
        return fail(out, 400, "bad request target");
    i++;
    if (e - i != 8 || memcmp(b + i, "HTTP/1.", 7) != 0 || (b[i + 7] != '0' && b[i + 7] != '1'))
        return fail(out, 400, "bad HTTP version");
    out->minor_version = b[i + 7] - '0';
    const char *q = memchr(out->target.p, '?', out->target.n);
    if (q) {
        out->path = (ophttpd_span){out->target.p, (size_t)(q - out->target.p)};
        out->query = (ophttpd_span){q + 1, out->target.n - out->path.n - 1};
    } else {
        out->path = out->target;
        out->query = (ophttpd_span){out->target.p + out->target.n, 0};
    }
    return 0;
}

static int parse_header_line(const char *b, size_t e, ophttpd_hfield *h, ophttpd_parsed *out)
{
    if (e > 0 && (b[0] == ' ' || b[0] == '\t'))
        return fail(out, 400, "obsolete header folding");
    size_t i = 0;
    while (i < e && is_tchar((unsigned char)b[i]))
        i++;
    if (i == 0 || i >= e || b[i] != ':')
        return fail(out, 400, "bad header line");
    h->name = (ophttpd_span){b, i};
    i++;
    while (i < e && (b[i] == ' ' || b[i] == '\t'))
        i++;
    size_t vs = i, ve = e;
    while (ve > vs && (b[ve - 1] == ' ' || b[ve - 1] == '\t'))
        ve--;
    for (size_t k = vs; k < ve; k++) {
        unsigned char ch = (unsigned char)b[k];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return fail(out, 400, "bad header value");
    }
    h->value = (ophttpd_span){b + vs, ve - vs};
    return 0;
}

static int parse_decimal(ophttpd_span v, size_t *out)
{
    if (v.n == 0 || v.n > 19)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        n = n * 10 + (size_t)(v.p[i] - '0');
    }
    *out = n;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Walk a chunked body starting at b[i]. Returns NEED_MORE, COMPLETE (sets
 * out->body_len, out->consumed) or ERROR. Copies data to body_out when given.
 */
static int parse_chunked(const char *b, size_t len, size_t i, size_t max_body, ophttpd_parsed *out,
                         char *body_out, size_t body_cap)
{
    size_t total = 0;
    for (;;) {
        long le = line_end(b, len, i);
        if (le < 0)
            return len - i > 1024 ? fail(out, 400, "bad chunk size") : OPHTTPD_PARSE_NEED_MORE;
        size_t e = (size_t)le;
        if (e > i && b[e - 1] == '\r')
            e--;
        size_t k = i, sz = 0;
        int digits = 0;
        while (k < e && hexval(b[k]) >= 0) {
            if (++digits > 15)
                return fail(out, 400, "bad chunk size");
            sz = sz * 16 + (size_t)hexval(b[k]);
            k++;
        }
        if (digits == 0 || (k < e && b[k] != ';' && b[k] != ' ' && b[k] != '\t'))
            return fail(out, 400, "bad chunk size");
        i = (size_t)le + 1;
        if (sz == 0) {
            /* trailers until an empty line */
            for (;;) {
                long te = line_end(b, len, i);
                if (te < 0)
                    return len - i > 4096 ? fail(out, 400, "bad trailer") : OPHTTPD_PARSE_NEED_MORE;
                size_t tl = (size_t)te - i;
                if (tl > 0 && b[te - 1] == '\r')
                    tl--;
                i = (size_t)te + 1;
                if (tl == 0)
                    break;
            }
            out->body_len = total;
            out->consumed = i;
            if (body_out && body_cap > total) {
                body_out[total] = '\0';
                out->body = body_out;
            }
            return OPHTTPD_PARSE_COMPLETE;
        }
        if (sz > max_body || total + sz > max_body)
            return fail(out, 413, "request body too large");
        if (len - i < sz + 1)
            return OPHTTPD_PARSE_NEED_MORE;
        if (body_out && body_cap > total + sz)
            memcpy(body_out + total, b + i, sz);
        total += sz;
        i += sz;
        if (b[i] == '\r') {
            if (len - i < 2)
                return OPHTTPD_PARSE_NEED_MORE;
            i++;
        }
        if (b[i] != '\n')
            return fail(out, 400, "bad chunk terminator");
        i++;
    }
}

int ophttpd_parse_request(const char *buf, size_t len, const ophttpd_limits *limits,
                          ophttpd_parsed *out, char *body_out, size_t body_cap)
{
    size_t max_header =
        limits && limits->max_header_bytes ? limits->max_header_bytes : DEF_MAX_HEADER;
    size_t max_body = limits && limits->max_body_bytes ? limits->max_body_bytes : DEF_MAX_BODY;
    size_t max_nhdr = limits && limits->max_headers ? limits->max_headers : DEF_MAX_NHDR;
    if (max_nhdr > OPHTTPD_MAX_HEADERS_HARD)
        max_nhdr = OPHTTPD_MAX_HEADERS_HARD;

    memset(out, 0, offsetof(ophttpd_parsed, headers));
    out->nheaders = 0;
    out->chunked = 0;
    out->keep_alive = 0;
    out->header_len = out->body_len = out->consumed = 0;
    out->body = NULL;
    out->error_status = 0;
    out->error_msg = NULL;

    /* Tolerate the blank lines some clients send between requests (RFC 9112 2.2). */
    size_t i = 0;
    while (i < len && (buf[i] == '\r' || buf[i] == '\n') && i < 8)
        i++;

    /* the request line */
    long le = line_end(buf, len, i);
    if (le < 0)
        return len > max_header ? fail(out, 431, "request header fields too large")
                                : OPHTTPD_PARSE_NEED_MORE;
    if ((size_t)le >= max_header)
        return fail(out, 431, "request header fields too large");
    size_t e = (size_t)le;
    if (e > i && buf[e - 1] == '\r')
        e--;
    int rc = parse_request_line(buf + i, e - i, out);
    if (rc < 0)
        return rc;
    i = (size_t)le + 1;

    size_t clen = 0;
    int have_clen = 0, have_te = 0;
    for (;;) {
        le = line_end(buf, len, i);
        if (le < 0)
            return len > max_header ? fail(out, 431, "request header fields too large")
                                    : OPHTTPD_PARSE_NEED_MORE;
        if ((size_t)le >= max_header)
            return fail(out, 431, "request header fields too large");
        e = (size_t)le;
        if (e > i && buf[e - 1] == '\r')
            e--;
        if (e == i) {
            i = (size_t)le + 1;
            break;
        }
        if (out->nheaders >= max_nhdr)
            return fail(out, 431, "too many header fields");
        ophttpd_hfield *h = &out->headers[out->nheaders];
        rc = parse_header_line(buf + i, e - i, h, out);
        if (rc < 0)
            return rc;
        out->nheaders++;
        if (span_ieq(h->name, "content-length")) {
            size_t v;
            if (parse_decimal(h->value, &v) < 0)
                return fail(out, 400, "bad Content-Length");
            if (have_clen && v != clen)
                return fail(out, 400, "conflicting Content-Length");
            clen = v;
            have_clen = 1;
        } else if (span_ieq(h->name, "transfer-encoding")) {
            if (have_te || !span_ieq(h->value, "chunked"))
                return fail(out, 501, "unsupported Transfer-Encoding");
            have_te = 1;
        }
        i = (size_t)le + 1;
    }
    out->header_len = i;
    if (have_te && have_clen)
        return fail(out, 400, "both Content-Length and Transfer-Encoding");

    out->keep_alive = out->minor_version >= 1;
    for (size_t k = 0; k < out->nheaders; k++) {
        if (!span_ieq(out->headers[k].name, "connection"))
            continue;
        if (list_has(out->headers[k].value, "close"))
            out->keep_alive = 0;
        else if (list_has(out->headers[k].value, "keep-alive"))
            out->keep_alive = 1;
    }

    if (have_te) {
        out->chunked = 1;
        return parse_chunked(buf, len, i, max_body, out, body_out, body_cap);
    }
    if (clen > max_body)
        return fail(out, 413, "request body too large");
    if (len - i < clen)
        return OPHTTPD_PARSE_NEED_MORE;
    out->body = buf + i;
    out->body_len = clen;
    out->consumed = i + clen;
    return OPHTTPD_PARSE_COMPLETE;
}
