/*
 * opflag: Kubernetes-style command-line flags, table driven.
 *
 *   --name=value, --name value, -n value, --bool, --bool=false, -v 2, --v=2
 *
 * Parsing stops at "--" or the first non-flag argument (its index is
 * returned through *rest). An unknown flag, a missing value or a value of the
 * wrong type is an error naming the flag and the value; the caller prints it and
 * exits 2, as kubectl and the controller-runtime binaries do.
 *
 * Targets are caller-owned; string targets receive pointers into argv (no copy).
 */
#ifndef OPTIPOD_UTIL_FLAGS_H
#define OPTIPOD_UTIL_FLAGS_H

#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

enum opflag_type {
    OPFLAG_BOOL,     /* int *, 0/1 */
    OPFLAG_STRING,   /* const char ** */
    OPFLAG_INT,      /* long * */
    OPFLAG_DURATION, /* uint64_t * milliseconds; Go syntax: 300ms, 30s, 5m, 1h30m */
    OPFLAG_LIST,     /* opflag_list *: repeatable, every value kept in order */
};

/* Values of a repeatable flag; `v` is caller storage of `max` entries. */
typedef struct opflag_list {
    const char **v;
    int n;
    int max;
} opflag_list;

typedef struct opflag {
    const char *name; /* long name without dashes */
    char shorthand;   /* single-letter alias, or 0 */
    enum opflag_type type;
    void *target;
    const char *usage; /* one line */
} opflag;

int opflag_parse(const opflag *flags, int nflags, int argc, char **argv, int *rest, operr *err);
/* Print "Flags:" and one line per flag with its usage. */
void opflag_usage(FILE *out, const opflag *flags, int nflags);
/* Parse a Go duration ("1h30m", "250ms", "0"); 0 or -EINVAL. */
int opflag_parse_duration(const char *s, uint64_t *ms);

#endif
