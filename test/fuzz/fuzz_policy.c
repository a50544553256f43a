/*
 * libFuzzer target for pol_parse(): any bytes that are JSON become a policy
 * or a list of errors, never a crash or a leak. A valid policy's effective
 * spec must parse back to the same effective spec (a fixed point), and the
 * matching and ranking code must accept it.
 */
#include "policy/policy.h"
#include "fuzz_json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char *spec_text(const pol_policy *p)
{
    cJSON *s = pol_spec_to_json(p);
    if (!s)
        return NULL;
    char *t = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = fuzz_json(data, size);
    if (!j)
        return 0;
    pol_policy p, q;
    operr err;
    pol_init(&p);
    pol_init(&q);
    int rc = pol_parse(j, &p, &err);
    if (rc == 0) {
        char *t1 = spec_text(&p);
        cJSON *doc = cJSON_CreateObject();
        cJSON *md = cJSON_AddObjectToObject(doc, "metadata");
        cJSON_AddStringToObject(md, "name", p.name);
        cJSON_AddStringToObject(md, "namespace", p.namespace);
        cJSON_AddItemToObject(doc, "spec", pol_spec_to_json(&p));
        if (pol_parse(doc, &q, &err) != 0)
            abort(); /* the effective spec of a valid policy must be valid */
        char *t2 = spec_text(&q);
        if (t1 && t2 && strcmp(t1, t2) != 0)
            abort();
        free(t1);
        free(t2);
        cJSON_Delete(doc);

        cJSON *labels = cJSON_Parse("{\"app\":\"web\",\"optimize\":\"true\"}");
        pol_target t = {POL_KIND_DEPLOYMENT, p.namespace, labels, labels};
        const pol_policy *in[2] = {&p, &q}, *ranked[2];
        size_t n = pol_rank(in, 2, &t, ranked);
        if (n != 0 && n != 2)
            abort(); /* equal policies match alike */
        cJSON_Delete(labels);
    } else if (rc == -EINVAL && (p.nerrors == 0 || p.valid)) {
        abort();
    }
    pol_release(&p);
    pol_release(&q);
    cJSON_Delete(j);
    return 0;
}
