/*
 * fakessa: Server-Side Apply field ownership, as kube-apiserver v1.24 does it.
 *
 * The model (structured-merge-diff, re-derived from its observable behaviour):
 * - A field set is a tree of path elements ("f:name", "k:{...}", "v:...",
 *   "i:N"); a node is a member when the path itself is owned ("." in FieldsV1,
 *   or a leaf "{}").
 * - An object's set: every scalar and atomic value, every list item, every map
 *   entry, and struct fields that are null or {}.
 * - Apply: merged = live ⊕ config; the applier's set becomes the config's set;
 *   fields it owned before and no one owns now are removed from the object;
 *   live vs merged gives added/modified/removed paths; another manager owning
 *   an added or modified path is a conflict (409 unless forced, then it loses
 *   the path); removed paths leave everyone's sets.
 * - Update: the added/modified paths become the writer's (operation Update),
 *   and leave everyone else's sets.
 * Entries are then sorted the way the server encodes them: operation, time
 * (seconds), manager, apiVersion, subresource.
 */
#include "fakessa.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/optime.h"

#define FS_MAX_DEPTH 64 /* deeper objects are refused (-EINVAL) */

/* ------------------------------------------------------------------ field sets
 */

typedef struct fsn {
    char *pe;   /* path element; NULL at the root */
    int member; /* the path itself is in the set */
    struct fsn **kids;
    size_t nkids, cap;
} fsn;

static fsn *fsn_new(const char *pe)
{
    fsn *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    if (pe) {
        n->pe = strdup(pe);
        if (!n->pe) {
            free(n);
            return NULL;
        }
    }
    return n;
}

static void fsn_free(fsn *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        fsn_free(n->kids[i]);
    free(n->kids);
    free(n->pe);
    free(n);
}

static fsn *fsn_get(const fsn *n, const char *pe)
{
    if (!n)
        return NULL;
    for (size_t i = 0; i < n->nkids; i++)
        if (strcmp(n->kids[i]->pe, pe) == 0)
            return n->kids[i];
    return NULL;
}

/* The child `pe` of n, created when missing; NULL on ENOMEM. */
static fsn *fsn_add(fsn *n, const char *pe)
{
    fsn *c = fsn_get(n, pe);
    if (c)
        return c;
    if (n->nkids == n->cap) {
        size_t nc = n->cap ? n->cap * 2 : 4;
        fsn **nk = realloc(n->kids, nc * sizeof(*nk));
        if (!nk)
            return NULL;
        n->kids = nk;
        n->cap = nc;
    }
    c = fsn_new(pe);
    if (!c)
        return NULL;
    n->kids[n->nkids++] = c;
    return c;
}

static int fsn_insert(fsn *root, char *const *path, int depth)
{
    fsn *n = root;
    for (int i = 0; i < depth; i++) {
        n = fsn_add(n, path[i]);
        if (!n)
            return -ENOMEM;
    }
    if (depth > 0)
        n->member = 1;
    return 0;
}

static int fsn_empty(const fsn *n)
{
    if (n->member)
        return 0;
    for (size_t i = 0; i < n->nkids; i++)
        if (!fsn_empty(n->kids[i]))
            return 0;
    return 1;
}

/* Drops the subtrees that own nothing. */
static void fsn_compact(fsn *n)
{
    size_t w = 0;
    for (size_t i = 0; i < n->nkids; i++) {
        fsn_compact(n->kids[i]);
        if (!n->kids[i]->member && n->kids[i]->nkids == 0)
            fsn_free(n->kids[i]);
        else
            n->kids[w++] = n->kids[i];
    }
    n->nkids = w;
}

