/* libFuzzer: plan_usage_csv() on arbitrary bytes (see usage_check.h). */
#include "fuzz/usage_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    usage_check(plan_usage_csv, data, size);
    return 0;
}
