/*
 * The real optipod webhook under stress: the binary (--webhook-only, certificate from
 * --webhook-cert-dir) against the fake API server process, driven by a poll(2) client in
 * this process over non-blocking TLS sockets.
 *
 *  1. WHSTRESS_CONNS (default 984) connections at once each hand-shake and send a pod
 *     review: every one is answered with its own uid, allowed and patched. Then 16 slow
 *     clients (one byte a second) connect: the first rotation round below (a review on
 *     each of the 984 connections) is answered while every one of them still holds its
 *     connection (they block no one), and each is closed by the server's
 *     --webhook-read-timeout before its request is whole.
 *  2. Certificate rotation under load: the pair in the directory is swapped the way the
 *     kubelet updates a mounted Secret (a new ..data symlink, renamed over the old), to
 *     one from another CA. The 1000 kept-alive connections keep sending reviews in rounds,
 *     a tenth of them reconnecting each round, until the new certificate is served (the
 *     server polls the directory every 10 s); then all reconnect once more. Every
 *     handshake (against both CAs) and every review succeeds throughout; new connections
 *     end on the new certificate.
 *     Each round also sends bad input on connections of its own: an oversized review
 *     (413), truncated JSON and a JSON that is no AdmissionReview (400 naming the
 *     problem), a request line that is not HTTP (400) and plain text on the TLS port
 *     (closed).
 *  3. Memory: the server's RSS is sampled throughout; a second burst of the same size
 *     must not raise the peak by more than a slack (memory bounded, not growing with
 *     load), and the peak stays under a fixed cap.
 *
 * Nothing here asserts a duration: deadlines only end a run that hangs. OPTIPOD_SLOW
 * (valgrind) divides the connection count and stretches the timeouts.
 */
#include "test.h"
#include "support/proc.h"
#include "support/promserver.h"
#include "support/whfix.h"
#include "httpd/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

/* READ_TIMEOUT: seconds, times OPTIPOD_SLOW up to 2 (valgrind slows this client only);
 * RECONNECT: a rotation round reconnects one connection in this many. */
#define NSLOW        16
#define READ_TIMEOUT 15.0
#define RECONNECT    10
#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer keeps up to 256 MiB of freed memory in quarantine (and red zones around
 * every block): the bounds hold its overhead too */
#define MEM_CAP   (1536.0 * 1024 * 1024)
#define MEM_SLACK (288.0 * 1024 * 1024)
#else
#define MEM_CAP   (512.0 * 1024 * 1024)
#define MEM_SLACK (32.0 * 1024 * 1024)
#endif

enum kind { K_REVIEW, K_SLOW, K_BIG, K_TRUNCATED, K_NOT_REVIEW, K_NOT_HTTP, K_PLAIN, NKIND };
enum state { S_CONNECT, S_HANDSHAKE, S_WRITE, S_READ, S_IDLE, S_DONE };

typedef struct cl {
    int fd;
    SSL *ssl;
    enum state st;
    enum kind kind;
    char req[8192];
    const char *body; /* K_BIG: sent after req */
    size_t req_len, sent, body_len, body_sent;
    char in[16384];
    size_t in_len;
    int status;         /* of the last answer; 0 = none */
    int peer_closed;    /* the server closed the connection */
    int failed;         /* a handshake, I/O or answer check failed */
    char why[200];      /* ... what */
    unsigned seq;       /* uid of the review in flight */
    double next_byte;   /* K_SLOW: when the next byte is due */
    unsigned answered;  /* good answers on this client */
    int cert;           /* 1 = served certificate A, 2 = B */
    double answered_at; /* of the first answer */
    short want;         /* poll events it waits for; 0 = step it now */
    int ready;          /* poll saw them */
} cl;

static struct {
    char optipod[512], fakeapi[512];
    SSL_CTX *ctx;
    X509 *cert_a, *cert_b;
    int port;
    pid_t op_pid;
    proc *op;
    double rss_peak;
    unsigned seq;
    unsigned handshakes[3]; /* by certificate served */
    unsigned failures;
    char first_failure[256];
    const char *big_body;
    size_t big_len;
    size_t nrev;     /* review clients at the front of the array */
    size_t fds_base; /* the server's open fds at rest */
} g;

