/*
 * admrev: the AdmissionReview v1 exchange of the mutating pod webhook, pure.
 *
 * admrev_parse() validates a request body (size-capped, apiVersion/kind,
 * request.uid, request.namespace) in one byte-level pass (util/jscan: the whole
 * body must be valid JSON, as strict as jscan is) and builds a cJSON tree of
 * request.object.spec.containers only: a full cJSON parse of the pod was most
 * of a review's CPU cost. Members are read as cJSON_GetObjectItemCaseSensitive
 * would (first of a name, of the expected type), so the result is what parsing
 * the whole body with cJSON gave (test_admrev and fuzz_admission_review hold it
 * to test/fuzz/admrev_oracle.h, that reference). admrev_patch()
 * turns the wanted per-container resources into an RFC 6902 JSON Patch over
 * request.object; admrev_response() writes the AdmissionReview answer (always
 * allowed, with the base64 patch when there is one). No I/O; allocation is
 * limited to the tree, a scratch buffer and the caller's opbufs.
 *
 * Decisions (the webhook must never hurt a pod it does not understand):
 *  - A body that is not an AdmissionReview v1 (not JSON, wrong apiVersion or
 *    kind, no request.uid, too big) is malformed: admrev_parse() fails with a
 *    message naming what was wrong and the caller answers HTTP 400.
 *  - A well-formed review that is not a pod CREATE (wrong request.kind or
 *    operation) is answered allowed-unchanged with reason "not-pod-create".
 *  - "add" on a missing parent fails in Kubernetes' JSONPatch, so a missing
 *    `resources`, `requests` or `limits` object is added (empty) first.
 *  - Never a limit below the request: if the pod's existing limit is below a
 *    new request (and no new limit is wanted), the limit is RAISED to the
 *    request, so the recommendation still lands and the pod stays valid (the
 *    API server would reject requests > limits). If a WANTED limit is below
 *    the resulting request, the whole pod is left unchanged
 *    (reason "limit-below-request"): the annotations disagree with themselves.
 *  - An annotation that is not a quantity leaves the whole pod unchanged
 *    (reason "bad-quantity"). Containers without wants are not touched;
 *    wants naming containers the pod does not have are ignored.
 *
 * Ownership: admrev_req owns the containers tree and one block of strings:
 * admrev_release() frees both (safe on a zeroed or failed struct). Strings and
 * containers point into them.
 */
#ifndef OPTIPOD_WEBHOOK_REVIEW_H
#define OPTIPOD_WEBHOOK_REVIEW_H

#include <cJSON.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

/* Largest AdmissionReview accepted (the API server caps objects at 3 MiB). */
#define ADMREV_MAX_BODY ((size_t)3 << 20)
/* Most containers a patch considers. */
#define ADMREV_MAX_CONTAINERS 64

typedef struct admrev_req {
    cJSON *root;           /* owned: the containers array, or NULL */
    char *strs;            /* owned: the strings below */
    const char *uid;       /* request.uid */
    const char *ns;        /* request.namespace (generateName pods have no name) */
    const char *name;      /* request.name or metadata.name, "" when generated */
    const char *operation; /* "CREATE", ... */
    int is_pod_create;     /* request.kind is core/v1 Pod and operation is CREATE */
    int dry_run;
    const cJSON *containers; /* request.object.spec.containers (array) or NULL */
    /* The pod's controller ownerReference, NULL when none. */
    const char *owner_kind, *owner_name, *owner_uid;
} admrev_req;

/* What one container should get; NULL fields are left as they are. */
typedef struct admrev_want {
    const char *container;
    const char *cpu_req, *mem_req, *cpu_lim, *mem_lim;
} admrev_want;

/*
 * Parse and validate len bytes of body. Returns 0, -E2BIG (over
 * ADMREV_MAX_BODY), -EINVAL (malformed: err says what) or -ENOMEM.
 */
int admrev_parse(admrev_req *r, const char *body, size_t len, operr *err);
/* admrev_parse()'s first checks, before any parsing (size, emptiness): 0, -E2BIG or -EINVAL
 * with err set. The test oracle (test/fuzz/admrev_oracle.h) starts with them too. */
int admrev_check_body(const char *body, size_t len, operr *err);
void admrev_release(admrev_req *r);

/*
 * Build the JSON Patch (a JSON array, not base64) for wants[0..n) into
 * patch. Returns the number of operations (0: nothing to change), or -EINVAL
 * with *reason set to a short static slug ("bad-quantity",
 * "limit-below-request", "no-containers") and err to a sentence for logs,
 * -E2BIG or -ENOMEM. A pod already at the wanted values yields 0.
 */
int admrev_patch(const admrev_req *r, const admrev_want *wants, size_t n, opbuf *patch,
                 const char **reason, operr *err);

/* The AdmissionReview response: allowed, with patch (JSON text, base64'd
 * here) when patch_len > 0. Returns 0, -E2BIG or -ENOMEM. */
int admrev_response(opbuf *out, const char *uid, const char *patch, size_t patch_len);

/* Append s as an RFC 6901 reference token ('~' → "~0", '/' → "~1"). */
int admrev_ptr_escape(opbuf *out, const char *s);

#endif
