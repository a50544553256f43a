/*
 * mfields: managedFields (FieldsV1) → per-manager lists of owned paths.
 *
 * The walk keeps the path rendered so far in one fixed buffer plus a small
 * stack describing each element (kind and, for f: keys, the field name), which
 * is all the classification needs: no second parse of rendered strings.
 */
#include "apply/fields.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/map.h"

enum elem_kind { EL_FIELD, EL_KEY, EL_VALUE, EL_INDEX };

typedef struct elem {
    enum elem_kind kind;
    const char *field; /* EL_FIELD: name after "f:" */
    char name[MFIELDS_NAME_MAX + 1];
    int has_name; /* EL_KEY: the key is exactly {"name": "<string>"} */
    size_t len;   /* rendered path length up to and including this element */
} elem;

typedef struct walk {
    mfields *m;
    mfields_entry *e;
    size_t cap_paths; /* allocated slots in e->paths */
    char path[MFIELDS_PATH_MAX + 1];
    size_t len;
    elem st[MFIELDS_MAX_DEPTH];
    int depth;
    operr *err;
} walk;

void mfields_init(mfields *m)
{
    memset(m, 0, sizeof(*m));
}

static void entry_release(mfields_entry *e)
{
    for (size_t i = 0; i < e->npaths; i++)
        free(e->paths[i].path);
    free(e->paths);
    free(e->manager);
    free(e->operation);
    free(e->api_version);
    free(e->subresource);
    free(e->time);
}

void mfields_release(mfields *m)
{
    for (size_t i = 0; i < m->nentries; i++)
        entry_release(&m->entries[i]);
    free(m->entries);
    mfields_init(m);
}

/* JSON string literal of s, as the API server prints key values in paths. */
static int json_quote(opbuf *b, const char *s)
{
    int rc = opbuf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
        if (*p == '"' || *p == '\\')
            rc = opbuf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            rc = opbuf_printf(b, "\\u%04x", *p);
        else
            rc = opbuf_append(b, p, 1);
    }
    return rc ? rc : opbuf_puts(b, "\"");
}

static int path_append(walk *w, const char *s, size_t n)
{
    if (w->len + n > MFIELDS_PATH_MAX)
        return operr_set(w->err, -E2BIG, "managedFields: path longer than %d bytes",
                         MFIELDS_PATH_MAX);
    memcpy(w->path + w->len, s, n);
    w->len += n;
    w->path[w->len] = '\0';
    return 0;
}

/* k:{"name":"nginx","port":80} → [name="nginx",port=80]; records the name
 * when the key is exactly {"name": string}. */
static int render_key(walk *w, const char *json, elem *el)
{
    opbuf b;
    int rc = 0;
    opbuf_init(&b, MFIELDS_PATH_MAX);
    cJSON *k = cJSON_Parse(json);
    if (!k || !cJSON_IsObject(k)) {
        rc = operr_set(w->err, -EINVAL, "managedFields: key 'k:%.64s' is not a JSON object", json);
        goto out;
    }
    int n = 0;
    rc = opbuf_puts(&b, "[");
    for (cJSON *c = k->child; rc == 0 && c; c = c->next, n++) {
        rc = opbuf_printf(&b, "%s%s=", n ? "," : "", c->string ? c->string : "");
        if (rc)
            break;
        if (cJSON_IsString(c)) {
            rc = json_quote(&b, c->valuestring);
        } else {
            char *v = cJSON_PrintUnformatted(c);
            rc = v ? opbuf_puts(&b, v) : -ENOMEM;
            free(v);
        }
    }
    if (rc == 0)
        rc = opbuf_puts(&b, "]");
    if (rc) {
        rc = rc == -ENOMEM
                 ? -ENOMEM
                 : operr_set(w->err, -E2BIG, "managedFields: key 'k:%.64s' too long", json);
        goto out;
    }
    cJSON *name = k->child;
    if (name && !name->next && name->string && !strcmp(name->string, "name") &&
        cJSON_IsString(name) && strlen(name->valuestring) <= MFIELDS_NAME_MAX) {
        strcpy(el->name, name->valuestring);
        el->has_name = 1;
    }
    rc = path_append(w, b.data, b.len);
out:
    cJSON_Delete(k);
    opbuf_release(&b);
    return rc;
}

