/*
 * nodesim: a node for a cluster that has none (etcd, kube-apiserver and
 * kube-controller-manager alone), so e2e scenarios that need running pods
 * (a rollout that completes, a PodDisruptionBudget that counts healthy pods)
 * run on a bare control plane.
 *
 *   nodesim --node NAME --namespace NS [--namespace PREFIX*]... [--kubeconfig F]
 *           [--context C] [--ip 127.0.0.1] [--cpu 32] [--memory 128Gi] [--pods 250]
 *
 * It registers Node NAME (labelled optipod.io/simulated-node=true, Ready,
 * heartbeats on the Node and its Lease in kube-node-lease every 10 s), then
 * for every pod of the given namespaces plays scheduler and kubelet (see
 * support/nodesim.h): binds pending pods to its node, reports them Running and
 * Ready with containerStatuses echoing their resources, and finishes their
 * deletion. On SIGTERM/SIGINT it force-deletes the pods on its node, its Lease
 * and its Node, and exits 0.
 *
 * When the cluster already has a Ready node that is not simulated, it prints
 * "nodesim: not needed: ..." and exits 0 without touching anything. Once
 * registered it prints "nodesim: ready: node NAME"; every action is a line
 * "nodesim: <action> NS/POD" on stdout. Errors name the request that failed.
 */
#include <cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "cli/cli.h"
#include "kube/informer.h"
#include "kube/rest.h"
#include "support/nodesim.h"
#include "util/flags.h"
#include "util/log.h"
#include "util/map.h"

#define MAX_NS        64
#define SIM_BODY_MAX  ((size_t)1 << 20)
#define LEASE_NS      "kube-node-lease"
#define RESYNC_MS     1000
#define SHUTDOWN_WAIT 45 /* seconds for requests in flight at SIGTERM */
#define NODES_PATH    "/api/v1/nodes"
#define LEASES_PATH   "/apis/coordination.k8s.io/v1/namespaces/" LEASE_NS "/leases"
#define MERGE_PATCH   "application/merge-patch+json"
#define JSON          "application/json"

static struct {
    const char *kubeconfig, *context, *node, *ip;
    nsim_capacity cap;
    uint64_t heartbeat_ms;
    const char *ns[MAX_NS];
    opflag_list nslist;
} cfg = {.ip = "127.0.0.1",
         .cap = {"32", "128Gi", "250"},
         .heartbeat_ms = 10000,
         .nslist = {cfg.ns, 0, MAX_NS}};

/* What was last done for a pod: in flight, or done at resourceVersion rv (the
 * cache may still hold that version for a moment after the reply). */
typedef struct pod_mark {
    int inflight;
    char rv[64];
} pod_mark;

static struct {
    uv_loop_t loop;
    cli_conn conn;
    kinf *pods;
    uv_timer_t beat, resync;
    uv_signal_t sig_term, sig_int;
    opmap marks; /* "ns/name" -> pod_mark* */
    int stopping;
    int pending; /* asynchronous requests not yet answered */
    char node_uid[128];
} S;

typedef struct call {
    char key[KCACHE_KEY_MAX];
    enum nsim_action action; /* NSIM_NONE for a heartbeat */
    char what[64];           /* heartbeat: "node status", "lease" */
} call;

static int ns_matches(const char *ns)
{
    for (int i = 0; i < cfg.nslist.n; i++) {
        const char *p = cfg.ns[i];
        size_t n = strlen(p);
        if (n && p[n - 1] == '*' ? strncmp(ns, p, n - 1) == 0 : strcmp(ns, p) == 0)
            return 1;
    }
    return 0;
}

static const char *reply_msg(const krest_reply *r)
{
    if (r->status && r->status->message[0])
        return r->status->message;
    return r->error_msg && r->error_msg[0] ? r->error_msg : "no message";
}

static void on_reply(const krest_reply *r, void *ud)
{
    call *c = ud;
    S.pending--;
    int ok = r->http_status >= 200 && r->http_status < 300;
    if (c->action == NSIM_NONE) {
        if (!ok)
            fprintf(stderr, "nodesim: heartbeat (%s): HTTP %ld: %s\n", c->what, r->http_status,
                    reply_msg(r));
        free(c);
        return;
    }
    pod_mark *m = opmap_get(&S.marks, c->key);
    if (m)
        m->inflight = 0;
    if (ok) {
        printf("nodesim: %s %s\n", nsim_action_name(c->action), c->key);
        fflush(stdout);
    } else {
        /* 404: the pod is gone; 409: it changed under us (bound by someone else,
         * a new uid). Both resolve on the next event; others are worth a line. */
        if (r->http_status != 404 && r->http_status != 409)
            fprintf(stderr, "nodesim: %s %s: HTTP %ld: %s\n", nsim_action_name(c->action), c->key,
                    r->http_status, reply_msg(r));
        if (m)
            m->rv[0] = '\0'; /* try again at the next resync */
    }
    free(c);
}

