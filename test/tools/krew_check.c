/*
 * krew_check: the krew plugin manifest (plugins/optipod.yaml) against the
 * release archive `make dist` built, so what krew downloads is what the
 * manifest promises.
 *
 *   krew_check [--update] MANIFEST ARCHIVE VERSION
 *
 * Checks: a krew Plugin (krew.googlecontainertools.github.com/v1alpha2) named
 * as its bin without "kubectl-"; spec.version "v" VERSION; one linux/amd64
 * platform whose uri ends in the archive's file name under a v VERSION release,
 * whose sha256 is the archive's, whose files are all in the archive, and
 * whose bin is an executable in it. --update first rewrites the value of the
 * manifest's one `sha256:` line with the archive's (the rest of the file is
 * kept byte for byte, written to a temporary file renamed into place).
 * Prints one line of what matched; anything wrong is named, exit 1; bad usage
 * exits 2. The archive is listed with `tar -tvzf`.
 */
#include <cJSON.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/chart.h"
#include "util/buf.h"
#include "util/yaml2json.h"

#define KC_MAX_MANIFEST (256 * 1024)

static int kc_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int kc_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("krew_check: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int kc_read(const char *path, opbuf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return kc_fail("%s: %s", path, strerror(errno));
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (opbuf_append(b, chunk, n))
            rc = kc_fail("%s: larger than %d bytes", path, KC_MAX_MANIFEST);
    if (rc == 0 && ferror(f))
        rc = kc_fail("%s: read error", path);
    fclose(f);
    return rc;
}

