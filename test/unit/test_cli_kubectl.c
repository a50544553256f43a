/*
 * The kubectl-optipod binary as a user runs it: usage and flag errors (exit
 * 2), an unreachable server (exit 1, named), and every subcommand against the
 * fake API server in its own process (test/tools/fakeapi_server) seeded with
 * a managed workload and a policy.
 */
#include "test.h"
#include "support/proc.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *build_dir(void)
{
    const char *b = getenv("OPTIPOD_BUILD");
    return b && *b ? b : "build/rel";
}

static char bin[512], server[512];

static void paths(void)
{
    snprintf(bin, sizeof bin, "%s/kubectl-optipod", build_dir());
    snprintf(server, sizeof server, "%s/tools/fakeapi_server", build_dir());
    if (access(bin, X_OK) != 0 || access(server, X_OK) != 0)
        test_fail(__FILE__, __LINE__, "%s or %s not built", bin, server);
}

/* Run kubectl-optipod with up to 12 arguments; returns the exit status. */
static int run(proc *p, const char *a0, const char *a1, const char *a2, const char *a3,
               const char *a4, const char *a5, const char *a6, const char *a7)
{
    char *argv[] = {bin,        (char *)a0, (char *)a1, (char *)a2, (char *)a3,
                    (char *)a4, (char *)a5, (char *)a6, (char *)a7, NULL};
    proc_start(p, argv);
    return proc_wait_exit(p, 20);
}

