/*
 * cli_state: the managed workloads as the cluster holds them, read once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/fields.h"
#include "cli/cli.h"
#include "engine/quantity.h"

#define ANN "optipod.io/"

static const char *const slot_key[CLI_NV] = {"cpu-request", "memory-request", "cpu-limit",
                                             "memory-limit"};

void cli_state_init(cli_state *s)
{
    memset(s, 0, sizeof *s);
}

static void workload_release(cli_workload *w)
{
    kproj_free(w->proj);
    cJSON_Delete(w->obj);
    free(w->ctrs);
    if (w->rec)
        rrec_release(w->rec);
    free(w->rec);
}

void cli_state_release(cli_state *s)
{
    for (size_t i = 0; i < s->nwl; i++)
        workload_release(&s->wl[i]);
    free(s->wl);
    for (size_t i = 0; i < s->nrecs; i++)
        rrec_release(&s->recs[i]);
    free(s->recs);
    cJSON_Delete(s->policies);
    memset(s, 0, sizeof *s);
}

static const struct {
    const char *kind, *alias1, *alias2;
    const kres *res;
    enum kproj_kind pk;
} kinds[] = {
    {"Deployment", "deployment", "deploy", &KRES_DEPLOYMENTS, KPROJ_DEPLOYMENT},
    {"StatefulSet", "statefulset", "sts", &KRES_STATEFULSETS, KPROJ_STATEFULSET},
    {"DaemonSet", "daemonset", "ds", &KRES_DAEMONSETS, KPROJ_DAEMONSET},
};

int cli_parse_ref(const char *ref, const char **kind, const kres **res, const char **name)
{
    const char *slash = ref ? strchr(ref, '/') : NULL;
    if (!slash || !slash[1] || strchr(slash + 1, '/'))
        return -EINVAL;
    size_t n = (size_t)(slash - ref);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *names[] = {kinds[i].alias1, kinds[i].alias2, kinds[i].res->resource};
        for (size_t k = 0; k < 3; k++) {
            if (strlen(names[k]) == n && strncasecmp(ref, names[k], n) == 0) {
                *kind = kinds[i].kind;
                *res = kinds[i].res;
                *name = slash + 1;
                return 0;
            }
        }
    }
    return -EINVAL;
}

/* Quantities equal by value ("0.5" == "500m"); strings otherwise. */
static int qty_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    kq qa, qb;
    if (kq_parse_str(&qa, a, NULL) == 0 && kq_parse_str(&qb, b, NULL) == 0)
        return kq_cmp(&qa, &qb) == 0;
    return strcmp(a, b) == 0;
}

/* Is m one of the ", "-joined names in list? */
static int listed(const char *list, const char *m)
{
    size_t ml = strlen(m);
    for (const char *p = list; *p;) {
        const char *e = strstr(p, ", ");
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == ml && strncmp(p, m, ml) == 0)
            return 1;
        if (!e)
            break;
        p = e + 2;
    }
    return 0;
}

static void conflicts_of(const mfields *mf, cli_ctr *c)
{
    static const char *const kind[CLI_NV] = {"requests", "requests", "limits", "limits"};
    static const char *const res[CLI_NV] = {"cpu", "memory", "cpu", "memory"};
    size_t len = 0;
    c->conflicts[0] = '\0';
    for (int v = 0; v < CLI_NV; v++) {
        char path[MFIELDS_PATH_MAX];
        if (mfields_path_resource(path, sizeof path,
                                  c->init ? MFIELDS_INIT_CONTAINERS : MFIELDS_CONTAINERS, c->name,
                                  kind[v], res[v]) < 0)
            continue;
        const mfields_entry *own[8];
        size_t n = mfields_owners(mf, path, MFIELDS_OPTIPOD, own, 8);
        for (size_t i = 0; i < n && i < 8; i++) {
            const char *m = own[i]->manager;
            /* an unnamed manager (managedFields are anyone's to write) names no one */
            if (!*m || !strcmp(m, CLI_RELEASE_MGR) || listed(c->conflicts, m))
                continue;
            size_t ml = strlen(m);
            if (len + ml + 3 < sizeof c->conflicts)
                len += (size_t)snprintf(c->conflicts + len, sizeof c->conflicts - len, "%s%s",
                                        len ? ", " : "", m);
        }
    }
}

