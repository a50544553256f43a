/*
 * ophttp: libcurl multi on libuv.
 *
 * Re-entrancy is the hard part. curl forbids curl_multi_add_handle() and
 * curl_multi_remove_handle() from inside its own callbacks (on_data runs inside
 * curl_multi_socket_action), and user callbacks may cancel, start requests or
 * close the client. So every entry from the loop (poll or timer) raises
 * c->depth; while it is raised, cancels and new requests are only recorded
 * (c->dirty) and client_flush() applies them once curl has returned. Memory of a
 * uv handle is freed only in its close callback, and a poll handle is closed
 * only when curl says CURL_POLL_REMOVE (before it closes the socket) or at
 * client close after curl has let go of every socket.
 */
#include "http/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/buf.h"

#define OPHTTP_DEFAULT_CONNECT_MS 10000L
#define OPHTTP_CT_MAX             128 /* a longer Content-Type is truncated */

typedef struct ophttp_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    ophttp_client *c;
    struct ophttp_sock *prev, *next; /* live list (not yet closing) */
} ophttp_sock;

struct ophttp_req {
    ophttp_client *c;
    CURL *easy;
    struct curl_slist *headers;
    char *body; /* our copy of the request body */
    opbuf resp; /* buffered response body */
    ophttp_data_cb on_data;
    ophttp_done_cb on_done;
    void *ud;
    void (*release)(void *ud);
    long retry_after_s;
    char content_type[OPHTTP_CT_MAX];
    char errbuf[CURL_ERROR_SIZE];
    int mode;      /* MODE_* for the current response */
    int added;     /* handed to curl_multi_add_handle */
    int cancelled; /* no callbacks any more; freed at the next flush */
    int in_done;   /* on_done is running; the finish path frees it */
    int too_big, aborted;
    struct ophttp_req *prev, *next;
};

enum { MODE_UNKNOWN = 0, MODE_BUFFER, MODE_STREAM };

struct ophttp_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    char *user_agent;
    ophttp_req *reqs; /* every request not yet freed */
    ophttp_sock *socks;
    size_t inflight;
    size_t connects;
    int depth; /* > 0 while inside a loop entry (curl or user callbacks) */
    int dirty; /* deferred adds or frees are waiting for client_flush() */
    int closing, closed_all;
    unsigned pending_closes;
    void (*on_closed)(void *ud);
    void *closed_ud;
};

static void client_flush(ophttp_client *c);
static void client_finish_close(ophttp_client *c);

/* --- small helpers -------------------------------------------------------------------- */

static void req_link(ophttp_client *c, ophttp_req *r)
{
    r->prev = NULL;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
}

