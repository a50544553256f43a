/*
 * plan: manifests, policy, and the run (usage → engine). See plan.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/quantity.h"
#include "plan/internal.h"
#include "policy/toengine.h"
#include "util/yaml2json.h"

void plan_init(plan *p)
{
    memset(p, 0, sizeof *p);
    pol_init(&p->pol);
    opmap_init(&p->by_id);
    opmap_init(&p->by_name);
    opmap_init(&p->series);
    /* The CRD defaults: a policy with an empty spec (but for the selector,
     * which the CRD requires). */
    cJSON *obj = cJSON_Parse("{\"metadata\":{\"name\":\"default\"},"
                             "\"spec\":{\"selector\":{\"workloadSelector\":{}}}}");
    if (obj && pol_parse(obj, &p->pol, NULL) == 0)
        pol_engine_policy(&p->pol, &p->eng);
    else
        eng_policy_defaults(&p->eng);
    cJSON_Delete(obj);
}

static void workload_free(plan_workload *w)
{
    for (size_t i = 0; i < w->nctrs; i++)
        free(w->ctrs[i].name);
    free(w->ctrs);
    free(w->kind);
    free(w->ns);
    free(w->name);
    free(w->api_version);
    free(w->file);
}

void plan_release(plan *p)
{
    for (size_t i = 0; i < p->nwl; i++)
        workload_free(&p->wl[i]);
    free(p->wl);
    for (size_t i = 0; i < p->ndiags; i++)
        free(p->diags[i]);
    free(p->diags);
    opmap_release(&p->by_id, NULL);
    opmap_release(&p->by_name, NULL);
    opmap_release(&p->series, plan_series_free);
    pol_release(&p->pol);
    memset(p, 0, sizeof *p);
}

void plan_set_now(plan *p, int64_t now)
{
    p->fixed_now = now;
}

void plan_keep_history(plan *p)
{
    p->keep_history = true;
}

/* --- workload indexes --------------------------------------------------------------------- */

/* Join up to three parts with \x1f into buf; false when they do not fit (names are capped far
 * below: 253 bytes). */
static bool index_key(char *buf, size_t cap, const char *a, const char *b, const char *c)
{
    int n =
        c ? snprintf(buf, cap, "%s\x1f%s\x1f%s", a, b, c) : snprintf(buf, cap, "%s\x1f%s", a, b);
    return n >= 0 && (size_t)n < cap;
}

#define INDEX_KEY_MAX 1024

/* Enter wl[i] in both indexes (at the end of its name's chain, so chains keep wl's order). */
static int index_add(plan *p, size_t i)
{
    plan_workload *w = &p->wl[i];
    char key[INDEX_KEY_MAX];
    w->same_name = 0;
    if (!index_key(key, sizeof key, w->kind, w->ns, w->name) ||
        opmap_put(&p->by_id, key, (void *)(uintptr_t)(i + 1), NULL) < 0)
        return -ENOMEM;
    if (!index_key(key, sizeof key, w->ns, w->name, NULL))
        return -ENOMEM;
    uintptr_t at = (uintptr_t)opmap_get(&p->by_name, key);
    if (!at)
        return opmap_put(&p->by_name, key, (void *)(uintptr_t)(i + 1), NULL);
    while (p->wl[at - 1].same_name)
        at = p->wl[at - 1].same_name;
    p->wl[at - 1].same_name = i + 1;
    return 0;
}

static int index_rebuild(plan *p)
{
    opmap_release(&p->by_id, NULL);
    opmap_release(&p->by_name, NULL);
    for (size_t i = 0; i < p->nwl; i++)
        if (index_add(p, i) < 0)
            return -ENOMEM;
    return 0;
}

plan_workload *plan_find(plan *p, const char *kind, const char *ns, const char *name)
{
    char key[INDEX_KEY_MAX];
    uintptr_t at =
        index_key(key, sizeof key, kind, ns, name) ? (uintptr_t)opmap_get(&p->by_id, key) : 0;
    return at ? &p->wl[at - 1] : NULL;
}

