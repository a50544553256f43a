/*
 * Differential fuzzing of kprojs against the DOM path. For any input:
 *  - strict JSON (fuzz/jsoracle.h says valid): kprojs_from_bytes() and
 *    kref_from_json(cJSON_ParseWithLength()) return the same code and, on
 *    success, equal projections (kprojs_diff), for a pod, two workload kinds
 *    (their rollout status slots differ), a metadata-only kind and a PDB;
 *    kprojs_from_valid() agrees; kprojs_event_parse() and
 *    kprojs_event_project() agree with kref_event_parse() (+ the
 *    object's projection); kprojs_list_parse() accepts exactly the
 *    shapes kwatch_list_body() accepts;
 *  - anything else: the kprojs parsers refuse it (-EINVAL) and
 *    kprojs_from_valid() does not crash.
 * Any disagreement aborts.
 */
#include <cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/jsoracle.h"
#include "fuzz/kref.h"
#include "kube/projscan.h"

static void check_event(const char *json, size_t size)
{
    kref_event a;
    kprojs_event b;
    int ra = kref_event_parse(json, size, &a);
    int rb = kprojs_event_parse(json, size, &b);
    if (ra != rb)
        abort();
    if (ra)
        return;
    char buf[65536];
    if (a.type != b.type || a.code != b.code || a.retry_after_s != b.retry_after_s)
        abort();
    if (a.rv ? kprojs_str(&b.rv, buf, sizeof buf) || strcmp(buf, a.rv) : b.rv.type != JSCAN_NONE)
        abort();
    kprojs_str(&b.reason, buf, sizeof buf);
    if (strcmp(buf, a.reason) != 0)
        abort();
    kprojs_str(&b.message, buf, sizeof buf);
    if (strcmp(buf, a.message) != 0)
        abort();
    kproj_obj *x = NULL, *y = NULL;
    int rx = kref_from_json(a.object, KPROJ_POD, &x);
    int ry = kprojs_from_valid(b.object, b.object_len, KPROJ_POD, &y);
    if (rx != ry || kref_diff(x, y, NULL, 0))
        abort();
    kproj_free(x);
    kproj_free(y);
    kprojs_event c;
    int prc;
    if (kprojs_event_project(json, size, KPROJ_DEPLOYMENT, &c, &y, &prc) || c.type != b.type)
        abort();
    if (a.type == KWATCH_EV_BOOKMARK || a.type == KWATCH_EV_ERROR) {
        if (prc || y)
            abort();
    } else {
        rx = kref_from_json(a.object, KPROJ_DEPLOYMENT, &x);
        if (rx != prc || kref_diff(x, y, NULL, 0))
            abort();
        kproj_free(x);
    }
    kproj_free(y);
    kref_event_release(&a);
}

static void check_list(const char *json, size_t size, const cJSON *root)
{
    kprojs_list l;
    int rc = kprojs_list_parse(json, size, &l);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
    int want = cJSON_IsObject(root) && cJSON_IsObject(md) &&
               (cJSON_IsArray(items) || cJSON_IsNull(items) || !items);
    if ((rc == 0) != want)
        abort();
    if (rc)
        return;
    const char *p;
    size_t n;
    const cJSON *it = cJSON_IsArray(items) ? items->child : NULL;
    while (kprojs_list_next(&l, &p, &n)) {
        if (!it || p < json || p + n > json + size)
            abort();
        kproj_obj *x = NULL, *y = NULL;
        int rx = kref_from_json(it, KPROJ_DEPLOYMENT, &x);
        int ry = kprojs_from_valid(p, n, KPROJ_DEPLOYMENT, &y);
        if (rx != ry || kref_diff(x, y, NULL, 0))
            abort();
        kproj_free(x);
        kproj_free(y);
        it = it->next;
    }
    if (it)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum kproj_kind kinds[] = {KPROJ_POD, KPROJ_DEPLOYMENT, KPROJ_DAEMONSET,
                                            KPROJ_NAMESPACE, KPROJ_PDB};
    const char *json = (const char *)data;
    int valid = jsoracle_valid(data, size);
    cJSON *root = valid ? cJSON_ParseWithLength(json, size) : NULL;
    if (valid && !root)
        abort(); /* strict JSON that cJSON refuses: jscan would be laxer */
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        kproj_obj *a = NULL, *b = NULL, *c = NULL;
        int rb = kprojs_from_bytes(json, size, kinds[k], &b);
        int rc = kprojs_from_valid(json, size, kinds[k], &c);
        if (!valid) {
            if (rb != -EINVAL || b)
                abort();
        } else {
            if (rc != rb || kref_diff(b, c, NULL, 0))
                abort();
            {
                int ra = kref_from_json(root, kinds[k], &a);
                if (ra != rb || kref_diff(a, b, NULL, 0) || (b && b->size > a->size))
                    abort();
            }
        }
        kproj_free(a);
        kproj_free(b);
        kproj_free(c);
    }
    if (valid) {
        check_event(json, size);
        check_list(json, size, root);
    } else {
        kprojs_event ev;
        kprojs_list l;
        kproj_obj *o;
        int prc;
        if (kprojs_event_parse(json, size, &ev) != -EINVAL ||
            kprojs_event_project(json, size, KPROJ_POD, &ev, &o, &prc) != -EINVAL || o ||
            kprojs_list_parse(json, size, &l) != -EINVAL)
            abort();
    }
    cJSON_Delete(root);
    return 0;
}
