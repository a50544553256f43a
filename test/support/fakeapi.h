/*
 * fakeapi: an in-process fake kube-apiserver for tests.
 *
 * It serves HTTPS on 127.0.0.1 (ephemeral port) from the test's own libuv loop,
 * with a CA and serving certificate generated at start (the CA PEM is exposed so
 * the client under test can trust it). The client under test and this server
 * share one loop: run the loop until your callbacks have fired, then stop the
 * server and run the loop again until `on_closed` has been called.
 *
 * It behaves like a v1.24 kube-apiserver (see test/data/kube-apiserver-v1.24) for:
 *  - any resource path: /api/v1/... and /apis/GROUP/VERSION/..., namespaced
 *    (/namespaces/NS/RES[/NAME[/SUB]]) and cluster-scoped (/RES[/NAME]), plus
 *    cross-namespace lists (/apis/apps/v1/deployments);
 *  - GET (404 NotFound Status), LIST (limit/continue with real-shaped tokens,
 *    remainingItemCount, labelSelector with =, ==, !=, key, !key and ",";
 *    410 Expired on a token older than the last compaction), WATCH (chunked,
 *    one `{"type":..,"object":..}` line per event from a bounded history;
 *    resourceVersion "" or "0" starts with ADDED for every current object; an RV
 *    older than the compaction gets an ERROR 410 event then end of stream;
 *    BOOKMARKs when allowWatchBookmarks=true; timeoutSeconds ends the stream);
 *  - POST (generateName, 409 AlreadyExists), PUT (409 Conflict on a stale
 *    metadata.resourceVersion), DELETE (Status Success), PATCH with
 *    application/json-patch+json (RFC 6902; a failed op → 422),
 *    application/merge-patch+json (RFC 7386), application/strategic-merge-patch+json
 *    (lists of objects merged by "name"; `$patch: delete` honoured) and
 *    application/apply-patch+yaml with a JSON body (server-side apply through
 *    test/support/fakessa: fieldManager required → 422, force=true, dryRun=All
 *    persists nothing, a metadata.uid precondition → 409, creates a missing
 *    object). Every non-apply write records an Update entry in managedFields
 *    through fakessa_update() (fieldManager query parameter, default
 *    "unknown-manager" – the real server derives it from the user agent);
 *  - subresources: .../status (only status changes; main-resource writes keep
 *    the live status), pods/resize (only containers[].resources change);
 *  - a pod write that changes containers[].resources outside pods/resize →
 *    v1.24's 422 Forbidden "pod updates may not change fields other than ..."
 *    (unless fakeapi_set_pod_patch_resize); a metadata.uid in a merge or
 *    strategic-merge patch is a precondition (409 "Precondition failed: UID
 *    in precondition: ..." when it differs);
 *  - a global resourceVersion counter (like etcd's) assigned on every write,
 *    uid, creationTimestamp and generation (bumped when anything outside
 *    metadata and status changes).
 * Objects are stored as given; list items and watch objects are the stored
 * JSON (compact, key order preserved), so fixtures can be seeded verbatim.
 *
 * Usage:
 *
 *   uv_loop_t loop; uv_loop_init(&loop);
 *   fakeapi *fa;
 *   ASSERT_EQ_INT(fakeapi_start(&fa, &loop, NULL), 0);
 *   fakeapi_put_json(fa, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
 *                        "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},"
 *                        "\"spec\":{\"replicas\":1}}");
 *   fakeapi_write_kubeconfig(fa, "/tmp/kc-test", "tok");    // or use fakeapi_url/ca_pem
 *   fakeapi_fault f = {.method = "GET", .path = "/deployments", .watch = 1,
 *                      .kind = FAKEAPI_FAULT_STATUS, .status = 429, .retry_after_s = 1,
 *                      .count = 1};
 *   fakeapi_add_fault(fa, &f);
 *   ... start the client under test on &loop, uv_run(&loop, UV_RUN_DEFAULT) until done ...
 *   char *live = fakeapi_get_json(fa, "/apis/apps/v1/namespaces/default/deployments/web");
 *   ASSERT_EQ_INT(fakeapi_count(fa, "PATCH", "/deployments/web"), 1);
 *   free(live);
 *   fakeapi_stop(fa, on_closed, &closed);   // then run the loop until closed
 *   uv_run(&loop, UV_RUN_DEFAULT);
 *   ASSERT_EQ_INT(uv_loop_close(&loop), 0);
 *
 * Ownership: fakeapi_start() allocates the server; fakeapi_stop() closes every
 * handle and frees it from the loop once closed (then calls on_closed). Strings
 * returned as `char *` are malloc'd and owned by the caller; `const` pointers are
 * borrowed and valid until the next call that changes the server.
 * Everything must be called on the loop's thread.
 */
