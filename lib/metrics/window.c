/*
 * mwin: the generated pod names of each workload kind. See window.h.
 */
#include "metrics/window.h"

#include <errno.h>
#include <string.h>

#include "metrics/promql.h"

const char *mwin_method_name(mwin_method m)
{
    switch (m) {
    case MWIN_OWNERS:
        return "kube-state-metrics";
    case MWIN_NAMES:
        return "pod-names";
    case MWIN_CURRENT:
        break;
    }
    return "current-pods";
}

bool mwin_kind_known(const char *kind)
{
    return kind && (strcmp(kind, "Deployment") == 0 || strcmp(kind, "StatefulSet") == 0 ||
                    strcmp(kind, "DaemonSet") == 0);
}

int mwin_pod_regex(opbuf *out, const char *kind, const char *name)
{
    const char *tail;
    if (strcmp(kind, "Deployment") == 0)
        tail = "-[" MWIN_HASH_ALPHABET "]{6,10}-[" MWIN_RAND_ALPHABET "]{5}";
    else if (strcmp(kind, "StatefulSet") == 0)
        tail = "-(0|[1-9][0-9]*)";
    else if (strcmp(kind, "DaemonSet") == 0)
        tail = "-[" MWIN_RAND_ALPHABET "]{5}";
    else
        return -EINVAL;
    if (!name || !*name)
        return -EINVAL; /* Kubernetes names are never empty */
    int rc = promql_append_regex_literal(out, name);
    return rc ? rc : opbuf_puts(out, tail);
}

/* Length of the run of characters from `set` ending just before s + end. */
static size_t run_back(const char *s, size_t end, const char *set)
{
    size_t n = 0;
    while (n < end && strchr(set, s[end - 1 - n]))
        n++;
    return n;
}

static bool digits_ordinal(const char *s, size_t n)
{
    if (n == 0 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

size_t mwin_candidates(const char *pod, mwin_cand out[3])
{
    size_t n = strlen(pod), k = 0;
    /* <x>-<5 random>: a DaemonSet's, and a Deployment's with <x> = <name>-<hash> */
    if (n > MWIN_SUFFIX_LEN + 1 && pod[n - MWIN_SUFFIX_LEN - 1] == '-' &&
        run_back(pod, n, MWIN_RAND_ALPHABET) >= MWIN_SUFFIX_LEN) {
        size_t x = n - MWIN_SUFFIX_LEN - 1;
        size_t h = run_back(pod, x, MWIN_HASH_ALPHABET);
        /* the hash is the whole segment after the previous dash */
        if (h >= MWIN_HASH_MIN && h <= MWIN_HASH_MAX && x > h + 1 && pod[x - h - 1] == '-')
            out[k++] = (mwin_cand){"Deployment", x - h - 1};
        out[k++] = (mwin_cand){"DaemonSet", x};
    }
    const char *dash = strrchr(pod, '-');
    if (dash && dash > pod && digits_ordinal(dash + 1, strlen(dash + 1)))
        out[k++] = (mwin_cand){"StatefulSet", (size_t)(dash - pod)};
    return k;
}

bool mwin_pod_matches(const char *kind, const char *name, const char *pod)
{
    mwin_cand c[3];
    size_t n = mwin_candidates(pod, c), len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (strcmp(c[i].kind, kind) == 0 && c[i].name_len == len && strncmp(pod, name, len) == 0)
            return true;
    return false;
}

size_t mwin_rs_deployment_len(const char *rs)
{
    size_t n = strlen(rs), h = run_back(rs, n, MWIN_HASH_ALPHABET);
    if (h < MWIN_HASH_MIN || h > MWIN_HASH_MAX || n < h + 2 || rs[n - h - 1] != '-')
        return 0;
    return n - h - 1;
}
