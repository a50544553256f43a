/*
 * The optipod binary as an operator runs it, against the fake API server (its
 * own process) with usage in the real Prometheus on loopback:
 *  - leader election is on by default: two instances on the same API server
 *    contend for the same Lease; exactly one writes, the other logs who holds
 *    the Lease (once, not on every retry) and takes over when the holder exits
 *    (SIGTERM releases the Lease);
 *  - /metrics, scraped from the running binary, passes the real `promtool check metrics`
 *    and holds what operators of VPA, KRR and Goldilocks look at: current requests next
 *    to recommendations for exactly the managed workloads, reconcile, API, usage-query and
 *    webhook latencies and errors, leadership, build info and the process_* families;
 *  - every PromQL expression of the chart's Grafana dashboard and alert rules names only
 *    metrics that this /metrics exports.
 */
#include "test.h"
#include "httpd/httpd.h"
#include "kube/config.h"
#include "util/yaml2json.h"
#include "support/promserver.h"
#include "support/proc.h"
#include "util/buf.h"

#include <cJSON.h>
#include <ctype.h>
#include <curl/curl.h>

#include <math.h>
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

/* Deployment `name` (with the extra labels `labels`, e.g. ",\"k\":\"v\"") with one container
 * "app" asking for 1 CPU and 1 GiB, its ReplicaSet and two pods. */
static void seed_workload(opbuf *b, const char *name, const char *labels)
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
        name, name, name, labels, name, name);
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

#define REC_LABEL  ",\"optipod.io/optimize\":\"true\""
#define AUTO_LABEL ",\"optipod.io/auto\":\"true\""

/* The seed file for fakeapi_server: the namespace; "web" under a Recommend policy (the leader
 * publishes recommendations to its annotations), "api" not selected (yet), "cart" under an
 * Auto policy with the webhook strategy (the webhook injects its recommendation). */
static void write_seed(const char *path)
{
    opbuf b;
    opbuf_init(&b, 1 << 20);
    opbuf_puts(&b, "[{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"" NS
                   "\",\"labels\":{\"kubernetes.io/metadata.name\":\"" NS "\"}}},");
    seed_workload(&b, "web", REC_LABEL);
    seed_workload(&b, "api", "");
    seed_workload(&b, "cart", AUTO_LABEL);
    opbuf_puts(&b, "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\","
                   "\"metadata\":{\"name\":\"rec\",\"namespace\":\"" NS "\",\"generation\":1},"
                   "\"spec\":{\"mode\":\"Recommend\",\"selector\":{\"workloadSelector\":{"
                   "\"matchLabels\":{\"optipod.io/optimize\":\"true\"}}},\"metricsConfig\":{"
                   "\"provider\":\"prometheus\",\"rollingWindow\":\"3h\",\"percentile\":\"P90\"},"
                   "\"minHistory\":{\"samples\":10,\"duration\":\"1h\"},"
                   "\"reconcileInterval\":\"10s\"}},");
    opbuf_puts(&b, "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\","
                   "\"metadata\":{\"name\":\"auto\",\"namespace\":\"" NS "\",\"generation\":1},"
                   "\"spec\":{\"mode\":\"Auto\",\"selector\":{\"workloadSelector\":{"
                   "\"matchLabels\":{\"optipod.io/auto\":\"true\"}}},\"metricsConfig\":{"
                   "\"provider\":\"prometheus\",\"rollingWindow\":\"3h\",\"percentile\":\"P90\"},"
                   "\"minHistory\":{\"samples\":10,\"duration\":\"1h\"},"
                   "\"updateStrategy\":{\"strategy\":\"webhook\"},"
                   "\"reconcileInterval\":\"10s\"}}]");
    write_file(path, opbuf_str(&b));
    opbuf_release(&b);
}

/* 3 h of usage for every seeded pod, ending 15 min ago (promtool backfills only the past):
 * 0.2 cores and 200 MiB for container app. */