#ifndef OPTIPOD_TEST_FAKEAPI_H
#define OPTIPOD_TEST_FAKEAPI_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "httpd/httpd.h"

typedef struct fakeapi fakeapi;

typedef struct fakeapi_opts {
    const char *token;    /* require "Authorization: Bearer <token>" (401 otherwise); NULL = any */
    size_t history_max;   /* watch events kept; older ones are compacted; 0 = 1000 */
    unsigned bookmark_ms; /* periodic BOOKMARK to watches that allow them; 0 = never */
    uint64_t first_rv;    /* first resourceVersion handed out; 0 = 100 */
    const char *now;      /* fixed RFC 3339 time for timestamps; NULL = the clock */
    size_t max_body;      /* request body cap; 0 = 3 MiB (the real server's) */
} fakeapi_opts;

/* Generate the CA and serving cert, listen on 127.0.0.1:0. opts may be NULL.
 * Returns 0 or a negative errno (nothing to stop then). */
int fakeapi_start(fakeapi **out, uv_loop_t *loop, const fakeapi_opts *opts);
/* Close the listener, every connection and timer; `on_closed(ud)` runs from the
 * loop after the last handle is closed and the server is freed. on_closed may be NULL. */
void fakeapi_stop(fakeapi *fa, void (*on_closed)(void *ud), void *ud);

/* A CRD's structural schema for the kind served at group/version `api_version`
 * and `plural`: its server-side applies are then type-checked first
 * (fakessa_typecheck: an undeclared field or a mistyped value is a 500
 * "failed to create typed patch object", as on kube-apiserver v1.24). NULL
 * removes it. fakeapi_start() loads the project's crds/ this way; a test
 * serving an older CRD sets its schema. -ENOENT for a kind not served. */
int fakeapi_set_schema(fakeapi *fa, const char *api_version, const char *plural,
                       const cJSON *schema);
/* The schema served for that kind (borrowed), or NULL. */
const cJSON *fakeapi_schema(const fakeapi *fa, const char *api_version, const char *plural);
/* The same from a CRD YAML file (every version of it). 0 or a negative errno. */
int fakeapi_load_crd(fakeapi *fa, const char *path);

const char *fakeapi_url(const fakeapi *fa); /* "https://127.0.0.1:PORT" */
int fakeapi_port(const fakeapi *fa);
const char *fakeapi_ca_pem(const fakeapi *fa); /* PEM of the CA that signed the serving cert */
/* Write a kubeconfig (cluster with certificate-authority-data, user with token
 * when non-NULL, context "fake" as current-context, namespace "default"). */
int fakeapi_write_kubeconfig(const fakeapi *fa, const char *path, const char *token);

/* ---- the store ------------------------------------------------------------------------- */

/* Create or replace an object as a seed (no fakessa; managedFields kept as given).
 * The path comes from apiVersion, kind (plural: see fakeapi_register_kind) and
 * metadata.namespace/name. Assigns uid, creationTimestamp, generation when
 * missing, always a fresh resourceVersion; emits ADDED or MODIFIED.
 * Returns 0, -EINVAL (bad JSON or missing apiVersion/kind/name) or -ENOMEM. */