int plan_diag(plan *p, bool problem, const char *fmt, ...)
{
    if (p->ndiags == p->capdiags) {
        size_t cap = p->capdiags ? p->capdiags * 2 : 16;
        char **d = realloc(p->diags, cap * sizeof *d);
        if (!d)
            return -ENOMEM;
        p->diags = d;
        p->capdiags = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    p->diags[p->ndiags++] = s;
    if (problem)
        p->problems++;
    return 0;
}

int plan_read_file(const char *path, opbuf *out, operr *err)
{
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return operr_set(err, -errno, "'%s': %s", path, strerror(errno));
    opbuf_init(out, PLAN_MAX_FILE);
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = operr_set(err, -errno, "'%s': %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        rc = opbuf_append(out, chunk, (size_t)n);
        if (rc < 0) {
            operr_set(err, rc, "'%s': %s", path,
                      rc == -E2BIG ? "larger than the 64 MiB cap" : strerror(-rc));
            goto out;
        }
    }
    rc = opbuf_puts(out, ""); /* an empty file still yields "" */
    if (rc < 0)
        operr_set(err, rc, "'%s': %s", path, strerror(-rc));
out:
    close(fd);
    if (rc < 0)
        opbuf_release(out);
    return rc;
}

int plan_load_policy(plan *p, const char *path, operr *err)
{
    opbuf b;
    cJSON *doc = NULL;
    int rc = plan_read_file(path, &b, err);
    if (rc < 0)
        return rc;
    operr e;
    rc = yaml2json_parse(b.data, b.len, &doc, &e);
    if (rc < 0) {
        operr_set(err, rc, "'%s': %s", path, e.msg);
        goto out;
    }
    pol_policy pol;
    pol_init(&pol);
    rc = pol_parse(doc, &pol, &e);
    if (rc < 0) {
        pol_release(&pol);
        operr_set(err, rc, "'%s': %s", path, e.msg);
        goto out;
    }
    pol_release(&p->pol);
    p->pol = pol;
    pol_engine_policy(&p->pol, &p->eng);
out:
    cJSON_Delete(doc);
    opbuf_release(&b);
    return rc;
}

/* --- manifests ---------------------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int parse_rl(plan *p, const char *subject, const cJSON *res, const char *resource,
                    eng_rl *rl)
{
    static const char *const which[2] = {"requests", "limits"};
    for (int i = 0; i < 2; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(res, which[i]);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, resource);
        if (!v)
            continue;
        char num[64];
        const char *s = v->valuestring;
        if (cJSON_IsNumber(v)) {
            snprintf(num, sizeof num, "%.17g", v->valuedouble);
            s = num;
        }
        int64_t val = 0;
        operr e;
        int rc = s ? (strcmp(resource, "cpu") == 0 ? kq_parse_cpu_milli(s, &val, &e)
                                                   : kq_parse_bytes(s, &val, &e))
                   : operr_set(&e, -EINVAL, "not a quantity");
        if (rc < 0) {
            if (plan_diag(p, true, "%s: resources.%s.%s: %s; treated as unset", subject, which[i],
                          resource, e.msg) < 0)
                return -ENOMEM;
            continue;
        }
        if (i == 0) {
            rl->has_req = true;
            rl->req = val;
        } else {
            rl->has_lim = true;
            rl->lim = val;
        }
    }
    return 0;
}

static int add_containers(plan *p, plan_workload *w, const cJSON *list, bool init,
                          const char *where)
{
    size_t n = (size_t)cJSON_GetArraySize(list);
    if (n == 0)
        return 0;
    plan_container *c = realloc(w->ctrs, (w->nctrs + n) * sizeof *c);
    if (!c)
        return -ENOMEM;
    w->ctrs = c;
    size_t idx = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        const char *name = jstr(it, "name");
        size_t at = idx++;
        if (!name) {
            if (plan_diag(p, true, "%s: %s %s/%s: %s[%zu] has no name; skipped", where, w->kind,
                          w->ns, w->name, init ? "initContainers" : "containers", at) < 0)
                return -ENOMEM;
            continue;
        }
        plan_container *pc = &w->ctrs[w->nctrs];
        memset(pc, 0, sizeof *pc);
        pc->name = strdup(name);
        if (!pc->name)
            return -ENOMEM;
        w->nctrs++;
        pc->init = init;
        pc->index = at;
        pc->c.init = init;
        pc->c.opted_out = pol_excludes_container(&p->pol, name);
        char subject[600];
        snprintf(subject, sizeof subject, "%s: %s %s/%s: container \"%s\"", where, w->kind, w->ns,
                 w->name, name);
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(it, "resources");
        if (parse_rl(p, subject, res, "cpu", &pc->c.cpu) < 0 ||
            parse_rl(p, subject, res, "memory", &pc->c.mem) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int add_object(plan *p, const cJSON *obj, const char *file, int doc)
{
    char where[PATH_MAX + 32];
    if (doc > 0)
        snprintf(where, sizeof where, "%s: document %d", file, doc);
    else
        snprintf(where, sizeof where, "%s", file);
    if (cJSON_IsNull(obj))
        return 0; /* an empty document between separators */
    const char *kind = jstr(obj, "kind");
    if (!cJSON_IsObject(obj) || !kind)
        return plan_diag(p, true, "%s: not a Kubernetes object (no kind); skipped", where);
    if (strcmp(kind, "List") == 0) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(obj, "items"))
        {
            int rc = add_object(p, it, file, doc);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *name = jstr(md, "name");
    const char *ns = jstr(md, "namespace");
    if (!ns || !*ns)
        ns = "default";
    if (!pol_kind_from_name(kind))
        return plan_diag(p, true, "%s: %s %s: skipped: kind %s is not a workload optipod sizes",
                         where, kind, name ? name : "(unnamed)", kind);
    if (!name || !*name)
        return plan_diag(p, true, "%s: %s without metadata.name; skipped", where, kind);
    if (strlen(name) > 253 || strlen(ns) > 253)
        return plan_diag(p, true,
                         "%s: %s %.64s...: name or namespace longer than 253 characters; "
                         "skipped",
                         where, kind, name);
    const plan_workload *first = plan_find(p, kind, ns, name);
    if (first)
        return plan_diag(p, true, "%s: %s %s/%s: duplicate (first in %s); skipped", where, kind, ns,
                         name, first->file);
    const cJSON *pod =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "spec"), "template");
    pod = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    const cJSON *ctrs = cJSON_GetObjectItemCaseSensitive(pod, "containers");
    if (!cJSON_IsArray(ctrs) || cJSON_GetArraySize(ctrs) == 0)
        return plan_diag(p, true, "%s: %s %s/%s: no spec.template.spec.containers; skipped", where,
                         kind, ns, name);
    if (p->nwl == p->capwl) {
        size_t cap = p->capwl ? p->capwl * 2 : 8;
        plan_workload *w = realloc(p->wl, cap * sizeof *w);
        if (!w)
            return -ENOMEM;
        p->wl = w;
        p->capwl = cap;
    }
    plan_workload *w = &p->wl[p->nwl];
    memset(w, 0, sizeof *w);
    const char *av = jstr(obj, "apiVersion");
    w->kind = strdup(kind);
    w->ns = strdup(ns);
    w->name = strdup(name);
    w->api_version = strdup(av ? av : "apps/v1");
    w->file = strdup(file);
    w->line = doc;
    int rc = -ENOMEM;
    if (!w->kind || !w->ns || !w->name || !w->api_version || !w->file)
        goto fail;
    rc = add_containers(p, w, ctrs, false, where);
    if (rc == 0)
        rc = add_containers(p, w, cJSON_GetObjectItemCaseSensitive(pod, "initContainers"), true,
                            where);
    if (rc < 0)
        goto fail;
    p->nwl++;
    rc = index_add(p, p->nwl - 1);
    if (rc < 0) /* the maps are out of memory: the plan fails as a whole */
        return rc;
    return 0;