static int is_field(const elem *e, const char *name)
{
    return e->kind == EL_FIELD && strcmp(e->field, name) == 0;
}

/* Classify the owned path made of st[0..depth-1]. */
static void classify(const walk *w, mfields_path *p, const char **container)
{
    const elem *s = w->st;
    int d = w->depth;
    p->cls = MFIELDS_OTHER;
    p->list = MFIELDS_NONE;
    p->leaf = NULL;
    *container = NULL;
    if (d >= 5 && is_field(&s[0], "spec") && is_field(&s[1], "template") &&
        is_field(&s[2], "spec") &&
        (is_field(&s[3], "containers") || is_field(&s[3], "initContainers")) &&
        s[4].kind == EL_KEY && s[4].has_name) {
        p->list = is_field(&s[3], "containers") ? MFIELDS_CONTAINERS : MFIELDS_INIT_CONTAINERS;
        *container = s[4].name;
        if (d == 5 || (d == 6 && is_field(&s[5], "name")))
            p->cls = MFIELDS_ITEM;
        else if (is_field(&s[5], "resources") &&
                 (d == 6 || ((is_field(&s[6], "requests") || is_field(&s[6], "limits")) &&
                             (d == 7 || (d == 8 && s[7].kind == EL_FIELD)))))
            p->cls = MFIELDS_RESOURCES;
        if (p->cls == MFIELDS_RESOURCES && d >= 7)
            p->leaf = w->path + s[5].len + 1; /* after ".resources." */
        return;
    }
    if (d >= 2 && is_field(&s[0], "metadata") && is_field(&s[1], "annotations")) {
        if (d == 2 || (d == 3 && s[2].kind == EL_FIELD && !strncmp(s[2].field, "optipod.io/", 11)))
            p->cls = MFIELDS_ANNOTATION;
    }
}

static int emit(walk *w)
{
    mfields_entry *e = w->e;
    if (w->m->npaths >= MFIELDS_MAX_PATHS)
        return operr_set(w->err, -E2BIG, "managedFields: more than %d owned paths",
                         MFIELDS_MAX_PATHS);
    if (e->npaths == w->cap_paths) {
        size_t ncap = w->cap_paths ? w->cap_paths * 2 : 16;
        mfields_path *np = realloc(e->paths, ncap * sizeof(*np));
        if (!np)
            return -ENOMEM;
        e->paths = np;
        w->cap_paths = ncap;
    }
    mfields_path *p = &e->paths[e->npaths];
    const char *container;
    classify(w, p, &container);
    const char *path = w->len ? w->path : ".";
    size_t pl = strlen(path), cl = container ? strlen(container) : 0;
    /* one block: path, NUL, container, NUL */
    char *blk = malloc(pl + 1 + (container ? cl + 1 : 0));
    if (!blk)
        return -ENOMEM;
    memcpy(blk, path, pl + 1);
    if (p->leaf)
        p->leaf = blk + (p->leaf - w->path);
    p->path = blk;
    p->container = NULL;
    if (container) {
        p->container = blk + pl + 1;
        memcpy(p->container, container, cl + 1);
    }
    e->npaths++;
    w->m->npaths++;
    return 0;
}