static int last_ssl_err, last_errno; /* of the last failed TLS read or write */

static double slowf(void)
{
    const char *s = getenv("OPTIPOD_SLOW");
    double f = s ? atof(s) : 1.0;
    return f >= 1.0 ? f : 1.0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rss_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atof(line + 6);
    if (f)
        fclose(f);
    return kb * 1024.0;
}

static void sample(void)
{
    double r = rss_of(g.op_pid);
    if (r > g.rss_peak)
        g.rss_peak = r;
    proc_drain(g.op); /* keep its log pipe from filling */
}

static void post(cl *c, const char *body, size_t declared)
{
    int n = snprintf(c->req, sizeof c->req,
                     "POST /mutate-pods?timeout=10s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     declared);
    size_t blen = strlen(body);
    if (declared == blen && (size_t)n + blen < sizeof c->req) {
        memcpy(c->req + n, body, blen + 1);
        n += (int)blen;
    }
    c->req_len = (size_t)n;
}

/* Put the client's next request in c->req. */
static void make_request(cl *c)
{
    char body[4096], uid[32];
    c->sent = c->body_sent = 0;
    c->in_len = 0;
    c->status = 0;
    switch (c->kind) {
    case K_REVIEW:
    case K_SLOW:
        c->seq = ++g.seq;
        snprintf(uid, sizeof uid, "stress-%u", c->seq);
        whfix_review(body, sizeof body, uid);
        post(c, body, strlen(body));
        break;
    case K_BIG: /* declared over the 3 MiB cap; the body follows until the server stops it */
        post(c, "", g.big_len);
        c->body = g.big_body;
        c->body_len = g.big_len;
        break;
    case K_TRUNCATED:
        whfix_review(body, sizeof body, "truncated");
        body[strlen(body) / 2] = '\0';
        post(c, body, strlen(body));
        break;
    case K_NOT_REVIEW:
        post(c, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}",
             strlen("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}"));
        break;
    case K_NOT_HTTP:
        c->req_len = (size_t)snprintf(c->req, sizeof c->req, "HELLO THERE\r\n\r\n");
        break;
    case K_PLAIN:
        c->req_len = (size_t)snprintf(c->req, sizeof c->req,
                                      "POST /mutate-pods HTTP/1.1\r\nHost: x\r\n\r\n");
        break;
    default:
        break;
    }
}

static void fail_cl(cl *c, const char *fmt, const char *detail)
{
    if (c->failed)
        return;
    c->failed = 1;
    snprintf(c->why, sizeof c->why, fmt, detail ? detail : "");
    if (!g.failures++)
        snprintf(g.first_failure, sizeof g.first_failure, "client kind %d: %s", (int)c->kind,
                 c->why);
}

static void cl_close(cl *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void cl_connect(cl *c)
{
    cl_close(c);
    c->peer_closed = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fail_cl(c, "socket: %s", strerror(errno));
        c->st = S_DONE;
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        fail_cl(c, "connect: %s", strerror(errno));
        c->st = S_DONE;
        return;
    }
    if (c->kind != K_PLAIN) {
        c->ssl = SSL_new(g.ctx);
        SSL_set_fd(c->ssl, c->fd);
        SSL_set1_host(c->ssl, "127.0.0.1");
        SSL_set_connect_state(c->ssl);
    }
    c->st = S_CONNECT;
    c->want = 0;
    make_request(c);
}

/* Which of the two certificates the server presented. */
static int served_cert(SSL *ssl)
{
    X509 *p = SSL_get1_peer_certificate(ssl);
    int which = !p ? 0 : X509_cmp(p, g.cert_a) == 0 ? 1 : X509_cmp(p, g.cert_b) == 0 ? 2 : 0;
    X509_free(p);
    return which;
}