fail:
    workload_free(w);
    return rc;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int load_file(plan *p, const char *path, operr *err)
{
    opbuf b;
    int rc = plan_read_file(path, &b, err);
    if (rc < 0)
        return rc;
    cJSON *docs = NULL;
    operr e;
    if (has_suffix(path, ".json")) {
        const char *end = NULL;
        cJSON *one = cJSON_ParseWithLengthOpts(b.data, b.len, &end, 0);
        if (!one) {
            size_t line = 1;
            for (const char *q = b.data; end && q < end; q++)
                line += *q == '\n';
            rc = plan_diag(p, true, "%s:%zu: invalid JSON; file skipped", path, line);
            goto out;
        }
        rc = add_object(p, one, path, 0);
        cJSON_Delete(one);
        goto out;
    }
    if (yaml2json_parse_all(b.data, b.len, &docs, &e) < 0) {
        rc = plan_diag(p, true, "%s: %s; file skipped", path, e.msg);
        goto out;
    }
    int n = cJSON_GetArraySize(docs);
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, docs)
    {
        i++;
        rc = add_object(p, d, path, n > 1 ? i : 0);
        if (rc < 0)
            goto out;
    }
    rc = 0;
out:
    cJSON_Delete(docs);
    opbuf_release(&b);
    return rc;
}