/* Start one request; the call is freed by on_reply (or here when it cannot start). */
static int start(call *c, const char *method, const char *path, const char *ctype, opbuf *body)
{
    int rc = krest_call(S.conn.rest, method, path, ctype, body->data, body->len, on_reply, c, NULL);
    if (rc) {
        fprintf(stderr, "nodesim: %s %s: cannot start the request: %s\n", method, path,
                strerror(-rc));
        free(c);
        return rc;
    }
    S.pending++;
    return 0;
}

static void consider(const kproj_obj *pod)
{
    if (S.stopping || !pod->ns || !ns_matches(pod->ns))
        return;
    enum nsim_action a = nsim_decide(pod, cfg.node);
    if (a == NSIM_NONE)
        return;
    char key[KCACHE_KEY_MAX];
    if (kproj_key(key, sizeof key, pod->ns, pod->name))
        return;
    pod_mark *m = opmap_get(&S.marks, key);
    if (m && (m->inflight || (pod->rv && strcmp(m->rv, pod->rv) == 0)))
        return;
    if (!m) {
        if (!(m = calloc(1, sizeof *m)) || opmap_put(&S.marks, key, m, NULL)) {
            free(m);
            return;
        }
    }
    call *c = calloc(1, sizeof *c);
    if (!c)
        return;
    snprintf(c->key, sizeof c->key, "%s", key);
    c->action = a;
    opbuf path, body;
    opbuf_init(&path, 4096);
    opbuf_init(&body, SIM_BODY_MAX);
    const char *method = "PATCH", *ctype = MERGE_PATCH, *sub = "status";
    int rc = 0;
    switch (a) {
    case NSIM_BIND:
        method = "POST", ctype = JSON, sub = "binding";
        rc = nsim_binding_body(&body, pod, cfg.node);
        break;
    case NSIM_REPORT:
    case NSIM_ECHO:
        rc = nsim_pod_status_body(&body, pod, a, cfg.ip, time(NULL));
        break;
    case NSIM_FINALIZE:
        method = "DELETE", ctype = JSON, sub = NULL;
        rc = nsim_delete_body(&body, pod);
        break;
    case NSIM_NONE:
        break;
    }
    if (rc == 0)
        rc = kpath(&path, &KRES_PODS, pod->ns, pod->name, sub);
    if (rc == 0 && start(c, method, opbuf_str(&path), ctype, &body) == 0) {
        m->inflight = 1;
        snprintf(m->rv, sizeof m->rv, "%s", pod->rv ? pod->rv : "");
    } else if (rc) {
        fprintf(stderr, "nodesim: %s %s: cannot build the request: %s\n", nsim_action_name(a), key,
                strerror(-rc));
        free(c);
    }
    opbuf_release(&path);
    opbuf_release(&body);
}

static void on_add(const kproj_obj *o, void *ud)
{
    consider(o);
}

static void on_update(const kproj_obj *old, const kproj_obj *cur, void *ud)
{
    consider(cur);
}

static void on_delete(const kproj_obj *o, void *ud)
{
    char key[KCACHE_KEY_MAX];
    if (kproj_key(key, sizeof key, o->ns, o->name) == 0) {
        pod_mark *m = opmap_get(&S.marks, key);
        if (m && !m->inflight)
            free(opmap_del(&S.marks, key));
    }
}

static int resync_one(const kproj_obj *o, void *ud)
{
    consider(o);
    return 0;
}

/* Requests that failed, and pods whose event came while a request was in flight. */
static void on_resync(uv_timer_t *t)
{
    kcache_foreach(kinf_cache(S.pods), resync_one, NULL);
}

static void heartbeat(const char *what, const char *path, opbuf *body)
{
    call *c = calloc(1, sizeof *c);
    if (!c)
        return;
    snprintf(c->what, sizeof c->what, "%s", what);
    start(c, "PATCH", path, MERGE_PATCH, body);
}

