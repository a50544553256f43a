/* libFuzzer target for mckpt_decode(), the metrics-server checkpoints read
 * back from ConfigMaps anyone with write access could have edited. Any
 * input ends in >= 0 series restored or -EPROTO (with a message); every
 * restored histogram has finite, non-negative weights whose sum is its
 * total, and encodes again. */
#include "metrics/checkpoint.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static int check(const char *kind, const char *name, const char *container, double updated_s,
                 ehist *cpu, ehist *mem, void *ud)
{
    ehist *h[2] = {cpu, mem};
    for (int k = 0; k < 2; k++) {
        double sum = 0;
        for (size_t i = 0; i < h[k]->nbuckets; i++) {
            if (!isfinite(h[k]->w[i]) || h[k]->w[i] < 0)
                abort();
            sum += h[k]->w[i];
        }
        if (sum != h[k]->total && fabs(sum - h[k]->total) > 1e-9 * fabs(sum))
            abort();
    }
    mckpt_series s = {kind, name, container, updated_s, cpu, mem};
    opbuf b;
    opbuf_init(&b, 1 << 22);
    size_t kept;
    if (mckpt_encode("ns", 1, &s, 1, 0, &b, &kept) != 0)
        abort();
    opbuf_release(&b);
    ehist_release(cpu);
    ehist_release(mem);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ehist_opts co, mo;
    ehist_opts_cpu(&co);
    ehist_opts_memory(&mo);
    operr err;
    err.msg[0] = '\0';
    size_t skipped;
    int rc = mckpt_decode((const char *)data, size, "ns", &co, &mo, check, NULL, &skipped, &err);
    if (rc < 0 && rc != -EPROTO && rc != -ENOMEM)
        abort();
    if (rc < 0 && err.msg[0] == '\0')
        abort();
    return 0;
}
