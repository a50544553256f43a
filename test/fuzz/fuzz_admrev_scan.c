/* libFuzzer target for admrev_parse's byte-level scan: on any bytes it must agree with the
 * full cJSON parse it replaced (fuzz/admrev_oracle.h: same refusals and messages, the same
 * fields and containers tree, or a "not JSON" refusal of bytes the strict grammar refuses
 * too). Any disagreement aborts with the reason on stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz/admrev_oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[512];
    if (admrev_oracle_diff((const char *)data, size, why, sizeof why)) {
        fprintf(stderr, "admrev scan and cJSON disagree: %s\n", why);
        abort();
    }
    return 0;
}
