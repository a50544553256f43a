/*
 * The optipod binary as an operator runs it, against the fake API server (its
 * own process) with usage in the real Prometheus on loopback:
 *  - leader election is on by default: two instances on the same API server
 *    contend for the same Lease; exactly one writes, the other logs who holds
 *    the Lease (once, not on every retry) and takes over when the holder exits
 *    (SIGTERM releases the Lease).
 */
#include "test.h"
#include "kube/config.h"
#include "support/promserver.h"
#include "support/proc.h"
#include "util/buf.h"

#include <curl/curl.h>

#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NS "shop"

static char optipod[512], fakeapi_server[512], dir[64];

/* Children still running when a test fails are killed at exit. */
static proc *live[8];

static void kill_live(void)
{
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i] && live[i]->pid > 0)
            kill(live[i]->pid, SIGKILL);
}

static void start(proc *p, char *const argv[])
{
    proc_start(p, argv);
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (!live[i] || live[i] == p || live[i]->pid <= 0) {
            live[i] = p;
            break;
        }
}

static void setup(void)
{
    const char *b = getenv("OPTIPOD_BUILD");
    snprintf(optipod, sizeof optipod, "%s/optipod", b && *b ? b : "build/rel");
    snprintf(fakeapi_server, sizeof fakeapi_server, "%s/tools/fakeapi_server",
             b && *b ? b : "build/rel");
    if (access(optipod, X_OK) != 0 || access(fakeapi_server, X_OK) != 0)
        test_fail(__FILE__, __LINE__, "%s or %s not built", optipod, fakeapi_server);
    if (!promsrv_available())
        test_skip("Prometheus is not installed (make test installs it)");
    snprintf(dir, sizeof dir, "/tmp/optipod-ops-XXXXXX");
    ASSERT_NOT_NULL(mkdtemp(dir));
    atexit(kill_live);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    ASSERT(fputs(text, f) >= 0);
    ASSERT_EQ_INT(fclose(f), 0);
}

/* ---- the cluster: two Deployments, their ReplicaSets and pods, one policy ------------------- */

/* Deployment `name` (labelled for the policy when `selected`) with one container "app" asking
 * for 1 CPU and 1 GiB, its ReplicaSet and two pods. */
static void seed_workload(opbuf *b, const char *name, int selected)
{
    opbuf_printf(
        b,
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\","
        "\"namespace\":\"" NS "\",\"uid\":\"%s-uid\",\"labels\":{\"app\":\"%s\"%s}},"
        "\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},"
        "\"template\":{\"metadata\":{\"labels\":{\"app\":\"%s\"}},\"spec\":{"
        "\"containers\":[{\"name\":\"app\",\"image\":\"registry.invalid/app:1\","
        "\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]}}},"
        "\"status\":{\"observedGeneration\":1,\"replicas\":2,\"updatedReplicas\":2,"
        "\"readyReplicas\":2,\"availableReplicas\":2}},",
        name, name, name, selected ? ",\"optipod.io/optimize\":\"true\"" : "", name, name);
    opbuf_printf(b,
                 "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":"
                 "\"%s-rs\",\"namespace\":\"" NS "\",\"uid\":\"%s-rs-uid\",\"ownerReferences\":"
                 "[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"%s\",\"uid\":"
                 "\"%s-uid\",\"controller\":true}]},\"spec\":{\"replicas\":2,\"selector\":{"
                 "\"matchLabels\":{\"app\":\"%s\"}}}},",
                 name, name, name, name, name);
    for (int i = 0; i < 2; i++)
        opbuf_printf(b,
                     "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s-rs-%d\","
                     "\"namespace\":\"" NS "\",\"uid\":\"%s-pod-%d\",\"labels\":{\"app\":\"%s\"},"
                     "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\","
                     "\"name\":\"%s-rs\",\"uid\":\"%s-rs-uid\",\"controller\":true}]},\"spec\":{"
                     "\"containers\":[{\"name\":\"app\",\"image\":\"registry.invalid/app:1\","
                     "\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]},"
                     "\"status\":{\"phase\":\"Running\"}},",
                     name, i, name, i, name, name, name);
}

/* The seed file for fakeapi_server: the namespace, "web" (selected) and "api" (not yet), and
 * a Recommend policy: the leader publishes recommendations to the workloads' annotations. */
