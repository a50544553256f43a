/*
 * image_config: what the Containerfile says the image is, and what an OCI
 * image layout holds, in one normalized form, so `make image-check` can diff
 * the image `make image` built against the Containerfile users build with a
 * container engine.
 *
 *   image_config containerfile FILE   the final stage: one line per setting
 *   image_config config LAYOUT        the image's config, in the same form
 *   image_config layers LAYOUT        the layer blobs, one path a line, base first
 *   image_config ref LAYOUT           the image's name (org.opencontainers.image.ref.name)
 *
 * The form, in this order: "user U:G", "entrypoint JSON", "cmd JSON",
 * "workdir DIR", "env K=V"..., "expose PORT/PROTO"..., "label K=V"... (env,
 * expose and label sorted).
 *
 * The final stage must be what a runtime without a shell can run: FROM
 * scratch; only COPY --from=STAGE, USER, ENTRYPOINT, CMD, LABEL, ENV, EXPOSE,
 * WORKDIR (no RUN, no ADD, no SHELL); ENTRYPOINT and CMD in exec (JSON) form;
 * USER a numeric non-root uid:gid (what runAsNonRoot can verify). The layout
 * must hold one image whose manifest, config and layers match their digests
 * and sizes. Anything else is an error naming the file (and line) and what was
 * wrong, exit 1; bad usage exits 2.
 */
#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IC_MAX_LINE  8192
#define IC_MAX_JSON  (1 << 20)
#define IC_MAX_ITEMS 64

/* The settings, as normalized lines; the three lists are sorted when printed. */
typedef struct ic_cfg {
    char user[64];
    char *entrypoint, *cmd; /* JSON arrays, compact; NULL when unset */
    char workdir[256];
    char *env[IC_MAX_ITEMS], *expose[IC_MAX_ITEMS], *label[IC_MAX_ITEMS];
    int nenv, nexpose, nlabel;
} ic_cfg;

static void ic_cfg_release(ic_cfg *c)
{
    free(c->entrypoint);
    free(c->cmd);
    for (int i = 0; i < c->nenv; i++)
        free(c->env[i]);
    for (int i = 0; i < c->nexpose; i++)
        free(c->expose[i]);
    for (int i = 0; i < c->nlabel; i++)
        free(c->label[i]);
    memset(c, 0, sizeof *c);
}

static int ic_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int ic_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("image_config: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

/* Add "k=v" to a list, replacing an earlier entry of the same key (as later
 * LABEL/ENV instructions do). */
static int ic_list_set(char **list, int *n, const char *k, const char *v)
{
    size_t kl = strlen(k);
    char *item = malloc(kl + strlen(v) + 2);
    if (!item)
        return -1;
    sprintf(item, "%s=%s", k, v);
    for (int i = 0; i < *n; i++)
        if (strncmp(list[i], k, kl) == 0 && list[i][kl] == '=') {
            free(list[i]);
            list[i] = item;
            return 0;
        }
    if (*n == IC_MAX_ITEMS) {
        free(item);
        return -1;
    }
    list[(*n)++] = item;
    return 0;
}

static int ic_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void ic_print(ic_cfg *c)
{
    if (c->user[0])
        printf("user %s\n", c->user);
    if (c->entrypoint)
        printf("entrypoint %s\n", c->entrypoint);
    if (c->cmd)
        printf("cmd %s\n", c->cmd);
    if (c->workdir[0])
        printf("workdir %s\n", c->workdir);
    char **lists[] = {c->env, c->expose, c->label};
    int ns[] = {c->nenv, c->nexpose, c->nlabel};
    const char *names[] = {"env", "expose", "label"};
    for (int l = 0; l < 3; l++) {
        qsort(lists[l], (size_t)ns[l], sizeof(char *), ic_cmp);
        for (int i = 0; i < ns[l]; i++)
            printf("%s %s\n", names[l], lists[l][i]);
    }
}

/* "65532:65532" with uid != 0; anything else cannot be checked by runAsNonRoot. */
static int ic_user_ok(const char *u)
{
    char *end;
    errno = 0;
    unsigned long uid = strtoul(u, &end, 10);
    if (end == u || *end != ':' || errno || uid == 0 || uid > 0xffffffffUL)
        return 0;
    const char *g = end + 1;
    unsigned long gid = strtoul(g, &end, 10);
    return end != g && *end == '\0' && !errno && gid <= 0xffffffffUL && !isspace((unsigned char)*u);
}

/* A JSON array of strings, re-printed compact; NULL when it is not one. */
static char *ic_exec_form(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    int ok = cJSON_IsArray(j) && cJSON_GetArraySize(j) > 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j) ok = ok && cJSON_IsString(e);
    char *out = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return out;
}