static void usage(opbuf *om)
{
    time_t start = time(NULL) - 3 * 3600 - 900;
    static const char *const pods[] = {"web-rs-0", "web-rs-1",  "api-rs-0",
                                       "api-rs-1", "cart-rs-0", "cart-rs-1"};
    static const char *const fam[] = {"container_cpu_usage_seconds_total counter",
                                      "container_memory_working_set_bytes gauge"};
    for (int m = 0; m < 2; m++) {
        opbuf_printf(om, "# TYPE %s\n", fam[m]);
        for (size_t p = 0; p < sizeof pods / sizeof pods[0]; p++)
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
 * an ephemeral loopback port, and the NULL-terminated extra flags. */
static void start_optipod(proc *p, char *const *extra)
{
    char *a[32] = {optipod, "--kubeconfig",           kc,           "-v",
                   "2",     "--prometheus-url",       prom.url,     "--health-probe-bind-address",
                   "0",     "--metrics-bind-address", "127.0.0.1:0"};
    size_t n = 11;
    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof a / sizeof a[0]; i++)
        a[n++] = extra[i];
    a[n] = NULL;
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

/* One HTTPS request: the server verified against ca (PEM), an optional bearer token, client
 * certificate and Content-Type; the body answered goes to out (may be NULL). Returns the
 * HTTP status; a transport failure fails the test. */
typedef struct tls_id {
    const char *ca, *cert, *key, *token; /* PEM (ca required), or NULL */
    size_t ca_len, cert_len, key_len;
} tls_id;

static long https(const char *method, const char *url, const tls_id *id, const char *ctype,
                  const char *body, opbuf *out)
{
    char auth[1024], ct[128];
    CURL *h = curl_easy_init();
    ASSERT_NOT_NULL(h);
    struct curl_slist *hdr = NULL;
    if (id->token && *id->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", id->token);
        hdr = curl_slist_append(hdr, auth);
    }
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        hdr = curl_slist_append(hdr, ct);
    }
    struct curl_blob ca = {(void *)id->ca, id->ca_len, CURL_BLOB_COPY};
    struct curl_blob crt = {(void *)id->cert, id->cert_len, CURL_BLOB_COPY};
    struct curl_blob key = {(void *)id->key, id->key_len, CURL_BLOB_COPY};
    opbuf sink;
    opbuf_init(&sink, 1 << 20);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
    if (id->cert && id->key) {
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &crt);
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out ? out : &sink);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    opbuf_release(&sink);
    if (cc != CURLE_OK)
        test_fail(__FILE__, __LINE__, "%s %s: %s", method, url, curl_easy_strerror(cc));
    return code;
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
    char url[1024];
    snprintf(url, sizeof url, "%s%s", cfg.server, path);
    tls_id id = {cfg.ca_data,     cfg.cert_data,     cfg.key_data,    kcfg_bearer(&cfg, &err),
                 cfg.ca_data_len, cfg.cert_data_len, cfg.key_data_len};
    long code = https(method, url, &id, ctype, body, NULL);
    kcfg_release(&cfg);
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
    start_optipod(&a, NULL);
    identity_of(&a, id_a, sizeof id_a);
    proc_wait_for(&a, "started leading", 10);
    proc_wait_for(&a, "reconcile Deployment/" NS "/web: applied", 30);

    /* B: the same command (a local run next to an installed controller). */
    start_optipod(&b, NULL);
    identity_of(&b, id_b, sizeof id_b);
    ASSERT(strcmp(id_a, id_b) != 0);
    snprintf(held, sizeof held, "lease 'optipod-system/optipod-leader': held by %s;", id_a);
    proc_wait_for(&b, held, 10);
    proc_wait_for(&b, "optipod.io/v1alpha1 optimizationpolicies: 2 objects listed", 10);
    proc_wait_for(&b, "apps/v1 deployments: 3 objects listed", 10);
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

/* ---- the metric names a PromQL expression uses --------------------------------------------- */

static int ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

/* Call fn for every metric name in expr: identifiers that are not functions or aggregations
 * (followed by '('), keywords, label names in by/without/on/ignoring/group_x (...) lists,
 * label matchers {...}, ranges [...], strings, numbers or Grafana variables ($x, ${x}). */
static void promql_names(const char *e, void (*fn)(const char *name, void *ud), void *ud)
{
    static const char *const keywords[] = {
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
        "unless", "offset", "inf", "nan",
        /* aggregations may put by/without before their '(' */
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
        "topk", "quantile", NULL};
    int label_list = 0; /* the next (...) holds label names */
    for (const char *p = e; *p;) {
        char c = *p;
        if (c == '"' || c == '\'' || c == '`') {
            const char *q = p + 1;
            while (*q && *q != c)
                q += (*q == '\\' && q[1]) ? 2 : 1;
            p = *q ? q + 1 : q;
        } else if (c == '{' || c == '[') {
            char close = c == '{' ? '}' : ']';
            while (*p && *p != close)
                p++;
            if (*p)
                p++;
        } else if (c == '$') {
            p++;
            if (*p == '{') {
                while (*p && *p != '}')
                    p++;
                if (*p)
                    p++;
            } else {
                while (ident_char(*p))
                    p++;
            }
        } else if (c == '(' && label_list) {
            while (*p && *p != ')')
                p++;
            label_list = 0;
        } else if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)p[1]))) {
            while (isalnum((unsigned char)*p) || *p == '.' || *p == '+' || *p == '-')
                p++;
        } else if (ident_start(c)) {
            char name[256];
            size_t n = 0;
            while (ident_char(*p) && n + 1 < sizeof name)
                name[n++] = *p++;
            name[n] = '\0';
            const char *q = p;
            while (*q == ' ' || *q == '\n' || *q == '\t')
                q++;
            int kw = 0;
            for (size_t i = 0; keywords[i]; i++)
                if (strcmp(name, keywords[i]) == 0)
                    kw = 1;
            if (kw)
                label_list = strcmp(name, "by") == 0 || strcmp(name, "without") == 0 ||
                             strcmp(name, "on") == 0 || strcmp(name, "ignoring") == 0 ||
                             strcmp(name, "group_left") == 0 || strcmp(name, "group_right") == 0;
            else if (*q != '(')
                fn(name, ud);
        } else {
            p++;
        }
    }
}

