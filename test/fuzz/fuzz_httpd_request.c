/*
 * libFuzzer target for ophttpd_parse_request(): arbitrary bytes must never
 * crash, read out of bounds or loop, and a COMPLETE parse must be
 * self-consistent (spans inside the buffer, consumed <= len, the chunked body
 * decoded into the caller's buffer has the measured length).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/httpd.h"

static int inside(ophttpd_span s, const char *buf, size_t len)
{
    return s.n == 0 || (s.p >= buf && s.p + s.n <= buf + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ophttpd_parsed p;
    /* small limits so the 413/431 paths are reached often */
    ophttpd_limits lim = {.max_header_bytes = 2048, .max_body_bytes = 4096, .max_headers = 16};
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    int rc = ophttpd_parse_request(buf, size, &lim, &p, NULL, 0);
    if (rc == OPHTTPD_PARSE_COMPLETE) {
        if (p.consumed > size || !inside(p.method, buf, size) || !inside(p.path, buf, size) ||
            !inside(p.query, buf, size) || p.nheaders > 16 || p.body_len > 4096)
            abort();
        for (size_t i = 0; i < p.nheaders; i++)
            if (!inside(p.headers[i].name, buf, size) || !inside(p.headers[i].value, buf, size))
                abort();
        if (p.chunked) {
            size_t n = p.body_len;
            char *body = malloc(n + 1);
            if (body) {
                int rc2 = ophttpd_parse_request(buf, size, &lim, &p, body, n + 1);
                if (rc2 != OPHTTPD_PARSE_COMPLETE || p.body_len != n || p.body != body ||
                    body[n] != '\0')
                    abort();
                free(body);
            }
        } else if (p.body_len && !inside((ophttpd_span){p.body, p.body_len}, buf, size)) {
            abort();
        }
    } else if (rc == OPHTTPD_PARSE_ERROR) {
        if (p.error_status != 400 && p.error_status != 413 && p.error_status != 431 &&
            p.error_status != 501)
            abort();
    } else if (rc != OPHTTPD_PARSE_NEED_MORE) {
        abort();
    }
    /* every prefix of the input must parse too (incremental arrival) */
    if (size > 0 && size < 512)
        (void)ophttpd_parse_request(buf, size / 2, &lim, &p, NULL, 0);
    free(buf);
    return 0;
}
