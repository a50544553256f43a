/*
 * krest: the Kubernetes REST verbs over ophttp, for one API server.
 *
 * Paths are built from a resource descriptor (group/version, plural, namespaced)
 * so callers never concatenate URLs by hand. Every call is asynchronous and ends
 * in one krest_reply; a non-2xx reply carries the parsed metav1.Status (code,
 * reason, message, details.causes — de-duplicated, because real servers repeat
 * causes; see fixtures/apply-conflict-409.json).
 *
 * Authentication (bearer token re-read on rotation, client certs) and TLS come
 * from the kcfg the client was made with. Every request sends
 * "User-Agent: optipod/<version>" and "Accept: application/json".
 *
 * Ownership: a krest borrows its ophttp_client and kcfg (both must outlive it).
 * Reply bodies are valid only during the callback.
 */
#ifndef OPTIPOD_KUBE_REST_H
#define OPTIPOD_KUBE_REST_H

#include <stddef.h>

#include "http/http.h"
#include "kube/config.h"
#include "obs/obs.h"
#include "util/buf.h"
#include "util/err.h"

/* A resource type: {"apps/v1", "deployments", 1}. Core group is "v1". */
typedef struct kres {
    const char *group_version;
    const char *resource; /* plural, lower case */
    int namespaced;
} kres;

extern const kres KRES_DEPLOYMENTS, KRES_STATEFULSETS, KRES_DAEMONSETS, KRES_REPLICASETS, KRES_PODS,
    KRES_NAMESPACES, KRES_EVENTS, KRES_LEASES, KRES_HPAS, KRES_POLICIES, KRES_MUTATING_WEBHOOKS,
    KRES_SECRETS, KRES_POD_METRICS, KRES_PDBS, KRES_RECOMMENDATIONS, KRES_CONFIGMAPS;

#define KSTATUS_MAX_CAUSES 32

typedef struct kstatus_cause {
    char reason[64];   /* "FieldManagerConflict", "FieldValueRequired", ... */
    char message[256]; /* "conflict with \"argocd-controller\"" */
    char field[256];   /* ".spec.template.spec.containers[name=\"nginx\"].resources.requests.cpu" */
} kstatus_cause;

typedef struct kstatus {
    int code;        /* 409, 410, 422, ...; 0 when the body was not a Status */
    char status[16]; /* "Failure" / "Success" */
    char reason[64]; /* "Conflict", "Expired", "Gone", "Invalid", "NotFound", ... */
    char message[1024];
    char continue_token[1024]; /* metadata.continue (410 Expired on a list carries one) */
    int retry_after_s;         /* details.retryAfterSeconds, 0 when absent */
    int ncauses;               /* after de-duplication */
    kstatus_cause causes[KSTATUS_MAX_CAUSES];
} kstatus;

/* Parse a metav1.Status; returns 0, or -EINVAL when the body is not one (the
 * struct is then zeroed but for code, which the caller may set from HTTP). */
int kstatus_parse(const char *body, size_t len, kstatus *out);

/* Build "/apis/apps/v1/namespaces/NS/deployments/NAME/SUB" (core: "/api/v1/...").
 * ns NULL or "" = all namespaces (or cluster-scoped); name/sub may be NULL.
 * Path segments are percent-escaped. Appends to `out`; returns 0, or -E2BIG or -ENOMEM
 * with `out` failed (util/buf.h). */
int kpath(opbuf *out, const kres *r, const char *ns, const char *name, const char *sub);
/* Append "?k=v&k2=v2" pairs (values percent-escaped); NULL-terminated list of
 * alternating keys and values; keys with a NULL or "" value are skipped. */
int kpath_query(opbuf *out, const char *const *kv);

typedef struct krest krest;

typedef struct krest_reply {
    long http_status; /* 0 when no response (transport error) */
    int error;        /* enum ophttp_error; 0 when an HTTP response arrived */
    const char *error_msg;
    const char *body; /* never NULL */
    size_t body_len;
    const kstatus *status; /* parsed Status for non-2xx replies, else NULL */
    long retry_after_s;    /* Retry-After header, -1 when absent */
} krest_reply;

typedef void (*krest_cb)(const krest_reply *reply, void *ud);
typedef int (*krest_data_cb)(const char *data, size_t len, void *ud);

enum krest_patch_type {
    KREST_PATCH_MERGE,     /* application/merge-patch+json */
    KREST_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
    KREST_PATCH_JSON,      /* application/json-patch+json */
    KREST_PATCH_APPLY,     /* application/apply-patch+yaml (Server-Side Apply) */
};

typedef struct krest_write_opts {
    const char *field_manager; /* required for APPLY (the server answers 422 without it) */
    int force;                 /* APPLY only */
    int dry_run;               /* dryRun=All */
} krest_write_opts;

int krest_new(krest **out, ophttp_client *http, kcfg *cfg, operr *err);
void krest_free(krest *k);
const char *krest_server(const krest *k);
/* Per-request timeout for non-streaming calls (default 30 s). */
void krest_set_timeout(krest *k, long timeout_ms);
/* Measure every answered request from now on into r (borrowed; it must outlive k):
 * optipod_api_request_duration_seconds{verb} and optipod_api_request_errors_total{verb,code}.
 * Cancelled requests are not counted. 0, or -EINVAL when r cannot hold the families. */
int krest_set_metrics(krest *k, obs_reg *r, operr *err);

/* Generic: path is from kpath (+query). content_type NULL for none. */
int krest_call(krest *k, const char *method, const char *path, const char *content_type,
               const char *body, size_t body_len, krest_cb cb, void *ud, ophttp_req **req);
/* Streaming GET (watches): 2xx bodies go to on_data; the end goes to cb. */
int krest_stream(krest *k, const char *path, long low_speed_time_s, krest_data_cb on_data,
                 krest_cb cb, void *ud, ophttp_req **req);

int krest_get(krest *k, const kres *r, const char *ns, const char *name, const char *sub,
              krest_cb cb, void *ud);
int krest_create(krest *k, const kres *r, const char *ns, const char *body, size_t len,
                 const krest_write_opts *o, krest_cb cb, void *ud);
int krest_patch(krest *k, const kres *r, const char *ns, const char *name, const char *sub,
                enum krest_patch_type type, const char *body, size_t len, const krest_write_opts *o,
                krest_cb cb, void *ud);
int krest_delete(krest *k, const kres *r, const char *ns, const char *name, krest_cb cb, void *ud);

#endif
