/*
 * fakeapi: the fake kube-apiserver. See fakeapi.h for what it imitates.
 *
 * Structure: one ophttpd server; every request goes through handle():
 * log → auth → faults → hook → route. Non-watch requests are served by pure-ish
 * functions returning (status, JSON body) so faults can alter the bytes; watch
 * requests become `watch` records fed from the write path (emit()). One timer
 * drives watch timeouts, periodic bookmarks and delayed (fault) requests.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "httpd/fault.h"
#include "support/fakeapi.h"
#include "support/fakeapi_int.h"
#include "support/fakessa.h"
#include "test.h"
#include "util/buf.h"
#include "util/map.h"
#include "util/optime.h"
#include "util/yaml2json.h"

#define DEF_HISTORY  1000
#define DEF_FIRST_RV 100
#define DEF_MAX_BODY ((size_t)3 << 20)

/* ---- types --------------------------------------------------------------------------- */

typedef struct kindinfo {
    char *api_version, *kind, *plural;
    int namespaced;
    int typed;         /* built-in type: list items carry no kind/apiVersion */
    int no_status_sub; /* a CRD without the status subresource: status is written with the rest */
    cJSON *schema;     /* owned: a CRD's openAPIV3Schema (applies are type-checked), or NULL */
} kindinfo;

/* A parsed resource path. */
typedef struct rpath {
    char prefix[256]; /* "/api/v1" or "/apis/apps/v1" */
    char group[128];  /* "" for core */
    char version[64];
    char resource[128];
    char ns[256];
    char name[256];
    char sub[64];
} rpath;

typedef struct obj {
    char *key; /* canonical path */
    char prefix[256], resource[128], ns[256], name[256];
    cJSON *json;
} obj;

typedef struct hist {
    uint64_t rv;
    char type[16];
    char prefix[256], resource[128], ns[256];
    cJSON *json;
    cJSON *prev; /* MODIFIED: the object before, for selector transitions; else NULL */
} hist;

typedef struct watch {
    struct watch *next;
    fakeapi *fa;
    ophttpd_req *req;
    char prefix[256], resource[128], ns[256];
    char *label_sel, *field_sel;
    char kind[128], api_version[160];
    int bookmarks;
    uint64_t deadline_ms; /* 0 = none */
    int sent;
    fakeapi_fault fault; /* kind 0 = none */
    int fault_done;
} watch;

typedef struct delayed {
    struct delayed *next;
    fakeapi *fa;
    ophttpd_req *req;
    size_t log_idx;
    uint64_t due_ms;
} delayed;

typedef struct fault_slot {
    fakeapi_fault f;
    char *method, *path, *message;
    int left; /* -1 = forever */
} fault_slot;

struct fakeapi {
    uv_loop_t *loop;
    ophttpd *srv;
    uv_timer_t tick;
    ophttpd_cert cert, other;
    char url[64];
    char *token, *now;
    size_t history_max, max_body;
    unsigned bookmark_ms;
    uint64_t next_bookmark_ms;
    uint64_t rv, compacted_rv, uid_seq;
    opmap store; /* key → obj* */
    hist *hist;
    size_t hist_len, hist_start; /* ring */
    watch *watches;
    delayed *delayed;
    kindinfo *kinds;
    size_t nkinds;
    fault_slot *faults;
    size_t nfaults;
    fakeapi_tls_fault tls_fault;
    fakeapi_logged *log;
    size_t nlog, caplog;
    size_t accepted, handshakes;
    fakeapi_hook hook;
    void *hook_ud;
    int rollouts_done;
    int pod_patch_resize; /* a plain pod PATCH may change container resources */
    int stopping, pending_closes;
    void (*on_closed)(void *ud);
    void *closed_ud;
};

/* ---- small helpers ------------------------------------------------------------------- */

static uint64_t now_ms(const fakeapi *fa)
{
    return uv_now(fa->loop);
}

static void timestamp(const fakeapi *fa, char out[32])
{
    if (fa->now) {
        snprintf(out, 32, "%s", fa->now);
        return;
    }
    optime_format((optime){.sec = time(NULL)}, 0, out, 32);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *meta_of(cJSON *o)
{
    cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    if (!cJSON_IsObject(m)) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "metadata");
        m = cJSON_AddObjectToObject(o, "metadata");
    }
    return m;
}

static void set_str(cJSON *o, const char *key, const char *v)
{
    cJSON *s = cJSON_CreateString(v);
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, s);
    else
        cJSON_AddItemToObject(o, key, s);
}

static void set_item(cJSON *o, const char *key, cJSON *v)
{
    if (cJSON_GetObjectItemCaseSensitive(o, key))
        cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
    else
        cJSON_AddItemToObject(o, key, v);
}

static char *print(const cJSON *o)
{
    return cJSON_PrintUnformatted(o);
}

/* ---- kinds --------------------------------------------------------------------------- */

static const struct {
    const char *av, *kind, *plural;
    int ns;
} builtin_kinds[] = {
    {"v1", "Pod", "pods", 1},
    {"v1", "Namespace", "namespaces", 0},
    {"v1", "Node", "nodes", 0},
    {"v1", "Event", "events", 1},
    {"v1", "ConfigMap", "configmaps", 1},
    {"v1", "Secret", "secrets", 1},
    {"v1", "Service", "services", 1},
    {"v1", "Endpoints", "endpoints", 1},
    {"v1", "ServiceAccount", "serviceaccounts", 1},
    {"v1", "LimitRange", "limitranges", 1},
    {"v1", "ResourceQuota", "resourcequotas", 1},
    {"v1", "ReplicationController", "replicationcontrollers", 1},
    {"apps/v1", "Deployment", "deployments", 1},
    {"apps/v1", "StatefulSet", "statefulsets", 1},
    {"apps/v1", "DaemonSet", "daemonsets", 1},
    {"apps/v1", "ReplicaSet", "replicasets", 1},
    {"policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", 1},
    {"batch/v1", "Job", "jobs", 1},
    {"batch/v1", "CronJob", "cronjobs", 1},
    {"coordination.k8s.io/v1", "Lease", "leases", 1},
    {"events.k8s.io/v1", "Event", "events", 1},
    {"autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", 1},
    {"autoscaling/v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", 1},
    {"admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
     "mutatingwebhookconfigurations", 0},
    {"admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
     "validatingwebhookconfigurations", 0},
    {"apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", 0},
    {"metrics.k8s.io/v1beta1", "PodMetrics", "pods", 1},
    {"metrics.k8s.io/v1beta1", "NodeMetrics", "nodes", 0},
    {"rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", 0},
    {"rbac.authorization.k8s.io/v1", "Role", "roles", 1},
};

static int add_kind(fakeapi *fa, const char *av, const char *kind, const char *plural, int ns,
                    int typed)
{
    kindinfo *k = realloc(fa->kinds, (fa->nkinds + 1) * sizeof(*k));
    if (!k)
        return -ENOMEM;
    fa->kinds = k;
    k = &fa->kinds[fa->nkinds];
    k->api_version = strdup(av);
    k->kind = strdup(kind);
    k->plural = strdup(plural);
    k->namespaced = ns;
    k->typed = typed;
    k->no_status_sub = 0;
    k->schema = NULL;
    if (!k->api_version || !k->kind || !k->plural) {
        free(k->api_version);
        free(k->kind);
        free(k->plural);
        return -ENOMEM;
    }
    fa->nkinds++;
    return 0;
}

int fakeapi_register_kind(fakeapi *fa, const char *api_version, const char *kind,
                          const char *plural, int namespaced)
{
    return add_kind(fa, api_version, kind, plural, namespaced, 0);
}

int fakeapi_set_schema(fakeapi *fa, const char *api_version, const char *plural,
                       const cJSON *schema)
{
    for (size_t i = fa->nkinds; i-- > 0;) {
        kindinfo *k = &fa->kinds[i];
        if (strcmp(k->api_version, api_version) != 0 || strcmp(k->plural, plural) != 0)
            continue;
        cJSON *copy = schema ? cJSON_Duplicate(schema, 1) : NULL;
        if (schema && !copy)
            return -ENOMEM;
        cJSON_Delete(k->schema);
        k->schema = copy;
        return 0;
    }
    return -ENOENT;
}

const cJSON *fakeapi_schema(const fakeapi *fa, const char *api_version, const char *plural)
{
    for (size_t i = fa->nkinds; i-- > 0;)
        if (!strcmp(fa->kinds[i].api_version, api_version) && !strcmp(fa->kinds[i].plural, plural))
            return fa->kinds[i].schema;
    return NULL;
}

int fakeapi_load_crd(fakeapi *fa, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    opbuf text;
    opbuf_init(&text, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        opbuf_append(&text, chunk, n);
    int rc = ferror(f) ? -EIO : 0;
    fclose(f);
    cJSON *crd = NULL;
    operr err = {{0}};
    rc = rc ?: yaml2json_parse(text.data, text.len, &crd, &err);
    opbuf_release(&text);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(crd, "spec");
    const char *group = jstr(spec, "group");
    const char *plural = jstr(cJSON_GetObjectItemCaseSensitive(spec, "names"), "plural");
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(spec, "versions"))
    {
        const cJSON *sch = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(v, "schema"), "openAPIV3Schema");
        char av[256];
        if (rc || !group || !plural || !jstr(v, "name") || !sch)
            continue;
        snprintf(av, sizeof av, "%s/%s", group, jstr(v, "name"));
        rc = fakeapi_set_schema(fa, av, plural, sch);
    }
    if (!rc && (!group || !plural))
        rc = -EINVAL;
    cJSON_Delete(crd);
    return rc;
}

/* The project's CRDs (crds/ beside test/data), so applies of optipod's kinds
 * are type-checked as the real server checks them. */
