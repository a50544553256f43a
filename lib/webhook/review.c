#include "webhook/review.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine/quantity.h"

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
    memset(r, 0, sizeof *r);
}

/* The pod's controller ownerReference (the one the ReplicaSet controller sets). */
static void find_owner(admrev_req *r)
{
    const cJSON *meta = obj_item(r->pod, "metadata");
    const cJSON *owners = cJSON_GetObjectItemCaseSensitive(meta, "ownerReferences");
    if (!cJSON_IsArray(owners))
        return;
    const cJSON *o;
    cJSON_ArrayForEach(o, owners)
    {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "controller")))
            continue;
        r->owner_kind = str_item(o, "kind");
        r->owner_name = str_item(o, "name");
        r->owner_uid = str_item(o, "uid");
        if (!r->owner_kind || !r->owner_name)
            r->owner_kind = r->owner_name = r->owner_uid = NULL;
        return;
    }
}

int admrev_parse(admrev_req *r, const char *body, size_t len, operr *err)
{
    memset(r, 0, sizeof *r);
    if (len > ADMREV_MAX_BODY)
        return operr_set(err, -E2BIG, "AdmissionReview: body of %zu bytes is over the %zu limit",
                         len, ADMREV_MAX_BODY);
    if (!body || len == 0)
        return operr_set(err, -EINVAL, "AdmissionReview: empty body");
    r->root = cJSON_ParseWithLength(body, len);
    if (!r->root)
        return operr_set(err, -EINVAL, "AdmissionReview: body is not JSON");
    int rc = -EINVAL;
    if (!cJSON_IsObject(r->root)) {
        operr_set(err, rc, "AdmissionReview: body is not a JSON object");
        goto out;
    }
    const char *api = str_item(r->root, "apiVersion"), *kind = str_item(r->root, "kind");
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
    const cJSON *req = obj_item(r->root, "request");
    if (!req) {
        operr_set(err, rc, "AdmissionReview: request is missing");
        goto out;
    }
    r->uid = str_item(req, "uid");
    if (!r->uid || !r->uid[0] || strlen(r->uid) > 128) {
        operr_set(err, rc, "AdmissionReview: request.uid is missing or invalid");
        goto out;
    }
    r->ns = str_item(req, "namespace");
    if (!r->ns || !r->ns[0]) {
        operr_set(err, rc, "AdmissionReview '%s': request.namespace is missing", r->uid);
        goto out;
    }
    r->operation = str_item(req, "operation");
    if (!r->operation) {
        operr_set(err, rc, "AdmissionReview '%s': request.operation is missing", r->uid);
        goto out;
    }
    r->dry_run = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "dryRun"));
    const cJSON *k = obj_item(req, "kind");
    const char *group = str_item(k, "group"), *version = str_item(k, "version");
    const char *rkind = str_item(k, "kind");
    r->pod = obj_item(req, "object");
    r->is_pod_create = group && !group[0] && version && strcmp(version, "v1") == 0 && rkind &&
                       strcmp(rkind, "Pod") == 0 && strcmp(r->operation, "CREATE") == 0 && r->pod;
    const cJSON *meta = obj_item(r->pod, "metadata");
    r->name = str_item(req, "name");
    if (!r->name || !r->name[0])
        r->name = str_item(meta, "name");
    if (!r->name)
        r->name = "";
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj_item(r->pod, "spec"), "containers");
    r->containers = cJSON_IsArray(c) ? c : NULL;
    find_owner(r);
    rc = 0;
out:
    if (rc < 0) {
        cJSON_Delete(r->root);
        memset(r, 0, sizeof *r);
    }
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

int admrev_base64(opbuf *out, const void *in, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = in;
    char q[4];
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        q[0] = tbl[(v >> 18) & 63];
        q[1] = tbl[(v >> 12) & 63];
        q[2] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? tbl[v & 63] : '=';
        rc = opbuf_append(out, q, 4);
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
            rc = admrev_base64(out, patch, patch_len);
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
    if (p->want_req && (rc = parse_q(&wr, p->want_req, cname, "request", reason, err)))
        return rc;
    if (p->want_lim && (rc = parse_q(&wl, p->want_lim, cname, "limit", reason, err)))
        return rc;
    if (p->have_req && (rc = parse_q(&hr, p->have_req, cname, "existing request", reason, err)))
        return rc;
    if (p->have_lim && (rc = parse_q(&hl, p->have_lim, cname, "existing limit", reason, err)))
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
        if ((rc = set_value(pc, 0, p->name, buf, p->have_req != NULL)))
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
