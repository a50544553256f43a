/* libFuzzer: YAML manifests (plan mode, the CRD, tests) through yaml2json. Any input either
 * fails with -EINVAL and a message naming where, or converts; then the first document alone
 * converts to the same JSON as the first of all, and opyaml's own reading of the stream
 * (the same loader) succeeds too. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/yaml2json.h"
#include "util/yamldoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *all = NULL, *one = NULL;
    operr err = {{0}};
    int rc = yaml2json_parse_all((const char *)data, size, &all, &err);
    if (rc) {
        if ((rc != -EINVAL && rc != -ENOMEM) || all ||
            (rc == -EINVAL && strncmp(err.msg, "yaml: ", 6)))
            abort();
        return 0;
    }
    if (yaml2json_parse((const char *)data, size, &one, &err))
        abort();
    const cJSON *first = cJSON_GetArrayItem(all, 0);
    if (first ? !cJSON_Compare(first, one, 1) : !cJSON_IsNull(one))
        abort();
    opyaml_limits lim = {.max_bytes = YAML2JSON_MAX_BYTES,
                         .max_depth = YAML2JSON_MAX_DEPTH,
                         .max_nodes = YAML2JSON_MAX_NODES,
                         .max_docs = YAML2JSON_MAX_DOCS};
    opyaml_doc d;
    if (opyaml_load(&d, (const char *)data, size, &lim, &err))
        abort();
    opyaml_release(&d);
    cJSON_Delete(one);
    cJSON_Delete(all);
    return 0;
}
