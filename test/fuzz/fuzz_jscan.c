/*
 * Fuzz jscan against an independent validator (fuzz/jsoracle.h) and cJSON:
 *  - jscan accepts exactly what the oracle accepts, and cJSON accepts all of it;
 *  - skipping every subtree reaches the same end as tokenizing it;
 *  - trusted mode never crashes and, on valid input, yields the same tokens;
 *  - string decoding is self-consistent (measure = write, C-string views agree)
 *    and, for a top-level string, equals cJSON's valuestring.
 * Any disagreement aborts.
 */
#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/jsoracle.h"
#include "util/jscan.h"

#define MAXTOK 4096

static void check_string(const jscan_tok *t)
{
    static char buf[65536 * 4];
    ssize_t n = jscan_unescape(t, NULL, 0);
    if (n < 0 || (size_t)n > sizeof buf || jscan_unescape(t, buf, sizeof buf) != n)
        abort();
    size_t l0 = jscan_strlen0(t);
    if (l0 > (size_t)n ||
        (memchr(buf, 0, (size_t)n) ? (size_t)((char *)memchr(buf, 0, (size_t)n) - buf)
                                   : (size_t)n) != l0)
        abort();
    static char c0[65536 * 4 + 1];
    if (jscan_strcpy0(t, c0) != l0 || memcmp(c0, buf, l0) != 0 || c0[l0] != 0)
        abort();
    if (!jscan_streq(t, c0, l0) || !jscan_strprefix(t, c0, l0 / 2) || !jscan_streq_tok(t, t))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    int oracle = jsoracle_valid(data, size);

    /* Full tokenization. */
    static enum jscan_type types[MAXTOK];
    size_t ntypes = 0;
    jscan s;
    jscan_tok t;
    int rc;
    jscan_init(&s, json, size);
    while ((rc = jscan_next(&s, &t)) == 0 && t.type != JSCAN_EOF) {
        if (ntypes < MAXTOK)
            types[ntypes++] = t.type;
        if (t.type == JSCAN_STR || t.type == JSCAN_KEY)
            check_string(&t);
        if (t.p < json || t.p + t.n > json + size)
            abort();
    }
    if ((rc == 0) != oracle)
        abort();
    cJSON *c = cJSON_ParseWithLength(json, size);
    if (oracle && !c)
        abort();
    if (oracle && cJSON_IsString(c)) {
        jscan_init(&s, json, size);
        char buf[65536];
        if (jscan_next(&s, &t) || t.type != JSCAN_STR || jscan_strlen0(&t) >= sizeof buf)
            abort();
        jscan_strcpy0(&t, buf);
        if (strcmp(buf, c->valuestring) != 0)
            abort();
    }
    cJSON_Delete(c);

    /* Skipping every container at depth 1 must agree with the full scan. */
    for (int trusted = 0; trusted < 2; trusted++) {
        if (trusted)
            jscan_init_trusted(&s, json, size);
        else
            jscan_init(&s, json, size);
        while ((rc = jscan_next(&s, &t)) == 0 && t.type != JSCAN_EOF) {
            if ((t.type == JSCAN_OBJ || t.type == JSCAN_ARR) && jscan_depth(&s) == 2) {
                const char *p0 = t.p;
                rc = jscan_skip(&s, &t);
                if (rc)
                    break;
                if (t.p != p0 || t.p + t.n > json + size ||
                    (t.p[t.n - 1] != '}' && t.p[t.n - 1] != ']'))
                    abort();
            }
        }
        if (!trusted && (rc == 0) != oracle)
            abort();
        if (trusted && oracle && rc != 0)
            abort();
    }

    /* Trusted tokenization of valid input gives the same token types. */
    jscan_init_trusted(&s, json, size);
    size_t i = 0;
    while ((rc = jscan_next(&s, &t)) == 0 && t.type != JSCAN_EOF) {
        if (oracle && i < ntypes && types[i] != t.type)
            abort();
        i++;
    }
    if (oracle && (rc != 0 || (ntypes < MAXTOK && i != ntypes)))
        abort();
    return 0;
}
