#include "webhook/review.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quantity.h"
#include "util/b64.h"
#include "util/jscan.h"

static const char *str_item(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *obj_item(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsObject(v) ? v : NULL;
}

void admrev_release(admrev_req *r)
{
    if (!r)
        return;
    cJSON_Delete(r->root);
    free(r->strs);
    memset(r, 0, sizeof *r);
}

/* ---- the byte-level scan of the review --------------------------------------------------
 *
 * One validating jscan pass over the whole body picks the few members admrev_req names;
 * only request.object.spec.containers becomes a cJSON tree (what admrev_patch walks). Each
 * member is the FIRST one with its name and must have the type cJSON_Get*Item + Is* would
 * accept (a later duplicate never stands in), so the result is the one the full cJSON parse
 * gave; test_admrev and fuzz_admission_review check that against it. */

typedef struct slot {
    int seen;    /* the member was met (its first occurrence is in t) */
    jscan_tok t; /* its value token (JSCAN_OBJ/ARR widened to the subtree) */
} slot;

typedef struct owner {
    slot controller, kind, name, uid;
} owner;

typedef struct scan {
    jscan s;
    slot api, kind, request;
    slot uid, ns, op, dry, rkindobj, rname, object;
    slot group, version, rkind;
    slot metadata, mname, owners, spec, containers;
    int have_owner; /* the first element with controller: true was met */
    owner own;
} scan;

static int key_is(const jscan_tok *k, const char *name)
{
    return jscan_streq(k, name, strlen(name));
}

/* The value after a key: scalars as they are, containers skipped (and widened). */
static int value(scan *sc, jscan_tok *t)
{
    int rc = jscan_next(&sc->s, t);
    if (!rc && (t->type == JSCAN_OBJ || t->type == JSCAN_ARR))
        rc = jscan_skip(&sc->s, t);
    return rc;
}

/* Read the value of a member into slot x when it is its first occurrence, else skip it. */
static int take(scan *sc, slot *x)
{
    jscan_tok t;
    int rc = value(sc, &t);
    if (!rc && !x->seen) {
        x->seen = 1;
        x->t = t;
    }
    return rc;
}

typedef int (*member_fn)(scan *sc, const jscan_tok *key, void *ud);

/* The members of the object whose '{' was just read, each handed to fn (which consumes its
 * value), up to and including the '}'. */
static int members(scan *sc, member_fn fn, void *ud)
{
    for (;;) {
        jscan_tok k;
        int rc = jscan_next(&sc->s, &k);
        if (rc)
            return rc;
        if (k.type == JSCAN_OBJ_END)
            return 0;
        if (k.type != JSCAN_KEY)
            return -EINVAL;
        rc = fn(sc, &k, ud);
        if (rc)
            return rc;
    }
}

/* A member whose value is descended into when it is the first occurrence and an object. */
static int descend(scan *sc, slot *x, member_fn fn, void *ud)
{
    if (x->seen)
        return take(sc, x);
    jscan_tok t;
    int rc = jscan_next(&sc->s, &t);
    if (rc)
        return rc;
    x->seen = 1;
    x->t = t;
    if (t.type == JSCAN_OBJ)
        return members(sc, fn, ud);
    if (t.type == JSCAN_ARR)
        return jscan_skip(&sc->s, &x->t);
    return 0;
}

static int m_owner(scan *sc, const jscan_tok *k, void *ud)
{
    owner *o = ud;
    if (key_is(k, "controller"))
        return take(sc, &o->controller);
    if (key_is(k, "kind"))
        return take(sc, &o->kind);
    if (key_is(k, "name"))
        return take(sc, &o->name);
    if (key_is(k, "uid"))
        return take(sc, &o->uid);
    jscan_tok t;
    return value(sc, &t);
}

/* ownerReferences: the first object element whose controller is true. */
static int owners(scan *sc)
{
    for (;;) {
        jscan_tok t;
        int rc = jscan_next(&sc->s, &t);
        if (rc || t.type == JSCAN_ARR_END)
            return rc;
        if (t.type != JSCAN_OBJ || sc->have_owner) {
            if (t.type == JSCAN_OBJ || t.type == JSCAN_ARR)
                rc = jscan_skip(&sc->s, &t);
            if (rc)
                return rc;
            continue;
        }
        owner o = {0};
        rc = members(sc, m_owner, &o);
        if (rc)
            return rc;
        if (o.controller.seen && o.controller.t.type == JSCAN_TRUE) {
            sc->have_owner = 1;
            sc->own = o;
        }
    }
}

static int m_metadata(scan *sc, const jscan_tok *k, void *ud)
{
    (void)ud;
    if (key_is(k, "name"))
        return take(sc, &sc->mname);
    if (key_is(k, "ownerReferences") && !sc->owners.seen) {
        int rc = jscan_next(&sc->s, &sc->owners.t);
        sc->owners.seen = 1;
        if (rc)
            return rc;
        if (sc->owners.t.type == JSCAN_ARR)
            return owners(sc);
        if (sc->owners.t.type == JSCAN_OBJ)
            return jscan_skip(&sc->s, &sc->owners.t);
        return 0;
    }
    jscan_tok t;
    return value(sc, &t);
}

static int m_spec(scan *sc, const jscan_tok *k, void *ud)
{
    (void)ud;
    if (key_is(k, "containers"))
        return take(sc, &sc->containers);
    jscan_tok t;
    return value(sc, &t);
}

static int m_object(scan *sc, const jscan_tok *k, void *ud)
{
    (void)ud;
    if (key_is(k, "metadata"))
        return descend(sc, &sc->metadata, m_metadata, NULL);
    if (key_is(k, "spec"))
        return descend(sc, &sc->spec, m_spec, NULL);
    jscan_tok t;
    return value(sc, &t);
}

static int m_rkind(scan *sc, const jscan_tok *k, void *ud)
{
    (void)ud;
    if (key_is(k, "group"))
        return take(sc, &sc->group);
    if (key_is(k, "version"))
        return take(sc, &sc->version);
    if (key_is(k, "kind"))
        return take(sc, &sc->rkind);
    jscan_tok t;
    return value(sc, &t);
}

static int m_request(scan *sc, const jscan_tok *k, void *ud)
{
    (void)ud;
    if (key_is(k, "uid"))
        return take(sc, &sc->uid);
    if (key_is(k, "namespace"))
        return take(sc, &sc->ns);
    if (key_is(k, "operation"))
        return take(sc, &sc->op);
    if (key_is(k, "dryRun"))
        return take(sc, &sc->dry);
    if (key_is(k, "name"))
        return take(sc, &sc->rname);
    if (key_is(k, "kind"))
        return descend(sc, &sc->rkindobj, m_rkind, NULL);
    if (key_is(k, "object"))
        return descend(sc, &sc->object, m_object, NULL);
    jscan_tok t;
    return value(sc, &t);
}

static int m_top(scan *sc, const jscan_tok *k, void *ud)
{
    (void)ud;
    if (key_is(k, "apiVersion"))
        return take(sc, &sc->api);
    if (key_is(k, "kind"))
        return take(sc, &sc->kind);
    if (key_is(k, "request"))
        return descend(sc, &sc->request, m_request, NULL);
    jscan_tok t;
    return value(sc, &t);
}

/* The whole body: 0 (valid JSON; top_obj says whether it is an object) or an error. */
static int scan_body(scan *sc, const char *body, size_t len, int *top_obj)
{
    jscan_init(&sc->s, body, len);
    jscan_tok t;
    int rc = jscan_next(&sc->s, &t);
    if (rc)
        return rc;
    *top_obj = t.type == JSCAN_OBJ;
    if (t.type == JSCAN_OBJ)
        rc = members(sc, m_top, NULL);
    else if (t.type == JSCAN_ARR)
        rc = jscan_skip(&sc->s, &t);
    if (!rc)
        rc = jscan_next(&sc->s, &t);
    return rc ? rc : t.type == JSCAN_EOF ? 0 : -EINVAL;
}

static int is_str(const slot *x)
{
    return x->seen && x->t.type == JSCAN_STR;
}

static int is_obj(const slot *x)
{
    return x->seen && x->t.type == JSCAN_OBJ;
}

/* String slots whose C-string value the request keeps, copied into one block. */
static int copy_strs(admrev_req *r, const slot *const *src, const char **const *dst, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (is_str(src[i]))
            total += jscan_strlen0(&src[i]->t) + 1;
    if (!(r->strs = malloc(total ? total : 1)))
        return -ENOMEM;
    char *at = r->strs;
    for (size_t i = 0; i < n; i++) {
        *dst[i] = NULL;
        if (is_str(src[i])) {
            *dst[i] = at;
            at += jscan_strcpy0(&src[i]->t, at) + 1;
        }
    }
    return 0;
}

int admrev_check_body(const char *body, size_t len, operr *err)
{
    if (len > ADMREV_MAX_BODY)
        return operr_set(err, -E2BIG, "AdmissionReview: body of %zu bytes is over the %zu limit",
                         len, ADMREV_MAX_BODY);
    if (!body || len == 0)
        return operr_set(err, -EINVAL, "AdmissionReview: empty body");
    return 0;
}

int admrev_parse(admrev_req *r, const char *body, size_t len, operr *err)
{
    memset(r, 0, sizeof *r);
    int checked = admrev_check_body(body, len, err);
    if (checked)
        return checked;
    scan *sc = calloc(1, sizeof *sc);
    if (!sc)
        return operr_set(err, -ENOMEM, "AdmissionReview: out of memory");
    int top_obj = 0, rc = scan_body(sc, body, len, &top_obj);
    const char *api, *kind, *group, *version, *rkind, *mname;
    const slot *const src[] = {&sc->api,      &sc->kind,     &sc->uid,    &sc->ns,    &sc->op,
                               &sc->group,    &sc->version,  &sc->rkind,  &sc->rname, &sc->mname,
                               &sc->own.kind, &sc->own.name, &sc->own.uid};
    const char **const dst[] = {
        &api,   &kind,    &r->uid, &r->ns,         &r->operation,  &group,       &version,
        &rkind, &r->name, &mname,  &r->owner_kind, &r->owner_name, &r->owner_uid};
    if (rc) {
        rc = operr_set(err, rc == -ENOMEM ? -ENOMEM : -EINVAL, "AdmissionReview: body is not JSON");
        goto out;
    }
    /* Members below an object that is not the first of its name, or not an object, were
     * never collected: the slots of request/object/metadata/spec/kind stay unseen. */
    rc = copy_strs(r, src, dst, sizeof src / sizeof src[0]);
    if (rc) {
        operr_set(err, rc, "AdmissionReview: out of memory");
        goto out;
    }
    rc = -EINVAL;
    if (!top_obj) {
        operr_set(err, rc, "AdmissionReview: body is not a JSON object");
        goto out;
    }
    if (!api || strcmp(api, "admission.k8s.io/v1") != 0) {
        operr_set(err, rc, "AdmissionReview: apiVersion \"%.64s\" is not admission.k8s.io/v1",
                  api ? api : "");
        goto out;
    }
    if (!kind || strcmp(kind, "AdmissionReview") != 0) {
        operr_set(err, rc, "AdmissionReview: kind \"%.64s\" is not AdmissionReview",
                  kind ? kind : "");
        goto out;
    }
    if (!is_obj(&sc->request)) {
        operr_set(err, rc, "AdmissionReview: request is missing");
        goto out;
    }
    if (!r->uid || !r->uid[0] || strlen(r->uid) > 128) {
        operr_set(err, rc, "AdmissionReview: request.uid is missing or invalid");
        goto out;
    }
    if (!r->ns || !r->ns[0]) {
        operr_set(err, rc, "AdmissionReview '%s': request.namespace is missing", r->uid);
        goto out;
    }
    if (!r->operation) {
        operr_set(err, rc, "AdmissionReview '%s': request.operation is missing", r->uid);
        goto out;
    }
    r->dry_run = sc->dry.seen && sc->dry.t.type == JSCAN_TRUE;
    int pod = is_obj(&sc->object);
    r->is_pod_create = group && !group[0] && version && strcmp(version, "v1") == 0 && rkind &&
                       strcmp(rkind, "Pod") == 0 && strcmp(r->operation, "CREATE") == 0 && pod;
    if (!r->name || !r->name[0])
        r->name = mname;
    if (!r->name)
        r->name = "";
    /* The controller ownerReference needs a kind and a name (else: none at all). */
    if (!r->owner_kind || !r->owner_name)
        r->owner_kind = r->owner_name = r->owner_uid = NULL;
    if (sc->containers.seen && sc->containers.t.type == JSCAN_ARR) {
        r->root = cJSON_ParseWithLength(sc->containers.t.p, sc->containers.t.n);
        if (!r->root) {
            rc = operr_set(err, -ENOMEM, "AdmissionReview '%s': out of memory", r->uid);
            goto out;
        }
        r->containers = r->root;
    }
    rc = 0;
out:
    free(sc);
    if (rc < 0)
        admrev_release(r);
    return rc;
}

int admrev_ptr_escape(opbuf *out, const char *s)
{
    int rc = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        if (*p == '~')
            rc = opbuf_append(out, "~0", 2);
        else if (*p == '/')
            rc = opbuf_append(out, "~1", 2);
        else
            rc = opbuf_append(out, p, 1);
    }
    return rc;
}