typedef struct name_check {
    const char *scraped;
    char missing[2048];
    size_t found;
} name_check;

/* name is exported when /metrics has "# TYPE name ", or is name's histogram series. */
static void check_name(const char *name, void *ud)
{
    name_check *x = ud;
    char want[300], base[256];
    snprintf(want, sizeof want, "\n# TYPE %s ", name);
    x->found++;
    if (strstr(x->scraped, want))
        return;
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(name), k = strlen(sfx[i]);
        if (n > k && strcmp(name + n - k, sfx[i]) == 0 && n - k < sizeof base) {
            memcpy(base, name, n - k);
            base[n - k] = '\0';
            snprintf(want, sizeof want, "\n# TYPE %s histogram\n", base);
            if (strstr(x->scraped, want))
                return;
        }
    }
    if (!strstr(x->missing, name) && strlen(x->missing) + strlen(name) + 2 < sizeof x->missing)
        snprintf(x->missing + strlen(x->missing), sizeof x->missing - strlen(x->missing), " %s",
                 name);
}

/* Every string under a key `key` anywhere in j. */
static void each_string(const cJSON *j, const char *key, void (*fn)(const char *s, void *ud),
                        void *ud)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        if (it->string && strcmp(it->string, key) == 0 && cJSON_IsString(it))
            fn(it->valuestring, ud);
        if (cJSON_IsObject(it) || cJSON_IsArray(it))
            each_string(it, key, fn, ud);
    }
}

static void check_expr(const char *expr, void *ud)
{
    promql_names(expr, check_name, ud);
}

/* label_values(metric{...}, label): the metric is a name too (the label is not). */
static void check_var_query(const char *q, void *ud)
{
    const char *p = strstr(q, "label_values(");
    char metric[256];
    size_t n = 0;
    if (!p || !strchr(p, ','))
        return;
    for (p += strlen("label_values("); *p == ' '; p++)
        ;
    while (ident_char(*p) && n + 1 < sizeof metric)
        metric[n++] = *p++;
    metric[n] = '\0';
    if (n)
        check_name(metric, ud);
}