static int load_project_crds(fakeapi *fa)
{
    static const char *const files[] = {"optimizationpolicies.optipod.io.yaml",
                                        "optimizationrecommendations.optipod.io.yaml"};
    char root[4096];
    snprintf(root, sizeof root, "%s", test_fixture_dir());
    for (int up = 0; up < 3; up++) { /* <root>/test/data/kube-apiserver-v1.24 */
        char *slash = strrchr(root, '/');
        if (!slash) {
            snprintf(root, sizeof root, ".");
            break;
        }
        *slash = '\0';
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/crds/%s", root, files[i]);
        int rc = fakeapi_load_crd(fa, path);
        if (rc < 0) {
            fprintf(stderr, "fakeapi: loading %s: %s\n", path, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* Later registrations win: search backwards. */
static const kindinfo *kind_by_kind(const fakeapi *fa, const char *av, const char *kind)
{
    for (size_t i = fa->nkinds; i-- > 0;)
        if (strcmp(fa->kinds[i].api_version, av) == 0 && strcmp(fa->kinds[i].kind, kind) == 0)
            return &fa->kinds[i];
    return NULL;
}

static const kindinfo *kind_by_resource(const fakeapi *fa, const char *av, const char *res)
{
    for (size_t i = fa->nkinds; i-- > 0;)
        if (strcmp(fa->kinds[i].api_version, av) == 0 && strcmp(fa->kinds[i].plural, res) == 0)
            return &fa->kinds[i];
    return NULL;
}

static void guess_plural(const char *kind, char *out, size_t cap)
{
    size_t n = strlen(kind);
    char low[128];
    if (n >= sizeof(low) - 4)
        n = sizeof(low) - 4;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)((kind[i] >= 'A' && kind[i] <= 'Z') ? kind[i] + 32 : kind[i]);
    low[n] = '\0';
    if (n > 1 && low[n - 1] == 'y' && !strchr("aeiou", low[n - 2]))
        snprintf(out, cap, "%.*sies", (int)n - 1, low);
    else if ((n > 0 && (low[n - 1] == 's' || low[n - 1] == 'x')) ||
             (n > 1 && (strcmp(low + n - 2, "ch") == 0 || strcmp(low + n - 2, "sh") == 0)))
        snprintf(out, cap, "%ses", low);
    else
        snprintf(out, cap, "%ss", low);
}

static void api_version_of(const rpath *rp, char *out, size_t cap)
{
    if (rp->group[0])
        snprintf(out, cap, "%s/%s", rp->group, rp->version);
    else
        snprintf(out, cap, "%s", rp->version);
}

/* The kind served at a resource path: registered, else from a stored object, else guessed. */
static void kind_for(const fakeapi *fa, const rpath *rp, char *kind, size_t cap, int *typed)
{
    char av[160];
    api_version_of(rp, av, sizeof(av));
    const kindinfo *k = kind_by_resource(fa, av, rp->resource);
    *typed = 0;
    if (k) {
        copy_str(kind, cap, k->kind);
        *typed = k->typed;
        return;
    }
    opmap_iter it;
    opmap_iter_init(&it, &fa->store);
    for (opmap_entry *e; (e = opmap_next(&it));) {
        obj *o = e->value;
        if (strcmp(o->prefix, rp->prefix) == 0 && strcmp(o->resource, rp->resource) == 0 &&
            jstr(o->json, "kind")) {
            copy_str(kind, cap, jstr(o->json, "kind"));
            return;
        }
    }
    /* "optimizationpolicies" → "Optimizationpolicy": good enough for an unknown kind */
    size_t n = strlen(rp->resource);
    char tmp[128];
    copy_str(tmp, sizeof(tmp), rp->resource);
    if (n > 3 && strcmp(tmp + n - 3, "ies") == 0)
        strcpy(tmp + n - 3, "y");
    else if (n > 1 && tmp[n - 1] == 's')
        tmp[n - 1] = '\0';
    if (tmp[0] >= 'a' && tmp[0] <= 'z')
        tmp[0] = (char)(tmp[0] - 32);
    copy_str(kind, cap, tmp);
}

/* ---- paths --------------------------------------------------------------------------- */

/* Split "/apis/apps/v1/namespaces/default/deployments/web/status". Returns 0 or -EINVAL. */
static int parse_rpath(const char *path, rpath *rp)
{
    memset(rp, 0, sizeof(*rp));
    char copy[1024];
    if (strlen(path) >= sizeof(copy))
        return -EINVAL;
    strcpy(copy, path);
    char *seg[16];
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 16)
            return -EINVAL;
        seg[n++] = t;
    }
    size_t i;
    if (n >= 2 && strcmp(seg[0], "api") == 0) {
        copy_str(rp->version, sizeof(rp->version), seg[1]);
        snprintf(rp->prefix, sizeof(rp->prefix), "/api/%s", seg[1]);
        i = 2;
    } else if (n >= 3 && strcmp(seg[0], "apis") == 0) {
        copy_str(rp->group, sizeof(rp->group), seg[1]);
        copy_str(rp->version, sizeof(rp->version), seg[2]);
        snprintf(rp->prefix, sizeof(rp->prefix), "/apis/%s/%s", seg[1], seg[2]);
        i = 3;
    } else {
        return -EINVAL;
    }
    size_t rest = n - i;
    if (rest == 0)
        return -EINVAL;
    if (strcmp(seg[i], "namespaces") == 0 && rest >= 3) {
        copy_str(rp->ns, sizeof(rp->ns), seg[i + 1]);
        copy_str(rp->resource, sizeof(rp->resource), seg[i + 2]);
        if (rest >= 4)
            copy_str(rp->name, sizeof(rp->name), seg[i + 3]);
        if (rest >= 5)
            copy_str(rp->sub, sizeof(rp->sub), seg[i + 4]);
        if (rest > 5)
            return -EINVAL;
    } else {
        copy_str(rp->resource, sizeof(rp->resource), seg[i]);
        if (rest >= 2)
            copy_str(rp->name, sizeof(rp->name), seg[i + 1]);
        if (rest >= 3)
            copy_str(rp->sub, sizeof(rp->sub), seg[i + 2]);
        if (rest > 3)
            return -EINVAL;
    }
    return 0;
}

static void obj_key(const rpath *rp, char *out, size_t cap)
{
    if (rp->ns[0])
        snprintf(out, cap, "%s/namespaces/%s/%s/%s", rp->prefix, rp->ns, rp->resource, rp->name);
    else
        snprintf(out, cap, "%s/%s/%s", rp->prefix, rp->resource, rp->name);
}

/* "deployments.apps" as in the real server's messages. */
static void qualified(const rpath *rp, char *out, size_t cap)
{
    if (rp->group[0])
        snprintf(out, cap, "%s.%s", rp->resource, rp->group);
    else
        snprintf(out, cap, "%s", rp->resource);
}

/* ---- Status bodies ------------------------------------------------------------------- */

static const char *reason_for(int code)
{
    switch (code) {
    case 400:
        return "BadRequest";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 405:
        return "MethodNotAllowed";
    case 409:
        return "Conflict";
    case 410:
        return "Expired";
    case 415:
        return "UnsupportedMediaType";
    case 422:
        return "Invalid";
    case 429:
        return "TooManyRequests";
    case 500:
        return "InternalError";
    case 503:
        return "ServiceUnavailable";
    case 504:
        return "Timeout";
    default:
        return "Unknown";
    }
}

static const char *default_message(int code)
{
    switch (code) {
    case 429:
        return "Too many requests, please try again later.";
    case 500:
        return "Internal error occurred: injected by fakeapi";
    case 503:
        return "the server is currently unable to handle the request";
    case 504:
        return "the server was unable to return a response in the time allotted";
    case 410:
        return "too old resource version";
    case 401:
        return "Unauthorized";
    default:
        return ophttpd_status_text(code);
    }
}

/* {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":..,
 *  "reason":..,"details":{..},"code":N} in the real server's key order. */
static cJSON *status_new(int code, const char *reason, const char *message, const rpath *rp,
                         const char *name)
{
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "kind", "Status");
    cJSON_AddStringToObject(s, "apiVersion", "v1");
    cJSON_AddObjectToObject(s, "metadata");
    cJSON_AddStringToObject(s, "status", code < 300 ? "Success" : "Failure");
    if (message)
        cJSON_AddStringToObject(s, "message", message);
    cJSON_AddStringToObject(s, "reason", reason ? reason : reason_for(code));
    if (rp && name) {
        cJSON *d = cJSON_AddObjectToObject(s, "details");
        cJSON_AddStringToObject(d, "name", name);
        if (rp->group[0])
            cJSON_AddStringToObject(d, "group", rp->group);
        cJSON_AddStringToObject(d, "kind", rp->resource);
    }
    cJSON_AddNumberToObject(s, "code", code);
    return s;
}

/* ---- a served response --------------------------------------------------------------- */

typedef struct reply {
    int status;
    cJSON *body; /* owned */
    char *extra; /* extra headers, owned */
} reply;

static void reply_set(reply *r, int status, cJSON *body)
{
    cJSON_Delete(r->body);
    r->status = status;
    r->body = body;
}

static void reply_status(reply *r, int code, const char *reason, const char *msg, const rpath *rp,
                         const char *name)
{
    reply_set(r, code, status_new(code, reason, msg, rp, name));
}

static void not_found(reply *r, const rpath *rp)
{
    char q[300], msg[700];
    qualified(rp, q, sizeof(q));
    snprintf(msg, sizeof(msg), "%s \"%s\" not found", q, rp->name);
    reply_status(r, 404, "NotFound", msg, rp, rp->name);
}

/* ---- the store ----------------------------------------------------------------------- */

static void obj_free(void *p)
{
    obj *o = p;
    if (!o)
        return;
    cJSON_Delete(o->json);
    free(o->key);
    free(o);
}

static uint64_t meta_rv(const cJSON *o)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    const char *rv = jstr(m, "resourceVersion");
    return rv ? strtoull(rv, NULL, 10) : 0;
}

/* Does anything outside metadata and status differ? */
/* What an update changed for metadata.generation: GEN_SPEC, a change outside metadata and
 * status; GEN_ANNOTATIONS, for a Deployment only its annotations (the real server copies them
 * to the ReplicaSets, so v1.24 bumps the generation for them too; labels do not count). */
enum { GEN_SAME, GEN_SPEC, GEN_ANNOTATIONS };

static int generation_change(const rpath *rp, const cJSON *a, const cJSON *b)
{
    cJSON *x = cJSON_Duplicate(a, 1), *y = cJSON_Duplicate(b, 1);
    const char *const skip[] = {"metadata", "status", "kind", "apiVersion"};
    for (size_t i = 0; i < 4; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(x, skip[i]);
        cJSON_DeleteItemFromObjectCaseSensitive(y, skip[i]);
    }
    int changed = !cJSON_Compare(x, y, 1);
    cJSON_Delete(x);
    cJSON_Delete(y);
    if (changed)
        return GEN_SPEC;
    if (strcmp(rp->group, "apps") != 0 || strcmp(rp->resource, "deployments") != 0)
        return GEN_SAME;
    const cJSON *na = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(a, "metadata"), "annotations");
    const cJSON *nb = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(b, "metadata"), "annotations");
    int ea = !na || !na->child, eb = !nb || !nb->child; /* absent and {} are the same */
    return ea != eb || (!ea && !cJSON_Compare(na, nb, 1)) ? GEN_ANNOTATIONS : GEN_SAME;
}

/* The Deployment controller observes an annotations-only generation at once (there is
 * nothing to roll out): when status had caught up with the old generation, it shows the
 * new one. */
static void observe_annotations_only(const cJSON *live, cJSON *json, double gen)
{
    const cJSON *obs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(live, "status"), "observedGeneration");
    cJSON *st = cJSON_GetObjectItemCaseSensitive(json, "status");
    if (cJSON_IsNumber(obs) && obs->valuedouble == gen - 1 && cJSON_IsObject(st))
        set_item(st, "observedGeneration", cJSON_CreateNumber(gen));
}

static void hist_push(fakeapi *fa, const char *type, const obj *o, const cJSON *json,
                      const cJSON *prev)
{
    if (fa->hist_len == fa->history_max) {
        hist *old = &fa->hist[fa->hist_start];
        /* the oldest event falls out: watching from before it is no longer possible */
        if (old->rv > fa->compacted_rv)
            fa->compacted_rv = old->rv;
        cJSON_Delete(old->json);
        cJSON_Delete(old->prev);
        fa->hist_start = (fa->hist_start + 1) % fa->history_max;
        fa->hist_len--;
    }
    hist *h = &fa->hist[(fa->hist_start + fa->hist_len) % fa->history_max];
    h->rv = fa->rv;
    copy_str(h->type, sizeof(h->type), type);
    copy_str(h->prefix, sizeof(h->prefix), o->prefix);
    copy_str(h->resource, sizeof(h->resource), o->resource);
    copy_str(h->ns, sizeof(h->ns), o->ns);
    h->json = cJSON_Duplicate(json, 1);
    h->prev = prev ? cJSON_Duplicate(prev, 1) : NULL;
    fa->hist_len++;
}

static int watch_send_event(watch *w, const char *type, const cJSON *json);

static int watch_selects(const watch *w, const char *prefix, const char *resource, const char *ns,
                         const cJSON *json)
{
    if (strcmp(w->prefix, prefix) != 0 || strcmp(w->resource, resource) != 0)
        return 0;
    if (w->ns[0] && strcmp(w->ns, ns) != 0)
        return 0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(json, "metadata");
    if (fakeapi_label_match(w->label_sel, cJSON_GetObjectItemCaseSensitive(m, "labels")) != 1)
        return 0;
    if (fakeapi_field_match(w->field_sel, json) != 1)
        return 0;
    return 1;
}

