/*
 * oplog: leveled logging to stderr, in the style of klog.
 *
 *   I1122 02:16:17.123456 optipod] watch apps/v1 deployments: resumed at rv 250
 *
 * Levels: errors and warnings always print; info prints at -v 0 and above;
 * OPLOG_V(n, ...) prints only when the verbosity is at least n. The sink can be
 * redirected (tests capture it to assert on messages).
 */
#ifndef OPTIPOD_UTIL_LOG_H
#define OPTIPOD_UTIL_LOG_H

#include <stdio.h>

enum oplog_level { OPLOG_ERROR = 'E', OPLOG_WARN = 'W', OPLOG_INFO = 'I' };

void oplog_set_verbosity(int v);
int oplog_verbosity(void);
/* Where lines go; NULL restores stderr. */
void oplog_set_sink(FILE *f);
void oplog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define OPLOG_E(...) oplog(OPLOG_ERROR, __VA_ARGS__)
#define OPLOG_W(...) oplog(OPLOG_WARN, __VA_ARGS__)
#define OPLOG_I(...) oplog(OPLOG_INFO, __VA_ARGS__)
#define OPLOG_V(n, ...)                                                                            \
    do {                                                                                           \
        if (oplog_verbosity() >= (n))                                                              \
            oplog(OPLOG_INFO, __VA_ARGS__);                                                        \
    } while (0)

#endif
