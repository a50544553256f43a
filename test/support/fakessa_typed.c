/*
 * fakessa typed: the check kube-apiserver v1.24 makes before a server-side
 * apply of a custom resource, when it turns the applied body into a typed
 * object of the CRD's structural schema (structured-merge-diff). A field the
 * schema does not declare, or a value of the wrong kind, is refused there
 * with HTTP 500 "failed to create typed patch object" (before validation,
 * whose errors are 422). Seen on the real server with an
 * OptimizationRecommendation applied against an older CRD:
 *
 *   failed to create typed patch object (ns/deployment-web; optipod.io/v1alpha1,
 *   Kind=OptimizationRecommendation): .spec.source.history: field not declared in schema
 *
 * Several problems are listed as "...): errors:\n  <one>\n  <two>". Modelled:
 * properties (undeclared fields), x-kubernetes-preserve-unknown-fields
 * (anything below; an object schema declaring neither properties nor
 * additionalProperties is taken as such too), additionalProperties (maps),
 * items, the scalar types
 * (integer and number are one "numeric" kind there), x-kubernetes-int-or-string,
 * metadata as ObjectMeta (its top-level fields), null anywhere (an unset
 * field), and one undeclared field per object, the first by name (the server
 * names one too: "b" and "a" undeclared in one object gave ".a").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "support/fakessa.h"
#include "util/buf.h"

#define PATH_MAX_LEN 512

typedef struct tcheck {
    opbuf *errs;
    int n;
} tcheck;

static void problem(tcheck *t, const char *path, const char *fmt, const char *arg)
{
    opbuf_printf(t->errs, "%s%s: ", t->n ? "\n  " : "", path);
    opbuf_printf(t->errs, fmt, arg);
    t->n++;
}

/* How the server's Go formatting shows an unexpected value. */
static void got_of(const cJSON *v, char *buf, size_t size)
{
    if (cJSON_IsString(v))
        snprintf(buf, size, "&{%s}", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(buf, size, "&value.valueUnstructured{Value:%g}", v->valuedouble);
    else if (cJSON_IsBool(v))
        snprintf(buf, size, "&value.valueUnstructured{Value:%s}",
                 cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsArray(v))
        snprintf(buf, size, "list");
    else
        snprintf(buf, size, "map");
}

static int flag(const cJSON *schema, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(schema, key));
}

static void check(tcheck *t, const cJSON *schema, const cJSON *v, const char *path);

static void check_object(tcheck *t, const cJSON *schema, const cJSON *v, const char *path, int meta)
{
    char sub[PATH_MAX_LEN], got[160];
    if (!cJSON_IsObject(v)) {
        got_of(v, got, sizeof got);
        problem(t, path, "expected map, got %s", got);
        return;
    }
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *addl = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
    int open = flag(schema, "x-kubernetes-preserve-unknown-fields") ||
               (!props && !cJSON_IsObject(addl) && !meta);
    const char *undeclared = NULL; /* the first by name: the server reports only that one */
    const cJSON *f;
    cJSON_ArrayForEach(f, v)
    {
        const cJSON *fs = NULL;
        if (meta) {
            int known = 0;
            for (const char *const *k = fakessa_object_meta; *k && !known; k++)
                known = strcmp(*k, f->string) == 0;
            if (known)
                continue;
        } else {
            fs = props ? cJSON_GetObjectItemCaseSensitive(props, f->string) : NULL;
            if (!fs && cJSON_IsObject(addl))
                fs = addl;
        }
        snprintf(sub, sizeof sub, "%s.%s", path, f->string);
        if (fs)
            check(t, fs, f, sub);
        else if (!open && (!undeclared || strcmp(f->string, undeclared) < 0))
            undeclared = f->string;
    }
    if (undeclared) {
        snprintf(sub, sizeof sub, "%s.%s", path, undeclared);
        problem(t, sub, "%s", "field not declared in schema");
    }
}

