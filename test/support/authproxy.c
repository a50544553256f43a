/*
 * authproxy: the auth-demanding loopback proxy for tests. See authproxy.h.
 */
#include "support/authproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define AP_MAX_REQUEST (8 << 20)

static int write_all(int fd, const char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The value of header `name` in the head (lines after the request line), or "". */
static void header_value(const char *head, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    size_t n = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l && l[2] && !(l[2] == '\r' && l[3] == '\n');
         l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            const char *v = h + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vn = strcspn(v, "\r");
            if (vn >= cap)
                vn = cap - 1;
            memcpy(out, v, vn);
            out[vn] = 0;
            return;
        }
    }
}

static void reply(int fd, int status, const char *text)
{
    char b[512];
    int n = snprintf(b, sizeof b,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, status == 401 ? "Unauthorized" : "Forbidden", strlen(text), text);
    write_all(fd, b, (size_t)n);
}

static int want_auth(const authproxy *p, char *expect, size_t cap)
{
    if (p->r.bearer) {
        snprintf(expect, cap, "Bearer %s", p->r.bearer);
        return 1;
    }
    if (p->r.basic) {
        unsigned char b64[512];
        size_t n = strlen(p->r.basic);
        if (n > 300)
            return 0;
        EVP_EncodeBlock(b64, (const unsigned char *)p->r.basic, (int)n);
        snprintf(expect, cap, "Basic %s", (const char *)b64);
        return 1;
    }
    return 0;
}

/* Forward `req` (head rewritten to Connection: close) and relay the answer. */
static void forward(authproxy *p, int cfd, const char *req, size_t head_len, size_t total)
{
    int u = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->upstream)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 60};
    setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (u < 0 || connect(u, (struct sockaddr *)&a, sizeof a) != 0) {
        if (u >= 0)
            close(u);
        reply(cfd, 403, "authproxy: upstream down\n");
        return;
    }
    /* The head without Connection/Keep-Alive lines, then ours. */
    char *head = malloc(head_len + 64);
    size_t hn = 0;
    const char *line = req;
    const char *end = req + head_len - 2; /* the final CRLF */
    while (line < end) {
        const char *nl = strstr(line, "\r\n");
        size_t ln = (size_t)(nl - line) + 2;
        if (strncasecmp(line, "Connection:", 11) != 0 &&
            strncasecmp(line, "Keep-Alive:", 11) != 0) {
            memcpy(head + hn, line, ln);
            hn += ln;
        }
        line += ln;
    }
    memcpy(head + hn, "Connection: close\r\n\r\n", 21);
    hn += 21;
    if (write_all(u, head, hn) == 0 && write_all(u, req + head_len, total - head_len) == 0) {
        char buf[65536];
        ssize_t r;
        while ((r = recv(u, buf, sizeof buf, 0)) > 0)
            if (write_all(cfd, buf, (size_t)r) != 0)
                break;
    }
    free(head);
    close(u);
}

static void serve(authproxy *p, int cfd)
{
    struct timeval tv = {.tv_sec = 10};
    setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t cap = 65536, len = 0, need = 0, head_len = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= AP_MAX_REQUEST)
                goto out;
            cap *= 2;
            b = realloc(b, cap + 1);
        }
        ssize_t r = recv(cfd, b + len, cap - len, 0);
        if (r <= 0)
            goto out;
        len += (size_t)r;
        b[len] = 0;
        if (!head_len) {
            const char *e = strstr(b, "\r\n\r\n");
            if (!e)
                continue;
            head_len = (size_t)(e - b) + 4;
            char cl[32];
            char save = b[head_len];
            b[head_len] = 0;
            header_value(b, "Content-Length", cl, sizeof cl);
            b[head_len] = save;
            need = head_len + strtoul(cl, NULL, 10);
        }
        if (len >= need)
            break;
    }
    p->requests++;
    char save = b[head_len];
    b[head_len] = 0;
    char auth[256], expect[600], tenant[256];
    header_value(b, "Authorization", auth, sizeof auth);
    snprintf(p->last_auth, sizeof p->last_auth, "%s", auth);
    if (p->r.header)
        header_value(b, p->r.header, tenant, sizeof tenant);
    b[head_len] = save;
    if (want_auth(p, expect, sizeof expect) && strcmp(auth, expect) != 0) {
        p->refused401++;
        reply(cfd, 401, auth[0] ? "authproxy: wrong credentials\n" : "authproxy: no credentials\n");
    } else if (p->r.header && strcmp(tenant, p->r.value ? p->r.value : "") != 0) {
        p->refused403++;
        reply(cfd, 403, tenant[0] ? "authproxy: unknown tenant\n" : "authproxy: no tenant\n");
    } else {
        p->forwarded++;
        forward(p, cfd, b, head_len, need);
    }
out:
    free(b);
}

static void *run(void *arg)
{
    authproxy *p = arg;
    while (!p->stop) {
        struct pollfd pf = {.fd = p->fd, .events = POLLIN};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int c = accept(p->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve(p, c);
        shutdown(c, SHUT_RDWR);
        close(c);
    }
    return NULL;
}

int authproxy_start(authproxy *p, int upstream_port, const authproxy_rules *r)
{
    memset(p, 0, sizeof *p);
    p->upstream = upstream_port;
    p->r = *r;
    p->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (p->fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(p->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(p->fd, 16) != 0 ||
        getsockname(p->fd, (struct sockaddr *)&a, &alen) != 0) {
        int rc = -errno;
        close(p->fd);
        return rc;
    }
    p->port = ntohs(a.sin_port);
    int rc = pthread_create(&p->th, NULL, run, p);
    if (rc != 0) {
        close(p->fd);
        return -rc;
    }
    p->running = 1;
    return 0;
}

void authproxy_stop(authproxy *p)
{
    if (!p->running)
        return;
    p->stop = 1;
    pthread_join(p->th, NULL);
    close(p->fd);
    p->running = 0;
}
