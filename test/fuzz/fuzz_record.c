/*
 * libFuzzer target for the OptimizationRecommendation reader (lib/record):
 * rrec_parse() over any JSON object. A record is the cluster's to hold and
 * anyone with write access may edit it: whatever it contains is read or
 * refused with a reason, never a crash; what is read builds back to an object
 * that reads the same (build and parse are inverse).
 */
#include "fuzz_json.h"
#include "record/record.h"
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
    static rrec r, back;
    operr err = {0};
    if (rrec_parse(j, &r, &err) != 0) {
        if (!err.msg[0])
            abort(); /* a refusal says why */
        cJSON_Delete(j);
        return 0;
    }
    opbuf b;
    opbuf_init(&b, 1 << 22);
    if (r.name[0] && r.ns[0] && rrec_build(&r, &b, &err) == 0) {
        cJSON *o = cJSON_Parse(opbuf_str(&b));
        if (!o || rrec_parse(o, &back, &err) != 0 || !rrec_same(&r, &back))
            abort();
        rrec_release(&back);
        cJSON_Delete(o);
    }
    opbuf_release(&b);
    rrec_release(&r);
    cJSON_Delete(j);
    return 0;
}
