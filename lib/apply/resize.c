/*
 * resize: in-place pod resize planning, bodies and tracking. See resize.h.
 *
 * Values: the QoS class is computed on exact quantities (nano-units in a
 * 128-bit integer, summed over containers like resource.Quantity.Add); the
 * plan itself works in millicores and bytes, the units of the engine.
 */
#include "apply/resize.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/quantity.h"

typedef __int128 nanoval; /* quantity x 1e9 */

#define NANO ((nanoval)1000000000)

static const char *const res_name[2] = {"cpu", "memory"};

/* ---- names ------------------------------------------------------------------------------- */

const char *resize_mode_name(enum resize_mode m)
{
    switch (m) {
    case RESIZE_MODE_SUBRESOURCE:
        return "subresource";
    case RESIZE_MODE_POD_PATCH:
        return "pod-patch";
    case RESIZE_MODE_NONE:
        break;
    }
    return "none";
}

const char *resize_qos_name(enum resize_qos q)
{
    switch (q) {
    case RESIZE_QOS_GUARANTEED:
        return "Guaranteed";
    case RESIZE_QOS_BURSTABLE:
        return "Burstable";
    case RESIZE_QOS_BEST_EFFORT:
        break;
    }
    return "BestEffort";
}

const char *resize_outcome_name(enum resize_outcome o)
{
    switch (o) {
    case RESIZE_PATCH:
        return "patch";
    case RESIZE_UNCHANGED:
        return "unchanged";
    case RESIZE_SKIPPED:
        return "skipped";
    case RESIZE_REFUSED:
        return "refused";
    }
    return "?";
}

const char *resize_reason_name(enum resize_reason r)
{
    switch (r) {
    case RESIZE_R_NONE:
        return "";
    case RESIZE_R_DELETING:
        return "PodDeleting";
    case RESIZE_R_NOT_RUNNING:
        return "PodNotRunning";
    case RESIZE_R_PENDING:
        return "ResizePending";
    case RESIZE_R_IN_PROGRESS:
        return "ResizeInProgress";
    case RESIZE_R_QOS_MISMATCH:
        return "QoSClassMismatch";
    case RESIZE_R_TOO_MANY:
        return "TooManyContainers";
    case RESIZE_R_BAD_QUANTITY:
        return "BadQuantity";
    case RESIZE_R_QOS:
        return "QoSClassWouldChange";
    }
    return "?";
}

const char *resize_state_name(enum resize_state s)
{
    switch (s) {
    case RESIZE_ST_SENT:
        return "Sent";
    case RESIZE_ST_ACCEPTED:
        return "Accepted";
    case RESIZE_ST_IN_PROGRESS:
        return "InProgress";
    case RESIZE_ST_DEFERRED:
        return "Deferred";
    case RESIZE_ST_DONE:
        return "Done";
    case RESIZE_ST_RETRY:
        return "Retry";
    case RESIZE_ST_FALLBACK:
        return "Fallback";
    case RESIZE_ST_GONE:
        return "Gone";
    }
    return "?";
}

const char *resize_action_name(enum resize_action a)
{
    switch (a) {
    case RESIZE_ACT_WAIT:
        return "wait";
    case RESIZE_ACT_DONE:
        return "done";
    case RESIZE_ACT_RETRY:
        return "retry";
    case RESIZE_ACT_FALLBACK:
        return "fallback";
    case RESIZE_ACT_UNSUPPORTED:
        return "unsupported";
    case RESIZE_ACT_GONE:
        return "gone";
    }
    return "?";
}

/* ---- mode ------------------------------------------------------------------------------- */

enum resize_mode resize_mode_for(const kdisc_info *d, int allow_pod_patch)
{
    if (!d)
        return RESIZE_MODE_NONE;
    if (d->pods_resize == KDISC_YES)
        return RESIZE_MODE_SUBRESOURCE;
    /* 1.27-1.31 resized through the pod itself behind the alpha gate; a 1.32
     * server without the subresource has the gate off, and the first 422 says
     * so (resize_track_sent → UNSUPPORTED), so trying costs one request. */
    if (allow_pod_patch && d->pods_resize == KDISC_NO && d->have_version &&
        kdisc_version_cmp(&d->version, 1, 27) >= 0 && kdisc_version_cmp(&d->version, 1, 32) <= 0)
        return RESIZE_MODE_POD_PATCH;
    return RESIZE_MODE_NONE;
}

void resize_opts_defaults(resize_opts *o)
{
    o->allow_restart = 0;
    o->keep_guaranteed = 1;
}

/* ---- QoS --------------------------------------------------------------------------------- */

/* One container's cpu/memory as exact values, for GetPodQOS. */
typedef struct qres {
    nanoval req[2], lim[2];
    unsigned char has_req[2], has_lim[2];
} qres;