/* ---- Containerfile ------------------------------------------------------------------------ */

/* Next word of a LABEL/ENV line: key=value, either side optionally double-quoted
 * (backslash escapes the next character). Returns 1 with k and v filled, 0 at the
 * end of the line, -1 on a malformed pair. */
static int ic_next_pair(const char **p, char *k, size_t kcap, char *v, size_t vcap)
{
    const char *s = *p;
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return 0;
    char *dst = k;
    size_t cap = kcap, n = 0;
    int quoted = 0, in_value = 0;
    for (;; s++) {
        char ch = *s;
        if (!ch || (!quoted && isspace((unsigned char)ch)))
            break;
        if (ch == '"') {
            quoted = !quoted;
            continue;
        }
        if (ch == '\\' && s[1]) {
            ch = *++s;
        } else if (ch == '=' && !quoted && !in_value) {
            dst[n] = '\0';
            dst = v, cap = vcap, n = 0, in_value = 1;
            continue;
        }
        if (n + 1 >= cap)
            return -1;
        dst[n++] = ch;
    }
    dst[n] = '\0';
    *p = s;
    return quoted || !in_value || !k[0] ? -1 : 1;
}

/* One instruction of the final stage. Returns 0 or -1 (reported). */
static int ic_instruction(ic_cfg *c, const char *file, int line, const char *ins, const char *args)
{
    char k[512], v[2048];
    if (!strcasecmp(ins, "USER")) {
        if (!ic_user_ok(args))
            return ic_fail("%s:%d: USER %s: expected a numeric non-root uid:gid (runAsNonRoot "
                           "can only verify a number)",
                           file, line, args);
        snprintf(c->user, sizeof c->user, "%s", args);
    } else if (!strcasecmp(ins, "ENTRYPOINT") || !strcasecmp(ins, "CMD")) {
        char *form = ic_exec_form(args);
        if (!form)
            return ic_fail("%s:%d: %s %s: expected the exec form, a JSON array of strings (the "
                           "image has no shell)",
                           file, line, ins, args);
        char **slot = !strcasecmp(ins, "CMD") ? &c->cmd : &c->entrypoint;
        free(*slot);
        *slot = form;
    } else if (!strcasecmp(ins, "WORKDIR")) {
        snprintf(c->workdir, sizeof c->workdir, "%s", args);
    } else if (!strcasecmp(ins, "LABEL") || !strcasecmp(ins, "ENV")) {
        int env = !strcasecmp(ins, "ENV"), r;
        const char *p = args;
        while ((r = ic_next_pair(&p, k, sizeof k, v, sizeof v)) == 1)
            if (ic_list_set(env ? c->env : c->label, env ? &c->nenv : &c->nlabel, k, v))
                return ic_fail("%s:%d: too many %s entries", file, line, ins);
        if (r < 0)
            return ic_fail("%s:%d: %s: expected key=value pairs", file, line, ins);
    } else if (!strcasecmp(ins, "EXPOSE")) {
        const char *p = args;
        while (*p) {
            size_t n = strcspn(p, " \t");
            if (n) {
                snprintf(k, sizeof k, "%.*s%s", (int)n, p, memchr(p, '/', n) ? "" : "/tcp");
                if (c->nexpose == IC_MAX_ITEMS || !(c->expose[c->nexpose] = strdup(k)))
                    return ic_fail("%s:%d: too many ports", file, line);
                c->nexpose++;
            }
            p += n;
            p += strspn(p, " \t");
        }
    } else if (!strcasecmp(ins, "COPY")) {
        if (strncmp(args, "--from=", 7) != 0)
            return ic_fail("%s:%d: COPY without --from: the final stage takes files only from "
                           "the build stage",
                           file, line);
    } else if (strcasecmp(ins, "ARG") != 0) {
        return ic_fail("%s:%d: %s in the final stage: it may hold only COPY --from, USER, "
                       "ENTRYPOINT, CMD, LABEL, ENV, EXPOSE and WORKDIR (the runtime has no shell)",
                       file, line, ins);
    }
    return 0;
}

