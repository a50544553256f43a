/*
 * cli: the logic of kubectl-optipod, apart from flag parsing.
 *
 *   cli_conn   a synchronous Kubernetes client over krest: each call starts a
 *              request and runs the caller's libuv loop until it ends (so a
 *              test's fake API server on the same loop keeps serving).
 *   cli_state  what optipod published in the cluster: every managed workload
 *              (one with an OptimizationRecommendation record, or, from older
 *              controllers, optipod.io/ recommendation annotations), its
 *              containers' live and recommended values, managedFields, and
 *              the policies' status entries. The record wins over annotations. Sorted by namespace,
 * kind, name; containers in spec order (containers, then initContainers). renderers recommendations
 * (table/json/yaml/csv), explain, savings, export (reusing lib/plan's writers), gitops
 * (lib/apply/remedy). release    stop managing a workload or one container without deleting a value
 * nobody else owns (see cli_release()).
 *
 * Errors name what failed first: "cannot reach https://127.0.0.1:1: ...",
 * "no OptimizationPolicy CRD installed (crds/optimizationpolicies.optipod.io.yaml)".
 *
 * Ownership: cli_conn_open() loads the kubeconfig and creates the HTTP client;
 * cli_conn_close() cancels and closes it (running the loop until it is closed)
 * and frees everything. cli_state_init() allocates nothing; cli_state_release()
 * frees all it holds. Renderers append to the caller's opbuf.
 */
#ifndef OPTIPOD_CLI_CLI_H
#define OPTIPOD_CLI_CLI_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "apply/fields.h"
#include "http/http.h"
#include "kube/config.h"
#include "kube/project.h"
#include "kube/rest.h"
#include "record/record.h"
#include "util/buf.h"
#include "util/err.h"

#define CLI_MAX_BODY          ((size_t)64 << 20)
#define CLI_CRD_FILE          "crds/optimizationpolicies.optipod.io.yaml"
#define CLI_RELEASE_MGR       "optipod-release"
#define CLI_DEFAULT_CPU_PRICE 0.031611 /* $ per core-hour (on-demand general purpose) */
#define CLI_DEFAULT_MEM_PRICE 0.004237 /* $ per GiB-hour */
#define CLI_HOURS_PER_MONTH   730.0

/* ---- connection ------------------------------------------------------------------------- */

typedef struct cli_conn {
    uv_loop_t *loop; /* borrowed */
    kcfg cfg;
    ophttp_client *http;
    krest *rest;
} cli_conn;

typedef struct cli_resp {
    long status; /* HTTP status; 0 on a transport error */
    opbuf body;
    char msg[1024]; /* Status message or transport error */
} cli_resp;

int cli_conn_open(cli_conn *c, uv_loop_t *loop, const char *kubeconfig, const char *context,
                  operr *err);
void cli_conn_close(cli_conn *c);
/* One request, run to its end. Returns 0 when a response (any status) arrived,
 * else -EIO with err "cannot reach SERVER: ...". The caller releases r->body. */
int cli_call(cli_conn *c, const char *method, const char *path, const char *ctype, const char *body,
             size_t len, cli_resp *r, operr *err);
/* GET that must answer 2xx; the parsed JSON (caller deletes) or NULL with err. */
cJSON *cli_get_json(cli_conn *c, const char *path, operr *err);

/* ---- the cluster's recommendations ----------------------------------------------------------
 * Value slots, in this order everywhere. */
enum { CLI_CPU_REQ, CLI_MEM_REQ, CLI_CPU_LIM, CLI_MEM_LIM, CLI_NV };

typedef struct cli_ctr {
    const char *name; /* borrowed from the projection */
    int init;
    size_t index;            /* position in its list */
    const char *cur[CLI_NV]; /* live spec values; NULL when unset */
    const char *rec[CLI_NV]; /* recommended (record, else annotations); NULL when none */
    int has_rec;             /* a recommendation, or a container of a record (values or not) */
    /* every recommended value equals the live one (as quantities): the pod
     * template's, or under the webhook strategy the webhook annotations' */
    int applied;
    char conflicts[256];     /* other managers owning its resources, ", "-joined */
    int64_t samples;         /* from the record, else the policy status; -1 when unknown */
    const char *rule;        /* the record's rule, or NULL */
    const char *explanation; /* the record's explanation JSON, or NULL */
} cli_ctr;

typedef struct cli_workload {
    kproj_obj *proj; /* owned */
    cJSON *obj;      /* owned: the live object */
    const char *kind;
    const char *api_version;
    const char *strategy; /* the record's (ssa, webhook, none), else optipod.io/strategy, or "" */
    const char *mode;     /* the record's mode, or "" */
    const char *explanation; /* optipod.io/explanation, or NULL (older controllers) */
    rrec *rec;               /* owned: its OptimizationRecommendation, or NULL */
    int64_t replicas;        /* 1 when absent (DaemonSet: 1 per node is unknown) */
    cli_ctr *ctrs;
    size_t nctrs;
} cli_workload;

typedef struct cli_state {
    cli_workload *wl;
    size_t nwl;
    cJSON *policies; /* the policy list (owned) */
    rrec *recs;      /* records read, not yet matched to a workload (owned) */
    size_t nrecs;
} cli_state;

