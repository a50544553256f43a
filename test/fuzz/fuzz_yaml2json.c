/* libFuzzer: YAML manifests (plan mode, the CRD, tests) through yaml2json. */
#include <stddef.h>
#include <stdint.h>

#include "util/yaml2json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *out = NULL;
    operr err;
    if (yaml2json_parse_all((const char *)data, size, &out, &err) == 0)
        cJSON_Delete(out);
    return 0;
}