static int64_t samples_of(const cJSON *policies, const cli_workload *w, const char *ctr)
{
    const cJSON *pol;
    cJSON_ArrayForEach(pol, cJSON_GetObjectItemCaseSensitive(policies, "items"))
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(pol, "status");
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(st, "recommendations"))
        {
            const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "kind"));
            const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "namespace"));
            const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name"));
            const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "container"));
            const cJSON *sm = cJSON_GetObjectItemCaseSensitive(e, "samples");
            if (k && ns && n && c && cJSON_IsNumber(sm) && !strcmp(k, w->kind) &&
                !strcmp(ns, w->proj->ns ? w->proj->ns : "") && !strcmp(n, w->proj->name) &&
                !strcmp(c, ctr))
                return (int64_t)sm->valuedouble;
        }
    }
    return -1;
}

static const char *kv_get(const kproj_kv *kv, size_t n, const char *k)
{
    return kproj_kv_get(kv, n, k);
}

static void fill_ctr(cli_workload *w, const kproj_container *kc, int init, size_t index, cli_ctr *c)
{
    memset(c, 0, sizeof *c);
    c->name = kc->name;
    c->init = init;
    c->index = index;
    c->cur[CLI_CPU_REQ] = kv_get(kc->requests, kc->nrequests, "cpu");
    c->cur[CLI_MEM_REQ] = kv_get(kc->requests, kc->nrequests, "memory");
    c->cur[CLI_CPU_LIM] = kv_get(kc->limits, kc->nlimits, "cpu");
    c->cur[CLI_MEM_LIM] = kv_get(kc->limits, kc->nlimits, "memory");
    c->applied = 1;
    c->samples = -1;
    const rrec_container *rr = NULL;
    for (size_t i = 0; w->rec && i < w->rec->n; i++)
        if (!strcmp(w->rec->c[i].name, kc->name) && w->rec->c[i].init == init)
            rr = &w->rec->c[i];
    /* under the webhook strategy the template is left alone on purpose: what
     * counts is what the webhook injects, its annotations */
    int webhook = !strcmp(w->strategy, "webhook");
    for (int v = 0; v < CLI_NV; v++) {
        char key[384];
        snprintf(key, sizeof key, ANN "%s.%s", slot_key[v], kc->name);
        const char *ann = kv_get(w->proj->annotations, w->proj->nannotations, key);
        if (w->rec)
            c->rec[v] = rr && rr->rec[v][0] ? rr->rec[v] : NULL;
        else
            c->rec[v] = ann;
        if (c->rec[v]) {
            c->has_rec = 1;
            if (!qty_eq(c->rec[v], webhook && w->rec ? ann : c->cur[v]))
                c->applied = 0;
        }
    }
    if (!c->has_rec)
        c->applied = 0;
    if (w->rec)
        c->has_rec = 1; /* every container of a recorded workload is listed */
    if (rr) {
        c->samples = rr->samples;
        c->rule = rr->rule;
        c->explanation = rr->explanation;
    }
}

/* The record for kind/name in ns, moved out of the unmatched list, or NULL. */
static rrec *take_record(cli_state *s, const char *kind, const char *ns, const char *name)
{
    for (size_t i = 0; i < s->nrecs; i++) {
        rrec *r = &s->recs[i];
        if (strcmp(r->kind, kind) || strcmp(r->ns, ns ? ns : "") || strcmp(r->target, name))
            continue;
        rrec *out = malloc(sizeof *out);
        if (!out)
            return NULL;
        memcpy(out, r, sizeof *out);
        memmove(r, r + 1, (s->nrecs - i - 1) * sizeof *r);
        s->nrecs--;
        return out;
    }
    return NULL;
}

static int cmp_wl(const void *a, const void *b)
{
    const cli_workload *x = a, *y = b;
    int r = strcmp(x->proj->ns ? x->proj->ns : "", y->proj->ns ? y->proj->ns : "");
    if (!r)
        r = strcmp(x->kind, y->kind);
    return r ? r : strcmp(x->proj->name, y->proj->name);
}

