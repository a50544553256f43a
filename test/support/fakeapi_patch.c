/*
 * fakeapi: pure JSON helpers — merge patches, selectors, base64.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "support/fakeapi_int.h"
#include "util/b64.h"
#include "util/buf.h"

cJSON *fakeapi_merge_patch(const cJSON *target, const cJSON *patch)
{
    if (!cJSON_IsObject(patch))
        return cJSON_Duplicate(patch, 1);
    cJSON *out = cJSON_IsObject(target) ? cJSON_Duplicate(target, 1) : cJSON_CreateObject();
    if (!out)
        return NULL;
    const cJSON *p;
    cJSON_ArrayForEach(p, patch)
    {
        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(out, p->string);
            continue;
        }
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(out, p->string);
        cJSON *merged = fakeapi_merge_patch(cur, p);
        if (!merged) {
            cJSON_Delete(out);
            return NULL;
        }
        if (cur)
            cJSON_ReplaceItemInObjectCaseSensitive(out, p->string, merged);
        else
            cJSON_AddItemToObject(out, p->string, merged);
    }
    return out;
}

static const char *merge_key_for(const char *field)
{
    static const char *const names[] = {
        "containers",       "initContainers", "ephemeralContainers", "volumes",  "env",
        "imagePullSecrets", "hostAliases",    "ownerReferences",     "webhooks", NULL};
    if (!field)
        return NULL;
    for (size_t i = 0; names[i]; i++)
        if (strcmp(field, names[i]) == 0)
            return strcmp(field, "hostAliases") == 0       ? "ip"
                   : strcmp(field, "ownerReferences") == 0 ? "uid"
                                                           : "name";
    if (strcmp(field, "ports") == 0)
        return "containerPort";
    if (strcmp(field, "volumeMounts") == 0)
        return "mountPath";
    if (strcmp(field, "conditions") == 0)
        return "type";
    return NULL;
}

static cJSON *smp(const cJSON *target, const cJSON *patch, const char *field);

static int same_key(const cJSON *a, const cJSON *b, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, key);
    const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, key);
    return x && y && cJSON_Compare(x, y, 1);
}

static const char *directive(const cJSON *o)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "$patch");
    return cJSON_IsString(d) ? d->valuestring : NULL;
}

static cJSON *smp_list(const cJSON *target, const cJSON *patch, const char *key)
{
    cJSON *out = cJSON_IsArray(target) ? cJSON_Duplicate(target, 1) : cJSON_CreateArray();
    if (!out)
        return NULL;
    const cJSON *p;
    cJSON_ArrayForEach(p, patch)
    {
        if (cJSON_IsObject(p) && directive(p) && strcmp(directive(p), "replace") == 0) {
            /* the whole list is replaced by the other elements */
            cJSON_Delete(out);
            out = cJSON_CreateArray();
            const cJSON *q;
            cJSON_ArrayForEach(q, patch) if (q != p)
                cJSON_AddItemToArray(out, cJSON_Duplicate(q, 1));
            return out;
        }
    }
    cJSON_ArrayForEach(p, patch)
    {
        if (!cJSON_IsObject(p))
            continue;
        cJSON *cur = out->child;
        int idx = 0;
        while (cur && !same_key(cur, p, key)) {
            cur = cur->next;
            idx++;
        }
        const char *d = directive(p);
        if (d && strcmp(d, "delete") == 0) {
            if (cur)
                cJSON_DeleteItemFromArray(out, idx);
            continue;
        }
        cJSON *merged = smp(cur, p, NULL);
        if (!merged) {
            cJSON_Delete(out);
            return NULL;
        }
        if (cur)
            cJSON_ReplaceItemInArray(out, idx, merged);
        else
            cJSON_AddItemToArray(out, merged);
    }
    return out;
}

