#include "support/proc.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

void proc_start(proc *p, char *const argv[])
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

void proc_drain(proc *p)
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

void proc_wait_for(proc *p, const char *needle, double secs)
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

int proc_wait_exit(proc *p, double secs)
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

int proc_run_optipod(const char *args, const char *out_path, const char *err_path, char **out,
                     char **err)
{
    const char *b = getenv("OPTIPOD_BUILD");
    char bin[PATH_MAX];
    snprintf(bin, sizeof bin, "%s/optipod", b && *b ? b : "build/rel");
    if (access(bin, X_OK) != 0)
        test_skip("%s not built (make %s)", bin, bin);
    size_t n = strlen(bin) + strlen(args) + strlen(out_path) + strlen(err_path) + 16;
    char *cmd = malloc(n);
    ASSERT_NOT_NULL(cmd);
    snprintf(cmd, n, "%s %s >%s 2>%s", bin, args, out_path, err_path);
    int st = system(cmd);
    free(cmd);
    ASSERT(WIFEXITED(st));
    size_t len;
    if (out) {
        free(*out);
        *out = test_read_file(out_path, &len);
    }
    if (err) {
        free(*err);
        *err = test_read_file(err_path, &len);
    }
    return WEXITSTATUS(st);
}
