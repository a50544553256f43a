/*
 * admrev_oracle: the reference for admrev_parse(): the AdmissionReview read the
 * way it was before the byte-level scan, by parsing the whole body with cJSON
 * and picking members with cJSON_GetObjectItemCaseSensitive. admrev_oracle_diff()
 * runs both on the same bytes and says where they disagree:
 *  - admrev_parse says "body is not JSON": right when the strict grammar
 *    (fuzz/jsoracle.h) refuses the bytes too, whatever cJSON did (jscan is
 *    stricter: trailing bytes, raw control characters, leading zeros, ...);
 *  - both fail otherwise: same errno and same message;
 *  - only one fails: a disagreement;
 *  - both succeed: the same uid, namespace, name, operation, flags, controller
 *    ownerReference and an equal containers tree.
 * Used by test_admrev (fixtures and hand-made edge cases) and by
 * fuzz_admission_review, and by bench_projscan as the whole-body baseline.
 * Header-only (static inline functions).
 */
#ifndef OPTIPOD_TEST_FUZZ_ADMREV_ORACLE_H
#define OPTIPOD_TEST_FUZZ_ADMREV_ORACLE_H

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fuzz/jsoracle.h"
#include "webhook/review.h"

typedef struct admrev_ref {
    cJSON *root;
    const char *uid, *ns, *name, *operation;
    int is_pod_create, dry_run;
    const cJSON *containers;
    const char *owner_kind, *owner_name, *owner_uid;
} admrev_ref;

static inline const char *aro_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline const cJSON *aro_obj(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsObject(v) ? v : NULL;
}

static inline int aro_parse(admrev_ref *r, const char *body, size_t len, operr *err)
{
    memset(r, 0, sizeof *r);
    int checked = admrev_check_body(body, len, err);
    if (checked)
        return checked;
    r->root = cJSON_ParseWithLength(body, len);
    if (!r->root)
        return operr_set(err, -EINVAL, "AdmissionReview: body is not JSON");
    int rc = -EINVAL;
    const char *api = aro_str(r->root, "apiVersion"), *kind = aro_str(r->root, "kind");
    const cJSON *req = aro_obj(r->root, "request");
    if (!cJSON_IsObject(r->root))
        operr_set(err, rc, "AdmissionReview: body is not a JSON object");
    else if (!api || strcmp(api, "admission.k8s.io/v1") != 0)
        operr_set(err, rc, "AdmissionReview: apiVersion \"%.64s\" is not admission.k8s.io/v1",
                  api ? api : "");
    else if (!kind || strcmp(kind, "AdmissionReview") != 0)
        operr_set(err, rc, "AdmissionReview: kind \"%.64s\" is not AdmissionReview",
                  kind ? kind : "");
    else if (!req)
        operr_set(err, rc, "AdmissionReview: request is missing");
    else if (!(r->uid = aro_str(req, "uid")) || !r->uid[0] || strlen(r->uid) > 128)
        operr_set(err, rc, "AdmissionReview: request.uid is missing or invalid");
    else if (!(r->ns = aro_str(req, "namespace")) || !r->ns[0])
        operr_set(err, rc, "AdmissionReview '%s': request.namespace is missing", r->uid);
    else if (!(r->operation = aro_str(req, "operation")))
        operr_set(err, rc, "AdmissionReview '%s': request.operation is missing", r->uid);
    else
        rc = 0;
    if (rc) {
        cJSON_Delete(r->root);
        memset(r, 0, sizeof *r);
        return rc;
    }
    r->dry_run = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "dryRun"));
    const cJSON *k = aro_obj(req, "kind");
    const char *group = aro_str(k, "group"), *version = aro_str(k, "version");
    const char *rkind = aro_str(k, "kind");
    const cJSON *pod = aro_obj(req, "object");
    r->is_pod_create = group && !group[0] && version && strcmp(version, "v1") == 0 && rkind &&
                       strcmp(rkind, "Pod") == 0 && strcmp(r->operation, "CREATE") == 0 && pod;
    const cJSON *meta = aro_obj(pod, "metadata");
    r->name = aro_str(req, "name");
    if (!r->name || !r->name[0])
        r->name = aro_str(meta, "name");
    if (!r->name)
        r->name = "";
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(aro_obj(pod, "spec"), "containers");
    r->containers = cJSON_IsArray(c) ? c : NULL;
    const cJSON *owners = cJSON_GetObjectItemCaseSensitive(meta, "ownerReferences");
    const cJSON *o;
    if (!cJSON_IsArray(owners))
        owners = NULL;
    cJSON_ArrayForEach(o, owners)
    {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "controller")))
            continue;
        r->owner_kind = aro_str(o, "kind");
        r->owner_name = aro_str(o, "name");
        r->owner_uid = aro_str(o, "uid");
        if (!r->owner_kind || !r->owner_name)
            r->owner_kind = r->owner_name = r->owner_uid = NULL;
        break;
    }
    return 0;
}