static cJSON *smp(const cJSON *target, const cJSON *patch, const char *field)
{
    if (cJSON_IsArray(patch)) {
        const char *key = merge_key_for(field);
        int objects = 1;
        const cJSON *p;
        cJSON_ArrayForEach(p, patch) if (!cJSON_IsObject(p) ||
                                         (!cJSON_GetObjectItemCaseSensitive(p, key ? key : "") &&
                                          !directive(p))) objects = 0;
        if (key && objects)
            return smp_list(target, patch, key);
        return cJSON_Duplicate(patch, 1);
    }
    if (!cJSON_IsObject(patch))
        return cJSON_Duplicate(patch, 1);
    const char *d = directive(patch);
    if (d && strcmp(d, "replace") == 0) {
        cJSON *o = cJSON_Duplicate(patch, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(o, "$patch");
        return o;
    }
    cJSON *out = cJSON_IsObject(target) ? cJSON_Duplicate(target, 1) : cJSON_CreateObject();
    if (!out)
        return NULL;
    const cJSON *p;
    cJSON_ArrayForEach(p, patch)
    {
        if (p->string[0] == '$')
            continue; /* $patch, $retainKeys, $setElementOrder/..., $deleteFromPrimitiveList/... */
        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(out, p->string);
            continue;
        }
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(out, p->string);
        cJSON *merged = smp(cur, p, p->string);
        if (!merged) {
            cJSON_Delete(out);
            return NULL;
        }
        if (cur)
            cJSON_ReplaceItemInObjectCaseSensitive(out, p->string, merged);
        else
            cJSON_AddItemToObject(out, p->string, merged);
    }
    return out;
}

cJSON *fakeapi_strategic_patch(const cJSON *target, const cJSON *patch)
{
    return smp(target, patch, NULL);
}

/* ---- RFC 6902 ------------------------------------------------------------------------- */

/* Split a JSON pointer into unescaped tokens; returns the count or -1. */
static int pointer_split(const char *ptr, char tok[][256], int max)
{
    if (!ptr || (*ptr && *ptr != '/'))
        return -1;
    int n = 0;
    const char *p = ptr;
    while (*p == '/') {
        if (n == max)
            return -1;
        p++;
        size_t k = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~') {
                if (*p == '0')
                    ch = '~';
                else if (*p == '1')
                    ch = '/';
                else
                    return -1;
                p++;
            }
            if (k + 1 >= 256)
                return -1;
            tok[n][k++] = ch;
        }
        tok[n][k] = '\0';
        n++;
    }
    return n;
}

static int array_index(const cJSON *arr, const char *t, int allow_end)
{
    int size = cJSON_GetArraySize(arr);
    if (allow_end && strcmp(t, "-") == 0)
        return size;
    if (!*t || strspn(t, "0123456789") != strlen(t) || (t[0] == '0' && t[1]) || strlen(t) > 9)
        return -1;
    int i = atoi(t);
    return i <= size - (allow_end ? 0 : 1) ? i : -1;
}

/* The parent container of the pointer's target and the last token. */
static cJSON *resolve_parent(cJSON *doc, const char *ptr, char last[256])
{
    char tok[32][256];
    int n = pointer_split(ptr, tok, 32);
    if (n <= 0)
        return NULL;
    cJSON *cur = doc;
    for (int i = 0; i < n - 1 && cur; i++) {
        if (cJSON_IsArray(cur)) {
            int idx = array_index(cur, tok[i], 0);
            cur = idx < 0 ? NULL : cJSON_GetArrayItem(cur, idx);
        } else if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok[i]);
        } else {
            cur = NULL;
        }
    }
    memcpy(last, tok[n - 1], 256);
    return cur;
}

static cJSON *resolve(cJSON *doc, const char *ptr)
{
    char last[256];
    if (ptr && !*ptr)
        return doc;
    cJSON *parent = resolve_parent(doc, ptr, last);
    if (cJSON_IsArray(parent)) {
        int idx = array_index(parent, last, 0);
        return idx < 0 ? NULL : cJSON_GetArrayItem(parent, idx);
    }
    return cJSON_IsObject(parent) ? cJSON_GetObjectItemCaseSensitive(parent, last) : NULL;
}

