#include "server/probes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/httpd.h"

struct probes {
    ophttpd *srv;
    probes_opts opts;
    void (*on_closed)(void *ud);
    void *closed_ud;
};

int probes_parse_bind(const char *bind, char *host, size_t hostcap, int *port)
{
    const char *colon = strrchr(bind, ':');
    if (!colon || hostcap == 0)
        return -EINVAL;
    size_t hlen = (size_t)(colon - bind);
    /* "[::1]:8080" → "::1" */
    const char *h = bind;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= hostcap)
        return -EINVAL;
    if (hlen == 0)
        snprintf(host, hostcap, "0.0.0.0");
    else
        snprintf(host, hostcap, "%.*s", (int)hlen, h);
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return -EINVAL;
    *port = (int)p;
    return 0;
}

static void probes_on_request(ophttpd_req *req, void *ud)
{
    probes *p = ud;
    const char *path = ophttpd_path(req);
    const char *method = ophttpd_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        ophttpd_respond(req, 405, "text/plain", "method not allowed\n", 19, NULL);
        return;
    }
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/livez") == 0) {
        ophttpd_respond(req, 200, "text/plain", "ok\n", 3, NULL);
        return;
    }
    opbuf out;
    opbuf_init(&out, 16 << 20);
    if (strcmp(path, "/readyz") == 0) {
        int ready = p->opts.ready ? p->opts.ready(&out, p->opts.ud) : 1;
        if (ready)
            ophttpd_respond(req, 200, "text/plain", "ok\n", 3, NULL);
        else if (opbuf_puts(&out, "\n") == 0) /* the reasons, when they could be written */
            ophttpd_respond(req, 503, "text/plain", opbuf_str(&out), out.len, NULL);
        else
            ophttpd_respond(req, 503, "text/plain", "not ready\n", 10, NULL);
    } else if (strcmp(path, "/metrics") == 0 && p->opts.metrics) {
        /* the page is written piece by piece and checked once: a failed buffer stays failed */
        if (p->opts.metrics(&out, p->opts.ud) || opbuf_error(&out))
            ophttpd_respond(req, 500, "text/plain", "metrics page too large\n", 23, NULL);
        else
            ophttpd_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", opbuf_str(&out),
                            out.len, NULL);
    } else {
        ophttpd_respond(req, 404, "text/plain", "not found\n", 10, NULL);
    }
    opbuf_release(&out);
}

int probes_start(probes **out, uv_loop_t *loop, const probes_opts *opts, operr *err)
{
    char host[256];
    int port;
    *out = NULL;
    if (probes_parse_bind(opts->bind, host, sizeof host, &port) != 0)
        return operr_set(err, -EINVAL, "bind address \"%s\": want host:port (e.g. :8081)",
                         opts->bind);
    probes *p = calloc(1, sizeof *p);
    if (!p)
        return operr_set(err, -ENOMEM, "out of memory");
    p->opts = *opts;
    ophttpd_opts ho = {.bind = host,
                       .port = port,
                       .on_request = probes_on_request,
                       .ud = p,
                       .max_connections = 64};
    int rc = ophttpd_new(&p->srv, loop, &ho);
    if (rc) {
        free(p);
        return operr_set(err, rc, "cannot listen on \"%s\": %s", opts->bind, strerror(-rc));
    }
    *out = p;
    return 0;
}

int probes_port(const probes *p)
{
    return ophttpd_port(p->srv);
}

static void probes_closed(void *ud)
{
    probes *p = ud;
    void (*cb)(void *) = p->on_closed;
    void *cud = p->closed_ud;
    free(p);
    if (cb)
        cb(cud);
}

void probes_stop(probes *p, void (*on_closed)(void *ud), void *ud)
{
    p->on_closed = on_closed;
    p->closed_ud = ud;
    ophttpd_close(p->srv, probes_closed, p);
}