static int load_path(plan *p, const char *path, int depth, operr *err);

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *const kust_names[] = {"kustomization.yaml", "kustomization.yml",
                                         "Kustomization"};

/* A directory with a kustomization: follow its resources (files or dirs). */
static int load_kustomization(plan *p, const char *dir, const char *kfile, int depth, operr *err)
{
    opbuf b;
    cJSON *doc = NULL;
    int rc = plan_read_file(kfile, &b, err);
    if (rc < 0)
        return rc;
    operr e;
    if (yaml2json_parse(b.data, b.len, &doc, &e) < 0) {
        rc = plan_diag(p, true, "%s: %s; kustomization skipped", kfile, e.msg);
        goto out;
    }
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(doc, "resources");
    const cJSON *it;
    cJSON_ArrayForEach(it, res)
    {
        if (!cJSON_IsString(it)) {
            rc = plan_diag(p, true, "%s: resources: an entry is not a string; skipped", kfile);
            if (rc < 0)
                goto out;
            continue;
        }
        if (strstr(it->valuestring, "://")) {
            rc = plan_diag(p, true, "%s: resources: remote \"%s\" is not read offline; skipped",
                           kfile, it->valuestring);
            if (rc < 0)
                goto out;
            continue;
        }
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", dir, it->valuestring) >= (int)sizeof sub) {
            rc = operr_set(err, -ENAMETOOLONG, "'%s': path too long", dir);
            goto out;
        }
        operr se;
        rc = load_path(p, sub, depth + 1, &se);
        if (rc == -ENOMEM)
            goto out;
        if (rc < 0)
            rc = plan_diag(p, true, "%s: resources: %s", kfile, se.msg);
        if (rc < 0)
            goto out;
    }
    rc = 0;
out:
    cJSON_Delete(doc);
    opbuf_release(&b);
    return rc;
}

static int load_dir(plan *p, const char *path, int depth, operr *err)
{
    for (size_t k = 0; k < sizeof kust_names / sizeof *kust_names; k++) {
        char kf[PATH_MAX];
        snprintf(kf, sizeof kf, "%s/%s", path, kust_names[k]);
        if (access(kf, F_OK) == 0)
            return load_kustomization(p, path, kf, depth, err);
    }
    DIR *d = opendir(path);
    if (!d)
        return operr_set(err, -errno, "'%s': %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = -ENOMEM;
                goto out;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = -ENOMEM;
            goto out;
        }
        n++;
    }
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", path, names[i]) >= (int)sizeof sub)
            continue;
        struct stat st;
        if (stat(sub, &st) < 0)
            continue;
        if (!S_ISDIR(st.st_mode) && !has_suffix(sub, ".yaml") && !has_suffix(sub, ".yml") &&
            !has_suffix(sub, ".json"))
            continue;
        operr se;
        rc = load_path(p, sub, depth + 1, &se);
        if (rc == -ENOMEM)
            goto out;
        if (rc < 0)
            rc = plan_diag(p, true, "%s", se.msg);
        if (rc < 0)
            goto out;
        rc = 0;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