static void test_usage_and_flag_errors_exit_2(void)
{
    paths();
    static proc p;
    ASSERT_EQ_INT(run(&p, "--help", NULL, NULL, NULL, NULL, NULL, NULL, NULL), 0);
    ASSERT_STR_CONTAINS(p.out, "recommendations [-n NS | -A]");
    ASSERT_STR_CONTAINS(p.out, "--kubeconfig");
    ASSERT_EQ_INT(run(&p, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_EQ_INT(run(&p, "recommendations", "--bogus", NULL, NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_STR_CONTAINS(p.out, "bogus");
    ASSERT_EQ_INT(run(&p, "frobnicate", NULL, NULL, NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_STR_CONTAINS(p.out, "unknown command 'frobnicate'");
    ASSERT_EQ_INT(run(&p, "recommendations", "-o", "xml", NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_STR_CONTAINS(p.out, "-o 'xml'");
    ASSERT_EQ_INT(run(&p, "explain", "web", NULL, NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_STR_CONTAINS(p.out, "expected deployment/NAME");
    ASSERT_EQ_INT(run(&p, "export", "--out", "/tmp/x", "--format", "zip", NULL, NULL, NULL), 2);
    /* a refused value names itself and what is accepted */
    ASSERT_EQ_INT(run(&p, "export", "--out", "/tmp/x", "--format", "kustomise", NULL, NULL, NULL),
                  2);
    ASSERT_STR_CONTAINS(p.out, "--format 'kustomise': expected kustomize, patch or helm-values");
    ASSERT_EQ_INT(run(&p, "export", "--format", "patch", NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_STR_CONTAINS(p.out, "export needs --out DIR");
    ASSERT_EQ_INT(run(&p, "gitops", "jenkins", NULL, NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_STR_CONTAINS(p.out, "gitops 'jenkins': expected argocd or flux");
    ASSERT_EQ_INT(run(&p, "--help", NULL, NULL, NULL, NULL, NULL, NULL, NULL), 0);
    ASSERT_STR_CONTAINS(p.out, "manage KIND/NAME");
    ASSERT_EQ_INT(run(&p, "savings", "--cpu-price", "cheap", NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_STR_CONTAINS(p.out, "--cpu-price 'cheap'");
    ASSERT_EQ_INT(run(&p, "gitops", NULL, NULL, NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_STR_CONTAINS(p.out, "gitops takes one argument");
    ASSERT_EQ_INT(run(&p, "version", "extra", NULL, NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_STR_CONTAINS(p.out, "version takes no argument");
}

/* `kubectl optipod version` needs no cluster: no kubeconfig is read. */
static void test_version(void)
{
    paths();
    static proc p;
    ASSERT_EQ_INT(run(&p, "version", "--kubeconfig", "/nonexistent", NULL, NULL, NULL, NULL, NULL),
                  0);
    ASSERT_STR_EQ(p.out, "kubectl-optipod " OPTIPOD_VERSION "\n");
    ASSERT_EQ_INT(run(&p, "--help", NULL, NULL, NULL, NULL, NULL, NULL, NULL), 0);
    ASSERT_STR_CONTAINS(p.out, "\n  version\n");
}

static void test_unreachable_server_is_named(void)
{
    paths();
    char kc[] = "/tmp/optipod-kubectl-kc-XXXXXX";
    int fd = mkstemp(kc);
    ASSERT(fd >= 0);
    const char *cfg = "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n"
                      "  cluster:\n    server: https://127.0.0.1:1\n"
                      "    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n"
                      "    token: t\ncontexts:\n- name: c\n  context:\n    cluster: k\n"
                      "    user: u\n";
    ASSERT_EQ_INT(write(fd, cfg, strlen(cfg)), (ssize_t)strlen(cfg));
    close(fd);
    static proc p;
    ASSERT_EQ_INT(run(&p, "--kubeconfig", kc, "recommendations", "-A", NULL, NULL, NULL, NULL), 1);
    ASSERT_STR_CONTAINS(p.out, "error: cannot reach https://127.0.0.1:1");
    ASSERT_EQ_INT(
        run(&p, "recommendations", "--kubeconfig", "/nonexistent/kc", NULL, NULL, NULL, NULL, NULL),
        1);
    ASSERT_STR_CONTAINS(p.out, "/nonexistent/kc");
    unlink(kc);
}

static const char seed_json[] =
    "[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
    "\"namespace\":\"shop\",\"annotations\":{\"optipod.io/cpu-request.app\":\"250m\","
    "\"optipod.io/memory-request.app\":\"384Mi\",\"optipod.io/strategy\":\"recommend\","
    "\"optipod.io/explanation\":\"{\\\"policy\\\":\\\"shop/p\\\",\\\"mode\\\":\\\"Recommend\\\","
    "\\\"provider\\\":\\\"prometheus\\\",\\\"window\\\":\\\"168h\\\",\\\"percentile\\\":95,"
    "\\\"safetyFactor\\\":1.15,\\\"containers\\\":[{\\\"container\\\":\\\"app\\\","
    "\\\"decision\\\":\\\"apply\\\",\\\"cpu\\\":{\\\"decision\\\":\\\"apply\\\",\\\"request\\\":"
    "\\\"250m\\\",\\\"steps\\\":[]},\\\"memory\\\":{\\\"decision\\\":\\\"apply\\\","
    "\\\"request\\\":\\\"384Mi\\\",\\\"steps\\\":[]}}]}\"}},"
    "\"spec\":{\"replicas\":2,\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\","
    "\"image\":\"web:1\",\"resources\":{\"requests\":{\"cpu\":\"500m\",\"memory\":"
    "\"512Mi\"}}}]}}}},"
    "{\"apiVersion\":\"optipod.io/v1alpha1\",\"kind\":\"OptimizationPolicy\",\"metadata\":{"
    "\"name\":\"p\",\"namespace\":\"shop\"},\"spec\":{\"selector\":{\"workloadSelector\":{}}}}]";

static void test_subcommands_against_the_fake_server(void)
{
    paths();
    char kc[] = "/tmp/optipod-kubectl-kc-XXXXXX", seedf[] = "/tmp/optipod-kubectl-seed-XXXXXX";
    int fd = mkstemp(kc);
    ASSERT(fd >= 0);
    close(fd);
    fd = mkstemp(seedf);
    ASSERT(fd >= 0);
    ASSERT_EQ_INT(write(fd, seed_json, strlen(seed_json)), (ssize_t)strlen(seed_json));
    close(fd);
    static proc srv, p;
    char *sa[] = {server, "--kubeconfig-out", kc, "--seed", seedf, NULL};
    proc_start(&srv, sa);
    proc_wait_for(&srv, "ready https://127.0.0.1:", 10);

    ASSERT_EQ_INT(run(&p, "--kubeconfig", kc, "recommendations", "-A", "-o", "csv", NULL, NULL), 0);
    ASSERT_STR_CONTAINS(p.out, "shop,Deployment,web,app,false,2,500m,250m,-250m,512Mi,384Mi");
    ASSERT_EQ_INT(run(&p, "recommendations", "--kubeconfig", kc, "-n", "other", NULL, NULL, NULL),
                  0);
    ASSERT_STR_CONTAINS(p.out, "No recommendations found.");
    ASSERT_EQ_INT(run(&p, "--kubeconfig", kc, "explain", "deploy/web", "-n", "shop", NULL, NULL),
                  0);
    ASSERT_STR_CONTAINS(p.out, "provider:    prometheus, window 168h");
    ASSERT_EQ_INT(run(&p, "--kubeconfig", kc, "explain", "deploy/nope", "-n", "shop", NULL, NULL),
                  1);
    ASSERT_STR_CONTAINS(p.out, "not managed by optipod");
    ASSERT_EQ_INT(run(&p, "--kubeconfig", kc, "savings", "-A", NULL, NULL, NULL, NULL), 0);
    ASSERT_STR_CONTAINS(p.out, "Prices: $0.031611 per core-hour");
    ASSERT_STR_CONTAINS(p.out, "TOTAL");
    ASSERT_EQ_INT(run(&p, "--kubeconfig", kc, "gitops", "argocd", "-n", "shop", NULL, NULL), 0);
    ASSERT_STR_CONTAINS(p.out, "managedFieldsManagers");

    char dir[64], file[128];
    snprintf(dir, sizeof dir, "/tmp/optipod-kubectl-out-%d", (int)getpid());
    snprintf(file, sizeof file, "%s/deployment-shop-web.yaml", dir);
    ASSERT_EQ_INT(
        run(&p, "--kubeconfig", kc, "export", "--format", "kustomize", "--out", dir, "-A"), 0);
    ASSERT_STR_CONTAINS(p.out, "1 workload file(s)");
    size_t n1, n2;
    char *first = test_read_file(file, &n1);
    ASSERT_STR_CONTAINS(first, "cpu: 250m");
    ASSERT_EQ_INT(
        run(&p, "--kubeconfig", kc, "export", "--format", "kustomize", "--out", dir, "-A"), 0);
    char *second = test_read_file(file, &n2);
    ASSERT_STR_EQ(first, second);
    free(first);
    free(second);
    unlink(file);
    snprintf(file, sizeof file, "%s/kustomization.yaml", dir);
    unlink(file);
    rmdir(dir);

    if (run(&p, "--kubeconfig", kc, "release", "deploy/web", "-n", "shop", "--dry-run", NULL))
        test_fail(__FILE__, __LINE__, "release --dry-run:\n%s", p.out);
    ASSERT_STR_CONTAINS(p.out, "[dry run] Release of Deployment shop/web");
    ASSERT_EQ_INT(run(&p, "--kubeconfig", kc, "release", "deploy/web", "-n", "shop", NULL, NULL),
                  0);
    ASSERT_EQ_INT(run(&p, "--kubeconfig", kc, "recommendations", "-A", NULL, NULL, NULL, NULL), 0);
    ASSERT_STR_CONTAINS(p.out, "No recommendations found.");
    ASSERT_EQ_INT(run(&p, "--kubeconfig", kc, "manage", "deploy/web", "-n", "shop", NULL, NULL), 0);
    ASSERT_STR_CONTAINS(p.out, "Deployment shop/web: managed again");
    ASSERT_EQ_INT(run(&p, "--kubeconfig", kc, "manage", "deploy/web", "-n", "shop", NULL, NULL), 0);
    ASSERT_STR_CONTAINS(p.out, "not released; nothing to do");

    kill(srv.pid, SIGTERM);
    proc_wait_exit(&srv, 10);
    unlink(kc);
    unlink(seedf);
}

int main(void)
{
    TEST_RUN(test_usage_and_flag_errors_exit_2);
    TEST_RUN(test_version);
    TEST_RUN(test_unreachable_server_is_named);
    TEST_RUN(test_subcommands_against_the_fake_server);
    return test_summary();
}