/*
 * The event a watch sees for a change, given its selectors: an object that
 * starts matching is ADDED, one that stops matching is DELETED (the real
 * watch cache does this). NULL when the watch does not see it at all.
 */
static const char *event_for(const watch *w, const char *type, const char *prefix,
                             const char *resource, const char *ns, const cJSON *json,
                             const cJSON *prev)
{
    int now = watch_selects(w, prefix, resource, ns, json);
    if (strcmp(type, "MODIFIED") != 0 || !prev)
        return now ? type : NULL;
    int before = watch_selects(w, prefix, resource, ns, prev);
    if (now && before)
        return "MODIFIED";
    if (now)
        return "ADDED";
    if (before)
        return "DELETED";
    return NULL;
}

/* Record and fan out a change; prev is the object before a MODIFIED. */
static void emit(fakeapi *fa, const char *type, const obj *o, const cJSON *json, const cJSON *prev)
{
    hist_push(fa, type, o, json, prev);
    for (watch *w = fa->watches, *nx; w; w = nx) {
        nx = w->next; /* sending may end the watch */
        const char *t = event_for(w, type, o->prefix, o->resource, o->ns, json, prev);
        if (t)
            watch_send_event(w, t, json);
    }
}

static void assign_uid(fakeapi *fa, char out[40])
{
    fa->uid_seq++;
    snprintf(out, 40, "f4ce0000-0000-4000-8000-%012" PRIx64, fa->uid_seq);
}

/* Play the workload controllers (fakeapi_set_rollouts_done): the status of a
 * Deployment, StatefulSet or DaemonSet shows its generation rolled out. */
static void complete_rollout(const rpath *rp, cJSON *json)
{
    int ds = strcmp(rp->resource, "daemonsets") == 0;
    if (strcmp(rp->prefix, "/apis/apps/v1") != 0 || rp->sub[0] ||
        (!ds && strcmp(rp->resource, "deployments") != 0 &&
         strcmp(rp->resource, "statefulsets") != 0))
        return;
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(meta_of(json), "generation");
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(json, "spec"), "replicas");
    double g = cJSON_IsNumber(gen) ? gen->valuedouble : 1;
    double n = cJSON_IsNumber(rep) ? rep->valuedouble : 1;
    char rev[64];
    snprintf(rev, sizeof rev, "%s-%.0f", rp->name, g);
    cJSON *st = cJSON_CreateObject();
    cJSON_AddNumberToObject(st, "observedGeneration", g);
    if (ds) {
        static const char *const f[] = {"desiredNumberScheduled", "updatedNumberScheduled",
                                        "numberReady", "numberAvailable"};
        for (size_t i = 0; i < 4; i++)
            cJSON_AddNumberToObject(st, f[i], 1);
    } else {
        static const char *const f[] = {"replicas", "updatedReplicas", "readyReplicas",
                                        "availableReplicas"};
        for (size_t i = 0; i < 4; i++)
            cJSON_AddNumberToObject(st, f[i], n);
        if (strcmp(rp->resource, "statefulsets") == 0) {
            cJSON_AddStringToObject(st, "currentRevision", rev);
            cJSON_AddStringToObject(st, "updateRevision", rev);
        }
    }
    set_item(json, "status", st);
}

void fakeapi_set_rollouts_done(fakeapi *fa, int on)
{
    fa->rollouts_done = on != 0;
}

/*
 * Store `json` (ownership taken) at rp (name set), stamping metadata like the
 * real server: fresh RV always; uid/creationTimestamp kept from `live` or
 * assigned; generation kept, bumped on spec change, 1 on create.
 */
static obj *store_put(fakeapi *fa, const rpath *rp, cJSON *json, int keep_given_meta)
{
    char key[1024];
    obj_key(rp, key, sizeof(key));
    obj *live = opmap_get(&fa->store, key);
    cJSON *m = meta_of(json);
    char ts[32], uid[40], rv[32];
    if (live) {
        const cJSON *lm = cJSON_GetObjectItemCaseSensitive(live->json, "metadata");
        if (!keep_given_meta || !jstr(m, "uid"))
            set_str(m, "uid", jstr(lm, "uid") ? jstr(lm, "uid") : "");
        if (!keep_given_meta || !cJSON_GetObjectItemCaseSensitive(m, "creationTimestamp")) {
            const cJSON *ct = cJSON_GetObjectItemCaseSensitive(lm, "creationTimestamp");
            set_item(m, "creationTimestamp", ct ? cJSON_Duplicate(ct, 1) : cJSON_CreateNull());
        }
        if (!keep_given_meta || !cJSON_GetObjectItemCaseSensitive(m, "generation")) {
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(lm, "generation");
            double gen = cJSON_IsNumber(g) ? g->valuedouble : 1;
            int how = generation_change(rp, live->json, json);
            if (how != GEN_SAME)
                gen += 1;
            set_item(m, "generation", cJSON_CreateNumber(gen));
            if (how == GEN_ANNOTATIONS)
                observe_annotations_only(live->json, json, gen);
        }
    } else {
        if (!jstr(m, "uid")) {
            assign_uid(fa, uid);
            set_str(m, "uid", uid);
        }
        if (!jstr(m, "creationTimestamp")) {
            timestamp(fa, ts);
            set_str(m, "creationTimestamp", ts);
        }
        if (!cJSON_GetObjectItemCaseSensitive(m, "generation"))
            set_item(m, "generation", cJSON_CreateNumber(1));
    }
    if (fa->rollouts_done)
        complete_rollout(rp, json);
    set_str(m, "name", rp->name);
    if (rp->ns[0])
        set_str(m, "namespace", rp->ns);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(m, "namespace"); /* cluster-scoped */
    fa->rv++;
    snprintf(rv, sizeof(rv), "%" PRIu64, fa->rv);
    set_str(m, "resourceVersion", rv);
    fakessa_order_keys(json);

    obj *o = live;
    if (!o) {
        o = calloc(1, sizeof(*o));
        if (!o) {
            cJSON_Delete(json);
            return NULL;
        }
        o->key = strdup(key);
        copy_str(o->prefix, sizeof(o->prefix), rp->prefix);
        copy_str(o->resource, sizeof(o->resource), rp->resource);
        copy_str(o->ns, sizeof(o->ns), rp->ns);
        copy_str(o->name, sizeof(o->name), rp->name);
        if (!o->key || opmap_put(&fa->store, key, o, NULL) < 0) {
            free(o->key);
            free(o);
            cJSON_Delete(json);
            return NULL;
        }
    }
    cJSON *prev = live ? o->json : NULL;
    o->json = json;
    emit(fa, live ? "MODIFIED" : "ADDED", o, o->json, prev);
    cJSON_Delete(prev);
    return o;
}

static void store_delete(fakeapi *fa, obj *o)
{
    opmap_del(&fa->store, o->key);
    fa->rv++;
    char rv[32];
    snprintf(rv, sizeof(rv), "%" PRIu64, fa->rv);
    set_str(meta_of(o->json), "resourceVersion", rv);
    emit(fa, "DELETED", o, o->json, NULL);
    obj_free(o);
}

/* rpath of an object from its apiVersion/kind/namespace/name. */
static int rpath_of_object(const fakeapi *fa, const cJSON *json, rpath *rp)
{
    const char *av = jstr(json, "apiVersion"), *kind = jstr(json, "kind");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(json, "metadata");
    const char *name = jstr(m, "name"), *ns = jstr(m, "namespace");
    if (!av || !kind || !name || !*name)
        return -EINVAL;
    memset(rp, 0, sizeof(*rp));
    const char *slash = strchr(av, '/');
    if (slash) {
        snprintf(rp->group, sizeof(rp->group), "%.*s", (int)(slash - av), av);
        copy_str(rp->version, sizeof(rp->version), slash + 1);
        snprintf(rp->prefix, sizeof(rp->prefix), "/apis/%s", av);
    } else {
        copy_str(rp->version, sizeof(rp->version), av);
        snprintf(rp->prefix, sizeof(rp->prefix), "/api/%s", av);
    }
    const kindinfo *k = kind_by_kind(fa, av, kind);
    if (k)
        copy_str(rp->resource, sizeof(rp->resource), k->plural);
    else
        guess_plural(kind, rp->resource, sizeof(rp->resource));
    if ((k ? k->namespaced : 1) && ns && *ns)
        copy_str(rp->ns, sizeof(rp->ns), ns);
    copy_str(rp->name, sizeof(rp->name), name);
    return 0;
}

int fakeapi_put(fakeapi *fa, const cJSON *json)
{
    rpath rp;
    if (!cJSON_IsObject(json) || rpath_of_object(fa, json, &rp) < 0)
        return -EINVAL;
    cJSON *copy = cJSON_Duplicate(json, 1);
    if (!copy)
        return -ENOMEM;
    return store_put(fa, &rp, copy, 1) ? 0 : -ENOMEM;
}

int fakeapi_put_json(fakeapi *fa, const char *json)
{
    cJSON *o = cJSON_Parse(json);
    if (!o)
        return -EINVAL;
    int rc = fakeapi_put(fa, o);
    cJSON_Delete(o);
    return rc;
}

const cJSON *fakeapi_get(const fakeapi *fa, const char *path)
{
    obj *o = opmap_get(&fa->store, path);
    return o ? o->json : NULL;
}

char *fakeapi_get_json(const fakeapi *fa, const char *path)
{
    const cJSON *o = fakeapi_get(fa, path);
    return o ? print(o) : NULL;
}

int fakeapi_delete(fakeapi *fa, const char *path)
{
    obj *o = opmap_get(&fa->store, path);
    if (!o)
        return -ENOENT;
    store_delete(fa, o);
    return 0;
}

size_t fakeapi_object_count(const fakeapi *fa, const char *collection)
{
    size_t n = 0, cl = strlen(collection);
    opmap_iter it;
    opmap_iter_init(&it, &fa->store);
    for (opmap_entry *e; (e = opmap_next(&it));)
        if (strncmp(e->key, collection, cl) == 0 && e->key[cl] == '/')
            n++;
    return n;
}

uint64_t fakeapi_rv(const fakeapi *fa)
{
    return fa->rv;
}

void fakeapi_compact(fakeapi *fa)
{
    for (size_t i = 0; i < fa->hist_len; i++) {
        cJSON_Delete(fa->hist[(fa->hist_start + i) % fa->history_max].json);
        cJSON_Delete(fa->hist[(fa->hist_start + i) % fa->history_max].prev);
    }
    fa->hist_len = fa->hist_start = 0;
    fa->compacted_rv = fa->rv;
}

/* ---- list ---------------------------------------------------------------------------- */

typedef struct listed {
    obj *o;
    char sortkey[600];
} listed;

static int cmp_listed(const void *a, const void *b)
{
    return strcmp(((const listed *)a)->sortkey, ((const listed *)b)->sortkey);
}

static void list_sortkey(const rpath *rp, const obj *o, char *out, size_t cap)
{
    /* etcd key order below the resource prefix: "ns/name" across namespaces, else "name" */
    if (!rp->ns[0] && o->ns[0])
        snprintf(out, cap, "%s/%s", o->ns, o->name);
    else
        snprintf(out, cap, "%s", o->name);
}

static char *continue_token(int64_t rv, const char *start)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "v", "meta.k8s.io/v1");
    cJSON_AddNumberToObject(t, "rv", (double)rv);
    /* "start" is the last key returned plus NUL: the next key after it */
    size_t n = strlen(start);
    (void)n;
    /* cJSON cannot hold a NUL inside a string: splice "\u0000" into the text */
    cJSON_AddStringToObject(t, "start", start);
    char *json = print(t);
    cJSON_Delete(t);
    opbuf b;
    opbuf_init(&b, 1 << 16);
    size_t jl = strlen(json);
    opbuf_append(&b, json, jl - 2); /* drop `"}` */
    opbuf_puts(&b, "\\u0000\"}");
    free(json);
    char *tok = fakeapi_b64(b.data, b.len, 1);
    opbuf_release(&b);
    return tok;
}