/* A JSON string literal; control characters as \u00XX. */
static int json_str(opbuf *out, const char *s)
{
    int rc = opbuf_append(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            rc = opbuf_append(out, e, 2);
        } else if (*p < 0x20) {
            rc = opbuf_printf(out, "\\u%04x", *p);
        } else {
            rc = opbuf_append(out, p, 1);
        }
    }
    return rc ? rc : opbuf_append(out, "\"", 1);
}

int admrev_response(opbuf *out, const char *uid, const char *patch, size_t patch_len)
{
    int rc = opbuf_puts(out, "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                             "\"response\":{\"uid\":");
    if (!rc)
        rc = json_str(out, uid ? uid : "");
    if (!rc)
        rc = opbuf_puts(out, ",\"allowed\":true");
    if (!rc && patch && patch_len > 0) {
        rc = opbuf_puts(out, ",\"patchType\":\"JSONPatch\",\"patch\":\"");
        if (!rc)
            rc = opb64_encode(out, patch, patch_len);
        if (!rc)
            rc = opbuf_puts(out, "\"");
    }
    return rc ? rc : opbuf_puts(out, "}}");
}

/* ---- the patch ------------------------------------------------------------------------- */

/* One resource of one container: what is there and what is wanted. */
typedef struct res_plan {
    const char *name; /* "cpu", "memory" */
    const char *want_req, *want_lim;
    const char *have_req, *have_lim; /* from the pod, NULL when absent */
} res_plan;