static int parse_nano(const char *s, nanoval *out)
{
    kq q;
    if (!s || kq_parse_str(&q, s, NULL) != 0)
        return -EINVAL;
    *out = (nanoval)q.units * NANO + q.nanos;
    return 0;
}

static void qres_from(const kproj_container *c, qres *q)
{
    memset(q, 0, sizeof(*q));
    for (int r = 0; r < 2; r++) {
        q->has_req[r] =
            parse_nano(kproj_kv_get(c->requests, c->nrequests, res_name[r]), &q->req[r]) == 0;
        q->has_lim[r] =
            parse_nano(kproj_kv_get(c->limits, c->nlimits, res_name[r]), &q->lim[r]) == 0;
        /* API defaulting: a limit without a request makes the request. */
        if (q->has_lim[r] && !q->has_req[r]) {
            q->req[r] = q->lim[r];
            q->has_req[r] = 1;
        }
    }
}

/* Kubernetes' GetPodQOS over already-extracted containers (regular + init). */
static enum resize_qos qos_compute(const qres *c, size_t n)
{
    nanoval sreq[2] = {0, 0}, slim[2] = {0, 0};
    int hreq[2] = {0, 0}, hlim[2] = {0, 0}, guaranteed = 1;
    for (size_t i = 0; i < n; i++) {
        int found[2] = {0, 0};
        for (int r = 0; r < 2; r++) {
            if (c[i].has_req[r] && c[i].req[r] > 0) {
                sreq[r] += c[i].req[r];
                hreq[r] = 1;
            }
            if (c[i].has_lim[r] && c[i].lim[r] > 0) {
                slim[r] += c[i].lim[r];
                hlim[r] = 1;
                found[r] = 1;
            }
        }
        if (!found[0] || !found[1])
            guaranteed = 0;
    }
    if (!hreq[0] && !hreq[1] && !hlim[0] && !hlim[1])
        return RESIZE_QOS_BEST_EFFORT;
    if (guaranteed) {
        for (int r = 0; r < 2; r++)
            if (hreq[r] && (!hlim[r] || slim[r] != sreq[r]))
                guaranteed = 0;
    }
    if (guaranteed && hreq[0] + hreq[1] == hlim[0] + hlim[1])
        return RESIZE_QOS_GUARANTEED;
    return RESIZE_QOS_BURSTABLE;
}

/* Pod resources: containers first, then init containers. */
typedef struct podres {
    size_t n, ncont;
    qres c[2 * RESIZE_MAX_CONTAINERS];
} podres;

static int podres_from(const kproj_obj *pod, podres *p)
{
    if (pod->ncontainers > RESIZE_MAX_CONTAINERS || pod->ninit_containers > RESIZE_MAX_CONTAINERS)
        return -E2BIG;
    p->ncont = pod->ncontainers;
    p->n = 0;
    for (size_t i = 0; i < pod->ncontainers; i++)
        qres_from(&pod->containers[i], &p->c[p->n++]);
    for (size_t i = 0; i < pod->ninit_containers; i++)
        qres_from(&pod->init_containers[i], &p->c[p->n++]);
    return 0;
}

enum resize_qos resize_qos_of(const kproj_obj *pod)
{
    podres p;
    if (podres_from(pod, &p) != 0)
        return RESIZE_QOS_BURSTABLE;
    return qos_compute(p.c, p.n);
}

/* ---- planning ---------------------------------------------------------------------------- */

static void add_note(resize_plan *pl, enum resize_note_kind kind, const char *container,
                     const char *resource)
{
    if (pl->nnotes >= RESIZE_MAX_NOTES) {
        pl->notes_dropped++;
        return;
    }
    resize_note *n = &pl->notes[pl->nnotes++];
    n->kind = kind;
    snprintf(n->container, sizeof(n->container), "%s", container ? container : "");
    snprintf(n->resource, sizeof(n->resource), "%s", resource ? resource : "");
}

static int parse_res(int r, const char *s, int64_t *out)
{
    if (!s)
        return -ENOENT;
    int rc = r == RESIZE_CPU ? kq_parse_cpu_milli(s, out, NULL) : kq_parse_bytes(s, out, NULL);
    if (rc == 0 && *out <= 0)
        rc = -EINVAL; /* a zero recommendation is meaningless and would drop the QoS term */
    return rc;
}

static nanoval to_nano(int r, int64_t v)
{
    return r == RESIZE_CPU ? (nanoval)v * 1000000 : (nanoval)v * NANO;
}

/* Working state for one container of spec.containers. */
typedef struct cwork {
    int64_t cur_req[2], cur_lim[2];
    unsigned char cur_has_req[2], cur_has_lim[2];
    int64_t req[2], lim[2];
    unsigned char has_req[2], has_lim[2];
    unsigned char touched; /* a want named this container */
} cwork;