/* Decode a continue token: rv and start (without the trailing NUL). */
static int parse_continue(const char *tok, int64_t *rv, char *start, size_t cap)
{
    size_t n;
    char *raw = fakeapi_b64_decode(tok, &n);
    if (!raw)
        return -EINVAL;
    cJSON *t = cJSON_ParseWithLength(raw, n);
    free(raw);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(t, "rv");
    const char *s = jstr(t, "start");
    const char *v = jstr(t, "v");
    int rc = -EINVAL;
    if (cJSON_IsNumber(r) && s && v && strcmp(v, "meta.k8s.io/v1") == 0) {
        *rv = (int64_t)r->valuedouble;
        copy_str(start, cap, s); /* cJSON stops at the \u0000 */
        rc = 0;
    }
    cJSON_Delete(t);
    return rc;
}

static cJSON *list_item(const fakeapi *fa, const obj *o, int typed)
{
    cJSON *c = cJSON_Duplicate(o->json, 1);
    if (typed) {
        cJSON_DeleteItemFromObjectCaseSensitive(c, "kind");
        cJSON_DeleteItemFromObjectCaseSensitive(c, "apiVersion");
    }
    (void)fa;
    return c;
}

static void serve_list(fakeapi *fa, ophttpd_req *req, const rpath *rp, reply *r)
{
    char *limit_s = ophttpd_query_param(req, "limit");
    char *cont = ophttpd_query_param(req, "continue");
    char *lsel = ophttpd_query_param(req, "labelSelector");
    char *fsel = ophttpd_query_param(req, "fieldSelector");
    long limit = limit_s ? strtol(limit_s, NULL, 10) : 0;
    int64_t list_rv = (int64_t)fa->rv;
    char start[600] = "";
    listed *items = NULL;
    size_t n = 0;

    if (cont && *cont) {
        int64_t trv;
        if (parse_continue(cont, &trv, start, sizeof(start)) < 0) {
            reply_status(r, 400, "BadRequest",
                         "continue key is not valid: incorrect encoded start resourceVersion "
                         "(version meta.k8s.io/v1)",
                         NULL, NULL);
            goto out;
        }
        if (trv < (int64_t)fa->compacted_rv) {
            cJSON *s = status_new(
                410, "Expired",
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter, or use the continue "
                "token in this response to retrieve the remainder of the results. Continuing with "
                "the provided token results in an inconsistent list - objects that were created, "
                "modified, or deleted between the time the first chunk was returned and now may "
                "show up in the list.",
                NULL, NULL);
            char *tok = continue_token(-1, start);
            cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(s, "metadata"), "continue",
                                    tok);
            free(tok);
            reply_set(r, 410, s);
            goto out;
        }
        list_rv = trv;
    }
    if (fakeapi_label_match(lsel, NULL) < 0) {
        reply_status(r, 400, "BadRequest", "unable to parse requirement: invalid label selector",
                     NULL, NULL);
        goto out;
    }

    size_t cap = opmap_count(&fa->store) + 1;
    items = calloc(cap, sizeof(*items));
    opmap_iter it;
    opmap_iter_init(&it, &fa->store);
    for (opmap_entry *e; (e = opmap_next(&it));) {
        obj *o = e->value;
        if (strcmp(o->prefix, rp->prefix) || strcmp(o->resource, rp->resource))
            continue;
        if (rp->ns[0] && strcmp(o->ns, rp->ns))
            continue;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o->json, "metadata");
        if (fakeapi_label_match(lsel, cJSON_GetObjectItemCaseSensitive(m, "labels")) != 1)
            continue;
        if (fakeapi_field_match(fsel, o->json) != 1)
            continue;
        items[n].o = o;
        list_sortkey(rp, o, items[n].sortkey, sizeof(items[n].sortkey));
        if (start[0] && strcmp(items[n].sortkey, start) <= 0)
            continue;
        n++;
    }
    qsort(items, n, sizeof(*items), cmp_listed);

    char kind[128], lkind[140], av[160];
    int typed;
    kind_for(fa, rp, kind, sizeof(kind), &typed);
    snprintf(lkind, sizeof(lkind), "%sList", kind);
    api_version_of(rp, av, sizeof(av));

    cJSON *list = cJSON_CreateObject();
    cJSON_AddStringToObject(list, "kind", lkind);
    cJSON_AddStringToObject(list, "apiVersion", av);
    cJSON *lm = cJSON_AddObjectToObject(list, "metadata");
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%" PRId64, list_rv);
    cJSON_AddStringToObject(lm, "resourceVersion", rvs);
    size_t take = (limit > 0 && (size_t)limit < n) ? (size_t)limit : n;
    if (take < n) {
        char *tok = continue_token(list_rv, items[take - 1].sortkey);
        cJSON_AddStringToObject(lm, "continue", tok);
        free(tok);
        if (!lsel || !*lsel)
            cJSON_AddNumberToObject(lm, "remainingItemCount", (double)(n - take));
    }
    cJSON *arr = cJSON_AddArrayToObject(list, "items");
    for (size_t i = 0; i < take; i++)
        cJSON_AddItemToArray(arr, list_item(fa, items[i].o, typed));
    reply_set(r, 200, list);
out:
    free(items);
    free(limit_s);
    free(cont);
    free(lsel);
    free(fsel);
}

/* ---- watch --------------------------------------------------------------------------- */

static void watch_unlink(watch *w)
{
    fakeapi *fa = w->fa;
    for (watch **pp = &fa->watches; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    free(w->label_sel);
    free(w->field_sel);
    free(w);
}

static void watch_end(watch *w)
{
    ophttpd_req *req = w->req;
    watch_unlink(w);
    ophttpd_stream_end(req);
}

static void watch_drop(watch *w)
{
    ophttpd_req *req = w->req;
    watch_unlink(w);
    ophttpd_fault_abort(req);
}

static void watch_write_line(watch *w, const char *type, const cJSON *json)
{
    char *o = print(json);
    opbuf b;
    opbuf_init(&b, OPBUF_DEFAULT_MAX);
    opbuf_printf(&b, "{\"type\":\"%s\",\"object\":", type);
    opbuf_puts(&b, o);
    opbuf_puts(&b, "}\n");
    free(o);
    ophttpd_stream_write(w->req, b.data, b.len);
    opbuf_release(&b);
}

static cJSON *bookmark_object(const watch *w, uint64_t rv)
{
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%" PRIu64, rv);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", w->kind);
    cJSON_AddStringToObject(o, "apiVersion", w->api_version);
    cJSON *m = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(m, "resourceVersion", rvs);
    if (strcmp(w->kind, "Deployment") == 0 && strcmp(w->api_version, "apps/v1") == 0) {
        /* a typed object's zero value, as the v1.24 server encodes it */
        cJSON_AddNullToObject(m, "creationTimestamp");
        cJSON *zero = cJSON_Parse("{\"replicas\":0,\"selector\":null,\"template\":{\"metadata\":"
                                  "{\"creationTimestamp\":null},\"spec\":{\"containers\":null}},"
                                  "\"strategy\":{}}");
        cJSON_AddItemToObject(o, "spec", zero);
        cJSON_AddObjectToObject(o, "status");
    } else if (strcmp(w->api_version, "v1") == 0 || strchr(w->api_version, '.') == NULL ||
               strstr(w->api_version, "k8s.io")) {
        cJSON_AddNullToObject(m, "creationTimestamp");
    }
    return o;
}

static void watch_bookmark(watch *w)
{
    cJSON *b = bookmark_object(w, w->fa->rv);
    watch_write_line(w, "BOOKMARK", b);
    cJSON_Delete(b);
}

static cJSON *expired_status(uint64_t asked, uint64_t oldest)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "too old resource version: %" PRIu64 " (%" PRIu64 ")", asked,
             oldest);
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "kind", "Status");
    cJSON_AddStringToObject(s, "apiVersion", "v1");
    cJSON_AddObjectToObject(s, "metadata");
    cJSON_AddStringToObject(s, "status", "Failure");
    cJSON_AddStringToObject(s, "message", msg);
    cJSON_AddStringToObject(s, "reason", "Expired");
    cJSON_AddNumberToObject(s, "code", 410);
    return s;
}

/* Send one event, applying this watch's injected fault when its turn comes.
 * Returns -EPIPE when the watch was dropped (w is freed). */
static int watch_send_event(watch *w, const char *type, const cJSON *json)
{
    if (w->fault.kind && !w->fault_done && w->sent >= w->fault.after_events) {
        w->fault_done = 1;
        if (w->fault.kind == FAKEAPI_FAULT_DROP) {
            /* announce the whole event as one chunk, deliver half of it, hang up */
            char *o = print(json);
            opbuf b;
            opbuf_init(&b, OPBUF_DEFAULT_MAX);
            opbuf_printf(&b, "{\"type\":\"%s\",\"object\":%s}\n", type, o);
            free(o);
            char hdr[32];
            int hn = snprintf(hdr, sizeof(hdr), "%zx\r\n", b.len);
            ophttpd_fault_write_raw(w->req, hdr, (size_t)hn);
            ophttpd_fault_write_raw(w->req, b.data, b.len / 2);
            opbuf_release(&b);
            watch_drop(w);
            return -EPIPE;
        }
        if (w->fault.kind == FAKEAPI_FAULT_MALFORMED) {
            ophttpd_stream_write(w->req, "{not json\n", 10);
        } else if (w->fault.kind == FAKEAPI_FAULT_OVERSIZED) {
            cJSON *big = cJSON_Duplicate(json, 1);
            cJSON *m = meta_of(big);
            cJSON *ann = cJSON_GetObjectItemCaseSensitive(m, "annotations");
            if (!cJSON_IsObject(ann))
                ann = cJSON_AddObjectToObject(m, "annotations");
            size_t sz = w->fault.size ? w->fault.size : (1u << 20);
            char *pad = malloc(sz + 1);
            memset(pad, 'x', sz);
            pad[sz] = '\0';
            cJSON_AddStringToObject(ann, "fake.optipod.io/pad", pad);
            free(pad);
            watch_write_line(w, "MODIFIED", big);
            cJSON_Delete(big);
        }
    }
    watch_write_line(w, type, json);
    w->sent++;
    return 0;
}

static void watch_on_gone(ophttpd_req *req, void *ud)
{
    watch *w = ud;
    (void)req;
    watch_drop(w);
}

static void reschedule(fakeapi *fa);

