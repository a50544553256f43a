/*
 * ctl record: the OptimizationRecommendation record of every workload a
 * policy selects (lib/record, docs/recommendation.md), kept up to date at
 * the end of each reconcile under every mode and strategy.
 *
 * At most one write per reconcile, and none when the decision is what was last
 * written (rrec_same_decision: everything but the time and the usage figures,
 * which move with every query as the window slides); changed figures alone
 * are written at most every REC_REFRESH_MS, so a steady workload costs one
 * write per workload per 10 min at most, none while the figures stand. A refused write (an API
 * server that does not serve the record, or serves an older CRD whose schema lacks a field: HTTP
 * 500 "field not declared in schema") is not retried before its backoff is over: 10 s, doubling per
 * failure of that workload's record, capped at 10 min, reset by a success;
 * each failure is logged once, with the wait. The write is a server-side apply as fieldManager
 * optipod (which creates the record the first time); a workload no policy selects any more has its
 * record deleted. The writes are the controller's own, apart from the job that triggered them (a
 * job ends before its record is written); they are cancelled on close and counted in ctl_pending().
 */
#include "controller/ctl_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/ssa.h"
#include "engine/quantity.h"
#include "record/record.h"
#include "util/backoff.h"
#include "util/log.h"

#define REC_BACKOFF_MS     10000u  /* the first wait after a refused write */
#define REC_BACKOFF_MAX_MS 600000u /* the longest */
#define REC_REFRESH_MS     600000u /* usage figures alone are rewritten at most this often */

typedef struct ctl_recstate {
    rrec last; /* what was last written (or is being written) */
    int written;
    uint64_t sent_at;  /* ctl__now() of the last write sent */
    char stale_rv[32]; /* the resourceVersion optipod's own apply was made on, until the
                          cache has moved past it ("" then) */
    opbackoff refused; /* refused writes in a row (.failures); set up at the first */
    uint64_t retry_at; /* ctl__now() before which no write is tried (refused.failures > 0) */
} ctl_recstate;

struct ctl_recw {
    struct ctl_recw *next;
    ctl *c;
    char key[KEY_MAX];
    int del; /* a DELETE: 404 means done */
    ophttp_req *req;
};

void ctl__recstate_free(void *v)
{
    ctl_recstate *s = v;
    if (s)
        rrec_release(&s->last);
    free(s);
}