/* Per-container state while emitting ops: which parents exist (or were added). The ops
 * are written as JSON text straight into `ops` (paths and canonical quantities are plain
 * ASCII; json_str escapes anyway). */
typedef struct patch_ctx {
    opbuf ops;
    size_t idx;
    int has_resources, has_requests, has_limits;
    int nops;
} patch_ctx;

static int add_op(patch_ctx *pc, const char *op, const char *tail, const char *leaf,
                  const char *value)
{
    opbuf *o = &pc->ops;
    int rc = opbuf_printf(o, "%s{\"op\":\"%s\",\"path\":\"/spec/containers/%zu/resources%s",
                          pc->nops ? "," : "[", op, pc->idx, tail);
    if (!rc && leaf) {
        rc = opbuf_append(o, "/", 1);
        if (!rc)
            rc = admrev_ptr_escape(o, leaf); /* resource names are JSON-safe once escaped */
    }
    if (!rc)
        rc = opbuf_puts(o, "\",\"value\":");
    if (!rc)
        rc = value ? json_str(o, value) : opbuf_puts(o, "{}");
    if (!rc)
        rc = opbuf_puts(o, "}");
    if (!rc)
        pc->nops++;
    return rc;
}

/* Set resources.<which>.<res> = value, adding missing parents first. */
static int set_value(patch_ctx *pc, int limits, const char *res, const char *value, int existed)
{
    int rc = 0;
    if (!pc->has_resources) {
        rc = add_op(pc, "add", "", NULL, NULL);
        pc->has_resources = 1;
    }
    int *has = limits ? &pc->has_limits : &pc->has_requests;
    const char *tail = limits ? "/limits" : "/requests";
    if (!rc && !*has) {
        rc = add_op(pc, "add", tail, NULL, NULL);
        *has = 1;
    }
    return rc ? rc : add_op(pc, existed ? "replace" : "add", tail, res, value);
}