static int add_workload(cli_state *s, const cJSON *obj, operr *err)
{
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "kind"));
    const char *av = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"));
    size_t k = 0;
    while (k < sizeof kinds / sizeof kinds[0] && (!kind || strcmp(kinds[k].kind, kind)))
        k++;
    if (k == sizeof kinds / sizeof kinds[0])
        return 0;
    kproj_obj *p = NULL;
    int rc = kproj_from_json(obj, kinds[k].pk, &p);
    if (rc)
        return operr_set(err, rc, "%s: cannot read it", kind);
    rrec *rec = take_record(s, kinds[k].kind, p->ns, p->name ? p->name : "");
    int managed = rec != NULL;
    for (size_t i = 0; i < p->nannotations; i++)
        for (int v = 0; v < CLI_NV; v++)
            if (!strncmp(p->annotations[i].key, ANN, strlen(ANN)) &&
                !strncmp(p->annotations[i].key + strlen(ANN), slot_key[v], strlen(slot_key[v])))
                managed = 1;
    if (!managed || !p->name) {
        kproj_free(p);
        if (rec)
            rrec_release(rec);
        free(rec);
        return 0;
    }
    cli_workload *nw = realloc(s->wl, (s->nwl + 1) * sizeof *nw);
    if (!nw) {
        kproj_free(p);
        if (rec)
            rrec_release(rec);
        free(rec);
        return operr_set(err, -ENOMEM, "out of memory");
    }
    s->wl = nw;
    cli_workload *w = &s->wl[s->nwl];
    memset(w, 0, sizeof *w);
    w->proj = p;
    w->rec = rec;
    w->kind = kinds[k].kind;
    w->obj = cJSON_Duplicate(obj, 1);
    w->ctrs = calloc((size_t)p->ncontainers + p->ninit_containers + 1, sizeof *w->ctrs);
    if (!w->obj || !w->ctrs) {
        workload_release(w);
        return operr_set(err, -ENOMEM, "out of memory");
    }
    s->nwl++;
    w->api_version =
        av ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(w->obj, "apiVersion"))
           : "apps/v1";
    const char *st = kv_get(p->annotations, p->nannotations, ANN "strategy");
    w->strategy = rec ? rec->strategy : st ? st : "";
    w->mode = rec ? rec->mode : "";
    w->explanation = kv_get(p->annotations, p->nannotations, ANN "explanation");
    w->replicas = p->replicas >= 0 ? p->replicas : 1;
    mfields mf;
    mfields_init(&mf);
    operr merr;
    if (mfields_parse(&mf, w->obj, &merr))
        mfields_init(&mf); /* unreadable managedFields: no conflicts shown */
    /* an unnamed container can carry no annotation; its index still counts */
    for (size_t i = 0; i < p->ncontainers; i++)
        if (p->containers[i].name)
            fill_ctr(w, &p->containers[i], 0, i, &w->ctrs[w->nctrs++]);
    for (size_t i = 0; i < p->ninit_containers; i++)
        if (p->init_containers[i].name)
            fill_ctr(w, &p->init_containers[i], 1, i, &w->ctrs[w->nctrs++]);
    for (size_t i = 0; i < w->nctrs; i++) {
        conflicts_of(&mf, &w->ctrs[i]);
        if (w->ctrs[i].samples < 0)
            w->ctrs[i].samples = samples_of(s->policies, w, w->ctrs[i].name);
    }
    mfields_release(&mf);
    return 0;
}

int cli_state_from_json(cli_state *s, const cJSON *workloads, cJSON *policies, operr *err)
{
    return cli_state_load(s, workloads, policies, NULL, err);
}

int cli_state_load(cli_state *s, const cJSON *workloads, cJSON *policies, const cJSON *records,
                   operr *err)
{
    s->policies = policies;
    const cJSON *o;
    cJSON_ArrayForEach(o, records)
    {
        rrec *nr = realloc(s->recs, (s->nrecs + 1) * sizeof *nr);
        if (!nr)
            return operr_set(err, -ENOMEM, "out of memory");
        s->recs = nr;
        operr perr = {{0}};
        int rc = rrec_parse(o, &s->recs[s->nrecs], &perr);
        if (rc) {
            const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(o, "metadata"), "name"));
            return operr_set(err, rc, "OptimizationRecommendation %s: %s", n ? n : "(unnamed)",
                             perr.msg);
        }
        s->nrecs++;
    }
    cJSON_ArrayForEach(o, workloads)
    {
        int rc = add_workload(s, o, err);
        if (rc)
            return rc;
    }
    if (s->nwl > 1)
        qsort(s->wl, s->nwl, sizeof *s->wl, cmp_wl);
    return 0;
}

