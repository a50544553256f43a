/*
 * The optipod binary as a user runs it: flags, errors, the self-check, and a
 * run against the fake API server (its own process, test/tools/fakeapi_server)
 * that lists, watches, answers /readyz and /metrics, and shuts down cleanly
 * on SIGTERM and SIGINT.
 */
#include "test.h"
#include "support/proc.h"
#include "support/whfix.h"
#include "httpd/httpd.h"
#include "util/buf.h"

#include <cJSON.h>
#include <curl/curl.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

static const char *build_dir(void)
{
    const char *b = getenv("OPTIPOD_BUILD");
    return b && *b ? b : "build/rel";
}

/* Run to completion; returns the exit status, output in p->out. */
static int run(proc *p, char *const argv[])
{
    proc_start(p, argv);
    return proc_wait_exit(p, 20);
}

static char optipod[512], fakeapi_server[512];

static void paths(void)
{
    snprintf(optipod, sizeof optipod, "%s/optipod", build_dir());
    snprintf(fakeapi_server, sizeof fakeapi_server, "%s/tools/fakeapi_server", build_dir());
    if (access(optipod, X_OK) != 0 || access(fakeapi_server, X_OK) != 0)
        test_fail(__FILE__, __LINE__, "%s or %s not built", optipod, fakeapi_server);
}

static void test_help_and_version(void)
{
    paths();
    static proc p;
    char *a1[] = {optipod, "--help", NULL};
    ASSERT_EQ_INT(run(&p, a1), 0);
    ASSERT_STR_CONTAINS(p.out, "--kubeconfig string");
    ASSERT_STR_CONTAINS(p.out, "--shutdown-timeout duration");
    ASSERT_STR_CONTAINS(p.out, "optipod plan [flags]");
    char *a2[] = {optipod, "--version", NULL};
    ASSERT_EQ_INT(run(&p, a2), 0);
    ASSERT_STR_CONTAINS(p.out, "optipod " OPTIPOD_VERSION);
}

static void test_bad_flags_exit_2_with_a_reason(void)
{
    paths();
    static proc p;
    char *a1[] = {optipod, "--no-such-flag", NULL};
    ASSERT_EQ_INT(run(&p, a1), 2);
    ASSERT_STR_CONTAINS(p.out, "unknown flag: --no-such-flag");
    char *a2[] = {optipod, "--shutdown-timeout", "soon", NULL};
    ASSERT_EQ_INT(run(&p, a2), 2);
    ASSERT_STR_CONTAINS(p.out, "flag --shutdown-timeout: \"soon\" is not a duration");
    char *a3[] = {optipod, "--health-probe-bind-address", "8081", NULL};
    ASSERT_EQ_INT(run(&p, a3), 2);
    ASSERT_STR_CONTAINS(p.out, "--health-probe-bind-address: \"8081\" is not host:port");
    char *a4[] = {optipod, "extra", NULL};
    ASSERT_EQ_INT(run(&p, a4), 2);
    ASSERT_STR_CONTAINS(p.out, "unexpected argument \"extra\"");
    char *a5[] = {optipod, "--webhook-only", NULL};
    ASSERT_EQ_INT(run(&p, a5), 2);
    ASSERT_STR_CONTAINS(p.out, "flag --webhook-only: needs --webhook-port");
}

static void test_bad_kubeconfig_is_a_clear_error(void)
{
    paths();
    char path[] = "/tmp/optipod-cli-kc-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    const char *bad = "apiVersion: v1\nkind: Config\ncurrent-context: nope\ncontexts: []\n";
    ASSERT_EQ_INT(write(fd, bad, strlen(bad)), (long long)strlen(bad));
    close(fd);
    static proc p;
    char *a[] = {optipod, "--kubeconfig",           path, "--health-probe-bind-address",
                 "0",     "--metrics-bind-address", "0",  NULL};
    int rc = run(&p, a);
    unlink(path);
    ASSERT_EQ_INT(rc, 1);
    ASSERT_STR_CONTAINS(p.out, path);
    ASSERT_STR_CONTAINS(p.out, "nope");
}

