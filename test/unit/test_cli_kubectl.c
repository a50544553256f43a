/*
 * The kubectl-optipod binary as a user runs it: usage and flag errors (exit
 * 2), an unreachable server (exit 1, named), and every subcommand against the
 * fake API server in its own process (test/tools/fakeapi_server) seeded with
 * a managed workload and a policy.
 */
#include "test.h"

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

typedef struct proc {
    pid_t pid;
    int out_fd; /* stdout+stderr, non-blocking */
    char out[1 << 16];
    size_t len;
} proc;

static void proc_start(proc *p, char *const argv[])
{
    int fds[2];
    ASSERT_EQ_INT(pipe(fds), 0);
    p->len = 0;
    p->out[0] = '\0';
    p->pid = fork();
    ASSERT(p->pid >= 0);
    if (p->pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    p->out_fd = fds[0];
    fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
}

static void proc_drain(proc *p)
{
    for (;;) {
        if (p->len + 1 >= sizeof p->out)
            return;
        ssize_t n = read(p->out_fd, p->out + p->len, sizeof p->out - 1 - p->len);
        if (n <= 0)
            return;
        p->len += (size_t)n;
        p->out[p->len] = '\0';
    }
}

static double slow_factor(void)
{
    const char *s = getenv("OPTIPOD_SLOW");
    double f = s ? atof(s) : 1.0;
    return f >= 1.0 ? f : 1.0;
}

static void proc_wait_for(proc *p, const char *needle, double secs)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    int rounds = (int)(secs * slow_factor() * 50);
    for (int i = 0; i < rounds; i++) {
        proc_drain(p);
        if (strstr(p->out, needle))
            return;
        nanosleep(&ts, NULL);
    }
    test_fail(__FILE__, __LINE__, "no \"%s\" in output after %.0fs:\n%s", needle, secs, p->out);
}

static int proc_wait_exit(proc *p, double secs)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    int rounds = (int)(secs * slow_factor() * 100);
    for (int i = 0; i < rounds; i++) {
        proc_drain(p);
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            proc_drain(p);
            close(p->out_fd);
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        nanosleep(&ts, NULL);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    close(p->out_fd);
    p->pid = 0;
    test_fail(__FILE__, __LINE__, "process did not exit within %.0fs:\n%s", secs, p->out);
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
    ASSERT_EQ_INT(run(&p, "gitops", "jenkins", NULL, NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_EQ_INT(run(&p, "savings", "--cpu-price", "cheap", NULL, NULL, NULL, NULL, NULL), 2);
    ASSERT_STR_CONTAINS(p.out, "--cpu-price 'cheap'");
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

    kill(srv.pid, SIGTERM);
    proc_wait_exit(&srv, 10);
    unlink(kc);
    unlink(seedf);
}

int main(void)
{
    TEST_RUN(test_usage_and_flag_errors_exit_2);
    TEST_RUN(test_unreachable_server_is_named);
    TEST_RUN(test_subcommands_against_the_fake_server);
    return test_summary();
}
