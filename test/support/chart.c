#include "support/chart.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/yaml2json.h"

/* --- tokens ---------------------------------------------------------------------------- */

enum chart_tok_type { CHART_TEXT, CHART_ACTION };

typedef struct chart_tok {
    enum chart_tok_type type;
    const char *s; /* TEXT: the (trimmed) bytes; ACTION: the inside, blanks stripped */
    size_t n;
    int line;
} chart_tok;

typedef struct chart_st {
    const char *name;
    chart_tok *tok;
    size_t ntok;
    const cJSON *ctx;
    opbuf *out;
    operr *err;
} chart_st;

static int chart_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int chart_line_of(const char *base, const char *p)
{
    int line = 1;
    for (const char *q = base; q < p; q++)
        line += *q == '\n';
    return line;
}

/* Split into text and actions, applying the trim markers: "{{- " drops the blanks
 * before the action, " -}}" those after it (Go's rule: the dash must touch the
 * braces and be separated from the action by a blank). */
static int chart_tokenize(const char *name, const char *t, size_t len, chart_tok **out,
                          size_t *nout, operr *err)
{
    size_t cap = 16, n = 0;
    chart_tok *tok = malloc(cap * sizeof *tok);
    const char *p = t, *end = t + len;
    int trim_next = 0, rc = 0;
    if (!tok)
        return -ENOMEM;
    while (p < end) {
        const char *open = NULL;
        for (const char *q = p; q + 1 < end; q++) {
            if (q[0] == '{' && q[1] == '{') {
                open = q;
                break;
            }
        }
        const char *text_end = open ? open : end;
        const char *ts = p;
        if (trim_next)
            while (ts < text_end && chart_is_blank(*ts))
                ts++;
        const char *te = text_end;
        const char *a = NULL, *ae = NULL, *close = NULL;
        int trim_left = 0;
        if (open) {
            a = open + 2;
            if (a + 1 < end && a[0] == '-' && chart_is_blank(a[1])) {
                trim_left = 1;
                a += 2;
            }
            for (const char *q = a; q + 1 < end; q++) {
                if (q[0] == '}' && q[1] == '}') {
                    close = q;
                    break;
                }
            }
            if (!close) {
                rc = operr_set(err, -EINVAL, "%s:%d: unterminated action", name,
                               chart_line_of(t, open));
                goto out;
            }
            ae = close;
            trim_next = 0;
            if (ae - a >= 2 && ae[-1] == '-' && chart_is_blank(ae[-2])) {
                trim_next = 1;
                ae -= 2;
            }
            if (trim_left)
                while (te > ts && chart_is_blank(te[-1]))
                    te--;
        }
        if (n + 2 > cap) {
            chart_tok *nt = realloc(tok, cap * 2 * sizeof *tok);
            if (!nt) {
                rc = -ENOMEM;
                goto out;
            }
            tok = nt;
            cap *= 2;
        }
        if (te > ts)
            tok[n++] = (chart_tok){CHART_TEXT, ts, (size_t)(te - ts), chart_line_of(t, ts)};
        if (!open)
            break;
        while (a < ae && chart_is_blank(*a))
            a++;
        while (ae > a && chart_is_blank(ae[-1]))
            ae--;
        tok[n++] = (chart_tok){CHART_ACTION, a, (size_t)(ae - a), chart_line_of(t, open)};
        p = close + 2;
    }
out:
    if (rc) {
        free(tok);
        return rc;
    }
    *out = tok;
    *nout = n;
    return 0;
}

/* --- actions --------------------------------------------------------------------------- */

/* Split an action into at most 3 words; -1 when there are more. */
static int chart_words(const chart_tok *tk, char w[3][256])
{
    int nw = 0;
    size_t i = 0;
    while (i < tk->n) {
        while (i < tk->n && chart_is_blank(tk->s[i]))
            i++;
        if (i >= tk->n)
            break;
        size_t st = i;
        while (i < tk->n && !chart_is_blank(tk->s[i]))
            i++;
        if (nw == 3 || i - st >= 256)
            return -1;
        memcpy(w[nw], tk->s + st, i - st);
        w[nw][i - st] = '\0';
        nw++;
    }
    return nw;
}