static int fsn_union(fsn *dst, const fsn *src)
{
    dst->member |= src->member;
    for (size_t i = 0; i < src->nkids; i++) {
        fsn *d = fsn_add(dst, src->kids[i]->pe);
        if (!d)
            return -ENOMEM;
        int rc = fsn_union(d, src->kids[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Removes the members of src from dst (not the paths below them). */
static void fsn_subtract_walk(fsn *dst, const fsn *src)
{
    if (src->member)
        dst->member = 0;
    for (size_t i = 0; i < src->nkids; i++) {
        fsn *d = fsn_get(dst, src->kids[i]->pe);
        if (d)
            fsn_subtract_walk(d, src->kids[i]);
    }
}

static void fsn_subtract(fsn *dst, const fsn *src)
{
    fsn_subtract_walk(dst, src);
    fsn_compact(dst);
}

/* A new set holding the members of both; NULL on ENOMEM. */
static fsn *fsn_intersect(const fsn *a, const fsn *b)
{
    fsn *n = fsn_new(a->pe);
    if (!n)
        return NULL;
    n->member = a->member && b->member;
    for (size_t i = 0; i < a->nkids; i++) {
        const fsn *bk = fsn_get(b, a->kids[i]->pe);
        if (!bk)
            continue;
        fsn *c = fsn_intersect(a->kids[i], bk);
        if (!c) {
            fsn_free(n);
            return NULL;
        }
        if (fsn_empty(c)) {
            fsn_free(c);
            continue;
        }
        fsn *slot = fsn_add(n, c->pe); /* creates an empty node we replace */
        if (!slot) {
            fsn_free(c);
            fsn_free(n);
            return NULL;
        }
        n->kids[n->nkids - 1] = c;
        fsn_free(slot);
    }
    return n;
}

/* Drops the whole subtree at the top-level path element `pe`. */
static void fsn_drop_subtree(fsn *root, const char *pe)
{
    for (size_t i = 0; i < root->nkids; i++)
        if (strcmp(root->kids[i]->pe, pe) == 0) {
            fsn_free(root->kids[i]);
            memmove(&root->kids[i], &root->kids[i + 1], (root->nkids - i - 1) * sizeof(fsn *));
            root->nkids--;
            return;
        }
}

/* Un-owns one path (given as up to 3 elements); the paths below stay. */
static void fsn_unmember(fsn *root, const char *a, const char *b)
{
    fsn *n = fsn_get(root, a);
    if (n && b)
        n = fsn_get(n, b);
    if (n)
        n->member = 0;
}

static int fsn_from_json(fsn *n, const cJSON *j, int depth)
{
    if (!cJSON_IsObject(j) || depth > FS_MAX_DEPTH)
        return -EINVAL;
    if (!j->child) {
        if (depth > 0)
            n->member = 1;
        return 0;
    }
    for (const cJSON *c = j->child; c; c = c->next) {
        if (!c->string || !*c->string)
            return -EINVAL;
        if (strcmp(c->string, ".") == 0) {
            if (depth > 0)
                n->member = 1;
            continue;
        }
        if (!strchr("fkvi", c->string[0]) || c->string[1] != ':')
            return -EINVAL;
        fsn *k = fsn_add(n, c->string);
        if (!k)
            return -ENOMEM;
        int rc = fsn_from_json(k, c, depth + 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* --------------------------------------------------------- path element order
 */

static int json_rank(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return 0;
    if (cJSON_IsString(v))
        return 1;
    if (cJSON_IsBool(v))
        return 2;
    if (cJSON_IsNull(v))
        return 3;
    return 4;
}

static int json_cmp(const cJSON *a, const cJSON *b)
{
    int ra = json_rank(a), rb = json_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (cJSON_IsNumber(a))
        return a->valuedouble < b->valuedouble ? -1 : a->valuedouble > b->valuedouble;
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring);
    if (cJSON_IsBool(a))
        return cJSON_IsTrue(a) - cJSON_IsTrue(b);
    if (cJSON_IsObject(a)) { /* key field lists, names already sorted */
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next) {
            int c = strcmp(x->string, y->string);
            if (c == 0)
                c = json_cmp(x, y);
            if (c)
                return c;
        }
        return x ? 1 : y ? -1 : 0;
    }
    return 0;
}

static int pe_rank(const char *pe)
{
    switch (pe[0]) {
    case 'f':
        return 0;
    case 'k':
        return 1;
    case 'v':
        return 2;
    default:
        return 3;
    }
}

/* The server's order: field names, then keys, then values, then indexes. */
static int pe_cmp(const char *a, const char *b)
{
    int ra = pe_rank(a), rb = pe_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (ra == 0)
        return strcmp(a + 2, b + 2);
    if (ra == 3) {
        long x = strtol(a + 2, NULL, 10), y = strtol(b + 2, NULL, 10);
        return x < y ? -1 : x > y;
    }
    cJSON *ja = cJSON_Parse(a + 2), *jb = cJSON_Parse(b + 2);
    int c = (ja && jb) ? json_cmp(ja, jb) : strcmp(a, b);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    return c ? c : strcmp(a, b);
}

static int fsn_ptr_cmp(const void *x, const void *y)
{
    const fsn *a = *(const fsn *const *)x, *b = *(const fsn *const *)y;
    return pe_cmp(a->pe, b->pe);
}

static void fsn_sort(fsn *n)
{
    if (n->nkids > 1)
        qsort(n->kids, n->nkids, sizeof(fsn *), fsn_ptr_cmp);
    for (size_t i = 0; i < n->nkids; i++)
        fsn_sort(n->kids[i]);
}

/* FieldsV1 of a sorted set; NULL on ENOMEM. */
static cJSON *fsn_to_json(const fsn *n)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (n->member && n->nkids && !cJSON_AddObjectToObject(o, "."))
        goto fail;
    for (size_t i = 0; i < n->nkids; i++) {
        if (fsn_empty(n->kids[i]))
            continue;
        cJSON *k = fsn_to_json(n->kids[i]);
        if (!k)
            goto fail;
        cJSON_AddItemToObject(o, n->kids[i]->pe, k);
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

/* ".spec.containers[name=\"x\"].image" for a path of elements. */
static int path_print(opbuf *b, char *const *path, int depth)
{
    int rc = 0;
    for (int i = 0; i < depth && rc == 0; i++) {
        const char *pe = path[i];
        if (pe[0] == 'f') {
            rc = opbuf_printf(b, ".%s", pe + 2);
        } else if (pe[0] == 'i') {
            rc = opbuf_printf(b, "[%s]", pe + 2);
        } else if (pe[0] == 'v') {
            rc = opbuf_printf(b, "[=%s]", pe + 2);
        } else {
            cJSON *k = cJSON_Parse(pe + 2);
            if (!k)
                return -EINVAL;
            rc = opbuf_puts(b, "[");
            for (cJSON *f = k->child; f && rc == 0; f = f->next) {
                char *v = cJSON_PrintUnformatted(f);
                if (!v) {
                    rc = -ENOMEM;
                    break;
                }
                rc = opbuf_printf(b, "%s%s=%s", f == k->child ? "" : ",", f->string, v);
                free(v);
            }
            if (rc == 0)
                rc = opbuf_puts(b, "]");
            cJSON_Delete(k);
        }
    }
    return rc;
}

typedef struct fspath {
    char *pe[FS_MAX_DEPTH + 1];
    int n;
} fspath;

/* Visits the members of a sorted set in the server's order: at each level the
 * members first, then the subtrees. */
static int fsn_iterate(const fsn *n, fspath *p, int (*fn)(fspath *p, void *arg), void *arg)
{
    int rc = 0;
    if (p->n >= FS_MAX_DEPTH)
        return -EINVAL;
    for (size_t i = 0; i < n->nkids && rc == 0; i++) {
        if (!n->kids[i]->member)
            continue;
        p->pe[p->n++] = n->kids[i]->pe;
        rc = fn(p, arg);
        p->n--;
    }
    for (size_t i = 0; i < n->nkids && rc == 0; i++) {
        if (!n->kids[i]->nkids)
            continue;
        p->pe[p->n++] = n->kids[i]->pe;
        rc = fsn_iterate(n->kids[i], p, fn, arg);
        p->n--;
    }
    return rc;
}

/* -------------------------------------------------------------------- schema
 */

typedef enum { NK_LEAF, NK_STRUCT, NK_MAP, NK_ALIST, NK_SET } nk;

typedef struct nkind {
    nk k;
    const char *const *keys; /* NK_ALIST: key field names, sorted, NULL-terminated */
} nkind;

typedef struct sctx {
    int service;      /* a core/v1 Service: ports keyed by port, selector is a map */
    int config_order; /* merge keeps the config's key order (create), not the live
                         one */
} sctx;

static const char *const KEYS_NAME[] = {"name", NULL};
static const char *const KEYS_CPORT[] = {"containerPort", "protocol", NULL};
static const char *const KEYS_SPORT[] = {"port", "protocol", NULL};
static const char *const KEYS_MOUNT[] = {"mountPath", NULL};
static const char *const KEYS_DEVICE[] = {"devicePath", NULL};
static const char *const KEYS_TYPE[] = {"type", NULL};
static const char *const KEYS_UID[] = {"uid", NULL};
static const char *const KEYS_IP[] = {"ip", NULL};
static const char *const KEYS_TSC[] = {"topologyKey", "whenUnsatisfiable", NULL};

/* Associative lists of the built-in types (listType=map, or patchMergeKey). */
static const struct {
    const char *field;
    const char *const *keys;
} ALISTS[] = {
    {"containers", KEYS_NAME},
    {"initContainers", KEYS_NAME},
    {"ephemeralContainers", KEYS_NAME},
    {"volumes", KEYS_NAME},
    {"env", KEYS_NAME},
    {"imagePullSecrets", KEYS_NAME},
    {"webhooks", KEYS_NAME}, /* MutatingWebhookConfiguration: listMapKey name */
    {"volumeMounts", KEYS_MOUNT},
    {"volumeDevices", KEYS_DEVICE},
    {"conditions", KEYS_TYPE},
    {"ownerReferences", KEYS_UID},
    {"hostAliases", KEYS_IP},
    {"topologySpreadConstraints", KEYS_TSC},
};

/* Fields whose type is a Go map: their entries are owned one by one. */
static const char *const MAPS[] = {"labels",       "annotations", "requests",    "limits",
                                   "nodeSelector", "matchLabels", "data",        "binaryData",
                                   "stringData",   "capacity",    "allocatable", "overhead",
                                   "hard",         "used",        NULL};

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

static nkind field_kind(const sctx *s, const char *name, const cJSON *v)
{
    nkind r = {NK_LEAF, NULL};
    if (cJSON_IsObject(v)) {
        if (strcmp(name, "selector") == 0) /* LabelSelector is atomic */
            r.k = s->service ? NK_MAP : NK_LEAF;
        else
            r.k = in_list(name, MAPS) ? NK_MAP : NK_STRUCT;
    } else if (cJSON_IsArray(v)) {
        if (strcmp(name, "ports") == 0) {
            r.k = NK_ALIST;
            r.keys = s->service ? KEYS_SPORT : KEYS_CPORT;
        } else if (strcmp(name, "finalizers") == 0) {
            r.k = NK_SET;
        } else {
            for (size_t i = 0; i < sizeof(ALISTS) / sizeof(ALISTS[0]); i++)
                if (strcmp(name, ALISTS[i].field) == 0) {
                    r.k = NK_ALIST;
                    r.keys = ALISTS[i].keys;
                }
        }
    }
    return r;
}

/* Kind of child value `c` (named c->string inside objects) of a `parent` node.
 */
static nkind child_kind(const sctx *s, nk parent, const cJSON *c)
{
    nkind r = {NK_LEAF, NULL};
    if (parent == NK_STRUCT)
        return field_kind(s, c->string, c);
    if ((parent == NK_MAP || parent == NK_ALIST) && cJSON_IsObject(c))
        r.k = NK_STRUCT;
    return r;
}

static int is_container(nk k)
{
    return k != NK_LEAF;
}

/* Whether the path of child `c` is itself a member of an object's field set. */
static int memberable(nk parent, nkind ck, const cJSON *c)
{
    if (parent != NK_STRUCT)
        return 1; /* map entries and list items */
    if (ck.k == NK_LEAF || cJSON_IsNull(c))
        return 1;
    return cJSON_IsObject(c) && !c->child;
}

/* The path element of child `c` at position idx; malloc'd, NULL on ENOMEM. */
static char *child_pe(nkind parent, const cJSON *c, int idx)
{
    char *s = NULL;
    if (parent.k == NK_STRUCT || parent.k == NK_MAP) {
        if (asprintf(&s, "f:%s", c->string) < 0)
            return NULL;
        return s;
    }
    if (parent.k == NK_SET) {
        char *v = cJSON_PrintUnformatted(c);
        if (!v)
            return NULL;
        if (asprintf(&s, "v:%s", v) < 0)
            s = NULL;
        free(v);
        return s;
    }
    cJSON *key = cJSON_IsObject(c) ? cJSON_CreateObject() : NULL;
    int any = 0;
    for (const char *const *k = parent.keys; key && *k; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, *k);
        cJSON *d = v                             ? cJSON_Duplicate(v, 1)
                   : strcmp(*k, "protocol") == 0 ? cJSON_CreateString("TCP")
                                                 : NULL;
        if (v && !d) {
            cJSON_Delete(key);
            return NULL;
        }
        if (d) {
            cJSON_AddItemToObject(key, *k, d);
            any |= v != NULL;
        }
    }
    if (!key || !any) { /* not keyable: fall back to the position */
        cJSON_Delete(key);
        if (asprintf(&s, "i:%d", idx) < 0)
            return NULL;
        return s;
    }
    char *v = cJSON_PrintUnformatted(key);
    cJSON_Delete(key);
    if (!v)
        return NULL;
    if (asprintf(&s, "k:%s", v) < 0)
        s = NULL;
    free(v);
    return s;
}

/* The path elements of every child of a container node, in order. */
typedef struct pelist {
    char **pe;
    const cJSON **v;
    int n;
} pelist;

static void pelist_release(pelist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->pe[i]);
    free(l->pe);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int pelist_build(pelist *l, nkind k, const cJSON *v)
{
    memset(l, 0, sizeof(*l));
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return 0;
    l->pe = calloc((size_t)n, sizeof(char *));
    l->v = calloc((size_t)n, sizeof(cJSON *));
    if (!l->pe || !l->v) {
        pelist_release(l);
        return -ENOMEM;
    }
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        l->pe[i] = child_pe(k, c, i);
        l->v[i] = c;
        l->n = i + 1;
        if (!l->pe[i]) {
            pelist_release(l);
            return -ENOMEM;
        }
    }
    return 0;
}

static int pelist_find(const pelist *l, const char *pe)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->pe[i], pe) == 0)
            return i;
    return -1;
}

static int kind_matches(nk k, const cJSON *v)
{
    if (k == NK_STRUCT || k == NK_MAP)
        return cJSON_IsObject(v);
    if (k == NK_ALIST || k == NK_SET)
        return cJSON_IsArray(v);
    return 1;
}

/* ------------------------------------------------------------ object → set */

static int toset_walk(const sctx *s, const cJSON *v, nkind k, fsn *node, int depth)
{
    if (k.k == NK_LEAF || !kind_matches(k.k, v))
        return 0;
    if (depth > FS_MAX_DEPTH)
        return -EINVAL;
    pelist l;
    int rc = pelist_build(&l, k, v);
    for (int i = 0; rc == 0 && i < l.n; i++) {
        nkind ck = child_kind(s, k.k, l.v[i]);
        fsn *cn = fsn_add(node, l.pe[i]);
        if (!cn) {
            rc = -ENOMEM;
            break;
        }
        if (memberable(k.k, ck, l.v[i]))
            cn->member = 1;
        rc = toset_walk(s, l.v[i], ck, cn, depth + 1);
    }
    pelist_release(&l);
    return rc;
}

/* ---------------------------------------------------------------- comparison
 */

typedef struct cmpres {
    fsn *added, *removed, *modified;
} cmpres;

static int container_empty(nk k, const cJSON *v)
{
    return !v || !kind_matches(k, v) || !v->child;
}

static int cmp_walk(const sctx *s, const cJSON *l, const cJSON *r, nkind k, fspath *p, cmpres *res)
{
    int rc = 0;
    if (k.k == NK_LEAF || (container_empty(k.k, l) && container_empty(k.k, r))) {
        if (!l)
            return fsn_insert(res->added, p->pe, p->n);
        if (!r)
            return fsn_insert(res->removed, p->pe, p->n);
        if (!cJSON_Compare(l, r, 1))
            return fsn_insert(res->modified, p->pe, p->n);
        return 0;
    }
    if (p->n >= FS_MAX_DEPTH)
        return -EINVAL;
    pelist ll, rl;
    memset(&rl, 0, sizeof(rl));
    rc = pelist_build(&ll, k, kind_matches(k.k, l) ? l : NULL);
    if (rc == 0)
        rc = pelist_build(&rl, k, kind_matches(k.k, r) ? r : NULL);
    for (int i = 0; rc == 0 && i < ll.n; i++) {
        int j = pelist_find(&rl, ll.pe[i]);
        if (pelist_find(&ll, ll.pe[i]) != i)
            continue; /* duplicate key: the first item wins */
        const cJSON *rv = j >= 0 ? rl.v[j] : NULL;
        nkind ck = child_kind(s, k.k, rv ? rv : ll.v[i]);
        p->pe[p->n++] = ll.pe[i];
        rc = cmp_walk(s, ll.v[i], rv, ck, p, res);
        p->n--;
    }
    for (int j = 0; rc == 0 && j < rl.n; j++) {
        if (pelist_find(&ll, rl.pe[j]) >= 0 || pelist_find(&rl, rl.pe[j]) != j)
            continue;
        p->pe[p->n++] = rl.pe[j];
        rc = cmp_walk(s, NULL, rl.v[j], child_kind(s, k.k, rl.v[j]), p, res);
        p->n--;
    }
    pelist_release(&ll);
    pelist_release(&rl);
    if (rc == 0 && !l)
        rc = fsn_insert(res->added, p->pe, p->n);
    else if (rc == 0 && !r)
        rc = fsn_insert(res->removed, p->pe, p->n);
    return rc;
}

/* --------------------------------------------------------------------- merge
 */

static cJSON *merge_walk(const sctx *s, const cJSON *l, const cJSON *r, nkind k, int depth);

static int merge_add(cJSON *out, const cJSON *item)
{
    if (!item)
        return -ENOMEM;
    cJSON_AddItemToArray(out, (cJSON *)item);
    return 0;
}

/* Associative/set lists: the live order, with the config's items placed the
 * way the server interleaves them (shared items follow the config's order). */
static cJSON *merge_list(const sctx *s, const cJSON *l, const cJSON *r, nkind k, int depth)
{
    pelist ll, rl;
    cJSON *out = cJSON_CreateArray();
    char *rmerged = NULL;
    int *shared = NULL, ns = 0, si = 0, next = -1, rc = -ENOMEM;
    memset(&rl, 0, sizeof(rl));
    memset(&ll, 0, sizeof(ll));
    if (!out || pelist_build(&ll, k, l) < 0 || pelist_build(&rl, k, r) < 0)
        goto out;
    rmerged = calloc((size_t)rl.n + 1, 1);
    shared = calloc((size_t)rl.n + 1, sizeof(int));
    if (!rmerged || !shared)
        goto out;
    for (int j = 0; j < rl.n; j++)
        if (pelist_find(&ll, rl.pe[j]) >= 0)
            shared[ns++] = j;
    next = ns > 0 ? shared[si++] : -1;
    int li = 0, ri = 0;
    rc = 0;
    while (rc == 0 && (li < ll.n || ri < rl.n)) {
        if (li < ll.n && ri < rl.n) {
            if (strcmp(ll.pe[li], rl.pe[ri]) == 0) {
                rc = merge_add(out, merge_walk(s, ll.v[li], rl.v[ri], child_kind(s, k.k, rl.v[ri]),
                                               depth + 1));
                rmerged[ri] = 1;
                li++, ri++;
                next = si < ns ? shared[si++] : -1;
                continue;
            }
            if (pelist_find(&rl, ll.pe[li]) >= 0 && next >= 0 &&
                strcmp(rl.pe[next], ll.pe[li]) != 0) {
                li++; /* shared, but not the next one in the config's order */
                continue;
            }
        }
        if (li < ll.n) {
            int j = pelist_find(&rl, ll.pe[li]);
            if (j < 0) {
                rc = merge_add(out, cJSON_Duplicate(ll.v[li], 1));
                li++;
                continue;
            }
            if (rmerged[j]) {
                li++;
                continue;
            }
        }
        if (ri < rl.n) {
            int i = pelist_find(&ll, rl.pe[ri]);
            rc = merge_add(out, merge_walk(s, i >= 0 ? ll.v[i] : NULL, rl.v[ri],
                                           child_kind(s, k.k, rl.v[ri]), depth + 1));
            rmerged[ri] = 1;
            if (next >= 0 && strcmp(rl.pe[next], rl.pe[ri]) == 0)
                next = si < ns ? shared[si++] : -1;
            ri++;
        }
    }
out:
    pelist_release(&ll);
    pelist_release(&rl);
    free(rmerged);
    free(shared);
    if (rc < 0) {
        cJSON_Delete(out);
        out = NULL;
    }
    return out;
}

/* live ⊕ config: config values win, maps and lists merge; NULL on failure. */
static cJSON *merge_walk(const sctx *s, const cJSON *l, const cJSON *r, nkind k, int depth)
{
    if (!r)
        return cJSON_Duplicate(l, 1);
    if (!l || k.k == NK_LEAF || !kind_matches(k.k, l) || !kind_matches(k.k, r) ||
        depth > FS_MAX_DEPTH)
        return cJSON_Duplicate(r, 1);
    if (k.k == NK_ALIST || k.k == NK_SET)
        return merge_list(s, l, r, k, depth);
    cJSON *out = cJSON_CreateObject();
    if (!out)
        return NULL;
    /* `first` sets the key order; the other side's extra keys follow. */
    const cJSON *first = s->config_order ? r : l, *second = s->config_order ? l : r;
    for (const cJSON *fc = first->child; fc; fc = fc->next) {
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(second, fc->string);
        const cJSON *lc = s->config_order ? sc : fc, *rc = s->config_order ? fc : sc;
        cJSON *m = merge_walk(s, lc, rc, child_kind(s, k.k, rc ? rc : lc), depth + 1);
        if (!m)
            goto fail;
        cJSON_AddItemToObject(out, fc->string, m);
    }
    for (const cJSON *sc = second->child; sc; sc = sc->next) {
        if (cJSON_GetObjectItemCaseSensitive(first, sc->string))
            continue;
        cJSON *m = cJSON_Duplicate(sc, 1);
        if (!m)
            goto fail;
        cJSON_AddItemToObject(out, sc->string, m);
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/* --------------------------------------------------------------------- prune
 */

/* Removes from v every ownable path at or below a member of `last` (what the
 * applier owned before) that no manager owns now. Maps and lists this empties
 * are dropped, as the server's Go types omit them. */
static int prune_walk(const sctx *s, cJSON *v, nkind k, const fsn *last, const fsn *managed,
                      int inscope, int depth)
{
    if (k.k == NK_LEAF || !kind_matches(k.k, v))
        return 0;
    if (depth > FS_MAX_DEPTH)
        return -EINVAL;
    int idx = 0, rc = 0;
    cJSON *c = v->child;
    while (c && rc == 0) {
        cJSON *nextc = c->next;
        char *pe = child_pe(k, c, idx++);
        if (!pe)
            return -ENOMEM;
        nkind ck = child_kind(s, k.k, c);
        const fsn *lc = fsn_get(last, pe), *mc = fsn_get(managed, pe);
        int cin = inscope || (lc && lc->member);
        if (cin && memberable(k.k, ck, c) && !(mc && mc->member)) {
            cJSON_Delete(cJSON_DetachItemViaPointer(v, c));
        } else if ((lc || cin) && is_container(ck.k) && kind_matches(ck.k, c)) {
            int had = c->child != NULL;
            rc = prune_walk(s, c, ck, lc, mc, cin, depth + 1);
            if (rc == 0 && had && !c->child && k.k == NK_STRUCT && ck.k != NK_STRUCT &&
                strcmp(c->string, "containers") != 0)
                cJSON_Delete(cJSON_DetachItemViaPointer(v, c));
        }
        free(pe);
        c = nextc;
    }
    return rc;
}

/* ------------------------------------------------------------ managedFields */

typedef struct fsentry {
    char *manager, *operation, *api_version, *time, *subresource; /* time/subresource may be NULL */
    fsn *set;
} fsentry;

typedef struct fsentries {
    fsentry *v;
    size_t n, cap;
} fsentries;

static void fsentry_release(fsentry *e)
{
    free(e->manager);
    free(e->operation);
    free(e->api_version);
    free(e->time);
    free(e->subresource);
    fsn_free(e->set);
    memset(e, 0, sizeof(*e));
}

static void fsentries_release(fsentries *es)
{
    for (size_t i = 0; i < es->n; i++)
        fsentry_release(&es->v[i]);
    free(es->v);
    memset(es, 0, sizeof(*es));
}

static char *dup_or_null(const char *s)
{
    return (s && *s) ? strdup(s) : NULL;
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Appends an empty entry; returns it or NULL on ENOMEM. */
static fsentry *fsentries_add(fsentries *es, const char *manager, const char *op,
                              const char *api_version, const char *subresource)
{
    if (es->n == es->cap) {
        size_t nc = es->cap ? es->cap * 2 : 4;
        fsentry *nv = realloc(es->v, nc * sizeof(*nv));
        if (!nv)
            return NULL;
        es->v = nv;
        es->cap = nc;
    }
    fsentry *e = &es->v[es->n];
    memset(e, 0, sizeof(*e));
    e->manager = strdup(manager);
    e->operation = strdup(op);
    e->api_version = strdup(api_version ? api_version : "");
    e->subresource = dup_or_null(subresource);
    e->set = fsn_new(NULL);
    if (!e->manager || !e->operation || !e->api_version || !e->set ||
        (subresource && *subresource && !e->subresource)) {
        fsentry_release(e);
        return NULL;
    }
    es->n++;
    return e;
}

/* An Apply entry is identified by manager+subresource, an Update entry also by
 * apiVersion. */
static fsentry *fsentries_find(fsentries *es, const char *manager, const char *op,
                               const char *api_version, const char *subresource)
{
    const char *sub = (subresource && *subresource) ? subresource : NULL;
    for (size_t i = 0; i < es->n; i++) {
        fsentry *e = &es->v[i];
        if (strcmp(e->manager, manager) == 0 && strcmp(e->operation, op) == 0 &&
            same(e->subresource, sub) &&
            (strcmp(op, "Apply") == 0 || strcmp(e->api_version, api_version) == 0))
            return e;
    }
    return NULL;
}

static void fsentries_drop_empty(fsentries *es)
{
    size_t w = 0;
    for (size_t i = 0; i < es->n; i++) {
        if (fsn_empty(es->v[i].set))
            fsentry_release(&es->v[i]);
        else
            es->v[w++] = es->v[i];
    }
    es->n = w;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int fsentries_parse(fsentries *es, const cJSON *obj)
{
    memset(es, 0, sizeof(*es));
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *mf = cJSON_GetObjectItemCaseSensitive(md, "managedFields");
    if (!mf || cJSON_IsNull(mf))
        return 0;
    if (!cJSON_IsArray(mf))
        return -EINVAL;
    for (const cJSON *j = mf->child; j; j = j->next) {
        const char *manager = jstr(j, "manager"), *op = jstr(j, "operation");
        const char *type = jstr(j, "fieldsType");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "fieldsV1");
        if (!manager || !op || (type && strcmp(type, "FieldsV1") != 0))
            return -EINVAL;
        fsentry *e = fsentries_add(es, manager, op, jstr(j, "apiVersion"), jstr(j, "subresource"));
        if (!e)
            return -ENOMEM;
        if (jstr(j, "time") && !(e->time = strdup(jstr(j, "time"))))
            return -ENOMEM;
        if (f) {
            int rc = fsn_from_json(e->set, f, 0);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/*
 * The entries a non-apply write starts from. As on the real server
 * (fieldmanager's Update decodes the new object's managedFields first, which
 * client-go's csaupgrade relies on), managedFields set in the written object
 * replace the live ones when the write is to the main resource, the list is
 * not empty and it decodes; otherwise the live ones stay, so a client that
 * does not know about managedFields cannot drop them. One difference: the
 * real server also takes `[{}]` (a way to clear them all); this one keeps the
 * live entries then, since an entry without a manager does not decode here.
 */
static int fsentries_for_write(fsentries *es, const cJSON *live, const cJSON *updated,
                               const char *subresource)
{
    const cJSON *mf = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(updated, "metadata"), "managedFields");
    if (!subresource && cJSON_IsArray(mf) && cJSON_GetArraySize(mf) > 0) {
        int rc = fsentries_parse(es, updated);
        if (rc == 0 || rc == -ENOMEM)
            return rc;
        fsentries_release(es);
    }
    return fsentries_parse(es, live);
}

/* Seconds since the epoch of an RFC 3339 time; 0 when absent or unparsable. */
static long long rfc3339_secs(const char *t)
{
    optime v;
    return optime_parse(t, 0, &v) == 0 ? v.sec : 0;
}

static int entry_cmp(const void *x, const void *y)
{
    const fsentry *a = x, *b = y;
    int c = strcmp(a->operation, b->operation);
    if (c)
        return c;
    long long ta = rfc3339_secs(a->time), tb = rfc3339_secs(b->time);
    if (ta != tb)
        return ta < tb ? -1 : 1;
    if ((c = strcmp(a->manager, b->manager)))
        return c;
    if ((c = strcmp(a->api_version, b->api_version)))
        return c;
    return strcmp(a->subresource ? a->subresource : "", b->subresource ? b->subresource : "");
}

/* Sorts the entries and writes them as obj.metadata.managedFields. */
static int fsentries_encode(fsentries *es, cJSON *obj)
{
    cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!cJSON_IsObject(md))
        return -EINVAL;
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return -ENOMEM;
    if (es->n > 1)
        qsort(es->v, es->n, sizeof(fsentry), entry_cmp);
    for (size_t i = 0; i < es->n; i++) {
        fsentry *e = &es->v[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            goto fail;
        cJSON_AddItemToArray(arr, o);
        fsn_sort(e->set);
        cJSON *f = fsn_to_json(e->set);
        if (!f || !cJSON_AddStringToObject(o, "manager", e->manager) ||
            !cJSON_AddStringToObject(o, "operation", e->operation) ||
            !cJSON_AddStringToObject(o, "apiVersion", e->api_version) ||
            (e->time && !cJSON_AddStringToObject(o, "time", e->time)) ||
            !cJSON_AddStringToObject(o, "fieldsType", "FieldsV1")) {
            cJSON_Delete(f);
            goto fail;
        }
        cJSON_AddItemToObject(o, "fieldsV1", f);
        if (e->subresource && !cJSON_AddStringToObject(o, "subresource", e->subresource))
            goto fail;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
    if (es->n == 0) {
        cJSON_Delete(arr);
        return 0;
    }
    cJSON_AddItemToObject(md, "managedFields", arr);
    return 0;
fail:
    cJSON_Delete(arr);
    return -ENOMEM;
}

/* ------------------------------------------------------------- Status bodies
 */

static cJSON *status_new(const char *reason, const char *message)
{
    cJSON *st = cJSON_CreateObject();
    if (!st)
        return NULL;
    if (!cJSON_AddStringToObject(st, "kind", "Status") ||
        !cJSON_AddStringToObject(st, "apiVersion", "v1") ||
        !cJSON_AddObjectToObject(st, "metadata") ||
        !cJSON_AddStringToObject(st, "status", "Failure") ||
        !cJSON_AddStringToObject(st, "message", message) ||
        !cJSON_AddStringToObject(st, "reason", reason)) {
        cJSON_Delete(st);
        return NULL;
    }
    return st;
}

static int status_finish(cJSON *st, int code)
{
    return cJSON_AddNumberToObject(st, "code", code) ? 0 : -ENOMEM;
}

typedef struct conflict {
    const fsentry *owner;
    fsn *set;
} conflict;

static int conflict_order(const void *x, const void *y)
{
    const conflict *a = x, *b = y;
    int c = strcmp(a->owner->manager, b->owner->manager);
    if (c == 0)
        c = strcmp(a->owner->operation, b->owner->operation);
    if (c == 0)
        c = strcmp(a->owner->api_version, b->owner->api_version);
    return c;
}

/* `"kube-controller-manager" with subresource "status" using apps/v1` */
static int manager_print(opbuf *b, const fsentry *e)
{
    int rc = opbuf_printf(b, "\"%s\"", e->manager);
    if (rc == 0 && e->subresource)
        rc = opbuf_printf(b, " with subresource \"%s\"", e->subresource);
    if (rc == 0 && strcmp(e->operation, "Update") == 0)
        rc = opbuf_printf(b, " using %s", e->api_version);
    return rc;
}

typedef struct conflict_acc {
    opbuf *msg;
    cJSON *causes;
    const char *who; /* the printed manager */
    int total;
    int single;
} conflict_acc;

static int conflict_visit(fspath *p, void *arg)
{
    conflict_acc *a = arg;
    opbuf path;
    opbuf_init(&path, 64 * 1024);
    int rc = path_print(&path, p->pe, p->n);
    if (rc == 0 && a->single)
        rc = opbuf_printf(a->msg, "conflict with %s: %s", a->who, opbuf_str(&path));
    else if (rc == 0)
        rc = opbuf_printf(a->msg, "\n- %s", opbuf_str(&path));
    cJSON *cause = rc == 0 ? cJSON_CreateObject() : NULL;
    if (rc == 0 && !cause)
        rc = -ENOMEM;
    if (rc == 0) {
        cJSON_AddItemToArray(a->causes, cause);
        opbuf who;
        opbuf_init(&who, 4096);
        rc = opbuf_printf(&who, "conflict with %s", a->who);
        if (rc == 0 && (!cJSON_AddStringToObject(cause, "reason", "FieldManagerConflict") ||
                        !cJSON_AddStringToObject(cause, "message", opbuf_str(&who)) ||
                        !cJSON_AddStringToObject(cause, "field", opbuf_str(&path))))
            rc = -ENOMEM;
        opbuf_release(&who);
    }
    opbuf_release(&path);
    return rc;
}

static int count_visit(fspath *p, void *arg)
{
    (void)p;
    (*(int *)arg)++;
    return 0;
}

/* The 409 body of an unforced apply that conflicts with other managers. */
static int conflict_status(conflict *cs, size_t n, cJSON **out)
{
    opbuf msg;
    fspath p;
    int total = 0, rc = 0;
    cJSON *st = NULL, *causes = cJSON_CreateArray();
    opbuf_init(&msg, 1 << 20);
    p.n = 0;
    if (!causes)
        return -ENOMEM;
    qsort(cs, n, sizeof(*cs), conflict_order);
    for (size_t i = 0; i < n; i++) {
        fsn_sort(cs[i].set);
        fsn_iterate(cs[i].set, &p, count_visit, &total);
    }
    rc = total == 1 ? opbuf_puts(&msg, "Apply failed with 1 conflict: ")
                    : opbuf_printf(&msg, "Apply failed with %d conflicts: ", total);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        opbuf who;
        opbuf_init(&who, 4096);
        rc = manager_print(&who, cs[i].owner);
        if (rc == 0 && total != 1)
            rc = opbuf_printf(&msg, "%sconflicts with %s:", i ? "\n" : "", opbuf_str(&who));
        conflict_acc acc = {&msg, causes, opbuf_str(&who), total, total == 1};
        if (rc == 0)
            rc = fsn_iterate(cs[i].set, &p, conflict_visit, &acc);
        opbuf_release(&who);
    }
    if (rc == 0 && !(st = status_new("Conflict", opbuf_str(&msg))))
        rc = -ENOMEM;
    if (rc == 0) {
        cJSON *details = cJSON_AddObjectToObject(st, "details");
        if (!details)
            rc = -ENOMEM;
        else {
            cJSON_AddItemToObject(details, "causes", causes);
            causes = NULL;
            rc = status_finish(st, 409);
        }
    }
    cJSON_Delete(causes);
    opbuf_release(&msg);
    if (rc < 0) {
        cJSON_Delete(st);
        st = NULL;
    }
    *out = st;
    return rc;
}

static int simple_status(int code, const char *reason, const char *message, cJSON **out)
{
    cJSON *st = status_new(reason, message);
    if (!st || status_finish(st, code) < 0) {
        cJSON_Delete(st);
        return -ENOMEM;
    }
    *out = st;
    return 0;
}

/* ------------------------------------------------------------------- helpers
 */

static const char *meta_str(const cJSON *obj, const char *name)
{
    return jstr(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), name);
}

static void sctx_init(sctx *s, const cJSON *obj)
{
    const char *kind = jstr(obj, "kind"), *av = jstr(obj, "apiVersion");
    s->service = kind && av && strcmp(kind, "Service") == 0 && strcmp(av, "v1") == 0;
    s->config_order = 0;
}

/* A copy of obj without metadata.managedFields; NULL on ENOMEM. */
static cJSON *dup_unmanaged(const cJSON *obj)
{
    cJSON *c = cJSON_Duplicate(obj, 1);
    if (c)
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "metadata"),
                                                "managedFields");
    return c;
}

/* Sets dst[name] to a copy of src[name], or removes it when src has none. */
static int copy_field(cJSON *dst, const cJSON *src, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, name);
    cJSON_DeleteItemFromObjectCaseSensitive(dst, name);
    if (!v)
        return 0;
    cJSON *d = cJSON_Duplicate(v, 1);
    if (!d)
        return -ENOMEM;
    cJSON_AddItemToObject(dst, name, d);
    return 0;
}

/* The fields the server never records as owned, and the reset subtree. */
static void strip_set(fsn *set, const char *subresource, int status_in_main)
{
    static const char *const meta[] = {
        "f:name",        "f:namespace",  "f:creationTimestamp", "f:selfLink",        "f:uid",
        "f:clusterName", "f:generation", "f:managedFields",     "f:resourceVersion", NULL};
    fsn_unmember(set, "f:apiVersion", NULL);
    fsn_unmember(set, "f:kind", NULL);
    fsn_unmember(set, "f:metadata", NULL);
    for (const char *const *m = meta; *m; m++)
        fsn_unmember(set, "f:metadata", *m);
    if (subresource && strcmp(subresource, "status") == 0)
        fsn_drop_subtree(set, "f:spec");
    else if (!status_in_main)
        fsn_drop_subtree(set, "f:status");
    fsn_compact(set);
}

/* Puts the keys named in `first` (in that order) before the others, which
 * keep their order. (Rebuilt by hand: cJSON_InsertItemInArray drops items in
 * some positions on cJSON 1.7.15.) */
static int reorder(cJSON *obj, const char *const *first, size_t nfirst)
{
    if (!cJSON_IsObject(obj) || !obj->child)
        return 0;
    int n = cJSON_GetArraySize(obj), k = 0;
    cJSON **items = calloc((size_t)n, sizeof(*items));
    if (!items)
        return -ENOMEM;
    for (size_t i = 0; i < nfirst; i++) {
        cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(obj, first[i]);
        if (it)
            items[k++] = it;
    }
    while (obj->child)
        items[k++] = cJSON_DetachItemViaPointer(obj, obj->child);
    for (int i = 0; i < k; i++)
        cJSON_AddItemToObject(obj, items[i]->string, items[i]);
    free(items);
    return 0;
}

/* ObjectMeta's JSON fields in the order Go declares (and serialises) them. */
const char *const fakessa_object_meta[] = {
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "clusterName",
    "managedFields",
    NULL,
};

/* The key orders Go serialises: the top level and ObjectMeta. */
int fakessa_order_keys(cJSON *obj)
{
    static const char *const top[] = {"kind", "apiVersion", "metadata"};
    size_t nmeta = 0;
    while (fakessa_object_meta[nmeta])
        nmeta++;
    cJSON *tmpl =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "spec"), "template");
    int rc = reorder(obj, top, 3);
    if (rc == 0)
        rc = reorder(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), fakessa_object_meta, nmeta);
    if (rc == 0)
        rc =
            reorder(cJSON_GetObjectItemCaseSensitive(tmpl, "metadata"), fakessa_object_meta, nmeta);
    return rc;
}

