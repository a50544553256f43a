/*
 * The e2e harness (e2e/), as far as it can be checked without a cluster. The
 * scenarios only ever run against a real API server, so what they lean on is
 * checked here where it can be: run.sh says why it skips (never a silent
 * pass), the scripts are clean under shellcheck, and lib.sh's usage data,
 * backfilled into the real Prometheus the way a scenario does it, answers the
 * controller's own query with the rates and working sets the scenario wrote,
 * and lib.sh's exit trap stops that Prometheus and removes its files.
 */
#include "test.h"
#include "metrics/promql.h"
#include "support/proc.h"
#include "util/buf.h"

#include <curl/curl.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The scripts shellcheck reads: everything a reviewer runs by hand or CI runs. */
#define SCRIPTS "e2e/run.sh e2e/lib.sh e2e/scenarios/*.sh test/*.sh .ci/run"

static char tmp[PATH_MAX];

static const char *tmpdir(void)
{
    if (!tmp[0]) {
        snprintf(tmp, sizeof tmp, "%s/optipod-e2e-test-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        ASSERT_NOT_NULL(mkdtemp(tmp));
    }
    return tmp;
}

static int run_bash(proc *p, const char *script, double secs)
{
    char *argv[] = {"/bin/bash", "-c", (char *)script, NULL};
    proc_start(p, argv);
    return proc_wait_exit(p, secs);
}

/* No KUBECONFIG and no ~/.kube/config: a skip with the reason and a summary
 * that counts it as skipped, exit 0. */
static void test_run_skips_without_a_cluster(void)
{
    static proc p;
    char script[2 * PATH_MAX];
    snprintf(script, sizeof script, "env -u KUBECONFIG HOME='%s' e2e/run.sh", tmpdir());
    ASSERT_EQ_INT(run_bash(&p, script, 20), 0);
    ASSERT_STR_CONTAINS(p.out, "e2e: SKIPPED: no KUBECONFIG set and no ~/.kube/config");
    ASSERT_STR_CONTAINS(p.out, "0 passed, 0 failed, 1 skipped");
    ASSERT(!strstr(p.out, "== e2e ")); /* no scenario started */
}

/* A kubeconfig whose cluster does not answer: kubectl's own complaint is
 * the reason given. kubectl is a stand-in on the PATH that fails the way
 * kubectl does against a closed port. */
static void test_run_skips_when_the_cluster_does_not_answer(void)
{
    char bin[PATH_MAX + 8], kubectl[PATH_MAX + 16], kc[PATH_MAX + 16];
    snprintf(bin, sizeof bin, "%s/bin", tmpdir());
    snprintf(kubectl, sizeof kubectl, "%s/kubectl", bin);
    snprintf(kc, sizeof kc, "%s/kubeconfig", tmpdir());
    ASSERT(mkdir(bin, 0755) == 0 || errno == EEXIST);
    FILE *f = fopen(kubectl, "w");
    ASSERT_NOT_NULL(f);
    fputs("#!/bin/sh\necho 'The connection to the server 127.0.0.1:1 was refused - did you "
          "specify the right host or port?' >&2\nexit 1\n",
          f);
    fclose(f);
    ASSERT_EQ_INT(chmod(kubectl, 0755), 0);
    f = fopen(kc, "w");
    ASSERT_NOT_NULL(f);
    fputs("apiVersion: v1\nkind: Config\nclusters: []\n", f);
    fclose(f);
    static proc p;
    char script[4 * PATH_MAX];
    snprintf(script, sizeof script, "PATH='%s':\"$PATH\" KUBECONFIG='%s' e2e/run.sh", bin, kc);
    ASSERT_EQ_INT(run_bash(&p, script, 20), 0);
    ASSERT_STR_CONTAINS(p.out, "e2e: SKIPPED: the cluster in '");
    ASSERT_STR_CONTAINS(p.out, "does not answer: The connection to the server 127.0.0.1:1 was "
                               "refused");
    ASSERT_STR_CONTAINS(p.out, "0 passed, 0 failed, 1 skipped");
    ASSERT(!strstr(p.out, "== e2e "));
}

/* Scripts that only run against a real cluster get no other check here;
 * warnings and errors fail (style and info notes do not). */
static void test_scripts_pass_shellcheck(void)
{
    if (system("command -v shellcheck >/dev/null 2>&1") != 0)
        test_skip("shellcheck is not installed (make test installs it)");
    static proc p;
    int rc = run_bash(&p, "shellcheck --severity=warning -x -P SCRIPTDIR -P e2e " SCRIPTS, 60);
    if (rc != 0)
        test_fail(__FILE__, __LINE__, "shellcheck found problems:\n%s", p.out);
}

static size_t on_body(char *d, size_t sz, size_t n, void *ud)
{
    return opbuf_append(ud, d, sz * n) == 0 ? sz * n : 0;
}

typedef struct want {
    const char *pod, *container;
    double cores, bytes;
    int seen_cpu, seen_mem, mem_n;
} want;

typedef struct seen {
    want *w;
    size_t n;
} seen;

static int collect(const promql_sample *s, void *ud)
{
    seen *x = ud;
    for (size_t i = 0; i < x->n; i++) {
        want *w = &x->w[i];
        if (strcmp(s->pod, w->pod) != 0 || strcmp(s->container, w->container) != 0)
            continue;
        if (strcmp(s->stat, "cpu_q") == 0) {
            /* a constant rate: every quantile of it is the rate */
            ASSERT_NEAR(s->value, w->cores, w->cores * 1e-6);
            w->seen_cpu = 1;
        } else if (strcmp(s->stat, "mem_max") == 0) {
            ASSERT_NEAR(s->value, w->bytes, 0.5);
            w->seen_mem = 1;
        } else if (strcmp(s->stat, "mem_n") == 0) {
            w->mem_n = (int)s->value;
        }
    }
    return 0;
}

/* What a scenario does before it starts the controller (e2e_usage, then
 * e2e_prometheus), then the query the controller makes for those pods. */
static void test_usage_data_answers_the_controllers_query(void)
{
    if (access("/usr/bin/prometheus", X_OK) != 0 || access("/usr/bin/promtool", X_OK) != 0)
        test_skip("Prometheus is not installed (make test installs it)");
    char done[PATH_MAX + 8];
    snprintf(done, sizeof done, "%s/done", tmpdir());
    char script[4 * PATH_MAX];
    /* KUBECONFIG points nowhere: lib.sh's exit trap deletes the scenario's
     * namespace with kubectl, which must not reach a cluster from here. */
    snprintf(script, sizeof script,
             "export KUBECONFIG=/nonexistent; . e2e/lib.sh; e2e_need_prometheus; "
             "pods='web-a web-b'; "
             "e2e_usage \"$E2E_TMP/usage.om\" \"$pods\" app:0.2:209715200 sidecar:0.02:41943040; "
             "e2e_prometheus \"$E2E_TMP/usage.om\"; "
             "echo \"READY $E2E_PROM_URL $E2E_NS $E2E_TMP ${E2E_PIDS[0]}\"; "
             "for _ in $(seq 600); do [ -e '%s' ] && exit 0; sleep 0.1; done; exit 3",
             done);
    static proc p;
    char *argv[] = {"/bin/bash", "-c", script, NULL};
    proc_start(&p, argv);
    proc_wait_for(&p, "READY ", 90);
    char url[128], ns[128], dir[PATH_MAX];
    int pid = 0;
    const char *line = strstr(p.out, "READY ");
    ASSERT_EQ_INT(sscanf(line, "READY %127s %127s %4095s %d", url, ns, dir, &pid), 4);

    const char *pods[] = {"web-a", "web-b"};
    promql_opts o = {.percentile = 0.9, .window_s = 3 * 3600};
    opbuf q, form, body;
    opbuf_init(&q, 1 << 16);
    opbuf_init(&form, 1 << 18);
    opbuf_init(&body, 1 << 22);
    ASSERT_EQ_INT(promql_build(&q, ns, pods, 2, &o), 0);
    ASSERT_EQ_INT(opbuf_puts(&form, "query="), 0);
    ASSERT_EQ_INT(promql_append_form(&form, q.data, q.len), 0);
    ASSERT_EQ_INT(opbuf_printf(&form, "&time=%lld", (long long)time(NULL)), 0);
    char qurl[256];
    snprintf(qurl, sizeof qurl, "%s/api/v1/query", url);
    CURL *h = curl_easy_init();
    ASSERT_NOT_NULL(h);
    curl_easy_setopt(h, CURLOPT_URL, qurl);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, form.data);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    ASSERT_EQ_INT(cc, CURLE_OK);
    if (code != 200)
        test_fail(__FILE__, __LINE__, "query answered %ld: %s", code, opbuf_str(&body));

    want w[] = {{.pod = "web-a", .container = "app", .cores = 0.2, .bytes = 209715200},
                {.pod = "web-a", .container = "sidecar", .cores = 0.02, .bytes = 41943040},
                {.pod = "web-b", .container = "app", .cores = 0.2, .bytes = 209715200},
                {.pod = "web-b", .container = "sidecar", .cores = 0.02, .bytes = 41943040}};
    seen x = {w, sizeof w / sizeof w[0]};
    operr err = {0};
    ASSERT_EQ_INT(promql_parse(body.data, body.len, collect, &x, &err), 0);
    for (size_t i = 0; i < x.n; i++) {
        if (!w[i].seen_cpu || !w[i].seen_mem)
            test_fail(__FILE__, __LINE__, "no cpu_q/mem_max for %s/%s in %s", w[i].pod,
                      w[i].container, opbuf_str(&body));
        /* 2 h 45 min of 30 s samples inside the 3 h window */
        ASSERT_CMP_INT(w[i].mem_n, >=, 300);
    }
    opbuf_release(&q);
    opbuf_release(&form);
    opbuf_release(&body);

    /* The scenario ends: its exit trap stops Prometheus and removes its files. */
    FILE *f = fopen(done, "w");
    ASSERT_NOT_NULL(f);
    fclose(f);
    ASSERT_EQ_INT(proc_wait_exit(&p, 30), 0);
    /* stopped by the trap (e2e_stop), not left running */
    ASSERT(kill(pid, 0) != 0 && errno == ESRCH);
    ASSERT_NE_INT(access(dir, F_OK), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    TEST_RUN(test_run_skips_without_a_cluster);
    TEST_RUN(test_run_skips_when_the_cluster_does_not_answer);
    TEST_RUN(test_scripts_pass_shellcheck);
    TEST_RUN(test_usage_data_answers_the_controllers_query);
    char cmd[PATH_MAX + 16];
    if (tmp[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp);
    }
    curl_global_cleanup();
    return test_summary();
}
