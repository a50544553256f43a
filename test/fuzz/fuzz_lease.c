/*
 * libFuzzer target for klease_parse(): a coordination.k8s.io Lease from the
 * network, which every candidate's leader election reads. Any bytes parse or
 * are refused, never a crash; a parsed record written back with
 * klease_format() (over the same object, as an update does) parses back to
 * the same record and resourceVersion.
 */
#include "kube/lease.h"
#include "util/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    klease_record a, b;
    char rv[128], rv2[128];
    if (klease_parse((const char *)data, size, &a, rv, sizeof rv) != 0)
        return 0;
    if (memchr(a.holder, 0, sizeof a.holder) == NULL || memchr(rv, 0, sizeof rv) == NULL)
        abort(); /* strings end inside their buffers */
    opbuf out;
    opbuf_init(&out, 1 << 20);
    if (klease_format(&out, (const char *)data, size, "ns", "name", rv, &a) == 0) {
        if (klease_parse(out.data, out.len, &b, rv2, sizeof rv2) != 0)
            abort();
        if (strcmp(a.holder, b.holder) != 0 || a.duration_s != b.duration_s ||
            a.acquire_ns / 1000 != b.acquire_ns / 1000 || a.renew_ns / 1000 != b.renew_ns / 1000 ||
            a.transitions != b.transitions || strcmp(rv, rv2) != 0)
            abort(); /* what we write, we read back the same (times at MicroTime precision) */
    }
    opbuf_release(&out);
    return 0;
}
