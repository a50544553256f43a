#include "util/emit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- YAML ---------------------------------------------------------------------------------- */

/* A string is written plain when YAML 1.1 reads it back as the same string: letters, digits
 * and -_./~ ("~" alone is null), not a boolean, null or number word, not starting with
 * - or . (a sequence entry, .inf, ...). */
static bool yaml_plain(const char *s)
{
    static const char *const special[] = {"y",   "n",    "yes",   "no",   "on",
                                          "off", "true", "false", "null", "~"};
    if (!*s || *s == '-' || *s == '.')
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.' || *c == '/' || *c == '~'))
            return false;
    for (size_t i = 0; i < sizeof special / sizeof *special; i++)
        if (!strcasecmp(s, special[i]))
            return false;
    char *end;
    strtod(s, &end);
    if (!*end)
        return false; /* a number */
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        return false;
    return true;
}

/* The JSON text of v (a JSON string is a YAML double-quoted one). */
static int put_json(const cJSON *v, opbuf *out)
{
    char *s = cJSON_PrintUnformatted(v);
    if (!s)
        return -ENOMEM;
    int rc = opbuf_puts(out, s);
    cJSON_free(s);
    return rc;
}

static int yaml_scalar(const cJSON *v, opbuf *out)
{
    if (cJSON_IsString(v) && yaml_plain(v->valuestring))
        return opbuf_puts(out, v->valuestring);
    return put_json(v, out);
}

int opemit_yaml_str(opbuf *out, const char *s)
{
    if (yaml_plain(s))
        return opbuf_puts(out, s);
    cJSON *v = cJSON_CreateStringReference(s);
    int rc = v ? put_json(v, out) : -ENOMEM;
    cJSON_Delete(v);
    return rc;
}

static bool is_coll(const cJSON *v)
{
    return (cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child;
}

static int yaml_node(const cJSON *v, int ind, opbuf *out);

static int yaml_items(const cJSON *v, int ind, opbuf *out, bool first_inline)
{
    int rc = 0;
    const cJSON *it;
    bool first = true;
    cJSON_ArrayForEach(it, v)
    {
        int pad = first && first_inline ? 0 : ind;
        first = false;
        if (cJSON_IsArray(v)) {
            rc = opbuf_printf(out, "%*s- ", pad, "");
            if (rc == 0 && is_coll(it))
                rc = cJSON_IsObject(it) ? yaml_items(it, ind + 2, out, true)
                                        : (opbuf_puts(out, "\n") ?: yaml_node(it, ind + 2, out));
            else if (rc == 0)
                rc = yaml_scalar(it, out) ?: opbuf_puts(out, "\n");
        } else {
            rc = opbuf_printf(out, "%*s%s:", pad, "", it->string);
            if (rc == 0 && is_coll(it))
                rc = opbuf_puts(out, "\n") ?: yaml_node(it, cJSON_IsArray(it) ? ind : ind + 2, out);
            else if (rc == 0)
                rc = opbuf_puts(out, " ") ?: yaml_scalar(it, out) ?: opbuf_puts(out, "\n");
        }
        if (rc < 0)
            return rc;
    }
    return rc;
}

static int yaml_node(const cJSON *v, int ind, opbuf *out)
{
    if (is_coll(v))
        return yaml_items(v, ind, out, false);
    if (cJSON_IsArray(v))
        return opbuf_printf(out, "%*s[]\n", ind, "");
    if (cJSON_IsObject(v))
        return opbuf_printf(out, "%*s{}\n", ind, "");
    return opbuf_printf(out, "%*s", ind, "") ?: yaml_scalar(v, out) ?: opbuf_puts(out, "\n");
}

int opemit_yaml(const cJSON *v, opbuf *out)
{
    return yaml_node(v, 0, out);
}

int opemit_fmt_parse(const char *s)
{
    static const char *const names[] = {"table", "json", "yaml", "csv"};
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, names[i]))
            return i;
    return -1;
}

int opemit_doc(cJSON *doc, int yaml, opbuf *out)
{
    if (!doc)
        return -ENOMEM;
    int rc;
    if (yaml) {
        rc = opemit_yaml(doc, out);
    } else {
        char *s = cJSON_Print(doc);
        rc = s ? opbuf_puts(out, s) ?: opbuf_puts(out, "\n") : -ENOMEM;
        cJSON_free(s);
    }
    cJSON_Delete(doc);
    return rc;
}

/* ---- CSV ----------------------------------------------------------------------------------- */

int opemit_csv(opbuf *out, const char *const *fields, size_t n)
{
    int rc = 0;
    for (size_t k = 0; !rc && k < n; k++) {
        const char *s = fields[k] ? fields[k] : "";
        if (strpbrk(s, ",\"\r\n")) {
            rc = opbuf_puts(out, "\"");
            for (const char *p = s; !rc && *p; p++)
                rc = *p == '"' ? opbuf_puts(out, "\"\"") : opbuf_append(out, p, 1);
            rc = rc ?: opbuf_puts(out, "\"");
        } else {
            rc = opbuf_puts(out, s);
        }
        rc = rc ?: opbuf_puts(out, k + 1 < n ? "," : "\n");
    }
    return rc;
}

/* ---- tables -------------------------------------------------------------------------------- */

void opemit_table_release(opemit_table *t)
{
    for (size_t i = 0; i < t->nlines * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

int opemit_table_add(opemit_table *t, const char *const *cells)
{
    size_t used = t->nlines * t->ncols;
    if (t->cap < used + t->ncols) {
        size_t cap = t->cap ? t->cap * 2 : 16 * t->ncols;
        char **c = realloc(t->cells, cap * sizeof *c);
        if (!c)
            return -ENOMEM;
        t->cells = c;
        t->cap = cap;
    }
    for (size_t k = 0; k < t->ncols; k++) {
        t->cells[used + k] = strdup(cells[k] ? cells[k] : "");
        if (!t->cells[used + k]) {
            while (k-- > 0)
                free(t->cells[used + k]);
            return -ENOMEM;
        }
    }
    t->nlines++;
    return 0;
}

int opemit_table_init(opemit_table *t, size_t ncols, const char *const *head, const char *sep)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->sep = sep;
    int rc = opemit_table_add(t, head); /* line 0 */
    if (rc)
        opemit_table_release(t);
    return rc;
}

int opemit_table_render(const opemit_table *t, opbuf *out)
{
    size_t *width = calloc(t->ncols ? t->ncols : 1, sizeof *width);
    if (!width)
        return -ENOMEM;
    for (size_t i = 0; i < t->nlines * t->ncols; i++) {
        size_t n = strlen(t->cells[i]);
        width[i % t->ncols] = n > width[i % t->ncols] ? n : width[i % t->ncols];
    }
    int rc = 0;
    for (size_t i = 0; i < t->nlines * t->ncols && !rc; i++) {
        size_t k = i % t->ncols;
        rc = k + 1 < t->ncols ? opbuf_printf(out, "%-*s%s", (int)width[k], t->cells[i], t->sep)
                              : opbuf_printf(out, "%s\n", t->cells[i]);
    }
    free(width);
    return rc;
}