static void req_unlink(ophttp_client *c, ophttp_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Free a request that is no longer in any curl callback. */
static void req_destroy(ophttp_req *r)
{
    ophttp_client *c = r->c;
    req_unlink(c, r);
    if (r->easy) {
        if (r->added)
            curl_multi_remove_handle(c->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    free(r->body);
    opbuf_release(&r->resp);
    if (r->release)
        r->release(r->ud);
    free(r);
}

static void maybe_closed(ophttp_client *c)
{
    if (!c->closing || !c->closed_all || c->pending_closes)
        return;
    void (*cb)(void *) = c->on_closed;
    void *ud = c->closed_ud;
    free(c->user_agent);
    free(c);
    if (cb)
        cb(ud);
}

static void on_handle_closed(uv_handle_t *h)
{
    ophttp_client *c = h->data;
    c->pending_closes--;
    maybe_closed(c);
}

static void on_sock_closed(uv_handle_t *h)
{
    ophttp_sock *s = h->data;
    ophttp_client *c = s->c;
    free(s);
    c->pending_closes--;
    maybe_closed(c);
}

static void sock_close(ophttp_sock *s)
{
    ophttp_client *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    c->pending_closes++;
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* --- Retry-After ---------------------------------------------------------------------- */

/* "120" or an HTTP-date; -1 when neither. */
static long parse_retry_after(const char *v, size_t n)
{
    char tmp[128];
    while (n && isspace((unsigned char)*v)) {
        v++;
        n--;
    }
    while (n && isspace((unsigned char)v[n - 1]))
        n--;
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    size_t i = 0;
    while (i < n && isdigit((unsigned char)tmp[i]))
        i++;
    if (i == n) {
        errno = 0;
        long s = strtol(tmp, NULL, 10);
        if (errno == ERANGE)
            return LONG_MAX;
        return s;
    }
    time_t t = curl_getdate(tmp, NULL);
    if (t < 0)
        return -1;
    time_t now = time(NULL);
    return t > now ? (long)(t - now) : 0;
}

/* --- curl callbacks ------------------------------------------------------------------- */

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    ophttp_req *r = ud;
    size_t len = sz * n;
    if (r->cancelled)
        return 0;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new response (after 100 Continue, say): forget the previous headers. */
        r->retry_after_s = -1;
        r->mode = MODE_UNKNOWN;
        return len;
    }
    static const char ra[] = "retry-after:";
    if (len > sizeof(ra) - 1 && strncasecmp(p, ra, sizeof(ra) - 1) == 0)
        r->retry_after_s = parse_retry_after(p + sizeof(ra) - 1, len - (sizeof(ra) - 1));
    return len;
}

static size_t on_write(char *p, size_t sz, size_t n, void *ud)
{
    ophttp_req *r = ud;
    size_t len = sz * n;
    if (r->cancelled)
        return 0;
    if (r->mode == MODE_UNKNOWN) {
        long code = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        r->mode = (r->on_data && code >= 200 && code < 300) ? MODE_STREAM : MODE_BUFFER;
    }
    if (r->mode == MODE_STREAM) {
        int rc = r->on_data(r, p, len, r->ud);
        if (r->cancelled)
            return 0;
        if (rc) {
            r->aborted = 1;
            return 0;
        }
        return len;
    }
    if (opbuf_append(&r->resp, p, len)) {
        r->too_big = 1;
        return 0;
    }
    return len;
}

static int map_error(const ophttp_req *r, CURLcode rc)
{
    if (r->too_big)
        return OPHTTP_ETOOBIG;
    if (r->aborted)
        return OPHTTP_EABORTED;
    switch (rc) {
    case CURLE_OK:
        return OPHTTP_OK;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return OPHTTP_ECONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return OPHTTP_ETIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        return OPHTTP_ETLS;
    case CURLE_FILESIZE_EXCEEDED:
        return OPHTTP_ETOOBIG;
    default:
        return OPHTTP_EIO;
    }
}

/* Report a finished transfer and free it. Runs outside curl's callbacks. */
static void req_finish(ophttp_req *r, CURLcode rc)
{
    ophttp_client *c = r->c;
    ophttp_response res;
    memset(&res, 0, sizeof(res));
    long code = 0, ver = 0, nconn = 0;
    char *ct = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &ver);
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &nconn);
    curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
    c->connects += (size_t)(nconn > 0 ? nconn : 0);
    if (ct) {
        size_t n = strlen(ct);
        if (n >= sizeof(r->content_type))
            n = sizeof(r->content_type) - 1;
        memcpy(r->content_type, ct, n);
        r->content_type[n] = '\0';
    }
    res.status = code;
    res.error = map_error(r, rc);
    if (res.error == OPHTTP_ETOOBIG) {
        snprintf(r->errbuf, sizeof(r->errbuf), "response body larger than %zu bytes", r->resp.max);
    } else if (res.error == OPHTTP_EABORTED) {
        snprintf(r->errbuf, sizeof(r->errbuf), "aborted by the body consumer");
    } else if (res.error == OPHTTP_OK) {
        r->errbuf[0] = '\0';
    } else if (!r->errbuf[0]) {
        snprintf(r->errbuf, sizeof(r->errbuf), "%s", curl_easy_strerror(rc));
    }
    res.error_msg = r->errbuf;
    res.body = r->mode == MODE_STREAM ? "" : opbuf_str(&r->resp);
    res.body_len = r->mode == MODE_STREAM ? 0 : r->resp.len;
    res.content_type = r->content_type;
    res.retry_after_s = r->retry_after_s;
    res.http_version = ver == CURL_HTTP_VERSION_2_0 ? 2 : 1;

    c->inflight--;
    r->in_done = 1;
    r->on_done(r, &res, r->ud);
    req_destroy(r);
}