/* The archive's sha256, lowercase hex. */
static int kc_sha256(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return kc_fail("%s: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : 1;
    unsigned char chunk[65536], sum[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    size_t n;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = EVP_DigestUpdate(md, chunk, n) == 1 ? 0 : 1;
    if (rc == 0 && (ferror(f) || EVP_DigestFinal_ex(md, sum, &len) != 1 || len != 32))
        rc = 1;
    EVP_MD_CTX_free(md);
    fclose(f);
    if (rc)
        return kc_fail("%s: cannot be hashed", path);
    for (unsigned i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", sum[i]);
    return 0;
}

/* `tar -tvzf` of the archive: "MODE ... NAME" lines. */
static int kc_list(const char *archive, opbuf *out)
{
    if (strchr(archive, '\'')) /* quoted below */
        return kc_fail("%s: a quote in the path", archive);
    char cmd[4096 + 64];
    snprintf(cmd, sizeof cmd, "tar -tvzf '%s' 2>&1", archive);
    FILE *p = popen(cmd, "r");
    if (!p)
        return kc_fail("cannot run tar: %s", strerror(errno));
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        if (rc == 0 && opbuf_append(out, chunk, n))
            rc = kc_fail("%s: listing too long", archive);
    int st = pclose(p);
    if (rc == 0 && st != 0)
        rc = kc_fail("%s: not a gzipped tar archive: %s", archive, opbuf_str(out));
    return rc;
}

/* The mode string of `name` (a top-level member, "./name" or "name") in the listing, or
 * NULL. */
static const char *kc_member(const char *listing, const char *name, char *mode, size_t cap)
{
    for (const char *l = listing; *l;) {
        size_t len = strcspn(l, "\n");
        const char *sp = l + len;
        while (sp > l && sp[-1] != ' ')
            sp--;
        const char *member = sp;
        if (!strncmp(member, "./", 2))
            member += 2;
        if ((size_t)(l + len - member) == strlen(name) && !strncmp(member, name, strlen(name))) {
            snprintf(mode, cap, "%.*s", (int)strcspn(l, " "), l);
            return mode;
        }
        l += len + (l[len] == '\n');
    }
    return NULL;
}

/* The string at a dotted path, "" when absent or not a string. */
static const char *kc_str(const cJSON *obj, const char *path)
{
    const cJSON *v = chart_get(obj, path);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Replace the value of the one "sha256:" line; the rest stays byte for byte. */
static int kc_update(const char *path, const opbuf *text, const char *hex)
{
    const char *t = opbuf_str(text), *line = NULL;
    int count = 0;
    for (const char *l = t; *l;) {
        const char *k = l + strspn(l, " ");
        if (!strncmp(k, "sha256:", 7)) {
            line = k;
            count++;
        }
        l += strcspn(l, "\n");
        l += *l == '\n';
    }
    if (count != 1)
        return kc_fail("%s: %d sha256 lines, expected one", path, count);
    const char *val = line + 7, *end = line + strcspn(line, "\n");
    char tmp[4096 + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return kc_fail("%s: %s", tmp, strerror(errno));
    int bad = fwrite(t, 1, (size_t)(val - t), f) != (size_t)(val - t);
    bad |= fprintf(f, " %s", hex) < 0;
    bad |= fwrite(end, 1, strlen(end), f) != strlen(end);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return kc_fail("%s: %s", path, strerror(e));
    }
    return 0;
}

/* The manifest against the archive (its sha256 and `tar -tvzf` listing). 0 or 1. */
static int kc_validate(const cJSON *m, const char *path, const char *archive, const char *hex,
                       const char *listing, const char *version)
{
    char want[256], tag[300], mode[32];
    snprintf(want, sizeof want, "v%s", version);
    if (strcmp(kc_str(m, "apiVersion"), "krew.googlecontainertools.github.com/v1alpha2") ||
        strcmp(kc_str(m, "kind"), "Plugin"))
        return kc_fail("%s: not a krew Plugin (krew.googlecontainertools.github.com/v1alpha2)",
                       path);
    if (strcmp(kc_str(m, "spec.version"), want))
        return kc_fail("%s: spec.version is '%s', the release is %s", path,
                       kc_str(m, "spec.version"), want);
    if (!*kc_str(m, "spec.shortDescription") || !*kc_str(m, "spec.homepage"))
        return kc_fail("%s: spec.shortDescription and spec.homepage are required", path);
    const cJSON *plats = chart_get(m, "spec.platforms");
    const cJSON *p = cJSON_GetArrayItem(plats, 0);
    if (cJSON_GetArraySize(plats) != 1 || strcmp(kc_str(p, "selector.matchLabels.os"), "linux") ||
        strcmp(kc_str(p, "selector.matchLabels.arch"), "amd64"))
        return kc_fail("%s: expected one platform, os linux and arch amd64 (what make dist "
                       "builds)",
                       path);
    const char *base = strrchr(archive, '/') ? strrchr(archive, '/') + 1 : archive;
    const char *uri = kc_str(p, "uri");
    snprintf(tag, sizeof tag, "/%s/%s", want, base);
    size_t ul = strlen(uri), tl = strlen(tag);
    if (ul <= tl || strcmp(uri + ul - tl, tag))
        return kc_fail("%s: uri '%s' does not end in %s", path, uri, tag);
    if (strcmp(kc_str(p, "sha256"), hex))
        return kc_fail("%s: sha256 '%s', but %s hashes to %s (make dist rewrites it)", path,
                       kc_str(p, "sha256"), archive, hex);
    const char *bin = kc_str(p, "bin");
    if (!kc_member(listing, bin, mode, sizeof mode) || mode[3] != 'x')
        return kc_fail("%s: bin '%s' is not an executable in %s", path, bin, archive);
    snprintf(want, sizeof want, "kubectl-%s", kc_str(m, "metadata.name"));
    if (strcmp(want, bin))
        return kc_fail("%s: metadata.name must be the bin without kubectl-", path);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(p, "files"), *f;
    if (cJSON_GetArraySize(files) == 0)
        return kc_fail("%s: no files", path);
    cJSON_ArrayForEach(f, files)
    {
        if (!kc_member(listing, kc_str(f, "from"), mode, sizeof mode))
            return kc_fail("%s: files: '%s' is not in %s", path, kc_str(f, "from"), archive);
    }
    printf("krew: %s %s, sha256 %s = %s; files", kc_str(m, "metadata.name"),
           kc_str(m, "spec.version"), hex, base);
    cJSON_ArrayForEach(f, files) printf(" %s", kc_str(f, "from"));
    printf("; bin %s\n", bin);
    return 0;
}

int main(int argc, char **argv)
{
    int update = argc > 1 && !strcmp(argv[1], "--update");
    if (argc != 4 + update) {
        fprintf(stderr, "usage: krew_check [--update] MANIFEST ARCHIVE VERSION\n");
        return 2;
    }
    const char *path = argv[1 + update], *archive = argv[2 + update], *version = argv[3 + update];
    opbuf text, listing;
    opbuf_init(&text, KC_MAX_MANIFEST);
    opbuf_init(&listing, 1 << 20);
    cJSON *m = NULL;
    char hex[65];
    operr err = {{0}};
    int rc = kc_read(path, &text) || kc_sha256(archive, hex) || kc_list(archive, &listing);
    if (rc == 0 && update) {
        rc = kc_update(path, &text, hex);
        opbuf_reset(&text);
        rc = rc || kc_read(path, &text);
    }
    if (rc == 0 && yaml2json_parse(opbuf_str(&text), text.len, &m, &err) != 0)
        rc = kc_fail("%s: %s", path, err.msg);
    if (rc == 0)
        rc = kc_validate(m, path, archive, hex, opbuf_str(&listing), version);
    cJSON_Delete(m);
    opbuf_release(&text);
    opbuf_release(&listing);
    return rc ? 1 : 0;
}