/* Parse a whole answer in c->in; 1 when complete. */
static int answer_complete(cl *c, const char **body, size_t *blen)
{
    c->in[c->in_len < sizeof c->in ? c->in_len : sizeof c->in - 1] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (!end)
        return 0;
    size_t clen = 0;
    for (char *h = c->in; h && h < end; h = strstr(h, "\r\n")) {
        h += (h == c->in) ? 0 : 2;
        if (strncasecmp(h, "Content-Length:", 15) == 0)
            clen = strtoul(h + 15, NULL, 10);
        if (h == c->in)
            h++;
    }
    size_t hl = (size_t)(end - c->in) + 4;
    if (c->in_len < hl + clen)
        return 0;
    c->status = atoi(c->in + 9);
    *body = c->in + hl;
    *blen = clen;
    return 1;
}

static void on_answer(cl *c, const char *body, size_t blen)
{
    char want[64];
    switch (c->kind) {
    case K_REVIEW:
        snprintf(want, sizeof want, "\"uid\":\"stress-%u\"", c->seq);
        if (c->status != 200 || !strstr(body, want) || !strstr(body, "\"allowed\":true") ||
            !strstr(body, "\"patch\":"))
            fail_cl(c, "review not admitted with a patch: %.120s", c->in);
        break;
    case K_SLOW:
        fail_cl(c, "a slow client's request was answered: %.120s", c->in);
        break;
    case K_BIG:
        if (c->status != 413 || !strstr(body, "too large"))
            fail_cl(c, "oversized review: want 413 naming the size, got %.120s", c->in);
        break;
    case K_TRUNCATED:
    case K_NOT_REVIEW:
        if (c->status != 400 || blen < 10)
            fail_cl(c, "malformed review: want 400 with a reason, got %.160s", c->in);
        break;
    case K_NOT_HTTP:
        if (c->status != 400)
            fail_cl(c, "not HTTP: want 400, got %.120s", c->in);
        break;
    default:
        fail_cl(c, "plain text on the TLS port was answered: %.120s", c->in);
        break;
    }
    if (!c->failed) {
        c->answered++;
        if (!c->answered_at)
            c->answered_at = now_s();
    }
    c->st = (c->kind == K_REVIEW && !c->failed) ? S_IDLE : S_DONE;
    if (c->st == S_DONE)
        cl_close(c);
}

static void peer_gone(cl *c)
{
    c->peer_closed = 1;
    if (getenv("WHSTRESS_DEBUG"))
        fprintf(stderr, "gone: kind %d st %d ssl %d errno %d\n", c->kind, c->st, last_ssl_err,
                last_errno);
    if (c->kind == K_REVIEW)
        fail_cl(c, "connection closed by the server%s",
                c->st == S_WRITE  ? " while sending"
                : c->in_len       ? " mid-answer"
                : c->st == S_READ ? " before answering"
                                  : "");
    else if (c->kind == K_BIG || c->kind == K_TRUNCATED || c->kind == K_NOT_REVIEW ||
             c->kind == K_NOT_HTTP)
        if (!c->status)
            fail_cl(c, "closed without an answer%s", "");
    c->st = S_DONE;
    cl_close(c);
}

/* Map an SSL result: 1 = retry later (want set), 0 = peer gone, -1 = error. */
static int ssl_wait(cl *c, int r, short *want)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        *want = POLLIN;
        return 1;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        *want = POLLOUT;
        return 1;
    }
    if (e == SSL_ERROR_ZERO_RETURN ||
        (e == SSL_ERROR_SYSCALL && (errno == 0 || errno == ECONNRESET || errno == EPIPE)))
        return 0;
    return -1;
}

static ssize_t raw_io(cl *c, int wr, void *buf, size_t n, short *want)
{
    if (c->ssl) {
        ERR_clear_error();
        errno = 0;
        int r = wr ? SSL_write(c->ssl, buf, (int)n) : SSL_read(c->ssl, buf, (int)n);
        if (r > 0)
            return r;
        last_ssl_err = SSL_get_error(c->ssl, r);
        last_errno = errno;
        int w = ssl_wait(c, r, want);
        return w == 1 ? -EAGAIN : w == 0 ? 0 : -EIO;
    }
    ssize_t r = wr ? send(c->fd, buf, n, MSG_NOSIGNAL) : recv(c->fd, buf, n, 0);
    if (r > 0)
        return r;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        *want = wr ? POLLOUT : POLLIN;
        return -EAGAIN;
    }
    return r == 0 || errno == ECONNRESET || errno == EPIPE ? 0 : -EIO;
}

