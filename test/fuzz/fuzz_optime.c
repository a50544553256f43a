/* libFuzzer target for optime_parse: any input either fails with -EINVAL, or
 * parses (with and without OPTIME_UTC, consistently) to a time whose
 * nanosecond spelling in UTC parses back to the same time, and is the input
 * itself when that was already such a spelling. */
#include "util/optime.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[64], b[OPTIME_STR_MAX];
    if (size >= sizeof s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    size_t len = strlen(s); /* the parser reads a C string: up to a NUL */
    optime t, u, z;
    int rc = optime_parse(s, 0, &t);
    int rz = optime_parse(s, OPTIME_UTC, &z);
    if (rc) {
        if (rc != -EINVAL || rz != -EINVAL)
            abort();
        return 0;
    }
    if (t.nsec < 0 || t.nsec > 999999999 || (rz && (rz != -EINVAL || s[len - 1] == 'Z')))
        abort();
    if (!rz && (z.sec != t.sec || z.nsec != t.nsec))
        abort();
    int n = optime_format(t, 9, b, sizeof b);
    if (n < 0) /* an offset moved it out of 0000-9999 */
        return t.sec < 0 || t.sec > 253402300799LL ? 0 : (abort(), 0);
    if (optime_parse(b, OPTIME_UTC, &u) || u.sec != t.sec || u.nsec != t.nsec)
        abort();
    if (!rz && n == (int)len && strcmp(b, s) != 0)
        abort();
    return 0;
}