static void write_seed(const char *path)
{
    opbuf b;
    opbuf_init(&b, 1 << 20);
    opbuf_puts(&b, "[{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"" NS
                   "\",\"labels\":{\"kubernetes.io/metadata.name\":\"" NS "\"}}},");
    seed_workload(&b, "web", 1);
    seed_workload(&b, "api", 0);
    opbuf_puts(&b, "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\","
                   "\"metadata\":{\"name\":\"rec\",\"namespace\":\"" NS "\",\"generation\":1},"
                   "\"spec\":{\"mode\":\"Recommend\",\"selector\":{\"workloadSelector\":{"
                   "\"matchLabels\":{\"optipod.io/optimize\":\"true\"}}},\"metricsConfig\":{"
                   "\"provider\":\"prometheus\",\"rollingWindow\":\"3h\",\"percentile\":\"P90\"},"
                   "\"minHistory\":{\"samples\":10,\"duration\":\"1h\"},"
                   "\"reconcileInterval\":\"10s\"}}]");
    write_file(path, opbuf_str(&b));
    opbuf_release(&b);
}

/* 3 h of usage for every seeded pod, ending 15 min ago (promtool backfills only the past):
 * 0.2 cores and 200 MiB for container app. */
static void usage(opbuf *om)
{
    time_t start = time(NULL) - 3 * 3600 - 900;
    static const char *const pods[] = {"web-rs-0", "web-rs-1", "api-rs-0", "api-rs-1"};
    static const char *const fam[] = {"container_cpu_usage_seconds_total counter",
                                      "container_memory_working_set_bytes gauge"};
    for (int m = 0; m < 2; m++) {
        opbuf_printf(om, "# TYPE %s\n", fam[m]);
        for (size_t p = 0; p < 4; p++)
            for (int k = 0; k <= 330; k++)
                opbuf_printf(om,
                             "%.*s{namespace=\"" NS "\",pod=\"%s\",container=\"app\"} %g %lld\n",
                             (int)strcspn(fam[m], " "), fam[m], pods[p],
                             m == 0 ? 0.2 * k * 30 : 209715200.0, (long long)(start + k * 30));
    }
    opbuf_puts(om, "# EOF\n");
}

static promsrv prom;
static proc srv;
static char kc[128];

static void start_cluster(void)
{
    char seed[128];
    snprintf(kc, sizeof kc, "%s/kubeconfig", dir);
    snprintf(seed, sizeof seed, "%s/seed.json", dir);
    write_seed(seed);
    opbuf om;
    opbuf_init(&om, 8 << 20);
    usage(&om);
    operr err = {{0}};
    int rc = promsrv_start(&prom, om.data, om.len, &err);
    opbuf_release(&om);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "Prometheus: %s", err.msg);
    char *sa[] = {fakeapi_server, "--kubeconfig-out", kc, "--seed", seed, NULL};
    start(&srv, sa);
    proc_wait_for(&srv, "ready https://127.0.0.1:", 10);
}

static void stop_cluster(void)
{
    kill(srv.pid, SIGTERM);
    ASSERT_EQ_INT(proc_wait_exit(&srv, 10), 0);
    promsrv_stop(&prom);
    char path[160];
    snprintf(path, sizeof path, "%s/kubeconfig", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/seed.json", dir);
    unlink(path);
}

/* A controller with the defaults an operator gets (leader election included), /metrics on
 * an ephemeral loopback port. */
static void start_optipod(proc *p)
{
    char *a[] = {optipod,
                 "--kubeconfig",
                 kc,
                 "-v",
                 "2",
                 "--prometheus-url",
                 prom.url,
                 "--health-probe-bind-address",
                 "0",
                 "--metrics-bind-address",
                 "127.0.0.1:0",
                 NULL};
    start(p, a);
}

/* ---- talking to the processes ----------------------------------------------------------- */

static int metrics_port(proc *p)
{
    proc_wait_for(p, "metrics on 127.0.0.1:0 (port ", 10);
    const char *s = strstr(p->out, "metrics on 127.0.0.1:0 (port ");
    return atoi(s + strlen("metrics on 127.0.0.1:0 (port "));
}

/* The value of the sample `series` (name and labels exactly as exposed), or -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; (p = strstr(p, series)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static char scraped[4 << 20];

/* GET /metrics of a controller into `scraped`. */
static void scrape_all(proc *p)
{
    ASSERT_EQ_INT(promsrv_http_get(metrics_port(p), "/metrics", scraped, sizeof scraped), 200);
}

static double scrape(proc *p, const char *series)
{
    scrape_all(p);
    return sample(scraped, series);
}

static size_t body_cb(char *p, size_t size, size_t n, void *ud)
{
    return opbuf_append(ud, p, size * n) == 0 ? size * n : 0;
}

/* A request to the fake API server as a user with the kubeconfig's credentials; returns
 * the HTTP status. */
static long kube(const char *method, const char *path, const char *ctype, const char *body)
{
    kcfg cfg;
    kcfg_init(&cfg);
    operr err = {{0}};
    if (kcfg_load_file(&cfg, kc, NULL, &err) != 0)
        test_fail(__FILE__, __LINE__, "%s", err.msg);
    char url[1024], auth[1024], ct[128];
    snprintf(url, sizeof url, "%s%s", cfg.server, path);
    CURL *h = curl_easy_init();
    ASSERT_NOT_NULL(h);
    struct curl_slist *hdr = NULL;
    const char *tok = kcfg_bearer(&cfg, &err);
    if (tok && *tok) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
        hdr = curl_slist_append(hdr, auth);
    }
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        hdr = curl_slist_append(hdr, ct);
    }
    struct curl_blob ca = {cfg.ca_data, cfg.ca_data_len, CURL_BLOB_COPY};
    struct curl_blob crt = {cfg.cert_data, cfg.cert_data_len, CURL_BLOB_COPY};
    struct curl_blob key = {cfg.key_data, cfg.key_data_len, CURL_BLOB_COPY};
    opbuf out;
    opbuf_init(&out, 1 << 20);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (cfg.ca_data)
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
    if (cfg.cert_data && cfg.key_data) {
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &crt);
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    kcfg_release(&cfg);
    if (cc != CURLE_OK)
        test_fail(__FILE__, __LINE__, "%s %s: %s", method, path, curl_easy_strerror(cc));
    opbuf_release(&out);
    return code;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The identity a process campaigns as ("... as <id> (only the holder writes)"). */