/* Drive one client as far as it goes without blocking; returns the poll events it waits for. */
static short step(cl *c, double now)
{
    short want = 0;
    for (;;) {
        switch (c->st) {
        case S_CONNECT: {
            int err = 0;
            socklen_t el = sizeof err;
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            if (poll(&p, 1, 0) == 0)
                return POLLOUT;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err) {
                fail_cl(c, "connect: %s", strerror(err));
                c->st = S_DONE;
                cl_close(c);
                return 0;
            }
            c->st = c->ssl ? S_HANDSHAKE : S_WRITE;
            break;
        }
        case S_HANDSHAKE: {
            ERR_clear_error();
            int r = SSL_connect(c->ssl);
            if (r == 1) {
                c->cert = served_cert(c->ssl);
                g.handshakes[c->cert]++;
                if (!c->cert)
                    fail_cl(c, "handshake: unknown certificate%s", "");
                c->st = S_WRITE;
                break;
            }
            int w = ssl_wait(c, r, &want);
            if (w == 1)
                return want;
            char e[160];
            ERR_error_string_n(ERR_peek_last_error(), e, sizeof e);
            fail_cl(c, "TLS handshake failed: %s", w == 0 ? "closed" : e);
            c->st = S_DONE;
            cl_close(c);
            return 0;
        }
        case S_WRITE: {
            if (c->kind == K_SLOW) {
                /* one byte when due; meanwhile watch for the server closing */
                if (now >= c->next_byte && c->sent < c->req_len) {
                    ssize_t n = raw_io(c, 1, c->req + c->sent, 1, &want);
                    if (n == 0 || n == -EIO) {
                        peer_gone(c);
                        return 0;
                    }
                    if (n > 0) {
                        c->sent++;
                        c->next_byte = now + 1.0;
                    }
                }
                char tmp[512];
                ssize_t n = raw_io(c, 0, tmp, sizeof tmp, &want);
                if (n == 0 || n == -EIO) {
                    peer_gone(c);
                    return 0;
                }
                if (n > 0) {
                    fail_cl(c, "a slow client got an answer%s", "");
                    c->st = S_DONE;
                    cl_close(c);
                    return 0;
                }
                return POLLIN;
            }
            if (c->sent < c->req_len) {
                ssize_t n = raw_io(c, 1, c->req + c->sent, c->req_len - c->sent, &want);
                if (n == -EAGAIN)
                    return want;
                if (n <= 0) {
                    peer_gone(c);
                    return 0;
                }
                c->sent += (size_t)n;
                continue;
            }
            if (c->body && c->body_sent < c->body_len) {
                /* the oversized body: the server may answer 413 before taking it all */
                char tmp[1024];
                short rw = 0;
                ssize_t r = raw_io(c, 0, tmp, sizeof tmp, &rw);
                if (r > 0) {
                    size_t k =
                        (size_t)r < sizeof c->in - c->in_len ? (size_t)r : sizeof c->in - c->in_len;
                    memcpy(c->in + c->in_len, tmp, k);
                    c->in_len += k;
                    c->st = S_READ;
                    continue;
                }
                size_t chunk =
                    c->body_len - c->body_sent < 65536 ? c->body_len - c->body_sent : 65536;
                ssize_t n = raw_io(c, 1, (char *)c->body + c->body_sent, chunk, &want);
                if (n == -EAGAIN)
                    return want | POLLIN;
                if (n <= 0) {
                    c->st = S_READ; /* closed after its answer, perhaps: read what came */
                    continue;
                }
                c->body_sent += (size_t)n;
                continue;
            }
            c->st = S_READ;
            break;
        }
        case S_READ: {
            const char *body;
            size_t blen;
            if (answer_complete(c, &body, &blen)) {
                on_answer(c, body, blen);
                return 0;
            }
            if (c->in_len >= sizeof c->in - 1) {
                fail_cl(c, "answer too long%s", "");
                c->st = S_DONE;
                cl_close(c);
                return 0;
            }
            ssize_t n = raw_io(c, 0, c->in + c->in_len, sizeof c->in - 1 - c->in_len, &want);
            if (n == -EAGAIN)
                return want;
            if (n <= 0) {
                if (c->kind == K_PLAIN && !c->in_len) {
                    c->peer_closed = 1; /* what plain text on a TLS port should get */
                    c->st = S_DONE;
                    cl_close(c);
                    return 0;
                }
                if (c->kind == K_PLAIN) { /* a TLS alert, then the close: fine too */
                    c->peer_closed = 1;
                    c->st = S_DONE;
                    cl_close(c);
                    return 0;
                }
                peer_gone(c);
                return 0;
            }
            c->in_len += (size_t)n;
            break;
        }
        case S_IDLE:
        case S_DONE:
            return 0;
        }
    }
}

