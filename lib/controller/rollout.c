#include "controller/rollout.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/quantity.h"
#include "kube/events.h"
#include "policy/selector.h"
#include "util/err.h"

static int is_workload(const kproj_obj *w)
{
    return w && (w->kind == KPROJ_DEPLOYMENT || w->kind == KPROJ_STATEFULSET ||
                 w->kind == KPROJ_DAEMONSET);
}

int rollout_rolls_pods(const kproj_obj *w)
{
    if (!is_workload(w))
        return 0;
    /* Deployments have no OnDelete; their spec.strategy is not read. */
    const char *s = w->rollout.update_strategy;
    return w->kind == KPROJ_DEPLOYMENT || !s || strcmp(s, "OnDelete") != 0;
}

static int set_why(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_why(char *why, size_t cap, const char *fmt, ...)
{
    if (cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return 0;
}

int rollout_complete(const kproj_obj *w, int64_t min_generation, char *why, size_t cap)
{
    if (cap)
        why[0] = 0;
    if (!is_workload(w))
        return set_why(why, cap, "not a workload");
    const kproj_rollout *r = &w->rollout;
    if (w->generation < min_generation)
        return set_why(why, cap, "generation %lld not yet seen (want %lld)",
                       (long long)w->generation, (long long)min_generation);
    if (r->observed_generation < w->generation)
        return set_why(why, cap, "its controller has not observed generation %lld yet (at %lld)",
                       (long long)w->generation, (long long)r->observed_generation);
    int32_t want = w->replicas < 0 ? 1 : w->replicas;
    switch (w->kind) {
    case KPROJ_DEPLOYMENT:
        if (r->replicas != want || r->updated != want || r->available != want)
            return set_why(why, cap, "%d of %d replicas updated, %d available, %d in total",
                           r->updated, want, r->available, r->replicas);
        break;
    case KPROJ_STATEFULSET:
        if (!r->update_revision || !r->current_revision ||
            strcmp(r->update_revision, r->current_revision) != 0)
            return set_why(why, cap, "revision %s not yet current (at %s)",
                           r->update_revision ? r->update_revision : "?",
                           r->current_revision ? r->current_revision : "?");
        if (r->replicas != want || r->ready != want)
            return set_why(why, cap, "%d of %d replicas ready, %d in total", r->ready, want,
                           r->replicas);
        break;
    default: /* DaemonSet */
        if (r->updated != r->replicas || r->available != r->replicas)
            return set_why(why, cap, "%d of %d pods updated, %d available", r->updated, r->replicas,
                           r->available);
        break;
    }
    return 1;
}

int64_t rollout_bound_ms(const kproj_obj *w)
{
    if (w && w->kind == KPROJ_DEPLOYMENT && w->rollout.progress_deadline_s > 0)
        return (int64_t)w->rollout.progress_deadline_s * 1000;
    return ROLLOUT_BOUND_MS;
}

/* The projection's selector back in metav1.LabelSelector form. */
static cJSON *selector_json(const kproj_obj *o)
{
    cJSON *sel = cJSON_CreateObject();
    cJSON *ml = sel ? cJSON_AddObjectToObject(sel, "matchLabels") : NULL;
    cJSON *me = sel ? cJSON_AddArrayToObject(sel, "matchExpressions") : NULL;
    if (!ml || !me)
        goto fail;
    for (size_t i = 0; i < o->nselector; i++)
        if (o->selector[i].key && o->selector[i].value &&
            !cJSON_AddStringToObject(ml, o->selector[i].key, o->selector[i].value))
            goto fail;
    for (size_t i = 0; i < o->nselector_exprs; i++) {
        const kproj_expr *e = &o->selector_exprs[i];
        cJSON *x = cJSON_CreateObject(), *vals;
        if (!x || !cJSON_AddItemToArray(me, x))
            goto fail_x;
        if (!cJSON_AddStringToObject(x, "key", e->key ? e->key : "") ||
            !cJSON_AddStringToObject(x, "operator", e->op ? e->op : "") ||
            !(vals = cJSON_AddArrayToObject(x, "values")))
            goto fail;
        /* values were joined by ','; a label value cannot hold one */
        for (const char *p = e->values; p && *p;) {
            size_t n = strcspn(p, ",");
            char v[LSEL_MAX_NAME + 2];
            snprintf(v, sizeof v, "%.*s", (int)(n < sizeof v ? n : sizeof v - 1), p);
            cJSON *s = cJSON_CreateString(v);
            if (!s || !cJSON_AddItemToArray(vals, s)) {
                cJSON_Delete(s);
                goto fail;
            }
            p += n + (p[n] == ',');
        }
        continue;
    fail_x:
        cJSON_Delete(x);
        goto fail;
    }
    return sel;
fail:
    cJSON_Delete(sel);
    return NULL;
}

static cJSON *labels_json(const kproj_kv *kv, size_t n)
{
    cJSON *l = cJSON_CreateObject();
    for (size_t i = 0; l && i < n; i++)
        if (kv[i].key && kv[i].value && !cJSON_AddStringToObject(l, kv[i].key, kv[i].value)) {
            cJSON_Delete(l);
            return NULL;
        }
    return l;
}

int rollout_pdb_selects(const kproj_obj *pdb, const kproj_obj *w)
{
    if (!pdb || !w || !pdb->rollout.has_selector)
        return 0; /* policy/v1: a null selector selects no pods */
    if (!pdb->ns || !w->ns || strcmp(pdb->ns, w->ns) != 0)
        return 0;
    cJSON *sj = selector_json(pdb);
    cJSON *lj = labels_json(w->rollout.template_labels, w->rollout.ntemplate_labels);
    lsel_selector sel;
    lsel_init(&sel);
    int m;
    if (!sj || !lj)
        m = 1; /* out of memory: count it, a budget is never skipped by accident */
    else if (lsel_from_json(&sel, sj, "spec.selector", NULL) != 0)
        m = 1; /* unreadable: respected, it can only block while it allows nothing */
    else
        m = lsel_matches(&sel, lj);
    lsel_release(&sel);
    cJSON_Delete(sj);
    cJSON_Delete(lj);
    return m;
}

static void wait(rollout_out *out, uint64_t retry_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void wait(rollout_out *out, uint64_t retry_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
    out->verdict = ROLLOUT_WAIT;
    out->retry_ms = retry_ms;
}

/* The slot: free, released now (out->release), or a reason to wait (1). */
static int check_slot(const rollout_in *in, rollout_out *out)
{
    const rollout_slot *s = in->slot;
    char why[256];
    if (!s || !s->key[0])
        return 0;
    if (s->generation == 0) {
        wait(out, ROLLOUT_POLL_MS, "a rollout of %s is being written (one rollout at a time)",
             s->key);
        return 1;
    }
    if (!in->slot_workload) {
        out->release = ROLLOUT_GONE;
        return 0;
    }
    if (rollout_complete(in->slot_workload, s->generation, why, sizeof why)) {
        out->release = ROLLOUT_COMPLETED;
        return 0;
    }
    if (in->slot_workload->rollout.paused) {
        /* Someone paused our rollout on purpose: it resumes when they say,
         * not within any bound, and must not hold every other workload. */
        out->release = ROLLOUT_PAUSED;
        return 0;
    }
    int64_t age = in->now_ms - s->started_ms;
    if (age >= s->bound_ms) {
        out->release = ROLLOUT_STUCK;
        snprintf(out->stuck, sizeof out->stuck,
                 "the rollout of %s did not complete within %llds (%s); no longer waiting for it",
                 s->key, (long long)(s->bound_ms / 1000), why);
        return 0;
    }
    if (strcmp(s->key, in->key) == 0)
        wait(out, ROLLOUT_POLL_MS, "its previous rollout is still in progress: %s", why);
    else
        wait(out, ROLLOUT_POLL_MS, "the rollout of %s is still in progress (one at a time): %s",
             s->key, why);
    return 1;
}

int rollout_gate(const rollout_in *in, rollout_out *out)
{
    memset(out, 0, sizeof *out);
    out->verdict = ROLLOUT_WAIT;
    if (!in || !in->workload || !in->key)
        return -EINVAL;
    int busy = check_slot(in, out);
    char why[256];
    const kproj_obj *w = in->workload;
    if (w->rollout.paused) {
        /* A paused Deployment rolls nothing until resumed, and a rollout
         * resumed by its owner is theirs to pace: wait for the resume (and
         * say so rather than name another rollout). */
        wait(out, ROLLOUT_RETRY_MS, "the Deployment is paused (spec.paused)");
        return 0;
    }
    if (busy)
        return 0;
    if (!rollout_complete(w, 0, why, sizeof why)) {
        wait(out, ROLLOUT_RETRY_MS, "the workload is mid-rollout or not fully available: %s", why);
        return 0;
    }
    for (size_t i = 0; i < in->npdbs; i++) {
        const kproj_obj *p = in->pdbs[i];
        if (!rollout_pdb_selects(p, w))
            continue;
        if (p->rollout.observed_generation < p->generation) {
            out->pdb = p;
            wait(out, ROLLOUT_RETRY_MS,
                 "PodDisruptionBudget %s/%s has a stale status (observedGeneration %lld < "
                 "generation %lld)",
                 p->ns, p->name, (long long)p->rollout.observed_generation,
                 (long long)p->generation);
            return 0;
        }
        if (p->rollout.disruptions_allowed < 1) {
            out->pdb = p;
            wait(out, ROLLOUT_RETRY_MS,
                 "PodDisruptionBudget %s/%s allows no disruption now (disruptionsAllowed %d)",
                 p->ns, p->name, p->rollout.disruptions_allowed);
            return 0;
        }
    }
    out->verdict = ROLLOUT_GO;
    out->retry_ms = 0;
    return 0;
}

/* want "" or NULL: not compared; otherwise the pod's value must equal it. */
static int qty_differs(const kproj_kv *kv, size_t n, const char *res, const char *want)
{
    if (!want || !*want)
        return 0;
    const char *have = kproj_kv_get(kv, n, res);
    kq a, b;
    if (!have || kq_parse_str(&a, have, NULL) != 0 || kq_parse_str(&b, want, NULL) != 0)
        return 1;
    return kq_cmp(&a, &b) != 0;
}

int rollout_pod_differs(const kproj_obj *pod, const ssa_container *want, size_t nwant,
                        int allow_limits)
{
    for (size_t i = 0; pod && i < nwant; i++) {
        if (want[i].init || !want[i].name)
            continue;
        const kproj_container *c = NULL;
        for (size_t k = 0; k < pod->ncontainers && !c; k++)
            if (pod->containers[k].name && strcmp(pod->containers[k].name, want[i].name) == 0)
                c = &pod->containers[k];
        if (!c)
            continue; /* a container the pod does not run: nothing to restart for */
        if (qty_differs(c->requests, c->nrequests, "cpu", want[i].cpu_request) ||
            qty_differs(c->requests, c->nrequests, "memory", want[i].memory_request))
            return 1;
        if (allow_limits && (qty_differs(c->limits, c->nlimits, "cpu", want[i].cpu_limit) ||
                             qty_differs(c->limits, c->nlimits, "memory", want[i].memory_limit)))
            return 1;
    }
    return 0;
}

static const kproj_container *find_container(const kproj_obj *o, const char *name)
{
    for (size_t k = 0; o && k < o->ncontainers; k++)
        if (o->containers[k].name && strcmp(o->containers[k].name, name) == 0)
            return &o->containers[k];
    return NULL;
}

/* Two optional requests are the same: both absent, or both equal quantities. */
static int same_request(const char *a, const char *b)
{
    kq x, y;
    if (!a || !b)
        return !a && !b;
    return kq_parse_str(&x, a, NULL) == 0 && kq_parse_str(&y, b, NULL) == 0 && kq_cmp(&x, &y) == 0;
}

int rollout_pod_uninjected(const kproj_obj *pod, const kproj_obj *w, const ssa_container *want,
                           size_t nwant)
{
    static const char *const res[] = {"cpu", "memory"};
    for (size_t i = 0; pod && w && i < nwant; i++) {
        if (want[i].init || !want[i].name)
            continue;
        const kproj_container *pc = find_container(pod, want[i].name);
        const kproj_container *tc = find_container(w, want[i].name);
        if (!pc || !tc)
            continue;
        for (size_t r = 0; r < 2; r++) {
            const char *rec = r ? want[i].memory_request : want[i].cpu_request;
            if (!rec || !*rec)
                continue;
            const char *tv = kproj_kv_get(tc->requests, tc->nrequests, res[r]);
            const char *pv = kproj_kv_get(pc->requests, pc->nrequests, res[r]);
            if (!same_request(rec, tv) && same_request(pv, tv))
                return 1;
        }
    }
    return 0;
}

const char *rollout_release_name(enum rollout_release r)
{
    switch (r) {
    case ROLLOUT_KEEP:
        return "keep";
    case ROLLOUT_COMPLETED:
        return "completed";
    case ROLLOUT_GONE:
        return "gone";
    case ROLLOUT_STUCK:
        return "stuck";
    case ROLLOUT_PAUSED:
        return "paused";
    }
    return "?";
}

/* ---- the slot on record ------------------------------------------------------------------- */

static const enum kproj_kind slot_kinds[] = {KPROJ_DEPLOYMENT, KPROJ_STATEFULSET, KPROJ_DAEMONSET};

cJSON *rollout_slot_to_json(const rollout_slot *s)
{
    if (!s || !s->key[0] || s->generation < 1)
        return NULL;
    /* "Kind/namespace/name": names cannot hold '/' */
    const char *a = strchr(s->key, '/');
    const char *b = a ? strchr(a + 1, '/') : NULL;
    if (!a || !b || strchr(b + 1, '/'))
        return NULL;
    char kind[32], ns[ROLLOUT_KEY_MAX], at[KEVENTS_MICRO_TIME_LEN + 1];
    if ((size_t)(a - s->key) >= sizeof kind ||
        kevents_micro_time((uint64_t)(s->started_ms > 0 ? s->started_ms : 0) * 1000000ull, at,
                           sizeof at) != 0)
        return NULL;
    snprintf(kind, sizeof kind, "%.*s", (int)(a - s->key), s->key);
    snprintf(ns, sizeof ns, "%.*s", (int)(b - a - 1), a + 1);
    /* whole seconds, as every other time in the status */
    char *dot = strchr(at, '.');
    if (dot)
        strcpy(dot, "Z");
    cJSON *j = cJSON_CreateObject();
    if (!j || !cJSON_AddStringToObject(j, "kind", kind) ||
        !cJSON_AddStringToObject(j, "namespace", ns) ||
        !cJSON_AddStringToObject(j, "name", b + 1) ||
        !cJSON_AddNumberToObject(j, "generation", (double)s->generation) ||
        !cJSON_AddStringToObject(j, "startedAt", at)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static int bad_record(char *why, size_t cap, const char *field, const char *what)
{
    if (cap)
        snprintf(why, cap, "status.rollout.%s: %s", field, what);
    return -EINVAL;
}

/* A namespace or object name as the API server allows: 1-253 bytes, no '/'. */
static int name_ok(const cJSON *v)
{
    return cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) <= 253 &&
           !strchr(v->valuestring, '/');
}

int rollout_slot_from_json(const cJSON *rec, rollout_slot *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (cap)
        why[0] = 0;
    if (!cJSON_IsObject(rec))
        return bad_record(why, cap, "", "not an object");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(rec, "kind");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(rec, "namespace");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(rec, "name");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(rec, "generation");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(rec, "startedAt");
    const char *kn = NULL;
    for (size_t i = 0; cJSON_IsString(kind) && i < sizeof slot_kinds / sizeof slot_kinds[0]; i++)
        if (strcmp(kind->valuestring, kproj_kind_name(slot_kinds[i])) == 0)
            kn = kind->valuestring;
    if (!kn)
        return bad_record(why, cap, "kind", "not Deployment, StatefulSet or DaemonSet");
    if (!name_ok(ns))
        return bad_record(why, cap, "namespace", "missing or not a name");
    if (!name_ok(name))
        return bad_record(why, cap, "name", "missing or not a name");
    if (!cJSON_IsNumber(gen) || !(gen->valuedouble >= 1 && gen->valuedouble < 9e15) ||
        gen->valuedouble != (double)(int64_t)gen->valuedouble)
        return bad_record(why, cap, "generation", "not a whole number >= 1");
    uint64_t ns_since = 0;
    if (!cJSON_IsString(at) || kevents_parse_time(at->valuestring, &ns_since) != 0)
        return bad_record(why, cap, "startedAt", "not an RFC 3339 time from 1970 to 2554-07-21");
    int n = snprintf(out->key, sizeof out->key, "%s/%s/%s", kn, ns->valuestring, name->valuestring);
    if (n < 0 || (size_t)n >= sizeof out->key) {
        memset(out, 0, sizeof *out);
        return bad_record(why, cap, "name", "too long");
    }
    out->generation = (int64_t)gen->valuedouble;
    out->started_ms = (int64_t)(ns_since / 1000000ull);
    return 0;
}
