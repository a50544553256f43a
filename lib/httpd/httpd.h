/*
 * ophttpd: a small HTTP/1.1 server on libuv TCP, with optional TLS.
 *
 * TLS is OpenSSL driven through two memory BIOs (the h2o pattern): bytes read
 * from the socket go into the read BIO, SSL_read() yields plaintext, and what
 * SSL writes into the write BIO is drained to uv_write(). No OpenSSL call ever
 * touches the socket.
 *
 * Requests: one at a time per connection (keep-alive, no pipelining: bytes of a
 * next request are kept until the current one is answered). Bodies may be
 * Content-Length or chunked. Bad framing → 400, body too big → 413, headers too
 * big → 431, each with a short text body, then the connection closes.
 *
 * The handler gets an ophttpd_req and must eventually do exactly one of:
 *  - ophttpd_respond()  (now, or later from a timer: the req stays valid);
 *  - ophttpd_stream_begin() ... ophttpd_stream_write()* ... ophttpd_stream_end();
 *  - (tests only) ophttpd_fault_abort() from httpd/fault.h.
 * If the client goes away first, the req's on_gone callback (if set) runs and
 * ophttpd_req_gone() turns true; the handler must still finish the req with one
 * of the calls above (they become no-ops that free it).
 *
 * Ownership and lifecycle (libuv's rules): ophttpd_new() allocates the server;
 * ophttpd_close() closes the listener and every connection and frees the server
 * from the loop after the last handle closed, then calls on_closed. Requests
 * still held by the handler at close are reported gone and must still be
 * finished by it (ophttpd_close waits for that). Strings inside a req are owned
 * by the req and valid until it is finished.
 */
#ifndef OPTIPOD_HTTPD_HTTPD_H
#define OPTIPOD_HTTPD_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ophttpd ophttpd;
typedef struct ophttpd_req ophttpd_req;

/* ---- the pure request parser ----------------------------------------------------------- */

typedef struct ophttpd_limits {
    size_t max_header_bytes; /* request line + headers; 0 = 16 KiB */
    size_t max_body_bytes;   /* 0 = 3 MiB */
    size_t max_headers;      /* header count; 0 = 100 */
} ophttpd_limits;

#define OPHTTPD_MAX_HEADERS_HARD 256

typedef struct ophttpd_span {
    const char *p; /* points into the parsed buffer; not NUL-terminated */
    size_t n;
} ophttpd_span;

typedef struct ophttpd_hfield {
    ophttpd_span name, value;
} ophttpd_hfield;

enum ophttpd_parse_rc {
    OPHTTPD_PARSE_NEED_MORE = 0, /* call again with more bytes (same prefix) */
    OPHTTPD_PARSE_COMPLETE = 1,  /* out is filled; out->consumed bytes form the request */
    OPHTTPD_PARSE_ERROR = -1,    /* out->error_status is 400, 413, 431 or 501 */
};

typedef struct ophttpd_parsed {
    ophttpd_span method, target, path, query; /* query excludes '?' */
    int minor_version;                        /* HTTP/1.<minor> */
    ophttpd_hfield headers[OPHTTPD_MAX_HEADERS_HARD];
    size_t nheaders;
    int chunked;
    int keep_alive;    /* per version and Connection header */
    size_t header_len; /* bytes of request line + headers incl. the blank line */
    size_t body_len;   /* decoded body length */
    size_t consumed;   /* total bytes of the request */
    /* The decoded body: for Content-Length bodies it points into the buffer;
     * for chunked bodies it is written into `body_out` when given. */
    const char *body;
    int error_status;
    const char *error_msg; /* static string */
} ophttpd_parsed;

/*
 * Parse one request from buf[0..len). Pure: no allocation, no I/O. For a
 * chunked body, the decoded bytes are copied to body_out (capacity body_cap,
 * must be >= the body limit + 1 to get COMPLETE; NULL → only validates and
 * measures, out->body NULL). Returns enum ophttpd_parse_rc.
 */
int ophttpd_parse_request(const char *buf, size_t len, const ophttpd_limits *limits,
                          ophttpd_parsed *out, char *body_out, size_t body_cap);

/* ---- the server ------------------------------------------------------------------------ */

typedef void (*ophttpd_handler)(ophttpd_req *req, void *ud);