/* Pump every client until cond() holds; fails the test at the deadline. */
static void pump(cl *cs, size_t n, int (*cond)(cl *, size_t), double secs, const char *what)
{
    static struct pollfd pf[4096];
    static size_t idx[4096];
    double deadline = now_s() + secs * slowf();
    double next_sample = 0;
    while (!cond || !cond(cs, n)) {
        double now = now_s();
        if (!cond && now > deadline)
            return;
        if (now > deadline)
            test_fail(__FILE__, __LINE__, "%s: not done after %.0f s", what, secs * slowf());
        if (now >= next_sample) {
            sample();
            next_sample = now + 0.1;
        }
        size_t np = 0;
        for (size_t i = 0; i < n && np < 4096; i++) {
            cl *c = &cs[i];
            if (c->st == S_IDLE || c->st == S_DONE)
                continue;
            if (!c->want || c->ready || c->kind == K_SLOW) {
                c->ready = 0;
                c->want = step(c, now);
            }
            if (c->want && c->fd >= 0) {
                pf[np] = (struct pollfd){.fd = c->fd, .events = c->want};
                idx[np++] = i;
            }
        }
        if (cond && cond(cs, n))
            break;
        if (np && poll(pf, np, 50) > 0) {
            for (size_t k = 0; k < np; k++)
                if (pf[k].revents)
                    cs[idx[k]].ready = 1;
        } else if (!np) {
            usleep(20000);
        }
    }
}

static int all_settled(cl *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cs[i].st != S_IDLE && cs[i].st != S_DONE)
            return 0;
    return 1;
}

/* Over the review clients (the first g.nrev). */
static int reviews_settled(cl *cs, size_t n)
{
    return all_settled(cs, g.nrev < n ? g.nrev : n);
}

/* The reviews and the bad-input clients after the slow ones. */
static int round_settled(cl *cs, size_t n)
{
    return reviews_settled(cs, n) && all_settled(cs + g.nrev + NSLOW, n - g.nrev - NSLOW);
}

static int slow_closed(cl *cs, size_t n)
{
    for (size_t i = g.nrev; i < g.nrev + NSLOW && i < n; i++)
        if (cs[i].st != S_DONE)
            return 0;
    return 1;
}

static size_t open_fds(pid_t pid);

/* The server holds no more than g.fds_base fds (+ a few of its own coming and going). */
static int fds_back(cl *cs, size_t n)
{
    return open_fds(g.op_pid) <= g.fds_base + 4;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    ASSERT(fputs(text, f) >= 0);
    ASSERT_EQ_INT(fclose(f), 0);
}

/* The kubelet's atomic update of a mounted Secret: the pair in a new directory, a new
 * ..data symlink to it renamed over the old; tls.crt and tls.key point through ..data. */
static void publish_pair(const char *dir, const char *gen, const ophttpd_cert *c)
{
    char d[600], p[700], tmp[600], data[600];
    snprintf(d, sizeof d, "%s/..%s", dir, gen);
    ASSERT_EQ_INT(mkdir(d, 0700), 0);
    snprintf(p, sizeof p, "%s/tls.crt", d);
    write_file(p, c->cert_pem);
    snprintf(p, sizeof p, "%s/tls.key", d);
    write_file(p, c->key_pem);
    snprintf(tmp, sizeof tmp, "%s/..data_tmp", dir);
    snprintf(data, sizeof data, "%s/..data", dir);
    snprintf(p, sizeof p, "..%s", gen);
    ASSERT_EQ_INT(symlink(p, tmp), 0);
    ASSERT_EQ_INT(rename(tmp, data), 0);
}

