/*
 * proc: run a binary under test as a child process, with its stdout and
 * stderr captured, and wait for output or exit with deadlines scaled by
 * $OPTIPOD_SLOW (the binaries' own tests: test_cli, test_cli_kubectl).
 * Failures end the current test (test_fail).
 */
#ifndef OPTIPOD_TEST_PROC_H
#define OPTIPOD_TEST_PROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct proc {
    pid_t pid;
    int out_fd; /* stdout+stderr, non-blocking */
    char out[1 << 16];
    size_t len;
} proc;

/* Fork and exec argv[0]; output goes to p->out (capped, NUL-terminated). */
void proc_start(proc *p, char *const argv[]);
/* Read what output is available without blocking. */
void proc_drain(proc *p);
/* Wait until the output contains `needle`; fails the test after `secs`. */
void proc_wait_for(proc *p, const char *needle, double secs);
/* Wait for exit; returns the exit status (128 + signal when killed). Kills it
 * and fails the test after `secs`. */
int proc_wait_exit(proc *p, double secs);

/* Run `$OPTIPOD_BUILD/optipod ARGS` (default build/rel) through the shell,
 * stdout to out_path and stderr to err_path; skips the test when the binary
 * is not built. When out / err are not NULL, what *out / *err held is freed
 * and they receive the files' text (NUL-terminated; free them). Returns the
 * exit status. */
int proc_run_optipod(const char *args, const char *out_path, const char *err_path, char **out,
                     char **err);

#endif