static void check(tcheck *t, const cJSON *schema, const cJSON *v, const char *path)
{
    char got[160];
    if (cJSON_IsNull(v) ||
        (flag(schema, "x-kubernetes-preserve-unknown-fields") && !cJSON_IsObject(v)))
        return;
    if (flag(schema, "x-kubernetes-int-or-string")) {
        if (!cJSON_IsNumber(v) && !cJSON_IsString(v)) {
            got_of(v, got, sizeof got);
            problem(t, path, "expected string or numeric, got %s", got);
        }
        return;
    }
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(schema, "type");
    const char *type = cJSON_IsString(ty) ? ty->valuestring : "";
    if (!strcmp(type, "object")) {
        check_object(t, schema, v, path, 0);
    } else if (!strcmp(type, "array")) {
        if (!cJSON_IsArray(v)) {
            got_of(v, got, sizeof got);
            problem(t, path, "expected list, got %s", got);
            return;
        }
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            char sub[PATH_MAX_LEN];
            snprintf(sub, sizeof sub, "%s[%d]", path, i++);
            if (items)
                check(t, items, e, sub);
        }
    } else if (!strcmp(type, "string")) {
        if (!cJSON_IsString(v)) {
            got_of(v, got, sizeof got);
            problem(t, path, "expected string, got %s", got);
        }
    } else if (!strcmp(type, "integer") || !strcmp(type, "number")) {
        if (!cJSON_IsNumber(v))
            problem(t, path, "expected numeric (int or float), got %s",
                    cJSON_IsString(v)  ? "string"
                    : cJSON_IsBool(v)  ? "bool"
                    : cJSON_IsArray(v) ? "list"
                                       : "map");
    } else if (!strcmp(type, "boolean")) {
        if (!cJSON_IsBool(v)) {
            got_of(v, got, sizeof got);
            problem(t, path, "expected boolean, got %s", got);
        }
    }
}

int fakessa_typecheck(const cJSON *schema, const cJSON *obj, const char *what, cJSON **status)
{
    *status = NULL;
    if (!schema)
        return 0;
    opbuf errs;
    opbuf_init(&errs, 64 << 10);
    tcheck t = {.errs = &errs};
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *f;
    cJSON_ArrayForEach(f, obj)
    {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof path, ".%s", f->string);
        if (!strcmp(f->string, "metadata")) {
            check_object(&t, schema, f, path, 1);
            continue;
        }
        if (!strcmp(f->string, "apiVersion") || !strcmp(f->string, "kind"))
            continue; /* the caller checked them against the path */
        const cJSON *fs = props ? cJSON_GetObjectItemCaseSensitive(props, f->string) : NULL;
        if (fs)
            check(&t, fs, f, path);
        else if (!flag(schema, "x-kubernetes-preserve-unknown-fields"))
            problem(&t, path, "%s", "field not declared in schema");
    }
    int rc = 0;
    if (t.n) {
        opbuf msg;
        opbuf_init(&msg, 80 << 10);
        opbuf_printf(&msg, "failed to create typed patch object (%s): %s%s", what,
                     t.n > 1 ? "errors:\n  " : "", opbuf_str(&errs));
        cJSON *s = cJSON_CreateObject();
        if (!s || !cJSON_AddStringToObject(s, "kind", "Status") ||
            !cJSON_AddStringToObject(s, "apiVersion", "v1") ||
            !cJSON_AddObjectToObject(s, "metadata") ||
            !cJSON_AddStringToObject(s, "status", "Failure") ||
            !cJSON_AddStringToObject(s, "message", opbuf_str(&msg)) ||
            !cJSON_AddNumberToObject(s, "code", 500)) {
            cJSON_Delete(s);
            rc = -ENOMEM;
        } else {
            *status = s;
        }
        opbuf_release(&msg);
    }
    opbuf_release(&errs);
    return rc;
}