static int chart_ident(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

/* Resolve ".Values.a.b", ".Release.Name", ".Chart.AppVersion" or "." (dot: the
 * range item, NULL outside a range). *v is NULL only in skipped code (emit 0). */
static int chart_ref(chart_st *st, const chart_tok *tk, const char *ref, const cJSON *dot,
                     int in_range, const cJSON **v)
{
    *v = NULL;
    if (strcmp(ref, ".") == 0) {
        if (!in_range)
            return operr_set(st->err, -EINVAL,
                             "%s:%d: '.' outside range (only .Values, .Release "
                             "and .Chart are supported)",
                             st->name, tk->line);
        *v = dot;
        return 0;
    }
    if (ref[0] != '.')
        return operr_set(st->err, -EINVAL, "%s:%d: unsupported operand '%s'", st->name, tk->line,
                         ref);
    if (in_range)
        return operr_set(st->err, -EINVAL,
                         "%s:%d: '%s' inside range: '.' is the list item there (Helm fails)",
                         st->name, tk->line, ref);
    const char *root = ref + 1;
    if (strncmp(root, "Release.", 8) == 0) {
        if (strcmp(root + 8, "Name") != 0 && strcmp(root + 8, "Namespace") != 0)
            return operr_set(st->err, -EINVAL, "%s:%d: unsupported '%s'", st->name, tk->line, ref);
    } else if (strncmp(root, "Chart.", 6) == 0) {
        if (strcmp(root + 6, "Version") != 0 && strcmp(root + 6, "AppVersion") != 0)
            return operr_set(st->err, -EINVAL, "%s:%d: unsupported '%s'", st->name, tk->line, ref);
    } else if (strncmp(root, "Values.", 7) != 0) {
        return operr_set(st->err, -EINVAL, "%s:%d: unsupported '%s'", st->name, tk->line, ref);
    }
    const cJSON *cur = st->ctx;
    const char *seg = root;
    while (*seg) {
        const char *dotp = strchr(seg, '.');
        size_t n = dotp ? (size_t)(dotp - seg) : strlen(seg);
        char key[256];
        if (!chart_ident(seg, n) || n >= sizeof key)
            return operr_set(st->err, -EINVAL, "%s:%d: unsupported reference '%s'", st->name,
                             tk->line, ref);
        memcpy(key, seg, n);
        key[n] = '\0';
        cur = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, key) : NULL;
        if (!cur)
            return operr_set(st->err, -EINVAL, "%s:%d: '%s': no such value", st->name, tk->line,
                             ref);
        seg = dotp ? dotp + 1 : seg + n;
    }
    *v = cur;
    return 0;
}

static int chart_is_scalar(const cJSON *v)
{
    return cJSON_IsString(v) || cJSON_IsNumber(v) || cJSON_IsBool(v);
}

/* A scalar as Go's fmt %v prints it (text/template), into buf. */
static int chart_scalar(chart_st *st, const chart_tok *tk, const char *ref, const cJSON *v,
                        char *buf, size_t cap, const char **s)
{
    if (cJSON_IsString(v)) {
        *s = v->valuestring;
        return 0;
    }
    if (cJSON_IsBool(v)) {
        *s = cJSON_IsTrue(v) ? "true" : "false";
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d != (double)(long long)d || d > 9e15 || d < -9e15)
            return operr_set(st->err, -EINVAL,
                             "%s:%d: '%s' is %g: only integers print the same in Go and C",
                             st->name, tk->line, ref, d);
        snprintf(buf, cap, "%lld", (long long)d);
        *s = buf;
        return 0;
    }
    return operr_set(st->err, -EINVAL, "%s:%d: '%s' is not a scalar (no toYaml in this subset)",
                     st->name, tk->line, ref);
}

/* Go's %q for the strings a chart holds: printable text, \" \\ \n \t \r escaped;
 * other control bytes are refused rather than guessed. */
static int chart_quote(chart_st *st, const chart_tok *tk, const char *s)
{
    int rc = opbuf_puts(st->out, "\"");
    for (const char *p = s; rc == 0 && *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            rc = opbuf_printf(st->out, "\\%c", c);
        else if (c == '\n')
            rc = opbuf_puts(st->out, "\\n");
        else if (c == '\t')
            rc = opbuf_puts(st->out, "\\t");
        else if (c == '\r')
            rc = opbuf_puts(st->out, "\\r");
        else if (c < 0x20 || c == 0x7f)
            return operr_set(st->err, -EINVAL, "%s:%d: control byte 0x%02x in a quoted value",
                             st->name, tk->line, c);
        else
            rc = opbuf_append(st->out, p, 1);
    }
    if (rc == 0)
        rc = opbuf_puts(st->out, "\"");
    return rc;
}