/* Takes ownership of value in every case. */
static int ptr_add(cJSON **doc, const char *ptr, cJSON *value)
{
    char last[256];
    if (!*ptr) {
        cJSON_Delete(*doc);
        *doc = value;
        return 0;
    }
    cJSON *parent = resolve_parent(*doc, ptr, last);
    if (cJSON_IsArray(parent)) {
        int idx = array_index(parent, last, 1);
        if (idx < 0)
            goto bad;
        if (idx == cJSON_GetArraySize(parent)) {
            cJSON_AddItemToArray(parent, value);
            return 0;
        }
        /* rebuilt by hand: cJSON_InsertItemInArray mislinks some positions on 1.7.15 */
        cJSON *rebuilt = cJSON_CreateArray();
        int i = 0;
        while (parent->child) {
            if (i++ == idx)
                cJSON_AddItemToArray(rebuilt, value);
            cJSON_AddItemToArray(rebuilt, cJSON_DetachItemViaPointer(parent, parent->child));
        }
        while (rebuilt->child)
            cJSON_AddItemToArray(parent, cJSON_DetachItemViaPointer(rebuilt, rebuilt->child));
        cJSON_Delete(rebuilt);
        return 0;
    }
    if (cJSON_IsObject(parent)) {
        if (cJSON_GetObjectItemCaseSensitive(parent, last))
            cJSON_ReplaceItemInObjectCaseSensitive(parent, last, value);
        else
            cJSON_AddItemToObject(parent, last, value);
        return 0;
    }
bad:
    cJSON_Delete(value);
    return -EINVAL;
}

static cJSON *ptr_detach(cJSON *doc, const char *ptr)
{
    char last[256];
    cJSON *parent = resolve_parent(doc, ptr, last);
    if (cJSON_IsArray(parent)) {
        int idx = array_index(parent, last, 0);
        return idx < 0 ? NULL : cJSON_DetachItemFromArray(parent, idx);
    }
    if (cJSON_IsObject(parent))
        return cJSON_DetachItemFromObjectCaseSensitive(parent, last);
    return NULL;
}

cJSON *fakeapi_json_patch(const cJSON *target, const cJSON *ops, int *err)
{
    *err = -EINVAL;
    if (!cJSON_IsArray(ops))
        return NULL;
    cJSON *doc = cJSON_Duplicate(target, 1);
    if (!doc) {
        *err = -ENOMEM;
        return NULL;
    }
    const cJSON *op;
    cJSON_ArrayForEach(op, ops)
    {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(op, "op");
        const cJSON *pth = cJSON_GetObjectItemCaseSensitive(op, "path");
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(op, "value");
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(op, "from");
        if (!cJSON_IsString(o) || !cJSON_IsString(pth))
            goto fail;
        const char *name = o->valuestring, *path = pth->valuestring;
        if (!strcmp(name, "add") || !strcmp(name, "replace")) {
            if (!val)
                goto fail;
            if (!strcmp(name, "replace") && !resolve(doc, path))
                goto fail;
            if (ptr_add(&doc, path, cJSON_Duplicate(val, 1)) < 0)
                goto fail;
        } else if (!strcmp(name, "remove")) {
            cJSON *gone = *path ? ptr_detach(doc, path) : NULL;
            if (!gone)
                goto fail;
            cJSON_Delete(gone);
        } else if (!strcmp(name, "test")) {
            cJSON *cur = resolve(doc, path);
            if (!val || !cur || !cJSON_Compare(cur, val, 1))
                goto fail;
        } else if (!strcmp(name, "move") || !strcmp(name, "copy")) {
            if (!cJSON_IsString(from))
                goto fail;
            cJSON *src = resolve(doc, from->valuestring);
            if (!src)
                goto fail;
            cJSON *v = !strcmp(name, "copy") ? cJSON_Duplicate(src, 1)
                                             : ptr_detach(doc, from->valuestring);
            if (!v || ptr_add(&doc, path, v) < 0)
                goto fail;
        } else {
            goto fail;
        }
    }
    *err = 0;
    return doc;
fail:
    cJSON_Delete(doc);
    return NULL;
}

/* ---- selectors ----------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
    return s;
}

/* Split on commas that are not inside parentheses. */
static char *next_term(char **cursor)
{
    char *s = *cursor;
    if (!s)
        return NULL;
    int depth = 0;
    for (char *p = s; *p; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        else if (*p == ',' && depth == 0) {
            *p = '\0';
            *cursor = p + 1;
            return s;
        }
    }
    *cursor = NULL;
    return s;
}