static void on_beat(uv_timer_t *t)
{
    if (S.stopping)
        return;
    opbuf body;
    opbuf_init(&body, SIM_BODY_MAX);
    char path[512];
    snprintf(path, sizeof path, NODES_PATH "/%s/status", cfg.node);
    if (nsim_node_status_body(&body, cfg.node, cfg.ip, &cfg.cap, time(NULL)) == 0)
        heartbeat("node status", path, &body);
    opbuf_reset(&body);
    snprintf(path, sizeof path, LEASES_PATH "/%s", cfg.node);
    if (nsim_lease_renew_body(&body, time(NULL)) == 0)
        heartbeat("lease", path, &body);
    opbuf_release(&body);
}

static void on_signal(uv_signal_t *s, int signum)
{
    S.stopping = 1;
    uv_stop(&S.loop);
}

/* ---- synchronous steps: start and stop ----------------------------------------------------- */

static int call_sync(const char *method, const char *path, const char *ctype, const opbuf *body,
                     cli_resp *r)
{
    operr err = {0};
    int rc = cli_call(&S.conn, method, path, ctype, body ? body->data : NULL, body ? body->len : 0,
                      r, &err);
    if (rc)
        fprintf(stderr, "nodesim: %s %s: %s\n", method, path, err.msg);
    return rc;
}

static const char *resp_msg(const cli_resp *r)
{
    return r->msg[0] ? r->msg : "no message";
}

/* The name of a Ready node that is not simulated, or NULL (into buf). */
static const char *real_ready_node(const cJSON *list, char *buf, size_t cap)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items"))
    {
        const cJSON *meta = cJSON_GetObjectItem(it, "metadata");
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(meta, "name"));
        const cJSON *labels = cJSON_GetObjectItem(meta, "labels");
        if (!name || cJSON_GetObjectItem(labels, NSIM_LABEL))
            continue;
        const cJSON *st = cJSON_GetObjectItem(it, "status"), *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(st, "conditions"))
        {
            const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(c, "type"));
            const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(c, "status"));
            if (type && status && !strcmp(type, "Ready") && !strcmp(status, "True")) {
                snprintf(buf, cap, "%s", name);
                return buf;
            }
        }
    }
    return NULL;
}

/* 1 when a real node is Ready (nothing to do), 0 when the node is ours, -1 on error. */
static int register_node(void)
{
    operr err = {0};
    cJSON *list = cli_get_json(&S.conn, NODES_PATH, &err);
    if (!list) {
        fprintf(stderr, "nodesim: listing nodes: %s\n", err.msg);
        return -1;
    }
    char real[256];
    if (real_ready_node(list, real, sizeof real)) {
        printf("nodesim: not needed: node '%s' is Ready and not simulated (the cluster runs its "
               "pods itself)\n",
               real);
        fflush(stdout);
        cJSON_Delete(list);
        return 1;
    }
    cJSON_Delete(list);

    int rc = -1;
    cli_resp r = {0};
    opbuf body, path;
    opbuf_init(&body, SIM_BODY_MAX);
    opbuf_init(&path, 4096);
    time_t now = time(NULL);
    if (nsim_node_body(&body, cfg.node, cfg.ip, &cfg.cap, now) ||
        call_sync("POST", NODES_PATH, JSON, &body, &r))
        goto out;
    if (r.status != 201 && r.status != 409) {
        fprintf(stderr, "nodesim: creating node '%s': HTTP %ld: %s\n", cfg.node, r.status,
                resp_msg(&r));
        goto out;
    }
    /* Created, or left by an earlier run under the same name: take it over. */
    opbuf_release(&r.body);
    opbuf_reset(&body);
    opbuf_printf(&path, NODES_PATH "/%s/status", cfg.node);
    if (nsim_node_status_body(&body, cfg.node, cfg.ip, &cfg.cap, now) ||
        call_sync("PATCH", opbuf_str(&path), MERGE_PATCH, &body, &r))
        goto out;
    if (r.status != 200) {
        fprintf(stderr, "nodesim: reporting node '%s' Ready: HTTP %ld: %s\n", cfg.node, r.status,
                resp_msg(&r));
        goto out;
    }
    cJSON *node = cJSON_ParseWithLength(opbuf_str(&r.body), r.body.len);
    const char *uid =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(node, "metadata"), "uid"));
    snprintf(S.node_uid, sizeof S.node_uid, "%s", uid ? uid : "");
    cJSON_Delete(node);

    opbuf_release(&r.body);
    opbuf_reset(&body);
    if (nsim_lease_body(&body, cfg.node, S.node_uid, now) ||
        call_sync("POST", LEASES_PATH, JSON, &body, &r))
        goto out;
    if (r.status != 201 && r.status != 409) {
        fprintf(stderr, "nodesim: creating lease '%s/%s': HTTP %ld: %s\n", LEASE_NS, cfg.node,
                r.status, resp_msg(&r));
        goto out;
    }
    rc = 0;