static int check_body(const cJSON *obj, int apply, cJSON **status)
{
    *status = NULL;
    if (!cJSON_IsObject(obj))
        return simple_status(400, "BadRequest", "the body must be a JSON or YAML object", status);
    if (!jstr(obj, "apiVersion") || !jstr(obj, "kind"))
        return simple_status(400, "BadRequest", "Object 'Kind' or 'apiVersion' is missing", status);
    if (!meta_str(obj, "name"))
        return simple_status(400, "BadRequest", "metadata.name is required", status);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (apply && cJSON_GetObjectItemCaseSensitive(md, "managedFields"))
        return simple_status(400, "BadRequest", "metadata.managedFields must be nil", status);
    return 0;
}

/* "deployments.apps": the resource the server names in its messages. */
static void resource_name(const cJSON *obj, char *out, size_t n)
{
    const char *kind = jstr(obj, "kind"), *av = jstr(obj, "apiVersion");
    const char *slash = av ? strchr(av, '/') : NULL;
    char plural[128];
    size_t k = 0;
    for (; kind && kind[k] && k + 4 < sizeof(plural); k++)
        plural[k] = (char)((kind[k] >= 'A' && kind[k] <= 'Z') ? kind[k] - 'A' + 'a' : kind[k]);
    plural[k] = '\0';
    if (k > 0 && plural[k - 1] == 'y')
        strcpy(plural + k - 1, "ies");
    else if (k > 0 && plural[k - 1] == 's')
        strcpy(plural + k, "es");
    else
        strcpy(plural + k, "s");
    if (slash)
        snprintf(out, n, "%s.%.*s", plural, (int)(slash - av), av);
    else
        snprintf(out, n, "%s", plural);
}