static X509 *load_x509(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

static size_t open_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    size_t n = 0;
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* The connection count the machine allows: raise the soft fd limit to what we need. */
static size_t conn_budget(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 100;
    rlim_t need = (rlim_t)(want + NSLOW + 200);
    if (rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    size_t have = rl.rlim_cur > NSLOW + 200 ? (size_t)rl.rlim_cur - NSLOW - 200 : 50;
    return want < have ? want : have;
}

static void test_webhook_under_stress(void)
{
    snprintf(g.optipod, sizeof g.optipod, "%s", test_built("optipod"));
    snprintf(g.fakeapi, sizeof g.fakeapi, "%s", test_built("tools/fakeapi_server"));
    const char *e = getenv("WHSTRESS_CONNS");
    size_t want = e && atoi(e) > 0 ? (size_t)atoi(e) : 1000 - NSLOW; /* + NSLOW slow ones */
    want = (size_t)((double)want / slowf());
    size_t nconn = conn_budget(want < 10 ? 10 : want);
    if (nconn > 1024 - NSLOW - 2 * NKIND) /* under the server's own connection cap */
        nconn = 1024 - NSLOW - 2 * NKIND;
    if (nconn < want)
        printf("   (%zu connections: the fd limit allows no more)\n", nconn);

    char dir[600], kc[700], seed[700], link[700];
    snprintf(dir, sizeof dir, "%s/certs", test_tmpdir());
    ASSERT_EQ_INT(mkdir(dir, 0700), 0);
    snprintf(kc, sizeof kc, "%s/kubeconfig", test_tmpdir());
    snprintf(seed, sizeof seed, "%s/seed.json", test_tmpdir());
    write_file(seed, whfix_seed_json);
    ophttpd_cert ca = {0}, cb = {0};
    const char *sans[] = {"127.0.0.1", NULL};
    ASSERT_EQ_INT(ophttpd_cert_generate(&ca, "stress-a", sans, 1), 0);
    ASSERT_EQ_INT(ophttpd_cert_generate(&cb, "stress-b", sans, 1), 0);
    publish_pair(dir, "a", &ca);
    snprintf(link, sizeof link, "%s/tls.crt", dir);
    ASSERT_EQ_INT(symlink("..data/tls.crt", link), 0);
    snprintf(link, sizeof link, "%s/tls.key", dir);
    ASSERT_EQ_INT(symlink("..data/tls.key", link), 0);

    /* The client trusts both CAs, as an API server with a caBundle holding old and new. */
    g.ctx = SSL_CTX_new(TLS_client_method());
    ASSERT_NOT_NULL(g.ctx);
    SSL_CTX_set_verify(g.ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(g.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(g.ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    X509 *ca_a = load_x509(ca.ca_pem), *ca_b = load_x509(cb.ca_pem);
    ASSERT(ca_a && ca_b);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(g.ctx), ca_a);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(g.ctx), ca_b);
    X509_free(ca_a);
    X509_free(ca_b);
    g.cert_a = load_x509(ca.cert_pem);
    g.cert_b = load_x509(cb.cert_pem);
    ASSERT(g.cert_a && g.cert_b);
    g.big_len = (size_t)4 << 20;
    char *big = malloc(g.big_len);
    ASSERT_NOT_NULL(big);
    memset(big, ' ', g.big_len);
    g.big_body = big;

    static proc srv, op;
    char *sa[] = {g.fakeapi, "--kubeconfig-out", kc, "--seed", seed, NULL};
    proc_start(&srv, sa);
    proc_wait_for(&srv, "ready https://", 10);
    g.port = promsrv_free_port();
    char port[16], rt[32];
    snprintf(port, sizeof port, "%d", g.port);
    snprintf(rt, sizeof rt, "%dms", (int)(READ_TIMEOUT * 1000 * (slowf() < 2 ? slowf() : 2)));
    char *oa[] = {g.optipod,
                  "--kubeconfig",
                  kc,
                  "--webhook-only",
                  "--webhook-port",
                  port,
                  "--webhook-cert-dir",
                  dir,
                  "--webhook-read-timeout",
                  rt,
                  "--leader-elect=false",
                  "-v",
                  "3",
                  "--health-probe-bind-address",
                  "127.0.0.1:0",
                  "--metrics-bind-address",
                  "0",
                  NULL};
    proc_start(&op, oa);
    g.op = &op;
    g.op_pid = op.pid;
    proc_wait_for(&op, "apps/v1 replicasets: 1 objects listed", 10); /* owners resolvable */
    proc_wait_for(&op, "webhook on https port", 10);

    cl *cs = calloc(nconn + NSLOW + NKIND, sizeof *cs);
    ASSERT_NOT_NULL(cs);
    for (size_t i = 0; i < nconn + NSLOW + NKIND; i++)
        cs[i].fd = -1;

    /* warm-up: one review, and the baseline */
    cs[0].kind = K_REVIEW;
    cl_connect(&cs[0]);
    pump(cs, 1, all_settled, 20, "first review");
    if (cs[0].failed)
        test_fail(__FILE__, __LINE__, "the first review: %s", cs[0].why);
    ASSERT_EQ_INT((int)cs[0].answered, 1);
    cl_close(&cs[0]);
    memset(&cs[0], 0, sizeof cs[0]);
    cs[0].fd = -1;
    double rss_base = rss_of(op.pid);
    size_t fds_base = open_fds(op.pid);
    g.rss_peak = rss_base;

    /* 1. the burst */
    cl *slow = cs + nconn;
    for (size_t i = 0; i < nconn; i++) {
        cs[i].kind = K_REVIEW;
        cl_connect(&cs[i]);
    }
    g.nrev = nconn;
    pump(cs, nconn, reviews_settled, 120, "the burst");
    if (g.failures) {
        proc_drain(&op);
        printf("%s\n", op.out);
        test_fail(__FILE__, __LINE__, "%u failures in the burst; first: %s", g.failures,
                  g.first_failure);
    }
    for (size_t i = 0; i < nconn; i++)
        ASSERT_EQ_INT((int)cs[i].answered, 1);
    /* slow clients join: they hold connections through the rotation's first round */
    double t0 = now_s();
    for (size_t i = 0; i < NSLOW; i++) {
        slow[i].kind = K_SLOW;
        slow[i].next_byte = t0;
        cl_connect(&slow[i]);
    }
    pump(cs, nconn + NSLOW, NULL, 0.3, "slow clients' first bytes");
    unsigned burst_handshakes = g.handshakes[1];

    /* 2. rotation under load, with bad input each round */
    publish_pair(dir, "b", &cb);
    cl *bad = cs + nconn + NSLOW;
    unsigned rounds = 0, bad_sent = 0, idle_closed = 0, reviews = 0;
    double rot_deadline = now_s() + 60 * slowf();
    int all_new = 0;
    while (!all_new) {
        if (now_s() > rot_deadline)
            test_fail(__FILE__, __LINE__, "the new certificate was not served within %.0f s",
                      60 * slowf());
        /* once B is served, one round reconnecting every connection: all must get B */
        int everyone = g.handshakes[2] > 0;
        /* Close this round's reconnections first and let the server reap them, so the
         * connections open stay under its cap (1024) while new ones arrive. */
        static unsigned char again[4096];
        for (size_t i = 0; i < nconn; i++) {
            again[i] = everyone || cs[i].fd < 0 || i % RECONNECT == rounds % RECONNECT;
            if (again[i])
                cl_close(&cs[i]);
        }
        size_t ours = 0;
        for (size_t i = 0; i < nconn + NSLOW + NKIND; i++)
            ours += cs[i].fd >= 0;
        g.fds_base = fds_base + ours;
        pump(cs, 0, fds_back, 30, "the server closing this round's reconnections");
        for (size_t i = 0; i < nconn; i++) {
            char c1;
            /* closed by the read timeout while idle (a slow machine's wait above): reconnect */
            int gone =
                !again[i] && recv(cs[i].fd, &c1, 1, MSG_PEEK | MSG_DONTWAIT) == 0 && ++idle_closed;
            if (again[i] || gone) {
                cl_connect(&cs[i]);
            } else {
                make_request(&cs[i]);
                cs[i].st = S_WRITE;
                cs[i].want = 0;
            }
        }
        for (int k = 0; k < NKIND - K_BIG; k++) {
            memset(&bad[k], 0, sizeof bad[k]);
            bad[k].fd = -1;
            bad[k].kind = (enum kind)(K_BIG + k);
            cl_connect(&bad[k]);
        }
        pump(cs, nconn + NSLOW + (NKIND - K_BIG), round_settled, 120, "a rotation round");
        if (g.failures)
            test_fail(__FILE__, __LINE__, "%u failures in rotation round %u; first: %s", g.failures,
                      rounds, g.first_failure);
        for (int k = 0; k < NKIND - K_BIG; k++)
            ASSERT(bad[k].kind == K_PLAIN ? bad[k].peer_closed : bad[k].status > 0);
        if (rounds == 0) { /* a whole round answered while every slow client held on */
            size_t slow_open = 0;
            for (size_t i = 0; i < NSLOW; i++)
                slow_open += slow[i].st != S_DONE;
            ASSERT_EQ_INT((int)slow_open, NSLOW);
        }
        bad_sent += NKIND - K_BIG;
        reviews += (unsigned)nconn;
        rounds++;
        if (everyone) {
            size_t on_b = 0;
            for (size_t i = 0; i < nconn; i++)
                on_b += cs[i].cert == 2;
            ASSERT_EQ_INT((int)on_b, (int)nconn);
            all_new = 1;
        }
        pump(cs, nconn + NSLOW, NULL, 0.2, "pause");
    }
    /* the slow clients: closed by the server, never whole */
    pump(cs, nconn + NSLOW, slow_closed, 30, "slow clients closed by the read timeout");
    for (size_t i = 0; i < NSLOW; i++) {
        ASSERT_EQ_INT(slow[i].failed, 0);
        ASSERT_EQ_INT(slow[i].peer_closed, 1);
        ASSERT(slow[i].sent < slow[i].req_len);
    }
    double peak1 = g.rss_peak;

    /* 3. everything closed: the server's fds come back; a second burst stays in bounds */
    for (size_t i = 0; i < nconn + NSLOW + NKIND; i++)
        cl_close(&cs[i]);
    g.fds_base = fds_base;
    pump(cs, 0, fds_back, 30, "the server closing its connections");
    g.rss_peak = 0;
    for (size_t i = 0; i < nconn; i++) {
        memset(&cs[i], 0, sizeof cs[i]);
        cs[i].fd = -1;
        cs[i].kind = K_REVIEW;
        cl_connect(&cs[i]);
    }
    pump(cs, nconn, reviews_settled, 120, "the second burst");
    if (g.failures)
        test_fail(__FILE__, __LINE__, "%u failures in the second burst; first: %s", g.failures,
                  g.first_failure);
    double peak2 = g.rss_peak;
    for (size_t i = 0; i < nconn; i++)
        cl_close(&cs[i]);

    printf("   %zu connections: %u handshakes before the rotation (burst, slow clients); rotation: "
           "%u rounds, %u reviews, "
           "handshakes %u on the old certificate and %u on the new, %u bad requests "
           "answered or closed, %u idle connections closed by the read timeout; "
           "second burst %zu; server RSS %.1f MiB at rest, peak %.1f MiB, second burst's "
           "peak %.1f MiB; fds %zu at rest\n",
           nconn, burst_handshakes, rounds, reviews, g.handshakes[1], g.handshakes[2], bad_sent,
           idle_closed, nconn, rss_base / 1048576, peak1 / 1048576, peak2 / 1048576, fds_base);
    ASSERT(peak1 < MEM_CAP);
    ASSERT(peak2 <= peak1 + MEM_SLACK);

    kill(op.pid, SIGTERM);
    int rc = proc_wait_exit(&op, 15);
    kill(srv.pid, SIGTERM);
    proc_wait_exit(&srv, 10);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_STR_CONTAINS(op.out, "serving certificate reloaded");
    free(cs);
    free(big);
    X509_free(g.cert_a);
    X509_free(g.cert_b);
    SSL_CTX_free(g.ctx);
    ophttpd_cert_release(&ca);
    ophttpd_cert_release(&cb);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    TEST_RUN(test_webhook_under_stress);
    return test_summary();
}