static int load_path(plan *p, const char *path, int depth, operr *err)
{
    if (depth > PLAN_MAX_DEPTH)
        return operr_set(err, -ELOOP, "'%s': nested deeper than %d directories", path,
                         PLAN_MAX_DEPTH);
    struct stat st;
    if (stat(path, &st) < 0)
        return operr_set(err, -errno, "'%s': %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return load_dir(p, path, depth, err);
    return load_file(p, path, err);
}

int plan_load_manifests(plan *p, const char *path, operr *err)
{
    return load_path(p, path, 0, err);
}

/* --- run ---------------------------------------------------------------------------------- */

static bool all_alnum(const char *s, size_t n, bool digits_only)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= '0' && c <= '9') || (!digits_only && c >= 'a' && c <= 'z');
        if (!ok)
            return false;
    }
    return true;
}

/* Does `pod` belong to the workload by the controllers' naming rules? */
static bool pod_of(const plan_workload *w, const char *pod)
{
    size_t n = strlen(w->name);
    if (strncmp(pod, w->name, n) != 0 || pod[n] != '-')
        return false;
    const char *rest = pod + n + 1;
    const char *dash = strchr(rest, '-');
    if (!strcmp(w->kind, "StatefulSet"))
        return all_alnum(rest, strlen(rest), true);
    if (!strcmp(w->kind, "DaemonSet"))
        return !dash && all_alnum(rest, strlen(rest), false);
    /* Deployment: <rs-hash>-<pod-hash> */
    return dash && !strchr(dash + 1, '-') && all_alnum(rest, (size_t)(dash - rest), false) &&
           all_alnum(dash + 1, strlen(dash + 1), false);
}

plan_workload *plan_find_workload(plan *p, const char *ns, const char *pod, const char *workload)
{
    char key[INDEX_KEY_MAX];
    if (workload) {
        uintptr_t at = index_key(key, sizeof key, ns, workload, NULL)
                           ? (uintptr_t)opmap_get(&p->by_name, key)
                           : 0;
        return at ? &p->wl[at - 1] : NULL;
    }
    /* The workload's name is the pod's name up to one of its dashes: try them from the last
     * (the longest name wins), each through the index and the kind's naming rule. */
    size_t nslen = strlen(ns), n = strlen(pod);
    if (nslen + 1 + n >= sizeof key)
        return NULL;
    memcpy(key, ns, nslen);
    key[nslen] = '\x1f';
    for (size_t i = n; i-- > 0;) {
        if (pod[i] != '-')
            continue;
        memcpy(key + nslen + 1, pod, i);
        key[nslen + 1 + i] = '\0';
        for (uintptr_t at = (uintptr_t)opmap_get(&p->by_name, key); at;
             at = p->wl[at - 1].same_name)
            if (pod_of(&p->wl[at - 1], pod))
                return &p->wl[at - 1];
    }
    return NULL;
}

/* The usage of one container, from the series of its pods. */
typedef struct usage_acc {
    double *cpu, *mem; /* samples in the window, scratch reused from container to container */
    size_t ncpu, nmem, cap;
    int64_t first, last; /* Unix seconds of the oldest and newest sample */
    int64_t oom_count, oom_last, oom_mem;
} usage_acc;

