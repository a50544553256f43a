/* libFuzzer target for the generated-name rules (metrics/window.h): any
 * string as a pod name. Every candidate owner mwin_candidates() reads from
 * it must match by mwin_pod_matches(), and the regex PromQL gets must say
 * the same as the C rule (through POSIX ERE, anchored as PromQL anchors),
 * for the candidates and for a name from the input's first bytes. */
#include "metrics/window.h"

#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

static int re_says(const char *kind, const char *name, const char *pod)
{
    opbuf b;
    opbuf_init(&b, 1 << 16);
    if (opbuf_puts(&b, "^(") || mwin_pod_regex(&b, kind, name) || opbuf_puts(&b, ")$"))
        abort();
    regex_t re;
    if (regcomp(&re, opbuf_str(&b), REG_EXTENDED | REG_NOSUB) != 0)
        abort(); /* a name is always escaped into a valid pattern */
    int m = regexec(&re, pod, 0, NULL, 0) == 0;
    regfree(&re);
    opbuf_release(&b);
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 300)
        return 0;
    char pod[301];
    memcpy(pod, data, size);
    pod[size] = '\0';
    if (strlen(pod) != size)
        return 0; /* names have no NUL; regexec reads C strings */
    mwin_cand c[3];
    size_t n = mwin_candidates(pod, c);
    if (n > 3)
        abort();
    static const char *const kinds[] = {"Deployment", "StatefulSet", "DaemonSet"};
    for (size_t i = 0; i < n; i++) {
        if (c[i].name_len == 0 || c[i].name_len >= size)
            abort();
        char name[301];
        memcpy(name, pod, c[i].name_len);
        name[c[i].name_len] = '\0';
        if (!mwin_pod_matches(c[i].kind, name, pod) || !re_says(c[i].kind, name, pod))
            abort();
    }
    /* a name taken from the front of the input (never empty), every kind */
    size_t cut = size ? data[0] % (size + 1) : 0;
    if (cut == 0)
        return 0;
    char name[301];
    memcpy(name, pod, cut);
    name[cut] = '\0';
    for (size_t k = 0; k < 3; k++)
        if (mwin_pod_matches(kinds[k], name, pod) != (re_says(kinds[k], name, pod) != 0))
            abort();
    return 0;
}