int fakeapi_put_json(fakeapi *fa, const char *json);
/* The same from a cJSON tree (borrowed, copied). */
int fakeapi_put(fakeapi *fa, const cJSON *obj);
/* The stored object at `path` ("/apis/apps/v1/namespaces/default/deployments/web")
 * as compact JSON (caller frees), or NULL when absent. */
char *fakeapi_get_json(const fakeapi *fa, const char *path);
/* Borrowed tree of the stored object, or NULL; valid until the next write. */
const cJSON *fakeapi_get(const fakeapi *fa, const char *path);
/* Delete (emits DELETED). Returns 0 or -ENOENT. */
int fakeapi_delete(fakeapi *fa, const char *path);
/* Objects stored under a collection path prefix ("/apis/apps/v1/namespaces/default/deployments").
 */
size_t fakeapi_object_count(const fakeapi *fa, const char *collection);

/* Map a kind to its REST resource. Built in: the common core/apps/batch/
 * coordination/events/admissionregistration/apiextensions/autoscaling/metrics
 * kinds and optipod.io OptimizationPolicy; anything else is lowercased and
 * pluralised (y→ies, s/x/ch/sh→es, else +s) and namespaced when the object has a
 * namespace. Register kinds whose guess would be wrong. */
int fakeapi_register_kind(fakeapi *fa, const char *api_version, const char *kind,
                          const char *plural, int namespaced);

/* The last resourceVersion handed out. */
uint64_t fakeapi_rv(const fakeapi *fa);
/* Simulate etcd compaction at the current RV: the watch history is dropped;
 * watches from an older RV get ERROR 410; continue tokens from before get 410. */
void fakeapi_compact(fakeapi *fa);
/* Send a BOOKMARK (current RV) now to every open watch that allows bookmarks. */
void fakeapi_bookmark(fakeapi *fa);
/* End every open watch stream normally (as when timeoutSeconds expires). */
void fakeapi_end_watches(fakeapi *fa);
/* Close every open connection abruptly (TCP reset-like: no TLS close_notify). */
void fakeapi_drop_connections(fakeapi *fa);
/* Open watch streams now. */
size_t fakeapi_watch_count(const fakeapi *fa);

/* ---- fault injection ------------------------------------------------------------------- */

typedef enum fakeapi_fault_kind {
    FAKEAPI_FAULT_STATUS = 1, /* answer `status` (429/500/503/...) with a Status body,
                                 Retry-After: retry_after_s when > 0, and `message` */
    FAKEAPI_FAULT_DELAY,      /* wait delay_ms, then handle normally */
    FAKEAPI_FAULT_DROP,       /* watch: after `after_events` events, send half of the next
                                 event line and close the connection; non-watch: send the
                                 headers and half of the body, then close */
    FAKEAPI_FAULT_TRUNCATE,   /* non-watch: 200 whose body is the first half of the real one
                                 (Content-Length matches: invalid JSON, valid HTTP) */
    FAKEAPI_FAULT_MALFORMED,  /* watch: after `after_events` events, one garbage line
                                 ("{not json\n"), then the stream goes on */
    FAKEAPI_FAULT_OVERSIZED,  /* respond with the real object padded to at least `size` bytes
                                 (a big annotation); watch: one such MODIFIED event after
                                 `after_events` events */
    FAKEAPI_FAULT_GONE,       /* watch: ERROR 410 Expired event, then end of stream;
                                 non-watch: 410 Expired Status (continue-token shape on lists) */
    FAKEAPI_FAULT_HANGUP,     /* close the connection without any response */
} fakeapi_fault_kind;