/* {{ .Files.Get "path" }} or {{ .Files.Get "path" | indent N }}: a file of the chart (not a
 * template: its text is never rendered), with sprig's indent (every line, the first too,
 * prefixed by N spaces). A file the chart does not have is an error (Helm prints ""). */
static int chart_files_get(chart_st *st, const chart_tok *tk, int in_range, int emit)
{
    char path[256];
    const char *p = tk->s + 11, *end = tk->s + tk->n;
    const char *q = *p == '"' ? memchr(p + 1, '"', (size_t)(end - p - 1)) : NULL;
    long indent = 0;
    if (in_range)
        return operr_set(st->err, -EINVAL, "%s:%d: .Files inside range (Helm fails)", st->name,
                         tk->line);
    if (!q || (size_t)(q - p - 1) >= sizeof path || q == p + 1)
        return operr_set(st->err, -EINVAL, "%s:%d: want .Files.Get \"path\" [| indent N]", st->name,
                         tk->line);
    memcpy(path, p + 1, (size_t)(q - p - 1));
    path[q - p - 1] = '\0';
    const char *r = q + 1;
    while (r < end && chart_is_blank(*r))
        r++;
    if (r < end) {
        char *num_end;
        if (end - r < 9 || strncmp(r, "| indent ", 9) != 0)
            return operr_set(st->err, -EINVAL, "%s:%d: after .Files.Get only '| indent N'",
                             st->name, tk->line);
        indent = strtol(r + 9, &num_end, 10);
        if (num_end != end || num_end == r + 9 || indent < 0 || indent > 64)
            return operr_set(st->err, -EINVAL, "%s:%d: indent: want 0 to 64 spaces", st->name,
                             tk->line);
    }
    const cJSON *f =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st->ctx, "Files"), path);
    if (!cJSON_IsString(f))
        return operr_set(st->err, -EINVAL, "%s:%d: .Files.Get: the chart has no file '%s'",
                         st->name, tk->line, path);
    if (!emit)
        return 0;
    int rc = opbuf_printf(st->out, "%*s", (int)indent, "");
    for (const char *c = f->valuestring; rc == 0 && *c; c++) {
        rc = opbuf_append(st->out, c, 1);
        if (rc == 0 && *c == '\n')
            rc = opbuf_printf(st->out, "%*s", (int)indent, "");
    }
    return rc ? operr_set(st->err, rc, "%s: rendered output too large", st->name) : 0;
}

/* Execute tokens from *pos until the {{ end }} of the enclosing block (is_block) or the
 * end of input, emitting only when `emit`. On return *pos is past the `end`. */