static void recw_unlink(ctl *c, struct ctl_recw *w)
{
    for (struct ctl_recw **p = &c->recws; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    c->nrecws--;
}

void ctl__records_cancel(ctl *c)
{
    while (c->recws) {
        struct ctl_recw *w = c->recws;
        if (w->req)
            ophttp_cancel(w->req);
        recw_unlink(c, w);
        free(w);
    }
}

static void on_record_done(const krest_reply *r, void *ud)
{
    struct ctl_recw *w = ud;
    ctl *c = w->c;
    w->req = NULL;
    ctl_recstate *s = opmap_get(&c->records, w->key);
    if (ctl__ok2xx(r) || (w->del && r->http_status == 404)) {
        if (s)
            opbackoff_reset(&s->refused);
    } else if (s) {
        /* forget it, and write it again once the backoff is over */
        s->written = 0;
        if (!s->refused.initial_ms) /* no jitter: one record per workload, not a herd */
            opbackoff_init(&s->refused, REC_BACKOFF_MS, REC_BACKOFF_MAX_MS, 0, 0);
        uint64_t wait = opbackoff_next(&s->refused, ctl__now(c), 0);
        s->retry_at = ctl__now(c) + wait;
        const char *msg = ctl__reply_msg(r);
        OPLOG_W("record %s: HTTP %ld: %s%s; next try in %llu s", w->key, r->http_status, msg,
                strstr(msg, "not declared in schema")
                    ? " (the installed CRD optimizationrecommendations.optipod.io is older than "
                      "this controller: apply crds/ again; helm upgrade does not update CRDs)"
                    : "",
                (unsigned long long)(wait / 1000));
    }
    recw_unlink(c, w);
    free(w);
}

static int rec_send(ctl *c, const char *key, const char *method, const char *ns, const char *name,
                    const opbuf *body)
{
    struct ctl_recw *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->c = c;
    snprintf(w->key, sizeof w->key, "%s", key);
    opbuf p;
    opbuf_init(&p, 4096);
    int apply = body != NULL;
    w->del = !apply;
    int rc = ctl__write_path(c, &p, &KRES_RECOMMENDATIONS, ns, name, NULL, apply, apply, 0);
    if (!apply) { /* DELETE takes no fieldManager */
        opbuf_reset(&p);
        rc = rc ?: kpath(&p, &KRES_RECOMMENDATIONS, ns, name, NULL);
        const char *kv[] = {"dryRun", c->o.dry_run ? "All" : NULL, NULL};
        rc = rc ?: kpath_query(&p, kv);
    }
    if (!rc)
        rc = krest_call(c->rest, method, opbuf_str(&p),
                        apply ? "application/apply-patch+yaml" : NULL, body ? body->data : NULL,
                        body ? body->len : 0, on_record_done, w, &w->req);
    opbuf_release(&p);
    if (rc) {
        free(w);
        return rc;
    }
    w->next = c->recws;
    c->recws = w;
    c->nrecws++;
    c->st.writes++;
    c->st.record_writes++;
    return 0;
}

/* Quantities equal by value ("0.5" == "500m"). */
static int qty_eq(const char *a, const char *b)
{
    if (!a || !*a || !b || !*b)
        return (!a || !*a) && (!b || !*b);
    kq qa, qb;
    if (kq_parse_str(&qa, a, NULL) == 0 && kq_parse_str(&qb, b, NULL) == 0)
        return kq_cmp(&qa, &qb) == 0;
    return strcmp(a, b) == 0;
}

static void rule_of(const ctlrec_container *cc, char *buf, size_t cap)
{
    if (cc->released)
        snprintf(buf, cap, "skipped: released");
    else if (cc->res.decision == ENG_APPLY)
        snprintf(buf, cap, "apply");
    else
        snprintf(buf, cap, "%s: %s", eng_decision_str(cc->res.decision),
                 eng_reason_str(cc->res.reason));
}

/* The engine's explanation without the container name (the record has it);
 * steps dropped when it would not fit. */
static void explanation_of(const ctlrec_container *cc, rrec_container *rc)
{
    cJSON *x = eng_result_json(&cc->res, cc->name);
    if (!x)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(x, "container");
    char *t = cJSON_PrintUnformatted(x);
    if (t && strlen(t) > RREC_EXPLAIN_MAX) {
        cJSON_free(t);
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(x, "cpu"),
                                                "steps");
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(x, "memory"),
                                                "steps");
        t = cJSON_PrintUnformatted(x);
    }
    if (t && strlen(t) <= RREC_EXPLAIN_MAX)
        rrec_set_explanation(rc, t);
    cJSON_free(t);
    cJSON_Delete(x);
}

static void current_of(const kproj_container *kc, rrec_container *rc)
{
    static const char *const res[RREC_NV] = {"cpu", "memory", "cpu", "memory"};
    for (int v = 0; v < RREC_NV; v++) {
        const char *q = v < 2 ? kproj_kv_get(kc->requests, kc->nrequests, res[v])
                              : kproj_kv_get(kc->limits, kc->nlimits, res[v]);
        snprintf(rc->cur[v], RREC_QTY, "%s", q ? q : "");
    }
}

/* What the job's server-side apply just wrote to a container, over the
 * cached values (the watch event that shows them comes later): the record is
 * right at once, and not written a second time when that event arrives. */
static void overlay_written(const ctl_job *j, rrec_container *rc)
{
    for (size_t i = 0; i < j->out.nssa; i++) {
        const ssa_container *sc = &j->out.ssa[i];
        if (!sc->name || strcmp(sc->name, rc->name) != 0 || !sc->init != !rc->init)
            continue;
        const char *v[RREC_NV] = {sc->cpu_request, sc->memory_request,
                                  j->out.allow_limits ? sc->cpu_limit : NULL,
                                  j->out.allow_limits ? sc->memory_limit : NULL};
        for (int k = 0; k < RREC_NV; k++)
            if (v[k] && v[k][0])
                snprintf(rc->cur[k], RREC_QTY, "%s", v[k]);
    }
}

static const kproj_container *live_container(const kproj_obj *w, const char *name, int init)
{
    const kproj_container *cs = init ? w->init_containers : w->containers;
    size_t n = init ? w->ninit_containers : w->ncontainers;
    for (size_t i = 0; i < n; i++)
        if (cs[i].name && !strcmp(cs[i].name, name))
            return &cs[i];
    return NULL;
}