static void test_self_check_passes(void)
{
    paths();
    static proc p;
    char *a[] = {optipod, "--self-check", NULL};
    ASSERT_EQ_INT(run(&p, a), 0);
    ASSERT_STR_CONTAINS(p.out, "TLS round trip on loopback");
    ASSERT_STR_CONTAINS(p.out, "default CA bundle ");
    ASSERT_STR_CONTAINS(p.out, "JSON parsing ");
    ASSERT_STR_CONTAINS(p.out, "self-check passed");
    ASSERT(!strstr(p.out, "FAILED"));
}

/* GET http://127.0.0.1:port/path with a raw socket; returns the response. */
static void http_get(int port, const char *path, char *buf, size_t cap)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ_INT(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    char req[256];
    int n =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    ASSERT_EQ_INT(write(s, req, (size_t)n), n);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(s, buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    close(s);
}

/* GET until the answer holds `want` or `secs` pass: readiness and the cache counts settle
 * (every informer synced; a churned object deleted and created again) on their own time. */
static void http_get_until(int port, const char *path, const char *want, char *buf, size_t cap,
                           int secs)
{
    for (int i = 0; i < secs * 10; i++) {
        http_get(port, path, buf, cap);
        if (strstr(buf, want))
            return;
        usleep(100 * 1000);
    }
}

static int port_from(const char *out, const char *prefix)
{
    const char *p = strstr(out, prefix);
    if (!p)
        return -1;
    p = strstr(p, "(port ");
    return p ? atoi(p + 6) : -1;
}

static void controller_run(int signum)
{
    paths();
    char kc[] = "/tmp/optipod-cli-kc-XXXXXX";
    int fd = mkstemp(kc);
    ASSERT(fd >= 0);
    close(fd);
    static proc srv, op;
    char *sa[] = {fakeapi_server,
                  "--kubeconfig-out",
                  kc,
                  "--deployments",
                  "12",
                  "--namespaces",
                  "3",
                  "--churn",
                  "100ms",
                  NULL};
    proc_start(&srv, sa);
    proc_wait_for(&srv, "ready https://127.0.0.1:", 10);
    char *oa[] = {optipod,
                  "--kubeconfig",
                  kc,
                  "-v",
                  "3",
                  "--health-probe-bind-address",
                  "127.0.0.1:0",
                  "--metrics-bind-address",
                  "127.0.0.1:0",
                  NULL};
    proc_start(&op, oa);
    proc_wait_for(&op, "apps/v1 deployments: 12 objects listed", 10);
    proc_wait_for(&op, "v1 pods: 0 objects listed", 10);
    proc_wait_for(&op, " updated (rv ", 10);
    proc_wait_for(&op, " deleted", 10);

    static char resp[1 << 16];
    int probe = port_from(op.out, "health probes on");
    int metrics = port_from(op.out, "metrics on");
    ASSERT(probe > 0 && metrics > 0);
    http_get_until(probe, "/readyz", "HTTP/1.1 200", resp, sizeof resp, 10);
    ASSERT_STR_CONTAINS(resp, "HTTP/1.1 200");
    http_get(probe, "/healthz", resp, sizeof resp);
    ASSERT_STR_CONTAINS(resp, "HTTP/1.1 200");
    http_get_until(metrics, "/metrics", "optipod_informer_objects{resource=\"deployments\"} 12",
                   resp, sizeof resp, 10);
    ASSERT_STR_CONTAINS(resp, "optipod_informer_objects{resource=\"deployments\"} 12");
    ASSERT_STR_CONTAINS(resp,
                        "optipod_watch_events_total{resource=\"deployments\",type=\"MODIFIED\"}");
    /* the loop's handles and the work queue, for soaks and dashboards */
    ASSERT_STR_CONTAINS(resp, "optipod_loop_handles{state=\"active\"} ");
    ASSERT_STR_CONTAINS(resp, "optipod_loop_handles{state=\"inactive\"} ");
    ASSERT_STR_CONTAINS(resp, "optipod_queue_depth{state=\"queued\"} ");
    ASSERT_STR_CONTAINS(resp, "optipod_queue_depth{state=\"delayed\"} ");
    ASSERT_STR_CONTAINS(resp, "optipod_queue_depth{state=\"running\"} ");
    const char *h = strstr(resp, "optipod_loop_handles{state=\"active\"} ");
    ASSERT(h && atof(h + strlen("optipod_loop_handles{state=\"active\"} ")) >= 3);
    /* the process's own figures, read when scraped */
    const char *rss = strstr(resp, "\nprocess_resident_memory_bytes ");
    ASSERT(rss != NULL);
    ASSERT_CMP_INT(strtoll(rss + 31, NULL, 10), >, 1 << 20);
    ASSERT_STR_CONTAINS(resp, "\nprocess_cpu_seconds_total ");
    const char *stall = strstr(resp, "\noptipod_loop_stall_max_seconds ");
    ASSERT(stall != NULL);
    ASSERT(strtod(stall + 32, NULL) > 0); /* it listed and handled events: the loop was busy */
    ASSERT_STR_CONTAINS(resp, "optipod_loop_stalls_total{over=\"0.005\"} ");

    kill(op.pid, signum);
    int rc = proc_wait_exit(&op, 15);
    kill(srv.pid, SIGTERM);
    int src = proc_wait_exit(&srv, 10);
    unlink(kc);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_STR_CONTAINS(op.out,
                        signum == SIGTERM ? "SIGTERM: shutting down" : "SIGINT: shutting down");
    ASSERT_STR_CONTAINS(op.out, "shutdown complete");
    ASSERT(strstr(op.out, "\nE1") == NULL);
    ASSERT_EQ_INT(src, 0);
}

static void test_runs_against_fake_server_and_stops_on_sigterm(void)
{
    controller_run(SIGTERM);
}

static void test_stops_on_sigint(void)
{
    controller_run(SIGINT);
}

/* The API server goes away: the controller keeps running and retries, and
 * still shuts down cleanly. */
static void test_survives_server_loss(void)
{
    paths();
    char kc[] = "/tmp/optipod-cli-kc-XXXXXX";
    int fd = mkstemp(kc);
    ASSERT(fd >= 0);
    close(fd);
    static proc srv, op;
    char *sa[] = {fakeapi_server, "--kubeconfig-out", kc, "--deployments", "3", NULL};
    proc_start(&srv, sa);
    proc_wait_for(&srv, "ready https://", 10);
    char *oa[] = {optipod, "--kubeconfig",           kc,  "-v", "2", "--health-probe-bind-address",
                  "0",     "--metrics-bind-address", "0", NULL};
    proc_start(&op, oa);
    proc_wait_for(&op, "apps/v1 deployments: 3 objects listed", 10);
    kill(srv.pid, SIGKILL);
    proc_wait_exit(&srv, 5);
    /* Give it time to notice and back off at least once. */
    struct timespec ts = {1, 500 * 1000 * 1000};
    nanosleep(&ts, NULL);
    ASSERT_EQ_INT(waitpid(op.pid, NULL, WNOHANG), 0); /* still running */
    kill(op.pid, SIGTERM);
    int rc = proc_wait_exit(&op, 15);
    unlink(kc);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_STR_CONTAINS(op.out, "shutdown complete");
}

/* ---- --webhook-only --------------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    ASSERT_EQ_INT(fputs(text, f) >= 0, 1);
    ASSERT_EQ_INT(fclose(f), 0);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof a;
    ASSERT_EQ_INT(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ_INT(getsockname(s, (struct sockaddr *)&a, &n), 0);
    close(s);
    return ntohs(a.sin_port);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    opbuf *b = ud;
    return opbuf_append(b, p, size * n) == 0 ? size * n : 0;
}

/* --webhook-only serves admissions from its own caches of the workloads and
 * ReplicaSets, never lists pods or policies and never reconciles (no writes:
 * its Events or applies would show in the log), and stops cleanly. */
static void test_webhook_only_serves_without_reconciling(void)
{
    paths();
    char dir[] = "/tmp/optipod-cli-wh-XXXXXX", kc[600], seed[600], crt[600], key[600];
    ASSERT_NOT_NULL(mkdtemp(dir));
    snprintf(kc, sizeof kc, "%s/kubeconfig", dir);
    snprintf(seed, sizeof seed, "%s/seed.json", dir);
    snprintf(crt, sizeof crt, "%s/tls.crt", dir);
    snprintf(key, sizeof key, "%s/tls.key", dir);
    ophttpd_cert cert = {0};
    const char *sans[] = {"127.0.0.1", NULL};
    ASSERT_EQ_INT(ophttpd_cert_generate(&cert, "optipod-cli", sans, 1), 0);
    write_file(crt, cert.cert_pem);
    write_file(key, cert.key_pem);
    write_file(seed, whfix_seed_json);

    static proc srv, op;
    char *sa[] = {fakeapi_server, "--kubeconfig-out", kc, "--seed", seed, NULL};
    proc_start(&srv, sa);
    proc_wait_for(&srv, "ready https://", 10);
    char port[16];
    snprintf(port, sizeof port, "%d", free_port());
    char *oa[] = {optipod,
                  "--kubeconfig",
                  kc,
                  "-v",
                  "3",
                  "--webhook-only",
                  "--webhook-port",
                  port,
                  "--webhook-cert-dir",
                  dir,
                  "--health-probe-bind-address",
                  "127.0.0.1:0",
                  "--metrics-bind-address",
                  "0",
                  NULL};
    proc_start(&op, oa);
    proc_wait_for(&op, "apps/v1 replicasets: 1 objects listed", 10);
    proc_wait_for(&op, "webhook on https port", 10);
    static char resp[1 << 14];
    http_get(port_from(op.out, "health probes on"), "/readyz", resp, sizeof resp);
    ASSERT_STR_CONTAINS(resp, "HTTP/1.1 200");

    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%s/mutate-pods?timeout=5s", port);
    CURL *h = curl_easy_init();
    ASSERT_NOT_NULL(h);
    struct curl_blob ca = {cert.ca_pem, strlen(cert.ca_pem), CURL_BLOB_COPY};
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    opbuf body;
    opbuf_init(&body, 1 << 16);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    char review_json[2048];
    whfix_review(review_json, sizeof review_json, "6f1c-review");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, review_json);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    ASSERT_EQ_INT(cc, CURLE_OK);
    ASSERT_EQ_INT(code, 200);
    cJSON *rv = cJSON_Parse(opbuf_str(&body));
    opbuf_release(&body);
    cJSON *r = cJSON_GetObjectItem(rv, "response");
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(r, "uid")), "6f1c-review");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(r, "allowed")));
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(r, "patchType")), "JSONPatch");
    ASSERT_NOT_NULL(cJSON_GetStringValue(cJSON_GetObjectItem(r, "patch")));
    cJSON_Delete(rv);

    kill(op.pid, SIGTERM);
    int rc = proc_wait_exit(&op, 15);
    kill(srv.pid, SIGTERM);
    ASSERT_EQ_INT(proc_wait_exit(&srv, 10), 0);
    ophttpd_cert_release(&cert);
    unlink(kc);
    unlink(seed);
    unlink(crt);
    unlink(key);
    rmdir(dir);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_STR_CONTAINS(op.out, "webhook only: no reconcile here");
    ASSERT(strstr(op.out, "v1 pods") == NULL);
    ASSERT(strstr(op.out, "optimizationpolicies") == NULL);
    ASSERT(strstr(op.out, "reconcile Deployment/") == NULL);
    ASSERT(strstr(op.out, "usage from") == NULL);
    ASSERT(strstr(op.out, "\nE1") == NULL);
    ASSERT_STR_CONTAINS(op.out, "shutdown complete");
}

int main(void)
{
    TEST_RUN(test_help_and_version);
    TEST_RUN(test_bad_flags_exit_2_with_a_reason);
    TEST_RUN(test_bad_kubeconfig_is_a_clear_error);
    TEST_RUN(test_self_check_passes);
    TEST_RUN(test_runs_against_fake_server_and_stops_on_sigterm);
    TEST_RUN(test_stops_on_sigint);
    TEST_RUN(test_survives_server_loss);
    TEST_RUN(test_webhook_only_serves_without_reconciling);
    return test_summary();
}