static int chart_exec(chart_st *st, size_t *pos, const cJSON *dot, int in_range, int emit,
                      int is_block, int open_line)
{
    while (*pos < st->ntok) {
        const chart_tok *tk = &st->tok[(*pos)++];
        if (tk->type == CHART_TEXT) {
            if (emit) {
                int rc = opbuf_append(st->out, tk->s, tk->n);
                if (rc)
                    return operr_set(st->err, rc, "%s: rendered output too large", st->name);
            }
            continue;
        }
        if (tk->n > 11 && strncmp(tk->s, ".Files.Get ", 11) == 0) {
            int rc = chart_files_get(st, tk, in_range, emit);
            if (rc)
                return rc;
            continue;
        }
        char w[3][256];
        int nw = chart_words(tk, w);
        if (nw <= 0)
            return operr_set(st->err, -EINVAL, "%s:%d: unsupported action '{{ %.*s }}'", st->name,
                             tk->line, (int)tk->n, tk->s);
        if (strcmp(w[0], "end") == 0 && nw == 1) {
            if (!is_block)
                return operr_set(st->err, -EINVAL, "%s:%d: 'end' without if or range", st->name,
                                 tk->line);
            return 0;
        }
        const cJSON *v;
        int rc;
        if ((strcmp(w[0], "if") == 0 || strcmp(w[0], "range") == 0) && nw == 2) {
            int is_if = w[0][0] == 'i';
            if (in_range)
                return operr_set(st->err, -EINVAL,
                                 "%s:%d: '%s' inside range is outside the supported subset",
                                 st->name, tk->line, w[0]);
            if ((rc = chart_ref(st, tk, w[1], dot, in_range, &v)) != 0)
                return rc;
            if (is_if) {
                if (!cJSON_IsBool(v))
                    return operr_set(st->err, -EINVAL, "%s:%d: if %s: not a boolean", st->name,
                                     tk->line, w[1]);
                rc = chart_exec(st, pos, NULL, 0, emit && cJSON_IsTrue(v), 1, tk->line);
                if (rc)
                    return rc;
                continue;
            }
            if (!cJSON_IsArray(v))
                return operr_set(st->err, -EINVAL, "%s:%d: range %s: not a list", st->name,
                                 tk->line, w[1]);
            const cJSON *it;
            cJSON_ArrayForEach(it, v)
            {
                if (!chart_is_scalar(it))
                    return operr_set(st->err, -EINVAL, "%s:%d: range %s: items must be scalars",
                                     st->name, tk->line, w[1]);
            }
            size_t body = *pos;
            /* An empty list still walks the body once, silently, to check it and find `end`. */
            if (cJSON_GetArraySize(v) == 0 || !emit) {
                if ((rc = chart_exec(st, pos, NULL, 1, 0, 1, tk->line)) != 0)
                    return rc;
                continue;
            }
            cJSON_ArrayForEach(it, v)
            {
                *pos = body;
                if ((rc = chart_exec(st, pos, it, 1, 1, 1, tk->line)) != 0)
                    return rc;
            }
            continue;
        }
        const char *ref;
        int quoted = 0;
        if (nw == 1) {
            ref = w[0];
        } else if (nw == 2 && strcmp(w[0], "quote") == 0) {
            ref = w[1];
            quoted = 1;
        } else {
            return operr_set(st->err, -EINVAL, "%s:%d: unsupported action '{{ %.*s }}'", st->name,
                             tk->line, (int)tk->n, tk->s);
        }
        if ((rc = chart_ref(st, tk, ref, dot, in_range, &v)) != 0)
            return rc;
        if (!emit)
            continue;
        char num[32];
        const char *s = NULL;
        if ((rc = chart_scalar(st, tk, ref, v, num, sizeof num, &s)) != 0)
            return rc;
        rc = quoted ? chart_quote(st, tk, s) : opbuf_puts(st->out, s);
        if (rc == -EINVAL)
            return rc;
        if (rc)
            return operr_set(st->err, rc, "%s: rendered output too large", st->name);
    }
    if (is_block)
        return operr_set(st->err, -EINVAL, "%s:%d: block opened here has no 'end'", st->name,
                         open_line);
    return 0;
}

int chart_render_text(const char *name, const char *tmpl, size_t len, const cJSON *ctx, opbuf *out,
                      operr *err)
{
    chart_st st = {.name = name, .ctx = ctx, .out = out, .err = err};
    size_t pos = 0;
    int rc = chart_tokenize(name, tmpl, len, &st.tok, &st.ntok, err);
    if (rc)
        return rc;
    rc = chart_exec(&st, &pos, NULL, 0, 1, 0, 0);
    free(st.tok);
    return rc;
}

/* --- files and context ------------------------------------------------------------------ */

static int chart_read(const char *path, opbuf *b, operr *err)
{
    FILE *f = fopen(path, "rb");
    char chunk[8192];
    int rc = 0;
    if (!f)
        return operr_set(err, -errno, "'%s': %s", path, strerror(errno));
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if ((rc = opbuf_append(b, chunk, n)) != 0) {
            rc = operr_set(err, rc, "'%s': larger than %d bytes", path, CHART_MAX_FILE);
            goto out;
        }
    }
    if (ferror(f))
        rc = operr_set(err, -EIO, "'%s': read error", path);
out:
    fclose(f);
    return rc;
}