static void cwork_from(const kproj_container *c, cwork *w)
{
    memset(w, 0, sizeof(*w));
    for (int r = 0; r < 2; r++) {
        int64_t v;
        if (parse_res(r, kproj_kv_get(c->requests, c->nrequests, res_name[r]), &v) == 0) {
            w->cur_req[r] = v;
            w->cur_has_req[r] = 1;
        }
        if (parse_res(r, kproj_kv_get(c->limits, c->nlimits, res_name[r]), &v) == 0) {
            w->cur_lim[r] = v;
            w->cur_has_lim[r] = 1;
        }
        if (w->cur_has_lim[r] && !w->cur_has_req[r]) {
            w->cur_req[r] = w->cur_lim[r];
            w->cur_has_req[r] = 1;
        }
        w->req[r] = w->cur_req[r];
        w->lim[r] = w->cur_lim[r];
        w->has_req[r] = w->cur_has_req[r];
        w->has_lim[r] = w->cur_has_lim[r];
    }
}

static int req_changed(const cwork *w, int r)
{
    return w->has_req[r] && (!w->cur_has_req[r] || w->req[r] != w->cur_req[r]);
}

static int lim_changed(const cwork *w, int r)
{
    return w->has_lim[r] && (!w->cur_has_lim[r] || w->lim[r] != w->cur_lim[r]);
}

static void revert(cwork *w, int r)
{
    w->req[r] = w->cur_req[r];
    w->has_req[r] = w->cur_has_req[r];
    w->lim[r] = w->cur_lim[r];
    w->has_lim[r] = w->cur_has_lim[r];
}

/* Overwrite the exact values of container i with the changed ones. */
static void apply_work(podres *p, const podres *base, const cwork *w, size_t ncont)
{
    *p = *base;
    for (size_t i = 0; i < ncont; i++) {
        for (int r = 0; r < 2; r++) {
            if (req_changed(&w[i], r)) {
                p->c[i].req[r] = to_nano(r, w[i].req[r]);
                p->c[i].has_req[r] = 1;
            }
            if (lim_changed(&w[i], r)) {
                p->c[i].lim[r] = to_nano(r, w[i].lim[r]);
                p->c[i].has_lim[r] = 1;
            }
        }
    }
}

static const char *policy_of(const kproj_container *c, int r)
{
    return kproj_kv_get(c->resize_policy, c->nresize_policy, res_name[r]);
}