/* Live values equal the recommendation: the template's, or under the webhook
 * strategy the annotations the webhook injects from. */
static int applied_of(const kproj_obj *w, const rrec_container *rc, int webhook)
{
    static const char *const ann[RREC_NV] = {"cpu-request", "memory-request", "cpu-limit",
                                             "memory-limit"};
    int any = 0;
    for (int v = 0; v < RREC_NV; v++) {
        if (!rc->rec[v][0])
            continue;
        any = 1;
        const char *live = rc->cur[v];
        char key[128];
        if (webhook) {
            snprintf(key, sizeof key, "optipod.io/%s.%s", ann[v], rc->name);
            live = kproj_kv_get(w->annotations, w->nannotations, key);
        }
        if (!qty_eq(rc->rec[v], live))
            return 0;
    }
    return any;
}

static void build(ctl *c, const ctl_job *j, const kproj_obj *w, const pol_policy *p,
                  const char *conflicts, int wrote, rrec *r)
{
    rrec_init(r);
    snprintf(r->ns, sizeof r->ns, "%s", j->ns);
    rrec_name(r->name, sizeof r->name, kproj_kind_name(j->kind), j->name);
    snprintf(r->api_version, sizeof r->api_version, "%s", ssa_api_version(j->kind));
    snprintf(r->kind, sizeof r->kind, "%s", kproj_kind_name(j->kind));
    snprintf(r->target, sizeof r->target, "%s", j->name);
    snprintf(r->uid, sizeof r->uid, "%s", w->uid ? w->uid : "");
    snprintf(r->policy, sizeof r->policy, "%s", j->rec_pkey);
    snprintf(r->mode, sizeof r->mode, "%s", pol_mode_name(p->mode));
    int webhook = p->mode == POL_MODE_AUTO && p->strategy == POL_STRATEGY_WEBHOOK;
    snprintf(r->strategy, sizeof r->strategy, "%s",
             p->mode != POL_MODE_AUTO ? "none"
             : webhook                ? "webhook"
                                      : "ssa");
    const char *prov = pol_provider_name(p->provider);
    if (!prov[0])
        prov = c->prov ? mprov_name(c->prov) : c->prov_ms ? mprov_name(c->prov_ms) : "";
    snprintf(r->provider, sizeof r->provider, "%s", prov);
    pol_format_duration(p->window_ms, r->window, sizeof r->window);
    r->percentile = p->percentile;
    r->safety_factor = p->safety_factor;
    if (j->out.history) { /* how the usage's pods were found, when the provider says */
        snprintf(r->history, sizeof r->history, "%s", j->out.history);
        r->history_pods = j->out.history_pods;
    }
    ctl__rfc3339(ctl__wall_ms(c), r->time, sizeof r->time);
    const ctlrec_out *o = &j->out;
    if (o->ncontainers > 0) {
        for (size_t i = 0; i < o->ncontainers && r->n < RREC_MAX_CONTAINERS; i++) {
            const ctlrec_container *cc = &o->containers[i];
            const kproj_container *kc = live_container(w, cc->name, cc->init);
            rrec_container *rc = &r->c[r->n++];
            snprintf(rc->name, sizeof rc->name, "%s", cc->name);
            rc->init = cc->init;
            if (kc)
                current_of(kc, rc);
            if (wrote)
                overlay_written(j, rc);
            snprintf(rc->rec[RREC_CPU_REQ], RREC_QTY, "%s", cc->rec_cpu_req);
            snprintf(rc->rec[RREC_MEM_REQ], RREC_QTY, "%s", cc->rec_mem_req);
            snprintf(rc->rec[RREC_CPU_LIM], RREC_QTY, "%s", cc->rec_cpu_lim);
            snprintf(rc->rec[RREC_MEM_LIM], RREC_QTY, "%s", cc->rec_mem_lim);
            rc->samples = cc->samples;
            rc->span_s = cc->span_s;
            rule_of(cc, rc->rule, sizeof rc->rule);
            rc->applied = applied_of(w, rc, webhook);
            if (rc->rec[RREC_CPU_REQ][0] || rc->rec[RREC_MEM_REQ][0])
                snprintf(rc->conflicts, sizeof rc->conflicts, "%s", conflicts);
            explanation_of(cc, rc);
        }
        return;
    }
    /* nothing decided (Disabled, released, metrics missing): the live values and why */
    for (size_t i = 0; i < w->ncontainers && r->n < RREC_MAX_CONTAINERS; i++) {
        if (!w->containers[i].name)
            continue;
        rrec_container *rc = &r->c[r->n++];
        snprintf(rc->name, sizeof rc->name, "%s", w->containers[i].name);
        current_of(&w->containers[i], rc);
        rc->samples = rc->span_s = -1;
        snprintf(rc->rule, sizeof rc->rule, "%s",
                 o->released                    ? "skipped: released"
                 : p->mode == POL_MODE_DISABLED ? "skipped: policy disabled"
                                                : "skipped: metrics unavailable");
    }
}