static int serve_watch(fakeapi *fa, ophttpd_req *req, const rpath *rp, const fault_slot *fs)
{
    char *rv_s = ophttpd_query_param(req, "resourceVersion");
    char *bm = ophttpd_query_param(req, "allowWatchBookmarks");
    char *to = ophttpd_query_param(req, "timeoutSeconds");
    watch *w = calloc(1, sizeof(*w));
    if (!w) {
        free(rv_s);
        free(bm);
        free(to);
        return -ENOMEM;
    }
    w->fa = fa;
    w->req = req;
    copy_str(w->prefix, sizeof(w->prefix), rp->prefix);
    copy_str(w->resource, sizeof(w->resource), rp->resource);
    copy_str(w->ns, sizeof(w->ns), rp->ns);
    w->label_sel = ophttpd_query_param(req, "labelSelector");
    w->field_sel = ophttpd_query_param(req, "fieldSelector");
    int typed;
    kind_for(fa, rp, w->kind, sizeof(w->kind), &typed);
    api_version_of(rp, w->api_version, sizeof(w->api_version));
    w->bookmarks = bm && strcmp(bm, "true") == 0;
    long secs = to ? strtol(to, NULL, 10) : 0;
    if (secs > 0)
        w->deadline_ms = now_ms(fa) + (uint64_t)secs * 1000;
    if (fs)
        w->fault = fs->f;
    w->next = fa->watches;
    fa->watches = w;
    ophttpd_req_set_ud(req, w);
    ophttpd_req_on_gone(req, watch_on_gone);
    ophttpd_stream_begin(req, 200, "application/json", NULL);

    uint64_t from = rv_s && *rv_s ? strtoull(rv_s, NULL, 10) : 0;
    free(rv_s);
    free(bm);
    free(to);
    if (!from) {
        /* no RV: the current state as ADDED events first */
        size_t cap = opmap_count(&fa->store) + 1, n = 0;
        listed *items = calloc(cap, sizeof(*items));
        opmap_iter it;
        opmap_iter_init(&it, &fa->store);
        for (opmap_entry *e; items && (e = opmap_next(&it));) {
            obj *o = e->value;
            if (!watch_selects(w, o->prefix, o->resource, o->ns, o->json))
                continue;
            items[n].o = o;
            list_sortkey(rp, o, items[n].sortkey, sizeof(items[n].sortkey));
            n++;
        }
        qsort(items, n, sizeof(*items), cmp_listed);
        /* the watch may be dropped by a fault while replaying: stop on that */
        for (size_t i = 0; i < n; i++)
            if (watch_send_event(w, "ADDED", items[i].o->json) < 0)
                break;
        free(items);
    } else if (from < fa->compacted_rv) {
        cJSON *s = expired_status(from, fa->compacted_rv + 1);
        watch_write_line(w, "ERROR", s);
        cJSON_Delete(s);
        watch_end(w);
        return 0;
    } else {
        for (size_t i = 0; i < fa->hist_len; i++) {
            hist *h = &fa->hist[(fa->hist_start + i) % fa->history_max];
            const char *t = h->rv <= from ? NULL
                                          : event_for(w, h->type, h->prefix, h->resource, h->ns,
                                                      h->json, h->prev);
            if (!t)
                continue;
            if (watch_send_event(w, t, h->json) < 0)
                return 0;
        }
    }
    reschedule(fa);
    return 0;
}

void fakeapi_bookmark(fakeapi *fa)
{
    for (watch *w = fa->watches; w; w = w->next)
        if (w->bookmarks)
            watch_bookmark(w);
}

void fakeapi_end_watches(fakeapi *fa)
{
    while (fa->watches)
        watch_end(fa->watches);
}

size_t fakeapi_watch_count(const fakeapi *fa)
{
    size_t n = 0;
    for (const watch *w = fa->watches; w; w = w->next)
        n++;
    return n;
}

void fakeapi_drop_connections(fakeapi *fa)
{
    ophttpd_close_connections(fa->srv);
}

/* ---- writes -------------------------------------------------------------------------- */

static const char *manager_of(ophttpd_req *req, char *buf, size_t cap)
{
    char *fm = ophttpd_query_param(req, "fieldManager");
    if (fm) {
        copy_str(buf, cap, fm);
        free(fm);
        return buf;
    }
    /* the real server derives it from the user agent's first word */
    const char *ua = ophttpd_header(req, "User-Agent");
    if (ua && *ua) {
        size_t n = strcspn(ua, "/ ");
        snprintf(buf, cap, "%.*s", (int)n, ua);
        return buf;
    }
    return "unknown";
}

static int dry_run(ophttpd_req *req)
{
    char *d = ophttpd_query_param(req, "dryRun");
    int yes = d && strcmp(d, "All") == 0;
    free(d);
    return yes;
}

static int content_type_is(ophttpd_req *req, const char *ct)
{
    const char *h = ophttpd_header(req, "Content-Type");
    return h && strncasecmp(h, ct, strlen(ct)) == 0;
}

/* Is status a subresource of rp's kind (the default; not for a CRD declaring none)? */
static int status_is_sub(const fakeapi *fa, const rpath *rp)
{
    for (size_t i = 0; i < fa->nkinds; i++)
        if (!strcmp(fa->kinds[i].plural, rp->resource))
            return !fa->kinds[i].no_status_sub;
    return 1;
}

/* Main-resource writes keep the live status; .../status writes change only status. */
static void restrict_to_subresource(const fakeapi *fa, const rpath *rp, const cJSON *live,
                                    cJSON *next)
{
    if (!live || (!rp->sub[0] && !status_is_sub(fa, rp)))
        return;
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(live, "status");
    if (strcmp(rp->sub, "status") == 0) {
        cJSON *st = cJSON_DetachItemFromObjectCaseSensitive(next, "status");
        /* everything else comes from live */
        cJSON *copy = cJSON_Duplicate(live, 1);
        while (next->child) {
            cJSON *it = cJSON_DetachItemViaPointer(next, next->child);
            cJSON_Delete(it);
        }
        while (copy->child) {
            cJSON *it = cJSON_DetachItemViaPointer(copy, copy->child);
            cJSON_AddItemToObject(next, it->string, it);
        }
        cJSON_Delete(copy);
        if (st)
            set_item(next, "status", st);
        else
            cJSON_DeleteItemFromObjectCaseSensitive(next, "status");
        return;
    }
    if (strcmp(rp->sub, "resize") == 0) {
        /* pods/resize: only spec.containers[*].resources, by container name */
        cJSON *copy = cJSON_Duplicate(live, 1);
        cJSON *nc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(next, "spec"),
                                                     "containers");
        cJSON *lc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(copy, "spec"),
                                                     "containers");
        cJSON *c;
        cJSON_ArrayForEach(c, lc)
        {
            const cJSON *x;
            cJSON_ArrayForEach(x, nc)
            {
                if (jstr(c, "name") && jstr(x, "name") &&
                    strcmp(jstr(c, "name"), jstr(x, "name")) == 0) {
                    const cJSON *res = cJSON_GetObjectItemCaseSensitive(x, "resources");
                    if (res)
                        set_item(c, "resources", cJSON_Duplicate(res, 1));
                }
            }
        }
        while (next->child)
            cJSON_Delete(cJSON_DetachItemViaPointer(next, next->child));
        while (copy->child) {
            cJSON *it = cJSON_DetachItemViaPointer(copy, copy->child);
            cJSON_AddItemToObject(next, it->string, it);
        }
        cJSON_Delete(copy);
        return;
    }
    if (ls)
        set_item(next, "status", cJSON_Duplicate(ls, 1));
    else
        cJSON_DeleteItemFromObjectCaseSensitive(next, "status");
}

/* A pod's container resources may change only through pods/resize (1.33
 * semantics), or through the pod itself on a 1.27-1.31 server with the
 * InPlacePodVerticalScaling gate (fakeapi_set_pod_patch_resize). */
static int pod_resources_changed(const fakeapi *fa, const rpath *rp, const cJSON *live,
                                 const cJSON *next)
{
    if (fa->pod_patch_resize || rp->group[0] || strcmp(rp->resource, "pods") || rp->sub[0] || !live)
        return 0;
    const cJSON *lc = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(live, "spec"), "containers");
    const cJSON *nc = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(next, "spec"), "containers");
    const cJSON *a, *b;
    cJSON_ArrayForEach(a, lc)
    {
        cJSON_ArrayForEach(b, nc)
        {
            if (jstr(a, "name") && jstr(b, "name") && !strcmp(jstr(a, "name"), jstr(b, "name")) &&
                !cJSON_Compare(cJSON_GetObjectItemCaseSensitive(a, "resources"),
                               cJSON_GetObjectItemCaseSensitive(b, "resources"), 1))
                return 1;
        }
    }
    return 0;
}

/*
 * Commit `next` (owned) as the new state of rp (live may be NULL), recording
 * managedFields through fakessa_update, unless dry-run. Fills the reply.
 */
static void commit_update(fakeapi *fa, ophttpd_req *req, const rpath *rp, obj *live, cJSON *next,
                          int created_status, reply *r)
{
    char mgr[160], ts[32];
    const char *manager = manager_of(req, mgr, sizeof(mgr));
    timestamp(fa, ts);
    if (live)
        restrict_to_subresource(fa, rp, live->json, next);
    if (pod_resources_changed(fa, rp, live ? live->json : NULL, next)) {
        char msg[512];
        snprintf(msg, sizeof(msg),
                 "Pod \"%s\" is invalid: spec: Forbidden: pod updates may not change fields other "
                 "than `spec.containers[*].image`, `spec.initContainers[*].image`, "
                 "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing "
                 "tolerations) or `spec.terminationGracePeriodSeconds` (allow it to be set to 1 "
                 "if it was previously negative)",
                 rp->name);
        reply_status(r, 422, "Invalid", msg, rp, rp->name);
        cJSON_Delete(next);
        return;
    }
    fakessa_result res = {0};
    int rc = fakessa_update(live ? live->json : NULL, next, manager, rp->sub[0] ? rp->sub : NULL,
                            ts, &res);
    cJSON_Delete(next);
    if (rc < 0) {
        reply_status(r, 500, "InternalError", "fakessa_update failed", rp, rp->name);
        return;
    }
    if (res.http_status >= 300) {
        reply_set(r, res.http_status, res.status);
        res.status = NULL;
        fakessa_result_release(&res);
        return;
    }
    cJSON *obj_json = res.object;
    res.object = NULL;
    fakessa_result_release(&res);
    if (dry_run(req)) {
        fakessa_order_keys(obj_json);
        reply_set(r, live ? 200 : created_status, obj_json);
        return;
    }
    obj *o = store_put(fa, rp, obj_json, 0);
    if (!o) {
        reply_status(r, 500, "InternalError", "out of memory", rp, rp->name);
        return;
    }
    reply_set(r, live ? 200 : created_status, cJSON_Duplicate(o->json, 1));
}

static const char gen_alphabet[] = "bcdfghjklmnpqrstvwxz2456789";