out:
    opbuf_release(&r.body);
    opbuf_release(&body);
    opbuf_release(&path);
    return rc;
}

typedef struct ours {
    char **keys;
    size_t n, cap;
} ours;

static int collect_ours(const kproj_obj *o, void *ud)
{
    ours *x = ud;
    char key[KCACHE_KEY_MAX];
    if (!o->node || strcmp(o->node, cfg.node) != 0 || !o->ns || !ns_matches(o->ns) ||
        kproj_key(key, sizeof key, o->ns, o->name))
        return 0;
    if (x->n == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 64;
        char **k = realloc(x->keys, cap * sizeof *k);
        if (!k)
            return -ENOMEM;
        x->keys = k, x->cap = cap;
    }
    if (!(x->keys[x->n] = strdup(key)))
        return -ENOMEM;
    x->n++;
    return 0;
}

/* The node goes away with its pods (a kubelet-less cluster would otherwise keep
 * them Terminating forever), then its Lease and the Node itself. */
static void unregister_node(void)
{
    ours x = {0};
    if (S.pods)
        kcache_foreach(kinf_cache(S.pods), collect_ours, &x);
    size_t removed = 0;
    opbuf path;
    opbuf_init(&path, 4096);
    static const char grace0[] = "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\","
                                 "\"gracePeriodSeconds\":0}";
    opbuf body = {0};
    opbuf_init(&body, sizeof grace0);
    opbuf_puts(&body, grace0);
    for (size_t i = 0; i < x.n; i++) {
        char *slash = strchr(x.keys[i], '/');
        cli_resp r = {0};
        opbuf_reset(&path);
        if (slash) {
            *slash = '\0';
            if (kpath(&path, &KRES_PODS, x.keys[i], slash + 1, NULL) == 0 &&
                call_sync("DELETE", opbuf_str(&path), JSON, &body, &r) == 0 &&
                (r.status == 200 || r.status == 404))
                removed++;
            else if (r.status)
                fprintf(stderr, "nodesim: deleting pod %s/%s: HTTP %ld: %s\n", x.keys[i], slash + 1,
                        r.status, resp_msg(&r));
        }
        opbuf_release(&r.body);
        free(x.keys[i]);
    }
    free(x.keys);
    const char *paths[2] = {LEASES_PATH, NODES_PATH};
    for (int i = 0; i < 2; i++) {
        cli_resp r = {0};
        opbuf_reset(&path);
        opbuf_printf(&path, "%s/%s", paths[i], cfg.node);
        if (call_sync("DELETE", opbuf_str(&path), NULL, NULL, &r) == 0 && r.status != 200 &&
            r.status != 404)
            fprintf(stderr, "nodesim: DELETE %s: HTTP %ld: %s\n", opbuf_str(&path), r.status,
                    resp_msg(&r));
        opbuf_release(&r.body);
    }
    opbuf_release(&path);
    opbuf_release(&body);
    printf("nodesim: stopped: %zu pods removed, node %s deleted\n", removed, cfg.node);
    fflush(stdout);
}

static void on_handle_closed(uv_handle_t *h) {}

static void close_handles(void)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&S.beat, (uv_handle_t *)&S.resync,
                         (uv_handle_t *)&S.sig_term, (uv_handle_t *)&S.sig_int};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], on_handle_closed);
}

