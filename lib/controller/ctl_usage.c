/*
 * ctl usage: the usage a decision needs, one metrics provider request per
 * namespace, percentile and window, reused for usage_ttl_ms. The request
 * names every workload of the namespace and its pods, read from the caches.
 * Jobs that need an entry still being fetched wait on it and are resumed
 * (j->resume) once it is answered. I/O layer: calls ctl_common.c only.
 * Separate because it is the controller's only path to the metrics provider.
 */
#include "controller/ctl_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- usage: one provider request per namespace (and percentile, window) per TTL -------------- */

void ctl__usage_free(void *v)
{
    ctl_usage *u = v;
    opmap_release(&u->stats, free);
    free(u);
}

ctl_usage *ctl__usage_get(ctl *c, mprov *prov, const char *ns, double pct, uint64_t window_s)
{
    char key[400];
    snprintf(key, sizeof key, "%s|%s|%.3f|%llu", mprov_name(prov), ns, pct,
             (unsigned long long)window_s);
    ctl_usage *u = opmap_get(&c->usage, key);
    if (!u) {
        u = calloc(1, sizeof *u);
        if (!u)
            return NULL;
        u->c = c;
        u->prov = prov;
        snprintf(u->ns, sizeof u->ns, "%s", ns);
        u->pct = pct;
        u->window_s = window_s;
        opmap_init(&u->stats);
        if (opmap_put(&c->usage, key, u, NULL) != 0) {
            ctl__usage_free(u);
            return NULL;
        }
    }
    return u;
}

static void usage_wake(ctl_usage *u)
{
    ctl_job *w = u->waiting;
    u->waiting = NULL;
    while (w) {
        ctl_job *next = w->next_wait;
        w->next_wait = NULL;
        w->resume(w);
        w = next;
    }
}

static void on_usage(const mprov_result *res, void *ud)
{
    ctl_usage *u = ud;
    u->state = 2;
    u->fetched_ms = ctl__now(u->c);
    u->error = res->error;
    snprintf(u->msg, sizeof u->msg, "%s", res->error_msg ? res->error_msg : "");
    opmap_release(&u->stats, free);
    opmap_init(&u->stats);
    for (size_t i = 0; !res->error && i < res->nworkloads; i++) {
        const mprov_workload_stats *ws = &res->workloads[i];
        ctl_ustats *s = malloc(sizeof *s + ws->ncontainers * sizeof s->c[0]);
        char key[600];
        snprintf(key, sizeof key, "%s/%s", ws->kind, ws->name);
        if (!s)
            continue;
        s->n = ws->ncontainers;
        if (ws->ncontainers) /* a workload without containers comes with containers NULL */
            memcpy(s->c, ws->containers, ws->ncontainers * sizeof s->c[0]);
        void *old = NULL;
        if (opmap_put(&u->stats, key, s, &old) != 0)
            free(s);
        free(old);
    }
    usage_wake(u);
}

typedef struct pod_map {
    ctl *c;
    const char *ns;
    opmap idx; /* "Kind/name" → index + 1 */
    mprov_workload *w;
    enum kproj_kind *kinds; /* w[i]'s */
    size_t nw;
    const char ***pods;
    size_t *npods, *cap;
    int oom;
} pod_map;

static int collect_workload(const kproj_obj *o, void *ud)
{
    pod_map *m = ud;
    if (!o->ns || strcmp(o->ns, m->ns) != 0)
        return 0;
    char key[600];
    snprintf(key, sizeof key, "%s/%s", kproj_kind_name(o->kind), o->name);
    mprov_workload *nw = realloc(m->w, (m->nw + 1) * sizeof *nw);
    if (!nw)
        return -ENOMEM;
    m->w = nw;
    enum kproj_kind *nk = realloc(m->kinds, (m->nw + 1) * sizeof *nk);
    if (!nk)
        return -ENOMEM;
    m->kinds = nk;
    m->kinds[m->nw] = o->kind;
    m->w[m->nw] = (mprov_workload){kproj_kind_name(o->kind), o->name, NULL, 0};
    m->nw++;
    return opmap_put(&m->idx, key, (void *)(uintptr_t)m->nw, NULL);
}

static int collect_pod(const kproj_obj *o, void *ud)
{
    pod_map *m = ud;
    char key[600];
    if (!o->ns || strcmp(o->ns, m->ns) != 0 || ctl__pod_owner(m->c, o, key, sizeof key) != 0)
        return 0;
    uintptr_t i = (uintptr_t)opmap_get(&m->idx, key);
    if (!i)
        return 0;
    i--;
    if (m->npods[i] == m->cap[i]) {
        size_t ncap = m->cap[i] ? m->cap[i] * 2 : 8;
        const char **np = realloc(m->pods[i], ncap * sizeof *np);
        if (!np)
            return -ENOMEM;
        m->pods[i] = np;
        m->cap[i] = ncap;
    }
    m->pods[i][m->npods[i]++] = o->name;
    return 0;
}

void ctl__usage_fetch(ctl *c, ctl_usage *u)
{
    pod_map m = {.c = c, .ns = u->ns};
    opmap_init(&m.idx);
    int rc = 0;
    for (enum ctl_inf i = CTL_INF_DEPLOYMENTS; !rc && i <= CTL_INF_DAEMONSETS; i++)
        rc = ctl__in_namespace(c, i, u->ns, collect_workload, &m);
    if (!rc && m.nw) {
        m.pods = calloc(m.nw, sizeof *m.pods);
        m.npods = calloc(m.nw, sizeof *m.npods);
        m.cap = calloc(m.nw, sizeof *m.cap);
        rc = m.pods && m.npods && m.cap ? 0 : -ENOMEM;
        for (size_t i = 0; !rc && i < m.nw; i++) /* each workload's own pods */
            rc = ctl__workload_pods(c, m.kinds[i], u->ns, m.w[i].name, collect_pod, &m);
        for (size_t i = 0; !rc && i < m.nw; i++) {
            m.w[i].pods = m.pods[i];
            m.w[i].npods = m.npods[i];
        }
    }
    if (!rc) {
        mprov_request rq = {.ns = u->ns,
                            .workloads = m.w,
                            .nworkloads = m.nw,
                            .percentile = u->pct,
                            .window_s = u->window_s};
        u->state = 1;
        c->st.usage_requests++;
        rc = mprov_request_stats(u->prov, &rq, on_usage, u);
    }
    for (size_t i = 0; m.pods && i < m.nw; i++)
        free(m.pods[i]);
    free(m.pods);
    free(m.npods);
    free(m.cap);
    free(m.w);
    free(m.kinds);
    opmap_release(&m.idx, NULL);
    if (rc) {
        u->state = 2;
        u->fetched_ms = ctl__now(c);
        u->error = rc;
        snprintf(u->msg, sizeof u->msg, "%s: cannot query namespace %s: %s", mprov_name(u->prov),
                 u->ns, strerror(-rc));
        usage_wake(u);
    }
}