static void identity_of(proc *p, char *out, size_t cap)
{
    proc_wait_for(p, "leader election: lease optipod-system/optipod-leader as ", 10);
    const char *s = strstr(p->out, "leader election: lease optipod-system/optipod-leader as ") +
                    strlen("leader election: lease optipod-system/optipod-leader as ");
    size_t n = strcspn(s, " \n");
    ASSERT(n < cap);
    memcpy(out, s, n);
    out[n] = '\0';
}

/* ---- leader election by default -------------------------------------------------------- */

static void test_two_instances_one_writer_then_takeover(void)
{
    setup();
    start_cluster();
    static proc a, b;
    char id_a[256], id_b[256], held[400];

    /* A: started with no leader-election flag at all, on the chart's Lease. */
    start_optipod(&a);
    identity_of(&a, id_a, sizeof id_a);
    proc_wait_for(&a, "started leading", 10);
    proc_wait_for(&a, "reconcile Deployment/" NS "/web: applied", 30);

    /* B: the same command (a local run next to an installed controller). */
    start_optipod(&b);
    identity_of(&b, id_b, sizeof id_b);
    ASSERT(strcmp(id_a, id_b) != 0);
    snprintf(held, sizeof held, "lease 'optipod-system/optipod-leader': held by %s;", id_a);
    proc_wait_for(&b, held, 10);
    proc_wait_for(&b, "optipod.io/v1alpha1 optimizationpolicies: 1 objects listed", 10);
    proc_wait_for(&b, "apps/v1 deployments: 2 objects listed", 10);
    /* Three retry periods (2 s each) as a candidate: the holder is logged once, and B, whose
     * caches are as complete as A's, has reconciled nothing and written nothing. */
    struct timespec ts = {6, 500 * 1000 * 1000};
    nanosleep(&ts, NULL);
    proc_drain(&b);
    ASSERT_EQ_INT(count(b.out, "held by"), 1);
    ASSERT(strstr(b.out, "started leading") == NULL);
    ASSERT(strstr(b.out, "reconcile ") == NULL);
    ASSERT(scrape(&b, "optipod_api_writes_total") == 0);
    ASSERT(scrape(&a, "optipod_api_writes_total") >= 1);

    /* The holder exits: SIGTERM releases the Lease and B takes over at its next try. */
    kill(a.pid, SIGTERM);
    ASSERT_EQ_INT(proc_wait_exit(&a, 15), 0);
    ASSERT_STR_CONTAINS(a.out, "stopped leading");
    proc_wait_for(&b, "started leading", 10);
    /* ... and B writes: the policy now selects "api" as well. */
    ASSERT_EQ_INT(kube("PATCH", "/apis/apps/v1/namespaces/" NS "/deployments/api",
                       "application/merge-patch+json",
                       "{\"metadata\":{\"labels\":{\"optipod.io/optimize\":\"true\"}}}"),
                  200);
    proc_wait_for(&b, "reconcile Deployment/" NS "/api: applied", 30);
    ASSERT(scrape(&b, "optipod_api_writes_total") >= 1);
    /* A never wrote "api": it was not selected while A led. */
    ASSERT(strstr(a.out, "Deployment/" NS "/api: applied") == NULL);

    kill(b.pid, SIGTERM);
    ASSERT_EQ_INT(proc_wait_exit(&b, 15), 0);
    ASSERT(strstr(b.out, "\nE1") == NULL);
    stop_cluster();
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    TEST_RUN(test_two_instances_one_writer_then_takeover);
    int rc = test_summary();
    if (dir[0])
        rmdir(dir);
    curl_global_cleanup();
    return rc;
}