static void serve_create(fakeapi *fa, ophttpd_req *req, rpath *rp, cJSON *body, reply *r)
{
    cJSON *m = meta_of(body);
    const char *name = jstr(m, "name");
    const char *gen = jstr(m, "generateName");
    const char *ns = jstr(m, "namespace");
    if (ns && *ns && rp->ns[0] && strcmp(ns, rp->ns) != 0) {
        reply_status(r, 400, "BadRequest",
                     "the namespace of the provided object does not match the namespace sent on "
                     "the request",
                     NULL, NULL);
        return;
    }
    if ((!name || !*name) && gen && *gen) {
        char nm[256];
        size_t gl = strlen(gen);
        if (gl > 200)
            gl = 200;
        memcpy(nm, gen, gl);
        for (int i = 0; i < 5; i++)
            nm[gl + (size_t)i] = gen_alphabet[(size_t)rand() % (sizeof(gen_alphabet) - 1)];
        nm[gl + 5] = '\0';
        set_str(m, "name", nm);
        name = jstr(m, "name");
    }
    if (!name || !*name) {
        reply_status(r, 422, "Invalid",
                     "metadata.name: Required value: name or generateName is required", NULL, NULL);
        return;
    }
    copy_str(rp->name, sizeof(rp->name), name);
    char key[1024];
    obj_key(rp, key, sizeof(key));
    if (opmap_get(&fa->store, key)) {
        char q[300], msg[700];
        qualified(rp, q, sizeof(q));
        snprintf(msg, sizeof(msg), "%s \"%s\" already exists", q, name);
        reply_status(r, 409, "AlreadyExists", msg, rp, name);
        return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(m, "resourceVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "uid");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "creationTimestamp");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "generation");
    commit_update(fa, req, rp, NULL, cJSON_Duplicate(body, 1), 201, r);
}

static void conflict_modified(reply *r, const rpath *rp)
{
    char q[300], msg[900];
    qualified(rp, q, sizeof(q));
    snprintf(msg, sizeof(msg),
             "Operation cannot be fulfilled on %s \"%s\": the object has been modified; please "
             "apply your changes to the latest version and try again",
             q, rp->name);
    reply_status(r, 409, "Conflict", msg, rp, rp->name);
}

static void serve_update(fakeapi *fa, ophttpd_req *req, const rpath *rp, obj *live, cJSON *body,
                         reply *r)
{
    cJSON *m = meta_of(body);
    const char *name = jstr(m, "name");
    if (name && strcmp(name, rp->name) != 0) {
        char msg[700];
        snprintf(msg, sizeof(msg),
                 "the name of the object (%s) does not match the name on the URL (%s)", name,
                 rp->name);
        reply_status(r, 400, "BadRequest", msg, NULL, NULL);
        return;
    }
    const char *rv = jstr(m, "resourceVersion");
    if (rv && *rv && strtoull(rv, NULL, 10) != meta_rv(live->json)) {
        conflict_modified(r, rp);
        return;
    }
    cJSON *next = cJSON_Duplicate(body, 1);
    commit_update(fa, req, rp, live, next, 200, r);
}

static void serve_patch(fakeapi *fa, ophttpd_req *req, const rpath *rp, obj *live, cJSON *body,
                        reply *r)
{
    cJSON *next;
    int jerr = 0;
    if (content_type_is(req, "application/json-patch+json")) {
        next = fakeapi_json_patch(live->json, body, &jerr);
        if (!next && jerr == -EINVAL) {
            reply_status(r, 422, "Invalid",
                         "the server rejected our request due to an error in our request", rp,
                         rp->name);
            return;
        }
    } else if (content_type_is(req, "application/merge-patch+json"))
        next = fakeapi_merge_patch(live->json, body);
    else if (content_type_is(req, "application/strategic-merge-patch+json"))
        next = fakeapi_strategic_patch(live->json, body);
    else {
        reply_status(r, 415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json-patch+json, application/merge-patch+json, "
                     "application/apply-patch+yaml, application/strategic-merge-patch+json",
                     NULL, NULL);
        return;
    }
    if (!next) {
        reply_status(r, 500, "InternalError", "out of memory", NULL, NULL);
        return;
    }
    /* a resourceVersion in the patch is a precondition */
    const char *prv =
        cJSON_IsObject(body)
            ? jstr(cJSON_GetObjectItemCaseSensitive(body, "metadata"), "resourceVersion")
            : NULL;
    if (prv && *prv && strtoull(prv, NULL, 10) != meta_rv(live->json)) {
        cJSON_Delete(next);
        conflict_modified(r, rp);
        return;
    }
    /* so is a uid: the patch must not land on an object re-created under the name */
    const char *puid = cJSON_IsObject(body)
                           ? jstr(cJSON_GetObjectItemCaseSensitive(body, "metadata"), "uid")
                           : NULL;
    const char *luid = jstr(cJSON_GetObjectItemCaseSensitive(live->json, "metadata"), "uid");
    if (puid && *puid && luid && strcmp(puid, luid) != 0) {
        char q[300], msg[900];
        cJSON_Delete(next);
        qualified(rp, q, sizeof(q));
        snprintf(msg, sizeof(msg),
                 "Operation cannot be fulfilled on %s \"%s\": Precondition failed: UID in "
                 "precondition: %s, UID in object meta: %s",
                 q, rp->name, puid, luid);
        reply_status(r, 409, "Conflict", msg, rp, rp->name);
        return;
    }
    /* managedFields as patched (the live ones unless the patch set them): fakessa_update */
    commit_update(fa, req, rp, live, next, 200, r);
}

static void serve_apply(fakeapi *fa, ophttpd_req *req, rpath *rp, obj *live, cJSON *body, reply *r)
{
    char *fm = ophttpd_query_param(req, "fieldManager");
    char *force_s = ophttpd_query_param(req, "force");
    int force = force_s && strcmp(force_s, "true") == 0;
    char ts[32];
    fakessa_result res = {0};
    timestamp(fa, ts);
    if (!fm || !*fm) {
        cJSON *s = status_new(422, "Invalid",
                              "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                              "value: is required for apply patch",
                              NULL, NULL);
        cJSON *code = cJSON_DetachItemFromObjectCaseSensitive(s, "code");
        cJSON *d = cJSON_AddObjectToObject(s, "details");
        cJSON_AddStringToObject(d, "group", "meta.k8s.io");
        cJSON_AddStringToObject(d, "kind", "PatchOptions");
        cJSON *causes = cJSON_AddArrayToObject(d, "causes");
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "reason", "FieldValueRequired");
        cJSON_AddStringToObject(c, "message", "Required value: is required for apply patch");
        cJSON_AddStringToObject(c, "field", "fieldManager");
        cJSON_AddItemToArray(causes, c);
        cJSON_AddItemToObject(s, "code", code); /* last, as the server orders it */
        reply_set(r, 422, s);
        goto out;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "metadata");
    if (cJSON_GetObjectItemCaseSensitive(m, "managedFields")) {
        reply_status(r, 400, "BadRequest", "metadata.managedFields must be nil", NULL, NULL);
        goto out;
    }
    char av[160];
    api_version_of(rp, av, sizeof(av));
    const char *bav = jstr(body, "apiVersion");
    if (!bav || strcmp(bav, av) != 0 || !jstr(body, "kind")) {
        reply_status(r, 400, "BadRequest", "apiVersion and kind must match the request path", NULL,
                     NULL);
        goto out;
    }
    const char *uid = jstr(m, "uid");
    const char *luid =
        live ? jstr(cJSON_GetObjectItemCaseSensitive(live->json, "metadata"), "uid") : NULL;
    if (uid && *uid && (!live || !luid || strcmp(uid, luid) != 0)) {
        char q[300], msg[900];
        qualified(rp, q, sizeof(q));
        if (live)
            snprintf(msg, sizeof(msg),
                     "Operation cannot be fulfilled on %s \"%s\": Precondition failed: UID in "
                     "precondition: %s, UID in object meta: %s",
                     q, rp->name, uid, luid ? luid : "");
        else
            snprintf(msg, sizeof(msg),
                     "Operation cannot be fulfilled on %s \"%s\": uid mismatch: the provided "
                     "object specified uid %s, and no existing object was found",
                     q, rp->name, uid);
        reply_status(r, 409, "Conflict", msg, rp, rp->name);
        goto out;
    }
    const kindinfo *ki = kind_by_resource(fa, av, rp->resource);
    if (ki && ki->schema) {
        char what[700];
        cJSON *bad = NULL;
        snprintf(what, sizeof what, "%s%s%s; %s, Kind=%s", rp->ns, rp->ns[0] ? "/" : "", rp->name,
                 av, ki->kind);
        if (fakessa_typecheck(ki->schema, body, what, &bad) < 0) {
            reply_status(r, 500, "InternalError", "out of memory", rp, rp->name);
            goto out;
        }
        if (bad) {
            reply_set(r, 500, bad);
            goto out;
        }
    }
    int rc = fakessa_apply_ex(live ? live->json : NULL, body, fm, force,
                              !rp->sub[0] && !status_is_sub(fa, rp), ts, &res);
    if (rc < 0) {
        reply_status(r, 500, "InternalError", "fakessa_apply failed", rp, rp->name);
        goto out;
    }
    if (res.http_status >= 300) {
        reply_set(r, res.http_status, res.status);
        res.status = NULL;
        goto out;
    }
    cJSON *next = res.object;
    res.object = NULL;
    if (live)
        restrict_to_subresource(fa, rp, live->json, next);
    if (pod_resources_changed(fa, rp, live ? live->json : NULL, next)) {
        cJSON_Delete(next);
        reply_status(r, 422, "Invalid", "pod updates may not change container resources", rp,
                     rp->name);
        goto out;
    }
    if (dry_run(req)) {
        fakessa_order_keys(next);
        reply_set(r, live ? 200 : 201, next);
        goto out;
    }
    obj *o = store_put(fa, rp, next, 0);
    if (!o)
        reply_status(r, 500, "InternalError", "out of memory", rp, rp->name);
    else
        reply_set(r, live ? 200 : 201, cJSON_Duplicate(o->json, 1));
out:
    fakessa_result_release(&res);
    free(fm);
    free(force_s);
}

static void serve_delete(fakeapi *fa, ophttpd_req *req, const rpath *rp, obj *live, reply *r)
{
    size_t bl;
    const char *b = ophttpd_body(req, &bl);
    if (bl) {
        cJSON *opts = cJSON_ParseWithLength(b, bl);
        const cJSON *pre = cJSON_GetObjectItemCaseSensitive(opts, "preconditions");
        const char *uid = jstr(pre, "uid"), *rv = jstr(pre, "resourceVersion");
        const cJSON *lm = cJSON_GetObjectItemCaseSensitive(live->json, "metadata");
        int bad = (uid && jstr(lm, "uid") && strcmp(uid, jstr(lm, "uid")) != 0) ||
                  (rv && strtoull(rv, NULL, 10) != meta_rv(live->json));
        cJSON_Delete(opts);
        if (bad) {
            char q[300], msg[900];
            qualified(rp, q, sizeof(q));
            snprintf(msg, sizeof(msg),
                     "Operation cannot be fulfilled on %s \"%s\": Precondition failed", q,
                     rp->name);
            reply_status(r, 409, "Conflict", msg, rp, rp->name);
            return;
        }
    }
    const char *uid = jstr(cJSON_GetObjectItemCaseSensitive(live->json, "metadata"), "uid");
    cJSON *s = status_new(200, "", NULL, rp, rp->name);
    cJSON_DeleteItemFromObjectCaseSensitive(s, "reason");
    cJSON *d = cJSON_GetObjectItemCaseSensitive(s, "details");
    if (uid)
        cJSON_AddStringToObject(d, "uid", uid);
    cJSON_DeleteItemFromObjectCaseSensitive(s, "code");
    if (!dry_run(req))
        store_delete(fa, live);
    reply_set(r, 200, s);
}

/* Serve a non-watch request into r. */
static void serve(fakeapi *fa, ophttpd_req *req, reply *r)
{
    const char *method = ophttpd_method(req);
    const char *path = ophttpd_path(req);
    rpath rp;
    if (strcmp(path, "/version") == 0) {
        reply_set(r, 200,
                  cJSON_Parse("{\"major\":\"1\",\"minor\":\"24\",\"gitVersion\":\"v1.24.0\","
                              "\"platform\":\"linux/amd64\"}"));
        return;
    }
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
        strcmp(path, "/livez") == 0) {
        reply_set(r, 200, cJSON_CreateString("ok"));
        return;
    }
    if (parse_rpath(path, &rp) < 0) {
        char msg[1200];
        snprintf(msg, sizeof(msg), "the server could not find the requested resource");
        reply_status(r, 404, "NotFound", msg, NULL, NULL);
        return;
    }
    size_t bl;
    const char *braw = ophttpd_body(req, &bl);
    cJSON *body = NULL;
    int needs_body = !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
    if (needs_body) {
        body = cJSON_ParseWithLength(braw, bl);
        /* a JSON patch is an array of operations; everything else is an object */
        int json_patch =
            !strcmp(method, "PATCH") && content_type_is(req, "application/json-patch+json");
        if (json_patch ? !cJSON_IsArray(body) : !cJSON_IsObject(body)) {
            reply_status(r, 400, "BadRequest",
                         "the object provided is unrecognized (must be of type map): invalid JSON",
                         NULL, NULL);
            goto out;
        }
    }
    obj *live = NULL;
    if (rp.name[0]) {
        char key[1024];
        obj_key(&rp, key, sizeof(key));
        live = opmap_get(&fa->store, key);
    }
    if (!strcmp(method, "GET")) {
        if (!rp.name[0])
            serve_list(fa, req, &rp, r);
        else if (!live)
            not_found(r, &rp);
        else
            reply_set(r, 200, cJSON_Duplicate(live->json, 1));
    } else if (!strcmp(method, "POST") && !rp.name[0]) {
        serve_create(fa, req, &rp, body, r);
    } else if (!strcmp(method, "PUT") && rp.name[0]) {
        if (!live)
            not_found(r, &rp);
        else
            serve_update(fa, req, &rp, live, body, r);
    } else if (!strcmp(method, "PATCH") && rp.name[0]) {
        if (content_type_is(req, "application/apply-patch+yaml")) {
            if (rp.sub[0] && !live)
                not_found(r, &rp);
            else
                serve_apply(fa, req, &rp, live, body, r);
        } else if (!live) {
            not_found(r, &rp);
        } else {
            serve_patch(fa, req, &rp, live, body, r);
        }
    } else if (!strcmp(method, "DELETE") && rp.name[0]) {
        if (!live)
            not_found(r, &rp);
        else
            serve_delete(fa, req, &rp, live, r);
    } else {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "the server does not allow this method on the requested resource");
        reply_status(r, 405, "MethodNotAllowed", msg, NULL, NULL);
    }