static void test_promql_names_finds_only_metrics(void)
{
    static const char *const cases[][2] = {
        {"histogram_quantile(0.99, sum by (le, verb) "
         "(rate(optipod_api_request_duration_seconds_bucket{job=~\"$job\"}[$__rate_interval])))",
         " optipod_api_request_duration_seconds_bucket"},
        {"sum by (namespace, pod) (rate(a_total{outcome=\"errored\"}[5m]) or rate(b_total[5m])) "
         "/ ignoring (x) group_left (y) c > 0.05 and on (z) d offset 5m",
         " a_total b_total c d"},
        {"time() - process_start_time_seconds{job=~\"${job}\"} > bool 1e3",
         " process_start_time_seconds"},
        {"max(optipod_is_leader) < 1", " optipod_is_leader"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        name_check x = {.scraped = ""};
        promql_names(cases[i][0], check_name, &x); /* nothing is "exported": all missing */
        ASSERT_STR_EQ(x.missing, cases[i][1]);
    }
}

/* The chart's dashboard and alerts against what the binary exports right now. */
static void check_monitoring_names(const char *text)
{
    name_check x = {.scraped = text};
    size_t n;
    char *dash = test_read_file("charts/optipod/dashboards/optipod.json", &n);
    cJSON *d = cJSON_ParseWithLength(dash, n);
    free(dash);
    ASSERT_NOT_NULL(d);
    each_string(d, "expr", check_expr, &x);
    each_string(d, "definition", check_var_query, &x);
    size_t dash_names = x.found;
    cJSON_Delete(d);
    char *rules = test_read_file("charts/optipod/rules/optipod.rules.yaml", &n);
    cJSON *r = NULL;
    ASSERT_EQ_INT(yaml2json_parse(rules, n, &r, NULL), 0);
    free(rules);
    each_string(r, "expr", check_expr, &x);
    cJSON_Delete(r);
    if (x.missing[0])
        test_fail(__FILE__, __LINE__,
                  "the dashboard or the alerts name metrics /metrics does not export:%s",
                  x.missing);
    ASSERT(dash_names >= 30 && x.found > dash_names); /* both files were read */
}

/* ---- /metrics ------------------------------------------------------------------------------ */

/* POST an AdmissionReview for a pod of `rs` (body NULL: a malformed one) to the webhook;
 * returns the HTTP status. */
static long review(int port, const char *ca_pem, const char *rs)
{
    char body[2048], url[96];
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":"
             "{\"uid\":\"r-%s\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
             "\"resource\":{\"group\":\"\",\"version\":\"v1\",\"resource\":\"pods\"},"
             "\"namespace\":\"" NS "\",\"operation\":\"CREATE\",\"object\":{\"apiVersion\":\"v1\","
             "\"kind\":\"Pod\",\"metadata\":{\"generateName\":\"%s-\",\"namespace\":\"" NS "\","
             "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":"
             "\"%s\",\"uid\":\"%s-uid\",\"controller\":true}]},\"spec\":{\"containers\":[{"
             "\"name\":\"app\",\"image\":\"registry.invalid/app:1\",\"resources\":{}}]}}}}",
             rs ? rs : "x", rs ? rs : "x", rs ? rs : "x", rs ? rs : "x");
    snprintf(url, sizeof url, "https://127.0.0.1:%d/mutate-pods?timeout=5s", port);
    tls_id id = {.ca = ca_pem, .ca_len = strlen(ca_pem)};
    opbuf out;
    opbuf_init(&out, 1 << 20);
    long code = https("POST", url, &id, "application/json", rs ? body : "{\"kind\":", &out);
    if (rs && code == 200)
        ASSERT_STR_CONTAINS(opbuf_str(&out), "\"allowed\":true");
    opbuf_release(&out);
    return code;
}

/* `promtool check metrics` on text; fails the test with promtool's complaints. */
static void promtool_check(const char *text)
{
    char path[160], cmd[400];
    snprintf(path, sizeof path, "%s/metrics.txt", dir);
    write_file(path, text);
    snprintf(cmd, sizeof cmd, "%s check metrics <%s", PROMSRV_PROMTOOL, path);
    static proc p;
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    proc_start(&p, argv);
    int rc = proc_wait_exit(&p, 30);
    unlink(path);
    if (rc != 0 || p.out[0])
        test_fail(__FILE__, __LINE__, "promtool check metrics exited %d:\n%s", rc, p.out);
}