static int ic_containerfile(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return ic_fail("%s: %s", file, strerror(errno));
    ic_cfg c = {0};
    char buf[IC_MAX_LINE], ins[IC_MAX_LINE];
    size_t used = 0;
    int lineno = 0, start = 0, rc = 0, stages = 0, scratch = 0;
    while (rc == 0 && fgets(buf + used, (int)(sizeof buf - used), f)) {
        lineno++;
        size_t len = strlen(buf);
        if (len && buf[len - 1] != '\n' && !feof(f)) {
            rc = ic_fail("%s:%d: line too long", file, lineno);
            break;
        }
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
            buf[--len] = '\0';
        const char *first = buf + used + strspn(buf + used, " \t");
        if (used == 0)
            start = lineno;
        if (*first == '#') { /* a comment, also between continued lines */
            buf[used] = '\0';
            continue;
        }
        if (len && buf[len - 1] == '\\') {
            buf[len - 1] = ' ';
            used = len;
            continue;
        }
        used = 0;
        const char *s = buf + strspn(buf, " \t");
        if (!*s)
            continue;
        size_t n = strcspn(s, " \t");
        snprintf(ins, sizeof ins, "%.*s", (int)n, s);
        const char *args = s + n + strspn(s + n, " \t");
        if (!strcasecmp(ins, "FROM")) {
            ic_cfg_release(&c);
            stages++;
            scratch = strncasecmp(args, "scratch", 7) == 0 &&
                      (args[7] == '\0' || isspace((unsigned char)args[7]));
            continue;
        }
        if (!stages) {
            if (strcasecmp(ins, "ARG") != 0)
                rc = ic_fail("%s:%d: %s before the first FROM", file, start, ins);
            continue;
        }
        if (scratch) /* a build stage's settings never reach the image */
            rc = ic_instruction(&c, file, start, ins, args);
    }
    if (rc == 0 && ferror(f))
        rc = ic_fail("%s: read error", file);
    fclose(f);
    if (rc == 0 && used)
        rc = ic_fail("%s:%d: the file ends in a line continuation", file, start);
    if (rc == 0 && !stages)
        rc = ic_fail("%s: no FROM", file);
    if (rc == 0 && !scratch)
        rc = ic_fail("%s: the final stage must be FROM scratch (the runtime holds only what "
                     "COPY puts there)",
                     file);
    if (rc == 0 && (!c.user[0] || !c.entrypoint))
        rc = ic_fail("%s: the final stage needs USER and ENTRYPOINT", file);
    if (rc == 0)
        ic_print(&c);
    ic_cfg_release(&c);
    return rc;
}

/* ---- OCI image layout ---------------------------------------------------------------------- */

