/*
 * kcfg_load_mem() on arbitrary bytes: every outcome is a loaded config with a
 * server, or an error that names the kubeconfig. Relative paths resolve under a
 * directory that does not exist, so only the parser is exercised.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kube/config.h"
#include "util/log.h"

#define FUZZ_PATH "/nonexistent/optipod-fuzz/kubeconfig"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    if (!devnull) { /* insecure-skip-tls-verify warns on every load */
        devnull = fopen("/dev/null", "w");
        oplog_set_sink(devnull);
    }
    kcfg c;
    operr err;
    kcfg_init(&c);
    operr_clear(&err);
    const char *ctx = size > 0 && data[0] == 'x' ? "x" : NULL;
    if (kcfg_load_mem(&c, (const char *)data, size, FUZZ_PATH, ctx, &err) == 0) {
        if (!c.server || !c.ns || !c.context || !c.source)
            __builtin_trap();
        if (strncmp(c.server, "http", 4) != 0 || c.server[strlen(c.server) - 1] == '/')
            __builtin_trap();
        (void)kcfg_bearer(&c, &err);
    } else {
        if (strncmp(err.msg, "kubeconfig '" FUZZ_PATH "'", strlen("kubeconfig '" FUZZ_PATH "'")))
            __builtin_trap();
        if (c.server)
            __builtin_trap();
    }
    kcfg_release(&c);
    return 0;
}