static int walk_node(walk *w, const cJSON *node)
{
    int rc = 0;
    if (!cJSON_IsObject(node))
        return operr_set(w->err, -EINVAL, "managedFields: fieldsV1 node at '%s' is not an object",
                         w->len ? w->path : ".");
    if (!node->child && w->depth > 0)
        return emit(w); /* {} : a leaf the manager owns */
    for (const cJSON *c = node->child; c; c = c->next) {
        const char *k = c->string ? c->string : "";
        if (!strcmp(k, ".")) {
            rc = w->depth > 0 ? emit(w) : 0;
            if (rc != 0)
                return rc;
            continue;
        }
        if (w->depth >= MFIELDS_MAX_DEPTH)
            return operr_set(w->err, -E2BIG, "managedFields: fieldsV1 deeper than %d",
                             MFIELDS_MAX_DEPTH);
        size_t saved = w->len;
        elem *el = &w->st[w->depth];
        el->field = NULL;
        el->name[0] = '\0';
        el->has_name = 0;
        if (!strncmp(k, "f:", 2)) {
            el->kind = EL_FIELD;
            el->field = k + 2;
            rc = path_append(w, ".", 1);
            if (rc == 0)
                rc = path_append(w, k + 2, strlen(k + 2));
        } else if (!strncmp(k, "k:", 2)) {
            el->kind = EL_KEY;
            rc = render_key(w, k + 2, el);
        } else if (!strncmp(k, "v:", 2) || !strncmp(k, "i:", 2)) {
            el->kind = k[0] == 'v' ? EL_VALUE : EL_INDEX;
            rc = path_append(w, k[0] == 'v' ? "[=" : "[", k[0] == 'v' ? 2 : 1);
            if (rc == 0)
                rc = path_append(w, k + 2, strlen(k + 2));
            if (rc == 0)
                rc = path_append(w, "]", 1);
        } else {
            rc = operr_set(w->err, -EINVAL, "managedFields: unknown fieldsV1 key '%.64s'", k);
        }
        if (rc)
            return rc;
        el->len = w->len;
        w->depth++;
        rc = walk_node(w, c);
        w->depth--;
        w->len = saved;
        w->path[saved] = '\0';
        if (rc)
            return rc;
    }
    return 0;
}

static char *dup_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return strdup(cJSON_IsString(v) ? v->valuestring : "");
}

static int parse_entry(mfields *m, const cJSON *item, size_t idx, walk *w, operr *err)
{
    mfields_entry *e = &m->entries[m->nentries];
    memset(e, 0, sizeof(*e));
    m->nentries++; /* counted now so that release frees a half-built entry */
    if (!cJSON_IsObject(item))
        return operr_set(err, -EINVAL, "managedFields[%zu]: not an object", idx);
    e->manager = dup_str(item, "manager");
    e->operation = dup_str(item, "operation");
    e->api_version = dup_str(item, "apiVersion");
    e->subresource = dup_str(item, "subresource");
    e->time = dup_str(item, "time");
    if (!e->manager || !e->operation || !e->api_version || !e->subresource || !e->time)
        return -ENOMEM;
    e->op = !strcmp(e->operation, "Apply")    ? MFIELDS_OP_APPLY
            : !strcmp(e->operation, "Update") ? MFIELDS_OP_UPDATE
                                              : MFIELDS_OP_OTHER;
    const cJSON *ft = cJSON_GetObjectItemCaseSensitive(item, "fieldsType");
    const cJSON *fv = cJSON_GetObjectItemCaseSensitive(item, "fieldsV1");
    if (ft && !(cJSON_IsString(ft) && !strcmp(ft->valuestring, "FieldsV1")))
        return operr_set(err, -EINVAL, "managedFields[%zu] '%s': fieldsType is not FieldsV1", idx,
                         e->manager);
    if (!fv || cJSON_IsNull(fv))
        return 0;
    memset(w, 0, sizeof(*w));
    w->m = m;
    w->e = e;
    w->err = err;
    int rc = walk_node(w, fv);
    if (rc && rc != -ENOMEM)
        operr_wrap(err, rc, "managedFields[%zu] '%s'", idx, e->manager);
    return rc;
}