typedef struct fakeapi_fault {
    const char *method; /* "GET", "PATCH", ...; NULL = any */
    const char *path;   /* substring of path+query; NULL = any */
    int watch;          /* 1 = watch requests only, 0 = non-watch only, -1 = both */
    int count;          /* matching requests it applies to; 0 = every one until cleared */
    fakeapi_fault_kind kind;
    int status;          /* FAKEAPI_FAULT_STATUS */
    int retry_after_s;   /* FAKEAPI_FAULT_STATUS: Retry-After header when > 0 */
    const char *message; /* Status message; NULL = a default per status */
    unsigned delay_ms;   /* FAKEAPI_FAULT_DELAY */
    int after_events;    /* DROP, MALFORMED, OVERSIZED on watches */
    size_t size;         /* OVERSIZED */
} fakeapi_fault;

/* Add a fault (copied). Faults are tried in the order added; the first match
 * with count left applies. Returns 0 or -ENOMEM. */
int fakeapi_add_fault(fakeapi *fa, const fakeapi_fault *f);
void fakeapi_clear_faults(fakeapi *fa);

typedef enum fakeapi_tls_fault {
    FAKEAPI_TLS_OK = 0,    /* the normal serving cert */
    FAKEAPI_TLS_UNTRUSTED, /* new connections get a cert from another CA (verify fails) */
    FAKEAPI_TLS_HANGUP,    /* new connections are closed before the handshake completes */
} fakeapi_tls_fault;
/* Applies to connections accepted from now on (kept-alive ones are unaffected:
 * call fakeapi_drop_connections() too). */
int fakeapi_set_tls_fault(fakeapi *fa, fakeapi_tls_fault mode);

/* ---- request log and counters ---------------------------------------------------------- */

typedef struct fakeapi_logged {
    char *method;
    char *path;         /* path + "?" + query as received */
    char *content_type; /* "" when absent */
    char *body;         /* NUL-terminated; "" when empty */
    size_t body_len;
    int status; /* status answered (200 for watches that streamed) */
    int watch;  /* 1 for watch requests */
} fakeapi_logged;

size_t fakeapi_log_count(const fakeapi *fa);
/* The i-th request (0 = first since start or the last clear); NULL past the end. */
const fakeapi_logged *fakeapi_log_at(const fakeapi *fa, size_t i);
/* The last logged request matching method (NULL = any) and path substring (NULL = any). */
const fakeapi_logged *fakeapi_log_last(const fakeapi *fa, const char *method, const char *path);
void fakeapi_log_clear(fakeapi *fa);
/* Requests logged matching method (NULL = any) and path substring (NULL = any). */
size_t fakeapi_count(const fakeapi *fa, const char *method, const char *path);
/* TCP connections accepted and TLS handshakes completed since start. */
size_t fakeapi_connections_accepted(const fakeapi *fa);
size_t fakeapi_handshakes(const fakeapi *fa);

/* Behave like a 1.27-1.31 server with the InPlacePodVerticalScaling gate on:
 * a plain pod PATCH may change spec.containers[].resources (default off: the
 * v1.24 422). */
void fakeapi_set_pod_patch_resize(fakeapi *fa, int on);

/* ---- escape hatch ---------------------------------------------------------------------- */

/* Called for every request before the built-in handling (after auth and faults).
 * Return 1 when the hook took the request (it must answer it with ophttpd_respond,
 * a stream or ophttpd_fault_abort, at the latest before fakeapi_stop() is called; it is
 * logged with status 200), 0 to continue with the built-in handling. */
/* Play the workload controllers: from now on every stored Deployment,
 * StatefulSet and DaemonSet gets a status showing its current generation
 * fully rolled out and available (spec.replicas pods, 1 for a DaemonSet).
 * Off by default: then status is only what the test writes. */
void fakeapi_set_rollouts_done(fakeapi *fa, int on);

typedef int (*fakeapi_hook)(fakeapi *fa, ophttpd_req *req, void *ud);
void fakeapi_set_hook(fakeapi *fa, fakeapi_hook hook, void *ud);

#endif
