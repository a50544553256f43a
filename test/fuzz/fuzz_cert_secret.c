/*
 * libFuzzer target for whcert_from_secret_json(): the webhook's certificate
 * Secret as the API server returns it, which anyone allowed to edit it can
 * damage. Any bytes are read into PEMs or refused with the key at fault, never
 * a crash; what was read, written back with whcert_secret_json_pems(), reads
 * back the same; and the rotation rule decides on whatever PEM text it holds.
 */
#include "webhook/certs.h"
#include "util/buf.h"
#include "util/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    whcert_pems p = {0}, q = {0};
    operr err = {0};
    if (whcert_from_secret_json((const char *)data, size, &p, &err) != 0) {
        if (!err.msg[0] || p.cert || p.key || p.ca || p.prev_ca)
            abort(); /* a refusal says why and hands back nothing */
        return 0;
    }
    if (!p.cert || !p.key)
        abort();
    opbuf out;
    opbuf_init(&out, 1 << 20);
    if (whcert_secret_json_pems(&out, "s", "ns", &p) == 0) {
        if (whcert_from_secret_json(out.data, out.len, &q, &err) != 0)
            abort();
        if (!same(p.cert, q.cert) || !same(p.key, q.key) || !same(p.ca, q.ca) ||
            !same(p.prev_ca, q.prev_ca) || (p.prev_ca && p.prev_until != q.prev_until))
            abort(); /* what we write, we read back the same */
        whcert_pems_release(&q);
    }
    opbuf_release(&out);
    const char *sans[] = {"optipod-webhook.optipod-system.svc", NULL};
    whcert_decision d;
    if (whcert_decide(p.cert, p.ca, sans, 1790000000, &d) != 0)
        abort();
    whcert_pems_release(&p);
    return 0;
}