static int in_set(const char *set, const char *v)
{
    /* set is "(a,b,c)" */
    char *copy = strdup(set), *save = NULL;
    if (!copy)
        return 0;
    char *inner = copy + 1;
    char *close = strrchr(inner, ')');
    if (close)
        *close = '\0';
    int found = 0;
    for (char *t = strtok_r(inner, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (v && strcmp(trim(t), v) == 0)
            found = 1;
    free(copy);
    return found;
}

typedef const char *(*lookup_fn)(const cJSON *ctx, const char *key);

static const char *label_lookup(const cJSON *labels, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *field_lookup(const cJSON *obj, const char *path)
{
    char *copy = strdup(path), *save = NULL;
    const cJSON *cur = obj;
    if (!copy)
        return NULL;
    for (char *t = strtok_r(copy, ".", &save); t && cur; t = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, t);
    free(copy);
    if (cJSON_IsString(cur))
        return cur->valuestring;
    return NULL;
}

static int select_match(const char *selector, const cJSON *ctx, lookup_fn look)
{
    if (!selector || !*selector)
        return 1;
    char *copy = strdup(selector), *cursor = copy;
    int result = 1;
    if (!copy)
        return -1;
    char *term;
    while ((term = next_term(&cursor)) != NULL) {
        term = trim(term);
        if (!*term)
            continue;
        char *op;
        if ((op = strstr(term, "!=")) != NULL) {
            *op = '\0';
            const char *v = look(ctx, trim(term));
            if (v && strcmp(v, trim(op + 2)) == 0)
                result = 0;
        } else if ((op = strstr(term, "==")) != NULL || (op = strchr(term, '=')) != NULL) {
            int two = op[1] == '=';
            *op = '\0';
            const char *v = look(ctx, trim(term));
            if (!v || strcmp(v, trim(op + 1 + two)) != 0)
                result = 0;
        } else if ((op = strstr(term, " notin ")) != NULL) {
            *op = '\0';
            const char *v = look(ctx, trim(term));
            if (v && in_set(trim(op + 7), v))
                result = 0;
        } else if ((op = strstr(term, " in ")) != NULL) {
            *op = '\0';
            const char *v = look(ctx, trim(term));
            if (!v || !in_set(trim(op + 4), v))
                result = 0;
        } else if (term[0] == '!') {
            if (look(ctx, trim(term + 1)))
                result = 0;
        } else {
            if (strpbrk(term, " ()"))
                result = -1;
            else if (!look(ctx, term))
                result = 0;
        }
        if (result != 1)
            break;
    }
    free(copy);
    return result;
}

int fakeapi_label_match(const char *selector, const cJSON *labels)
{
    return select_match(selector, labels, label_lookup);
}

int fakeapi_field_match(const char *selector, const cJSON *obj)
{
    return select_match(selector, obj, field_lookup);
}

/* ---- base64 -------------------------------------------------------------------------- */

char *fakeapi_b64(const void *data, size_t len, int url_raw)
{
    opbuf b;
    opbuf_init(&b, 0);
    if (opb64_encode(&b, data, len)) {
        opbuf_release(&b);
        return NULL;
    }
    size_t n;
    char *out = opbuf_detach(&b, &n);
    if (out && url_raw) {
        for (size_t i = 0; i < n; i++)
            out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
        while (n > 0 && out[n - 1] == '=')
            out[--n] = '\0';
    }
    return out;
}

/* Either alphabet, padding optional: turned into standard padded base64 for opb64_decode. */
char *fakeapi_b64_decode(const char *s, size_t *len)
{
    size_t n = strcspn(s, "=");
    char *in = malloc(n + 3);
    if (!in)
        return NULL;
    for (size_t i = 0; i < n; i++)
        in[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    size_t k = n;
    while (k % 4)
        in[k++] = '=';
    char *out = NULL;
    if (opb64_decode(in, k, &out, len, NULL, 0))
        out = NULL;
    free(in);
    return out;
}