static int acc_reserve(usage_acc *a, size_t n)
{
    if (a->ncpu + n <= a->cap && a->nmem + n <= a->cap)
        return 0;
    size_t cap = a->cap ? a->cap : 1024;
    while (cap < a->ncpu + n || cap < a->nmem + n)
        cap *= 2;
    double *c = realloc(a->cpu, cap * sizeof *c);
    if (c)
        a->cpu = c;
    double *m = c ? realloc(a->mem, cap * sizeof *m) : NULL;
    if (m)
        a->mem = m;
    if (!c || !m)
        return -ENOMEM;
    a->cap = cap;
    return 0;
}

static void span_note(usage_acc *a, int64_t t)
{
    if (a->first == 0 || t < a->first)
        a->first = t;
    if (t > a->last)
        a->last = t;
}

static bool in_window(int64_t t, int64_t lo, int64_t hi)
{
    return t >= lo && t <= hi;
}

/* Fold the points of one pod's series inside [lo, hi] into the container's. */
static int merge_series(usage_acc *a, const plan_series *s, int64_t lo, int64_t hi)
{
    if (acc_reserve(a, s->cpu.n > s->mem.n ? s->cpu.n : s->mem.n) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < s->cpu.n; i++) {
        if (!in_window(s->cpu.v[i].t, lo, hi))
            continue;
        a->cpu[a->ncpu++] = s->cpu.v[i].v;
        span_note(a, s->cpu.v[i].t);
    }
    for (size_t i = 0; i < s->mem.n; i++) {
        if (!in_window(s->mem.v[i].t, lo, hi))
            continue;
        a->mem[a->nmem++] = s->mem.v[i].v;
        span_note(a, s->mem.v[i].t);
    }
    for (size_t i = 0, k = 0; i < s->oom.n; i++) {
        int64_t t = s->oom.v[i].t;
        if (!in_window(t, lo, hi))
            continue;
        a->oom_count++;
        /* The working set at (or just before) the kill: oom and mem are sorted by time. */
        double m = 0;
        for (; k < s->mem.n && s->mem.v[k].t <= t; k++)
            ;
        if (k > 0)
            m = s->mem.v[k - 1].v;
        if (t >= a->oom_last) {
            a->oom_last = t;
            a->oom_mem = (int64_t)m;
        }
    }
    return 0;
}

static int cmp_wl(const void *a, const void *b)
{
    const plan_workload *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    if (!c)
        c = strcmp(x->kind, y->kind);
    if (!c)
        c = strcmp(x->name, y->name);
    return c;
}

static void fill_usage(const plan *p, plan_container *c, usage_acc *a)
{
    eng_usage *u = &c->c.use;
    memset(u, 0, sizeof *u);
    u->cpu_cores = a->ncpu ? eng_percentile(a->cpu, a->ncpu, p->eng.percentile) : NAN;
    double peak = 0;
    for (size_t i = 0; i < a->nmem; i++)
        if (a->mem[i] > peak)
            peak = a->mem[i];
    u->mem_peak_bytes = (int64_t)ceil(peak);
    u->mem_bytes = a->nmem ? (int64_t)ceil(eng_percentile(a->mem, a->nmem, p->eng.percentile)) : -1;
    u->samples = (int64_t)(a->ncpu > a->nmem ? a->ncpu : a->nmem);
    u->span_s = a->last - a->first;
    u->oom_count = a->oom_count;
    u->oom_last = a->oom_last;
    u->oom_mem_bytes = a->oom_mem;
}

int plan_sort(plan *p)
{
    if (p->nwl > 1)
        qsort(p->wl, p->nwl, sizeof *p->wl, cmp_wl);
    return index_rebuild(p);
}

/* A series matched to its container: wl and ctr index p->wl and its ctrs. */
typedef struct match {
    size_t wl, ctr;
    const char *key;
    const plan_series *s;
} match;