static int find_container(const kproj_container *cs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (cs[i].name && name && strcmp(cs[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Scratch space for resize_plan_make: too big for a small stack. */
typedef struct plan_scratch {
    podres base, after, probe;
    cwork w[RESIZE_MAX_CONTAINERS];
} plan_scratch;

static void plan_result(resize_plan *pl, enum resize_outcome o, enum resize_reason r,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void plan_result(resize_plan *pl, enum resize_outcome o, enum resize_reason r,
                        const char *fmt, ...)
{
    va_list ap;
    pl->outcome = o;
    pl->reason = r;
    va_start(ap, fmt);
    vsnprintf(pl->detail, sizeof(pl->detail), fmt, ap);
    va_end(ap);
}

static int pod_skip(const kproj_obj *pod, int deleting, resize_plan *pl)
{
    const char *as = pod->resize_status;
    if (deleting) {
        plan_result(pl, RESIZE_SKIPPED, RESIZE_R_DELETING, "pod is being deleted");
    } else if (!pod->phase || strcmp(pod->phase, "Running") != 0) {
        plan_result(pl, RESIZE_SKIPPED, RESIZE_R_NOT_RUNNING, "pod phase is %s",
                    pod->phase ? pod->phase : "unknown");
    } else if (pod->resize_pending) {
        plan_result(pl, RESIZE_SKIPPED, RESIZE_R_PENDING, "a resize is pending (%s)",
                    pod->resize_pending[0] ? pod->resize_pending : "PodResizePending");
    } else if (as && (strcmp(as, "Deferred") == 0 || strcmp(as, "Infeasible") == 0)) {
        plan_result(pl, RESIZE_SKIPPED, RESIZE_R_PENDING, "a resize is pending (%s)", as);
    } else if (pod->resize_in_progress) {
        plan_result(pl, RESIZE_SKIPPED, RESIZE_R_IN_PROGRESS, "a resize is in progress");
    } else if (as && as[0]) {
        plan_result(pl, RESIZE_SKIPPED, RESIZE_R_IN_PROGRESS, "a resize is in progress (%s)", as);
    } else {
        return 0;
    }
    return 1;
}

/* Name what makes the class change: the first changed resource whose revert
 * alone restores the class, else the first changed resource. */
static void name_culprit(plan_scratch *s, const kproj_obj *pod, enum resize_qos before,
                         enum resize_qos after, resize_plan *pl)
{
    int first_i = -1, first_r = 0;
    for (size_t i = 0; i < pod->ncontainers; i++) {
        for (int r = 0; r < 2; r++) {
            if (!req_changed(&s->w[i], r) && !lim_changed(&s->w[i], r))
                continue;
            if (first_i < 0) {
                first_i = (int)i;
                first_r = r;
            }
            cwork keep = s->w[i];
            revert(&s->w[i], r);
            apply_work(&s->probe, &s->base, s->w, pod->ncontainers);
            s->w[i] = keep;
            if (qos_compute(s->probe.c, s->probe.n) == before) {
                first_i = (int)i;
                first_r = r;
                goto found;
            }
        }
    }
found:
    plan_result(pl, RESIZE_REFUSED, RESIZE_R_QOS,
                "container \"%s\" %s: the QoS class would change from %s to %s",
                first_i >= 0 ? pod->containers[first_i].name : "?", res_name[first_r],
                resize_qos_name(before), resize_qos_name(after));
}

void resize_plan_make(const kproj_obj *pod, int deleting, const resize_want *want, size_t nwant,
                      const resize_opts *opts, resize_plan *pl)
{
    plan_scratch s; /* ~32 KiB of stack: fine on the loop and libuv's worker threads */
    resize_opts dflt;
    if (!opts) {
        resize_opts_defaults(&dflt);
        opts = &dflt;
    }
    memset(pl, 0, sizeof(*pl));
    if (podres_from(pod, &s.base) != 0) {
        plan_result(pl, RESIZE_SKIPPED, RESIZE_R_TOO_MANY, "more than %d containers",
                    RESIZE_MAX_CONTAINERS);
        return;
    }
    pl->qos_before = pl->qos_after = qos_compute(s.base.c, s.base.n);
    if (pod_skip(pod, deleting, pl))
        return;
    if (pod->qos_class && pod->qos_class[0] &&
        strcmp(pod->qos_class, resize_qos_name(pl->qos_before)) != 0) {
        plan_result(pl, RESIZE_SKIPPED, RESIZE_R_QOS_MISMATCH,
                    "status.qosClass %s differs from the spec's %s", pod->qos_class,
                    resize_qos_name(pl->qos_before));
        return;
    }

    /* 2. wanted values per container. */
    for (size_t i = 0; i < pod->ncontainers; i++)
        cwork_from(&pod->containers[i], &s.w[i]);
    for (size_t k = 0; k < nwant; k++) {
        const resize_want *wt = &want[k];
        int i = find_container(pod->containers, pod->ncontainers, wt->name);
        if (i < 0) {
            int init = find_container(pod->init_containers, pod->ninit_containers, wt->name) >= 0;
            add_note(pl, init ? RESIZE_N_INIT_CONTAINER : RESIZE_N_NO_CONTAINER, wt->name, "");
            continue;
        }
        const char *rq[2] = {wt->cpu_request, wt->memory_request};
        const char *lm[2] = {wt->cpu_limit, wt->memory_limit};
        cwork *w = &s.w[i];
        w->touched = 1;
        for (int r = 0; r < 2; r++) {
            int64_t v;
            int rc = parse_res(r, rq[r], &v);
            if (rc == 0) {
                w->req[r] = v;
                w->has_req[r] = 1;
            } else if (rc != -ENOENT) {
                plan_result(pl, RESIZE_SKIPPED, RESIZE_R_BAD_QUANTITY,
                            "container \"%s\" %s request \"%.40s\" is not a positive quantity",
                            wt->name, res_name[r], rq[r]);
                return;
            }
            rc = parse_res(r, lm[r], &v);
            if (rc == 0) {
                w->lim[r] = v;
                w->has_lim[r] = 1;
            } else if (rc != -ENOENT) {
                plan_result(pl, RESIZE_SKIPPED, RESIZE_R_BAD_QUANTITY,
                            "container \"%s\" %s limit \"%.40s\" is not a positive quantity",
                            wt->name, res_name[r], lm[r]);
                return;
            }
        }
    }
    for (size_t i = 0; i < pod->ncontainers; i++) {
        const kproj_container *c = &pod->containers[i];
        cwork *w = &s.w[i];
        if (!w->touched)
            continue; /* containers nobody asked about are left exactly as they are */
        for (int r = 0; r < 2; r++) {
            /* A limit is never below its request (the server would refuse it). */
            if (w->has_lim[r] && w->has_req[r] && w->lim[r] < w->req[r]) {
                w->lim[r] = w->req[r];
                add_note(pl, RESIZE_N_LIMIT_RAISED, c->name, res_name[r]);
            }
            if (!req_changed(w, r) && !lim_changed(w, r))
                continue;
            const char *pol = policy_of(c, r);
            if (pol && strcmp(pol, "RestartContainer") == 0 && !opts->allow_restart) {
                revert(w, r);
                add_note(pl, RESIZE_N_HELD_RESTART, c->name, res_name[r]);
            }
        }
    }

    /* 3. QoS guard. */
    apply_work(&s.after, &s.base, s.w, pod->ncontainers);
    pl->qos_after = qos_compute(s.after.c, s.after.n);
    if (pl->qos_before == RESIZE_QOS_GUARANTEED && pl->qos_after != RESIZE_QOS_GUARANTEED &&
        opts->keep_guaranteed) {
        for (size_t i = 0; i < pod->ncontainers; i++) {
            cwork *w = &s.w[i];
            for (int r = 0; r < 2; r++) {
                if (req_changed(w, r) && (!w->has_lim[r] || w->lim[r] != w->req[r])) {
                    w->lim[r] = w->req[r];
                    w->has_lim[r] = 1;
                    add_note(pl, RESIZE_N_LIMIT_FOLLOWS, pod->containers[i].name, res_name[r]);
                }
            }
        }
        apply_work(&s.after, &s.base, s.w, pod->ncontainers);
        pl->qos_after = qos_compute(s.after.c, s.after.n);
    }
    if (pl->qos_after != pl->qos_before) {
        name_culprit(&s, pod, pl->qos_before, pl->qos_after, pl);
        return;
    }

    /* 4. items. */
    for (size_t i = 0; i < pod->ncontainers; i++) {
        const cwork *w = &s.w[i];
        resize_item it;
        memset(&it, 0, sizeof(it));
        it.name = pod->containers[i].name;
        int any = 0;
        for (int r = 0; r < 2; r++) {
            it.req[r] = w->req[r];
            it.lim[r] = w->lim[r];
            it.set_req[r] = (unsigned char)req_changed(w, r);
            it.set_lim[r] = (unsigned char)lim_changed(w, r);
            any |= it.set_req[r] | it.set_lim[r];
        }
        if (any)
            pl->items[pl->nitems++] = it;
    }
    if (pl->nitems == 0) {
        plan_result(pl, RESIZE_UNCHANGED, RESIZE_R_NONE, "%s",
                    pl->nnotes ? "nothing to change (see notes)" : "nothing to change");
        return;
    }
    plan_result(pl, RESIZE_PATCH, RESIZE_R_NONE, "resize %zu container(s)", pl->nitems);
}

/* ---- bodies ------------------------------------------------------------------------------ */

static int put_json_str(opbuf *b, const char *s)
{
    int rc = opbuf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        if (*p == '"' || *p == '\\')
            rc = opbuf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            rc = opbuf_printf(b, "\\u%04x", *p);
        else
            rc = opbuf_append(b, p, 1);
    }
    return rc ? rc : opbuf_puts(b, "\"");
}

static int put_values(opbuf *b, const char *key, const int64_t *v, const unsigned char *set)
{
    char q[KQ_STR_MAX];
    int rc = 0, first = 1;
    if (!set[0] && !set[1])
        return 0;
    rc = opbuf_printf(b, "\"%s\":{", key);
    for (int r = 0; !rc && r < 2; r++) {
        if (!set[r])
            continue;
        int n = r == RESIZE_CPU ? kq_fmt_cpu_milli(v[r], q, sizeof(q))
                                : kq_fmt_mem_bytes(v[r], q, sizeof(q));
        if (n < 0)
            return n;
        rc = opbuf_printf(b, "%s\"%s\":\"%s\"", first ? "" : ",", res_name[r], q);
        first = 0;
    }
    return rc ? rc : opbuf_puts(b, "}");
}

int resize_body(const resize_plan *plan, enum resize_mode mode, const char *uid, opbuf *out)
{
    int rc;
    if (!plan || plan->outcome != RESIZE_PATCH || plan->nitems == 0 || mode == RESIZE_MODE_NONE)
        return -EINVAL;
    rc = opbuf_puts(out, "{");
    if (!rc && mode == RESIZE_MODE_POD_PATCH && uid && uid[0]) {
        rc = opbuf_puts(out, "\"metadata\":{\"uid\":");
        if (!rc)
            rc = put_json_str(out, uid);
        if (!rc)
            rc = opbuf_puts(out, "},");
    }
    if (!rc)
        rc = opbuf_puts(out, "\"spec\":{\"containers\":[");
    for (size_t i = 0; !rc && i < plan->nitems; i++) {
        const resize_item *it = &plan->items[i];
        int has_req = it->set_req[0] || it->set_req[1];
        int has_lim = it->set_lim[0] || it->set_lim[1];
        rc = opbuf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        if (!rc)
            rc = put_json_str(out, it->name ? it->name : "");
        if (!rc)
            rc = opbuf_puts(out, ",\"resources\":{");
        if (!rc)
            rc = put_values(out, "requests", it->req, it->set_req);
        if (!rc && has_req && has_lim)
            rc = opbuf_puts(out, ",");
        if (!rc)
            rc = put_values(out, "limits", it->lim, it->set_lim);
        if (!rc)
            rc = opbuf_puts(out, "}}");
    }
    if (!rc)
        rc = opbuf_puts(out, "]}}");
    return rc;
}

int resize_path(enum resize_mode mode, const char *ns, const char *name, opbuf *out)
{
    if (mode == RESIZE_MODE_NONE || !ns || !*ns || !name || !*name)
        return -EINVAL;
    return kpath(out, &KRES_PODS, ns, name, mode == RESIZE_MODE_SUBRESOURCE ? "resize" : NULL);
}

/* ---- observing --------------------------------------------------------------------------- */

static const cJSON *jget(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = jget(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void copy(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
}

int resize_observe(const cJSON *pod, resize_obs *o)
{
    memset(o, 0, sizeof(*o));
    if (!cJSON_IsObject(pod))
        return -EINVAL;
    const cJSON *md = jget(pod, "metadata"), *st = jget(pod, "status");
    copy(o->uid, sizeof(o->uid), jstr(md, "uid"));
    o->deleting = jstr(md, "deletionTimestamp") != NULL;
    const char *phase = jstr(st, "phase");
    o->running = phase && strcmp(phase, "Running") == 0;
    copy(o->alpha_status, sizeof(o->alpha_status), jstr(st, "resize"));
    const cJSON *c, *conds = jget(st, "conditions");
    if (!cJSON_IsArray(conds))
        conds = NULL;
    cJSON_ArrayForEach(c, conds)
    {
        const char *type = jstr(c, "type"), *cs = jstr(c, "status"), *reason = jstr(c, "reason");
        if (!type || !cs || strcmp(cs, "True") != 0)
            continue;
        if (strcmp(type, "PodResizePending") == 0 && !o->pending[0])
            copy(o->pending, sizeof(o->pending), reason && *reason ? reason : "Pending");
        else if (strcmp(type, "PodResizeInProgress") == 0 && !o->in_progress) {
            o->in_progress = 1;
            copy(o->in_progress_reason, sizeof(o->in_progress_reason), reason);
        }
    }
    const cJSON *cst = jget(st, "containerStatuses");
    if (!cJSON_IsArray(cst))
        cst = NULL;
    cJSON_ArrayForEach(c, cst)
    {
        const char *name = jstr(c, "name");
        if (!name || o->nstatus >= RESIZE_MAX_CONTAINERS)
            continue;
        const cJSON *res = jget(c, "resources");
        const cJSON *rq = jget(res, "requests"), *lm = jget(res, "limits");
        size_t k = o->nstatus++;
        copy(o->status[k].name, sizeof(o->status[k].name), name);
        for (int r = 0; r < 2; r++) {
            int64_t v;
            if (parse_res(r, jstr(rq, res_name[r]), &v) == 0) {
                o->status[k].req[r] = v;
                o->status[k].has_req[r] = 1;
            }
            if (parse_res(r, jstr(lm, res_name[r]), &v) == 0) {
                o->status[k].lim[r] = v;
                o->status[k].has_lim[r] = 1;
            }
        }
    }
    return 0;
}

int resize_observe_pod(const kproj_obj *pod, resize_obs *o)
{
    memset(o, 0, sizeof(*o));
    if (!pod || pod->kind != KPROJ_POD)
        return -EINVAL;
    copy(o->uid, sizeof(o->uid), pod->uid);
    o->deleting = pod->deleting;
    o->running = pod->phase && strcmp(pod->phase, "Running") == 0;
    copy(o->alpha_status, sizeof(o->alpha_status), pod->resize_status);
    if (pod->resize_pending)
        copy(o->pending, sizeof(o->pending),
             *pod->resize_pending ? pod->resize_pending : "Pending");
    o->in_progress = pod->resize_in_progress;
    copy(o->in_progress_reason, sizeof(o->in_progress_reason), pod->resize_in_progress_reason);
    for (size_t i = 0; i < pod->ncontainers && o->nstatus < RESIZE_MAX_CONTAINERS; i++) {
        const kproj_container *c = &pod->containers[i];
        if (!c->name)
            continue;
        size_t k = o->nstatus++;
        copy(o->status[k].name, sizeof(o->status[k].name), c->name);
        for (int r = 0; r < 2; r++) {
            int64_t v;
            if (parse_res(r, kproj_kv_get(c->status_requests, c->nstatus_requests, res_name[r]),
                          &v) == 0) {
                o->status[k].req[r] = v;
                o->status[k].has_req[r] = 1;
            }
            if (parse_res(r, kproj_kv_get(c->status_limits, c->nstatus_limits, res_name[r]), &v) ==
                0) {
                o->status[k].lim[r] = v;
                o->status[k].has_lim[r] = 1;
            }
        }
    }
    return 0;
}

/* ---- tracking ---------------------------------------------------------------------------- */

#define RESIZE_DEFERRED_MS (10u * 60u * 1000u)
#define RESIZE_STALL_MS    (5u * 60u * 1000u)

void resize_track_init(resize_track *t, const resize_plan *plan, enum resize_mode mode,
                       const char *pod_uid, uint64_t now_ms)
{
    memset(t, 0, sizeof(*t));
    t->state = RESIZE_ST_SENT;
    t->mode = mode;
    copy(t->uid, sizeof(t->uid), pod_uid);
    t->sent_ms = now_ms;
    t->deferred_ms = RESIZE_DEFERRED_MS;
    t->stall_ms = RESIZE_STALL_MS;
    for (size_t i = 0; plan && i < plan->nitems && i < RESIZE_MAX_CONTAINERS; i++) {
        const resize_item *it = &plan->items[i];
        copy(t->items[i].name, sizeof(t->items[i].name), it->name);
        for (int r = 0; r < 2; r++) {
            t->items[i].req[r] = it->req[r];
            t->items[i].lim[r] = it->lim[r];
            t->items[i].set_req[r] = it->set_req[r];
            t->items[i].set_lim[r] = it->set_lim[r];
        }
        t->nitems++;
    }
}

static enum resize_action finish(resize_track *t, enum resize_state st, enum resize_action a,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum resize_action finish(resize_track *t, enum resize_state st, enum resize_action a,
                                 const char *fmt, ...)
{
    va_list ap;
    t->state = st;
    va_start(ap, fmt);
    vsnprintf(t->detail, sizeof(t->detail), fmt, ap);
    va_end(ap);
    return a;
}

enum resize_action resize_track_sent(resize_track *t, long http_status, const kstatus *st,
                                     uint64_t now_ms)
{
    const char *msg = st ? st->message : "";
    const char *reason = st ? st->reason : "";
    if (t->state != RESIZE_ST_SENT)
        return RESIZE_ACT_WAIT;
    if (http_status >= 200 && http_status < 300) {
        t->state = RESIZE_ST_ACCEPTED;
        t->accepted_ms = now_ms;
        t->detail[0] = '\0';
        return RESIZE_ACT_WAIT;
    }
    if (http_status == 0)
        return finish(t, RESIZE_ST_RETRY, RESIZE_ACT_RETRY, "no answer from the API server");
    if (http_status == 404) {
        if (strcmp(reason, "NotFound") == 0)
            return finish(t, RESIZE_ST_GONE, RESIZE_ACT_GONE, "pod not found");
        return finish(t, RESIZE_ST_FALLBACK, RESIZE_ACT_UNSUPPORTED,
                      "%s resize not served (404): %.160s", resize_mode_name(t->mode), msg);
    }
    if (http_status == 405)
        return finish(t, RESIZE_ST_FALLBACK, RESIZE_ACT_UNSUPPORTED, "%s resize not allowed (405)",
                      resize_mode_name(t->mode));
    if ((http_status == 409 || http_status == 422) && strstr(msg, "UID") != NULL)
        return finish(t, RESIZE_ST_GONE, RESIZE_ACT_GONE, "pod replaced: %.200s", msg);
    if ((http_status == 409 || http_status == 422) && strstr(msg, "uid") != NULL &&
        strstr(msg, "immutable") != NULL)
        return finish(t, RESIZE_ST_GONE, RESIZE_ACT_GONE, "pod replaced: %.200s", msg);
    if (http_status == 422 && strstr(msg, "may not change fields other than") != NULL)
        return finish(t, RESIZE_ST_FALLBACK, RESIZE_ACT_UNSUPPORTED,
                      "in-place resize disabled on the server: %.160s", msg);
    if (http_status == 409 || http_status == 429 || http_status >= 500)
        return finish(t, RESIZE_ST_RETRY, RESIZE_ACT_RETRY, "HTTP %ld: %.200s", http_status, msg);
    return finish(t, RESIZE_ST_FALLBACK, RESIZE_ACT_FALLBACK, "resize rejected (HTTP %ld): %.200s",
                  http_status, msg);
}

static int targets_met(const resize_track *t, const resize_obs *o)
{
    for (size_t i = 0; i < t->nitems; i++) {
        size_t k;
        for (k = 0; k < o->nstatus; k++)
            if (strcmp(o->status[k].name, t->items[i].name) == 0)
                break;
        if (k == o->nstatus)
            return 0;
        for (int r = 0; r < 2; r++) {
            if (t->items[i].set_req[r] &&
                (!o->status[k].has_req[r] || o->status[k].req[r] != t->items[i].req[r]))
                return 0;
            if (t->items[i].set_lim[r] &&
                (!o->status[k].has_lim[r] || o->status[k].lim[r] != t->items[i].lim[r]))
                return 0;
        }
    }
    return 1;
}

static enum resize_action terminal_action(const resize_track *t)
{
    switch (t->state) {
    case RESIZE_ST_DONE:
        return RESIZE_ACT_DONE;
    case RESIZE_ST_RETRY:
        return RESIZE_ACT_RETRY;
    case RESIZE_ST_FALLBACK:
        return RESIZE_ACT_FALLBACK;
    case RESIZE_ST_GONE:
        return RESIZE_ACT_GONE;
    default:
        return RESIZE_ACT_WAIT;
    }
}

/* Deadlines; WAIT when none passed. */
static enum resize_action check_deadlines(resize_track *t, uint64_t now_ms)
{
    if (t->state == RESIZE_ST_DEFERRED) {
        if (now_ms - t->deferred_since_ms >= t->deferred_ms)
            return finish(t, RESIZE_ST_FALLBACK, RESIZE_ACT_FALLBACK,
                          "resize deferred by the kubelet for %llu s",
                          (unsigned long long)((now_ms - t->deferred_since_ms) / 1000));
        return RESIZE_ACT_WAIT;
    }
    uint64_t since = t->state == RESIZE_ST_SENT ? t->sent_ms : t->accepted_ms;
    if (now_ms >= since && now_ms - since >= t->stall_ms)
        return finish(t, RESIZE_ST_FALLBACK, RESIZE_ACT_FALLBACK,
                      "resize not completed within %llu s",
                      (unsigned long long)(t->stall_ms / 1000));
    return RESIZE_ACT_WAIT;
}

enum resize_action resize_track_step(resize_track *t, const resize_obs *o, uint64_t now_ms)
{
    enum resize_action term = terminal_action(t);
    if (term != RESIZE_ACT_WAIT)
        return term;
    if (!o)
        return check_deadlines(t, now_ms);
    if (t->uid[0] && o->uid[0] && strcmp(t->uid, o->uid) != 0)
        return finish(t, RESIZE_ST_GONE, RESIZE_ACT_GONE, "pod replaced (uid %s)", o->uid);
    if (o->deleting)
        return finish(t, RESIZE_ST_GONE, RESIZE_ACT_GONE, "pod is being deleted");
    if (!o->running)
        return finish(t, RESIZE_ST_GONE, RESIZE_ACT_GONE, "pod is no longer running");
    if (t->state == RESIZE_ST_SENT)
        return check_deadlines(t, now_ms); /* the PATCH has not answered yet */

    const char *pend = o->pending[0] ? o->pending : NULL;
    if (!pend &&
        (strcmp(o->alpha_status, "Deferred") == 0 || strcmp(o->alpha_status, "Infeasible") == 0))
        pend = o->alpha_status;
    int progressing = o->in_progress || strcmp(o->alpha_status, "InProgress") == 0 ||
                      strcmp(o->alpha_status, "Proposed") == 0;

    if (!pend && !progressing && targets_met(t, o))
        return finish(t, RESIZE_ST_DONE, RESIZE_ACT_DONE, "resized");
    if (pend && strcmp(pend, "Infeasible") == 0)
        return finish(t, RESIZE_ST_FALLBACK, RESIZE_ACT_FALLBACK, "resize infeasible on the node");
    if (o->in_progress && strcmp(o->in_progress_reason, "Error") == 0)
        return finish(t, RESIZE_ST_FALLBACK, RESIZE_ACT_FALLBACK, "the kubelet failed the resize");
    if (pend) {
        if (t->state != RESIZE_ST_DEFERRED) {
            t->state = RESIZE_ST_DEFERRED;
            t->deferred_since_ms = now_ms;
        }
        return check_deadlines(t, now_ms);
    }
    if (t->state == RESIZE_ST_DEFERRED) {
        /* Deferral over: the time spent deferred does not count as a stall. */
        t->accepted_ms += now_ms - t->deferred_since_ms;
    }
    t->state = progressing ? RESIZE_ST_IN_PROGRESS : RESIZE_ST_ACCEPTED;
    return check_deadlines(t, now_ms);
}