out:
    cJSON_Delete(body);
}

/* ---- request handling ---------------------------------------------------------------- */

static int is_watch(ophttpd_req *req)
{
    char *w = ophttpd_query_param(req, "watch");
    int yes = w && (strcmp(w, "1") == 0 || strcmp(w, "true") == 0);
    free(w);
    if (!yes) {
        /* the legacy /api/v1/watch/... form */
        const char *p = ophttpd_path(req);
        yes = strstr(p, "/watch/") != NULL;
    }
    return yes;
}

static fakeapi_logged *log_add(fakeapi *fa, ophttpd_req *req, int watch_req, size_t *idx)
{
    if (fa->nlog == fa->caplog) {
        size_t nc = fa->caplog ? fa->caplog * 2 : 64;
        fakeapi_logged *n = realloc(fa->log, nc * sizeof(*n));
        if (!n)
            return NULL;
        fa->log = n;
        fa->caplog = nc;
    }
    fakeapi_logged *l = &fa->log[fa->nlog];
    size_t bl;
    const char *b = ophttpd_body(req, &bl);
    const char *ct = ophttpd_header(req, "Content-Type");
    l->method = strdup(ophttpd_method(req));
    l->path = strdup(ophttpd_target(req));
    l->content_type = strdup(ct ? ct : "");
    l->body = malloc(bl + 1);
    if (l->body) {
        memcpy(l->body, b, bl);
        l->body[bl] = '\0';
    }
    l->body_len = bl;
    l->status = 0;
    l->watch = watch_req;
    *idx = fa->nlog++;
    return l;
}

static void log_release(fakeapi_logged *l)
{
    free(l->method);
    free(l->path);
    free(l->content_type);
    free(l->body);
}

static void set_log_status(fakeapi *fa, size_t idx, int status)
{
    if (idx < fa->nlog)
        fa->log[idx].status = status;
}

static void respond_json(fakeapi *fa, ophttpd_req *req, size_t idx, int status, const cJSON *body,
                         const char *extra)
{
    char *s = body ? print(body) : strdup("{}");
    set_log_status(fa, idx, status);
    ophttpd_respond(req, status, "application/json", s, s ? strlen(s) : 0, extra);
    free(s);
}

static int fault_matches(const fault_slot *fs, ophttpd_req *req, int watch_req)
{
    if (fs->left == 0)
        return 0;
    if (fs->method && strcmp(fs->method, ophttpd_method(req)) != 0)
        return 0;
    if (fs->path && !strstr(ophttpd_target(req), fs->path))
        return 0;
    if (fs->f.watch == 1 && !watch_req)
        return 0;
    if (fs->f.watch == 0 && watch_req)
        return 0;
    return 1;
}

static void handle_after_faults(fakeapi *fa, ophttpd_req *req, size_t idx, const fault_slot *fs);

static void fault_respond_status(fakeapi *fa, ophttpd_req *req, size_t idx, const fakeapi_fault *f)
{
    int code = f->status ? f->status : 500;
    cJSON *s = status_new(code, reason_for(code), f->message ? f->message : default_message(code),
                          NULL, NULL);
    char extra[64] = "";
    if (f->retry_after_s > 0)
        snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", f->retry_after_s);
    if (code == 429 && !f->retry_after_s)
        snprintf(extra, sizeof(extra), "Retry-After: 1\r\n");
    respond_json(fa, req, idx, code, s, extra[0] ? extra : NULL);
    cJSON_Delete(s);
}

static void delayed_on_gone(ophttpd_req *req, void *ud)
{
    delayed *d = ud;
    fakeapi *fa = d->fa;
    for (delayed **pp = &fa->delayed; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    free(d);
    ophttpd_fault_abort(req);
}

static void handle(ophttpd_req *req, void *ud)
{
    fakeapi *fa = ud;
    int watch_req = is_watch(req);
    size_t idx = (size_t)-1;
    log_add(fa, req, watch_req, &idx);

    if (fa->token) {
        const char *auth = ophttpd_header(req, "Authorization");
        char want[1024];
        snprintf(want, sizeof(want), "Bearer %s", fa->token);
        if (!auth || strcmp(auth, want) != 0) {
            cJSON *s = status_new(401, "Unauthorized", "Unauthorized", NULL, NULL);
            respond_json(fa, req, idx, 401, s, NULL);
            cJSON_Delete(s);
            return;
        }
    }
    for (size_t i = 0; i < fa->nfaults; i++) {
        fault_slot *fs = &fa->faults[i];
        if (!fault_matches(fs, req, watch_req))
            continue;
        if (fs->left > 0)
            fs->left--;
        switch (fs->f.kind) {
        case FAKEAPI_FAULT_STATUS:
            fault_respond_status(fa, req, idx, &fs->f);
            return;
        case FAKEAPI_FAULT_HANGUP:
            set_log_status(fa, idx, 0);
            ophttpd_fault_abort(req);
            return;
        case FAKEAPI_FAULT_DELAY: {
            delayed *d = calloc(1, sizeof(*d));
            if (!d)
                break;
            d->fa = fa;
            d->req = req;
            d->log_idx = idx;
            d->due_ms = now_ms(fa) + fs->f.delay_ms;
            d->next = fa->delayed;
            fa->delayed = d;
            ophttpd_req_set_ud(req, d);
            ophttpd_req_on_gone(req, delayed_on_gone);
            reschedule(fa);
            return;
        }
        default:
            handle_after_faults(fa, req, idx, fs);
            return;
        }
    }
    handle_after_faults(fa, req, idx, NULL);
}

static void handle_after_faults(fakeapi *fa, ophttpd_req *req, size_t idx, const fault_slot *fs)
{
    int watch_req = is_watch(req);
    if (fa->hook && fa->hook(fa, req, fa->hook_ud)) {
        set_log_status(fa, idx, 200);
        return;
    }
    if (watch_req) {
        rpath rp;
        char path[1024];
        /* /api/v1/watch/namespaces/x/pods → /api/v1/namespaces/x/pods */
        copy_str(path, sizeof(path), ophttpd_path(req));
        char *w = strstr(path, "/watch/");
        if (w)
            memmove(w, w + 6, strlen(w + 6) + 1);
        if (parse_rpath(path, &rp) < 0 || rp.name[0]) {
            cJSON *s = status_new(404, "NotFound",
                                  "the server could not find the requested resource", NULL, NULL);
            respond_json(fa, req, idx, 404, s, NULL);
            cJSON_Delete(s);
            return;
        }
        if (fs && fs->f.kind == FAKEAPI_FAULT_GONE) {
            set_log_status(fa, idx, 200);
            ophttpd_stream_begin(req, 200, "application/json", NULL);
            char *rv = ophttpd_query_param(req, "resourceVersion");
            cJSON *s = expired_status(rv ? strtoull(rv, NULL, 10) : 0, fa->rv);
            free(rv);
            char *o = print(s);
            opbuf b;
            opbuf_init(&b, 1 << 16);
            opbuf_printf(&b, "{\"type\":\"ERROR\",\"object\":%s}\n", o);
            ophttpd_stream_write(req, b.data, b.len);
            opbuf_release(&b);
            free(o);
            cJSON_Delete(s);
            ophttpd_stream_end(req);
            return;
        }
        set_log_status(fa, idx, 200);
        const fault_slot *wf =
            fs && (fs->f.kind == FAKEAPI_FAULT_DROP || fs->f.kind == FAKEAPI_FAULT_MALFORMED ||
                   fs->f.kind == FAKEAPI_FAULT_OVERSIZED)
                ? fs
                : NULL;
        if (serve_watch(fa, req, &rp, wf) < 0)
            ophttpd_fault_abort(req);
        return;
    }

    reply r = {0};
    if (fs && fs->f.kind == FAKEAPI_FAULT_GONE) {
        char *cont = ophttpd_query_param(req, "continue");
        if (cont) {
            /* the real continue-expired shape */
            uint64_t saved = fa->compacted_rv;
            fa->compacted_rv = UINT64_MAX / 2;
            rpath rp;
            if (parse_rpath(ophttpd_path(req), &rp) == 0)
                serve_list(fa, req, &rp, &r);
            fa->compacted_rv = saved;
        }
        free(cont);
        if (r.status != 410)
            reply_status(&r, 410, "Expired", "too old resource version", NULL, NULL);
    } else {
        serve(fa, req, &r);
    }
    if (!r.body)
        reply_status(&r, 500, "InternalError", "no response", NULL, NULL);

    if (fs && (fs->f.kind == FAKEAPI_FAULT_OVERSIZED)) {
        cJSON *m = meta_of(r.body);
        cJSON *ann = cJSON_GetObjectItemCaseSensitive(m, "annotations");
        if (!cJSON_IsObject(ann))
            ann = cJSON_AddObjectToObject(m, "annotations");
        size_t sz = fs->f.size ? fs->f.size : (1u << 20);
        char *pad = malloc(sz + 1);
        memset(pad, 'x', sz);
        pad[sz] = '\0';
        cJSON_AddStringToObject(ann, "fake.optipod.io/pad", pad);
        free(pad);
    }
    if (fs && (fs->f.kind == FAKEAPI_FAULT_TRUNCATE || fs->f.kind == FAKEAPI_FAULT_DROP)) {
        char *s = print(r.body);
        size_t n = strlen(s);
        set_log_status(fa, idx, r.status);
        if (fs->f.kind == FAKEAPI_FAULT_TRUNCATE) {
            ophttpd_respond(req, r.status, "application/json", s, n / 2, NULL);
        } else {
            char head[256];
            int hn = snprintf(head, sizeof(head),
                              "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\n\r\n",
                              r.status, ophttpd_status_text(r.status), n);
            ophttpd_fault_write_raw(req, head, (size_t)hn);
            ophttpd_fault_write_raw(req, s, n / 2);
            ophttpd_fault_abort(req);
        }
        free(s);
    } else {
        respond_json(fa, req, idx, r.status, r.body, r.extra);
    }
    cJSON_Delete(r.body);
    free(r.extra);
}

/* ---- the timer ----------------------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    fakeapi *fa = t->data;
    uint64_t now = now_ms(fa);
    /* delayed requests that are due */
    for (delayed **pp = &fa->delayed; *pp;) {
        delayed *d = *pp;
        if (d->due_ms > now) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        ophttpd_req *req = d->req;
        size_t idx = d->log_idx;
        free(d);
        ophttpd_req_on_gone(req, NULL);
        ophttpd_req_set_ud(req, NULL);
        handle_after_faults(fa, req, idx, NULL);
    }
    /* watches past timeoutSeconds end normally, with a last bookmark when allowed */
    for (watch *w = fa->watches, *nx; w; w = nx) {
        nx = w->next;
        if (w->deadline_ms && w->deadline_ms <= now) {
            if (w->bookmarks)
                watch_bookmark(w);
            watch_end(w);
        }
    }
    if (fa->bookmark_ms && fa->next_bookmark_ms <= now) {
        fakeapi_bookmark(fa);
        fa->next_bookmark_ms = now + fa->bookmark_ms;
    }
    reschedule(fa);
}