static inline int aro_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* 0 when admrev_parse agrees with the reference on these bytes, else 1 with why[] set. */
static inline int admrev_oracle_diff(const char *body, size_t len, char *why, size_t cap)
{
    admrev_ref ref;
    admrev_req got;
    operr eref = {{0}}, egot = {{0}};
    int rref = aro_parse(&ref, body, len, &eref);
    int rgot = admrev_parse(&got, body, len, &egot);
    int bad = 0;
    why[0] = '\0';
    /* The strict scan refusing bytes outside the grammar is right whatever cJSON made of
     * them (it reads a prefix and ignores what trails it, for one). */
    int strict_refusal = rgot == -EINVAL &&
                         strcmp(egot.msg, "AdmissionReview: body is not JSON") == 0 &&
                         !jsoracle_valid(body, len);
    if (strict_refusal) {
        /* agreed */
    } else if (rref < 0 && rgot < 0) {
        if (rref != rgot || strcmp(eref.msg, egot.msg) != 0) {
            snprintf(why, cap, "both fail, differently: ref %d '%s', got %d '%s'", rref, eref.msg,
                     rgot, egot.msg);
            bad = 1;
        }
    } else if (rref < 0) {
        snprintf(why, cap, "reference fails ('%s'), admrev_parse accepts", eref.msg);
        bad = 1;
    } else if (rgot < 0) {
        snprintf(why, cap, "reference accepts, admrev_parse fails: %d '%s'", rgot, egot.msg);
        bad = 1;
    } else if (!aro_same(ref.uid, got.uid) || !aro_same(ref.ns, got.ns) ||
               !aro_same(ref.name, got.name) || !aro_same(ref.operation, got.operation) ||
               ref.is_pod_create != got.is_pod_create || ref.dry_run != got.dry_run ||
               !aro_same(ref.owner_kind, got.owner_kind) ||
               !aro_same(ref.owner_name, got.owner_name) ||
               !aro_same(ref.owner_uid, got.owner_uid)) {
        snprintf(why, cap,
                 "fields differ: uid %s/%s ns %s/%s name %s/%s op %s/%s pod %d/%d dry %d/%d "
                 "owner %s %s %s / %s %s %s",
                 ref.uid, got.uid, ref.ns, got.ns, ref.name, got.name, ref.operation, got.operation,
                 ref.is_pod_create, got.is_pod_create, ref.dry_run, got.dry_run,
                 ref.owner_kind ? ref.owner_kind : "-", ref.owner_name ? ref.owner_name : "-",
                 ref.owner_uid ? ref.owner_uid : "-", got.owner_kind ? got.owner_kind : "-",
                 got.owner_name ? got.owner_name : "-", got.owner_uid ? got.owner_uid : "-");
        bad = 1;
    } else if (!ref.containers != !got.containers) {
        snprintf(why, cap, "containers: %s in the reference, %s here",
                 ref.containers ? "an array" : "none", got.containers ? "an array" : "none");
        bad = 1;
    } else if (ref.containers) {
        /* Printed, not cJSON_Compare: 1e999 parses to inf and inf - inf is no match there. */
        char *a = cJSON_PrintUnformatted(ref.containers),
             *b = cJSON_PrintUnformatted(got.containers);
        if (!a || !b || strcmp(a, b) != 0) {
            snprintf(why, cap, "containers differ: %.200s / %.200s", a ? a : "?", b ? b : "?");
            bad = 1;
        }
        cJSON_free(a);
        cJSON_free(b);
    }
    cJSON_Delete(ref.root);
    admrev_release(&got);
    return bad;
}

#endif
