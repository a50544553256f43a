/* libFuzzer target for the webhook's request path: admrev_parse on any bytes
 * either fails with a message and a zeroed struct, or yields a uid and a
 * namespace; then the patch for wants on every container the pod names (with
 * quantities taken from the input too) is either a JSON array of add/replace
 * ops with paths under /spec/containers/<i>/resources, or a refusal with a
 * reason; and the response is always valid JSON that echoes the uid. */
#include "webhook/review.h"

#include <cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_q[] = {"250m", "512Mi", "1", "100m", "2Gi", "0", "1e3", "0.5", "x"};

static void check_patch(const char *s, size_t len)
{
    cJSON *p = cJSON_ParseWithLength(s, len);
    if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) == 0)
        abort();
    const cJSON *op;
    cJSON_ArrayForEach(op, p)
    {
        const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(op, "op"));
        const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(op, "path"));
        if (!o || !path || (strcmp(o, "add") != 0 && strcmp(o, "replace") != 0))
            abort();
        if (strncmp(path, "/spec/containers/", 17) != 0 || !strstr(path, "/resources"))
            abort();
        if (!cJSON_GetObjectItem(op, "value"))
            abort();
    }
    cJSON_Delete(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    admrev_req r;
    operr err = {{0}};
    int rc = admrev_parse(&r, (const char *)data, size, &err);
    if (rc < 0) {
        if (r.root || !err.msg[0])
            abort();
        return 0;
    }
    if (!r.uid || !r.uid[0] || !r.ns || !r.ns[0])
        abort();
    admrev_want w[ADMREV_MAX_CONTAINERS];
    size_t n = 0;
    const cJSON *c;
    unsigned seed = size ? data[size / 2] : 0;
    cJSON_ArrayForEach(c, r.containers)
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "name"));
        if (!name || n >= ADMREV_MAX_CONTAINERS)
            continue;
        w[n] = (admrev_want){.container = name,
                             .cpu_req = k_q[(seed + n) % 9],
                             .mem_req = (seed & 1) ? k_q[(seed >> 1) % 9] : NULL,
                             .cpu_lim = (seed & 2) ? k_q[(seed >> 2) % 9] : NULL,
                             .mem_lim = (seed & 4) ? k_q[(seed >> 3) % 9] : NULL};
        n++;
    }
    opbuf patch, resp;
    opbuf_init(&patch, ADMREV_MAX_BODY);
    opbuf_init(&resp, ADMREV_MAX_BODY * 2);
    const char *reason = NULL;
    int ops = admrev_patch(&r, w, n, &patch, &reason, NULL);
    if (ops > 0)
        check_patch(patch.data, patch.len);
    else if (ops == 0 && patch.len != 0)
        abort();
    else if (ops < 0 && ops != -ENOMEM && ops != -E2BIG && !reason)
        abort();
    if (admrev_response(&resp, r.uid, ops > 0 ? patch.data : NULL, ops > 0 ? patch.len : 0) == 0) {
        cJSON *j = cJSON_ParseWithLength(resp.data, resp.len);
        const cJSON *res = cJSON_GetObjectItem(j, "response");
        const char *uid = cJSON_GetStringValue(cJSON_GetObjectItem(res, "uid"));
        if (!uid || strcmp(uid, r.uid) != 0 || !cJSON_IsTrue(cJSON_GetObjectItem(res, "allowed")))
            abort();
        cJSON_Delete(j);
    }
    opbuf_release(&patch);
    opbuf_release(&resp);
    admrev_release(&r);
    return 0;
}