/* The path of a blob in the layout after checking its size and sha256; 0 or -1. */
static int ic_blob(const char *layout, const cJSON *desc, char *path, size_t cap)
{
    const cJSON *dg = cJSON_GetObjectItemCaseSensitive(desc, "digest");
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(desc, "size");
    if (!cJSON_IsString(dg) || strncmp(dg->valuestring, "sha256:", 7) != 0 ||
        strlen(dg->valuestring) != 71 || !cJSON_IsNumber(sz))
        return ic_fail("%s: a descriptor without a sha256 digest and a size", layout);
    const char *hex = dg->valuestring + 7;
    if (strspn(hex, "0123456789abcdef") != 64)
        return ic_fail("%s: digest %s is not lowercase hex", layout, dg->valuestring);
    snprintf(path, cap, "%s/blobs/sha256/%s", layout, hex);
    FILE *f = fopen(path, "rb");
    if (!f)
        return ic_fail("%s: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : -1;
    unsigned char chunk[65536], sum[EVP_MAX_MD_SIZE];
    unsigned sumlen = 0;
    double total = 0;
    size_t n;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        total += (double)n;
        if (EVP_DigestUpdate(md, chunk, n) != 1)
            rc = -1;
    }
    if (rc == 0 && (ferror(f) || EVP_DigestFinal_ex(md, sum, &sumlen) != 1))
        rc = -1;
    EVP_MD_CTX_free(md);
    fclose(f);
    if (rc)
        return ic_fail("%s: cannot be hashed", path);
    char got[65];
    for (unsigned i = 0; i < sumlen && i < 32; i++)
        sprintf(got + 2 * i, "%02x", sum[i]);
    if (strcmp(got, hex) != 0)
        return ic_fail("%s: content hashes to sha256:%s", path, got);
    if (total != sz->valuedouble)
        return ic_fail("%s: %.0f bytes, the descriptor says %.0f", path, total, sz->valuedouble);
    return 0;
}

static cJSON *ic_read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ic_fail("%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(IC_MAX_JSON + 1);
    size_t n = buf ? fread(buf, 1, IC_MAX_JSON + 1, f) : 0;
    fclose(f);
    cJSON *j = NULL;
    if (!buf)
        ic_fail("%s: out of memory", path);
    else if (n > IC_MAX_JSON)
        ic_fail("%s: larger than %d bytes", path, IC_MAX_JSON);
    else if (!(j = cJSON_ParseWithLength(buf, n)) || !cJSON_IsObject(j))
        ic_fail("%s: not a JSON object", path);
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = NULL;
    }
    free(buf);
    return j;
}

/* The index's one image descriptor and its verified manifest. */
static int ic_manifest(const char *layout, cJSON **index, const cJSON **desc, cJSON **manifest)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/index.json", layout);
    *manifest = NULL;
    if (!(*index = ic_read_json(path)))
        return -1;
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(*index, "manifests");
    if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) != 1)
        return ic_fail("%s: expected exactly one image in manifests", path);
    *desc = cJSON_GetArrayItem(ms, 0);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(*desc, "mediaType");
    if (!cJSON_IsString(mt) ||
        strcmp(mt->valuestring, "application/vnd.oci.image.manifest.v1+json") != 0)
        return ic_fail("%s: the image is not an OCI image manifest", path);
    if (ic_blob(layout, *desc, path, sizeof path) || !(*manifest = ic_read_json(path)))
        return -1;
    return 0;
}

static int ic_copy_str(const cJSON *obj, const char *key, char *dst, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v && !cJSON_IsString(v))
        return -1;
    snprintf(dst, cap, "%s", v ? v->valuestring : "");
    return 0;
}

