/*
 * fakeapi_cli: a minimal raw HTTP(S) client for tests of ophttpd and fakeapi.
 *
 * One connection per call: connect to 127.0.0.1:port, TLS (OpenSSL over memory
 * BIOs, verifying the server against ca_pem and IP 127.0.0.1) when `tls`, send
 * the raw request bytes as given, and collect every byte received until the
 * first response is complete (or, with until_eof, until the server closes).
 * It deliberately does not use lib/http: it tests the server side alone.
 *
 *   fakeapi_cli *c;
 *   fakeapi_cli_start(&c, &loop, port, ca_pem, 1, req, strlen(req), 0);
 *   while (!fakeapi_cli_done(c)) uv_run(&loop, UV_RUN_ONCE);
 *   const fakeapi_cli_result *r = fakeapi_cli_result_of(c); ... fakeapi_cli_free(c);
 *
 * fakeapi_cli_free() closes the handles; run the loop afterwards so their close
 * callbacks run (the struct is freed in the last one).
 */
#ifndef OPTIPOD_TEST_FAKEAPI_CLIENT_H
#define OPTIPOD_TEST_FAKEAPI_CLIENT_H

#include <stddef.h>
#include <uv.h>

typedef struct fakeapi_cli fakeapi_cli;

typedef struct fakeapi_cli_result {
    int error; /* 0, a libuv error (connect/read), or -EPROTO: TLS handshake failed */
    int eof;   /* the server closed the connection */
    char *raw; /* every (decrypted) byte received, NUL-terminated */
    size_t raw_len;
    int status;    /* of the first response, 0 when none parsed */
    char *headers; /* header block of the first response (NUL-terminated), or NULL */
    char *body;    /* decoded body of the first response (chunks joined), or NULL */
    size_t body_len;
    int complete; /* the first response was completely framed */
} fakeapi_cli_result;

int fakeapi_cli_start(fakeapi_cli **out, uv_loop_t *loop, int port, const char *ca_pem, int tls,
                      const char *req, size_t len, int until_eof);
int fakeapi_cli_done(const fakeapi_cli *c);
const fakeapi_cli_result *fakeapi_cli_result_of(const fakeapi_cli *c);
/* Bytes of the response body so far (chunked bodies decoded); for watch tests. */
const char *fakeapi_cli_body_so_far(fakeapi_cli *c, size_t *len);
void fakeapi_cli_free(fakeapi_cli *c);
/* Send more bytes on the connection (after the request; for slow-client tests). */
int fakeapi_cli_send(fakeapi_cli *c, const char *data, size_t len);

/*
 * Blocking convenience: run the loop until the exchange finishes, copy the
 * result into *out (caller releases with fakeapi_cli_result_release) and close
 * the client. Must not be called from a loop callback.
 */
int fakeapi_cli_run(uv_loop_t *loop, int port, const char *ca_pem, int tls, const char *req,
                    size_t len, int until_eof, fakeapi_cli_result *out);
void fakeapi_cli_result_release(fakeapi_cli_result *r);

/* Build "METHOD path HTTP/1.1" with Host, Content-Type (when ct), Content-Length
 * (when body) and extra header lines ("Name: v\r\n..."); caller frees. */
char *fakeapi_cli_format(const char *method, const char *path, const char *ct, const char *body,
                         const char *extra_headers);

/*
 * Parse one HTTP/1.1 response from raw[0..len): returns 1 complete, 0 need more,
 * -1 malformed. On 1 or 0 with headers parsed, *status is set; body (malloc'd,
 * decoded) and headers are filled when complete (or, with partial_ok, as far as
 * decoded so far).
 */
int fakeapi_cli_parse_response(const char *raw, size_t len, int partial_ok, int *status,
                               char **headers, char **body, size_t *body_len, size_t *consumed);

#endif