static void check_done(ophttp_client *c)
{
    int left;
    for (;;) {
        CURLMsg *m = curl_multi_info_read(c->multi, &left);
        if (!m)
            break;
        if (m->msg != CURLMSG_DONE)
            continue;
        ophttp_req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (!r || r->cancelled)
            continue; /* freed by client_flush() */
        req_finish(r, m->data.result);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    ophttp_sock *s = h->data;
    ophttp_client *c = s->c;
    int flags = 0, running = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    c->depth++;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    check_done(c);
    c->depth--;
    client_flush(c);
}

static void on_timer(uv_timer_t *t)
{
    ophttp_client *c = t->data;
    int running = 0;
    c->depth++;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
    c->depth--;
    client_flush(c);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *ud)
{
    ophttp_client *c = ud;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    ophttp_client *c = ud;
    ophttp_sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->c = c;
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= UV_WRITABLE;
    /* -1 makes curl fail the transfers on this socket instead of waiting forever. */
    return uv_poll_start(&s->poll, ev, on_poll) == 0 ? 0 : -1;
}

/* --- deferred work -------------------------------------------------------------------- */

static void req_add(ophttp_req *r)
{
    ophttp_client *c = r->c;
    CURLMcode mc = curl_multi_add_handle(c->multi, r->easy);
    if (mc == CURLM_OK) {
        r->added = 1;
        return;
    }
    snprintf(r->errbuf, sizeof(r->errbuf), "cannot start: %s", curl_multi_strerror(mc));
    req_finish(r, CURLE_FAILED_INIT);
}

/* Apply what callbacks deferred: free cancelled requests, start new ones, and
 * finish a close. Callbacks run from here again raise depth, so the list walk
 * never meets a request freed under it; loop until nothing is left. */
static void client_flush(ophttp_client *c)
{
    if (c->depth)
        return;
    while (c->dirty && !c->closed_all) {
        c->dirty = 0;
        c->depth++;
        ophttp_req *r = c->reqs, *next;
        for (; r; r = next) {
            next = r->next;
            if (r->cancelled)
                req_destroy(r);
        }
        for (r = c->reqs; r; r = r->next) {
            if (!r->added && !r->cancelled) {
                req_add(r);
                c->dirty = 1; /* req_add may have called on_done: walk again */
                break;
            }
        }
        c->depth--;
    }
    if (c->closing && !c->closed_all)
        client_finish_close(c);
}

/* --- public API ----------------------------------------------------------------------- */

int ophttp_client_new(ophttp_client **out, uv_loop_t *loop, const char *user_agent)
{
    static int global_done;
    int rc = -ENOMEM;
    *out = NULL;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -EIO;
        global_done = 1;
    }
    ophttp_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->user_agent = strdup(user_agent ? user_agent : "optipod/" OPTIPOD_VERSION);
    if (!c->user_agent)
        goto out;
    c->multi = curl_multi_init();
    if (!c->multi)
        goto out;
    rc = uv_timer_init(loop, &c->timer);
    if (rc)
        goto out;
    c->timer.data = c;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    *out = c;
    return 0;
out:
    if (c->multi)
        curl_multi_cleanup(c->multi);
    free(c->user_agent);
    free(c);
    return rc;
}

static void client_finish_close(ophttp_client *c)
{
    while (c->reqs)
        req_destroy(c->reqs);
    /* From here on curl must not call back into handles we are closing. */
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, NULL);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, NULL);
    /* Stop watching before curl closes the sockets; memory goes in the close cbs. */
    while (c->socks)
        sock_close(c->socks);
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    c->pending_closes++;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    c->closed_all = 1;
}

void ophttp_client_close(ophttp_client *c, void (*on_closed)(void *ud), void *ud)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->on_closed = on_closed;
    c->closed_ud = ud;
    for (ophttp_req *r = c->reqs; r; r = r->next) {
        if (!r->cancelled && !r->in_done) {
            r->cancelled = 1;
            c->inflight--;
        }
    }
    c->dirty = 1;
    client_flush(c);
}

