/*
 * promsrv: the real Prometheus for tests. See promserver.h.
 */
#include "support/promserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Servers still running, stopped at exit if the test did not (a failed ASSERT
 * longjmps past the test's own cleanup). */
#define PROMSRV_MAX 8
static promsrv *running[PROMSRV_MAX];
static int atexit_done;

static void stop_all(void)
{
    for (int i = 0; i < PROMSRV_MAX; i++)
        if (running[i])
            promsrv_stop(running[i]);
}

static void track(promsrv *s, int on)
{
    for (int i = 0; i < PROMSRV_MAX; i++) {
        if (on && !running[i]) {
            running[i] = s;
            break;
        }
        if (!on && running[i] == s)
            running[i] = NULL;
    }
    if (on && !atexit_done) {
        atexit(stop_all);
        atexit_done = 1;
    }
}

int promsrv_available(void)
{
    return access(PROMSRV_PROMETHEUS, X_OK) == 0 && access(PROMSRV_PROMTOOL, X_OK) == 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    size_t n = fwrite(data, 1, len, f);
    int rc = fclose(f);
    return n == len && rc == 0 ? 0 : -EIO;
}

/* The last ~300 bytes of a log file, for error messages. */
static void log_tail(const char *path, char *out, size_t max)
{
    out[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    long from = end > 300 ? end - 300 : 0;
    fseek(f, from, SEEK_SET);
    size_t n = fread(out, 1, max - 1, f);
    out[n] = '\0';
    fclose(f);
    for (char *p = out; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

/* fork+exec argv with stdout/stderr to logpath; returns the pid or -errno. */
static pid_t spawn(char *const argv[], const char *logpath)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* Die with the test even when it crashes past its atexit hook. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) {
            dup2(nul, 0);
            close(nul);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

int promsrv_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
        rc = -errno;
    else
        rc = ntohs(a.sin_port);
    close(fd);
    return rc;
}

int promsrv_http_get(int port, const char *path, char *body_out, size_t body_max)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        rc = -errno;
        goto out;
    }
    char req[512];
    int n =
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path, port);
    if (write(fd, req, (size_t)n) != n) {
        rc = -EIO;
        goto out;
    }
    char buf[65536];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        rc = -EPROTO;
        goto out;
    }
    rc = status;
    if (body_out && body_max > 0) {
        const char *b = strstr(buf, "\r\n\r\n");
        snprintf(body_out, body_max, "%s", b ? b + 4 : "");
    }
out:
    close(fd);
    return rc;
}

static int run_promtool(const char *dir, char *logpath, operr *err)
{
    char om[300], tsdb[300];
    snprintf(om, sizeof om, "%s/data.om", dir);
    snprintf(tsdb, sizeof tsdb, "%s/tsdb", dir);
    char *argv[] = {PROMSRV_PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", om, tsdb, NULL};
    pid_t pid = spawn(argv, logpath);
    if (pid < 0)
        return operr_set(err, (int)pid, "promtool: cannot start: %s", strerror((int)-pid));
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char tail[320];
        log_tail(logpath, tail, sizeof tail);
        return operr_set(err, -EIO, "promtool create-blocks-from openmetrics failed: %s", tail);
    }
    return 0;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int promsrv_start(promsrv *s, const char *om, size_t len, operr *err)
{
    int rc = 0;
    char path[300], logpath[300], tail[320];
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/optipod-prom-XXXXXX");
    if (!mkdtemp(s->dir)) {
        rc = operr_set(err, -errno, "promsrv: mkdtemp: %s", strerror(errno));
        s->dir[0] = '\0';
        return rc;
    }
    track(s, 1);
    snprintf(logpath, sizeof logpath, "%s/log.txt", s->dir);
    snprintf(path, sizeof path, "%s/data.om", s->dir);
    if ((rc = write_file(path, om, len)) != 0) {
        operr_set(err, rc, "promsrv: cannot write '%s'", path);
        goto out;
    }
    if ((rc = run_promtool(s->dir, logpath, err)) != 0)
        goto out;
    /* No scrape targets: the backfilled blocks are all the data there is. */
    static const char cfg[] = "global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\n";
    snprintf(path, sizeof path, "%s/prometheus.yml", s->dir);
    if ((rc = write_file(path, cfg, sizeof cfg - 1)) != 0) {
        operr_set(err, rc, "promsrv: cannot write '%s'", path);
        goto out;
    }
    s->port = promsrv_free_port();
    if (s->port <= 0) {
        rc = operr_set(err, s->port ? s->port : -EIO, "promsrv: no free port");
        goto out;
    }
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    char a_cfg[320], a_tsdb[320], a_listen[64];
    snprintf(a_cfg, sizeof a_cfg, "--config.file=%s", path);
    snprintf(a_tsdb, sizeof a_tsdb, "--storage.tsdb.path=%s/tsdb", s->dir);
    snprintf(a_listen, sizeof a_listen, "--web.listen-address=127.0.0.1:%d", s->port);
    char *argv[] = {
        PROMSRV_PROMETHEUS, a_cfg, a_tsdb, a_listen, "--storage.tsdb.retention.time=30d",
        "--log.level=warn", NULL};
    pid_t pid = spawn(argv, logpath);
    if (pid < 0) {
        rc = operr_set(err, (int)pid, "promsrv: cannot start prometheus");
        goto out;
    }
    s->pid = pid;
    uint64_t deadline = mono_ms() + 30000;
    for (;;) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            log_tail(logpath, tail, sizeof tail);
            rc = operr_set(err, -ECHILD, "prometheus exited at start: %s", tail);
            goto out;
        }
        if (promsrv_http_get(s->port, "/-/ready", NULL, 0) == 200)
            break;
        if (mono_ms() > deadline) {
            log_tail(logpath, tail, sizeof tail);
            rc = operr_set(err, -ETIMEDOUT, "prometheus not ready after 30 s: %s", tail);
            goto out;
        }
        usleep(50 * 1000);
    }
out:
    if (rc != 0)
        promsrv_stop(s);
    return rc;
}

void promsrv_stop(promsrv *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        s->pid = 0;
    }
    if (s->dir[0]) {
        nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        s->dir[0] = '\0';
    }
    track(s, 0);
}