static int parse_q(kq *q, const char *s, const char *container, const char *what,
                   const char **reason, operr *err)
{
    operr e = {{0}};
    *q = (kq){0};
    int rc = kq_parse_str(q, s, &e);
    if (rc == 0 && (q->units < 0 || q->nanos < 0))
        rc = operr_set(&e, -EINVAL, "quantity \"%.64s\" is negative", s);
    if (rc < 0) {
        *reason = "bad-quantity";
        return operr_set(err, -EINVAL, "container '%s': %s: %s", container, what, e.msg);
    }
    return 0;
}

/* Plan and emit one resource; returns 0 or -EINVAL with the reason. */
static int plan_resource(patch_ctx *pc, const res_plan *p, const char *cname, const char **reason,
                         operr *err)
{
    kq wr, wl, hr, hl;
    int rc = 0;
    if (p->want_req)
        rc = parse_q(&wr, p->want_req, cname, "request", reason, err);
    if (!rc && p->want_lim)
        rc = parse_q(&wl, p->want_lim, cname, "limit", reason, err);
    if (!rc && p->have_req)
        rc = parse_q(&hr, p->have_req, cname, "existing request", reason, err);
    if (!rc && p->have_lim)
        rc = parse_q(&hl, p->have_lim, cname, "existing limit", reason, err);
    if (rc)
        return rc;

    const kq *req = p->want_req ? &wr : p->have_req ? &hr : NULL;
    const kq *lim = p->want_lim ? &wl : p->have_lim ? &hl : NULL;
    int raise_limit = 0;
    if (req && lim && kq_cmp(lim, req) < 0) {
        if (p->want_lim) {
            *reason = "limit-below-request";
            return operr_set(err, -EINVAL, "container '%s': %s limit %s is below the request",
                             cname, p->name, p->want_lim);
        }
        raise_limit = 1; /* the pod's own limit would fall below the new request */
    }
    char buf[KQ_STR_MAX];
    if (p->want_req && (!p->have_req || kq_cmp(&wr, &hr) != 0)) {
        if (kq_format(&wr, buf, sizeof buf) < 0)
            return -EINVAL;
        rc = set_value(pc, 0, p->name, buf, p->have_req != NULL);
        if (rc)
            return rc;
    }
    const kq *newlim = raise_limit ? req : p->want_lim ? &wl : NULL;
    if (newlim && (!p->have_lim || kq_cmp(newlim, &hl) != 0)) {
        if (kq_format(newlim, buf, sizeof buf) < 0)
            return -EINVAL;
        rc = set_value(pc, 1, p->name, buf, p->have_lim != NULL);
    }
    return rc;
}

