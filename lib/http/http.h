/*
 * ophttp: an HTTP client on libcurl's multi interface, driven by one libuv loop.
 *
 * curl tells us which sockets it wants watched (CURLMOPT_SOCKETFUNCTION → one
 * uv_poll_t per socket) and when to wake it (CURLMOPT_TIMERFUNCTION → one
 * uv_timer_t); the loop calls curl_multi_socket_action() back. Nothing blocks.
 * TLS is OpenSSL through libcurl; HTTP/2 is used when the server offers it
 * (ALPN), with multiplexing and keep-alive across requests.
 *
 * Ownership and callbacks (libuv's rules):
 *  - ophttp_request() copies everything in its options (URL, headers, body,
 *    TLS material); the caller may free them on return.
 *  - A request that fails to start returns a negative errno and never calls
 *    its callbacks. One that starts calls on_done exactly once, unless it is
 *    cancelled first; after on_done returns, the request is freed.
 *  - ophttp_cancel() may be called from any callback, including on_data of the
 *    same request; no callback of that request runs afterwards.
 *  - on_data receives the body of 2xx responses as it arrives, in chunks of any
 *    size (chunk boundaries mean nothing). A non-2xx body is always buffered
 *    (capped by max_body) and handed to on_done, so errors can be parsed.
 */
#ifndef OPTIPOD_HTTP_HTTP_H
#define OPTIPOD_HTTP_HTTP_H

#include <stddef.h>
#include <uv.h>

typedef struct ophttp_client ophttp_client;
typedef struct ophttp_req ophttp_req;

/* Transport errors (ophttp_response.error); HTTP statuses are not errors here. */
enum ophttp_error {
    OPHTTP_OK = 0,
    OPHTTP_ECONNECT = -1, /* refused, unreachable, DNS */
    OPHTTP_ETIMEOUT = -2, /* timeout_ms, connect or low-speed timeout */
    OPHTTP_ETLS = -3,     /* handshake or certificate verification failed */
    OPHTTP_ETOOBIG = -4,  /* the body passed max_body */
    OPHTTP_EABORTED = -5, /* on_data returned non-zero */
    OPHTTP_EIO = -6,      /* connection dropped mid-response, bad framing, other */
};

typedef struct ophttp_tls {
    const char *ca_file; /* PEM bundle to trust instead of the system's, or NULL */
    const char *ca_pem;  /* in-memory PEM (kubeconfig certificate-authority-data) */
    size_t ca_pem_len;
    const char *cert_file; /* client certificate, PEM */
    const char *key_file;  /* client key, PEM */
    const char *cert_pem;  /* in-memory client certificate */
    size_t cert_pem_len;
    const char *key_pem; /* in-memory client key */
    size_t key_pem_len;
    int insecure_skip_verify; /* no peer or host verification (loudly logged by callers) */
} ophttp_tls;

typedef struct ophttp_response {
    long status;           /* HTTP status, 0 when no response arrived */
    int error;             /* enum ophttp_error */
    const char *error_msg; /* what went wrong at the transport level, "" if nothing */
    const char *body;      /* buffered body (never NULL, NUL-terminated); "" when streamed */
    size_t body_len;
    const char *content_type; /* "" when absent */
    long retry_after_s;       /* Retry-After in seconds, -1 when absent or unparsable */
    int http_version;         /* 1 or 2 */
} ophttp_response;

/* Return non-zero to abort the request (on_done then reports OPHTTP_EABORTED). */
typedef int (*ophttp_data_cb)(ophttp_req *req, const char *data, size_t len, void *ud);
typedef void (*ophttp_done_cb)(ophttp_req *req, const ophttp_response *res, void *ud);

typedef struct ophttp_req_opts {
    const char *method;         /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;            /* absolute */
    const char *const *headers; /* NULL-terminated "Name: value" strings, or NULL */
    const char *body;           /* request body, or NULL */
    size_t body_len;
    long timeout_ms;         /* whole request; 0 = no limit (watches) */
    long connect_timeout_ms; /* 0 = 10 s */
    long low_speed_time_s;   /* abort when < 1 byte/s for this long; 0 = off */
    size_t max_body;         /* cap for a buffered body; 0 = 64 MiB */
    const ophttp_tls *tls;   /* NULL = system trust store */
    ophttp_data_cb on_data;  /* NULL = buffer the body */
    ophttp_done_cb on_done;  /* required */
    void *ud;
} ophttp_req_opts;

/* Create a client bound to `loop`. user_agent NULL = "optipod/<version>". */
int ophttp_client_new(ophttp_client **out, uv_loop_t *loop, const char *user_agent);
/* Cancel every request (no callbacks), close all handles; `on_closed` runs from
 * the loop once every handle is closed, then the client is freed. */
void ophttp_client_close(ophttp_client *c, void (*on_closed)(void *ud), void *ud);
/* Start a request. Returns 0 (and *out, which may be NULL) or a negative errno. */
int ophttp_request(ophttp_client *c, const ophttp_req_opts *opts, ophttp_req **out);
void ophttp_cancel(ophttp_req *req);
/* Run release(ud) when the request's memory goes: after on_done returns, on
 * cancel, or when the client closes. Only for freeing what ud points to (no
 * calls into ophttp). Set it right after ophttp_request() returns. */
void ophttp_set_release(ophttp_req *req, void (*release)(void *ud));
/* Requests started and not yet done or cancelled. */
size_t ophttp_inflight(const ophttp_client *c);
/* New connections opened by the requests that finished so far (keep-alive and
 * HTTP/2 reuse keep this low). */
size_t ophttp_connections(const ophttp_client *c);

#endif