static int chart_parse_file(const char *dir, const char *file, cJSON **out, operr *err)
{
    char path[4096];
    opbuf b;
    opbuf_init(&b, CHART_MAX_FILE);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = chart_read(path, &b, err);
    if (rc)
        goto out;
    rc = yaml2json_parse(opbuf_str(&b), b.len, out, err);
    if (rc) {
        operr_wrap(err, rc, "'%s'", path);
        goto out;
    }
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        rc = operr_set(err, -EINVAL, "'%s': not a mapping", path);
    }
out:
    opbuf_release(&b);
    return rc;
}

int chart_merge(cJSON *dst, const cJSON *src)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, src)
    {
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(dst, it->string);
        if (cJSON_IsObject(cur) && cJSON_IsObject(it)) {
            int rc = chart_merge(cur, it);
            if (rc)
                return rc;
            continue;
        }
        cJSON *dup = cJSON_Duplicate(it, 1);
        if (!dup)
            return -ENOMEM;
        if (cur)
            cJSON_ReplaceItemViaPointer(dst, cur, dup);
        else
            cJSON_AddItemToObject(dst, it->string, dup);
    }
    return 0;
}

static int chart_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* .Files: every regular file of the chart at its top level and one directory down, but
 * templates/ (Helm's .Files), keyed by its path relative to the chart; text only. */
static int chart_load_files(const char *chart_dir, const char *sub, cJSON *files, size_t *total,
                            operr *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", chart_dir, sub ? "/" : "", sub ? sub : "");
    DIR *d = opendir(dir);
    if (!d)
        return operr_set(err, -errno, "'%s': %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char path[4096], rel[512];
        struct stat sb;
        if (de->d_name[0] == '.' || (!sub && strcmp(de->d_name, "templates") == 0))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(rel, sizeof rel, "%s%s%s", sub ? sub : "", sub ? "/" : "", de->d_name);
        if (stat(path, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            if (!sub)
                rc = chart_load_files(chart_dir, de->d_name, files, total, err);
            continue;
        }
        if (!S_ISREG(sb.st_mode))
            continue;
        opbuf b;
        opbuf_init(&b, CHART_MAX_FILE);
        rc = chart_read(path, &b, err);
        if (rc == 0 && (memchr(opbuf_str(&b), '\0', b.len) || (*total += b.len) > CHART_MAX_FILES))
            rc = operr_set(err, -E2BIG, "'%s': binary, or the chart's files pass %d bytes", path,
                           CHART_MAX_FILES);
        if (rc == 0 && !cJSON_AddStringToObject(files, rel, opbuf_str(&b)))
            rc = -ENOMEM;
        opbuf_release(&b);
    }
    closedir(d);
    return rc;
}

int chart_context(const char *chart_dir, const char *release, const char *ns,
                  const cJSON *overrides, cJSON **ctx, operr *err)
{
    cJSON *meta = NULL, *values = NULL, *c = NULL;
    int rc = chart_parse_file(chart_dir, "Chart.yaml", &meta, err);
    if (rc)
        goto out;
    if ((rc = chart_parse_file(chart_dir, "values.yaml", &values, err)) != 0)
        goto out;
    if (overrides && (rc = chart_merge(values, overrides)) != 0)
        goto out;
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(meta, "version");
    const cJSON *app = cJSON_GetObjectItemCaseSensitive(meta, "appVersion");
    if (!cJSON_IsString(ver) || !cJSON_IsString(app)) {
        rc = operr_set(err, -EINVAL, "'%s/Chart.yaml': version and appVersion must be strings",
                       chart_dir);
        goto out;
    }
    c = cJSON_CreateObject();
    cJSON *rel = cJSON_AddObjectToObject(c, "Release");
    cJSON *ch = cJSON_AddObjectToObject(c, "Chart");
    if (!rel || !ch || !cJSON_AddStringToObject(rel, "Name", release) ||
        !cJSON_AddStringToObject(rel, "Namespace", ns) ||
        !cJSON_AddStringToObject(ch, "Version", ver->valuestring) ||
        !cJSON_AddStringToObject(ch, "AppVersion", app->valuestring)) {
        rc = -ENOMEM;
        goto out;
    }
    cJSON_AddItemToObject(c, "Values", values);
    values = NULL;
    size_t total = 0;
    cJSON *files = cJSON_AddObjectToObject(c, "Files");
    if (!files) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = chart_load_files(chart_dir, NULL, files, &total, err)) != 0)
        goto out;
    *ctx = c;
    c = NULL;
out:
    cJSON_Delete(meta);
    cJSON_Delete(values);
    cJSON_Delete(c);
    return rc;
}