void ctl__record_sync(ctl_job *j, enum ctlrec_outcome oc, int wrote)
{
    ctl *c = j->c;
    if (c->closing || !j->name[0] || ctl__inf_for_kind(j->kind) == CTL_NINF)
        return;
    ctl_recstate *s = opmap_get(&c->records, j->key);
    const kproj_obj *w = kcache_get(ctl__cache(c, ctl__inf_for_kind(j->kind)), j->ns, j->name);
    const kproj_obj *po =
        j->rec_pkey[0] ? kcache_get_key(ctl__cache(c, CTL_INF_POLICIES), j->rec_pkey) : NULL;
    const pol_policy *p = po ? ctl__policy_of(po) : NULL;
    if (!w || !p) {
        /* gone (the garbage collector takes the record) or selected by no policy */
        if (w && s && s->written) {
            char name[RREC_NAME_MAX + 1];
            if (rrec_name(name, sizeof name, kproj_kind_name(j->kind), j->name) == 0 &&
                rec_send(c, j->key, "DELETE", j->ns, name, NULL) == 0)
                s->written = 0;
        }
        return;
    }
    if (oc == CTLREC_ERROR && j->out.ncontainers == 0 && s && s->written)
        return; /* keep the last good record through a transient error */
    if (s && s->refused.failures && ctl__now(c) < s->retry_at)
        return; /* the last write was refused: wait out its backoff */
    if (s && s->stale_rv[0] && !wrote) {
        /* a reconcile between optipod's apply and its watch event sees the old values: the
         * record already shows the written ones; the event brings the next reconcile */
        if (s->written && w->rv && !strcmp(w->rv, s->stale_rv))
            return;
        s->stale_rv[0] = '\0';
    }
    ctl_wstate *ws = ctl__wstate(c, j->key, 0);
    char conflicts[RREC_CONFLICTS] = "";
    if (ws && ws->conflict) {
        snprintf(conflicts, sizeof conflicts, "%s", ws->conflict);
        char *sfx = strstr(conflicts, " (");
        if (sfx)
            *sfx = 0;
    }
    static rrec r; /* large; the loop is single-threaded */
    build(c, j, w, p, conflicts, wrote, &r);
    if (s && s->written &&
        (rrec_same(&s->last, &r) ||
         (rrec_same_decision(&s->last, &r) && ctl__now(c) - s->sent_at < REC_REFRESH_MS))) {
        rrec_release(&r);
        return;
    }
    opbuf body;
    opbuf_init(&body, BODY_MAX);
    operr err = {{0}};
    int rc = rrec_build(&r, &body, &err);
    if (!rc && !s) {
        s = calloc(1, sizeof *s);
        if (!s || opmap_put(&c->records, j->key, s, NULL) != 0) {
            free(s);
            s = NULL;
            rc = -ENOMEM;
        }
    }
    if (!rc)
        rc = rec_send(c, j->key, "PATCH", r.ns, r.name, &body);
    opbuf_release(&body);
    if (rc) {
        OPLOG_W("record %s: %s", j->key, err.msg[0] ? err.msg : strerror(-rc));
        rrec_release(&r);
        return;
    }
    rrec_release(&s->last);
    s->last = r; /* taken over: r's explanations now belong to s */
    memset(&r, 0, sizeof r);
    s->written = 1;
    s->sent_at = ctl__now(c);
    /* the version the apply was made on (read just before it) */
    snprintf(s->stale_rv, sizeof s->stale_rv, "%s",
             wrote && j->live && j->live->rv ? j->live->rv : "");
}

int ctl__record_applied(ctl *c, const char *key)
{
    const ctl_recstate *s = opmap_get(&c->records, key);
    return s && s->written && rrec_applied(&s->last);
}