int mfields_parse(mfields *m, const cJSON *obj, operr *err)
{
    int rc = 0;
    walk *w = NULL;
    mfields_init(m);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *mf = cJSON_GetObjectItemCaseSensitive(md, "managedFields");
    if (!mf || cJSON_IsNull(mf))
        return 0;
    if (!cJSON_IsArray(mf))
        return operr_set(err, -EINVAL, "metadata.managedFields: not an array");
    int n = cJSON_GetArraySize(mf);
    if (n > MFIELDS_MAX_ENTRIES)
        return operr_set(err, -E2BIG, "metadata.managedFields: %d entries, more than %d", n,
                         MFIELDS_MAX_ENTRIES);
    if (n == 0)
        return 0;
    m->entries = calloc((size_t)n, sizeof(*m->entries));
    w = malloc(sizeof(*w));
    if (!m->entries || !w) {
        rc = -ENOMEM;
        goto out;
    }
    size_t idx = 0;
    for (const cJSON *it = mf->child; it; it = it->next, idx++) {
        rc = parse_entry(m, it, idx, w, err);
        if (rc)
            goto out;
    }
out:
    free(w);
    if (rc) {
        if (rc == -ENOMEM)
            operr_set(err, rc, "metadata.managedFields: out of memory");
        mfields_release(m);
    }
    return rc;
}

int mfields_parse_json(mfields *m, const char *json, size_t len, operr *err)
{
    mfields_init(m);
    cJSON *obj = cJSON_ParseWithLength(json, len);
    if (!obj)
        return operr_set(err, -EINVAL, "managedFields: object is not valid JSON");
    int rc = mfields_parse(m, obj, err);
    cJSON_Delete(obj);
    return rc;
}

static const char *list_field(enum mfields_list list)
{
    return list == MFIELDS_INIT_CONTAINERS ? "initContainers" : "containers";
}

int mfields_path_item(char *buf, size_t cap, enum mfields_list list, const char *container)
{
    if (!container || !*container || list == MFIELDS_NONE)
        return -EINVAL;
    opbuf b;
    opbuf_init(&b, MFIELDS_PATH_MAX);
    int rc = opbuf_printf(&b, ".spec.template.spec.%s[name=", list_field(list));
    if (rc == 0)
        rc = json_quote(&b, container);
    if (rc == 0)
        rc = opbuf_puts(&b, "]");
    if (rc == 0 && b.len >= cap)
        rc = -E2BIG;
    if (rc == 0) {
        memcpy(buf, b.data, b.len + 1);
        rc = (int)b.len;
    }
    opbuf_release(&b);
    return rc;
}

int mfields_path_resource(char *buf, size_t cap, enum mfields_list list, const char *container,
                          const char *kind, const char *resource)
{
    if (!kind || !resource || !*resource || (strcmp(kind, "requests") && strcmp(kind, "limits")))
        return -EINVAL;
    int n = mfields_path_item(buf, cap, list, container);
    if (n < 0)
        return n;
    int m = snprintf(buf + n, cap - (size_t)n, ".resources.%s.%s", kind, resource);
    if (m < 0 || (size_t)m >= cap - (size_t)n)
        return -E2BIG;
    return n + m;
}

int mfields_entry_owns(const mfields_entry *e, const char *path)
{
    for (size_t i = 0; i < e->npaths; i++) {
        if (!strcmp(e->paths[i].path, path))
            return 1;
    }
    return 0;
}

size_t mfields_owners(const mfields *m, const char *path, const char *except,
                      const mfields_entry **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nentries; i++) {
        const mfields_entry *e = &m->entries[i];
        if (except && !strcmp(e->manager, except))
            continue;
        if (mfields_entry_owns(e, path)) {
            if (out && n < max)
                out[n] = e;
            n++;
        }
    }
    return n;
}

int mfields_manager_owns(const mfields *m, const char *manager, const char *path)
{
    for (size_t i = 0; i < m->nentries; i++) {
        if (!strcmp(m->entries[i].manager, manager) && mfields_entry_owns(&m->entries[i], path))
            return 1;
    }
    return 0;
}