#define WL(w) "namespace=\"" NS "\",kind=\"Deployment\",workload=\"" w "\",container=\"app\""

/* Every family the controller exports, VPA/KRR/Goldilocks' figures first. */
static const char *const k_families[] = {
    "optipod_container_resource_requests",
    "optipod_container_resource_limits",
    "optipod_container_recommended_requests",
    "optipod_container_recommended_limits",
    "optipod_reconcile_duration_seconds",
    "optipod_api_request_duration_seconds",
    "optipod_api_request_errors_total",
    "optipod_usage_query_duration_seconds",
    "optipod_usage_query_errors_total",
    "optipod_webhook_review_duration_seconds",
    "optipod_is_leader",
    "optipod_build_info",
    "optipod_metrics_series_dropped_total",
    "optipod_loop_handles",
    "optipod_queue_depth",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "optipod_reconciles_total",
    "optipod_api_writes_total",
    "optipod_gitops_loops_total",
    "optipod_duplicate_controller_total",
    "optipod_status_writes_total",
    "optipod_record_writes_total",
    "optipod_webhook_reviews_total",
    "optipod_webhook_late_total",
    "optipod_informer_objects",
    "optipod_informer_cache_bytes",
    "optipod_watch_events_total",
    "optipod_watch_restarts_total",
    "optipod_reconciles_pending",
    "optipod_loop_stall_max_seconds",
    "optipod_loop_stall_cpu_max_seconds",
    "optipod_loop_stalls_total",
};

