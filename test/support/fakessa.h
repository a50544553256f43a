/*
 * fakessa: the Server-Side Apply field-ownership engine of the fake API server.
 *
 * Pure functions over cJSON objects: given the live object (with its
 * metadata.managedFields) and an applied/updated body, compute the new live
 * object with managedFields maintained the way kube-apiserver v1.24 does, or
 * the metav1.Status body of a 409 (FieldManagerConflict) or 422 (Invalid).
 * No I/O, no global state; the caller (test/support/fakeapi.*) owns the store,
 * resourceVersion, uid, generation and timestamps other than managedFields[].time.
 *
 * Ownership: the inputs are borrowed and never modified. On return 0, `out`
 * holds freshly allocated cJSON trees; release them with
 * fakessa_result_release() (idempotent, leaves `out` zeroed). On a negative
 * return `out` is left zeroed and nothing needs releasing.
 *
 * Outcomes: 200/201 → `object` set, `status` NULL. 409 (field conflict, or a
 * metadata.uid / metadata.resourceVersion in the body that does not match
 * live), 422 (invalid result, e.g. a container
 * without image, kubernetes#128102) and 400 (body without kind/apiVersion/
 * metadata.name, or an apply body carrying managedFields) → `status` set,
 * `object` NULL, nothing changed. The caller sets uid, resourceVersion,
 * generation and creationTimestamp on a created/updated object.
 *
 * Known simplifications: the schema is a table of the built-in fields that
 * matter (associative lists such as containers/env/ports/volumes, maps such as
 * labels/requests, atomic selector); anything else is a struct, and unknown
 * lists are atomic. managedFields sent in an update body are ignored (the
 * live ones are kept). There is no "before-first-apply" entry for objects that
 * have none.
 */
#ifndef OPTIPOD_TEST_FAKESSA_H
#define OPTIPOD_TEST_FAKESSA_H

#include <cJSON.h>

typedef struct fakessa_result {
    int http_status; /* 200/201 on success, 409 conflict, 422 invalid (400 bad body) */
    cJSON *object;   /* owned: the new live object, metadata.managedFields maintained */
    cJSON *status;   /* owned: the metav1.Status body for 409/422 (400), else NULL */
} fakessa_result;

/*
 * Server-side apply (PATCH application/apply-patch+yaml) of `applied` by
 * `manager`. `live` is NULL if the object does not exist (→ 201). `force`
 * takes conflicting fields from other managers instead of answering 409.
 * `now` is the RFC 3339 time written into the manager's entry (an apply that
 * changes nothing keeps the entry's old time). A `status` in the body is
 * ignored. The result is defaulted and validated (kubernetes#128102: an item
 * co-owned by another Apply manager survives without the applier's fields
 * and may then be invalid → 422).
 * Returns 0 when `out` was filled (including 409/422), negative errno on
 * internal failure (-EINVAL for malformed input, -ENOMEM).
 */
int fakessa_apply(const cJSON *live, const cJSON *applied, const char *manager, int force,
                  const char *now, fakessa_result *out);
/* The same for a kind without the status subresource (a CRD declaring none):
 * with status_in_main the applied status is merged and owned like the rest. */
int fakessa_apply_ex(const cJSON *live, const cJSON *applied, const char *manager, int force,
                     int status_in_main, const char *now, fakessa_result *out);

/*
 * A non-apply write (create, PUT, merge/strategic/JSON patch already applied
 * by the caller) by `manager`: `updated` is the full new object. Fields whose
 * values changed or were added become owned by `manager` with operation
 * "Update" (one entry per manager+apiVersion+subresource) and are removed from
 * the other managers' sets. `live` is NULL on create (→ 201). `subresource`
 * is e.g. "status" or NULL: a main-resource write keeps live's status, a
 * /status write keeps live's spec. `updated` is defaulted (fakessa_default)
 * first, so defaults written by a create are owned, as on the real server.
 * Never answers a field conflict; 409 only for a stale metadata.resourceVersion
 * or uid in the body, 422 when the result is invalid. Same return convention
 * as fakessa_apply().
 */
int fakessa_update(const cJSON *live, const cJSON *updated, const char *manager,
                   const char *subresource, const char *now, fakessa_result *out);

/*
 * The check the real server makes before applying a custom resource: `obj`
 * against its CRD's structural `schema` (openAPIV3Schema; NULL: none). A
 * field the schema does not declare or a value of the wrong kind gives
 * *status = a new 500 metav1.Status "failed to create typed patch object
 * (<what>): <path>: field not declared in schema" (fakessa_typed.c), as
 * kube-apiserver v1.24 answers. `what` is "ns/name; group/version,
 * Kind=Kind". Returns 0 (*status NULL when the body fits) or -ENOMEM.
 */
int fakessa_typecheck(const cJSON *schema, const cJSON *obj, const char *what, cJSON **status);

/* Frees the owned trees of `r` and zeroes it; safe on a zeroed result. */
void fakessa_result_release(fakessa_result *r);

/*
 * API-server defaulting, in place, for the kinds the fake server serves:
 * apps/v1 Deployment (replicas, strategy, revisionHistoryLimit,
 * progressDeadlineSeconds), the pod template of Deployment, ReplicaSet,
 * StatefulSet, DaemonSet, batch/v1 Job and CronJob, and v1 Pod spec
 * (restartPolicy, terminationGracePeriodSeconds, dnsPolicy, securityContext,
 * schedulerName; per container resources {}, terminationMessagePath/Policy,
 * imagePullPolicy, ports[].protocol). Other kinds are left alone. Called by
 * fakessa_apply/update; returns 0 or -ENOMEM.
 */
int fakessa_default(cJSON *obj);

/*
 * The validation the fake server performs: a pod template (or Pod) needs
 * containers, each with a name and an image. Returns 0 with *status NULL when
 * valid, 0 with *status = a new 422 metav1.Status (reason Invalid, causes
 * FieldValueRequired, as the real server words it) when not, -ENOMEM.
 */
int fakessa_validate(const cJSON *obj, cJSON **status);

/*
 * The object the server's Go types serialise for an empty value of obj's kind
 * (e.g. a Deployment's spec.template.metadata.creationTimestamp: null): the
 * baseline a create is compared against. New tree, NULL on ENOMEM.
 */
cJSON *fakessa_zero_object(const cJSON *obj);

/* Put the top level (kind, apiVersion, metadata first) and ObjectMeta (here
 * and in spec.template) in the key order the real server serialises. Returns
 * 0 or -ENOMEM. */
int fakessa_order_keys(cJSON *obj);
/* ObjectMeta's JSON field names in Go's declaration order, NULL-ended: what an apply's
 * metadata may hold, and the order fakessa_order_keys gives it. */
extern const char *const fakessa_object_meta[];

#endif
