/*
 * Replays a fuzz target's committed corpus (test/fuzz/corpus/<target>/) as
 * a regression test in make test, built with the ordinary compiler and, in
 * CI, under ASan/UBSan and valgrind: the inputs that once crashed a parser
 * (kept there as seeds) must keep passing without libFuzzer or clang.
 *
 * One binary per target, named after it; run from the repository root. Each
 * input that returns is a pass; one that aborts or trips a sanitizer ends the
 * binary, which test/run.sh reports as a crash naming it.
 */
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    (void)argc;
    char self[PATH_MAX], dir[PATH_MAX + 32];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(dir, sizeof dir, "test/fuzz/corpus/%s", basename(self));
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: cannot open (run from the repository root)\n", dir);
        return 1;
    }
    char *names[4096];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < sizeof names / sizeof names[0])
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], by_name);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        char path[2 * PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        struct stat st;
        if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
            if (f)
                fclose(f);
            free(names[i]);
            continue;
        }
        uint8_t *buf = malloc((size_t)st.st_size + 1);
        size_t len = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
        fclose(f);
        if (!buf || len != (size_t)st.st_size) {
            printf("FAIL %s: cannot read it\n", path);
            failed++;
        } else {
            printf("run  %s", names[i]); /* the name stands before any crash report */
            fflush(stdout);
            LLVMFuzzerTestOneInput(buf, len); /* an abort ends the binary: a crash */
            printf(": ok\n");
            passed++;
        }
        free(buf);
        free(names[i]);
    }
    if (passed + failed == 0) {
        printf("FAIL %s: no inputs\n", dir);
        failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