static void test_metrics_pass_promtool_and_follow_what_is_managed(void)
{
    setup();
    start_cluster();
    char crt[160], key[160], port[16];
    snprintf(crt, sizeof crt, "%s/tls.crt", dir);
    snprintf(key, sizeof key, "%s/tls.key", dir);
    ophttpd_cert cert = {0};
    const char *sans[] = {"127.0.0.1", NULL};
    ASSERT_EQ_INT(ophttpd_cert_generate(&cert, "optipod-ops", sans, 1), 0);
    write_file(crt, cert.cert_pem);
    write_file(key, cert.key_pem);
    snprintf(port, sizeof port, "%d", promsrv_free_port());
    static proc op;
    char *extra[] = {"--webhook-port", port, "--webhook-cert-dir", dir, NULL};
    start_optipod(&op, extra);
    proc_wait_for(&op, "webhook on https port", 10);
    proc_wait_for(&op, "reconcile Deployment/" NS "/web: applied", 30);
    proc_wait_for(&op, "reconcile Deployment/" NS "/cart: applied", 30);
    /* The webhook's three outcomes: cart's pod gets its recommendation, web's is admitted
     * unchanged (Recommend publishes, never injects), a malformed review is a 400. */
    ASSERT_EQ_INT(review(atoi(port), cert.ca_pem, "cart-rs"), 200);
    ASSERT_EQ_INT(review(atoi(port), cert.ca_pem, "web-rs"), 200);
    ASSERT_EQ_INT(review(atoi(port), cert.ca_pem, NULL), 400);

    scrape_all(&op);
    promtool_check(scraped);
    char want[256];
    size_t nfam = 0;
    for (size_t i = 0; i < sizeof k_families / sizeof k_families[0]; i++) {
        snprintf(want, sizeof want, "\n# TYPE %s ", k_families[i]);
        ASSERT_STR_CONTAINS(scraped, want);
    }
    for (const char *p = scraped; (p = strstr(p, "# TYPE ")) != NULL; p++)
        nfam++;
    ASSERT_EQ_INT(nfam, sizeof k_families / sizeof k_families[0]);

    /* current requests (cores, bytes) next to the recommendation: 0.2 cores x 1.2 would be
     * 0.24, but one step may decrease by 50% at most (maxDecreasePercent) */
    ASSERT_NEAR(sample(scraped, "optipod_container_resource_requests{" WL(
                                    "web") ",resource=\"cpu\",unit=\"core\"}"),
                1, 0);
    ASSERT_NEAR(sample(scraped, "optipod_container_resource_requests{" WL(
                                    "web") ",resource=\"memory\",unit=\"byte\"}"),
                1073741824.0, 0);
    ASSERT_NEAR(sample(scraped, "optipod_container_recommended_requests{" WL(
                                    "cart") ",resource=\"cpu\",unit=\"core\"}"),
                0.5, 0);
    ASSERT(sample(scraped, "optipod_container_recommended_requests{" WL(
                               "web") ",resource=\"memory\",unit=\"byte\"}") > 200e6);
    ASSERT(strstr(scraped, "workload=\"api\"") == NULL); /* not managed */
    ASSERT_NEAR(sample(scraped, "optipod_is_leader{lease=\"optipod-system/optipod-leader\"}"), 1,
                0);
    ASSERT_STR_CONTAINS(scraped, "optipod_build_info{version=\"" OPTIPOD_VERSION "\",libuv=\"");
    ASSERT(sample(scraped, "optipod_reconcile_duration_seconds_count{outcome=\"applied\"}") >= 2);
    ASSERT(sample(scraped, "optipod_api_request_duration_seconds_count{verb=\"PATCH\"}") >= 2);
    ASSERT(sample(scraped, "optipod_usage_query_duration_seconds_count{provider=\"prometheus\"}") >=
           1);
    ASSERT(sample(scraped,
                  "optipod_usage_query_errors_total{provider=\"prometheus\",reason=\"http\"}") <
           0); /* no such series: every query worked */
    ASSERT_NEAR(
        sample(scraped, "optipod_webhook_review_duration_seconds_count{outcome=\"patched\"}"), 1,
        0);
    ASSERT_NEAR(
        sample(scraped, "optipod_webhook_review_duration_seconds_count{outcome=\"allowed\"}"), 1,
        0);
    ASSERT_NEAR(
        sample(scraped, "optipod_webhook_review_duration_seconds_count{outcome=\"errored\"}"), 1,
        0);
    ASSERT(sample(scraped, "process_resident_memory_bytes") > 1e6);
    ASSERT(sample(scraped, "process_open_fds") > 3);
    ASSERT(sample(scraped, "process_start_time_seconds") > 1.6e9);
    check_monitoring_names(scraped);

    /* web leaves its policy: its series go with it, cart's stay */
    ASSERT_EQ_INT(kube("PATCH", "/apis/apps/v1/namespaces/" NS "/deployments/web",
                       "application/merge-patch+json",
                       "{\"metadata\":{\"labels\":{\"optipod.io/optimize\":null}}}"),
                  200);
    proc_wait_for(&op, "reconcile Deployment/" NS "/web: skipped", 30);
    scrape_all(&op);
    ASSERT(strstr(scraped, "workload=\"web\"") == NULL);
    ASSERT_STR_CONTAINS(scraped, "workload=\"cart\"");
    promtool_check(scraped);
    /* cart is deleted: nothing is left of it */
    ASSERT_EQ_INT(kube("DELETE", "/apis/apps/v1/namespaces/" NS "/deployments/cart", NULL, NULL),
                  200);
    for (int i = 0; i < 100; i++) { /* the watch brings the deletion */
        scrape_all(&op);
        if (!strstr(scraped, "workload="))
            break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ASSERT(strstr(scraped, "workload=") == NULL);

    kill(op.pid, SIGTERM);
    ASSERT_EQ_INT(proc_wait_exit(&op, 15), 0);
    ASSERT(strstr(op.out, "\nE1") == NULL);
    unlink(crt);
    unlink(key);
    ophttpd_cert_release(&cert);
    stop_cluster();
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    TEST_RUN(test_promql_names_finds_only_metrics);
    TEST_RUN(test_two_instances_one_writer_then_takeover);
    TEST_RUN(test_metrics_pass_promtool_and_follow_what_is_managed);
    int rc = test_summary();
    if (dir[0])
        rmdir(dir);
    curl_global_cleanup();
    return rc;
}
