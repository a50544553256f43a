#include "controller/reconcile.h"
#include "record/record.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quantity.h"
#include "policy/toengine.h"

#define ANN_PREFIX   "optipod.io/"
#define ANN_NAME_MAX 63 /* as ssa_build_annotations: the name part of a key */

const char *ctlrec_outcome_name(enum ctlrec_outcome o)
{
    switch (o) {
    case CTLREC_APPLY:
        return "applied";
    case CTLREC_UNCHANGED:
        return "unchanged";
    case CTLREC_SKIPPED:
        return "skipped";
    case CTLREC_CONFLICT:
        return "conflict";
    case CTLREC_ERROR:
        return "error";
    }
    return "error";
}

pol_kind ctlrec_pol_kind(enum kproj_kind k)
{
    switch (k) {
    case KPROJ_DEPLOYMENT:
        return POL_KIND_DEPLOYMENT;
    case KPROJ_STATEFULSET:
        return POL_KIND_STATEFULSET;
    case KPROJ_DAEMONSET:
        return POL_KIND_DAEMONSET;
    default:
        return 0;
    }
}

static cJSON *labels_json(const kproj_kv *kv, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < n; i++) {
        if (kv[i].key && kv[i].value && !cJSON_AddStringToObject(o, kv[i].key, kv[i].value)) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

__attribute__((format(printf, 3, 4))) static void set_reason(ctlrec_out *out, enum ctlrec_outcome o,
                                                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out->outcome = o;
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

static const mprov_container_stats *usage_of(const ctlrec_input *in, const char *name)
{
    for (size_t i = 0; in->usage && i < in->nusage; i++) {
        if (strcmp(in->usage[i].container, name) == 0)
            return &in->usage[i];
    }
    return NULL;
}

static const ctlrec_oom *oom_of(const ctlrec_input *in, const char *name)
{
    for (size_t i = 0; in->ooms && i < in->nooms; i++) {
        if (in->ooms[i].container && strcmp(in->ooms[i].container, name) == 0)
            return &in->ooms[i];
    }
    return NULL;
}

/* Current request/limit of one resource from the projection. */
static eng_rl current(const kproj_container *c, const char *res, int cpu)
{
    eng_rl rl = {0};
    const char *req = kproj_kv_get(c->requests, c->nrequests, res);
    const char *lim = kproj_kv_get(c->limits, c->nlimits, res);
    if (req)
        rl.has_req = (cpu ? kq_parse_cpu_milli(req, &rl.req, NULL)
                          : kq_parse_bytes(req, &rl.req, NULL)) == 0;
    if (lim)
        rl.has_lim = (cpu ? kq_parse_cpu_milli(lim, &rl.lim, NULL)
                          : kq_parse_bytes(lim, &rl.lim, NULL)) == 0;
    return rl;
}

static void fmt_qty(int cpu, int64_t v, char *buf)
{
    if (cpu)
        kq_fmt_cpu_milli(v, buf, CTLREC_QTY);
    else
        kq_fmt_mem_bytes(v, buf, CTLREC_QTY);
}

/* Fill write and publish values of one resource from the engine's result. */
static void values(const eng_res *r, int cpu, int allow_limits, char *req, char *lim, char *rreq,
                   char *rlim)
{
    if (r->decision == ENG_APPLY) {
        fmt_qty(cpu, r->req, req);
        strcpy(rreq, req);
        if (r->has_lim && allow_limits) {
            fmt_qty(cpu, r->lim, lim);
            strcpy(rlim, lim);
        }
    } else if (r->decision == ENG_UNCHANGED && r->req > 0) {
        fmt_qty(cpu, r->req, rreq);
    }
}

static void one_container(const ctlrec_input *in, const pol_policy *p, const eng_policy *ep,
                          const kproj_container *kc, int init, ctlrec_out *out)
{
    if (out->ncontainers >= out->cap || !kc->name)
        return;
    ctlrec_container *c = &out->containers[out->ncontainers++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", kc->name);
    c->init = init;
    eng_container ec = {.name = c->name, .init = init != 0};
    c->released = rrec_released(in->workload, c->name);
    ec.opted_out = pol_excludes_container(p, c->name) || c->released;
    c->samples = c->span_s = -1;
    ec.cpu = current(kc, "cpu", 1);
    ec.mem = current(kc, "memory", 0);
    const mprov_container_stats *u = usage_of(in, c->name);
    if (u) {
        ec.use.cpu_cores = u->cpu_cores;
        ec.use.mem_bytes = (int64_t)u->mem_bytes;
        ec.use.mem_peak_bytes = (int64_t)u->mem_peak_bytes;
        ec.use.samples =
            (int64_t)(u->cpu_samples < u->mem_samples ? u->cpu_samples : u->mem_samples);
        ec.use.span_s = (int64_t)u->history_s;
        c->samples = ec.use.samples;
        c->span_s = ec.use.span_s;
        ec.use.oom_count = u->oom_count;
        ec.use.oom_last = u->oom_last_s;
        if (u->history && !out->history)
            out->history = u->history;
        if (u->pods > out->history_pods)
            out->history_pods = u->pods;
    }
    const ctlrec_oom *oom = oom_of(in, c->name);
    if (oom && oom->count > 0) {
        ec.use.oom_count = oom->count > ec.use.oom_count ? oom->count : ec.use.oom_count;
        if (oom->last_s > ec.use.oom_last)
            ec.use.oom_last = oom->last_s;
    }
    eng_facts f = {.now = in->now_s, .hpa_cpu = in->hpa_cpu != 0};
    eng_recommend(ep, &f, &ec, &c->res);
    values(&c->res.cpu, 1, out->allow_limits, c->cpu_req, c->cpu_lim, c->rec_cpu_req,
           c->rec_cpu_lim);
    values(&c->res.mem, 0, out->allow_limits, c->mem_req, c->mem_lim, c->rec_mem_req,
           c->rec_mem_lim);
}

static const char *nz(const char *s)
{
    return s && *s ? s : NULL;
}

int ctlrec_match(const ctlrec_input *in, ctlrec_out *out)
{
    memset(out, 0, sizeof *out);
    const kproj_obj *w = in->workload;
    pol_kind kind = ctlrec_pol_kind(w->kind);
    cJSON *labels = labels_json(w->labels, w->nlabels);
    cJSON *ns_labels = in->ns ? labels_json(in->ns->labels, in->ns->nlabels) : NULL;
    if (!labels || (in->ns && !ns_labels)) {
        cJSON_Delete(labels);
        cJSON_Delete(ns_labels);
        set_reason(out, CTLREC_ERROR, "out of memory");
        return -ENOMEM;
    }
    pol_target t = {.kind = kind, .namespace = w->ns, .labels = labels, .ns_labels = ns_labels};
    const pol_policy *ranked[64];
    size_t n = in->npolicies < 64 ? in->npolicies : 64;
    size_t m = kind ? pol_rank(in->policies, n, &t, ranked) : 0;
    cJSON_Delete(labels);
    cJSON_Delete(ns_labels);

    const int has_ann = w->nannotations > 0;
    if (m == 0) {
        out->release_annotations = has_ann;
        set_reason(out, CTLREC_SKIPPED, "no policy selects this workload");
        return 0;
    }
    out->winner = ranked[0];
    for (size_t i = 1; i < m && out->nlosers < CTLREC_MAX_LOSERS; i++)
        out->losers[out->nlosers++] = ranked[i];
    const pol_policy *p = out->winner;
    out->mode = p->mode;
    if (rrec_released(w, NULL)) {
        out->released = 1;
        set_reason(out, CTLREC_SKIPPED,
                   "released (" RREC_MANAGED_KEY
                   ": \"false\"; `kubectl optipod manage` undoes it)");
        return 0;
    }
    if (p->mode == POL_MODE_DISABLED) {
        out->release_annotations = has_ann;
        set_reason(out, CTLREC_SKIPPED, "policy %s/%s is Disabled", p->namespace, p->name);
        return 0;
    }
    set_reason(out, CTLREC_SKIPPED, "not decided yet");
    return 0;
}

void ctlrec_out_release(ctlrec_out *out)
{
    free(out->containers);
    free(out->ssa);
    free(out->rec);
    memset(out, 0, sizeof *out);
}

int ctlrec_decide(const ctlrec_input *in, ctlrec_out *out)
{
    int rc = ctlrec_match(in, out);
    if (rc || !out->winner || out->released || out->mode == POL_MODE_DISABLED)
        return rc;
    const kproj_obj *w = in->workload;
    const pol_policy *p = out->winner;
    if (in->metrics_error) {
        set_reason(out, CTLREC_ERROR, "metrics unavailable: %s",
                   in->metrics_msg ? in->metrics_msg : "provider failed");
        return 0;
    }
    size_t n = w->ncontainers + (p->include_init_containers ? w->ninit_containers : 0);
    out->cap = n < CTLREC_MAX_CONTAINERS ? n : CTLREC_MAX_CONTAINERS;
    if (out->cap) {
        out->containers = calloc(out->cap, sizeof *out->containers);
        out->ssa = calloc(out->cap, sizeof *out->ssa);
        out->rec = calloc(out->cap, sizeof *out->rec);
        if (!out->containers || !out->ssa || !out->rec) {
            ctlrec_out_release(out);
            set_reason(out, CTLREC_ERROR, "out of memory");
            return -ENOMEM;
        }
    }
    out->allow_limits = p->limits != POL_LIMITS_REQUESTS_ONLY && !p->update_requests_only;
    eng_policy ep;
    pol_engine_policy(p, &ep);
    for (size_t i = 0; i < w->ncontainers; i++)
        one_container(in, p, &ep, &w->containers[i], 0, out);
    if (p->include_init_containers)
        for (size_t i = 0; i < w->ninit_containers; i++)
            one_container(in, p, &ep, &w->init_containers[i], 1, out);

    int napply = 0, nunchanged = 0;
    const char *skip_reason = NULL, *skip_container = NULL;
    for (size_t i = 0; i < out->ncontainers; i++) {
        ctlrec_container *c = &out->containers[i];
        if (c->res.decision == ENG_APPLY)
            napply++;
        else if (c->res.decision == ENG_UNCHANGED)
            nunchanged++;
        else if (!skip_reason) {
            skip_reason = eng_reason_str(c->res.reason);
            skip_container = c->name;
        }
        ssa_container *s = &out->ssa[out->nssa];
        *s = (ssa_container){c->name,        c->init,        nz(c->cpu_req),
                             nz(c->mem_req), nz(c->cpu_lim), nz(c->mem_lim)};
        if (s->cpu_request || s->memory_request || s->cpu_limit || s->memory_limit)
            out->nssa++;
        ssa_container *r = &out->rec[out->nrec];
        *r = (ssa_container){
            c->name,           c->init, nz(c->rec_cpu_req), nz(c->rec_mem_req), nz(c->rec_cpu_lim),
            nz(c->rec_mem_lim)};
        if (r->cpu_request || r->memory_request || r->cpu_limit || r->memory_limit)
            out->nrec++;
    }
    if (napply)
        set_reason(out, CTLREC_APPLY,
                   "recommendation differs from the current values beyond the threshold");
    else if (nunchanged)
        set_reason(out, CTLREC_UNCHANGED, "every container within the change threshold");
    else if (skip_reason)
        set_reason(out, CTLREC_SKIPPED, "container %s: %s", skip_container, skip_reason);
    else
        set_reason(out, CTLREC_SKIPPED, "no containers to size");
    return 0;
}

const char *ctlrec_strategy_value(const ctlrec_out *out)
{
    return out->winner && out->mode == POL_MODE_AUTO &&
                   out->winner->strategy == POL_STRATEGY_WEBHOOK
               ? "webhook"
               : "recommend";
}

static int live_has(const kproj_obj *live, const char *name, int init)
{
    const kproj_container *cs = init ? live->init_containers : live->containers;
    size_t n = init ? live->ninit_containers : live->ncontainers;
    for (size_t i = 0; i < n; i++)
        if (cs[i].name && strcmp(cs[i].name, name) == 0)
            return 1;
    return 0;
}

/* Call fn for every annotation the apply of `out` would set; stops on non-zero. */
static int foreach_desired(const ctlrec_out *out, const kproj_obj *live,
                           int (*fn)(const char *key, const char *value, void *ud), void *ud)
{
    for (size_t i = 0; i < out->nrec; i++) {
        const ssa_container *c = &out->rec[i];
        if (!live_has(live, c->name, c->init) ||
            strlen("memory-request.") + strlen(c->name) > ANN_NAME_MAX)
            continue;
        const struct {
            const char *key, *value;
        } kv[] = {
            {"cpu-request", c->cpu_request},
            {"memory-request", c->memory_request},
            {"cpu-limit", out->allow_limits ? c->cpu_limit : NULL},
            {"memory-limit", out->allow_limits ? c->memory_limit : NULL},
        };
        for (size_t k = 0; k < sizeof kv / sizeof kv[0]; k++) {
            if (!kv[k].value)
                continue;
            char key[128];
            snprintf(key, sizeof key, ANN_PREFIX "%s.%s", kv[k].key, c->name);
            int rc = fn(key, kv[k].value, ud);
            if (rc)
                return rc;
        }
    }
    /* No optipod.io/explanation: the Deployment controller copies annotations onto
     * every ReplicaSet; the explanation lives in the OptimizationRecommendation
     * record. One an older controller wrote is removed by the next apply. */
    const char *strategy = ctlrec_strategy_value(out);
    int rc = fn(ANN_PREFIX "strategy", strategy, ud);
    return rc ? rc
              : fn(ANN_PREFIX "webhook-enabled", strcmp(strategy, "webhook") ? "false" : "true",
                   ud);
}

typedef struct cmp_state {
    const kproj_obj *live;
    size_t count;
} cmp_state;

static int cmp_one(const char *key, const char *value, void *ud)
{
    cmp_state *s = ud;
    const char *have = kproj_kv_get(s->live->annotations, s->live->nannotations, key);
    s->count++;
    return !have || strcmp(have, value) != 0;
}

int ctlrec_annotations_differ(const ctlrec_out *out, const kproj_obj *live)
{
    cmp_state s = {live, 0};
    if (foreach_desired(out, live, cmp_one, &s))
        return 1;
    return s.count != live->nannotations;
}

typedef struct set_state {
    cJSON *ann;
    const char *explanation;
} set_state;

static int set_one(const char *key, const char *value, void *ud)
{
    set_state *st = ud;
    cJSON *ann = st->ann;
    if (!value)
        value = st->explanation;
    cJSON *v = cJSON_CreateString(value);
    if (!v)
        return -ENOMEM;
    if (cJSON_GetObjectItemCaseSensitive(ann, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(ann, key, v) ? 0 : -ENOMEM;
    return cJSON_AddItemToObject(ann, key, v) ? 0 : -ENOMEM;
}

int ctlrec_annotations_body(const ctlrec_out *out, const kproj_obj *live, int release, opbuf *body,
                            operr *err)
{
    opbuf tmp;
    opbuf_init(&tmp, body->max);
    cJSON *root = NULL;
    ssa_request rq = {.live = live,
                      .containers = release ? NULL : out->rec,
                      .ncontainers = release ? 0 : out->nrec,
                      .allow_limits = out->allow_limits};
    int rc = ssa_build_annotations(&rq, &tmp, NULL, err);
    if (rc)
        goto out;
    root = cJSON_ParseWithLength(tmp.data, tmp.len);
    cJSON *md = root ? cJSON_GetObjectItemCaseSensitive(root, "metadata") : NULL;
    cJSON *ann = md ? cJSON_GetObjectItemCaseSensitive(md, "annotations") : NULL;
    if (!ann) {
        rc = operr_set(err, -ENOMEM, "annotations for '%s': out of memory", live->name);
        goto out;
    }
    if (release) {
        /* Omitting every key from optipod's apply releases them; nobody else
         * owns them, so the server removes them. */
        cJSON_DeleteItemFromObjectCaseSensitive(md, "annotations");
    } else {
        set_state st = {ann, ""};
        rc = foreach_desired(out, live, set_one, &st);
        if (rc) {
            operr_set(err, rc, "annotations for '%s': out of memory", live->name);
            goto out;
        }
    }
    char *s = cJSON_PrintUnformatted(root);
    if (!s) {
        rc = operr_set(err, -ENOMEM, "annotations for '%s': out of memory", live->name);
        goto out;
    }
    rc = opbuf_puts(body, s);
    cJSON_free(s);
    if (rc)
        operr_set(err, rc, "annotations for '%s': body too large", live->name);
out:
    cJSON_Delete(root);
    opbuf_release(&tmp);
    return rc;
}

/* ---- optipod.io/explanation ------------------------------------------------------------------ */

static void drop_steps(cJSON *ctrs)
{
    cJSON *c;
    cJSON_ArrayForEach(c, ctrs)
    {
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "cpu"),
                                                "steps");
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "memory"),
                                                "steps");
    }
}

static int print_capped(const cJSON *root, opbuf *json, int *fits)
{
    char *s = cJSON_PrintUnformatted(root);
    if (!s)
        return -ENOMEM;
    size_t n = strlen(s);
    *fits = n <= CTLREC_EXPLANATION_MAX;
    int rc = *fits ? opbuf_append(json, s, n) : 0;
    cJSON_free(s);
    return rc;
}

int ctlrec_explanation(const ctlrec_out *out, opbuf *json)
{
    const pol_policy *p = out->winner;
    int rc = -ENOMEM, fits = 0;
    char buf[64];
    cJSON *root = cJSON_CreateObject(), *ctrs = NULL;
    if (!root)
        return -ENOMEM;
    if (p) {
        snprintf(buf, sizeof buf, "%s/%s", p->namespace ? p->namespace : "",
                 p->name ? p->name : "");
        cJSON_AddStringToObject(root, "policy", buf);
        cJSON_AddStringToObject(root, "mode", pol_mode_name(p->mode));
        const char *prov = pol_provider_name(p->provider);
        cJSON_AddStringToObject(root, "provider", prov[0] ? prov : "prometheus");
        pol_format_duration(p->window_ms, buf, sizeof buf);
        cJSON_AddStringToObject(root, "window", buf);
        cJSON_AddNumberToObject(root, "percentile", p->percentile);
        cJSON_AddNumberToObject(root, "safetyFactor", p->safety_factor);
    }
    if (out->history) {
        cJSON_AddStringToObject(root, "history", out->history);
        cJSON_AddNumberToObject(root, "historyPods", out->history_pods);
    }
    if (!(ctrs = cJSON_AddArrayToObject(root, "containers")))
        goto out;
    for (size_t i = 0; i < out->ncontainers; i++) {
        const ctlrec_container *c = &out->containers[i];
        cJSON *cj = eng_result_json(&c->res, c->name);
        if (!cj)
            goto out;
        if (c->init)
            cJSON_AddTrueToObject(cj, "init");
        cJSON_AddItemToArray(ctrs, cj);
    }
    if ((rc = print_capped(root, json, &fits)) || fits)
        goto out;
    drop_steps(ctrs);
    cJSON_AddStringToObject(root, "truncated", "steps");
    while (!(rc = print_capped(root, json, &fits)) && !fits) {
        int n = cJSON_GetArraySize(ctrs);
        if (n == 0) {
            rc = opbuf_puts(json, "{\"truncated\":\"all\"}");
            break;
        }
        cJSON_DeleteItemFromArray(ctrs, n - 1);
        cJSON_ReplaceItemInObjectCaseSensitive(root, "truncated", cJSON_CreateString("containers"));
    }
out:
    cJSON_Delete(root);
    return rc;
}