static void reschedule(fakeapi *fa)
{
    if (fa->stopping)
        return;
    uint64_t now = now_ms(fa), next = UINT64_MAX;
    for (delayed *d = fa->delayed; d; d = d->next)
        if (d->due_ms < next)
            next = d->due_ms;
    for (watch *w = fa->watches; w; w = w->next)
        if (w->deadline_ms && w->deadline_ms < next)
            next = w->deadline_ms;
    if (fa->bookmark_ms && fa->watches && fa->next_bookmark_ms < next)
        next = fa->next_bookmark_ms;
    if (next == UINT64_MAX) {
        uv_timer_stop(&fa->tick);
        return;
    }
    uv_timer_start(&fa->tick, on_tick, next > now ? next - now : 0, 0);
}

/* ---- faults and log API -------------------------------------------------------------- */

int fakeapi_add_fault(fakeapi *fa, const fakeapi_fault *f)
{
    fault_slot *n = realloc(fa->faults, (fa->nfaults + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    fa->faults = n;
    fault_slot *s = &fa->faults[fa->nfaults];
    memset(s, 0, sizeof(*s));
    s->f = *f;
    s->method = f->method ? strdup(f->method) : NULL;
    s->path = f->path ? strdup(f->path) : NULL;
    s->message = f->message ? strdup(f->message) : NULL;
    s->f.method = s->method;
    s->f.path = s->path;
    s->f.message = s->message;
    s->left = f->count > 0 ? f->count : -1;
    fa->nfaults++;
    return 0;
}

void fakeapi_clear_faults(fakeapi *fa)
{
    for (size_t i = 0; i < fa->nfaults; i++) {
        free(fa->faults[i].method);
        free(fa->faults[i].path);
        free(fa->faults[i].message);
    }
    free(fa->faults);
    fa->faults = NULL;
    fa->nfaults = 0;
}

int fakeapi_set_tls_fault(fakeapi *fa, fakeapi_tls_fault mode)
{
    int rc = 0;
    if (mode == FAKEAPI_TLS_UNTRUSTED) {
        if (!fa->other.cert_pem) {
            const char *sans[] = {"127.0.0.1", "localhost", NULL};
            rc = ophttpd_cert_generate(&fa->other, "fakeapi-untrusted", sans, 1);
            if (rc < 0)
                return rc;
        }
        rc = ophttpd_set_tls(fa->srv, fa->other.cert_pem, fa->other.key_pem);
    } else {
        rc = ophttpd_set_tls(fa->srv, fa->cert.cert_pem, fa->cert.key_pem);
    }
    if (rc == 0)
        fa->tls_fault = mode;
    return rc;
}

size_t fakeapi_log_count(const fakeapi *fa)
{
    return fa->nlog;
}

const fakeapi_logged *fakeapi_log_at(const fakeapi *fa, size_t i)
{
    return i < fa->nlog ? &fa->log[i] : NULL;
}

static int log_matches(const fakeapi_logged *l, const char *method, const char *path)
{
    return (!method || strcmp(l->method, method) == 0) && (!path || strstr(l->path, path));
}

const fakeapi_logged *fakeapi_log_last(const fakeapi *fa, const char *method, const char *path)
{
    for (size_t i = fa->nlog; i-- > 0;)
        if (log_matches(&fa->log[i], method, path))
            return &fa->log[i];
    return NULL;
}

size_t fakeapi_count(const fakeapi *fa, const char *method, const char *path)
{
    size_t n = 0;
    for (size_t i = 0; i < fa->nlog; i++)
        n += log_matches(&fa->log[i], method, path);
    return n;
}

void fakeapi_log_clear(fakeapi *fa)
{
    for (size_t i = 0; i < fa->nlog; i++)
        log_release(&fa->log[i]);
    fa->nlog = 0;
}

size_t fakeapi_connections_accepted(const fakeapi *fa)
{
    return fa->accepted;
}

size_t fakeapi_handshakes(const fakeapi *fa)
{
    return fa->handshakes;
}

void fakeapi_set_pod_patch_resize(fakeapi *fa, int on)
{
    fa->pod_patch_resize = on != 0;
}

void fakeapi_set_hook(fakeapi *fa, fakeapi_hook hook, void *ud)
{
    fa->hook = hook;
    fa->hook_ud = ud;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static int on_accept(void *ud)
{
    fakeapi *fa = ud;
    fa->accepted++;
    return fa->tls_fault == FAKEAPI_TLS_HANGUP;
}

static void on_handshake(void *ud)
{
    fakeapi *fa = ud;
    fa->handshakes++;
}

const char *fakeapi_url(const fakeapi *fa)
{
    return fa->url;
}

int fakeapi_port(const fakeapi *fa)
{
    return ophttpd_port(fa->srv);
}

const char *fakeapi_ca_pem(const fakeapi *fa)
{
    return fa->cert.ca_pem;
}

int fakeapi_write_kubeconfig(const fakeapi *fa, const char *path, const char *token)
{
    char *ca = fakeapi_b64(fa->cert.ca_pem, strlen(fa->cert.ca_pem), 0);
    if (!ca)
        return -ENOMEM;
    FILE *f = fopen(path, "w");
    if (!f) {
        int e = -errno;
        free(ca);
        return e;
    }
    fprintf(f,
            "apiVersion: v1\n"
            "kind: Config\n"
            "clusters:\n"
            "- name: fake\n"
            "  cluster:\n"
            "    server: %s\n"
            "    certificate-authority-data: %s\n"
            "contexts:\n"
            "- name: fake\n"
            "  context:\n"
            "    cluster: fake\n"
            "    user: fake\n"
            "    namespace: default\n"
            "current-context: fake\n"
            "users:\n"
            "- name: fake\n"
            "  user:\n",
            fa->url, ca);
    if (token)
        fprintf(f, "    token: %s\n", token);
    else
        fprintf(f, "    {}\n");
    free(ca);
    return fclose(f) == 0 ? 0 : -EIO;
}

static void fa_free(fakeapi *fa)
{
    opmap_release(&fa->store, obj_free);
    fakeapi_compact(fa);
    free(fa->hist);
    for (size_t i = 0; i < fa->nkinds; i++) {
        free(fa->kinds[i].api_version);
        free(fa->kinds[i].kind);
        free(fa->kinds[i].plural);
        cJSON_Delete(fa->kinds[i].schema);
    }
    free(fa->kinds);
    fakeapi_clear_faults(fa);
    fakeapi_log_clear(fa);
    free(fa->log);
    ophttpd_cert_release(&fa->cert);
    ophttpd_cert_release(&fa->other);
    free(fa->token);
    free(fa->now);
    free(fa);
}

int fakeapi_start(fakeapi **out, uv_loop_t *loop, const fakeapi_opts *opts)
{
    fakeapi_opts none = {0};
    int rc = -ENOMEM;
    if (!opts)
        opts = &none;
    *out = NULL;
    fakeapi *fa = calloc(1, sizeof(*fa));
    if (!fa)
        return -ENOMEM;
    fa->loop = loop;
    opmap_init(&fa->store);
    fa->history_max = opts->history_max ? opts->history_max : DEF_HISTORY;
    fa->max_body = opts->max_body ? opts->max_body : DEF_MAX_BODY;
    fa->bookmark_ms = opts->bookmark_ms;
    fa->rv = (opts->first_rv ? opts->first_rv : DEF_FIRST_RV) - 1;
    fa->compacted_rv = 0;
    fa->hist = calloc(fa->history_max, sizeof(*fa->hist));
    fa->token = opts->token ? strdup(opts->token) : NULL;
    fa->now = opts->now ? strdup(opts->now) : NULL;
    if (!fa->hist)
        goto fail;
    for (size_t i = 0; i < sizeof(builtin_kinds) / sizeof(builtin_kinds[0]); i++)
        if (add_kind(fa, builtin_kinds[i].av, builtin_kinds[i].kind, builtin_kinds[i].plural,
                     builtin_kinds[i].ns, 1) < 0)
            goto fail;
    if (add_kind(fa, "optipod.io/v1alpha1", "OptimizationPolicy", "optimizationpolicies", 1, 0) <
            0 ||
        add_kind(fa, "optipod.io/v1alpha1", "OptimizationRecommendation",
                 "optimizationrecommendations", 1, 0) < 0)
        goto fail;
    fa->kinds[fa->nkinds - 1].no_status_sub = 1; /* crds/optimizationrecommendations... */
    rc = load_project_crds(fa);
    if (rc < 0)
        goto fail;
    const char *sans[] = {"127.0.0.1", "localhost", NULL};
    rc = ophttpd_cert_generate(&fa->cert, "fakeapi", sans, 1);
    if (rc < 0)
        goto fail;
    ophttpd_opts ho = {
        .bind = "127.0.0.1",
        .port = 0,
        .cert_pem = fa->cert.cert_pem,
        .key_pem = fa->cert.key_pem,
        .limits = {.max_body_bytes = fa->max_body, .max_header_bytes = 64 << 10},
        .idle_timeout_ms = 90000,
        /* the real server has no such small cap; test_controller's 27 controllers in a row,
         * a dozen connections (lists, watches) each, reached 256 and were refused */
        .max_connections = 4096,
        .on_request = handle,
        .ud = fa,
        .on_accept = on_accept,
        .on_handshake = on_handshake,
    };
    rc = ophttpd_new(&fa->srv, loop, &ho);
    if (rc < 0)
        goto fail;
    uv_timer_init(loop, &fa->tick);
    fa->tick.data = fa;
    snprintf(fa->url, sizeof(fa->url), "https://127.0.0.1:%d", ophttpd_port(fa->srv));
    if (fa->bookmark_ms)
        fa->next_bookmark_ms = now_ms(fa) + fa->bookmark_ms;
    *out = fa;
    return 0;
fail:
    fa_free(fa);
    return rc;
}

static void stop_step(fakeapi *fa)
{
    if (--fa->pending_closes > 0)
        return;
    void (*cb)(void *) = fa->on_closed;
    void *ud = fa->closed_ud;
    fa_free(fa);
    if (cb)
        cb(ud);
}

static void on_srv_closed(void *ud)
{
    stop_step(ud);
}

static void on_tick_closed(uv_handle_t *h)
{
    stop_step(h->data);
}

void fakeapi_stop(fakeapi *fa, void (*on_closed)(void *ud), void *ud)
{
    if (fa->stopping)
        return;
    fa->stopping = 1;
    fa->on_closed = on_closed;
    fa->closed_ud = ud;
    fakeapi_end_watches(fa);
    while (fa->delayed) {
        delayed *d = fa->delayed;
        fa->delayed = d->next;
        ophttpd_fault_abort(d->req);
        free(d);
    }
    fa->pending_closes = 2;
    uv_close((uv_handle_t *)&fa->tick, on_tick_closed);
    ophttpd_close(fa->srv, on_srv_closed, fa);
}
