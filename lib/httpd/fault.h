/*
 * ophttpd fault injection: the two calls test/support (the fake API server)
 * and test_httpd use to break a response on purpose. Not part of ophttpd's
 * API (httpd.h); nothing in lib/ or cmd/ includes this header.
 *
 * Like ophttpd_respond() and the stream calls, ophttpd_fault_abort() finishes
 * the request (frees it); ophttpd_fault_write_raw() does not.
 */
#ifndef OPTIPOD_HTTPD_FAULT_H
#define OPTIPOD_HTTPD_FAULT_H

#include <stddef.h>

#include "httpd/httpd.h"

/* Send raw bytes as-is, outside chunk framing (cut a chunk). -EPIPE when the client is gone. */
int ophttpd_fault_write_raw(ophttpd_req *req, const char *data, size_t len);
/* Drop the connection once the bytes already written are flushed (no TLS close_notify,
 * no final chunk: the peer sees the response cut) and finish (free) the request. */
void ophttpd_fault_abort(ophttpd_req *req);

#endif