/* The preconditions a client sets in the body: metadata.uid (optipod does, so
 * that a deleted-and-recreated object is never re-created by its apply) and
 * metadata.resourceVersion (optimistic concurrency). */
static int check_preconditions(const cJSON *live, const cJSON *body, cJSON **status)
{
    const char *want = meta_str(body, "uid");
    const char *have = live ? meta_str(live, "uid") : NULL;
    const char *rv = meta_str(body, "resourceVersion");
    const char *live_rv = live ? meta_str(live, "resourceVersion") : NULL;
    char res[200], msg[1024];
    *status = NULL;
    resource_name(body, res, sizeof(res));
    if (want && *want && !(have && strcmp(want, have) == 0)) {
        snprintf(msg, sizeof(msg),
                 "Operation cannot be fulfilled on %s \"%s\": uid mismatch: "
                 "Precondition failed: "
                 "UID in precondition: %s, UID in object meta: %s",
                 res, meta_str(body, "name"), want, have ? have : "");
        return simple_status(409, "Conflict", msg, status);
    }
    if (live && rv && *rv && !(live_rv && strcmp(rv, live_rv) == 0)) {
        snprintf(msg, sizeof(msg),
                 "Operation cannot be fulfilled on %s \"%s\": the object has been "
                 "modified; "
                 "please apply your changes to the latest version and try again",
                 res, meta_str(body, "name"));
        return simple_status(409, "Conflict", msg, status);
    }
    return 0;
}