static int ic_config(const char *layout, const char *mode)
{
    cJSON *index = NULL, *manifest = NULL, *config = NULL;
    const cJSON *desc = NULL;
    ic_cfg c = {0};
    char path[4096];
    int rc = ic_manifest(layout, &index, &desc, &manifest);
    if (rc == 0 && !strcmp(mode, "ref")) {
        const cJSON *ref =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(desc, "annotations"),
                                             "org.opencontainers.image.ref.name");
        if (cJSON_IsString(ref))
            printf("%s\n", ref->valuestring);
        else
            rc = ic_fail("%s: the image has no org.opencontainers.image.ref.name", layout);
        goto out;
    }
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(manifest, "layers");
    if (rc == 0 && !cJSON_IsArray(layers))
        rc = ic_fail("%s: the manifest has no layers list", layout);
    if (rc == 0 && !strcmp(mode, "layers")) {
        const cJSON *l;
        cJSON_ArrayForEach(l, layers)
        {
            const cJSON *mt = cJSON_GetObjectItemCaseSensitive(l, "mediaType");
            if (!cJSON_IsString(mt) ||
                strcmp(mt->valuestring, "application/vnd.oci.image.layer.v1.tar+gzip") != 0) {
                rc = ic_fail("%s: a layer that is not a gzipped tar", layout);
                break;
            }
            if ((rc = ic_blob(layout, l, path, sizeof path)) != 0)
                break;
            printf("%s\n", path);
        }
        goto out;
    }
    if (rc == 0 &&
        (ic_blob(layout, cJSON_GetObjectItemCaseSensitive(manifest, "config"), path, sizeof path) ||
         !(config = ic_read_json(path))))
        rc = -1;
    if (rc)
        goto out;
    const cJSON *cc = cJSON_GetObjectItemCaseSensitive(config, "config");
    if (!cJSON_IsObject(cc) || ic_copy_str(cc, "User", c.user, sizeof c.user) ||
        ic_copy_str(cc, "WorkingDir", c.workdir, sizeof c.workdir)) {
        rc = ic_fail("%s: config.User and config.WorkingDir must be strings", path);
        goto out;
    }
    if (!ic_user_ok(c.user)) {
        rc = ic_fail("%s: user \"%s\" is not a numeric non-root uid:gid", path, c.user);
        goto out;
    }
    const char *arrays[] = {"Entrypoint", "Cmd"};
    char **slots[] = {&c.entrypoint, &c.cmd};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(cc, arrays[i]);
        if (!a || cJSON_IsNull(a))
            continue;
        char *s = cJSON_PrintUnformatted(a);
        *slots[i] = s ? ic_exec_form(s) : NULL;
        free(s);
        if (!*slots[i]) {
            rc = ic_fail("%s: config.%s is not a list of strings", path, arrays[i]);
            goto out;
        }
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cc, "Env"))
    {
        const char *eq = cJSON_IsString(e) ? strchr(e->valuestring, '=') : NULL;
        char k[512];
        if (!eq || (size_t)(eq - e->valuestring) >= sizeof k) {
            rc = ic_fail("%s: config.Env holds a malformed entry", path);
            goto out;
        }
        snprintf(k, sizeof k, "%.*s", (int)(eq - e->valuestring), e->valuestring);
        if (ic_list_set(c.env, &c.nenv, k, eq + 1)) {
            rc = ic_fail("%s: too many Env entries", path);
            goto out;
        }
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cc, "ExposedPorts"))
    {
        if (c.nexpose == IC_MAX_ITEMS || !(c.expose[c.nexpose] = strdup(e->string))) {
            rc = ic_fail("%s: too many ExposedPorts", path);
            goto out;
        }
        c.nexpose++;
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cc, "Labels"))
    {
        if (!cJSON_IsString(e) || ic_list_set(c.label, &c.nlabel, e->string, e->valuestring)) {
            rc = ic_fail("%s: config.Labels holds a non-string or too many labels", path);
            goto out;
        }
    }
    ic_print(&c);
out:
    ic_cfg_release(&c);
    cJSON_Delete(config);
    cJSON_Delete(manifest);
    cJSON_Delete(index);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "containerfile") && strcmp(argv[1], "config") &&
                      strcmp(argv[1], "layers") && strcmp(argv[1], "ref"))) {
        fprintf(stderr, "usage: image_config containerfile FILE | config|layers|ref LAYOUT\n");
        return 2;
    }
    int rc =
        !strcmp(argv[1], "containerfile") ? ic_containerfile(argv[2]) : ic_config(argv[2], argv[1]);
    return rc ? 1 : 0;
}