static int cmp_match(const void *a, const void *b)
{
    const match *x = a, *y = b;
    if (x->wl != y->wl)
        return x->wl < y->wl ? -1 : 1;
    if (x->ctr != y->ctr)
        return x->ctr < y->ctr ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* Every series of a pod of a workload in the manifests, with its container, grouped by container
 * (in key order within one, so results never depend on the map's order). */
static int match_series(plan *p, match **out, size_t *n)
{
    match *m = malloc((opmap_count(&p->series) + 1) * sizeof *m);
    if (!m)
        return -ENOMEM;
    size_t k = 0;
    opmap_iter it;
    opmap_iter_init(&it, &p->series);
    for (opmap_entry *e = opmap_next(&it); e; e = opmap_next(&it)) {
        const plan_series *s = e->value;
        plan_workload *w = plan_find_workload(p, s->ns, s->pod, s->workload);
        if (!w)
            continue; /* a pod of something not in the manifests */
        for (size_t i = 0; i < w->nctrs; i++)
            if (strcmp(w->ctrs[i].name, s->ctr) == 0)
                m[k++] = (match){(size_t)(w - p->wl), i, e->key, s};
    }
    qsort(m, k, sizeof *m, cmp_match);
    *out = m;
    *n = k;
    return 0;
}

int plan_run(plan *p, int64_t now)
{
    if (plan_sort(p) < 0)
        return -ENOMEM;
    if (now)
        p->now = now;
    else if (p->fixed_now)
        p->now = p->fixed_now;
    else if (p->newest)
        p->now = p->newest;
    /* Only the policy's rolling window before the decision time counts, as
     * in the controller: [now - window, now]. */
    int64_t hi = p->now, lo = p->now - p->pol.window_ms / 1000;
    if (p->dropped_before && lo - PLAN_RATE_WINDOW_S < p->dropped_before &&
        plan_diag(p, true,
                  "usage: samples before %lld were not kept while reading (a window before the "
                  "newest sample); set the decision time before reading usage to plan at %lld",
                  (long long)p->dropped_before, (long long)p->now) < 0)
        return -ENOMEM;
    match *m;
    size_t nm;
    if (match_series(p, &m, &nm) < 0)
        return -ENOMEM;
    usage_acc a = {0};
    int rc = 0;
    for (size_t i = 0; i < nm && rc == 0;) {
        plan_container *c = &p->wl[m[i].wl].ctrs[m[i].ctr];
        a.ncpu = a.nmem = 0;
        a.first = a.last = a.oom_count = a.oom_last = a.oom_mem = 0;
        size_t j = i;
        for (; j < nm && m[j].wl == m[i].wl && m[j].ctr == m[i].ctr && rc == 0; j++)
            rc = merge_series(&a, m[j].s, lo, hi);
        if (rc == 0 && !c->preset && (a.ncpu || a.nmem || a.oom_count)) {
            c->has_usage = true;
            fill_usage(p, c, &a);
        }
        i = j;
    }
    free(a.cpu);
    free(a.mem);
    free(m);
    if (rc < 0)
        return rc;
    eng_facts f = {.now = p->now, .hpa_cpu = false};
    for (size_t i = 0; i < p->nwl; i++) {
        plan_workload *w = &p->wl[i];
        for (size_t k = 0; k < w->nctrs; k++) {
            plan_container *c = &w->ctrs[k];
            c->c.name = c->name;
            if (!c->has_usage) {
                if (c->init && !p->eng.include_init)
                    continue;
                if (plan_diag(p, true, "%s: %s %s/%s: container \"%s\": no usage data; not planned",
                              w->file, w->kind, w->ns, w->name, c->name) < 0)
                    return -ENOMEM;
                continue;
            }
            eng_recommend(&p->eng, &f, &c->c, &c->res);
        }
    }
    p->ran = true;
    return 0;
}

int plan_patch_name(const plan_workload *w, char *buf, size_t size)
{
    char kind[64];
    size_t i = 0;
    for (; w->kind[i] && i + 1 < sizeof kind; i++)
        kind[i] = (char)(w->kind[i] >= 'A' && w->kind[i] <= 'Z' ? w->kind[i] + 32 : w->kind[i]);
    kind[i] = 0;
    int n = snprintf(buf, size, "%s-%s-%s.yaml", kind, w->ns, w->name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