static const admrev_want *want_for(const admrev_want *w, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (w[i].container && strcmp(w[i].container, name) == 0)
            return &w[i];
    return NULL;
}

int admrev_patch(const admrev_req *r, const admrev_want *wants, size_t n, opbuf *patch,
                 const char **reason, operr *err)
{
    static const char *unused;
    if (!reason)
        reason = &unused;
    *reason = NULL;
    if (!r->containers) {
        *reason = "no-containers";
        return operr_set(err, -EINVAL, "pod has no spec.containers");
    }
    patch_ctx pc = {0};
    opbuf_init(&pc.ops, patch->max);
    int rc = 0;
    size_t idx = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, r->containers)
    {
        if (idx >= ADMREV_MAX_CONTAINERS)
            break;
        const char *cname = str_item(c, "name");
        const admrev_want *w = cname ? want_for(wants, n, cname) : NULL;
        if (w) {
            const cJSON *res = obj_item(c, "resources");
            const cJSON *req = obj_item(res, "requests"), *lim = obj_item(res, "limits");
            pc.idx = idx;
            pc.has_resources = res != NULL;
            pc.has_requests = req != NULL;
            pc.has_limits = lim != NULL;
            res_plan plans[2] = {
                {"cpu", w->cpu_req, w->cpu_lim, str_item(req, "cpu"), str_item(lim, "cpu")},
                {"memory", w->mem_req, w->mem_lim, str_item(req, "memory"),
                 str_item(lim, "memory")},
            };
            for (int i = 0; i < 2 && rc == 0; i++)
                rc = plan_resource(&pc, &plans[i], cname, reason, err);
            if (rc)
                goto out;
        }
        idx++;
    }
    if (pc.nops > 0) {
        rc = opbuf_append(&pc.ops, "]", 1);
        if (!rc)
            rc = opbuf_append(patch, pc.ops.data, pc.ops.len);
        if (rc)
            goto out;
    }
    rc = pc.nops;
out:
    opbuf_release(&pc.ops);
    return rc;
}