static int build_result(cJSON *obj, fsentries *es, int created, fakessa_result *out)
{
    cJSON *st = NULL;
    int rc = fakessa_default(obj);
    if (rc == 0)
        rc = fakessa_validate(obj, &st);
    if (rc < 0) {
        cJSON_Delete(obj);
        return rc;
    }
    if (st) {
        out->http_status = 422;
        out->status = st;
        cJSON_Delete(obj);
        return 0;
    }
    rc = fsentries_encode(es, obj);
    if (rc < 0) {
        cJSON_Delete(obj);
        return rc;
    }
    rc = fakessa_order_keys(obj);
    if (rc < 0) {
        cJSON_Delete(obj);
        return rc;
    }
    out->http_status = created ? 201 : 200;
    out->object = obj;
    return 0;
}

/* ------------------------------------------------------------------ public */

void fakessa_result_release(fakessa_result *r)
{
    if (!r)
        return;
    cJSON_Delete(r->object);
    cJSON_Delete(r->status);
    memset(r, 0, sizeof(*r));
}

int fakessa_apply(const cJSON *live, const cJSON *applied, const char *manager, int force,
                  const char *now, fakessa_result *out)
{
    return fakessa_apply_ex(live, applied, manager, force, 0, now, out);
}

int fakessa_apply_ex(const cJSON *live, const cJSON *applied, const char *manager, int force,
                     int status_in_main, const char *now, fakessa_result *out)
{
    fsentries es;
    cmpres cr = {NULL, NULL, NULL};
    cJSON *base = NULL, *app = NULL, *merged = NULL, *st = NULL;
    fsn *last = NULL, *managed = NULL, *am = NULL;
    conflict *cs = NULL;
    size_t ncs = 0;
    char *prev_time = NULL;
    sctx s;
    fspath p;
    int rc;
    memset(&es, 0, sizeof(es));
    if (!out || !applied || !manager || !*manager || !now)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    p.n = 0;
    rc = -EINVAL;
    if ((live && !cJSON_IsObject(live)) || (rc = fsentries_parse(&es, live)) < 0)
        goto fail;
    if ((rc = check_body(applied, 1, &st)) < 0 || st ||
        (rc = check_preconditions(live, applied, &st)) < 0 || st) {
        if (rc == 0) {
            out->http_status = (int)cJSON_GetObjectItemCaseSensitive(st, "code")->valuedouble;
            out->status = st;
        }
        goto done;
    }
    sctx_init(&s, applied);
    s.config_order = live == NULL;
    rc = -ENOMEM;
    base = live ? dup_unmanaged(live) : fakessa_zero_object(applied);
    app = cJSON_Duplicate(applied, 1);
    if (!base || !app)
        goto fail;
    if (!status_in_main)
        cJSON_DeleteItemFromObjectCaseSensitive(app, "status");
    const nkind root = {NK_STRUCT, NULL};
    if (!(merged = merge_walk(&s, base, app, root, 0)))
        goto fail;

    /* The applier's set is now exactly the config's. */
    fsentry *self = fsentries_find(&es, manager, "Apply", NULL, NULL);
    if (!self && !(self = fsentries_add(&es, manager, "Apply", jstr(app, "apiVersion"), NULL)))
        goto fail;
    last = self->set;
    prev_time = self->time;
    self->time = NULL;
    if (!(self->set = fsn_new(NULL)))
        goto fail;
    free(self->api_version);
    if (!(self->api_version = strdup(jstr(app, "apiVersion"))))
        goto fail;
    if ((rc = toset_walk(&s, app, root, self->set, 0)) < 0)
        goto fail;
    strip_set(self->set, NULL, status_in_main);

    rc = -ENOMEM;
    if (!(managed = fsn_new(NULL)))
        goto fail;
    for (size_t i = 0; i < es.n; i++)
        if ((rc = fsn_union(managed, es.v[i].set)) < 0)
            goto fail;
    if (!fsn_empty(last) && (rc = prune_walk(&s, merged, root, last, managed, 0, 0)) < 0)
        goto fail;

    rc = -ENOMEM;
    cr.added = fsn_new(NULL);
    cr.removed = fsn_new(NULL);
    cr.modified = fsn_new(NULL);
    am = fsn_new(NULL);
    cs = calloc(es.n + 1, sizeof(*cs));
    if (!cr.added || !cr.removed || !cr.modified || !am || !cs)
        goto fail;
    if ((rc = cmp_walk(&s, base, merged, root, &p, &cr)) < 0 ||
        (rc = fsn_union(am, cr.added)) < 0 || (rc = fsn_union(am, cr.modified)) < 0)
        goto fail;
    size_t self_idx = (size_t)(self - es.v);
    for (size_t i = 0; i < es.n; i++) {
        if (i == self_idx)
            continue;
        fsn *c = fsn_intersect(es.v[i].set, am);
        if (!c) {
            rc = -ENOMEM;
            goto fail;
        }
        if (fsn_empty(c)) {
            fsn_free(c);
            continue;
        }
        cs[ncs].owner = &es.v[i];
        cs[ncs++].set = c;
    }
    if (ncs && !force) {
        if ((rc = conflict_status(cs, ncs, &out->status)) < 0)
            goto fail;
        out->http_status = 409;
        goto done;
    }
    for (size_t i = 0; i < es.n; i++) {
        if (i == self_idx)
            continue;
        fsn_subtract(es.v[i].set, am);
        fsn_subtract(es.v[i].set, cr.removed);
    }
    /* A no-op apply keeps the entry's time, as the server does. */
    int noop = live && cJSON_Compare(base, merged, 1) && prev_time;
    self->time = noop ? prev_time : strdup(now);
    if (noop)
        prev_time = NULL;
    if (!self->time) {
        rc = -ENOMEM;
        goto fail;
    }
    fsentries_drop_empty(&es);
    rc = build_result(merged, &es, live == NULL, out);
    merged = NULL;
    if (rc < 0)
        goto fail;
done:
    rc = 0;
fail:
    if (rc < 0)
        fakessa_result_release(out);
    for (size_t i = 0; i < ncs; i++)
        fsn_free(cs[i].set);
    free(cs);
    free(prev_time);
    fsn_free(last);
    fsn_free(managed);
    fsn_free(am);
    fsn_free(cr.added);
    fsn_free(cr.removed);
    fsn_free(cr.modified);
    cJSON_Delete(base);
    cJSON_Delete(app);
    cJSON_Delete(merged);
    fsentries_release(&es);
    return rc;
}