int main(int argc, char **argv)
{
    int help = 0;
    opflag flags[] = {
        {"kubeconfig", 0, OPFLAG_STRING, &cfg.kubeconfig, "kubeconfig (default: $KUBECONFIG)"},
        {"context", 0, OPFLAG_STRING, &cfg.context, "kubeconfig context"},
        {"node", 0, OPFLAG_STRING, &cfg.node, "the Node's name (required)"},
        {"namespace", 'n', OPFLAG_LIST, &cfg.nslist,
         "run the pods of this namespace; PREFIX* for several (required, repeatable)"},
        {"ip", 0, OPFLAG_STRING, &cfg.ip, "the node's and its pods' address"},
        {"cpu", 0, OPFLAG_STRING, &cfg.cap.cpu, "CPU capacity"},
        {"memory", 0, OPFLAG_STRING, &cfg.cap.memory, "memory capacity"},
        {"pods", 0, OPFLAG_STRING, &cfg.cap.pods, "pod capacity"},
        {"heartbeat", 0, OPFLAG_DURATION, &cfg.heartbeat_ms, "Node status and Lease renewal"},
        {"help", 'h', OPFLAG_BOOL, &help, "this help"},
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]);
    operr err = {0};
    int rest = 0;
    if (opflag_parse(flags, nflags, argc, argv, &rest, &err) != 0) {
        fprintf(stderr, "nodesim: %s\n", err.msg);
        return 2;
    }
    if (help) {
        fprintf(stdout, "Usage: nodesim --node NAME --namespace NS [flags]\n");
        opflag_usage(stdout, flags, nflags);
        return 0;
    }
    const char *bad = rest < argc                 ? "unexpected argument"
                      : !cfg.node || !cfg.node[0] ? "--node is required"
                      : cfg.nslist.n == 0         ? "--namespace is required: it runs only the "
                                                    "pods of the namespaces it is given"
                      : !cfg.heartbeat_ms         ? "--heartbeat must be more than 0"
                                                  : NULL;
    if (bad) {
        fprintf(stderr, "nodesim: %s\n", bad);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    int rc = 1;
    uv_loop_init(&S.loop);
    opmap_init(&S.marks);
    uv_timer_init(&S.loop, &S.beat);
    uv_timer_init(&S.loop, &S.resync);
    uv_signal_init(&S.loop, &S.sig_term);
    uv_signal_init(&S.loop, &S.sig_int);
    uv_signal_start(&S.sig_term, on_signal, SIGTERM);
    uv_signal_start(&S.sig_int, on_signal, SIGINT);
    if (cli_conn_open(&S.conn, &S.loop, cfg.kubeconfig, cfg.context, &err) != 0) {
        fprintf(stderr, "nodesim: %s\n", err.msg);
        goto done;
    }
    int reg = register_node();
    if (reg != 0) {
        rc = reg == 1 ? 0 : 1;
        goto done;
    }
    /* One namespace: watch only it; several or a prefix: every pod, filtered here. */
    int one = cfg.nslist.n == 1 && !strchr(cfg.ns[0], '*');
    kinf_opts o = {.res = &KRES_PODS, .ns = one ? cfg.ns[0] : NULL};
    kcache_handlers h = {on_add, on_update, on_delete, NULL};
    if (kinf_new(&S.pods, &S.loop, S.conn.rest, &o, &h, &err) != 0 || kinf_start(S.pods) != 0) {
        fprintf(stderr, "nodesim: watching pods: %s\n", err.msg[0] ? err.msg : "cannot start");
        unregister_node();
        goto done;
    }
    uv_timer_start(&S.beat, on_beat, cfg.heartbeat_ms, cfg.heartbeat_ms);
    uv_timer_start(&S.resync, on_resync, RESYNC_MS, RESYNC_MS);
    printf("nodesim: ready: node %s (uid %s), namespaces", cfg.node, S.node_uid);
    for (int i = 0; i < cfg.nslist.n; i++)
        printf(" %s", cfg.ns[i]);
    printf("\n");
    if (!S.stopping)
        uv_run(&S.loop, UV_RUN_DEFAULT);

    /* SIGTERM: no new requests; let those in flight end, then remove what we made. */
    S.stopping = 1;
    uv_timer_stop(&S.beat);
    uv_timer_stop(&S.resync);
    uint64_t until = uv_now(&S.loop) + SHUTDOWN_WAIT * 1000;
    while (S.pending > 0 && uv_now(&S.loop) < until)
        uv_run(&S.loop, UV_RUN_ONCE);
    unregister_node();
    rc = 0;
done:
    if (S.pods)
        kinf_close(S.pods, NULL, NULL);
    close_handles();
    cli_conn_close(&S.conn);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    opmap_release(&S.marks, free);
    if (uv_loop_close(&S.loop) != 0)
        fprintf(stderr, "nodesim: handles left open at exit\n");
    return rc;
}
