/*
 * The project's test harness: one binary per test/unit/test_*.c file.
 *
 *   static void test_parses_page(void) { ASSERT_EQ_INT(page.count, 3); }
 *   int main(void) { TEST_RUN(test_parses_page); return test_summary(); }
 *
 * A failed assertion prints both values with file:line and ends that test
 * (longjmp), the others still run. test_summary() prints the closing line
 * "N passed, N failed" that test/run.sh sums and CI reads.
 * Filter with TEST_FILTER=substring.
 */
#ifndef OPTIPOD_TEST_H
#define OPTIPOD_TEST_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern jmp_buf test_jmp;
extern int test_passed, test_failed, test_skipped;
extern const char *test_current;

void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
void test_run_one(const char *name, void (*fn)(void));
int test_summary(void);
/* Mark the current test skipped with a reason (ends the test). */
void test_skip(const char *why, ...) __attribute__((format(printf, 1, 2), noreturn));
/* The directory of the real kube-apiserver v1.24 recordings: $OPTIPOD_FIXTURES when set,
 * else test/data/kube-apiserver-v1.24 of the source tree holding the test binary. */
const char *test_fixture_dir(void);
/* Read a whole file into a malloc'd NUL-terminated string; fails the test on error. */
char *test_read_file(const char *path, size_t *len);
/* A directory of this test binary's own, made on first use and removed by test_summary(). */
const char *test_tmpdir(void);
/* The path of an executable the build made ("tools/x" under $OPTIPOD_BUILD, default
 * build/rel), in static storage; fails the test when it is not built. */
const char *test_built(const char *rel);

#define TEST_RUN(fn) test_run_one(#fn, fn)

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            test_fail(__FILE__, __LINE__, "assertion failed: %s", #cond);                          \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                                        \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_);               \
    } while (0)

#define ASSERT_NE_INT(a, b)                                                                        \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ == b_)                                                                              \
            test_fail(__FILE__, __LINE__, "%s != %s: both %lld", #a, #b, a_);                      \
    } while (0)

#define ASSERT_CMP_INT(a, op, b)                                                                   \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (!(a_ op b_))                                                                           \
            test_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b, a_, b_);          \
    } while (0)

#define ASSERT_NEAR(a, b, eps)                                                                     \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b), e_ = (double)(eps);                             \
        if (!(a_ - b_ <= e_ && b_ - a_ <= e_))                                                     \
            test_fail(__FILE__, __LINE__, "%s ~= %s: %.9g vs %.9g (eps %g)", #a, #b, a_, b_, e_);  \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,                    \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                     \
    } while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                                                           \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_))                                                                \
            test_fail(__FILE__, __LINE__, "%s contains \"%s\": got \"%s\"", #hay, n_,              \
                      h_ ? h_ : "(null)");                                                         \
    } while (0)

#define ASSERT_NULL(p)     ASSERT((p) == NULL)
#define ASSERT_NOT_NULL(p) ASSERT((p) != NULL)

#endif