typedef struct ophttpd_opts {
    const char *bind;     /* "127.0.0.1" (default), "0.0.0.0", "::1", ... */
    int port;             /* 0 = ephemeral: read it with ophttpd_port() */
    const char *cert_pem; /* TLS when both are set (PEM in memory; chain allowed) */
    const char *key_pem;
    ophttpd_limits limits;
    size_t max_connections;   /* 0 = 256; more are accepted and closed at once */
    unsigned idle_timeout_ms; /* time to receive each whole request, counted from the
                                 accept or the previous response; 0 = 60 s */
    ophttpd_handler on_request;
    void *ud;
    /* Optional: called on each accepted connection; return non-zero to close it at once. */
    int (*on_accept)(void *ud);
    /* Optional: called when a TLS handshake completes. */
    void (*on_handshake)(void *ud);
} ophttpd_opts;

/* Listen. Copies opts. Returns 0 or a negative errno (-EINVAL bad options or TLS
 * material, or bind/listen's error such as UV_EADDRINUSE). When bind or listen
 * fails, the listener handle is closed through the loop (no callback): run the
 * loop once before uv_loop_close(). */
int ophttpd_new(ophttpd **out, uv_loop_t *loop, const ophttpd_opts *opts);
int ophttpd_port(const ophttpd *srv);
/* Replace the certificate for connections accepted from now on. */
int ophttpd_set_tls(ophttpd *srv, const char *cert_pem, const char *key_pem);
/* Close every connection now (requests in flight are reported gone). */
void ophttpd_close_connections(ophttpd *srv);
size_t ophttpd_connection_count(const ophttpd *srv);
void ophttpd_close(ophttpd *srv, void (*on_closed)(void *ud), void *ud);

/* Request accessors. Strings are NUL-terminated copies owned by the req. */
const char *ophttpd_method(const ophttpd_req *req);
const char *ophttpd_path(const ophttpd_req *req);   /* without the query */
const char *ophttpd_query(const ophttpd_req *req);  /* raw, without '?'; "" when none */
const char *ophttpd_target(const ophttpd_req *req); /* path + "?" + query as received */
/* Case-insensitive; the first value, or NULL. */
const char *ophttpd_header(const ophttpd_req *req, const char *name);
const char *ophttpd_body(const ophttpd_req *req, size_t *len); /* NUL-terminated */
/* Percent-decoded value of query parameter `name` (malloc'd, caller frees), or
 * NULL when absent. "a" in "?a" yields "". */
char *ophttpd_query_param(const ophttpd_req *req, const char *name);
/* The same on a raw query string. */
char *ophttpd_query_lookup(const char *query, const char *name);
ophttpd *ophttpd_req_server(const ophttpd_req *req);

/* Per-request user data and a callback for when the client disconnects. */
void ophttpd_req_set_ud(ophttpd_req *req, void *ud);
void *ophttpd_req_ud(const ophttpd_req *req);
void ophttpd_req_on_gone(ophttpd_req *req, void (*on_gone)(ophttpd_req *req, void *ud));
int ophttpd_req_gone(const ophttpd_req *req);

/*
 * Answer and finish the request. extra_headers: NULL or "Name: value\r\n" lines
 * (each ending in CRLF). Returns 0 or a negative errno; the req is finished
 * (freed) either way.
 */
int ophttpd_respond(ophttpd_req *req, int status, const char *content_type, const char *body,
                    size_t len, const char *extra_headers);
/* Start a chunked response. Returns 0 or negative errno (req still needs finishing). */
int ophttpd_stream_begin(ophttpd_req *req, int status, const char *content_type,
                         const char *extra_headers);
/* Send one chunk (len 0 is ignored). -EPIPE when the client is gone. */
int ophttpd_stream_write(ophttpd_req *req, const char *data, size_t len);
/* Last chunk; finishes (frees) the request; the connection stays for keep-alive. */
int ophttpd_stream_end(ophttpd_req *req);

const char *ophttpd_status_text(int status);

/* ---- certificates ---------------------------------------------------------------------- */

/* PEM strings (malloc'd, caller frees with ophttpd_cert_release). */
typedef struct ophttpd_cert {
    char *ca_pem;     /* self-signed CA certificate */
    char *ca_key_pem; /* its key */
    char *cert_pem;   /* serving certificate signed by the CA */
    char *key_pem;    /* its key */
} ophttpd_cert;

/*
 * Generate an EC P-256 CA (CN=cn_prefix+"-ca") and a serving certificate for
 * `sans` (NULL-terminated; entries that parse as IPv4/IPv6 become IP SANs,
 * others DNS), valid from now-1h for `days`. Returns 0 or -ENOMEM/-EIO.
 */
int ophttpd_cert_generate(ophttpd_cert *out, const char *cn_prefix, const char *const *sans,
                          int days);
void ophttpd_cert_release(ophttpd_cert *c);

#endif