int cli_fetch(cli_conn *c, const cli_scope *sc, cli_state *s, operr *err)
{
    opbuf p;
    opbuf_init(&p, 4096);
    cJSON *all = cJSON_CreateArray(), *pols = NULL, *recs = NULL;
    const char *ns = sc->all ? NULL : sc->ns;
    int rc = all ? 0 : -ENOMEM;
    cli_resp r = {0};
    opbuf_init(&r.body, 1);
    if (!rc)
        rc = kpath(&p, &KRES_POLICIES, NULL, NULL, NULL);
    if (rc)
        goto out;
    rc = cli_call(c, "GET", opbuf_str(&p), NULL, NULL, 0, &r, err);
    if (rc != 0)
        goto out;
    if (r.status == 404) {
        rc = operr_set(err, -ENOENT,
                       "no OptimizationPolicy CRD installed (" CLI_CRD_FILE
                       "): is optipod deployed in this cluster?");
        goto out;
    }
    if (r.status < 200 || r.status > 299) {
        rc = operr_set(err, -EIO, "list optimizationpolicies: HTTP %ld: %s", r.status, r.msg);
        goto out;
    }
    if (!(pols = cJSON_ParseWithLength(opbuf_str(&r.body), r.body.len))) {
        rc = operr_set(err, -EINVAL, "list optimizationpolicies: the reply is not JSON");
        goto out;
    }
    /* the records; an older install has no such CRD: annotations only */
    opbuf_reset(&p);
    opbuf_release(&r.body);
    if ((rc = kpath(&p, &KRES_RECOMMENDATIONS, ns, NULL, NULL)) != 0 ||
        (rc = cli_call(c, "GET", opbuf_str(&p), NULL, NULL, 0, &r, err)) != 0)
        goto out;
    if (r.status >= 200 && r.status <= 299) {
        recs = cJSON_ParseWithLength(opbuf_str(&r.body), r.body.len);
        if (!recs) {
            rc = operr_set(err, -EINVAL, "list optimizationrecommendations: the reply is not JSON");
            goto out;
        }
    } else if (r.status != 404) {
        rc =
            operr_set(err, -EIO, "list optimizationrecommendations: HTTP %ld: %s", r.status, r.msg);
        goto out;
    }
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const char *q[] = {"labelSelector", sc->selector, NULL};
        opbuf_reset(&p);
        rc = kpath(&p, kinds[k].res, ns, NULL, NULL);
        if (!rc)
            rc = kpath_query(&p, q);
        if (rc)
            goto out;
        cJSON *list = cli_get_json(c, opbuf_str(&p), err);
        if (!list) {
            rc = -EIO;
            goto out;
        }
        cJSON *items = cJSON_DetachItemFromObjectCaseSensitive(list, "items");
        cJSON_Delete(list);
        cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            /* list items carry no apiVersion/kind */
            cJSON_DeleteItemFromObjectCaseSensitive(it, "kind");
            cJSON_DeleteItemFromObjectCaseSensitive(it, "apiVersion");
            cJSON_AddStringToObject(it, "apiVersion", kinds[k].res->group_version);
            cJSON_AddStringToObject(it, "kind", kinds[k].kind);
        }
        while (items && items->child) {
            cJSON *first = cJSON_DetachItemViaPointer(items, items->child);
            cJSON_AddItemToArray(all, first);
        }
        cJSON_Delete(items);
    }
    rc = cli_state_load(s, all, pols, cJSON_GetObjectItemCaseSensitive(recs, "items"), err);
    pols = NULL;
out:
    cJSON_Delete(recs);
    opbuf_release(&r.body);
    opbuf_release(&p);
    cJSON_Delete(all);
    cJSON_Delete(pols);
    return rc;
}

const cli_workload *cli_find(const cli_state *s, const char *ref, const char *ns)
{
    const char *kind, *name;
    const kres *res;
    if (cli_parse_ref(ref, &kind, &res, &name))
        return NULL;
    for (size_t i = 0; i < s->nwl; i++) {
        const cli_workload *w = &s->wl[i];
        if (!strcmp(w->kind, kind) && !strcmp(w->proj->name, name) &&
            (!ns || !*ns || !strcmp(w->proj->ns ? w->proj->ns : "", ns)))
            return w;
    }
    return NULL;
}
