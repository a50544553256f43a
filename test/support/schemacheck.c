#include "support/schemacheck.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- validation --------------------------------------------------------------------------- */

int tsch_regex_match(const char *pattern, const char *s)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return -1;
    int m = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

static const char *str_of(const cJSON *schema, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(schema, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool type_ok(const char *type, const cJSON *v, bool int_or_string)
{
    if (int_or_string)
        return cJSON_IsString(v) || (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble));
    if (!type)
        return true;
    if (strcmp(type, "object") == 0)
        return cJSON_IsObject(v);
    if (strcmp(type, "array") == 0)
        return cJSON_IsArray(v);
    if (strcmp(type, "string") == 0)
        return cJSON_IsString(v);
    if (strcmp(type, "boolean") == 0)
        return cJSON_IsBool(v);
    if (strcmp(type, "number") == 0)
        return cJSON_IsNumber(v);
    if (strcmp(type, "integer") == 0)
        return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
    return false;
}

static int fail(opbuf *errs, const char *path, const char *fmt, const char *a)
{
    opbuf_printf(errs, "%s: ", path);
    opbuf_printf(errs, fmt, a);
    opbuf_puts(errs, "\n");
    return 1;
}

int tsch_validate(const cJSON *schema, const cJSON *v, const char *path, opbuf *errs)
{
    int n = 0;
    char sub[512];
    if (!cJSON_IsObject(schema))
        return fail(errs, path, "%s", "no schema");
    const cJSON *nullable = cJSON_GetObjectItemCaseSensitive(schema, "nullable");
    if (cJSON_IsNull(v))
        return cJSON_IsTrue(nullable) ? 0 : fail(errs, path, "%s", "null is not allowed");
    const char *type = str_of(schema, "type");
    bool ios = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(schema, "x-kubernetes-int-or-string"));
    if (!type_ok(type, v, ios))
        return fail(errs, path, "want type %s", ios ? "int-or-string" : type);

    const cJSON *en = cJSON_GetObjectItemCaseSensitive(schema, "enum");
    if (cJSON_IsArray(en)) {
        bool found = false;
        const cJSON *e;
        cJSON_ArrayForEach(e, en) found = found || cJSON_Compare(e, v, true);
        if (!found) {
            char *t = cJSON_PrintUnformatted(v);
            n += fail(errs, path, "%s is not an allowed value", t ? t : "?");
            free(t);
        }
    }
    if (cJSON_IsString(v)) {
        const char *pat = str_of(schema, "pattern");
        int m = pat ? tsch_regex_match(pat, v->valuestring) : 1;
        if (m < 0)
            n += fail(errs, path, "pattern %s does not compile", pat);
        else if (m == 0)
            n += fail(errs, path, "\"%s\" does not match the pattern", v->valuestring);
        const cJSON *ml = cJSON_GetObjectItemCaseSensitive(schema, "maxLength");
        if (cJSON_IsNumber(ml) && strlen(v->valuestring) > (size_t)ml->valuedouble)
            n += fail(errs, path, "\"%s\" is too long", v->valuestring);
        ml = cJSON_GetObjectItemCaseSensitive(schema, "minLength");
        if (cJSON_IsNumber(ml) && strlen(v->valuestring) < (size_t)ml->valuedouble)
            n += fail(errs, path, "\"%s\" is too short", v->valuestring);
    }
    if (cJSON_IsNumber(v)) {
        const cJSON *lo = cJSON_GetObjectItemCaseSensitive(schema, "minimum");
        const cJSON *hi = cJSON_GetObjectItemCaseSensitive(schema, "maximum");
        if (cJSON_IsNumber(lo) && v->valuedouble < lo->valuedouble)
            n += fail(errs, path, "%s", "below the minimum");
        if (cJSON_IsNumber(hi) && v->valuedouble > hi->valuedouble)
            n += fail(errs, path, "%s", "above the maximum");
    }
    if (cJSON_IsArray(v)) {
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(schema, "maxItems");
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(schema, "minItems");
        int size = cJSON_GetArraySize(v);
        if (cJSON_IsNumber(mx) && size > (int)mx->valuedouble)
            n += fail(errs, path, "%s", "too many items");
        if (cJSON_IsNumber(mn) && size < (int)mn->valuedouble)
            n += fail(errs, path, "%s", "too few items");
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            snprintf(sub, sizeof sub, "%s[%d]", path, i++);
            n += items ? tsch_validate(items, e, sub, errs) : fail(errs, sub, "%s", "no items");
        }
    }
    if (cJSON_IsObject(v)) {
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
        const cJSON *addl = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
        bool preserve = cJSON_IsTrue(
            cJSON_GetObjectItemCaseSensitive(schema, "x-kubernetes-preserve-unknown-fields"));
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
        const cJSON *r;
        cJSON_ArrayForEach(r, req)
        {
            if (cJSON_IsString(r) && !cJSON_GetObjectItemCaseSensitive(v, r->valuestring))
                n += fail(errs, path, "required field %s is missing", r->valuestring);
        }
        const cJSON *f;
        cJSON_ArrayForEach(f, v)
        {
            snprintf(sub, sizeof sub, "%s.%s", path, f->string);
            const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, f->string);
            if (ps)
                n += tsch_validate(ps, f, sub, errs);
            else if (cJSON_IsObject(addl))
                n += tsch_validate(addl, f, sub, errs);
            else if (!preserve && props) /* no properties: a free-form object */
                n += fail(errs, sub, "%s", "unknown field");
        }
    }
    return n;
}