static int set_tls(CURL *e, const ophttp_tls *t)
{
    int bad = 0;
    if (t->ca_file)
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file) != CURLE_OK;
    if (t->ca_pem && t->ca_pem_len) {
        struct curl_blob b = {(void *)t->ca_pem, t->ca_pem_len, CURL_BLOB_COPY};
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b) != CURLE_OK;
    }
    if (t->cert_file)
        bad |= curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file) != CURLE_OK;
    if (t->key_file)
        bad |= curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file) != CURLE_OK;
    if (t->cert_pem && t->cert_pem_len) {
        struct curl_blob b = {(void *)t->cert_pem, t->cert_pem_len, CURL_BLOB_COPY};
        bad |= curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK;
    }
    if (t->key_pem && t->key_pem_len) {
        struct curl_blob b = {(void *)t->key_pem, t->key_pem_len, CURL_BLOB_COPY};
        bad |= curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK;
    }
    if (t->insecure_skip_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return bad ? -EINVAL : 0;
}

int ophttp_request(ophttp_client *c, const ophttp_req_opts *o, ophttp_req **out)
{
    int rc = -EINVAL;
    if (out)
        *out = NULL;
    if (!c || !o || !o->url || !o->method || !o->method[0] || !o->on_done)
        return -EINVAL;
    if (c->closing)
        return -ESHUTDOWN;
    ophttp_req *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->c = c;
    r->on_data = o->on_data;
    r->on_done = o->on_done;
    r->ud = o->ud;
    r->retry_after_s = -1;
    opbuf_init(&r->resp, o->max_body);
    rc = -ENOMEM;
    r->easy = curl_easy_init();
    if (!r->easy)
        goto fail;
    for (const char *const *h = o->headers; h && *h; h++) {
        struct curl_slist *l = curl_slist_append(r->headers, *h);
        if (!l)
            goto fail;
        r->headers = l;
    }
    /* No "Expect: 100-continue" round trip before bodies. */
    struct curl_slist *l = curl_slist_append(r->headers, "Expect:");
    if (!l)
        goto fail;
    r->headers = l;

    CURL *e = r->easy;
    rc = -EINVAL;
    if (curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK)
        goto fail;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Wait for a connection that may multiplex rather than open another. Only
     * over TLS, where ALPN settles h2-or-not at the handshake; on plain HTTP it
     * would wait for the first response, behind any slow request. */
    if (strncasecmp(o->url, "https://", 8) == 0)
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms : OPHTTP_DEFAULT_CONNECT_MS);
    if (o->low_speed_time_s > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s);
    }
    if (strcmp(o->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(o->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
        if (o->body || strcmp(o->method, "DELETE") != 0) {
            r->body = malloc(o->body_len + 1);
            if (!r->body) {
                rc = -ENOMEM;
                goto fail;
            }
            if (o->body_len)
                memcpy(r->body, o->body, o->body_len);
            r->body[o->body_len] = '\0';
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        }
    }
    if (o->tls && set_tls(e, o->tls))
        goto fail;

    req_link(c, r);
    c->inflight++;
    if (c->depth) {
        c->dirty = 1; /* inside curl: add once it has returned */
    } else {
        CURLMcode mc = curl_multi_add_handle(c->multi, e);
        if (mc != CURLM_OK) {
            c->inflight--;
            req_unlink(c, r);
            rc = mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
            goto fail;
        }
        r->added = 1;
    }
    if (out)
        *out = r;
    return 0;
fail:
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    opbuf_release(&r->resp);
    free(r);
    return rc;
}

void ophttp_cancel(ophttp_req *r)
{
    if (!r || r->cancelled || r->in_done)
        return;
    ophttp_client *c = r->c;
    r->cancelled = 1;
    c->inflight--;
    if (c->depth) {
        c->dirty = 1;
        return;
    }
    req_destroy(r);
}

size_t ophttp_inflight(const ophttp_client *c)
{
    return c ? c->inflight : 0;
}

size_t ophttp_connections(const ophttp_client *c)
{
    return c ? c->connects : 0;
}

void ophttp_set_release(ophttp_req *r, void (*release)(void *ud))
{
    if (r)
        r->release = release;
}
