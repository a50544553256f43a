#include "test.h"

#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <unistd.h>

jmp_buf test_jmp;
int test_passed, test_failed, test_skipped;
const char *test_current;
static int test_current_skipped;

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stdout, "FAIL %s: %s:%d: ", test_current ? test_current : "?", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    longjmp(test_jmp, 1);
}

void test_skip(const char *why, ...)
{
    va_list ap;
    fprintf(stdout, "skip %s: ", test_current ? test_current : "?");
    va_start(ap, why);
    vfprintf(stdout, why, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    test_current_skipped = 1;
    longjmp(test_jmp, 2);
}

/* Tests run servers and clients on loopback; a peer that goes away must be an
 * EPIPE from write(), as in the binaries (which ignore SIGPIPE in main), not a
 * dead test process. */
__attribute__((constructor)) static void test_ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
}

void test_run_one(const char *name, void (*fn)(void))
{
    const char *filter = getenv("TEST_FILTER");
    if (filter && *filter && !strstr(name, filter))
        return;
    test_current = name;
    test_current_skipped = 0;
    int r = setjmp(test_jmp);
    if (r == 0) {
        fn();
        test_passed++;
        fprintf(stdout, "ok   %s\n", name);
    } else if (test_current_skipped) {
        test_skipped++;
    } else {
        test_failed++;
    }
    fflush(stdout);
    test_current = NULL;
}

static char test_tmp[PATH_MAX];

const char *test_tmpdir(void)
{
    if (!test_tmp[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(test_tmp, sizeof test_tmp, "%s/optipod-test-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(test_tmp)) {
            test_tmp[0] = '\0';
            test_fail(__FILE__, __LINE__, "mkdtemp: cannot make a temporary directory");
        }
    }
    return test_tmp;
}

const char *test_built(const char *rel)
{
    static char path[8][PATH_MAX];
    static int next;
    const char *b = getenv("OPTIPOD_BUILD");
    char *p = path[next++ % 8];
    snprintf(p, PATH_MAX, "%s/%s", b && *b ? b : "build/rel", rel);
    if (access(p, X_OK) != 0)
        test_fail(__FILE__, __LINE__, "%s is not built", p);
    return p;
}

int test_summary(void)
{
    if (test_tmp[0]) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", test_tmp);
    }
    if (test_skipped)
        printf("%d passed, %d failed, %d skipped\n", test_passed, test_failed, test_skipped);
    else
        printf("%d passed, %d failed\n", test_passed, test_failed);
    fflush(stdout);
    return test_failed ? 1 : 0;
}

#define TEST_FIXTURES "test/data/kube-apiserver-v1.24"

/* The recordings are in the source tree and the binaries somewhere below it
 * (build/rel/tests/...): walk up from the executable's directory to the first
 * one holding them, so no test depends on the current directory. */
const char *test_fixture_dir(void)
{
    static char dir[PATH_MAX];
    const char *d = getenv("OPTIPOD_FIXTURES");
    if (d && *d)
        return d;
    if (dir[0])
        return dir;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash;
        while ((slash = strrchr(exe, '/')) != NULL) {
            *slash = '\0';
            char probe[PATH_MAX + 64];
            snprintf(probe, sizeof probe, "%s/" TEST_FIXTURES "/README.md", exe);
            if (access(probe, R_OK) == 0 &&
                snprintf(dir, sizeof dir, "%s/" TEST_FIXTURES, exe) < (int)sizeof dir)
                return dir;
        }
    }
    dir[0] = '\0';
    return TEST_FIXTURES; /* not found: relative to the current directory */
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        test_fail(__FILE__, __LINE__, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(p);
        test_fail(__FILE__, __LINE__, "cannot read %s", path);
    }
    fclose(f);
    p[n] = '\0';
    if (len)
        *len = (size_t)n;
    return p;
}