/* An object with apiVersion, kind and metadata.name. */
static int chart_doc_ok(const cJSON *doc)
{
    const cJSON *name = chart_get(doc, "metadata.name");
    return cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "apiVersion")) &&
           cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "kind")) && cJSON_IsString(name) &&
           *name->valuestring;
}

/* The entries of dir but "." files, sorted by name; the caller frees each and the array. */
static int chart_ls(const char *dir, char ***names, size_t *n, operr *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return operr_set(err, -errno, "'%s': %s", dir, strerror(errno));
    char **v = NULL;
    size_t nv = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (nv == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(v, nc * sizeof *v);
            if (!nn) {
                rc = -ENOMEM;
                break;
            }
            v = nn;
            cap = nc;
        }
        if (!(v[nv] = strdup(de->d_name)))
            rc = -ENOMEM;
        else
            nv++;
    }
    closedir(d);
    if (rc) {
        for (size_t i = 0; i < nv; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    if (nv)
        qsort(v, nv, sizeof *v, chart_cmp_names);
    *names = v;
    *n = nv;
    return 0;
}

static void chart_ls_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* One rendered document: the object, its text as printed, its place among the files. */
typedef struct chart_doc {
    cJSON *obj;
    char *text;
    size_t seq;
} chart_doc;

/* Helm's install order of kinds (the order `helm template` prints and `helm install`
 * creates objects in); kinds it does not name come after these, by kind name. */
static const char *const chart_kind_order[] = {"PriorityClass",
                                               "Namespace",
                                               "NetworkPolicy",
                                               "ResourceQuota",
                                               "LimitRange",
                                               "PodSecurityPolicy",
                                               "PodDisruptionBudget",
                                               "ServiceAccount",
                                               "Secret",
                                               "SecretList",
                                               "ConfigMap",
                                               "StorageClass",
                                               "PersistentVolume",
                                               "PersistentVolumeClaim",
                                               "CustomResourceDefinition",
                                               "ClusterRole",
                                               "ClusterRoleList",
                                               "ClusterRoleBinding",
                                               "ClusterRoleBindingList",
                                               "Role",
                                               "RoleList",
                                               "RoleBinding",
                                               "RoleBindingList",
                                               "Service",
                                               "DaemonSet",
                                               "Pod",
                                               "ReplicationController",
                                               "ReplicaSet",
                                               "Deployment",
                                               "HorizontalPodAutoscaler",
                                               "StatefulSet",
                                               "Job",
                                               "CronJob",
                                               "IngressClass",
                                               "Ingress",
                                               "APIService"};
#define CHART_NKINDS (sizeof chart_kind_order / sizeof chart_kind_order[0])

static size_t chart_kind_rank(const char *kind)
{
    for (size_t i = 0; i < CHART_NKINDS; i++)
        if (!strcmp(chart_kind_order[i], kind))
            return i;
    return CHART_NKINDS;
}

static int chart_cmp_docs(const void *a, const void *b)
{
    const chart_doc *x = a, *y = b;
    const char *kx = cJSON_GetObjectItemCaseSensitive(x->obj, "kind")->valuestring;
    const char *ky = cJSON_GetObjectItemCaseSensitive(y->obj, "kind")->valuestring;
    size_t rx = chart_kind_rank(kx), ry = chart_kind_rank(ky);
    if (rx != ry)
        return rx < ry ? -1 : 1;
    int c = rx == CHART_NKINDS ? strcmp(kx, ky) : 0;
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A document separator: a line "---", blanks allowed after it. */
static int chart_is_separator(const char *line, size_t n)
{
    if (n < 3 || memcmp(line, "---", 3) != 0)
        return 0;
    for (size_t k = 3; k < n; k++)
        if (line[k] != ' ' && line[k] != '\t' && line[k] != '\r')
            return 0;
    return 1;
}

/* Split one rendered file at its "---" lines, as Helm does: each document's text is
 * trimmed, a document of only blanks or comments is dropped, the rest must be an object
 * with apiVersion, kind and metadata.name. Appends to *docs (grown as needed). */
static int chart_split(const char *label, const char *t, size_t len, chart_doc **docs,
                       size_t *ndocs, size_t *cap, operr *err)
{
    size_t pos = 0;
    for (int more = 1; more;) {
        /* this document ends where the next separator line starts (or at the end) */
        size_t end = len, next = len;
        more = 0;
        for (size_t i = pos; i < len;) {
            const char *nl = memchr(t + i, '\n', len - i);
            size_t eol = nl ? (size_t)(nl - t) : len;
            if (chart_is_separator(t + i, eol - i)) {
                end = i;
                next = nl ? eol + 1 : len;
                more = 1;
                break;
            }
            i = nl ? eol + 1 : len;
        }
        size_t a = pos, b = end;
        while (a < b && isspace((unsigned char)t[a]))
            a++;
        while (b > a && isspace((unsigned char)t[b - 1]))
            b--;
        pos = next;
        if (a == b)
            continue;
        cJSON *parsed = NULL;
        int rc = yaml2json_parse_all(t + a, b - a, &parsed, err);
        if (rc)
            return operr_wrap(err, rc, "%s (rendered)", label);
        cJSON *doc = NULL, *it;
        int n = 0;
        cJSON_ArrayForEach(it, parsed) n += !cJSON_IsNull(it);
        if (n == 1)
            while ((doc = cJSON_DetachItemFromArray(parsed, 0)) != NULL && cJSON_IsNull(doc))
                cJSON_Delete(doc);
        cJSON_Delete(parsed);
        if (n == 0)
            continue;
        if (n > 1)
            return operr_set(err, -EINVAL, "%s: use --- to separate documents", label);
        if (!chart_doc_ok(doc)) {
            cJSON_Delete(doc);
            return operr_set(err, -EINVAL,
                             "%s: a document without apiVersion, kind or metadata.name", label);
        }
        if (*ndocs == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            chart_doc *nd = realloc(*docs, nc * sizeof *nd);
            if (!nd) {
                cJSON_Delete(doc);
                return -ENOMEM;
            }
            *docs = nd;
            *cap = nc;
        }
        opbuf tb;
        opbuf_init(&tb, CHART_MAX_FILE);
        if (opbuf_printf(&tb, "---\n# Source: optipod/%s\n%.*s\n", label, (int)(b - a), t + a)) {
            opbuf_release(&tb);
            cJSON_Delete(doc);
            return operr_set(err, -E2BIG, "%s: document too large", label);
        }
        (*docs)[*ndocs] = (chart_doc){doc, opbuf_detach(&tb, NULL), *ndocs};
        (*ndocs)++;
    }
    return 0;
}

int chart_render(const char *chart_dir, const char *release, const char *ns, const cJSON *overrides,
                 opbuf *text, cJSON **docs, operr *err)
{
    cJSON *ctx = NULL, *all = NULL;
    char **names = NULL;
    size_t nnames = 0, nd = 0, dcap = 0;
    chart_doc *d_all = NULL;
    char dir[4096];
    opbuf src, out;
    opbuf_init(&src, CHART_MAX_FILE);
    opbuf_init(&out, CHART_MAX_FILE);
    int rc = chart_context(chart_dir, release, ns, overrides, &ctx, err);
    if (rc)
        goto out;
    snprintf(dir, sizeof dir, "%s/templates", chart_dir);
    if ((rc = chart_ls(dir, &names, &nnames, err)) != 0)
        goto out;
    for (size_t i = 0; i < nnames; i++) {
        size_t n = strlen(names[i]);
        /* _helpers.tpl, NOTES.txt and friends are outside the subset. */
        if (names[i][0] == '_' || n < 6 || strcmp(names[i] + n - 5, ".yaml") != 0) {
            rc = operr_set(err, -EINVAL, "'%s/%s': only *.yaml templates are supported", dir,
                           names[i]);
            goto out;
        }
    }
    for (size_t i = 0; i < nnames; i++) {
        char path[4096], label[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(label, sizeof label, "templates/%s", names[i]);
        opbuf_reset(&src);
        opbuf_reset(&out);
        if ((rc = chart_read(path, &src, err)) != 0)
            goto out;
        if ((rc = chart_render_text(label, opbuf_str(&src), src.len, ctx, &out, err)) != 0)
            goto out;
        if ((rc = chart_split(label, opbuf_str(&out), out.len, &d_all, &nd, &dcap, err)) != 0)
            goto out;
    }
    if (nd)
        qsort(d_all, nd, sizeof *d_all, chart_cmp_docs);
    if (!(all = cJSON_CreateArray())) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nd; i++) {
        if (text && (rc = opbuf_puts(text, d_all[i].text)) != 0) {
            rc = operr_set(err, rc, "the manifest stream is too large");
            goto out;
        }
        cJSON_AddItemToArray(all, d_all[i].obj);
        d_all[i].obj = NULL;
    }
    *docs = all;
    all = NULL;
out:
    chart_ls_free(names, nnames);
    for (size_t i = 0; i < nd; i++) {
        cJSON_Delete(d_all[i].obj);
        free(d_all[i].text);
    }
    free(d_all);
    cJSON_Delete(all);
    cJSON_Delete(ctx);
    opbuf_release(&src);
    opbuf_release(&out);
    return rc;
}

int chart_manifest(const char *chart_dir, const char *release, const char *ns,
                   const cJSON *overrides, int flags, opbuf *text, operr *err)
{
    cJSON *docs = NULL;
    char **names = NULL;
    size_t nnames = 0;
    char dir[4096];
    opbuf crd;
    opbuf_init(&crd, CHART_MAX_FILE);
    int rc = 0;
    if ((flags & CHART_CREATE_NAMESPACE) &&
        (rc = opbuf_printf(text, "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n",
                           ns)) != 0)
        goto too_large;
    if (flags & CHART_INCLUDE_CRDS) {
        /* Helm reads crds/ verbatim (never templated), *.yaml and *.yml, in name order. */
        snprintf(dir, sizeof dir, "%s/crds", chart_dir);
        if ((rc = chart_ls(dir, &names, &nnames, err)) != 0)
            goto out;
        for (size_t i = 0; i < nnames; i++) {
            size_t n = strlen(names[i]);
            if (n < 5 || (strcmp(names[i] + n - 5, ".yaml") && strcmp(names[i] + n - 4, ".yml")))
                continue;
            char path[4096 + 256];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            opbuf_reset(&crd);
            if ((rc = chart_read(path, &crd, err)) != 0)
                goto out;
            size_t a = 0, b = crd.len;
            const char *t = opbuf_str(&crd);
            if (b >= 4 && !memcmp(t, "---\n", 4))
                a = 4;
            while (b > a && isspace((unsigned char)t[b - 1]))
                b--;
            if ((rc = opbuf_printf(text, "---\n# Source: optipod/crds/%s\n%.*s\n", names[i],
                                   (int)(b - a), t + a)) != 0)
                goto too_large;
        }
    }
    rc = chart_render(chart_dir, release, ns, overrides, text, &docs, err);
    goto out;
too_large:
    rc = operr_set(err, rc, "the manifest stream is too large");
out:
    chart_ls_free(names, nnames);
    cJSON_Delete(docs);
    opbuf_release(&crd);
    return rc;
}

const cJSON *chart_get(const cJSON *obj, const char *path)
{
    const cJSON *cur = obj;
    const char *seg = path;
    while (cur && *seg) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        char key[256];
        if (n >= sizeof key || !cJSON_IsObject(cur))
            return NULL;
        memcpy(key, seg, n);
        key[n] = '\0';
        cur = cJSON_GetObjectItemCaseSensitive(cur, key);
        seg = dot ? dot + 1 : seg + n;
    }
    return cur;
}

const cJSON *chart_find(const cJSON *docs, const char *kind, const char *name)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, docs)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(d, "kind");
        const cJSON *n = chart_get(d, "metadata.name");
        if (cJSON_IsString(k) && cJSON_IsString(n) && strcmp(k->valuestring, kind) == 0 &&
            strcmp(n->valuestring, name) == 0)
            return d;
    }
    return NULL;
}

int chart_count(const cJSON *docs, const char *kind)
{
    int n = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, docs)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(d, "kind");
        n += cJSON_IsString(k) && strcmp(k->valuestring, kind) == 0;
    }
    return n;
}