size_t mfields_foreign(const mfields *m, const char *manager, unsigned allow, const char **first)
{
    size_t n = 0;
    if (first)
        *first = NULL;
    for (size_t i = 0; i < m->nentries; i++) {
        const mfields_entry *e = &m->entries[i];
        if (strcmp(e->manager, manager))
            continue;
        for (size_t j = 0; j < e->npaths; j++) {
            enum mfields_class c = e->paths[j].cls;
            if (c == MFIELDS_RESOURCES || c == MFIELDS_ITEM)
                continue;
            if (c == MFIELDS_ANNOTATION && (allow & MFIELDS_ALLOW_ANNOTATIONS))
                continue;
            if (first && !*first)
                *first = e->paths[j].path;
            n++;
        }
    }
    return n;
}

static int in_container(const mfields_path *p, enum mfields_list list, const char *container)
{
    return p->container && p->list == list && !strcmp(p->container, container);
}

int mfields_pins_item(const mfields *m, const char *manager, enum mfields_list list,
                      const char *container)
{
    for (size_t i = 0; i < m->nentries; i++) {
        const mfields_entry *e = &m->entries[i];
        if (e->op != MFIELDS_OP_APPLY || strcmp(e->manager, manager))
            continue;
        for (size_t j = 0; j < e->npaths; j++) {
            const mfields_path *p = &e->paths[j];
            /* the item itself: classified ITEM and ending at the key */
            if (p->cls == MFIELDS_ITEM && in_container(p, list, container) &&
                p->path[strlen(p->path) - 1] == ']')
                return 1;
        }
    }
    return 0;
}

int mfields_holds_container(const mfields *m, const char *manager, enum mfields_list list,
                            const char *container)
{
    for (size_t i = 0; i < m->nentries; i++) {
        const mfields_entry *e = &m->entries[i];
        if (strcmp(e->manager, manager))
            continue;
        for (size_t j = 0; j < e->npaths; j++) {
            if (in_container(&e->paths[j], list, container))
                return 1;
        }
    }
    return 0;
}

int mfields_others_hold_container(const mfields *m, const char *except, enum mfields_list list,
                                  const char *container)
{
    for (size_t i = 0; i < m->nentries; i++) {
        const mfields_entry *e = &m->entries[i];
        if (except && !strcmp(e->manager, except))
            continue;
        for (size_t j = 0; j < e->npaths; j++) {
            if (in_container(&e->paths[j], list, container))
                return 1;
        }
    }
    return 0;
}

/* Walk the containers `manager` has paths in, each once in first-seen order;
 * with `live` set, only those not in it. */
static size_t containers_of(const mfields *m, const char *manager, enum mfields_list list,
                            const char *const *live, size_t nlive, const char **out, size_t max)
{
    opmap seen;
    size_t n = 0;
    opmap_init(&seen);
    for (size_t i = 0; i < m->nentries; i++) {
        const mfields_entry *e = &m->entries[i];
        if (strcmp(e->manager, manager))
            continue;
        for (size_t j = 0; j < e->npaths; j++) {
            const mfields_path *p = &e->paths[j];
            if (!p->container || p->list != list || opmap_get(&seen, p->container))
                continue;
            if (opmap_put(&seen, p->container, (void *)p, NULL) != 0)
                continue; /* out of memory: may count a name twice, never crash */
            int found = 0;
            for (size_t k = 0; live && k < nlive && !found; k++)
                found = live[k] && !strcmp(live[k], p->container);
            if (found)
                continue;
            if (out && n < max)
                out[n] = p->container;
            n++;
        }
    }
    opmap_release(&seen, NULL);
    return n;
}

size_t mfields_containers(const mfields *m, const char *manager, enum mfields_list list,
                          const char **out, size_t max)
{
    return containers_of(m, manager, list, NULL, 0, out, max);
}

size_t mfields_stale_containers(const mfields *m, const char *manager, enum mfields_list list,
                                const char *const *live, size_t nlive, const char **out, size_t max)
{
    static const char *const none[1] = {NULL};
    return containers_of(m, manager, list, live ? live : none, live ? nlive : 0, out, max);
}
