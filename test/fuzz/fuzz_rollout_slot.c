/*
 * libFuzzer target for rollout_slot_from_json(): a policy's status.rollout
 * record comes back from the API server and may be damaged by anyone with
 * write access to the status. Any bytes that are JSON become a slot or a
 * refusal naming the field, never a crash; an accepted record written back
 * with rollout_slot_to_json() reads back as the same slot.
 */
#include "controller/rollout.h"
#include "fuzz_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = fuzz_json(data, size);
    if (!j)
        return 0;
    rollout_slot s, t;
    char why[128];
    if (rollout_slot_from_json(j, &s, why, sizeof why) != 0) {
        if (!why[0] || s.key[0])
            abort(); /* a refusal says why and leaves no slot behind */
    } else {
        if (!s.key[0] || s.generation < 1 || s.bound_ms != 0)
            abort();
        cJSON *back = rollout_slot_to_json(&s);
        if (!back)
            abort();
        if (rollout_slot_from_json(back, &t, why, sizeof why) != 0 || strcmp(s.key, t.key) != 0 ||
            s.generation != t.generation || s.started_ms != t.started_ms)
            abort(); /* what we write, we read back the same */
        cJSON_Delete(back);
    }
    cJSON_Delete(j);
    return 0;
}
