#include "util/flags.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int opflag_parse_duration(const char *s, uint64_t *ms)
{
    if (!s || !*s)
        return -EINVAL;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    uint64_t total = 0;
    const char *p = s;
    while (*p) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(p, &end, 10);
        if (errno || end == p)
            return -EINVAL;
        uint64_t unit;
        if (strncmp(end, "ms", 2) == 0) {
            unit = 1;
            end += 2;
        } else if (*end == 's') {
            unit = 1000;
            end++;
        } else if (*end == 'm') {
            unit = 60000;
            end++;
        } else if (*end == 'h') {
            unit = 3600000;
            end++;
        } else {
            return -EINVAL;
        }
        if (n > (UINT64_MAX - total) / unit)
            return -EINVAL;
        total += n * unit;
        p = end;
    }
    *ms = total;
    return 0;
}

static const opflag *opflag_find(const opflag *flags, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++) {
        if (len == 1 && flags[i].shorthand == name[0])
            return &flags[i];
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
            return &flags[i];
    }
    return NULL;
}

static int opflag_set(const opflag *f, const char *v, operr *err)
{
    char *end;
    switch (f->type) {
    case OPFLAG_BOOL:
        if (!v || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(int *)f->target = 1;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(int *)f->target = 0;
        else
            return operr_set(err, -EINVAL, "flag --%s: \"%s\" is not a boolean (true|false)",
                             f->name, v);
        return 0;
    case OPFLAG_STRING:
        *(const char **)f->target = v;
        return 0;
    case OPFLAG_INT:
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end)
            return operr_set(err, -EINVAL, "flag --%s: \"%s\" is not an integer", f->name, v);
        *(long *)f->target = n;
        return 0;
    case OPFLAG_LIST: {
        opflag_list *l = f->target;
        if (l->n >= l->max)
            return operr_set(err, -E2BIG, "flag --%s: at most %d values", f->name, l->max);
        l->v[l->n++] = v;
        return 0;
    }
    case OPFLAG_DURATION:
        if (opflag_parse_duration(v, (uint64_t *)f->target) != 0)
            return operr_set(err, -EINVAL,
                             "flag --%s: \"%s\" is not a duration (e.g. 30s, 5m, 1h30m)", f->name,
                             v);
        return 0;
    }
    return -EINVAL;
}

int opflag_parse(const opflag *flags, int nflags, int argc, char **argv, int *rest, operr *err)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (a[1] != '-' && len != 1)
            return operr_set(err, -EINVAL,
                             "unknown shorthand flag: %s (long flags take two dashes)", a);
        const opflag *f = opflag_find(flags, nflags, name, len);
        if (!f)
            return operr_set(err, -EINVAL, "unknown flag: %.*s%.*s", a[1] == '-' ? 2 : 1, a,
                             (int)len, name);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && f->type != OPFLAG_BOOL) {
            if (i + 1 >= argc)
                return operr_set(err, -EINVAL, "flag needs an argument: --%s", f->name);
            v = argv[++i];
        }
        int rc = opflag_set(f, v, err);
        if (rc)
            return rc;
    }
    if (rest)
        *rest = i;
    return 0;
}

void opflag_usage(FILE *out, const opflag *flags, int nflags)
{
    fprintf(out, "Flags:\n");
    for (int i = 0; i < nflags; i++) {
        const char *arg = "";
        switch (flags[i].type) {
        case OPFLAG_STRING:
        case OPFLAG_LIST:
            arg = " string";
            break;
        case OPFLAG_INT:
            arg = " int";
            break;
        case OPFLAG_DURATION:
            arg = " duration";
            break;
        case OPFLAG_BOOL:
            break;
        }
        char left[64];
        if (flags[i].shorthand)
            snprintf(left, sizeof left, "-%c, --%s%s", flags[i].shorthand, flags[i].name, arg);
        else
            snprintf(left, sizeof left, "    --%s%s", flags[i].name, arg);
        fprintf(out, "  %-34s %s\n", left, flags[i].usage);
    }
}
