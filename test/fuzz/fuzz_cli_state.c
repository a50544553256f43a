/*
 * libFuzzer target for kubectl-optipod's reading of the cluster:
 * cli_state_from_json() over workloads and policies as the API server lists
 * them ({"workloads": [...], "policies": {...}, "records": [...]}), then every renderer the
 * subcommands run on that state (recommendations in each format, explain,
 * savings, the Argo CD and Flux remedies). Annotations, managedFields and
 * status are anyone's to write: whatever they hold is rendered or refused
 * with a reason, never a crash.
 */
#include "cli/cli.h"
#include "fuzz_json.h"
#include "util/buf.h"
#include "util/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = fuzz_json(data, size);
    if (!j)
        return 0;
    const cJSON *wl = cJSON_GetObjectItemCaseSensitive(j, "workloads");
    cJSON *pol = cJSON_DetachItemFromObjectCaseSensitive(j, "policies");
    cli_state s;
    cli_state_init(&s);
    operr err = {0};
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(j, "records");
    if (cli_state_load(&s, wl, pol, recs, &err) != 0) {
        if (!err.msg[0])
            abort(); /* a refusal says why */
    } else {
        opbuf out;
        opbuf_init(&out, 1 << 22);
        for (int f = CLI_FMT_TABLE; f <= CLI_FMT_CSV; f++) {
            opbuf_reset(&out);
            (void)cli_render_recommendations(&s, (enum cli_fmt)f, &out);
        }
        for (size_t i = 0; i < s.nwl; i++) {
            opbuf_reset(&out);
            (void)cli_render_explain(&s.wl[i], &out, &err);
        }
        opbuf_reset(&out);
        (void)cli_render_savings(&s, 23.0, 3.0, &out);
        opbuf_reset(&out);
        (void)cli_render_gitops(&s, CLI_GITOPS_ARGOCD, &out, &err);
        opbuf_reset(&out);
        (void)cli_render_gitops(&s, CLI_GITOPS_FLUX, &out, &err);
        opbuf_release(&out);
    }
    cli_state_release(&s);
    cJSON_Delete(j);
    return 0;
}
