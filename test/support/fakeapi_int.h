/*
 * fakeapi internals shared between fakeapi.c and fakeapi_patch.c: pure JSON
 * helpers (patches, selectors, tokens). Not for tests; use fakeapi.h.
 */
#ifndef OPTIPOD_TEST_FAKEAPI_INT_H
#define OPTIPOD_TEST_FAKEAPI_INT_H

#include <cJSON.h>
#include <stddef.h>

/* RFC 7386: returns a new tree (target may be NULL), or NULL on ENOMEM. */
cJSON *fakeapi_merge_patch(const cJSON *target, const cJSON *patch);
/* Strategic merge patch for the cases kubectl and controllers use: lists of
 * objects with a merge key (containers/volumes/env/...: "name", ports:
 * "containerPort", volumeMounts: "mountPath", conditions: "type") are merged by
 * key; `$patch: delete|replace` honoured; `$setElementOrder/...` and
 * `$retainKeys` directives are dropped. Returns a new tree or NULL. */
cJSON *fakeapi_strategic_patch(const cJSON *target, const cJSON *patch);

/* RFC 6902 JSON patch (add, remove, replace, move, copy, test). Returns a new
 * tree, or NULL with *err = -EINVAL (bad op, missing path, failed test) or
 * -ENOMEM. */
cJSON *fakeapi_json_patch(const cJSON *target, const cJSON *ops, int *err);

/* Label selector match (=, ==, !=, in, notin, key, !key, comma = AND).
 * Returns 1 match, 0 no match, -1 bad selector. NULL or "" selects all. */
int fakeapi_label_match(const char *selector, const cJSON *labels);
/* Field selector on dotted paths (metadata.name=x, spec.nodeName!=y). */
int fakeapi_field_match(const char *selector, const cJSON *obj);

/* base64 (std, padded) and base64url without padding (continue tokens).
 * Return malloc'd strings or NULL. decode sets *len. */
char *fakeapi_b64(const void *data, size_t len, int url_raw);
char *fakeapi_b64_decode(const char *s, size_t *len);

#endif