int fakessa_update(const cJSON *live, const cJSON *updated, const char *manager,
                   const char *subresource, const char *now, fakessa_result *out)
{
    fsentries es;
    cmpres cr = {NULL, NULL, NULL};
    cJSON *base = NULL, *upd = NULL, *st = NULL;
    fsn *am = NULL;
    sctx s;
    fspath p;
    int rc;
    int status_sub = subresource && strcmp(subresource, "status") == 0;
    memset(&es, 0, sizeof(es));
    if (!out || !updated || !manager || !*manager || !now)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    p.n = 0;
    rc = -EINVAL;
    if ((live && !cJSON_IsObject(live)) ||
        (rc = fsentries_for_write(&es, live, updated, subresource)) < 0)
        goto fail;
    if ((rc = check_body(updated, 0, &st)) < 0 || st ||
        (rc = check_preconditions(live, updated, &st)) < 0 || st) {
        if (rc == 0) {
            out->http_status = (int)cJSON_GetObjectItemCaseSensitive(st, "code")->valuedouble;
            out->status = st;
        }
        goto done;
    }
    sctx_init(&s, updated);
    rc = -ENOMEM;
    base = live ? dup_unmanaged(live) : fakessa_zero_object(updated);
    upd = dup_unmanaged(updated);
    if (!base || !upd)
        goto fail;
    /* Writes to the main resource cannot change status, and /status only status.
     */
    if ((rc = copy_field(upd, base, status_sub ? "spec" : "status")) < 0 ||
        (rc = fakessa_default(upd)) < 0)
        goto fail;

    rc = -ENOMEM;
    cr.added = fsn_new(NULL);
    cr.removed = fsn_new(NULL);
    cr.modified = fsn_new(NULL);
    am = fsn_new(NULL);
    if (!cr.added || !cr.removed || !cr.modified || !am)
        goto fail;
    const nkind root = {NK_STRUCT, NULL};
    if ((rc = cmp_walk(&s, base, upd, root, &p, &cr)) < 0 || (rc = fsn_union(am, cr.added)) < 0 ||
        (rc = fsn_union(am, cr.modified)) < 0)
        goto fail;
    for (size_t i = 0; i < es.n; i++) {
        fsn_subtract(es.v[i].set, am);
        fsn_subtract(es.v[i].set, cr.removed);
    }
    fsentries_drop_empty(&es);
    strip_set(am, subresource, 0);
    if (!fsn_empty(am)) {
        const char *av = jstr(upd, "apiVersion");
        fsentry *e = fsentries_find(&es, manager, "Update", av, subresource);
        rc = -ENOMEM;
        if (!e && !(e = fsentries_add(&es, manager, "Update", av, subresource)))
            goto fail;
        free(e->time);
        if (!(e->time = strdup(now)) || (rc = fsn_union(e->set, am)) < 0)
            goto fail;
    }
    rc = build_result(upd, &es, live == NULL, out);
    upd = NULL;
    if (rc < 0)
        goto fail;
done:
    rc = 0;
fail:
    if (rc < 0)
        fakessa_result_release(out);
    fsn_free(am);
    fsn_free(cr.added);
    fsn_free(cr.removed);
    fsn_free(cr.modified);
    cJSON_Delete(base);
    cJSON_Delete(upd);
    fsentries_release(&es);
    return rc;
}
