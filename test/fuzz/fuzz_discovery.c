/* libFuzzer target for the discovery parsers (kdisc_parse_version,
 * kdisc_find_resource: bodies from the network) and for the pod readers of
 * apply/resize (resize_observe on any JSON, resize_plan_make + resize_body on
 * any pod projection). Properties:
 *  - a version either parses (major > 0, minor >= 0, NUL-terminated strings)
 *    or fails with -EINVAL leaving a zeroed struct;
 *  - a resource lookup answers -EINVAL, 0 (verbs 0) or 1 (verbs within the set);
 *  - an observation has bounded, NUL-terminated fields;
 *  - a plan never crashes, and a RESIZE_PATCH plan's body is valid JSON whose
 *    containers all exist in the pod. */
#include "apply/resize.h"
#include "kube/discovery.h"
#include "kube/project.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

static void check_str(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

static void check_version(const char *d, size_t n)
{
    kdisc_version v;
    int rc = kdisc_parse_version(d, n, &v, NULL);
    if (rc == -EINVAL) {
        static const kdisc_version zero;
        if (memcmp(&v, &zero, sizeof(v)) != 0)
            abort();
        return;
    }
    if (rc != 0 || v.major <= 0 || v.minor < 0)
        abort();
    check_str(v.git_version, sizeof(v.git_version));
    check_str(v.platform, sizeof(v.platform));
    if (kdisc_version_cmp(&v, v.major, v.minor) != 0)
        abort();
}

static void check_resources(const char *d, size_t n)
{
    static const char *const names[] = {"pods/resize", "pods", "applications", ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        unsigned verbs = 0xdead;
        operr err;
        operr_clear(&err);
        int rc = kdisc_find_resource(d, n, i % 2 ? NULL : "v1", names[i], &verbs, &err);
        if (rc < 0) {
            if (rc != -EINVAL || err.msg[0] == '\0' || verbs != 0)
                abort();
        } else if (rc == 0) {
            if (verbs != 0)
                abort();
        } else if (rc != 1 || (verbs & ~0xffu) != 0) {
            abort();
        }
    }
}

static void check_pod(const char *d, size_t n)
{
    cJSON *j = cJSON_ParseWithLength(d, n);
    if (!j)
        return;
    static resize_obs obs;
    if (resize_observe(j, &obs) == 0) {
        check_str(obs.uid, sizeof(obs.uid));
        check_str(obs.pending, sizeof(obs.pending));
        check_str(obs.alpha_status, sizeof(obs.alpha_status));
        check_str(obs.in_progress_reason, sizeof(obs.in_progress_reason));
        if (obs.nstatus > RESIZE_MAX_CONTAINERS)
            abort();
        for (size_t i = 0; i < obs.nstatus; i++)
            check_str(obs.status[i].name, sizeof(obs.status[i].name));
    } else if (cJSON_IsObject(j)) {
        abort();
    }

    kproj_obj *pod = NULL;
    if (kproj_from_json(j, KPROJ_POD, &pod) == 0) {
        static resize_plan plan;
        resize_want w[3];
        memset(w, 0, sizeof(w));
        size_t nw = 0;
        for (size_t i = 0; i < pod->ncontainers && nw < 2; i++) {
            w[nw].name = pod->containers[i].name;
            w[nw].cpu_request = nw ? "1500m" : "250m";
            w[nw].memory_limit = nw ? "1Gi" : "64Mi";
            nw++;
        }
        w[nw++] = (resize_want){.name = "x", .memory_request = "1Mi"};
        for (int keep = 0; keep < 2; keep++) {
            resize_opts o = {.allow_restart = keep, .keep_guaranteed = keep};
            resize_plan_make(pod, 0, w, nw, &o, &plan);
            check_str(plan.detail, sizeof(plan.detail));
            if (plan.nitems > RESIZE_MAX_CONTAINERS || plan.nnotes > RESIZE_MAX_NOTES)
                abort();
            if (plan.outcome == RESIZE_PATCH && plan.qos_after != plan.qos_before)
                abort();
            if (plan.outcome != RESIZE_PATCH)
                continue;
            opbuf b;
            opbuf_init(&b, 1 << 20);
            if (resize_body(&plan, RESIZE_MODE_POD_PATCH, pod->uid, &b) != 0)
                abort();
            cJSON *body = cJSON_Parse(b.data);
            if (!body)
                abort();
            const cJSON *c,
                *cs = cJSON_GetObjectItem(cJSON_GetObjectItem(body, "spec"), "containers");
            cJSON_ArrayForEach(c, cs)
            {
                const cJSON *nm = cJSON_GetObjectItem(c, "name");
                if (!cJSON_IsString(nm) || !kproj_container_get(pod, nm->valuestring))
                    abort();
            }
            cJSON_Delete(body);
            opbuf_release(&b);
        }
        kproj_free(pod);
    }
    cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    check_version(d, size);
    check_resources(d, size);
    check_pod(d, size);
    return 0;
}
