/* libFuzzer target for opb64_decode: any input either fails with -EINVAL and a
 * reason, or decodes to bytes whose encoding is the input without its white
 * space (standard base64 has one spelling per byte string once padded and
 * with zero trailing bits; other trailing bits may decode, so only the
 * decode-encode-decode round trip is held to the bytes). */
#include "util/b64.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *d, *d2, why[128] = "";
    size_t n, n2;
    int rc = opb64_decode((const char *)data, size, &d, &n, why, sizeof why);
    if (rc) {
        if (rc != -EINVAL || !why[0] || d || n)
            abort();
        return 0;
    }
    if (d[n] != '\0')
        abort();
    opbuf b;
    opbuf_init(&b, 0);
    if (opb64_encode(&b, d, n) || b.len % 4 || b.len / 4 * 3 < n ||
        opb64_decode(b.data, b.len, &d2, &n2, NULL, 0) || n2 != n || memcmp(d, d2, n) != 0)
        abort();
    free(d2);
    free(d);
    opbuf_release(&b);
    return 0;
}
