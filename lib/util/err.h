/*
 * operr: a human-readable error carried out of a failing call.
 *
 * Functions that can fail for reasons a user must fix (a bad kubeconfig, a bad
 * policy field, a server's refusal) take an `operr *` and fill it with one line
 * that names the subject first, in quotes, then what was wrong:
 *   kubeconfig '/root/.kube/config': users[0].user.token-file: cannot read ...
 * The caller may pass NULL when it does not care. Nothing is allocated.
 */
#ifndef OPTIPOD_UTIL_ERR_H
#define OPTIPOD_UTIL_ERR_H

#define OPERR_MAX 512

typedef struct operr {
    char msg[OPERR_MAX];
} operr;

/* Set the message (truncated to fit); returns `code` so callers can write
 * `return operr_set(err, -EINVAL, "...")`. A NULL err is allowed. */
int operr_set(operr *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix an existing message: "prefix: old message". */
int operr_wrap(operr *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void operr_clear(operr *err);

#endif
