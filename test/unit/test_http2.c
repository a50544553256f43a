/*
 * The HTTP client against a real HTTP/2 server: Debian's nghttpd (nghttp2's
 * reference server) on loopback with a certificate we generate. Proves ALPN
 * negotiates h2 when the server offers it, and that parallel requests share
 * one multiplexed connection.
 */
#include "test.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http/http.h"
#include "httpd/httpd.h"
#include "support/loop.h"

#define NGHTTPD "/usr/sbin/nghttpd"
#define NREQ    8

static uv_loop_t loop;
static char dir[] = "/tmp/optipod-h2-XXXXXX";
static char ca_path[512];
static pid_t server_pid;
static int port;

typedef struct result {
    int done;
    long status;
    int error;
    int version;
    char body[64];
} result;

static void write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    fputs(data, f);
    fclose(f);
}

static int free_port(void)
{
    /* Bind to port 0 with a throwaway libuv handle to learn a free port. */
    uv_loop_t l;
    uv_loop_init(&l);
    uv_tcp_t t;
    uv_tcp_init(&l, &t);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&t, (struct sockaddr *)&a, 0);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len);
    int p = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&l, UV_RUN_DEFAULT);
    uv_loop_close(&l);
    return p;
}

static void on_done(ophttp_req *req, const ophttp_response *res, void *ud)
{
    (void)req;
    result *r = ud;
    r->done = 1;
    r->status = res->status;
    r->error = res->error;
    r->version = res->http_version;
    snprintf(r->body, sizeof r->body, "%s", res->body);
}

static void start_server(void)
{
    if (access(NGHTTPD, X_OK) != 0)
        test_skip("%s not installed (Debian package nghttp2-server; make test installs it)",
                  NGHTTPD);
    ASSERT_NOT_NULL(mkdtemp(dir));
    ophttpd_cert c = {0};
    const char *sans[] = {"127.0.0.1", NULL};
    ASSERT_EQ_INT(ophttpd_cert_generate(&c, "optipod-h2-test", sans, 1), 0);
    char crt[512], key[512], docs[512], file[600];
    snprintf(crt, sizeof crt, "%s/tls.crt", dir);
    snprintf(key, sizeof key, "%s/tls.key", dir);
    snprintf(ca_path, sizeof ca_path, "%s/ca.crt", dir);
    snprintf(docs, sizeof docs, "%s/htdocs", dir);
    write_file(crt, c.cert_pem);
    write_file(key, c.key_pem);
    write_file(ca_path, c.ca_pem);
    ophttpd_cert_release(&c);
    mkdir(docs, 0755);
    snprintf(file, sizeof file, "%s/version", docs);
    write_file(file, "{\"major\":\"1\",\"minor\":\"24\"}\n");

    port = free_port();
    char portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%d", port);
    server_pid = fork();
    ASSERT(server_pid >= 0);
    if (server_pid == 0) {
        int null = open("/dev/null", 1);
        dup2(null, 1);
        dup2(null, 2);
        execl(NGHTTPD, NGHTTPD, "-a", "127.0.0.1", "-d", docs, portbuf, key, crt, (char *)NULL);
        _exit(127);
    }
    /* Wait until it accepts connections. */
    for (int i = 0; i < 200; i++) {
        uv_loop_t l;
        uv_loop_init(&l);
        ophttp_client *cli;
        ophttp_client_new(&cli, &l, NULL);
        result r = {0};
        char url[128];
        snprintf(url, sizeof url, "https://127.0.0.1:%d/version", port);
        ophttp_tls tls = {.ca_file = ca_path};
        ophttp_req_opts o = {.method = "GET",
                             .url = url,
                             .timeout_ms = 2000,
                             .tls = &tls,
                             .on_done = on_done,
                             .ud = &r};
        ophttp_request(cli, &o, NULL);
        tloop_until_flag(&l, &r.done, 3000);
        ophttp_client_close(cli, NULL, NULL);
        uv_run(&l, UV_RUN_DEFAULT);
        uv_loop_close(&l);
        if (r.status == 200)
            return;
        usleep(25000);
    }
    test_fail(__FILE__, __LINE__, "nghttpd did not come up on port %d", port);
}

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void test_h2_negotiated_and_multiplexed(void)
{
    start_server();
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    ophttp_client *cli;
    ASSERT_EQ_INT(ophttp_client_new(&cli, &loop, NULL), 0);
    static result r[NREQ];
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/version", port);
    ophttp_tls tls = {.ca_file = ca_path};
    /* The first request opens the connection; the rest start while it is in
     * flight and must ride the same connection as h2 streams. */
    for (int i = 0; i < NREQ; i++) {
        memset(&r[i], 0, sizeof r[i]);
        ophttp_req_opts o = {.method = "GET",
                             .url = url,
                             .timeout_ms = 5000,
                             .tls = &tls,
                             .on_done = on_done,
                             .ud = &r[i]};
        ASSERT_EQ_INT(ophttp_request(cli, &o, NULL), 0);
    }
    for (int i = 0; i < NREQ; i++) {
        ASSERT(tloop_until_flag(&loop, &r[i].done, 10000));
        ASSERT_EQ_INT(r[i].error, 0);
        ASSERT_EQ_INT(r[i].status, 200);
        ASSERT_EQ_INT(r[i].version, 2);
        ASSERT_STR_CONTAINS(r[i].body, "\"minor\":\"24\"");
    }
    ASSERT_EQ_INT(ophttp_connections(cli), 1);
    ophttp_client_close(cli, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    stop_server();
}

int main(void)
{
    TEST_RUN(test_h2_negotiated_and_multiplexed);
    stop_server();
    return test_summary();
}