typedef struct cli_scope {
    const char *ns; /* NULL or "" with all = 1: every namespace */
    int all;
    const char *selector; /* labelSelector, or NULL */
} cli_scope;

void cli_state_init(cli_state *s);
void cli_state_release(cli_state *s);
/* List the policies (checks the CRD), the recommendation records, then
 * Deployments, StatefulSets and DaemonSets in scope, and keep those with a
 * record or recommendation annotations. */
int cli_fetch(cli_conn *c, const cli_scope *sc, cli_state *s, operr *err);
/* The same from objects in memory (tests, and the fetch itself): a JSON array
 * of workloads (with apiVersion and kind) and the policy list (may be NULL;
 * taken over). */
int cli_state_from_json(cli_state *s, const cJSON *workloads, cJSON *policies, operr *err);
/* The same with the records too (the items of an OptimizationRecommendationList;
 * may be NULL). A record that does not parse is refused naming it. */
int cli_state_load(cli_state *s, const cJSON *workloads, cJSON *policies, const cJSON *records,
                   operr *err);
/* The managed workload kind/name in ns ("deployment/web", "deploy/web",
 * "statefulset/db", "sts/db", "daemonset/x", "ds/x"), or NULL. */
const cli_workload *cli_find(const cli_state *s, const char *ref, const char *ns);
/* "deployment/web" → kind "Deployment" and the KRES; -EINVAL on anything else. */
int cli_parse_ref(const char *ref, const char **kind, const kres **res, const char **name);

/* ---- renderers ------------------------------------------------------------------------------ */

enum cli_fmt { CLI_FMT_TABLE, CLI_FMT_JSON, CLI_FMT_YAML, CLI_FMT_CSV };
int cli_fmt_parse(const char *s); /* -1 when unknown */

int cli_render_recommendations(const cli_state *s, enum cli_fmt fmt, opbuf *out);
/* Readable text from the record (or an older controller's explanation
 * annotation); -ENOENT when it has neither. */
int cli_render_explain(const cli_workload *w, opbuf *out, operr *err);
int cli_render_savings(const cli_state *s, double cpu_price, double mem_price, opbuf *out);

enum cli_export_fmt { CLI_EXPORT_KUSTOMIZE, CLI_EXPORT_PATCH, CLI_EXPORT_HELM };
int cli_export_fmt_parse(const char *s); /* -1 when unknown */
/* Write the files `optipod plan --out` writes, with lib/plan's writers fed a
 * plan built from the cluster (a container's value is a change where the
 * recommendation differs from the live spec): kustomize writes the
 * strategic-merge patch per workload and the kustomization.yaml Component
 * that lists them; patch writes only the patch files, each headed by the
 * `kubectl patch --type strategic --patch-file` line that applies it;
 * helm-values writes values-optipod.yaml. Headers name the export command. Unchanged bytes are not
 * rewritten, nothing else in `dir` is touched. */
int cli_export(const cli_state *s, enum cli_export_fmt fmt, const char *dir, size_t *written,
               operr *err);

enum cli_gitops_tool { CLI_GITOPS_ARGOCD, CLI_GITOPS_FLUX };
int cli_render_gitops(const cli_state *s, enum cli_gitops_tool tool, opbuf *out, operr *err);

/* ---- release ----------------------------------------------------------------------------------
 * Stop managing kind/name (or one container of it):
 *  1. values of the released containers that only optipod owns are handed to
 *     fieldManager optipod-release first: a JSON PATCH as optipod-release (an
 *     Update) that moves those leaves from optipod's entry into an
 *     optipod-release Update entry of metadata.managedFields (guarded by a
 *     resourceVersion test). Re-asserting the same value would not do it: an
 *     Update owns only the fields it changes. An Update owner never pins a
 *     list item, so the GitOps tool can still remove the container, and the
 *     release never deletes a request;
 *  2. an apply as fieldManager optipod (force) of ssa_build's body without the
 *     released containers: values others own are released, the rest of
 *     optipod's fields (other containers) kept;
 *  3. a merge PATCH removing the optipod.io/ annotations of the released
 *     containers (all of them for the whole workload) still present;
 *  4. the release marker (record.h): optipod.io/managed: "false", or
 *     optipod.io/managed.<container>: "false", set as optipod-release, so
 *     the controller and the webhook leave the released part alone until
 *     cli_manage() removes it.
 * The report lists each value kept or released, then what the server holds
 * afterwards (optipod's remaining ownership, values deleted if any). With
 * dry_run every write carries dryRun=All and steps 3 and 4 are skipped. */
typedef struct cli_release_opts {
    const char *ns;
    const char *ref;       /* kind/name */
    const char *container; /* NULL = the whole workload */
    int dry_run;
} cli_release_opts;

int cli_release(cli_conn *c, const cli_release_opts *o, opbuf *report, operr *err);
/* Undo a release: remove the marker of the container (o->container), or every
 * marker of the workload; nothing else changes (the controller applies again
 * at its next reconcile). A container of a workload released as a whole is
 * refused (-EBUSY) naming the command that comes first. */
int cli_manage(cli_conn *c, const cli_release_opts *o, opbuf *report, operr *err);

#endif
