/* libFuzzer target for kq_parse: any input either fails with -EINVAL and a
 * message, or parses to a value whose canonical spelling parses back to the
 * same value. The spelling itself may change once (like Kubernetes, "62.5Ki"
 * prints "64000", which reads back as decimal and prints "64k"), then is stable. */
#include "engine/quantity.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kq q, r;
    operr e;
    char a[KQ_STR_MAX], b[KQ_STR_MAX];

    e.msg[0] = '\0';
    int rc = kq_parse(&q, (const char *)data, size, &e);
    if (rc != 0) {
        if (rc != -EINVAL || e.msg[0] == '\0')
            abort();
        return 0;
    }
    if (kq_format(&q, a, sizeof a) <= 0 || kq_parse_str(&r, a, NULL) != 0)
        abort();
    if (kq_cmp(&q, &r) != 0 || kq_format(&r, b, sizeof b) <= 0 || kq_parse_str(&q, b, NULL) != 0)
        abort();
    if (kq_cmp(&q, &r) != 0 || kq_format(&q, a, sizeof a) <= 0 || strcmp(a, b) != 0)
        abort();
    if (kq_format_si(&q, a, sizeof a) <= 0 || kq_parse_str(&r, a, NULL) != 0 || kq_cmp(&q, &r) != 0)
        abort();
    int64_t v;
    if (kq_to_int(&q, &v) != 0 && kq_to_int(&q, &v) != -ERANGE)
        abort();
    return 0;
}
